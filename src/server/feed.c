/*
 * The revocation feed (include/tessera/access.h) and the CA lookups the service needs for TLS
 * client authentication: which tenant an issuing CA belongs to, and every CA certificate.
 */
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/x509v3.h>

#include "common/error_internal.h"
#include "server/server_internal.h"
#include "tessera/store_access.h"

const char *ts_feed_event_name(ts_feed_event event)
{
    switch (event) {
    case TS_FEED_CERT_REVOKED:
        return "cert.revoked";
    case TS_FEED_DEVICE_DISABLED:
        return "device.disabled";
    case TS_FEED_DEVICE_ENABLED:
        return "device.enabled";
    }
    return "?";
}

ts_err srv_feed_revoked(ts_ca *ca, const ts_cert_row *cert, int reason, time_t when)
{
    ts_ca_row issuer;
    ts_feed_row ev;

    memset(&ev, 0, sizeof ev);
    ts_err rv = ts_store_ca_get(ca->store, cert->issuer_ca_id, &issuer);
    if (rv != TS_OK) {
        return ts_error_prefix(rv, "the issuer of %s", cert->serial);
    }
    ev.tenant_id = cert->tenant_id;
    ev.event = TS_FEED_CERT_REVOKED;
    ev.reason = reason;
    ev.time = when;
    snprintf(ev.serial, sizeof ev.serial, "%s", cert->serial);
    snprintf(ev.issuer_fingerprint, sizeof ev.issuer_fingerprint, "%s", issuer.fingerprint);
    snprintf(ev.device_uid, sizeof ev.device_uid, "%s", cert->device_uid);
    ts_ca_row_clear(&issuer);
    return ts_store_feed_append(ca->store, &ev);
}

ts_err ts_ca_feed(ts_ca *ca, const char *tenant, int64_t since, size_t limit, ts_feed_row **rows,
                  size_t *count)
{
    ts_tenant_row t;
    *rows = NULL;
    *count = 0;
    ts_err rv = ts_ca_tenant(ca, tenant, &t);
    if (rv == TS_OK) {
        rv = ts_store_feed_list(ca->store, t.id, since, limit, rows, count);
    }
    return rv;
}

ts_err ts_ca_feed_head(ts_ca *ca, int64_t *seq)
{
    return ts_store_feed_head(ca->store, seq);
}

ts_err ts_ca_tenant_by_issuer(ts_ca *ca, const char *issuer_fingerprint, ts_tenant_row *tenant,
                              int64_t *issuer_ca_id)
{
    ts_ca_row row;
    ts_err rv = ts_store_ca_by_fingerprint(ca->store, issuer_fingerprint, &row);
    if (rv == TS_OK && row.kind != TS_CA_ISSUING) {
        rv = ts_error_set(TS_ERR_NOT_FOUND, "CA %s is not an issuing CA", row.fingerprint);
    }
    if (rv == TS_OK) {
        rv = ts_store_tenant_get_id(ca->store, row.tenant_id, tenant);
    }
    if (rv == TS_OK && issuer_ca_id != NULL) {
        *issuer_ca_id = row.id;
    }
    ts_ca_row_clear(&row);
    return rv;
}

ts_err ts_ca_all_certs(ts_ca *ca, STACK_OF(X509) * *out)
{
    ts_ca_row *rows = NULL;
    size_t count = 0;
    STACK_OF(X509) *sk = sk_X509_new_null();
    ts_err rv = sk != NULL ? TS_OK : ts_error_set(TS_ERR_NOMEM, "out of memory");

    *out = NULL;
    if (rv == TS_OK) {
        rv = ts_store_ca_list(ca->store, &rows, &count);
    }
    for (size_t i = 0; rv == TS_OK && i < count; i++) {
        const unsigned char *p = rows[i].cert_der;
        X509 *cert = d2i_X509(NULL, &p, (long)rows[i].cert_len);
        if (cert == NULL || p != rows[i].cert_der + rows[i].cert_len) {
            X509_free(cert);
            rv = ts_error_set_openssl(TS_ERR_CORRUPT,
                                      "the stored certificate of CA %lld is "
                                      "malformed",
                                      (long long)rows[i].id);
        } else if (!sk_X509_push(sk, cert)) {
            X509_free(cert);
            rv = ts_error_set(TS_ERR_NOMEM, "out of memory");
        }
    }
    for (size_t i = 0; i < count; i++) {
        ts_ca_row_clear(&rows[i]);
    }
    OPENSSL_free(rows);
    if (rv != TS_OK) {
        sk_X509_pop_free(sk, X509_free);
        return rv;
    }
    *out = sk;
    return TS_OK;
}
