/*
 * The feed thread: polls the service (tenants, their issuing CAs, each tenant's revocation feed,
 * docs/revocation.md), keeps the cache file, and hands each new state to the broker thread.
 * It never calls into Mosquitto: its log lines are queued for the broker thread to print.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <jansson.h>
#include <mosquitto.h>
#include <openssl/crypto.h>

#include "broker/broker_internal.h"
#include "common/error_internal.h"
#include "common/file_internal.h"

enum {
    FEED_PAGE = 1000,          /* events asked for per request (the service's maximum) */
    FEED_PAGES_PER_POLL = 100, /* then the next poll goes on */
    FEED_BODY_MAX = 16 << 20,  /* bytes of one reply */
    FEED_LOGS_MAX = 64,        /* queued log lines */
    FEED_CONNECT_TIMEOUT_MS = 3000,
    FEED_TIMEOUT_MS = 15000,
};

struct tsb_feed {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop;                 /* under mu */
    tsb_state *pending;        /* under mu: the newest state the broker has not taken */
    char *logs[FEED_LOGS_MAX]; /* under mu */
    int levels[FEED_LOGS_MAX];
    size_t n_logs;

    /* The feed thread's own. */
    tsb_state *work;
    char *url, *trust, *cache;
    unsigned refresh;
    CURL *curl;
    struct curl_slist *headers;
    char *saved; /* the cache bytes last written or read */
    size_t saved_len;
    bool failing;
    char last_error[512];
};

static void feed_log(tsb_feed *f, int level, const char *fmt, ...) TS_PRINTF(3, 4);

static void feed_log(tsb_feed *f, int level, const char *fmt, ...)
{
    char buf[768];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    char *line = strdup(buf);
    pthread_mutex_lock(&f->mu);
    if (line != NULL && f->n_logs < FEED_LOGS_MAX) {
        f->levels[f->n_logs] = level;
        f->logs[f->n_logs++] = line;
        line = NULL;
    }
    pthread_mutex_unlock(&f->mu);
    free(line);
}

typedef struct body {
    char *data;
    size_t len;
} body;

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    body *b = userdata;
    size_t n = size * nmemb;

    if (n > FEED_BODY_MAX - b->len) {
        return 0; /* too large: curl fails the transfer */
    }
    char *p = realloc(b->data, b->len + n + 1);
    if (p == NULL) {
        return 0;
    }
    memcpy(p + b->len, ptr, n);
    b->data = p;
    b->len += n;
    b->data[b->len] = '\0';
    return n;
}

/* GET path (under the service URL), 200 with a JSON object, or an error naming what failed. */
static ts_err http_get_json(tsb_feed *f, const char *path, json_t **out)
{
    char url[1024];
    body b = {0};
    long status = 0;
    json_error_t jerr;

    if (snprintf(url, sizeof(url), "%s%s", f->url, path) >= (int)sizeof(url)) {
        return ts_error_set(TS_ERR_LIMIT, "URL too long");
    }
    curl_easy_setopt(f->curl, CURLOPT_URL, url);
    curl_easy_setopt(f->curl, CURLOPT_WRITEDATA, &b);
    CURLcode cc = curl_easy_perform(f->curl);
    if (cc != CURLE_OK) {
        free(b.data);
        return ts_error_set(TS_ERR_IO, "GET %s: %s", path, curl_easy_strerror(cc));
    }
    curl_easy_getinfo(f->curl, CURLINFO_RESPONSE_CODE, &status);
    if (status != 200) {
        free(b.data);
        return ts_error_set(status == 401 || status == 403 ? TS_ERR_AUTH : TS_ERR_IO,
                            "GET %s: HTTP %ld%s", path, status,
                            status == 401 || status == 403
                                ? " (the token is not an instance-wide admin or auditor's)"
                                : "");
    }
    json_t *doc = json_loadb(b.data != NULL ? b.data : "", b.len, JSON_REJECT_DUPLICATES, &jerr);
    free(b.data);
    if (!json_is_object(doc)) {
        json_decref(doc);
        return ts_error_set(TS_ERR_CORRUPT, "GET %s: the reply is not a JSON object", path);
    }
    *out = doc;
    return TS_OK;
}

