/*
 * Revocation status: CRLs of a tenant's issuing CA and of the root, and OCSP answers for every
 * issuing CA from the store.
 *
 * RFC 5280 section 5.2.3: the CRL number is monotonically increasing for a CA. The store hands out
 * the next number inside the transaction that also records the CRL's audit entry, so a number is
 * never reused, also across processes sharing one database.
 */
#include <string.h>

#include <openssl/bn.h>
#include <openssl/crypto.h>

#include "common/error_internal.h"
#include "server/server_internal.h"

enum {
    CRL_HOURS_MAX = 24 * 366, /* nextUpdate at most a year ahead */
};

static ts_err serial_bytes(const char *hex, uint8_t *out, size_t *len)
{
    BIGNUM *bn = NULL;
    int n = BN_hex2bn(&bn, hex);
    if (n <= 0 || (size_t)n != strlen(hex) || BN_num_bytes(bn) > TS_SERIAL_LEN + 1) {
        BN_free(bn);
        return ts_error_set(TS_ERR_CORRUPT, "stored serial '%s' is malformed", hex);
    }
    *len = (size_t)BN_bn2bin(bn, out);
    BN_free(bn);
    return TS_OK;
}

/* Signs a CRL for issuer over its revoked, unexpired certificates; audited as crl.issue. */
static ts_err crl_make(ts_ca *ca, srv_issuer *issuer, const char *name, unsigned hours,
                       X509_CRL **out)
{
    ts_cert_row *rows = NULL;
    size_t count = 0;
    ts_revoked *revoked = NULL;
    uint8_t(*serials)[TS_SERIAL_LEN + 1] = NULL;
    uint64_t number = 0;
    time_t now = time(NULL);
    int in_tx = 0;
    ts_err rv;

    *out = NULL;
    if (hours == 0 || hours > CRL_HOURS_MAX) {
        return ts_error_set(TS_ERR_INVALID, "next update: 1 to %d hours", CRL_HOURS_MAX);
    }
    rv = ts_store_begin(ca->store);
    in_tx = rv == TS_OK;
    if (rv == TS_OK) {
        rv = ts_store_crl_number_next(ca->store, issuer->row.id, &number);
    }
    if (rv == TS_OK) {
        rv = ts_store_revoked_list(ca->store, issuer->row.id, now, &rows, &count);
    }
    if (rv == TS_OK && count > 0) {
        revoked = OPENSSL_zalloc(count * sizeof *revoked);
        serials = OPENSSL_zalloc(count * sizeof *serials);
        if (revoked == NULL || serials == NULL) {
            rv = ts_error_set(TS_ERR_NOMEM, "out of memory");
        }
    }
    for (size_t i = 0; rv == TS_OK && i < count; i++) {
        rv = serial_bytes(rows[i].serial, serials[i], &revoked[i].serial_len);
        revoked[i].serial = serials[i];
        revoked[i].revoked_at = rows[i].revoked_at;
        revoked[i].reason = rows[i].revocation_reason;
    }
    if (rv == TS_OK) {
        rv = ts_crl_make(issuer->cert, issuer->key, revoked, count, number, now,
                         now + (time_t)hours * 3600, out);
    }
    if (rv == TS_OK) {
        rv = srv_audit(ca, "crl.issue", name,
                       srv_json("{s:s, s:I, s:I, s:I}", "issuer", issuer->row.subject, "number",
                                (json_int_t)number, "revoked", (json_int_t)count, "next_update",
                                (json_int_t)(now + (time_t)hours * 3600)));
    }
    if (in_tx) {
        rv = srv_tx_end(ca, rv);
    }
    if (rv != TS_OK) {
        X509_CRL_free(*out);
        *out = NULL;
    }
    OPENSSL_free(revoked);
    OPENSSL_free(serials);
    ts_cert_rows_free(rows, count);
    return rv;
}

