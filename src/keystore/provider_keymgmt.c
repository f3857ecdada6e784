/*
 * The provider's "EC" key manager: key objects that name a key in a key store, and plain public
 * keys.
 *
 * What it does not do, on purpose: generate keys (keys are made with ts_keystore_generate()),
 * export or import a private key. Refusing to export the private half is also what makes
 * OpenSSL run signing and ECDH with our keys in this provider (see provider.c); refusing to
 * import one keeps other providers' private keys out of it.
 */
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/params.h>

#include "common/error_internal.h"
#include "keystore/provider_internal.h"

/* --- key objects ---------------------------------------------------------------------------- */

static ts_prov_key *key_new(ts_prov_ctx *pc)
{
    ts_prov_key *key = OPENSSL_zalloc(sizeof *key);
    if (key == NULL) {
        ts_prov_fail(pc, TS_ERR_NOMEM, "out of memory for a key object");
        return NULL;
    }
    key->magic = TS_PROV_KEY_MAGIC;
    atomic_init(&key->refs, 1);
    key->prov = pc;
    return key;
}

ts_prov_key *ts_prov_key_up_ref(ts_prov_key *key)
{
    if (key != NULL) {
        atomic_fetch_add(&key->refs, 1);
    }
    return key;
}

void ts_prov_key_free(ts_prov_key *key)
{
    if (key == NULL || atomic_fetch_sub(&key->refs, 1) != 1) {
        return;
    }
    EVP_PKEY_free(key->pub);
    ts_keystore_free(key->ks);
    OPENSSL_clear_free(key, sizeof *key);
}

/*
 * Gives an empty key object its public key: checks the point is on the curve (OpenSSL's import
 * does) and keeps it canonical (uncompressed) with the sizes the operations need.
 */
static ts_err key_set_public(ts_prov_key *key, ts_curve curve, const uint8_t *point, size_t len)
{
    OSSL_PARAM params[3];
    EVP_PKEY_CTX *ctx = NULL;
    EVP_PKEY *pub = NULL;
    ts_err rv = TS_ERR_INVALID;

    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME,
                                                 (char *)ts_curve_group(curve), 0);
    params[1] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, (void *)point, len);
    params[2] = OSSL_PARAM_construct_end();
    ctx = EVP_PKEY_CTX_new_from_name(key->prov->libctx, "EC", NULL);
    if (ctx == NULL || EVP_PKEY_fromdata_init(ctx) != 1 ||
        EVP_PKEY_fromdata(ctx, &pub, EVP_PKEY_PUBLIC_KEY, params) != 1) {
        ts_prov_fail_openssl(key->prov, rv, "not a valid %s public key", ts_curve_name(curve));
        goto done;
    }
    rv = ts_pkey_to_point(pub, key->point, sizeof key->point, &key->point_len);
    if (rv != TS_OK) {
        ts_prov_report(key->prov, rv);
        goto done;
    }
    key->curve = curve;
    key->sig_max = (size_t)EVP_PKEY_get_size(pub);
    key->secret_len = ((size_t)EVP_PKEY_get_bits(pub) + 7) / 8;
    key->pub = pub;
    pub = NULL;
done:
    EVP_PKEY_free(pub);
    EVP_PKEY_CTX_free(ctx);
    return rv;
}

/* Makes an empty key object name a key of a store: takes its public key and a store reference. */
static ts_err key_attach(ts_prov_key *key, ts_keystore *ks, const char *label)
{
    uint8_t point[TS_POINT_MAX];
    size_t point_len = 0;
    EVP_PKEY *pub = NULL;
    ts_curve curve;
    ts_err rv = ts_label_check(label);

    if (rv == TS_OK) {
        rv = ts_keystore_public_key(ks, label, &pub);
    }
    if (rv == TS_OK) {
        rv = ts_curve_of_pkey(pub, &curve);
    }
    if (rv == TS_OK) {
        rv = ts_pkey_to_point(pub, point, sizeof point, &point_len);
    }
    EVP_PKEY_free(pub);
    if (rv != TS_OK) {
        ts_error_prefix(rv, "key '%s' in %s", label != NULL ? label : "", ts_keystore_uri(ks));
        ts_prov_report(key->prov, rv);
        return rv;
    }
    rv = key_set_public(key, curve, point, point_len);
    if (rv != TS_OK) {
        return rv;
    }
    key->ks = ts_keystore_up_ref(ks);
    memcpy(key->label, label, strlen(label) + 1);
    return TS_OK;
}

ts_err ts_prov_key_from_store(ts_prov_ctx *pc, ts_keystore *ks, const char *label,
                              ts_prov_key **out)
{
    ts_prov_key *key = key_new(pc);
    ts_err rv;

    *out = NULL;
    if (key == NULL) {
        return TS_ERR_NOMEM;
    }
    rv = key_attach(key, ks, label);
    if (rv != TS_OK) {
        ts_prov_key_free(key);
        return rv;
    }
    *out = key;
    return TS_OK;
}

/* --- key manager ---------------------------------------------------------------------------- */

static void *km_new(void *provctx)
{
    return key_new(provctx);
}

