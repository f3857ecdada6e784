/*
 * The device agent: the device's identity in its key store, and enrollment with the trust
 * service over EST (RFC 7030).
 *
 * A ts_agent ties a key store (where the identity key, the certificates and the claim code live)
 * to a state directory (which holds the agent's lock file). Everything the identity is made of
 * lives in the key store as objects:
 *
 *   identity            the identity key, P-256, made in the store by ts_agent_init()
 *   identity.key.N      the identity key made by a rekey at generation N (then current)
 *   device.uid          the device UID (data object)
 *   claim.code          the claim code, a secret data object, until an enrollment uses it
 *   identity.cert.N     certificate of generation N (PEM)
 *   identity.chain.N    its issuing chain up to the trusted root (PEM, leaf excluded)
 *   identity.current    the pointer: which generation, key, certificate and chain are current
 *
 * A new identity is committed by writing its objects under new labels and then replacing the
 * pointer, so a failure at any point (power loss included) leaves the old identity or the new
 * one, never a mix. docs/agent.md describes the flows.
 *
 * Thread safety: one ts_agent per thread. Two processes on one state directory take turns (the
 * lock file). Every call returns TS_OK or an error whose words are in ts_error_message().
 */
#ifndef TESSERA_AGENT_H
#define TESSERA_AGENT_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "tessera/error.h"
#include "tessera/export.h"
#include "tessera/keystore.h"

typedef struct ts_agent ts_agent;

#define TS_AGENT_KEY_LABEL     "identity"
#define TS_AGENT_UID_LABEL     "device.uid"
#define TS_AGENT_CLAIM_LABEL   "claim.code"
#define TS_AGENT_CURRENT_LABEL "identity.current"

enum {
    TS_AGENT_UID_MAX = 64,            /* characters of a device UID */
    TS_AGENT_CLAIM_MAX = 128,         /* characters of a claim code */
    TS_AGENT_THRESHOLD_DEFAULT = 30,  /* days before expiry when re-enrollment is due */
    TS_AGENT_THRESHOLD_MAX = 3650,    /* the largest threshold accepted */
    TS_AGENT_TIMEOUT_DEFAULT = 30,    /* seconds an EST exchange may take */
    TS_AGENT_REPLY_MAX = 256 * 1024,  /* bytes of an EST reply body */
    TS_AGENT_TRUST_MAX = 1024 * 1024, /* bytes of a trust-roots file */
};

/*
 * Opens the key store at keystore_uri and takes the lock in state_dir (made 0700 if missing) for
 * the life of the handle. Free with ts_agent_free(), which accepts NULL.
 */
TS_API TS_MUST_CHECK ts_err ts_agent_open(const char *keystore_uri, const char *state_dir,
                                          ts_agent **out);
TS_API void ts_agent_free(ts_agent *agent);

/* The key store the agent uses (a borrowed reference). */
TS_API ts_keystore *ts_agent_keystore(ts_agent *agent);

/*
 * Makes the identity key (P-256, label "identity") in the key store and records the device UID,
 * then writes the UID to uid. The UID is uid_or_null when given (1 to TS_AGENT_UID_MAX of
 * [A-Za-z0-9._:-], for a device whose UID was assigned in the factory), else the 32 lowercase
 * hexadecimal digits of the key store's UID. Idempotent: when both exist already nothing changes
 * and *created is 0 (a different uid_or_null is then TS_ERR_EXISTS).
 */
TS_API TS_MUST_CHECK ts_err ts_agent_init(ts_agent *agent, const char *uid_or_null,
                                          char uid[TS_AGENT_UID_MAX + 1], int *created);

/* The device UID recorded by ts_agent_init(); TS_ERR_STATE when the agent was never set up. */
TS_API TS_MUST_CHECK ts_err ts_agent_uid(ts_agent *agent, char uid[TS_AGENT_UID_MAX + 1]);

/*
 * Stores a claim code (1 to TS_AGENT_CLAIM_MAX of [A-Za-z0-9-]; surrounding white space is
 * ignored) as a secret object. TS_ERR_EXISTS when one is stored already.
 */
TS_API TS_MUST_CHECK ts_err ts_agent_claim_inject(ts_agent *agent, const char *code, size_t len);

/* Removes the stored claim code; TS_ERR_NOT_FOUND when there is none. */
TS_API TS_MUST_CHECK ts_err ts_agent_claim_delete(ts_agent *agent);

/* How to reach the service. Strings are borrowed for the call. */
typedef struct ts_agent_est_opts {
    const char *server;       /* base URL, https://host[:port] */
    const char *tenant;       /* NULL: the service's default tenant */
    const char *trust_file;   /* PEM file of the root certificates the service must chain to */
    const char *factory_cert; /* enroll: PEM certificate (then its chain) for TLS client auth */
    const char *factory_key;  /* label of the factory certificate's key; NULL: "identity" */
    long timeout;             /* seconds; 0: TS_AGENT_TIMEOUT_DEFAULT */
    int rekey;                /* reenroll: certify a new key (below); 0: renew the same key */
    int tls12_only;           /* speak TLS 1.2 at most (a service or middlebox without 1.3) */
} ts_agent_est_opts;

