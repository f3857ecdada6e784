/* CSR parsing and the profiles' CSR policy, with the bad-CSR corpus in tests/data/bad-csr/. */
#include <dirent.h>

#include "pki_test_util.h"

static ts_profile *builtin(const char *name)
{
    ts_profile *p = NULL;

    assert_int_equal(ts_profile_builtin(name, &p), TS_OK);
    return p;
}

static ts_profile *custom(const char *json)
{
    ts_profile *p = NULL;

    if (ts_profile_from_json(json, strlen(json), &p) != TS_OK) {
        fail_msg("profile: %s", ts_error_message());
    }
    return p;
}

/* Checks a CSR made here against a built-in profile. */
static ts_err check_with(const char *profile, EVP_PKEY *key, const char *subject,
                         const char *const *exts)
{
    ts_profile *p = builtin(profile);
    X509_REQ *req = pki_csr(key, subject, exts);
    ts_err rv = ts_csr_check(req, p);

    X509_REQ_free(req);
    ts_profile_free(p);
    return rv;
}

/* --- Parsing --------------------------------------------------------------------------------- */

static void test_parse_pem_and_der(void **state)
{
    EVP_PKEY *key = pki_ec_key("P-256");
    X509_REQ *req = pki_csr(key, "/O=Tessera Test/CN=dev-1", NULL), *got = NULL;
    uint8_t *der = NULL;
    size_t der_len = pki_csr_der(req, &der);
    BIO *bio = BIO_new(BIO_s_mem());
    char *pem = NULL, buf[4096];
    long pem_len;

    (void)state;
    assert_int_equal(ts_csr_parse(der, der_len, &got), TS_OK);
    assert_int_equal(X509_NAME_cmp(X509_REQ_get_subject_name(got), X509_REQ_get_subject_name(req)),
                     0);
    X509_REQ_free(got);

    assert_true(PEM_write_bio_X509_REQ(bio, req));
    /* A NUL-terminated copy: the BIO's memory is not. */
    char *mem = NULL;
    pem_len = BIO_get_mem_data(bio, &mem);
    pem = OPENSSL_strndup(mem, (size_t)pem_len);
    assert_non_null(pem);
    assert_int_equal(ts_csr_parse((const uint8_t *)pem, (size_t)pem_len, &got), TS_OK);
    X509_REQ_free(got);

    /* Whitespace around the PEM block is fine, and the old label too. */
    snprintf(buf, sizeof buf, "\n  %.*s\n\n", (int)pem_len, pem);
    assert_int_equal(ts_csr_parse((const uint8_t *)buf, strlen(buf), &got), TS_OK);
    X509_REQ_free(got);
    snprintf(buf, sizeof buf, "%.*s", (int)pem_len, pem);
    char old[4096];
    const char *body = strchr(buf, '\n') + 1;
    snprintf(old, sizeof old,
             "-----BEGIN NEW CERTIFICATE REQUEST-----\n%.*s"
             "-----END NEW CERTIFICATE REQUEST-----\n",
             (int)(strstr(body, "-----END") - body), body);
    assert_int_equal(ts_csr_parse((const uint8_t *)old, strlen(old), &got), TS_OK);
    X509_REQ_free(got);

    /* Text after the block, or before it, is refused. */
    snprintf(buf, sizeof buf, "%.*sjunk\n", (int)pem_len, pem);
    assert_err(ts_csr_parse((const uint8_t *)buf, strlen(buf), &got), TS_ERR_INVALID);
    assert_msg("trailing data after the PEM block");
    assert_null(got);
    snprintf(buf, sizeof buf, "Certificate request:\n%.*s", (int)pem_len, pem);
    assert_err(ts_csr_parse((const uint8_t *)buf, strlen(buf), &got), TS_ERR_INVALID);
    assert_msg("text before the PEM block");

    /* A PEM block with headers. */
    snprintf(buf, sizeof buf, "-----BEGIN CERTIFICATE REQUEST-----\nProc-Type: 4,ENCRYPTED\n\n%s",
             strchr(pem, '\n') + 1);
    assert_err(ts_csr_parse((const uint8_t *)buf, strlen(buf), &got), TS_ERR_INVALID);

    OPENSSL_free(pem);
    BIO_free(bio);
    OPENSSL_free(der);
    X509_REQ_free(req);
    EVP_PKEY_free(key);
}

