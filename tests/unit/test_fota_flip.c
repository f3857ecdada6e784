/*
 * A flipped bit at every byte of a small update file (header, manifest, signature, certificates,
 * payload) is never accepted, and nothing unauthenticated is ever released: whatever the verifier
 * hands out before it refuses is byte for byte the original image.
 */
#include "fota_crypt_util.h"

enum { IMAGE_LEN = 2500, CHUNK = 1024 };

static void flip_every_byte(fota_fx *fx, int encrypted)
{
    uint8_t image[IMAGE_LEN];
    char img[PATH_MAX + 8];
    snprintf(img, sizeof img, "%s.img", fx->path);
    fota_image(img, image, sizeof image);
    EVP_PKEY *dev = encrypted ? fota_pub(fx, FOTA_DEV_LABEL) : NULL;
    ts_fw_sign_params p = {.key = fx->key,
                           .cert = fx->signer,
                           .chain = fx->chain,
                           .version = 1,
                           .seq = 1,
                           .hw = "board-x",
                           .chunk_size = CHUNK,
                           .encrypt_to = dev};
    assert_int_equal(ts_fw_sign_file(&p, img, fx->path), TS_OK);
    EVP_PKEY_free(dev);
    const char *label = encrypted ? FOTA_DEV_LABEL : NULL;
    size_t len = 0;
    uint8_t *file = fota_read(fx->path, &len);
    fota_sink sink = {.image = image, .image_len = sizeof image};
    assert_int_equal(fota_device_ex(file, len, fx->roots, 300, fx->pki.ks, label, 0, &sink), TS_OK);
    assert_int_equal(sink.got, sizeof image);

    size_t released = 0;
    size_t accepted = 0;
    /* Bit i%8 and bit 5 (case and constructed-tag flips) by default; all 8 on request. */
    const char *all = getenv("TS_FOTA_FLIP_ALL_BITS");
    int flips = all != NULL && strcmp(all, "1") == 0 ? 8 : 2;
    for (size_t i = 0; i < len; i++) {
        for (int k = 0; k < flips; k++) {
            int bit = flips == 8 ? k : (k == 0 ? (int)(i % 8) : 5);
            file[i] ^= (uint8_t)(1u << bit);
            fota_sink s = {.image = image, .image_len = sizeof image};
            ts_err rv = fota_device_ex(file, len, fx->roots, 300, fx->pki.ks, label, 0, &s);
            file[i] ^= (uint8_t)(1u << bit);
            if (rv == TS_OK) {
                fprintf(stderr, "accepted: a flip of bit %d at byte %zu of %zu\n", bit, i, len);
                accepted++;
            }
            if (s.bad) {
                fail_msg("a flip at byte %zu released unauthenticated data", i);
            }
            released += s.got;
        }
    }
    fprintf(stderr,
            "%s: %zu bytes x %d flips refused; %zu authentic bytes released before refusals\n",
            encrypted ? "encrypted" : "plain", len, flips, released);
    free(file);
    assert_int_equal(accepted, 0);
}

static void test_flip_every_byte(void **state)
{
    flip_every_byte(*state, 0);
}

static void test_flip_every_byte_encrypted(void **state)
{
    flip_every_byte(*state, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_flip_every_byte),
        cmocka_unit_test(test_flip_every_byte_encrypted),
    };
    return cmocka_run_group_tests(tests, fota_crypt_setup, fota_teardown);
}
