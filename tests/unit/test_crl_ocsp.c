/* Revocation: reason names, CRLs and the OCSP responder, signed with a key-store key. */
#include <openssl/err.h>
#include <openssl/ocsp.h>

#include "pki_test_util.h"

static pki_fx fx;
static X509 *leaf_good, *leaf_revoked, *leaf_hold;

static X509 *issue_under(const char *uid, X509 *issuer, EVP_PKEY *issuer_key)
{
    EVP_PKEY *key = pki_ec_key("P-256");
    X509_REQ *csr = pki_csr(key, "/CN=x", NULL);
    ts_profile *p = NULL;
    uint8_t serial[TS_SERIAL_LEN];
    ts_issue_params ip = {0};
    X509 *cert = NULL;

    assert_int_equal(ts_profile_builtin("device", &p), TS_OK);
    pki_serial(serial);
    ip.profile = p;
    ip.csr = csr;
    ip.vars.org = "Acme";
    ip.vars.device_uid = uid;
    ip.serial = serial;
    ip.issuer_cert = issuer;
    ip.issuer_key = issuer_key;
    if (ts_cert_issue(&ip, &cert) != TS_OK) {
        fail_msg("issue: %s", ts_error_message());
    }
    ts_profile_free(p);
    X509_REQ_free(csr);
    EVP_PKEY_free(key);
    return cert;
}

static X509 *issue_device(const char *uid)
{
    return issue_under(uid, fx.issuing, fx.issuing_key);
}

static int setup(void **state)
{
    (void)state;
    if (pki_setup(&fx) != 0) {
        return -1;
    }
    leaf_good = issue_device("dev-good");
    leaf_revoked = issue_device("dev-revoked");
    leaf_hold = issue_device("dev-hold");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    X509_free(leaf_good);
    X509_free(leaf_revoked);
    X509_free(leaf_hold);
    pki_teardown(&fx);
    return 0;
}

/* The serial of cert as bytes. */
static size_t serial_bytes(X509 *cert, uint8_t out[TS_SERIAL_LEN])
{
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
    int len = BN_bn2bin(bn, out);

    BN_free(bn);
    assert_true(len > 0 && len <= TS_SERIAL_LEN);
    return (size_t)len;
}

/* --- Reasons --------------------------------------------------------------------------------- */

static void test_reason_names(void **state)
{
    static const char *const names[] = {
        "unspecified",        "keyCompromise",        "cACompromise",    "affiliationChanged",
        "superseded",         "cessationOfOperation", "certificateHold", "removeFromCRL",
        "privilegeWithdrawn", "aACompromise"};
    static const int codes[] = {0, 1, 2, 3, 4, 5, 6, 8, 9, 10};
    int reason = -5;

    (void)state;
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        assert_int_equal(ts_crl_reason_from_name(names[i], &reason), TS_OK);
        assert_int_equal(reason, codes[i]);
        assert_string_equal(ts_crl_reason_name(codes[i]), names[i]);
    }
    assert_int_equal(ts_crl_reason_from_name("KEYCOMPROMISE", &reason), TS_OK);
    assert_int_equal(reason, CRL_REASON_KEY_COMPROMISE);
    assert_err(ts_crl_reason_from_name("stolen", &reason), TS_ERR_INVALID);
    assert_msg("'stolen'");
    assert_err(ts_crl_reason_from_name(NULL, &reason), TS_ERR_INVALID);
    assert_null(ts_crl_reason_name(7));
    assert_null(ts_crl_reason_name(-1));
    assert_null(ts_crl_reason_name(11));
}

/* --- CRLs ------------------------------------------------------------------------------------ */

