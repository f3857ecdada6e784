/*
 * The session route and the REST routes of provisioning jobs and device status reports
 * (docs/protocol.md, docs/api.md): POST /agent/v1/session; POST/GET .../jobs,
 * GET .../jobs/{id}, GET .../devices/{uid}/status.
 */
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "common/error_internal.h"
#include "service/svc_api_internal.h"
#include "service/svc_session_internal.h"

#define A TS_ROLE_BIT(TS_ROLE_ADMIN)
#define O TS_ROLE_BIT(TS_ROLE_OPERATOR)
#define U TS_ROLE_BIT(TS_ROLE_AUDITOR)
#define D TS_ROLE_BIT(TS_ROLE_DEVICE)
#define T "/api/v1/tenants/{tenant}"

#define ROUTE(m, p, h, r, f, s)                                                                    \
    {                                                                                              \
        .method = m, .pattern = p, .handler = h, .auth = SVC_AUTH_TOKEN, .roles = r, .flags = f,   \
        .summary = s                                                                               \
    }

const svc_route svc_session_routes[] = {
    {.method = "POST",
     .pattern = "/agent/v1/session",
     .handler = svc_session_post,
     .auth = SVC_AUTH_CLIENT,
     .flags = SVC_ROUTE_BODY | SVC_ROUTE_CLIENT_TENANT,
     .summary = "Provisioning session: an AgentMessage in, a ServiceMessage out (protobuf, "
                "docs/protocol.md)",
     .content_type = "application/x-protobuf"},
    ROUTE("GET", T "/jobs", svc_session_job_list, A | O | U, 0,
          "Provisioning jobs, newest first: ?device=UID, ?limit"),
    ROUTE("POST", T "/jobs", svc_session_job_create, A | O, SVC_ROUTE_BODY,
          "Queue a job for a device, or one for each device of a group: set, import, "
          "rotate_trust or reenroll (with \"rekey\": true, a new key)"),
    ROUTE("GET", T "/jobs/{id}", svc_session_job_get, A | O | U, 0,
          "A job with the result of each of its requests"),
    ROUTE("GET", T "/devices/{uid}/status", svc_session_device_status, A | O | U | D,
          SVC_ROUTE_DEVICE_SELF, "The device's last status report"),
    {.method = NULL},
};

static json_t *job_json(const ts_job_row *j)
{
    return json_pack("{s:I, s:s, s:s, s:b, s:s, s:s, s:o, s:o}", "id", (json_int_t)j->id, "device",
                     j->device_uid, "kind", ts_job_kind_name(j->kind), "rekey", j->rekey != 0,
                     "state", ts_job_state_name(j->state), "actor", j->actor, "created",
                     svc_api_time_json(j->created), "updated", svc_api_time_json(j->updated));
}

/* Bytes as base64 text (JSON string); JSON null when empty. */
static json_t *b64_json(const uint8_t *p, size_t len)
{
    if (len == 0) {
        return json_null();
    }
    char *text = OPENSSL_malloc(4 * ((len + 2) / 3) + 1);
    if (text == NULL) {
        return NULL;
    }
    int n = EVP_EncodeBlock((unsigned char *)text, p, (int)len);
    json_t *s = json_stringn(text, (size_t)n);
    OPENSSL_free(text);
    return s;
}

static json_t *request_json(const ts_job_request_row *q)
{
    /* An import's blob and a value may be long; the list shows sizes, not bytes. */
    return json_pack("{s:I, s:i, s:s, s:s, s:I, s:s, s:s*, s:s*, s:o, s:o, s:o}", "id",
                     (json_int_t)q->id, "seq", q->seq, "operation", ts_job_op_name(q->operation),
                     "label", q->label, "data_bytes", (json_int_t)q->data_len, "state",
                     ts_job_state_name(q->state), "error_code",
                     q->error_code[0] != '\0' ? q->error_code : NULL, "error_message",
                     q->error_message[0] != '\0' ? q->error_message : NULL, "payload",
                     b64_json(q->payload, q->payload_len), "sent", svc_api_time_json(q->sent),
                     "answered", svc_api_time_json(q->answered));
}

void svc_session_job_list(svc_request *r)
{
    ts_job_row *rows = NULL;
    size_t count = 0, limit = 0;
    int64_t after = 0;

    if (!svc_api_tenant_ready(r) || !svc_api_no_body(r)) {
        return;
    }
    const char *device = svc_query(r, "device");
    ts_err rv = svc_page_params(r, &limit, &after);
    if (rv == TS_OK && device != NULL && ts_device_uid_check(device) != TS_OK) {
        rv = ts_error_prefix(TS_ERR_INVALID, "query parameter 'device'");
    }
    if (rv == TS_OK) {
        rv = ts_ca_job_list(r->ca, r->tenant.name, device, limit, &rows, &count);
    }
    if (rv != TS_OK) {
        svc_reply_err(r, rv);
        return;
    }
    json_t *items = json_array();
    for (size_t i = 0; items != NULL && i < count; i++) {
        if (json_array_append_new(items, job_json(&rows[i])) != 0) {
            json_decref(items);
            items = NULL;
        }
    }
    OPENSSL_free(rows);
    svc_api_reply_list(r, items, 0);
}

