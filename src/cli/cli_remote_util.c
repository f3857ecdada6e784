/*
 * Remote mode, the parts above the transport: request paths, paged lists, the tenant a command
 * acts in, and reading replies.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <openssl/crypto.h>

#include "cli/cli_remote.h"

enum { URL_MAX = 2048 };

int cli_remote_path(char *buf, size_t size, const char *fmt, ...)
{
    size_t used = 0;
    va_list ap;
    int status = CLI_EXIT_OK;

    va_start(ap, fmt);
    for (const char *p = fmt; *p != '\0' && status == CLI_EXIT_OK; p++) {
        char one[2] = {*p, '\0'};
        char *piece = NULL;
        const char *text = one;
        if (p[0] == '%' && p[1] == 's') {
            const char *arg = va_arg(ap, const char *);
            piece = curl_easy_escape(NULL, arg, 0);
            text = piece;
            p++;
        }
        size_t n = text != NULL ? strlen(text) : 0;
        if (text == NULL || used + n >= size) {
            status = CLI_EXIT_FAIL;
        } else {
            memcpy(buf + used, text, n);
            used += n;
        }
        curl_free(piece);
    }
    va_end(ap);
    if (size > 0) {
        buf[status == CLI_EXIT_OK ? used : 0] = '\0';
    }
    if (status != CLI_EXIT_OK) {
        fprintf(stderr, "tessera: a request path is over %zu bytes\n", size);
    }
    return status;
}

int cli_remote_query(char *path, size_t size, const char *name, const char *value)
{
    size_t used = strlen(path);
    char *escaped = curl_easy_escape(NULL, value, 0);
    int n;

    if (escaped == NULL) {
        fprintf(stderr, "tessera: out of memory\n");
        return CLI_EXIT_FAIL;
    }
    n = snprintf(path + used, size - used, "%s%s=%s", strchr(path, '?') != NULL ? "&" : "?", name,
                 escaped);
    curl_free(escaped);
    if (n < 0 || (size_t)n >= size - used) {
        fprintf(stderr, "tessera: a request path is over %zu bytes\n", size);
        return CLI_EXIT_FAIL;
    }
    return CLI_EXIT_OK;
}

/* path plus "limit=N" and, after the first page, "cursor=C", with the right separator. */
static int page_path(char *buf, size_t size, const char *path, size_t limit, const char *cursor)
{
    const char *sep = strchr(path, '?') != NULL ? "&" : "?";
    char *escaped = cursor[0] != '\0' ? curl_easy_escape(NULL, cursor, 0) : NULL;
    int n;

    if (cursor[0] != '\0' && escaped == NULL) {
        fprintf(stderr, "tessera: out of memory\n");
        return CLI_EXIT_FAIL;
    }
    n = snprintf(buf, size, "%s%slimit=%zu%s%s", path, sep, limit,
                 escaped != NULL ? "&cursor=" : "", escaped != NULL ? escaped : "");
    curl_free(escaped);
    if (n < 0 || (size_t)n >= size) {
        fprintf(stderr, "tessera: a request path is over %zu bytes\n", size);
        return CLI_EXIT_FAIL;
    }
    return CLI_EXIT_OK;
}

int cli_remote_list(cli_remote *rm, const char *path, size_t max, json_t **items)
{
    char page[URL_MAX], cursor[256] = "";
    json_t *all = json_array();
    int status = all != NULL ? CLI_EXIT_OK : CLI_EXIT_FAIL;

    *items = NULL;
    while (status == CLI_EXIT_OK) {
        json_t *reply = NULL;
        size_t want = CLI_REMOTE_PAGE;
        if (max > 0 && max - json_array_size(all) < want) {
            want = max - json_array_size(all);
        }
        status = page_path(page, sizeof page, path, want, cursor);
        if (status == CLI_EXIT_OK) {
            status = cli_remote_call(rm, "GET", page, NULL, &reply);
        }
        if (status != CLI_EXIT_OK) {
            break;
        }
        json_t *list = json_object_get(reply, "items");
        const char *next = cli_json_str(reply, "next", NULL);
        int done = 0;
        if (!json_is_array(list) || json_array_extend(all, list) != 0) {
            fprintf(stderr, "tessera: %s: the reply has no list of items\n", path);
            status = CLI_EXIT_FAIL;
        } else if (next == NULL || next[0] == '\0' || json_array_size(list) == 0 ||
                   (max > 0 && json_array_size(all) >= max)) {
            done = 1;
        } else if (strlen(next) >= sizeof cursor || strcmp(next, cursor) == 0) {
            /* A cursor that does not move would loop for ever. */
            fprintf(stderr, "tessera: %s: the reply's next cursor is not usable\n", path);
            status = CLI_EXIT_FAIL;
        } else {
            snprintf(cursor, sizeof cursor, "%s", next);
        }
        json_decref(reply);
        if (done) {
            break;
        }
    }
    if (status != CLI_EXIT_OK) {
        json_decref(all);
        return status;
    }
    *items = all;
    return CLI_EXIT_OK;
}

