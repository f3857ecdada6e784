/*
 * The service's MQTT client (include/tessera/commands.h, docs/commands.md): one thread that owns
 * its own instance handle and libmosquitto client, so every store call and every callback runs
 * on it (libmosquitto calls back from inside mosquitto_loop()).
 *
 * Each turn of the loop: network I/O for up to LOOP_MS; once a second, the outbox (pending
 * commands, each signed fresh, published with QoS 1 and marked sent when the broker acknowledges
 * it: MQTT 3.1.1 section 4.3.2) and expiry. A lost connection is retried with exponential backoff
 * (1 s doubling to 30 s); commands published but not acknowledged stay pending and go out again
 * after the reconnect (the device keeps the highest seq it ran, so a second copy is refused).
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <mosquitto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "common/error_internal.h"
#include "server/server_internal.h"
#include "service/svc_internal.h"
#include "service/svc_mqtt_internal.h"
#include "tessera/provider.h"

enum {
    LOOP_MS = 100,      /* one mosquitto_loop() turn */
    KEEPALIVE_S = 30,   /* MQTT keep-alive */
    BACKOFF_MIN_S = 1,  /* first reconnect delay */
    BACKOFF_MAX_S = 30, /* longest reconnect delay */
};

/* TLS 1.2 suites: ECDHE with AES-GCM only (TLS 1.3 suites are all AEAD). */
#define MQTT_TLS12_SUITES                                                                          \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES128-GCM-SHA256:"     \
    "ECDHE-RSA-AES256-GCM-SHA384"

void svc_mqtt_log(const char *level, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    svc_log(NULL, level, "mqtt: %s", msg);
}

/* DIR/tls/client.pem: leaf first, then its chain; made for an instance from before it. */
static ts_err load_client_chain(ts_ca *ca, const char *dir, SSL_CTX *ctx)
{
    char path[TS_CA_PATH_MAX];
    ts_err rv = srv_path(path, sizeof path, dir, TS_TLS_CLIENT_CERT_FILE);
    if (rv != TS_OK) {
        return rv;
    }
    if (access(path, F_OK) != 0) {
        rv = ts_ca_tls_client_cert(ca);
        if (rv != TS_OK) {
            return rv;
        }
        svc_mqtt_log("info", "made the service's MQTT client certificate %s", path);
    }
    return svc_tls_use_chain_file(ctx, path);
}

/* The broker is verified against trust_file, or the instance's CAs. */
static ts_err load_trust(ts_ca *ca, const char *trust_file, SSL_CTX *ctx)
{
    X509_STORE *st = SSL_CTX_get_cert_store(ctx);
    if (trust_file != NULL) {
        if (SSL_CTX_load_verify_locations(ctx, trust_file, NULL) != 1) {
            return ts_error_set_openssl(TS_ERR_INVALID, "--mqtt-trust %s: no PEM certificates",
                                        trust_file);
        }
        return TS_OK;
    }
    STACK_OF(X509) *all = NULL;
    ts_err rv = ts_ca_all_certs(ca, &all);
    for (int i = 0; rv == TS_OK && i < sk_X509_num(all); i++) {
        if (X509_STORE_add_cert(st, sk_X509_value(all, i)) != 1) {
            rv = ts_error_set_openssl(TS_ERR_CRYPTO, "cannot build the broker trust store");
        }
    }
    sk_X509_pop_free(all, X509_free);
    return rv;
}

