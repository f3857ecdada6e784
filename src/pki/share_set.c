/*
 * A set of share files: reading and writing them, and checking that the ones given belong to one
 * backup before they are recombined (docs/ceremony.md).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <openssl/crypto.h>

#include "common/error_internal.h"
#include "common/file_internal.h"
#include "pki/share_file_internal.h"

ts_err ts_share_file_read(const char *path, const char *name, ts_share_file *out)
{
    uint8_t *data = NULL;
    size_t len = 0;
    const char *who = name != NULL ? name : path;

    if (out == NULL) {
        return ts_error_set(TS_ERR_INVALID, "share file: nowhere to put the share");
    }
    memset(out, 0, sizeof *out);
    if (path == NULL) {
        return ts_error_set(TS_ERR_INVALID, "share file: no path given");
    }
    ts_err rv = ts_file_read(path, TS_SHARE_FILE_MAX, &data, &len);
    if (rv == TS_ERR_CORRUPT) {
        return ts_error_set(TS_ERR_INVALID, "%s: larger than a share file (%d bytes at most)", who,
                            TS_SHARE_FILE_MAX);
    }
    if (rv != TS_OK) {
        return ts_error_prefix(TS_ERR_IO, "%s: cannot be read", who);
    }
    rv = ts_share_file_parse((const char *)data, len, who, out);
    OPENSSL_clear_free(data, len);
    return rv;
}

ts_err ts_share_file_write(const char *path, const ts_share_file *sf)
{
    struct stat sb;
    char *text = NULL;

    if (path == NULL) {
        return ts_error_set(TS_ERR_INVALID, "share file: no path given");
    }
    /* A share is never overwritten: the one on disk may be the only copy of its part. */
    if (lstat(path, &sb) == 0) {
        return ts_error_set(TS_ERR_EXISTS, "share file %s already exists", path);
    }
    if (errno != ENOENT) {
        return ts_error_set(TS_ERR_IO, "share file %s: %s", path, strerror(errno));
    }
    ts_err rv = ts_share_file_format(sf, &text);
    if (rv != TS_OK) {
        return rv;
    }
    size_t len = strlen(text);
    rv = ts_file_write_atomic(path, (const uint8_t *)text, len, 0600);
    OPENSSL_clear_free(text, len);
    return rv == TS_OK ? TS_OK : ts_error_prefix(rv, "share file %s", path);
}

/* "share 2 (kim.txt)" or "share 2", K counting the files from 1 as given. */
static const char *label_of(const char *const *names, size_t i, char *buf, size_t size)
{
    if (names != NULL && names[i] != NULL) {
        return names[i];
    }
    snprintf(buf, size, "share %zu", i + 1);
    return buf;
}

ts_err ts_share_files_combine(const ts_share_file *files, const char *const *names, size_t n,
                              const char *fingerprint, uint8_t kek[TS_SHARE_SECRET_LEN])
{
    char a[64], b[64];
    ts_share *shares = NULL;
    ts_err rv = TS_OK;

    if (files == NULL || kek == NULL || n == 0) {
        return ts_error_set(TS_ERR_INVALID, "no shares given");
    }
    if (n > TS_SHARE_MAX) {
        return ts_error_set(TS_ERR_INVALID, "%zu shares given; a backup has at most %d", n,
                            TS_SHARE_MAX);
    }
    const ts_share_file *first = &files[0];
    const char *first_name = label_of(names, 0, a, sizeof a);
    if (fingerprint != NULL && strcasecmp(first->fingerprint, fingerprint) != 0) {
        return ts_error_set(TS_ERR_INVALID,
                            "%s is for the root certificate with SHA-256 fingerprint %.16s..., "
                            "not this instance's %.16s...",
                            first_name, first->fingerprint, fingerprint);
    }
    for (size_t i = 1; i < n; i++) {
        const ts_share_file *f = &files[i];
        const char *name = label_of(names, i, b, sizeof b);
        if (strcasecmp(f->fingerprint, first->fingerprint) != 0) {
            return ts_error_set(TS_ERR_INVALID,
                                "%s is for another root certificate (SHA-256 %.16s...) than %s "
                                "(%.16s...)",
                                name, f->fingerprint, first_name, first->fingerprint);
        }
        if (strcasecmp(f->set, first->set) != 0) {
            return ts_error_set(TS_ERR_INVALID,
                                "%s is from another backup (set %s) than %s (set %s): use shares "
                                "of one backup",
                                name, f->set, first_name, first->set);
        }
        if (f->threshold != first->threshold || f->count != first->count) {
            return ts_error_set(TS_ERR_INVALID, "%s says %u of %u, %s says %u of %u", name,
                                f->threshold, f->count, first_name, first->threshold, first->count);
        }
        for (size_t j = 0; j < i; j++) {
            if (files[j].index == f->index) {
                char c[64];
                return ts_error_set(TS_ERR_INVALID, "%s and %s are both share %u of %u", name,
                                    label_of(names, j, c, sizeof c), f->index, f->count);
            }
        }
    }
    if (n < first->threshold) {
        return ts_error_set(TS_ERR_INVALID, "%zu share%s given, %u needed", n, n == 1 ? "" : "s",
                            first->threshold);
    }
    shares = OPENSSL_zalloc(n * sizeof *shares);
    if (shares == NULL) {
        return ts_error_set(TS_ERR_NOMEM, "out of memory combining shares");
    }
    for (size_t i = 0; i < n; i++) {
        if (files[i].index < 1 || files[i].index > files[i].count) {
            OPENSSL_clear_free(shares, n * sizeof *shares);
            return ts_error_set(TS_ERR_INVALID, "%s has no valid share index",
                                label_of(names, i, a, sizeof a));
        }
        shares[i].x = (uint8_t)files[i].index;
        memcpy(shares[i].y, files[i].share, TS_SHARE_SECRET_LEN);
    }
    rv = ts_shamir_combine(shares, n, kek);
    OPENSSL_clear_free(shares, n * sizeof *shares);
    return rv;
}
