/*
 * The PKCS#11 backend's data objects, counters, deletes and listing on SoftHSM2, including a
 * replace cut short, two processes incrementing one counter, and a token that is full.
 */
#include <dirent.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "p11_test_util.h"

static int setup(void **state)
{
    p11_fx *fx = calloc(1, sizeof *fx);
    if (fx == NULL || p11_fx_setup(fx) != 0) {
        free(fx);
        return -1;
    }
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    p11_fx *fx = *state;
    p11_fx_teardown(fx);
    free(fx);
    return 0;
}

static void expect_object(ts_keystore *ks, const char *label, const void *want, size_t want_len)
{
    uint8_t *data = NULL;
    size_t len = 0;
    assert_int_equal(ts_keystore_object_get(ks, label, &data, &len), TS_OK);
    assert_int_equal(len, want_len);
    if (want_len > 0) {
        assert_memory_equal(data, want, len);
    }
    OPENSSL_clear_free(data, len);
}

static const ts_keystore_entry *find_entry(const ts_keystore_entry *e, size_t n, const char *label)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(e[i].label, label) == 0) {
            return &e[i];
        }
    }
    return NULL;
}

/* Makes a CKO_DATA object by hand, as another tool or a cut-short write would leave it. */
static void make_data(p11_store *st, const char *label, const char *app, const void *value,
                      size_t len)
{
    CK_OBJECT_CLASS cls = CKO_DATA;
    CK_BBOOL yes = CK_TRUE;
    CK_OBJECT_HANDLE h;
    CK_ATTRIBUTE tmpl[] = {
        {CKA_CLASS, &cls, sizeof cls},
        {CKA_TOKEN, &yes, 1},
        {CKA_PRIVATE, &yes, 1},
        {CKA_LABEL, (void *)label, strlen(label)},
        {CKA_APPLICATION, (void *)app, strlen(app)},
        {CKA_VALUE, (void *)value, len},
    };
    assert_int_equal(st->f->C_CreateObject(st->session, tmpl, 6, &h), CKR_OK);
}

static void test_data_objects(void **state)
{
    p11_fx *fx = *state;
    static uint8_t big[TS_OBJECT_MAX];
    uint8_t *data = NULL;
    size_t len = 0;

    memset(big, 0xa5, sizeof big);
    assert_int_equal(ts_keystore_object_put(fx->ks, "cert", (const uint8_t *)"abc", 3, 0), TS_OK);
    assert_int_equal(
        ts_keystore_object_put(fx->ks, "secret", (const uint8_t *)"s3", 2, TS_DATA_SECRET), TS_OK);
    assert_int_equal(ts_keystore_object_put(fx->ks, "empty", NULL, 0, 0), TS_OK);
    assert_int_equal(ts_keystore_object_put(fx->ks, "big", big, sizeof big, 0), TS_OK);
    expect_object(fx->ks, "cert", "abc", 3);
    expect_object(fx->ks, "secret", "s3", 2);
    expect_object(fx->ks, "empty", "", 0);
    expect_object(fx->ks, "big", big, sizeof big);
    assert_int_equal(ts_keystore_object_put(fx->ks, "cert", (const uint8_t *)"x", 1, 0),
                     TS_ERR_EXISTS);
    expect_object(fx->ks, "cert", "abc", 3);
    assert_int_equal(ts_keystore_object_get(fx->ks, "nothing", &data, &len), TS_ERR_NOT_FOUND);
    assert_non_null(strstr(ts_error_message(), "nothing"));
    assert_non_null(strstr(ts_error_message(), P11_TOKEN));

    p11_store *st = p11_test_state(fx->uri);
    p11_found found[P11_LABEL_OBJECTS];
    size_t n = 0;
    assert_int_equal(p11_find_label(st, "secret", found, &n), TS_OK);
    assert_int_equal(n, 1);
    assert_int_equal(found[0].kind, P11_DATA);
    assert_int_equal(p11_test_bool(st, found[0].handle, CKA_PRIVATE), 1);
    assert_int_equal(p11_find_label(st, "cert", found, &n), TS_OK);
    assert_int_equal(p11_test_bool(st, found[0].handle, CKA_PRIVATE), 0);
    ts_ks_pkcs11_backend.close(st);
}

