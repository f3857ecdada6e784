/*
 * The certificate lifecycle of a CA instance (include/tessera/ca.h): revoke, renew, rekey, serials
 * as typed, CRLs and OCSP answers, on SQLite and PostgreSQL. A refused call changes nothing.
 */
#define _XOPEN_SOURCE 700
#include <ctype.h>

#include <openssl/ocsp.h>

#include "ca_test_util.h"

/* --- revoke, renew, rekey --------------------------------------------------------------------- */

static void revoke_twice(ca_fx *fx)
{
    char serial[TS_SERIAL_HEX], typed[3 * TS_SERIAL_HEX + 8], action[64], object[64];
    X509 *cert = ca_issue_device(fx->ca, "dev-revoke", NULL);
    ts_cert_row row;
    ca_snap before;
    size_t n = 0;

    /* As a user might type it: "serial=", lower case, colons. */
    ca_serial(cert, serial);
    n = (size_t)snprintf(typed, sizeof typed, "serial=");
    for (size_t i = 0; serial[i] != '\0'; i++) {
        typed[n++] = (char)tolower((unsigned char)serial[i]);
        if (i % 2 == 1 && serial[i + 1] != '\0') {
            typed[n++] = ':';
        }
    }
    typed[n] = '\0';
    assert_err(ts_ca_cert_revoke(fx->ca, NULL, typed, CRL_REASON_KEY_COMPROMISE), TS_OK);
    ca_last_audit(fx->ca, 0, action, sizeof action, object, sizeof object);
    assert_string_equal(action, "cert.revoke");
    assert_string_equal(object, serial);
    ca_row(fx->ca, cert, &row);
    assert_int_equal(row.state, TS_CERT_REVOKED_STATE);
    assert_int_equal(row.revocation_reason, CRL_REASON_KEY_COMPROMISE);
    ts_cert_row_clear(&row);

    ca_snap_take(fx->ca, fx->dir, &before);
    assert_err(ts_ca_cert_revoke(fx->ca, NULL, serial, CRL_REASON_SUPERSEDED), TS_ERR_STATE);
    assert_msg("already revoked");
    assert_err(ts_ca_cert_revoke(fx->ca, NULL, "0123456789ABCDEF", CRL_REASON_UNSPECIFIED),
               TS_ERR_NOT_FOUND);
    assert_err(ts_ca_cert_revoke(fx->ca, NULL, "not-a-serial", CRL_REASON_UNSPECIFIED),
               TS_ERR_INVALID);
    assert_err(ts_ca_cert_revoke(fx->ca, "nobody", serial, CRL_REASON_UNSPECIFIED),
               TS_ERR_NOT_FOUND);
    ca_snap_same(fx->ca, fx->dir, &before);
    ca_row(fx->ca, cert, &row);
    assert_int_equal(row.revocation_reason, CRL_REASON_KEY_COMPROMISE);
    ts_cert_row_clear(&row);
    X509_free(cert);
}

