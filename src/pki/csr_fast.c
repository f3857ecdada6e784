/*
 * Parsing EC certificate requests without OpenSSL 3.0's per-call decoder set-up.
 *
 * OpenSSL 3.0 decodes the public key of every parsed request and certificate through a decoder
 * chain that it builds anew for each call by walking every decoder and key manager of the
 * library context; on a CA issuing in bulk that set-up costs more than verifying the request and
 * signing the certificate together. Setting a provider key into a certificate (X509_set_pubkey)
 * builds an encoder chain and then a decoder chain again. For the curves profiles allow, this
 * file does the same work directly: the request is parsed in a library context that has no key
 * decoders (so the structure is read but its key left alone), the key is read from the
 * subjectPublicKey point onto a prepared key of the named curve, and put back into the request.
 * The result is accepted only when it is exactly what was parsed: the to-be-signed bytes,
 * SubjectPublicKeyInfo included, re-encode identically. Anything else returns 0 and the caller
 * takes the general path, which reports errors as it always did.
 */
#include <string.h>

#include <openssl/asn1.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/provider.h>
#include <openssl/x509.h>

#include "pki/pki_internal.h"

static const struct {
    int nid;
    const char *group;
} fast_curves[] = {
    {NID_X9_62_prime256v1, "prime256v1"},
    {NID_secp384r1, "secp384r1"},
    {NID_secp521r1, "secp521r1"},
};
enum { FAST_CURVES = sizeof fast_curves / sizeof fast_curves[0] };

static CRYPTO_ONCE fast_once = CRYPTO_ONCE_STATIC_INIT;
static OSSL_LIB_CTX *no_decoders;             /* only the null provider */
static EVP_PKEY *curve_template[FAST_CURVES]; /* public only: the generator as the point */

/* A public-only key of the curve whose point is the generator, in the form d2i_PublicKey()
 * fills in: the prepared key that each request's point is read onto. */
static EVP_PKEY *template_make(const char *group)
{
    EVP_PKEY *gen = EVP_PKEY_Q_keygen(NULL, NULL, "EC", group);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    EVP_PKEY *pub = NULL, *out = NULL;
    unsigned char point[1 + 2 * 66];
    size_t len = 0;
    OSSL_PARAM params[3];

    /* The generated key's public point stands in for any valid point of the curve; only the
     * public half is kept, so no private key can reach a request's key. */
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
    if (pub != NULL) {
        const unsigned char *p = point;
        out = d2i_PublicKey(EVP_PKEY_EC, &pub, &p, (long)len);
        if (out == NULL) {
            EVP_PKEY_free(pub);
        }
    }
    EVP_PKEY_free(gen);
    EVP_PKEY_CTX_free(ctx);
    return out;
}

static void fast_init(void)
{
    OSSL_LIB_CTX *ctx = OSSL_LIB_CTX_new();

    ERR_set_mark();
    if (ctx == NULL || OSSL_PROVIDER_load(ctx, "null") == NULL) {
        OSSL_LIB_CTX_free(ctx);
        ERR_pop_to_mark();
        return;
    }
    for (size_t i = 0; i < FAST_CURVES; i++) {
        curve_template[i] = template_make(fast_curves[i].group);
    }
    ERR_pop_to_mark();
    no_decoders = ctx;
}

/* The request's key read onto the prepared key of its named curve; NULL when the key is not
 * an EC key on one of those curves with namedCurve parameters. */
static EVP_PKEY *fast_key(X509_PUBKEY *spki)
{
    ASN1_OBJECT *alg = NULL;
    const unsigned char *point = NULL;
    int point_len = 0, ptype = 0;
    const void *pval = NULL;
    X509_ALGOR *algor = NULL;
    EVP_PKEY *key = NULL, *out;
    size_t i = 0;

    if (!X509_PUBKEY_get0_param(&alg, &point, &point_len, &algor, spki) ||
        OBJ_obj2nid(alg) != NID_X9_62_id_ecPublicKey || point_len <= 0) {
        return NULL;
    }
    X509_ALGOR_get0(NULL, &ptype, &pval, algor);
    if (ptype != V_ASN1_OBJECT) {
        return NULL;
    }
    while (i < FAST_CURVES && fast_curves[i].nid != OBJ_obj2nid(pval)) {
        i++;
    }
    if (i == FAST_CURVES || curve_template[i] == NULL) {
        return NULL;
    }
    key = EVP_PKEY_dup(curve_template[i]);
    if (key == NULL) {
        return NULL;
    }
    /* Reads the point onto key's curve, checking that it lies on it. */
    out = d2i_PublicKey(EVP_PKEY_EC, &key, &point, point_len);
    if (out == NULL) {
        EVP_PKEY_free(key);
    }
    return out;
}

