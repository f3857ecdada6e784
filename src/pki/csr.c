/* Certificate signing requests (PKCS#10, RFC 2986): parsing and the profile's policy. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "common/error_internal.h"
#include "pki/pki_internal.h"
#include "tessera/provider.h"

/* --- Parsing --------------------------------------------------------------------------------- */

static ts_err der_decode(const uint8_t *der, size_t len, const char *where, X509_REQ **out)
{
    const unsigned char *p = der;
    X509_REQ *req = NULL;

    if (len == 0 || der[0] != 0x30) {
        return ts_error_set(TS_ERR_INVALID, "%s is not a DER certificate request", where);
    }
    if (ts_pki_csr_decode_fast(der, len, out)) {
        return TS_OK;
    }
    req = d2i_X509_REQ(NULL, &p, (long)len);
    if (req == NULL) {
        return ts_error_set_openssl(TS_ERR_INVALID, "%s is not a DER certificate request", where);
    }
    if (p != der + len) {
        X509_REQ_free(req);
        return ts_error_set(TS_ERR_INVALID,
                            "%zu bytes of trailing data after the certificate "
                            "request",
                            len - (size_t)(p - der));
    }
    /* RFC 2986 section 4.1: version is 0 for this version of the standard. */
    if (X509_REQ_get_version(req) != 0) {
        long v = X509_REQ_get_version(req);
        X509_REQ_free(req);
        return ts_error_set(TS_ERR_INVALID,
                            "the certificate request has version %ld; PKCS#10 "
                            "defines only version 0",
                            v);
    }
    *out = req;
    return TS_OK;
}

static int only_space(const char *p, long len)
{
    for (long i = 0; i < len; i++) {
        if (!isspace((unsigned char)p[i])) {
            return 0;
        }
    }
    return 1;
}

static ts_err pem_decode(const uint8_t *data, size_t len, X509_REQ **out)
{
    BIO *bio = BIO_new_mem_buf(data, (int)len);
    char *name = NULL, *header = NULL, *rest = NULL;
    unsigned char *der = NULL;
    long der_len = 0, rest_len;
    ts_err rv = TS_ERR_INVALID;

    if (bio == NULL) {
        return ts_error_set_openssl(TS_ERR_NOMEM, "cannot read the certificate request");
    }
    if (PEM_read_bio(bio, &name, &header, &der, &der_len) != 1) {
        unsigned long e = ERR_peek_last_error();
        if (ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_BAD_BASE64_DECODE) {
            ts_error_set(TS_ERR_INVALID, "the PEM block does not decode as base64");
        } else {
            ts_error_set_openssl(TS_ERR_INVALID, "the PEM block is malformed");
        }
        goto cleanup;
    }
    if (strcmp(name, PEM_STRING_X509_REQ) != 0 && strcmp(name, PEM_STRING_X509_REQ_OLD) != 0) {
        ts_error_set(TS_ERR_INVALID, "the PEM block is a %.40s, not a CERTIFICATE REQUEST", name);
        goto cleanup;
    }
    if (header[0] != '\0') {
        ts_error_set(TS_ERR_INVALID, "the PEM block has headers, which are not accepted");
        goto cleanup;
    }
    rest_len = BIO_get_mem_data(bio, &rest);
    if (rest_len > 0 && !only_space(rest, rest_len)) {
        ts_error_set(TS_ERR_INVALID, "%ld bytes of trailing data after the PEM block", rest_len);
        goto cleanup;
    }
    rv = der_decode(der, (size_t)der_len, "the PEM block's content", out);
cleanup:
    OPENSSL_free(name);
    OPENSSL_free(header);
    OPENSSL_free(der);
    BIO_free(bio);
    return rv;
}

