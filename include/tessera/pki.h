/*
 * PKI building blocks: certificate profiles, CSR policy, issuing, CRLs and OCSP responses.
 *
 * Pure functions over OpenSSL objects: nothing here touches a database or the network. Signing
 * keys are EVP_PKEYs, usually key-store keys through the provider (ts_keystore_evp_pkey), and
 * every signature is made with ts_provider_libctx(). The trust service (src/server) stores what
 * these functions produce; the device agent uses the CSR parts.
 *
 * Thread safety: a ts_profile is immutable once parsed and may be shared between threads.
 */
#ifndef TESSERA_PKI_H
#define TESSERA_PKI_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/ocsp.h>
#include <openssl/x509.h>

#include "tessera/error.h"
#include "tessera/export.h"

enum {
    TS_SERIAL_LEN = 20,     /* bytes of a serial number (RFC 5280 section 4.1.2.2 maximum) */
    TS_CSR_MAX = 64 * 1024, /* bytes of a CSR, PEM or DER */
    TS_PROFILE_JSON_MAX = 64 * 1024,
    TS_FINGERPRINT_HEX = 65,         /* SHA-256 as lower-case hex, with its NUL */
    TS_OCSP_REQUEST_MAX = 16 * 1024, /* bytes of a DER OCSPRequest; larger is malformedRequest */
};

/* --- Profiles -------------------------------------------------------------------------------- */
/*
 * A profile is a named, stored certificate policy, defined in JSON (docs/profiles.md): the kind
 * of certificate (device, server, firmware-signer, verification), allowed key types and curves,
 * key usage and extended key usage, the subject template (such as O=<org>, C=<country>,
 * CN=<device UID>), which subject attributes, SANs and extensions may come from the CSR, and the
 * validity (days, or a fixed notAfter).
 */
typedef struct ts_profile ts_profile;

/* Parses and validates a profile; TS_ERR_INVALID naming the bad field. */
TS_API TS_MUST_CHECK ts_err ts_profile_from_json(const char *json, size_t len, ts_profile **out);

/* The profile as canonical JSON (stable key order), a new string freed with OPENSSL_free(). */
TS_API TS_MUST_CHECK ts_err ts_profile_to_json(const ts_profile *profile, char **json);

/* A built-in profile: "device", "server", "firmware-signer" or "verification". */
TS_API TS_MUST_CHECK ts_err ts_profile_builtin(const char *name, ts_profile **out);

TS_API const char *ts_profile_name(const ts_profile *profile);
/* The profile's kind as its JSON "kind" names it ("device", "server", ...); NULL without one. */
TS_API const char *ts_profile_kind_name(const ts_profile *profile);
TS_API void ts_profile_free(ts_profile *profile);

/*
 * EST settings, the profile JSON's optional "est" object (docs/est.md): server_keygen lets
 * /serverkeygen make the key for a device (RFC 7030 section 4.4); proof_of_possession makes every
 * CSR carry the TLS channel binding in its challengePassword (RFC 7030 section 3.5). Both are
 * false unless the JSON says true; the built-in profiles leave them false.
 */
TS_API int ts_profile_est_server_keygen(const ts_profile *profile);
TS_API int ts_profile_est_pop(const ts_profile *profile);

/* --- CSRs ------------------------------------------------------------------------------------ */

/*
 * Parses a CSR from PEM or DER (at most TS_CSR_MAX bytes). Garbage, PEM around garbage, trailing
 * bytes and oversized input give TS_ERR_INVALID with a message saying which.
 */
TS_API TS_MUST_CHECK ts_err ts_csr_parse(const uint8_t *data, size_t len, X509_REQ **out);

/*
 * Checks a CSR against a profile: its signature is valid; key type and curve are allowed; the
 * subject and SANs are allowed; extensions are requested only where the profile allows; CA:TRUE
 * is never granted. A refusal is TS_ERR_POLICY (TS_ERR_AUTH for a bad signature) with a message
 * naming the rule that was broken.
 */
TS_API TS_MUST_CHECK ts_err ts_csr_check(X509_REQ *csr, const ts_profile *profile);

/*
 * Issuing many certificates under one profile with one issuer key. What ts_csr_check() and
 * ts_cert_issue() set up anew for each request (the key a request's signature is verified with,
 * the issuer key's signing context) is made once per batch and reused. A batch is used by one
 * thread at a time; the profile and the key must outlive it.
 */
typedef struct ts_issue_batch ts_issue_batch;

TS_API TS_MUST_CHECK ts_err ts_issue_batch_new(const ts_profile *profile, EVP_PKEY *issuer_key,
                                               ts_issue_batch **out);
