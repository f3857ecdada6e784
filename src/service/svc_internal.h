/*
 * Inside the trust service: the server and its workers, the request a handler sees, replies,
 * routes and their authorisation, TLS facts of a connection, metrics and the state workers share.
 *
 * A request flows: libevent (evhttp) parses it on a worker's event loop -> svc_dispatch()
 * (svc_router.c) matches a route, checks the body limits, authenticates (bearer token, client
 * certificate) and authorises (role, tenant) as the route declares -> the route's handler, which
 * replies exactly once with one of the svc_reply_* functions. A handler never blocks on another
 * request; it may block on its worker's database and key store, which no other thread uses.
 *
 * Errors: handlers turn a ts_err into a reply with svc_reply_err(), which maps the code to an
 * HTTP status and answers {"error": {"code": ..., "message": ...}}; routes under a standard that
 * defines its own error form (EST, OCSP) use svc_reply() directly.
 */
#ifndef TS_SVC_INTERNAL_H
#define TS_SVC_INTERNAL_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>
#include <event2/http.h>
#include <jansson.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "tessera/access.h"
#include "tessera/ca.h"
#include "tessera/error.h"
#include "tessera/service.h"

enum {
    SVC_PARAMS_MAX = 4,     /* {name} parts of one route pattern */
    SVC_PATH_MAX = 1024,    /* bytes of a request path */
    SVC_ADDR_MAX = 64,      /* "[v6]:port" */
    SVC_CB_MAX = 64,        /* bytes of a TLS channel binding */
    SVC_PAGE_DEFAULT = 100, /* list routes: rows per page without ?limit */
    SVC_PAGE_MAX = 1000,    /* list routes: the largest ?limit */
    SVC_WORKERS_MAX = 64,
    SVC_WORKERS_PER_CPU = 4,      /* default worker threads per online CPU */
    SVC_WORKERS_DEFAULT_MAX = 32, /* and at most this many by default */
};

typedef struct svc_server svc_server;
typedef struct svc_worker svc_worker;
typedef struct svc_request svc_request;

/* --- Routes (svc_router.c) -------------------------------------------------------------------- */

/* How a route authenticates its caller before the handler runs. */
typedef enum svc_auth {
    SVC_AUTH_NONE = 0,    /* anyone (health, CRL, OCSP, EST cacerts and csrattrs) */
    SVC_AUTH_TOKEN = 1,   /* "Authorization: Bearer <token>"; 401 without a valid one */
    SVC_AUTH_CLIENT = 2,  /* a verified TLS client certificate of a tenant, not revoked; 401 */
    SVC_AUTH_HANDLER = 3, /* the handler decides (EST enroll: client certificate or claim code) */
} svc_auth;

/* Route flags. */
#define SVC_ROUTE_PLAIN_HTTP  (1U << 0) /* also served on the plain-HTTP listener */
#define SVC_ROUTE_BODY        (1U << 1) /* takes a request body (POST, PUT, PATCH) */
#define SVC_ROUTE_DEVICE_SELF (1U << 2) /* a device principal must match the {uid} parameter */
/* SVC_AUTH_CLIENT without {tenant}: the tenant is the client certificate's (any tenant). */
#define SVC_ROUTE_CLIENT_TENANT (1U << 3)

typedef void (*svc_handler)(svc_request *r);

typedef struct svc_route {
    const char *method;  /* "GET", "POST", "PUT", "PATCH", "DELETE" */
    const char *pattern; /* "/api/v1/tenants/{tenant}/devices/{uid}"; a {name} is one segment,
                            a final {name*} the rest of the path (svc_route_match) */
    svc_handler handler;
    svc_auth auth;
    /*
     * SVC_AUTH_TOKEN: the roles (TS_ROLE_BIT mask) that may call it. When the pattern has
     * {tenant}, the router also checks the principal may act in that tenant: an instance admin
     * anywhere, anyone else only in their own tenant; a foreign tenant answers 404, as if it did
     * not exist. A role outside the mask answers 403.
     */
    unsigned roles;
    unsigned flags; /* SVC_ROUTE_* */
    /* OpenAPI (svc_openapi.c): one line, and JSON text of the request and response schemas
     * (NULL: none / a plain JSON object); content_type of a non-JSON body or reply. */
    const char *summary;
    const char *request_schema;
    const char *response_schema;
    const char *content_type;
} svc_route;

/*
 * The route tables, each ended by an entry whose method is NULL. Every module owns its table;
 * svc_router.c concatenates them in this order.
 */
extern const svc_route svc_health_routes[];     /* svc_health.c: /healthz /readyz /metrics */
extern const svc_route svc_est_routes[];        /* svc_est.c: /.well-known/est/... */
extern const svc_route svc_revocation_routes[]; /* svc_revocation.c: /crl, /ocsp, feed */
extern const svc_route svc_api_routes[];        /* svc_api*.c: the rest of /api/v1 */
extern const svc_route svc_session_routes[];    /* svc_session_api.c: sessions, jobs */
extern const svc_route svc_command_routes[];    /* svc_api_commands.c: remote commands */
extern const svc_route svc_group_routes[];      /* svc_api_groups.c: device groups */
extern const svc_route svc_openapi_routes[];    /* svc_openapi.c: /api/v1/openapi.json */

