/*
 * bench_keystore: ECDSA P-256 signatures per second through the Tessera provider.
 *
 * Three figures from one run, each by the same loop (EVP_DigestSignInit_ex with SHA-256, then
 * EVP_DigestSign over a 32-byte message, as a TLS handshake or a CSR signature does):
 *   raw_openssl_sign_p256  an in-memory P-256 key in OpenSSL's default provider: the reference
 *   soft_sign_p256         a key in a soft: store, through ts_keystore_evp_pkey()
 *   softhsm_sign_p256      a key in a SoftHSM2 token (its own SOFTHSM2_CONF), likewise
 * After a warm-up, the figures take turns in short rounds, so that a change in the machine's
 * load during the run falls on all of them alike and their ratios stay fair. The soft store's
 * target is 80% of raw; whether it is met is printed, not enforced. docs/bench.md describes the
 * output.
 *
 * Environment: TS_BENCH_SECONDS (measured seconds per figure, default 2), TS_SOFTHSM_MODULE.
 */
#define _GNU_SOURCE
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/evp.h>

#include "tessera/keystore.h"
#include "tessera/provider.h"

#define BENCH_PIN            "bench-pin-1234"
#define BENCH_SO_PIN         "bench-so-pin-5678"
#define BENCH_LABEL          "bench-p256"
#define BENCH_SOFTHSM_MODULE "/usr/lib/softhsm/libsofthsm2.so"
#define BENCH_WARMUP_S       0.5
#define BENCH_ROUNDS         4
#define BENCH_SOFT_GOAL      0.80

enum { BENCH_RAW, BENCH_SOFT, BENCH_SOFTHSM, BENCH_COUNT };

typedef struct bench_subject {
    const char *name;
    ts_keystore *ks; /* NULL for the raw key */
    EVP_PKEY *pkey;
    OSSL_LIB_CTX *libctx; /* NULL: OpenSSL's default context */
    EVP_MD_CTX *md;
    unsigned long ops;
    double seconds;
    int failed; /* could not be set up, or a signature failed: no figure */
} bench_subject;

static const uint8_t bench_msg[32] = "tessera key-store benchmark msg";

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void report_openssl(const char *name, const char *what)
{
    unsigned long e;
    char buf[256];

    fprintf(stderr, "bench_keystore: %s: %s\n", name, what);
    for (e = ERR_get_error(); e != 0; e = ERR_get_error()) {
        ERR_error_string_n(e, buf, sizeof buf);
        fprintf(stderr, "bench_keystore:   %s\n", buf);
    }
}

/* One signature the way every figure makes it: a fresh DigestSign init, then one shot. */
static int sign_once(bench_subject *s, uint8_t *sig, size_t *sig_len)
{
    if (EVP_DigestSignInit_ex(s->md, NULL, "SHA256", s->libctx, NULL, s->pkey, NULL) != 1 ||
        EVP_DigestSign(s->md, sig, sig_len, bench_msg, sizeof bench_msg) != 1) {
        return -1;
    }
    return 0;
}

/*
 * The key must really sign (a fast loop of failures would be a meaningless figure): one
 * signature, verified in the default context by OpenSSL alone with the public key.
 */
static int subject_check(bench_subject *s)
{
    uint8_t sig[256]; /* above any P-256 DER signature */
    size_t sig_len = sizeof sig;
    EVP_MD_CTX *vmd = EVP_MD_CTX_new();
    int rv = -1;

    s->md = EVP_MD_CTX_new();
    if (s->md == NULL || vmd == NULL || sign_once(s, sig, &sig_len) != 0) {
        report_openssl(s->name, "signing failed");
        goto out;
    }
    if (EVP_DigestVerifyInit_ex(vmd, NULL, "SHA256", NULL, NULL, s->pkey, NULL) != 1 ||
        EVP_DigestVerify(vmd, sig, sig_len, bench_msg, sizeof bench_msg) != 1) {
        report_openssl(s->name, "the signature does not verify");
        goto out;
    }
    rv = 0;
out:
    EVP_MD_CTX_free(vmd);
    return rv;
}

