/*
 * Helpers of the firmware update tests (test_fota_*.c): a root and issuing CA (pki_test_util.h),
 * a signer certificate for a key in the soft: key store, images, signing into a file and a
 * streaming "device" that verifies a file and records what was released.
 */
#ifndef TS_TEST_FOTA_TEST_UTIL_H
#define TS_TEST_FOTA_TEST_UTIL_H

#include "pki/pki_internal.h"
#include "pki_test_util.h"
#include "tessera/fota.h"

typedef struct fota_fx {
    pki_fx pki;
    EVP_PKEY *key; /* "fw" in the key store */
    X509 *signer;  /* EKU codeSigning, issued by the issuing CA */
    X509 *no_eku;  /* same key, EKU clientAuth */
    X509_STORE *roots;
    STACK_OF(X509) * chain; /* the issuing CA */
    char path[PATH_MAX];
} fota_fx;

/* A leaf for key, issued by the issuing CA, with the given extendedKeyUsage value. */
static inline X509 *fota_leaf(fota_fx *fx, const char *cn, const char *eku)
{
    X509 *c = X509_new_ex(ts_provider_libctx(), NULL);
    assert_non_null(c);
    X509_set_version(c, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(c), (long)(rand() & 0x7fffffff) + 2);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(c), "CN", MBSTRING_ASC,
                               (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(c, X509_get_subject_name(fx->pki.issuing));
    X509_gmtime_adj(X509_getm_notBefore(c), -60);
    X509_gmtime_adj(X509_getm_notAfter(c), 86400);
    EVP_PKEY *pub = NULL;
    assert_int_equal(ts_keystore_public_key(fx->pki.ks, "fw", &pub), TS_OK);
    X509_set_pubkey(c, pub);
    EVP_PKEY_free(pub);
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, fx->pki.issuing, c, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_ext_key_usage, eku);
    assert_non_null(ext);
    X509_add_ext(c, ext, -1);
    X509_EXTENSION_free(ext);
    assert_int_equal(ts_pki_sign_cert(c, fx->pki.issuing_key, "SHA256"), TS_OK);
    return c;
}

static inline int fota_setup(void **state)
{
    fota_fx *fx = calloc(1, sizeof *fx);
    if (fx == NULL || pki_setup(&fx->pki) != 0 ||
        ts_keystore_generate(fx->pki.ks, "fw", TS_CURVE_P256) != TS_OK ||
        ts_keystore_evp_pkey(fx->pki.ks, "fw", &fx->key) != TS_OK) {
        return -1;
    }
    fx->signer = fota_leaf(fx, "fw-signer", "codeSigning");
    fx->no_eku = fota_leaf(fx, "fw-client", "clientAuth");
    fx->roots = X509_STORE_new();
    X509_STORE_add_cert(fx->roots, fx->pki.root);
    fx->chain = sk_X509_new_null();
    sk_X509_push(fx->chain, fx->pki.issuing);
    snprintf(fx->path, sizeof fx->path, "%s/f", fx->pki.tmp);
    *state = fx;
    return 0;
}

static inline int fota_teardown(void **state)
{
    fota_fx *fx = *state;
    EVP_PKEY_free(fx->key);
    X509_free(fx->signer);
    X509_free(fx->no_eku);
    X509_STORE_free(fx->roots);
    sk_X509_free(fx->chain);
    pki_teardown(&fx->pki);
    free(fx);
    return 0;
}

/* Writes len bytes of a pattern to path. */
static inline void fota_image(const char *path, uint8_t *data, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        data[i] = (uint8_t)(i * 31 + (i >> 8));
    }
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    fclose(f);
}

/* Reads a whole file (test sizes only). */
static inline uint8_t *fota_read(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return buf;
}

/* What the device received: checked against the original image as it arrives. */
typedef struct fota_sink {
    const uint8_t *image;
    size_t image_len;
    size_t got;
    int bad; /* a released byte differed from the image */
} fota_sink;

static inline int fota_release(void *ctx, const uint8_t *data, size_t len)
{
    fota_sink *s = ctx;
    if (s->got + len > s->image_len || memcmp(s->image + s->got, data, len) != 0) {
        s->bad = 1;
    }
    s->got += len;
    return 0;
}

/*
 * As fota_device(), decrypting with key label of ks (NULL: no key is set), or verifying a
 * plaintext payload with flags TS_FW_VERIFY_PLAIN.
 */
static inline ts_err fota_device_ex(const uint8_t *file, size_t len, X509_STORE *roots, size_t step,
                                    ts_keystore *ks, const char *label, unsigned flags,
                                    fota_sink *sink)
{
    ts_fw_header h;
    if (len < TS_FW_HEADER_LEN) {
        return TS_ERR_INVALID;
    }
    ts_err rv = ts_fw_header_parse(file, TS_FW_HEADER_LEN, &h);
    if (rv != TS_OK) {
        return rv;
    }
    size_t off = TS_FW_HEADER_LEN;
    if (len - off < h.manifest_len) {
        return TS_ERR_INVALID;
    }
    ts_fw_verifier *v = NULL;
    rv = ts_fw_verifier_open_ex(file + off, h.manifest_len, h.payload_len, roots, time(NULL), flags,
                                &v);
    if (rv == TS_OK && label != NULL) {
        rv = ts_fw_verifier_set_key(v, ks, label);
    }
    off += h.manifest_len;
    while (rv == TS_OK && off < len) {
        size_t n = len - off < step ? len - off : step;
        rv = ts_fw_verifier_feed(v, file + off, n, fota_release, sink);
        off += n;
    }
    if (rv == TS_OK) {
        rv = ts_fw_verifier_finish(v);
    }
    ts_fw_verifier_free(v);
    return rv;
}

/* Verifies a whole file held in memory as a device would stream it, in pieces of step bytes. */
static inline ts_err fota_device(const uint8_t *file, size_t len, X509_STORE *roots, size_t step,
                                 fota_sink *sink)
{
    return fota_device_ex(file, len, roots, step, NULL, NULL, 0, sink);
}

#endif
