/*
 * Helpers of the CA instance tests (test_ca.c, test_ca_lifecycle.c): instances made with
 * ts_ca_init() on a soft: key store, on SQLite or on a fresh PostgreSQL database; a snapshot of
 * what an operation may change (certificates, audit entries, files of the instance directory)
 * to show that a refused operation changed nothing; CSRs made in memory; and a runner that plays
 * a table of cases on both backends against one shared instance per backend.
 *
 * The PostgreSQL half is skipped, saying why, only when the server binaries are not installed.
 * TS_TEST_FILTER picks cases by cmocka pattern, e.g. TS_TEST_FILTER='sqlite/crl_*'.
 */
#ifndef TS_TEST_CA_TEST_UTIL_H
#define TS_TEST_CA_TEST_UTIL_H

/* Includers define _XOPEN_SOURCE 700 first, for nftw(). */
#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pg_fixture.h"
#include "pki_test_util.h"
#include "tessera/ca.h"
#include "tessera/store.h"

#define CA_TEST_PIN   "ca-test-pin-4711"
#define CA_TEST_ORG   "Tessera Test"
#define CA_TEST_URL   "http://ca.example.test"
#define CA_TEST_ACTOR "unit-test"

typedef enum ca_backend {
    CA_SQLITE = 0,
    CA_PG = 1,
} ca_backend;

typedef struct ca_fx {
    ca_backend backend;
    char tmp[256];         /* holds the instance directory and the PIN file */
    char dir[512];         /* the instance directory, tmp/inst */
    char db_url[1024];     /* empty: the default SQLite file under dir */
    char ks_uri[1600];     /* soft:dir/ks?pin-source=tmp/pin */
    ts_ca_init_result res; /* of the ts_ca_init() that made it */
    ts_ca *ca;             /* opened by the runner for each case */
} ca_fx;

static ts_pg_server ca_pg;
static int ca_pg_state = TS_PG_FAILED;
static char ca_pg_why[512];
static int ca_pg_seq;

/* A fresh database name on the test's PostgreSQL server into fx->db_url (CA_PG only). */
static inline int ca_fx_db(ca_fx *fx)
{
    char name[32];

    fx->db_url[0] = '\0';
    if (fx->backend != CA_PG) {
        return 0;
    }
    if (ca_pg_state != TS_PG_STARTED) {
        return -1;
    }
    snprintf(name, sizeof name, "ca%d", ++ca_pg_seq);
    return ts_pg_create_db(&ca_pg, name, fx->db_url, sizeof fx->db_url);
}

/* Default parameters for an instance of fx (M/N 3/5 unless changed by the caller). */
static inline void ca_fx_params(ca_fx *fx, ts_ca_init_params *p)
{
    memset(p, 0, sizeof *p);
    p->dir = fx->dir;
    p->keystore_uri = fx->ks_uri;
    p->db_url = fx->db_url[0] != '\0' ? fx->db_url : NULL;
    p->org = CA_TEST_ORG;
    p->country = "de";
    p->base_url = CA_TEST_URL "/";
    p->operator_name = CA_TEST_ACTOR;
}

/* A temporary directory, a PIN file beside the instance directory, a database and the URIs.
 * The instance itself is not made. 0 on success. */
static inline int ca_fx_prepare(ca_fx *fx, ca_backend backend)
{
    char pin[512];
    FILE *f;

    memset(fx, 0, sizeof *fx);
    fx->backend = backend;
    if (ts_test_tmpdir(fx->tmp, sizeof fx->tmp) != 0) {
        return -1;
    }
    char base[sizeof fx->tmp];
    memcpy(base, fx->tmp, sizeof base); /* a separate buffer: fx->dir and fx->tmp share fx */
    snprintf(fx->dir, sizeof fx->dir, "%s/inst", base);
    snprintf(pin, sizeof pin, "%s/pin", base);
    f = fopen(pin, "w");
    if (f == NULL) {
        return -1;
    }
    fputs(CA_TEST_PIN, f);
    fclose(f);
    snprintf(fx->ks_uri, sizeof fx->ks_uri, "soft:%s/inst/ks?pin-source=%s", base, pin);
    return ca_fx_db(fx);
}