ts_err ts_csr_parse(const uint8_t *data, size_t len, X509_REQ **out)
{
    static const char begin[] = "-----BEGIN ";
    size_t i = 0;

    if (out == NULL || (data == NULL && len != 0)) {
        return ts_error_set(TS_ERR_INVALID, "no certificate request given");
    }
    *out = NULL;
    if (len == 0) {
        return ts_error_set(TS_ERR_INVALID, "the certificate request is empty");
    }
    if (len > TS_CSR_MAX) {
        return ts_error_set(TS_ERR_INVALID,
                            "the certificate request is %zu bytes, more than the "
                            "%d allowed",
                            len, TS_CSR_MAX);
    }
    if (data[0] == 0x30) {
        return der_decode(data, len, "the input", out);
    }
    while (i < len && isspace(data[i])) {
        i++;
    }
    if (len - i >= sizeof begin - 1 && memcmp(data + i, begin, sizeof begin - 1) == 0) {
        return pem_decode(data + i, len - i, out);
    }
    for (size_t j = i; j + sizeof begin - 1 <= len; j++) {
        if (memcmp(data + j, begin, sizeof begin - 1) == 0) {
            return ts_error_set(TS_ERR_INVALID, "text before the PEM block is not accepted");
        }
    }
    return ts_error_set(TS_ERR_INVALID,
                        "the certificate request is neither PEM nor DER (it "
                        "starts with byte 0x%02x)",
                        data[0]);
}

/* --- Policy ---------------------------------------------------------------------------------- */

static ts_err check_attributes(X509_REQ *csr)
{
    int seen_ext = 0, seen_pw = 0;

    for (int i = 0; i < X509_REQ_get_attr_count(csr); i++) {
        X509_ATTRIBUTE *attr = X509_REQ_get_attr(csr, i);
        int nid = OBJ_obj2nid(X509_ATTRIBUTE_get0_object(attr));
        int *seen = nid == NID_ext_req                   ? &seen_ext
                    : nid == NID_pkcs9_challengePassword ? &seen_pw
                                                         : NULL;
        char name[80];

        ts_pki_obj_name(X509_ATTRIBUTE_get0_object(attr), name, sizeof name);
        /* RFC 2985 section 5.4: challengePassword (EST puts the tls-unique value there, RFC
         * 7030 section 3.5) and extensionRequest, each once with one value. */
        if (seen == NULL) {
            return ts_error_set(TS_ERR_POLICY,
                                "CSR carries the attribute %s, which is not "
                                "accepted (only extensionRequest and "
                                "challengePassword)",
                                name);
        }
        if (*seen) {
            return ts_error_set(TS_ERR_POLICY, "CSR carries the attribute %s twice", name);
        }
        *seen = 1;
        if (X509_ATTRIBUTE_count(attr) != 1) {
            return ts_error_set(TS_ERR_INVALID, "the CSR attribute %s must have one value", name);
        }
    }
    return TS_OK;
}

static unsigned csrext_bit(int nid)
{
    switch (nid) {
    case NID_subject_alt_name:
        return TS_CSREXT_SAN;
    case NID_key_usage:
        return TS_CSREXT_KU;
    case NID_ext_key_usage:
        return TS_CSREXT_EKU;
    case NID_basic_constraints:
        return TS_CSREXT_BC;
    case NID_subject_key_identifier:
        return TS_CSREXT_SKI;
    default:
        return 0;
    }
}

/* The requests that are refused whatever the profile says: a CA certificate. */
static ts_err check_never_granted(X509_EXTENSION *ext, int nid)
{
    if (nid == NID_basic_constraints) {
        BASIC_CONSTRAINTS *bc = X509V3_EXT_d2i(ext);
        int ca;
        if (bc == NULL) {
            return ts_error_set_openssl(TS_ERR_INVALID, "the CSR's basicConstraints does not "
                                                        "parse");
        }
        ca = bc->ca != 0;
        BASIC_CONSTRAINTS_free(bc);
        if (ca) {
            return ts_error_set(TS_ERR_POLICY, "CSR asks for CA:TRUE, which is never granted");
        }
    }
    if (nid == NID_key_usage) {
        ASN1_BIT_STRING *ku = X509V3_EXT_d2i(ext);
        int ca;
        if (ku == NULL) {
            return ts_error_set_openssl(TS_ERR_INVALID, "the CSR's keyUsage does not parse");
        }
        /* Bits 5 and 6 of RFC 5280 section 4.2.1.3. */
        ca = ASN1_BIT_STRING_get_bit(ku, 5) || ASN1_BIT_STRING_get_bit(ku, 6);
        ASN1_BIT_STRING_free(ku);
        if (ca) {
            return ts_error_set(TS_ERR_POLICY, "CSR asks for keyCertSign or cRLSign, which are "
                                               "never granted");
        }
    }
    return TS_OK;
}

