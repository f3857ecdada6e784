/* Building blocks of certificates and CRLs: serials, key identifiers, usages, URLs, signing. */
#include <string.h>
#include <time.h>

#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "common/error_internal.h"
#include "common/digest_internal.h"
#include "pki/pki_internal.h"
#include "tessera/provider.h"

ts_err ts_pki_serial_integer(const uint8_t *serial, size_t len, ASN1_INTEGER **out)
{
    BIGNUM *bn = NULL;
    ts_err rv = TS_OK;

    *out = NULL;
    if (serial == NULL || len == 0 || len > TS_SERIAL_LEN) {
        return ts_error_set(TS_ERR_INVALID, "a serial number must be 1 to %d bytes", TS_SERIAL_LEN);
    }
    bn = BN_bin2bn(serial, (int)len, NULL);
    if (bn == NULL) {
        return ts_error_set_openssl(TS_ERR_NOMEM, "cannot read a serial number");
    }
    /* RFC 5280 section 4.1.2.2: a positive integer of at most 20 octets, sign bit included. */
    if (BN_is_zero(bn) || BN_num_bytes(bn) > TS_SERIAL_LEN ||
        (BN_num_bytes(bn) == TS_SERIAL_LEN && BN_num_bits(bn) % 8 == 0)) {
        rv = ts_error_set(TS_ERR_INVALID, "a serial number must be positive and fit in %d octets",
                          TS_SERIAL_LEN);
    } else {
        *out = BN_to_ASN1_INTEGER(bn, NULL);
        if (*out == NULL) {
            rv = ts_error_set_openssl(TS_ERR_NOMEM, "cannot encode a serial number");
        }
    }
    BN_free(bn);
    return rv;
}

time_t ts_pki_time(const ASN1_TIME *t)
{
    struct tm tm;

    if (t == NULL || !ASN1_TIME_to_tm(t, &tm)) {
        return 0;
    }
    return timegm(&tm);
}

ts_err ts_pki_url_check(const char *what, const char *url)
{
    size_t len = strlen(url);
    const char *host;

    if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0) {
        return ts_error_set(TS_ERR_INVALID, "the %s URL must start with http:// or https://", what);
    }
    if (len > TS_URL_MAX) {
        return ts_error_set(TS_ERR_INVALID, "the %s URL is longer than %d characters", what,
                            TS_URL_MAX);
    }
    for (size_t i = 0; i < len; i++) {
        if (url[i] <= 0x20 || url[i] >= 0x7f) {
            return ts_error_set(TS_ERR_INVALID,
                                "the %s URL holds a space or a character outside "
                                "ASCII",
                                what);
        }
    }
    host = url + (url[4] == 's' ? 8 : 7);
    if (*host == '\0' || *host == '/') {
        return ts_error_set(TS_ERR_INVALID, "the %s URL has no host", what);
    }
    return TS_OK;
}

static ts_err pubkey_sha1(X509 *cert, ASN1_OCTET_STRING **out)
{
    const EVP_MD *sha1 = ts_md_sha1();
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    ts_err rv = TS_OK;

    *out = ASN1_OCTET_STRING_new();
    if (sha1 == NULL || *out == NULL || !X509_pubkey_digest(cert, sha1, md, &len) ||
        !ASN1_OCTET_STRING_set(*out, md, (int)len)) {
        ASN1_OCTET_STRING_free(*out);
        *out = NULL;
        rv = ts_error_set_openssl(TS_ERR_CRYPTO, "cannot compute a key identifier");
    }
    return rv;
}

ts_err ts_pki_add_ski(X509 *cert)
{
    ASN1_OCTET_STRING *ski = NULL;
    /* RFC 5280 section 4.2.1.2, method (1): SHA-1 of the subjectPublicKey BIT STRING. */
    ts_err rv = pubkey_sha1(cert, &ski);

    if (rv == TS_OK &&
        X509_add1_ext_i2d(cert, NID_subject_key_identifier, ski, 0, X509V3_ADD_DEFAULT) != 1) {
        rv = ts_error_set_openssl(TS_ERR_CRYPTO, "cannot add the subject key identifier");
    }
    ASN1_OCTET_STRING_free(ski);
    return rv;
}

