/*
 * A throwaway PostgreSQL server for a test: initdb into a fresh temporary directory, started
 * with pg_ctl on a Unix socket in that directory only (listen_addresses is empty, so nothing
 * listens on the network), fsync off. Run as root, the server runs as `nobody`, since
 * PostgreSQL refuses to run as root. ts_pg_stop() stops it and removes the directory.
 *
 * The binaries come from $TS_PG_BINDIR, else the newest /usr/lib/postgresql/N/bin (Debian).
 */
#ifndef TS_PG_FIXTURE_H
#define TS_PG_FIXTURE_H

#include <stddef.h>
#include <sys/types.h>

typedef struct ts_pg_server {
    char dir[256];    /* the temporary directory: data/, the socket, logs */
    char bindir[256]; /* where initdb and pg_ctl are */
    int port;         /* names the socket file only */
    int running;
    uid_t uid; /* who the server runs as */
    gid_t gid;
} ts_pg_server;

enum {
    TS_PG_STARTED = 0,
    TS_PG_ABSENT = 1,  /* the PostgreSQL server binaries are not installed */
    TS_PG_FAILED = -1, /* they are, but the server did not start */
};

/* Starts a server; why gets the reason when it returns TS_PG_ABSENT or TS_PG_FAILED. */
int ts_pg_start(ts_pg_server *pg, char *why, size_t why_size);

/* Creates an empty database (name: lower-case letters, digits, _) and writes its libpq URI,
 * "postgresql:///NAME?host=DIR&port=PORT&user=tessera". 0 on success. */
int ts_pg_create_db(ts_pg_server *pg, const char *name, char *uri, size_t size);

/* Stops the server (immediate shutdown) and removes its directory; safe to call twice. */
void ts_pg_stop(ts_pg_server *pg);

#endif
