/*
 * The file format of the soft: store (soft_file_internal.h, docs/soft-store.md): ASN.1 templates
 * for the structures, AES-256-GCM for the seal, and a strict parser for untrusted bytes.
 */
#include <string.h>

#include <openssl/asn1t.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "common/error_internal.h"
#include "keystore/soft_file_internal.h"

/* --- ASN.1 templates ----------------------------------------------------------------------- */

typedef struct soft_kdf_st {
    ASN1_OCTET_STRING *salt;
    ASN1_INTEGER *n;
    ASN1_INTEGER *r;
    ASN1_INTEGER *p;
} SOFT_KDF;

typedef struct soft_header_st {
    ASN1_INTEGER *version;
    ASN1_INTEGER *kind;
    ASN1_UTF8STRING *label;
    ASN1_OCTET_STRING *uid;
    ASN1_INTEGER *curve;      /* [0] keys */
    ASN1_OCTET_STRING *point; /* [1] keys */
    ASN1_INTEGER *flags;      /* [2] data objects; keys with flags */
    ASN1_OCTET_STRING *data;  /* [3] data objects in clear */
    ASN1_INTEGER *value;      /* [4] counters */
    SOFT_KDF *kdf;            /* [5] the store file */
} SOFT_HEADER;

typedef struct soft_file_st {
    SOFT_HEADER *header;
    ASN1_OCTET_STRING *nonce;
    ASN1_OCTET_STRING *sealed;
    ASN1_OCTET_STRING *tag;
} SOFT_FILE;

typedef struct soft_tries_st {
    ASN1_INTEGER *version;
    ASN1_OCTET_STRING *uid;
    ASN1_INTEGER *failures;
} SOFT_TRIES;

/* The templates are macro tables; clang-format would fold them into one statement. */
/* clang-format off */
ASN1_SEQUENCE(SOFT_KDF) = {
    ASN1_SIMPLE(SOFT_KDF, salt, ASN1_OCTET_STRING),
    ASN1_SIMPLE(SOFT_KDF, n, ASN1_INTEGER),
    ASN1_SIMPLE(SOFT_KDF, r, ASN1_INTEGER),
    ASN1_SIMPLE(SOFT_KDF, p, ASN1_INTEGER),
} static_ASN1_SEQUENCE_END(SOFT_KDF)

ASN1_SEQUENCE(SOFT_HEADER) = {
    ASN1_SIMPLE(SOFT_HEADER, version, ASN1_INTEGER),
    ASN1_SIMPLE(SOFT_HEADER, kind, ASN1_INTEGER),
    ASN1_SIMPLE(SOFT_HEADER, label, ASN1_UTF8STRING),
    ASN1_SIMPLE(SOFT_HEADER, uid, ASN1_OCTET_STRING),
    ASN1_IMP_OPT(SOFT_HEADER, curve, ASN1_INTEGER, 0),
    ASN1_IMP_OPT(SOFT_HEADER, point, ASN1_OCTET_STRING, 1),
    ASN1_IMP_OPT(SOFT_HEADER, flags, ASN1_INTEGER, 2),
    ASN1_IMP_OPT(SOFT_HEADER, data, ASN1_OCTET_STRING, 3),
    ASN1_IMP_OPT(SOFT_HEADER, value, ASN1_INTEGER, 4),
    ASN1_IMP_OPT(SOFT_HEADER, kdf, SOFT_KDF, 5),
} static_ASN1_SEQUENCE_END(SOFT_HEADER)

ASN1_SEQUENCE(SOFT_FILE) = {
    ASN1_SIMPLE(SOFT_FILE, header, SOFT_HEADER),
    ASN1_SIMPLE(SOFT_FILE, nonce, ASN1_OCTET_STRING),
    ASN1_SIMPLE(SOFT_FILE, sealed, ASN1_OCTET_STRING),
    ASN1_SIMPLE(SOFT_FILE, tag, ASN1_OCTET_STRING),
} static_ASN1_SEQUENCE_END(SOFT_FILE)

