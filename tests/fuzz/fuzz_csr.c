/* libFuzzer target: CSR parsing and the device profile's CSR policy on arbitrary bytes. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <openssl/err.h>

#include "tessera/pki.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static ts_profile *device, *server;
    X509_REQ *req = NULL;

    if (device == NULL && (ts_profile_builtin("device", &device) != TS_OK ||
                           ts_profile_builtin("server", &server) != TS_OK)) {
        abort();
    }
    if (ts_csr_parse(data, size, &req) == TS_OK) {
        /* Whatever parses has a subject; checking it must end in a defined answer. */
        if (req == NULL || X509_REQ_get_subject_name(req) == NULL) {
            abort();
        }
        ts_err a = ts_csr_check(req, device);
        ts_err b = ts_csr_check(req, server);
        if ((a != TS_OK && a != TS_ERR_AUTH && a != TS_ERR_POLICY && a != TS_ERR_INVALID) ||
            (b != TS_OK && b != TS_ERR_AUTH && b != TS_ERR_POLICY && b != TS_ERR_INVALID)) {
            abort();
        }
    } else if (req != NULL) {
        abort(); /* a refusal leaves nothing behind */
    }
    X509_REQ_free(req);
    ERR_clear_error();
    return 0;
}
