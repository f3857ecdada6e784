/* Key-store fixtures: a fresh store per test, listings, OpenSSL checks, file scans, children. */
#define _GNU_SOURCE /* memmem */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>

#include "ks_fixture.h"
#include "test_support.h"

const char *ks_backend_name(ks_backend_id backend)
{
    return backend == KS_SOFT ? "soft" : "pkcs11";
}

int ks_fixture_uri(const ks_fixture *fx, const char *name, const char *pin, char *buf, size_t size)
{
    int n;
    if (fx->backend == KS_SOFT) {
        n = snprintf(buf, size, "soft:%s/%s%s%s", fx->tmp, name, pin != NULL ? "?pin-value=" : "",
                     pin != NULL ? pin : "");
    } else {
        n = snprintf(buf, size, "pkcs11:token=%s?module-path=%s%s%s", name, TS_SOFTHSM_MODULE,
                     pin != NULL ? "&pin-value=" : "", pin != NULL ? pin : "");
    }
    return n > 0 && (size_t)n < size ? 0 : -1;
}

static int fixture_start(ks_fixture *fx, ks_backend_id backend)
{
    if (backend == KS_SOFT) {
        snprintf(fx->files, sizeof fx->files, "%s/store", fx->tmp);
    } else {
        /* ts_test_softhsm_setup() puts the token directory here. */
        snprintf(fx->files, sizeof fx->files, "%s/softhsm-tokens", fx->tmp);
        if (ts_test_softhsm_setup(fx->tmp) != 0) {
            fprintf(stderr, "ks_fixture: cannot set up SoftHSM2 in %s\n", fx->tmp);
            return -1;
        }
        /* The token's cross-process lock file (docs/pkcs11.md) goes with the test, too. */
        if (setenv("TESSERA_LOCK_DIR", fx->tmp, 1) != 0) {
            return -1;
        }
    }
    if (ks_fixture_uri(fx, backend == KS_SOFT ? "store" : KS_TOKEN, KS_PIN, fx->uri,
                       sizeof fx->uri) != 0) {
        return -1;
    }
    ts_err rv = ts_keystore_create(fx->uri, KS_SO_PIN, &fx->ks);
    if (rv != TS_OK) {
        fprintf(stderr, "ks_fixture: cannot create %s store: %s (%s)\n", ks_backend_name(backend),
                ts_err_name(rv), ts_error_message());
        return -1;
    }
    return 0;
}

int ks_fixture_init(ks_fixture *fx, ks_backend_id backend)
{
    memset(fx, 0, sizeof *fx);
    fx->backend = backend;
    if (ts_test_tmpdir(fx->tmp, sizeof fx->tmp) != 0) {
        fprintf(stderr, "ks_fixture: cannot make a temporary directory: %s\n", strerror(errno));
        return -1;
    }
    if (fixture_start(fx, backend) != 0) {
        /* The runner skips the teardown of a test whose setup failed. */
        ks_fixture_cleanup(fx);
        return -1;
    }
    return 0;
}

void ks_fixture_close(ks_fixture *fx)
{
    ts_keystore_free(fx->ks);
    fx->ks = NULL;
}

void ks_fixture_cleanup(ks_fixture *fx)
{
    ks_fixture_close(fx);
    ts_test_rmtree(fx->tmp);
}

ts_err ks_fixture_reopen(ks_fixture *fx)
{
    ks_fixture_close(fx);
    return ts_keystore_open(fx->uri, &fx->ks);
}

ts_err ks_fixture_create_other(const ks_fixture *fx, const char *name, ts_keystore **out)
{
    char uri[KS_URI_MAX];
    *out = NULL;
    if (ks_fixture_uri(fx, name, KS_PIN, uri, sizeof uri) != 0) {
        return TS_ERR_INVALID;
    }
    return ts_keystore_create(uri, KS_SO_PIN, out);
}

/* --- listings --------------------------------------------------------------------------------- */

ts_err ks_snapshot_take(ts_keystore *ks, ks_snapshot *snap)
{
    snap->entries = NULL;
    snap->count = 0;
    return ts_keystore_list(ks, &snap->entries, &snap->count);
}

void ks_snapshot_free(ks_snapshot *snap)
{
    OPENSSL_free(snap->entries);
    snap->entries = NULL;
    snap->count = 0;
}

const ts_keystore_entry *ks_snapshot_find(const ks_snapshot *snap, const char *label)
{
    for (size_t i = 0; i < snap->count; i++) {
        if (strcmp(snap->entries[i].label, label) == 0) {
            return &snap->entries[i];
        }
    }
    return NULL;
}

