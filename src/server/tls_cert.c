/*
 * The trust service's own TLS identity (include/tessera/access.h): a certificate from the
 * default tenant's issuing CA under its "server" profile, for a P-256 key in the instance key
 * store, kept as DIR/tls/server.pem (leaf, then the issuing CA: RFC 8446 section 4.4.2 has the
 * sender's certificate first, each following one certifying the one before it).
 */
#include <errno.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "common/error_internal.h"
#include "common/file_internal.h"
#include "server/command_internal.h"
#include "server/server_internal.h"

enum {
    TLS_NAMES_MAX = 32, /* SANs in one certificate */
    TLS_NAME_MAX = 253, /* a DNS name (RFC 1035 section 2.3.4) */
};

/* Adds name as an IP address or DNS SAN, unless it is there already. */
static ts_err san_add(GENERAL_NAMES *sans, const char *name)
{
    size_t len = name != NULL ? strlen(name) : 0;
    if (len == 0 || len > TLS_NAME_MAX) {
        return ts_error_set(TS_ERR_INVALID, "a TLS server name has 1 to %d characters",
                            TLS_NAME_MAX);
    }
    ASN1_OCTET_STRING *ip = a2i_IPADDRESS(name);
    if (ip == NULL) {
        ERR_clear_error(); /* not an address: a DNS name, checked by the profile */
    }
    for (int i = 0; i < sk_GENERAL_NAME_num(sans); i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(sans, i);
        int same = ip != NULL
                       ? g->type == GEN_IPADD && ASN1_OCTET_STRING_cmp(g->d.iPAddress, ip) == 0
                       : g->type == GEN_DNS && (size_t)ASN1_STRING_length(g->d.dNSName) == len &&
                             strncasecmp((const char *)ASN1_STRING_get0_data(g->d.dNSName), name,
                                         len) == 0;
        if (same) {
            ASN1_OCTET_STRING_free(ip);
            return TS_OK;
        }
    }
    if (sk_GENERAL_NAME_num(sans) >= TLS_NAMES_MAX) {
        ASN1_OCTET_STRING_free(ip);
        return ts_error_set(TS_ERR_INVALID, "a TLS server certificate has at most %d names",
                            TLS_NAMES_MAX);
    }
    GENERAL_NAME *g = GENERAL_NAME_new();
    ASN1_IA5STRING *dns = ip == NULL ? ASN1_IA5STRING_new() : NULL;
    int ok = g != NULL && (ip != NULL || (dns != NULL && ASN1_STRING_set(dns, name, (int)len)));
    if (ok) {
        GENERAL_NAME_set0_value(g, ip != NULL ? GEN_IPADD : GEN_DNS,
                                ip != NULL ? (void *)ip : (void *)dns);
        ip = NULL;
        dns = NULL;
        ok = sk_GENERAL_NAME_push(sans, g) > 0;
        if (ok) {
            g = NULL;
        }
    }
    GENERAL_NAME_free(g);
    ASN1_OCTET_STRING_free(ip);
    ASN1_IA5STRING_free(dns);
    return ok ? TS_OK : ts_error_set_openssl(TS_ERR_NOMEM, "cannot add SAN %s", name);
}

/* DIR/name (under tls/): the leaf, then the issuing CA; written whole or not at all. */
static ts_err tls_write_file(ts_ca *ca, const char *name, X509 *leaf, X509 *issuing)
{
    char dir[TS_CA_PATH_MAX], path[TS_CA_PATH_MAX];
    BIO *mem = BIO_new(BIO_s_mem());
    char *data = NULL;
    ts_err rv = srv_path(dir, sizeof dir, ca->dir, SRV_TLS_DIR);
    if (rv == TS_OK) {
        rv = srv_path(path, sizeof path, ca->dir, name);
    }
    if (rv == TS_OK && mkdir(dir, 0755) != 0 && errno != EEXIST) {
        rv = ts_error_set(TS_ERR_IO, "cannot make %s: %s", dir, strerror(errno));
    }
    if (rv == TS_OK &&
        (mem == NULL || !PEM_write_bio_X509(mem, leaf) || !PEM_write_bio_X509(mem, issuing))) {
        rv = ts_error_set_openssl(TS_ERR_NOMEM, "cannot encode the TLS certificate");
    }
    if (rv == TS_OK) {
        long len = BIO_get_mem_data(mem, &data);
        /* Certificates are public: readable by the service's other users. */
        rv = ts_file_write_atomic(path, (const uint8_t *)data, (size_t)len, 0644);
    }
    BIO_free(mem);
    return rv;
}

/* The service's key, made when missing. */
static ts_err tls_key(ts_ca *ca, EVP_PKEY **pub)
{
    ts_keystore *ks = NULL;
    ts_err rv = ts_ca_keystore(ca, &ks);
    if (rv == TS_OK) {
        rv = ts_keystore_public_key(ks, TS_TLS_KEY_LABEL, pub);
    }
    if (rv == TS_ERR_NOT_FOUND) {
        rv = ts_keystore_generate(ks, TS_TLS_KEY_LABEL, TS_CURVE_P256);
        if (rv == TS_OK) {
            rv = ts_keystore_public_key(ks, TS_TLS_KEY_LABEL, pub);
        }
    }
    return rv != TS_OK ? ts_error_prefix(rv, "the TLS server key '%s'", TS_TLS_KEY_LABEL) : TS_OK;
}

