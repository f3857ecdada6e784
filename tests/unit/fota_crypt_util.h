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

#endif
