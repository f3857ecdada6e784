/*
 * The router: finds the route of a request in the route tables, checks the body against the
 * route, authenticates and authorises the caller as the route declares, names the audit actor,
 * and calls the handler. Everything it refuses, it answers with the JSON error form.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <openssl/crypto.h>

#include "common/error_internal.h"
#include "service/svc_core.h"
#include "service/svc_firmware_internal.h"

enum { SVC_ALLOW_MAX = 64, SVC_ACTOR_MAX = 160 };

const svc_route *const svc_route_tables[] = {
    svc_health_routes,     svc_est_routes,
    svc_revocation_routes, svc_api_routes,
    svc_session_routes,    svc_command_routes,
    svc_group_routes,      svc_firmware_routes,
    svc_openapi_routes,    NULL,
};

size_t svc_route_count(void)
{
    size_t n = 0;
    for (size_t t = 0; svc_route_tables[t] != NULL; t++) {
        for (const svc_route *r = svc_route_tables[t]; r->method != NULL; r++) {
            n++;
        }
    }
    return n;
}

const svc_route *svc_route_at(size_t index)
{
    for (size_t t = 0; svc_route_tables[t] != NULL; t++) {
        for (const svc_route *r = svc_route_tables[t]; r->method != NULL; r++) {
            if (index-- == 0) {
                return r;
            }
        }
    }
    return NULL;
}

/* --- Paths ------------------------------------------------------------------------------------ */

static int hex_value(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

/* Decodes in[0..len) into out (size bytes, NUL-terminated); -1 on a bad escape, NUL or no room.
 * With no_slash, a decoded '/' is refused too. RFC 3986 section 2.1. */
static int decode(const char *in, size_t len, char *out, size_t size, int no_slash)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        int c = (unsigned char)in[i];
        if (c == '%') {
            if (len - i < 3) {
                return -1;
            }
            int h = hex_value(in[i + 1]);
            int l = hex_value(in[i + 2]);
            if (h < 0 || l < 0) {
                return -1;
            }
            c = h * 16 + l;
            i += 2;
        }
        if (c == 0 || (no_slash && c == '/') || o + 1 >= size) {
            return -1;
        }
        out[o++] = (char)c;
    }
    if (o >= size) {
        return -1;
    }
    out[o] = '\0';
    return 0;
}

int svc_path_decode(const char *path, char *out, size_t size)
{
    return decode(path, strlen(path), out, size, 0);
}

int svc_route_match(const char *pattern, const char *path, char *buf, size_t size,
                    const char **params, size_t *nparams)
{
    size_t used = 0;
    *nparams = 0;
    const char *p = pattern;
    const char *q = path;
    if (*p != '/' || *q != '/') {
        return 0;
    }
    while (*p == '/' && *q == '/') {
        p++;
        q++;
        size_t plen = strcspn(p, "/");
        size_t qlen = strcspn(q, "/");
        if (plen >= 3 && p[0] == '{' && p[plen - 2] == '*' && p[plen - 1] == '}' &&
            p[plen] == '\0') {
            /* {name*} as the last segment: the rest of the path, '/' and all. */
            qlen = strlen(q);
            if (qlen == 0 || *nparams >= SVC_PARAMS_MAX) {
                return 0;
            }
            if (decode(q, qlen, buf + used, size - used, 0) != 0) {
                return -1;
            }
            params[(*nparams)++] = buf + used;
            return 1;
        }
        if (plen >= 2 && p[0] == '{' && p[plen - 1] == '}') {
            if (qlen == 0 || *nparams >= SVC_PARAMS_MAX) {
                return 0;
            }
            if (decode(q, qlen, buf + used, size - used, 1) != 0) {
                return -1;
            }
            params[(*nparams)++] = buf + used;
            used += strlen(buf + used) + 1;
        } else {
            /* A literal segment: compare with the decoded segment. */
            char seg[SVC_PATH_MAX];
            if (qlen >= sizeof seg) {
                return 0;
            }
            if (decode(q, qlen, seg, sizeof seg, 0) != 0) {
                return -1;
            }
            if (strlen(seg) != plen || memcmp(seg, p, plen) != 0) {
                return 0;
            }
        }
        p += plen;
        q += qlen;
    }
    return *p == '\0' && *q == '\0' ? 1 : 0;
}

