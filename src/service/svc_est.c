/*
 * EST (RFC 7030, updated by RFC 8951) under /.well-known/est/ for the default tenant and
 * /.well-known/est/{tenant}/ for any other (section 3.2.2 allows one label between "est" and the
 * operation). This file holds the route table, the replies and checks every EST handler shares,
 * and the two read-only operations: cacerts and csrattrs. docs/est.md describes the protocol.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

#include "service/svc_est_internal.h"

#define EST_ROUTES(prefix)                                                                         \
    {.method = "GET",                                                                              \
     .pattern = prefix "/cacerts",                                                                 \
     .handler = svc_est_cacerts,                                                                   \
     .auth = SVC_AUTH_NONE,                                                                        \
     .summary = "EST: the tenant's issuing and root CA certificates (certs-only, base64)",         \
     .content_type = EST_CT_CERTS},                                                                \
        {.method = "GET",                                                                          \
         .pattern = prefix "/csrattrs",                                                            \
         .handler = svc_est_csrattrs,                                                              \
         .auth = SVC_AUTH_NONE,                                                                    \
         .summary = "EST: the attributes the device profile wants in a CSR (base64 DER)",          \
         .content_type = EST_CT_CSRATTRS},                                                         \
        {.method = "POST",                                                                         \
         .pattern = prefix "/simpleenroll",                                                        \
         .handler = svc_est_simpleenroll,                                                          \
         .auth = SVC_AUTH_HANDLER,                                                                 \
         .flags = SVC_ROUTE_BODY,                                                                  \
         .summary = "EST: a certificate for a base64 PKCS#10 CSR (client certificate or claim "    \
                    "code in HTTP Basic)",                                                         \
         .content_type = EST_CT_PKCS10},                                                           \
        {.method = "POST",                                                                         \
         .pattern = prefix "/simplereenroll",                                                      \
         .handler = svc_est_simplereenroll,                                                        \
         .auth = SVC_AUTH_HANDLER, /* the client certificate; a superseded one may ask again */    \
         .flags = SVC_ROUTE_BODY,                                                                  \
         .summary = "EST: renew or rekey the client certificate (same subject and SANs)",          \
         .content_type = EST_CT_PKCS10},                                                           \
    {                                                                                              \
        .method = "POST", .pattern = prefix "/serverkeygen", .handler = svc_est_serverkeygen,      \
        .auth = SVC_AUTH_HANDLER, .flags = SVC_ROUTE_BODY,                                         \
        .summary = "EST: a key made by the CA and its certificate (profiles that allow it)",       \
        .content_type = EST_CT_PKCS10                                                              \
    }

const svc_route svc_est_routes[] = {
    EST_ROUTES("/.well-known/est"),
    EST_ROUTES("/.well-known/est/{tenant}"),
    {.method = NULL},
};

void est_reply_text(svc_request *r, int status, const char *fmt, ...)
{
    char text[1024];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(text, sizeof text - 1, fmt, ap);
    va_end(ap);
    if (n < 0) {
        n = 0;
    }
    if ((size_t)n > sizeof text - 2) {
        n = (int)sizeof text - 2;
    }
    text[n++] = '\n';
    text[n] = '\0';
    /* RFC 7235 section 3.1: a 401 names the scheme the client can answer with. */
    if (status == 401) {
        svc_reply_header(r, "WWW-Authenticate", EST_REALM);
    }
    svc_reply(r, status, "text/plain; charset=utf-8", text, (size_t)n);
}

void est_reply_err(svc_request *r, ts_err err)
{
    int status = svc_err_status(err);

    if (status >= 500) {
        svc_log(svc_worker_server(r->worker), "error", "EST %s %s: %s", r->method, r->path,
                ts_error_message());
        if (err == TS_ERR_STORE) {
            svc_metrics_db_error();
        }
        est_reply_text(r, status, "the EST request could not be completed; see the server log");
        return;
    }
    est_reply_text(r, status, "%s", ts_error_message());
}

void est_reply_base64(svc_request *r, const char *content_type, const uint8_t *der, size_t len)
{
    char *text = NULL;
    size_t text_len = 0;
    ts_err rv = ts_est_base64_encode(der, len, "\n", &text, &text_len);

    if (rv != TS_OK) {
        est_reply_err(r, rv);
        return;
    }
    /* RFC 7030 section 4.1.3 sends the header; RFC 8951 section 3.2.2 lets clients ignore it.
     * Sent always, for clients written to the first. */
    svc_reply_header(r, "Content-Transfer-Encoding", "base64");
    svc_reply(r, 200, content_type, text, text_len);
    OPENSSL_free(text);
}

int est_tenant(svc_request *r, ts_tenant_row *out)
{
    ts_err rv;

    if (svc_param(r, "tenant") != NULL) {
        *out = r->tenant; /* loaded and checked by the router */
        return 1;
    }
    rv = ts_ca_tenant(r->ca, TS_DEFAULT_TENANT, out);
    if (rv != TS_OK) {
        est_reply_err(r, rv);
        return 0;
    }
    return 1;
}