/* Signs for seconds of wall time; counts the signatures and time when count is set. */
static int subject_run(bench_subject *s, double seconds, int count)
{
    uint8_t sig[256];
    size_t sig_len;
    unsigned long ops = 0;
    double start = now_s(), end = start + seconds, t;

    do {
        sig_len = sizeof sig;
        if (sign_once(s, sig, &sig_len) != 0) {
            report_openssl(s->name, "signing failed");
            s->failed = 1;
            return -1;
        }
        ops++;
        t = now_s();
    } while (t < end);
    if (count) {
        s->ops += ops;
        s->seconds += t - start;
    }
    return 0;
}

static int setup_raw(bench_subject *s)
{
    s->pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    if (s->pkey == NULL) {
        report_openssl(s->name, "cannot make an in-memory P-256 key");
        return -1;
    }
    return subject_check(s);
}

/* Creates a store at uri and generates the key in it; signing goes through the provider. */
static int setup_store(bench_subject *s, const char *uri, const char *so_pin)
{
    ts_err err;

    s->libctx = ts_provider_libctx();
    if (s->libctx == NULL) {
        fprintf(stderr, "bench_keystore: no provider context: %s\n", ts_error_message());
        return -1;
    }
    err = ts_keystore_create(uri, so_pin, &s->ks);
    if (err == TS_OK) {
        err = ts_keystore_generate(s->ks, BENCH_LABEL, TS_CURVE_P256);
    }
    if (err == TS_OK) {
        err = ts_keystore_evp_pkey(s->ks, BENCH_LABEL, &s->pkey);
    }
    if (err != TS_OK) {
        fprintf(stderr, "bench_keystore: %s: %s (%s)\n", s->name, ts_error_message(),
                ts_err_name(err));
        return -1;
    }
    return subject_check(s);
}

