/*
 * Inside the PKCS#11 backend (ks_pkcs11.c and p11_*.c).
 *
 * p11_module.c  loading a module once per process, refcounted, and the login shared by stores
 *               on one token.
 * p11_error.c   CKR names and the CKR -> ts_err mapping.
 * p11_token.c   finding a token from the URI, initialising one, opening the session, the lock.
 * p11_object.c  finding objects by label, creating them safely, the UID, data objects.
 * p11_counter.c monotonic counters under the token's lock file.
 * p11_list.c    listing a token.
 * p11_key.c     EC key pairs: generate, public key, sign, derive, and the handle cache.
 * p11_import.c  encrypted key import with every secret kept inside the token.
 * p11_backup.c  key backup for the key ceremony: C_WrapKey / C_UnwrapKey under an AES KEK.
 *
 * Thread safety: the module table is guarded by its own mutex; a p11_store is used by one thread
 * at a time (the key-store front serialises calls on one store).
 */
#ifndef TS_KEYSTORE_P11_INTERNAL_H
#define TS_KEYSTORE_P11_INTERNAL_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <p11-kit/pkcs11.h>
/*
 * p11-kit's pkcs11.h spells its compatibility field names as macros (value, count, slot_id...).
 * Once its structures are declared they are not needed, and they would rename our own fields
 * (ts_keystore_entry.value, ts_ks_uri.slot_id), so the ones that clash are dropped here.
 */
#undef value
#undef value_len
#undef count
#undef slot_id
#undef params
#undef parameter
#undef reserved

#include "common/error_internal.h"
#include "keystore/keystore_internal.h"

/* CKA_APPLICATION values that mark Tessera's data objects (docs/pkcs11.md). */
#define P11_APP_UID     "tessera.uid"
#define P11_APP_COUNTER "tessera.counter"
#define P11_APP_DATA    "tessera" /* generation 0; then "tessera.1", "tessera.2" (p11_object.c) */

enum {
    P11_ID_LEN = 16,         /* bytes of the random CKA_ID shared by the halves of a key pair */
    P11_LABEL_FIELD = 32,    /* bytes of CK_TOKEN_INFO.label */
    P11_KEY_CACHE_MAX = 128, /* labels whose key handles are remembered */
    P11_LABEL_OBJECTS = 16,  /* objects looked at for one label */
};

typedef struct p11_module p11_module;

/* A key pair's handles, remembered per label so signing needs no C_FindObjects. */
typedef struct p11_key_entry {
    char label[TS_LABEL_MAX + 1];
    CK_OBJECT_HANDLE priv;
    CK_OBJECT_HANDLE pub; /* CK_INVALID_HANDLE when the token has no public half */
    ts_curve curve;
} p11_key_entry;

typedef struct p11_store {
    p11_module *module;
    pid_t pid; /* the process that opened the store: a forked child must not use it */
    CK_FUNCTION_LIST_PTR f;
    CK_SLOT_ID slot;
    CK_SESSION_HANDLE session;
    int logged_in; /* counted in the module's login table */
    char token_label[P11_LABEL_FIELD + 1];
    char serial[17];
    char lock_path[PATH_MAX];
    uint8_t uid[TS_KEYSTORE_UID_LEN];
    p11_key_entry keys[P11_KEY_CACHE_MAX];
    size_t nkeys;
} p11_store;

/* --- p11_module.c, p11_error.c -----------------------------------------------------------------
 */

/* Loads (or takes another reference on) the module at path and initialises it. TS_ERR_MODULE. */
ts_err p11_module_get(const char *path, p11_module **out, CK_FUNCTION_LIST_PTR *f);
/*
 * Drops a reference; the last one finalises the module if this process initialised it.
 * inherited: the reference was taken by the parent of this forked process.
 */
void p11_module_put(p11_module *m, int inherited);
/*
 * Finalises and initialises the module again so that it reads its tokens anew, when this store
 * is its only user in the process; 1 when it did. SoftHSM2 reads its token directory in
 * C_Initialize and leaves out a token another process is writing to at that moment.
 */
int p11_module_rescan(p11_module *m);
/* The resolved path of the module, for messages and the lock name. */
const char *p11_module_path(const p11_module *m);

/*
 * C_Login(CKU_USER) on session, shared with the other stores of this process on the same slot:
 * PKCS#11 keeps one login state per application and token, so the first store logs in and the
 * last one out. A store arriving while the token is logged in must still know the PIN.
 */
