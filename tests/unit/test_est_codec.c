/*
 * The EST encodings (include/tessera/est.h): base64 bodies, certs-only, CSR attributes, the
 * challengePassword and its channel binding, re-enrollment identity and server-side key
 * generation. The profiles' "est" settings are tested in test_est_profile.c.
 */
#include <openssl/pkcs7.h>
#include <openssl/rand.h>

#include "pki_test_util.h"
#include "tessera/est.h"

static ts_profile *profile_of(const char *json)
{
    ts_profile *p = NULL;

    if (ts_profile_from_json(json, strlen(json), &p) != TS_OK) {
        fail_msg("profile refused: %s", ts_error_message());
    }
    return p;
}

static ts_profile *builtin(const char *name)
{
    ts_profile *p = NULL;

    assert_int_equal(ts_profile_builtin(name, &p), TS_OK);
    return p;
}

/* A device profile like the built-in one, with the "est" object est when it is not NULL. */
static ts_profile *device_with(const char *est)
{
    char json[2048];
    int n = snprintf(json, sizeof json,
                     "{\"name\":\"sensor\",\"kind\":\"device\",\"key_types\":[\"P-256\"],"
                     "\"signature_digest\":\"SHA-256\",\"key_usage\":[\"digitalSignature\"],"
                     "\"extended_key_usage\":[\"clientAuth\"],"
                     "\"subject\":[{\"type\":\"O\",\"value\":\"<org>\"},"
                     "{\"type\":\"CN\",\"value\":\"<device UID>\"}],"
                     "\"csr_subject\":[\"O\",\"CN\"],"
                     "\"csr_extensions\":[\"keyUsage\",\"extendedKeyUsage\"],"
                     "\"validity\":{\"days\":30}%s%s}",
                     est != NULL ? ",\"est\":" : "", est != NULL ? est : "");
    assert_true(n > 0 && (size_t)n < sizeof json);
    return profile_of(json);
}

/* --- Base64 bodies --------------------------------------------------------------------------- */

static const struct {
    const char *name;
    const char *text;
    size_t len; /* 0: strlen(text) */
    size_t max;
    ts_err want_err;
    const char *want;     /* decoded text when TS_OK */
    const char *want_msg; /* a part of the message otherwise */
} b64_cases[] = {
    {"plain", "aGVsbG8=", 0, 64, TS_OK, "hello", NULL},
    {"spaces and tabs", " aGVs\tbG8= ", 0, 64, TS_OK, "hello", NULL},
    {"LF lines", "aGVs\nbG8=\n", 0, 64, TS_OK, "hello", NULL},
    {"CRLF lines", "\r\naGVs\r\nbG8=\r\n\r\n", 0, 64, TS_OK, "hello", NULL},
    {"two pads", "aGVsbA==", 0, 64, TS_OK, "hell", NULL},
    {"no padding", "aGVsbG8", 0, 64, TS_ERR_INVALID, NULL, "4-character"},
    {"short padding", "aGVsbA=", 0, 64, TS_ERR_INVALID, NULL, "padding"},
    {"extra padding", "aGVsbG8==", 0, 64, TS_ERR_INVALID, NULL, "padding"},
    {"data after padding", "aGVsbG8=aGVs", 0, 64, TS_ERR_INVALID, NULL, "follows the '='"},
    {"url alphabet", "aGV_bG8=", 0, 64, TS_ERR_INVALID, NULL, "byte 3 is 0x5f"},
    {"dash", "aGVs-bG8=", 0, 64, TS_ERR_INVALID, NULL, "byte 4 is 0x2d"},
    {"NUL inside", "aGVs\0bG8=", 9, 64, TS_ERR_INVALID, NULL, "byte 4 is 0x00"},
    {"PEM", "-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n-----END CERTIFICATE REQUEST-----\n", 0, 64,
     TS_ERR_INVALID, NULL, "PEM"},
    {"binary DER", "\x30\x82\x01\x0a\x02\x01", 6, 64, TS_ERR_INVALID, NULL, "binary DER"},
    {"empty", "", 0, 64, TS_ERR_INVALID, NULL, "empty"},
    {"only white space", " \r\n\t", 0, 64, TS_ERR_INVALID, NULL, "empty"},
    {"over the limit", "aGVsbG8=", 0, 4, TS_ERR_LIMIT, NULL, "more than 4"},
};

