/* Issuing: CA certificates and end-entity certificates, the issuing key in a soft: key store. */
#include "pki_test_util.h"

static pki_fx fx;

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

static ts_profile *profile(const char *name_or_json)
{
    ts_profile *p = NULL;
    ts_err rv = name_or_json[0] == '{'
                    ? ts_profile_from_json(name_or_json, strlen(name_or_json), &p)
                    : ts_profile_builtin(name_or_json, &p);

    if (rv != TS_OK) {
        fail_msg("profile: %s", ts_error_message());
    }
    return p;
}

/* Parameters for a certificate from the fixture's issuing CA. */
static ts_issue_params params(const ts_profile *p, X509_REQ *csr, uint8_t serial[TS_SERIAL_LEN])
{
    ts_issue_params ip = {0};

    pki_serial(serial);
    ip.profile = p;
    ip.csr = csr;
    ip.vars.org = "Acme Devices";
    ip.vars.country = "DE";
    ip.serial = serial;
    ip.issuer_cert = fx.issuing;
    ip.issuer_key = fx.issuing_key;
    ip.crl_url = PKI_CRL_URL;
    ip.ocsp_url = PKI_OCSP_URL;
    ip.ca_issuers_url = PKI_AIA_URL;
    return ip;
}

static X509 *issue_ok(const ts_issue_params *ip)
{
    X509 *cert = NULL;

    if (ts_cert_issue(ip, &cert) != TS_OK) {
        fail_msg("ts_cert_issue: %s", ts_error_message());
    }
    return cert;
}

static void assert_ext(X509 *cert, int nid, const char *want, int want_critical)
{
    char text[1024];
    int critical = -1;

    if (!pki_ext_text(cert, nid, text, sizeof text, &critical)) {
        fail_msg("no %s extension", OBJ_nid2ln(nid));
    }
    if (strstr(text, want) == NULL) {
        fail_msg("%s is '%s', want '%s'", OBJ_nid2ln(nid), text, want);
    }
    assert_int_equal(critical, want_critical);
}

/* --- CA certificates ------------------------------------------------------------------------- */

static void test_root(void **state)
{
    char line[256];
    const ASN1_OCTET_STRING *ski = X509_get0_subject_key_id(fx.root);
    const ASN1_OCTET_STRING *akid = X509_get0_authority_key_id(fx.root);

    (void)state;
    assert_int_equal(X509_get_version(fx.root), X509_VERSION_3);
    assert_int_equal(X509_check_issued(fx.root, fx.root), X509_V_OK);
    assert_int_equal(X509_verify(fx.root, fx.root_key), 1);
    assert_int_equal(X509_get_signature_nid(fx.root), NID_ecdsa_with_SHA384);
    assert_int_equal(X509_check_ca(fx.root), 1);
    assert_int_equal(X509_get_pathlen(fx.root), 1);
    assert_ext(fx.root, NID_basic_constraints, "CA:TRUE, pathlen:1", 1);
    /* DER, not just BER: TRUE is encoded as 0xFF (X.690 section 11.1). */
    static const uint8_t bc_der[] = {0x30, 0x06, 0x01, 0x01, 0xff, 0x02, 0x01, 0x01};
    const ASN1_OCTET_STRING *bc = X509_EXTENSION_get_data(
        X509_get_ext(fx.root, X509_get_ext_by_NID(fx.root, NID_basic_constraints, -1)));
    assert_int_equal(ASN1_STRING_length(bc), sizeof bc_der);
    assert_memory_equal(ASN1_STRING_get0_data(bc), bc_der, sizeof bc_der);
    assert_int_equal(X509_get_key_usage(fx.root), KU_KEY_CERT_SIGN | KU_CRL_SIGN);
    assert_ext(fx.root, NID_key_usage, "Certificate Sign, CRL Sign", 1);
    assert_non_null(ski);
    assert_non_null(akid);
    assert_int_equal(ASN1_OCTET_STRING_cmp(ski, akid), 0);
    assert_int_equal(X509_get_ext_by_NID(fx.root, NID_crl_distribution_points, -1), -1);
    pki_name_line(X509_get_subject_name(fx.root), line, sizeof line);
    assert_string_equal(line, "C = DE, O = Tessera Test, CN = Test Root");
    assert_int_equal(X509_NAME_cmp(X509_get_subject_name(fx.root), X509_get_issuer_name(fx.root)),
                     0);
    /* Ten years from the time it was made, which began a minute before. */
    time_t nb = pki_time(X509_get0_notBefore(fx.root)), na = pki_time(X509_get0_notAfter(fx.root));
    assert_true(nb >= fx.made_from - 60 && nb <= fx.made_until - 60);
    assert_int_equal(na - nb, 3650L * 86400 + 60);
}