ts_err p11_module_login(p11_module *m, CK_SLOT_ID slot, CK_SESSION_HANDLE session, const char *pin,
                        int protected_path);
void p11_module_logout(p11_module *m, CK_SLOT_ID slot, CK_SESSION_HANDLE session);

/* "CKR_PIN_INCORRECT" and so on; "CKR_0x..." for codes without a name. */
const char *p11_ckr_name(CK_RV rv);

/* The ts_err a CKR means. For calls that create objects, use p11_create_error(). */
ts_err p11_ckr_code(CK_RV rv);

/* Sets "<what>: <CKR name>" with the mapped code and returns it. */
ts_err p11_error(CK_RV rv, const char *fmt, ...) TS_PRINTF(2, 3);

/*
 * As p11_error() for calls that write objects to the token: CKR_DEVICE_MEMORY and
 * CKR_DEVICE_ERROR mean the token is full, and so does a write the module reported as done while
 * the file system refused it (err is errno after the call: EFBIG, ENOSPC or EDQUOT).
 */
ts_err p11_create_error(CK_RV rv, int err, const char *fmt, ...) TS_PRINTF(3, 4);

/* --- p11_token.c --------------------------------------------------------------------------- */

/* Finds the token, opens a R/W session and logs in. ignore_slot: match by the token fields only. */
ts_err p11_store_open(p11_store *st, const ts_ks_uri *uri, int ignore_slot);
/* Initialises a fresh token as ts_keystore_create() describes; the store is not opened. */
ts_err p11_token_init(CK_FUNCTION_LIST_PTR f, const ts_ks_uri *uri, const char *so_pin);
/* Logs out (when last), closes the session, drops the module. NULL-safe. */
void p11_store_close(p11_store *st);

/* TS_ERR_STATE in a forked child for a store its parent opened. */
ts_err p11_usable(const p11_store *st);

/* The cross-process lock of this token (docs/pkcs11.md "Counters"). */
ts_err p11_lock(p11_store *st, int *fd);
void p11_unlock(int fd);

/* --- p11_object.c -------------------------------------------------------------------------- */

typedef enum p11_kind {
    P11_NONE = 0,
    P11_PRIV,    /* CKO_PRIVATE_KEY */
    P11_PUB,     /* CKO_PUBLIC_KEY */
    P11_DATA,    /* CKO_DATA, CKA_APPLICATION tessera[.1|.2] */
    P11_COUNTER, /* CKO_DATA, CKA_APPLICATION tessera.counter */
    P11_UID,     /* CKO_DATA, CKA_APPLICATION tessera.uid */
    P11_OTHER,   /* anything else: certificates, secret keys, other applications' data */
} p11_kind;

typedef struct p11_found {
    CK_OBJECT_HANDLE handle;
    p11_kind kind;
    int generation; /* P11_DATA: 0, 1 or 2 */
} p11_found;

/* What one object is to Tessera; generation for P11_DATA. */
p11_kind p11_classify(p11_store *st, CK_OBJECT_HANDLE h, int *generation);

/* Every object labelled label (at most P11_LABEL_OBJECTS), classified. */
ts_err p11_find_label(p11_store *st, const char *label, p11_found *found, size_t *count);

/* The kind a label names for the caller: key, data, counter, or P11_NONE / P11_OTHER. */
p11_kind p11_label_kind(const p11_found *found, size_t count);

/* "a key", "a data object", "a counter", ... for messages. */
const char *p11_kind_name(p11_kind kind);

/* C_CreateObject, with the "token full" check, destroying what a failed write left behind. */
ts_err p11_create(p11_store *st, CK_ATTRIBUTE *tmpl, CK_ULONG n, CK_OBJECT_HANDLE *out,
                  const char *what);

/* Reads one attribute of variable length into a new buffer (freed with OPENSSL_clear_free). */
ts_err p11_get_attr(p11_store *st, CK_OBJECT_HANDLE h, CK_ATTRIBUTE_TYPE type, uint8_t **out,
                    size_t *len, size_t max);

/* The UID object: read it, or make it when the token has none. */
ts_err p11_uid_load(p11_store *st, int create);

ts_err p11_object_put(void *state, const char *label, const uint8_t *data, size_t len,
                      unsigned flags, int replace);
ts_err p11_object_get(void *state, const char *label, uint8_t **data, size_t *len);
ts_err p11_remove(void *state, const char *label);
/* --- p11_counter.c, p11_list.c -------------------------------------------------------------- */

