/*
 * The datastore's file format (docs/datastore.md), with OpenSSL ASN.1 templates:
 *
 *   DatastoreFile ::= SEQUENCE {
 *       content    DatastoreContent,
 *       mac        OCTET STRING (SIZE (32)) -- HMAC-SHA256 of the DER of content
 *   }
 *   DatastoreContent ::= SEQUENCE {
 *       version    INTEGER (1),             -- TS_DATASTORE_FORMAT_VERSION
 *       uid        OCTET STRING (SIZE (16)), -- the key store's UID
 *       generation INTEGER (1..MAX),
 *       entries    SEQUENCE OF DatastoreEntry -- sorted by name, names unique
 *   }
 *   DatastoreEntry ::= SEQUENCE {
 *       name       UTF8String,              -- [a-z][a-z0-9._-]{0,63}
 *       type       INTEGER { bytes(0), text(1), uint(2) },
 *       value      OCTET STRING
 *   }
 *
 * The parser takes untrusted bytes: DER only (the input must encode back to itself), nothing
 * after the outer SEQUENCE, every field in range.
 */
#include <string.h>

#include <openssl/asn1t.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include "agent/datastore_internal.h"
#include "common/error_internal.h"

typedef struct ds_entry_st {
    ASN1_UTF8STRING *name;
    ASN1_INTEGER *type;
    ASN1_OCTET_STRING *value;
} DS_ENTRY;

DEFINE_STACK_OF(DS_ENTRY)

typedef struct ds_content_st {
    ASN1_INTEGER *version;
    ASN1_OCTET_STRING *uid;
    ASN1_INTEGER *generation;
    STACK_OF(DS_ENTRY) * entries;
} DS_CONTENT;

typedef struct ds_file_st {
    DS_CONTENT *content;
    ASN1_OCTET_STRING *mac;
} DS_FILE;

/* The templates are macro tables; clang-format would fold them into one statement. */
/* clang-format off */
ASN1_SEQUENCE(DS_ENTRY) = {
    ASN1_SIMPLE(DS_ENTRY, name, ASN1_UTF8STRING),
    ASN1_SIMPLE(DS_ENTRY, type, ASN1_INTEGER),
    ASN1_SIMPLE(DS_ENTRY, value, ASN1_OCTET_STRING),
} static_ASN1_SEQUENCE_END(DS_ENTRY)

ASN1_SEQUENCE(DS_CONTENT) = {
    ASN1_SIMPLE(DS_CONTENT, version, ASN1_INTEGER),
    ASN1_SIMPLE(DS_CONTENT, uid, ASN1_OCTET_STRING),
    ASN1_SIMPLE(DS_CONTENT, generation, ASN1_INTEGER),
    ASN1_SEQUENCE_OF(DS_CONTENT, entries, DS_ENTRY),
} static_ASN1_SEQUENCE_END(DS_CONTENT)

ASN1_SEQUENCE(DS_FILE) = {
    ASN1_SIMPLE(DS_FILE, content, DS_CONTENT),
    ASN1_SIMPLE(DS_FILE, mac, ASN1_OCTET_STRING),
} static_ASN1_SEQUENCE_END(DS_FILE)

IMPLEMENT_STATIC_ASN1_ALLOC_FUNCTIONS(DS_ENTRY)
IMPLEMENT_STATIC_ASN1_ALLOC_FUNCTIONS(DS_FILE)
IMPLEMENT_STATIC_ASN1_ENCODE_FUNCTIONS(DS_FILE)

/* The content alone is only ever encoded: it is what the MAC covers. */
static int i2d_DS_CONTENT(const DS_CONTENT *c, unsigned char **out)
{
    return ASN1_item_i2d((const ASN1_VALUE *)c, out, ASN1_ITEM_rptr(DS_CONTENT));
}
/* clang-format on */

