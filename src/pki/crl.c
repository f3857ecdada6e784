/* Certificate revocation lists (RFC 5280 section 5) and revocation reasons. */
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "common/error_internal.h"
#include "pki/pki_internal.h"
#include "tessera/provider.h"

/* RFC 5280 section 5.3.1: CRLReason; 7 is not used. */
static const ts_pki_name reasons[] = {
    {"unspecified", CRL_REASON_UNSPECIFIED},
    {"keyCompromise", CRL_REASON_KEY_COMPROMISE},
    {"cACompromise", CRL_REASON_CA_COMPROMISE},
    {"affiliationChanged", CRL_REASON_AFFILIATION_CHANGED},
    {"superseded", CRL_REASON_SUPERSEDED},
    {"cessationOfOperation", CRL_REASON_CESSATION_OF_OPERATION},
    {"certificateHold", CRL_REASON_CERTIFICATE_HOLD},
    {"removeFromCRL", CRL_REASON_REMOVE_FROM_CRL},
    {"privilegeWithdrawn", CRL_REASON_PRIVILEGE_WITHDRAWN},
    {"aACompromise", CRL_REASON_AA_COMPROMISE},
    {NULL, 0},
};

ts_err ts_crl_reason_from_name(const char *name, int *reason)
{
    if (name == NULL || reason == NULL) {
        return ts_error_set(TS_ERR_INVALID, "no revocation reason given");
    }
    for (size_t i = 0; reasons[i].name != NULL; i++) {
        if (strcasecmp(reasons[i].name, name) == 0) {
            *reason = reasons[i].value;
            return TS_OK;
        }
    }
    return ts_error_set(TS_ERR_INVALID,
                        "unknown revocation reason '%.40s' (unspecified, "
                        "keyCompromise, cACompromise, affiliationChanged, "
                        "superseded, cessationOfOperation, certificateHold, "
                        "removeFromCRL, privilegeWithdrawn, aACompromise)",
                        name);
}

const char *ts_crl_reason_name(int reason)
{
    return ts_pki_name_of(reasons, reason);
}

static ts_err check_issuer(X509 *issuer_cert, EVP_PKEY *issuer_key)
{
    if (X509_check_ca(issuer_cert) < 1 || (X509_get_key_usage(issuer_cert) & KU_CRL_SIGN) == 0) {
        return ts_error_set(TS_ERR_INVALID, "the issuer certificate is not a CA allowed to sign "
                                            "CRLs (cRLSign)");
    }
    if (!ts_pki_same_public_key(X509_get0_pubkey(issuer_cert), issuer_key)) {
        return ts_error_set(TS_ERR_INVALID, "the issuer key does not match the issuer "
                                            "certificate");
    }
    return TS_OK;
}

static ts_err add_entry(X509_CRL *crl, const ts_revoked *r)
{
    X509_REVOKED *rev = NULL;
    ASN1_INTEGER *serial = NULL;
    ASN1_TIME *when = NULL;
    ASN1_ENUMERATED *code = NULL;
    ts_err rv;

    if (r->reason != -1 && (ts_crl_reason_name(r->reason) == NULL)) {
        return ts_error_set(TS_ERR_INVALID, "revocation reason %d is not an RFC 5280 CRLReason",
                            r->reason);
    }
    /* RFC 5280 section 5.3.1: removeFromCRL is only used in delta CRLs. */
    if (r->reason == CRL_REASON_REMOVE_FROM_CRL) {
        return ts_error_set(TS_ERR_INVALID, "removeFromCRL belongs to delta CRLs, not to a full "
                                            "CRL");
    }
    if (r->revoked_at <= 0) {
        return ts_error_set(TS_ERR_INVALID, "a revocation needs its time");
    }
    rv = ts_pki_serial_integer(r->serial, r->serial_len, &serial);
    if (rv != TS_OK) {
        return rv;
    }
    rev = X509_REVOKED_new();
    when = ASN1_TIME_set(NULL, r->revoked_at);
    int ok = rev != NULL && when != NULL && X509_REVOKED_set_serialNumber(rev, serial) &&
             X509_REVOKED_set_revocationDate(rev, when);
    /* RFC 5280 section 5.3.1: "the reasonCode extension SHOULD be absent instead of using the
     * unspecified (0) reasonCode value". */
    if (ok && r->reason > CRL_REASON_UNSPECIFIED) {
        code = ASN1_ENUMERATED_new();
        ok = code != NULL && ASN1_ENUMERATED_set(code, r->reason) &&
             X509_REVOKED_add1_ext_i2d(rev, NID_crl_reason, code, 0, 0) == 1;
    }
    if (ok && X509_CRL_add0_revoked(crl, rev)) {
        rev = NULL;
    } else {
        rv = ts_error_set_openssl(TS_ERR_CRYPTO, "cannot add a CRL entry");
    }
    ASN1_ENUMERATED_free(code);
    ASN1_TIME_free(when);
    ASN1_INTEGER_free(serial);
    X509_REVOKED_free(rev);
    return rv;
}

