/*
 * Provisioning sessions, inside the agent: the requests the service sends and their results in a
 * form independent of the wire (agent_session_wire.c maps them to and from proto/), the request
 * handlers (agent_session_exec.c), the status report (agent_session_report.c), the service's
 * certificate against the session's CRL (agent_session_crl.c) and the HTTPS exchange
 * (agent_session_http.c).
 */
#ifndef TS_AGENT_AGENT_SESSION_INTERNAL_H
#define TS_AGENT_AGENT_SESSION_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/x509.h>

#include "agent/agent_internal.h"
#include "tessera/datastore.h"
#include "tessera/fota.h"

enum { SESS_MESSAGE_MAX = 256 };

/* What a request asks of which endpoint. */
typedef enum sess_op {
    SESS_KS_IMPORT = 1,     /* key store: an end-to-end encrypted key (docs/import.md) */
    SESS_KS_PUT_OBJECT = 2, /* key store: write (replace) a data object */
    SESS_KS_DELETE_OBJECT = 3,
    SESS_KS_GENKEY_CSR = 4,  /* key store: generate a key, return a CSR signed by it */
    SESS_KS_READ_PUBLIC = 5, /* key store: a public key or a non-secret data object */
    SESS_DS_READ = 6,        /* datastore: one entry */
    SESS_DS_BEGIN = 7,       /* datastore: allocate a transaction */
    SESS_DS_PUT = 8,         /* datastore: write a chunk (put, append or delete) */
    SESS_DS_COMMIT = 9,
    SESS_AGENT_REENROLL = 10,
    SESS_AGENT_REPORT = 11,
    SESS_AGENT_FW_UPDATE = 12,
} sess_op;

/* A datastore entry in a request or a result. */
typedef struct sess_entry {
    const char *name;
    ts_datastore_type type;
    const uint8_t *value;
    size_t len;
    int deleted; /* DS_PUT: delete the entry */
} sess_entry;

/* One request; pointers borrow from the decoded message. */
typedef struct sess_request {
    uint64_t id;
    sess_op op;
    const char *label; /* key-store object label */
    const uint8_t *data;
    size_t len;
    unsigned secret;           /* KS_PUT_OBJECT: a secret object */
    ts_curve curve;            /* KS_GENKEY_CSR; 0: P-256 */
    const sess_entry *entries; /* DS_PUT */
    size_t entry_count;
    const char *const *names; /* DS_READ; none: every entry */
    size_t name_count;
    int force; /* AGENT_REENROLL: even when not due */
    int rekey; /* AGENT_REENROLL: with a new key (ts_agent_est_opts.rekey) */
} sess_request;

/* One result. data and entries (with their names and values) are owned: sess_result_clear(). */
typedef struct sess_result {
    uint64_t id;
    ts_err code; /* TS_OK, or the refusal */
    char message[SESS_MESSAGE_MAX];
    uint8_t *data; /* KS_GENKEY_CSR: request DER; KS_READ_PUBLIC: SPKI DER or the object */
    size_t len;
    char label[TS_LABEL_MAX + 1]; /* KS_IMPORT: where the key was stored */
    sess_entry *entries;          /* DS_READ */
    size_t entry_count;
    uint64_t generation; /* DS_COMMIT: the new generation */
    int renewed;         /* AGENT_REENROLL */
    int aborted;         /* not carried out: an earlier request of its message failed */
} sess_result;

/* Datastore entries that say how to reach the service are staged (docs/agent.md, Sessions). */
#define SESS_STAGED_SERVER "staged.server.url"
#define SESS_STAGED_TRUST  "staged.trust.roots"

/* What the handlers act on, for the life of one session. */
typedef struct sess_ctx {
    ts_agent *agent;
    ts_datastore *ds;      /* open on the state directory */
    ts_datastore_txn *txn; /* the open datastore transaction, if any */
    EVP_PKEY *sender;      /* the provisioning key imports must be signed by; NULL: none */
    char sender_error[SESS_MESSAGE_MAX]; /* why there is none */
    ts_agent_est_opts est;   /* for AGENT_REENROLL: the session's server and trust file */
    unsigned threshold_days; /* for AGENT_REENROLL */
    const char *state_dir;
} sess_ctx;

/* Loads the tenant's provisioning key from the key store (TS_AGENT_RTP_SENDER_LABEL) into
 * ctx->sender, or records in ctx->sender_error why imports cannot be verified. */
void sess_ctx_load_sender(sess_ctx *ctx);

/* Runs one request; never fails as a call: a refusal is res->code with res->message. */
void sess_execute(sess_ctx *ctx, const sess_request *req, sess_result *res);

/* Frees res->data and res->entries and clears res. */
void sess_result_clear(sess_result *res);

/* Ends the open datastore transaction without committing (a session that ends or fails). */
void sess_ctx_abort(sess_ctx *ctx);

/* --- the status report (agent_session_report.c) ----------------------------------------------- */

enum { SESS_ERRORS_MAX = 4, SESS_FIRMWARE_MAX = 64 };

typedef struct sess_report {
    char uid[TS_AGENT_UID_MAX + 1];
    const char *agent_version;
    char firmware[SESS_FIRMWARE_MAX + 1]; /* the running image's version, else the datastore's
                                           * firmware.version, else "unknown" */
    char hardware[TS_FW_HW_MAX + 1];      /* the firmware slots' hardware id, else fw.hw; or "" */
    ts_keystore_entry *objects;           /* OPENSSL_free */
    size_t object_count;
    const char *backend; /* "soft" or "pkcs11" */
    unsigned features;   /* SESS_FEATURE_* */
    uint64_t ds_generation;
    unsigned ds_version;
    char ds_status[160];
    int enrolled;
    time_t cert_not_after;
    uint64_t identity_generation;
    char errors[SESS_ERRORS_MAX][SESS_MESSAGE_MAX]; /* the last errors, newest first */
    size_t error_count;
} sess_report;

#define SESS_FEATURE_IMPORT     (1U << 0) /* end-to-end encrypted import */
#define SESS_FEATURE_P384       (1U << 1)
#define SESS_FEATURE_COUNTERS   (1U << 2)
#define SESS_FEATURE_DATASTORE  (1U << 3)
#define SESS_FEATURE_STAGED_URL (1U << 4)

#define SESS_FIRMWARE_ENTRY "firmware.version"
#define SESS_HARDWARE_ENTRY "fw.hw"
#define SESS_ERRORS_FILE    "sync.errors"

TS_MUST_CHECK ts_err sess_report_make(sess_ctx *ctx, sess_report *out);
void sess_report_clear(sess_report *r);

/* Records an error line in the state directory (the newest SESS_ERRORS_MAX are kept). */
void sess_error_record(const char *state_dir, const char *message);

/* --- the CRL (agent_session_crl.c) ------------------------------------------------------------ */

/*
 * Checks the service's certificate against CRLs (DER) carried in the session. A CRL is believed
 * only when it verifies with the key of a certificate among chain and roots that names its
 * issuer; one that does not is TS_ERR_AUTH. A CRL from the service certificate's issuer that
 * lists its serial is TS_ERR_AUTH ("revoked").
 */
TS_MUST_CHECK ts_err sess_crl_check(X509 *service, STACK_OF(X509) * chain, STACK_OF(X509) * roots,
                                    const uint8_t *const *crls, const size_t *crl_lens,
                                    size_t crl_count);

#endif
