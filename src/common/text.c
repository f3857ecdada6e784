/* Small text helpers shared by the parts: random hex strings and URI escaping. */
#include <stdint.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "common/error_internal.h"
#include "common/text_internal.h"

ts_err ts_random_hex(char *hex, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    uint8_t buf[TS_RANDOM_HEX_MAX];

    if (n > sizeof buf) {
        return ts_error_set(TS_ERR_INVALID, "%zu random bytes asked for, at most %d", n,
                            TS_RANDOM_HEX_MAX);
    }
    if (RAND_bytes(buf, (int)n) != 1) {
        return ts_error_set_openssl(TS_ERR_CRYPTO, "no random bytes");
    }
    for (size_t i = 0; i < n; i++) {
        hex[2 * i] = digits[buf[i] >> 4];
        hex[2 * i + 1] = digits[buf[i] & 0x0f];
    }
    hex[2 * n] = '\0';
    OPENSSL_cleanse(buf, sizeof buf);
    return TS_OK;
}

ts_err ts_uri_escape(const char *text, char *out, size_t size)
{
    static const char digits[] = "0123456789ABCDEF";
    size_t o = 0;

    for (const unsigned char *p = (const unsigned char *)text; *p != '\0'; p++) {
        int plain = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                    (*p >= '0' && *p <= '9') || strchr("-._~/", *p) != NULL;
        if (o + 4 > size) {
            return ts_error_set(TS_ERR_INVALID, "too long for a URI: %s", text);
        }
        if (plain) {
            out[o++] = (char)*p;
        } else {
            out[o++] = '%';
            out[o++] = digits[*p >> 4];
            out[o++] = digits[*p & 0x0f];
        }
    }
    if (size == 0) {
        return ts_error_set(TS_ERR_INVALID, "no room for a URI");
    }
    out[o] = '\0';
    return TS_OK;
}
