/*
 * Firmware update files (src/fota): sign and stream-verify round trips, and refusals: a signer
 * without codeSigning, another root, truncation, excess data, a strict manifest parser and the
 * header checks.
 */
#include <openssl/cms.h>

#include "fota_test_util.h"

enum { IMAGE_LEN = 10000, CHUNK = 4096 };

static ts_fw_sign_params params(fota_fx *fx, X509 *cert)
{
    ts_fw_sign_params p = {.key = fx->key,
                           .cert = cert,
                           .chain = fx->chain,
                           .version = 9,
                           .seq = 77,
                           .min_version = 3,
                           .has_min_version = 1,
                           .hw = "board-x",
                           .chunk_size = CHUNK};
    return p;
}

static void test_roundtrip(void **state)
{
    fota_fx *fx = *state;
    uint8_t image[IMAGE_LEN];
    char img[PATH_MAX + 8];
    snprintf(img, sizeof img, "%s.img", fx->path);
    fota_image(img, image, sizeof image);
    ts_fw_sign_params p = params(fx, fx->signer);
    assert_int_equal(ts_fw_sign_file(&p, img, fx->path), TS_OK);
    size_t len = 0;
    uint8_t *file = fota_read(fx->path, &len);
    assert_memory_equal(file, "TSFW", 4);

    /* Any piece size: 1 byte, odd sizes, more than a chunk. */
    const size_t steps[] = {1, 7, 4096, 5000, 1 << 20};
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        fota_sink sink = {.image = image, .image_len = sizeof image};
        if (fota_device(file, len, fx->roots, steps[i], &sink) != TS_OK) {
            fail_msg("step %zu: %s", steps[i], ts_error_message());
        }
        assert_int_equal(sink.got, sizeof image);
        assert_false(sink.bad);
    }

    ts_fw_header h;
    assert_int_equal(ts_fw_header_parse(file, TS_FW_HEADER_LEN, &h), TS_OK);
    ts_fw_verifier *v = NULL;
    assert_int_equal(ts_fw_verifier_open(file + TS_FW_HEADER_LEN, h.manifest_len, h.payload_len,
                                         fx->roots, time(NULL), &v),
                     TS_OK);
    const ts_fw_info *info = ts_fw_verifier_info(v);
    assert_int_equal(info->version, 9);
    assert_int_equal(info->seq, 77);
    assert_int_equal(info->min_version, 3);
    assert_true(info->has_min_version);
    assert_string_equal(info->hw, "board-x");
    assert_int_equal(info->size, IMAGE_LEN);
    assert_int_equal(info->chunk_size, CHUNK);
    assert_int_equal(info->chunks, 3);
    assert_int_equal(X509_cmp(ts_fw_verifier_signer(v), fx->signer), 0);

    /* Finishing early is refused; so is a byte too many. */
    assert_int_equal(ts_fw_verifier_finish(v), TS_ERR_INVALID);
    ts_fw_verifier_free(v);
    assert_int_equal(ts_fw_verifier_open(file + TS_FW_HEADER_LEN, h.manifest_len, h.payload_len,
                                         fx->roots, time(NULL), &v),
                     TS_OK);
    size_t off = TS_FW_HEADER_LEN + h.manifest_len;
    fota_sink sink = {.image = image, .image_len = sizeof image};
    assert_int_equal(ts_fw_verifier_feed(v, file + off, len - off, fota_release, &sink), TS_OK);
    assert_int_equal(ts_fw_verifier_feed(v, file, 1, fota_release, &sink), TS_ERR_INVALID);
    assert_int_equal(ts_fw_verifier_feed(v, file, 0, fota_release, &sink), TS_ERR_STATE);
    ts_fw_verifier_free(v);

    /* The manifest must describe this payload's size. */
    assert_int_equal(ts_fw_verifier_open(file + TS_FW_HEADER_LEN, h.manifest_len, h.payload_len + 1,
                                         fx->roots, time(NULL), &v),
                     TS_ERR_INVALID);
    assert_null(v);
    free(file);
}

