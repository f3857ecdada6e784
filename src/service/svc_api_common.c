/*
 * What every REST handler does before and after its own work: check the tenant it acts in, take
 * or refuse a body, and answer with a document or a list.
 */
#include <string.h>

#include "common/error_internal.h"
#include "service/svc_api_internal.h"
#include "tessera/pki.h"

int svc_api_instance_wide(const svc_request *r)
{
    return r->principal.tenant_id == 0;
}

int svc_api_tenant_ready(svc_request *r)
{
    if (!r->authenticated || r->tenant.id <= 0 || r->tenant.name[0] == '\0') {
        svc_reply_error(r, 500, "internal", "the request reached a tenant route unauthorised");
        return 0;
    }
    /* Only instance-wide admins and auditors act in every tenant (auditors only on the routes
     * their role may use: reads); a row of another tenant must never leave here, whatever the
     * router decided. */
    int anywhere = svc_api_instance_wide(r) &&
                   (r->principal.role == TS_ROLE_ADMIN || r->principal.role == TS_ROLE_AUDITOR);
    if (!anywhere && r->principal.tenant_id != r->tenant.id) {
        svc_reply_error(r, 404, "not_found", "no tenant '%s'", r->tenant.name);
        return 0;
    }
    return 1;
}

int svc_api_no_body(svc_request *r)
{
    if (r->body != NULL && r->body_len > 0) {
        svc_reply_error(r, 400, "invalid", "%s %s takes no request body", r->method,
                        r->route != NULL ? r->route->pattern : r->path);
        return 0;
    }
    return 1;
}

int svc_api_json_body_type(svc_request *r)
{
    const char *type = svc_header(r, "Content-Type");

    if (!svc_api_is_json_type(type)) {
        svc_reply_error(r, 415, "unsupported",
                        "the request body must be application/json, not '%.64s'",
                        type != NULL ? type : "(no Content-Type)");
        return 0;
    }
    return 1;
}

json_t *svc_api_body(svc_request *r, const svc_api_body_spec *spec, int optional)
{
    json_t *doc = NULL;

    if (r->body == NULL || r->body_len == 0) {
        if (optional) {
            doc = json_object();
            if (doc == NULL) {
                svc_reply_err(r, ts_error_set(TS_ERR_NOMEM, "out of memory"));
            }
            return doc;
        }
        svc_reply_error(r, 400, "invalid", "%s %s needs a JSON object as its body", r->method,
                        r->route != NULL ? r->route->pattern : r->path);
        return NULL;
    }
    if (!svc_api_json_body_type(r)) {
        return NULL;
    }
    ts_err rv = svc_api_body_parse(r->body, r->body_len, spec, &doc);
    if (rv != TS_OK) {
        svc_reply_err(r, rv);
        return NULL;
    }
    return doc;
}

void svc_api_reply_doc(svc_request *r, int status, json_t *doc)
{
    if (doc == NULL) {
        svc_reply_err(r, TS_ERR_NOMEM);
        return;
    }
    svc_reply_json(r, status, doc);
}

void svc_api_reply_list(svc_request *r, json_t *items, int64_t next_after)
{
    svc_api_reply_doc(r, 200, items == NULL ? NULL : svc_api_list(items, next_after));
}

json_t *svc_api_cert_lookup(svc_request *r, const char *serial_text)
{
    char serial[TS_SERIAL_HEX];
    ts_cert_row row;
    json_t *doc = NULL;

    memset(&row, 0, sizeof row);
    ts_err rv = ts_ca_serial_normalise(serial_text, serial);
    if (rv != TS_OK) {
        svc_reply_err(r, rv);
        return NULL;
    }
    rv = ts_store_cert_get(ts_ca_store(r->ca), r->tenant.id, serial, &row);
    /* A device principal sees its own device's certificates only; any other answers exactly as
     * a serial that does not exist, so it learns nothing about the rest. */
    if (rv == TS_ERR_NOT_FOUND || (rv == TS_OK && r->principal.role == TS_ROLE_DEVICE &&
                                   strcmp(row.device_uid, r->principal.device_uid) != 0)) {
        svc_reply_error(r, 404, "not_found", "no certificate with serial %s in tenant '%s'", serial,
                        r->tenant.name);
        goto done;
    }
    if (rv != TS_OK) {
        svc_reply_err(r, rv);
        goto done;
    }
    doc = svc_api_cert_json(&row);
    if (doc == NULL) {
        svc_reply_err(r, TS_ERR_NOMEM);
    }
done:
    ts_cert_row_clear(&row);
    return doc;
}

void svc_api_reply_issued(svc_request *r, X509 *cert)
{
    char serial[TS_SERIAL_HEX];

    ts_err rv = ts_serial_hex(X509_get0_serialNumber(cert), serial, sizeof serial);
    if (rv != TS_OK) {
        svc_reply_err(r, rv);
        return;
    }
    json_t *doc = svc_api_cert_lookup(r, serial);
    if (doc != NULL) {
        svc_reply_json(r, 201, doc);
    }
}

void svc_api_reply_secret(svc_request *r, json_t *doc, const char *member, char *secret,
                          size_t size)
{
    json_t *value = json_string(secret);
    OPENSSL_cleanse(secret, size);
    if (doc == NULL || value == NULL || json_object_set(doc, member, value) != 0) {
        svc_reply_err(r, ts_error_set(TS_ERR_NOMEM, "out of memory showing a new %s", member));
    } else {
        /* Shown once, here; only its hash is kept. */
        svc_reply_json(r, 201, json_incref(doc));
    }
    /* jansson's copy, which the reply shared, is wiped before it is freed. */
    if (value != NULL) {
        OPENSSL_cleanse((char *)json_string_value(value), json_string_length(value));
    }
    json_decref(value);
    json_decref(doc);
}
