/*
 * Signed remote commands (docs/commands.md): the envelope a tenant's command key signs for one
 * device, and the result the device signs back with its identity key.
 *
 * Both are CMS SignedData (RFC 5652) in DER with the content attached and the signer's
 * certificate (then its chain) included, so `openssl cms -verify -inform DER` reads them. The
 * content is one JSON object:
 *
 *   command  {"v":1,"type":"command","id","tenant","uid","seq","issued","expires","name","args"}
 *   result   {"v":1,"type":"result","id","tenant","uid","seq","time","status","output","error"}
 *
 * A command key's certificate is issued by the tenant's issuing CA and carries the extended key
 * usage TS_COMMAND_EKU_OID, which no other Tessera profile uses; a device accepts a command only
 * from a certificate with that usage, issued by the CA that issued its own certificate.
 *
 * MQTT topics (the broker plugin keeps each device under its own prefix):
 *   tessera/<tenant>/<uid>/telemetry   device -> cloud
 *   tessera/<tenant>/<uid>/status      device -> cloud (retained; the will says "offline")
 *   tessera/<tenant>/<uid>/commands    service -> device: command envelopes
 *   tessera/<tenant>/<uid>/results     device -> service: signed results
 *
 * Every call returns TS_OK or an error whose words are in ts_error_message().
 */
#ifndef TESSERA_COMMAND_H
#define TESSERA_COMMAND_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "tessera/error.h"
#include "tessera/export.h"

/* A UUID-based OID (ITU-T X.667, arc 2.25): "Tessera command signing". */
#define TS_COMMAND_EKU_OID "2.25.239523024646244241113312767600684709737"

#define TS_TOPIC_ROOT      "tessera"
#define TS_TOPIC_TELEMETRY "telemetry"
#define TS_TOPIC_STATUS    "status"
#define TS_TOPIC_COMMANDS  "commands"
#define TS_TOPIC_RESULTS   "results"

enum {
    TS_COMMAND_VERSION = 1,
    TS_COMMAND_ID_MAX = 40,          /* characters of a command id: [A-Za-z0-9-] */
    TS_COMMAND_TENANT_MAX = 32,      /* characters of a tenant name (as TS_TENANT_NAME_MAX) */
    TS_COMMAND_UID_MAX = 64,         /* characters of a device UID: [A-Za-z0-9._:-] */
    TS_COMMAND_NAME_MAX = 32,        /* characters of a command name: [a-z][a-z0-9._-]* */
    TS_COMMAND_ARGS_MAX = 4096,      /* bytes of the arguments as compact JSON */
    TS_COMMAND_OUTPUT_MAX = 4096,    /* bytes of a result's output */
    TS_COMMAND_ERROR_MAX = 256,      /* bytes of a result's error text */
    TS_COMMAND_ENVELOPE_MAX = 32768, /* bytes of one signed envelope or result (DER) */
};

typedef struct ts_command {
    char id[TS_COMMAND_ID_MAX + 1];         /* assigned by the service */
    char tenant[TS_COMMAND_TENANT_MAX + 1]; /* the device's tenant */
    char uid[TS_COMMAND_UID_MAX + 1];       /* the one device it is for */
    uint64_t seq;                           /* per device, from 1, only grows */
    int64_t issued;                         /* Unix time the service signed it */
    int64_t expires;                        /* Unix time after which it must not run */
    char name[TS_COMMAND_NAME_MAX + 1];
    char args[TS_COMMAND_ARGS_MAX + 1]; /* a JSON array of strings, compact; "[]" for none */
} ts_command;

typedef enum ts_command_status {
    TS_COMMAND_DONE = 0,    /* the handler ran and succeeded */
    TS_COMMAND_FAILED = 1,  /* the handler ran and failed, or there is no such handler */
    TS_COMMAND_REFUSED = 2, /* not run: forged, replayed, expired, foreign or malformed */
} ts_command_status;

