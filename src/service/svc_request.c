/*
 * What a handler reads from a request (parameters, query, headers, page values, a JSON body) and
 * the replies it sends, each exactly once. A reply also counts the request in the metrics and
 * writes its access-log line.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "common/error_internal.h"
#include "service/svc_core.h"

enum { SVC_MESSAGE_MAX = 512, SVC_LOG_PATH_MAX = 200 };

/* --- Reading ---------------------------------------------------------------------------------- */

const char *svc_param(const svc_request *r, const char *name)
{
    if (r->route == NULL || name == NULL) {
        return NULL;
    }
    size_t want = strlen(name);
    size_t index = 0;
    for (const char *p = strchr(r->route->pattern, '{'); p != NULL; p = strchr(p + 1, '{')) {
        const char *end = strchr(p, '}');
        if (end == NULL) {
            break;
        }
        size_t len = (size_t)(end - p - 1);
        if (len > 0 && p[len] == '*') {
            len--; /* {name*}: the rest of the path */
        }
        if (len == want && strncmp(p + 1, name, want) == 0) {
            return index < r->nparams ? r->params[index] : NULL;
        }
        index++;
    }
    return NULL;
}

const char *svc_query(const svc_request *r, const char *name)
{
    return r->query != NULL ? evhttp_find_header(r->query, name) : NULL;
}

const char *svc_header(const svc_request *r, const char *name)
{
    return evhttp_find_header(evhttp_request_get_input_headers(r->req), name);
}

/* A decimal number of at most 18 digits, no sign; -1 when it is not one. */
static int64_t parse_decimal(const char *text)
{
    int64_t v = 0;
    size_t n = strlen(text);
    if (n == 0 || n > 18) {
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        if (text[i] < '0' || text[i] > '9') {
            return -1;
        }
        v = v * 10 + (text[i] - '0');
    }
    return v;
}

ts_err svc_page_params(const svc_request *r, size_t *limit, int64_t *after_id)
{
    const char *l = svc_query(r, "limit");
    const char *c = svc_query(r, "cursor");
    *limit = SVC_PAGE_DEFAULT;
    *after_id = 0;
    if (l != NULL) {
        int64_t v = parse_decimal(l);
        if (v < 1 || v > SVC_PAGE_MAX) {
            return ts_error_set(TS_ERR_INVALID, "limit must be a whole number from 1 to %d",
                                SVC_PAGE_MAX);
        }
        *limit = (size_t)v;
    }
    if (c != NULL) {
        int64_t v = parse_decimal(c);
        if (v < 1) {
            return ts_error_set(TS_ERR_INVALID,
                                "cursor is not one this server gave (use the \"next\" of the "
                                "previous page)");
        }
        *after_id = v;
    }
    return TS_OK;
}

json_t *svc_page_next(size_t count, size_t limit, int64_t last_id)
{
    if (count == 0 || count < limit) {
        return json_null();
    }
    char text[24];
    snprintf(text, sizeof text, "%" PRId64, last_id);
    return json_string(text);
}

ts_err svc_body_json(const svc_request *r, const char *const *allowed, json_t **out)
{
    *out = NULL;
    if (r->body == NULL || r->body_len == 0) {
        return ts_error_set(TS_ERR_INVALID, "a JSON object is required as the request body");
    }
    json_error_t jerr;
    json_t *doc = json_loadb((const char *)r->body, r->body_len, JSON_REJECT_DUPLICATES, &jerr);
    if (doc == NULL) {
        return ts_error_set(TS_ERR_INVALID, "the body is not valid JSON: %s (line %d, column %d)",
                            jerr.text, jerr.line, jerr.column);
    }
    if (!json_is_object(doc)) {
        json_decref(doc);
        return ts_error_set(TS_ERR_INVALID, "the body must be a JSON object");
    }
    if (allowed != NULL) {
        const char *key;
        json_t *value;
        json_object_foreach(doc, key, value)
        {
            size_t i = 0;
            while (allowed[i] != NULL && strcmp(allowed[i], key) != 0) {
                i++;
            }
            if (allowed[i] == NULL) {
                ts_err rv =
                    ts_error_set(TS_ERR_INVALID, "unknown member \"%.64s\" in the body", key);
                json_decref(doc);
                return rv;
            }
        }
    }
    *out = doc;
    return TS_OK;
}

/* --- Replying --------------------------------------------------------------------------------- */

static const char *reason_phrase(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 409:
        return "Conflict";
    case 413:
        return "Payload Too Large";
    case 415:
        return "Unsupported Media Type";
    case 429:
        return "Too Many Requests";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 503:
        return "Service Unavailable";
    default:
        return status < 400 ? "OK" : "Error";
    }
}

void svc_reply_header(svc_request *r, const char *name, const char *value)
{
    evhttp_add_header(evhttp_request_get_output_headers(r->req), name, value);
}