static void renew(ca_fx *fx)
{
    char old_serial[TS_SERIAL_HEX], new_serial[TS_SERIAL_HEX], action[64], object[64];
    X509 *old = ca_issue_device(fx->ca, "dev-renew", NULL);
    X509 *renewed = NULL;
    ts_cert_row row;
    ca_snap before;

    ca_serial(old, old_serial);
    ca_snap_take(fx->ca, fx->dir, &before);
    assert_err(ts_ca_cert_renew(fx->ca, NULL, old_serial, &renewed), TS_OK);
    ca_serial(renewed, new_serial);
    assert_string_not_equal(old_serial, new_serial);
    assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(old), X509_get0_pubkey(renewed)), 1);
    assert_int_equal(X509_NAME_cmp(X509_get_subject_name(old), X509_get_subject_name(renewed)), 0);
    assert_int_equal(ca_verify(fx->ca, NULL, renewed, NULL), X509_V_OK);
    assert_int_equal(ca_cert_count(fx->ca), before.certs + 1);
    assert_int_equal(ca_audit_count(fx->ca), before.audit + 1);
    ca_last_audit(fx->ca, 0, action, sizeof action, object, sizeof object);
    assert_string_equal(action, "cert.renew");
    assert_string_equal(object, new_serial);

    /* The old certificate stays valid; the new one keeps the device. */
    ca_row(fx->ca, old, &row);
    assert_int_equal(row.state, TS_CERT_VALID);
    ts_cert_row_clear(&row);
    ca_row(fx->ca, renewed, &row);
    assert_string_equal(row.device_uid, "dev-renew");
    assert_string_equal(row.profile, "device");
    ts_cert_row_clear(&row);
    X509_free(renewed);

    /* A revoked certificate is not renewed. */
    assert_err(ts_ca_cert_revoke(fx->ca, NULL, old_serial, CRL_REASON_CESSATION_OF_OPERATION),
               TS_OK);
    ca_snap_take(fx->ca, fx->dir, &before);
    renewed = (X509 *)fx;
    assert_err(ts_ca_cert_renew(fx->ca, NULL, old_serial, &renewed), TS_ERR_STATE);
    assert_null(renewed);
    assert_err(ts_ca_cert_renew(fx->ca, NULL, "ABCDEF", &renewed), TS_ERR_NOT_FOUND);
    ca_snap_same(fx->ca, fx->dir, &before);
    X509_free(old);
}

static void rekey(ca_fx *fx)
{
    char old_serial[TS_SERIAL_HEX], new_serial[TS_SERIAL_HEX], action[64], object[64];
    EVP_PKEY *old_key = NULL, *new_key = NULL;
    X509 *old = ca_issue_device(fx->ca, "dev-rekey", &old_key);
    X509 *fresh = NULL;
    uint8_t *der = NULL;
    ts_cert_row row;
    ca_snap before;
    size_t len;

    ca_serial(old, old_serial);
    ca_snap_take(fx->ca, fx->dir, &before);

    /* Refused: the same key (that is a renewal), a CSR the profile refuses. */
    X509_REQ *same = pki_csr(old_key, "/CN=dev-rekey", NULL);
    len = pki_csr_der(same, &der);
    X509_REQ_free(same);
    assert_err(ts_ca_cert_rekey(fx->ca, NULL, old_serial, der, len, &fresh), TS_ERR_POLICY);
    assert_msg("same key");
    OPENSSL_free(der);
    len = ca_csr("P-384", "/CN=dev-rekey", NULL, &der, NULL);
    assert_err(ts_ca_cert_rekey(fx->ca, NULL, old_serial, der, len, &fresh), TS_ERR_POLICY);
    OPENSSL_free(der);
    assert_null(fresh);
    ca_snap_same(fx->ca, fx->dir, &before);
    ca_row(fx->ca, old, &row);
    assert_int_equal(row.state, TS_CERT_VALID);
    ts_cert_row_clear(&row);

    /* The device keeps its UID whatever the CSR's CN says. */
    len = ca_csr("P-256", "/CN=someone-else", NULL, &der, &new_key);
    assert_err(ts_ca_cert_rekey(fx->ca, NULL, old_serial, der, len, &fresh), TS_OK);
    OPENSSL_free(der);
    ca_serial(fresh, new_serial);
    assert_string_not_equal(new_serial, old_serial);
    assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(fresh), new_key), 1);
    assert_int_equal(ca_verify(fx->ca, NULL, fresh, NULL), X509_V_OK);
    ca_row(fx->ca, fresh, &row);
    assert_string_equal(row.device_uid, "dev-rekey");
    assert_int_equal(row.state, TS_CERT_VALID);
    ts_cert_row_clear(&row);
    ca_row(fx->ca, old, &row);
    assert_int_equal(row.state, TS_CERT_REVOKED_STATE);
    assert_int_equal(row.revocation_reason, CRL_REASON_SUPERSEDED);
    ts_cert_row_clear(&row);

    /* One transaction: the new certificate and both audit entries, in that order. */
    assert_int_equal(ca_cert_count(fx->ca), before.certs + 1);
    assert_int_equal(ca_audit_count(fx->ca), before.audit + 2);
    ca_last_audit(fx->ca, 1, action, sizeof action, object, sizeof object);
    assert_string_equal(action, "cert.revoke");
    assert_string_equal(object, old_serial);
    ca_last_audit(fx->ca, 0, action, sizeof action, object, sizeof object);
    assert_string_equal(action, "cert.rekey");
    assert_string_equal(object, new_serial);

    /* The superseded certificate cannot be rekeyed again. */
    len = ca_csr("P-256", "/CN=dev-rekey", NULL, &der, NULL);
    X509_free(fresh);
    ca_snap_take(fx->ca, fx->dir, &before);
    assert_err(ts_ca_cert_rekey(fx->ca, NULL, old_serial, der, len, &fresh), TS_ERR_STATE);
    ca_snap_same(fx->ca, fx->dir, &before);
    OPENSSL_free(der);
    X509_free(old);
    EVP_PKEY_free(old_key);
    EVP_PKEY_free(new_key);
}

