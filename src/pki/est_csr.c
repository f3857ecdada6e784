/*
 * EST rules on CSRs: the channel binding in challengePassword (RFC 7030 section 3.5), the
 * identity a re-enrollment keeps (section 4.2.2) and server-side key generation (section 4.4).
 */
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "common/error_internal.h"
#include "pki/pki_internal.h"
#include "tessera/est.h"

ts_err ts_est_challenge_password(const X509_REQ *csr, char **out, size_t *len)
{
    X509_ATTRIBUTE *attr;
    ASN1_TYPE *value;
    const ASN1_STRING *s;
    char *text;
    int at, n;

    if (csr == NULL || out == NULL || len == NULL) {
        return ts_error_set(TS_ERR_INVALID, "no CSR given");
    }
    *out = NULL;
    *len = 0;
    at = X509_REQ_get_attr_by_NID(csr, NID_pkcs9_challengePassword, -1);
    if (at < 0) {
        return ts_error_set(TS_ERR_NOT_FOUND, "the CSR has no challengePassword attribute");
    }
    if (X509_REQ_get_attr_by_NID(csr, NID_pkcs9_challengePassword, at) >= 0) {
        return ts_error_set(TS_ERR_INVALID,
                            "the CSR has more than one challengePassword attribute");
    }
    attr = X509_REQ_get_attr(csr, at);
    if (attr == NULL || X509_ATTRIBUTE_count(attr) != 1) {
        return ts_error_set(TS_ERR_INVALID,
                            "the CSR's challengePassword must hold exactly one value");
    }
    value = X509_ATTRIBUTE_get0_type(attr, 0);
    /* RFC 2985 section 5.4.1: a DirectoryString; IA5String is what some encoders write. */
    if (value == NULL || (value->type != V_ASN1_PRINTABLESTRING &&
                          value->type != V_ASN1_UTF8STRING && value->type != V_ASN1_IA5STRING)) {
        return ts_error_set(TS_ERR_INVALID,
                            "the CSR's challengePassword is not a PrintableString, UTF8String or "
                            "IA5String");
    }
    s = value->value.asn1_string;
    n = ASN1_STRING_length(s);
    if (n <= 0 || n > TS_EST_PASSWORD_MAX) {
        return ts_error_set(TS_ERR_INVALID, "the CSR's challengePassword is %d bytes (1 to %d)", n,
                            TS_EST_PASSWORD_MAX);
    }
    if (memchr(ASN1_STRING_get0_data(s), '\0', (size_t)n) != NULL) {
        return ts_error_set(TS_ERR_INVALID, "the CSR's challengePassword holds a NUL");
    }
    text = OPENSSL_malloc((size_t)n + 1);
    if (text == NULL) {
        return ts_error_set(TS_ERR_NOMEM, "out of memory for a challengePassword");
    }
    memcpy(text, ASN1_STRING_get0_data(s), (size_t)n);
    text[n] = '\0';
    *out = text;
    *len = (size_t)n;
    return TS_OK;
}

ts_err ts_est_pop_check(const X509_REQ *csr, const uint8_t *binding, size_t binding_len)
{
    unsigned char expect[(TS_EST_CB_MAX + 2) / 3 * 4 + 1];
    char *password = NULL;
    size_t len = 0;
    int n;
    ts_err rv;

    if (binding == NULL || binding_len == 0 || binding_len > TS_EST_CB_MAX) {
        return ts_error_set(TS_ERR_INVALID, "no channel binding of the connection");
    }
    rv = ts_est_challenge_password(csr, &password, &len);
    if (rv == TS_ERR_NOT_FOUND) {
        return ts_error_set(TS_ERR_POLICY,
                            "proof of possession: the profile requires the CSR's challengePassword "
                            "to be the base64 of the TLS channel binding (tls-unique on TLS 1.2, "
                            "tls-exporter on TLS 1.3; RFC 7030 section 3.5), and the CSR has none");
    }
    if (rv != TS_OK) {
        return ts_error_prefix(TS_ERR_POLICY, "proof of possession");
    }
    /* Section 3.5: "the tls-unique value MUST be base64 encoded as specified in Section 4 of
     * [RFC4648]" and placed in the challengePassword; RFC 9266 does the same for tls-exporter. */
    n = EVP_EncodeBlock(expect, binding, (int)binding_len);
    if ((size_t)n != len || CRYPTO_memcmp(expect, password, len) != 0) {
        rv = ts_error_set(TS_ERR_POLICY,
                          "proof of possession: the CSR's challengePassword is not the base64 of "
                          "this TLS connection's channel binding (tls-unique on TLS 1.2, "
                          "tls-exporter on TLS 1.3; RFC 7030 section 3.5): the CSR was made for "
                          "another connection");
    }
    OPENSSL_cleanse(expect, sizeof expect);
    OPENSSL_clear_free(password, len);
    return rv;
}

