/*
 * Process-wide metrics, counted with relaxed atomics (no lock on the request path) and rendered
 * as the Prometheus text exposition format, version 0.0.4.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

#include "common/error_internal.h"
#include "service/svc_core.h"

enum {
    SVC_ROUTES_MAX = 256, /* routes counted one by one; more share the last row */
    SVC_TEXT_MAX = 8 * 1024 * 1024,
};

/* The statuses counted one by one; anything else is counted as "other". */
static const int statuses[] = {200, 201, 202, 204, 400, 401, 403, 404,
                               405, 409, 413, 415, 429, 500, 501, 503};
#define NSTATUS (sizeof statuses / sizeof statuses[0])

/* Latency bucket bounds, in seconds and in nanoseconds. */
static const char *const bucket_text[] = {"0.0005", "0.001", "0.0025", "0.005", "0.01",
                                          "0.025",  "0.05",  "0.1",    "0.25",  "0.5",
                                          "1",      "2.5",   "5",      "10"};
static const uint64_t bucket_ns[] = {500000,     1000000,    2500000,    5000000,    10000000,
                                     25000000,   50000000,   100000000,  250000000,  500000000,
                                     1000000000, 2500000000, 5000000000, 10000000000};
#define NBUCKET (sizeof bucket_ns / sizeof bucket_ns[0])

/* Row SVC_ROUTES_MAX: requests that matched no route. */
static atomic_uint_fast64_t requests[SVC_ROUTES_MAX + 1][NSTATUS + 1];
static atomic_uint_fast64_t latency[SVC_ROUTES_MAX + 1][NBUCKET + 1];
static atomic_uint_fast64_t latency_sum_ns[SVC_ROUTES_MAX + 1];
static atomic_uint_fast64_t issued, revoked, db_errors;
static atomic_int_fast64_t connections;

