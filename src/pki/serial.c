/* Serial numbers and fingerprints of certificates. */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "common/error_internal.h"
#include "common/digest_internal.h"
#include "tessera/pki.h"

ts_err ts_serials_random(uint8_t *serials, size_t count)
{
    if (count == 0 || count > SIZE_MAX / TS_SERIAL_LEN || count * TS_SERIAL_LEN > INT_MAX) {
        return ts_error_set(TS_ERR_INVALID, "cannot draw %zu serial numbers at once", count);
    }
    if (RAND_bytes(serials, (int)(count * TS_SERIAL_LEN)) != 1) {
        return ts_error_set_openssl(TS_ERR_CRYPTO, "no random bytes for a serial number");
    }
    /*
     * RFC 5280 section 4.1.2.2: a positive integer of at most 20 octets. Clearing the top bit
     * keeps it positive in 20 octets; a non-zero first octet keeps the encoding at 20 octets so
     * that every serial has the same length and no leading zero is dropped.
     */
    for (size_t i = 0; i < count; i++) {
        uint8_t *first = &serials[i * TS_SERIAL_LEN];
        *first &= 0x7f;
        if (*first == 0) {
            *first = 0x01;
        }
    }
    return TS_OK;
}

ts_err ts_serial_random(uint8_t serial[TS_SERIAL_LEN])
{
    return ts_serials_random(serial, 1);
}

ts_err ts_serial_hex(const ASN1_INTEGER *serial, char *hex, size_t size)
{
    BIGNUM *bn = ASN1_INTEGER_to_BN(serial, NULL);
    char *text = bn != NULL ? BN_bn2hex(bn) : NULL;
    ts_err rv = TS_OK;

    if (text == NULL) {
        rv = ts_error_set_openssl(TS_ERR_INVALID, "cannot read a serial number");
    } else if (BN_is_negative(bn)) {
        rv = ts_error_set(TS_ERR_INVALID, "serial number %s is negative", text);
    } else if (strlen(text) + 1 > size) {
        rv = ts_error_set(TS_ERR_INVALID, "serial number %s is longer than %zu digits", text,
                          size - 1);
    } else {
        memcpy(hex, text, strlen(text) + 1);
    }
    OPENSSL_free(text);
    BN_free(bn);
    return rv;
}

ts_err ts_cert_fingerprint(const X509 *cert, char hex[TS_FINGERPRINT_HEX])
{
    uint8_t md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;

    if (!X509_digest(cert, ts_md_sha256(), md, &len) || len != 32) {
        return ts_error_set_openssl(TS_ERR_CRYPTO, "cannot compute a certificate fingerprint");
    }
    for (unsigned int i = 0; i < len; i++) {
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    }
    return TS_OK;
}
