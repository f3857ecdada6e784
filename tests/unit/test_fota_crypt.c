/*
 * Encrypted update files (src/fota encrypt.c, decrypt.c, feed.c): round trips to a device key
 * and to a fleet key in a soft: key store, the wrong recipient (TS_ERR_AUTH), verifying the
 * decrypted image again (TS_FW_VERIFY_PLAIN), reordered or altered ciphertext, dependencies, and
 * the strict parser of the manifest's "enc" member.
 */
#include <openssl/cms.h>

#include "fota_crypt_util.h"

enum { IMAGE_LEN = 70000, CHUNK = 4096, CHUNKS = 18 };

static ts_fw_sign_params params(fota_fx *fx)
{
    ts_fw_sign_params p = {.key = fx->key,
                           .cert = fx->signer,
                           .chain = fx->chain,
                           .version = 9,
                           .seq = 77,
                           .hw = "board-x",
                           .chunk_size = CHUNK};
    return p;
}

/* Signs image (made at fx->path.img) with p into fx->path and reads the file. */
static uint8_t *sign_read(fota_fx *fx, const ts_fw_sign_params *p, uint8_t *image, size_t *len)
{
    char img[PATH_MAX + 8];
    snprintf(img, sizeof img, "%s.img", fx->path);
    fota_image(img, image, IMAGE_LEN);
    ts_err rv = ts_fw_sign_file(p, img, fx->path);
    if (rv != TS_OK) {
        fail_msg("sign: %s", ts_error_message());
    }
    return fota_read(fx->path, len);
}

static void test_device_roundtrip(void **state)
{
    fota_fx *fx = *state;
    static uint8_t image[IMAGE_LEN];
    EVP_PKEY *dev = fota_pub(fx, FOTA_DEV_LABEL);
    ts_fw_sign_params p = params(fx);
    p.encrypt_to = dev;
    size_t len = 0;
    uint8_t *file = sign_read(fx, &p, image, &len);
    ts_fw_header h;
    assert_int_equal(ts_fw_header_parse(file, TS_FW_HEADER_LEN, &h), TS_OK);
    assert_int_equal(h.payload_len, IMAGE_LEN + CHUNKS * TS_FW_TAG_LEN);
    assert_int_equal(len, TS_FW_HEADER_LEN + h.manifest_len + h.payload_len);
    /* The payload on the wire is not the image. */
    assert_true(memcmp(file + TS_FW_HEADER_LEN + h.manifest_len, image, 64) != 0);

    /* Any piece size, through the helper thread (1 MiB) or not (1, 7 bytes). */
    const size_t steps[] = {1, 7, CHUNK + TS_FW_TAG_LEN, 5000, 1 << 20};
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        fota_sink sink = {.image = image, .image_len = IMAGE_LEN};
        if (fota_device_ex(file, len, fx->roots, steps[i], fx->pki.ks, FOTA_DEV_LABEL, 0, &sink) !=
            TS_OK) {
            fail_msg("step %zu: %s", steps[i], ts_error_message());
        }
        assert_int_equal(sink.got, IMAGE_LEN);
        assert_false(sink.bad);
    }

    ts_fw_verifier *v = NULL;
    assert_int_equal(ts_fw_verifier_open(file + TS_FW_HEADER_LEN, h.manifest_len, h.payload_len,
                                         fx->roots, time(NULL), &v),
                     TS_OK);
    const ts_fw_info *info = ts_fw_verifier_info(v);
    assert_true(info->encrypted);
    assert_false(info->enc_group);
    assert_int_equal(info->size, IMAGE_LEN);
    assert_int_equal(info->wire_size, h.payload_len);
    assert_int_equal(info->chunks, CHUNKS);
    assert_int_equal(strlen(info->enc_key_id), 64);
    /* No key: nothing is fed. Another key: TS_ERR_AUTH, naming the recipient. */
    size_t off = TS_FW_HEADER_LEN + h.manifest_len;
    fota_sink sink = {.image = image, .image_len = IMAGE_LEN};
    assert_int_equal(ts_fw_verifier_feed(v, file + off, 100, fota_release, &sink), TS_ERR_STATE);
    assert_non_null(strstr(ts_error_message(), "key must be set"));
    assert_int_equal(ts_fw_verifier_set_key(v, fx->pki.ks, FOTA_OTHER_LABEL), TS_ERR_AUTH);
    assert_non_null(strstr(ts_error_message(), "not this update's recipient"));
    assert_int_equal(ts_fw_verifier_set_key(v, fx->pki.ks, FOTA_FLEET_LABEL), TS_ERR_AUTH);
    assert_int_equal(ts_fw_verifier_set_key(v, fx->pki.ks, "missing"), TS_ERR_NOT_FOUND);
    assert_int_equal(ts_fw_verifier_set_key(v, fx->pki.ks, FOTA_DEV_LABEL), TS_OK);
    assert_int_equal(ts_fw_verifier_set_key(v, fx->pki.ks, FOTA_DEV_LABEL), TS_ERR_STATE);
    assert_int_equal(ts_fw_verifier_feed(v, file + off, len - off, fota_release, &sink), TS_OK);
    assert_int_equal(ts_fw_verifier_finish(v), TS_OK);
    assert_int_equal(sink.got, IMAGE_LEN);
    assert_false(sink.bad);
    ts_fw_verifier_free(v);

    /* The plaintext payload length is not this file's. */
    assert_int_equal(ts_fw_verifier_open(file + TS_FW_HEADER_LEN, h.manifest_len, IMAGE_LEN,
                                         fx->roots, time(NULL), &v),
                     TS_ERR_INVALID);
    assert_non_null(strstr(ts_error_message(), "wire size"));

    /* The decrypted image, as a slot holds it, verifies with TS_FW_VERIFY_PLAIN. */
    assert_int_equal(ts_fw_verifier_open_ex(file + TS_FW_HEADER_LEN, h.manifest_len, IMAGE_LEN,
                                            fx->roots, time(NULL), TS_FW_VERIFY_PLAIN, &v),
                     TS_OK);
    assert_int_equal(ts_fw_verifier_set_key(v, fx->pki.ks, FOTA_DEV_LABEL), TS_ERR_STATE);
    fota_sink plain = {.image = image, .image_len = IMAGE_LEN};
    assert_int_equal(ts_fw_verifier_feed(v, image, IMAGE_LEN, fota_release, &plain), TS_OK);
    assert_int_equal(ts_fw_verifier_finish(v), TS_OK);
    assert_int_equal(plain.got, IMAGE_LEN);
    ts_fw_verifier_free(v);
    assert_int_equal(ts_fw_verifier_open_ex(file + TS_FW_HEADER_LEN, h.manifest_len, IMAGE_LEN,
                                            fx->roots, time(NULL), 0x80, &v),
                     TS_ERR_INVALID);
    free(file);
    EVP_PKEY_free(dev);
}

