/* EST bodies: base64 (RFC 7030 section 4, RFC 8951 section 3.2.2) and certs-only PKCS#7. */
#include <limits.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pkcs7.h>
#include <openssl/x509.h>

#include "common/error_internal.h"
#include "tessera/est.h"

static int is_space(uint8_t c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static int is_alphabet(uint8_t c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
           c == '/';
}

/*
 * RFC 8951 section 3.2.2: EST bodies are base64 whatever Content-Transfer-Encoding says, and
 * senders break lines. OpenSSL's decoder skips white space and line breaks itself; this scan
 * only refuses what it would treat otherwise (it stops at '-', the start of PEM armour) and names
 * the first byte that does not belong, so that the client learns what it sent wrong.
 */
static ts_err scan(const uint8_t *text, size_t len)
{
    static const char pem[] = "-----BEGIN";
    size_t i = 0;
    int pad = 0;

    while (i < len && is_space(text[i])) {
        i++;
    }
    if (len - i >= sizeof pem - 1 && memcmp(text + i, pem, sizeof pem - 1) == 0) {
        return ts_error_set(TS_ERR_INVALID,
                            "the body is PEM; EST bodies are the base64 of the DER alone, without "
                            "the -----BEGIN line (RFC 7030 section 4.2.1)");
    }
    /* A DER SEQUENCE with a long-form length: 0x30 then a byte outside ASCII. */
    if (len - i >= 2 && text[i] == 0x30 && text[i + 1] >= 0x80) {
        return ts_error_set(
            TS_ERR_INVALID,
            "the body is binary DER; EST bodies are base64 (RFC 8951 section 3.2.2)");
    }
    for (; i < len; i++) {
        uint8_t c = text[i];
        if (is_space(c)) {
            continue;
        }
        if (c == '=') {
            pad++;
            continue;
        }
        if (!is_alphabet(c)) {
            return ts_error_set(TS_ERR_INVALID,
                                "the body is not base64: byte %zu is 0x%02x, which is neither a "
                                "base64 character nor white space",
                                i, c);
        }
        if (pad > 0) {
            return ts_error_set(TS_ERR_INVALID,
                                "the body is not base64: data follows the '=' padding at byte %zu",
                                i);
        }
    }
    return TS_OK;
}

ts_err ts_est_base64_decode(const uint8_t *text, size_t len, size_t max, uint8_t **out,
                            size_t *out_len)
{
    EVP_ENCODE_CTX *ctx = NULL;
    uint8_t *buf = NULL;
    int n = 0, m = 0;
    ts_err rv;

    if (out == NULL || out_len == NULL || (text == NULL && len != 0)) {
        return ts_error_set(TS_ERR_INVALID, "no base64 body given");
    }
    *out = NULL;
    *out_len = 0;
    if (len > INT_MAX) {
        return ts_error_set(TS_ERR_LIMIT, "the body is %zu bytes, too long to decode", len);
    }
    rv = scan(text, len);
    if (rv != TS_OK) {
        return rv;
    }
    ctx = EVP_ENCODE_CTX_new();
    buf = OPENSSL_malloc(len / 4 * 3 + 3);
    if (ctx == NULL || buf == NULL) {
        rv = ts_error_set(TS_ERR_NOMEM, "out of memory for a base64 body");
        goto cleanup;
    }
    EVP_DecodeInit(ctx);
    if (EVP_DecodeUpdate(ctx, buf, &n, text, (int)len) < 0 ||
        EVP_DecodeFinal(ctx, buf + n, &m) < 0) {
        rv = ts_error_set(TS_ERR_INVALID,
                          "the body is not base64: its length is not a whole number of 4-character "
                          "groups, or its '=' padding is wrong");
        goto cleanup;
    }
    if (n + m == 0) {
        rv = ts_error_set(TS_ERR_INVALID, "the body is empty");
        goto cleanup;
    }
    if ((size_t)(n + m) > max) {
        rv = ts_error_set(TS_ERR_LIMIT, "the body decodes to %d bytes, more than %zu", n + m, max);
        goto cleanup;
    }
    *out = buf;
    *out_len = (size_t)(n + m);
    buf = NULL;
    rv = TS_OK;
cleanup:
    OPENSSL_free(buf);
    EVP_ENCODE_CTX_free(ctx);
    return rv;
}

ts_err ts_est_base64_encode(const uint8_t *data, size_t len, const char *eol, char **out,
                            size_t *out_len)
{
    enum { CHUNK = TS_EST_LINE / 4 * 3 };
    size_t eol_len, lines, size, pos = 0;
    char *text;

    if (out == NULL || out_len == NULL || eol == NULL || (data == NULL && len != 0)) {
        return ts_error_set(TS_ERR_INVALID, "nothing to encode");
    }
    *out = NULL;
    *out_len = 0;
    eol_len = strlen(eol);
    lines = (len + CHUNK - 1) / CHUNK;
    if (len > INT_MAX / 2) {
        return ts_error_set(TS_ERR_LIMIT, "%zu bytes are too many to encode", len);
    }
    size = lines * (TS_EST_LINE + eol_len) + 1;
    text = OPENSSL_malloc(size);
    if (text == NULL) {
        return ts_error_set(TS_ERR_NOMEM, "out of memory for base64");
    }
    /* EVP_EncodeBlock() writes one line's worth without line breaks; the lines are ours. */
    for (size_t off = 0; off < len; off += CHUNK) {
        size_t n = len - off < CHUNK ? len - off : CHUNK;
        pos += (size_t)EVP_EncodeBlock((unsigned char *)text + pos, data + off, (int)n);
        memcpy(text + pos, eol, eol_len);
        pos += eol_len;
    }
    text[pos] = '\0';
    *out = text;
    *out_len = pos;
    return TS_OK;
}

ts_err ts_est_certs_only(X509 *const *certs, size_t count, uint8_t **der, size_t *len)
{
    PKCS7 *p7 = NULL;
    unsigned char *buf = NULL;
    int n;
    ts_err rv = TS_ERR_CRYPTO;

    if (der == NULL || len == NULL || (certs == NULL && count != 0)) {
        return ts_error_set(TS_ERR_INVALID, "no certificates given");
    }
    *der = NULL;
    *len = 0;
    /*
     * RFC 7030 section 4.1.3 and RFC 5652 section 5: a SignedData with no signerInfos whose
     * encapsulated content is id-data without eContent (PKCS7_set_detached drops it); it carries
     * only the certificates.
     */
    p7 = PKCS7_new();
    if (p7 == NULL || PKCS7_set_type(p7, NID_pkcs7_signed) != 1 ||
        PKCS7_content_new(p7, NID_pkcs7_data) != 1 || PKCS7_set_detached(p7, 1) != 1) {
        ts_error_set_openssl(TS_ERR_CRYPTO, "cannot make a certs-only SignedData");
        goto cleanup;
    }
    for (size_t i = 0; i < count; i++) {
        if (certs[i] == NULL || PKCS7_add_certificate(p7, certs[i]) != 1) {
            ts_error_set_openssl(TS_ERR_CRYPTO, "cannot add certificate %zu to a certs-only", i);
            goto cleanup;
        }
    }
    n = i2d_PKCS7(p7, &buf);
    if (n <= 0) {
        ts_error_set_openssl(TS_ERR_CRYPTO, "cannot encode a certs-only SignedData");
        goto cleanup;
    }
    *der = buf;
    *len = (size_t)n;
    buf = NULL;
    rv = TS_OK;
cleanup:
    OPENSSL_free(buf);
    PKCS7_free(p7);
    return rv;
}

ts_err ts_est_certs_only_parse(const uint8_t *der, size_t len, STACK_OF(X509) * *out)
{
    const unsigned char *p = der;
    PKCS7 *p7 = NULL;
    STACK_OF(X509) *certs = NULL;
    ts_err rv = TS_ERR_INVALID;

    if (out == NULL || der == NULL || len == 0) {
        return ts_error_set(TS_ERR_INVALID, "no certs-only given");
    }
    *out = NULL;
    if (len > LONG_MAX) {
        return ts_error_set(TS_ERR_LIMIT, "a certs-only of %zu bytes is too long", len);
    }
    p7 = d2i_PKCS7(NULL, &p, (long)len);
    if (p7 == NULL) {
        ts_error_set_openssl(TS_ERR_INVALID, "not a DER PKCS#7 ContentInfo");
        goto cleanup;
    }
    if (p != der + len) {
        ts_error_set(TS_ERR_INVALID, "%zu bytes follow the PKCS#7 ContentInfo",
                     len - (size_t)(p - der));
        goto cleanup;
    }
    if (!PKCS7_type_is_signed(p7) || p7->d.sign == NULL) {
        ts_error_set(TS_ERR_INVALID, "the PKCS#7 is not a SignedData");
        goto cleanup;
    }
    if (sk_PKCS7_SIGNER_INFO_num(p7->d.sign->signer_info) > 0) {
        ts_error_set(TS_ERR_INVALID, "the SignedData has signers; certs-only has none");
        goto cleanup;
    }
    certs = sk_X509_new_null();
    if (certs == NULL) {
        rv = ts_error_set(TS_ERR_NOMEM, "out of memory for certificates");
        goto cleanup;
    }
    for (int i = 0; i < sk_X509_num(p7->d.sign->cert); i++) {
        X509 *c = sk_X509_value(p7->d.sign->cert, i);
        if (X509_up_ref(c) != 1) {
            rv = ts_error_set(TS_ERR_CRYPTO, "cannot reference a certificate");
            goto cleanup;
        }
        if (sk_X509_push(certs, c) <= 0) {
            X509_free(c);
            rv = ts_error_set(TS_ERR_NOMEM, "out of memory for certificates");
            goto cleanup;
        }
    }
    *out = certs;
    certs = NULL;
    rv = TS_OK;
cleanup:
    sk_X509_pop_free(certs, X509_free);
    PKCS7_free(p7);
    return rv;
}
