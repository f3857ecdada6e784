/*
 * The key-store conformance suite: every case runs against a fresh store of each backend it
 * applies to (soft: in a directory of its own, pkcs11: on a SoftHSM2 token of its own), through
 * the public API of include/tessera/keystore.h only. Tests are named backend/case.
 *
 * TS_TEST_FILTER picks cases by cmocka's pattern, e.g. TS_TEST_FILTER='pkcs11/counter_*'.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "ks_cases.h"
#include "ks_check.h"
#include "ks_fixture.h"
#include "tessera/keystore.h"

void ks_check_fail(const char *file, int line, const char *fmt, ...)
{
    char msg[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    print_error("%s\n", msg);
    _fail(file, line);
    abort(); /* _fail() ends the test; this is never reached */
}

static int all_zero(const uint8_t *p, size_t len)
{
    uint8_t acc = 0;
    for (size_t i = 0; i < len; i++) {
        acc |= p[i];
    }
    return acc == 0;
}

/* --- identity and randomness ------------------------------------------------------------------ */

static void case_uid(ks_fixture *fx)
{
    uint8_t first[TS_KEYSTORE_UID_LEN] = {0}, again[TS_KEYSTORE_UID_LEN] = {0};
    uint8_t other_uid[TS_KEYSTORE_UID_LEN] = {0};
    ts_keystore *other = NULL;

    KS_OK(ts_keystore_uid(fx->ks, first));
    KS_CHECK(!all_zero(first, sizeof first));
    KS_OK(ks_fixture_reopen(fx));
    KS_OK(ts_keystore_uid(fx->ks, again));
    KS_CHECK_MSG(memcmp(first, again, sizeof first) == 0, "the UID changed across reopen");

    KS_OK(ks_fixture_create_other(fx, "other", &other));
    ts_err rv = ts_keystore_uid(other, other_uid);
    ts_keystore_free(other);
    KS_OK(rv);
    KS_CHECK_MSG(memcmp(first, other_uid, sizeof first) != 0, "two stores share a UID");
}

static void case_identity(ks_fixture *fx)
{
    const char *uri = ts_keystore_uri(fx->ks);
    KS_CHECK(strcmp(ts_keystore_backend(fx->ks), ks_backend_name(fx->backend)) == 0);
    KS_CHECK(uri != NULL && uri[0] != '\0');
    KS_CHECK_MSG(strstr(uri, KS_PIN) == NULL, "ts_keystore_uri() shows the PIN: %s", uri);
    /* Another reference keeps the store open after the first is dropped. */
    ts_keystore *ref = ts_keystore_up_ref(fx->ks);
    KS_CHECK(ref == fx->ks);
    ts_keystore_free(fx->ks);
    fx->ks = ref;
    KS_OK(ts_keystore_generate(fx->ks, "after-ref", TS_CURVE_P256));
}

static void case_random(ks_fixture *fx)
{
    uint8_t a[64] = {0}, b[64] = {0};
    uint8_t big[4096] = {0};

    KS_OK(ts_keystore_random(fx->ks, a, sizeof a));
    KS_OK(ts_keystore_random(fx->ks, b, sizeof b));
    KS_CHECK(!all_zero(a, sizeof a));
    KS_CHECK(!all_zero(b, sizeof b));
    KS_CHECK_MSG(memcmp(a, b, sizeof a) != 0, "two calls gave the same bytes");
    /* The tail of a large request is filled too. */
    KS_OK(ts_keystore_random(fx->ks, big, sizeof big));
    KS_CHECK(!all_zero(big + sizeof big - 32, 32));
    KS_OK(ts_keystore_random(fx->ks, NULL, 0));
}

/* --- key generation --------------------------------------------------------------------------- */

