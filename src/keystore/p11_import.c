/*
 * Encrypted key import on a token, with the shared secret and the imported key kept inside it.
 *
 * ts_ks_import_kek() (keystore_internal.h) defines the KEK as HMAC-SHA256(Z, info || 0x01), Z
 * being the ECDH shared secret. Here every step runs in the token:
 *   1. C_DeriveKey CKM_ECDH1_DERIVE into a session generic secret that is sensitive and not
 *      extractable, usable only to sign (Z never reaches this process);
 *   2. C_Sign CKM_SHA256_HMAC keyed by it over info || 0x01: the KEK;
 *   3. the KEK becomes a session AES key that can only unwrap, and its bytes here are wiped;
 *   4. C_UnwrapKey CKM_AES_KEY_WRAP_PAD (RFC 5649) of the PKCS#8 key into a token private key
 *      that is sensitive and not extractable;
 *   5. its public key object is made from the point the sender named, and the pair is proven to
 *      match by a signature made in the token and checked here. On a mismatch both go.
 * Session objects are destroyed on every path, and on failure nothing is left on the token.
 */
#include <errno.h>
#include <string.h>

#include <openssl/asn1.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "keystore/p11_internal.h"

enum { KEK_LEN = 32, INFO_MAX = 4096 };

typedef struct import_objects {
    CK_OBJECT_HANDLE z, kek, priv, pub;
} import_objects;

static void destroy(p11_store *st, CK_OBJECT_HANDLE *h)
{
    if (*h != CK_INVALID_HANDLE) {
        st->f->C_DestroyObject(st->session, *h);
        *h = CK_INVALID_HANDLE;
    }
}

/* Steps 1 to 3: a session AES key holding the KEK. */
static ts_err make_kek(p11_store *st, CK_OBJECT_HANDLE recipient, ts_curve curve,
                       const ts_ks_unwrap *req, import_objects *o)
{
    CK_OBJECT_CLASS secret = CKO_SECRET_KEY;
    CK_KEY_TYPE generic = CKK_GENERIC_SECRET;
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    CK_ULONG z_len = curve == TS_CURVE_P384 ? 48 : 32;
    uint8_t kek[KEK_LEN];
    CK_ULONG kek_len = sizeof kek;
    uint8_t *msg = NULL;
    ts_err rv = TS_OK;

    CK_ECDH1_DERIVE_PARAMS params = {CKD_NULL, 0, NULL, (CK_ULONG)req->peer_point_len,
                                     (CK_BYTE_PTR)req->peer_point};
    CK_MECHANISM ecdh = {CKM_ECDH1_DERIVE, &params, sizeof params};
    CK_ATTRIBUTE z_tmpl[] = {
        ATTR(CKA_CLASS, &secret, sizeof secret),
        ATTR(CKA_KEY_TYPE, &generic, sizeof generic),
        ATTR(CKA_TOKEN, &no, 1),
        ATTR(CKA_SENSITIVE, &yes, 1),
        ATTR(CKA_EXTRACTABLE, &no, 1),
        ATTR(CKA_SIGN, &yes, 1),
        ATTR(CKA_VALUE_LEN, &z_len, sizeof z_len),
    };
    CK_RV crv = st->f->C_DeriveKey(st->session, &ecdh, recipient, z_tmpl,
                                   sizeof z_tmpl / sizeof z_tmpl[0], &o->z);
    if (crv != CKR_OK) {
        o->z = CK_INVALID_HANDLE;
        return p11_error(crv, "ECDH with '%s'", req->recipient_label);
    }
    /* RFC 5869 section 2.3, one block: T(1) = HMAC-Hash(PRK, info || 0x01). */
    msg = OPENSSL_malloc(req->info_len + 1);
    if (msg == NULL) {
        return ts_error_set(TS_ERR_NOMEM, "out of memory importing a key");
    }
    memcpy(msg, req->info, req->info_len);
    msg[req->info_len] = 0x01;
    CK_MECHANISM hmac = {CKM_SHA256_HMAC, NULL, 0};
    crv = st->f->C_SignInit(st->session, &hmac, o->z);
    if (crv == CKR_OK) {
        crv = st->f->C_Sign(st->session, msg, (CK_ULONG)req->info_len + 1, kek, &kek_len);
    }
    OPENSSL_free(msg);
    if (crv != CKR_OK) {
        rv = p11_error(crv, "HMAC-SHA256 for the key-encryption key");
        goto done;
    }
    if (kek_len != KEK_LEN) {
        rv = ts_error_set(TS_ERR_BACKEND, "the token's HMAC-SHA256 gave %lu bytes, not %d",
                          (unsigned long)kek_len, KEK_LEN);
        goto done;
    }
    rv = p11_kek_session(st, kek, &o->kek);
done:
    OPENSSL_cleanse(kek, sizeof kek);
    return rv;
}

/* Step 4: the private key, unwrapped straight into a token object. The sender's signature was
 * checked before, so a key that fails the wrap's integrity check was sealed to another key. */
static ts_err unwrap(p11_store *st, const ts_ks_unwrap *req, import_objects *o, uint8_t *id)
{
    ts_err rv = p11_unwrap_ec_key(st, req->label, o->kek, req->wrapped, req->wrapped_len,
                                  req->curve, 0, id, &o->priv);
    if (rv == TS_ERR_AUTH) {
        return ts_error_prefix(rv, "import under the key agreed with '%s'", req->recipient_label);
    }
    return rv;
}

