/*
 * Offline provisioning on the service's side (docs/rtp.md): the tenant's provisioning key, the
 * devices' key-store facts and the seals and signatures of bundles. The bundle encoding and the
 * rtp server are in src/cli/cli_rtp*.c.
 */
#ifndef TS_SERVER_RTP_H
#define TS_SERVER_RTP_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "tessera/ca.h"
#include "tessera/keystore.h"

/* The instance key-store label of a tenant's provisioning key: "rtp.<tenant>". */
#define TS_RTP_KEY_PREFIX "rtp."

enum {
    TS_RTP_UID_MAX = 64,         /* characters of a device UID */
    TS_RTP_OBJECTS_MAX = 64,     /* keys in one bundle */
    TS_RTP_KEY_FILE_MAX = 16384, /* bytes of a PEM private key file */
};

/* What the service must know of a device to seal to it. */
typedef struct ts_rtp_device {
    char uid[TS_RTP_UID_MAX + 1];
    uint8_t ksuid[TS_KEYSTORE_UID_LEN]; /* ts_keystore_uid() of its key store */
    char key_label[TS_LABEL_MAX + 1];   /* its key the imports are sealed to */
    EVP_PKEY *pub;                      /* that key's public half */
    EVP_PKEY *receipt_pub; /* the current identity key's public half, which signs receipts */
} ts_rtp_device;

/*
 * The tenant's provisioning key in the instance key store, made (P-256) on first use: *signer
 * signs through the provider, *pub is its public half. Both freed by the caller.
 */
TS_MUST_CHECK ts_err ts_rtp_sender(ts_ca *ca, const char *tenant, EVP_PKEY **signer,
                                   EVP_PKEY **pub);

/* Checks a device UID: 1 to TS_RTP_UID_MAX of [A-Za-z0-9._:-], not starting with '.'. */
TS_MUST_CHECK ts_err ts_rtp_uid_check(const char *uid);

/*
 * Reads a device's facts from its key store (reachable in the factory): the store's UID, the
 * public key of key_label (NULL: the URI's object=, else the current identity key) and that of
 * the key that signs the device's receipts: the current identity key, which the agent's identity
 * pointer names (identity.key.N after a rekey), else "identity" (TS_ERR_NOT_FOUND when the store
 * has none).
 */
TS_MUST_CHECK ts_err ts_rtp_device_load(const char *uid, const char *keystore_uri,
                                        const char *key_label, ts_rtp_device *out);
void ts_rtp_device_clear(ts_rtp_device *d);

/* Reads a PEM EC private key file (at most TS_RTP_KEY_FILE_MAX bytes). */
TS_MUST_CHECK ts_err ts_rtp_key_load(const char *path, EVP_PKEY **out);

/* ECDSA with SHA-256 over data; *sig (DER) freed with OPENSSL_free(). */
TS_MUST_CHECK ts_err ts_rtp_sign(EVP_PKEY *signer, const uint8_t *data, size_t len, uint8_t **sig,
                                 size_t *sig_len);

/* Verifies such a signature: TS_ERR_AUTH when it does not. */
TS_MUST_CHECK ts_err ts_rtp_verify(const EVP_PKEY *pub, const uint8_t *data, size_t len,
                                   const uint8_t *sig, size_t sig_len);

#endif
