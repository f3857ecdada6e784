/* /api/v1/me and /api/v1/tenants: who is asking, and the tenants they may see or make. */
#include <openssl/crypto.h>

#include "service/svc_api_internal.h"

void svc_api_me(svc_request *r)
{
    if (!svc_api_no_body(r)) {
        return;
    }
    svc_api_reply_doc(r, 200, svc_api_principal_json(&r->principal));
}

void svc_api_tenant_list(svc_request *r)
{
    ts_tenant_row *rows = NULL, own;
    size_t count = 0;
    ts_err rv = TS_OK;

    if (!svc_api_no_body(r)) {
        return;
    }
    /* Instance-wide principals see every tenant; anyone else only their own. */
    if (svc_api_instance_wide(r)) {
        rv = ts_store_tenant_list(ts_ca_store(r->ca), &rows, &count);
    } else {
        rv = ts_ca_tenant(r->ca, r->principal.tenant, &own);
        count = 1;
    }
    if (rv != TS_OK) {
        svc_reply_err(r, rv);
        goto done;
    }
    json_t *items = json_array();
    for (size_t i = 0; items != NULL && i < count; i++) {
        if (json_array_append_new(items, svc_api_tenant_json(rows != NULL ? &rows[i] : &own)) !=
            0) {
            json_decref(items);
            items = NULL;
        }
    }
    svc_api_reply_list(r, items, 0);
done:
    OPENSSL_free(rows);
}

void svc_api_tenant_create(svc_request *r)
{
    ts_tenant_row row;

    /* The router lets admins through; only the instance's own may make a tenant. */
    if (!svc_api_instance_wide(r) || r->principal.role != TS_ROLE_ADMIN) {
        svc_reply_error(r, 403, "forbidden", "only an instance admin creates tenants");
        return;
    }
    json_t *doc = svc_api_body(r, &svc_api_body_tenant, 0);
    if (doc == NULL) {
        return;
    }
    const char *name = svc_api_str(doc, "name");
    ts_err rv = ts_ca_tenant_name_check(name);
    if (rv == TS_OK) {
        /* The new issuing CA is signed by the root: TS_ERR_STATE (409) with the ceremony's
         * restore hint when the root key is offline. */
        rv = ts_ca_tenant_create(r->ca, name, svc_api_str(doc, "org"), svc_api_str(doc, "country"));
    }
    if (rv == TS_OK) {
        rv = ts_ca_tenant(r->ca, name, &row);
    }
    if (rv != TS_OK) {
        svc_reply_err(r, rv);
    } else {
        svc_api_reply_doc(r, 201, svc_api_tenant_json(&row));
    }
    json_decref(doc);
}

void svc_api_tenant_get(svc_request *r)
{
    if (!svc_api_tenant_ready(r) || !svc_api_no_body(r)) {
        return;
    }
    svc_api_reply_doc(r, 200, svc_api_tenant_json(&r->tenant));
}
