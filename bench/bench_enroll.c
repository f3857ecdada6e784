/*
 * bench_enroll: EST enrollments per second over new mutual-TLS connections, beside the
 * handshake-only rate of the same service and the raw OpenSSL ECDSA P-256 rates, in one run.
 *
 * A fresh instance (soft: key store, SQLite) is served by `tessera serve` on loopback; est_load
 * (tests/integration/est_load.c) is the client. Both figures use the same client, the same
 * concurrency and the same setup: a new TCP and TLS connection for every request (no reuse, no
 * session resumption), TCP_NODELAY, a client certificate of the tenant (the bootstrap certificate)
 * verified by the service.
 *   handshake_mtls  GET /healthz: the connection, the handshake and a trivial request
 *   enroll_mtls     POST /.well-known/est/simpleenroll: the same, plus CSR verify, policy, sign,
 *                   store and audit with a durable commit, and the certs-only reply
 * The two alternate for TS_BENCH_ROUNDS rounds (after an untimed warm-up) and each figure is its
 * requests over its time. Target: enroll_mtls at least 60% of handshake_mtls; printed, not
 * enforced. Beside each figure: the CPU time per request of the service (its /proc stat) and of
 * est_load (its own count), since the two share the machine's CPUs. docs/bench.md describes the
 * output.
 *
 * Environment: TS_BENCH_ENROLLS (requests per figure and round, default 2000),
 * TS_BENCH_CONCURRENCY (requests in flight, default 32), TS_BENCH_ROUNDS (default 2),
 * TS_BENCH_SERVE_THREADS (the service's workers, default: one per CPU), TS_BENCH_CLIENT_THREADS
 * (est_load's threads, default 2), TS_KEEP_TMP (keep the instance).
 */
#define _GNU_SOURCE
#include "bench_serve.h"

#define BENCH_GOAL 0.60

enum { WARMUP = 200 };

typedef struct figure {
    const char *name;
    unsigned long requests;
    double seconds;
    double service_cpu; /* CPU seconds the service used meanwhile */
    double client_cpu;  /* and the load generator */
} figure;

static double rate(const figure *f)
{
    return f->seconds > 0 ? (double)f->requests / f->seconds : 0;
}

/* Milliseconds of CPU per request. */
static double per_request_ms(const figure *f, double cpu)
{
    return f->requests > 0 ? cpu * 1000 / (double)f->requests : 0;
}

static int run_load(const bs_env *e, const bs_server *s, const char *mode, unsigned long n,
                    unsigned long c, unsigned long threads, figure *f)
{
    char ns[32], cs[32], ts[32];
    char *args[] = {"--mode",    (char *)mode,
                    "-n",        ns,
                    "-c",        cs,
                    "--threads", ts,
                    "--cert",    (char *)e->cert,
                    "--key",     (char *)e->key,
                    "--cn",      "bench-bootstrap",
                    NULL};
    bs_load r;
    double before, after;

    snprintf(ns, sizeof ns, "%lu", n);
    snprintf(cs, sizeof cs, "%lu", c);
    snprintf(ts, sizeof ts, "%lu", threads);
    before = bs_serve_cpu(s);
    if (bs_load_run(e, s->https, args, &r) != 0) {
        return -1;
    }
    after = bs_serve_cpu(s);
    if (before < 0 || after < 0) {
        fprintf(stderr, "bench_enroll: cannot read the service's CPU time\n");
        return -1;
    }
    if (f != NULL) {
        f->requests += r.ok;
        f->seconds += r.elapsed;
        f->service_cpu += after - before;
        f->client_cpu += r.cpu;
    }
    return 0;
}

