/*
 * The PostgreSQL driver: "postgresql://..." or "postgres://..." (a libpq conninfo URI).
 *
 * One connection per store. Every statement goes through PQexecParams with its values as
 * parameters (integers as text, text as text, blobs in binary) and asks for binary results, so
 * integers and bytea arrive without text parsing. Transactions run at READ COMMITTED; the
 * statements that must serialise (CRL numbers, the audit chain head) take row locks with
 * UPDATE ... RETURNING, and migrations take a transaction-scoped advisory lock.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include <openssl/crypto.h>

#include "common/error_internal.h"
#include "store/store_internal.h"

/* Type OIDs from the server's catalog (pg_type.dat); stable across releases. */
enum {
    PG_BOOL = 16,
    PG_BYTEA = 17,
    PG_NAME = 19,
    PG_INT8 = 20,
    PG_INT2 = 21,
    PG_INT4 = 23,
    PG_TEXT = 25,
    PG_BPCHAR = 1042,
    PG_VARCHAR = 1043,
};

/* The advisory lock key migrations take: the bytes "TSMIGRAT" as a big-endian number. */
#define PG_MIGRATION_LOCK "6076285299377455444"

static void pg_notice(void *arg, const char *message)
{
    (void)arg;
    (void)message; /* "relation already exists, skipping" and the like are expected */
}

/* The first line of libpq's message, without its trailing newline. */
static void pg_message(PGconn *conn, const PGresult *res, char *buf, size_t size)
{
    const char *msg = res != NULL ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    if (msg == NULL) {
        msg = PQerrorMessage(conn);
    }
    snprintf(buf, size, "%s", msg != NULL && msg[0] != '\0' ? msg : "unknown error");
    buf[strcspn(buf, "\n")] = '\0';
}

static ts_err pg_fail(PGconn *conn, const PGresult *res, const char *what)
{
    char msg[512];
    const char *state = res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    pg_message(conn, res, msg, sizeof msg);
    if (state == NULL) {
        return ts_error_set(TS_ERR_STORE, "%s: PostgreSQL: %s", what, msg);
    }
    /* SQLSTATE codes, PostgreSQL documentation appendix A. */
    if (strcmp(state, "23505") == 0) {
        return ts_error_set(TS_ERR_EXISTS, "%s: %s", what, msg);
    }
    if (strcmp(state, "23503") == 0) {
        return ts_error_set(TS_ERR_NOT_FOUND, "%s: a referenced row does not exist: %s", what, msg);
    }
    if (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0 || strcmp(state, "55P03") == 0) {
        return ts_error_set(TS_ERR_CONFLICT, "%s: %s (retry)", what, msg);
    }
    if (strcmp(state, "53100") == 0) {
        return ts_error_set(TS_ERR_FULL, "%s: %s", what, msg);
    }
    return ts_error_set(TS_ERR_STORE, "%s: PostgreSQL (%s): %s", what, state, msg);
}

static ts_err pg_int(const char *p, int len, Oid type, int64_t *out)
{
    uint64_t v = 0;
    int want = type == PG_INT8 ? 8 : type == PG_INT4 ? 4 : type == PG_INT2 ? 2 : 1;
    if (len != want) {
        return ts_error_set(TS_ERR_STORE, "an integer column arrived as %d bytes, not %d", len,
                            want);
    }
    for (int i = 0; i < len; i++) {
        v = v << 8 | (uint8_t)p[i];
    }
    /* Sign-extend the big-endian two's complement value (PostgreSQL's binary format). */
    if (len < 8 && type != PG_BOOL && (v >> (len * 8 - 1)) != 0) {
        v |= ~(uint64_t)0 << (len * 8);
    }
    *out = (int64_t)v;
    return TS_OK;
}

