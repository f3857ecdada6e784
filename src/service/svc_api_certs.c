/* Certificates of a tenant: list, issue, show, revoke, renew and rekey. */
#include <string.h>
#include <time.h>

#include <openssl/x509v3.h>

#include "common/error_internal.h"
#include "service/svc_api_internal.h"
#include "tessera/pki.h"

/* The list's filters from the query; replies and returns nonzero on a bad one. */
static int list_filter(svc_request *r, ts_cert_filter *filter, int *empty)
{
    const char *status = svc_query(r, "status");
    const char *device = svc_query(r, "device");
    const char *days_text = svc_query(r, "expiring_within_days");
    ts_err rv = TS_OK;

    if (status != NULL && strcmp(status, "valid") == 0) {
        filter->state = TS_CERT_VALID;
    } else if (status != NULL && strcmp(status, "revoked") == 0) {
        filter->state = TS_CERT_REVOKED_STATE;
    } else if (status != NULL) {
        rv = ts_error_set(TS_ERR_INVALID, "query parameter 'status' must be valid or revoked");
    }
    if (rv == TS_OK && device != NULL && ts_device_uid_check(device) != TS_OK) {
        rv = ts_error_prefix(TS_ERR_INVALID, "query parameter 'device'");
    }
    filter->device_uid = device;
    if (rv == TS_OK && days_text != NULL) {
        int64_t days = 0;
        rv = svc_api_query_int(days_text, "query parameter 'expiring_within_days'", 1,
                               SVC_API_DAYS_MAX, &days);
        filter->expiring_before = time(NULL) + (time_t)days * 86400;
    }
    if (rv != TS_OK) {
        svc_reply_err(r, rv);
        return 1;
    }
    /* A device sees its own certificates only: asking for another device's finds none. */
    if (r->principal.role == TS_ROLE_DEVICE) {
        *empty = device != NULL && strcmp(device, r->principal.device_uid) != 0;
        filter->device_uid = r->principal.device_uid;
    }
    return 0;
}

void svc_api_cert_list(svc_request *r)
{
    ts_cert_filter filter;
    ts_cert_row *rows = NULL;
    size_t count = 0, limit = 0;
    int empty = 0;

    memset(&filter, 0, sizeof filter);
    if (!svc_api_tenant_ready(r) || !svc_api_no_body(r)) {
        return;
    }
    ts_err rv = svc_page_params(r, &limit, &filter.after_id);
    if (rv != TS_OK) {
        svc_reply_err(r, rv);
        return;
    }
    if (list_filter(r, &filter, &empty) != 0) {
        return;
    }
    /* Never 0 here: a zero tenant id would list every tenant's certificates. */
    filter.tenant_id = r->tenant.id;
    /* One row more than the page tells whether another page follows. */
    filter.limit = limit + 1;
    if (!empty) {
        rv = ts_store_cert_list(ts_ca_store(r->ca), &filter, &rows, &count);
    }
    if (rv != TS_OK) {
        svc_reply_err(r, rv);
        return;
    }
    int64_t next = count > limit ? rows[limit - 1].id : 0;
    json_t *items = json_array();
    int foreign = 0;
    for (size_t i = 0; items != NULL && i < count && i < limit; i++) {
        foreign |= rows[i].tenant_id != r->tenant.id;
        if (json_array_append_new(items, svc_api_cert_json(&rows[i])) != 0) {
            json_decref(items);
            items = NULL;
        }
    }
    ts_cert_rows_free(rows, count);
    if (foreign) {
        json_decref(items);
        svc_reply_error(r, 500, "internal", "the certificate list crossed a tenant");
        return;
    }
    svc_api_reply_list(r, items, next);
}

void svc_api_cert_issue(svc_request *r)
{
    X509 *cert = NULL;

    if (!svc_api_tenant_ready(r)) {
        return;
    }
    json_t *doc = svc_api_body(r, &svc_api_body_issue, 0);
    if (doc == NULL) {
        return;
    }
    const char *csr = svc_api_str(doc, "csr");
    ts_err rv = ts_ca_issue_csr(r->ca, r->tenant.name, svc_api_str(doc, "profile"),
                                (const uint8_t *)csr, strlen(csr), &cert);
    json_decref(doc);
    if (rv != TS_OK) {
        svc_reply_err(r, rv);
        return;
    }
    svc_metrics_issued(1);
    svc_api_reply_issued(r, cert);
    X509_free(cert);
}

