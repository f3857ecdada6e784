/*
 * libFuzzer target: CSR parsing and the device and server profiles' CSR policy on arbitrary
 * bytes. A batch kept across inputs (its verification keys and contexts carry over from one
 * request to the next) must give every request the verdict ts_csr_check() gives it, both on the
 * parsed request (ts_csr_check_in()) and on the bytes (ts_csr_parse_in(), which reads the key
 * apart and verifies over the bytes received).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <openssl/err.h>
#include <openssl/evp.h>

#include "tessera/pki.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static ts_profile *device, *server;
    static EVP_PKEY *issuer;
    static ts_issue_batch *batch;
    X509_REQ *req = NULL;
    ts_batch_csr *csr = NULL;
    ts_err single;

    if (device == NULL && (ts_profile_builtin("device", &device) != TS_OK ||
                           ts_profile_builtin("server", &server) != TS_OK ||
                           (issuer = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256")) == NULL ||
                           ts_issue_batch_new(server, issuer, &batch) != TS_OK)) {
        abort();
    }
    single = ts_csr_parse(data, size, &req);
    if (single == TS_OK) {
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
        if (ts_csr_check_in(batch, req) != b) {
            abort();
        }
        single = b;
    } else if (req != NULL) {
        abort(); /* a refusal leaves nothing behind */
    }
    if (ts_csr_parse_in(batch, data, size, &csr) != single || (csr != NULL) != (single == TS_OK)) {
        abort();
    }
    ts_batch_csr_free(csr);
    X509_REQ_free(req);
    ERR_clear_error();
    return 0;
}
