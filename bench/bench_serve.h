/*
 * Shared by the network benchmarks (bench_enroll.c, bench_ocsp.c): a throwaway instance, the
 * trust service as a child process (`tessera serve`), the est_load client, and the raw OpenSSL
 * ECDSA P-256 rates measured in the same run. The programs tessera and est_load are taken from
 * the directory of the running benchmark (build/bin), where the build puts all three.
 *
 * Everything here is static: each benchmark includes this header once.
 */
#ifndef TS_BENCH_SERVE_H
#define TS_BENCH_SERVE_H

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "test_support.h"

enum {
    BS_PATH = 4096,
    BS_OUT = 64 * 1024, /* bytes of a child's standard output kept */
};

typedef struct bs_env {
    char bin[BS_PATH]; /* directory of tessera and est_load */
    char dir[BS_PATH]; /* the temporary directory */
    char inst[BS_PATH];
    char root[BS_PATH]; /* root CA certificate, PEM */
    char issuing[BS_PATH];
    char trust[BS_PATH]; /* the issuing CA and the root: est_load --trust-intermediates */
    char cert[BS_PATH];  /* a device (bootstrap) certificate and its key */
    char key[BS_PATH];
} bs_env;

typedef struct bs_server {
    pid_t pid;
    char https[128]; /* "https://127.0.0.1:PORT" */
    char http[128];  /* "http://127.0.0.1:PORT" with a plain listener, else empty */
    FILE *out;       /* its standard output */
} bs_server;

/* est_load's closing line: "est_load MODE ok=K errors=E elapsed=S rate=R cpu=U". */
typedef struct bs_load {
    unsigned long ok, errors;
    double elapsed, rate;
    double cpu; /* the load generator's own CPU seconds while the requests ran */
} bs_load;

static double bs_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int bs_path(char *out, const char *a, const char *b)
{
    int n = snprintf(out, BS_PATH, "%s/%s", a, b);
    return n > 0 && n < BS_PATH ? 0 : -1;
}

/*
 * Runs argv (argv[0] a path), its standard output into out (NUL-terminated, may be NULL), its
 * standard error into err_file (appended); with maxrss_kb, the child's peak RSS in kilobytes.
 * Returns the exit status, or -1.
 */
static int bs_run_rss(char *const argv[], char *out, size_t size, const char *err_file,
                      long *maxrss_kb)
{
    struct rusage ru;
    int fds[2];
    pid_t pid;
    size_t used = 0;
    int status = 0;

    if (pipe(fds) != 0) {
        return -1;
    }
    pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    if (pid == 0) {
        int err = open(err_file, O_WRONLY | O_CREAT | O_APPEND, 0600);
        int in = open("/dev/null", O_RDONLY);
        if (err < 0 || in < 0 || dup2(fds[1], 1) < 0 || dup2(err, 2) < 0 || dup2(in, 0) < 0) {
            _exit(127);
        }
        close(fds[0]);
        execv(argv[0], argv);
        _exit(127);
    }
    close(fds[1]);
    for (;;) {
        char buf[4096];
        ssize_t n = read(fds[0], buf, sizeof buf);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            break;
        }
        for (ssize_t i = 0; out != NULL && i < n && used + 1 < size; i++) {
            out[used++] = buf[i];
        }
    }
    close(fds[0]);
    if (out != NULL && size > 0) {
        out[used] = '\0';
    }
    while (wait4(pid, &status, 0, &ru) < 0) {
        if (errno != EINTR) {
            return -1;
        }
    }
    if (maxrss_kb != NULL) {
        *maxrss_kb = ru.ru_maxrss; /* Linux: kilobytes */
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static int bs_run(char *const argv[], char *out, size_t size, const char *err_file)
{
    return bs_run_rss(argv, out, size, err_file, NULL);
}

/* A P-256 key and a CSR for CN=cn, written as PEM files. */
static int bs_key_csr(const char *key_path, const char *csr_path, const char *cn)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509_REQ *req = X509_REQ_new();
    FILE *kf = fopen(key_path, "w");
    FILE *cf = fopen(csr_path, "w");
    int rv = -1;

    if (key != NULL && req != NULL && kf != NULL && cf != NULL &&
        X509_NAME_add_entry_by_txt(X509_REQ_get_subject_name(req), "CN", MBSTRING_ASC,
                                   (const unsigned char *)cn, -1, -1, 0) == 1 &&
        X509_REQ_set_pubkey(req, key) == 1 && X509_REQ_sign(req, key, EVP_sha256()) > 0 &&
        PEM_write_PrivateKey(kf, key, NULL, NULL, 0, NULL, NULL) == 1 &&
        PEM_write_X509_REQ(cf, req) == 1) {
        rv = 0;
    }
    if (kf != NULL && fclose(kf) != 0) {
        rv = -1;
    }
    if (cf != NULL && fclose(cf) != 0) {
        rv = -1;
    }
    X509_REQ_free(req);
    EVP_PKEY_free(key);
    return rv;
}