/* The span of the request's certificationRequestInfo (RFC 2986 section 4.2) inside der. */
static int tbs_span(const uint8_t *der, size_t len, const unsigned char **tbs, long *tbs_len)
{
    const unsigned char *p = der;
    long body = 0, inner = 0;
    int tag = 0, xclass = 0;
    int ret = ASN1_get_object(&p, &body, &tag, &xclass, (long)len);

    if ((ret & 0x80) != 0 || ret != V_ASN1_CONSTRUCTED || tag != V_ASN1_SEQUENCE) {
        return 0;
    }
    *tbs = p;
    ret = ASN1_get_object(&p, &inner, &tag, &xclass, body);
    if ((ret & 0x80) != 0 || ret != V_ASN1_CONSTRUCTED || tag != V_ASN1_SEQUENCE) {
        return 0;
    }
    *tbs_len = (long)(p - *tbs) + inner;
    return 1;
}

int ts_pki_csr_decode_keyless(const uint8_t *der, size_t len, X509_REQ **req_out,
                              EVP_PKEY **key_out, const unsigned char **tbs, size_t *tbs_len)
{
    const unsigned char *p = der, *span = NULL;
    long span_len = 0;
    X509_REQ *req = NULL;
    EVP_PKEY *key = NULL;

    *req_out = NULL;
    *key_out = NULL;
    if (!CRYPTO_THREAD_run_once(&fast_once, fast_init) || no_decoders == NULL || len > TS_CSR_MAX ||
        !tbs_span(der, len, &span, &span_len)) {
        return 0;
    }
    ERR_set_mark();
    req = (X509_REQ *)ASN1_item_d2i_ex(NULL, &p, (long)len, ASN1_ITEM_rptr(X509_REQ), no_decoders,
                                       NULL);
    if (req != NULL && p == der + len && X509_REQ_get_version(req) == 0) {
        key = fast_key(X509_REQ_get_X509_PUBKEY(req));
    }
    ERR_pop_to_mark();
    if (key == NULL) {
        X509_REQ_free(req);
        return 0;
    }
    *req_out = req;
    *key_out = key;
    *tbs = span;
    *tbs_len = (size_t)span_len;
    return 1;
}

int ts_pki_csr_decode_fast(const uint8_t *der, size_t len, X509_REQ **out)
{
    const unsigned char *tbs = NULL;
    unsigned char *tbs_der = NULL;
    size_t tbs_len = 0;
    int new_tbs_len, ok = 0;
    X509_REQ *req = NULL;
    EVP_PKEY *key = NULL;

    *out = NULL;
    if (!ts_pki_csr_decode_keyless(der, len, &req, &key, &tbs, &tbs_len)) {
        return 0;
    }
    ERR_set_mark();
    if (!X509_REQ_set_pubkey(req, key)) {
        goto done;
    }
    /* The signature is checked over the re-encoded request: it must be the bytes received. That
     * comparison covers the SubjectPublicKeyInfo, which setting the key encoded anew. */
    new_tbs_len = i2d_re_X509_REQ_tbs(req, &tbs_der);
    ok = new_tbs_len > 0 && (size_t)new_tbs_len == tbs_len &&
         memcmp(tbs_der, tbs, (size_t)new_tbs_len) == 0;
done:
    ERR_pop_to_mark();
    OPENSSL_free(tbs_der);
    EVP_PKEY_free(key);
    if (!ok) {
        X509_REQ_free(req);
        return 0;
    }
    *out = req;
    return 1;
}
