/*
 * Firmware releases (include/tessera/firmware.h): what a published update file is, for whom, and
 * whether it is still offered. Version numbers are kept as signed 64-bit integers; the manifest
 * parser limits them to 2^63-1.
 */
#include <string.h>

#include <openssl/crypto.h>

#include "common/error_internal.h"
#include "store/store_access_internal.h"
#include "tessera/firmware.h"

/* Defined in the store, which checks ids itself: the server links the store, not the reverse. */
ts_err ts_fw_release_id_check(const char *id)
{
    size_t n = id != NULL ? strlen(id) : 0;
    if (n != TS_FW_RELEASE_ID_LEN || strspn(id, "0123456789abcdef") != n) {
        return ts_error_set(TS_ERR_INVALID, "a release id is %d lower-case hex digits",
                            TS_FW_RELEASE_ID_LEN);
    }
    return TS_OK;
}

#define RELEASE_COLS                                                                               \
    "r.release_id, r.tenant_id, r.version, r.seq, r.min_version, r.hw, r.size, r.sha256, "         \
    "r.encrypted, r.signer, r.target_kind, r.target, r.state, r.created_by, r.created, "           \
    "r.withdrawn "

#define RELEASE_SELECT "SELECT " RELEASE_COLS "FROM fw_releases r "

typedef struct release_list {
    ts_fw_release_row *rows;
    size_t count, cap;
} release_list;

static ts_err get_u64(const ts_sql_row *row, size_t col, const char *what, uint64_t *out)
{
    int64_t v = 0;
    ts_err rv = ts_sql_get_int(row, col, what, &v);
    if (rv == TS_OK && v < 0) {
        rv = ts_error_set(TS_ERR_CORRUPT, "%s is negative", what);
    }
    *out = (uint64_t)v;
    return rv;
}

static ts_err get_small(const ts_sql_row *row, size_t col, const char *what, int lo, int hi,
                        int *out)
{
    int64_t v = 0;
    ts_err rv = ts_sql_get_int(row, col, what, &v);
    if (rv == TS_OK && (v < lo || v > hi)) {
        rv = ts_error_set(TS_ERR_CORRUPT, "%s is %lld", what, (long long)v);
    }
    *out = (int)v;
    return rv;
}

static ts_err release_row(void *ctx, const ts_sql_row *row)
{
    release_list *l = ctx;
    int kind = 0, state = 0;
    ts_err rv = ts_array_reserve((void **)&l->rows, sizeof *l->rows, &l->cap, l->count + 1);
    if (rv != TS_OK) {
        return rv;
    }
    ts_fw_release_row *r = &l->rows[l->count];
    memset(r, 0, sizeof *r);
    rv = ts_sql_get_text(row, 0, "fw_releases.release_id", r->id, sizeof r->id);
    if (rv == TS_OK) {
        rv = ts_sql_get_int(row, 1, "fw_releases.tenant_id", &r->tenant_id);
    }
    if (rv == TS_OK) {
        rv = get_u64(row, 2, "fw_releases.version", &r->version);
    }
    if (rv == TS_OK) {
        rv = get_u64(row, 3, "fw_releases.seq", &r->seq);
    }
    if (rv == TS_OK) {
        rv = get_u64(row, 4, "fw_releases.min_version", &r->min_version);
    }
    if (rv == TS_OK) {
        rv = ts_sql_get_text(row, 5, "fw_releases.hw", r->hw, sizeof r->hw);
    }
    if (rv == TS_OK) {
        rv = get_u64(row, 6, "fw_releases.size", &r->size);
    }
    if (rv == TS_OK) {
        rv = ts_sql_get_text(row, 7, "fw_releases.sha256", r->sha256, sizeof r->sha256);
    }
    if (rv == TS_OK) {
        rv = get_small(row, 8, "fw_releases.encrypted", 0, 1, &r->encrypted);
    }
    if (rv == TS_OK) {
        rv = ts_sql_get_text(row, 9, "fw_releases.signer", r->signer, sizeof r->signer);
    }
    if (rv == TS_OK) {
        rv = get_small(row, 10, "fw_releases.target_kind", 1, 3, &kind);
        r->target_kind = (ts_fw_target_kind)kind;
    }
    if (rv == TS_OK) {
        rv = ts_sql_get_text(row, 11, "fw_releases.target", r->target, sizeof r->target);
    }
    if (rv == TS_OK) {
        rv = get_small(row, 12, "fw_releases.state", 1, 2, &state);
        r->state = (ts_fw_release_state)state;
    }
    if (rv == TS_OK) {
        rv =
            ts_sql_get_text(row, 13, "fw_releases.created_by", r->created_by, sizeof r->created_by);
    }
    if (rv == TS_OK) {
        rv = ts_sql_get_time(row, 14, "fw_releases.created", &r->created);
    }
    if (rv == TS_OK) {
        rv = ts_sql_get_time(row, 15, "fw_releases.withdrawn", &r->withdrawn);
    }
    if (rv == TS_OK) {
        l->count++;
    }
    return rv;
}

