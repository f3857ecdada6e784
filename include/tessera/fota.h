/*
 * Firmware update files: a fixed header, a manifest signed as CMS SignedData, then the payload.
 *
 *   header   20 bytes, big-endian: "TSFW", format version (u16, 1), reserved (u16, 0),
 *            manifest length (u32), payload length (u64)
 *   manifest DER CMS SignedData, content attached (strict JSON, see docs/firmware.md), signer
 *            certificate and chain included
 *   payload  the image, checked chunk by chunk against the SHA-256 digests in the manifest
 *
 * The verifier runs in constant memory: the manifest is parsed and its signature, signer chain
 * and code-signing usage checked first; payload bytes are then fed in any pieces and each chunk is
 * released to the caller only after its digest matched.
 */
#ifndef TESSERA_FOTA_H
#define TESSERA_FOTA_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "tessera/error.h"
#include "tessera/export.h"
#include "tessera/keystore.h"

#define TS_FW_MAGIC         "TSFW"
#define TS_FW_FORMAT        1
#define TS_FW_HEADER_LEN    20
#define TS_FW_CHUNK_DEFAULT 65536u
#define TS_FW_CHUNK_MIN     1024u
#define TS_FW_CHUNK_MAX     (1024u * 1024u)
#define TS_FW_MANIFEST_MAX  (4u * 1024u * 1024u)
#define TS_FW_CHUNKS_MAX    32768u
#define TS_FW_HW_MAX        64
#define TS_FW_DEPENDS_MAX   16
#define TS_FW_TAG_LEN       16 /* AES-256-GCM tag after each encrypted chunk */
#define TS_FW_KEYID_MAX     64 /* a fleet key id: 1 to 64 of [A-Za-z0-9._-] */
/* Key-store label of fleet key KEYID on a device: TS_FW_GROUP_LABEL_PREFIX KEYID. */
#define TS_FW_GROUP_LABEL_PREFIX "fw.group."

typedef struct ts_fw_header {
    uint16_t format;
    uint32_t manifest_len;
    uint64_t payload_len;
} ts_fw_header;

typedef struct ts_fw_depend {
    char name[TS_FW_HW_MAX + 1];
    uint64_t min_version;
} ts_fw_depend;

/* What a verified manifest says (the chunk digests stay inside the verifier). */
typedef struct ts_fw_info {
    uint64_t version;
    uint64_t seq;
    uint64_t min_version; /* 0 when absent */
    int has_min_version;
    char hw[TS_FW_HW_MAX + 1];
    uint64_t size;
    uint32_t chunk_size;
    uint32_t chunks;
    size_t depends_count;
    ts_fw_depend depends[TS_FW_DEPENDS_MAX];
    /* Encrypted payloads: each chunk of chunk_size plaintext bytes (the last may be shorter) is
     * sent as its AES-256-GCM ciphertext followed by a TS_FW_TAG_LEN tag; size and the chunk
     * digests are those of the plaintext; wire_size is what follows the manifest in the file. */
    int encrypted;
    int enc_group;                            /* 1: to fleet key enc_key_id; 0: to one device key */
    char enc_key_id[2 * TS_FW_KEYID_MAX + 1]; /* the fleet key id, or hex SHA-256 of the SPKI */
    uint64_t wire_size;                       /* == size when not encrypted */
} ts_fw_info;

typedef struct ts_fw_sign_params {
    EVP_PKEY *key;          /* the signing key (may run in a key store) */
    X509 *cert;             /* its certificate, with EKU codeSigning */
    STACK_OF(X509) * chain; /* intermediates to include, or NULL */
    uint64_t version;
    uint64_t seq;
    uint64_t min_version;
    int has_min_version;
    const char *hw;
    uint32_t chunk_size; /* 0: TS_FW_CHUNK_DEFAULT */
    size_t depends_count;
    const ts_fw_depend *depends;
    /* Encryption (optional): the recipient's EC public key (P-256), and for a fleet key its id
     * (NULL: the recipient is one device, named by the SHA-256 of its SubjectPublicKeyInfo). */
    const EVP_PKEY *encrypt_to;
    const char *encrypt_group;
} ts_fw_sign_params;

