/*
 * CA material: loading a CA's certificate and signing key, making CA certificates, the URLs that
 * go into certificates, certificate facts for the store, and profiles.
 *
 * URL layout under the instance's base URL (docs/ca.md):
 *   BASE/crl/<tenant>.crl   the CRL of a tenant's issuing CA (BASE/crl/root.crl: the root's)
 *   BASE/ocsp               the OCSP responder of every issuing CA
 *   BASE/ca/<tenant>.crt    the issuing CA certificate (BASE/ca/root.crt: the root)
 */
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "common/error_internal.h"
#include "common/digest_internal.h"
#include "server/server_internal.h"

static const char *const builtin_profiles[] = {"device", "server", "firmware-signer",
                                               "verification", NULL};

void srv_issuer_clear(srv_issuer *issuer)
{
    if (issuer == NULL) {
        return;
    }
    ts_ca_row_clear(&issuer->row);
    X509_free(issuer->cert);
    EVP_PKEY_free(issuer->key);
    ts_keystore_free(issuer->ks);
    memset(issuer, 0, sizeof *issuer);
}

static ts_err cert_from_row(const ts_ca_row *row, X509 **out)
{
    const unsigned char *p = row->cert_der;
    *out = d2i_X509(NULL, &p, (long)row->cert_len);
    if (*out == NULL || p != row->cert_der + row->cert_len) {
        X509_free(*out);
        *out = NULL;
        return ts_error_set_openssl(
            TS_ERR_CORRUPT, "the stored certificate of CA %lld is malformed", (long long)row->id);
    }
    return TS_OK;
}

/* The key of label in ks, checked against the certificate's public key. */
static ts_err key_load(ts_keystore *ks, srv_issuer *issuer)
{
    EVP_PKEY *pub = NULL;
    ts_err rv = ts_keystore_public_key(ks, issuer->row.key_label, &pub);
    if (rv != TS_OK) {
        return rv;
    }
    if (EVP_PKEY_eq(pub, X509_get0_pubkey(issuer->cert)) != 1) {
        rv = ts_error_set(TS_ERR_CORRUPT, "key '%s' in %s is not the key of CA '%s'",
                          issuer->row.key_label, ts_keystore_uri(ks), issuer->row.subject);
    }
    EVP_PKEY_free(pub);
    if (rv == TS_OK) {
        rv = ts_keystore_evp_pkey(ks, issuer->row.key_label, &issuer->key);
    }
    if (rv == TS_OK) {
        issuer->ks = ts_keystore_up_ref(ks);
    }
    return rv;
}

void srv_issuing_cache_clear(ts_ca *ca)
{
    srv_issuer_clear(ca->issuing_cache);
    OPENSSL_free(ca->issuing_cache);
    ca->issuing_cache = NULL;
    ca->issuing_cache_tenant = 0;
}

/* Whether the cached issuing CA is the one row names: the same CA, certificate and key label,
 * its key from the instance key store as it is open now. The row is read from the store for
 * every load, so a CA rotated, replaced or changed by any process is seen at once and the cache
 * is not used; the key was checked against the certificate when it was cached. */
static int cache_matches(ts_ca *ca, int64_t tenant_id, const ts_ca_row *row)
{
    const srv_issuer *c = ca->issuing_cache;

    return c != NULL && ca->issuing_cache_tenant == tenant_id && c->row.id == row->id &&
           c->key != NULL && c->ks == ca->ks && c->row.cert_len == row->cert_len &&
           memcmp(c->row.cert_der, row->cert_der, row->cert_len) == 0 &&
           strcmp(c->row.key_label, row->key_label) == 0;
}

/* out (its row already read) takes references to the cached certificate, key and store. */
static ts_err cache_use(ts_ca *ca, srv_issuer *out)
{
    srv_issuer *c = ca->issuing_cache;

    if (X509_up_ref(c->cert) != 1) {
        return ts_error_set_openssl(TS_ERR_CRYPTO, "cannot reference the issuing CA certificate");
    }
    out->cert = c->cert;
    if (EVP_PKEY_up_ref(c->key) != 1) {
        return ts_error_set_openssl(TS_ERR_CRYPTO, "cannot reference the issuing CA key");
    }
    out->key = c->key;
    out->ks = ts_keystore_up_ref(c->ks);
    return TS_OK;
}

