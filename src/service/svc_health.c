/* Liveness, readiness and metrics: /healthz, /readyz, /metrics. */
#include <openssl/crypto.h>

#include "service/svc_core.h"

static void healthz(svc_request *r)
{
    svc_reply_json(r, 200, json_pack("{s:s}", "status", "ok"));
}

/* Ready when the database answers a cheap read, and not while shutting down. */
static void readyz(svc_request *r)
{
    if (svc_worker_draining(r->worker)) {
        svc_reply_error(r, 503, "internal", "the service is shutting down");
        return;
    }
    ts_tenant_row tenant;
    ts_err rv = ts_ca_tenant(r->ca, TS_DEFAULT_TENANT, &tenant);
    if (rv != TS_OK) {
        svc_metrics_db_error();
        svc_log(svc_worker_server(r->worker), "error", "readiness check failed: %s",
                ts_error_message());
        svc_reply_error(r, 503, "internal", "the database is not reachable");
        return;
    }
    svc_reply_json(r, 200, json_pack("{s:s}", "status", "ready"));
}

static void metrics(svc_request *r)
{
    char *text = NULL;
    size_t len = 0;
    ts_err rv = svc_metrics_render(&text, &len);
    if (rv != TS_OK) {
        svc_reply_err(r, rv);
        return;
    }
    svc_reply(r, 200, "text/plain; version=0.0.4; charset=utf-8", text, len);
    OPENSSL_free(text);
}

#define STATUS_SCHEMA "{\"type\":\"object\",\"properties\":{\"status\":{\"type\":\"string\"}}}"

const svc_route svc_health_routes[] = {
    {.method = "GET",
     .pattern = "/healthz",
     .handler = healthz,
     .summary = "Liveness: the process serves requests",
     .response_schema = STATUS_SCHEMA},
    {.method = "GET",
     .pattern = "/readyz",
     .handler = readyz,
     .summary = "Readiness: the database answers (503 when not, or while shutting down)",
     .response_schema = STATUS_SCHEMA},
    {.method = "GET",
     .pattern = "/metrics",
     .handler = metrics,
     .summary = "Prometheus metrics (text format 0.0.4)",
     .content_type = "text/plain; version=0.0.4"},
    {.method = NULL},
};