TS_API void ts_issue_batch_free(ts_issue_batch *batch);

/* ts_csr_check() against the batch's profile. */
TS_API TS_MUST_CHECK ts_err ts_csr_check_in(ts_issue_batch *batch, X509_REQ *csr);

/*
 * A certificate request read and checked by a batch, for ts_cert_issue() with that batch
 * (ts_issue_params.batch_csr). ts_csr_parse() decodes a request's public key and sets it into the
 * request, which encodes it again, and ts_cert_issue() encodes it once more into the certificate;
 * a request read by a batch keeps its key apart, read once, and its signature is verified over
 * the bytes received with a verification context the batch prepares once per curve and digest.
 */
typedef struct ts_batch_csr ts_batch_csr;

/* ts_csr_parse() then ts_csr_check_in(): the same verdicts, with the same messages. The request
 * is issued with the same batch, while it lives, and freed with ts_batch_csr_free(). */
TS_API TS_MUST_CHECK ts_err ts_csr_parse_in(ts_issue_batch *batch, const uint8_t *data, size_t len,
                                            ts_batch_csr **out);
TS_API void ts_batch_csr_free(ts_batch_csr *csr);

/* --- Issuing --------------------------------------------------------------------------------- */

/* The values a profile's subject template may name. */
typedef struct ts_subject_vars {
    const char *org;        /* <org> */
    const char *country;    /* <country>, two letters */
    const char *device_uid; /* <device UID>; NULL: the CSR's CN */
    const char *code;       /* <code>: the registration code of a verification certificate */
} ts_subject_vars;

typedef struct ts_issue_params {
    const ts_profile *profile;
    X509_REQ *csr;            /* already passed ts_csr_check() */
    EVP_PKEY *public_key;     /* instead of csr (renewal): the key to certify */
    const X509_NAME *subject; /* with public_key: the subject to keep; else from the template */
    STACK_OF(GENERAL_NAME) * sans; /* with public_key: the SANs to keep, or NULL */
    ts_subject_vars vars;
    const uint8_t *serial; /* TS_SERIAL_LEN bytes from ts_serial_random() */
    time_t not_before;     /* 0: now */
    X509 *issuer_cert;
    EVP_PKEY *issuer_key;          /* may be a key-store key */
    const char *crl_url;           /* CRL distribution point, or NULL */
    const char *ocsp_url;          /* AIA OCSP, or NULL */
    const char *ca_issuers_url;    /* AIA caIssuers, or NULL */
    ts_issue_batch *batch;         /* or NULL; else made for profile and issuer_key */
    const ts_batch_csr *batch_csr; /* instead of csr: a request read by batch */
} ts_issue_params;

/* Builds and signs a certificate as the profile says. Never a CA certificate. */
TS_API TS_MUST_CHECK ts_err ts_cert_issue(const ts_issue_params *params, X509 **out);

/* A serial number: TS_SERIAL_LEN bytes from the CSPRNG, positive and with no leading zero byte. */
TS_API TS_MUST_CHECK ts_err ts_serial_random(uint8_t serial[TS_SERIAL_LEN]);

/* count serial numbers as ts_serial_random() makes them, one after another in serials (count x
 * TS_SERIAL_LEN bytes), drawn from the CSPRNG at once. */
TS_API TS_MUST_CHECK ts_err ts_serials_random(uint8_t *serials, size_t count);

/* The serial of a certificate as upper-case hex, as `openssl x509 -serial` prints it. */
TS_API TS_MUST_CHECK ts_err ts_serial_hex(const ASN1_INTEGER *serial, char *hex, size_t size);

/* SHA-256 of the DER certificate, lower-case hex. */
TS_API TS_MUST_CHECK ts_err ts_cert_fingerprint(const X509 *cert, char hex[TS_FINGERPRINT_HEX]);

/* --- CA certificates ------------------------------------------------------------------------- */

typedef struct ts_ca_params {
    const char *common_name;
    const char *org;
    const char *country;   /* or NULL */
    int days;              /* validity */
    int path_len;          /* basicConstraints pathLenConstraint */
    const uint8_t *serial; /* TS_SERIAL_LEN bytes */
    EVP_PKEY *subject_key; /* the CA's public key (its private half may be anywhere) */
    X509 *issuer_cert;     /* NULL: self-signed root, signed by issuer_key = subject key */
    EVP_PKEY *issuer_key;
    const char *crl_url;  /* of the issuer, or NULL */
    const char *ocsp_url; /* of the issuer, or NULL */
} ts_ca_params;

/* A CA certificate: basicConstraints CA:TRUE critical with path_len, keyCertSign and cRLSign,
 * subject and authority key identifiers. */
