/*
 * The encrypted key import blob (docs/import.md): its fields, its DER encoding and signature
 * (import_blob.c), and the HKDF info that binds the wrapping key to the blob.
 *
 * ks_import.c uses these for ts_keystore_import_seal() and ts_ks_import(); the declarations of
 * ts_import_blob_parse() and ts_import_blob_free() are in keystore_internal.h.
 */
#ifndef TS_KEYSTORE_IMPORT_INTERNAL_H
#define TS_KEYSTORE_IMPORT_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

/* beside this file, so that targets without src/ on their include path find it too */
#include "keystore/keystore_internal.h"

enum {
    TS_IMPORT_VERSION = 1,
    TS_IMPORT_WRAPPED_MIN = 16,   /* RFC 5649: at least two 64-bit blocks */
    TS_IMPORT_WRAPPED_MAX = 1024, /* a PKCS#8 P-384 key wraps to 192 bytes */
    TS_IMPORT_SIGNATURE_MIN = 8,  /* SEQUENCE { INTEGER, INTEGER }, each at least one byte */
    /* context, UID, counter, three length-prefixed fields: see ts_import_info() */
    TS_IMPORT_INFO_MAX = 21 + TS_KEYSTORE_UID_LEN + 8 + 2 * (1 + TS_LABEL_MAX) + 1 + TS_POINT_MAX
};

/* The fields of ImportTBS, the signed part of a blob. */
typedef struct ts_import_fields {
    uint8_t uid[TS_KEYSTORE_UID_LEN];       /* the recipient store */
    char recipient_label[TS_LABEL_MAX + 1]; /* its key the sender agreed with */
    uint64_t counter;                       /* above the store's TS_IMPORT_COUNTER */
    char label[TS_LABEL_MAX + 1];           /* where the key is to be stored */
    ts_curve curve;                         /* of the recipient key and the imported key */
    uint8_t ephemeral_point[TS_POINT_MAX];  /* the sender's fresh ECDH key, uncompressed */
    size_t ephemeral_point_len;             /* 65 (P-256) or 97 (P-384) */
    uint8_t public_point[TS_POINT_MAX];     /* the imported key's public key, uncompressed */
    size_t public_point_len;                /* 65 (P-256) or 97 (P-384) */
    const uint8_t *wrapped;                 /* RFC 5649 wrap of the PKCS#8 private key */
    size_t wrapped_len;                     /* a multiple of 8, 16 to 1024 */
    const char *digest;                     /* of the signature: "SHA256" or "SHA384" */
} ts_import_fields;

/* A parsed blob: the fields, the exact bytes the signature covers, and the signature. */
struct ts_import_blob {
    ts_import_fields fields;
    uint8_t *tbs; /* DER of ImportTBS, as found in the blob */
    size_t tbs_len;
    uint8_t *signature; /* DER ECDSA-Sig-Value */
    size_t signature_len;
    void *asn1; /* the decoded structure that fields.wrapped points into */
};

/*
 * The HKDF info of a blob, written to info (TS_IMPORT_INFO_MAX bytes are enough):
 *   "tessera key import v1" || uid || counter (8 bytes, big-endian)
 *   || len || recipient_label || len || label || len || ephemeral_point
 * where each len is one byte giving the length of the field after it.
 */
ts_err ts_import_info(const ts_import_fields *fields, uint8_t *info, size_t size, size_t *len);

/*
 * Encodes fields as ImportTBS, signs its DER with sender (ECDSA with fields->digest; sender may be
 * a provider key) and encodes the whole TesseraKeyImport into a new buffer freed with
 * OPENSSL_free(). The fields are not checked here: the caller does that.
 */
ts_err ts_import_blob_encode(const ts_import_fields *fields, EVP_PKEY *sender, uint8_t **der,
                             size_t *der_len);

/* Checks the blob's signature with sender: TS_OK, or TS_ERR_AUTH when it does not verify. */
ts_err ts_import_blob_verify(const ts_import_blob *blob, const EVP_PKEY *sender);

/* The uncompressed point of an EC key on curve, whatever form the key keeps it in. */
ts_err ts_import_point_of(const EVP_PKEY *pkey, ts_curve curve, uint8_t point[TS_POINT_MAX],
                          size_t *len);

/* The point length of a curve: 65 for P-256, 97 for P-384. */
size_t ts_import_point_len(ts_curve curve);

#endif
