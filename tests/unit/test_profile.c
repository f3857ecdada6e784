/* Profiles: built-ins, strict JSON parsing and canonical output (docs/profiles.md). */
#include <jansson.h>

#include "pki_test_util.h"

static const char *const builtin_names[] = {"device", "server", "firmware-signer", "verification"};

/* A valid custom profile the bad cases below are made from. */
#define GOOD_HEAD                                                                                  \
    "{\"name\":\"custom\",\"kind\":\"device\",\"key_types\":[\"P-256\"],"                          \
    "\"signature_digest\":\"SHA-256\",\"key_usage\":[\"digitalSignature\"],"
#define GOOD_SUBJECT "\"subject\":[{\"type\":\"CN\",\"value\":\"<device UID>\"}],"
#define GOOD_TAIL    "\"validity\":{\"days\":30}}"

static ts_profile *parse_ok(const char *json)
{
    ts_profile *p = NULL;

    if (ts_profile_from_json(json, strlen(json), &p) != TS_OK) {
        fail_msg("profile refused: %s\n%s", ts_error_message(), json);
    }
    return p;
}

static char *to_json(const ts_profile *p)
{
    char *json = NULL;

    assert_int_equal(ts_profile_to_json(p, &json), TS_OK);
    assert_non_null(json);
    return json;
}

static void test_builtins_round_trip(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof builtin_names / sizeof builtin_names[0]; i++) {
        ts_profile *p = NULL, *q = NULL;
        assert_int_equal(ts_profile_builtin(builtin_names[i], &p), TS_OK);
        assert_string_equal(ts_profile_name(p), builtin_names[i]);
        char *json = to_json(p);
        assert_int_equal(ts_profile_from_json(json, strlen(json), &q), TS_OK);
        char *again = to_json(q);
        assert_string_equal(json, again);
        OPENSSL_free(json);
        OPENSSL_free(again);
        ts_profile_free(p);
        ts_profile_free(q);
    }
}

static void test_builtin_device_fields(void **state)
{
    ts_profile *p = NULL;
    json_error_t jerr;

    (void)state;
    assert_int_equal(ts_profile_builtin("device", &p), TS_OK);
    char *json = to_json(p);
    json_t *root = json_loads(json, 0, &jerr);
    assert_non_null(root);
    assert_string_equal(json_string_value(json_object_get(root, "kind")), "device");
    json_t *kt = json_object_get(root, "key_types");
    assert_int_equal(json_array_size(kt), 1);
    assert_string_equal(json_string_value(json_array_get(kt, 0)), "P-256");
    assert_string_equal(json_string_value(json_object_get(root, "signature_digest")), "SHA-256");
    json_t *ku = json_object_get(root, "key_usage");
    assert_int_equal(json_array_size(ku), 2);
    assert_string_equal(json_string_value(json_array_get(ku, 0)), "digitalSignature");
    assert_string_equal(json_string_value(json_array_get(ku, 1)), "keyAgreement");
    assert_string_equal(
        json_string_value(json_array_get(json_object_get(root, "extended_key_usage"), 0)),
        "clientAuth");
    json_t *subject = json_object_get(root, "subject");
    assert_int_equal(json_array_size(subject), 3);
    assert_string_equal(json_string_value(json_object_get(json_array_get(subject, 2), "value")),
                        "<device UID>");
    assert_string_equal(json_string_value(json_object_get(json_object_get(root, "san"), "policy")),
                        "forbidden");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(root, "validity"), "days")),
                     3650);
    /* The canonical key order. */
    const char *keys[] = {"name",
                          "description",
                          "kind",
                          "key_types",
                          "signature_digest",
                          "key_usage",
                          "extended_key_usage",
                          "subject",
                          "csr_subject",
                          "san",
                          "csr_extensions",
                          "validity"};
    const char *prev = json;
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        char quoted[64];
        snprintf(quoted, sizeof quoted, "\"%s\":", keys[i]);
        const char *at = strstr(json, quoted);
        assert_non_null(at);
        assert_true(at >= prev);
        prev = at;
    }
    json_decref(root);
    OPENSSL_free(json);
    ts_profile_free(p);
}

