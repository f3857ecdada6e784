/*
 * bench_issue: certificates a CA instance issues per second, in process, from pre-made CSRs.
 *
 * Each issuance is the whole path: parse the CSR, verify its signature, check it against the
 * "device" profile, sign the certificate with the issuing CA key, store it with its audit entry,
 * and a durable commit. Four configurations, each a fresh instance made by ts_ca_init():
 *   sqlite_soft       SQLite (DIR/tessera.db, WAL, synchronous=FULL), issuing key in soft:
 *   sqlite_softhsm    SQLite, issuing key in a SoftHSM2 token under DIR (its own SOFTHSM2_CONF)
 *   postgres_soft     PostgreSQL (a throwaway server, fsync on), issuing key in soft:
 *   postgres_softhsm  PostgreSQL, issuing key in SoftHSM2
 * and in each, two figures over the same N CSRs: _group (ts_ca_issue_csrs(), G per commit) and
 * _single (ts_ca_issue_csr(), one commit per certificate). The reference, raw_openssl_sign_verify,
 * is OpenSSL alone with in-memory P-256 keys: per certificate one ECDSA verify (the CSR's) and one
 * ECDSA sign (a prepared certificate's). It is measured on the same G CSRs just before each of a
 * figure's G-CSR steps, so that a change in the machine's speed falls on both alike, and each
 * figure's ratio is against the reference taken alongside it. Target: sqlite_soft_group at least
 * 50% of raw; printed, not enforced. docs/bench.md describes the output.
 *
 * Environment: TS_BENCH_CERTS (N, default 2000), TS_BENCH_GROUP (G, default 100),
 * TS_SOFTHSM_MODULE, TS_PG_BINDIR, TS_BENCH_ONLY (measure only the configuration of that name,
 * e.g. sqlite_soft, for profiling; the others are reported as skipped).
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "pg_fixture.h"
#include "test_support.h"
#include "tessera/ca.h"
#include "tessera/keystore.h"

#define BENCH_PIN            "bench-pin-1234"
#define BENCH_PROFILE        "device"
#define BENCH_SOFTHSM_MODULE "/usr/lib/softhsm/libsofthsm2.so"
#define BENCH_GOAL           0.50
#define BENCH_RAW_NAME       "raw_openssl_sign_verify"

enum {
    BENCH_DEFAULT_CERTS = 2000,
    BENCH_DEFAULT_GROUP = 100,
    BENCH_WARMUP = 20, /* certificates issued before timing, to open the key store and caches */
};

/* The pre-made CSRs: DER for the CA, parsed for the raw reference. */
typedef struct bench_csrs {
    uint8_t **der;
    size_t *len;
    X509_REQ **req;
    size_t count;
} bench_csrs;

typedef struct bench_config {
    const char *name; /* sqlite_soft, ... */
    int postgres;
    int softhsm;
    char skipped[512]; /* why it was not measured, when it was skipped */
    int failed;
    double group_s, single_s; /* seconds for count certificates each way */
    /* Seconds of the raw reference over the same CSRs, taken step by step alongside each. */
    double raw_group_s, raw_single_s;
} bench_config;

/* The raw reference: an in-memory signing key, a prepared certificate, and all its passes. */
typedef struct bench_raw {
    EVP_PKEY *key;
    X509 *cert;
    size_t ops;
    double secs;
} bench_raw;

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void fail_openssl(const char *what)
{
    unsigned long e;
    char buf[256];

    fprintf(stderr, "bench_issue: %s\n", what);
    for (e = ERR_get_error(); e != 0; e = ERR_get_error()) {
        ERR_error_string_n(e, buf, sizeof buf);
        fprintf(stderr, "bench_issue:   %s\n", buf);
    }
}

static void csrs_free(bench_csrs *c)
{
    for (size_t i = 0; i < c->count; i++) {
        OPENSSL_free(c->der != NULL ? c->der[i] : NULL);
        X509_REQ_free(c->req != NULL ? c->req[i] : NULL);
    }
    free(c->der);
    free(c->len);
    free(c->req);
}

