/*
 * REST request bodies and query values (src/service/svc_api_body.c), and the route table's
 * agreement with them: every request schema lists the members, types and bounds the body checker
 * enforces, and the profile schema covers every built-in profile.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>
#include <openssl/crypto.h>

#include "common/error_internal.h"
#include "service/svc_api_internal.h"
#include "tessera/pki.h"

/* --- Request bodies -----------------------------------------------------------------------------
 */

static void test_body_cases(void **state)
{
    static const struct {
        const svc_api_body_spec *spec;
        const char *body;
        ts_err want;
        const char *want_msg; /* a part of the message, for failures */
    } cases[] = {
        {&svc_api_body_tenant, "{\"name\": \"acme\", \"org\": \"Acme\", \"country\": \"DE\"}",
         TS_OK, NULL},
        {&svc_api_body_tenant, "{\"name\": \"acme\", \"colour\": \"red\"}", TS_ERR_INVALID,
         "unknown member \"colour\""},
        {&svc_api_body_tenant, "{\"name\": 5}", TS_ERR_INVALID, "\"name\" must be a string"},
        {&svc_api_body_tenant, "{\"org\": \"Acme\"}", TS_ERR_INVALID, "\"name\" is required"},
        {&svc_api_body_tenant, "{\"name\": \"acme\", \"country\": \"DEU\"}", TS_ERR_INVALID,
         "\"country\" must have 2 to 2 characters"},
        {&svc_api_body_tenant, "{\"name\": \"\"}", TS_ERR_INVALID, "1 to 32 characters"},
        {&svc_api_body_tenant, "{\"name\": \"a\", \"name\": \"b\"}", TS_ERR_INVALID,
         "not valid JSON"},
        {&svc_api_body_tenant, "{\"name\": \"acme\"", TS_ERR_INVALID, "not valid JSON"},
        {&svc_api_body_tenant, "[\"acme\"]", TS_ERR_INVALID, "must be a JSON object"},
        {&svc_api_body_tenant, "\"acme\"", TS_ERR_INVALID, "not valid JSON"},
        /* jansson refuses an escaped NUL itself; the checker would refuse it as a control. */
        {&svc_api_body_tenant, "{\"name\": \"a\\u0000b\"}", TS_ERR_INVALID, "not valid JSON"},
        {&svc_api_body_tenant, "{\"name\": \"a\\u007fb\"}", TS_ERR_INVALID, "control character"},
        {&svc_api_body_tenant, "{\"name\": \"a\\nb\"}", TS_ERR_INVALID, "control character"},
        {&svc_api_body_tenant, "{\"name\": null}", TS_ERR_INVALID, "must be a string"},
        {&svc_api_body_claim, "{}", TS_OK, NULL},
        {&svc_api_body_claim, "{\"uses\": 3, \"lifetime_seconds\": 3600}", TS_OK, NULL},
        {&svc_api_body_claim, "{\"uses\": 0}", TS_ERR_INVALID, "from 1 to 1000000"},
        {&svc_api_body_claim, "{\"uses\": 1.0}", TS_ERR_INVALID, "must be an integer"},
        {&svc_api_body_claim, "{\"uses\": true}", TS_ERR_INVALID, "must be an integer"},
        {&svc_api_body_claim, "{\"uses\": \"3\"}", TS_ERR_INVALID, "must be an integer"},
        {&svc_api_body_claim, "{\"lifetime_seconds\": 99999999999}", TS_ERR_INVALID,
         "\"lifetime_seconds\" must be from 1 to 31622400"},
        {&svc_api_body_token, "{\"user\": \"ops\", \"name\": \"ci\", \"lifetime_seconds\": -1}",
         TS_ERR_INVALID, "from 1 to"},
        {&svc_api_body_issue,
         "{\"csr\": \"-----BEGIN CERTIFICATE REQUEST-----\\r\\nMIIB\\n-----END\\n\", "
         "\"profile\": \"device\"}",
         TS_OK, NULL},
        {&svc_api_body_issue, "{\"csr\": \"x\\u0001\", \"profile\": \"device\"}", TS_ERR_INVALID,
         "control character"},
        {&svc_api_body_issue, "{\"csr\": \"x\"}", TS_ERR_INVALID, "\"profile\" is required"},
        {&svc_api_body_revoke, "{}", TS_OK, NULL},
        {&svc_api_body_revoke, "{\"reason\": [\"keyCompromise\"]}", TS_ERR_INVALID,
         "must be a string"},
        {&svc_api_body_device, "{\"uid\": \"d\\u00e9v\"}", TS_OK, NULL},
        {&svc_api_body_user, "{\"name\": \"n\", \"role\": \"admin\", \"device\": \"x\"}",
         TS_ERR_INVALID, "unknown member \"device\""},
    };

    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *doc = (json_t *)1;
        ts_err rv = svc_api_body_parse((const uint8_t *)cases[i].body, strlen(cases[i].body),
                                       cases[i].spec, &doc);
        if (rv != cases[i].want) {
            fail_msg("case %zu (%s): got %d (%s), want %d", i, cases[i].body, (int)rv,
                     ts_error_message(), (int)cases[i].want);
        }
        if (rv != TS_OK) {
            assert_null(doc);
            if (strstr(ts_error_message(), cases[i].want_msg) == NULL) {
                fail_msg("case %zu: message '%s' lacks '%s'", i, ts_error_message(),
                         cases[i].want_msg);
            }
        } else {
            assert_true(json_is_object(doc));
        }
        json_decref(doc);
    }
}

