/*
 * est_load: a load client for the trust service, for the load tests and bench/run enroll|ocsp.
 *
 *   est_load --url https://HOST:PORT --cacert ROOT.pem [--mode enroll|handshake|ocsp]
 *            [-n N] [-c C] [--threads T] [--cert CERT.pem --key KEY.pem] [--claim CODE]
 *            [--tenant T] [--prefix P | --cn NAME] [--serials FILE] [--timeout S]
 *            [--ocsp-issuer ISSUER.pem --ocsp-cert CERT.pem [--no-nonce]] [--trust-intermediates]
 *
 * enroll:    N EST simpleenroll requests (RFC 7030 section 4.2.1), each for its own P-256 key and
 *            CSR (CN=<prefix>-<i>, or CN=NAME for all with --cn), made in memory before the clock
 *            starts. A client certificate may enroll only its own device, so with --cert the CSRs
 *            carry its CN (--cn); with --claim each CSR may name a new device.
 * handshake: N GET /healthz, with the same TLS setup: what the connections alone cost.
 * ocsp:      N POST /ocsp (RFC 6960 appendix A.1) for --ocsp-cert, each with its own nonce unless
 *            --no-nonce; connections are kept alive (the URL may be the plain-HTTP listener).
 *
 * enroll and handshake open a NEW TLS connection for every request (no reuse, no TLS session
 * resumption), with TCP_NODELAY, authenticating with the client certificate (--cert/--key, e.g.
 * a bootstrap certificate) and/or HTTP Basic with a claim code as the password (--claim). C
 * requests are in flight at once (libcurl multi), spread over T threads. The trust anchors (every
 * certificate in --cacert) and the client's key and certificate are parsed once and handed to
 * every connection. --trust-intermediates lets a CA certificate of --cacert that is not a root
 * end the server's chain (OpenSSL's partial-chain flag): the load generator, which shares the
 * machine with the service, then skips re-verifying the root's signature on the issuing CA for
 * every connection.
 *
 * It prints the counts, errors (the first few reasons), elapsed time and rate, and last a line
 * scripts parse:
 *   est_load MODE ok=K errors=E elapsed=S rate=R cpu=U
 * where U is the CPU time (user and system, in seconds) the load generator itself used while the
 * requests ran: on a machine it shares with the service, what it takes is lost to the service.
 * --serials writes the serial (upper-case hex) of every certificate RECEIVED, one per line, as
 * parsed from the certs-only reply. Exit status: 0 when every request succeeded, 1 otherwise,
 * 2 for bad usage.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <curl/curl.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "est_load_codec.h"

enum {
    REPLY_MAX = 256 * 1024, /* bytes of one reply kept */
    REASONS_MAX = 5,        /* distinct error reasons printed */
    THREADS_MAX = 16,
    REASON_LEN = 200,
};

typedef enum load_mode { MODE_ENROLL, MODE_HANDSHAKE, MODE_OCSP } load_mode;

typedef struct load_opts {
    const char *url, *cacert, *cert, *key, *claim, *tenant, *prefix, *cn, *serials;
    const char *ocsp_issuer, *ocsp_cert;
    load_mode mode;
    size_t n, c, threads;
    long timeout;
    int nonce;
    int trust_intermediates;
} load_opts;

typedef struct load_shared {
    const load_opts *o;
    char target[2048];
    body *bodies;
    X509_STORE *store; /* --cacert, parsed once */
    X509 *cert;
    STACK_OF(X509) * chain;
    EVP_PKEY *key;
    struct curl_slist *headers; /* of every POST */
    pthread_mutex_t lock;
    FILE *serials;
    size_t ok, errors;
    char reasons[REASONS_MAX][REASON_LEN];
    size_t nreasons;
} load_shared;

typedef struct job {
    CURL *easy;
    size_t index;
    char *reply;
    size_t len;
    int truncated;
    char errbuf[CURL_ERROR_SIZE];
} job;

