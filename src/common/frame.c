#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <openssl/crypto.h>

#include "common/error_internal.h"
#include "common/frame_internal.h"

static ts_err write_all(int fd, const uint8_t *p, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return ts_error_set(TS_ERR_IO, "send failed: %s",
                                n < 0 ? strerror(errno) : "connection closed");
        }
        p += n;
        len -= (size_t)n;
    }
    return TS_OK;
}

static ts_err read_all(int fd, uint8_t *p, size_t len)
{
    while (len > 0) {
        ssize_t n = recv(fd, p, len, 0);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return ts_error_set(TS_ERR_IO, "the peer sent nothing in time");
        }
        if (n <= 0) {
            return ts_error_set(TS_ERR_IO, "receive failed: %s",
                                n < 0 ? strerror(errno) : "connection closed");
        }
        p += n;
        len -= (size_t)n;
    }
    return TS_OK;
}

ts_err ts_frame_send(int fd, const uint8_t *msg, size_t len, uint32_t max)
{
    if (len == 0 || len > max) {
        return ts_error_set(TS_ERR_LIMIT, "a message of %zu bytes, not 1 to %u", len, max);
    }
    uint8_t hdr[TS_FRAME_HEADER] = {(uint8_t)(len >> 24), (uint8_t)(len >> 16), (uint8_t)(len >> 8),
                                    (uint8_t)len};
    ts_err rv = write_all(fd, hdr, sizeof hdr);
    return rv != TS_OK ? rv : write_all(fd, msg, len);
}

ts_err ts_frame_recv(int fd, uint32_t max, uint8_t **msg, size_t *len)
{
    uint8_t hdr[TS_FRAME_HEADER];
    ts_err rv = read_all(fd, hdr, sizeof hdr);
    if (rv != TS_OK) {
        return rv;
    }
    uint32_t n =
        ((uint32_t)hdr[0] << 24) | ((uint32_t)hdr[1] << 16) | ((uint32_t)hdr[2] << 8) | hdr[3];
    if (n == 0 || n > max) {
        return ts_error_set(TS_ERR_LIMIT, "the peer announced a message of %u bytes, not 1 to %u",
                            n, max);
    }
    uint8_t *buf = OPENSSL_malloc(n);
    if (buf == NULL) {
        return ts_error_set(TS_ERR_NOMEM, "no memory for a message of %u bytes", n);
    }
    rv = read_all(fd, buf, n);
    if (rv != TS_OK) {
        OPENSSL_free(buf);
        return rv;
    }
    *msg = buf;
    *len = n;
    return TS_OK;
}
