/*
 * Inside the key store: the URI, the backend table, and what the front shares with backends.
 *
 * keystore.c is the front: it checks arguments and labels, serialises calls with a mutex and
 * dispatches to one backend (ks_soft.c, ks_pkcs11.c) through ts_ks_backend. Backends may assume
 * labels are valid, pointers are non-NULL and calls on one state never run concurrently.
 * Every backend function returns TS_OK or sets the error message and returns the code.
 */
#ifndef TS_KEYSTORE_INTERNAL_H
#define TS_KEYSTORE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "tessera/keystore.h"

/* --- URI (ks_uri.c) ------------------------------------------------------------------------- */

typedef enum ts_ks_scheme {
    TS_KS_SOFT = 1,
    TS_KS_PKCS11 = 2,
} ts_ks_scheme;

typedef struct ts_ks_uri {
    ts_ks_scheme scheme;
    char *object;   /* object=LABEL, or NULL */
    char *pin;      /* pin-value, else the content of pin-source, else $TESSERA_PIN, or NULL */
    char *redacted; /* the URI without pin-value, safe to print */
    /* soft: */
    char *path; /* the directory */
    /* pkcs11: (RFC 7512 path and query attributes) */
    char *module_path; /* module-path, else module-name resolved, else $TESSERA_PKCS11_MODULE */
    char *token;       /* token=, or NULL */
    char *manufacturer;
    char *serial;
    char *model;
    long slot_id; /* slot-id=, or -1 */
} ts_ks_uri;

/*
 * Parses a key-store URI (RFC 7512 for pkcs11:, with p11-kit's parser) and resolves its PIN.
 * TS_ERR_URI with a message naming the bad part. Pure: touches no store (pin-source files are
 * read). Free with ts_ks_uri_free(), which wipes the PIN.
 */
ts_err ts_ks_uri_parse(const char *text, ts_ks_uri **out);
void ts_ks_uri_free(ts_ks_uri *uri);

/* --- Backends ------------------------------------------------------------------------------- */

/* What a backend does for ts_keystore_import() once the front has checked the blob. */
typedef struct ts_ks_unwrap {
    const char *recipient_label; /* the store's key the sender agreed with */
    const uint8_t *peer_point;   /* the sender's ephemeral public key, uncompressed X9.62 point */
    size_t peer_point_len;
    const uint8_t *info; /* HKDF info: binds UID, counter, labels and the point */
    size_t info_len;
    const uint8_t *wrapped; /* AES-256 key wrap with padding (RFC 5649) of a PKCS#8 key */
    size_t wrapped_len;
    const char *label;           /* where to store the key */
    ts_curve curve;              /* the curve the key must be on */
    const uint8_t *public_point; /* its public key, uncompressed: the backend checks they match */
    size_t public_point_len;
} ts_ks_unwrap;

/*
 * The import KEK: HKDF-SHA256 Expand (RFC 5869 section 2.3) with PRK = the ECDH shared secret,
 * one block: KEK = HMAC-SHA256(Z, info || 0x01). The Extract step is skipped (section 3.3), as
 * TLS 1.2's PRF keys HMAC with the premaster secret, so that a PKCS#11 token without HKDF can
 * compute it inside with ECDH1_DERIVE and SHA256_HMAC. Backends with the secret in memory call
 * this; ks_pkcs11.c does the same steps in the token.
 */
ts_err ts_ks_import_kek(const uint8_t *shared, size_t shared_len, const uint8_t *info,
                        size_t info_len, uint8_t kek[32]);