static void test_replace(void **state)
{
    p11_fx *fx = *state;
    ts_keystore_entry *e = NULL;
    size_t n = 0;

    /* Replacing a label nobody uses makes it. */
    assert_int_equal(ts_keystore_object_replace(fx->ks, "cfg", (const uint8_t *)"v1", 2, 0), TS_OK);
    for (int i = 2; i <= 7; i++) {
        char v[8];
        snprintf(v, sizeof v, "v%d", i);
        /* Every generation of the cycle, and the secret flag changing on the way. */
        assert_int_equal(ts_keystore_object_replace(fx->ks, "cfg", (const uint8_t *)v, strlen(v),
                                                    i % 2 ? TS_DATA_SECRET : 0),
                         TS_OK);
        expect_object(fx->ks, "cfg", v, strlen(v));
    }
    assert_int_equal(ts_keystore_list(fx->ks, &e, &n), TS_OK);
    const ts_keystore_entry *cfg = find_entry(e, n, "cfg");
    assert_non_null(cfg);
    assert_int_equal(cfg->kind, TS_KIND_DATA);
    assert_int_equal(cfg->flags, TS_DATA_SECRET);
    assert_int_equal(cfg->size, 2);
    OPENSSL_free(e);

    p11_store *st = p11_test_state(fx->uri);
    assert_int_equal(p11_test_count_label(st, "cfg"), 1);
    ts_ks_pkcs11_backend.close(st);

    assert_int_equal(ts_keystore_generate(fx->ks, "key", TS_CURVE_P256), TS_OK);
    assert_int_equal(ts_keystore_object_replace(fx->ks, "key", (const uint8_t *)"x", 1, 0),
                     TS_ERR_WRONG_TYPE);
    assert_int_equal(ts_keystore_object_put(fx->ks, "key", (const uint8_t *)"x", 1, 0),
                     TS_ERR_EXISTS);
    uint8_t *data = NULL;
    size_t len = 0;
    assert_int_equal(ts_keystore_object_get(fx->ks, "key", &data, &len), TS_ERR_WRONG_TYPE);
}

/* A replace cut short between writing the new object and destroying the old one. */
static void test_replace_cut_short(void **state)
{
    p11_fx *fx = *state;
    ts_keystore_entry *e = NULL;
    size_t n = 0;

    assert_int_equal(ts_keystore_object_put(fx->ks, "cfg", (const uint8_t *)"old", 3, 0), TS_OK);
    p11_store *st = p11_test_state(fx->uri);
    make_data(st, "cfg", P11_APP_DATA ".1", "newer", 5);
    assert_int_equal(p11_test_count_label(st, "cfg"), 2);

    expect_object(fx->ks, "cfg", "newer", 5);
    assert_int_equal(ts_keystore_list(fx->ks, &e, &n), TS_OK);
    assert_non_null(find_entry(e, n, "cfg"));
    assert_int_equal(find_entry(e, n, "cfg")->size, 5);
    OPENSSL_free(e);

    /* The next replace clears the superseded one away. */
    assert_int_equal(ts_keystore_object_replace(fx->ks, "cfg", (const uint8_t *)"last", 4, 0),
                     TS_OK);
    expect_object(fx->ks, "cfg", "last", 4);
    assert_int_equal(p11_test_count_label(st, "cfg"), 1);

    /* Two objects of one generation cannot be ordered: refused, and delete clears them. */
    make_data(st, "dup", P11_APP_DATA, "a", 1);
    make_data(st, "dup", P11_APP_DATA, "b", 1);
    uint8_t *data = NULL;
    size_t len = 0;
    assert_int_equal(ts_keystore_object_get(fx->ks, "dup", &data, &len), TS_ERR_CORRUPT);
    assert_int_equal(ts_keystore_delete(fx->ks, "dup"), TS_OK);
    assert_int_equal(p11_test_count_label(st, "dup"), 0);
    ts_ks_pkcs11_backend.close(st);
}

