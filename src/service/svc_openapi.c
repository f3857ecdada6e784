/*
 * GET /api/v1/openapi.json: an OpenAPI 3.0.3 document made from the route tables themselves, so
 * it describes exactly the routes the server dispatches, with their parameters, authentication,
 * roles and schemas. Built once per process.
 */
#include <ctype.h>
#include <pthread.h>
#include <string.h>

#include "common/error_internal.h"
#include "service/svc_core.h"

static pthread_once_t doc_once = PTHREAD_ONCE_INIT;
static char *doc_text;
static size_t doc_len;
static char doc_error[256];

static json_t *schema_of(const char *text, const char *what, const svc_route *r)
{
    if (text == NULL) {
        return json_pack("{s:s}", "type", "object");
    }
    json_error_t jerr;
    json_t *schema = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
    if (schema == NULL && doc_error[0] == '\0') {
        snprintf(doc_error, sizeof doc_error, "%s schema of %s %s: %s", what, r->method, r->pattern,
                 jerr.text);
    }
    return schema;
}

/* The content of a request or reply: JSON unless the route names another type. */
static json_t *content_of(const svc_route *r, const char *schema_text, const char *what)
{
    const char *type = r->content_type != NULL ? r->content_type : "application/json";
    json_t *schema = r->content_type != NULL && schema_text == NULL
                         ? json_pack("{s:s}", "type", "string")
                         : schema_of(schema_text, what, r);
    if (schema == NULL) {
        return NULL;
    }
    return json_pack("{s:{s:o}}", type, "schema", schema);
}

static json_t *roles_of(unsigned mask)
{
    json_t *roles = json_array();
    for (int role = TS_ROLE_ADMIN; roles != NULL && role <= TS_ROLE_DEVICE; role++) {
        if (mask & TS_ROLE_BIT(role)) {
            json_array_append_new(roles, json_string(ts_role_name((ts_role)role)));
        }
    }
    return roles;
}

/* "get_api_v1_tenants_tenant_users" */
static json_t *operation_id(const svc_route *r)
{
    char id[SVC_PATH_MAX + 16];
    size_t n = 0;
    for (const char *m = r->method; *m != '\0' && n < sizeof id - 1; m++) {
        id[n++] = (char)tolower((unsigned char)*m);
    }
    for (const char *p = r->pattern; *p != '\0' && n < sizeof id - 1; p++) {
        if (isalnum((unsigned char)*p)) {
            id[n++] = (char)tolower((unsigned char)*p);
        } else if ((*p == '/' || *p == '.' || *p == '-') && id[n - 1] != '_') {
            id[n++] = '_';
        }
    }
    while (n > 0 && id[n - 1] == '_') {
        n--;
    }
    id[n] = '\0';
    return json_string(id);
}

static json_t *operation(const svc_route *r)
{
    json_t *op = json_object();
    json_t *params = json_array();
    for (const char *p = strchr(r->pattern, '{'); p != NULL; p = strchr(p + 1, '{')) {
        const char *end = strchr(p, '}');
        if (end == NULL) {
            break;
        }
        size_t len = (size_t)(end - p - 1);
        if (len > 0 && p[len] == '*') {
            len--; /* {name*}: the rest of the path */
        }
        json_array_append_new(params, json_pack("{s:s%,s:s,s:b,s:{s:s}}", "name", p + 1, len, "in",
                                                "path", "required", 1, "schema", "type", "string"));
    }
    json_object_set_new(op, "operationId", operation_id(r));
    json_object_set_new(op, "summary", json_string(r->summary != NULL ? r->summary : ""));
    if (json_array_size(params) > 0) {
        json_object_set_new(op, "parameters", params);
    } else {
        json_decref(params);
    }
    if (r->flags & SVC_ROUTE_BODY) {
        json_t *content = content_of(r, r->request_schema, "request");
        json_object_set_new(op, "requestBody",
                            json_pack("{s:b,s:o*}", "required", 1, "content", content));
    }
    json_t *ok = content_of(r, r->response_schema, "response");
    json_t *responses =
        json_pack("{s:{s:s,s:o*},s:{s:s,s:{s:{s:{s:s}}}}}", "2XX", "description", "success",
                  "content", ok, "default", "description", "an error", "content",
                  "application/json", "schema", "$ref", "#/components/schemas/Error");
    if (responses == NULL && doc_error[0] == '\0') {
        snprintf(doc_error, sizeof doc_error, "responses of %s %s", r->method, r->pattern);
    }
    json_object_set_new(op, "responses", responses);
    switch (r->auth) {
    case SVC_AUTH_TOKEN:
        json_object_set_new(op, "security", json_pack("[{s:[]}]", "bearer"));
        json_object_set_new(op, "x-roles", roles_of(r->roles));
        break;
    case SVC_AUTH_CLIENT:
        json_object_set_new(op, "security", json_array());
        json_object_set_new(op, "x-auth", json_string("client-certificate"));
        break;
    case SVC_AUTH_HANDLER:
        json_object_set_new(op, "security", json_array());
        json_object_set_new(op, "x-auth", json_string("client-certificate-or-claim-code"));
        break;
    default:
        json_object_set_new(op, "security", json_array());
        break;
    }
    if (r->flags & SVC_ROUTE_DEVICE_SELF) {
        json_object_set_new(op, "x-device-self", json_true());
    }
    if (r->flags & SVC_ROUTE_PLAIN_HTTP) {
        json_object_set_new(op, "x-plain-http", json_true());
    }
    return op;
}

