/* A tenant's CA certificates, its cloud verification certificates and its profiles. */
#include <string.h>

#include <openssl/crypto.h>

#include "common/error_internal.h"
#include "service/svc_api_internal.h"

static ts_err ca_json(svc_request *r, ts_ca_kind kind, json_t **out)
{
    X509 *cert = NULL;

    *out = NULL;
    ts_err rv = ts_ca_cert(r->ca, r->tenant.name, kind, &cert);
    if (rv != TS_OK) {
        return rv;
    }
    *out = svc_api_ca_json(cert, kind == TS_CA_ROOT ? "root" : "issuing");
    X509_free(cert);
    return *out != NULL ? TS_OK : TS_ERR_NOMEM;
}

void svc_api_ca_list(svc_request *r)
{
    json_t *root = NULL, *issuing = NULL;

    if (!svc_api_tenant_ready(r) || !svc_api_no_body(r)) {
        return;
    }
    ts_err rv = ca_json(r, TS_CA_ROOT, &root);
    if (rv == TS_OK) {
        rv = ca_json(r, TS_CA_ISSUING, &issuing);
    }
    json_t *items = rv == TS_OK ? json_pack("[oo]", root, issuing) : NULL;
    if (rv != TS_OK) {
        json_decref(root);
        svc_reply_err(r, rv);
        return;
    }
    svc_api_reply_list(r, items, 0);
}

void svc_api_ca_get(svc_request *r)
{
    json_t *doc = NULL;
    ts_ca_kind kind;

    if (!svc_api_tenant_ready(r) || !svc_api_no_body(r)) {
        return;
    }
    const char *name = svc_param(r, "kind");
    if (strcmp(name, "root") == 0) {
        kind = TS_CA_ROOT;
    } else if (strcmp(name, "issuing") == 0) {
        kind = TS_CA_ISSUING;
    } else {
        svc_reply_error(r, 404, "not_found", "no CA '%.32s': the kinds are root and issuing", name);
        return;
    }
    ts_err rv = ca_json(r, kind, &doc);
    if (rv != TS_OK) {
        svc_reply_err(r, rv);
        return;
    }
    svc_reply_json(r, 200, doc);
}

void svc_api_ca_verification(svc_request *r)
{
    X509 *cert = NULL;

    if (!svc_api_tenant_ready(r)) {
        return;
    }
    json_t *doc = svc_api_body(r, &svc_api_body_verification, 0);
    if (doc == NULL) {
        return;
    }
    ts_err rv = ts_ca_verification_cert(r->ca, r->tenant.name, svc_api_str(doc, "code"), &cert);
    json_decref(doc);
    if (rv != TS_OK) {
        svc_reply_err(r, rv);
        return;
    }
    svc_metrics_issued(1);
    svc_api_reply_issued(r, cert);
    X509_free(cert);
}

/* A stored profile as a JSON document; TS_ERR_NOT_FOUND naming it. */
static ts_err profile_json(svc_request *r, const char *name, json_t **out)
{
    char *text = NULL;

    *out = NULL;
    ts_err rv = ts_store_profile_get(ts_ca_store(r->ca), r->tenant.id, name, &text);
    if (rv == TS_ERR_NOT_FOUND) {
        return ts_error_set(rv, "no profile '%.64s' in tenant '%s'", name, r->tenant.name);
    }
    if (rv != TS_OK) {
        return rv;
    }
    *out = json_loads(text, 0, NULL);
    OPENSSL_free(text);
    if (*out == NULL) {
        return ts_error_set(TS_ERR_CORRUPT, "profile '%.64s' of tenant '%s' is not JSON", name,
                            r->tenant.name);
    }
    return TS_OK;
}

void svc_api_profile_list(svc_request *r)
{
    char **names = NULL;
    size_t count = 0;

    if (!svc_api_tenant_ready(r) || !svc_api_no_body(r)) {
        return;
    }
    ts_err rv = ts_store_profile_list(ts_ca_store(r->ca), r->tenant.id, &names, &count);
    json_t *items = rv == TS_OK ? json_array() : NULL;
    for (size_t i = 0; rv == TS_OK && i < count; i++) {
        json_t *doc = NULL;
        rv = profile_json(r, names[i], &doc);
        if (rv == TS_OK && json_array_append_new(items, doc) != 0) {
            rv = ts_error_set(TS_ERR_NOMEM, "out of memory listing profiles");
        }
    }
    for (size_t i = 0; i < count; i++) {
        OPENSSL_free(names[i]);
    }
    OPENSSL_free(names);
    if (rv != TS_OK) {
        json_decref(items);
        svc_reply_err(r, rv);
        return;
    }
    svc_api_reply_list(r, items, 0);
}

void svc_api_profile_get(svc_request *r)
{
    json_t *doc = NULL;

    if (!svc_api_tenant_ready(r) || !svc_api_no_body(r)) {
        return;
    }
    ts_err rv = profile_json(r, svc_param(r, "name"), &doc);
    if (rv != TS_OK) {
        svc_reply_err(r, rv);
        return;
    }
    svc_reply_json(r, 200, doc);
}

void svc_api_profile_put(svc_request *r)
{
    const char *name = svc_param(r, "name");
    json_t *doc = NULL;
    int status = 201;

    if (!svc_api_tenant_ready(r)) {
        return;
    }
    if (r->body == NULL || r->body_len == 0) {
        svc_reply_error(r, 400, "invalid", "PUT of a profile needs its JSON as the body");
        return;
    }
    if (!svc_api_json_body_type(r)) {
        return;
    }
    /* The profile parser refuses unknown members, bad values and a "name" other than the
     * path's, before anything is stored. */
    const char *json = (const char *)r->body;
    ts_err rv = ts_ca_profile_put(r->ca, r->tenant.name, name, json, r->body_len, 0);
    if (rv == TS_ERR_EXISTS) {
        status = 200;
        rv = ts_ca_profile_put(r->ca, r->tenant.name, name, json, r->body_len, 1);
    }
    if (rv == TS_OK) {
        rv = profile_json(r, name, &doc);
    }
    if (rv != TS_OK) {
        svc_reply_err(r, rv);
        return;
    }
    svc_reply_json(r, status, doc);
}
