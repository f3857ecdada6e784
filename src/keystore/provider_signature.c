/*
 * The provider's ECDSA: signing inside the key store, verification with the cached public key.
 *
 * The provider hashes (in its own library context) and the store signs the digest, so the key
 * never leaves the store and the store sees 32 to 64 bytes per signature whatever the message
 * size. The signing path allocates nothing beyond what OpenSSL's own contexts need: the digest
 * is borrowed from the provider, the message-digest context is made once per operation context
 * and reused by one-shot signatures, and the signature is written straight into the caller's
 * buffer when it is big enough.
 */
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/objects.h>
#include <openssl/params.h>
#include <openssl/x509.h>

#include "common/error_internal.h"
#include "keystore/provider_internal.h"

enum { SIG_AID_MAX = 32 }; /* an ECDSA AlgorithmIdentifier is 12 bytes */

typedef struct sig_ctx {
    ts_prov_ctx *prov;
    ts_prov_key *key;
    int verify;         /* 0: sign; 1: verify */
    int digest_op;      /* set by digest_*_init: the digest may no longer change */
    int finished;       /* mdctx was finalised: the next message restarts it */
    const EVP_MD *md;   /* borrowed from prov->digests, or NULL (raw digests of any size) */
    EVP_MD_CTX *mdctx;  /* digest_* operations */
    EVP_PKEY_CTX *vctx; /* verification with key->pub */
} sig_ctx;

static void *sig_newctx(void *provctx, const char *propq)
{
    sig_ctx *ctx = OPENSSL_zalloc(sizeof *ctx);
    (void)propq;
    if (ctx == NULL) {
        ts_prov_fail(provctx, TS_ERR_NOMEM, "out of memory for a signature context");
        return NULL;
    }
    ctx->prov = provctx;
    return ctx;
}

static void sig_freectx(void *vctx)
{
    sig_ctx *ctx = vctx;
    if (ctx == NULL) {
        return;
    }
    EVP_MD_CTX_free(ctx->mdctx);
    EVP_PKEY_CTX_free(ctx->vctx);
    ts_prov_key_free(ctx->key);
    OPENSSL_free(ctx);
}

static void *sig_dupctx(void *vsrc)
{
    const sig_ctx *src = vsrc;
    sig_ctx *ctx = sig_newctx(src->prov, NULL);

    if (ctx == NULL) {
        return NULL;
    }
    ctx->key = ts_prov_key_up_ref(src->key);
    ctx->verify = src->verify;
    ctx->digest_op = src->digest_op;
    ctx->finished = src->finished;
    ctx->md = src->md;
    if (src->mdctx != NULL) {
        ctx->mdctx = EVP_MD_CTX_new();
        if (ctx->mdctx == NULL || (EVP_MD_CTX_get0_md(src->mdctx) != NULL &&
                                   !EVP_MD_CTX_copy_ex(ctx->mdctx, src->mdctx))) {
            goto fail;
        }
    }
    if (src->vctx != NULL) {
        ctx->vctx = EVP_PKEY_CTX_dup(src->vctx);
        if (ctx->vctx == NULL) {
            goto fail;
        }
    }
    return ctx;
fail:
    ts_prov_fail_openssl(src->prov, TS_ERR_CRYPTO, "cannot copy a signature context");
    sig_freectx(ctx);
    return NULL;
}

static int sig_set_digest(sig_ctx *ctx, const char *name)
{
    const EVP_MD *md = ts_prov_digest(ctx->prov, name);
    if (md == NULL) {
        ts_prov_fail(ctx->prov, TS_ERR_UNSUPPORTED,
                     "ECDSA with digest %s is not offered: use SHA-224, SHA-256, SHA-384 or "
                     "SHA-512",
                     name);
        return 0;
    }
    ctx->md = md;
    return 1;
}

