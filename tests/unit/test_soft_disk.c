/*
 * The soft: backend on disk: no private key or secret object in clear in any file, every edited
 * or moved file refused, a full disk leaving the store unchanged, modes 0600 and 0700, and the
 * leftovers of an interrupted write ignored.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/core_names.h>
#include <openssl/x509.h>

#include "soft_test_util.h"

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

static void file_path(const soft_fx *fx, const char *name, char *path, size_t size)
{
    snprintf(path, size, "%s/%s", fx->dir, name);
}

/* --- nothing secret in clear --------------------------------------------------------------- */

static void test_secret_object_not_in_clear(void **state)
{
    soft_fx *fx = *state;
    const uint8_t secret[] = "a-secret-marker-that-must-never-be-found-on-disk";
    const uint8_t plain[] = "a-public-marker-that-is-stored-in-clear-on-disk";

    assert_int_equal(soft()->object_put(fx->st, "s", secret, sizeof secret, TS_DATA_SECRET, 0),
                     TS_OK);
    assert_int_equal(soft()->object_put(fx->st, "p", plain, sizeof plain, 0, 0), TS_OK);
    assert_int_equal(soft_files_containing(fx->dir, secret, sizeof secret), 0);
    assert_int_equal(soft_files_containing(fx->dir, secret, 16), 0);
    /* The scan does find what is stored in clear. */
    assert_int_equal(soft_files_containing(fx->dir, plain, sizeof plain), 1);
}

/* Imports a key the test made (so it knows the scalar) as the sender of ts_keystore_import()
 * would: ECDH from an ephemeral key to the store key "rcpt", the import KEK, RFC 5649 wrap. */
typedef struct import_case {
    EVP_PKEY *key;
    uint8_t point[TS_POINT_MAX], eph_point[TS_POINT_MAX], wrapped[512];
    size_t point_len, eph_point_len, wrapped_len;
    uint8_t *p8;
    int p8_len;
    ts_ks_unwrap req;
} import_case;

static void import_prepare(void *st, ts_curve curve, const char *label, import_case *ic)
{
    static const uint8_t info[] = "test import info";
    EVP_PKEY *eph = EVP_PKEY_Q_keygen(NULL, NULL, "EC", ts_curve_group(curve));
    EVP_PKEY *rcpt = NULL;
    uint8_t z[TS_SECRET_MAX], kek[32];
    size_t z_len = sizeof z;
    int n = 0, fin = 0;

    memset(ic, 0, sizeof *ic);
    ic->key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", ts_curve_group(curve));
    assert_non_null(eph);
    assert_non_null(ic->key);
    assert_int_equal(soft()->public_key(st, "rcpt", &rcpt), TS_OK);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, eph, NULL);
    assert_int_equal(EVP_PKEY_derive_init(ctx), 1);
    assert_int_equal(EVP_PKEY_derive_set_peer(ctx, rcpt), 1);
    assert_int_equal(EVP_PKEY_derive(ctx, z, &z_len), 1);
    EVP_PKEY_CTX_free(ctx);
    assert_int_equal(ts_ks_import_kek(z, z_len, info, sizeof info, kek), TS_OK);

    PKCS8_PRIV_KEY_INFO *p8 = EVP_PKEY2PKCS8(ic->key);
    ic->p8_len = i2d_PKCS8_PRIV_KEY_INFO(p8, &ic->p8);
    PKCS8_PRIV_KEY_INFO_free(p8);
    assert_true(ic->p8_len > 0);
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    EVP_CIPHER_CTX_set_flags(c, EVP_CIPHER_CTX_FLAG_WRAP_ALLOW);
    assert_int_equal(EVP_EncryptInit_ex(c, EVP_aes_256_wrap_pad(), NULL, kek, NULL), 1);
    assert_int_equal(EVP_EncryptUpdate(c, ic->wrapped, &n, ic->p8, ic->p8_len), 1);
    assert_int_equal(EVP_EncryptFinal_ex(c, ic->wrapped + n, &fin), 1);
    EVP_CIPHER_CTX_free(c);
    ic->wrapped_len = (size_t)(n + fin);

    assert_int_equal(ts_pkey_to_point(eph, ic->eph_point, sizeof ic->eph_point, &ic->eph_point_len),
                     TS_OK);
    assert_int_equal(ts_pkey_to_point(ic->key, ic->point, sizeof ic->point, &ic->point_len), TS_OK);
    ic->req = (ts_ks_unwrap){
        .recipient_label = "rcpt",
        .peer_point = ic->eph_point,
        .peer_point_len = ic->eph_point_len,
        .info = info,
        .info_len = sizeof info,
        .wrapped = ic->wrapped,
        .wrapped_len = ic->wrapped_len,
        .label = label,
        .curve = curve,
        .public_point = ic->point,
        .public_point_len = ic->point_len,
    };
    EVP_PKEY_free(rcpt);
    EVP_PKEY_free(eph);
}