static ts_err check_unique(X509_CRL *crl)
{
    STACK_OF(X509_REVOKED) *revs = X509_CRL_get_REVOKED(crl);

    for (int i = 1; i < sk_X509_REVOKED_num(revs); i++) {
        const ASN1_INTEGER *a = X509_REVOKED_get0_serialNumber(sk_X509_REVOKED_value(revs, i - 1));
        const ASN1_INTEGER *b = X509_REVOKED_get0_serialNumber(sk_X509_REVOKED_value(revs, i));
        if (ASN1_INTEGER_cmp(a, b) == 0) {
            char hex[2 * TS_SERIAL_LEN + 4] = "?";
            if (ts_serial_hex(a, hex, sizeof hex) != TS_OK) {
                hex[0] = '?';
                hex[1] = '\0';
            }
            return ts_error_set(TS_ERR_INVALID, "serial %s is listed twice", hex);
        }
    }
    return TS_OK;
}

static ts_err add_crl_extensions(X509_CRL *crl, X509 *issuer_cert, uint64_t crl_number)
{
    AUTHORITY_KEYID *aki = NULL;
    ASN1_INTEGER *number = ASN1_INTEGER_new();
    ts_err rv = ts_pki_aki(issuer_cert, 0, &aki);

    /* RFC 5280 sections 5.2.1 and 5.2.3: authorityKeyIdentifier and cRLNumber, non-critical. */
    if (rv == TS_OK &&
        (number == NULL || !ASN1_INTEGER_set_uint64(number, crl_number) ||
         X509_CRL_add1_ext_i2d(crl, NID_authority_key_identifier, aki, 0, X509V3_ADD_DEFAULT) !=
             1 ||
         X509_CRL_add1_ext_i2d(crl, NID_crl_number, number, 0, X509V3_ADD_DEFAULT) != 1)) {
        rv = ts_error_set_openssl(TS_ERR_CRYPTO, "cannot add the CRL extensions");
    }
    ASN1_INTEGER_free(number);
    AUTHORITY_KEYID_free(aki);
    return rv;
}

ts_err ts_crl_make(X509 *issuer_cert, EVP_PKEY *issuer_key, const ts_revoked *revoked, size_t count,
                   uint64_t crl_number, time_t this_update, time_t next_update, X509_CRL **out)
{
    X509_CRL *crl = NULL;
    ASN1_TIME *last = NULL, *next = NULL;
    EVP_MD_CTX *mctx = NULL;
    ts_err rv;

    if (out == NULL || issuer_cert == NULL || issuer_key == NULL ||
        (revoked == NULL && count != 0)) {
        return ts_error_set(TS_ERR_INVALID, "a CRL needs its issuer's certificate and key");
    }
    *out = NULL;
    if (this_update <= 0 || next_update <= this_update) {
        return ts_error_set(TS_ERR_INVALID, "nextUpdate must come after thisUpdate");
    }
    rv = check_issuer(issuer_cert, issuer_key);
    if (rv != TS_OK) {
        return rv;
    }
    crl = X509_CRL_new_ex(ts_provider_libctx(), NULL);
    last = ASN1_TIME_set(NULL, this_update);
    next = ASN1_TIME_set(NULL, next_update);
    /* RFC 5280 section 5.1.2.1: version 2, as the CRL has extensions. */
    if (crl == NULL || last == NULL || next == NULL ||
        !X509_CRL_set_version(crl, X509_CRL_VERSION_2) ||
        !X509_CRL_set_issuer_name(crl, X509_get_subject_name(issuer_cert)) ||
        !X509_CRL_set1_lastUpdate(crl, last) || !X509_CRL_set1_nextUpdate(crl, next)) {
        rv = ts_error_set_openssl(TS_ERR_CRYPTO, "cannot start the CRL");
        goto cleanup;
    }
    for (size_t i = 0; rv == TS_OK && i < count; i++) {
        rv = add_entry(crl, &revoked[i]);
    }
    if (rv == TS_OK && !X509_CRL_sort(crl)) {
        rv = ts_error_set_openssl(TS_ERR_CRYPTO, "cannot sort the CRL");
    }
    if (rv == TS_OK) {
        rv = check_unique(crl);
    }
    if (rv == TS_OK) {
        rv = add_crl_extensions(crl, issuer_cert, crl_number);
    }
    if (rv == TS_OK) {
        rv = ts_pki_sign_ctx(issuer_key, ts_pki_ca_digest(issuer_key), &mctx);
    }
    if (rv == TS_OK && X509_CRL_sign_ctx(crl, mctx) <= 0) {
        rv = ts_error_set_openssl(TS_ERR_CRYPTO, "cannot sign the CRL");
    }
    if (rv == TS_OK) {
        *out = crl;
        crl = NULL;
    }
cleanup:
    EVP_MD_CTX_free(mctx);
    ASN1_TIME_free(last);
    ASN1_TIME_free(next);
    X509_CRL_free(crl);
    return rv;
}