static int sig_set_ctx_params(void *vctx, const OSSL_PARAM params[])
{
    sig_ctx *ctx = vctx;
    const OSSL_PARAM *p = OSSL_PARAM_locate_const(params, OSSL_SIGNATURE_PARAM_DIGEST);
    const char *name = NULL;

    if (p == NULL) {
        return 1;
    }
    if (!OSSL_PARAM_get_utf8_string_ptr(p, &name)) {
        return 0;
    }
    if (ctx->digest_op && (ctx->md == NULL || !EVP_MD_is_a(ctx->md, name))) {
        ts_prov_fail(ctx->prov, TS_ERR_STATE, "the digest cannot change once hashing started");
        return 0;
    }
    return sig_set_digest(ctx, name);
}

static const OSSL_PARAM *sig_settable_ctx_params(void *vctx, void *provctx)
{
    static const OSSL_PARAM settable[] = {
        OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_DIGEST, NULL, 0),
        OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PROPERTIES, NULL, 0),
        OSSL_PARAM_END,
    };
    (void)vctx;
    (void)provctx;
    return settable;
}

/*
 * The signature's AlgorithmIdentifier, for X509_sign_ctx and friends. RFC 5758 section 3.2:
 * for ecdsa-with-SHA224/256/384/512 "the encoding MUST omit the parameters field".
 */
static int sig_algorithm_id(const sig_ctx *ctx, OSSL_PARAM *p)
{
    unsigned char der[SIG_AID_MAX];
    unsigned char *out = der;
    X509_ALGOR *alg = NULL;
    int sig_nid = NID_undef, len, ok = 0;

    if (ctx->md == NULL ||
        !OBJ_find_sigid_by_algs(&sig_nid, EVP_MD_get_type(ctx->md), NID_X9_62_id_ecPublicKey)) {
        ts_prov_fail(ctx->prov, TS_ERR_STATE, "no digest set: the signature algorithm is unknown");
        return 0;
    }
    alg = X509_ALGOR_new();
    if (alg == NULL || !X509_ALGOR_set0(alg, OBJ_nid2obj(sig_nid), V_ASN1_UNDEF, NULL)) {
        goto done;
    }
    len = i2d_X509_ALGOR(alg, NULL);
    if (len <= 0 || (size_t)len > sizeof der || i2d_X509_ALGOR(alg, &out) != len) {
        goto done;
    }
    ok = OSSL_PARAM_set_octet_string(p, der, (size_t)len);
done:
    if (!ok) {
        ts_prov_fail_openssl(ctx->prov, TS_ERR_CRYPTO, "cannot encode the signature algorithm");
    }
    X509_ALGOR_free(alg);
    return ok;
}

static int sig_get_ctx_params(void *vctx, OSSL_PARAM params[])
{
    sig_ctx *ctx = vctx;
    OSSL_PARAM *p;

    p = OSSL_PARAM_locate(params, OSSL_SIGNATURE_PARAM_ALGORITHM_ID);
    if (p != NULL && !sig_algorithm_id(ctx, p)) {
        return 0;
    }
    p = OSSL_PARAM_locate(params, OSSL_SIGNATURE_PARAM_DIGEST);
    if (p != NULL && ctx->md != NULL && !OSSL_PARAM_set_utf8_string(p, EVP_MD_get0_name(ctx->md))) {
        return 0;
    }
    p = OSSL_PARAM_locate(params, OSSL_SIGNATURE_PARAM_DIGEST_SIZE);
    if (p != NULL && ctx->md != NULL &&
        !OSSL_PARAM_set_size_t(p, (size_t)EVP_MD_get_size(ctx->md))) {
        return 0;
    }
    return 1;
}

static const OSSL_PARAM *sig_gettable_ctx_params(void *vctx, void *provctx)
{
    static const OSSL_PARAM gettable[] = {
        OSSL_PARAM_octet_string(OSSL_SIGNATURE_PARAM_ALGORITHM_ID, NULL, 0),
        OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_DIGEST, NULL, 0),
        OSSL_PARAM_size_t(OSSL_SIGNATURE_PARAM_DIGEST_SIZE, NULL),
        OSSL_PARAM_END,
    };
    (void)vctx;
    (void)provctx;
    return gettable;
}

