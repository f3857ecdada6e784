/*
 * libFuzzer target for the import blob parser: any bytes, parsed as the store would parse a blob
 * from outside. A blob that parses must give fields the rest of the import can use as they are.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>

/* The fuzz targets see only the public headers; the parser is internal. */
#include "keystore/import_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ts_import_blob *blob = NULL;
    uint8_t info[TS_IMPORT_INFO_MAX];
    size_t info_len = 0;

    if (ts_import_blob_parse(data, size, &blob) != TS_OK) {
        if (blob != NULL || ERR_peek_error() != 0) {
            abort(); /* a refusal leaves no blob and no queued OpenSSL errors */
        }
        return 0;
    }
    const ts_import_fields *f = &blob->fields;
    if (strlen(f->recipient_label) == 0 || strlen(f->label) == 0 || f->counter == 0 ||
        f->ephemeral_point_len != f->public_point_len || f->ephemeral_point[0] != 0x04 ||
        f->wrapped_len % 8 != 0 || blob->tbs_len >= size || blob->signature_len == 0 ||
        ts_import_info(f, info, sizeof info, &info_len) != TS_OK) {
        abort();
    }
    ts_import_blob_free(blob);
    return 0;
}
