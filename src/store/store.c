/*
 * The store front: opening by URL, transactions, the statement wrappers every domain function
 * goes through, settings and tenants.
 *
 * Writes are refused outside ts_store_begin() .. ts_store_commit(), so every change is
 * explicit. When the database refuses a statement inside a transaction (a constraint, a lost
 * connection), the transaction is marked failed and only ts_store_rollback() is accepted: on
 * PostgreSQL the server has aborted it anyway, and SQLite is held to the same rule so both
 * backends behave alike.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "common/error_internal.h"
#include "store/store_internal.h"

/* --- Opening ------------------------------------------------------------------------------- */

static ts_err pick_driver(const char *url, const ts_sql_driver **drv)
{
    if (strncmp(url, "sqlite:", 7) == 0) {
        *drv = &ts_sql_sqlite_driver;
        return TS_OK;
    }
    if (strncmp(url, "postgresql://", 13) == 0 || strncmp(url, "postgres://", 11) == 0) {
        *drv = &ts_sql_pg_driver;
        return TS_OK;
    }
    return ts_error_set(TS_ERR_INVALID, "the store URL must start with sqlite: or postgresql://");
}

ts_err ts_store_open_version(const char *url, int max_version, ts_store **out)
{
    const ts_sql_driver *drv = NULL;
    ts_store *s = NULL;
    ts_err rv = TS_ERR_INVALID;

    if (url == NULL || out == NULL) {
        return ts_error_set(TS_ERR_INVALID, "ts_store_open: no URL or no output");
    }
    *out = NULL;
    rv = pick_driver(url, &drv);
    if (rv != TS_OK) {
        return rv;
    }
    s = OPENSSL_zalloc(sizeof *s);
    if (s == NULL) {
        return ts_error_set(TS_ERR_NOMEM, "no memory for a store");
    }
    s->drv = drv;
    rv = drv->open(url, &s->db);
    if (rv != TS_OK) {
        goto done;
    }
    rv = ts_store_migrate(s, max_version);
    if (rv != TS_OK) {
        goto done;
    }
    *out = s;
    s = NULL;
done:
    ts_store_free(s);
    return rv;
}

ts_err ts_store_open(const char *url, ts_store **out)
{
    return ts_store_open_version(url, ts_store_latest_version(), out);
}

void ts_store_free(ts_store *store)
{
    if (store == NULL) {
        return;
    }
    if (store->db != NULL) {
        ts_store_rollback(store);
        store->drv->close(store->db);
    }
    OPENSSL_free(store);
}

const char *ts_store_backend(const ts_store *store)
{
    return store != NULL ? store->drv->name : "none";
}

ts_err ts_store_schema_version(ts_store *store, int *version)
{
    int64_t v = 0;
    if (store == NULL || version == NULL) {
        return ts_error_set(TS_ERR_INVALID, "ts_store_schema_version: missing argument");
    }
    ts_err rv = ts_store_read(store, "SELECT COALESCE(MAX(version), 0) FROM schema_version", NULL,
                              0, ts_sql_one_int, &v);
    if (rv != TS_OK) {
        return rv;
    }
    *version = (int)v;
    return TS_OK;
}

/* --- Transactions -------------------------------------------------------------------------- */

ts_err ts_store_begin(ts_store *store)
{
    if (store == NULL) {
        return ts_error_set(TS_ERR_INVALID, "ts_store_begin: no store");
    }
    if (store->in_tx) {
        return ts_error_set(TS_ERR_STATE, "a transaction is already open on this store");
    }
    ts_err rv = store->drv->begin(store->db);
    if (rv != TS_OK) {
        return ts_error_prefix(rv, "starting a transaction");
    }
    store->in_tx = 1;
    store->tx_failed = 0;
    store->audit_pending = 0;
    return TS_OK;
}

