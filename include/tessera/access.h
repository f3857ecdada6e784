/*
 * Who may do what on a CA instance, and what devices it knows: users with roles, API tokens,
 * claim codes, the device registry and the revocation feed.
 *
 * Secrets (API tokens, claim codes) are random, shown once when made, and stored only as their
 * SHA-256; a presented secret is hashed and looked up, and the stored hash is compared with
 * CRYPTO_memcmp. Every change runs in one store transaction with its audit entry, like the rest
 * of ca.h. docs/access.md describes them; docs/api.md the routes that use them.
 *
 * Thread safety: as ca.h, a ts_ca is used by one thread at a time.
 */
#ifndef TESSERA_ACCESS_H
#define TESSERA_ACCESS_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/x509.h>

#include "tessera/ca.h"
#include "tessera/error.h"
#include "tessera/export.h"
#include "tessera/store.h"

enum {
    TS_TOKEN_MAX = 72,       /* "tsk_" and 64 hex digits (256 random bits), with its NUL */
    TS_CLAIM_CODE_MAX = 40,  /* a claim code as printed, with its NUL */
    TS_DEVICE_UID_MAX = 64,  /* characters of a device UID */
    TS_TOKEN_DAYS = 90,      /* lifetime of a token made without one */
    TS_CLAIM_HOURS = 24 * 7, /* lifetime of a claim code made without one */
};

/* --- Sessions of the service ---------------------------------------------------------------- */

/* Opens the instance in dir on another database than its own (tessera serve --db). */
TS_API TS_MUST_CHECK ts_err ts_ca_open_db(const char *dir, const char *db_url, const char *actor,
                                          ts_ca **out);

/* Who acts in the audit entries from now on ("user:alice@acme", "device:UID", ...). */
TS_API TS_MUST_CHECK ts_err ts_ca_set_actor(ts_ca *ca, const char *actor);

/* --- Roles ----------------------------------------------------------------------------------- */

typedef enum ts_role {
    TS_ROLE_ADMIN = 1,    /* everything in its tenant; with no tenant: every tenant */
    TS_ROLE_OPERATOR = 2, /* certificates, devices, claim codes, jobs */
    TS_ROLE_AUDITOR = 3,  /* read-only, audit log */
    TS_ROLE_DEVICE = 4,   /* its own records only */
} ts_role;

/* Bit of a role in a mask of roles: TS_ROLE_BIT(TS_ROLE_ADMIN) | ... */
#define TS_ROLE_BIT(role) (1U << (unsigned)(role))

/* "admin", "operator", "auditor", "device"; "?" for anything else. */
TS_API const char *ts_role_name(ts_role role);
/* TS_ERR_INVALID naming the word when it is not a role. */
TS_API TS_MUST_CHECK ts_err ts_role_parse(const char *name, ts_role *out);

/* --- Users ----------------------------------------------------------------------------------- */

typedef struct ts_user_row {
    int64_t id;
    int64_t tenant_id;            /* 0: instance-wide (an instance admin) */
    char tenant[TS_NAME_MAX + 1]; /* the tenant's name; empty when instance-wide */
    char name[TS_NAME_MAX + 1];   /* unique within its tenant */
    ts_role role;
    char device_uid[TS_NAME_MAX + 1]; /* TS_ROLE_DEVICE: the device it is; else empty */
    int disabled;
    time_t created;
} ts_user_row;

/*
 * Creates a user. tenant NULL makes an instance-wide user, which must be an admin (every tenant)
 * or an auditor (the instance's audit log). A device user names its device (registered in the
 * tenant). TS_ERR_EXISTS when the name is taken.
 */
TS_API TS_MUST_CHECK ts_err ts_ca_user_create(ts_ca *ca, const char *tenant, const char *name,
                                              ts_role role, const char *device_uid,
                                              ts_user_row *out);
/* tenant NULL: the instance-wide users. */
TS_API TS_MUST_CHECK ts_err ts_ca_user_get(ts_ca *ca, const char *tenant, const char *name,
                                           ts_user_row *out);
/* The users of a tenant (NULL: instance-wide ones), by name; OPENSSL_free(*rows). */
TS_API TS_MUST_CHECK ts_err ts_ca_user_list(ts_ca *ca, const char *tenant, ts_user_row **rows,
                                            size_t *count);
/* Disabling a user makes its tokens fail authentication. */
TS_API TS_MUST_CHECK ts_err ts_ca_user_set_disabled(ts_ca *ca, const char *tenant, const char *name,
                                                    int disabled);

/* --- API tokens ------------------------------------------------------------------------------ */

