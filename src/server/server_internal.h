/*
 * Inside the CA instance (include/tessera/ca.h): the instance handle, instance.json, the audit
 * helper, CA material (certificate and key) and the issuing core shared by issue, renew, rekey,
 * verification certificates and batches.
 */
#ifndef TS_SERVER_INTERNAL_H
#define TS_SERVER_INTERNAL_H

#include <jansson.h>

#include "common/text_internal.h"
#include "tessera/access.h"
#include "tessera/ca.h"
#include "tessera/jobs.h"
#include "tessera/keystore.h"
#include "tessera/pki.h"
#include "tessera/store.h"

/* Files and directories of an instance, relative to its directory. */
#define SRV_INSTANCE_FILE   "instance.json"
#define SRV_DB_FILE         "tessera.db"
#define SRV_PIN_FILE        "keystore.pin"
#define SRV_SO_PIN_FILE     "keystore.so-pin"
#define SRV_SOFTHSM_CONF    "softhsm2.conf"
#define SRV_TOKENS_DIR      "tokens"
#define SRV_TOKENS_KEEP_DIR "tokens.keep" /* softhsm_guard.c */
#define SRV_SOFT_DIR        "keystore"
#define SRV_SHARES_DIR      "shares"
#define SRV_TOKEN_LABEL     "tessera-ca"
#define SRV_TLS_DIR         "tls"
#define SRV_TLS_CERT_FILE   "tls/server.pem"

/* Settings kept in the store. */
#define SRV_SET_ORG        "org"
#define SRV_SET_COUNTRY    "country"
#define SRV_SET_URL        "url"
#define SRV_SET_KEYSTORE   "keystore"
#define SRV_SET_ROOT_STORE "root.keystore" /* "instance", "offline" or a key-store URI */
#define SRV_SET_SHARES     "root.shares"   /* "M/N" */

#define SRV_ROOT_ONLINE  "instance"
#define SRV_ROOT_OFFLINE "offline"

enum {
    SRV_ISSUE_TRIES = 8,          /* fresh serials tried when one is taken */
    SRV_INSTANCE_MAX = 16 * 1024, /* bytes of instance.json */
    SRV_PIN_BYTES = 24,           /* random bytes of a generated PIN, hex-encoded */
};

struct ts_ca {
    char dir[TS_CA_PATH_MAX];
    char actor[TS_TEXT_MAX];
    char *db_url;
    char *ks_uri; /* the instance key store, as opened (may carry pin-source) */
    char *softhsm_conf;
    ts_store *store;
    ts_keystore *ks; /* opened on first use */
    char *org;
    char *country;  /* NULL when none */
    char *base_url; /* NULL when none */
    /* The issuing CA last loaded with its key (ca_material.c): reused while the store still
     * names the same CA, with the same certificate, as the tenant's active issuing CA. */
    struct srv_issuer *issuing_cache;
    int64_t issuing_cache_tenant;
};

/* --- job_session.c ---------------------------------------------------------------------------- */

/* A result's fields as a session reports them: an id, an error code when it failed, lengths. */
ts_err srv_answer_check(int64_t id, int ok, const char *code, const char *message);
/* srv_answer_check() and the payload's length, for a job's result. */
ts_err srv_job_answer_check(const ts_job_answer *a);

/* In the open transaction: records each job answer and settles (and audits) the jobs it
 * completes. */
ts_err srv_job_answers_record(ts_ca *ca, const ts_tenant_row *t, const char *device_uid,
                              const ts_job_answer *answers, size_t count, time_t now);

/* --- softhsm_guard.c ------------------------------------------------------------------------- */

/* Restores any token.object under DIR/tokens that a kill left empty, from its copy in
 * DIR/tokens.keep, and refreshes the copies of whole ones. TS_OK when DIR has no tokens. */
ts_err srv_softhsm_guard(const char *dir);

/* --- instance.c ------------------------------------------------------------------------------ */

/* dir/name into buf; TS_ERR_INVALID when it does not fit. */
ts_err srv_path(char *buf, size_t size, const char *dir, const char *name);

/* Writes DIR/instance.json (0600, atomic). softhsm_conf may be NULL. */
ts_err srv_instance_write(const char *dir, const char *db_url, const char *ks_uri,
                          const char *softhsm_conf);

/* Appends an audit entry as the instance's actor, in the open transaction; takes details. */
ts_err srv_audit(ts_ca *ca, const char *action, const char *object, json_t *details);

/* Ends an operation's transaction: commits when rv is TS_OK, rolls back otherwise. Returns the
 * operation's result, or the commit's failure. */
ts_err srv_tx_end(ts_ca *ca, ts_err rv);

/* A JSON object from a jansson pack format; NULL on failure (the caller reports NOMEM). */
json_t *srv_json(const char *fmt, ...);

/* Deletes a key made by an operation that failed; best effort, the failure is what counts. */
void srv_key_discard(ts_keystore *ks, const char *label);

/* A string setting, or NULL when unset (*value freed with OPENSSL_free). */
ts_err srv_setting(ts_ca *ca, const char *key, char **value);

/* Removes a file or a directory tree (init.c). */
ts_err srv_remove_tree(const char *path);

/* --- ca_material.c --------------------------------------------------------------------------- */

/* A CA's row, certificate and (when asked for) its signing key. */
typedef struct srv_issuer {
    ts_ca_row row;
    X509 *cert;
    EVP_PKEY *key;   /* NULL unless loaded */
    ts_keystore *ks; /* the key's store (a reference) */
} srv_issuer;

void srv_issuer_clear(srv_issuer *issuer);

