/*
 * The provisioning session (docs/protocol.md): POST /agent/v1/session with an AgentMessage
 * (protobuf) over mutual TLS. The device is the client certificate's subject CN in the tenant
 * whose CA issued it. Once the whole message checked out, its results are recorded against the
 * job requests they answer and its status report is kept, in one transaction (a refused message
 * changes nothing); the reply carries the device's next pending requests (or done) and the
 * tenant's current CRL.
 */
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/objects.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "agent_session.pb-c.h"
#include "common/error_internal.h"
#include "service/svc_session_internal.h"

#define PB_TYPE "application/x-protobuf"

/*
 * The device UID: the client certificate's one CN. X509_NAME_get_text_by_NID() would cut a long
 * CN to the buffer and stop at an embedded NUL, naming another device; the CN is taken whole
 * instead, and refused unless it is exactly a device UID.
 */
int svc_session_client_uid(svc_request *r, char uid[TS_DEVICE_UID_MAX + 1])
{
    X509_NAME *subject = r->client_cert != NULL ? X509_get_subject_name(r->client_cert) : NULL;
    int at = subject != NULL ? X509_NAME_get_index_by_NID(subject, NID_commonName, -1) : -1;
    const ASN1_STRING *cn =
        at >= 0 ? X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, at)) : NULL;
    int len = cn != NULL ? ASN1_STRING_length(cn) : 0;
    int ok = len > 0 && len <= TS_DEVICE_UID_MAX &&
             X509_NAME_get_index_by_NID(subject, NID_commonName, at) < 0;

    uid[0] = '\0';
    if (ok) {
        memcpy(uid, ASN1_STRING_get0_data(cn), (size_t)len);
        uid[len] = '\0';
        ok = strlen(uid) == (size_t)len && ts_device_uid_check(uid) == TS_OK;
    }
    if (!ok) {
        svc_reply_error(r, 401, "unauthorized",
                        "the TLS client certificate's CN is not a device UID");
        return 0;
    }
    return 1;
}

static Tessera__Agent__V1__Request *request_new(const ts_job_request_row *q,
                                                Tessera__Agent__V1__DatastoreEntry *entry,
                                                Tessera__Agent__V1__DatastoreEntry **entries)
{
    Tessera__Agent__V1__Request *m = OPENSSL_zalloc(sizeof *m);
    if (m == NULL) {
        return NULL;
    }
    tessera__agent__v1__request__init(m);
    m->id = (uint64_t)q->id;
    m->endpoint = (Tessera__Agent__V1__Endpoint)q->endpoint;
    m->operation = (Tessera__Agent__V1__Operation)q->operation;
    if (q->operation == TS_JOB_OP_DS_PUT) {
        /* A job's DS_PUT carries one TEXT entry: label = value. */
        tessera__agent__v1__datastore_entry__init(entry);
        entry->name = (char *)q->label;
        entry->type = TESSERA__AGENT__V1__VALUE_TYPE__TEXT;
        entry->value.data = q->data;
        entry->value.len = q->data_len;
        entries[0] = entry;
        m->entries = entries;
        m->n_entries = 1;
    } else if (q->operation == TS_JOB_OP_REENROLL) {
        /* The job's marker label becomes the request's rekey flag. */
        m->rekey = strcmp(q->label, TS_JOB_REKEY_LABEL) == 0;
    } else {
        m->label = (char *)q->label;
        m->data.data = q->data;
        m->data.len = q->data_len;
    }
    return m;
}

