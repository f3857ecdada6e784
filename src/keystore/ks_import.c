/*
 * End-to-end encrypted key import (docs/import.md): the sender's seal and the store's import.
 *
 * ECDH-ES from a fresh ephemeral key to a key of the recipient store, a KEK from HKDF-SHA256
 * Expand bound to the store's UID, the counter, both labels and the ephemeral point, AES-256 key
 * wrap with padding (RFC 5649) of the PKCS#8 private key, and an ECDSA signature by the sender.
 * The blob's format is in import_blob.c.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/x509.h>

#include "common/error_internal.h"
#include "keystore/import_internal.h"

ts_err ts_ks_import_kek(const uint8_t *shared, size_t shared_len, const uint8_t *info,
                        size_t info_len, uint8_t kek[32])
{
    EVP_KDF *kdf = NULL;
    EVP_KDF_CTX *ctx = NULL;
    OSSL_PARAM params[5];
    int mode = EVP_KDF_HKDF_MODE_EXPAND_ONLY;
    ts_err rv = TS_OK;

    if (shared == NULL || shared_len == 0 || (info == NULL && info_len > 0) || kek == NULL) {
        return ts_error_set(TS_ERR_INVALID, "import KEK: missing shared secret or output");
    }
    /*
     * RFC 5869 section 2.3 with PRK = Z and L = 32: T(1) = HMAC-SHA256(Z, info || 0x01). The
     * Extract step is skipped as section 3.3 allows for a secret that is already uniformly
     * hard to guess, so a token can compute the same KEK with ECDH1_DERIVE and SHA256_HMAC.
     */
    params[0] = OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode);
    params[1] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0);
    params[2] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)shared, shared_len);
    params[3] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)info, info_len);
    params[4] = OSSL_PARAM_construct_end();
    kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
    ctx = kdf != NULL ? EVP_KDF_CTX_new(kdf) : NULL;
    if (ctx == NULL || EVP_KDF_derive(ctx, kek, 32, params) != 1) {
        OPENSSL_cleanse(kek, 32);
        rv = ts_error_set_openssl(TS_ERR_CRYPTO, "import KEK: HKDF-SHA256 Expand failed");
    }
    EVP_KDF_CTX_free(ctx);
    EVP_KDF_free(kdf);
    return rv;
}

/* --- the sender's side ---------------------------------------------------------------------- */

static ts_err seal_check(EVP_PKEY *sender, const EVP_PKEY *recipient_pub, const uint8_t *uid,
                         const char *recipient_label, uint64_t counter, const char *label,
                         const EVP_PKEY *key, ts_import_fields *f)
{
    ts_curve key_curve;
    ts_err rv;

    if (sender == NULL || recipient_pub == NULL || uid == NULL || key == NULL) {
        return ts_error_set(TS_ERR_INVALID, "seal: missing sender, recipient, UID or key");
    }
    rv = ts_label_check(recipient_label);
    if (rv != TS_OK) {
        return ts_error_prefix(rv, "seal: recipient label");
    }
    rv = ts_label_check(label);
    if (rv != TS_OK) {
        return ts_error_prefix(rv, "seal: label");
    }
    if (counter == 0) {
        return ts_error_set(TS_ERR_INVALID, "seal: the counter must be 1 or more");
    }
    rv = ts_curve_of_pkey(recipient_pub, &f->curve);
    if (rv != TS_OK) {
        return ts_error_prefix(rv, "seal: recipient key");
    }
    rv = ts_curve_of_pkey(key, &key_curve);
    if (rv != TS_OK) {
        return ts_error_prefix(rv, "seal: key to send");
    }
    if (key_curve != f->curve) {
        return ts_error_set(TS_ERR_INVALID, "seal: the key is on %s but the recipient key on %s",
                            ts_curve_name(key_curve), ts_curve_name(f->curve));
    }
    if (!EVP_PKEY_is_a(sender, "EC")) {
        return ts_error_set(TS_ERR_INVALID, "seal: the sender key is not an EC key");
    }
    /* The bit size is known for provider keys too; SHA-384 goes with P-384 (RFC 5480 4). */
    f->digest = EVP_PKEY_get_bits(sender) > 256 ? "SHA384" : "SHA256";
    memcpy(f->uid, uid, TS_KEYSTORE_UID_LEN);
    strcpy(f->recipient_label, recipient_label);
    strcpy(f->label, label);
    f->counter = counter;
    return ts_import_point_of(key, f->curve, f->public_point, &f->public_point_len);
}

