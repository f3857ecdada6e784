/*
 * Group issuance, ts_ca_issue_csrs(), on SQLite and on PostgreSQL: refused CSRs get their own
 * errors and do not stop the group; the issued certificates are stored and audited as
 * ts_ca_issue_csr() stores them, with distinct serials, and the audit chain verifies; a failure of
 * the store in the middle of the group leaves nothing of it behind.
 */
#include "pki_test_util.h"
#include "store_test_util.h"

#include <string.h>
#include <jansson.h>

#include "tessera/ca.h"

#define GROUP_PIN "group-pin-1234"

enum { GROUP_MAX = 8 };

/* An instance on the fixture's database, its issuing key in a soft: store. */
typedef struct group_fx {
    char tmp[256];
    ts_ca *ca;
    int64_t tenant_id;
    uint8_t *der[GROUP_MAX];
    size_t len[GROUP_MAX];
    size_t count;
} group_fx;

static void group_open(group_fx *g, store_fx *fx)
{
    char dir[512], uri[1024];
    ts_keystore *ks = NULL;
    ts_ca_init_params p = {.org = "Group Test", .operator_name = "test"};
    ts_ca_init_result res;
    ts_tenant_row tenant;

    memset(g, 0, sizeof *g);
    assert_int_equal(ts_test_tmpdir(g->tmp, sizeof g->tmp), 0);
    snprintf(dir, sizeof dir, "%s/instance", g->tmp);
    snprintf(uri, sizeof uri, "soft:%s/keystore?pin-value=" GROUP_PIN, g->tmp);
    OK(ts_keystore_create(uri, NULL, &ks));
    ts_keystore_free(ks);
    p.dir = dir;
    p.keystore_uri = uri;
    p.db_url = fx->url;
    OK(ts_ca_init(&p, &res));
    OK(ts_ca_open(dir, "tester", &g->ca));
    OK(ts_ca_tenant(g->ca, NULL, &tenant));
    g->tenant_id = tenant.id;
}

static void group_close(group_fx *g)
{
    for (size_t i = 0; i < g->count; i++) {
        OPENSSL_free(g->der[i]);
    }
    ts_ca_free(g->ca);
    ts_test_rmtree(g->tmp);
}

/* Appends a CSR for a new key on curve with subject and requested extensions. */
static void group_add(group_fx *g, const char *curve, const char *subject, const char *const *exts)
{
    EVP_PKEY *key = pki_ec_key(curve);
    X509_REQ *req = pki_csr(key, subject, exts);

    assert_true(g->count < GROUP_MAX);
    g->len[g->count] = pki_csr_der(req, &g->der[g->count]);
    g->count++;
    X509_REQ_free(req);
    EVP_PKEY_free(key);
}

static void group_add_bytes(group_fx *g, const char *bytes)
{
    assert_true(g->count < GROUP_MAX);
    g->len[g->count] = strlen(bytes);
    g->der[g->count] = OPENSSL_memdup(bytes, g->len[g->count]);
    assert_non_null(g->der[g->count]);
    g->count++;
}

static ts_err group_issue(group_fx *g, const char *profile, X509 **certs, ts_err *results)
{
    return ts_ca_issue_csrs(g->ca, NULL, profile, (const uint8_t *const *)g->der, g->len, g->count,
                            certs, results);
}

/* Certificates of the tenant, but for the service's TLS certificate that the instance's init
 * issued. */
static size_t cert_count(group_fx *g)
{
    ts_cert_filter filter = {.tenant_id = g->tenant_id};
    ts_cert_row *rows = NULL;
    size_t count = 0;

    OK(ts_store_cert_list(ts_ca_store(g->ca), &filter, &rows, &count));
    size_t issued = 0;
    /* The group's certificates: not the service's own TLS server and client ones from init. */
    for (size_t i = 0; i < count; i++) {
        issued += strcmp(rows[i].profile, "device") == 0;
    }
    ts_cert_rows_free(rows, count);
    return issued;
}

/* Audit entries after after_id; their chain verifies. */
static size_t audit_count(group_fx *g, int64_t after_id, ts_audit_row **rows_out)
{
    ts_audit_row *rows = NULL;
    size_t count = 0;
    int64_t entries = 0, bad = 0;

    OK(ts_store_audit_verify(ts_ca_store(g->ca), &entries, &bad));
    OK(ts_store_audit_list(ts_ca_store(g->ca), after_id, 0, &rows, &count));
    if (rows_out != NULL) {
        *rows_out = rows;
    } else {
        ts_audit_rows_free(rows, count);
    }
    return count;
}

static int64_t audit_last(group_fx *g)
{
    ts_audit_row *rows = NULL;
    size_t count = audit_count(g, 0, &rows);
    int64_t last = count > 0 ? rows[count - 1].id : 0;

    ts_audit_rows_free(rows, count);
    return last;
}

