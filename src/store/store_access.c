/*
 * Users and API tokens (include/tessera/store_access.h).
 *
 * Instance-wide users have a NULL tenant; every statement compares COALESCE(tenant_id, 0), the
 * same expression the unique index on names uses, so tenant 0 means "instance-wide" throughout.
 * Tokens are stored as the SHA-256 of the secret only; a lookup returns the stored hash for the
 * caller's constant-time comparison.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "common/error_internal.h"
#include "store/store_access_internal.h"

ts_err ts_store_label_check(const char *text, size_t size, const char *what)
{
    ts_err rv = ts_check_text(text, size, 1, what);
    if (rv != TS_OK) {
        return rv;
    }
    for (const unsigned char *c = (const unsigned char *)text; *c != '\0'; c++) {
        if (*c < 0x20 || *c == 0x7f) {
            return ts_error_set(TS_ERR_INVALID, "%s holds a control character", what);
        }
    }
    return TS_OK;
}

ts_err ts_store_new_id(void *ctx, const ts_sql_row *row)
{
    return ts_sql_get_int(row, 0, "a new row's id", ctx);
}

ts_err ts_store_opt_time(const ts_sql_row *row, size_t col, const char *what, time_t *out)
{
    *out = 0;
    return ts_sql_is_null(row, col) ? TS_OK : ts_sql_get_time(row, col, what, out);
}

/* --- Users ----------------------------------------------------------------------------------- */

#define USER_COLUMNS                                                                               \
    "u.id, COALESCE(u.tenant_id, 0), COALESCE(t.name, ''), u.name, u.role, u.device_uid, "         \
    "u.disabled, u.created"
#define USER_FROM " FROM users u LEFT JOIN tenants t ON t.id = u.tenant_id"
enum { USER_NCOLS = 8 };

/* A user row from columns at..at + USER_NCOLS - 1. */
static ts_err user_from(const ts_sql_row *row, size_t at, ts_user_row *u)
{
    int64_t role = 0, disabled = 0;
    ts_err rv = ts_sql_get_int(row, at, "users.id", &u->id);
    if (rv == TS_OK) {
        rv = ts_sql_get_int(row, at + 1, "users.tenant_id", &u->tenant_id);
    }
    if (rv == TS_OK) {
        rv = ts_sql_get_text(row, at + 2, "tenants.name", u->tenant, sizeof u->tenant);
    }
    if (rv == TS_OK) {
        rv = ts_sql_get_text(row, at + 3, "users.name", u->name, sizeof u->name);
    }
    if (rv == TS_OK) {
        rv = ts_sql_get_int(row, at + 4, "users.role", &role);
    }
    if (rv == TS_OK && (role < TS_ROLE_ADMIN || role > TS_ROLE_DEVICE)) {
        rv = ts_error_set(TS_ERR_CORRUPT, "user %s has role %lld", u->name, (long long)role);
    }
    if (rv == TS_OK) {
        u->role = (ts_role)role;
        rv = ts_sql_get_text(row, at + 5, "users.device_uid", u->device_uid, sizeof u->device_uid);
    }
    if (rv == TS_OK) {
        rv = ts_sql_get_int(row, at + 6, "users.disabled", &disabled);
    }
    if (rv == TS_OK && disabled != 0 && disabled != 1) {
        rv = ts_error_set(TS_ERR_CORRUPT, "user %s has disabled flag %lld", u->name,
                          (long long)disabled);
    }
    if (rv == TS_OK) {
        u->disabled = (int)disabled;
        rv = ts_sql_get_time(row, at + 7, "users.created", &u->created);
    }
    return rv;
}

typedef struct user_list {
    ts_user_row *rows;
    size_t count, cap;
} user_list;

static ts_err user_list_row(void *ctx, const ts_sql_row *row)
{
    user_list *l = ctx;
    ts_err rv = ts_array_reserve((void **)&l->rows, sizeof *l->rows, &l->cap, l->count + 1);
    if (rv != TS_OK) {
        return rv;
    }
    memset(&l->rows[l->count], 0, sizeof l->rows[l->count]);
    rv = user_from(row, 0, &l->rows[l->count]);
    if (rv == TS_OK) {
        l->count++;
    }
    return rv;
}

