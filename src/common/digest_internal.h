/* The digests hashed on every issuance, fetched once per process. */
#ifndef TS_COMMON_DIGEST_INTERNAL_H
#define TS_COMMON_DIGEST_INTERNAL_H

#include <openssl/evp.h>

/*
 * SHA-256 and SHA-1 of the default library context. EVP_sha256() stands for the algorithm, and
 * each EVP_DigestInit_ex() with it looks the implementation up again in OpenSSL 3.0, under the
 * method store's lock; these are looked up once and kept until exit. NULL when OpenSSL cannot
 * give them (the caller's digest call then fails as it would with EVP_sha256()).
 */
const EVP_MD *ts_md_sha256(void);
const EVP_MD *ts_md_sha1(void);

#endif
