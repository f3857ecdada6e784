/*
 * The soft: backend through its table (ts_ks_soft_backend) and through ts_keystore_open():
 * creating and opening, PINs and the lockout, keys on both curves, ECDH, data objects, counters
 * (also from two processes at once). On-disk properties are in test_soft_disk.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/core_names.h>

#include "soft_test_util.h"
#include "tessera/keystore.h"

static int setup(void **state)
{
    soft_fx *fx = calloc(1, sizeof *fx);
    if (fx == NULL || soft_fx_setup(fx) != 0) {
        free(fx);
        return -1;
    }
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    soft_fx_teardown(*state);
    free(*state);
    return 0;
}

/* --- creating and opening ------------------------------------------------------------------ */

static void test_create_and_open(void **state)
{
    soft_fx *fx = *state;
    uint8_t uid[TS_KEYSTORE_UID_LEN], uid2[TS_KEYSTORE_UID_LEN], zero[TS_KEYSTORE_UID_LEN] = {0};
    void *st = NULL;

    assert_int_equal(soft()->uid(fx->st, uid), TS_OK);
    assert_memory_not_equal(uid, zero, sizeof uid);
    assert_int_equal(soft_reopen(fx), TS_OK);
    assert_int_equal(soft()->uid(fx->st, uid2), TS_OK);
    assert_memory_equal(uid, uid2, sizeof uid);

    /* A second store on the same directory is refused, and the first one still opens. */
    assert_int_equal(soft()->create(&fx->uri, NULL, &st), TS_ERR_EXISTS);
    assert_null(st);
    assert_int_equal(soft_reopen(fx), TS_OK);

    /* Each store gets its own UID. */
    soft_fx other;
    assert_int_equal(soft_fx_setup(&other), 0);
    assert_int_equal(soft()->uid(other.st, uid2), TS_OK);
    assert_memory_not_equal(uid, uid2, sizeof uid);
    soft_fx_teardown(&other);
}

static void test_create_needs_pin_and_empty_dir(void **state)
{
    soft_fx *fx = *state;
    soft_fx f2;
    void *st = NULL;
    char path[PATH_MAX * 2];

    memcpy(&f2, fx, sizeof f2);
    snprintf(f2.dir, sizeof f2.dir, "%s/new", fx->tmp);
    soft_uri(&f2, NULL);
    assert_int_equal(soft()->create(&f2.uri, NULL, &st), TS_ERR_PIN);
    assert_non_null(strstr(ts_error_message(), "soft store needs a PIN"));
    assert_int_equal(access(f2.dir, F_OK), -1); /* nothing made */
    soft_uri(&f2, "");
    assert_int_equal(soft()->create(&f2.uri, NULL, &st), TS_ERR_PIN);

    /* Not empty: refused, and left as it was. */
    assert_int_equal(mkdir(f2.dir, 0755), 0);
    snprintf(path, sizeof path, "%s/keep", f2.dir);
    assert_int_equal(soft_write_file(path, (const uint8_t *)"x", 1), 0);
    soft_uri(&f2, SOFT_PIN);
    assert_int_equal(soft()->create(&f2.uri, NULL, &st), TS_ERR_EXISTS);
    assert_int_equal(access(path, F_OK), 0);

    /* Empty: taken, and made private. */
    assert_int_equal(unlink(path), 0);
    assert_int_equal(soft()->create(&f2.uri, NULL, &st), TS_OK);
    struct stat sb;
    assert_int_equal(stat(f2.dir, &sb), 0);
    assert_int_equal(sb.st_mode & 07777, 0700);
    soft()->close(st);

    /* A missing parent is an I/O error, not a half-made store. */
    snprintf(f2.dir, sizeof f2.dir, "%s/no/such", fx->tmp);
    soft_uri(&f2, SOFT_PIN);
    assert_int_equal(soft()->create(&f2.uri, NULL, &st), TS_ERR_IO);
}

