/*
 * libFuzzer target for the update file's header and manifest (src/fota/manifest.c, verify.c):
 * the input is tried as a whole file head (header, then the CMS manifest it announces) and as
 * manifest JSON alone. A manifest that is accepted must carry the one signature made at start-up
 * (by the code-signing certificate under the fuzz root): nothing else may verify.
 *
 * Accepted JSON with an "enc" member must be consistent (wire_size = size + 16 x chunks, a key
 * id). The seed corpus (corpus/fw_manifest/) holds a signed file's header and manifest and its
 * JSON, plain and encrypted (enc-head.bin, enc-manifest.json).
 */
#define _GNU_SOURCE
#include <time.h>

#include "fuzz_fw_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const fuzz_fw *fw = fuzz_fw_get();
    ts_fw_info info;
    uint8_t *digests = NULL;
    if (ts_fw_manifest_parse((const char *)data, size, &info, &digests) == TS_OK) {
        if (info.chunks > TS_FW_CHUNKS_MAX || info.chunk_size < TS_FW_CHUNK_MIN ||
            info.chunk_size > TS_FW_CHUNK_MAX || digests == NULL) {
            abort();
        }
        if (info.encrypted ? (info.wire_size != info.size + (uint64_t)TS_FW_TAG_LEN * info.chunks ||
                              info.enc_key_id[0] == '\0')
                           : info.wire_size != info.size) {
            abort();
        }
    } else if (digests != NULL) {
        abort();
    }
    free(digests);

    ts_fw_header h;
    if (size < TS_FW_HEADER_LEN || ts_fw_header_parse(data, TS_FW_HEADER_LEN, &h) != TS_OK ||
        size - TS_FW_HEADER_LEN < h.manifest_len) {
        return 0;
    }
    ts_fw_verifier *v = NULL;
    if (ts_fw_verifier_open(data + TS_FW_HEADER_LEN, h.manifest_len, h.payload_len, fw->roots,
                            time(NULL), &v) == TS_OK) {
        /* Only the signed manifests themselves verify. */
        const uint8_t *file = ts_fw_verifier_info(v)->encrypted ? fw->enc_file : fw->file;
        size_t len = ts_fw_verifier_info(v)->encrypted ? fw->enc_file_len : fw->file_len;
        if (TS_FW_HEADER_LEN + h.manifest_len > len ||
            memcmp(data + TS_FW_HEADER_LEN, file + TS_FW_HEADER_LEN, h.manifest_len) != 0 ||
            ts_fw_verifier_info(v)->size != FUZZ_FW_PAYLOAD) {
            abort();
        }
        ts_fw_verifier_free(v);
    } else if (v != NULL) {
        abort();
    }
    return 0;
}
