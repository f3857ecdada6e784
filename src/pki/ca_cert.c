/* CA certificates: the self-signed root and the issuing CAs it signs. */
#include <string.h>
#include <time.h>

#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "common/error_internal.h"
#include "pki/pki_internal.h"
#include "tessera/provider.h"

enum { CA_PATHLEN_MAX = 8, CA_NAME_MAX = 64 };

static ts_err name_text(const char *what, const char *s)
{
    size_t len = strlen(s);

    if (len == 0 || len > CA_NAME_MAX) {
        return ts_error_set(TS_ERR_INVALID, "the CA's %s must be 1 to %d characters", what,
                            CA_NAME_MAX);
    }
    for (size_t i = 0; i < len; i++) {
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) {
            return ts_error_set(TS_ERR_INVALID, "the CA's %s holds a control character", what);
        }
    }
    return TS_OK;
}

static ts_err check_params(const ts_ca_params *p)
{
    ts_err rv;

    if (p == NULL || p->common_name == NULL || p->org == NULL || p->serial == NULL ||
        p->subject_key == NULL || p->issuer_key == NULL) {
        return ts_error_set(TS_ERR_INVALID, "a CA certificate needs a name, an organisation, a "
                                            "serial, its key and the issuer's key");
    }
    rv = name_text("common name", p->common_name);
    if (rv == TS_OK) {
        rv = name_text("organisation", p->org);
    }
    if (rv != TS_OK) {
        return rv;
    }
    if (p->country != NULL && (strlen(p->country) != 2 || p->country[0] < 'A' ||
                               p->country[0] > 'Z' || p->country[1] < 'A' || p->country[1] > 'Z')) {
        return ts_error_set(TS_ERR_INVALID, "the country must be two capital letters (ISO 3166)");
    }
    if (p->days < 1 || p->days > TS_PROFILE_DAYS_MAX) {
        return ts_error_set(TS_ERR_INVALID, "a CA's validity must be 1 to %d days",
                            TS_PROFILE_DAYS_MAX);
    }
    if (p->path_len < 0 || p->path_len > CA_PATHLEN_MAX) {
        return ts_error_set(TS_ERR_INVALID, "pathLen must be 0 to %d", CA_PATHLEN_MAX);
    }
    if (p->serial[0] == 0 || (p->serial[0] & 0x80) != 0) {
        return ts_error_set(TS_ERR_INVALID, "the serial must be %d bytes from ts_serial_random()",
                            TS_SERIAL_LEN);
    }
    if (p->issuer_cert == NULL) {
        if (p->crl_url != NULL || p->ocsp_url != NULL) {
            return ts_error_set(TS_ERR_INVALID, "a self-signed root carries no CRL or OCSP URL");
        }
        if (!ts_pki_same_public_key(p->subject_key, p->issuer_key)) {
            return ts_error_set(TS_ERR_INVALID, "a root signs itself: its key and the issuer "
                                                "key must be the same");
        }
        return TS_OK;
    }
    if (X509_check_ca(p->issuer_cert) < 1 ||
        (X509_get_key_usage(p->issuer_cert) & KU_KEY_CERT_SIGN) == 0) {
        return ts_error_set(TS_ERR_INVALID, "the issuer certificate is not a CA certificate");
    }
    if (!ts_pki_same_public_key(X509_get0_pubkey(p->issuer_cert), p->issuer_key)) {
        return ts_error_set(TS_ERR_INVALID, "the issuer key does not match the issuer "
                                            "certificate");
    }
    /* RFC 5280 section 4.2.1.9: pathLenConstraint counts the CAs that may follow. */
    long issuer_len = X509_get_pathlen(p->issuer_cert);
    if (issuer_len >= 0 && p->path_len >= issuer_len) {
        return ts_error_set(TS_ERR_INVALID,
                            "the issuer's pathLen %ld leaves no room for a CA with "
                            "pathLen %d",
                            issuer_len, p->path_len);
    }
    return TS_OK;
}

static ts_err set_names(X509 *cert, const ts_ca_params *p)
{
    X509_NAME *name = X509_NAME_new();
    int ok = name != NULL;

    if (ok && p->country != NULL) {
        ok = X509_NAME_add_entry_by_NID(name, NID_countryName, MBSTRING_UTF8,
                                        (const unsigned char *)p->country, -1, -1, 0);
    }
    ok = ok &&
         X509_NAME_add_entry_by_NID(name, NID_organizationName, MBSTRING_UTF8,
                                    (const unsigned char *)p->org, -1, -1, 0) &&
         X509_NAME_add_entry_by_NID(name, NID_commonName, MBSTRING_UTF8,
                                    (const unsigned char *)p->common_name, -1, -1, 0) &&
         X509_set_subject_name(cert, name) &&
         X509_set_issuer_name(cert, p->issuer_cert != NULL ? X509_get_subject_name(p->issuer_cert)
                                                           : name);
    X509_NAME_free(name);
    if (!ok) {
        return ts_error_set_openssl(TS_ERR_INVALID, "cannot set the CA's names");
    }
    return TS_OK;
}