static void test_open_errors(void **state)
{
    soft_fx *fx = *state;
    soft_fx f2;
    void *st = NULL;

    memcpy(&f2, fx, sizeof f2);
    snprintf(f2.dir, sizeof f2.dir, "%s/absent", fx->tmp);
    soft_uri(&f2, SOFT_PIN);
    assert_int_equal(soft()->open(&f2.uri, &st), TS_ERR_NO_TOKEN);
    soft_uri(fx, NULL);
    assert_int_equal(soft()->open(&fx->uri, &st), TS_ERR_PIN);
    assert_null(st);
}

static void test_wrong_pin_then_lock(void **state)
{
    soft_fx *fx = *state;
    void *st = NULL;

    soft()->close(fx->st);
    fx->st = NULL;
    /* Wrong PINs count, a right one resets the count. */
    for (int i = 0; i < 9; i++) {
        soft_uri(fx, "4321");
        assert_int_equal(soft()->open(&fx->uri, &st), TS_ERR_PIN);
        assert_non_null(strstr(ts_error_message(), "wrong PIN"));
        assert_null(st);
    }
    assert_int_equal(soft_reopen(fx), TS_OK);
    /* Ten in a row lock the store, even against the right PIN. */
    for (int i = 0; i < 10; i++) {
        soft_uri(fx, "0000");
        assert_int_equal(soft()->open(&fx->uri, &st), TS_ERR_PIN);
    }
    soft_uri(fx, "0000");
    assert_int_equal(soft()->open(&fx->uri, &st), TS_ERR_PIN_LOCKED);
    assert_int_equal(soft_reopen(fx), TS_ERR_PIN_LOCKED);
    assert_null(fx->st);
}

/* --- keys ---------------------------------------------------------------------------------- */

static void sign_and_verify(void *st, const char *label)
{
    uint8_t digest[48], sig[TS_SIGNATURE_MAX];
    size_t sig_len = sizeof sig;
    EVP_PKEY *pub = NULL;

    for (size_t i = 0; i < sizeof digest; i++) {
        digest[i] = (uint8_t)(i * 7 + 1);
    }
    assert_int_equal(soft()->sign_digest(st, label, digest, 32, sig, &sig_len), TS_OK);
    assert_int_equal(soft()->public_key(st, label, &pub), TS_OK);
    assert_true(soft_verify(pub, digest, 32, sig, sig_len));
    digest[0] ^= 1; /* and it is a real check */
    assert_false(soft_verify(pub, digest, 32, sig, sig_len));
    EVP_PKEY_free(pub);
}

static void test_generate_and_sign(void **state)
{
    soft_fx *fx = *state;
    ts_curve curve;
    EVP_PKEY *pub = NULL;
    uint8_t sig[8];
    size_t sig_len = sizeof sig;
    const uint8_t digest[32] = {1};

    assert_int_equal(soft()->generate(fx->st, "p256", TS_CURVE_P256, 0), TS_OK);
    assert_int_equal(soft()->generate(fx->st, "p384", TS_CURVE_P384, 0), TS_OK);
    assert_int_equal(soft()->key_curve(fx->st, "p256", &curve), TS_OK);
    assert_int_equal(curve, TS_CURVE_P256);
    assert_int_equal(soft()->key_curve(fx->st, "p384", &curve), TS_OK);
    assert_int_equal(curve, TS_CURVE_P384);
    assert_int_equal(soft()->public_key(fx->st, "p384", &pub), TS_OK);
    assert_int_equal(EVP_PKEY_get_bits(pub), 384);
    EVP_PKEY_free(pub);
    sign_and_verify(fx->st, "p256");
    sign_and_verify(fx->st, "p384");

    /* From the files, after a reopen. */
    assert_int_equal(soft_reopen(fx), TS_OK);
    sign_and_verify(fx->st, "p256");
    sign_and_verify(fx->st, "p384");

    assert_int_equal(soft()->sign_digest(fx->st, "p384", digest, 32, sig, &sig_len),
                     TS_ERR_INVALID);
    assert_int_equal(soft()->generate(fx->st, "p256", TS_CURVE_P384, 0), TS_ERR_EXISTS);
    assert_int_equal(soft()->object_put(fx->st, "d", (const uint8_t *)"x", 1, 0, 0), TS_OK);
    assert_int_equal(soft()->generate(fx->st, "d", TS_CURVE_P256, 0), TS_ERR_EXISTS);
    assert_int_equal(soft()->sign_digest(fx->st, "d", digest, 32, sig, &sig_len),
                     TS_ERR_WRONG_TYPE);
    assert_int_equal(soft()->sign_digest(fx->st, "nope", digest, 32, sig, &sig_len),
                     TS_ERR_NOT_FOUND);
    assert_int_equal(soft()->public_key(fx->st, "nope", &pub), TS_ERR_NOT_FOUND);
}

