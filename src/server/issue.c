/*
 * Issuing and the certificate lifecycle: issue from a CSR, renew (same key), rekey (new key, the
 * old certificate superseded), revoke. Every issuance goes through srv_issue(): a fresh random
 * serial, the signature, then one transaction that stores the certificate and its audit entry;
 * a serial already taken under the issuer (the store's unique constraint, TS_ERR_CONFLICT) is
 * retried with a new one.
 */
#include <ctype.h>
#include <string.h>
#include <strings.h>

#include <openssl/x509v3.h>

#include "common/error_internal.h"
#include "server/server_internal.h"

/* The certificate's CN as UTF-8 into buf; empty when there is none or it does not fit. */
static void cert_cn(X509 *cert, char *buf, size_t size)
{
    X509_NAME *name = X509_get_subject_name(cert);
    int idx = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
    unsigned char *utf8 = NULL;

    buf[0] = '\0';
    if (idx < 0) {
        return;
    }
    int len = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, idx)));
    if (len > 0 && (size_t)len < size) {
        memcpy(buf, utf8, (size_t)len);
        buf[len] = '\0';
    }
    OPENSSL_free(utf8);
}

/* One attempt: sign with a fresh serial and store it. TS_ERR_CONFLICT: the serial was taken. */
static ts_err issue_once(ts_ca *ca, srv_issue_req *req, X509 **out)
{
    uint8_t serial[TS_SERIAL_LEN];
    ts_cert_row row;
    X509 *cert = NULL;
    json_t *details = NULL;
    int in_tx = 0;
    ts_err rv;

    memset(&row, 0, sizeof row);
    rv = ts_serial_random(serial);
    if (rv != TS_OK) {
        return rv;
    }
    req->params.serial = serial;
    req->params.issuer_cert = req->issuer->cert;
    req->params.issuer_key = req->issuer->key;
    rv = ts_cert_issue(&req->params, &cert);
    if (rv == TS_OK) {
        rv = srv_cert_row_fill(cert, &row);
    }
    if (rv != TS_OK) {
        goto done;
    }
    row.tenant_id = req->tenant->id;
    row.issuer_ca_id = req->issuer->row.id;
    snprintf(row.profile, sizeof row.profile, "%s", req->profile_name);
    if (req->device_uid != NULL) {
        snprintf(row.device_uid, sizeof row.device_uid, "%s", req->device_uid);
    } else if (srv_profile_is_device(req->params.profile)) {
        cert_cn(cert, row.device_uid, sizeof row.device_uid);
    }
    details = req->details != NULL ? json_deep_copy(req->details) : json_object();
    if (details == NULL ||
        json_object_update_new(
            details, srv_json("{s:s, s:s, s:s, s:s, s:s, s:s}", "tenant", req->tenant->name,
                              "profile", row.profile, "serial", row.serial, "subject", row.subject,
                              "sha256", row.fingerprint, "device", row.device_uid)) != 0) {
        json_decref(details);
        rv = ts_error_set(TS_ERR_NOMEM, "out of memory");
        goto done;
    }
    rv = ts_store_begin(ca->store);
    in_tx = rv == TS_OK;
    /* The device first: a disabled one stops the issuance before anything is stored. */
    if (rv == TS_OK && row.device_uid[0] != '\0') {
        rv = srv_device_admit(ca, req->tenant->id, row.device_uid, &req->device);
    }
    if (rv == TS_OK) {
        rv = ts_store_cert_insert(ca->store, &row);
    }
    if (rv == TS_OK && req->hook != NULL) {
        rv = req->hook(ca, req->hook_arg, &row);
    }
    if (rv == TS_OK) {
        rv = srv_audit(ca, req->action, row.serial, details);
        details = NULL;
    }
    if (rv == TS_OK) {
        rv = ts_store_commit(ca->store);
        in_tx = 0;
    }
done:
    if (in_tx && rv != TS_OK) {
        ts_store_rollback(ca->store);
    }
    json_decref(details);
    ts_cert_row_clear(&row);
    if (rv == TS_OK) {
        *out = cert;
    } else {
        X509_free(cert);
    }
    return rv;
}

