/*
 * Key backup on a token, for the key ceremony (docs/ceremony.md).
 *
 * A key made with TS_KEY_BACKUP is CKA_SENSITIVE and CKA_EXTRACTABLE: the token never gives its
 * value, only C_WrapKey may take it out, encrypted (PKCS#11 v2.40 section 4.9).
 *
 * Backup: C_GenerateKey CKM_AES_KEY_GEN makes a 256-bit session key that can only wrap; C_WrapKey
 * CKM_AES_KEY_WRAP_PAD (RFC 5649) wraps the private key's PKCS#8 PrivateKeyInfo under it; the
 * KEK's value is then read, to be split into shares, and the session key destroyed. That KEK is
 * not sensitive on purpose: the ceremony exists to take it out, split.
 *
 * Restore: the KEK becomes a session key that can only unwrap; C_UnwrapKey puts the private key
 * straight into a token object (extractable again only when restored with TS_KEY_BACKUP); its
 * public key object is made from the expected point, and a signature proves they belong
 * together. On any failure every object made here is destroyed.
 */
#include <errno.h>
#include <string.h>

#include <openssl/crypto.h>

#include "keystore/p11_internal.h"

enum { KEK_LEN = 32, WRAPPED_MAX = 4096 };

static void destroy(p11_store *st, CK_OBJECT_HANDLE *h)
{
    if (*h != CK_INVALID_HANDLE) {
        st->f->C_DestroyObject(st->session, *h);
        *h = CK_INVALID_HANDLE;
    }
}

/* Whether the key was made for backup: sensitive, and extractable. */
static ts_err check_backup_key(p11_store *st, const char *label, CK_OBJECT_HANDLE priv)
{
    CK_BBOOL sensitive = CK_FALSE, extractable = CK_FALSE;
    CK_ATTRIBUTE a[] = {ATTR(CKA_SENSITIVE, &sensitive, 1), ATTR(CKA_EXTRACTABLE, &extractable, 1)};
    CK_RV crv = st->f->C_GetAttributeValue(st->session, priv, a, 2);

    if (crv != CKR_OK) {
        return p11_error(crv, "reading the attributes of key '%s'", label);
    }
    if (!extractable) {
        return ts_error_set(TS_ERR_POLICY, "key '%s' was not made for backup", label);
    }
    if (!sensitive) {
        /* Not one Tessera made: its value could be read in clear, which a backup key must not. */
        return ts_error_set(TS_ERR_POLICY,
                            "key '%s' was not made for backup: it is not CKA_SENSITIVE", label);
    }
    return TS_OK;
}

/* A fresh session AES-256 key that can wrap and nothing else, whose value can be read. */
static ts_err kek_generate(p11_store *st, CK_OBJECT_HANDLE *kek)
{
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE aes = CKK_AES;
    CK_ULONG len = KEK_LEN;
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    CK_MECHANISM gen = {CKM_AES_KEY_GEN, NULL, 0};
    CK_ATTRIBUTE tmpl[] = {
        ATTR(CKA_CLASS, &cls, sizeof cls), ATTR(CKA_KEY_TYPE, &aes, sizeof aes),
        ATTR(CKA_TOKEN, &no, 1),           ATTR(CKA_VALUE_LEN, &len, sizeof len),
        ATTR(CKA_WRAP, &yes, 1),           ATTR(CKA_UNWRAP, &no, 1),
        ATTR(CKA_ENCRYPT, &no, 1),         ATTR(CKA_DECRYPT, &no, 1),
        ATTR(CKA_SENSITIVE, &no, 1),       ATTR(CKA_EXTRACTABLE, &yes, 1),
    };
    CK_RV crv = st->f->C_GenerateKey(st->session, &gen, tmpl, sizeof tmpl / sizeof tmpl[0], kek);
    if (crv != CKR_OK) {
        *kek = CK_INVALID_HANDLE;
        return p11_error(crv, "generating the key-encryption key (CKM_AES_KEY_GEN)");
    }
    return TS_OK;
}