static void test_issuing_ca(void **state)
{
    (void)state;
    assert_int_equal(X509_check_issued(fx.root, fx.issuing), X509_V_OK);
    assert_int_equal(X509_verify(fx.issuing, fx.root_key), 1);
    assert_int_equal(X509_check_ca(fx.issuing), 1);
    assert_int_equal(X509_get_pathlen(fx.issuing), 0);
    assert_ext(fx.issuing, NID_basic_constraints, "CA:TRUE, pathlen:0", 1);
    assert_int_equal(X509_get_key_usage(fx.issuing),
                     KU_KEY_CERT_SIGN | KU_CRL_SIGN | KU_DIGITAL_SIGNATURE);
    assert_int_equal(ASN1_OCTET_STRING_cmp(X509_get0_authority_key_id(fx.issuing),
                                           X509_get0_subject_key_id(fx.root)),
                     0);
    assert_ext(fx.issuing, NID_crl_distribution_points, "URI:" PKI_CRL_URL, 0);
    assert_ext(fx.issuing, NID_info_access, "OCSP - URI:" PKI_OCSP_URL, 0);
    /* Its key is the key-store key. */
    EVP_PKEY *pub = NULL;
    assert_int_equal(ts_keystore_public_key(fx.ks, "issuing", &pub), TS_OK);
    assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(fx.issuing), pub), 1);
    EVP_PKEY_free(pub);
    /* Five years, inside the root's ten. */
    assert_true(ASN1_TIME_compare(X509_get0_notAfter(fx.issuing), X509_get0_notAfter(fx.root)) <=
                0);
}

static void test_ca_refusals(void **state)
{
    uint8_t serial[TS_SERIAL_LEN];
    ts_ca_params p = {0};
    EVP_PKEY *other = pki_ec_key("P-256");
    X509 *cert = (X509 *)1;

    (void)state;
    pki_serial(serial);
    p.common_name = "x";
    p.org = "Tessera Test";
    p.days = 10;
    p.serial = serial;
    p.subject_key = other;
    p.issuer_cert = fx.issuing;
    p.issuer_key = fx.issuing_key;
    /* Below a pathLen 0 CA, no CA may follow. */
    assert_err(ts_ca_cert_make(&p, &cert), TS_ERR_INVALID);
    assert_msg("pathLen 0 leaves no room");
    assert_null(cert);
    p.issuer_cert = fx.root;
    p.issuer_key = fx.issuing_key;
    assert_err(ts_ca_cert_make(&p, &cert), TS_ERR_INVALID);
    assert_msg("does not match");
    p.issuer_cert = NULL;
    p.issuer_key = fx.root_key;
    assert_err(ts_ca_cert_make(&p, &cert), TS_ERR_INVALID);
    assert_msg("must be the same");
    p.issuer_key = other;
    p.crl_url = PKI_CRL_URL;
    assert_err(ts_ca_cert_make(&p, &cert), TS_ERR_INVALID);
    assert_msg("root carries no CRL");
    p.crl_url = NULL;
    p.days = 0;
    assert_err(ts_ca_cert_make(&p, &cert), TS_ERR_INVALID);
    p.days = 10;
    p.country = "Germany";
    assert_err(ts_ca_cert_make(&p, &cert), TS_ERR_INVALID);
    assert_msg("two capital letters");
    p.country = NULL;
    serial[0] = 0;
    assert_err(ts_ca_cert_make(&p, &cert), TS_ERR_INVALID);
    pki_serial(serial);
    p.issuer_cert = fx.root;
    p.issuer_key = fx.root_key;
    p.crl_url = "ftp://ca.example.test/crl";
    assert_err(ts_ca_cert_make(&p, &cert), TS_ERR_INVALID);
    assert_msg("http:// or https://");
    p.crl_url = "http://ca.example.test/a b";
    assert_err(ts_ca_cert_make(&p, &cert), TS_ERR_INVALID);
    p.crl_url = NULL;
    /* Without a country the subject is O and CN. */
    assert_int_equal(ts_ca_cert_make(&p, &cert), TS_OK);
    char line[128];
    pki_name_line(X509_get_subject_name(cert), line, sizeof line);
    assert_string_equal(line, "O = Tessera Test, CN = x");
    X509_free(cert);
    EVP_PKEY_free(other);
}

