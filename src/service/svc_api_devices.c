/* The device registry of a tenant: list, register, show (with certificates), disable, enable. */
#include <string.h>

#include <openssl/crypto.h>

#include "common/error_internal.h"
#include "service/svc_api_internal.h"
#include "tessera/firmware.h"

void svc_api_device_list(svc_request *r)
{
    ts_device_filter filter;
    ts_device_row *rows = NULL;
    size_t count = 0, limit = 0;

    memset(&filter, 0, sizeof filter);
    if (!svc_api_tenant_ready(r) || !svc_api_no_body(r)) {
        return;
    }
    ts_err rv = svc_page_params(r, &limit, &filter.after_id);
    const char *status = svc_query(r, "status");
    if (rv == TS_OK && status != NULL) {
        if (strcmp(status, "enabled") == 0) {
            filter.state = TS_DEVICE_ENABLED;
        } else if (strcmp(status, "disabled") == 0) {
            filter.state = TS_DEVICE_DISABLED;
        } else {
            rv = ts_error_set(TS_ERR_INVALID,
                              "query parameter 'status' must be enabled or disabled");
        }
    }
    /* One row more than the page tells whether another page follows. */
    filter.limit = limit + 1;
    if (rv == TS_OK) {
        rv = ts_ca_device_list(r->ca, r->tenant.name, &filter, &rows, &count);
    }
    if (rv != TS_OK) {
        svc_reply_err(r, rv);
        return;
    }
    int64_t next = count > limit ? rows[limit - 1].id : 0;
    json_t *items = json_array();
    for (size_t i = 0; items != NULL && i < count && i < limit; i++) {
        if (json_array_append_new(items, svc_api_device_json(&rows[i])) != 0) {
            json_decref(items);
            items = NULL;
        }
    }
    OPENSSL_free(rows);
    svc_api_reply_list(r, items, next);
}

void svc_api_device_register(svc_request *r)
{
    ts_device_row row;

    if (!svc_api_tenant_ready(r)) {
        return;
    }
    json_t *doc = svc_api_body(r, &svc_api_body_device, 0);
    if (doc == NULL) {
        return;
    }
    const char *uid = svc_api_str(doc, "uid");
    ts_err rv = ts_device_uid_check(uid);
    if (rv != TS_OK) {
        rv = ts_error_prefix(rv, "request body: member \"uid\"");
    } else {
        rv = ts_ca_device_register(r->ca, r->tenant.name, uid, &row);
    }
    json_decref(doc);
    if (rv != TS_OK) {
        svc_reply_err(r, rv);
        return;
    }
    svc_api_reply_doc(r, 201, svc_api_device_json(&row));
}

/* The device's certificates (the first SVC_PAGE_MAX; the certificate list pages past them). */
static json_t *device_certs(svc_request *r, const char *uid)
{
    ts_cert_filter filter;
    ts_cert_row *rows = NULL;
    size_t count = 0;

    memset(&filter, 0, sizeof filter);
    filter.tenant_id = r->tenant.id;
    filter.device_uid = uid;
    filter.limit = SVC_PAGE_MAX;
    if (ts_store_cert_list(ts_ca_store(r->ca), &filter, &rows, &count) != TS_OK) {
        return NULL;
    }
    json_t *items = json_array();
    for (size_t i = 0; items != NULL && i < count; i++) {
        if (json_array_append_new(items, svc_api_cert_json(&rows[i])) != 0) {
            json_decref(items);
            items = NULL;
        }
    }
    ts_cert_rows_free(rows, count);
    return items;
}

static void device_reply(svc_request *r, const char *uid, int with_certs)
{
    ts_device_row row;

    ts_err rv = ts_ca_device_get(r->ca, r->tenant.name, uid, &row);
    if (rv != TS_OK) {
        svc_reply_err(r, rv);
        return;
    }
    json_t *doc = svc_api_device_json(&row);
    ts_fw_device_row fw;
    if (doc != NULL && ts_ca_fw_device_get(r->ca, r->tenant.name, uid, &fw) == TS_OK &&
        json_object_set_new(doc, "firmware",
                            json_pack("{s:s, s:s, s:o}", "version", fw.version, "hw", fw.hw,
                                      "reported", svc_api_time_json(fw.reported))) != 0) {
        json_decref(doc);
        doc = NULL;
    }
    if (doc != NULL && with_certs &&
        json_object_set_new(doc, "certificates", device_certs(r, uid)) != 0) {
        json_decref(doc);
        svc_reply_err(r, TS_ERR_STORE);
        return;
    }
    svc_api_reply_doc(r, 200, doc);
}

void svc_api_device_get(svc_request *r)
{
    const char *uid = svc_param(r, "uid");

    if (!svc_api_tenant_ready(r) || !svc_api_no_body(r)) {
        return;
    }
    /* The router matches a device principal to {uid} (SVC_ROUTE_DEVICE_SELF); checked again
     * here, with the same answer as for a device that does not exist. */
    if (r->principal.role == TS_ROLE_DEVICE && strcmp(uid, r->principal.device_uid) != 0) {
        svc_reply_error(r, 404, "not_found", "no device '%.64s' in tenant '%s'", uid,
                        r->tenant.name);
        return;
    }
    device_reply(r, uid, 1);
}

static void device_set_state(svc_request *r, ts_device_state state)
{
    const char *uid = svc_param(r, "uid");

    if (!svc_api_tenant_ready(r) || !svc_api_no_body(r)) {
        return;
    }
    ts_err rv = ts_ca_device_set_state(r->ca, r->tenant.name, uid, state);
    if (rv != TS_OK) {
        svc_reply_err(r, rv);
        return;
    }
    device_reply(r, uid, 0);
}

void svc_api_device_disable(svc_request *r)
{
    device_set_state(r, TS_DEVICE_DISABLED);
}

void svc_api_device_enable(svc_request *r)
{
    device_set_state(r, TS_DEVICE_ENABLED);
}
