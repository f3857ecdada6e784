/*
 * The key-store front: argument and label checks, one lock per store, dispatch to the backend
 * named by the URI's scheme.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/param_build.h>

#include "common/error_internal.h"
#include "keystore/keystore_internal.h"

struct ts_keystore {
    atomic_int refs;
    pthread_mutex_t lock;
    const ts_ks_backend *backend;
    void *state;
    char *uri; /* redacted: no PIN */
};

static const ts_ks_backend *backend_for(ts_ks_scheme scheme)
{
    return scheme == TS_KS_SOFT ? &ts_ks_soft_backend : &ts_ks_pkcs11_backend;
}

static ts_err keystore_start(const char *text, int create, const char *so_pin, ts_keystore **out)
{
    ts_ks_uri *uri = NULL;
    ts_keystore *ks = NULL;
    ts_err rv;

    if (out == NULL) {
        return ts_error_set(TS_ERR_INVALID, "nowhere to put the opened key store");
    }
    if (text == NULL) {
        return ts_error_set(TS_ERR_INVALID, "no key-store URI given");
    }
    *out = NULL;
    rv = ts_ks_uri_parse(text, &uri);
    if (rv != TS_OK) {
        return rv;
    }
    ks = OPENSSL_zalloc(sizeof *ks);
    if (ks == NULL) {
        rv = ts_error_set(TS_ERR_NOMEM, "out of memory opening a key store");
        goto done;
    }
    ks->backend = backend_for(uri->scheme);
    ks->uri = OPENSSL_strdup(uri->redacted);
    if (ks->uri == NULL || pthread_mutex_init(&ks->lock, NULL) != 0) {
        OPENSSL_free(ks->uri);
        OPENSSL_free(ks);
        ks = NULL;
        rv = ts_error_set(TS_ERR_NOMEM, "out of memory opening a key store");
        goto done;
    }
    atomic_init(&ks->refs, 1);
    rv = create ? ks->backend->create(uri, so_pin, &ks->state) : ks->backend->open(uri, &ks->state);
    if (rv != TS_OK) {
        ts_error_prefix(rv, "key store %s", ks->uri);
        pthread_mutex_destroy(&ks->lock);
        OPENSSL_free(ks->uri);
        OPENSSL_free(ks);
        ks = NULL;
        goto done;
    }
    *out = ks;
done:
    ts_ks_uri_free(uri);
    return rv;
}

ts_err ts_keystore_create(const char *uri, const char *so_pin, ts_keystore **out)
{
    return keystore_start(uri, 1, so_pin, out);
}

ts_err ts_keystore_open(const char *uri, ts_keystore **out)
{
    return keystore_start(uri, 0, NULL, out);
}

ts_keystore *ts_keystore_up_ref(ts_keystore *ks)
{
    if (ks != NULL) {
        atomic_fetch_add(&ks->refs, 1);
    }
    return ks;
}

void ts_keystore_free(ts_keystore *ks)
{
    if (ks == NULL || atomic_fetch_sub(&ks->refs, 1) != 1) {
        return;
    }
    ks->backend->close(ks->state);
    pthread_mutex_destroy(&ks->lock);
    OPENSSL_free(ks->uri);
    OPENSSL_free(ks);
}

const char *ts_keystore_backend(const ts_keystore *ks)
{
    return ks->backend->scheme;
}

const char *ts_keystore_uri(const ts_keystore *ks)
{
    return ks->uri;
}

/* Every call below: check, lock, dispatch, unlock. */
#define KS_CALL(ks, call)                                                                          \
    do {                                                                                           \
        pthread_mutex_lock(&(ks)->lock);                                                           \
        ts_err rv_ = (ks)->backend->call;                                                          \
        pthread_mutex_unlock(&(ks)->lock);                                                         \
        return rv_;                                                                                \
    } while (0)

static ts_err check_ks(const ts_keystore *ks)
{
    if (ks == NULL) {
        return ts_error_set(TS_ERR_INVALID, "no key store given");
    }
    return TS_OK;
}

static ts_err check_labelled(const ts_keystore *ks, const char *label)
{
    ts_err rv = check_ks(ks);
    return rv != TS_OK ? rv : ts_label_check(label);
}

