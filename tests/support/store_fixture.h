/*
 * The store tests' fixture: every case runs on SQLite (a fresh file in a temporary directory)
 * and on PostgreSQL (a fresh database on a server started once per test program,
 * pg_fixture.h). store_fx_raw() reaches the database behind the store's back, as an intruder
 * would. The cmocka runner over both backends is tests/unit/store_test_util.h.
 */
#ifndef TS_STORE_FIXTURE_H
#define TS_STORE_FIXTURE_H

#include <stddef.h>

#include "pg_fixture.h"
#include "tessera/store.h"

typedef enum store_backend {
    STORE_SQLITE = 0,
    STORE_PG = 1,
} store_backend;

typedef struct store_fx {
    store_backend backend;
    char dir[256]; /* SQLite: the temporary directory */
    char url[1024];
    ts_store *s; /* opened on url */
} store_fx;

/* Starts the PostgreSQL server the cases share: TS_PG_STARTED, TS_PG_ABSENT or TS_PG_FAILED
 * (pg_fixture.h), and the reason into why. */
int store_fx_pg_start(char *why, size_t why_size);
void store_fx_pg_stop(void);

/* A fresh database of the backend, opened as fx->s. 0 on success. */
int store_fx_setup(store_fx *fx, store_backend backend);
void store_fx_teardown(store_fx *fx);

/* A second store on the fixture's database (another connection). */
ts_err store_fx_open_again(store_fx *fx, ts_store **out);

/* Runs sql ($1 is text, or no parameter when NULL) directly on the database. 0 on success;
 * else the database's message is printed. */
int store_fx_raw(store_fx *fx, const char *sql, const char *text);

/* A fresh, empty database of the same backend (for migration tests); its URL into url. */
int store_fx_new_database(store_fx *fx, char *url, size_t size);

#endif