/* --- Authentication and authorisation --------------------------------------------------------- */

static const char *method_name(enum evhttp_cmd_type type)
{
    switch (type) {
    case EVHTTP_REQ_GET:
        return "GET";
    case EVHTTP_REQ_POST:
        return "POST";
    case EVHTTP_REQ_PUT:
        return "PUT";
    case EVHTTP_REQ_DELETE:
        return "DELETE";
    case EVHTTP_REQ_PATCH:
        return "PATCH";
    case EVHTTP_REQ_HEAD:
        return "HEAD";
    case EVHTTP_REQ_OPTIONS:
        return "OPTIONS";
    default:
        return "OTHER";
    }
}

static int pattern_has(const char *pattern, const char *param)
{
    return strstr(pattern, param) != NULL;
}

/* Loads the {tenant} of the path into r->tenant; replies 404 when there is none. */
static int load_tenant(svc_request *r, const char *name)
{
    ts_err rv = ts_ca_tenant(r->ca, name, &r->tenant);
    if (rv == TS_OK) {
        return 1;
    }
    if (rv == TS_ERR_NOT_FOUND || rv == TS_ERR_INVALID) {
        svc_reply_error(r, 404, "not_found", "no tenant \"%.64s\"", name);
    } else {
        svc_reply_err(r, rv);
    }
    return 0;
}

/* RFC 6750 section 2.1: "Authorization: Bearer <token>". */
static int bearer_token(const svc_request *r, char token[TS_TOKEN_MAX])
{
    const char *h = svc_header(r, "Authorization");
    if (h == NULL || strncasecmp(h, "Bearer ", 7) != 0) {
        return 0;
    }
    h += 7;
    while (*h == ' ') {
        h++;
    }
    size_t n = strlen(h);
    while (n > 0 && h[n - 1] == ' ') {
        n--;
    }
    if (n == 0 || n >= TS_TOKEN_MAX) {
        return 0;
    }
    memcpy(token, h, n);
    token[n] = '\0';
    return 1;
}

static void reply_unauthorized(svc_request *r, int presented)
{
    /* RFC 6750 section 3.1: a token that was presented and refused is "invalid_token". */
    svc_reply_header(r, "WWW-Authenticate",
                     presented ? "Bearer realm=\"tessera\", error=\"invalid_token\""
                               : "Bearer realm=\"tessera\"");
    svc_reply_error(r, 401, "unauthorized",
                    presented ? "the bearer token is not valid (unknown, expired, revoked or of a "
                                "disabled user)"
                              : "this resource needs \"Authorization: Bearer <token>\"");
}

static int auth_token(svc_request *r)
{
    char token[TS_TOKEN_MAX];
    if (!bearer_token(r, token)) {
        reply_unauthorized(r, svc_header(r, "Authorization") != NULL);
        return 0;
    }
    ts_err rv = ts_ca_token_authenticate(r->ca, token, &r->principal);
    OPENSSL_cleanse(token, sizeof token);
    if (rv == TS_ERR_AUTH || rv == TS_ERR_INVALID || rv == TS_ERR_NOT_FOUND) {
        reply_unauthorized(r, 1);
        return 0;
    }
    if (rv != TS_OK) {
        svc_reply_err(r, rv);
        return 0;
    }
    r->authenticated = 1;
    const ts_principal *p = &r->principal;
    const char *tenant = svc_param(r, "tenant");
    if (tenant != NULL) {
        /* A tenant the principal may not act in answers as if it did not exist. Instance-wide
         * users act in every tenant: an admin in full, an auditor read-only (its role's routes). */
        int instance_wide =
            p->tenant_id == 0 && (p->role == TS_ROLE_ADMIN || p->role == TS_ROLE_AUDITOR);
        if (!instance_wide && strcmp(p->tenant, tenant) != 0) {
            svc_reply_error(r, 404, "not_found", "no tenant \"%.64s\"", tenant);
            return 0;
        }
        if (!load_tenant(r, tenant)) {
            return 0;
        }
    }
    if ((r->route->roles & TS_ROLE_BIT(p->role)) == 0) {
        svc_reply_error(r, 403, "forbidden", "the %s role may not %s %s", ts_role_name(p->role),
                        r->route->method, r->route->pattern);
        return 0;
    }
    if ((r->route->flags & SVC_ROUTE_DEVICE_SELF) && p->role == TS_ROLE_DEVICE) {
        const char *uid = svc_param(r, "uid");
        if (uid == NULL || strcmp(uid, p->device_uid) != 0) {
            svc_reply_error(r, 404, "not_found", "no device \"%.64s\"", uid != NULL ? uid : "");
            return 0;
        }
    }
    return 1;
}