/* DIR/tls/server.pem: the leaf, then the issuing CA; written whole or not at all. */
static ts_err tls_write(ts_ca *ca, X509 *leaf, X509 *issuing)
{
    return tls_write_file(ca, SRV_TLS_CERT_FILE, leaf, issuing);
}

ts_err ts_ca_tls_server_cert(ts_ca *ca, const char *const *names, size_t count)
{
    static const char *const profile = "server";
    srv_issue_ctx c;
    srv_issue_req req;
    EVP_PKEY *pub = NULL;
    GENERAL_NAMES *sans = sk_GENERAL_NAME_new_null();
    X509_NAME *subject = X509_NAME_new();
    X509 *cert = NULL;
    json_t *list = json_array();
    int loaded = 0;
    ts_err rv = sans != NULL && subject != NULL && list != NULL
                    ? TS_OK
                    : ts_error_set(TS_ERR_NOMEM, "out of memory");

    if (ca == NULL || (names == NULL && count > 0)) {
        rv = ts_error_set(TS_ERR_INVALID, "ts_ca_tls_server_cert: missing argument");
    }
    for (size_t i = 0; rv == TS_OK && i < count; i++) {
        rv = san_add(sans, names[i]);
    }
    if (rv == TS_OK) {
        rv = san_add(sans, "localhost");
    }
    if (rv == TS_OK) {
        rv = san_add(sans, "127.0.0.1");
    }
    for (size_t i = 0; rv == TS_OK && i < count; i++) {
        json_array_append_new(list, json_string(names[i]));
    }
    if (rv == TS_OK) {
        rv = tls_key(ca, &pub);
    }
    if (rv == TS_OK) {
        rv = srv_issue_ctx_load(ca, TS_DEFAULT_TENANT, profile, &c);
        loaded = rv == TS_OK;
    }
    /* CN: the first name given (it must be among the SANs), else localhost. */
    const char *cn = count > 0 ? names[0] : "localhost";
    const char *org = rv == TS_OK && c.tenant.org[0] != '\0' ? c.tenant.org : ca->org;
    if (rv == TS_OK && (!X509_NAME_add_entry_by_NID(subject, NID_organizationName, MBSTRING_UTF8,
                                                    (const unsigned char *)org, -1, -1, 0) ||
                        !X509_NAME_add_entry_by_NID(subject, NID_commonName, MBSTRING_UTF8,
                                                    (const unsigned char *)cn, -1, -1, 0))) {
        rv = ts_error_set_openssl(TS_ERR_INVALID, "cannot make the TLS server subject");
    }
    if (rv == TS_OK) {
        srv_issue_req_init(ca, &c, profile, "cert.issue", &req);
        req.params.public_key = pub;
        req.params.subject = subject;
        req.params.sans = sans;
        req.device_uid = "";
        req.details = srv_json("{s:s, s:s, s:O}", "purpose", "tls-server", "key_label",
                               TS_TLS_KEY_LABEL, "names", list);
        rv = srv_issue(ca, &req, &cert);
    }
    if (rv == TS_OK) {
        rv = tls_write(ca, cert, c.issuer.cert);
    }
    if (loaded) {
        srv_issue_ctx_clear(&c);
    }
    json_decref(list);
    X509_free(cert);
    X509_NAME_free(subject);
    GENERAL_NAMES_free(sans);
    EVP_PKEY_free(pub);
    return rv != TS_OK ? ts_error_prefix(rv, "TLS server certificate") : TS_OK;
}

ts_err ts_ca_tls_client_cert(ts_ca *ca)
{
    static const char *const profile = "service-client";
    srv_issue_ctx c;
    srv_issue_req req;
    EVP_PKEY *pub = NULL;
    X509_NAME *subject = NULL;
    X509 *cert = NULL;

    if (ca == NULL) {
        return ts_error_set(TS_ERR_INVALID, "ts_ca_tls_client_cert: missing argument");
    }
    ts_err rv = tls_key(ca, &pub);
    if (rv == TS_OK) {
        rv = srv_builtin_ctx_load(ca, TS_DEFAULT_TENANT, profile, &c);
        if (rv == TS_OK) {
            rv = srv_subject_make(c.tenant.org[0] != '\0' ? c.tenant.org : ca->org,
                                  TS_TLS_CLIENT_CN, &subject);
            if (rv == TS_OK) {
                srv_issue_req_init(ca, &c, profile, "cert.issue", &req);
                req.params.public_key = pub;
                req.params.subject = subject;
                req.device_uid = "";
                req.details = srv_json("{s:s, s:s}", "purpose", "service-client", "key_label",
                                       TS_TLS_KEY_LABEL);
                rv = srv_issue(ca, &req, &cert);
            }
            if (rv == TS_OK) {
                rv = tls_write_file(ca, TS_TLS_CLIENT_CERT_FILE, cert, c.issuer.cert);
            }
            srv_issue_ctx_clear(&c);
        }
    }
    X509_free(cert);
    X509_NAME_free(subject);
    EVP_PKEY_free(pub);
    return rv != TS_OK ? ts_error_prefix(rv, "TLS client certificate") : TS_OK;
}
