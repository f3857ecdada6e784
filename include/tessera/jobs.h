/*
 * Provisioning jobs: work an operator queues for one device, carried out by the device's agent in
 * its next provisioning session (docs/protocol.md), and the last status report of each device.
 *
 * A job is a list of requests (endpoint, operation, label, data) that the service sends together
 * and the agent answers one by one. A job is pending until every request has an answer, then done
 * when all succeeded and failed when one did not. Creating a job and finishing one are audited
 * ("job.create", "job.done", "job.failed").
 *
 * Endpoint and operation numbers are those of proto/agent_session.proto.
 *
 * Thread safety: like ts_ca, a handle belongs to one thread at a time.
 */
#ifndef TESSERA_JOBS_H
#define TESSERA_JOBS_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "tessera/access.h"
#include "tessera/ca.h"
#include "tessera/error.h"
#include "tessera/export.h"
#include "tessera/store.h"

enum {
    TS_JOB_LABEL_MAX = 64,          /* characters of a label or datastore entry name */
    TS_JOB_DATA_MAX = 64 * 1024,    /* bytes of one request's data */
    TS_JOB_SETS_MAX = 32,           /* KEY=VALUE pairs of one configuration job */
    TS_JOB_CODE_MAX = 32,           /* characters of a result's error code */
    TS_JOB_MESSAGE_MAX = 512,       /* characters of a result's error message */
    TS_JOB_PAYLOAD_MAX = 64 * 1024, /* bytes of a result's payload */
    TS_JOB_STATUS_MAX = 256 * 1024, /* bytes of a stored status report (JSON) */
    TS_JOB_ACTOR_MAX = 128,         /* characters of who created a job */
    TS_JOB_BATCH_MAX = 16,          /* requests handed to a session at once */
};

/* The endpoints and operations of proto/agent_session.proto. */
typedef enum ts_job_endpoint {
    TS_JOB_EP_KEYSTORE = 1,
    TS_JOB_EP_DATASTORE = 2,
    TS_JOB_EP_AGENT = 3,
} ts_job_endpoint;

typedef enum ts_job_op {
    TS_JOB_OP_IMPORT = 1,
    TS_JOB_OP_PUT_OBJECT = 2,
    TS_JOB_OP_DELETE_OBJECT = 3,
    TS_JOB_OP_GENKEY_CSR = 4,
    TS_JOB_OP_READ_PUBLIC = 5,
    TS_JOB_OP_DS_READ = 6,
    TS_JOB_OP_DS_BEGIN = 7,
    TS_JOB_OP_DS_PUT = 8,
    TS_JOB_OP_DS_COMMIT = 9,
    TS_JOB_OP_REENROLL = 10,
    TS_JOB_OP_REPORT = 11,
} ts_job_op;

/* What a job does (tessera job create). */
typedef enum ts_job_kind {
    TS_JOB_SET = 1,          /* set datastore entries: keys[i] = values[i] (TEXT) */
    TS_JOB_IMPORT = 2,       /* import a sealed blob (docs/import.md) as label */
    TS_JOB_ROTATE_TRUST = 3, /* set trust.roots to the PEM in data */
    TS_JOB_REENROLL = 4,     /* re-enroll now; with rekey, certify a new key */
} ts_job_kind;

/* The label of a REENROLL request that asks for a new key (Request.rekey on the wire). */
#define TS_JOB_REKEY_LABEL "rekey"

typedef enum ts_job_state {
    TS_JOB_PENDING = 1,
    TS_JOB_DONE = 2,
    TS_JOB_FAILED = 3,
} ts_job_state;

typedef struct ts_job_row {
    int64_t id;
    int64_t tenant_id;
    char device_uid[TS_DEVICE_UID_MAX + 1];
    ts_job_kind kind;
    ts_job_state state;
    char actor[TS_JOB_ACTOR_MAX + 1];
    time_t created;
    time_t updated;
    int rekey; /* TS_JOB_REENROLL: a new key is asked for */
} ts_job_row;

/* One request of a job. data and payload are OPENSSL_malloc'd (NULL when empty). */
typedef struct ts_job_request_row {
    int64_t id;
    int64_t job_id;
    int seq; /* order within the job, from 1 */
    ts_job_endpoint endpoint;
    ts_job_op operation;
    char label[TS_JOB_LABEL_MAX + 1]; /* DS_PUT: the entry's name */
    uint8_t *data;                    /* IMPORT: the blob; DS_PUT: the value */
    size_t data_len;
    ts_job_state state; /* PENDING until answered, then DONE (ok) or FAILED */
    char error_code[TS_JOB_CODE_MAX + 1];
    char error_message[TS_JOB_MESSAGE_MAX + 1];
    uint8_t *payload;
    size_t payload_len;
    time_t sent;     /* last handed to a session; 0: never */
    time_t answered; /* 0: not yet */
} ts_job_request_row;

/* A job to create. */
typedef struct ts_job_spec {
    const char *tenant;     /* NULL: the default tenant */
    const char *device_uid; /* ts_device_uid_check */
    ts_job_kind kind;
    const char *const *keys; /* TS_JOB_SET: entry names ([a-z][a-z0-9._-]*), count of them */
    const char *const *values;
    size_t count;
    const char *label;   /* TS_JOB_IMPORT: the key-store label */
    const uint8_t *data; /* TS_JOB_IMPORT: the blob; TS_JOB_ROTATE_TRUST: PEM certificates */
    size_t data_len;
    const char *actor; /* who asks (audit); NULL: the instance's actor */
    int rekey;         /* TS_JOB_REENROLL: with a new key (the old certificate is superseded) */
} ts_job_spec;

