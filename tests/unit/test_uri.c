/* Key-store URI parser: table-driven good and bad URIs for soft: and pkcs11:. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "keystore/keystore_internal.h"
#include "test_support.h"

#define SOFTHSM "/usr/lib/softhsm/libsofthsm2.so"

typedef struct uri_case {
    const char *text; /* @PIN@, @BIG@, @EMPTY@, @DIR@ are replaced by files the test makes */
    const char *env_pin;
    const char *env_module;
    ts_err want_rv;
    ts_ks_scheme want_scheme;
    const char *want_path;
    const char *want_object;
    const char *want_pin;
    const char *want_module;
    const char *want_token;
    const char *want_manufacturer;
    const char *want_serial;
    const char *want_model;
    const char *want_slot; /* decimal, or NULL for none (-1) */
    const char *want_redacted;
    const char *secret; /* must not appear in the error message */
} uri_case;

static const uri_case good_cases[] = {
    {.text = "soft:/tmp/ks",
     .want_scheme = TS_KS_SOFT,
     .want_path = "/tmp/ks",
     .want_redacted = "soft:/tmp/ks"},
    {.text = "soft:/tmp/my%20store;object=dev-key?pin-value=12%2634",
     .want_scheme = TS_KS_SOFT,
     .want_path = "/tmp/my store",
     .want_object = "dev-key",
     .want_pin = "12&34",
     .want_redacted = "soft:/tmp/my%20store;object=dev-key?pin-value=***"},
    {.text = "SOFT:relative/dir", .want_scheme = TS_KS_SOFT, .want_path = "relative/dir"},
    {.text = "soft:/d?pin-source=@PIN@",
     .want_scheme = TS_KS_SOFT,
     .want_path = "/d",
     .want_pin = "from-file",
     .want_redacted = "soft:/d?pin-source=@PIN@"},
    {.text = "soft:/d?pin-source=file://@PIN@",
     .want_scheme = TS_KS_SOFT,
     .want_path = "/d",
     .want_pin = "from-file"},
    {.text = "soft:/d",
     .env_pin = "env-pin",
     .want_scheme = TS_KS_SOFT,
     .want_path = "/d",
     .want_pin = "env-pin"},
    {.text = "soft:/d?pin-value=uri-pin",
     .env_pin = "env-pin",
     .want_scheme = TS_KS_SOFT,
     .want_path = "/d",
     .want_pin = "uri-pin",
     .want_redacted = "soft:/d?pin-value=***"},
    {.text = "pkcs11:token=Tessera%20CA;object=ca-key?module-path=" SOFTHSM "&pin-value=1234",
     .want_scheme = TS_KS_PKCS11,
     .want_object = "ca-key",
     .want_pin = "1234",
     .want_module = SOFTHSM,
     .want_token = "Tessera CA",
     .want_redacted =
         "pkcs11:token=Tessera%20CA;object=ca-key?module-path=" SOFTHSM "&pin-value=***"},
    {.text = "pkcs11:token=t;manufacturer=SoftHSM%20project;serial=9f3c01;model=SoftHSM%20v2;"
             "slot-id=7?module-path=/opt/hsm/lib.so",
     .want_scheme = TS_KS_PKCS11,
     .want_module = "/opt/hsm/lib.so",
     .want_token = "t",
     .want_manufacturer = "SoftHSM project",
     .want_serial = "9f3c01",
     .want_model = "SoftHSM v2",
     .want_slot = "7"},
    {.text = "pkcs11:slot-id=0?module-path=/m.so",
     .want_scheme = TS_KS_PKCS11,
     .want_module = "/m.so",
     .want_slot = "0"},
    {.text = "pkcs11:token=a?module-name=softhsm2",
     .want_scheme = TS_KS_PKCS11,
     .want_token = "a",
     .want_module = SOFTHSM},
    {.text = "pkcs11:token=a",
     .env_module = "/env/module.so",
     .want_scheme = TS_KS_PKCS11,
     .want_token = "a",
     .want_module = "/env/module.so"},
    {.text = "pkcs11:token=a?module-path=/m.so",
     .env_module = "/env/module.so",
     .want_scheme = TS_KS_PKCS11,
     .want_token = "a",
     .want_module = "/m.so"},
    {.text = "pkcs11:token=a;type=private;object=k?module-path=/m.so&pin-source=@PIN@",
     .want_scheme = TS_KS_PKCS11,
     .want_token = "a",
     .want_object = "k",
     .want_module = "/m.so",
     .want_pin = "from-file"},
    {.text = "PKCS11:token=a?pin-value=p&module-path=/m.so",
     .want_scheme = TS_KS_PKCS11,
     .want_token = "a",
     .want_module = "/m.so",
     .want_pin = "p",
     .want_redacted = "PKCS11:token=a?pin-value=***&module-path=/m.so"},
};

