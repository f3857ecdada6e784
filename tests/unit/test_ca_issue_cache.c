/*
 * The issuing CA an instance handle keeps between issuances (src/server/ca_material.c): it must
 * always be the tenant's active issuing CA as the store names it, whichever tenant asks, and
 * whoever changed the store (here a second handle on the same instance, as another process).
 */
#define _XOPEN_SOURCE 700
#include "ca_test_util.h"

/* A certificate for CN=uid from tenant (NULL: default), singly or in a group of one. */
static X509 *issue(ts_ca *ca, const char *tenant, const char *uid, int group)
{
    char subject[128];
    uint8_t *der = NULL;
    X509 *cert = NULL;
    ts_err result = TS_ERR_STATE;

    snprintf(subject, sizeof subject, "/CN=%s", uid);
    size_t len = ca_csr("P-256", subject, NULL, &der, NULL);
    const uint8_t *const csrs[] = {der};
    if (group) {
        assert_err(ts_ca_issue_csrs(ca, tenant, "device", csrs, &len, 1, &cert, &result), TS_OK);
        assert_err(result, TS_OK);
    } else {
        assert_err(ts_ca_issue_csr(ca, tenant, "device", der, len, &cert), TS_OK);
    }
    OPENSSL_free(der);
    assert_non_null(cert);
    return cert;
}

/* Whether cert was issued by tenant's active issuing CA (names and signature). */
static int issued_by(ts_ca *ca, const char *tenant, X509 *cert)
{
    X509 *issuing = NULL;
    int yes;

    assert_err(ts_ca_cert(ca, tenant, TS_CA_ISSUING, &issuing), TS_OK);
    yes = X509_NAME_cmp(X509_get_issuer_name(cert), X509_get_subject_name(issuing)) == 0 &&
          X509_verify(cert, X509_get0_pubkey(issuing)) == 1;
    X509_free(issuing);
    return yes;
}

static void cache_follows_tenants(ca_fx *fx)
{
    ts_ca *ca = fx->ca;
    X509 *cert;

    if (ts_ca_tenant(ca, "cache", &(ts_tenant_row){0}) == TS_ERR_NOT_FOUND) {
        assert_err(ts_ca_tenant_create(ca, "cache", "Cache Corp", NULL), TS_OK);
    }
    /* Alternating tenants, singly and in groups: each time the asking tenant's own CA. */
    for (int round = 0; round < 2; round++) {
        cert = issue(ca, NULL, "cache-dflt", round);
        assert_true(issued_by(ca, NULL, cert));
        assert_false(issued_by(ca, "cache", cert));
        X509_free(cert);
        cert = issue(ca, "cache", "cache-acme", round);
        assert_true(issued_by(ca, "cache", cert));
        assert_false(issued_by(ca, NULL, cert));
        X509_free(cert);
    }
}

/* Another handle (as another process would) retires the tenant's active issuing CA: this handle,
 * which has issued and so cached it, must not go on issuing with it. */
static void cache_sees_other_handle(ca_fx *fx)
{
    ts_ca *ca = fx->ca, *other = NULL;
    ts_tenant_row dflt;
    ts_ca_row active;
    uint8_t *der = NULL;
    X509 *cert = NULL;

    assert_err(ts_ca_tenant(ca, NULL, &dflt), TS_OK);
    cert = issue(ca, NULL, "before-retire", 0);
    X509_free(cert);
    cert = NULL;

    assert_err(ts_ca_open(fx->dir, CA_TEST_ACTOR, &other), TS_OK);
    ts_store *st = ts_ca_store(other);
    assert_err(ts_store_ca_active(st, dflt.id, TS_CA_ISSUING, &active), TS_OK);
    assert_err(ts_store_begin(st), TS_OK);
    assert_err(ts_store_ca_set_active(st, active.id, 0), TS_OK);
    assert_err(ts_store_commit(st), TS_OK);

    size_t len = ca_csr("P-256", "/CN=after-retire", NULL, &der, NULL);
    const uint8_t *const csrs[] = {der};
    ts_err result = TS_OK;
    size_t before = ca_cert_count(ca);
    assert_err(ts_ca_issue_csr(ca, NULL, "device", der, len, &cert), TS_ERR_CORRUPT);
    assert_null(cert);
    assert_err(ts_ca_issue_csrs(ca, NULL, "device", csrs, &len, 1, &cert, &result), TS_ERR_CORRUPT);
    assert_null(cert);
    assert_int_equal(ca_cert_count(ca), before);

    /* Active again: issuing resumes with it. */
    assert_err(ts_store_begin(st), TS_OK);
    assert_err(ts_store_ca_set_active(st, active.id, 1), TS_OK);
    assert_err(ts_store_commit(st), TS_OK);
    assert_err(ts_ca_issue_csr(ca, NULL, "device", der, len, &cert), TS_OK);
    assert_true(issued_by(ca, NULL, cert));
    X509_free(cert);

    OPENSSL_free(der);
    ts_ca_row_clear(&active);
    ts_ca_free(other);
}

int main(void)
{
    static const ca_case cases[] = {
        {"cache_follows_tenants", cache_follows_tenants},
        {"cache_sees_other_handle", cache_sees_other_handle},
    };
    return ca_run_cases("ca_issue_cache", cases, sizeof cases / sizeof cases[0]);
}