/* The answer to one request, from a session. */
typedef struct ts_job_answer {
    int64_t request_id;
    int ok;
    const char *error_code; /* when !ok */
    const char *error_message;
    const uint8_t *payload;
    size_t payload_len;
} ts_job_answer;

TS_API const char *ts_job_kind_name(ts_job_kind kind);    /* "set", "import", ... */
TS_API const char *ts_job_state_name(ts_job_state state); /* "pending", "done", "failed" */
TS_API const char *ts_job_op_name(ts_job_op op);          /* "DS_PUT", ... */

/* --- CA level (src/server/job*.c) ------------------------------------------------------------- */

/* Checks and stores a job with its requests; audits "job.create". */
TS_API TS_MUST_CHECK ts_err ts_ca_job_create(ts_ca *ca, const ts_job_spec *spec, ts_job_row *out);

/*
 * The same job for every member of the tenant's device group, in one transaction: one job per
 * device (each audited "job.create" with the group), *jobs in member order (OPENSSL_free) and
 * *count their number. TS_ERR_NOT_FOUND for an unknown group and TS_ERR_STATE for an empty one;
 * then nothing is queued. spec->device_uid is not used.
 */
TS_API TS_MUST_CHECK ts_err ts_ca_job_create_group(ts_ca *ca, const ts_job_spec *spec,
                                                   const char *group, ts_job_row **jobs,
                                                   size_t *count);

/* The tenant's jobs, or (device_uid not NULL) that device's, newest first, at most limit (0:
 * 100); OPENSSL_free(*rows). */
TS_API TS_MUST_CHECK ts_err ts_ca_job_list(ts_ca *ca, const char *tenant, const char *device_uid,
                                           size_t limit, ts_job_row **rows, size_t *count);

/* One job of the tenant and its requests (ts_job_requests_free); TS_ERR_NOT_FOUND. */
TS_API TS_MUST_CHECK ts_err ts_ca_job_show(ts_ca *ca, const char *tenant, int64_t id,
                                           ts_job_row *job, ts_job_request_row **reqs,
                                           size_t *count);

TS_API void ts_job_requests_free(ts_job_request_row *reqs, size_t count);

/*
 * The unanswered requests of the device's oldest pending job, in order, marked as sent now;
 * *count 0 when the device has nothing pending.
 */
TS_API TS_MUST_CHECK ts_err ts_ca_job_next(ts_ca *ca, const char *tenant, const char *device_uid,
                                           ts_job_request_row **reqs, size_t *count);

/*
 * Records answers of the device in one transaction: each must name an unanswered request of a
 * pending job of this device (TS_ERR_NOT_FOUND otherwise, and nothing is recorded). A job whose
 * requests are all answered becomes done or failed, audited.
 */
TS_API TS_MUST_CHECK ts_err ts_ca_job_answer(ts_ca *ca, const char *tenant, const char *device_uid,
                                             const ts_job_answer *answers, size_t count);

/*
 * One session message in one transaction: the answers as ts_ca_job_answer and, when status_json
 * is not NULL, the device's last status report. When anything is refused nothing is kept: the
 * stored report stays as it was.
 */
TS_API TS_MUST_CHECK ts_err ts_ca_job_session_record(ts_ca *ca, const char *tenant,
                                                     const char *device_uid,
                                                     const char *status_json,
                                                     const ts_job_answer *answers, size_t count);

/* The device's last status report (JSON text, at most TS_JOB_STATUS_MAX bytes). */
TS_API TS_MUST_CHECK ts_err ts_ca_device_status_put(ts_ca *ca, const char *tenant,
                                                    const char *device_uid, const char *json);
/* *json OPENSSL_free'd; TS_ERR_NOT_FOUND when the device never reported. */
TS_API TS_MUST_CHECK ts_err ts_ca_device_status_get(ts_ca *ca, const char *tenant,
                                                    const char *device_uid, char **json,
                                                    time_t *received);

/* --- Store level (src/store/store_job*.c); writes need an open transaction ------------------- */

TS_API TS_MUST_CHECK ts_err ts_store_job_insert(ts_store *store, ts_job_row *job,
                                                ts_job_request_row *reqs, size_t count);
TS_API TS_MUST_CHECK ts_err ts_store_job_list(ts_store *store, int64_t tenant_id,
                                              const char *device_uid, int pending_only,
                                              size_t limit, ts_job_row **rows, size_t *count);
TS_API TS_MUST_CHECK ts_err ts_store_job_get(ts_store *store, int64_t tenant_id, int64_t id,
                                             ts_job_row *job);
TS_API TS_MUST_CHECK ts_err ts_store_job_requests(ts_store *store, int64_t job_id,
                                                  int unanswered_only, ts_job_request_row **reqs,
                                                  size_t *count);
TS_API TS_MUST_CHECK ts_err ts_store_job_mark_sent(ts_store *store, int64_t job_id, time_t now);
/* Records one answer; *job_id the request's job. TS_ERR_NOT_FOUND as ts_ca_job_answer. */
TS_API TS_MUST_CHECK ts_err ts_store_job_answer(ts_store *store, int64_t tenant_id,
                                                const char *device_uid, const ts_job_answer *a,
                                                time_t now, int64_t *job_id);
/* Sets a job done or failed when all its requests are answered; *state the job's state. */
TS_API TS_MUST_CHECK ts_err ts_store_job_settle(ts_store *store, int64_t job_id, time_t now,
                                                ts_job_state *state);
TS_API TS_MUST_CHECK ts_err ts_store_device_status_put(ts_store *store, int64_t tenant_id,
                                                       const char *device_uid, const char *json,
                                                       time_t now);
TS_API TS_MUST_CHECK ts_err ts_store_device_status_get(ts_store *store, int64_t tenant_id,
                                                       const char *device_uid, char **json,
                                                       time_t *received);

#endif
