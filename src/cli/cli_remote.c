/*
 * Remote mode: requests to the trust service's REST API with libcurl, replies read with jansson.
 *
 * One easy handle per command, reset before each request so no option leaks from one request
 * into the next, while its connection stays open for the next page of a list.
 */
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <openssl/crypto.h>

#include "cli/cli_remote.h"
#include "tessera/access.h"

enum {
    URL_MAX = 2048,
    CONNECT_TIMEOUT_S = 10,
    REQUEST_TIMEOUT_S = 300,
    HEADER_MAX = 16 + TS_TOKEN_MAX + 64,
};

struct cli_remote {
    CURL *curl;
    char base[URL_MAX];      /* the server URL without a trailing slash */
    char cacert[URL_MAX];    /* empty: the system's trust store */
    struct curl_slist *auth; /* "Authorization: Bearer ..." (wiped before it is freed) */
    int global;              /* curl_global_init() was called for this handle */
    char error[CURL_ERROR_SIZE];
};

/* A reply body, growing up to CLI_REMOTE_REPLY_MAX. */
typedef struct reply_buf {
    char *data;
    size_t len, cap;
    int over;
} reply_buf;

static const char *env_value(const char *name)
{
    const char *v = getenv(name);
    return v != NULL && v[0] != '\0' ? v : NULL;
}

int cli_remote_wanted(const cli_args *args)
{
    if (cli_opt_given(args, "server")) {
        return 1;
    }
    return env_value("TESSERA_SERVER") != NULL && !cli_opt_given(args, "dir");
}

/*
 * RFC 6750 section 2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" )
 * *"=". Checking this also keeps CR and LF out of the header the token goes into.
 */
static int token_ok(const char *token)
{
    size_t len = strlen(token), i = 0;

    if (len == 0 || len >= TS_TOKEN_MAX) {
        return 0;
    }
    for (; i < len; i++) {
        char c = token[i];
        int alnum = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        if (!alnum && strchr("-._~+/", c) == NULL) {
            break;
        }
    }
    while (i < len && token[i] == '=') {
        i++;
    }
    return i > 0 && i == len && token[0] != '=';
}

/* An https URL with a host, without user, password, query or fragment; base gets it as curl
 * normalised it, without a trailing slash. */
static int server_check(const cli_args *args, const char *server, char base[URL_MAX])
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL, *user = NULL, *query = NULL, *fragment = NULL;
    char *url = NULL;
    int status = CLI_EXIT_USAGE;

    if (u == NULL) {
        fprintf(stderr, "tessera: out of memory\n");
        return CLI_EXIT_FAIL;
    }
    if (strlen(server) >= URL_MAX - 1 ||
        curl_url_set(u, CURLUPART_URL, server, CURLU_NON_SUPPORT_SCHEME) != CURLUE_OK) {
        status = cli_usage_error(args, "--server: not a URL");
        goto done;
    }
    (void)curl_url_get(u, CURLUPART_SCHEME, &scheme, 0);
    (void)curl_url_get(u, CURLUPART_HOST, &host, 0);
    (void)curl_url_get(u, CURLUPART_USER, &user, 0);
    (void)curl_url_get(u, CURLUPART_QUERY, &query, 0);
    (void)curl_url_get(u, CURLUPART_FRAGMENT, &fragment, 0);
    (void)curl_url_get(u, CURLUPART_URL, &url, 0);
    /* The URL is not repeated in these messages: it may carry a password. */
    if (scheme == NULL || strcmp(scheme, "https") != 0) {
        /* The token would cross the network in clear. */
        status = cli_usage_error(args, "--server: an https:// URL only");
    } else if (host == NULL || host[0] == '\0') {
        status = cli_usage_error(args, "--server: the URL names no host");
    } else if (user != NULL || query != NULL || fragment != NULL) {
        status = cli_usage_error(args, "--server: no user, password, query or fragment");
    } else if (url == NULL || strlen(url) >= URL_MAX) {
        status = cli_usage_error(args, "--server: not a URL");
    } else {
        size_t len = strlen(url);
        while (len > 0 && url[len - 1] == '/') {
            len--;
        }
        snprintf(base, URL_MAX, "%.*s", (int)len, url);
        status = CLI_EXIT_OK;
    }
