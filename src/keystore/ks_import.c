/* Placeholder: replaced by the import blob code. */
#include "common/error_internal.h"
#include "keystore/keystore_internal.h"

ts_err ts_ks_import(const ts_ks_backend *backend, void *state, const uint8_t *blob, size_t len,
                    const EVP_PKEY *sender, char label_out[TS_LABEL_MAX + 1])
{
    return ts_error_set(TS_ERR_UNSUPPORTED, "import not built yet");
}
