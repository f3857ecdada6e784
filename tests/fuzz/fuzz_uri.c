/* libFuzzer target: the key-store URI parser on arbitrary bytes, as a NUL-terminated string. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Fuzz targets see only the public include directory: reach the parser's header directly. */
#include "keystore/keystore_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ts_ks_uri *uri = NULL;
    char *text = malloc(size + 1);

    if (text == NULL) {
        return 0;
    }
    memcpy(text, data, size);
    text[size] = '\0';
    if (ts_ks_uri_parse(text, &uri) == TS_OK) {
        /* Whatever parses must be whole: a scheme, a redacted form, a directory for soft: */
        if (uri->redacted == NULL || (uri->scheme == TS_KS_SOFT && uri->path == NULL) ||
            (uri->scheme == TS_KS_PKCS11 && uri->module_path == NULL)) {
            abort();
        }
        if (uri->pin != NULL && strstr(text, "pin-value=") != NULL &&
            strstr(uri->redacted, "pin-value=***") == NULL) {
            abort();
        }
    }
    ts_ks_uri_free(uri);
    free(text);
    return 0;
}