static void test_parse_refusals(void **state)
{
    EVP_PKEY *key = pki_ec_key("P-256");
    X509_REQ *req = pki_csr(key, "/CN=dev-1", NULL), *got = (X509_REQ *)1;
    uint8_t *der = NULL;
    size_t der_len = pki_csr_der(req, &der);
    uint8_t *big = calloc(1, TS_CSR_MAX + 2);

    (void)state;
    assert_non_null(big);
    assert_err(ts_csr_parse(der, 0, &got), TS_ERR_INVALID);
    assert_msg("empty");
    assert_null(got);
    assert_err(ts_csr_parse(NULL, 5, &got), TS_ERR_INVALID);
    assert_err(ts_csr_parse(der, der_len, NULL), TS_ERR_INVALID);

    /* A truncated DER request. */
    assert_err(ts_csr_parse(der, der_len - 1, &got), TS_ERR_INVALID);
    assert_msg("not a DER certificate request");

    /* Oversized: refused before parsing, whatever the content. */
    memcpy(big, der, der_len);
    assert_err(ts_csr_parse(big, TS_CSR_MAX + 1, &got), TS_ERR_INVALID);
    assert_msg("more than the 65536 allowed");
    /* At the cap, the same bytes are a request with trailing zeros. */
    assert_err(ts_csr_parse(big, TS_CSR_MAX, &got), TS_ERR_INVALID);
    assert_msg("trailing data after the certificate request");

    /* A version other than 0. */
    X509_REQ *v2 = X509_REQ_dup(req);
    assert_true(X509_REQ_set_version(v2, 1));
    uint8_t *der2 = NULL;
    size_t der2_len = pki_csr_der(v2, &der2);
    assert_err(ts_csr_parse(der2, der2_len, &got), TS_ERR_INVALID);
    assert_msg("version 1");

    OPENSSL_free(der2);
    X509_REQ_free(v2);
    free(big);
    OPENSSL_free(der);
    X509_REQ_free(req);
    EVP_PKEY_free(key);
}

/* --- The corpus ------------------------------------------------------------------------------ */

static int read_file(const char *path, uint8_t **data, size_t *len)
{
    FILE *f = fopen(path, "rb");
    long size = -1;

    if (f != NULL && fseek(f, 0, SEEK_END) == 0) {
        size = ftell(f);
    }
    if (size < 0 || fseek(f, 0, SEEK_SET) != 0) {
        if (f != NULL) {
            fclose(f);
        }
        return -1;
    }
    *data = malloc((size_t)size + 1);
    assert_non_null(*data);
    *len = fread(*data, 1, (size_t)size, f);
    fclose(f);
    return *len == (size_t)size ? 0 : -1;
}

typedef struct expectation {
    char file[128], profile[32], error[16], message[256];
} expectation;

static void read_expect(const char *path, expectation *e)
{
    uint8_t *text = NULL;
    size_t len = 0;

    memset(e, 0, sizeof *e);
    assert_int_equal(read_file(path, &text, &len), 0);
    text[len] = '\0';
    for (char *line = strtok((char *)text, "\n"); line != NULL; line = strtok(NULL, "\n")) {
        char *sp = strchr(line, ' ');
        assert_non_null(sp);
        *sp = '\0';
        char *dst = strcmp(line, "file") == 0      ? e->file
                    : strcmp(line, "profile") == 0 ? e->profile
                    : strcmp(line, "error") == 0   ? e->error
                    : strcmp(line, "message") == 0 ? e->message
                                                   : NULL;
        assert_non_null(dst);
        snprintf(dst, strcmp(line, "message") == 0 ? sizeof e->message : 32, "%s", sp + 1);
    }
    free(text);
    assert_true(e->file[0] && e->profile[0] && e->error[0] && e->message[0]);
}

