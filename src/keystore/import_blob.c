/*
 * The import blob's format (docs/import.md): DER through OpenSSL's ASN.1 templates, the strict
 * parser for blobs from outside, the signature over ImportTBS and the HKDF info.
 *
 *   TesseraKeyImport ::= SEQUENCE { tbs ImportTBS, signature OCTET STRING }
 *   ImportTBS ::= SEQUENCE { version INTEGER, recipientUid OCTET STRING,
 *       recipientLabel UTF8String, counter INTEGER, label UTF8String,
 *       curve OBJECT IDENTIFIER, ephemeralPoint OCTET STRING, publicPoint OCTET STRING,
 *       wrappedKey OCTET STRING, signatureDigest OBJECT IDENTIFIER }
 */
#include <string.h>

#include <openssl/asn1t.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/objects.h>

#include "common/error_internal.h"
#include "keystore/import_internal.h"

typedef struct ts_asn1_import_tbs {
    ASN1_INTEGER *version;
    ASN1_OCTET_STRING *recipient_uid;
    ASN1_UTF8STRING *recipient_label;
    ASN1_INTEGER *counter;
    ASN1_UTF8STRING *label;
    ASN1_OBJECT *curve;
    ASN1_OCTET_STRING *ephemeral_point;
    ASN1_OCTET_STRING *public_point;
    ASN1_OCTET_STRING *wrapped_key;
    ASN1_OBJECT *signature_digest;
} ts_asn1_import_tbs;

typedef struct ts_asn1_import {
    ts_asn1_import_tbs *tbs;
    ASN1_OCTET_STRING *signature;
} ts_asn1_import;

ASN1_SEQUENCE(ts_asn1_import_tbs) =
    {
        ASN1_SIMPLE(ts_asn1_import_tbs, version, ASN1_INTEGER),
        ASN1_SIMPLE(ts_asn1_import_tbs, recipient_uid, ASN1_OCTET_STRING),
        ASN1_SIMPLE(ts_asn1_import_tbs, recipient_label, ASN1_UTF8STRING),
        ASN1_SIMPLE(ts_asn1_import_tbs, counter, ASN1_INTEGER),
        ASN1_SIMPLE(ts_asn1_import_tbs, label, ASN1_UTF8STRING),
        ASN1_SIMPLE(ts_asn1_import_tbs, curve, ASN1_OBJECT),
        ASN1_SIMPLE(ts_asn1_import_tbs, ephemeral_point, ASN1_OCTET_STRING),
        ASN1_SIMPLE(ts_asn1_import_tbs, public_point, ASN1_OCTET_STRING),
        ASN1_SIMPLE(ts_asn1_import_tbs, wrapped_key, ASN1_OCTET_STRING),
        ASN1_SIMPLE(ts_asn1_import_tbs, signature_digest, ASN1_OBJECT),
} static_ASN1_SEQUENCE_END(ts_asn1_import_tbs)

        ASN1_SEQUENCE(ts_asn1_import) =
            {
                ASN1_SIMPLE(ts_asn1_import, tbs, ts_asn1_import_tbs),
                ASN1_SIMPLE(ts_asn1_import, signature, ASN1_OCTET_STRING),
} static_ASN1_SEQUENCE_END(ts_asn1_import)

#define TBS_ITEM    ASN1_ITEM_rptr(ts_asn1_import_tbs)
#define IMPORT_ITEM ASN1_ITEM_rptr(ts_asn1_import)

                static const char import_context[] = "tessera key import v1";

size_t ts_import_point_len(ts_curve curve)
{
    return curve == TS_CURVE_P384 ? 97 : 65;
}

static int curve_nid(ts_curve curve)
{
    return curve == TS_CURVE_P384 ? NID_secp384r1 : NID_X9_62_prime256v1;
}

/* --- parsing -------------------------------------------------------------------------------- */

