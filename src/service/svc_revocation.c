/*
 * Revocation for everyone: the CRL of each tenant's issuing CA, the OCSP responder (RFC 6960,
 * POST and GET), both also on the plain-HTTP listener because relying parties fetch CDP and AIA
 * URLs over http, and the incremental revocation feed of a tenant for brokers and agents.
 * docs/revocation.md is the guide.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/ocsp.h>
#include <openssl/x509.h>

#include "service/svc_internal.h"
#include "service/svc_revocation_internal.h"
#include "tessera/pki.h"

#define CRL_SUFFIX   ".crl"
#define OCSP_PREFIX  "/ocsp/"
#define CT_CRL       "application/pkix-crl"
#define CT_OCSP_REQ  "application/ocsp-request"
#define CT_OCSP_RESP "application/ocsp-response"

enum {
    B64_MAX = SVC_PATH_MAX, /* characters of a GET request's base64 (within the path's limit) */
    TIME_TEXT = 32,
};

/* --- CRL ---------------------------------------------------------------------------------------
 */

/* Seconds a cache may keep a CRL: SVC_CRL_MAX_AGE, and never past its nextUpdate. */
static long crl_max_age(const uint8_t *der, size_t len)
{
    const unsigned char *p = der;
    X509_CRL *crl = d2i_X509_CRL(NULL, &p, (long)len);
    const ASN1_TIME *next = crl != NULL ? X509_CRL_get0_nextUpdate(crl) : NULL;
    int days = 0, secs = 0;
    long age = 0;

    if (next != NULL && ASN1_TIME_diff(&days, &secs, NULL, next) == 1 && days >= 0 && secs >= 0) {
        age = days > 0 || secs > SVC_CRL_MAX_AGE ? SVC_CRL_MAX_AGE : secs;
    }
    X509_CRL_free(crl);
    return age;
}

/* GET /crl/<tenant>.crl: the tenant's current CRL (RFC 5280 section 5), DER. */
static void crl_get(svc_request *r)
{
    const char *name = svc_param(r, "crl");
    char tenant[TS_TENANT_NAME_MAX + 1];
    char cache[64];
    size_t n = name != NULL ? strlen(name) : 0;
    uint8_t *der = NULL;
    size_t len = 0;
    ts_err rv;

    if (n <= strlen(CRL_SUFFIX) || strcmp(name + n - strlen(CRL_SUFFIX), CRL_SUFFIX) != 0 ||
        n - strlen(CRL_SUFFIX) > TS_TENANT_NAME_MAX) {
        svc_reply_error(r, 404, "not_found", "no CRL named '%s': CRLs are /crl/<tenant>.crl",
                        name != NULL ? name : "");
        return;
    }
    memcpy(tenant, name, n - strlen(CRL_SUFFIX));
    tenant[n - strlen(CRL_SUFFIX)] = '\0';
    if (ts_ca_tenant_name_check(tenant) != TS_OK) {
        svc_reply_error(r, 404, "not_found", "no tenant named '%s'", tenant);
        return;
    }
    rv = svc_crl_current(svc_worker_server(r->worker), r->ca, tenant, &der, &len);
    if (rv != TS_OK) {
        svc_reply_err(r, rv);
        return;
    }
    snprintf(cache, sizeof cache, "public, max-age=%ld", crl_max_age(der, len));
    svc_reply_header(r, "Cache-Control", cache);
    svc_reply(r, 200, CT_CRL, der, len);
    OPENSSL_free(der);
}

/* --- OCSP --------------------------------------------------------------------------------------
 */

/* The HTTP status that goes with an OCSPResponseStatus (RFC 6960 section 2.3). */
static int ocsp_http_status(int ocsp_status)
{
    switch (ocsp_status) {
    case OCSP_RESPONSE_STATUS_SUCCESSFUL:
    case OCSP_RESPONSE_STATUS_UNAUTHORIZED:
        return 200;
    case OCSP_RESPONSE_STATUS_MALFORMEDREQUEST:
    case OCSP_RESPONSE_STATUS_SIGREQUIRED:
        return 400;
    case OCSP_RESPONSE_STATUS_TRYLATER:
        return 503;
    default:
        return 500;
    }
}