ts_err ts_ds_mac(const uint8_t key[TS_DS_MAC_KEY_LEN], const uint8_t *data, size_t len,
                 uint8_t mac[TS_DS_MAC_LEN])
{
    EVP_MAC *hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *ctx = hmac != NULL ? EVP_MAC_CTX_new(hmac) : NULL;
    char digest[] = "SHA256";
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                           OSSL_PARAM_construct_end()};
    size_t out_len = 0;
    ts_err rv = TS_OK;

    if (ctx == NULL || EVP_MAC_init(ctx, key, TS_DS_MAC_KEY_LEN, params) != 1 ||
        EVP_MAC_update(ctx, data, len) != 1 ||
        EVP_MAC_final(ctx, mac, &out_len, TS_DS_MAC_LEN) != 1 || out_len != TS_DS_MAC_LEN) {
        rv = ts_error_set_openssl(TS_ERR_CRYPTO, "datastore: HMAC-SHA256 failed");
    }
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(hmac);
    return rv;
}

/* --- encoding ------------------------------------------------------------------------------- */

static DS_CONTENT *content_to_asn1(const ts_ds_content *c)
{
    DS_CONTENT *a = (DS_CONTENT *)ASN1_item_new(ASN1_ITEM_rptr(DS_CONTENT));
    if (a == NULL || ASN1_INTEGER_set_uint64(a->version, c->version) != 1 ||
        ASN1_OCTET_STRING_set(a->uid, c->uid, (int)sizeof c->uid) != 1 ||
        ASN1_INTEGER_set_uint64(a->generation, c->generation) != 1) {
        goto fail;
    }
    for (size_t i = 0; i < c->count; i++) {
        const ts_ds_entry *e = &c->entries[i];
        DS_ENTRY *ae = DS_ENTRY_new();
        if (ae == NULL) {
            goto fail;
        }
        if (ASN1_STRING_set(ae->name, e->name, (int)strlen(e->name)) != 1 ||
            ASN1_INTEGER_set_uint64(ae->type, (uint64_t)e->type) != 1 ||
            ASN1_OCTET_STRING_set(ae->value, e->value, (int)e->len) != 1 ||
            sk_DS_ENTRY_push(a->entries, ae) <= 0) {
            DS_ENTRY_free(ae);
            goto fail;
        }
    }
    return a;
fail:
    ASN1_item_free((ASN1_VALUE *)a, ASN1_ITEM_rptr(DS_CONTENT));
    return NULL;
}

ts_err ts_ds_encode(const ts_ds_content *c, const uint8_t mac_key[TS_DS_MAC_KEY_LEN], uint8_t **der,
                    size_t *der_len)
{
    DS_FILE *file = DS_FILE_new();
    uint8_t *tbs = NULL, *out = NULL;
    uint8_t mac[TS_DS_MAC_LEN];
    ts_err rv = ts_ds_content_check(c, TS_ERR_INVALID, "datastore");

    *der = NULL;
    *der_len = 0;
    if (rv != TS_OK) {
        goto done;
    }
    if (file == NULL) {
        rv = ts_error_set(TS_ERR_NOMEM, "out of memory encoding the datastore");
        goto done;
    }
    ASN1_item_free((ASN1_VALUE *)file->content, ASN1_ITEM_rptr(DS_CONTENT));
    file->content = content_to_asn1(c);
    int tbs_len = file->content != NULL ? i2d_DS_CONTENT(file->content, &tbs) : -1;
    if (tbs_len <= 0) {
        rv = ts_error_set_openssl(TS_ERR_NOMEM, "datastore: cannot encode the content");
        goto done;
    }
    rv = ts_ds_mac(mac_key, tbs, (size_t)tbs_len, mac);
    if (rv != TS_OK) {
        goto done;
    }
    int out_len =
        ASN1_OCTET_STRING_set(file->mac, mac, (int)sizeof mac) == 1 ? i2d_DS_FILE(file, &out) : -1;
    if (out_len <= 0) {
        rv = ts_error_set_openssl(TS_ERR_NOMEM, "datastore: cannot encode the file");
        goto done;
    }
    *der = out;
    *der_len = (size_t)out_len;
done:
    OPENSSL_free(tbs);
    DS_FILE_free(file);
    return rv;
}

