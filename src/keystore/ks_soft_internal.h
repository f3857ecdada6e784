/*
 * Inside the soft: backend (ks_soft.c, ks_soft_dir.c, ks_soft_key.c, ks_soft_object.c): the
 * state of an open store and the file helpers its parts share. docs/soft-store.md describes the
 * directory.
 *
 * The front serialises calls on one state, so nothing here takes a thread lock. Changes that
 * must be atomic across processes (a new label, a counter, the PIN-failure count) are made under
 * flock() on DIR/.lock.
 */
#ifndef TS_KEYSTORE_KS_SOFT_INTERNAL_H
#define TS_KEYSTORE_KS_SOFT_INTERNAL_H

#include <limits.h>

#include <openssl/evp.h>

#include "keystore/keystore_internal.h"
#include "keystore/soft_file_internal.h"

/* A private key decrypted once and kept for the life of the state, so that signing reads no
 * file and runs no KDF. */
typedef struct ts_soft_key {
    struct ts_soft_key *next;
    char label[TS_LABEL_MAX + 1];
    ts_curve curve;
    uint8_t point[TS_POINT_MAX];
    size_t point_len;
    unsigned flags;         /* TS_KEY_* */
    EVP_PKEY *pkey;         /* the private key */
    EVP_PKEY_CTX *sign_ctx; /* initialised for ECDSA once, reused for every signature */
} ts_soft_key;

typedef struct ts_soft {
    char *dir;
    uint8_t uid[TS_KEYSTORE_UID_LEN];
    uint8_t *key;      /* the store key (TS_SOFT_KEY_LEN bytes), wiped on close */
    ts_soft_key *keys; /* the key cache, most recently used first */
} ts_soft;

/* The files of DIR besides the objects' (docs/soft-store.md). */
#define TS_SOFT_STORE_FILE "store"     /* UID, KDF parameters, the sealed store key */
#define TS_SOFT_TRIES_FILE "pin-tries" /* wrong PINs in a row */
#define TS_SOFT_LOCK_FILE  ".lock"     /* flock()ed for changes other processes must see whole */

/* DIR/NAME followed by label (may be empty); TS_ERR_INVALID when too long. */
ts_err ts_soft_dir_path(const char *dir, const char *name, const char *label, char path[PATH_MAX]);

/* DIR/key.LABEL, DIR/data.LABEL or DIR/ctr.LABEL. */
ts_err ts_soft_path(const ts_soft *st, ts_soft_kind kind, const char *label, char path[PATH_MAX]);

/* Which kind of object holds label: *found is 0 when none does. */
ts_err ts_soft_kind_of(const ts_soft *st, const char *label, ts_soft_kind *kind, int *found);

/*
 * Reads, parses and authenticates the object file of kind and label: TS_ERR_NOT_FOUND when it
 * does not exist, TS_ERR_CORRUPT when it is malformed, of another label, kind or store, or fails
 * its tag. plain (may be NULL) receives the decrypted part, freed with OPENSSL_clear_free().
 */
ts_err ts_soft_load(const ts_soft *st, ts_soft_kind kind, const char *label, ts_soft_record **rec,
                    uint8_t **plain, size_t *plain_len);

/* Seals rec (its kind, label and clear fields; the UID is the store's) with plain and writes it
 * atomically with mode 0600. TS_ERR_FULL leaves no new file. */
ts_err ts_soft_save(const ts_soft *st, ts_soft_record *rec, const uint8_t *plain, size_t plain_len);

/* flock() on DIR/.lock, for changes other processes must see whole. */
ts_err ts_soft_lock(const ts_soft *st, int *fd);

/* The errors every part words the same way. */
ts_err ts_soft_not_found(const ts_soft *st, const char *label);
ts_err ts_soft_wrong_type(const ts_soft *st, const char *label, ts_soft_kind is, const char *want);
ts_err ts_soft_label_taken(const ts_soft *st, const char *label, ts_soft_kind is);
const char *ts_soft_kind_name(ts_soft_kind kind);

/* The key cache (ks_soft_key.c). */
void ts_soft_key_forget(ts_soft *st, const char *label);
void ts_soft_keys_free(ts_soft *st);

/* The key labelled label, decrypted from its file on first use (ks_soft_key.c). */
ts_err ts_soft_key_get(ts_soft *st, const char *label, ts_soft_key **out);

/* Stores pkey as a new key under the free label with flags (TS_KEY_*), and caches it. */
ts_err ts_soft_key_store_new(ts_soft *st, const char *label, EVP_PKEY *pkey, unsigned flags);

/* PKCS#8 PrivateKeyInfo (RFC 5208 section 5) from and to an EVP_PKEY; the DER is freed with
 * OPENSSL_clear_free(). Decoding fails with TS_ERR_CORRUPT. */
ts_err ts_soft_pkcs8_decode(const uint8_t *der, size_t len, EVP_PKEY **out);
ts_err ts_soft_pkcs8_encode(const EVP_PKEY *pkey, uint8_t **der, size_t *len);

/* Backend functions defined in ks_soft_dir.c, ks_soft_key.c and ks_soft_object.c. */
ts_err ts_soft_remove(void *state, const char *label);
ts_err ts_soft_list(void *state, ts_keystore_entry **entries, size_t *count);
ts_err ts_soft_generate(void *state, const char *label, ts_curve curve, unsigned flags);
ts_err ts_soft_public_key(void *state, const char *label, EVP_PKEY **out);
ts_err ts_soft_key_curve(void *state, const char *label, ts_curve *curve);
ts_err ts_soft_sign_digest(void *state, const char *label, const uint8_t *digest, size_t digest_len,
                           uint8_t *sig, size_t *sig_len);
ts_err ts_soft_derive(void *state, const char *label, const uint8_t *peer_point,
                      size_t peer_point_len, uint8_t *secret, size_t *secret_len);
ts_err ts_soft_unwrap_import(void *state, const ts_ks_unwrap *req);
/* ks_soft_backup.c */
ts_err ts_soft_backup_key(void *state, const char *label, uint8_t kek[32], uint8_t **wrapped,
                          size_t *wrapped_len);
ts_err ts_soft_restore_key(void *state, const char *label, const uint8_t kek[32],
                           const uint8_t *wrapped, size_t wrapped_len, ts_curve curve,
                           const uint8_t *public_point, size_t public_point_len, unsigned flags);
ts_err ts_soft_object_put(void *state, const char *label, const uint8_t *data, size_t len,
                          unsigned flags, int replace);
ts_err ts_soft_object_get(void *state, const char *label, uint8_t **data, size_t *len);
ts_err ts_soft_counter_get(void *state, const char *label, uint64_t *value);
ts_err ts_soft_counter_update(void *state, const char *label, uint64_t *value, int increment);

#endif
