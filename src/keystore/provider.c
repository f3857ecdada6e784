/*
 * The Tessera OpenSSL 3 provider: entry point, algorithm tables, error reporting, the library's
 * own OSSL_LIB_CTX, and ts_keystore_evp_pkey().
 *
 * A key-store key is an EVP_PKEY of this provider's "EC" key manager. OpenSSL 3.0 runs an
 * operation in the provider of the key's key manager whenever the key cannot be exported to the
 * provider it fetched first (crypto/evp m_sigver.c, exchange.c: "provider specific fetch, from
 * the same provider as ctx->keymgmt"). Our key manager refuses to export the private half of a
 * key-store key, so signing and key agreement with it always land here, whatever the property
 * query; and it refuses to import a private key, so a default-provider key never lands here.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/params.h>
#include <openssl/provider.h>

#include "common/error_internal.h"
#include "keystore/provider_internal.h"

#define TS_PROVIDER_VERSION "0.1.0"

/* --- errors --------------------------------------------------------------------------------- */

static void core_set_error(const ts_prov_ctx *pc, int reason, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    pc->core_vset_error(pc->handle, (uint32_t)reason, fmt, ap);
    va_end(ap);
}

void ts_prov_report_at(const ts_prov_ctx *pc, ts_err code, const char *file, int line,
                       const char *func)
{
    if (pc == NULL || pc->core_new_error == NULL || pc->core_vset_error == NULL) {
        return;
    }
    pc->core_new_error(pc->handle);
    if (pc->core_set_error_debug != NULL) {
        pc->core_set_error_debug(pc->handle, file, line, func);
    }
    core_set_error(pc, (int)code, "%s", ts_error_message());
}

