/*
 * Signed remote commands on the service side (docs/commands.md): an operator queues a command
 * for one device; the service signs it with the tenant's command key (include/tessera/command.h
 * has the envelope), publishes it on the device's MQTT commands topic, and records the signed
 * result the device sends back.
 *
 * A command is pending until the service's MQTT client has published it (sent), then done, failed
 * or refused when a verified result arrives, or expired when its expiry passes first. Each device
 * numbers its commands from 1 (seq), assigned in the transaction that stores the command, so two
 * writers never give out the same number. Creating a command and recording its result are
 * audited ("command.create", "command.result"); a result that fails verification is audited as
 * "command.result.refused" and changes nothing.
 *
 * The tenant's command key is a P-256 key "command-<tenant>" in the instance key store with a
 * certificate from the tenant's issuing CA under the built-in "command-signer" profile, whose
 * only extended key usage is TS_COMMAND_EKU_OID. It is made on first use ("command.key").
 *
 * Thread safety: like ts_ca, a handle belongs to one thread at a time.
 */
#ifndef TESSERA_COMMANDS_H
#define TESSERA_COMMANDS_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/x509.h>

#include "tessera/access.h"
#include "tessera/ca.h"
#include "tessera/command.h"
#include "tessera/error.h"
#include "tessera/export.h"
#include "tessera/store.h"

enum {
    TS_COMMAND_TTL_DEFAULT = 300,       /* seconds a command stays valid without a ttl */
    TS_COMMAND_TTL_MAX = 7 * 24 * 3600, /* the longest ttl: a week */
    TS_COMMAND_ACTOR_MAX = 128,         /* characters of who created a command */
    TS_COMMAND_LIST_MAX = 1000,         /* rows of one list */
    TS_COMMAND_KEY_LABEL_MAX = 48,      /* "command-" and a tenant name */
};

#define TS_COMMAND_KEY_PREFIX   "command-"
#define TS_TLS_CLIENT_CERT_FILE "tls/client.pem"
#define TS_TLS_CLIENT_CN        "tessera-service"

typedef enum ts_command_state {
    TS_COMMAND_PENDING = 1,
    TS_COMMAND_SENT = 2,
    TS_COMMAND_STATE_DONE = 3,
    TS_COMMAND_STATE_FAILED = 4,
    TS_COMMAND_STATE_REFUSED = 5,
    TS_COMMAND_EXPIRED = 6,
} ts_command_state;

typedef struct ts_command_row {
    int64_t rowid; /* the store's row id: list order and cursors */
    int64_t tenant_id;
    ts_command cmd; /* id, tenant, uid, seq, issued (created), expires, name, args */
    ts_command_state state;
    char output[TS_COMMAND_OUTPUT_MAX + 1];
    char error[TS_COMMAND_ERROR_MAX + 1];
    time_t result_time; /* 0 until a result or expiry */
    time_t sent;        /* 0 until published */
    char actor[TS_COMMAND_ACTOR_MAX + 1];
} ts_command_row;

/* "pending", "sent", "done", "failed", "refused", "expired"; "unknown" otherwise. */
TS_API const char *ts_command_state_name(ts_command_state state);

/* TS_ERR_INVALID unless name is [a-z][a-z0-9._-]* of at most TS_COMMAND_NAME_MAX characters. */
TS_API TS_MUST_CHECK ts_err ts_command_name_check(const char *name);

/* --- CA level (src/server/command*.c) --------------------------------------------------------- */

typedef struct ts_command_spec {
    const char *tenant;     /* NULL: the default tenant */
    const char *device_uid; /* registered in the tenant and enabled */
    const char *name;       /* ts_command_name_check */
    const char *args;       /* a compact JSON array of strings (ts_command_args_from_argv); NULL
                               or "" for none */
    int64_t ttl;            /* seconds, 1..TS_COMMAND_TTL_MAX; 0: TS_COMMAND_TTL_DEFAULT */
    const char *actor;      /* who asks (audit); NULL: the instance's actor */
} ts_command_spec;

/* Checks and stores a pending command with the device's next seq; audits "command.create". */
TS_API TS_MUST_CHECK ts_err ts_ca_command_create(ts_ca *ca, const ts_command_spec *spec,
                                                 ts_command_row *out);

/* One command of a device; TS_ERR_NOT_FOUND for another tenant's or device's. */
TS_API TS_MUST_CHECK ts_err ts_ca_command_get(ts_ca *ca, const char *tenant, const char *device_uid,
                                              const char *id, ts_command_row *out);

/* A device's commands, newest first, with rowid < before (0: from the newest), at most limit
 * (0: 100; at most TS_COMMAND_LIST_MAX); OPENSSL_free(*rows). */
TS_API TS_MUST_CHECK ts_err ts_ca_command_list(ts_ca *ca, const char *tenant,
                                               const char *device_uid, int64_t before, size_t limit,
                                               ts_command_row **rows, size_t *count);

/*
 * The signed envelope of a stored command (CMS DER, OPENSSL_free(*der)) with the tenant's
 * command key, made when missing. Signed fresh each time; nothing is stored.
 */
TS_API TS_MUST_CHECK ts_err ts_ca_command_sign(ts_ca *ca, const ts_command_row *row,
                                               unsigned char **der, size_t *der_len);

/* The tenant's command-key certificate (made with its key when missing); X509_free(*out). */
TS_API TS_MUST_CHECK ts_err ts_ca_command_key_cert(ts_ca *ca, const char *tenant, X509 **out);

/* Marks a pending command sent (no-op for one in another state). */
TS_API TS_MUST_CHECK ts_err ts_ca_command_mark_sent(ts_ca *ca, const ts_command_row *row);

