/*
 * libFuzzer target for the chunk checker (src/fota/verify.c, ts_fw_verifier_feed): a verifier
 * for a manifest signed at start-up is fed the input as payload, in pieces whose sizes come from
 * the input's first byte. Whatever is released must be the signed payload, byte for byte, and
 * the whole is accepted only when the input is that payload. The same input is then fed as the
 * payload of the encrypted file (AES-256-GCM chunks, key set from a soft: key store): whatever is
 * released must again be the plaintext payload, and the whole is accepted only when the input is
 * exactly the signed ciphertext.
 *
 * The seed corpus (corpus/fw_chunk/) holds the payload and the encrypted payload (each with its
 * piece-size byte) and variants.
 */
#define _GNU_SOURCE
#include <time.h>

#include "fuzz_fw_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct sink {
    const uint8_t *want;
    size_t got;
} sink;

static int release(void *ctx, const uint8_t *data, size_t len)
{
    sink *s = ctx;
    if (s->got + len > FUZZ_FW_PAYLOAD || memcmp(s->want + s->got, data, len) != 0) {
        abort();
    }
    s->got += len;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const fuzz_fw *fw = fuzz_fw_get();
    if (size < 1) {
        return 0;
    }
    size_t step = (size_t)data[0] * 13 + 1;
    data++;
    size--;
    ts_fw_header h;
    ts_fw_verifier *v = NULL;
    if (ts_fw_header_parse(fw->file, TS_FW_HEADER_LEN, &h) != TS_OK ||
        ts_fw_verifier_open(fw->file + TS_FW_HEADER_LEN, h.manifest_len, h.payload_len, fw->roots,
                            time(NULL), &v) != TS_OK) {
        abort();
    }
    sink s = {.want = fw->payload};
    ts_err rv = TS_OK;
    for (size_t off = 0; rv == TS_OK && off < size; off += step) {
        rv = ts_fw_verifier_feed(v, data + off, size - off < step ? size - off : step, release, &s);
    }
    if (rv == TS_OK) {
        rv = ts_fw_verifier_finish(v);
    }
    int same = size == FUZZ_FW_PAYLOAD && memcmp(data, fw->payload, size) == 0;
    if ((rv == TS_OK) != same || (same && s.got != FUZZ_FW_PAYLOAD)) {
        abort();
    }
    ts_fw_verifier_free(v);

    /* The encrypted path. */
    if (ts_fw_header_parse(fw->enc_file, TS_FW_HEADER_LEN, &h) != TS_OK ||
        ts_fw_verifier_open(fw->enc_file + TS_FW_HEADER_LEN, h.manifest_len, h.payload_len,
                            fw->roots, time(NULL), &v) != TS_OK ||
        ts_fw_verifier_set_key(v, fw->ks, FUZZ_FW_LABEL) != TS_OK) {
        abort();
    }
    sink e = {.want = fw->payload};
    rv = TS_OK;
    for (size_t off = 0; rv == TS_OK && off < size; off += step) {
        rv = ts_fw_verifier_feed(v, data + off, size - off < step ? size - off : step, release, &e);
    }
    if (rv == TS_OK) {
        rv = ts_fw_verifier_finish(v);
    }
    const uint8_t *wire = fw->enc_file + TS_FW_HEADER_LEN + h.manifest_len;
    same = size == h.payload_len && memcmp(data, wire, size) == 0;
    if ((rv == TS_OK) != same || (same && e.got != FUZZ_FW_PAYLOAD)) {
        abort();
    }
    ts_fw_verifier_free(v);
    return 0;
}
