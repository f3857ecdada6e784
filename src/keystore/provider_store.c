/*
 * The provider's store loader, for "soft:" and "pkcs11:" URIs: OSSL_STORE_open_ex() on
 *
 *   soft:DIR;object=LABEL?pin-value=PIN
 *   pkcs11:token=NAME;object=LABEL?module-path=PATH&pin-value=PIN
 *
 * opens the store and yields the key named by object= (as a private key, or as a public key when
 * OSSL_STORE_INFO_PUBKEY is expected), then, if the store holds a data object labelled
 * LABEL.crt with a certificate (DER or PEM), that certificate. The PIN comes from the URI or
 * TESSERA_PIN, as for ts_keystore_open(); the passphrase callback is not used.
 */
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/core_object.h>
#include <openssl/crypto.h>
#include <openssl/params.h>
#include <openssl/pem.h>
#include <openssl/store.h>
#include <openssl/x509.h>

#include "common/error_internal.h"
#include "keystore/provider_internal.h"

enum { STORE_KEY, STORE_CERT, STORE_DONE };

typedef struct store_ctx {
    ts_prov_ctx *prov;
    ts_keystore *ks;
    char label[TS_LABEL_MAX + 1];
    int expect; /* OSSL_STORE_INFO_*, or 0 for anything */
    int step;   /* STORE_KEY, STORE_CERT, STORE_DONE */
} store_ctx;

static void store_close_ctx(store_ctx *ctx)
{
    if (ctx != NULL) {
        ts_keystore_free(ctx->ks);
        OPENSSL_free(ctx);
    }
}

static void *store_open(void *provctx, const char *uri)
{
    ts_prov_ctx *pc = provctx;
    ts_ks_uri *parsed = NULL;
    store_ctx *ctx = NULL;
    ts_err rv;

    rv = ts_ks_uri_parse(uri, &parsed);
    if (rv != TS_OK) {
        ts_prov_report(pc, rv);
        return NULL;
    }
    if (parsed->object == NULL) {
        ts_prov_fail(pc, TS_ERR_URI, "%s names no key: add ;object=LABEL", parsed->redacted);
        goto fail;
    }
    rv = ts_label_check(parsed->object);
    if (rv != TS_OK) {
        ts_prov_report(pc, rv);
        goto fail;
    }
    ctx = OPENSSL_zalloc(sizeof *ctx);
    if (ctx == NULL) {
        ts_prov_fail(pc, TS_ERR_NOMEM, "out of memory opening %s", parsed->redacted);
        goto fail;
    }
    ctx->prov = pc;
    memcpy(ctx->label, parsed->object, strlen(parsed->object) + 1);
    rv = ts_keystore_open(uri, &ctx->ks);
    if (rv != TS_OK) {
        ts_prov_report(pc, rv);
        goto fail;
    }
    ts_ks_uri_free(parsed);
    return ctx;
fail:
    store_close_ctx(ctx);
    ts_ks_uri_free(parsed);
    return NULL;
}

static const OSSL_PARAM *store_settable_ctx_params(void *provctx)
{
    static const OSSL_PARAM settable[] = {
        OSSL_PARAM_int(OSSL_STORE_PARAM_EXPECT, NULL),
        OSSL_PARAM_END,
    };
    (void)provctx;
    return settable;
}

/* Search criteria (subject, fingerprint, alias) are ignored: the URI names exactly one key. */
static int store_set_ctx_params(void *loaderctx, const OSSL_PARAM params[])
{
    store_ctx *ctx = loaderctx;
    const OSSL_PARAM *p = OSSL_PARAM_locate_const(params, OSSL_STORE_PARAM_EXPECT);

    if (p != NULL && !OSSL_PARAM_get_int(p, &ctx->expect)) {
        return 0;
    }
    return 1;
}

static int store_load_key(store_ctx *ctx, OSSL_CALLBACK *object_cb, void *object_cbarg)
{
    int type = OSSL_OBJECT_PKEY;
    ts_prov_key *key = NULL;
    OSSL_PARAM params[4];
    int ok;

    if (ts_prov_key_from_store(ctx->prov, ctx->ks, ctx->label, &key) != TS_OK) {
        return 0;
    }
    if (ctx->expect == OSSL_STORE_INFO_PUBKEY) {
        /* A key object without the store reference is what OpenSSL files as a public key. */
        ts_keystore_free(key->ks);
        key->ks = NULL;
    }
    /* The reference is the key object's address; our key manager's load() takes a reference. */
    params[0] = OSSL_PARAM_construct_int(OSSL_OBJECT_PARAM_TYPE, &type);
    params[1] = OSSL_PARAM_construct_utf8_string(OSSL_OBJECT_PARAM_DATA_TYPE, "EC", 0);
    params[2] = OSSL_PARAM_construct_octet_string(OSSL_OBJECT_PARAM_REFERENCE, &key, sizeof key);
    params[3] = OSSL_PARAM_construct_end();
    ok = object_cb(params, object_cbarg);
    ts_prov_key_free(key);
    return ok;
}

