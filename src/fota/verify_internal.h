/* Inside src/fota: the streaming verifier's state (verify.c opens it, feed.c runs the payload). */
#ifndef TS_FOTA_VERIFY_INTERNAL_H
#define TS_FOTA_VERIFY_INTERNAL_H

#include "fota/fota_internal.h"

/* What a lane (the caller's thread, or the helper thread) made of one chunk. */
enum fw_lane_result { FW_LANE_OK, FW_LANE_TAG, FW_LANE_DIGEST, FW_LANE_CRYPTO };

/* Bytes of plaintext one lane takes per job: large enough that handing a job to the helper
 * thread costs little next to the work, small enough to keep memory constant. */
enum { FW_LANE_BYTES = 512 * 1024 };

/* One thread's tools for one job: consecutive whole chunks. */
typedef struct fw_lane {
    EVP_CIPHER_CTX *gcm; /* keyed for decryption, when the payload is encrypted */
    EVP_MD_CTX *md;
    uint8_t *plain; /* lane_chunks * chunk_size bytes: decrypted chunks (encrypted payloads) */
    /* The job: count chunks from index, whose wire bytes lie back to back at in. */
    uint32_t index;
    uint32_t count;
    const uint8_t *in;
    /* The outcome: the first done chunks passed; when done < count, chunk index + done failed
     * with result. */
    uint32_t done;
    enum fw_lane_result result;
} fw_lane;

typedef struct fw_worker fw_worker;

struct ts_fw_verifier {
    X509 *signer; /* a reference */
    ts_fw_info info;
    fw_enc enc;
    uint8_t *digests;
    EVP_MD *sha256;
    int decrypt;     /* the payload fed is ciphertext || tag per chunk */
    int keyed;       /* set_key succeeded (decrypt only) */
    uint64_t expect; /* payload bytes to be fed: wire_size or size */
    uint8_t *stage;  /* one wire chunk, for chunks that arrive in pieces */
    size_t fill;     /* bytes in stage */
    uint32_t next;   /* index of the chunk being filled */
    uint64_t fed;
    int failed;
    fw_lane lanes[2];     /* [0] the caller's thread, [1] the helper thread */
    uint32_t lane_chunks; /* chunks in one lane's job at most */
    fw_worker *worker;    /* started on the first feed with two whole chunks; NULL: serial */
    int no_worker;        /* the helper thread could not be started: stay serial */
};

/* Runs lane's job (decrypt when needed, hash, compare, chunk by chunk, stopping at the first
 * failure) on the calling thread. */
void fw_lane_run(const ts_fw_verifier *v, fw_lane *lane);

/* Stops and frees the helper thread. */
void fw_worker_free(fw_worker *w);

#endif
