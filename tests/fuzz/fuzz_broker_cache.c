/*
 * libFuzzer target for the Mosquitto plugin's cache file parser (src/broker/broker_cache.c): any
 * bytes, read as the cache a broker loads at start. A file that parses must encode again to
 * bytes that parse to the same encoding (the parser and the writer agree).
 *
 * The plugin is a loadable module, not a library, so its two Mosquitto-free sources are compiled
 * into this target directly.
 *
 * The seed corpus (corpus/broker_cache/) holds a cache written by the plugin (a tenant with its
 * issuing CA, a revoked certificate, a disabled device), an empty one, and near misses (an
 * unknown member, a bad serial, a tenant twice).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>

#include "broker/broker_cache.c"
#include "broker/broker_state.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tsb_state *st = NULL, *again = NULL;
    char *a = NULL, *b = NULL;
    size_t alen = 0, blen = 0;

    if (tsb_cache_decode(data, size, &st) != TS_OK) {
        ERR_clear_error();
        return 0;
    }
    if (tsb_cache_encode(st, &a, &alen) != TS_OK ||
        tsb_cache_decode((const uint8_t *)a, alen, &again) != TS_OK ||
        tsb_cache_encode(again, &b, &blen) != TS_OK || alen != blen || memcmp(a, b, alen) != 0) {
        abort();
    }
    free(a);
    free(b);
    tsb_state_free(st);
    tsb_state_free(again);
    ERR_clear_error();
    return 0;
}
