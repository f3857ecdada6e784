/* Digest implementations fetched once (digest_internal.h). */
#include <openssl/crypto.h>

#include "common/digest_internal.h"

static CRYPTO_ONCE fetch_once = CRYPTO_ONCE_STATIC_INIT;
static EVP_MD *sha256;
static EVP_MD *sha1;

static void fetch(void)
{
    sha256 = EVP_MD_fetch(NULL, "SHA2-256", NULL);
    sha1 = EVP_MD_fetch(NULL, "SHA1", NULL);
}

const EVP_MD *ts_md_sha256(void)
{
    return CRYPTO_THREAD_run_once(&fetch_once, fetch) ? sha256 : NULL;
}

const EVP_MD *ts_md_sha1(void)
{
    return CRYPTO_THREAD_run_once(&fetch_once, fetch) ? sha1 : NULL;
}
