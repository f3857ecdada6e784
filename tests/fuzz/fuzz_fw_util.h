/*
 * Shared by the firmware fuzz targets: a root and a code-signing certificate made once, in
 * memory, and an update file signed with them for a fixed payload.
 */
#ifndef TS_FUZZ_FW_UTIL_H
#define TS_FUZZ_FW_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "tessera/fota.h"

enum { FUZZ_FW_PAYLOAD = 3000, FUZZ_FW_CHUNK = 1024 };

typedef struct fuzz_fw {
    X509_STORE *roots;
    uint8_t payload[FUZZ_FW_PAYLOAD];
    uint8_t *file; /* a signed update file for payload */
    size_t file_len;
} fuzz_fw;

static X509 *fuzz_fw_cert(const char *cn, EVP_PKEY *key, X509 *issuer, EVP_PKEY *issuer_key,
                          const char *eku)
{
    X509 *c = X509_new();
    if (c == NULL) {
        abort();
    }
    X509_set_version(c, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(c), issuer == NULL ? 1 : 2);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(c), "CN", MBSTRING_ASC,
                               (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(c, X509_get_subject_name(issuer != NULL ? issuer : c));
    X509_set_pubkey(c, key);
    X509_gmtime_adj(X509_getm_notBefore(c), -60);
    X509_gmtime_adj(X509_getm_notAfter(c), 10L * 365 * 86400);
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, issuer != NULL ? issuer : c, c, NULL, NULL, 0);
    X509_EXTENSION *ext =
        X509V3_EXT_conf_nid(NULL, &ctx, issuer == NULL ? NID_basic_constraints : NID_ext_key_usage,
                            issuer == NULL ? "critical,CA:TRUE" : eku);
    if (ext == NULL || X509_add_ext(c, ext, -1) != 1 ||
        X509_sign(c, issuer_key, EVP_sha256()) <= 0) {
        abort();
    }
    X509_EXTENSION_free(ext);
    return c;
}

static const fuzz_fw *fuzz_fw_get(void)
{
    static fuzz_fw fw;
    if (fw.roots != NULL) {
        return &fw;
    }
    EVP_PKEY *root_key = EVP_EC_gen("P-256");
    EVP_PKEY *key = EVP_EC_gen("P-256");
    if (root_key == NULL || key == NULL) {
        abort();
    }
    X509 *root = fuzz_fw_cert("Fuzz Root", root_key, NULL, root_key, NULL);
    X509 *signer = fuzz_fw_cert("fuzz-signer", key, root, root_key, "codeSigning");
    fw.roots = X509_STORE_new();
    X509_STORE_add_cert(fw.roots, root);
    for (size_t i = 0; i < sizeof fw.payload; i++) {
        fw.payload[i] = (uint8_t)(i * 7 + 3);
    }
    char in[] = "/tmp/fuzz-fw-XXXXXX";
    int fd = mkstemp(in);
    if (fd < 0 || write(fd, fw.payload, sizeof fw.payload) != (ssize_t)sizeof fw.payload) {
        abort();
    }
    close(fd);
    char out[sizeof in + 4];
    snprintf(out, sizeof out, "%s.fw", in);
    ts_fw_sign_params p = {.key = key,
                           .cert = signer,
                           .version = 2,
                           .seq = 1,
                           .hw = "fuzz-board",
                           .chunk_size = FUZZ_FW_CHUNK};
    if (ts_fw_sign_file(&p, in, out) != TS_OK) {
        abort();
    }
    FILE *f = fopen(out, "rb");
    fw.file = malloc(1 << 16);
    if (f == NULL || fw.file == NULL) {
        abort();
    }
    fw.file_len = fread(fw.file, 1, 1 << 16, f);
    fclose(f);
    unlink(in);
    unlink(out);
    X509_free(root);
    X509_free(signer);
    EVP_PKEY_free(root_key);
    EVP_PKEY_free(key);
    return &fw;
}

#endif