/* Every route table in dispatch order, NULL-terminated. */
extern const svc_route *const svc_route_tables[];

/* Matches, authenticates, authorises and calls the handler; the evhttp generic callback. */
void svc_dispatch(struct evhttp_request *req, void *worker);

/* How many routes all tables hold, and one by its index in dispatch order (NULL past the end). */
size_t svc_route_count(void);
const svc_route *svc_route_at(size_t index);

/*
 * Matches a request path as it arrived (percent-encoded, without the query) against a pattern,
 * segment by segment: a literal segment must equal the decoded segment, a {name} takes one whole
 * non-empty segment, percent-decoded, which must not decode to '/' or NUL. On a match the values
 * are written to buf (size bytes) and params[0..*nparams) point into it, in pattern order.
 * Returns 1 on a match, 0 when the path does not fit the pattern, -1 when a segment the pattern
 * looks at is malformed (a bad %XX escape, NUL or '/' in a value).
 *
 * A pattern may end in {name*}: that parameter takes the rest of the path, one or more segments,
 * percent-decoded, '/' included (GET /ocsp/{b64*}: base64 holds '/', RFC 6960 appendix A.1).
 * svc_param() finds it as "name".
 */
int svc_route_match(const char *pattern, const char *path, char *buf, size_t size,
                    const char **params, size_t *nparams);

/* Decodes %XX escapes of a whole path into out (size bytes); -1 on a bad escape, a NUL, or no
 * room. */
int svc_path_decode(const char *path, char *out, size_t size);

/* --- The request a handler sees (svc_request.c) ---------------------------------------------- */

struct svc_request {
    struct evhttp_request *req;
    svc_worker *worker;
    ts_ca *ca; /* the worker's own instance handle */
    const svc_route *route;
    const char *method;                 /* "GET", ... */
    char path[SVC_PATH_MAX];            /* percent-decoded path, without the query */
    const char *params[SVC_PARAMS_MAX]; /* {name} values in pattern order, decoded */
    size_t nparams;
    char params_buf[SVC_PATH_MAX]; /* where params point */
    struct evkeyvalq *query;       /* decoded query parameters (evhttp_parse_query_str) */
    const uint8_t *body;           /* the whole body (within the limit); NULL when none */
    size_t body_len;
    char remote[SVC_ADDR_MAX]; /* the peer's address, without the port */
    int https;                 /* arrived over TLS */

    /* The TLS client certificate, when one was presented and verified (svc_tls.c); the router
     * fills these for every request over TLS before the handler, whatever the route's auth. A
     * certificate no tenant's issuing CA issued leaves client_cert NULL; one the store does not
     * hold as valid under that serial sets client_revoked. */
    X509 *client_cert;           /* a reference; NULL when none */
    ts_tenant_row client_tenant; /* whose issuing CA issued it */
    int64_t client_issuer_id;
    char client_serial[TS_SERIAL_HEX];
    int client_revoked; /* checked against the store for this request */

    /* The bearer token's owner, after SVC_AUTH_TOKEN. */
    int authenticated;
    ts_principal principal;
    ts_tenant_row tenant; /* the {tenant} of the path, after the router's check; for
                             SVC_AUTH_CLIENT routes without one, the default tenant */

    int status; /* the reply's status, for the log and metrics */
    int replied;
    uint64_t start_ns;
    size_t route_index; /* into the concatenated route list, for metrics */
};

/* A {name} parameter by name, or NULL. */
const char *svc_param(const svc_request *r, const char *name);
/* A query parameter, or NULL. */
const char *svc_query(const svc_request *r, const char *name);
/* A request header, or NULL. */
const char *svc_header(const svc_request *r, const char *name);

/*
 * Query values for list routes: ?limit (1..SVC_PAGE_MAX, default SVC_PAGE_DEFAULT) and ?cursor
 * (an opaque token the previous page's "next" gave; 0 when absent). TS_ERR_INVALID naming the bad
 * value.
 */
ts_err svc_page_params(const svc_request *r, size_t *limit, int64_t *after_id);

/*
 * The "next" member of a list reply: the cursor for the page after one that returned count rows
 * of at most limit, the last with id last_id; JSON null when the page was not full. The cursor is
 * the last id in decimal, which svc_page_params() reads back as after_id.
 */
json_t *svc_page_next(size_t count, size_t limit, int64_t last_id);

/* The body as a JSON object; TS_ERR_INVALID saying where it fails to parse or is not an object.
 * Unknown members are refused when allowed (a NULL-terminated list of names) is not NULL. */
ts_err svc_body_json(const svc_request *r, const char *const *allowed, json_t **out);

