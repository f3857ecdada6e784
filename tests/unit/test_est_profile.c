/* The profiles' "est" object (docs/est.md): defaults, parsing, canonical JSON and refusals. */
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "tessera/pki.h"

#define assert_err(call, code)                                                                     \
    do {                                                                                           \
        ts_err got_ = (call);                                                                      \
        if (got_ != (code)) {                                                                      \
            fail_msg("%s: got %s (%s), want %s", #call, ts_err_name(got_), ts_error_message(),     \
                     ts_err_name(code));                                                           \
        }                                                                                          \
    } while (0)

#define assert_msg(needle)                                                                         \
    do {                                                                                           \
        if (strstr(ts_error_message(), (needle)) == NULL) {                                        \
            fail_msg("message '%s' lacks '%s'", ts_error_message(), (needle));                     \
        }                                                                                          \
    } while (0)

static ts_profile *profile_of(const char *json)
{
    ts_profile *p = NULL;

    if (ts_profile_from_json(json, strlen(json), &p) != TS_OK) {
        fail_msg("profile refused: %s", ts_error_message());
    }
    return p;
}

static ts_profile *builtin(const char *name)
{
    ts_profile *p = NULL;

    assert_int_equal(ts_profile_builtin(name, &p), TS_OK);
    return p;
}

/* A device profile like the built-in one, with the "est" object est when it is not NULL. */
static ts_profile *device_with(const char *est)
{
    char json[2048];
    int n = snprintf(json, sizeof json,
                     "{\"name\":\"sensor\",\"kind\":\"device\",\"key_types\":[\"P-256\"],"
                     "\"signature_digest\":\"SHA-256\",\"key_usage\":[\"digitalSignature\"],"
                     "\"extended_key_usage\":[\"clientAuth\"],"
                     "\"subject\":[{\"type\":\"O\",\"value\":\"<org>\"},"
                     "{\"type\":\"CN\",\"value\":\"<device UID>\"}],"
                     "\"csr_subject\":[\"O\",\"CN\"],"
                     "\"csr_extensions\":[\"keyUsage\",\"extendedKeyUsage\"],"
                     "\"validity\":{\"days\":30}%s%s}",
                     est != NULL ? ",\"est\":" : "", est != NULL ? est : "");
    assert_true(n > 0 && (size_t)n < sizeof json);
    return profile_of(json);
}

static void test_profile_est_flags(void **state)
{
    static const char *const names[] = {"device", "server", "firmware-signer", "verification"};
    ts_profile *p;
    char *json = NULL;

    (void)state;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        p = builtin(names[i]);
        assert_false(ts_profile_est_server_keygen(p));
        assert_false(ts_profile_est_pop(p));
        assert_int_equal(ts_profile_to_json(p, &json), TS_OK);
        assert_null(strstr(json, "\"est\""));
        OPENSSL_free(json);
        ts_profile_free(p);
    }
    assert_false(ts_profile_est_pop(NULL));

    p = device_with("{\"server_keygen\":true}");
    assert_true(ts_profile_est_server_keygen(p));
    assert_false(ts_profile_est_pop(p));
    ts_profile_free(p);

    p = device_with("{\"server_keygen\":false,\"proof_of_possession\":true}");
    assert_false(ts_profile_est_server_keygen(p));
    assert_true(ts_profile_est_pop(p));
    /* Canonical JSON carries both flags and parses back to the same. */
    assert_int_equal(ts_profile_to_json(p, &json), TS_OK);
    assert_non_null(strstr(json, "\"proof_of_possession\": true"));
    assert_non_null(strstr(json, "\"server_keygen\": false"));
    ts_profile *again = profile_of(json);
    assert_true(ts_profile_est_pop(again));
    char *json2 = NULL;
    assert_int_equal(ts_profile_to_json(again, &json2), TS_OK);
    assert_string_equal(json, json2);
    OPENSSL_free(json2);
    ts_profile_free(again);
    OPENSSL_free(json);
    ts_profile_free(p);

    /* Empty: no flag set, and nothing written. */
    p = device_with("{}");
    assert_false(ts_profile_est_pop(p));
    ts_profile_free(p);
}

static void test_profile_est_refusals(void **state)
{
    static const struct {
        const char *est;
        const char *want_msg;
    } cases[] = {
        {"true", "'est': must be an object"},
        {"[]", "'est': must be an object"},
        {"{\"keygen\":true}", "'est.keygen': unknown field"},
        {"{\"server_keygen\":1}", "'est.server_keygen': must be true or false"},
        {"{\"proof_of_possession\":\"yes\"}", "'est.proof_of_possession': must be true or false"},
    };

    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char json[1024];
        ts_profile *p = NULL;
        snprintf(json, sizeof json,
                 "{\"name\":\"x\",\"kind\":\"device\",\"key_types\":[\"P-256\"],"
                 "\"signature_digest\":\"SHA-256\",\"key_usage\":[\"digitalSignature\"],"
                 "\"subject\":[{\"type\":\"CN\",\"value\":\"<device UID>\"}],"
                 "\"validity\":{\"days\":1},\"est\":%s}",
                 cases[i].est);
        assert_err(ts_profile_from_json(json, strlen(json), &p), TS_ERR_INVALID);
        assert_null(p);
        assert_msg(cases[i].want_msg);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_profile_est_flags),
        cmocka_unit_test(test_profile_est_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