static void method_lower(const char *method, char out[16])
{
    size_t i = 0;
    for (; method[i] != '\0' && i < 15; i++) {
        out[i] = (char)tolower((unsigned char)method[i]);
    }
    out[i] = '\0';
}

static void build(void)
{
    json_t *paths = json_object();
    for (size_t i = 0; paths != NULL; i++) {
        const svc_route *r = svc_route_at(i);
        if (r == NULL) {
            break;
        }
        /* OpenAPI path templates name a parameter without our {name*} mark. */
        char path[SVC_PATH_MAX];
        size_t n = 0;
        for (const char *c = r->pattern; *c != '\0' && n < sizeof path - 1; c++) {
            if (!(*c == '*' && c[1] == '}')) {
                path[n++] = *c;
            }
        }
        path[n] = '\0';
        json_t *item = json_object_get(paths, path);
        if (item == NULL) {
            item = json_object();
            json_object_set_new(paths, path, item);
        }
        char method[16];
        method_lower(r->method, method);
        json_object_set_new(item, method, operation(r));
    }
    json_t *doc = json_pack(
        "{s:s,s:{s:s,s:s,s:s},s:o,s:{s:{s:{s:s,s:s}},s:{s:{s:s,s:[s],s:{s:{s:s,s:[s,s],s:{s:{s:"
        "s},s:{s:s}}}}}}}}",
        "openapi", "3.0.3", "info", "title", "Tessera trust service", "version", "1", "description",
        "Generated from the routes the server dispatches.", "paths", paths, "components",
        "securitySchemes", "bearer", "type", "http", "scheme", "bearer", "schemas", "Error", "type",
        "object", "required", "error", "properties", "error", "type", "object", "required", "code",
        "message", "properties", "code", "type", "string", "message", "type", "string");
    if (doc == NULL || doc_error[0] != '\0') {
        if (doc_error[0] == '\0') {
            snprintf(doc_error, sizeof doc_error, "cannot build the OpenAPI document");
        }
        json_decref(doc);
        return;
    }
    doc_text = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    if (doc_text == NULL) {
        snprintf(doc_error, sizeof doc_error, "cannot encode the OpenAPI document");
        return;
    }
    doc_len = strlen(doc_text);
}

static void openapi(svc_request *r)
{
    pthread_once(&doc_once, build);
    if (doc_text == NULL) {
        svc_log(svc_worker_server(r->worker), "error", "OpenAPI: %s", doc_error);
        svc_reply_error(r, 500, "internal", "internal error");
        return;
    }
    svc_reply(r, 200, "application/json", doc_text, doc_len);
}

const svc_route svc_openapi_routes[] = {
    {.method = "GET",
     .pattern = "/api/v1/openapi.json",
     .handler = openapi,
     .summary = "This document: every route the server dispatches"},
    {.method = NULL},
};