/* --- init ----------------------------------------------------------------------------------- */

/* provkey NULL re-initialises with the key (and digest) already set, as EVP_DigestSignInit_ex()
 * does when called again without a key. */
static int sig_init(sig_ctx *ctx, void *provkey, int verify, const OSSL_PARAM params[])
{
    ts_prov_key *key = provkey != NULL ? provkey : ctx->key;

    if (key == NULL || key->curve == 0) {
        ts_prov_fail(ctx->prov, TS_ERR_INVALID, "ECDSA: no key");
        return 0;
    }
    if (!verify && key->ks == NULL) {
        ts_prov_fail(ctx->prov, TS_ERR_WRONG_TYPE, "ECDSA: a public key cannot sign");
        return 0;
    }
    if (ctx->key != key) {
        ts_prov_key_free(ctx->key);
        ctx->key = ts_prov_key_up_ref(key);
        EVP_PKEY_CTX_free(ctx->vctx);
        ctx->vctx = NULL;
    }
    if (provkey != NULL) {
        ctx->md = NULL;
    }
    ctx->verify = verify;
    ctx->digest_op = 0;
    ctx->finished = 0;
    if (verify && ctx->vctx == NULL) {
        ctx->vctx = EVP_PKEY_CTX_new_from_pkey(ctx->prov->libctx, key->pub, NULL);
        if (ctx->vctx == NULL || EVP_PKEY_verify_init(ctx->vctx) != 1) {
            ts_prov_fail_openssl(ctx->prov, TS_ERR_CRYPTO, "ECDSA: cannot set up verification");
            return 0;
        }
    }
    return sig_set_ctx_params(ctx, params);
}

static int sig_sign_init(void *vctx, void *provkey, const OSSL_PARAM params[])
{
    return sig_init(vctx, provkey, 0, params);
}

static int sig_verify_init(void *vctx, void *provkey, const OSSL_PARAM params[])
{
    return sig_init(vctx, provkey, 1, params);
}

static int sig_digest_init(sig_ctx *ctx, const char *mdname, void *provkey, int verify,
                           const OSSL_PARAM params[])
{
    if (!sig_init(ctx, provkey, verify, params)) {
        return 0;
    }
    if (mdname != NULL && mdname[0] != '\0') {
        if (!sig_set_digest(ctx, mdname)) {
            return 0;
        }
    } else if (ctx->md == NULL) {
        /* OpenSSL's default for EC keys, so verifiers that name no digest agree. */
        ctx->md = ts_prov_digest(ctx->prov, "SHA2-256");
    }
    if (ctx->mdctx == NULL) {
        ctx->mdctx = EVP_MD_CTX_new();
    }
    if (ctx->mdctx == NULL || !EVP_DigestInit_ex2(ctx->mdctx, ctx->md, NULL)) {
        ts_prov_fail_openssl(ctx->prov, TS_ERR_CRYPTO, "ECDSA: cannot start the digest");
        return 0;
    }
    ctx->digest_op = 1;
    ctx->finished = 0;
    return 1;
}

static int sig_digest_sign_init(void *vctx, const char *mdname, void *provkey,
                                const OSSL_PARAM params[])
{
    return sig_digest_init(vctx, mdname, provkey, 0, params);
}

static int sig_digest_verify_init(void *vctx, const char *mdname, void *provkey,
                                  const OSSL_PARAM params[])
{
    return sig_digest_init(vctx, mdname, provkey, 1, params);
}

/* --- raw digests ---------------------------------------------------------------------------- */

static int sig_check_tbs(sig_ctx *ctx, size_t tbslen)
{
    if (ctx->md != NULL && tbslen != (size_t)EVP_MD_get_size(ctx->md)) {
        ts_prov_fail(ctx->prov, TS_ERR_INVALID, "ECDSA: a %zu-byte input is not a %s digest",
                     tbslen, EVP_MD_get0_name(ctx->md));
        return 0;
    }
    return 1;
}

