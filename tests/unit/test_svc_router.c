/*
 * The router and request helpers of the trust service (src/service/svc_router.c,
 * svc_request.c): pattern matching and parameter decoding, the error-to-status mapping, page
 * values, JSON bodies, and the route tables every module contributes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/queue.h>

#include <cmocka.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "service/svc_internal.h"

typedef struct match_case {
    const char *pattern;
    const char *path;
    int want;      /* svc_route_match's result */
    size_t want_n; /* parameters on a match */
    const char *want_p[SVC_PARAMS_MAX];
} match_case;

static const match_case match_cases[] = {
    {"/healthz", "/healthz", 1, 0, {NULL}},
    {"/healthz", "/healthz/", 0, 0, {NULL}},
    {"/healthz", "/healthzz", 0, 0, {NULL}},
    {"/healthz", "//healthz", 0, 0, {NULL}},
    {"/healthz", "/%68ealthz", 1, 0, {NULL}},
    {"/", "/", 1, 0, {NULL}},
    {"/api/v1/tenants/{tenant}", "/api/v1/tenants/acme", 1, 1, {"acme"}},
    {"/api/v1/tenants/{tenant}", "/api/v1/tenants/", 0, 0, {NULL}},
    {"/api/v1/tenants/{tenant}", "/api/v1/tenants", 0, 0, {NULL}},
    {"/api/v1/tenants/{tenant}", "/api/v1/tenants/acme/users", 0, 0, {NULL}},
    {"/api/v1/tenants/{tenant}/users/{user}",
     "/api/v1/tenants/a%20b/users/x%2By",
     1,
     2,
     {"a b", "x+y"}},
    /* A parameter is one segment: an escaped '/' does not make it two, it is refused. */
    {"/api/v1/tenants/{tenant}", "/api/v1/tenants/a%2Fb", -1, 0, {NULL}},
    {"/api/v1/tenants/{tenant}", "/api/v1/tenants/a%00b", -1, 0, {NULL}},
    {"/api/v1/tenants/{tenant}", "/api/v1/tenants/a%zz", -1, 0, {NULL}},
    {"/api/v1/tenants/{tenant}", "/api/v1/tenants/a%4", -1, 0, {NULL}},
    /* A literal segment never matches an escaped '/'. */
    {"/api/v1/tenants", "/api%2Fv1/tenants", 0, 0, {NULL}},
    {"/crl/{crl}", "/crl/acme.crl", 1, 1, {"acme.crl"}},
    {"/ocsp/{b64}", "/ocsp/MEIwQDA%2BMDwwOjAJ%3D", 1, 1, {"MEIwQDA+MDwwOjAJ="}},
    {"/ocsp/{b64}", "/ocsp/MEIw%2FQDA", -1, 0, {NULL}},
    {"/ocsp/{b64}", "/ocsp/MEIw/QDA", 0, 0, {NULL}},
    {"/ocsp/{b64}", "/ocsp/MEIw+QDA=", 1, 1, {"MEIw+QDA="}},
    /* {name*} at the end takes the rest of the path, escaped '/' or not. */
    {"/ocsp/{b64*}", "/ocsp/MEIwQDA%2BMDw%2FOjAJ%3D", 1, 1, {"MEIwQDA+MDw/OjAJ="}},
    {"/ocsp/{b64*}", "/ocsp/MEIw/QDA/", 1, 1, {"MEIw/QDA/"}},
    {"/ocsp/{b64*}", "/ocsp/", 0, 0, {NULL}},
    {"/ocsp/{b64*}", "/ocsp", 0, 0, {NULL}},
    {"/ocsp/{b64*}", "/ocsp/a%00", -1, 0, {NULL}},
    {"/.well-known/est/{tenant}/cacerts", "/.well-known/est/acme/cacerts", 1, 1, {"acme"}},
    {"/.well-known/est/{tenant}/cacerts", "/.well-known/est/cacerts", 0, 0, {NULL}},
    {"/a/{x}/{y}/{z}/{w}", "/a/1/2/3/4", 1, 4, {"1", "2", "3", "4"}},
    {"/a/{x}/{y}/{z}/{w}/{v}", "/a/1/2/3/4/5", 0, 0, {NULL}},
    {"/healthz", "healthz", 0, 0, {NULL}},
};