static void test_bad_csr_corpus(void **state)
{
    const char *src = getenv("TS_SOURCE_DIR");
    char dir[PATH_MAX], path[PATH_MAX + 256];
    char messages[32][256];
    size_t cases = 0;
    DIR *d;
    struct dirent *de;

    (void)state;
    snprintf(dir, sizeof dir, "%s/tests/data/bad-csr", src != NULL ? src : ".");
    d = opendir(dir);
    assert_non_null(d);
    while ((de = readdir(d)) != NULL) {
        size_t n = strlen(de->d_name);
        expectation e;
        uint8_t *data = NULL;
        size_t len = 0;
        X509_REQ *req = NULL;
        ts_profile *p = NULL;
        ts_err rv, want;

        if (n < 8 || strcmp(de->d_name + n - 7, ".expect") != 0) {
            continue;
        }
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        read_expect(path, &e);
        want = strcmp(e.error, "invalid") == 0 ? TS_ERR_INVALID
               : strcmp(e.error, "auth") == 0  ? TS_ERR_AUTH
                                               : TS_ERR_POLICY;
        snprintf(path, sizeof path, "%s/%s", dir, e.file);
        assert_int_equal(read_file(path, &data, &len), 0);
        p = builtin(e.profile);
        rv = ts_csr_parse(data, len, &req);
        if (rv == TS_OK) {
            rv = ts_csr_check(req, p);
        }
        if (rv != want || strstr(ts_error_message(), e.message) == NULL) {
            fail_msg("%s: got %s '%s', want %s '%s'", e.file, ts_err_name(rv), ts_error_message(),
                     e.error, e.message);
        }
        /* Each case is refused for its own reason. */
        for (size_t i = 0; i < cases; i++) {
            assert_string_not_equal(messages[i], e.message);
        }
        assert_true(cases < 32);
        snprintf(messages[cases++], sizeof messages[0], "%s", e.message);
        X509_REQ_free(req);
        ts_profile_free(p);
        free(data);
    }
    closedir(d);
    assert_true(cases >= 12);
}

/* --- Policy ---------------------------------------------------------------------------------- */

static void test_good_requests(void **state)
{
    EVP_PKEY *p256 = pki_ec_key("P-256"), *p384 = pki_ec_key("P-384"), *rsa = pki_rsa_key(2048);
    const char *const device_exts[] = {"basicConstraints=critical,CA:FALSE",
                                       "keyUsage=digitalSignature", "extendedKeyUsage=clientAuth",
                                       NULL};
    const char *const server_exts[] = {"subjectAltName=DNS:srv.example.com,IP:192.0.2.7", NULL};
    const char *const ip_exts[] = {"subjectAltName=IP:192.0.2.7", NULL};

    (void)state;
    assert_int_equal(check_with("device", p256, "/C=DE/O=Acme/OU=Line 3/CN=dev-0001", NULL), TS_OK);
    assert_int_equal(check_with("device", p256, "/CN=dev-0001", device_exts), TS_OK);
    /* A device request may leave the UID to the caller. */
    assert_int_equal(check_with("device", p256, "/O=Acme", NULL), TS_OK);
    assert_int_equal(check_with("server", p256, "/CN=srv.example.com", server_exts), TS_OK);
    assert_int_equal(check_with("server", rsa, "/O=Acme/CN=192.0.2.7", ip_exts), TS_OK);
    assert_int_equal(check_with("server", p384, "/O=Acme", server_exts), TS_OK);
    assert_int_equal(check_with("firmware-signer", p384, "/O=Acme/CN=release key", NULL), TS_OK);
    assert_int_equal(check_with("verification", p256, "/CN=abc123", NULL), TS_OK);
    EVP_PKEY_free(p256);
    EVP_PKEY_free(p384);
    EVP_PKEY_free(rsa);
}

static void test_key_refusals(void **state)
{
    EVP_PKEY *p384 = pki_ec_key("P-384"), *k1 = pki_ec_key("secp256k1");
    EVP_PKEY *rsa1024 = pki_rsa_key(1024), *rsa2048 = pki_rsa_key(2048);

    (void)state;
    assert_err(check_with("device", p384, "/CN=d", NULL), TS_ERR_POLICY);
    assert_msg("key is P-384; profile 'device' allows P-256");
    assert_err(check_with("device", k1, "/CN=d", NULL), TS_ERR_POLICY);
    assert_msg("key is EC secp256k1; profile 'device' allows P-256");
    assert_err(check_with("device", rsa2048, "/CN=d", NULL), TS_ERR_POLICY);
    assert_msg("key is RSA-2048; profile 'device' allows P-256");
    assert_err(check_with("firmware-signer", rsa1024, "/CN=d", NULL), TS_ERR_POLICY);
    assert_msg("key is RSA-1024; profile 'firmware-signer' allows P-256, P-384");
    EVP_PKEY_free(p384);
    EVP_PKEY_free(k1);
    EVP_PKEY_free(rsa1024);
    EVP_PKEY_free(rsa2048);
}

