/* Durable file writes, capped reads and advisory locks. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "common/error_internal.h"
#include "common/file_internal.h"

static ts_err errno_error(int err, const char *what, const char *path)
{
    ts_err code = TS_ERR_IO;
    if (err == ENOSPC || err == EDQUOT || err == EFBIG) {
        code = TS_ERR_FULL;
    } else if (err == ENOENT) {
        code = TS_ERR_NOT_FOUND;
    }
    return ts_error_set(code, "%s %s: %s", what, path, strerror(err));
}

ts_err ts_dir_sync(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        return errno_error(errno, "cannot open directory", dir);
    }
    if (fsync(fd) != 0 && errno != EINVAL) {
        int err = errno;
        close(fd);
        return errno_error(err, "cannot sync directory", dir);
    }
    close(fd);
    return TS_OK;
}

static ts_err parent_dir(const char *path, char out[PATH_MAX])
{
    if (strlen(path) >= PATH_MAX) {
        return ts_error_set(TS_ERR_INVALID, "path too long: %s", path);
    }
    char copy[PATH_MAX];
    memcpy(copy, path, strlen(path) + 1);
    snprintf(out, PATH_MAX, "%s", dirname(copy));
    return TS_OK;
}

static ts_err write_all(int fd, const uint8_t *data, size_t len, const char *path)
{
    size_t done = 0;
    while (done < len) {
        ssize_t w = write(fd, data + done, len - done);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            /* write() returning 0 for a regular file means no space was left. */
            return errno_error(w < 0 ? errno : ENOSPC, "cannot write", path);
        }
        done += (size_t)w;
    }
    return TS_OK;
}

/*
 * Writes to a path that is not a regular file (a device such as /dev/null or /dev/stdout, a
 * FIFO) in place: renaming over it would replace the device node itself.
 */
static ts_err write_in_place(const char *path, const uint8_t *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        return errno_error(errno, "cannot open", path);
    }
    ts_err rv = write_all(fd, data, len, path);
    if (rv != TS_OK) {
        close(fd);
        return rv;
    }
    if (close(fd) != 0) {
        return errno_error(errno, "cannot close", path);
    }
    return TS_OK;
}

ts_err ts_file_write_atomic(const char *path, const uint8_t *data, size_t len, mode_t mode)
{
    char dir[PATH_MAX];
    char tmp[PATH_MAX];
    unsigned char nonce[8];
    struct stat st;
    ts_err rv = parent_dir(path, dir);
    if (rv != TS_OK) {
        return rv;
    }
    if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
        if (S_ISDIR(st.st_mode)) {
            return ts_error_set(TS_ERR_INVALID, "%s is a directory", path);
        }
        return write_in_place(path, data, len);
    }
    if (RAND_bytes(nonce, sizeof nonce) != 1) {
        return ts_error_set_openssl(TS_ERR_CRYPTO, "no random bytes for a temporary file name");
    }
    int n = snprintf(tmp, sizeof tmp, "%s.tmp-%02x%02x%02x%02x%02x%02x%02x%02x", path, nonce[0],
                     nonce[1], nonce[2], nonce[3], nonce[4], nonce[5], nonce[6], nonce[7]);
    if (n < 0 || (size_t)n >= sizeof tmp) {
        return ts_error_set(TS_ERR_INVALID, "path too long: %s", path);
    }

    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
    if (fd < 0) {
        return errno_error(errno, "cannot create", tmp);
    }
    rv = write_all(fd, data, len, tmp);
    if (rv != TS_OK) {
        goto fail;
    }
    if (fchmod(fd, mode) != 0) {
        rv = errno_error(errno, "cannot set the mode of", tmp);
        goto fail;
    }
    if (fsync(fd) != 0) {
        rv = errno_error(errno, "cannot sync", tmp);
        goto fail;
    }
    if (close(fd) != 0) {
        fd = -1;
        rv = errno_error(errno, "cannot close", tmp);
        goto fail;
    }
    fd = -1;
    if (rename(tmp, path) != 0) {
        rv = errno_error(errno, "cannot rename into place", path);
        goto fail;
    }
    return ts_dir_sync(dir);

fail:
    if (fd >= 0) {
        close(fd);
    }
    unlink(tmp);
    return rv;
}

ts_err ts_file_read(const char *path, size_t max, uint8_t **data, size_t *len)
{
    *data = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        return errno_error(errno, "cannot open", path);
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int err = errno;
        close(fd);
        return errno_error(err, "cannot stat", path);
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return ts_error_set(TS_ERR_CORRUPT, "%s is not a regular file", path);
    }
    if ((unsigned long long)st.st_size > max) {
        close(fd);
        return ts_error_set(TS_ERR_CORRUPT, "%s is %lld bytes, more than the %zu allowed", path,
                            (long long)st.st_size, max);
    }
    size_t size = (size_t)st.st_size;
    uint8_t *buf = OPENSSL_malloc(size > 0 ? size : 1);
    if (buf == NULL) {
        close(fd);
        return ts_error_set(TS_ERR_NOMEM, "out of memory reading %s", path);
    }
    size_t done = 0;
    while (done < size) {
        ssize_t r = read(fd, buf + done, size - done);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r < 0) {
            int err = errno;
            close(fd);
            OPENSSL_clear_free(buf, size);
            return errno_error(err, "cannot read", path);
        }
        if (r == 0) {
            break; /* shrank while reading: take what is there */
        }
        done += (size_t)r;
    }
    close(fd);
    *data = buf;
    *len = done;
    return TS_OK;
}

ts_err ts_file_remove(const char *path)
{
    char dir[PATH_MAX];
    ts_err rv = parent_dir(path, dir);
    if (rv != TS_OK) {
        return rv;
    }
    if (unlink(path) != 0) {
        return errno_error(errno, "cannot remove", path);
    }
    return ts_dir_sync(dir);
}

ts_err ts_file_lock(const char *path, int *fd)
{
    *fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (*fd < 0) {
        return errno_error(errno, "cannot open lock file", path);
    }
    while (flock(*fd, LOCK_EX) != 0) {
        if (errno != EINTR) {
            int err = errno;
            close(*fd);
            *fd = -1;
            return errno_error(err, "cannot lock", path);
        }
    }
    return TS_OK;
}

void ts_file_unlock(int fd)
{
    if (fd >= 0) {
        flock(fd, LOCK_UN);
        close(fd);
    }
}