typedef struct load_thread {
    load_shared *sh;
    size_t first, count, conc;
    pthread_t tid;
} load_thread;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* CPU seconds (user and system) of the whole process so far. */
static double cpu_s(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) {
        return 0;
    }
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: est_load --url URL --cacert ROOT.pem [--mode enroll|handshake|ocsp] [-n N] "
            "[-c C]\n"
            "                [--threads T] [--cert CERT.pem --key KEY.pem] [--claim CODE] "
            "[--tenant T]\n"
            "                [--prefix P | --cn NAME] [--serials FILE] [--timeout S]\n"
            "                [--ocsp-issuer ISSUER.pem --ocsp-cert CERT.pem [--no-nonce]]\n"
            "                [--trust-intermediates]\n");
}

static void note_error(load_shared *sh, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Counts a failed request and keeps the first few distinct reasons. */
static void note_error(load_shared *sh, const char *fmt, ...)
{
    char text[REASON_LEN];
    va_list ap;
    size_t i;

    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&sh->lock);
    sh->errors++;
    for (i = 0; i < sh->nreasons && strcmp(sh->reasons[i], text) != 0; i++) {
    }
    if (i == sh->nreasons && sh->nreasons < REASONS_MAX) {
        snprintf(sh->reasons[sh->nreasons++], REASON_LEN, "%s", text);
    }
    pthread_mutex_unlock(&sh->lock);
}

/* --- Request bodies ----------------------------------------------------------------------------
 */

static int make_bodies(load_shared *sh)
{
    const load_opts *o = sh->o;
    X509 *issuer = NULL, *cert = NULL;
    int rv = 0;

    sh->bodies = OPENSSL_zalloc(o->n * sizeof *sh->bodies);
    if (sh->bodies == NULL) {
        return -1;
    }
    if (o->mode == MODE_OCSP) {
        issuer = read_cert(o->ocsp_issuer);
        cert = read_cert(o->ocsp_cert);
        rv = issuer != NULL && cert != NULL ? 0 : -1;
    }
    for (size_t i = 0; rv == 0 && i < o->n; i++) {
        if (o->cn != NULL) {
            snprintf(sh->bodies[i].cn, sizeof sh->bodies[i].cn, "%s", o->cn);
        } else {
            snprintf(sh->bodies[i].cn, sizeof sh->bodies[i].cn, "%s-%zu", o->prefix, i);
        }
        if (o->mode == MODE_ENROLL) {
            rv = make_csr(sh->bodies[i].cn, &sh->bodies[i]);
        } else if (o->mode == MODE_OCSP) {
            rv = make_ocsp(issuer, cert, o->nonce, &sh->bodies[i]);
        }
    }
    X509_free(issuer);
    X509_free(cert);
    if (rv != 0) {
        fprintf(stderr, "est_load: cannot make the request bodies\n");
        ERR_print_errors_fp(stderr);
    }
    return rv;
}

/* --- Replies -----------------------------------------------------------------------------------
 */

static size_t on_data(char *data, size_t size, size_t nmemb, void *arg)
{
    job *j = arg;
    size_t n = size * nmemb;

    if (j->len + n > REPLY_MAX) {
        j->truncated = 1;
        return n;
    }
    char *grown = OPENSSL_realloc(j->reply, j->len + n + 1);
    if (grown == NULL) {
        return 0;
    }
    memcpy(grown + j->len, data, n);
    j->reply = grown;
    j->len += n;
    j->reply[j->len] = '\0';
    return n;
}

/* Writes the serial of the certificate an enrollment received. */
static int check_enroll(load_shared *sh, const job *j)
{
    char hex[TS_SERIAL_HEX];

    if (certs_only_serial(j->reply, j->len, hex) != 0) {
        return -1;
    }
    if (sh->serials != NULL) {
        /* Flushed at once: a test kills the service and reads the file while this runs. */
        pthread_mutex_lock(&sh->lock);
        fprintf(sh->serials, "%s\n", hex);
        fflush(sh->serials);
        pthread_mutex_unlock(&sh->lock);
    }
    return 0;
}