static void test_delete_key_drops_cache(void **state)
{
    soft_fx *fx = *state;
    EVP_PKEY *old = NULL, *new = NULL;
    uint8_t digest[32] = {9}, sig[TS_SIGNATURE_MAX];
    size_t sig_len = sizeof sig;

    assert_int_equal(soft()->generate(fx->st, "k", TS_CURVE_P256, 0), TS_OK);
    assert_int_equal(soft()->public_key(fx->st, "k", &old), TS_OK);
    sign_and_verify(fx->st, "k");
    assert_int_equal(soft()->remove(fx->st, "k"), TS_OK);
    assert_int_equal(soft()->sign_digest(fx->st, "k", digest, 32, sig, &sig_len), TS_ERR_NOT_FOUND);
    assert_int_equal(soft()->generate(fx->st, "k", TS_CURVE_P256, 0), TS_OK);
    assert_int_equal(soft()->public_key(fx->st, "k", &new), TS_OK);
    assert_int_not_equal(EVP_PKEY_eq(old, new), 1);
    assert_int_equal(soft()->sign_digest(fx->st, "k", digest, 32, sig, &sig_len), TS_OK);
    assert_true(soft_verify(new, digest, 32, sig, sig_len));
    assert_false(soft_verify(old, digest, 32, sig, sig_len));
    EVP_PKEY_free(old);
    EVP_PKEY_free(new);
}

/* The store's ECDH equals OpenSSL's from the peer's side. */
static void derive_matches(void *st, const char *label, ts_curve curve)
{
    EVP_PKEY *peer = EVP_PKEY_Q_keygen(NULL, NULL, "EC", ts_curve_group(curve));
    EVP_PKEY *pub = NULL;
    uint8_t point[TS_POINT_MAX], ours[TS_SECRET_MAX], theirs[TS_SECRET_MAX];
    size_t point_len = 0, ours_len = sizeof ours, theirs_len = sizeof theirs;

    assert_non_null(peer);
    assert_int_equal(ts_pkey_to_point(peer, point, sizeof point, &point_len), TS_OK);
    assert_int_equal(soft()->derive(st, label, point, point_len, ours, &ours_len), TS_OK);
    assert_int_equal(ours_len, curve == TS_CURVE_P256 ? 32 : 48);

    assert_int_equal(soft()->public_key(st, label, &pub), TS_OK);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, peer, NULL);
    assert_non_null(ctx);
    assert_int_equal(EVP_PKEY_derive_init(ctx), 1);
    assert_int_equal(EVP_PKEY_derive_set_peer(ctx, pub), 1);
    assert_int_equal(EVP_PKEY_derive(ctx, theirs, &theirs_len), 1);
    assert_int_equal(theirs_len, ours_len);
    assert_memory_equal(ours, theirs, ours_len);
    EVP_PKEY_CTX_free(ctx);
    EVP_PKEY_free(pub);

    /* A point that is not on the curve is refused. */
    point[point_len - 1] ^= 1;
    ours_len = sizeof ours;
    assert_int_not_equal(soft()->derive(st, label, point, point_len, ours, &ours_len), TS_OK);
    EVP_PKEY_free(peer);
}

static void test_derive(void **state)
{
    soft_fx *fx = *state;
    assert_int_equal(soft()->generate(fx->st, "e256", TS_CURVE_P256, 0), TS_OK);
    assert_int_equal(soft()->generate(fx->st, "e384", TS_CURVE_P384, 0), TS_OK);
    derive_matches(fx->st, "e256", TS_CURVE_P256);
    derive_matches(fx->st, "e384", TS_CURVE_P384);
    assert_int_equal(soft_reopen(fx), TS_OK);
    derive_matches(fx->st, "e384", TS_CURVE_P384);
}