ASN1_SEQUENCE(SOFT_TRIES) = {
    ASN1_SIMPLE(SOFT_TRIES, version, ASN1_INTEGER),
    ASN1_SIMPLE(SOFT_TRIES, uid, ASN1_OCTET_STRING),
    ASN1_SIMPLE(SOFT_TRIES, failures, ASN1_INTEGER),
} static_ASN1_SEQUENCE_END(SOFT_TRIES)

IMPLEMENT_STATIC_ASN1_ALLOC_FUNCTIONS(SOFT_FILE)
IMPLEMENT_STATIC_ASN1_ENCODE_FUNCTIONS(SOFT_FILE)
IMPLEMENT_STATIC_ASN1_ALLOC_FUNCTIONS(SOFT_TRIES)
IMPLEMENT_STATIC_ASN1_ENCODE_FUNCTIONS(SOFT_TRIES)
    /* clang-format on */

    /* The header alone is only ever encoded: it is the seal's additional data. */
    static int i2d_SOFT_HEADER(const SOFT_HEADER *h, unsigned char **out)
{
    return ASN1_item_i2d((const ASN1_VALUE *)h, out, ASN1_ITEM_rptr(SOFT_HEADER));
}

/* --- small helpers -------------------------------------------------------------------------
 */

int ts_soft_label_ok(const char *label, size_t len)
{
    if (len == 0 || len > TS_LABEL_MAX || label[0] == '.') {
        return 0;
    }
    for (size_t i = 0; i < len; i++) {
        char c = label[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '.' || c == '_' || c == '-';
        if (!ok) {
            return 0;
        }
    }
    return 1;
}

/* Sets *field (made if absent: optional fields start NULL) to value; 1 on success. */
static int int_set(ASN1_INTEGER **field, uint64_t value)
{
    if (*field == NULL) {
        *field = ASN1_INTEGER_new();
    }
    return *field != NULL && ASN1_INTEGER_set_uint64(*field, value) == 1;
}

/* Sets *field (made if absent) to a copy of data; 1 on success. */
static int octets_set(ASN1_OCTET_STRING **field, const uint8_t *data, size_t len)
{
    if (len > INT32_MAX) {
        return 0;
    }
    if (*field == NULL) {
        *field = ASN1_OCTET_STRING_new();
    }
    return *field != NULL && ASN1_OCTET_STRING_set(*field, data, (int)len) == 1;
}

/* A non-negative INTEGER that fits in 64 bits and is at most max; 1 when it is. */
static int int_get(const ASN1_INTEGER *field, uint64_t max, uint64_t *value)
{
    return field != NULL && ASN1_INTEGER_get_uint64(value, field) == 1 && *value <= max;
}

static size_t octets_len(const ASN1_OCTET_STRING *field)
{
    return (size_t)ASN1_STRING_length(field);
}

/* --- the seal ------------------------------------------------------------------------------ */

/* AES-256-GCM (NIST SP 800-38D) with the header's DER as additional data. */
static ts_err gcm_seal(const uint8_t key[TS_SOFT_KEY_LEN], const uint8_t nonce[TS_SOFT_NONCE_LEN],
                       const uint8_t *aad, size_t aad_len, const uint8_t *plain, size_t plain_len,
                       uint8_t *out, uint8_t tag[TS_SOFT_TAG_LEN])
{
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    ts_err rv = TS_ERR_CRYPTO;
    int n = 0;

    if (ctx == NULL || plain_len > INT32_MAX || aad_len > INT32_MAX ||
        EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, TS_SOFT_NONCE_LEN, NULL) != 1 ||
        EVP_EncryptInit_ex(ctx, NULL, NULL, key, nonce) != 1 ||
        EVP_EncryptUpdate(ctx, NULL, &n, aad, (int)aad_len) != 1) {
        goto done;
    }
    if (plain_len > 0 && EVP_EncryptUpdate(ctx, out, &n, plain, (int)plain_len) != 1) {
        goto done;
    }
    if (EVP_EncryptFinal_ex(ctx, out + plain_len, &n) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, TS_SOFT_TAG_LEN, tag) != 1) {
        goto done;
    }
    rv = TS_OK;