static void finish(load_shared *sh, job *j, CURLcode res)
{
    long status = 0;

    curl_easy_getinfo(j->easy, CURLINFO_RESPONSE_CODE, &status);
    if (res != CURLE_OK) {
        note_error(sh, "transfer: %s", j->errbuf[0] ? j->errbuf : curl_easy_strerror(res));
    } else if (status != 200) {
        note_error(sh, "HTTP status %ld", status);
    } else if (j->truncated) {
        note_error(sh, "a reply over %d bytes", REPLY_MAX);
    } else if (sh->o->mode == MODE_ENROLL && check_enroll(sh, j) != 0) {
        note_error(sh, "the reply is not a certs-only CMS with a certificate");
    } else if (sh->o->mode == MODE_OCSP && ocsp_successful(j->reply, j->len) != 0) {
        note_error(sh, "the reply is not a successful OCSP response");
    } else {
        pthread_mutex_lock(&sh->lock);
        sh->ok++;
        pthread_mutex_unlock(&sh->lock);
    }
}

/* --- Connections -------------------------------------------------------------------------------
 */

/*
 * Every connection gets the trust store, client key and certificate parsed once, instead of
 * libcurl reading and decoding the files for each new connection.
 */
static CURLcode on_ssl_ctx(CURL *curl, void *ssl_ctx, void *arg)
{
    load_shared *sh = arg;
    SSL_CTX *ctx = ssl_ctx;

    (void)curl;
    SSL_CTX_set1_cert_store(ctx, sh->store);
    if (sh->cert == NULL) {
        return CURLE_OK;
    }
    if (SSL_CTX_use_certificate(ctx, sh->cert) != 1 || SSL_CTX_use_PrivateKey(ctx, sh->key) != 1 ||
        (sh->chain != NULL && SSL_CTX_set1_chain(ctx, sh->chain) != 1)) {
        return CURLE_SSL_CERTPROBLEM;
    }
    return CURLE_OK;
}