static ts_err pg_rows(const PGresult *res, ts_sql_row_fn fn, void *ctx)
{
    ts_sql_value cols[TS_SQL_MAX_COLS];
    int ncols = PQnfields(res);
    int nrows = PQntuples(res);
    if (ncols < 0 || ncols > TS_SQL_MAX_COLS) {
        return ts_error_set(TS_ERR_INVALID, "a result has %d columns, over %d", ncols,
                            TS_SQL_MAX_COLS);
    }
    for (int r = 0; r < nrows; r++) {
        memset(cols, 0, sizeof cols);
        for (int c = 0; c < ncols; c++) {
            Oid type = PQftype(res, c);
            const char *p = PQgetvalue(res, r, c);
            int len = PQgetlength(res, r, c);
            if (PQgetisnull(res, r, c)) {
                cols[c].type = TS_SQL_NULL;
                continue;
            }
            if (p == NULL || len < 0 || PQfformat(res, c) != 1) {
                return ts_error_set(TS_ERR_STORE, "column %s of a result is unreadable",
                                    PQfname(res, c));
            }
            if (type == PG_INT8 || type == PG_INT4 || type == PG_INT2 || type == PG_BOOL) {
                cols[c].type = TS_SQL_INT;
                ts_err rv = pg_int(p, len, type, &cols[c].i);
                if (rv != TS_OK) {
                    return rv;
                }
            } else if (type == PG_TEXT || type == PG_VARCHAR || type == PG_BPCHAR ||
                       type == PG_NAME) {
                cols[c].type = TS_SQL_TEXT;
                cols[c].p = p;
                cols[c].len = (size_t)len;
            } else if (type == PG_BYTEA) {
                cols[c].type = TS_SQL_BLOB;
                cols[c].p = p;
                cols[c].len = (size_t)len;
            } else {
                return ts_error_set(TS_ERR_STORE,
                                    "column %s has type %u, which the store reads "
                                    "as none of integer, text or bytea",
                                    PQfname(res, c), (unsigned)type);
            }
        }
        ts_sql_row row = {.ncols = (size_t)ncols, .cols = cols};
        ts_err rv = fn(ctx, &row);
        if (rv != TS_OK) {
            return rv;
        }
    }
    return TS_OK;
}

static ts_err pg_run(PGconn *conn, const char *sql, const ts_sql_value *params, size_t n,
                     ts_sql_row_fn fn, void *ctx, int64_t *changes)
{
    Oid types[TS_SQL_MAX_PARAMS];
    const char *values[TS_SQL_MAX_PARAMS];
    int lengths[TS_SQL_MAX_PARAMS];
    int formats[TS_SQL_MAX_PARAMS];
    char ints[TS_SQL_MAX_PARAMS][24];

    if (n > TS_SQL_MAX_PARAMS) {
        return ts_error_set(TS_ERR_INVALID, "a statement has %zu parameters, over %d", n,
                            TS_SQL_MAX_PARAMS);
    }
    for (size_t i = 0; i < n; i++) {
        const ts_sql_value *p = &params[i];
        types[i] = p->type == TS_SQL_INT    ? PG_INT8
                   : p->type == TS_SQL_TEXT ? PG_TEXT
                   : p->type == TS_SQL_BLOB ? PG_BYTEA
                                            : 0;
        values[i] = NULL;
        lengths[i] = 0;
        /* Text and bytea go in binary form (their bytes, with a length); integers as text. */
        formats[i] = p->type == TS_SQL_INT ? 0 : 1;
        if (p->type == TS_SQL_INT) {
            snprintf(ints[i], sizeof ints[i], "%lld", (long long)p->i);
            values[i] = ints[i];
        } else if (p->type != TS_SQL_NULL && p->p != NULL) {
            if (p->len > INT32_MAX) {
                return ts_error_set(TS_ERR_INVALID, "parameter %zu is too long", i + 1);
            }
            values[i] = p->p;
            lengths[i] = (int)p->len;
        }
    }
    PGresult *res = PQexecParams(conn, sql, (int)n, types, values, lengths, formats, 1);
    ExecStatusType st = PQresultStatus(res);
    ts_err rv = TS_OK;
    if (res == NULL || (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)) {
        rv = pg_fail(conn, res, "running a statement");
    } else if (fn != NULL) {
        rv = pg_rows(res, fn, ctx);
    }
    if (rv == TS_OK && changes != NULL) {
        const char *tuples = PQcmdTuples(res);
        *changes = tuples != NULL && tuples[0] != '\0' ? strtoll(tuples, NULL, 10) : 0;
    }
    PQclear(res);
    return rv;
}

static ts_err pg_exec(void *db, const char *sql, const ts_sql_value *params, size_t n,
                      int64_t *changes)
{
    return pg_run(db, sql, params, n, NULL, NULL, changes);
}