/* --- Device certificates --------------------------------------------------------------------- */

static void test_device(void **state)
{
    EVP_PKEY *key = pki_ec_key("P-256");
    X509_REQ *csr = pki_csr(key, "/O=Whoever/CN=dev-0001", NULL);
    ts_profile *p = profile("device");
    uint8_t serial[TS_SERIAL_LEN];
    ts_issue_params ip = params(p, csr, serial);
    time_t from = time(NULL);
    X509 *cert = issue_ok(&ip);
    time_t until = time(NULL);
    char line[256];
    uint8_t got[TS_SERIAL_LEN];

    (void)state;
    assert_int_equal(pki_verify_chain(fx.root, fx.issuing, cert, NULL), X509_V_OK);
    assert_int_equal(X509_verify(cert, X509_get0_pubkey(fx.issuing)), 1);
    assert_int_equal(X509_get_signature_nid(cert), NID_ecdsa_with_SHA256);
    assert_int_equal(X509_get_version(cert), X509_VERSION_3);
    assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(cert), key), 1);
    /* The template decides the subject; the CSR's O is not used. */
    pki_name_line(X509_get_subject_name(cert), line, sizeof line);
    assert_string_equal(line, "O = Acme Devices, C = DE, CN = dev-0001");
    assert_int_equal(X509_NAME_cmp(X509_get_issuer_name(cert), X509_get_subject_name(fx.issuing)),
                     0);
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
    assert_int_equal(BN_num_bytes(bn), TS_SERIAL_LEN);
    assert_int_equal(BN_bn2bin(bn, got), TS_SERIAL_LEN);
    assert_memory_equal(got, serial, TS_SERIAL_LEN);
    BN_free(bn);
    /* Never a CA. */
    assert_int_equal(X509_check_ca(cert), 0);
    assert_ext(cert, NID_basic_constraints, "CA:FALSE", 1);
    assert_int_equal(X509_get_key_usage(cert), KU_DIGITAL_SIGNATURE | KU_KEY_AGREEMENT);
    assert_ext(cert, NID_key_usage, "Digital Signature, Key Agreement", 1);
    assert_ext(cert, NID_ext_key_usage, "TLS Web Client Authentication", 0);
    assert_int_equal(X509_get_extended_key_usage(cert), XKU_SSL_CLIENT);
    assert_non_null(X509_get0_subject_key_id(cert));
    assert_int_equal(ASN1_OCTET_STRING_cmp(X509_get0_authority_key_id(cert),
                                           X509_get0_subject_key_id(fx.issuing)),
                     0);
    assert_ext(cert, NID_crl_distribution_points, "URI:" PKI_CRL_URL, 0);
    assert_ext(cert, NID_info_access, "OCSP - URI:" PKI_OCSP_URL, 0);
    assert_ext(cert, NID_info_access, "CA Issuers - URI:" PKI_AIA_URL, 0);
    assert_int_equal(X509_get_ext_by_NID(cert, NID_subject_alt_name, -1), -1);
    /* Validity: a minute of backdating; ten years, cut at the issuing CA's end (five years). */
    time_t nb = pki_time(X509_get0_notBefore(cert));
    assert_true(nb >= from - 60 && nb <= until - 60);
    assert_int_equal(ASN1_TIME_compare(X509_get0_notAfter(cert), X509_get0_notAfter(fx.issuing)),
                     0);
    X509_free(cert);

    /* The caller's UID wins over the CSR's CN; a missing country is left out (optional). */
    ip = params(p, csr, serial);
    ip.vars.device_uid = "SN:0042-A";
    ip.vars.country = NULL;
    cert = issue_ok(&ip);
    pki_name_line(X509_get_subject_name(cert), line, sizeof line);
    assert_string_equal(line, "O = Acme Devices, CN = SN:0042-A");
    X509_free(cert);

    ts_profile_free(p);
    X509_REQ_free(csr);
    EVP_PKEY_free(key);
}