/* A UTF8String field that must be a valid label; copied NUL-terminated into out. */
static ts_err label_field(const ASN1_UTF8STRING *s, const char *field, char out[TS_LABEL_MAX + 1])
{
    int n = ASN1_STRING_length(s);
    const unsigned char *p = ASN1_STRING_get0_data(s);

    if (n < 1 || n > TS_LABEL_MAX) {
        return ts_error_set(TS_ERR_CORRUPT, "%s is %d bytes, not 1 to %d", field, n, TS_LABEL_MAX);
    }
    if (memchr(p, '\0', (size_t)n) != NULL) {
        return ts_error_set(TS_ERR_CORRUPT, "%s holds a NUL byte", field);
    }
    memcpy(out, p, (size_t)n);
    out[n] = '\0';
    if (ts_label_check(out) != TS_OK) {
        /* The label check's own words say what is wrong with it. */
        return ts_error_prefix(TS_ERR_CORRUPT, "%s", field);
    }
    return TS_OK;
}

/* An uncompressed point on curve (X9.62 section 4.3.6), copied to out. */
static ts_err point_field(const ASN1_OCTET_STRING *s, const char *field, ts_curve curve,
                          uint8_t out[TS_POINT_MAX], size_t *out_len)
{
    int n = ASN1_STRING_length(s);
    const unsigned char *p = ASN1_STRING_get0_data(s);
    EVP_PKEY *pkey = NULL;

    if (n < 1 || (size_t)n != ts_import_point_len(curve) || p[0] != 0x04) {
        return ts_error_set(TS_ERR_CORRUPT, "%s is not an uncompressed %s point (%d bytes)", field,
                            ts_curve_name(curve), n);
    }
    /* Loading the point checks that it lies on the curve. */
    if (ts_pkey_from_point(curve, p, (size_t)n, &pkey) != TS_OK) {
        return ts_error_set(TS_ERR_CORRUPT, "%s is not a point on %s", field, ts_curve_name(curve));
    }
    EVP_PKEY_free(pkey);
    memcpy(out, p, (size_t)n);
    *out_len = (size_t)n;
    return TS_OK;
}

/* The signature must be one DER ECDSA-Sig-Value (SEC 1 section C.5) and nothing else. */
static ts_err signature_field(const ASN1_OCTET_STRING *s)
{
    int n = ASN1_STRING_length(s);
    const unsigned char *p = ASN1_STRING_get0_data(s);
    unsigned char *again = NULL;
    ECDSA_SIG *sig = NULL;
    int again_len;
    ts_err rv = TS_OK;

    if (n < TS_IMPORT_SIGNATURE_MIN || n > TS_SIGNATURE_MAX) {
        return ts_error_set(TS_ERR_CORRUPT, "signature is %d bytes, not %d to %d", n,
                            TS_IMPORT_SIGNATURE_MIN, TS_SIGNATURE_MAX);
    }
    sig = d2i_ECDSA_SIG(NULL, &p, n);
    if (sig == NULL || p != ASN1_STRING_get0_data(s) + n) {
        rv = ts_error_set_openssl(TS_ERR_CORRUPT, "signature is not a DER ECDSA signature");
        goto done;
    }
    again_len = i2d_ECDSA_SIG(sig, &again);
    if (again_len != n || memcmp(again, ASN1_STRING_get0_data(s), (size_t)n) != 0) {
        rv = ts_error_set_openssl(TS_ERR_CORRUPT, "signature is not in DER");
    }
done:
    OPENSSL_free(again);
    ECDSA_SIG_free(sig);
    return rv;
}

