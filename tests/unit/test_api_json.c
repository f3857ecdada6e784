/*
 * The REST API's JSON forms (src/service/svc_api_json.c): RFC 3339 times, lists and cursors, and
 * the JSON form of each kind of row. Request bodies and the route table: test_api_body.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "common/error_internal.h"
#include "service/svc_api_internal.h"
#include "tessera/pki.h"

/* --- Times ------------------------------------------------------------------------------------ */

static void test_time_rfc3339(void **state)
{
    static const struct {
        time_t t;
        const char *want;
    } cases[] = {
        {1, "1970-01-01T00:00:01Z"},
        {951782400, "2000-02-29T00:00:00Z"},
        {1795269600, "2026-11-21T14:00:00Z"},
        {-86400, "1969-12-31T00:00:00Z"},
        {253402300799, "9999-12-31T23:59:59Z"},
    };
    char text[SVC_API_TIME_MAX];

    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_int_equal(svc_api_time(cases[i].t, text), TS_OK);
        assert_string_equal(text, cases[i].want);
    }
    /* Year 10000 has no RFC 3339 form. */
    assert_int_equal(svc_api_time(253402300800, text), TS_ERR_INVALID);
    assert_string_equal(text, "");
    assert_non_null(strstr(ts_error_message(), "RFC 3339"));
}

static void test_time_json_zero_is_null(void **state)
{
    (void)state;
    json_t *v = svc_api_time_json(0);
    assert_true(json_is_null(v));
    json_decref(v);
    v = svc_api_time_json(1795269600);
    assert_string_equal(json_string_value(v), "2026-11-21T14:00:00Z");
    json_decref(v);
    assert_null(svc_api_time_json(253402300800));
}

static void test_list_and_cursor(void **state)
{
    (void)state;
    json_t *list = svc_api_list(json_array(), 0);
    assert_non_null(list);
    assert_true(json_is_array(json_object_get(list, "items")));
    assert_true(json_is_null(json_object_get(list, "next")));
    assert_int_equal(json_object_size(list), 2);
    json_decref(list);

    list = svc_api_list(json_array(), 4711);
    assert_string_equal(json_string_value(json_object_get(list, "next")), "4711");
    json_decref(list);
    /* A failed items builder fails the list. */
    assert_null(svc_api_list(NULL, 0));
}

/* --- Rows ---------------------------------------------------------------------------------------
 */

/* A small self-signed certificate for the PEM and CA forms. */
static X509 *make_cert(void)
{
    EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    X509 *cert = X509_new();
    X509_NAME *name = X509_NAME_new();

    assert_non_null(key);
    assert_non_null(cert);
    assert_int_equal(X509_set_version(cert, 2), 1);
    assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(cert), 0x1234ABCD), 1);
    assert_int_equal(X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                                                (const unsigned char *)"Acme", -1, -1, 0),
                     1);
    assert_int_equal(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                                (const unsigned char *)"Test Root", -1, -1, 0),
                     1);
    assert_int_equal(X509_set_subject_name(cert, name), 1);
    assert_int_equal(X509_set_issuer_name(cert, name), 1);
    assert_non_null(ASN1_TIME_set(X509_getm_notBefore(cert), 1795269600));
    assert_non_null(ASN1_TIME_set(X509_getm_notAfter(cert), 1795269600 + 86400));
    assert_int_equal(X509_set_pubkey(cert, key), 1);
    assert_true(X509_sign(cert, key, EVP_sha256()) > 0);
    X509_NAME_free(name);
    EVP_PKEY_free(key);
    return cert;
}