static int auth_client(svc_request *r)
{
    if (r->client_cert == NULL || r->client_revoked) {
        svc_reply_error(r, 401, "unauthorized",
                        r->client_cert == NULL
                            ? "this resource needs a TLS client certificate of a tenant"
                            : "the TLS client certificate is revoked or unknown");
        return 0;
    }
    const char *tenant = svc_param(r, "tenant");
    if (tenant == NULL) {
        /* Routes without {tenant} belong to the default tenant (EST's default label), unless
         * the route serves every tenant's devices. */
        tenant = (r->route->flags & SVC_ROUTE_CLIENT_TENANT) != 0 ? r->client_tenant.name
                                                                  : TS_DEFAULT_TENANT;
    }
    if (!load_tenant(r, tenant)) {
        return 0;
    }
    if (r->client_tenant.id != r->tenant.id) {
        svc_reply_error(r, 401, "unauthorized",
                        "the TLS client certificate is not of tenant \"%.64s\"", r->tenant.name);
        return 0;
    }
    return 1;
}

/* ts_ca_set_actor for the request: who acts in its audit entries. */
static int set_actor(svc_request *r)
{
    char actor[SVC_ACTOR_MAX];
    if (r->authenticated) {
        snprintf(actor, sizeof actor, "user:%s@%s", r->principal.user,
                 r->principal.tenant_id == 0 ? "*" : r->principal.tenant);
    } else if (r->client_cert != NULL && !r->client_revoked) {
        char cn[TS_NAME_MAX + 1] = "";
        X509_NAME *subject = X509_get_subject_name(r->client_cert);
        if (X509_NAME_get_text_by_NID(subject, NID_commonName, cn, sizeof cn) < 0) {
            cn[0] = '\0';
        }
        snprintf(actor, sizeof actor, "device:%s", cn);
    } else {
        snprintf(actor, sizeof actor, "service");
    }
    ts_err rv = ts_ca_set_actor(r->ca, actor);
    if (rv != TS_OK) {
        svc_reply_err(r, rv);
        return 0;
    }
    return 1;
}

/* --- Dispatch --------------------------------------------------------------------------------- */

/* Finds the route; replies 400, 404 or 405 when there is none. */
static int find_route(svc_request *r, const char *raw_path)
{
    char allow[SVC_ALLOW_MAX] = "";
    int malformed = 0;
    size_t index = 0;
    for (size_t t = 0; svc_route_tables[t] != NULL; t++) {
        for (const svc_route *route = svc_route_tables[t]; route->method != NULL;
             route++, index++) {
            if (!r->https && !(route->flags & SVC_ROUTE_PLAIN_HTTP)) {
                continue;
            }
            int m = svc_route_match(route->pattern, raw_path, r->params_buf, sizeof r->params_buf,
                                    r->params, &r->nparams);
            if (m < 0) {
                malformed = 1;
            }
            if (m != 1) {
                continue;
            }
            if (strcmp(route->method, r->method) == 0) {
                r->route = route;
                r->route_index = index;
                return 1;
            }
            if (strstr(allow, route->method) == NULL &&
                strlen(allow) + strlen(route->method) + 3 < sizeof allow) {
                if (allow[0] != '\0') {
                    strcat(allow, ", ");
                }
                strcat(allow, route->method);
            }
        }
    }
    r->nparams = 0;
    if (allow[0] != '\0') {
        svc_reply_header(r, "Allow", allow);
        svc_reply_error(r, 405, "unsupported", "%s is not allowed here; allowed: %s", r->method,
                        allow);
    } else if (malformed) {
        svc_reply_error(r, 400, "invalid", "a path parameter holds '/' or a bad %%-escape");
    } else {
        svc_reply_error(r, 404, "not_found", "no such resource");
    }
    return 0;
}

