/*
 * What each device last reported of its firmware, and the offers of releases made to devices in
 * their sessions (include/tessera/firmware.h).
 */
#include <string.h>

#include <openssl/crypto.h>

#include "common/error_internal.h"
#include "store/store_access_internal.h"
#include "tessera/firmware.h"

ts_err ts_store_fw_device_put(ts_store *store, int64_t tenant_id, const ts_fw_device_row *row)
{
    if (store == NULL || row == NULL) {
        return ts_error_set(TS_ERR_INVALID, "ts_store_fw_device_put: missing argument");
    }
    ts_err rv = ts_check_text(row->uid, sizeof row->uid, 1, "a device UID");
    if (rv == TS_OK) {
        rv = ts_check_text(row->version, sizeof row->version, 0, "a firmware version");
    }
    if (rv == TS_OK) {
        rv = ts_check_text(row->hw, sizeof row->hw, 0, "a hardware id");
    }
    if (rv == TS_OK) {
        rv = ts_store_need_tx(store, "ts_store_fw_device_put");
    }
    if (rv != TS_OK) {
        return rv;
    }
    ts_sql_value p[] = {ts_sql_int(tenant_id), ts_sql_text(row->uid), ts_sql_text(row->version),
                        ts_sql_text(row->hw), ts_sql_int(row->reported)};
    rv = ts_store_write(store,
                        "INSERT INTO fw_devices (tenant_id, device_uid, version, hw, reported) "
                        "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tenant_id, device_uid) DO UPDATE "
                        "SET version = excluded.version, hw = excluded.hw, "
                        "reported = excluded.reported",
                        p, 5, NULL);
    return rv != TS_OK ? ts_error_prefix(rv, "storing the firmware of device '%s'", row->uid)
                       : TS_OK;
}

typedef struct device_out {
    ts_fw_device_row *row;
    int found;
} device_out;

static ts_err device_row(void *ctx, const ts_sql_row *row)
{
    device_out *o = ctx;
    ts_fw_device_row *d = o->row;
    if (o->found) {
        return ts_error_set(TS_ERR_CORRUPT, "two firmware reports for one device");
    }
    ts_err rv = ts_sql_get_text(row, 0, "fw_devices.device_uid", d->uid, sizeof d->uid);
    if (rv == TS_OK) {
        rv = ts_sql_get_text(row, 1, "fw_devices.version", d->version, sizeof d->version);
    }
    if (rv == TS_OK) {
        rv = ts_sql_get_text(row, 2, "fw_devices.hw", d->hw, sizeof d->hw);
    }
    if (rv == TS_OK) {
        rv = ts_sql_get_time(row, 3, "fw_devices.reported", &d->reported);
    }
    o->found = rv == TS_OK;
    return rv;
}

ts_err ts_store_fw_device_get(ts_store *store, int64_t tenant_id, const char *uid,
                              ts_fw_device_row *out)
{
    if (store == NULL || uid == NULL || out == NULL) {
        return ts_error_set(TS_ERR_INVALID, "ts_store_fw_device_get: missing argument");
    }
    memset(out, 0, sizeof *out);
    device_out o = {.row = out};
    ts_sql_value p[] = {ts_sql_int(tenant_id), ts_sql_text(uid)};
    ts_err rv = ts_store_read(store,
                              "SELECT device_uid, version, hw, reported FROM fw_devices "
                              "WHERE tenant_id = $1 AND device_uid = $2",
                              p, 2, device_row, &o);
    if (rv == TS_OK && !o.found) {
        rv = ts_error_set(TS_ERR_NOT_FOUND, "device '%.64s' has not reported its firmware", uid);
    }
    return rv;
}

/* --- Offers ----------------------------------------------------------------------------------- */

typedef struct offer_list {
    ts_fw_offer_row *rows;
    size_t count, cap;
} offer_list;

static ts_err offer_row(void *ctx, const ts_sql_row *row)
{
    offer_list *l = ctx;
    int64_t state = 0;
    ts_err rv = ts_array_reserve((void **)&l->rows, sizeof *l->rows, &l->cap, l->count + 1);
    if (rv != TS_OK) {
        return rv;
    }
    ts_fw_offer_row *o = &l->rows[l->count];
    memset(o, 0, sizeof *o);
    rv = ts_sql_get_int(row, 0, "fw_offers.id", &o->id);
    if (rv == TS_OK) {
        rv = ts_sql_get_text(row, 1, "fw_offers.release_id", o->release_id, sizeof o->release_id);
    }
    if (rv == TS_OK) {
        rv = ts_sql_get_text(row, 2, "fw_offers.device_uid", o->device_uid, sizeof o->device_uid);
    }
    if (rv == TS_OK) {
        rv = ts_sql_get_int(row, 3, "fw_offers.state", &state);
    }
    if (rv == TS_OK && (state < TS_FW_OFFER_SENT || state > TS_FW_OFFER_FAILED)) {
        rv = ts_error_set(TS_ERR_CORRUPT, "offer %lld has state %lld", (long long)o->id,
                          (long long)state);
    }
    o->state = (ts_fw_offer_state)state;
    if (rv == TS_OK) {
        rv = ts_sql_get_text(row, 4, "fw_offers.error_code", o->error_code, sizeof o->error_code);
    }
    if (rv == TS_OK) {
        rv = ts_sql_get_text(row, 5, "fw_offers.error_message", o->error_message,
                             sizeof o->error_message);
    }
    if (rv == TS_OK) {
        rv = ts_sql_get_time(row, 6, "fw_offers.sent", &o->sent);
    }
    if (rv == TS_OK) {
        rv = ts_sql_get_time(row, 7, "fw_offers.answered", &o->answered);
    }
    if (rv == TS_OK) {
        l->count++;
    }
    return rv;
}

