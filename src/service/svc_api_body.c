/*
 * Request bodies and query values of the REST API: what each route's body may hold, and the one
 * checker every handler runs a body through before reading a member of it. A body that fails is
 * refused whole, before anything changes.
 */
#include <string.h>
#include <strings.h>

#include "common/error_internal.h"
#include "service/svc_api_internal.h"

#define STR(n, req, lo, hi)                                                                        \
    {                                                                                              \
        .name = n, .type = SVC_API_STRING, .required = req, .min = lo, .max = hi                   \
    }
#define INT(n, req, lo, hi)                                                                        \
    {                                                                                              \
        .name = n, .type = SVC_API_INTEGER, .required = req, .min = lo, .max = hi                  \
    }
#define PEM(n)                                                                                     \
    {                                                                                              \
        .name = n, .type = SVC_API_LINES, .required = 1, .min = 1, .max = SVC_API_CSR_MAX          \
    }

const svc_api_body_spec svc_api_body_tenant = {{
    STR("name", 1, 1, TS_TENANT_NAME_MAX),
    STR("org", 0, 1, 64),
    STR("country", 0, 2, 2),
}};

const svc_api_body_spec svc_api_body_user = {{
    STR("name", 1, 1, TS_NAME_MAX),
    STR("role", 1, 1, 16),
    STR("device_uid", 0, 1, TS_DEVICE_UID_MAX),
}};

const svc_api_body_spec svc_api_body_token = {{
    STR("user", 1, 1, TS_NAME_MAX),
    STR("name", 1, 1, TS_NAME_MAX),
    INT("lifetime_seconds", 0, 1, SVC_API_TOKEN_LIFETIME_MAX),
}};

const svc_api_body_spec svc_api_body_verification = {{
    STR("code", 1, 1, TS_VERIFY_CODE_MAX),
}};

const svc_api_body_spec svc_api_body_issue = {{
    PEM("csr"),
    STR("profile", 1, 1, TS_NAME_MAX),
}};

const svc_api_body_spec svc_api_body_revoke = {{
    STR("reason", 0, 1, 32),
}};

const svc_api_body_spec svc_api_body_rekey = {{
    PEM("csr"),
}};

const svc_api_body_spec svc_api_body_device = {{
    STR("uid", 1, 1, TS_DEVICE_UID_MAX),
}};

const svc_api_body_spec svc_api_body_claim = {{
    INT("uses", 0, 1, SVC_API_CLAIM_USES_MAX),
    INT("lifetime_seconds", 0, 1, SVC_API_CLAIM_LIFETIME_MAX),
    STR("profile", 0, 1, TS_NAME_MAX),
}};

#define T "/api/v1/tenants/{tenant}"

const svc_api_body_route svc_api_body_routes[] = {
    {"POST", "/api/v1/tenants", &svc_api_body_tenant},
    {"POST", T "/users", &svc_api_body_user},
    {"POST", T "/tokens", &svc_api_body_token},
    {"POST", T "/cas/verification", &svc_api_body_verification},
    {"POST", T "/certificates", &svc_api_body_issue},
    {"POST", T "/certificates/{serial}/revoke", &svc_api_body_revoke},
    {"POST", T "/certificates/{serial}/rekey", &svc_api_body_rekey},
    {"POST", T "/devices", &svc_api_body_device},
    {"POST", T "/claims", &svc_api_body_claim},
    {NULL, NULL, NULL},
};

static const svc_api_field *field_find(const svc_api_body_spec *spec, const char *name)
{
    for (const svc_api_field *f = spec->fields; f->name != NULL; f++) {
        if (strcmp(f->name, name) == 0) {
            return f;
        }
    }
    return NULL;
}

/* Characters, not bytes: jansson hands over valid UTF-8, and a schema's maxLength counts code
 * points, so continuation bytes (10xxxxxx) are not counted. */
static int64_t utf8_chars(const char *s, size_t len)
{
    int64_t n = 0;

    for (size_t i = 0; i < len; i++) {
        if (((unsigned char)s[i] & 0xC0) != 0x80) {
            n++;
        }
    }
    return n;
}

static ts_err check_string(const json_t *v, const svc_api_field *f)
{
    const char *s = json_string_value(v);
    size_t len = json_string_length(v);

    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        int line_break = c == '\n' || c == '\r' || c == '\t';
        if (c == 0 || c == 0x7F || (c < 0x20 && !(f->type == SVC_API_LINES && line_break))) {
            return ts_error_set(TS_ERR_INVALID,
                                "request body: member \"%s\" holds a control character at byte %zu",
                                f->name, i);
        }
    }
    int64_t chars = utf8_chars(s, len);
    if (chars < f->min || chars > f->max) {
        return ts_error_set(TS_ERR_INVALID,
                            "request body: member \"%s\" must have %lld to %lld characters "
                            "(it has %lld)",
                            f->name, (long long)f->min, (long long)f->max, (long long)chars);
    }
    return TS_OK;
}

