/*
 * The JSON forms the REST API answers with: one function per kind of row, times as RFC 3339 UTC
 * strings, certificates with their PEM, and the {"items", "next"} shape of every list.
 */
#include <stdio.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/pem.h>

#include "common/error_internal.h"
#include "service/svc_api_internal.h"
#include "tessera/pki.h"

static json_t *oom(void)
{
    ts_error_set(TS_ERR_NOMEM, "out of memory building a JSON reply");
    return NULL;
}

/* Adds a member; a NULL value (its builder failed) makes it fail, and the caller drops all. */
static int put(json_t *obj, const char *key, json_t *value)
{
    if (value == NULL) {
        return -1;
    }
    return json_object_set_new(obj, key, value);
}

/* A string, or JSON null for an empty one ("none"). */
static json_t *str_or_null(const char *s)
{
    return s == NULL || s[0] == '\0' ? json_null() : json_string(s);
}

static json_t *finish(json_t *obj, int failed)
{
    if (obj == NULL || failed) {
        json_decref(obj);
        return oom();
    }
    return obj;
}

ts_err svc_api_time(time_t t, char out[SVC_API_TIME_MAX])
{
    struct tm tm;

    /* RFC 3339 section 5.6: date-time = full-date "T" full-time, with "Z" for UTC; years past
     * 9999 have no RFC 3339 form. */
    if (gmtime_r(&t, &tm) == NULL || tm.tm_year + 1900 < 0 || tm.tm_year + 1900 > 9999 ||
        strftime(out, SVC_API_TIME_MAX, "%Y-%m-%dT%H:%M:%SZ", &tm) != 20) {
        out[0] = '\0';
        return ts_error_set(TS_ERR_INVALID, "time %lld has no RFC 3339 form", (long long)t);
    }
    return TS_OK;
}

json_t *svc_api_time_json(time_t t)
{
    char text[SVC_API_TIME_MAX];

    if (t == 0) {
        return json_null();
    }
    if (svc_api_time(t, text) != TS_OK) {
        return NULL;
    }
    return json_string(text);
}

json_t *svc_api_cursor_json(int64_t after_id)
{
    char text[SVC_API_CURSOR_MAX];

    if (after_id <= 0) {
        return json_null();
    }
    /* The cursor is the id of the last row of the page, which svc_page_params() reads back. */
    snprintf(text, sizeof text, "%lld", (long long)after_id);
    return json_string(text);
}

json_t *svc_api_list(json_t *items, int64_t next_after)
{
    json_t *obj = json_object();
    int failed = put(obj, "items", items);

    failed |= put(obj, "next", svc_api_cursor_json(next_after));
    return finish(obj, failed);
}

ts_err svc_api_pem(const uint8_t *der, size_t len, char **pem)
{
    BIO *mem = BIO_new(BIO_s_mem());
    char *data = NULL;
    ts_err rv = TS_OK;

    *pem = NULL;
    if (mem == NULL || len > (size_t)INT32_MAX ||
        PEM_write_bio(mem, PEM_STRING_X509, "", der, (long)len) <= 0) {
        rv = ts_error_set_openssl(TS_ERR_CRYPTO, "cannot write a certificate as PEM");
        goto done;
    }
    long n = BIO_get_mem_data(mem, &data);
    *pem = OPENSSL_strndup(data, (size_t)n);
    if (*pem == NULL) {
        rv = ts_error_set(TS_ERR_NOMEM, "out of memory writing a certificate as PEM");
    }
done:
    BIO_free(mem);
    return rv;
}

static json_t *pem_json(const uint8_t *der, size_t len)
{
    char *pem = NULL;

    if (svc_api_pem(der, len, &pem) != TS_OK) {
        return NULL;
    }
    json_t *v = json_string(pem);
    OPENSSL_free(pem);
    return v;
}

