/*
 * est_load's request bodies and reply checks (est_load.c includes it once): P-256 CSRs and OCSP
 * requests made before the clock starts, and what a reply must be to count as a success.
 */
#ifndef TS_EST_LOAD_CODEC_H
#define TS_EST_LOAD_CODEC_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ocsp.h>
#include <openssl/pem.h>
#include <openssl/pkcs7.h>
#include <openssl/x509.h>

#include "tessera/pki.h"
#include "tessera/store.h"

/* A request body made before the clock starts. */
typedef struct body {
    char *data;
    size_t len;
    char cn[64];
} body;

static char *b64(const unsigned char *der, size_t len, size_t *out_len)
{
    char *text = OPENSSL_malloc(4 * ((len + 2) / 3) + 1);
    int n = text != NULL ? EVP_EncodeBlock((unsigned char *)text, der, (int)len) : -1;

    if (n < 0) {
        OPENSSL_free(text);
        return NULL;
    }
    *out_len = (size_t)n;
    return text;
}

/* A P-256 key and a CSR for CN=cn, as the base64 of its DER (RFC 7030 section 4.2.1). */
static int make_csr(const char *cn, body *out)
{
    EVP_PKEY *pkey = EVP_EC_gen("P-256");
    X509_REQ *req = X509_REQ_new();
    X509_NAME *name = X509_NAME_new();
    unsigned char *der = NULL;
    int len = -1;

    if (pkey != NULL && req != NULL && name != NULL &&
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1,
                                   0) == 1 &&
        X509_REQ_set_subject_name(req, name) == 1 && X509_REQ_set_pubkey(req, pkey) == 1 &&
        X509_REQ_sign(req, pkey, EVP_sha256()) > 0) {
        len = i2d_X509_REQ(req, &der);
    }
    if (len > 0) {
        out->data = b64(der, (size_t)len, &out->len);
    }
    OPENSSL_free(der);
    X509_NAME_free(name);
    X509_REQ_free(req);
    EVP_PKEY_free(pkey);
    return out->data != NULL ? 0 : -1;
}

static X509 *read_cert(const char *path)
{
    FILE *f = fopen(path, "r");
    X509 *cert = f != NULL ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;

    if (f != NULL) {
        fclose(f);
    }
    if (cert == NULL) {
        fprintf(stderr, "est_load: cannot read a PEM certificate from %s\n", path);
    }
    return cert;
}

/* A DER OCSPRequest for one certificate (SHA-1 CertID), with a fresh nonce when asked. */
static int make_ocsp(X509 *issuer, X509 *cert, int nonce, body *out)
{
    OCSP_REQUEST *req = OCSP_REQUEST_new();
    OCSP_CERTID *id = OCSP_cert_to_id(EVP_sha1(), cert, issuer);
    unsigned char *der = NULL;
    int len = -1;

    if (req != NULL && id != NULL && OCSP_request_add0_id(req, id) != NULL) {
        id = NULL;
        if (!nonce || OCSP_request_add1_nonce(req, NULL, -1) == 1) {
            len = i2d_OCSP_REQUEST(req, &der);
        }
    }
    if (len > 0) {
        out->data = (char *)der;
        out->len = (size_t)len;
    }
    OCSP_CERTID_free(id);
    OCSP_REQUEST_free(req);
    return len > 0 ? 0 : -1;
}

/* RFC 7030 section 4.2.3: a certs-only CMS SignedData, base64; the first certificate is the new
 * one. Its serial (upper-case hex) into hex; -1 when the reply is not that. */
static int certs_only_serial(const char *reply, size_t len, char hex[TS_SERIAL_HEX])
{
    unsigned char *der = OPENSSL_malloc(len + 3);
    EVP_ENCODE_CTX *ctx = EVP_ENCODE_CTX_new();
    const unsigned char *p = NULL;
    PKCS7 *p7 = NULL;
    STACK_OF(X509) *certs = NULL;
    int n = 0, tail = 0, rv = -1;

    if (der != NULL && ctx != NULL && len <= INT32_MAX) {
        EVP_DecodeInit(ctx);
        if (EVP_DecodeUpdate(ctx, der, &n, (const unsigned char *)reply, (int)len) >= 0 &&
            EVP_DecodeFinal(ctx, der + n, &tail) == 1) {
            p = der;
            p7 = d2i_PKCS7(NULL, &p, n + tail);
        }
    }
    if (p7 != NULL && PKCS7_type_is_signed(p7) && p7->d.sign != NULL) {
        certs = p7->d.sign->cert;
    }
    if (certs != NULL && sk_X509_num(certs) > 0 &&
        ts_serial_hex(X509_get0_serialNumber(sk_X509_value(certs, 0)), hex, TS_SERIAL_HEX) ==
            TS_OK) {
        rv = 0;
    }
    PKCS7_free(p7);
    EVP_ENCODE_CTX_free(ctx);
    OPENSSL_free(der);
    return rv;
}

/* Whether a reply is an OCSPResponse with responseStatus successful. */
static int ocsp_successful(const char *reply, size_t len)
{
    const unsigned char *p = (const unsigned char *)reply;
    OCSP_RESPONSE *r = d2i_OCSP_RESPONSE(NULL, &p, (long)len);
    int ok = r != NULL && OCSP_response_status(r) == OCSP_RESPONSE_STATUS_SUCCESSFUL;

    OCSP_RESPONSE_free(r);
    return ok ? 0 : -1;
}

#endif
