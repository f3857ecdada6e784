/*
 * Signed remote commands over REST (docs/commands.md, docs/api.md): queue one for a device, list
 * a device's commands newest first, show one. Publishing and results run in the service's MQTT
 * client (svc_mqtt.c); without it a command stays pending until it expires.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "common/error_internal.h"
#include "service/svc_api_internal.h"
#include "service/svc_api_schema.h"
#include "tessera/commands.h"

#define A TS_ROLE_BIT(TS_ROLE_ADMIN)
#define O TS_ROLE_BIT(TS_ROLE_OPERATOR)
#define U TS_ROLE_BIT(TS_ROLE_AUDITOR)
#define D TS_ROLE_BIT(TS_ROLE_DEVICE)
#define T "/api/v1/tenants/{tenant}"

#define SA_COMMAND                                                                                 \
    SA_OBJ(                                                                                        \
        "\"id\", \"device\", \"seq\", \"name\", \"args\", \"issued\", \"expires\", \"status\", "   \
        "\"output\", \"error\", \"result_time\", \"sent\", \"actor\"",                             \
        "\"id\": " SA_STR ", \"device\": " SA_STR ", \"seq\": " SA_INT ", \"name\": " SA_STR       \
        ", \"args\": " SA_STRS ", \"issued\": " SA_TIME ", \"expires\": " SA_TIME                  \
        ", \"status\": {\"type\": \"string\", \"enum\": [\"pending\", \"sent\", \"done\", "        \
        "\"failed\", \"refused\", \"expired\"]}, \"output\": " SA_STR_NULL                         \
        ", \"error\": " SA_STR_NULL ", \"result_time\": " SA_TIME_NULL ", \"sent\": " SA_TIME_NULL \
        ", \"actor\": " SA_STR)

#define SA_REQ_COMMAND                                                                             \
    SA_OBJ("\"name\"", "\"name\": {\"type\": \"string\", \"minLength\": 1, \"maxLength\": 32, "    \
                       "\"pattern\": \"^[a-z][a-z0-9._-]*$\"}, \"args\": " SA_STRS                 \
                       ", \"ttl\": {\"type\": \"integer\", \"minimum\": 1, \"maximum\": 604800}")

static void command_create(svc_request *r);
static void command_list(svc_request *r);
static void command_get(svc_request *r);

#define ROUTE(m, p, h, r, f, s, req, resp)                                                         \
    {                                                                                              \
        .method = m, .pattern = p, .handler = h, .auth = SVC_AUTH_TOKEN, .roles = r, .flags = f,   \
        .summary = s, .request_schema = req, .response_schema = resp                               \
    }

const svc_route svc_command_routes[] = {
    ROUTE("POST", T "/devices/{uid}/commands", command_create, A | O, SVC_ROUTE_BODY,
          "Queue a signed remote command for a device: name, args (strings), ttl seconds "
          "(1..604800, default 300)",
          SA_REQ_COMMAND, SA_COMMAND),
    ROUTE("GET", T "/devices/{uid}/commands", command_list, A | O | U | D, SVC_ROUTE_DEVICE_SELF,
          "A device's commands, newest first (?limit, ?cursor; a device sees its own)", NULL,
          SA_LIST(SA_COMMAND)),
    ROUTE("GET", T "/devices/{uid}/commands/{id}", command_get, A | O | U | D,
          SVC_ROUTE_DEVICE_SELF, "One command with its result (a device sees its own)", NULL,
          SA_COMMAND),
    {.method = NULL},
};

static json_t *text_or_null(const char *s)
{
    return s[0] != '\0' ? json_string(s) : json_null();
}

static json_t *command_json(const ts_command_row *c)
{
    json_error_t jerr;
    json_t *args = json_loads(c->cmd.args, 0, &jerr);
    if (!json_is_array(args)) {
        json_decref(args);
        args = json_array();
    }
    return json_pack("{s:s, s:s, s:I, s:s, s:o, s:o, s:o, s:s, s:o, s:o, s:o, s:o, s:s}", "id",
                     c->cmd.id, "device", c->cmd.uid, "seq", (json_int_t)c->cmd.seq, "name",
                     c->cmd.name, "args", args, "issued", svc_api_time_json((time_t)c->cmd.issued),
                     "expires", svc_api_time_json((time_t)c->cmd.expires), "status",
                     ts_command_state_name(c->state), "output", text_or_null(c->output), "error",
                     text_or_null(c->error), "result_time", svc_api_time_json(c->result_time),
                     "sent", svc_api_time_json(c->sent), "actor", c->actor);
}

/* A device principal reads only its own device's commands (the router checks this too). */
static int device_self(svc_request *r, const char *uid)
{
    if (r->principal.role == TS_ROLE_DEVICE && strcmp(uid, r->principal.device_uid) != 0) {
        svc_reply_error(r, 404, "not_found", "no device '%.64s' in tenant '%s'", uid,
                        r->tenant.name);
        return 0;
    }
    return 1;
}

