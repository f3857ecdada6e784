/*
 * The key a certificate request's signature is verified with.
 *
 * A request's key as parsed (csr_fast.c gives a legacy EC key, which is what makes setting it
 * into the certificate cheap) is not a key of any provider. OpenSSL 3.0 verifies only with
 * provider keys, so at each verification it exports the legacy key and imports it into the
 * default provider, and the import builds the curve's group from its name again: prime field,
 * order and Montgomery constants for every request, which costs a good part of a verification.
 *
 * Here the verification key is made directly in the default provider of the library context the
 * signature is checked in: a prepared public-only key of the request's named curve (made once)
 * is duplicated, which shares the curve's prepared group, and the request's subjectPublicKey
 * point is set on it; the provider reads the point and checks that it lies on the curve, as the
 * parser does. Keys that are not EC keys with namedCurve parameters on one of those curves get
 * NULL, and the caller verifies with the request's own key. For many requests, the keys are kept
 * per curve, and so are verification contexts made on them (ts_pki_verify_keys_check()).
 */
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509.h>

#include "pki/pki_internal.h"
#include "tessera/provider.h"

static const struct {
    int nid;
    const char *group;
} verify_curves[] = {
    {NID_X9_62_prime256v1, "prime256v1"},
    {NID_secp384r1, "secp384r1"},
    {NID_secp521r1, "secp521r1"},
};
enum { VERIFY_CURVES = sizeof verify_curves / sizeof verify_curves[0] };

static CRYPTO_ONCE verify_once = CRYPTO_ONCE_STATIC_INIT;
static EVP_PKEY *verify_template[VERIFY_CURVES]; /* public only: a generated key's point */

/* A public-only key of the curve in libctx's default provider. The generated key's point stands
 * in for any point of the curve; its private half is dropped here, so no private key can reach a
 * request's verification key. */
static EVP_PKEY *template_make(OSSL_LIB_CTX *libctx, const char *group)
{
    EVP_PKEY *gen = EVP_PKEY_Q_keygen(libctx, NULL, "EC", group);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(libctx, "EC", NULL);
    EVP_PKEY *pub = NULL;
    unsigned char point[1 + 2 * 66];
    size_t len = 0;
    OSSL_PARAM params[3];

    if (gen != NULL && ctx != NULL &&
        EVP_PKEY_get_octet_string_param(gen, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, point,
                                        sizeof point, &len) == 1) {
        params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)group, 0);
        params[1] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, point, len);
        params[2] = OSSL_PARAM_construct_end();
        if (EVP_PKEY_fromdata_init(ctx) != 1 ||
            EVP_PKEY_fromdata(ctx, &pub, EVP_PKEY_PUBLIC_KEY, params) != 1) {
            pub = NULL;
        }
    }
    EVP_PKEY_free(gen);
    EVP_PKEY_CTX_free(ctx);
    return pub;
}

static void verify_init(void)
{
    OSSL_LIB_CTX *libctx = ts_provider_libctx();

    if (libctx == NULL) {
        return;
    }
    ERR_set_mark();
    for (size_t i = 0; i < VERIFY_CURVES; i++) {
        verify_template[i] = template_make(libctx, verify_curves[i].group);
    }
    ERR_pop_to_mark();
}

/* The index of the request's curve in verify_curves and its subjectPublicKey point; -1 when the
 * key is not an EC key with namedCurve parameters on one of those curves. */
static int curve_of(X509_REQ *csr, const unsigned char **point, int *point_len)
{
    ASN1_OBJECT *alg = NULL;
    int ptype = 0, i = 0;
    const void *pval = NULL;
    X509_ALGOR *algor = NULL;

    if (!CRYPTO_THREAD_run_once(&verify_once, verify_init) ||
        !X509_PUBKEY_get0_param(&alg, point, point_len, &algor, X509_REQ_get_X509_PUBKEY(csr)) ||
        OBJ_obj2nid(alg) != NID_X9_62_id_ecPublicKey || *point_len <= 0) {
        return -1;
    }
    X509_ALGOR_get0(NULL, &ptype, &pval, algor);
    if (ptype != V_ASN1_OBJECT) {
        return -1;
    }
    while (i < VERIFY_CURVES && verify_curves[i].nid != OBJ_obj2nid(pval)) {
        i++;
    }
    return i < VERIFY_CURVES && verify_template[i] != NULL ? i : -1;
}

/* Sets the point on key; the provider decodes it and refuses one that is not on the curve. */
static int set_point(EVP_PKEY *key, const unsigned char *point, int point_len)
{
    ERR_set_mark();
    int ok = EVP_PKEY_set_octet_string_param(key, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, point,
                                             (size_t)point_len) == 1;
    ERR_pop_to_mark();
    return ok;
}

EVP_PKEY *ts_pki_csr_verify_key(X509_REQ *csr)
{
    const unsigned char *point = NULL;
    int point_len = 0;
    int i = curve_of(csr, &point, &point_len);
    EVP_PKEY *key = i >= 0 ? EVP_PKEY_dup(verify_template[i]) : NULL;

    if (key != NULL && !set_point(key, point, point_len)) {
        EVP_PKEY_free(key);
        key = NULL;
    }
    return key;
}

