/*
 * Unwrapping inside the token, shared by key import (p11_import.c) and backup restore
 * (p11_backup.c): a key-encryption key as an unwrap-only session object, and C_UnwrapKey of an
 * AES-KWP wrapped PKCS#8 EC key straight into a token private key.
 */
#include <errno.h>
#include <string.h>

#include "keystore/p11_internal.h"

enum { KEK_LEN = 32, PARAMS_MAX = 256 };

ts_err p11_kek_session(p11_store *st, const uint8_t kek[32], CK_OBJECT_HANDLE *out)
{
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE aes = CKK_AES;
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    CK_ATTRIBUTE tmpl[] = {
        ATTR(CKA_CLASS, &cls, sizeof cls),
        ATTR(CKA_KEY_TYPE, &aes, sizeof aes),
        ATTR(CKA_TOKEN, &no, 1),
        ATTR(CKA_SENSITIVE, &yes, 1),
        ATTR(CKA_EXTRACTABLE, &no, 1),
        ATTR(CKA_UNWRAP, &yes, 1),
        ATTR(CKA_WRAP, &no, 1),
        ATTR(CKA_ENCRYPT, &no, 1),
        ATTR(CKA_DECRYPT, &no, 1),
        ATTR(CKA_VALUE, (void *)kek, KEK_LEN),
    };
    CK_RV crv = st->f->C_CreateObject(st->session, tmpl, sizeof tmpl / sizeof tmpl[0], out);
    if (crv != CKR_OK) {
        *out = CK_INVALID_HANDLE;
        return p11_error(crv, "making the key-encryption key a session object");
    }
    return TS_OK;
}

ts_err p11_unwrap_ec_key(p11_store *st, const char *label, CK_OBJECT_HANDLE kek,
                         const uint8_t *wrapped, size_t wrapped_len, ts_curve curve, unsigned flags,
                         const uint8_t id[P11_ID_LEN], CK_OBJECT_HANDLE *priv)
{
    CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
    CK_KEY_TYPE ec = CKK_EC;
    CK_BBOOL yes = CK_TRUE;
    CK_BBOOL backup = (flags & TS_KEY_BACKUP) != 0 ? CK_TRUE : CK_FALSE;
    CK_MECHANISM kwp = {CKM_AES_KEY_WRAP_PAD, NULL, 0};
    CK_ATTRIBUTE tmpl[] = {
        ATTR(CKA_CLASS, &cls, sizeof cls),
        ATTR(CKA_KEY_TYPE, &ec, sizeof ec),
        ATTR(CKA_TOKEN, &yes, 1),
        ATTR(CKA_PRIVATE, &yes, 1),
        ATTR(CKA_SENSITIVE, &yes, 1),
        ATTR(CKA_EXTRACTABLE, &backup, 1),
        ATTR(CKA_SIGN, &yes, 1),
        ATTR(CKA_DERIVE, &yes, 1),
        ATTR(CKA_LABEL, (void *)label, strlen(label)),
        ATTR(CKA_ID, (void *)id, P11_ID_LEN),
    };
    uint8_t *params = NULL;
    size_t params_len = 0;
    ts_curve got;

    errno = 0;
    CK_RV crv = st->f->C_UnwrapKey(st->session, &kwp, kek, (CK_BYTE_PTR)wrapped,
                                   (CK_ULONG)wrapped_len, tmpl, sizeof tmpl / sizeof tmpl[0], priv);
    int err = errno;
    int no_room = err == EFBIG || err == ENOSPC || err == EDQUOT;
    if (crv != CKR_OK) {
        *priv = CK_INVALID_HANDLE;
    }
    if (crv == CKR_OK && no_room) {
        st->f->C_DestroyObject(st->session, *priv);
        *priv = CK_INVALID_HANDLE;
    }
    if (no_room || crv == CKR_DEVICE_MEMORY || crv == CKR_DEVICE_ERROR) {
        return p11_create_error(crv, err, "unwrapping key '%s'", label);
    }
    /* RFC 5649 section 3's integrity check failed (SoftHSM2 says CKR_GENERAL_ERROR), or what
     * it gave is no PKCS#8 key: another key-encryption key, or an altered blob. */
    if (crv == CKR_GENERAL_ERROR || crv == CKR_FUNCTION_FAILED || crv == CKR_WRAPPED_KEY_INVALID ||
        crv == CKR_WRAPPED_KEY_LEN_RANGE || crv == CKR_ENCRYPTED_DATA_INVALID ||
        crv == CKR_DATA_INVALID) {
        return ts_error_set(TS_ERR_AUTH,
                            "key '%s' fails the key wrap's integrity check: it was wrapped under "
                            "another key-encryption key, or altered (%s)",
                            label, p11_ckr_name(crv));
    }
    if (crv != CKR_OK) {
        return p11_error(crv, "C_UnwrapKey (CKM_AES_KEY_WRAP_PAD) of key '%s'", label);
    }
    ts_err rv = p11_get_attr(st, *priv, CKA_EC_PARAMS, &params, &params_len, PARAMS_MAX);
    if (rv == TS_OK) {
        rv = p11_curve_of_params(params, params_len, &got);
    }
    OPENSSL_free(params);
    if (rv == TS_OK && got != curve) {
        rv = ts_error_set(TS_ERR_AUTH, "key '%s' is on %s, not %s", label, ts_curve_name(got),
                          ts_curve_name(curve));
    }
    if (rv != TS_OK && rv != TS_ERR_AUTH) {
        rv = ts_error_prefix(TS_ERR_AUTH, "key '%s' is not a usable EC key", label);
    }
    return rv;
}