static void import_done(import_case *ic)
{
    EVP_PKEY_free(ic->key);
    OPENSSL_clear_free(ic->p8, (size_t)ic->p8_len);
}

static void test_imported_key_not_in_clear(void **state)
{
    soft_fx *fx = *state;
    static const ts_curve curves[] = {TS_CURVE_P256, TS_CURVE_P384};
    static const char *const labels[] = {"imp256", "imp384"};
    uint8_t digest[32] = {7}, sig[TS_SIGNATURE_MAX], scalar[48];
    size_t sig_len = sizeof sig;
    BIGNUM *d = NULL;
    import_case ic;

    for (size_t i = 0; i < 2; i++) {
        size_t scalar_len = curves[i] == TS_CURVE_P256 ? 32 : 48;
        soft()->remove(fx->st, "rcpt"); /* the previous curve's */
        assert_int_equal(soft()->generate(fx->st, "rcpt", curves[i], 0), TS_OK);
        import_prepare(fx->st, curves[i], labels[i], &ic);
        assert_int_equal(soft()->unwrap_import(fx->st, &ic.req), TS_OK);

        sig_len = sizeof sig;
        assert_int_equal(soft()->sign_digest(fx->st, labels[i], digest, 32, sig, &sig_len), TS_OK);
        assert_true(soft_verify(ic.key, digest, 32, sig, sig_len));

        assert_int_equal(EVP_PKEY_get_bn_param(ic.key, OSSL_PKEY_PARAM_PRIV_KEY, &d), 1);
        assert_int_equal(BN_bn2binpad(d, scalar, (int)scalar_len), (int)scalar_len);
        BN_clear_free(d);
        d = NULL;
        assert_int_equal(soft_files_containing(fx->dir, scalar, scalar_len), 0);
        assert_int_equal(soft_files_containing(fx->dir, ic.p8, (size_t)ic.p8_len), 0);
        assert_int_equal(soft_files_containing(fx->dir, ic.point, ic.point_len), 1);

        /* The same blob again: the label is taken. */
        assert_int_equal(soft()->unwrap_import(fx->st, &ic.req), TS_ERR_EXISTS);
        import_done(&ic);
    }
    /* And the key works from its file. */
    assert_int_equal(soft_reopen(fx), TS_OK);
    sig_len = sizeof sig;
    assert_int_equal(soft()->sign_digest(fx->st, "imp256", digest, 32, sig, &sig_len), TS_OK);
}

static void test_import_refusals(void **state)
{
    soft_fx *fx = *state;
    import_case ic, other;
    uint8_t bad[512];
    char *before = NULL, *after = NULL;

    assert_int_equal(soft()->generate(fx->st, "rcpt", TS_CURVE_P256, 0), TS_OK);
    import_prepare(fx->st, TS_CURVE_P256, "new", &ic);
    import_prepare(fx->st, TS_CURVE_P256, "new", &other);
    before = soft_snapshot(fx->dir);

    memcpy(bad, ic.wrapped, ic.wrapped_len);
    bad[5] ^= 0x40;
    ic.req.wrapped = bad;
    assert_int_equal(soft()->unwrap_import(fx->st, &ic.req), TS_ERR_AUTH);
    ic.req.wrapped = ic.wrapped;

    ic.req.public_point = other.point; /* a key that is not the one wrapped */
    assert_int_equal(soft()->unwrap_import(fx->st, &ic.req), TS_ERR_AUTH);
    ic.req.public_point = ic.point;

    ic.req.curve = TS_CURVE_P384;
    assert_int_equal(soft()->unwrap_import(fx->st, &ic.req), TS_ERR_CORRUPT);
    ic.req.curve = TS_CURVE_P256;

    ic.req.peer_point = other.eph_point; /* another ephemeral key: another KEK */
    assert_int_equal(soft()->unwrap_import(fx->st, &ic.req), TS_ERR_AUTH);
    ic.req.peer_point = ic.eph_point;

    ic.req.recipient_label = "nobody";
    assert_int_equal(soft()->unwrap_import(fx->st, &ic.req), TS_ERR_NOT_FOUND);
    ic.req.recipient_label = "rcpt";

    after = soft_snapshot(fx->dir);
    assert_string_equal(before, after);
    assert_int_equal(soft()->unwrap_import(fx->st, &ic.req), TS_OK);
    free(before);
    free(after);
    import_done(&ic);
    import_done(&other);
}

