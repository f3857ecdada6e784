/* Inside the service's MQTT client (svc_mqtt.c: connection and thread; svc_mqtt_outbox.c:
 * commands out, results in). Everything here runs on the client's one thread. */
#ifndef TS_SVC_MQTT_INTERNAL_H
#define TS_SVC_MQTT_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#include <mosquitto.h>
#include <openssl/ssl.h>

#include "tessera/commands.h"

enum {
    SVC_MQTT_INFLIGHT_MAX = 64, /* commands published and not yet acknowledged */
};

typedef struct svc_mqtt_inflight {
    int mid;       /* the MQTT message id; 0: free slot */
    int64_t rowid; /* the command */
} svc_mqtt_inflight;

typedef struct ts_service_mqtt {
    ts_service_mqtt_config config; /* strings point at the copies below */
    char *host, *dir, *db_url, *trust_file;
    ts_ca *ca; /* this thread's own handle */
    SSL_CTX *ctx;
    struct mosquitto *mosq;
    pthread_t thread;
    atomic_int stop;
    int connected; /* CONNACK accepted */
    int socket_up; /* connect or reconnect returned success; the loop runs */
    int backoff;   /* seconds before the next reconnect */
    svc_mqtt_inflight inflight[SVC_MQTT_INFLIGHT_MAX];
} svc_mqtt;

/* One log line on standard error: "time level mqtt: message". Never pass secrets. */
void svc_mqtt_log(const char *level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The client TLS context: the instance's TLS key, DIR/tls/client.pem, the broker's trust. */
ts_err svc_mqtt_tls_ctx(ts_ca *ca, const ts_service_mqtt_config *c, SSL_CTX **out);

/* Once a second: expiry, then the outbox when connected. */
void svc_mqtt_tick(svc_mqtt *m, time_t now);

/* Forgets unacknowledged publications (after a lost connection): they go out again. */
void svc_mqtt_inflight_clear(svc_mqtt *m);

/* libmosquitto callbacks. */
void svc_mqtt_on_publish(struct mosquitto *mosq, void *arg, int mid);
void svc_mqtt_on_message(struct mosquitto *mosq, void *arg, const struct mosquitto_message *msg);

#endif