/* Keeps a copy of a loaded issuing CA with its key; on any failure simply nothing is cached. */
static void cache_keep(ts_ca *ca, int64_t tenant_id, const srv_issuer *in)
{
    srv_issuer *c = OPENSSL_zalloc(sizeof *c);

    srv_issuing_cache_clear(ca);
    if (c == NULL) {
        return;
    }
    c->row = in->row;
    c->row.cert_der = OPENSSL_memdup(in->row.cert_der, in->row.cert_len);
    if (c->row.cert_der == NULL) {
        OPENSSL_free(c);
        return;
    }
    if (X509_up_ref(in->cert) == 1) {
        c->cert = in->cert;
    }
    if (EVP_PKEY_up_ref(in->key) == 1) {
        c->key = in->key;
    }
    c->ks = ts_keystore_up_ref(in->ks);
    if (c->cert == NULL || c->key == NULL) {
        srv_issuer_clear(c);
        OPENSSL_free(c);
        return;
    }
    ca->issuing_cache = c;
    ca->issuing_cache_tenant = tenant_id;
}

ts_err srv_issuing_load(ts_ca *ca, int64_t tenant_id, int with_key, srv_issuer *out)
{
    ts_keystore *ks = NULL;
    ts_err rv;

    memset(out, 0, sizeof *out);
    rv = ts_store_ca_active(ca->store, tenant_id, TS_CA_ISSUING, &out->row);
    if (rv == TS_ERR_NOT_FOUND) {
        return ts_error_set(TS_ERR_CORRUPT, "tenant %lld has no active issuing CA",
                            (long long)tenant_id);
    }
    /* Decoding the certificate and finding and checking its key cost more than signing; a CA
     * that issues in a loop does it once. */
    if (rv == TS_OK && with_key && cache_matches(ca, tenant_id, &out->row)) {
        rv = cache_use(ca, out);
        if (rv != TS_OK) {
            srv_issuer_clear(out);
        }
        return rv;
    }
    if (rv == TS_OK) {
        rv = cert_from_row(&out->row, &out->cert);
    }
    if (rv == TS_OK && with_key) {
        rv = ts_ca_keystore(ca, &ks);
    }
    if (rv == TS_OK && with_key) {
        rv = key_load(ks, out);
        if (rv != TS_OK) {
            ts_error_prefix(rv, "the issuing CA key");
        }
    }
    if (rv == TS_OK && with_key) {
        cache_keep(ca, tenant_id, out);
    }
    if (rv != TS_OK) {
        srv_issuer_clear(out);
    }
    return rv;
}

ts_err srv_root_offline_error(ts_ca *ca)
{
    char *shares = NULL;
    unsigned m = 0, n = 0;
    ts_err rv;

    if (srv_setting(ca, SRV_SET_SHARES, &shares) != TS_OK || shares == NULL ||
        sscanf(shares, "%u/%u", &m, &n) != 2) {
        m = n = 0;
    }
    OPENSSL_free(shares);
    if (m == 0) {
        return ts_error_set(TS_ERR_STATE, "the root key is offline: run tessera ceremony restore "
                                          "--shares FILE... with the root key's backup shares");
    }
    rv = ts_error_set(TS_ERR_STATE,
                      "the root key is offline: run tessera ceremony restore --shares FILE... "
                      "with any %u of the %u backup shares",
                      m, n);
    return rv;
}

ts_err srv_root_load(ts_ca *ca, int with_key, srv_issuer *out)
{
    ts_keystore *ks = NULL;
    char *where = NULL;
    ts_err rv;

    memset(out, 0, sizeof *out);
    rv = ts_store_ca_active(ca->store, 0, TS_CA_ROOT, &out->row);
    if (rv == TS_ERR_NOT_FOUND) {
        return ts_error_set(TS_ERR_CORRUPT, "the store of %s has no root CA", ca->dir);
    }
    if (rv == TS_OK) {
        rv = cert_from_row(&out->row, &out->cert);
    }
    if (rv != TS_OK || !with_key) {
        goto done;
    }
    rv = srv_setting(ca, SRV_SET_ROOT_STORE, &where);
    if (rv == TS_OK && (where == NULL || strcmp(where, SRV_ROOT_OFFLINE) == 0)) {
        rv = srv_root_offline_error(ca);
        goto done;
    }
    if (rv == TS_OK && strcmp(where, SRV_ROOT_ONLINE) == 0) {
        rv = ts_ca_keystore(ca, &ks);
        if (rv == TS_OK) {
            ks = ts_keystore_up_ref(ks);
        }
    } else if (rv == TS_OK) {
        rv = ts_keystore_open(where, &ks);
        if (rv != TS_OK) {
            ts_error_prefix(rv, "cannot open the root key's store");
        }
    }
    if (rv == TS_OK) {
        rv = key_load(ks, out);
        if (rv == TS_ERR_NOT_FOUND) {
            rv = srv_root_offline_error(ca);
        }
    }
done:
    ts_keystore_free(ks);
    OPENSSL_free(where);
    if (rv != TS_OK) {
        srv_issuer_clear(out);
    }
    return rv;
}

