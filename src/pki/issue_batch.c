/*
 * A batch: the per-request set-up of checking and issuing, made once for many requests.
 *
 * OpenSSL 3.0 builds a signing context by fetching the signature and digest implementations and
 * initialising the provider's operation; a copy of a prepared context skips all of that. The
 * keys that requests' signatures are verified with come from csr_verify.c, one per curve.
 */
#include <openssl/evp.h>

#include "common/error_internal.h"
#include "pki/pki_internal.h"

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

ts_err ts_pki_batch_sign_cert(ts_issue_batch *batch, const ts_issue_params *params, X509 *cert)
{
    EVP_MD_CTX *mctx;
    ts_err rv = TS_OK;

    if (batch->profile != params->profile || batch->issuer_key != params->issuer_key) {
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
