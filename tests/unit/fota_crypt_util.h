/*
 * Helpers of the encrypted firmware tests (test_fota_crypt.c, test_fota_flip.c): a device key
 * and a fleet key in the fixture's soft: key store, and a streaming "device" that decrypts.
 */
#ifndef TS_TEST_FOTA_CRYPT_UTIL_H
#define TS_TEST_FOTA_CRYPT_UTIL_H

#include "fota_test_util.h"

#define FOTA_DEV_LABEL   "dev"
#define FOTA_OTHER_LABEL "other"
#define FOTA_FLEET_ID    "fleet-1"
#define FOTA_FLEET_LABEL TS_FW_GROUP_LABEL_PREFIX FOTA_FLEET_ID

static inline int fota_crypt_setup(void **state)
{
    if (fota_setup(state) != 0) {
        return -1;
    }
    fota_fx *fx = *state;
    if (ts_keystore_generate(fx->pki.ks, FOTA_DEV_LABEL, TS_CURVE_P256) != TS_OK ||
        ts_keystore_generate(fx->pki.ks, FOTA_OTHER_LABEL, TS_CURVE_P256) != TS_OK ||
        ts_keystore_generate(fx->pki.ks, FOTA_FLEET_LABEL, TS_CURVE_P256) != TS_OK) {
        return -1;
    }
    return 0;
}

static inline EVP_PKEY *fota_pub(fota_fx *fx, const char *label)
{
    EVP_PKEY *pub = NULL;
    assert_int_equal(ts_keystore_public_key(fx->pki.ks, label, &pub), TS_OK);
    return pub;
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

#endif