static void km_free(void *keydata)
{
    ts_prov_key_free(keydata);
}

/* A reference from our store loader (provider_store.c): a pointer to a key object. */
static void *km_load(const void *reference, size_t reference_sz)
{
    ts_prov_key *key;

    if (reference == NULL || reference_sz != sizeof key) {
        return NULL;
    }
    memcpy(&key, reference, sizeof key);
    if (key == NULL || key->magic != TS_PROV_KEY_MAGIC) {
        return NULL;
    }
    return ts_prov_key_up_ref(key);
}

static int km_has(const void *keydata, int selection)
{
    const ts_prov_key *key = keydata;
    int ok = key != NULL;

    if ((selection & OSSL_KEYMGMT_SELECT_ALL) == 0) {
        return ok;
    }
    if ((selection & OSSL_KEYMGMT_SELECT_DOMAIN_PARAMETERS) != 0) {
        ok = ok && key->curve != 0;
    }
    if ((selection & OSSL_KEYMGMT_SELECT_PUBLIC_KEY) != 0) {
        ok = ok && key->point_len > 0;
    }
    if ((selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) != 0) {
        ok = ok && key->ks != NULL;
    }
    return ok;
}

/* Keys match when their curves (domain) and points (public, and so private) are equal. */
static int km_match(const void *keydata1, const void *keydata2, int selection)
{
    const ts_prov_key *a = keydata1, *b = keydata2;

    if (a == NULL || b == NULL || a->curve == 0 || a->curve != b->curve) {
        return 0;
    }
    if ((selection & OSSL_KEYMGMT_SELECT_KEYPAIR) != 0) {
        return a->point_len == b->point_len && CRYPTO_memcmp(a->point, b->point, a->point_len) == 0;
    }
    return 1;
}

static int import_keyref(ts_prov_key *key, const OSSL_PARAM *p)
{
    ts_prov_keyref *ref = p->data;

    if (p->data_type != OSSL_PARAM_OCTET_STRING || p->data_size != sizeof *ref || ref == NULL ||
        ref->magic != TS_PROV_KEYREF_MAGIC || ref->ks == NULL) {
        ts_prov_fail(key->prov, TS_ERR_INVALID, "malformed internal key reference");
        return 0;
    }
    ref->result = key_attach(key, ref->ks, ref->label);
    return ref->result == TS_OK;
}

static int km_import(void *keydata, int selection, const OSSL_PARAM params[])
{
    ts_prov_key *key = keydata;
    const OSSL_PARAM *p;
    const char *group = NULL;
    const void *point = NULL;
    size_t point_len = 0;
    ts_curve curve;
    ts_err rv;

    if (key == NULL || key->curve != 0) {
        return 0;
    }
    p = OSSL_PARAM_locate_const(params, TS_PROV_PARAM_KEYREF);
    if (p != NULL) {
        return import_keyref(key, p);
    }
    /*
     * A private key of another provider cannot become a key-store key: refuse, so that OpenSSL
     * keeps operations on it in its own provider rather than here with the public half only.
     */
    if (OSSL_PARAM_locate_const(params, OSSL_PKEY_PARAM_PRIV_KEY) != NULL) {
        ts_prov_fail(key->prov, TS_ERR_UNSUPPORTED,
                     "the Tessera provider takes no private keys (as an ECDH peer, pass the "
                     "public key alone)");
        return 0;
    }
    if ((selection & OSSL_KEYMGMT_SELECT_PUBLIC_KEY) == 0) {
        ts_prov_fail(key->prov, TS_ERR_UNSUPPORTED,
                     "the Tessera provider imports public keys only, not bare EC parameters");
        return 0;
    }
    p = OSSL_PARAM_locate_const(params, OSSL_PKEY_PARAM_GROUP_NAME);
    if (p == NULL || !OSSL_PARAM_get_utf8_string_ptr(p, &group)) {
        ts_prov_fail(key->prov, TS_ERR_UNSUPPORTED, "EC public key without a named curve");
        return 0;
    }
    rv = ts_curve_from_name(group, &curve);
    if (rv != TS_OK) {
        ts_prov_report(key->prov, rv);
        return 0;
    }
    p = OSSL_PARAM_locate_const(params, OSSL_PKEY_PARAM_PUB_KEY);
    if (p == NULL) {
        p = OSSL_PARAM_locate_const(params, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY);
    }
    if (p == NULL || !OSSL_PARAM_get_octet_string_ptr(p, &point, &point_len)) {
        ts_prov_fail(key->prov, TS_ERR_INVALID, "EC public key without a point");
        return 0;
    }
    return key_set_public(key, curve, point, point_len) == TS_OK;
}

static const OSSL_PARAM km_public_types[] = {
    OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, NULL, 0),
    OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, NULL, 0),
    OSSL_PARAM_END,
};

static const OSSL_PARAM *km_import_types(int selection)
{
    return (selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) != 0 ? NULL : km_public_types;
}

static const OSSL_PARAM *km_export_types(int selection)
{
    return km_import_types(selection);
}