static void test_cert_json_valid_and_revoked(void **state)
{
    ts_cert_row row;

    (void)state;
    memset(&row, 0, sizeof row);
    strcpy(row.serial, "0A1B");
    strcpy(row.subject, "CN=dev-1,O=Acme");
    strcpy(row.profile, "device");
    strcpy(row.fingerprint, "ab12");
    row.state = TS_CERT_VALID;
    row.not_before = 1795269600;
    row.not_after = 1795269600 + 86400;
    row.created = 1795269600;
    row.revoked_at = 1795269700; /* ignored while valid */

    json_t *doc = svc_api_cert_json(&row);
    assert_non_null(doc);
    assert_string_equal(json_string_value(json_object_get(doc, "serial")), "0A1B");
    assert_string_equal(json_string_value(json_object_get(doc, "status")), "valid");
    assert_true(json_is_null(json_object_get(doc, "device_uid")));
    assert_true(json_is_null(json_object_get(doc, "revoked_at")));
    assert_true(json_is_null(json_object_get(doc, "revocation_reason")));
    assert_string_equal(json_string_value(json_object_get(doc, "not_after")),
                        "2026-11-22T14:00:00Z");
    /* A list row has no DER, so no PEM. */
    assert_null(json_object_get(doc, "pem"));
    json_decref(doc);

    strcpy(row.device_uid, "dev-1");
    row.state = TS_CERT_REVOKED_STATE;
    row.revocation_reason = CRL_REASON_KEY_COMPROMISE;
    X509 *cert = make_cert();
    unsigned char *der = NULL;
    int len = i2d_X509(cert, &der);
    assert_true(len > 0);
    row.der = der;
    row.der_len = (size_t)len;
    doc = svc_api_cert_json(&row);
    assert_non_null(doc);
    assert_string_equal(json_string_value(json_object_get(doc, "status")), "revoked");
    assert_string_equal(json_string_value(json_object_get(doc, "device_uid")), "dev-1");
    assert_string_equal(json_string_value(json_object_get(doc, "revoked_at")),
                        "2026-11-21T14:01:40Z");
    assert_string_equal(json_string_value(json_object_get(doc, "revocation_reason")),
                        "keyCompromise");

    /* The PEM reads back to the very same certificate. */
    const char *pem = json_string_value(json_object_get(doc, "pem"));
    assert_non_null(pem);
    assert_non_null(strstr(pem, "-----BEGIN CERTIFICATE-----\n"));
    BIO *bio = BIO_new_mem_buf(pem, -1);
    X509 *back = PEM_read_bio_X509(bio, NULL, NULL, NULL);
    assert_non_null(back);
    assert_int_equal(X509_cmp(cert, back), 0);
    X509_free(back);
    BIO_free(bio);
    json_decref(doc);
    OPENSSL_free(der);
    X509_free(cert);
}

static void test_ca_json(void **state)
{
    char fingerprint[TS_FINGERPRINT_HEX];

    (void)state;
    X509 *cert = make_cert();
    json_t *doc = svc_api_ca_json(cert, "root");
    assert_non_null(doc);
    assert_string_equal(json_string_value(json_object_get(doc, "kind")), "root");
    assert_string_equal(json_string_value(json_object_get(doc, "subject")), "CN=Test Root,O=Acme");
    assert_string_equal(json_string_value(json_object_get(doc, "serial")), "1234ABCD");
    assert_int_equal(ts_cert_fingerprint(cert, fingerprint), TS_OK);
    assert_string_equal(json_string_value(json_object_get(doc, "fingerprint")), fingerprint);
    assert_string_equal(json_string_value(json_object_get(doc, "not_before")),
                        "2026-11-21T14:00:00Z");
    assert_string_equal(json_string_value(json_object_get(doc, "not_after")),
                        "2026-11-22T14:00:00Z");
    const char *pem = json_string_value(json_object_get(doc, "pem"));
    assert_non_null(pem);
    assert_int_equal(strncmp(pem, "-----BEGIN CERTIFICATE-----", 27), 0);
    assert_int_equal(json_object_size(doc), 7);
    json_decref(doc);
    X509_free(cert);
}