/* --- data objects -------------------------------------------------------------------------- */

static void expect_object(void *st, const char *label, const char *want)
{
    uint8_t *data = NULL;
    size_t len = 0;
    assert_int_equal(soft()->object_get(st, label, &data, &len), TS_OK);
    assert_int_equal(len, strlen(want));
    assert_memory_equal(data, want, len);
    OPENSSL_clear_free(data, len);
}

static const ts_keystore_entry *find_entry(const ts_keystore_entry *e, size_t n, const char *l)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(e[i].label, l) == 0) {
            return &e[i];
        }
    }
    return NULL;
}

static void test_data_objects(void **state)
{
    soft_fx *fx = *state;
    uint8_t *data = NULL;
    size_t len = 0, n = 0;
    ts_keystore_entry *list = NULL;
    uint64_t v = 0;

    assert_int_equal(soft()->object_put(fx->st, "cert", (const uint8_t *)"hello", 5, 0, 0), TS_OK);
    assert_int_equal(
        soft()->object_put(fx->st, "psk", (const uint8_t *)"s3cret", 6, TS_DATA_SECRET, 0), TS_OK);
    assert_int_equal(soft()->object_put(fx->st, "empty", NULL, 0, 0, 0), TS_OK);
    expect_object(fx->st, "cert", "hello");
    expect_object(fx->st, "psk", "s3cret");
    expect_object(fx->st, "empty", "");
    assert_int_equal(soft()->object_put(fx->st, "cert", (const uint8_t *)"x", 1, 0, 0),
                     TS_ERR_EXISTS);
    assert_int_equal(soft()->object_put(fx->st, "cert", (const uint8_t *)"bye", 3, 0, 1), TS_OK);
    expect_object(fx->st, "cert", "bye");
    /* Replacing may turn a clear object secret. */
    assert_int_equal(
        soft()->object_put(fx->st, "cert", (const uint8_t *)"hush", 4, TS_DATA_SECRET, 1), TS_OK);
    expect_object(fx->st, "cert", "hush");

    assert_int_equal(soft()->generate(fx->st, "key", TS_CURVE_P256, 0), TS_OK);
    assert_int_equal(soft()->counter_update(fx->st, "ctr", &v, 1), TS_OK);
    assert_int_equal(soft()->object_put(fx->st, "key", (const uint8_t *)"x", 1, 0, 1),
                     TS_ERR_WRONG_TYPE);
    assert_int_equal(soft()->object_put(fx->st, "ctr", (const uint8_t *)"x", 1, 0, 0),
                     TS_ERR_EXISTS);
    assert_int_equal(soft()->object_get(fx->st, "key", &data, &len), TS_ERR_WRONG_TYPE);
    assert_int_equal(soft()->object_get(fx->st, "none", &data, &len), TS_ERR_NOT_FOUND);

    assert_int_equal(soft()->list(fx->st, &list, &n), TS_OK);
    assert_int_equal(n, 5);
    const ts_keystore_entry *e = find_entry(list, n, "cert");
    assert_non_null(e);
    assert_int_equal(e->kind, TS_KIND_DATA);
    assert_int_equal(e->flags, TS_DATA_SECRET);
    assert_int_equal(e->size, 4);
    e = find_entry(list, n, "key");
    assert_non_null(e);
    assert_int_equal(e->kind, TS_KIND_KEY);
    assert_int_equal(e->curve, TS_CURVE_P256);
    e = find_entry(list, n, "ctr");
    assert_non_null(e);
    assert_int_equal(e->kind, TS_KIND_COUNTER);
    assert_int_equal(e->value, 1);
    e = find_entry(list, n, "empty");
    assert_non_null(e);
    assert_int_equal(e->size, 0);
    OPENSSL_free(list);

    assert_int_equal(soft()->remove(fx->st, "cert"), TS_OK);
    assert_int_equal(soft()->object_get(fx->st, "cert", &data, &len), TS_ERR_NOT_FOUND);
    assert_int_equal(soft()->remove(fx->st, "cert"), TS_ERR_NOT_FOUND);
    assert_non_null(strstr(ts_error_message(), "no object labelled 'cert' in soft:"));
    assert_int_equal(soft()->remove(fx->st, "ctr"), TS_ERR_WRONG_TYPE);
    assert_int_equal(soft()->remove(fx->st, "key"), TS_OK);
    assert_int_equal(soft()->list(fx->st, &list, &n), TS_OK);
    assert_int_equal(n, 3);
    assert_null(find_entry(list, n, "cert"));
    assert_null(find_entry(list, n, "key"));
    OPENSSL_free(list);
}