/* Everything before the handler; 0 when a reply was sent instead. */
static int prepare(svc_request *r, struct evkeyvalq *query)
{
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(r->req);
    const char *raw = uri != NULL ? evhttp_uri_get_path(uri) : NULL;
    if (raw == NULL || raw[0] == '\0') {
        raw = "/";
    }
    if (strlen(raw) >= SVC_PATH_MAX || svc_path_decode(raw, r->path, sizeof r->path) != 0) {
        svc_reply_error(r, 400, "invalid", "the path is too long or has a bad %%-escape");
        return 0;
    }
    const char *qs = uri != NULL ? evhttp_uri_get_query(uri) : NULL;
    if (qs != NULL && evhttp_parse_query_str(qs, query) != 0) {
        svc_reply_error(r, 400, "invalid", "the query string does not parse");
        return 0;
    }
    r->query = query;
    if (!find_route(r, raw)) {
        return 0;
    }
    struct evbuffer *in = evhttp_request_get_input_buffer(r->req);
    size_t len = evbuffer_get_length(in);
    if (len > 0) {
        if (!(r->route->flags & SVC_ROUTE_BODY)) {
            svc_reply_error(r, 400, "invalid", "%s %s takes no request body", r->method,
                            r->route->pattern);
            return 0;
        }
        r->body = evbuffer_pullup(in, -1);
        r->body_len = len;
    } else if (r->route->flags & SVC_ROUTE_BODY) {
        svc_reply_error(r, 400, "invalid", "%s %s needs a request body", r->method,
                        r->route->pattern);
        return 0;
    }
    SSL *ssl = svc_request_ssl(r);
    if (ssl != NULL) {
        ts_err rv = svc_tls_client_identity(r, ssl);
        if (rv != TS_OK) {
            svc_reply_err(r, rv);
            return 0;
        }
    }
    switch (r->route->auth) {
    case SVC_AUTH_TOKEN:
        if (!auth_token(r)) {
            return 0;
        }
        break;
    case SVC_AUTH_CLIENT:
        if (!auth_client(r)) {
            return 0;
        }
        break;
    case SVC_AUTH_NONE:
    case SVC_AUTH_HANDLER:
    default:
        if (pattern_has(r->route->pattern, "{tenant}") && !load_tenant(r, svc_param(r, "tenant"))) {
            return 0;
        }
        break;
    }
    return set_actor(r);
}

void svc_dispatch(struct evhttp_request *req, void *arg)
{
    svc_worker *w = arg;
    svc_conn *conn = svc_conn_of(w, req);
    svc_request r;
    memset(&r, 0, sizeof r);
    r.req = req;
    r.worker = w;
    r.ca = w->ca;
    r.start_ns = svc_now_ns();
    r.route_index = SIZE_MAX;
    r.method = method_name(evhttp_request_get_command(req));
    r.https = svc_request_ssl(&r) != NULL;
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    char *addr = NULL;
    ev_uint16_t port = 0;
    if (evcon != NULL) {
        evhttp_connection_get_peer(evcon, &addr, &port);
    }
    snprintf(r.remote, sizeof r.remote, "%s", addr != NULL ? addr : "?");
    struct evkeyvalq query;
    TAILQ_INIT(&query);

    if (prepare(&r, &query)) {
        r.route->handler(&r);
        if (!r.replied) {
            svc_log(svc_worker_server(w), "error", "%s %s: the handler sent no reply", r.method,
                    r.route->pattern);
            svc_reply_error(&r, 500, "internal", "internal error");
        }
    }
    evhttp_clear_headers(&query);
    svc_conn_request_done(conn);
}
