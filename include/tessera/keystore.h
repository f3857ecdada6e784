/*
 * The key store: Tessera's secure-element abstraction.
 *
 * Keys are generated and used inside the store and never leave it: there is no call that exports
 * a private key. A store is opened from a URI:
 *
 *   soft:DIR[;object=LABEL][?pin-value=PIN | ?pin-source=FILE]
 *       the software secure element: objects in DIR, private keys and secret objects encrypted
 *       at rest under a key derived from the PIN.
 *   pkcs11:token=NAME;...[?module-path=PATH&pin-value=PIN | &pin-source=FILE]
 *       an RFC 7512 PKCS#11 URI: any HSM or secure element with a PKCS#11 module.
 *
 * When the URI carries no PIN, TESSERA_PIN from the environment is used. The object attribute is
 * ignored by ts_keystore_open(); the provider's store loader uses it to pick a key.
 *
 * Labels are 1 to TS_LABEL_MAX characters of [A-Za-z0-9._-]. Keys, data objects and counters
 * share one label space per store.
 *
 * Thread safety: a ts_keystore may be used from several threads; calls on one store are
 * serialised. Every call returns TS_OK or an error whose words are in ts_error_message().
 */
#ifndef TESSERA_KEYSTORE_H
#define TESSERA_KEYSTORE_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "tessera/error.h"
#include "tessera/export.h"

typedef struct ts_keystore ts_keystore;

enum {
    TS_KEYSTORE_UID_LEN = 16,     /* bytes of a store's unique id */
    TS_LABEL_MAX = 64,            /* characters of a label */
    TS_OBJECT_MAX = 64 * 1024,    /* bytes of a data object */
    TS_SIGNATURE_MAX = 112,       /* bytes of a DER ECDSA signature (P-384 and below) */
    TS_SECRET_MAX = 48,           /* bytes of an ECDH shared secret (P-384 and below) */
    TS_IMPORT_BLOB_MAX = 8 * 1024 /* bytes of an import blob */
};

typedef enum ts_curve {
    TS_CURVE_P256 = 1,
    TS_CURVE_P384 = 2,
} ts_curve;

typedef enum ts_object_kind {
    TS_KIND_KEY = 1,     /* an EC key pair */
    TS_KIND_DATA = 2,    /* a data object: certificate, configuration, secret */
    TS_KIND_COUNTER = 3, /* a monotonic counter */
} ts_object_kind;

/* Data object flags. */
#define TS_DATA_SECRET (1U << 0) /* readable only after login; encrypted at rest in soft: */

typedef struct ts_keystore_entry {
    char label[TS_LABEL_MAX + 1];
    ts_object_kind kind;
    ts_curve curve; /* keys */
    unsigned flags; /* data objects: TS_DATA_*; keys: TS_KEY_* */
    size_t size;    /* data objects: bytes */
    uint64_t value; /* counters */
} ts_keystore_entry;

/* --- Opening ------------------------------------------------------------------------------- */

/*
 * Creates a new, empty store and opens it. soft: creates DIR (which must not exist or be empty)
 * with a fresh random UID, protected by the URI's PIN. pkcs11: initialises the token in the
 * URI's slot (slot-id) or the first slot with an uninitialised token, with the URI's token label,
 * so_pin as the security officer PIN and the URI's PIN as the user PIN; fails with TS_ERR_EXISTS
 * when a token with that label is already initialised. so_pin is ignored by soft:.
 */
TS_API TS_MUST_CHECK ts_err ts_keystore_create(const char *uri, const char *so_pin,
                                               ts_keystore **out);

/* Opens an existing store and logs in with the URI's PIN. */
TS_API TS_MUST_CHECK ts_err ts_keystore_open(const char *uri, ts_keystore **out);

/* Takes another reference; each reference is dropped with ts_keystore_free(). */
TS_API ts_keystore *ts_keystore_up_ref(ts_keystore *ks);

/* Drops a reference; the store is closed and its secrets wiped with the last one. NULL is fine. */
TS_API void ts_keystore_free(ts_keystore *ks);

/* "soft" or "pkcs11". */
TS_API const char *ts_keystore_backend(const ts_keystore *ks);

/* The URI the store was opened with, without any PIN: safe to print. */
TS_API const char *ts_keystore_uri(const ts_keystore *ks);

/* --- Identity and randomness --------------------------------------------------------------- */

/* The store's unique id, made at random when the store was created. */
TS_API TS_MUST_CHECK ts_err ts_keystore_uid(ts_keystore *ks, uint8_t uid[TS_KEYSTORE_UID_LEN]);

