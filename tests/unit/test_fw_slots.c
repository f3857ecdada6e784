/* The slot layout and the boot-state record (src/fota/slots.c). */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/crypto.h>

#include "common/file_internal.h"
#include "fota/slots.h"
#include "test_support.h"

static int setup(void **state)
{
    static char dir[512];
    if (ts_test_tmpdir(dir, sizeof dir) != 0) {
        return -1;
    }
    *state = dir;
    return 0;
}

static int teardown(void **state)
{
    ts_test_rmtree(*state);
    return 0;
}

static void sample(fw_state *s)
{
    fw_state_init(s, 3);
    s->generation = 41;
    s->active = 1;
    s->pending = 0;
    s->booted = 1;
    s->attempts = 2;
    s->confirmed = 1;
    s->slot[0] = (fw_slot_rec){.version = 9, .seq = 1732200000, .size = 13000};
    s->slot[1] = (fw_slot_rec){.version = 8, .seq = 1732100000, .size = 12000};
}

static void test_state_round_trip(void **state)
{
    fw_state s, back;
    char *json = NULL;
    (void)state;

    sample(&s);
    assert_int_equal(fw_state_encode(&s, &json), TS_OK);
    assert_string_equal(json,
                        "{\"active\":\"b\",\"attempts\":2,\"booted\":\"b\",\"confirmed\":true,"
                        "\"format\":1,\"generation\":41,\"max_attempts\":3,\"pending\":\"a\","
                        "\"slots\":{\"a\":{\"seq\":1732200000,\"size\":13000,\"version\":9},"
                        "\"b\":{\"seq\":1732100000,\"size\":12000,\"version\":8}}}");
    assert_int_equal(fw_state_decode((const uint8_t *)json, strlen(json), &back), TS_OK);
    assert_memory_equal(&s, &back, sizeof s);
    free(json);

    fw_state_init(&s, 1);
    assert_int_equal(fw_state_encode(&s, &json), TS_OK);
    assert_non_null(strstr(json, "\"pending\":null"));
    assert_non_null(strstr(json, "\"booted\":null"));
    assert_int_equal(fw_state_decode((const uint8_t *)json, strlen(json), &back), TS_OK);
    assert_int_equal(back.pending, FW_NONE);
    assert_int_equal(back.booted, FW_NONE);
    free(json);
}

/* Each record is the good one with one thing wrong. */
static void test_state_strict(void **state)
{
    static const struct {
        const char *json;
        const char *why;
    } bad[] = {
        {"", "empty"},
        {"[]", "not an object"},
        {"{\"active\":\"a\",\"attempts\":0,\"booted\":null,\"confirmed\":true,\"format\":2,"
         "\"generation\":1,\"max_attempts\":3,\"pending\":null,\"slots\":{\"a\":{\"seq\":0,"
         "\"size\":0,\"version\":0},\"b\":{\"seq\":0,\"size\":0,\"version\":0}}}",
         "format 2"},
        {"{\"active\":\"c\",\"attempts\":0,\"booted\":null,\"confirmed\":true,\"format\":1,"
         "\"generation\":1,\"max_attempts\":3,\"pending\":null,\"slots\":{\"a\":{\"seq\":0,"
         "\"size\":0,\"version\":0},\"b\":{\"seq\":0,\"size\":0,\"version\":0}}}",
         "slot c"},
        {"{\"active\":null,\"attempts\":0,\"booted\":null,\"confirmed\":true,\"format\":1,"
         "\"generation\":1,\"max_attempts\":3,\"pending\":null,\"slots\":{\"a\":{\"seq\":0,"
         "\"size\":0,\"version\":0},\"b\":{\"seq\":0,\"size\":0,\"version\":0}}}",
         "no active slot"},
        {"{\"active\":\"a\",\"attempts\":0,\"booted\":null,\"confirmed\":true,\"format\":1,"
         "\"generation\":1,\"max_attempts\":3,\"pending\":\"a\",\"slots\":{\"a\":{\"seq\":0,"
         "\"size\":0,\"version\":0},\"b\":{\"seq\":0,\"size\":0,\"version\":0}}}",
         "pending is the active slot"},
        {"{\"active\":\"a\",\"attempts\":0,\"booted\":null,\"confirmed\":true,\"format\":1,"
         "\"generation\":1,\"max_attempts\":0,\"pending\":null,\"slots\":{\"a\":{\"seq\":0,"
         "\"size\":0,\"version\":0},\"b\":{\"seq\":0,\"size\":0,\"version\":0}}}",
         "no attempts allowed"},
        {"{\"active\":\"a\",\"attempts\":0,\"booted\":null,\"confirmed\":true,\"format\":1,"
         "\"generation\":1,\"max_attempts\":3,\"pending\":null,\"slots\":{\"a\":{\"seq\":0,"
         "\"size\":0,\"version\":-1},\"b\":{\"seq\":0,\"size\":0,\"version\":0}}}",
         "a negative version"},
        {"{\"active\":\"a\",\"attempts\":0,\"booted\":null,\"confirmed\":true,\"format\":1,"
         "\"generation\":1,\"max_attempts\":3,\"pending\":null,\"slots\":{\"a\":{\"seq\":0,"
         "\"size\":0,\"version\":0},\"b\":{\"seq\":0,\"size\":0,\"version\":0}},\"x\":1}",
         "an unknown member"},
        {"{\"active\":\"a\",\"attempts\":0,\"booted\":null,\"confirmed\":true,\"format\":1,"
         "\"generation\":1,\"max_attempts\":3,\"pending\":null,\"slots\":{\"a\":{\"seq\":0,"
         "\"size\":0,\"version\":0}}}",
         "slot b missing"},
        {"{\"active\":\"a\",\"active\":\"b\",\"attempts\":0,\"booted\":null,\"confirmed\":true,"
         "\"format\":1,\"generation\":1,\"max_attempts\":3,\"pending\":null,\"slots\":{\"a\":{"
         "\"seq\":0,\"size\":0,\"version\":0},\"b\":{\"seq\":0,\"size\":0,\"version\":0}}}",
         "a duplicate member"},
    };
    fw_state s;
    (void)state;

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ts_err rv = fw_state_decode((const uint8_t *)bad[i].json, strlen(bad[i].json), &s);
        if (rv != TS_ERR_CORRUPT) {
            fail_msg("%s: got %d", bad[i].why, rv);
        }
        assert_string_equal(ts_error_message(), "the boot-state record does not parse");
    }
}