done:
    curl_free(url);
    curl_free(scheme);
    curl_free(host);
    curl_free(user);
    curl_free(query);
    curl_free(fragment);
    curl_url_cleanup(u);
    return status;
}

static void slist_wipe_free(struct curl_slist *list)
{
    for (struct curl_slist *s = list; s != NULL; s = s->next) {
        OPENSSL_cleanse(s->data, strlen(s->data));
    }
    curl_slist_free_all(list);
}

int cli_remote_open(const cli_args *args, int need_token, cli_remote **out)
{
    const char *server = cli_opt_value(args, "server");
    const char *token = cli_opt_value(args, "token");
    const char *cacert = cli_opt_value(args, "cacert");
    char header[HEADER_MAX];
    cli_remote *rm = NULL;
    int status;

    *out = NULL;
    if (server != NULL && cli_opt_given(args, "dir")) {
        return cli_usage_error(args, "--dir and --server do not go together");
    }
    server = server != NULL ? server : env_value("TESSERA_SERVER");
    token = token != NULL ? token : env_value("TESSERA_TOKEN");
    cacert = cacert != NULL ? cacert : env_value("TESSERA_CACERT");
    if (server == NULL) {
        return cli_usage_error(args, "remote mode needs --server URL or $TESSERA_SERVER");
    }
    if (need_token && token == NULL) {
        return cli_usage_error(args, "--server needs an API token: --token or $TESSERA_TOKEN");
    }
    if (token != NULL && !token_ok(token)) {
        /* The token itself is not repeated: it may be a secret typed in the wrong place. */
        return cli_usage_error(args, "--token: not an API token (letters, digits, -._~+/=)");
    }
    if (cacert != NULL && strlen(cacert) >= URL_MAX) {
        return cli_usage_error(args, "--cacert: the path is too long");
    }
    rm = calloc(1, sizeof *rm);
    if (rm == NULL) {
        fprintf(stderr, "tessera: out of memory\n");
        return CLI_EXIT_FAIL;
    }
    status = server_check(args, server, rm->base);
    if (status != CLI_EXIT_OK) {
        goto fail;
    }
    snprintf(rm->cacert, sizeof rm->cacert, "%s", cacert != NULL ? cacert : "");
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "tessera: cannot initialise libcurl\n");
        status = CLI_EXIT_FAIL;
        goto fail;
    }
    rm->global = 1;
    rm->curl = curl_easy_init();
    if (rm->curl == NULL) {
        fprintf(stderr, "tessera: cannot initialise libcurl\n");
        status = CLI_EXIT_FAIL;
        goto fail;
    }
    if (token != NULL) {
        snprintf(header, sizeof header, "Authorization: Bearer %s", token);
        rm->auth = curl_slist_append(NULL, header);
        OPENSSL_cleanse(header, sizeof header);
        if (rm->auth == NULL) {
            fprintf(stderr, "tessera: out of memory\n");
            status = CLI_EXIT_FAIL;
            goto fail;
        }
    }
    *out = rm;
    return CLI_EXIT_OK;
fail:
    cli_remote_free(rm);
    return status;
}

void cli_remote_free(cli_remote *rm)
{
    if (rm == NULL) {
        return;
    }
    slist_wipe_free(rm->auth);
    if (rm->curl != NULL) {
        curl_easy_cleanup(rm->curl);
    }
    if (rm->global) {
        curl_global_cleanup();
    }
    free(rm);
}

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    reply_buf *b = userdata;
    size_t n = size * nmemb;

    if (n > CLI_REMOTE_REPLY_MAX - b->len) {
        b->over = 1;
        return 0; /* makes curl stop with CURLE_WRITE_ERROR */
    }
    if (b->len + n + 1 > b->cap) {
        size_t ncap = b->cap == 0 ? 16384 : b->cap;
        while (ncap < b->len + n + 1) {
            ncap *= 2;
        }
        char *nd = OPENSSL_clear_realloc(b->data, b->cap, ncap);
        if (nd == NULL) {
            return 0;
        }
        b->data = nd;
        b->cap = ncap;
    }
    memcpy(b->data + b->len, ptr, n);
    b->len += n;
    b->data[b->len] = '\0';
    return n;
}

