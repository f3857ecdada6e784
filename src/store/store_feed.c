/*
 * The revocation feed (include/tessera/store_access.h): revocations and device state changes in
 * the order they were committed, for readers that poll with the last seq they saw.
 *
 * seq is not an identity column: an identity hands out numbers at insert time, so a transaction
 * that took 7 could commit after one that took 8, and a reader that had seen 8 would never see
 * 7. Instead the appender takes the audit chain's lock (which every writer of the feed takes,
 * and holds until commit) and then numbers its event MAX(seq) + 1.
 */
#include <string.h>

#include <openssl/crypto.h>

#include "common/error_internal.h"
#include "store/store_access_internal.h"

#define FEED_COLUMNS                                                                               \
    "seq, tenant_id, event, serial, issuer_fingerprint, device_uid, reason, event_time"

typedef struct feed_list {
    ts_feed_row *rows;
    size_t count, cap;
} feed_list;

static ts_err feed_list_row(void *ctx, const ts_sql_row *row)
{
    feed_list *l = ctx;
    int64_t event = 0, reason = 0;
    ts_err rv = ts_array_reserve((void **)&l->rows, sizeof *l->rows, &l->cap, l->count + 1);
    if (rv != TS_OK) {
        return rv;
    }
    ts_feed_row *f = &l->rows[l->count];
    memset(f, 0, sizeof *f);
    rv = ts_sql_get_int(row, 0, "feed.seq", &f->seq);
    if (rv == TS_OK) {
        rv = ts_sql_get_int(row, 1, "feed.tenant_id", &f->tenant_id);
    }
    if (rv == TS_OK) {
        rv = ts_sql_get_int(row, 2, "feed.event", &event);
    }
    if (rv == TS_OK && (event < TS_FEED_CERT_REVOKED || event > TS_FEED_DEVICE_ENABLED)) {
        rv = ts_error_set(TS_ERR_CORRUPT, "feed entry %lld has event %lld", (long long)f->seq,
                          (long long)event);
    }
    if (rv == TS_OK) {
        f->event = (ts_feed_event)event;
        rv = ts_sql_get_text(row, 3, "feed.serial", f->serial, sizeof f->serial);
    }
    if (rv == TS_OK) {
        rv = ts_sql_get_text(row, 4, "feed.issuer_fingerprint", f->issuer_fingerprint,
                             sizeof f->issuer_fingerprint);
    }
    if (rv == TS_OK) {
        rv = ts_sql_get_text(row, 5, "feed.device_uid", f->device_uid, sizeof f->device_uid);
    }
    if (rv == TS_OK) {
        rv = ts_sql_get_int(row, 6, "feed.reason", &reason);
    }
    if (rv == TS_OK && (reason < -1 || reason > 10)) {
        rv = ts_error_set(TS_ERR_CORRUPT, "feed entry %lld has reason %lld", (long long)f->seq,
                          (long long)reason);
    }
    if (rv == TS_OK) {
        f->reason = (int)reason;
        rv = ts_sql_get_time(row, 7, "feed.event_time", &f->time);
    }
    if (rv == TS_OK) {
        l->count++;
    }
    return rv;
}

static ts_err check_feed(const ts_feed_row *row, char serial[TS_SERIAL_HEX], char fp[65])
{
    serial[0] = '\0';
    fp[0] = '\0';
    if (row->tenant_id <= 0) {
        return ts_error_set(TS_ERR_INVALID, "a feed event needs a tenant");
    }
    if (row->event < TS_FEED_CERT_REVOKED || row->event > TS_FEED_DEVICE_ENABLED) {
        return ts_error_set(TS_ERR_INVALID, "no feed event %d", (int)row->event);
    }
    if (row->reason < -1 || row->reason > 10) {
        return ts_error_set(TS_ERR_INVALID, "feed reason %d is not a CRL reason", row->reason);
    }
    ts_err rv = ts_check_text(row->device_uid, sizeof row->device_uid, 0, "a device UID");
    if (rv != TS_OK || row->event != TS_FEED_CERT_REVOKED) {
        return rv;
    }
    /* A revocation names the certificate by issuer and serial (RFC 5280 section 5.3 does the
     * same in a CRL entry): both are required. */
    rv = ts_serial_canonical(row->serial, serial);
    if (rv == TS_OK) {
        rv = ts_fingerprint_canonical(row->issuer_fingerprint, fp);
    }
    return rv;
}

