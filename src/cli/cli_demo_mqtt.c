/*
 * The demo's observer: an MQTT client that connects to the broker with the service's identity
 * (its certificate, and the instance key "tls-server" used through the key-store provider, so
 * the handshake's signature is made inside the store) and counts what every device publishes.
 *
 * libmosquitto runs the connection in its own thread (mosquitto_loop_start); the counts are
 * kept under a lock and read by the demo's main thread.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mosquitto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "cli/cli_demo.h"
#include "common/error_internal.h"
#include "tessera/access.h"
#include "tessera/command.h"
#include "tessera/keystore.h"
#include "tessera/provider.h"

#define OBSERVER_CLIENT_ID "tessera-demo-observer"
#define BROKER_HOST        "127.0.0.1"

enum {
    KEEPALIVE_S = 30,
    CONNACK_WAIT_MS = 15000,
    SUBACK_WAIT_MS = 10000,
    CERTS_MAX = 8,
};

typedef struct watched {
    char uid[DEMO_UID_MAX + 1];
    demo_seen seen;
} watched;

struct demo_observer {
    struct mosquitto *mosq;
    SSL_CTX *ctx;
    ts_keystore *ks;
    int loop_started;
    pthread_mutex_t lock;
    /* under lock: */
    int connack;      /* -1 until the CONNACK; then its return code */
    int disconnected; /* the connection ended before the CONNACK (with this + 1 as the code) */
    int subscribed;   /* SUBACKs received */
    watched dev[DEMO_DEVICES_MAX];
    size_t ndev;
    unsigned others;
};

/* Copies payload as printable ASCII (anything else becomes '?'), cut to size. */
static void printable(const void *payload, int len, char *out, size_t size)
{
    const unsigned char *p = payload;
    size_t n = 0;
    for (int i = 0; i < len && n + 1 < size; i++) {
        out[n++] = p[i] >= 0x20 && p[i] < 0x7f ? (char)p[i] : '?';
    }
    out[n] = '\0';
    if ((size_t)len >= size && size > 4) {
        memcpy(out + size - 4, "...", 4);
    }
}

/* tessera/<tenant>/<uid>/<leaf>: the uid and the leaf, or 0 when the topic is another shape. */
static int topic_parts(const char *topic, char uid[DEMO_UID_MAX + 1], const char **leaf)
{
    static const char root[] = TS_TOPIC_ROOT "/";
    if (strncmp(topic, root, sizeof root - 1) != 0) {
        return 0;
    }
    const char *tenant = topic + sizeof root - 1;
    const char *slash = strchr(tenant, '/');
    if (slash == NULL) {
        return 0;
    }
    const char *u = slash + 1;
    slash = strchr(u, '/');
    if (slash == NULL || slash == u || (size_t)(slash - u) > DEMO_UID_MAX) {
        return 0;
    }
    memcpy(uid, u, (size_t)(slash - u));
    uid[slash - u] = '\0';
    *leaf = slash + 1;
    return 1;
}

static void on_connect(struct mosquitto *mosq, void *obj, int rc)
{
    demo_observer *o = obj;
    (void)mosq;
    pthread_mutex_lock(&o->lock);
    if (o->connack < 0) {
        o->connack = rc;
    }
    pthread_mutex_unlock(&o->lock);
}

static void on_disconnect(struct mosquitto *mosq, void *obj, int rc)
{
    demo_observer *o = obj;
    (void)mosq;
    pthread_mutex_lock(&o->lock);
    if (o->connack < 0 && o->disconnected == 0) {
        o->disconnected = rc + 1;
    }
    pthread_mutex_unlock(&o->lock);
}

static void on_subscribe(struct mosquitto *mosq, void *obj, int mid, int qos_count,
                         const int *granted)
{
    demo_observer *o = obj;
    (void)mosq;
    (void)mid;
    pthread_mutex_lock(&o->lock);
    /* 0x80 is the broker's "failure" for that filter (MQTT 3.1.1 section 3.9.3). */
    if (qos_count == 1 && granted[0] != 0x80) {
        o->subscribed++;
    }
    pthread_mutex_unlock(&o->lock);
}