/* Packs the reply: session id, the next requests, the CRL, done. */
static void reply_next(svc_request *r, const char *tenant, const char *uid, const char *session)
{
    ts_job_request_row *reqs = NULL;
    size_t n = 0;
    uint8_t *crl = NULL, *out = NULL;
    size_t crl_len = 0;
    Tessera__Agent__V1__ServiceMessage msg;
    Tessera__Agent__V1__Request *items[TS_JOB_BATCH_MAX] = {0};
    Tessera__Agent__V1__DatastoreEntry entries[TS_JOB_BATCH_MAX];
    Tessera__Agent__V1__DatastoreEntry *entry_ptrs[TS_JOB_BATCH_MAX];

    ts_err rv = ts_ca_job_next(r->ca, tenant, uid, &reqs, &n);
    if (rv == TS_OK) {
        rv = svc_crl_current(svc_worker_server(r->worker), r->ca, tenant, &crl, &crl_len);
    }
    if (rv != TS_OK) {
        ts_job_requests_free(reqs, n);
        svc_reply_err(r, rv);
        return;
    }
    size_t count = n < TS_JOB_BATCH_MAX ? n : TS_JOB_BATCH_MAX;
    /* With no job pending, a firmware update the device should take, alone in its message. */
    Tessera__Agent__V1__Request offer;
    char *offer_data = NULL;
    if (n == 0) {
        rv = svc_session_offer(r, tenant, uid, &offer, &offer_data);
        if (rv != TS_OK) {
            OPENSSL_free(crl);
            svc_reply_err(r, rv);
            return;
        }
    }
    tessera__agent__v1__service_message__init(&msg);
    msg.version = SVC_SESSION_VERSION;
    msg.session_id = (char *)session;
    msg.crl.data = crl;
    msg.crl.len = crl_len;
    msg.done = n == 0;
    int ok = 1;
    for (size_t i = 0; i < count && offer_data == NULL; i++) {
        items[i] = request_new(&reqs[i], &entries[i], &entry_ptrs[i]);
        ok &= items[i] != NULL;
    }
    if (offer_data != NULL) {
        items[0] = &offer;
        count = 1;
        msg.done = 0;
    }
    msg.requests = items;
    msg.n_requests = count;
    size_t len = ok ? tessera__agent__v1__service_message__get_packed_size(&msg) : 0;
    out = ok ? OPENSSL_malloc(len > 0 ? len : 1) : NULL;
    if (out == NULL) {
        svc_reply_err(r, ts_error_set(TS_ERR_NOMEM, "out of memory packing a session reply"));
    } else {
        tessera__agent__v1__service_message__pack(&msg, out);
        svc_reply(r, 200, PB_TYPE, out, len);
    }
    for (size_t i = 0; i < count && offer_data == NULL; i++) {
        OPENSSL_free(items[i]);
    }
    OPENSSL_free(offer_data);
    OPENSSL_free(out);
    OPENSSL_free(crl);
    ts_job_requests_free(reqs, n);
}

/*
 * Records the message's results and its status report (status NULL: none) together, so a
 * refused result leaves the stored report as it was; 0 after replying with the error.
 */
static int record_results(svc_request *r, const char *tenant, const char *uid,
                          const Tessera__Agent__V1__AgentMessage *m, const char *status)
{
    ts_job_answer answers[SVC_SESSION_RESULTS_MAX];
    ts_fw_offer_answer offers[SVC_SESSION_RESULTS_MAX];
    size_t n = 0, noffers = 0;
    for (size_t i = 0; i < m->n_results; i++) {
        const Tessera__Agent__V1__Result *res = m->results[i];
        int64_t id = res->request_id > INT64_MAX ? 0 : (int64_t)res->request_id;
        if (id > TS_FW_OFFER_ID_BASE) {
            /* The answer to a firmware offer (svc_session_offer.c). */
            offers[noffers++] = (ts_fw_offer_answer){
                .offer_id = id - TS_FW_OFFER_ID_BASE,
                .ok = res->ok,
                .error_code = res->error_code,
                .error_message = res->error_message,
            };
            continue;
        }
        answers[n++] = (ts_job_answer){
            .request_id = id,
            .ok = res->ok,
            .error_code = res->error_code,
            .error_message = res->error_message,
            .payload = res->payload.data,
            .payload_len = res->payload.len,
        };
    }
    const Tessera__Agent__V1__StatusReport *st = m->status;
    ts_err rv = ts_ca_fw_session_record(
        r->ca, tenant, uid, status, st != NULL ? st->firmware_version : NULL,
        st != NULL ? st->hardware_id : NULL, answers, n, offers, noffers);
    if (rv == TS_ERR_NOT_FOUND) {
        svc_reply_error(r, 400, "invalid", "%s", ts_error_message());
        return 0;
    }
    if (rv != TS_OK) {
        svc_reply_err(r, rv);
        return 0;
    }
    return 1;
}

