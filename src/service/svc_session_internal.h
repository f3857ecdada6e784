/*
 * The provisioning session route and the job and device-status routes of the REST API
 * (docs/protocol.md, docs/api.md).
 */
#ifndef TS_SVC_SESSION_INTERNAL_H
#define TS_SVC_SESSION_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "agent_session.pb-c.h"
#include "service/svc_internal.h"
#include "tessera/firmware.h"
#include "tessera/jobs.h"

enum {
    SVC_SESSION_VERSION = 1,            /* the protocol version this service speaks */
    SVC_SESSION_BODY_MAX = 1024 * 1024, /* bytes of an AgentMessage */
    SVC_SESSION_RESULTS_MAX = 64,       /* results in one message */
    SVC_SESSION_TEXT_MAX = 64,          /* uid, versions, labels, names */
    SVC_SESSION_OBJECTS_MAX = 256,      /* key-store objects in a report */
    SVC_SESSION_FEATURES_MAX = 32,      /* key-store features in a report */
    SVC_SESSION_ERRORS_MAX = 16,        /* last errors in a report */
    SVC_SESSION_ID_BYTES = 16,          /* random bytes of a session id */
};

/* POST /agent/v1/session */
void svc_session_post(svc_request *r);

/*
 * The device UID of the request's client certificate: its one CN, which must be a device UID.
 * 0 after replying 401 when it is not.
 */
int svc_session_client_uid(svc_request *r, char uid[TS_DEVICE_UID_MAX + 1]);

/*
 * The firmware offer for the device, when there is one (svc_session_offer.c): *data set (the
 * JSON of req->data, OPENSSL_free) and req filled as AGENT / FW_UPDATE; *data NULL when none.
 */
ts_err svc_session_offer(svc_request *r, const char *tenant, const char *uid,
                         Tessera__Agent__V1__Request *req, char **data);

/*
 * Unpacks and checks an AgentMessage against the limits of docs/protocol.md: TS_ERR_INVALID
 * naming the first thing wrong. On success free *out with
 * tessera__agent__v1__agent_message__free_unpacked(*out, NULL).
 */
ts_err svc_session_decode(const uint8_t *body, size_t len, Tessera__Agent__V1__AgentMessage **out);

/* The status report as JSON text (OPENSSL_free). */
ts_err svc_session_status_json(const Tessera__Agent__V1__StatusReport *s, char **out);

/* REST (svc_session_api.c) */
void svc_session_job_list(svc_request *r);
void svc_session_job_create(svc_request *r);
void svc_session_job_get(svc_request *r);
void svc_session_device_status(svc_request *r);

#endif
