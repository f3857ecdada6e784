/* Making an update file: chunk digests, the signed manifest, the header, then the payload. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/cms.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>

#include "common/error_internal.h"
#include "fota/fota_internal.h"
#include "pki/signed_msg_internal.h"

static ts_err digest_file(FILE *in, uint32_t chunk, uint64_t *size, uint8_t **digests,
                          uint32_t *count)
{
    uint8_t *buf = malloc(chunk);
    uint8_t *dig = NULL;
    uint32_t n = 0;
    uint64_t total = 0;
    ts_err rv = buf == NULL ? ts_error_set(TS_ERR_NOMEM, "no memory for a chunk") : TS_OK;
    while (rv == TS_OK) {
        size_t got = fread(buf, 1, chunk, in);
        if (got == 0) {
            if (ferror(in)) {
                rv = ts_error_set(TS_ERR_IO, "cannot read the image: %s", strerror(errno));
            }
            break;
        }
        if (n == TS_FW_CHUNKS_MAX) {
            rv = ts_error_set(TS_ERR_LIMIT, "the image has more than %u chunks", TS_FW_CHUNKS_MAX);
            break;
        }
        uint8_t *grown = realloc(dig, ((size_t)n + 1) * TS_FW_DIGEST_LEN);
        if (grown == NULL) {
            rv = ts_error_set(TS_ERR_NOMEM, "no memory for the chunk digests");
            break;
        }
        dig = grown;
        if (EVP_Digest(buf, got, dig + (size_t)n * TS_FW_DIGEST_LEN, NULL, EVP_sha256(), NULL) !=
            1) {
            rv = ts_error_set_openssl(TS_ERR_CRYPTO, "cannot hash a chunk");
        }
        n++;
        total += got;
    }
    free(buf);
    if (rv != TS_OK) {
        free(dig);
        return rv;
    }
    *size = total;
    *digests = dig;
    *count = n;
    return TS_OK;
}

static void put_be(uint8_t *out, uint64_t v, int n)
{
    for (int i = n - 1; i >= 0; i--) {
        out[i] = (uint8_t)v;
        v >>= 8;
    }
}

/* The payload: the image copied from in, or each chunk sealed with gcm when it is set. */
static ts_err write_payload(FILE *in, FILE *out, const char *tmp, uint64_t size, uint32_t chunk,
                            uint32_t chunks, EVP_CIPHER_CTX *gcm)
{
    size_t cap = gcm != NULL ? chunk : 16384;
    uint8_t *buf = malloc(cap);
    uint8_t *sealed = gcm != NULL ? malloc((size_t)chunk + TS_FW_TAG_LEN) : NULL;
    ts_err rv = TS_OK;
    if (buf == NULL || (gcm != NULL && sealed == NULL)) {
        rv = ts_error_set(TS_ERR_NOMEM, "no memory for a chunk");
    }
    if (rv == TS_OK && fseek(in, 0, SEEK_SET) != 0) {
        rv = ts_error_set(TS_ERR_IO, "cannot rewind the image: %s", strerror(errno));
    }
    uint64_t copied = 0;
    uint32_t index = 0;
    while (rv == TS_OK) {
        size_t got = fread(buf, 1, cap, in);
        if (got == 0) {
            break;
        }
        copied += got;
        const uint8_t *data = buf;
        size_t len = got;
        if (gcm != NULL) {
            if (index >= chunks || fw_chunk_seal(gcm, index, chunks, buf, got, sealed) != 0) {
                rv = ts_error_set_openssl(TS_ERR_CRYPTO, "cannot encrypt chunk %u", index);
                break;
            }
            index++;
            data = sealed;
            len = got + TS_FW_TAG_LEN;
        }
        if (fwrite(data, 1, len, out) != len) {
            rv = ts_error_set(TS_ERR_IO, "cannot write %s: %s", tmp, strerror(errno));
        }
    }
    if (rv == TS_OK && (copied != size || (gcm != NULL && index != chunks))) {
        rv = ts_error_set(TS_ERR_IO, "the image changed while it was signed");
    }
    if (sealed != NULL) {
        OPENSSL_cleanse(sealed, (size_t)chunk + TS_FW_TAG_LEN);
    }
    free(sealed);
    if (buf != NULL) {
        OPENSSL_cleanse(buf, cap);
    }
    free(buf);
    return rv;
}

