/* The session's messages on the wire (agent_session_wire.c; proto/agent_session.proto). */
#ifndef TS_AGENT_AGENT_SESSION_WIRE_H
#define TS_AGENT_AGENT_SESSION_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "agent/agent_session_internal.h"
#include "agent_session.pb-c.h"

enum {
    SESS_PROTOCOL_VERSION = 1,
    SESS_REQUESTS_MAX = 64, /* requests in one ServiceMessage: each needs a result (64 a message) */
    SESS_ID_MAX = 128,      /* characters of a session id */
};

/* The error_code a refusal carries: "replay", "foreign", "auth", "not_found", ... */
const char *sess_wire_code(ts_err code);

/*
 * A decoded Request as a sess_request (borrowing from r); *entries (OPENSSL_free) holds the
 * DS_PUT entries. TS_ERR_UNSUPPORTED for an operation unknown or sent to the wrong endpoint.
 */
TS_MUST_CHECK ts_err sess_wire_request(const Tessera__Agent__V1__Request *r, sess_request *out,
                                       sess_entry **entries);

/* Packs an AgentMessage (report may be NULL) into *out (OPENSSL_free). */
TS_MUST_CHECK ts_err sess_wire_agent_message(const char *session_id, const sess_report *report,
                                             const sess_result *results, size_t result_count,
                                             uint8_t **out, size_t *out_len);

/* Unpacks and checks a ServiceMessage (version, counts, sizes). */
TS_MUST_CHECK ts_err sess_wire_service_message(const uint8_t *data, size_t len,
                                               Tessera__Agent__V1__ServiceMessage **out);
void sess_wire_service_message_free(Tessera__Agent__V1__ServiceMessage *m);

#endif
