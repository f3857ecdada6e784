/*
 * The SQLite driver: "sqlite:PATH".
 *
 * WAL journal with synchronous=FULL, so a commit that returns is on disk; foreign keys on; a
 * busy timeout so that several processes share the file, each writer waiting its turn; write
 * transactions start with BEGIN IMMEDIATE, taking the write lock at the start rather than
 * failing half-way, and writers of this process queue for the file's gate before that
 * (sqlite_gate_internal.h). Statements are prepared once per connection and kept in a small
 * cache.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include <openssl/crypto.h>

#include "common/error_internal.h"
#include "store/sqlite_gate_internal.h"
#include "store/store_internal.h"

enum { SQLITE_CACHE_SLOTS = 64, SQLITE_SQL_MAX = 8192 };

typedef struct sqlite_cached {
    char *sql; /* a copy of the caller's text */
    sqlite3_stmt *stmt;
} sqlite_cached;

typedef struct sqlite_db {
    sqlite3 *db;
    sqlite_cached cache[SQLITE_CACHE_SLOTS];
    size_t cached;
    sqlite_gate *gate;
    int in_gate; /* between begin and the end of the transaction */
} sqlite_db;

static ts_err sqlite_fail(sqlite3 *db, int rc, const char *what)
{
    const char *msg = db != NULL ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return ts_error_set(TS_ERR_CONFLICT, "%s: the database is busy: %s", what, msg);
    case SQLITE_CONSTRAINT:
        if (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY) {
            return ts_error_set(TS_ERR_EXISTS, "%s: %s", what, msg);
        }
        if (rc == SQLITE_CONSTRAINT_FOREIGNKEY) {
            return ts_error_set(TS_ERR_NOT_FOUND, "%s: a referenced row does not exist: %s", what,
                                msg);
        }
        break;
    case SQLITE_FULL:
        return ts_error_set(TS_ERR_FULL, "%s: %s", what, msg);
    default:
        break;
    }
    return ts_error_set(TS_ERR_STORE, "%s: SQLite: %s", what, msg);
}

/* Our SQL says $1, $2, ...; SQLite reads $NAME as a named parameter, so it gets ?1, ?2. */
static ts_err translate(const char *sql, char *out, size_t size)
{
    size_t len = strlen(sql);
    if (len >= size) {
        return ts_error_set(TS_ERR_INVALID, "an SQL statement is longer than %zu bytes", size);
    }
    char quote = 0;
    for (size_t i = 0; i <= len; i++) {
        char c = sql[i];
        if (quote != 0) {
            quote = c == quote ? 0 : quote;
        } else if (c == '\'' || c == '"') {
            quote = c;
        } else if (c == '$' && sql[i + 1] >= '1' && sql[i + 1] <= '9') {
            c = '?';
        }
        out[i] = c;
    }
    return TS_OK;
}

static ts_err sqlite_prepare(sqlite_db *d, const char *sql, sqlite3_stmt **stmt, int *cached)
{
    for (size_t i = 0; i < d->cached; i++) {
        if (strcmp(d->cache[i].sql, sql) == 0) {
            *stmt = d->cache[i].stmt;
            *cached = 1;
            return TS_OK;
        }
    }
    char text[SQLITE_SQL_MAX];
    ts_err rv = translate(sql, text, sizeof text);
    if (rv != TS_OK) {
        return rv;
    }
    int rc = sqlite3_prepare_v3(d->db, text, -1, SQLITE_PREPARE_PERSISTENT, stmt, NULL);
    if (rc != SQLITE_OK) {
        return sqlite_fail(d->db, rc, "preparing a statement");
    }
    *cached = 0;
    char *copy = d->cached < SQLITE_CACHE_SLOTS ? OPENSSL_strdup(sql) : NULL;
    if (copy != NULL) {
        d->cache[d->cached].sql = copy;
        d->cache[d->cached].stmt = *stmt;
        d->cached++;
        *cached = 1;
    }
    return TS_OK;
}

