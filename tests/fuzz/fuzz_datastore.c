/*
 * libFuzzer target for the datastore's file parser (src/agent/datastore_format.c): any bytes,
 * read as a slot file would be. A refusal leaves nothing behind; a file that parses keeps every
 * content rule, encodes back to the same bytes under its own MAC, and verifies under fuzz_key
 * only when its MAC was made with it.
 *
 * The seed corpus (corpus/datastore/) holds files made under fuzz_key and fuzz_uid below, so
 * mutations also reach the paths after a MAC that verifies.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>

/* The fuzz targets see only the public headers; the parser is internal. */
#include "agent/datastore_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t fuzz_key[TS_DS_MAC_KEY_LEN] = {
    0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42,
    0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42,
};
static const uint8_t fuzz_uid[TS_KEYSTORE_UID_LEN] = {
    0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ts_ds_content *c = NULL, *verified = NULL;
    uint8_t mac[TS_DS_MAC_LEN], again_mac[TS_DS_MAC_LEN];
    uint8_t *tbs = NULL, *der = NULL;
    size_t tbs_len = 0, der_len = 0;

    if (ts_ds_parse(data, size, &c, mac, &tbs, &tbs_len) != TS_OK) {
        if (c != NULL || tbs != NULL || ERR_peek_error() != 0) {
            abort(); /* a refusal leaves no content and no queued OpenSSL errors */
        }
        if (ts_ds_decode(data, size, fuzz_uid, fuzz_key, &verified) == TS_OK || verified) {
            abort();
        }
        return 0;
    }
    if (ts_ds_content_check(c, TS_ERR_CORRUPT, "fuzz") != TS_OK ||
        c->version != TS_DATASTORE_FORMAT_VERSION || c->generation == 0) {
        abort();
    }
    /* The MAC the file would carry under fuzz_key; it verifies exactly when it matches. */
    if (ts_ds_mac(fuzz_key, tbs, tbs_len, again_mac) != TS_OK) {
        abort();
    }
    ts_err rv = ts_ds_decode(data, size, fuzz_uid, fuzz_key, &verified);
    int uid_ok = memcmp(c->uid, fuzz_uid, sizeof fuzz_uid) == 0;
    int mac_ok = memcmp(mac, again_mac, sizeof mac) == 0;
    if ((rv == TS_OK) != (uid_ok && mac_ok) || (rv == TS_OK) != (verified != NULL) ||
        (!uid_ok && rv != TS_ERR_FOREIGN) || (uid_ok && !mac_ok && rv != TS_ERR_AUTH)) {
        abort();
    }
    /* Encoding the content again under fuzz_key gives the input back when its MAC was ours. */
    if (ts_ds_encode(c, fuzz_key, &der, &der_len) != TS_OK) {
        abort();
    }
    if (mac_ok && (der_len != size || memcmp(der, data, size) != 0)) {
        abort();
    }
    OPENSSL_free(der);
    OPENSSL_free(tbs);
    ts_ds_content_free(verified);
    ts_ds_content_free(c);
    ERR_clear_error();
    return 0;
}