static ts_err name_text(const X509_NAME *name, char *buf, size_t size)
{
    if (X509_NAME_oneline(name, buf, (int)size) == NULL) {
        return ts_error_set(TS_ERR_NOMEM, "cannot print a name");
    }
    return TS_OK;
}

/* 1 when every name of a is in b. */
static int names_within(const GENERAL_NAMES *a, const GENERAL_NAMES *b)
{
    for (int i = 0; i < sk_GENERAL_NAME_num(a); i++) {
        int found = 0;
        for (int j = 0; !found && j < sk_GENERAL_NAME_num(b); j++) {
            found = GENERAL_NAME_cmp(sk_GENERAL_NAME_value(a, i), sk_GENERAL_NAME_value(b, j)) == 0;
        }
        if (!found) {
            return 0;
        }
    }
    return 1;
}

ts_err ts_est_reenroll_check(X509_REQ *csr, X509 *current)
{
    GENERAL_NAMES *csr_sans = NULL, *cert_sans = NULL;
    char want[256], got[256];
    int crit = 0;
    ts_err rv;

    if (csr == NULL || current == NULL) {
        return ts_error_set(TS_ERR_INVALID, "no CSR or certificate given");
    }
    /* RFC 7030 section 4.2.2: "the Subject field and SubjectAltName extension MUST be identical
     * to the corresponding fields in the certificate being renewed/rekeyed". */
    if (X509_NAME_cmp(X509_REQ_get_subject_name(csr), X509_get_subject_name(current)) != 0) {
        rv = name_text(X509_get_subject_name(current), want, sizeof want);
        if (rv == TS_OK) {
            rv = name_text(X509_REQ_get_subject_name(csr), got, sizeof got);
        }
        if (rv != TS_OK) {
            return rv;
        }
        return ts_error_set(
            TS_ERR_POLICY,
            "re-enrollment keeps the subject (RFC 7030 section 4.2.2): the CSR says "
            "'%s', the current certificate '%s'",
            got, want);
    }
    rv = ts_pki_csr_sans(csr, &csr_sans);
    if (rv != TS_OK) {
        return rv;
    }
    cert_sans = X509_get_ext_d2i(current, NID_subject_alt_name, &crit, NULL);
    if (cert_sans == NULL && crit != -1) {
        GENERAL_NAMES_free(csr_sans);
        return ts_error_set_openssl(TS_ERR_INVALID,
                                    "the current certificate's subjectAltName cannot be read");
    }
    if (!names_within(csr_sans, cert_sans) || !names_within(cert_sans, csr_sans)) {
        rv = ts_error_set(TS_ERR_POLICY,
                          "re-enrollment keeps the subjectAltName (RFC 7030 section 4.2.2): the "
                          "CSR has %d name(s) that differ from the current certificate's %d",
                          csr_sans != NULL ? sk_GENERAL_NAME_num(csr_sans) : 0,
                          cert_sans != NULL ? sk_GENERAL_NAME_num(cert_sans) : 0);
    }
    GENERAL_NAMES_free(csr_sans);
    GENERAL_NAMES_free(cert_sans);
    return rv;
}

int ts_est_same_key(X509_REQ *csr, X509 *current)
{
    EVP_PKEY *a = csr != NULL ? X509_REQ_get0_pubkey(csr) : NULL;
    EVP_PKEY *b = current != NULL ? X509_get0_pubkey(current) : NULL;

    return a != NULL && b != NULL && ts_pki_same_public_key(a, b);
}

