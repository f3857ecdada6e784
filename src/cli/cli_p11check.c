/*
 * An independent look at a key inside a PKCS#11 token: the demo asks the module itself, not the
 * key store, whether the private key is sensitive and unextractable, and tries to read its value.
 *
 * The module may already be initialised by the key store in this process (dlopen of the same
 * path returns the same module): then this code neither finalises it nor logs out, since both
 * act on the whole application (PKCS#11 v2.40 sections 5.4 and 5.6).
 */
#include <dlfcn.h>
#include <string.h>

#include <openssl/crypto.h>
#include <p11-kit/pkcs11.h>

#include "cli/cli_internal.h"
#include "common/error_internal.h"

/* Token labels are 32 bytes padded with spaces (CK_TOKEN_INFO, PKCS#11 v2.40 section 3.2). */
static int token_label_is(const unsigned char field[32], const char *label)
{
    size_t n = strlen(label);
    if (n > 32 || memcmp(field, label, n) != 0) {
        return 0;
    }
    for (size_t i = n; i < 32; i++) {
        if (field[i] != ' ') {
            return 0;
        }
    }
    return 1;
}

static ts_err find_slot(CK_FUNCTION_LIST_PTR f, const char *token, CK_SLOT_ID *slot)
{
    CK_SLOT_ID slots[32];
    CK_ULONG count = sizeof slots / sizeof slots[0];
    CK_RV r = f->C_GetSlotList(CK_TRUE, slots, &count);
    if (r != CKR_OK) {
        return ts_error_set(TS_ERR_BACKEND, "C_GetSlotList failed (0x%lx)", (unsigned long)r);
    }
    for (CK_ULONG i = 0; i < count; i++) {
        CK_TOKEN_INFO info;
        if (f->C_GetTokenInfo(slots[i], &info) == CKR_OK && token_label_is(info.label, token)) {
            *slot = slots[i];
            return TS_OK;
        }
    }
    return ts_error_set(TS_ERR_NO_TOKEN, "no token labelled '%s'", token);
}

static ts_err read_attributes(CK_FUNCTION_LIST_PTR f, CK_SESSION_HANDLE s, const char *label,
                              cli_p11_attrs *out)
{
    CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
    CK_ATTRIBUTE query[] = {
        {CKA_CLASS, &cls, sizeof cls},
        {CKA_LABEL, (void *)label, strlen(label)},
    };
    CK_OBJECT_HANDLE obj;
    CK_ULONG found = 0;
    CK_BBOOL sensitive = CK_FALSE, extractable = CK_TRUE, always = CK_FALSE, never = CK_FALSE;
    CK_ATTRIBUTE attrs[] = {
        {CKA_SENSITIVE, &sensitive, sizeof sensitive},
        {CKA_EXTRACTABLE, &extractable, sizeof extractable},
        {CKA_ALWAYS_SENSITIVE, &always, sizeof always},
        {CKA_NEVER_EXTRACTABLE, &never, sizeof never},
    };
    unsigned char value[128];
    CK_ATTRIBUTE value_attr = {CKA_VALUE, value, sizeof value};
    CK_RV r;

    r = f->C_FindObjectsInit(s, query, sizeof query / sizeof query[0]);
    if (r == CKR_OK) {
        r = f->C_FindObjects(s, &obj, 1, &found);
        f->C_FindObjectsFinal(s);
    }
    if (r != CKR_OK || found != 1) {
        return ts_error_set(TS_ERR_NOT_FOUND, "no private key labelled '%s' in the token", label);
    }
    r = f->C_GetAttributeValue(s, obj, attrs, sizeof attrs / sizeof attrs[0]);
    if (r != CKR_OK) {
        return ts_error_set(TS_ERR_BACKEND, "C_GetAttributeValue failed (0x%lx)", (unsigned long)r);
    }
    out->sensitive = sensitive == CK_TRUE;
    out->extractable = extractable == CK_TRUE;
    out->always_sensitive = always == CK_TRUE;
    out->never_extractable = never == CK_TRUE;
    /* Section 4.1.3: a sensitive attribute reads as CKR_ATTRIBUTE_SENSITIVE with length -1. */
    r = f->C_GetAttributeValue(s, obj, &value_attr, 1);
    out->value_refused = r == CKR_ATTRIBUTE_SENSITIVE;
    out->value_rv = (unsigned long)r;
    OPENSSL_cleanse(value, sizeof value);
    return TS_OK;
}

ts_err cli_p11_key_attributes(const char *module, const char *token, const char *pin,
                              const char *label, cli_p11_attrs *out)
{
    CK_C_GetFunctionList get_list;
    CK_FUNCTION_LIST_PTR f = NULL;
    CK_C_INITIALIZE_ARGS init = {.flags = CKF_OS_LOCKING_OK};
    CK_SESSION_HANDLE session = CK_INVALID_HANDLE;
    CK_SLOT_ID slot = 0;
    int initialised = 0, logged_in = 0;
    ts_err rv = TS_OK;
    CK_RV r;
    void *lib;

    memset(out, 0, sizeof *out);
    lib = dlopen(module, RTLD_NOW | RTLD_LOCAL);
    if (lib == NULL) {
        return ts_error_set(TS_ERR_MODULE, "cannot load %s: %s", module, dlerror());
    }
    *(void **)&get_list = dlsym(lib, "C_GetFunctionList");
    if (get_list == NULL || get_list(&f) != CKR_OK) {
        rv = ts_error_set(TS_ERR_MODULE, "%s has no usable C_GetFunctionList", module);
        goto done;
    }
    r = f->C_Initialize(&init);
    if (r != CKR_OK && r != CKR_CRYPTOKI_ALREADY_INITIALIZED) {
        rv = ts_error_set(TS_ERR_MODULE, "C_Initialize failed (0x%lx)", (unsigned long)r);
        goto done;
    }
    initialised = r == CKR_OK;
    rv = find_slot(f, token, &slot);
    if (rv != TS_OK) {
        goto done;
    }
    r = f->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &session);
    if (r != CKR_OK) {
        rv = ts_error_set(TS_ERR_BACKEND, "C_OpenSession failed (0x%lx)", (unsigned long)r);
        goto done;
    }
    /* Private keys are private objects: only visible after login. */
    r = f->C_Login(session, CKU_USER, (CK_UTF8CHAR_PTR)pin, strlen(pin));
    if (r != CKR_OK && r != CKR_USER_ALREADY_LOGGED_IN) {
        rv = ts_error_set(TS_ERR_PIN, "C_Login failed (0x%lx)", (unsigned long)r);
        goto done;
    }
    logged_in = r == CKR_OK;
    rv = read_attributes(f, session, label, out);
done:
    if (logged_in) {
        f->C_Logout(session);
    }
    if (session != CK_INVALID_HANDLE) {
        f->C_CloseSession(session);
    }
    if (initialised) {
        f->C_Finalize(NULL);
    }
    dlclose(lib);
    return rv;
}