static int entry_equal(const ts_keystore_entry *a, const ts_keystore_entry *b)
{
    if (strcmp(a->label, b->label) != 0 || a->kind != b->kind) {
        return 0;
    }
    switch (a->kind) {
    case TS_KIND_KEY:
        return a->curve == b->curve;
    case TS_KIND_DATA:
        return a->flags == b->flags && a->size == b->size;
    case TS_KIND_COUNTER:
        return a->value == b->value;
    }
    return 0;
}

int ks_snapshot_equal(const ks_snapshot *a, const ks_snapshot *b, char *why, size_t why_size)
{
    if (a->count != b->count) {
        snprintf(why, why_size, "%zu objects before, %zu after", a->count, b->count);
        return 0;
    }
    for (size_t i = 0; i < a->count; i++) {
        const ts_keystore_entry *x = &a->entries[i], *y = &b->entries[i];
        if (!entry_equal(x, y)) {
            snprintf(why, why_size,
                     "entry %zu was '%s' kind %d curve %d flags %u size %zu value %llu, "
                     "is '%s' kind %d curve %d flags %u size %zu value %llu",
                     i, x->label, (int)x->kind, (int)x->curve, x->flags, x->size,
                     (unsigned long long)x->value, y->label, (int)y->kind, (int)y->curve, y->flags,
                     y->size, (unsigned long long)y->value);
            return 0;
        }
    }
    return 1;
}

/* --- OpenSSL checks --------------------------------------------------------------------------- */

EVP_PKEY *ks_ec_key(const char *curve)
{
    return EVP_EC_gen(strcmp(curve, "P-384") == 0 ? "secp384r1" : "prime256v1");
}

int ks_group_name(const EVP_PKEY *pkey, char *buf, size_t size)
{
    return EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, buf, size, NULL) == 1
               ? 0
               : -1;
}

int ks_verify(EVP_PKEY *pub, const uint8_t *digest, size_t digest_len, const uint8_t *sig,
              size_t sig_len)
{
    int rv = -1;
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pub, NULL);
    if (ctx == NULL || EVP_PKEY_verify_init(ctx) != 1) {
        goto done;
    }
    /* 0 is a bad signature; negative values are errors, which a bad DER encoding may give. */
    rv = EVP_PKEY_verify(ctx, sig, sig_len, digest, digest_len) == 1 ? 1 : 0;
done:
    EVP_PKEY_CTX_free(ctx);
    return rv;
}

int ks_derive(EVP_PKEY *priv, EVP_PKEY *pub, uint8_t *secret, size_t *secret_len)
{
    int rv = -1;
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, priv, NULL);
    if (ctx == NULL || EVP_PKEY_derive_init(ctx) != 1 || EVP_PKEY_derive_set_peer(ctx, pub) != 1 ||
        EVP_PKEY_derive(ctx, secret, secret_len) != 1) {
        goto done;
    }
    rv = 0;
done:
    EVP_PKEY_CTX_free(ctx);
    return rv;
}

int ks_private_scalar(const EVP_PKEY *pkey, uint8_t *out, size_t len)
{
    BIGNUM *d = NULL;
    if (EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_PRIV_KEY, &d) != 1) {
        return -1;
    }
    int n = BN_bn2binpad(d, out, (int)len);
    BN_clear_free(d);
    return n == (int)len ? 0 : -1;
}

/* --- files ------------------------------------------------------------------------------------ */

/* nftw() takes no user pointer, so the walks below keep their state here (tests are serial). */
static struct {
    const uint8_t *needle;
    size_t needle_len;
    unsigned mode;
    int count;
    long long largest;
    int error;
} walk;

static int file_contains(const char *path, const uint8_t *needle, size_t len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return -1;
    }
    size_t size = (size_t)st.st_size;
    uint8_t *buf = malloc(size + 1);
    size_t got = 0;
    while (buf != NULL && got < size) {
        ssize_t n = read(fd, buf + got, size - got);
        if (n <= 0) {
            break;
        }
        got += (size_t)n;
    }
    close(fd);
    if (buf == NULL) {
        return -1;
    }
    int found = len > 0 && got >= len && memmem(buf, got, needle, len) != NULL;
    free(buf);
    return found;
}

