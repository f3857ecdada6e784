/*
 * libFuzzer target for the soft: store's file parser (soft_file.c): any bytes, read as a file of
 * the store directory would be. A file that parses must hold fields in range, open or be refused
 * cleanly under a key, and survive encoding and parsing again unchanged.
 *
 * The seed corpus (corpus/soft_file/) holds files sealed under fuzz_key below, so mutations
 * reach the paths after a tag that verifies, and files of a real store.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>

/* The fuzz targets see only the public headers; the parser is internal. */
#include "keystore/soft_file_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t fuzz_key[TS_SOFT_KEY_LEN] = {
    0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42,
    0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42,
};

static void check_fields(const ts_soft_record *r)
{
    size_t label_len = strlen(r->label);

    if ((r->kind == TS_SOFT_STORE) != (label_len == 0)) {
        abort();
    }
    if (label_len > 0 && !ts_soft_label_ok(r->label, label_len)) {
        abort();
    }
    switch (r->kind) {
    case TS_SOFT_STORE:
        if (r->sealed_len != TS_SOFT_KEY_LEN || r->kdf.n < TS_SOFT_KDF_N_MIN ||
            r->kdf.n > TS_SOFT_KDF_N_MAX || (r->kdf.n & (r->kdf.n - 1)) != 0 || r->kdf.r == 0 ||
            r->kdf.p == 0 || r->kdf.salt_len < TS_SOFT_SALT_MIN ||
            r->kdf.salt_len > TS_SOFT_SALT_MAX) {
            abort();
        }
        break;
    case TS_SOFT_KEY:
        if ((r->curve != TS_CURVE_P256 && r->curve != TS_CURVE_P384) ||
            r->point_len != (r->curve == TS_CURVE_P256 ? 65U : 97U) || r->point[0] != 0x04 ||
            r->sealed_len == 0 || (r->flags & ~TS_KEY_BACKUP) != 0) {
            abort();
        }
        break;
    case TS_SOFT_DATA:
        if ((r->flags & ~TS_DATA_SECRET) != 0 || r->data_len > TS_OBJECT_MAX) {
            abort();
        }
        if ((r->flags & TS_DATA_SECRET) != 0 ? r->data != NULL : r->sealed_len != 0) {
            abort();
        }
        break;
    case TS_SOFT_COUNTER:
        if (r->sealed_len != 0) {
            abort();
        }
        break;
    default:
        abort();
    }
}

/* Encodes r again with plain and parses the result: the same fields, and plain back. */
static void check_round_trip(const ts_soft_record *r, const uint8_t *plain, size_t plain_len)
{
    uint8_t *der = NULL, *back = NULL;
    size_t der_len = 0, back_len = 0;
    ts_soft_record *again = NULL;

    if (ts_soft_file_encode(r, fuzz_key, plain, plain_len, &der, &der_len) != TS_OK ||
        ts_soft_file_parse(der, der_len, &again) != TS_OK ||
        ts_soft_file_unseal(again, fuzz_key, &back, &back_len) != TS_OK) {
        abort();
    }
    if (again->kind != r->kind || strcmp(again->label, r->label) != 0 ||
        memcmp(again->uid, r->uid, sizeof r->uid) != 0 || again->aad_len != r->aad_len ||
        memcmp(again->aad, r->aad, r->aad_len) != 0 || back_len != plain_len ||
        (plain_len > 0 && memcmp(back, plain, plain_len) != 0)) {
        abort();
    }
    OPENSSL_clear_free(back, back_len);
    ts_soft_record_free(again);
    OPENSSL_free(der);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t uid[TS_KEYSTORE_UID_LEN] = {0};
    ts_soft_record *rec = NULL;
    uint8_t *plain = NULL;
    size_t plain_len = 0;
    uint64_t failures = 0;

    /* The PIN-failure file's parser takes the same bytes. */
    if (ts_soft_tries_parse(data, size, uid, &failures) != TS_OK && ERR_peek_error() != 0) {
        abort();
    }
    if (ts_soft_file_parse(data, size, &rec) != TS_OK) {
        if (rec != NULL || ERR_peek_error() != 0) {
            abort(); /* a refusal leaves no record and no queued OpenSSL errors */
        }
        return 0;
    }
    check_fields(rec);
    ts_err rv = ts_soft_file_unseal(rec, fuzz_key, &plain, &plain_len);
    if (rv == TS_OK) {
        if (plain_len != rec->sealed_len) {
            abort();
        }
        check_round_trip(rec, plain, plain_len);
    } else if (rv != TS_ERR_CORRUPT || plain != NULL) {
        abort();
    } else {
        /* Any content seals and opens again under the key. */
        check_round_trip(rec, rec->sealed, rec->sealed_len);
    }
    OPENSSL_clear_free(plain, plain_len);
    ts_soft_record_free(rec);
    ERR_clear_error();
    return 0;
}