static void test_device_refusals(void **state)
{
    EVP_PKEY *key = pki_ec_key("P-256"), *p384 = pki_ec_key("P-384");
    X509_REQ *csr = pki_csr(key, "/CN=dev 1", NULL), *nocn = pki_csr(key, "/O=Acme", NULL);
    X509_REQ *wrong = pki_csr(p384, "/CN=dev-1", NULL);
    ts_profile *p = profile("device");
    uint8_t serial[TS_SERIAL_LEN];
    ts_issue_params ip;
    X509 *cert = (X509 *)1;

    (void)state;
    /* A UID with a space (from the CSR), or a slash (from the caller). */
    ip = params(p, csr, serial);
    assert_err(ts_cert_issue(&ip, &cert), TS_ERR_POLICY);
    assert_msg("device UID holds the character 0x20");
    assert_null(cert);
    ip.vars.device_uid = "../etc";
    assert_err(ts_cert_issue(&ip, &cert), TS_ERR_POLICY);
    assert_msg("0x2f");
    ip.vars.device_uid = "";
    assert_err(ts_cert_issue(&ip, &cert), TS_ERR_POLICY);
    /* No UID anywhere. */
    ip = params(p, nocn, serial);
    assert_err(ts_cert_issue(&ip, &cert), TS_ERR_POLICY);
    assert_msg("no device UID");
    /* Missing or bad organisation and country. */
    ip = params(p, nocn, serial);
    ip.vars.device_uid = "dev-1";
    ip.vars.org = NULL;
    assert_err(ts_cert_issue(&ip, &cert), TS_ERR_INVALID);
    assert_msg("needs <org>");
    ip.vars.org = "Acme";
    ip.vars.country = "de";
    assert_err(ts_cert_issue(&ip, &cert), TS_ERR_INVALID);
    assert_msg("two capital letters");
    /* The policy is checked again at issue time. */
    ip = params(p, wrong, serial);
    assert_err(ts_cert_issue(&ip, &cert), TS_ERR_POLICY);
    assert_msg("key is P-384");
    /* Bad parameters. */
    ip = params(p, nocn, serial);
    ip.vars.device_uid = "dev-1";
    ip.public_key = key;
    assert_err(ts_cert_issue(&ip, &cert), TS_ERR_INVALID);
    ip.public_key = NULL;
    serial[0] = 0x80;
    assert_err(ts_cert_issue(&ip, &cert), TS_ERR_INVALID);
    pki_serial(serial);
    ip.issuer_key = fx.root_key;
    assert_err(ts_cert_issue(&ip, &cert), TS_ERR_INVALID);
    assert_msg("does not match");
    ip.issuer_key = fx.issuing_key;
    ip.ocsp_url = "http:///nohost";
    assert_err(ts_cert_issue(&ip, &cert), TS_ERR_INVALID);
    assert_msg("no host");
    ip.ocsp_url = NULL;
    ip.not_before = time(NULL) - 3600;
    assert_err(ts_cert_issue(&ip, &cert), TS_ERR_INVALID);
    assert_msg("not backdated");
    ip.not_before = 0;
    /* An end-entity certificate cannot issue. */
    ip.crl_url = ip.ca_issuers_url = NULL;
    X509 *leaf = issue_ok(&ip);
    ip.issuer_cert = leaf;
    ip.issuer_key = key;
    assert_err(ts_cert_issue(&ip, &cert), TS_ERR_INVALID);
    assert_msg("not a CA");
    assert_err(ts_cert_issue(NULL, &cert), TS_ERR_INVALID);
    assert_err(ts_cert_issue(&ip, NULL), TS_ERR_INVALID);
    X509_free(leaf);
    ts_profile_free(p);
    X509_REQ_free(csr);
    X509_REQ_free(nocn);
    X509_REQ_free(wrong);
    EVP_PKEY_free(key);
    EVP_PKEY_free(p384);
}

/* --- Validity -------------------------------------------------------------------------------- */

#define FIXED_DEVICE(date)                                                                         \
    "{\"name\":\"fixed\",\"kind\":\"device\",\"key_types\":[\"P-256\"],"                           \
    "\"signature_digest\":\"SHA-384\",\"key_usage\":[\"digitalSignature\"],"                       \
    "\"subject\":[{\"type\":\"CN\",\"value\":\"<device UID>\"}],\"csr_subject\":[\"CN\"],"         \
    "\"validity\":{\"not_after\":\"" date "\"}}"

