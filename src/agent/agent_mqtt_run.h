/* The state of one `tessera-agent run` (agent_mqtt.c: set-up; agent_mqtt_conn.c: the broker). */
#ifndef TS_AGENT_AGENT_MQTT_RUN_H
#define TS_AGENT_AGENT_MQTT_RUN_H

#include <limits.h>

#include <mosquitto.h>

#include "agent/agent_command_internal.h"
#include "agent/agent_mqtt_internal.h"
#include "tessera/command.h"

enum {
    RUN_WINDOW = 20,           /* telemetry messages waiting for a PUBACK at once */
    RUN_KEEPALIVE = 30,        /* seconds */
    RUN_CONNACK_TIMEOUT = 30,  /* seconds from connect to CONNACK */
    RUN_BACKOFF_MAX = 60,      /* seconds */
    RUN_REENROLL_CHECK = 3600, /* seconds between re-enrollment checks */
    RUN_TOPIC_MAX = 160,
};

typedef enum run_phase { PHASE_IDLE = 0, PHASE_CONNECTING, PHASE_UP } run_phase;

typedef struct run_state {
    ts_agent *agent;
    const ts_agent_run_opts *opts;
    char uid[TS_AGENT_UID_MAX + 1];
    char tenant[TS_COMMAND_TENANT_MAX + 1];
    const char *est_tenant; /* the tenant for EST, NULL: the service's default */
    char host[AGENT_MQTT_HOST_MAX + 1];
    int port;
    char trust_path[PATH_MAX];
    X509_STORE *roots;
    char *server; /* for re-enrollment; NULL: none known */
    unsigned threshold_days;
    /* the current identity */
    X509 *cert;
    STACK_OF(X509) * chain;
    EVP_PKEY *key;
    time_t not_after;
    int reload; /* re-enrolled (the new identity loaded): reconnect with it */
    char topic_telemetry[RUN_TOPIC_MAX], topic_status[RUN_TOPIC_MAX];
    char topic_commands[RUN_TOPIC_MAX], topic_results[RUN_TOPIC_MAX];
    /* the connection */
    struct mosquitto *mosq;
    run_phase phase;
    int lost;    /* the connection ended; set by callbacks, handled by the loop */
    int lost_rc; /* its MOSQ_ERR_* */
    int refused; /* the broker's CONNACK refused us */
    double connect_started;
    double backoff;      /* seconds, 1 to RUN_BACKOFF_MAX */
    double next_attempt; /* monotonic seconds */
    char last_log[256];  /* libmosquitto's last error line */
    int offline_mid;     /* the clean shutdown's status message */
    int offline_acked;
    /* telemetry */
    agent_tq q;
    uint64_t made, acked;
    double next_telemetry;
} run_state;

/* Monotonic seconds. */
double run_now(void);

/* One event line through opts->event. */
void run_emit(run_state *st, int is_error, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A due (force 0) or forced re-enrollment (1; 2: with a new key); on renewal out holds
 * "reenrolled serial HEX" or "rekeyed serial HEX", the new identity is loaded into st and the loop
 * reconnects with it (st->reload). */
TS_MUST_CHECK ts_err run_reenroll(run_state *st, int force, char *out, size_t size);

/* Starts a connection attempt (PHASE_CONNECTING), or reports why not and schedules the next. */
void run_connect(run_state *st);

/* Sends what the window allows; runs libmosquitto for up to wait_ms. */
void run_service(run_state *st, int wait_ms);

/* Handles a lost or refused connection: reports it, frees it, schedules the next attempt. */
void run_handle_lost(run_state *st);

/* A clean end: status offline (waited for), DISCONNECT, the connection freed. */
void run_disconnect(run_state *st, const char *why);

#endif
