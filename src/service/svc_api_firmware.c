/*
 * A tenant's firmware releases (docs/api.md, "Firmware releases"): publish an update file, list,
 * show with the offers made to devices, withdraw. The upload is the file itself
 * (application/octet-stream), held by the server within its body limit (--max-body), written to a
 * private temporary file and published from there (ts_ca_fw_publish).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "common/error_internal.h"
#include "service/svc_api_internal.h"
#include "service/svc_firmware_internal.h"

#define A TS_ROLE_BIT(TS_ROLE_ADMIN)
#define O TS_ROLE_BIT(TS_ROLE_OPERATOR)
#define U TS_ROLE_BIT(TS_ROLE_AUDITOR)
#define T "/api/v1/tenants/{tenant}"

#define ROUTE(m, p, h, r, f, s)                                                                    \
    {                                                                                              \
        .method = m, .pattern = p, .handler = h, .auth = SVC_AUTH_TOKEN, .roles = r, .flags = f,   \
        .summary = s                                                                               \
    }

static void fw_list(svc_request *r);
static void fw_publish(svc_request *r);
static void fw_get(svc_request *r);
static void fw_withdraw(svc_request *r);

const svc_route svc_firmware_routes[] = {
    ROUTE("GET", T "/firmware", fw_list, A | O | U, 0, "Firmware releases, newest first"),
    ROUTE("POST", T "/firmware", fw_publish, A | O, SVC_ROUTE_BODY,
          "Publish an update file (body: the file, application/octet-stream) for ?device=UID, "
          "?group=NAME or ?all=true"),
    ROUTE("GET", T "/firmware/{id}", fw_get, A | O | U, 0,
          "A firmware release and the offers made to devices"),
    ROUTE("POST", T "/firmware/{id}/withdraw", fw_withdraw, A | O, 0,
          "Withdraw a release: no more offers or downloads"),
    {.method = "GET",
     .pattern = "/agent/v1/firmware/{id}",
     .handler = svc_firmware_download,
     .auth = SVC_AUTH_CLIENT,
     .flags = SVC_ROUTE_CLIENT_TENANT,
     .summary = "A device downloads a release for it (mutual TLS; Range: bytes=N- resumes)",
     .content_type = "application/octet-stream"},
    {.method = NULL},
};

static json_t *release_json(const ts_fw_release_row *w)
{
    json_t *doc =
        json_pack("{s:s, s:I, s:I, s:s, s:I, s:s, s:b, s:s, s:s, s:s, s:s, s:s, s:o}", "id", w->id,
                  "version", (json_int_t)w->version, "seq", (json_int_t)w->seq, "hw", w->hw, "size",
                  (json_int_t)w->size, "sha256", w->sha256, "encrypted", w->encrypted, "signer",
                  w->signer, "target", ts_fw_target_name(w->target_kind), "to", w->target, "state",
                  ts_fw_release_state_name(w->state), "created_by", w->created_by, "created",
                  svc_api_time_json(w->created));
    if (doc != NULL && w->min_version > 0 &&
        json_object_set_new(doc, "min_version", json_integer((json_int_t)w->min_version)) != 0) {
        json_decref(doc);
        doc = NULL;
    }
    if (doc != NULL && w->withdrawn != 0 &&
        json_object_set_new(doc, "withdrawn", svc_api_time_json(w->withdrawn)) != 0) {
        json_decref(doc);
        doc = NULL;
    }
    return doc;
}

static void fw_list(svc_request *r)
{
    ts_fw_release_row *rows = NULL;
    size_t n = 0;
    if (!svc_api_tenant_ready(r) || !svc_api_no_body(r)) {
        return;
    }
    ts_err rv = ts_ca_fw_releases(r->ca, r->tenant.name, &rows, &n);
    if (rv != TS_OK) {
        svc_reply_err(r, rv);
        return;
    }
    json_t *items = json_array();
    for (size_t i = 0; items != NULL && i < n; i++) {
        if (json_array_append_new(items, release_json(&rows[i])) != 0) {
            json_decref(items);
            items = NULL;
        }
    }
    OPENSSL_free(rows);
    svc_api_reply_list(r, items, 0);
}

/* The target from the query: exactly one of device, group, all=true. */
static ts_err target_of(svc_request *r, ts_fw_target_kind *kind, const char **target)
{
    const char *dev = svc_query(r, "device"), *grp = svc_query(r, "group");
    const char *all = svc_query(r, "all");
    if ((dev != NULL) + (grp != NULL) + (all != NULL) != 1 ||
        (all != NULL && strcmp(all, "true") != 0)) {
        return ts_error_set(TS_ERR_INVALID,
                            "name the release's target: exactly one of ?device=UID, ?group=NAME "
                            "or ?all=true");
    }
    *kind = dev != NULL ? TS_FW_TARGET_DEVICE : grp != NULL ? TS_FW_TARGET_GROUP : TS_FW_TARGET_ALL;
    *target = dev != NULL ? dev : grp != NULL ? grp : "";
    return TS_OK;
}

