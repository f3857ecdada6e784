/*
 * Inside the Tessera OpenSSL 3 provider (provider*.c).
 *
 * The provider makes a key-store key an ordinary EVP_PKEY. Its key object (ts_prov_key) holds a
 * reference to the ts_keystore and the key's label, plus a cached public key; private operations
 * go through the public key-store API (ts_keystore_sign_digest, ts_keystore_derive), which locks
 * the store per call. A key object without a store is a plain public key (an ECDH peer, a
 * certificate's key imported for a comparison).
 *
 * Hashing and public-key maths (verification, point checks) run in the provider's own library
 * context, which holds only OpenSSL's "default" provider, so they can never come back into this
 * provider and never depend on what the calling application loaded.
 *
 * Thread safety: key objects are immutable once made and reference counted; operation contexts
 * belong to one thread at a time, as OpenSSL requires.
 */
#ifndef TS_KEYSTORE_PROVIDER_INTERNAL_H
#define TS_KEYSTORE_PROVIDER_INTERNAL_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/core.h>
#include <openssl/core_dispatch.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "keystore/keystore_internal.h"
#include "tessera/provider.h"

/* The provider's properties; every algorithm it offers carries them. */
#define TS_PROV_PROPERTIES "provider=" TS_PROVIDER_NAME

/*
 * Internal key-import parameter: an octet string holding a ts_prov_keyref. It lets
 * ts_keystore_evp_pkey() hand an open store and a label to the key manager through
 * EVP_PKEY_fromdata() within this library. It is not a public interface: the pointer inside is
 * trusted, so only code of this library may build it.
 */
#define TS_PROV_PARAM_KEYREF "tessera-keystore-keyref"

enum { TS_PROV_KEYREF_MAGIC = 0x54534b52 }; /* "TSKR" */

typedef struct ts_prov_keyref {
    uint32_t magic;    /* TS_PROV_KEYREF_MAGIC */
    ts_keystore *ks;   /* the store; the key takes its own reference */
    const char *label; /* the key's label */
    ts_err result;     /* written by the key manager: why the import failed */
} ts_prov_keyref;

/* The digests the provider signs with, in the provider's own library context. */
enum { TS_PROV_DIGESTS = 4 };

typedef struct ts_prov_ctx {
    const OSSL_CORE_HANDLE *handle;
    OSSL_LIB_CTX *libctx;             /* private: only the default provider */
    OSSL_PROVIDER *deflt;             /* the default provider loaded in libctx */
    EVP_MD *digests[TS_PROV_DIGESTS]; /* SHA-224, SHA-256, SHA-384, SHA-512 */
    OSSL_FUNC_core_new_error_fn *core_new_error;
    OSSL_FUNC_core_set_error_debug_fn *core_set_error_debug;
    OSSL_FUNC_core_vset_error_fn *core_vset_error;
} ts_prov_ctx;

enum { TS_PROV_KEY_MAGIC = 0x54534b59 }; /* "TSKY" */

typedef struct ts_prov_key {
    uint32_t magic; /* TS_PROV_KEY_MAGIC: checked on load() references */
    atomic_int refs;
    ts_prov_ctx *prov;
    ts_keystore *ks; /* NULL for a public key only */
    char label[TS_LABEL_MAX + 1];
    ts_curve curve;              /* 0 until the key is imported or loaded */
    EVP_PKEY *pub;               /* the public key, in prov->libctx */
    uint8_t point[TS_POINT_MAX]; /* the public key, uncompressed X9.62 point */
    size_t point_len;
    size_t sig_max;    /* bytes of the largest DER signature on this curve */
    size_t secret_len; /* bytes of an ECDH shared secret on this curve */
} ts_prov_key;

/* --- provider.c ----------------------------------------------------------------------------- */

/* The provider's entry point, for OSSL_PROVIDER_add_builtin() and the loadable module. */
int ts_provider_init(const OSSL_CORE_HANDLE *handle, const OSSL_DISPATCH *in,
                     const OSSL_DISPATCH **out, void **provctx);

/*
 * Raises an OpenSSL error through the core, with code as the reason and the current
 * ts_error_message() as the text, so that OpenSSL callers (and stock tools) see why a key-store
 * call failed. The macros record where.
 */
void ts_prov_report_at(const ts_prov_ctx *pc, ts_err code, const char *file, int line,
                       const char *func);
#define ts_prov_report(pc, code)                                                                   \
    ts_prov_report_at(pc, code, OPENSSL_FILE, OPENSSL_LINE, OPENSSL_FUNC)

/* Sets the message (and drains OpenSSL's queue into it, for the _openssl form) and reports it. */
void ts_prov_fail_at(const ts_prov_ctx *pc, int with_openssl, const char *file, int line,
                     const char *func, ts_err code, const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));
#define ts_prov_fail(pc, ...)                                                                      \
    ts_prov_fail_at(pc, 0, OPENSSL_FILE, OPENSSL_LINE, OPENSSL_FUNC, __VA_ARGS__)
#define ts_prov_fail_openssl(pc, ...)                                                              \
    ts_prov_fail_at(pc, 1, OPENSSL_FILE, OPENSSL_LINE, OPENSSL_FUNC, __VA_ARGS__)

/* The provider's digest called name (any OpenSSL alias), or NULL if it does not sign with it. */
const EVP_MD *ts_prov_digest(const ts_prov_ctx *pc, const char *name);

/* --- provider_keymgmt.c --------------------------------------------------------------------- */

extern const OSSL_DISPATCH ts_prov_keymgmt_functions[];

/* A key object for the key labelled label in ks, holding a reference to ks. Reports failures. */
ts_err ts_prov_key_from_store(ts_prov_ctx *pc, ts_keystore *ks, const char *label,
                              ts_prov_key **out);
ts_prov_key *ts_prov_key_up_ref(ts_prov_key *key);
void ts_prov_key_free(ts_prov_key *key);

/* --- provider_signature.c, provider_keyexch.c, provider_store.c ----------------------------- */

extern const OSSL_DISPATCH ts_prov_signature_functions[];
extern const OSSL_DISPATCH ts_prov_keyexch_functions[];
extern const OSSL_DISPATCH ts_prov_store_functions[];

#endif
