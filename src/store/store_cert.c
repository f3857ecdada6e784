/* Issued certificates and their revocations. */
#include <string.h>

#include <openssl/crypto.h>

#include "common/error_internal.h"
#include "store/store_internal.h"

void ts_cert_row_clear(ts_cert_row *row)
{
    if (row == NULL) {
        return;
    }
    OPENSSL_free(row->der);
    memset(row, 0, sizeof *row);
}

void ts_cert_rows_free(ts_cert_row *rows, size_t count)
{
    if (rows == NULL) {
        return;
    }
    for (size_t i = 0; i < count; i++) {
        OPENSSL_free(rows[i].der);
    }
    OPENSSL_free(rows);
}

static ts_err check_cert(const ts_cert_row *row, char serial[TS_SERIAL_HEX], char fp[65])
{
    if (row->tenant_id <= 0 || row->issuer_ca_id <= 0) {
        return ts_error_set(TS_ERR_INVALID, "a certificate needs a tenant and an issuing CA");
    }
    if (row->der == NULL || row->der_len == 0 || row->der_len > TS_STORE_DER_MAX) {
        return ts_error_set(TS_ERR_INVALID, "a certificate is 1 to %d bytes of DER",
                            TS_STORE_DER_MAX);
    }
    if (row->state != 0 && row->state != TS_CERT_VALID) {
        return ts_error_set(TS_ERR_INVALID, "a new certificate is stored valid, then revoked");
    }
    if (row->not_after < row->not_before) {
        return ts_error_set(TS_ERR_INVALID, "a certificate's notAfter is before its notBefore");
    }
    ts_err rv = ts_serial_canonical(row->serial, serial);
    if (rv == TS_OK) {
        rv = ts_fingerprint_canonical(row->fingerprint, fp);
    }
    if (rv == TS_OK) {
        rv = ts_check_text(row->subject, sizeof row->subject, 0, "a certificate's subject");
    }
    if (rv == TS_OK) {
        rv = ts_check_text(row->device_uid, sizeof row->device_uid, 0, "a device UID");
    }
    if (rv == TS_OK) {
        rv = ts_check_text(row->profile, sizeof row->profile, 0, "a profile name");
    }
    return rv;
}

ts_err ts_store_cert_insert(ts_store *store, ts_cert_row *row)
{
    char serial[TS_SERIAL_HEX], fp[65];
    int64_t id = 0;
    if (store == NULL || row == NULL) {
        return ts_error_set(TS_ERR_INVALID, "ts_store_cert_insert: missing argument");
    }
    ts_err rv = check_cert(row, serial, fp);
    if (rv == TS_OK) {
        rv = ts_store_need_tx(store, "ts_store_cert_insert");
    }
    if (rv != TS_OK) {
        return rv;
    }
    time_t created = row->created != 0 ? row->created : time(NULL);
    ts_sql_value p[] = {
        ts_sql_int(row->tenant_id),
        ts_sql_int(row->issuer_ca_id),
        ts_sql_text(serial),
        ts_sql_text(row->subject),
        ts_sql_text(row->device_uid),
        ts_sql_text(row->profile),
        ts_sql_text(fp),
        ts_sql_int(row->not_before),
        ts_sql_int(row->not_after),
        ts_sql_int(TS_CERT_VALID),
        ts_sql_blob(row->der, row->der_len),
        ts_sql_int(created),
    };
    /*
     * RFC 5280 section 4.1.2.2: a serial is unique per issuer. The constraint decides, and DO
     * NOTHING keeps the transaction usable so that the caller can retry with a new serial.
     */
    rv = ts_store_insert_id(store,
                            "INSERT INTO certificates (tenant_id, issuer_ca_id, serial, subject, "
                            "device_uid, profile, fingerprint, not_before, not_after, state, der, "
                            "created) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) "
                            "ON CONFLICT (issuer_ca_id, serial) DO NOTHING",
                            p, 12, &id);
    if (rv != TS_OK) {
        return ts_error_prefix(rv, "storing certificate %s", serial);
    }
    if (id == 0) {
        return ts_error_set(TS_ERR_CONFLICT, "serial %s is taken under CA %lld: retry with another",
                            serial, (long long)row->issuer_ca_id);
    }
    row->id = id;
    row->created = created;
    row->state = TS_CERT_VALID;
    memcpy(row->serial, serial, sizeof serial);
    memcpy(row->fingerprint, fp, sizeof fp);
    return TS_OK;
}