/* N P-256 CSRs (CN=bench-device-NNNNNN) with in-memory keys, made before anything is timed. */
static int csrs_make(bench_csrs *c, size_t n)
{
    char cn[64];

    c->count = n;
    c->der = calloc(n, sizeof *c->der);
    c->len = calloc(n, sizeof *c->len);
    c->req = calloc(n, sizeof *c->req);
    if (c->der == NULL || c->len == NULL || c->req == NULL) {
        fprintf(stderr, "bench_issue: out of memory\n");
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        EVP_PKEY *key = EVP_EC_gen("P-256");
        X509_REQ *req = X509_REQ_new();
        X509_NAME *name = X509_REQ_get_subject_name(req);
        int len;

        snprintf(cn, sizeof cn, "bench-device-%06zu", i);
        c->req[i] = req;
        if (key == NULL || req == NULL || X509_REQ_set_version(req, 0) != 1 ||
            X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1,
                                       0) != 1 ||
            X509_REQ_set_pubkey(req, key) != 1 || X509_REQ_sign(req, key, EVP_sha256()) <= 0 ||
            (len = i2d_X509_REQ(req, &c->der[i])) <= 0) {
            EVP_PKEY_free(key);
            fail_openssl("cannot make a CSR");
            return -1;
        }
        c->len[i] = (size_t)len;
        EVP_PKEY_free(key);
    }
    return 0;
}

/* The raw reference certificate: what a CA signs, without extensions. */
static X509 *raw_template(EVP_PKEY *subject_key)
{
    X509 *cert = X509_new();
    X509_NAME *name = X509_NAME_new();
    int ok = cert != NULL && name != NULL && X509_set_version(cert, X509_VERSION_3) == 1 &&
             ASN1_INTEGER_set_int64(X509_get_serialNumber(cert), 0x7e55e7a) == 1 &&
             X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                        (const unsigned char *)"bench-device", -1, -1, 0) == 1 &&
             X509_set_subject_name(cert, name) == 1 && X509_set_issuer_name(cert, name) == 1 &&
             X509_gmtime_adj(X509_getm_notBefore(cert), 0) != NULL &&
             X509_gmtime_adj(X509_getm_notAfter(cert), 86400L * 365) != NULL &&
             X509_set_pubkey(cert, subject_key) == 1;

    X509_NAME_free(name);
    if (!ok) {
        X509_free(cert);
        return NULL;
    }
    return cert;
}

/* The raw reference over count CSRs from first: verify each CSR's signature, sign a certificate.
 * Adds the time to *secs and to the run's total. */
static int raw_pass(const bench_csrs *c, size_t first, size_t count, bench_raw *raw, double *secs)
{
    double t0 = now_s(), dt;

    for (size_t i = first; i < first + count; i++) {
        /* X509_sign() marks the to-be-signed part modified: it is encoded and hashed anew. */
        if (X509_REQ_verify(c->req[i], X509_REQ_get0_pubkey(c->req[i])) != 1 ||
            X509_sign(raw->cert, raw->key, EVP_sha256()) <= 0) {
            fail_openssl("raw OpenSSL verify or sign failed");
            return -1;
        }
    }
    dt = now_s() - t0;
    *secs += dt;
    raw->secs += dt;
    raw->ops += count;
    return 0;
}

/* dir/name into buf; -1 when it does not fit. */
static int path_of(char *buf, size_t size, const char *dir, const char *name)
{
    int n = snprintf(buf, size, "%s/%s", dir, name);
    return n > 0 && (size_t)n < size ? 0 : -1;
}

static int say_ts(const char *config, const char *what, ts_err rv)
{
    fprintf(stderr, "bench_issue: %s: %s: %s (%s)\n", config, what, ts_error_message(),
            ts_err_name(rv));
    return -1;
}

