/*
 * Shared by the EST handlers (svc_est.c: routes, replies, cacerts and csrattrs; svc_est_enroll.c:
 * simpleenroll, simplereenroll, serverkeygen; svc_est_claim.c: claim codes in HTTP Basic).
 *
 * Every failure answers as RFC 7030 section 4.2.3 has it: an HTTP status with a text/plain body
 * that says what failed and why. A helper that returns 0 has already replied.
 */
#ifndef TS_SVC_EST_INTERNAL_H
#define TS_SVC_EST_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

#include "service/svc_internal.h"
#include "tessera/access.h"
#include "tessera/est.h"
#include "tessera/pki.h"

#define EST_REALM         "Basic realm=\"tessera-est\""
#define EST_PROFILE       "device" /* the profile of enrollments that no claim code names */
#define EST_CT_PKCS10     "application/pkcs10"
#define EST_CT_CERTS      "application/pkcs7-mime"
#define EST_CT_CERTS_ONLY "application/pkcs7-mime; smime-type=certs-only"
#define EST_CT_CSRATTRS   "application/csrattrs"
#define EST_CT_PKCS8      "application/pkcs8"
#define EST_BOUNDARY      "tessera-est-part" /* '-' is not base64, so no part can hold it */

/* The handlers of the routes (svc_est.c, svc_est_enroll.c). */
void svc_est_cacerts(svc_request *r);
void svc_est_csrattrs(svc_request *r);
void svc_est_simpleenroll(svc_request *r);
void svc_est_simplereenroll(svc_request *r);
void svc_est_serverkeygen(svc_request *r);

/* A text/plain reply; 401 replies carry WWW-Authenticate with the EST realm. */
void est_reply_text(svc_request *r, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The reply for a failed call: its status as svc_err_status() maps it (413 for a body over the
 * limit) and ts_error_message(); a server-side failure is logged and answered generically. */
void est_reply_err(svc_request *r, ts_err err);

/* A base64 reply of DER (always with Content-Transfer-Encoding: base64, RFC 7030 4.1.3). */
void est_reply_base64(svc_request *r, const char *content_type, const uint8_t *der, size_t len);

/* The tenant of the request: the path's, or the default tenant for /.well-known/est/X. */
int est_tenant(svc_request *r, ts_tenant_row *out);

/* A tenant's stored profile, parsed. */
int est_profile(svc_request *r, const ts_tenant_row *t, const char *name, ts_profile **out);

/* The request's CSR (RFC 7030 section 4.2.1): Content-Type application/pkcs10 (415 otherwise),
 * a base64 body (RFC 8951) and a parsable CSR (400 otherwise). *der is the CSR's DER. */
int est_body_csr(svc_request *r, uint8_t **der, size_t *len, X509_REQ **csr);

/* When required (the profile's proof_of_possession, RFC 7030 section 3.5): the CSR carries the
 * channel binding of this connection; 400 naming the rule and the profile otherwise. profile is
 * the profile as messages name it ("'device'"). */
int est_pop(svc_request *r, int required, const char *profile, X509_REQ *csr);

/* The audit actor of a request, as the router names principals ("device:CN", "claim:PREFIX"). */
void est_actor(svc_request *r, const char *kind, const char *who);

/* RFC 7030 section 4.2.3: a certificate as a certs-only reply (200). */
void est_reply_cert(svc_request *r, X509 *cert);

/*
 * simplereenroll by a certificate revoked as superseded (svc_est_redeliver.c): when the CSR is
 * for the key of a current certificate of the same device and subject, signed by that key (and
 * bound to the channel when the profile demands it), answers that certificate and returns 1; a
 * reply already sent (a refused proof of possession) also returns 1. 0: nothing answered.
 */
int est_rekey_redeliver(svc_request *r, const ts_tenant_row *t, X509_REQ *csr);

/* --- Claim codes in HTTP Basic (svc_est_claim.c) --------------------------------------------- */

enum {
    EST_CODE_MAX = TS_CLAIM_CODE_MAX + 24, /* a claim code as typed, with spaces, and its NUL */
};

typedef struct est_claim {
    char code[EST_CODE_MAX];       /* the password as sent; wiped by est_claim_clear() */
    char prefix[9];                /* its first eight characters, upper-case, for the audit actor */
    int pop;                       /* the code's profile requires proof of possession */
    int keygen;                    /* the code's profile allows server-side key generation */
    char profile[TS_NAME_MAX + 1]; /* the code's profile */
} est_claim;

/*
 * The claim code of an "Authorization: Basic" header: 1 when the request has one (c filled), 0
 * when it has no Basic credentials. -1 after a reply: 429 while the address is over its limit of
 * failed attempts, 401 for credentials that cannot hold a code.
 */
int est_claim_read(svc_request *r, est_claim *c);

/*
 * What the code's profile requires (ts_ca_claim_lookup(): read only; the code is used later, in
 * the issuing transaction). 0 after a reply: 401 for a code that cannot be used now (counted as a
 * failed attempt).
 */
int est_claim_profiles(svc_request *r, const ts_tenant_row *t, est_claim *c);

/* A failed attempt: counted for the address, 401. */
void est_claim_refused(svc_request *r);

void est_claim_clear(est_claim *c);

#endif