ts_err ts_store_commit(ts_store *store)
{
    if (store == NULL) {
        return ts_error_set(TS_ERR_INVALID, "ts_store_commit: no store");
    }
    if (!store->in_tx) {
        return ts_error_set(TS_ERR_STATE, "commit without a transaction");
    }
    if (store->tx_failed) {
        ts_store_rollback(store);
        return ts_error_set(TS_ERR_STATE, "the transaction failed earlier and was rolled back");
    }
    ts_err rv = ts_audit_flush_head(store);
    if (rv != TS_OK) {
        ts_store_rollback(store);
        return ts_error_prefix(rv, "commit");
    }
    rv = store->drv->commit(store->db);
    if (rv != TS_OK) {
        /* Nothing of it is kept: a failed commit ends the transaction as a rollback. */
        char msg[512];
        snprintf(msg, sizeof msg, "%s", ts_error_message());
        ts_store_rollback(store);
        return ts_error_set(rv, "commit: %s", msg);
    }
    store->in_tx = 0;
    store->audit_pending = 0;
    return TS_OK;
}

void ts_store_rollback(ts_store *store)
{
    if (store == NULL || !store->in_tx) {
        return;
    }
    char msg[512];
    snprintf(msg, sizeof msg, "%s", ts_error_message());
    /* A failed ROLLBACK leaves nothing to do: the server or SQLite has ended it already. */
    (void)store->drv->rollback(store->db);
    ts_error_set(TS_ERR_STATE, "%s", msg); /* keep the message of the failure that led here */
    store->in_tx = 0;
    store->tx_failed = 0;
    store->audit_pending = 0;
}

ts_err ts_store_need_tx(ts_store *s, const char *what)
{
    if (!s->in_tx) {
        return ts_error_set(TS_ERR_STATE, "%s changes the store: call ts_store_begin() first",
                            what);
    }
    if (s->tx_failed) {
        return ts_error_set(TS_ERR_STATE, "%s: the transaction failed earlier; roll it back", what);
    }
    return TS_OK;
}

/* --- Statements ---------------------------------------------------------------------------- */

/* Tells a failure of the callback (bad data, memory) from one of the database. */
typedef struct tramp {
    ts_sql_row_fn fn;
    void *ctx;
    int fn_failed;
} tramp;

static ts_err tramp_row(void *ctx, const ts_sql_row *row)
{
    tramp *t = ctx;
    ts_err rv = t->fn(t->ctx, row);
    t->fn_failed = rv != TS_OK;
    return rv;
}

static ts_err run(ts_store *s, const char *sql, const ts_sql_value *params, size_t n,
                  ts_sql_row_fn fn, void *ctx, int64_t *changes)
{
    tramp t = {.fn = fn, .ctx = ctx};
    ts_err rv;
    if (s->in_tx && s->tx_failed) {
        return ts_error_set(TS_ERR_STATE, "the transaction failed earlier; roll it back");
    }
    if (fn != NULL) {
        rv = s->drv->query(s->db, sql, params, n, tramp_row, &t);
    } else {
        rv = s->drv->exec(s->db, sql, params, n, changes);
    }
    if (rv != TS_OK && !t.fn_failed && s->in_tx) {
        s->tx_failed = 1;
    }
    return rv;
}

ts_err ts_store_read(ts_store *s, const char *sql, const ts_sql_value *params, size_t nparams,
                     ts_sql_row_fn fn, void *ctx)
{
    return run(s, sql, params, nparams, fn, ctx, NULL);
}

ts_err ts_store_write(ts_store *s, const char *sql, const ts_sql_value *params, size_t nparams,
                      int64_t *changes)
{
    ts_err rv = ts_store_need_tx(s, "a write");
    if (rv != TS_OK) {
        return rv;
    }
    return run(s, sql, params, nparams, NULL, NULL, changes);
}

ts_err ts_store_write_query(ts_store *s, const char *sql, const ts_sql_value *params,
                            size_t nparams, ts_sql_row_fn fn, void *ctx)
{
    ts_err rv = ts_store_need_tx(s, "a write");
    if (rv != TS_OK) {
        return rv;
    }
    return run(s, sql, params, nparams, fn, ctx, NULL);
}