void svc_metrics_request(size_t route_index, int status, uint64_t latency_ns)
{
    size_t row = route_index < SVC_ROUTES_MAX ? route_index : SVC_ROUTES_MAX;
    if (route_index != SIZE_MAX && route_index >= SVC_ROUTES_MAX) {
        row = SVC_ROUTES_MAX - 1;
    }
    size_t col = NSTATUS;
    for (size_t i = 0; i < NSTATUS; i++) {
        if (statuses[i] == status) {
            col = i;
            break;
        }
    }
    size_t b = 0;
    while (b < NBUCKET && latency_ns > bucket_ns[b]) {
        b++;
    }
    atomic_fetch_add_explicit(&requests[row][col], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&latency[row][b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&latency_sum_ns[row], latency_ns, memory_order_relaxed);
}

void svc_metrics_issued(unsigned count)
{
    atomic_fetch_add_explicit(&issued, count, memory_order_relaxed);
}

void svc_metrics_revoked(unsigned count)
{
    atomic_fetch_add_explicit(&revoked, count, memory_order_relaxed);
}

void svc_metrics_db_error(void)
{
    atomic_fetch_add_explicit(&db_errors, 1, memory_order_relaxed);
}

void svc_metrics_connections(int delta)
{
    atomic_fetch_add_explicit(&connections, delta, memory_order_relaxed);
}

/* --- Rendering -------------------------------------------------------------------------------- */

typedef struct text_buf {
    char *data;
    size_t len, cap;
    int failed;
} text_buf;

static void put(text_buf *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(text_buf *t, const char *fmt, ...)
{
    if (t->failed) {
        return;
    }
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(t->data + t->len, t->cap - t->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            t->failed = 1;
            return;
        }
        if ((size_t)n < t->cap - t->len) {
            t->len += (size_t)n;
            return;
        }
        size_t cap = t->cap * 2 + (size_t)n;
        char *data = cap <= SVC_TEXT_MAX ? OPENSSL_realloc(t->data, cap) : NULL;
        if (data == NULL) {
            t->failed = 1;
            return;
        }
        t->data = data;
        t->cap = cap;
    }
}

static uint64_t load(atomic_uint_fast64_t *v)
{
    return atomic_load_explicit(v, memory_order_relaxed);
}

/* The labels of a row: method and route pattern (patterns hold no '"' or '\'). */
static void row_labels(size_t row, size_t nroutes, const char **method, const char **route)
{
    const svc_route *r = row < SVC_ROUTES_MAX && row < nroutes ? svc_route_at(row) : NULL;
    *method = r != NULL ? r->method : "*";
    *route = r != NULL ? r->pattern : (row == SVC_ROUTES_MAX ? "none" : "other");
}

ts_err svc_metrics_render(char **text, size_t *len)
{
    text_buf t = {.cap = 16384};
    t.data = OPENSSL_malloc(t.cap);
    if (t.data == NULL) {
        return ts_error_set(TS_ERR_NOMEM, "out of memory");
    }
    size_t nroutes = svc_route_count();
    put(&t, "# HELP tessera_http_requests_total HTTP requests by route and status.\n"
            "# TYPE tessera_http_requests_total counter\n");
    for (size_t row = 0; row <= SVC_ROUTES_MAX; row++) {
        const char *method, *route;
        row_labels(row, nroutes, &method, &route);
        for (size_t col = 0; col <= NSTATUS; col++) {
            uint64_t n = load(&requests[row][col]);
            if (n == 0) {
                continue;
            }
            char status[8];
            if (col < NSTATUS) {
                snprintf(status, sizeof status, "%d", statuses[col]);
            } else {
                snprintf(status, sizeof status, "other");
            }
            put(&t,
                "tessera_http_requests_total{method=\"%s\",route=\"%s\",status=\"%s\"} %" PRIu64
                "\n",
                method, route, status, n);
        }
    }
    put(&t, "# HELP tessera_http_request_duration_seconds Time from a complete request to its "
            "reply.\n"
            "# TYPE tessera_http_request_duration_seconds histogram\n");
    for (size_t row = 0; row <= SVC_ROUTES_MAX; row++) {
        uint64_t counts[NBUCKET + 1];
        uint64_t total = 0;
        for (size_t b = 0; b <= NBUCKET; b++) {
            counts[b] = load(&latency[row][b]);
            total += counts[b];
        }
        if (total == 0) {
            continue;
        }
        const char *method, *route;
        row_labels(row, nroutes, &method, &route);
        uint64_t cumulative = 0;
        for (size_t b = 0; b <= NBUCKET; b++) {
            cumulative += counts[b];
            put(&t,
                "tessera_http_request_duration_seconds_bucket{method=\"%s\",route=\"%s\","
                "le=\"%s\"} %" PRIu64 "\n",
                method, route, b < NBUCKET ? bucket_text[b] : "+Inf", cumulative);
        }
        put(&t,
            "tessera_http_request_duration_seconds_sum{method=\"%s\",route=\"%s\"} %.6f\n"
            "tessera_http_request_duration_seconds_count{method=\"%s\",route=\"%s\"} %" PRIu64 "\n",
            method, route, (double)load(&latency_sum_ns[row]) / 1e9, method, route, cumulative);
    }
    put(&t,
        "# HELP tessera_certificates_issued_total Certificates issued by this process.\n"
        "# TYPE tessera_certificates_issued_total counter\n"
        "tessera_certificates_issued_total %" PRIu64 "\n"
        "# HELP tessera_certificates_revoked_total Certificates revoked by this process.\n"
        "# TYPE tessera_certificates_revoked_total counter\n"
        "tessera_certificates_revoked_total %" PRIu64 "\n"
        "# HELP tessera_db_errors_total Database failures seen by requests.\n"
        "# TYPE tessera_db_errors_total counter\n"
        "tessera_db_errors_total %" PRIu64 "\n"
        "# HELP tessera_http_connections Open client connections.\n"
        "# TYPE tessera_http_connections gauge\n"
        "tessera_http_connections %" PRId64 "\n",
        load(&issued), load(&revoked), load(&db_errors),
        (int64_t)atomic_load_explicit(&connections, memory_order_relaxed));
    if (t.failed) {
        OPENSSL_free(t.data);
        return ts_error_set(TS_ERR_NOMEM, "cannot render the metrics");
    }
    *text = t.data;
    *len = t.len;
    return TS_OK;
}
