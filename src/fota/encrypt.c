/*
 * Encrypted payloads, the signer's side: a fresh content key, wrapped for the recipient with
 * ECDH-ES (an ephemeral P-256 key), HKDF-SHA256 and AES-256 key wrap with padding (RFC 5649).
 * docs/firmware.md gives the exact derivation.
 */
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "common/error_internal.h"
#include "fota/fota_internal.h"

ts_err fw_check_p256(const EVP_PKEY *key, const char *what)
{
    char group[32] = "";
    if (key == NULL || !EVP_PKEY_is_a(key, "EC") ||
        EVP_PKEY_get_group_name(key, group, sizeof group, NULL) != 1 ||
        strcmp(group, "prime256v1") != 0) {
        ERR_clear_error();
        return ts_error_set(TS_ERR_UNSUPPORTED, "%s is not an EC P-256 key", what);
    }
    return TS_OK;
}

ts_err fw_p256_from_spki(const uint8_t *der, size_t len, const char *what, EVP_PKEY **out)
{
    *out = NULL;
    const unsigned char *p = der;
    EVP_PKEY *key = d2i_PUBKEY(NULL, &p, (long)len);
    if (key == NULL || p != der + len) {
        EVP_PKEY_free(key);
        ERR_clear_error();
        return ts_error_set(TS_ERR_INVALID, "%s is not a SubjectPublicKeyInfo", what);
    }
    ts_err rv = fw_check_p256(key, what);
    unsigned char *again = NULL;
    int n = rv == TS_OK ? i2d_PUBKEY(key, &again) : -1;
    if (rv == TS_OK && (n < 0 || (size_t)n != len || memcmp(again, der, len) != 0)) {
        rv = ts_error_set(TS_ERR_INVALID, "%s is not canonical DER", what);
    }
    OPENSSL_free(again);
    if (rv != TS_OK) {
        EVP_PKEY_free(key);
        return rv;
    }
    *out = key;
    return TS_OK;
}

ts_err fw_spki_id(const EVP_PKEY *key, char out[2 * TS_FW_DIGEST_LEN + 1])
{
    unsigned char *der = NULL;
    int n = i2d_PUBKEY(key, &der);
    uint8_t md[TS_FW_DIGEST_LEN];
    if (n <= 0 || EVP_Digest(der, (size_t)n, md, NULL, EVP_sha256(), NULL) != 1) {
        OPENSSL_free(der);
        return ts_error_set_openssl(TS_ERR_CRYPTO, "cannot hash a public key");
    }
    OPENSSL_free(der);
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < sizeof md; i++) {
        out[2 * i] = digits[md[i] >> 4];
        out[2 * i + 1] = digits[md[i] & 15];
    }
    out[2 * sizeof md] = '\0';
    return TS_OK;
}

int fw_group_id_ok(const char *id)
{
    size_t n = id != NULL ? strlen(id) : 0;
    if (n == 0 || n > TS_FW_KEYID_MAX) {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        char c = id[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-')) {
            return 0;
        }
    }
    return 1;
}

ts_err fw_kek(const uint8_t *secret, size_t secret_len, const uint8_t epk[FW_EPK_LEN],
              const char *key_id, uint8_t kek[32])
{
    uint8_t info[sizeof FW_KDF_INFO - 1 + 2 * TS_FW_KEYID_MAX];
    size_t id_len = strlen(key_id);
    if (id_len > 2 * TS_FW_KEYID_MAX) {
        return ts_error_set(TS_ERR_INVALID, "a key id is too long");
    }
    memcpy(info, FW_KDF_INFO, sizeof FW_KDF_INFO - 1);
    memcpy(info + sizeof FW_KDF_INFO - 1, key_id, id_len);
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
    EVP_KDF_CTX *ctx = kdf != NULL ? EVP_KDF_CTX_new(kdf) : NULL;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)secret, secret_len),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)epk, FW_EPK_LEN),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info,
                                          sizeof FW_KDF_INFO - 1 + id_len),
        OSSL_PARAM_construct_end(),
    };
    ts_err rv = TS_OK;
    if (ctx == NULL || EVP_KDF_derive(ctx, kek, 32, params) != 1) {
        rv = ts_error_set_openssl(TS_ERR_CRYPTO, "HKDF-SHA256 failed");
    }
    EVP_KDF_CTX_free(ctx);
    EVP_KDF_free(kdf);
    return rv;
}

