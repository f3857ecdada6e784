/*
 * Batches (src/pki/issue_batch.c): checking and issuing many requests with contexts made once
 * gives the same verdicts and certificates as one request at a time, whatever the order.
 */
#include "pki_test_util.h"

static pki_fx fx;

/* The device profile with P-384 keys allowed too, so one batch verifies on two curves. */
static const char two_curves[] =
    "{\"name\": \"device2\", \"kind\": \"device\", \"key_types\": [\"P-256\", \"P-384\"],"
    " \"signature_digest\": \"SHA-256\", \"key_usage\": [\"digitalSignature\"],"
    " \"extended_key_usage\": [\"clientAuth\"], \"csr_subject\": [\"CN\"],"
    " \"subject\": [{\"type\": \"O\", \"value\": \"<org>\"},"
    " {\"type\": \"CN\", \"value\": \"<device UID>\"}], \"validity\": {\"days\": 30}}";

static int setup(void **state)
{
    (void)state;
    return pki_setup(&fx);
}

static int teardown(void **state)
{
    (void)state;
    pki_teardown(&fx);
    return 0;
}

static ts_profile *profile_two_curves(void)
{
    ts_profile *p = NULL;
    if (ts_profile_from_json(two_curves, strlen(two_curves), &p) != TS_OK) {
        fail_msg("profile: %s", ts_error_message());
    }
    return p;
}

/* A request parsed from its DER, as a service receives it. */
static X509_REQ *received(X509_REQ *made)
{
    uint8_t *der = NULL;
    size_t len = pki_csr_der(made, &der);
    X509_REQ *req = NULL;

    assert_int_equal(ts_csr_parse(der, len, &req), TS_OK);
    OPENSSL_free(der);
    X509_REQ_free(made);
    return req;
}

/* A request naming one key and signed by another: its signature does not verify. */
static X509_REQ *signed_by_other(EVP_PKEY *named, EVP_PKEY *signer)
{
    X509_REQ *req = pki_csr(named, "/CN=dev-swap", NULL);
    assert_true(X509_REQ_sign(req, signer, EVP_sha256()) > 0);
    return received(req);
}

/*
 * One batch sees good and bad requests on two curves, in an order where each bad one follows a
 * good one of the same curve: the key left from the good one must not verify the bad one. Each
 * verdict is the same as ts_csr_check() gives alone.
 */
static void test_verdicts_match_single_checks(void **state)
{
    EVP_PKEY *a = pki_ec_key("P-256"), *b = pki_ec_key("P-256");
    EVP_PKEY *c = pki_ec_key("P-384"), *d = pki_ec_key("P-384");
    ts_profile *p = profile_two_curves();
    ts_issue_batch *batch = NULL;
    struct {
        X509_REQ *req;
        ts_err want;
    } cases[] = {
        {received(pki_csr(a, "/CN=dev-a", NULL)), TS_OK},
        {signed_by_other(b, a), TS_ERR_AUTH},
        {received(pki_csr(c, "/CN=dev-c", NULL)), TS_OK},
        {signed_by_other(d, c), TS_ERR_AUTH},
        {received(pki_csr(b, "/CN=dev-b", NULL)), TS_OK},
        {signed_by_other(a, b), TS_ERR_AUTH},
        {received(pki_csr(d, "/CN=dev-d", NULL)), TS_OK},
        {received(pki_csr(a, "/CN=dev-a/O=Other", NULL)), TS_ERR_POLICY},
        {received(pki_csr(a, "/CN=dev-a2", NULL)), TS_OK},
    };
    enum { CASES = sizeof cases / sizeof cases[0] };

    (void)state;
    assert_int_equal(ts_issue_batch_new(p, fx.issuing_key, &batch), TS_OK);
    for (int round = 0; round < 2; round++) {
        for (size_t i = 0; i < CASES; i++) {
            ts_err got = ts_csr_check_in(batch, cases[i].req);
            if (got != cases[i].want) {
                fail_msg("round %d, request %zu: %d (%s), want %d", round, i, (int)got,
                         ts_error_message(), (int)cases[i].want);
            }
            assert_int_equal(ts_csr_check(cases[i].req, p), cases[i].want);
        }
    }
    ts_issue_batch_free(batch);
    for (size_t i = 0; i < CASES; i++) {
        X509_REQ_free(cases[i].req);
    }
    ts_profile_free(p);
    EVP_PKEY_free(a);
    EVP_PKEY_free(b);
    EVP_PKEY_free(c);
    EVP_PKEY_free(d);
}

static ts_issue_params params(const ts_profile *p, X509_REQ *csr, uint8_t serial[TS_SERIAL_LEN],
                              ts_issue_batch *batch)
{
    ts_issue_params ip = {0};

    pki_serial(serial);
    ip.profile = p;
    ip.csr = csr;
    ip.vars.org = "Acme Devices";
    ip.serial = serial;
    ip.issuer_cert = fx.issuing;
    ip.issuer_key = fx.issuing_key;
    ip.crl_url = PKI_CRL_URL;
    ip.batch = batch;
    return ip;
}

