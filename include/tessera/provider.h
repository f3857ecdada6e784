/*
 * The Tessera OpenSSL 3 provider: key-store keys as ordinary EVP_PKEYs.
 *
 * It offers key management ("EC"), ECDSA signatures, ECDH key exchange and a store loader for
 * "soft:" and "pkcs11:" URIs, all with the property "provider=tessera". It lives in libtessera and
 * is also built as the loadable module tessera.so for stock tools:
 *
 *   openssl req -provider-path build/lib -provider tessera -provider default \
 *       -new -key 'pkcs11:token=dev;object=id?module-path=...&pin-value=...' -subj /CN=x
 *
 * Tessera's own code uses a library-private OSSL_LIB_CTX, so loading the provider changes nothing
 * for other code in the process that uses the default context.
 */
#ifndef TESSERA_PROVIDER_H
#define TESSERA_PROVIDER_H

#include <openssl/provider.h>

#include "tessera/error.h"
#include "tessera/export.h"

#define TS_PROVIDER_NAME "tessera"

/*
 * The library's own context, with the "default" and "tessera" providers loaded. Made once,
 * thread-safe; NULL (with ts_error_message() set) only if OpenSSL cannot load a provider.
 */
TS_API OSSL_LIB_CTX *ts_provider_libctx(void);

/* Adds the built-in Tessera provider to another context and loads it. Unload with
 * OSSL_PROVIDER_unload(). */
TS_API TS_MUST_CHECK ts_err ts_provider_load(OSSL_LIB_CTX *libctx, OSSL_PROVIDER **out);

#endif
