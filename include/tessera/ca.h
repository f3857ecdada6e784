/*
 * A CA instance of the trust service: one directory holding the instance's settings, its store
 * (tessera.db, or a PostgreSQL database it names) and its key store, with a root CA, tenants
 * that each have an issuing CA, profiles, issued certificates and a hash-chained audit log.
 *
 * Every operation that changes state runs in one store transaction that also appends its audit
 * entry: it happens completely and is audited, or not at all. Key-store objects made by a failed
 * operation are deleted again. docs/ca.md is the operations guide.
 *
 * Thread safety: a ts_ca is used by one thread at a time.
 */
#ifndef TESSERA_CA_H
#define TESSERA_CA_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/x509.h>

#include "tessera/error.h"
#include "tessera/export.h"
#include "tessera/keystore.h"
#include "tessera/store.h"

typedef struct ts_ca ts_ca;

enum {
    TS_CA_PATH_MAX = 4096,
    TS_TENANT_NAME_MAX = 32,   /* characters of a tenant name: [a-z0-9] then [a-z0-9-] */
    TS_CA_SHARES_MAX = 16,     /* N of an M-of-N root backup */
    TS_VERIFY_CODE_MAX = 64,   /* characters of a cloud registration code (ub-common-name) */
    TS_CA_ROOT_DAYS = 10958,   /* thirty years */
    TS_CA_ISSUING_DAYS = 9131, /* twenty-five years */
};

#define TS_DEFAULT_TENANT "default"

/* --- Creating an instance: the key ceremony -------------------------------------------------- */

typedef struct ts_ca_init_params {
    const char *dir;           /* must not hold an instance; created when missing */
    const char *keystore_uri;  /* NULL: a SoftHSM2 token under dir when installed, else soft: */
    const char *db_url;        /* NULL: sqlite:DIR/tessera.db */
    const char *org;           /* NULL: "Tessera" */
    const char *country;       /* two letters, or NULL */
    const char *base_url;      /* CRL and OCSP URLs are built from it; NULL: none */
    const char *operator_name; /* who holds the ceremony (the transcript's actor) */
    unsigned shares_m;         /* shares needed to restore the root key; 0: 3 */
    unsigned shares_n;         /* shares made; 0: 5 */
} ts_ca_init_params;

typedef struct ts_ca_init_result {
    char root_fingerprint[65];    /* SHA-256 of the root certificate, hex */
    char issuing_fingerprint[65]; /* of the default tenant's issuing CA certificate */
    char shares_dir[TS_CA_PATH_MAX];
    unsigned shares_m, shares_n;
    char keystore_uri[TS_CA_PATH_MAX]; /* without a PIN */
    /* The first admin's API token (instance-wide user "admin"), shown once: the caller prints
     * it and wipes it with OPENSSL_cleanse(). TS_TOKEN_MAX of access.h. */
    char admin_token[72];
} ts_ca_init_result;

/*
 * Creates an instance: key store, root and default issuing CA keys and certificates, the built-in
 * profiles, the service's TLS server certificate (access.h), the first admin and its token, the
 * root key's M-of-N backup (DIR/root-key.wrapped and DIR/shares/) and the ceremony transcript as
 * the first audit entries. On failure nothing of it is left behind.
 */
TS_API TS_MUST_CHECK ts_err ts_ca_init(const ts_ca_init_params *params, ts_ca_init_result *result);

/* --- Opening --------------------------------------------------------------------------------- */

/* Opens the instance in dir; actor names who acts in the audit entries of this session. */
TS_API TS_MUST_CHECK ts_err ts_ca_open(const char *dir, const char *actor, ts_ca **out);
TS_API void ts_ca_free(ts_ca *ca);

/* The instance's store, for reading (lists); owned by ca. */
TS_API ts_store *ts_ca_store(ts_ca *ca);

/* The instance's key store, opened on first use; owned by ca. */
TS_API TS_MUST_CHECK ts_err ts_ca_keystore(ts_ca *ca, ts_keystore **out);

/* A tenant by name; TS_ERR_NOT_FOUND naming it. */
TS_API TS_MUST_CHECK ts_err ts_ca_tenant(ts_ca *ca, const char *name, ts_tenant_row *out);

/* Checks a tenant name: 1 to TS_TENANT_NAME_MAX of [a-z0-9-], starting with a letter or digit. */
TS_API TS_MUST_CHECK ts_err ts_ca_tenant_name_check(const char *name);

/* --- The root key: restore from shares, take offline ----------------------------------------- */

/*
 * Recombines the KEK from share files (at least M), unwraps the root key from DIR/root-key.wrapped
 * into the instance's key store, or into keystore_uri when not NULL, and checks it against the
 * root certificate. A bad share names the file and line; nothing changes on failure.
 */
TS_API TS_MUST_CHECK ts_err ts_ca_root_restore(ts_ca *ca, const char *const *share_files,
                                               size_t count, const char *keystore_uri);

/* Deletes the root key from the online key store. TS_ERR_STATE when it is already offline. */
TS_API TS_MUST_CHECK ts_err ts_ca_root_offline(ts_ca *ca);

/* --- Tenants and CA certificates ------------------------------------------------------------- */

/* A tenant with its own issuing CA under the root (the root key must be online). */
TS_API TS_MUST_CHECK ts_err ts_ca_tenant_create(ts_ca *ca, const char *name, const char *org,
                                                const char *country);

/* The active root or issuing CA certificate of a tenant (NULL: default); X509_free() it. */
TS_API TS_MUST_CHECK ts_err ts_ca_cert(ts_ca *ca, const char *tenant, ts_ca_kind kind, X509 **out);