static void test_refusals(void **state)
{
    fota_fx *fx = *state;
    uint8_t image[IMAGE_LEN];
    char img[PATH_MAX + 8];
    snprintf(img, sizeof img, "%s.img", fx->path);
    fota_image(img, image, sizeof image);

    /* A signer without codeSigning cannot sign... */
    ts_fw_sign_params p = params(fx, fx->no_eku);
    assert_int_equal(ts_fw_sign_file(&p, img, fx->path), TS_ERR_POLICY);
    p = params(fx, fx->signer);
    p.hw = "bad hw";
    assert_int_equal(ts_fw_sign_file(&p, img, fx->path), TS_ERR_INVALID);
    p = params(fx, fx->signer);
    p.chunk_size = 100;
    assert_int_equal(ts_fw_sign_file(&p, img, fx->path), TS_ERR_INVALID);
    char empty[PATH_MAX + 8];
    snprintf(empty, sizeof empty, "%s.empty", fx->path);
    fota_image(empty, image, 0);
    p = params(fx, fx->signer);
    assert_int_equal(ts_fw_sign_file(&p, empty, fx->path), TS_ERR_INVALID);
    p.hw = NULL;
    assert_int_equal(ts_fw_sign_file(&p, img, fx->path), TS_ERR_INVALID);

    /* ...and a manifest it signed anyway (made with CMS directly) is refused. */
    p = params(fx, fx->signer);
    assert_int_equal(ts_fw_sign_file(&p, img, fx->path), TS_OK);
    size_t len = 0;
    uint8_t *file = fota_read(fx->path, &len);
    ts_fw_header h;
    assert_int_equal(ts_fw_header_parse(file, TS_FW_HEADER_LEN, &h), TS_OK);
    const unsigned char *q = file + TS_FW_HEADER_LEN;
    CMS_ContentInfo *cms = d2i_CMS_ContentInfo(NULL, &q, h.manifest_len);
    assert_non_null(cms);
    ASN1_OCTET_STRING **content = CMS_get0_content(cms);
    BIO *in = BIO_new_mem_buf(ASN1_STRING_get0_data(*content), ASN1_STRING_length(*content));
    CMS_ContentInfo *bad =
        CMS_sign(fx->no_eku, fx->key, fx->chain, in, CMS_BINARY | CMS_NOSMIMECAP);
    assert_non_null(bad);
    unsigned char *der = NULL;
    int der_len = i2d_CMS_ContentInfo(bad, &der);
    assert_true(der_len > 0);
    ts_fw_verifier *v = NULL;
    assert_int_equal(
        ts_fw_verifier_open(der, (size_t)der_len, h.payload_len, fx->roots, time(NULL), &v),
        TS_ERR_POLICY);
    assert_non_null(strstr(ts_error_message(), "codeSigning"));
    OPENSSL_free(der);
    CMS_ContentInfo_free(bad);
    CMS_ContentInfo_free(cms);
    BIO_free(in);

    /* Another root. */
    EVP_PKEY *other_key = pki_ec_key("P-256");
    X509 *other = pki_ca("Other Root", other_key, NULL, other_key, 1, 30);
    X509_STORE *other_roots = X509_STORE_new();
    X509_STORE_add_cert(other_roots, other);
    fota_sink sink = {.image = image, .image_len = sizeof image};
    assert_int_equal(fota_device(file, len, other_roots, 512, &sink), TS_ERR_AUTH);
    assert_non_null(strstr(ts_error_message(), "trusted root"));
    assert_int_equal(sink.got, 0);
    X509_STORE_free(other_roots);
    X509_free(other);
    EVP_PKEY_free(other_key);

    /* Expired at the given time: the chain is checked at that time. */
    assert_int_equal(ts_fw_verifier_open(file + TS_FW_HEADER_LEN, h.manifest_len, h.payload_len,
                                         fx->roots, time(NULL) + 400L * 86400, &v),
                     TS_ERR_AUTH);

    /* Every truncation is refused; what was released is always authentic. */
    for (size_t cut = 0; cut < len; cut += (cut < TS_FW_HEADER_LEN + h.manifest_len ? 13 : 1)) {
        fota_sink s = {.image = image, .image_len = sizeof image};
        assert_int_not_equal(fota_device(file, cut, fx->roots, 4096, &s), TS_OK);
        assert_false(s.bad);
        assert_true(s.got <= cut);
    }
    free(file);
}