static ts_err time_of(const ASN1_TIME *t, time_t *out)
{
    struct tm tm;
    if (ASN1_TIME_to_tm(t, &tm) != 1) {
        return ts_error_set_openssl(TS_ERR_CRYPTO, "a certificate time does not convert");
    }
    *out = timegm(&tm);
    return TS_OK;
}

ts_err srv_cert_row_fill(X509 *cert, ts_cert_row *row)
{
    static const char hex_digits[] = "0123456789abcdef";
    BIO *mem = BIO_new(BIO_s_mem());
    unsigned char *der = NULL;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    char *text = NULL;
    ts_err rv = TS_OK;

    if (mem == NULL ||
        X509_NAME_print_ex(mem, X509_get_subject_name(cert), 0, XN_FLAG_RFC2253) < 0) {
        rv = ts_error_set_openssl(TS_ERR_CRYPTO, "cannot print the certificate's subject");
        goto done;
    }
    long n = BIO_get_mem_data(mem, &text);
    snprintf(row->subject, sizeof row->subject, "%.*s", (int)n, text);
    rv = ts_serial_hex(X509_get0_serialNumber(cert), row->serial, sizeof row->serial);
    if (rv == TS_OK) {
        rv = time_of(X509_get0_notBefore(cert), &row->not_before);
    }
    if (rv == TS_OK) {
        rv = time_of(X509_get0_notAfter(cert), &row->not_after);
    }
    if (rv != TS_OK) {
        goto done;
    }
    int len = i2d_X509(cert, &der);
    if (len <= 0) {
        rv = ts_error_set_openssl(TS_ERR_CRYPTO, "cannot encode the certificate");
        goto done;
    }
    /* The fingerprint is the SHA-256 of these very bytes, as ts_cert_fingerprint() computes it;
     * hashing them here spares encoding the certificate a second time. */
    if (EVP_Digest(der, (size_t)len, md, &md_len, ts_md_sha256(), NULL) != 1 || md_len != 32) {
        OPENSSL_free(der);
        rv = ts_error_set_openssl(TS_ERR_CRYPTO, "cannot compute a certificate fingerprint");
        goto done;
    }
    for (unsigned int i = 0; i < md_len; i++) {
        row->fingerprint[2 * i] = hex_digits[md[i] >> 4];
        row->fingerprint[2 * i + 1] = hex_digits[md[i] & 0x0f];
    }
    row->fingerprint[2 * md_len] = '\0';
    row->der = der;
    row->der_len = (size_t)len;
    row->state = TS_CERT_VALID;
done:
    BIO_free(mem);
    return rv;
}

ts_err srv_pubkey_fingerprint(EVP_PKEY *key, char hex[65])
{
    static const char digits[] = "0123456789abcdef";
    unsigned char *der = NULL;
    unsigned char md[32];
    unsigned int mdlen = 0;
    int len = i2d_PUBKEY(key, &der);

    if (len <= 0 || EVP_Digest(der, (size_t)len, md, &mdlen, ts_md_sha256(), NULL) != 1) {
        OPENSSL_free(der);
        return ts_error_set_openssl(TS_ERR_CRYPTO, "cannot hash a public key");
    }
    OPENSSL_free(der);
    for (unsigned int i = 0; i < mdlen; i++) {
        hex[2 * i] = digits[md[i] >> 4];
        hex[2 * i + 1] = digits[md[i] & 0x0f];
    }
    hex[2 * mdlen] = '\0';
    return TS_OK;
}

ts_err srv_cert_pem(X509 *cert, char **pem)
{
    BIO *mem = BIO_new(BIO_s_mem());
    char *data = NULL;
    ts_err rv = TS_OK;

    *pem = NULL;
    if (mem == NULL || PEM_write_bio_X509(mem, cert) != 1) {
        rv = ts_error_set_openssl(TS_ERR_CRYPTO, "cannot encode a certificate as PEM");
        goto done;
    }
    long n = BIO_get_mem_data(mem, &data);
    *pem = OPENSSL_strndup(data, (size_t)n);
    if (*pem == NULL) {
        rv = ts_error_set(TS_ERR_NOMEM, "out of memory");
    }
done:
    BIO_free(mem);
    return rv;
}