done:
    EVP_CIPHER_CTX_free(ctx);
    if (rv != TS_OK) {
        return ts_error_set_openssl(rv, "soft store: AES-256-GCM sealing failed");
    }
    return TS_OK;
}

ts_err ts_soft_file_unseal(const ts_soft_record *rec, const uint8_t key[TS_SOFT_KEY_LEN],
                           uint8_t **plain, size_t *plain_len)
{
    EVP_CIPHER_CTX *ctx = NULL;
    uint8_t *out = NULL;
    uint8_t tag[TS_SOFT_TAG_LEN];
    ts_err rv = TS_OK;
    int n = 0;

    *plain = NULL;
    *plain_len = 0;
    out = OPENSSL_malloc(rec->sealed_len > 0 ? rec->sealed_len : 1);
    ctx = EVP_CIPHER_CTX_new();
    if (out == NULL || ctx == NULL) {
        rv = ts_error_set(TS_ERR_NOMEM, "out of memory opening a soft-store file");
        goto done;
    }
    memcpy(tag, rec->tag, sizeof tag);
    if (EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, TS_SOFT_NONCE_LEN, NULL) != 1 ||
        EVP_DecryptInit_ex(ctx, NULL, NULL, key, rec->nonce) != 1 ||
        EVP_DecryptUpdate(ctx, NULL, &n, rec->aad, (int)rec->aad_len) != 1 ||
        (rec->sealed_len > 0 &&
         EVP_DecryptUpdate(ctx, out, &n, rec->sealed, (int)rec->sealed_len) != 1) ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, TS_SOFT_TAG_LEN, tag) != 1) {
        rv = ts_error_set_openssl(TS_ERR_CRYPTO, "soft store: AES-256-GCM opening failed");
        goto done;
    }
    /* A tag that does not verify is the only failure left: the file is not what was written. */
    if (EVP_DecryptFinal_ex(ctx, out + rec->sealed_len, &n) != 1) {
        ts_error_clear();
        rv = ts_error_set(TS_ERR_CORRUPT, "fails its integrity check (edited, moved from another "
                                          "label or store, or sealed under another key)");
        goto done;
    }
    *plain = out;
    *plain_len = rec->sealed_len;
    out = NULL;
done:
    OPENSSL_clear_free(out, rec->sealed_len > 0 ? rec->sealed_len : 1);
    EVP_CIPHER_CTX_free(ctx);
    return rv;
}

/* --- encoding ------------------------------------------------------------------------------ */

/* Fills the header's fields from rec; 1 on success. */
static int header_fill(SOFT_HEADER *h, const ts_soft_record *rec)
{
    size_t label_len = strlen(rec->label);

    if (!int_set(&h->version, TS_SOFT_VERSION) || !int_set(&h->kind, (uint64_t)rec->kind) ||
        ASN1_STRING_set(h->label, rec->label, (int)label_len) != 1 ||
        ASN1_OCTET_STRING_set(h->uid, rec->uid, TS_KEYSTORE_UID_LEN) != 1) {
        return 0;
    }
    switch (rec->kind) {
    case TS_SOFT_STORE:
        h->kdf = (SOFT_KDF *)ASN1_item_new(ASN1_ITEM_rptr(SOFT_KDF));
        return h->kdf != NULL && octets_set(&h->kdf->salt, rec->kdf.salt, rec->kdf.salt_len) &&
               int_set(&h->kdf->n, rec->kdf.n) && int_set(&h->kdf->r, rec->kdf.r) &&
               int_set(&h->kdf->p, rec->kdf.p);
    case TS_SOFT_KEY:
        /* Key flags are written only when set, so that a key file without them reads as before
         * and each header has one encoding. */
        if (rec->flags != 0 && !int_set(&h->flags, rec->flags)) {
            return 0;
        }
        return int_set(&h->curve, (uint64_t)rec->curve) &&
               octets_set(&h->point, rec->point, rec->point_len);
    case TS_SOFT_DATA:
        if (!int_set(&h->flags, rec->flags)) {
            return 0;
        }
        return (rec->flags & TS_DATA_SECRET) != 0 || octets_set(&h->data, rec->data, rec->data_len);
    case TS_SOFT_COUNTER:
        return int_set(&h->value, rec->value);
    }
    return 0;
}