static void test_builtin_unknown(void **state)
{
    ts_profile *p = (ts_profile *)1;

    (void)state;
    assert_err(ts_profile_builtin("gateway", &p), TS_ERR_NOT_FOUND);
    assert_null(p);
    assert_msg("gateway");
}

static void test_canonical_order(void **state)
{
    /* Fields and set-like lists in another order give the same canonical JSON. */
    const char *a = "{\"validity\":{\"days\":397},\"name\":\"web\",\"kind\":\"server\","
                    "\"key_usage\":[\"digitalSignature\"],\"key_types\":[\"RSA-3072+\",\"P-384\","
                    "\"P-256\"],\"signature_digest\":\"SHA-384\",\"extended_key_usage\":["
                    "\"serverAuth\"],\"subject\":[{\"type\":\"CN\",\"value\":\"<csr>\"}],"
                    "\"csr_subject\":[\"CN\"],\"csr_extensions\":[\"basicConstraints\","
                    "\"subjectAltName\"],\"san\":{\"wildcards\":true,\"types\":[\"ip\",\"dns\"],"
                    "\"policy\":\"required\",\"dns_suffixes\":[\"example.com\"]}}";
    const char *b = "{\"name\":\"web\",\"kind\":\"server\",\"key_types\":[\"P-256\",\"P-384\","
                    "\"RSA-3072+\"],\"signature_digest\":\"SHA-384\",\"key_usage\":["
                    "\"digitalSignature\"],\"extended_key_usage\":[\"serverAuth\"],\"subject\":["
                    "{\"type\":\"CN\",\"value\":\"<csr>\"}],\"csr_subject\":[\"CN\"],\"san\":{"
                    "\"policy\":\"required\",\"types\":[\"dns\",\"ip\"],\"dns_suffixes\":["
                    "\"example.com\"],\"wildcards\":true},\"csr_extensions\":[\"subjectAltName\","
                    "\"basicConstraints\"],\"validity\":{\"days\":397}}";
    (void)state;
    ts_profile *pa = parse_ok(a), *pb = parse_ok(b);
    char *ja = to_json(pa), *jb = to_json(pb);
    assert_string_equal(ja, jb);
    assert_non_null(strstr(ja, "\"RSA-3072+\""));
    assert_non_null(strstr(ja, "\"SHA-384\""));
    assert_non_null(strstr(ja, "\"wildcards\": true"));
    OPENSSL_free(ja);
    OPENSSL_free(jb);
    ts_profile_free(pa);
    ts_profile_free(pb);
}

static void test_not_after(void **state)
{
    (void)state;
    ts_profile *p = parse_ok(GOOD_HEAD GOOD_SUBJECT "\"validity\":{\"not_after\":\"2049-03-19\"}}");
    char *json = to_json(p);
    assert_non_null(strstr(json, "\"not_after\": \"2049-03-19\""));
    assert_null(strstr(json, "\"days\""));
    OPENSSL_free(json);
    ts_profile_free(p);

    p = parse_ok(GOOD_HEAD GOOD_SUBJECT "\"validity\":{\"not_after\":\"2024-02-29T12:30:00Z\"}}");
    json = to_json(p);
    assert_non_null(strstr(json, "\"not_after\": \"2024-02-29T12:30:00Z\""));
    OPENSSL_free(json);
    ts_profile_free(p);

    p = parse_ok(GOOD_HEAD GOOD_SUBJECT "\"validity\":{\"not_after\":\"9999-12-31\"}}");
    ts_profile_free(p);
}