/* Z: ECDH (SEC 1 section 3.3.1) of the ephemeral key with the recipient's public key. */
static ts_err seal_agree(EVP_PKEY *eph, const EVP_PKEY *recipient_pub, uint8_t *z, size_t *z_len)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, eph, NULL);
    ts_err rv = TS_OK;

    /* set_peer takes a non-const key only to hold a reference; validate_peer checks the point. */
    if (ctx == NULL || EVP_PKEY_derive_init(ctx) != 1 ||
        EVP_PKEY_derive_set_peer_ex(ctx, (EVP_PKEY *)recipient_pub, 1) != 1 ||
        EVP_PKEY_derive(ctx, z, z_len) != 1) {
        rv = ts_error_set_openssl(TS_ERR_CRYPTO, "seal: ECDH with the recipient key failed");
    }
    EVP_PKEY_CTX_free(ctx);
    return rv;
}

/* RFC 5649 key wrap with padding of data under kek, into a new buffer. */
static ts_err seal_wrap(const uint8_t kek[32], const uint8_t *data, size_t len, uint8_t **out,
                        size_t *out_len)
{
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    size_t size = (len + 7) / 8 * 8 + 8;
    int n = 0, fin = 0;
    ts_err rv = TS_OK;

    *out = OPENSSL_malloc(size);
    if (ctx == NULL || *out == NULL) {
        rv = ts_error_set(TS_ERR_NOMEM, "out of memory wrapping the key");
        goto done;
    }
    /* Wrap modes are refused unless the context allows them. */
    EVP_CIPHER_CTX_set_flags(ctx, EVP_CIPHER_CTX_FLAG_WRAP_ALLOW);
    if (EVP_EncryptInit_ex(ctx, EVP_aes_256_wrap_pad(), NULL, kek, NULL) != 1 ||
        EVP_EncryptUpdate(ctx, *out, &n, data, (int)len) != 1 ||
        EVP_EncryptFinal_ex(ctx, *out + n, &fin) != 1 || (size_t)(n + fin) != size) {
        rv = ts_error_set_openssl(TS_ERR_CRYPTO, "seal: AES-256 key wrap failed");
        goto done;
    }
    *out_len = size;
done:
    if (rv != TS_OK) {
        OPENSSL_free(*out);
        *out = NULL;
    }
    EVP_CIPHER_CTX_free(ctx);
    return rv;
}