static int km_export(void *keydata, int selection, OSSL_CALLBACK *cb, void *cbarg)
{
    ts_prov_key *key = keydata;
    OSSL_PARAM params[3];
    size_t n = 0;

    if (key == NULL || key->curve == 0) {
        return 0;
    }
    /*
     * The private key stays in the store. Failing, rather than exporting the public half, is
     * what makes OpenSSL fall back to this provider for signing and ECDH.
     */
    if ((selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) != 0 && key->ks != NULL) {
        return 0;
    }
    if ((selection & OSSL_KEYMGMT_SELECT_DOMAIN_PARAMETERS) != 0) {
        params[n++] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME,
                                                       (char *)ts_curve_group(key->curve), 0);
    }
    if ((selection & OSSL_KEYMGMT_SELECT_PUBLIC_KEY) != 0) {
        params[n++] =
            OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, key->point, key->point_len);
    }
    params[n] = OSSL_PARAM_construct_end();
    return cb(params, cbarg);
}

/*
 * Everything about the public key (bits, security bits, largest signature, group, point in its
 * encodings, point format, default digest) is answered by OpenSSL's own EC key manager from the
 * cached public key, so a key-store key describes itself exactly as its public half does. That
 * includes the default digest, SHA-256 on every curve: a verifier using the public key with no
 * digest named must arrive at the same one.
 */
static int km_get_params(void *keydata, OSSL_PARAM params[])
{
    ts_prov_key *key = keydata;

    if (key == NULL || key->pub == NULL) {
        return 0;
    }
    return EVP_PKEY_get_params(key->pub, params);
}

static const OSSL_PARAM *km_gettable_params(void *provctx)
{
    static const OSSL_PARAM gettable[] = {
        OSSL_PARAM_int(OSSL_PKEY_PARAM_BITS, NULL),
        OSSL_PARAM_int(OSSL_PKEY_PARAM_SECURITY_BITS, NULL),
        OSSL_PARAM_int(OSSL_PKEY_PARAM_MAX_SIZE, NULL),
        OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_DEFAULT_DIGEST, NULL, 0),
        OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, NULL, 0),
        OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, NULL, 0),
        OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, NULL, 0),
        OSSL_PARAM_BN(OSSL_PKEY_PARAM_EC_PUB_X, NULL, 0),
        OSSL_PARAM_BN(OSSL_PKEY_PARAM_EC_PUB_Y, NULL, 0),
        OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT, NULL, 0),
        OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_EC_ENCODING, NULL, 0),
        OSSL_PARAM_END,
    };
    (void)provctx;
    return gettable;
}

static const char *km_query_operation_name(int operation_id)
{
    switch (operation_id) {
    case OSSL_OP_SIGNATURE:
        return "ECDSA";
    case OSSL_OP_KEYEXCH:
        return "ECDH";
    default:
        return NULL;
    }
}

/* A copy: the same store reference and public key; without the private selection, public only. */
static void *km_dup(const void *keydata, int selection)
{
    const ts_prov_key *src = keydata;
    ts_prov_key *key;

    if (src == NULL || src->curve == 0) {
        return NULL;
    }
    key = key_new(src->prov);
    if (key == NULL) {
        return NULL;
    }
    if (!EVP_PKEY_up_ref(src->pub)) {
        ts_prov_key_free(key);
        return NULL;
    }
    key->pub = src->pub;
    key->curve = src->curve;
    memcpy(key->point, src->point, src->point_len);
    key->point_len = src->point_len;
    key->sig_max = src->sig_max;
    key->secret_len = src->secret_len;
    if ((selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) != 0 && src->ks != NULL) {
        key->ks = ts_keystore_up_ref(src->ks);
        memcpy(key->label, src->label, sizeof key->label);
    }
    return key;
}

const OSSL_DISPATCH ts_prov_keymgmt_functions[] = {
    {OSSL_FUNC_KEYMGMT_NEW, (void (*)(void))km_new},
    {OSSL_FUNC_KEYMGMT_FREE, (void (*)(void))km_free},
    {OSSL_FUNC_KEYMGMT_LOAD, (void (*)(void))km_load},
    {OSSL_FUNC_KEYMGMT_HAS, (void (*)(void))km_has},
    {OSSL_FUNC_KEYMGMT_MATCH, (void (*)(void))km_match},
    {OSSL_FUNC_KEYMGMT_IMPORT, (void (*)(void))km_import},
    {OSSL_FUNC_KEYMGMT_IMPORT_TYPES, (void (*)(void))km_import_types},
    {OSSL_FUNC_KEYMGMT_EXPORT, (void (*)(void))km_export},
    {OSSL_FUNC_KEYMGMT_EXPORT_TYPES, (void (*)(void))km_export_types},
    {OSSL_FUNC_KEYMGMT_GET_PARAMS, (void (*)(void))km_get_params},
    {OSSL_FUNC_KEYMGMT_GETTABLE_PARAMS, (void (*)(void))km_gettable_params},
    {OSSL_FUNC_KEYMGMT_QUERY_OPERATION_NAME, (void (*)(void))km_query_operation_name},
    {OSSL_FUNC_KEYMGMT_DUP, (void (*)(void))km_dup},
    {0, NULL},
};