/* Random bytes from the store's generator (the token's, for PKCS#11). */
TS_API TS_MUST_CHECK ts_err ts_keystore_random(ts_keystore *ks, uint8_t *buf, size_t len);

/* --- Keys ---------------------------------------------------------------------------------- */

/* Generates an EC key pair inside the store. TS_ERR_EXISTS when the label is taken. */
TS_API TS_MUST_CHECK ts_err ts_keystore_generate(ts_keystore *ks, const char *label,
                                                 ts_curve curve);

/* Key flags for ts_keystore_generate_ex(). */
#define TS_KEY_BACKUP                                                                              \
    (1U << 0) /* may be wrapped for an M-of-N backup; never readable in clear                      \
               * (PKCS#11: CKA_SENSITIVE with CKA_EXTRACTABLE) */

/* As ts_keystore_generate(), with TS_KEY_* flags. */
TS_API TS_MUST_CHECK ts_err ts_keystore_generate_ex(ts_keystore *ks, const char *label,
                                                    ts_curve curve, unsigned flags);

/*
 * Backs up a TS_KEY_BACKUP key: a fresh AES-256 key-encryption key is made in the store, the key
 * is wrapped under it inside the store (AES key wrap with padding, RFC 5649, of its PKCS#8 form;
 * PKCS#11: C_WrapKey), and the KEK is written to kek for the caller to split into shares and
 * wipe. *wrapped is freed with OPENSSL_free(). TS_ERR_POLICY for a key made without
 * TS_KEY_BACKUP.
 */
TS_API TS_MUST_CHECK ts_err ts_keystore_backup_key(ts_keystore *ks, const char *label,
                                                   uint8_t kek[32], uint8_t **wrapped,
                                                   size_t *wrapped_len);

/*
 * Restores a backup into the store under label: unwraps inside the store with kek (PKCS#11:
 * C_UnwrapKey), checks the key matches public_key (TS_ERR_AUTH otherwise, and nothing is kept),
 * and stores it with flags. TS_ERR_AUTH when kek is wrong or the blob was altered.
 */
TS_API TS_MUST_CHECK ts_err ts_keystore_restore_key(ts_keystore *ks, const char *label,
                                                    const uint8_t kek[32], const uint8_t *wrapped,
                                                    size_t wrapped_len, const EVP_PKEY *public_key,
                                                    unsigned flags);

/* The public half of a key, as an ordinary EVP_PKEY the caller frees. */
TS_API TS_MUST_CHECK ts_err ts_keystore_public_key(ts_keystore *ks, const char *label,
                                                   EVP_PKEY **out);

/*
 * ECDSA over a message digest already computed by the caller. On entry *sig_len is the size of
 * sig (TS_SIGNATURE_MAX is enough); on return, the length of the DER Ecdsa-Sig-Value written.
 */
TS_API TS_MUST_CHECK ts_err ts_keystore_sign_digest(ts_keystore *ks, const char *label,
                                                    const uint8_t *digest, size_t digest_len,
                                                    uint8_t *sig, size_t *sig_len);

/*
 * ECDH with a peer public key on the same curve: writes the shared secret (the x-coordinate) to
 * secret. On entry *secret_len is the size of secret (TS_SECRET_MAX is enough). The caller wipes
 * it with OPENSSL_cleanse() after use.
 */
TS_API TS_MUST_CHECK ts_err ts_keystore_derive(ts_keystore *ks, const char *label,
                                               const EVP_PKEY *peer, uint8_t *secret,
                                               size_t *secret_len);

/* --- Data objects -------------------------------------------------------------------------- */

/* Stores data under a new label (TS_ERR_EXISTS when taken), atomically. flags: TS_DATA_*. */
TS_API TS_MUST_CHECK ts_err ts_keystore_object_put(ts_keystore *ks, const char *label,
                                                   const uint8_t *data, size_t len, unsigned flags);

/* Stores data under a label, replacing any data object of that label, atomically. */
TS_API TS_MUST_CHECK ts_err ts_keystore_object_replace(ts_keystore *ks, const char *label,
                                                       const uint8_t *data, size_t len,
                                                       unsigned flags);

/* Reads a data object into a new buffer the caller frees with OPENSSL_clear_free(*data, *len). */
TS_API TS_MUST_CHECK ts_err ts_keystore_object_get(ts_keystore *ks, const char *label,
                                                   uint8_t **data, size_t *len);

