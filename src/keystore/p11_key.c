/*
 * EC key pairs in the token: generation, the public half, ECDSA and ECDH.
 *
 * Signing is the hot path (a TLS server signs every handshake through it), so each label's
 * object handles are cached and a signature costs C_SignInit and C_Sign only. A handle the
 * token no longer knows (the key was deleted by another process) is looked up once more.
 */
#include <errno.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/objects.h>

#include "keystore/p11_internal.h"

enum { POINT_DER_MAX = TS_POINT_MAX + 8, PARAMS_MAX = 256 };

static size_t field_len(ts_curve curve)
{
    return curve == TS_CURVE_P384 ? 48 : 32;
}

ts_err p11_ec_params(ts_curve curve, uint8_t **der, size_t *len)
{
    /* CKA_EC_PARAMS (PKCS#11 v2.40 section 2.3.3): DER of ECParameters, here a namedCurve OID. */
    ASN1_OBJECT *oid = OBJ_nid2obj(curve == TS_CURVE_P384 ? NID_secp384r1 : NID_X9_62_prime256v1);
    unsigned char *out = NULL;
    int n = oid != NULL ? i2d_ASN1_OBJECT(oid, &out) : -1;

    *der = NULL;
    *len = 0;
    if (n <= 0) {
        return ts_error_set_openssl(TS_ERR_CRYPTO, "cannot encode the %s curve OID",
                                    ts_curve_name(curve));
    }
    *der = out;
    *len = (size_t)n;
    return TS_OK;
}

ts_err p11_curve_of_params(const uint8_t *der, size_t len, ts_curve *curve)
{
    const unsigned char *p = der;
    ASN1_OBJECT *oid = d2i_ASN1_OBJECT(NULL, &p, (long)len);
    int nid = oid != NULL && p == der + len ? OBJ_obj2nid(oid) : NID_undef;

    ASN1_OBJECT_free(oid);
    if (nid == NID_X9_62_prime256v1) {
        *curve = TS_CURVE_P256;
    } else if (nid == NID_secp384r1) {
        *curve = TS_CURVE_P384;
    } else {
        return ts_error_set(TS_ERR_UNSUPPORTED, "the key's CKA_EC_PARAMS name a curve other than "
                                                "P-256 and P-384");
    }
    return TS_OK;
}

ts_err p11_random(void *state, uint8_t *buf, size_t len)
{
    p11_store *st = state;
    ts_err rv = p11_usable(st);
    if (rv != TS_OK) {
        return rv;
    }
    while (len > 0) {
        CK_ULONG chunk = len > 65536 ? 65536 : (CK_ULONG)len;
        CK_RV crv = st->f->C_GenerateRandom(st->session, buf, chunk);
        if (crv != CKR_OK) {
            return p11_error(crv, "C_GenerateRandom on token '%s'", st->token_label);
        }
        buf += chunk;
        len -= chunk;
    }
    return TS_OK;
}

/* --- handle cache -------------------------------------------------------------------------- */

void p11_key_forget(p11_store *st, const char *label)
{
    for (size_t i = 0; i < st->nkeys; i++) {
        if (strcmp(st->keys[i].label, label) == 0) {
            st->keys[i] = st->keys[--st->nkeys];
            return;
        }
    }
}

static p11_key_entry *cache_put(p11_store *st, const char *label, CK_OBJECT_HANDLE priv,
                                CK_OBJECT_HANDLE pub, ts_curve curve)
{
    p11_key_forget(st, label);
    if (st->nkeys == P11_KEY_CACHE_MAX) {
        st->nkeys = 0; /* rare: start over rather than track use */
    }
    p11_key_entry *e = &st->keys[st->nkeys++];
    memcpy(e->label, label, strlen(label) + 1);
    e->priv = priv;
    e->pub = pub;
    e->curve = curve;
    return e;
}

/* The public half that goes with priv: same label, and same CKA_ID where there are several. */
static CK_OBJECT_HANDLE match_public(p11_store *st, CK_OBJECT_HANDLE priv, const p11_found *found,
                                     size_t n)
{
    CK_OBJECT_HANDLE only = CK_INVALID_HANDLE;
    uint8_t *id = NULL;
    size_t id_len = 0, pubs = 0;

    for (size_t i = 0; i < n; i++) {
        pubs += found[i].kind == P11_PUB;
        if (found[i].kind == P11_PUB && only == CK_INVALID_HANDLE) {
            only = found[i].handle;
        }
    }
    if (pubs <= 1 || p11_get_attr(st, priv, CKA_ID, &id, &id_len, 256) != TS_OK) {
        OPENSSL_free(id);
        return only;
    }
    for (size_t i = 0; i < n; i++) {
        uint8_t *other = NULL;
        size_t other_len = 0;
        if (found[i].kind == P11_PUB &&
            p11_get_attr(st, found[i].handle, CKA_ID, &other, &other_len, 256) == TS_OK &&
            other_len == id_len && memcmp(other, id, id_len) == 0) {
            only = found[i].handle;
        }
        OPENSSL_free(other);
    }
    OPENSSL_free(id);
    return only;
}