static void test_body_empty_and_values(void **state)
{
    json_t *doc = NULL;

    (void)state;
    assert_int_equal(svc_api_body_parse(NULL, 0, &svc_api_body_tenant, &doc), TS_ERR_INVALID);
    assert_non_null(strstr(ts_error_message(), "needs a JSON object"));
    assert_null(doc);

    const char *body = "{\"uses\": 4, \"profile\": \"device\"}";
    assert_int_equal(
        svc_api_body_parse((const uint8_t *)body, strlen(body), &svc_api_body_claim, &doc), TS_OK);
    assert_int_equal(svc_api_int(doc, "uses", 0), 4);
    assert_int_equal(svc_api_int(doc, "lifetime_seconds", 77), 77);
    assert_string_equal(svc_api_str(doc, "profile"), "device");
    assert_null(svc_api_str(doc, "nothing"));
    json_decref(doc);

    /* A body cut short at every byte is refused, never half-read. */
    body = "{\"name\": \"acme\", \"org\": \"Acme\"}";
    for (size_t n = 1; n < strlen(body); n++) {
        assert_int_equal(svc_api_body_parse((const uint8_t *)body, n, &svc_api_body_tenant, &doc),
                         TS_ERR_INVALID);
        assert_null(doc);
    }
}

static void test_json_content_type(void **state)
{
    static const struct {
        const char *type;
        int want;
    } cases[] = {
        {"application/json", 1},
        {"Application/JSON", 1},
        {"application/json; charset=utf-8", 1},
        {"application/json ;charset=utf-8", 1},
        {"application/jsonx", 0},
        {"application/json-patch+json", 0},
        {"text/plain", 0},
        {"application/x-www-form-urlencoded", 0},
        {"", 0},
        {NULL, 0},
    };

    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        if (svc_api_is_json_type(cases[i].type) != cases[i].want) {
            fail_msg("'%s': want %d", cases[i].type ? cases[i].type : "(null)", cases[i].want);
        }
    }
}

static void test_query_int(void **state)
{
    static const struct {
        const char *text;
        int64_t min, max;
        ts_err want;
        int64_t want_value;
    } cases[] = {
        {"0", 0, 10, TS_OK, 0},
        {"10", 0, 10, TS_OK, 10},
        {"11", 0, 10, TS_ERR_INVALID, 0},
        {"0", 1, 10, TS_ERR_INVALID, 0},
        {"010", 0, 100, TS_ERR_INVALID, 0},
        {"-1", -5, 10, TS_ERR_INVALID, 0},
        {"+1", 0, 10, TS_ERR_INVALID, 0},
        {" 1", 0, 10, TS_ERR_INVALID, 0},
        {"1 ", 0, 10, TS_ERR_INVALID, 0},
        {"1e3", 0, 10000, TS_ERR_INVALID, 0},
        {"0x10", 0, 100, TS_ERR_INVALID, 0},
        {"", 0, 10, TS_ERR_INVALID, 0},
        {NULL, 0, 10, TS_ERR_INVALID, 0},
        {"999999999999999999", 0, INT64_MAX, TS_OK, 999999999999999999},
        {"9999999999999999999", 0, INT64_MAX, TS_ERR_INVALID, 0},
    };

    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t v = -42;
        ts_err rv = svc_api_query_int(cases[i].text, "query parameter 'limit'", cases[i].min,
                                      cases[i].max, &v);
        if (rv != cases[i].want) {
            fail_msg("case %zu '%s': got %d, want %d", i, cases[i].text ? cases[i].text : "",
                     (int)rv, (int)cases[i].want);
        }
        if (rv == TS_OK) {
            assert_int_equal(v, cases[i].want_value);
        } else {
            assert_int_equal(v, -42);
            assert_non_null(strstr(ts_error_message(), "query parameter 'limit'"));
        }
    }
}

/* --- The route table against the body specs ----------------------------------------------------
 */

static const svc_route *route_find(const char *method, const char *pattern)
{
    for (const svc_route *r = svc_api_routes; r->method != NULL; r++) {
        if (strcmp(r->method, method) == 0 && strcmp(r->pattern, pattern) == 0) {
            return r;
        }
    }
    return NULL;
}

static json_t *schema_load(const char *text, const char *what)
{
    json_error_t jerr;
    json_t *doc = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);

    if (!json_is_object(doc)) {
        fail_msg("%s: schema is not a JSON object: %s (column %d)", what, jerr.text, jerr.column);
    }
    return doc;
}

