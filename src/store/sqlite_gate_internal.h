/*
 * One writer at a time among the SQLite connections of this process to one database file.
 *
 * SQLite lets a writer that finds the write lock taken wait in its busy handler, which sleeps 1,
 * 2, 5, 10 ms and more between tries: a service worker whose turn comes half a millisecond
 * after it asked (a commit that syncs its WAL) still sleeps for several. Writers of the same
 * process instead queue on a mutex of the file and start the moment the previous one ends;
 * writers of other processes still take turns through SQLite's lock and busy timeout.
 */
#ifndef TS_STORE_SQLITE_GATE_INTERNAL_H
#define TS_STORE_SQLITE_GATE_INTERNAL_H

#include "tessera/error.h"

typedef struct sqlite_gate sqlite_gate;

/* The gate of the file at path (by device and inode), made on first use; *out is shared by
 * every connection to that file until each has left. */
TS_MUST_CHECK ts_err sqlite_gate_join(const char *path, sqlite_gate **out);
void sqlite_gate_leave(sqlite_gate *gate);

/* Waits up to timeout_ms for the gate: TS_OK when taken, TS_ERR_CONFLICT when another writer of
 * this process held it all that time. */
TS_MUST_CHECK ts_err sqlite_gate_enter(sqlite_gate *gate, int timeout_ms);
void sqlite_gate_exit(sqlite_gate *gate);

#endif