static ts_err check_user(const ts_user_row *row)
{
    ts_err rv = ts_check_name(row->name, "a user's name");
    if (rv == TS_OK) {
        rv = ts_check_text(row->device_uid, sizeof row->device_uid, 0, "a user's device UID");
    }
    if (rv != TS_OK) {
        return rv;
    }
    if (row->role < TS_ROLE_ADMIN || row->role > TS_ROLE_DEVICE) {
        return ts_error_set(TS_ERR_INVALID, "no role %d", (int)row->role);
    }
    if (row->tenant_id < 0 ||
        (row->tenant_id == 0 && row->role != TS_ROLE_ADMIN && row->role != TS_ROLE_AUDITOR)) {
        return ts_error_set(TS_ERR_INVALID, "an instance-wide user is an admin or an auditor");
    }
    if ((row->role == TS_ROLE_DEVICE) != (row->device_uid[0] != '\0')) {
        return ts_error_set(TS_ERR_INVALID, "a device UID goes with the device role, and only it");
    }
    if (row->disabled != 0 && row->disabled != 1) {
        return ts_error_set(TS_ERR_INVALID, "a user's disabled flag is 0 or 1");
    }
    return TS_OK;
}

ts_err ts_store_user_insert(ts_store *store, ts_user_row *row)
{
    int64_t id = 0;
    if (store == NULL || row == NULL) {
        return ts_error_set(TS_ERR_INVALID, "ts_store_user_insert: missing argument");
    }
    ts_err rv = check_user(row);
    if (rv == TS_OK) {
        rv = ts_store_need_tx(store, "ts_store_user_insert");
    }
    if (rv != TS_OK) {
        return rv;
    }
    time_t created = row->created != 0 ? row->created : time(NULL);
    ts_sql_value p[] = {row->tenant_id != 0 ? ts_sql_int(row->tenant_id) : ts_sql_null(),
                        ts_sql_text(row->name),
                        ts_sql_int(row->role),
                        ts_sql_text(row->device_uid),
                        ts_sql_int(row->disabled),
                        ts_sql_int(created)};
    /* The unique index on (COALESCE(tenant_id, 0), name) decides; DO NOTHING keeps the
     * transaction usable. */
    rv = ts_store_write_query(store,
                              "INSERT INTO users (tenant_id, name, role, device_uid, disabled, "
                              "created) VALUES ($1, $2, $3, $4, $5, $6) "
                              "ON CONFLICT DO NOTHING RETURNING id",
                              p, 6, ts_store_new_id, &id);
    if (rv != TS_OK) {
        return ts_error_prefix(rv, "adding user %s", row->name);
    }
    if (id == 0) {
        return ts_error_set(TS_ERR_EXISTS, "user %s already exists", row->name);
    }
    row->id = id;
    row->created = created;
    return TS_OK;
}

static ts_err user_fetch(ts_store *store, const char *sql, const ts_sql_value *p, size_t n,
                         ts_user_row *out)
{
    user_list l = {0};
    ts_err rv = ts_store_read(store, sql, p, n, user_list_row, &l);
    if (rv == TS_OK && l.count == 0) {
        rv = TS_ERR_NOT_FOUND;
    }
    if (rv == TS_OK) {
        *out = l.rows[0];
    }
    OPENSSL_free(l.rows);
    return rv;
}

ts_err ts_store_user_get(ts_store *store, int64_t tenant_id, const char *name, ts_user_row *out)
{
    if (store == NULL || out == NULL) {
        return ts_error_set(TS_ERR_INVALID, "ts_store_user_get: missing argument");
    }
    ts_err rv = ts_check_name(name, "a user's name");
    if (rv != TS_OK) {
        return rv;
    }
    ts_sql_value p[] = {ts_sql_int(tenant_id), ts_sql_text(name)};
    rv = user_fetch(store,
                    "SELECT " USER_COLUMNS USER_FROM
                    " WHERE COALESCE(u.tenant_id, 0) = $1 AND u.name = $2",
                    p, 2, out);
    if (rv == TS_ERR_NOT_FOUND) {
        return ts_error_set(rv, "no user %s", name);
    }
    return rv;
}

