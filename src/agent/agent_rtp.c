/*
 * tessera-agent rtp: offline provisioning on the device (docs/rtp.md). The device says who it
 * is, takes the bundles the server holds for it, checks and imports each, and answers with one
 * receipt per bundle signed by its identity key. Bundles are end-to-end protected (signed by the
 * tenant's provisioning key, each import sealed to this key store and counter), so the transport
 * is plain TCP.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "agent/agent_internal.h"
#include "agent/agent_rtp_internal.h"
#include "common/error_internal.h"

/* One receipt being built, with storage for every string it points to. */
typedef struct receipt_buf {
    Tessera__Rtp__Receipt r;
    Tessera__Rtp__ImportResult res[AGENT_RTP_IMPORTS_MAX];
    Tessera__Rtp__ImportResult *resp[AGENT_RTP_IMPORTS_MAX];
    char labels[AGENT_RTP_IMPORTS_MAX][TS_LABEL_MAX + 1];
    char msgs[AGENT_RTP_IMPORTS_MAX][AGENT_RTP_TEXT_MAX + 1];
    char uid[TS_AGENT_UID_MAX + 1];
    char message[AGENT_RTP_TEXT_MAX + 1];
    uint8_t sha[32];
} receipt_buf;

/* The signed receipts of one exchange. */
typedef struct answer_buf {
    Tessera__Rtp__SignedReceipt sr[TS_AGENT_RTP_BUNDLES_MAX];
    Tessera__Rtp__SignedReceipt *srp[TS_AGENT_RTP_BUNDLES_MAX];
    uint8_t *receipt[TS_AGENT_RTP_BUNDLES_MAX];
    uint8_t sig[TS_AGENT_RTP_BUNDLES_MAX][TS_SIGNATURE_MAX];
    size_t count;
} answer_buf;

static void text_copy(char *dst, size_t size, const char *src)
{
    snprintf(dst, size, "%s", src != NULL ? src : "");
}

static ts_err sender_load(ts_keystore *ks, EVP_PKEY **out)
{
    uint8_t *pem = NULL;
    size_t len = 0;
    EVP_PKEY *key = NULL;
    BIO *bio;
    ts_err rv;

    rv = ts_keystore_object_get(ks, TS_AGENT_RTP_SENDER_LABEL, &pem, &len);
    if (rv != TS_OK) {
        return ts_error_prefix(rv, "the tenant's provisioning key (key-store object %s)",
                               TS_AGENT_RTP_SENDER_LABEL);
    }
    bio = BIO_new_mem_buf(pem, (int)len);
    if (bio != NULL) {
        key = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
    }
    BIO_free(bio);
    OPENSSL_clear_free(pem, len);
    if (key == NULL || EVP_PKEY_get_base_id(key) != EVP_PKEY_EC) {
        EVP_PKEY_free(key);
        return ts_error_set_openssl(TS_ERR_CORRUPT,
                                    "key-store object %s is not a PEM EC public "
                                    "key",
                                    TS_AGENT_RTP_SENDER_LABEL);
    }
    *out = key;
    return TS_OK;
}

/* Checks and applies one bundle, filling the receipt; the receipt's status says how it went. */
static void bundle_apply(ts_keystore *ks, const char *uid, const uint8_t ksuid[TS_KEYSTORE_UID_LEN],
                         const EVP_PKEY *sender, const uint8_t *data, size_t len, receipt_buf *rb)
{
    agent_rtp_bundle b = {NULL, NULL};
    ts_err rv;

    tessera__rtp__receipt__init(&rb->r);
    rb->r.version = AGENT_RTP_VERSION;
    text_copy(rb->uid, sizeof rb->uid, uid);
    rb->r.device_uid = rb->uid;
    EVP_Digest(data, len, rb->sha, NULL, EVP_sha256(), NULL);
    rb->r.bundle_sha256.data = rb->sha;
    rb->r.bundle_sha256.len = sizeof rb->sha;
    rb->r.message = rb->message;
    rb->r.results = rb->resp;

    rv = agent_rtp_bundle_parse(data, len, &b);
    if (rv == TS_OK) {
        rv = agent_rtp_bundle_verify(&b, sender);
    }
    if (rv == TS_OK) {
        rv = agent_rtp_bundle_bound(&b, uid, ksuid);
    }
    for (size_t i = 0; rv == TS_OK && i < b.inner->n_imports; i++) {
        Tessera__Rtp__ImportResult *ir = &rb->res[i];
        tessera__rtp__import_result__init(ir);
        rb->labels[i][0] = '\0';
        rb->msgs[i][0] = '\0';
        rv = ts_keystore_import(ks, b.inner->imports[i].data, b.inner->imports[i].len, sender,
                                rb->labels[i]);
        if (rv != TS_OK) {
            rb->labels[i][0] = '\0';
            text_copy(rb->msgs[i], sizeof rb->msgs[i], ts_error_message());
        }
        ir->label = rb->labels[i];
        ir->status = (uint32_t)rv;
        ir->message = rb->msgs[i];
        rb->resp[i] = ir;
        rb->r.n_results = i + 1;
    }
    rb->r.status = (uint32_t)rv;
    text_copy(rb->message, sizeof rb->message, rv == TS_OK ? "imported" : ts_error_message());
    agent_rtp_bundle_clear(&b);
}

