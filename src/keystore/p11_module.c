/*
 * PKCS#11 modules: loaded once per process and path, refcounted, so that several stores (and
 * several tokens of one module) can be open at once; the login state they share; CKR codes.
 *
 * PKCS#11 v2.40 section 5.4 (C_Initialize) allows one initialisation per process: a second
 * C_Initialize fails with CKR_CRYPTOKI_ALREADY_INITIALIZED. The table below makes every store of
 * this process share one initialisation and calls C_Finalize when the last store closes, and only
 * when this code made the initialisation (another library in the process may own it).
 */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "keystore/p11_internal.h"

typedef struct p11_login {
    CK_SLOT_ID slot;
    unsigned count; /* stores of this process logged in on the slot */
    int owner;      /* this code logged in, so it logs out */
    int has_hash;
    uint8_t pin_hash[32]; /* SHA-256 of the PIN the login was made with */
} p11_login;

struct p11_module {
    p11_module *next;
    char *path;
    void *dl;
    CK_FUNCTION_LIST_PTR f;
    unsigned refs;  /* stores holding the module, inherited ones included */
    unsigned local; /* stores of the process that initialised it */
    int finalize;   /* this code initialised the module */
    pid_t pid;      /* the process that initialised it: a forked child must do it again */
    p11_login *logins;
    size_t nlogins;
};

static pthread_mutex_t modules_lock = PTHREAD_MUTEX_INITIALIZER;
static p11_module *modules;

static CK_RV module_initialize(CK_FUNCTION_LIST_PTR f, int *finalize)
{
    CK_C_INITIALIZE_ARGS args;

    /* Stores may be used from several threads: let the module use the OS's locks. */
    memset(&args, 0, sizeof args);
    args.flags = CKF_OS_LOCKING_OK;
    CK_RV rv = f->C_Initialize(&args);
    if (rv == CKR_CANT_LOCK) {
        rv = f->C_Initialize(NULL);
    }
    *finalize = rv == CKR_OK;
    return rv == CKR_CRYPTOKI_ALREADY_INITIALIZED ? CKR_OK : rv;
}

/* The first function this backend calls that the module's list leaves NULL, or NULL. */
static const char *missing_function(CK_FUNCTION_LIST_PTR f)
{
#define NEED(fn)                                                                                   \
    {                                                                                              \
        f->fn != NULL, #fn                                                                         \
    }
    const struct {
        int present;
        const char *name;
    } need[] = {
        NEED(C_Initialize),
        NEED(C_Finalize),
        NEED(C_GetSlotList),
        NEED(C_GetTokenInfo),
        NEED(C_InitToken),
        NEED(C_InitPIN),
        NEED(C_OpenSession),
        NEED(C_CloseSession),
        NEED(C_Login),
        NEED(C_Logout),
        NEED(C_CreateObject),
        NEED(C_DestroyObject),
        NEED(C_GetAttributeValue),
        NEED(C_FindObjectsInit),
        NEED(C_FindObjects),
        NEED(C_FindObjectsFinal),
        NEED(C_SignInit),
        NEED(C_Sign),
        NEED(C_GenerateKeyPair),
        NEED(C_UnwrapKey),
        NEED(C_DeriveKey),
        NEED(C_GenerateRandom),
    };
#undef NEED
    for (size_t i = 0; i < sizeof need / sizeof need[0]; i++) {
        if (!need[i].present) {
            return need[i].name;
        }
    }
    return NULL;
}