/* Replies an OCSPResponse that carries only an error status. */
static void ocsp_reply_status(svc_request *r, int http_status, int ocsp_status)
{
    uint8_t *resp = NULL;
    size_t len = 0;

    if (svc_ocsp_status_only(ocsp_status, &resp, &len) != TS_OK) {
        svc_log(svc_worker_server(r->worker), "error", "OCSP: %s", ts_error_message());
        svc_reply(r, 500, "text/plain", "internal error\n", strlen("internal error\n"));
        return;
    }
    svc_reply_header(r, "Cache-Control", "no-store");
    svc_reply(r, http_status, CT_OCSP_RESP, resp, len);
    OPENSSL_free(resp);
}

static void ocsp_answer(svc_request *r, const uint8_t *der, size_t len, int cacheable)
{
    uint8_t *resp = NULL;
    size_t resp_len = 0;
    int status = 0;
    unsigned age = 0;
    char cache[80];
    ts_err rv = svc_ocsp_answer(r->ca, der, len, &resp, &resp_len, &status, &age);

    if (rv != TS_OK) {
        /* RFC 6960 section 2.3: "tryLater: Try again later"; the cause stays in the log. */
        svc_log(svc_worker_server(r->worker), "error", "OCSP: %s", ts_error_message());
        if (rv == TS_ERR_STORE) {
            svc_metrics_db_error();
        }
        svc_reply_header(r, "Retry-After", "1");
        ocsp_reply_status(r, 503, OCSP_RESPONSE_STATUS_TRYLATER);
        return;
    }
    if (status != OCSP_RESPONSE_STATUS_SUCCESSFUL) {
        svc_reply_header(r, "Cache-Control", "no-store");
    } else if (cacheable) {
        /* RFC 5019 section 6.2: a GET answer may be cached, for less than its nextUpdate; a
         * response signed a while ago for the same request, for that much less. */
        snprintf(cache, sizeof cache, "public, max-age=%u, no-transform",
                 age < SVC_OCSP_MAX_AGE ? SVC_OCSP_MAX_AGE - age : 0);
        svc_reply_header(r, "Cache-Control", cache);
    }
    svc_reply(r, ocsp_http_status(status), CT_OCSP_RESP, resp, resp_len);
    OPENSSL_free(resp);
}

/* Whether a Content-Type header names the media type, ignoring case and parameters. */
static int media_type_is(const char *header, const char *type)
{
    size_t n = strlen(type);

    if (header == NULL) {
        return 0;
    }
    while (*header == ' ' || *header == '\t') {
        header++;
    }
    if (strncasecmp(header, type, n) != 0) {
        return 0;
    }
    header += n;
    while (*header == ' ' || *header == '\t') {
        header++;
    }
    return *header == '\0' || *header == ';';
}

/* POST /ocsp (RFC 6960 appendix A.1): the DER OCSPRequest is the body. */
static void ocsp_post(svc_request *r)
{
    if (!media_type_is(svc_header(r, "Content-Type"), CT_OCSP_REQ)) {
        ocsp_reply_status(r, 415, OCSP_RESPONSE_STATUS_MALFORMEDREQUEST);
        return;
    }
    ocsp_answer(r, r->body, r->body_len, 0);
}

/* Decodes base64 with OpenSSL's decoder; -1 when it is not base64 or does not fit. */
static long b64_decode(const char *text, size_t len, uint8_t *out, size_t size)
{
    EVP_ENCODE_CTX *ctx = EVP_ENCODE_CTX_new();
    int n = 0, tail = 0;
    long rv = -1;

    if (ctx == NULL || len > (size / 3) * 4 || len > (size_t)INT32_MAX) {
        EVP_ENCODE_CTX_free(ctx);
        return -1;
    }
    EVP_DecodeInit(ctx);
    if (EVP_DecodeUpdate(ctx, out, &n, (const unsigned char *)text, (int)len) >= 0 &&
        EVP_DecodeFinal(ctx, out + n, &tail) == 1) {
        rv = (long)n + tail;
    }
    EVP_ENCODE_CTX_free(ctx);
    return rv;
}

