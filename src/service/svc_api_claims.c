/* Claim codes of a tenant: list, make (the code is shown once), revoke. */
#include <openssl/crypto.h>

#include "common/error_internal.h"
#include "service/svc_api_internal.h"

static json_t *claim_items(const ts_claim_row *rows, size_t count)
{
    json_t *items = json_array();

    for (size_t i = 0; items != NULL && i < count; i++) {
        if (json_array_append_new(items, svc_api_claim_json(&rows[i])) != 0) {
            json_decref(items);
            items = NULL;
        }
    }
    return items;
}

void svc_api_claim_list(svc_request *r)
{
    ts_claim_row *rows = NULL;
    size_t count = 0;

    if (!svc_api_tenant_ready(r) || !svc_api_no_body(r)) {
        return;
    }
    ts_err rv = ts_ca_claim_list(r->ca, r->tenant.name, &rows, &count);
    if (rv != TS_OK) {
        svc_reply_err(r, rv);
        return;
    }
    svc_api_reply_list(r, claim_items(rows, count), 0);
    OPENSSL_free(rows);
}

void svc_api_claim_create(svc_request *r)
{
    char code[TS_CLAIM_CODE_MAX];
    ts_claim_params params = {0};
    ts_claim_row row;

    if (!svc_api_tenant_ready(r)) {
        return;
    }
    json_t *doc = svc_api_body(r, &svc_api_body_claim, 0);
    if (doc == NULL) {
        return;
    }
    params.tenant = r->tenant.name;
    params.uses = (unsigned)svc_api_int(doc, "uses", 0);
    params.lifetime_seconds = svc_api_int(doc, "lifetime_seconds", 0);
    params.profile = svc_api_str(doc, "profile");
    ts_err rv = ts_ca_claim_create(r->ca, &params, code, &row);
    json_decref(doc);
    if (rv != TS_OK) {
        svc_reply_err(r, rv);
        return;
    }
    svc_api_reply_secret(r, svc_api_claim_json(&row), "code", code, sizeof code);
}

void svc_api_claim_revoke(svc_request *r)
{
    ts_claim_row *rows = NULL;
    size_t count = 0;
    int64_t id = 0;

    if (!svc_api_tenant_ready(r) || !svc_api_no_body(r)) {
        return;
    }
    ts_err rv = svc_api_query_int(svc_param(r, "id"), "a claim code id", 1, INT64_MAX, &id);
    if (rv == TS_OK) {
        rv = ts_ca_claim_revoke(r->ca, r->tenant.name, id);
    }
    if (rv == TS_OK) {
        rv = ts_ca_claim_list(r->ca, r->tenant.name, &rows, &count);
    }
    if (rv != TS_OK) {
        svc_reply_err(r, rv);
        return;
    }
    size_t i = 0;
    while (i < count && rows[i].id != id) {
        i++;
    }
    if (i == count) {
        svc_reply_error(r, 404, "not_found", "no claim code %lld in tenant '%s'", (long long)id,
                        r->tenant.name);
    } else {
        svc_api_reply_doc(r, 200, svc_api_claim_json(&rows[i]));
    }
    OPENSSL_free(rows);
}
