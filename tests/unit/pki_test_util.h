/*
 * Helpers of the PKI tests (test_profile.c, test_csr_policy.c, test_issue.c, test_crl_ocsp.c): a
 * root and an issuing CA whose key lives in a soft: key store, keys and CSRs made with OpenSSL,
 * and certificate inspection.
 */
#ifndef TS_TEST_PKI_TEST_UTIL_H
#define TS_TEST_PKI_TEST_UTIL_H

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "tessera/keystore.h"
#include "tessera/pki.h"
#include "tessera/provider.h"
#include "test_support.h"

#define PKI_CRL_URL  "http://ca.example.test/crl/default.crl"
#define PKI_OCSP_URL "http://ca.example.test/ocsp"
#define PKI_AIA_URL  "http://ca.example.test/ca/default.crt"

typedef struct pki_fx {
    char tmp[PATH_MAX / 2];
    ts_keystore *ks;
    EVP_PKEY *root_key;    /* in memory, P-384 */
    X509 *root;            /* pathLen 1 */
    EVP_PKEY *issuing_key; /* in the soft: store, P-256 */
    X509 *issuing;         /* pathLen 0, signed by root_key */
    time_t made_from;      /* the clock before and after the two were made */
    time_t made_until;
} pki_fx;

static inline EVP_PKEY *pki_ec_key(const char *curve)
{
    EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", curve);
    assert_non_null(key);
    return key;
}

static inline EVP_PKEY *pki_rsa_key(size_t bits)
{
    EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", bits);
    assert_non_null(key);
    return key;
}

static inline void pki_serial(uint8_t serial[TS_SERIAL_LEN])
{
    assert_int_equal(ts_serial_random(serial), TS_OK);
}

/* A CA certificate: a root when issuer is NULL. */
static inline X509 *pki_ca(const char *cn, EVP_PKEY *subject_key, X509 *issuer,
                           EVP_PKEY *issuer_key, int path_len, int days)
{
    uint8_t serial[TS_SERIAL_LEN];
    ts_ca_params p = {0};
    X509 *cert = NULL;

    pki_serial(serial);
    p.common_name = cn;
    p.org = "Tessera Test";
    p.country = "DE";
    p.days = days;
    p.path_len = path_len;
    p.serial = serial;
    p.subject_key = subject_key;
    p.issuer_cert = issuer;
    p.issuer_key = issuer_key;
    if (issuer != NULL) {
        p.crl_url = PKI_CRL_URL;
        p.ocsp_url = PKI_OCSP_URL;
    }
    if (ts_ca_cert_make(&p, &cert) != TS_OK) {
        fail_msg("ts_ca_cert_make: %s", ts_error_message());
    }
    return cert;
}

static inline int pki_setup(pki_fx *fx)
{
    char uri[PATH_MAX];

    memset(fx, 0, sizeof *fx);
    if (ts_test_tmpdir(fx->tmp, sizeof fx->tmp) != 0) {
        return -1;
    }
    snprintf(uri, sizeof uri, "soft:%s/ks?pin-value=1234", fx->tmp);
    if (ts_keystore_create(uri, NULL, &fx->ks) != TS_OK ||
        ts_keystore_generate(fx->ks, "issuing", TS_CURVE_P256) != TS_OK ||
        ts_keystore_evp_pkey(fx->ks, "issuing", &fx->issuing_key) != TS_OK) {
        fprintf(stderr, "key store: %s\n", ts_error_message());
        return -1;
    }
    fx->root_key = pki_ec_key("P-384");
    fx->made_from = time(NULL);
    fx->root = pki_ca("Test Root", fx->root_key, NULL, fx->root_key, 1, 3650);
    fx->issuing = pki_ca("Test Issuing", fx->issuing_key, fx->root, fx->root_key, 0, 1825);
    fx->made_until = time(NULL);
    return 0;
}

static inline void pki_teardown(pki_fx *fx)
{
    X509_free(fx->root);
    X509_free(fx->issuing);
    EVP_PKEY_free(fx->root_key);
    EVP_PKEY_free(fx->issuing_key);
    ts_keystore_free(fx->ks);
    ts_test_rmtree(fx->tmp);
    memset(fx, 0, sizeof *fx);
}

/*
 * A CSR signed by key. subject is "/K=V/K=V"; exts is a list of "name=value" strings in
 * OpenSSL's configuration syntax ("subjectAltName=DNS:a.example", "basicConstraints=CA:TRUE"),
 * ending with NULL.
 */
