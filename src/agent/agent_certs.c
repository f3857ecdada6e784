/*
 * Certificates the agent receives and keeps: trust roots, EST replies (certs-only CMS, RFC 7030
 * section 4.1.3), chain verification, PEM encodings for the key store.
 */
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/pkcs7.h>
#include <openssl/x509v3.h>

#include "agent/agent_internal.h"
#include "common/error_internal.h"
#include "common/file_internal.h"

enum { CHAIN_MAX = 8 }; /* certificates in a reply or a chain */

ts_err agent_pem_decode(const uint8_t *data, size_t len, STACK_OF(X509) * *out)
{
    STACK_OF(X509) *certs = sk_X509_new_null();
    BIO *bio = BIO_new_mem_buf(data, (int)len);
    X509 *x = NULL;
    ts_err rv = TS_OK;

    *out = NULL;
    if (len > TS_AGENT_TRUST_MAX) {
        rv = ts_error_set(TS_ERR_INVALID, "%zu bytes of PEM is too much", len);
        goto done;
    }
    if (certs == NULL || bio == NULL) {
        rv = ts_error_set(TS_ERR_NOMEM, "out of memory");
        goto done;
    }
    while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
        if (sk_X509_push(certs, x) <= 0) {
            X509_free(x);
            rv = ts_error_set(TS_ERR_NOMEM, "out of memory");
            goto done;
        }
    }
    /* The loop ends at the end of the data (PEM_R_NO_START_LINE) or at a broken block. */
    unsigned long e = ERR_peek_last_error();
    if (e != 0 && ERR_GET_REASON(e) != PEM_R_NO_START_LINE) {
        rv = ts_error_set_openssl(TS_ERR_INVALID, "a certificate in the PEM does not parse");
        goto done;
    }
    ERR_clear_error();
    if (sk_X509_num(certs) == 0) {
        rv = ts_error_set(TS_ERR_INVALID, "no PEM certificate found");
        goto done;
    }
    *out = certs;
    certs = NULL;
done:
    sk_X509_pop_free(certs, X509_free);
    BIO_free(bio);
    return rv;
}

static ts_err pem_file(const char *path, STACK_OF(X509) * *certs)
{
    uint8_t *data = NULL;
    size_t len = 0;
    ts_err rv = ts_file_read(path, TS_AGENT_TRUST_MAX, &data, &len);

    if (rv == TS_OK) {
        rv = agent_pem_decode(data, len, certs);
    }
    OPENSSL_clear_free(data, len);
    return rv != TS_OK ? ts_error_prefix(rv, "%s", path) : TS_OK;
}

ts_err agent_trust_load(const char *path, X509_STORE **out)
{
    STACK_OF(X509) *certs = NULL;
    X509_STORE *store = NULL;
    ts_err rv;

    *out = NULL;
    if (path == NULL) {
        return ts_error_set(TS_ERR_INVALID, "no trust roots: give --trust FILE");
    }
    rv = pem_file(path, &certs);
    if (rv != TS_OK) {
        return ts_error_prefix(rv, "trust roots");
    }
    store = X509_STORE_new();
    if (store == NULL) {
        rv = ts_error_set(TS_ERR_NOMEM, "out of memory");
    }
    for (int i = 0; rv == TS_OK && i < sk_X509_num(certs); i++) {
        if (X509_STORE_add_cert(store, sk_X509_value(certs, i)) != 1) {
            rv = ts_error_set_openssl(TS_ERR_CRYPTO, "cannot add trust root %d of %s", i + 1, path);
        }
    }
    sk_X509_pop_free(certs, X509_free);
    if (rv != TS_OK) {
        X509_STORE_free(store);
        return rv;
    }
    *out = store;
    return TS_OK;
}

ts_err agent_pem_certs_load(const char *path, X509 **cert, STACK_OF(X509) * *chain)
{
    STACK_OF(X509) *certs = NULL;
    ts_err rv = pem_file(path, &certs);

    *cert = NULL;
    *chain = NULL;
    if (rv != TS_OK) {
        return rv;
    }
    *cert = sk_X509_shift(certs);
    *chain = certs;
    return TS_OK;
}

