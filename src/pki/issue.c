/* End-entity certificates: a profile, a CSR (or a key being renewed) and the issuing CA. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "common/error_internal.h"
#include "pki/pki_internal.h"
#include "tessera/provider.h"

enum { SUBJECT_VALUE_MAX = 512 };

/* A device UID or registration code: 1 to TS_UID_MAX characters of [A-Za-z0-9._:-]. */
static ts_err safe_token(const char *what, const char *s)
{
    size_t len = strlen(s);

    if (len == 0 || len > TS_UID_MAX) {
        return ts_error_set(TS_ERR_POLICY, "the %s must be 1 to %d characters", what, TS_UID_MAX);
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '.' || c == '_' || c == ':' || c == '-';
        if (!ok) {
            return ts_error_set(TS_ERR_POLICY,
                                "the %s holds the character 0x%02x; only A-Z a-z "
                                "0-9 . _ : - are allowed",
                                what, c);
        }
    }
    return TS_OK;
}

static ts_err text_var(const char *what, const char *s, size_t max)
{
    size_t len = strlen(s);

    if (len == 0 || len > max) {
        return ts_error_set(TS_ERR_INVALID, "the %s must be 1 to %zu characters", what, max);
    }
    for (size_t i = 0; i < len; i++) {
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) {
            return ts_error_set(TS_ERR_INVALID, "the %s holds a control character", what);
        }
    }
    return TS_OK;
}

/* The value of one template variable, checked; NULL in *value when it was not given. */
static ts_err var_value(const char *var, const ts_subject_vars *vars, const char *csr_cn,
                        const char **value)
{
    ts_err rv = TS_OK;

    *value = NULL;
    if (strcmp(var, TS_VAR_ORG) == 0) {
        *value = vars->org;
        rv = *value != NULL ? text_var("organisation (<org>)", *value, 64) : TS_OK;
    } else if (strcmp(var, TS_VAR_COUNTRY) == 0) {
        *value = vars->country;
        if (*value != NULL && (strlen(*value) != 2 || (*value)[0] < 'A' || (*value)[0] > 'Z' ||
                               (*value)[1] < 'A' || (*value)[1] > 'Z')) {
            rv = ts_error_set(TS_ERR_INVALID, "the country (<country>) must be two capital "
                                              "letters (ISO 3166)");
        }
    } else if (strcmp(var, TS_VAR_UID) == 0) {
        *value = vars->device_uid != NULL ? vars->device_uid : csr_cn;
        rv = *value != NULL ? safe_token("device UID", *value) : TS_OK;
    } else if (strcmp(var, TS_VAR_CODE) == 0) {
        *value = vars->code;
        rv = *value != NULL ? safe_token("registration code", *value) : TS_OK;
    }
    return rv;
}

static ts_err missing_var(const char *var, const ts_profile *p)
{
    if (strcmp(var, TS_VAR_UID) == 0) {
        return ts_error_set(TS_ERR_POLICY,
                            "no device UID for profile '%s': give one or put it "
                            "in the CSR's CN",
                            p->name);
    }
    return ts_error_set(TS_ERR_INVALID,
                        "profile '%s' needs %s in the subject, which was not "
                        "given",
                        p->name, var);
}

/* Expands one template value; *skip is set when an optional entry lacks a variable. */
static ts_err expand(const ts_subject_entry *e, const ts_profile *p, const ts_subject_vars *vars,
                     const char *csr_cn, char *out, size_t size, int *skip)
{
    static const char *const names[] = {TS_VAR_ORG, TS_VAR_COUNTRY, TS_VAR_UID, TS_VAR_CODE, NULL};
    const char *s = e->value;
    size_t used = 0;

    *skip = 0;
    while (*s != '\0') {
        const char *value = NULL;
        size_t i = 0, len;
        while (*s == '<' && names[i] != NULL && strncmp(s, names[i], strlen(names[i])) != 0) {
            i++;
        }
        if (*s == '<' && names[i] != NULL) {
            ts_err rv = var_value(names[i], vars, csr_cn, &value);
            if (rv != TS_OK) {
                return rv;
            }
            if (value == NULL) {
                *skip = e->optional;
                return e->optional ? TS_OK : missing_var(names[i], p);
            }
            s += strlen(names[i]);
            len = strlen(value);
        } else {
            value = s;
            len = 1;
            s++;
        }
        if (used + len >= size) {
            return ts_error_set(TS_ERR_INVALID, "a subject value is longer than %zu characters",
                                size - 1);
        }
        memcpy(out + used, value, len);
        used += len;
    }
    out[used] = '\0';
    return TS_OK;
}

