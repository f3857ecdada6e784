/*
 * A batch: the per-request set-up of checking and issuing, made once for many requests.
 *
 * OpenSSL 3.0 builds a signing context by fetching the signature and digest implementations and
 * initialising the provider's operation; a copy of a prepared context skips all of that. The
 * keys that requests' signatures are verified with come from csr_verify.c, one per curve.
 */
#include <openssl/err.h>
#include <openssl/evp.h>

#include "common/error_internal.h"
#include "pki/pki_internal.h"
#include "tessera/provider.h"

struct ts_issue_batch {
    const ts_profile *profile;
    EVP_PKEY *issuer_key;
    EVP_MD_CTX *sign_template; /* initialised, never used to sign: copies are */
    ts_pki_verify_keys *verify_keys;
};

ts_err ts_issue_batch_new(const ts_profile *profile, EVP_PKEY *issuer_key, ts_issue_batch **out)
{
    ts_issue_batch *b;
    ts_err rv;

    if (out == NULL) {
        return ts_error_set(TS_ERR_INVALID, "ts_issue_batch_new: missing argument");
    }
    *out = NULL;
    if (profile == NULL || issuer_key == NULL) {
        return ts_error_set(TS_ERR_INVALID, "a batch needs a profile and an issuer key");
    }
    b = OPENSSL_zalloc(sizeof *b);
    if (b == NULL) {
        return ts_error_set(TS_ERR_NOMEM, "out of memory");
    }
    b->profile = profile;
    b->issuer_key = issuer_key;
    b->verify_keys = ts_pki_verify_keys_new();
    rv = b->verify_keys == NULL ? ts_error_set(TS_ERR_NOMEM, "out of memory")
                                : ts_pki_sign_ctx(issuer_key, profile->digest, &b->sign_template);
    if (rv != TS_OK) {
        ts_issue_batch_free(b);
        return rv;
    }
    *out = b;
    return TS_OK;
}

void ts_issue_batch_free(ts_issue_batch *batch)
{
    if (batch == NULL) {
        return;
    }
    EVP_MD_CTX_free(batch->sign_template);
    ts_pki_verify_keys_free(batch->verify_keys);
    OPENSSL_free(batch);
}

ts_err ts_csr_check_in(ts_issue_batch *batch, X509_REQ *csr)
{
    if (batch == NULL) {
        return ts_error_set(TS_ERR_INVALID, "ts_csr_check_in: no batch");
    }
    return ts_pki_csr_check(csr, batch->profile, batch->verify_keys);
}

struct ts_batch_csr {
    X509_REQ *req;
    EVP_PKEY *key; /* the request's public key */
    const ts_issue_batch *batch;
    const ts_profile *profile; /* what it was checked against */
};

void ts_batch_csr_free(ts_batch_csr *csr)
{
    if (csr == NULL) {
        return;
    }
    X509_REQ_free(csr->req);
    EVP_PKEY_free(csr->key);
    OPENSSL_free(csr);
}

int ts_pki_batch_csr_fits(const ts_batch_csr *csr, const ts_issue_params *params)
{
    return csr->batch == params->batch && csr->profile == params->profile &&
           ts_pki_batch_fits(csr->batch, params);
}

void ts_pki_batch_csr_get(const ts_batch_csr *csr, X509_REQ **req, EVP_PKEY **key)
{
    *req = csr->req;
    *key = csr->key;
}

/* ts_pki_csr_check() of a request read with its key apart, in the same order: the key type, the
 * signature over the bytes received, the profile's rules. */
static ts_err keyless_check(ts_issue_batch *b, X509_REQ *req, EVP_PKEY *key,
                            const unsigned char *tbs, size_t tbs_len)
{
    ts_err rv = ts_pki_key_allowed(key, b->profile);
    if (rv != TS_OK) {
        return rv;
    }
    int ok = ts_pki_verify_keys_check(b->verify_keys, req, tbs, tbs_len);
    if (ok < 0) {
        /* The request's to-be-signed part is still the bytes received: X509_REQ_verify_ex()
         * checks the same bytes, with the key given. */
        EVP_PKEY *verify_key = ts_pki_verify_keys_get(b->verify_keys, req);
        ok = X509_REQ_verify_ex(req, verify_key != NULL ? verify_key : key, ts_provider_libctx(),
                                NULL) == 1;
    }
    if (!ok) {
        ERR_clear_error();
        return ts_error_set(TS_ERR_AUTH, "CSR signature does not verify");
    }
    return ts_pki_csr_policy_key(req, key, b->profile);
}

ts_err ts_csr_parse_in(ts_issue_batch *batch, const uint8_t *data, size_t len, ts_batch_csr **out)
{
    const unsigned char *tbs = NULL;
    size_t tbs_len = 0;
    X509_REQ *req = NULL;
    EVP_PKEY *key = NULL;
    ts_batch_csr *csr = NULL;
    ts_err rv;

    if (out == NULL) {
        return ts_error_set(TS_ERR_INVALID, "ts_csr_parse_in: missing argument");
    }
    *out = NULL;
    if (batch == NULL) {
        return ts_error_set(TS_ERR_INVALID, "ts_csr_parse_in: no batch");
    }
    if (data != NULL && len > 0 && data[0] == 0x30 &&
        ts_pki_csr_decode_keyless(data, len, &req, &key, &tbs, &tbs_len)) {
        rv = keyless_check(batch, req, key, tbs, tbs_len);
    } else {
        /* Anything else the general way, with its messages. */
        rv = ts_csr_parse(data, len, &req);
        if (rv == TS_OK) {
            rv = ts_pki_csr_check(req, batch->profile, batch->verify_keys);
        }
        key = rv == TS_OK ? X509_REQ_get0_pubkey(req) : NULL;
        if (key != NULL && !EVP_PKEY_up_ref(key)) {
            key = NULL;
            rv = ts_error_set(TS_ERR_NOMEM, "out of memory");
        }
    }
    if (rv == TS_OK) {
        csr = OPENSSL_zalloc(sizeof *csr);
        rv = csr != NULL ? TS_OK : ts_error_set(TS_ERR_NOMEM, "out of memory");
    }
    if (rv != TS_OK) {
        X509_REQ_free(req);
        EVP_PKEY_free(key);
        return rv;
    }
    csr->req = req;
    csr->key = key;
    csr->batch = batch;
    csr->profile = batch->profile;
    *out = csr;
    return TS_OK;
}

int ts_pki_batch_fits(const ts_issue_batch *batch, const ts_issue_params *params)
{
    return batch->profile == params->profile && batch->issuer_key == params->issuer_key;
}

ts_err ts_pki_batch_sign_cert(ts_issue_batch *batch, const ts_issue_params *params, X509 *cert)
{
    EVP_MD_CTX *mctx;
    ts_err rv = TS_OK;

    if (!ts_pki_batch_fits(batch, params)) {
        return ts_error_set(TS_ERR_INVALID, "the batch was made for another profile or issuer key");
    }
    mctx = EVP_MD_CTX_new();
    if (mctx == NULL || EVP_MD_CTX_copy_ex(mctx, batch->sign_template) != 1 ||
        X509_sign_ctx(cert, mctx) <= 0) {
        rv = ts_error_set_openssl(TS_ERR_CRYPTO, "cannot sign the certificate");
    }
    EVP_MD_CTX_free(mctx);
    return rv;
}