static void test_signature(void **state)
{
    EVP_PKEY *key = pki_ec_key("P-256"), *other = pki_ec_key("P-256");
    X509_REQ *req = pki_csr(key, "/CN=dev-1", NULL), *got = NULL;
    ts_profile *p = builtin("device");
    uint8_t *der = NULL;
    size_t len;

    (void)state;
    /* The same request with another key put in after signing. */
    assert_true(X509_REQ_set_pubkey(req, other));
    len = pki_csr_der(req, &der);
    assert_int_equal(ts_csr_parse(der, len, &got), TS_OK);
    assert_err(ts_csr_check(got, p), TS_ERR_AUTH);
    assert_msg("CSR signature does not verify");
    assert_err(ts_csr_check(NULL, p), TS_ERR_INVALID);
    assert_err(ts_csr_check(got, NULL), TS_ERR_INVALID);
    X509_REQ_free(got);
    OPENSSL_free(der);
    X509_REQ_free(req);
    ts_profile_free(p);
    EVP_PKEY_free(key);
    EVP_PKEY_free(other);
}

typedef struct policy_case {
    const char *profile; /* a built-in, or NULL for the custom one below */
    const char *subject;
    const char *exts[3];
    const char *want;
} policy_case;

#define CUSTOM_SERVER                                                                              \
    "{\"name\":\"web\",\"kind\":\"server\",\"key_types\":[\"P-256\"],"                             \
    "\"signature_digest\":\"SHA-256\",\"key_usage\":[\"digitalSignature\"],"                       \
    "\"extended_key_usage\":[\"serverAuth\"],\"subject\":[{\"type\":\"CN\",\"value\":\"<csr>\","   \
    "\"optional\":true}],\"csr_subject\":[\"CN\"],\"san\":{\"policy\":\"required\","               \
    "\"types\":[\"dns\"],\"dns_suffixes\":[\"example.com\",\"example.net\"],"                      \
    "\"wildcards\":true},\"csr_extensions\":[\"subjectAltName\"],\"validity\":{\"days\":90}}"

static const policy_case policy_cases[] = {
    {"device", "/CN=d", {"basicConstraints=critical,CA:TRUE"}, "CSR asks for CA:TRUE"},
    {"device", "/CN=d", {"basicConstraints=CA:TRUE,pathlen:0"}, "CSR asks for CA:TRUE"},
    {"device", "/CN=d", {"keyUsage=cRLSign"}, "keyCertSign or cRLSign"},
    {"device",
     "/CN=d",
     {"subjectKeyIdentifier=0102030405"},
     "extension X509v3 Subject Key Identifier"},
    {"device", "/CN=d", {"keyUsage=digitalSignature", "keyUsage=keyAgreement"}, "twice"},
    {"device", "/CN=d", {"subjectAltName=DNS:d.example.com"}, "forbids subject alternative"},
    {"device", "/CN=d/emailAddress=a@example.com", {NULL}, "attribute emailAddress"},
    {"device",
     "/CN=d/L=Berlin",
     {NULL},
     "attribute L is not allowed by profile 'device' "
     "(allowed: C, O, OU, CN)"},
    {"device", "/CN=a/CN=b", {NULL}, "more than one CN"},
    {"firmware-signer", "/O=Acme", {NULL}, "CSR subject has no CN"},
    {"server", "/CN=srv.example.com", {NULL}, "requires a subject alternative name"},
    {"server",
     "/CN=srv.example.com",
     {"subjectAltName=DNS:other.example.com"},
     "CN srv.example.com is not among"},
    {"server", "/CN=srv", {"subjectAltName=URI:https://srv.example.com"}, "SAN type uri"},
    {"server", "/O=Acme", {"subjectAltName=DNS:*.example.com"}, "wildcard DNS name"},
    {"server", "/O=Acme", {"subjectAltName=DNS:bad_name.example.com"}, "not a valid host name"},
    {"server", "/O=Acme", {"subjectAltName=DNS:-x.example.com"}, "not a valid host name"},
    {"server", "/O=Acme", {"extendedKeyUsage=serverAuth", "nsComment=hello"}, "Netscape Comment"},
    {NULL, "/CN=a.example.org", {"subjectAltName=DNS:a.example.org"}, "outside the domains"},
    {NULL, "/CN=x", {"subjectAltName=DNS:notexample.com"}, "outside the domains"},
    {NULL, "/CN=x", {"subjectAltName=DNS:*.*.example.com"}, "not a valid host name"},
    {NULL, "/CN=x", {"subjectAltName=IP:192.0.2.1"}, "SAN type ip"},
};