/* --- parsing -------------------------------------------------------------------------------- */

static ts_err corrupt(const char *why)
{
    ERR_clear_error();
    return ts_error_set(TS_ERR_CORRUPT, "datastore file is corrupt: %s", why);
}

/* Fills c from a parsed DS_CONTENT, checking every field. */
static ts_err content_from_asn1(const DS_CONTENT *a, ts_ds_content *c)
{
    int n = sk_DS_ENTRY_num(a->entries);
    ts_err rv;

    if (ASN1_INTEGER_get_uint64(&c->version, a->version) != 1) {
        return corrupt("the version is not a small non-negative number");
    }
    if (c->version != TS_DATASTORE_FORMAT_VERSION) {
        ERR_clear_error();
        return ts_error_set(TS_ERR_UNSUPPORTED,
                            "datastore file has format version %llu; this agent reads version %d",
                            (unsigned long long)c->version, TS_DATASTORE_FORMAT_VERSION);
    }
    if (ASN1_STRING_length(a->uid) != TS_KEYSTORE_UID_LEN) {
        return corrupt("the key-store UID is not 16 bytes");
    }
    memcpy(c->uid, ASN1_STRING_get0_data(a->uid), TS_KEYSTORE_UID_LEN);
    if (ASN1_INTEGER_get_uint64(&c->generation, a->generation) != 1 || c->generation == 0) {
        return corrupt("the generation is not a number from 1 to 2^64-1");
    }
    if (n < 0 || n > TS_DATASTORE_ENTRIES_MAX) {
        return corrupt("too many entries");
    }
    c->entries = n > 0 ? OPENSSL_zalloc((size_t)n * sizeof *c->entries) : NULL;
    if (n > 0 && c->entries == NULL) {
        return ts_error_set(TS_ERR_NOMEM, "out of memory reading the datastore");
    }
    for (int i = 0; i < n; i++) {
        const DS_ENTRY *ae = sk_DS_ENTRY_value(a->entries, i);
        ts_ds_entry *e = &c->entries[i];
        int name_len = ASN1_STRING_length(ae->name);
        int value_len = ASN1_STRING_length(ae->value);
        uint64_t type = 0;

        if (name_len <= 0 || name_len > TS_DATASTORE_NAME_MAX ||
            !ts_ds_name_ok((const char *)ASN1_STRING_get0_data(ae->name), (size_t)name_len)) {
            return corrupt("an entry name is not [a-z][a-z0-9._-]{0,63}");
        }
        if (ASN1_INTEGER_get_uint64(&type, ae->type) != 1 || type > TS_DATASTORE_UINT) {
            return corrupt("an entry has an unknown type");
        }
        if (value_len < 0 || value_len > TS_DATASTORE_VALUE_MAX) {
            return corrupt("an entry value is too long");
        }
        memcpy(e->name, ASN1_STRING_get0_data(ae->name), (size_t)name_len);
        e->name[name_len] = 0;
        e->type = (ts_datastore_type)type;
        e->value = OPENSSL_malloc((size_t)value_len + 1);
        if (e->value == NULL) {
            return ts_error_set(TS_ERR_NOMEM, "out of memory reading the datastore");
        }
        if (value_len > 0) {
            memcpy(e->value, ASN1_STRING_get0_data(ae->value), (size_t)value_len);
        }
        e->value[value_len] = 0;
        e->len = (size_t)value_len;
        c->count++;
        c->total += e->len;
    }
    rv = ts_ds_content_check(c, TS_ERR_CORRUPT, "datastore file is corrupt");
    ERR_clear_error();
    return rv;
}