void svc_api_cert_get(svc_request *r)
{
    if (!svc_api_tenant_ready(r) || !svc_api_no_body(r)) {
        return;
    }
    json_t *doc = svc_api_cert_lookup(r, svc_param(r, "serial"));
    if (doc != NULL) {
        svc_reply_json(r, 200, doc);
    }
}

/* The path's serial, normalised; replies 400 and returns nonzero when it is not one. */
static int path_serial(svc_request *r, char serial[TS_SERIAL_HEX])
{
    ts_err rv = ts_ca_serial_normalise(svc_param(r, "serial"), serial);

    if (rv != TS_OK) {
        svc_reply_err(r, rv);
        return 1;
    }
    return 0;
}

void svc_api_cert_revoke(svc_request *r)
{
    char serial[TS_SERIAL_HEX];
    /* RFC 5280 section 5.3.1: unspecified (0) when the caller gives no reason. */
    int reason = CRL_REASON_UNSPECIFIED;

    if (!svc_api_tenant_ready(r)) {
        return;
    }
    json_t *doc = svc_api_body(r, &svc_api_body_revoke, 1);
    if (doc == NULL) {
        return;
    }
    const char *reason_name = svc_api_str(doc, "reason");
    ts_err rv = TS_OK;
    if (reason_name != NULL) {
        rv = ts_crl_reason_from_name(reason_name, &reason);
    }
    /* RFC 5280 section 5.3.1: removeFromCRL is only for delta CRLs, which take a certificate off
     * hold; it is not a reason to revoke one. */
    if (rv == TS_OK && reason == CRL_REASON_REMOVE_FROM_CRL) {
        rv = ts_error_set(TS_ERR_INVALID, "removeFromCRL is not a reason to revoke a certificate");
    }
    json_decref(doc);
    if (rv != TS_OK) {
        svc_reply_err(r, rv);
        return;
    }
    if (path_serial(r, serial) != 0) {
        return;
    }
    rv = ts_ca_cert_revoke(r->ca, r->tenant.name, serial, reason);
    if (rv != TS_OK) {
        svc_reply_err(r, rv);
        return;
    }
    svc_metrics_revoked(1);
    json_t *cert = svc_api_cert_lookup(r, serial);
    if (cert != NULL) {
        svc_reply_json(r, 200, cert);
    }
}

void svc_api_cert_renew(svc_request *r)
{
    char serial[TS_SERIAL_HEX];
    X509 *cert = NULL;

    if (!svc_api_tenant_ready(r) || !svc_api_no_body(r) || path_serial(r, serial) != 0) {
        return;
    }
    ts_err rv = ts_ca_cert_renew(r->ca, r->tenant.name, serial, &cert);
    if (rv != TS_OK) {
        svc_reply_err(r, rv);
        return;
    }
    svc_metrics_issued(1);
    svc_api_reply_issued(r, cert);
    X509_free(cert);
}

void svc_api_cert_rekey(svc_request *r)
{
    char serial[TS_SERIAL_HEX];
    X509 *cert = NULL;

    if (!svc_api_tenant_ready(r)) {
        return;
    }
    json_t *doc = svc_api_body(r, &svc_api_body_rekey, 0);
    if (doc == NULL) {
        return;
    }
    if (path_serial(r, serial) != 0) {
        json_decref(doc);
        return;
    }
    const char *csr = svc_api_str(doc, "csr");
    ts_err rv =
        ts_ca_cert_rekey(r->ca, r->tenant.name, serial, (const uint8_t *)csr, strlen(csr), &cert);
    json_decref(doc);
    if (rv != TS_OK) {
        svc_reply_err(r, rv);
        return;
    }
    /* The new certificate is issued and the old one revoked as superseded, together. */
    svc_metrics_issued(1);
    svc_metrics_revoked(1);
    svc_api_reply_issued(r, cert);
    X509_free(cert);
}