static void sqlite_release(sqlite3_stmt *stmt, int cached)
{
    if (cached) {
        sqlite3_reset(stmt);
        sqlite3_clear_bindings(stmt);
    } else {
        sqlite3_finalize(stmt);
    }
}

static ts_err sqlite_bind(sqlite_db *d, sqlite3_stmt *stmt, const ts_sql_value *params, size_t n)
{
    if ((size_t)sqlite3_bind_parameter_count(stmt) != n) {
        return ts_error_set(TS_ERR_INVALID, "a statement takes %d parameters, not %zu",
                            sqlite3_bind_parameter_count(stmt), n);
    }
    for (size_t i = 0; i < n; i++) {
        const ts_sql_value *p = &params[i];
        int idx = (int)i + 1;
        int rc = SQLITE_MISUSE;
        if (p->type == TS_SQL_NULL || (p->type != TS_SQL_INT && p->p == NULL)) {
            rc = sqlite3_bind_null(stmt, idx);
        } else if (p->type == TS_SQL_INT) {
            rc = sqlite3_bind_int64(stmt, idx, p->i);
        } else if (p->len > INT32_MAX) {
            return ts_error_set(TS_ERR_INVALID, "parameter %d is too long", idx);
        } else if (p->type == TS_SQL_TEXT) {
            rc = sqlite3_bind_text(stmt, idx, p->p, (int)p->len, SQLITE_STATIC);
        } else {
            rc = sqlite3_bind_blob(stmt, idx, p->p, (int)p->len, SQLITE_STATIC);
        }
        if (rc != SQLITE_OK) {
            return sqlite_fail(d->db, rc, "binding a parameter");
        }
    }
    return TS_OK;
}

static ts_err sqlite_row(sqlite3_stmt *stmt, ts_sql_row_fn fn, void *ctx)
{
    ts_sql_value cols[TS_SQL_MAX_COLS];
    int n = sqlite3_column_count(stmt);
    if (n < 0 || n > TS_SQL_MAX_COLS) {
        return ts_error_set(TS_ERR_INVALID, "a result has %d columns, over %d", n, TS_SQL_MAX_COLS);
    }
    memset(cols, 0, sizeof cols);
    for (int i = 0; i < n; i++) {
        switch (sqlite3_column_type(stmt, i)) {
        case SQLITE_INTEGER:
            cols[i].type = TS_SQL_INT;
            cols[i].i = sqlite3_column_int64(stmt, i);
            break;
        case SQLITE_TEXT:
            cols[i].type = TS_SQL_TEXT;
            cols[i].p = sqlite3_column_text(stmt, i);
            cols[i].len = (size_t)sqlite3_column_bytes(stmt, i);
            break;
        case SQLITE_BLOB:
            cols[i].type = TS_SQL_BLOB;
            cols[i].p = sqlite3_column_blob(stmt, i);
            cols[i].len = (size_t)sqlite3_column_bytes(stmt, i);
            break;
        case SQLITE_NULL:
            cols[i].type = TS_SQL_NULL;
            break;
        default:
            /* A REAL never belongs in this schema: someone edited the file. */
            return ts_error_set(TS_ERR_CORRUPT, "column %s holds a floating-point value",
                                sqlite3_column_name(stmt, i));
        }
        if (cols[i].type != TS_SQL_NULL && cols[i].type != TS_SQL_INT && cols[i].p == NULL &&
            cols[i].len != 0) {
            return ts_error_set(TS_ERR_NOMEM, "no memory for a column value");
        }
    }
    ts_sql_row row = {.ncols = (size_t)n, .cols = cols};
    return fn(ctx, &row);
}