static void serial_normalise(ca_fx *fx)
{
    static const struct {
        const char *in;
        ts_err want_err;
        const char *want;
    } table[] = {
        {"0a1b2c", TS_OK, "0A1B2C"},
        {"0A:1B:2C", TS_OK, "0A1B2C"},
        {"serial=0a1b2c", TS_OK, "0A1B2C"},
        {"SERIAL=0A:1b:2C", TS_OK, "0A1B2C"},
        {"00000A", TS_OK, "00000A"},
        {"7fffffffffffffffffffffffffffffffffffffff", TS_OK,
         "7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF"},
        {"", TS_ERR_INVALID, NULL},
        {"serial=", TS_ERR_INVALID, NULL},
        {":::", TS_ERR_INVALID, NULL},
        {"0x1234", TS_ERR_INVALID, NULL},
        {"12 34", TS_ERR_INVALID, NULL},
        {"12g4", TS_ERR_INVALID, NULL},
        {"-1234", TS_ERR_INVALID, NULL},
        {"serial=serial=12", TS_ERR_INVALID, NULL},
        {"7fffffffffffffffffffffffffffffffffffffffff", TS_ERR_INVALID, NULL},
    };
    char out[TS_SERIAL_HEX];

    (void)fx;
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        ts_err got = ts_ca_serial_normalise(table[i].in, out);
        if (got != table[i].want_err) {
            fail_msg("'%s': got %s (%s), want %s", table[i].in, ts_err_name(got),
                     ts_error_message(), ts_err_name(table[i].want_err));
        }
        if (table[i].want != NULL) {
            assert_string_equal(out, table[i].want);
        }
    }
    assert_err(ts_ca_serial_normalise(NULL, out), TS_ERR_INVALID);
}

/* --- CRL -------------------------------------------------------------------------------------- */

static long crl_number(X509_CRL *crl)
{
    ASN1_INTEGER *n = X509_CRL_get_ext_d2i(crl, NID_crl_number, NULL, NULL);
    assert_non_null(n);
    long v = ASN1_INTEGER_get(n);
    ASN1_INTEGER_free(n);
    return v;
}

