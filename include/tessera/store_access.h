/*
 * The store's half of access control (include/tessera/access.h): users, API tokens, claim
 * codes, the device registry and the revocation feed, plus CA lookups the service needs for TLS
 * client authentication. The rows are access.h's; the CA instance (src/server) fills in what the
 * store cannot know.
 *
 * Secrets never reach the store: tokens and claim codes arrive as the lower-case hex SHA-256 of
 * the secret, and lookups hand the stored hash back so that the caller compares it in constant
 * time. tenant_id 0 names the instance-wide users (SQL NULL in the users table).
 *
 * Every change needs an open transaction (ts_store_begin()); reads run with or without one.
 * Thread safety: as store.h, one ts_store per thread.
 */
#ifndef TESSERA_STORE_ACCESS_H
#define TESSERA_STORE_ACCESS_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "tessera/access.h"
#include "tessera/error.h"
#include "tessera/export.h"
#include "tessera/store.h"

/* --- Users ----------------------------------------------------------------------------------- */

/*
 * Inserts a user: tenant_id (0: instance-wide, then role must be admin or auditor), name, role,
 * device_uid (exactly for TS_ROLE_DEVICE), disabled. Sets id and created (when 0).
 * TS_ERR_EXISTS when the name is taken in the tenant.
 */
TS_API TS_MUST_CHECK ts_err ts_store_user_insert(ts_store *store, ts_user_row *row);
/* By name within a tenant (0: instance-wide); the row's tenant name is filled in. */
TS_API TS_MUST_CHECK ts_err ts_store_user_get(ts_store *store, int64_t tenant_id, const char *name,
                                              ts_user_row *out);
TS_API TS_MUST_CHECK ts_err ts_store_user_get_id(ts_store *store, int64_t id, ts_user_row *out);
/* The users of a tenant (0: instance-wide), by name; OPENSSL_free(*rows). */
TS_API TS_MUST_CHECK ts_err ts_store_user_list(ts_store *store, int64_t tenant_id,
                                               ts_user_row **rows, size_t *count);
/* TS_ERR_NOT_FOUND; TS_ERR_STATE when it already is so. */
TS_API TS_MUST_CHECK ts_err ts_store_user_set_disabled(ts_store *store, int64_t tenant_id,
                                                       const char *name, int disabled);

/* --- API tokens ------------------------------------------------------------------------------ */

/* Inserts a token of row->user_id with the hex SHA-256 of its secret; sets id (and created
 * when 0). TS_ERR_EXISTS when the hash is already stored. */
TS_API TS_MUST_CHECK ts_err ts_store_token_insert(ts_store *store, ts_token_row *row,
                                                  const char *hash_hex);
/*
 * The token whose hash is hash_hex, with its user (tenant name filled in) and the hash as stored,
 * for the caller's constant-time comparison. TS_ERR_NOT_FOUND when none. Expiry, revocation and
 * the user's state are the caller's to judge.
 */
TS_API TS_MUST_CHECK ts_err ts_store_token_find(ts_store *store, const char *hash_hex,
                                                ts_token_row *token, ts_user_row *user,
                                                char stored_hash[65]);
/* Tokens of the users of a tenant (0: instance-wide), of one user when user_id is not 0, by id;
 * OPENSSL_free(*rows). */
TS_API TS_MUST_CHECK ts_err ts_store_token_list(ts_store *store, int64_t tenant_id, int64_t user_id,
                                                ts_token_row **rows, size_t *count);
/* Revokes a token of a tenant's user at `when`: TS_ERR_NOT_FOUND when it is not the tenant's,
 * TS_ERR_STATE when already revoked. */
TS_API TS_MUST_CHECK ts_err ts_store_token_revoke(ts_store *store, int64_t tenant_id, int64_t id,
                                                  time_t when);

/* --- Claim codes ----------------------------------------------------------------------------- */

/* Inserts a code (tenant_id, profile, prefix, uses_max; uses_left is set to uses_max, created
 * when 0, expires) with the hex SHA-256 of its secret; sets id. */
TS_API TS_MUST_CHECK ts_err ts_store_claim_insert(ts_store *store, ts_claim_row *row,
                                                  const char *hash_hex);
/* The code whose hash is hash_hex, as stored (any state), and the stored hash. NOT_FOUND. */
TS_API TS_MUST_CHECK ts_err ts_store_claim_find(ts_store *store, const char *hash_hex,
                                                ts_claim_row *out, char stored_hash[65]);