void svc_session_job_get(svc_request *r)
{
    ts_job_row job;
    ts_job_request_row *reqs = NULL;
    size_t n = 0;
    int64_t id = 0;

    if (!svc_api_tenant_ready(r) || !svc_api_no_body(r)) {
        return;
    }
    ts_err rv = svc_api_query_int(svc_param(r, "id"), "a job id", 1, INT64_MAX, &id);
    if (rv == TS_OK) {
        rv = ts_ca_job_show(r->ca, r->tenant.name, id, &job, &reqs, &n);
    }
    if (rv != TS_OK) {
        svc_reply_err(r, rv);
        return;
    }
    json_t *doc = job_json(&job);
    json_t *items = json_array();
    for (size_t i = 0; items != NULL && i < n; i++) {
        if (json_array_append_new(items, request_json(&reqs[i])) != 0) {
            json_decref(items);
            items = NULL;
        }
    }
    ts_job_requests_free(reqs, n);
    if (doc != NULL && (items == NULL || json_object_set_new(doc, "requests", items) != 0)) {
        json_decref(doc);
        doc = NULL;
    }
    svc_api_reply_doc(r, 200, doc);
}

/* Decodes base64 text (RFC 4648, padded) into *out (OPENSSL_free). */
static ts_err b64_decode(const char *text, uint8_t **out, size_t *len)
{
    size_t n = strlen(text);
    if (n == 0 || n % 4 != 0 || n > 4 * (TS_JOB_DATA_MAX / 3 + 1)) {
        return ts_error_set(TS_ERR_INVALID, "\"blob\" is not padded base64 of 1 to %d bytes",
                            TS_JOB_DATA_MAX);
    }
    uint8_t *buf = OPENSSL_malloc(n / 4 * 3);
    if (buf == NULL) {
        return ts_error_set(TS_ERR_NOMEM, "out of memory");
    }
    int got = EVP_DecodeBlock(buf, (const unsigned char *)text, (int)n);
    if (got < 0) {
        OPENSSL_free(buf);
        return ts_error_set(TS_ERR_INVALID, "\"blob\" is not base64");
    }
    /* EVP_DecodeBlock counts the padding as zero bytes. */
    size_t pad = (text[n - 1] == '=') + (text[n - 2] == '=');
    *out = buf;
    *len = (size_t)got - pad;
    return TS_OK;
}

/* The job for each member of the group: {"group", "count", "jobs": [...]}; frees blob and doc. */
static void group_jobs_create(svc_request *r, const ts_job_spec *spec, const char *group,
                              uint8_t *blob, json_t *doc)
{
    ts_job_row *jobs = NULL;
    size_t n = 0;
    ts_err rv = ts_ca_job_create_group(r->ca, spec, group, &jobs, &n);
    json_t *reply = NULL;
    if (rv == TS_OK) {
        json_t *items = json_array();
        for (size_t i = 0; items != NULL && i < n; i++) {
            if (json_array_append_new(items, job_json(&jobs[i])) != 0) {
                json_decref(items);
                items = NULL;
            }
        }
        reply = items == NULL ? NULL
                              : json_pack("{s:s, s:I, s:o}", "group", group, "count", (json_int_t)n,
                                          "jobs", items);
    }
    OPENSSL_free(jobs);
    OPENSSL_clear_free(blob, spec->data_len);
    json_decref(doc);
    if (rv != TS_OK) {
        svc_reply_err(r, rv);
        return;
    }
    svc_api_reply_doc(r, 201, reply);
}

