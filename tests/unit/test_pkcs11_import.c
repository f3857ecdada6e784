/*
 * The PKCS#11 backend's unwrap_import on SoftHSM2. The request is built here the way a sender
 * builds it (ephemeral key, ECDH, KEK = HMAC-SHA256(Z, info || 0x01), AES key wrap with padding
 * of a PKCS#8 key), then the imported key must sign inside the token as the original key.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <openssl/hmac.h>
#include <openssl/x509.h>

#include "p11_test_util.h"

typedef struct import_fx {
    p11_fx fx;
    p11_store *st;
} import_fx;

/* What the sender makes: everything ts_ks_unwrap points at. */
typedef struct sealed {
    uint8_t peer_point[TS_POINT_MAX];
    uint8_t public_point[TS_POINT_MAX];
    uint8_t info[64];
    uint8_t wrapped[512];
    ts_ks_unwrap req;
} sealed;

static int setup(void **state)
{
    import_fx *ix = calloc(1, sizeof *ix);
    if (ix == NULL || p11_fx_setup(&ix->fx) != 0) {
        free(ix);
        return -1;
    }
    ix->st = p11_test_state(ix->fx.uri);
    if (ix->st == NULL ||
        ts_ks_pkcs11_backend.generate(ix->st, "recipient", TS_CURVE_P256, 0) != TS_OK ||
        ts_ks_pkcs11_backend.generate(ix->st, "recipient384", TS_CURVE_P384, 0) != TS_OK) {
        return -1;
    }
    *state = ix;
    return 0;
}

static int teardown(void **state)
{
    import_fx *ix = *state;
    ts_ks_pkcs11_backend.close(ix->st);
    p11_fx_teardown(&ix->fx);
    free(ix);
    return 0;
}

/* Seals key for the store's key recipient, to be stored as label. */
static void seal(import_fx *ix, const char *recipient, EVP_PKEY *key, const char *label, sealed *s)
{
    EVP_PKEY *recipient_pub = NULL, *eph = NULL;
    uint8_t z[TS_SECRET_MAX], kek[32];
    size_t z_len = sizeof z, point_len = 0;
    unsigned int kek_len = sizeof kek;
    ts_curve recipient_curve, key_curve;
    unsigned char *p8 = NULL;
    int outl = 0, fin = 0;

    memset(s, 0, sizeof *s);
    assert_int_equal(ts_ks_pkcs11_backend.public_key(ix->st, recipient, &recipient_pub), TS_OK);
    assert_int_equal(ts_curve_of_pkey(recipient_pub, &recipient_curve), TS_OK);
    assert_int_equal(ts_curve_of_pkey(key, &key_curve), TS_OK);
    eph = p11_test_ec_key(recipient_curve);
    assert_non_null(eph);
    assert_int_equal(p11_test_ecdh(eph, recipient_pub, z, &z_len), 0);
    memcpy(s->info, "tessera test import info", 24);
    s->info[24] = 0x01; /* the HKDF block counter */
    assert_non_null(HMAC(EVP_sha256(), z, (int)z_len, s->info, 25, kek, &kek_len));

    /* PKCS#8 PrivateKeyInfo of the key, wrapped with AES-256 key wrap with padding. */
    PKCS8_PRIV_KEY_INFO *info = EVP_PKEY2PKCS8(key);
    assert_non_null(info);
    int p8_len = i2d_PKCS8_PRIV_KEY_INFO(info, &p8);
    assert_true(p8_len > 0);
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    EVP_CIPHER_CTX_set_flags(ctx, EVP_CIPHER_CTX_FLAG_WRAP_ALLOW);
    assert_int_equal(EVP_EncryptInit_ex(ctx, EVP_aes_256_wrap_pad(), NULL, kek, NULL), 1);
    assert_int_equal(EVP_EncryptUpdate(ctx, s->wrapped, &outl, p8, p8_len), 1);
    assert_int_equal(EVP_EncryptFinal_ex(ctx, s->wrapped + outl, &fin), 1);
    EVP_CIPHER_CTX_free(ctx);
    PKCS8_PRIV_KEY_INFO_free(info);
    OPENSSL_clear_free(p8, (size_t)p8_len);
    OPENSSL_cleanse(z, sizeof z);
    OPENSSL_cleanse(kek, sizeof kek);

    assert_int_equal(ts_pkey_to_point(eph, s->peer_point, sizeof s->peer_point, &point_len), TS_OK);
    s->req.peer_point_len = point_len;
    assert_int_equal(ts_pkey_to_point(key, s->public_point, sizeof s->public_point, &point_len),
                     TS_OK);
    s->req.public_point_len = point_len;
    s->req.recipient_label = recipient;
    s->req.peer_point = s->peer_point;
    s->req.info = s->info;
    s->req.info_len = 24; /* the backend appends the counter byte itself */
    s->req.wrapped = s->wrapped;
    s->req.wrapped_len = (size_t)(outl + fin);
    s->req.label = label;
    s->req.curve = key_curve;
    s->req.public_point = s->public_point;
    EVP_PKEY_free(eph);
    EVP_PKEY_free(recipient_pub);
}

