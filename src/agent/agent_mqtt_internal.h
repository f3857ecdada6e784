/*
 * `tessera-agent run` (ts_agent_run): the TLS context for the broker, the telemetry queue and
 * sources, and the endpoint syntax. The loop itself is in agent_mqtt.c.
 */
#ifndef TS_AGENT_AGENT_MQTT_INTERNAL_H
#define TS_AGENT_AGENT_MQTT_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "tessera/agent.h"

enum {
    AGENT_MQTT_HOST_MAX = 255,
    AGENT_TELEMETRY_MAX = 16 * 1024, /* bytes of one telemetry message */
};

/* --- TLS (agent_mqtt_tls.c) ------------------------------------------------------------------ */

/*
 * A client context for the broker at host: TLS 1.3, or 1.2 with ECDHE-ECDSA and AES-GCM only;
 * the broker's certificate must chain to roots (nothing from the system) and name host (a DNS
 * name or an IP address); the client certificate is cert with chain, its key the key-store key
 * through the provider, so the handshake signature is made in the store.
 */
TS_MUST_CHECK ts_err agent_mqtt_ssl_ctx(X509 *cert, STACK_OF(X509) * chain, EVP_PKEY *key,
                                        X509_STORE *roots, const char *host, SSL_CTX **out);

/* Parses HOST:PORT ("[v6]:PORT" for an IPv6 address); TS_ERR_INVALID saying why. */
TS_MUST_CHECK ts_err agent_mqtt_endpoint_parse(const char *text, char host[AGENT_MQTT_HOST_MAX + 1],
                                               int *port);

/* --- the telemetry queue (agent_mqtt_queue.c) ------------------------------------------------ */

typedef struct agent_tq_item {
    uint64_t seq;
    char *payload;
    size_t len;
    int mid; /* the MQTT message id while it waits for its PUBACK; 0: not sent */
} agent_tq_item;

/* Oldest first; bounded by cap. */
typedef struct agent_tq {
    agent_tq_item *items;
    size_t len, cap;
    uint64_t dropped;
} agent_tq;

TS_MUST_CHECK ts_err agent_tq_init(agent_tq *q, size_t cap);
void agent_tq_clear(agent_tq *q);

/*
 * Appends a message (taking payload). When the queue is full the oldest is dropped first, counted
 * in q->dropped, and its sequence number written to *dropped_seq (0 when none was dropped).
 */
void agent_tq_push(agent_tq *q, uint64_t seq, char *payload, size_t len, uint64_t *dropped_seq);

/* Removes the message sent as mid; writes its sequence number. 0 when no message has it. */
int agent_tq_ack(agent_tq *q, int mid, uint64_t *seq);

/* Marks every message unsent (after the connection is lost, all are sent again). */
void agent_tq_unsend(agent_tq *q);

/* Messages waiting for a PUBACK. */
size_t agent_tq_inflight(const agent_tq *q);

/* The oldest message not yet sent, or NULL. */
agent_tq_item *agent_tq_next(agent_tq *q);

/* --- telemetry sources (agent_mqtt_queue.c) -------------------------------------------------- */

/*
 * One telemetry message as compact JSON with "seq" and "time" set: from the program cmd (its
 * standard output, one JSON object, at most AGENT_TELEMETRY_MAX bytes, within 10 s) when cmd is
 * not NULL, else the system's uptime, load averages and memory from /proc. *json: OPENSSL_free().
 */
TS_MUST_CHECK ts_err agent_telemetry_make(const char *cmd, uint64_t seq, char **json, size_t *len);

#endif