/*
 * The proof-of-possession certificate a cloud asks for when a CA is registered (AWS IoT, Azure
 * DPS): CN=code, signed by the tenant's issuing CA under the "verification" profile, stored and
 * audited. Its own key is made in memory and discarded: only the issuing CA's signature on it
 * is checked by the cloud.
 */
TS_API TS_MUST_CHECK ts_err ts_ca_verification_cert(ts_ca *ca, const char *tenant, const char *code,
                                                    X509 **out);

/* --- Profiles -------------------------------------------------------------------------------- */

/* Creates (replace 0) or updates (replace 1) a tenant's profile from JSON, validated first. */
TS_API TS_MUST_CHECK ts_err ts_ca_profile_put(ts_ca *ca, const char *tenant, const char *name,
                                              const char *json, size_t len, int replace);

/* --- Issuing and lifecycle ------------------------------------------------------------------- */

/* Issues a certificate for a CSR (PEM or DER) under a profile. X509_free() *out. */
TS_API TS_MUST_CHECK ts_err ts_ca_issue_csr(ts_ca *ca, const char *tenant, const char *profile,
                                            const uint8_t *csr, size_t csr_len, X509 **out);

/* The same key and subject with a new serial and validity; the old certificate stays valid. */
TS_API TS_MUST_CHECK ts_err ts_ca_cert_renew(ts_ca *ca, const char *tenant, const char *serial,
                                             X509 **out);

/* A certificate for a new key (CSR) under the same profile and device; the old certificate is
 * revoked as superseded in the same transaction. */
TS_API TS_MUST_CHECK ts_err ts_ca_cert_rekey(ts_ca *ca, const char *tenant, const char *serial,
                                             const uint8_t *csr, size_t csr_len, X509 **out);

/* Revokes a valid certificate with a CRL_REASON_* code. */
TS_API TS_MUST_CHECK ts_err ts_ca_cert_revoke(ts_ca *ca, const char *tenant, const char *serial,
                                              int reason);

/* Normalises a serial as typed (hex, any case, optional "serial=" and colons) to upper-case hex. */
TS_API TS_MUST_CHECK ts_err ts_ca_serial_normalise(const char *text, char out[TS_SERIAL_HEX]);

/* --- Revocation status ----------------------------------------------------------------------- */

/* A v2 CRL of the tenant's issuing CA, next update after next_update_hours. X509_CRL_free(). */
TS_API TS_MUST_CHECK ts_err ts_ca_crl(ts_ca *ca, const char *tenant, unsigned next_update_hours,
                                      X509_CRL **out);

/* A CRL of the root (revoked issuing CAs), signed by the root key, which must be online. */
TS_API TS_MUST_CHECK ts_err ts_ca_root_crl(ts_ca *ca, unsigned next_update_hours, X509_CRL **out);

/* Answers a DER OCSP request for every tenant's issuing CA (RFC 6960). OPENSSL_free(*resp). */
TS_API TS_MUST_CHECK ts_err ts_ca_ocsp(ts_ca *ca, const uint8_t *request, size_t request_len,
                                       uint8_t **resp, size_t *resp_len);

/* --- Batch factory provisioning -------------------------------------------------------------- */

typedef struct ts_batch_params {
    const char *tenant;
    const char *profile;
    size_t count;                  /* devices the batch ends with */
    const char *out_dir;           /* manifest.jsonl, batch.json and devices/ */
    const char *keystore_template; /* NULL: a soft: store per device; else a PKCS#11 token */
} ts_batch_params;

typedef struct ts_batch_result {
    char job[17];     /* the batch's id */
    size_t done;      /* devices with a certificate, after this run */
    size_t made;      /* devices made by this run */
    size_t discarded; /* unfinished devices of an interrupted run that were discarded */
    size_t appended;  /* manifest lines restored from the store */
    int rewritten;    /* the manifest was rewritten from the store */
} ts_batch_result;

/* Called after each device is finished. */
typedef void (*ts_batch_progress_fn)(void *arg, size_t done, size_t count, const char *uid);

/*
 * Provisions devices until the batch in out_dir has count of them, resuming an interrupted run
 * (docs/ca.md gives the invariants that hold after a kill at any point).
 */
TS_API TS_MUST_CHECK ts_err ts_ca_batch(ts_ca *ca, const ts_batch_params *params,
                                        ts_batch_progress_fn progress, void *arg,
                                        ts_batch_result *result);

/* --- Group issuance (src/server/issue_group.c) ----------------------------------------------- */

enum {
    TS_CA_ISSUE_GROUP_MAX = 1000, /* CSRs in one ts_ca_issue_csrs() call */
};

/*
 * Issues certificates for count CSRs (PEM or DER) under one profile with a single store commit.
 * Every CSR is parsed, verified and checked first; a refused CSR gets its own error in results[i]
 * and does not stop the others. The rest are signed, then stored and audited in one transaction,
 * each as ts_ca_issue_csr() does it, and committed once: only after that commit has returned are
 * certs_out[i] set (X509_free() each) and results[i] TS_OK.
 * TS_OK: the group committed; results[] gives each CSR's fate, and when some were refused
 * ts_error_message() names the first. Any other return: nothing was stored, every certs_out[i] is
 * NULL and results[i] holds that error for each CSR that was not refused on its own.
 */
TS_API TS_MUST_CHECK ts_err ts_ca_issue_csrs(ts_ca *ca, const char *tenant, const char *profile,
                                             const uint8_t *const *csrs, const size_t *csr_lens,
                                             size_t count, X509 **certs_out, ts_err *results);

#endif
