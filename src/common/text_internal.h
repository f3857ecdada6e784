/* Small text helpers shared by the parts: random hex strings and URI escaping. */
#ifndef TS_COMMON_TEXT_INTERNAL_H
#define TS_COMMON_TEXT_INTERNAL_H

#include <stddef.h>

#include "tessera/error.h"

enum { TS_RANDOM_HEX_MAX = 64 }; /* bytes ts_random_hex() makes at most */

/* n random bytes (at most TS_RANDOM_HEX_MAX) from the CSPRNG as 2n lower-case hex digits and a
 * NUL, into hex (2n + 1 bytes). For PINs, ids and file names. */
ts_err ts_random_hex(char *hex, size_t n);

/*
 * Percent-encodes text for a URI path or query value (RFC 3986 section 2.1; RFC 7512 section 2.3
 * for key-store URIs): unreserved characters and '/' stay, every other byte becomes %XX.
 * TS_ERR_INVALID when out (size bytes) is too small.
 */
ts_err ts_uri_escape(const char *text, char *out, size_t size);

#endif
