/*
 * Claim codes (include/tessera/store_access.h): stored as the SHA-256 of the code, with the uses
 * left counted down by one statement per enrollment.
 */
#include <string.h>

#include <openssl/crypto.h>

#include "common/error_internal.h"
#include "store/store_access_internal.h"

#define CLAIM_COLUMNS                                                                              \
    "id, tenant_id, profile, prefix, uses_max, uses_left, created, expires, revoked_at, hash"

typedef struct claim_list {
    ts_claim_row *rows;
    size_t count, cap;
    char *hash; /* one row wanted: its stored hash */
} claim_list;

static ts_err claim_uses(const ts_sql_row *row, ts_claim_row *c)
{
    int64_t max = 0, left = 0;
    ts_err rv = ts_sql_get_int(row, 4, "claim_codes.uses_max", &max);
    if (rv == TS_OK) {
        rv = ts_sql_get_int(row, 5, "claim_codes.uses_left", &left);
    }
    if (rv == TS_OK && (max < 1 || max > UINT32_MAX || left < 0 || left > max)) {
        rv = ts_error_set(TS_ERR_CORRUPT, "claim code %lld has %lld of %lld uses left",
                          (long long)c->id, (long long)left, (long long)max);
    }
    c->uses_max = (unsigned)max;
    c->uses_left = (unsigned)left;
    return rv;
}

static ts_err claim_list_row(void *ctx, const ts_sql_row *row)
{
    claim_list *l = ctx;
    ts_err rv = ts_array_reserve((void **)&l->rows, sizeof *l->rows, &l->cap, l->count + 1);
    if (rv != TS_OK) {
        return rv;
    }
    ts_claim_row *c = &l->rows[l->count];
    memset(c, 0, sizeof *c);
    rv = ts_sql_get_int(row, 0, "claim_codes.id", &c->id);
    if (rv == TS_OK) {
        rv = ts_sql_get_int(row, 1, "claim_codes.tenant_id", &c->tenant_id);
    }
    if (rv == TS_OK) {
        rv = ts_sql_get_text(row, 2, "claim_codes.profile", c->profile, sizeof c->profile);
    }
    if (rv == TS_OK) {
        rv = ts_sql_get_text(row, 3, "claim_codes.prefix", c->prefix, sizeof c->prefix);
    }
    if (rv == TS_OK) {
        rv = claim_uses(row, c);
    }
    if (rv == TS_OK) {
        rv = ts_sql_get_time(row, 6, "claim_codes.created", &c->created);
    }
    if (rv == TS_OK) {
        rv = ts_sql_get_time(row, 7, "claim_codes.expires", &c->expires);
    }
    if (rv == TS_OK) {
        rv = ts_store_opt_time(row, 8, "claim_codes.revoked_at", &c->revoked_at);
    }
    if (rv == TS_OK && l->hash != NULL) {
        if (l->count > 0) {
            return ts_error_set(TS_ERR_CORRUPT, "two claim codes have one hash");
        }
        rv = ts_sql_get_text(row, 9, "claim_codes.hash", l->hash, 65);
    }
    if (rv == TS_OK) {
        l->count++;
    }
    return rv;
}

ts_err ts_store_claim_insert(ts_store *store, ts_claim_row *row, const char *hash_hex)
{
    char hash[65];
    int64_t id = 0;
    if (store == NULL || row == NULL) {
        return ts_error_set(TS_ERR_INVALID, "ts_store_claim_insert: missing argument");
    }
    ts_err rv = ts_fingerprint_canonical(hash_hex, hash);
    if (rv == TS_OK) {
        rv = ts_check_name(row->profile, "a claim code's profile");
    }
    if (rv == TS_OK) {
        rv = ts_check_text(row->prefix, sizeof row->prefix, 1, "a claim code's prefix");
    }
    if (rv == TS_OK && (row->tenant_id <= 0 || row->uses_max < 1)) {
        rv = ts_error_set(TS_ERR_INVALID, "a claim code needs a tenant and at least one use");
    }
    if (rv == TS_OK) {
        rv = ts_store_need_tx(store, "ts_store_claim_insert");
    }
    if (rv != TS_OK) {
        return rv;
    }
    time_t created = row->created != 0 ? row->created : time(NULL);
    ts_sql_value p[] = {ts_sql_int(row->tenant_id), ts_sql_text(hash),
                        ts_sql_text(row->prefix),   ts_sql_text(row->profile),
                        ts_sql_int(row->uses_max),  ts_sql_int(created),
                        ts_sql_int(row->expires)};
    rv = ts_store_write_query(store,
                              "INSERT INTO claim_codes (tenant_id, hash, prefix, profile, "
                              "uses_max, uses_left, created, expires) "
                              "VALUES ($1, $2, $3, $4, $5, $5, $6, $7) "
                              "ON CONFLICT (hash) DO NOTHING RETURNING id",
                              p, 7, ts_store_new_id, &id);
    if (rv != TS_OK) {
        return ts_error_prefix(rv, "storing a claim code");
    }
    if (id == 0) {
        return ts_error_set(TS_ERR_EXISTS, "a claim code with this hash is already stored");
    }
    row->id = id;
    row->created = created;
    row->uses_left = row->uses_max;
    row->revoked_at = 0;
    return TS_OK;
}

