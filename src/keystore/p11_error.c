/* PKCS#11 return values: their names for messages, and what each means as a ts_err. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "keystore/p11_internal.h"

#define CKR(name)                                                                                  \
    {                                                                                              \
        name, #name                                                                                \
    }

static const struct {
    CK_RV rv;
    const char *name;
} ckr_names[] = {
    CKR(CKR_OK),
    CKR(CKR_CANCEL),
    CKR(CKR_HOST_MEMORY),
    CKR(CKR_SLOT_ID_INVALID),
    CKR(CKR_GENERAL_ERROR),
    CKR(CKR_FUNCTION_FAILED),
    CKR(CKR_ARGUMENTS_BAD),
    CKR(CKR_NO_EVENT),
    CKR(CKR_NEED_TO_CREATE_THREADS),
    CKR(CKR_CANT_LOCK),
    CKR(CKR_ATTRIBUTE_READ_ONLY),
    CKR(CKR_ATTRIBUTE_SENSITIVE),
    CKR(CKR_ATTRIBUTE_TYPE_INVALID),
    CKR(CKR_ATTRIBUTE_VALUE_INVALID),
    CKR(CKR_ACTION_PROHIBITED),
    CKR(CKR_DATA_INVALID),
    CKR(CKR_DATA_LEN_RANGE),
    CKR(CKR_DEVICE_ERROR),
    CKR(CKR_DEVICE_MEMORY),
    CKR(CKR_DEVICE_REMOVED),
    CKR(CKR_ENCRYPTED_DATA_INVALID),
    CKR(CKR_ENCRYPTED_DATA_LEN_RANGE),
    CKR(CKR_FUNCTION_CANCELED),
    CKR(CKR_FUNCTION_NOT_PARALLEL),
    CKR(CKR_FUNCTION_NOT_SUPPORTED),
    CKR(CKR_KEY_HANDLE_INVALID),
    CKR(CKR_KEY_SIZE_RANGE),
    CKR(CKR_KEY_TYPE_INCONSISTENT),
    CKR(CKR_KEY_NOT_NEEDED),
    CKR(CKR_KEY_CHANGED),
    CKR(CKR_KEY_NEEDED),
    CKR(CKR_KEY_INDIGESTIBLE),
    CKR(CKR_KEY_FUNCTION_NOT_PERMITTED),
    CKR(CKR_KEY_NOT_WRAPPABLE),
    CKR(CKR_KEY_UNEXTRACTABLE),
    CKR(CKR_MECHANISM_INVALID),
    CKR(CKR_MECHANISM_PARAM_INVALID),
    CKR(CKR_OBJECT_HANDLE_INVALID),
    CKR(CKR_OPERATION_ACTIVE),
    CKR(CKR_OPERATION_NOT_INITIALIZED),
    CKR(CKR_PIN_INCORRECT),
    CKR(CKR_PIN_INVALID),
    CKR(CKR_PIN_LEN_RANGE),
    CKR(CKR_PIN_EXPIRED),
    CKR(CKR_PIN_LOCKED),
    CKR(CKR_SESSION_CLOSED),
    CKR(CKR_SESSION_COUNT),
    CKR(CKR_SESSION_HANDLE_INVALID),
    CKR(CKR_SESSION_PARALLEL_NOT_SUPPORTED),
    CKR(CKR_SESSION_READ_ONLY),
    CKR(CKR_SESSION_EXISTS),
    CKR(CKR_SESSION_READ_ONLY_EXISTS),
    CKR(CKR_SESSION_READ_WRITE_SO_EXISTS),
    CKR(CKR_SIGNATURE_INVALID),
    CKR(CKR_SIGNATURE_LEN_RANGE),
    CKR(CKR_TEMPLATE_INCOMPLETE),
    CKR(CKR_TEMPLATE_INCONSISTENT),
    CKR(CKR_TOKEN_NOT_PRESENT),
    CKR(CKR_TOKEN_NOT_RECOGNIZED),
    CKR(CKR_TOKEN_WRITE_PROTECTED),
    CKR(CKR_UNWRAPPING_KEY_SIZE_RANGE),
    CKR(CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT),
    CKR(CKR_USER_ALREADY_LOGGED_IN),
    CKR(CKR_USER_NOT_LOGGED_IN),
    CKR(CKR_USER_PIN_NOT_INITIALIZED),
    CKR(CKR_USER_TYPE_INVALID),
    CKR(CKR_USER_ANOTHER_ALREADY_LOGGED_IN),
    CKR(CKR_USER_TOO_MANY_TYPES),
    CKR(CKR_WRAPPED_KEY_INVALID),
    CKR(CKR_WRAPPED_KEY_LEN_RANGE),
    CKR(CKR_WRAPPING_KEY_HANDLE_INVALID),
    CKR(CKR_WRAPPING_KEY_SIZE_RANGE),
    CKR(CKR_WRAPPING_KEY_TYPE_INCONSISTENT),
    CKR(CKR_RANDOM_SEED_NOT_SUPPORTED),
    CKR(CKR_RANDOM_NO_RNG),
    CKR(CKR_DOMAIN_PARAMS_INVALID),
    CKR(CKR_CURVE_NOT_SUPPORTED),
    CKR(CKR_BUFFER_TOO_SMALL),
    CKR(CKR_SAVED_STATE_INVALID),
    CKR(CKR_INFORMATION_SENSITIVE),
    CKR(CKR_STATE_UNSAVEABLE),
    CKR(CKR_CRYPTOKI_NOT_INITIALIZED),
    CKR(CKR_CRYPTOKI_ALREADY_INITIALIZED),
    CKR(CKR_MUTEX_BAD),
    CKR(CKR_MUTEX_NOT_LOCKED),
    CKR(CKR_NEW_PIN_MODE),
    CKR(CKR_NEXT_OTP),
    CKR(CKR_EXCEEDED_MAX_ITERATIONS),
    CKR(CKR_FIPS_SELF_TEST_FAILED),
    CKR(CKR_LIBRARY_LOAD_FAILED),
    CKR(CKR_PIN_TOO_WEAK),
    CKR(CKR_PUBLIC_KEY_INVALID),
    CKR(CKR_FUNCTION_REJECTED),
};

const char *p11_ckr_name(CK_RV rv)
{
    static _Thread_local char unknown[32];
    for (size_t i = 0; i < sizeof ckr_names / sizeof ckr_names[0]; i++) {
        if (ckr_names[i].rv == rv) {
            return ckr_names[i].name;
        }
    }
    snprintf(unknown, sizeof unknown, "CKR_0x%08lx", (unsigned long)rv);
    return unknown;
}

ts_err p11_ckr_code(CK_RV rv)
{
    switch (rv) {
    case CKR_OK:
        return TS_OK;
    case CKR_HOST_MEMORY:
        return TS_ERR_NOMEM;
    case CKR_PIN_INCORRECT:
    case CKR_PIN_INVALID:
    case CKR_PIN_LEN_RANGE:
    case CKR_PIN_EXPIRED:
    case CKR_USER_PIN_NOT_INITIALIZED:
        return TS_ERR_PIN;
    case CKR_PIN_LOCKED:
        return TS_ERR_PIN_LOCKED;
    case CKR_DEVICE_MEMORY:
        return TS_ERR_FULL;
    case CKR_SLOT_ID_INVALID:
    case CKR_TOKEN_NOT_PRESENT:
    case CKR_TOKEN_NOT_RECOGNIZED:
    case CKR_DEVICE_REMOVED:
        return TS_ERR_NO_TOKEN;
    case CKR_MECHANISM_INVALID:
    case CKR_MECHANISM_PARAM_INVALID:
    case CKR_FUNCTION_NOT_SUPPORTED:
    case CKR_CURVE_NOT_SUPPORTED:
    case CKR_DOMAIN_PARAMS_INVALID:
    case CKR_KEY_SIZE_RANGE:
    case CKR_TOKEN_WRITE_PROTECTED:
        return TS_ERR_UNSUPPORTED;
    case CKR_SIGNATURE_INVALID:
    case CKR_WRAPPED_KEY_INVALID:
    case CKR_WRAPPED_KEY_LEN_RANGE:
    case CKR_ENCRYPTED_DATA_INVALID:
        return TS_ERR_AUTH;
    case CKR_USER_NOT_LOGGED_IN:
    case CKR_CRYPTOKI_NOT_INITIALIZED:
    case CKR_SESSION_HANDLE_INVALID:
    case CKR_SESSION_CLOSED:
    case CKR_OPERATION_ACTIVE:
        return TS_ERR_STATE;
    case CKR_OBJECT_HANDLE_INVALID:
    case CKR_KEY_HANDLE_INVALID:
        return TS_ERR_NOT_FOUND;
    default:
        return TS_ERR_BACKEND;
    }
}

static ts_err vset(ts_err code, CK_RV rv, const char *extra, const char *fmt, va_list ap)
    TS_PRINTF(4, 0);

static ts_err vset(ts_err code, CK_RV rv, const char *extra, const char *fmt, va_list ap)
{
    char what[512];
    vsnprintf(what, sizeof what, fmt, ap);
    return ts_error_set(code, "%s: %s%s (%s)", what,
                        rv == CKR_PIN_INCORRECT ? "wrong PIN"
                        : rv == CKR_PIN_LOCKED  ? "the PIN is locked after too many wrong tries"
                                                : "the token refused",
                        extra, p11_ckr_name(rv));
}

ts_err p11_error(CK_RV rv, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ts_err code = vset(p11_ckr_code(rv), rv, "", fmt, ap);
    va_end(ap);
    return code;
}

ts_err p11_create_error(CK_RV rv, int err, const char *fmt, ...)
{
    char what[512];
    va_list ap;
    int no_room = err == EFBIG || err == ENOSPC || err == EDQUOT;

    va_start(ap, fmt);
    if (rv != CKR_DEVICE_MEMORY && rv != CKR_DEVICE_ERROR && !no_room) {
        ts_err code = vset(p11_ckr_code(rv), rv, "", fmt, ap);
        va_end(ap);
        return code;
    }
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    if (no_room && rv == CKR_OK) {
        /* SoftHSM2 answers CKR_OK when the file of a new object cannot be written. */
        return ts_error_set(TS_ERR_FULL,
                            "%s: the token has no room for another object (the module answered "
                            "CKR_OK but could not store it: %s)",
                            what, strerror(err));
    }
    if (no_room) {
        return ts_error_set(TS_ERR_FULL, "%s: the token has no room for another object (%s: %s)",
                            what, p11_ckr_name(rv), strerror(err));
    }
    return ts_error_set(TS_ERR_FULL, "%s: the token has no room for another object (%s)", what,
                        p11_ckr_name(rv));
}
