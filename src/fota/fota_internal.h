/* Inside src/fota: shared between the signer, the manifest parser and the verifier. */
#ifndef TS_FOTA_INTERNAL_H
#define TS_FOTA_INTERNAL_H

#include <openssl/evp.h>

#include "tessera/fota.h"

#define TS_FW_DIGEST_LEN 32
/* An encrypted payload's content key (AES-256-GCM) and its wrapped form (RFC 5649 of 32 bytes). */
#define FW_CEK_LEN     32
#define FW_WRAPPED_LEN 40
/* The ephemeral key: a P-256 SubjectPublicKeyInfo, uncompressed point. */
#define FW_EPK_LEN 91
#define FW_ENC_ALG "A256GCM"
/* HKDF info prefix; the key id follows. */
#define FW_KDF_INFO "tessera fw v1"

/* The manifest's "enc" member beyond what ts_fw_info shows. */
typedef struct fw_enc {
    uint8_t epk[FW_EPK_LEN];
    uint8_t wrapped[FW_WRAPPED_LEN];
} fw_enc;

/*
 * Builds the manifest JSON for p (compact, sorted keys); free *out with free(). info carries the
 * encryption fields (encrypted, enc_group, enc_key_id, wire_size) and enc the rest when
 * info->encrypted.
 */
ts_err fw_manifest_build(const ts_fw_sign_params *p, uint64_t size, uint32_t chunk_size,
                         const uint8_t *digests, uint32_t chunks, const ts_fw_info *info,
                         const fw_enc *enc, char **out);

/* ts_fw_manifest_parse(), also returning the "enc" member's keys when enc is not NULL. */
ts_err fw_manifest_parse_ex(const char *json, size_t len, ts_fw_info *info, uint8_t **digests,
                            fw_enc *enc);

/* Parses and checks (manifest.c) or builds (fw_manifest_build) the "enc" member. */
struct json_t;
ts_err fw_enc_parse(struct json_t *obj, ts_fw_info *info, fw_enc *enc);
struct json_t *fw_enc_build(const ts_fw_info *info, const fw_enc *enc);

/* A P-256 public key from exactly the SubjectPublicKeyInfo DER der (canonical). */
ts_err fw_p256_from_spki(const uint8_t *der, size_t len, const char *what, EVP_PKEY **out);

/* Checks that key is an EC P-256 public key. */
ts_err fw_check_p256(const EVP_PKEY *key, const char *what);

/* Lower-case hex of the SHA-256 of key's SubjectPublicKeyInfo DER: a device recipient's key id. */
ts_err fw_spki_id(const EVP_PKEY *key, char out[2 * TS_FW_DIGEST_LEN + 1]);

/* 1 when id is a fleet key id: 1 to TS_FW_KEYID_MAX of [A-Za-z0-9._-]. */
int fw_group_id_ok(const char *id);

/* KEK = HKDF-SHA256(secret, salt = epk DER, info = FW_KDF_INFO || key_id). */
ts_err fw_kek(const uint8_t *secret, size_t secret_len, const uint8_t epk[FW_EPK_LEN],
              const char *key_id, uint8_t kek[32]);

/*
 * For the signer: a fresh content key, an ephemeral key, ECDH with the recipient, the KEK and
 * the wrapped content key. Fills info's encryption fields (not wire_size) and enc.
 */
ts_err fw_enc_prepare(const ts_fw_sign_params *p, uint8_t cek[FW_CEK_LEN], ts_fw_info *info,
                      fw_enc *enc);

/* For the verifier: ECDH with enc's ephemeral key inside ks, the KEK, and the unwrapped key. */
ts_err fw_enc_unwrap(ts_keystore *ks, const char *label, const ts_fw_info *info, const fw_enc *enc,
                     uint8_t cek[FW_CEK_LEN]);

/* An AES-256-GCM context keyed with cek, for encryption (enc = 1) or decryption. */
ts_err fw_gcm_new(const uint8_t cek[FW_CEK_LEN], int enc, EVP_CIPHER_CTX **out);

/* Encrypts chunk i of chunks: out receives len bytes of ciphertext and the tag. 0 on success. */
int fw_chunk_seal(EVP_CIPHER_CTX *c, uint32_t i, uint32_t chunks, const uint8_t *in, size_t len,
                  uint8_t *out);

/*
 * Decrypts chunk i of chunks from wire (ciphertext || tag, wire_len > TS_FW_TAG_LEN) into out
 * (wire_len - TS_FW_TAG_LEN bytes). 0 only when the tag verifies; out is wiped otherwise.
 */
int fw_chunk_open(EVP_CIPHER_CTX *c, uint32_t i, uint32_t chunks, const uint8_t *wire,
                  size_t wire_len, uint8_t *out);

#endif
