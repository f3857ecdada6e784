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
#include "common/frame_internal.h"

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

ts_err agent_rtp_send(int fd, const uint8_t *msg, size_t len)
{
    ts_err rv = ts_frame_send(fd, msg, len, TS_AGENT_RTP_MSG_MAX);
    return rv == TS_OK ? rv : ts_error_prefix(rv, "rtp");
}

ts_err agent_rtp_recv(int fd, uint32_t max, uint8_t **msg, size_t *len)
{
    ts_err rv = ts_frame_recv(fd, max, msg, len);
    return rv == TS_OK ? rv : ts_error_prefix(rv, "rtp");
}