/* Encodes the receipt and signs it with the identity key into slot i of the answer. */
static ts_err receipt_sign(ts_keystore *ks, const receipt_buf *rb, answer_buf *ab, size_t i)
{
    size_t len = tessera__rtp__receipt__get_packed_size(&rb->r);
    uint8_t digest[32];
    size_t sig_len = TS_SIGNATURE_MAX;
    ts_err rv;

    ab->receipt[i] = OPENSSL_malloc(len > 0 ? len : 1);
    if (ab->receipt[i] == NULL) {
        return ts_error_set(TS_ERR_NOMEM, "out of memory");
    }
    tessera__rtp__receipt__pack(&rb->r, ab->receipt[i]);
    if (EVP_Digest(ab->receipt[i], len, digest, NULL, EVP_sha256(), NULL) != 1) {
        return ts_error_set_openssl(TS_ERR_CRYPTO, "cannot hash a receipt");
    }
    /* The current identity's key (a rekey replaces "identity"); "identity" before enrollment. */
    agent_pointer current;
    rv = agent_pointer_load(ks, &current);
    const char *key = rv == TS_OK ? current.key : TS_AGENT_KEY_LABEL;
    if (rv != TS_OK && rv != TS_ERR_NOT_FOUND) {
        return ts_error_prefix(rv, "the current identity");
    }
    rv = ts_keystore_sign_digest(ks, key, digest, sizeof digest, ab->sig[i], &sig_len);
    if (rv != TS_OK) {
        return ts_error_prefix(rv, "signing a receipt with the identity key '%s'", key);
    }
    tessera__rtp__signed_receipt__init(&ab->sr[i]);
    ab->sr[i].receipt.data = ab->receipt[i];
    ab->sr[i].receipt.len = len;
    ab->sr[i].signature.data = ab->sig[i];
    ab->sr[i].signature.len = sig_len;
    ab->srp[i] = &ab->sr[i];
    ab->count = i + 1;
    return TS_OK;
}

static ts_err hello_send(int fd, const char *uid)
{
    Tessera__Rtp__Hello h = TESSERA__RTP__HELLO__INIT;
    uint8_t buf[TS_AGENT_UID_MAX + 16];

    h.version = AGENT_RTP_VERSION;
    h.device_uid = (char *)uid;
    if (tessera__rtp__hello__get_packed_size(&h) > sizeof buf) {
        return ts_error_set(TS_ERR_INVALID, "rtp: device UID too long");
    }
    return agent_rtp_send(fd, buf, tessera__rtp__hello__pack(&h, buf));
}

static ts_err offer_recv(int fd, Tessera__Rtp__Offer **out)
{
    uint8_t *msg = NULL;
    size_t len = 0;
    Tessera__Rtp__Offer *offer;
    ts_err rv;

    rv = agent_rtp_recv(fd, TS_AGENT_RTP_MSG_MAX, &msg, &len);
    if (rv != TS_OK) {
        return ts_error_prefix(rv, "waiting for the server's bundles");
    }
    offer = tessera__rtp__offer__unpack(NULL, len, msg);
    OPENSSL_free(msg);
    if (offer == NULL) {
        return ts_error_set(TS_ERR_CORRUPT, "rtp: the server's offer is not an Offer message");
    }
    if (offer->version != AGENT_RTP_VERSION || offer->n_bundles > TS_AGENT_RTP_BUNDLES_MAX) {
        rv = ts_error_set(TS_ERR_CORRUPT,
                          "rtp: offer of version %u with %zu bundles (want "
                          "version %d, at most %d)",
                          offer->version, offer->n_bundles, AGENT_RTP_VERSION,
                          TS_AGENT_RTP_BUNDLES_MAX);
        tessera__rtp__offer__free_unpacked(offer, NULL);
        return rv;
    }
    *out = offer;
    return TS_OK;
}

