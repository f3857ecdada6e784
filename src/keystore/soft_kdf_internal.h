/*
 * The PIN key of a soft: store: scrypt (RFC 7914) through OpenSSL's EVP_KDF "SCRYPT".
 * Thread safety: no shared state.
 */
#ifndef TS_KEYSTORE_SOFT_KDF_INTERNAL_H
#define TS_KEYSTORE_SOFT_KDF_INTERNAL_H

#include "keystore/soft_file_internal.h"

/*
 * scrypt's cost for a new store: N = 2^15, r = 8, p = 1 (32 MiB and about a tenth of a second
 * on a desktop core), the interactive-login setting RFC 7914 section 2 cites, with a fresh
 * random salt. The parameters are stored in the store file, so a store keeps its own.
 */
enum {
    TS_SOFT_KDF_N = 1 << 15,
    TS_SOFT_KDF_R = 8,
    TS_SOFT_KDF_P = 1,
    TS_SOFT_KDF_SALT_LEN = 16,
};

/* Fills kdf with the parameters of a new store and a fresh salt. */
ts_err ts_soft_kdf_new(ts_soft_kdf *kdf);

/* Derives the PIN key; the caller wipes it with OPENSSL_cleanse(). */
ts_err ts_soft_kdf_derive(const char *pin, const ts_soft_kdf *kdf, uint8_t key[TS_SOFT_KEY_LEN]);

#endif
