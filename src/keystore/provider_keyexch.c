/*
 * The provider's ECDH: plain ECDH (SEC 1 section 3.3.1, the shared secret is the x-coordinate)
 * inside the key store, with a peer public key on the same curve.
 *
 * Peers are public keys: OpenSSL copies a peer of another provider into our key manager, which
 * takes public keys only, so pass the public half of a peer (as TLS does) rather than a key pair.
 * No KDF is offered: callers derive from the raw secret themselves (TLS, HKDF).
 */
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/params.h>

#include "common/error_internal.h"
#include "keystore/provider_internal.h"

typedef struct kex_ctx {
    ts_prov_ctx *prov;
    ts_prov_key *key;
    ts_prov_key *peer;
} kex_ctx;

static void *kex_newctx(void *provctx)
{
    kex_ctx *ctx = OPENSSL_zalloc(sizeof *ctx);
    if (ctx == NULL) {
        ts_prov_fail(provctx, TS_ERR_NOMEM, "out of memory for a key-exchange context");
        return NULL;
    }
    ctx->prov = provctx;
    return ctx;
}

static void kex_freectx(void *vctx)
{
    kex_ctx *ctx = vctx;
    if (ctx == NULL) {
        return;
    }
    ts_prov_key_free(ctx->key);
    ts_prov_key_free(ctx->peer);
    OPENSSL_free(ctx);
}

static void *kex_dupctx(void *vsrc)
{
    const kex_ctx *src = vsrc;
    kex_ctx *ctx = kex_newctx(src->prov);
    if (ctx == NULL) {
        return NULL;
    }
    ctx->key = ts_prov_key_up_ref(src->key);
    ctx->peer = ts_prov_key_up_ref(src->peer);
    return ctx;
}

/*
 * P-256 and P-384 have cofactor 1, so cofactor ECDH is plain ECDH and either mode is accepted;
 * a KDF is refused rather than silently skipped.
 */
static int kex_set_ctx_params(void *vctx, const OSSL_PARAM params[])
{
    kex_ctx *ctx = vctx;
    const OSSL_PARAM *p;
    const char *kdf = NULL;
    int mode;

    p = OSSL_PARAM_locate_const(params, OSSL_EXCHANGE_PARAM_EC_ECDH_COFACTOR_MODE);
    if (p != NULL && (!OSSL_PARAM_get_int(p, &mode) || mode < -1 || mode > 1)) {
        ts_prov_fail(ctx->prov, TS_ERR_INVALID, "ECDH: bad cofactor mode");
        return 0;
    }
    p = OSSL_PARAM_locate_const(params, OSSL_EXCHANGE_PARAM_KDF_TYPE);
    if (p != NULL && (!OSSL_PARAM_get_utf8_string_ptr(p, &kdf) || kdf[0] != '\0')) {
        ts_prov_fail(ctx->prov, TS_ERR_UNSUPPORTED,
                     "ECDH: no KDF is offered with key-store keys; derive from the secret");
        return 0;
    }
    return 1;
}

static const OSSL_PARAM *kex_settable_ctx_params(void *vctx, void *provctx)
{
    static const OSSL_PARAM settable[] = {
        OSSL_PARAM_int(OSSL_EXCHANGE_PARAM_EC_ECDH_COFACTOR_MODE, NULL),
        OSSL_PARAM_utf8_string(OSSL_EXCHANGE_PARAM_KDF_TYPE, NULL, 0),
        OSSL_PARAM_END,
    };
    (void)vctx;
    (void)provctx;
    return settable;
}

static int kex_init(void *vctx, void *provkey, const OSSL_PARAM params[])
{
    kex_ctx *ctx = vctx;
    ts_prov_key *key = provkey;

    if (key == NULL || key->ks == NULL) {
        ts_prov_fail(ctx->prov, TS_ERR_WRONG_TYPE, "ECDH: needs a key-store key, not a public key");
        return 0;
    }
    ts_prov_key_free(ctx->key);
    ctx->key = ts_prov_key_up_ref(key);
    ts_prov_key_free(ctx->peer);
    ctx->peer = NULL;
    return kex_set_ctx_params(ctx, params);
}

static int kex_set_peer(void *vctx, void *provkey)
{
    kex_ctx *ctx = vctx;
    ts_prov_key *peer = provkey;

    if (ctx->key == NULL || peer == NULL || peer->curve == 0) {
        ts_prov_fail(ctx->prov, TS_ERR_STATE, "ECDH: no key or no peer");
        return 0;
    }
    if (peer->curve != ctx->key->curve) {
        ts_prov_fail(ctx->prov, TS_ERR_INVALID, "ECDH: peer key is on %s but key '%s' is on %s",
                     ts_curve_name(peer->curve), ctx->key->label, ts_curve_name(ctx->key->curve));
        return 0;
    }
    ts_prov_key_free(ctx->peer);
    ctx->peer = ts_prov_key_up_ref(peer);
    return 1;
}

static int kex_derive(void *vctx, unsigned char *secret, size_t *secretlen, size_t outlen)
{
    kex_ctx *ctx = vctx;
    size_t len = outlen;
    ts_err rv;

    if (ctx->key == NULL || ctx->peer == NULL) {
        ts_prov_fail(ctx->prov, TS_ERR_STATE, "ECDH: no key or no peer");
        return 0;
    }
    if (secret == NULL) {
        *secretlen = ctx->key->secret_len;
        return 1;
    }
    if (outlen < ctx->key->secret_len) {
        ts_prov_fail(ctx->prov, TS_ERR_INVALID, "ECDH: a %zu-byte buffer is too small for %zu",
                     outlen, ctx->key->secret_len);
        return 0;
    }
    rv = ts_keystore_derive(ctx->key->ks, ctx->key->label, ctx->peer->pub, secret, &len);
    if (rv != TS_OK) {
        ts_prov_report(ctx->prov, rv);
        return 0;
    }
    *secretlen = len;
    return 1;
}

const OSSL_DISPATCH ts_prov_keyexch_functions[] = {
    {OSSL_FUNC_KEYEXCH_NEWCTX, (void (*)(void))kex_newctx},
    {OSSL_FUNC_KEYEXCH_FREECTX, (void (*)(void))kex_freectx},
    {OSSL_FUNC_KEYEXCH_DUPCTX, (void (*)(void))kex_dupctx},
    {OSSL_FUNC_KEYEXCH_INIT, (void (*)(void))kex_init},
    {OSSL_FUNC_KEYEXCH_SET_PEER, (void (*)(void))kex_set_peer},
    {OSSL_FUNC_KEYEXCH_DERIVE, (void (*)(void))kex_derive},
    {OSSL_FUNC_KEYEXCH_SET_CTX_PARAMS, (void (*)(void))kex_set_ctx_params},
    {OSSL_FUNC_KEYEXCH_SETTABLE_CTX_PARAMS, (void (*)(void))kex_settable_ctx_params},
    {0, NULL},
};
