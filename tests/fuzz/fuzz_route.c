/*
 * libFuzzer target: what the router reads from a request. The input is three parts split at the
 * first two newlines: a path (matched against every route pattern and decoded), a query string
 * (parsed and read as page values) and a body (read as a JSON object with a list of members).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "service/svc_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The next part of the input up to a newline, as a new NUL-terminated string. */
static char *part(const uint8_t **data, size_t *size)
{
    const uint8_t *nl = memchr(*data, '\n', *size);
    size_t n = nl != NULL ? (size_t)(nl - *data) : *size;
    char *s = malloc(n + 1);
    if (s == NULL) {
        abort();
    }
    memcpy(s, *data, n);
    s[n] = '\0';
    *data += nl != NULL ? n + 1 : n;
    *size -= nl != NULL ? n + 1 : n;
    return s;
}

static void check_match(const char *pattern, const char *path)
{
    char buf[SVC_PATH_MAX];
    const char *params[SVC_PARAMS_MAX];
    size_t n = 0;
    int m = svc_route_match(pattern, path, buf, sizeof buf, params, &n);
    if (m != 1) {
        return;
    }
    size_t star = strstr(pattern, "*}") != NULL;
    for (size_t i = 0; i < n; i++) {
        /* Values are non-empty, inside buf, and only a final {name*} may hold '/'. */
        if (params[i] < buf || params[i] >= buf + sizeof buf || params[i][0] == '\0' ||
            (strchr(params[i], '/') != NULL && !(star && i + 1 == n))) {
            abort();
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *path = part(&data, &size);
    char *query = part(&data, &size);

    char decoded[SVC_PATH_MAX];
    if (svc_path_decode(path, decoded, sizeof decoded) == 0 && strlen(decoded) > strlen(path)) {
        abort();
    }
    for (size_t i = 0; i < svc_route_count(); i++) {
        check_match(svc_route_at(i)->pattern, path);
    }
    check_match("/a/{x}/b/{y*}", path);

    svc_request r;
    memset(&r, 0, sizeof r);
    struct evkeyvalq q;
    TAILQ_INIT(&q);
    if (evhttp_parse_query_str(query, &q) == 0) {
        r.query = &q;
        size_t limit = 0;
        int64_t after = 0;
        if (svc_page_params(&r, &limit, &after) == TS_OK &&
            (limit < 1 || limit > SVC_PAGE_MAX || after < 0)) {
            abort();
        }
    }
    evhttp_clear_headers(&q);

    static const char *const allowed[] = {"name", "role", "uses", NULL};
    r.query = NULL;
    r.body = size > 0 ? data : NULL;
    r.body_len = size;
    json_t *doc = NULL;
    if (svc_body_json(&r, allowed, &doc) == TS_OK) {
        const char *key;
        json_t *value;
        if (!json_is_object(doc)) {
            abort();
        }
        json_object_foreach(doc, key, value)
        {
            if (strcmp(key, "name") != 0 && strcmp(key, "role") != 0 && strcmp(key, "uses") != 0) {
                abort();
            }
        }
    }
    json_decref(doc);
    free(path);
    free(query);
    return 0;
}