static inline X509_REQ *pki_csr(EVP_PKEY *key, const char *subject, const char *const *exts)
{
    X509_REQ *req = X509_REQ_new();
    X509_NAME *name = X509_NAME_new();
    STACK_OF(X509_EXTENSION) *sk = sk_X509_EXTENSION_new_null();
    char buf[512];

    assert_non_null(req);
    assert_non_null(name);
    snprintf(buf, sizeof buf, "%s", subject);
    for (char *part = strtok(buf, "/"); part != NULL; part = strtok(NULL, "/")) {
        char *eq = strchr(part, '=');
        assert_non_null(eq);
        *eq = '\0';
        assert_true(X509_NAME_add_entry_by_txt(name, part, MBSTRING_UTF8, (unsigned char *)eq + 1,
                                               -1, -1, 0));
    }
    assert_true(X509_REQ_set_subject_name(req, name));
    for (size_t i = 0; exts != NULL && exts[i] != NULL; i++) {
        char line[512];
        snprintf(line, sizeof line, "%s", exts[i]);
        char *eq = strchr(line, '=');
        assert_non_null(eq);
        *eq = '\0';
        X509_EXTENSION *ext = X509V3_EXT_conf(NULL, NULL, line, eq + 1);
        assert_non_null(ext);
        assert_true(sk_X509_EXTENSION_push(sk, ext) > 0);
    }
    if (sk_X509_EXTENSION_num(sk) > 0) {
        assert_true(X509_REQ_add_extensions(req, sk));
    }
    assert_true(X509_REQ_set_pubkey(req, key));
    assert_true(X509_REQ_sign(req, key, EVP_sha256()) > 0);
    sk_X509_EXTENSION_pop_free(sk, X509_EXTENSION_free);
    X509_NAME_free(name);
    return req;
}

/* The CSR's DER encoding in a new buffer. */
static inline size_t pki_csr_der(X509_REQ *req, uint8_t **der)
{
    unsigned char *p = NULL;
    int len = i2d_X509_REQ(req, &p);

    assert_true(len > 0);
    *der = p;
    return (size_t)len;
}

/* The subject as one line, "C=DE, O=..., CN=..." (RFC 2253 order reversed, as OpenSSL prints). */
static inline void pki_name_line(const X509_NAME *name, char *buf, size_t size)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *data = NULL;
    long len;

    assert_non_null(bio);
    assert_true(X509_NAME_print_ex(bio, name, 0, XN_FLAG_ONELINE & ~ASN1_STRFLGS_ESC_MSB) >= 0);
    len = BIO_get_mem_data(bio, &data);
    snprintf(buf, size, "%.*s", (int)len, data);
    BIO_free(bio);
}

/* The value of an extension in the certificate as OpenSSL prints it. */
static inline int pki_ext_text(X509 *cert, int nid, char *buf, size_t size, int *critical)
{
    int idx = X509_get_ext_by_NID(cert, nid, -1);
    BIO *bio;
    char *data = NULL;
    long len;

    if (idx < 0) {
        return 0;
    }
    X509_EXTENSION *ext = X509_get_ext(cert, idx);
    if (critical != NULL) {
        *critical = X509_EXTENSION_get_critical(ext);
    }
    bio = BIO_new(BIO_s_mem());
    assert_non_null(bio);
    assert_true(X509V3_EXT_print(bio, ext, 0, 0));
    len = BIO_get_mem_data(bio, &data);
    snprintf(buf, size, "%.*s", (int)len, data);
    BIO_free(bio);
    return 1;
}

static inline time_t pki_time(const ASN1_TIME *t)
{
    struct tm tm;

    assert_true(ASN1_TIME_to_tm(t, &tm));
    return timegm(&tm);
}

/* Verifies leaf up to root with OpenSSL's path validation; returns the X509_V_ code. */
static inline int pki_verify_chain(X509 *root, X509 *issuing, X509 *leaf, X509_CRL *crl)
{
    X509_STORE *store = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    STACK_OF(X509) *untrusted = sk_X509_new_null();
    int rc;

    assert_true(X509_STORE_add_cert(store, root));
    assert_true(sk_X509_push(untrusted, issuing) > 0);
    if (crl != NULL) {
        assert_true(X509_STORE_add_crl(store, crl));
        X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK);
    }
    assert_true(X509_STORE_CTX_init(ctx, store, leaf, untrusted));
    rc = X509_verify_cert(ctx) == 1 ? X509_V_OK : X509_STORE_CTX_get_error(ctx);
    X509_STORE_CTX_free(ctx);
    sk_X509_free(untrusted);
    X509_STORE_free(store);
    return rc;
}

#define assert_err(call, code)                                                                     \
    do {                                                                                           \
        ts_err got_ = (call);                                                                      \
        if (got_ != (code)) {                                                                      \
            fail_msg("%s: got %s (%s), want %s", #call, ts_err_name(got_), ts_error_message(),     \
                     ts_err_name(code));                                                           \
        }                                                                                          \
    } while (0)

#define assert_msg(needle)                                                                         \
    do {                                                                                           \
        if (strstr(ts_error_message(), (needle)) == NULL) {                                        \
            fail_msg("message '%s' lacks '%s'", ts_error_message(), (needle));                     \
        }                                                                                          \
    } while (0)

#endif