static void test_crl(void **state)
{
    uint8_t s1[TS_SERIAL_LEN], s2[TS_SERIAL_LEN], s3[TS_SERIAL_LEN] = {0x00, 0x00, 0x05};
    time_t now = time(NULL);
    ts_revoked revoked[3] = {
        {s1, serial_bytes(leaf_revoked, s1), now - 100, CRL_REASON_KEY_COMPROMISE},
        {s2, serial_bytes(leaf_hold, s2), now - 50, CRL_REASON_CERTIFICATE_HOLD},
        {s3, 3, now - 10, -1},
    };
    X509_CRL *crl = NULL;

    (void)state;
    assert_int_equal(
        ts_crl_make(fx.issuing, fx.issuing_key, revoked, 3, 42, now, now + 86400, &crl), TS_OK);
    assert_int_equal(X509_CRL_get_version(crl), X509_CRL_VERSION_2);
    assert_int_equal(X509_CRL_verify(crl, X509_get0_pubkey(fx.issuing)), 1);
    assert_int_equal(X509_NAME_cmp(X509_CRL_get_issuer(crl), X509_get_subject_name(fx.issuing)), 0);
    assert_int_equal(pki_time(X509_CRL_get0_lastUpdate(crl)), now);
    assert_int_equal(pki_time(X509_CRL_get0_nextUpdate(crl)), now + 86400);

    ASN1_INTEGER *number = X509_CRL_get_ext_d2i(crl, NID_crl_number, NULL, NULL);
    assert_non_null(number);
    assert_int_equal(ASN1_INTEGER_get(number), 42);
    ASN1_INTEGER_free(number);
    AUTHORITY_KEYID *aki = X509_CRL_get_ext_d2i(crl, NID_authority_key_identifier, NULL, NULL);
    assert_non_null(aki);
    assert_int_equal(ASN1_OCTET_STRING_cmp(aki->keyid, X509_get0_subject_key_id(fx.issuing)), 0);
    AUTHORITY_KEYID_free(aki);

    /* Sorted by serial; the reason code only where one was given. */
    STACK_OF(X509_REVOKED) *revs = X509_CRL_get_REVOKED(crl);
    assert_int_equal(sk_X509_REVOKED_num(revs), 3);
    X509_REVOKED *first = sk_X509_REVOKED_value(revs, 0);
    assert_int_equal(ASN1_INTEGER_get(X509_REVOKED_get0_serialNumber(first)), 5);
    assert_int_equal(X509_REVOKED_get_ext_by_NID(first, NID_crl_reason, -1), -1);
    assert_int_equal(pki_time(X509_REVOKED_get0_revocationDate(first)), now - 10);
    for (int i = 1; i < 3; i++) {
        assert_true(
            ASN1_INTEGER_cmp(X509_REVOKED_get0_serialNumber(sk_X509_REVOKED_value(revs, i - 1)),
                             X509_REVOKED_get0_serialNumber(sk_X509_REVOKED_value(revs, i))) < 0);
    }
    X509_REVOKED *entry = NULL;
    assert_int_equal(X509_CRL_get0_by_cert(crl, &entry, leaf_revoked), 1);
    ASN1_ENUMERATED *code = X509_REVOKED_get_ext_d2i(entry, NID_crl_reason, NULL, NULL);
    assert_non_null(code);
    assert_int_equal(ASN1_ENUMERATED_get(code), CRL_REASON_KEY_COMPROMISE);
    ASN1_ENUMERATED_free(code);
    assert_int_equal(X509_CRL_get0_by_cert(crl, &entry, leaf_good), 0);

    /* Path validation with the CRL: the revoked leaf fails, the good one passes. */
    assert_int_equal(pki_verify_chain(fx.root, fx.issuing, leaf_revoked, crl),
                     X509_V_ERR_CERT_REVOKED);
    assert_int_equal(pki_verify_chain(fx.root, fx.issuing, leaf_good, crl), X509_V_OK);
    X509_CRL_free(crl);

    /* An empty CRL. */
    assert_int_equal(ts_crl_make(fx.issuing, fx.issuing_key, NULL, 0, 43, now, now + 60, &crl),
                     TS_OK);
    assert_true(sk_X509_REVOKED_num(X509_CRL_get_REVOKED(crl)) <= 0);
    assert_int_equal(X509_CRL_verify(crl, X509_get0_pubkey(fx.issuing)), 1);
    X509_CRL_free(crl);

    /* Unspecified is said by leaving the reason out (RFC 5280 section 5.3.1). */
    revoked[0].reason = CRL_REASON_UNSPECIFIED;
    assert_int_equal(ts_crl_make(fx.issuing, fx.issuing_key, revoked, 1, 44, now, now + 60, &crl),
                     TS_OK);
    assert_int_equal(X509_REVOKED_get_ext_by_NID(
                         sk_X509_REVOKED_value(X509_CRL_get_REVOKED(crl), 0), NID_crl_reason, -1),
                     -1);
    X509_CRL_free(crl);
}