/* Replies may carry a new token or claim code: wiped before they are freed. */
static void reply_free(reply_buf *b)
{
    OPENSSL_clear_free(b->data, b->cap);
    memset(b, 0, sizeof *b);
}

/* Prints "tessera: " and at most max bytes of text from the server, control characters shown as
 * '?' so that a reply cannot drive the terminal. */
static void print_server_text(const char *lead, const char *text, size_t max)
{
    fprintf(stderr, "tessera: %s", lead);
    for (size_t i = 0; i < max && text[i] != '\0' && text[i] != '\n' && text[i] != '\r'; i++) {
        unsigned char c = (unsigned char)text[i];
        fputc(c < 0x20 || c == 0x7f ? '?' : c, stderr);
    }
    fputc('\n', stderr);
}

/* Prints what an error reply says: its JSON message, else its first line of text. */
static void print_server_error(long code, const reply_buf *b)
{
    json_t *doc = b->len > 0 ? json_loadb(b->data, b->len, 0, NULL) : NULL;
    const json_t *err = json_object_get(doc, "error");
    const char *message = cli_json_str(err, "message", NULL);
    char lead[64];

    if (message != NULL) {
        print_server_text("", message, 1024);
    } else if (b->len > 0 && doc == NULL) {
        snprintf(lead, sizeof lead, "the server answered %ld: ", code);
        print_server_text(lead, b->data, 200);
    } else {
        fprintf(stderr, "tessera: the server answered %ld\n", code);
    }
    json_decref(doc);
}

/* Appends a header; on failure the list is kept (for the caller to free) and -1 returned. */
static int header_add(struct curl_slist **list, const char *header)
{
    struct curl_slist *n = curl_slist_append(*list, header);
    if (n == NULL) {
        return -1;
    }
    *list = n;
    return 0;
}

#define SET(opt, val)                                                                              \
    do {                                                                                           \
        rc = curl_easy_setopt(rm->curl, opt, val);                                                 \
        if (rc != CURLE_OK) {                                                                      \
            goto setup_failed;                                                                     \
        }                                                                                          \
    } while (0)

/*
 * One request. The reply's body goes to b; the HTTP status to *code. Returns the exit status:
 * a transport failure or an error status prints its message.
 */