ts_err ts_soft_file_encode(const ts_soft_record *rec, const uint8_t key[TS_SOFT_KEY_LEN],
                           const uint8_t *plain, size_t plain_len, uint8_t **der, size_t *der_len)
{
    SOFT_FILE *file = NULL;
    uint8_t *aad = NULL, *sealed = NULL, *out = NULL;
    uint8_t nonce[TS_SOFT_NONCE_LEN], tag[TS_SOFT_TAG_LEN];
    int aad_len = 0, out_len = 0;
    ts_err rv = TS_OK;

    *der = NULL;
    *der_len = 0;
    if (plain_len > TS_SOFT_SEALED_MAX) {
        return ts_error_set(TS_ERR_INVALID, "soft store: %zu bytes are too many to seal",
                            plain_len);
    }
    file = SOFT_FILE_new();
    sealed = OPENSSL_malloc(plain_len > 0 ? plain_len : 1);
    if (file == NULL || sealed == NULL || !header_fill(file->header, rec)) {
        rv = ts_error_set_openssl(TS_ERR_NOMEM, "out of memory encoding a soft-store file");
        goto done;
    }
    aad_len = i2d_SOFT_HEADER(file->header, &aad);
    if (aad_len <= 0) {
        rv = ts_error_set_openssl(TS_ERR_CRYPTO, "soft store: cannot encode a file header");
        goto done;
    }
    /* A fresh random nonce for every write: the key seals few enough files that 96 random
     * bits never repeat (NIST SP 800-38D section 8.2.2, the 2^32 limit). */
    if (RAND_bytes(nonce, sizeof nonce) != 1) {
        rv = ts_error_set_openssl(TS_ERR_CRYPTO, "soft store: no random bytes for a nonce");
        goto done;
    }
    rv = gcm_seal(key, nonce, aad, (size_t)aad_len, plain, plain_len, sealed, tag);
    if (rv != TS_OK) {
        goto done;
    }
    if (ASN1_OCTET_STRING_set(file->nonce, nonce, sizeof nonce) != 1 ||
        ASN1_OCTET_STRING_set(file->sealed, sealed, (int)plain_len) != 1 ||
        ASN1_OCTET_STRING_set(file->tag, tag, sizeof tag) != 1) {
        rv = ts_error_set_openssl(TS_ERR_NOMEM, "out of memory encoding a soft-store file");
        goto done;
    }
    out_len = i2d_SOFT_FILE(file, &out);
    if (out_len <= 0) {
        rv = ts_error_set_openssl(TS_ERR_CRYPTO, "soft store: cannot encode a file");
        goto done;
    }
    *der = out;
    *der_len = (size_t)out_len;
done:
    OPENSSL_free(aad);
    OPENSSL_free(sealed);
    SOFT_FILE_free(file);
    return rv;
}

/* --- parsing ------------------------------------------------------------------------------- */

/* Checks the scrypt parameters read from a file: bounded so that a forged store file cannot make
 * opening take unbounded time or memory (RFC 7914 section 2: N a power of two above 1). */
