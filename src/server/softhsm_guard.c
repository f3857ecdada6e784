/*
 * Keeps an instance's SoftHSM2 tokens reachable across a kill or a power cut.
 *
 * SoftHSM2's file backend rewrites each token's token.object in place, truncating it and then
 * writing it again, on every C_Login. A process killed between the two leaves an empty file, and
 * SoftHSM2 then lists no token at all: the CA's keys are still on disk but nothing can reach them.
 * An instance therefore keeps a copy of every token.object in DIR/tokens.keep/, refreshed each
 * time it opens and finds the token whole, and puts the copy back when it finds the file empty.
 * Both happen under SoftHSM2's own lock on the token (token.lock), so a login in another process
 * never sees a half-made repair.
 */
#define _GNU_SOURCE /* F_OFD_SETLKW: a lock owned by the descriptor, not by the process */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "common/error_internal.h"
#include "common/file_internal.h"
#include "server/server_internal.h"

enum {
    GUARD_TOKEN_MAX = 64 * 1024, /* bytes of a token.object: a few hundred in practice */
};

/* SoftHSM2's lock on one token: the lock file its ObjectFile takes for token.object. An OFD
 * lock conflicts with SoftHSM2's fcntl locks, and closing it releases nothing SoftHSM2 holds in
 * this process. */
static ts_err token_lock(const char *token_dir, int *fd)
{
    char path[TS_CA_PATH_MAX];
    ts_err rv = srv_path(path, sizeof path, token_dir, "token.lock");
    if (rv != TS_OK) {
        return rv;
    }
    *fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (*fd < 0) {
        return ts_error_set(TS_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    }
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    int r;
    do {
        r = fcntl(*fd, F_OFD_SETLKW, &fl);
    } while (r != 0 && errno == EINTR);
    if (r != 0) {
        int e = errno;
        close(*fd);
        *fd = -1;
        return ts_error_set(TS_ERR_IO, "cannot lock %s: %s", path, strerror(e));
    }
    return TS_OK;
}

/* One token directory: restores an empty token.object from the copy, or refreshes the copy from
 * a whole one. */
static ts_err guard_token(const char *token_dir, const char *keep_path)
{
    char object[TS_CA_PATH_MAX];
    uint8_t *live = NULL, *kept = NULL;
    size_t live_len = 0, kept_len = 0;
    int fd = -1;
    ts_err rv = srv_path(object, sizeof object, token_dir, "token.object");
    if (rv == TS_OK) {
        rv = token_lock(token_dir, &fd);
    }
    if (rv == TS_OK) {
        rv = ts_file_read(object, GUARD_TOKEN_MAX, &live, &live_len);
        if (rv == TS_ERR_NOT_FOUND) {
            ts_error_clear();
            rv = TS_OK; /* not a token directory SoftHSM2 made: nothing to keep */
            goto done;
        }
    }
    if (rv == TS_OK) {
        rv = ts_file_read(keep_path, GUARD_TOKEN_MAX, &kept, &kept_len);
        if (rv == TS_ERR_NOT_FOUND) {
            ts_error_clear();
            rv = TS_OK;
        }
    }
    if (rv == TS_OK && live_len == 0) {
        if (kept_len == 0) {
            rv = ts_error_set(TS_ERR_CORRUPT,
                              "%s is empty (a process was stopped while SoftHSM2 rewrote it) "
                              "and %s holds no copy to restore",
                              object, keep_path);
        } else {
            rv = ts_file_write_atomic(object, kept, kept_len, 0600);
            if (rv == TS_OK) {
                fprintf(stderr, "tessera: restored %s from %s (it was left empty)\n", object,
                        keep_path);
            }
        }
    } else if (rv == TS_OK && (kept_len != live_len || memcmp(kept, live, live_len) != 0)) {
        rv = ts_file_write_atomic(keep_path, live, live_len, 0600);
    }
done:
    if (fd >= 0) {
        close(fd); /* releases the OFD lock */
    }
    OPENSSL_free(live);
    OPENSSL_free(kept);
    return rv;
}

ts_err srv_softhsm_guard(const char *dir)
{
    char tokens[TS_CA_PATH_MAX], keep[TS_CA_PATH_MAX];
    ts_err rv = srv_path(tokens, sizeof tokens, dir, SRV_TOKENS_DIR);
    if (rv == TS_OK) {
        rv = srv_path(keep, sizeof keep, dir, SRV_TOKENS_KEEP_DIR);
    }
    if (rv != TS_OK) {
        return rv;
    }
    DIR *d = opendir(tokens);
    if (d == NULL) {
        return errno == ENOENT
                   ? TS_OK
                   : ts_error_set(TS_ERR_IO, "cannot read %s: %s", tokens, strerror(errno));
    }
    if (mkdir(keep, 0700) != 0 && errno != EEXIST) {
        closedir(d);
        return ts_error_set(TS_ERR_IO, "cannot make %s: %s", keep, strerror(errno));
    }
    struct dirent *e;
    while (rv == TS_OK && (e = readdir(d)) != NULL) {
        char token_dir[TS_CA_PATH_MAX], keep_path[TS_CA_PATH_MAX];
        struct stat st;
        if (e->d_name[0] == '.') {
            continue;
        }
        rv = srv_path(token_dir, sizeof token_dir, tokens, e->d_name);
        if (rv == TS_OK && (lstat(token_dir, &st) != 0 || !S_ISDIR(st.st_mode))) {
            continue;
        }
        char keep_name[sizeof e->d_name + sizeof ".object"];
        memcpy(keep_name, e->d_name, strlen(e->d_name));
        memcpy(keep_name + strlen(e->d_name), ".object", sizeof ".object");
        if (rv == TS_OK) {
            rv = srv_path(keep_path, sizeof keep_path, keep, keep_name);
        }
        if (rv == TS_OK) {
            rv = guard_token(token_dir, keep_path);
        }
    }
    closedir(d);
    if (rv != TS_OK) {
        ts_error_prefix(rv, "SoftHSM2 tokens of %s", dir);
    }
    return rv;
}