static void test_validity(void **state)
{
    EVP_PKEY *key = pki_ec_key("P-256"), *long_key = pki_ec_key("P-256");
    X509_REQ *csr = pki_csr(key, "/CN=dev-7", NULL);
    ts_profile *fixed = profile(FIXED_DEVICE("2049-03-19")), *late = profile(FIXED_DEVICE("2051-"
                                                                                          "01-02"));
    ts_profile *past = profile(FIXED_DEVICE("2001-01-01"));
    ts_profile *verif = profile("verification");
    uint8_t serial[TS_SERIAL_LEN];
    ts_issue_params ip;
    X509 *cert = NULL;
    struct tm tm;

    (void)state;
    /* A root and an issuing CA that outlive 2051, so that the profile's date decides. */
    X509 *long_root = pki_ca("Long Root", fx.root_key, NULL, fx.root_key, 1, 36000);
    X509 *ca = pki_ca("Long Issuing", long_key, long_root, fx.root_key, 0, 36000);

    ip = params(fixed, csr, serial);
    ip.issuer_cert = ca;
    ip.issuer_key = long_key;
    cert = issue_ok(&ip);
    assert_int_equal(X509_get_signature_nid(cert), NID_ecdsa_with_SHA384);
    assert_true(ASN1_TIME_to_tm(X509_get0_notAfter(cert), &tm));
    assert_int_equal(tm.tm_year + 1900, 2049);
    assert_int_equal(tm.tm_mon + 1, 3);
    assert_int_equal(tm.tm_mday, 19);
    assert_int_equal(tm.tm_hour * 3600 + tm.tm_min * 60 + tm.tm_sec, 86399);
    /* RFC 5280 section 4.1.2.5: UTCTime up to 2049, GeneralizedTime from 2050. */
    assert_int_equal(ASN1_STRING_type(X509_get0_notAfter(cert)), V_ASN1_UTCTIME);
    X509_free(cert);
    ip.profile = late;
    cert = issue_ok(&ip);
    assert_int_equal(ASN1_STRING_type(X509_get0_notAfter(cert)), V_ASN1_GENERALIZEDTIME);
    X509_free(cert);
    /* A notBefore in the future is kept. */
    ip.not_before = time(NULL) + 86400;
    cert = issue_ok(&ip);
    assert_int_equal(pki_time(X509_get0_notBefore(cert)), ip.not_before);
    X509_free(cert);
    ip.not_before = 0;
    /* A fixed end that is past leaves no validity. */
    ip.profile = past;
    assert_err(ts_cert_issue(&ip, &cert), TS_ERR_POLICY);
    assert_msg("no validity left");

    /* The verification certificate: CN=<code>, one day. */
    ip = params(verif, csr, serial);
    ip.vars.code = "4a5b6c7d8e9f";
    cert = issue_ok(&ip);
    char line[128];
    pki_name_line(X509_get_subject_name(cert), line, sizeof line);
    assert_string_equal(line, "CN = 4a5b6c7d8e9f");
    time_t span = pki_time(X509_get0_notAfter(cert)) - pki_time(X509_get0_notBefore(cert));
    assert_int_equal(span, 86400 + 60);
    assert_int_equal(pki_verify_chain(fx.root, fx.issuing, cert, NULL), X509_V_OK);
    X509_free(cert);
    ip.vars.code = NULL;
    assert_err(ts_cert_issue(&ip, &cert), TS_ERR_INVALID);
    assert_msg("<code>");
    ip.vars.code = "abc def";
    assert_err(ts_cert_issue(&ip, &cert), TS_ERR_POLICY);
    assert_msg("registration code");

    X509_free(ca);
    X509_free(long_root);
    ts_profile_free(fixed);
    ts_profile_free(late);
    ts_profile_free(past);
    ts_profile_free(verif);
    X509_REQ_free(csr);
    EVP_PKEY_free(key);
    EVP_PKEY_free(long_key);
}

/* --- Server certificates and renewal --------------------------------------------------------- */

