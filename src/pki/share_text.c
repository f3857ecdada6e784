/*
 * The text of share files (share_file.c): the line check, hex and case, and the checks of the
 * optional fields.
 */
#include <ctype.h>
#include <string.h>

#include "pki/share_file_internal.h"

/*
 * Share bytes are secret, and so is their text: the helpers that touch KEY lines (hex in and
 * out, upper-casing, the CRC) use masks rather than branches or ctype tables indexed by a
 * character, in the same spirit as the GF(256) arithmetic of shamir.c.
 */

uint16_t ts_share_crc16(const uint8_t *data, size_t len)
{
    /* CRC-16/CCITT-FALSE: MSB first, no reflection, no final XOR. */
    unsigned crc = 0xFFFF;

    for (size_t i = 0; i < len; i++) {
        crc ^= (unsigned)data[i] << 8;
        for (int b = 0; b < 8; b++) {
            crc = ((crc << 1) ^ (0x1021U & (0U - (crc >> 15)))) & 0xFFFFU;
        }
    }
    return (uint16_t)crc;
}

/* The upper-case hex digit of n (0..15): '0' + n, and 7 more past '9'. */
char ts_share_hex_digit(unsigned n)
{
    return (char)('0' + n + (7U & (0U - ((9U - n) >> 31))));
}

/* The value of a hex digit of either case; *bad gets 1 when c is none. */
static unsigned hex_nibble(unsigned char c, unsigned *bad)
{
    int d = c - '0', l = (c | 0x20) - 'a';
    unsigned is_d = (unsigned)((d >= 0) & (d <= 9));
    unsigned is_l = (unsigned)((l >= 0) & (l <= 5));

    *bad |= 1U ^ (is_d | is_l);
    return ((unsigned)d & (0U - is_d)) | ((unsigned)(l + 10) & (0U - is_l));
}

char ts_share_upper(char c)
{
    unsigned lower = (unsigned)((c >= 'a') & (c <= 'z'));
    return (char)((unsigned char)c ^ (0x20U & (0U - lower)));
}

/* Whether s is exactly n hex digits. */
int ts_share_hex_ok(const char *s, size_t n)
{
    unsigned bad = 0;
    for (size_t i = 0; i < n && s[i] != '\0'; i++) {
        hex_nibble((unsigned char)s[i], &bad);
    }
    return strlen(s) == n && bad == 0;
}

/* n bytes from 2n hex digits already checked with ts_share_hex_ok(). */
void ts_share_hex_decode(const char *s, size_t n, uint8_t *out)
{
    unsigned bad = 0;
    for (size_t i = 0; i < n; i++) {
        out[i] = (uint8_t)(hex_nibble((unsigned char)s[2 * i], &bad) << 4 |
                           hex_nibble((unsigned char)s[2 * i + 1], &bad));
    }
}

int ts_share_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > TS_SHARE_NAME_MAX) {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-')) {
            return 0;
        }
    }
    return 1;
}

int ts_share_date_ok(const char *s)
{
    static const char form[] = "dddd-dd-dd";
    for (size_t i = 0; i < sizeof form - 1; i++) {
        if (form[i] == 'd' ? !isdigit((unsigned char)s[i]) : s[i] != form[i]) {
            return 0;
        }
    }
    int month = (s[5] - '0') * 10 + (s[6] - '0');
    int day = (s[8] - '0') * 10 + (s[9] - '0');
    return s[10] == '\0' && month >= 1 && month <= 12 && day >= 1 && day <= 31;
}