static const uri_case bad_cases[] = {
    {.text = "", .want_rv = TS_ERR_URI},
    {.text = "no-scheme", .want_rv = TS_ERR_URI},
    {.text = "http://example/", .want_rv = TS_ERR_URI},
    {.text = "soft:", .want_rv = TS_ERR_URI},
    {.text = "soft:;object=a", .want_rv = TS_ERR_URI},
    {.text = "soft:/d;", .want_rv = TS_ERR_URI},
    {.text = "soft:/d?", .want_rv = TS_ERR_URI},
    {.text = "soft:/d;object=a;;", .want_rv = TS_ERR_URI},
    {.text = "soft:/d;object=bad%20label", .want_rv = TS_ERR_URI},
    {.text = "soft:/d;object=.hidden", .want_rv = TS_ERR_URI},
    {.text = "soft:/d;object=", .want_rv = TS_ERR_URI},
    {.text = "soft:/d;token=a", .want_rv = TS_ERR_URI},
    {.text = "soft:/d;object=a;object=b", .want_rv = TS_ERR_URI},
    {.text = "soft:/d?module-path=/m.so", .want_rv = TS_ERR_URI},
    {.text = "soft:/d?pin-value=SECRET99&pin-source=/f",
     .want_rv = TS_ERR_URI,
     .secret = "SECRET99"},
    {.text = "soft:/d?pin-value=SECRET99&pin-value=2", .want_rv = TS_ERR_URI, .secret = "SECRET99"},
    {.text = "soft:/d?pin-value=SECRET99&bogus=1", .want_rv = TS_ERR_URI, .secret = "SECRET99"},
    {.text = "soft:/d?pin-valueSECRET99", .want_rv = TS_ERR_URI, .secret = "SECRET99"},
    {.text = "soft:/d?pin-value=", .want_rv = TS_ERR_URI},
    {.text = "soft:/d%zz", .want_rv = TS_ERR_URI},
    {.text = "soft:/d%4", .want_rv = TS_ERR_URI},
    {.text = "soft:/d%", .want_rv = TS_ERR_URI},
    {.text = "soft:/d%00x", .want_rv = TS_ERR_URI},
    {.text = "soft:/d?pin-value=a%00b", .want_rv = TS_ERR_URI},
    {.text = "soft:/my store", .want_rv = TS_ERR_URI},
    {.text = "soft:/d\x7f", .want_rv = TS_ERR_URI},
    {.text = "soft:/d\xc3\xa9", .want_rv = TS_ERR_URI},
    {.text = "soft:/d?pin-source=/nonexistent/pin", .want_rv = TS_ERR_URI},
    {.text = "soft:/d?pin-source=@BIG@", .want_rv = TS_ERR_URI},
    {.text = "soft:/d?pin-source=@EMPTY@", .want_rv = TS_ERR_URI},
    {.text = "soft:/d?pin-source=@DIR@", .want_rv = TS_ERR_URI},
    {.text = "soft:/d?pin-source=file:relative", .want_rv = TS_ERR_URI},
    {.text = "pkcs11:token=a", .want_rv = TS_ERR_URI},
    {.text = "pkcs11:token=a?bogus=1&module-path=/m.so", .want_rv = TS_ERR_URI},
    {.text = "pkcs11:token=a?x-vendor=1&module-path=/m.so", .want_rv = TS_ERR_URI},
    {.text = "pkcs11:token=a;bogus=1?module-path=/m.so", .want_rv = TS_ERR_URI},
    {.text = "pkcs11:TOKEN=a?module-path=/m.so", .want_rv = TS_ERR_URI},
    {.text = "pkcs11:token=a;token=b?module-path=/m.so", .want_rv = TS_ERR_URI},
    {.text = "pkcs11:token=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa?module-path=/m.so",
     .want_rv = TS_ERR_URI},
    {.text = "pkcs11:serial=01234567890123456?module-path=/m.so", .want_rv = TS_ERR_URI},
    {.text = "pkcs11:token=?module-path=/m.so", .want_rv = TS_ERR_URI},
    {.text = "pkcs11:token=%20?module-path=/m.so", .want_rv = TS_ERR_URI},
    {.text = "pkcs11:token=%zz?module-path=/m.so", .want_rv = TS_ERR_URI},
    {.text = "pkcs11:token=a%00b?module-path=/m.so", .want_rv = TS_ERR_URI},
    {.text = "pkcs11:slot-id=-1?module-path=/m.so", .want_rv = TS_ERR_URI},
    {.text = "pkcs11:slot-id=1x?module-path=/m.so", .want_rv = TS_ERR_URI},
    {.text = "pkcs11:slot-id=99999999999999999999?module-path=/m.so", .want_rv = TS_ERR_URI},
    {.text = "pkcs11:slot-id=9223372036854775808?module-path=/m.so", .want_rv = TS_ERR_URI},
    {.text = "pkcs11:id=%01?module-path=/m.so", .want_rv = TS_ERR_URI},
    {.text = "pkcs11:slot-description=x?module-path=/m.so", .want_rv = TS_ERR_URI},
    {.text = "pkcs11:library-manufacturer=x?module-path=/m.so", .want_rv = TS_ERR_URI},
    {.text = "pkcs11:object=a%2Fb?module-path=/m.so", .want_rv = TS_ERR_URI},
    {.text = "pkcs11:token=a?module-path=relative.so", .want_rv = TS_ERR_URI},
    {.text = "pkcs11:token=a", .env_module = "relative.so", .want_rv = TS_ERR_URI},
    {.text = "pkcs11:token=a?module-name=../lib/evil", .want_rv = TS_ERR_URI},
    {.text = "pkcs11:token=a?module-name=no-such-module-here", .want_rv = TS_ERR_MODULE},
    {.text = "pkcs11:token=a?module-path=/m.so&pin-value=SECRET99&pin-source=/f",
     .want_rv = TS_ERR_URI,
     .secret = "SECRET99"},
    {.text = "pkcs11:token=a?module-path=/m.so&pin-source=/nonexistent/pin", .want_rv = TS_ERR_URI},
    {.text = "pkcs11:token=a?module-path=/m.so", .env_pin = "@LONGPIN@", .want_rv = TS_ERR_PIN},
};