/* --- tampering ----------------------------------------------------------------------------- */

typedef ts_err (*read_fn)(void *st, const char *label);

static ts_err read_key(void *st, const char *label)
{
    ts_curve curve;
    return soft()->key_curve(st, label, &curve);
}

static ts_err read_data(void *st, const char *label)
{
    uint8_t *data = NULL;
    size_t len = 0;
    ts_err rv = soft()->object_get(st, label, &data, &len);
    OPENSSL_clear_free(data, len);
    return rv;
}

static ts_err read_counter(void *st, const char *label)
{
    uint64_t v = 0;
    return soft()->counter_get(st, label, &v);
}

/* Flips each byte of DIR/name in turn (one bit, then all bits): every variant is refused. */
static void flip_every_byte(soft_fx *fx, void *st, const char *name, const char *label,
                            read_fn read)
{
    char path[PATH_MAX * 2];
    size_t len = 0;

    file_path(fx, name, path, sizeof path);
    uint8_t *orig = soft_read_file(path, &len);
    assert_non_null(orig);
    if (len == 0 || len > 128 * 1024) {
        fail_msg("%s: unexpected size %zu", name, len);
        return;
    }
    uint8_t *copy = malloc(len);
    assert_non_null(copy);
    for (size_t i = 0; i < len; i++) {
        for (int m = 0; m < 2; m++) {
            memcpy(copy, orig, len);
            copy[i] ^= m == 0 ? 0x01 : 0xff;
            assert_int_equal(soft_write_file(path, copy, len), 0);
            ts_err rv = read(st, label);
            if (rv != TS_ERR_CORRUPT) {
                print_error("%s: byte %zu ^ %s gave %s\n", name, i, m == 0 ? "0x01" : "0xff",
                            ts_err_name(rv));
            }
            assert_int_equal(rv, TS_ERR_CORRUPT);
        }
    }
    /* Cut short and grown. */
    assert_int_equal(soft_write_file(path, orig, len - 1), 0);
    assert_int_equal(read(st, label), TS_ERR_CORRUPT);
    memcpy(copy, orig, len);
    assert_int_equal(soft_write_file(path, orig, len), 0);
    FILE *f = fopen(path, "ab");
    assert_non_null(f);
    fputc(0, f);
    fclose(f);
    assert_int_equal(read(st, label), TS_ERR_CORRUPT);
    assert_int_equal(soft_write_file(path, orig, len), 0);
    assert_int_equal(read(st, label), TS_OK);
    free(copy);
    free(orig);
}

static void test_tampered_files(void **state)
{
    soft_fx *fx = *state;
    void *st = NULL;
    uint64_t v = 5;

    assert_int_equal(soft()->generate(fx->st, "k", TS_CURVE_P256, 0), TS_OK);
    assert_int_equal(soft()->object_put(fx->st, "d", (const uint8_t *)"data", 4, 0, 0), TS_OK);
    assert_int_equal(soft()->object_put(fx->st, "s", (const uint8_t *)"hush", 4, TS_DATA_SECRET, 0),
                     TS_OK);
    assert_int_equal(soft()->counter_update(fx->st, "c", &v, 0), TS_OK);
    /* A second state with no key in its cache: each read goes to the file. */
    assert_int_equal(soft()->open(&fx->uri, &st), TS_OK);
    flip_every_byte(fx, st, "key.k", "k", read_key);
    flip_every_byte(fx, st, "data.d", "d", read_data);
    flip_every_byte(fx, st, "data.s", "s", read_data);
    flip_every_byte(fx, st, "ctr.c", "c", read_counter);
    soft()->close(st);
}

static void copy_file(const char *from, const char *to)
{
    size_t len = 0;
    uint8_t *buf = soft_read_file(from, &len);
    assert_non_null(buf);
    assert_int_equal(soft_write_file(to, buf, len), 0);
    free(buf);
}