int cli_remote_tenant(cli_remote *rm, const cli_args *args, char out[TS_TENANT_NAME_MAX + 1])
{
    const char *given = cli_opt_value(args, "tenant");
    json_t *me = NULL;
    int status;

    if (given != NULL) {
        if (ts_ca_tenant_name_check(given) != TS_OK) {
            return cli_usage_error(args, "--tenant: %s", ts_error_message());
        }
        snprintf(out, TS_TENANT_NAME_MAX + 1, "%s", given);
        return CLI_EXIT_OK;
    }
    if (!cli_remote_has_token(rm)) {
        /* No token (a public route such as the CRL): nobody to ask about. */
        snprintf(out, TS_TENANT_NAME_MAX + 1, "%s", TS_DEFAULT_TENANT);
        return CLI_EXIT_OK;
    }
    status = cli_remote_call(rm, "GET", "/api/v1/me", NULL, &me);
    if (status != CLI_EXIT_OK) {
        return status;
    }
    const char *tenant = cli_json_str(me, "tenant", NULL);
    if (tenant == NULL || tenant[0] == '\0') {
        tenant = TS_DEFAULT_TENANT; /* an instance-wide principal */
    }
    if (ts_ca_tenant_name_check(tenant) != TS_OK) {
        fprintf(stderr, "tessera: the server named the token's tenant '%.40s': %s\n", tenant,
                ts_error_message());
        status = CLI_EXIT_FAIL;
    } else {
        snprintf(out, TS_TENANT_NAME_MAX + 1, "%s", tenant);
    }
    json_decref(me);
    return status;
}

int cli_remote_begin(const cli_args *args, const char *fmt, const char *arg, cli_remote **rm,
                     char tenant[TS_TENANT_NAME_MAX + 1], char *path, size_t size)
{
    int status = cli_remote_open(args, 1, rm);
    if (status == CLI_EXIT_OK) {
        status = cli_remote_tenant(*rm, args, tenant);
    }
    if (status == CLI_EXIT_OK) {
        status = arg != NULL ? cli_remote_path(path, size, fmt, tenant, arg)
                             : cli_remote_path(path, size, fmt, tenant);
    }
    return status;
}

const char *cli_json_str(const json_t *obj, const char *key, const char *fallback)
{
    const json_t *v = json_is_object(obj) ? json_object_get(obj, key) : NULL;
    return json_is_string(v) ? json_string_value(v) : fallback;
}

int cli_json_i64(const json_t *obj, const char *key, int64_t *out)
{
    const json_t *v = json_is_object(obj) ? json_object_get(obj, key) : NULL;
    uint64_t u = 0;

    if (json_is_integer(v)) {
        *out = (int64_t)json_integer_value(v);
        return 0;
    }
    if (json_is_string(v) && cli_parse_u64(json_string_value(v), &u) == 0 && u <= INT64_MAX) {
        *out = (int64_t)u;
        return 0;
    }
    return -1;
}

void cli_json_wipe(json_t *obj, const char *key)
{
    json_t *v = json_is_object(obj) ? json_object_get(obj, key) : NULL;
    if (json_is_string(v)) {
        /* jansson owns the text; it is overwritten in place just before the object is freed. */
        OPENSSL_cleanse((char *)json_string_value(v), json_string_length(v));
    }
}

int cli_remote_write_pem(const char *out, const json_t *reply)
{
    const char *pem = cli_json_str(reply, "pem", NULL);
    char *text = NULL;
    size_t len;
    ts_err rv;

    if (pem == NULL || strncmp(pem, "-----BEGIN ", 11) != 0) {
        fprintf(stderr, "tessera: the server's reply carries no PEM certificate\n");
        return CLI_EXIT_FAIL;
    }
    /* Written as the local command writes it: ending in a newline. */
    len = strlen(pem);
    text = OPENSSL_malloc(len + 2);
    if (text == NULL) {
        fprintf(stderr, "tessera: out of memory\n");
        return CLI_EXIT_FAIL;
    }
    memcpy(text, pem, len);
    if (len == 0 || pem[len - 1] != '\n') {
        text[len++] = '\n';
    }
    rv = cli_write_output(out, (const uint8_t *)text, len, 0644);
    OPENSSL_free(text);
    return rv == TS_OK ? CLI_EXIT_OK : cli_fail();
}

int cli_remote_revoke_id(const cli_args *args, const char *collection, const char *what, int64_t id)
{
    char tenant[TS_TENANT_NAME_MAX + 1], path[512], fmt[128], idtext[24];
    cli_remote *rm = NULL;
    json_t *reply = NULL;
    int status;

    snprintf(idtext, sizeof idtext, "%lld", (long long)id);
    snprintf(fmt, sizeof fmt, "/api/v1/tenants/%%s/%s/%%s", collection);
    status = cli_remote_begin(args, fmt, idtext, &rm, tenant, path, sizeof path);
    if (status == CLI_EXIT_OK) {
        status = cli_remote_call(rm, "DELETE", path, NULL, &reply);
    }
    if (status == CLI_EXIT_OK) {
        printf("%s %s revoked\n", what, idtext);
    }
    json_decref(reply);
    cli_remote_free(rm);
    return status;
}
