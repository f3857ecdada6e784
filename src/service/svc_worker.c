/*
 * A worker thread: its event loop, its HTTP servers (HTTPS and the optional plain-HTTP one) on
 * its own listening sockets, its instance handle and TLS context, and the connections it serves.
 *
 * Time limits. libevent's own timeout (evhttp_set_timeout, our idle timeout) is per read: a
 * client that drips one header byte a second would keep a connection forever. So every tracked
 * connection has a timer of its own that runs while a TLS handshake or a request is being read
 * and closes the connection when request_timeout_s passes before the request is complete.
 *
 * Tracking. A TLS connection is tracked from the moment its bufferevent is made: its record hangs
 * off the SSL object (ex_data) and is freed with it, whenever libevent frees the connection. A
 * plain-HTTP connection is tracked from its first byte, when libevent's connection object exists,
 * and freed by that object's close callback. Connections that never sent a byte cost nothing and
 * are closed by the idle timeout.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/crypto.h>

#include "common/error_internal.h"
#include "service/svc_core.h"

enum {
    SVC_DRAIN_TICK_MS = 50,
    SVC_TLS_CHECK_NS = 1000000000, /* compare the trust store with the instance at most 1/s */
};

static int conn_index = -1;
/* The worker whose loop runs on this thread (each worker thread runs only its own loop). */
static _Thread_local svc_worker *current_worker;
static pthread_once_t conn_index_once = PTHREAD_ONCE_INIT;

static void conn_link(svc_worker *w, svc_conn *c)
{
    c->next = w->conns;
    if (w->conns != NULL) {
        w->conns->prev = c;
    }
    w->conns = c;
    w->nconns++;
    svc_metrics_connections(1);
}

static void conn_free(svc_conn *c)
{
    svc_worker *w = c->worker;
    if (c->prev != NULL) {
        c->prev->next = c->next;
    } else {
        w->conns = c->next;
    }
    if (c->next != NULL) {
        c->next->prev = c->prev;
    }
    w->nconns--;
    svc_metrics_connections(-1);
    if (c->timer != NULL) {
        event_free(c->timer);
    }
    OPENSSL_free(c);
}

/* The SSL object's ex_data destructor: the TLS connection is gone. */
static void conn_ex_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
                         void *argp)
{
    if (ptr != NULL) {
        conn_free(ptr);
    }
}

static void conn_index_setup(void)
{
    conn_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, conn_ex_free);
}