ts_err ts_pki_key_id(X509 *ca, ASN1_OCTET_STRING **out)
{
    const ASN1_OCTET_STRING *ski = X509_get0_subject_key_id(ca);

    if (ski == NULL) {
        return pubkey_sha1(ca, out);
    }
    *out = ASN1_OCTET_STRING_dup(ski);
    if (*out == NULL) {
        return ts_error_set_openssl(TS_ERR_NOMEM, "cannot copy a key identifier");
    }
    return TS_OK;
}

ts_err ts_pki_aki(X509 *ca, int self, AUTHORITY_KEYID **out)
{
    AUTHORITY_KEYID *aki = AUTHORITY_KEYID_new();
    ts_err rv;

    *out = NULL;
    if (aki == NULL) {
        return ts_error_set_openssl(TS_ERR_NOMEM, "out of memory for a key identifier");
    }
    /* RFC 5280 section 4.2.1.1: the keyIdentifier field, matching the issuer's SKI. */
    rv = self ? pubkey_sha1(ca, &aki->keyid) : ts_pki_key_id(ca, &aki->keyid);
    if (rv != TS_OK) {
        AUTHORITY_KEYID_free(aki);
        return rv;
    }
    *out = aki;
    return TS_OK;
}

ts_err ts_pki_add_key_usage(X509 *cert, unsigned bits)
{
    ASN1_BIT_STRING *ku = ASN1_BIT_STRING_new();
    int ok = ku != NULL;

    /* RFC 5280 section 4.2.1.3: bit n of KeyUsage is the KU_* mask 0x80 >> n; critical. */
    for (int n = 0; ok && n < 8; n++) {
        if ((bits & (0x80U >> n)) != 0) {
            ok = ASN1_BIT_STRING_set_bit(ku, n, 1);
        }
    }
    ok = ok && X509_add1_ext_i2d(cert, NID_key_usage, ku, 1, X509V3_ADD_DEFAULT) == 1;
    ASN1_BIT_STRING_free(ku);
    if (!ok) {
        return ts_error_set_openssl(TS_ERR_CRYPTO, "cannot add the key usage");
    }
    return TS_OK;
}

static GENERAL_NAME *uri_name(const char *url)
{
    GENERAL_NAME *gen = GENERAL_NAME_new();
    ASN1_IA5STRING *s = ASN1_IA5STRING_new();

    if (gen == NULL || s == NULL || !ASN1_STRING_set(s, url, (int)strlen(url))) {
        GENERAL_NAME_free(gen);
        ASN1_IA5STRING_free(s);
        return NULL;
    }
    GENERAL_NAME_set0_value(gen, GEN_URI, s);
    return gen;
}

static int add_crl_dp(X509 *cert, const char *url)
{
    CRL_DIST_POINTS *dps = sk_DIST_POINT_new_null();
    DIST_POINT *dp = DIST_POINT_new();
    GENERAL_NAME *gen = uri_name(url);
    int ok = 0;

    if (dps == NULL || dp == NULL || gen == NULL) {
        goto cleanup;
    }
    /* RFC 5280 section 4.2.1.13: one DistributionPoint with a fullName URI. */
    dp->distpoint = DIST_POINT_NAME_new();
    if (dp->distpoint == NULL) {
        goto cleanup;
    }
    dp->distpoint->type = 0;
    dp->distpoint->name.fullname = sk_GENERAL_NAME_new_null();
    if (dp->distpoint->name.fullname == NULL ||
        !sk_GENERAL_NAME_push(dp->distpoint->name.fullname, gen)) {
        goto cleanup;
    }
    gen = NULL;
    if (!sk_DIST_POINT_push(dps, dp)) {
        goto cleanup;
    }
    dp = NULL;
    ok = X509_add1_ext_i2d(cert, NID_crl_distribution_points, dps, 0, X509V3_ADD_DEFAULT) == 1;
cleanup:
    GENERAL_NAME_free(gen);
    DIST_POINT_free(dp);
    sk_DIST_POINT_pop_free(dps, DIST_POINT_free);
    return ok;
}