/* Runs a tessera command; on failure prints what it said. */
static int bs_tessera(const bs_env *e, char *const args[], char *out, size_t size)
{
    char tessera[BS_PATH], log[BS_PATH];
    char *argv[24];
    size_t n = 0;
    int rv;

    if (bs_path(tessera, e->bin, "tessera") != 0 || bs_path(log, e->dir, "tessera.log") != 0) {
        return -1;
    }
    argv[n++] = tessera;
    for (size_t i = 0; args[i] != NULL && n + 1 < sizeof argv / sizeof argv[0]; i++) {
        argv[n++] = args[i];
    }
    argv[n] = NULL;
    rv = bs_run(argv, out, size, log);
    if (rv != 0) {
        fprintf(stderr, "bench: tessera %s failed (exit %d); see %s\n", args[0], rv, log);
    }
    return rv == 0 ? 0 : -1;
}

/* out = a then b (PEM files). */
static int bs_concat(const char *out, const char *a, const char *b)
{
    FILE *o = fopen(out, "w");
    const char *in[2] = {a, b};
    int rv = o != NULL ? 0 : -1;

    for (size_t i = 0; rv == 0 && i < 2; i++) {
        FILE *f = fopen(in[i], "r");
        char buf[4096];
        size_t n;
        if (f == NULL) {
            rv = -1;
            break;
        }
        while ((n = fread(buf, 1, sizeof buf, f)) > 0) {
            if (fwrite(buf, 1, n, o) != n) {
                rv = -1;
            }
        }
        fclose(f);
    }
    if (o != NULL && fclose(o) != 0) {
        rv = -1;
    }
    return rv;
}

/*
 * A fresh instance in a temporary directory: tessera init with a soft: key store, the root and
 * issuing CA certificates, and a device certificate under the "device" profile (the bootstrap
 * certificate enrollments present; OCSP asks about it).
 */
static int bs_setup(bs_env *e, const char *self)
{
    char ks[BS_PATH + 64], csr[BS_PATH], out[BS_OUT];
    const char *slash;
    char *init[] = {"init",       "--dir", e->inst, "--keystore",        ks,
                    "--operator", "bench", "--url", "https://127.0.0.1", NULL};
    char *root[] = {"ca", "show", "--dir", e->inst, "--root", "--out", e->root, NULL};
    char *issuing[] = {"ca", "show", "--dir", e->inst, "--issuing", "--out", e->issuing, NULL};
    char *issue[] = {"cert",      "issue",  "--dir", e->inst, "--csr", csr,
                     "--profile", "device", "--out", e->cert, NULL};

    memset(e, 0, sizeof *e);
    slash = strrchr(self, '/');
    if (slash == NULL) {
        snprintf(e->bin, sizeof e->bin, ".");
    } else {
        snprintf(e->bin, sizeof e->bin, "%.*s", (int)(slash - self), self);
    }
    if (ts_test_tmpdir(e->dir, sizeof e->dir) != 0 || bs_path(e->inst, e->dir, "inst") != 0 ||
        bs_path(e->root, e->dir, "root.pem") != 0 ||
        bs_path(e->issuing, e->dir, "issuing.pem") != 0 ||
        bs_path(e->trust, e->dir, "trust.pem") != 0 ||
        bs_path(e->cert, e->dir, "device.pem") != 0 || bs_path(e->key, e->dir, "device.key") != 0 ||
        bs_path(csr, e->dir, "device.csr") != 0) {
        fprintf(stderr, "bench: cannot make a temporary directory\n");
        return -1;
    }
    snprintf(ks, sizeof ks, "soft:%s/ks?pin-value=bench-pin-1234", e->dir);
    if (bs_tessera(e, init, out, sizeof out) != 0 || bs_tessera(e, root, NULL, 0) != 0 ||
        bs_tessera(e, issuing, NULL, 0) != 0 || bs_key_csr(e->key, csr, "bench-bootstrap") != 0 ||
        bs_tessera(e, issue, NULL, 0) != 0 || bs_concat(e->trust, e->issuing, e->root) != 0) {
        return -1;
    }
    return 0;
}

