/*
 * soft: keys. A key file holds the curve and public point in clear and the PKCS#8 private key
 * sealed under the store key. A key is decrypted on first use and kept, with a signing context,
 * for the life of the state: after that, signing reads no file and runs no KDF.
 */
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "common/error_internal.h"
#include "common/file_internal.h"
#include "keystore/ks_soft_internal.h"

/* --- the cache ----------------------------------------------------------------------------- */

static void key_free(ts_soft_key *k)
{
    if (k == NULL) {
        return;
    }
    EVP_PKEY_CTX_free(k->sign_ctx);
    EVP_PKEY_free(k->pkey);
    OPENSSL_clear_free(k, sizeof *k);
}

void ts_soft_key_forget(ts_soft *st, const char *label)
{
    for (ts_soft_key **p = &st->keys; *p != NULL; p = &(*p)->next) {
        if (strcmp((*p)->label, label) == 0) {
            ts_soft_key *k = *p;
            *p = k->next;
            key_free(k);
            return;
        }
    }
}

void ts_soft_keys_free(ts_soft *st)
{
    while (st->keys != NULL) {
        ts_soft_key *k = st->keys;
        st->keys = k->next;
        key_free(k);
    }
}

/* Caches pkey (taking a reference) under label, replacing any entry of that label. */
static ts_err cache_add(ts_soft *st, const char *label, EVP_PKEY *pkey, ts_curve curve,
                        const uint8_t *point, size_t point_len, unsigned flags, ts_soft_key **out)
{
    ts_soft_key *k = OPENSSL_zalloc(sizeof *k);

    if (k == NULL) {
        return ts_error_set(TS_ERR_NOMEM, "out of memory loading key '%s'", label);
    }
    memcpy(k->label, label, strlen(label) + 1);
    k->curve = curve;
    memcpy(k->point, point, point_len);
    k->point_len = point_len;
    k->flags = flags;
    k->pkey = pkey;
    EVP_PKEY_up_ref(pkey);
    k->sign_ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
    if (k->sign_ctx == NULL || EVP_PKEY_sign_init(k->sign_ctx) != 1) {
        key_free(k);
        return ts_error_set_openssl(TS_ERR_CRYPTO, "cannot prepare key '%s' for signing", label);
    }
    ts_soft_key_forget(st, label);
    k->next = st->keys;
    st->keys = k;
    *out = k;
    return TS_OK;
}

/* PKCS#8 PrivateKeyInfo (RFC 5208 section 5) into an EVP_PKEY. */
ts_err ts_soft_pkcs8_decode(const uint8_t *der, size_t len, EVP_PKEY **out)
{
    const uint8_t *p = der;
    PKCS8_PRIV_KEY_INFO *p8 = NULL;

    *out = NULL;
    if (len > INT32_MAX) {
        return ts_error_set(TS_ERR_CORRUPT, "private key too large");
    }
    p8 = d2i_PKCS8_PRIV_KEY_INFO(NULL, &p, (long)len);
    if (p8 != NULL && p == der + len) {
        *out = EVP_PKCS82PKEY(p8);
    }
    PKCS8_PRIV_KEY_INFO_free(p8); /* wipes the key octets */
    if (*out == NULL) {
        return ts_error_set_openssl(TS_ERR_CORRUPT, "not a PKCS#8 private key");
    }
    return TS_OK;
}

ts_err ts_soft_pkcs8_encode(const EVP_PKEY *pkey, uint8_t **der, size_t *len)
{
    PKCS8_PRIV_KEY_INFO *p8 = EVP_PKEY2PKCS8(pkey);
    int n = p8 != NULL ? i2d_PKCS8_PRIV_KEY_INFO(p8, der) : -1;

    PKCS8_PRIV_KEY_INFO_free(p8);
    if (n <= 0) {
        *der = NULL;
        return ts_error_set_openssl(TS_ERR_CRYPTO, "cannot encode a private key as PKCS#8");
    }
    *len = (size_t)n;
    return TS_OK;
}