static void test_delete_and_list(void **state)
{
    p11_fx *fx = *state;
    ts_keystore_entry *e = NULL;
    size_t n = 0;
    uint64_t v = 0;

    assert_int_equal(ts_keystore_generate(fx->ks, "b-key", TS_CURVE_P384), TS_OK);
    assert_int_equal(ts_keystore_generate(fx->ks, "a-key", TS_CURVE_P256), TS_OK);
    assert_int_equal(
        ts_keystore_object_put(fx->ks, "c-data", (const uint8_t *)"1234", 4, TS_DATA_SECRET),
        TS_OK);
    assert_int_equal(ts_keystore_counter_raise(fx->ks, "d-ctr", 41), TS_OK);
    p11_store *st = p11_test_state(fx->uri);
    make_data(st, "foreign", "another-app", "x", 1);

    assert_int_equal(ts_keystore_list(fx->ks, &e, &n), TS_OK);
    assert_int_equal(n, 4); /* no UID, no foreign object */
    assert_string_equal(e[0].label, "a-key");
    assert_int_equal(e[0].kind, TS_KIND_KEY);
    assert_int_equal(e[0].curve, TS_CURVE_P256);
    assert_string_equal(e[1].label, "b-key");
    assert_int_equal(e[1].curve, TS_CURVE_P384);
    assert_string_equal(e[2].label, "c-data");
    assert_int_equal(e[2].kind, TS_KIND_DATA);
    assert_int_equal(e[2].size, 4);
    assert_int_equal(e[2].flags, TS_DATA_SECRET);
    assert_string_equal(e[3].label, "d-ctr");
    assert_int_equal(e[3].kind, TS_KIND_COUNTER);
    assert_int_equal(e[3].value, 41);
    OPENSSL_free(e);

    assert_int_equal(ts_keystore_delete(fx->ks, "a-key"), TS_OK);
    assert_int_equal(p11_test_count_label(st, "a-key"), 0); /* both halves */
    assert_int_equal(ts_keystore_delete(fx->ks, "a-key"), TS_ERR_NOT_FOUND);
    assert_non_null(strstr(ts_error_message(), "a-key"));
    assert_non_null(strstr(ts_error_message(), P11_TOKEN));
    assert_int_equal(ts_keystore_delete(fx->ks, "c-data"), TS_OK);
    assert_int_equal(p11_test_count_label(st, "c-data"), 0);
    assert_int_equal(ts_keystore_delete(fx->ks, "d-ctr"), TS_ERR_WRONG_TYPE);
    assert_int_equal(ts_keystore_counter_get(fx->ks, "d-ctr", &v), TS_OK);
    assert_int_equal(v, 41);
    assert_int_equal(ts_keystore_delete(fx->ks, "foreign"), TS_ERR_WRONG_TYPE);
    assert_int_equal(p11_test_count_label(st, "foreign"), 1);
    assert_int_equal(ts_keystore_object_put(fx->ks, "foreign", (const uint8_t *)"y", 1, 0),
                     TS_ERR_EXISTS);
    assert_int_equal(ts_keystore_generate(fx->ks, "foreign", TS_CURVE_P256), TS_ERR_EXISTS);
    ts_ks_pkcs11_backend.close(st);

    assert_int_equal(ts_keystore_list(fx->ks, &e, &n), TS_OK);
    assert_int_equal(n, 2);
    OPENSSL_free(e);
}