ts_err ts_store_insert_id(ts_store *s, const char *sql, const ts_sql_value *params, size_t nparams,
                          int64_t *id)
{
    ts_err rv = ts_store_need_tx(s, "a write");
    if (rv != TS_OK) {
        return rv;
    }
    *id = 0;
    rv = s->drv->insert_id(s->db, sql, params, nparams, id);
    if (rv != TS_OK) {
        s->tx_failed = 1;
    }
    return rv;
}

/* --- Settings ------------------------------------------------------------------------------ */

ts_err ts_store_setting_set(ts_store *store, const char *key, const char *value)
{
    if (store == NULL) {
        return ts_error_set(TS_ERR_INVALID, "ts_store_setting_set: no store");
    }
    ts_err rv = ts_check_name(key, "a setting's name");
    if (rv == TS_OK) {
        rv = ts_check_text(value, TS_STORE_JSON_MAX, 0, "a setting's value");
    }
    if (rv == TS_OK) {
        rv = ts_store_need_tx(store, "ts_store_setting_set");
    }
    if (rv != TS_OK) {
        return rv;
    }
    ts_sql_value p[] = {ts_sql_text(key), ts_sql_text(value)};
    rv = ts_store_write(store,
                        "INSERT INTO settings (name, value) VALUES ($1, $2) "
                        "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                        p, 2, NULL);
    return rv != TS_OK ? ts_error_prefix(rv, "setting %s", key) : TS_OK;
}

typedef struct text_out {
    char *text;
    const char *what;
} text_out;

static ts_err text_row(void *ctx, const ts_sql_row *row)
{
    text_out *t = ctx;
    if (t->text != NULL) {
        return ts_error_set(TS_ERR_CORRUPT, "%s appears twice", t->what);
    }
    return ts_sql_get_text_dup(row, 0, t->what, TS_STORE_JSON_MAX, &t->text);
}

ts_err ts_store_setting_get(ts_store *store, const char *key, char **value)
{
    text_out t = {.what = "a setting"};
    if (store == NULL || value == NULL) {
        return ts_error_set(TS_ERR_INVALID, "ts_store_setting_get: missing argument");
    }
    *value = NULL;
    ts_err rv = ts_check_name(key, "a setting's name");
    if (rv != TS_OK) {
        return rv;
    }
    ts_sql_value p[] = {ts_sql_text(key)};
    rv = ts_store_read(store, "SELECT value FROM settings WHERE name = $1", p, 1, text_row, &t);
    if (rv != TS_OK) {
        OPENSSL_free(t.text);
        return ts_error_prefix(rv, "reading setting %s", key);
    }
    if (t.text == NULL) {
        return ts_error_set(TS_ERR_NOT_FOUND, "setting %s is not set", key);
    }
    *value = t.text;
    return TS_OK;
}

/* --- Tenants ------------------------------------------------------------------------------- */

static ts_err check_country(const char *cc)
{
    ts_err rv = ts_check_text(cc, 3, 0, "a country code");
    if (rv != TS_OK) {
        return rv;
    }
    if (cc[0] != '\0' &&
        (strlen(cc) != 2 || !isupper((unsigned char)cc[0]) || !isupper((unsigned char)cc[1]))) {
        return ts_error_set(TS_ERR_INVALID, "country \"%s\" is not two capital letters (ISO 3166)",
                            cc);
    }
    return TS_OK;
}

static ts_err id_row(void *ctx, const ts_sql_row *row)
{
    return ts_sql_get_int(row, 0, "a new row's id", ctx);
}

ts_err ts_store_tenant_insert(ts_store *store, ts_tenant_row *row)
{
    int64_t id = 0;
    if (store == NULL || row == NULL) {
        return ts_error_set(TS_ERR_INVALID, "ts_store_tenant_insert: missing argument");
    }
    ts_err rv = ts_check_name(row->name, "a tenant's name");
    if (rv == TS_OK) {
        rv = ts_check_text(row->org, sizeof row->org, 0, "a tenant's organisation");
    }
    if (rv == TS_OK) {
        rv = check_country(row->country);
    }
    if (rv == TS_OK) {
        rv = ts_store_need_tx(store, "ts_store_tenant_insert");
    }
    if (rv != TS_OK) {
        return rv;
    }
    time_t created = row->created != 0 ? row->created : time(NULL);
    ts_sql_value p[] = {ts_sql_text(row->name), ts_sql_text(row->org), ts_sql_text(row->country),
                        ts_sql_int(created)};
    rv = ts_store_write_query(store,
                              "INSERT INTO tenants (name, org, country, created) "
                              "VALUES ($1, $2, $3, $4) ON CONFLICT (name) DO NOTHING RETURNING id",
                              p, 4, id_row, &id);
    if (rv != TS_OK) {
        return ts_error_prefix(rv, "adding tenant %s", row->name);
    }
    if (id == 0) {
        return ts_error_set(TS_ERR_EXISTS, "tenant %s already exists", row->name);
    }
    row->id = id;
    row->created = created;
    return TS_OK;
}

#define TENANT_COLUMNS "SELECT id, name, org, country, created FROM tenants"

static ts_err tenant_from(const ts_sql_row *row, ts_tenant_row *t)
{
    ts_err rv = ts_sql_get_int(row, 0, "tenants.id", &t->id);
    if (rv == TS_OK) {
        rv = ts_sql_get_text(row, 1, "tenants.name", t->name, sizeof t->name);
    }
    if (rv == TS_OK) {
        rv = ts_sql_get_text(row, 2, "tenants.org", t->org, sizeof t->org);
    }
    if (rv == TS_OK) {
        rv = ts_sql_get_text(row, 3, "tenants.country", t->country, sizeof t->country);
    }
    if (rv == TS_OK) {
        rv = ts_sql_get_time(row, 4, "tenants.created", &t->created);
    }
    return rv;
}

typedef struct tenant_list {
    ts_tenant_row *rows;
    size_t count, cap;
} tenant_list;

static int tenant_by_name(const void *a, const void *b)
{
    return strcmp(((const ts_tenant_row *)a)->name, ((const ts_tenant_row *)b)->name);
}

static ts_err tenant_list_row(void *ctx, const ts_sql_row *row)
{
    tenant_list *l = ctx;
    ts_err rv = ts_array_reserve((void **)&l->rows, sizeof *l->rows, &l->cap, l->count + 1);
    if (rv != TS_OK) {
        return rv;
    }
    rv = tenant_from(row, &l->rows[l->count]);
    if (rv == TS_OK) {
        l->count++;
    }
    return rv;
}

ts_err ts_store_tenant_get(ts_store *store, const char *name, ts_tenant_row *out)
{
    tenant_list l = {0};
    if (store == NULL || out == NULL) {
        return ts_error_set(TS_ERR_INVALID, "ts_store_tenant_get: missing argument");
    }
    ts_err rv = ts_check_name(name, "a tenant's name");
    if (rv != TS_OK) {
        return rv;
    }
    ts_sql_value p[] = {ts_sql_text(name)};
    rv = ts_store_read(store, TENANT_COLUMNS " WHERE name = $1", p, 1, tenant_list_row, &l);
    if (rv == TS_OK && l.count == 0) {
        rv = ts_error_set(TS_ERR_NOT_FOUND, "no tenant %s", name);
    }
    if (rv == TS_OK) {
        *out = l.rows[0];
    }
    OPENSSL_free(l.rows);
    return rv;
}

ts_err ts_store_tenant_list(ts_store *store, ts_tenant_row **rows, size_t *count)
{
    tenant_list l = {0};
    if (store == NULL || rows == NULL || count == NULL) {
        return ts_error_set(TS_ERR_INVALID, "ts_store_tenant_list: missing argument");
    }
    *rows = NULL;
    *count = 0;
    ts_err rv = ts_store_read(store, TENANT_COLUMNS, NULL, 0, tenant_list_row, &l);
    if (rv != TS_OK) {
        OPENSSL_free(l.rows);
        return ts_error_prefix(rv, "listing tenants");
    }
    /* Sorted here, by bytes: the two databases' collations would order names differently. */
    if (l.count > 1) {
        qsort(l.rows, l.count, sizeof *l.rows, tenant_by_name);
    }
    *rows = l.rows;
    *count = l.count;
    return TS_OK;
}
