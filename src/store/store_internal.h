/*
 * Inside the store: the SQL driver table, the store handle, and the helpers the domain files
 * (store.c, store_ca.c, store_cert.c, audit.c) share.
 *
 * The domain functions are written once, in SQL both dialects accept, with $1-style
 * placeholders; a driver (store_sqlite.c, store_pg.c) binds parameters and hands each result row
 * to a callback as an array of typed values. No SQL is ever built from values.
 */
#ifndef TS_STORE_INTERNAL_H
#define TS_STORE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "tessera/store.h"

enum {
    TS_SQL_MAX_PARAMS = 16,
    TS_SQL_MAX_COLS = 24,
    TS_STORE_DER_MAX = 64 * 1024,     /* a certificate */
    TS_STORE_JSON_MAX = 256 * 1024,   /* a profile, audit details, a setting */
    TS_STORE_BUSY_TIMEOUT_MS = 10000, /* SQLite: how long a writer waits for another */
};

typedef enum ts_sql_type {
    TS_SQL_NULL = 0,
    TS_SQL_INT = 1,
    TS_SQL_TEXT = 2,
    TS_SQL_BLOB = 3,
} ts_sql_type;

/*
 * A parameter ($n is params[n - 1]) or a result value. TEXT and BLOB point at len bytes (text
 * without its NUL); a TEXT or BLOB parameter whose p is NULL is SQL NULL of that type. A result
 * value points into the driver's row and is valid only during the callback.
 */
typedef struct ts_sql_value {
    ts_sql_type type;
    int64_t i;
    const void *p;
    size_t len;
} ts_sql_value;

typedef struct ts_sql_row {
    size_t ncols;
    const ts_sql_value *cols;
} ts_sql_row;

/* Called once per result row; anything but TS_OK stops the query and is returned. */
typedef ts_err (*ts_sql_row_fn)(void *ctx, const ts_sql_row *row);

typedef struct ts_sql_driver {
    const char *name; /* "sqlite" or "postgresql" */
    ts_err (*open)(const char *url, void **db);
    void (*close)(void *db);
    /* One statement; *changes (may be NULL) gets the rows it changed. */
    ts_err (*exec)(void *db, const char *sql, const ts_sql_value *params, size_t nparams,
                   int64_t *changes);
    /* One statement that returns rows (SELECT, or INSERT/UPDATE ... RETURNING). */
    ts_err (*query)(void *db, const char *sql, const ts_sql_value *params, size_t nparams,
                    ts_sql_row_fn fn, void *ctx);
    /*
     * One INSERT ... ON CONFLICT ... DO NOTHING, written without RETURNING, into a table whose key
     * column is id: *id gets the new row's id, or 0 when the conflict kept the row out. SQLite
     * reads the rowid it made, because a RETURNING clause (its output gathered in memory and
     * handed back afterwards) was the larger part of a one-row insert's cost (docs/store.md);
     * PostgreSQL appends RETURNING id.
     */
    ts_err (*insert_id)(void *db, const char *sql, const ts_sql_value *params, size_t nparams,
                        int64_t *id);
    ts_err (*begin)(void *db); /* a write transaction: SQLite BEGIN IMMEDIATE */
    ts_err (*commit)(void *db);
    ts_err (*rollback)(void *db);
    /* Inside a transaction: keeps other openers from migrating at the same time. */
    ts_err (*lock_migrations)(void *db);
    /* Which dialect's schema to create: 0 SQLite, 1 PostgreSQL. */
    int dialect;
    /* 1 when a write transaction holds the whole database (SQLite): a row it reads cannot change
     * before it ends. 0 when writers lock rows (PostgreSQL). */
    int locks_database;
} ts_sql_driver;

/*
 * Drivers report database failures as: TS_ERR_EXISTS (a unique constraint), TS_ERR_NOT_FOUND
 * (a foreign key names a missing row), TS_ERR_CONFLICT (busy, deadlock, serialisation failure:
 * retry), TS_ERR_STORE (anything else), each with the database's message.
 */
extern const ts_sql_driver ts_sql_sqlite_driver;
extern const ts_sql_driver ts_sql_pg_driver;

struct ts_store {
    const ts_sql_driver *drv;
    void *db;
    int in_tx;     /* between ts_store_begin() and commit/rollback */
    int tx_failed; /* the database refused a statement: only rollback is possible */
    /*
     * The audit chain head as this transaction left it, when it is ahead of the audit_head row:
     * the row is locked by the transaction's first append and written once, just before commit
     * (audit.c), instead of after every entry.
     */
    int audit_pending;
    int64_t audit_last_id;
    char audit_last_hash[65];
};

/* --- Statements (store.c) ------------------------------------------------------------------- */