ts_err ts_store_user_get_id(ts_store *store, int64_t id, ts_user_row *out)
{
    if (store == NULL || out == NULL) {
        return ts_error_set(TS_ERR_INVALID, "ts_store_user_get_id: missing argument");
    }
    ts_sql_value p[] = {ts_sql_int(id)};
    ts_err rv = user_fetch(store, "SELECT " USER_COLUMNS USER_FROM " WHERE u.id = $1", p, 1, out);
    if (rv == TS_ERR_NOT_FOUND) {
        return ts_error_set(rv, "no user %lld", (long long)id);
    }
    return rv;
}

static int user_by_name(const void *a, const void *b)
{
    return strcmp(((const ts_user_row *)a)->name, ((const ts_user_row *)b)->name);
}

ts_err ts_store_user_list(ts_store *store, int64_t tenant_id, ts_user_row **rows, size_t *count)
{
    user_list l = {0};
    if (store == NULL || rows == NULL || count == NULL) {
        return ts_error_set(TS_ERR_INVALID, "ts_store_user_list: missing argument");
    }
    *rows = NULL;
    *count = 0;
    ts_sql_value p[] = {ts_sql_int(tenant_id)};
    ts_err rv = ts_store_read(
        store, "SELECT " USER_COLUMNS USER_FROM " WHERE COALESCE(u.tenant_id, 0) = $1", p, 1,
        user_list_row, &l);
    if (rv != TS_OK) {
        OPENSSL_free(l.rows);
        return ts_error_prefix(rv, "listing users");
    }
    /* Sorted here, by bytes: the two databases' collations would order names differently. */
    if (l.count > 1) {
        qsort(l.rows, l.count, sizeof *l.rows, user_by_name);
    }
    *rows = l.rows;
    *count = l.count;
    return TS_OK;
}

ts_err ts_store_user_set_disabled(ts_store *store, int64_t tenant_id, const char *name,
                                  int disabled)
{
    ts_user_row cur;
    int64_t changes = 0;
    if (store == NULL) {
        return ts_error_set(TS_ERR_INVALID, "ts_store_user_set_disabled: no store");
    }
    if (disabled != 0 && disabled != 1) {
        return ts_error_set(TS_ERR_INVALID, "a user's disabled flag is 0 or 1");
    }
    ts_err rv = ts_store_need_tx(store, "ts_store_user_set_disabled");
    if (rv == TS_OK) {
        rv = ts_store_user_get(store, tenant_id, name, &cur);
    }
    if (rv != TS_OK) {
        return rv;
    }
    /* The flag test in the update settles a race with another writer. */
    ts_sql_value p[] = {ts_sql_int(cur.id), ts_sql_int(disabled)};
    rv = ts_store_write(store, "UPDATE users SET disabled = $2 WHERE id = $1 AND disabled <> $2", p,
                        2, &changes);
    if (rv != TS_OK) {
        return ts_error_prefix(rv, "updating user %s", name);
    }
    if (changes != 1) {
        return ts_error_set(TS_ERR_STATE, "user %s is already %s", name,
                            disabled ? "disabled" : "enabled");
    }
    return TS_OK;
}

/* --- API tokens ------------------------------------------------------------------------------ */

#define TOKEN_COLUMNS                                                                              \
    "k.id, k.user_id, u.name, COALESCE(u.tenant_id, 0), k.name, k.prefix, k.created, k.expires, "  \
    "k.revoked_at"
#define TOKEN_FROM " FROM api_tokens k JOIN users u ON u.id = k.user_id"
enum { TOKEN_NCOLS = 9 };

