/*
 * soft: the software secure element. Objects are files in DIR, each sealed under the store key
 * with AES-256-GCM (soft_file.c); the store key is sealed under a key derived from the PIN with
 * scrypt (soft_kdf.c). This file creates and opens stores, checks the PIN and holds the backend
 * table; ks_soft_dir.c, ks_soft_key.c and ks_soft_object.c do the rest. docs/soft-store.md gives
 * the layout and the threat model.
 */
#include <dirent.h>
#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "common/error_internal.h"
#include "common/file_internal.h"
#include "keystore/ks_soft_internal.h"
#include "keystore/soft_kdf_internal.h"

/* Consecutive wrong PINs after which the store refuses every PIN. */
enum { TS_SOFT_PIN_TRIES = 10 };

/* --- the store file and the PIN ------------------------------------------------------------ */

static void state_free(ts_soft *st)
{
    if (st == NULL) {
        return;
    }
    ts_soft_keys_free(st);
    OPENSSL_secure_clear_free(st->key, TS_SOFT_KEY_LEN);
    OPENSSL_free(st->dir);
    OPENSSL_free(st);
}

static ts_err state_new(const char *dir, ts_soft **out)
{
    ts_soft *st = OPENSSL_zalloc(sizeof *st);

    *out = NULL;
    if (st == NULL) {
        return ts_error_set(TS_ERR_NOMEM, "out of memory opening soft:%s", dir);
    }
    st->dir = OPENSSL_strdup(dir);
    st->key = OPENSSL_secure_zalloc(TS_SOFT_KEY_LEN);
    if (st->dir == NULL || st->key == NULL) {
        state_free(st);
        return ts_error_set(TS_ERR_NOMEM, "out of memory opening soft:%s", dir);
    }
    *out = st;
    return TS_OK;
}

static ts_err check_uri(const ts_ks_uri *uri)
{
    if (uri->path == NULL || uri->path[0] == '\0') {
        return ts_error_set(TS_ERR_URI, "soft: needs a directory (soft:DIR)");
    }
    if (strlen(uri->path) > PATH_MAX - TS_LABEL_MAX - 64) {
        return ts_error_set(TS_ERR_URI, "soft: directory path too long");
    }
    if (uri->pin == NULL || uri->pin[0] == '\0') {
        return ts_error_set(TS_ERR_PIN, "soft store needs a PIN: add ?pin-value= or pin-source=, "
                                        "or set TESSERA_PIN");
    }
    return TS_OK;
}

/* The consecutive wrong PINs so far; 0 when the file is absent. */
static ts_err tries_read(const ts_soft *st, uint64_t *tries)
{
    char path[PATH_MAX];
    uint8_t *der = NULL;
    size_t der_len = 0;
    ts_err rv = ts_soft_dir_path(st->dir, TS_SOFT_TRIES_FILE, "", path);

    *tries = 0;
    if (rv == TS_OK) {
        rv = ts_file_read(path, TS_SOFT_FILE_MAX, &der, &der_len);
    }
    if (rv == TS_ERR_NOT_FOUND) {
        ts_error_clear();
        return TS_OK;
    }
    if (rv == TS_OK) {
        rv = ts_soft_tries_parse(der, der_len, st->uid, tries);
    }
    OPENSSL_free(der);
    return rv != TS_OK ? ts_error_prefix(rv, "%s", path) : TS_OK;
}

static ts_err tries_write(const ts_soft *st, uint64_t tries)
{
    char path[PATH_MAX];
    uint8_t *der = NULL;
    size_t der_len = 0;
    ts_err rv = ts_soft_dir_path(st->dir, TS_SOFT_TRIES_FILE, "", path);

    if (rv != TS_OK) {
        return rv;
    }
    if (tries == 0) {
        return ts_file_remove(path);
    }
    rv = ts_soft_tries_encode(st->uid, tries, &der, &der_len);
    if (rv == TS_OK) {
        rv = ts_file_write_atomic(path, der, der_len, 0600);
    }
    OPENSSL_free(der);
    return rv;
}

/*
 * Derives the PIN key and opens the store key with it. Under the lock, so that every wrong PIN
 * is counted even when several processes guess at once, and the count is checked first.
 */