static int sig_sign(void *vctx, unsigned char *sig, size_t *siglen, size_t sigsize,
                    const unsigned char *tbs, size_t tbslen)
{
    sig_ctx *ctx = vctx;
    const ts_prov_key *key = ctx->key;
    uint8_t local[TS_SIGNATURE_MAX];
    size_t len;
    ts_err rv;

    if (key == NULL || key->ks == NULL || ctx->verify) {
        ts_prov_fail(ctx->prov, TS_ERR_STATE, "ECDSA: not initialised for signing");
        return 0;
    }
    if (sig == NULL) {
        *siglen = key->sig_max;
        return 1;
    }
    if (!sig_check_tbs(ctx, tbslen)) {
        return 0;
    }
    /* The DER length varies with the values of r and s: sign into a scratch buffer only when the
     * caller's might be too small for the longest. */
    if (sigsize >= key->sig_max) {
        len = sigsize;
        rv = ts_keystore_sign_digest(key->ks, key->label, tbs, tbslen, sig, &len);
    } else {
        len = sizeof local;
        rv = ts_keystore_sign_digest(key->ks, key->label, tbs, tbslen, local, &len);
        if (rv == TS_OK && len > sigsize) {
            rv = ts_error_set(TS_ERR_INVALID, "ECDSA: a %zu-byte buffer is too small", sigsize);
        }
        if (rv == TS_OK) {
            memcpy(sig, local, len);
        }
    }
    if (rv != TS_OK) {
        ts_prov_report(ctx->prov, rv);
        return 0;
    }
    *siglen = len;
    return 1;
}

static int sig_verify(void *vctx, const unsigned char *sig, size_t siglen, const unsigned char *tbs,
                      size_t tbslen)
{
    sig_ctx *ctx = vctx;

    if (ctx->vctx == NULL || !ctx->verify) {
        ts_prov_fail(ctx->prov, TS_ERR_STATE, "ECDSA: not initialised for verification");
        return 0;
    }
    if (!sig_check_tbs(ctx, tbslen)) {
        return 0;
    }
    return EVP_PKEY_verify(ctx->vctx, sig, siglen, tbs, tbslen) == 1;
}

/* --- messages ------------------------------------------------------------------------------- */

/* Restarts the digest after a signature, so one context signs many messages. */
static int sig_digest_ready(sig_ctx *ctx)
{
    if (!ctx->digest_op) {
        ts_prov_fail(ctx->prov, TS_ERR_STATE, "ECDSA: no digest operation started");
        return 0;
    }
    if (ctx->finished) {
        if (!EVP_DigestInit_ex2(ctx->mdctx, ctx->md, NULL)) {
            ts_prov_fail_openssl(ctx->prov, TS_ERR_CRYPTO, "ECDSA: cannot restart the digest");
            return 0;
        }
        ctx->finished = 0;
    }
    return 1;
}

static int sig_digest_update(void *vctx, const unsigned char *data, size_t datalen)
{
    sig_ctx *ctx = vctx;

    if (!sig_digest_ready(ctx)) {
        return 0;
    }
    return EVP_DigestUpdate(ctx->mdctx, data, datalen);
}

/* Hashes what was fed since the last signature. */
static int sig_digest_final(sig_ctx *ctx, unsigned char *md, unsigned int *mdlen)
{
    if (!sig_digest_ready(ctx)) {
        return 0;
    }
    ctx->finished = 1;
    if (!EVP_DigestFinal_ex(ctx->mdctx, md, mdlen)) {
        ts_prov_fail_openssl(ctx->prov, TS_ERR_CRYPTO, "ECDSA: hashing failed");
        return 0;
    }
    return 1;
}

static int sig_digest_sign_final(void *vctx, unsigned char *sig, size_t *siglen, size_t sigsize)
{
    sig_ctx *ctx = vctx;
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int dlen = 0;

    if (sig == NULL) {
        return sig_sign(ctx, NULL, siglen, 0, NULL, 0);
    }
    if (!sig_digest_final(ctx, digest, &dlen)) {
        return 0;
    }
    return sig_sign(ctx, sig, siglen, sigsize, digest, dlen);
}