int est_profile(svc_request *r, const ts_tenant_row *t, const char *name, ts_profile **out)
{
    char *json = NULL;
    ts_err rv = ts_store_profile_get(ts_ca_store(r->ca), t->id, name, &json);

    if (rv == TS_OK) {
        rv = ts_profile_from_json(json, strlen(json), out);
    }
    OPENSSL_free(json);
    if (rv == TS_ERR_NOT_FOUND) {
        est_reply_text(r, 404, "tenant %s has no profile '%s'", t->name, name);
        return 0;
    }
    if (rv != TS_OK) {
        est_reply_err(r, rv);
        return 0;
    }
    return 1;
}

/* The media type of a Content-Type value, without parameters, is type (any case). */
static int media_type_is(const char *value, const char *type)
{
    size_t n = strlen(type);

    while (*value == ' ' || *value == '\t') {
        value++;
    }
    if (strncasecmp(value, type, n) != 0) {
        return 0;
    }
    value += n;
    while (*value == ' ' || *value == '\t') {
        value++;
    }
    return *value == '\0' || *value == ';';
}

int est_body_csr(svc_request *r, uint8_t **der, size_t *len, X509_REQ **csr)
{
    const char *type = svc_header(r, "Content-Type");
    ts_err rv;

    *der = NULL;
    *len = 0;
    *csr = NULL;
    /* RFC 7030 section 4.2.1: "the HTTP content-type of "application/pkcs10"". */
    if (type == NULL || !media_type_is(type, EST_CT_PKCS10)) {
        est_reply_text(r, 415, "the CSR must be sent as Content-Type: %s (got %s)", EST_CT_PKCS10,
                       type != NULL ? type : "none");
        return 0;
    }
    /* RFC 8951 section 3.2.2: base64 always, whatever Content-Transfer-Encoding says (or not),
     * line breaks and white space allowed. */
    rv = ts_est_base64_decode(r->body, r->body_len, TS_CSR_MAX, der, len);
    if (rv == TS_ERR_LIMIT) {
        est_reply_text(r, 413, "%s", ts_error_message());
        return 0;
    }
    if (rv == TS_OK) {
        rv = ts_csr_parse(*der, *len, csr);
    }
    if (rv != TS_OK) {
        est_reply_text(r, 400, "bad CSR: %s", ts_error_message());
        OPENSSL_free(*der);
        *der = NULL;
        *len = 0;
        return 0;
    }
    return 1;
}

int est_pop(svc_request *r, int required, const char *profile, X509_REQ *csr)
{
    uint8_t binding[SVC_CB_MAX];
    size_t len = 0;
    SSL *ssl = svc_request_ssl(r);
    ts_err rv;

    if (!required) {
        return 1;
    }
    if (ssl == NULL) {
        est_reply_text(r, 400,
                       "proof of possession: profile %s needs the TLS channel binding, and this "
                       "request did not come over TLS",
                       profile);
        return 0;
    }
    rv = svc_tls_channel_binding(ssl, binding, &len);
    if (rv == TS_OK) {
        rv = ts_est_pop_check(csr, binding, len);
    }
    OPENSSL_cleanse(binding, sizeof binding);
    if (rv == TS_ERR_POLICY) {
        est_reply_text(r, 400, "profile %s: %s", profile, ts_error_message());
        return 0;
    }
    if (rv != TS_OK) {
        est_reply_err(r, rv);
        return 0;
    }
    return 1;
}

void est_actor(svc_request *r, const char *kind, const char *who)
{
    char actor[TS_TEXT_MAX];

    snprintf(actor, sizeof actor, "%s:%s", kind, who);
    if (ts_ca_set_actor(r->ca, actor) != TS_OK) {
        svc_log(svc_worker_server(r->worker), "warn", "EST: cannot set the audit actor: %s",
                ts_error_message());
    }
}

/* RFC 7030 section 4.1: the CA certificates, issuing CA first and then the root it chains to. */
void svc_est_cacerts(svc_request *r)
{
    ts_tenant_row t;
    X509 *certs[2] = {NULL, NULL};
    uint8_t *der = NULL;
    size_t len = 0;
    ts_err rv;

    if (!est_tenant(r, &t)) {
        return;
    }
    rv = ts_ca_cert(r->ca, t.name, TS_CA_ISSUING, &certs[0]);
    if (rv == TS_OK) {
        rv = ts_ca_cert(r->ca, t.name, TS_CA_ROOT, &certs[1]);
    }
    if (rv == TS_OK) {
        rv = ts_est_certs_only(certs, 2, &der, &len);
    }
    if (rv == TS_OK) {
        est_reply_base64(r, EST_CT_CERTS, der, len);
    } else {
        est_reply_err(r, rv);
    }
    OPENSSL_free(der);
    X509_free(certs[0]);
    X509_free(certs[1]);
}

/* RFC 7030 section 4.5: what the tenant's enrollment profile wants in a CSR. */
void svc_est_csrattrs(svc_request *r)
{
    ts_tenant_row t;
    ts_profile *profile = NULL;
    uint8_t *der = NULL;
    size_t len = 0;
    ts_err rv;

    if (!est_tenant(r, &t) || !est_profile(r, &t, EST_PROFILE, &profile)) {
        return;
    }
    rv = ts_est_csrattrs(profile, &der, &len);
    if (rv == TS_OK) {
        est_reply_base64(r, EST_CT_CSRATTRS, der, len);
    } else {
        est_reply_err(r, rv);
    }
    OPENSSL_free(der);
    ts_profile_free(profile);
}