/* The subject from the profile's template (docs/profiles.md), added to name (the new
 * certificate's own, still empty: building it in place spares a copy). csr_name may be NULL. */
static ts_err build_subject(const ts_profile *p, const ts_subject_vars *vars,
                            const X509_NAME *csr_name, X509_NAME *name)
{
    char *csr_cn = NULL, *csr_value = NULL;
    char value[SUBJECT_VALUE_MAX];
    ts_err rv = TS_OK;

    if (csr_name != NULL) {
        rv = ts_pki_name_get(csr_name, NID_commonName, &csr_cn);
    }
    for (size_t i = 0; rv == TS_OK && i < p->subject_count; i++) {
        const ts_subject_entry *e = &p->subject[i];
        const char *attr = ts_pki_name_of(ts_pki_attr_table, e->nid);
        const char *v = value;
        int skip = 0;

        if (strcmp(e->value, TS_VAR_CSR) == 0) {
            OPENSSL_free(csr_value);
            csr_value = NULL;
            rv = csr_name != NULL ? ts_pki_name_get(csr_name, e->nid, &csr_value) : TS_OK;
            if (rv == TS_OK && csr_value == NULL && !e->optional) {
                rv = ts_error_set(TS_ERR_POLICY,
                                  "no %s for profile '%s', which takes it "
                                  "from the CSR",
                                  attr, p->name);
            }
            skip = csr_value == NULL;
            v = csr_value;
        } else {
            rv = expand(e, p, vars, csr_cn, value, sizeof value, &skip);
        }
        if (rv != TS_OK || skip) {
            continue;
        }
        if (!X509_NAME_add_entry_by_NID(name, e->nid, MBSTRING_UTF8, (const unsigned char *)v, -1,
                                        -1, 0)) {
            rv = ts_error_set_openssl(TS_ERR_INVALID, "the subject's %s cannot hold '%.64s'", attr,
                                      v);
        }
    }
    OPENSSL_free(csr_cn);
    OPENSSL_free(csr_value);
    return rv;
}

/* notBefore and notAfter: the profile's validity, within the issuer's (RFC 5280 section
 * 6.1.3 (a)(2) checks each certificate of a path at the time of use). */
static ts_err set_validity(X509 *cert, const ts_issue_params *params)
{
    const ts_profile *p = params->profile;
    time_t now = time(NULL);
    time_t base = params->not_before != 0 ? params->not_before : now;
    time_t nb = params->not_before != 0 ? params->not_before : now - TS_BACKDATE_SECONDS;
    time_t na = p->validity_days > 0 ? base + (time_t)p->validity_days * 86400 : p->not_after;
    time_t issuer_nb = ts_pki_time(X509_get0_notBefore(params->issuer_cert));
    time_t issuer_na = ts_pki_time(X509_get0_notAfter(params->issuer_cert));

    if (nb < now - TS_BACKDATE_SECONDS) {
        return ts_error_set(TS_ERR_INVALID,
                            "notBefore is more than %d seconds in the past; "
                            "certificates are not backdated",
                            TS_BACKDATE_SECONDS);
    }
    if (issuer_na == 0 || issuer_nb == 0) {
        return ts_error_set(TS_ERR_INVALID, "the issuer certificate's validity cannot be read");
    }
    if (nb < issuer_nb) {
        nb = issuer_nb;
    }
    if (na > issuer_na) {
        na = issuer_na;
    }
    if (na <= nb) {
        return ts_error_set(TS_ERR_POLICY, "no validity left: the certificate would end before "
                                           "it starts (the issuer's or the profile's end is "
                                           "past)");
    }
    if (ASN1_TIME_set(X509_getm_notBefore(cert), nb) == NULL ||
        ASN1_TIME_set(X509_getm_notAfter(cert), na) == NULL) {
        return ts_error_set_openssl(TS_ERR_CRYPTO, "cannot set the validity");
    }
    return TS_OK;
}

