/*
 * Commands out and results in, for the service's MQTT client (svc_mqtt.c). Topics are those of
 * include/tessera/command.h: tessera/<tenant>/<uid>/commands (QoS 1, not retained: a command
 * is for a device that is listening, and it expires) and tessera/<tenant>/<uid>/results.
 */
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

#include "common/error_internal.h"
#include "service/svc_mqtt_internal.h"

enum {
    OUTBOX_BATCH = 64, /* pending commands read per tick */
    TOPIC_MAX = 256,   /* bytes of a topic we publish to or accept */
};

static int inflight_has(const svc_mqtt *m, int64_t rowid)
{
    for (size_t i = 0; i < SVC_MQTT_INFLIGHT_MAX; i++) {
        if (m->inflight[i].mid != 0 && m->inflight[i].rowid == rowid) {
            return 1;
        }
    }
    return 0;
}

static svc_mqtt_inflight *inflight_free_slot(svc_mqtt *m)
{
    for (size_t i = 0; i < SVC_MQTT_INFLIGHT_MAX; i++) {
        if (m->inflight[i].mid == 0) {
            return &m->inflight[i];
        }
    }
    return NULL;
}

void svc_mqtt_inflight_clear(svc_mqtt *m)
{
    memset(m->inflight, 0, sizeof m->inflight);
}

void svc_mqtt_on_publish(struct mosquitto *mosq, void *arg, int mid)
{
    svc_mqtt *m = arg;
    (void)mosq;
    for (size_t i = 0; i < SVC_MQTT_INFLIGHT_MAX; i++) {
        if (m->inflight[i].mid == mid && mid != 0) {
            ts_command_row row;
            memset(&row, 0, sizeof row);
            row.rowid = m->inflight[i].rowid;
            m->inflight[i].mid = 0;
            if (ts_ca_command_mark_sent(m->ca, &row) != TS_OK) {
                svc_mqtt_log("error", "cannot mark command row %lld sent: %s", (long long)row.rowid,
                             ts_error_message());
            }
            return;
        }
    }
}

static void publish_one(svc_mqtt *m, const ts_command_row *c)
{
    char topic[TOPIC_MAX];
    unsigned char *der = NULL;
    size_t len = 0;
    svc_mqtt_inflight *slot = inflight_free_slot(m);
    if (slot == NULL || inflight_has(m, c->rowid)) {
        return;
    }
    snprintf(topic, sizeof topic, TS_TOPIC_ROOT "/%s/%s/" TS_TOPIC_COMMANDS, c->cmd.tenant,
             c->cmd.uid);
    if (ts_ca_command_sign(m->ca, c, &der, &len) != TS_OK) {
        svc_mqtt_log("error", "command %s: %s", c->cmd.id, ts_error_message());
        return;
    }
    int mid = 0;
    int rc = mosquitto_publish(m->mosq, &mid, topic, (int)len, der, 1, false);
    OPENSSL_free(der);
    if (rc != MOSQ_ERR_SUCCESS) {
        svc_mqtt_log("warn", "cannot publish command %s: %s", c->cmd.id, mosquitto_strerror(rc));
        return;
    }
    slot->mid = mid;
    slot->rowid = c->rowid;
    svc_mqtt_log("info", "published command %s seq %llu to %s", c->cmd.id,
                 (unsigned long long)c->cmd.seq, topic);
}

void svc_mqtt_tick(svc_mqtt *m, time_t now)
{
    size_t expired = 0, count = 0;
    ts_command_row *rows = NULL;

    if (ts_ca_command_expire(m->ca, now, &expired) != TS_OK) {
        svc_mqtt_log("error", "expiring commands: %s", ts_error_message());
    } else if (expired > 0) {
        svc_mqtt_log("info", "%zu command(s) expired", expired);
    }
    if (!m->connected) {
        return;
    }
    if (ts_ca_command_pending(m->ca, OUTBOX_BATCH, &rows, &count) != TS_OK) {
        svc_mqtt_log("error", "reading pending commands: %s", ts_error_message());
        return;
    }
    for (size_t i = 0; i < count; i++) {
        publish_one(m, &rows[i]);
    }
    OPENSSL_free(rows);
}

/* "tessera/<tenant>/<uid>/results" into its parts; 0 when it is not that shape. */
static int topic_parts(const char *topic, char tenant[TS_COMMAND_TENANT_MAX + 1],
                       char uid[TS_COMMAND_UID_MAX + 1])
{
    static const char root[] = TS_TOPIC_ROOT "/";
    static const char tail[] = "/" TS_TOPIC_RESULTS;
    size_t n = strlen(topic);
    if (n >= TOPIC_MAX || strncmp(topic, root, sizeof root - 1) != 0 ||
        n < sizeof root - 1 + sizeof tail - 1 || strcmp(topic + n - (sizeof tail - 1), tail) != 0) {
        return 0;
    }
    const char *t = topic + sizeof root - 1;
    const char *slash = strchr(t, '/');
    const char *end = topic + n - (sizeof tail - 1);
    if (slash == NULL || slash >= end) {
        return 0;
    }
    size_t tl = (size_t)(slash - t), ul = (size_t)(end - slash - 1);
    if (tl == 0 || tl > TS_COMMAND_TENANT_MAX || ul == 0 || ul > TS_COMMAND_UID_MAX ||
        memchr(slash + 1, '/', ul) != NULL) {
        return 0;
    }
    memcpy(tenant, t, tl);
    tenant[tl] = '\0';
    memcpy(uid, slash + 1, ul);
    uid[ul] = '\0';
    return 1;
}

void svc_mqtt_on_message(struct mosquitto *mosq, void *arg, const struct mosquitto_message *msg)
{
    svc_mqtt *m = arg;
    char tenant[TS_COMMAND_TENANT_MAX + 1], uid[TS_COMMAND_UID_MAX + 1];
    ts_command_row row;
    (void)mosq;

    if (msg == NULL || msg->topic == NULL || !topic_parts(msg->topic, tenant, uid)) {
        return;
    }
    if (msg->payloadlen <= 0 || msg->payloadlen > TS_COMMAND_ENVELOPE_MAX) {
        svc_mqtt_log("warn", "result on %s refused: %d bytes", msg->topic, msg->payloadlen);
        return;
    }
    ts_err rv =
        ts_ca_command_result(m->ca, tenant, uid, msg->payload, (size_t)msg->payloadlen, &row);
    if (rv != TS_OK) {
        svc_mqtt_log("warn", "result on %s: %s", msg->topic, ts_error_message());
        return;
    }
    svc_mqtt_log("info", "command %s of %s/%s: %s", row.cmd.id, tenant, uid,
                 ts_command_state_name(row.state));
}