/* Issues count CSRs from first in groups of group; every one must be issued. */
static int issue_groups(ts_ca *ca, const bench_config *cfg, const bench_csrs *c, size_t first,
                        size_t count, size_t group)
{
    X509 **certs = calloc(group, sizeof *certs);
    ts_err *results = calloc(group, sizeof *results);
    int rc = certs != NULL && results != NULL ? 0 : -1;

    for (size_t at = first; rc == 0 && at < first + count; at += group) {
        size_t n = first + count - at < group ? first + count - at : group;
        ts_err rv = ts_ca_issue_csrs(ca, NULL, BENCH_PROFILE, (const uint8_t *const *)&c->der[at],
                                     &c->len[at], n, certs, results);
        if (rv != TS_OK) {
            rc = say_ts(cfg->name, "ts_ca_issue_csrs", rv);
        }
        for (size_t i = 0; i < n; i++) {
            if (rv == TS_OK && (results[i] != TS_OK || certs[i] == NULL)) {
                fprintf(stderr, "bench_issue: %s: CSR %zu not issued: %s\n", cfg->name, at + i,
                        ts_err_name(results[i]));
                rc = -1;
            }
            X509_free(certs[i]);
        }
    }
    free(certs);
    free(results);
    return rc;
}

static int issue_singles(ts_ca *ca, const bench_config *cfg, const bench_csrs *c, size_t first,
                         size_t count)
{
    for (size_t i = first; i < first + count; i++) {
        X509 *cert = NULL;
        ts_err rv = ts_ca_issue_csr(ca, NULL, BENCH_PROFILE, c->der[i], c->len[i], &cert);
        if (rv != TS_OK) {
            return say_ts(cfg->name, "ts_ca_issue_csr", rv);
        }
        X509_free(cert);
    }
    return 0;
}

/* All N CSRs issued G at a time (a group call, or G single calls), each step just after the raw
 * reference on the same G CSRs. The two times are summed separately. */
static int issue_stepped(ts_ca *ca, const bench_config *cfg, const bench_csrs *c, size_t group,
                         int single, bench_raw *raw, double *secs, double *raw_secs)
{
    for (size_t at = 0; at < c->count; at += group) {
        size_t n = c->count - at < group ? c->count - at : group;
        if (raw_pass(c, at, n, raw, raw_secs) != 0) {
            return -1;
        }
        double t0 = now_s();
        int rc = single ? issue_singles(ca, cfg, c, at, n) : issue_groups(ca, cfg, c, at, n, group);
        *secs += now_s() - t0;
        if (rc != 0) {
            return -1;
        }
    }
    return 0;
}

/* Untimed: the store holds every certificate issued, and the audit chain verifies. */
static int instance_check(ts_ca *ca, const bench_config *cfg, size_t expected)
{
    ts_store *store = ts_ca_store(ca);
    ts_tenant_row tenant;
    ts_cert_row *rows = NULL;
    size_t count = 0;
    int64_t entries = 0, bad = 0;
    ts_err rv = ts_ca_tenant(ca, NULL, &tenant);

    if (rv == TS_OK) {
        ts_cert_filter filter = {.tenant_id = tenant.id};
        rv = ts_store_cert_list(store, &filter, &rows, &count);
    }
    /* Not counted: the service's TLS server and MQTT client certificates, issued when the
     * instance was made. */
    size_t server = 0;
    for (size_t i = 0; i < count && rv == TS_OK; i++) {
        server += strcmp(rows[i].profile, BENCH_PROFILE) != 0;
    }
    count -= server;
    ts_cert_rows_free(rows, count + server);
    if (rv != TS_OK) {
        return say_ts(cfg->name, "listing certificates", rv);
    }
    if (count != expected) {
        fprintf(stderr, "bench_issue: %s: the store holds %zu certificates, not %zu\n", cfg->name,
                count, expected);
        return -1;
    }
    rv = ts_store_audit_verify(store, &entries, &bad);
    if (rv != TS_OK) {
        return say_ts(cfg->name, "audit chain", rv);
    }
    return 0;
}

