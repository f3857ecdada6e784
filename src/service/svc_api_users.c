/* Users of a tenant and their API tokens (admins only). */
#include <string.h>

#include <openssl/crypto.h>

#include "common/error_internal.h"
#include "service/svc_api_internal.h"

void svc_api_user_list(svc_request *r)
{
    ts_user_row *rows = NULL;
    size_t count = 0;

    if (!svc_api_tenant_ready(r) || !svc_api_no_body(r)) {
        return;
    }
    ts_err rv = ts_ca_user_list(r->ca, r->tenant.name, &rows, &count);
    if (rv != TS_OK) {
        svc_reply_err(r, rv);
        return;
    }
    json_t *items = json_array();
    for (size_t i = 0; items != NULL && i < count; i++) {
        if (json_array_append_new(items, svc_api_user_json(&rows[i])) != 0) {
            json_decref(items);
            items = NULL;
        }
    }
    OPENSSL_free(rows);
    svc_api_reply_list(r, items, 0);
}

void svc_api_user_create(svc_request *r)
{
    ts_user_row row;
    ts_role role;

    if (!svc_api_tenant_ready(r)) {
        return;
    }
    json_t *doc = svc_api_body(r, &svc_api_body_user, 0);
    if (doc == NULL) {
        return;
    }
    ts_err rv = ts_role_parse(svc_api_str(doc, "role"), &role);
    if (rv == TS_OK) {
        rv = ts_ca_user_create(r->ca, r->tenant.name, svc_api_str(doc, "name"), role,
                               svc_api_str(doc, "device_uid"), &row);
    }
    if (rv != TS_OK) {
        svc_reply_err(r, rv);
    } else {
        svc_api_reply_doc(r, 201, svc_api_user_json(&row));
    }
    json_decref(doc);
}

static void user_reply(svc_request *r, const char *name)
{
    ts_user_row row;

    ts_err rv = ts_ca_user_get(r->ca, r->tenant.name, name, &row);
    if (rv != TS_OK) {
        svc_reply_err(r, rv);
        return;
    }
    svc_api_reply_doc(r, 200, svc_api_user_json(&row));
}

void svc_api_user_get(svc_request *r)
{
    if (!svc_api_tenant_ready(r) || !svc_api_no_body(r)) {
        return;
    }
    user_reply(r, svc_param(r, "user"));
}

static void user_set_disabled(svc_request *r, int disabled)
{
    if (!svc_api_tenant_ready(r) || !svc_api_no_body(r)) {
        return;
    }
    const char *name = svc_param(r, "user");
    ts_err rv = ts_ca_user_set_disabled(r->ca, r->tenant.name, name, disabled);
    if (rv != TS_OK) {
        svc_reply_err(r, rv);
        return;
    }
    user_reply(r, name);
}

void svc_api_user_disable(svc_request *r)
{
    user_set_disabled(r, 1);
}

void svc_api_user_enable(svc_request *r)
{
    user_set_disabled(r, 0);
}

static json_t *token_items(const ts_token_row *rows, size_t count)
{
    json_t *items = json_array();

    for (size_t i = 0; items != NULL && i < count; i++) {
        if (json_array_append_new(items, svc_api_token_json(&rows[i])) != 0) {
            json_decref(items);
            items = NULL;
        }
    }
    return items;
}

void svc_api_token_list(svc_request *r)
{
    ts_token_row *rows = NULL;
    size_t count = 0;

    if (!svc_api_tenant_ready(r) || !svc_api_no_body(r)) {
        return;
    }
    /* ?user= narrows the list to one user's tokens. */
    ts_err rv = ts_ca_token_list(r->ca, r->tenant.name, svc_query(r, "user"), &rows, &count);
    if (rv != TS_OK) {
        svc_reply_err(r, rv);
        return;
    }
    svc_api_reply_list(r, token_items(rows, count), 0);
    OPENSSL_free(rows);
}

void svc_api_token_create(svc_request *r)
{
    char token[TS_TOKEN_MAX];
    ts_token_row row;

    if (!svc_api_tenant_ready(r)) {
        return;
    }
    json_t *doc = svc_api_body(r, &svc_api_body_token, 0);
    if (doc == NULL) {
        return;
    }
    ts_err rv = ts_ca_token_create(r->ca, r->tenant.name, svc_api_str(doc, "user"),
                                   svc_api_str(doc, "name"),
                                   svc_api_int(doc, "lifetime_seconds", 0), token, &row);
    json_decref(doc);
    if (rv != TS_OK) {
        svc_reply_err(r, rv);
        return;
    }
    svc_api_reply_secret(r, svc_api_token_json(&row), "token", token, sizeof token);
}

void svc_api_token_revoke(svc_request *r)
{
    ts_token_row *rows = NULL;
    size_t count = 0;
    int64_t id = 0;

    if (!svc_api_tenant_ready(r) || !svc_api_no_body(r)) {
        return;
    }
    ts_err rv = svc_api_query_int(svc_param(r, "id"), "a token id", 1, INT64_MAX, &id);
    if (rv == TS_OK) {
        rv = ts_ca_token_revoke(r->ca, r->tenant.name, id);
    }
    if (rv == TS_OK) {
        rv = ts_ca_token_list(r->ca, r->tenant.name, NULL, &rows, &count);
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
        svc_reply_error(r, 404, "not_found", "no token %lld in tenant '%s'", (long long)id,
                        r->tenant.name);
    } else {
        svc_api_reply_doc(r, 200, svc_api_token_json(&rows[i]));
    }
    OPENSSL_free(rows);
}
