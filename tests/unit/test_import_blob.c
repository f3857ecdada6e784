/*
 * Import blobs without a store: the KEK (RFC 5869 vector), the HKDF info layout, seals opened
 * in memory, the seal's checks, and the strict parser against every flipped bit, BER forms and a
 * table of bad fields.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include <openssl/asn1.h>
#include <openssl/conf.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "keystore/import_internal.h"

/* --- the KEK and the info ------------------------------------------------------------------- */

/* RFC 5869 appendix A.1: with PRK and info as given, T(1) is the first 32 bytes of OKM. */
static void test_kek_rfc5869(void **state)
{
    static const uint8_t prk[] = {0x07, 0x77, 0x09, 0x36, 0x2c, 0x2e, 0x32, 0xdf, 0x0d, 0xdc, 0x3f,
                                  0x0d, 0xc4, 0x7b, 0xba, 0x63, 0x90, 0xb6, 0xc7, 0x3b, 0xb5, 0x0f,
                                  0x9c, 0x31, 0x22, 0xec, 0x84, 0x4a, 0xd7, 0xc2, 0xb3, 0xe5};
    static const uint8_t info[] = {0xf0, 0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8, 0xf9};
    static const uint8_t okm[] = {0x3c, 0xb2, 0x5f, 0x25, 0xfa, 0xac, 0xd5, 0x7a, 0x90, 0x43, 0x4f,
                                  0x64, 0xd0, 0x36, 0x2f, 0x2a, 0x2d, 0x2d, 0x0a, 0x90, 0xcf, 0x1a,
                                  0x5a, 0x4c, 0x5d, 0xb0, 0x2d, 0x56, 0xec, 0xc4, 0xc5, 0xbf};
    uint8_t kek[32];
    (void)state;

    assert_int_equal(ts_ks_import_kek(prk, sizeof prk, info, sizeof info, kek), TS_OK);
    assert_memory_equal(kek, okm, sizeof okm);
}

/* The KEK is one HMAC-SHA256 block keyed with Z, for a P-384 secret too. */
static void test_kek_is_hmac(void **state)
{
    uint8_t z[48], info[200], kek[32], mac[32], msg[201];
    size_t mac_len = sizeof mac;
    (void)state;

    for (size_t i = 0; i < sizeof z; i++) {
        z[i] = (uint8_t)(i * 7 + 1);
    }
    for (size_t i = 0; i < sizeof info; i++) {
        info[i] = (uint8_t)(255 - i);
    }
    memcpy(msg, info, sizeof info);
    msg[sizeof info] = 0x01;
    assert_non_null(EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, z, sizeof z, msg, sizeof msg, mac,
                              sizeof mac, &mac_len));
    assert_int_equal(ts_ks_import_kek(z, sizeof z, info, sizeof info, kek), TS_OK);
    assert_memory_equal(kek, mac, sizeof mac);
    assert_int_equal(ts_ks_import_kek(NULL, 0, info, sizeof info, kek), TS_ERR_INVALID);
}

/* The info is the documented concatenation, byte for byte. */
static void test_info_layout(void **state)
{
    ts_import_fields f;
    uint8_t info[TS_IMPORT_INFO_MAX];
    size_t len = 0;
    (void)state;

    memset(&f, 0, sizeof f);
    for (int i = 0; i < TS_KEYSTORE_UID_LEN; i++) {
        f.uid[i] = (uint8_t)(0xa0 + i);
    }
    strcpy(f.recipient_label, "recv");
    strcpy(f.label, "abc");
    f.counter = 0x0102030405060708ULL;
    f.ephemeral_point_len = 65;
    memset(f.ephemeral_point, 0x33, 65);
    f.ephemeral_point[0] = 0x04;
    assert_int_equal(ts_import_info(&f, info, sizeof info, &len), TS_OK);
    assert_int_equal(len, 21 + 16 + 8 + 1 + 4 + 1 + 3 + 1 + 65);
    assert_memory_equal(info, "tessera key import v1", 21);
    assert_memory_equal(info + 21, f.uid, 16);
    assert_memory_equal(info + 37, "\x01\x02\x03\x04\x05\x06\x07\x08", 8);
    assert_memory_equal(info + 45,
                        "\x04recv\x03"
                        "abc\x41",
                        10);
    assert_memory_equal(info + 55, f.ephemeral_point, 65);
    /* a longer label moves everything after it: no two field sets share an info */
    strcpy(f.recipient_label, "recva");
    strcpy(f.label, "bc");
    uint8_t other[TS_IMPORT_INFO_MAX];
    size_t other_len = 0;
    assert_int_equal(ts_import_info(&f, other, sizeof other, &other_len), TS_OK);
    assert_int_equal(other_len, len);
    assert_memory_not_equal(info, other, len);
    assert_int_equal(ts_import_info(&f, info, len - 1, &len), TS_ERR_INVALID);
}