static void set_nodelay(evutil_socket_t fd)
{
    int one = 1;
    if (fd >= 0) {
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
}

static void timer_start(svc_conn *c)
{
    struct timeval tv = {.tv_sec = c->worker->server->config.request_timeout_s};
    evtimer_add(c->timer, &tv);
}

/* Closes the connection through libevent's own error path, as its read timeout would. */
static void conn_close(svc_conn *c)
{
    c->closing = 1;
    evtimer_del(c->timer);
    bufferevent_trigger_event(c->bev, BEV_EVENT_READING | BEV_EVENT_TIMEOUT, 0);
}

static void conn_timeout(evutil_socket_t fd, short what, void *arg)
{
    svc_conn *c = arg;
    svc_server *s = c->worker->server;
    svc_log(s, "info", "closing a connection: %s not complete within %u s",
            c->state == SVC_CONN_HANDSHAKE ? "TLS handshake" : "request",
            s->config.request_timeout_s);
    conn_close(c);
}

/* Bytes of a request arrived: the request timer starts with the first. */
static void conn_input(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
    svc_conn *c = arg;
    if (info->n_added == 0 || c->closing) {
        return;
    }
    if (c->state == SVC_CONN_IDLE || c->state == SVC_CONN_HANDSHAKE) {
        c->state = SVC_CONN_READING;
        timer_start(c);
    }
}

static svc_conn *conn_new(svc_worker *w, int https)
{
    svc_conn *c = OPENSSL_zalloc(sizeof *c);
    if (c == NULL) {
        return NULL;
    }
    c->worker = w;
    c->https = https;
    c->timer = evtimer_new(w->base, conn_timeout, c);
    if (c->timer == NULL) {
        OPENSSL_free(c);
        return NULL;
    }
    return c;
}

/* --- TLS connections -------------------------------------------------------------------------- */

static void tls_closed(struct evhttp_connection *evcon, void *arg)
{
    svc_conn *c = arg;
    /* libevent is done with it; the record goes when the SSL object does. */
    c->closing = 1;
    evtimer_del(c->timer);
}

static void tls_info(const SSL *ssl, int where, int ret)
{
    svc_conn *c = SSL_get_ex_data(ssl, conn_index);
    if (c == NULL) {
        return;
    }
    if ((where & SSL_CB_HANDSHAKE_START) && c->state == SVC_CONN_HANDSHAKE && !c->closing) {
        set_nodelay(SSL_get_fd(ssl));
        /* evhttp made its connection object around our bufferevent; its close callback tells us
         * when libevent lets go of the connection. */
        void *evcon = NULL;
        bufferevent_getcb(c->bev, NULL, NULL, NULL, &evcon);
        if (evcon != NULL) {
            evhttp_connection_set_closecb(evcon, tls_closed, c);
        }
    }
    if ((where & SSL_CB_HANDSHAKE_DONE) && c->state == SVC_CONN_HANDSHAKE) {
        c->state = SVC_CONN_IDLE;
        evtimer_del(c->timer);
    }
}

/* A bufferevent that takes no request: used when a TLS one cannot be made, so the connection is
 * closed instead of being served in clear text. */
static void refuse_input(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
    if (info->n_added > 0) {
        evbuffer_drain(buf, evbuffer_get_length(buf));
        bufferevent_trigger_event(arg, BEV_EVENT_READING | BEV_EVENT_ERROR, 0);
    }
}

static struct bufferevent *refuse_bev(svc_worker *w)
{
    svc_log(w->server, "error", "cannot set up TLS for a connection: %s", "out of memory");
    struct bufferevent *bev = bufferevent_socket_new(w->base, -1, BEV_OPT_CLOSE_ON_FREE);
    if (bev != NULL) {
        evbuffer_add_cb(bufferevent_get_input(bev), refuse_input, bev);
    }
    return bev;
}

static struct bufferevent *tls_bev(struct event_base *base, void *arg)
{
    svc_worker *w = arg;
    svc_worker_tls_check(w);
    SSL *ssl = SSL_new(w->ssl_ctx);
    svc_conn *c = conn_new(w, 1);
    if (ssl == NULL || c == NULL || SSL_set_ex_data(ssl, conn_index, c) != 1) {
        if (c != NULL) {
            event_free(c->timer);
            OPENSSL_free(c);
        }
        SSL_free(ssl);
        return refuse_bev(w);
    }
    conn_link(w, c);
    c->state = SVC_CONN_HANDSHAKE;
    struct bufferevent *bev = bufferevent_openssl_socket_new(
        base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
    if (bev == NULL) {
        SSL_free(ssl); /* frees c through the ex_data destructor */
        return refuse_bev(w);
    }
    c->bev = bev;
    /* A client that drops the connection without close_notify is normal for HTTP/1.1. */
    bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    evbuffer_add_cb(bufferevent_get_input(bev), conn_input, c);
    timer_start(c);
    return bev;
}

/* --- Plain-HTTP connections ------------------------------------------------------------------- */

static void plain_closed(struct evhttp_connection *evcon, void *arg)
{
    conn_free(arg);
}

static void plain_first_input(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
    struct bufferevent *bev = arg;
    svc_worker *w = current_worker;
    if (info->n_added == 0 || w == NULL) {
        return;
    }
    void *evcon = NULL;
    bufferevent_getcb(bev, NULL, NULL, NULL, &evcon);
    svc_conn *c = conn_new(w, 0);
    if (c == NULL || evcon == NULL) {
        if (c != NULL) {
            event_free(c->timer);
            OPENSSL_free(c);
        }
        evbuffer_drain(buf, evbuffer_get_length(buf));
        bufferevent_trigger_event(bev, BEV_EVENT_READING | BEV_EVENT_ERROR, 0);
        return;
    }
    c->bev = bev;
    conn_link(w, c);
    evhttp_connection_set_closecb(evcon, plain_closed, c);
    set_nodelay(bufferevent_getfd(bev));
    /* From now on the connection's own record follows its input. */
    evbuffer_remove_cb(buf, plain_first_input, bev);
    evbuffer_add_cb(buf, conn_input, c);
    c->state = SVC_CONN_READING;
    timer_start(c);
}

static struct bufferevent *plain_bev(struct event_base *base, void *arg)
{
    struct bufferevent *bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
    if (bev != NULL) {
        evbuffer_add_cb(bufferevent_get_input(bev), plain_first_input, bev);
    }
    return bev;
}

/* --- Requests --------------------------------------------------------------------------------- */

svc_conn *svc_conn_of(svc_worker *w, struct evhttp_request *req)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    if (evcon == NULL) {
        return NULL;
    }
    struct bufferevent *bev = evhttp_connection_get_bufferevent(evcon);
    SSL *ssl = bev != NULL ? bufferevent_openssl_get_ssl(bev) : NULL;
    svc_conn *c = NULL;
    if (ssl != NULL) {
        c = SSL_get_ex_data(ssl, conn_index);
    } else {
        for (c = w->conns; c != NULL && c->bev != bev; c = c->next) {
        }
    }
    if (c != NULL) {
        /* The request is complete: its time limit is met. */
        evtimer_del(c->timer);
        c->state = SVC_CONN_BUSY;
    }
    return c;
}

void svc_conn_request_done(svc_conn *conn)
{
    if (conn != NULL && conn->state == SVC_CONN_BUSY) {
        conn->state = SVC_CONN_IDLE;
    }
}

int svc_worker_draining(const svc_worker *w)
{
    return w->draining;
}

void svc_worker_tls_check(svc_worker *w)
{
    uint64_t now = svc_now_ns();
    if (w->tls_checked_ns != 0 && now - w->tls_checked_ns < SVC_TLS_CHECK_NS) {
        return;
    }
    w->tls_checked_ns = now;
    if (svc_tls_ctx_refresh(w->ca, w->ssl_ctx) != TS_OK) {
        svc_log(w->server, "error", "worker %u: cannot refresh the TLS trust store: %s", w->index,
                ts_error_message());
    }
}

/* --- Draining and stopping -------------------------------------------------------------------- */

static void worker_finish(svc_worker *w)
{
    if (w->finished) {
        return;
    }
    w->finished = 1;
    if (w->drain_ev != NULL) {
        event_del(w->drain_ev);
    }
    if (w->grace_ev != NULL) {
        event_del(w->grace_ev);
    }
    /* Frees every connection left: idle ones, and on a forced stop those still busy. */
    if (w->https != NULL) {
        evhttp_free(w->https);
        w->https = NULL;
        w->https_bound = NULL;
    }
    if (w->http != NULL) {
        evhttp_free(w->http);
        w->http = NULL;
        w->http_bound = NULL;
    }
    event_base_loopexit(w->base, NULL);
}

/* Closes idle connections; finishes when no request is in flight. */
static void drain_tick(evutil_socket_t fd, short what, void *arg)
{
    svc_worker *w = arg;
    unsigned busy = 0;
    svc_conn *next = NULL;
    for (svc_conn *c = w->conns; c != NULL; c = next) {
        next = c->next;
        if (c->closing) {
            continue;
        }
        if (c->state == SVC_CONN_READING || c->state == SVC_CONN_BUSY ||
            evbuffer_get_length(bufferevent_get_output(c->bev)) > 0) {
            busy++;
            continue;
        }
        conn_close(c);
    }
    if (busy == 0) {
        worker_finish(w);
    }
}

static void grace_over(evutil_socket_t fd, short what, void *arg)
{
    svc_worker *w = arg;
    unsigned busy = 0;
    for (svc_conn *c = w->conns; c != NULL; c = c->next) {
        busy += !c->closing;
    }
    svc_log(w->server, "warning", "worker %u: grace period over, closing %u connections", w->index,
            busy);
    worker_finish(w);
}

static void stop_now(evutil_socket_t fd, short what, void *arg)
{
    svc_worker *w = arg;
    if (w->draining) {
        return;
    }
    w->draining = 1;
    /* Stop accepting: the listening sockets close. */
    if (w->https_bound != NULL) {
        evhttp_del_accept_socket(w->https, w->https_bound);
        w->https_bound = NULL;
    }
    if (w->http_bound != NULL) {
        evhttp_del_accept_socket(w->http, w->http_bound);
        w->http_bound = NULL;
    }
    struct timeval tick = {.tv_usec = SVC_DRAIN_TICK_MS * 1000};
    struct timeval grace = {.tv_sec = w->server->config.shutdown_grace_s};
    w->drain_ev = event_new(w->base, -1, EV_PERSIST, drain_tick, w);
    w->grace_ev = evtimer_new(w->base, grace_over, w);
    if (w->drain_ev == NULL || w->grace_ev == NULL || event_add(w->drain_ev, &tick) != 0 ||
        evtimer_add(w->grace_ev, &grace) != 0) {
        worker_finish(w);
        return;
    }
    drain_tick(-1, 0, w);
}

void svc_worker_stop(svc_worker *w)
{
    if (w->stop_ev != NULL) {
        event_active(w->stop_ev, EV_READ, 0);
    }
}

void *svc_worker_main(void *arg)
{
    svc_worker *w = arg;
    current_worker = w;
    event_base_dispatch(w->base);
    /* Let libevent finish freeing what the last callbacks released (bufferevents are freed
     * after their callbacks return), so every connection record is gone with its SSL. */
    for (int i = 0; i < 4 && w->conns != NULL; i++) {
        event_base_loop(w->base, EVLOOP_NONBLOCK);
    }
    current_worker = NULL;
    return NULL;
}

/* --- Making and freeing a worker -------------------------------------------------------------- */

static ts_err http_new(svc_worker *w, int https, int fd)
{
    const ts_service_config *c = &w->server->config;
    struct evhttp *http = evhttp_new(w->base);
    if (http == NULL) {
        return ts_error_set(TS_ERR_NOMEM, "cannot make an HTTP server");
    }
    evhttp_set_gencb(http, svc_dispatch, w);
    evhttp_set_bevcb(http, https ? tls_bev : plain_bev, w);
    evhttp_set_max_headers_size(http, (ev_ssize_t)c->max_header_bytes);
    evhttp_set_max_body_size(http, (ev_ssize_t)c->max_body_bytes);
    evhttp_set_timeout(http, (int)c->idle_timeout_s);
    evhttp_set_allowed_methods(http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_PUT |
                                         EVHTTP_REQ_DELETE | EVHTTP_REQ_PATCH);
    /* The listening socket now belongs to evhttp, which closes it. */
    struct evhttp_bound_socket *bound = evhttp_accept_socket_with_handle(http, fd);
    if (bound == NULL) {
        evhttp_free(http);
        return ts_error_set(TS_ERR_BACKEND, "cannot accept on the %s socket",
                            https ? "https" : "http");
    }
    if (https) {
        w->https = http;
        w->https_bound = bound;
        w->server->https_fds[w->index] = -1;
    } else {
        w->http = http;
        w->http_bound = bound;
        w->server->http_fds[w->index] = -1;
    }
    return TS_OK;
}

ts_err svc_worker_init(svc_server *server, unsigned index, svc_worker *w)
{
    pthread_once(&conn_index_once, conn_index_setup);
    if (conn_index < 0) {
        return ts_error_set(TS_ERR_BACKEND, "cannot register SSL ex_data");
    }
    w->server = server;
    w->index = index;
    const ts_service_config *c = &server->config;
    ts_err rv = c->db_url != NULL ? ts_ca_open_db(c->dir, c->db_url, "service", &w->ca)
                                  : ts_ca_open(c->dir, "service", &w->ca);
    if (rv != TS_OK) {
        return ts_error_prefix(rv, "cannot open the instance");
    }
    rv = svc_tls_ctx_new(w->ca, &w->ssl_ctx);
    if (rv != TS_OK) {
        return rv;
    }
    w->tls_checked_ns = svc_now_ns();
    SSL_CTX_set_info_callback(w->ssl_ctx, tls_info);
    w->base = event_base_new();
    if (w->base == NULL) {
        return ts_error_set(TS_ERR_BACKEND, "cannot make an event loop");
    }
    w->stop_ev = event_new(w->base, -1, 0, stop_now, w);
    if (w->stop_ev == NULL) {
        return ts_error_set(TS_ERR_NOMEM, "out of memory");
    }
    rv = http_new(w, 1, server->https_fds[index]);
    if (rv == TS_OK && server->http_listen != NULL) {
        rv = http_new(w, 0, server->http_fds[index]);
    }
    return rv;
}

void svc_worker_clear(svc_worker *w)
{
    if (w->https != NULL) {
        evhttp_free(w->https);
    }
    if (w->http != NULL) {
        evhttp_free(w->http);
    }
    if (w->base != NULL) {
        for (int i = 0; i < 4 && w->conns != NULL; i++) {
            event_base_loop(w->base, EVLOOP_NONBLOCK);
        }
    }
    /* Records whose connection libevent never released (none in a clean stop). */
    while (w->conns != NULL) {
        svc_conn *c = w->conns;
        if (c->https && c->bev != NULL) {
            SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
            if (ssl != NULL) {
                SSL_set_ex_data(ssl, conn_index, NULL);
            }
        }
        conn_free(c);
    }
    if (w->drain_ev != NULL) {
        event_free(w->drain_ev);
    }
    if (w->grace_ev != NULL) {
        event_free(w->grace_ev);
    }
    if (w->stop_ev != NULL) {
        event_free(w->stop_ev);
    }
    if (w->base != NULL) {
        event_base_free(w->base);
    }
    SSL_CTX_free(w->ssl_ctx);
    ts_ca_free(w->ca);
    memset(w, 0, sizeof *w);
}
