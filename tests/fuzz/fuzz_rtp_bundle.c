/*
 * libFuzzer target for the offline-provisioning bundle parser (src/agent/agent_rtp_bundle.c):
 * any bytes, read as a SignedBundle from the network would be. A bundle that parses keeps every
 * field rule, and its signature check under a fixed key either verifies or is refused as
 * TS_ERR_AUTH, never anything else.
 *
 * The seed corpus (corpus/rtp_bundle/) holds bundles written by `tessera rtp export`.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>

/* The fuzz targets see only the public headers; the parser is internal. */
#include "agent/agent_rtp_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static EVP_PKEY *fuzz_sender(void)
{
    static EVP_PKEY *key;
    if (key == NULL) {
        key = EVP_EC_gen("P-256");
        if (key == NULL) {
            abort();
        }
    }
    return key;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t zero_uid[TS_KEYSTORE_UID_LEN];
    agent_rtp_bundle b = {NULL, NULL};
    ts_err rv;

    rv = agent_rtp_bundle_parse(data, size, &b);
    if (rv != TS_OK) {
        if (rv != TS_ERR_CORRUPT || b.outer != NULL || b.inner != NULL) {
            abort();
        }
        ERR_clear_error();
        return 0;
    }
    if (b.inner->version != AGENT_RTP_VERSION || b.inner->keystore_uid.len != TS_KEYSTORE_UID_LEN ||
        b.inner->n_imports == 0 || b.inner->n_imports > AGENT_RTP_IMPORTS_MAX ||
        b.outer->signature.len == 0 || b.outer->signature.len > AGENT_RTP_SIG_MAX ||
        size > TS_AGENT_RTP_BUNDLE_MAX) {
        abort();
    }
    for (size_t i = 0; i < b.inner->n_imports; i++) {
        if (b.inner->imports[i].len == 0 || b.inner->imports[i].len > TS_IMPORT_BLOB_MAX) {
            abort();
        }
    }
    rv = agent_rtp_bundle_verify(&b, fuzz_sender());
    if (rv != TS_ERR_AUTH) {
        abort();
    }
    rv = agent_rtp_bundle_bound(&b, "fuzz-device", zero_uid);
    if (rv != TS_OK && rv != TS_ERR_FOREIGN) {
        abort();
    }
    agent_rtp_bundle_clear(&b);
    ERR_clear_error();
    return 0;
}