ts_err ts_keystore_import_seal(EVP_PKEY *sender, const EVP_PKEY *recipient_pub,
                               const uint8_t uid[TS_KEYSTORE_UID_LEN], const char *recipient_label,
                               uint64_t counter, const char *label, const EVP_PKEY *key,
                               uint8_t **blob, size_t *blob_len)
{
    ts_import_fields f;
    PKCS8_PRIV_KEY_INFO *p8 = NULL;
    EVP_PKEY *eph = NULL;
    uint8_t *pkcs8 = NULL, *wrapped = NULL;
    int pkcs8_len = 0;
    uint8_t z[TS_SECRET_MAX], kek[32], info[TS_IMPORT_INFO_MAX];
    size_t z_len = sizeof z, info_len = 0;
    ts_err rv;

    memset(&f, 0, sizeof f);
    if (blob == NULL || blob_len == NULL) {
        return ts_error_set(TS_ERR_INVALID, "seal: nowhere to put the blob");
    }
    *blob = NULL;
    *blob_len = 0;
    rv = seal_check(sender, recipient_pub, uid, recipient_label, counter, label, key, &f);
    if (rv != TS_OK) {
        return rv;
    }
    /* RFC 5208 PrivateKeyInfo; PKCS8_PRIV_KEY_INFO_free wipes the key inside it. */
    p8 = EVP_PKEY2PKCS8(key);
    if (p8 == NULL) {
        rv = ts_error_set_openssl(TS_ERR_INVALID, "seal: the key to send has no private part");
        goto done;
    }
    pkcs8_len = i2d_PKCS8_PRIV_KEY_INFO(p8, &pkcs8);
    if (pkcs8_len <= 0) {
        pkcs8_len = 0;
        rv = ts_error_set_openssl(TS_ERR_CRYPTO, "seal: cannot encode the key as PKCS#8");
        goto done;
    }
    eph = EVP_PKEY_Q_keygen(NULL, NULL, "EC", ts_curve_group(f.curve));
    if (eph == NULL) {
        rv = ts_error_set_openssl(TS_ERR_CRYPTO, "seal: cannot make an ephemeral %s key",
                                  ts_curve_name(f.curve));
        goto done;
    }
    rv = ts_import_point_of(eph, f.curve, f.ephemeral_point, &f.ephemeral_point_len);
    if (rv != TS_OK) {
        goto done;
    }
    rv = seal_agree(eph, recipient_pub, z, &z_len);
    if (rv != TS_OK) {
        goto done;
    }
    rv = ts_import_info(&f, info, sizeof info, &info_len);
    if (rv != TS_OK) {
        goto done;
    }
    rv = ts_ks_import_kek(z, z_len, info, info_len, kek);
    if (rv != TS_OK) {
        goto done;
    }
    rv = seal_wrap(kek, pkcs8, (size_t)pkcs8_len, &wrapped, &f.wrapped_len);
    if (rv != TS_OK) {
        goto done;
    }
    f.wrapped = wrapped;
    rv = ts_import_blob_encode(&f, sender, blob, blob_len);
    if (rv == TS_OK && *blob_len > TS_IMPORT_BLOB_MAX) {
        OPENSSL_free(*blob);
        *blob = NULL;
        *blob_len = 0;
        rv = ts_error_set(TS_ERR_INVALID, "seal: the blob would be over %d bytes",
                          TS_IMPORT_BLOB_MAX);
    }
done:
    OPENSSL_cleanse(z, sizeof z);
    OPENSSL_cleanse(kek, sizeof kek);
    OPENSSL_clear_free(pkcs8, (size_t)pkcs8_len);
    PKCS8_PRIV_KEY_INFO_free(p8);
    EVP_PKEY_free(eph);
    OPENSSL_free(wrapped);
    return rv;
}

/* --- the store's side ----------------------------------------------------------------------- */

static void hex(const uint8_t *data, size_t len, char *out)
{
    for (size_t i = 0; i < len; i++) {
        snprintf(out + 2 * i, 3, "%02x", data[i]);
    }
}