static ts_err pg_query(void *db, const char *sql, const ts_sql_value *params, size_t n,
                       ts_sql_row_fn fn, void *ctx)
{
    return pg_run(db, sql, params, n, fn, ctx, NULL);
}

static ts_err pg_id_row(void *ctx, const ts_sql_row *row)
{
    return ts_sql_get_int(row, 0, "id", ctx);
}

static ts_err pg_insert_id(void *db, const char *sql, const ts_sql_value *params, size_t n,
                           int64_t *id)
{
    static const char returning[] = " RETURNING id";
    size_t len = strlen(sql);
    char *text = OPENSSL_malloc(len + sizeof returning);
    ts_err rv;

    if (text == NULL) {
        return ts_error_set(TS_ERR_NOMEM, "out of memory");
    }
    memcpy(text, sql, len);
    memcpy(text + len, returning, sizeof returning);
    rv = pg_run(db, text, params, n, pg_id_row, id, NULL);
    OPENSSL_free(text);
    return rv;
}

/* A command without parameters whose status tag must be want. */
static ts_err pg_command(PGconn *conn, const char *sql, const char *want)
{
    PGresult *res = PQexec(conn, sql);
    ts_err rv = TS_OK;
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        rv = pg_fail(conn, res, sql);
    } else if (strcmp(PQcmdStatus(res), want) != 0) {
        /* COMMIT of a transaction the server already aborted answers ROLLBACK. */
        rv = ts_error_set(TS_ERR_STORE,
                          "%s: PostgreSQL answered %s: the transaction was rolled "
                          "back",
                          sql, PQcmdStatus(res));
    }
    PQclear(res);
    return rv;
}

static ts_err pg_begin(void *db)
{
    return pg_command(db, "BEGIN ISOLATION LEVEL READ COMMITTED", "BEGIN");
}

static ts_err pg_commit(void *db)
{
    return pg_command(db, "COMMIT", "COMMIT");
}

static ts_err pg_rollback(void *db)
{
    if (PQtransactionStatus(db) == PQTRANS_IDLE) {
        return TS_OK;
    }
    return pg_command(db, "ROLLBACK", "ROLLBACK");
}

static ts_err pg_lock_migrations(void *db)
{
    /* Held until the transaction ends: a second opener waits, then finds the work done. */
    return pg_run(db, "SELECT pg_advisory_xact_lock(" PG_MIGRATION_LOCK ")", NULL, 0, NULL, NULL,
                  NULL);
}

static void pg_close(void *db)
{
    PQfinish(db);
}

static ts_err pg_open(const char *url, void **out)
{
    PGconn *conn = PQconnectdb(url);
    ts_err rv = TS_ERR_STORE;
    char msg[512];

    if (conn == NULL) {
        return ts_error_set(TS_ERR_NOMEM, "no memory for a PostgreSQL connection");
    }
    if (PQstatus(conn) != CONNECTION_OK) {
        /* The URI may hold a password: name the server by what libpq says, not the URI. */
        pg_message(conn, NULL, msg, sizeof msg);
        rv = ts_error_set(TS_ERR_STORE, "cannot connect to PostgreSQL: %s", msg);
        goto done;
    }
    PQsetNoticeProcessor(conn, pg_notice, NULL);
    if (PQserverVersion(conn) < 100000) {
        rv = ts_error_set(TS_ERR_UNSUPPORTED,
                          "PostgreSQL %d is too old: the store needs 10 or "
                          "newer",
                          PQserverVersion(conn));
        goto done;
    }
    if (PQsetClientEncoding(conn, "UTF8") != 0) {
        rv = pg_fail(conn, NULL, "setting the client encoding");
        goto done;
    }
    *out = conn;
    conn = NULL;
    rv = TS_OK;
done:
    PQfinish(conn);
    return rv;
}

const ts_sql_driver ts_sql_pg_driver = {
    .name = "postgresql",
    .open = pg_open,
    .close = pg_close,
    .exec = pg_exec,
    .query = pg_query,
    .insert_id = pg_insert_id,
    .begin = pg_begin,
    .commit = pg_commit,
    .rollback = pg_rollback,
    .lock_migrations = pg_lock_migrations,
    .dialect = 1,
    .locks_database = 0,
};