static void test_base64_decode_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof b64_cases / sizeof b64_cases[0]; i++) {
        size_t len = b64_cases[i].len != 0 ? b64_cases[i].len : strlen(b64_cases[i].text);
        uint8_t *out = (uint8_t *)"unchanged";
        size_t out_len = 99;
        ts_err rv = ts_est_base64_decode((const uint8_t *)b64_cases[i].text, len, b64_cases[i].max,
                                         &out, &out_len);
        if (rv != b64_cases[i].want_err) {
            fail_msg("%s: got %s (%s)", b64_cases[i].name, ts_err_name(rv), ts_error_message());
        }
        if (rv != TS_OK) {
            assert_null(out);
            assert_int_equal(out_len, 0);
            if (strstr(ts_error_message(), b64_cases[i].want_msg) == NULL) {
                fail_msg("%s: message '%s' lacks '%s'", b64_cases[i].name, ts_error_message(),
                         b64_cases[i].want_msg);
            }
            continue;
        }
        assert_int_equal(out_len, strlen(b64_cases[i].want));
        assert_memory_equal(out, b64_cases[i].want, out_len);
        OPENSSL_free(out);
    }
}

static void test_base64_round_trip(void **state)
{
    static const char *const eols[] = {"\n", "\r\n"};
    uint8_t data[300];

    (void)state;
    assert_int_equal(RAND_bytes(data, sizeof data), 1);
    for (size_t e = 0; e < 2; e++) {
        for (size_t n = 1; n <= sizeof data; n += 7) {
            char *text = NULL;
            uint8_t *back = NULL;
            size_t text_len = 0, back_len = 0;
            assert_int_equal(ts_est_base64_encode(data, n, eols[e], &text, &text_len), TS_OK);
            assert_int_equal(strlen(text), text_len);
            /* Every line holds at most TS_EST_LINE characters and ends with the line break. */
            for (const char *line = text; *line != '\0';) {
                const char *end = strstr(line, eols[e]);
                assert_non_null(end);
                assert_true(end - line <= TS_EST_LINE && end > line);
                line = end + strlen(eols[e]);
            }
            assert_int_equal(
                ts_est_base64_decode((const uint8_t *)text, text_len, n, &back, &back_len), TS_OK);
            assert_int_equal(back_len, n);
            assert_memory_equal(back, data, n);
            OPENSSL_free(back);
            OPENSSL_free(text);
        }
    }
}

/* --- certs-only ------------------------------------------------------------------------------ */

static void test_certs_only(void **state)
{
    pki_fx *fx = *state;
    X509 *certs[2] = {fx->issuing, fx->root};
    uint8_t *der = NULL;
    size_t len = 0;
    STACK_OF(X509) *got = NULL;
    const unsigned char *p;
    PKCS7 *p7;

    assert_int_equal(ts_est_certs_only(certs, 2, &der, &len), TS_OK);
    assert_int_equal(ts_est_certs_only_parse(der, len, &got), TS_OK);
    assert_int_equal(sk_X509_num(got), 2);
    assert_int_equal(X509_cmp(sk_X509_value(got, 0), fx->issuing), 0);
    assert_int_equal(X509_cmp(sk_X509_value(got, 1), fx->root), 0);
    sk_X509_pop_free(got, X509_free);

    /* RFC 5652 section 5: a SignedData with no signers, id-data content without eContent. */
    p = der;
    p7 = d2i_PKCS7(NULL, &p, (long)len);
    assert_non_null(p7);
    assert_true(PKCS7_type_is_signed(p7));
    assert_int_equal(sk_PKCS7_SIGNER_INFO_num(p7->d.sign->signer_info), 0);
    assert_int_equal(OBJ_obj2nid(p7->d.sign->contents->type), NID_pkcs7_data);
    assert_null(p7->d.sign->contents->d.data);
    PKCS7_free(p7);

    /* Tamper: trailing bytes, truncation, a flipped tag. */
    uint8_t *longer = OPENSSL_malloc(len + 1);
    assert_non_null(longer);
    memcpy(longer, der, len);
    longer[len] = 0;
    assert_err(ts_est_certs_only_parse(longer, len + 1, &got), TS_ERR_INVALID);
    assert_msg("follow");
    assert_null(got);
    assert_err(ts_est_certs_only_parse(der, len - 1, &got), TS_ERR_INVALID);
    longer[0] ^= 0x01;
    assert_err(ts_est_certs_only_parse(longer, len, &got), TS_ERR_INVALID);
    OPENSSL_free(longer);
    OPENSSL_free(der);

    /* An empty list is still a certs-only. */
    assert_int_equal(ts_est_certs_only(NULL, 0, &der, &len), TS_OK);
    assert_int_equal(ts_est_certs_only_parse(der, len, &got), TS_OK);
    assert_int_equal(sk_X509_num(got), 0);
    sk_X509_pop_free(got, X509_free);
    OPENSSL_free(der);
}