static ts_err check_member(const char *name, const json_t *v, const svc_api_field *f)
{
    if (f->type == SVC_API_INTEGER) {
        /* json_is_integer() is false for reals (1.0) and booleans: both are refused. */
        if (!json_is_integer(v)) {
            return ts_error_set(TS_ERR_INVALID, "request body: member \"%s\" must be an integer",
                                name);
        }
        json_int_t n = json_integer_value(v);
        if (n < f->min || n > f->max) {
            return ts_error_set(TS_ERR_INVALID,
                                "request body: member \"%s\" must be from %lld to %lld", name,
                                (long long)f->min, (long long)f->max);
        }
        return TS_OK;
    }
    if (!json_is_string(v)) {
        return ts_error_set(TS_ERR_INVALID, "request body: member \"%s\" must be a string", name);
    }
    return check_string(v, f);
}

ts_err svc_api_body_check(const json_t *doc, const svc_api_body_spec *spec)
{
    const char *key;
    json_t *value;

    if (!json_is_object(doc)) {
        return ts_error_set(TS_ERR_INVALID, "the request body must be a JSON object");
    }
    /* Unknown members first: a misspelt optional member must not pass as "absent". */
    json_object_foreach((json_t *)doc, key, value)
    {
        const svc_api_field *f = field_find(spec, key);
        if (f == NULL) {
            return ts_error_set(TS_ERR_INVALID, "request body: unknown member \"%.64s\"", key);
        }
        ts_err rv = check_member(key, value, f);
        if (rv != TS_OK) {
            return rv;
        }
    }
    for (const svc_api_field *f = spec->fields; f->name != NULL; f++) {
        if (f->required && json_object_get(doc, f->name) == NULL) {
            return ts_error_set(TS_ERR_INVALID, "request body: member \"%s\" is required", f->name);
        }
    }
    return TS_OK;
}

ts_err svc_api_body_parse(const uint8_t *body, size_t len, const svc_api_body_spec *spec,
                          json_t **out)
{
    json_error_t jerr;
    json_t *doc = NULL;

    *out = NULL;
    if (body == NULL || len == 0) {
        return ts_error_set(TS_ERR_INVALID, "the request needs a JSON object as its body");
    }
    /* RFC 8259 section 4: member names SHOULD be unique; two of one name are refused rather than
     * letting the last one silently win. */
    doc = json_loadb((const char *)body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (doc == NULL) {
        return ts_error_set(TS_ERR_INVALID,
                            "the request body is not valid JSON: %s (line %d, column %d)",
                            jerr.text, jerr.line, jerr.column);
    }
    ts_err rv = svc_api_body_check(doc, spec);
    if (rv != TS_OK) {
        json_decref(doc);
        return rv;
    }
    *out = doc;
    return TS_OK;
}

const char *svc_api_str(const json_t *doc, const char *name)
{
    return json_string_value(json_object_get(doc, name));
}

int64_t svc_api_int(const json_t *doc, const char *name, int64_t dflt)
{
    const json_t *v = json_object_get(doc, name);

    return json_is_integer(v) ? (int64_t)json_integer_value(v) : dflt;
}

int svc_api_is_json_type(const char *content_type)
{
    static const char json_type[] = "application/json";
    size_t n = sizeof json_type - 1;

    if (content_type == NULL || strncasecmp(content_type, json_type, n) != 0) {
        return 0;
    }
    /* RFC 9110 section 8.3.1: media-type = type "/" subtype parameters, where parameters are
     * *( OWS ";" OWS parameter ). */
    const char *rest = content_type + n;
    while (*rest == ' ' || *rest == '\t') {
        rest++;
    }
    return *rest == '\0' || *rest == ';';
}

ts_err svc_api_query_int(const char *text, const char *name, int64_t min, int64_t max, int64_t *out)
{
    int64_t n = 0;
    size_t len = text == NULL ? 0 : strlen(text);

    /* 18 digits always fit an int64_t; no bound of ours needs more. */
    int ok = len > 0 && len <= 18 && (text[0] != '0' || len == 1);
    for (size_t i = 0; ok && i < len; i++) {
        ok = text[i] >= '0' && text[i] <= '9';
        if (ok) {
            n = n * 10 + (text[i] - '0');
        }
    }
    if (!ok || n < min || n > max) {
        return ts_error_set(TS_ERR_INVALID, "%s must be a whole number from %lld to %lld", name,
                            (long long)min, (long long)max);
    }
    *out = n;
    return TS_OK;
}
