/*
 * The trust service's durable store: tenants, CAs, profiles, certificates, revocations, CRL
 * numbers, settings and the hash-chained audit log.
 *
 * One interface, two backends: SQLite ("sqlite:PATH", the default: WAL, synchronous=FULL,
 * foreign keys) and PostgreSQL ("postgresql://..." or "postgres://...", a libpq conninfo URI).
 * Opening runs the versioned schema migrations. Nothing here assumes it is the only process on
 * its database: uniqueness is enforced by constraints, and the audit chain is extended under a
 * lock the database holds (SQLite: BEGIN IMMEDIATE; PostgreSQL: a row lock on the chain head).
 *
 * Every change happens inside a transaction: ts_store_begin(), calls, ts_store_commit(); a
 * failure rolls back with ts_store_rollback(), so nothing of it remains. A commit that returns
 * TS_OK is durable.
 *
 * Thread safety: one ts_store per thread (each holds one connection).
 */
#ifndef TESSERA_STORE_H
#define TESSERA_STORE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "tessera/error.h"
#include "tessera/export.h"

typedef struct ts_store ts_store;

enum {
    TS_NAME_MAX = 64,   /* tenant, profile and CA names */
    TS_SERIAL_HEX = 41, /* a 20-byte serial as hex, with its NUL */
    TS_TEXT_MAX = 1024, /* subjects, URIs, org names */
};

TS_API TS_MUST_CHECK ts_err ts_store_open(const char *url, ts_store **out);
TS_API void ts_store_free(ts_store *store);

/* "sqlite" or "postgresql". */
TS_API const char *ts_store_backend(const ts_store *store);

/* The schema version after migrations. */
TS_API TS_MUST_CHECK ts_err ts_store_schema_version(ts_store *store, int *version);

TS_API TS_MUST_CHECK ts_err ts_store_begin(ts_store *store);
TS_API TS_MUST_CHECK ts_err ts_store_commit(ts_store *store);
TS_API void ts_store_rollback(ts_store *store);

/* --- Settings: instance-wide key/value text (organisation, base URL, ...) -------------------- */

TS_API TS_MUST_CHECK ts_err ts_store_setting_set(ts_store *store, const char *key,
                                                 const char *value);
/* *value is freed with OPENSSL_free(); TS_ERR_NOT_FOUND when unset. */
TS_API TS_MUST_CHECK ts_err ts_store_setting_get(ts_store *store, const char *key, char **value);

/* --- Tenants ---------------------------------------------------------------------------------- */

typedef struct ts_tenant_row {
    int64_t id;
    char name[TS_NAME_MAX + 1];
    char org[TS_TEXT_MAX];
    char country[3];
    time_t created;
} ts_tenant_row;

/* Inserts row (id is set); TS_ERR_EXISTS when the name is taken. */
TS_API TS_MUST_CHECK ts_err ts_store_tenant_insert(ts_store *store, ts_tenant_row *row);
TS_API TS_MUST_CHECK ts_err ts_store_tenant_get(ts_store *store, const char *name,
                                                ts_tenant_row *out);
/* Every tenant, by name; free with OPENSSL_free(*rows). */
TS_API TS_MUST_CHECK ts_err ts_store_tenant_list(ts_store *store, ts_tenant_row **rows,
                                                 size_t *count);

/* --- CAs -------------------------------------------------------------------------------------- */

typedef enum ts_ca_kind {
    TS_CA_ROOT = 1,
    TS_CA_ISSUING = 2,
} ts_ca_kind;

typedef struct ts_ca_row {
    int64_t id;
    int64_t tenant_id; /* issuing CAs: their tenant; root: 0 */
    ts_ca_kind kind;
    int active;                      /* the CA a tenant issues with now (one per tenant and kind) */
    char key_label[TS_NAME_MAX + 1]; /* its key's label in the instance's key store */
    uint8_t *cert_der;               /* owned by the row; free with ts_ca_row_clear() */
    size_t cert_len;
    char subject[TS_TEXT_MAX];
    char fingerprint[65]; /* SHA-256 of the certificate, hex */
    time_t created;
} ts_ca_row;

TS_API void ts_ca_row_clear(ts_ca_row *row);
TS_API TS_MUST_CHECK ts_err ts_store_ca_insert(ts_store *store, ts_ca_row *row);
/* The active CA of a kind for a tenant (tenant_id 0 with TS_CA_ROOT for the root). */
TS_API TS_MUST_CHECK ts_err ts_store_ca_active(ts_store *store, int64_t tenant_id, ts_ca_kind kind,
                                               ts_ca_row *out);
TS_API TS_MUST_CHECK ts_err ts_store_ca_get(ts_store *store, int64_t id, ts_ca_row *out);
/* Marks a CA active (1) or not (0), for rotation: deactivate the old one, then activate the new.
 * TS_ERR_EXISTS when another CA of the tenant and kind is active; TS_ERR_NOT_FOUND. */
TS_API TS_MUST_CHECK ts_err ts_store_ca_set_active(ts_store *store, int64_t id, int active);

/* The next CRL number of a CA: atomically incremented, starting at 1. */
TS_API TS_MUST_CHECK ts_err ts_store_crl_number_next(ts_store *store, int64_t ca_id,
                                                     uint64_t *number);

/* --- Profiles --------------------------------------------------------------------------------- */

/* Creates or (replace != 0) updates a tenant's profile; TS_ERR_EXISTS / TS_ERR_NOT_FOUND. */
TS_API TS_MUST_CHECK ts_err ts_store_profile_put(ts_store *store, int64_t tenant_id,
                                                 const char *name, const char *json, int replace);
