/*
 * The streaming verifier: the manifest's signature, the signer's chain and usage, then the payload
 * chunk by chunk. A chunk is buffered (at most chunk_size bytes) and released only after its
 * SHA-256 matched the manifest; after any failure the verifier refuses everything.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/asn1.h>
#include <openssl/cms.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/x509v3.h>

#include "common/error_internal.h"
#include "fota/fota_internal.h"
#include "pki/signed_msg_internal.h"

struct ts_fw_verifier {
    X509 *signer; /* a reference */
    ts_fw_info info;
    uint8_t *digests;
    uint8_t *buf; /* one chunk */
    size_t fill;
    uint32_t next; /* index of the chunk being filled */
    uint64_t fed;
    int failed;
};

static uint64_t get_be(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++) {
        v = v << 8 | p[i];
    }
    return v;
}

ts_err ts_fw_header_parse(const uint8_t *buf, size_t len, ts_fw_header *out)
{
    if (buf == NULL || out == NULL || len != TS_FW_HEADER_LEN) {
        return ts_error_set(TS_ERR_INVALID, "an update file header has %d bytes, not %zu",
                            TS_FW_HEADER_LEN, len);
    }
    if (memcmp(buf, TS_FW_MAGIC, 4) != 0) {
        return ts_error_set(TS_ERR_INVALID, "not an update file (no TSFW magic)");
    }
    out->format = (uint16_t)get_be(buf + 4, 2);
    if (out->format != TS_FW_FORMAT || get_be(buf + 6, 2) != 0) {
        return ts_error_set(TS_ERR_UNSUPPORTED, "update file format %u is not %d", out->format,
                            TS_FW_FORMAT);
    }
    out->manifest_len = (uint32_t)get_be(buf + 8, 4);
    out->payload_len = get_be(buf + 12, 8);
    if (out->manifest_len == 0 || out->manifest_len > TS_FW_MANIFEST_MAX) {
        return ts_error_set(TS_ERR_INVALID, "a manifest of %u bytes is outside 1..%u",
                            out->manifest_len, TS_FW_MANIFEST_MAX);
    }
    if (out->payload_len > (uint64_t)TS_FW_CHUNKS_MAX * TS_FW_CHUNK_MAX) {
        return ts_error_set(TS_ERR_INVALID, "a payload of %llu bytes is too large",
                            (unsigned long long)out->payload_len);
    }
    return TS_OK;
}

/* The signer's chain to roots, and its usage: a firmware signer (EKU codeSigning). */
static ts_err check_signer(const ts_signed_msg *m, X509_STORE *roots, time_t now)
{
    ts_err rv = ts_signed_msg_chain(m, roots, now, 0);
    if (rv == TS_OK && (!(X509_get_extension_flags(m->signer) & EXFLAG_XKUSAGE) ||
                        !(X509_get_extended_key_usage(m->signer) & XKU_CODE_SIGN))) {
        rv = ts_error_set(TS_ERR_POLICY, "the signer's certificate lacks EKU codeSigning "
                                         "(not a firmware signer)");
    }
    return rv;
}

ts_err ts_fw_verifier_open(const uint8_t *cms_der, size_t cms_len, uint64_t payload_len,
                           X509_STORE *roots, time_t now, ts_fw_verifier **out)
{
    if (cms_der == NULL || cms_len == 0 || cms_len > TS_FW_MANIFEST_MAX || roots == NULL ||
        out == NULL) {
        return ts_error_set(TS_ERR_INVALID, "verifying needs a manifest of 1..%u bytes and roots",
                            TS_FW_MANIFEST_MAX);
    }
    *out = NULL;
    ts_fw_verifier *v = calloc(1, sizeof *v);
    if (v == NULL) {
        return ts_error_set(TS_ERR_NOMEM, "no memory for a verifier");
    }
    ts_signed_msg m;
    ts_err rv = ts_signed_msg_parse(cms_der, cms_len, TS_FW_MANIFEST_MAX, "the manifest", &m);
    if (rv == TS_OK) {
        rv = ts_signed_msg_verify(&m, "the manifest");
    }
    if (rv == TS_OK) {
        rv = check_signer(&m, roots, now);
    }
    if (rv == TS_OK) {
        X509_up_ref(m.signer);
        v->signer = m.signer;
        rv = ts_fw_manifest_parse((const char *)m.content, m.content_len, &v->info, &v->digests);
    }
    ts_signed_msg_clear(&m);
    if (rv == TS_OK && v->info.size != payload_len) {
        rv = ts_error_set(TS_ERR_INVALID, "the manifest's size %llu is not the payload's %llu",
                          (unsigned long long)v->info.size, (unsigned long long)payload_len);
    }
    if (rv == TS_OK) {
        v->buf = malloc(v->info.chunk_size);
        if (v->buf == NULL) {
            rv = ts_error_set(TS_ERR_NOMEM, "no memory for a chunk");
        }
    }
    if (rv != TS_OK) {
        ts_fw_verifier_free(v);
        return rv;
    }
    *out = v;
    return TS_OK;
}