ts_err ts_ca_crl(ts_ca *ca, const char *tenant, unsigned next_update_hours, X509_CRL **out)
{
    ts_tenant_row t;
    srv_issuer issuer;
    ts_err rv = ts_ca_tenant(ca, tenant, &t);

    *out = NULL;
    if (rv == TS_OK) {
        rv = srv_issuing_load(ca, t.id, 1, &issuer);
    }
    if (rv == TS_OK) {
        rv = crl_make(ca, &issuer, t.name, next_update_hours, out);
        srv_issuer_clear(&issuer);
    }
    return rv;
}

ts_err ts_ca_root_crl(ts_ca *ca, unsigned next_update_hours, X509_CRL **out)
{
    srv_issuer root;
    ts_err rv = srv_root_load(ca, 1, &root);

    *out = NULL;
    if (rv == TS_OK) {
        rv = crl_make(ca, &root, "root", next_update_hours, out);
        srv_issuer_clear(&root);
    }
    return rv;
}

/* --- OCSP ------------------------------------------------------------------------------------- */

typedef struct ocsp_ctx {
    ts_ca *ca;
    srv_issuer *issuers;
    size_t count;
} ocsp_ctx;

static ts_err ocsp_lookup(void *arg, size_t index, const ASN1_INTEGER *serial,
                          ts_cert_status *status, time_t *revoked_at, int *reason)
{
    ocsp_ctx *c = arg;
    char hex[TS_SERIAL_HEX];
    ts_cert_row row;
    ts_err rv;

    *status = TS_CERT_UNKNOWN;
    if (index >= c->count || ts_serial_hex(serial, hex, sizeof hex) != TS_OK) {
        return TS_OK; /* not a serial this responder ever issued */
    }
    memset(&row, 0, sizeof row);
    rv = ts_store_cert_get_by_issuer(c->ca->store, c->issuers[index].row.id, hex, &row);
    if (rv == TS_ERR_NOT_FOUND) {
        return TS_OK;
    }
    if (rv == TS_OK && row.state == TS_CERT_REVOKED_STATE) {
        *status = TS_CERT_REVOKED;
        *revoked_at = row.revoked_at;
        *reason = row.revocation_reason;
    } else if (rv == TS_OK) {
        *status = TS_CERT_GOOD;
    }
    ts_cert_row_clear(&row);
    return rv;
}

ts_err ts_ca_ocsp(ts_ca *ca, const uint8_t *request, size_t request_len, uint8_t **resp,
                  size_t *resp_len)
{
    ts_tenant_row *tenants = NULL;
    size_t ntenants = 0;
    ts_ocsp_issuer *list = NULL;
    ocsp_ctx c = {.ca = ca};
    ts_err rv = ts_store_tenant_list(ca->store, &tenants, &ntenants);

    *resp = NULL;
    *resp_len = 0;
    if (rv == TS_OK) {
        c.issuers = OPENSSL_zalloc((ntenants + 1) * sizeof *c.issuers);
        list = OPENSSL_zalloc((ntenants + 1) * sizeof *list);
        if (c.issuers == NULL || list == NULL) {
            rv = ts_error_set(TS_ERR_NOMEM, "out of memory");
        }
    }
    for (size_t i = 0; rv == TS_OK && i < ntenants; i++) {
        rv = srv_issuing_load(ca, tenants[i].id, 1, &c.issuers[i]);
        if (rv == TS_OK) {
            list[i].cert = c.issuers[i].cert;
            list[i].key = c.issuers[i].key;
            c.count++;
        }
    }
    if (rv == TS_OK) {
        rv = ts_ocsp_respond(request, request_len, list, c.count, ocsp_lookup, &c, time(NULL), resp,
                             resp_len);
    }
    for (size_t i = 0; c.issuers != NULL && i < c.count; i++) {
        srv_issuer_clear(&c.issuers[i]);
    }
    OPENSSL_free(c.issuers);
    OPENSSL_free(list);
    OPENSSL_free(tenants);
    return rv;
}
