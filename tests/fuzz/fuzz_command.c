/*
 * libFuzzer target for the command envelope (src/pki/command.c, command_cms.c): any bytes, as a
 * device receives them on its commands topic or the service on a results topic. The input is
 * tried as the JSON content alone and as a whole CMS envelope; either way a refusal is one of
 * the documented errors and leaves the output zeroed or holding only checked fields.
 *
 * The seed corpus (corpus/command/) holds a signed envelope, a signed result and their JSON.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "pki/command_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A self-signed certificate standing for the device, made once. */
static X509 *fuzz_device(void)
{
    static X509 *cert;
    if (cert == NULL) {
        EVP_PKEY *key = EVP_EC_gen("P-256");
        cert = X509_new();
        if (key == NULL || cert == NULL) {
            abort();
        }
        X509_NAME_add_entry_by_txt(X509_get_subject_name(cert), "CN", MBSTRING_ASC,
                                   (const unsigned char *)"dev-1", -1, -1, 0);
        X509_set_issuer_name(cert, X509_get_subject_name(cert));
        X509_set_pubkey(cert, key);
        X509_gmtime_adj(X509_getm_notBefore(cert), 0);
        X509_gmtime_adj(X509_getm_notAfter(cert), 86400);
        if (X509_sign(cert, key, EVP_sha256()) <= 0) {
            abort();
        }
        EVP_PKEY_free(key);
    }
    return cert;
}

static void check(ts_err rv, int ok_allowed)
{
    if (rv == TS_OK && !ok_allowed) {
        abort(); /* nothing unsigned may verify */
    }
    if (rv != TS_OK && rv != TS_ERR_INVALID && rv != TS_ERR_AUTH && rv != TS_ERR_UNSUPPORTED &&
        rv != TS_ERR_FOREIGN && rv != TS_ERR_EXPIRED && rv != TS_ERR_NOMEM && rv != TS_ERR_LIMIT) {
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ts_command cmd;
    ts_command_result res;

    check(ts_command_decode((const char *)data, size, &cmd), 1);
    check(ts_command_result_decode((const char *)data, size, &res), 1);

    X509_STORE *roots = X509_STORE_new();
    if (roots == NULL) {
        abort();
    }
    /* The store trusts nothing: any envelope is refused, but only after being read through. */
    check(ts_command_verify(data, size, roots, fuzz_device(), "dev-1", 1700000000, &cmd), 0);
    check(ts_command_result_verify(data, size, roots, 1700000000, &res, NULL), 0);
    X509_STORE_free(roots);
    ERR_clear_error();
    return 0;
}