static EVP_PKEY *ec_key(const char *curve)
{
    EVP_PKEY *pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", curve);
    assert_non_null(pkey);
    return pkey;
}

/* --- seal, opened in memory ----------------------------------------------------------------- */

/* What a recipient holding its private key in memory does: ECDH, KEK, unwrap, PKCS#8. */
static EVP_PKEY *open_in_memory(const ts_import_blob *blob, EVP_PKEY *recipient)
{
    const ts_import_fields *f = &blob->fields;
    EVP_PKEY *eph = NULL, *key = NULL;
    EVP_PKEY_CTX *dctx = NULL;
    EVP_CIPHER_CTX *cctx = EVP_CIPHER_CTX_new();
    uint8_t z[TS_SECRET_MAX], kek[32], info[TS_IMPORT_INFO_MAX], plain[TS_IMPORT_WRAPPED_MAX + 16];
    size_t z_len = sizeof z, info_len = 0;
    int n = 0, fin = 0;

    assert_int_equal(ts_pkey_from_point(f->curve, f->ephemeral_point, f->ephemeral_point_len, &eph),
                     TS_OK);
    dctx = EVP_PKEY_CTX_new(recipient, NULL);
    assert_int_equal(EVP_PKEY_derive_init(dctx), 1);
    assert_int_equal(EVP_PKEY_derive_set_peer(dctx, eph), 1);
    assert_int_equal(EVP_PKEY_derive(dctx, z, &z_len), 1);
    assert_int_equal(ts_import_info(f, info, sizeof info, &info_len), TS_OK);
    assert_int_equal(ts_ks_import_kek(z, z_len, info, info_len, kek), TS_OK);
    EVP_CIPHER_CTX_set_flags(cctx, EVP_CIPHER_CTX_FLAG_WRAP_ALLOW);
    assert_int_equal(EVP_DecryptInit_ex(cctx, EVP_aes_256_wrap_pad(), NULL, kek, NULL), 1);
    if (EVP_DecryptUpdate(cctx, plain, &n, f->wrapped, (int)f->wrapped_len) == 1 &&
        EVP_DecryptFinal_ex(cctx, plain + n, &fin) == 1) {
        const unsigned char *p = plain;
        PKCS8_PRIV_KEY_INFO *p8 = d2i_PKCS8_PRIV_KEY_INFO(NULL, &p, n + fin);
        key = p8 != NULL ? EVP_PKCS82PKEY(p8) : NULL;
        PKCS8_PRIV_KEY_INFO_free(p8);
    }
    OPENSSL_cleanse(plain, sizeof plain);
    OPENSSL_cleanse(z, sizeof z);
    OPENSSL_cleanse(kek, sizeof kek);
    EVP_CIPHER_CTX_free(cctx);
    EVP_PKEY_CTX_free(dctx);
    EVP_PKEY_free(eph);
    return key;
}

