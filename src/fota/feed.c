/*
 * The payload, chunk by chunk: each chunk (for an encrypted payload, its AES-256-GCM ciphertext
 * and tag, decrypted first) is hashed and compared with the manifest's digest, and only then
 * released. A chunk that arrives in pieces is gathered in one buffer; whole chunks are checked
 * where the caller's data lies. When one feed holds two whole chunks or more, a helper thread
 * checks the first half of them while the caller's thread checks the rest (up to FW_LANE_BYTES
 * each), and all are released in order, by the caller's thread, before feed returns. A job of
 * many chunks keeps the cost of waking the helper small next to the hashing. Memory: one wire
 * chunk, plus two lanes of FW_LANE_BYTES of decrypted chunks for an encrypted payload.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>

#include "common/error_internal.h"
#include "fota/verify_internal.h"

struct fw_worker {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    ts_fw_verifier *v;
    int busy; /* a job was posted and is not done */
    int quit;
};

/* The length on the wire of chunk i. */
static size_t wire_len(const ts_fw_verifier *v, uint32_t i)
{
    uint64_t left = v->info.size - (uint64_t)i * v->info.chunk_size;
    size_t n = left < v->info.chunk_size ? (size_t)left : v->info.chunk_size;
    return n + (v->decrypt ? TS_FW_TAG_LEN : 0);
}

/* Chunk k of a lane's job: its wire bytes, and where its checked plaintext lies. */
static const uint8_t *lane_in(const ts_fw_verifier *v, const fw_lane *l, uint32_t k)
{
    return l->in + (size_t)k * ((size_t)v->info.chunk_size + (v->decrypt ? TS_FW_TAG_LEN : 0));
}

static const uint8_t *lane_out(const ts_fw_verifier *v, const fw_lane *l, uint32_t k)
{
    return v->decrypt ? l->plain + (size_t)k * v->info.chunk_size : lane_in(v, l, k);
}

static enum fw_lane_result check_chunk(const ts_fw_verifier *v, fw_lane *l, uint32_t k)
{
    uint32_t index = l->index + k;
    size_t len = wire_len(v, index);
    const uint8_t *out = lane_out(v, l, k);
    if (v->decrypt) {
        if (fw_chunk_open(l->gcm, index, v->info.chunks, lane_in(v, l, k), len, (uint8_t *)out) !=
            0) {
            return FW_LANE_TAG;
        }
        len -= TS_FW_TAG_LEN;
    }
    uint8_t md[TS_FW_DIGEST_LEN];
    unsigned int md_len = 0;
    if (EVP_DigestInit_ex2(l->md, v->sha256, NULL) != 1 || EVP_DigestUpdate(l->md, out, len) != 1 ||
        EVP_DigestFinal_ex(l->md, md, &md_len) != 1 || md_len != sizeof md) {
        ERR_clear_error();
        return FW_LANE_CRYPTO;
    }
    if (CRYPTO_memcmp(md, v->digests + (size_t)index * TS_FW_DIGEST_LEN, sizeof md) != 0) {
        return FW_LANE_DIGEST;
    }
    return FW_LANE_OK;
}

void fw_lane_run(const ts_fw_verifier *v, fw_lane *l)
{
    l->result = FW_LANE_OK;
    for (l->done = 0; l->done < l->count; l->done++) {
        l->result = check_chunk(v, l, l->done);
        if (l->result != FW_LANE_OK) {
            return;
        }
    }
}

static void *worker_main(void *arg)
{
    fw_worker *w = arg;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (!w->busy && !w->quit) {
            pthread_cond_wait(&w->cv, &w->mu);
        }
        if (w->quit) {
            break;
        }
        pthread_mutex_unlock(&w->mu);
        fw_lane_run(w->v, &w->v->lanes[1]);
        pthread_mutex_lock(&w->mu);
        w->busy = 0;
        pthread_cond_broadcast(&w->cv);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

/* Starts the helper thread once; 0 when it runs. Without it, every chunk is checked serially. */
static int worker_start(ts_fw_verifier *v)
{
    if (v->worker != NULL) {
        return 0;
    }
    if (v->no_worker) {
        return -1;
    }
    fw_worker *w = calloc(1, sizeof *w);
    if (w == NULL || pthread_mutex_init(&w->mu, NULL) != 0) {
        free(w);
        v->no_worker = 1;
        return -1;
    }
    w->v = v;
    if (pthread_cond_init(&w->cv, NULL) != 0) {
        pthread_mutex_destroy(&w->mu);
        free(w);
        v->no_worker = 1;
        return -1;
    }
    if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
        pthread_cond_destroy(&w->cv);
        pthread_mutex_destroy(&w->mu);
        free(w);
        v->no_worker = 1;
        return -1;
    }
    v->worker = w;
    return 0;
}

static void worker_post(fw_worker *w)
{
    pthread_mutex_lock(&w->mu);
    w->busy = 1;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

static void worker_wait(fw_worker *w)
{
    pthread_mutex_lock(&w->mu);
    while (w->busy) {
        pthread_cond_wait(&w->cv, &w->mu);
    }
    pthread_mutex_unlock(&w->mu);
}

void fw_worker_free(fw_worker *w)
{
    if (w == NULL) {
        return;
    }
    pthread_mutex_lock(&w->mu);
    w->quit = 1;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL);
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    free(w);
}

static void lane_job(fw_lane *l, uint32_t index, uint32_t count, const uint8_t *in)
{
    l->index = index;
    l->count = count;
    l->in = in;
    l->done = 0;
    l->result = FW_LANE_CRYPTO;
}

