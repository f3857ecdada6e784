/* The thread-local error message: what failed and why, in words a user can act on. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>

#include "common/error_internal.h"

enum { TS_ERROR_MESSAGE_MAX = 1024 };

static _Thread_local char error_message[TS_ERROR_MESSAGE_MAX];

const char *ts_error_message(void)
{
    return error_message[0] != '\0' ? error_message : "no error";
}

const char *ts_err_name(ts_err err)
{
    static const char *const names[] = {
        [TS_OK] = "ok",
        [TS_ERR_INVALID] = "invalid input",
        [TS_ERR_URI] = "bad key-store URI",
        [TS_ERR_PIN] = "wrong PIN",
        [TS_ERR_PIN_LOCKED] = "PIN locked",
        [TS_ERR_MODULE] = "PKCS#11 module unavailable",
        [TS_ERR_NO_TOKEN] = "no such token",
        [TS_ERR_NOT_FOUND] = "not found",
        [TS_ERR_EXISTS] = "already exists",
        [TS_ERR_FULL] = "store full",
        [TS_ERR_IO] = "I/O error",
        [TS_ERR_CORRUPT] = "corrupt data",
        [TS_ERR_CRYPTO] = "cryptographic failure",
        [TS_ERR_AUTH] = "authentication failed",
        [TS_ERR_REPLAY] = "replayed",
        [TS_ERR_FOREIGN] = "meant for another store",
        [TS_ERR_ROLLBACK] = "rollback refused",
        [TS_ERR_UNSUPPORTED] = "unsupported",
        [TS_ERR_NOMEM] = "out of memory",
        [TS_ERR_BACKEND] = "backend failure",
        [TS_ERR_WRONG_TYPE] = "wrong object type",
        [TS_ERR_STATE] = "invalid state",
        [TS_ERR_POLICY] = "refused by policy",
        [TS_ERR_STORE] = "database failure",
        [TS_ERR_CONFLICT] = "conflict",
        [TS_ERR_DENIED] = "denied",
        [TS_ERR_LIMIT] = "limit exceeded",
        [TS_ERR_EXPIRED] = "expired",
    };
    if ((size_t)err >= sizeof names / sizeof names[0] || names[err] == NULL) {
        return "unknown error";
    }
    return names[err];
}

static void append_openssl_errors(char *buf, size_t size)
{
    unsigned long e;
    const char *data;
    int flags;
    size_t used = strlen(buf);
    int first = 1;

    while ((e = ERR_get_error_all(NULL, NULL, NULL, &data, &flags)) != 0) {
        char reason[256];
        if (used + 4 >= size) {
            continue; /* keep draining so the queue is empty */
        }
        ERR_error_string_n(e, reason, sizeof reason);
        const char *why = ERR_reason_error_string(e);
        int n = snprintf(buf + used, size - used, "%s%s%s%s", first ? ": " : "; ",
                         why != NULL ? why : reason,
                         (flags & ERR_TXT_STRING) && data[0] != '\0' ? " " : "",
                         (flags & ERR_TXT_STRING) ? data : "");
        if (n > 0) {
            used += (size_t)n < size - used ? (size_t)n : size - used - 1;
        }
        first = 0;
    }
}

ts_err ts_error_set(ts_err code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(error_message, sizeof error_message, fmt, ap);
    va_end(ap);
    return code;
}

ts_err ts_error_set_openssl(ts_err code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(error_message, sizeof error_message, fmt, ap);
    va_end(ap);
    append_openssl_errors(error_message, sizeof error_message);
    return code;
}

ts_err ts_error_prefix(ts_err code, const char *fmt, ...)
{
    char joined[TS_ERROR_MESSAGE_MAX];
    char rest[TS_ERROR_MESSAGE_MAX];
    va_list ap;

    snprintf(rest, sizeof rest, "%s", ts_error_message());
    va_start(ap, fmt);
    int n = vsnprintf(joined, sizeof joined, fmt, ap);
    va_end(ap);
    if (n >= 0 && (size_t)n + 2 < sizeof joined) {
        size_t used = (size_t)n;
        joined[used++] = ':';
        joined[used++] = ' ';
        size_t room = sizeof joined - used - 1;
        size_t len = strnlen(rest, room);
        memcpy(joined + used, rest, len);
        joined[used + len] = '\0';
    }
    memcpy(error_message, joined, sizeof error_message);
    return code;
}

void ts_error_clear(void)
{
    error_message[0] = '\0';
    ERR_clear_error();
}