/*
 * Records a signed result that arrived for topic_tenant/topic_uid: verified with
 * ts_command_result_verify() against the tenant's issuing CAs; its signer must be a current,
 * unrevoked certificate of that device (by issuer and serial in the store); it must name a
 * pending or sent command of that device by id, with the same seq, uid and tenant. Otherwise
 * TS_ERR_AUTH / TS_ERR_NOT_FOUND / TS_ERR_STATE saying why, audited as
 * "command.result.refused", and the command is unchanged. *out (may be NULL) gets the command
 * as recorded.
 */
TS_API TS_MUST_CHECK ts_err ts_ca_command_result(ts_ca *ca, const char *topic_tenant,
                                                 const char *topic_uid, const unsigned char *der,
                                                 size_t der_len, ts_command_row *out);

/* Marks every pending or sent command whose expiry passed (by now) expired; *count how many. */
TS_API TS_MUST_CHECK ts_err ts_ca_command_expire(ts_ca *ca, time_t now, size_t *count);

/* Pending commands of every tenant, oldest first, at most limit (the service's outbox). */
TS_API TS_MUST_CHECK ts_err ts_ca_command_pending(ts_ca *ca, size_t limit, ts_command_row **rows,
                                                  size_t *count);

/*
 * The service's MQTT client certificate DIR/tls/client.pem (leaf, then the issuing CA): the key
 * TS_TLS_KEY_LABEL, the default tenant's issuing CA, the built-in "service-client" profile (EKU
 * clientAuth), CN TS_TLS_CLIENT_CN. ts_ca_init() makes it; `tessera serve --mqtt` when missing.
 */
TS_API TS_MUST_CHECK ts_err ts_ca_tls_client_cert(ts_ca *ca);

/* --- The service's MQTT client (src/service/svc_mqtt*.c) ---------------------------------------
 */

typedef struct ts_service_mqtt ts_service_mqtt;

typedef struct ts_service_mqtt_config {
    const char *dir;    /* the instance */
    const char *db_url; /* NULL: the instance's own database */
    const char *host;   /* the broker: a DNS name or IP address its certificate names */
    unsigned port;
    const char *trust_file; /* PEM certificates to verify the broker with; NULL: the instance's
                               CAs (root and issuing) */
} ts_service_mqtt_config;

/*
 * Starts the service's MQTT thread: it connects to the broker over TLS (1.3 or 1.2 with AEAD
 * suites, the broker's certificate verified against the trust and host) with the key
 * TS_TLS_KEY_LABEL and DIR/tls/client.pem (made when missing), reconnects with backoff,
 * publishes every pending command signed (QoS 1, tessera/<tenant>/<uid>/commands) and marks it
 * sent on the broker's acknowledgement, records the results that arrive on
 * tessera/+/+/results, and expires old commands. Checks the configuration and the identity
 * before returning; the connection itself is made in the thread.
 */
TS_API TS_MUST_CHECK ts_err ts_service_mqtt_start(const ts_service_mqtt_config *config,
                                                  ts_service_mqtt **out);
/* Stops the thread (disconnecting cleanly) and frees; NULL is fine. */
TS_API void ts_service_mqtt_stop(ts_service_mqtt *m);

/* --- Store level (src/store/store_command.c); writes need an open transaction ---------------- */

/* Inserts with seq = the device's highest + 1; sets row->cmd.seq and row->rowid. */
TS_API TS_MUST_CHECK ts_err ts_store_command_insert(ts_store *store, ts_command_row *row);
TS_API TS_MUST_CHECK ts_err ts_store_command_get(ts_store *store, int64_t tenant_id,
                                                 const char *device_uid, const char *id,
                                                 ts_command_row *out);
/* device_uid NULL and state: every tenant's commands in that state, oldest first; otherwise the
 * device's, newest first, rowid < before (0: any). */
TS_API TS_MUST_CHECK ts_err ts_store_command_list(ts_store *store, int64_t tenant_id,
                                                  const char *device_uid, ts_command_state state,
                                                  int64_t before, size_t limit,
                                                  ts_command_row **rows, size_t *count);
/* Moves a command from one of the states in from_mask (bits 1U << state) to state, with the
 * result fields; TS_ERR_STATE when it is in no such state (nothing changed). */
TS_API TS_MUST_CHECK ts_err ts_store_command_settle(ts_store *store, int64_t rowid,
                                                    unsigned from_mask, ts_command_state state,
                                                    const char *output, const char *error,
                                                    time_t when);
/* Pending or sent commands with expires < now become expired; *count how many. */
TS_API TS_MUST_CHECK ts_err ts_store_command_expire(ts_store *store, time_t now, size_t *count);

/*
 * The tenant's command-key record (a setting): "pending:<unix time>" while one writer makes the
 * key and certificate, then the certificate's serial. claim inserts it (TS_ERR_EXISTS when
 * another writer has); drop deletes it only while it still holds value.
 */
TS_API TS_MUST_CHECK ts_err ts_store_command_key_claim(ts_store *store, int64_t tenant_id,
                                                       const char *value);
TS_API TS_MUST_CHECK ts_err ts_store_command_key_set(ts_store *store, int64_t tenant_id,
                                                     const char *value);
/* *value OPENSSL_free'd; TS_ERR_NOT_FOUND when none. */
TS_API TS_MUST_CHECK ts_err ts_store_command_key_get(ts_store *store, int64_t tenant_id,
                                                     char **value);
TS_API TS_MUST_CHECK ts_err ts_store_command_key_drop(ts_store *store, int64_t tenant_id,
                                                      const char *value);

#endif
