/*
 * The trust service's server: configuration, listening sockets, the main thread's loop (signals
 * and the stop pipe), worker threads, and the log.
 *
 * Listening: each worker has its own listening socket on the same address, bound with
 * SO_REUSEPORT, so the kernel spreads new connections over the workers by their address hash.
 * One shared socket watched by every worker's loop would wake all of them for each connection,
 * and libevent's listener accepts every pending connection in one callback, so under a burst
 * (a thousand devices reconnecting) one worker would take most of them while the others idle.
 * Linux lets a socket join a reuseport group only for the same effective user, so another user
 * cannot take over the port. All sockets are bound before ts_service_new() returns.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/thread.h>
#include <openssl/crypto.h>

#include "common/error_internal.h"
#include "service/svc_core.h"

enum {
    SVC_DEFAULT_HEADER_BYTES = 8 * 1024,
    SVC_DEFAULT_BODY_BYTES = 256 * 1024,
    SVC_DEFAULT_IDLE_S = 30,
    SVC_DEFAULT_REQUEST_S = 10,
    SVC_DEFAULT_GRACE_S = 30,
    SVC_LISTEN_BACKLOG = 4096,
};

#define SVC_DEFAULT_LISTEN "127.0.0.1:8443"

uint64_t svc_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

svc_server *svc_worker_server(const svc_worker *worker)
{
    return worker->server;
}

const ts_service_config *svc_server_config(const svc_server *server)
{
    return &server->config;
}

void svc_log(svc_server *server, const char *level, const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* One line per event: a message never carries a line break into the log. */
    for (char *p = msg; *p != '\0'; p++) {
        if ((unsigned char)*p < 0x20 || *p == 0x7f) {
            *p = ' ';
        }
    }
    struct timespec ts;
    struct tm tm;
    char when[40];
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(when + n, sizeof when - n, ".%03ldZ", ts.tv_nsec / 1000000L);
    FILE *out = server != NULL && server->log != NULL ? server->log : stderr;
    if (server != NULL) {
        pthread_mutex_lock(&server->log_lock);
    }
    fprintf(out, "%s %s %s\n", when, level, msg);
    fflush(out);
    if (server != NULL) {
        pthread_mutex_unlock(&server->log_lock);
    }
}

/* --- Listening sockets ------------------------------------------------------------------------ */

/* Splits "HOST:PORT" or "[V6]:PORT". */
static ts_err parse_listen(const char *text, char host[SVC_HOST_MAX], unsigned *port)
{
    const char *colon = strrchr(text, ':');
    if (colon == NULL || colon == text || colon[1] == '\0') {
        return ts_error_set(TS_ERR_INVALID, "listen address \"%s\" is not HOST:PORT", text);
    }
    const char *h = text;
    size_t hlen = (size_t)(colon - text);
    if (h[0] == '[') {
        if (hlen < 3 || h[hlen - 1] != ']') {
            return ts_error_set(TS_ERR_INVALID, "listen address \"%s\": bad [IPv6] host", text);
        }
        h++;
        hlen -= 2;
    }
    if (hlen >= SVC_HOST_MAX) {
        return ts_error_set(TS_ERR_INVALID, "listen address \"%s\": host too long", text);
    }
    unsigned long value = 0;
    for (const char *p = colon + 1; *p != '\0'; p++) {
        if (*p < '0' || *p > '9' || value > 65535) {
            return ts_error_set(TS_ERR_INVALID, "listen address \"%s\": bad port", text);
        }
        value = value * 10 + (unsigned long)(*p - '0');
    }
    if (value > 65535) {
        return ts_error_set(TS_ERR_INVALID, "listen address \"%s\": port above 65535", text);
    }
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    *port = (unsigned)value;
    return TS_OK;
}