static ts_err set_validity(X509 *cert, const ts_ca_params *p)
{
    time_t now = time(NULL);
    time_t nb = now - TS_BACKDATE_SECONDS;
    time_t na = now + (time_t)p->days * 86400;

    if (p->issuer_cert != NULL) {
        time_t issuer_nb = ts_pki_time(X509_get0_notBefore(p->issuer_cert));
        time_t issuer_na = ts_pki_time(X509_get0_notAfter(p->issuer_cert));
        if (issuer_nb == 0 || issuer_na == 0) {
            return ts_error_set(TS_ERR_INVALID, "the issuer certificate's validity cannot be "
                                                "read");
        }
        nb = nb < issuer_nb ? issuer_nb : nb;
        na = na > issuer_na ? issuer_na : na;
        if (na <= nb) {
            return ts_error_set(TS_ERR_POLICY, "the issuer certificate has expired");
        }
    }
    if (ASN1_TIME_set(X509_getm_notBefore(cert), nb) == NULL ||
        ASN1_TIME_set(X509_getm_notAfter(cert), na) == NULL) {
        return ts_error_set_openssl(TS_ERR_CRYPTO, "cannot set the validity");
    }
    return TS_OK;
}

static ts_err add_ca_extensions(X509 *cert, const ts_ca_params *p)
{
    BASIC_CONSTRAINTS *bc = BASIC_CONSTRAINTS_new();
    AUTHORITY_KEYID *aki = NULL;
    unsigned ku = KU_KEY_CERT_SIGN | KU_CRL_SIGN;
    ts_err rv = TS_OK;
    int ok = bc != NULL;

    /* RFC 5280 section 4.2.1.9: CA:TRUE, critical, with the path length. */
    if (ok) {
        bc->ca = 0xFF; /* DER: a BOOLEAN TRUE is all ones (X.690 section 11.1) */
        bc->pathlen = ASN1_INTEGER_new();
        ok = bc->pathlen != NULL && ASN1_INTEGER_set(bc->pathlen, p->path_len) &&
             X509_add1_ext_i2d(cert, NID_basic_constraints, bc, 1, X509V3_ADD_DEFAULT) == 1;
    }
    BASIC_CONSTRAINTS_free(bc);
    if (!ok) {
        return ts_error_set_openssl(TS_ERR_CRYPTO, "cannot add basicConstraints");
    }
    /* An issuing CA also signs OCSP responses itself (RFC 6960 section 4.2.2.2), which RFC 5280
     * section 4.2.1.3 counts under digitalSignature. */
    if (p->issuer_cert != NULL) {
        ku |= KU_DIGITAL_SIGNATURE;
    }
    rv = ts_pki_add_key_usage(cert, ku);
    if (rv == TS_OK) {
        rv = ts_pki_add_ski(cert);
    }
    if (rv == TS_OK) {
        rv = p->issuer_cert != NULL ? ts_pki_aki(p->issuer_cert, 0, &aki)
                                    : ts_pki_aki(cert, 1, &aki);
    }
    if (rv == TS_OK &&
        X509_add1_ext_i2d(cert, NID_authority_key_identifier, aki, 0, X509V3_ADD_DEFAULT) != 1) {
        rv = ts_error_set_openssl(TS_ERR_CRYPTO, "cannot add the authority key identifier");
    }
    AUTHORITY_KEYID_free(aki);
    if (rv == TS_OK) {
        rv = ts_pki_add_urls(cert, p->crl_url, p->ocsp_url, NULL);
    }
    return rv;
}

ts_err ts_ca_cert_make(const ts_ca_params *params, X509 **out)
{
    ASN1_INTEGER *serial = NULL;
    X509 *cert = NULL;
    ts_err rv;

    if (out == NULL) {
        return ts_error_set(TS_ERR_INVALID, "no place for the CA certificate");
    }
    *out = NULL;
    rv = check_params(params);
    if (rv != TS_OK) {
        return rv;
    }
    cert = X509_new_ex(ts_provider_libctx(), NULL);
    if (cert == NULL) {
        return ts_error_set_openssl(TS_ERR_NOMEM, "out of memory for a certificate");
    }
    rv = ts_pki_serial_integer(params->serial, TS_SERIAL_LEN, &serial);
    if (rv == TS_OK &&
        (!X509_set_version(cert, X509_VERSION_3) || !X509_set_serialNumber(cert, serial) ||
         !X509_set_pubkey(cert, params->subject_key))) {
        rv = ts_error_set_openssl(TS_ERR_CRYPTO, "cannot start the CA certificate");
    }
    if (rv == TS_OK) {
        rv = set_names(cert, params);
    }
    if (rv == TS_OK) {
        rv = set_validity(cert, params);
    }
    if (rv == TS_OK) {
        rv = add_ca_extensions(cert, params);
    }
    if (rv == TS_OK) {
        rv = ts_pki_sign_cert(cert, params->issuer_key, ts_pki_ca_digest(params->issuer_key));
    }
    ASN1_INTEGER_free(serial);
    if (rv != TS_OK) {
        X509_free(cert);
        return rv;
    }
    *out = cert;
    return TS_OK;
}