static ts_err unlock_store(ts_soft *st, const ts_soft_record *meta, const char *pin)
{
    uint8_t pin_key[TS_SOFT_KEY_LEN];
    uint8_t *store_key = NULL;
    size_t store_key_len = 0;
    uint64_t tries = 0;
    int fd = -1;
    ts_err rv = ts_soft_lock(st, &fd);

    if (rv == TS_OK) {
        rv = tries_read(st, &tries);
    }
    if (rv == TS_OK && tries >= TS_SOFT_PIN_TRIES) {
        rv = ts_error_set(TS_ERR_PIN_LOCKED,
                          "soft store %s is locked after %d wrong PINs in a row (remove %s/%s "
                          "to unlock it)",
                          st->dir, TS_SOFT_PIN_TRIES, st->dir, TS_SOFT_TRIES_FILE);
    }
    if (rv == TS_OK) {
        rv = ts_soft_kdf_derive(pin, &meta->kdf, pin_key);
    }
    if (rv != TS_OK) {
        goto done;
    }
    rv = ts_soft_file_unseal(meta, pin_key, &store_key, &store_key_len);
    if (rv == TS_ERR_CORRUPT) {
        ts_err wrv = tries_write(st, tries + 1);
        if (wrv != TS_OK) {
            rv = ts_error_prefix(wrv, "cannot count a wrong PIN");
            goto done;
        }
        if (tries + 1 >= TS_SOFT_PIN_TRIES) {
            rv = ts_error_set(TS_ERR_PIN, "wrong PIN for soft store %s: it is now locked", st->dir);
        } else {
            rv = ts_error_set(TS_ERR_PIN,
                              "wrong PIN for soft store %s (%llu more wrong PINs lock it)", st->dir,
                              (unsigned long long)(TS_SOFT_PIN_TRIES - tries - 1));
        }
        goto done;
    }
    if (rv != TS_OK) {
        goto done;
    }
    if (tries > 0) {
        rv = tries_write(st, 0);
        if (rv != TS_OK) {
            goto done;
        }
    }
    memcpy(st->key, store_key, TS_SOFT_KEY_LEN);
done:
    OPENSSL_cleanse(pin_key, sizeof pin_key);
    OPENSSL_clear_free(store_key, store_key_len);
    ts_file_unlock(fd);
    return rv;
}

static ts_err soft_open(const ts_ks_uri *uri, void **state)
{
    char path[PATH_MAX];
    uint8_t *der = NULL;
    size_t der_len = 0;
    ts_soft_record *meta = NULL;
    ts_soft *st = NULL;
    ts_err rv = check_uri(uri);

    *state = NULL;
    if (rv == TS_OK) {
        rv = ts_soft_dir_path(uri->path, TS_SOFT_STORE_FILE, "", path);
    }
    if (rv != TS_OK) {
        return rv;
    }
    rv = ts_file_read(path, TS_SOFT_FILE_MAX, &der, &der_len);
    if (rv == TS_ERR_NOT_FOUND) {
        rv = ts_error_set(TS_ERR_NO_TOKEN, "no soft store in %s (%s is missing): create it first",
                          uri->path, path);
        goto done;
    }
    if (rv == TS_OK) {
        rv = ts_soft_file_parse(der, der_len, &meta);
    }
    if (rv == TS_OK && meta->kind != TS_SOFT_STORE) {
        rv = ts_error_set(TS_ERR_CORRUPT, "is not a store file");
    }
    if (rv != TS_OK) {
        ts_error_prefix(rv, "%s", path);
        goto done;
    }
    rv = state_new(uri->path, &st);
    if (rv != TS_OK) {
        goto done;
    }
    memcpy(st->uid, meta->uid, TS_KEYSTORE_UID_LEN);
    rv = unlock_store(st, meta, uri->pin);
    if (rv != TS_OK) {
        goto done;
    }
    *state = st;
    st = NULL;
done:
    state_free(st);
    ts_soft_record_free(meta);
    OPENSSL_free(der);
    return rv;
}

/* DIR must be new or empty: a store never takes over files it did not write. */
static ts_err make_dir(const char *dir, int *made)
{
    struct stat sb;
    DIR *d = NULL;
    struct dirent *e = NULL;

    *made = 0;
    if (mkdir(dir, 0700) == 0) {
        *made = 1;
        return TS_OK;
    }
    if (errno != EEXIST) {
        return ts_error_set(TS_ERR_IO, "cannot make directory %s: %s", dir, strerror(errno));
    }
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        return ts_error_set(TS_ERR_EXISTS, "%s exists and is not a directory", dir);
    }
    d = opendir(dir);
    if (d == NULL) {
        return ts_error_set(TS_ERR_IO, "cannot read directory %s: %s", dir, strerror(errno));
    }
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
            closedir(d);
            return ts_error_set(TS_ERR_EXISTS,
                                "%s is not empty: a soft store is made in a new or empty directory",
                                dir);
        }
    }
    closedir(d);
    if (chmod(dir, 0700) != 0) {
        return ts_error_set(TS_ERR_IO, "cannot set the mode of %s: %s", dir, strerror(errno));
    }
    return TS_OK;
}

/* Writes DIR/store: the UID, the KDF parameters and a fresh store key sealed under the PIN key;
 * the header (version, UID, KDF parameters) is the seal's additional data. */