static ts_err add_profile_extensions(X509 *cert, const ts_profile *p, X509 *issuer)
{
    BASIC_CONSTRAINTS *bc = BASIC_CONSTRAINTS_new();
    EXTENDED_KEY_USAGE *eku = NULL;
    AUTHORITY_KEYID *aki = NULL;
    ts_err rv = TS_OK;
    int ok;

    /* RFC 5280 section 4.2.1.9: an end entity; marked critical so that no relying party can
     * read the certificate as a CA. */
    ok = bc != NULL &&
         X509_add1_ext_i2d(cert, NID_basic_constraints, bc, 1, X509V3_ADD_DEFAULT) == 1;
    BASIC_CONSTRAINTS_free(bc);
    if (!ok) {
        return ts_error_set_openssl(TS_ERR_CRYPTO, "cannot add basicConstraints");
    }
    rv = ts_pki_add_key_usage(cert, p->key_usage);
    if (rv == TS_OK && p->eku_count > 0) {
        eku = sk_ASN1_OBJECT_new_null();
        ok = eku != NULL;
        for (size_t i = 0; ok && i < p->eku_count; i++) {
            ok = sk_ASN1_OBJECT_push(eku, OBJ_nid2obj(p->eku[i])) > 0;
        }
        if (!ok || X509_add1_ext_i2d(cert, NID_ext_key_usage, eku, 0, X509V3_ADD_DEFAULT) != 1) {
            rv = ts_error_set_openssl(TS_ERR_CRYPTO, "cannot add extendedKeyUsage");
        }
        sk_ASN1_OBJECT_pop_free(eku, ASN1_OBJECT_free);
    }
    if (rv == TS_OK) {
        rv = ts_pki_add_ski(cert);
    }
    if (rv == TS_OK) {
        rv = ts_pki_aki(issuer, 0, &aki);
    }
    if (rv == TS_OK &&
        X509_add1_ext_i2d(cert, NID_authority_key_identifier, aki, 0, X509V3_ADD_DEFAULT) != 1) {
        rv = ts_error_set_openssl(TS_ERR_CRYPTO, "cannot add the authority key identifier");
    }
    AUTHORITY_KEYID_free(aki);
    return rv;
}

static ts_err check_params(const ts_issue_params *params)
{
    if (params == NULL || params->profile == NULL || params->issuer_cert == NULL ||
        params->issuer_key == NULL || params->serial == NULL) {
        return ts_error_set(TS_ERR_INVALID, "a profile, a serial, an issuer certificate and its "
                                            "key are needed");
    }
    if ((params->csr != NULL) + (params->public_key != NULL) + (params->batch_csr != NULL) != 1) {
        return ts_error_set(TS_ERR_INVALID, "give one of a CSR, a batch's CSR or a public key");
    }
    if (params->public_key == NULL && (params->subject != NULL || params->sans != NULL)) {
        return ts_error_set(TS_ERR_INVALID, "subject and SANs are given with a public key only");
    }
    /* RFC 5280 section 4.2.1.9 and 6.1.4 (k): only a CA may issue. */
    if (X509_check_ca(params->issuer_cert) < 1 ||
        ((X509_get_extension_flags(params->issuer_cert) & EXFLAG_KUSAGE) != 0 &&
         (X509_get_key_usage(params->issuer_cert) & KU_KEY_CERT_SIGN) == 0)) {
        return ts_error_set(TS_ERR_INVALID, "the issuer certificate is not a CA certificate");
    }
    if (!ts_pki_same_public_key(X509_get0_pubkey(params->issuer_cert), params->issuer_key)) {
        return ts_error_set(TS_ERR_INVALID, "the issuer key does not match the issuer "
                                            "certificate");
    }
    if (params->serial[0] == 0 || (params->serial[0] & 0x80) != 0) {
        return ts_error_set(TS_ERR_INVALID, "the serial must be %d bytes from ts_serial_random()",
                            TS_SERIAL_LEN);
    }
    if (params->batch_csr != NULL && !ts_pki_batch_csr_fits(params->batch_csr, params)) {
        return ts_error_set(TS_ERR_INVALID, "the CSR was read by another batch than the one "
                                            "signing, or for another profile or issuer key");
    }
    return TS_OK;
}

/* The subject and key of the new certificate, and the SANs to add, each checked against the
 * profile. */