static void generate_on(ks_fixture *fx, ts_curve curve, const char *group, int bits)
{
    EVP_PKEY *pub = NULL;
    ks_snapshot snap;
    char name[64];

    KS_OK(ts_keystore_generate(fx->ks, "device-key", curve));
    KS_OK(ts_keystore_public_key(fx->ks, "device-key", &pub));
    KS_CHECK(pub != NULL);
    KS_CHECK(ks_group_name(pub, name, sizeof name) == 0);
    KS_CHECK_MSG(strcmp(name, group) == 0, "public key is on %s, want %s", name, group);
    KS_CHECK(EVP_PKEY_get_bits(pub) == bits);

    KS_SNAPSHOT(fx->ks, &snap);
    const ts_keystore_entry *e = ks_snapshot_find(&snap, "device-key");
    int listed = snap.count == 1 && e != NULL && e->kind == TS_KIND_KEY && e->curve == curve;
    ks_snapshot_free(&snap);
    KS_CHECK_MSG(listed, "the listing does not show one %s key", ts_curve_name(curve));

    KS_SIGNS(fx->ks, "device-key", pub, 32);
    EVP_PKEY_free(pub);
}

static void case_generate_p256(ks_fixture *fx)
{
    generate_on(fx, TS_CURVE_P256, "prime256v1", 256);
}

static void case_generate_p384(ks_fixture *fx)
{
    generate_on(fx, TS_CURVE_P384, "secp384r1", 384);
}

static void case_generate_duplicate(ks_fixture *fx)
{
    static const uint8_t data[] = "certificate";
    EVP_PKEY *before = NULL, *after = NULL;

    KS_OK(ts_keystore_generate(fx->ks, "dup", TS_CURVE_P256));
    KS_OK(ts_keystore_public_key(fx->ks, "dup", &before));
    KS_FAILS_UNCHANGED(fx->ks, ts_keystore_generate(fx->ks, "dup", TS_CURVE_P256), TS_ERR_EXISTS,
                       "dup");
    KS_FAILS_UNCHANGED(fx->ks, ts_keystore_generate(fx->ks, "dup", TS_CURVE_P384), TS_ERR_EXISTS,
                       "dup");
    /* The key under the label is still the first one. */
    KS_OK(ts_keystore_public_key(fx->ks, "dup", &after));
    int same = EVP_PKEY_eq(before, after) == 1;
    EVP_PKEY_free(before);
    EVP_PKEY_free(after);
    KS_CHECK_MSG(same, "a refused generate replaced the key");

    /* Keys, data objects and counters share one label space. */
    KS_OK(ts_keystore_object_put(fx->ks, "cert", data, sizeof data, 0));
    KS_FAILS_UNCHANGED(fx->ks, ts_keystore_generate(fx->ks, "cert", TS_CURVE_P256), TS_ERR_EXISTS,
                       "cert");
    KS_OK(ts_keystore_counter_increment(fx->ks, "fw-version", NULL));
    KS_FAILS_UNCHANGED(fx->ks, ts_keystore_generate(fx->ks, "fw-version", TS_CURVE_P256),
                       TS_ERR_EXISTS, "fw-version");
}

static void case_generate_bad_label(ks_fixture *fx)
{
    char long_label[TS_LABEL_MAX + 2];
    memset(long_label, 'a', TS_LABEL_MAX + 1);
    long_label[TS_LABEL_MAX + 1] = '\0';
    const char *bad[] = {"", "a/b", ".x", long_label, "\xc3\xa9", "a b", "a\nb", "..", "x:y"};

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        KS_FAILS_UNCHANGED(fx->ks, ts_keystore_generate(fx->ks, bad[i], TS_CURVE_P256),
                           TS_ERR_INVALID, "label");
        KS_FAILS(ts_label_check(bad[i]), TS_ERR_INVALID, "label");
    }
    /* The longest label and every allowed character are fine. */
    long_label[TS_LABEL_MAX] = '\0';
    KS_OK(ts_keystore_generate(fx->ks, long_label, TS_CURVE_P256));
    KS_OK(ts_keystore_generate(fx->ks, "Az09._-x", TS_CURVE_P256));
}