/*
 * simpleenroll: a CSR for the identity key, signed in the key store, with the device UID as CN,
 * sent over TLS that trusts only opts->trust_file; the client authenticates with
 * opts->factory_cert (mutual TLS, the key in the store) or else with the stored claim code
 * (HTTP Basic). The reply must hold a certificate for the identity key, naming the UID, that
 * chains to a trusted root; it is then committed as the new current identity and the claim code
 * is deleted. On any failure the current identity is unchanged.
 */
TS_API TS_MUST_CHECK ts_err ts_agent_enroll(ts_agent *agent, const ts_agent_est_opts *opts);

/*
 * simplereenroll over mutual TLS with the current certificate, for the same key and subject
 * (a renewal: the old certificate stays valid until it expires). Done only when the current
 * certificate expires within threshold_days (0: TS_AGENT_THRESHOLD_DEFAULT) or force is set;
 * *renewed says whether it was.
 *
 * With opts->rekey, a rekey (RFC 7030 section 4.2.2): a new P-256 key is made in the key store
 * under "identity.key.N" (N the new generation), the CSR is for it with the same subject, the
 * reply must certify it, and key and certificate are committed together by the pointer switch;
 * the replaced key is deleted only after that. On any failure the new key is removed (or left
 * unnamed, and removed by the next attempt or commit) and the current identity stays.
 *
 * Enrollment and re-enrollment send the CSR on the connection that fetched csrattrs; when the
 * service lists challengePassword there (the profile demands proof of possession), the CSR
 * carries that connection's channel binding and no other connection is used (docs/agent.md).
 */
TS_API TS_MUST_CHECK ts_err ts_agent_reenroll(ts_agent *agent, const ts_agent_est_opts *opts,
                                              unsigned threshold_days, int force, int *renewed);

/* What the current identity is. */
typedef struct ts_agent_status {
    char uid[TS_AGENT_UID_MAX + 1];
    int enrolled;        /* a current identity is committed */
    int claim_code;      /* a claim code is stored */
    uint64_t generation; /* of the current identity */
    char key[TS_LABEL_MAX + 1];
    char cert[TS_LABEL_MAX + 1];
    char chain[TS_LABEL_MAX + 1];
    char subject[256];
    char issuer[256];
    char serial[80]; /* hexadecimal */
    time_t not_before;
    time_t not_after;
    int chain_verified; /* trust_file was given and the certificate chains to it */
} ts_agent_status;

/*
 * Reads and checks the current identity: the pointer, the certificate (which must be for the key
 * and name the UID), and, when trust_file is not NULL, its chain to those roots at this time.
 * A device never enrolled gives TS_OK with enrolled = 0; a broken identity gives TS_ERR_CORRUPT
 * or TS_ERR_AUTH with the reason.
 */
TS_API TS_MUST_CHECK ts_err ts_agent_status_get(ts_agent *agent, const char *trust_file,
                                                ts_agent_status *out);

/* --- Offline provisioning (docs/rtp.md) ----------------------------------------------------- */

/* The key-store data object holding the PEM public key of the tenant's provisioning key. */
#define TS_AGENT_RTP_SENDER_LABEL "provisioning.key"

enum {
    TS_AGENT_RTP_BUNDLE_MAX = 256 * 1024,   /* bytes of one signed bundle */
    TS_AGENT_RTP_MSG_MAX = 4 * 1024 * 1024, /* bytes of one rtp message */
    TS_AGENT_RTP_BUNDLES_MAX = 64,          /* bundles in one offer */
};

/* Called for each import done and each bundle refused; what names it in words. */
typedef void (*ts_agent_rtp_report_fn)(void *arg, size_t bundle, ts_err status, const char *what);

typedef struct ts_agent_rtp_result {
    size_t offered;  /* bundles the server sent */
    size_t accepted; /* bundles whose every import was done */
    size_t refused;  /* bundles refused (foreign, replayed, bad signature, malformed...) */
    size_t imported; /* keys imported */
} ts_agent_rtp_result;

/*
 * Offline provisioning over plain TCP to host:port (the bundles are protected end to end): sends
 * the device UID, receives the bundles the server holds for it, checks each (the tenant's
 * provisioning key from TS_AGENT_RTP_SENDER_LABEL signed it, it names this device and key store)
 * and imports its keys with ts_keystore_import(), which refuses replays and foreign blobs. Every
 * bundle gets a receipt signed by the identity key, sent back. Refusals are counted in *out and
 * reported, not returned: TS_OK means the exchange completed. timeout: seconds per read or write
 * (0: TS_AGENT_TIMEOUT_DEFAULT).
 */
TS_API TS_MUST_CHECK ts_err ts_agent_rtp(ts_agent *agent, const char *host, const char *port,
                                         long timeout, ts_agent_rtp_report_fn report, void *arg,
                                         ts_agent_rtp_result *out);

