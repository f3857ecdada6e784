/*
 * Signed messages (pki/signed_msg_internal.h): CMS SignedData with one signer, content attached,
 * made and checked one way for command envelopes, results and firmware manifests.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/asn1.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/x509v3.h>

#include "common/error_internal.h"
#include "pki/signed_msg_internal.h"

void ts_signed_msg_clear(ts_signed_msg *m)
{
    sk_X509_pop_free(m->certs, X509_free);
    CMS_ContentInfo_free(m->cms);
    free(m->content);
    memset(m, 0, sizeof *m);
}

ts_err ts_signed_msg_sign(const char *text, size_t len, EVP_PKEY *key, X509 *cert,
                          STACK_OF(X509) * chain, size_t max, const char *what, unsigned char **der,
                          size_t *der_len)
{
    if (text == NULL || len > INT32_MAX || key == NULL || cert == NULL || der == NULL ||
        der_len == NULL) {
        return ts_error_set(TS_ERR_INVALID,
                            "signing %s needs content, a key, its certificate "
                            "and an output",
                            what);
    }
    ts_err rv = TS_OK;
    unsigned char *buf = NULL;
    BIO *in = BIO_new_mem_buf(text, (int)len);
    /* CMS_BINARY: the content is signed byte for byte, with no MIME line-end translation. */
    CMS_ContentInfo *cms =
        in != NULL ? CMS_sign(cert, key, chain, in, CMS_BINARY | CMS_NOSMIMECAP) : NULL;
    int n = cms != NULL ? i2d_CMS_ContentInfo(cms, &buf) : -1;
    if (n <= 0) {
        rv = ts_error_set_openssl(TS_ERR_CRYPTO, "cannot sign %s", what);
    } else if ((size_t)n > max) {
        rv = ts_error_set(TS_ERR_LIMIT, "%s signed is %d bytes, more than %zu", what, n, max);
    }
    if (rv == TS_OK) {
        *der = buf;
        *der_len = (size_t)n;
        buf = NULL;
    }
    OPENSSL_free(buf);
    CMS_ContentInfo_free(cms);
    BIO_free(in);
    return rv;
}

/* The next TLV at *p (before end), through OpenSSL's decoder; its content starts at *p after. */
static int next_tlv(const unsigned char **p, const unsigned char *end, long *len, int *tag,
                    int *cls)
{
    if (*p >= end) {
        return 0;
    }
    int r = ASN1_get_object(p, len, tag, cls, end - *p);
    return (r & 0x80) == 0 && *len >= 0 && *len <= end - *p;
}

/* Whether the TLV content at p of len bytes is the INTEGER value 1. */
static int is_one(const unsigned char *p, long len, int tag, int cls)
{
    return tag == V_ASN1_INTEGER && cls == V_ASN1_UNIVERSAL && len == 1 && p[0] == 1;
}

/*
 * What the signature does not cover must still be exactly what the signer wrote: the encoding is
 * canonical DER (re-encoding gives the same bytes) and both unsigned version fields, of the
 * SignedData and of its one SignerInfo, are 1 (issuerAndSerialNumber, data content).
 */
static ts_err check_unsigned_parts(CMS_ContentInfo *cms, const unsigned char *der, size_t len,
                                   const char *what)
{
    unsigned char *again = NULL;
    int n = i2d_CMS_ContentInfo(cms, &again);
    int same = n > 0 && (size_t)n == len && memcmp(again, der, len) == 0;
    OPENSSL_free(again);
    if (!same) {
        return ts_error_set(TS_ERR_INVALID, "%s is not canonical DER", what);
    }
    const unsigned char *p = der;
    const unsigned char *end = der + len;
    long l = 0;
    int tag = 0, cls = 0;
    /* ContentInfo SEQUENCE, contentType OID, [0], SignedData SEQUENCE, version */
    int ok = next_tlv(&p, end, &l, &tag, &cls) && next_tlv(&p, end, &l, &tag, &cls);
    p += ok ? l : 0;
    ok = ok && next_tlv(&p, end, &l, &tag, &cls) && next_tlv(&p, end, &l, &tag, &cls);
    const unsigned char *sd_end = ok ? p + l : NULL;
    ok = ok && next_tlv(&p, sd_end, &l, &tag, &cls) && is_one(p, l, tag, cls);
    p += ok ? l : 0;
    /* The last element of the SignedData is the SET of SignerInfos. */
    const unsigned char *last = NULL;
    long last_len = 0;
    while (ok && p < sd_end) {
        ok = next_tlv(&p, sd_end, &l, &tag, &cls);
        last = p;
        last_len = l;
        p += ok ? l : 0;
    }
    ok = ok && last != NULL && tag == V_ASN1_SET && cls == V_ASN1_UNIVERSAL;
    if (ok) {
        const unsigned char *si_end = last + last_len;
        p = last;
        ok = next_tlv(&p, si_end, &l, &tag, &cls) && next_tlv(&p, si_end, &l, &tag, &cls) &&
             is_one(p, l, tag, cls);
    }
    if (!ok) {
        return ts_error_set(TS_ERR_INVALID, "%s's SignedData or SignerInfo version is not 1", what);
    }
    return TS_OK;
}