static void test_policy_refusals(void **state)
{
    EVP_PKEY *key = pki_ec_key("P-256");
    ts_profile *web = custom(CUSTOM_SERVER);

    (void)state;
    for (size_t i = 0; i < sizeof policy_cases / sizeof policy_cases[0]; i++) {
        const policy_case *c = &policy_cases[i];
        ts_profile *p = c->profile != NULL ? builtin(c->profile) : NULL;
        X509_REQ *req = pki_csr(key, c->subject, c->exts);
        ts_err rv = ts_csr_check(req, p != NULL ? p : web);
        if (rv != TS_ERR_POLICY || strstr(ts_error_message(), c->want) == NULL) {
            fail_msg("case %zu: got %s '%s', want policy '%s'", i, ts_err_name(rv),
                     ts_error_message(), c->want);
        }
        X509_REQ_free(req);
        ts_profile_free(p);
    }
    /* The custom profile's allowed names pass. */
    const char *const ok1[] = {"subjectAltName=DNS:a.example.com,DNS:*.example.net", NULL};
    const char *const ok2[] = {"subjectAltName=DNS:EXAMPLE.COM", NULL};
    X509_REQ *req = pki_csr(key, "/CN=a.example.com", ok1);
    assert_int_equal(ts_csr_check(req, web), TS_OK);
    X509_REQ_free(req);
    req = pki_csr(key, "/CN=example.com", ok2);
    assert_int_equal(ts_csr_check(req, web), TS_OK);
    X509_REQ_free(req);
    ts_profile_free(web);
    EVP_PKEY_free(key);
}

static void test_attributes(void **state)
{
    EVP_PKEY *key = pki_ec_key("P-256");
    ts_profile *p = builtin("device");
    X509_REQ *req;

    (void)state;
    /* challengePassword is accepted (EST carries tls-unique in it). */
    req = pki_csr(key, "/CN=dev-1", NULL);
    assert_true(X509_REQ_add1_attr_by_NID(req, NID_pkcs9_challengePassword, MBSTRING_UTF8,
                                          (const unsigned char *)"secret", -1));
    assert_true(X509_REQ_sign(req, key, EVP_sha256()) > 0);
    assert_int_equal(ts_csr_check(req, p), TS_OK);
    X509_REQ_free(req);

    /* Other attributes are not. */
    req = pki_csr(key, "/CN=dev-1", NULL);
    assert_true(X509_REQ_add1_attr_by_NID(req, NID_pkcs9_unstructuredName, MBSTRING_UTF8,
                                          (const unsigned char *)"x", -1));
    assert_true(X509_REQ_sign(req, key, EVP_sha256()) > 0);
    assert_err(ts_csr_check(req, p), TS_ERR_POLICY);
    assert_msg("unstructuredName, which is not accepted");
    X509_REQ_free(req);

    /* Nor twice the same. OpenSSL will not add a second one, so the OID of unstructuredName
     * (1.2.840.113549.1.9.2) is turned into challengePassword's (.7) in the DER, and the
     * request signed again. */
    static const uint8_t oid[] = {0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x02};
    req = pki_csr(key, "/CN=dev-1", NULL);
    assert_true(X509_REQ_add1_attr_by_NID(req, NID_pkcs9_challengePassword, MBSTRING_UTF8,
                                          (const unsigned char *)"secret", -1));
    assert_true(X509_REQ_add1_attr_by_NID(req, NID_pkcs9_unstructuredName, MBSTRING_UTF8,
                                          (const unsigned char *)"secret", -1));
    uint8_t *der = NULL;
    size_t len = pki_csr_der(req, &der);
    X509_REQ_free(req);
    size_t at = 0;
    while (at + sizeof oid <= len && memcmp(der + at, oid, sizeof oid) != 0) {
        at++;
    }
    assert_true(at + sizeof oid <= len);
    der[at + sizeof oid - 1] = 0x07;
    const unsigned char *q = der;
    req = d2i_X509_REQ(NULL, &q, (long)len);
    assert_non_null(req);
    assert_true(X509_REQ_sign(req, key, EVP_sha256()) > 0);
    assert_err(ts_csr_check(req, p), TS_ERR_POLICY);
    assert_msg("challengePassword twice");
    X509_REQ_free(req);
    OPENSSL_free(der);
    ts_profile_free(p);
    EVP_PKEY_free(key);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_pem_and_der), cmocka_unit_test(test_parse_refusals),
        cmocka_unit_test(test_bad_csr_corpus),    cmocka_unit_test(test_good_requests),
        cmocka_unit_test(test_key_refusals),      cmocka_unit_test(test_signature),
        cmocka_unit_test(test_policy_refusals),   cmocka_unit_test(test_attributes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