static int tmp_files(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;
    while (d != NULL && (e = readdir(d)) != NULL) {
        n += strstr(e->d_name, ".tmp-") != NULL;
    }
    if (d != NULL) {
        closedir(d);
    }
    return n;
}

static void test_state_files(void **state)
{
    const char *dir = *state;
    char path[600];
    fw_state s, back;

    assert_int_equal(fw_state_load(dir, &s), TS_ERR_NOT_FOUND);
    sample(&s);
    assert_int_equal(fw_state_save(dir, &s), TS_OK);
    assert_int_equal(s.generation, 42);
    assert_int_equal(fw_state_load(dir, &back), TS_OK);
    assert_memory_equal(&s, &back, sizeof s);
    assert_int_equal(tmp_files(dir), 0);

    /* A temporary file a killed write left behind goes; the record stays. */
    snprintf(path, sizeof path, "%s/fw.state.tmp-0011223344556677", dir);
    assert_int_equal(ts_file_write_atomic(path, (const uint8_t *)"{", 1, 0600), TS_OK);
    assert_int_equal(tmp_files(dir), 1);
    fw_sweep_tmp(dir);
    assert_int_equal(tmp_files(dir), 0);
    assert_int_equal(fw_state_load(dir, &back), TS_OK);

    snprintf(path, sizeof path, "%s/%s", dir, FW_STATE_FILE);
    assert_int_equal(ts_file_write_atomic(path, (const uint8_t *)"{\"active\":", 10, 0600), TS_OK);
    assert_int_equal(fw_state_load(dir, &back), TS_ERR_CORRUPT);
    assert_non_null(strstr(ts_error_message(), "the boot-state record does not parse"));
}

static void test_conf(void **state)
{
    const char *dir = *state;
    fw_conf c, back;

    assert_int_equal(fw_conf_load(dir, &c), TS_ERR_STATE);
    assert_non_null(strstr(ts_error_message(), "no firmware slots are set up"));
    memset(&c, 0, sizeof c);
    snprintf(c.slot[0], sizeof c.slot[0], "/dev/mmcblk0p2");
    snprintf(c.slot[1], sizeof c.slot[1], "/dev/mmcblk0p3");
    snprintf(c.hw, sizeof c.hw, "board-a1:rev/2");
    c.attempts = 5;
    assert_int_equal(fw_conf_save(dir, &c), TS_OK);
    assert_int_equal(fw_conf_load(dir, &back), TS_OK);
    assert_memory_equal(&c, &back, sizeof c);

    /* The same path twice is not a layout. */
    snprintf(c.slot[1], sizeof c.slot[1], "/dev/mmcblk0p2");
    assert_int_equal(fw_conf_save(dir, &c), TS_OK);
    assert_int_equal(fw_conf_load(dir, &back), TS_ERR_CORRUPT);
}

static void test_hw_check(void **state)
{
    char long_hw[TS_FW_HW_MAX + 2];
    (void)state;

    assert_int_equal(fw_hw_check("board-a1"), TS_OK);
    assert_int_equal(fw_hw_check("Vendor:board/rev_2.1"), TS_OK);
    assert_int_equal(fw_hw_check(""), TS_ERR_INVALID);
    assert_int_equal(fw_hw_check("board a1"), TS_ERR_INVALID);
    assert_non_null(strstr(ts_error_message(), "a hardware id is 1 to 64 characters"));
    memset(long_hw, 'x', sizeof long_hw - 1);
    long_hw[sizeof long_hw - 1] = '\0';
    assert_int_equal(fw_hw_check(long_hw), TS_ERR_INVALID);
    long_hw[TS_FW_HW_MAX] = '\0';
    assert_int_equal(fw_hw_check(long_hw), TS_OK);
}

static void test_roots_parse(void **state)
{
    static const char junk[] = "not a certificate\n";
    X509_STORE *roots = NULL;
    (void)state;

    assert_int_equal(fw_roots_parse((const uint8_t *)junk, sizeof junk - 1, &roots),
                     TS_ERR_INVALID);
    assert_null(roots);
    assert_string_equal(ts_error_message(), "the firmware roots hold no PEM certificate");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_state_round_trip),
        cmocka_unit_test(test_state_strict),
        cmocka_unit_test_setup_teardown(test_state_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_conf, setup, teardown),
        cmocka_unit_test(test_hw_check),
        cmocka_unit_test(test_roots_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
