/* Placeholder: replaced by the URI parser. */
#include "common/error_internal.h"
#include "keystore/keystore_internal.h"

ts_err ts_ks_uri_parse(const char *text, ts_ks_uri **out)
{
    (void)text;
    *out = NULL;
    return ts_error_set(TS_ERR_URI, "URI parser not built yet");
}

void ts_ks_uri_free(ts_ks_uri *uri)
{
    (void)uri;
}