static void test_crl_refusals(void **state)
{
    uint8_t s1[TS_SERIAL_LEN] = {0x01}, zero[1] = {0}, big[TS_SERIAL_LEN];
    time_t now = time(NULL);
    ts_revoked r[2] = {{s1, TS_SERIAL_LEN, now, 1}, {s1, TS_SERIAL_LEN, now, 4}};
    X509_CRL *crl = (X509_CRL *)1;

    (void)state;
    assert_err(ts_crl_make(fx.issuing, fx.issuing_key, r, 2, 1, now, now + 60, &crl),
               TS_ERR_INVALID);
    assert_msg("listed twice");
    assert_null(crl);
    r[0].reason = 7;
    assert_err(ts_crl_make(fx.issuing, fx.issuing_key, r, 1, 1, now, now + 60, &crl),
               TS_ERR_INVALID);
    assert_msg("not an RFC 5280 CRLReason");
    r[0].reason = CRL_REASON_REMOVE_FROM_CRL;
    assert_err(ts_crl_make(fx.issuing, fx.issuing_key, r, 1, 1, now, now + 60, &crl),
               TS_ERR_INVALID);
    assert_msg("delta CRLs");
    r[0].reason = 1;
    r[0].revoked_at = 0;
    assert_err(ts_crl_make(fx.issuing, fx.issuing_key, r, 1, 1, now, now + 60, &crl),
               TS_ERR_INVALID);
    r[0].revoked_at = now;
    r[0].serial = zero;
    r[0].serial_len = 1;
    assert_err(ts_crl_make(fx.issuing, fx.issuing_key, r, 1, 1, now, now + 60, &crl),
               TS_ERR_INVALID);
    assert_msg("positive");
    memset(big, 0xff, sizeof big);
    r[0].serial = big;
    r[0].serial_len = sizeof big;
    assert_err(ts_crl_make(fx.issuing, fx.issuing_key, r, 1, 1, now, now + 60, &crl),
               TS_ERR_INVALID);
    assert_err(ts_crl_make(fx.issuing, fx.issuing_key, NULL, 0, 1, now, now, &crl), TS_ERR_INVALID);
    assert_msg("nextUpdate");
    assert_err(ts_crl_make(fx.issuing, fx.root_key, NULL, 0, 1, now, now + 60, &crl),
               TS_ERR_INVALID);
    assert_msg("does not match");
    assert_err(ts_crl_make(leaf_good, fx.issuing_key, NULL, 0, 1, now, now + 60, &crl),
               TS_ERR_INVALID);
    assert_msg("cRLSign");
    assert_err(ts_crl_make(fx.issuing, fx.issuing_key, NULL, 1, 1, now, now + 60, &crl),
               TS_ERR_INVALID);
}

/* --- OCSP ------------------------------------------------------------------------------------ */

typedef struct lookup_log {
    int calls;
    size_t last_issuer;
    ts_err fail; /* returned when not TS_OK */
    int bad_revocation;
} lookup_log;

static ts_err lookup(void *arg, size_t issuer_index, const ASN1_INTEGER *serial,
                     ts_cert_status *status, time_t *revoked_at, int *reason)
{
    lookup_log *log = arg;

    log->calls++;
    log->last_issuer = issuer_index;
    if (log->fail != TS_OK) {
        return log->fail;
    }
    if (issuer_index == 1) {
        *status = TS_CERT_GOOD; /* the second tenant knows every serial asked */
        return TS_OK;
    }
    if (ASN1_INTEGER_cmp(serial, X509_get0_serialNumber(leaf_good)) == 0) {
        *status = TS_CERT_GOOD;
    } else if (ASN1_INTEGER_cmp(serial, X509_get0_serialNumber(leaf_revoked)) == 0) {
        *status = TS_CERT_REVOKED;
        *revoked_at = log->bad_revocation ? 0 : 1700000000;
        *reason = CRL_REASON_KEY_COMPROMISE;
    } else if (ASN1_INTEGER_cmp(serial, X509_get0_serialNumber(leaf_hold)) == 0) {
        *status = TS_CERT_REVOKED;
        *revoked_at = 1700000100;
        *reason = -1;
    } else {
        *status = TS_CERT_UNKNOWN;
    }
    return TS_OK;
}

