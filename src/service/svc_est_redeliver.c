/*
 * A rekey answered into the void. simplereenroll with a new key issues the new certificate and
 * revokes the old one (superseded) in one transaction; a device whose connection dropped before
 * the answer arrived holds only the old certificate, now revoked. It asks again with a CSR for
 * the same new key (src/agent/agent_rekey.c), authenticated by the old certificate: the answer is
 * the certificate already issued, the same bytes, and nothing changes in the store. The CSR's
 * signature, and the channel binding when the profile demands it, prove that the caller holds
 * the new key; the certificate is its own.
 */
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "common/error_internal.h"
#include "service/svc_est_internal.h"

/* The stored row of the client certificate, when it is the one presented and was superseded. */
static int superseded(svc_request *r, const ts_tenant_row *t, ts_cert_row *row)
{
    char fp[TS_FINGERPRINT_HEX];
    if (ts_store_cert_get(ts_ca_store(r->ca), t->id, r->client_serial, row) != TS_OK ||
        ts_cert_fingerprint(r->client_cert, fp) != TS_OK) {
        ts_error_clear();
        return 0;
    }
    return strcmp(fp, row->fingerprint) == 0 && row->state == TS_CERT_REVOKED_STATE &&
           row->revocation_reason == CRL_REASON_SUPERSEDED && row->device_uid[0] != '\0';
}

/* The newest valid certificate of the device for the CSR's key and the old subject. */
static X509 *successor(svc_request *r, const ts_tenant_row *t, const ts_cert_row *old,
                       X509_REQ *csr)
{
    ts_cert_filter f = {.tenant_id = t->id, .state = TS_CERT_VALID, .device_uid = old->device_uid};
    ts_cert_row *rows = NULL;
    size_t n = 0;
    X509 *found = NULL;
    EVP_PKEY *want = X509_REQ_get0_pubkey(csr);

    if (want == NULL || ts_store_cert_list(ts_ca_store(r->ca), &f, &rows, &n) != TS_OK) {
        ts_error_clear();
        return NULL;
    }
    for (size_t i = n; found == NULL && i-- > 0;) {
        ts_cert_row full;
        memset(&full, 0, sizeof full);
        if (strcmp(rows[i].subject, old->subject) != 0 ||
            ts_store_cert_get(ts_ca_store(r->ca), t->id, rows[i].serial, &full) != TS_OK) {
            ts_error_clear();
            continue;
        }
        const unsigned char *p = full.der;
        X509 *cert = d2i_X509(NULL, &p, (long)full.der_len);
        if (cert != NULL && EVP_PKEY_eq(X509_get0_pubkey(cert), want) == 1) {
            found = cert;
        } else {
            X509_free(cert);
        }
        ts_cert_row_clear(&full);
    }
    ts_cert_rows_free(rows, n);
    return found;
}

int est_rekey_redeliver(svc_request *r, const ts_tenant_row *t, X509_REQ *csr)
{
    ts_cert_row old;
    ts_profile *profile = NULL;
    X509 *cert = NULL;
    int answered = 0;

    memset(&old, 0, sizeof old);
    EVP_PKEY *key = X509_REQ_get0_pubkey(csr);
    if (!superseded(r, t, &old) || key == NULL || X509_REQ_verify(csr, key) != 1 ||
        X509_NAME_cmp(X509_REQ_get_subject_name(csr), X509_get_subject_name(r->client_cert)) != 0) {
        goto done;
    }
    cert = successor(r, t, &old, csr);
    if (cert == NULL) {
        goto done;
    }
    /* From here every outcome is an answer: the proof of possession's refusal, or the
     * certificate. */
    answered = 1;
    char shown[TS_NAME_MAX + 3];
    snprintf(shown, sizeof shown, "'%s'", old.profile);
    if (!est_profile(r, t, old.profile, &profile) ||
        !est_pop(r, ts_profile_est_pop(profile), shown, csr)) {
        goto done;
    }
    est_actor(r, "device", old.device_uid);
    est_reply_cert(r, cert);
done:
    ERR_clear_error();
    X509_free(cert);
    ts_profile_free(profile);
    ts_cert_row_clear(&old);
    return answered;
}