static int job_start(load_shared *sh, CURLM *multi, job *j, size_t index)
{
    const load_opts *o = sh->o;
    const body *b = &sh->bodies[index];
    j->index = index;
    j->len = 0;
    j->truncated = 0;
    j->errbuf[0] = '\0';
    if (j->easy == NULL) {
        j->easy = curl_easy_init();
        if (j->easy == NULL) {
            return -1;
        }
        curl_easy_setopt(j->easy, CURLOPT_URL, sh->target);
        curl_easy_setopt(j->easy, CURLOPT_WRITEFUNCTION, on_data);
        curl_easy_setopt(j->easy, CURLOPT_WRITEDATA, j);
        curl_easy_setopt(j->easy, CURLOPT_PRIVATE, (void *)j);
        curl_easy_setopt(j->easy, CURLOPT_ERRORBUFFER, j->errbuf);
        curl_easy_setopt(j->easy, CURLOPT_TCP_NODELAY, 1L);
        curl_easy_setopt(j->easy, CURLOPT_TIMEOUT, o->timeout);
        curl_easy_setopt(j->easy, CURLOPT_NOSIGNAL, 1L);
        /* The trust store comes from on_ssl_ctx(); libcurl loads none of its own. */
        curl_easy_setopt(j->easy, CURLOPT_CAINFO, NULL);
        curl_easy_setopt(j->easy, CURLOPT_CAPATH, NULL);
        curl_easy_setopt(j->easy, CURLOPT_SSL_CTX_FUNCTION, on_ssl_ctx);
        curl_easy_setopt(j->easy, CURLOPT_SSL_CTX_DATA, sh);
        if (o->mode != MODE_OCSP) {
            /* A new TCP and TLS connection, with a full handshake, for every request. */
            curl_easy_setopt(j->easy, CURLOPT_FRESH_CONNECT, 1L);
            curl_easy_setopt(j->easy, CURLOPT_FORBID_REUSE, 1L);
            curl_easy_setopt(j->easy, CURLOPT_SSL_SESSIONID_CACHE, 0L);
        }
        if (o->claim != NULL) {
            curl_easy_setopt(j->easy, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
            curl_easy_setopt(j->easy, CURLOPT_PASSWORD, o->claim);
        }
    }
    if (o->mode == MODE_HANDSHAKE) {
        curl_easy_setopt(j->easy, CURLOPT_HTTPGET, 1L);
    } else {
        curl_easy_setopt(j->easy, CURLOPT_HTTPHEADER, sh->headers);
        curl_easy_setopt(j->easy, CURLOPT_POSTFIELDS, b->data);
        curl_easy_setopt(j->easy, CURLOPT_POSTFIELDSIZE, (long)b->len);
    }
    if (o->claim != NULL) {
        curl_easy_setopt(j->easy, CURLOPT_USERNAME, b->cn);
    }
    return curl_multi_add_handle(multi, j->easy) == CURLM_OK ? 0 : -1;
}

static void *run_thread(void *arg)
{
    load_thread *t = arg;
    load_shared *sh = t->sh;
    CURLM *multi = curl_multi_init();
    job *jobs = OPENSSL_zalloc(t->conc * sizeof *jobs);
    size_t next = 0, active = 0;
    int running = 0;

    if (multi == NULL || jobs == NULL) {
        note_error(sh, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < t->conc && next < t->count; i++, next++) {
        if (job_start(sh, multi, &jobs[i], t->first + next) != 0) {
            note_error(sh, "cannot start a request");
            continue;
        }
        active++;
    }
    while (active > 0) {
        CURLMsg *msg;
        int left = 0;
        curl_multi_perform(multi, &running);
        while ((msg = curl_multi_info_read(multi, &left)) != NULL) {
            job *j = NULL;
            if (msg->msg != CURLMSG_DONE) {
                continue;
            }
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&j);
            finish(sh, j, msg->data.result);
            curl_multi_remove_handle(multi, j->easy);
            active--;
            if (next < t->count) {
                if (job_start(sh, multi, j, t->first + next++) == 0) {
                    active++;
                } else {
                    note_error(sh, "cannot start a request");
                }
            }
        }
        if (active > 0) {
            curl_multi_poll(multi, NULL, 0, 100, NULL);
        }
    }
done:
    for (size_t i = 0; jobs != NULL && i < t->conc; i++) {
        curl_easy_cleanup(jobs[i].easy);
        OPENSSL_free(jobs[i].reply);
    }
    OPENSSL_free(jobs);
    curl_multi_cleanup(multi);
    return NULL;
}

/* --- Set-up and report -------------------------------------------------------------------------
 */

static int parse_size(const char *text, size_t *out)
{
    char *end = NULL;
    unsigned long long v = strtoull(text, &end, 10);

    if (text[0] < '0' || text[0] > '9' || *end != '\0' || v == 0 || v > 100000000ULL) {
        return -1;
    }
    *out = (size_t)v;
    return 0;
}

static int parse_args(int argc, char **argv, load_opts *o)
{
    o->mode = MODE_ENROLL;
    o->n = 100;
    o->c = 10;
    o->threads = 1;
    o->timeout = 120;
    o->nonce = 1;
    o->prefix = "load";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        size_t n = 0;
        if (strcmp(a, "--no-nonce") == 0) {
            o->nonce = 0;
            continue;
        }
        if (strcmp(a, "--trust-intermediates") == 0) {
            o->trust_intermediates = 1;
            continue;
        }
        if (v == NULL) {
            return -1;
        }
        i++;
        if (strcmp(a, "--url") == 0) {
            o->url = v;
        } else if (strcmp(a, "--cacert") == 0) {
            o->cacert = v;
        } else if (strcmp(a, "--cert") == 0) {
            o->cert = v;
        } else if (strcmp(a, "--key") == 0) {
            o->key = v;
        } else if (strcmp(a, "--claim") == 0) {
            o->claim = v;
        } else if (strcmp(a, "--tenant") == 0) {
            o->tenant = v;
        } else if (strcmp(a, "--prefix") == 0) {
            o->prefix = v;
        } else if (strcmp(a, "--cn") == 0) {
            o->cn = v;
        } else if (strcmp(a, "--serials") == 0) {
            o->serials = v;
        } else if (strcmp(a, "--ocsp-issuer") == 0) {
            o->ocsp_issuer = v;
        } else if (strcmp(a, "--ocsp-cert") == 0) {
            o->ocsp_cert = v;
        } else if (strcmp(a, "--mode") == 0) {
            if (strcmp(v, "enroll") == 0) {
                o->mode = MODE_ENROLL;
            } else if (strcmp(v, "handshake") == 0) {
                o->mode = MODE_HANDSHAKE;
            } else if (strcmp(v, "ocsp") == 0) {
                o->mode = MODE_OCSP;
            } else {
                return -1;
            }
        } else if (strcmp(a, "-n") == 0 && parse_size(v, &n) == 0) {
            o->n = n;
        } else if (strcmp(a, "-c") == 0 && parse_size(v, &n) == 0) {
            o->c = n;
        } else if (strcmp(a, "--threads") == 0 && parse_size(v, &n) == 0 && n <= THREADS_MAX) {
            o->threads = n;
        } else if (strcmp(a, "--timeout") == 0 && parse_size(v, &n) == 0) {
            o->timeout = (long)n;
        } else {
            return -1;
        }
    }
    if (o->url == NULL || o->cacert == NULL || (o->cert == NULL) != (o->key == NULL) ||
        (o->mode == MODE_OCSP && (o->ocsp_issuer == NULL || o->ocsp_cert == NULL))) {
        return -1;
    }
    o->c = o->c < o->n ? o->c : o->n;
    o->threads = o->threads < o->c ? o->threads : o->c;
    return 0;
}