ts_err srv_issue(ts_ca *ca, srv_issue_req *req, X509 **out)
{
    ts_err rv = TS_ERR_CONFLICT;

    *out = NULL;
    /* RFC 5280 section 4.1.2.2: the serial is unique per issuer. With 159 random bits a
     * collision is all but impossible, but the store's constraint is what guarantees it. */
    for (int i = 0; i < SRV_ISSUE_TRIES && rv == TS_ERR_CONFLICT; i++) {
        rv = issue_once(ca, req, out);
    }
    json_decref(req->details);
    req->details = NULL;
    if (rv == TS_ERR_CONFLICT) {
        ts_error_prefix(rv, "no free serial after %d tries", SRV_ISSUE_TRIES);
    }
    return rv;
}

void srv_issue_ctx_clear(srv_issue_ctx *c)
{
    srv_issuer_clear(&c->issuer);
    ts_profile_free(c->profile);
    srv_urls_clear(&c->urls);
    memset(c, 0, sizeof *c); /* cleared twice (a failed load, then its owner) is harmless */
}

ts_err srv_issue_ctx_load(ts_ca *ca, const char *tenant, const char *profile, srv_issue_ctx *c)
{
    memset(c, 0, sizeof *c);
    ts_err rv = ts_ca_tenant(ca, tenant, &c->tenant);
    if (rv == TS_OK) {
        rv = srv_profile_load(ca, c->tenant.id, profile, &c->profile);
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

void srv_issue_req_init(ts_ca *ca, srv_issue_ctx *c, const char *profile, const char *action,
                        srv_issue_req *req)
{
    memset(req, 0, sizeof *req);
    req->tenant = &c->tenant;
    req->issuer = &c->issuer;
    req->profile_name = profile;
    req->action = action;
    req->params.profile = c->profile;
    req->params.vars.org = c->tenant.org[0] != '\0' ? c->tenant.org : ca->org;
    req->params.vars.country = c->tenant.country[0] != '\0' ? c->tenant.country : ca->country;
    req->params.crl_url = c->urls.crl;
    req->params.ocsp_url = c->urls.ocsp;
    req->params.ca_issuers_url = c->urls.ca_issuers;
}

ts_err srv_csr_load(const uint8_t *data, size_t len, const ts_profile *profile, X509_REQ **out)
{
    ts_err rv = ts_csr_parse(data, len, out);
    if (rv == TS_OK) {
        rv = ts_csr_check(*out, profile);
    }
    if (rv != TS_OK) {
        X509_REQ_free(*out);
        *out = NULL;
        ts_error_prefix(rv, "CSR refused");
    }
    return rv;
}

ts_err ts_ca_issue_csr(ts_ca *ca, const char *tenant, const char *profile, const uint8_t *csr,
                       size_t csr_len, X509 **out)
{
    srv_issue_ctx c;
    srv_issue_req req;
    X509_REQ *request = NULL;
    ts_err rv = srv_issue_ctx_load(ca, tenant, profile, &c);

    *out = NULL;
    if (rv != TS_OK) {
        return rv;
    }
    rv = srv_csr_load(csr, csr_len, c.profile, &request);
    if (rv == TS_OK) {
        srv_issue_req_init(ca, &c, profile, "cert.issue", &req);
        req.params.csr = request;
        rv = srv_issue(ca, &req, out);
    }
    X509_REQ_free(request);
    srv_issue_ctx_clear(&c);
    return rv;
}

ts_err ts_ca_serial_normalise(const char *text, char out[TS_SERIAL_HEX])
{
    size_t n = 0;
    if (text == NULL) {
        return ts_error_set(TS_ERR_INVALID, "no serial");
    }
    if (strncasecmp(text, "serial=", 7) == 0) {
        text += 7;
    }
    for (const char *p = text; *p != '\0'; p++) {
        if (*p == ':') {
            continue;
        }
        if (!isxdigit((unsigned char)*p)) {
            return ts_error_set(TS_ERR_INVALID, "serial '%s': not hexadecimal", text);
        }
        if (n + 1 >= TS_SERIAL_HEX) {
            return ts_error_set(TS_ERR_INVALID, "serial '%s': longer than %d bytes", text,
                                TS_SERIAL_LEN);
        }
        out[n++] = (char)toupper((unsigned char)*p);
    }
    out[n] = '\0';
    if (n == 0) {
        return ts_error_set(TS_ERR_INVALID, "empty serial");
    }
    return TS_OK;
}

/* The stored certificate of serial in a tenant, which must still be valid, and its X509. */
static ts_err old_cert(ts_ca *ca, const ts_tenant_row *tenant, const char *serial, ts_cert_row *row,
                       X509 **cert)
{
    char hex[TS_SERIAL_HEX];
    ts_err rv = ts_ca_serial_normalise(serial, hex);
    if (rv != TS_OK) {
        return rv;
    }
    rv = ts_store_cert_get(ca->store, tenant->id, hex, row);
    if (rv == TS_ERR_NOT_FOUND) {
        return ts_error_set(rv, "no certificate with serial %s in tenant '%s'", hex, tenant->name);
    }
    if (rv != TS_OK) {
        return rv;
    }
    if (row->state != TS_CERT_VALID) {
        return ts_error_set(TS_ERR_STATE, "certificate %s is revoked", hex);
    }
    const unsigned char *p = row->der;
    *cert = d2i_X509(NULL, &p, (long)row->der_len);
    if (*cert == NULL) {
        return ts_error_set_openssl(TS_ERR_CORRUPT, "stored certificate %s is malformed", hex);
    }
    return TS_OK;
}

ts_err ts_ca_cert_renew(ts_ca *ca, const char *tenant, const char *serial, X509 **out)
{
    ts_tenant_row t;
    ts_cert_row row;
    X509 *old = NULL;
    GENERAL_NAMES *sans = NULL;
    srv_issue_ctx c;
    srv_issue_req req;
    int loaded = 0;
    ts_err rv;

    *out = NULL;
    memset(&row, 0, sizeof row);
    rv = ts_ca_tenant(ca, tenant, &t);
    if (rv == TS_OK) {
        rv = old_cert(ca, &t, serial, &row, &old);
    }
    if (rv == TS_OK) {
        rv = srv_issue_ctx_load(ca, t.name, row.profile, &c);
        loaded = rv == TS_OK;
    }
    if (rv != TS_OK) {
        goto done;
    }
    /* The same key, subject and subjectAltName; a new serial and validity. */
    sans = X509_get_ext_d2i(old, NID_subject_alt_name, NULL, NULL);
    srv_issue_req_init(ca, &c, row.profile, "cert.renew", &req);
    req.params.public_key = X509_get0_pubkey(old);
    req.params.subject = X509_get_subject_name(old);
    req.params.sans = sans;
    req.device_uid = row.device_uid[0] != '\0' ? row.device_uid : NULL;
    req.details = srv_json("{s:s}", "renews", row.serial);
    rv = srv_issue(ca, &req, out);
done:
    if (loaded) {
        srv_issue_ctx_clear(&c);
    }
    GENERAL_NAMES_free(sans);
    X509_free(old);
    ts_cert_row_clear(&row);
    return rv;
}

typedef struct rekey_arg {
    const ts_tenant_row *tenant;
    const ts_cert_row *old;
} rekey_arg;

/* Inside the rekey transaction: the old certificate is superseded by the new one. */
static ts_err rekey_hook(ts_ca *ca, void *arg, const ts_cert_row *row)
{
    rekey_arg *a = arg;
    time_t now = time(NULL);
    ts_err rv =
        ts_store_cert_revoke(ca->store, a->tenant->id, a->old->serial, now, CRL_REASON_SUPERSEDED);
    if (rv != TS_OK) {
        return ts_error_prefix(rv, "cannot revoke %s", a->old->serial);
    }
    rv = srv_feed_revoked(ca, a->old, CRL_REASON_SUPERSEDED, now);
    if (rv != TS_OK) {
        return rv;
    }
    return srv_audit(ca, "cert.revoke", a->old->serial,
                     srv_json("{s:s, s:s, s:s, s:s}", "tenant", a->tenant->name, "serial",
                              a->old->serial, "reason", "superseded", "superseded_by",
                              row->serial));
}

ts_err ts_ca_cert_rekey(ts_ca *ca, const char *tenant, const char *serial, const uint8_t *csr,
                        size_t csr_len, X509 **out)
{
    ts_tenant_row t;
    ts_cert_row row;
    X509 *old = NULL;
    X509_REQ *request = NULL;
    srv_issue_ctx c;
    srv_issue_req req;
    rekey_arg arg;
    int loaded = 0;
    ts_err rv;

    *out = NULL;
    memset(&row, 0, sizeof row);
    rv = ts_ca_tenant(ca, tenant, &t);
    if (rv == TS_OK) {
        rv = old_cert(ca, &t, serial, &row, &old);
    }
    if (rv == TS_OK) {
        rv = srv_issue_ctx_load(ca, t.name, row.profile, &c);
        loaded = rv == TS_OK;
    }
    if (rv == TS_OK) {
        rv = srv_csr_load(csr, csr_len, c.profile, &request);
    }
    if (rv != TS_OK) {
        goto done;
    }
    if (EVP_PKEY_eq(X509_REQ_get0_pubkey(request), X509_get0_pubkey(old)) == 1) {
        rv = ts_error_set(TS_ERR_POLICY,
                          "rekey: the CSR has the same key as certificate %s (use cert renew)",
                          row.serial);
        goto done;
    }
    arg.tenant = &c.tenant;
    arg.old = &row;
    srv_issue_req_init(ca, &c, row.profile, "cert.rekey", &req);
    req.params.csr = request;
    /* A device keeps its identity: the template's <device UID> is the old certificate's. */
    req.params.vars.device_uid = row.device_uid[0] != '\0' ? row.device_uid : NULL;
    req.device_uid = req.params.vars.device_uid;
    req.details = srv_json("{s:s}", "replaces", row.serial);
    req.hook = rekey_hook;
    req.hook_arg = &arg;
    rv = srv_issue(ca, &req, out);
done:
    if (loaded) {
        srv_issue_ctx_clear(&c);
    }
    X509_REQ_free(request);
    X509_free(old);
    ts_cert_row_clear(&row);
    return rv;
}

ts_err ts_ca_cert_revoke(ts_ca *ca, const char *tenant, const char *serial, int reason)
{
    ts_tenant_row t;
    ts_cert_row row;
    X509 *old = NULL;
    const char *reason_name = ts_crl_reason_name(reason);
    time_t now = time(NULL);
    int in_tx = 0;
    ts_err rv;

    memset(&row, 0, sizeof row);
    rv = ts_ca_tenant(ca, tenant, &t);
    if (rv == TS_OK) {
        rv = old_cert(ca, &t, serial, &row, &old);
        if (rv == TS_ERR_STATE) {
            ts_error_set(rv, "certificate %s is already revoked", row.serial);
        }
    }
    if (rv == TS_OK) {
        rv = ts_store_begin(ca->store);
        in_tx = rv == TS_OK;
    }
    if (rv == TS_OK) {
        rv = ts_store_cert_revoke(ca->store, t.id, row.serial, now, reason);
    }
    if (rv == TS_OK) {
        rv = srv_feed_revoked(ca, &row, reason, now);
    }
    if (rv == TS_OK) {
        rv = srv_audit(ca, "cert.revoke", row.serial,
                       srv_json("{s:s, s:s, s:s, s:s}", "tenant", t.name, "serial", row.serial,
                                "reason", reason_name != NULL ? reason_name : "unspecified",
                                "subject", row.subject));
    }
    if (in_tx) {
        rv = srv_tx_end(ca, rv);
    }
    X509_free(old);
    ts_cert_row_clear(&row);
    return rv;
}

ts_err ts_ca_verification_cert(ts_ca *ca, const char *tenant, const char *code, X509 **out)
{
    static const char *const profile = "verification";
    srv_issue_ctx c;
    srv_issue_req req;
    EVP_PKEY *key = NULL;
    size_t len = code != NULL ? strlen(code) : 0;
    ts_err rv;

    *out = NULL;
    if (len == 0 || len > TS_VERIFY_CODE_MAX ||
        strspn(code, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != len) {
        return ts_error_set(TS_ERR_INVALID,
                            "registration code: 1 to %d characters of A-Z a-z 0-9 . _ -",
                            TS_VERIFY_CODE_MAX);
    }
    rv = srv_issue_ctx_load(ca, tenant, profile, &c);
    if (rv != TS_OK) {
        return rv;
    }
    /* The cloud checks only that the tenant's issuing CA signed CN=code: the certificate's own
     * key is never used, so it lives in memory only and is discarded. */
    key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    if (key == NULL) {
        rv = ts_error_set_openssl(TS_ERR_CRYPTO, "cannot make the verification certificate's key");
    }
    if (rv == TS_OK) {
        srv_issue_req_init(ca, &c, profile, "cert.verification", &req);
        req.params.public_key = key;
        req.params.vars.code = code;
        req.device_uid = "";
        req.details = srv_json("{s:s}", "code", code);
        rv = srv_issue(ca, &req, out);
    }
    EVP_PKEY_free(key);
    srv_issue_ctx_clear(&c);
    return rv;
}
