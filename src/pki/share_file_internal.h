/* Inside the share files (share_file.c, share_set.c, share_text.c): helpers tests reach too. */
#ifndef TS_PKI_SHARE_FILE_INTERNAL_H
#define TS_PKI_SHARE_FILE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "tessera/ceremony.h"

/*
 * Text helpers (share_text.c). Share bytes are secret, and so is their text: these use masks,
 * not branches or ctype tables indexed by a character.
 */

/* CRC-16/CCITT-FALSE (polynomial 0x1021, initial 0xFFFF): the check at the end of each line. */
uint16_t ts_share_crc16(const uint8_t *data, size_t len);

/* The upper-case hex digit of n (0..15). */
char ts_share_hex_digit(unsigned n);

/* Whether s is exactly n hex digits, of either case. */
int ts_share_hex_ok(const char *s, size_t n);

/* n bytes from the 2n hex digits at s, already checked with ts_share_hex_ok(). */
void ts_share_hex_decode(const char *s, size_t n, uint8_t *out);

/* c in upper case if it is an ASCII letter. */
char ts_share_upper(char c);

/* Whether s is a valid instance name: 1 to TS_SHARE_NAME_MAX of [A-Za-z0-9._-]. */
int ts_share_name_ok(const char *s);

/* Whether s is YYYY-MM-DD with a month and day in range. */
int ts_share_date_ok(const char *s);

#endif