/* A fresh instance for the configuration, then the group and single figures. */
static int config_run(bench_config *cfg, const bench_csrs *c, size_t group, ts_pg_server *pg,
                      bench_raw *raw)
{
    char tmp[256], dir[512], ks_dir[512], ks_uri[1024], db_url[1024];
    ts_ca_init_params p = {.org = "Tessera Bench", .operator_name = "bench_issue"};
    ts_ca_init_result res;
    ts_ca *ca = NULL;
    ts_err rv;
    int rc = -1;

    if (ts_test_tmpdir(tmp, sizeof tmp) != 0 || path_of(dir, sizeof dir, tmp, "instance") != 0 ||
        path_of(ks_dir, sizeof ks_dir, tmp, "keystore") != 0) {
        perror("bench_issue: temporary directory");
        return -1;
    }
    p.dir = dir;
    if (!cfg->softhsm) {
        ts_keystore *ks = NULL;
        snprintf(ks_uri, sizeof ks_uri, "soft:%s?pin-value=" BENCH_PIN, ks_dir);
        rv = ts_keystore_create(ks_uri, NULL, &ks);
        ts_keystore_free(ks);
        if (rv != TS_OK) {
            say_ts(cfg->name, "soft: key store", rv);
            goto done;
        }
        p.keystore_uri = ks_uri;
    }
    /* Without --keystore, init makes a SoftHSM2 token under DIR with its own SOFTHSM2_CONF. */
    if (cfg->postgres) {
        if (ts_pg_create_db(pg, cfg->softhsm ? "bench_softhsm" : "bench_soft", db_url,
                            sizeof db_url) != 0) {
            fprintf(stderr, "bench_issue: %s: cannot create the database\n", cfg->name);
            goto done;
        }
        p.db_url = db_url;
    }
    rv = ts_ca_init(&p, &res);
    if (rv != TS_OK) {
        say_ts(cfg->name, "ts_ca_init", rv);
        goto done;
    }
    if (cfg->softhsm != (strncmp(res.keystore_uri, "pkcs11:", 7) == 0)) {
        fprintf(stderr, "bench_issue: %s: the instance's key store is %s\n", cfg->name,
                res.keystore_uri);
        goto done;
    }
    rv = ts_ca_open(dir, "bench_issue", &ca);
    if (rv != TS_OK) {
        say_ts(cfg->name, "ts_ca_open", rv);
        goto done;
    }
    /* Warm-up on the first CSRs, untimed: both paths once, so the key store is open. */
    if (issue_singles(ca, cfg, c, 0, BENCH_WARMUP / 2) != 0 ||
        issue_groups(ca, cfg, c, 0, BENCH_WARMUP / 2, group) != 0) {
        goto done;
    }
    if (issue_stepped(ca, cfg, c, group, 0, raw, &cfg->group_s, &cfg->raw_group_s) != 0 ||
        issue_stepped(ca, cfg, c, group, 1, raw, &cfg->single_s, &cfg->raw_single_s) != 0) {
        goto done;
    }
    rc = instance_check(ca, cfg, BENCH_WARMUP / 2 * 2 + 2 * c->count);
done:
    ts_ca_free(ca);
    ts_test_rmtree(tmp);
    cfg->failed = rc != 0;
    return rc;
}

/*
 * The fixture's server runs without fsync (tests do not need it); a benchmark of durable commits
 * does. fsync, full_page_writes and synchronous_commit are reloadable: set them and wait until a
 * new connection sees them.
 */
static int pg_durable(ts_pg_server *pg, char *why, size_t size)
{
    static const char *const sets[] = {
        "ALTER SYSTEM SET fsync = on",
        "ALTER SYSTEM SET full_page_writes = on",
        "ALTER SYSTEM SET synchronous_commit = on",
        "SELECT pg_reload_conf()",
    };
    char admin[512];
    int rc = -1;

    snprintf(admin, sizeof admin, "postgresql:///postgres?host=%s&port=%d&user=tessera", pg->dir,
             pg->port);
    PGconn *conn = PQconnectdb(admin);
    for (size_t i = 0; i < sizeof sets / sizeof sets[0] && PQstatus(conn) == CONNECTION_OK; i++) {
        PGresult *res = PQexec(conn, sets[i]);
        int ok = PQresultStatus(res) == PGRES_COMMAND_OK || PQresultStatus(res) == PGRES_TUPLES_OK;
        PQclear(res);
        if (!ok) {
            snprintf(why, size, "%s: %s", sets[i], PQerrorMessage(conn));
            PQfinish(conn);
            return -1;
        }
    }
    PQfinish(conn);
    for (int tries = 0; tries < 100 && rc != 0; tries++) {
        conn = PQconnectdb(admin);
        PGresult *res = PQexec(conn, "SELECT current_setting('fsync') = 'on' AND "
                                     "current_setting('full_page_writes') = 'on' AND "
                                     "current_setting('synchronous_commit') = 'on'");
        if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 &&
            strcmp(PQgetvalue(res, 0, 0), "t") == 0) {
            rc = 0;
        }
        PQclear(res);
        PQfinish(conn);
        if (rc != 0) {
            usleep(50 * 1000);
        }
    }
    if (rc != 0) {
        snprintf(why, size, "the server did not turn fsync on");
    }
    return rc;
}