ts_err ts_soft_key_get(ts_soft *st, const char *label, ts_soft_key **out)
{
    ts_soft_record *rec = NULL;
    uint8_t *der = NULL;
    size_t der_len = 0;
    EVP_PKEY *pkey = NULL;
    uint8_t point[TS_POINT_MAX];
    size_t point_len = 0;
    ts_curve curve;
    ts_soft_kind kind;
    int found = 0;
    ts_err rv = TS_OK;

    for (ts_soft_key **p = &st->keys; *p != NULL; p = &(*p)->next) {
        if (strcmp((*p)->label, label) == 0) {
            ts_soft_key *k = *p;
            *p = k->next; /* to the front: the next call is most likely the same key */
            k->next = st->keys;
            st->keys = k;
            *out = k;
            return TS_OK;
        }
    }
    rv = ts_soft_load(st, TS_SOFT_KEY, label, &rec, &der, &der_len);
    if (rv == TS_ERR_NOT_FOUND) {
        rv = ts_soft_kind_of(st, label, &kind, &found);
        if (rv == TS_OK) {
            rv =
                found ? ts_soft_wrong_type(st, label, kind, "a key") : ts_soft_not_found(st, label);
        }
        goto done;
    }
    if (rv != TS_OK) {
        goto done;
    }
    rv = ts_soft_pkcs8_decode(der, der_len, &pkey);
    if (rv == TS_OK && ts_curve_of_pkey(pkey, &curve) != TS_OK) {
        rv = ts_error_set(TS_ERR_CORRUPT, "not a P-256 or P-384 key");
    }
    if (rv == TS_OK) {
        rv = ts_pkey_to_point(pkey, point, sizeof point, &point_len);
    }
    /* The clear fields must describe the sealed key: they are what public_key() returns. */
    if (rv == TS_OK && (curve != rec->curve || point_len != rec->point_len ||
                        CRYPTO_memcmp(point, rec->point, point_len) != 0)) {
        rv = ts_error_set(TS_ERR_CORRUPT, "its public point does not match its private key");
    }
    if (rv != TS_OK) {
        ts_error_prefix(rv, "key '%s' in soft:%s", label, st->dir);
        goto done;
    }
    rv = cache_add(st, label, pkey, curve, point, point_len, rec->flags, out);
done:
    EVP_PKEY_free(pkey);
    OPENSSL_clear_free(der, der_len);
    ts_soft_record_free(rec);
    return rv;
}

ts_err ts_soft_key_store_new(ts_soft *st, const char *label, EVP_PKEY *pkey, unsigned flags)
{
    ts_soft_record rec;
    ts_soft_key *k = NULL;
    uint8_t *der = NULL;
    size_t der_len = 0;
    ts_soft_kind kind;
    int found = 0, fd = -1;
    ts_err rv = TS_OK;

    memset(&rec, 0, sizeof rec);
    rec.kind = TS_SOFT_KEY;
    rec.flags = flags;
    memcpy(rec.label, label, strlen(label) + 1);
    rv = ts_curve_of_pkey(pkey, &rec.curve);
    if (rv == TS_OK) {
        rv = ts_pkey_to_point(pkey, rec.point, sizeof rec.point, &rec.point_len);
    }
    if (rv == TS_OK) {
        rv = ts_soft_pkcs8_encode(pkey, &der, &der_len);
    }
    if (rv == TS_OK) {
        rv = ts_soft_lock(st, &fd);
    }
    if (rv == TS_OK) {
        rv = ts_soft_kind_of(st, label, &kind, &found);
    }
    if (rv == TS_OK && found) {
        rv = ts_soft_label_taken(st, label, kind);
    }
    if (rv == TS_OK) {
        rv = ts_soft_save(st, &rec, der, der_len);
    }
    ts_file_unlock(fd);
    if (rv == TS_OK) {
        rv = cache_add(st, label, pkey, rec.curve, rec.point, rec.point_len, flags, &k);
    }
    OPENSSL_clear_free(der, der_len);
    return rv;
}

/* --- backend functions --------------------------------------------------------------------- */

ts_err ts_soft_generate(void *state, const char *label, ts_curve curve, unsigned flags)
{
    EVP_PKEY *pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", ts_curve_group(curve));
    ts_err rv = TS_OK;

    if (pkey == NULL) {
        return ts_error_set_openssl(TS_ERR_CRYPTO, "cannot generate a %s key",
                                    ts_curve_name(curve));
    }
    rv = ts_soft_key_store_new(state, label, pkey, flags);
    EVP_PKEY_free(pkey);
    return rv;
}

ts_err ts_soft_public_key(void *state, const char *label, EVP_PKEY **out)
{
    ts_soft_key *k = NULL;
    ts_err rv = ts_soft_key_get(state, label, &k);
    return rv != TS_OK ? rv : ts_pkey_from_point(k->curve, k->point, k->point_len, out);
}