int main(int argc, char **argv)
{
    unsigned long n = bs_env_num("TS_BENCH_ENROLLS", 2000);
    unsigned long c = bs_env_num("TS_BENCH_CONCURRENCY", 32);
    unsigned long rounds = bs_env_num("TS_BENCH_ROUNDS", 2);
    unsigned long serve_threads = bs_env_num("TS_BENCH_SERVE_THREADS", 0);
    unsigned long client_threads = bs_env_num("TS_BENCH_CLIENT_THREADS", 2);
    figure hs = {.name = "handshake_mtls"}, en = {.name = "enroll_mtls"};
    double sign[2] = {0, 0}, verify[2] = {0, 0};
    bs_env e;
    bs_server s = {0};
    long peak = -1;
    int rv = 1;

    (void)argc;
    printf("bench_enroll: %lu requests per figure and round, %lu in flight, %lu rounds, "
           "a new mutual-TLS connection each\n",
           n, c, rounds);
    fflush(stdout);
    if (bs_setup(&e, argv[0]) != 0 || bs_raw_ecdsa(1.0, &sign[0], &verify[0]) != 0 ||
        bs_serve_start(&e, (unsigned)serve_threads, 0, &s) != 0) {
        goto done;
    }
    /* Untimed: the workers open their key stores, caches warm up. */
    if (run_load(&e, &s, "handshake", WARMUP, c, client_threads, NULL) != 0 ||
        run_load(&e, &s, "enroll", WARMUP, c, client_threads, NULL) != 0) {
        goto done;
    }
    for (unsigned long i = 0; i < rounds; i++) {
        if (run_load(&e, &s, "handshake", n, c, client_threads, &hs) != 0 ||
            run_load(&e, &s, "enroll", n, c, client_threads, &en) != 0) {
            goto done;
        }
    }
    peak = bs_serve_peak_kb(&s);
    if (bs_serve_stop(&s) != 0) {
        fprintf(stderr, "bench_enroll: the service did not stop cleanly\n");
        goto done;
    }
    if (bs_raw_ecdsa(1.0, &sign[1], &verify[1]) != 0) {
        goto done;
    }
    double raw_sign = (sign[0] + sign[1]) / 2, raw_verify = (verify[0] + verify[1]) / 2;
    double ratio = rate(&hs) > 0 ? rate(&en) / rate(&hs) : 0;

    printf("\n%-26s %10s %10s %8s %14s %12s %12s\n", "figure", "per s", "requests", "seconds",
           "vs handshake", "service ms", "client ms");
    printf("%-26s %10.0f %10s %8s %14s %12s %12s\n", "raw_openssl_sign_p256", raw_sign, "-", "-",
           "-", "-", "-");
    printf("%-26s %10.0f %10s %8s %14s %12s %12s\n", "raw_openssl_verify_p256", raw_verify, "-",
           "-", "-", "-", "-");
    printf("%-26s %10.0f %10lu %8.2f %14.2f %12.3f %12.3f\n", hs.name, rate(&hs), hs.requests,
           hs.seconds, 1.0, per_request_ms(&hs, hs.service_cpu),
           per_request_ms(&hs, hs.client_cpu));
    printf("%-26s %10.0f %10lu %8.2f %14.2f %12.3f %12.3f\n", en.name, rate(&en), en.requests,
           en.seconds, ratio, per_request_ms(&en, en.service_cpu),
           per_request_ms(&en, en.client_cpu));
    printf("\nservice peak RSS (VmHWM): %ld kB\n", peak);
    printf("target %s >= %.2f x %s: %s (%.2f)\n\n", en.name, BENCH_GOAL, hs.name,
           ratio >= BENCH_GOAL ? "met" : "NOT met", ratio);
    printf("bench enroll %s %.0f enroll/s ratio %.2f vs %s\n", en.name, rate(&en), ratio, hs.name);
    printf("bench enroll %s %.0f handshake/s\n", hs.name, rate(&hs));
    printf("bench enroll %s service_cpu %.3f ms/enroll client_cpu %.3f ms/enroll\n", en.name,
           per_request_ms(&en, en.service_cpu), per_request_ms(&en, en.client_cpu));
    printf("bench enroll %s service_cpu %.3f ms/handshake client_cpu %.3f ms/handshake\n", hs.name,
           per_request_ms(&hs, hs.service_cpu), per_request_ms(&hs, hs.client_cpu));
    printf("bench enroll raw_openssl_sign_p256 %.0f sign/s\n", raw_sign);
    printf("bench enroll raw_openssl_verify_p256 %.0f verify/s\n", raw_verify);
    rv = 0;
done:
    if (bs_serve_stop(&s) != 0) {
        rv = 1;
    }
    bs_teardown(&e);
    return rv;
}
