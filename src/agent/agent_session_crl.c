/*
 * The service's certificate against the CRL a session carries (RFC 5280 section 6.3). The CRL
 * comes over the same TLS connection, so it is believed only when its issuer's signature verifies
 * with a certificate the agent already has: the service's chain or a trusted root.
 */
#include <string.h>

#include <openssl/x509.h>

#include "agent/agent_session_internal.h"
#include "common/error_internal.h"

static X509 *issuer_of(const X509_CRL *crl, STACK_OF(X509) * chain, STACK_OF(X509) * roots)
{
    const X509_NAME *name = X509_CRL_get_issuer(crl);
    STACK_OF(X509) *const lists[] = {chain, roots};

    for (size_t l = 0; l < 2; l++) {
        for (int i = 0; i < sk_X509_num(lists[l]); i++) {
            X509 *c = sk_X509_value(lists[l], i);
            if (X509_NAME_cmp(X509_get_subject_name(c), name) == 0) {
                return c;
            }
        }
    }
    return NULL;
}

static ts_err check_one(X509 *service, STACK_OF(X509) * chain, STACK_OF(X509) * roots,
                        const uint8_t *der, size_t len)
{
    const unsigned char *p = der;
    X509_CRL *crl = NULL;
    X509_REVOKED *entry = NULL;
    X509 *issuer;
    EVP_PKEY *key;
    ts_err rv = TS_OK;

    if (len == 0 || len > TS_AGENT_SYNC_BODY_MAX) {
        return ts_error_set(TS_ERR_INVALID, "the session's CRL is %zu bytes", len);
    }
    crl = d2i_X509_CRL(NULL, &p, (long)len);
    if (crl == NULL || p != der + len) {
        X509_CRL_free(crl);
        return ts_error_set_openssl(TS_ERR_CORRUPT, "the session's CRL is not one DER CRL");
    }
    issuer = issuer_of(crl, chain, roots);
    if (issuer == NULL) {
        /* Not from a CA the agent knows: it says nothing the agent can believe. */
        rv = ts_error_set(TS_ERR_AUTH, "the session's CRL comes from an issuer the agent does "
                                       "not know");
        goto done;
    }
    key = X509_get0_pubkey(issuer);
    if (key == NULL || X509_CRL_verify(crl, key) != 1) {
        rv = ts_error_set_openssl(TS_ERR_AUTH, "the session's CRL signature does not verify");
        goto done;
    }
    if (X509_NAME_cmp(X509_CRL_get_issuer(crl), X509_get_issuer_name(service)) != 0) {
        goto done; /* a CRL for other certificates: the service's own is not on it */
    }
    if (X509_CRL_get0_by_cert(crl, &entry, service) == 1) {
        rv = ts_error_set(TS_ERR_AUTH, "the service's certificate is revoked (it is on the CRL "
                                       "the session carries): session refused");
    }
done:
    X509_CRL_free(crl);
    return rv;
}

ts_err sess_crl_check(X509 *service, STACK_OF(X509) * chain, STACK_OF(X509) * roots,
                      const uint8_t *const *crls, const size_t *crl_lens, size_t crl_count)
{
    if (service == NULL) {
        return crl_count == 0 ? TS_OK
                              : ts_error_set(TS_ERR_STATE, "the service's certificate is not "
                                                           "known, so the CRL cannot be checked");
    }
    for (size_t i = 0; i < crl_count; i++) {
        ts_err rv = check_one(service, chain, roots, crls[i], crl_lens[i]);
        if (rv != TS_OK) {
            return rv;
        }
    }
    return TS_OK;
}
