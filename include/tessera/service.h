/*
 * The trust service on the network: `tessera serve`.
 *
 * HTTP/1.1 over TLS (libevent evhttp with bufferevent_openssl) for devices (EST, RFC 7030),
 * operators (the REST API under /api/v1) and relying parties (CRL, OCSP, the revocation feed),
 * with an optional plain-HTTP listener that serves only CRLs and OCSP. N worker threads each run
 * their own event loop over their own handle on the instance (ts_ca), so no request waits on
 * another's database or key-store call. docs/serve.md is the operations guide.
 */
#ifndef TESSERA_SERVICE_H
#define TESSERA_SERVICE_H

#include <stddef.h>
#include <stdio.h>

#include "tessera/error.h"
#include "tessera/export.h"

typedef struct ts_service ts_service;

typedef struct ts_service_config {
    const char *dir;            /* the instance directory */
    const char *listen;         /* HTTPS "HOST:PORT"; NULL: "127.0.0.1:8443"; port 0: any free */
    const char *http_listen;    /* plain HTTP for CRL and OCSP, "HOST:PORT"; NULL: none */
    const char *db_url;         /* NULL: the instance's own */
    unsigned threads;           /* worker threads; 0: four per online CPU, at most 32 */
    size_t max_header_bytes;    /* 0: 8 KiB */
    size_t max_body_bytes;      /* 0: 256 KiB */
    unsigned idle_timeout_s;    /* a keep-alive connection with no request; 0: 30 */
    unsigned request_timeout_s; /* to read a whole request, headers and body; 0: 10 */
    unsigned shutdown_grace_s;  /* SIGTERM waits this long for requests in flight; 0: 30 */
    FILE *log;                  /* one line per event (never secrets); NULL: stderr */
} ts_service_config;

/*
 * Opens the instance once per worker, builds the TLS contexts and binds the listeners. When it
 * returns TS_OK the ports are bound: ts_service_port() tells which (port 0 asked for any).
 */
TS_API TS_MUST_CHECK ts_err ts_service_new(const ts_service_config *config, ts_service **out);

/* The bound port of the HTTPS (https != 0) or the plain-HTTP listener; 0 when there is none. */
TS_API unsigned ts_service_port(const ts_service *service, int https);

/*
 * Serves until SIGTERM or SIGINT (or ts_service_stop()): then it stops accepting, lets requests
 * in flight finish (up to shutdown_grace_s), closes idle connections and returns.
 */
TS_API TS_MUST_CHECK ts_err ts_service_run(ts_service *service);

/* Asks a running service to shut down as SIGTERM does; async-signal-safe, any thread. */
TS_API void ts_service_stop(ts_service *service);

TS_API void ts_service_free(ts_service *service);

#endif
