/*
 * soft: key backup for the key ceremony (docs/ceremony.md). A key made with TS_KEY_BACKUP (the
 * flag is in its file's authenticated header) may be wrapped under a fresh random AES-256 KEK:
 * AES key wrap with padding (RFC 5649) of its PKCS#8 PrivateKeyInfo, the same bytes a PKCS#11
 * token gives for C_WrapKey with CKM_AES_KEY_WRAP_PAD, so that a backup made here restores into
 * a token and the other way round.
 */
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "common/error_internal.h"
#include "keystore/ks_soft_internal.h"

enum { KEK_LEN = 32, KWP_BLOCK = 8 };

/* RFC 5649 section 4.1: AES key wrap with padding of plain under kek, into a new buffer. */
static ts_err wrap(const uint8_t kek[KEK_LEN], const uint8_t *plain, size_t plain_len,
                   uint8_t **wrapped, size_t *wrapped_len)
{
    EVP_CIPHER_CTX *ctx = NULL;
    /* The padded input is whole 64-bit blocks; the output has one block more (the AIV). */
    size_t cap = (plain_len + KWP_BLOCK - 1) / KWP_BLOCK * KWP_BLOCK + KWP_BLOCK;
    uint8_t *out = NULL;
    int n = 0, fin = 0;
    ts_err rv = TS_OK;

    if (plain_len == 0 || plain_len > TS_SOFT_SEALED_MAX) {
        return ts_error_set(TS_ERR_INVALID, "a key of %zu bytes cannot be wrapped", plain_len);
    }
    out = OPENSSL_malloc(cap);
    ctx = EVP_CIPHER_CTX_new();
    if (out == NULL || ctx == NULL) {
        rv = ts_error_set(TS_ERR_NOMEM, "out of memory wrapping a key");
        goto done;
    }
    EVP_CIPHER_CTX_set_flags(ctx, EVP_CIPHER_CTX_FLAG_WRAP_ALLOW);
    if (EVP_EncryptInit_ex(ctx, EVP_aes_256_wrap_pad(), NULL, kek, NULL) != 1 ||
        EVP_EncryptUpdate(ctx, out, &n, plain, (int)plain_len) != 1 || n < 0 ||
        EVP_EncryptFinal_ex(ctx, out + n, &fin) != 1 || (size_t)n + (size_t)fin != cap) {
        rv = ts_error_set_openssl(TS_ERR_CRYPTO, "AES key wrap with padding failed");
        goto done;
    }
    *wrapped = out;
    *wrapped_len = cap;
    out = NULL;
done:
    OPENSSL_free(out);
    EVP_CIPHER_CTX_free(ctx);
    return rv;
}

/* RFC 5649 section 4.2: the unwrap, whose integrity check (the AIV and the padding) fails on a
 * wrong KEK or altered bytes. The key into a new buffer, freed with OPENSSL_clear_free(). */
static ts_err unwrap(const uint8_t kek[KEK_LEN], const uint8_t *wrapped, size_t wrapped_len,
                     uint8_t **plain, size_t *plain_len)
{
    EVP_CIPHER_CTX *ctx = NULL;
    uint8_t *out = NULL;
    int n = 0, fin = 0;
    ts_err rv = TS_OK;

    *plain = NULL;
    *plain_len = 0;
    out = OPENSSL_malloc(wrapped_len);
    ctx = EVP_CIPHER_CTX_new();
    if (out == NULL || ctx == NULL) {
        rv = ts_error_set(TS_ERR_NOMEM, "out of memory unwrapping a key");
        goto done;
    }
    EVP_CIPHER_CTX_set_flags(ctx, EVP_CIPHER_CTX_FLAG_WRAP_ALLOW);
    if (EVP_DecryptInit_ex(ctx, EVP_aes_256_wrap_pad(), NULL, kek, NULL) != 1) {
        rv = ts_error_set_openssl(TS_ERR_CRYPTO, "cannot set up AES key unwrap");
        goto done;
    }
    if (EVP_DecryptUpdate(ctx, out, &n, wrapped, (int)wrapped_len) != 1 || n < 0 ||
        EVP_DecryptFinal_ex(ctx, out + n, &fin) != 1) {
        ts_error_clear();
        rv = ts_error_set(TS_ERR_AUTH, "the backup fails its integrity check: the shares give "
                                       "another key-encryption key, or the wrapped key was "
                                       "altered");
        goto done;
    }
    *plain = out;
    *plain_len = (size_t)n + (size_t)fin;
    out = NULL;
done:
    OPENSSL_clear_free(out, wrapped_len);
    EVP_CIPHER_CTX_free(ctx);
    return rv;
}

