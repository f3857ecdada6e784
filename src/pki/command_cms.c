/*
 * Command envelopes and results as signed messages (pki/signed_msg_internal.h: CMS SignedData,
 * content attached, the signer's certificate and chain included): include/tessera/command.h.
 * What a certificate may sign is checked here against what it signed: the command-signing usage
 * and the device's issuing CA for a command, the device's own name for a result.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/x509v3.h>

#include "common/error_internal.h"
#include "pki/command_internal.h"
#include "pki/signed_msg_internal.h"

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
        rv = ts_signed_msg_sign(text, len, key, cert, chain, TS_COMMAND_ENVELOPE_MAX, "a command",
                                der, der_len);
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
        rv = ts_signed_msg_sign(text, len, key, cert, chain, TS_COMMAND_ENVELOPE_MAX, "a result",
                                der, der_len);
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
    ts_signed_msg m;
    ts_err rv = ts_signed_msg_parse(der, der_len, TS_COMMAND_ENVELOPE_MAX, "the command", &m);
    if (rv != TS_OK) {
        return rv;
    }
    const unsigned char *peek;
    size_t peek_len;
    if (ts_signed_msg_peek(&m, &peek, &peek_len) &&
        ts_command_decode((const char *)peek, peek_len, out) != TS_OK) {
        memset(out, 0, sizeof *out); /* unreadable: the refusal names no command */
    }
    ERR_clear_error();
    rv = ts_signed_msg_verify(&m, "the command");
    if (rv == TS_OK) {
        rv = ts_signed_msg_chain(&m, roots, now, 0);
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
    ts_signed_msg_clear(&m);
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
    ts_signed_msg m;
    ts_err rv = ts_signed_msg_parse(der, der_len, TS_COMMAND_ENVELOPE_MAX, "the result", &m);
    if (rv != TS_OK) {
        return rv;
    }
    rv = ts_signed_msg_verify(&m, "the result");
    if (rv == TS_OK) {
        rv = ts_signed_msg_chain(&m, roots, now, 1);
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
    ts_signed_msg_clear(&m);
    return rv;
}