static int sig_digest_verify_final(void *vctx, const unsigned char *sig, size_t siglen)
{
    sig_ctx *ctx = vctx;
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int dlen = 0;

    if (!sig_digest_final(ctx, digest, &dlen)) {
        return 0;
    }
    return sig_verify(ctx, sig, siglen, digest, dlen);
}

/* One-shot forms: EVP_DigestSign() and EVP_DigestVerify() use them and so skip the context copy
 * that EVP_DigestSignFinal() makes. */
static int sig_digest_sign(void *vctx, unsigned char *sig, size_t *siglen, size_t sigsize,
                           const unsigned char *tbs, size_t tbslen)
{
    sig_ctx *ctx = vctx;

    if (sig == NULL) {
        return sig_sign(ctx, NULL, siglen, 0, NULL, 0);
    }
    if (!sig_digest_update(ctx, tbs, tbslen)) {
        return 0;
    }
    return sig_digest_sign_final(ctx, sig, siglen, sigsize);
}

static int sig_digest_verify(void *vctx, const unsigned char *sig, size_t siglen,
                             const unsigned char *tbs, size_t tbslen)
{
    sig_ctx *ctx = vctx;

    if (!sig_digest_update(ctx, tbs, tbslen)) {
        return 0;
    }
    return sig_digest_verify_final(ctx, sig, siglen);
}

const OSSL_DISPATCH ts_prov_signature_functions[] = {
    {OSSL_FUNC_SIGNATURE_NEWCTX, (void (*)(void))sig_newctx},
    {OSSL_FUNC_SIGNATURE_FREECTX, (void (*)(void))sig_freectx},
    {OSSL_FUNC_SIGNATURE_DUPCTX, (void (*)(void))sig_dupctx},
    {OSSL_FUNC_SIGNATURE_SIGN_INIT, (void (*)(void))sig_sign_init},
    {OSSL_FUNC_SIGNATURE_SIGN, (void (*)(void))sig_sign},
    {OSSL_FUNC_SIGNATURE_VERIFY_INIT, (void (*)(void))sig_verify_init},
    {OSSL_FUNC_SIGNATURE_VERIFY, (void (*)(void))sig_verify},
    {OSSL_FUNC_SIGNATURE_DIGEST_SIGN_INIT, (void (*)(void))sig_digest_sign_init},
    {OSSL_FUNC_SIGNATURE_DIGEST_SIGN_UPDATE, (void (*)(void))sig_digest_update},
    {OSSL_FUNC_SIGNATURE_DIGEST_SIGN_FINAL, (void (*)(void))sig_digest_sign_final},
    {OSSL_FUNC_SIGNATURE_DIGEST_SIGN, (void (*)(void))sig_digest_sign},
    {OSSL_FUNC_SIGNATURE_DIGEST_VERIFY_INIT, (void (*)(void))sig_digest_verify_init},
    {OSSL_FUNC_SIGNATURE_DIGEST_VERIFY_UPDATE, (void (*)(void))sig_digest_update},
    {OSSL_FUNC_SIGNATURE_DIGEST_VERIFY_FINAL, (void (*)(void))sig_digest_verify_final},
    {OSSL_FUNC_SIGNATURE_DIGEST_VERIFY, (void (*)(void))sig_digest_verify},
    {OSSL_FUNC_SIGNATURE_GET_CTX_PARAMS, (void (*)(void))sig_get_ctx_params},
    {OSSL_FUNC_SIGNATURE_GETTABLE_CTX_PARAMS, (void (*)(void))sig_gettable_ctx_params},
    {OSSL_FUNC_SIGNATURE_SET_CTX_PARAMS, (void (*)(void))sig_set_ctx_params},
    {OSSL_FUNC_SIGNATURE_SETTABLE_CTX_PARAMS, (void (*)(void))sig_settable_ctx_params},
    {0, NULL},
};
