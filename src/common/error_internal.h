/* Setting the thread-local error message behind ts_error_message(). */
#ifndef TS_COMMON_ERROR_INTERNAL_H
#define TS_COMMON_ERROR_INTERNAL_H

#include "tessera/error.h"

#define TS_PRINTF(f, a) __attribute__((format(printf, f, a)))

/* Sets the message and returns code, so failures read: return ts_error_set(TS_ERR_X, "..."). */
ts_err ts_error_set(ts_err code, const char *fmt, ...) TS_PRINTF(2, 3);

/* As ts_error_set(), then appends ": " and the drained OpenSSL error queue, if any. */
ts_err ts_error_set_openssl(ts_err code, const char *fmt, ...) TS_PRINTF(2, 3);

/* Puts context before the current message ("context: message") and returns code. */
ts_err ts_error_prefix(ts_err code, const char *fmt, ...) TS_PRINTF(2, 3);

/* Empties the message and the OpenSSL error queue. */
void ts_error_clear(void);

#endif
