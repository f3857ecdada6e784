/*
 * Length-prefixed messages over a stream socket: a 4-byte big-endian length, then that many
 * bytes. Used by offline provisioning (tessera rtp serve and tessera-agent rtp), whose messages
 * are end-to-end protected, so the transport itself is plain TCP. The socket's SO_RCVTIMEO and
 * SO_SNDTIMEO bound every call; a length of 0 or above the caller's limit is refused before
 * anything is allocated.
 */
#ifndef TS_FRAME_INTERNAL_H
#define TS_FRAME_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "tessera/error.h"

enum { TS_FRAME_HEADER = 4 };

/* Sends one message of 1 to max bytes; TS_ERR_LIMIT outside that, TS_ERR_IO when sending fails. */
TS_MUST_CHECK ts_err ts_frame_send(int fd, const uint8_t *msg, size_t len, uint32_t max);

/*
 * Receives one message of 1 to max bytes into *msg (OPENSSL_free). TS_ERR_LIMIT for another
 * length, TS_ERR_IO when the peer closes, fails or sends nothing within the socket's timeout.
 */
TS_MUST_CHECK ts_err ts_frame_recv(int fd, uint32_t max, uint8_t **msg, size_t *len);

#endif