/* --- Replies (svc_request.c): exactly one per request ---------------------------------------- */

/* Adds a header to the reply (before replying). */
void svc_reply_header(svc_request *r, const char *name, const char *value);
void svc_reply(svc_request *r, int status, const char *content_type, const void *body, size_t len);
/* A JSON document (taken and freed). */
void svc_reply_json(svc_request *r, int status, json_t *doc);
/* {"error": {"code": code, "message": ...}}; code is a short word ("not_found", "invalid"). */
void svc_reply_error(svc_request *r, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/*
 * The reply for a failed call, with ts_error_message(): INVALID, POLICY, URI -> 400; AUTH,
 * PIN -> 401; DENIED -> 403; NOT_FOUND -> 404; EXISTS, CONFLICT, STATE -> 409; LIMIT -> 429
 * (413 for a body); UNSUPPORTED -> 501; anything else -> 500, with a generic message in the reply
 * and the real one in the server log.
 */
void svc_reply_err(svc_request *r, ts_err err);
/* The HTTP status svc_reply_err() uses for a code. */
int svc_err_status(ts_err err);

/* --- TLS (svc_tls.c) -------------------------------------------------------------------------- */

/*
 * A server SSL_CTX for a worker: the instance's TLS key (TS_TLS_KEY_LABEL, through the key-store
 * provider) and DIR/tls/server.pem; TLS 1.2 and 1.3 only; TLS 1.2 with ECDHE + AES-GCM suites
 * only; client certificates requested (not required), verified against every CA of the instance
 * (ts_ca_all_certs()), a failed verification failing the handshake.
 */
ts_err svc_tls_ctx_new(ts_ca *ca, SSL_CTX **out);

/* Rebuilds the verification store when the instance's CAs changed (a new tenant). */
ts_err svc_tls_ctx_refresh(ts_ca *ca, SSL_CTX *ctx);

/*
 * Fills the request's client_* fields from the connection's verified peer certificate: the tenant
 * from the issuer's fingerprint, and client_revoked from the store. No certificate: client_cert
 * stays NULL and TS_OK.
 */
ts_err svc_tls_client_identity(svc_request *r, SSL *ssl);

/*
 * The channel binding of the connection: tls-unique (RFC 5929) on TLS 1.2, tls-exporter
 * (RFC 9266: exporter label "EXPORTER-Channel-Binding", no context, 32 bytes) on TLS 1.3.
 */
ts_err svc_tls_channel_binding(SSL *ssl, uint8_t out[SVC_CB_MAX], size_t *len);

/* The request's SSL, or NULL on plain HTTP. */
SSL *svc_request_ssl(const svc_request *r);

/* --- Metrics (svc_metrics.c): process-wide, lock-free --------------------------------------- */

/* Counts a finished request: its route (SIZE_MAX when none matched), status and latency. */
void svc_metrics_request(size_t route_index, int status, uint64_t latency_ns);
void svc_metrics_issued(unsigned count);
void svc_metrics_revoked(unsigned count);
void svc_metrics_db_error(void);
/* The Prometheus text exposition (version 0.0.4); OPENSSL_free(*text). */
ts_err svc_metrics_render(char **text, size_t *len);

/* --- State the workers share (svc_shared.c) ------------------------------------------------- */

/*
 * Failed claim-code attempts per source address: at most SVC_CLAIM_FAILS_MAX within
 * SVC_CLAIM_WINDOW_S; beyond that every attempt from the address answers 429 until the window
 * passes. Thread-safe.
 */
enum {
    SVC_CLAIM_FAILS_MAX = 10,
    SVC_CLAIM_WINDOW_S = 60,
};
/* Nonzero when the address is over its limit now. */
int svc_claim_limited(svc_server *server, const char *addr);
void svc_claim_failed(svc_server *server, const char *addr);

/*
 * The current DER CRL of a tenant, made by the worker's ca when missing, when the revocation feed
 * moved on since it was made, or within an hour of its nextUpdate. Thread-safe; OPENSSL_free(*der).
 */
ts_err svc_crl_current(svc_server *server, ts_ca *ca, const char *tenant, uint8_t **der,
                       size_t *len);

/* --- The server (svc_server.c) --------------------------------------------------------------- */

/* The server a worker belongs to, and its configuration. */
svc_server *svc_worker_server(const svc_worker *worker);
const ts_service_config *svc_server_config(const svc_server *server);
/* Puts the PEM certificates of path into ctx: the first as its certificate, the rest as its
 * chain. TS_ERR_NOT_FOUND when the file cannot be read, TS_ERR_CORRUPT when it holds none. */
ts_err svc_tls_use_chain_file(SSL_CTX *ctx, const char *path);

/* Writes one line to the server's log: "time level message". Never pass secrets. */
void svc_log(svc_server *server, const char *level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Monotonic nanoseconds. */
uint64_t svc_now_ns(void);

#endif
