/*
 * tessera_mosquitto.so: the Mosquitto 2.0 plugin (plugin API version 5). Options, start and
 * stop; the callbacks are in broker_auth.c. docs/broker.md describes the options.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>
#include <mosquitto.h>
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "broker/broker_internal.h"
#include "common/error_internal.h"
#include "common/file_internal.h"

#define TSB_EXPORT       __attribute__((visibility("default")))
#define TSB_TOKEN_PREFIX "tsk_"
#define TSB_TOKEN_LEN    (4 + 64)

typedef struct options {
    const char *service_url, *token_file, *trust, *cache, *refresh, *service_cert;
} options;

TSB_EXPORT int mosquitto_plugin_version(int supported_version_count, const int *supported_versions)
{
    for (int i = 0; i < supported_version_count; i++) {
        if (supported_versions[i] == 5) {
            return 5;
        }
    }
    return -1;
}

static int refuse(const char *fmt, ...) TS_PRINTF(1, 2);

/* Logs why the plugin cannot start (or go on) and returns MOSQ_ERR_INVAL. */
static int refuse(const char *fmt, ...)
{
    char buf[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    mosquitto_log_printf(MOSQ_LOG_ERR, "%s", buf);
    return MOSQ_ERR_INVAL;
}

/* https://host[:port] with no path, user, query or fragment. */
static bool url_ok(const char *u)
{
    static const char scheme[] = "https://";
    size_t n = strlen(u);

    if (n <= sizeof(scheme) - 1 || n > 512 || strncmp(u, scheme, sizeof(scheme) - 1) != 0) {
        return false;
    }
    const char *host = u + sizeof(scheme) - 1;
    return strcspn(host, "/?#@ \t\r\n\\") == strlen(host);
}

static int read_options(struct mosquitto_opt *opts, int n, options *o)
{
    static const char *const known[] = {"service_url", "token_file", "trust",
                                        "cache",       "refresh",    "service_cert"};
    const char **slots[] = {&o->service_url, &o->token_file, &o->trust,
                            &o->cache,       &o->refresh,    &o->service_cert};

    memset(o, 0, sizeof(*o));
    for (int i = 0; i < n; i++) {
        size_t k = 0;
        while (k < 6 && strcmp(opts[i].key, known[k]) != 0) {
            k++;
        }
        if (k == 6) {
            return refuse("tessera: unknown option plugin_opt_%s", opts[i].key);
        }
        if (*slots[k] != NULL) {
            return refuse("tessera: plugin_opt_%s given twice", opts[i].key);
        }
        if (opts[i].value == NULL || opts[i].value[0] == '\0') {
            return refuse("tessera: plugin_opt_%s is empty", opts[i].key);
        }
        *slots[k] = opts[i].value;
    }
    for (size_t k = 0; k < 4; k++) {
        if (*slots[k] == NULL) {
            return refuse("tessera: plugin_opt_%s is required; refusing to start", known[k]);
        }
    }
    if (!url_ok(o->service_url)) {
        return refuse("tessera: plugin_opt_service_url '%s' is not https://HOST[:PORT]",
                      o->service_url);
    }
    return MOSQ_ERR_SUCCESS;
}

static int parse_refresh(const char *s, unsigned *out)
{
    char *end = NULL;

    *out = 5;
    if (s == NULL) {
        return MOSQ_ERR_SUCCESS;
    }
    long v = strtol(s, &end, 10);
    if (end == s || *end != '\0' || v < 1 || v > 3600) {
        return refuse("tessera: plugin_opt_refresh '%s' is not 1 to 3600 seconds", s);
    }
    *out = (unsigned)v;
    return MOSQ_ERR_SUCCESS;
}

/* The token file: one line, "tsk_" and 64 hex digits. Builds the Authorization header and wipes
 * every other copy. */
static int read_token(const char *path, char **header)
{
    uint8_t *data = NULL;
    size_t len = 0;
    struct stat sb;

    if (ts_file_read(path, 4096, &data, &len) != TS_OK) {
        return refuse("tessera: plugin_opt_token_file %s: %s", path, ts_error_message());
    }
    while (len > 0 && (data[len - 1] == '\n' || data[len - 1] == '\r')) {
        len--;
    }
    bool ok = len == TSB_TOKEN_LEN && memcmp(data, TSB_TOKEN_PREFIX, 4) == 0;
    for (size_t i = 4; ok && i < len; i++) {
        ok = (data[i] >= '0' && data[i] <= '9') || (data[i] >= 'a' && data[i] <= 'f');
    }
    static const char pre[] = "Authorization: Bearer ";
    *header = ok ? malloc(sizeof(pre) + len) : NULL;
    if (*header != NULL) {
        memcpy(*header, pre, sizeof(pre) - 1);
        memcpy(*header + sizeof(pre) - 1, data, len);
        (*header)[sizeof(pre) - 1 + len] = '\0';
    }
    OPENSSL_clear_free(data, len);
    if (!ok) {
        return refuse("tessera: plugin_opt_token_file %s does not hold an API token "
                      "(tsk_ and 64 hex digits)",
                      path);
    }
    if (*header == NULL) {
        return MOSQ_ERR_NOMEM;
    }
    if (stat(path, &sb) == 0 && (sb.st_mode & 077) != 0) {
        mosquitto_log_printf(MOSQ_LOG_WARNING,
                             "tessera: plugin_opt_token_file %s can be read by others: chmod "
                             "600 it",
                             path);
    }
    return MOSQ_ERR_SUCCESS;
}

/* SHA-256 of the SubjectPublicKeyInfo of every certificate in the PEM file. */
static int read_service_certs(tsb_plugin *p, const char *path)
{
    BIO *bio = BIO_new_file(path, "r");
    X509 *cert = NULL;

    if (bio == NULL) {
        ERR_clear_error();
        return refuse("tessera: plugin_opt_service_cert %s cannot be read", path);
    }
    while ((cert = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
        if (X509_check_ca(cert) != 0) {
            X509_free(cert); /* a chain after the account's certificate: not an account */
            continue;
        }
        unsigned char *der = NULL;
        int n = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert), &der);
        void *grown = realloc(p->service_spki, (p->n_service + 1) * TSB_FP_LEN);
        bool ok = n > 0 && grown != NULL;
        if (grown != NULL) {
            p->service_spki = grown;
        }
        if (ok) {
            ok = EVP_Digest(der, (size_t)n, p->service_spki[p->n_service], NULL, EVP_sha256(),
                            NULL) == 1;
        }
        OPENSSL_free(der);
        X509_free(cert);
        if (!ok) {
            BIO_free(bio);
            return refuse("tessera: plugin_opt_service_cert %s: cannot hash a key", path);
        }
        p->n_service++;
    }
    ERR_clear_error();
    BIO_free(bio);
    if (p->n_service == 0) {
        return refuse(
            "tessera: plugin_opt_service_cert %s holds no PEM certificate that is not a CA", path);
    }
    return MOSQ_ERR_SUCCESS;
}

