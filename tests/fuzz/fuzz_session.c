/*
 * libFuzzer target: the provisioning-session messages (docs/protocol.md) on arbitrary bytes.
 * The bytes are an AgentMessage for the service's svc_session_decode(): a refusal leaves no
 * message; an accepted one keeps the limits of docs/protocol.md, turns its status report into
 * JSON that parses, and packs to bytes that, decoded again, pack the same. The same bytes are
 * also a ServiceMessage for protobuf-c's unpack, whose packing, unpacked again, keeps its fields.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "agent_session.pb-c.h"
#include "service/svc_session_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t *pack_agent(const Tessera__Agent__V1__AgentMessage *m, size_t *len)
{
    *len = tessera__agent__v1__agent_message__get_packed_size(m);
    uint8_t *buf = OPENSSL_malloc(*len > 0 ? *len : 1);
    if (buf == NULL || tessera__agent__v1__agent_message__pack(m, buf) != *len) {
        abort();
    }
    return buf;
}

static void check_status(const Tessera__Agent__V1__StatusReport *s)
{
    char *text = NULL;
    json_error_t jerr;

    if (ts_device_uid_check(s->uid) != TS_OK) {
        abort();
    }
    if (svc_session_status_json(s, &text) != TS_OK || text == NULL) {
        abort();
    }
    json_t *doc = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
    if (doc == NULL || strcmp(json_string_value(json_object_get(doc, "uid")), s->uid) != 0) {
        abort();
    }
    json_decref(doc);
    OPENSSL_free(text);
}

static void check_agent(const uint8_t *data, size_t size)
{
    Tessera__Agent__V1__AgentMessage *m = NULL;
    Tessera__Agent__V1__AgentMessage *again = NULL;
    size_t len = 0, len2 = 0;

    if (svc_session_decode(data, size, &m) != TS_OK) {
        if (m != NULL) {
            abort();
        }
        return;
    }
    if (m == NULL || m->n_results > SVC_SESSION_RESULTS_MAX ||
        strlen(m->session_id) > 2 * SVC_SESSION_ID_BYTES) {
        abort();
    }
    for (size_t i = 0; i < m->n_results; i++) {
        const Tessera__Agent__V1__Result *r = m->results[i];
        if (r->request_id == 0 || r->request_id > INT64_MAX ||
            r->payload.len > TS_JOB_PAYLOAD_MAX || (!r->ok && r->error_code[0] == '\0')) {
            abort();
        }
    }
    if (m->status != NULL) {
        check_status(m->status);
    }
    /*
     * What was accepted, packed again and accepted again, packs to the same bytes. A repack that
     * is refused is not a fault here: protobuf-c keeps unknown fields as read and packs a
     * non-minimal tag (field 0 in two bytes) to one it then refuses.
     */
    uint8_t *packed = pack_agent(m, &len);
    if (svc_session_decode(packed, len, &again) == TS_OK) {
        uint8_t *packed2 = pack_agent(again, &len2);
        if (len2 != len || memcmp(packed, packed2, len) != 0) {
            abort();
        }
        OPENSSL_free(packed2);
    }
    OPENSSL_free(packed);
    tessera__agent__v1__agent_message__free_unpacked(again, NULL);
    tessera__agent__v1__agent_message__free_unpacked(m, NULL);
}

static void check_service(const uint8_t *data, size_t size)
{
    Tessera__Agent__V1__ServiceMessage *m =
        tessera__agent__v1__service_message__unpack(NULL, size, data);
    if (m == NULL) {
        return;
    }
    size_t len = tessera__agent__v1__service_message__get_packed_size(m);
    uint8_t *buf = OPENSSL_malloc(len > 0 ? len : 1);
    if (buf == NULL || tessera__agent__v1__service_message__pack(m, buf) != len) {
        abort();
    }
    Tessera__Agent__V1__ServiceMessage *again =
        tessera__agent__v1__service_message__unpack(NULL, len, buf);
    if (again != NULL &&
        (again->n_requests != m->n_requests || again->done != m->done ||
         again->crl.len != m->crl.len || strcmp(again->session_id, m->session_id) != 0)) {
        abort();
    }
    tessera__agent__v1__service_message__free_unpacked(again, NULL);
    tessera__agent__v1__service_message__free_unpacked(m, NULL);
    OPENSSL_free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_agent(data, size);
    check_service(data, size);
    return 0;
}