static ts_err set_identity(X509 *cert, const ts_issue_params *params, GENERAL_NAMES **sans)
{
    const ts_profile *p = params->profile;
    X509_REQ *csr = params->csr;
    EVP_PKEY *key = csr != NULL ? X509_REQ_get0_pubkey(csr) : params->public_key;
    X509_NAME *subject = X509_get_subject_name(cert);
    ts_err rv;

    if (params->batch_csr != NULL) {
        ts_pki_batch_csr_get(params->batch_csr, &csr, &key);
        /* Checked against this very profile by the batch that read it (check_params()). */
        rv = TS_OK;
    } else {
        rv = csr != NULL ? ts_pki_csr_policy(csr, p) : ts_pki_key_allowed(key, p);
    }
    if (rv == TS_OK && csr != NULL) {
        rv = ts_pki_csr_sans(csr, sans);
    } else if (rv == TS_OK && params->sans != NULL) {
        *sans = sk_GENERAL_NAME_deep_copy(params->sans, GENERAL_NAME_dup, GENERAL_NAME_free);
        rv = *sans == NULL ? ts_error_set_openssl(TS_ERR_NOMEM, "cannot copy the SANs")
                           : ts_pki_sans_allowed(*sans, p);
    } else if (rv == TS_OK) {
        rv = ts_pki_sans_allowed(NULL, p);
    }
    if (rv == TS_OK && params->subject != NULL) {
        if (!X509_set_subject_name(cert, params->subject)) {
            rv = ts_error_set_openssl(TS_ERR_NOMEM, "cannot copy the subject");
        }
        subject = X509_get_subject_name(cert);
    } else if (rv == TS_OK) {
        rv = build_subject(p, &params->vars, csr != NULL ? X509_REQ_get_subject_name(csr) : NULL,
                           subject);
    }
    if (rv == TS_OK && p->kind == TS_PROFILE_SERVER) {
        rv = ts_pki_cn_in_sans(subject, *sans);
    }
    if (rv == TS_OK && X509_NAME_entry_count(subject) == 0 &&
        (*sans == NULL || sk_GENERAL_NAME_num(*sans) == 0)) {
        rv = ts_error_set(TS_ERR_POLICY, "the certificate would name nobody: empty subject and "
                                         "no SANs");
    }
    if (rv == TS_OK && !X509_set_pubkey(cert, key)) {
        rv = ts_error_set_openssl(TS_ERR_CRYPTO, "cannot set the key");
    }
    return rv;
}

static ts_err add_sans(X509 *cert, GENERAL_NAMES *sans)
{
    if (sans == NULL || sk_GENERAL_NAME_num(sans) == 0) {
        return TS_OK;
    }
    /* RFC 5280 section 4.2.1.6: critical when the subject is empty. */
    if (X509_add1_ext_i2d(cert, NID_subject_alt_name, sans,
                          X509_NAME_entry_count(X509_get_subject_name(cert)) == 0,
                          X509V3_ADD_DEFAULT) != 1) {
        return ts_error_set_openssl(TS_ERR_CRYPTO, "cannot add the subject alternative names");
    }
    return TS_OK;
}

ts_err ts_cert_issue(const ts_issue_params *params, X509 **out)
{
    ASN1_INTEGER *serial = NULL;
    GENERAL_NAMES *sans = NULL;
    X509 *cert = NULL;
    ts_err rv;

    if (out == NULL) {
        return ts_error_set(TS_ERR_INVALID, "no place for the certificate");
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
         !X509_set_issuer_name(cert, X509_get_subject_name(params->issuer_cert)))) {
        rv = ts_error_set_openssl(TS_ERR_CRYPTO, "cannot start the certificate");
    }
    if (rv == TS_OK) {
        rv = set_identity(cert, params, &sans);
    }
    if (rv == TS_OK) {
        rv = set_validity(cert, params);
    }
    if (rv == TS_OK) {
        rv = add_profile_extensions(cert, params->profile, params->issuer_cert);
    }
    if (rv == TS_OK) {
        rv = add_sans(cert, sans);
    }
    if (rv == TS_OK) {
        rv = ts_pki_add_urls(cert, params->crl_url, params->ocsp_url, params->ca_issuers_url);
    }
    if (rv == TS_OK) {
        rv = params->batch != NULL
                 ? ts_pki_batch_sign_cert(params->batch, params, cert)
                 : ts_pki_sign_cert(cert, params->issuer_key, params->profile->digest);
    }
    ASN1_INTEGER_free(serial);
    GENERAL_NAMES_free(sans);
    if (rv != TS_OK) {
        X509_free(cert);
        return rv;
    }
    *out = cert;
    return TS_OK;
}