static void test_certs_only_refuses_signed(void **state)
{
    pki_fx *fx = *state;
    EVP_PKEY *key = pki_ec_key("P-256");
    X509 *self = pki_ca("Signer", key, NULL, key, 0, 1);
    BIO *data = BIO_new_mem_buf("content", 7);
    PKCS7 *p7 = PKCS7_sign(self, key, NULL, data, PKCS7_BINARY);
    unsigned char *der = NULL;
    int len;
    STACK_OF(X509) *got = NULL;

    (void)fx;
    assert_non_null(p7);
    len = i2d_PKCS7(p7, &der);
    assert_true(len > 0);
    assert_err(ts_est_certs_only_parse(der, (size_t)len, &got), TS_ERR_INVALID);
    assert_msg("signers");
    OPENSSL_free(der);
    PKCS7_free(p7);
    BIO_free(data);
    X509_free(self);
    EVP_PKEY_free(key);
}

/* --- CSR attributes -------------------------------------------------------------------------- */

/* The DER read back as OpenSSL's generic SEQUENCE OF ANY, independently of the template. */
static STACK_OF(ASN1_TYPE) * as_sequence(const uint8_t *der, size_t len)
{
    const unsigned char *p = der;
    STACK_OF(ASN1_TYPE) *seq = d2i_ASN1_SEQUENCE_ANY(NULL, &p, (long)len);

    assert_non_null(seq);
    assert_ptr_equal(p, der + len);
    return seq;
}

static void test_csrattrs_device(void **state)
{
    ts_profile *p = builtin("device");
    uint8_t *der = NULL;
    size_t len = 0;
    ts_est_csrattrs_info info;
    STACK_OF(ASN1_TYPE) * seq;

    (void)state;
    assert_int_equal(ts_est_csrattrs(p, &der, &len), TS_OK);
    assert_int_equal(ts_est_csrattrs_parse(der, len, &info), TS_OK);
    assert_int_equal(info.entries, 2);
    assert_false(info.challenge_password);
    assert_int_equal(info.ec_curve_count, 1);
    assert_int_equal(info.ec_curves[0], NID_X9_62_prime256v1);
    assert_false(info.rsa);
    assert_int_equal(info.sig_count, 1);
    assert_int_equal(info.sig_nids[0], NID_ecdsa_with_SHA256);

    /* Section 4.5.2's shape: an Attribute (a SEQUENCE) for the key, then an OID. */
    seq = as_sequence(der, len);
    assert_int_equal(sk_ASN1_TYPE_num(seq), 2);
    assert_int_equal(sk_ASN1_TYPE_value(seq, 0)->type, V_ASN1_SEQUENCE);
    assert_int_equal(sk_ASN1_TYPE_value(seq, 1)->type, V_ASN1_OBJECT);
    assert_int_equal(OBJ_obj2nid(sk_ASN1_TYPE_value(seq, 1)->value.object), NID_ecdsa_with_SHA256);
    sk_ASN1_TYPE_pop_free(seq, ASN1_TYPE_free);
    OPENSSL_free(der);
    ts_profile_free(p);
}

