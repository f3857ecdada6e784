/*
 * Helpers of the soft: backend's tests (test_soft.c, test_soft_disk.c): a store in a temporary
 * directory opened through the backend table with a URI filled by hand, and file scans.
 */
#ifndef TS_TEST_SOFT_TEST_UTIL_H
#define TS_TEST_SOFT_TEST_UTIL_H

#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "keystore/keystore_internal.h"
#include "test_support.h"

#define SOFT_PIN "1234"

typedef struct soft_fx {
    char tmp[PATH_MAX / 2];
    char dir[PATH_MAX];
    char redacted[PATH_MAX + 8];
    ts_ks_uri uri;
    void *st;
} soft_fx;

static inline const ts_ks_backend *soft(void)
{
    return &ts_ks_soft_backend;
}

/* Fills fx->uri for fx->dir with pin (NULL: none). */
static inline void soft_uri(soft_fx *fx, const char *pin)
{
    memset(&fx->uri, 0, sizeof fx->uri);
    fx->uri.scheme = TS_KS_SOFT;
    fx->uri.path = fx->dir;
    fx->uri.pin = (char *)pin;
    snprintf(fx->redacted, sizeof fx->redacted, "soft:%s", fx->dir);
    fx->uri.redacted = fx->redacted;
    fx->uri.slot_id = -1;
}

/* A temporary directory with a store in tmp/store; fx->st is open. 0 on success. */
static inline int soft_fx_setup(soft_fx *fx)
{
    memset(fx, 0, sizeof *fx);
    if (ts_test_tmpdir(fx->tmp, sizeof fx->tmp) != 0) {
        return -1;
    }
    snprintf(fx->dir, sizeof fx->dir, "%s/store", fx->tmp);
    soft_uri(fx, SOFT_PIN);
    return soft()->create(&fx->uri, NULL, &fx->st) == TS_OK ? 0 : -1;
}

static inline void soft_fx_teardown(soft_fx *fx)
{
    soft()->close(fx->st);
    fx->st = NULL;
    ts_test_rmtree(fx->tmp);
}

/* Closes fx->st and opens the store again: every key and file read afresh. */
static inline ts_err soft_reopen(soft_fx *fx)
{
    soft()->close(fx->st);
    fx->st = NULL;
    soft_uri(fx, SOFT_PIN);
    return soft()->open(&fx->uri, &fx->st);
}

/* Reads a whole file into a malloc'd buffer; NULL on failure. */
static inline uint8_t *soft_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf = NULL;
    long size = 0;

    if (f == NULL) {
        return NULL;
    }
    if (fseek(f, 0, SEEK_END) == 0 && (size = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0) {
        buf = malloc((size_t)size + 1);
        if (buf != NULL && fread(buf, 1, (size_t)size, f) != (size_t)size) {
            free(buf);
            buf = NULL;
        }
    }
    fclose(f);
    *len = (size_t)size;
    return buf;
}

static inline int soft_write_file(const char *path, const uint8_t *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (f == NULL) {
        return -1;
    }
    size_t n = fwrite(data, 1, len, f);
    return fclose(f) == 0 && n == len ? 0 : -1;
}

/* Number of files in dir (any name) whose bytes contain needle. */
static inline int soft_files_containing(const char *dir, const uint8_t *needle, size_t len)
{
    char path[PATH_MAX * 2];
    struct dirent *e;
    int hits = 0;
    DIR *d = opendir(dir);

    if (d == NULL) {
        return -1;
    }
    while ((e = readdir(d)) != NULL) {
        size_t flen = 0;
        uint8_t *buf = NULL;
        if (e->d_name[0] == '.' && (e->d_name[1] == '\0' || strcmp(e->d_name, "..") == 0)) {
            continue;
        }
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        buf = soft_read_file(path, &flen);
        if (buf != NULL && flen >= len) {
            for (size_t i = 0; i + len <= flen; i++) {
                if (memcmp(buf + i, needle, len) == 0) {
                    hits++;
                    break;
                }
            }
        }
        free(buf);
    }
    closedir(d);
    return hits;
}

/* Every file name and content of dir, in readdir order sorted by name, as one string of hex:
 * two snapshots compare equal when nothing in dir changed. Caller frees. */
static inline char *soft_snapshot(const char *dir)
{
    struct dirent **names = NULL;
    char path[PATH_MAX * 2];
    size_t cap = 1, used = 0;
    char *out = calloc(1, 1);
    int n = scandir(dir, &names, NULL, alphasort);

    for (int i = 0; i < n; i++) {
        size_t flen = 0;
        uint8_t *buf = NULL;
        snprintf(path, sizeof path, "%s/%s", dir, names[i]->d_name);
        struct stat sb;
        if (lstat(path, &sb) == 0 && S_ISREG(sb.st_mode)) {
            buf = soft_read_file(path, &flen);
        }
        size_t need = used + strlen(names[i]->d_name) + 2 * flen + 3;
        if (out != NULL && need > cap) {
            char *grown = realloc(out, need);
            if (grown == NULL) {
                free(out);
                out = NULL;
            }
            out = grown;
            cap = need;
        }
        if (out != NULL) {
            used += (size_t)sprintf(out + used, "%s=", names[i]->d_name);
            for (size_t j = 0; j < flen; j++) {
                used += (size_t)sprintf(out + used, "%02x", buf[j]);
            }
            used += (size_t)sprintf(out + used, ";");
        }
        free(buf);
        free(names[i]);
    }
    free(names);
    return out;
}

/* Verifies a DER ECDSA signature over digest with pub; 1 when it verifies. */
static inline int soft_verify(EVP_PKEY *pub, const uint8_t *digest, size_t digest_len,
                              const uint8_t *sig, size_t sig_len)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pub, NULL);
    int ok = ctx != NULL && EVP_PKEY_verify_init(ctx) == 1 &&
             EVP_PKEY_verify(ctx, sig, sig_len, digest, digest_len) == 1;
    EVP_PKEY_CTX_free(ctx);
    return ok;
}

#endif