static int kdf_parse(const SOFT_KDF *k, ts_soft_kdf *kdf)
{
    size_t salt_len = octets_len(k->salt);

    if (salt_len < TS_SOFT_SALT_MIN || salt_len > TS_SOFT_SALT_MAX ||
        !int_get(k->n, TS_SOFT_KDF_N_MAX, &kdf->n) || kdf->n < TS_SOFT_KDF_N_MIN ||
        (kdf->n & (kdf->n - 1)) != 0 || !int_get(k->r, TS_SOFT_KDF_R_MAX, &kdf->r) || kdf->r == 0 ||
        !int_get(k->p, TS_SOFT_KDF_P_MAX, &kdf->p) || kdf->p == 0 ||
        kdf->n * kdf->r > TS_SOFT_KDF_NR_MAX || kdf->n * kdf->r * kdf->p > TS_SOFT_KDF_NRP_MAX) {
        return 0;
    }
    memcpy(kdf->salt, ASN1_STRING_get0_data(k->salt), salt_len);
    kdf->salt_len = salt_len;
    return 1;
}

/* Fills the clear fields of rec from h, checking exactly those of the kind are present. */
static ts_err fields_parse(const SOFT_HEADER *h, ts_soft_record *rec)
{
    uint64_t v = 0;
    int has_key = h->curve != NULL || h->point != NULL;
    int has_data = (h->flags != NULL && rec->kind != TS_SOFT_KEY) || h->data != NULL;

    if ((rec->kind != TS_SOFT_KEY && has_key) || (rec->kind != TS_SOFT_DATA && has_data) ||
        (rec->kind != TS_SOFT_COUNTER && h->value != NULL) ||
        (rec->kind != TS_SOFT_STORE && h->kdf != NULL)) {
        return ts_error_set(TS_ERR_CORRUPT, "has a field that its kind does not have");
    }
    switch (rec->kind) {
    case TS_SOFT_STORE:
        if (h->kdf == NULL || !kdf_parse(h->kdf, &rec->kdf) || rec->label[0] != '\0' ||
            rec->sealed_len != TS_SOFT_KEY_LEN) {
            return ts_error_set(TS_ERR_CORRUPT, "store file with bad KDF parameters or key");
        }
        return TS_OK;
    case TS_SOFT_KEY:
        if (!int_get(h->curve, TS_CURVE_P384, &v) || v < TS_CURVE_P256 || h->point == NULL) {
            return ts_error_set(TS_ERR_CORRUPT, "key with a missing or unknown curve");
        }
        rec->curve = (ts_curve)v;
        rec->point_len = octets_len(h->point);
        /* SEC 1 section 2.3.3: 0x04 || X || Y, each the size of the field. */
        if (rec->point_len != (rec->curve == TS_CURVE_P256 ? 65U : 97U) ||
            ASN1_STRING_get0_data(h->point)[0] != 0x04 || rec->sealed_len == 0) {
            return ts_error_set(TS_ERR_CORRUPT, "key with a malformed public point");
        }
        memcpy(rec->point, ASN1_STRING_get0_data(h->point), rec->point_len);
        if (h->flags != NULL && (!int_get(h->flags, TS_KEY_BACKUP, &v) || v == 0)) {
            return ts_error_set(TS_ERR_CORRUPT, "key with unknown flags");
        }
        rec->flags = h->flags != NULL ? (unsigned)v : 0;
        return TS_OK;
    case TS_SOFT_DATA:
        if (!int_get(h->flags, TS_DATA_SECRET, &v)) {
            return ts_error_set(TS_ERR_CORRUPT, "data object with missing or unknown flags");
        }
        rec->flags = (unsigned)v;
        if ((rec->flags & TS_DATA_SECRET) != 0) {
            if (h->data != NULL || rec->sealed_len > TS_OBJECT_MAX) {
                return ts_error_set(TS_ERR_CORRUPT, "secret data object stored in clear");
            }
            return TS_OK;
        }
        if (h->data == NULL || octets_len(h->data) > TS_OBJECT_MAX || rec->sealed_len != 0) {
            return ts_error_set(TS_ERR_CORRUPT, "data object with missing or oversized data");
        }
        rec->data = ASN1_STRING_get0_data(h->data);
        rec->data_len = octets_len(h->data);
        return TS_OK;
    case TS_SOFT_COUNTER:
        if (!int_get(h->value, UINT64_MAX, &rec->value) || rec->sealed_len != 0) {
            return ts_error_set(TS_ERR_CORRUPT, "counter with a missing or bad value");
        }
        return TS_OK;
    }
    return ts_error_set(TS_ERR_CORRUPT, "unknown kind");
}

