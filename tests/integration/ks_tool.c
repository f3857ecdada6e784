/*
 * ks_tool: looks at key-store objects from outside Tessera, for the integration tests.
 *
 *   ks_tool p11-attrs --module PATH --token LABEL --pin PIN --label KEY
 *
 * Opens the PKCS#11 module directly (not through Tessera), logs in as the user and prints the
 * protection attributes of the private key labelled KEY, then tries to read its CKA_VALUE:
 *
 *   sensitive: true|false           (CKA_SENSITIVE)
 *   extractable: true|false         (CKA_EXTRACTABLE)
 *   always-sensitive: true|false    (CKA_ALWAYS_SENSITIVE)
 *   never-extractable: true|false   (CKA_NEVER_EXTRACTABLE)
 *   local: true|false               (CKA_LOCAL: generated on the token)
 *   value: unreadable (CKR_...)     or   value: READABLE (N bytes)
 *
 * pkcs11-tool cannot show the last line: its --read-object refuses every private key whatever
 * the attributes say. Exit 0 when the key was found and inspected, 1 otherwise, 2 for bad usage.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#include <p11-kit/pkcs11.h>

typedef struct tool_opts {
    const char *module;
    const char *token;
    const char *pin;
    const char *label;
} tool_opts;

static void usage(void)
{
    fprintf(stderr, "usage: ks_tool p11-attrs --module PATH --token LABEL --pin PIN --label KEY\n");
}

static const char *rv_name(CK_RV rv)
{
    switch (rv) {
    case CKR_OK:
        return "CKR_OK";
    case CKR_ATTRIBUTE_SENSITIVE:
        return "CKR_ATTRIBUTE_SENSITIVE";
    case CKR_ATTRIBUTE_TYPE_INVALID:
        return "CKR_ATTRIBUTE_TYPE_INVALID";
    case CKR_PIN_INCORRECT:
        return "CKR_PIN_INCORRECT";
    case CKR_USER_NOT_LOGGED_IN:
        return "CKR_USER_NOT_LOGGED_IN";
    default:
        return "another CKR";
    }
}

static int parse_args(int argc, char **argv, tool_opts *o)
{
    memset(o, 0, sizeof *o);
    if (argc < 2 || strcmp(argv[1], "p11-attrs") != 0) {
        return -1;
    }
    for (int i = 2; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--module") == 0) {
            o->module = argv[i + 1];
        } else if (strcmp(argv[i], "--token") == 0) {
            o->token = argv[i + 1];
        } else if (strcmp(argv[i], "--pin") == 0) {
            o->pin = argv[i + 1];
        } else if (strcmp(argv[i], "--label") == 0) {
            o->label = argv[i + 1];
        } else {
            fprintf(stderr, "ks_tool: unknown option %s\n", argv[i]);
            return -1;
        }
    }
    if (argc % 2 != 0 || o->module == NULL || o->token == NULL || o->pin == NULL ||
        o->label == NULL) {
        return -1;
    }
    return 0;
}

/* PKCS#11 section 3.2, CK_TOKEN_INFO: the label is 32 bytes padded with blanks, no NUL. */
static int token_label_is(const CK_TOKEN_INFO *info, const char *want)
{
    size_t n = strlen(want);

    if (n > sizeof info->label || memcmp(info->label, want, n) != 0) {
        return 0;
    }
    for (size_t i = n; i < sizeof info->label; i++) {
        if (info->label[i] != ' ') {
            return 0;
        }
    }
    return 1;
}

static int find_slot(CK_FUNCTION_LIST_PTR p11, const char *token, CK_SLOT_ID *slot)
{
    CK_SLOT_ID slots[64];
    CK_ULONG count = sizeof slots / sizeof slots[0];
    CK_RV rv = p11->C_GetSlotList(CK_TRUE, slots, &count);

    if (rv != CKR_OK) {
        fprintf(stderr, "ks_tool: C_GetSlotList: 0x%lx (%s)\n", rv, rv_name(rv));
        return -1;
    }
    for (CK_ULONG i = 0; i < count; i++) {
        CK_TOKEN_INFO info;
        if (p11->C_GetTokenInfo(slots[i], &info) == CKR_OK && token_label_is(&info, token)) {
            *slot = slots[i];
            return 0;
        }
    }
    fprintf(stderr, "ks_tool: no token labelled %s\n", token);
    return -1;
}