void svc_session_job_create(svc_request *r)
{
    static const char *const allowed[] = {"device",       "group",    "set",   "import",
                                          "rotate_trust", "reenroll", "rekey", NULL};
    const char *keys[TS_JOB_SETS_MAX], *values[TS_JOB_SETS_MAX];
    ts_job_spec spec = {0};
    ts_job_row job;
    uint8_t *blob = NULL;
    json_t *doc = NULL;

    if (!svc_api_tenant_ready(r) || !svc_api_json_body_type(r)) {
        return;
    }
    ts_err rv = svc_body_json(r, allowed, &doc);
    if (rv != TS_OK) {
        svc_reply_err(r, rv);
        return;
    }
    json_t *set = json_object_get(doc, "set");
    json_t *imp = json_object_get(doc, "import");
    json_t *trust = json_object_get(doc, "rotate_trust");
    json_t *re = json_object_get(doc, "reenroll");
    json_t *rekey = json_object_get(doc, "rekey");
    spec.tenant = r->tenant.name;
    spec.device_uid = json_string_value(json_object_get(doc, "device"));
    const char *group = json_string_value(json_object_get(doc, "group"));
    int kinds = (set != NULL) + (imp != NULL) + (trust != NULL) + (re != NULL);
    if ((spec.device_uid == NULL) == (group == NULL) || kinds != 1) {
        rv = ts_error_set(TS_ERR_INVALID,
                          "a job names a \"device\" or a \"group\" and exactly one of \"set\", "
                          "\"import\", \"rotate_trust\", \"reenroll\"");
    } else if (rekey != NULL && (re == NULL || !json_is_boolean(rekey))) {
        rv = ts_error_set(TS_ERR_INVALID, "\"rekey\" is true or false, beside \"reenroll\": true");
    } else if (set != NULL) {
        const char *k;
        json_t *v;
        spec.kind = TS_JOB_SET;
        if (!json_is_object(set) || json_object_size(set) > TS_JOB_SETS_MAX) {
            rv = ts_error_set(TS_ERR_INVALID, "\"set\" is an object of 1 to %d strings",
                              TS_JOB_SETS_MAX);
        }
        json_object_foreach(set, k, v)
        {
            if (rv == TS_OK && !json_is_string(v)) {
                rv = ts_error_set(TS_ERR_INVALID, "\"set\".\"%.64s\" is not a string", k);
            }
            if (rv == TS_OK) {
                keys[spec.count] = k;
                values[spec.count++] = json_string_value(v);
            }
        }
        spec.keys = keys;
        spec.values = values;
    } else if (imp != NULL) {
        spec.kind = TS_JOB_IMPORT;
        spec.label = json_string_value(json_object_get(imp, "label"));
        const char *b64 = json_string_value(json_object_get(imp, "blob"));
        if (!json_is_object(imp) || spec.label == NULL || b64 == NULL) {
            rv =
                ts_error_set(TS_ERR_INVALID,
                             "\"import\" is {\"label\": ..., \"blob\": base64 of the sealed blob}");
        } else {
            rv = b64_decode(b64, &blob, &spec.data_len);
            spec.data = blob;
        }
    } else if (trust != NULL) {
        spec.kind = TS_JOB_ROTATE_TRUST;
        spec.data = (const uint8_t *)json_string_value(trust);
        spec.data_len = json_string_length(trust);
        if (spec.data == NULL) {
            rv = ts_error_set(TS_ERR_INVALID, "\"rotate_trust\" is PEM text");
        }
    } else {
        spec.kind = TS_JOB_REENROLL;
        spec.rekey = json_is_true(rekey);
        if (!json_is_true(re)) {
            rv = ts_error_set(TS_ERR_INVALID, "\"reenroll\" is true");
        }
    }
    if (rv == TS_OK && group != NULL) {
        group_jobs_create(r, &spec, group, blob, doc);
        return;
    }
    if (rv == TS_OK) {
        rv = ts_ca_job_create(r->ca, &spec, &job);
    }
    OPENSSL_clear_free(blob, spec.data_len);
    json_decref(doc);
    if (rv != TS_OK) {
        svc_reply_err(r, rv);
        return;
    }
    svc_api_reply_doc(r, 201, job_json(&job));
}

void svc_session_device_status(svc_request *r)
{
    char *text = NULL;
    time_t received = 0;
    json_error_t jerr;

    if (!svc_api_tenant_ready(r) || !svc_api_no_body(r)) {
        return;
    }
    const char *uid = svc_param(r, "uid");
    if (r->principal.role == TS_ROLE_DEVICE && strcmp(uid, r->principal.device_uid) != 0) {
        svc_reply_error(r, 404, "not_found", "no status of device '%.64s'", uid);
        return;
    }
    ts_err rv = ts_ca_device_status_get(r->ca, r->tenant.name, uid, &text, &received);
    if (rv == TS_ERR_NOT_FOUND) {
        /* Never reported: an answer with no report, not an error. */
        svc_api_reply_doc(r, 200,
                          json_pack("{s:s, s:n, s:n}", "device", uid, "received", "report"));
        return;
    }
    if (rv != TS_OK) {
        svc_reply_err(r, rv);
        return;
    }
    json_t *report = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
    OPENSSL_free(text);
    json_t *doc = report == NULL ? NULL
                                 : json_pack("{s:s, s:o, s:o}", "device", uid, "received",
                                             svc_api_time_json(received), "report", report);
    svc_api_reply_doc(r, 200, doc);
}