static void seal_and_open(const char *curve, const char *sender_curve, const char *digest)
{
    EVP_PKEY *sender = ec_key(sender_curve), *stranger = ec_key(sender_curve);
    EVP_PKEY *recipient = ec_key(curve), *other = ec_key(curve), *key = ec_key(curve);
    EVP_PKEY *opened = NULL;
    uint8_t uid[TS_KEYSTORE_UID_LEN], point[TS_POINT_MAX], *der = NULL, *der2 = NULL;
    size_t len = 0, len2 = 0, point_len = 0;
    ts_import_blob *blob = NULL;
    ts_curve c;

    memset(uid, 0x5c, sizeof uid);
    assert_int_equal(ts_keystore_import_seal(sender, recipient, uid, "recv", 0x123456789aULL,
                                             "imported", key, &der, &len),
                     TS_OK);
    assert_true(len > 0 && len <= TS_IMPORT_BLOB_MAX);
    assert_int_equal(ts_import_blob_parse(der, len, &blob), TS_OK);
    assert_memory_equal(blob->fields.uid, uid, sizeof uid);
    assert_string_equal(blob->fields.recipient_label, "recv");
    assert_string_equal(blob->fields.label, "imported");
    assert_true(blob->fields.counter == 0x123456789aULL);
    assert_int_equal(ts_curve_of_pkey(key, &c), TS_OK);
    assert_int_equal(blob->fields.curve, c);
    assert_string_equal(blob->fields.digest, digest);
    assert_int_equal(ts_import_point_of(key, c, point, &point_len), TS_OK);
    assert_int_equal(blob->fields.public_point_len, point_len);
    assert_memory_equal(blob->fields.public_point, point, point_len);
    assert_int_equal(blob->fields.wrapped_len % 8, 0);
    assert_int_equal(ts_import_blob_verify(blob, sender), TS_OK);
    assert_int_equal(ts_import_blob_verify(blob, stranger), TS_ERR_AUTH);
    assert_int_equal(ts_import_blob_verify(blob, recipient), TS_ERR_AUTH);

    /* The recipient's key opens it and finds the sealed key; another key opens nothing. */
    opened = open_in_memory(blob, recipient);
    assert_non_null(opened);
    assert_int_equal(EVP_PKEY_eq(opened, key), 1);
    EVP_PKEY_free(opened);
    assert_null(open_in_memory(blob, other));

    /* Every seal takes a fresh ephemeral key. */
    assert_int_equal(ts_keystore_import_seal(sender, recipient, uid, "recv", 0x123456789aULL,
                                             "imported", key, &der2, &len2),
                     TS_OK);
    assert_false(len == len2 && memcmp(der, der2, len) == 0);

    OPENSSL_free(der2);
    ts_import_blob_free(blob);
    OPENSSL_free(der);
    EVP_PKEY_free(sender);
    EVP_PKEY_free(stranger);
    EVP_PKEY_free(recipient);
    EVP_PKEY_free(other);
    EVP_PKEY_free(key);
}

static void test_seal_open(void **state)
{
    (void)state;
    seal_and_open("P-256", "P-256", "SHA256");
    seal_and_open("P-384", "P-384", "SHA384");
    seal_and_open("P-256", "P-384", "SHA384");
    seal_and_open("P-384", "P-256", "SHA256");
}

static void test_seal_refuses(void **state)
{
    EVP_PKEY *sender = ec_key("P-256"), *r256 = ec_key("P-256"), *k256 = ec_key("P-256");
    EVP_PKEY *k384 = ec_key("P-384"), *pub = NULL;
    EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    EVP_PKEY *x = EVP_PKEY_Q_keygen(NULL, NULL, "X25519");
    uint8_t uid[TS_KEYSTORE_UID_LEN] = {1}, point[TS_POINT_MAX], *der = NULL;
    size_t len = 0, point_len = 0;
    (void)state;

    assert_int_equal(ts_import_point_of(k256, TS_CURVE_P256, point, &point_len), TS_OK);
    assert_int_equal(ts_pkey_from_point(TS_CURVE_P256, point, point_len, &pub), TS_OK);
#define SEAL(s, r, u, rl, c, l, k) ts_keystore_import_seal(s, r, u, rl, c, l, k, &der, &len)
    assert_int_equal(SEAL(NULL, r256, uid, "recv", 1, "a", k256), TS_ERR_INVALID);
    assert_int_equal(SEAL(sender, NULL, uid, "recv", 1, "a", k256), TS_ERR_INVALID);
    assert_int_equal(SEAL(sender, r256, NULL, "recv", 1, "a", k256), TS_ERR_INVALID);
    assert_int_equal(SEAL(sender, r256, uid, "recv", 1, "a", NULL), TS_ERR_INVALID);
    assert_int_equal(SEAL(sender, r256, uid, NULL, 1, "a", k256), TS_ERR_INVALID);
    assert_int_equal(SEAL(sender, r256, uid, "re cv", 1, "a", k256), TS_ERR_INVALID);
    assert_int_equal(SEAL(sender, r256, uid, "recv", 1, "", k256), TS_ERR_INVALID);
    assert_int_equal(SEAL(sender, r256, uid, "recv", 1, ".a", k256), TS_ERR_INVALID);
    assert_int_equal(SEAL(sender, r256, uid, "recv", 0, "a", k256), TS_ERR_INVALID);
    /* the key must be a private EC key on the recipient's curve */
    assert_int_equal(SEAL(sender, r256, uid, "recv", 1, "a", k384), TS_ERR_INVALID);
    assert_int_equal(SEAL(sender, r256, uid, "recv", 1, "a", pub), TS_ERR_INVALID);
    assert_int_equal(SEAL(sender, r256, uid, "recv", 1, "a", ed), TS_ERR_UNSUPPORTED);
    assert_int_equal(SEAL(sender, x, uid, "recv", 1, "a", k256), TS_ERR_UNSUPPORTED);
    /* the sender must be an EC key that can sign */
    assert_int_equal(SEAL(ed, r256, uid, "recv", 1, "a", k256), TS_ERR_INVALID);
    assert_int_equal(SEAL(pub, r256, uid, "recv", 1, "a", k256), TS_ERR_CRYPTO);
#undef SEAL
    assert_null(der);
    assert_int_equal(len, 0);
    assert_int_equal(ts_keystore_import_seal(sender, r256, uid, "recv", 1, "a", k256, NULL, &len),
                     TS_ERR_INVALID);
    EVP_PKEY_free(sender);
    EVP_PKEY_free(r256);
    EVP_PKEY_free(k256);
    EVP_PKEY_free(k384);
    EVP_PKEY_free(pub);
    EVP_PKEY_free(ed);
    EVP_PKEY_free(x);
}

