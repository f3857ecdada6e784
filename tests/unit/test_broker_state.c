/*
 * The Mosquitto plugin's Mosquitto-free parts: topic rules, the revocation and disable state,
 * the table of connected clients and the cache file's parser. The plugin is a loadable module,
 * so these sources are compiled into the test directly.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "broker/broker_acl.c"
#include "broker/broker_cache.c"
#include "broker/broker_clients.c"
#include "broker/broker_state.c"

static void test_acl_device(void **unused)
{
    static const char prefix[] = "tessera/acme/dev-1/";
    static const struct {
        const char *topic;
        bool want;
    } cases[] = {
        {"tessera/acme/dev-1/telemetry", true},
        {"tessera/acme/dev-1/#", true},
        {"tessera/acme/dev-1/+", true},
        {"tessera/acme/dev-1", false},
        {"tessera/acme/dev-10/telemetry", false},
        {"tessera/acme/dev-2/telemetry", false},
        {"tessera/acme/+/telemetry", false},
        {"tessera/+/dev-1/telemetry", false},
        {"tessera/#", false},
        {"#", false},
        {"$share/g/tessera/acme/dev-1/telemetry", false},
        {"$SYS/broker/uptime", false},
        {"", false},
    };
    (void)unused;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(tsb_acl_device(prefix, sizeof(prefix) - 1, cases[i].topic), cases[i].want);
    }
    assert_false(tsb_acl_device(prefix, sizeof(prefix) - 1, NULL));
    assert_true(tsb_acl_service("tessera/#"));
    assert_true(tsb_acl_service("tessera/acme/dev-1/commands"));
    assert_false(tsb_acl_service("#"));
    assert_false(tsb_acl_service("+/acme/x"));
    assert_false(tsb_acl_service("tesserax/a"));
}

static void test_names(void **unused)
{
    (void)unused;
    assert_true(tsb_tenant_name_ok("acme-2"));
    assert_false(tsb_tenant_name_ok("-acme"));
    assert_false(tsb_tenant_name_ok("Acme"));
    assert_false(tsb_tenant_name_ok(""));
    assert_true(tsb_uid_ok("sensor_7.a:b-C"));
    assert_false(tsb_uid_ok("a/b"));
    assert_false(tsb_uid_ok("a+b"));
    assert_false(tsb_uid_ok("a#"));
    assert_false(tsb_uid_ok(""));
}

static void test_revoked_and_disabled(void **unused)
{
    uint8_t fp[TSB_FP_LEN], s1[TSB_SERIAL_MAX], s2[TSB_SERIAL_MAX], l1 = 0, l2 = 0;
    tsb_state *st = tsb_state_new();
    (void)unused;

    memset(fp, 0xab, sizeof(fp));
    assert_int_equal(tsb_serial_from_hex("00A0C1", s1, &l1), TS_OK);
    assert_int_equal(tsb_serial_from_hex("a0c1", s2, &l2), TS_OK);
    assert_int_equal(l1, 2);
    assert_memory_equal(s1, s2, 2);
    assert_int_equal(tsb_serial_from_hex("XYZ", s2, &l2), TS_ERR_INVALID);
    assert_int_equal(tsb_serial_from_hex("0102030405060708091011121314151617181920FF", s2, &l2),
                     TS_ERR_INVALID);
    assert_int_equal(tsb_state_revoke(st, fp, s1, l1), TS_OK);
    assert_int_equal(tsb_state_revoke(st, fp, s1, l1), TS_OK);
    assert_int_equal(tsb_state_disable(st, "acme", "dev-5"), TS_OK);
    assert_int_equal(tsb_state_disable(st, "acme", "a/b"), TS_ERR_INVALID);
    tsb_state_finish(st);
    assert_int_equal(st->n_revoked, 1);
    assert_true(tsb_state_is_revoked(st, fp, s1, l1));
    s1[1] ^= 1;
    assert_false(tsb_state_is_revoked(st, fp, s1, l1));
    assert_true(tsb_state_is_disabled(st, "acme", "dev-5"));
    assert_false(tsb_state_is_disabled(st, "other", "dev-5"));
    tsb_state_enable(st, "acme", "dev-5");
    assert_false(tsb_state_is_disabled(st, "acme", "dev-5"));

    /* An encoded state parses back to the same bytes; a tampered one is refused whole. */
    tsb_tenant *t = NULL;
    assert_int_equal(tsb_state_tenant_add(st, "acme", &t), TS_OK);
    t->synced = true;
    t->since = 45;
    char *a = NULL, *b = NULL;
    size_t alen = 0, blen = 0;
    tsb_state *back = NULL;
    assert_int_equal(tsb_cache_encode(st, &a, &alen), TS_OK);
    assert_int_equal(tsb_cache_decode((const uint8_t *)a, alen, &back), TS_OK);
    assert_int_equal(tsb_cache_encode(back, &b, &blen), TS_OK);
    assert_int_equal(alen, blen);
    assert_memory_equal(a, b, alen);
    assert_non_null(tsb_state_tenant(back, "acme"));
    assert_int_equal(tsb_state_tenant(back, "acme")->since, 45);
    tsb_state_free(back);
    back = NULL;
    char *bad = strstr(a, "\"since\"");
    assert_non_null(bad);
    bad[1] = 'S';
    assert_int_equal(tsb_cache_decode((const uint8_t *)a, alen, &back), TS_ERR_CORRUPT);
    assert_null(back);
    static const char *const refused[] = {
        "",
        "[]",
        "{\"format\":\"tessera-broker-cache\",\"version\":2,\"tenants\":[],\"revoked\":[],"
        "\"disabled\":[]}",
        "{\"format\":\"tessera-broker-cache\",\"version\":1,\"tenants\":[],\"revoked\":[],"
        "\"disabled\":[],\"x\":1}",
        "{\"format\":\"tessera-broker-cache\",\"version\":1,\"tenants\":[],\"revoked\":[{"
        "\"issuer\":\"ab\",\"serial\":\"01\"}],\"disabled\":[]}",
        "{\"format\":\"tessera-broker-cache\",\"version\":1,\"tenants\":[{\"name\":\"a\","
        "\"since\":-1,\"cas\":[]}],\"revoked\":[],\"disabled\":[]}",
        "{\"format\":\"tessera-broker-cache\",\"version\":1,\"version\":1,\"tenants\":[],"
        "\"revoked\":[],\"disabled\":[]}",
        "{\"format\":\"tessera-broker-cache\",\"version\":1,\"tenants\":[{\"name\":\"a\","
        "\"since\":1,\"cas\":[\"not pem\"]}],\"revoked\":[],\"disabled\":[]}",
    };
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        assert_int_equal(tsb_cache_decode((const uint8_t *)refused[i], strlen(refused[i]), &back),
                         TS_ERR_CORRUPT);
        assert_null(back);
    }
    free(a);
    free(b);
    tsb_state_free(st);
}

static void test_clients(void **unused)
{
    tsb_clients t = {0};
    tsb_client c;
    static char handles[300];
    (void)unused;

    memset(&c, 0, sizeof(c));
    for (size_t i = 0; i < sizeof(handles); i++) {
        c.handle = &handles[i];
        snprintf(c.username, sizeof(c.username), "t/u%zu", i);
        assert_int_equal(tsb_clients_put(&t, &c), TS_OK);
    }
    assert_int_equal(t.n, sizeof(handles));
    for (size_t i = 0; i < sizeof(handles); i += 2) {
        tsb_clients_del(&t, &handles[i]);
    }
    for (size_t i = 0; i < sizeof(handles); i++) {
        tsb_client *got = tsb_clients_get(&t, &handles[i]);
        if (i % 2 == 0) {
            assert_null(got);
        } else {
            char want[32];
            snprintf(want, sizeof(want), "t/u%zu", i);
            assert_non_null(got);
            assert_string_equal(got->username, want);
        }
    }
    tsb_clients_free(&t);
    assert_null(tsb_clients_get(&t, &handles[1]));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_acl_device),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_revoked_and_disabled),
        cmocka_unit_test(test_clients),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
