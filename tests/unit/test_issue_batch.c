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

/* A request signed again with another digest. */
static X509_REQ *signed_with(EVP_PKEY *key, const char *subject, const EVP_MD *md)
{
    X509_REQ *req = pki_csr(key, subject, NULL);
    assert_true(X509_REQ_sign(req, key, md) > 0);
    return received(req);
}

/* req's DER with one byte of its signature flipped: the last byte of the encoding. */
static X509_REQ *tampered(X509_REQ *made, size_t from_end)
{
    uint8_t *der = NULL;
    size_t len = pki_csr_der(made, &der);
    const unsigned char *p = der;
    X509_REQ *req;

    der[len - from_end] ^= 0x01;
    req = d2i_X509_REQ(NULL, &p, (long)len);
    assert_non_null(req);
    OPENSSL_free(der);
    X509_REQ_free(made);
    return req;
}

/* ts_csr_parse_in() on the request as bytes: the verdict and message of ts_csr_parse() then
 * ts_csr_check() on the same bytes. pem: the bytes as PEM, which the batch reads the general
 * way. */
static void parse_in_matches(ts_issue_batch *batch, const ts_profile *p, const uint8_t *data,
                             size_t len, const char *what)
{
    char single[1024] = "";
    X509_REQ *req = NULL;
    ts_batch_csr *csr = NULL;
    ts_err want = ts_csr_parse(data, len, &req);

    if (want == TS_OK) {
        want = ts_csr_check(req, p);
    }
    snprintf(single, sizeof single, "%s", want == TS_OK ? "" : ts_error_message());
    ts_err got = ts_csr_parse_in(batch, data, len, &csr);
    if (got != want || (want != TS_OK && strcmp(ts_error_message(), single) != 0)) {
        fail_msg("%s: ts_csr_parse_in %d (%s), single %d (%s)", what, (int)got,
                 got == TS_OK ? "" : ts_error_message(), (int)want, single);
    }
    assert_int_equal(csr != NULL, got == TS_OK);
    ts_batch_csr_free(csr);
    X509_REQ_free(req);
}

static void parse_in_matches_req(ts_issue_batch *batch, const ts_profile *p, X509_REQ *req,
                                 const char *what)
{
    uint8_t *der = NULL;
    size_t len = pki_csr_der(req, &der);
    BIO *bio = BIO_new(BIO_s_mem());
    char *pem = NULL;
    long pem_len;
    char label[128];

    parse_in_matches(batch, p, der, len, what);
    assert_non_null(bio);
    assert_int_equal(PEM_write_bio_X509_REQ(bio, req), 1);
    pem_len = BIO_get_mem_data(bio, &pem);
    snprintf(label, sizeof label, "%s as PEM", what);
    parse_in_matches(batch, p, (const uint8_t *)pem, (size_t)pem_len, label);
    BIO_free(bio);
    OPENSSL_free(der);
}

/*
 * One batch sees good and bad requests on two curves, in an order where each bad one follows a
 * good one of the same curve: the key left from the good one must not verify the bad one. Each
 * verdict is the same as ts_csr_check() gives alone, and the same again when the batch reads the
 * request's bytes itself (ts_csr_parse_in()).
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
        /* Other digests: each has its own prepared context, after SHA-256 on the same curve. */
        {signed_with(c, "/CN=dev-c384", EVP_sha384()), TS_OK},
        {signed_with(a, "/CN=dev-a512", EVP_sha512()), TS_OK},
        {signed_with(b, "/CN=dev-b1", EVP_sha1()), TS_OK},
        /* The last byte of the signature changed. */
        {tampered(pki_csr(b, "/CN=dev-tb", NULL), 1), TS_ERR_AUTH},
        {received(pki_csr(b, "/CN=dev-b2", NULL)), TS_OK},
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
            parse_in_matches_req(batch, p, cases[i].req, "request");
        }
    }
    /* Bytes that are no request, or not wholly one. */
    static const uint8_t garbage[] = {0x30, 0x03, 0x02, 0x01, 0x00};
    parse_in_matches(batch, p, garbage, sizeof garbage, "garbage");
    parse_in_matches(batch, p, (const uint8_t *)"-----BEGIN X", 12, "broken PEM");
    parse_in_matches(batch, p, garbage, 0, "nothing");
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