ts_err ts_keystore_uid(ts_keystore *ks, uint8_t uid[TS_KEYSTORE_UID_LEN])
{
    ts_err rv = check_ks(ks);
    if (rv != TS_OK) {
        return rv;
    }
    if (uid == NULL) {
        return ts_error_set(TS_ERR_INVALID, "uid: nowhere to put the UID");
    }
    KS_CALL(ks, uid(ks->state, uid));
}

ts_err ts_keystore_random(ts_keystore *ks, uint8_t *buf, size_t len)
{
    ts_err rv = check_ks(ks);
    if (rv != TS_OK) {
        return rv;
    }
    if (buf == NULL && len > 0) {
        return ts_error_set(TS_ERR_INVALID, "no buffer for random bytes");
    }
    if (len == 0) {
        return TS_OK;
    }
    KS_CALL(ks, random(ks->state, buf, len));
}

ts_err ts_keystore_generate(ts_keystore *ks, const char *label, ts_curve curve)
{
    return ts_keystore_generate_ex(ks, label, curve, 0);
}

ts_err ts_keystore_generate_ex(ts_keystore *ks, const char *label, ts_curve curve, unsigned flags)
{
    ts_err rv = check_labelled(ks, label);
    if (rv != TS_OK) {
        return rv;
    }
    if (curve != TS_CURVE_P256 && curve != TS_CURVE_P384) {
        return ts_error_set(TS_ERR_UNSUPPORTED, "curve %d is not P-256 or P-384", (int)curve);
    }
    if ((flags & ~TS_KEY_BACKUP) != 0) {
        return ts_error_set(TS_ERR_INVALID, "key '%s': unknown flags 0x%x", label, flags);
    }
    KS_CALL(ks, generate(ks->state, label, curve, flags));
}

ts_err ts_keystore_backup_key(ts_keystore *ks, const char *label, uint8_t kek[32],
                              uint8_t **wrapped, size_t *wrapped_len)
{
    ts_err rv = check_labelled(ks, label);
    if (rv != TS_OK) {
        return rv;
    }
    if (kek == NULL || wrapped == NULL || wrapped_len == NULL) {
        return ts_error_set(TS_ERR_INVALID, "backup of '%s': nowhere to put the KEK or the blob",
                            label);
    }
    *wrapped = NULL;
    *wrapped_len = 0;
    pthread_mutex_lock(&ks->lock);
    rv = ks->backend->backup_key(ks->state, label, kek, wrapped, wrapped_len);
    pthread_mutex_unlock(&ks->lock);
    if (rv != TS_OK) {
        /* Whatever a failed backend left here is no use to the caller and must not linger. */
        OPENSSL_cleanse(kek, 32);
        OPENSSL_free(*wrapped);
        *wrapped = NULL;
        *wrapped_len = 0;
    }
    return rv;
}

ts_err ts_keystore_restore_key(ts_keystore *ks, const char *label, const uint8_t kek[32],
                               const uint8_t *wrapped, size_t wrapped_len,
                               const EVP_PKEY *public_key, unsigned flags)
{
    uint8_t point[TS_POINT_MAX];
    size_t point_len = 0;
    ts_curve curve;
    ts_err rv = check_labelled(ks, label);

    if (rv != TS_OK) {
        return rv;
    }
    if (kek == NULL || wrapped == NULL || wrapped_len == 0 || public_key == NULL) {
        return ts_error_set(TS_ERR_INVALID,
                            "restore of '%s': missing KEK, wrapped key or public key", label);
    }
    if ((flags & ~TS_KEY_BACKUP) != 0) {
        return ts_error_set(TS_ERR_INVALID, "restore of '%s': unknown flags 0x%x", label, flags);
    }
    /* RFC 5649 section 4.1: the output is whole 64-bit blocks, at least two. Anything else was
     * cut or padded since it was made. */
    if (wrapped_len < 16 || wrapped_len % 8 != 0 || wrapped_len > TS_IMPORT_BLOB_MAX) {
        return ts_error_set(TS_ERR_AUTH,
                            "restore of '%s': a wrapped key of %zu bytes cannot be a backup "
                            "(truncated or altered)",
                            label, wrapped_len);
    }
    rv = ts_curve_of_pkey(public_key, &curve);
    if (rv == TS_OK) {
        rv = ts_pkey_to_point(public_key, point, sizeof point, &point_len);
    }
    if (rv != TS_OK) {
        return ts_error_prefix(TS_ERR_INVALID, "restore of '%s': public key", label);
    }
    pthread_mutex_lock(&ks->lock);
    rv = ks->backend->restore_key(ks->state, label, kek, wrapped, wrapped_len, curve, point,
                                  point_len, flags);
    pthread_mutex_unlock(&ks->lock);
    return rv;
}