/* --- a good blob and variants of it --------------------------------------------------------- */

enum {
    F_VERSION,
    F_UID,
    F_RLABEL,
    F_COUNTER,
    F_LABEL,
    F_CURVE,
    F_EPH,
    F_PUB,
    F_WRAPPED,
    F_DIGEST,
    F_COUNT,
    F_SIGNATURE = F_COUNT, /* the signature, instead of a fresh one over the TBS */
    F_OMIT_LAST,           /* ImportTBS without its last field */
    F_EXTRA,               /* ImportTBS with an eleventh field */
    F_NONE,
};

typedef struct good_blob {
    EVP_PKEY *sender;
    uint8_t *der;
    size_t len;
    char value[F_COUNT][1024]; /* each field as an ASN1_generate_nconf() value */
} good_blob;

static void hex_value(char *out, size_t size, const uint8_t *data, size_t len)
{
    int n = snprintf(out, size, "FORMAT:HEX,OCTETSTRING:");
    for (size_t i = 0; i < len && (size_t)n + 2 < size; i++) {
        n += snprintf(out + n, size - (size_t)n, "%02x", data[i]);
    }
}

static void good_blob_make(good_blob *g, const char *curve)
{
    EVP_PKEY *recipient = EVP_PKEY_Q_keygen(NULL, NULL, "EC", curve);
    EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", curve);
    uint8_t uid[TS_KEYSTORE_UID_LEN];
    ts_import_blob *b = NULL;

    memset(g, 0, sizeof *g);
    g->sender = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "prime256v1");
    assert_non_null(g->sender);
    for (int i = 0; i < TS_KEYSTORE_UID_LEN; i++) {
        uid[i] = (uint8_t)(i * 17);
    }
    assert_int_equal(ts_keystore_import_seal(g->sender, recipient, uid, "recv", 7, "imported", key,
                                             &g->der, &g->len),
                     TS_OK);
    assert_int_equal(ts_import_blob_parse(g->der, g->len, &b), TS_OK);
    const ts_import_fields *f = &b->fields;
    snprintf(g->value[F_VERSION], sizeof g->value[0], "INTEGER:1");
    hex_value(g->value[F_UID], sizeof g->value[0], f->uid, sizeof f->uid);
    snprintf(g->value[F_RLABEL], sizeof g->value[0], "UTF8String:%s", f->recipient_label);
    snprintf(g->value[F_COUNTER], sizeof g->value[0], "INTEGER:%llu",
             (unsigned long long)f->counter);
    snprintf(g->value[F_LABEL], sizeof g->value[0], "UTF8String:%s", f->label);
    snprintf(g->value[F_CURVE], sizeof g->value[0], "OID:%s", ts_curve_group(f->curve));
    hex_value(g->value[F_EPH], sizeof g->value[0], f->ephemeral_point, f->ephemeral_point_len);
    hex_value(g->value[F_PUB], sizeof g->value[0], f->public_point, f->public_point_len);
    hex_value(g->value[F_WRAPPED], sizeof g->value[0], f->wrapped, f->wrapped_len);
    snprintf(g->value[F_DIGEST], sizeof g->value[0], "OID:sha256");
    ts_import_blob_free(b);
    EVP_PKEY_free(recipient);
    EVP_PKEY_free(key);
}

