/*
 * bench_ocsp: OCSP responses per second from the trust service, beside the raw OpenSSL ECDSA
 * P-256 sign rate of the same run.
 *
 * A fresh instance (soft: key store, SQLite) is served by `tessera serve` on loopback with a
 * plain-HTTP listener; est_load (tests/integration/est_load.c) POSTs DER OCSP requests (RFC 6960
 * appendix A.1) for one issued certificate over kept-alive connections. Every request has the
 * certificate's status read from the store.
 *   ocsp_http           plain HTTP (how relying parties fetch an AIA OCSP URL), each request
 *                       with its own nonce: every response is signed afresh
 *   ocsp_https          the same over HTTPS
 *   ocsp_http_no_nonce  plain HTTP, requests without a nonce (RFC 5019's profile: what browsers
 *                       and TLS stacks send): a response signed for the same request within the
 *                       last minute is sent again while the status is unchanged
 * Target: ocsp_http at least 10,000 responses/s; printed, not enforced. docs/bench.md describes
 * the output.
 *
 * Environment: TS_BENCH_OCSP (requests per figure, default 50000), TS_BENCH_CONCURRENCY
 * (requests in flight, default 16), TS_BENCH_SERVE_THREADS (default: one per CPU),
 * TS_BENCH_CLIENT_THREADS (est_load's threads, default 2), TS_KEEP_TMP.
 */
#define _GNU_SOURCE
#include "bench_serve.h"

#define BENCH_GOAL 10000.0

enum { WARMUP = 2000 };

typedef struct figure {
    const char *name;
    int https;
    int nonce;
    bs_load r;
    double service_cpu; /* CPU seconds the service used meanwhile */
} figure;

/* Microseconds of CPU per response. */
static double per_response_us(const figure *f, double cpu)
{
    return f->r.ok > 0 ? cpu * 1e6 / (double)f->r.ok : 0;
}

static int run_ocsp(const bs_env *e, const bs_server *s, unsigned long n, unsigned long c,
                    unsigned long threads, figure *f)
{
    char ns[32], cs[32], ts[32];
    char *args[16];
    size_t k = 0;

    snprintf(ns, sizeof ns, "%lu", n);
    snprintf(cs, sizeof cs, "%lu", c);
    snprintf(ts, sizeof ts, "%lu", threads);
    args[k++] = "--mode";
    args[k++] = "ocsp";
    args[k++] = "-n";
    args[k++] = ns;
    args[k++] = "-c";
    args[k++] = cs;
    args[k++] = "--threads";
    args[k++] = ts;
    args[k++] = "--ocsp-issuer";
    args[k++] = (char *)e->issuing;
    args[k++] = "--ocsp-cert";
    args[k++] = (char *)e->cert;
    if (!f->nonce) {
        args[k++] = "--no-nonce";
    }
    args[k] = NULL;
    double before = bs_serve_cpu(s);
    if (bs_load_run(e, f->https ? s->https : s->http, args, &f->r) != 0) {
        return -1;
    }
    double after = bs_serve_cpu(s);
    if (before < 0 || after < 0) {
        fprintf(stderr, "bench_ocsp: cannot read the service's CPU time\n");
        return -1;
    }
    f->service_cpu = after - before;
    return 0;
}

int main(int argc, char **argv)
{
    unsigned long n = bs_env_num("TS_BENCH_OCSP", 50000);
    unsigned long c = bs_env_num("TS_BENCH_CONCURRENCY", 16);
    unsigned long serve_threads = bs_env_num("TS_BENCH_SERVE_THREADS", 0);
    unsigned long client_threads = bs_env_num("TS_BENCH_CLIENT_THREADS", 2);
    figure warm = {.name = "warm-up", .nonce = 1};
    figure figs[] = {
        {.name = "ocsp_http", .nonce = 1},
        {.name = "ocsp_https", .https = 1, .nonce = 1},
        {.name = "ocsp_http_no_nonce"},
    };
    enum { NFIGS = sizeof figs / sizeof figs[0] };
    double sign[2] = {0, 0}, verify[2] = {0, 0};
    bs_env e;
    bs_server s = {0};
    long peak = -1;
    int rv = 1;

    (void)argc;
    printf("bench_ocsp: %lu requests per figure, %lu in flight, connections kept alive\n", n, c);
    fflush(stdout);
    if (bs_setup(&e, argv[0]) != 0 || bs_raw_ecdsa(1.0, &sign[0], &verify[0]) != 0 ||
        bs_serve_start(&e, (unsigned)serve_threads, 1, &s) != 0 ||
        run_ocsp(&e, &s, WARMUP, c, client_threads, &warm) != 0) {
        goto done;
    }
    for (size_t i = 0; i < NFIGS; i++) {
        if (run_ocsp(&e, &s, n, c, client_threads, &figs[i]) != 0) {
            goto done;
        }
    }
    peak = bs_serve_peak_kb(&s);
    if (bs_serve_stop(&s) != 0) {
        fprintf(stderr, "bench_ocsp: the service did not stop cleanly\n");
        goto done;
    }
    if (bs_raw_ecdsa(1.0, &sign[1], &verify[1]) != 0) {
        goto done;
    }
    double raw_sign = (sign[0] + sign[1]) / 2;

    printf("\n%-24s %10s %10s %8s %12s %12s %12s\n", "figure", "per s", "requests", "seconds",
           "vs raw sign", "service us", "client us");
    printf("%-24s %10.0f %10s %8s %12.2f %12s %12s\n", "raw_openssl_sign_p256", raw_sign, "-", "-",
           1.0, "-", "-");
    for (size_t i = 0; i < NFIGS; i++) {
        printf("%-24s %10.0f %10lu %8.2f %12.2f %12.1f %12.1f\n", figs[i].name, figs[i].r.rate,
               figs[i].r.ok, figs[i].r.elapsed, figs[i].r.rate / raw_sign,
               per_response_us(&figs[i], figs[i].service_cpu),
               per_response_us(&figs[i], figs[i].r.cpu));
    }
    printf("\nservice peak RSS (VmHWM): %ld kB\n", peak);
    printf("target ocsp_http >= %.0f responses/s: %s (%.0f)\n\n", BENCH_GOAL,
           figs[0].r.rate >= BENCH_GOAL ? "met" : "NOT met", figs[0].r.rate);
    for (size_t i = 0; i < NFIGS; i++) {
        printf("bench ocsp %s %.0f resp/s ratio %.2f vs raw_openssl_sign_p256\n", figs[i].name,
               figs[i].r.rate, figs[i].r.rate / raw_sign);
    }
    printf("bench ocsp raw_openssl_sign_p256 %.0f sign/s\n", raw_sign);
    rv = 0;
done:
    if (bs_serve_stop(&s) != 0) {
        rv = 1;
    }
    bs_teardown(&e);
    return rv;
}