static void test_csrattrs_pop_and_server(void **state)
{
    ts_profile *p = device_with("{\"proof_of_possession\":true}");
    uint8_t *der = NULL;
    size_t len = 0;
    ts_est_csrattrs_info info;
    STACK_OF(ASN1_TYPE) * seq;

    (void)state;
    assert_int_equal(ts_est_csrattrs(p, &der, &len), TS_OK);
    assert_int_equal(ts_est_csrattrs_parse(der, len, &info), TS_OK);
    assert_int_equal(info.entries, 3);
    assert_true(info.challenge_password);
    seq = as_sequence(der, len);
    assert_int_equal(sk_ASN1_TYPE_value(seq, 0)->type, V_ASN1_OBJECT);
    assert_int_equal(OBJ_obj2nid(sk_ASN1_TYPE_value(seq, 0)->value.object),
                     NID_pkcs9_challengePassword);
    sk_ASN1_TYPE_pop_free(seq, ASN1_TYPE_free);
    OPENSSL_free(der);
    ts_profile_free(p);

    /* The server profile: two curves in one attribute, RSA, and a signature OID for each. */
    p = builtin("server");
    assert_int_equal(ts_est_csrattrs(p, &der, &len), TS_OK);
    assert_int_equal(ts_est_csrattrs_parse(der, len, &info), TS_OK);
    assert_false(info.challenge_password);
    assert_int_equal(info.ec_curve_count, 2);
    /* DER sorts a SET OF by encoding: secp384r1's shorter OID comes first. */
    assert_int_equal(info.ec_curves[0], NID_secp384r1);
    assert_int_equal(info.ec_curves[1], NID_X9_62_prime256v1);
    assert_true(info.rsa);
    assert_int_equal(info.sig_count, 2);
    assert_int_equal(info.sig_nids[0], NID_ecdsa_with_SHA256);
    assert_int_equal(info.sig_nids[1], NID_sha256WithRSAEncryption);
    OPENSSL_free(der);
    ts_profile_free(p);
}

static void test_csrattrs_parse_refusals(void **state)
{
    static const uint8_t not_seq[] = {0x04, 0x01, 0x00};
    static const uint8_t bad_member[] = {0x30, 0x03, 0x02, 0x01, 0x05}; /* SEQUENCE { INTEGER } */
    ts_profile *p = builtin("device");
    ts_est_csrattrs_info info;
    uint8_t *der = NULL, *longer;
    size_t len = 0;

    (void)state;
    assert_err(ts_est_csrattrs_parse(not_seq, sizeof not_seq, &info), TS_ERR_INVALID);
    assert_err(ts_est_csrattrs_parse(bad_member, sizeof bad_member, &info), TS_ERR_INVALID);
    assert_int_equal(ts_est_csrattrs(p, &der, &len), TS_OK);
    longer = OPENSSL_zalloc(len + 2);
    assert_non_null(longer);
    memcpy(longer, der, len);
    assert_err(ts_est_csrattrs_parse(longer, len + 2, &info), TS_ERR_INVALID);
    assert_msg("follow");
    assert_err(ts_est_csrattrs_parse(der, len - 1, &info), TS_ERR_INVALID);
    OPENSSL_free(longer);
    OPENSSL_free(der);
    ts_profile_free(p);
}

/* --- challengePassword and proof of possession ----------------------------------------------- */

static X509_REQ *csr_with_password(EVP_PKEY *key, int type, const char *password)
{
    X509_REQ *req = pki_csr(key, "/CN=dev-1", NULL);

    assert_true(X509_REQ_add1_attr_by_NID(req, NID_pkcs9_challengePassword, type,
                                          (const unsigned char *)password, -1));
    assert_true(X509_REQ_sign(req, key, EVP_sha256()) > 0);
    return req;
}