static void test_group_roundtrip(void **state)
{
    fota_fx *fx = *state;
    static uint8_t image[IMAGE_LEN];
    EVP_PKEY *fleet = fota_pub(fx, FOTA_FLEET_LABEL);
    ts_fw_depend deps[2] = {{.name = "boot", .min_version = 4},
                            {.name = "modem:a", .min_version = 0}};
    ts_fw_sign_params p = params(fx);
    p.encrypt_to = fleet;
    p.encrypt_group = FOTA_FLEET_ID;
    p.depends = deps;
    p.depends_count = 2;
    size_t len = 0;
    uint8_t *file = sign_read(fx, &p, image, &len);
    fota_sink sink = {.image = image, .image_len = IMAGE_LEN};
    assert_int_equal(
        fota_device_ex(file, len, fx->roots, 65536, fx->pki.ks, FOTA_FLEET_LABEL, 0, &sink), TS_OK);
    assert_int_equal(sink.got, IMAGE_LEN);
    assert_false(sink.bad);
    /* A device key is not the fleet key: the content key does not unwrap. */
    fota_sink none = {.image = image, .image_len = IMAGE_LEN};
    assert_int_equal(
        fota_device_ex(file, len, fx->roots, 65536, fx->pki.ks, FOTA_DEV_LABEL, 0, &none),
        TS_ERR_AUTH);
    assert_non_null(strstr(ts_error_message(), "does not unwrap"));
    assert_int_equal(none.got, 0);

    ts_fw_header h;
    ts_fw_verifier *v = NULL;
    assert_int_equal(ts_fw_header_parse(file, TS_FW_HEADER_LEN, &h), TS_OK);
    assert_int_equal(ts_fw_verifier_open(file + TS_FW_HEADER_LEN, h.manifest_len, h.payload_len,
                                         fx->roots, time(NULL), &v),
                     TS_OK);
    const ts_fw_info *info = ts_fw_verifier_info(v);
    assert_true(info->encrypted);
    assert_true(info->enc_group);
    assert_string_equal(info->enc_key_id, FOTA_FLEET_ID);
    assert_int_equal(info->depends_count, 2);
    assert_string_equal(info->depends[1].name, "modem:a");
    assert_int_equal(info->depends[0].min_version, 4);
    ts_fw_verifier_free(v);

    /* Two wire chunks swapped: the tags bind each chunk to its index. */
    size_t off = TS_FW_HEADER_LEN + h.manifest_len;
    size_t wire = CHUNK + TS_FW_TAG_LEN;
    uint8_t *tmp = malloc(wire);
    memcpy(tmp, file + off + wire, wire);
    memcpy(file + off + wire, file + off, wire);
    memcpy(file + off, tmp, wire);
    free(tmp);
    fota_sink swapped = {.image = image, .image_len = IMAGE_LEN};
    assert_int_equal(
        fota_device_ex(file, len, fx->roots, 1 << 20, fx->pki.ks, FOTA_FLEET_LABEL, 0, &swapped),
        TS_ERR_AUTH);
    assert_non_null(strstr(ts_error_message(), "chunk 0 does not decrypt"));
    assert_int_equal(swapped.got, 0);
    free(file);
    EVP_PKEY_free(fleet);
}