static ts_err listen_one(const struct addrinfo *ai, unsigned port, const char *what, int *out)
{
    struct sockaddr_storage ss;
    memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
    if (ss.ss_family == AF_INET) {
        ((struct sockaddr_in *)&ss)->sin_port = htons((uint16_t)port);
    } else {
        ((struct sockaddr_in6 *)&ss)->sin6_port = htons((uint16_t)port);
    }
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return ts_error_set(TS_ERR_IO, "%s listener: socket: %s", what, strerror(errno));
    }
    int one = 1;
    ts_err rv = TS_ERR_IO;
    /* TCP_NODELAY on the listener is inherited by every accepted socket on Linux; the workers set
     * it again on each connection. Without it a reply can wait ~40 ms for the peer's delayed ACK.
     */
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0 ||
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0) {
        rv = ts_error_set(TS_ERR_IO, "%s listener: setsockopt: %s", what, strerror(errno));
        goto out;
    }
    if (bind(fd, (struct sockaddr *)&ss, (socklen_t)ai->ai_addrlen) != 0) {
        rv = ts_error_set(TS_ERR_IO, "%s listener: cannot bind port %u: %s", what, port,
                          strerror(errno));
        goto out;
    }
    if (listen(fd, SVC_LISTEN_BACKLOG) != 0) {
        rv = ts_error_set(TS_ERR_IO, "%s listener: listen: %s", what, strerror(errno));
        goto out;
    }
    *out = fd;
    fd = -1;
    rv = TS_OK;
out:
    if (fd >= 0) {
        close(fd);
    }
    return rv;
}