static char work_dir[512], pin_file[600], big_file[600], empty_file[600];
static char long_pin[300];

static void write_file(const char *path, const char *data, size_t len)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

static int setup(void **state)
{
    char big[400];
    (void)state;
    if (ts_test_tmpdir(work_dir, sizeof work_dir) != 0) {
        return -1;
    }
    snprintf(pin_file, sizeof pin_file, "%s/pin", work_dir);
    snprintf(big_file, sizeof big_file, "%s/big", work_dir);
    snprintf(empty_file, sizeof empty_file, "%s/empty", work_dir);
    write_file(pin_file, "from-file\n", 10);
    memset(big, 'x', sizeof big);
    write_file(big_file, big, sizeof big);
    write_file(empty_file, "\n", 1);
    memset(long_pin, 'p', sizeof long_pin - 1);
    long_pin[sizeof long_pin - 1] = '\0';
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    ts_test_rmtree(work_dir);
    return 0;
}

/* Replaces the first @NAME@ placeholder with the file it stands for. */
static void expand(const char *in, char *out, size_t size)
{
    static const struct {
        const char *tag;
        const char *value;
    } tags[] = {{"@PIN@", pin_file},
                {"@BIG@", big_file},
                {"@EMPTY@", empty_file},
                {"@DIR@", work_dir},
                {"@LONGPIN@", long_pin}};
    snprintf(out, size, "%s", in);
    for (size_t i = 0; i < sizeof tags / sizeof tags[0]; i++) {
        const char *at = strstr(in, tags[i].tag);
        if (at != NULL) {
            snprintf(out, size, "%.*s%s%s", (int)(at - in), in, tags[i].value,
                     at + strlen(tags[i].tag));
            return;
        }
    }
}

static void set_env(const char *name, const char *value)
{
    char expanded[512];
    if (value == NULL) {
        unsetenv(name);
        return;
    }
    expand(value, expanded, sizeof expanded);
    setenv(name, expanded, 1);
}

