/*
 * Signed messages: one signer, content attached, the signer's certificate and chain carried
 * (CMS SignedData, RFC 5652 section 5). Command envelopes and results (command_cms.c) and
 * firmware manifests (src/fota) are such messages; this is the one place that makes and checks
 * them.
 *
 * Checking is strict about what the signature does not cover, so that a message means exactly
 * what its signer wrote: one DER encoding (re-encoding gives the same bytes), SignedData and
 * SignerInfo versions 1, a signer named by exactly its certificate's issuer and serial, and a
 * signature algorithm that matches the digest and the key. The signature is checked by
 * CMS_verify() alone; the chain separately with purpose "any" (CMS_verify() would judge it for
 * S/MIME, which none of these signers has), so each caller then checks what the certificate may
 * sign.
 */
#ifndef TS_PKI_SIGNED_MSG_INTERNAL_H
#define TS_PKI_SIGNED_MSG_INTERNAL_H

#include <stddef.h>
#include <time.h>

#include <openssl/cms.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "tessera/error.h"

typedef struct ts_signed_msg {
    CMS_ContentInfo *cms;
    X509 *signer;           /* borrowed from cms, once verified */
    STACK_OF(X509) * certs; /* every certificate the message carries */
    unsigned char *content; /* the verified content, NUL-terminated */
    size_t content_len;
} ts_signed_msg;

/*
 * Signs len bytes of text with key, whose certificate cert (then chain, may be NULL) the message
 * carries. TS_ERR_LIMIT when the DER exceeds max bytes. *der is freed with OPENSSL_free().
 */
ts_err ts_signed_msg_sign(const char *text, size_t len, EVP_PKEY *key, X509 *cert,
                          STACK_OF(X509) * chain, size_t max, const char *what, unsigned char **der,
                          size_t *der_len);

/*
 * Parses 1 to max bytes of DER into *m, checking the encoding and the unsigned fields
 * (TS_ERR_INVALID). `what` names the message in errors ("the manifest"). Clear *m after.
 */
ts_err ts_signed_msg_parse(const unsigned char *der, size_t len, size_t max, const char *what,
                           ts_signed_msg *m);

/* The attached content before anything is verified: only for naming what is refused. */
int ts_signed_msg_peek(const ts_signed_msg *m, const unsigned char **data, size_t *len);

/* The one signature, with the certificate carried; fills m->signer and m->content (TS_ERR_AUTH). */
ts_err ts_signed_msg_verify(ts_signed_msg *m, const char *what);

/* The signer's chain to roots at time now, for any purpose (TS_ERR_AUTH). partial: roots may
 * hold an intermediate CA alone (X509_V_FLAG_PARTIAL_CHAIN). */
ts_err ts_signed_msg_chain(const ts_signed_msg *m, X509_STORE *roots, time_t now, int partial);

void ts_signed_msg_clear(ts_signed_msg *m);

#endif