/* Binds n sockets on text's address, the first on its port (0: any), the rest on the same. */
static ts_err listen_all(const char *text, const char *what, unsigned n, char host[SVC_HOST_MAX],
                         unsigned *port, int *fds)
{
    unsigned want = 0;
    ts_err rv = parse_listen(text, host, &want);
    if (rv != TS_OK) {
        return rv;
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *ai = NULL;
    int gai = getaddrinfo(host[0] != '\0' ? host : NULL, "0", &hints, &ai);
    if (gai != 0) {
        return ts_error_set(TS_ERR_INVALID, "%s listener: cannot resolve \"%s\": %s", what, host,
                            gai_strerror(gai));
    }
    for (unsigned i = 0; i < n; i++) {
        rv = listen_one(ai, want, what, &fds[i]);
        if (rv != TS_OK) {
            break;
        }
        if (i == 0) {
            struct sockaddr_storage ss;
            socklen_t len = sizeof ss;
            if (getsockname(fds[0], (struct sockaddr *)&ss, &len) != 0) {
                rv = ts_error_set(TS_ERR_IO, "%s listener: getsockname: %s", what, strerror(errno));
                break;
            }
            want = ss.ss_family == AF_INET ? ntohs(((struct sockaddr_in *)&ss)->sin_port)
                                           : ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
        }
    }
    freeaddrinfo(ai);
    *port = want;
    return rv;
}

/* --- Creating and freeing --------------------------------------------------------------------- */

static char *dup_or_null(const char *s)
{
    return s != NULL ? OPENSSL_strdup(s) : NULL;
}

static pthread_once_t evthread_once = PTHREAD_ONCE_INIT;
static int evthread_ok;

static void evthread_setup(void)
{
    evthread_ok = evthread_use_pthreads() == 0;
}

static ts_err config_copy(svc_server *s, const ts_service_config *config)
{
    s->config = *config;
    s->dir = dup_or_null(config->dir);
    s->listen = dup_or_null(config->listen != NULL ? config->listen : SVC_DEFAULT_LISTEN);
    s->http_listen = dup_or_null(config->http_listen);
    s->db_url = dup_or_null(config->db_url);
    if (s->dir == NULL || s->listen == NULL || (config->http_listen != NULL && !s->http_listen) ||
        (config->db_url != NULL && s->db_url == NULL)) {
        return ts_error_set(TS_ERR_NOMEM, "out of memory");
    }
    ts_service_config *c = &s->config;
    c->dir = s->dir;
    c->listen = s->listen;
    c->http_listen = s->http_listen;
    c->db_url = s->db_url;
    c->max_header_bytes = c->max_header_bytes ? c->max_header_bytes : SVC_DEFAULT_HEADER_BYTES;
    c->max_body_bytes = c->max_body_bytes ? c->max_body_bytes : SVC_DEFAULT_BODY_BYTES;
    c->idle_timeout_s = c->idle_timeout_s ? c->idle_timeout_s : SVC_DEFAULT_IDLE_S;
    c->request_timeout_s = c->request_timeout_s ? c->request_timeout_s : SVC_DEFAULT_REQUEST_S;
    c->shutdown_grace_s = c->shutdown_grace_s ? c->shutdown_grace_s : SVC_DEFAULT_GRACE_S;
    if (c->threads == 0) {
        /* Workers block on the database (a durable commit waits for fsync) and the key store;
         * more workers than CPUs keep the CPUs on handshakes meanwhile. Measured here with two
         * CPUs: two workers enrolled at 0.55 of the handshake rate, eight at 0.8. */
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        long n = cpus > 0 ? cpus * SVC_WORKERS_PER_CPU : SVC_WORKERS_PER_CPU;
        c->threads = (unsigned)(n < SVC_WORKERS_DEFAULT_MAX ? n : SVC_WORKERS_DEFAULT_MAX);
    }
    if (c->threads > SVC_WORKERS_MAX) {
        return ts_error_set(TS_ERR_INVALID, "at most %d worker threads", SVC_WORKERS_MAX);
    }
    if (c->max_header_bytes > (1U << 20) || c->max_body_bytes > (64U << 20)) {
        return ts_error_set(TS_ERR_INVALID,
                            "limits too large: headers at most 1 MiB, bodies at most 64 MiB");
    }
    s->log = c->log != NULL ? c->log : stderr;
    return TS_OK;
}

ts_err ts_service_new(const ts_service_config *config, ts_service **out)
{
    if (config == NULL || config->dir == NULL || out == NULL) {
        return ts_error_set(TS_ERR_INVALID, "ts_service_new: a configuration with dir is needed");
    }
    *out = NULL;
    pthread_once(&evthread_once, evthread_setup);
    if (!evthread_ok) {
        return ts_error_set(TS_ERR_BACKEND, "libevent cannot use pthreads");
    }
    svc_server *s = OPENSSL_zalloc(sizeof *s);
    if (s == NULL) {
        return ts_error_set(TS_ERR_NOMEM, "out of memory");
    }
    pthread_mutex_init(&s->log_lock, NULL);
    s->stop_pipe[0] = s->stop_pipe[1] = -1;
    ts_err rv = config_copy(s, config);
    if (rv != TS_OK) {
        goto out;
    }
    unsigned n = s->config.threads;
    s->https_fds = OPENSSL_malloc(n * sizeof(int));
    s->http_fds = OPENSSL_malloc(n * sizeof(int));
    s->workers = OPENSSL_zalloc(n * sizeof(svc_worker));
    if (s->https_fds == NULL || s->http_fds == NULL || s->workers == NULL) {
        rv = ts_error_set(TS_ERR_NOMEM, "out of memory");
        goto out;
    }
    for (unsigned i = 0; i < n; i++) {
        s->https_fds[i] = s->http_fds[i] = -1;
    }
    rv = listen_all(s->listen, "https", n, s->https_host, &s->https_port, s->https_fds);
    if (rv == TS_OK && s->http_listen != NULL) {
        rv = listen_all(s->http_listen, "http", n, s->http_host, &s->http_port, s->http_fds);
    }
    if (rv != TS_OK) {
        goto out;
    }
    if (pipe(s->stop_pipe) != 0) {
        rv = ts_error_set(TS_ERR_IO, "pipe: %s", strerror(errno));
        goto out;
    }
    for (int i = 0; i < 2; i++) {
        int fl = fcntl(s->stop_pipe[i], F_GETFL);
        if (fl < 0 || fcntl(s->stop_pipe[i], F_SETFL, fl | O_NONBLOCK) != 0 ||
            fcntl(s->stop_pipe[i], F_SETFD, FD_CLOEXEC) != 0) {
            rv = ts_error_set(TS_ERR_IO, "pipe: %s", strerror(errno));
            goto out;
        }
    }
    s->base = event_base_new();
    if (s->base == NULL) {
        rv = ts_error_set(TS_ERR_BACKEND, "cannot make an event loop");
        goto out;
    }
    rv = svc_shared_new(s);
    if (rv != TS_OK) {
        goto out;
    }
    for (unsigned i = 0; i < n; i++) {
        rv = svc_worker_init(s, i, &s->workers[i]);
        s->nworkers = i + 1;
        if (rv != TS_OK) {
            goto out;
        }
    }
    *out = (ts_service *)s;
    s = NULL;
out:
    ts_service_free((ts_service *)s);
    return rv;
}

unsigned ts_service_port(const ts_service *service, int https)
{
    const svc_server *s = (const svc_server *)service;
    if (s == NULL) {
        return 0;
    }
    return https ? s->https_port : (s->http_listen != NULL ? s->http_port : 0);
}

void ts_service_free(ts_service *service)
{
    svc_server *s = (svc_server *)service;
    if (s == NULL) {
        return;
    }
    for (unsigned i = 0; i < s->nworkers; i++) {
        svc_worker_clear(&s->workers[i]);
    }
    for (unsigned i = 0; s->https_fds != NULL && i < s->config.threads; i++) {
        if (s->https_fds[i] >= 0) {
            close(s->https_fds[i]);
        }
        if (s->http_fds != NULL && s->http_fds[i] >= 0) {
            close(s->http_fds[i]);
        }
    }
    svc_shared_free(s);
    if (s->base != NULL) {
        event_base_free(s->base);
    }
    for (int i = 0; i < 2; i++) {
        if (s->stop_pipe[i] >= 0) {
            close(s->stop_pipe[i]);
        }
    }
    OPENSSL_free(s->workers);
    OPENSSL_free(s->https_fds);
    OPENSSL_free(s->http_fds);
    OPENSSL_free(s->dir);
    OPENSSL_free(s->listen);
    OPENSSL_free(s->http_listen);
    OPENSSL_free(s->db_url);
    pthread_mutex_destroy(&s->log_lock);
    OPENSSL_free(s);
}

/* --- Running and stopping --------------------------------------------------------------------- */

void ts_service_stop(ts_service *service)
{
    svc_server *s = (svc_server *)service;
    if (s == NULL) {
        return;
    }
    /* Only async-signal-safe calls: an atomic store and write(2). A full pipe already holds a
     * wake-up, so a failed write loses nothing. */
    atomic_store(&s->stopping, 1);
    int saved = errno;
    ssize_t ignored = write(s->stop_pipe[1], "x", 1);
    (void)ignored;
    errno = saved;
}

static void begin_stop(svc_server *s, const char *why)
{
    svc_log(s, "info", "stopping (%s): finishing requests in flight, at most %u s", why,
            s->config.shutdown_grace_s);
    for (unsigned i = 0; i < s->nworkers; i++) {
        svc_worker_stop(&s->workers[i]);
    }
    event_base_loopbreak(s->base);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    begin_stop(arg, sig == SIGINT ? "SIGINT" : "SIGTERM");
}

static void on_stop_pipe(evutil_socket_t fd, short what, void *arg)
{
    char buf[16];
    while (read(fd, buf, sizeof buf) > 0) {
    }
    begin_stop(arg, "stop requested");
}

ts_err ts_service_run(ts_service *service)
{
    svc_server *s = (svc_server *)service;
    if (s == NULL) {
        return ts_error_set(TS_ERR_INVALID, "ts_service_run: no service");
    }
    /* A peer that closes while a reply is written must not kill the process. */
    signal(SIGPIPE, SIG_IGN);
    ts_err rv = TS_OK;
    struct event *sigterm = evsignal_new(s->base, SIGTERM, on_signal, s);
    struct event *sigint = evsignal_new(s->base, SIGINT, on_signal, s);
    struct event *stop = event_new(s->base, s->stop_pipe[0], EV_READ | EV_PERSIST, on_stop_pipe, s);
    if (sigterm == NULL || sigint == NULL || stop == NULL || evsignal_add(sigterm, NULL) != 0 ||
        evsignal_add(sigint, NULL) != 0 || event_add(stop, NULL) != 0) {
        rv = ts_error_set(TS_ERR_BACKEND, "cannot watch signals");
        goto out;
    }
    unsigned started = 0;
    for (; started < s->nworkers; started++) {
        svc_worker *w = &s->workers[started];
        if (pthread_create(&w->thread, NULL, svc_worker_main, w) != 0) {
            rv = ts_error_set(TS_ERR_BACKEND, "cannot start worker thread %u", started);
            break;
        }
        w->started = 1;
    }
    if (rv == TS_OK) {
        svc_log(s, "info", "serving https on port %u with %u workers", s->https_port, s->nworkers);
        if (atomic_load(&s->stopping)) {
            begin_stop(s, "stop requested");
        } else {
            event_base_dispatch(s->base);
        }
    } else {
        begin_stop(s, "start failed");
    }
    for (unsigned i = 0; i < started; i++) {
        pthread_join(s->workers[i].thread, NULL);
        s->workers[i].started = 0;
    }
    svc_log(s, "info", "stopped");
out:
    if (sigterm != NULL) {
        event_free(sigterm);
    }
    if (sigint != NULL) {
        event_free(sigint);
    }
    if (stop != NULL) {
        event_free(stop);
    }
    return rv;
}