/*
 * GET /ocsp/<request> (RFC 6960 appendix A.1): "the URL-encoding of the base64 encoding of the
 * DER encoding of the OCSPRequest". The router has percent-decoded the path; everything after
 * the prefix is taken, so a base64 '/' that a client did not encode is kept too.
 */
static void ocsp_get(svc_request *r)
{
    uint8_t der[(B64_MAX / 4) * 3 + 3];
    const char *b64 = r->path;
    long len;

    if (strncmp(b64, OCSP_PREFIX, strlen(OCSP_PREFIX)) != 0) {
        ocsp_reply_status(r, 400, OCSP_RESPONSE_STATUS_MALFORMEDREQUEST);
        return;
    }
    b64 += strlen(OCSP_PREFIX);
    len = b64_decode(b64, strlen(b64), der, sizeof der);
    if (len <= 0) {
        ocsp_reply_status(r, 400, OCSP_RESPONSE_STATUS_MALFORMEDREQUEST);
        return;
    }
    ocsp_answer(r, der, (size_t)len, 1);
}

/* --- The revocation feed -----------------------------------------------------------------------
 */

static void time_text(time_t t, char out[TIME_TEXT])
{
    struct tm tm;

    if (gmtime_r(&t, &tm) == NULL || strftime(out, TIME_TEXT, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0) {
        snprintf(out, TIME_TEXT, "1970-01-01T00:00:00Z");
    }
}

/* A JSON string, or null for an empty one. */
static json_t *text_or_null(const char *text)
{
    return text[0] != '\0' ? json_string(text) : json_null();
}

static json_t *feed_item(const ts_feed_row *row)
{
    const char *reason =
        row->event == TS_FEED_CERT_REVOKED ? ts_crl_reason_name(row->reason) : NULL;
    char when[TIME_TEXT];

    time_text(row->time, when);
    return json_pack("{s:I, s:s, s:o, s:o, s:o, s:o, s:s}", "seq", (json_int_t)row->seq, "event",
                     ts_feed_event_name(row->event), "serial", text_or_null(row->serial),
                     "issuer_fingerprint", text_or_null(row->issuer_fingerprint), "device_uid",
                     text_or_null(row->device_uid), "reason",
                     reason != NULL ? json_string(reason) : json_null(), "time", when);
}

/* ?since=N: a sequence number the caller has seen, 0 or more (0 when absent). */
static int since_param(svc_request *r, int64_t *since)
{
    const char *text = svc_query(r, "since");
    char *end = NULL;
    long long v;

    *since = 0;
    if (text == NULL) {
        return 1;
    }
    errno = 0;
    v = strtoll(text, &end, 10);
    if (text[0] < '0' || text[0] > '9' || errno != 0 || end == text || *end != '\0') {
        svc_reply_error(r, 400, "invalid",
                        "since: '%.32s' is not a sequence number (a whole number, 0 or more)",
                        text);
        return 0;
    }
    *since = (int64_t)v;
    return 1;
}

/*
 * GET /api/v1/tenants/{tenant}/revocations?since=N&limit=M: the events after N, oldest first.
 * next_since is the seq of the last event looked at (the caller passes it as since next time);
 * a device sees only its own events, and next_since still moves past the others'.
 */
static void feed_get(svc_request *r)
{
    ts_feed_row *rows = NULL;
    size_t count = 0, limit = 0;
    int64_t since = 0, cursor = 0;
    json_t *items = NULL, *doc = NULL;
    int own_only = r->principal.role == TS_ROLE_DEVICE;
    ts_err rv;

    if (!since_param(r, &since)) {
        return;
    }
    rv = svc_page_params(r, &limit, &cursor);
    if (rv != TS_OK) {
        svc_reply_err(r, rv);
        return;
    }
    rv = ts_ca_feed(r->ca, r->tenant.name, since, limit, &rows, &count);
    if (rv != TS_OK) {
        svc_reply_err(r, rv);
        return;
    }
    items = json_array();
    for (size_t i = 0; items != NULL && i < count; i++) {
        if (own_only && strcmp(rows[i].device_uid, r->principal.device_uid) != 0) {
            continue;
        }
        if (json_array_append_new(items, feed_item(&rows[i])) != 0) {
            json_decref(items);
            items = NULL;
        }
    }
    if (items != NULL) {
        doc = json_pack("{s:o, s:I}", "items", items, "next_since",
                        (json_int_t)(count > 0 ? rows[count - 1].seq : since));
    }
    OPENSSL_free(rows);
    if (doc == NULL) {
        svc_reply_error(r, 500, "internal", "out of memory for the revocation feed");
        return;
    }
    svc_reply_json(r, 200, doc);
}

/* --- Routes ------------------------------------------------------------------------------------
 */

#define FEED_ITEM_SCHEMA                                                                           \
    "{\"type\": \"object\", \"required\": [\"seq\", \"event\", \"serial\", "                       \
    "\"issuer_fingerprint\", \"device_uid\", \"reason\", \"time\"], \"properties\": {"             \
    "\"seq\": {\"type\": \"integer\"}, "                                                           \
    "\"event\": {\"type\": \"string\", \"enum\": [\"cert.revoked\", \"device.disabled\", "         \
    "\"device.enabled\"]}, "                                                                       \
    "\"serial\": {\"type\": [\"string\", \"null\"]}, "                                             \
    "\"issuer_fingerprint\": {\"type\": [\"string\", \"null\"]}, "                                 \
    "\"device_uid\": {\"type\": [\"string\", \"null\"]}, "                                         \
    "\"reason\": {\"type\": [\"string\", \"null\"]}, "                                             \
    "\"time\": {\"type\": \"string\", \"format\": \"date-time\"}}}"

#define FEED_SCHEMA                                                                                \
    "{\"type\": \"object\", \"required\": [\"items\", \"next_since\"], \"properties\": {"          \
    "\"items\": {\"type\": \"array\", \"items\": " FEED_ITEM_SCHEMA "}, "                          \
    "\"next_since\": {\"type\": \"integer\"}}}"

const svc_route svc_revocation_routes[] = {
    {.method = "GET",
     .pattern = "/crl/{crl}",
     .handler = crl_get,
     .auth = SVC_AUTH_NONE,
     .flags = SVC_ROUTE_PLAIN_HTTP,
     .summary = "The current CRL of a tenant's issuing CA ({crl} is <tenant>.crl), DER",
     .content_type = CT_CRL},
    {.method = "GET",
     .pattern = "/ocsp/{b64*}",
     .handler = ocsp_get,
     .auth = SVC_AUTH_NONE,
     .flags = SVC_ROUTE_PLAIN_HTTP,
     .summary = "OCSP (RFC 6960 appendix A.1): the URL-encoded base64 of a DER OCSPRequest",
     .content_type = CT_OCSP_RESP},
    {.method = "POST",
     .pattern = "/ocsp",
     .handler = ocsp_post,
     .auth = SVC_AUTH_NONE,
     .flags = SVC_ROUTE_PLAIN_HTTP | SVC_ROUTE_BODY,
     .summary = "OCSP (RFC 6960 appendix A.1): a DER OCSPRequest as application/ocsp-request",
     .content_type = CT_OCSP_RESP},
    {.method = "GET",
     .pattern = "/api/v1/tenants/{tenant}/revocations",
     .handler = feed_get,
     .auth = SVC_AUTH_TOKEN,
     .roles = TS_ROLE_BIT(TS_ROLE_ADMIN) | TS_ROLE_BIT(TS_ROLE_OPERATOR) |
              TS_ROLE_BIT(TS_ROLE_AUDITOR) | TS_ROLE_BIT(TS_ROLE_DEVICE),
     .summary = "Revocation events after ?since=N (oldest first, at most ?limit)",
     .response_schema = FEED_SCHEMA},
    {.method = NULL},
};