/*
 * Takes one use of the code whose hash is hash_hex, in one statement that only succeeds while
 * the code is unrevoked, unexpired at now and has uses left (PostgreSQL: the row stays locked
 * until commit, so two enrollments cannot take the last use both). *out is the row after the
 * use. TS_ERR_NOT_FOUND when no code qualifies.
 */
TS_API TS_MUST_CHECK ts_err ts_store_claim_use(ts_store *store, const char *hash_hex, time_t now,
                                               ts_claim_row *out, char stored_hash[65]);
/* The codes of a tenant, by id; OPENSSL_free(*rows). */
TS_API TS_MUST_CHECK ts_err ts_store_claim_list(ts_store *store, int64_t tenant_id,
                                                ts_claim_row **rows, size_t *count);
/* TS_ERR_NOT_FOUND when not the tenant's; TS_ERR_STATE when already revoked. */
TS_API TS_MUST_CHECK ts_err ts_store_claim_revoke(ts_store *store, int64_t tenant_id, int64_t id,
                                                  time_t when);

/* --- Devices --------------------------------------------------------------------------------- */

/* Inserts a device (tenant_id, uid, state 0 meaning enabled); sets id, created and updated.
 * TS_ERR_EXISTS when the tenant knows the UID (the transaction stays usable). */
TS_API TS_MUST_CHECK ts_err ts_store_device_insert(ts_store *store, ts_device_row *row);
TS_API TS_MUST_CHECK ts_err ts_store_device_get(ts_store *store, int64_t tenant_id, const char *uid,
                                                ts_device_row *out);
/*
 * The device of a certificate being issued, in one statement: registered (enabled) when new,
 * else left as it is. *out is the row as it stands, so the caller refuses a disabled device.
 */
TS_API TS_MUST_CHECK ts_err ts_store_device_ensure(ts_store *store, int64_t tenant_id,
                                                   const char *uid, time_t now, ts_device_row *out);
/* Devices of a tenant by id, filtered; OPENSSL_free(*rows). */
TS_API TS_MUST_CHECK ts_err ts_store_device_list(ts_store *store, int64_t tenant_id,
                                                 const ts_device_filter *filter,
                                                 ts_device_row **rows, size_t *count);
/* Sets the state at `when`: TS_ERR_NOT_FOUND, TS_ERR_STATE when it already is so. */
TS_API TS_MUST_CHECK ts_err ts_store_device_set_state(ts_store *store, int64_t tenant_id,
                                                      const char *uid, ts_device_state state,
                                                      time_t when);

/* --- The revocation feed --------------------------------------------------------------------- */

/*
 * Appends an event (tenant_id, event, serial, issuer_fingerprint, device_uid, reason, time:
 * 0 is now) and sets row->seq. It first takes the audit chain's lock (audit.c), then gives seq =
 * MAX(seq) + 1: with every appender serialised on that lock until commit, seq grows in commit
 * order across processes, so a reader that saw seq N never later finds a new event below N.
 */
TS_API TS_MUST_CHECK ts_err ts_store_feed_append(ts_store *store, ts_feed_row *row);
/* Events of a tenant with seq > since, oldest first, at most limit (0: all); OPENSSL_free. */
TS_API TS_MUST_CHECK ts_err ts_store_feed_list(ts_store *store, int64_t tenant_id, int64_t since,
                                               size_t limit, ts_feed_row **rows, size_t *count);
/* The newest seq of the whole instance; 0 when the feed is empty. */
TS_API TS_MUST_CHECK ts_err ts_store_feed_head(ts_store *store, int64_t *seq);

/* --- CAs and tenants, for TLS client authentication ------------------------------------------ */

/* A tenant by id; TS_ERR_NOT_FOUND. */
TS_API TS_MUST_CHECK ts_err ts_store_tenant_get_id(ts_store *store, int64_t id, ts_tenant_row *out);

/* The CA whose certificate has this SHA-256 fingerprint (any case); TS_ERR_NOT_FOUND. */
TS_API TS_MUST_CHECK ts_err ts_store_ca_by_fingerprint(ts_store *store, const char *fingerprint,
                                                       ts_ca_row *out);
/* Every CA (root and issuing, active or not), by id; free each with ts_ca_row_clear(), then
 * the array with OPENSSL_free(). */
TS_API TS_MUST_CHECK ts_err ts_store_ca_list(ts_store *store, ts_ca_row **rows, size_t *count);

#endif
