/*
 * The streaming verifier: the manifest's signature, the signer's chain and usage, and for an
 * encrypted payload the content key (set_key). feed.c checks the payload chunk by chunk.
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
#include "fota/verify_internal.h"
#include "pki/signed_msg_internal.h"

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
    if (out->payload_len > (uint64_t)TS_FW_CHUNKS_MAX * (TS_FW_CHUNK_MAX + TS_FW_TAG_LEN)) {
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
    return ts_fw_verifier_open_ex(cms_der, cms_len, payload_len, roots, now, 0, out);
}

/* The buffers and hashing tools once the manifest is known. */
static ts_err setup_lanes(ts_fw_verifier *v)
{
    size_t wire = (size_t)v->info.chunk_size + (v->decrypt ? TS_FW_TAG_LEN : 0);
    v->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    v->stage = malloc(wire);
    int bad = v->sha256 == NULL || v->stage == NULL;
    v->lane_chunks = FW_LANE_BYTES / v->info.chunk_size;
    if (v->lane_chunks == 0) {
        v->lane_chunks = 1;
    }
    for (int i = 0; !bad && i < 2; i++) {
        v->lanes[i].md = EVP_MD_CTX_new();
        bad = v->lanes[i].md == NULL;
        if (!bad && v->decrypt) {
            v->lanes[i].plain = malloc((size_t)v->lane_chunks * v->info.chunk_size);
            bad = v->lanes[i].plain == NULL;
        }
    }
    return bad ? ts_error_set(TS_ERR_NOMEM, "no memory for a chunk") : TS_OK;
}

ts_err ts_fw_verifier_open_ex(const uint8_t *cms_der, size_t cms_len, uint64_t payload_len,
                              X509_STORE *roots, time_t now, unsigned flags, ts_fw_verifier **out)
{
    if (out != NULL) {
        *out = NULL;
    }
    if (cms_der == NULL || cms_len == 0 || cms_len > TS_FW_MANIFEST_MAX || roots == NULL ||
        out == NULL) {
        return ts_error_set(TS_ERR_INVALID, "verifying needs a manifest of 1..%u bytes and roots",
                            TS_FW_MANIFEST_MAX);
    }
    if ((flags & ~TS_FW_VERIFY_PLAIN) != 0) {
        return ts_error_set(TS_ERR_INVALID, "unknown verifier flags 0x%x", flags);
    }
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
    /* The signed JSON alone from here: the CMS structure is freed before the JSON tree is
     * built, so the two (each about the size of the digest list) are never held together. */
    char *json = NULL;
    size_t json_len = 0;
    if (rv == TS_OK) {
        X509_up_ref(m.signer);
        v->signer = m.signer;
        json_len = m.content_len;
        json = OPENSSL_memdup(m.content, json_len);
        if (json == NULL) {
            rv = ts_error_set(TS_ERR_NOMEM, "no memory for the manifest");
        }
    }
    ts_signed_msg_clear(&m);
    if (rv == TS_OK) {
        rv = fw_manifest_parse_ex(json, json_len, &v->info, &v->digests, &v->enc);
    }
    OPENSSL_free(json);
    if (rv == TS_OK) {
        v->decrypt = v->info.encrypted && !(flags & TS_FW_VERIFY_PLAIN);
        v->expect = v->decrypt ? v->info.wire_size : v->info.size;
        if (v->expect != payload_len) {
            rv = ts_error_set(TS_ERR_INVALID, "the manifest's %s %llu is not the payload's %llu",
                              v->decrypt ? "wire size" : "size", (unsigned long long)v->expect,
                              (unsigned long long)payload_len);
        }
    }
    if (rv == TS_OK) {
        rv = setup_lanes(v);
    }
    if (rv != TS_OK) {
        ts_fw_verifier_free(v);
        return rv;
    }
    *out = v;
    return TS_OK;
}

ts_err ts_fw_verifier_set_key(ts_fw_verifier *v, ts_keystore *ks, const char *label)
{
    if (v == NULL || ks == NULL || label == NULL) {
        return ts_error_set(TS_ERR_INVALID, "setting a key needs a verifier, a store and a label");
    }
    if (!v->decrypt) {
        return ts_error_set(TS_ERR_STATE, v->info.encrypted
                                              ? "the payload is verified as plaintext: no key"
                                              : "the update is not encrypted");
    }
    if (v->keyed || v->fed > 0 || v->failed) {
        return ts_error_set(TS_ERR_STATE, "the key is set before any payload, once");
    }
    uint8_t cek[FW_CEK_LEN];
    ts_err rv = fw_enc_unwrap(ks, label, &v->info, &v->enc, cek);
    for (int i = 0; rv == TS_OK && i < 2; i++) {
        rv = fw_gcm_new(cek, 0, &v->lanes[i].gcm);
    }
    OPENSSL_cleanse(cek, sizeof cek);
    if (rv != TS_OK) {
        for (int i = 0; i < 2; i++) {
            EVP_CIPHER_CTX_free(v->lanes[i].gcm);
            v->lanes[i].gcm = NULL;
        }
        return rv;
    }
    v->keyed = 1;
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

void ts_fw_verifier_free(ts_fw_verifier *v)
{
    if (v == NULL) {
        return;
    }
    fw_worker_free(v->worker);
    X509_free(v->signer);
    free(v->digests);
    if (v->stage != NULL) {
        OPENSSL_cleanse(v->stage, (size_t)v->info.chunk_size + TS_FW_TAG_LEN * v->decrypt);
        free(v->stage);
    }
    for (int i = 0; i < 2; i++) {
        EVP_CIPHER_CTX_free(v->lanes[i].gcm);
        EVP_MD_CTX_free(v->lanes[i].md);
        if (v->lanes[i].plain != NULL) {
            OPENSSL_cleanse(v->lanes[i].plain, (size_t)v->lane_chunks * v->info.chunk_size);
            free(v->lanes[i].plain);
        }
    }
    EVP_MD_free(v->sha256);
    OPENSSL_cleanse(&v->enc, sizeof v->enc);
    free(v);
}