static void test_sign_refusals(void **state)
{
    fota_fx *fx = *state;
    char img[PATH_MAX + 8];
    static uint8_t image[IMAGE_LEN];
    snprintf(img, sizeof img, "%s.img", fx->path);
    fota_image(img, image, 5000);
    EVP_PKEY *p384 = pki_ec_key("P-384");
    ts_fw_sign_params p = params(fx);
    p.encrypt_to = p384;
    assert_int_equal(ts_fw_sign_file(&p, img, fx->path), TS_ERR_UNSUPPORTED);
    assert_non_null(strstr(ts_error_message(), "P-256"));
    EVP_PKEY *fleet = fota_pub(fx, FOTA_FLEET_LABEL);
    p.encrypt_to = fleet;
    p.encrypt_group = "bad id";
    assert_int_equal(ts_fw_sign_file(&p, img, fx->path), TS_ERR_INVALID);
    p.encrypt_group = "x123456789x123456789x123456789x123456789x123456789x123456789abcde";
    assert_int_equal(ts_fw_sign_file(&p, img, fx->path), TS_ERR_INVALID);
    p.encrypt_to = NULL;
    p.encrypt_group = FOTA_FLEET_ID;
    assert_int_equal(ts_fw_sign_file(&p, img, fx->path), TS_ERR_INVALID);
    ts_fw_depend deps[1] = {{.name = "bad name", .min_version = 1}};
    p = params(fx);
    p.depends = deps;
    p.depends_count = 1;
    assert_int_equal(ts_fw_sign_file(&p, img, fx->path), TS_ERR_INVALID);
    p.depends_count = TS_FW_DEPENDS_MAX + 1;
    assert_int_equal(ts_fw_sign_file(&p, img, fx->path), TS_ERR_INVALID);
    EVP_PKEY_free(fleet);
    EVP_PKEY_free(p384);
}

static char *hex(const uint8_t *in, size_t len)
{
    char *out = malloc(2 * len + 1);
    for (size_t i = 0; i < len; i++) {
        snprintf(out + 2 * i, 3, "%02x", in[i]);
    }
    return out;
}

/* A manifest of one 100-byte chunk with the given "enc" member text. */
static ts_err parse_enc(const char *enc, ts_fw_info *info)
{
    char json[2048];
    snprintf(json, sizeof json,
             "{\"format\":1,\"version\":2,\"seq\":3,\"hw\":\"b\",\"size\":100,\"chunk_size\":1024,"
             "\"chunks\":[\"%064d\"],\"enc\":%s}",
             0, enc);
    uint8_t *dig = NULL;
    ts_err rv = ts_fw_manifest_parse(json, strlen(json), info, &dig);
    if (rv != TS_OK) {
        assert_null(dig);
    }
    free(dig);
    return rv;
}

