/*
 * Shared by the firmware fuzz targets: a root and a code-signing certificate made once, in
 * memory, and update files signed with them for a fixed payload: plain, and encrypted to a device
 * key held in a soft: key store in a temporary directory.
 */
#ifndef TS_FUZZ_FW_UTIL_H
#define TS_FUZZ_FW_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ftw.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "tessera/fota.h"
#include "tessera/keystore.h"

#define FUZZ_FW_LABEL "dev"

enum { FUZZ_FW_PAYLOAD = 3000, FUZZ_FW_CHUNK = 1024 };

typedef struct fuzz_fw {
    X509_STORE *roots;
    uint8_t payload[FUZZ_FW_PAYLOAD];
    uint8_t *file; /* a signed update file for payload */
    size_t file_len;
    uint8_t *enc_file; /* the same payload encrypted to FUZZ_FW_LABEL in ks */
    size_t enc_file_len;
    ts_keystore *ks;
} fuzz_fw;

static int fuzz_fw_rm(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static char fuzz_fw_dir[32];

static void fuzz_fw_cleanup(void)
{
    nftw(fuzz_fw_dir, fuzz_fw_rm, 8, FTW_DEPTH | FTW_PHYS);
}

/* Signs in into a new buffer. */
static uint8_t *fuzz_fw_sign(const ts_fw_sign_params *p, const char *in, size_t *len)
{
    char out[64];
    snprintf(out, sizeof out, "%s.fw", in);
    if (ts_fw_sign_file(p, in, out) != TS_OK) {
        abort();
    }
    FILE *f = fopen(out, "rb");
    uint8_t *buf = malloc(1 << 16);
    if (f == NULL || buf == NULL) {
        abort();
    }
    *len = fread(buf, 1, 1 << 16, f);
    fclose(f);
    unlink(out);
    return buf;
}

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
    char dir[] = "/tmp/fuzz-fw-XXXXXX";
    char in[64], uri[128];
    if (mkdtemp(dir) == NULL) {
        abort();
    }
    snprintf(in, sizeof in, "%s/image", dir);
    snprintf(uri, sizeof uri, "soft:%s/ks?pin-value=fuzz-pin-1234", dir);
    EVP_PKEY *dev = NULL;
    FILE *img = fopen(in, "wb");
    if (img == NULL || fwrite(fw.payload, 1, sizeof fw.payload, img) != sizeof fw.payload ||
        fclose(img) != 0 || ts_keystore_create(uri, NULL, &fw.ks) != TS_OK ||
        ts_keystore_generate(fw.ks, FUZZ_FW_LABEL, TS_CURVE_P256) != TS_OK ||
        ts_keystore_public_key(fw.ks, FUZZ_FW_LABEL, &dev) != TS_OK) {
        abort();
    }
    ts_fw_sign_params p = {.key = key,
                           .cert = signer,
                           .version = 2,
                           .seq = 1,
                           .hw = "fuzz-board",
                           .chunk_size = FUZZ_FW_CHUNK};
    fw.file = fuzz_fw_sign(&p, in, &fw.file_len);
    p.encrypt_to = dev;
    fw.enc_file = fuzz_fw_sign(&p, in, &fw.enc_file_len);
    EVP_PKEY_free(dev);
    /* The key store stays in use: its directory is removed at exit. */
    memcpy(fuzz_fw_dir, dir, sizeof dir);
    atexit(fuzz_fw_cleanup);
    X509_free(root);
    X509_free(signer);
    EVP_PKEY_free(root_key);
    EVP_PKEY_free(key);
    return &fw;
}

#endif
