/* Durable file writes, capped reads and advisory locks. */
#ifndef TS_COMMON_FILE_INTERNAL_H
#define TS_COMMON_FILE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "tessera/error.h"

/*
 * Replaces path with data atomically and durably: a temporary file beside it (O_EXCL, mode),
 * write, fsync, rename over path, fsync of the directory. A crash leaves the old or the new
 * content, never a mix. ENOSPC, EDQUOT and EFBIG give TS_ERR_FULL; the temporary file is removed.
 * A path that exists and is not a regular file (/dev/null, /dev/stdout, a FIFO) is written in
 * place: renaming over it would replace the device itself.
 */
ts_err ts_file_write_atomic(const char *path, const uint8_t *data, size_t len, mode_t mode);

/*
 * Reads a whole file of at most max bytes into a new buffer (freed with OPENSSL_clear_free).
 * TS_ERR_NOT_FOUND when it does not exist, TS_ERR_CORRUPT when it is larger than max.
 */
ts_err ts_file_read(const char *path, size_t max, uint8_t **data, size_t *len);

/* Removes path and makes the removal durable (fsync of the directory). */
ts_err ts_file_remove(const char *path);

/* fsync of a directory, so a rename or unlink in it survives power loss. */
ts_err ts_dir_sync(const char *dir);

/* Takes an exclusive flock() on path (created 0600 if missing); *fd is released by
 * ts_file_unlock(). Blocks until the lock is free. */
ts_err ts_file_lock(const char *path, int *fd);
void ts_file_unlock(int fd);

#endif