/* Releases a lane's good chunks in order, then turns its failure, if any, into an error. */
static ts_err settle(ts_fw_verifier *v, const fw_lane *l, ts_fw_release_fn release, void *ctx)
{
    for (uint32_t k = 0; k < l->done; k++) {
        size_t len = wire_len(v, l->index + k) - (v->decrypt ? TS_FW_TAG_LEN : 0);
        if (release != NULL && release(ctx, lane_out(v, l, k), len) != 0) {
            return ts_error_set(TS_ERR_IO, "the receiver refused chunk %u", l->index + k);
        }
        v->next++;
    }
    if (l->done == l->count) {
        return TS_OK;
    }
    uint32_t bad = l->index + l->done;
    switch (l->result) {
    case FW_LANE_TAG:
        return ts_error_set(TS_ERR_AUTH,
                            "payload chunk %u does not decrypt (its tag does not "
                            "verify)",
                            bad);
    case FW_LANE_DIGEST:
        return ts_error_set(TS_ERR_AUTH, "payload chunk %u does not match its digest", bad);
    default:
        return ts_error_set(TS_ERR_CRYPTO, "cannot check payload chunk %u", bad);
    }
}

static ts_err run_one(ts_fw_verifier *v, const uint8_t *in, uint32_t count,
                      ts_fw_release_fn release, void *ctx)
{
    lane_job(&v->lanes[0], v->next, count, in);
    fw_lane_run(v, &v->lanes[0]);
    return settle(v, &v->lanes[0], release, ctx);
}

/* Whole chunks at in: the first count1 on the helper thread, the next count2 here. */
static ts_err run_two(ts_fw_verifier *v, const uint8_t *in, uint32_t count1, uint32_t count2,
                      ts_fw_release_fn release, void *ctx)
{
    lane_job(&v->lanes[1], v->next, count1, in);
    lane_job(&v->lanes[0], v->next + count1, count2, lane_in(v, &v->lanes[1], count1));
    worker_post(v->worker);
    fw_lane_run(v, &v->lanes[0]);
    worker_wait(v->worker);
    ts_err rv = settle(v, &v->lanes[1], release, ctx);
    if (rv == TS_OK) {
        rv = settle(v, &v->lanes[0], release, ctx);
    }
    return rv;
}

static void fail(ts_fw_verifier *v)
{
    v->failed = 1;
    OPENSSL_cleanse(v->stage, wire_len(v, 0));
    for (int i = 0; i < 2; i++) {
        if (v->lanes[i].plain != NULL) {
            OPENSSL_cleanse(v->lanes[i].plain, (size_t)v->lane_chunks * v->info.chunk_size);
        }
    }
}

ts_err ts_fw_verifier_feed(ts_fw_verifier *v, const uint8_t *data, size_t len,
                           ts_fw_release_fn release, void *ctx)
{
    if (v == NULL || (data == NULL && len > 0)) {
        return ts_error_set(TS_ERR_INVALID, "feeding needs a verifier and data");
    }
    if (v->failed) {
        return ts_error_set(TS_ERR_STATE, "the update already failed verification");
    }
    if (v->decrypt && !v->keyed) {
        return ts_error_set(TS_ERR_STATE, "the payload is encrypted: its key must be set first "
                                          "(ts_fw_verifier_set_key)");
    }
    if (len > v->expect - v->fed) {
        v->failed = 1;
        return ts_error_set(TS_ERR_INVALID, "more payload than the manifest's %llu bytes",
                            (unsigned long long)v->expect);
    }
    v->fed += len;
    ts_err rv = TS_OK;
    while (rv == TS_OK && len > 0) {
        size_t want = wire_len(v, v->next);
        if (v->fill > 0 || len < want) {
            size_t take = len < want - v->fill ? len : want - v->fill;
            memcpy(v->stage + v->fill, data, take);
            v->fill += take;
            data += take;
            len -= take;
            if (v->fill == want) {
                v->fill = 0;
                rv = run_one(v, v->stage, 1, release, ctx);
            }
            continue;
        }
        /* The whole chunks here, at most two lanes' worth. */
        uint32_t n = 0;
        size_t bytes = 0;
        while (n < 2 * v->lane_chunks && v->next + n < v->info.chunks &&
               bytes + wire_len(v, v->next + n) <= len) {
            bytes += wire_len(v, v->next + n);
            n++;
        }
        if (n >= 2 && worker_start(v) == 0) {
            uint32_t first = (n + 1) / 2;
            rv = run_two(v, data, first, n - first, release, ctx);
        } else {
            n = n < v->lane_chunks ? n : v->lane_chunks;
            bytes = 0;
            for (uint32_t k = 0; k < n; k++) {
                bytes += wire_len(v, v->next + k);
            }
            rv = run_one(v, data, n, release, ctx);
        }
        data += bytes;
        len -= bytes;
    }
    if (rv != TS_OK) {
        fail(v);
    }
    return rv;
}

ts_err ts_fw_verifier_finish(ts_fw_verifier *v)
{
    if (v == NULL || v->failed) {
        return ts_error_set(TS_ERR_STATE, "the update failed verification");
    }
    if (v->fed != v->expect || v->next != v->info.chunks) {
        v->failed = 1;
        return ts_error_set(TS_ERR_INVALID, "the payload is truncated: %llu of %llu bytes",
                            (unsigned long long)v->fed, (unsigned long long)v->expect);
    }
    return TS_OK;
}