/* The tenants' names, into the working state; tenants no longer listed are dropped. */
static ts_err poll_tenants(tsb_feed *f)
{
    json_t *doc = NULL;
    ts_err rv = http_get_json(f, "/api/v1/tenants", &doc);

    if (rv != TS_OK) {
        return rv;
    }
    const json_t *items = json_object_get(doc, "items");
    size_t n = json_array_size(items);
    if (!json_is_array(items) || n > TSB_TENANTS_MAX) {
        json_decref(doc);
        return ts_error_set(TS_ERR_CORRUPT, "GET /api/v1/tenants: no items array");
    }
    for (size_t i = 0; rv == TS_OK && i < n; i++) {
        const char *name = json_string_value(json_object_get(json_array_get(items, i), "name"));
        tsb_tenant *t = NULL;
        if (name == NULL || !tsb_tenant_name_ok(name)) {
            rv = ts_error_set(TS_ERR_CORRUPT, "GET /api/v1/tenants: a bad tenant name");
        } else {
            rv = tsb_state_tenant_add(f->work, name, &t);
        }
    }
    bool *keep = rv == TS_OK ? calloc(f->work->n_tenants + 1, sizeof(bool)) : NULL;
    if (rv == TS_OK && keep == NULL) {
        rv = ts_error_set(TS_ERR_NOMEM, "out of memory");
    }
    for (size_t i = 0; rv == TS_OK && i < n; i++) {
        const char *name = json_string_value(json_object_get(json_array_get(items, i), "name"));
        keep[tsb_state_tenant(f->work, name) - f->work->tenants] = true;
    }
    if (rv == TS_OK) {
        tsb_state_tenants_retain(f->work, keep);
    }
    free(keep);
    json_decref(doc);
    return rv;
}

static ts_err poll_cas(tsb_feed *f, tsb_tenant *t)
{
    char path[128];
    json_t *doc = NULL;
    X509 *certs[TSB_CAS_PER_TENANT];
    size_t n = 0;
    bool changed = false;

    snprintf(path, sizeof(path), "/api/v1/tenants/%s/cas", t->name);
    ts_err rv = http_get_json(f, path, &doc);
    if (rv != TS_OK) {
        return rv;
    }
    const json_t *items = json_object_get(doc, "items");
    for (size_t i = 0; rv == TS_OK && i < json_array_size(items); i++) {
        const json_t *it = json_array_get(items, i);
        const char *kind = json_string_value(json_object_get(it, "kind"));
        if (kind == NULL || strcmp(kind, "issuing") != 0) {
            continue;
        }
        if (n == TSB_CAS_PER_TENANT) {
            rv = ts_error_set(TS_ERR_LIMIT, "GET %s: too many issuing CAs", path);
            break;
        }
        rv = tsb_pem_ca_parse(json_object_get(it, "pem"), &certs[n]);
        if (rv == TS_OK) {
            n++;
        } else {
            rv = ts_error_prefix(TS_ERR_CORRUPT, "GET %s", path);
        }
    }
    if (rv == TS_OK && !json_is_array(items)) {
        rv = ts_error_set(TS_ERR_CORRUPT, "GET %s: no items array", path);
    }
    if (rv == TS_OK) {
        rv = tsb_tenant_set_cas(t, certs, n, &changed);
    }
    for (size_t i = 0; i < n; i++) {
        X509_free(certs[i]);
    }
    json_decref(doc);
    return rv;
}