/* The keys of an audit entry's details, sorted, as one string. */
static void detail_keys(const char *details, char *buf, size_t size)
{
    json_t *j = json_loads(details, 0, NULL);
    const char *key;
    json_t *value;

    assert_non_null(j);
    buf[0] = '\0';
    json_object_foreach(j, key, value)
    {
        (void)value;
        strncat(buf, key, size - strlen(buf) - 1);
        strncat(buf, ",", size - strlen(buf) - 1);
    }
    json_decref(j);
}

static void group_mixed(store_fx *fx)
{
    static const char *const ca_true[] = {"basicConstraints=critical,CA:TRUE", NULL};
    static const ts_err want[] = {TS_OK, TS_ERR_INVALID, TS_OK,       TS_ERR_POLICY,
                                  TS_OK, TS_ERR_POLICY,  TS_ERR_AUTH, TS_OK};
    X509 *certs[GROUP_MAX];
    ts_err results[GROUP_MAX];
    X509 *issuing = NULL, *single = NULL;
    ts_audit_row *audit = NULL;
    group_fx g;
    char serials[GROUP_MAX][TS_SERIAL_HEX];
    size_t issued = 0;

    group_open(&g, fx);
    int64_t before = audit_last(&g);
    group_add(&g, "P-256", "CN=dev-0001", NULL);
    group_add_bytes(&g, "this is not a certificate request");
    group_add(&g, "P-256", "CN=dev-0002", NULL);
    group_add(&g, "P-384", "CN=dev-p384", NULL);
    group_add(&g, "P-256", "CN=dev-0003", NULL);
    group_add(&g, "P-256", "CN=dev-ca", ca_true);
    group_add(&g, "P-256", "CN=dev-badsig", NULL);
    g.der[6][g.len[6] - 1] ^= 0x01; /* the last byte of the signature */
    group_add(&g, "P-256", "CN=dev-0004", NULL);

    /* Refusals are each CSR's own; the first one is the message. */
    OK(group_issue(&g, "device", certs, results));
    assert_non_null(strstr(ts_error_message(), "CSR 2 of 8"));
    OK(ts_ca_cert(g.ca, NULL, TS_CA_ISSUING, &issuing));
    for (size_t i = 0; i < g.count; i++) {
        if (results[i] != want[i]) {
            fail_msg("CSR %zu: got %s, want %s", i, ts_err_name(results[i]), ts_err_name(want[i]));
        }
        if (want[i] != TS_OK) {
            assert_null(certs[i]);
            continue;
        }
        /* Issued under the issuing CA, stored as issued, a distinct serial. */
        ts_cert_row row;
        unsigned char *der = NULL;
        int len = i2d_X509(certs[i], &der);
        assert_non_null(certs[i]);
        assert_int_equal(X509_verify(certs[i], X509_get0_pubkey(issuing)), 1);
        OK(ts_serial_hex(X509_get0_serialNumber(certs[i]), serials[issued], TS_SERIAL_HEX));
        for (size_t k = 0; k < issued; k++) {
            assert_string_not_equal(serials[k], serials[issued]);
        }
        OK(ts_store_cert_get(ts_ca_store(g.ca), g.tenant_id, serials[issued], &row));
        assert_int_equal(row.der_len, (size_t)len);
        assert_memory_equal(row.der, der, (size_t)len);
        assert_string_equal(row.profile, "device");
        assert_int_equal(strncmp(row.device_uid, "dev-000", 7), 0);
        ts_cert_row_clear(&row);
        OPENSSL_free(der);
        X509_free(certs[i]);
        issued++;
    }
    assert_int_equal(issued, 4);
    assert_int_equal(cert_count(&g), 4);

    /* One audit entry per certificate, like a single issuance's, and the chain verifies. */
    OK(ts_ca_issue_csr(g.ca, NULL, "device", g.der[0], g.len[0], &single));
    size_t n = audit_count(&g, before, &audit);
    assert_int_equal(n, 5);
    char group_keys[256], single_keys[256];
    detail_keys(audit[0].details, group_keys, sizeof group_keys);
    detail_keys(audit[4].details, single_keys, sizeof single_keys);
    assert_string_equal(group_keys, single_keys);
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(audit[i].action, "cert.issue");
        if (i < issued) {
            assert_string_equal(audit[i].object, serials[i]);
        }
    }
    ts_audit_rows_free(audit, n);
    X509_free(single);
    X509_free(issuing);
    group_close(&g);
}