static void test_server_and_renewal(void **state)
{
    EVP_PKEY *key = pki_rsa_key(2048);
    const char *const exts[] = {"subjectAltName=DNS:srv.example.com,IP:192.0.2.7",
                                "basicConstraints=CA:FALSE", NULL};
    X509_REQ *csr = pki_csr(key, "/O=Ignored/CN=srv.example.com", exts);
    ts_profile *p = profile("server");
    uint8_t serial[TS_SERIAL_LEN];
    ts_issue_params ip = params(p, csr, serial);
    X509 *cert = issue_ok(&ip), *renewed = NULL;
    char line[256];

    (void)state;
    pki_name_line(X509_get_subject_name(cert), line, sizeof line);
    assert_string_equal(line, "O = Acme Devices, CN = srv.example.com");
    assert_ext(cert, NID_subject_alt_name, "DNS:srv.example.com, IP Address:192.0.2.7", 0);
    assert_ext(cert, NID_ext_key_usage, "TLS Web Server Authentication", 0);
    assert_int_equal(X509_get_key_usage(cert), KU_DIGITAL_SIGNATURE);
    assert_int_equal(X509_check_host(cert, "srv.example.com", 0, 0, NULL), 1);
    assert_int_equal(pki_verify_chain(fx.root, fx.issuing, cert, NULL), X509_V_OK);

    /* Renewal: same key, subject and SANs, a new serial and validity. */
    ip = params(p, NULL, serial);
    ip.public_key = X509_get0_pubkey(cert);
    ip.subject = X509_get_subject_name(cert);
    ip.sans = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
    assert_non_null(ip.sans);
    renewed = issue_ok(&ip);
    assert_int_equal(X509_NAME_cmp(X509_get_subject_name(renewed), X509_get_subject_name(cert)), 0);
    assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(renewed), key), 1);
    assert_ext(renewed, NID_subject_alt_name, "DNS:srv.example.com, IP Address:192.0.2.7", 0);
    assert_int_not_equal(
        ASN1_INTEGER_cmp(X509_get0_serialNumber(renewed), X509_get0_serialNumber(cert)), 0);
    X509_free(renewed);
    /* A server certificate's CN must be one of its SANs. */
    X509_NAME *other = X509_NAME_new();
    assert_true(X509_NAME_add_entry_by_txt(other, "CN", MBSTRING_UTF8,
                                           (const unsigned char *)"other.example.com", -1, -1, 0));
    ip.subject = other;
    assert_err(ts_cert_issue(&ip, &renewed), TS_ERR_POLICY);
    assert_msg("CN other.example.com is not among");
    ip.subject = X509_get_subject_name(cert);
    X509_NAME_free(other);
    /* Renewal without the SANs the profile requires is refused. */
    GENERAL_NAMES_free(ip.sans);
    ip.sans = NULL;
    assert_err(ts_cert_issue(&ip, &renewed), TS_ERR_POLICY);
    assert_msg("requires a subject alternative name");
    /* Renewal of a key the profile does not allow. */
    EVP_PKEY *small = pki_rsa_key(1024);
    ip.public_key = small;
    assert_err(ts_cert_issue(&ip, &renewed), TS_ERR_POLICY);
    assert_msg("RSA-1024");
    EVP_PKEY_free(small);

    /* A firmware signer: codeSigning, CN from the CSR. */
    ts_profile *fw = profile("firmware-signer");
    EVP_PKEY *fwkey = pki_ec_key("P-384");
    X509_REQ *fwcsr = pki_csr(fwkey, "/CN=release-2025", NULL);
    ip = params(fw, fwcsr, serial);
    X509 *fwcert = issue_ok(&ip);
    assert_ext(fwcert, NID_ext_key_usage, "Code Signing", 0);
    pki_name_line(X509_get_subject_name(fwcert), line, sizeof line);
    assert_string_equal(line, "O = Acme Devices, C = DE, CN = release-2025");
    X509_free(fwcert);
    X509_REQ_free(fwcsr);
    EVP_PKEY_free(fwkey);
    ts_profile_free(fw);

    X509_free(cert);
    ts_profile_free(p);
    X509_REQ_free(csr);
    EVP_PKEY_free(key);
}

/* Serials drawn together are each what ts_serial_random() makes: 20 bytes, positive, with no
 * leading zero byte, and all different. */
static void test_serials_together(void **state)
{
    enum { N = 64 };
    uint8_t serials[N * TS_SERIAL_LEN];

    (void)state;
    assert_int_equal(ts_serials_random(serials, N), TS_OK);
    for (size_t i = 0; i < N; i++) {
        const uint8_t *s = &serials[i * TS_SERIAL_LEN];
        assert_true(s[0] >= 0x01 && s[0] <= 0x7f);
        for (size_t j = 0; j < i; j++) {
            assert_memory_not_equal(s, &serials[j * TS_SERIAL_LEN], TS_SERIAL_LEN);
        }
    }
    assert_int_equal(ts_serials_random(serials, 0), TS_ERR_INVALID);
    assert_int_equal(ts_serials_random(serials, SIZE_MAX), TS_ERR_INVALID);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_root),
        cmocka_unit_test(test_issuing_ca),
        cmocka_unit_test(test_ca_refusals),
        cmocka_unit_test(test_device),
        cmocka_unit_test(test_device_refusals),
        cmocka_unit_test(test_validity),
        cmocka_unit_test(test_server_and_renewal),
        cmocka_unit_test(test_serials_together),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