void ts_prov_fail_at(const ts_prov_ctx *pc, int with_openssl, const char *file, int line,
                     const char *func, ts_err code, const char *fmt, ...)
{
    char text[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    if (with_openssl) {
        ts_error_set_openssl(code, "%s", text);
    } else {
        ts_error_set(code, "%s", text);
    }
    ts_prov_report_at(pc, code, file, line, func);
}

/* Reason strings: the ts_err codes by their names, so OpenSSL prints "not found" and so on. */
enum { TS_PROV_REASONS_MAX = 64 };
static OSSL_ITEM prov_reasons[TS_PROV_REASONS_MAX + 1];
static CRYPTO_ONCE prov_reasons_once = CRYPTO_ONCE_STATIC_INIT;

static void prov_reasons_make(void)
{
    size_t n = 0;
    for (unsigned code = 1; code < TS_PROV_REASONS_MAX; code++) {
        const char *name = ts_err_name((ts_err)code);
        if (strcmp(name, "unknown error") == 0) {
            break;
        }
        prov_reasons[n].id = code;
        prov_reasons[n].ptr = (void *)name;
        n++;
    }
    prov_reasons[n].id = 0;
    prov_reasons[n].ptr = NULL;
}

static const OSSL_ITEM *prov_get_reason_strings(void *provctx)
{
    (void)provctx;
    if (!CRYPTO_THREAD_run_once(&prov_reasons_once, prov_reasons_make)) {
        return NULL;
    }
    return prov_reasons;
}

/* --- digests -------------------------------------------------------------------------------- */

/* Signing hashes: SHA-2 only. SHA-1 is refused: its collisions make signatures over it forgeable.
 */
static const char *const prov_digest_names[TS_PROV_DIGESTS] = {"SHA2-224", "SHA2-256", "SHA2-384",
                                                               "SHA2-512"};

const EVP_MD *ts_prov_digest(const ts_prov_ctx *pc, const char *name)
{
    for (size_t i = 0; i < TS_PROV_DIGESTS; i++) {
        if (EVP_MD_is_a(pc->digests[i], name)) {
            return pc->digests[i];
        }
    }
    return NULL;
}

/* --- algorithms ----------------------------------------------------------------------------- */

/* The same names as OpenSSL's own EC key manager, so EVP_PKEY_is_a() and libssl see an EC key. */
static const OSSL_ALGORITHM prov_keymgmt[] = {
    {"EC:id-ecPublicKey:1.2.840.10045.2.1", TS_PROV_PROPERTIES, ts_prov_keymgmt_functions,
     "Tessera key-store EC keys"},
    {NULL, NULL, NULL, NULL},
};

static const OSSL_ALGORITHM prov_signature[] = {
    {"ECDSA", TS_PROV_PROPERTIES, ts_prov_signature_functions, "ECDSA inside the key store"},
    {NULL, NULL, NULL, NULL},
};

static const OSSL_ALGORITHM prov_keyexch[] = {
    {"ECDH", TS_PROV_PROPERTIES, ts_prov_keyexch_functions, "ECDH inside the key store"},
    {NULL, NULL, NULL, NULL},
};

static const OSSL_ALGORITHM prov_store[] = {
    {"pkcs11", TS_PROV_PROPERTIES, ts_prov_store_functions, "RFC 7512 PKCS#11 URIs"},
    {"soft", TS_PROV_PROPERTIES, ts_prov_store_functions, "Tessera software key stores"},
    {NULL, NULL, NULL, NULL},
};

static const OSSL_ALGORITHM *prov_query_operation(void *provctx, int operation_id, int *no_cache)
{
    (void)provctx;
    *no_cache = 0;
    switch (operation_id) {
    case OSSL_OP_KEYMGMT:
        return prov_keymgmt;
    case OSSL_OP_SIGNATURE:
        return prov_signature;
    case OSSL_OP_KEYEXCH:
        return prov_keyexch;
    case OSSL_OP_STORE:
        return prov_store;
    default:
        return NULL;
    }
}

static const OSSL_PARAM *prov_gettable_params(void *provctx)
{
    static const OSSL_PARAM gettable[] = {
        OSSL_PARAM_DEFN(OSSL_PROV_PARAM_NAME, OSSL_PARAM_UTF8_PTR, NULL, 0),
        OSSL_PARAM_DEFN(OSSL_PROV_PARAM_VERSION, OSSL_PARAM_UTF8_PTR, NULL, 0),
        OSSL_PARAM_DEFN(OSSL_PROV_PARAM_BUILDINFO, OSSL_PARAM_UTF8_PTR, NULL, 0),
        OSSL_PARAM_DEFN(OSSL_PROV_PARAM_STATUS, OSSL_PARAM_INTEGER, NULL, 0),
        OSSL_PARAM_END,
    };
    (void)provctx;
    return gettable;
}

static int prov_get_params(void *provctx, OSSL_PARAM params[])
{
    OSSL_PARAM *p;
    (void)provctx;

    p = OSSL_PARAM_locate(params, OSSL_PROV_PARAM_NAME);
    if (p != NULL && !OSSL_PARAM_set_utf8_ptr(p, "Tessera key-store provider")) {
        return 0;
    }
    p = OSSL_PARAM_locate(params, OSSL_PROV_PARAM_VERSION);
    if (p != NULL && !OSSL_PARAM_set_utf8_ptr(p, TS_PROVIDER_VERSION)) {
        return 0;
    }
    p = OSSL_PARAM_locate(params, OSSL_PROV_PARAM_BUILDINFO);
    if (p != NULL && !OSSL_PARAM_set_utf8_ptr(p, "tessera " TS_PROVIDER_VERSION)) {
        return 0;
    }
    p = OSSL_PARAM_locate(params, OSSL_PROV_PARAM_STATUS);
    if (p != NULL && !OSSL_PARAM_set_int(p, 1)) {
        return 0;
    }
    return 1;
}

static void prov_ctx_free(ts_prov_ctx *pc)
{
    if (pc == NULL) {
        return;
    }
    for (size_t i = 0; i < TS_PROV_DIGESTS; i++) {
        EVP_MD_free(pc->digests[i]);
    }
    OSSL_PROVIDER_unload(pc->deflt);
    OSSL_LIB_CTX_free(pc->libctx);
    OPENSSL_free(pc);
}

static void prov_teardown(void *provctx)
{
    prov_ctx_free(provctx);
}

static const OSSL_DISPATCH prov_functions[] = {
    {OSSL_FUNC_PROVIDER_TEARDOWN, (void (*)(void))prov_teardown},
    {OSSL_FUNC_PROVIDER_GETTABLE_PARAMS, (void (*)(void))prov_gettable_params},
    {OSSL_FUNC_PROVIDER_GET_PARAMS, (void (*)(void))prov_get_params},
    {OSSL_FUNC_PROVIDER_QUERY_OPERATION, (void (*)(void))prov_query_operation},
    {OSSL_FUNC_PROVIDER_GET_REASON_STRINGS, (void (*)(void))prov_get_reason_strings},
    {0, NULL},
};

int ts_provider_init(const OSSL_CORE_HANDLE *handle, const OSSL_DISPATCH *in,
                     const OSSL_DISPATCH **out, void **provctx)
{
    ts_prov_ctx *pc = OPENSSL_zalloc(sizeof *pc);

    if (pc == NULL) {
        return 0;
    }
    pc->handle = handle;
    for (; in != NULL && in->function_id != 0; in++) {
        switch (in->function_id) {
        case OSSL_FUNC_CORE_NEW_ERROR:
            pc->core_new_error = OSSL_FUNC_core_new_error(in);
            break;
        case OSSL_FUNC_CORE_SET_ERROR_DEBUG:
            pc->core_set_error_debug = OSSL_FUNC_core_set_error_debug(in);
            break;
        case OSSL_FUNC_CORE_VSET_ERROR:
            pc->core_vset_error = OSSL_FUNC_core_vset_error(in);
            break;
        default:
            break;
        }
    }
    /*
     * A context of our own for hashing and public-key maths: a fresh OSSL_LIB_CTX reads no
     * configuration and holds nothing but the default provider, so nothing done here can be
     * routed back into this provider.
     */
    pc->libctx = OSSL_LIB_CTX_new();
    if (pc->libctx == NULL) {
        goto fail;
    }
    pc->deflt = OSSL_PROVIDER_load(pc->libctx, "default");
    if (pc->deflt == NULL) {
        goto fail;
    }
    for (size_t i = 0; i < TS_PROV_DIGESTS; i++) {
        pc->digests[i] = EVP_MD_fetch(pc->libctx, prov_digest_names[i], NULL);
        if (pc->digests[i] == NULL) {
            goto fail;
        }
    }
    *out = prov_functions;
    *provctx = pc;
    return 1;
fail:
    ts_prov_fail_openssl(pc, TS_ERR_CRYPTO, "tessera provider: cannot set up its own context");
    prov_ctx_free(pc);
    return 0;
}

/* --- the library's context ------------------------------------------------------------------ */

static CRYPTO_ONCE libctx_once = CRYPTO_ONCE_STATIC_INIT;
static OSSL_LIB_CTX *libctx_made;
static char libctx_failure[512];

static void libctx_make(void)
{
    OSSL_LIB_CTX *ctx = OSSL_LIB_CTX_new();

    if (ctx == NULL || !OSSL_PROVIDER_add_builtin(ctx, TS_PROVIDER_NAME, ts_provider_init) ||
        OSSL_PROVIDER_load(ctx, "default") == NULL ||
        OSSL_PROVIDER_load(ctx, TS_PROVIDER_NAME) == NULL ||
        /*
         * With no property query OpenSSL takes the first implementation it stored, which may be
         * ours; generating keys ("EC" key manager) or verifying with ordinary keys must find the
         * default provider's. Our own operations still run for our keys (see the top).
         */
        !EVP_set_default_properties(ctx, "?provider=default")) {
        ts_error_set_openssl(TS_ERR_CRYPTO, "cannot set up Tessera's OpenSSL context");
        snprintf(libctx_failure, sizeof libctx_failure, "%s", ts_error_message());
        OSSL_LIB_CTX_free(ctx);
        return;
    }
    libctx_made = ctx;
}

OSSL_LIB_CTX *ts_provider_libctx(void)
{
    if (!CRYPTO_THREAD_run_once(&libctx_once, libctx_make)) {
        ts_error_set(TS_ERR_CRYPTO, "cannot set up Tessera's OpenSSL context");
        return NULL;
    }
    if (libctx_made == NULL) {
        ts_error_set(TS_ERR_CRYPTO, "%s", libctx_failure);
    }
    return libctx_made;
}

ts_err ts_provider_load(OSSL_LIB_CTX *libctx, OSSL_PROVIDER **out)
{
    if (out == NULL) {
        return ts_error_set(TS_ERR_INVALID, "nowhere to put the provider");
    }
    *out = NULL;
    /*
     * Adding the built-in twice to one context fails; the first one stays usable, so that
     * failure is not an error here.
     */
    ERR_set_mark();
    OSSL_PROVIDER_add_builtin(libctx, TS_PROVIDER_NAME, ts_provider_init);
    ERR_pop_to_mark();
    *out = OSSL_PROVIDER_load(libctx, TS_PROVIDER_NAME);
    if (*out == NULL) {
        return ts_error_set_openssl(TS_ERR_CRYPTO, "cannot load the Tessera provider");
    }
    return TS_OK;
}

/* --- key-store keys as EVP_PKEYs ------------------------------------------------------------ */

ts_err ts_keystore_evp_pkey(ts_keystore *ks, const char *label, EVP_PKEY **out)
{
    ts_prov_keyref ref = {TS_PROV_KEYREF_MAGIC, ks, label, TS_OK};
    OSSL_PARAM params[2];
    EVP_PKEY_CTX *ctx = NULL;
    OSSL_LIB_CTX *libctx;
    ts_err rv;

    if (out == NULL) {
        return ts_error_set(TS_ERR_INVALID, "nowhere to put the key");
    }
    *out = NULL;
    if (ks == NULL) {
        return ts_error_set(TS_ERR_INVALID, "no key store given");
    }
    rv = ts_label_check(label);
    if (rv != TS_OK) {
        return rv;
    }
    libctx = ts_provider_libctx();
    if (libctx == NULL) {
        return TS_ERR_CRYPTO;
    }
    params[0] = OSSL_PARAM_construct_octet_string(TS_PROV_PARAM_KEYREF, &ref, sizeof ref);
    params[1] = OSSL_PARAM_construct_end();
    ctx = EVP_PKEY_CTX_new_from_name(libctx, "EC", TS_PROV_PROPERTIES);
    if (ctx == NULL || EVP_PKEY_fromdata_init(ctx) != 1) {
        rv = ts_error_set_openssl(TS_ERR_CRYPTO, "key '%s': the Tessera provider is unavailable",
                                  label);
        goto done;
    }
    ERR_set_mark();
    if (EVP_PKEY_fromdata(ctx, out, EVP_PKEY_KEYPAIR, params) != 1) {
        if (ref.result != TS_OK) {
            /* The key manager said why in the message; drop its copy in OpenSSL's queue. */
            ERR_pop_to_mark();
            rv = ref.result;
        } else {
            ERR_clear_last_mark();
            rv = ts_error_set_openssl(TS_ERR_CRYPTO, "key '%s': cannot make an EVP_PKEY", label);
        }
        goto done;
    }
    ERR_clear_last_mark();
    rv = TS_OK;
done:
    EVP_PKEY_CTX_free(ctx);
    return rv;
}
