/* The session's HTTPS client (agent_session_http.c). */
#ifndef TS_AGENT_AGENT_SESSION_HTTP_H
#define TS_AGENT_AGENT_SESSION_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

#include "agent/agent_session_internal.h"

typedef struct sess_http sess_http;

/* Borrowed for the life of the client. */
typedef struct sess_http_cfg {
    const char *server; /* https://HOST[:PORT] */
    X509_STORE *roots;  /* the only trust anchors */
    X509 *client_cert;  /* the identity certificate */
    STACK_OF(X509) * client_chain;
    EVP_PKEY *client_key; /* the identity key through the provider */
    long timeout;
} sess_http_cfg;

TS_MUST_CHECK ts_err sess_http_new(const sess_http_cfg *cfg, sess_http **out);
void sess_http_free(sess_http *h);

/*
 * POSTs one message to /agent/v1/session and returns the 200 reply's body (OPENSSL_free). Any
 * other status is a failure whose message carries the service's words.
 */
TS_MUST_CHECK ts_err sess_http_post(sess_http *h, const uint8_t *body, size_t len, uint8_t **reply,
                                    size_t *reply_len);

/* The service's certificate and the chain it sent, from the connection's handshake. */
X509 *sess_http_peer(const sess_http *h);
STACK_OF(X509) * sess_http_peer_chain(const sess_http *h);

#endif