/* One event of the feed into the working state (docs/revocation.md). */
static ts_err apply_event(tsb_feed *f, const tsb_tenant *t, const json_t *it)
{
    const char *event = json_string_value(json_object_get(it, "event"));
    const char *uid = json_string_value(json_object_get(it, "device_uid"));

    if (event == NULL) {
        return ts_error_set(TS_ERR_CORRUPT, "an event without a name");
    }
    if (strcmp(event, "cert.revoked") == 0) {
        const char *fp_hex = json_string_value(json_object_get(it, "issuer_fingerprint"));
        const char *serial_hex = json_string_value(json_object_get(it, "serial"));
        uint8_t fp[TSB_FP_LEN], serial[TSB_SERIAL_MAX], serial_len = 0;
        if (fp_hex == NULL || !tsb_hex_decode(fp_hex, fp, TSB_FP_LEN) || serial_hex == NULL ||
            tsb_serial_from_hex(serial_hex, serial, &serial_len) != TS_OK) {
            return ts_error_set(TS_ERR_CORRUPT, "a cert.revoked event without a good issuer "
                                                "fingerprint and serial");
        }
        return tsb_state_revoke(f->work, fp, serial, serial_len);
    }
    if (strcmp(event, "device.disabled") == 0 || strcmp(event, "device.enabled") == 0) {
        if (uid == NULL || !tsb_uid_ok(uid)) {
            return ts_error_set(TS_ERR_CORRUPT, "a %s event without a good device_uid", event);
        }
        if (event[7] == 'd') {
            return tsb_state_disable(f->work, t->name, uid);
        }
        tsb_state_finish(f->work); /* enable removes from a list that may hold duplicates */
        tsb_state_enable(f->work, t->name, uid);
        return TS_OK;
    }
    feed_log(f, MOSQ_LOG_WARNING, "tessera: ignoring an unknown feed event '%.32s' of tenant %s",
             event, t->name);
    return TS_OK;
}

static ts_err poll_feed(tsb_feed *f, const char *tenant)
{
    for (int page = 0; page < FEED_PAGES_PER_POLL; page++) {
        tsb_tenant *t = tsb_state_tenant(f->work, tenant);
        char path[160];
        json_t *doc = NULL;
        snprintf(path, sizeof(path), "/api/v1/tenants/%s/revocations?since=%llu&limit=%d", tenant,
                 (unsigned long long)t->since, FEED_PAGE);
        ts_err rv = http_get_json(f, path, &doc);
        if (rv != TS_OK) {
            return rv;
        }
        const json_t *items = json_object_get(doc, "items");
        const json_t *next = json_object_get(doc, "next_since");
        size_t n = json_array_size(items);
        if (!json_is_array(items) || n > FEED_PAGE || !json_is_integer(next) ||
            json_integer_value(next) < 0 || (uint64_t)json_integer_value(next) < t->since) {
            json_decref(doc);
            return ts_error_set(TS_ERR_CORRUPT,
                                "the revocation feed of tenant %s: no items or a next_since "
                                "behind %llu",
                                tenant, (unsigned long long)t->since);
        }
        for (size_t i = 0; rv == TS_OK && i < n; i++) {
            rv = apply_event(f, t, json_array_get(items, i));
        }
        if (rv != TS_OK) {
            json_decref(doc);
            return ts_error_prefix(rv, "the revocation feed of tenant %s", tenant);
        }
        t->since = (uint64_t)json_integer_value(next);
        json_decref(doc);
        if (n < FEED_PAGE) {
            t->synced = true;
            return TS_OK;
        }
    }
    return TS_OK;
}

