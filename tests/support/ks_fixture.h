/*
 * Key-store fixtures for the conformance suite: a fresh store of either backend in a directory
 * of its own, snapshots of its listing, OpenSSL checks of its outputs, file scans and child
 * processes.
 *
 * Each fixture owns a temporary directory. A soft: store lives in DIR/store; a pkcs11: store is
 * the token "ts-test" of a SoftHSM2 whose configuration, token directory and lock file
 * (TESSERA_LOCK_DIR) are under DIR, so no two tests share a token.
 */
#ifndef TS_KS_FIXTURE_H
#define TS_KS_FIXTURE_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "tessera/keystore.h"

typedef enum ks_backend_id {
    KS_SOFT = 1U << 0,
    KS_PKCS11 = 1U << 1,
} ks_backend_id;

#define KS_BOTH (KS_SOFT | KS_PKCS11)

#define KS_PIN     "1234"
#define KS_SO_PIN  "so-pin-5678"
#define KS_TOKEN   "ts-test"
#define KS_URI_MAX 8192

typedef struct ks_fixture {
    ks_backend_id backend;
    char tmp[1024];        /* the test's own directory, removed by ks_fixture_cleanup() */
    char files[1024 + 32]; /* where the store's files are: the soft: DIR or the token dir */
    char uri[KS_URI_MAX];  /* the store's URI with the right PIN */
    ts_keystore *ks;       /* open, or NULL after ks_fixture_close() */
} ks_fixture;

/* "soft" or "pkcs11". */
const char *ks_backend_name(ks_backend_id backend);

/* Makes the directory and creates an empty store in it, open in fx->ks. 0 on success. */
int ks_fixture_init(ks_fixture *fx, ks_backend_id backend);

/* Closes the store and removes the directory. */
void ks_fixture_cleanup(ks_fixture *fx);

/* Drops fx->ks, so that child processes open the store themselves. */
void ks_fixture_close(ks_fixture *fx);

/* Closes fx->ks if open and opens the store again with its URI. */
ts_err ks_fixture_reopen(ks_fixture *fx);

/*
 * The URI of store name (a directory under fx->tmp for soft:, a token label for pkcs11:) with
 * the given PIN, or with no PIN when pin is NULL. 0 on success.
 */
int ks_fixture_uri(const ks_fixture *fx, const char *name, const char *pin, char *buf, size_t size);

/* Creates a second, independent store of the same backend, called name. */
ts_err ks_fixture_create_other(const ks_fixture *fx, const char *name, ts_keystore **out);

/* --- listings --------------------------------------------------------------------------------- */

typedef struct ks_snapshot {
    ts_keystore_entry *entries;
    size_t count;
} ks_snapshot;

ts_err ks_snapshot_take(ts_keystore *ks, ks_snapshot *snap);
void ks_snapshot_free(ks_snapshot *snap);

/*
 * 1 when both listings hold the same objects with the same kind, curve (keys), flags and size
 * (data objects) and value (counters); else 0, with the first difference written to why.
 */
int ks_snapshot_equal(const ks_snapshot *a, const ks_snapshot *b, char *why, size_t why_size);

/* The entry of label in a listing, or NULL. */
const ts_keystore_entry *ks_snapshot_find(const ks_snapshot *snap, const char *label);

/* --- OpenSSL checks --------------------------------------------------------------------------- */

/* A fresh EC key pair in memory on curve ("P-256" or "P-384"), or NULL. */
EVP_PKEY *ks_ec_key(const char *curve);

/* The OpenSSL group name of an EC key into buf ("prime256v1"); 0 on success. */
int ks_group_name(const EVP_PKEY *pkey, char *buf, size_t size);

/* 1 when sig is a valid ECDSA signature by pub over digest, 0 when not, -1 on error. */
int ks_verify(EVP_PKEY *pub, const uint8_t *digest, size_t digest_len, const uint8_t *sig,
              size_t sig_len);

/* ECDH by an in-memory key: priv's shared secret with pub, into secret. 0 on success. */
int ks_derive(EVP_PKEY *priv, EVP_PKEY *pub, uint8_t *secret, size_t *secret_len);

/* The private scalar of an EC key, big-endian and padded to len bytes. 0 on success. */
int ks_private_scalar(const EVP_PKEY *pkey, uint8_t *out, size_t len);

/* --- files ------------------------------------------------------------------------------------ */

/* How many regular files under dir contain needle; -1 on error. */
int ks_files_containing(const char *dir, const uint8_t *needle, size_t len);

/* How many regular files under dir have a mode other than mode; -1 on error. */
int ks_files_not_mode(const char *dir, unsigned mode);

/* The size of the largest regular file under dir, or -1 on error. */
long long ks_largest_file(const char *dir);

/* --- child processes -------------------------------------------------------------------------- */

/*
 * Runs fn(arg, index, result) in n child processes (index 0 to n-1) at the same time and copies
 * each one's result (result_size bytes, at results + index * result_size) back. Children end
 * with _exit(), so they never return into the test runner. 0 when every child ran to the end
 * and delivered its result; -1 otherwise (crash, signal, short result).
 */
int ks_in_children(int n, void (*fn)(void *arg, int index, void *result), void *arg, void *results,
                   size_t result_size);

#endif