static void on_message(struct mosquitto *mosq, void *obj, const struct mosquitto_message *msg)
{
    demo_observer *o = obj;
    char uid[DEMO_UID_MAX + 1];
    const char *leaf = NULL;
    (void)mosq;

    if (msg->topic == NULL || !topic_parts(msg->topic, uid, &leaf)) {
        return;
    }
    pthread_mutex_lock(&o->lock);
    watched *w = NULL;
    for (size_t i = 0; i < o->ndev; i++) {
        if (strcmp(o->dev[i].uid, uid) == 0) {
            w = &o->dev[i];
        }
    }
    if (w == NULL) {
        o->others++;
    } else if (strcmp(leaf, TS_TOPIC_TELEMETRY) == 0) {
        if (w->seen.telemetry++ == 0) {
            printable(msg->payload, msg->payloadlen, w->seen.first, sizeof w->seen.first);
        }
    } else if (strcmp(leaf, TS_TOPIC_STATUS) == 0) {
        printable(msg->payload, msg->payloadlen, w->seen.status, sizeof w->seen.status);
        w->seen.statuses++;
        if (strstr(w->seen.status, "offline") != NULL) {
            w->seen.offline++;
        }
    }
    pthread_mutex_unlock(&o->lock);
}

/* Every certificate in a PEM file, in order. */
static ts_err read_certs(const char *path, X509 *certs[CERTS_MAX], size_t *n)
{
    BIO *bio = BIO_new_file(path, "r");
    *n = 0;
    if (bio == NULL) {
        return ts_error_set_openssl(TS_ERR_IO, "cannot read %s", path);
    }
    X509 *cert = NULL;
    while (*n < CERTS_MAX && (cert = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
        certs[(*n)++] = cert;
    }
    ERR_clear_error(); /* the end of the file reads as an error */
    BIO_free(bio);
    if (*n == 0) {
        return ts_error_set(TS_ERR_CORRUPT, "%s holds no PEM certificate", path);
    }
    return TS_OK;
}

static void free_certs(X509 *certs[CERTS_MAX], size_t n)
{
    for (size_t i = 0; i < n; i++) {
        X509_free(certs[i]);
    }
}

/* A client context: the service's chain and store key, the broker checked for 127.0.0.1. */
static ts_err make_ctx(demo_observer *o, const char *keystore_uri, const char *cert_pem,
                       const char *trust_pem)
{
    X509 *chain[CERTS_MAX], *trust[CERTS_MAX];
    size_t nchain = 0, ntrust = 0;
    EVP_PKEY *key = NULL;
    OSSL_LIB_CTX *libctx = ts_provider_libctx();
    ts_err rv;

    if (libctx == NULL) {
        return TS_ERR_BACKEND;
    }
    rv = ts_keystore_open(keystore_uri, &o->ks);
    if (rv != TS_OK) {
        return ts_error_prefix(rv, "the instance key store");
    }
    rv = ts_keystore_evp_pkey(o->ks, TS_TLS_KEY_LABEL, &key);
    if (rv != TS_OK) {
        return ts_error_prefix(rv, "the service key \"%s\"", TS_TLS_KEY_LABEL);
    }
    rv = read_certs(cert_pem, chain, &nchain);
    if (rv == TS_OK) {
        rv = read_certs(trust_pem, trust, &ntrust);
    }
    if (rv != TS_OK) {
        goto done;
    }
    /* The key's operations run in the provider: the context lives in its library context. */
    o->ctx = SSL_CTX_new_ex(libctx, NULL, TLS_client_method());
    if (o->ctx == NULL || SSL_CTX_set_min_proto_version(o->ctx, TLS1_2_VERSION) != 1) {
        rv = ts_error_set_openssl(TS_ERR_CRYPTO, "cannot make a TLS context");
        goto done;
    }
    int ok = SSL_CTX_use_certificate(o->ctx, chain[0]) == 1;
    for (size_t i = 1; ok && i < nchain; i++) {
        ok = SSL_CTX_add1_chain_cert(o->ctx, chain[i]) == 1;
    }
    if (!ok || SSL_CTX_use_PrivateKey(o->ctx, key) != 1 || SSL_CTX_check_private_key(o->ctx) != 1) {
        rv = ts_error_set_openssl(TS_ERR_CRYPTO, "%s does not fit the key \"%s\"", cert_pem,
                                  TS_TLS_KEY_LABEL);
        goto done;
    }
    X509_STORE *store = SSL_CTX_get_cert_store(o->ctx);
    for (size_t i = 0; i < ntrust; i++) {
        if (X509_STORE_add_cert(store, trust[i]) != 1) {
            rv = ts_error_set_openssl(TS_ERR_CRYPTO, "cannot trust %s", trust_pem);
            goto done;
        }
    }
    /* RFC 6125: the broker is reached at an IP address, which its certificate must name. */
    if (X509_VERIFY_PARAM_set1_ip_asc(SSL_CTX_get0_param(o->ctx), BROKER_HOST) != 1) {
        rv = ts_error_set_openssl(TS_ERR_CRYPTO, "cannot set the broker's expected address");
        goto done;
    }
    SSL_CTX_set_verify(o->ctx, SSL_VERIFY_PEER, NULL);
done:
    EVP_PKEY_free(key);
    free_certs(chain, nchain);
    free_certs(trust, ntrust);
    return rv;
}

static int locked_int(demo_observer *o, const int *field)
{
    pthread_mutex_lock(&o->lock);
    int v = *field;
    pthread_mutex_unlock(&o->lock);
    return v;
}

/* Waits for the CONNACK; an error saying what ended the attempt. */
static ts_err wait_connack(demo_observer *o)
{
    long long deadline = demo_now_ms() + CONNACK_WAIT_MS;
    for (;;) {
        int connack = locked_int(o, &o->connack);
        int disconnected = locked_int(o, &o->disconnected);
        if (connack == 0) {
            return TS_OK;
        }
        if (connack > 0) {
            return ts_error_set(TS_ERR_AUTH, "the broker refused the service's identity: %s",
                                mosquitto_connack_string(connack));
        }
        if (disconnected > 0) {
            return ts_error_set(TS_ERR_AUTH,
                                "the broker closed the connection before accepting it (%s): see "
                                "its log",
                                mosquitto_strerror(disconnected - 1));
        }
        if (demo_now_ms() >= deadline) {
            return ts_error_set(TS_ERR_BACKEND, "no CONNACK from the broker within %d s",
                                CONNACK_WAIT_MS / 1000);
        }
        if (demo_sleep_ms(20) != 0) {
            return ts_error_set(TS_ERR_STATE, "interrupted");
        }
    }
}

static ts_err subscribe(demo_observer *o)
{
    static const char *const filters[] = {
        TS_TOPIC_ROOT "/+/+/" TS_TOPIC_TELEMETRY,
        TS_TOPIC_ROOT "/+/+/" TS_TOPIC_STATUS,
    };
    const int want = (int)(sizeof filters / sizeof filters[0]);
    for (int i = 0; i < want; i++) {
        int rc = mosquitto_subscribe(o->mosq, NULL, filters[i], 1);
        if (rc != MOSQ_ERR_SUCCESS) {
            return ts_error_set(TS_ERR_BACKEND, "cannot subscribe to %s: %s", filters[i],
                                mosquitto_strerror(rc));
        }
    }
    long long deadline = demo_now_ms() + SUBACK_WAIT_MS;
    while (locked_int(o, &o->subscribed) < want) {
        if (demo_now_ms() >= deadline) {
            return ts_error_set(TS_ERR_DENIED,
                                "the broker did not grant the service's subscriptions to %s and "
                                "%s within %d s",
                                filters[0], filters[1], SUBACK_WAIT_MS / 1000);
        }
        if (demo_sleep_ms(20) != 0) {
            return ts_error_set(TS_ERR_STATE, "interrupted");
        }
    }
    return TS_OK;
}

ts_err demo_observer_start(int port, const char *keystore_uri, const char *cert_pem,
                           const char *trust_pem, demo_observer **out)
{
    demo_observer *o = calloc(1, sizeof *o);
    ts_err rv;

    *out = NULL;
    if (o == NULL) {
        return ts_error_set(TS_ERR_NOMEM, "out of memory");
    }
    pthread_mutex_init(&o->lock, NULL);
    o->connack = -1;
    rv = make_ctx(o, keystore_uri, cert_pem, trust_pem);
    if (rv != TS_OK) {
        goto fail;
    }
    o->mosq = mosquitto_new(OBSERVER_CLIENT_ID, true, o);
    if (o->mosq == NULL) {
        rv = ts_error_set(TS_ERR_NOMEM, "cannot make an MQTT client: %s", strerror(errno));
        goto fail;
    }
    mosquitto_int_option(o->mosq, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
    /* Short messages: send each at once rather than behind Nagle's algorithm. */
    mosquitto_int_option(o->mosq, MOSQ_OPT_TCP_NODELAY, 1);
    /* Our context as it is: no defaults laid over it, no cafile needed. */
    mosquitto_int_option(o->mosq, MOSQ_OPT_SSL_CTX_WITH_DEFAULTS, 0);
    int rc = mosquitto_void_option(o->mosq, MOSQ_OPT_SSL_CTX, o->ctx);
    if (rc != MOSQ_ERR_SUCCESS) {
        rv = ts_error_set(TS_ERR_BACKEND, "cannot give the TLS context to libmosquitto: %s",
                          mosquitto_strerror(rc));
        goto fail;
    }
    mosquitto_connect_callback_set(o->mosq, on_connect);
    mosquitto_disconnect_callback_set(o->mosq, on_disconnect);
    mosquitto_subscribe_callback_set(o->mosq, on_subscribe);
    mosquitto_message_callback_set(o->mosq, on_message);
    ERR_clear_error();
    rc = mosquitto_connect(o->mosq, BROKER_HOST, port, KEEPALIVE_S);
    if (rc != MOSQ_ERR_SUCCESS) {
        rv = ts_error_set_openssl(TS_ERR_BACKEND, "cannot connect to %s:%d: %s", BROKER_HOST, port,
                                  rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(rc));
        goto fail;
    }
    rc = mosquitto_loop_start(o->mosq);
    if (rc != MOSQ_ERR_SUCCESS) {
        rv = ts_error_set(TS_ERR_BACKEND, "cannot start the MQTT thread: %s",
                          mosquitto_strerror(rc));
        goto fail;
    }
    o->loop_started = 1;
    rv = wait_connack(o);
    if (rv == TS_OK) {
        rv = subscribe(o);
    }
    if (rv != TS_OK) {
        goto fail;
    }
    *out = o;
    return TS_OK;
fail:
    demo_observer_free(o);
    return rv;
}

void demo_observer_watch(demo_observer *o, const char *uid)
{
    pthread_mutex_lock(&o->lock);
    if (o->ndev < DEMO_DEVICES_MAX) {
        watched *w = &o->dev[o->ndev++];
        memset(w, 0, sizeof *w);
        snprintf(w->uid, sizeof w->uid, "%s", uid);
    }
    pthread_mutex_unlock(&o->lock);
}

void demo_observer_seen(demo_observer *o, const char *uid, demo_seen *out)
{
    memset(out, 0, sizeof *out);
    if (o == NULL) {
        return;
    }
    pthread_mutex_lock(&o->lock);
    for (size_t i = 0; i < o->ndev; i++) {
        if (strcmp(o->dev[i].uid, uid) == 0) {
            *out = o->dev[i].seen;
        }
    }
    pthread_mutex_unlock(&o->lock);
}

unsigned demo_observer_others(demo_observer *o)
{
    if (o == NULL) {
        return 0;
    }
    pthread_mutex_lock(&o->lock);
    unsigned n = o->others;
    pthread_mutex_unlock(&o->lock);
    return n;
}

void demo_observer_free(demo_observer *o)
{
    if (o == NULL) {
        return;
    }
    if (o->mosq != NULL) {
        mosquitto_disconnect(o->mosq);
        if (o->loop_started) {
            /* After the disconnect the thread ends by itself, reconnect delay or not. */
            mosquitto_loop_stop(o->mosq, false);
        }
        mosquitto_destroy(o->mosq);
    }
    SSL_CTX_free(o->ctx);
    ts_keystore_free(o->ks);
    pthread_mutex_destroy(&o->lock);
    free(o);
}
