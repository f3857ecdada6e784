/*
 * EST enrollment (RFC 7030 sections 4.2 and 4.4): simpleenroll and serverkeygen for a device
 * that proves itself with a client certificate of the tenant or a claim code, and
 * simplereenroll for a device's current certificate. docs/est.md gives the rules.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "common/error_internal.h"
#include "service/svc_est_internal.h"

/* The CN of a name into buf (empty when it has none). */
static void name_cn(const X509_NAME *name, char *buf, size_t size)
{
    buf[0] = '\0';
    if (X509_NAME_get_text_by_NID(name, NID_commonName, buf, (int)size) <= 0) {
        buf[0] = '\0';
    }
}

/*
 * A client certificate that may enroll in tenant t: verified by the TLS layer, issued by the
 * tenant's CA and not revoked. It authenticates one device, so it may only enroll that device:
 * the CSR's CN must be the certificate's (a CSR for another device needs a claim code).
 */
static int client_identity(svc_request *r, const ts_tenant_row *t, char cn[TS_NAME_MAX + 1])
{
    if (r->client_cert == NULL) {
        est_reply_text(r, 401,
                       "authentication required: a TLS client certificate of tenant %s, or a "
                       "claim code as the password of HTTP Basic",
                       t->name);
        return 0;
    }
    if (r->client_revoked) {
        est_reply_text(r, 401, "the client certificate (serial %s) is revoked", r->client_serial);
        return 0;
    }
    if (r->client_tenant.id != t->id) {
        est_reply_text(r, 401, "the client certificate is not one of tenant %s", t->name);
        return 0;
    }
    name_cn(X509_get_subject_name(r->client_cert), cn, TS_NAME_MAX + 1);
    est_actor(r, "device", cn[0] != '\0' ? cn : r->client_serial);
    return 1;
}

static int same_device(svc_request *r, const char *cn, X509_REQ *csr)
{
    char want[TS_NAME_MAX + 1];

    name_cn(X509_REQ_get_subject_name(csr), want, sizeof want);
    if (cn[0] == '\0' || strcmp(cn, want) != 0) {
        est_reply_text(r, 403,
                       "the client certificate belongs to device '%s'; a certificate for '%s' "
                       "needs that device's own certificate or a claim code",
                       cn, want);
        return 0;
    }
    return 1;
}

static int csr_signed(svc_request *r, X509_REQ *csr)
{
    EVP_PKEY *key = X509_REQ_get0_pubkey(csr);

    if (key == NULL || X509_REQ_verify(csr, key) != 1) {
        est_reply_text(r, 400, "CSR refused: its signature does not verify with its own key");
        return 0;
    }
    return 1;
}

/* A failed issuance: a CSR whose signature does not verify is the client's error (400), not an
 * authentication failure as svc_err_status() maps TS_ERR_AUTH. */
static void est_refused(svc_request *r, ts_err rv)
{
    if (rv == TS_ERR_AUTH) {
        est_reply_text(r, 400, "%s", ts_error_message());
        return;
    }
    est_reply_err(r, rv);
}

void est_reply_cert(svc_request *r, X509 *cert)
{
    uint8_t *der = NULL;
    size_t len = 0;
    ts_err rv = ts_est_certs_only(&cert, 1, &der, &len);

    if (rv != TS_OK) {
        est_reply_err(r, rv);
        return;
    }
    est_reply_base64(r, EST_CT_CERTS_ONLY, der, len);
    OPENSSL_free(der);
}

/* One part of the serverkeygen reply: its headers and base64 content. */
static ts_err add_part(char *body, size_t size, size_t *pos, const char *type, const uint8_t *der,
                       size_t len)
{
    char *text = NULL;
    size_t text_len = 0;
    int n;
    ts_err rv = ts_est_base64_encode(der, len, "\r\n", &text, &text_len);

    if (rv != TS_OK) {
        return rv;
    }
    n = snprintf(body + *pos, size - *pos,
                 "--" EST_BOUNDARY "\r\nContent-Type: %s\r\nContent-Transfer-Encoding: "
                 "base64\r\n\r\n%s",
                 type, text);
    OPENSSL_clear_free(text, text_len);
    if (n < 0 || (size_t)n >= size - *pos) {
        return ts_error_set(TS_ERR_NOMEM, "the serverkeygen reply does not fit its buffer");
    }
    *pos += (size_t)n;
    return TS_OK;
}

