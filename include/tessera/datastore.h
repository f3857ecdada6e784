/*
 * The device agent's datastore: its configuration (service URL, trusted roots, key and
 * certificate labels, MQTT endpoint, re-enrollment threshold, and whatever else the service
 * sends), kept in a state directory and bound to the device's key store.
 *
 * A datastore is a set of named, typed entries (name -> bytes). Names are 1 to
 * TS_DATASTORE_NAME_MAX characters of [a-z0-9._-] starting with a letter ("server.url"). It is
 * changed only by transactions: ts_datastore_begin(), one or more ts_datastore_put(),
 * ts_datastore_append() or ts_datastore_delete() chunks, then ts_datastore_commit() or
 * ts_datastore_abort(). Each commit makes a new generation; a crash at any point leaves either
 * the old or the new generation readable, and the generation never goes back (it is checked
 * against a monotonic counter in the key store). docs/datastore.md gives the format and the
 * crash argument.
 *
 * On disk each generation is DER (OpenSSL ASN.1 templates) carrying the key store's UID and an
 * HMAC-SHA256 under a key that only this key store can derive, so a datastore copied from another
 * device (TS_ERR_FOREIGN), edited by hand (TS_ERR_AUTH), damaged (TS_ERR_CORRUPT) or replaced by
 * an older copy (TS_ERR_ROLLBACK) is refused.
 *
 * Thread safety: a ts_datastore and its transaction belong to one thread at a time. Several
 * processes may open the same state directory: opening and committing take an advisory lock, and
 * a commit based on a generation that another process has since replaced fails with
 * TS_ERR_CONFLICT.
 */
#ifndef TESSERA_DATASTORE_H
#define TESSERA_DATASTORE_H

#include <stddef.h>
#include <stdint.h>

#include "tessera/error.h"
#include "tessera/export.h"
#include "tessera/keystore.h"

typedef struct ts_datastore ts_datastore;
typedef struct ts_datastore_txn ts_datastore_txn;

enum {
    TS_DATASTORE_FORMAT_VERSION = 1,     /* the on-disk format this code writes and reads */
    TS_DATASTORE_NAME_MAX = 64,          /* characters of an entry name */
    TS_DATASTORE_VALUE_MAX = 64 * 1024,  /* bytes of one value */
    TS_DATASTORE_ENTRIES_MAX = 256,      /* entries in one datastore */
    TS_DATASTORE_TOTAL_MAX = 256 * 1024, /* bytes of all values together */
};

/* The type of an entry's value. */
typedef enum ts_datastore_type {
    TS_DATASTORE_BYTES = 0, /* any bytes */
    TS_DATASTORE_TEXT = 1,  /* UTF-8 without NUL */
    TS_DATASTORE_UINT = 2,  /* an unsigned 64-bit number in decimal, no leading zero */
} ts_datastore_type;

/* Where the open datastore's entries come from. */
typedef enum ts_datastore_origin {
    TS_DATASTORE_STORED = 1,   /* a verified generation from the state directory */
    TS_DATASTORE_DEFAULTS = 2, /* no valid datastore: the compiled-in defaults */
} ts_datastore_origin;

/* Names the agent uses. The service may store any other valid name. */
#define TS_DS_SERVER_URL    "server.url"              /* TEXT: the service's base URL */
#define TS_DS_TRUST_ROOTS   "trust.roots"             /* TEXT: PEM root certificates */
#define TS_DS_KEY_LABEL     "identity.key"            /* TEXT: key-store label of the key */
#define TS_DS_CERT_LABEL    "identity.cert"           /* TEXT: key-store label of the cert */
#define TS_DS_MQTT_HOST     "mqtt.host"               /* TEXT */
#define TS_DS_MQTT_PORT     "mqtt.port"               /* UINT */
#define TS_DS_MQTT_TOPIC    "mqtt.topic"              /* TEXT: the telemetry topic prefix */
#define TS_DS_REENROLL_DAYS "reenroll.threshold_days" /* UINT */

/* Key-store objects the datastore uses (made on first open). */
#define TS_DATASTORE_KEY     "ts.datastore.key" /* P-256 key whose ECDH derives the MAC key */
#define TS_DATASTORE_COUNTER "ts.datastore.gen" /* the highest committed generation */

/* --- Opening --------------------------------------------------------------------------------- */

/*
 * Opens the datastore in state_dir (which must exist) bound to ks, which the datastore keeps a
 * reference to. Creates the MAC key in ks when it has none. Discards what a crash left behind
 * (the temporary file of an unfinished commit). Reads both slots and keeps the newest one that
 * verifies; raises the key-store counter to it when a crash came between a commit's rename and
 * its counter update.
 *
 * Fails, with *out NULL, with TS_ERR_NOT_FOUND when there is no datastore yet, and with
 * TS_ERR_FOREIGN, TS_ERR_AUTH, TS_ERR_CORRUPT, TS_ERR_UNSUPPORTED or TS_ERR_ROLLBACK when no
 * slot holds a valid datastore that is at least as new as the key-store counter.
 */
TS_API TS_MUST_CHECK ts_err ts_datastore_open(const char *state_dir, ts_keystore *ks,
                                              ts_datastore **out);