/* ca_fx_prepare() and ts_ca_init() with shares m/n (0: the defaults). 0 on success. */
static inline int ca_fx_make(ca_fx *fx, ca_backend backend, unsigned m, unsigned n)
{
    ts_ca_init_params p;

    if (ca_fx_prepare(fx, backend) != 0) {
        fprintf(stderr, "ca fixture: cannot prepare (%s)\n", ca_pg_why);
        return -1;
    }
    ca_fx_params(fx, &p);
    p.shares_m = m;
    p.shares_n = n;
    if (ts_ca_init(&p, &fx->res) != TS_OK) {
        fprintf(stderr, "ca fixture: ts_ca_init: %s\n", ts_error_message());
        return -1;
    }
    return 0;
}

static inline void ca_fx_free(ca_fx *fx)
{
    ts_ca_free(fx->ca);
    fx->ca = NULL;
    if (fx->tmp[0] != '\0' && getenv("TS_KEEP_TMP") == NULL) {
        ts_test_rmtree(fx->tmp);
    }
    fx->tmp[0] = '\0';
}

/* --- Snapshots: what a refused operation must leave as it was -------------------------------- */

typedef struct ca_snap {
    size_t certs;     /* certificate rows, every tenant */
    int64_t audit;    /* audit entries (the chain verifies) */
    char files[8192]; /* sorted relative paths under the instance directory, one a line */
} ca_snap;

static char ca_walk_names[512][256];
static size_t ca_walk_count;
static size_t ca_walk_root_len;

static int ca_walk_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    if (ca_walk_count < sizeof ca_walk_names / sizeof ca_walk_names[0]) {
        snprintf(ca_walk_names[ca_walk_count++], sizeof ca_walk_names[0], "%s",
                 path + ca_walk_root_len);
    }
    return 0;
}

static int ca_name_cmp(const void *a, const void *b)
{
    return strcmp(a, b);
}

/* The sorted file names under dir, one a line; empty when dir does not exist. */
static inline void ca_files(const char *dir, char *out, size_t size)
{
    size_t used = 0;

    ca_walk_count = 0;
    ca_walk_root_len = strlen(dir);
    out[0] = '\0';
    if (nftw(dir, ca_walk_one, 16, FTW_PHYS) != 0) {
        return;
    }
    assert_true(ca_walk_count < sizeof ca_walk_names / sizeof ca_walk_names[0]);
    qsort(ca_walk_names, ca_walk_count, sizeof ca_walk_names[0], ca_name_cmp);
    for (size_t i = 0; i < ca_walk_count; i++) {
        int n = snprintf(out + used, size - used, "%s\n", ca_walk_names[i]);
        assert_true(n > 0 && (size_t)n < size - used);
        used += (size_t)n;
    }
}

static inline int64_t ca_audit_count(ts_ca *ca)
{
    int64_t entries = 0, first_bad = 0;
    ts_err rv = ts_store_audit_verify(ts_ca_store(ca), &entries, &first_bad);
    if (rv != TS_OK) {
        fail_msg("audit chain: %s (first bad %lld)", ts_error_message(), (long long)first_bad);
    }
    return entries;
}

static inline size_t ca_cert_count(ts_ca *ca)
{
    ts_cert_filter filter = {0};
    ts_cert_row *rows = NULL;
    size_t count = 0;

    assert_err(ts_store_cert_list(ts_ca_store(ca), &filter, &rows, &count), TS_OK);
    ts_cert_rows_free(rows, count);
    return count;
}

static inline void ca_snap_take(ts_ca *ca, const char *dir, ca_snap *s)
{
    s->certs = ca_cert_count(ca);
    s->audit = ca_audit_count(ca);
    ca_files(dir, s->files, sizeof s->files);
}

/* Fails the case when anything in the snapshot changed. */
static inline void ca_snap_same(ts_ca *ca, const char *dir, const ca_snap *before)
{
    static ca_snap now;
    ca_snap_take(ca, dir, &now);
    assert_int_equal(now.certs, before->certs);
    assert_int_equal(now.audit, before->audit);
    assert_string_equal(now.files, before->files);
}