/* The value of one counter object: 8 bytes, big-endian. */
ts_err p11_counter_value(p11_store *st, CK_OBJECT_HANDLE h, uint64_t *value);
ts_err p11_counter_get(void *state, const char *label, uint64_t *value);
ts_err p11_counter_update(void *state, const char *label, uint64_t *value, int increment);
ts_err p11_list(void *state, ts_keystore_entry **entries, size_t *count);

/* --- p11_key.c ----------------------------------------------------------------------------- */

/* DER of the curve's OBJECT IDENTIFIER, for CKA_EC_PARAMS; *der freed with OPENSSL_free. */
ts_err p11_ec_params(ts_curve curve, uint8_t **der, size_t *len);
/* The curve named by CKA_EC_PARAMS; TS_ERR_UNSUPPORTED for others. */
ts_err p11_curve_of_params(const uint8_t *der, size_t len, ts_curve *curve);
/* Random bytes from the token. */
ts_err p11_random(void *state, uint8_t *buf, size_t len);
/* The key pair of a label, from the cache or the token. */
ts_err p11_key_lookup(p11_store *st, const char *label, p11_key_entry **out);
void p11_key_forget(p11_store *st, const char *label);
/* ECDSA in the token, DER out. */
ts_err p11_sign_handle(p11_store *st, CK_OBJECT_HANDLE key, ts_curve curve, const uint8_t *digest,
                       size_t digest_len, uint8_t *sig, size_t *sig_len);

ts_err p11_generate(void *state, const char *label, ts_curve curve, unsigned flags);
ts_err p11_public_key(void *state, const char *label, EVP_PKEY **out);
ts_err p11_key_curve(void *state, const char *label, ts_curve *curve);
ts_err p11_sign_digest(void *state, const char *label, const uint8_t *digest, size_t digest_len,
                       uint8_t *sig, size_t *sig_len);
ts_err p11_derive(void *state, const char *label, const uint8_t *peer_point, size_t peer_point_len,
                  uint8_t *secret, size_t *secret_len);

/* --- p11_import.c -------------------------------------------------------------------------- */

ts_err p11_unwrap_import(void *state, const ts_ks_unwrap *req);

/* One CK_ATTRIBUTE of a template. */
#define ATTR(t, p, l)                                                                              \
    {                                                                                              \
        (t), (void *)(p), (CK_ULONG)(l)                                                            \
    }

/* p11_unwrap.c: a 32-byte key-encryption key as an unwrap-only session AES key. */
ts_err p11_kek_session(p11_store *st, const uint8_t kek[32], CK_OBJECT_HANDLE *out);

/*
 * C_UnwrapKey (CKM_AES_KEY_WRAP_PAD) of a PKCS#8 EC key into a token private key with the
 * attributes p11_generate() gives (extractable only with TS_KEY_BACKUP), checked to be on curve.
 * A failed integrity check, or a key that is not on curve, is TS_ERR_AUTH; a full token
 * TS_ERR_FULL. Nothing is left on failure.
 */
ts_err p11_unwrap_ec_key(p11_store *st, const char *label, CK_OBJECT_HANDLE kek,
                         const uint8_t *wrapped, size_t wrapped_len, ts_curve curve, unsigned flags,
                         const uint8_t id[P11_ID_LEN], CK_OBJECT_HANDLE *priv);

/* The public key object of a key pair whose private half was unwrapped: label and id as the
 * private key's, the point uncompressed. */
ts_err p11_make_public(p11_store *st, const char *label, ts_curve curve,
                       const uint8_t *public_point, size_t public_point_len,
                       const uint8_t id[P11_ID_LEN], CK_OBJECT_HANDLE *out);

/* Proves priv is the private half of public_point: a signature made in the token over a random
 * digest must verify under the point. TS_ERR_AUTH when it does not. */
ts_err p11_prove_pair(p11_store *st, CK_OBJECT_HANDLE priv, ts_curve curve,
                      const uint8_t *public_point, size_t public_point_len);

/* --- p11_backup.c -------------------------------------------------------------------------- */

ts_err p11_backup_key(void *state, const char *label, uint8_t kek[32], uint8_t **wrapped,
                      size_t *wrapped_len);
ts_err p11_restore_key(void *state, const char *label, const uint8_t kek[32],
                       const uint8_t *wrapped, size_t wrapped_len, ts_curve curve,
                       const uint8_t *public_point, size_t public_point_len, unsigned flags);

#endif