ts_err svc_mqtt_tls_ctx(ts_ca *ca, const ts_service_mqtt_config *c, SSL_CTX **out)
{
    ts_keystore *ks = NULL;
    EVP_PKEY *key = NULL;
    *out = NULL;
    OSSL_LIB_CTX *libctx = ts_provider_libctx();
    if (libctx == NULL) {
        return TS_ERR_BACKEND;
    }
    ts_err rv = ts_ca_keystore(ca, &ks);
    if (rv == TS_OK) {
        rv = ts_keystore_evp_pkey(ks, TS_TLS_KEY_LABEL, &key);
    }
    if (rv != TS_OK) {
        return ts_error_prefix(rv, "the MQTT client key \"%s\"", TS_TLS_KEY_LABEL);
    }
    /* The key's operations run in the provider, so the context lives in its library context. */
    SSL_CTX *ctx = SSL_CTX_new_ex(libctx, NULL, TLS_client_method());
    if (ctx == NULL) {
        rv = ts_error_set_openssl(TS_ERR_CRYPTO, "cannot make a TLS context");
        goto out;
    }
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
        SSL_CTX_set_cipher_list(ctx, MQTT_TLS12_SUITES) != 1) {
        rv = ts_error_set_openssl(TS_ERR_CRYPTO, "cannot set the TLS policy");
        goto out;
    }
    rv = load_client_chain(ca, c->dir, ctx);
    if (rv != TS_OK) {
        goto out;
    }
    if (SSL_CTX_use_PrivateKey(ctx, key) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
        rv = ts_error_set_openssl(TS_ERR_CRYPTO, "%s does not fit the key \"%s\"",
                                  TS_TLS_CLIENT_CERT_FILE, TS_TLS_KEY_LABEL);
        goto out;
    }
    rv = load_trust(ca, c->trust_file, ctx);
    if (rv != TS_OK) {
        goto out;
    }
    /* RFC 6125: the broker's certificate must name the host we asked for. */
    X509_VERIFY_PARAM *param = SSL_CTX_get0_param(ctx);
    int is_ip = X509_VERIFY_PARAM_set1_ip_asc(param, c->host) == 1;
    if (!is_ip) {
        ERR_clear_error();
        if (X509_VERIFY_PARAM_set1_host(param, c->host, 0) != 1) {
            rv = ts_error_set_openssl(TS_ERR_INVALID, "cannot verify the broker as %s", c->host);
            goto out;
        }
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    *out = ctx;
    ctx = NULL;
out:
    SSL_CTX_free(ctx);
    EVP_PKEY_free(key);
    return rv;
}

/* --- The thread ------------------------------------------------------------------------------ */

static void on_connect(struct mosquitto *mosq, void *arg, int rc)
{
    svc_mqtt *m = arg;
    if (rc != 0) {
        svc_mqtt_log("warn", "the broker refused the connection: %s", mosquitto_connack_string(rc));
        return;
    }
    m->connected = 1;
    m->backoff = BACKOFF_MIN_S;
    svc_mqtt_log("info", "connected to %s:%u", m->config.host, m->config.port);
    int sub = mosquitto_subscribe(mosq, NULL, TS_TOPIC_ROOT "/+/+/" TS_TOPIC_RESULTS, 1);
    if (sub != MOSQ_ERR_SUCCESS) {
        svc_mqtt_log("error", "cannot subscribe to results: %s", mosquitto_strerror(sub));
    }
}

static void on_disconnect(struct mosquitto *mosq, void *arg, int rc)
{
    svc_mqtt *m = arg;
    (void)mosq;
    if (m->connected) {
        svc_mqtt_log("warn", "disconnected from the broker (%s)",
                     rc == 0 ? "as asked" : mosquitto_strerror(rc));
    }
    m->connected = 0;
    svc_mqtt_inflight_clear(m);
}

static void *mqtt_thread(void *arg)
{
    svc_mqtt *m = arg;
    time_t next_tick = 0, next_try = 0;
    int ever = 0;

    while (!atomic_load(&m->stop)) {
        time_t now = time(NULL);
        if (!m->connected && !m->socket_up && now >= next_try) {
            int rc =
                ever ? mosquitto_reconnect(m->mosq)
                     : mosquitto_connect(m->mosq, m->config.host, (int)m->config.port, KEEPALIVE_S);
            if (rc == MOSQ_ERR_SUCCESS) {
                ever = 1;
                m->socket_up = 1;
            } else {
                svc_mqtt_log("warn", "cannot connect to %s:%u: %s (retry in %d s)", m->config.host,
                             m->config.port,
                             rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(rc),
                             m->backoff);
                next_try = now + m->backoff;
                m->backoff = m->backoff * 2 > BACKOFF_MAX_S ? BACKOFF_MAX_S : m->backoff * 2;
            }
        }
        if (m->socket_up) {
            int rc = mosquitto_loop(m->mosq, LOOP_MS, 1);
            if (rc != MOSQ_ERR_SUCCESS) {
                if (m->connected || rc != MOSQ_ERR_NO_CONN) {
                    svc_mqtt_log("warn", "connection lost: %s (retry in %d s)",
                                 rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(rc),
                                 m->backoff);
                }
                ERR_clear_error();
                m->connected = 0;
                m->socket_up = 0;
                svc_mqtt_inflight_clear(m);
                next_try = time(NULL) + m->backoff;
                m->backoff = m->backoff * 2 > BACKOFF_MAX_S ? BACKOFF_MAX_S : m->backoff * 2;
            }
        } else {
            struct timespec ts = {0, LOOP_MS * 1000000L};
            nanosleep(&ts, NULL);
        }
        now = time(NULL);
        if (now >= next_tick) {
            next_tick = now + 1;
            svc_mqtt_tick(m, now);
        }
    }
    if (m->socket_up) {
        mosquitto_disconnect(m->mosq);
        (void)mosquitto_loop(m->mosq, LOOP_MS, 1);
    }
    return NULL;
}