/* The body's "args": absent, or an array of strings, as compact JSON into out. */
static ts_err body_args(json_t *doc, char out[TS_COMMAND_ARGS_MAX + 1])
{
    json_t *args = json_object_get(doc, "args");
    size_t i;
    json_t *v;

    if (args == NULL) {
        snprintf(out, TS_COMMAND_ARGS_MAX + 1, "[]");
        return TS_OK;
    }
    if (!json_is_array(args)) {
        return ts_error_set(TS_ERR_INVALID, "request body: member \"args\" must be an array of "
                                            "strings");
    }
    json_array_foreach(args, i, v)
    {
        if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v)) {
            return ts_error_set(TS_ERR_INVALID,
                                "request body: member \"args\"[%zu] must be a string without NUL",
                                i);
        }
    }
    char *text = json_dumps(args, JSON_COMPACT);
    if (text == NULL) {
        return ts_error_set(TS_ERR_NOMEM, "out of memory");
    }
    ts_err rv = TS_OK;
    if (strlen(text) > TS_COMMAND_ARGS_MAX) {
        rv = ts_error_set(TS_ERR_INVALID, "request body: member \"args\" is over %d bytes",
                          TS_COMMAND_ARGS_MAX);
    } else {
        snprintf(out, TS_COMMAND_ARGS_MAX + 1, "%s", text);
    }
    free(text);
    return rv;
}

static void command_create(svc_request *r)
{
    static const char *const allowed[] = {"name", "args", "ttl", NULL};
    char args[TS_COMMAND_ARGS_MAX + 1];
    ts_command_spec spec = {0};
    ts_command_row row;
    json_t *doc = NULL;

    if (!svc_api_tenant_ready(r) || !svc_api_json_body_type(r)) {
        return;
    }
    ts_err rv = svc_body_json(r, allowed, &doc);
    json_t *name = json_object_get(doc, "name");
    json_t *ttl = json_object_get(doc, "ttl");
    if (rv == TS_OK && !json_is_string(name)) {
        rv = ts_error_set(TS_ERR_INVALID, "request body: member \"name\" is a required string");
    }
    if (rv == TS_OK && ttl != NULL &&
        (!json_is_integer(ttl) || json_integer_value(ttl) < 1 ||
         json_integer_value(ttl) > TS_COMMAND_TTL_MAX)) {
        rv = ts_error_set(TS_ERR_INVALID,
                          "request body: member \"ttl\" must be an integer, 1 to %d seconds",
                          TS_COMMAND_TTL_MAX);
    }
    if (rv == TS_OK) {
        rv = body_args(doc, args);
    }
    if (rv == TS_OK) {
        spec.tenant = r->tenant.name;
        spec.device_uid = svc_param(r, "uid");
        spec.name = json_string_value(name);
        spec.args = args;
        spec.ttl = ttl != NULL ? json_integer_value(ttl) : 0;
        rv = ts_ca_command_create(r->ca, &spec, &row);
    }
    json_decref(doc);
    if (rv != TS_OK) {
        svc_reply_err(r, rv);
        return;
    }
    svc_api_reply_doc(r, 201, command_json(&row));
}

static void command_list(svc_request *r)
{
    ts_command_row *rows = NULL;
    size_t count = 0, limit = 0;
    int64_t before = 0;
    const char *uid = svc_param(r, "uid");

    if (!svc_api_tenant_ready(r) || !svc_api_no_body(r) || !device_self(r, uid)) {
        return;
    }
    ts_err rv = svc_page_params(r, &limit, &before);
    if (rv == TS_OK) {
        /* One row more than the page tells whether another page follows. */
        rv = ts_ca_command_list(r->ca, r->tenant.name, uid, before, limit + 1, &rows, &count);
    }
    if (rv != TS_OK) {
        svc_reply_err(r, rv);
        return;
    }
    int64_t next = count > limit ? rows[limit - 1].rowid : 0;
    json_t *items = json_array();
    for (size_t i = 0; items != NULL && i < count && i < limit; i++) {
        if (json_array_append_new(items, command_json(&rows[i])) != 0) {
            json_decref(items);
            items = NULL;
        }
    }
    OPENSSL_free(rows);
    svc_api_reply_list(r, items, next);
}

static void command_get(svc_request *r)
{
    ts_command_row row;
    const char *uid = svc_param(r, "uid");

    if (!svc_api_tenant_ready(r) || !svc_api_no_body(r) || !device_self(r, uid)) {
        return;
    }
    ts_err rv = ts_ca_command_get(r->ca, r->tenant.name, uid, svc_param(r, "id"), &row);
    if (rv != TS_OK) {
        svc_reply_err(r, rv);
        return;
    }
    svc_api_reply_doc(r, 200, command_json(&row));
}