static ts_err url_join(const char *base, const char *a, const char *b, const char *c, char **out)
{
    size_t n = strlen(base) + strlen(a) + strlen(b) + strlen(c) + 1;
    *out = OPENSSL_malloc(n);
    if (*out == NULL) {
        return ts_error_set(TS_ERR_NOMEM, "out of memory");
    }
    snprintf(*out, n, "%s%s%s%s", base, a, b, c);
    return TS_OK;
}

ts_err srv_urls_make(ts_ca *ca, const char *crl_name, srv_urls *out)
{
    ts_err rv = TS_OK;
    memset(out, 0, sizeof *out);
    if (ca->base_url == NULL) {
        return TS_OK;
    }
    rv = url_join(ca->base_url, "/crl/", crl_name, ".crl", &out->crl);
    if (rv == TS_OK) {
        rv = url_join(ca->base_url, "/ocsp", "", "", &out->ocsp);
    }
    if (rv == TS_OK) {
        rv = url_join(ca->base_url, "/ca/", crl_name, ".crt", &out->ca_issuers);
    }
    if (rv != TS_OK) {
        srv_urls_clear(out);
    }
    return rv;
}

void srv_urls_clear(srv_urls *urls)
{
    OPENSSL_free(urls->crl);
    OPENSSL_free(urls->ocsp);
    OPENSSL_free(urls->ca_issuers);
    memset(urls, 0, sizeof *urls);
}

ts_err srv_ca_cert_make(ts_ca *ca, const char *cn, const char *org, const char *country, int days,
                        int path_len, EVP_PKEY *subject_key, srv_issuer *issuer, X509 **out)
{
    uint8_t serial[TS_SERIAL_LEN];
    srv_urls urls = {0};
    ts_ca_params p;
    ts_err rv = ts_serial_random(serial);

    /* The issuing CA's revocation is published by the root (BASE/crl/root.crl). */
    if (rv == TS_OK && issuer->cert != NULL) {
        rv = srv_urls_make(ca, "root", &urls);
    }
    if (rv != TS_OK) {
        return rv;
    }
    memset(&p, 0, sizeof p);
    p.common_name = cn;
    p.org = org;
    p.country = country;
    p.days = days;
    p.path_len = path_len;
    p.serial = serial;
    p.subject_key = subject_key;
    p.issuer_cert = issuer->cert;
    p.issuer_key = issuer->key;
    p.crl_url = urls.crl;
    p.ocsp_url = urls.ocsp;
    rv = ts_ca_cert_make(&p, out);
    srv_urls_clear(&urls);
    return rv;
}

ts_err srv_profile_load(ts_ca *ca, int64_t tenant_id, const char *name, ts_profile **out)
{
    char *json = NULL;
    ts_err rv = ts_store_profile_get(ca->store, tenant_id, name, &json);
    if (rv == TS_ERR_NOT_FOUND) {
        return ts_error_set(TS_ERR_NOT_FOUND,
                            "no profile '%s' for this tenant (tessera profile list shows them)",
                            name);
    }
    if (rv != TS_OK) {
        return rv;
    }
    rv = ts_profile_from_json(json, strlen(json), out);
    OPENSSL_free(json);
    return rv != TS_OK ? ts_error_prefix(rv, "stored profile '%s'", name) : TS_OK;
}

ts_err srv_profiles_builtin(ts_ca *ca, int64_t tenant_id, const char *tenant)
{
    ts_err rv = TS_OK;
    for (size_t i = 0; rv == TS_OK && builtin_profiles[i] != NULL; i++) {
        ts_profile *profile = NULL;
        char *json = NULL;
        rv = ts_profile_builtin(builtin_profiles[i], &profile);
        if (rv == TS_OK) {
            rv = ts_profile_to_json(profile, &json);
        }
        if (rv == TS_OK) {
            rv = ts_store_profile_put(ca->store, tenant_id, builtin_profiles[i], json, 0);
        }
        if (rv == TS_OK) {
            rv = srv_audit(ca, "profile.create", builtin_profiles[i],
                           srv_json("{s:s, s:s, s:b}", "tenant", tenant, "profile",
                                    builtin_profiles[i], "builtin", 1));
        }
        OPENSSL_free(json);
        ts_profile_free(profile);
    }
    return rv;
}

int srv_profile_is_device(const ts_profile *profile)
{
    const char *kind = ts_profile_kind_name(profile);

    return kind != NULL && strcmp(kind, "device") == 0;
}
