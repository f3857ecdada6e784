/*
 * Encrypted payloads, the device's side: the content key recovered with ECDH inside the key
 * store, and the per-chunk AES-256-GCM shared with the signer (nonce and AAD bind each chunk to
 * its index and to the chunk count).
 */
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>

#include "common/error_internal.h"
#include "fota/fota_internal.h"

static ts_err unwrap_cek(const uint8_t kek[32], const uint8_t wrapped[FW_WRAPPED_LEN],
                         uint8_t cek[FW_CEK_LEN])
{
    EVP_CIPHER *wrap = EVP_CIPHER_fetch(NULL, "AES-256-WRAP-PAD", NULL);
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    uint8_t out[FW_WRAPPED_LEN + 16];
    int n = 0, m = 0;
    ts_err rv = TS_OK;
    if (wrap == NULL || c == NULL || EVP_DecryptInit_ex2(c, wrap, kek, NULL, NULL) != 1) {
        rv = ts_error_set_openssl(TS_ERR_CRYPTO, "cannot set up AES-256-WRAP-PAD");
    } else if (EVP_DecryptUpdate(c, out, &n, wrapped, FW_WRAPPED_LEN) != 1 ||
               EVP_DecryptFinal_ex(c, out + n, &m) != 1 || n + m != FW_CEK_LEN) {
        ERR_clear_error();
        rv = ts_error_set(TS_ERR_AUTH, "the content key does not unwrap");
    } else {
        memcpy(cek, out, FW_CEK_LEN);
    }
    OPENSSL_cleanse(out, sizeof out);
    EVP_CIPHER_CTX_free(c);
    EVP_CIPHER_free(wrap);
    return rv;
}

ts_err fw_enc_unwrap(ts_keystore *ks, const char *label, const ts_fw_info *info, const fw_enc *enc,
                     uint8_t cek[FW_CEK_LEN])
{
    EVP_PKEY *epk = NULL;
    EVP_PKEY *mine = NULL;
    ts_err rv = fw_p256_from_spki(enc->epk, sizeof enc->epk, "the manifest's ephemeral key", &epk);
    if (rv == TS_OK && !info->enc_group) {
        /* A device recipient is named by its key: say so plainly when this is another key. */
        char id[2 * TS_FW_DIGEST_LEN + 1];
        rv = ts_keystore_public_key(ks, label, &mine);
        if (rv == TS_OK) {
            rv = fw_spki_id(mine, id);
        }
        if (rv == TS_OK && strcmp(id, info->enc_key_id) != 0) {
            rv = ts_error_set(TS_ERR_AUTH,
                              "the key '%s' is not this update's recipient (the update is "
                              "encrypted to the device key %.16s...)",
                              label, info->enc_key_id);
        }
    }
    uint8_t secret[TS_SECRET_MAX];
    size_t secret_len = sizeof secret;
    uint8_t kek[32];
    if (rv == TS_OK) {
        rv = ts_keystore_derive(ks, label, epk, secret, &secret_len);
    }
    if (rv == TS_OK) {
        rv = fw_kek(secret, secret_len, enc->epk, info->enc_key_id, kek);
    }
    if (rv == TS_OK) {
        rv = unwrap_cek(kek, enc->wrapped, cek);
        if (rv == TS_ERR_AUTH) {
            rv = ts_error_set(TS_ERR_AUTH,
                              "the key '%s' is not this update's recipient (the content key "
                              "does not unwrap)",
                              label);
        }
    }
    OPENSSL_cleanse(secret, sizeof secret);
    OPENSSL_cleanse(kek, sizeof kek);
    EVP_PKEY_free(epk);
    EVP_PKEY_free(mine);
    return rv;
}

ts_err fw_gcm_new(const uint8_t cek[FW_CEK_LEN], int enc, EVP_CIPHER_CTX **out)
{
    EVP_CIPHER *gcm = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    if (gcm == NULL || c == NULL || EVP_CipherInit_ex2(c, gcm, cek, NULL, enc, NULL) != 1) {
        EVP_CIPHER_CTX_free(c);
        EVP_CIPHER_free(gcm);
        return ts_error_set_openssl(TS_ERR_CRYPTO, "cannot set up AES-256-GCM");
    }
    EVP_CIPHER_free(gcm);
    *out = c;
    return TS_OK;
}

/* The nonce (4 zero bytes, u64be(i)) and AAD ("TSFW", u64be(i), u32be(chunks)) of chunk i. */
static void chunk_params(uint32_t i, uint32_t chunks, uint8_t iv[12], uint8_t aad[16])
{
    memset(iv, 0, 12);
    memcpy(aad, TS_FW_MAGIC, 4);
    for (int k = 0; k < 8; k++) {
        iv[4 + k] = (uint8_t)((uint64_t)i >> (56 - 8 * k));
        aad[4 + k] = iv[4 + k];
    }
    for (int k = 0; k < 4; k++) {
        aad[12 + k] = (uint8_t)(chunks >> (24 - 8 * k));
    }
}

int fw_chunk_seal(EVP_CIPHER_CTX *c, uint32_t i, uint32_t chunks, const uint8_t *in, size_t len,
                  uint8_t *out)
{
    uint8_t iv[12], aad[16];
    int n = 0, m = 0;
    chunk_params(i, chunks, iv, aad);
    if (len > TS_FW_CHUNK_MAX || EVP_CipherInit_ex2(c, NULL, NULL, iv, 1, NULL) != 1 ||
        EVP_CipherUpdate(c, NULL, &n, aad, sizeof aad) != 1 ||
        EVP_CipherUpdate(c, out, &n, in, (int)len) != 1 ||
        EVP_CipherFinal_ex(c, out + n, &m) != 1 || (size_t)(n + m) != len ||
        EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_GET_TAG, TS_FW_TAG_LEN, out + len) != 1) {
        return -1;
    }
    return 0;
}

int fw_chunk_open(EVP_CIPHER_CTX *c, uint32_t i, uint32_t chunks, const uint8_t *wire,
                  size_t wire_len, uint8_t *out)
{
    uint8_t iv[12], aad[16];
    uint8_t tag[TS_FW_TAG_LEN];
    int n = 0, m = 0;
    if (wire_len <= TS_FW_TAG_LEN || wire_len - TS_FW_TAG_LEN > TS_FW_CHUNK_MAX) {
        return -1;
    }
    size_t len = wire_len - TS_FW_TAG_LEN;
    chunk_params(i, chunks, iv, aad);
    memcpy(tag, wire + len, sizeof tag);
    if (EVP_CipherInit_ex2(c, NULL, NULL, iv, 0, NULL) != 1 ||
        EVP_CipherUpdate(c, NULL, &n, aad, sizeof aad) != 1 ||
        EVP_CipherUpdate(c, out, &n, wire, (int)len) != 1 ||
        EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_SET_TAG, sizeof tag, tag) != 1 ||
        EVP_CipherFinal_ex(c, out + n, &m) != 1 || (size_t)(n + m) != len) {
        OPENSSL_cleanse(out, len);
        ERR_clear_error();
        return -1;
    }
    return 0;
}