/* Reads: in a transaction or, outside one, each in its own. */
ts_err ts_store_read(ts_store *s, const char *sql, const ts_sql_value *params, size_t nparams,
                     ts_sql_row_fn fn, void *ctx);
/* Writes: only inside ts_store_begin() .. ts_store_commit(); TS_ERR_STATE otherwise. */
ts_err ts_store_write(ts_store *s, const char *sql, const ts_sql_value *params, size_t nparams,
                      int64_t *changes);
ts_err ts_store_write_query(ts_store *s, const char *sql, const ts_sql_value *params,
                            size_t nparams, ts_sql_row_fn fn, void *ctx);
/* A write through the driver's insert_id(): the new row's id in *id, 0 when a conflict kept it
 * out. */
ts_err ts_store_insert_id(ts_store *s, const char *sql, const ts_sql_value *params, size_t nparams,
                          int64_t *id);
/* TS_ERR_STATE unless a usable transaction is open; what names the call for the message. */
ts_err ts_store_need_tx(ts_store *s, const char *what);

/* Parameters. */
ts_sql_value ts_sql_int(int64_t v);
ts_sql_value ts_sql_null(void);
ts_sql_value ts_sql_text(const char *s); /* NULL: SQL NULL */
ts_sql_value ts_sql_blob(const void *p, size_t len);

/* --- Result values (store_value.c): every value is checked before use ----------------------- */

/* TS_ERR_CORRUPT unless column col is an integer (what names it for the message). */
ts_err ts_sql_get_int(const ts_sql_row *row, size_t col, const char *what, int64_t *out);
ts_err ts_sql_get_time(const ts_sql_row *row, size_t col, const char *what, time_t *out);
/* Text into buf: TS_ERR_CORRUPT when NULL, not text, holding a NUL or longer than size - 1. */
ts_err ts_sql_get_text(const ts_sql_row *row, size_t col, const char *what, char *buf, size_t size);
/* A copy (OPENSSL_malloc) of text at most max bytes long. */
ts_err ts_sql_get_text_dup(const ts_sql_row *row, size_t col, const char *what, size_t max,
                           char **out);
/* A copy of a non-empty BLOB at most max bytes long. */
ts_err ts_sql_get_blob_dup(const ts_sql_row *row, size_t col, const char *what, size_t max,
                           uint8_t **out, size_t *len);
int ts_sql_is_null(const ts_sql_row *row, size_t col);

/* Row callback for "SELECT <one integer>": stores it in *(int64_t *)ctx. */
ts_err ts_sql_one_int(void *ctx, const ts_sql_row *row);

/* --- Checks on values going in (store_value.c) ---------------------------------------------- */

/* TS_ERR_INVALID unless text is non-NULL, NUL-terminated within size bytes and, with
 * nonempty, not empty. */
ts_err ts_check_text(const char *text, size_t size, int nonempty, const char *what);
/* TS_ERR_INVALID unless name is 1..TS_NAME_MAX printable characters. */
ts_err ts_check_name(const char *name, const char *what);
/* Upper-case hex without leading zero bytes, as openssl x509 -serial prints it. */
ts_err ts_serial_canonical(const char *serial, char out[TS_SERIAL_HEX]);
/* 64 hex digits, lower-cased into out. */
ts_err ts_fingerprint_canonical(const char *fp, char out[65]);

/* Grows *array (of elem bytes each) so that it holds at least need elements. */
ts_err ts_array_reserve(void **array, size_t elem, size_t *cap, size_t need);

/* --- Audit (audit.c) ----------------------------------------------------------------------- */

/*
 * ts_store_audit_append() for details the caller serialised itself (json_dumps of a document it
 * built): the details are not parsed again. Outside-supplied details go through
 * ts_store_audit_append(), which checks that they are JSON.
 */
ts_err ts_store_audit_append_trusted(ts_store *store, const char *actor, const char *action,
                                     const char *object, const char *details_json);
/*
 * Takes the audit chain's lock in the open transaction, as the transaction's first append would
 * (a no-op when it already holds it): writers that need commit order among themselves, such as
 * the revocation feed's seq, take it before they read what they number from.
 */
ts_err ts_audit_lock(ts_store *s);
/* Writes the chain head a transaction's appends moved (before its commit); TS_OK when none. */
ts_err ts_audit_flush_head(ts_store *s);

/* --- Migrations (migrations.c) -------------------------------------------------------------- */

/* The newest schema version this build knows. */
int ts_store_latest_version(void);
/* Brings the schema up to target (at most ts_store_latest_version()), one transaction per step. */
ts_err ts_store_migrate(ts_store *s, int target);
/* Opens without migrating past max_version (tests of upgrades from older schemas). */
ts_err ts_store_open_version(const char *url, int max_version, ts_store **out);

#endif