static ts_err check_extensions(X509_REQ *csr, const ts_profile *p)
{
    STACK_OF(X509_EXTENSION) *exts = X509_REQ_get_extensions(csr);
    ts_err rv = TS_OK;
    int n;

    if (exts == NULL) {
        return ts_error_set_openssl(TS_ERR_INVALID, "the CSR's extension request does not parse");
    }
    n = sk_X509_EXTENSION_num(exts);
    for (int i = 0; rv == TS_OK && i < n; i++) {
        rv = check_never_granted(
            sk_X509_EXTENSION_value(exts, i),
            OBJ_obj2nid(X509_EXTENSION_get_object(sk_X509_EXTENSION_value(exts, i))));
    }
    for (int i = 0; rv == TS_OK && i < n; i++) {
        const ASN1_OBJECT *obj = X509_EXTENSION_get_object(sk_X509_EXTENSION_value(exts, i));
        int nid = OBJ_obj2nid(obj);
        char name[80];

        ts_pki_obj_name(obj, name, sizeof name);
        for (int j = 0; j < i; j++) {
            if (OBJ_cmp(obj, X509_EXTENSION_get_object(sk_X509_EXTENSION_value(exts, j))) == 0) {
                rv = ts_error_set(TS_ERR_POLICY, "CSR requests the extension %s twice", name);
            }
        }
        if (rv != TS_OK) {
            break;
        }
        if (nid == NID_subject_alt_name && p->san_policy == TS_SAN_FORBIDDEN) {
            rv = ts_error_set(TS_ERR_POLICY, "profile '%s' forbids subject alternative names",
                              p->name);
        } else if ((csrext_bit(nid) & p->csr_extensions) == 0) {
            rv = ts_error_set(TS_ERR_POLICY,
                              "CSR requests the extension %s, which profile '%s' "
                              "does not accept",
                              name, p->name);
        }
    }
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    return rv;
}

static void allowed_attrs(const ts_profile *p, char *buf, size_t size)
{
    size_t used = 0;

    buf[0] = '\0';
    for (size_t i = 0; i < p->csr_subject_count; i++) {
        int n = snprintf(buf + used, size - used, "%s%s", i ? ", " : "",
                         ts_pki_name_of(ts_pki_attr_table, p->csr_subject[i]));
        if (n < 0 || (size_t)n >= size - used) {
            return;
        }
        used += (size_t)n;
    }
    if (used == 0) {
        snprintf(buf, size, "none");
    }
}

static ts_err check_subject(X509_REQ *csr, const ts_profile *p)
{
    const X509_NAME *name = X509_REQ_get_subject_name(csr);
    char attr[80], allowed[256];
    int prev_set = -1;

    for (int i = 0; i < X509_NAME_entry_count(name); i++) {
        const X509_NAME_ENTRY *e = X509_NAME_get_entry(name, i);
        int nid = OBJ_obj2nid(X509_NAME_ENTRY_get_object(e));
        size_t k = 0;
        char *value = NULL;
        ts_err rv;

        ts_pki_obj_name(X509_NAME_ENTRY_get_object(e), attr, sizeof attr);
        if (X509_NAME_ENTRY_set(e) == prev_set) {
            return ts_error_set(TS_ERR_POLICY,
                                "CSR subject has a multi-valued RDN (%s), which "
                                "is not accepted",
                                attr);
        }
        prev_set = X509_NAME_ENTRY_set(e);
        while (k < p->csr_subject_count && p->csr_subject[k] != nid) {
            k++;
        }
        if (k == p->csr_subject_count) {
            allowed_attrs(p, allowed, sizeof allowed);
            return ts_error_set(TS_ERR_POLICY,
                                "CSR subject attribute %s is not allowed by "
                                "profile '%s' (allowed: %s)",
                                attr, p->name, allowed);
        }
        rv = ts_pki_name_get(name, nid, &value);
        OPENSSL_free(value);
        if (rv != TS_OK) {
            return rv;
        }
    }
    for (size_t i = 0; i < p->subject_count; i++) {
        const ts_subject_entry *t = &p->subject[i];
        if (strcmp(t->value, TS_VAR_CSR) == 0 && !t->optional &&
            X509_NAME_get_index_by_NID(name, t->nid, -1) < 0) {
            return ts_error_set(TS_ERR_POLICY,
                                "CSR subject has no %s, which profile '%s' takes "
                                "from it",
                                ts_pki_name_of(ts_pki_attr_table, t->nid), p->name);
        }
    }
    return TS_OK;
}