static ts_err tbs_fields(const ts_asn1_import_tbs *t, ts_import_fields *f)
{
    int64_t version = 0;
    ts_err rv;

    if (ASN1_INTEGER_get_int64(&version, t->version) != 1 || version != TS_IMPORT_VERSION) {
        ERR_clear_error();
        return ts_error_set(TS_ERR_CORRUPT, "version is not %d", TS_IMPORT_VERSION);
    }
    if (ASN1_STRING_length(t->recipient_uid) != TS_KEYSTORE_UID_LEN) {
        return ts_error_set(TS_ERR_CORRUPT, "recipientUid is %d bytes, not %d",
                            ASN1_STRING_length(t->recipient_uid), TS_KEYSTORE_UID_LEN);
    }
    memcpy(f->uid, ASN1_STRING_get0_data(t->recipient_uid), TS_KEYSTORE_UID_LEN);
    rv = label_field(t->recipient_label, "recipientLabel", f->recipient_label);
    if (rv != TS_OK) {
        return rv;
    }
    /* ASN1_INTEGER_get_uint64 refuses negative values and values over 2^64 - 1. */
    if (ASN1_INTEGER_get_uint64(&f->counter, t->counter) != 1 || f->counter == 0) {
        ERR_clear_error();
        return ts_error_set(TS_ERR_CORRUPT, "counter is not between 1 and 2^64 - 1");
    }
    rv = label_field(t->label, "label", f->label);
    if (rv != TS_OK) {
        return rv;
    }
    switch (OBJ_obj2nid(t->curve)) {
    case NID_X9_62_prime256v1:
        f->curve = TS_CURVE_P256;
        break;
    case NID_secp384r1:
        f->curve = TS_CURVE_P384;
        break;
    default:
        return ts_error_set(TS_ERR_CORRUPT, "curve is not prime256v1 or secp384r1");
    }
    rv = point_field(t->ephemeral_point, "ephemeralPoint", f->curve, f->ephemeral_point,
                     &f->ephemeral_point_len);
    if (rv != TS_OK) {
        return rv;
    }
    rv = point_field(t->public_point, "publicPoint", f->curve, f->public_point,
                     &f->public_point_len);
    if (rv != TS_OK) {
        return rv;
    }
    /* RFC 5649 section 4.1: the output is n + 1 64-bit blocks with n >= 1. */
    int wrapped_len = ASN1_STRING_length(t->wrapped_key);
    if (wrapped_len < TS_IMPORT_WRAPPED_MIN || wrapped_len > TS_IMPORT_WRAPPED_MAX ||
        wrapped_len % 8 != 0) {
        return ts_error_set(TS_ERR_CORRUPT,
                            "wrappedKey is %d bytes, not a multiple of 8 from %d to %d",
                            wrapped_len, TS_IMPORT_WRAPPED_MIN, TS_IMPORT_WRAPPED_MAX);
    }
    f->wrapped = ASN1_STRING_get0_data(t->wrapped_key);
    f->wrapped_len = (size_t)wrapped_len;
    switch (OBJ_obj2nid(t->signature_digest)) {
    case NID_sha256:
        f->digest = "SHA256";
        break;
    case NID_sha384:
        f->digest = "SHA384";
        break;
    default:
        return ts_error_set(TS_ERR_CORRUPT, "signatureDigest is not sha256 or sha384");
    }
    return TS_OK;
}

