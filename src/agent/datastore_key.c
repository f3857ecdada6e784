/*
 * The datastore's MAC key, derived inside the key store.
 *
 * The key store holds a P-256 key, TS_DATASTORE_KEY, made on first use. The MAC key is
 *
 *   HKDF-SHA256(IKM = ECDH(d, Q), salt = "tessera datastore mac v1", info = UID)   (RFC 5869)
 *
 * where d is that key's private scalar and Q its own public point: the ECDH runs inside the store
 * (ts_keystore_derive, a PKCS#11 C_DeriveKey on a token), so only this store can compute it, it
 * is the same at every open, and nothing secret is written to the state directory.
 *
 * Why ECDH and not the other tools the key store offers:
 * - a secret data object would do the same job, but data objects can be read out of the store
 *   (ts_keystore_object_get), while the private key of TS_DATASTORE_KEY never leaves it;
 * - an ECDSA signature per commit would also bind the file to the store, but needs a signing
 *   operation for every commit and a verification for every slot read; the ECDH runs once per
 *   open, after which commits and reads cost one HMAC.
 * The UID in the HKDF info (and in the file) ties the key to this store even if the same key
 * were ever restored into another one.
 */
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>

#include "agent/datastore_internal.h"
#include "common/error_internal.h"

static const char mac_salt[] = "tessera datastore mac v1";

static ts_err hkdf(const uint8_t *ikm, size_t ikm_len, const uint8_t uid[TS_KEYSTORE_UID_LEN],
                   uint8_t key[TS_DS_MAC_KEY_LEN])
{
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
    EVP_KDF_CTX *ctx = kdf != NULL ? EVP_KDF_CTX_new(kdf) : NULL;
    char digest[] = "SHA256";
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest, 0),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)ikm, ikm_len),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)mac_salt,
                                          sizeof mac_salt - 1),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)uid, TS_KEYSTORE_UID_LEN),
        OSSL_PARAM_construct_end()};
    ts_err rv = TS_OK;

    if (ctx == NULL || EVP_KDF_derive(ctx, key, TS_DS_MAC_KEY_LEN, params) != 1) {
        rv = ts_error_set_openssl(TS_ERR_CRYPTO, "datastore: HKDF-SHA256 failed");
    }
    EVP_KDF_CTX_free(ctx);
    EVP_KDF_free(kdf);
    return rv;
}

ts_err ts_ds_mac_key(ts_keystore *ks, const uint8_t uid[TS_KEYSTORE_UID_LEN],
                     uint8_t key[TS_DS_MAC_KEY_LEN])
{
    EVP_PKEY *pub = NULL;
    uint8_t secret[TS_SECRET_MAX];
    size_t secret_len = sizeof secret;

    ts_err rv = ts_keystore_public_key(ks, TS_DATASTORE_KEY, &pub);
    if (rv == TS_ERR_NOT_FOUND) {
        rv = ts_keystore_generate(ks, TS_DATASTORE_KEY, TS_CURVE_P256);
        if (rv == TS_ERR_EXISTS) {
            rv = TS_OK; /* another process made it first */
        }
        if (rv == TS_OK) {
            rv = ts_keystore_public_key(ks, TS_DATASTORE_KEY, &pub);
        }
    }
    if (rv != TS_OK) {
        return ts_error_prefix(rv, "datastore key %s in the key store", TS_DATASTORE_KEY);
    }
    rv = ts_keystore_derive(ks, TS_DATASTORE_KEY, pub, secret, &secret_len);
    if (rv != TS_OK) {
        rv = ts_error_prefix(rv, "datastore: key agreement with %s", TS_DATASTORE_KEY);
        goto done;
    }
    rv = hkdf(secret, secret_len, uid, key);
done:
    OPENSSL_cleanse(secret, sizeof secret);
    EVP_PKEY_free(pub);
    return rv;
}