/* The stored-profile example of docs/profiles.md. */
static void test_doc_example(void **state)
{
    (void)state;
    ts_profile *p = parse_ok(
        "{\"name\": \"line-7\", \"kind\": \"device\", \"key_types\": [\"P-256\"], "
        "\"signature_digest\": \"SHA-256\", \"key_usage\": [\"digitalSignature\", "
        "\"keyAgreement\"], \"extended_key_usage\": [\"clientAuth\"], \"subject\": [{\"type\": "
        "\"O\", \"value\": \"<org>\"}, {\"type\": \"OU\", \"value\": \"Line 7\"}, {\"type\": "
        "\"CN\", \"value\": \"<device UID>\"}], \"csr_subject\": [\"CN\"], \"validity\": "
        "{\"not_after\": \"2049-03-19\"}}");
    char *json = to_json(p);
    assert_non_null(strstr(json, "\"value\": \"Line 7\""));
    assert_non_null(strstr(json, "\"description\": \"\""));
    assert_non_null(strstr(json, "\"san\": {\n    \"policy\": \"forbidden\"\n  }"));
    assert_non_null(strstr(json, "\"csr_extensions\": []"));
    OPENSSL_free(json);
    ts_profile_free(p);
}

typedef struct bad_case {
    const char *json;
    const char *want; /* a substring of the message */
} bad_case;

