/*
 * A throwaway certificate authority for the demo: its key lives in memory only and dies with it.
 * It issues client certificates for requests and server certificates for plain keys; profiles
 * follow RFC 5280 section 4.2.1 closely enough for a TLS 1.3 peer to accept them.
 */
#include <string.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>

#include "cli/cli_internal.h"
#include "common/error_internal.h"

struct cli_ca {
    EVP_PKEY *key;
    X509 *cert;
};

enum {
    CERT_DAYS = 1,            /* the demo needs them for seconds */
    CERT_BACKDATE_S = 5 * 60, /* tolerate clocks a little behind */
    SERIAL_BITS = 127,        /* positive, under 20 octets (RFC 5280 section 4.1.2.2) */
};

static ts_err add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509_EXTENSION *ext;
    int ok;

    X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
    ext = X509V3_EXT_nconf_nid(NULL, &ctx, nid, value);
    ok = ext != NULL && X509_add_ext(cert, ext, -1) == 1;
    X509_EXTENSION_free(ext);
    if (!ok) {
        return ts_error_set_openssl(TS_ERR_CRYPTO, "cannot add %s = %s", OBJ_nid2sn(nid), value);
    }
    return TS_OK;
}

/* The fields every certificate has: version 3, a random serial, validity, names and key. */
static ts_err cert_body(const X509_NAME *subject, const X509_NAME *issuer, EVP_PKEY *pub,
                        X509 **out)
{
    X509 *cert = X509_new();
    BIGNUM *bn = BN_new();
    ASN1_INTEGER *serial = NULL;
    ts_err rv = TS_OK;

    *out = NULL;
    if (cert == NULL || bn == NULL || BN_rand(bn, SERIAL_BITS, BN_RAND_TOP_ANY, 0) != 1) {
        rv = ts_error_set_openssl(TS_ERR_CRYPTO, "cannot start a certificate");
        goto done;
    }
    serial = BN_to_ASN1_INTEGER(bn, NULL);
    if (serial == NULL || X509_set_version(cert, X509_VERSION_3) != 1 ||
        X509_set_serialNumber(cert, serial) != 1 ||
        X509_gmtime_adj(X509_getm_notBefore(cert), -CERT_BACKDATE_S) == NULL ||
        X509_gmtime_adj(X509_getm_notAfter(cert), 60L * 60 * 24 * CERT_DAYS) == NULL ||
        X509_set_subject_name(cert, subject) != 1 || X509_set_issuer_name(cert, issuer) != 1 ||
        X509_set_pubkey(cert, pub) != 1) {
        rv = ts_error_set_openssl(TS_ERR_CRYPTO, "cannot fill in a certificate");
        goto done;
    }
    *out = cert;
    cert = NULL;
done:
    ASN1_INTEGER_free(serial);
    BN_free(bn);
    X509_free(cert);
    return rv;
}

ts_err cli_ca_new(const char *subject_text, cli_ca **out)
{
    cli_ca *ca = NULL;
    X509_NAME *name = NULL;
    ts_err rv;

    *out = NULL;
    ca = OPENSSL_zalloc(sizeof *ca);
    if (ca == NULL) {
        return ts_error_set(TS_ERR_NOMEM, "out of memory making the CA");
    }
    ca->key = EVP_EC_gen("P-256");
    if (ca->key == NULL) {
        rv = ts_error_set_openssl(TS_ERR_CRYPTO, "cannot generate the CA key");
        goto done;
    }
    rv = cli_subject_parse(subject_text, &name);
    if (rv != TS_OK) {
        goto done;
    }
    rv = cert_body(name, name, ca->key, &ca->cert);
    if (rv != TS_OK) {
        goto done;
    }
    /* Self-signed: it is its own issuer, so the key identifiers point at itself. */
    rv = add_ext(ca->cert, ca->cert, NID_basic_constraints, "critical,CA:TRUE,pathlen:0");
    if (rv == TS_OK) {
        rv = add_ext(ca->cert, ca->cert, NID_key_usage, "critical,keyCertSign,cRLSign");
    }
    if (rv == TS_OK) {
        rv = add_ext(ca->cert, ca->cert, NID_subject_key_identifier, "hash");
    }
    if (rv == TS_OK) {
        rv = add_ext(ca->cert, ca->cert, NID_authority_key_identifier, "keyid:always");
    }
    if (rv != TS_OK) {
        goto done;
    }
    if (X509_sign(ca->cert, ca->key, EVP_sha256()) <= 0) {
        rv = ts_error_set_openssl(TS_ERR_CRYPTO, "cannot self-sign the CA certificate");
        goto done;
    }
    *out = ca;
    ca = NULL;
done:
    X509_NAME_free(name);
    cli_ca_free(ca);
    return rv;
}

void cli_ca_free(cli_ca *ca)
{
    if (ca == NULL) {
        return;
    }
    EVP_PKEY_free(ca->key);
    X509_free(ca->cert);
    OPENSSL_free(ca);
}

X509 *cli_ca_cert(const cli_ca *ca)
{
    return ca->cert;
}

ts_err cli_ca_issue(cli_ca *ca, const X509_NAME *subject, EVP_PKEY *pub, const GENERAL_NAMES *sans,
                    int server, X509 **out)
{
    X509 *cert = NULL;
    ts_err rv;

    *out = NULL;
    rv = cert_body(subject, X509_get_subject_name(ca->cert), pub, &cert);
    if (rv != TS_OK) {
        return rv;
    }
    rv = add_ext(cert, ca->cert, NID_basic_constraints, "critical,CA:FALSE");
    if (rv == TS_OK) {
        rv = add_ext(cert, ca->cert, NID_key_usage, "critical,digitalSignature");
    }
    if (rv == TS_OK) {
        rv = add_ext(cert, ca->cert, NID_ext_key_usage, server ? "serverAuth" : "clientAuth");
    }
    if (rv == TS_OK) {
        rv = add_ext(cert, ca->cert, NID_subject_key_identifier, "hash");
    }
    if (rv == TS_OK) {
        rv = add_ext(cert, ca->cert, NID_authority_key_identifier, "keyid:always");
    }
    if (rv == TS_OK && sans != NULL &&
        X509_add1_ext_i2d(cert, NID_subject_alt_name, (void *)sans, 0, X509V3_ADD_DEFAULT) != 1) {
        rv = ts_error_set_openssl(TS_ERR_CRYPTO, "cannot add subjectAltName");
    }
    if (rv == TS_OK && X509_sign(cert, ca->key, EVP_sha256()) <= 0) {
        rv = ts_error_set_openssl(TS_ERR_CRYPTO, "cannot sign the certificate");
    }
    if (rv != TS_OK) {
        X509_free(cert);
        return rv;
    }
    *out = cert;
    return TS_OK;
}

ts_err cli_ca_issue_for_request(cli_ca *ca, X509_REQ *req, X509 **out)
{
    EVP_PKEY *pub = X509_REQ_get0_pubkey(req);

    *out = NULL;
    /* Proof of possession (RFC 2986 section 3): the request is signed by the key it carries. */
    if (pub == NULL || X509_REQ_verify(req, pub) != 1) {
        return ts_error_set_openssl(TS_ERR_AUTH, "the request's signature does not verify");
    }
    return cli_ca_issue(ca, X509_REQ_get_subject_name(req), pub, NULL, 0, out);
}