ts_err ts_keystore_public_key(ts_keystore *ks, const char *label, EVP_PKEY **out)
{
    ts_err rv = check_labelled(ks, label);
    if (rv != TS_OK) {
        return rv;
    }
    if (out == NULL) {
        return ts_error_set(TS_ERR_INVALID, "nowhere to put the public key");
    }
    *out = NULL;
    KS_CALL(ks, public_key(ks->state, label, out));
}

ts_err ts_keystore_sign_digest(ts_keystore *ks, const char *label, const uint8_t *digest,
                               size_t digest_len, uint8_t *sig, size_t *sig_len)
{
    ts_err rv = check_labelled(ks, label);
    if (rv != TS_OK) {
        return rv;
    }
    if (digest == NULL || sig == NULL || sig_len == NULL) {
        return ts_error_set(TS_ERR_INVALID, "sign: missing digest or signature buffer");
    }
    if (digest_len < 20 || digest_len > 64) {
        return ts_error_set(TS_ERR_INVALID, "sign: a digest of %zu bytes is not a hash output",
                            digest_len);
    }
    KS_CALL(ks, sign_digest(ks->state, label, digest, digest_len, sig, sig_len));
}

ts_err ts_keystore_derive(ts_keystore *ks, const char *label, const EVP_PKEY *peer, uint8_t *secret,
                          size_t *secret_len)
{
    uint8_t point[TS_POINT_MAX];
    size_t point_len = 0;
    ts_curve peer_curve, key_curve;
    ts_err rv = check_labelled(ks, label);

    if (rv != TS_OK) {
        return rv;
    }
    if (peer == NULL || secret == NULL || secret_len == NULL) {
        return ts_error_set(TS_ERR_INVALID, "derive: missing peer key or secret buffer");
    }
    rv = ts_curve_of_pkey(peer, &peer_curve);
    if (rv != TS_OK) {
        return ts_error_prefix(rv, "derive: peer key");
    }
    rv = ts_pkey_to_point(peer, point, sizeof point, &point_len);
    if (rv != TS_OK) {
        return rv;
    }
    pthread_mutex_lock(&ks->lock);
    rv = ks->backend->key_curve(ks->state, label, &key_curve);
    if (rv == TS_OK && key_curve != peer_curve) {
        rv = ts_error_set(TS_ERR_INVALID, "derive: peer key is on %s but key '%s' is on %s",
                          ts_curve_name(peer_curve), label, ts_curve_name(key_curve));
    }
    if (rv == TS_OK) {
        rv = ks->backend->derive(ks->state, label, point, point_len, secret, secret_len);
    }
    pthread_mutex_unlock(&ks->lock);
    return rv;
}

static ts_err check_object(const ts_keystore *ks, const char *label, const uint8_t *data,
                           size_t len, unsigned flags)
{
    ts_err rv = check_labelled(ks, label);
    if (rv != TS_OK) {
        return rv;
    }
    if (data == NULL && len > 0) {
        return ts_error_set(TS_ERR_INVALID, "object '%s': no data", label);
    }
    if (len > TS_OBJECT_MAX) {
        return ts_error_set(TS_ERR_INVALID, "object '%s': %zu bytes is more than the %d allowed",
                            label, len, TS_OBJECT_MAX);
    }
    if ((flags & ~TS_DATA_SECRET) != 0) {
        return ts_error_set(TS_ERR_INVALID, "object '%s': unknown flags 0x%x", label, flags);
    }
    return TS_OK;
}

ts_err ts_keystore_object_put(ts_keystore *ks, const char *label, const uint8_t *data, size_t len,
                              unsigned flags)
{
    ts_err rv = check_object(ks, label, data, len, flags);
    if (rv != TS_OK) {
        return rv;
    }
    KS_CALL(ks, object_put(ks->state, label, data, len, flags, 0));
}

