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

struct ts_fw_verifier {
    CMS_ContentInfo *cms;
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

/* The next TLV at *p (before end), through OpenSSL's decoder; its content starts at *p after. */
static int next_tlv(const unsigned char **p, const unsigned char *end, long *len, int *tag,
                    int *cls)
{
    if (*p >= end) {
        return 0;
    }
    int r = ASN1_get_object(p, len, tag, cls, end - *p);
    return (r & 0x80) == 0 && *len >= 0 && *len <= end - *p;
}

/* Whether the TLV content at p of len bytes is the INTEGER value 1. */
static int is_one(const unsigned char *p, long len, int tag, int cls)
{
    return tag == V_ASN1_INTEGER && cls == V_ASN1_UNIVERSAL && len == 1 && p[0] == 1;
}

/*
 * What the signature does not cover must still be exactly what the signer wrote: the encoding is
 * canonical DER (re-encoding gives the same bytes) and both unsigned version fields, of the
 * SignedData and of its one SignerInfo, are 1 (issuerAndSerialNumber, data content).
 */
static ts_err check_unsigned_parts(CMS_ContentInfo *cms, const uint8_t *der, size_t len)
{
    unsigned char *again = NULL;
    int n = i2d_CMS_ContentInfo(cms, &again);
    int same = n > 0 && (size_t)n == len && memcmp(again, der, len) == 0;
    OPENSSL_free(again);
    if (!same) {
        return ts_error_set(TS_ERR_INVALID, "the manifest is not canonical DER");
    }
    const unsigned char *p = der;
    const unsigned char *end = der + len;
    long l = 0;
    int tag = 0, cls = 0;
    /* ContentInfo SEQUENCE, contentType OID, [0], SignedData SEQUENCE, version */
    int ok = next_tlv(&p, end, &l, &tag, &cls) && next_tlv(&p, end, &l, &tag, &cls);
    p += ok ? l : 0;
    ok = ok && next_tlv(&p, end, &l, &tag, &cls) && next_tlv(&p, end, &l, &tag, &cls);
    const unsigned char *sd_end = ok ? p + l : NULL;
    ok = ok && next_tlv(&p, sd_end, &l, &tag, &cls) && is_one(p, l, tag, cls);
    p += ok ? l : 0;
    /* The last element of the SignedData is the SET of SignerInfos. */
    const unsigned char *last = NULL;
    long last_len = 0;
    while (ok && p < sd_end) {
        ok = next_tlv(&p, sd_end, &l, &tag, &cls);
        last = p;
        last_len = l;
        p += ok ? l : 0;
    }
    ok = ok && last != NULL && tag == V_ASN1_SET && cls == V_ASN1_UNIVERSAL;
    if (ok) {
        const unsigned char *si_end = last + last_len;
        p = last;
        ok = next_tlv(&p, si_end, &l, &tag, &cls) && next_tlv(&p, si_end, &l, &tag, &cls) &&
             is_one(p, l, tag, cls);
    }
    if (!ok) {
        return ts_error_set(TS_ERR_INVALID, "the manifest's SignedData or SignerInfo version "
                                            "is not 1");
    }
    return TS_OK;
}

/* The SignerInfo names its certificate by exactly the certificate's issuer bytes and serial. */
static ts_err check_signer_id(CMS_SignerInfo *si, X509 *signer)
{
    X509_NAME *issuer = NULL;
    ASN1_INTEGER *serial = NULL;
    ASN1_OCTET_STRING *keyid = NULL;
    if (CMS_SignerInfo_get0_signer_id(si, &keyid, &issuer, &serial) != 1 || issuer == NULL ||
        serial == NULL) {
        return ts_error_set(TS_ERR_AUTH, "the manifest's signer is not named by issuer and serial");
    }
    unsigned char *a = NULL;
    unsigned char *b = NULL;
    int na = i2d_X509_NAME(issuer, &a);
    int nb = i2d_X509_NAME(X509_get_issuer_name(signer), &b);
    int same = na > 0 && na == nb && memcmp(a, b, (size_t)na) == 0 &&
               ASN1_INTEGER_cmp(serial, X509_get0_serialNumber(signer)) == 0;
    OPENSSL_free(a);
    OPENSSL_free(b);
    if (!same) {
        return ts_error_set(TS_ERR_AUTH, "the manifest's signer id is not its certificate's");
    }
    return TS_OK;
}

/* The signature algorithm must match the digest and the signer's key type. */
static ts_err check_algorithms(CMS_SignerInfo *si, X509 *signer)
{
    X509_ALGOR *dig = NULL;
    X509_ALGOR *sig = NULL;
    CMS_SignerInfo_get0_algs(si, NULL, NULL, &dig, &sig);
    int dig_nid = dig != NULL ? OBJ_obj2nid(dig->algorithm) : NID_undef;
    int sig_nid = sig != NULL ? OBJ_obj2nid(sig->algorithm) : NID_undef;
    int key_nid = EVP_PKEY_get_base_id(X509_get0_pubkey(signer));
    int want_dig = NID_undef;
    int want_key = NID_undef;
    if (dig_nid != NID_sha256 && dig_nid != NID_sha384 && dig_nid != NID_sha512) {
        return ts_error_set(TS_ERR_AUTH, "the manifest's digest algorithm is not SHA-2");
    }
    if (sig_nid == NID_rsaEncryption) {
        want_dig = dig_nid;
        want_key = EVP_PKEY_RSA;
    } else if (OBJ_find_sigid_algs(sig_nid, &want_dig, &want_key) != 1) {
        want_dig = NID_undef;
    }
    if (want_dig != dig_nid || want_key != key_nid) {
        return ts_error_set(TS_ERR_AUTH, "the manifest's signature algorithm does not match its "
                                         "digest and key");
    }
    return TS_OK;
}

static ts_err check_chain(CMS_ContentInfo *cms, X509 *signer, X509_STORE *roots, time_t now)
{
    STACK_OF(X509) *certs = CMS_get1_certs(cms);
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    if (ctx == NULL || X509_STORE_CTX_init(ctx, roots, signer, certs) != 1) {
        X509_STORE_CTX_free(ctx);
        sk_X509_pop_free(certs, X509_free);
        return ts_error_set_openssl(TS_ERR_NOMEM, "cannot set up a chain check");
    }
    X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_ANY);
    X509_STORE_CTX_set_time(ctx, 0, now);
    ts_err rv = TS_OK;
    if (X509_verify_cert(ctx) != 1) {
        rv = ts_error_set(TS_ERR_AUTH, "the signer does not chain to a trusted root: %s",
                          X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
    }
    ERR_clear_error();
    X509_STORE_CTX_free(ctx);
    sk_X509_pop_free(certs, X509_free);
    if (rv == TS_OK && (!(X509_get_extension_flags(signer) & EXFLAG_XKUSAGE) ||
                        !(X509_get_extended_key_usage(signer) & XKU_CODE_SIGN))) {
        rv = ts_error_set(TS_ERR_POLICY, "the signer's certificate lacks EKU codeSigning "
                                         "(not a firmware signer)");
    }
    return rv;
}

/* One signature verifying with the carried certificate; *content is its attached JSON. */
static ts_err check_signature(ts_fw_verifier *v, char **content, size_t *content_len)
{
    if (OBJ_obj2nid(CMS_get0_type(v->cms)) != NID_pkcs7_signed ||
        OBJ_obj2nid(CMS_get0_eContentType(v->cms)) != NID_pkcs7_data) {
        return ts_error_set(TS_ERR_INVALID, "the manifest is not CMS SignedData over data");
    }
    STACK_OF(CMS_SignerInfo) *infos = CMS_get0_SignerInfos(v->cms);
    if (sk_CMS_SignerInfo_num(infos) != 1) {
        return ts_error_set(TS_ERR_AUTH, "the manifest must have exactly one signer");
    }
    BIO *out = BIO_new(BIO_s_mem());
    if (out == NULL) {
        return ts_error_set(TS_ERR_NOMEM, "no memory to verify the manifest");
    }
    ts_err rv = TS_OK;
    if (CMS_verify(v->cms, NULL, NULL, NULL, out, CMS_BINARY | CMS_NO_SIGNER_CERT_VERIFY) != 1) {
        rv = ts_error_set_openssl(TS_ERR_AUTH, "the manifest's signature does not verify");
    }
    STACK_OF(X509) *signers = rv == TS_OK ? CMS_get0_signers(v->cms) : NULL;
    if (rv == TS_OK && sk_X509_num(signers) != 1) {
        rv = ts_error_set(TS_ERR_AUTH, "the manifest does not carry its signer's certificate");
    }
    if (rv == TS_OK) {
        rv = check_algorithms(sk_CMS_SignerInfo_value(infos, 0), sk_X509_value(signers, 0));
    }
    if (rv == TS_OK) {
        rv = check_signer_id(sk_CMS_SignerInfo_value(infos, 0), sk_X509_value(signers, 0));
    }
    if (rv == TS_OK) {
        v->signer = sk_X509_value(signers, 0);
        X509_up_ref(v->signer);
        char *data = NULL;
        long n = BIO_get_mem_data(out, &data);
        *content = n > 0 ? malloc((size_t)n) : NULL;
        if (*content == NULL) {
            rv = ts_error_set(TS_ERR_INVALID, "the manifest has no content");
        } else {
            memcpy(*content, data, (size_t)n);
            *content_len = (size_t)n;
        }
    }
    sk_X509_free(signers);
    BIO_free(out);
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
    const unsigned char *p = cms_der;
    v->cms = d2i_CMS_ContentInfo(NULL, &p, (long)cms_len);
    ts_err rv = TS_OK;
    if (v->cms == NULL || p != cms_der + cms_len) {
        rv = ts_error_set_openssl(TS_ERR_INVALID, "the manifest is not one DER CMS message");
    }
    char *json = NULL;
    size_t json_len = 0;
    if (rv == TS_OK) {
        rv = check_unsigned_parts(v->cms, cms_der, cms_len);
    }
    if (rv == TS_OK) {
        rv = check_signature(v, &json, &json_len);
    }
    if (rv == TS_OK) {
        rv = check_chain(v->cms, v->signer, roots, now);
    }
    if (rv == TS_OK) {
        rv = ts_fw_manifest_parse(json, json_len, &v->info, &v->digests);
    }
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
    free(json);
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
    CMS_ContentInfo_free(v->cms);
    free(v->digests);
    if (v->buf != NULL) {
        OPENSSL_cleanse(v->buf, v->info.chunk_size);
        free(v->buf);
    }
    free(v);
}