static void test_route_match_table(void **state)
{
    for (size_t i = 0; i < sizeof match_cases / sizeof match_cases[0]; i++) {
        const match_case *c = &match_cases[i];
        char buf[SVC_PATH_MAX];
        const char *params[SVC_PARAMS_MAX] = {NULL};
        size_t n = 99;
        int got = svc_route_match(c->pattern, c->path, buf, sizeof buf, params, &n);
        if (got != c->want) {
            fail_msg("case %zu: %s against %s gave %d, want %d", i, c->path, c->pattern, got,
                     c->want);
        }
        if (got != 1) {
            continue;
        }
        assert_int_equal(n, c->want_n);
        for (size_t j = 0; j < n; j++) {
            assert_string_equal(params[j], c->want_p[j]);
        }
    }
}

static void test_route_match_small_buffer(void **state)
{
    char buf[4];
    const char *params[SVC_PARAMS_MAX];
    size_t n = 0;
    assert_int_equal(svc_route_match("/t/{a}", "/t/abc", buf, sizeof buf, params, &n), 1);
    assert_string_equal(params[0], "abc");
    /* No room for the value and its NUL: refused, never truncated. */
    assert_int_equal(svc_route_match("/t/{a}", "/t/abcd", buf, sizeof buf, params, &n), -1);
}

static void test_path_decode(void **state)
{
    char out[16];
    assert_int_equal(svc_path_decode("/a%2Fb%41", out, sizeof out), 0);
    assert_string_equal(out, "/a/bA");
    assert_int_equal(svc_path_decode("/a%00", out, sizeof out), -1);
    assert_int_equal(svc_path_decode("/a%g0", out, sizeof out), -1);
    assert_int_equal(svc_path_decode("/a%", out, sizeof out), -1);
    assert_int_equal(svc_path_decode("/0123456789abcdef", out, sizeof out), -1);
}

static void test_param_by_name(void **state)
{
    static const svc_route route = {.method = "GET",
                                    .pattern = "/api/v1/tenants/{tenant}/devices/{uid}"};
    svc_request r;
    memset(&r, 0, sizeof r);
    r.route = &route;
    assert_int_equal(svc_route_match(route.pattern, "/api/v1/tenants/acme/devices/dev%2D1",
                                     r.params_buf, sizeof r.params_buf, r.params, &r.nparams),
                     1);
    assert_string_equal(svc_param(&r, "tenant"), "acme");
    assert_string_equal(svc_param(&r, "uid"), "dev-1");
    assert_null(svc_param(&r, "ui"));
    assert_null(svc_param(&r, "serial"));
}

static void test_err_status(void **state)
{
    static const struct {
        ts_err err;
        int want;
    } cases[] = {
        {TS_ERR_INVALID, 400},   {TS_ERR_POLICY, 400},  {TS_ERR_URI, 400},
        {TS_ERR_AUTH, 401},      {TS_ERR_PIN, 401},     {TS_ERR_DENIED, 403},
        {TS_ERR_NOT_FOUND, 404}, {TS_ERR_EXISTS, 409},  {TS_ERR_CONFLICT, 409},
        {TS_ERR_STATE, 409},     {TS_ERR_LIMIT, 429},   {TS_ERR_UNSUPPORTED, 501},
        {TS_ERR_STORE, 500},     {TS_ERR_CRYPTO, 500},  {TS_ERR_IO, 500},
        {TS_ERR_NOMEM, 500},     {TS_ERR_BACKEND, 500}, {TS_ERR_CORRUPT, 500},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        if (svc_err_status(cases[i].err) != cases[i].want) {
            fail_msg("%s maps to %d, want %d", ts_err_name(cases[i].err),
                     svc_err_status(cases[i].err), cases[i].want);
        }
    }
}