/* AES-256-WRAP-PAD of the content key under kek. */
static ts_err wrap_cek(const uint8_t kek[32], const uint8_t cek[FW_CEK_LEN],
                       uint8_t out[FW_WRAPPED_LEN])
{
    EVP_CIPHER *wrap = EVP_CIPHER_fetch(NULL, "AES-256-WRAP-PAD", NULL);
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int n = 0, m = 0;
    ts_err rv = TS_OK;
    if (wrap == NULL || c == NULL || EVP_EncryptInit_ex2(c, wrap, kek, NULL, NULL) != 1 ||
        EVP_EncryptUpdate(c, out, &n, cek, FW_CEK_LEN) != 1 ||
        EVP_EncryptFinal_ex(c, out + n, &m) != 1 || n + m != FW_WRAPPED_LEN) {
        rv = ts_error_set_openssl(TS_ERR_CRYPTO, "cannot wrap the content key");
    }
    EVP_CIPHER_CTX_free(c);
    EVP_CIPHER_free(wrap);
    return rv;
}

ts_err fw_enc_prepare(const ts_fw_sign_params *p, uint8_t cek[FW_CEK_LEN], ts_fw_info *info,
                      fw_enc *enc)
{
    ts_err rv = fw_check_p256(p->encrypt_to, "the recipient's key");
    if (rv != TS_OK) {
        return rv;
    }
    if (p->encrypt_group != NULL) {
        if (!fw_group_id_ok(p->encrypt_group)) {
            return ts_error_set(TS_ERR_INVALID,
                                "a fleet key id is 1 to %d characters of [A-Za-z0-9._-]",
                                TS_FW_KEYID_MAX);
        }
        memcpy(info->enc_key_id, p->encrypt_group, strlen(p->encrypt_group) + 1);
        info->enc_group = 1;
    } else {
        rv = fw_spki_id(p->encrypt_to, info->enc_key_id);
        info->enc_group = 0;
    }
    EVP_PKEY *eph = rv == TS_OK ? EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256") : NULL;
    unsigned char *der = NULL;
    int der_len = eph != NULL ? i2d_PUBKEY(eph, &der) : -1;
    if (rv == TS_OK && (eph == NULL || der_len != FW_EPK_LEN)) {
        rv = ts_error_set_openssl(TS_ERR_CRYPTO, "cannot make an ephemeral P-256 key");
    }
    uint8_t secret[64];
    size_t secret_len = sizeof secret;
    uint8_t kek[32];
    EVP_PKEY_CTX *dctx = rv == TS_OK ? EVP_PKEY_CTX_new_from_pkey(NULL, eph, NULL) : NULL;
    if (rv == TS_OK && (dctx == NULL || EVP_PKEY_derive_init(dctx) != 1 ||
                        EVP_PKEY_derive_set_peer_ex(dctx, (EVP_PKEY *)p->encrypt_to, 1) != 1 ||
                        EVP_PKEY_derive(dctx, secret, &secret_len) != 1)) {
        rv = ts_error_set_openssl(TS_ERR_CRYPTO, "ECDH with the recipient's key failed");
    }
    if (rv == TS_OK) {
        memcpy(enc->epk, der, FW_EPK_LEN);
        rv = fw_kek(secret, secret_len, enc->epk, info->enc_key_id, kek);
    }
    if (rv == TS_OK && RAND_priv_bytes(cek, FW_CEK_LEN) != 1) {
        rv = ts_error_set_openssl(TS_ERR_CRYPTO, "no random content key");
    }
    if (rv == TS_OK) {
        rv = wrap_cek(kek, cek, enc->wrapped);
    }
    if (rv == TS_OK) {
        info->encrypted = 1;
    } else {
        OPENSSL_cleanse(cek, FW_CEK_LEN);
    }
    OPENSSL_cleanse(secret, sizeof secret);
    OPENSSL_cleanse(kek, sizeof kek);
    EVP_PKEY_CTX_free(dctx);
    OPENSSL_free(der);
    EVP_PKEY_free(eph);
    return rv;
}