typedef struct ts_ks_backend {
    const char *scheme; /* "soft" or "pkcs11" */
    ts_err (*create)(const ts_ks_uri *uri, const char *so_pin, void **state);
    ts_err (*open)(const ts_ks_uri *uri, void **state);
    void (*close)(void *state); /* wipes secrets; NULL is fine */
    ts_err (*uid)(void *state, uint8_t uid[TS_KEYSTORE_UID_LEN]);
    ts_err (*random)(void *state, uint8_t *buf, size_t len);
    /* flags: TS_KEY_*; TS_KEY_BACKUP makes a key that backup_key may wrap, and nothing else */
    ts_err (*generate)(void *state, const char *label, ts_curve curve, unsigned flags);
    ts_err (*public_key)(void *state, const char *label, EVP_PKEY **out);
    ts_err (*key_curve)(void *state, const char *label, ts_curve *curve);
    ts_err (*sign_digest)(void *state, const char *label, const uint8_t *digest, size_t digest_len,
                          uint8_t *sig, size_t *sig_len);
    /* peer_point: uncompressed X9.62 point on the key's curve */
    ts_err (*derive)(void *state, const char *label, const uint8_t *peer_point,
                     size_t peer_point_len, uint8_t *secret, size_t *secret_len);
    /* replace: 0 fails with TS_ERR_EXISTS if the label is taken, 1 replaces a data object */
    ts_err (*object_put)(void *state, const char *label, const uint8_t *data, size_t len,
                         unsigned flags, int replace);
    ts_err (*object_get)(void *state, const char *label, uint8_t **data, size_t *len);
    ts_err (*remove)(void *state, const char *label); /* keys and data objects, not counters */
    ts_err (*list)(void *state, ts_keystore_entry **entries, size_t *count); /* any order */
    ts_err (*counter_get)(void *state, const char *label, uint64_t *value);
    /*
     * Atomically, across processes: increment != 0 adds one; else raises to *value, failing with
     * TS_ERR_ROLLBACK if *value is below the current value. *value returns the new value.
     */
    ts_err (*counter_update)(void *state, const char *label, uint64_t *value, int increment);
    ts_err (*unwrap_import)(void *state, const ts_ks_unwrap *req);
    /*
     * Key backup (docs/ceremony.md). backup_key: TS_ERR_POLICY unless the key was made with
     * TS_KEY_BACKUP; else a fresh random 32-byte KEK into kek and, in *wrapped (OPENSSL_free),
     * the AES-256 key wrap with padding (RFC 5649) under it of the key's PKCS#8 PrivateKeyInfo.
     * The format is the same on every backend, so a backup restores into any of them.
     */
    ts_err (*backup_key)(void *state, const char *label, uint8_t kek[32], uint8_t **wrapped,
                         size_t *wrapped_len);
    /*
     * restore_key: unwraps wrapped under kek (TS_ERR_AUTH on a wrong KEK or altered blob), checks
     * the key is on curve and its public point is public_point (TS_ERR_AUTH otherwise), and stores
     * it under the free label with flags (TS_KEY_*). On failure nothing is left in the store.
     */
    ts_err (*restore_key)(void *state, const char *label, const uint8_t kek[32],
                          const uint8_t *wrapped, size_t wrapped_len, ts_curve curve,
                          const uint8_t *public_point, size_t public_point_len, unsigned flags);
} ts_ks_backend;

extern const ts_ks_backend ts_ks_soft_backend;
extern const ts_ks_backend ts_ks_pkcs11_backend;

/* --- Import blob (ks_import.c) -------------------------------------------------------------- */

/* A parsed import blob; every pointer points into the parsed structure. */
typedef struct ts_import_blob ts_import_blob;

/* Parses DER; checks sizes and forms but not the signature. TS_ERR_CORRUPT when malformed. */
ts_err ts_import_blob_parse(const uint8_t *der, size_t len, ts_import_blob **out);
void ts_import_blob_free(ts_import_blob *blob);

/*
 * The whole of ts_keystore_import() once the front holds the store's lock: parse, verify the
 * signature against sender, check UID and counter, have the backend unwrap, raise the counter;
 * on any failure nothing is left changed.
 */
ts_err ts_ks_import(const ts_ks_backend *backend, void *state, const uint8_t *blob, size_t len,
                    const EVP_PKEY *sender, char label_out[TS_LABEL_MAX + 1]);

/* ts_keystore_import_seal() is in ks_import.c too; ts_keystore_evp_pkey() and ts_provider_*()
 * are in the provider files (provider*.c). */

/* --- Helpers for backends (keystore.c) ------------------------------------------------------ */

/* The OpenSSL group name of a curve ("prime256v1", "secp384r1"). */
const char *ts_curve_group(ts_curve curve);

/* The curve of an EC EVP_PKEY; TS_ERR_UNSUPPORTED for other curves or key types. */
ts_err ts_curve_of_pkey(const EVP_PKEY *pkey, ts_curve *curve);

/* A public-only EVP_PKEY from an uncompressed point on curve. */
ts_err ts_pkey_from_point(ts_curve curve, const uint8_t *point, size_t len, EVP_PKEY **out);

/* The uncompressed point of an EC EVP_PKEY, into point (at most 97 bytes). */
ts_err ts_pkey_to_point(const EVP_PKEY *pkey, uint8_t *point, size_t size, size_t *len);

enum { TS_POINT_MAX = 97 };

#endif