ts_err p11_key_lookup(p11_store *st, const char *label, p11_key_entry **out)
{
    p11_found found[P11_LABEL_OBJECTS];
    CK_OBJECT_HANDLE priv = CK_INVALID_HANDLE;
    size_t n = 0, privs = 0;
    uint8_t *params = NULL;
    size_t params_len = 0;
    ts_curve curve;
    ts_err rv = p11_usable(st);

    if (rv != TS_OK) {
        return rv;
    }
    for (size_t i = 0; i < st->nkeys; i++) {
        if (strcmp(st->keys[i].label, label) == 0) {
            *out = &st->keys[i];
            return TS_OK;
        }
    }
    rv = p11_find_label(st, label, found, &n);
    if (rv != TS_OK) {
        return rv;
    }
    for (size_t i = 0; i < n; i++) {
        if (found[i].kind == P11_PRIV) {
            priv = found[i].handle;
            privs++;
        }
    }
    p11_kind kind = p11_label_kind(found, n);
    if (kind == P11_NONE) {
        return ts_error_set(TS_ERR_NOT_FOUND, "no key '%s' on token '%s'", label, st->token_label);
    }
    if (privs == 0) {
        return ts_error_set(kind == P11_PRIV ? TS_ERR_NOT_FOUND : TS_ERR_WRONG_TYPE,
                            "'%s' on token '%s' is %s without a private key", label,
                            st->token_label, p11_kind_name(kind));
    }
    if (privs > 1) {
        return ts_error_set(TS_ERR_CORRUPT, "token '%s' holds %zu private keys labelled '%s'",
                            st->token_label, privs, label);
    }
    rv = p11_get_attr(st, priv, CKA_EC_PARAMS, &params, &params_len, PARAMS_MAX);
    if (rv == TS_OK) {
        rv = p11_curve_of_params(params, params_len, &curve);
    }
    OPENSSL_free(params);
    if (rv != TS_OK) {
        return ts_error_prefix(rv, "key '%s'", label);
    }
    *out = cache_put(st, label, priv, match_public(st, priv, found, n), curve);
    return TS_OK;
}

/* --- operations ---------------------------------------------------------------------------- */

ts_err p11_generate(void *state, const char *label, ts_curve curve, unsigned flags)
{
    p11_store *st = state;
    p11_found found[P11_LABEL_OBJECTS];
    CK_OBJECT_HANDLE pub = CK_INVALID_HANDLE, priv = CK_INVALID_HANDLE;
    CK_MECHANISM mech = {CKM_EC_KEY_PAIR_GEN, NULL, 0};
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    CK_BBOOL backup = (flags & TS_KEY_BACKUP) != 0 ? CK_TRUE : CK_FALSE;
    uint8_t id[P11_ID_LEN];
    uint8_t *params = NULL;
    size_t params_len = 0, n = 0;
    ts_err rv = p11_find_label(st, label, found, &n);

    if (rv == TS_OK && n > 0) {
        rv = ts_error_set(TS_ERR_EXISTS, "label '%s' is taken by %s on token '%s'", label,
                          p11_kind_name(p11_label_kind(found, n)), st->token_label);
    }
    if (rv == TS_OK) {
        rv = p11_random(st, id, sizeof id);
    }
    if (rv == TS_OK) {
        rv = p11_ec_params(curve, &params, &params_len);
    }
    if (rv != TS_OK) {
        return rv;
    }
    CK_ATTRIBUTE pub_tmpl[] = {
        ATTR(CKA_TOKEN, &yes, 1),
        ATTR(CKA_PRIVATE, &no, 1),
        ATTR(CKA_VERIFY, &yes, 1),
        ATTR(CKA_EC_PARAMS, params, params_len),
        ATTR(CKA_LABEL, label, strlen(label)),
        ATTR(CKA_ID, id, sizeof id),
    };
    /*
     * The private key never leaves the token in clear: it is sensitive. It is not extractable
     * either, unless it is made for backup: then C_WrapKey may take it out, encrypted
     * (PKCS#11 v2.40 section 4.9: an extractable, sensitive key can only be wrapped).
     */
    CK_ATTRIBUTE priv_tmpl[] = {
        ATTR(CKA_TOKEN, &yes, 1),
        ATTR(CKA_PRIVATE, &yes, 1),
        ATTR(CKA_SENSITIVE, &yes, 1),
        ATTR(CKA_EXTRACTABLE, &backup, 1),
        ATTR(CKA_SIGN, &yes, 1),
        ATTR(CKA_DERIVE, &yes, 1),
        ATTR(CKA_LABEL, label, strlen(label)),
        ATTR(CKA_ID, id, sizeof id),
    };
    errno = 0;
    CK_RV crv =
        st->f->C_GenerateKeyPair(st->session, &mech, pub_tmpl, sizeof pub_tmpl / sizeof pub_tmpl[0],
                                 priv_tmpl, sizeof priv_tmpl / sizeof priv_tmpl[0], &pub, &priv);
    int err = errno;
    OPENSSL_free(params);
    if (crv == CKR_OK && (err == EFBIG || err == ENOSPC || err == EDQUOT)) {
        st->f->C_DestroyObject(st->session, priv);
        st->f->C_DestroyObject(st->session, pub);
    }
    if (crv != CKR_OK || err == EFBIG || err == ENOSPC || err == EDQUOT) {
        return p11_create_error(crv, err, "generating %s key '%s' on token '%s'",
                                ts_curve_name(curve), label, st->token_label);
    }
    cache_put(st, label, priv, pub, curve);
    return TS_OK;
}

