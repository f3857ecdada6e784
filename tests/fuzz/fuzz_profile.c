/* libFuzzer target: profile JSON parsing; whatever parses must write out and read back the same. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "tessera/pki.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ts_profile *p = NULL, *q = NULL;
    char *json = NULL, *again = NULL;

    if (ts_profile_from_json((const char *)data, size, &p) != TS_OK) {
        if (p != NULL) {
            abort();
        }
        return 0;
    }
    /* Canonical output round-trips to itself. */
    if (ts_profile_to_json(p, &json) != TS_OK ||
        ts_profile_from_json(json, strlen(json), &q) != TS_OK ||
        ts_profile_to_json(q, &again) != TS_OK || strcmp(json, again) != 0 ||
        strcmp(ts_profile_name(p), ts_profile_name(q)) != 0) {
        abort();
    }
    OPENSSL_free(json);
    OPENSSL_free(again);
    ts_profile_free(p);
    ts_profile_free(q);
    return 0;
}