static void test_counters(void **state)
{
    p11_fx *fx = *state;
    uint64_t v = 99;

    assert_int_equal(ts_keystore_counter_get(fx->ks, "fw", &v), TS_OK);
    assert_int_equal(v, 0);
    assert_int_equal(ts_keystore_counter_increment(fx->ks, "fw", &v), TS_OK);
    assert_int_equal(v, 1);
    assert_int_equal(ts_keystore_counter_increment(fx->ks, "fw", &v), TS_OK);
    assert_int_equal(v, 2);
    assert_int_equal(ts_keystore_counter_raise(fx->ks, "fw", 10), TS_OK);
    assert_int_equal(ts_keystore_counter_raise(fx->ks, "fw", 5), TS_ERR_ROLLBACK);
    assert_non_null(strstr(ts_error_message(), "fw"));
    assert_int_equal(ts_keystore_counter_get(fx->ks, "fw", &v), TS_OK);
    assert_int_equal(v, 10);
    assert_int_equal(ts_keystore_counter_raise(fx->ks, "fw", 10), TS_OK);
    assert_int_equal(ts_keystore_counter_raise(fx->ks, "fw", UINT64_MAX), TS_OK);
    assert_int_equal(ts_keystore_counter_increment(fx->ks, "fw", &v), TS_ERR_ROLLBACK);
    assert_int_equal(ts_keystore_counter_get(fx->ks, "fw", &v), TS_OK);
    assert_true(v == UINT64_MAX);

    /* A left-over older object never lowers the value, and the next change clears it. */
    uint8_t three[8] = {0, 0, 0, 0, 0, 0, 0, 3};
    assert_int_equal(ts_keystore_counter_raise(fx->ks, "boot", 7), TS_OK);
    p11_store *st = p11_test_state(fx->uri);
    make_data(st, "boot", P11_APP_COUNTER, three, sizeof three);
    assert_int_equal(ts_keystore_counter_get(fx->ks, "boot", &v), TS_OK);
    assert_int_equal(v, 7);
    assert_int_equal(ts_keystore_counter_increment(fx->ks, "boot", &v), TS_OK);
    assert_int_equal(v, 8);
    assert_int_equal(p11_test_count_label(st, "boot"), 1);
    p11_found found[P11_LABEL_OBJECTS];
    size_t n = 0;
    assert_int_equal(p11_find_label(st, "boot", found, &n), TS_OK);
    assert_int_equal(found[0].kind, P11_COUNTER);
    assert_int_equal(p11_test_bool(st, found[0].handle, CKA_PRIVATE), 1);
    ts_ks_pkcs11_backend.close(st);

    assert_int_equal(ts_keystore_generate(fx->ks, "k", TS_CURVE_P256), TS_OK);
    assert_int_equal(ts_keystore_counter_get(fx->ks, "k", &v), TS_ERR_WRONG_TYPE);
    assert_int_equal(ts_keystore_counter_increment(fx->ks, "k", &v), TS_ERR_WRONG_TYPE);
    assert_int_equal(ts_keystore_object_put(fx->ks, "boot", (const uint8_t *)"x", 1, 0),
                     TS_ERR_EXISTS);
}

enum { INCREMENTS = 1000 };

static void test_counter_two_processes(void **state)
{
    p11_fx *fx = *state;
    pid_t pids[2];
    uint64_t v = 0;

    /* The parent keeps its store open: each child initialises the module again for itself. */
    for (int i = 0; i < 2; i++) {
        pids[i] = fork();
        assert_true(pids[i] >= 0);
        if (pids[i] == 0) {
            ts_keystore *ks = NULL;
            int failed = ts_keystore_open(fx->uri, &ks) != TS_OK;
            for (int k = 0; k < INCREMENTS && !failed; k++) {
                failed = ts_keystore_counter_increment(ks, "shared", NULL) != TS_OK;
            }
            if (failed) {
                fprintf(stderr, "child %d: %s\n", i, ts_error_message());
            }
            ts_keystore_free(ks);
            _exit(failed ? 1 : 0);
        }
    }
    for (int i = 0; i < 2; i++) {
        int status = 0;
        assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
    }
    assert_int_equal(ts_keystore_counter_get(fx->ks, "shared", &v), TS_OK);
    assert_int_equal(v, 2 * INCREMENTS);
}

/* Object files of the test's SoftHSM2 token. */
static int count_object_files(const char *tmp)
{
    char dir[PATH_MAX];
    int n = 0;
    snprintf(dir, sizeof dir, "%s/softhsm-tokens", tmp);
    DIR *top = opendir(dir);
    struct dirent *t;
    while (top != NULL && (t = readdir(top)) != NULL) {
        char sub[PATH_MAX * 2];
        if (t->d_name[0] == '.') {
            continue;
        }
        snprintf(sub, sizeof sub, "%s/%s", dir, t->d_name);
        DIR *d = opendir(sub);
        struct dirent *f;
        while (d != NULL && (f = readdir(d)) != NULL) {
            size_t len = strlen(f->d_name);
            n += len > 7 && strcmp(f->d_name + len - 7, ".object") == 0;
        }
        if (d != NULL) {
            closedir(d);
        }
    }
    if (top != NULL) {
        closedir(top);
    }
    return n;
}