ts_err ts_pki_csr_policy(X509_REQ *csr, const ts_profile *p)
{
    return ts_pki_csr_policy_key(csr, csr != NULL ? X509_REQ_get0_pubkey(csr) : NULL, p);
}

ts_err ts_pki_csr_policy_key(X509_REQ *csr, EVP_PKEY *key, const ts_profile *p)
{
    GENERAL_NAMES *sans = NULL;
    ts_err rv;

    if (csr == NULL || p == NULL) {
        return ts_error_set(TS_ERR_INVALID, "no certificate request or profile given");
    }
    rv = ts_pki_key_allowed(key, p);
    if (rv == TS_OK) {
        rv = check_attributes(csr);
    }
    if (rv == TS_OK) {
        rv = check_extensions(csr, p);
    }
    if (rv == TS_OK) {
        rv = check_subject(csr, p);
    }
    if (rv == TS_OK) {
        rv = ts_pki_csr_sans(csr, &sans);
    }
    if (rv == TS_OK) {
        rv = ts_pki_sans_allowed(sans, p);
    }
    if (rv == TS_OK && p->kind == TS_PROFILE_SERVER) {
        rv = ts_pki_cn_in_sans(X509_REQ_get_subject_name(csr), sans);
    }
    GENERAL_NAMES_free(sans);
    return rv;
}

ts_err ts_pki_csr_check(X509_REQ *csr, const ts_profile *profile, ts_pki_verify_keys *keys)
{
    OSSL_LIB_CTX *libctx = ts_provider_libctx();
    EVP_PKEY *key, *verify_key;
    int ok;
    ts_err rv;

    if (csr == NULL || profile == NULL) {
        return ts_error_set(TS_ERR_INVALID, "no certificate request or profile given");
    }
    if (libctx == NULL) {
        return ts_error_prefix(TS_ERR_CRYPTO, "cannot check a certificate request");
    }
    key = X509_REQ_get0_pubkey(csr);
    if (key == NULL) {
        return ts_error_set_openssl(TS_ERR_INVALID, "the CSR's public key cannot be read");
    }
    /* The key type first: a key the profile refuses is named as such, and no signature is
     * verified with parameters the policy does not accept. */
    rv = ts_pki_key_allowed(key, profile);
    if (rv != TS_OK) {
        return rv;
    }
    /* RFC 2986 section 3: the signature proves possession of the private key. The same key as
     * a key of libctx's default provider, when it can be made (csr_verify.c), spares OpenSSL
     * converting it for the verification. */
    verify_key = keys != NULL ? ts_pki_verify_keys_get(keys, csr) : ts_pki_csr_verify_key(csr);
    ok = X509_REQ_verify_ex(csr, verify_key != NULL ? verify_key : key, libctx, NULL) == 1;
    if (keys == NULL) {
        EVP_PKEY_free(verify_key);
    }
    if (!ok) {
        ERR_clear_error();
        return ts_error_set(TS_ERR_AUTH, "CSR signature does not verify");
    }
    return ts_pki_csr_policy(csr, profile);
}

ts_err ts_csr_check(X509_REQ *csr, const ts_profile *profile)
{
    return ts_pki_csr_check(csr, profile, NULL);
}