/* The digests of the ECDSA signature algorithms a prepared verification context is made for. */
static const struct {
    int nid;
    const char *name;
} verify_digests[] = {
    {NID_sha256, "SHA256"},
    {NID_sha384, "SHA384"},
    {NID_sha512, "SHA512"},
};
enum { VERIFY_DIGESTS = sizeof verify_digests / sizeof verify_digests[0] };

/*
 * Duplicating the prepared key copies its curve's group (field, order, Montgomery constants),
 * which costs a tenth of a verification. A set of verification keys for many requests makes
 * one key per curve and sets each request's point on it in turn: the key is only ever used for
 * one verification at a time, by one thread, and holds nothing secret.
 *
 * A verification context holds the key it was made with: the provider's context shares the key's
 * data, so a copy of it verifies with whatever point the key holds at the time. Each curve's
 * contexts are made with that curve's key, and dropped with it.
 */
struct ts_pki_verify_keys {
    EVP_PKEY *key[VERIFY_CURVES];
    EVP_MD_CTX *ctx[VERIFY_CURVES][VERIFY_DIGESTS]; /* initialised, never used to verify */
};

static void curve_drop(ts_pki_verify_keys *keys, int i)
{
    for (size_t d = 0; d < VERIFY_DIGESTS; d++) {
        EVP_MD_CTX_free(keys->ctx[i][d]);
        keys->ctx[i][d] = NULL;
    }
    EVP_PKEY_free(keys->key[i]);
    keys->key[i] = NULL;
}

ts_pki_verify_keys *ts_pki_verify_keys_new(void)
{
    return OPENSSL_zalloc(sizeof(ts_pki_verify_keys));
}

void ts_pki_verify_keys_free(ts_pki_verify_keys *keys)
{
    if (keys == NULL) {
        return;
    }
    for (int i = 0; i < VERIFY_CURVES; i++) {
        curve_drop(keys, i);
    }
    OPENSSL_free(keys);
}

/* The key of curve i with point set on it; NULL when the point is not on the curve. */
static EVP_PKEY *curve_key(ts_pki_verify_keys *keys, int i, const unsigned char *point,
                           int point_len)
{
    if (keys->key[i] == NULL) {
        keys->key[i] = EVP_PKEY_dup(verify_template[i]);
    }
    /* A key whose point could not be set is dropped: it is made again for the next request. */
    if (keys->key[i] != NULL && !set_point(keys->key[i], point, point_len)) {
        curve_drop(keys, i);
    }
    return keys->key[i];
}

EVP_PKEY *ts_pki_verify_keys_get(ts_pki_verify_keys *keys, X509_REQ *csr)
{
    const unsigned char *point = NULL;
    int point_len = 0;
    int i = curve_of(csr, &point, &point_len);

    return i >= 0 ? curve_key(keys, i, point, point_len) : NULL;
}

/* The index in verify_digests of the ECDSA algorithm csr is signed with; -1 for another. */
static int digest_of(X509_REQ *csr, const ASN1_BIT_STRING **sig)
{
    const X509_ALGOR *alg = NULL;
    int md = NID_undef, pk = NID_undef;

    X509_REQ_get0_signature(csr, sig, &alg);
    if (*sig == NULL || alg == NULL ||
        !OBJ_find_sigid_algs(OBJ_obj2nid(alg->algorithm), &md, &pk) ||
        pk != NID_X9_62_id_ecPublicKey) {
        return -1;
    }
    for (int d = 0; d < VERIFY_DIGESTS; d++) {
        if (verify_digests[d].nid == md) {
            return d;
        }
    }
    return -1;
}

int ts_pki_verify_keys_check(ts_pki_verify_keys *keys, X509_REQ *csr, const unsigned char *tbs,
                             size_t tbs_len)
{
    const unsigned char *point = NULL;
    const ASN1_BIT_STRING *sig = NULL;
    int point_len = 0, ok = -1;
    int i = curve_of(csr, &point, &point_len);
    int d = i >= 0 ? digest_of(csr, &sig) : -1;
    EVP_MD_CTX *ctx = NULL;

    /* A signature with unused bits is malformed; the general way says so. */
    if (d < 0 || (sig->flags & 0x07) != 0) {
        return -1;
    }
    EVP_PKEY *key = curve_key(keys, i, point, point_len);
    if (key == NULL) {
        return -1;
    }
    ERR_set_mark();
    if (keys->ctx[i][d] == NULL) {
        keys->ctx[i][d] = EVP_MD_CTX_new();
        if (keys->ctx[i][d] != NULL &&
            EVP_DigestVerifyInit_ex(keys->ctx[i][d], NULL, verify_digests[d].name,
                                    ts_provider_libctx(), NULL, key, NULL) != 1) {
            EVP_MD_CTX_free(keys->ctx[i][d]);
            keys->ctx[i][d] = NULL;
        }
    }
    ctx = keys->ctx[i][d] != NULL ? EVP_MD_CTX_new() : NULL;
    if (ctx != NULL && EVP_MD_CTX_copy_ex(ctx, keys->ctx[i][d]) == 1) {
        ok = EVP_DigestVerify(ctx, sig->data, (size_t)sig->length, tbs, tbs_len) == 1;
    }
    EVP_MD_CTX_free(ctx);
    ERR_pop_to_mark();
    return ok;
}