ts_err ts_soft_file_parse(const uint8_t *der, size_t len, ts_soft_record **out)
{
    ts_soft_record *rec = NULL;
    SOFT_FILE *file = NULL;
    const uint8_t *p = der;
    uint8_t *again = NULL;
    int again_len = 0;
    uint64_t v = 0;
    ts_err rv = TS_OK;

    *out = NULL;
    if (len == 0 || len > TS_SOFT_FILE_MAX) {
        return ts_error_set(TS_ERR_CORRUPT, "is %zu bytes: not a soft-store file", len);
    }
    rec = OPENSSL_zalloc(sizeof *rec);
    if (rec == NULL) {
        return ts_error_set(TS_ERR_NOMEM, "out of memory reading a soft-store file");
    }
    file = d2i_SOFT_FILE(NULL, &p, (long)len);
    if (file == NULL || p != der + len) {
        ts_error_clear();
        rv = ts_error_set(TS_ERR_CORRUPT, "is not a soft-store file (bad DER)");
        goto done;
    }
    /* DER only: one encoding per content, so the header that was sealed is the one read. */
    again_len = i2d_SOFT_FILE(file, &again);
    if (again_len <= 0 || (size_t)again_len != len || memcmp(again, der, len) != 0) {
        ts_error_clear();
        rv = ts_error_set(TS_ERR_CORRUPT, "is not in DER (a non-canonical encoding)");
        goto done;
    }
    rec->asn1 = file;
    const SOFT_HEADER *h = file->header;
    size_t label_len = (size_t)ASN1_STRING_length(h->label);
    if (!int_get(h->version, UINT64_MAX, &v) || v != TS_SOFT_VERSION) {
        rv = ts_error_set(TS_ERR_CORRUPT, "has an unknown format version");
        goto done;
    }
    if (!int_get(h->kind, TS_SOFT_COUNTER, &v)) {
        rv = ts_error_set(TS_ERR_CORRUPT, "has an unknown kind");
        goto done;
    }
    rec->kind = (ts_soft_kind)v;
    if (label_len > 0 &&
        !ts_soft_label_ok((const char *)ASN1_STRING_get0_data(h->label), label_len)) {
        rv = ts_error_set(TS_ERR_CORRUPT, "has an invalid label");
        goto done;
    }
    if ((label_len == 0) != (rec->kind == TS_SOFT_STORE)) {
        rv = ts_error_set(TS_ERR_CORRUPT, "has a label that does not fit its kind");
        goto done;
    }
    memcpy(rec->label, ASN1_STRING_get0_data(h->label), label_len);
    rec->label[label_len] = '\0';
    if (octets_len(h->uid) != TS_KEYSTORE_UID_LEN || octets_len(file->nonce) != TS_SOFT_NONCE_LEN ||
        octets_len(file->tag) != TS_SOFT_TAG_LEN || octets_len(file->sealed) > TS_SOFT_SEALED_MAX) {
        rv = ts_error_set(TS_ERR_CORRUPT, "has a UID, nonce, tag or sealed part of a bad size");
        goto done;
    }
    memcpy(rec->uid, ASN1_STRING_get0_data(h->uid), TS_KEYSTORE_UID_LEN);
    memcpy(rec->nonce, ASN1_STRING_get0_data(file->nonce), TS_SOFT_NONCE_LEN);
    memcpy(rec->tag, ASN1_STRING_get0_data(file->tag), TS_SOFT_TAG_LEN);
    rec->sealed = ASN1_STRING_get0_data(file->sealed);
    rec->sealed_len = octets_len(file->sealed);
    rv = fields_parse(h, rec);
    if (rv != TS_OK) {
        goto done;
    }
    int aad_len = i2d_SOFT_HEADER(h, &rec->aad);
    if (aad_len <= 0) {
        rv = ts_error_set_openssl(TS_ERR_NOMEM, "out of memory reading a soft-store file");
        goto done;
    }
    rec->aad_len = (size_t)aad_len;
    *out = rec;
    rec = NULL;
done:
    if (rv != TS_OK) {
        ERR_clear_error(); /* the decoder's complaints are in the message already */
    }
    OPENSSL_free(again);
    if (rec != NULL && rec->asn1 == NULL) {
        SOFT_FILE_free(file);
    }
    ts_soft_record_free(rec);
    return rv;
}