/* The two certificates are the same but for validity (a second apart at most) and signature:
 * subject, issuer, serial, the key as encoded, and every extension byte for byte. */
static void same_but_signature(X509 *a, X509 *b)
{
    assert_int_equal(X509_NAME_cmp(X509_get_subject_name(a), X509_get_subject_name(b)), 0);
    assert_int_equal(X509_NAME_cmp(X509_get_issuer_name(a), X509_get_issuer_name(b)), 0);
    assert_int_equal(ASN1_INTEGER_cmp(X509_get0_serialNumber(a), X509_get0_serialNumber(b)), 0);
    assert_int_equal(ASN1_STRING_cmp(X509_get0_pubkey_bitstr(a), X509_get0_pubkey_bitstr(b)), 0);
    assert_int_equal(X509_get_ext_count(a), X509_get_ext_count(b));
    for (int i = 0; i < X509_get_ext_count(a); i++) {
        X509_EXTENSION *ea = X509_get_ext(a, i), *eb = X509_get_ext(b, i);
        assert_int_equal(OBJ_cmp(X509_EXTENSION_get_object(ea), X509_EXTENSION_get_object(eb)), 0);
        assert_int_equal(X509_EXTENSION_get_critical(ea), X509_EXTENSION_get_critical(eb));
        assert_int_equal(ASN1_STRING_cmp(X509_EXTENSION_get_data(ea), X509_EXTENSION_get_data(eb)),
                         0);
    }
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
        same_but_signature(cert, plain);

        /* The request read by the batch (its key kept apart) gives the same certificate. */
        uint8_t *der = NULL;
        size_t len = pki_csr_der(req, &der);
        ts_batch_csr *bcsr = NULL;
        X509 *from_bytes = NULL;
        assert_int_equal(ts_csr_parse_in(batch, der, len, &bcsr), TS_OK);
        ip.batch = batch;
        ip.csr = NULL;
        ip.batch_csr = bcsr;
        assert_int_equal(ts_cert_issue(&ip, &from_bytes), TS_OK);
        assert_int_equal(X509_verify(from_bytes, issuer_pub), 1);
        assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(from_bytes), key), 1);
        same_but_signature(from_bytes, plain);
        X509_STORE_CTX_cleanup(ctx);
        assert_int_equal(X509_STORE_CTX_init(ctx, store, from_bytes, NULL), 1);
        assert_int_equal(X509_verify_cert(ctx), 1);
        X509_free(from_bytes);
        ts_batch_csr_free(bcsr);
        OPENSSL_free(der);

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

    /* A request read by one batch is issued by that batch only, and alone. */
    uint8_t *der = NULL;
    size_t len = pki_csr_der(req, &der);
    ts_issue_batch *reader = NULL;
    ts_batch_csr *bcsr = NULL;
    assert_int_equal(ts_csr_parse_in(NULL, der, len, &bcsr), TS_ERR_INVALID);
    assert_int_equal(ts_issue_batch_new(p, fx.issuing_key, &reader), TS_OK);
    assert_int_equal(ts_csr_parse_in(reader, der, len, &bcsr), TS_OK);
    ip = params(p, NULL, serial, batch);
    ip.batch_csr = bcsr;
    assert_int_equal(ts_cert_issue(&ip, &cert), TS_ERR_INVALID);
    assert_non_null(strstr(ts_error_message(), "another batch"));
    ip.batch = NULL;
    assert_int_equal(ts_cert_issue(&ip, &cert), TS_ERR_INVALID);
    ip.batch = reader;
    ip.csr = req;
    assert_int_equal(ts_cert_issue(&ip, &cert), TS_ERR_INVALID);
    assert_null(cert);
    ip.csr = NULL;
    assert_int_equal(ts_cert_issue(&ip, &cert), TS_OK);
    X509_free(cert);
    ts_batch_csr_free(bcsr);
    ts_issue_batch_free(reader);
    OPENSSL_free(der);

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