/* The cache's state, or NULL (and why, in the log) when there is none to use. */
static tsb_state *load_cache(const char *path)
{
    uint8_t *data = NULL;
    size_t len = 0;
    tsb_state *st = NULL;

    ts_err rv = ts_file_read(path, TSB_CACHE_MAX, &data, &len);
    if (rv == TS_ERR_NOT_FOUND) {
        mosquitto_log_printf(MOSQ_LOG_NOTICE,
                             "tessera: no cache at %s yet; devices are refused until the "
                             "service answers",
                             path);
        return NULL;
    }
    if (rv == TS_OK) {
        rv = tsb_cache_decode(data, len, &st);
    }
    OPENSSL_clear_free(data, len);
    if (rv != TS_OK) {
        mosquitto_log_printf(MOSQ_LOG_ERR,
                             "tessera: cache %s not used: %s; devices are refused until the "
                             "service answers",
                             path, ts_error_message());
        return NULL;
    }
    mosquitto_log_printf(MOSQ_LOG_NOTICE,
                         "tessera: state loaded from the cache %s: %zu tenants, %zu revoked "
                         "certificates, %zu disabled devices",
                         path, st->n_tenants, st->n_revoked, st->n_disabled);
    return st;
}

static void plugin_free(tsb_plugin *p)
{
    if (p == NULL) {
        return;
    }
    tsb_feed_stop(p->feed);
    tsb_state_free(p->state);
    tsb_clients_free(&p->clients);
    free(p->service_spki);
    free(p);
}