/* The client certificate (and any chain after it) and key, parsed once. */
static int load_identity(load_shared *sh)
{
    const load_opts *o = sh->o;
    FILE *f;
    X509 *extra;

    if (o->cert == NULL) {
        return 0;
    }
    f = fopen(o->cert, "r");
    sh->cert = f != NULL ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
    sh->chain = sh->cert != NULL ? sk_X509_new_null() : NULL;
    while (sh->chain != NULL && (extra = PEM_read_X509(f, NULL, NULL, NULL)) != NULL) {
        sk_X509_push(sh->chain, extra);
    }
    ERR_clear_error();
    if (f != NULL) {
        fclose(f);
    }
    f = fopen(o->key, "r");
    sh->key = f != NULL ? PEM_read_PrivateKey(f, NULL, NULL, NULL) : NULL;
    if (f != NULL) {
        fclose(f);
    }
    if (sh->cert == NULL || sh->key == NULL || X509_check_private_key(sh->cert, sh->key) != 1) {
        fprintf(stderr, "est_load: cannot use %s and %s as the client certificate and key\n",
                o->cert, o->key);
        return -1;
    }
    if (sk_X509_num(sh->chain) == 0) {
        sk_X509_free(sh->chain);
        sh->chain = NULL;
    }
    return 0;
}

/* The trust anchors: every certificate in --cacert. */
static int load_store(load_shared *sh)
{
    sh->store = X509_STORE_new();
    if (sh->store == NULL || X509_STORE_load_file(sh->store, sh->o->cacert) != 1) {
        fprintf(stderr, "est_load: cannot read the CA certificates in %s\n", sh->o->cacert);
        ERR_print_errors_fp(stderr);
        return -1;
    }
    /* An intermediate in the file may end the chain, so the client does not verify the root's
     * signature on it for every connection. */
    if (sh->o->trust_intermediates &&
        X509_STORE_set_flags(sh->store, X509_V_FLAG_PARTIAL_CHAIN) != 1) {
        return -1;
    }
    return 0;
}

