/*
 * The files of a soft: store (docs/soft-store.md): one DER structure per file, encoded with
 * OpenSSL ASN.1 templates, sealed with AES-256-GCM.
 *
 *   SoftFile ::= SEQUENCE {
 *       header  SoftHeader,        -- in clear, authenticated (the GCM additional data)
 *       nonce   OCTET STRING,      -- 12 random bytes, fresh for every write
 *       sealed  OCTET STRING,      -- the ciphertext; empty when nothing is secret
 *       tag     OCTET STRING }     -- 16 bytes of GCM tag
 *
 *   SoftHeader ::= SEQUENCE {
 *       version INTEGER (1), kind INTEGER, label UTF8String, uid OCTET STRING (16),
 *       curve [0] IMPLICIT INTEGER OPTIONAL,       -- keys
 *       point [1] IMPLICIT OCTET STRING OPTIONAL,  -- keys: the uncompressed public point
 *       flags [2] IMPLICIT INTEGER OPTIONAL,       -- data objects: TS_DATA_*; keys: TS_KEY_*,
 *                                                  -- present only when not 0
 *       data  [3] IMPLICIT OCTET STRING OPTIONAL,  -- data objects that are not secret
 *       value [4] IMPLICIT INTEGER OPTIONAL,       -- counters
 *       kdf   [5] IMPLICIT SoftKdf OPTIONAL }      -- the store file
 *
 *   SoftKdf ::= SEQUENCE { salt OCTET STRING, n INTEGER, r INTEGER, p INTEGER }  -- scrypt
 *
 * The additional data of the GCM seal is the DER of the header, so version, kind, label, UID and
 * every clear field are bound to the file's content: an edited field, or a file copied under
 * another label or from another store, fails to open.
 *
 * The PIN-failure file is apart (it is written before the PIN is known to be right):
 *   SoftTries ::= SEQUENCE { version INTEGER (1), uid OCTET STRING (16), failures INTEGER }
 *
 * Thread safety: the functions share no state.
 */
#ifndef TS_KEYSTORE_SOFT_FILE_INTERNAL_H
#define TS_KEYSTORE_SOFT_FILE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

/* beside this file, so that targets without src/ on their include path (fuzz) find it too */
#include "keystore/keystore_internal.h"

enum {
    TS_SOFT_VERSION = 1,
    TS_SOFT_FILE_MAX = 128 * 1024, /* bytes of any file of the store: the parser's cap */
    TS_SOFT_KEY_LEN = 32,          /* AES-256 */
    TS_SOFT_NONCE_LEN = 12,        /* GCM's 96-bit nonce (NIST SP 800-38D section 8.2.2) */
    TS_SOFT_TAG_LEN = 16,
    TS_SOFT_SALT_MIN = 16,
    TS_SOFT_SALT_MAX = 64,
    TS_SOFT_SEALED_MAX = TS_OBJECT_MAX + 1024, /* a secret object or a PKCS#8 key */
};

/*
 * Bounds on the scrypt parameters a store file may carry, so that a forged file cannot make
 * opening take unbounded time or memory: scrypt needs 128 * N * r bytes (256 MiB at most here)
 * and time in proportion to N * r * p (16 times the default at most).
 */
#define TS_SOFT_KDF_N_MIN   (UINT64_C(1) << 10)
#define TS_SOFT_KDF_N_MAX   (UINT64_C(1) << 20)
#define TS_SOFT_KDF_R_MAX   UINT64_C(32)
#define TS_SOFT_KDF_P_MAX   UINT64_C(16)
#define TS_SOFT_KDF_NR_MAX  (UINT64_C(1) << 21)
#define TS_SOFT_KDF_NRP_MAX (UINT64_C(1) << 22)