static ts_err sqlite_run(sqlite_db *d, const char *sql, const ts_sql_value *params, size_t n,
                         ts_sql_row_fn fn, void *ctx, int64_t *changes)
{
    sqlite3_stmt *stmt = NULL;
    int cached = 0;
    ts_err rv = sqlite_prepare(d, sql, &stmt, &cached);
    if (rv != TS_OK) {
        return rv;
    }
    rv = sqlite_bind(d, stmt, params, n);
    for (;;) {
        if (rv != TS_OK) {
            break;
        }
        int rc = sqlite3_step(stmt);
        if (rc == SQLITE_DONE) {
            break;
        }
        if (rc != SQLITE_ROW) {
            rv = sqlite_fail(d->db, sqlite3_extended_errcode(d->db), "running a statement");
            break;
        }
        if (fn != NULL) {
            rv = sqlite_row(stmt, fn, ctx);
        }
    }
    if (rv == TS_OK && changes != NULL) {
        *changes = sqlite3_changes64(d->db);
    }
    sqlite_release(stmt, cached);
    return rv;
}

static ts_err sqlite_exec(void *db, const char *sql, const ts_sql_value *params, size_t n,
                          int64_t *changes)
{
    return sqlite_run(db, sql, params, n, NULL, NULL, changes);
}

static ts_err sqlite_query(void *db, const char *sql, const ts_sql_value *params, size_t n,
                           ts_sql_row_fn fn, void *ctx)
{
    return sqlite_run(db, sql, params, n, fn, ctx, NULL);
}

static ts_err sqlite_insert_id(void *db, const char *sql, const ts_sql_value *params, size_t n,
                               int64_t *id)
{
    sqlite_db *d = db;
    int64_t changes = 0;
    ts_err rv = sqlite_run(d, sql, params, n, NULL, NULL, &changes);
    /* One row inserted: this connection's last rowid is its id (the table's INTEGER PRIMARY KEY).
     */
    *id = rv == TS_OK && changes == 1 ? sqlite3_last_insert_rowid(d->db) : 0;
    return rv;
}

static void gate_exit(sqlite_db *d)
{
    if (d->in_gate) {
        d->in_gate = 0;
        sqlite_gate_exit(d->gate);
    }
}

static ts_err sqlite_begin(void *db)
{
    sqlite_db *d = db;
    ts_err rv = TS_OK;

    if (!d->in_gate) {
        rv = sqlite_gate_enter(d->gate, TS_STORE_BUSY_TIMEOUT_MS);
        d->in_gate = rv == TS_OK;
    }
    if (rv == TS_OK) {
        rv = sqlite_run(db, "BEGIN IMMEDIATE", NULL, 0, NULL, NULL, NULL);
    }
    if (rv != TS_OK) {
        gate_exit(d);
    }
    return rv;
}

static ts_err sqlite_commit(void *db)
{
    sqlite_db *d = db;
    ts_err rv = sqlite_run(db, "COMMIT", NULL, 0, NULL, NULL, NULL);

    /* A commit that failed leaves the transaction to the rollback that follows. */
    if (rv == TS_OK) {
        gate_exit(d);
    }
    return rv;
}

static ts_err sqlite_rollback(void *db)
{
    sqlite_db *d = db;
    ts_err rv = TS_OK;

    /* With autocommit on, SQLite already rolled back (after an I/O error, for one). */
    if (!sqlite3_get_autocommit(d->db)) {
        rv = sqlite_run(db, "ROLLBACK", NULL, 0, NULL, NULL, NULL);
    }
    gate_exit(d);
    return rv;
}

static ts_err sqlite_lock_migrations(void *db)
{
    (void)db;
    return TS_OK; /* BEGIN IMMEDIATE already holds the only write lock */
}

static void sqlite_close(void *db)
{
    sqlite_db *d = db;
    if (d == NULL) {
        return;
    }
    for (size_t i = 0; i < d->cached; i++) {
        sqlite3_finalize(d->cache[i].stmt);
        OPENSSL_free(d->cache[i].sql);
    }
    sqlite3_close(d->db);
    gate_exit(d);
    sqlite_gate_leave(d->gate);
    OPENSSL_free(d);
}