static double config_rate(const bench_config *cfg, size_t n, int single)
{
    double s = single ? cfg->single_s : cfg->group_s;
    return !cfg->failed && cfg->skipped[0] == '\0' && s > 0 ? (double)n / s : 0;
}

/* The figure's rate over the raw reference's rate taken alongside it, on the same CSRs. */
static double config_ratio(const bench_config *cfg, int single)
{
    double s = single ? cfg->single_s : cfg->group_s;
    double raw_s = single ? cfg->raw_single_s : cfg->raw_group_s;
    return s > 0 && raw_s > 0 ? raw_s / s : 0;
}

static void print_results(const bench_config *cfgs, size_t ncfg, size_t n, double raw)
{
    char name[64];

    printf("\n%-26s %10s %7s %8s %12s %13s\n", "figure", "cert/s", "certs", "seconds",
           "raw alongside", "ratio vs raw");
    printf("%-26s %10.0f %7s %8s %12s %13s\n", BENCH_RAW_NAME, raw, "", "", "", "");
    for (size_t i = 0; i < ncfg; i++) {
        for (int single = 0; single < 2; single++) {
            const bench_config *cfg = &cfgs[i];
            double r = config_rate(cfg, n, single);
            double raw_s = single ? cfg->raw_single_s : cfg->raw_group_s;
            snprintf(name, sizeof name, "%s_%s", cfg->name, single ? "single" : "group");
            if (r > 0) {
                printf("%-26s %10.0f %7zu %8.2f %12.0f %13.2f\n", name, r, n,
                       single ? cfg->single_s : cfg->group_s, (double)n / raw_s,
                       config_ratio(cfg, single));
            } else if (cfg->skipped[0] != '\0') {
                printf("%-26s %10s   %s\n", name, "SKIPPED", cfg->skipped);
            } else {
                printf("%-26s %10s\n", name, "failed");
            }
        }
    }
    if (config_rate(&cfgs[0], n, 0) > 0) {
        double ratio = config_ratio(&cfgs[0], 0);
        printf("\ntarget %s_group >= %.2f x %s: %s (%.2f)\n", cfgs[0].name, BENCH_GOAL,
               BENCH_RAW_NAME, ratio >= BENCH_GOAL ? "met" : "NOT met", ratio);
    }
    printf("\n");
    for (size_t i = 0; i < ncfg; i++) {
        for (int single = 0; single < 2; single++) {
            double r = config_rate(&cfgs[i], n, single);
            if (r > 0) {
                printf("bench issue %s_%s %.0f cert/s ratio %.2f vs %s\n", cfgs[i].name,
                       single ? "single" : "group", r, config_ratio(&cfgs[i], single),
                       BENCH_RAW_NAME);
            }
        }
    }
}

static size_t env_size(const char *name, size_t def, size_t max)
{
    const char *v = getenv(name);
    char *end = NULL;
    unsigned long long n;

    if (v == NULL || v[0] == '\0') {
        return def;
    }
    n = strtoull(v, &end, 10);
    return *end == '\0' && n >= 1 && n <= max ? (size_t)n : 0;
}

