/*
 * libFuzzer target: REST request bodies through the checker every handler uses
 * (svc_api_body_parse with each route's spec), and query numbers and content types through
 * their parsers. The first byte picks the route; the rest is the body.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "service/svc_api_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* What a body that passed must hold: every required member, each of its type and bounds. */
static void check_accepted(const json_t *doc, const svc_api_body_spec *spec)
{
    if (svc_api_body_check(doc, spec) != TS_OK) {
        abort();
    }
    for (const svc_api_field *f = spec->fields; f->name != NULL; f++) {
        const json_t *v = json_object_get(doc, f->name);
        if (v == NULL) {
            if (f->required) {
                abort();
            }
            continue;
        }
        if (f->type == SVC_API_INTEGER) {
            int64_t n = svc_api_int(doc, f->name, INT64_MIN);
            if (n < f->min || n > f->max) {
                abort();
            }
            continue;
        }
        const char *s = svc_api_str(doc, f->name);
        /* No NUL inside: what a handler reads as a C string is the whole member. */
        if (s == NULL || strlen(s) != json_string_length(v) || strlen(s) > (size_t)f->max * 4) {
            abort();
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t routes = 0;
    json_t *doc = NULL;

    while (svc_api_body_routes[routes].method != NULL) {
        routes++;
    }
    if (size == 0) {
        return 0;
    }
    const svc_api_body_spec *spec = svc_api_body_routes[data[0] % routes].spec;
    if (svc_api_body_parse(data + 1, size - 1, spec, &doc) == TS_OK) {
        check_accepted(doc, spec);
        json_decref(doc);
    } else if (doc != NULL) {
        abort();
    }

    /* The same bytes as a query value and a Content-Type header. */
    char *text = malloc(size);
    if (text == NULL) {
        return 0;
    }
    memcpy(text, data + 1, size - 1);
    text[size - 1] = '\0';
    int64_t n = -1;
    if (svc_api_query_int(text, "query parameter 'limit'", 1, 1000, &n) == TS_OK &&
        (n < 1 || n > 1000 || text[0] == '0')) {
        abort();
    }
    if (svc_api_is_json_type(text) && strncasecmp(text, "application/json", 16) != 0) {
        abort();
    }
    free(text);
    return 0;
}