typedef struct ts_command_result {
    char id[TS_COMMAND_ID_MAX + 1]; /* the command's; "" when the envelope was unreadable */
    char tenant[TS_COMMAND_TENANT_MAX + 1];
    char uid[TS_COMMAND_UID_MAX + 1]; /* the device that signs the result */
    uint64_t seq;                     /* the command's; 0 when unknown */
    int64_t time;                     /* Unix time the device signed it */
    ts_command_status status;
    char output[TS_COMMAND_OUTPUT_MAX + 1]; /* the handler's output (text) */
    char error[TS_COMMAND_ERROR_MAX + 1];   /* why it failed or was refused; "" when done */
} ts_command_result;

/* "done", "failed" or "refused"; NULL for another value. */
TS_API const char *ts_command_status_name(ts_command_status status);

/* Parses a status name; TS_ERR_INVALID for an unknown one. */
TS_API TS_MUST_CHECK ts_err ts_command_status_parse(const char *name, ts_command_status *out);

/*
 * Makes the compact JSON array of strings for ts_command.args from argv (argc may be 0).
 * TS_ERR_LIMIT when it would not fit in TS_COMMAND_ARGS_MAX bytes.
 */
TS_API TS_MUST_CHECK ts_err ts_command_args_from_argv(int argc, const char *const *argv,
                                                      char out[TS_COMMAND_ARGS_MAX + 1]);

/*
 * Checks every field of cmd (characters, lengths, seq >= 1, expires > issued, args a JSON array
 * of strings), then signs it with key, whose certificate cert (and chain, which may be NULL) goes
 * into the envelope. *der is freed with OPENSSL_free().
 */
TS_API TS_MUST_CHECK ts_err ts_command_sign(const ts_command *cmd, EVP_PKEY *key, X509 *cert,
                                            STACK_OF(X509) * chain, unsigned char **der,
                                            size_t *der_len);

/*
 * Checks an envelope received by the device whose own certificate is device_cert:
 *   - the CMS signature, by a certificate that chains to roots at time now (TS_ERR_AUTH);
 *   - that certificate has the extended key usage TS_COMMAND_EKU_OID (TS_ERR_AUTH) and was
 *     issued by the CA that issued device_cert (same issuer name and authority key id;
 *     TS_ERR_FOREIGN otherwise);
 *   - the content is a well-formed command (TS_ERR_INVALID) for expect_uid (TS_ERR_FOREIGN);
 *   - now is before its expiry (TS_ERR_EXPIRED).
 * The sequence number is left to the caller, who keeps the highest one run (a key-store
 * counter). Whatever fields could be read are in *out even on failure (all zero otherwise), so
 * a refusal can name the command; fields from an unverified envelope are only for reporting.
 */
TS_API TS_MUST_CHECK ts_err ts_command_verify(const unsigned char *der, size_t der_len,
                                              X509_STORE *roots, X509 *device_cert,
                                              const char *expect_uid, time_t now, ts_command *out);

/* Checks every field of r, then signs it like ts_command_sign() (the device's identity key). */
TS_API TS_MUST_CHECK ts_err ts_command_result_sign(const ts_command_result *r, EVP_PKEY *key,
                                                   X509 *cert, STACK_OF(X509) * chain,
                                                   unsigned char **der, size_t *der_len);

/*
 * Checks a result: the CMS signature, by a certificate that chains to roots at time now
 * (X509_V_FLAG_PARTIAL_CHAIN: roots may hold just the tenant's issuing CA) and whose subject CN
 * is the result's uid (TS_ERR_AUTH otherwise); the content well-formed (TS_ERR_INVALID).
 * *signer (when not NULL) gets the signer's certificate, for the caller's revocation check;
 * free it with X509_free().
 */
TS_API TS_MUST_CHECK ts_err ts_command_result_verify(const unsigned char *der, size_t der_len,
                                                     X509_STORE *roots, time_t now,
                                                     ts_command_result *out, X509 **signer);

#endif