/* CKA_EC_POINT is a DER OCTET STRING around the X9.62 point; some tokens give the bare point. */
static ts_err unwrap_point(const uint8_t *der, size_t len, ts_curve curve, uint8_t *point,
                           size_t *point_len)
{
    const unsigned char *p = der;
    ASN1_OCTET_STRING *os = d2i_ASN1_OCTET_STRING(NULL, &p, (long)len);
    size_t want = 2 * field_len(curve) + 1;

    if (os != NULL && p == der + len && (size_t)ASN1_STRING_length(os) == want) {
        memcpy(point, ASN1_STRING_get0_data(os), want);
        *point_len = want;
        ASN1_OCTET_STRING_free(os);
        return TS_OK;
    }
    ASN1_OCTET_STRING_free(os);
    if (len == want && der[0] == 0x04) {
        memcpy(point, der, want);
        *point_len = want;
        return TS_OK;
    }
    return ts_error_set(TS_ERR_CORRUPT, "CKA_EC_POINT is not an uncompressed %s point",
                        ts_curve_name(curve));
}

ts_err p11_public_key(void *state, const char *label, EVP_PKEY **out)
{
    p11_store *st = state;
    p11_key_entry *key = NULL;
    uint8_t *der = NULL;
    size_t der_len = 0, point_len = 0;
    uint8_t point[TS_POINT_MAX];
    ts_err rv = p11_key_lookup(st, label, &key);

    if (rv != TS_OK) {
        return rv;
    }
    if (key->pub == CK_INVALID_HANDLE) {
        return ts_error_set(TS_ERR_NOT_FOUND, "key '%s' has no public key object on token '%s'",
                            label, st->token_label);
    }
    rv = p11_get_attr(st, key->pub, CKA_EC_POINT, &der, &der_len, POINT_DER_MAX);
    if (rv == TS_ERR_NOT_FOUND) {
        p11_key_forget(st, label); /* deleted meanwhile: look again next time */
    }
    if (rv == TS_OK) {
        rv = unwrap_point(der, der_len, key->curve, point, &point_len);
    }
    OPENSSL_free(der);
    if (rv == TS_OK) {
        rv = ts_pkey_from_point(key->curve, point, point_len, out);
    }
    return rv == TS_OK ? TS_OK : ts_error_prefix(rv, "public key '%s'", label);
}

ts_err p11_key_curve(void *state, const char *label, ts_curve *curve)
{
    p11_key_entry *key = NULL;
    ts_err rv = p11_key_lookup(state, label, &key);
    if (rv == TS_OK) {
        *curve = key->curve;
    }
    return rv;
}