/* A DER request for the certificates (issued by issuer), with a nonce when asked. */
static size_t make_request(X509 *const *certs, X509 *const *issuers, size_t n, const EVP_MD *md,
                           int nonce, OCSP_REQUEST **keep, uint8_t **der)
{
    OCSP_REQUEST *req = OCSP_REQUEST_new();
    unsigned char *p = NULL;
    int len;

    assert_non_null(req);
    for (size_t i = 0; i < n; i++) {
        OCSP_CERTID *id = OCSP_cert_to_id(md, certs[i], issuers[i]);
        assert_non_null(id);
        assert_non_null(OCSP_request_add0_id(req, id));
    }
    if (nonce) {
        assert_true(OCSP_request_add1_nonce(req, NULL, -1));
    }
    len = i2d_OCSP_REQUEST(req, &p);
    assert_true(len > 0);
    *der = p;
    *keep = req;
    return (size_t)len;
}

/* Parses and verifies a successful response; flags go to OCSP_basic_verify(). */
static OCSP_BASICRESP *response_ok(const uint8_t *der, size_t len, X509 *signer,
                                   unsigned long flags)
{
    const unsigned char *p = der;
    OCSP_RESPONSE *resp = d2i_OCSP_RESPONSE(NULL, &p, (long)len);
    X509_STORE *store = X509_STORE_new();
    OCSP_BASICRESP *bs;

    assert_non_null(resp);
    assert_int_equal(OCSP_response_status(resp), OCSP_RESPONSE_STATUS_SUCCESSFUL);
    bs = OCSP_response_get1_basic(resp);
    assert_non_null(bs);
    /* Signed by the issuing CA, whose certificate travels in the response. */
    assert_int_equal(sk_X509_num(OCSP_resp_get0_certs(bs)), 1);
    assert_int_equal(X509_cmp(sk_X509_value(OCSP_resp_get0_certs(bs), 0), signer), 0);
    assert_true(X509_STORE_add_cert(store, fx.root));
    assert_int_equal(OCSP_basic_verify(bs, NULL, store, flags), 1);
    const ASN1_OCTET_STRING *keyid = NULL;
    const X509_NAME *name = NULL;
    assert_true(OCSP_resp_get0_id(bs, &keyid, &name));
    assert_non_null(keyid);
    assert_null(name);
    X509_STORE_free(store);
    OCSP_RESPONSE_free(resp);
    return bs;
}

static int response_status(const uint8_t *der, size_t len)
{
    const unsigned char *p = der;
    OCSP_RESPONSE *resp = d2i_OCSP_RESPONSE(NULL, &p, (long)len);
    int status;

    assert_non_null(resp);
    status = OCSP_response_status(resp);
    assert_null(OCSP_response_get1_basic(resp));
    OCSP_RESPONSE_free(resp);
    return status;
}

static void assert_single(OCSP_BASICRESP *bs, X509 *cert, X509 *issuer, const EVP_MD *md, int want,
                          int want_reason, time_t want_rev, time_t now)
{
    OCSP_CERTID *id = OCSP_cert_to_id(md, cert, issuer);
    int status = -1, reason = -2;
    ASN1_GENERALIZEDTIME *rev = NULL, *thisupd = NULL, *nextupd = NULL;

    assert_int_equal(OCSP_resp_find_status(bs, id, &status, &reason, &rev, &thisupd, &nextupd), 1);
    assert_int_equal(status, want);
    assert_int_equal(pki_time(thisupd), now);
    assert_int_equal(pki_time(nextupd), now + 3600);
    if (want == V_OCSP_CERTSTATUS_REVOKED) {
        assert_int_equal(reason, want_reason);
        assert_int_equal(pki_time(rev), want_rev);
    }
    OCSP_CERTID_free(id);
}