/* The body into a private file under DIR/firmware. */
static ts_err body_file(svc_request *r, char *path, size_t size)
{
    const char *dir = svc_server_config(svc_worker_server(r->worker))->dir;
    int n = snprintf(path, size, "%s/" TS_FW_DIR "/.body-XXXXXX", dir);
    if (n < 0 || (size_t)n >= size) {
        return ts_error_set(TS_ERR_INVALID, "the instance path is too long");
    }
    char parent[4096];
    snprintf(parent, sizeof parent, "%s/" TS_FW_DIR, dir);
    if (mkdir(parent, 0700) != 0 && errno != EEXIST) {
        return ts_error_set(TS_ERR_IO, "cannot create %s: %s", parent, strerror(errno));
    }
    int fd = mkstemp(path);
    if (fd < 0) {
        path[0] = '\0';
        return ts_error_set(TS_ERR_IO, "cannot create a file in %s: %s", parent, strerror(errno));
    }
    const uint8_t *p = r->body;
    size_t left = r->body_len;
    ts_err rv = TS_OK;
    while (rv == TS_OK && left > 0) {
        ssize_t w = write(fd, p, left);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            rv = ts_error_set(errno == ENOSPC ? TS_ERR_FULL : TS_ERR_IO, "writing %s: %s", path,
                              strerror(errno));
            break;
        }
        p += w;
        left -= (size_t)w;
    }
    close(fd);
    return rv;
}

static void fw_publish(svc_request *r)
{
    ts_fw_target_kind kind = TS_FW_TARGET_ALL;
    const char *target = NULL;
    ts_fw_release_row row;
    char path[4096] = "";
    if (!svc_api_tenant_ready(r)) {
        return;
    }
    const char *ct = svc_header(r, "Content-Type");
    if (ct == NULL || strcmp(ct, "application/octet-stream") != 0) {
        svc_reply_error(r, 415, "unsupported_media_type",
                        "an update file is sent as application/octet-stream");
        return;
    }
    ts_err rv = target_of(r, &kind, &target);
    if (rv == TS_OK) {
        rv = body_file(r, path, sizeof path);
    }
    if (rv == TS_OK) {
        rv = ts_ca_fw_publish(r->ca, r->tenant.name, path, kind, target, &row);
    }
    if (path[0] != '\0') {
        unlink(path);
    }
    if (rv != TS_OK) {
        svc_reply_err(r, rv);
        return;
    }
    svc_api_reply_doc(r, 201, release_json(&row));
}

static void fw_get(svc_request *r)
{
    ts_fw_release_row row;
    ts_fw_offer_row *offers = NULL;
    size_t n = 0;
    if (!svc_api_tenant_ready(r) || !svc_api_no_body(r)) {
        return;
    }
    ts_err rv = ts_ca_fw_release_get(r->ca, r->tenant.name, svc_param(r, "id"), &row, &offers, &n);
    if (rv != TS_OK) {
        svc_reply_err(r, rv);
        return;
    }
    json_t *doc = release_json(&row);
    json_t *items = json_array();
    for (size_t i = 0; items != NULL && i < n; i++) {
        const ts_fw_offer_row *o = &offers[i];
        json_t *item =
            json_pack("{s:I, s:s, s:s, s:s, s:s, s:o, s:o*}", "request_id",
                      (json_int_t)(TS_FW_OFFER_ID_BASE + o->id), "device", o->device_uid, "state",
                      ts_fw_offer_state_name(o->state), "error_code", o->error_code,
                      "error_message", o->error_message, "sent", svc_api_time_json(o->sent),
                      "answered", o->answered != 0 ? svc_api_time_json(o->answered) : NULL);
        if (json_array_append_new(items, item) != 0) {
            json_decref(items);
            items = NULL;
        }
    }
    OPENSSL_free(offers);
    if (doc != NULL && (items == NULL || json_object_set_new(doc, "offers", items) != 0)) {
        json_decref(doc);
        doc = NULL;
    }
    svc_api_reply_doc(r, 200, doc);
}

static void fw_withdraw(svc_request *r)
{
    ts_fw_release_row row;
    if (!svc_api_tenant_ready(r) || !svc_api_no_body(r)) {
        return;
    }
    ts_err rv = ts_ca_fw_withdraw(r->ca, r->tenant.name, svc_param(r, "id"), &row);
    if (rv != TS_OK) {
        svc_reply_err(r, rv);
        return;
    }
    svc_api_reply_doc(r, 200, release_json(&row));
}