ts_err agent_est_certs_decode(const uint8_t *body, size_t len, STACK_OF(X509) * *out)
{
    EVP_ENCODE_CTX *ectx = NULL;
    uint8_t *der = NULL;
    const uint8_t *p;
    PKCS7 *p7 = NULL;
    STACK_OF(X509) *certs = NULL;
    int n = 0, fin = 0;
    ts_err rv = TS_OK;

    *out = NULL;
    if (len == 0) {
        return ts_error_set(TS_ERR_INVALID, "the service's reply is empty");
    }
    if (len > TS_AGENT_REPLY_MAX) {
        return ts_error_set(TS_ERR_INVALID, "the service's reply is %zu bytes, over %d", len,
                            TS_AGENT_REPLY_MAX);
    }
    ectx = EVP_ENCODE_CTX_new();
    der = OPENSSL_malloc(len);
    if (ectx == NULL || der == NULL) {
        rv = ts_error_set(TS_ERR_NOMEM, "out of memory");
        goto done;
    }
    /* EVP_Decode* skips white space and line ends and refuses any other non-base64 byte. */
    EVP_DecodeInit(ectx);
    if (EVP_DecodeUpdate(ectx, der, &n, body, (int)len) < 0 ||
        EVP_DecodeFinal(ectx, der + n, &fin) != 1) {
        rv = ts_error_set(TS_ERR_INVALID, "the service's reply is not base64");
        goto done;
    }
    n += fin;
    p = der;
    p7 = d2i_PKCS7(NULL, &p, n);
    if (p7 == NULL || p != der + n) {
        rv = ts_error_set_openssl(TS_ERR_INVALID, "the service's reply is not a PKCS#7 structure");
        goto done;
    }
    /* RFC 7030 section 4.1.3: a certs-only SignedData (RFC 5652 section 5) with no signers. */
    if (!PKCS7_type_is_signed(p7) || p7->d.sign == NULL || p7->d.sign->cert == NULL ||
        sk_X509_num(p7->d.sign->cert) == 0) {
        rv = ts_error_set(TS_ERR_INVALID, "the service's reply holds no certificates");
        goto done;
    }
    if (sk_X509_num(p7->d.sign->cert) > CHAIN_MAX) {
        rv = ts_error_set(TS_ERR_INVALID, "the service's reply holds %d certificates, over %d",
                          sk_X509_num(p7->d.sign->cert), CHAIN_MAX);
        goto done;
    }
    certs = X509_chain_up_ref(p7->d.sign->cert);
    if (certs == NULL) {
        rv = ts_error_set(TS_ERR_NOMEM, "out of memory");
        goto done;
    }
    *out = certs;
done:
    PKCS7_free(p7);
    OPENSSL_free(der);
    EVP_ENCODE_CTX_free(ectx);
    return rv;
}

ts_err agent_name_cn(const X509_NAME *name, char *cn, size_t size)
{
    int idx = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
    unsigned char *utf8 = NULL;
    int n;

    cn[0] = '\0';
    if (idx < 0) {
        return TS_OK;
    }
    n = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, idx)));
    if (n < 0 || (size_t)n >= size || memchr(utf8, '\0', (size_t)n) != NULL) {
        OPENSSL_free(utf8);
        return ts_error_set(TS_ERR_INVALID, "the certificate's CN does not fit");
    }
    memcpy(cn, utf8, (size_t)n);
    cn[n] = '\0';
    OPENSSL_free(utf8);
    return TS_OK;
}