/* Signs the image at in_path into an update file at out_path (written atomically). */
TS_API TS_MUST_CHECK ts_err ts_fw_sign_file(const ts_fw_sign_params *p, const char *in_path,
                                            const char *out_path);

/* Parses the fixed header (exactly TS_FW_HEADER_LEN bytes). */
TS_API TS_MUST_CHECK ts_err ts_fw_header_parse(const uint8_t *buf, size_t len, ts_fw_header *out);

typedef struct ts_fw_verifier ts_fw_verifier;

/* Called with each authenticated chunk, in order; a non-zero return stops verification. */
typedef int (*ts_fw_release_fn)(void *ctx, const uint8_t *data, size_t len);

/*
 * Verifies a manifest (its DER CMS) for a payload of payload_len bytes: one signature, the
 * signer's chain to roots at time now, EKU codeSigning, strict JSON whose size equals
 * payload_len. On success *out holds the chunk digests and a buffer of one chunk.
 */
TS_API TS_MUST_CHECK ts_err ts_fw_verifier_open(const uint8_t *cms_der, size_t cms_len,
                                                uint64_t payload_len, X509_STORE *roots, time_t now,
                                                ts_fw_verifier **out);

/* ts_fw_verifier_open() flags. */
#define TS_FW_VERIFY_PLAIN                                                                         \
    (1U << 0) /* the payload fed is the plaintext image even when the manifest says encrypted      \
               * (a slot written by an earlier apply): payload_len is then size, not wire_size */

TS_API TS_MUST_CHECK ts_err ts_fw_verifier_open_ex(const uint8_t *cms_der, size_t cms_len,
                                                   uint64_t payload_len, X509_STORE *roots,
                                                   time_t now, unsigned flags,
                                                   ts_fw_verifier **out);

/*
 * For an encrypted manifest: recovers the content key with ECDH inside ks (key label: the
 * device key the file was encrypted to, or TS_FW_GROUP_LABEL_PREFIX + the fleet key id), so that
 * feed() decrypts. Each chunk is released only when its GCM tag verifies and the SHA-256 of its
 * plaintext matches the signed manifest. TS_ERR_AUTH when the key is not the recipient.
 * Required before feed() for an encrypted manifest (unless TS_FW_VERIFY_PLAIN).
 */
TS_API TS_MUST_CHECK ts_err ts_fw_verifier_set_key(ts_fw_verifier *v, ts_keystore *ks,
                                                   const char *label);

/* The manifest's contents; valid while v lives. */
TS_API const ts_fw_info *ts_fw_verifier_info(const ts_fw_verifier *v);

/* The signer's certificate; borrowed, valid while v lives. */
TS_API X509 *ts_fw_verifier_signer(const ts_fw_verifier *v);

/*
 * Feeds payload bytes. Every completed chunk is checked and, when its digest matches, passed to
 * release. A mismatch or excess data fails, releases nothing of that chunk, and makes every later
 * call fail.
 */
TS_API TS_MUST_CHECK ts_err ts_fw_verifier_feed(ts_fw_verifier *v, const uint8_t *data, size_t len,
                                                ts_fw_release_fn release, void *ctx);

/* Checks that the whole payload was fed and accepted. */
TS_API TS_MUST_CHECK ts_err ts_fw_verifier_finish(ts_fw_verifier *v);

TS_API void ts_fw_verifier_free(ts_fw_verifier *v);

/*
 * Parses a manifest's JSON strictly (unknown or duplicate members, wrong types, missing fields and
 * inconsistent sizes are refused). digests receives info->chunks * 32 bytes (malloc'd) when not
 * NULL. For the verifier and for fuzzing; the content is not authenticated here.
 */
TS_API TS_MUST_CHECK ts_err ts_fw_manifest_parse(const char *json, size_t len, ts_fw_info *info,
                                                 uint8_t **digests);

#endif
