/*
 * Command envelopes and results as CMS SignedData (RFC 5652 section 5), content attached, the
 * signer's certificate and chain included: include/tessera/command.h.
 *
 * The signature is checked by CMS_verify() alone (CMS_NO_SIGNER_CERT_VERIFY); the signer's chain
 * is then checked here with purpose "any", because CMS_verify() would judge it for S/MIME
 * (emailProtection), which neither a command key nor a device certificate has. What the
 * certificate may do is then checked against what it signed: the command-signing usage for a
 * command, the device's own name for a result.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/x509v3.h>

#include "common/error_internal.h"
#include "pki/command_internal.h"

/* A parsed SignedData whose one signature verifies; the content is not yet trusted. */
typedef struct signed_msg {
    CMS_ContentInfo *cms;
    X509 *signer;           /* borrowed from cms */
    STACK_OF(X509) * certs; /* every certificate the message carries */
    unsigned char *content; /* NUL-terminated copy */
    size_t content_len;
} signed_msg;

static void signed_msg_clear(signed_msg *m)
{
    sk_X509_pop_free(m->certs, X509_free);
    CMS_ContentInfo_free(m->cms);
    free(m->content);
    memset(m, 0, sizeof *m);
}

static ts_err sign_text(const char *text, size_t len, EVP_PKEY *key, X509 *cert,
                        STACK_OF(X509) * chain, unsigned char **der, size_t *der_len)
{
    if (key == NULL || cert == NULL || der == NULL || der_len == NULL) {
        return ts_error_set(TS_ERR_INVALID, "signing needs a key, its certificate and an output");
    }
    ts_err rv = TS_OK;
    unsigned char *buf = NULL;
    BIO *in = BIO_new_mem_buf(text, (int)len);
    /* CMS_BINARY: the JSON is signed byte for byte, with no MIME line-end translation. */
    CMS_ContentInfo *cms =
        in != NULL ? CMS_sign(cert, key, chain, in, CMS_BINARY | CMS_NOSMIMECAP) : NULL;
    int n = cms != NULL ? i2d_CMS_ContentInfo(cms, &buf) : -1;
    if (n <= 0) {
        rv = ts_error_set_openssl(TS_ERR_CRYPTO, "cannot sign the message");
    } else if (n > TS_COMMAND_ENVELOPE_MAX) {
        rv = ts_error_set(TS_ERR_LIMIT, "a signed message of %d bytes exceeds %d", n,
                          TS_COMMAND_ENVELOPE_MAX);
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

/* The attached content, before anything is verified: only for naming what is refused. */
static int peek_content(CMS_ContentInfo *cms, const unsigned char **data, size_t *len)
{
    ASN1_OCTET_STRING **pos = CMS_get0_content(cms);
    if (pos == NULL || *pos == NULL) {
        return 0;
    }
    *data = ASN1_STRING_get0_data(*pos);
    *len = (size_t)ASN1_STRING_length(*pos);
    return 1;
}

static ts_err parse(const unsigned char *der, size_t len, signed_msg *m)
{
    memset(m, 0, sizeof *m);
    if (der == NULL || len == 0 || len > TS_COMMAND_ENVELOPE_MAX) {
        return ts_error_set(TS_ERR_INVALID, "a signed message has 1 to %d bytes, not %zu",
                            TS_COMMAND_ENVELOPE_MAX, len);
    }
    const unsigned char *p = der;
    m->cms = d2i_CMS_ContentInfo(NULL, &p, (long)len);
    if (m->cms == NULL || p != der + len) {
        signed_msg_clear(m);
        return ts_error_set_openssl(TS_ERR_INVALID, "not one DER CMS message");
    }
    if (OBJ_obj2nid(CMS_get0_type(m->cms)) != NID_pkcs7_signed ||
        OBJ_obj2nid(CMS_get0_eContentType(m->cms)) != NID_pkcs7_data) {
        signed_msg_clear(m);
        return ts_error_set(TS_ERR_INVALID, "not CMS SignedData over data");
    }
    return TS_OK;
}

/*
 * The signature algorithm must be the one the digest and the signer's key make: OpenSSL verifies
 * by key type and digest and would not notice an altered (unsigned) signatureAlgorithm field.
 */
static ts_err check_algorithms(CMS_SignerInfo *si, X509 *signer)
{
    X509_ALGOR *dig = NULL;
    X509_ALGOR *sig = NULL;
    CMS_SignerInfo_get0_algs(si, NULL, NULL, &dig, &sig);
    int dig_nid = dig != NULL ? OBJ_obj2nid(dig->algorithm) : NID_undef;
    int sig_nid = sig != NULL ? OBJ_obj2nid(sig->algorithm) : NID_undef;
    int key_nid = X509_get_signature_nid(signer) != NID_undef
                      ? EVP_PKEY_get_base_id(X509_get0_pubkey(signer))
                      : NID_undef;
    int want_dig = NID_undef;
    int want_key = NID_undef;
    if (dig_nid != NID_sha256 && dig_nid != NID_sha384 && dig_nid != NID_sha512) {
        return ts_error_set(TS_ERR_AUTH, "the message's digest algorithm is not SHA-2");
    }
    if (sig_nid == NID_rsaEncryption) {
        want_dig = dig_nid;
        want_key = EVP_PKEY_RSA;
    } else if (OBJ_find_sigid_algs(sig_nid, &want_dig, &want_key) != 1) {
        want_dig = NID_undef;
    }
    if (want_dig != dig_nid || want_key != key_nid) {
        return ts_error_set(TS_ERR_AUTH, "the message's signature algorithm does not match its "
                                         "digest and key");
    }
    return TS_OK;
}

/* Checks the one signature with the certificate the message carries; fills signer and content. */
static ts_err verify_signature(signed_msg *m)
{
    STACK_OF(CMS_SignerInfo) *infos = CMS_get0_SignerInfos(m->cms);
    if (sk_CMS_SignerInfo_num(infos) != 1) {
        return ts_error_set(TS_ERR_AUTH, "a signed message must have exactly one signer, not %d",
                            sk_CMS_SignerInfo_num(infos));
    }
    BIO *out = BIO_new(BIO_s_mem());
    if (out == NULL) {
        return ts_error_set(TS_ERR_NOMEM, "no memory to verify a message");
    }
    ts_err rv = TS_OK;
    if (CMS_verify(m->cms, NULL, NULL, NULL, out, CMS_BINARY | CMS_NO_SIGNER_CERT_VERIFY) != 1) {
        rv = ts_error_set_openssl(TS_ERR_AUTH, "the signature does not verify");
    }
    STACK_OF(X509) *signers = rv == TS_OK ? CMS_get0_signers(m->cms) : NULL;
    if (rv == TS_OK && sk_X509_num(signers) != 1) {
        rv = ts_error_set(TS_ERR_AUTH, "the message does not carry its signer's certificate");
    }
    if (rv == TS_OK) {
        rv = check_algorithms(sk_CMS_SignerInfo_value(infos, 0), sk_X509_value(signers, 0));
    }
    if (rv == TS_OK) {
        m->signer = sk_X509_value(signers, 0);
        m->certs = CMS_get1_certs(m->cms);
        char *data = NULL;
        long n = BIO_get_mem_data(out, &data);
        m->content = n >= 0 ? malloc((size_t)n + 1) : NULL;
        if (m->content == NULL) {
            rv = ts_error_set(TS_ERR_NOMEM, "no memory for a message's content");
        } else {
            memcpy(m->content, data, (size_t)n);
            m->content[n] = '\0';
            m->content_len = (size_t)n;
        }
    }
    sk_X509_free(signers);
    BIO_free(out);
    return rv;
}

/* The signer's chain to roots at time now, judged for no particular purpose. */
static ts_err verify_chain(const signed_msg *m, X509_STORE *roots, time_t now, int partial)
{
    if (roots == NULL) {
        return ts_error_set(TS_ERR_INVALID, "no trusted roots to check a signer against");
    }
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    if (ctx == NULL || X509_STORE_CTX_init(ctx, roots, m->signer, m->certs) != 1) {
        X509_STORE_CTX_free(ctx);
        return ts_error_set_openssl(TS_ERR_NOMEM, "cannot set up a chain check");
    }
    X509_VERIFY_PARAM *param = X509_STORE_CTX_get0_param(ctx);
    X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_ANY);
    X509_STORE_CTX_set_time(ctx, 0, now);
    if (partial) {
        X509_VERIFY_PARAM_set_flags(param, X509_V_FLAG_PARTIAL_CHAIN);
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

/* A command key: the command-signing extended key usage, and digitalSignature if KU is there. */
static ts_err check_command_signer(X509 *signer)
{
    int found = 0;
    EXTENDED_KEY_USAGE *eku = X509_get_ext_d2i(signer, NID_ext_key_usage, NULL, NULL);
    ASN1_OBJECT *want = OBJ_txt2obj(TS_COMMAND_EKU_OID, 1);
    for (int i = 0; eku != NULL && want != NULL && i < sk_ASN1_OBJECT_num(eku); i++) {
        found |= OBJ_cmp(sk_ASN1_OBJECT_value(eku, i), want) == 0;
    }
    ASN1_OBJECT_free(want);
    EXTENDED_KEY_USAGE_free(eku);
    if (!found) {
        return ts_error_set(TS_ERR_AUTH, "the signer's certificate is not for command signing");
    }
    if ((X509_get_key_usage(signer) & KU_DIGITAL_SIGNATURE) == 0) {
        return ts_error_set(TS_ERR_AUTH, "the signer's certificate may not sign");
    }
    return TS_OK;
}

/* Both certificates come from one CA: same issuer name and authority key identifier. */
static ts_err check_same_issuer(X509 *signer, X509 *device_cert)
{
    const ASN1_OCTET_STRING *a = X509_get0_authority_key_id(signer);
    const ASN1_OCTET_STRING *b = X509_get0_authority_key_id(device_cert);
    if (X509_NAME_cmp(X509_get_issuer_name(signer), X509_get_issuer_name(device_cert)) != 0 ||
        a == NULL || b == NULL || ASN1_OCTET_STRING_cmp(a, b) != 0) {
        return ts_error_set(TS_ERR_FOREIGN, "the command was signed for another tenant's devices");
    }
    return TS_OK;
}

ts_err ts_command_sign(const ts_command *cmd, EVP_PKEY *key, X509 *cert, STACK_OF(X509) * chain,
                       unsigned char **der, size_t *der_len)
{
    char *text = NULL;
    size_t len = 0;
    ts_err rv = ts_command_encode(cmd, &text, &len);
    if (rv == TS_OK) {
        rv = sign_text(text, len, key, cert, chain, der, der_len);
    }
    free(text);
    return rv;
}

ts_err ts_command_result_sign(const ts_command_result *r, EVP_PKEY *key, X509 *cert,
                              STACK_OF(X509) * chain, unsigned char **der, size_t *der_len)
{
    char *text = NULL;
    size_t len = 0;
    ts_err rv = ts_command_result_encode(r, &text, &len);
    if (rv == TS_OK) {
        rv = sign_text(text, len, key, cert, chain, der, der_len);
    }
    free(text);
    return rv;
}

ts_err ts_command_verify(const unsigned char *der, size_t der_len, X509_STORE *roots,
                         X509 *device_cert, const char *expect_uid, time_t now, ts_command *out)
{
    memset(out, 0, sizeof *out);
    if (device_cert == NULL || expect_uid == NULL) {
        return ts_error_set(TS_ERR_INVALID, "checking a command needs the device's certificate "
                                            "and UID");
    }
    signed_msg m;
    ts_err rv = parse(der, der_len, &m);
    if (rv != TS_OK) {
        return rv;
    }
    const unsigned char *peek;
    size_t peek_len;
    if (peek_content(m.cms, &peek, &peek_len) &&
        ts_command_decode((const char *)peek, peek_len, out) != TS_OK) {
        memset(out, 0, sizeof *out); /* unreadable: the refusal names no command */
    }
    ERR_clear_error();
    rv = verify_signature(&m);
    if (rv == TS_OK) {
        rv = verify_chain(&m, roots, now, 0);
    }
    if (rv == TS_OK) {
        rv = check_command_signer(m.signer);
    }
    if (rv == TS_OK) {
        rv = check_same_issuer(m.signer, device_cert);
    }
    if (rv == TS_OK) {
        rv = ts_command_decode((const char *)m.content, m.content_len, out);
    }
    if (rv == TS_OK && strcmp(out->uid, expect_uid) != 0) {
        rv = ts_error_set(TS_ERR_FOREIGN, "the command is for device '%s', not this one", out->uid);
    }
    if (rv == TS_OK && (int64_t)now >= out->expires) {
        rv = ts_error_set(TS_ERR_EXPIRED, "the command expired %lld seconds ago",
                          (long long)((int64_t)now - out->expires));
    }
    signed_msg_clear(&m);
    return rv;
}

/* The signer's subject commonName must be the result's device UID. */
static ts_err check_result_signer(X509 *signer, const char *uid)
{
    char cn[TS_COMMAND_UID_MAX + 2];
    X509_NAME *subject = X509_get_subject_name(signer);
    int idx = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
    if (idx < 0 || X509_NAME_get_index_by_NID(subject, NID_commonName, idx) >= 0) {
        return ts_error_set(TS_ERR_AUTH, "the result's signer has not exactly one common name");
    }
    int n = X509_NAME_get_text_by_NID(subject, NID_commonName, cn, (int)sizeof cn);
    if (n <= 0 || (size_t)n != strlen(uid) || strcmp(cn, uid) != 0) {
        return ts_error_set(TS_ERR_AUTH, "the result was not signed by device '%s'", uid);
    }
    return TS_OK;
}

ts_err ts_command_result_verify(const unsigned char *der, size_t der_len, X509_STORE *roots,
                                time_t now, ts_command_result *out, X509 **signer)
{
    memset(out, 0, sizeof *out);
    if (signer != NULL) {
        *signer = NULL;
    }
    signed_msg m;
    ts_err rv = parse(der, der_len, &m);
    if (rv != TS_OK) {
        return rv;
    }
    rv = verify_signature(&m);
    if (rv == TS_OK) {
        rv = verify_chain(&m, roots, now, 1);
    }
    if (rv == TS_OK) {
        rv = ts_command_result_decode((const char *)m.content, m.content_len, out);
    }
    if (rv == TS_OK) {
        rv = check_result_signer(m.signer, out->uid);
    }
    if (rv == TS_OK && signer != NULL) {
        X509_up_ref(m.signer);
        *signer = m.signer;
    }
    if (rv != TS_OK) {
        memset(out, 0, sizeof *out);
    }
    signed_msg_clear(&m);
    return rv;
}