static ts_err token_from(const ts_sql_row *row, ts_token_row *k)
{
    ts_err rv = ts_sql_get_int(row, 0, "api_tokens.id", &k->id);
    if (rv == TS_OK) {
        rv = ts_sql_get_int(row, 1, "api_tokens.user_id", &k->user_id);
    }
    if (rv == TS_OK) {
        rv = ts_sql_get_text(row, 2, "users.name", k->user, sizeof k->user);
    }
    if (rv == TS_OK) {
        rv = ts_sql_get_int(row, 3, "users.tenant_id", &k->tenant_id);
    }
    if (rv == TS_OK) {
        rv = ts_sql_get_text(row, 4, "api_tokens.name", k->name, sizeof k->name);
    }
    if (rv == TS_OK) {
        rv = ts_sql_get_text(row, 5, "api_tokens.prefix", k->prefix, sizeof k->prefix);
    }
    if (rv == TS_OK) {
        rv = ts_sql_get_time(row, 6, "api_tokens.created", &k->created);
    }
    if (rv == TS_OK) {
        rv = ts_sql_get_time(row, 7, "api_tokens.expires", &k->expires);
    }
    if (rv == TS_OK) {
        rv = ts_store_opt_time(row, 8, "api_tokens.revoked_at", &k->revoked_at);
    }
    return rv;
}

typedef struct token_list {
    ts_token_row *rows;
    size_t count, cap;
    /* token_find: the user and the stored hash too */
    ts_user_row *user;
    char *hash;
} token_list;

static ts_err token_list_row(void *ctx, const ts_sql_row *row)
{
    token_list *l = ctx;
    ts_err rv = ts_array_reserve((void **)&l->rows, sizeof *l->rows, &l->cap, l->count + 1);
    if (rv != TS_OK) {
        return rv;
    }
    memset(&l->rows[l->count], 0, sizeof l->rows[l->count]);
    rv = token_from(row, &l->rows[l->count]);
    if (rv == TS_OK && l->user != NULL) {
        if (l->count > 0) {
            return ts_error_set(TS_ERR_CORRUPT, "two tokens have one hash");
        }
        rv = user_from(row, TOKEN_NCOLS, l->user);
    }
    if (rv == TS_OK && l->hash != NULL) {
        rv = ts_sql_get_text(row, TOKEN_NCOLS + USER_NCOLS, "api_tokens.hash", l->hash, 65);
    }
    if (rv == TS_OK) {
        l->count++;
    }
    return rv;
}

ts_err ts_store_token_insert(ts_store *store, ts_token_row *row, const char *hash_hex)
{
    char hash[65];
    int64_t id = 0;
    if (store == NULL || row == NULL) {
        return ts_error_set(TS_ERR_INVALID, "ts_store_token_insert: missing argument");
    }
    ts_err rv = ts_fingerprint_canonical(hash_hex, hash);
    if (rv == TS_OK) {
        rv = ts_store_label_check(row->name, sizeof row->name, "a token's name");
    }
    if (rv == TS_OK) {
        rv = ts_check_text(row->prefix, sizeof row->prefix, 1, "a token's prefix");
    }
    if (rv == TS_OK && row->user_id <= 0) {
        rv = ts_error_set(TS_ERR_INVALID, "a token needs a user");
    }
    if (rv == TS_OK) {
        rv = ts_store_need_tx(store, "ts_store_token_insert");
    }
    if (rv != TS_OK) {
        return rv;
    }
    time_t created = row->created != 0 ? row->created : time(NULL);
    ts_sql_value p[] = {ts_sql_int(row->user_id), ts_sql_text(hash),   ts_sql_text(row->prefix),
                        ts_sql_text(row->name),   ts_sql_int(created), ts_sql_int(row->expires)};
    rv = ts_store_write_query(store,
                              "INSERT INTO api_tokens (user_id, hash, prefix, name, created, "
                              "expires) VALUES ($1, $2, $3, $4, $5, $6) "
                              "ON CONFLICT (hash) DO NOTHING RETURNING id",
                              p, 6, ts_store_new_id, &id);
    if (rv != TS_OK) {
        return ts_error_prefix(rv, "storing a token");
    }
    if (id == 0) {
        return ts_error_set(TS_ERR_EXISTS, "a token with this hash is already stored");
    }
    row->id = id;
    row->created = created;
    row->revoked_at = 0;
    return TS_OK;
}

