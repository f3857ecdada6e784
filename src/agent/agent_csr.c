/* The enrollment request: PKCS#10 (RFC 2986) signed inside the key store, sent as base64 DER. */
#include <string.h>

#include <openssl/evp.h>
#include <openssl/x509v3.h>

#include "agent/agent_internal.h"
#include "common/error_internal.h"
#include "tessera/provider.h"

/* Base64 of DER in 64-character lines (RFC 7030 section 4.2.1; RFC 8951 section 3.2.2). */
static ts_err to_base64(const uint8_t *der, int len, char **out)
{
    EVP_ENCODE_CTX *ectx = EVP_ENCODE_CTX_new();
    size_t cap = (size_t)len / 48 * 65 + 72;
    char *b64 = OPENSSL_malloc(cap);
    int n = 0, fin = 0;

    *out = NULL;
    if (ectx == NULL || b64 == NULL) {
        EVP_ENCODE_CTX_free(ectx);
        OPENSSL_free(b64);
        return ts_error_set(TS_ERR_NOMEM, "out of memory");
    }
    EVP_EncodeInit(ectx);
    if (EVP_EncodeUpdate(ectx, (unsigned char *)b64, &n, der, len) != 1) {
        EVP_ENCODE_CTX_free(ectx);
        OPENSSL_free(b64);
        return ts_error_set_openssl(TS_ERR_CRYPTO, "cannot encode the request");
    }
    EVP_EncodeFinal(ectx, (unsigned char *)b64 + n, &fin);
    b64[n + fin] = '\0';
    EVP_ENCODE_CTX_free(ectx);
    *out = b64;
    return TS_OK;
}

/* A re-enrollment keeps the certificate's subjectAltNames (RFC 7030 section 4.2.2). */
static ts_err copy_sans(X509_REQ *req, X509 *from)
{
    int idx = X509_get_ext_by_NID(from, NID_subject_alt_name, -1);
    STACK_OF(X509_EXTENSION) *exts = NULL;
    ts_err rv = TS_OK;

    if (idx < 0) {
        return TS_OK;
    }
    exts = sk_X509_EXTENSION_new_null();
    if (exts == NULL || sk_X509_EXTENSION_push(exts, X509_get_ext(from, idx)) <= 0 ||
        X509_REQ_add_extensions(req, exts) != 1) {
        rv = ts_error_set_openssl(TS_ERR_CRYPTO, "cannot add subjectAltName to the request");
    }
    sk_X509_EXTENSION_free(exts); /* the extension belongs to the certificate */
    return rv;
}

ts_err agent_csr_make(ts_keystore *ks, const char *label, const X509_NAME *subject, X509 *san_from,
                      char **b64)
{
    return agent_csr_make_ex(ks, label, subject, san_from, NULL, b64);
}

ts_err agent_csr_make_ex(ts_keystore *ks, const char *label, const X509_NAME *subject,
                         X509 *san_from, const char *challenge, char **b64)
{
    OSSL_LIB_CTX *libctx = ts_provider_libctx();
    EVP_PKEY *pub = NULL, *key = NULL;
    EVP_MD_CTX *mctx = NULL;
    X509_REQ *req = NULL;
    uint8_t *der = NULL;
    int der_len;
    ts_err rv;

    *b64 = NULL;
    if (libctx == NULL) {
        return TS_ERR_CRYPTO; /* the message says why the provider did not load */
    }
    rv = ts_keystore_public_key(ks, label, &pub);
    if (rv == TS_OK) {
        rv = ts_keystore_evp_pkey(ks, label, &key);
    }
    if (rv != TS_OK) {
        goto done;
    }
    req = X509_REQ_new_ex(libctx, NULL);
    /* RFC 2986 section 4.1: version 0; the public half as a plain key. */
    if (req == NULL || X509_REQ_set_version(req, 0) != 1 ||
        X509_REQ_set_subject_name(req, subject) != 1 || X509_REQ_set_pubkey(req, pub) != 1) {
        rv = ts_error_set_openssl(TS_ERR_CRYPTO, "cannot build the request");
        goto done;
    }
    if (san_from != NULL) {
        rv = copy_sans(req, san_from);
        if (rv != TS_OK) {
            goto done;
        }
    }
    /* RFC 2985 section 5.4.1: challengePassword is a DirectoryString; base64 is printable. */
    if (challenge != NULL &&
        X509_REQ_add1_attr_by_NID(req, NID_pkcs9_challengePassword, MBSTRING_ASC,
                                  (const unsigned char *)challenge, -1) != 1) {
        rv = ts_error_set_openssl(TS_ERR_CRYPTO, "cannot add challengePassword to the request");
        goto done;
    }
    mctx = EVP_MD_CTX_new();
    if (mctx == NULL ||
        EVP_DigestSignInit_ex(mctx, NULL, EVP_PKEY_get_bits(pub) > 256 ? "SHA384" : "SHA256",
                              libctx, NULL, key, NULL) != 1 ||
        X509_REQ_sign_ctx(req, mctx) <= 0) {
        rv = ts_error_set_openssl(TS_ERR_CRYPTO, "cannot sign the request with key '%s'", label);
        goto done;
    }
    if (X509_REQ_verify(req, pub) != 1) {
        rv = ts_error_set_openssl(TS_ERR_CRYPTO, "the request signed by '%s' does not verify",
                                  label);
        goto done;
    }
    der_len = i2d_X509_REQ(req, &der);
    if (der_len <= 0) {
        rv = ts_error_set_openssl(TS_ERR_CRYPTO, "cannot encode the request");
        goto done;
    }
    rv = to_base64(der, der_len, b64);
done:
    OPENSSL_free(der);
    EVP_MD_CTX_free(mctx);
    X509_REQ_free(req);
    EVP_PKEY_free(key);
    EVP_PKEY_free(pub);
    return rv;
}
