/*
 * The rtp transport on the device: one TCP connection, TCP_NODELAY, send and receive timeouts,
 * every message a 4-byte big-endian length and that many bytes, each length capped.
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "agent/agent_rtp_internal.h"
#include "common/error_internal.h"

void agent_rtp_frame_put(uint8_t hdr[AGENT_RTP_FRAME_HEADER], uint32_t len)
{
    hdr[0] = (uint8_t)(len >> 24);
    hdr[1] = (uint8_t)(len >> 16);
    hdr[2] = (uint8_t)(len >> 8);
    hdr[3] = (uint8_t)len;
}

ts_err agent_rtp_frame_get(const uint8_t hdr[AGENT_RTP_FRAME_HEADER], uint32_t max, uint32_t *len)
{
    uint32_t n = ((uint32_t)hdr[0] << 24) | ((uint32_t)hdr[1] << 16) | ((uint32_t)hdr[2] << 8) |
                 (uint32_t)hdr[3];
    if (n == 0 || n > max) {
        return ts_error_set(TS_ERR_LIMIT, "rtp: a message of %u bytes, not 1 to %u", n, max);
    }
    *len = n;
    return TS_OK;
}

ts_err agent_rtp_connect(const char *host, const char *port, long timeout, int *fd_out)
{
    struct addrinfo hints, *res = NULL;
    struct timeval tv;
    int one = 1;
    int fd = -1;
    int gai;

    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    gai = getaddrinfo(host, port, &hints, &res);
    if (gai != 0) {
        return ts_error_set(TS_ERR_IO, "rtp: cannot resolve %s port %s: %s", host, port,
                            gai_strerror(gai));
    }
    tv.tv_sec = timeout;
    tv.tv_usec = 0;
    for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            continue;
        }
        /* On Linux SO_SNDTIMEO also bounds connect(). */
        if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) == 0 &&
            setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) == 0 &&
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) == 0 &&
            connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
            break;
        }
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) {
        return ts_error_set(TS_ERR_IO, "rtp: cannot connect to %s port %s: %s", host, port,
                            strerror(errno));
    }
    *fd_out = fd;
    return TS_OK;
}

static ts_err write_all(int fd, const uint8_t *p, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return ts_error_set(TS_ERR_IO, "rtp: send failed: %s",
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
            return ts_error_set(TS_ERR_IO, "rtp: the peer sent nothing in time");
        }
        if (n <= 0) {
            return ts_error_set(TS_ERR_IO, "rtp: receive failed: %s",
                                n < 0 ? strerror(errno) : "connection closed");
        }
        p += n;
        len -= (size_t)n;
    }
    return TS_OK;
}

ts_err agent_rtp_send(int fd, const uint8_t *msg, size_t len)
{
    uint8_t hdr[AGENT_RTP_FRAME_HEADER];
    ts_err rv;

    if (len == 0 || len > TS_AGENT_RTP_MSG_MAX) {
        return ts_error_set(TS_ERR_LIMIT, "rtp: a message of %zu bytes, not 1 to %d", len,
                            TS_AGENT_RTP_MSG_MAX);
    }
    agent_rtp_frame_put(hdr, (uint32_t)len);
    rv = write_all(fd, hdr, sizeof hdr);
    if (rv != TS_OK) {
        return rv;
    }
    return write_all(fd, msg, len);
}

ts_err agent_rtp_recv(int fd, uint32_t max, uint8_t **msg, size_t *len)
{
    uint8_t hdr[AGENT_RTP_FRAME_HEADER];
    uint32_t n = 0;
    uint8_t *buf;
    ts_err rv;

    rv = read_all(fd, hdr, sizeof hdr);
    if (rv == TS_OK) {
        rv = agent_rtp_frame_get(hdr, max, &n);
    }
    if (rv != TS_OK) {
        return rv;
    }
    buf = OPENSSL_malloc(n);
    if (buf == NULL) {
        return ts_error_set(TS_ERR_NOMEM, "out of memory");
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