/*
 * RFC 7030 section 4.4.2: multipart/mixed, the private key first (application/pkcs8, unencrypted:
 * the TLS connection protects it) and then the certificate (certs-only). The key exists only in
 * this reply; every copy here is wiped.
 */
static void reply_keygen(svc_request *r, EVP_PKEY *key, X509 *cert)
{
    uint8_t *p8 = NULL, *certs = NULL;
    size_t p8_len = 0, certs_len = 0, size, pos = 0;
    char *body = NULL;
    ts_err rv = ts_est_pkcs8(key, &p8, &p8_len);

    if (rv == TS_OK) {
        rv = ts_est_certs_only(&cert, 1, &certs, &certs_len);
    }
    if (rv != TS_OK) {
        goto cleanup;
    }
    size = (p8_len + certs_len) * 2 + 512;
    body = OPENSSL_malloc(size);
    if (body == NULL) {
        rv = ts_error_set(TS_ERR_NOMEM, "out of memory for the serverkeygen reply");
        goto cleanup;
    }
    rv = add_part(body, size, &pos, EST_CT_PKCS8, p8, p8_len);
    if (rv == TS_OK) {
        rv = add_part(body, size, &pos, EST_CT_CERTS_ONLY, certs, certs_len);
    }
    if (rv == TS_OK && size - pos <= sizeof "--" EST_BOUNDARY "--\r\n") {
        rv = ts_error_set(TS_ERR_NOMEM, "the serverkeygen reply does not fit its buffer");
    }
    if (rv == TS_OK) {
        pos += (size_t)snprintf(body + pos, size - pos, "--" EST_BOUNDARY "--\r\n");
        svc_reply(r, 200, "multipart/mixed; boundary=" EST_BOUNDARY, body, pos);
    }
cleanup:
    if (rv != TS_OK) {
        est_reply_err(r, rv);
    }
    OPENSSL_clear_free(body, body != NULL ? size : 0);
    OPENSSL_clear_free(p8, p8_len);
    OPENSSL_free(certs);
}

/* What an enrollment needs to know before it issues. */
typedef struct enroll_ctx {
    ts_tenant_row tenant;
    est_claim claim;
    int by_claim;
    char cn[TS_NAME_MAX + 1];      /* the client certificate's CN */
    char profile[TS_NAME_MAX + 1]; /* the profile issued under; empty: the claim code's */
    char shown[TS_NAME_MAX + 24];  /* the profile as messages name it */
    int pop;
    int keygen;
} enroll_ctx;

/* Who asks, and what the profile they will be issued under requires. 0 after a reply. */
static int enroll_auth(svc_request *r, enroll_ctx *e, X509_REQ *csr)
{
    ts_profile *p = NULL;

    if (e->by_claim) {
        if (!est_claim_profiles(r, &e->tenant, &e->claim)) {
            return 0;
        }
        e->pop = e->claim.pop;
        e->keygen = e->claim.keygen;
        snprintf(e->profile, sizeof e->profile, "%s", e->claim.profile);
        snprintf(e->shown, sizeof e->shown, "'%s'", e->profile);
        return 1;
    }
    if (!same_device(r, e->cn, csr) || !est_profile(r, &e->tenant, EST_PROFILE, &p)) {
        return 0;
    }
    e->pop = ts_profile_est_pop(p);
    e->keygen = ts_profile_est_server_keygen(p);
    snprintf(e->profile, sizeof e->profile, "%s", EST_PROFILE);
    snprintf(e->shown, sizeof e->shown, "'%s'", EST_PROFILE);
    ts_profile_free(p);
    return 1;
}