ts_err ts_import_blob_parse(const uint8_t *der, size_t len, ts_import_blob **out)
{
    ts_import_blob *blob = NULL;
    ts_asn1_import *asn1 = NULL;
    const unsigned char *p = der;
    unsigned char *again = NULL;
    int tbs_len, again_len;
    ts_err rv = TS_OK;

    *out = NULL;
    if (der == NULL || len == 0) {
        return ts_error_set(TS_ERR_CORRUPT, "import blob: empty");
    }
    if (len > TS_IMPORT_BLOB_MAX) {
        return ts_error_set(TS_ERR_CORRUPT, "import blob: %zu bytes is over the %d allowed", len,
                            TS_IMPORT_BLOB_MAX);
    }
    blob = OPENSSL_zalloc(sizeof *blob);
    if (blob == NULL) {
        return ts_error_set(TS_ERR_NOMEM, "out of memory parsing an import blob");
    }
    asn1 = (ts_asn1_import *)ASN1_item_d2i(NULL, &p, (long)len, IMPORT_ITEM);
    blob->asn1 = asn1;
    if (asn1 == NULL) {
        rv = ts_error_set_openssl(TS_ERR_CORRUPT, "import blob: not a TesseraKeyImport");
        goto done;
    }
    if ((size_t)(p - der) != len) {
        rv = ts_error_set(TS_ERR_CORRUPT, "import blob: %zu trailing bytes after the structure",
                          len - (size_t)(p - der));
        goto done;
    }
    /*
     * X.690 section 10: only DER. The decoder also takes BER (indefinite lengths, long length
     * forms, constructed strings); encoding again and comparing refuses all of it, and makes
     * the signed bytes below exactly those that came in.
     */
    again_len = ASN1_item_i2d((const ASN1_VALUE *)asn1, &again, IMPORT_ITEM);
    if (again_len < 0 || (size_t)again_len != len || memcmp(again, der, len) != 0) {
        rv = ts_error_set_openssl(TS_ERR_CORRUPT, "import blob: not in DER");
        goto done;
    }
    rv = tbs_fields(asn1->tbs, &blob->fields);
    if (rv != TS_OK) {
        ts_error_prefix(rv, "import blob");
        goto done;
    }
    rv = signature_field(asn1->signature);
    if (rv != TS_OK) {
        ts_error_prefix(rv, "import blob");
        goto done;
    }
    tbs_len = ASN1_item_i2d((const ASN1_VALUE *)asn1->tbs, &blob->tbs, TBS_ITEM);
    if (tbs_len <= 0) {
        rv = ts_error_set_openssl(TS_ERR_NOMEM, "import blob: cannot encode ImportTBS");
        goto done;
    }
    blob->tbs_len = (size_t)tbs_len;
    blob->signature = asn1->signature->data;
    blob->signature_len = (size_t)asn1->signature->length;
    *out = blob;
    blob = NULL;
done:
    OPENSSL_free(again);
    ts_import_blob_free(blob);
    return rv;
}

void ts_import_blob_free(ts_import_blob *blob)
{
    if (blob == NULL) {
        return;
    }
    ASN1_item_free(blob->asn1, IMPORT_ITEM);
    OPENSSL_free(blob->tbs);
    OPENSSL_free(blob);
}

/* --- encoding and signing ------------------------------------------------------------------- */

static int set_string(ASN1_STRING *s, const void *data, size_t len)
{
    return ASN1_STRING_set(s, data, (int)len);
}

static ts_err tbs_fill(ts_asn1_import_tbs *t, const ts_import_fields *f)
{
    int ok = ASN1_INTEGER_set_int64(t->version, TS_IMPORT_VERSION) == 1 &&
             set_string(t->recipient_uid, f->uid, TS_KEYSTORE_UID_LEN) == 1 &&
             set_string(t->recipient_label, f->recipient_label, strlen(f->recipient_label)) == 1 &&
             ASN1_INTEGER_set_uint64(t->counter, f->counter) == 1 &&
             set_string(t->label, f->label, strlen(f->label)) == 1 &&
             set_string(t->ephemeral_point, f->ephemeral_point, f->ephemeral_point_len) == 1 &&
             set_string(t->public_point, f->public_point, f->public_point_len) == 1 &&
             set_string(t->wrapped_key, f->wrapped, f->wrapped_len) == 1;
    if (!ok) {
        return ts_error_set_openssl(TS_ERR_NOMEM, "out of memory encoding an import blob");
    }
    /* Objects from OBJ_nid2obj() are static: freeing them with the structure does nothing. */
    ASN1_OBJECT_free(t->curve);
    t->curve = OBJ_nid2obj(curve_nid(f->curve));
    ASN1_OBJECT_free(t->signature_digest);
    t->signature_digest = OBJ_nid2obj(strcmp(f->digest, "SHA384") == 0 ? NID_sha384 : NID_sha256);
    return TS_OK;
}

