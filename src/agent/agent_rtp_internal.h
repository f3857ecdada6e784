/*
 * Offline provisioning on the device (docs/rtp.md): the bundle parser and checks
 * (agent_rtp_bundle.c), the receipt (agent_rtp.c) and the framed TCP exchange (agent_rtp_net.c).
 */
#ifndef TS_AGENT_AGENT_RTP_INTERNAL_H
#define TS_AGENT_AGENT_RTP_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "rtp.pb-c.h"
#include "tessera/agent.h"

enum {
    AGENT_RTP_VERSION = 1,
    AGENT_RTP_SIG_MAX = 139,    /* DER ECDSA-Sig-Value on P-521 and below */
    AGENT_RTP_IMPORTS_MAX = 64, /* imports in one bundle */
    AGENT_RTP_TEXT_MAX = 200,   /* characters of a receipt message */
};

/* A parsed signed bundle: both layers, owned. */
typedef struct agent_rtp_bundle {
    Tessera__Rtp__SignedBundle *outer;
    Tessera__Rtp__Bundle *inner;
} agent_rtp_bundle;

/*
 * Parses a SignedBundle encoding strictly: at most TS_AGENT_RTP_BUNDLE_MAX bytes, no unknown
 * fields, canonical (encoding it again gives the same bytes, in both layers), version 1, a valid
 * device UID and key label, a 16-byte key-store UID, 1 to AGENT_RTP_IMPORTS_MAX imports of 1 to
 * TS_IMPORT_BLOB_MAX bytes each, a signature of 1 to AGENT_RTP_SIG_MAX bytes. TS_ERR_CORRUPT
 * naming the field. Nothing is believed before agent_rtp_bundle_verify().
 */
TS_MUST_CHECK ts_err agent_rtp_bundle_parse(const uint8_t *data, size_t len, agent_rtp_bundle *out);

/* Frees what a parse made; accepts a zeroed or cleared bundle. */
void agent_rtp_bundle_clear(agent_rtp_bundle *b);

/* ECDSA with SHA-256 by sender over the Bundle encoding: TS_ERR_AUTH when it does not verify. */
TS_MUST_CHECK ts_err agent_rtp_bundle_verify(const agent_rtp_bundle *b, const EVP_PKEY *sender);

/*
 * Checks the bundle is for this device: its UID (TS_ERR_FOREIGN) and key-store UID
 * (TS_ERR_FOREIGN).
 */
TS_MUST_CHECK ts_err agent_rtp_bundle_bound(const agent_rtp_bundle *b, const char *uid,
                                            const uint8_t ksuid[TS_KEYSTORE_UID_LEN]);

/* Connects to host:port with TCP_NODELAY and send/receive timeouts of timeout seconds. */
TS_MUST_CHECK ts_err agent_rtp_connect(const char *host, const char *port, long timeout, int *fd);

/* Sends one framed message (common/frame_internal.h); receives one (a new buffer, OPENSSL_free)
 * of at most max bytes. */
TS_MUST_CHECK ts_err agent_rtp_send(int fd, const uint8_t *msg, size_t len);
TS_MUST_CHECK ts_err agent_rtp_recv(int fd, uint32_t max, uint8_t **msg, size_t *len);

#endif