ts_err ts_signed_msg_parse(const unsigned char *der, size_t len, size_t max, const char *what,
                           ts_signed_msg *m)
{
    memset(m, 0, sizeof *m);
    if (der == NULL || len == 0 || len > max) {
        return ts_error_set(TS_ERR_INVALID, "%s has 1 to %zu bytes, not %zu", what, max, len);
    }
    const unsigned char *p = der;
    m->cms = d2i_CMS_ContentInfo(NULL, &p, (long)len);
    ts_err rv = TS_OK;
    if (m->cms == NULL || p != der + len) {
        rv = ts_error_set_openssl(TS_ERR_INVALID, "%s is not one DER CMS message", what);
    } else if (OBJ_obj2nid(CMS_get0_type(m->cms)) != NID_pkcs7_signed ||
               OBJ_obj2nid(CMS_get0_eContentType(m->cms)) != NID_pkcs7_data) {
        rv = ts_error_set(TS_ERR_INVALID, "%s is not CMS SignedData over data", what);
    } else {
        rv = check_unsigned_parts(m->cms, der, len, what);
    }
    if (rv != TS_OK) {
        ts_signed_msg_clear(m);
    }
    return rv;
}

int ts_signed_msg_peek(const ts_signed_msg *m, const unsigned char **data, size_t *len)
{
    ASN1_OCTET_STRING **pos = m->cms != NULL ? CMS_get0_content(m->cms) : NULL;
    if (pos == NULL || *pos == NULL) {
        return 0;
    }
    *data = ASN1_STRING_get0_data(*pos);
    *len = (size_t)ASN1_STRING_length(*pos);
    return 1;
}

/*
 * The signature algorithm must be the one the digest and the signer's key make: OpenSSL verifies
 * by key type and digest and would not notice an altered (unsigned) signatureAlgorithm field.
 */
static ts_err check_algorithms(CMS_SignerInfo *si, X509 *signer, const char *what)
{
    X509_ALGOR *dig = NULL;
    X509_ALGOR *sig = NULL;
    CMS_SignerInfo_get0_algs(si, NULL, NULL, &dig, &sig);
    int dig_nid = dig != NULL ? OBJ_obj2nid(dig->algorithm) : NID_undef;
    int sig_nid = sig != NULL ? OBJ_obj2nid(sig->algorithm) : NID_undef;
    int key_nid = EVP_PKEY_get_base_id(X509_get0_pubkey(signer));
    int want_dig = NID_undef;
    int want_key = NID_undef;
    if (dig_nid != NID_sha256 && dig_nid != NID_sha384 && dig_nid != NID_sha512) {
        return ts_error_set(TS_ERR_AUTH, "%s's digest algorithm is not SHA-2", what);
    }
    if (sig_nid == NID_rsaEncryption) {
        want_dig = dig_nid;
        want_key = EVP_PKEY_RSA;
    } else if (OBJ_find_sigid_algs(sig_nid, &want_dig, &want_key) != 1) {
        want_dig = NID_undef;
    }
    if (want_dig != dig_nid || want_key != key_nid) {
        return ts_error_set(TS_ERR_AUTH,
                            "%s's signature algorithm does not match its digest and "
                            "key",
                            what);
    }
    return TS_OK;
}