ts_err ts_soft_key_curve(void *state, const char *label, ts_curve *curve)
{
    ts_soft_key *k = NULL;
    ts_err rv = ts_soft_key_get(state, label, &k);
    if (rv == TS_OK) {
        *curve = k->curve;
    }
    return rv;
}

ts_err ts_soft_sign_digest(void *state, const char *label, const uint8_t *digest, size_t digest_len,
                           uint8_t *sig, size_t *sig_len)
{
    uint8_t buf[TS_SIGNATURE_MAX];
    size_t n = sizeof buf;
    ts_soft_key *k = NULL;
    ts_err rv = ts_soft_key_get(state, label, &k);

    if (rv != TS_OK) {
        return rv;
    }
    /* No digest is set on the context, so ECDSA takes the digest as it is and truncates it to
     * the order's size (SEC 1 section 4.1.3 step 5). */
    if (EVP_PKEY_sign(k->sign_ctx, buf, &n, digest, digest_len) != 1) {
        return ts_error_set_openssl(TS_ERR_CRYPTO, "ECDSA with key '%s' failed", label);
    }
    if (n > *sig_len) {
        return ts_error_set(TS_ERR_INVALID, "sign: a signature of %zu bytes does not fit in %zu", n,
                            *sig_len);
    }
    memcpy(sig, buf, n);
    *sig_len = n;
    return TS_OK;
}

/* ECDH (SEC 1 section 3.3.1): the shared secret is the x-coordinate. */
static ts_err ecdh(const ts_soft_key *k, const uint8_t *peer_point, size_t peer_point_len,
                   uint8_t *secret, size_t *secret_len)
{
    EVP_PKEY *peer = NULL;
    EVP_PKEY_CTX *ctx = NULL;
    size_t n = 0;
    ts_err rv = ts_pkey_from_point(k->curve, peer_point, peer_point_len, &peer);

    if (rv != TS_OK) {
        return ts_error_prefix(rv, "derive: peer key");
    }
    ctx = EVP_PKEY_CTX_new_from_pkey(NULL, k->pkey, NULL);
    if (ctx == NULL || EVP_PKEY_derive_init(ctx) != 1 ||
        EVP_PKEY_derive_set_peer_ex(ctx, peer, 1) != 1 || EVP_PKEY_derive(ctx, NULL, &n) != 1) {
        rv = ts_error_set_openssl(TS_ERR_CRYPTO, "ECDH with key '%s' failed", k->label);
        goto done;
    }
    if (n > *secret_len) {
        rv = ts_error_set(TS_ERR_INVALID, "derive: a secret of %zu bytes does not fit in %zu", n,
                          *secret_len);
        goto done;
    }
    if (EVP_PKEY_derive(ctx, secret, &n) != 1) {
        OPENSSL_cleanse(secret, *secret_len);
        rv = ts_error_set_openssl(TS_ERR_CRYPTO, "ECDH with key '%s' failed", k->label);
        goto done;
    }
    *secret_len = n;
done:
    EVP_PKEY_CTX_free(ctx);
    EVP_PKEY_free(peer);
    return rv;
}

ts_err ts_soft_derive(void *state, const char *label, const uint8_t *peer_point,
                      size_t peer_point_len, uint8_t *secret, size_t *secret_len)
{
    ts_soft_key *k = NULL;
    ts_err rv = ts_soft_key_get(state, label, &k);
    return rv != TS_OK ? rv : ecdh(k, peer_point, peer_point_len, secret, secret_len);
}

