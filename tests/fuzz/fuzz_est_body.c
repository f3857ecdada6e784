/*
 * libFuzzer target: an EST request or response body on arbitrary bytes. The body is decoded as
 * base64 (white space and line breaks allowed, RFC 8951), and what it decodes to is read as a CSR
 * (simpleenroll: its challengePassword and the proof-of-possession check too), as a certs-only
 * (cacerts, enroll replies) and as a CsrAttrs. Encoding the decoded bytes again must decode to
 * the same bytes.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>

#include "tessera/est.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_csr(const uint8_t *der, size_t len)
{
    static const uint8_t binding[32] = {1, 2, 3};
    X509_REQ *req = NULL;
    char *pw = NULL;
    size_t pw_len = 0;

    if (ts_csr_parse(der, len, &req) != TS_OK) {
        if (req != NULL) {
            abort();
        }
        return;
    }
    ts_err rv = ts_est_challenge_password(req, &pw, &pw_len);
    if (rv == TS_OK && (pw == NULL || strlen(pw) != pw_len || pw_len > TS_EST_PASSWORD_MAX)) {
        abort();
    }
    if (rv != TS_OK && (pw != NULL || (rv != TS_ERR_NOT_FOUND && rv != TS_ERR_INVALID))) {
        abort();
    }
    rv = ts_est_pop_check(req, binding, sizeof binding);
    if (rv != TS_OK && rv != TS_ERR_POLICY) {
        abort();
    }
    OPENSSL_free(pw);
    X509_REQ_free(req);
}

static void check_certs_only(const uint8_t *der, size_t len)
{
    STACK_OF(X509) *certs = NULL;

    if (ts_est_certs_only_parse(der, len, &certs) == TS_OK) {
        if (certs == NULL) {
            abort();
        }
        for (int i = 0; i < sk_X509_num(certs); i++) {
            if (sk_X509_value(certs, i) == NULL) {
                abort();
            }
        }
    } else if (certs != NULL) {
        abort();
    }
    sk_X509_pop_free(certs, X509_free);
}

static void check_csrattrs(const uint8_t *der, size_t len)
{
    ts_est_csrattrs_info info;

    if (ts_est_csrattrs_parse(der, len, &info) == TS_OK &&
        (info.ec_curve_count > 4 || info.sig_count > 4)) {
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *der = NULL, *again = NULL;
    char *text = NULL;
    size_t len = 0, text_len = 0, again_len = 0;

    if (ts_est_base64_decode(data, size, TS_CSR_MAX, &der, &len) != TS_OK) {
        if (der != NULL || len != 0) {
            abort(); /* a refusal leaves nothing behind */
        }
        /* The raw bytes as DER too: a response body before its base64. */
        check_certs_only(data, size);
        check_csrattrs(data, size);
        ERR_clear_error();
        return 0;
    }
    if (der == NULL || len == 0 || len > TS_CSR_MAX) {
        abort();
    }
    if (ts_est_base64_encode(der, len, "\r\n", &text, &text_len) != TS_OK ||
        ts_est_base64_decode((const uint8_t *)text, text_len, TS_CSR_MAX, &again, &again_len) !=
            TS_OK ||
        again_len != len || memcmp(again, der, len) != 0) {
        abort();
    }
    check_csr(der, len);
    check_certs_only(der, len);
    check_csrattrs(der, len);
    OPENSSL_free(again);
    OPENSSL_free(text);
    OPENSSL_free(der);
    ERR_clear_error();
    return 0;
}
