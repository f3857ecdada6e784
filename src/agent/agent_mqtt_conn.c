/*
 * `tessera-agent run`: the connection to the broker with libmosquitto, driven by the run loop in
 * agent_mqtt.c (mosquitto_loop, no thread of libmosquitto's own). One mosquitto handle per
 * connection: the telemetry queue, not libmosquitto, holds what is still to be acknowledged, so a
 * new connection (after a loss or a re-enrollment) simply sends it again.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "agent/agent_mqtt_run.h"
#include "common/error_internal.h"

static void on_log(struct mosquitto *mosq, void *arg, int level, const char *line)
{
    run_state *st = arg;
    (void)mosq;
    if ((level & (MOSQ_LOG_ERR | MOSQ_LOG_WARNING)) != 0 && line != NULL) {
        snprintf(st->last_log, sizeof st->last_log, "%s", line);
    }
}

static void publish_status(run_state *st)
{
    char payload[256], na[32];
    struct tm tm;

    if (gmtime_r(&st->not_after, &tm) == NULL ||
        strftime(na, sizeof na, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0) {
        snprintf(na, sizeof na, "unknown");
    }
    snprintf(payload, sizeof payload,
             "{\"state\":\"online\",\"agent\":\"%s\",\"uid\":\"%s\",\"cert_not_after\":\"%s\"}",
             TS_AGENT_VERSION, st->uid, na);
    int rc =
        mosquitto_publish(st->mosq, NULL, st->topic_status, (int)strlen(payload), payload, 1, true);
    if (rc != MOSQ_ERR_SUCCESS) {
        run_emit(st, 1, "cannot publish the status: %s", mosquitto_strerror(rc));
    }
}

static void on_connect(struct mosquitto *mosq, void *arg, int rc)
{
    run_state *st = arg;

    if (rc != 0) {
        run_emit(st, 0, "refused by broker: %s", mosquitto_connack_string(rc));
        st->refused = 1;
        st->lost = 1;
        st->lost_rc = MOSQ_ERR_CONN_REFUSED;
        return;
    }
    st->phase = PHASE_UP;
    st->backoff = 1;
    st->last_log[0] = '\0';
    run_emit(st, 0, "connected %s:%d", st->host, st->port);
    publish_status(st);
    rc = mosquitto_subscribe(mosq, NULL, st->topic_commands, 1);
    if (rc != MOSQ_ERR_SUCCESS) {
        run_emit(st, 1, "cannot subscribe to %s: %s", st->topic_commands, mosquitto_strerror(rc));
    }
}

static void on_disconnect(struct mosquitto *mosq, void *arg, int rc)
{
    run_state *st = arg;
    (void)mosq;
    if (!st->lost) {
        st->lost = 1;
        st->lost_rc = rc;
    }
}

static void on_publish(struct mosquitto *mosq, void *arg, int mid)
{
    run_state *st = arg;
    uint64_t seq = 0;
    (void)mosq;
    if (agent_tq_ack(&st->q, mid, &seq)) {
        st->acked++;
        run_emit(st, 0, "telemetry %llu sent", (unsigned long long)seq);
    } else if (st->offline_mid != 0 && mid == st->offline_mid) {
        st->offline_acked = 1;
    }
}

static ts_err command_reenroll(void *arg, int rekey, char *out, size_t size)
{
    return run_reenroll(arg, 1 + rekey, out, size);
}

static ts_err command_fw_update(void *arg, const agent_fw_offer *offer, char *summary, size_t size)
{
    run_state *st = arg;
    return agent_fw_offer_apply(st->agent, st->opts->state_dir, st->trust_path, offer, summary,
                                size);
}

static void on_message(struct mosquitto *mosq, void *arg, const struct mosquitto_message *msg)
{
    run_state *st = arg;
    agent_cmd_ctx c;
    ts_command cmd;
    ts_command_result res;
    unsigned char *der = NULL;
    size_t der_len = 0;
    int rc;

    if (msg->topic == NULL || strcmp(msg->topic, st->topic_commands) != 0) {
        return;
    }
    memset(&c, 0, sizeof c);
    c.agent = st->agent;
    c.roots = st->roots;
    c.cert = st->cert;
    c.chain = st->chain;
    c.key = st->key;
    c.uid = st->uid;
    c.tenant = st->tenant;
    c.trust_file = st->trust_path;
    c.reenroll = command_reenroll;
    c.reenroll_arg = st;
    c.fw_update = command_fw_update;
    c.fw_update_arg = st;
    if (msg->payloadlen <= 0 || msg->payloadlen > TS_COMMAND_ENVELOPE_MAX) {
        static const unsigned char empty = 0;
        /* Not an envelope: refused like any malformed one (verification says so). */
        (void)agent_command_process(&c, &empty, 0, time(NULL), &cmd, &res);
    } else {
        (void)agent_command_process(&c, msg->payload, (size_t)msg->payloadlen, time(NULL), &cmd,
                                    &res);
    }
    /* A re-enrollment may have replaced the identity the result is signed with. */
    c.cert = st->cert;
    c.chain = st->chain;
    c.key = st->key;
    if (res.status == TS_COMMAND_DONE) {
        run_emit(st, 0, "command %s %s: done", res.id, cmd.name);
    } else if (res.status == TS_COMMAND_FAILED) {
        run_emit(st, 0, "command %s %s: failed: %s", res.id, cmd.name, res.error);
    } else {
        run_emit(st, 0, "command %s %s: refused: %s", res.id[0] != '\0' ? res.id : "-",
                 cmd.name[0] != '\0' ? cmd.name : "-", res.error);
    }
    if (agent_command_result_der(&c, &res, &der, &der_len) != TS_OK) {
        run_emit(st, 1, "cannot sign the result of command %s: %s", res.id, ts_error_message());
        ts_error_clear();
        return;
    }
    rc = mosquitto_publish(mosq, NULL, st->topic_results, (int)der_len, der, 1, false);
    if (rc != MOSQ_ERR_SUCCESS) {
        run_emit(st, 1, "cannot publish the result of command %s: %s", res.id,
                 mosquitto_strerror(rc));
    }
    OPENSSL_free(der);
}