ts_err ts_est_keygen(const ts_profile *profile, EVP_PKEY **out)
{
    static const struct {
        unsigned bit;
        const char *type;
        const char *curve;
        size_t bits;
    } kinds[] = {
        {TS_KEYTYPE_P256, "EC", "P-256", 0},     {TS_KEYTYPE_P384, "EC", "P-384", 0},
        {TS_KEYTYPE_P521, "EC", "P-521", 0},     {TS_KEYTYPE_RSA2048, "RSA", NULL, 2048},
        {TS_KEYTYPE_RSA3072, "RSA", NULL, 3072}, {TS_KEYTYPE_RSA4096, "RSA", NULL, 4096},
    };

    if (profile == NULL || out == NULL) {
        return ts_error_set(TS_ERR_INVALID, "no profile given");
    }
    *out = NULL;
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        if ((profile->key_types & kinds[i].bit) == 0) {
            continue;
        }
        *out = kinds[i].curve != NULL ? EVP_PKEY_Q_keygen(NULL, NULL, "EC", kinds[i].curve)
                                      : EVP_PKEY_Q_keygen(NULL, NULL, "RSA", kinds[i].bits);
        if (*out == NULL) {
            return ts_error_set_openssl(TS_ERR_CRYPTO, "cannot generate a %s key",
                                        kinds[i].curve != NULL ? kinds[i].curve : "RSA");
        }
        return TS_OK;
    }
    return ts_error_set(TS_ERR_POLICY, "profile '%s' allows no key type to generate",
                        profile->name);
}

ts_err ts_est_keygen_csr(X509_REQ *client_csr, EVP_PKEY *key, uint8_t **der, size_t *len)
{
    X509_REQ *req = NULL;
    STACK_OF(X509_EXTENSION) *exts = NULL;
    unsigned char *buf = NULL;
    int n;
    ts_err rv = TS_ERR_CRYPTO;

    if (client_csr == NULL || key == NULL || der == NULL || len == NULL) {
        return ts_error_set(TS_ERR_INVALID, "no CSR or key given");
    }
    *der = NULL;
    *len = 0;
    /* Section 4.4.1: "the server MUST ignore the public key values and signature in the CSR";
     * what the client asks for is its subject and requested extensions. */
    exts = X509_REQ_get_extensions(client_csr);
    req = X509_REQ_new();
    if (req == NULL || X509_REQ_set_version(req, X509_REQ_VERSION_1) != 1 ||
        X509_REQ_set_subject_name(req, X509_REQ_get_subject_name(client_csr)) != 1 ||
        X509_REQ_set_pubkey(req, key) != 1 ||
        (sk_X509_EXTENSION_num(exts) > 0 && X509_REQ_add_extensions(req, exts) != 1) ||
        X509_REQ_sign(req, key, EVP_sha256()) <= 0) {
        ts_error_set_openssl(TS_ERR_CRYPTO, "cannot make the request for a generated key");
        goto cleanup;
    }
    n = i2d_X509_REQ(req, &buf);
    if (n <= 0) {
        ts_error_set_openssl(TS_ERR_CRYPTO, "cannot encode the request for a generated key");
        goto cleanup;
    }
    *der = buf;
    *len = (size_t)n;
    rv = TS_OK;
cleanup:
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    X509_REQ_free(req);
    return rv;
}

ts_err ts_est_pkcs8(EVP_PKEY *key, uint8_t **der, size_t *len)
{
    PKCS8_PRIV_KEY_INFO *p8 = NULL;
    unsigned char *buf = NULL;
    int n;

    if (key == NULL || der == NULL || len == NULL) {
        return ts_error_set(TS_ERR_INVALID, "no key given");
    }
    *der = NULL;
    *len = 0;
    p8 = EVP_PKEY2PKCS8(key);
    if (p8 == NULL) {
        return ts_error_set_openssl(TS_ERR_CRYPTO, "cannot make a PKCS#8 PrivateKeyInfo");
    }
    n = i2d_PKCS8_PRIV_KEY_INFO(p8, &buf);
    PKCS8_PRIV_KEY_INFO_free(p8);
    if (n <= 0) {
        return ts_error_set_openssl(TS_ERR_CRYPTO, "cannot encode a PKCS#8 PrivateKeyInfo");
    }
    *der = buf;
    *len = (size_t)n;
    return TS_OK;
}