typedef struct ts_token_row {
    int64_t id;
    int64_t user_id;
    char user[TS_NAME_MAX + 1];
    int64_t tenant_id;          /* the user's; 0 instance-wide */
    char name[TS_NAME_MAX + 1]; /* what it is for, as given at creation */
    char prefix[13];            /* the first 12 characters of the token, to recognise it */
    time_t created;
    time_t expires;    /* always set */
    time_t revoked_at; /* 0 unless revoked */
} ts_token_row;

/*
 * A new token for a user (tenant NULL: an instance-wide user). lifetime_seconds 0 means
 * TS_TOKEN_DAYS. The token is written to token_out once and never again obtainable; the caller
 * wipes it (OPENSSL_cleanse) after showing it.
 */
TS_API TS_MUST_CHECK ts_err ts_ca_token_create(ts_ca *ca, const char *tenant, const char *user,
                                               const char *name, int64_t lifetime_seconds,
                                               char token_out[TS_TOKEN_MAX], ts_token_row *out);
/* The tokens of a user, or of every user of the tenant when user is NULL; OPENSSL_free(*rows). */
TS_API TS_MUST_CHECK ts_err ts_ca_token_list(ts_ca *ca, const char *tenant, const char *user,
                                             ts_token_row **rows, size_t *count);
/* Revokes a token of the tenant by id; TS_ERR_NOT_FOUND for another tenant's. */
TS_API TS_MUST_CHECK ts_err ts_ca_token_revoke(ts_ca *ca, const char *tenant, int64_t id);

/* Who a presented token belongs to. */
typedef struct ts_principal {
    int64_t user_id;
    char user[TS_NAME_MAX + 1];
    ts_role role;
    int64_t tenant_id;                /* 0: instance-wide admin */
    char tenant[TS_NAME_MAX + 1];     /* empty when instance-wide */
    char device_uid[TS_NAME_MAX + 1]; /* TS_ROLE_DEVICE only */
    int64_t token_id;
} ts_principal;

/*
 * TS_OK and *out for a token that exists, has not expired and is not revoked, of an enabled user.
 * Otherwise TS_ERR_AUTH with one message for every reason, so a caller learns nothing about
 * which tokens exist. Reads only; no audit entry.
 */
TS_API TS_MUST_CHECK ts_err ts_ca_token_authenticate(ts_ca *ca, const char *token,
                                                     ts_principal *out);

/* --- Claim codes ----------------------------------------------------------------------------- */

typedef struct ts_claim_params {
    const char *tenant;       /* NULL: the default tenant */
    unsigned uses;            /* 0: 1 (single use) */
    int64_t lifetime_seconds; /* 0: TS_CLAIM_HOURS */
    const char *profile;      /* NULL: "device"; must exist in the tenant */
} ts_claim_params;

typedef struct ts_claim_row {
    int64_t id;
    int64_t tenant_id;
    char profile[TS_NAME_MAX + 1];
    char prefix[9]; /* the first 8 characters of the code */
    unsigned uses_max;
    unsigned uses_left;
    time_t created;
    time_t expires;
    time_t revoked_at; /* 0 unless revoked */
} ts_claim_row;

/*
 * A new claim code. The code (written once to code_out; the caller wipes it) is 140 random bits
 * as seven groups of four Crockford base32 letters, which survive being read aloud and typed:
 * "TSC-XXXX-XXXX-XXXX-XXXX-XXXX-XXXX-XXXX". Typed codes are read in any case, with or without
 * dashes, spaces and "TSC", O as 0, I and L as 1.
 */
TS_API TS_MUST_CHECK ts_err ts_ca_claim_create(ts_ca *ca, const ts_claim_params *params,
                                               char code_out[TS_CLAIM_CODE_MAX], ts_claim_row *out);
TS_API TS_MUST_CHECK ts_err ts_ca_claim_list(ts_ca *ca, const char *tenant, ts_claim_row **rows,
                                             size_t *count);
TS_API TS_MUST_CHECK ts_err ts_ca_claim_revoke(ts_ca *ca, const char *tenant, int64_t id);

/*
 * The stored claim code for what was typed, when it can be used now in the tenant: TS_OK and *out
 * (its profile, uses left, ...). Otherwise TS_ERR_AUTH with the one message of
 * ts_ca_claim_enroll(). Reads only: nothing is used or audited.
 */
TS_API TS_MUST_CHECK ts_err ts_ca_claim_lookup(ts_ca *ca, const char *tenant, const char *code,
                                               ts_claim_row *out);

