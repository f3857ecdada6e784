/* The device registry (include/tessera/store_access.h). */
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

#include "common/error_internal.h"
#include "store/store_access_internal.h"

#define DEVICE_COLUMNS "id, tenant_id, uid, state, created, updated"

typedef struct device_list {
    ts_device_row *rows;
    size_t count, cap;
} device_list;

static ts_err device_list_row(void *ctx, const ts_sql_row *row)
{
    device_list *l = ctx;
    int64_t state = 0;
    ts_err rv = ts_array_reserve((void **)&l->rows, sizeof *l->rows, &l->cap, l->count + 1);
    if (rv != TS_OK) {
        return rv;
    }
    ts_device_row *d = &l->rows[l->count];
    memset(d, 0, sizeof *d);
    rv = ts_sql_get_int(row, 0, "devices.id", &d->id);
    if (rv == TS_OK) {
        rv = ts_sql_get_int(row, 1, "devices.tenant_id", &d->tenant_id);
    }
    if (rv == TS_OK) {
        rv = ts_sql_get_text(row, 2, "devices.uid", d->uid, sizeof d->uid);
    }
    if (rv == TS_OK) {
        rv = ts_sql_get_int(row, 3, "devices.state", &state);
    }
    if (rv == TS_OK && state != TS_DEVICE_ENABLED && state != TS_DEVICE_DISABLED) {
        rv = ts_error_set(TS_ERR_CORRUPT, "device %s has state %lld", d->uid, (long long)state);
    }
    if (rv == TS_OK) {
        d->state = (ts_device_state)state;
        rv = ts_sql_get_time(row, 4, "devices.created", &d->created);
    }
    if (rv == TS_OK) {
        rv = ts_sql_get_time(row, 5, "devices.updated", &d->updated);
    }
    if (rv == TS_OK) {
        l->count++;
    }
    return rv;
}

static ts_err device_one(ts_store *store, int write, const char *sql, const ts_sql_value *p,
                         size_t n, const char *uid, ts_device_row *out)
{
    device_list l = {0};
    ts_err rv = write ? ts_store_write_query(store, sql, p, n, device_list_row, &l)
                      : ts_store_read(store, sql, p, n, device_list_row, &l);
    if (rv == TS_OK && l.count == 0) {
        rv = ts_error_set(TS_ERR_NOT_FOUND, "no device %s", uid);
    }
    if (rv == TS_OK) {
        *out = l.rows[0];
    }
    OPENSSL_free(l.rows);
    return rv;
}

static ts_err check_state(ts_device_state state)
{
    if (state != TS_DEVICE_ENABLED && state != TS_DEVICE_DISABLED) {
        return ts_error_set(TS_ERR_INVALID, "no device state %d", (int)state);
    }
    return TS_OK;
}

ts_err ts_store_device_insert(ts_store *store, ts_device_row *row)
{
    int64_t id = 0;
    if (store == NULL || row == NULL) {
        return ts_error_set(TS_ERR_INVALID, "ts_store_device_insert: missing argument");
    }
    ts_device_state state = row->state != 0 ? row->state : TS_DEVICE_ENABLED;
    ts_err rv = ts_check_name(row->uid, "a device UID");
    if (rv == TS_OK) {
        rv = check_state(state);
    }
    if (rv == TS_OK && row->tenant_id <= 0) {
        rv = ts_error_set(TS_ERR_INVALID, "a device needs a tenant");
    }
    if (rv == TS_OK) {
        rv = ts_store_need_tx(store, "ts_store_device_insert");
    }
    if (rv != TS_OK) {
        return rv;
    }
    time_t created = row->created != 0 ? row->created : time(NULL);
    ts_sql_value p[] = {ts_sql_int(row->tenant_id), ts_sql_text(row->uid), ts_sql_int(state),
                        ts_sql_int(created)};
    rv = ts_store_write_query(store,
                              "INSERT INTO devices (tenant_id, uid, state, created, updated) "
                              "VALUES ($1, $2, $3, $4, $4) "
                              "ON CONFLICT (tenant_id, uid) DO NOTHING RETURNING id",
                              p, 4, ts_store_new_id, &id);
    if (rv != TS_OK) {
        return ts_error_prefix(rv, "registering device %s", row->uid);
    }
    if (id == 0) {
        return ts_error_set(TS_ERR_EXISTS, "device %s is already registered", row->uid);
    }
    row->id = id;
    row->state = state;
    row->created = created;
    row->updated = created;
    return TS_OK;
}

ts_err ts_store_device_get(ts_store *store, int64_t tenant_id, const char *uid, ts_device_row *out)
{
    if (store == NULL || out == NULL) {
        return ts_error_set(TS_ERR_INVALID, "ts_store_device_get: missing argument");
    }
    ts_err rv = ts_check_name(uid, "a device UID");
    if (rv != TS_OK) {
        return rv;
    }
    ts_sql_value p[] = {ts_sql_int(tenant_id), ts_sql_text(uid)};
    return device_one(store, 0,
                      "SELECT " DEVICE_COLUMNS " FROM devices WHERE tenant_id = $1 AND uid = $2", p,
                      2, uid, out);
}

