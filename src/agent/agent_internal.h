/* The device agent's internals: identity objects, EST encodings, the HTTPS client. */
#ifndef TS_AGENT_AGENT_INTERNAL_H
#define TS_AGENT_AGENT_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

#include "tessera/agent.h"

struct ts_agent {
    ts_keystore *ks;
    int lock_fd;
};

/*
 * ts_agent_open() without the agent lock, for work that never touches the identity or the
 * datastore and has its own lock (the firmware boot state: fw confirm and fw status), so that it
 * runs while `tessera-agent run` holds the agent lock.
 */
TS_MUST_CHECK ts_err agent_open_unlocked(const char *keystore_uri, const char *state_dir,
                                         ts_agent **out);

/* --- the current identity (agent_identity.c) ------------------------------------------------ */

#define AGENT_CERT_PREFIX  "identity.cert."
#define AGENT_CHAIN_PREFIX "identity.chain."
#define AGENT_KEY_PREFIX   "identity.key." /* keys made by a rekey, by generation */

typedef struct agent_pointer {
    uint64_t generation;
    char key[TS_LABEL_MAX + 1];
    char cert[TS_LABEL_MAX + 1];
    char chain[TS_LABEL_MAX + 1];
} agent_pointer;

/* Encodes / strictly decodes the pointer object (JSON). */
TS_MUST_CHECK ts_err agent_pointer_encode(const agent_pointer *p, char **json);
TS_MUST_CHECK ts_err agent_pointer_decode(const uint8_t *data, size_t len, agent_pointer *p);

/* Reads the pointer: TS_ERR_NOT_FOUND when the device was never enrolled. */
TS_MUST_CHECK ts_err agent_pointer_load(ts_keystore *ks, agent_pointer *p);

/* Loads the current certificate and chain. */
TS_MUST_CHECK ts_err agent_identity_load(ts_keystore *ks, agent_pointer *p, X509 **cert,
                                         STACK_OF(X509) * *chain);

/*
 * Commits a new identity: the certificate and chain under the next generation's labels, then the
 * pointer, then removes the objects of older generations and every identity key ("identity" or
 * AGENT_KEY_PREFIX N) other than key_label (best effort).
 */
TS_MUST_CHECK ts_err agent_identity_commit(ts_keystore *ks, const char *key_label, X509 *cert,
                                           STACK_OF(X509) * chain, uint64_t *generation);

/* --- EST encodings (agent_certs.c) ---------------------------------------------------------- */

/* Reads a PEM file of certificates (at least one) into a new store. */
TS_MUST_CHECK ts_err agent_trust_load(const char *path, X509_STORE **out);

/* Reads a PEM file: the first certificate, then any others as its chain. */
TS_MUST_CHECK ts_err agent_pem_certs_load(const char *path, X509 **cert, STACK_OF(X509) * *chain);

/*
 * Decodes an EST reply body (RFC 7030 section 4.1.3: base64 of a certs-only CMS SignedData,
 * white space and line breaks allowed) into its certificates.
 */
TS_MUST_CHECK ts_err agent_est_certs_decode(const uint8_t *body, size_t len,
                                            STACK_OF(X509) * *certs);

/*
 * Picks the certificate for pub among certs, checks its subject (the CN equals uid when uid is
 * not NULL; the whole name equals subject when subject is not NULL) and verifies it against
 * roots with the others as intermediates. *chain gets the verified chain without the leaf.
 */
TS_MUST_CHECK ts_err agent_est_certs_accept(STACK_OF(X509) * certs, const EVP_PKEY *pub,
                                            const char *uid, const X509_NAME *subject,
                                            X509_STORE *roots, X509 **leaf,
                                            STACK_OF(X509) * *chain);

/* Verifies cert with chain as intermediates against roots, now. */
TS_MUST_CHECK ts_err agent_cert_verify(X509 *cert, STACK_OF(X509) * chain, X509_STORE *roots,
                                       STACK_OF(X509) * *verified);