static void test_challenge_password(void **state)
{
    EVP_PKEY *key = pki_ec_key("P-256");
    X509_REQ *req = pki_csr(key, "/CN=dev-1", NULL);
    char *pw = (char *)"unchanged";
    size_t len = 7;
    X509_ATTRIBUTE *attr;

    (void)state;
    assert_err(ts_est_challenge_password(req, &pw, &len), TS_ERR_NOT_FOUND);
    assert_null(pw);
    X509_REQ_free(req);

    req = csr_with_password(key, MBSTRING_ASC, "abc+/=");
    assert_int_equal(ts_est_challenge_password(req, &pw, &len), TS_OK);
    assert_string_equal(pw, "abc+/=");
    assert_int_equal(len, 6);
    OPENSSL_free(pw);
    X509_REQ_free(req);

    req = csr_with_password(key, MBSTRING_UTF8, "geheim");
    assert_int_equal(ts_est_challenge_password(req, &pw, &len), TS_OK);
    assert_string_equal(pw, "geheim");
    OPENSSL_free(pw);
    X509_REQ_free(req);

    /* A value of another type, and an attribute with two values. */
    req = pki_csr(key, "/CN=dev-1", NULL);
    ASN1_INTEGER *num = ASN1_INTEGER_new();
    assert_true(ASN1_INTEGER_set(num, 7));
    attr = X509_ATTRIBUTE_create(NID_pkcs9_challengePassword, V_ASN1_INTEGER, num);
    assert_non_null(attr);
    assert_true(X509_REQ_add1_attr(req, attr));
    X509_ATTRIBUTE_free(attr);
    assert_err(ts_est_challenge_password(req, &pw, &len), TS_ERR_INVALID);
    assert_msg("PrintableString");
    X509_REQ_free(req);

    req = pki_csr(key, "/CN=dev-1", NULL);
    attr = X509_ATTRIBUTE_create_by_NID(NULL, NID_pkcs9_challengePassword, MBSTRING_ASC,
                                        (const unsigned char *)"one", -1);
    assert_non_null(attr);
    assert_true(X509_ATTRIBUTE_set1_data(attr, MBSTRING_ASC, "two", -1));
    assert_true(X509_REQ_add1_attr(req, attr));
    X509_ATTRIBUTE_free(attr);
    assert_err(ts_est_challenge_password(req, &pw, &len), TS_ERR_INVALID);
    assert_msg("exactly one value");
    X509_REQ_free(req);
    EVP_PKEY_free(key);
}

static void test_pop_check(void **state)
{
    EVP_PKEY *key = pki_ec_key("P-256");
    uint8_t exporter[32], unique[12];
    unsigned char b64[64];
    X509_REQ *req;

    (void)state;
    assert_int_equal(RAND_bytes(exporter, sizeof exporter), 1);
    assert_int_equal(RAND_bytes(unique, sizeof unique), 1);

    /* tls-exporter (32 bytes, 44 characters) and tls-unique (12 bytes, 16 characters). */
    EVP_EncodeBlock(b64, exporter, sizeof exporter);
    req = csr_with_password(key, MBSTRING_ASC, (char *)b64);
    assert_int_equal(ts_est_pop_check(req, exporter, sizeof exporter), TS_OK);
    assert_err(ts_est_pop_check(req, unique, sizeof unique), TS_ERR_POLICY);
    assert_msg("another connection");
    exporter[5] ^= 0x20;
    assert_err(ts_est_pop_check(req, exporter, sizeof exporter), TS_ERR_POLICY);
    exporter[5] ^= 0x20;
    X509_REQ_free(req);

    EVP_EncodeBlock(b64, unique, sizeof unique);
    req = csr_with_password(key, MBSTRING_ASC, (char *)b64);
    assert_int_equal(ts_est_pop_check(req, unique, sizeof unique), TS_OK);
    X509_REQ_free(req);

    /* One character changed. */
    b64[3] = b64[3] == 'A' ? 'B' : 'A';
    req = csr_with_password(key, MBSTRING_ASC, (char *)b64);
    assert_err(ts_est_pop_check(req, unique, sizeof unique), TS_ERR_POLICY);
    X509_REQ_free(req);

    req = pki_csr(key, "/CN=dev-1", NULL);
    assert_err(ts_est_pop_check(req, unique, sizeof unique), TS_ERR_POLICY);
    assert_msg("has none");
    assert_err(ts_est_pop_check(req, NULL, 0), TS_ERR_INVALID);
    X509_REQ_free(req);
    EVP_PKEY_free(key);
}

/* --- Re-enrollment --------------------------------------------------------------------------- */

/* A certificate for key with subject and optional SANs, signed by the fixture's root key. */
static X509 *leaf(pki_fx *fx, EVP_PKEY *key, const char *subject, const char *san)
{
    X509_REQ *req = pki_csr(key, subject, NULL);
    X509 *cert = X509_new();
    X509V3_CTX ctx;

    assert_non_null(cert);
    assert_true(X509_set_version(cert, X509_VERSION_3));
    assert_true(ASN1_INTEGER_set(X509_get_serialNumber(cert), 42));
    assert_true(X509_set_subject_name(cert, X509_REQ_get_subject_name(req)));
    assert_true(X509_set_issuer_name(cert, X509_get_subject_name(fx->root)));
    assert_non_null(X509_gmtime_adj(X509_getm_notBefore(cert), 0));
    assert_non_null(X509_gmtime_adj(X509_getm_notAfter(cert), 3600));
    assert_true(X509_set_pubkey(cert, key));
    if (san != NULL) {
        X509V3_set_ctx(&ctx, fx->root, cert, NULL, NULL, 0);
        X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_subject_alt_name, san);
        assert_non_null(ext);
        assert_true(X509_add_ext(cert, ext, -1));
        X509_EXTENSION_free(ext);
    }
    assert_true(X509_sign(cert, fx->root_key, EVP_sha384()) > 0);
    X509_REQ_free(req);
    return cert;
}