/* Drops the cached issuing CA (ts_ca_free). */
void srv_issuing_cache_clear(ts_ca *ca);

/* The active issuing CA of a tenant, with its key when with_key. */
ts_err srv_issuing_load(ts_ca *ca, int64_t tenant_id, int with_key, srv_issuer *out);

/* The root CA, with its key when with_key: TS_ERR_STATE with the ceremony hint when offline. */
ts_err srv_root_load(ts_ca *ca, int with_key, srv_issuer *out);

/* The message for a root key that is not online. */
ts_err srv_root_offline_error(ts_ca *ca);

/* Certificate facts for a store row (serial, subject, fingerprint, validity, DER). */
ts_err srv_cert_row_fill(X509 *cert, ts_cert_row *row);

/* A CA row's subject, fingerprint and DER from its certificate (init_store.c). */
ts_err srv_ca_row_fill(X509 *cert, ts_ca_row *row);

/* Subject, serial, SHA-256 and PEM of a certificate for an audit entry; NULL on failure. */
json_t *srv_cert_json(X509 *cert);

/* The SHA-256 of a public key's SubjectPublicKeyInfo, hex. */
ts_err srv_pubkey_fingerprint(EVP_PKEY *key, char hex[65]);

/* PEM of a certificate as a new string (OPENSSL_free). */
ts_err srv_cert_pem(X509 *cert, char **pem);

/* A tenant's CRL, OCSP and caIssuers URLs from the instance's base URL; NULL each without one. */
typedef struct srv_urls {
    char *crl, *ocsp, *ca_issuers;
} srv_urls;

ts_err srv_urls_make(ts_ca *ca, const char *crl_name, srv_urls *out);
void srv_urls_clear(srv_urls *urls);

/* A CA certificate for subject_key, signed by the issuer (NULL issuer: self-signed root). */
ts_err srv_ca_cert_make(ts_ca *ca, const char *cn, const char *org, const char *country, int days,
                        int path_len, EVP_PKEY *subject_key, srv_issuer *issuer, X509 **out);

/* The tenant's stored profile, parsed. */
ts_err srv_profile_load(ts_ca *ca, int64_t tenant_id, const char *name, ts_profile **out);

/* Stores every built-in profile for a tenant, in the open transaction. */
ts_err srv_profiles_builtin(ts_ca *ca, int64_t tenant_id, const char *tenant);

/* Whether a profile's certificates belong to a device (the CN is the device UID). */
int srv_profile_is_device(const ts_profile *profile);

/* --- issue.c --------------------------------------------------------------------------------- */

/* Called inside the issuing transaction after the certificate row is stored. */
typedef ts_err (*srv_issue_hook)(ts_ca *ca, void *arg, const ts_cert_row *row);

typedef struct srv_issue_req {
    const ts_tenant_row *tenant;
    srv_issuer *issuer;
    ts_issue_params params; /* profile, csr or public key, subject, vars (serial and issuer set
                               here) */
    const char *profile_name;
    const char *device_uid; /* stored as the row's device UID; NULL: from the profile and CN */
    const char *action;     /* audit action: "cert.issue", "cert.renew", ... */
    json_t *details;        /* extra audit details, taken; may be NULL */
    srv_issue_hook hook;    /* may be NULL */
    void *hook_arg;
    ts_device_row device; /* set by srv_issue() when the certificate names a device */
} srv_issue_req;

/* What every issuance in a tenant needs: the tenant, its issuing CA with its key, the profile
 * and the URLs that go into its certificates. */
typedef struct srv_issue_ctx {
    ts_tenant_row tenant;
    srv_issuer issuer;
    ts_profile *profile;
    srv_urls urls;
} srv_issue_ctx;

ts_err srv_issue_ctx_load(ts_ca *ca, const char *tenant, const char *profile, srv_issue_ctx *c);
void srv_issue_ctx_clear(srv_issue_ctx *c);

/* A request for ctx with the tenant's subject values and URLs filled in. */
void srv_issue_req_init(ts_ca *ca, srv_issue_ctx *c, const char *profile, const char *action,
                        srv_issue_req *req);

/*
 * Signs with a fresh serial, stores, audits, commits; retries a taken serial. A certificate that
 * names a device (req->device_uid, or the CN under a device profile) registers the device when
 * new and is refused (TS_ERR_POLICY) when the device is disabled, in the same transaction.
 */
ts_err srv_issue(ts_ca *ca, srv_issue_req *req, X509 **out);

/* Parses a CSR and checks it against the profile; TS_ERR_POLICY / TS_ERR_INVALID ("CSR
 * refused: ..."). */
ts_err srv_csr_load(const uint8_t *data, size_t len, const ts_profile *profile, X509_REQ **out);

/* --- device.c, feed.c: the device registry and the revocation feed -------------------------- */

/* In the open transaction: registers the device of a certificate being issued when it is new;
 * TS_ERR_POLICY when it is disabled. *out (may be NULL) gets its row. */
ts_err srv_device_admit(ts_ca *ca, int64_t tenant_id, const char *uid, ts_device_row *out);

/* In the open transaction: the cert.revoked feed event of a certificate just revoked. */
ts_err srv_feed_revoked(ts_ca *ca, const ts_cert_row *cert, int reason, time_t when);

/* A tenant by name, NULL meaning instance-wide (*tenant_id 0, name empty): for users and
 * tokens. */
ts_err srv_user_tenant(ts_ca *ca, const char *tenant, ts_tenant_row *out);

/* --- access_token.c: secrets ----------------------------------------------------------------- */

/* The SHA-256 of a secret as 64 lower-case hex digits. */
ts_err srv_secret_hash(const char *secret, size_t len, char hex[65]);

#endif
