/* Durable file writes and capped reads (src/common/file.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>
#include <openssl/crypto.h>

#include "common/file_internal.h"
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

static void path_in(void **state, const char *name, char *out, size_t size)
{
    snprintf(out, size, "%s/%s", (const char *)*state, name);
}

static void test_write_creates_with_mode_and_replaces(void **state)
{
    char path[600];
    struct stat st;
    uint8_t *data = NULL;
    size_t len = 0;

    path_in(state, "f", path, sizeof path);
    assert_int_equal(ts_file_write_atomic(path, (const uint8_t *)"one", 3, 0600), TS_OK);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(ts_file_write_atomic(path, (const uint8_t *)"second", 6, 0644), TS_OK);
    assert_int_equal(ts_file_read(path, 100, &data, &len), TS_OK);
    assert_int_equal(len, 6);
    assert_memory_equal(data, "second", 6);
    OPENSSL_clear_free(data, len);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0644);
}

static void test_write_to_device_keeps_the_device(void **state)
{
    struct stat st;
    (void)state;
    /* Renaming over /dev/null would replace the device node: it must be written in place. */
    assert_int_equal(ts_file_write_atomic("/dev/null", (const uint8_t *)"x", 1, 0600), TS_OK);
    assert_int_equal(stat("/dev/null", &st), 0);
    assert_true(S_ISCHR(st.st_mode));
}

static void test_write_to_directory_refused(void **state)
{
    assert_int_equal(ts_file_write_atomic(*state, (const uint8_t *)"x", 1, 0600), TS_ERR_INVALID);
}

static void test_read_caps_and_missing(void **state)
{
    char path[600];
    uint8_t *data = NULL;
    size_t len = 0;

    path_in(state, "big", path, sizeof path);
    assert_int_equal(ts_file_write_atomic(path, (const uint8_t *)"0123456789", 10, 0600), TS_OK);
    assert_int_equal(ts_file_read(path, 9, &data, &len), TS_ERR_CORRUPT);
    assert_null(data);
    assert_int_equal(ts_file_read(path, 10, &data, &len), TS_OK);
    OPENSSL_clear_free(data, len);
    path_in(state, "missing", path, sizeof path);
    assert_int_equal(ts_file_read(path, 10, &data, &len), TS_ERR_NOT_FOUND);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_write_creates_with_mode_and_replaces, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_to_device_keeps_the_device, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_to_directory_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_caps_and_missing, setup, teardown),
    };
    return cmocka_run_group_tests_name("file", tests, NULL, NULL);
}
