/*
 * One error convention for all of Tessera.
 *
 * Every fallible public call returns a ts_err. TS_OK is zero; everything else is a failure whose
 * words are in ts_error_message(), a thread-local string that says what failed and why. The
 * numbers are stable: a code is never renumbered or reused, only added at the end.
 */
#ifndef TESSERA_ERROR_H
#define TESSERA_ERROR_H

#include "tessera/export.h"

typedef enum ts_err {
    TS_OK = 0,
    TS_ERR_INVALID = 1,      /* a bad argument or malformed input */
    TS_ERR_URI = 2,          /* a key-store URI that does not parse or names nothing usable */
    TS_ERR_PIN = 3,          /* wrong or missing PIN */
    TS_ERR_PIN_LOCKED = 4,   /* too many wrong PINs */
    TS_ERR_MODULE = 5,       /* the PKCS#11 module cannot be loaded or initialised */
    TS_ERR_NO_TOKEN = 6,     /* no token matches the URI */
    TS_ERR_NOT_FOUND = 7,    /* no object with that label */
    TS_ERR_EXISTS = 8,       /* an object with that label already exists */
    TS_ERR_FULL = 9,         /* the store has no room for another object */
    TS_ERR_IO = 10,          /* a file could not be read or written */
    TS_ERR_CORRUPT = 11,     /* stored data is malformed or fails its integrity check */
    TS_ERR_CRYPTO = 12,      /* a cryptographic operation failed */
    TS_ERR_AUTH = 13,        /* a signature or authentication tag does not verify */
    TS_ERR_REPLAY = 14,      /* a message was already used (its counter is not fresh) */
    TS_ERR_FOREIGN = 15,     /* a message is bound to another store or device */
    TS_ERR_ROLLBACK = 16,    /* a counter or version would go backwards */
    TS_ERR_UNSUPPORTED = 17, /* the backend or token cannot do this */
    TS_ERR_NOMEM = 18,       /* out of memory */
    TS_ERR_BACKEND = 19,     /* the token or backend failed for another reason */
    TS_ERR_WRONG_TYPE = 20,  /* the label names an object of another kind */
    TS_ERR_STATE = 21,       /* the call is not valid in the current state */
    TS_ERR_POLICY = 22,      /* refused by a certificate profile or CSR policy rule */
    TS_ERR_STORE = 23,       /* the database failed */
    TS_ERR_CONFLICT = 24,    /* a concurrent change or a unique value taken; may be retried */
    TS_ERR_DENIED = 25,      /* authenticated, but the role may not do this */
    TS_ERR_LIMIT = 26,       /* a size, rate or count limit was exceeded */
    TS_ERR_EXPIRED = 27,     /* a message or credential is past its expiry time */
} ts_err;

/* The message of the last failure on this thread; never NULL. Valid until the next failure. */
TS_API const char *ts_error_message(void);

/* A short stable name for a code, such as "not found". */
TS_API const char *ts_err_name(ts_err err);

#endif