ts_err agent_cert_verify(X509 *cert, STACK_OF(X509) * chain, X509_STORE *roots,
                         STACK_OF(X509) * *verified)
{
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    ts_err rv = TS_OK;

    if (verified != NULL) {
        *verified = NULL;
    }
    if (ctx == NULL || X509_STORE_CTX_init(ctx, roots, cert, chain) != 1) {
        X509_STORE_CTX_free(ctx);
        return ts_error_set_openssl(TS_ERR_NOMEM, "cannot set up certificate verification");
    }
    /* The identity is a TLS client certificate (RFC 5280 section 4.2.1.12). */
    X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_CLIENT);
    if (X509_verify_cert(ctx) != 1) {
        int err = X509_STORE_CTX_get_error(ctx);
        rv = ts_error_set(TS_ERR_AUTH, "the certificate does not chain to a trusted root: %s",
                          X509_verify_cert_error_string(err));
        ERR_clear_error();
    } else if (verified != NULL) {
        *verified = X509_STORE_CTX_get1_chain(ctx);
        if (*verified == NULL) {
            rv = ts_error_set(TS_ERR_NOMEM, "out of memory");
        } else {
            X509_free(sk_X509_shift(*verified)); /* the leaf */
        }
    }
    X509_STORE_CTX_free(ctx);
    return rv;
}

ts_err agent_est_certs_accept(STACK_OF(X509) * certs, const EVP_PKEY *pub, const char *uid,
                              const X509_NAME *subject, X509_STORE *roots, X509 **leaf,
                              STACK_OF(X509) * *chain)
{
    char cn[TS_AGENT_UID_MAX + 1];
    X509 *mine = NULL;
    ts_err rv;

    *leaf = NULL;
    *chain = NULL;
    for (int i = 0; i < sk_X509_num(certs); i++) {
        X509 *x = sk_X509_value(certs, i);
        if (EVP_PKEY_eq(X509_get0_pubkey(x), pub) == 1) {
            mine = x;
            break;
        }
    }
    ERR_clear_error();
    if (mine == NULL) {
        return ts_error_set(TS_ERR_AUTH,
                            "the service returned no certificate for the identity key");
    }
    if (uid != NULL) {
        rv = agent_name_cn(X509_get_subject_name(mine), cn, sizeof cn);
        if (rv != TS_OK || strcmp(cn, uid) != 0) {
            return ts_error_set(
                TS_ERR_AUTH, "the service's certificate names '%.64s', not the device %s", cn, uid);
        }
    }
    if (subject != NULL && X509_NAME_cmp(X509_get_subject_name(mine), subject) != 0) {
        return ts_error_set(TS_ERR_AUTH,
                            "the service's certificate has another subject than the current one");
    }
    rv = agent_cert_verify(mine, certs, roots, chain);
    if (rv != TS_OK) {
        return ts_error_prefix(rv, "the service's certificate");
    }
    if (X509_up_ref(mine) != 1) {
        sk_X509_pop_free(*chain, X509_free);
        *chain = NULL;
        return ts_error_set(TS_ERR_NOMEM, "out of memory");
    }
    *leaf = mine;
    return TS_OK;
}

ts_err agent_pem_encode(X509 *first, STACK_OF(X509) * rest, uint8_t **out, size_t *len)
{
    BIO *bio = BIO_new(BIO_s_mem());
    BUF_MEM *mem = NULL;
    ts_err rv = TS_OK;

    *out = NULL;
    *len = 0;
    if (bio == NULL || (first != NULL && PEM_write_bio_X509(bio, first) != 1)) {
        rv = ts_error_set_openssl(TS_ERR_NOMEM, "cannot encode a certificate");
    }
    for (int i = 0; rv == TS_OK && i < sk_X509_num(rest); i++) {
        if (PEM_write_bio_X509(bio, sk_X509_value(rest, i)) != 1) {
            rv = ts_error_set_openssl(TS_ERR_NOMEM, "cannot encode a certificate");
        }
    }
    if (rv == TS_OK) {
        BIO_get_mem_ptr(bio, &mem);
        if (mem->length > TS_OBJECT_MAX) {
            rv = ts_error_set(TS_ERR_LIMIT, "%zu bytes of certificates exceed a key-store object",
                              mem->length);
        } else {
            *out = OPENSSL_memdup(mem->data, mem->length > 0 ? mem->length : 1);
            *len = mem->length;
            if (*out == NULL) {
                rv = ts_error_set(TS_ERR_NOMEM, "out of memory");
            }
        }
    }
    BIO_free(bio);
    return rv;
}