/* The next attempt: the backoff with up to a quarter more at random, then the backoff doubles. */
static void schedule(run_state *st)
{
    unsigned char r = 0;
    double jitter;

    if (RAND_bytes(&r, 1) != 1) {
        r = 128;
    }
    jitter = st->backoff * 0.25 * (double)r / 255.0;
    st->next_attempt = run_now() + st->backoff + jitter;
    st->backoff = st->backoff * 2 > RUN_BACKOFF_MAX ? RUN_BACKOFF_MAX : st->backoff * 2;
}

static void drop_connection(run_state *st)
{
    if (st->mosq != NULL) {
        mosquitto_destroy(st->mosq);
        st->mosq = NULL;
    }
    st->phase = PHASE_IDLE;
    st->lost = 0;
    st->lost_rc = 0;
    st->refused = 0;
    agent_tq_unsend(&st->q);
}

static const char *reason(run_state *st, int rc, char *buf, size_t size)
{
    if (st->last_log[0] != '\0') {
        snprintf(buf, size, "%s (%s)", mosquitto_strerror(rc), st->last_log);
    } else {
        snprintf(buf, size, "%s", mosquitto_strerror(rc));
    }
    st->last_log[0] = '\0';
    return buf;
}

void run_connect(run_state *st)
{
    SSL_CTX *ctx = NULL;
    char why[400];
    int rc;
    ts_err rv;

    st->mosq = mosquitto_new(st->uid, true, st);
    if (st->mosq == NULL) {
        run_emit(st, 0, "disconnected: cannot make an MQTT client");
        schedule(st);
        return;
    }
    mosquitto_log_callback_set(st->mosq, on_log);
    mosquitto_connect_callback_set(st->mosq, on_connect);
    mosquitto_disconnect_callback_set(st->mosq, on_disconnect);
    mosquitto_publish_callback_set(st->mosq, on_publish);
    mosquitto_message_callback_set(st->mosq, on_message);
    rv = agent_mqtt_ssl_ctx(st->cert, st->chain, st->key, st->roots, st->host, &ctx);
    if (rv != TS_OK) {
        run_emit(st, 0, "disconnected: %s", ts_error_message());
        ts_error_clear();
        drop_connection(st);
        schedule(st);
        return;
    }
    rc = mosquitto_int_option(st->mosq, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
    if (rc == MOSQ_ERR_SUCCESS) {
        rc = mosquitto_int_option(st->mosq, MOSQ_OPT_TCP_NODELAY, 1);
    }
    if (rc == MOSQ_ERR_SUCCESS) {
        rc = mosquitto_int_option(st->mosq, MOSQ_OPT_SSL_CTX_WITH_DEFAULTS, 0);
    }
    if (rc == MOSQ_ERR_SUCCESS) {
        rc = mosquitto_void_option(st->mosq, MOSQ_OPT_SSL_CTX, ctx); /* takes a reference */
    }
    SSL_CTX_free(ctx);
    if (rc == MOSQ_ERR_SUCCESS) {
        static const char offline[] = "{\"state\":\"offline\"}";
        rc = mosquitto_will_set(st->mosq, st->topic_status, (int)strlen(offline), offline, 1, true);
    }
    if (rc == MOSQ_ERR_SUCCESS) {
        st->connect_started = run_now();
        rc = mosquitto_connect(st->mosq, st->host, st->port, RUN_KEEPALIVE);
    }
    if (rc != MOSQ_ERR_SUCCESS) {
        run_emit(st, 0, "disconnected: cannot connect to %s:%d: %s", st->host, st->port,
                 reason(st, rc, why, sizeof why));
        drop_connection(st);
        schedule(st);
        return;
    }
    st->phase = PHASE_CONNECTING;
}

void run_service(run_state *st, int wait_ms)
{
    agent_tq_item *item;
    int rc;

    while (st->phase == PHASE_UP && !st->lost && agent_tq_inflight(&st->q) < RUN_WINDOW &&
           (item = agent_tq_next(&st->q)) != NULL) {
        int mid = 0;
        rc = mosquitto_publish(st->mosq, &mid, st->topic_telemetry, (int)item->len, item->payload,
                               1, false);
        if (rc != MOSQ_ERR_SUCCESS) {
            st->lost = 1;
            st->lost_rc = rc;
            break;
        }
        item->mid = mid;
    }
    if (st->mosq == NULL || st->lost) {
        return;
    }
    rc = mosquitto_loop(st->mosq, wait_ms, 1);
    if (rc != MOSQ_ERR_SUCCESS && !st->lost) {
        st->lost = 1;
        st->lost_rc = rc;
    }
    if (st->phase == PHASE_CONNECTING && !st->lost &&
        run_now() - st->connect_started > RUN_CONNACK_TIMEOUT) {
        snprintf(st->last_log, sizeof st->last_log, "no CONNACK within %d s", RUN_CONNACK_TIMEOUT);
        st->lost = 1;
        st->lost_rc = MOSQ_ERR_TIMEOUT;
    }
}

void run_handle_lost(run_state *st)
{
    char why[400];

    if (!st->refused) {
        run_emit(st, 0, "disconnected: %s", reason(st, st->lost_rc, why, sizeof why));
    }
    drop_connection(st);
    schedule(st);
}

void run_disconnect(run_state *st, const char *why)
{
    static const char offline[] = "{\"state\":\"offline\"}";
    double deadline = run_now() + 2;

    if (st->mosq != NULL && st->phase == PHASE_UP && !st->lost) {
        st->offline_acked = 0;
        st->offline_mid = 0;
        if (mosquitto_publish(st->mosq, &st->offline_mid, st->topic_status, (int)strlen(offline),
                              offline, 1, true) == MOSQ_ERR_SUCCESS) {
            while (!st->offline_acked && !st->lost && run_now() < deadline) {
                if (mosquitto_loop(st->mosq, 100, 1) != MOSQ_ERR_SUCCESS) {
                    break;
                }
            }
        }
        (void)mosquitto_disconnect(st->mosq);
        /* Let the DISCONNECT go out. */
        (void)mosquitto_loop(st->mosq, 10, 1);
        st->offline_mid = 0;
        run_emit(st, 0, "disconnected: %s", why);
    }
    drop_connection(st);
}