/* The certificate stored beside the key, as DER; 0 with *der NULL when there is none. */
static int store_read_cert(store_ctx *ctx, uint8_t **der, size_t *der_len)
{
    char label[TS_LABEL_MAX + 1];
    uint8_t *data = NULL;
    size_t len = 0;
    X509 *cert = NULL;
    BIO *bio = NULL;
    int n, ok = 0;
    ts_err rv;

    *der = NULL;
    *der_len = 0;
    n = snprintf(label, sizeof label, "%s.crt", ctx->label);
    if (n < 0 || (size_t)n >= sizeof label) {
        return 1; /* a label that long cannot have a certificate beside it */
    }
    rv = ts_keystore_object_get(ctx->ks, label, &data, &len);
    if (rv == TS_ERR_NOT_FOUND || rv == TS_ERR_WRONG_TYPE) {
        return 1;
    }
    if (rv != TS_OK) {
        ts_prov_report(ctx->prov, rv);
        return 0;
    }
    if (len > 10 && memcmp(data, "-----BEGIN", 10) == 0) {
        bio = BIO_new_mem_buf(data, (int)len);
        cert = bio != NULL ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
        n = cert != NULL ? i2d_X509(cert, der) : -1;
        if (n <= 0) {
            ts_prov_fail_openssl(ctx->prov, TS_ERR_CORRUPT, "object '%s' is not a certificate",
                                 label);
            goto done;
        }
        *der_len = (size_t)n;
        OPENSSL_clear_free(data, len);
    } else {
        *der = data;
        *der_len = len;
    }
    data = NULL;
    ok = 1;
done:
    OPENSSL_clear_free(data, len);
    X509_free(cert);
    BIO_free(bio);
    return ok;
}

static int store_load_cert(store_ctx *ctx, OSSL_CALLBACK *object_cb, void *object_cbarg)
{
    int type = OSSL_OBJECT_CERT;
    uint8_t *der = NULL;
    size_t der_len = 0;
    OSSL_PARAM params[4];
    int ok;

    if (!store_read_cert(ctx, &der, &der_len)) {
        return 0;
    }
    if (der == NULL) {
        ctx->step = STORE_DONE;
        return 1; /* nothing more: OSSL_STORE_load() returns NULL and OSSL_STORE_eof() is true */
    }
    params[0] = OSSL_PARAM_construct_int(OSSL_OBJECT_PARAM_TYPE, &type);
    params[1] = OSSL_PARAM_construct_utf8_string(OSSL_OBJECT_PARAM_DATA_TYPE, "CERTIFICATE", 0);
    params[2] = OSSL_PARAM_construct_octet_string(OSSL_OBJECT_PARAM_DATA, der, der_len);
    params[3] = OSSL_PARAM_construct_end();
    ok = object_cb(params, object_cbarg);
    OPENSSL_clear_free(der, der_len);
    return ok;
}

static int store_load(void *loaderctx, OSSL_CALLBACK *object_cb, void *object_cbarg,
                      OSSL_PASSPHRASE_CALLBACK *pw_cb, void *pw_cbarg)
{
    store_ctx *ctx = loaderctx;
    int want_key = ctx->expect == 0 || ctx->expect == OSSL_STORE_INFO_PKEY ||
                   ctx->expect == OSSL_STORE_INFO_PUBKEY;
    int want_cert = ctx->expect == 0 || ctx->expect == OSSL_STORE_INFO_CERT;
    (void)pw_cb;
    (void)pw_cbarg;

    if (ctx->step == STORE_KEY) {
        ctx->step = STORE_CERT;
        if (want_key) {
            return store_load_key(ctx, object_cb, object_cbarg);
        }
    }
    if (ctx->step == STORE_CERT && want_cert) {
        ctx->step = STORE_DONE;
        return store_load_cert(ctx, object_cb, object_cbarg);
    }
    ctx->step = STORE_DONE;
    return 1;
}

static int store_eof(void *loaderctx)
{
    const store_ctx *ctx = loaderctx;
    return ctx->step == STORE_DONE;
}

static int store_close(void *loaderctx)
{
    store_close_ctx(loaderctx);
    return 1;
}

const OSSL_DISPATCH ts_prov_store_functions[] = {
    {OSSL_FUNC_STORE_OPEN, (void (*)(void))store_open},
    {OSSL_FUNC_STORE_SETTABLE_CTX_PARAMS, (void (*)(void))store_settable_ctx_params},
    {OSSL_FUNC_STORE_SET_CTX_PARAMS, (void (*)(void))store_set_ctx_params},
    {OSSL_FUNC_STORE_LOAD, (void (*)(void))store_load},
    {OSSL_FUNC_STORE_EOF, (void (*)(void))store_eof},
    {OSSL_FUNC_STORE_CLOSE, (void (*)(void))store_close},
    {0, NULL},
};