/* *json is freed with OPENSSL_free(). */
TS_API TS_MUST_CHECK ts_err ts_store_profile_get(ts_store *store, int64_t tenant_id,
                                                 const char *name, char **json);
/* Names, sorted; free each with OPENSSL_free() and then the array. */
TS_API TS_MUST_CHECK ts_err ts_store_profile_list(ts_store *store, int64_t tenant_id, char ***names,
                                                  size_t *count);

/* --- Certificates ----------------------------------------------------------------------------- */

typedef enum ts_cert_state {
    TS_CERT_VALID = 1,
    TS_CERT_REVOKED_STATE = 2,
} ts_cert_state;

typedef struct ts_cert_row {
    int64_t id;
    int64_t tenant_id;
    int64_t issuer_ca_id;
    char serial[TS_SERIAL_HEX]; /* upper-case hex, as openssl x509 -serial prints it */
    char subject[TS_TEXT_MAX];
    char device_uid[TS_NAME_MAX + 1]; /* empty when none */
    char profile[TS_NAME_MAX + 1];
    char fingerprint[65];
    time_t not_before;
    time_t not_after;
    ts_cert_state state;
    time_t revoked_at;     /* when revoked */
    int revocation_reason; /* CRL_REASON_*, when revoked */
    uint8_t *der;          /* owned; free with ts_cert_row_clear() */
    size_t der_len;
    time_t created;
} ts_cert_row;

TS_API void ts_cert_row_clear(ts_cert_row *row);

/* Inserts a certificate (id set); TS_ERR_CONFLICT when the serial is taken for that issuer. */
TS_API TS_MUST_CHECK ts_err ts_store_cert_insert(ts_store *store, ts_cert_row *row);
/* By serial (hex, any case) within a tenant; TS_ERR_NOT_FOUND. */
TS_API TS_MUST_CHECK ts_err ts_store_cert_get(ts_store *store, int64_t tenant_id,
                                              const char *serial, ts_cert_row *out);
/* By serial under an issuer (OCSP); TS_ERR_NOT_FOUND. */
TS_API TS_MUST_CHECK ts_err ts_store_cert_get_by_issuer(ts_store *store, int64_t issuer_ca_id,
                                                        const char *serial, ts_cert_row *out);
/* The same without the DER (der NULL): what an OCSP answer needs, read for every request. */
TS_API TS_MUST_CHECK ts_err ts_store_cert_state_by_issuer(ts_store *store, int64_t issuer_ca_id,
                                                          const char *serial, ts_cert_row *out);

typedef struct ts_cert_filter {
    int64_t tenant_id;
    ts_cert_state state;    /* 0: any */
    const char *device_uid; /* NULL: any */
    time_t expiring_before; /* 0: any; else not_after < this */
    size_t limit;           /* 0: no limit */
    int64_t after_id;       /* cursor: only rows with id > after_id (0: from the first) */
} ts_cert_filter;

/* Rows without DER (der NULL), by id; free with ts_cert_rows_free(). */
TS_API TS_MUST_CHECK ts_err ts_store_cert_list(ts_store *store, const ts_cert_filter *filter,
                                               ts_cert_row **rows, size_t *count);
TS_API void ts_cert_rows_free(ts_cert_row *rows, size_t count);

/* Marks a valid certificate revoked (TS_ERR_STATE when already revoked) and records the
 * revocation (serial, time, reason). */
TS_API TS_MUST_CHECK ts_err ts_store_cert_revoke(ts_store *store, int64_t tenant_id,
                                                 const char *serial, time_t when, int reason);

/* Revoked certificates of an issuer that have not expired before `now`, for a CRL. */
TS_API TS_MUST_CHECK ts_err ts_store_revoked_list(ts_store *store, int64_t issuer_ca_id, time_t now,
                                                  ts_cert_row **rows, size_t *count);

/* --- Audit log -------------------------------------------------------------------------------- */
/*
 * Each entry: id, time, actor, action, object, details (JSON text), and a SHA-256 hash over the
 * previous entry's hash and this entry's fields (docs/audit.md gives the exact encoding). Append
 * inside the transaction of the change it records.
 */
typedef struct ts_audit_row {
    int64_t id;
    time_t time;
    char actor[TS_TEXT_MAX];
    char action[TS_NAME_MAX + 1];
    char object[TS_TEXT_MAX];
    char *details; /* owned; JSON text */
    char hash[65];
} ts_audit_row;

TS_API TS_MUST_CHECK ts_err ts_store_audit_append(ts_store *store, const char *actor,
                                                  const char *action, const char *object,
                                                  const char *details_json);
/* Entries with id > after_id, oldest first, at most limit (0: all); free with
 * ts_audit_rows_free(). */
TS_API TS_MUST_CHECK ts_err ts_store_audit_list(ts_store *store, int64_t after_id, size_t limit,
                                                ts_audit_row **rows, size_t *count);
TS_API void ts_audit_rows_free(ts_audit_row *rows, size_t count);

/*
 * Walks the whole chain. TS_OK when intact (*entries set); TS_ERR_CORRUPT when an entry was
 * edited, deleted or reordered, with *first_bad the id of the first entry that does not verify
 * and the message saying how (hash mismatch, gap in ids, ...).
 */
TS_API TS_MUST_CHECK ts_err ts_store_audit_verify(ts_store *store, int64_t *entries,
                                                  int64_t *first_bad);

#endif