/* Step 5a: the public key object, from the sender's point. */
ts_err p11_make_public(p11_store *st, const char *label, ts_curve curve,
                       const uint8_t *public_point, size_t public_point_len,
                       const uint8_t id[P11_ID_LEN], CK_OBJECT_HANDLE *out)
{
    CK_OBJECT_CLASS cls = CKO_PUBLIC_KEY;
    CK_KEY_TYPE ec = CKK_EC;
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
    unsigned char *point = NULL;
    uint8_t *params = NULL;
    size_t params_len = 0;
    ts_err rv = TS_OK;

    /* CKA_EC_POINT: DER OCTET STRING of the X9.62 point (PKCS#11 v2.40 section 2.3.3). */
    int point_len = -1;
    if (os != NULL && public_point_len <= TS_POINT_MAX &&
        ASN1_OCTET_STRING_set(os, public_point, (int)public_point_len) == 1) {
        point_len = i2d_ASN1_OCTET_STRING(os, &point);
    }
    if (point_len <= 0) {
        rv = ts_error_set_openssl(TS_ERR_NOMEM, "cannot encode the public point");
        goto done;
    }
    rv = p11_ec_params(curve, &params, &params_len);
    if (rv != TS_OK) {
        goto done;
    }
    CK_ATTRIBUTE tmpl[] = {
        ATTR(CKA_CLASS, &cls, sizeof cls),
        ATTR(CKA_KEY_TYPE, &ec, sizeof ec),
        ATTR(CKA_TOKEN, &yes, 1),
        ATTR(CKA_PRIVATE, &no, 1),
        ATTR(CKA_VERIFY, &yes, 1),
        ATTR(CKA_LABEL, label, strlen(label)),
        ATTR(CKA_ID, id, P11_ID_LEN),
        ATTR(CKA_EC_PARAMS, params, params_len),
        ATTR(CKA_EC_POINT, point, point_len),
    };
    rv = p11_create(st, tmpl, sizeof tmpl / sizeof tmpl[0], out, "storing the public key");
done:
    ASN1_OCTET_STRING_free(os);
    OPENSSL_free(point);
    OPENSSL_free(params);
    return rv;
}

/* Step 5b: a signature by the new private key in the token must verify under the point. */
ts_err p11_prove_pair(p11_store *st, CK_OBJECT_HANDLE priv, ts_curve curve,
                      const uint8_t *public_point, size_t public_point_len)
{
    uint8_t digest[32], sig[TS_SIGNATURE_MAX];
    size_t sig_len = sizeof sig;
    EVP_PKEY *pub = NULL;
    EVP_PKEY_CTX *ctx = NULL;
    ts_err rv = p11_random(st, digest, sizeof digest);

    if (rv == TS_OK) {
        rv = p11_sign_handle(st, priv, curve, digest, sizeof digest, sig, &sig_len);
    }
    if (rv == TS_OK) {
        rv = ts_pkey_from_point(curve, public_point, public_point_len, &pub);
    }
    if (rv != TS_OK) {
        return rv;
    }
    ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pub, NULL);
    if (ctx == NULL || EVP_PKEY_verify_init(ctx) != 1 ||
        EVP_PKEY_verify(ctx, sig, sig_len, digest, sizeof digest) != 1) {
        rv = ts_error_set_openssl(TS_ERR_AUTH,
                                  "the unwrapped key does not match the public key it came with");
    }
    EVP_PKEY_CTX_free(ctx);
    EVP_PKEY_free(pub);
    return rv;
}

ts_err p11_unwrap_import(void *state, const ts_ks_unwrap *req)
{
    p11_store *st = state;
    p11_found found[P11_LABEL_OBJECTS];
    p11_key_entry *recipient = NULL;
    import_objects o = {CK_INVALID_HANDLE, CK_INVALID_HANDLE, CK_INVALID_HANDLE, CK_INVALID_HANDLE};
    uint8_t id[P11_ID_LEN];
    size_t n = 0;

    if (req->info_len > INFO_MAX || req->peer_point_len > TS_POINT_MAX ||
        req->public_point_len > TS_POINT_MAX || req->wrapped_len > TS_IMPORT_BLOB_MAX) {
        return ts_error_set(TS_ERR_INVALID, "import: a field of the request is too long");
    }
    ts_err rv = p11_find_label(st, req->label, found, &n);
    if (rv == TS_OK && n > 0) {
        rv = ts_error_set(TS_ERR_EXISTS, "import: label '%s' is taken by %s on token '%s'",
                          req->label, p11_kind_name(p11_label_kind(found, n)), st->token_label);
    }
    if (rv == TS_OK) {
        rv = p11_key_lookup(st, req->recipient_label, &recipient);
    }
    if (rv == TS_OK) {
        rv = make_kek(st, recipient->priv, recipient->curve, req, &o);
    }
    if (rv == TS_OK) {
        rv = p11_random(st, id, sizeof id);
    }
    if (rv == TS_OK) {
        rv = unwrap(st, req, &o, id);
    }
    if (rv == TS_OK) {
        rv = p11_make_public(st, req->label, req->curve, req->public_point, req->public_point_len,
                             id, &o.pub);
    }
    if (rv == TS_OK) {
        rv = p11_prove_pair(st, o.priv, req->curve, req->public_point, req->public_point_len);
    }
    destroy(st, &o.z);
    destroy(st, &o.kek);
    if (rv != TS_OK) {
        destroy(st, &o.priv);
        destroy(st, &o.pub);
        return ts_error_prefix(rv, "import into token '%s'", st->token_label);
    }
    p11_key_forget(st, req->label);
    return TS_OK;
}