static void test_enc_parser(void **state)
{
    (void)state;
    EVP_PKEY *k = pki_ec_key("P-256");
    EVP_PKEY *k384 = pki_ec_key("P-384");
    unsigned char *der = NULL, *der384 = NULL;
    int n = i2d_PUBKEY(k, &der);
    int n384 = i2d_PUBKEY(k384, &der384);
    assert_int_equal(n, 91);
    char *epk = hex(der, (size_t)n);
    char *epk384 = hex(der384, (size_t)n384);
    const char *w =
        "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff0011223344556677";
    const char *id = "aa00000000000000000000000000000000000000000000000000000000000000";
    char buf[1024];
    ts_fw_info info;
#define ENC(alg, e, group, kid, wrapped, wire)                                                     \
    (snprintf(buf, sizeof buf,                                                                     \
              "{\"alg\":%s,\"epk\":\"%s\",\"group\":%s,\"key_id\":\"%s\",\"wrapped_key\":\"%s\","  \
              "\"wire_size\":%s}",                                                                 \
              alg, e, group, kid, wrapped, wire),                                                  \
     buf)
    assert_int_equal(parse_enc(ENC("\"A256GCM\"", epk, "false", id, w, "116"), &info), TS_OK);
    assert_true(info.encrypted);
    assert_false(info.enc_group);
    assert_int_equal(info.wire_size, 116);
    assert_string_equal(info.enc_key_id, id);
    assert_int_equal(parse_enc(ENC("\"A256GCM\"", epk, "true", "fleet.A_1-x", w, "116"), &info),
                     TS_OK);
    assert_true(info.enc_group);

    const char *bad[] = {
        ENC("\"A128GCM\"", epk, "false", id, w, "116"),
        ENC("1", epk, "false", id, w, "116"),
        ENC("\"A256GCM\"", epk, "false", id, w, "100"),
        ENC("\"A256GCM\"", epk, "false", id, w, "117"),
        ENC("\"A256GCM\"", epk, "false", id, w, "\"116\""),
        ENC("\"A256GCM\"", epk, "1", id, w, "116"),
        ENC("\"A256GCM\"", epk, "false", "fleet-1", w, "116"),
        ENC("\"A256GCM\"", epk, "true", "bad id", w, "116"),
        ENC("\"A256GCM\"", epk, "true", "", w, "116"),
        ENC("\"A256GCM\"", epk, "false", id, "0011", "116"),
        ENC("\"A256GCM\"", epk, "false", id,
            "00112233445566778899AABBCCDDEEFF00112233445566778899aabbccddeeff0011223344556677",
            "116"),
        ENC("\"A256GCM\"", epk384, "false", id, w, "116"),
        ENC("\"A256GCM\"", "00", "false", id, w, "116"),
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (parse_enc(bad[i], &info) == TS_OK) {
            fail_msg("bad enc %zu accepted: %s", i, bad[i]);
        }
    }
    /* A valid-looking epk that is not a P-256 point; an unknown and a duplicate member. */
    char *garbage = strdup(epk);
    garbage[180] = garbage[180] == '0' ? '1' : '0';
    garbage[100] = garbage[100] == '0' ? '1' : '0';
    assert_int_not_equal(parse_enc(ENC("\"A256GCM\"", garbage, "false", id, w, "116"), &info),
                         TS_OK);
    char extra[1200];
    snprintf(extra, sizeof extra, "%.*s,\"x\":1}",
             (int)strlen(ENC("\"A256GCM\"", epk, "false", id, w, "116")) - 1, buf);
    assert_int_equal(parse_enc(extra, &info), TS_ERR_INVALID);
    assert_non_null(strstr(ts_error_message(), "enc.x"));
    snprintf(extra, sizeof extra, "%.*s,\"group\":true}",
             (int)strlen(ENC("\"A256GCM\"", epk, "false", id, w, "116")) - 1, buf);
    assert_int_equal(parse_enc(extra, &info), TS_ERR_INVALID);
    assert_int_equal(parse_enc("[]", &info), TS_ERR_INVALID);
    assert_int_equal(parse_enc("{}", &info), TS_ERR_UNSUPPORTED);
#undef ENC
    free(garbage);
    free(epk);
    free(epk384);
    OPENSSL_free(der);
    OPENSSL_free(der384);
    EVP_PKEY_free(k);
    EVP_PKEY_free(k384);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_device_roundtrip),
        cmocka_unit_test(test_group_roundtrip),
        cmocka_unit_test(test_sign_refusals),
        cmocka_unit_test(test_enc_parser),
    };
    return cmocka_run_group_tests(tests, fota_crypt_setup, fota_teardown);
}