TS_API TS_MUST_CHECK ts_err ts_ca_cert_make(const ts_ca_params *params, X509 **out);

/* --- CRLs ------------------------------------------------------------------------------------ */

typedef struct ts_revoked {
    const uint8_t *serial; /* big-endian bytes */
    size_t serial_len;
    time_t revoked_at;
    int reason; /* CRL_REASON_* from <openssl/x509v3.h>, or -1 for none */
} ts_revoked;

/* RFC 5280 reason names ("keyCompromise", "superseded", ...) and their codes. Names are matched
 * without regard to case; ts_crl_reason_name() gives NULL for a code that is not a CRLReason. */
TS_API TS_MUST_CHECK ts_err ts_crl_reason_from_name(const char *name, int *reason);
TS_API const char *ts_crl_reason_name(int reason);

/* A v2 CRL with CRL number, authority key identifier, thisUpdate/nextUpdate and reason codes. */
TS_API TS_MUST_CHECK ts_err ts_crl_make(X509 *issuer_cert, EVP_PKEY *issuer_key,
                                        const ts_revoked *revoked, size_t count,
                                        uint64_t crl_number, time_t this_update, time_t next_update,
                                        X509_CRL **out);

/* --- OCSP (RFC 6960) ------------------------------------------------------------------------- */

typedef enum ts_cert_status {
    TS_CERT_GOOD = 0,
    TS_CERT_REVOKED = 1,
    TS_CERT_UNKNOWN = 2,
} ts_cert_status;

/* Looks up a serial issued by issuer_index (an index into the responder's issuer list). */
typedef ts_err (*ts_ocsp_lookup_fn)(void *arg, size_t issuer_index, const ASN1_INTEGER *serial,
                                    ts_cert_status *status, time_t *revoked_at, int *reason);

enum { TS_OCSP_ID_HASHES = 4 }; /* CertID hashes answered: SHA-1, SHA-256, SHA-384, SHA-512 */

typedef struct ts_ocsp_issuer {
    X509 *cert; /* an issuing CA; it signs the responses for its certificates */
    EVP_PKEY *key;
    /* Optional, borrowed: this CA's CertIDs (serial empty) for each hash in the order above, as
     * OCSP_cert_to_id() makes them, for a caller that answers many requests; NULL entries are
     * made by each call. */
    OCSP_CERTID *ids[TS_OCSP_ID_HASHES];
    /* Optional, borrowed: a context from ts_ocsp_sign_ctx() on key. Each response is signed with
     * a copy of it, which skips the signature's set-up; NULL: each response sets one up. */
    EVP_MD_CTX *sign;
} ts_ocsp_issuer;

/* A context ready to sign OCSP responses with key (an issuing CA's key, any key store), the
 * digest chosen for its type as for certificates, for ts_ocsp_issuer.sign. EVP_MD_CTX_free() it. */
TS_API TS_MUST_CHECK ts_err ts_ocsp_sign_ctx(EVP_PKEY *key, EVP_MD_CTX **out);

/*
 * Answers a DER OCSPRequest: each CertID is matched to one of the issuers by name and key hash,
 * its status looked up, and the BasicOCSPResponse signed by that issuer, echoing the nonce when
 * there is one. Unknown issuers get "unknown"; a malformed request gets a malformedRequest
 * response (still TS_OK: the response is what to send). *resp is freed with OPENSSL_free().
 * CertIDs of other issuers than the first matched one are answered "unknown"; a request naming
 * none of the issuers gets an "unauthorized" response; now 0 is the current time. When lookup
 * fails its error is returned and there is no response (the caller answers "tryLater").
 */
TS_API TS_MUST_CHECK ts_err ts_ocsp_respond(const uint8_t *request, size_t request_len,
                                            const ts_ocsp_issuer *issuers, size_t issuer_count,
                                            ts_ocsp_lookup_fn lookup, void *arg, time_t now,
                                            uint8_t **resp, size_t *resp_len);

/* As ts_ocsp_respond(); *plain_single (when not NULL) is set to 1 when the request held exactly
 * one CertID, of a known issuer, and no extension at all (no nonce): an answer that may be sent
 * again to the same request bytes (RFC 5019). */
TS_API TS_MUST_CHECK ts_err ts_ocsp_respond_ex(const uint8_t *request, size_t request_len,
                                               const ts_ocsp_issuer *issuers, size_t issuer_count,
                                               ts_ocsp_lookup_fn lookup, void *arg, time_t now,
                                               uint8_t **resp, size_t *resp_len, int *plain_single);

#endif