static int set_up(load_shared *sh)
{
    const load_opts *o = sh->o;
    static const char *const names[] = {"enroll", "handshake", "ocsp"};
    size_t ulen = strlen(o->url);

    while (ulen > 0 && o->url[ulen - 1] == '/') {
        ulen--;
    }
    if (o->mode == MODE_ENROLL) {
        snprintf(sh->target, sizeof sh->target, "%.*s/.well-known/est%s%s/simpleenroll", (int)ulen,
                 o->url, o->tenant != NULL ? "/" : "", o->tenant != NULL ? o->tenant : "");
        sh->headers = curl_slist_append(NULL, "Content-Type: application/pkcs10");
        sh->headers = curl_slist_append(sh->headers, "Content-Transfer-Encoding: base64");
    } else if (o->mode == MODE_HANDSHAKE) {
        snprintf(sh->target, sizeof sh->target, "%.*s/healthz", (int)ulen, o->url);
    } else {
        snprintf(sh->target, sizeof sh->target, "%.*s/ocsp", (int)ulen, o->url);
        sh->headers = curl_slist_append(NULL, "Content-Type: application/ocsp-request");
    }
    if (o->mode != MODE_HANDSHAKE) {
        sh->headers = curl_slist_append(sh->headers, "Expect:");
    }
    if (o->serials != NULL) {
        sh->serials = fopen(o->serials, "w");
        if (sh->serials == NULL) {
            fprintf(stderr, "est_load: cannot write %s\n", o->serials);
            return -1;
        }
    }
    printf("est_load: %s %s, %zu requests, %zu at once over %zu thread(s), %s\n", names[o->mode],
           sh->target, o->n, o->c, o->threads,
           o->mode == MODE_OCSP ? "connections kept alive" : "a new TLS connection each");
    fflush(stdout);
    return load_store(sh) == 0 && load_identity(sh) == 0 && make_bodies(sh) == 0 ? 0 : -1;
}

static void tear_down(load_shared *sh)
{
    for (size_t i = 0; sh->bodies != NULL && i < sh->o->n; i++) {
        OPENSSL_free(sh->bodies[i].data);
    }
    OPENSSL_free(sh->bodies);
    X509_STORE_free(sh->store);
    X509_free(sh->cert);
    sk_X509_pop_free(sh->chain, X509_free);
    EVP_PKEY_free(sh->key);
    curl_slist_free_all(sh->headers);
    if (sh->serials != NULL && fclose(sh->serials) != 0) {
        fprintf(stderr, "est_load: cannot write %s\n", sh->o->serials);
        sh->errors++;
    }
}

int main(int argc, char **argv)
{
    static const char *const names[] = {"enroll", "handshake", "ocsp"};
    load_opts o;
    load_shared sh;
    load_thread threads[THREADS_MAX];
    double start, elapsed, cpu;
    size_t first = 0;

    memset(&o, 0, sizeof o);
    memset(&sh, 0, sizeof sh);
    if (parse_args(argc, argv, &o) != 0) {
        usage();
        return 2;
    }
    sh.o = &o;
    pthread_mutex_init(&sh.lock, NULL);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK || set_up(&sh) != 0) {
        tear_down(&sh);
        return 1;
    }
    start = now_s();
    cpu = cpu_s();
    for (size_t i = 0; i < o.threads; i++) {
        load_thread *t = &threads[i];
        t->sh = &sh;
        t->first = first;
        t->count = o.n / o.threads + (i < o.n % o.threads ? 1 : 0);
        t->conc = o.c / o.threads + (i < o.c % o.threads ? 1 : 0);
        first += t->count;
        if (pthread_create(&t->tid, NULL, run_thread, t) != 0) {
            fprintf(stderr, "est_load: cannot start a thread\n");
            return 1;
        }
    }
    for (size_t i = 0; i < o.threads; i++) {
        pthread_join(threads[i].tid, NULL);
    }
    elapsed = now_s() - start;
    cpu = cpu_s() - cpu;
    tear_down(&sh);
    curl_global_cleanup();
    printf("requests %zu ok %zu errors %zu elapsed %.3f s rate %.1f /s\n", o.n, sh.ok, sh.errors,
           elapsed, (double)sh.ok / elapsed);
    for (size_t i = 0; i < sh.nreasons; i++) {
        printf("error: %s\n", sh.reasons[i]);
    }
    printf("est_load %s ok=%zu errors=%zu elapsed=%.3f rate=%.1f cpu=%.3f\n", names[o.mode], sh.ok,
           sh.errors, elapsed, (double)sh.ok / elapsed, cpu);
    pthread_mutex_destroy(&sh.lock);
    return sh.errors == 0 && sh.ok == o.n ? 0 : 1;
}