static void test_tenant_user_token_forms(void **state)
{
    ts_tenant_row tenant;
    ts_user_row user;
    ts_token_row token;

    (void)state;
    memset(&tenant, 0, sizeof tenant);
    strcpy(tenant.name, "acme");
    strcpy(tenant.org, "Acme Devices");
    tenant.created = 1795269600;
    json_t *doc = svc_api_tenant_json(&tenant);
    assert_string_equal(json_string_value(json_object_get(doc, "org")), "Acme Devices");
    assert_true(json_is_null(json_object_get(doc, "country")));
    json_decref(doc);

    memset(&user, 0, sizeof user);
    user.id = 7;
    strcpy(user.name, "admin");
    user.role = TS_ROLE_ADMIN;
    user.disabled = 1;
    user.created = 1795269600;
    doc = svc_api_user_json(&user);
    assert_int_equal(json_integer_value(json_object_get(doc, "id")), 7);
    assert_string_equal(json_string_value(json_object_get(doc, "role")), "admin");
    assert_true(json_is_null(json_object_get(doc, "tenant")));
    assert_true(json_is_null(json_object_get(doc, "device_uid")));
    assert_true(json_is_true(json_object_get(doc, "disabled")));
    json_decref(doc);

    strcpy(user.tenant, "acme");
    user.role = TS_ROLE_DEVICE;
    strcpy(user.device_uid, "dev-9");
    user.disabled = 0;
    doc = svc_api_user_json(&user);
    assert_string_equal(json_string_value(json_object_get(doc, "tenant")), "acme");
    assert_string_equal(json_string_value(json_object_get(doc, "role")), "device");
    assert_string_equal(json_string_value(json_object_get(doc, "device_uid")), "dev-9");
    assert_true(json_is_false(json_object_get(doc, "disabled")));
    json_decref(doc);

    memset(&token, 0, sizeof token);
    token.id = 3;
    strcpy(token.user, "ops");
    strcpy(token.name, "ci");
    strcpy(token.prefix, "tsk_0123abcd");
    token.created = 1795269600;
    token.expires = 1795269600 + 90 * 86400;
    doc = svc_api_token_json(&token);
    assert_string_equal(json_string_value(json_object_get(doc, "prefix")), "tsk_0123abcd");
    assert_string_equal(json_string_value(json_object_get(doc, "expires")), "2027-02-19T14:00:00Z");
    assert_true(json_is_null(json_object_get(doc, "revoked_at")));
    assert_null(json_object_get(doc, "token"));
    json_decref(doc);
}

static void test_device_claim_audit_principal_forms(void **state)
{
    ts_device_row dev;
    ts_claim_row claim;
    ts_audit_row audit;
    ts_principal p;

    (void)state;
    memset(&dev, 0, sizeof dev);
    strcpy(dev.uid, "dev-1");
    dev.state = TS_DEVICE_DISABLED;
    dev.created = dev.updated = 1795269600;
    json_t *doc = svc_api_device_json(&dev);
    assert_string_equal(json_string_value(json_object_get(doc, "status")), "disabled");
    json_decref(doc);

    memset(&claim, 0, sizeof claim);
    claim.id = 5;
    strcpy(claim.profile, "device");
    strcpy(claim.prefix, "TSC-ABCD");
    claim.uses_max = 3;
    claim.uses_left = 2;
    claim.created = 1795269600;
    claim.expires = 1795269600 + 3600;
    claim.revoked_at = 1795269660;
    doc = svc_api_claim_json(&claim);
    assert_int_equal(json_integer_value(json_object_get(doc, "uses_left")), 2);
    assert_string_equal(json_string_value(json_object_get(doc, "revoked_at")),
                        "2026-11-21T14:01:00Z");
    assert_null(json_object_get(doc, "code"));
    json_decref(doc);

    memset(&audit, 0, sizeof audit);
    audit.id = 12;
    audit.time = 1795269600;
    strcpy(audit.actor, "user:admin@*");
    strcpy(audit.action, "cert.issue");
    strcpy(audit.object, "0A1B");
    strcpy(audit.hash, "00ff");
    char details[] = "{\"tenant\": \"acme\"}";
    audit.details = details;
    doc = svc_api_audit_json(&audit);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(doc, "details"), "tenant")), "acme");
    json_decref(doc);
    /* Details that are not JSON are shown as their text, never dropped. */
    char odd[] = "not json {";
    audit.details = odd;
    doc = svc_api_audit_json(&audit);
    assert_string_equal(json_string_value(json_object_get(doc, "details")), "not json {");
    json_decref(doc);

    memset(&p, 0, sizeof p);
    strcpy(p.user, "sensor");
    p.role = TS_ROLE_DEVICE;
    strcpy(p.tenant, "acme");
    strcpy(p.device_uid, "dev-1");
    p.token_id = 9;
    doc = svc_api_principal_json(&p);
    assert_string_equal(json_string_value(json_object_get(doc, "role")), "device");
    assert_string_equal(json_string_value(json_object_get(doc, "device_uid")), "dev-1");
    assert_int_equal(json_integer_value(json_object_get(doc, "token_id")), 9);
    json_decref(doc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_time_rfc3339),
        cmocka_unit_test(test_time_json_zero_is_null),
        cmocka_unit_test(test_list_and_cursor),
        cmocka_unit_test(test_cert_json_valid_and_revoked),
        cmocka_unit_test(test_ca_json),
        cmocka_unit_test(test_tenant_user_token_forms),
        cmocka_unit_test(test_device_claim_audit_principal_forms),
    };
    return cmocka_run_group_tests_name("api_json", tests, NULL, NULL);
}