static const bad_case bad_cases[] = {
    {"", "empty"},
    {"[1,2]", "must be a JSON object"},
    {"{\"name\":", "not JSON"},
    {"{\"name\":\"a\",\"name\":\"b\"}", "not JSON"},
    {GOOD_HEAD GOOD_SUBJECT "\"validity\":{\"days\":30},\"colour\":\"red\"}", "'colour': unknown"},
    {GOOD_HEAD "\"subject\":[{\"type\":\"CN\",\"value\":\"<device UID>\"}]}",
     "'validity': missing"},
    {"{\"kind\":\"device\"}", "missing"},
    {"{\"name\":\"Custom\",\"kind\":\"device\",\"key_types\":[\"P-256\"],"
     "\"signature_digest\":\"SHA-256\",\"key_usage\":[\"digitalSignature\"]," GOOD_SUBJECT
         GOOD_TAIL,
     "'name'"},
    {"{\"name\":7,\"kind\":\"device\",\"key_types\":[\"P-256\"],"
     "\"signature_digest\":\"SHA-256\",\"key_usage\":[\"digitalSignature\"]," GOOD_SUBJECT
         GOOD_TAIL,
     "'name': must be a string"},
    {"{\"name\":\"c\",\"kind\":\"gateway\",\"key_types\":[\"P-256\"],"
     "\"signature_digest\":\"SHA-256\",\"key_usage\":[\"digitalSignature\"]," GOOD_SUBJECT
         GOOD_TAIL,
     "'kind': unknown value 'gateway'"},
    {"{\"name\":\"c\",\"kind\":\"device\",\"key_types\":[\"P-192\"],"
     "\"signature_digest\":\"SHA-256\",\"key_usage\":[\"digitalSignature\"]," GOOD_SUBJECT
         GOOD_TAIL,
     "'key_types[0]': unknown value 'P-192'"},
    {"{\"name\":\"c\",\"kind\":\"device\",\"key_types\":[\"P-256\",\"P-256\"],"
     "\"signature_digest\":\"SHA-256\",\"key_usage\":[\"digitalSignature\"]," GOOD_SUBJECT
         GOOD_TAIL,
     "listed twice"},
    {"{\"name\":\"c\",\"kind\":\"device\",\"key_types\":\"P-256\","
     "\"signature_digest\":\"SHA-256\",\"key_usage\":[\"digitalSignature\"]," GOOD_SUBJECT
         GOOD_TAIL,
     "'key_types': must be an array"},
    {"{\"name\":\"c\",\"kind\":\"device\",\"key_types\":[],"
     "\"signature_digest\":\"SHA-256\",\"key_usage\":[\"digitalSignature\"]," GOOD_SUBJECT
         GOOD_TAIL,
     "'key_types': no key type"},
    {"{\"name\":\"c\",\"kind\":\"device\",\"key_types\":[\"RSA-2048+\",\"RSA-3072+\"],"
     "\"signature_digest\":\"SHA-256\",\"key_usage\":[\"digitalSignature\"]," GOOD_SUBJECT
         GOOD_TAIL,
     "more than one RSA"},
    {"{\"name\":\"c\",\"kind\":\"device\",\"key_types\":[\"P-256\"],"
     "\"signature_digest\":\"MD5\",\"key_usage\":[\"digitalSignature\"]," GOOD_SUBJECT GOOD_TAIL,
     "'signature_digest': unknown value 'MD5'"},
    {"{\"name\":\"c\",\"kind\":\"device\",\"key_types\":[\"P-256\"],"
     "\"signature_digest\":\"SHA-256\",\"key_usage\":[\"keyCertSign\"]," GOOD_SUBJECT GOOD_TAIL,
     "never issue"},
    {"{\"name\":\"c\",\"kind\":\"device\",\"key_types\":[\"RSA-2048+\"],"
     "\"signature_digest\":\"SHA-256\",\"key_usage\":[\"keyAgreement\"]," GOOD_SUBJECT GOOD_TAIL,
     "keyAgreement needs EC"},
    {"{\"name\":\"c\",\"kind\":\"device\",\"key_types\":[\"P-256\"],"
     "\"signature_digest\":\"SHA-256\",\"key_usage\":[\"keyEncipherment\"]," GOOD_SUBJECT GOOD_TAIL,
     "need RSA"},
    {"{\"name\":\"c\",\"kind\":\"device\",\"key_types\":[\"P-256\"],"
     "\"signature_digest\":\"SHA-256\",\"key_usage\":[]," GOOD_SUBJECT GOOD_TAIL,
     "'key_usage': no key usage"},
    {GOOD_HEAD "\"extended_key_usage\":[\"anyThing\"]," GOOD_SUBJECT GOOD_TAIL,
     "'extended_key_usage[0]': unknown value"},
    {GOOD_HEAD "\"subject\":[]," GOOD_TAIL, "subject template is empty"},
    {GOOD_HEAD "\"subject\":[{\"type\":\"XX\",\"value\":\"a\"}]," GOOD_TAIL,
     "'subject[0].type': unknown attribute 'XX'"},
    {GOOD_HEAD "\"subject\":[{\"type\":\"CN\",\"value\":\"<serial>\"}]," GOOD_TAIL,
     "'subject[0].value': unknown variable"},
    {GOOD_HEAD "\"subject\":[{\"type\":\"CN\",\"value\":\"<device UID>\",\"colour\":1}]," GOOD_TAIL,
     "'subject[0].colour': unknown field"},
    {GOOD_HEAD
     "\"subject\":[{\"type\":\"CN\",\"value\":\"<device UID>\",\"optional\":1}]," GOOD_TAIL,
     "'subject[0].optional': must be true or false"},
    {GOOD_HEAD "\"subject\":[{\"type\":\"CN\",\"value\":\"\"}]," GOOD_TAIL,
     "'subject[0].value': must not be empty"},
    {GOOD_HEAD "\"subject\":[{\"type\":\"CN\",\"value\":\"a\\u0001b\"}]," GOOD_TAIL,
     "control character"},
    {GOOD_HEAD "\"subject\":[{\"type\":\"CN\",\"value\":\"<device UID>\"},"
               "{\"type\":\"OU\",\"value\":\"<csr>\"}]," GOOD_TAIL,
     "must be listed in csr_subject"},
    {GOOD_HEAD "\"subject\":[{\"type\":\"CN\",\"value\":\"fixed\"}]," GOOD_TAIL,
     "use <device UID>"},
    {GOOD_HEAD GOOD_SUBJECT "\"csr_subject\":[\"CN\",\"Q\"]," GOOD_TAIL,
     "'csr_subject[1]': unknown value 'Q'"},
    {GOOD_HEAD GOOD_SUBJECT "\"san\":{\"policy\":\"sometimes\"}," GOOD_TAIL,
     "'san.policy': unknown value"},
    {GOOD_HEAD GOOD_SUBJECT "\"san\":{\"policy\":\"forbidden\",\"types\":[\"dns\"]}," GOOD_TAIL,
     "need a policy other than forbidden"},
    {GOOD_HEAD GOOD_SUBJECT "\"san\":{\"policy\":\"optional\",\"types\":[\"dns\"]}," GOOD_TAIL,
     "subjectAltName must be listed"},
    {GOOD_HEAD GOOD_SUBJECT "\"san\":{\"policy\":\"optional\",\"types\":[]},"
                            "\"csr_extensions\":[\"subjectAltName\"]," GOOD_TAIL,
     "'san.types': no SAN type"},
    {GOOD_HEAD GOOD_SUBJECT
     "\"san\":{\"policy\":\"optional\",\"types\":[\"ip\"],"
     "\"wildcards\":true},\"csr_extensions\":[\"subjectAltName\"]," GOOD_TAIL,
     "need the dns type"},
    {GOOD_HEAD GOOD_SUBJECT "\"san\":{\"policy\":\"optional\",\"types\":[\"dns\"],"
                            "\"dns_suffixes\":[\".example.com\"]},"
                            "\"csr_extensions\":[\"subjectAltName\"]," GOOD_TAIL,
     "'san.dns_suffixes[0]': '.example.com' is not a DNS name"},
    {GOOD_HEAD GOOD_SUBJECT "\"san\":{\"policy\":\"forbidden\",\"extra\":1}," GOOD_TAIL,
     "'san.extra': unknown field"},
    {GOOD_HEAD GOOD_SUBJECT "\"csr_extensions\":[\"subjectAltName\"]," GOOD_TAIL,
     "the SAN policy is forbidden"},
    {GOOD_HEAD GOOD_SUBJECT "\"csr_extensions\":[\"nameConstraints\"]," GOOD_TAIL,
     "'csr_extensions[0]': unknown value"},
    {GOOD_HEAD GOOD_SUBJECT "\"validity\":{\"days\":30,\"not_after\":\"2049-03-19\"}}",
     "exactly one of days and not_after"},
    {GOOD_HEAD GOOD_SUBJECT "\"validity\":{}}", "exactly one of days and not_after"},
    {GOOD_HEAD GOOD_SUBJECT "\"validity\":{\"days\":0}}", "'validity.days'"},
    {GOOD_HEAD GOOD_SUBJECT "\"validity\":{\"days\":1.5}}", "'validity.days'"},
    {GOOD_HEAD GOOD_SUBJECT "\"validity\":{\"days\":\"30\"}}", "'validity.days'"},
    {GOOD_HEAD GOOD_SUBJECT "\"validity\":{\"days\":99999}}", "'validity.days'"},
    {GOOD_HEAD GOOD_SUBJECT "\"validity\":{\"not_after\":\"2049-02-30\"}}",
     "'validity.not_after': '2049-02-30' is not a date"},
    {GOOD_HEAD GOOD_SUBJECT "\"validity\":{\"not_after\":\"19/03/2049\"}}", "'validity.not_after'"},
    {GOOD_HEAD GOOD_SUBJECT "\"validity\":{\"not_after\":\"2049-03-19T25:00:00Z\"}}",
     "'validity.not_after'"},
    {GOOD_HEAD GOOD_SUBJECT "\"validity\":{\"weeks\":3}}", "'validity.weeks': unknown field"},
    {GOOD_HEAD GOOD_SUBJECT "\"description\":[1]," GOOD_TAIL, "'description': must be a string"},
    {"{\"name\":\"c\",\"kind\":\"verification\",\"key_types\":[\"P-256\"],"
     "\"signature_digest\":\"SHA-256\",\"key_usage\":[\"digitalSignature\"]," GOOD_SUBJECT
         GOOD_TAIL,
     "use <code>"},
    {"{\"name\":\"c\",\"kind\":\"server\",\"key_types\":[\"P-256\"],"
     "\"signature_digest\":\"SHA-256\",\"key_usage\":[\"digitalSignature\"],"
     "\"extended_key_usage\":[\"clientAuth\"],"
     "\"subject\":[{\"type\":\"CN\",\"value\":\"x\"}]," GOOD_TAIL,
     "needs serverAuth"},
    {"{\"name\":\"c\",\"kind\":\"server\",\"key_types\":[\"P-256\"],"
     "\"signature_digest\":\"SHA-256\",\"key_usage\":[\"digitalSignature\"],"
     "\"extended_key_usage\":[\"serverAuth\"],"
     "\"subject\":[{\"type\":\"CN\",\"value\":\"x\"}]," GOOD_TAIL,
     "a server profile needs SANs"},
    {"{\"name\":\"c\",\"kind\":\"firmware-signer\",\"key_types\":[\"P-256\"],"
     "\"signature_digest\":\"SHA-256\",\"key_usage\":[\"digitalSignature\"],"
     "\"subject\":[{\"type\":\"CN\",\"value\":\"x\"}]," GOOD_TAIL,
     "needs codeSigning"},
};