static void test_moved_files(void **state)
{
    soft_fx *fx = *state;
    soft_fx other;
    char from[PATH_MAX * 2], to[PATH_MAX * 2];
    uint64_t v = 0;

    assert_int_equal(soft()->object_put(fx->st, "a", (const uint8_t *)"A", 1, 0, 0), TS_OK);
    assert_int_equal(soft()->object_put(fx->st, "b", (const uint8_t *)"B", 1, 0, 0), TS_OK);
    /* Under another label of the same store. */
    file_path(fx, "data.a", from, sizeof from);
    file_path(fx, "data.b", to, sizeof to);
    copy_file(from, to);
    assert_int_equal(read_data(fx->st, "b"), TS_ERR_CORRUPT);
    /* Under another kind. */
    file_path(fx, "ctr.a2", to, sizeof to);
    copy_file(from, to);
    assert_int_equal(soft()->counter_get(fx->st, "a2", &v), TS_ERR_CORRUPT);

    /* From another store, same label: its UID and key differ. */
    assert_int_equal(soft_fx_setup(&other), 0);
    assert_int_equal(soft()->object_put(other.st, "a", (const uint8_t *)"X", 1, 0, 0), TS_OK);
    assert_int_equal(soft()->generate(other.st, "k", TS_CURVE_P256, 0), TS_OK);
    file_path(&other, "data.a", from, sizeof from);
    file_path(fx, "data.a", to, sizeof to);
    copy_file(from, to);
    assert_int_equal(read_data(fx->st, "a"), TS_ERR_CORRUPT);
    assert_non_null(strstr(ts_error_message(), "another store"));
    file_path(&other, "key.k", from, sizeof from);
    file_path(fx, "key.k", to, sizeof to);
    copy_file(from, to);
    assert_int_equal(read_key(fx->st, "k"), TS_ERR_CORRUPT);
    soft_fx_teardown(&other);
}

static void test_tampered_store_file(void **state)
{
    soft_fx *fx = *state;
    char path[PATH_MAX * 2];
    size_t len = 0;

    file_path(fx, "store", path, sizeof path);
    uint8_t *orig = soft_read_file(path, &len);
    assert_non_null(orig);
    orig[len - 1] ^= 1; /* the tag: indistinguishable from a wrong PIN */
    assert_int_equal(soft_write_file(path, orig, len), 0);
    assert_int_equal(soft_reopen(fx), TS_ERR_PIN);
    orig[len - 1] ^= 1;
    assert_int_equal(soft_write_file(path, orig, len - 3), 0);
    assert_int_equal(soft_reopen(fx), TS_ERR_CORRUPT);
    assert_int_equal(soft_write_file(path, orig, len), 0);
    assert_int_equal(soft_reopen(fx), TS_OK);
    free(orig);
}

/* --- full disk ----------------------------------------------------------------------------- */

static void test_full_disk_changes_nothing(void **state)
{
    soft_fx *fx = *state;
    uint8_t big[2048] = {1};
    uint64_t v = 0;
    char *before = NULL, *after = NULL;
    uint8_t *data = NULL;
    size_t len = 0;
    int status = 0;

    assert_int_equal(soft()->object_put(fx->st, "d", (const uint8_t *)"old", 3, 0, 0), TS_OK);
    assert_int_equal(soft()->counter_update(fx->st, "c", &v, 1), TS_OK);
    assert_int_equal(soft()->generate(fx->st, "k", TS_CURVE_P256, 0), TS_OK);
    before = soft_snapshot(fx->dir);
    assert_non_null(before);

    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* The file-size limit stands in for a full disk: write() fails with EFBIG. */
        struct rlimit rl = {.rlim_cur = 16, .rlim_max = 16};
        int bad = 0;
        signal(SIGXFSZ, SIG_IGN);
        if (setrlimit(RLIMIT_FSIZE, &rl) != 0) {
            _exit(100);
        }
        uint64_t cv = 50;
        bad |= (soft()->generate(fx->st, "k2", TS_CURVE_P384, 0) != TS_ERR_FULL) << 0;
        bad |= (soft()->object_put(fx->st, "d2", big, sizeof big, 0, 0) != TS_ERR_FULL) << 1;
        bad |= (soft()->object_put(fx->st, "d", big, sizeof big, TS_DATA_SECRET, 1) != TS_ERR_FULL)
               << 2;
        bad |= (soft()->counter_update(fx->st, "c", &cv, 1) != TS_ERR_FULL) << 3;
        bad |= (soft()->counter_update(fx->st, "c", &cv, 0) != TS_ERR_FULL) << 4;
        bad |= (soft()->counter_update(fx->st, "c2", &cv, 1) != TS_ERR_FULL) << 5;
        _exit(bad);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);

    after = soft_snapshot(fx->dir);
    assert_non_null(after);
    assert_string_equal(before, after);
    assert_int_equal(soft_reopen(fx), TS_OK);
    assert_int_equal(soft()->object_get(fx->st, "d", &data, &len), TS_OK);
    assert_int_equal(len, 3);
    assert_memory_equal(data, "old", 3);
    OPENSSL_clear_free(data, len);
    assert_int_equal(soft()->counter_get(fx->st, "c", &v), TS_OK);
    assert_int_equal(v, 1);
    assert_int_equal(read_key(fx->st, "k2"), TS_ERR_NOT_FOUND);
    free(before);
    free(after);
}