/* A key of the profile's type and the request that certifies it (RFC 7030 section 4.4.1). */
static int keygen_request(svc_request *r, const enroll_ctx *e, X509_REQ *csr, EVP_PKEY **key,
                          uint8_t **der, size_t *len)
{
    ts_profile *p = NULL;
    ts_err rv;

    if (!e->keygen) {
        est_reply_text(r, 501,
                       "server-side key generation is not enabled for profile %s of tenant %s "
                       "(its JSON needs \"est\": {\"server_keygen\": true})",
                       e->shown, e->tenant.name);
        return 0;
    }
    if (!est_profile(r, &e->tenant, e->profile, &p)) {
        return 0;
    }
    rv = ts_est_keygen(p, key);
    if (rv == TS_OK) {
        rv = ts_est_keygen_csr(csr, *key, der, len);
    }
    ts_profile_free(p);
    if (rv != TS_OK) {
        est_reply_err(r, rv);
        return 0;
    }
    return 1;
}

static void enroll(svc_request *r, int keygen)
{
    enroll_ctx e;
    X509_REQ *csr = NULL;
    uint8_t *der = NULL, *made = NULL;
    size_t len = 0, made_len = 0;
    EVP_PKEY *key = NULL;
    X509 *cert = NULL;
    ts_err rv;

    memset(&e, 0, sizeof e);
    if (!est_tenant(r, &e.tenant)) {
        goto cleanup;
    }
    e.by_claim = est_claim_read(r, &e.claim);
    if (e.by_claim < 0 || (e.by_claim == 0 && !client_identity(r, &e.tenant, e.cn))) {
        goto cleanup;
    }
    if (e.by_claim) {
        est_actor(r, "claim", e.claim.prefix);
    }
    if (!est_body_csr(r, &der, &len, &csr) || !enroll_auth(r, &e, csr)) {
        goto cleanup;
    }
    /* A claim code's refusal and a bad signature are both TS_ERR_AUTH from the issuing call, so
     * the signature is checked first there. Section 4.4.1: serverkeygen ignores it. */
    if (e.by_claim && !keygen && !csr_signed(r, csr)) {
        goto cleanup;
    }
    if (!est_pop(r, e.pop, e.shown, csr)) {
        goto cleanup;
    }
    if (keygen && !keygen_request(r, &e, csr, &key, &made, &made_len)) {
        goto cleanup;
    }
    if (e.by_claim) {
        rv = ts_ca_claim_enroll(r->ca, e.tenant.name, e.claim.code, keygen ? made : der,
                                keygen ? made_len : len, &cert);
    } else {
        rv = ts_ca_issue_csr(r->ca, e.tenant.name, EST_PROFILE, keygen ? made : der,
                             keygen ? made_len : len, &cert);
    }
    if (rv == TS_ERR_AUTH && e.by_claim) {
        /* The signature was checked above: what failed is the code. Nothing changed. */
        est_claim_refused(r);
        goto cleanup;
    }
    if (rv != TS_OK) {
        est_refused(r, rv);
        goto cleanup;
    }
    svc_metrics_issued(1);
    if (keygen) {
        reply_keygen(r, key, cert);
    } else {
        est_reply_cert(r, cert);
    }
cleanup:
    X509_free(cert);
    EVP_PKEY_free(key);
    OPENSSL_free(made);
    OPENSSL_free(der);
    X509_REQ_free(csr);
    est_claim_clear(&e.claim);
}

void svc_est_simpleenroll(svc_request *r)
{
    enroll(r, 0);
}

void svc_est_serverkeygen(svc_request *r)
{
    enroll(r, 1);
}

/*
 * The stored row of the client certificate, which must be a current certificate of the tenant:
 * issued here, not revoked, within its validity, and the very certificate presented.
 */
