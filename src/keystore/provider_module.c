/*
 * The Tessera provider as a loadable module (tessera.so), for stock tools:
 *
 *   openssl req -new -provider-path build/lib -provider tessera -provider default \
 *       -key 'soft:/var/lib/tessera/ks;object=device?pin-value=1234' -subj /CN=device
 *
 * It is the same provider as the one built into libtessera; only the entry point is exported.
 */
#include <openssl/core.h>

#include "keystore/provider_internal.h"
#include "tessera/export.h"

TS_API int OSSL_provider_init(const OSSL_CORE_HANDLE *handle, const OSSL_DISPATCH *in,
                              const OSSL_DISPATCH **out, void **provctx)
{
    return ts_provider_init(handle, in, out, provctx);
}