/*
 * A token that cannot store another object. SoftHSM2 answers CKR_OK when writing an object's
 * file fails (here: a file size limit, as on a full disk) and leaves the cut file behind; the
 * backend must say TS_ERR_FULL and leave nothing.
 */
static void test_full_token(void **state)
{
    p11_fx *fx = *state;
    int fds[2];
    ts_err codes[4] = {TS_OK, TS_OK, TS_OK, TS_OK};
    uint8_t data[2000];
    uint64_t v = 0;

    memset(data, 0x5a, sizeof data);
    assert_int_equal(ts_keystore_counter_raise(fx->ks, "ctr", 5), TS_OK);
    int files_before = count_object_files(fx->tmp);
    assert_true(files_before > 0);
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        ts_keystore *ks = NULL;
        struct rlimit small = {64, 64};
        close(fds[0]);
        if (ts_keystore_open(fx->uri, &ks) != TS_OK) {
            _exit(2);
        }
        signal(SIGXFSZ, SIG_IGN);
        if (setrlimit(RLIMIT_FSIZE, &small) != 0) {
            _exit(3);
        }
        codes[0] = ts_keystore_object_put(ks, "big", data, sizeof data, 0);
        codes[3] =
            strstr(ts_error_message(), "no room for another object") != NULL ? TS_OK : TS_ERR_STATE;
        codes[1] = ts_keystore_generate(ks, "key", TS_CURVE_P256);
        codes[2] = ts_keystore_counter_increment(ks, "ctr", NULL);
        ts_keystore_free(ks);
        _exit(write(fds[1], codes, sizeof codes) == sizeof codes ? 0 : 4);
    }
    close(fds[1]);
    assert_int_equal(read(fds[0], codes, sizeof codes), sizeof codes);
    close(fds[0]);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_int_equal(codes[0], TS_ERR_FULL);
    assert_int_equal(codes[3], TS_OK);
    assert_int_equal(codes[1], TS_ERR_FULL);
    assert_int_equal(codes[2], TS_ERR_FULL);

    /* Nothing left behind, and the counter kept its value. */
    assert_int_equal(count_object_files(fx->tmp), files_before);
    ts_keystore_free(fx->ks);
    assert_int_equal(ts_keystore_open(fx->uri, &fx->ks), TS_OK);
    uint8_t *got = NULL;
    size_t len = 0;
    assert_int_equal(ts_keystore_object_get(fx->ks, "big", &got, &len), TS_ERR_NOT_FOUND);
    EVP_PKEY *pub = NULL;
    assert_int_equal(ts_keystore_public_key(fx->ks, "key", &pub), TS_ERR_NOT_FOUND);
    assert_int_equal(ts_keystore_counter_get(fx->ks, "ctr", &v), TS_OK);
    assert_int_equal(v, 5);
    /* With room again, all of it works. */
    assert_int_equal(ts_keystore_object_put(fx->ks, "big", data, sizeof data, 0), TS_OK);
    assert_int_equal(ts_keystore_generate(fx->ks, "key", TS_CURVE_P256), TS_OK);
    assert_int_equal(ts_keystore_counter_increment(fx->ks, "ctr", &v), TS_OK);
    assert_int_equal(v, 6);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_data_objects, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replace, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replace_cut_short, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete_and_list, setup, teardown),
        cmocka_unit_test_setup_teardown(test_counters, setup, teardown),
        cmocka_unit_test_setup_teardown(test_counter_two_processes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_full_token, setup, teardown),
    };
    if (getenv("TS_TEST_FILTER") != NULL) {
        cmocka_set_test_filter(getenv("TS_TEST_FILTER"));
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
