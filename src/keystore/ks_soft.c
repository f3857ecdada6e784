/* Placeholder: replaced by the soft backend. */
#include "common/error_internal.h"
#include "keystore/keystore_internal.h"

static ts_err stub_open(const ts_ks_uri *uri, void **state)
{
    (void)uri;
    *state = NULL;
    return ts_error_set(TS_ERR_UNSUPPORTED, "the soft backend is not built yet");
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

const ts_ks_backend ts_ks_soft_backend = {
    .scheme = "soft",
    .create = stub_create,
    .open = stub_open,
    .close = stub_close,
};