/* Deletes a key pair or a data object. Counters cannot be deleted (TS_ERR_WRONG_TYPE). */
TS_API TS_MUST_CHECK ts_err ts_keystore_delete(ts_keystore *ks, const char *label);

/* Lists every key, data object and counter, sorted by label. Free with OPENSSL_free(*entries). */
TS_API TS_MUST_CHECK ts_err ts_keystore_list(ts_keystore *ks, ts_keystore_entry **entries,
                                             size_t *count);

/* --- Monotonic counters -------------------------------------------------------------------- */
/*
 * A counter never decreases, also across processes and crashes: each change is read-modify-write
 * under a lock that other processes respect, and is durable before the call returns. A counter
 * that was never written reads as 0.
 */

TS_API TS_MUST_CHECK ts_err ts_keystore_counter_get(ts_keystore *ks, const char *label,
                                                    uint64_t *value);

/* Adds one and returns the new value. */
TS_API TS_MUST_CHECK ts_err ts_keystore_counter_increment(ts_keystore *ks, const char *label,
                                                          uint64_t *value);

/* Raises the counter to value; TS_ERR_ROLLBACK (and no change) when value is below it. */
TS_API TS_MUST_CHECK ts_err ts_keystore_counter_raise(ts_keystore *ks, const char *label,
                                                      uint64_t value);

/* --- Encrypted key import ------------------------------------------------------------------ */
/*
 * A sender (the trust service) sends a private key to one store, end to end: ECDH-ES from a fresh
 * ephemeral key to a key of the recipient store, HKDF-SHA256 bound to the store's UID, the
 * counter value and both labels, AES-256 key wrap with padding (RFC 5649), and an ECDSA signature
 * by the sender over all of it. docs/import.md gives the format.
 *
 * The counter TS_IMPORT_COUNTER of the recipient must be below the blob's counter value; a blob
 * for another store (TS_ERR_FOREIGN), already used or older (TS_ERR_REPLAY), tampered or signed
 * by anyone but trusted_sender (TS_ERR_AUTH) is refused and changes nothing. On success the key
 * is stored under the label the blob names (written to label_out) and the counter is raised to
 * the blob's value. On PKCS#11 the shared secret and the unwrapped key stay inside the token.
 */
#define TS_IMPORT_COUNTER "ts.import"

TS_API TS_MUST_CHECK ts_err ts_keystore_import(ts_keystore *ks, const uint8_t *blob,
                                               size_t blob_len, const EVP_PKEY *trusted_sender,
                                               char label_out[TS_LABEL_MAX + 1]);

/*
 * The sender's side. Seals key (an EC private key on the recipient key's curve, in memory at
 * the sender) for the store with the given UID, to its key recipient_pub stored there under
 * recipient_label, to be stored as label, with a counter value above the store's current one.
 * sender signs (it may be a key-store key through the provider). *blob is freed with
 * OPENSSL_free().
 */
TS_API TS_MUST_CHECK ts_err ts_keystore_import_seal(EVP_PKEY *sender, const EVP_PKEY *recipient_pub,
                                                    const uint8_t uid[TS_KEYSTORE_UID_LEN],
                                                    const char *recipient_label, uint64_t counter,
                                                    const char *label, const EVP_PKEY *key,
                                                    uint8_t **blob, size_t *blob_len);

/* --- OpenSSL --------------------------------------------------------------------------------- */

/*
 * An EVP_PKEY whose private operations (ECDSA signing, ECDH) run inside the store, through the
 * Tessera provider in ts_provider_libctx(). Use it with X509_REQ_sign_ctx, X509_sign_ctx,
 * CMS_sign, SSL_CTX_use_PrivateKey (on an SSL_CTX made with SSL_CTX_new_ex on that context) and
 * EVP_DigestSign. The key holds a reference to ks. The caller frees it with EVP_PKEY_free().
 */
TS_API TS_MUST_CHECK ts_err ts_keystore_evp_pkey(ts_keystore *ks, const char *label,
                                                 EVP_PKEY **out);

/* Validates a label; TS_ERR_INVALID with a message saying what is wrong. */
TS_API TS_MUST_CHECK ts_err ts_label_check(const char *label);

/* "P-256" or "P-384"; ts_curve_from_name() accepts those and the OpenSSL names. */
TS_API const char *ts_curve_name(ts_curve curve);
TS_API TS_MUST_CHECK ts_err ts_curve_from_name(const char *name, ts_curve *curve);

#endif
