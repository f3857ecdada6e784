/*
 * A tenant's command key (include/tessera/commands.h): a P-256 key "command-<tenant>" in the
 * instance key store, certified by the tenant's issuing CA under the built-in "command-signer"
 * profile, whose only extended key usage is TS_COMMAND_EKU_OID.
 *
 * Made on first use by exactly one writer: it claims the tenant's record (a unique settings row,
 * "pending:<time>") in its own transaction, makes the key and the certificate, and records the
 * certificate's serial in the issuing transaction. Every other writer, thread or process, finds
 * the record and waits for the serial; a claim left by a writer that died is taken over after
 * KEY_CLAIM_STALE_S. A certificate that is revoked or near its end is replaced the same way.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "common/error_internal.h"
#include "server/command_internal.h"
#include "server/server_internal.h"
#include "tessera/commands.h"

enum {
    KEY_CLAIM_STALE_S = 60, /* a claim this old belongs to a writer that died */
    KEY_WAIT_MS = 15000,    /* how long a writer waits for another to make the key */
    KEY_RENEW_S = 86400,    /* a certificate this close to its end is replaced */
};

static const char *const PROFILE = "command-signer";

void srv_command_key_label(const char *tenant, char out[TS_COMMAND_KEY_LABEL_MAX + 1])
{
    /* The precision bounds the copy: a tenant name is never longer (TS_TENANT_NAME_MAX). */
    snprintf(out, TS_COMMAND_KEY_LABEL_MAX + 1, "%s%.*s", TS_COMMAND_KEY_PREFIX,
             (int)(TS_COMMAND_KEY_LABEL_MAX - (sizeof TS_COMMAND_KEY_PREFIX - 1)), tenant);
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Records the certificate's serial in the issuing transaction, and audits the key. */
static ts_err key_hook(ts_ca *ca, void *arg, const ts_cert_row *row)
{
    const char *label = arg;
    ts_err rv = ts_store_command_key_set(ca->store, row->tenant_id, row->serial);
    if (rv == TS_OK) {
        rv = srv_audit(ca, "command.key", label,
                       srv_json("{s:s, s:s, s:s}", "serial", row->serial, "profile", PROFILE, "eku",
                                TS_COMMAND_EKU_OID));
    }
    return rv;
}

/* The issuing context with the built-in profile: it is not a tenant's stored profile, so no
 * operator can issue a command-signing certificate through the certificate API. */
ts_err srv_builtin_ctx_load(ts_ca *ca, const char *tenant, const char *profile, srv_issue_ctx *c)
{
    memset(c, 0, sizeof *c);
    ts_err rv = ts_ca_tenant(ca, tenant, &c->tenant);
    if (rv == TS_OK) {
        rv = ts_profile_builtin(profile, &c->profile);
    }
    if (rv == TS_OK) {
        rv = srv_issuing_load(ca, c->tenant.id, 1, &c->issuer);
    }
    if (rv == TS_OK) {
        rv = srv_urls_make(ca, c->tenant.name, &c->urls);
    }
    if (rv != TS_OK) {
        srv_issue_ctx_clear(c);
    }
    return rv;
}

ts_err srv_subject_make(const char *org, const char *cn, X509_NAME **out)
{
    X509_NAME *n = X509_NAME_new();
    if (n == NULL ||
        !X509_NAME_add_entry_by_NID(n, NID_organizationName, MBSTRING_UTF8,
                                    (const unsigned char *)org, -1, -1, 0) ||
        !X509_NAME_add_entry_by_NID(n, NID_commonName, MBSTRING_UTF8, (const unsigned char *)cn, -1,
                                    -1, 0)) {
        X509_NAME_free(n);
        return ts_error_set_openssl(TS_ERR_INVALID, "cannot make the subject CN=%s", cn);
    }
    *out = n;
    return TS_OK;
}

/* Makes the key (or takes the one a dead writer left) and issues its certificate. */
static ts_err key_make(ts_ca *ca, const ts_tenant_row *t, const char *label)
{
    srv_issue_ctx c;
    srv_issue_req req;
    ts_keystore *ks = NULL;
    EVP_PKEY *pub = NULL;
    X509_NAME *subject = NULL;
    X509 *cert = NULL;
    char cn[TS_NAME_MAX + 32];

    ts_err rv = ts_ca_keystore(ca, &ks);
    if (rv == TS_OK) {
        rv = ts_keystore_public_key(ks, label, &pub);
        if (rv == TS_ERR_NOT_FOUND) {
            rv = ts_keystore_generate(ks, label, TS_CURVE_P256);
            if (rv == TS_OK) {
                rv = ts_keystore_public_key(ks, label, &pub);
            }
        }
    }
    if (rv != TS_OK) {
        return ts_error_prefix(rv, "the command key '%s'", label);
    }
    rv = srv_builtin_ctx_load(ca, t->name, PROFILE, &c);
    if (rv != TS_OK) {
        EVP_PKEY_free(pub);
        return rv;
    }
    snprintf(cn, sizeof cn, "Tessera commands %.*s", (int)TS_TENANT_NAME_MAX, t->name);
    rv = srv_subject_make(c.tenant.org[0] != '\0' ? c.tenant.org : ca->org, cn, &subject);
    if (rv == TS_OK) {
        srv_issue_req_init(ca, &c, PROFILE, "cert.issue", &req);
        req.params.public_key = pub;
        req.params.subject = subject;
        req.device_uid = "";
        req.details = srv_json("{s:s, s:s}", "purpose", "command-signer", "key_label", label);
        req.hook = key_hook;
        req.hook_arg = (void *)label;
        rv = srv_issue(ca, &req, &cert);
    }
    srv_issue_ctx_clear(&c);
    X509_free(cert);
    X509_NAME_free(subject);
    EVP_PKEY_free(pub);
    return rv;
}

/* One transaction around a claim or drop of the tenant's record. */
static ts_err record_tx(ts_ca *ca, int64_t tenant_id, const char *value, int claim)
{
    ts_err rv = ts_store_begin(ca->store);
    if (rv != TS_OK) {
        return rv;
    }
    rv = claim ? ts_store_command_key_claim(ca->store, tenant_id, value)
               : ts_store_command_key_drop(ca->store, tenant_id, value);
    return srv_tx_end(ca, rv);
}

/* The certificate the record names, when it is valid now and for a while yet. */
static ts_err cert_current(ts_ca *ca, int64_t tenant_id, const char *serial, X509 **out)
{
    ts_cert_row row;
    memset(&row, 0, sizeof row);
    ts_err rv = ts_store_cert_get(ca->store, tenant_id, serial, &row);
    if (rv == TS_OK && (row.state != TS_CERT_VALID || row.not_after < time(NULL) + KEY_RENEW_S)) {
        rv = ts_error_set(TS_ERR_STATE, "the command-key certificate %s is revoked or ending",
                          serial);
    }
    if (rv == TS_OK) {
        const unsigned char *p = row.der;
        *out = d2i_X509(NULL, &p, (long)row.der_len);
        if (*out == NULL) {
            rv = ts_error_set_openssl(TS_ERR_CORRUPT, "stored certificate %s", serial);
        }
    }
    ts_cert_row_clear(&row);
    return rv;
}

ts_err srv_command_key_load(ts_ca *ca, const ts_tenant_row *t, EVP_PKEY **key, X509 **cert)
{
    char label[TS_COMMAND_KEY_LABEL_MAX + 1];
    srv_command_key_label(t->name, label);
    long waited = 0;
    int rounds = 0;
    ts_err rv = TS_OK;

    *cert = NULL;
    if (key != NULL) {
        *key = NULL;
    }
    for (;;) {
        char *value = NULL;
        if (++rounds > 1000) {
            return ts_error_set(TS_ERR_STATE, "no usable command key for tenant '%s'", t->name);
        }
        rv = ts_store_command_key_get(ca->store, t->id, &value);
        if (rv == TS_ERR_NOT_FOUND) {
            char claim[40];
            snprintf(claim, sizeof claim, "pending:%lld", (long long)time(NULL));
            rv = record_tx(ca, t->id, claim, 1);
            if (rv == TS_ERR_EXISTS || rv == TS_ERR_CONFLICT) {
                continue; /* another writer claimed it first: wait for its serial */
            }
            if (rv == TS_OK) {
                rv = key_make(ca, t, label);
                if (rv != TS_OK) {
                    ts_err keep = rv;
                    char *msg = OPENSSL_strdup(ts_error_message());
                    (void)record_tx(ca, t->id, claim, 0);
                    rv = ts_error_set(keep, "%s", msg != NULL ? msg : "cannot make the key");
                    OPENSSL_free(msg);
                    return rv;
                }
                continue;
            }
            return rv;
        }
        if (rv != TS_OK) {
            return rv;
        }
        if (strncmp(value, "pending:", 8) == 0) {
            long long since = strtoll(value + 8, NULL, 10);
            if (time(NULL) - since > KEY_CLAIM_STALE_S) {
                rv = record_tx(ca, t->id, value, 0); /* the claimant died: take over */
            } else if (waited >= KEY_WAIT_MS) {
                rv = ts_error_set(TS_ERR_CONFLICT,
                                  "the command key of tenant '%s' is still being made", t->name);
            } else {
                sleep_ms(50);
                waited += 50;
            }
            OPENSSL_free(value);
            if (rv != TS_OK) {
                return rv;
            }
            continue;
        }
        rv = cert_current(ca, t->id, value, cert);
        if (rv == TS_ERR_STATE || rv == TS_ERR_NOT_FOUND) {
            rv = record_tx(ca, t->id, value, 0); /* replace it */
            OPENSSL_free(value);
            if (rv != TS_OK) {
                return rv;
            }
            continue;
        }
        OPENSSL_free(value);
        break;
    }
    if (rv == TS_OK && key != NULL) {
        ts_keystore *ks = NULL;
        rv = ts_ca_keystore(ca, &ks);
        if (rv == TS_OK) {
            rv = ts_keystore_evp_pkey(ks, label, key);
        }
    }
    if (rv != TS_OK) {
        X509_free(*cert);
        *cert = NULL;
    }
    return rv != TS_OK ? ts_error_prefix(rv, "the command key of tenant '%s'", t->name) : TS_OK;
}

ts_err ts_ca_command_key_cert(ts_ca *ca, const char *tenant, X509 **out)
{
    ts_tenant_row t;
    if (ca == NULL || out == NULL) {
        return ts_error_set(TS_ERR_INVALID, "ts_ca_command_key_cert: missing argument");
    }
    ts_err rv = ts_ca_tenant(ca, tenant, &t);
    return rv != TS_OK ? rv : srv_command_key_load(ca, &t, NULL, out);
}

ts_err ts_ca_command_sign(ts_ca *ca, const ts_command_row *row, unsigned char **der,
                          size_t *der_len)
{
    ts_tenant_row t;
    srv_issuer issuer;
    EVP_PKEY *key = NULL;
    X509 *cert = NULL;
    STACK_OF(X509) *chain = NULL;

    if (ca == NULL || row == NULL || der == NULL || der_len == NULL) {
        return ts_error_set(TS_ERR_INVALID, "ts_ca_command_sign: missing argument");
    }
    memset(&issuer, 0, sizeof issuer);
    ts_err rv = ts_ca_tenant(ca, row->cmd.tenant, &t);
    if (rv == TS_OK && t.id != row->tenant_id) {
        rv = ts_error_set(TS_ERR_INVALID, "the command's tenant does not match its row");
    }
    if (rv == TS_OK) {
        rv = srv_command_key_load(ca, &t, &key, &cert);
    }
    /* The issuing CA goes along so a device can build the path to its roots. */
    if (rv == TS_OK) {
        rv = srv_issuing_load(ca, t.id, 0, &issuer);
    }
    if (rv == TS_OK && X509_check_issued(issuer.cert, cert) == X509_V_OK) {
        chain = sk_X509_new_null();
        if (chain == NULL || !sk_X509_push(chain, issuer.cert)) {
            rv = ts_error_set(TS_ERR_NOMEM, "out of memory");
        }
    }
    if (rv == TS_OK) {
        rv = ts_command_sign(&row->cmd, key, cert, chain, der, der_len);
    }
    sk_X509_free(chain);
    srv_issuer_clear(&issuer);
    EVP_PKEY_free(key);
    X509_free(cert);
    return rv != TS_OK ? ts_error_prefix(rv, "signing command %s", row->cmd.id) : TS_OK;
}