static void test_reenroll_subject(void **state)
{
    pki_fx *fx = *state;
    EVP_PKEY *key = pki_ec_key("P-256"), *other = pki_ec_key("P-256");
    X509 *cert = leaf(fx, key, "/O=Acme/CN=dev-1", NULL);
    X509_REQ *req;

    req = pki_csr(other, "/O=Acme/CN=dev-1", NULL);
    assert_int_equal(ts_est_reenroll_check(req, cert), TS_OK);
    assert_false(ts_est_same_key(req, cert));
    X509_REQ_free(req);

    req = pki_csr(key, "/O=Acme/CN=dev-1", NULL);
    assert_int_equal(ts_est_reenroll_check(req, cert), TS_OK);
    assert_true(ts_est_same_key(req, cert));
    X509_REQ_free(req);

    static const char *const changed[] = {"/O=Acme/CN=dev-2", "/CN=dev-1", "/CN=dev-1/O=Acme",
                                          "/O=Acme/CN=dev-1/OU=x"};
    for (size_t i = 0; i < sizeof changed / sizeof changed[0]; i++) {
        req = pki_csr(other, changed[i], NULL);
        assert_err(ts_est_reenroll_check(req, cert), TS_ERR_POLICY);
        assert_msg("keeps the subject");
        assert_msg("4.2.2");
        X509_REQ_free(req);
    }
    X509_free(cert);
    EVP_PKEY_free(key);
    EVP_PKEY_free(other);
}

static void test_reenroll_sans(void **state)
{
    pki_fx *fx = *state;
    EVP_PKEY *key = pki_ec_key("P-256");
    X509 *cert = leaf(fx, key, "/CN=gw-1", "DNS:a.example, DNS:b.example");
    X509 *bare = leaf(fx, key, "/CN=gw-1", NULL);
    static const struct {
        const char *san; /* NULL: none */
        ts_err want;
    } cases[] = {
        {"subjectAltName=DNS:a.example, DNS:b.example", TS_OK},
        {"subjectAltName=DNS:b.example, DNS:a.example", TS_OK}, /* a set: order is free */
        {"subjectAltName=DNS:a.example", TS_ERR_POLICY},
        {"subjectAltName=DNS:a.example, DNS:b.example, DNS:c.example", TS_ERR_POLICY},
        {"subjectAltName=DNS:a.example, IP:10.0.0.1", TS_ERR_POLICY},
        {NULL, TS_ERR_POLICY},
    };

    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *exts[] = {cases[i].san, NULL};
        X509_REQ *req = pki_csr(key, "/CN=gw-1", cases[i].san != NULL ? exts : NULL);
        ts_err rv = ts_est_reenroll_check(req, cert);
        if (rv != cases[i].want) {
            fail_msg("case %zu: got %s (%s)", i, ts_err_name(rv), ts_error_message());
        }
        if (rv != TS_OK) {
            assert_msg("keeps the subjectAltName");
        }
        /* Against a certificate without SANs only the CSR without SANs passes. */
        rv = ts_est_reenroll_check(req, bare);
        assert_int_equal(rv, cases[i].san == NULL ? TS_OK : TS_ERR_POLICY);
        X509_REQ_free(req);
    }
    X509_free(cert);
    X509_free(bare);
    EVP_PKEY_free(key);
}

/* --- Server-side key generation -------------------------------------------------------------- */