ts_err ts_store_feed_append(ts_store *store, ts_feed_row *row)
{
    char serial[TS_SERIAL_HEX], fp[65];
    feed_list l = {0};
    if (store == NULL || row == NULL) {
        return ts_error_set(TS_ERR_INVALID, "ts_store_feed_append: missing argument");
    }
    ts_err rv = check_feed(row, serial, fp);
    if (rv == TS_OK) {
        rv = ts_store_need_tx(store, "ts_store_feed_append");
    }
    if (rv == TS_OK) {
        rv = ts_audit_lock(store);
    }
    if (rv != TS_OK) {
        return rv;
    }
    time_t when = row->time != 0 ? row->time : time(NULL);
    ts_sql_value p[] = {
        ts_sql_int(row->tenant_id),   ts_sql_int(row->event),  ts_sql_text(serial), ts_sql_text(fp),
        ts_sql_text(row->device_uid), ts_sql_int(row->reason), ts_sql_int(when)};
    /* Under the lock no other appender is between our read of MAX(seq) and our commit. */
    rv = ts_store_write_query(store,
                              "INSERT INTO feed (" FEED_COLUMNS ") "
                              "SELECT COALESCE(MAX(seq), 0) + 1, $1, $2, $3, $4, $5, $6, $7 "
                              "FROM feed RETURNING " FEED_COLUMNS,
                              p, 7, feed_list_row, &l);
    if (rv == TS_OK && l.count != 1) {
        rv = ts_error_set(TS_ERR_STORE, "the feed insert returned %zu rows", l.count);
    }
    if (rv == TS_OK) {
        *row = l.rows[0];
    }
    OPENSSL_free(l.rows);
    return rv != TS_OK ? ts_error_prefix(rv, "appending to the revocation feed") : TS_OK;
}

ts_err ts_store_feed_list(ts_store *store, int64_t tenant_id, int64_t since, size_t limit,
                          ts_feed_row **rows, size_t *count)
{
    feed_list l = {0};
    if (store == NULL || rows == NULL || count == NULL) {
        return ts_error_set(TS_ERR_INVALID, "ts_store_feed_list: missing argument");
    }
    *rows = NULL;
    *count = 0;
    int64_t lim = limit == 0 || limit > INT64_MAX ? INT64_MAX : (int64_t)limit;
    ts_sql_value p[] = {ts_sql_int(tenant_id), ts_sql_int(since), ts_sql_int(lim)};
    ts_err rv = ts_store_read(store,
                              "SELECT " FEED_COLUMNS " FROM feed WHERE tenant_id = $1 AND seq > $2 "
                              "ORDER BY seq LIMIT $3",
                              p, 3, feed_list_row, &l);
    if (rv != TS_OK) {
        OPENSSL_free(l.rows);
        return ts_error_prefix(rv, "reading the revocation feed");
    }
    *rows = l.rows;
    *count = l.count;
    return TS_OK;
}

ts_err ts_store_feed_head(ts_store *store, int64_t *seq)
{
    if (store == NULL || seq == NULL) {
        return ts_error_set(TS_ERR_INVALID, "ts_store_feed_head: missing argument");
    }
    *seq = 0;
    ts_err rv = ts_store_read(store, "SELECT COALESCE(MAX(seq), 0) FROM feed", NULL, 0,
                              ts_sql_one_int, seq);
    return rv != TS_OK ? ts_error_prefix(rv, "reading the revocation feed") : TS_OK;
}