static ts_err write_store_file(ts_soft *st, const char *pin)
{
    char path[PATH_MAX];
    uint8_t pin_key[TS_SOFT_KEY_LEN];
    uint8_t *der = NULL;
    size_t der_len = 0;
    ts_soft_record meta;
    struct stat sb;
    ts_err rv = ts_soft_dir_path(st->dir, TS_SOFT_STORE_FILE, "", path);

    memset(&meta, 0, sizeof meta);
    if (rv != TS_OK) {
        return rv;
    }
    if (lstat(path, &sb) == 0) {
        return ts_error_set(TS_ERR_EXISTS, "%s already holds a soft store", st->dir);
    }
    meta.kind = TS_SOFT_STORE;
    rv = ts_soft_kdf_new(&meta.kdf);
    if (rv != TS_OK) {
        return rv;
    }
    if (RAND_bytes(st->uid, TS_KEYSTORE_UID_LEN) != 1 ||
        RAND_priv_bytes(st->key, TS_SOFT_KEY_LEN) != 1) {
        return ts_error_set_openssl(TS_ERR_CRYPTO, "no random bytes for a new soft store");
    }
    memcpy(meta.uid, st->uid, TS_KEYSTORE_UID_LEN);
    rv = ts_soft_kdf_derive(pin, &meta.kdf, pin_key);
    if (rv == TS_OK) {
        rv = ts_soft_file_encode(&meta, pin_key, st->key, TS_SOFT_KEY_LEN, &der, &der_len);
    }
    if (rv == TS_OK) {
        rv = ts_file_write_atomic(path, der, der_len, 0600);
    }
    OPENSSL_cleanse(pin_key, sizeof pin_key);
    OPENSSL_free(der);
    return rv;
}

/* Makes a new directory's entry in its parent durable. */
static ts_err sync_parent(const char *dir)
{
    char copy[PATH_MAX];
    snprintf(copy, sizeof copy, "%s", dir);
    return ts_dir_sync(dirname(copy));
}

static ts_err soft_create(const ts_ks_uri *uri, const char *so_pin, void **state)
{
    char lock_path[PATH_MAX];
    ts_soft *st = NULL;
    int made = 0, fd = -1;
    ts_err rv = check_uri(uri);

    (void)so_pin; /* soft: has no security officer */
    *state = NULL;
    if (rv == TS_OK) {
        rv = ts_soft_dir_path(uri->path, TS_SOFT_LOCK_FILE, "", lock_path);
    }
    if (rv == TS_OK) {
        rv = make_dir(uri->path, &made);
    }
    if (rv != TS_OK) {
        return rv;
    }
    rv = state_new(uri->path, &st);
    if (rv == TS_OK) {
        rv = ts_soft_lock(st, &fd);
    }
    if (rv == TS_OK) {
        rv = write_store_file(st, uri->pin);
    }
    if (rv == TS_OK && made) {
        rv = sync_parent(uri->path);
    }
    ts_file_unlock(fd);
    if (rv != TS_OK) {
        /* Leave the directory as it was found. */
        if (rv != TS_ERR_EXISTS) {
            unlink(lock_path);
        }
        if (made) {
            rmdir(uri->path);
        }
        state_free(st);
        return rv;
    }
    *state = st;
    return TS_OK;
}

static void soft_close(void *state)
{
    state_free(state);
}

/* --- identity and randomness -------------------------------------------------------------- */

static ts_err soft_uid(void *state, uint8_t uid[TS_KEYSTORE_UID_LEN])
{
    const ts_soft *st = state;
    if (uid == NULL) {
        return ts_error_set(TS_ERR_INVALID, "uid: nowhere to put the UID");
    }
    memcpy(uid, st->uid, TS_KEYSTORE_UID_LEN);
    return TS_OK;
}

static ts_err soft_random(void *state, uint8_t *buf, size_t len)
{
    (void)state;
    if (RAND_priv_bytes(buf, len) != 1) {
        return ts_error_set_openssl(TS_ERR_CRYPTO, "soft store: no random bytes");
    }
    return TS_OK;
}

const ts_ks_backend ts_ks_soft_backend = {
    .scheme = "soft",
    .create = soft_create,
    .open = soft_open,
    .close = soft_close,
    .uid = soft_uid,
    .random = soft_random,
    .generate = ts_soft_generate,
    .public_key = ts_soft_public_key,
    .key_curve = ts_soft_key_curve,
    .sign_digest = ts_soft_sign_digest,
    .derive = ts_soft_derive,
    .object_put = ts_soft_object_put,
    .object_get = ts_soft_object_get,
    .remove = ts_soft_remove,
    .list = ts_soft_list,
    .counter_get = ts_soft_counter_get,
    .counter_update = ts_soft_counter_update,
    .unwrap_import = ts_soft_unwrap_import,
    .backup_key = ts_soft_backup_key,
    .restore_key = ts_soft_restore_key,
};