static void test_ocsp_statuses(void **state)
{
    X509 *certs[3] = {leaf_good, leaf_revoked, leaf_hold};
    X509 *issuers[3] = {fx.issuing, fx.issuing, fx.issuing};
    ts_ocsp_issuer iss = {.cert = fx.issuing, .key = fx.issuing_key};
    lookup_log log = {0};
    OCSP_REQUEST *req = NULL;
    uint8_t *der = NULL, *resp = NULL;
    size_t len, resp_len = 0;
    time_t now = time(NULL);

    (void)state;
    len = make_request(certs, issuers, 3, EVP_sha1(), 1, &req, &der);
    assert_int_equal(ts_ocsp_respond(der, len, &iss, 1, lookup, &log, now, &resp, &resp_len),
                     TS_OK);
    assert_int_equal(log.calls, 3);
    OCSP_BASICRESP *bs = response_ok(resp, resp_len, fx.issuing, 0);
    assert_int_equal(OCSP_resp_count(bs), 3);
    assert_single(bs, leaf_good, fx.issuing, EVP_sha1(), V_OCSP_CERTSTATUS_GOOD, 0, 0, now);
    assert_single(bs, leaf_revoked, fx.issuing, EVP_sha1(), V_OCSP_CERTSTATUS_REVOKED,
                  CRL_REASON_KEY_COMPROMISE, 1700000000, now);
    assert_single(bs, leaf_hold, fx.issuing, EVP_sha1(), V_OCSP_CERTSTATUS_REVOKED, -1, 1700000100,
                  now);
    /* The nonce is echoed. */
    assert_int_equal(OCSP_check_nonce(req, bs), 1);
    OCSP_BASICRESP_free(bs);
    OCSP_REQUEST_free(req);
    OPENSSL_free(der);
    OPENSSL_free(resp);

    /* SHA-256 CertIDs, no nonce; an unknown serial. */
    X509 *unknown = issue_device("dev-unknown");
    certs[0] = unknown;
    len = make_request(certs, issuers, 1, EVP_sha256(), 0, &req, &der);
    assert_int_equal(ts_ocsp_respond(der, len, &iss, 1, lookup, &log, now, &resp, &resp_len),
                     TS_OK);
    bs = response_ok(resp, resp_len, fx.issuing, 0);
    assert_single(bs, unknown, fx.issuing, EVP_sha256(), V_OCSP_CERTSTATUS_UNKNOWN, 0, 0, now);
    assert_int_equal(OCSP_check_nonce(req, bs), 2); /* neither has one */
    OCSP_BASICRESP_free(bs);
    OCSP_REQUEST_free(req);
    OPENSSL_free(der);
    OPENSSL_free(resp);
    X509_free(unknown);
}

/* Responses signed with copies of a prepared context: each verifies, and the prepared context
 * survives them. One made on another key is refused before anything is signed. */
static void test_ocsp_sign_ctx(void **state)
{
    X509 *certs[1] = {leaf_revoked};
    X509 *issuers[1] = {fx.issuing};
    ts_ocsp_issuer iss = {.cert = fx.issuing, .key = fx.issuing_key};
    lookup_log log = {0};
    time_t now = time(NULL);

    (void)state;
    assert_err(ts_ocsp_sign_ctx(NULL, &iss.sign), TS_ERR_INVALID);
    assert_null(iss.sign);
    assert_int_equal(ts_ocsp_sign_ctx(fx.issuing_key, &iss.sign), TS_OK);
    assert_non_null(iss.sign);
    for (int round = 0; round < 3; round++) {
        OCSP_REQUEST *req = NULL;
        uint8_t *der = NULL, *resp = NULL;
        size_t resp_len = 0;
        size_t len = make_request(certs, issuers, 1, EVP_sha256(), 1, &req, &der);

        assert_int_equal(ts_ocsp_respond(der, len, &iss, 1, lookup, &log, now, &resp, &resp_len),
                         TS_OK);
        OCSP_BASICRESP *bs = response_ok(resp, resp_len, fx.issuing, 0);
        assert_single(bs, leaf_revoked, fx.issuing, EVP_sha256(), V_OCSP_CERTSTATUS_REVOKED,
                      CRL_REASON_KEY_COMPROMISE, 1700000000, now);
        assert_int_equal(OCSP_check_nonce(req, bs), 1);
        OCSP_BASICRESP_free(bs);
        OCSP_REQUEST_free(req);
        OPENSSL_free(der);
        OPENSSL_free(resp);
    }

    /* The root's context given for the issuing CA. */
    EVP_MD_CTX *other = NULL;
    assert_int_equal(ts_ocsp_sign_ctx(fx.root_key, &other), TS_OK);
    ts_ocsp_issuer wrong = {.cert = fx.issuing, .key = fx.issuing_key, .sign = other};
    OCSP_REQUEST *req = NULL;
    uint8_t *der = NULL, *resp = NULL;
    size_t resp_len = 0;
    size_t len = make_request(certs, issuers, 1, EVP_sha256(), 1, &req, &der);
    int calls = log.calls;
    assert_err(ts_ocsp_respond(der, len, &wrong, 1, lookup, &log, now, &resp, &resp_len),
               TS_ERR_INVALID);
    assert_null(resp);
    assert_int_equal(log.calls, calls);
    OCSP_REQUEST_free(req);
    OPENSSL_free(der);
    EVP_MD_CTX_free(other);
    EVP_MD_CTX_free(iss.sign);
}