TSB_EXPORT int mosquitto_plugin_init(mosquitto_plugin_id_t *identifier, void **userdata,
                                     struct mosquitto_opt *opts, int opt_count)
{
    options o;
    unsigned refresh = 5;
    char *header = NULL;
    tsb_plugin *p = NULL;

    int rc = read_options(opts, opt_count, &o);
    if (rc == MOSQ_ERR_SUCCESS) {
        rc = parse_refresh(o.refresh, &refresh);
    }
    if (rc == MOSQ_ERR_SUCCESS && access(o.trust, R_OK) != 0) {
        rc = refuse("tessera: plugin_opt_trust %s cannot be read", o.trust);
    }
    if (rc == MOSQ_ERR_SUCCESS) {
        p = calloc(1, sizeof(*p));
        rc = p != NULL ? MOSQ_ERR_SUCCESS : MOSQ_ERR_NOMEM;
    }
    if (rc == MOSQ_ERR_SUCCESS && o.service_cert != NULL) {
        rc = read_service_certs(p, o.service_cert);
    }
    if (rc == MOSQ_ERR_SUCCESS) {
        rc = read_token(o.token_file, &header);
    }
    if (rc == MOSQ_ERR_SUCCESS && curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        rc = refuse("tessera: cannot initialise libcurl");
    }
    if (rc == MOSQ_ERR_SUCCESS) {
        p->id = identifier;
        p->state = load_cache(o.cache);
        tsb_feed_config cfg = {
            .url = o.service_url,
            .trust = o.trust,
            .cache = o.cache,
            .auth_header = header,
            .refresh = refresh,
            .initial = p->state != NULL ? tsb_state_dup(p->state) : NULL,
        };
        if (p->state != NULL && cfg.initial == NULL) {
            rc = MOSQ_ERR_NOMEM;
        } else if (tsb_feed_start(&cfg, &p->feed) != TS_OK) {
            rc = refuse("tessera: cannot start: %s", ts_error_message());
            tsb_state_free(cfg.initial);
        }
    }
    if (header != NULL) {
        OPENSSL_clear_free(header, strlen(header));
    }
    if (rc == MOSQ_ERR_SUCCESS) {
        if (mosquitto_callback_register(identifier, MOSQ_EVT_BASIC_AUTH, tsb_on_basic_auth, NULL,
                                        p) != MOSQ_ERR_SUCCESS ||
            mosquitto_callback_register(identifier, MOSQ_EVT_ACL_CHECK, tsb_on_acl_check, NULL,
                                        p) != MOSQ_ERR_SUCCESS ||
            mosquitto_callback_register(identifier, MOSQ_EVT_TICK, tsb_on_tick, NULL, p) !=
                MOSQ_ERR_SUCCESS ||
            mosquitto_callback_register(identifier, MOSQ_EVT_DISCONNECT, tsb_on_disconnect, NULL,
                                        p) != MOSQ_ERR_SUCCESS) {
            rc = refuse("tessera: cannot register the callbacks");
        }
    }
    if (rc != MOSQ_ERR_SUCCESS) {
        plugin_free(p);
        return rc;
    }
    mosquitto_log_printf(MOSQ_LOG_NOTICE,
                         "tessera: plugin started: service %s, refresh %u s, %zu service "
                         "account key(s)",
                         o.service_url, refresh, p->n_service);
    *userdata = p;
    return MOSQ_ERR_SUCCESS;
}

TSB_EXPORT int mosquitto_plugin_cleanup(void *userdata, struct mosquitto_opt *opts, int opt_count)
{
    tsb_plugin *p = userdata;

    if (p != NULL) {
        mosquitto_callback_unregister(p->id, MOSQ_EVT_BASIC_AUTH, tsb_on_basic_auth, NULL);
        mosquitto_callback_unregister(p->id, MOSQ_EVT_ACL_CHECK, tsb_on_acl_check, NULL);
        mosquitto_callback_unregister(p->id, MOSQ_EVT_TICK, tsb_on_tick, NULL);
        mosquitto_callback_unregister(p->id, MOSQ_EVT_DISCONNECT, tsb_on_disconnect, NULL);
    }
    plugin_free(p);
    curl_global_cleanup();
    return MOSQ_ERR_SUCCESS;
}