ts_err p11_sign_handle(p11_store *st, CK_OBJECT_HANDLE key, ts_curve curve, const uint8_t *digest,
                       size_t digest_len, uint8_t *sig, size_t *sig_len)
{
    CK_MECHANISM mech = {CKM_ECDSA, NULL, 0};
    uint8_t raw[96];
    CK_ULONG raw_len = sizeof raw;
    size_t half = field_len(curve);
    ECDSA_SIG *es = NULL;
    BIGNUM *r = NULL, *s = NULL;
    ts_err rv = TS_OK;

    CK_RV crv = st->f->C_SignInit(st->session, &mech, key);
    if (crv == CKR_OK) {
        crv = st->f->C_Sign(st->session, (CK_BYTE_PTR)digest, (CK_ULONG)digest_len, raw, &raw_len);
    }
    if (crv != CKR_OK) {
        return p11_error(crv, "ECDSA signature on token '%s'", st->token_label);
    }
    /* PKCS#11 v2.40 section 2.3.1: CKM_ECDSA gives r || s, each as long as the order. */
    if (raw_len != 2 * half) {
        return ts_error_set(TS_ERR_BACKEND, "token '%s' gave a %lu-byte ECDSA signature, not %zu",
                            st->token_label, (unsigned long)raw_len, 2 * half);
    }
    es = ECDSA_SIG_new();
    r = BN_bin2bn(raw, (int)half, NULL);
    s = BN_bin2bn(raw + half, (int)half, NULL);
    if (es == NULL || r == NULL || s == NULL || !ECDSA_SIG_set0(es, r, s)) {
        BN_free(r);
        BN_free(s);
        rv = ts_error_set_openssl(TS_ERR_NOMEM, "cannot encode the signature");
        goto done;
    }
    int der_len = i2d_ECDSA_SIG(es, NULL);
    if (der_len <= 0 || (size_t)der_len > *sig_len) {
        rv = ts_error_set(TS_ERR_INVALID, "a %zu-byte buffer is too small for a %d-byte signature",
                          *sig_len, der_len);
        goto done;
    }
    unsigned char *p = sig;
    *sig_len = (size_t)i2d_ECDSA_SIG(es, &p);
done:
    ECDSA_SIG_free(es);
    return rv;
}

ts_err p11_sign_digest(void *state, const char *label, const uint8_t *digest, size_t digest_len,
                       uint8_t *sig, size_t *sig_len)
{
    p11_store *st = state;
    p11_key_entry *key = NULL;
    ts_err rv = p11_key_lookup(st, label, &key);

    if (rv == TS_OK) {
        rv = p11_sign_handle(st, key->priv, key->curve, digest, digest_len, sig, sig_len);
    }
    if (rv == TS_ERR_NOT_FOUND && key != NULL) {
        /* A cached handle gone stale: look the label up again, once. */
        p11_key_forget(st, label);
        rv = p11_key_lookup(st, label, &key);
        if (rv == TS_OK) {
            rv = p11_sign_handle(st, key->priv, key->curve, digest, digest_len, sig, sig_len);
        }
    }
    return rv == TS_OK ? TS_OK : ts_error_prefix(rv, "sign with '%s'", label);
}

ts_err p11_derive(void *state, const char *label, const uint8_t *peer_point, size_t peer_point_len,
                  uint8_t *secret, size_t *secret_len)
{
    p11_store *st = state;
    p11_key_entry *key = NULL;
    CK_OBJECT_HANDLE z = CK_INVALID_HANDLE;
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE type = CKK_GENERIC_SECRET;
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    uint8_t *value = NULL;
    size_t value_len = 0;
    ts_err rv = p11_key_lookup(st, label, &key);

    if (rv != TS_OK) {
        return rv;
    }
    CK_ULONG len = (CK_ULONG)field_len(key->curve);
    /* PKCS#11 v2.40 section 2.3.14: CKD_NULL hands back the raw shared x-coordinate. */
    CK_ECDH1_DERIVE_PARAMS params = {CKD_NULL, 0, NULL, (CK_ULONG)peer_point_len,
                                     (CK_BYTE_PTR)peer_point};
    CK_MECHANISM mech = {CKM_ECDH1_DERIVE, &params, sizeof params};
    /* This call exists to return the secret, so its session object is extractable. */
    CK_ATTRIBUTE tmpl[] = {
        ATTR(CKA_CLASS, &cls, sizeof cls), ATTR(CKA_KEY_TYPE, &type, sizeof type),
        ATTR(CKA_TOKEN, &no, 1),           ATTR(CKA_SENSITIVE, &no, 1),
        ATTR(CKA_EXTRACTABLE, &yes, 1),    ATTR(CKA_VALUE_LEN, &len, sizeof len),
    };
    CK_RV crv =
        st->f->C_DeriveKey(st->session, &mech, key->priv, tmpl, sizeof tmpl / sizeof tmpl[0], &z);
    if (crv != CKR_OK) {
        return p11_error(crv, "ECDH with '%s' on token '%s'", label, st->token_label);
    }
    rv = p11_get_attr(st, z, CKA_VALUE, &value, &value_len, TS_SECRET_MAX);
    if (rv == TS_OK && value_len > *secret_len) {
        rv = ts_error_set(TS_ERR_INVALID, "a %zu-byte buffer is too small for a %zu-byte secret",
                          *secret_len, value_len);
    }
    if (rv == TS_OK) {
        memcpy(secret, value, value_len);
        *secret_len = value_len;
    }
    OPENSSL_clear_free(value, value_len);
    st->f->C_DestroyObject(st->session, z);
    return rv;
}