/* Copies src into dst of size bytes, cut to fit. */
static inline void ca_copy(char *dst, size_t size, const char *src)
{
    size_t n = strnlen(src, size - 1);
    memcpy(dst, src, n);
    dst[n] = '\0';
}

/* The newest audit entry's action and object. */
static inline void ca_last_audit(ts_ca *ca, int back, char *action, size_t asize, char *object,
                                 size_t osize)
{
    ts_audit_row *rows = NULL;
    size_t count = 0;
    int64_t total = ca_audit_count(ca);

    assert_err(ts_store_audit_list(ts_ca_store(ca), total - 1 - back, 1, &rows, &count), TS_OK);
    assert_int_equal(count, 1);
    ca_copy(action, asize, rows[0].action);
    ca_copy(object, osize, rows[0].object);
    ts_audit_rows_free(rows, count);
}

/* Fails when any audit entry's details hold text (a PIN must never be logged). */
static inline void ca_audit_lacks(ts_ca *ca, const char *text)
{
    ts_audit_row *rows = NULL;
    size_t count = 0;

    assert_err(ts_store_audit_list(ts_ca_store(ca), 0, 0, &rows, &count), TS_OK);
    for (size_t i = 0; i < count; i++) {
        if (strstr(rows[i].details, text) != NULL || strstr(rows[i].object, text) != NULL) {
            fail_msg("audit entry %lld (%s) holds '%s'", (long long)rows[i].id, rows[i].action,
                     text);
        }
    }
    ts_audit_rows_free(rows, count);
}

/* --- CSRs and certificates ---------------------------------------------------------------------
 */

/* A CSR's DER for a new key on curve with subject "/CN=..." and extensions (pki_csr()); the key
 * into *key when key is not NULL. */
static inline size_t ca_csr(const char *curve, const char *subject, const char *const *exts,
                            uint8_t **der, EVP_PKEY **key)
{
    EVP_PKEY *k = pki_ec_key(curve);
    X509_REQ *req = pki_csr(k, subject, exts);
    size_t len = pki_csr_der(req, der);

    X509_REQ_free(req);
    if (key != NULL) {
        *key = k;
    } else {
        EVP_PKEY_free(k);
    }
    return len;
}

/* The certificate's serial as the store keeps it (upper-case hex). */
static inline void ca_serial(X509 *cert, char out[TS_SERIAL_HEX])
{
    assert_err(ts_serial_hex(X509_get0_serialNumber(cert), out, TS_SERIAL_HEX), TS_OK);
}

/* The stored row of a certificate in the default tenant. */
static inline void ca_row(ts_ca *ca, X509 *cert, ts_cert_row *row)
{
    char serial[TS_SERIAL_HEX];
    ts_tenant_row t;

    ca_serial(cert, serial);
    assert_err(ts_ca_tenant(ca, NULL, &t), TS_OK);
    memset(row, 0, sizeof *row);
    assert_err(ts_store_cert_get(ts_ca_store(ca), t.id, serial, row), TS_OK);
}

/* Issues a device certificate for a new P-256 key in the default tenant. */
static inline X509 *ca_issue_device(ts_ca *ca, const char *uid, EVP_PKEY **key)
{
    char subject[128];
    uint8_t *der = NULL;
    X509 *cert = NULL;

    snprintf(subject, sizeof subject, "/CN=%s", uid);
    size_t len = ca_csr("P-256", subject, NULL, &der, key);
    assert_err(ts_ca_issue_csr(ca, NULL, "device", der, len, &cert), TS_OK);
    OPENSSL_free(der);
    return cert;
}

/* Verifies leaf (NULL: issuing itself) up to the instance's root; returns the X509_V_ code. */
static inline int ca_verify(ts_ca *ca, const char *tenant, X509 *leaf, X509_CRL *crl)
{
    X509 *root = NULL, *issuing = NULL;
    int rc;

    assert_err(ts_ca_cert(ca, NULL, TS_CA_ROOT, &root), TS_OK);
    assert_err(ts_ca_cert(ca, tenant, TS_CA_ISSUING, &issuing), TS_OK);
    rc = pki_verify_chain(root, issuing, leaf != NULL ? leaf : issuing, crl);
    X509_free(root);
    X509_free(issuing);
    return rc;
}