ts_err ts_keystore_object_replace(ts_keystore *ks, const char *label, const uint8_t *data,
                                  size_t len, unsigned flags)
{
    ts_err rv = check_object(ks, label, data, len, flags);
    if (rv != TS_OK) {
        return rv;
    }
    KS_CALL(ks, object_put(ks->state, label, data, len, flags, 1));
}

ts_err ts_keystore_object_get(ts_keystore *ks, const char *label, uint8_t **data, size_t *len)
{
    ts_err rv = check_labelled(ks, label);
    if (rv != TS_OK) {
        return rv;
    }
    if (data == NULL || len == NULL) {
        return ts_error_set(TS_ERR_INVALID, "object '%s': nowhere to put the data", label);
    }
    *data = NULL;
    *len = 0;
    KS_CALL(ks, object_get(ks->state, label, data, len));
}

ts_err ts_keystore_delete(ts_keystore *ks, const char *label)
{
    ts_err rv = check_labelled(ks, label);
    if (rv != TS_OK) {
        return rv;
    }
    KS_CALL(ks, remove(ks->state, label));
}

static int entry_cmp(const void *a, const void *b)
{
    return strcmp(((const ts_keystore_entry *)a)->label, ((const ts_keystore_entry *)b)->label);
}

ts_err ts_keystore_list(ts_keystore *ks, ts_keystore_entry **entries, size_t *count)
{
    ts_err rv = check_ks(ks);
    if (rv != TS_OK) {
        return rv;
    }
    if (entries == NULL || count == NULL) {
        return ts_error_set(TS_ERR_INVALID, "list: nowhere to put the entries");
    }
    *entries = NULL;
    *count = 0;
    pthread_mutex_lock(&ks->lock);
    rv = ks->backend->list(ks->state, entries, count);
    pthread_mutex_unlock(&ks->lock);
    if (rv == TS_OK && *count > 1) {
        qsort(*entries, *count, sizeof **entries, entry_cmp);
    }
    return rv;
}

ts_err ts_keystore_counter_get(ts_keystore *ks, const char *label, uint64_t *value)
{
    ts_err rv = check_labelled(ks, label);
    if (rv != TS_OK) {
        return rv;
    }
    if (value == NULL) {
        return ts_error_set(TS_ERR_INVALID, "counter '%s': nowhere to put the value", label);
    }
    KS_CALL(ks, counter_get(ks->state, label, value));
}

ts_err ts_keystore_counter_increment(ts_keystore *ks, const char *label, uint64_t *value)
{
    uint64_t scratch = 0;
    ts_err rv = check_labelled(ks, label);
    if (rv != TS_OK) {
        return rv;
    }
    KS_CALL(ks, counter_update(ks->state, label, value != NULL ? value : &scratch, 1));
}

ts_err ts_keystore_counter_raise(ts_keystore *ks, const char *label, uint64_t value)
{
    ts_err rv = check_labelled(ks, label);
    if (rv != TS_OK) {
        return rv;
    }
    KS_CALL(ks, counter_update(ks->state, label, &value, 0));
}

ts_err ts_keystore_import(ts_keystore *ks, const uint8_t *blob, size_t blob_len,
                          const EVP_PKEY *trusted_sender, char label_out[TS_LABEL_MAX + 1])
{
    ts_err rv = check_ks(ks);
    if (rv != TS_OK) {
        return rv;
    }
    if (blob == NULL || blob_len == 0) {
        return ts_error_set(TS_ERR_INVALID, "import: empty blob");
    }
    if (blob_len > TS_IMPORT_BLOB_MAX) {
        return ts_error_set(TS_ERR_INVALID, "import: a blob of %zu bytes is over the %d allowed",
                            blob_len, TS_IMPORT_BLOB_MAX);
    }
    if (trusted_sender == NULL) {
        return ts_error_set(TS_ERR_AUTH, "import: no trusted sender key to check the blob with");
    }
    if (label_out == NULL) {
        return ts_error_set(TS_ERR_INVALID, "import: nowhere to put the label");
    }
    pthread_mutex_lock(&ks->lock);
    rv = ts_ks_import(ks->backend, ks->state, blob, blob_len, trusted_sender, label_out);
    pthread_mutex_unlock(&ks->lock);
    return rv;
}

