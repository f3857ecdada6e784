/*
 * soft: the directory. File names of objects, reading and writing object files, the lock, and the
 * two calls that look at the directory as a whole: remove and list.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/crypto.h>

#include "common/error_internal.h"
#include "common/file_internal.h"
#include "keystore/ks_soft_internal.h"

static const struct {
    ts_soft_kind kind;
    const char *prefix;
    const char *name;
} kinds[] = {
    {TS_SOFT_KEY, "key.", "a key"},
    {TS_SOFT_DATA, "data.", "a data object"},
    {TS_SOFT_COUNTER, "ctr.", "a counter"},
};

/* --- shared helpers ------------------------------------------------------------------------ */

const char *ts_soft_kind_name(ts_soft_kind kind)
{
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        if (kinds[i].kind == kind) {
            return kinds[i].name;
        }
    }
    return "the store file";
}

ts_err ts_soft_dir_path(const char *dir, const char *name, const char *label, char path[PATH_MAX])
{
    int n = snprintf(path, PATH_MAX, "%s/%s%s", dir, name, label);
    if (n < 0 || n >= PATH_MAX) {
        return ts_error_set(TS_ERR_INVALID, "soft:%s: path too long", dir);
    }
    return TS_OK;
}

ts_err ts_soft_path(const ts_soft *st, ts_soft_kind kind, const char *label, char path[PATH_MAX])
{
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        if (kinds[i].kind == kind) {
            return ts_soft_dir_path(st->dir, kinds[i].prefix, label, path);
        }
    }
    return ts_error_set(TS_ERR_INVALID, "soft:%s: no file for kind %d", st->dir, (int)kind);
}

ts_err ts_soft_kind_of(const ts_soft *st, const char *label, ts_soft_kind *kind, int *found)
{
    char path[PATH_MAX];
    struct stat sb;

    *found = 0;
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        ts_err rv = ts_soft_dir_path(st->dir, kinds[i].prefix, label, path);
        if (rv != TS_OK) {
            return rv;
        }
        if (lstat(path, &sb) == 0) {
            *kind = kinds[i].kind;
            *found = 1;
            return TS_OK;
        }
        if (errno != ENOENT) {
            return ts_error_set(TS_ERR_IO, "cannot look at %s: %s", path, strerror(errno));
        }
    }
    return TS_OK;
}

ts_err ts_soft_not_found(const ts_soft *st, const char *label)
{
    return ts_error_set(TS_ERR_NOT_FOUND, "no object labelled '%s' in soft:%s", label, st->dir);
}

ts_err ts_soft_wrong_type(const ts_soft *st, const char *label, ts_soft_kind is, const char *want)
{
    return ts_error_set(TS_ERR_WRONG_TYPE, "'%s' in soft:%s is %s, not %s", label, st->dir,
                        ts_soft_kind_name(is), want);
}

ts_err ts_soft_label_taken(const ts_soft *st, const char *label, ts_soft_kind is)
{
    return ts_error_set(TS_ERR_EXISTS, "label '%s' is already used by %s in soft:%s", label,
                        ts_soft_kind_name(is), st->dir);
}

ts_err ts_soft_load(const ts_soft *st, ts_soft_kind kind, const char *label, ts_soft_record **rec,
                    uint8_t **plain, size_t *plain_len)
{
    char path[PATH_MAX];
    uint8_t *der = NULL, *out = NULL;
    size_t der_len = 0, out_len = 0;
    ts_soft_record *r = NULL;
    ts_err rv = ts_soft_path(st, kind, label, path);

    *rec = NULL;
    if (rv != TS_OK) {
        return rv;
    }
    rv = ts_file_read(path, TS_SOFT_FILE_MAX, &der, &der_len);
    if (rv != TS_OK) {
        return rv;
    }
    rv = ts_soft_file_parse(der, der_len, &r);
    if (rv == TS_OK && (r->kind != kind || strcmp(r->label, label) != 0)) {
        rv = ts_error_set(TS_ERR_CORRUPT, "holds %s labelled '%s': moved from another name",
                          ts_soft_kind_name(r->kind), r->label);
    }
    if (rv == TS_OK && CRYPTO_memcmp(r->uid, st->uid, TS_KEYSTORE_UID_LEN) != 0) {
        rv = ts_error_set(TS_ERR_CORRUPT, "belongs to another store (its UID differs)");
    }
    if (rv == TS_OK) {
        rv = ts_soft_file_unseal(r, st->key, &out, &out_len);
    }
    if (rv != TS_OK) {
        ts_error_prefix(rv, "%s", path);
        goto done;
    }
    if (plain != NULL) {
        *plain = out;
        *plain_len = out_len;
        out = NULL;
    }
    *rec = r;
    r = NULL;
done:
    OPENSSL_clear_free(out, out_len);
    OPENSSL_free(der);
    ts_soft_record_free(r);
    return rv;
}