static ts_err claim_one(ts_store *store, int write, const char *sql, const ts_sql_value *p,
                        size_t n, ts_claim_row *out, char stored_hash[65])
{
    claim_list l = {.hash = stored_hash};
    ts_err rv = write ? ts_store_write_query(store, sql, p, n, claim_list_row, &l)
                      : ts_store_read(store, sql, p, n, claim_list_row, &l);
    if (rv == TS_OK && l.count == 0) {
        rv = ts_error_set(TS_ERR_NOT_FOUND, "no such claim code");
    }
    if (rv == TS_OK) {
        *out = l.rows[0];
    }
    OPENSSL_free(l.rows);
    return rv;
}

ts_err ts_store_claim_find(ts_store *store, const char *hash_hex, ts_claim_row *out,
                           char stored_hash[65])
{
    char hash[65];
    if (store == NULL || out == NULL || stored_hash == NULL) {
        return ts_error_set(TS_ERR_INVALID, "ts_store_claim_find: missing argument");
    }
    ts_err rv = ts_fingerprint_canonical(hash_hex, hash);
    if (rv != TS_OK) {
        return rv;
    }
    ts_sql_value p[] = {ts_sql_text(hash)};
    return claim_one(store, 0, "SELECT " CLAIM_COLUMNS " FROM claim_codes WHERE hash = $1", p, 1,
                     out, stored_hash);
}

ts_err ts_store_claim_use(ts_store *store, const char *hash_hex, time_t now, ts_claim_row *out,
                          char stored_hash[65])
{
    char hash[65];
    if (store == NULL || out == NULL || stored_hash == NULL) {
        return ts_error_set(TS_ERR_INVALID, "ts_store_claim_use: missing argument");
    }
    ts_err rv = ts_fingerprint_canonical(hash_hex, hash);
    if (rv == TS_OK) {
        rv = ts_store_need_tx(store, "ts_store_claim_use");
    }
    if (rv != TS_OK) {
        return rv;
    }
    /* The conditions sit in the update itself: PostgreSQL re-checks them on the row a
     * concurrent enrollment just changed, so the last use is taken once. */
    ts_sql_value p[] = {ts_sql_text(hash), ts_sql_int(now)};
    return claim_one(store, 1,
                     "UPDATE claim_codes SET uses_left = uses_left - 1 WHERE hash = $1 "
                     "AND uses_left > 0 AND revoked_at IS NULL AND expires > $2 "
                     "RETURNING " CLAIM_COLUMNS,
                     p, 2, out, stored_hash);
}

ts_err ts_store_claim_list(ts_store *store, int64_t tenant_id, ts_claim_row **rows, size_t *count)
{
    claim_list l = {0};
    if (store == NULL || rows == NULL || count == NULL) {
        return ts_error_set(TS_ERR_INVALID, "ts_store_claim_list: missing argument");
    }
    *rows = NULL;
    *count = 0;
    ts_sql_value p[] = {ts_sql_int(tenant_id)};
    ts_err rv = ts_store_read(store,
                              "SELECT " CLAIM_COLUMNS " FROM claim_codes WHERE tenant_id = $1 "
                              "ORDER BY id",
                              p, 1, claim_list_row, &l);
    if (rv != TS_OK) {
        OPENSSL_free(l.rows);
        return ts_error_prefix(rv, "listing claim codes");
    }
    *rows = l.rows;
    *count = l.count;
    return TS_OK;
}

ts_err ts_store_claim_revoke(ts_store *store, int64_t tenant_id, int64_t id, time_t when)
{
    claim_list l = {0};
    int64_t changes = 0;
    if (store == NULL) {
        return ts_error_set(TS_ERR_INVALID, "ts_store_claim_revoke: no store");
    }
    ts_err rv = ts_store_need_tx(store, "ts_store_claim_revoke");
    if (rv != TS_OK) {
        return rv;
    }
    ts_sql_value p[] = {ts_sql_int(tenant_id), ts_sql_int(id)};
    rv = ts_store_read(store,
                       "SELECT " CLAIM_COLUMNS " FROM claim_codes WHERE tenant_id = $1 AND id = $2",
                       p, 2, claim_list_row, &l);
    int found = l.count == 1, revoked = found && l.rows[0].revoked_at != 0;
    OPENSSL_free(l.rows);
    if (rv != TS_OK) {
        return ts_error_prefix(rv, "revoking claim code %lld", (long long)id);
    }
    if (!found) {
        return ts_error_set(TS_ERR_NOT_FOUND, "no claim code %lld", (long long)id);
    }
    if (revoked) {
        return ts_error_set(TS_ERR_STATE, "claim code %lld is already revoked", (long long)id);
    }
    ts_sql_value up[] = {ts_sql_int(id), ts_sql_int(when != 0 ? when : time(NULL))};
    rv = ts_store_write(
        store, "UPDATE claim_codes SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL", up, 2,
        &changes);
    if (rv != TS_OK) {
        return ts_error_prefix(rv, "revoking claim code %lld", (long long)id);
    }
    if (changes != 1) {
        return ts_error_set(TS_ERR_STATE, "claim code %lld is already revoked", (long long)id);
    }
    return TS_OK;
}