/*
 * Zero-touch enrollment: issues a certificate for a CSR under the claim code's profile, in one
 * transaction that also uses one of the code's uses, registers the CSR's device UID (its CN) to
 * the tenant and audits all three. An unknown, expired, used-up or revoked code is TS_ERR_AUTH
 * (one message for all: "claim code not accepted") and changes nothing; so is a device that is
 * registered and disabled (TS_ERR_POLICY). X509_free(*out).
 */
TS_API TS_MUST_CHECK ts_err ts_ca_claim_enroll(ts_ca *ca, const char *tenant, const char *code,
                                               const uint8_t *csr, size_t csr_len, X509 **out);

/* --- Devices --------------------------------------------------------------------------------- */

typedef enum ts_device_state {
    TS_DEVICE_ENABLED = 1,
    TS_DEVICE_DISABLED = 2,
} ts_device_state;

typedef struct ts_device_row {
    int64_t id;
    int64_t tenant_id;
    char uid[TS_NAME_MAX + 1];
    ts_device_state state;
    time_t created;
    time_t updated;
} ts_device_row;

/*
 * Device UIDs: 1 to TS_DEVICE_UID_MAX of [A-Za-z0-9._:-]. Issuing a certificate under a device
 * profile registers its UID (when new) and is refused with TS_ERR_POLICY when the device is
 * disabled.
 */
TS_API TS_MUST_CHECK ts_err ts_device_uid_check(const char *uid);

/* Registers a device; TS_ERR_EXISTS when known. */
TS_API TS_MUST_CHECK ts_err ts_ca_device_register(ts_ca *ca, const char *tenant, const char *uid,
                                                  ts_device_row *out);
TS_API TS_MUST_CHECK ts_err ts_ca_device_get(ts_ca *ca, const char *tenant, const char *uid,
                                             ts_device_row *out);

typedef struct ts_device_filter {
    ts_device_state state; /* 0: any */
    int64_t after_id;      /* cursor: only rows with id > after_id */
    size_t limit;          /* 0: no limit */
} ts_device_filter;

/* Devices of a tenant by id; OPENSSL_free(*rows). */
TS_API TS_MUST_CHECK ts_err ts_ca_device_list(ts_ca *ca, const char *tenant,
                                              const ts_device_filter *filter, ts_device_row **rows,
                                              size_t *count);
/* Disables or enables a device; appends a feed event. TS_ERR_STATE when already so. */
TS_API TS_MUST_CHECK ts_err ts_ca_device_set_state(ts_ca *ca, const char *tenant, const char *uid,
                                                   ts_device_state state);

/* --- Device groups --------------------------------------------------------------------------- */

/*
 * Named sets of a tenant's registered devices; a device may be in several. A group's name is
 * 1 to TS_NAME_MAX of [A-Za-z0-9._-]. Each change is audited ("group.create", "group.delete",
 * "group.add", "group.remove"). A job for a group (ts_ca_job_create_group, jobs.h) becomes one
 * job per member.
 */
enum {
    TS_GROUP_MEMBERS_MAX = 10000, /* devices in one group */
};

typedef struct ts_group_row {
    int64_t id;
    int64_t tenant_id;
    char name[TS_NAME_MAX + 1];
    size_t members;
    time_t created;
} ts_group_row;

typedef struct ts_group_member {
    char uid[TS_NAME_MAX + 1];
    time_t added;
} ts_group_member;

TS_API TS_MUST_CHECK ts_err ts_group_name_check(const char *name);

/* TS_ERR_EXISTS when the tenant has a group of that name. */
TS_API TS_MUST_CHECK ts_err ts_ca_group_create(ts_ca *ca, const char *tenant, const char *name,
                                               ts_group_row *out);
/* Deletes the group and its memberships (not the devices); TS_ERR_NOT_FOUND. */
TS_API TS_MUST_CHECK ts_err ts_ca_group_delete(ts_ca *ca, const char *tenant, const char *name);
/*
 * Adds the devices (registered in the tenant: TS_ERR_NOT_FOUND otherwise) in one transaction;
 * TS_ERR_EXISTS when one is a member already, and then none is added.
 */
TS_API TS_MUST_CHECK ts_err ts_ca_group_add(ts_ca *ca, const char *tenant, const char *name,
                                            const char *const *uids, size_t count);
/* Removes the devices in one transaction; TS_ERR_NOT_FOUND when one is not a member. */
TS_API TS_MUST_CHECK ts_err ts_ca_group_remove(ts_ca *ca, const char *tenant, const char *name,
                                               const char *const *uids, size_t count);
/* The tenant's groups by name with their member counts; OPENSSL_free(*rows). */
TS_API TS_MUST_CHECK ts_err ts_ca_group_list(ts_ca *ca, const char *tenant, ts_group_row **rows,
                                             size_t *count);
