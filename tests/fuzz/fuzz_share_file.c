/*
 * libFuzzer target for the share-file parser (src/pki/share_file.c): any bytes, read as a share
 * file typed back from paper. A file that parses must hold fields in range, and formatting it
 * again must give a file that parses to the same share.
 *
 * The seed corpus (corpus/share_file/) holds valid shares with and without the optional lines,
 * one with CRLF, blank lines and lower case, and near misses (a mistyped line, a line missing).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>

#include "pki/share_file_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int hex_lower(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) {
            return 0;
        }
    }
    return s[n] == '\0';
}

static void check_fields(const ts_share_file *sf)
{
    if (sf->threshold < TS_SHARE_MIN || sf->threshold > sf->count || sf->count > TS_SHARE_MAX ||
        sf->index < 1 || sf->index > sf->count || !hex_lower(sf->fingerprint, 64) ||
        strlen(sf->set) != 8 || (sf->instance[0] != '\0' && !ts_share_name_ok(sf->instance)) ||
        (sf->date[0] != '\0' && !ts_share_date_ok(sf->date))) {
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ts_share_file sf, again;
    char *text = NULL;

    if (ts_share_file_parse((const char *)data, size, "fuzz", &sf) != TS_OK) {
        ERR_clear_error();
        return 0;
    }
    check_fields(&sf);
    if (ts_share_file_format(&sf, &text) != TS_OK ||
        ts_share_file_parse(text, strlen(text), NULL, &again) != TS_OK ||
        memcmp(&sf, &again, sizeof sf) != 0) {
        abort();
    }
    OPENSSL_clear_free(text, strlen(text));
    ts_share_file_wipe(&sf);
    ts_share_file_wipe(&again);
    return 0;
}