static void crl(ca_fx *fx)
{
    X509 *revoked = ca_issue_device(fx->ca, "dev-crl-revoked", NULL);
    X509 *good = ca_issue_device(fx->ca, "dev-crl-good", NULL);
    X509 *issuing = NULL;
    X509_CRL *first = NULL, *second = NULL;
    X509_REVOKED *entry = NULL;
    char serial[TS_SERIAL_HEX];
    ca_snap before;
    int64_t audit;

    assert_err(ts_ca_cert(fx->ca, NULL, TS_CA_ISSUING, &issuing), TS_OK);
    ca_serial(revoked, serial);
    assert_err(ts_ca_cert_revoke(fx->ca, NULL, serial, CRL_REASON_KEY_COMPROMISE), TS_OK);
    audit = ca_audit_count(fx->ca);
    assert_err(ts_ca_crl(fx->ca, NULL, 24, &first), TS_OK);
    assert_err(ts_ca_crl(fx->ca, NULL, 24, &second), TS_OK);
    assert_int_equal(ca_audit_count(fx->ca), audit + 2);
    assert_true(crl_number(second) > crl_number(first));

    /* Signed by the issuing CA, named after it, v2, the revoked serial listed with its reason. */
    assert_int_equal(X509_CRL_verify(second, X509_get0_pubkey(issuing)), 1);
    assert_int_equal(X509_NAME_cmp(X509_CRL_get_issuer(second), X509_get_subject_name(issuing)), 0);
    assert_int_equal(X509_CRL_get_version(second), X509_CRL_VERSION_2);
    assert_true(X509_CRL_get0_by_serial(second, &entry, X509_get0_serialNumber(revoked)) == 1);
    ASN1_ENUMERATED *reason = X509_REVOKED_get_ext_d2i(entry, NID_crl_reason, NULL, NULL);
    assert_non_null(reason);
    assert_int_equal(ASN1_ENUMERATED_get(reason), CRL_REASON_KEY_COMPROMISE);
    ASN1_ENUMERATED_free(reason);
    assert_true(X509_CRL_get0_by_serial(second, &entry, X509_get0_serialNumber(good)) == 0);
    assert_true(pki_time(X509_CRL_get0_nextUpdate(second)) >
                pki_time(X509_CRL_get0_lastUpdate(second)) + 23 * 3600);

    /* Path validation with the CRL: the revoked one fails, the good one passes. */
    assert_int_equal(ca_verify(fx->ca, NULL, revoked, second), X509_V_ERR_CERT_REVOKED);
    assert_int_equal(ca_verify(fx->ca, NULL, good, second), X509_V_OK);

    ca_snap_take(fx->ca, fx->dir, &before);
    X509_CRL *none = (X509_CRL *)fx;
    assert_err(ts_ca_crl(fx->ca, NULL, 0, &none), TS_ERR_INVALID);
    assert_null(none);
    assert_err(ts_ca_crl(fx->ca, "nobody", 24, &none), TS_ERR_NOT_FOUND);
    ca_snap_same(fx->ca, fx->dir, &before);
    X509_CRL_free(first);
    X509_CRL_free(second);
    X509_free(issuing);
    X509_free(revoked);
    X509_free(good);
}

/* --- OCSP ------------------------------------------------------------------------------------- */

/* Asks the instance about id (taken); returns the V_OCSP_CERTSTATUS_ and the reason. */
static int ocsp_status(ts_ca *ca, OCSP_CERTID *id, int *reason)
{
    OCSP_REQUEST *req = OCSP_REQUEST_new();
    OCSP_CERTID *lookup = OCSP_CERTID_dup(id);
    uint8_t *der = NULL, *resp_der = NULL;
    size_t resp_len = 0;
    X509 *root = NULL, *issuing = NULL;
    int status = -1, len;

    assert_non_null(req);
    assert_non_null(OCSP_request_add0_id(req, id));
    assert_true(OCSP_request_add1_nonce(req, NULL, 16));
    len = i2d_OCSP_REQUEST(req, &der);
    assert_true(len > 0);
    assert_err(ts_ca_ocsp(ca, der, (size_t)len, &resp_der, &resp_len), TS_OK);

    const unsigned char *p = resp_der;
    OCSP_RESPONSE *resp = d2i_OCSP_RESPONSE(NULL, &p, (long)resp_len);
    assert_non_null(resp);
    assert_int_equal(OCSP_response_status(resp), OCSP_RESPONSE_STATUS_SUCCESSFUL);
    OCSP_BASICRESP *basic = OCSP_response_get1_basic(resp);
    assert_non_null(basic);
    assert_int_equal(OCSP_check_nonce(req, basic), 1);

    /* Signed by the issuing CA, which chains to the root. */
    assert_err(ts_ca_cert(ca, NULL, TS_CA_ROOT, &root), TS_OK);
    assert_err(ts_ca_cert(ca, NULL, TS_CA_ISSUING, &issuing), TS_OK);
    X509_STORE *store = X509_STORE_new();
    STACK_OF(X509) *chain = sk_X509_new_null();
    assert_true(X509_STORE_add_cert(store, root));
    assert_true(sk_X509_push(chain, issuing) > 0);
    assert_int_equal(OCSP_basic_verify(basic, chain, store, 0), 1);

    ASN1_GENERALIZEDTIME *rev = NULL, *this_upd = NULL, *next_upd = NULL;
    *reason = -1;
    assert_int_equal(
        OCSP_resp_find_status(basic, lookup, &status, reason, &rev, &this_upd, &next_upd), 1);
    sk_X509_free(chain);
    X509_STORE_free(store);
    X509_free(root);
    X509_free(issuing);
    OCSP_BASICRESP_free(basic);
    OCSP_RESPONSE_free(resp);
    OCSP_CERTID_free(lookup);
    OCSP_REQUEST_free(req);
    OPENSSL_free(der);
    OPENSSL_free(resp_der);
    return status;
}

