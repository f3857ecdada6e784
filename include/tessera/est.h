/*
 * The encodings of EST, Enrollment over Secure Transport (RFC 7030, updated by RFC 8951): base64
 * bodies, certs-only PKCS#7, CSR attributes, the challengePassword that carries the TLS channel
 * binding, the identity rules of re-enrollment and the key and request of server-side key
 * generation.
 *
 * Pure functions over OpenSSL objects, like pki.h: no network, no database. The trust service
 * (src/service/svc_est*.c) serves them; docs/est.md describes the protocol as Tessera speaks it.
 *
 * Thread safety: every function may be called from any thread; nothing is shared.
 */
#ifndef TESSERA_EST_H
#define TESSERA_EST_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

#include "tessera/error.h"
#include "tessera/export.h"
#include "tessera/pki.h"

enum {
    TS_EST_LINE = 64,          /* base64 characters per line of what Tessera sends */
    TS_EST_CB_MAX = 64,        /* bytes of a TLS channel binding (tls-unique, tls-exporter) */
    TS_EST_PASSWORD_MAX = 255, /* characters of a challengePassword (RFC 2985 ub-challenge) */
};

/* --- Base64 bodies (RFC 7030 section 4, RFC 8951 section 3.2.2) ------------------------------ */

/*
 * Decodes a base64 body (RFC 4648 section 4 alphabet, with its padding) in which spaces, tabs and
 * line breaks (LF or CRLF) anywhere are ignored. Anything else (PEM armour, binary DER, "-" or
 * "_", data after the padding, a length that is not whole) is TS_ERR_INVALID with a message
 * saying which; a result longer than max is TS_ERR_LIMIT. OPENSSL_free(*out).
 */
TS_API TS_MUST_CHECK ts_err ts_est_base64_decode(const uint8_t *text, size_t len, size_t max,
                                                 uint8_t **out, size_t *out_len);

/*
 * Base64 of data in lines of TS_EST_LINE characters, each ended by eol ("\n" or "\r\n"); a NUL
 * follows the text (not counted in *out_len). OPENSSL_free(*out).
 */
TS_API TS_MUST_CHECK ts_err ts_est_base64_encode(const uint8_t *data, size_t len, const char *eol,
                                                 char **out, size_t *out_len);

/* --- certs-only (RFC 7030 section 4.1.3, RFC 5652 section 5: a degenerate SignedData) -------- */

/* DER of a SignedData with no signers and no content that carries certs in order. OPENSSL_free. */
TS_API TS_MUST_CHECK ts_err ts_est_certs_only(X509 *const *certs, size_t count, uint8_t **der,
                                              size_t *len);

/* The certificates of a DER certs-only (the whole input, nothing after it); TS_ERR_INVALID for
 * anything else. sk_X509_pop_free(*out, X509_free). */
TS_API TS_MUST_CHECK ts_err ts_est_certs_only_parse(const uint8_t *der, size_t len,
                                                    STACK_OF(X509) * *out);

/* --- CSR attributes (RFC 7030 section 4.5.2) ------------------------------------------------- */

/*
 * The DER CsrAttrs a profile asks for: the challengePassword OID when the profile requires proof
 * of possession; for each allowed EC curve the attribute id-ecPublicKey with the curves as its
 * values, rsaEncryption when RSA keys are allowed; the signature algorithms that match the
 * profile's digest (ecdsa-with-SHA256 for SHA-256 and EC keys). OPENSSL_free(*der).
 */
TS_API TS_MUST_CHECK ts_err ts_est_csrattrs(const ts_profile *profile, uint8_t **der, size_t *len);

/* What a CsrAttrs holds, as a client reads it. */
typedef struct ts_est_csrattrs_info {
    int challenge_password; /* the challengePassword OID is listed */
    int ec_curves[4];       /* NIDs of the id-ecPublicKey attribute's curves */
    size_t ec_curve_count;
    int rsa;         /* rsaEncryption is listed */
    int sig_nids[4]; /* signature algorithm NIDs listed, in order */
    size_t sig_count;
    size_t entries; /* AttrOrOID entries in all */
} ts_est_csrattrs_info;

/* Parses a DER CsrAttrs (the whole input); TS_ERR_INVALID when it is not one. Entries Tessera
 * does not know are counted in entries and otherwise skipped. */
TS_API TS_MUST_CHECK ts_err ts_est_csrattrs_parse(const uint8_t *der, size_t len,
                                                  ts_est_csrattrs_info *out);

/* --- Proof of possession: the channel binding in challengePassword (RFC 7030 section 3.5) --- */

/*
 * The CSR's challengePassword as text (PrintableString, UTF8String or IA5String). TS_ERR_NOT_FOUND
 * when it has none; TS_ERR_INVALID when it has several or the value is not one string of at most
 * TS_EST_PASSWORD_MAX characters. OPENSSL_free(*out) after OPENSSL_cleanse.
 */
TS_API TS_MUST_CHECK ts_err ts_est_challenge_password(const X509_REQ *csr, char **out, size_t *len);

/*
 * Checks that the CSR's challengePassword is the base64 (RFC 4648, with padding, no line breaks)
 * of binding, compared in constant time. TS_ERR_POLICY saying what is missing or different.
 */
TS_API TS_MUST_CHECK ts_err ts_est_pop_check(const X509_REQ *csr, const uint8_t *binding,
                                             size_t binding_len);

/* --- Re-enrollment (RFC 7030 section 4.2.2) -------------------------------------------------- */

/*
 * A re-enrollment CSR keeps the subject and the subjectAltName of the certificate it replaces:
 * the same distinguished name (as X509_NAME_cmp compares them) and the same set of names.
 * TS_ERR_POLICY naming the difference.
 */
TS_API TS_MUST_CHECK ts_err ts_est_reenroll_check(X509_REQ *csr, X509 *current);

/* 1 when the CSR certifies the certificate's own public key (a renewal, not a rekey). */
TS_API int ts_est_same_key(X509_REQ *csr, X509 *current);

/* --- Server-side key generation (RFC 7030 section 4.4) --------------------------------------- */

/* A new key of the first type the profile allows (P-256 before P-384, P-521, then RSA at its
 * minimum size), made in memory with the default provider. EVP_PKEY_free(*out). */
TS_API TS_MUST_CHECK ts_err ts_est_keygen(const ts_profile *profile, EVP_PKEY **out);

/*
 * The request the CA is to certify for a server-generated key: the subject and requested
 * extensions of the client's CSR (whose own key and signature section 4.4.1 says to ignore),
 * with key as its key, signed by it with SHA-256. DER; OPENSSL_free(*der).
 */
TS_API TS_MUST_CHECK ts_err ts_est_keygen_csr(X509_REQ *client_csr, EVP_PKEY *key, uint8_t **der,
                                              size_t *len);

/* The private key as DER PKCS#8 PrivateKeyInfo (RFC 5958), for application/pkcs8. The caller
 * wipes *der with OPENSSL_cleanse before OPENSSL_free. */
TS_API TS_MUST_CHECK ts_err ts_est_pkcs8(EVP_PKEY *key, uint8_t **der, size_t *len);

#endif