void svc_session_post(svc_request *r)
{
    char uid[TS_DEVICE_UID_MAX + 1];
    char session[2 * SVC_SESSION_ID_BYTES + 1];
    char *status = NULL;
    const char *ct = svc_header(r, "Content-Type");

    if (!svc_session_client_uid(r, uid)) {
        return;
    }
    if (ct == NULL || strcmp(ct, PB_TYPE) != 0) {
        svc_reply_error(r, 415, "unsupported_media_type", "a session message is %s", PB_TYPE);
        return;
    }
    if (r->body_len > SVC_SESSION_BODY_MAX) {
        svc_reply_error(r, 413, "too_large", "a session message is at most %d bytes",
                        SVC_SESSION_BODY_MAX);
        return;
    }
    Tessera__Agent__V1__AgentMessage *m = NULL;
    ts_err rv = svc_session_decode(r->body, r->body_len, &m);
    if (rv == TS_OK && m->version != SVC_SESSION_VERSION) {
        svc_reply_error(r, 400, "unsupported_version",
                        "protocol version %u is not supported (this service speaks %d)", m->version,
                        SVC_SESSION_VERSION);
        tessera__agent__v1__agent_message__free_unpacked(m, NULL);
        return;
    }
    if (rv == TS_OK && m->status != NULL && strcmp(m->status->uid, uid) != 0) {
        rv = ts_error_set(TS_ERR_INVALID,
                          "the status report's uid '%.64s' is not the "
                          "certificate's '%s'",
                          m->status->uid, uid);
    }
    if (rv == TS_OK && m->session_id[0] == '\0' && m->status == NULL) {
        rv = ts_error_set(TS_ERR_INVALID, "the first message of a session carries a status");
    }
    if (rv != TS_OK) {
        svc_reply_error(r, 400, "invalid", "%s", ts_error_message());
        tessera__agent__v1__agent_message__free_unpacked(m, NULL);
        return;
    }
    const char *tenant = r->client_tenant.name;
    if (m->status != NULL) {
        rv = svc_session_status_json(m->status, &status);
        if (rv != TS_OK) {
            svc_reply_err(r, rv);
            tessera__agent__v1__agent_message__free_unpacked(m, NULL);
            return;
        }
    }
    if (m->session_id[0] != '\0') {
        snprintf(session, sizeof session, "%s", m->session_id);
    } else {
        uint8_t rnd[SVC_SESSION_ID_BYTES];
        if (RAND_bytes(rnd, sizeof rnd) != 1) {
            svc_reply_err(r, ts_error_set_openssl(TS_ERR_CRYPTO, "no random session id"));
            OPENSSL_free(status);
            tessera__agent__v1__agent_message__free_unpacked(m, NULL);
            return;
        }
        for (size_t i = 0; i < sizeof rnd; i++) {
            snprintf(session + 2 * i, 3, "%02x", rnd[i]);
        }
    }
    int recorded = record_results(r, tenant, uid, m, status);
    OPENSSL_free(status);
    if (!recorded) {
        tessera__agent__v1__agent_message__free_unpacked(m, NULL);
        return;
    }
    tessera__agent__v1__agent_message__free_unpacked(m, NULL);
    reply_next(r, tenant, uid, session);
}