#define CERT_COLUMNS                                                                               \
    "SELECT c.id, c.tenant_id, c.issuer_ca_id, c.serial, c.subject, c.device_uid, c.profile, "     \
    "c.fingerprint, c.not_before, c.not_after, c.state, r.revoked_at, r.reason, c.created"
#define CERT_FROM " FROM certificates c LEFT JOIN revocations r ON r.cert_id = c.id"

typedef struct cert_list {
    ts_cert_row *rows;
    size_t count, cap;
    int with_der;
} cert_list;

static ts_err cert_revocation(const ts_sql_row *row, ts_cert_row *c, int64_t state)
{
    int64_t reason = 0;
    if (state != TS_CERT_VALID && state != TS_CERT_REVOKED_STATE) {
        return ts_error_set(TS_ERR_CORRUPT, "certificate %s has state %lld", c->serial,
                            (long long)state);
    }
    c->state = (ts_cert_state)state;
    if (state == TS_CERT_VALID) {
        return TS_OK;
    }
    if (ts_sql_is_null(row, 11)) {
        return ts_error_set(TS_ERR_CORRUPT, "certificate %s is revoked but has no revocation",
                            c->serial);
    }
    ts_err rv = ts_sql_get_time(row, 11, "revocations.revoked_at", &c->revoked_at);
    if (rv == TS_OK) {
        rv = ts_sql_get_int(row, 12, "revocations.reason", &reason);
    }
    if (rv == TS_OK && (reason < -1 || reason > 10)) {
        rv = ts_error_set(TS_ERR_CORRUPT, "certificate %s has revocation reason %lld", c->serial,
                          (long long)reason);
    }
    c->revocation_reason = (int)reason;
    return rv;
}

static ts_err cert_from(const ts_sql_row *row, ts_cert_row *c, int with_der)
{
    int64_t state = 0;
    ts_err rv = ts_sql_get_int(row, 0, "certificates.id", &c->id);
    if (rv == TS_OK) {
        rv = ts_sql_get_int(row, 1, "certificates.tenant_id", &c->tenant_id);
    }
    if (rv == TS_OK) {
        rv = ts_sql_get_int(row, 2, "certificates.issuer_ca_id", &c->issuer_ca_id);
    }
    if (rv == TS_OK) {
        rv = ts_sql_get_text(row, 3, "certificates.serial", c->serial, sizeof c->serial);
    }
    if (rv == TS_OK) {
        rv = ts_sql_get_text(row, 4, "certificates.subject", c->subject, sizeof c->subject);
    }
    if (rv == TS_OK) {
        rv =
            ts_sql_get_text(row, 5, "certificates.device_uid", c->device_uid, sizeof c->device_uid);
    }
    if (rv == TS_OK) {
        rv = ts_sql_get_text(row, 6, "certificates.profile", c->profile, sizeof c->profile);
    }
    if (rv == TS_OK) {
        rv = ts_sql_get_text(row, 7, "certificates.fingerprint", c->fingerprint,
                             sizeof c->fingerprint);
    }
    if (rv == TS_OK) {
        rv = ts_sql_get_time(row, 8, "certificates.not_before", &c->not_before);
    }
    if (rv == TS_OK) {
        rv = ts_sql_get_time(row, 9, "certificates.not_after", &c->not_after);
    }
    if (rv == TS_OK) {
        rv = ts_sql_get_int(row, 10, "certificates.state", &state);
    }
    if (rv == TS_OK) {
        rv = cert_revocation(row, c, state);
    }
    if (rv == TS_OK) {
        rv = ts_sql_get_time(row, 13, "certificates.created", &c->created);
    }
    if (rv == TS_OK && with_der) {
        rv = ts_sql_get_blob_dup(row, 14, "certificates.der", TS_STORE_DER_MAX, &c->der,
                                 &c->der_len);
    }
    return rv;
}

static ts_err cert_list_row(void *ctx, const ts_sql_row *row)
{
    cert_list *l = ctx;
    ts_err rv = ts_array_reserve((void **)&l->rows, sizeof *l->rows, &l->cap, l->count + 1);
    if (rv != TS_OK) {
        return rv;
    }
    /* Counted first, so that a DER copied before a later column fails is freed with the rest. */
    ts_cert_row *c = &l->rows[l->count++];
    rv = cert_from(row, c, l->with_der);
    return rv;
}