/* --- labels and curves ---------------------------------------------------------------------- */

ts_err ts_label_check(const char *label)
{
    if (label == NULL || label[0] == '\0') {
        return ts_error_set(TS_ERR_INVALID, "a label is required");
    }
    size_t n = strlen(label);
    if (n > TS_LABEL_MAX) {
        return ts_error_set(TS_ERR_INVALID,
                            "label '%.16s...' is %zu characters, over the %d allowed", label, n,
                            TS_LABEL_MAX);
    }
    for (size_t i = 0; i < n; i++) {
        char c = label[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '.' || c == '_' || c == '-';
        if (!ok) {
            return ts_error_set(TS_ERR_INVALID,
                                "label '%s' has '%c' at %zu: use only A-Z a-z 0-9 . _ -", label,
                                (c >= 0x20 && c < 0x7f) ? c : '?', i + 1);
        }
    }
    if (label[0] == '.') {
        return ts_error_set(TS_ERR_INVALID, "label '%s' may not start with '.'", label);
    }
    return TS_OK;
}

const char *ts_curve_name(ts_curve curve)
{
    switch (curve) {
    case TS_CURVE_P256:
        return "P-256";
    case TS_CURVE_P384:
        return "P-384";
    }
    return "unknown curve";
}

const char *ts_curve_group(ts_curve curve)
{
    return curve == TS_CURVE_P384 ? "secp384r1" : "prime256v1";
}

ts_err ts_curve_from_name(const char *name, ts_curve *curve)
{
    static const struct {
        const char *name;
        ts_curve curve;
    } names[] = {
        {"P-256", TS_CURVE_P256},     {"p256", TS_CURVE_P256},  {"prime256v1", TS_CURVE_P256},
        {"secp256r1", TS_CURVE_P256}, {"P-384", TS_CURVE_P384}, {"p384", TS_CURVE_P384},
        {"secp384r1", TS_CURVE_P384},
    };
    for (size_t i = 0; name != NULL && i < sizeof names / sizeof names[0]; i++) {
        if (strcasecmp(name, names[i].name) == 0) {
            *curve = names[i].curve;
            return TS_OK;
        }
    }
    return ts_error_set(TS_ERR_UNSUPPORTED, "curve '%s' is not supported: use P-256 or P-384",
                        name != NULL ? name : "");
}

ts_err ts_curve_of_pkey(const EVP_PKEY *pkey, ts_curve *curve)
{
    char group[64];
    if (!EVP_PKEY_is_a(pkey, "EC")) {
        return ts_error_set(TS_ERR_UNSUPPORTED, "a %s key is not an EC key",
                            EVP_PKEY_get0_type_name(pkey) ? EVP_PKEY_get0_type_name(pkey) : "?");
    }
    if (!EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group,
                                        NULL)) {
        return ts_error_set_openssl(TS_ERR_UNSUPPORTED, "EC key without a named curve");
    }
    return ts_curve_from_name(group, curve);
}

ts_err ts_pkey_from_point(ts_curve curve, const uint8_t *point, size_t len, EVP_PKEY **out)
{
    OSSL_PARAM params[3];
    EVP_PKEY_CTX *ctx = NULL;
    ts_err rv = TS_OK;

    *out = NULL;
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME,
                                                 (char *)ts_curve_group(curve), 0);
    params[1] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, (void *)point, len);
    params[2] = OSSL_PARAM_construct_end();
    ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    if (ctx == NULL || EVP_PKEY_fromdata_init(ctx) != 1 ||
        EVP_PKEY_fromdata(ctx, out, EVP_PKEY_PUBLIC_KEY, params) != 1) {
        rv =
            ts_error_set_openssl(TS_ERR_INVALID, "not a valid %s public key", ts_curve_name(curve));
    }
    EVP_PKEY_CTX_free(ctx);
    return rv;
}

ts_err ts_pkey_to_point(const EVP_PKEY *pkey, uint8_t *point, size_t size, size_t *len)
{
    if (!EVP_PKEY_get_octet_string_param(pkey, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, point, size,
                                         len)) {
        return ts_error_set_openssl(TS_ERR_INVALID, "cannot encode the EC public key");
    }
    return TS_OK;
}