static void test_routes_are_complete(void **state)
{
    size_t n = 0;

    (void)state;
    for (const svc_route *r = svc_api_routes; r->method != NULL; r++, n++) {
        assert_int_equal(strncmp(r->pattern, "/api/v1/", 8), 0);
        assert_non_null(r->handler);
        assert_int_equal(r->auth, SVC_AUTH_TOKEN);
        assert_true(r->roles != 0);
        assert_non_null(r->summary);
        assert_non_null(r->response_schema);
        json_decref(schema_load(r->response_schema, r->pattern));
        /* A route takes a body exactly when it says what the body is. */
        assert_int_equal((r->flags & SVC_ROUTE_BODY) != 0, r->request_schema != NULL);
        if (r->request_schema != NULL) {
            json_t *req = schema_load(r->request_schema, r->pattern);
            assert_true(json_is_false(json_object_get(req, "additionalProperties")));
            json_decref(req);
        }
        /* No route twice. */
        assert_ptr_equal(route_find(r->method, r->pattern), r);
    }
    assert_int_equal(n, 34);
}

static void check_field(const json_t *prop, const svc_api_field *f, const char *where)
{
    const char *type = json_string_value(json_object_get(prop, "type"));
    int is_int = f->type == SVC_API_INTEGER;

    if (type == NULL || strcmp(type, is_int ? "integer" : "string") != 0) {
        fail_msg("%s.%s: schema type %s", where, f->name, type ? type : "(none)");
    }
    const char *lo = is_int ? "minimum" : "minLength";
    const char *hi = is_int ? "maximum" : "maxLength";
    if (json_integer_value(json_object_get(prop, lo)) != f->min ||
        json_integer_value(json_object_get(prop, hi)) != f->max) {
        fail_msg("%s.%s: schema bounds %lld..%lld, checker %lld..%lld", where, f->name,
                 (long long)json_integer_value(json_object_get(prop, lo)),
                 (long long)json_integer_value(json_object_get(prop, hi)), (long long)f->min,
                 (long long)f->max);
    }
}

static void test_request_schemas_match_checker(void **state)
{
    size_t bodies = 0;

    (void)state;
    for (const svc_api_body_route *b = svc_api_body_routes; b->method != NULL; b++, bodies++) {
        const svc_route *r = route_find(b->method, b->pattern);
        assert_non_null(r);
        json_t *schema = schema_load(r->request_schema, r->pattern);
        json_t *props = json_object_get(schema, "properties");
        json_t *required = json_object_get(schema, "required");
        size_t fields = 0, want_required = 0;
        for (const svc_api_field *f = b->spec->fields; f->name != NULL; f++, fields++) {
            json_t *prop = json_object_get(props, f->name);
            if (prop == NULL) {
                fail_msg("%s %s: schema lacks member %s", r->method, r->pattern, f->name);
            }
            check_field(prop, f, r->pattern);
            int listed = 0;
            size_t i;
            json_t *v;
            json_array_foreach(required, i, v)
            {
                listed |= strcmp(json_string_value(v), f->name) == 0;
            }
            if (listed != f->required) {
                fail_msg("%s %s: %s required %d in the checker", r->method, r->pattern, f->name,
                         f->required);
            }
            want_required += (size_t)f->required;
        }
        assert_int_equal(json_object_size(props), fields);
        assert_int_equal(json_array_size(required), want_required);
        json_decref(schema);
    }
    /* Every route with a body but PUT profile (the profile parser's own) is in the table. */
    size_t with_body = 0;
    for (const svc_route *r = svc_api_routes; r->method != NULL; r++) {
        with_body += r->request_schema != NULL;
    }
    assert_int_equal(bodies + 1, with_body);
}

static void test_profile_schema_covers_builtins(void **state)
{
    static const char *const names[] = {"device", "server", "firmware-signer", "verification"};
    const svc_route *r = route_find("PUT", "/api/v1/tenants/{tenant}/profiles/{name}");

    (void)state;
    assert_non_null(r);
    json_t *schema = schema_load(r->request_schema, r->pattern);
    json_t *props = json_object_get(schema, "properties");
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        ts_profile *p = NULL;
        char *text = NULL;
        const char *key;
        json_t *v;
        assert_int_equal(ts_profile_builtin(names[i], &p), TS_OK);
        assert_int_equal(ts_profile_to_json(p, &text), TS_OK);
        json_t *doc = json_loads(text, 0, NULL);
        assert_non_null(doc);
        json_object_foreach(doc, key, v)
        {
            if (json_object_get(props, key) == NULL) {
                fail_msg("profile %s has member %s the schema does not list", names[i], key);
            }
        }
        size_t j;
        json_array_foreach(json_object_get(schema, "required"), j, v)
        {
            assert_non_null(json_object_get(doc, json_string_value(v)));
        }
        json_decref(doc);
        OPENSSL_free(text);
        ts_profile_free(p);
    }
    json_decref(schema);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_body_cases),
        cmocka_unit_test(test_body_empty_and_values),
        cmocka_unit_test(test_json_content_type),
        cmocka_unit_test(test_query_int),
        cmocka_unit_test(test_routes_are_complete),
        cmocka_unit_test(test_request_schemas_match_checker),
        cmocka_unit_test(test_profile_schema_covers_builtins),
    };
    return cmocka_run_group_tests_name("api_body", tests, NULL, NULL);
}