ts_err ts_import_blob_encode(const ts_import_fields *f, EVP_PKEY *sender, uint8_t **der,
                             size_t *der_len)
{
    ts_asn1_import *asn1 = NULL;
    EVP_MD_CTX *md = NULL;
    unsigned char *tbs = NULL, *sig = NULL;
    size_t sig_len = 0;
    int tbs_len, n;
    ts_err rv;

    *der = NULL;
    *der_len = 0;
    asn1 = (ts_asn1_import *)ASN1_item_new(IMPORT_ITEM);
    if (asn1 == NULL) {
        return ts_error_set_openssl(TS_ERR_NOMEM, "out of memory encoding an import blob");
    }
    rv = tbs_fill(asn1->tbs, f);
    if (rv != TS_OK) {
        goto done;
    }
    tbs_len = ASN1_item_i2d((const ASN1_VALUE *)asn1->tbs, &tbs, TBS_ITEM);
    if (tbs_len <= 0) {
        rv = ts_error_set_openssl(TS_ERR_NOMEM, "cannot encode ImportTBS");
        goto done;
    }
    /*
     * The sender may be a key-store key behind the provider: EVP_DigestSign finds the signature
     * implementation of the key's own provider, and nothing here touches its private part.
     */
    md = EVP_MD_CTX_new();
    if (md == NULL || EVP_DigestSignInit_ex(md, NULL, f->digest, NULL, NULL, sender, NULL) != 1 ||
        EVP_DigestSign(md, NULL, &sig_len, tbs, (size_t)tbs_len) != 1) {
        rv = ts_error_set_openssl(TS_ERR_CRYPTO, "cannot sign the import blob with the sender key");
        goto done;
    }
    sig = OPENSSL_malloc(sig_len);
    if (sig == NULL) {
        rv = ts_error_set(TS_ERR_NOMEM, "out of memory signing an import blob");
        goto done;
    }
    if (EVP_DigestSign(md, sig, &sig_len, tbs, (size_t)tbs_len) != 1) {
        rv = ts_error_set_openssl(TS_ERR_CRYPTO, "cannot sign the import blob with the sender key");
        goto done;
    }
    if (set_string(asn1->signature, sig, sig_len) != 1) {
        rv = ts_error_set_openssl(TS_ERR_NOMEM, "out of memory encoding an import blob");
        goto done;
    }
    n = ASN1_item_i2d((const ASN1_VALUE *)asn1, der, IMPORT_ITEM);
    if (n <= 0) {
        rv = ts_error_set_openssl(TS_ERR_NOMEM, "cannot encode the import blob");
        goto done;
    }
    *der_len = (size_t)n;
done:
    OPENSSL_free(sig);
    OPENSSL_free(tbs);
    EVP_MD_CTX_free(md);
    ASN1_item_free((ASN1_VALUE *)asn1, IMPORT_ITEM);
    return rv;
}

ts_err ts_import_blob_verify(const ts_import_blob *blob, const EVP_PKEY *sender)
{
    EVP_MD_CTX *md = NULL;
    ts_err rv = TS_OK;

    if (!EVP_PKEY_is_a(sender, "EC")) {
        return ts_error_set(TS_ERR_AUTH, "import: the trusted sender key is not an EC key");
    }
    md = EVP_MD_CTX_new();
    if (md == NULL) {
        return ts_error_set(TS_ERR_NOMEM, "out of memory checking an import blob");
    }
    /* EVP_DigestVerifyInit_ex takes a non-const key only to hold a reference to it. */
    if (EVP_DigestVerifyInit_ex(md, NULL, blob->fields.digest, NULL, NULL, (EVP_PKEY *)sender,
                                NULL) != 1) {
        rv = ts_error_set_openssl(TS_ERR_AUTH, "import: cannot check signatures with the trusted "
                                               "sender key");
        goto done;
    }
    if (EVP_DigestVerify(md, blob->signature, blob->signature_len, blob->tbs, blob->tbs_len) != 1) {
        rv = ts_error_set_openssl(TS_ERR_AUTH, "import: the blob's signature does not verify with "
                                               "the trusted sender key");
    }
done:
    EVP_MD_CTX_free(md);
    return rv;
}