static void good_blob_clear(good_blob *g)
{
    EVP_PKEY_free(g->sender);
    OPENSSL_free(g->der);
}

/* DER from OpenSSL's ASN.1 generator: item from the sections in text. */
static void generate(const char *text, const char *item, uint8_t **der, size_t *len)
{
    CONF *conf = NCONF_new(NULL);
    BIO *bio = BIO_new_mem_buf(text, -1);
    long line = 0;

    assert_int_equal(NCONF_load_bio(conf, bio, &line), 1);
    ASN1_TYPE *at = ASN1_generate_nconf(item, conf);
    if (at == NULL) {
        fail_msg("ASN1_generate_nconf refused:\n%s", text);
    }
    *der = NULL;
    int n = i2d_ASN1_TYPE(at, der);
    assert_true(n > 0);
    *len = (size_t)n;
    ASN1_TYPE_free(at);
    BIO_free(bio);
    NCONF_free(conf);
}

/* The good blob with field (F_*) set to value, signed again by its sender. */
static void variant(const good_blob *g, int field, const char *value, uint8_t **der, size_t *len)
{
    char tbs[16384], text[20480], sig_value[512];
    uint8_t *tbs_der = NULL, sig[TS_SIGNATURE_MAX];
    size_t tbs_len = 0, sig_len = sizeof sig;
    int n = snprintf(tbs, sizeof tbs, "[tbs]\n");
    EVP_MD_CTX *md = EVP_MD_CTX_new();

    for (int i = 0; i < F_COUNT; i++) {
        if (field == F_OMIT_LAST && i == F_COUNT - 1) {
            break;
        }
        n += snprintf(tbs + n, sizeof tbs - (size_t)n, "f%d = %s\n", i,
                      i == field ? value : g->value[i]);
    }
    if (field == F_EXTRA) {
        n += snprintf(tbs + n, sizeof tbs - (size_t)n, "f%d = %s\n", F_COUNT, value);
    }
    assert_true((size_t)n < sizeof tbs);
    generate(tbs, "SEQUENCE:tbs", &tbs_der, &tbs_len);
    assert_int_equal(EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, g->sender), 1);
    assert_int_equal(EVP_DigestSign(md, sig, &sig_len, tbs_der, tbs_len), 1);
    hex_value(sig_value, sizeof sig_value, sig, sig_len);
    snprintf(text, sizeof text, "[blob]\ntbs = SEQUENCE:tbs\nsig = %s\n%s",
             field == F_SIGNATURE ? value : sig_value, tbs);
    generate(text, "SEQUENCE:blob", der, len);
    OPENSSL_free(tbs_der);
    EVP_MD_CTX_free(md);
}

/* --- the parser ----------------------------------------------------------------------------- */

/* Any one flipped bit, cut or added byte is refused by the parser or by the signature. */
static void test_parse_tamper_everywhere(void **state)
{
    good_blob g;
    ts_import_blob *blob = NULL;
    uint8_t buf[TS_IMPORT_BLOB_MAX + 2];
    size_t parsed = 0;
    (void)state;

    good_blob_make(&g, "prime256v1");
    for (size_t i = 0; i < g.len; i++) {
        for (int bit = 0; bit < 8; bit++) {
            memcpy(buf, g.der, g.len);
            buf[i] ^= (uint8_t)(1U << bit);
            ts_err rv = ts_import_blob_parse(buf, g.len, &blob);
            if (rv == TS_OK) {
                parsed++;
                rv = ts_import_blob_verify(blob, g.sender);
                ts_import_blob_free(blob);
                blob = NULL;
                assert_int_equal(rv, TS_ERR_AUTH);
            } else {
                assert_int_equal(rv, TS_ERR_CORRUPT);
                assert_null(blob);
            }
        }
    }
    /* most flips land in the wrapped key, the UID or the signature and parse */
    assert_true(parsed > g.len);
    for (size_t n = 0; n < g.len; n++) {
        assert_int_equal(ts_import_blob_parse(g.der, n, &blob), TS_ERR_CORRUPT);
    }
    memcpy(buf, g.der, g.len);
    buf[g.len] = 0x00;
    assert_int_equal(ts_import_blob_parse(buf, g.len + 1, &blob), TS_ERR_CORRUPT);
    assert_non_null(strstr(ts_error_message(), "trailing"));
    assert_int_equal(ts_import_blob_parse(buf, TS_IMPORT_BLOB_MAX + 1, &blob), TS_ERR_CORRUPT);
    assert_int_equal(ts_import_blob_parse(NULL, 0, &blob), TS_ERR_CORRUPT);
    assert_int_equal(ts_import_blob_parse(g.der, g.len, &blob), TS_OK);
    assert_int_equal(ts_import_blob_verify(blob, g.sender), TS_OK);
    ts_import_blob_free(blob);
    good_blob_clear(&g);
}