void ts_soft_record_free(ts_soft_record *rec)
{
    if (rec == NULL) {
        return;
    }
    SOFT_FILE_free(rec->asn1);
    OPENSSL_free(rec->aad);
    OPENSSL_clear_free(rec, sizeof *rec);
}

/* --- the PIN-failure file ------------------------------------------------------------------ */

ts_err ts_soft_tries_encode(const uint8_t uid[TS_KEYSTORE_UID_LEN], uint64_t failures,
                            uint8_t **der, size_t *der_len)
{
    SOFT_TRIES *t = SOFT_TRIES_new();
    uint8_t *out = NULL;
    int n = 0;

    *der = NULL;
    *der_len = 0;
    if (t == NULL) {
        return ts_error_set(TS_ERR_NOMEM, "out of memory encoding the PIN-failure count");
    }
    if (!int_set(&t->version, TS_SOFT_VERSION) || !int_set(&t->failures, failures) ||
        ASN1_OCTET_STRING_set(t->uid, uid, TS_KEYSTORE_UID_LEN) != 1) {
        SOFT_TRIES_free(t);
        return ts_error_set_openssl(TS_ERR_NOMEM, "out of memory encoding the PIN-failure count");
    }
    n = i2d_SOFT_TRIES(t, &out);
    SOFT_TRIES_free(t);
    if (n <= 0) {
        return ts_error_set_openssl(TS_ERR_CRYPTO, "cannot encode the PIN-failure count");
    }
    *der = out;
    *der_len = (size_t)n;
    return TS_OK;
}

ts_err ts_soft_tries_parse(const uint8_t *der, size_t len, const uint8_t uid[TS_KEYSTORE_UID_LEN],
                           uint64_t *failures)
{
    const uint8_t *p = der;
    SOFT_TRIES *t = NULL;
    uint64_t v = 0;
    ts_err rv = TS_OK;

    *failures = 0;
    if (len > TS_SOFT_FILE_MAX) {
        return ts_error_set(TS_ERR_CORRUPT, "PIN-failure file too large");
    }
    t = d2i_SOFT_TRIES(NULL, &p, (long)len);
    if (t == NULL || p != der + len || !int_get(t->version, UINT64_MAX, &v) ||
        v != TS_SOFT_VERSION || octets_len(t->uid) != TS_KEYSTORE_UID_LEN ||
        CRYPTO_memcmp(ASN1_STRING_get0_data(t->uid), uid, TS_KEYSTORE_UID_LEN) != 0 ||
        !int_get(t->failures, UINT64_MAX, failures)) {
        ts_error_clear();
        rv = ts_error_set(TS_ERR_CORRUPT, "PIN-failure file is malformed or of another store");
        ERR_clear_error();
    }
    SOFT_TRIES_free(t);
    return rv;
}