static int perform(cli_remote *rm, const char *method, const char *path, const char *body,
                   const char *accept, reply_buf *b, long *code)
{
    char url[URL_MAX * 2];
    char accept_header[64];
    struct curl_slist *headers = NULL;
    int status = CLI_EXIT_FAIL;
    CURLcode rc;

    memset(b, 0, sizeof *b);
    *code = 0;
    if ((size_t)snprintf(url, sizeof url, "%s%s", rm->base, path) >= sizeof url) {
        fprintf(stderr, "tessera: the request URL is too long\n");
        return CLI_EXIT_FAIL;
    }
    snprintf(accept_header, sizeof accept_header, "Accept: %s", accept);
    int failed = header_add(&headers, accept_header) != 0 || header_add(&headers, "Expect:") != 0 ||
                 (body != NULL && header_add(&headers, "Content-Type: application/json") != 0);
    /* The token's header goes last; this copy is wiped with the list. */
    for (struct curl_slist *a = rm->auth; !failed && a != NULL; a = a->next) {
        failed = header_add(&headers, a->data) != 0;
    }
    if (failed) {
        fprintf(stderr, "tessera: out of memory\n");
        slist_wipe_free(headers);
        return CLI_EXIT_FAIL;
    }
    curl_easy_reset(rm->curl);
    rm->error[0] = '\0';
    SET(CURLOPT_URL, url);
    SET(CURLOPT_PROTOCOLS_STR, "https");
    SET(CURLOPT_FOLLOWLOCATION, 0L);
    SET(CURLOPT_SSL_VERIFYPEER, 1L);
    SET(CURLOPT_SSL_VERIFYHOST, 2L);
    SET(CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
    /* Without it a request can wait on the server's delayed ACK (about 40 ms) each time. */
    SET(CURLOPT_TCP_NODELAY, 1L);
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_CONNECTTIMEOUT, (long)CONNECT_TIMEOUT_S);
    SET(CURLOPT_TIMEOUT, (long)REQUEST_TIMEOUT_S);
    SET(CURLOPT_ERRORBUFFER, rm->error);
    SET(CURLOPT_USERAGENT, "tessera/" TS_VERSION);
    SET(CURLOPT_HTTPHEADER, headers);
    SET(CURLOPT_WRITEFUNCTION, on_data);
    SET(CURLOPT_WRITEDATA, b);
    if (rm->cacert[0] != '\0') {
        SET(CURLOPT_CAINFO, rm->cacert);
    }
    if (strcmp(method, "GET") == 0) {
        SET(CURLOPT_HTTPGET, 1L);
    } else if (strcmp(method, "POST") == 0) {
        SET(CURLOPT_POST, 1L);
        SET(CURLOPT_POSTFIELDS, body != NULL ? body : "");
        SET(CURLOPT_POSTFIELDSIZE, (long)(body != NULL ? strlen(body) : 0));
    } else {
        SET(CURLOPT_CUSTOMREQUEST, method);
        if (body != NULL) {
            SET(CURLOPT_POSTFIELDS, body);
            SET(CURLOPT_POSTFIELDSIZE, (long)strlen(body));
        }
    }
    rc = curl_easy_perform(rm->curl);
    if (rc != CURLE_OK) {
        if (b->over) {
            fprintf(stderr, "tessera: %s: the reply is over %d bytes\n", rm->base,
                    CLI_REMOTE_REPLY_MAX);
        } else {
            fprintf(stderr, "tessera: %s: %s\n", rm->base,
                    rm->error[0] != '\0' ? rm->error : curl_easy_strerror(rc));
        }
        goto done;
    }
    (void)curl_easy_getinfo(rm->curl, CURLINFO_RESPONSE_CODE, code);
    if (*code < 200 || *code > 299) {
        print_server_error(*code, b);
        goto done;
    }
    status = CLI_EXIT_OK;
    goto done;
setup_failed:
    fprintf(stderr, "tessera: cannot set up the request: %s\n", curl_easy_strerror(rc));
done:
    slist_wipe_free(headers);
    if (status != CLI_EXIT_OK) {
        reply_free(b);
    }
    return status;
}

int cli_remote_call(cli_remote *rm, const char *method, const char *path, json_t *body,
                    json_t **reply)
{
    char *text = NULL;
    reply_buf b;
    long code = 0;
    json_error_t jerr;
    int status;

    *reply = NULL;
    if (body != NULL) {
        text = json_dumps(body, JSON_COMPACT);
        if (text == NULL) {
            fprintf(stderr, "tessera: cannot encode the request\n");
            return CLI_EXIT_FAIL;
        }
    }
    status = perform(rm, method, path, text, "application/json", &b, &code);
    free(text);
    if (status != CLI_EXIT_OK) {
        return status;
    }
    if (b.len > 0) {
        *reply = json_loadb(b.data, b.len, JSON_REJECT_DUPLICATES, &jerr);
        if (*reply == NULL) {
            fprintf(stderr, "tessera: %s%s: the reply is not JSON: %s\n", rm->base, path,
                    jerr.text);
            status = CLI_EXIT_FAIL;
        }
    }
    reply_free(&b);
    return status;
}

int cli_remote_get_bytes(cli_remote *rm, const char *path, uint8_t **data, size_t *len)
{
    reply_buf b;
    long code = 0;
    int status = perform(rm, "GET", path, NULL, "*/*", &b, &code);

    *data = NULL;
    *len = 0;
    if (status != CLI_EXIT_OK) {
        return status;
    }
    *data = (uint8_t *)b.data;
    *len = b.len;
    if (*data == NULL) {
        fprintf(stderr, "tessera: %s%s: the reply is empty\n", rm->base, path);
        return CLI_EXIT_FAIL;
    }
    return CLI_EXIT_OK;
}

int cli_remote_has_token(const cli_remote *rm)
{
    return rm->auth != NULL;
}