/* A trigger that makes the database refuse one certificate in the middle of the group. */
static void poison(store_fx *fx, int on)
{
    if (fx->backend == STORE_SQLITE) {
        assert_int_equal(
            store_fx_raw(fx,
                         on ? "CREATE TRIGGER poison BEFORE INSERT ON certificates WHEN "
                              "NEW.subject LIKE '%poison%' BEGIN SELECT RAISE(ABORT, 'poisoned'); "
                              "END"
                            : "DROP TRIGGER poison",
                         NULL),
            0);
        return;
    }
    if (on) {
        assert_int_equal(store_fx_raw(fx,
                                      "CREATE FUNCTION poison() RETURNS trigger AS $$ BEGIN IF "
                                      "NEW.subject LIKE '%poison%' THEN RAISE EXCEPTION "
                                      "'poisoned'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql",
                                      NULL),
                         0);
        assert_int_equal(store_fx_raw(fx,
                                      "CREATE TRIGGER poison BEFORE INSERT ON certificates FOR "
                                      "EACH ROW EXECUTE FUNCTION poison()",
                                      NULL),
                         0);
    } else {
        assert_int_equal(store_fx_raw(fx, "DROP TRIGGER poison ON certificates", NULL), 0);
    }
}

static void group_failure_leaves_nothing(store_fx *fx)
{
    X509 *certs[GROUP_MAX];
    ts_err results[GROUP_MAX];
    group_fx g;

    group_open(&g, fx);
    int64_t before = audit_last(&g);
    group_add(&g, "P-256", "CN=dev-0001", NULL);
    group_add(&g, "P-256", "CN=dev-0002", NULL);
    group_add(&g, "P-256", "CN=dev-poison", NULL);
    group_add(&g, "P-256", "CN=dev-0003", NULL);
    group_add_bytes(&g, "garbage");

    poison(fx, 1);
    ERR(TS_ERR_STORE, "no certificate of the group was issued",
        group_issue(&g, "device", certs, results));
    assert_non_null(strstr(ts_error_message(), "CSR 3 of 5"));
    for (size_t i = 0; i < g.count; i++) {
        assert_null(certs[i]);
        assert_int_equal(results[i], i == 4 ? TS_ERR_INVALID : TS_ERR_STORE);
    }
    assert_int_equal(cert_count(&g), 0);
    assert_int_equal(audit_count(&g, before, NULL), 0);

    /* Nothing was left half done: the same group goes through once the database accepts it. */
    poison(fx, 0);
    OK(group_issue(&g, "device", certs, results));
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(results[i], TS_OK);
        X509_free(certs[i]);
    }
    assert_int_equal(results[4], TS_ERR_INVALID);
    assert_int_equal(cert_count(&g), 4);
    assert_int_equal(audit_count(&g, before, NULL), 4);
    group_close(&g);
}

static void group_refusals_and_arguments(store_fx *fx)
{
    X509 *certs[GROUP_MAX];
    ts_err results[GROUP_MAX];
    group_fx g;

    group_open(&g, fx);
    int64_t before = audit_last(&g);
    group_add(&g, "P-384", "CN=dev-p384", NULL);
    group_add_bytes(&g, "-----BEGIN CERTIFICATE REQUEST-----\ngarbage\n"
                        "-----END CERTIFICATE REQUEST-----\n");

    /* Every CSR refused: nothing to commit, nothing stored or audited. */
    OK(group_issue(&g, "device", certs, results));
    assert_int_equal(results[0], TS_ERR_POLICY);
    assert_int_equal(results[1], TS_ERR_INVALID);
    assert_null(certs[0]);
    assert_null(certs[1]);

    /* A profile the tenant does not have fails the whole group. */
    ERR(TS_ERR_NOT_FOUND, NULL, group_issue(&g, "no-such-profile", certs, results));
    assert_int_equal(results[0], TS_ERR_NOT_FOUND);
    assert_int_equal(results[1], TS_ERR_NOT_FOUND);

    ERR(TS_ERR_INVALID, "missing argument",
        ts_ca_issue_csrs(g.ca, NULL, "device", NULL, g.len, g.count, certs, results));
    ERR(TS_ERR_INVALID, "1 to",
        ts_ca_issue_csrs(g.ca, NULL, "device", (const uint8_t *const *)g.der, g.len, 0, certs,
                         results));
    size_t big = TS_CA_ISSUE_GROUP_MAX + 1;
    const uint8_t **many = calloc(big, sizeof *many);
    size_t *lens = calloc(big, sizeof *lens);
    X509 **outs = calloc(big, sizeof *outs);
    ts_err *res = calloc(big, sizeof *res);
    assert_true(many != NULL && lens != NULL && outs != NULL && res != NULL);
    ERR(TS_ERR_INVALID, "1 to", ts_ca_issue_csrs(g.ca, NULL, "device", many, lens, big, outs, res));
    free(many);
    free(lens);
    free(outs);
    free(res);

    assert_int_equal(cert_count(&g), 0);
    assert_int_equal(audit_count(&g, before, NULL), 0);
    group_close(&g);
}

int main(void)
{
    static const store_case cases[] = {
        {"group_mixed", group_mixed},
        {"group_failure_leaves_nothing", group_failure_leaves_nothing},
        {"group_refusals_and_arguments", group_refusals_and_arguments},
    };
    return store_run_cases("issue_group", cases, sizeof cases / sizeof cases[0]);
}