static void bs_teardown(bs_env *e)
{
    if (e->dir[0] != '\0' && getenv("TS_KEEP_TMP") == NULL) {
        ts_test_rmtree(e->dir);
    }
}

/*
 * Starts tessera serve (threads 0: its default; http: with a plain-HTTP listener too) and waits
 * for its "listening" lines. Its standard output stays open until bs_serve_stop().
 */
static int bs_serve_start(const bs_env *e, unsigned threads, int http, bs_server *s)
{
    char tessera[BS_PATH], log[BS_PATH], nthreads[16], line[256];
    char *argv[16];
    size_t n = 0;
    int fds[2];

    memset(s, 0, sizeof *s);
    if (bs_path(tessera, e->bin, "tessera") != 0 || bs_path(log, e->dir, "serve.log") != 0 ||
        pipe(fds) != 0) {
        return -1;
    }
    snprintf(nthreads, sizeof nthreads, "%u", threads);
    argv[n++] = tessera;
    argv[n++] = "serve";
    argv[n++] = "--dir";
    argv[n++] = (char *)e->inst;
    argv[n++] = "--listen";
    argv[n++] = "127.0.0.1:0";
    if (threads > 0) {
        argv[n++] = "--threads";
        argv[n++] = nthreads;
    }
    if (http) {
        argv[n++] = "--http-listen";
        argv[n++] = "127.0.0.1:0";
    }
    argv[n] = NULL;
    s->pid = fork();
    if (s->pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    if (s->pid == 0) {
        int err = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (err < 0 || dup2(fds[1], 1) < 0 || dup2(err, 2) < 0) {
            _exit(127);
        }
        close(fds[0]);
        execv(tessera, argv);
        _exit(127);
    }
    close(fds[1]);
    s->out = fdopen(fds[0], "r");
    /* The lines come once the ports are bound; a service that fails exits and closes the pipe. */
    while (s->out != NULL && fgets(line, sizeof line, s->out) != NULL) {
        char addr[100];
        if (sscanf(line, "listening https %99s", addr) == 1) {
            snprintf(s->https, sizeof s->https, "https://%s", addr);
        } else if (sscanf(line, "listening http %99s", addr) == 1) {
            snprintf(s->http, sizeof s->http, "http://%s", addr);
        }
        if (s->https[0] != '\0' && (!http || s->http[0] != '\0')) {
            return 0;
        }
    }
    fprintf(stderr, "bench: tessera serve did not start; see %s\n", log);
    kill(s->pid, SIGKILL);
    waitpid(s->pid, NULL, 0);
    s->pid = 0;
    if (s->out != NULL) {
        fclose(s->out);
        s->out = NULL;
    }
    return -1;
}

/* The service's peak resident set (VmHWM) in kB, or -1. */
static long bs_serve_peak_kb(const bs_server *s)
{
    char path[64], line[256];
    long kb = -1;
    FILE *f;

    snprintf(path, sizeof path, "/proc/%ld/status", (long)s->pid);
    f = fopen(path, "r");
    while (f != NULL && fgets(line, sizeof line, f) != NULL) {
        if (sscanf(line, "VmHWM: %ld kB", &kb) == 1) {
            break;
        }
    }
    if (f != NULL) {
        fclose(f);
    }
    return kb;
}

/* The CPU seconds (user and system, all threads) the service has used so far, or -1. */
static double bs_serve_cpu(const bs_server *s)
{
    char path[64], text[1024];
    unsigned long long utime = 0, stime = 0;
    const char *rest;
    size_t n = 0;
    FILE *f;

    snprintf(path, sizeof path, "/proc/%ld/stat", (long)s->pid);
    f = fopen(path, "r");
    if (f != NULL) {
        n = fread(text, 1, sizeof text - 1, f);
        fclose(f);
    }
    text[n] = '\0';
    /* proc(5): after "pid (comm) " come state and eleven more fields, then utime and stime in
     * clock ticks. comm may hold spaces and parentheses, so the fields start at the last ')'. */
    rest = strrchr(text, ')');
    if (rest == NULL || sscanf(rest + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
                               &utime, &stime) != 2) {
        return -1;
    }
    return (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
}

static int bs_serve_stop(bs_server *s)
{
    int status = 0;

    if (s->pid <= 0) {
        return 0;
    }
    kill(s->pid, SIGTERM);
    while (waitpid(s->pid, &status, 0) < 0 && errno == EINTR) {
    }
    s->pid = 0;
    if (s->out != NULL) {
        fclose(s->out);
        s->out = NULL;
    }
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

/* Runs est_load with the given arguments after --url URL --cacert TRUST --trust-intermediates and
 * parses its result. */
static int bs_load_run(const bs_env *e, const char *url, char *const args[], bs_load *out)
{
    char load[BS_PATH], log[BS_PATH], text[BS_OUT];
    char *argv[40];
    size_t n = 0;
    const char *last;
    char mode[32];
    int rv;

    memset(out, 0, sizeof *out);
    if (bs_path(load, e->bin, "est_load") != 0 || bs_path(log, e->dir, "est_load.log") != 0) {
        return -1;
    }
    argv[n++] = load;
    argv[n++] = "--url";
    argv[n++] = (char *)url;
    /* The load generator shares the two cores with the service: it trusts the issuing CA
     * directly instead of verifying the root's signature on it for every connection. The service
     * still verifies the client's chain in full. */
    argv[n++] = "--cacert";
    argv[n++] = (char *)e->trust;
    argv[n++] = "--trust-intermediates";
    for (size_t i = 0; args[i] != NULL && n + 1 < sizeof argv / sizeof argv[0]; i++) {
        argv[n++] = args[i];
    }
    argv[n] = NULL;
    rv = bs_run(argv, text, sizeof text, log);
    last = strstr(text, "\nest_load ");
    if (last == NULL ||
        sscanf(last + 1, "est_load %31s ok=%lu errors=%lu elapsed=%lf rate=%lf cpu=%lf", mode,
               &out->ok, &out->errors, &out->elapsed, &out->rate, &out->cpu) != 6) {
        fprintf(stderr, "bench: est_load failed (exit %d):\n%s", rv, text);
        return -1;
    }
    if (rv != 0 || out->errors != 0) {
        fprintf(stderr, "bench: est_load had %lu errors:\n%s", out->errors, text);
        return -1;
    }
    return 0;
}

/* Raw OpenSSL ECDSA P-256 over SHA-256 of 32 bytes, in memory, one thread: sign/s and verify/s. */
static int bs_raw_ecdsa(double seconds, double *sign_rate, double *verify_rate)
{
    static const unsigned char msg[32] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    EVP_PKEY *key = EVP_EC_gen("P-256");
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned char sig[128];
    size_t sig_len = sizeof sig;
    unsigned long count = 0;
    double start, end;
    int rv = -1;

    if (key == NULL || md == NULL) {
        goto done;
    }
    start = bs_now();
    end = start + seconds;
    do {
        sig_len = sizeof sig;
        if (EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) != 1 ||
            EVP_DigestSign(md, sig, &sig_len, msg, sizeof msg) != 1) {
            goto done;
        }
        count++;
    } while ((count & 63) != 0 || bs_now() < end);
    *sign_rate = (double)count / (bs_now() - start);
    count = 0;
    start = bs_now();
    end = start + seconds;
    do {
        if (EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, key) != 1 ||
            EVP_DigestVerify(md, sig, sig_len, msg, sizeof msg) != 1) {
            goto done;
        }
        count++;
    } while ((count & 63) != 0 || bs_now() < end);
    *verify_rate = (double)count / (bs_now() - start);
    rv = 0;
done:
    EVP_MD_CTX_free(md);
    EVP_PKEY_free(key);
    if (rv != 0) {
        fprintf(stderr, "bench: the raw ECDSA loop failed\n");
    }
    return rv;
}

/* A positive whole number from the environment, or the default. */
static unsigned long bs_env_num(const char *name, unsigned long def)
{
    const char *v = getenv(name);
    char *end = NULL;
    unsigned long n = v != NULL ? strtoul(v, &end, 10) : 0;

    return v != NULL && end != v && *end == '\0' && n > 0 ? n : def;
}

#endif