ts_err ts_soft_backup_key(void *state, const char *label, uint8_t kek[32], uint8_t **wrapped,
                          size_t *wrapped_len)
{
    ts_soft *st = state;
    ts_soft_key *k = NULL;
    uint8_t *der = NULL;
    size_t der_len = 0;
    ts_err rv = ts_soft_key_get(st, label, &k);

    if (rv != TS_OK) {
        return rv;
    }
    if ((k->flags & TS_KEY_BACKUP) == 0) {
        return ts_error_set(TS_ERR_POLICY, "key '%s' was not made for backup", label);
    }
    /* A KEK of its own for every backup: a share set then opens one backup and no other. */
    if (RAND_priv_bytes(kek, KEK_LEN) != 1) {
        return ts_error_set_openssl(TS_ERR_CRYPTO, "no random bytes for a key-encryption key");
    }
    rv = ts_soft_pkcs8_encode(k->pkey, &der, &der_len);
    if (rv == TS_OK) {
        rv = wrap(kek, der, der_len, wrapped, wrapped_len);
    }
    OPENSSL_clear_free(der, der_len);
    if (rv != TS_OK) {
        OPENSSL_cleanse(kek, KEK_LEN);
        return ts_error_prefix(rv, "backup of key '%s' in soft:%s", label, st->dir);
    }
    return TS_OK;
}

/* The unwrapped key must be the one the caller expects: on curve, a valid pair (a PKCS#8 may
 * carry a public point that does not belong to its scalar), and with public_point. */
static ts_err check_restored(EVP_PKEY *pkey, ts_curve curve, const uint8_t *public_point,
                             size_t public_point_len)
{
    uint8_t point[TS_POINT_MAX];
    size_t point_len = 0;
    ts_curve got;
    EVP_PKEY_CTX *ctx = NULL;

    if (ts_curve_of_pkey(pkey, &got) != TS_OK || got != curve) {
        ts_error_clear();
        return ts_error_set(TS_ERR_AUTH, "the backup holds a key that is not on %s",
                            ts_curve_name(curve));
    }
    ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
    if (ctx == NULL || EVP_PKEY_check(ctx) != 1) {
        EVP_PKEY_CTX_free(ctx);
        return ts_error_set_openssl(TS_ERR_AUTH, "the backup holds an invalid key pair");
    }
    EVP_PKEY_CTX_free(ctx);
    ts_err rv = ts_pkey_to_point(pkey, point, sizeof point, &point_len);
    if (rv != TS_OK) {
        return rv;
    }
    if (point_len != public_point_len || CRYPTO_memcmp(point, public_point, point_len) != 0) {
        return ts_error_set(TS_ERR_AUTH, "the backup holds another key than the one expected");
    }
    return TS_OK;
}

ts_err ts_soft_restore_key(void *state, const char *label, const uint8_t kek[32],
                           const uint8_t *wrapped, size_t wrapped_len, ts_curve curve,
                           const uint8_t *public_point, size_t public_point_len, unsigned flags)
{
    ts_soft *st = state;
    uint8_t *der = NULL;
    size_t der_len = 0;
    EVP_PKEY *pkey = NULL;
    ts_soft_kind kind;
    int found = 0;
    /* A taken label is said before any unwrapping; ts_soft_key_store_new checks again under the
     * store's lock. */
    ts_err rv = ts_soft_kind_of(st, label, &kind, &found);

    if (rv == TS_OK && found) {
        rv = ts_soft_label_taken(st, label, kind);
    }
    if (rv == TS_OK) {
        rv = unwrap(kek, wrapped, wrapped_len, &der, &der_len);
    }
    if (rv == TS_OK && ts_soft_pkcs8_decode(der, der_len, &pkey) != TS_OK) {
        /* It passed the integrity check, so it was wrapped with this KEK, but not by a store. */
        ts_error_clear();
        rv = ts_error_set(TS_ERR_AUTH, "the backup does not hold a PKCS#8 private key");
    }
    if (rv == TS_OK) {
        rv = check_restored(pkey, curve, public_point, public_point_len);
    }
    if (rv == TS_OK) {
        rv = ts_soft_key_store_new(st, label, pkey, flags);
    }
    OPENSSL_clear_free(der, der_len);
    EVP_PKEY_free(pkey);
    if (rv != TS_OK) {
        return ts_error_prefix(rv, "restore of key '%s' into soft:%s", label, st->dir);
    }
    return TS_OK;
}
