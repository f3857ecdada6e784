/*
 * The server and its workers, as svc_server.c, svc_worker.c and svc_shared.c see them. Handlers
 * never include this: they reach what they need through svc_internal.h.
 *
 * Threads: the main thread owns the server (listeners bound in ts_service_new, signals and the
 * stop pipe watched by its own event loop in ts_service_run). Each worker thread owns its
 * svc_worker: event loop, evhttp objects, ts_ca, SSL_CTX and connections; nothing of a worker is
 * touched by another thread except through event_active() on its stop event. What the workers
 * share (the log, the claim-code limiter, the CRL cache, metrics) is locked or atomic.
 */
#ifndef TS_SVC_CORE_H
#define TS_SVC_CORE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include <event2/event.h>
#include <event2/http.h>
#include <openssl/ssl.h>

#include "service/svc_internal.h"

enum {
    SVC_HOST_MAX = 256,
};

/* A connection the worker tracks, for the request-time limit and graceful shutdown. */
typedef enum svc_conn_state {
    SVC_CONN_HANDSHAKE = 1, /* TLS handshake under way; the request timer runs */
    SVC_CONN_IDLE = 2,      /* between requests; libevent's idle timeout applies */
    SVC_CONN_READING = 3,   /* part of a request arrived; the request timer runs */
    SVC_CONN_BUSY = 4,      /* a request is being handled */
} svc_conn_state;

typedef struct svc_conn {
    svc_worker *worker;
    struct bufferevent *bev;
    struct event *timer; /* the request-time limit */
    svc_conn_state state;
    int https;
    int closing; /* asked to close; waiting for libevent to free it */
    struct svc_conn *prev, *next;
} svc_conn;

struct svc_worker {
    svc_server *server;
    unsigned index;
    pthread_t thread;
    int started;
    struct event_base *base;
    struct evhttp *https; /* TLS listener's server */
    struct evhttp *http;  /* plain-HTTP listener's server; NULL when none */
    struct evhttp_bound_socket *https_bound, *http_bound;
    ts_ca *ca;
    SSL_CTX *ssl_ctx;
    uint64_t tls_checked_ns; /* when the trust store was last compared with the instance */
    struct event *stop_ev;   /* made active by the main thread to start draining */
    struct event *drain_ev;  /* periodic while draining */
    struct event *grace_ev;  /* ends draining after shutdown_grace_s */
    int draining;
    int finished;
    svc_conn *conns; /* every tracked connection */
    size_t nconns;
};

typedef struct svc_claims svc_claims;
typedef struct svc_crl_cache svc_crl_cache;

struct svc_server {
    ts_service_config config;
    char *dir, *listen, *http_listen, *db_url; /* owned copies behind config */
    char https_host[SVC_HOST_MAX];
    char http_host[SVC_HOST_MAX];
    unsigned https_port, http_port;
    int *https_fds, *http_fds; /* one listening socket per worker (SO_REUSEPORT) */
    svc_worker *workers;
    unsigned nworkers;

    struct event_base *base; /* the main thread's loop: signals and the stop pipe */
    int stop_pipe[2];
    atomic_int stopping;

    pthread_mutex_t log_lock;
    FILE *log;

    svc_claims *claims;
    svc_crl_cache *crls;
};

/* --- svc_worker.c ----------------------------------------------------------------------------- */

/* Builds worker index of server: its instance handle, TLS context, loop and HTTP servers on the
 * listening sockets server->https_fds[index] (and http_fds). */
ts_err svc_worker_init(svc_server *server, unsigned index, svc_worker *w);
/* Frees what svc_worker_init made (the thread must have ended). */
void svc_worker_clear(svc_worker *w);
/* The worker thread's body. */
void *svc_worker_main(void *arg);
/* Asks the worker to drain and stop; any thread. */
void svc_worker_stop(svc_worker *w);

/* The router calls these around a request: the request was read completely (stops the request
 * timer), and a reply was sent (the connection is idle again). NULL-safe. */
svc_conn *svc_conn_of(svc_worker *w, struct evhttp_request *req);
void svc_conn_request_done(svc_conn *conn);
/* Nonzero when the worker is draining: replies carry "Connection: close". */
int svc_worker_draining(const svc_worker *w);
/* The worker's TLS context, refreshed at most once a second when the instance's CAs changed. */
void svc_worker_tls_check(svc_worker *w);

/* --- svc_shared.c ----------------------------------------------------------------------------- */

ts_err svc_shared_new(svc_server *server);
void svc_shared_free(svc_server *server);

/* --- svc_metrics.c ---------------------------------------------------------------------------- */

/* Open connections, a gauge: +1 when one is tracked, -1 when it goes. */
void svc_metrics_connections(int delta);

#endif
