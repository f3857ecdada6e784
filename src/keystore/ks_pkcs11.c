/* Placeholder: replaced by the pkcs11 backend. */
#include "common/error_internal.h"
#include "keystore/keystore_internal.h"

static ts_err stub_open(const ts_ks_uri *uri, void **state)
{
    (void)uri;
    *state = NULL;
    return ts_error_set(TS_ERR_UNSUPPORTED, "the pkcs11 backend is not built yet");
}

static ts_err stub_create(const ts_ks_uri *uri, const char *so_pin, void **state)
{
    (void)so_pin;
    return stub_open(uri, state);
}

static void stub_close(void *state)
{
    (void)state;
}

const ts_ks_backend ts_ks_pkcs11_backend = {
    .scheme = "pkcs11",
    .create = stub_create,
    .open = stub_open,
    .close = stub_close,
};