static ts_err list_read(ts_store *store, const char *sql, const ts_sql_value *p, size_t n,
                        ts_fw_release_row **rows, size_t *count)
{
    release_list l = {0};
    ts_err rv = ts_store_read(store, sql, p, n, release_row, &l);
    if (rv != TS_OK) {
        OPENSSL_free(l.rows);
        return ts_error_prefix(rv, "reading firmware releases");
    }
    *rows = l.rows;
    *count = l.count;
    return TS_OK;
}

ts_err ts_store_fw_release_insert(ts_store *store, const ts_fw_release_row *r)
{
    if (store == NULL || r == NULL || r->tenant_id <= 0) {
        return ts_error_set(TS_ERR_INVALID, "ts_store_fw_release_insert: missing argument");
    }
    ts_err rv = ts_fw_release_id_check(r->id);
    if (rv == TS_OK && (r->version > INT64_MAX || r->seq > INT64_MAX ||
                        r->min_version > INT64_MAX || r->size == 0 || r->size > INT64_MAX)) {
        rv = ts_error_set(TS_ERR_INVALID, "a release's numbers are 0 to 2^63-1");
    }
    if (rv == TS_OK && (r->target_kind < TS_FW_TARGET_ALL || r->target_kind > TS_FW_TARGET_GROUP ||
                        (r->target_kind == TS_FW_TARGET_ALL) != (r->target[0] == '\0'))) {
        rv = ts_error_set(TS_ERR_INVALID, "a release's target is all, a device or a group");
    }
    if (rv == TS_OK && (r->hw[0] == '\0' || strlen(r->sha256) != 64)) {
        rv = ts_error_set(TS_ERR_INVALID, "a release needs its hardware id and SHA-256");
    }
    if (rv == TS_OK) {
        rv = ts_store_need_tx(store, "ts_store_fw_release_insert");
    }
    if (rv != TS_OK) {
        return rv;
    }
    ts_sql_value p[] = {ts_sql_text(r->id),
                        ts_sql_int(r->tenant_id),
                        ts_sql_int((int64_t)r->version),
                        ts_sql_int((int64_t)r->seq),
                        ts_sql_int((int64_t)r->min_version),
                        ts_sql_text(r->hw),
                        ts_sql_int((int64_t)r->size),
                        ts_sql_text(r->sha256),
                        ts_sql_int(r->encrypted ? 1 : 0),
                        ts_sql_text(r->signer),
                        ts_sql_int(r->target_kind),
                        ts_sql_text(r->target),
                        ts_sql_int(TS_FW_RELEASE_ACTIVE),
                        ts_sql_text(r->created_by),
                        ts_sql_int(r->created),
                        ts_sql_int(0)};
    rv = ts_store_write(store,
                        "INSERT INTO fw_releases (release_id, tenant_id, version, seq, "
                        "min_version, hw, size, sha256, encrypted, signer, target_kind, target, "
                        "state, created_by, created, withdrawn) VALUES ($1, $2, $3, $4, $5, $6, "
                        "$7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
                        p, 16, NULL);
    return rv != TS_OK ? ts_error_prefix(rv, "recording release %s", r->id) : TS_OK;
}