/* The SignerInfo names its certificate by exactly the certificate's issuer bytes and serial. */
static ts_err check_signer_id(CMS_SignerInfo *si, X509 *signer, const char *what)
{
    X509_NAME *issuer = NULL;
    ASN1_INTEGER *serial = NULL;
    ASN1_OCTET_STRING *keyid = NULL;
    if (CMS_SignerInfo_get0_signer_id(si, &keyid, &issuer, &serial) != 1 || issuer == NULL ||
        serial == NULL) {
        return ts_error_set(TS_ERR_AUTH, "%s's signer is not named by issuer and serial", what);
    }
    unsigned char *a = NULL;
    unsigned char *b = NULL;
    int na = i2d_X509_NAME(issuer, &a);
    int nb = i2d_X509_NAME(X509_get_issuer_name(signer), &b);
    int same = na > 0 && na == nb && memcmp(a, b, (size_t)na) == 0 &&
               ASN1_INTEGER_cmp(serial, X509_get0_serialNumber(signer)) == 0;
    OPENSSL_free(a);
    OPENSSL_free(b);
    if (!same) {
        return ts_error_set(TS_ERR_AUTH, "%s's signer id is not its certificate's", what);
    }
    return TS_OK;
}

ts_err ts_signed_msg_verify(ts_signed_msg *m, const char *what)
{
    STACK_OF(CMS_SignerInfo) *infos = CMS_get0_SignerInfos(m->cms);
    if (sk_CMS_SignerInfo_num(infos) != 1) {
        return ts_error_set(TS_ERR_AUTH, "%s must have exactly one signer, not %d", what,
                            sk_CMS_SignerInfo_num(infos));
    }
    BIO *out = BIO_new(BIO_s_mem());
    if (out == NULL) {
        return ts_error_set(TS_ERR_NOMEM, "no memory to verify %s", what);
    }
    ts_err rv = TS_OK;
    if (CMS_verify(m->cms, NULL, NULL, NULL, out, CMS_BINARY | CMS_NO_SIGNER_CERT_VERIFY) != 1) {
        rv = ts_error_set_openssl(TS_ERR_AUTH, "%s's signature does not verify", what);
    }
    STACK_OF(X509) *signers = rv == TS_OK ? CMS_get0_signers(m->cms) : NULL;
    if (rv == TS_OK && sk_X509_num(signers) != 1) {
        rv = ts_error_set(TS_ERR_AUTH, "%s does not carry its signer's certificate", what);
    }
    CMS_SignerInfo *si = sk_CMS_SignerInfo_value(infos, 0);
    if (rv == TS_OK) {
        rv = check_algorithms(si, sk_X509_value(signers, 0), what);
    }
    if (rv == TS_OK) {
        rv = check_signer_id(si, sk_X509_value(signers, 0), what);
    }
    char *data = NULL;
    long n = rv == TS_OK ? BIO_get_mem_data(out, &data) : 0;
    if (rv == TS_OK && n <= 0) {
        rv = ts_error_set(TS_ERR_INVALID, "%s has no content", what);
    }
    if (rv == TS_OK) {
        m->content = malloc((size_t)n + 1);
        rv = m->content != NULL ? TS_OK : ts_error_set(TS_ERR_NOMEM, "no memory for %s", what);
    }
    if (rv == TS_OK) {
        memcpy(m->content, data, (size_t)n);
        m->content[n] = '\0';
        m->content_len = (size_t)n;
        m->signer = sk_X509_value(signers, 0);
        m->certs = CMS_get1_certs(m->cms);
    }
    sk_X509_free(signers);
    BIO_free(out);
    return rv;
}

ts_err ts_signed_msg_chain(const ts_signed_msg *m, X509_STORE *roots, time_t now, int partial)
{
    if (roots == NULL || m->signer == NULL) {
        return ts_error_set(TS_ERR_INVALID, "no trusted roots or no verified signer to check");
    }
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    if (ctx == NULL || X509_STORE_CTX_init(ctx, roots, m->signer, m->certs) != 1) {
        X509_STORE_CTX_free(ctx);
        return ts_error_set_openssl(TS_ERR_NOMEM, "cannot set up a chain check");
    }
    X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_ANY);
    X509_STORE_CTX_set_time(ctx, 0, now);
    if (partial) {
        X509_VERIFY_PARAM_set_flags(X509_STORE_CTX_get0_param(ctx), X509_V_FLAG_PARTIAL_CHAIN);
    }
    ts_err rv = TS_OK;
    if (X509_verify_cert(ctx) != 1) {
        rv = ts_error_set(TS_ERR_AUTH,
                          "the signer's certificate does not chain to a trusted root: %s",
                          X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
    }
    ERR_clear_error();
    X509_STORE_CTX_free(ctx);
    return rv;
}