static void subject_free(bench_subject *s)
{
    EVP_MD_CTX_free(s->md);
    EVP_PKEY_free(s->pkey);
    ts_keystore_free(s->ks);
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* A private SoftHSM2 configuration under dir, so the benchmark never touches other tokens. */
static int softhsm_setup(const char *dir)
{
    char tokens[4096], conf[4096];
    FILE *f;
    int nt = snprintf(tokens, sizeof tokens, "%s/tokens", dir);
    int nc = snprintf(conf, sizeof conf, "%s/softhsm2.conf", dir);

    if (nt < 0 || (size_t)nt >= sizeof tokens || nc < 0 || (size_t)nc >= sizeof conf ||
        mkdir(tokens, 0700) != 0) {
        return -1;
    }
    f = fopen(conf, "w");
    if (f == NULL) {
        return -1;
    }
    fprintf(f, "directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n",
            tokens);
    if (fclose(f) != 0) {
        return -1;
    }
    return setenv("SOFTHSM2_CONF", conf, 1);
}

static double rate(const bench_subject *s)
{
    return !s->failed && s->seconds > 0 ? (double)s->ops / s->seconds : 0;
}

static double ratio(const bench_subject *s, const bench_subject *raw)
{
    return rate(raw) > 0 ? rate(s) / rate(raw) : 0;
}

/* Warm-up, then BENCH_ROUNDS rounds in which each subject signs in turn, the order rotating. */
static void measure(bench_subject *subjects, double seconds)
{
    for (int i = 0; i < BENCH_COUNT; i++) {
        if (!subjects[i].failed) {
            subject_run(&subjects[i], BENCH_WARMUP_S, 0);
        }
    }
    for (int round = 0; round < BENCH_ROUNDS; round++) {
        for (int k = 0; k < BENCH_COUNT; k++) {
            bench_subject *s = &subjects[(round + k) % BENCH_COUNT];
            if (!s->failed) {
                subject_run(s, seconds / BENCH_ROUNDS, 1);
            }
        }
    }
}

static void print_results(const bench_subject *subjects)
{
    const bench_subject *raw = &subjects[BENCH_RAW];
    const bench_subject *soft = &subjects[BENCH_SOFT];

    printf("\n%-24s %12s %10s %8s %14s\n", "figure", "sign/s", "signatures", "seconds",
           "ratio vs raw");
    for (int i = 0; i < BENCH_COUNT; i++) {
        const bench_subject *s = &subjects[i];
        if (rate(s) > 0) {
            printf("%-24s %12.0f %10lu %8.2f %14.2f\n", s->name, rate(s), s->ops, s->seconds,
                   ratio(s, raw));
        } else {
            printf("%-24s %12s\n", s->name, "failed");
        }
    }
    if (rate(soft) > 0 && rate(raw) > 0) {
        printf("\ntarget %s >= %.2f x %s: %s (%.2f)\n", soft->name, BENCH_SOFT_GOAL, raw->name,
               ratio(soft, raw) >= BENCH_SOFT_GOAL ? "met" : "NOT met", ratio(soft, raw));
    }
    printf("\n");
    for (int i = BENCH_SOFT; i < BENCH_COUNT; i++) {
        const bench_subject *s = &subjects[i];
        if (rate(s) > 0 && rate(raw) > 0) {
            printf("bench keystore %s %.0f sign/s ratio %.2f vs %s\n", s->name, rate(s),
                   ratio(s, raw), raw->name);
        }
    }
}

int main(void)
{
    bench_subject subjects[BENCH_COUNT] = {
        [BENCH_RAW] = {.name = "raw_openssl_sign_p256"},
        [BENCH_SOFT] = {.name = "soft_sign_p256"},
        [BENCH_SOFTHSM] = {.name = "softhsm_sign_p256"},
    };
    const char *env = getenv("TS_BENCH_SECONDS");
    const char *module = getenv("TS_SOFTHSM_MODULE");
    const char *tmp = getenv("TMPDIR");
    double seconds = env != NULL ? atof(env) : 2.0;
    char dir[4096], uri[8192];
    int failed = 0;
    int n;

    if (!(seconds > 0 && seconds <= 600)) {
        fprintf(stderr, "bench_keystore: TS_BENCH_SECONDS must be in (0, 600]\n");
        return 2;
    }
    if (module == NULL || module[0] == '\0') {
        module = BENCH_SOFTHSM_MODULE;
    }
    n = snprintf(dir, sizeof dir, "%s/tessera-bench-XXXXXX", tmp != NULL ? tmp : "/tmp");
    if (n < 0 || (size_t)n >= sizeof dir || mkdtemp(dir) == NULL || softhsm_setup(dir) != 0) {
        perror("bench_keystore: temporary directory");
        return 1;
    }

    printf("bench keystore: ECDSA P-256, SHA-256 over 32 bytes, %.1f s each "
           "(%d rounds, after %.1f s warm-up)\n",
           seconds, BENCH_ROUNDS, BENCH_WARMUP_S);
    fflush(stdout);
    subjects[BENCH_RAW].failed = setup_raw(&subjects[BENCH_RAW]) != 0;
    n = snprintf(uri, sizeof uri, "soft:%s/soft?pin-value=" BENCH_PIN, dir);
    subjects[BENCH_SOFT].failed =
        n < 0 || (size_t)n >= sizeof uri || setup_store(&subjects[BENCH_SOFT], uri, NULL) != 0;
    n = snprintf(uri, sizeof uri, "pkcs11:token=bench?module-path=%s&pin-value=" BENCH_PIN, module);
    subjects[BENCH_SOFTHSM].failed = n < 0 || (size_t)n >= sizeof uri ||
                                     setup_store(&subjects[BENCH_SOFTHSM], uri, BENCH_SO_PIN) != 0;
    /* What can be measured is, so that one broken backend does not hide the other figures. */
    if (!subjects[BENCH_RAW].failed) {
        measure(subjects, seconds);
    }
    for (int i = 0; i < BENCH_COUNT; i++) {
        failed |= rate(&subjects[i]) <= 0;
    }
    print_results(subjects);

    for (int i = 0; i < BENCH_COUNT; i++) {
        subject_free(&subjects[i]);
    }
    nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    return failed ? 1 : 0;
}