static void check_imported(import_fx *ix, const char *label, EVP_PKEY *key)
{
    uint8_t digest[32], sig[TS_SIGNATURE_MAX];
    size_t sig_len = sizeof sig;
    EVP_PKEY *pub = NULL;
    p11_key_entry *entry = NULL;

    assert_int_equal(ts_ks_pkcs11_backend.random(ix->st, digest, sizeof digest), TS_OK);
    assert_int_equal(
        ts_ks_pkcs11_backend.sign_digest(ix->st, label, digest, sizeof digest, sig, &sig_len),
        TS_OK);
    assert_true(p11_test_verify(key, digest, sizeof digest, sig, sig_len));
    assert_int_equal(ts_ks_pkcs11_backend.public_key(ix->st, label, &pub), TS_OK);
    assert_true(p11_test_same_public(pub, key));
    EVP_PKEY_free(pub);
    assert_int_equal(p11_key_lookup(ix->st, label, &entry), TS_OK);
    assert_int_equal(p11_test_bool(ix->st, entry->priv, CKA_TOKEN), 1);
    assert_int_equal(p11_test_bool(ix->st, entry->priv, CKA_SENSITIVE), 1);
    assert_int_equal(p11_test_bool(ix->st, entry->priv, CKA_EXTRACTABLE), 0);
    assert_int_equal(p11_test_bool(ix->st, entry->priv, CKA_PRIVATE), 1);
    assert_int_equal(p11_test_bool(ix->st, entry->priv, CKA_DERIVE), 1);
}

/* No session object may outlive an import, whatever its outcome. */
static void assert_no_session_objects(import_fx *ix)
{
    CK_BBOOL no = CK_FALSE;
    assert_int_equal(p11_test_count(ix->st, CKA_TOKEN, &no, sizeof no), 0);
}

static void test_import_p256_and_p384(void **state)
{
    import_fx *ix = *state;
    sealed s;
    EVP_PKEY *k256 = p11_test_ec_key(TS_CURVE_P256), *k384 = p11_test_ec_key(TS_CURVE_P384);

    seal(ix, "recipient", k256, "imported", &s);
    assert_int_equal(ts_ks_pkcs11_backend.unwrap_import(ix->st, &s.req), TS_OK);
    check_imported(ix, "imported", k256);
    assert_no_session_objects(ix);

    seal(ix, "recipient384", k384, "imported384", &s);
    assert_int_equal(ts_ks_pkcs11_backend.unwrap_import(ix->st, &s.req), TS_OK);
    check_imported(ix, "imported384", k384);
    assert_no_session_objects(ix);

    /* Seen by a store opened afterwards, through the front. */
    ts_keystore_entry *e = NULL;
    size_t n = 0;
    assert_int_equal(ts_keystore_list(ix->fx.ks, &e, &n), TS_OK);
    int found = 0;
    for (size_t i = 0; i < n; i++) {
        found += strcmp(e[i].label, "imported384") == 0 && e[i].curve == TS_CURVE_P384;
    }
    assert_int_equal(found, 1);
    OPENSSL_free(e);
    EVP_PKEY_free(k256);
    EVP_PKEY_free(k384);
}

static void test_import_refusals(void **state)
{
    import_fx *ix = *state;
    sealed s;
    EVP_PKEY *key = p11_test_ec_key(TS_CURVE_P256), *other = p11_test_ec_key(TS_CURVE_P256);
    size_t len = 0;

    /* The public key sent along is not the wrapped key's: refused, nothing stored. */
    seal(ix, "recipient", key, "mismatch", &s);
    assert_int_equal(ts_pkey_to_point(other, s.public_point, sizeof s.public_point, &len), TS_OK);
    assert_int_equal(ts_ks_pkcs11_backend.unwrap_import(ix->st, &s.req), TS_ERR_AUTH);
    assert_int_equal(p11_test_count_label(ix->st, "mismatch"), 0);
    assert_no_session_objects(ix);

    /* A flipped bit in the wrapped key: the unwrap fails, nothing stored. */
    seal(ix, "recipient", key, "tampered", &s);
    s.wrapped[5] ^= 0x40;
    assert_int_equal(ts_ks_pkcs11_backend.unwrap_import(ix->st, &s.req), TS_ERR_AUTH);
    assert_int_equal(p11_test_count_label(ix->st, "tampered"), 0);
    assert_no_session_objects(ix);

    /* Other info: another KEK, the unwrap fails. */
    seal(ix, "recipient", key, "wrong-info", &s);
    s.info[0] ^= 1;
    assert_int_equal(ts_ks_pkcs11_backend.unwrap_import(ix->st, &s.req), TS_ERR_AUTH);
    assert_int_equal(p11_test_count_label(ix->st, "wrong-info"), 0);
    assert_no_session_objects(ix);

    /* A key on P-256 announced as P-384. */
    seal(ix, "recipient", key, "wrong-curve", &s);
    s.req.curve = TS_CURVE_P384;
    assert_int_equal(ts_ks_pkcs11_backend.unwrap_import(ix->st, &s.req), TS_ERR_AUTH);
    assert_int_equal(p11_test_count_label(ix->st, "wrong-curve"), 0);

    /* The label is taken; the recipient is not a key. */
    seal(ix, "recipient", key, "recipient384", &s);
    assert_int_equal(ts_ks_pkcs11_backend.unwrap_import(ix->st, &s.req), TS_ERR_EXISTS);
    seal(ix, "recipient", key, "fine", &s);
    s.req.recipient_label = "nobody";
    assert_int_equal(ts_ks_pkcs11_backend.unwrap_import(ix->st, &s.req), TS_ERR_NOT_FOUND);
    assert_no_session_objects(ix);

    /* And the same blob, untouched, still imports. */
    s.req.recipient_label = "recipient";
    assert_int_equal(ts_ks_pkcs11_backend.unwrap_import(ix->st, &s.req), TS_OK);
    check_imported(ix, "fine", key);
    EVP_PKEY_free(key);
    EVP_PKEY_free(other);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_import_p256_and_p384, setup, teardown),
        cmocka_unit_test_setup_teardown(test_import_refusals, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