const ts_fw_info *ts_fw_verifier_info(const ts_fw_verifier *v)
{
    return v != NULL ? &v->info : NULL;
}

X509 *ts_fw_verifier_signer(const ts_fw_verifier *v)
{
    return v != NULL ? v->signer : NULL;
}

/* The length of chunk i. */
static size_t chunk_len(const ts_fw_verifier *v, uint32_t i)
{
    uint64_t start = (uint64_t)i * v->info.chunk_size;
    uint64_t left = v->info.size - start;
    return left < v->info.chunk_size ? (size_t)left : v->info.chunk_size;
}

static ts_err check_chunk(ts_fw_verifier *v, ts_fw_release_fn release, void *ctx)
{
    uint8_t md[TS_FW_DIGEST_LEN];
    if (EVP_Digest(v->buf, v->fill, md, NULL, EVP_sha256(), NULL) != 1) {
        return ts_error_set_openssl(TS_ERR_CRYPTO, "cannot hash chunk %u", v->next);
    }
    if (CRYPTO_memcmp(md, v->digests + (size_t)v->next * TS_FW_DIGEST_LEN, sizeof md) != 0) {
        return ts_error_set(TS_ERR_AUTH, "payload chunk %u does not match its digest", v->next);
    }
    if (release != NULL && release(ctx, v->buf, v->fill) != 0) {
        return ts_error_set(TS_ERR_IO, "the receiver refused chunk %u", v->next);
    }
    v->next++;
    v->fill = 0;
    return TS_OK;
}

ts_err ts_fw_verifier_feed(ts_fw_verifier *v, const uint8_t *data, size_t len,
                           ts_fw_release_fn release, void *ctx)
{
    if (v == NULL || (data == NULL && len > 0)) {
        return ts_error_set(TS_ERR_INVALID, "feeding needs a verifier and data");
    }
    if (v->failed) {
        return ts_error_set(TS_ERR_STATE, "the update already failed verification");
    }
    if (len > v->info.size - v->fed) {
        v->failed = 1;
        return ts_error_set(TS_ERR_INVALID, "more payload than the manifest's %llu bytes",
                            (unsigned long long)v->info.size);
    }
    v->fed += len;
    while (len > 0) {
        size_t want = chunk_len(v, v->next) - v->fill;
        size_t take = len < want ? len : want;
        memcpy(v->buf + v->fill, data, take);
        v->fill += take;
        data += take;
        len -= take;
        if (v->fill == chunk_len(v, v->next)) {
            ts_err rv = check_chunk(v, release, ctx);
            if (rv != TS_OK) {
                v->failed = 1;
                OPENSSL_cleanse(v->buf, v->info.chunk_size);
                return rv;
            }
        }
    }
    return TS_OK;
}

ts_err ts_fw_verifier_finish(ts_fw_verifier *v)
{
    if (v == NULL || v->failed) {
        return ts_error_set(TS_ERR_STATE, "the update failed verification");
    }
    if (v->fed != v->info.size || v->next != v->info.chunks) {
        v->failed = 1;
        return ts_error_set(TS_ERR_INVALID, "the payload is truncated: %llu of %llu bytes",
                            (unsigned long long)v->fed, (unsigned long long)v->info.size);
    }
    return TS_OK;
}

void ts_fw_verifier_free(ts_fw_verifier *v)
{
    if (v == NULL) {
        return;
    }
    X509_free(v->signer);
    free(v->digests);
    if (v->buf != NULL) {
        OPENSSL_cleanse(v->buf, v->info.chunk_size);
        free(v->buf);
    }
    free(v);
}