#define OFFER_SELECT                                                                               \
    "SELECT id, release_id, device_uid, state, error_code, error_message, sent, answered "         \
    "FROM fw_offers "

ts_err ts_store_fw_offer_insert(ts_store *store, int64_t tenant_id, const char *uid,
                                const char *release_id, time_t now, int64_t *id)
{
    if (store == NULL || uid == NULL || release_id == NULL || id == NULL) {
        return ts_error_set(TS_ERR_INVALID, "ts_store_fw_offer_insert: missing argument");
    }
    *id = 0;
    ts_err rv = ts_store_need_tx(store, "ts_store_fw_offer_insert");
    if (rv != TS_OK) {
        return rv;
    }
    ts_sql_value p[] = {ts_sql_int(tenant_id), ts_sql_text(uid), ts_sql_text(release_id),
                        ts_sql_int(now)};
    /* Only a release of the same tenant: the row is made from the release's own row, so a
     * release id of another tenant inserts nothing. */
    rv = ts_store_write_query(store,
                              "INSERT INTO fw_offers (tenant_id, device_uid, release_id, state, "
                              "error_code, error_message, sent, answered) "
                              "SELECT tenant_id, $2, release_id, 1, '', '', $4, 0 FROM fw_releases "
                              "WHERE release_id = $3 AND tenant_id = $1 RETURNING id",
                              p, 4, ts_store_new_id, id);
    if (rv == TS_OK && *id <= 0) {
        rv = ts_error_set(TS_ERR_NOT_FOUND, "no firmware release '%s' in this tenant", release_id);
    }
    return rv != TS_OK ? ts_error_prefix(rv, "recording an offer to device '%s'", uid) : TS_OK;
}

ts_err ts_store_fw_offer_list(ts_store *store, int64_t tenant_id, const char *uid,
                              const char *release_id, ts_fw_offer_row **rows, size_t *count)
{
    offer_list l = {0};
    if (store == NULL || rows == NULL || count == NULL) {
        return ts_error_set(TS_ERR_INVALID, "ts_store_fw_offer_list: missing argument");
    }
    *rows = NULL;
    *count = 0;
    ts_sql_value p[] = {ts_sql_int(tenant_id), ts_sql_text(uid), ts_sql_text(release_id)};
    ts_err rv =
        ts_store_read(store,
                      OFFER_SELECT "WHERE tenant_id = $1 AND ($2 IS NULL OR device_uid = $2) "
                                   "AND ($3 IS NULL OR release_id = $3) ORDER BY id",
                      p, 3, offer_row, &l);
    if (rv != TS_OK) {
        OPENSSL_free(l.rows);
        return ts_error_prefix(rv, "reading firmware offers");
    }
    *rows = l.rows;
    *count = l.count;
    return TS_OK;
}

ts_err ts_store_fw_offer_mark_sent(ts_store *store, int64_t tenant_id, int64_t id, time_t now)
{
    ts_err rv = ts_store_need_tx(store, "ts_store_fw_offer_mark_sent");
    if (rv != TS_OK) {
        return rv;
    }
    ts_sql_value p[] = {ts_sql_int(id), ts_sql_int(now), ts_sql_int(tenant_id)};
    return ts_store_write(store,
                          "UPDATE fw_offers SET sent = $2 WHERE id = $1 AND tenant_id = $3 "
                          "AND state = 1",
                          p, 3, NULL);
}

ts_err ts_store_fw_offer_answer(ts_store *store, int64_t tenant_id, const char *uid,
                                const ts_fw_offer_answer *a, time_t now, ts_fw_offer_row *out)
{
    offer_list l = {0};
    int64_t changed = 0;
    if (store == NULL || uid == NULL || a == NULL) {
        return ts_error_set(TS_ERR_INVALID, "ts_store_fw_offer_answer: missing argument");
    }
    ts_err rv = ts_store_need_tx(store, "ts_store_fw_offer_answer");
    if (rv != TS_OK) {
        return rv;
    }
    const char *code = a->ok ? "" : (a->error_code != NULL ? a->error_code : "");
    const char *msg = a->ok ? "" : (a->error_message != NULL ? a->error_message : "");
    if (strlen(code) > 32 || strlen(msg) > 512) {
        return ts_error_set(TS_ERR_INVALID, "an offer's error code or message is too long");
    }
    ts_sql_value p[] = {
        ts_sql_int(a->offer_id), ts_sql_int(tenant_id),
        ts_sql_text(uid),        ts_sql_int(a->ok ? TS_FW_OFFER_DONE : TS_FW_OFFER_FAILED),
        ts_sql_text(code),       ts_sql_text(msg),
        ts_sql_int(now)};
    rv = ts_store_write(store,
                        "UPDATE fw_offers SET state = $4, error_code = $5, error_message = $6, "
                        "answered = $7 WHERE id = $1 AND tenant_id = $2 AND device_uid = $3 "
                        "AND state = 1",
                        p, 7, &changed);
    if (rv == TS_OK && changed != 1) {
        rv = ts_error_set(TS_ERR_NOT_FOUND,
                          "result for request %lld: no unanswered firmware offer to this device",
                          (long long)(a->offer_id + TS_FW_OFFER_ID_BASE));
    }
    if (rv == TS_OK && out != NULL) {
        ts_sql_value q[] = {ts_sql_int(a->offer_id)};
        rv = ts_store_read(store, OFFER_SELECT "WHERE id = $1", q, 1, offer_row, &l);
        if (rv == TS_OK && l.count != 1) {
            rv = ts_error_set(TS_ERR_STORE, "offer %lld vanished", (long long)a->offer_id);
        }
        if (rv == TS_OK) {
            *out = l.rows[0];
        }
        OPENSSL_free(l.rows);
    }
    return rv;
}