json_t *svc_api_principal_json(const ts_principal *p)
{
    json_t *obj = json_object();
    int failed = put(obj, "user", json_string(p->user));

    failed |= put(obj, "role", json_string(ts_role_name(p->role)));
    failed |= put(obj, "tenant", str_or_null(p->tenant));
    failed |= put(obj, "device_uid", str_or_null(p->device_uid));
    failed |= put(obj, "token_id", json_integer(p->token_id));
    return finish(obj, failed);
}

json_t *svc_api_tenant_json(const ts_tenant_row *row)
{
    json_t *obj = json_object();
    int failed = put(obj, "name", json_string(row->name));

    failed |= put(obj, "org", json_string(row->org));
    failed |= put(obj, "country", str_or_null(row->country));
    failed |= put(obj, "created", svc_api_time_json(row->created));
    return finish(obj, failed);
}

json_t *svc_api_user_json(const ts_user_row *row)
{
    json_t *obj = json_object();
    int failed = put(obj, "id", json_integer(row->id));

    failed |= put(obj, "name", json_string(row->name));
    failed |= put(obj, "tenant", str_or_null(row->tenant));
    failed |= put(obj, "role", json_string(ts_role_name(row->role)));
    failed |= put(obj, "device_uid", str_or_null(row->device_uid));
    failed |= put(obj, "disabled", json_boolean(row->disabled));
    failed |= put(obj, "created", svc_api_time_json(row->created));
    return finish(obj, failed);
}

json_t *svc_api_token_json(const ts_token_row *row)
{
    json_t *obj = json_object();
    int failed = put(obj, "id", json_integer(row->id));

    failed |= put(obj, "user", json_string(row->user));
    failed |= put(obj, "name", json_string(row->name));
    failed |= put(obj, "prefix", json_string(row->prefix));
    failed |= put(obj, "created", svc_api_time_json(row->created));
    failed |= put(obj, "expires", svc_api_time_json(row->expires));
    failed |= put(obj, "revoked_at", svc_api_time_json(row->revoked_at));
    return finish(obj, failed);
}

const char *svc_api_cert_state_name(ts_cert_state state)
{
    return state == TS_CERT_REVOKED_STATE ? "revoked" : "valid";
}

const char *svc_api_device_state_name(ts_device_state state)
{
    return state == TS_DEVICE_DISABLED ? "disabled" : "enabled";
}

json_t *svc_api_cert_json(const ts_cert_row *row)
{
    int revoked = row->state == TS_CERT_REVOKED_STATE;
    const char *reason = revoked ? ts_crl_reason_name(row->revocation_reason) : NULL;
    json_t *obj = json_object();
    int failed = put(obj, "serial", json_string(row->serial));

    failed |= put(obj, "subject", json_string(row->subject));
    failed |= put(obj, "device_uid", str_or_null(row->device_uid));
    failed |= put(obj, "profile", json_string(row->profile));
    failed |= put(obj, "fingerprint", json_string(row->fingerprint));
    failed |= put(obj, "status", json_string(svc_api_cert_state_name(row->state)));
    failed |= put(obj, "not_before", svc_api_time_json(row->not_before));
    failed |= put(obj, "not_after", svc_api_time_json(row->not_after));
    failed |= put(obj, "revoked_at", svc_api_time_json(revoked ? row->revoked_at : 0));
    failed |= put(obj, "revocation_reason", str_or_null(reason));
    failed |= put(obj, "created", svc_api_time_json(row->created));
    if (row->der != NULL) {
        failed |= put(obj, "pem", pem_json(row->der, row->der_len));
    }
    return finish(obj, failed);
}

json_t *svc_api_device_json(const ts_device_row *row)
{
    json_t *obj = json_object();
    int failed = put(obj, "uid", json_string(row->uid));

    failed |= put(obj, "status", json_string(svc_api_device_state_name(row->state)));
    failed |= put(obj, "created", svc_api_time_json(row->created));
    failed |= put(obj, "updated", svc_api_time_json(row->updated));
    return finish(obj, failed);
}