ts_err ts_ds_parse(const uint8_t *der, size_t der_len, ts_ds_content **out,
                   uint8_t mac[TS_DS_MAC_LEN], uint8_t **tbs, size_t *tbs_len)
{
    const unsigned char *p = der;
    DS_FILE *file = NULL;
    ts_ds_content *c = NULL;
    uint8_t *again = NULL, *content_der = NULL;
    ts_err rv;

    *out = NULL;
    *tbs = NULL;
    *tbs_len = 0;
    if (der_len == 0 || der_len > TS_DS_FILE_MAX) {
        return corrupt(der_len == 0 ? "the file is empty" : "the file is too large");
    }
    file = d2i_DS_FILE(NULL, &p, (long)der_len);
    if (file == NULL || p != der + der_len) {
        rv = corrupt(file == NULL ? "not a DER DatastoreFile" : "bytes after the DatastoreFile");
        goto done;
    }
    /* DER only: a BER form or a non-minimal length would not encode back to the same bytes. */
    int again_len = i2d_DS_FILE(file, &again);
    if (again_len <= 0 || (size_t)again_len != der_len || memcmp(again, der, der_len) != 0) {
        rv = corrupt("not in DER");
        goto done;
    }
    if (ASN1_STRING_length(file->mac) != TS_DS_MAC_LEN) {
        rv = corrupt("the MAC is not 32 bytes");
        goto done;
    }
    c = ts_ds_content_new();
    if (c == NULL) {
        rv = ts_error_set(TS_ERR_NOMEM, "out of memory reading the datastore");
        goto done;
    }
    rv = content_from_asn1(file->content, c);
    if (rv != TS_OK) {
        goto done;
    }
    int content_len = i2d_DS_CONTENT(file->content, &content_der);
    if (content_len <= 0) {
        rv = ts_error_set_openssl(TS_ERR_NOMEM, "datastore: cannot encode the content");
        goto done;
    }
    memcpy(mac, ASN1_STRING_get0_data(file->mac), TS_DS_MAC_LEN);
    *tbs = content_der;
    *tbs_len = (size_t)content_len;
    content_der = NULL;
    *out = c;
    c = NULL;
    rv = TS_OK;
done:
    ts_ds_content_free(c);
    OPENSSL_free(content_der);
    OPENSSL_free(again);
    DS_FILE_free(file);
    ERR_clear_error();
    return rv;
}

ts_err ts_ds_decode(const uint8_t *der, size_t der_len, const uint8_t uid[TS_KEYSTORE_UID_LEN],
                    const uint8_t mac_key[TS_DS_MAC_KEY_LEN], ts_ds_content **out)
{
    ts_ds_content *c = NULL;
    uint8_t *tbs = NULL;
    size_t tbs_len = 0;
    uint8_t stored[TS_DS_MAC_LEN], mac[TS_DS_MAC_LEN];

    *out = NULL;
    ts_err rv = ts_ds_parse(der, der_len, &c, stored, &tbs, &tbs_len);
    if (rv != TS_OK) {
        return rv;
    }
    /* The UID is checked first only for the message: the MAC covers it as well. */
    if (CRYPTO_memcmp(c->uid, uid, TS_KEYSTORE_UID_LEN) != 0) {
        rv = ts_error_set(TS_ERR_FOREIGN,
                          "datastore belongs to another key store (another device): its UID "
                          "does not match this key store's");
        goto done;
    }
    rv = ts_ds_mac(mac_key, tbs, tbs_len, mac);
    if (rv != TS_OK) {
        goto done;
    }
    if (CRYPTO_memcmp(mac, stored, TS_DS_MAC_LEN) != 0) {
        rv = ts_error_set(TS_ERR_AUTH,
                          "datastore MAC does not verify under this key store's datastore key: "
                          "the file was edited or damaged");
        goto done;
    }
    *out = c;
    c = NULL;
done:
    OPENSSL_cleanse(mac, sizeof mac);
    ts_ds_content_free(c);
    OPENSSL_free(tbs);
    return rv;
}