/* Writes the cache and hands a copy to the broker when the state differs from the last one. */
static void publish(tsb_feed *f)
{
    char *text = NULL;
    size_t len = 0;

    size_t synced = 0;

    tsb_state_finish(f->work);
    for (size_t i = 0; i < f->work->n_tenants; i++) {
        synced += f->work->tenants[i].synced;
    }
    if (synced == 0) {
        return; /* nothing known yet: no state beats an empty one (fail closed) */
    }
    if (tsb_cache_encode(f->work, &text, &len) != TS_OK) {
        feed_log(f, MOSQ_LOG_ERR, "tessera: cannot encode the state: %s", ts_error_message());
        return;
    }
    if (f->saved != NULL && f->saved_len == len && memcmp(f->saved, text, len) == 0) {
        free(text);
        return;
    }
    tsb_state *copy = tsb_state_dup(f->work);
    if (copy == NULL) {
        free(text);
        feed_log(f, MOSQ_LOG_ERR, "tessera: out of memory copying the state");
        return;
    }
    if (ts_file_write_atomic(f->cache, (const uint8_t *)text, len, 0600) != TS_OK) {
        feed_log(f, MOSQ_LOG_ERR, "tessera: cannot write the cache %s: %s", f->cache,
                 ts_error_message());
    }
    free(f->saved);
    f->saved = text;
    f->saved_len = len;
    pthread_mutex_lock(&f->mu);
    tsb_state_free(f->pending);
    f->pending = copy;
    pthread_mutex_unlock(&f->mu);
    feed_log(f, MOSQ_LOG_NOTICE,
             "tessera: state updated from the service: %zu tenants, %zu revoked certificates, "
             "%zu disabled devices",
             synced, f->work->n_revoked, f->work->n_disabled);
}

static ts_err poll_once(tsb_feed *f)
{
    ts_err rv = poll_tenants(f);

    for (size_t i = 0; rv == TS_OK && i < f->work->n_tenants; i++) {
        rv = poll_cas(f, &f->work->tenants[i]);
        if (rv == TS_OK) {
            rv = poll_feed(f, f->work->tenants[i].name);
        }
    }
    publish(f);
    return rv;
}

static void *feed_main(void *arg)
{
    tsb_feed *f = arg;
    struct timespec until;

    for (;;) {
        ts_err rv = poll_once(f);
        if (rv != TS_OK) {
            const char *msg = ts_error_message();
            if (!f->failing || strcmp(msg, f->last_error) != 0) {
                feed_log(f, MOSQ_LOG_WARNING, "tessera: cannot update from the service (%s); %s",
                         msg,
                         f->saved != NULL ? "keeping the last state"
                                          : "no state: refusing every device");
            }
            snprintf(f->last_error, sizeof(f->last_error), "%s", msg);
            f->failing = true;
        } else if (f->failing) {
            feed_log(f, MOSQ_LOG_NOTICE, "tessera: the service answers again");
            f->failing = false;
        }
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_sec += f->refresh;
        pthread_mutex_lock(&f->mu);
        while (!f->stop) {
            if (pthread_cond_timedwait(&f->cv, &f->mu, &until) == ETIMEDOUT) {
                break;
            }
        }
        bool stop = f->stop;
        pthread_mutex_unlock(&f->mu);
        if (stop) {
            return NULL;
        }
    }
}

static void wipe_headers(struct curl_slist *h)
{
    for (struct curl_slist *p = h; p != NULL; p = p->next) {
        OPENSSL_cleanse(p->data, strlen(p->data));
    }
    curl_slist_free_all(h);
}

static void feed_free(tsb_feed *f)
{
    curl_easy_cleanup(f->curl);
    wipe_headers(f->headers);
    tsb_state_free(f->work);
    tsb_state_free(f->pending);
    for (size_t i = 0; i < f->n_logs; i++) {
        free(f->logs[i]);
    }
    free(f->url);
    free(f->trust);
    free(f->cache);
    free(f->saved);
    pthread_cond_destroy(&f->cv);
    pthread_mutex_destroy(&f->mu);
    free(f);
}