/* --- HKDF info ------------------------------------------------------------------------------ */

/* Appends len bytes of data at *at; the caller has checked the room. */
static void put(uint8_t *info, size_t *at, const void *data, size_t len)
{
    memcpy(info + *at, data, len);
    *at += len;
}

/* A field after a one-byte length, so that no two different sets of fields give the same info. */
static void put_prefixed(uint8_t *info, size_t *at, const void *data, size_t len)
{
    info[(*at)++] = (uint8_t)len;
    put(info, at, data, len);
}

ts_err ts_import_info(const ts_import_fields *f, uint8_t *info, size_t size, size_t *len)
{
    size_t rlen = strlen(f->recipient_label), llen = strlen(f->label), at = 0;
    size_t need = sizeof import_context - 1 + TS_KEYSTORE_UID_LEN + 8 + 1 + rlen + 1 + llen + 1 +
                  f->ephemeral_point_len;
    uint8_t counter[8];

    if (rlen > TS_LABEL_MAX || llen > TS_LABEL_MAX || f->ephemeral_point_len > TS_POINT_MAX ||
        need > size) {
        return ts_error_set(TS_ERR_INVALID, "import: the fields do not fit the HKDF info");
    }
    for (int i = 0; i < 8; i++) {
        counter[i] = (uint8_t)(f->counter >> (56 - 8 * i));
    }
    put(info, &at, import_context, sizeof import_context - 1);
    put(info, &at, f->uid, TS_KEYSTORE_UID_LEN);
    put(info, &at, counter, sizeof counter);
    put_prefixed(info, &at, f->recipient_label, rlen);
    put_prefixed(info, &at, f->label, llen);
    put_prefixed(info, &at, f->ephemeral_point, f->ephemeral_point_len);
    *len = at;
    return TS_OK;
}

/* --- points --------------------------------------------------------------------------------- */

ts_err ts_import_point_of(const EVP_PKEY *pkey, ts_curve curve, uint8_t point[TS_POINT_MAX],
                          size_t *len)
{
    uint8_t raw[TS_POINT_MAX];
    size_t raw_len = 0;
    EC_GROUP *group = NULL;
    EC_POINT *p = NULL;
    ts_err rv = ts_pkey_to_point(pkey, raw, sizeof raw, &raw_len);

    if (rv != TS_OK) {
        return rv;
    }
    if (raw_len == ts_import_point_len(curve) && raw[0] == 0x04) {
        memcpy(point, raw, raw_len);
        *len = raw_len;
        return TS_OK;
    }
    /* A key that keeps its point compressed: decode and encode it uncompressed. */
    group = EC_GROUP_new_by_curve_name(curve_nid(curve));
    p = group != NULL ? EC_POINT_new(group) : NULL;
    if (p == NULL || EC_POINT_oct2point(group, p, raw, raw_len, NULL) != 1) {
        rv = ts_error_set_openssl(TS_ERR_INVALID, "the key's public point is not on %s",
                                  ts_curve_name(curve));
        goto done;
    }
    *len = EC_POINT_point2oct(group, p, POINT_CONVERSION_UNCOMPRESSED, point, TS_POINT_MAX, NULL);
    if (*len != ts_import_point_len(curve)) {
        rv = ts_error_set_openssl(TS_ERR_INVALID, "cannot encode the key's public point");
    }
done:
    EC_POINT_free(p);
    EC_GROUP_free(group);
    return rv;
}