typedef enum ts_soft_kind {
    TS_SOFT_STORE = 0,   /* DIR/store: UID, KDF parameters, the store key sealed under the PIN */
    TS_SOFT_KEY = 1,     /* DIR/key.LABEL: curve, point and flags in clear, PKCS#8 sealed */
    TS_SOFT_DATA = 2,    /* DIR/data.LABEL: flags; the data in clear or sealed if secret */
    TS_SOFT_COUNTER = 3, /* DIR/ctr.LABEL: the value in clear */
} ts_soft_kind;

/* scrypt's parameters (RFC 7914 section 2). */
typedef struct ts_soft_kdf {
    uint8_t salt[TS_SOFT_SALT_MAX];
    size_t salt_len;
    uint64_t n;
    uint64_t r;
    uint64_t p;
} ts_soft_kdf;

/*
 * One file, decoded. The encoder reads the fields that belong to kind and ignores the others;
 * the parser fills them, and checks that exactly those are present.
 */
typedef struct ts_soft_record {
    ts_soft_kind kind;
    char label[TS_LABEL_MAX + 1]; /* empty for TS_SOFT_STORE */
    uint8_t uid[TS_KEYSTORE_UID_LEN];
    ts_curve curve;              /* keys */
    uint8_t point[TS_POINT_MAX]; /* keys: uncompressed */
    size_t point_len;
    unsigned flags;      /* data objects: TS_DATA_*; keys: TS_KEY_* */
    const uint8_t *data; /* data objects that are not secret (NULL and 0 for secret ones) */
    size_t data_len;
    uint64_t value;  /* counters */
    ts_soft_kdf kdf; /* the store file */
    /* Filled by the parser only; pointers point into the parsed structure. */
    uint8_t nonce[TS_SOFT_NONCE_LEN];
    uint8_t tag[TS_SOFT_TAG_LEN];
    const uint8_t *sealed;
    size_t sealed_len;
    uint8_t *aad; /* the DER of the header, the GCM additional data */
    size_t aad_len;
    void *asn1; /* the decoded structure that data and sealed point into */
} ts_soft_record;

/*
 * Encodes a file: the header from rec's kind, label, uid and the clear fields of its kind, then
 * plain sealed under key with a fresh random nonce. plain may be NULL when plain_len is 0.
 * *der is freed with OPENSSL_free().
 */
ts_err ts_soft_file_encode(const ts_soft_record *rec, const uint8_t key[TS_SOFT_KEY_LEN],
                           const uint8_t *plain, size_t plain_len, uint8_t **der, size_t *der_len);

/*
 * Parses a file from untrusted bytes (at most TS_SOFT_FILE_MAX): strict DER, every field of the
 * kind present and in range, no other field, nothing after the end. TS_ERR_CORRUPT with what is
 * wrong. Does not authenticate: ts_soft_file_unseal() does. Free with ts_soft_record_free().
 */
ts_err ts_soft_file_parse(const uint8_t *der, size_t len, ts_soft_record **out);

/*
 * Checks the tag of a parsed file under key and decrypts its sealed part into a new buffer
 * (freed with OPENSSL_clear_free(*plain, *plain_len); never NULL on success, even when empty).
 * TS_ERR_CORRUPT when the tag does not verify: the file was edited, moved or sealed under
 * another key.
 */
ts_err ts_soft_file_unseal(const ts_soft_record *rec, const uint8_t key[TS_SOFT_KEY_LEN],
                           uint8_t **plain, size_t *plain_len);

void ts_soft_record_free(ts_soft_record *rec);

/* The PIN-failure file. The parser checks the UID and returns TS_ERR_CORRUPT on anything odd. */
ts_err ts_soft_tries_encode(const uint8_t uid[TS_KEYSTORE_UID_LEN], uint64_t failures,
                            uint8_t **der, size_t *der_len);
ts_err ts_soft_tries_parse(const uint8_t *der, size_t len, const uint8_t uid[TS_KEYSTORE_UID_LEN],
                           uint64_t *failures);

/* Whether label is a valid label (the front's rule, for labels read from files and names). */
int ts_soft_label_ok(const char *label, size_t len);

#endif