static void case_generate_bad_curve(ks_fixture *fx)
{
    KS_FAILS_UNCHANGED(fx->ks, ts_keystore_generate(fx->ks, "k", (ts_curve)0), TS_ERR_UNSUPPORTED,
                       "curve");
    KS_FAILS_UNCHANGED(fx->ks, ts_keystore_generate(fx->ks, "k", (ts_curve)3), TS_ERR_UNSUPPORTED,
                       "curve");
}

/* --- signing ---------------------------------------------------------------------------------- */

static void sign_on(ks_fixture *fx, ts_curve curve)
{
    EVP_PKEY *pub = NULL;
    KS_OK(ts_keystore_generate(fx->ks, "signer", curve));
    KS_OK(ts_keystore_public_key(fx->ks, "signer", &pub));
    KS_SIGNS(fx->ks, "signer", pub, 32);
    KS_SIGNS(fx->ks, "signer", pub, 48);
    EVP_PKEY_free(pub);
}

static void case_sign_p256(ks_fixture *fx)
{
    sign_on(fx, TS_CURVE_P256);
}

static void case_sign_p384(ks_fixture *fx)
{
    sign_on(fx, TS_CURVE_P384);
}

static void case_sign_refused(ks_fixture *fx)
{
    static const uint8_t data[] = "not a key";
    uint8_t digest[32] = {1, 2, 3};
    uint8_t sig[TS_SIGNATURE_MAX];
    size_t sig_len = sizeof sig;
    EVP_PKEY *pub = NULL;

    KS_OK(ts_keystore_generate(fx->ks, "signer", TS_CURVE_P256));
    KS_FAILS_UNCHANGED(
        fx->ks, ts_keystore_sign_digest(fx->ks, "missing", digest, sizeof digest, sig, &sig_len),
        TS_ERR_NOT_FOUND, "missing");
    /* error.h: TS_ERR_WRONG_TYPE is "the label names an object of another kind". */
    KS_OK(ts_keystore_object_put(fx->ks, "cert", data, sizeof data, 0));
    sig_len = sizeof sig;
    KS_FAILS_UNCHANGED(
        fx->ks, ts_keystore_sign_digest(fx->ks, "cert", digest, sizeof digest, sig, &sig_len),
        TS_ERR_WRONG_TYPE, "cert");
    KS_FAILS(ts_keystore_public_key(fx->ks, "cert", &pub), TS_ERR_WRONG_TYPE, "cert");
    KS_FAILS(ts_keystore_public_key(fx->ks, "missing", &pub), TS_ERR_NOT_FOUND, "missing");
    /* A digest must be a hash output: 20 to 64 bytes. */
    sig_len = sizeof sig;
    KS_FAILS_UNCHANGED(fx->ks, ts_keystore_sign_digest(fx->ks, "signer", digest, 8, sig, &sig_len),
                       TS_ERR_INVALID, "digest");
}

static void case_key_persists(ks_fixture *fx)
{
    EVP_PKEY *p256 = NULL, *p384 = NULL, *again = NULL;

    KS_OK(ts_keystore_generate(fx->ks, "k256", TS_CURVE_P256));
    KS_OK(ts_keystore_generate(fx->ks, "k384", TS_CURVE_P384));
    KS_OK(ts_keystore_public_key(fx->ks, "k256", &p256));
    KS_OK(ts_keystore_public_key(fx->ks, "k384", &p384));
    KS_OK(ks_fixture_reopen(fx));

    KS_OK(ts_keystore_public_key(fx->ks, "k256", &again));
    int same = EVP_PKEY_eq(p256, again) == 1;
    EVP_PKEY_free(again);
    KS_CHECK_MSG(same, "the P-256 public key changed across reopen");
    KS_SIGNS(fx->ks, "k256", p256, 32);
    KS_SIGNS(fx->ks, "k384", p384, 48);
    EVP_PKEY_free(p256);
    EVP_PKEY_free(p384);
}

/* --- key agreement ---------------------------------------------------------------------------- */