/* --- Provisioning sessions (docs/agent.md "Sessions", docs/protocol.md) ----------------------- */

#define TS_AGENT_VERSION "0.1.0" /* reported in every session's status report */

enum {
    TS_AGENT_SYNC_MESSAGES_MAX = 32,      /* exchanges in one session */
    TS_AGENT_SYNC_BODY_MAX = 1024 * 1024, /* bytes of one message either way */
};

/* Where the session goes. Strings are borrowed for the call. */
typedef struct ts_agent_sync_opts {
    const char *state_dir;  /* the agent's state directory (datastore, staged values, errors) */
    const char *server;     /* NULL: the datastore's server.url (then the compiled-in default) */
    const char *trust_file; /* NULL: the datastore's trust.roots */
    long timeout;           /* seconds per exchange; 0: TS_AGENT_TIMEOUT_DEFAULT */
} ts_agent_sync_opts;

/* What a session did. */
typedef struct ts_agent_sync_result {
    unsigned messages;  /* exchanges with the service */
    unsigned requests;  /* requests carried out */
    unsigned failed;    /* of them, refused or failed (each reported back to the service) */
    unsigned aborted;   /* not carried out because an earlier one in its message failed */
    int staged_applied; /* a staged service URL or trust roots took effect */
    int staged_dropped; /* a staged service URL or trust roots failed and were dropped */
} ts_agent_sync_result;

/*
 * A provisioning session: mutual TLS with the current identity to opts->server (or the
 * datastore's), a status report, then the service's requests carried out one by one and their
 * results returned, until the service says it is done. A request that is refused (an import
 * replayed, foreign or badly signed, an object that is not there, ...) is reported to the service
 * and does not fail the session. The session fails (and the error is recorded for the next
 * status report) when the service cannot be reached or trusted, its certificate is on the CRL the
 * session carries, or a message is malformed. A staged service URL or trust roots are tried
 * first and dropped, keeping the old ones, when no session can be had with them.
 */
TS_API TS_MUST_CHECK ts_err ts_agent_sync(ts_agent *agent, const ts_agent_sync_opts *opts,
                                          ts_agent_sync_result *out);

/* --- MQTT run (docs/agent.md "Running: MQTT telemetry and commands") ------------------------- */

#include <signal.h> /* sig_atomic_t */

enum {
    TS_AGENT_RUN_INTERVAL_DEFAULT = 10, /* seconds between telemetry messages */
    TS_AGENT_RUN_QUEUE_DEFAULT = 256,   /* telemetry messages waiting at most */
    TS_AGENT_RUN_QUEUE_MAX = 65536,
    TS_AGENT_MQTT_PORT_DEFAULT = 8883, /* when neither the options nor the datastore name one */
};
#define TS_AGENT_MQTT_HOST_DEFAULT "localhost"

/* One event, as one line of stable words ("connected HOST:PORT", "telemetry N sent", ...);
 * is_error marks a failure meant for standard error. */
typedef void (*ts_agent_run_event_fn)(void *arg, int is_error, const char *line);

/* What ts_agent_run() does. Strings are borrowed for the call. */
typedef struct ts_agent_run_opts {
    const char *state_dir;     /* the agent's state directory (datastore) */
    const char *mqtt;          /* HOST:PORT; NULL: the datastore's mqtt.host and mqtt.port */
    const char *trust_file;    /* NULL: the datastore's trust.roots */
    const char *server;        /* for re-enrollment; NULL: the datastore's server.url */
    const char *tenant;        /* NULL: the datastore's "tenant", else "default" */
    long interval;             /* seconds between messages; 0: as fast as possible; <0: default */
    uint64_t count;            /* return after this many were acknowledged; 0: run until stopped */
    size_t queue;              /* 0: TS_AGENT_RUN_QUEUE_DEFAULT */
    const char *telemetry_cmd; /* a program printing one JSON object; NULL: system values */
    long timeout;              /* seconds per EST exchange; 0: TS_AGENT_TIMEOUT_DEFAULT */
    ts_agent_run_event_fn event;
    void *event_arg;
    unsigned threshold_days; /* 0: the datastore's reenroll.threshold_days, else the default */
    const volatile sig_atomic_t *stop; /* the run ends cleanly once *stop is non-zero */
} ts_agent_run_opts;

/*
 * Connects to the MQTT broker over mutual TLS with the current identity (the key used in the key
 * store), publishes status and telemetry under tessera/<tenant>/<uid>/, runs the signed commands
 * received there and publishes their signed results, reconnecting with backoff and re-enrolling
 * when the certificate nears expiry. Returns TS_OK after opts->count messages were acknowledged or
 * when *opts->stop is set; fails only when it cannot start (no identity, no trust roots, a bad
 * endpoint...). Connection failures are events, never returns.
 */
TS_API TS_MUST_CHECK ts_err ts_agent_run(ts_agent *agent, const ts_agent_run_opts *opts);

#endif
