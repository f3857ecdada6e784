/*
 * Signed remote commands on the device (docs/agent.md "Running: MQTT telemetry and commands"):
 * an envelope is verified (include/tessera/command.h), its sequence number checked against and
 * raised in the key-store counter AGENT_COMMAND_COUNTER before anything runs, then a registered
 * handler runs and a result signed with the identity key answers it.
 */
#ifndef TS_AGENT_AGENT_COMMAND_INTERNAL_H
#define TS_AGENT_AGENT_COMMAND_INTERNAL_H

#include <stddef.h>
#include <time.h>

#include <openssl/x509.h>

#include "agent/agent_fw_offer.h"
#include "tessera/agent.h"
#include "tessera/command.h"

#define AGENT_COMMAND_COUNTER "command.seq"

/* What a command runs against; everything borrowed for the call. */
typedef struct agent_cmd_ctx {
    ts_agent *agent;        /* the key store (counter) and the identity (status) */
    X509_STORE *roots;      /* the trust roots */
    X509 *cert;             /* the device's current certificate */
    STACK_OF(X509) * chain; /* and its chain, sent with each result */
    EVP_PKEY *key;          /* the identity key, through the provider */
    const char *uid;        /* the device UID */
    const char *tenant;     /* the device's tenant (results carry it) */
    const char *trust_file; /* for the status handler's chain check; may be NULL */
    /* The "reenroll" handler: a forced re-enrollment, with a new key when rekey is set; writes
     * the output, "reenrolled serial HEX" or "rekeyed serial HEX". NULL: none. */
    ts_err (*reenroll)(void *arg, int rekey, char *out, size_t size);
    void *reenroll_arg;
    /* The "fw-update" handler: downloads and applies an offered update (agent_fw_offer.h) to
     * the inactive slot; writes a one-line summary. NULL: none. */
    ts_err (*fw_update)(void *arg, const agent_fw_offer *offer, char *summary, size_t size);
    void *fw_update_arg;
} agent_cmd_ctx;

/*
 * Handles one envelope received at time now: verification, the replay check (the counter is
 * raised before the handler runs), the handler. *cmd gets what could be read of the command (for
 * reporting) and *res the result to sign, whose error starts with one stable word for a refusal:
 * "forged", "foreign", "expired", "malformed", "replayed". Returns the result's status.
 */
ts_command_status agent_command_process(const agent_cmd_ctx *c, const unsigned char *der,
                                        size_t len, time_t now, ts_command *cmd,
                                        ts_command_result *res);

/* Signs res with the identity key (ts_command_result_sign). *der: OPENSSL_free(). */
TS_MUST_CHECK ts_err agent_command_result_der(const agent_cmd_ctx *c, ts_command_result *res,
                                              unsigned char **der, size_t *len);

#endif