ts_err ts_store_token_find(ts_store *store, const char *hash_hex, ts_token_row *token,
                           ts_user_row *user, char stored_hash[65])
{
    char hash[65];
    token_list l = {.user = user, .hash = stored_hash};
    if (store == NULL || token == NULL || user == NULL || stored_hash == NULL) {
        return ts_error_set(TS_ERR_INVALID, "ts_store_token_find: missing argument");
    }
    ts_err rv = ts_fingerprint_canonical(hash_hex, hash);
    if (rv != TS_OK) {
        return rv;
    }
    memset(user, 0, sizeof *user);
    ts_sql_value p[] = {ts_sql_text(hash)};
    rv = ts_store_read(store,
                       "SELECT " TOKEN_COLUMNS ", " USER_COLUMNS ", k.hash" TOKEN_FROM
                       " LEFT JOIN tenants t ON t.id = u.tenant_id WHERE k.hash = $1",
                       p, 1, token_list_row, &l);
    if (rv == TS_OK && l.count == 0) {
        rv = ts_error_set(TS_ERR_NOT_FOUND, "no such token");
    }
    if (rv == TS_OK) {
        *token = l.rows[0];
    }
    OPENSSL_free(l.rows);
    return rv;
}

ts_err ts_store_token_list(ts_store *store, int64_t tenant_id, int64_t user_id, ts_token_row **rows,
                           size_t *count)
{
    token_list l = {0};
    if (store == NULL || rows == NULL || count == NULL) {
        return ts_error_set(TS_ERR_INVALID, "ts_store_token_list: missing argument");
    }
    *rows = NULL;
    *count = 0;
    ts_sql_value p[] = {ts_sql_int(tenant_id), ts_sql_int(user_id)};
    ts_err rv =
        ts_store_read(store,
                      "SELECT " TOKEN_COLUMNS TOKEN_FROM " WHERE COALESCE(u.tenant_id, 0) = $1 "
                      "AND ($2 = 0 OR k.user_id = $2) ORDER BY k.id",
                      p, 2, token_list_row, &l);
    if (rv != TS_OK) {
        OPENSSL_free(l.rows);
        return ts_error_prefix(rv, "listing tokens");
    }
    *rows = l.rows;
    *count = l.count;
    return TS_OK;
}

ts_err ts_store_token_revoke(ts_store *store, int64_t tenant_id, int64_t id, time_t when)
{
    token_list l = {0};
    int64_t changes = 0;
    if (store == NULL) {
        return ts_error_set(TS_ERR_INVALID, "ts_store_token_revoke: no store");
    }
    ts_err rv = ts_store_need_tx(store, "ts_store_token_revoke");
    if (rv != TS_OK) {
        return rv;
    }
    ts_sql_value p[] = {ts_sql_int(tenant_id), ts_sql_int(id)};
    rv = ts_store_read(store,
                       "SELECT " TOKEN_COLUMNS TOKEN_FROM
                       " WHERE COALESCE(u.tenant_id, 0) = $1 AND k.id = $2",
                       p, 2, token_list_row, &l);
    int found = l.count == 1, revoked = found && l.rows[0].revoked_at != 0;
    OPENSSL_free(l.rows);
    if (rv != TS_OK) {
        return ts_error_prefix(rv, "revoking token %lld", (long long)id);
    }
    if (!found) {
        return ts_error_set(TS_ERR_NOT_FOUND, "no token %lld", (long long)id);
    }
    if (revoked) {
        return ts_error_set(TS_ERR_STATE, "token %lld is already revoked", (long long)id);
    }
    ts_sql_value up[] = {ts_sql_int(id), ts_sql_int(when != 0 ? when : time(NULL))};
    rv = ts_store_write(
        store, "UPDATE api_tokens SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL", up, 2,
        &changes);
    if (rv != TS_OK) {
        return ts_error_prefix(rv, "revoking token %lld", (long long)id);
    }
    if (changes != 1) {
        return ts_error_set(TS_ERR_STATE, "token %lld is already revoked", (long long)id);
    }
    return TS_OK;
}