static int push_access(AUTHORITY_INFO_ACCESS *aia, int method, const char *url)
{
    ACCESS_DESCRIPTION *ad = ACCESS_DESCRIPTION_new();
    GENERAL_NAME *gen = uri_name(url);

    if (ad == NULL || gen == NULL) {
        ACCESS_DESCRIPTION_free(ad);
        GENERAL_NAME_free(gen);
        return 0;
    }
    ASN1_OBJECT_free(ad->method);
    ad->method = OBJ_nid2obj(method);
    GENERAL_NAME_free(ad->location);
    ad->location = gen;
    if (!sk_ACCESS_DESCRIPTION_push(aia, ad)) {
        ACCESS_DESCRIPTION_free(ad);
        return 0;
    }
    return 1;
}

ts_err ts_pki_add_urls(X509 *cert, const char *crl_url, const char *ocsp_url,
                       const char *ca_issuers_url)
{
    AUTHORITY_INFO_ACCESS *aia = NULL;
    ts_err rv = TS_OK;
    int ok = 1;

    if (crl_url != NULL) {
        rv = ts_pki_url_check("CRL distribution point", crl_url);
    }
    if (rv == TS_OK && ocsp_url != NULL) {
        rv = ts_pki_url_check("OCSP", ocsp_url);
    }
    if (rv == TS_OK && ca_issuers_url != NULL) {
        rv = ts_pki_url_check("caIssuers", ca_issuers_url);
    }
    if (rv != TS_OK) {
        return rv;
    }
    if (crl_url != NULL) {
        ok = add_crl_dp(cert, crl_url);
    }
    /* RFC 5280 section 4.2.2.1: id-ad-ocsp and id-ad-caIssuers access descriptions. */
    if (ok && (ocsp_url != NULL || ca_issuers_url != NULL)) {
        aia = sk_ACCESS_DESCRIPTION_new_null();
        ok = aia != NULL && (ocsp_url == NULL || push_access(aia, NID_ad_OCSP, ocsp_url)) &&
             (ca_issuers_url == NULL || push_access(aia, NID_ad_ca_issuers, ca_issuers_url)) &&
             X509_add1_ext_i2d(cert, NID_info_access, aia, 0, X509V3_ADD_DEFAULT) == 1;
        sk_ACCESS_DESCRIPTION_pop_free(aia, ACCESS_DESCRIPTION_free);
    }
    if (!ok) {
        return ts_error_set_openssl(TS_ERR_CRYPTO, "cannot add the CRL and OCSP URLs");
    }
    return TS_OK;
}

ts_err ts_pki_sign_ctx(EVP_PKEY *key, const char *digest, EVP_MD_CTX **out)
{
    OSSL_LIB_CTX *libctx = ts_provider_libctx();
    EVP_MD_CTX *mctx;

    *out = NULL;
    if (libctx == NULL) {
        return ts_error_prefix(TS_ERR_CRYPTO, "cannot sign");
    }
    mctx = EVP_MD_CTX_new();
    if (mctx == NULL || EVP_DigestSignInit_ex(mctx, NULL, digest, libctx, NULL, key, NULL) != 1) {
        EVP_MD_CTX_free(mctx);
        return ts_error_set_openssl(TS_ERR_CRYPTO, "cannot sign with the issuer's key and %s",
                                    digest);
    }
    *out = mctx;
    return TS_OK;
}

ts_err ts_pki_sign_cert(X509 *cert, EVP_PKEY *key, const char *digest)
{
    EVP_MD_CTX *mctx = NULL;
    ts_err rv = ts_pki_sign_ctx(key, digest, &mctx);

    if (rv == TS_OK && X509_sign_ctx(cert, mctx) <= 0) {
        rv = ts_error_set_openssl(TS_ERR_CRYPTO, "cannot sign the certificate");
    }
    EVP_MD_CTX_free(mctx);
    return rv;
}