static void derive_on(ks_fixture *fx, ts_curve curve, const char *peer_curve, size_t want_len)
{
    uint8_t secret[TS_SECRET_MAX], expect[TS_SECRET_MAX];
    size_t secret_len = sizeof secret, expect_len = sizeof expect;
    EVP_PKEY *pub = NULL, *peer = ks_ec_key(peer_curve);

    KS_CHECK(peer != NULL);
    KS_OK(ts_keystore_generate(fx->ks, "ecdh", curve));
    KS_OK(ts_keystore_public_key(fx->ks, "ecdh", &pub));
    KS_OK(ts_keystore_derive(fx->ks, "ecdh", peer, secret, &secret_len));
    /* The peer, knowing only the store's public key, must reach the same secret. */
    KS_CHECK(ks_derive(peer, pub, expect, &expect_len) == 0);
    KS_CHECK_U64(secret_len, want_len);
    KS_CHECK_U64(expect_len, want_len);
    KS_CHECK_MSG(CRYPTO_memcmp(secret, expect, want_len) == 0, "the shared secrets differ");
    OPENSSL_cleanse(secret, sizeof secret);
    OPENSSL_cleanse(expect, sizeof expect);
    EVP_PKEY_free(pub);
    EVP_PKEY_free(peer);
}

static void case_derive_p256(ks_fixture *fx)
{
    derive_on(fx, TS_CURVE_P256, "P-256", 32);
}

static void case_derive_p384(ks_fixture *fx)
{
    derive_on(fx, TS_CURVE_P384, "P-384", 48);
}

static void case_derive_refused(ks_fixture *fx)
{
    static const uint8_t data[] = "not a key";
    uint8_t secret[TS_SECRET_MAX];
    size_t secret_len = sizeof secret;
    EVP_PKEY *p384 = ks_ec_key("P-384"), *p256 = ks_ec_key("P-256");

    KS_CHECK(p384 != NULL && p256 != NULL);
    KS_OK(ts_keystore_generate(fx->ks, "ecdh", TS_CURVE_P256));
    KS_OK(ts_keystore_object_put(fx->ks, "cert", data, sizeof data, 0));
    KS_FAILS_UNCHANGED(fx->ks, ts_keystore_derive(fx->ks, "ecdh", p384, secret, &secret_len),
                       TS_ERR_INVALID, "ecdh");
    secret_len = sizeof secret;
    KS_FAILS_UNCHANGED(fx->ks, ts_keystore_derive(fx->ks, "missing", p256, secret, &secret_len),
                       TS_ERR_NOT_FOUND, "missing");
    secret_len = sizeof secret;
    KS_FAILS_UNCHANGED(fx->ks, ts_keystore_derive(fx->ks, "cert", p256, secret, &secret_len),
                       TS_ERR_WRONG_TYPE, "cert");
    EVP_PKEY_free(p384);
    EVP_PKEY_free(p256);
}

/* --- the tables ------------------------------------------------------------------------------- */

typedef struct ks_case {
    const char *name;
    void (*run)(ks_fixture *fx);
    unsigned backends; /* KS_SOFT, KS_PKCS11 or KS_BOTH */
} ks_case;

static const ks_backend_id backends[] = {KS_SOFT, KS_PKCS11};