static void test_keygen(void **state)
{
    ts_profile *p = builtin("device");
    EVP_PKEY *key = NULL;
    char name[64] = "";

    (void)state;
    assert_int_equal(ts_est_keygen(p, &key), TS_OK);
    assert_true(EVP_PKEY_is_a(key, "EC"));
    assert_true(EVP_PKEY_get_utf8_string_param(key, "group", name, sizeof name, NULL));
    assert_string_equal(name, "prime256v1");
    EVP_PKEY_free(key);
    ts_profile_free(p);

    p = profile_of("{\"name\":\"rsa\",\"kind\":\"device\",\"key_types\":[\"RSA-2048+\"],"
                   "\"signature_digest\":\"SHA-256\",\"key_usage\":[\"digitalSignature\"],"
                   "\"subject\":[{\"type\":\"CN\",\"value\":\"<device UID>\"}],"
                   "\"validity\":{\"days\":1}}");
    assert_int_equal(ts_est_keygen(p, &key), TS_OK);
    assert_true(EVP_PKEY_is_a(key, "RSA"));
    assert_int_equal(EVP_PKEY_get_bits(key), 2048);
    EVP_PKEY_free(key);
    ts_profile_free(p);
}

static void test_keygen_csr_and_pkcs8(void **state)
{
    static const char *const exts[] = {"keyUsage=critical,digitalSignature",
                                       "extendedKeyUsage=clientAuth", NULL};
    EVP_PKEY *client = pki_ec_key("P-256"), *key = pki_ec_key("P-256"), *back;
    X509_REQ *req = pki_csr(client, "/O=Acme/CN=dev-9", exts), *made;
    ts_profile *p = builtin("device");
    uint8_t *der = NULL;
    size_t len = 0;
    const unsigned char *q;
    PKCS8_PRIV_KEY_INFO *p8;

    (void)state;
    assert_true(X509_REQ_add1_attr_by_NID(req, NID_pkcs9_challengePassword, MBSTRING_ASC,
                                          (const unsigned char *)"binding", -1));
    assert_int_equal(ts_est_keygen_csr(req, key, &der, &len), TS_OK);
    assert_int_equal(ts_csr_parse(der, len, &made), TS_OK);
    assert_int_equal(X509_NAME_cmp(X509_REQ_get_subject_name(made), X509_REQ_get_subject_name(req)),
                     0);
    assert_int_equal(EVP_PKEY_eq(X509_REQ_get0_pubkey(made), key), 1);
    assert_int_equal(X509_REQ_verify(made, key), 1);
    assert_int_equal(X509_REQ_get_attr_by_NID(made, NID_pkcs9_challengePassword, -1), -1);
    STACK_OF(X509_EXTENSION) *got = X509_REQ_get_extensions(made);
    assert_int_equal(sk_X509_EXTENSION_num(got), 2);
    sk_X509_EXTENSION_pop_free(got, X509_EXTENSION_free);
    assert_int_equal(ts_csr_check(made, p), TS_OK);
    X509_REQ_free(made);
    OPENSSL_free(der);

    assert_int_equal(ts_est_pkcs8(key, &der, &len), TS_OK);
    q = der;
    p8 = d2i_PKCS8_PRIV_KEY_INFO(NULL, &q, (long)len);
    assert_non_null(p8);
    assert_ptr_equal(q, der + len);
    back = EVP_PKCS82PKEY(p8);
    assert_non_null(back);
    assert_int_equal(EVP_PKEY_eq(back, key), 1);
    EVP_PKEY_free(back);
    PKCS8_PRIV_KEY_INFO_free(p8);
    OPENSSL_clear_free(der, len);

    X509_REQ_free(req);
    ts_profile_free(p);
    EVP_PKEY_free(client);
    EVP_PKEY_free(key);
}

static int setup(void **state)
{
    pki_fx *fx = calloc(1, sizeof *fx);

    if (fx == NULL || pki_setup(fx) != 0) {
        free(fx);
        return -1;
    }
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    pki_teardown(*state);
    free(*state);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_base64_decode_table),
        cmocka_unit_test(test_base64_round_trip),
        cmocka_unit_test(test_certs_only),
        cmocka_unit_test(test_certs_only_refuses_signed),
        cmocka_unit_test(test_csrattrs_device),
        cmocka_unit_test(test_csrattrs_pop_and_server),
        cmocka_unit_test(test_csrattrs_parse_refusals),
        cmocka_unit_test(test_challenge_password),
        cmocka_unit_test(test_pop_check),
        cmocka_unit_test(test_reenroll_subject),
        cmocka_unit_test(test_reenroll_sans),
        cmocka_unit_test(test_keygen),
        cmocka_unit_test(test_keygen_csr_and_pkcs8),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