static void test_bad_json(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
        ts_profile *p = (ts_profile *)1;
        ts_err rv = ts_profile_from_json(bad_cases[i].json, strlen(bad_cases[i].json), &p);
        if (rv != TS_ERR_INVALID) {
            fail_msg("case %zu: got %s, want invalid: %s", i, ts_err_name(rv), bad_cases[i].json);
        }
        assert_null(p);
        if (strstr(ts_error_message(), bad_cases[i].want) == NULL) {
            fail_msg("case %zu: message '%s' lacks '%s'", i, ts_error_message(), bad_cases[i].want);
        }
    }
}

static void test_size_cap(void **state)
{
    size_t len = TS_PROFILE_JSON_MAX + 1;
    char *big = malloc(len + 1);
    ts_profile *p = NULL;

    (void)state;
    assert_non_null(big);
    memset(big, ' ', len);
    memcpy(big, "{}", 2);
    big[len] = '\0';
    assert_err(ts_profile_from_json(big, len, &p), TS_ERR_INVALID);
    assert_msg("more than");
    assert_null(p);
    /* Within the cap, the same padding is fine JSON: the refusal was the size. */
    assert_err(ts_profile_from_json(big, TS_PROFILE_JSON_MAX, &p), TS_ERR_INVALID);
    assert_msg("'name': missing");
    free(big);
}

static void test_bad_arguments(void **state)
{
    ts_profile *p = NULL;
    char *json = NULL;

    (void)state;
    assert_err(ts_profile_from_json(NULL, 3, &p), TS_ERR_INVALID);
    assert_err(ts_profile_from_json("{}", 2, NULL), TS_ERR_INVALID);
    assert_err(ts_profile_to_json(NULL, &json), TS_ERR_INVALID);
    assert_err(ts_profile_builtin(NULL, &p), TS_ERR_INVALID);
    assert_null(ts_profile_name(NULL));
    ts_profile_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_builtins_round_trip),
        cmocka_unit_test(test_builtin_device_fields),
        cmocka_unit_test(test_builtin_unknown),
        cmocka_unit_test(test_canonical_order),
        cmocka_unit_test(test_not_after),
        cmocka_unit_test(test_bad_json),
        cmocka_unit_test(test_size_cap),
        cmocka_unit_test(test_doc_example),
        cmocka_unit_test(test_bad_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