/* The checks that need the store: the blob is for this store, fresh, and for a key it holds. */
static ts_err import_check(const ts_ks_backend *backend, void *state, const ts_import_fields *f)
{
    uint8_t uid[TS_KEYSTORE_UID_LEN];
    char want[2 * TS_KEYSTORE_UID_LEN + 1], have[2 * TS_KEYSTORE_UID_LEN + 1];
    uint64_t current = 0;
    ts_curve curve;
    ts_err rv;

    rv = backend->uid(state, uid);
    if (rv != TS_OK) {
        return ts_error_prefix(rv, "import: store UID");
    }
    if (CRYPTO_memcmp(uid, f->uid, TS_KEYSTORE_UID_LEN) != 0) {
        hex(f->uid, TS_KEYSTORE_UID_LEN, want);
        hex(uid, TS_KEYSTORE_UID_LEN, have);
        return ts_error_set(TS_ERR_FOREIGN, "import: the blob is for store %s, this is %s", want,
                            have);
    }
    rv = backend->counter_get(state, TS_IMPORT_COUNTER, &current);
    if (rv != TS_OK) {
        return ts_error_prefix(rv, "import: counter '%s'", TS_IMPORT_COUNTER);
    }
    if (f->counter <= current) {
        return ts_error_set(TS_ERR_REPLAY,
                            "import: the blob's counter %" PRIu64
                            " is not above the store's %" PRIu64
                            ": it was used already or is older than one that was",
                            f->counter, current);
    }
    rv = backend->key_curve(state, f->recipient_label, &curve);
    if (rv != TS_OK) {
        return ts_error_prefix(rv, "import: recipient key");
    }
    if (curve != f->curve) {
        return ts_error_set(TS_ERR_FOREIGN,
                            "import: the blob was sealed to a %s key but '%s' is a %s key",
                            ts_curve_name(f->curve), f->recipient_label, ts_curve_name(curve));
    }
    return TS_OK;
}

/* The counter could not be raised: take the key out again so the store is as it was. */
static ts_err import_undo(const ts_ks_backend *backend, void *state, const char *label, ts_err rv)
{
    char why[512];
    ts_err undo;

    snprintf(why, sizeof why, "%s", ts_error_message());
    undo = backend->remove(state, label);
    if (undo != TS_OK) {
        return ts_error_prefix(rv,
                               "import: raising counter '%s' failed (%s), and removing the "
                               "imported key '%s' again failed",
                               TS_IMPORT_COUNTER, why, label);
    }
    return ts_error_set(rv, "import: raising counter '%s' failed, the key was not imported: %s",
                        TS_IMPORT_COUNTER, why);
}

ts_err ts_ks_import(const ts_ks_backend *backend, void *state, const uint8_t *der, size_t len,
                    const EVP_PKEY *sender, char label_out[TS_LABEL_MAX + 1])
{
    ts_import_blob *blob = NULL;
    const ts_import_fields *f;
    uint8_t info[TS_IMPORT_INFO_MAX];
    size_t info_len = 0;
    uint64_t raised;
    ts_ks_unwrap req;
    ts_err rv;

    label_out[0] = '\0';
    rv = ts_import_blob_parse(der, len, &blob);
    if (rv != TS_OK) {
        return rv;
    }
    f = &blob->fields;
    /* Nothing in the blob is believed before the signature is checked. */
    rv = ts_import_blob_verify(blob, sender);
    if (rv != TS_OK) {
        goto done;
    }
    rv = import_check(backend, state, f);
    if (rv != TS_OK) {
        goto done;
    }
    rv = ts_import_info(f, info, sizeof info, &info_len);
    if (rv != TS_OK) {
        goto done;
    }
    memset(&req, 0, sizeof req);
    req.recipient_label = f->recipient_label;
    req.peer_point = f->ephemeral_point;
    req.peer_point_len = f->ephemeral_point_len;
    req.info = info;
    req.info_len = info_len;
    req.wrapped = f->wrapped;
    req.wrapped_len = f->wrapped_len;
    req.label = f->label;
    req.curve = f->curve;
    req.public_point = f->public_point;
    req.public_point_len = f->public_point_len;
    rv = backend->unwrap_import(state, &req);
    if (rv != TS_OK) {
        goto done;
    }
    raised = f->counter;
    rv = backend->counter_update(state, TS_IMPORT_COUNTER, &raised, 0);
    if (rv != TS_OK) {
        rv = import_undo(backend, state, f->label, rv);
        goto done;
    }
    strcpy(label_out, f->label);
done:
    ts_import_blob_free(blob);
    return rv;
}