static ts_err pragma_text(sqlite_db *d, const char *sql, const char *want)
{
    sqlite3_stmt *stmt = NULL;
    int rc = sqlite3_prepare_v2(d->db, sql, -1, &stmt, NULL);
    if (rc != SQLITE_OK) {
        return sqlite_fail(d->db, rc, sql);
    }
    /*
     * Switching a fresh database to WAL needs an exclusive lock, and SQLite answers SQLITE_BUSY
     * at once, without its busy handler, while another process opens the same new file. Retry
     * for as long as the busy timeout would have waited.
     */
    rc = sqlite3_step(stmt);
    for (int waited = 0;
         (rc == SQLITE_BUSY || rc == SQLITE_LOCKED) && waited < TS_STORE_BUSY_TIMEOUT_MS;
         waited += 10) {
        sqlite3_reset(stmt);
        sqlite3_sleep(10);
        rc = sqlite3_step(stmt);
    }
    ts_err rv = TS_OK;
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        rv = sqlite_fail(d->db, rc, sql);
    } else if (want != NULL) {
        const char *got = rc == SQLITE_ROW ? (const char *)sqlite3_column_text(stmt, 0) : NULL;
        if (got == NULL || strcmp(got, want) != 0) {
            rv = ts_error_set(TS_ERR_STORE, "%s: SQLite answered %s, not %s", sql,
                              got != NULL ? got : "nothing", want);
        }
    }
    sqlite3_finalize(stmt);
    return rv;
}

static ts_err sqlite_open(const char *url, void **out)
{
    const char *path = url + strlen("sqlite:");
    sqlite_db *d = NULL;
    ts_err rv = TS_ERR_STORE;

    if (path[0] == '\0') {
        return ts_error_set(TS_ERR_INVALID, "\"%s\" names no database file", url);
    }
    /*
     * Create a missing file ourselves so that it (and SQLite's -wal and -shm beside it) is 0600.
     * Only a missing one: closing any descriptor of a file drops every POSIX lock this process
     * holds on it, so opening and closing an existing database would silently release the locks
     * of this process's other connections (and let another process delete the live WAL).
     */
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd >= 0) {
        close(fd);
    } else if (errno != EEXIST) {
        return ts_error_set(TS_ERR_IO, "cannot create the database %s: %s", path, strerror(errno));
    }
    d = OPENSSL_zalloc(sizeof *d);
    if (d == NULL) {
        return ts_error_set(TS_ERR_NOMEM, "no memory for a database connection");
    }
    int rc = sqlite3_open_v2(
        path, &d->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE, NULL);
    if (rc != SQLITE_OK) {
        rv = sqlite_fail(d->db, rc, path);
        goto done;
    }
    rv = sqlite_gate_join(path, &d->gate);
    if (rv != TS_OK) {
        goto done;
    }
    sqlite3_extended_result_codes(d->db, 1);
    /* Refuse schema tricks from a tampered file: no writable_schema, no unsafe functions. */
    sqlite3_db_config(d->db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
    sqlite3_db_config(d->db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, NULL);
    rc = sqlite3_busy_timeout(d->db, TS_STORE_BUSY_TIMEOUT_MS);
    if (rc != SQLITE_OK) {
        rv = sqlite_fail(d->db, rc, path);
        goto done;
    }
    rv = pragma_text(d, "PRAGMA journal_mode=WAL", "wal");
    if (rv == TS_OK) {
        rv = pragma_text(d, "PRAGMA synchronous=FULL", NULL);
    }
    if (rv == TS_OK) {
        rv = pragma_text(d, "PRAGMA foreign_keys=ON", NULL);
    }
    if (rv == TS_OK) {
        rv = pragma_text(d, "PRAGMA foreign_keys", "1");
    }
    if (rv != TS_OK) {
        rv = ts_error_prefix(rv, "%s", path);
        goto done;
    }
    *out = d;
    d = NULL;
done:
    sqlite_close(d);
    return rv;
}

const ts_sql_driver ts_sql_sqlite_driver = {
    .name = "sqlite",
    .open = sqlite_open,
    .close = sqlite_close,
    .exec = sqlite_exec,
    .query = sqlite_query,
    .insert_id = sqlite_insert_id,
    .begin = sqlite_begin,
    .commit = sqlite_commit,
    .rollback = sqlite_rollback,
    .lock_migrations = sqlite_lock_migrations,
    .dialect = 0,
    .locks_database = 1,
};