/* --- counters ------------------------------------------------------------------------------ */

static void test_counters(void **state)
{
    soft_fx *fx = *state;
    uint64_t v = 99;

    assert_int_equal(soft()->counter_get(fx->st, "c", &v), TS_OK);
    assert_int_equal(v, 0);
    assert_int_equal(soft()->counter_update(fx->st, "c", &v, 1), TS_OK);
    assert_int_equal(v, 1);
    assert_int_equal(soft()->counter_update(fx->st, "c", &v, 1), TS_OK);
    assert_int_equal(v, 2);
    v = 10;
    assert_int_equal(soft()->counter_update(fx->st, "c", &v, 0), TS_OK);
    assert_int_equal(v, 10);
    v = 5;
    assert_int_equal(soft()->counter_update(fx->st, "c", &v, 0), TS_ERR_ROLLBACK);
    assert_int_equal(soft()->counter_get(fx->st, "c", &v), TS_OK);
    assert_int_equal(v, 10);
    v = 10;
    assert_int_equal(soft()->counter_update(fx->st, "c", &v, 0), TS_OK);
    v = UINT64_MAX;
    assert_int_equal(soft()->counter_update(fx->st, "c", &v, 0), TS_OK);
    assert_int_equal(soft()->counter_update(fx->st, "c", &v, 1), TS_ERR_INVALID);
    assert_int_equal(soft_reopen(fx), TS_OK);
    assert_int_equal(soft()->counter_get(fx->st, "c", &v), TS_OK);
    assert_true(v == UINT64_MAX);

    assert_int_equal(soft()->object_put(fx->st, "d", (const uint8_t *)"x", 1, 0, 0), TS_OK);
    assert_int_equal(soft()->counter_get(fx->st, "d", &v), TS_ERR_WRONG_TYPE);
    assert_int_equal(soft()->counter_update(fx->st, "d", &v, 1), TS_ERR_WRONG_TYPE);
    assert_int_equal(soft()->generate(fx->st, "c", TS_CURVE_P256, 0), TS_ERR_EXISTS);
}

/* Two processes, each its own open store, increment 1000 times each: exactly 2000. */
static void test_counter_two_processes(void **state)
{
    soft_fx *fx = *state;
    pid_t pids[2];
    uint64_t v = 0;

    for (int i = 0; i < 2; i++) {
        pids[i] = fork();
        assert_true(pids[i] >= 0);
        if (pids[i] == 0) {
            void *st = NULL;
            int bad = soft()->open(&fx->uri, &st) != TS_OK;
            for (int j = 0; j < 1000 && !bad; j++) {
                uint64_t got = 0;
                bad = soft()->counter_update(st, "shared", &got, 1) != TS_OK || got == 0;
            }
            soft()->close(st);
            _exit(bad);
        }
    }
    for (int i = 0; i < 2; i++) {
        int status = 0;
        assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
    }
    assert_int_equal(soft()->counter_get(fx->st, "shared", &v), TS_OK);
    assert_int_equal(v, 2000);
}

/* --- through the front --------------------------------------------------------------------- */

