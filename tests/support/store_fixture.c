/* The store tests' fixture (store_fixture.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <sqlite3.h>

#include "pg_fixture.h"
#include "store_fixture.h"
#include "test_support.h"

static ts_pg_server pg_server;
static int db_seq;

int store_fx_pg_start(char *why, size_t why_size)
{
    return ts_pg_start(&pg_server, why, why_size);
}

void store_fx_pg_stop(void)
{
    ts_pg_stop(&pg_server);
}

int store_fx_setup(store_fx *fx, store_backend backend)
{
    memset(fx, 0, sizeof *fx);
    fx->backend = backend;
    if (backend == STORE_SQLITE) {
        if (ts_test_tmpdir(fx->dir, sizeof fx->dir) != 0) {
            return -1;
        }
        snprintf(fx->url, sizeof fx->url, "sqlite:%s/tessera.db", fx->dir);
    } else {
        char name[64];
        snprintf(name, sizeof name, "t%d", ++db_seq);
        if (ts_pg_create_db(&pg_server, name, fx->url, sizeof fx->url) != 0) {
            return -1;
        }
    }
    ts_err rv = ts_store_open(fx->url, &fx->s);
    if (rv != TS_OK) {
        fprintf(stderr, "store_fixture: cannot open %s: %s\n", fx->url, ts_error_message());
        return -1;
    }
    return 0;
}

void store_fx_teardown(store_fx *fx)
{
    ts_store_free(fx->s);
    fx->s = NULL;
    if (fx->dir[0] != '\0' && getenv("TS_KEEP_TMP") == NULL) {
        ts_test_rmtree(fx->dir);
    }
    fx->dir[0] = '\0';
}

ts_err store_fx_open_again(store_fx *fx, ts_store **out)
{
    return ts_store_open(fx->url, out);
}

static int raw_sqlite(store_fx *fx, const char *sql, const char *text)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *stmt = NULL;
    char translated[2048];
    int rc = sqlite3_open_v2(fx->url + strlen("sqlite:"), &db, SQLITE_OPEN_READWRITE, NULL);
    /* The store's statements say $1; SQLite numbers parameters ?1. */
    snprintf(translated, sizeof translated, "%s", sql);
    for (char *p = translated; (p = strstr(p, "$1")) != NULL; p++) {
        *p = '?';
    }
    if (rc == SQLITE_OK) {
        sqlite3_busy_timeout(db, 10000);
        rc = sqlite3_prepare_v2(db, translated, -1, &stmt, NULL);
    }
    if (rc == SQLITE_OK && text != NULL) {
        rc = sqlite3_bind_text(stmt, 1, text, -1, SQLITE_TRANSIENT);
    }
    while (rc == SQLITE_OK || rc == SQLITE_ROW) {
        rc = sqlite3_step(stmt);
    }
    int ok = rc == SQLITE_DONE;
    if (!ok) {
        fprintf(stderr, "raw SQL \"%s\": %s\n", sql, sqlite3_errmsg(db));
    }
    sqlite3_finalize(stmt);
    sqlite3_close(db);
    return ok ? 0 : -1;
}

static int raw_pg(store_fx *fx, const char *sql, const char *text)
{
    const char *values[1] = {text};
    PGconn *conn = PQconnectdb(fx->url);
    int ok = 0;
    if (PQstatus(conn) == CONNECTION_OK) {
        PGresult *res = PQexecParams(conn, sql, text != NULL ? 1 : 0, NULL, values, NULL, NULL, 0);
        ok = PQresultStatus(res) == PGRES_COMMAND_OK || PQresultStatus(res) == PGRES_TUPLES_OK;
        PQclear(res);
    }
    if (!ok) {
        fprintf(stderr, "raw SQL \"%s\": %s\n", sql, PQerrorMessage(conn));
    }
    PQfinish(conn);
    return ok ? 0 : -1;
}

int store_fx_raw(store_fx *fx, const char *sql, const char *text)
{
    return fx->backend == STORE_SQLITE ? raw_sqlite(fx, sql, text) : raw_pg(fx, sql, text);
}

int store_fx_new_database(store_fx *fx, char *url, size_t size)
{
    static int other;
    if (fx->backend == STORE_SQLITE) {
        int n = snprintf(url, size, "sqlite:%s/other-%d.db", fx->dir, ++other);
        return n > 0 && (size_t)n < size ? 0 : -1;
    }
    char name[64];
    snprintf(name, sizeof name, "t%d", ++db_seq);
    return ts_pg_create_db(&pg_server, name, url, size);
}