ts_err ts_soft_save(const ts_soft *st, ts_soft_record *rec, const uint8_t *plain, size_t plain_len)
{
    char path[PATH_MAX];
    uint8_t *der = NULL;
    size_t der_len = 0;
    ts_err rv = ts_soft_path(st, rec->kind, rec->label, path);

    if (rv != TS_OK) {
        return rv;
    }
    memcpy(rec->uid, st->uid, TS_KEYSTORE_UID_LEN);
    rv = ts_soft_file_encode(rec, st->key, plain, plain_len, &der, &der_len);
    if (rv == TS_OK) {
        rv = ts_file_write_atomic(path, der, der_len, 0600);
    }
    OPENSSL_free(der);
    return rv;
}

ts_err ts_soft_lock(const ts_soft *st, int *fd)
{
    char path[PATH_MAX];
    ts_err rv = ts_soft_dir_path(st->dir, TS_SOFT_LOCK_FILE, "", path);
    return rv != TS_OK ? rv : ts_file_lock(path, fd);
}

/* --- removal and listing ------------------------------------------------------------------ */

ts_err ts_soft_remove(void *state, const char *label)
{
    ts_soft *st = state;
    char path[PATH_MAX];
    ts_soft_kind kind = TS_SOFT_KEY;
    int found = 0, fd = -1;
    ts_err rv = ts_soft_lock(st, &fd);

    if (rv == TS_OK) {
        rv = ts_soft_kind_of(st, label, &kind, &found);
    }
    if (rv == TS_OK && !found) {
        rv = ts_soft_not_found(st, label);
    }
    if (rv == TS_OK && kind == TS_SOFT_COUNTER) {
        rv = ts_error_set(TS_ERR_WRONG_TYPE,
                          "'%s' in soft:%s is a counter: counters cannot be deleted", label,
                          st->dir);
    }
    if (rv == TS_OK) {
        rv = ts_soft_path(st, kind, label, path);
    }
    if (rv == TS_OK) {
        rv = ts_file_remove(path);
    }
    if (rv == TS_OK && kind == TS_SOFT_KEY) {
        ts_soft_key_forget(st, label);
    }
    ts_file_unlock(fd);
    return rv;
}

/* ts_file_write_atomic()'s temporary files: NAME.tmp- and 16 hex digits. A crash can leave one
 * behind; it is not an object. */
static int is_temporary(const char *name)
{
    size_t n = strlen(name);

    if (n < 21 || strncmp(name + n - 21, ".tmp-", 5) != 0) {
        return 0;
    }
    return strspn(name + n - 16, "0123456789abcdef") == 16;
}

/* Adds the object file name to the list, if it names one. */
static ts_err list_one(const ts_soft *st, const char *name, ts_keystore_entry *e, int *added)
{
    ts_soft_record *rec = NULL;
    ts_err rv = TS_OK;

    *added = 0;
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        size_t plen = strlen(kinds[i].prefix);
        const char *label = name + plen;
        if (strncmp(name, kinds[i].prefix, plen) != 0) {
            continue;
        }
        if (!ts_soft_label_ok(label, strlen(label))) {
            return TS_OK; /* not a name this store writes */
        }
        rv = ts_soft_load(st, kinds[i].kind, label, &rec, NULL, NULL);
        if (rv == TS_ERR_CORRUPT && is_temporary(name)) {
            ts_error_clear();
            return TS_OK;
        }
        if (rv == TS_ERR_NOT_FOUND) { /* removed by another process meanwhile */
            ts_error_clear();
            return TS_OK;
        }
        if (rv != TS_OK) {
            return rv;
        }
        memset(e, 0, sizeof *e);
        memcpy(e->label, label, strlen(label) + 1);
        e->kind = kinds[i].kind == TS_SOFT_KEY    ? TS_KIND_KEY
                  : kinds[i].kind == TS_SOFT_DATA ? TS_KIND_DATA
                                                  : TS_KIND_COUNTER;
        e->curve = rec->curve;
        e->flags = rec->flags;
        if (e->kind == TS_KIND_DATA) {
            e->size = (rec->flags & TS_DATA_SECRET) != 0 ? rec->sealed_len : rec->data_len;
        }
        e->value = rec->value;
        ts_soft_record_free(rec);
        *added = 1;
        return TS_OK;
    }
    return TS_OK;
}

ts_err ts_soft_list(void *state, ts_keystore_entry **entries, size_t *count)
{
    const ts_soft *st = state;
    ts_keystore_entry *list = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e = NULL;
    ts_err rv = TS_OK;
    DIR *d = opendir(st->dir);

    if (d == NULL) {
        return ts_error_set(TS_ERR_IO, "cannot read soft:%s: %s", st->dir, strerror(errno));
    }
    while (rv == TS_OK && (e = readdir(d)) != NULL) {
        int added = 0;
        if (n == cap) {
            size_t ncap = cap == 0 ? 16 : cap * 2;
            ts_keystore_entry *grown = OPENSSL_realloc(list, ncap * sizeof *list);
            if (grown == NULL) {
                rv = ts_error_set(TS_ERR_NOMEM, "out of memory listing soft:%s", st->dir);
                break;
            }
            list = grown;
            cap = ncap;
        }
        rv = list_one(st, e->d_name, &list[n], &added);
        n += (size_t)added;
    }
    closedir(d);
    if (rv != TS_OK) {
        OPENSSL_free(list);
        return rv;
    }
    *entries = list;
    *count = n;
    return TS_OK;
}