static int find_private_key(CK_FUNCTION_LIST_PTR p11, CK_SESSION_HANDLE s, const char *label,
                            CK_OBJECT_HANDLE *key)
{
    CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
    CK_ATTRIBUTE tmpl[] = {
        {CKA_CLASS, &cls, sizeof cls},
        {CKA_LABEL, (void *)label, strlen(label)},
    };
    CK_ULONG found = 0;
    CK_RV rv = p11->C_FindObjectsInit(s, tmpl, 2);

    if (rv == CKR_OK) {
        rv = p11->C_FindObjects(s, key, 1, &found);
        p11->C_FindObjectsFinal(s);
    }
    if (rv != CKR_OK || found != 1) {
        fprintf(stderr, "ks_tool: no private key labelled %s (0x%lx)\n", label, rv);
        return -1;
    }
    return 0;
}

static int print_attrs(CK_FUNCTION_LIST_PTR p11, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key)
{
    static const struct {
        CK_ATTRIBUTE_TYPE type;
        const char *name;
    } flags[] = {
        {CKA_SENSITIVE, "sensitive"},
        {CKA_EXTRACTABLE, "extractable"},
        {CKA_ALWAYS_SENSITIVE, "always-sensitive"},
        {CKA_NEVER_EXTRACTABLE, "never-extractable"},
        {CKA_LOCAL, "local"},
    };
    CK_ATTRIBUTE value = {CKA_VALUE, NULL, 0};
    CK_RV rv;

    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++) {
        CK_BBOOL b = CK_FALSE;
        CK_ATTRIBUTE a = {flags[i].type, &b, sizeof b};
        rv = p11->C_GetAttributeValue(s, key, &a, 1);
        if (rv != CKR_OK) {
            fprintf(stderr, "ks_tool: cannot read %s: 0x%lx (%s)\n", flags[i].name, rv,
                    rv_name(rv));
            return -1;
        }
        printf("%s: %s\n", flags[i].name, b ? "true" : "false");
    }
    /* PKCS#11 section 4.2: a sensitive or unextractable attribute is not revealed (its length
     * comes back as CK_UNAVAILABLE_INFORMATION, with CKR_ATTRIBUTE_SENSITIVE). */
    rv = p11->C_GetAttributeValue(s, key, &value, 1);
    if (rv == CKR_OK && value.ulValueLen != CK_UNAVAILABLE_INFORMATION) {
        printf("value: READABLE (%lu bytes)\n", value.ulValueLen);
    } else {
        printf("value: unreadable (%s)\n", rv_name(rv));
    }
    return 0;
}

static int p11_attrs(const tool_opts *o)
{
    void *lib = dlopen(o->module, RTLD_NOW | RTLD_LOCAL);
    CK_C_GetFunctionList get_list;
    CK_FUNCTION_LIST_PTR p11 = NULL;
    CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
    CK_OBJECT_HANDLE key;
    CK_SLOT_ID slot;
    CK_RV rv;
    int initialised = 0;
    int status = 1;

    if (lib == NULL) {
        fprintf(stderr, "ks_tool: cannot load %s: %s\n", o->module, dlerror());
        return 1;
    }
    *(void **)&get_list = dlsym(lib, "C_GetFunctionList");
    if (get_list == NULL || get_list(&p11) != CKR_OK) {
        fprintf(stderr, "ks_tool: %s is not a PKCS#11 module\n", o->module);
        goto out;
    }
    rv = p11->C_Initialize(NULL);
    if (rv != CKR_OK) {
        fprintf(stderr, "ks_tool: C_Initialize: 0x%lx\n", rv);
        goto out;
    }
    initialised = 1;
    if (find_slot(p11, o->token, &slot) != 0) {
        goto out;
    }
    rv = p11->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &s);
    if (rv == CKR_OK) {
        rv = p11->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)o->pin, strlen(o->pin));
    }
    if (rv != CKR_OK) {
        fprintf(stderr, "ks_tool: cannot log in: 0x%lx (%s)\n", rv, rv_name(rv));
        goto out;
    }
    if (find_private_key(p11, s, o->label, &key) != 0 || print_attrs(p11, s, key) != 0) {
        goto out;
    }
    status = 0;
out:
    if (s != CK_INVALID_HANDLE) {
        p11->C_CloseSession(s);
    }
    if (initialised) {
        p11->C_Finalize(NULL);
    }
    dlclose(lib);
    return status;
}

int main(int argc, char **argv)
{
    tool_opts o;

    if (parse_args(argc, argv, &o) != 0) {
        usage();
        return 2;
    }
    return p11_attrs(&o);
}