static ts_err cert_fetch_one(ts_store *store, const char *sql, const ts_sql_value *p, size_t n,
                             const char *serial, int with_der, ts_cert_row *out)
{
    cert_list l = {.with_der = with_der};
    memset(out, 0, sizeof *out);
    ts_err rv = ts_store_read(store, sql, p, n, cert_list_row, &l);
    if (rv == TS_OK && l.count == 0) {
        rv = ts_error_set(TS_ERR_NOT_FOUND, "no certificate with serial %s", serial);
    }
    if (rv == TS_OK) {
        *out = l.rows[0];
        l.rows[0].der = NULL;
    }
    ts_cert_rows_free(l.rows, l.count);
    return rv;
}

ts_err ts_store_cert_get(ts_store *store, int64_t tenant_id, const char *serial, ts_cert_row *out)
{
    char hex[TS_SERIAL_HEX];
    if (store == NULL || out == NULL) {
        return ts_error_set(TS_ERR_INVALID, "ts_store_cert_get: missing argument");
    }
    ts_err rv = ts_serial_canonical(serial, hex);
    if (rv != TS_OK) {
        return rv;
    }
    ts_sql_value p[] = {ts_sql_int(tenant_id), ts_sql_text(hex)};
    /* A serial is unique per issuer; a tenant with several issuers gets the newest. */
    return cert_fetch_one(store,
                          CERT_COLUMNS ", c.der" CERT_FROM
                                       " WHERE c.tenant_id = $1 AND c.serial = $2 "
                                       "ORDER BY c.id DESC LIMIT 1",
                          p, 2, hex, 1, out);
}

ts_err ts_store_cert_get_by_issuer(ts_store *store, int64_t issuer_ca_id, const char *serial,
                                   ts_cert_row *out)
{
    char hex[TS_SERIAL_HEX];
    if (store == NULL || out == NULL) {
        return ts_error_set(TS_ERR_INVALID, "ts_store_cert_get_by_issuer: missing argument");
    }
    ts_err rv = ts_serial_canonical(serial, hex);
    if (rv != TS_OK) {
        return rv;
    }
    ts_sql_value p[] = {ts_sql_int(issuer_ca_id), ts_sql_text(hex)};
    return cert_fetch_one(
        store, CERT_COLUMNS ", c.der" CERT_FROM " WHERE c.issuer_ca_id = $1 AND c.serial = $2", p,
        2, hex, 1, out);
}

ts_err ts_store_cert_state_by_issuer(ts_store *store, int64_t issuer_ca_id, const char *serial,
                                     ts_cert_row *out)
{
    char hex[TS_SERIAL_HEX];
    if (store == NULL || out == NULL) {
        return ts_error_set(TS_ERR_INVALID, "ts_store_cert_state_by_issuer: missing argument");
    }
    ts_err rv = ts_serial_canonical(serial, hex);
    if (rv != TS_OK) {
        return rv;
    }
    ts_sql_value p[] = {ts_sql_int(issuer_ca_id), ts_sql_text(hex)};
    return cert_fetch_one(store,
                          CERT_COLUMNS CERT_FROM " WHERE c.issuer_ca_id = $1 AND c.serial = $2", p,
                          2, hex, 0, out);
}

static ts_err cert_fetch_list(ts_store *store, const char *sql, const ts_sql_value *p, size_t n,
                              ts_cert_row **rows, size_t *count)
{
    cert_list l = {0};
    ts_err rv = ts_store_read(store, sql, p, n, cert_list_row, &l);
    if (rv != TS_OK) {
        ts_cert_rows_free(l.rows, l.count);
        return ts_error_prefix(rv, "listing certificates");
    }
    *rows = l.rows;
    *count = l.count;
    return TS_OK;
}

ts_err ts_store_cert_list(ts_store *store, const ts_cert_filter *filter, ts_cert_row **rows,
                          size_t *count)
{
    if (store == NULL || filter == NULL || rows == NULL || count == NULL) {
        return ts_error_set(TS_ERR_INVALID, "ts_store_cert_list: missing argument");
    }
    *rows = NULL;
    *count = 0;
    if (filter->state != 0 && filter->state != TS_CERT_VALID &&
        filter->state != TS_CERT_REVOKED_STATE) {
        return ts_error_set(TS_ERR_INVALID, "no certificate state %d", (int)filter->state);
    }
    if (filter->device_uid != NULL) {
        ts_err rv = ts_check_text(filter->device_uid, TS_NAME_MAX + 1, 0, "a device UID");
        if (rv != TS_OK) {
            return rv;
        }
    }
    if (filter->after_id < 0) {
        return ts_error_set(TS_ERR_INVALID, "a certificate cursor must not be negative");
    }
    int64_t limit =
        filter->limit == 0 || filter->limit > INT64_MAX ? INT64_MAX : (int64_t)filter->limit;
    /* One statement for every filter: a condition whose parameter is 0 or NULL is off. */
    ts_sql_value p[] = {ts_sql_int(filter->tenant_id),
                        ts_sql_int(filter->state),
                        ts_sql_text(filter->device_uid),
                        ts_sql_int(filter->expiring_before),
                        ts_sql_int(limit),
                        ts_sql_int(filter->after_id)};
    return cert_fetch_list(store,
                           CERT_COLUMNS CERT_FROM " WHERE ($1 = 0 OR c.tenant_id = $1) "
                                                  "AND ($2 = 0 OR c.state = $2) "
                                                  "AND ($3 IS NULL OR c.device_uid = $3) "
                                                  "AND ($4 = 0 OR c.not_after < $4) "
                                                  "AND c.id > $6 "
                                                  "ORDER BY c.id LIMIT $5",
                           p, 6, rows, count);
}