/* One group and its members by UID (members NULL: not wanted; else OPENSSL_free(*members)). */
TS_API TS_MUST_CHECK ts_err ts_ca_group_get(ts_ca *ca, const char *tenant, const char *name,
                                            ts_group_row *out, ts_group_member **members,
                                            size_t *count);

/* Store level (src/store/store_group.c); writes need an open transaction. */
TS_API TS_MUST_CHECK ts_err ts_store_group_insert(ts_store *store, ts_group_row *row);
TS_API TS_MUST_CHECK ts_err ts_store_group_get(ts_store *store, int64_t tenant_id, const char *name,
                                               ts_group_row *out);
TS_API TS_MUST_CHECK ts_err ts_store_group_delete(ts_store *store, int64_t group_id);
TS_API TS_MUST_CHECK ts_err ts_store_group_list(ts_store *store, int64_t tenant_id,
                                                ts_group_row **rows, size_t *count);
/* TS_ERR_EXISTS when a member already. */
TS_API TS_MUST_CHECK ts_err ts_store_group_member_add(ts_store *store, int64_t group_id,
                                                      const char *uid, time_t now);
/* TS_ERR_NOT_FOUND when not a member. */
TS_API TS_MUST_CHECK ts_err ts_store_group_member_remove(ts_store *store, int64_t group_id,
                                                         const char *uid);
TS_API TS_MUST_CHECK ts_err ts_store_group_members(ts_store *store, int64_t group_id,
                                                   ts_group_member **rows, size_t *count);

/* --- The revocation feed --------------------------------------------------------------------- */

typedef enum ts_feed_event {
    TS_FEED_CERT_REVOKED = 1,
    TS_FEED_DEVICE_DISABLED = 2,
    TS_FEED_DEVICE_ENABLED = 3,
} ts_feed_event;

/* "cert.revoked", "device.disabled", "device.enabled". */
TS_API const char *ts_feed_event_name(ts_feed_event event);

typedef struct ts_feed_row {
    int64_t seq; /* increasing in commit order across every writer, instance-wide */
    int64_t tenant_id;
    ts_feed_event event;
    char serial[TS_SERIAL_HEX];       /* cert.revoked: the certificate; else empty */
    char issuer_fingerprint[65];      /* cert.revoked: SHA-256 of its issuer's certificate */
    char device_uid[TS_NAME_MAX + 1]; /* the device, when the certificate or event has one */
    int reason;                       /* cert.revoked: CRL_REASON_* */
    time_t time;
} ts_feed_row;

/*
 * Events of a tenant with seq > since, oldest first, at most limit (0: all); OPENSSL_free(*rows).
 * Every revocation (cert revoke, rekey's superseded certificate) and every device state change
 * appends one, in its own transaction, under the audit chain's lock, so a reader that remembers
 * the last seq it saw never misses a later one.
 */
TS_API TS_MUST_CHECK ts_err ts_ca_feed(ts_ca *ca, const char *tenant, int64_t since, size_t limit,
                                       ts_feed_row **rows, size_t *count);
/* The newest seq of the whole instance (0 when empty): a cheap "did anything change?". */
TS_API TS_MUST_CHECK ts_err ts_ca_feed_head(ts_ca *ca, int64_t *seq);

/* --- Certificates by issuer, for TLS client authentication ---------------------------------- */

/*
 * The tenant whose issuing CA (active or not) has this certificate's SHA-256 fingerprint;
 * TS_ERR_NOT_FOUND when none.
 */
TS_API TS_MUST_CHECK ts_err ts_ca_tenant_by_issuer(ts_ca *ca, const char *issuer_fingerprint,
                                                   ts_tenant_row *tenant, int64_t *issuer_ca_id);

/* Every CA certificate of the instance (root and every issuing CA), for a TLS trust store;
 * sk_X509_pop_free(*out, X509_free). */
TS_API TS_MUST_CHECK ts_err ts_ca_all_certs(ts_ca *ca, STACK_OF(X509) * *out);

/* --- The service's own TLS identity ---------------------------------------------------------- */

#define TS_TLS_KEY_LABEL "tls-server"

/*
 * Issues (or re-issues) the trust service's TLS server certificate under the default tenant's
 * "server" profile, for a P-256 key TS_TLS_KEY_LABEL made in the instance key store when
 * missing, with SANs for every name given (DNS names or IP addresses) and always "localhost"
 * and 127.0.0.1. The certificate and chain are kept as DIR/tls/server.pem (leaf, issuing CA).
 * ts_ca_init() calls it with the host of --url.
 */
TS_API TS_MUST_CHECK ts_err ts_ca_tls_server_cert(ts_ca *ca, const char *const *names,
                                                  size_t count);

#endif