static ts_err answer_send(int fd, answer_buf *ab)
{
    Tessera__Rtp__Answer a = TESSERA__RTP__ANSWER__INIT;
    uint8_t *buf;
    size_t len;
    ts_err rv;

    a.version = AGENT_RTP_VERSION;
    a.receipts = ab->srp;
    a.n_receipts = ab->count;
    len = tessera__rtp__answer__get_packed_size(&a);
    buf = OPENSSL_malloc(len > 0 ? len : 1);
    if (buf == NULL) {
        return ts_error_set(TS_ERR_NOMEM, "out of memory");
    }
    tessera__rtp__answer__pack(&a, buf);
    rv = agent_rtp_send(fd, buf, len);
    OPENSSL_free(buf);
    return rv;
}

/* The server's word that it checked and kept every receipt. */
static ts_err ack_recv(int fd, size_t count)
{
    uint8_t *msg = NULL;
    size_t len = 0;
    Tessera__Rtp__Ack *ack;
    ts_err rv;

    rv = agent_rtp_recv(fd, 64, &msg, &len);
    if (rv != TS_OK) {
        return ts_error_prefix(rv, "the server did not confirm the receipts");
    }
    ack = tessera__rtp__ack__unpack(NULL, len, msg);
    OPENSSL_free(msg);
    if (ack == NULL || ack->version != AGENT_RTP_VERSION || ack->kept != count) {
        rv =
            ts_error_set(TS_ERR_CORRUPT, "rtp: the server did not confirm all %zu receipts", count);
    }
    if (ack != NULL) {
        tessera__rtp__ack__free_unpacked(ack, NULL);
    }
    return rv;
}

ts_err ts_agent_rtp(ts_agent *agent, const char *host, const char *port, long timeout,
                    ts_agent_rtp_report_fn report, void *arg, ts_agent_rtp_result *out)
{
    char uid[TS_AGENT_UID_MAX + 1];
    uint8_t ksuid[TS_KEYSTORE_UID_LEN];
    EVP_PKEY *sender = NULL;
    Tessera__Rtp__Offer *offer = NULL;
    receipt_buf *rb = NULL;
    answer_buf *ab = NULL;
    int fd = -1;
    ts_err rv;

    memset(out, 0, sizeof *out);
    if (agent == NULL || host == NULL || port == NULL) {
        return ts_error_set(TS_ERR_INVALID, "rtp: no agent, host or port");
    }
    rv = ts_agent_uid(agent, uid);
    if (rv == TS_OK) {
        rv = ts_keystore_uid(agent->ks, ksuid);
    }
    if (rv == TS_OK) {
        rv = sender_load(agent->ks, &sender);
    }
    if (rv != TS_OK) {
        return rv;
    }
    rb = OPENSSL_zalloc(sizeof *rb);
    ab = OPENSSL_zalloc(sizeof *ab);
    if (rb == NULL || ab == NULL) {
        rv = ts_error_set(TS_ERR_NOMEM, "out of memory");
        goto done;
    }
    rv = agent_rtp_connect(host, port, timeout > 0 ? timeout : TS_AGENT_TIMEOUT_DEFAULT, &fd);
    if (rv == TS_OK) {
        rv = hello_send(fd, uid);
    }
    if (rv == TS_OK) {
        rv = offer_recv(fd, &offer);
    }
    if (rv != TS_OK) {
        goto done;
    }
    out->offered = offer->n_bundles;
    for (size_t i = 0; i < offer->n_bundles; i++) {
        bundle_apply(agent->ks, uid, ksuid, sender, offer->bundles[i].data, offer->bundles[i].len,
                     rb);
        for (size_t j = 0; j < rb->r.n_results; j++) {
            if (rb->res[j].status == TS_OK) {
                out->imported++;
                if (report != NULL) {
                    report(arg, i, TS_OK, rb->labels[j]);
                }
            }
        }
        if (rb->r.status == TS_OK) {
            out->accepted++;
        } else {
            out->refused++;
            if (report != NULL) {
                report(arg, i, (ts_err)rb->r.status, rb->message);
            }
        }
        rv = receipt_sign(agent->ks, rb, ab, i);
        if (rv != TS_OK) {
            goto done;
        }
    }
    /* With nothing offered the server expects no answer and has closed. */
    if (offer->n_bundles > 0) {
        rv = answer_send(fd, ab);
        if (rv == TS_OK) {
            rv = ack_recv(fd, offer->n_bundles);
        }
    }
done:
    if (fd >= 0) {
        close(fd);
    }
    if (ab != NULL) {
        for (size_t i = 0; i < TS_AGENT_RTP_BUNDLES_MAX; i++) {
            OPENSSL_free(ab->receipt[i]);
        }
    }
    OPENSSL_free(ab);
    OPENSSL_free(rb);
    if (offer != NULL) {
        tessera__rtp__offer__free_unpacked(offer, NULL);
    }
    EVP_PKEY_free(sender);
    return rv;
}