/* Header, manifest and payload into out_path through a temporary file. */
static ts_err write_out(const char *out_path, const unsigned char *der, size_t der_len, FILE *in,
                        const ts_fw_info *info, EVP_CIPHER_CTX *gcm)
{
    uint8_t hdr[TS_FW_HEADER_LEN];
    memcpy(hdr, TS_FW_MAGIC, 4);
    put_be(hdr + 4, TS_FW_FORMAT, 2);
    put_be(hdr + 6, 0, 2);
    put_be(hdr + 8, (uint64_t)der_len, 4);
    put_be(hdr + 12, info->wire_size, 8);
    size_t plen = strlen(out_path);
    char *tmp = malloc(plen + 8);
    if (tmp == NULL) {
        return ts_error_set(TS_ERR_NOMEM, "no memory");
    }
    memcpy(tmp, out_path, plen);
    memcpy(tmp + plen, ".tmp", 5);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    FILE *out = fd >= 0 ? fdopen(fd, "wb") : NULL;
    ts_err rv = TS_OK;
    if (out == NULL) {
        rv = ts_error_set(TS_ERR_IO, "cannot create %s: %s", tmp, strerror(errno));
        if (fd >= 0) {
            close(fd);
        }
        free(tmp);
        return rv;
    }
    if (fwrite(hdr, 1, sizeof hdr, out) != sizeof hdr || fwrite(der, 1, der_len, out) != der_len) {
        rv = ts_error_set(TS_ERR_IO, "cannot write %s: %s", tmp, strerror(errno));
    }
    if (rv == TS_OK) {
        rv = write_payload(in, out, tmp, info->size, info->chunk_size, info->chunks, gcm);
    }
    if (rv == TS_OK && (fflush(out) != 0 || fsync(fileno(out)) != 0)) {
        rv = ts_error_set(TS_ERR_IO, "cannot write %s: %s", tmp, strerror(errno));
    }
    if (fclose(out) != 0 && rv == TS_OK) {
        rv = ts_error_set(TS_ERR_IO, "cannot write %s: %s", tmp, strerror(errno));
    }
    if (rv == TS_OK && rename(tmp, out_path) != 0) {
        rv = ts_error_set(TS_ERR_IO, "cannot rename %s: %s", tmp, strerror(errno));
    }
    if (rv != TS_OK) {
        unlink(tmp);
    }
    free(tmp);
    return rv;
}

ts_err ts_fw_sign_file(const ts_fw_sign_params *p, const char *in_path, const char *out_path)
{
    if (p == NULL || p->key == NULL || p->cert == NULL || p->hw == NULL || in_path == NULL ||
        out_path == NULL) {
        return ts_error_set(TS_ERR_INVALID, "signing needs a key, a certificate, a hardware id, "
                                            "an image and an output");
    }
    uint32_t chunk = p->chunk_size != 0 ? p->chunk_size : TS_FW_CHUNK_DEFAULT;
    if (chunk < TS_FW_CHUNK_MIN || chunk > TS_FW_CHUNK_MAX) {
        return ts_error_set(TS_ERR_INVALID, "a chunk size must be %u..%u", TS_FW_CHUNK_MIN,
                            TS_FW_CHUNK_MAX);
    }
    if (p->version > INT64_MAX || p->seq > INT64_MAX || p->min_version > INT64_MAX) {
        return ts_error_set(TS_ERR_INVALID, "versions and sequences are at most 2^63-1");
    }
    if (p->depends_count > TS_FW_DEPENDS_MAX || (p->depends_count > 0 && p->depends == NULL)) {
        return ts_error_set(TS_ERR_INVALID, "at most %d dependencies", TS_FW_DEPENDS_MAX);
    }
    for (size_t i = 0; i < p->depends_count; i++) {
        if (p->depends[i].min_version > INT64_MAX) {
            return ts_error_set(TS_ERR_INVALID, "a dependency's version is at most 2^63-1");
        }
    }
    if (p->encrypt_group != NULL && p->encrypt_to == NULL) {
        return ts_error_set(TS_ERR_INVALID, "encrypting to a fleet key needs its public key");
    }
    uint32_t eku = X509_get_extended_key_usage(p->cert);
    if (!(X509_get_extension_flags(p->cert) & EXFLAG_XKUSAGE) || !(eku & XKU_CODE_SIGN)) {
        return ts_error_set(TS_ERR_POLICY, "the signer certificate lacks EKU codeSigning");
    }
    FILE *in = fopen(in_path, "rb");
    if (in == NULL) {
        return ts_error_set(TS_ERR_IO, "cannot open %s: %s", in_path, strerror(errno));
    }
    uint64_t size = 0;
    uint8_t *digests = NULL;
    uint32_t count = 0;
    char *json = NULL;
    unsigned char *der = NULL;
    size_t der_len = 0;
    ts_fw_info info;
    fw_enc enc;
    uint8_t cek[FW_CEK_LEN];
    EVP_CIPHER_CTX *gcm = NULL;
    memset(&info, 0, sizeof info);
    memset(&enc, 0, sizeof enc);
    ts_err rv = digest_file(in, chunk, &size, &digests, &count);
    if (rv == TS_OK && size == 0) {
        rv = ts_error_set(TS_ERR_INVALID, "the image %s is empty", in_path);
    }
    info.size = size;
    info.chunk_size = chunk;
    info.chunks = count;
    info.wire_size = size;
    if (rv == TS_OK && p->encrypt_to != NULL) {
        rv = fw_enc_prepare(p, cek, &info, &enc);
        if (rv == TS_OK) {
            info.wire_size = size + (uint64_t)TS_FW_TAG_LEN * count;
            rv = fw_gcm_new(cek, 1, &gcm);
            OPENSSL_cleanse(cek, sizeof cek);
        }
    }
    if (rv == TS_OK) {
        ts_fw_info check;
        rv = fw_manifest_build(p, size, chunk, digests, count, &info, &enc, &json);
        if (rv == TS_OK) {
            rv = ts_fw_manifest_parse(json, strlen(json), &check, NULL);
        }
    }
    if (rv == TS_OK) {
        rv = ts_signed_msg_sign(json, strlen(json), p->key, p->cert, p->chain, TS_FW_MANIFEST_MAX,
                                "the manifest", &der, &der_len);
    }
    if (rv == TS_OK) {
        rv = write_out(out_path, der, der_len, in, &info, gcm);
    }
    EVP_CIPHER_CTX_free(gcm);
    OPENSSL_free(der);
    free(json);
    free(digests);
    fclose(in);
    return rv;
}