/* BER forms of the same content are not DER and are refused. */
static void test_parse_not_der(void **state)
{
    good_blob g;
    ts_import_blob *blob = NULL;
    uint8_t buf[TS_IMPORT_BLOB_MAX + 8];
    (void)state;

    good_blob_make(&g, "secp384r1");
    /* at this size the outer SEQUENCE has a two-byte long form length: 30 82 hi lo */
    assert_int_equal(g.der[0], 0x30);
    assert_int_equal(g.der[1], 0x82);
    /* a long form with a leading zero byte: 30 83 00 hi lo */
    buf[0] = 0x30;
    buf[1] = 0x83;
    buf[2] = 0x00;
    memcpy(buf + 3, g.der + 2, g.len - 2);
    assert_int_equal(ts_import_blob_parse(buf, g.len + 1, &blob), TS_ERR_CORRUPT);
    assert_non_null(strstr(ts_error_message(), "DER"));
    /* an indefinite length: 30 80 ... 00 00 */
    buf[1] = 0x80;
    memcpy(buf + 2, g.der + 4, g.len - 4);
    buf[g.len - 2] = 0x00;
    buf[g.len - 1] = 0x00;
    assert_int_equal(ts_import_blob_parse(buf, g.len, &blob), TS_ERR_CORRUPT);
    assert_null(blob);
    good_blob_clear(&g);
}

#define P256_X1_Y1                                                                                 \
    "0000000000000000000000000000000000000000000000000000000000000001"                             \
    "0000000000000000000000000000000000000000000000000000000000000001"
#define P256_G_COMPRESSED "036b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296"
#define LABEL_64          "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