/* --- Runner: each case on SQLite and on PostgreSQL, one shared instance per backend ---------- */

typedef void (*ca_case_fn)(ca_fx *fx);

typedef struct ca_case {
    const char *name;
    ca_case_fn fn;
} ca_case;

typedef struct ca_case_state {
    ca_backend backend;
    const ca_case *c;
} ca_case_state;

static ca_fx ca_shared[2];
static int ca_shared_made[2]; /* 0: not yet, 1: made, -1: failed */

static int ca_setup_one(void **state)
{
    ca_case_state *cs = *state;
    ca_fx *fx = &ca_shared[cs->backend];

    if (cs->backend == CA_PG && ca_pg_state != TS_PG_STARTED) {
        return 0; /* the case skips or fails, with the reason */
    }
    if (ca_shared_made[cs->backend] == 0) {
        ca_shared_made[cs->backend] = ca_fx_make(fx, cs->backend, 0, 0) == 0 ? 1 : -1;
    }
    if (ca_shared_made[cs->backend] != 1) {
        return -1;
    }
    if (ts_ca_open(fx->dir, CA_TEST_ACTOR, &fx->ca) != TS_OK) {
        fprintf(stderr, "ts_ca_open: %s\n", ts_error_message());
        return -1;
    }
    return 0;
}

static int ca_teardown_one(void **state)
{
    ca_case_state *cs = *state;
    ts_ca_free(ca_shared[cs->backend].ca);
    ca_shared[cs->backend].ca = NULL;
    return 0;
}

static void ca_run_one(void **state)
{
    ca_case_state *cs = *state;
    if (cs->backend == CA_PG && ca_pg_state == TS_PG_ABSENT) {
        print_message("skipped: %s\n", ca_pg_why);
        skip();
    }
    if (cs->backend == CA_PG && ca_pg_state != TS_PG_STARTED) {
        fail_msg("PostgreSQL did not start: %s", ca_pg_why);
    }
    cs->c->fn(&ca_shared[cs->backend]);
}

static int ca_group_setup(void **state)
{
    (void)state;
    ca_pg_state = ts_pg_start(&ca_pg, ca_pg_why, sizeof ca_pg_why);
    if (ca_pg_state == TS_PG_ABSENT) {
        fprintf(stderr, "CA tests: the PostgreSQL half is SKIPPED: %s\n", ca_pg_why);
    } else if (ca_pg_state == TS_PG_FAILED) {
        fprintf(stderr, "CA tests: PostgreSQL did not start: %s\n", ca_pg_why);
    }
    return 0;
}

static int ca_group_teardown(void **state)
{
    (void)state;
    for (int b = 0; b < 2; b++) {
        if (ca_shared_made[b] != 0) {
            ca_fx_free(&ca_shared[b]);
        }
    }
    ts_pg_stop(&ca_pg);
    return 0;
}

/* Runs every case on both backends; returns the number of failures. */
static inline int ca_run_cases(const char *group, const ca_case *cases, size_t count)
{
    static const char *const backends[] = {"sqlite", "postgresql"};
    size_t n = 2 * count;
    struct CMUnitTest *tests = calloc(n, sizeof *tests);
    ca_case_state *states = calloc(n, sizeof *states);
    char(*names)[96] = calloc(n, sizeof *names);
    int failed = 1;

    if (tests != NULL && states != NULL && names != NULL) {
        for (size_t k = 0; k < n; k++) {
            states[k].backend = k < count ? CA_SQLITE : CA_PG;
            states[k].c = &cases[k % count];
            snprintf(names[k], sizeof names[k], "%s/%s", backends[k / count],
                     cases[k % count].name);
            tests[k].name = names[k];
            tests[k].test_func = ca_run_one;
            tests[k].setup_func = ca_setup_one;
            tests[k].teardown_func = ca_teardown_one;
            tests[k].initial_state = &states[k];
        }
        const char *filter = getenv("TS_TEST_FILTER");
        if (filter != NULL && filter[0] != '\0') {
            cmocka_set_test_filter(filter);
        }
        failed = _cmocka_run_group_tests(group, tests, n, ca_group_setup, ca_group_teardown);
    }
    free(tests);
    free(states);
    free(names);
    return failed;
}

#endif