static int current_cert(svc_request *r, const ts_tenant_row *t, ts_cert_row *row)
{
    char fp[TS_FINGERPRINT_HEX];
    time_t now = time(NULL);
    ts_err rv = ts_store_cert_get(ts_ca_store(r->ca), t->id, r->client_serial, row);

    if (rv == TS_ERR_NOT_FOUND) {
        est_reply_text(r, 403,
                       "the client certificate (serial %s) is not a certificate of tenant %s",
                       r->client_serial, t->name);
        return 0;
    }
    if (rv == TS_OK) {
        rv = ts_cert_fingerprint(r->client_cert, fp);
    }
    if (rv != TS_OK) {
        est_reply_err(r, rv);
        return 0;
    }
    if (strcmp(fp, row->fingerprint) != 0) {
        est_reply_text(r, 403, "the client certificate is not the one stored under serial %s",
                       row->serial);
        return 0;
    }
    if (row->state != TS_CERT_VALID) {
        est_reply_text(r, 401, "the client certificate (serial %s) is revoked", row->serial);
        return 0;
    }
    if (now < row->not_before || now > row->not_after) {
        est_reply_text(r, 403, "the client certificate (serial %s) is not within its validity",
                       row->serial);
        return 0;
    }
    return 1;
}

/*
 * RFC 7030 section 4.2.2. A CSR for the certificate's own key renews it (a new serial and
 * validity; the old certificate stays valid until it expires: the key is the same); a CSR for a
 * new key rekeys it (the old certificate is revoked as superseded in the same transaction).
 */
void svc_est_simplereenroll(svc_request *r)
{
    ts_tenant_row t;
    ts_cert_row row;
    ts_profile *profile = NULL;
    char cn[TS_NAME_MAX + 1], shown[TS_NAME_MAX + 3];
    X509_REQ *csr = NULL;
    uint8_t *der = NULL;
    size_t len = 0;
    X509 *cert = NULL;
    int renew;
    ts_err rv;

    memset(&row, 0, sizeof row);
    if (!est_tenant(r, &t)) {
        goto cleanup;
    }
    /* A certificate superseded by a rekey whose answer the device never got: the same request
     * again is answered with the certificate already issued (svc_est_redeliver.c). */
    if (r->client_cert != NULL && r->client_revoked && r->client_tenant.id == t.id) {
        if (est_body_csr(r, &der, &len, &csr) && !est_rekey_redeliver(r, &t, csr)) {
            est_reply_text(r, 401, "the client certificate (serial %s) is revoked",
                           r->client_serial);
        }
        goto cleanup;
    }
    if (!client_identity(r, &t, cn) || !est_body_csr(r, &der, &len, &csr) ||
        !current_cert(r, &t, &row)) {
        goto cleanup;
    }
    rv = ts_est_reenroll_check(csr, r->client_cert);
    if (rv != TS_OK) {
        est_reply_text(r, 400, "%s", ts_error_message());
        goto cleanup;
    }
    snprintf(shown, sizeof shown, "'%s'", row.profile);
    if (!est_profile(r, &t, row.profile, &profile) ||
        !est_pop(r, ts_profile_est_pop(profile), shown, csr)) {
        goto cleanup;
    }
    /* A renewal certifies the stored key, so the CSR's signature is checked here; a rekey
     * checks the CSR as any issuance does. */
    renew = ts_est_same_key(csr, r->client_cert);
    if (renew && !csr_signed(r, csr)) {
        goto cleanup;
    }
    if (renew) {
        rv = ts_ca_cert_renew(r->ca, t.name, row.serial, &cert);
    } else {
        rv = ts_ca_cert_rekey(r->ca, t.name, row.serial, der, len, &cert);
    }
    if (rv != TS_OK) {
        est_refused(r, rv);
        goto cleanup;
    }
    svc_metrics_issued(1);
    if (!renew) {
        svc_metrics_revoked(1); /* the superseded certificate */
    }
    est_reply_cert(r, cert);
cleanup:
    X509_free(cert);
    ts_profile_free(profile);
    ts_cert_row_clear(&row);
    OPENSSL_free(der);
    X509_REQ_free(csr);
}