static void mqtt_free(svc_mqtt *m)
{
    if (m == NULL) {
        return;
    }
    mosquitto_destroy(m->mosq);
    SSL_CTX_free(m->ctx);
    ts_ca_free(m->ca);
    OPENSSL_free(m->host);
    OPENSSL_free(m->dir);
    OPENSSL_free(m->db_url);
    OPENSSL_free(m->trust_file);
    OPENSSL_free(m);
}

static pthread_once_t lib_once = PTHREAD_ONCE_INIT;
static void lib_init(void)
{
    mosquitto_lib_init();
}

ts_err ts_service_mqtt_start(const ts_service_mqtt_config *c, ts_service_mqtt **out)
{
    if (c == NULL || c->dir == NULL || c->host == NULL || c->host[0] == '\0' || c->port == 0 ||
        c->port > 65535 || out == NULL) {
        return ts_error_set(TS_ERR_INVALID, "--mqtt needs HOST:PORT");
    }
    *out = NULL;
    pthread_once(&lib_once, lib_init);
    svc_mqtt *m = OPENSSL_zalloc(sizeof *m);
    if (m == NULL) {
        return ts_error_set(TS_ERR_NOMEM, "out of memory");
    }
    m->host = OPENSSL_strdup(c->host);
    m->dir = OPENSSL_strdup(c->dir);
    m->db_url = c->db_url != NULL ? OPENSSL_strdup(c->db_url) : NULL;
    m->trust_file = c->trust_file != NULL ? OPENSSL_strdup(c->trust_file) : NULL;
    m->config.host = m->host;
    m->config.port = c->port;
    m->config.dir = m->dir;
    m->config.db_url = m->db_url;
    m->config.trust_file = m->trust_file;
    m->backoff = BACKOFF_MIN_S;
    atomic_init(&m->stop, 0);
    ts_err rv = m->host != NULL && m->dir != NULL ? TS_OK : ts_error_set(TS_ERR_NOMEM, "no memory");
    if (rv == TS_OK) {
        rv = c->db_url != NULL ? ts_ca_open_db(c->dir, c->db_url, "service:mqtt", &m->ca)
                               : ts_ca_open(c->dir, "service:mqtt", &m->ca);
    }
    if (rv == TS_OK) {
        rv = svc_mqtt_tls_ctx(m->ca, &m->config, &m->ctx);
    }
    if (rv == TS_OK) {
        /* The client id is fixed: a second service instance takes over the session. */
        m->mosq = mosquitto_new("tessera-service", true, m);
        if (m->mosq == NULL) {
            rv = ts_error_set(TS_ERR_NOMEM, "cannot make the MQTT client");
        }
    }
    if (rv == TS_OK) {
        mosquitto_int_option(m->mosq, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
        mosquitto_int_option(m->mosq, MOSQ_OPT_TCP_NODELAY, 1);
        /* The context is complete as built here: libmosquitto must not add its own defaults
         * (which also want a CA file of their own). */
        mosquitto_int_option(m->mosq, MOSQ_OPT_SSL_CTX_WITH_DEFAULTS, 0);
        if (mosquitto_void_option(m->mosq, MOSQ_OPT_SSL_CTX, m->ctx) != MOSQ_ERR_SUCCESS) {
            rv = ts_error_set(TS_ERR_BACKEND, "libmosquitto refused the TLS context");
        }
    }
    if (rv == TS_OK) {
        mosquitto_connect_callback_set(m->mosq, on_connect);
        mosquitto_disconnect_callback_set(m->mosq, on_disconnect);
        mosquitto_publish_callback_set(m->mosq, svc_mqtt_on_publish);
        mosquitto_message_callback_set(m->mosq, svc_mqtt_on_message);
        if (pthread_create(&m->thread, NULL, mqtt_thread, m) != 0) {
            rv = ts_error_set(TS_ERR_BACKEND, "cannot start the MQTT thread");
        }
    }
    if (rv != TS_OK) {
        mqtt_free(m);
        return ts_error_prefix(rv, "MQTT client");
    }
    *out = m;
    return TS_OK;
}

void ts_service_mqtt_stop(ts_service_mqtt *m)
{
    if (m == NULL) {
        return;
    }
    atomic_store(&m->stop, 1);
    pthread_join(m->thread, NULL);
    mqtt_free(m);
}