static ts_err module_load(const char *path, p11_module **out)
{
    CK_C_GetFunctionList get_list = NULL;
    p11_module *m = OPENSSL_zalloc(sizeof *m);
    ts_err rv = TS_OK;

    *out = NULL;
    if (m != NULL) {
        m->path = OPENSSL_strdup(path);
    }
    if (m == NULL || m->path == NULL) {
        OPENSSL_free(m);
        return ts_error_set(TS_ERR_NOMEM, "out of memory loading a PKCS#11 module");
    }
    /* RTLD_NODELETE: modules keep threads and atexit handlers; unmapping them is not safe. */
    m->dl = dlopen(path, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
    if (m->dl == NULL) {
        const char *why = dlerror();
        rv = ts_error_set(TS_ERR_MODULE, "cannot load PKCS#11 module %s: %s", path,
                          why != NULL ? why : "dlopen failed");
        goto fail;
    }
    *(void **)&get_list = dlsym(m->dl, "C_GetFunctionList");
    if (get_list == NULL) {
        rv = ts_error_set(TS_ERR_MODULE, "%s is not a PKCS#11 module: it has no C_GetFunctionList",
                          path);
        goto fail;
    }
    CK_RV crv = get_list(&m->f);
    if (crv != CKR_OK || m->f == NULL || m->f->version.major < 2) {
        rv = ts_error_set(TS_ERR_MODULE, "PKCS#11 module %s gives no usable function list (%s)",
                          path, p11_ckr_name(crv));
        goto fail;
    }
    const char *missing = missing_function(m->f);
    if (missing != NULL) {
        rv = ts_error_set(TS_ERR_MODULE, "PKCS#11 module %s has no %s", path, missing);
        goto fail;
    }
    crv = module_initialize(m->f, &m->finalize);
    if (crv != CKR_OK) {
        rv = ts_error_set(TS_ERR_MODULE, "cannot initialise PKCS#11 module %s: C_Initialize: %s",
                          path, p11_ckr_name(crv));
        goto fail;
    }
    m->pid = getpid();
    m->refs = 1;
    m->local = 1;
    *out = m;
    return TS_OK;
fail:
    if (m->dl != NULL) {
        dlclose(m->dl);
    }
    OPENSSL_free(m->path);
    OPENSSL_free(m);
    return rv;
}

ts_err p11_module_get(const char *path, p11_module **out, CK_FUNCTION_LIST_PTR *f)
{
    char real[PATH_MAX];
    ts_err rv = TS_OK;

    *out = NULL;
    *f = NULL;
    if (realpath(path, real) == NULL) {
        return ts_error_set(TS_ERR_MODULE, "cannot load PKCS#11 module %s: %s", path,
                            strerror(errno));
    }
    pthread_mutex_lock(&modules_lock);
    p11_module *m = modules;
    while (m != NULL && strcmp(m->path, real) != 0) {
        m = m->next;
    }
    if (m == NULL) {
        rv = module_load(real, &m);
        if (rv == TS_OK) {
            m->next = modules;
            modules = m;
        }
    } else if (m->pid != getpid()) {
        /* PKCS#11 v2.40 section 6.7.7: a forked child initialises the library again; stores it
         * inherited stop working, as their sessions belong to the parent. */
        m->f->C_Finalize(NULL);
        CK_RV crv = module_initialize(m->f, &m->finalize);
        if (crv != CKR_OK) {
            rv = ts_error_set(TS_ERR_MODULE, "cannot initialise PKCS#11 module %s: %s", real,
                              p11_ckr_name(crv));
        } else {
            m->pid = getpid();
            m->nlogins = 0;
            m->local = 1;
            m->refs++;
        }
    } else {
        m->local++;
        m->refs++;
    }
    if (rv == TS_OK) {
        *out = m;
        *f = m->f;
    }
    pthread_mutex_unlock(&modules_lock);
    return rv;
}

void p11_module_put(p11_module *m, int inherited)
{
    if (m == NULL) {
        return;
    }
    pthread_mutex_lock(&modules_lock);
    if (!inherited && m->local > 0) {
        m->local--;
    }
    if (--m->refs > 0) {
        pthread_mutex_unlock(&modules_lock);
        return;
    }
    for (p11_module **p = &modules; *p != NULL; p = &(*p)->next) {
        if (*p == m) {
            *p = m->next;
            break;
        }
    }
    pthread_mutex_unlock(&modules_lock);
    if (m->finalize && m->pid == getpid()) {
        m->f->C_Finalize(NULL);
    }
    dlclose(m->dl);
    OPENSSL_clear_free(m->logins, m->nlogins * sizeof *m->logins);
    OPENSSL_free(m->path);
    OPENSSL_free(m);
}

int p11_module_rescan(p11_module *m)
{
    int done = 0;
    pthread_mutex_lock(&modules_lock);
    if (m->local == 1 && m->finalize && m->pid == getpid()) {
        m->f->C_Finalize(NULL);
        done = module_initialize(m->f, &m->finalize) == CKR_OK && m->finalize;
    }
    pthread_mutex_unlock(&modules_lock);
    return done;
}

const char *p11_module_path(const p11_module *m)
{
    return m->path;
}

static p11_login *login_find(p11_module *m, CK_SLOT_ID slot)
{
    for (size_t i = 0; i < m->nlogins; i++) {
        if (m->logins[i].slot == slot) {
            return &m->logins[i];
        }
    }
    return NULL;
}

static p11_login *login_add(p11_module *m, CK_SLOT_ID slot)
{
    p11_login *grown = OPENSSL_realloc(m->logins, (m->nlogins + 1) * sizeof *m->logins);
    if (grown == NULL) {
        return NULL;
    }
    m->logins = grown;
    p11_login *l = &m->logins[m->nlogins++];
    memset(l, 0, sizeof *l);
    l->slot = slot;
    return l;
}

ts_err p11_module_login(p11_module *m, CK_SLOT_ID slot, CK_SESSION_HANDLE session, const char *pin,
                        int protected_path)
{
    uint8_t hash[32];
    ts_err rv = TS_OK;

    if (pin != NULL && !EVP_Digest(pin, strlen(pin), hash, NULL, EVP_sha256(), NULL)) {
        return ts_error_set_openssl(TS_ERR_CRYPTO, "cannot hash the PIN");
    }
    pthread_mutex_lock(&modules_lock);
    p11_login *l = login_find(m, slot);
    CK_RV crv = m->f->C_Login(session, CKU_USER, (CK_UTF8CHAR_PTR)pin,
                              pin != NULL && !protected_path ? (CK_ULONG)strlen(pin) : 0);
    if (crv == CKR_USER_ALREADY_LOGGED_IN && l != NULL && l->count > 0 && l->has_hash &&
        (pin == NULL || CRYPTO_memcmp(l->pin_hash, hash, sizeof hash) != 0)) {
        /* Another store of this process logged in: the token cannot check this PIN, so the
         * PIN that store's login proved is the reference. */
        rv = ts_error_set(TS_ERR_PIN, "wrong PIN: the token is logged in by this process with "
                                      "another PIN (CKR_PIN_INCORRECT)");
        goto done;
    }
    if (crv != CKR_OK && crv != CKR_USER_ALREADY_LOGGED_IN) {
        rv = p11_error(crv, "C_Login as user");
        goto done;
    }
    if (l == NULL || l->count == 0) {
        if (l == NULL) {
            l = login_add(m, slot);
        }
        if (l == NULL) {
            rv = ts_error_set(TS_ERR_NOMEM, "out of memory logging in");
            goto done;
        }
        /* Logged in already by something else in the process: leave its logout to it. */
        l->owner = crv == CKR_OK;
        l->has_hash = pin != NULL && crv == CKR_OK;
        if (l->has_hash) {
            memcpy(l->pin_hash, hash, sizeof hash);
        }
    }
    l->count++;
done:
    pthread_mutex_unlock(&modules_lock);
    OPENSSL_cleanse(hash, sizeof hash);
    return rv;
}

void p11_module_logout(p11_module *m, CK_SLOT_ID slot, CK_SESSION_HANDLE session)
{
    pthread_mutex_lock(&modules_lock);
    p11_login *l = login_find(m, slot);
    if (l != NULL && l->count > 0 && --l->count == 0) {
        if (l->owner && m->pid == getpid()) {
            m->f->C_Logout(session);
        }
        OPENSSL_cleanse(l, sizeof *l);
        l->slot = slot;
    }
    pthread_mutex_unlock(&modules_lock);
}