static void test_manifest_parser(void **state)
{
    (void)state;
    ts_fw_info info;
    uint8_t *dig = NULL;
    const char *h64 = "\"0000000000000000000000000000000000000000000000000000000000000000\"";
    char ok[512];
    snprintf(ok, sizeof ok,
             "{\"format\":1,\"version\":2,\"seq\":3,\"hw\":\"b\",\"size\":5,\"chunk_size\":1024,"
             "\"chunks\":[%s],\"depends\":[{\"name\":\"boot\",\"min_version\":4}]}",
             h64);
    assert_int_equal(ts_fw_manifest_parse(ok, strlen(ok), &info, &dig), TS_OK);
    assert_int_equal(info.chunks, 1);
    assert_int_equal(info.depends_count, 1);
    assert_string_equal(info.depends[0].name, "boot");
    assert_int_equal(info.depends[0].min_version, 4);
    assert_false(info.has_min_version);
    free(dig);

    const char *bad[] = {
        "[]",
        "{\"format\":1}",
        "{\"format\":2,\"version\":2,\"seq\":3,\"hw\":\"b\",\"size\":0,\"chunk_size\":1024,"
        "\"chunks\":[]}",
        "{\"format\":1,\"version\":-2,\"seq\":3,\"hw\":\"b\",\"size\":0,\"chunk_size\":1024,"
        "\"chunks\":[]}",
        "{\"format\":1,\"version\":2,\"seq\":3,\"hw\":\"b\",\"size\":0,\"chunk_size\":1024,"
        "\"chunks\":[],\"extra\":1}",
        "{\"format\":1,\"version\":2,\"version\":3,\"seq\":3,\"hw\":\"b\",\"size\":0,"
        "\"chunk_size\":1024,\"chunks\":[]}",
        "{\"format\":1,\"version\":2,\"seq\":3,\"hw\":\"b\",\"size\":1,\"chunk_size\":1024,"
        "\"chunks\":[]}",
        "{\"format\":1,\"version\":2,\"seq\":3,\"hw\":\"b\",\"size\":0,\"chunk_size\":10,"
        "\"chunks\":[]}",
        "{\"format\":1,\"version\":2.5,\"seq\":3,\"hw\":\"b\",\"size\":0,\"chunk_size\":1024,"
        "\"chunks\":[]}",
        "{\"format\":1,\"version\":2,\"seq\":3,\"hw\":\"\",\"size\":0,\"chunk_size\":1024,"
        "\"chunks\":[]}",
        "{\"format\":1,\"version\":2,\"seq\":3,\"hw\":\"b\",\"size\":1,\"chunk_size\":1024,"
        "\"chunks\":[\"00\"]}",
        "{\"format\":1,\"version\":2,\"seq\":3,\"hw\":\"b\",\"size\":0,\"chunk_size\":1024,"
        "\"chunks\":[]} x",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ts_err rv = ts_fw_manifest_parse(bad[i], strlen(bad[i]), &info, &dig);
        if (rv == TS_OK) {
            fail_msg("bad manifest %zu accepted", i);
        }
        assert_null(dig);
    }
}

static void test_header(void **state)
{
    (void)state;
    uint8_t h[TS_FW_HEADER_LEN] = {'T', 'S', 'F', 'W', 0, 1, 0, 0, 0, 0, 1, 0};
    ts_fw_header out;
    assert_int_equal(ts_fw_header_parse(h, sizeof h, &out), TS_OK);
    assert_int_equal(out.manifest_len, 256);
    assert_int_equal(ts_fw_header_parse(h, sizeof h - 1, &out), TS_ERR_INVALID);
    h[0] = 'X';
    assert_int_equal(ts_fw_header_parse(h, sizeof h, &out), TS_ERR_INVALID);
    h[0] = 'T';
    h[5] = 2;
    assert_int_equal(ts_fw_header_parse(h, sizeof h, &out), TS_ERR_UNSUPPORTED);
    h[5] = 1;
    h[10] = 0;
    assert_int_equal(ts_fw_header_parse(h, sizeof h, &out), TS_ERR_INVALID);
    h[8] = 0x7f;
    assert_int_equal(ts_fw_header_parse(h, sizeof h, &out), TS_ERR_INVALID);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_manifest_parser),
        cmocka_unit_test(test_header),
    };
    return cmocka_run_group_tests(tests, fota_setup, fota_teardown);
}