static int walk_contains(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)ftw;
    if (flag == FTW_F && S_ISREG(st->st_mode)) {
        int found = file_contains(path, walk.needle, walk.needle_len);
        if (found < 0) {
            walk.error = 1;
        } else if (found) {
            fprintf(stderr, "ks_fixture: %s contains the bytes searched for\n", path);
            walk.count++;
        }
    }
    return 0;
}

static int walk_mode(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)ftw;
    if (flag == FTW_F && S_ISREG(st->st_mode) && (st->st_mode & 07777) != walk.mode) {
        fprintf(stderr, "ks_fixture: %s has mode %04o, not %04o\n", path,
                (unsigned)(st->st_mode & 07777), walk.mode);
        walk.count++;
    }
    return 0;
}

static int walk_largest(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)path;
    (void)ftw;
    if (flag == FTW_F && S_ISREG(st->st_mode) && (long long)st->st_size > walk.largest) {
        walk.largest = (long long)st->st_size;
    }
    return 0;
}

int ks_files_containing(const char *dir, const uint8_t *needle, size_t len)
{
    memset(&walk, 0, sizeof walk);
    walk.needle = needle;
    walk.needle_len = len;
    if (nftw(dir, walk_contains, 16, FTW_PHYS) != 0 || walk.error) {
        return -1;
    }
    return walk.count;
}

int ks_files_not_mode(const char *dir, unsigned mode)
{
    memset(&walk, 0, sizeof walk);
    walk.mode = mode;
    if (nftw(dir, walk_mode, 16, FTW_PHYS) != 0) {
        return -1;
    }
    return walk.count;
}

long long ks_largest_file(const char *dir)
{
    memset(&walk, 0, sizeof walk);
    if (nftw(dir, walk_largest, 16, FTW_PHYS) != 0) {
        return -1;
    }
    return walk.largest;
}

/* --- child processes -------------------------------------------------------------------------- */

static int write_all(int fd, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static size_t read_all(int fd, void *buf, size_t len)
{
    uint8_t *p = buf;
    size_t got = 0;
    while (got < len) {
        ssize_t n = read(fd, p + got, len - got);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            break;
        }
        got += (size_t)n;
    }
    return got;
}

static void child_main(int start_fd, int result_fd, void (*fn)(void *, int, void *), void *arg,
                       int index, void *result, size_t result_size)
{
    uint8_t go;
    /* A crash must end the child, not return it into the runner's handler for the parent. */
    static const int fatal[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT};
    for (size_t i = 0; i < sizeof fatal / sizeof fatal[0]; i++) {
        signal(fatal[i], SIG_DFL);
    }
    /* Wait until every sibling exists, so that they really run at the same time. */
    ssize_t r = read(start_fd, &go, 1);
    (void)r; /* 0 (end of file) is the signal to go */
    close(start_fd);
    memset(result, 0, result_size);
    fn(arg, index, result);
    _exit(write_all(result_fd, result, result_size) == 0 ? 0 : 2);
}

int ks_in_children(int n, void (*fn)(void *arg, int index, void *result), void *arg, void *results,
                   size_t result_size)
{
    enum { KS_CHILDREN_MAX = 8 };
    pid_t pids[KS_CHILDREN_MAX];
    int fds[KS_CHILDREN_MAX];
    int start[2];
    int started = 0, rv = 0;

    if (n < 1 || n > KS_CHILDREN_MAX || pipe(start) != 0) {
        return -1;
    }
    fflush(NULL);
    for (; started < n; started++) {
        int p[2];
        if (pipe(p) != 0) {
            rv = -1;
            break;
        }
        pid_t pid = fork();
        if (pid < 0) {
            close(p[0]);
            close(p[1]);
            rv = -1;
            break;
        }
        if (pid == 0) {
            close(start[1]);
            close(p[0]);
            child_main(start[0], p[1], fn, arg, started,
                       (uint8_t *)results + (size_t)started * result_size, result_size);
        }
        close(p[1]);
        pids[started] = pid;
        fds[started] = p[0];
    }
    /* Closing the write end releases every child at once. */
    close(start[0]);
    close(start[1]);
    for (int i = 0; i < started; i++) {
        uint8_t *result = (uint8_t *)results + (size_t)i * result_size;
        size_t got = read_all(fds[i], result, result_size);
        close(fds[i]);
        int status = 0;
        while (waitpid(pids[i], &status, 0) < 0 && errno == EINTR) {
        }
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || got != result_size) {
            fprintf(stderr, "ks_fixture: child %d %s %d\n", i,
                    WIFSIGNALED(status) ? "killed by signal" : "exited with",
                    WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
            rv = -1;
        }
    }
    return rv;
}