/* --- modes and leftovers ------------------------------------------------------------------- */

static void test_modes(void **state)
{
    soft_fx *fx = *state;
    soft_fx f2;
    void *st = NULL;
    uint64_t v = 0;
    struct dirent *e;
    struct stat sb;
    char path[PATH_MAX * 2];
    int files = 0;

    /* Even with a permissive umask. */
    mode_t old = umask(0);
    memcpy(&f2, fx, sizeof f2);
    snprintf(f2.dir, sizeof f2.dir, "%s/open", fx->tmp);
    soft_uri(&f2, SOFT_PIN);
    assert_int_equal(soft()->create(&f2.uri, NULL, &st), TS_OK);
    assert_int_equal(soft()->generate(st, "k", TS_CURVE_P256, 0), TS_OK);
    assert_int_equal(soft()->object_put(st, "d", (const uint8_t *)"x", 1, 0, 0), TS_OK);
    assert_int_equal(soft()->counter_update(st, "c", &v, 1), TS_OK);
    soft()->close(st);
    soft_uri(&f2, "wrong");
    assert_int_equal(soft()->open(&f2.uri, &st), TS_ERR_PIN); /* writes pin-tries */
    umask(old);

    assert_int_equal(stat(f2.dir, &sb), 0);
    assert_int_equal(sb.st_mode & 07777, 0700);
    DIR *d = opendir(f2.dir);
    assert_non_null(d);
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) {
            continue;
        }
        snprintf(path, sizeof path, "%s/%s", f2.dir, e->d_name);
        assert_int_equal(lstat(path, &sb), 0);
        assert_true(S_ISREG(sb.st_mode));
        if ((sb.st_mode & 07777) != 0600) {
            print_error("%s has mode %o\n", e->d_name, sb.st_mode & 07777);
        }
        assert_int_equal(sb.st_mode & 07777, 0600);
        files++;
    }
    closedir(d);
    assert_int_equal(files, 6); /* store, .lock, pin-tries, key.k, data.d, ctr.c */
}

static void test_list_skips_leftovers(void **state)
{
    soft_fx *fx = *state;
    char from[PATH_MAX * 2], to[PATH_MAX * 2];
    ts_keystore_entry *list = NULL;
    size_t n = 0;

    assert_int_equal(soft()->object_put(fx->st, "x", (const uint8_t *)"1", 1, 0, 0), TS_OK);
    /* A label that looks like a temporary name is still an object. */
    assert_int_equal(
        soft()->object_put(fx->st, "y.tmp-0123456789abcdef", (const uint8_t *)"2", 1, 0, 0), TS_OK);
    file_path(fx, "data.x", from, sizeof from);
    file_path(fx, "data.x.tmp-00112233445566ff", to, sizeof to);
    copy_file(from, to);
    file_path(fx, "README", to, sizeof to);
    copy_file(from, to);
    assert_int_equal(soft()->list(fx->st, &list, &n), TS_OK);
    assert_int_equal(n, 2);
    OPENSSL_free(list);
    /* But a real object that fails its check fails the listing. */
    file_path(fx, "data.z", to, sizeof to);
    copy_file(from, to);
    assert_int_equal(soft()->list(fx->st, &list, &n), TS_ERR_CORRUPT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_secret_object_not_in_clear, setup, teardown),
        cmocka_unit_test_setup_teardown(test_imported_key_not_in_clear, setup, teardown),
        cmocka_unit_test_setup_teardown(test_import_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tampered_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_moved_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tampered_store_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_full_disk_changes_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_modes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_skips_leftovers, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