ts_err ts_store_revoked_list(ts_store *store, int64_t issuer_ca_id, time_t now, ts_cert_row **rows,
                             size_t *count)
{
    if (store == NULL || rows == NULL || count == NULL) {
        return ts_error_set(TS_ERR_INVALID, "ts_store_revoked_list: missing argument");
    }
    *rows = NULL;
    *count = 0;
    /* RFC 5280 section 3.3: an expired certificate may leave the CRL. */
    ts_sql_value p[] = {ts_sql_int(issuer_ca_id), ts_sql_int(TS_CERT_REVOKED_STATE),
                        ts_sql_int(now)};
    return cert_fetch_list(store,
                           CERT_COLUMNS CERT_FROM " WHERE c.issuer_ca_id = $1 AND c.state = $2 "
                                                  "AND c.not_after >= $3 ORDER BY c.id",
                           p, 3, rows, count);
}

static int reason_valid(int reason)
{
    /* RFC 5280 section 5.3.1: 7 is unused and removeFromCRL (8) belongs to delta CRLs only. */
    return reason == -1 || (reason >= 0 && reason <= 10 && reason != 7 && reason != 8);
}

ts_err ts_store_cert_revoke(ts_store *store, int64_t tenant_id, const char *serial, time_t when,
                            int reason)
{
    char hex[TS_SERIAL_HEX];
    ts_cert_row cur;
    int64_t changes = 0;
    if (store == NULL) {
        return ts_error_set(TS_ERR_INVALID, "ts_store_cert_revoke: no store");
    }
    ts_err rv = ts_serial_canonical(serial, hex);
    if (rv == TS_OK && !reason_valid(reason)) {
        rv = ts_error_set(TS_ERR_INVALID, "revocation reason %d is not one of RFC 5280's", reason);
    }
    if (rv == TS_OK) {
        rv = ts_store_need_tx(store, "ts_store_cert_revoke");
    }
    if (rv == TS_OK) {
        rv = ts_store_cert_get(store, tenant_id, hex, &cur);
    }
    if (rv != TS_OK) {
        return rv;
    }
    int64_t id = cur.id, issuer = cur.issuer_ca_id;
    int revoked = cur.state == TS_CERT_REVOKED_STATE;
    ts_cert_row_clear(&cur);
    if (revoked) {
        return ts_error_set(TS_ERR_STATE, "certificate %s is already revoked", hex);
    }
    if (when == 0) {
        when = time(NULL);
    }
    /* The state test in the update settles a race with another revoker of the same serial. */
    ts_sql_value up[] = {ts_sql_int(id), ts_sql_int(TS_CERT_REVOKED_STATE),
                         ts_sql_int(TS_CERT_VALID)};
    rv = ts_store_write(store, "UPDATE certificates SET state = $2 WHERE id = $1 AND state = $3",
                        up, 3, &changes);
    if (rv == TS_OK && changes != 1) {
        return ts_error_set(TS_ERR_STATE, "certificate %s is already revoked", hex);
    }
    if (rv == TS_OK) {
        ts_sql_value ins[] = {ts_sql_int(id), ts_sql_int(issuer), ts_sql_text(hex),
                              ts_sql_int(when), ts_sql_int(reason)};
        rv = ts_store_write(store,
                            "INSERT INTO revocations (cert_id, issuer_ca_id, serial, revoked_at, "
                            "reason) VALUES ($1, $2, $3, $4, $5)",
                            ins, 5, NULL);
    }
    return rv != TS_OK ? ts_error_prefix(rv, "revoking %s", hex) : TS_OK;
}
