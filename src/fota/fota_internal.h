/* Inside src/fota: shared between the signer and the verifier. */
#ifndef TS_FOTA_INTERNAL_H
#define TS_FOTA_INTERNAL_H

#include "tessera/fota.h"

#define TS_FW_DIGEST_LEN 32

/* Builds the manifest JSON for p (compact, sorted keys); free *out with free(). */
ts_err fw_manifest_build(const ts_fw_sign_params *p, uint64_t size, uint32_t chunk_size,
                         const uint8_t *digests, uint32_t chunks, char **out);

#endif
