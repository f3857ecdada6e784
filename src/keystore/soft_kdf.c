/* The PIN key of a soft: store: scrypt through EVP_KDF (soft_kdf_internal.h). */
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include "common/error_internal.h"
#include "keystore/soft_kdf_internal.h"

ts_err ts_soft_kdf_new(ts_soft_kdf *kdf)
{
    memset(kdf, 0, sizeof *kdf);
    kdf->n = TS_SOFT_KDF_N;
    kdf->r = TS_SOFT_KDF_R;
    kdf->p = TS_SOFT_KDF_P;
    kdf->salt_len = TS_SOFT_KDF_SALT_LEN;
    if (RAND_bytes(kdf->salt, kdf->salt_len) != 1) {
        return ts_error_set_openssl(TS_ERR_CRYPTO, "soft store: no random bytes for a KDF salt");
    }
    return TS_OK;
}

ts_err ts_soft_kdf_derive(const char *pin, const ts_soft_kdf *kdf, uint8_t key[TS_SOFT_KEY_LEN])
{
    EVP_KDF *alg = NULL;
    EVP_KDF_CTX *ctx = NULL;
    OSSL_PARAM params[6];
    uint64_t n = kdf->n;
    uint32_t r = (uint32_t)kdf->r, p = (uint32_t)kdf->p;
    ts_err rv = TS_OK;

    params[0] =
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_PASSWORD, (void *)pin, strlen(pin));
    params[1] =
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)kdf->salt, kdf->salt_len);
    params[2] = OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_N, &n);
    params[3] = OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_R, &r);
    params[4] = OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_P, &p);
    params[5] = OSSL_PARAM_construct_end();
    alg = EVP_KDF_fetch(NULL, "SCRYPT", NULL);
    ctx = alg != NULL ? EVP_KDF_CTX_new(alg) : NULL;
    if (ctx == NULL || EVP_KDF_derive(ctx, key, TS_SOFT_KEY_LEN, params) != 1) {
        OPENSSL_cleanse(key, TS_SOFT_KEY_LEN);
        rv = ts_error_set_openssl(TS_ERR_CRYPTO, "soft store: scrypt failed");
    }
    EVP_KDF_CTX_free(ctx);
    EVP_KDF_free(alg);
    return rv;
}