/* The path for the log: as it arrived (still percent-encoded), without the query, printable. */
static void log_path(const svc_request *r, char out[SVC_LOG_PATH_MAX + 4])
{
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(r->req);
    const char *path = uri != NULL ? evhttp_uri_get_path(uri) : NULL;
    if (path == NULL || path[0] == '\0') {
        path = "/";
    }
    size_t n = 0;
    for (; path[n] != '\0' && n < SVC_LOG_PATH_MAX; n++) {
        unsigned char ch = (unsigned char)path[n];
        out[n] = ch <= 0x20 || ch >= 0x7f ? '?' : (char)ch;
    }
    if (path[n] != '\0') {
        memcpy(out + n, "...", 3);
        n += 3;
    }
    out[n] = '\0';
}

void svc_reply(svc_request *r, int status, const char *content_type, const void *body, size_t len)
{
    if (r->replied) {
        svc_log(svc_worker_server(r->worker), "error", "a second reply to %s %s was dropped",
                r->method, r->route != NULL ? r->route->pattern : "?");
        return;
    }
    r->replied = 1;
    r->status = status;
    struct evkeyvalq *headers = evhttp_request_get_output_headers(r->req);
    if (content_type != NULL) {
        evhttp_add_header(headers, "Content-Type", content_type);
    }
    if (svc_worker_draining(r->worker)) {
        evhttp_add_header(headers, "Connection", "close");
    }
    if (body != NULL && len > 0) {
        evbuffer_add(evhttp_request_get_output_buffer(r->req), body, len);
    }
    char path[SVC_LOG_PATH_MAX + 4];
    log_path(r, path);
    evhttp_send_reply(r->req, status, reason_phrase(status), NULL);

    uint64_t elapsed = svc_now_ns() - r->start_ns;
    svc_metrics_request(r->route_index, status, elapsed);
    svc_log(svc_worker_server(r->worker), "info", "%s %s %d %.3fms %s", r->method, path, status,
            (double)elapsed / 1e6, r->remote);
}

void svc_reply_json(svc_request *r, int status, json_t *doc)
{
    char *text = doc != NULL ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    if (text == NULL) {
        svc_log(svc_worker_server(r->worker), "error", "cannot encode a JSON reply");
        static const char fallback[] =
            "{\"error\":{\"code\":\"internal\",\"message\":\"internal error\"}}";
        svc_reply(r, 500, "application/json", fallback, sizeof fallback - 1);
        return;
    }
    svc_reply_header(r, "Cache-Control", "no-store");
    svc_reply(r, status, "application/json", text, strlen(text));
    free(text);
}

void svc_reply_error(svc_request *r, int status, const char *code, const char *fmt, ...)
{
    char message[SVC_MESSAGE_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    struct evkeyvalq *out = evhttp_request_get_output_headers(r->req);
    if (status == 401 && r->route != NULL && r->route->auth == SVC_AUTH_TOKEN &&
        evhttp_find_header(out, "WWW-Authenticate") == NULL) {
        /* RFC 6750 section 3: a resource that wants a token names the scheme. */
        evhttp_add_header(out, "WWW-Authenticate", "Bearer realm=\"tessera\"");
    }
    json_t *doc = json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", message);
    svc_reply_json(r, status, doc);
}

int svc_err_status(ts_err err)
{
    switch (err) {
    case TS_OK:
        return 200;
    case TS_ERR_INVALID:
    case TS_ERR_POLICY:
    case TS_ERR_URI:
        return 400;
    case TS_ERR_AUTH:
    case TS_ERR_PIN:
        return 401;
    case TS_ERR_DENIED:
        return 403;
    case TS_ERR_NOT_FOUND:
        return 404;
    case TS_ERR_EXISTS:
    case TS_ERR_CONFLICT:
    case TS_ERR_STATE:
        return 409;
    case TS_ERR_LIMIT:
        return 429;
    case TS_ERR_UNSUPPORTED:
        return 501;
    default:
        return 500;
    }
}

/* The error code word of a status. */
static const char *status_code_word(int status)
{
    switch (status) {
    case 400:
        return "invalid";
    case 401:
        return "unauthorized";
    case 403:
        return "forbidden";
    case 404:
        return "not_found";
    case 405:
        return "unsupported";
    case 409:
        return "conflict";
    case 413:
        return "too_large";
    case 429:
        return "rate_limited";
    case 501:
        return "unsupported";
    default:
        return "internal";
    }
}

void svc_reply_err(svc_request *r, ts_err err)
{
    int status = svc_err_status(err);
    if (err == TS_ERR_STORE) {
        svc_metrics_db_error();
    }
    if (status >= 500 && status != 501) {
        /* The real cause goes to the log; the client learns only that it failed. */
        svc_log(svc_worker_server(r->worker), "error", "%s %s: %s: %s", r->method, r->path,
                ts_err_name(err), ts_error_message());
        svc_reply_error(r, status, "internal", "internal error");
        return;
    }
    svc_reply_error(r, status, status_code_word(status), "%s", ts_error_message());
}