static void test_ocsp_issuers(void **state)
{
    EVP_PKEY *key_b = pki_ec_key("P-256");
    X509 *ca_b = pki_ca("Tenant B", key_b, fx.root, fx.root_key, 0, 365);
    ts_ocsp_issuer iss[2] = {{.cert = fx.issuing, .key = fx.issuing_key},
                             {.cert = ca_b, .key = key_b}};
    lookup_log log = {0};
    OCSP_REQUEST *req = NULL;
    uint8_t *der = NULL, *resp = NULL;
    size_t len, resp_len = 0;
    time_t now = time(NULL);

    (void)state;
    /* A request naming a certificate of tenant B first, then one of the default issuing CA:
     * the first matched issuer (B) signs, and the other CertID is answered "unknown". */
    X509 *leaf_b = issue_under("dev-b", ca_b, key_b);
    X509 *certs[2] = {leaf_b, leaf_good};
    X509 *issuers[2] = {ca_b, fx.issuing};
    len = make_request(certs, issuers, 2, EVP_sha1(), 1, &req, &der);
    assert_int_equal(ts_ocsp_respond(der, len, iss, 2, lookup, &log, now, &resp, &resp_len), TS_OK);
    assert_int_equal(log.calls, 1);
    assert_int_equal(log.last_issuer, 1);
    /* OpenSSL's verifier wants every CertID of a CA-signed response to name the signer
     * (ocsp_check_ids), so the issuer check is skipped here; the signature and chain are still
     * verified. */
    OCSP_BASICRESP *bs = response_ok(resp, resp_len, ca_b, OCSP_NOCHECKS);
    OCSP_RESPONSE *whole = d2i_OCSP_RESPONSE(NULL, &(const unsigned char *){resp}, (long)resp_len);
    OCSP_BASICRESP *strict = OCSP_response_get1_basic(whole);
    X509_STORE *store = X509_STORE_new();
    assert_true(X509_STORE_add_cert(store, fx.root));
    assert_true(OCSP_basic_verify(strict, NULL, store, 0) <= 0);
    ERR_clear_error();
    X509_STORE_free(store);
    OCSP_BASICRESP_free(strict);
    OCSP_RESPONSE_free(whole);
    assert_single(bs, leaf_b, ca_b, EVP_sha1(), V_OCSP_CERTSTATUS_GOOD, 0, 0, now);
    assert_single(bs, leaf_good, fx.issuing, EVP_sha1(), V_OCSP_CERTSTATUS_UNKNOWN, 0, 0, now);
    OCSP_BASICRESP_free(bs);
    OCSP_REQUEST_free(req);
    OPENSSL_free(der);
    OPENSSL_free(resp);

    /* No CertID of ours: unauthorized. */
    X509 *root_certs[1] = {fx.issuing};
    X509 *root_issuer[1] = {fx.root};
    len = make_request(root_certs, root_issuer, 1, EVP_sha1(), 1, &req, &der);
    assert_int_equal(ts_ocsp_respond(der, len, iss, 2, lookup, &log, now, &resp, &resp_len), TS_OK);
    assert_int_equal(response_status(resp, resp_len), OCSP_RESPONSE_STATUS_UNAUTHORIZED);
    OCSP_REQUEST_free(req);
    OPENSSL_free(der);
    OPENSSL_free(resp);
    X509_free(leaf_b);
    X509_free(ca_b);
    EVP_PKEY_free(key_b);
}