static void check_string(const char *what, const char *want, const char *got, const char *text)
{
    char expanded[1024];
    if (want == NULL) {
        if (got != NULL) {
            fail_msg("%s: %s is '%s', want none", text, what, got);
        }
        return;
    }
    expand(want, expanded, sizeof expanded);
    if (got == NULL || strcmp(expanded, got) != 0) {
        fail_msg("%s: %s is '%s', want '%s'", text, what, got != NULL ? got : "(none)", expanded);
    }
}

static void run_case(const uri_case *c)
{
    char text[1024];
    ts_ks_uri *uri = (ts_ks_uri *)1;

    expand(c->text, text, sizeof text);
    set_env("TESSERA_PIN", c->env_pin);
    set_env("TESSERA_PKCS11_MODULE", c->env_module);
    ts_err rv = ts_ks_uri_parse(text, &uri);
    unsetenv("TESSERA_PIN");
    unsetenv("TESSERA_PKCS11_MODULE");
    if (rv != c->want_rv) {
        fail_msg("%s: got %s (%s), want %s", text, ts_err_name(rv), ts_error_message(),
                 ts_err_name(c->want_rv));
    }
    if (rv != TS_OK) {
        assert_null(uri);
        assert_true(strlen(ts_error_message()) > 10);
        if (c->secret != NULL && strstr(ts_error_message(), c->secret) != NULL) {
            fail_msg("%s: the message '%s' shows the PIN", text, ts_error_message());
        }
        return;
    }
    assert_non_null(uri);
    assert_int_equal(uri->scheme, c->want_scheme);
    check_string("path", c->want_path, uri->path, text);
    check_string("object", c->want_object, uri->object, text);
    check_string("pin", c->want_pin, uri->pin, text);
    check_string("module_path", c->want_module, uri->module_path, text);
    check_string("token", c->want_token, uri->token, text);
    check_string("manufacturer", c->want_manufacturer, uri->manufacturer, text);
    check_string("serial", c->want_serial, uri->serial, text);
    check_string("model", c->want_model, uri->model, text);
    assert_int_equal(uri->slot_id, c->want_slot != NULL ? atol(c->want_slot) : -1);
    check_string("redacted", c->want_redacted != NULL ? c->want_redacted : c->text, uri->redacted,
                 text);
    if (strstr(c->text, "pin-value=") != NULL) {
        assert_non_null(strstr(uri->redacted, "pin-value=***"));
    }
    ts_ks_uri_free(uri);
}

static void test_good(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof good_cases / sizeof good_cases[0]; i++) {
        run_case(&good_cases[i]);
    }
}

static void test_bad(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
        run_case(&bad_cases[i]);
    }
}

static void test_too_long(void **state)
{
    char text[5000];
    ts_ks_uri *uri = NULL;
    (void)state;
    memcpy(text, "soft:/", 6);
    memset(text + 6, 'a', sizeof text - 7);
    text[sizeof text - 1] = '\0';
    assert_int_equal(ts_ks_uri_parse(text, &uri), TS_ERR_URI);
    assert_null(uri);
    /* 4096 characters exactly is still accepted */
    text[4096] = '\0';
    assert_int_equal(ts_ks_uri_parse(text, &uri), TS_OK);
    assert_int_equal(strlen(uri->path), 4096 - 5);
    ts_ks_uri_free(uri);
}

static void test_fifo_pin_source(void **state)
{
    char fifo[600], text[700];
    ts_ks_uri *uri = NULL;
    (void)state;
    snprintf(fifo, sizeof fifo, "%s/fifo", work_dir);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    snprintf(text, sizeof text, "soft:/d?pin-source=%s", fifo);
    /* would block for ever if the parser opened it */
    assert_int_equal(ts_ks_uri_parse(text, &uri), TS_ERR_URI);
    assert_null(uri);
}

static void test_null_args(void **state)
{
    ts_ks_uri *uri = NULL;
    (void)state;
    assert_int_equal(ts_ks_uri_parse(NULL, &uri), TS_ERR_URI);
    assert_int_equal(ts_ks_uri_parse("soft:/d", NULL), TS_ERR_INVALID);
    ts_ks_uri_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good),      cmocka_unit_test(test_bad),
        cmocka_unit_test(test_too_long),  cmocka_unit_test(test_fifo_pin_source),
        cmocka_unit_test(test_null_args),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