static void test_through_front(void **state)
{
    soft_fx *fx = *state;
    char uri[PATH_MAX + 64];
    ts_keystore *ks = NULL, *ks2 = NULL;
    ts_keystore_entry *list = NULL;
    uint8_t uid[TS_KEYSTORE_UID_LEN], uid2[TS_KEYSTORE_UID_LEN];
    uint8_t digest[32] = {3}, sig[TS_SIGNATURE_MAX];
    size_t sig_len = sizeof sig, n = 0;
    uint64_t v = 0;
    EVP_PKEY *pub = NULL;

    snprintf(uri, sizeof uri, "soft:%s/front?pin-value=%s", fx->tmp, SOFT_PIN);
    assert_int_equal(ts_keystore_create(uri, NULL, &ks), TS_OK);
    assert_string_equal(ts_keystore_backend(ks), "soft");
    assert_null(strstr(ts_keystore_uri(ks), SOFT_PIN));
    assert_int_equal(ts_keystore_generate(ks, "dev", TS_CURVE_P256), TS_OK);
    assert_int_equal(ts_keystore_sign_digest(ks, "dev", digest, 32, sig, &sig_len), TS_OK);
    assert_int_equal(ts_keystore_public_key(ks, "dev", &pub), TS_OK);
    assert_true(soft_verify(pub, digest, 32, sig, sig_len));
    EVP_PKEY_free(pub);
    assert_int_equal(ts_keystore_counter_increment(ks, "boot", &v), TS_OK);
    assert_int_equal(ts_keystore_uid(ks, uid), TS_OK);

    assert_int_equal(ts_keystore_open(uri, &ks2), TS_OK);
    assert_int_equal(ts_keystore_uid(ks2, uid2), TS_OK);
    assert_memory_equal(uid, uid2, sizeof uid);
    assert_int_equal(ts_keystore_list(ks2, &list, &n), TS_OK);
    assert_int_equal(n, 2);
    assert_string_equal(list[0].label, "boot");
    assert_string_equal(list[1].label, "dev");
    OPENSSL_free(list);
    ts_keystore_free(ks2);
    ts_keystore_free(ks);

    snprintf(uri, sizeof uri, "soft:%s/front?pin-value=9999", fx->tmp);
    assert_int_equal(ts_keystore_open(uri, &ks), TS_ERR_PIN);
    assert_null(ks);
}

/* Two processes through ts_keystore_counter_increment(), each with its own ts_keystore. */
static void test_counter_two_processes_front(void **state)
{
    soft_fx *fx = *state;
    char uri[PATH_MAX + 64];
    pid_t pids[2];
    ts_keystore *ks = NULL;
    uint64_t v = 0;

    snprintf(uri, sizeof uri, "soft:%s?pin-value=%s", fx->dir, SOFT_PIN);
    for (int i = 0; i < 2; i++) {
        pids[i] = fork();
        assert_true(pids[i] >= 0);
        if (pids[i] == 0) {
            ts_keystore *child = NULL;
            int bad = ts_keystore_open(uri, &child) != TS_OK;
            for (int j = 0; j < 1000 && !bad; j++) {
                bad = ts_keystore_counter_increment(child, "front", NULL) != TS_OK;
            }
            ts_keystore_free(child);
            _exit(bad);
        }
    }
    for (int i = 0; i < 2; i++) {
        int status = 0;
        assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
    }
    assert_int_equal(ts_keystore_open(uri, &ks), TS_OK);
    assert_int_equal(ts_keystore_counter_get(ks, "front", &v), TS_OK);
    assert_int_equal(v, 2000);
    ts_keystore_free(ks);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_create_and_open, setup, teardown),
        cmocka_unit_test_setup_teardown(test_create_needs_pin_and_empty_dir, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_pin_then_lock, setup, teardown),
        cmocka_unit_test_setup_teardown(test_generate_and_sign, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete_key_drops_cache, setup, teardown),
        cmocka_unit_test_setup_teardown(test_derive, setup, teardown),
        cmocka_unit_test_setup_teardown(test_data_objects, setup, teardown),
        cmocka_unit_test_setup_teardown(test_counters, setup, teardown),
        cmocka_unit_test_setup_teardown(test_counter_two_processes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_through_front, setup, teardown),
        cmocka_unit_test_setup_teardown(test_counter_two_processes_front, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