static void test_ocsp_malformed(void **state)
{
    ts_ocsp_issuer iss = {.cert = fx.issuing, .key = fx.issuing_key};
    lookup_log log = {0};
    uint8_t *resp = NULL, *der = NULL;
    size_t resp_len = 0, len;
    static const uint8_t garbage[] = {0x30, 0x03, 0x02, 0x01};
    OCSP_REQUEST *req = NULL;
    X509 *certs[1] = {leaf_good}, *issuers[1] = {fx.issuing};

    (void)state;
    assert_int_equal(
        ts_ocsp_respond(garbage, sizeof garbage, &iss, 1, lookup, &log, 0, &resp, &resp_len),
        TS_OK);
    assert_int_equal(response_status(resp, resp_len), OCSP_RESPONSE_STATUS_MALFORMEDREQUEST);
    OPENSSL_free(resp);
    assert_int_equal(ts_ocsp_respond(NULL, 0, &iss, 1, lookup, &log, 0, &resp, &resp_len), TS_OK);
    assert_int_equal(response_status(resp, resp_len), OCSP_RESPONSE_STATUS_MALFORMEDREQUEST);
    OPENSSL_free(resp);

    /* A good request with a byte after it, or larger than the cap. */
    len = make_request(certs, issuers, 1, EVP_sha1(), 1, &req, &der);
    uint8_t *longer = calloc(1, TS_OCSP_REQUEST_MAX + 1);
    assert_non_null(longer);
    memcpy(longer, der, len);
    assert_int_equal(ts_ocsp_respond(longer, len + 1, &iss, 1, lookup, &log, 0, &resp, &resp_len),
                     TS_OK);
    assert_int_equal(response_status(resp, resp_len), OCSP_RESPONSE_STATUS_MALFORMEDREQUEST);
    OPENSSL_free(resp);
    assert_int_equal(ts_ocsp_respond(longer, TS_OCSP_REQUEST_MAX + 1, &iss, 1, lookup, &log, 0,
                                     &resp, &resp_len),
                     TS_OK);
    assert_int_equal(response_status(resp, resp_len), OCSP_RESPONSE_STATUS_MALFORMEDREQUEST);
    OPENSSL_free(resp);
    assert_int_equal(log.calls, 0);
    free(longer);

    /* The lookup fails: its error, and no response. */
    log.fail = TS_ERR_STORE;
    resp = (uint8_t *)1;
    assert_err(ts_ocsp_respond(der, len, &iss, 1, lookup, &log, 0, &resp, &resp_len), TS_ERR_STORE);
    assert_msg("OCSP status lookup");
    assert_null(resp);
    log.fail = TS_OK;
    /* The lookup says revoked without a time. */
    OCSP_REQUEST_free(req);
    OPENSSL_free(der);
    certs[0] = leaf_revoked;
    len = make_request(certs, issuers, 1, EVP_sha1(), 1, &req, &der);
    log.bad_revocation = 1;
    assert_err(ts_ocsp_respond(der, len, &iss, 1, lookup, &log, 0, &resp, &resp_len),
               TS_ERR_INVALID);
    log.bad_revocation = 0;

    /* A request with no CertID. */
    OCSP_REQUEST *empty = OCSP_REQUEST_new();
    unsigned char *eder = NULL;
    int elen = i2d_OCSP_REQUEST(empty, &eder);
    assert_true(elen > 0);
    assert_int_equal(
        ts_ocsp_respond(eder, (size_t)elen, &iss, 1, lookup, &log, 0, &resp, &resp_len), TS_OK);
    assert_int_equal(response_status(resp, resp_len), OCSP_RESPONSE_STATUS_MALFORMEDREQUEST);
    OPENSSL_free(resp);
    OPENSSL_free(eder);
    OCSP_REQUEST_free(empty);

    /* Bad arguments. */
    assert_err(ts_ocsp_respond(der, len, &iss, 0, lookup, &log, 0, &resp, &resp_len),
               TS_ERR_INVALID);
    assert_err(ts_ocsp_respond(der, len, &iss, 1, NULL, &log, 0, &resp, &resp_len), TS_ERR_INVALID);
    ts_ocsp_issuer nokey = {.cert = fx.issuing};
    assert_err(ts_ocsp_respond(der, len, &nokey, 1, lookup, &log, 0, &resp, &resp_len),
               TS_ERR_INVALID);
    OCSP_REQUEST_free(req);
    OPENSSL_free(der);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reason_names),   cmocka_unit_test(test_crl),
        cmocka_unit_test(test_crl_refusals),   cmocka_unit_test(test_ocsp_statuses),
        cmocka_unit_test(test_ocsp_issuers),   cmocka_unit_test(test_ocsp_sign_ctx),
        cmocka_unit_test(test_ocsp_malformed),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