int main(void)
{
    bench_config cfgs[] = {
        {.name = "sqlite_soft"},
        {.name = "sqlite_softhsm", .softhsm = 1},
        {.name = "postgres_soft", .postgres = 1},
        {.name = "postgres_softhsm", .postgres = 1, .softhsm = 1},
    };
    const size_t ncfg = sizeof cfgs / sizeof cfgs[0];
    size_t n = env_size("TS_BENCH_CERTS", BENCH_DEFAULT_CERTS, 1000000);
    size_t group = env_size("TS_BENCH_GROUP", BENCH_DEFAULT_GROUP, TS_CA_ISSUE_GROUP_MAX);
    const char *module = getenv("TS_SOFTHSM_MODULE");
    const char *only = getenv("TS_BENCH_ONLY");
    bench_csrs csrs = {0};
    ts_pg_server pg = {0};
    char why[512] = "";
    int pg_state = TS_PG_ABSENT, failed = 0;
    bench_raw raw = {0};

    if (n < BENCH_WARMUP || group == 0) {
        fprintf(stderr,
                "bench_issue: TS_BENCH_CERTS must be %d to 1000000 and TS_BENCH_GROUP 1 "
                "to %d\n",
                BENCH_WARMUP, TS_CA_ISSUE_GROUP_MAX);
        return 2;
    }
    if (module == NULL || module[0] == '\0') {
        module = BENCH_SOFTHSM_MODULE;
        setenv("TS_SOFTHSM_MODULE", module, 1);
    }
    printf("bench issue: %zu P-256 CSRs per figure, profile '%s', groups of %zu; "
           "durable commits (SQLite synchronous=FULL, PostgreSQL fsync=on)\n",
           n, BENCH_PROFILE, group);
    fflush(stdout);
    if (csrs_make(&csrs, n) != 0) {
        csrs_free(&csrs);
        return 1;
    }
    raw.key = EVP_EC_gen("P-256");
    raw.cert = raw.key != NULL ? raw_template(X509_REQ_get0_pubkey(csrs.req[0])) : NULL;
    if (raw.cert == NULL) {
        fail_openssl("cannot prepare the raw reference");
        failed = 1;
        goto out;
    }

    if (access(module, R_OK) != 0) {
        snprintf(cfgs[1].skipped, sizeof cfgs[1].skipped, "no SoftHSM2 module at %s", module);
        snprintf(cfgs[3].skipped, sizeof cfgs[3].skipped, "no SoftHSM2 module at %s", module);
    }
    if (only != NULL && only[0] != '\0') {
        for (size_t i = 0; i < ncfg; i++) {
            if (strcmp(cfgs[i].name, only) != 0) {
                snprintf(cfgs[i].skipped, sizeof cfgs[i].skipped, "TS_BENCH_ONLY=%s", only);
            }
        }
    }
    pg_state = ts_pg_start(&pg, why, sizeof why);
    if (pg_state == TS_PG_STARTED && pg_durable(&pg, why, sizeof why) != 0) {
        pg_state = TS_PG_FAILED;
    }
    if (pg_state != TS_PG_STARTED) {
        /* On both streams: the table's SKIPPED rows are easy to overlook in a log. */
        printf("*** PostgreSQL rows %s: %s ***\n", pg_state == TS_PG_ABSENT ? "SKIPPED" : "FAILED",
               why);
        fflush(stdout);
        fprintf(stderr, "bench_issue: *** PostgreSQL rows %s: %s ***\n",
                pg_state == TS_PG_ABSENT ? "SKIPPED" : "FAILED", why);
        for (size_t i = 0; i < ncfg; i++) {
            if (cfgs[i].postgres && cfgs[i].skipped[0] == '\0') {
                snprintf(cfgs[i].skipped, sizeof cfgs[i].skipped, "%s",
                         pg_state == TS_PG_ABSENT ? "PostgreSQL server binaries not installed"
                                                  : "PostgreSQL did not start");
                failed |= pg_state != TS_PG_ABSENT;
            }
        }
    }

    for (size_t i = 0; i < ncfg; i++) {
        if (cfgs[i].skipped[0] != '\0') {
            continue;
        }
        printf("%s ...\n", cfgs[i].name);
        fflush(stdout);
        failed |= config_run(&cfgs[i], &csrs, group, &pg, &raw) != 0;
    }
    /* With every configuration skipped, the reference alone, once over the CSRs. */
    if (raw.ops == 0) {
        double secs = 0;
        if (raw_pass(&csrs, 0, csrs.count, &raw, &secs) != 0) {
            failed = 1;
            goto out;
        }
    }
    print_results(cfgs, ncfg, n, (double)raw.ops / raw.secs);
out:
    if (pg_state != TS_PG_ABSENT) {
        ts_pg_stop(&pg);
    }
    X509_free(raw.cert);
    EVP_PKEY_free(raw.key);
    csrs_free(&csrs);
    return failed ? 1 : 0;
}