ts_err ts_store_fw_release_get(ts_store *store, int64_t tenant_id, const char *id,
                               ts_fw_release_row *out)
{
    ts_fw_release_row *rows = NULL;
    size_t n = 0;
    if (store == NULL || id == NULL || out == NULL) {
        return ts_error_set(TS_ERR_INVALID, "ts_store_fw_release_get: missing argument");
    }
    ts_sql_value p[] = {ts_sql_int(tenant_id), ts_sql_text(id)};
    ts_err rv = list_read(store, RELEASE_SELECT "WHERE r.tenant_id = $1 AND r.release_id = $2", p,
                          2, &rows, &n);
    if (rv == TS_OK && n == 0) {
        rv = ts_error_set(TS_ERR_NOT_FOUND, "no firmware release '%.64s'", id);
    }
    if (rv == TS_OK) {
        *out = rows[0];
    }
    OPENSSL_free(rows);
    return rv;
}

ts_err ts_store_fw_release_list(ts_store *store, int64_t tenant_id, ts_fw_release_row **rows,
                                size_t *count)
{
    if (store == NULL || rows == NULL || count == NULL) {
        return ts_error_set(TS_ERR_INVALID, "ts_store_fw_release_list: missing argument");
    }
    *rows = NULL;
    *count = 0;
    ts_sql_value p[] = {ts_sql_int(tenant_id)};
    return list_read(store,
                     RELEASE_SELECT "WHERE r.tenant_id = $1 ORDER BY r.created DESC, r.release_id",
                     p, 1, rows, count);
}

ts_err ts_store_fw_release_withdraw(ts_store *store, int64_t tenant_id, const char *id, time_t now)
{
    ts_fw_release_row row;
    int64_t changed = 0;
    ts_err rv = ts_store_need_tx(store, "ts_store_fw_release_withdraw");
    if (rv == TS_OK) {
        rv = ts_store_fw_release_get(store, tenant_id, id, &row);
    }
    if (rv == TS_OK && row.state != TS_FW_RELEASE_ACTIVE) {
        rv = ts_error_set(TS_ERR_STATE, "release %s is withdrawn already", id);
    }
    if (rv != TS_OK) {
        return rv;
    }
    ts_sql_value p[] = {ts_sql_int(tenant_id), ts_sql_text(id), ts_sql_int(now)};
    rv = ts_store_write(store,
                        "UPDATE fw_releases SET state = 2, withdrawn = $3 "
                        "WHERE tenant_id = $1 AND release_id = $2 AND state = 1",
                        p, 3, &changed);
    if (rv == TS_OK && changed != 1) {
        rv = ts_error_set(TS_ERR_CONFLICT, "release %s changed meanwhile", id);
    }
    return rv;
}

ts_err ts_store_fw_release_for_device(ts_store *store, int64_t tenant_id, const char *uid,
                                      const char *hw, ts_fw_release_row **rows, size_t *count)
{
    if (store == NULL || uid == NULL || rows == NULL || count == NULL) {
        return ts_error_set(TS_ERR_INVALID, "ts_store_fw_release_for_device: missing argument");
    }
    *rows = NULL;
    *count = 0;
    ts_sql_value p[] = {ts_sql_int(tenant_id), ts_sql_text(uid), ts_sql_text(hw)};
    return list_read(store,
                     RELEASE_SELECT
                     "WHERE r.tenant_id = $1 AND r.state = 1 AND ($3 IS NULL OR r.hw = $3) AND "
                     "(r.target_kind = 1 OR (r.target_kind = 2 AND r.target = $2) OR "
                     "(r.target_kind = 3 AND EXISTS (SELECT 1 FROM device_groups g "
                     "JOIN device_group_members m ON m.group_id = g.id WHERE g.tenant_id = $1 "
                     "AND g.name = r.target AND m.device_uid = $2))) "
                     "ORDER BY r.version DESC, r.created DESC, r.release_id",
                     p, 3, rows, count);
}

ts_err ts_store_fw_file_used(ts_store *store, const char *sha256, int *used)
{
    int64_t n = 0;
    if (store == NULL || sha256 == NULL || used == NULL) {
        return ts_error_set(TS_ERR_INVALID, "ts_store_fw_file_used: missing argument");
    }
    ts_sql_value p[] = {ts_sql_text(sha256)};
    ts_err rv = ts_store_read(store, "SELECT COUNT(*) FROM fw_releases WHERE sha256 = $1", p, 1,
                              ts_sql_one_int, &n);
    *used = n > 0;
    return rv;
}