/* The CN of a name into cn (empty when there is none); TS_ERR_INVALID when it does not fit. */
TS_MUST_CHECK ts_err agent_name_cn(const X509_NAME *name, char *cn, size_t size);

/* Encodes certificates as concatenated PEM. */
TS_MUST_CHECK ts_err agent_pem_encode(X509 *first, STACK_OF(X509) * rest, uint8_t **out,
                                      size_t *len);
TS_MUST_CHECK ts_err agent_pem_decode(const uint8_t *data, size_t len, STACK_OF(X509) * *out);

/* --- CSR (agent_csr.c) ------------------------------------------------------------------------ */

/*
 * A PKCS#10 request for the store key label, signed in the store, with subject (and the
 * subjectAltName extension of san_from when it has one), as base64 of DER ready to send.
 */
TS_MUST_CHECK ts_err agent_csr_make(ts_keystore *ks, const char *label, const X509_NAME *subject,
                                    X509 *san_from, char **b64);

/* As agent_csr_make(), with a challengePassword attribute (RFC 2985 section 5.4.1) holding
 * challenge when it is not NULL: the base64 of the channel binding for proof of possession. */
TS_MUST_CHECK ts_err agent_csr_make_ex(ts_keystore *ks, const char *label, const X509_NAME *subject,
                                       X509 *san_from, const char *challenge, char **b64);

/* --- HTTPS (agent_http.c) -------------------------------------------------------------------- */

typedef struct agent_http_req {
    const char *url;
    const char *body;  /* POST this application/pkcs10 body; NULL: GET */
    X509_STORE *roots; /* the only trust anchors for the server */
    X509 *client_cert; /* NULL: no client certificate */
    STACK_OF(X509) * client_chain;
    EVP_PKEY *client_key; /* a key-store key through the provider */
    const char *password; /* HTTP Basic password (a claim code), or NULL */
    long timeout;         /* seconds */
    int tls12_only;       /* cap the connection at TLS 1.2 */
} agent_http_req;

typedef struct agent_http_resp {
    long status;
    uint8_t *body; /* NUL-terminated; free with OPENSSL_free */
    size_t len;
} agent_http_resp;

/* One request. TS_ERR_IO (TS_ERR_AUTH for an untrusted service) when no reply arrives. */
TS_MUST_CHECK ts_err agent_http_request(const agent_http_req *req, agent_http_resp *resp);
void agent_http_resp_clear(agent_http_resp *resp);

enum { AGENT_HTTP_CB_MAX = 64 }; /* bytes of a TLS channel binding */

/*
 * Several requests over one kept-alive connection. cfg gives the roots, the client certificate
 * and key and the timeout (its url, body and password are not used); its pointers are borrowed
 * for the life of the handle.
 */
typedef struct agent_http_conn agent_http_conn;
TS_MUST_CHECK ts_err agent_http_conn_new(const agent_http_req *cfg, agent_http_conn **out);
void agent_http_conn_free(agent_http_conn *c);

/*
 * One request: GET url, or POST body (application/pkcs10) when body is not NULL, with password
 * as HTTP Basic when not NULL. With same_connection the request must go over the connection of
 * the previous request: no new connection is opened (the request fails with TS_ERR_AUTH), and a
 * reply that arrived over another connection is refused.
 */
TS_MUST_CHECK ts_err agent_http_conn_do(agent_http_conn *c, const char *url, const char *body,
                                        const char *password, int same_connection,
                                        agent_http_resp *resp);

/*
 * The channel binding of the connection the last request went over (tls-exporter of RFC 9266
 * on TLS 1.3, tls-unique of RFC 5929 on TLS 1.2) and its name; TS_ERR_CRYPTO when it has none.
 */
TS_MUST_CHECK ts_err agent_http_conn_binding(const agent_http_conn *c,
                                             uint8_t out[AGENT_HTTP_CB_MAX], size_t *len,
                                             const char **name);

#endif