/* AES-256 key unwrap with padding (RFC 5649 section 4.2) into a new buffer. */
static ts_err unwrap(const uint8_t kek[32], const uint8_t *wrapped, size_t wrapped_len,
                     uint8_t **plain, size_t *plain_len)
{
    EVP_CIPHER_CTX *ctx = NULL;
    uint8_t *out = NULL;
    size_t cap = wrapped_len + 16;
    int n = 0, fin = 0;
    ts_err rv = TS_OK;

    *plain = NULL;
    *plain_len = 0;
    if (wrapped_len < 16 || wrapped_len % 8 != 0 || wrapped_len > TS_IMPORT_BLOB_MAX) {
        return ts_error_set(TS_ERR_CORRUPT, "import: a wrapped key of %zu bytes is malformed",
                            wrapped_len);
    }
    out = OPENSSL_malloc(cap);
    ctx = EVP_CIPHER_CTX_new();
    if (out == NULL || ctx == NULL) {
        rv = ts_error_set(TS_ERR_NOMEM, "out of memory unwrapping a key");
        goto done;
    }
    EVP_CIPHER_CTX_set_flags(ctx, EVP_CIPHER_CTX_FLAG_WRAP_ALLOW);
    if (EVP_DecryptInit_ex(ctx, EVP_aes_256_wrap_pad(), NULL, kek, NULL) != 1) {
        rv = ts_error_set_openssl(TS_ERR_CRYPTO, "import: cannot set up AES key unwrap");
        goto done;
    }
    /* The integrity check of section 4.2 (the AIV and the padding) fails on a wrong KEK or
     * altered bytes. */
    if (EVP_DecryptUpdate(ctx, out, &n, wrapped, (int)wrapped_len) != 1 || n < 0 ||
        EVP_DecryptFinal_ex(ctx, out + n, &fin) != 1) {
        ts_error_clear();
        rv = ts_error_set(TS_ERR_AUTH, "import: the wrapped key fails its integrity check "
                                       "(wrong recipient key or altered blob)");
        goto done;
    }
    *plain = out;
    *plain_len = (size_t)n + (size_t)fin;
    out = NULL;
done:
    OPENSSL_clear_free(out, cap);
    EVP_CIPHER_CTX_free(ctx);
    return rv;
}

/* The unwrapped key must be what the blob says: on req->curve, with req->public_point, and a
 * valid key pair (the public point in a PKCS#8 is not checked against the scalar otherwise). */
static ts_err check_imported(const ts_ks_unwrap *req, EVP_PKEY *pkey)
{
    uint8_t point[TS_POINT_MAX];
    size_t point_len = 0;
    ts_curve curve;
    EVP_PKEY_CTX *ctx = NULL;
    ts_err rv = ts_curve_of_pkey(pkey, &curve);

    if (rv != TS_OK || curve != req->curve) {
        return ts_error_set(TS_ERR_CORRUPT, "import: the key is not on %s",
                            ts_curve_name(req->curve));
    }
    ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
    if (ctx == NULL || EVP_PKEY_check(ctx) != 1) {
        EVP_PKEY_CTX_free(ctx);
        return ts_error_set_openssl(TS_ERR_CORRUPT, "import: the key pair is not valid");
    }
    EVP_PKEY_CTX_free(ctx);
    rv = ts_pkey_to_point(pkey, point, sizeof point, &point_len);
    if (rv != TS_OK) {
        return rv;
    }
    if (point_len != req->public_point_len ||
        CRYPTO_memcmp(point, req->public_point, point_len) != 0) {
        return ts_error_set(TS_ERR_AUTH, "import: the key does not match its public key");
    }
    return TS_OK;
}

ts_err ts_soft_unwrap_import(void *state, const ts_ks_unwrap *req)
{
    ts_soft_key *k = NULL;
    uint8_t shared[TS_SECRET_MAX];
    size_t shared_len = sizeof shared;
    uint8_t kek[32];
    uint8_t *der = NULL;
    size_t der_len = 0;
    EVP_PKEY *pkey = NULL;
    ts_err rv = ts_soft_key_get(state, req->recipient_label, &k);

    if (rv == TS_OK) {
        rv = ecdh(k, req->peer_point, req->peer_point_len, shared, &shared_len);
    }
    if (rv == TS_OK) {
        rv = ts_ks_import_kek(shared, shared_len, req->info, req->info_len, kek);
    }
    if (rv == TS_OK) {
        rv = unwrap(kek, req->wrapped, req->wrapped_len, &der, &der_len);
    }
    if (rv == TS_OK) {
        rv = ts_soft_pkcs8_decode(der, der_len, &pkey);
        if (rv != TS_OK) {
            ts_error_prefix(rv, "import");
        }
    }
    if (rv == TS_OK) {
        rv = check_imported(req, pkey);
    }
    if (rv == TS_OK) {
        rv = ts_soft_key_store_new(state, req->label, pkey, 0);
    }
    OPENSSL_cleanse(shared, sizeof shared);
    OPENSSL_cleanse(kek, sizeof kek);
    OPENSSL_clear_free(der, der_len);
    EVP_PKEY_free(pkey);
    return rv;
}