typedef struct page_case {
    const char *query;
    ts_err want;
    size_t want_limit;
    int64_t want_after;
} page_case;

static void test_page_params(void **state)
{
    static const page_case cases[] = {
        {"", TS_OK, SVC_PAGE_DEFAULT, 0},
        {"limit=5", TS_OK, 5, 0},
        {"limit=1000&cursor=42", TS_OK, 1000, 42},
        {"cursor=9007199254740993", TS_OK, SVC_PAGE_DEFAULT, 9007199254740993LL},
        {"limit=0", TS_ERR_INVALID, 0, 0},
        {"limit=1001", TS_ERR_INVALID, 0, 0},
        {"limit=-1", TS_ERR_INVALID, 0, 0},
        {"limit=5x", TS_ERR_INVALID, 0, 0},
        {"limit=", TS_ERR_INVALID, 0, 0},
        {"limit=99999999999999999999", TS_ERR_INVALID, 0, 0},
        {"cursor=0", TS_ERR_INVALID, 0, 0},
        {"cursor=abc", TS_ERR_INVALID, 0, 0},
        {"cursor=%2B5", TS_ERR_INVALID, 0, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct evkeyvalq q;
        TAILQ_INIT(&q);
        assert_int_equal(evhttp_parse_query_str(cases[i].query, &q), 0);
        svc_request r;
        memset(&r, 0, sizeof r);
        r.query = &q;
        size_t limit = 0;
        int64_t after = -1;
        ts_err got = svc_page_params(&r, &limit, &after);
        if (got != cases[i].want) {
            fail_msg("?%s gave %d, want %d", cases[i].query, got, cases[i].want);
        }
        if (got == TS_OK) {
            assert_int_equal(limit, cases[i].want_limit);
            assert_int_equal(after, cases[i].want_after);
        } else {
            assert_non_null(strstr(ts_error_message(),
                                   strstr(cases[i].query, "cursor") != NULL ? "cursor" : "limit"));
        }
        evhttp_clear_headers(&q);
    }
}

static void test_page_next(void **state)
{
    json_t *next = svc_page_next(10, 10, 1234);
    assert_string_equal(json_string_value(next), "1234");
    json_decref(next);
    next = svc_page_next(9, 10, 1234);
    assert_true(json_is_null(next));
    json_decref(next);
    next = svc_page_next(0, 10, 0);
    assert_true(json_is_null(next));
    json_decref(next);
}

static ts_err body_json(const char *text, const char *const *allowed, json_t **out)
{
    svc_request r;
    memset(&r, 0, sizeof r);
    r.body = (const uint8_t *)text;
    r.body_len = text != NULL ? strlen(text) : 0;
    return svc_body_json(&r, allowed, out);
}

static void test_body_json(void **state)
{
    static const char *const allowed[] = {"name", "org", "country", NULL};
    json_t *doc = NULL;
    assert_int_equal(body_json("{\"name\":\"acme\",\"org\":\"Acme\"}", allowed, &doc), TS_OK);
    assert_string_equal(json_string_value(json_object_get(doc, "name")), "acme");
    json_decref(doc);

    /* Unknown members are refused, by name. */
    assert_int_equal(body_json("{\"name\":\"acme\",\"admin\":true}", allowed, &doc),
                     TS_ERR_INVALID);
    assert_null(doc);
    assert_non_null(strstr(ts_error_message(), "\"admin\""));
    /* Without a list anything goes. */
    assert_int_equal(body_json("{\"anything\":1}", NULL, &doc), TS_OK);
    json_decref(doc);

    /* A member given twice is refused rather than one of them silently winning. */
    assert_int_equal(body_json("{\"name\":\"a\",\"name\":\"b\"}", allowed, &doc), TS_ERR_INVALID);
    assert_non_null(strstr(ts_error_message(), "not valid JSON"));

    assert_int_equal(body_json("[1,2]", allowed, &doc), TS_ERR_INVALID);
    assert_non_null(strstr(ts_error_message(), "object"));
    assert_int_equal(body_json("{\"name\":", allowed, &doc), TS_ERR_INVALID);
    assert_non_null(strstr(ts_error_message(), "not valid JSON"));
    assert_int_equal(body_json("{} {}", allowed, &doc), TS_ERR_INVALID);
    assert_int_equal(body_json("{\"name\":\"a\\u0000b\"}", allowed, &doc), TS_ERR_INVALID);
    assert_int_equal(body_json(NULL, allowed, &doc), TS_ERR_INVALID);
    assert_non_null(strstr(ts_error_message(), "required"));
    assert_int_equal(body_json("", allowed, &doc), TS_ERR_INVALID);
}

/* Every route of every table is well formed: a pattern from '/', balanced {name}s within the
 * limit, a known method, a handler, schemas that parse, and no (method, pattern) twice. */
static void test_route_tables(void **state)
{
    size_t n = svc_route_count();
    assert_true(n >= 4);
    assert_null(svc_route_at(n));
    for (size_t i = 0; i < n; i++) {
        const svc_route *r = svc_route_at(i);
        assert_non_null(r);
        assert_non_null(r->handler);
        assert_true(r->pattern[0] == '/');
        assert_true(strcmp(r->method, "GET") == 0 || strcmp(r->method, "POST") == 0 ||
                    strcmp(r->method, "PUT") == 0 || strcmp(r->method, "PATCH") == 0 ||
                    strcmp(r->method, "DELETE") == 0);
        size_t params = 0;
        for (const char *p = r->pattern; *p != '\0'; p++) {
            if (*p == '{') {
                const char *end = strchr(p, '}');
                assert_non_null(end);
                assert_true(end > p + 1);
                assert_null(memchr(p, '/', (size_t)(end - p)));
                /* {name*} only as the last segment */
                assert_true(end[-1] != '*' || end[1] == '\0');
                params++;
            }
        }
        assert_true(params <= SVC_PARAMS_MAX);
        if (r->auth == SVC_AUTH_TOKEN) {
            assert_true(r->roles != 0);
        }
        const char *schemas[2] = {r->request_schema, r->response_schema};
        for (int s = 0; s < 2; s++) {
            if (schemas[s] == NULL) {
                continue;
            }
            json_error_t jerr;
            json_t *doc = json_loads(schemas[s], JSON_REJECT_DUPLICATES, &jerr);
            if (doc == NULL) {
                fail_msg("%s %s: schema does not parse: %s", r->method, r->pattern, jerr.text);
            }
            json_decref(doc);
        }
        for (size_t j = 0; j < i; j++) {
            const svc_route *o = svc_route_at(j);
            if (strcmp(o->method, r->method) == 0 && strcmp(o->pattern, r->pattern) == 0) {
                fail_msg("%s %s is routed twice", r->method, r->pattern);
            }
        }
    }
}

/* The routes every deployment relies on are present. */
static void test_route_tables_core(void **state)
{
    static const char *const want[][2] = {
        {"GET", "/healthz"},
        {"GET", "/readyz"},
        {"GET", "/metrics"},
        {"GET", "/api/v1/openapi.json"},
    };
    for (size_t w = 0; w < sizeof want / sizeof want[0]; w++) {
        int found = 0;
        for (size_t i = 0; i < svc_route_count(); i++) {
            const svc_route *r = svc_route_at(i);
            found |= strcmp(r->method, want[w][0]) == 0 && strcmp(r->pattern, want[w][1]) == 0;
        }
        if (!found) {
            fail_msg("%s %s is not routed", want[w][0], want[w][1]);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_route_match_table), cmocka_unit_test(test_route_match_small_buffer),
        cmocka_unit_test(test_path_decode),       cmocka_unit_test(test_param_by_name),
        cmocka_unit_test(test_err_status),        cmocka_unit_test(test_page_params),
        cmocka_unit_test(test_page_next),         cmocka_unit_test(test_body_json),
        cmocka_unit_test(test_route_tables),      cmocka_unit_test(test_route_tables_core),
    };
    return cmocka_run_group_tests_name("svc_router", tests, NULL, NULL);
}