/*
 * As ts_datastore_open(), but when no valid datastore exists (any of the refusals above) the
 * handle holds the compiled-in defaults instead, ts_datastore_source() is
 * TS_DATASTORE_DEFAULTS, ts_datastore_status() says "no valid datastore: using compiled-in
 * defaults (why)" and ts_datastore_refusal() gives the refusal's code. A commit from there writes
 * a fresh generation above the key-store counter. Fails only when the datastore cannot be used
 * at all (I/O, key store, memory).
 */
TS_API TS_MUST_CHECK ts_err ts_datastore_open_or_defaults(const char *state_dir, ts_keystore *ks,
                                                          ts_datastore **out);

/* Closes the handle and wipes its MAC key. Any open transaction must be ended first. NULL is fine.
 */
TS_API void ts_datastore_free(ts_datastore *ds);

TS_API ts_datastore_origin ts_datastore_source(const ts_datastore *ds);

/* One line for logs and status reports: "datastore generation N" or the defaults notice. */
TS_API const char *ts_datastore_status(const ts_datastore *ds);

/* TS_OK for a stored datastore; for defaults, why the stored one was refused. */
TS_API ts_err ts_datastore_refusal(const ts_datastore *ds);

/* The generation of the entries in hand: 0 for defaults, 1 and up for committed ones. */
TS_API uint64_t ts_datastore_generation(const ts_datastore *ds);

/* The format version of the stored datastore read; 0 for defaults. */
TS_API unsigned ts_datastore_version(const ts_datastore *ds);

/* --- Reading --------------------------------------------------------------------------------- */

/*
 * The value of name: *value points into the handle (valid until the next commit or free, and
 * followed by a NUL byte that is not counted in *len). type may be NULL. TS_ERR_NOT_FOUND when
 * there is no such entry.
 */
TS_API TS_MUST_CHECK ts_err ts_datastore_get(const ts_datastore *ds, const char *name,
                                             const uint8_t **value, size_t *len,
                                             ts_datastore_type *type);

/* A TEXT or UINT entry as a string (valid as for ts_datastore_get). TS_ERR_WRONG_TYPE for BYTES. */
TS_API TS_MUST_CHECK ts_err ts_datastore_get_text(const ts_datastore *ds, const char *name,
                                                  const char **text);

/* A UINT entry. TS_ERR_WRONG_TYPE for the other types. */
TS_API TS_MUST_CHECK ts_err ts_datastore_get_uint(const ts_datastore *ds, const char *name,
                                                  uint64_t *value);

/* The number of entries, and the name of entry i (sorted by name), or NULL past the end. */
TS_API size_t ts_datastore_count(const ts_datastore *ds);
TS_API const char *ts_datastore_name_at(const ts_datastore *ds, size_t i);

/* --- Compiled-in defaults -------------------------------------------------------------------- */

typedef struct ts_datastore_default {
    const char *name;
    ts_datastore_type type;
    const char *value; /* text; a UINT's decimal digits */
} ts_datastore_default;

/*
 * The defaults built into the agent, sorted by name (CMake cache options TS_AGENT_DEFAULT_SERVER,
 * TS_AGENT_DEFAULT_MQTT_HOST, TS_AGENT_DEFAULT_MQTT_PORT, TS_AGENT_DEFAULT_REENROLL_DAYS). An
 * empty value means "none": that entry is left out of the defaults a handle holds. *count is set
 * to the number of rows.
 */
TS_API const ts_datastore_default *ts_datastore_defaults(size_t *count);

/* --- Transactions ---------------------------------------------------------------------------- */

/*
 * Allocates a transaction on the entries in hand. One transaction per handle at a time
 * (TS_ERR_STATE otherwise). The transaction is kept in memory: nothing reaches the disk before
 * ts_datastore_commit(), so a transaction abandoned by a crash leaves nothing behind.
 */
TS_API TS_MUST_CHECK ts_err ts_datastore_begin(ts_datastore *ds, ts_datastore_txn **out);

/* Sets name to value (a new entry, or replacing the old one and its type). Checked: a TEXT value
 * must be UTF-8 without NUL, a UINT value decimal digits; TS_ERR_LIMIT past the size limits. */
TS_API TS_MUST_CHECK ts_err ts_datastore_put(ts_datastore_txn *txn, const char *name,
                                             ts_datastore_type type, const uint8_t *value,
                                             size_t len);

/* Adds a chunk to the end of a BYTES or TEXT entry put earlier (large values arrive in chunks). */
TS_API TS_MUST_CHECK ts_err ts_datastore_append(ts_datastore_txn *txn, const char *name,
                                                const uint8_t *chunk, size_t len);

/* Removes name. TS_ERR_NOT_FOUND when there is no such entry. */
TS_API TS_MUST_CHECK ts_err ts_datastore_delete(ts_datastore_txn *txn, const char *name);

/*
 * Commits: the new generation is written to the other slot (temporary file, fsync, rename,
 * fsync of the directory), then the key-store counter is raised to it. Ends the transaction
 * whatever the outcome. On success the handle shows the new generation. On failure before the
 * rename nothing changed; TEXT entries are checked for UTF-8 here (a value may end mid-character
 * between chunks). If only the counter update fails after the rename, the new generation stands
 * (the next open raises the counter) and the error says so.
 */
TS_API TS_MUST_CHECK ts_err ts_datastore_commit(ts_datastore_txn *txn);

/* Ends a transaction without changing anything. NULL is fine. */
TS_API void ts_datastore_abort(ts_datastore_txn *txn);

#endif