/* Certificates signed through a batch verify under the issuer, each with its own key and
 * serial, and are built as without a batch: the same subject, extensions and serial. */
static void test_certificates_signed_from_the_batch(void **state)
{
    ts_profile *p = profile_two_curves();
    ts_issue_batch *batch = NULL;
    EVP_PKEY *issuer_pub = X509_get0_pubkey(fx.issuing);

    (void)state;
    assert_int_equal(ts_issue_batch_new(p, fx.issuing_key, &batch), TS_OK);
    for (int i = 0; i < 4; i++) {
        EVP_PKEY *key = pki_ec_key(i % 2 == 0 ? "P-256" : "P-384");
        X509_REQ *req = received(pki_csr(key, "/CN=dev-batch", NULL));
        uint8_t serial[TS_SERIAL_LEN];
        ts_issue_params ip = params(p, req, serial, batch);
        X509 *cert = NULL, *plain = NULL;
        X509_STORE *store = X509_STORE_new();
        X509_STORE_CTX *ctx = X509_STORE_CTX_new();

        assert_int_equal(ts_csr_check_in(batch, req), TS_OK);
        assert_int_equal(ts_cert_issue(&ip, &cert), TS_OK);
        assert_int_equal(X509_verify(cert, issuer_pub), 1);
        assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(cert), key), 1);
        assert_memory_equal(ASN1_STRING_get0_data(X509_get0_serialNumber(cert)), serial,
                            TS_SERIAL_LEN);
        /* The chain verifies from the object as issued, with its key in place. */
        assert_non_null(store);
        assert_non_null(ctx);
        assert_int_equal(X509_STORE_add_cert(store, fx.root), 1);
        assert_int_equal(X509_STORE_add_cert(store, fx.issuing), 1);
        assert_int_equal(X509_STORE_CTX_init(ctx, store, cert, NULL), 1);
        if (X509_verify_cert(ctx) != 1) {
            fail_msg("chain: %s", X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
        }
        /* Without the batch, the same serial gives a certificate that differs at most in
         * validity (a second later) and signature. */
        ip.batch = NULL;
        assert_int_equal(ts_cert_issue(&ip, &plain), TS_OK);
        assert_int_equal(X509_NAME_cmp(X509_get_subject_name(cert), X509_get_subject_name(plain)),
                         0);
        assert_int_equal(X509_get_ext_count(cert), X509_get_ext_count(plain));
        assert_int_equal(
            ASN1_INTEGER_cmp(X509_get0_serialNumber(cert), X509_get0_serialNumber(plain)), 0);
        X509_STORE_CTX_free(ctx);
        X509_STORE_free(store);
        X509_free(plain);
        X509_free(cert);
        X509_REQ_free(req);
        EVP_PKEY_free(key);
    }
    ts_issue_batch_free(batch);
    ts_profile_free(p);
}

/* A batch made for one profile or key is refused for another, and nothing is signed. */
static void test_batch_of_another_profile_or_key(void **state)
{
    ts_profile *p = profile_two_curves(), *device = NULL;
    ts_issue_batch *batch = NULL;
    EVP_PKEY *key = pki_ec_key("P-256");
    EVP_PKEY *other_issuer = pki_ec_key("P-256");
    X509_REQ *req = received(pki_csr(key, "/CN=dev-other", NULL));
    uint8_t serial[TS_SERIAL_LEN];
    X509 *cert = NULL;

    (void)state;
    assert_int_equal(ts_profile_builtin("device", &device), TS_OK);
    assert_int_equal(ts_issue_batch_new(p, fx.issuing_key, &batch), TS_OK);

    ts_issue_params ip = params(device, req, serial, batch);
    assert_int_equal(ts_cert_issue(&ip, &cert), TS_ERR_INVALID);
    assert_non_null(strstr(ts_error_message(), "another profile or issuer key"));
    assert_null(cert);

    ts_issue_batch_free(batch);
    batch = NULL;
    assert_int_equal(ts_issue_batch_new(p, other_issuer, &batch), TS_OK);
    ip = params(p, req, serial, batch);
    assert_int_equal(ts_cert_issue(&ip, &cert), TS_ERR_INVALID);
    assert_null(cert);

    assert_int_equal(ts_issue_batch_new(NULL, fx.issuing_key, &(ts_issue_batch *){NULL}),
                     TS_ERR_INVALID);
    assert_int_equal(ts_issue_batch_new(p, NULL, &(ts_issue_batch *){NULL}), TS_ERR_INVALID);
    assert_int_equal(ts_csr_check_in(NULL, req), TS_ERR_INVALID);

    ts_issue_batch_free(batch);
    X509_REQ_free(req);
    EVP_PKEY_free(other_issuer);
    EVP_PKEY_free(key);
    ts_profile_free(device);
    ts_profile_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_verdicts_match_single_checks),
        cmocka_unit_test(test_certificates_signed_from_the_batch),
        cmocka_unit_test(test_batch_of_another_profile_or_key),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
