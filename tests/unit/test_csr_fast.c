/* The fast CSR parse (src/pki/csr_fast.c) gives the same request as d2i_X509_REQ(). */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "pki/pki_internal.h"
#include "tessera/pki.h"

/* A signed DER request for key, CN=fast-test; *der freed with OPENSSL_free(). */
static int make_csr(EVP_PKEY *key, unsigned char **der)
{
    X509_REQ *req = X509_REQ_new();
    int len;

    assert_non_null(req);
    assert_int_equal(X509_NAME_add_entry_by_txt(X509_REQ_get_subject_name(req), "CN", MBSTRING_ASC,
                                                (const unsigned char *)"fast-test", -1, -1, 0),
                     1);
    assert_int_equal(X509_REQ_set_pubkey(req, key), 1);
    assert_true(X509_REQ_sign(req, key, EVP_sha256()) > 0);
    *der = NULL;
    len = i2d_X509_REQ(req, der);
    assert_true(len > 0);
    X509_REQ_free(req);
    return len;
}

static void spki_der(X509_PUBKEY *spki, unsigned char **der, int *len)
{
    *der = NULL;
    *len = i2d_X509_PUBKEY(spki, der);
    assert_true(*len > 0);
}

/* Parsed fast (when expect_fast) and the general way, the request is the same. */
static void check_same(EVP_PKEY *key, int expect_fast)
{
    unsigned char *der = NULL, *again = NULL, *a = NULL, *b = NULL;
    int len = make_csr(key, &der), again_len, la, lb;
    X509_REQ *fast = NULL, *parsed = NULL;
    X509 *cert = X509_new();

    assert_int_equal(ts_pki_csr_decode_fast(der, (size_t)len, &fast), expect_fast);
    assert_int_equal(ts_csr_parse(der, (size_t)len, &parsed), TS_OK);
    again_len = i2d_X509_REQ(parsed, &again);
    assert_int_equal(again_len, len);
    assert_memory_equal(again, der, (size_t)len);
    assert_int_equal(EVP_PKEY_eq(X509_REQ_get0_pubkey(parsed), key), 1);
    assert_int_equal(X509_REQ_verify(parsed, X509_REQ_get0_pubkey(parsed)), 1);
    /* A certificate made from the parsed key carries the request's SubjectPublicKeyInfo. */
    assert_non_null(cert);
    assert_int_equal(X509_set_pubkey(cert, X509_REQ_get0_pubkey(parsed)), 1);
    spki_der(X509_get_X509_PUBKEY(cert), &a, &la);
    spki_der(X509_REQ_get_X509_PUBKEY(parsed), &b, &lb);
    assert_int_equal(la, lb);
    assert_memory_equal(a, b, (size_t)la);
    assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(cert), key), 1);
    if (expect_fast) {
        assert_non_null(fast);
        assert_int_equal(EVP_PKEY_eq(X509_REQ_get0_pubkey(fast), key), 1);
    } else {
        assert_null(fast);
    }
    X509_free(cert);
    X509_REQ_free(fast);
    X509_REQ_free(parsed);
    OPENSSL_free(der);
    OPENSSL_free(again);
    OPENSSL_free(a);
    OPENSSL_free(b);
}

static void test_curves(void **state)
{
    static const char *const curves[] = {"P-256", "P-384", "P-521"};

    (void)state;
    for (size_t i = 0; i < sizeof curves / sizeof curves[0]; i++) {
        EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", curves[i]);
        assert_non_null(key);
        check_same(key, 1);
        EVP_PKEY_free(key);
    }
}

static void test_compressed_point(void **state)
{
    EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");

    (void)state;
    assert_non_null(key);
    assert_int_equal(EVP_PKEY_set_utf8_string_param(key, OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT,
                                                    "compressed"),
                     1);
    check_same(key, 1);
    EVP_PKEY_free(key);
}

static void test_other_keys_take_the_general_path(void **state)
{
    EVP_PKEY *rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    EVP_PKEY *k1 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "secp256k1");

    (void)state;
    assert_non_null(rsa);
    assert_non_null(k1);
    check_same(rsa, 0);
    check_same(k1, 0);
    EVP_PKEY_free(rsa);
    EVP_PKEY_free(k1);
}

/* A request whose signature was altered still parses, and its check fails on the signature. */
static void test_bad_signature(void **state)
{
    EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    unsigned char *der = NULL;
    X509_REQ *req = NULL;
    ts_profile *profile = NULL;
    int len;

    (void)state;
    assert_non_null(key);
    len = make_csr(key, &der);
    der[len - 3] ^= 0x01; /* inside the signature's INTEGER s */
    assert_int_equal(ts_csr_parse(der, (size_t)len, &req), TS_OK);
    assert_int_equal(ts_profile_builtin("device", &profile), TS_OK);
    assert_int_equal(ts_csr_check(req, profile), TS_ERR_AUTH);
    ts_profile_free(profile);
    X509_REQ_free(req);
    OPENSSL_free(der);
    EVP_PKEY_free(key);
}

/* A point that is not on the curve is never accepted. */
static void test_point_off_curve(void **state)
{
    EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    unsigned char *der = NULL;
    X509_REQ *fast = NULL, *req = NULL;
    const unsigned char *point = NULL;
    int len, point_len = 0;

    (void)state;
    assert_non_null(key);
    len = make_csr(key, &der);
    assert_int_equal(ts_csr_parse(der, (size_t)len, &req), TS_OK);
    assert_int_equal(
        X509_PUBKEY_get0_param(NULL, &point, &point_len, NULL, X509_REQ_get_X509_PUBKEY(req)), 1);
    assert_int_equal(point_len, 65);
    /* The last byte of y, found in the DER by its value. */
    unsigned char *at = memmem(der, (size_t)len, point, (size_t)point_len);
    assert_non_null(at);
    at[point_len - 1] ^= 0x01;
    assert_int_equal(ts_pki_csr_decode_fast(der, (size_t)len, &fast), 0);
    assert_null(fast);
    X509_REQ_free(req);
    req = NULL;
    /* The general path keeps its own verdict: no key, so the check refuses it. */
    if (ts_csr_parse(der, (size_t)len, &req) == TS_OK) {
        ts_profile *profile = NULL;
        assert_int_equal(ts_profile_builtin("device", &profile), TS_OK);
        assert_int_not_equal(ts_csr_check(req, profile), TS_OK);
        ts_profile_free(profile);
    }
    X509_REQ_free(req);
    OPENSSL_free(der);
    EVP_PKEY_free(key);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_curves),
        cmocka_unit_test(test_compressed_point),
        cmocka_unit_test(test_other_keys_take_the_general_path),
        cmocka_unit_test(test_bad_signature),
        cmocka_unit_test(test_point_off_curve),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