static ts_err setup_curl(tsb_feed *f)
{
    f->curl = curl_easy_init();
    if (f->curl == NULL) {
        return ts_error_set(TS_ERR_NOMEM, "cannot make a curl handle");
    }
    f->headers = curl_slist_append(NULL, "Accept: application/json");
    if (f->headers == NULL) {
        return ts_error_set(TS_ERR_NOMEM, "out of memory");
    }
    CURL *c = f->curl;
    int bad = 0;
    bad |= curl_easy_setopt(c, CURLOPT_HTTPHEADER, f->headers) != CURLE_OK;
    bad |= curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data) != CURLE_OK;
    bad |= curl_easy_setopt(c, CURLOPT_CAINFO, f->trust) != CURLE_OK;
    bad |= curl_easy_setopt(c, CURLOPT_CAPATH, NULL) != CURLE_OK;
    bad |= curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L) != CURLE_OK;
    bad |= curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L) != CURLE_OK;
    bad |= curl_easy_setopt(c, CURLOPT_TCP_NODELAY, 1L) != CURLE_OK;
    bad |= curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L) != CURLE_OK;
    bad |=
        curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)FEED_CONNECT_TIMEOUT_MS) != CURLE_OK;
    bad |= curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)FEED_TIMEOUT_MS) != CURLE_OK;
    bad |= curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https") != CURLE_OK;
    bad |= curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L) != CURLE_OK;
    return bad ? ts_error_set(TS_ERR_INVALID, "cannot set up the HTTP client") : TS_OK;
}

ts_err tsb_feed_start(tsb_feed_config *cfg, tsb_feed **out)
{
    tsb_feed *f = calloc(1, sizeof(*f));
    pthread_condattr_t ca;
    ts_err rv = TS_OK;

    if (f == NULL) {
        return ts_error_set(TS_ERR_NOMEM, "out of memory");
    }
    pthread_mutex_init(&f->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&f->cv, &ca);
    pthread_condattr_destroy(&ca);
    f->refresh = cfg->refresh;
    f->url = strdup(cfg->url);
    f->trust = strdup(cfg->trust);
    f->cache = strdup(cfg->cache);
    f->work = cfg->initial != NULL ? cfg->initial : tsb_state_new();
    cfg->initial = NULL;
    if (f->url == NULL || f->trust == NULL || f->cache == NULL || f->work == NULL) {
        rv = ts_error_set(TS_ERR_NOMEM, "out of memory");
    }
    if (rv == TS_OK) {
        rv = setup_curl(f);
    }
    if (rv == TS_OK) {
        struct curl_slist *h = curl_slist_append(f->headers, cfg->auth_header);
        rv = h != NULL ? TS_OK : ts_error_set(TS_ERR_NOMEM, "out of memory");
        f->headers = h != NULL ? h : f->headers;
    }
    if (rv == TS_OK && f->work->n_tenants > 0) {
        rv = tsb_cache_encode(f->work, &f->saved, &f->saved_len);
    }
    OPENSSL_cleanse(cfg->auth_header, strlen(cfg->auth_header));
    if (rv == TS_OK && pthread_create(&f->thread, NULL, feed_main, f) != 0) {
        rv = ts_error_set(TS_ERR_IO, "cannot start the feed thread");
    }
    if (rv != TS_OK) {
        feed_free(f);
        return rv;
    }
    *out = f;
    return TS_OK;
}

void tsb_feed_stop(tsb_feed *f)
{
    if (f == NULL) {
        return;
    }
    pthread_mutex_lock(&f->mu);
    f->stop = true;
    pthread_cond_signal(&f->cv);
    pthread_mutex_unlock(&f->mu);
    pthread_join(f->thread, NULL);
    feed_free(f);
}

tsb_state *tsb_feed_take(tsb_feed *f)
{
    pthread_mutex_lock(&f->mu);
    tsb_state *st = f->pending;
    f->pending = NULL;
    pthread_mutex_unlock(&f->mu);
    return st;
}

size_t tsb_feed_take_logs(tsb_feed *f, char **lines, size_t cap, int *levels)
{
    size_t n = 0;

    pthread_mutex_lock(&f->mu);
    while (n < cap && n < f->n_logs) {
        lines[n] = f->logs[n];
        levels[n] = f->levels[n];
        n++;
    }
    memmove(f->logs, f->logs + n, (f->n_logs - n) * sizeof(char *));
    memmove(f->levels, f->levels + n, (f->n_logs - n) * sizeof(int));
    f->n_logs -= n;
    pthread_mutex_unlock(&f->mu);
    return n;
}