static void ocsp(ca_fx *fx)
{
    X509 *good = ca_issue_device(fx->ca, "dev-ocsp-good", NULL);
    X509 *revoked = ca_issue_device(fx->ca, "dev-ocsp-revoked", NULL);
    X509 *issuing = NULL;
    char serial[TS_SERIAL_HEX];
    uint8_t random[TS_SERIAL_LEN];
    int reason = -1;

    assert_err(ts_ca_cert(fx->ca, NULL, TS_CA_ISSUING, &issuing), TS_OK);
    ca_serial(revoked, serial);
    assert_err(ts_ca_cert_revoke(fx->ca, NULL, serial, CRL_REASON_AFFILIATION_CHANGED), TS_OK);

    assert_int_equal(ocsp_status(fx->ca, OCSP_cert_to_id(NULL, good, issuing), &reason),
                     V_OCSP_CERTSTATUS_GOOD);
    assert_int_equal(ocsp_status(fx->ca, OCSP_cert_to_id(NULL, revoked, issuing), &reason),
                     V_OCSP_CERTSTATUS_REVOKED);
    assert_int_equal(reason, CRL_REASON_AFFILIATION_CHANGED);

    /* A serial the instance never issued. */
    assert_err(ts_serial_random(random), TS_OK);
    ASN1_INTEGER *unknown = ASN1_INTEGER_new();
    BIGNUM *bn = BN_bin2bn(random, sizeof random, NULL);
    assert_non_null(BN_to_ASN1_INTEGER(bn, unknown));
    OCSP_CERTID *id = OCSP_cert_id_new(EVP_sha1(), X509_get_subject_name(issuing),
                                       X509_get0_pubkey_bitstr(issuing), unknown);
    assert_non_null(id);
    assert_int_equal(ocsp_status(fx->ca, id, &reason), V_OCSP_CERTSTATUS_UNKNOWN);

    /* Garbage is no request: an error, not an answer. */
    uint8_t *resp = NULL;
    size_t resp_len = 0;
    static const uint8_t junk[] = {0x30, 0x03, 0x02, 0x01};
    ts_err rv = ts_ca_ocsp(fx->ca, junk, sizeof junk, &resp, &resp_len);
    if (rv == TS_OK) {
        /* RFC 6960 section 2.3: a malformed request may be answered with malformedRequest. */
        const unsigned char *p = resp;
        OCSP_RESPONSE *r = d2i_OCSP_RESPONSE(NULL, &p, (long)resp_len);
        assert_non_null(r);
        assert_int_equal(OCSP_response_status(r), OCSP_RESPONSE_STATUS_MALFORMEDREQUEST);
        OCSP_RESPONSE_free(r);
    }
    OPENSSL_free(resp);
    BN_free(bn);
    ASN1_INTEGER_free(unknown);
    X509_free(issuing);
    X509_free(good);
    X509_free(revoked);
}

int main(void)
{
    static const ca_case cases[] = {
        {"revoke_twice", revoke_twice},         {"renew", renew}, {"rekey", rekey},
        {"serial_normalise", serial_normalise}, {"crl", crl},     {"ocsp", ocsp},
    };
    return ca_run_cases("ca_lifecycle", cases, sizeof cases / sizeof cases[0]);
}