static const ks_case cases[] = {
    {"uid", case_uid, KS_BOTH},
    {"identity", case_identity, KS_BOTH},
    {"random", case_random, KS_BOTH},
    {"generate_p256", case_generate_p256, KS_BOTH},
    {"generate_p384", case_generate_p384, KS_BOTH},
    {"generate_duplicate", case_generate_duplicate, KS_BOTH},
    {"generate_bad_label", case_generate_bad_label, KS_BOTH},
    {"generate_bad_curve", case_generate_bad_curve, KS_BOTH},
    {"sign_p256", case_sign_p256, KS_BOTH},
    {"sign_p384", case_sign_p384, KS_BOTH},
    {"sign_refused", case_sign_refused, KS_BOTH},
    {"key_persists", case_key_persists, KS_BOTH},
    {"derive_p256", case_derive_p256, KS_BOTH},
    {"derive_p384", case_derive_p384, KS_BOTH},
    {"derive_refused", case_derive_refused, KS_BOTH},
    {"object_roundtrip", ks_case_object_roundtrip, KS_BOTH},
    {"object_too_big", ks_case_object_too_big, KS_BOTH},
    {"object_exists", ks_case_object_exists, KS_BOTH},
    {"object_replace", ks_case_object_replace, KS_BOTH},
    {"object_secret_flag", ks_case_object_secret_flag, KS_BOTH},
    {"object_delete", ks_case_object_delete, KS_BOTH},
    {"object_wrong_type", ks_case_object_wrong_type, KS_BOTH},
    {"object_persists", ks_case_object_persists, KS_BOTH},
    {"list_sorted", ks_case_list_sorted, KS_BOTH},
    {"counter_absent", ks_case_counter_absent, KS_BOTH},
    {"counter_increment", ks_case_counter_increment, KS_BOTH},
    {"counter_rollback", ks_case_counter_rollback, KS_BOTH},
    {"counter_no_delete", ks_case_counter_no_delete, KS_BOTH},
    {"counter_persists", ks_case_counter_persists, KS_BOTH},
    {"counter_two_processes", ks_case_counter_two_processes, KS_BOTH},
    {"bad_uri", ks_case_bad_uri, KS_BOTH},
    {"wrong_pin", ks_case_wrong_pin, KS_BOTH},
    {"create_existing", ks_case_create_existing, KS_BOTH},
    {"missing_module", ks_case_missing_module, KS_PKCS11},
    {"unknown_token", ks_case_unknown_token, KS_PKCS11},
    {"null_args", ks_case_null_args, KS_BOTH},
    {"full_store", ks_case_full_store, KS_BOTH},
    {"import_no_plaintext", ks_case_soft_import_no_plaintext, KS_SOFT},
    {"secret_encrypted", ks_case_soft_secret_encrypted, KS_SOFT},
    {"import_usable", ks_case_pkcs11_import_usable, KS_PKCS11},
};

enum {
    N_CASES = sizeof cases / sizeof cases[0],
    N_BACKENDS = sizeof backends / sizeof backends[0]
};

/* One test: a case on a backend, with the fixture it runs on. */
typedef struct ks_test {
    const ks_case *c;
    ks_backend_id backend;
    char name[96];
    ks_fixture fx;
} ks_test;

static int setup(void **state)
{
    ks_test *t = *state;
    return ks_fixture_init(&t->fx, t->backend);
}

static int teardown(void **state)
{
    ks_test *t = *state;
    ks_fixture_cleanup(&t->fx);
    return 0;
}

static void run(void **state)
{
    ks_test *t = *state;
    t->c->run(&t->fx);
}

int main(void)
{
    static ks_test tests[N_CASES * N_BACKENDS];
    static struct CMUnitTest group[N_CASES * N_BACKENDS];
    size_t n = 0;

    /* A PIN from the environment would hide a URI without one. */
    unsetenv("TESSERA_PIN");
    unsetenv("TESSERA_PKCS11_MODULE");
    for (size_t b = 0; b < N_BACKENDS; b++) {
        for (size_t i = 0; i < N_CASES; i++) {
            if ((cases[i].backends & backends[b]) == 0) {
                continue;
            }
            ks_test *t = &tests[n];
            t->c = &cases[i];
            t->backend = backends[b];
            snprintf(t->name, sizeof t->name, "%s/%s", ks_backend_name(backends[b]), cases[i].name);
            group[n] = (struct CMUnitTest){t->name, run, setup, teardown, t};
            n++;
        }
    }
    const char *filter = getenv("TS_TEST_FILTER");
    if (filter != NULL && filter[0] != '\0') {
        cmocka_set_test_filter(filter);
    }
    return _cmocka_run_group_tests("keystore", group, n, NULL, NULL);
}