ts_err ts_store_device_ensure(ts_store *store, int64_t tenant_id, const char *uid, time_t now,
                              ts_device_row *out)
{
    if (store == NULL || out == NULL) {
        return ts_error_set(TS_ERR_INVALID, "ts_store_device_ensure: missing argument");
    }
    ts_err rv = ts_check_name(uid, "a device UID");
    if (rv == TS_OK) {
        rv = ts_store_need_tx(store, "ts_store_device_ensure");
    }
    if (rv != TS_OK) {
        return rv;
    }
    time_t when = now != 0 ? now : time(NULL);
    ts_sql_value p[] = {ts_sql_int(tenant_id), ts_sql_text(uid), ts_sql_int(TS_DEVICE_ENABLED),
                        ts_sql_int(when)};
    if (!store->drv->locks_database) {
        /*
         * One statement whether the device is new or known: DO UPDATE with the row's own state
         * changes nothing but makes RETURNING give the existing row, and it locks that row until
         * commit, so a concurrent disable waits for the issuance or the issuance sees it.
         */
        rv = device_one(store, 1,
                        "INSERT INTO devices (tenant_id, uid, state, created, updated) "
                        "VALUES ($1, $2, $3, $4, $4) ON CONFLICT (tenant_id, uid) "
                        "DO UPDATE SET state = devices.state RETURNING " DEVICE_COLUMNS,
                        p, 4, uid, out);
        return rv != TS_OK ? ts_error_prefix(rv, "registering device %s", uid) : TS_OK;
    }
    /*
     * This transaction holds the whole database (SQLite), so the row cannot change between the
     * two statements. A new device is the insert alone, without what RETURNING costs SQLite
     * (store_internal.h); a known one is read back.
     */
    int64_t id = 0;
    rv = ts_store_insert_id(store,
                            "INSERT INTO devices (tenant_id, uid, state, created, updated) "
                            "VALUES ($1, $2, $3, $4, $4) ON CONFLICT (tenant_id, uid) DO NOTHING",
                            p, 4, &id);
    if (rv == TS_OK && id != 0) {
        memset(out, 0, sizeof *out);
        out->id = id;
        out->tenant_id = tenant_id;
        snprintf(out->uid, sizeof out->uid, "%s", uid);
        out->state = TS_DEVICE_ENABLED;
        out->created = when;
        out->updated = when;
    } else if (rv == TS_OK) {
        rv = device_one(store, 0,
                        "SELECT " DEVICE_COLUMNS " FROM devices WHERE tenant_id = $1 AND uid = $2",
                        p, 2, uid, out);
    }
    return rv != TS_OK ? ts_error_prefix(rv, "registering device %s", uid) : TS_OK;
}

ts_err ts_store_device_list(ts_store *store, int64_t tenant_id, const ts_device_filter *filter,
                            ts_device_row **rows, size_t *count)
{
    device_list l = {0};
    ts_device_filter none = {0};
    if (store == NULL || rows == NULL || count == NULL) {
        return ts_error_set(TS_ERR_INVALID, "ts_store_device_list: missing argument");
    }
    *rows = NULL;
    *count = 0;
    if (filter == NULL) {
        filter = &none;
    }
    if (filter->state != 0 && check_state(filter->state) != TS_OK) {
        return TS_ERR_INVALID;
    }
    int64_t limit =
        filter->limit == 0 || filter->limit > INT64_MAX ? INT64_MAX : (int64_t)filter->limit;
    ts_sql_value p[] = {ts_sql_int(tenant_id), ts_sql_int(filter->state),
                        ts_sql_int(filter->after_id), ts_sql_int(limit)};
    ts_err rv = ts_store_read(store,
                              "SELECT " DEVICE_COLUMNS " FROM devices WHERE tenant_id = $1 "
                              "AND ($2 = 0 OR state = $2) AND id > $3 ORDER BY id LIMIT $4",
                              p, 4, device_list_row, &l);
    if (rv != TS_OK) {
        OPENSSL_free(l.rows);
        return ts_error_prefix(rv, "listing devices");
    }
    *rows = l.rows;
    *count = l.count;
    return TS_OK;
}

ts_err ts_store_device_set_state(ts_store *store, int64_t tenant_id, const char *uid,
                                 ts_device_state state, time_t when)
{
    ts_device_row cur;
    int64_t changes = 0;
    if (store == NULL) {
        return ts_error_set(TS_ERR_INVALID, "ts_store_device_set_state: no store");
    }
    ts_err rv = check_state(state);
    if (rv == TS_OK) {
        rv = ts_store_need_tx(store, "ts_store_device_set_state");
    }
    if (rv == TS_OK) {
        rv = ts_store_device_get(store, tenant_id, uid, &cur);
    }
    if (rv != TS_OK) {
        return rv;
    }
    /* The state test in the update settles a race with another writer. */
    ts_sql_value p[] = {ts_sql_int(cur.id), ts_sql_int(state),
                        ts_sql_int(when != 0 ? when : time(NULL))};
    rv = ts_store_write(store,
                        "UPDATE devices SET state = $2, updated = $3 WHERE id = $1 AND state <> $2",
                        p, 3, &changes);
    if (rv != TS_OK) {
        return ts_error_prefix(rv, "updating device %s", uid);
    }
    if (changes != 1) {
        return ts_error_set(TS_ERR_STATE, "device %s is already %s", uid,
                            state == TS_DEVICE_DISABLED ? "disabled" : "enabled");
    }
    return TS_OK;
}