/* Well-formed DER with one field changed (and signed again): refused naming it, or accepted. */
static void test_parse_fields(void **state)
{
    static const struct {
        int field;
        const char *value;
        const char *want; /* a word of the message; NULL: parses */
        ts_err want_verify;
    } cases[] = {
        {F_VERSION, "INTEGER:2", "version", 0},
        {F_VERSION, "INTEGER:0", "version", 0},
        {F_VERSION, "INTEGER:-1", "version", 0},
        {F_VERSION, "OCTETSTRING:1", "TesseraKeyImport", 0},
        {F_UID, "FORMAT:HEX,OCTETSTRING:000102030405060708090a0b0c0d0e", "recipientUid", 0},
        {F_UID, "FORMAT:HEX,OCTETSTRING:000102030405060708090a0b0c0d0e0f10", "recipientUid", 0},
        {F_RLABEL, "UTF8String:", "recipientLabel", 0},
        {F_RLABEL, "UTF8String:two words", "recipientLabel", 0},
        {F_RLABEL, "UTF8String:.hidden", "recipientLabel", 0},
        {F_RLABEL, "UTF8String:a/b", "recipientLabel", 0},
        {F_RLABEL, "PRINTABLESTRING:recv", "TesseraKeyImport", 0},
        {F_COUNTER, "INTEGER:0", "counter", 0},
        {F_COUNTER, "INTEGER:-1", "counter", 0},
        {F_COUNTER, "INTEGER:0x10000000000000000", "counter", 0},
        {F_COUNTER, "INTEGER:0xFFFFFFFFFFFFFFFF", NULL, TS_OK},
        {F_LABEL, "UTF8String:" LABEL_64 "a", "label is 65 bytes", 0},
        {F_LABEL, "UTF8String:" LABEL_64, NULL, TS_OK},
        {F_LABEL, "UTF8String:a;b", "label", 0},
        {F_CURVE, "OID:secp521r1", "curve", 0},
        {F_CURVE, "OID:sha256", "curve", 0},
        {F_CURVE, "OID:secp384r1", "ephemeralPoint", 0},
        {F_EPH, "FORMAT:HEX,OCTETSTRING:" P256_G_COMPRESSED, "ephemeralPoint", 0},
        {F_EPH, "FORMAT:HEX,OCTETSTRING:04" P256_X1_Y1, "ephemeralPoint", 0},
        {F_EPH, "FORMAT:HEX,OCTETSTRING:06" P256_X1_Y1, "ephemeralPoint", 0},
        {F_EPH, "FORMAT:HEX,OCTETSTRING:00", "ephemeralPoint", 0},
        {F_PUB, "FORMAT:HEX,OCTETSTRING:04" P256_X1_Y1, "publicPoint", 0},
        {F_PUB, "OCTETSTRING:", "publicPoint", 0},
        {F_WRAPPED, "FORMAT:HEX,OCTETSTRING:00112233445566", "wrappedKey", 0},
        {F_WRAPPED, "FORMAT:HEX,OCTETSTRING:0011223344556677", "wrappedKey", 0},
        {F_WRAPPED, "FORMAT:HEX,OCTETSTRING:001122334455667788", "wrappedKey", 0},
        {F_DIGEST, "OID:sha1", "signatureDigest", 0},
        {F_DIGEST, "OID:sha512", "signatureDigest", 0},
        {F_DIGEST, "NULL", "TesseraKeyImport", 0},
        {F_SIGNATURE, "OCTETSTRING:", "signature", 0},
        {F_SIGNATURE, "FORMAT:HEX,OCTETSTRING:0102030405060708", "signature", 0},
        {F_SIGNATURE, "FORMAT:HEX,OCTETSTRING:3006020101020101", NULL, TS_ERR_AUTH},
        {F_SIGNATURE, "FORMAT:HEX,OCTETSTRING:300702020001020101", "signature", 0},
        {F_SIGNATURE, "FORMAT:HEX,OCTETSTRING:30060201010201010000", "signature", 0},
        {F_OMIT_LAST, "", "TesseraKeyImport", 0},
        {F_EXTRA, "INTEGER:1", "TesseraKeyImport", 0},
        {F_NONE, "", NULL, TS_OK},
    };
    good_blob g;
    (void)state;

    good_blob_make(&g, "prime256v1");
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t *der = NULL;
        size_t len = 0;
        ts_import_blob *blob = NULL;

        variant(&g, cases[i].field, cases[i].value, &der, &len);
        ts_err rv = ts_import_blob_parse(der, len, &blob);
        if (cases[i].want == NULL) {
            if (rv != TS_OK) {
                fail_msg("case %zu (%s): %s", i, cases[i].value, ts_error_message());
            }
            assert_int_equal(ts_import_blob_verify(blob, g.sender), cases[i].want_verify);
        } else if (rv != TS_ERR_CORRUPT || strstr(ts_error_message(), cases[i].want) == NULL) {
            fail_msg("case %zu (%s): got %d '%s', want corrupt naming %s", i, cases[i].value,
                     (int)rv, ts_error_message(), cases[i].want);
        }
        if (cases[i].field == F_NONE) {
            /* unchanged, the generator rebuilds the signed part of the good blob exactly */
            ts_import_blob *orig = NULL;
            assert_int_equal(ts_import_blob_parse(g.der, g.len, &orig), TS_OK);
            assert_int_equal(blob->tbs_len, orig->tbs_len);
            assert_memory_equal(blob->tbs, orig->tbs, orig->tbs_len);
            ts_import_blob_free(orig);
        }
        ts_import_blob_free(blob);
        OPENSSL_free(der);
    }
    good_blob_clear(&g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kek_rfc5869),   cmocka_unit_test(test_kek_is_hmac),
        cmocka_unit_test(test_info_layout),   cmocka_unit_test(test_seal_open),
        cmocka_unit_test(test_seal_refuses),  cmocka_unit_test(test_parse_tamper_everywhere),
        cmocka_unit_test(test_parse_not_der), cmocka_unit_test(test_parse_fields),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