/* C_WrapKey with CKM_AES_KEY_WRAP_PAD, sized by a first call without a buffer. */
static ts_err wrap_key(p11_store *st, CK_OBJECT_HANDLE kek, CK_OBJECT_HANDLE priv,
                       uint8_t **wrapped, size_t *wrapped_len)
{
    CK_MECHANISM kwp = {CKM_AES_KEY_WRAP_PAD, NULL, 0};
    CK_ULONG len = 0;
    uint8_t *out = NULL;

    CK_RV crv = st->f->C_WrapKey(st->session, &kwp, kek, priv, NULL, &len);
    if (crv == CKR_OK && (len < 16 || len > WRAPPED_MAX)) {
        return ts_error_set(TS_ERR_BACKEND, "the token would wrap the key into %lu bytes",
                            (unsigned long)len);
    }
    if (crv == CKR_OK) {
        out = OPENSSL_malloc(len);
        if (out == NULL) {
            return ts_error_set(TS_ERR_NOMEM, "out of memory wrapping a key");
        }
        crv = st->f->C_WrapKey(st->session, &kwp, kek, priv, out, &len);
    }
    if (crv != CKR_OK) {
        OPENSSL_free(out);
        return p11_error(crv, "C_WrapKey (CKM_AES_KEY_WRAP_PAD)");
    }
    *wrapped = out;
    *wrapped_len = len;
    return TS_OK;
}

ts_err p11_backup_key(void *state, const char *label, uint8_t kek[32], uint8_t **wrapped,
                      size_t *wrapped_len)
{
    p11_store *st = state;
    p11_key_entry *key = NULL;
    CK_OBJECT_HANDLE k = CK_INVALID_HANDLE;
    uint8_t *value = NULL;
    size_t value_len = 0;
    ts_err rv = p11_key_lookup(st, label, &key);

    if (rv == TS_OK) {
        rv = check_backup_key(st, label, key->priv);
    }
    if (rv == TS_OK) {
        rv = kek_generate(st, &k);
    }
    if (rv == TS_OK) {
        rv = wrap_key(st, k, key->priv, wrapped, wrapped_len);
    }
    if (rv == TS_OK) {
        rv = p11_get_attr(st, k, CKA_VALUE, &value, &value_len, KEK_LEN);
    }
    if (rv == TS_OK && value_len != KEK_LEN) {
        rv = ts_error_set(TS_ERR_BACKEND, "the token made a %zu-byte AES key, not %d", value_len,
                          KEK_LEN);
    }
    if (rv == TS_OK) {
        memcpy(kek, value, KEK_LEN);
    }
    OPENSSL_clear_free(value, value_len);
    destroy(st, &k);
    if (rv != TS_OK) {
        OPENSSL_free(*wrapped);
        *wrapped = NULL;
        *wrapped_len = 0;
        if (rv == TS_ERR_NOT_FOUND && key != NULL) {
            p11_key_forget(st, label); /* a stale cached handle: look again next time */
        }
        return ts_error_prefix(rv, "backup of key '%s' on token '%s'", label, st->token_label);
    }
    return TS_OK;
}

ts_err p11_restore_key(void *state, const char *label, const uint8_t kek[32],
                       const uint8_t *wrapped, size_t wrapped_len, ts_curve curve,
                       const uint8_t *public_point, size_t public_point_len, unsigned flags)
{
    p11_store *st = state;
    p11_found found[P11_LABEL_OBJECTS];
    CK_OBJECT_HANDLE k = CK_INVALID_HANDLE, priv = CK_INVALID_HANDLE, pub = CK_INVALID_HANDLE;
    uint8_t id[P11_ID_LEN];
    size_t n = 0;
    ts_err rv = p11_usable(st);

    if (rv == TS_OK && (wrapped_len > WRAPPED_MAX || public_point_len > TS_POINT_MAX)) {
        rv = ts_error_set(TS_ERR_INVALID, "a wrapped key or public point is too long");
    }
    if (rv == TS_OK) {
        rv = p11_find_label(st, label, found, &n);
    }
    if (rv == TS_OK && n > 0) {
        rv = ts_error_set(TS_ERR_EXISTS, "label '%s' is taken by %s", label,
                          p11_kind_name(p11_label_kind(found, n)));
    }
    if (rv == TS_OK) {
        rv = p11_random(st, id, sizeof id);
    }
    if (rv == TS_OK) {
        rv = p11_kek_session(st, kek, &k);
    }
    if (rv == TS_OK) {
        rv = p11_unwrap_ec_key(st, label, k, wrapped, wrapped_len, curve, flags, id, &priv);
    }
    if (rv == TS_OK) {
        rv = p11_make_public(st, label, curve, public_point, public_point_len, id, &pub);
    }
    if (rv == TS_OK) {
        rv = p11_prove_pair(st, priv, curve, public_point, public_point_len);
    }
    destroy(st, &k);
    if (rv != TS_OK) {
        destroy(st, &priv);
        destroy(st, &pub);
        return ts_error_prefix(rv, "restore of key '%s' into token '%s'", label, st->token_label);
    }
    p11_key_forget(st, label);
    return TS_OK;
}