json_t *svc_api_claim_json(const ts_claim_row *row)
{
    json_t *obj = json_object();
    int failed = put(obj, "id", json_integer(row->id));

    failed |= put(obj, "profile", json_string(row->profile));
    failed |= put(obj, "prefix", json_string(row->prefix));
    failed |= put(obj, "uses_max", json_integer(row->uses_max));
    failed |= put(obj, "uses_left", json_integer(row->uses_left));
    failed |= put(obj, "created", svc_api_time_json(row->created));
    failed |= put(obj, "expires", svc_api_time_json(row->expires));
    failed |= put(obj, "revoked_at", svc_api_time_json(row->revoked_at));
    return finish(obj, failed);
}

json_t *svc_api_audit_json(const ts_audit_row *row)
{
    json_t *obj = json_object();
    json_t *details = NULL;
    int failed = put(obj, "id", json_integer(row->id));

    /* The details are JSON text as the chain hashed them; shown parsed, or as the text itself
     * when an old entry holds something else, never dropped. */
    if (row->details != NULL) {
        details = json_loads(row->details, JSON_DECODE_ANY, NULL);
        if (details == NULL) {
            details = json_string(row->details);
        }
    }
    failed |= put(obj, "time", svc_api_time_json(row->time));
    failed |= put(obj, "actor", json_string(row->actor));
    failed |= put(obj, "action", json_string(row->action));
    failed |= put(obj, "object", json_string(row->object));
    failed |= put(obj, "details", details != NULL ? details : json_null());
    failed |= put(obj, "hash", json_string(row->hash));
    return finish(obj, failed);
}

static ts_err asn1_time(const ASN1_TIME *t, time_t *out)
{
    struct tm tm;

    if (ASN1_TIME_to_tm(t, &tm) != 1) {
        return ts_error_set_openssl(TS_ERR_CORRUPT, "a CA certificate has an unreadable validity");
    }
    *out = timegm(&tm);
    return TS_OK;
}

json_t *svc_api_ca_json(X509 *cert, const char *kind)
{
    char serial[TS_SERIAL_HEX], fingerprint[TS_FINGERPRINT_HEX];
    time_t not_before = 0, not_after = 0;
    BIO *subject = BIO_new(BIO_s_mem());
    BIO *pem = BIO_new(BIO_s_mem());
    char *subject_text = NULL, *pem_text = NULL;
    json_t *obj = NULL;

    if (subject == NULL || pem == NULL ||
        X509_NAME_print_ex(subject, X509_get_subject_name(cert), 0, XN_FLAG_RFC2253) < 0 ||
        PEM_write_bio_X509(pem, cert) != 1) {
        ts_error_set_openssl(TS_ERR_CRYPTO, "cannot print a CA certificate");
        goto done;
    }
    if (ts_serial_hex(X509_get0_serialNumber(cert), serial, sizeof serial) != TS_OK ||
        ts_cert_fingerprint(cert, fingerprint) != TS_OK ||
        asn1_time(X509_get0_notBefore(cert), &not_before) != TS_OK ||
        asn1_time(X509_get0_notAfter(cert), &not_after) != TS_OK) {
        goto done;
    }
    long subject_len = BIO_get_mem_data(subject, &subject_text);
    long pem_len = BIO_get_mem_data(pem, &pem_text);
    obj = json_object();
    int failed = put(obj, "kind", json_string(kind));
    failed |= put(obj, "subject", json_stringn(subject_text, (size_t)subject_len));
    failed |= put(obj, "serial", json_string(serial));
    failed |= put(obj, "fingerprint", json_string(fingerprint));
    failed |= put(obj, "not_before", svc_api_time_json(not_before));
    failed |= put(obj, "not_after", svc_api_time_json(not_after));
    failed |= put(obj, "pem", json_stringn(pem_text, (size_t)pem_len));
    obj = finish(obj, failed);
done:
    BIO_free(subject);
    BIO_free(pem);
    return obj;
}
