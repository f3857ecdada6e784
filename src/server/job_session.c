/*
 * The session side of provisioning jobs: the next requests for a device, the device's answers,
 * and its last status report (include/tessera/jobs.h).
 */
#include <string.h>

#include <openssl/crypto.h>

#include "common/error_internal.h"
#include "server/server_internal.h"
#include "tessera/jobs.h"

ts_err ts_ca_job_next(ts_ca *ca, const char *tenant, const char *device_uid,
                      ts_job_request_row **reqs, size_t *count)
{
    ts_tenant_row t;
    ts_job_row *jobs = NULL;
    size_t njobs = 0;

    if (ca == NULL || reqs == NULL || count == NULL) {
        return ts_error_set(TS_ERR_INVALID, "ts_ca_job_next: missing argument");
    }
    *reqs = NULL;
    *count = 0;
    ts_err rv = ts_device_uid_check(device_uid);
    if (rv == TS_OK) {
        rv = ts_ca_tenant(ca, tenant, &t);
    }
    if (rv == TS_OK) {
        rv = ts_store_begin(ca->store);
    }
    if (rv != TS_OK) {
        return rv;
    }
    rv = ts_store_job_list(ca->store, t.id, device_uid, 1, 1, &jobs, &njobs);
    if (rv == TS_OK && njobs == 1) {
        rv = ts_store_job_mark_sent(ca->store, jobs[0].id, time(NULL));
        if (rv == TS_OK) {
            rv = ts_store_job_requests(ca->store, jobs[0].id, 1, reqs, count);
        }
    }
    OPENSSL_free(jobs);
    if (rv == TS_OK) {
        rv = ts_store_commit(ca->store);
    } else {
        ts_store_rollback(ca->store);
    }
    if (rv != TS_OK) {
        ts_job_requests_free(*reqs, *count);
        *reqs = NULL;
        *count = 0;
    }
    return rv;
}

ts_err srv_answer_check(int64_t id, int ok, const char *code, const char *message)
{
    if (id <= 0) {
        return ts_error_set(TS_ERR_INVALID, "a result names no request");
    }
    if (!ok && (code == NULL || code[0] == '\0')) {
        return ts_error_set(TS_ERR_INVALID, "the failed result for request %lld has no error code",
                            (long long)id);
    }
    if (code != NULL && strlen(code) > TS_JOB_CODE_MAX) {
        return ts_error_set(TS_ERR_INVALID, "an error code is at most %d characters",
                            TS_JOB_CODE_MAX);
    }
    if (message != NULL && strlen(message) > TS_JOB_MESSAGE_MAX) {
        return ts_error_set(TS_ERR_INVALID, "an error message is at most %d characters",
                            TS_JOB_MESSAGE_MAX);
    }
    return TS_OK;
}

ts_err srv_job_answer_check(const ts_job_answer *a)
{
    ts_err rv = srv_answer_check(a->request_id, a->ok, a->error_code, a->error_message);
    if (rv == TS_OK && a->payload_len > TS_JOB_PAYLOAD_MAX) {
        return ts_error_set(TS_ERR_INVALID, "a result's payload is at most %d bytes",
                            TS_JOB_PAYLOAD_MAX);
    }
    return rv;
}

ts_err srv_job_answers_record(ts_ca *ca, const ts_tenant_row *t, const char *device_uid,
                              const ts_job_answer *answers, size_t count, time_t now)
{
    ts_err rv = TS_OK;
    for (size_t i = 0; rv == TS_OK && i < count; i++) {
        int64_t job_id = 0;
        ts_job_state state = TS_JOB_PENDING;
        rv = ts_store_job_answer(ca->store, t->id, device_uid, &answers[i], now, &job_id);
        if (rv == TS_OK) {
            rv = ts_store_job_settle(ca->store, job_id, now, &state);
        }
        if (rv == TS_OK && state != TS_JOB_PENDING) {
            char object[32];
            snprintf(object, sizeof object, "%lld", (long long)job_id);
            rv = srv_audit(ca, state == TS_JOB_DONE ? "job.done" : "job.failed", object,
                           srv_json("{s:s, s:s, s:s}", "tenant", t->name, "device", device_uid,
                                    "state", ts_job_state_name(state)));
        }
    }
    return rv;
}

ts_err ts_ca_job_session_record(ts_ca *ca, const char *tenant, const char *device_uid,
                                const char *status_json, const ts_job_answer *answers, size_t count)
{
    ts_tenant_row t;
    if (ca == NULL || (answers == NULL && count > 0)) {
        return ts_error_set(TS_ERR_INVALID, "ts_ca_job_session_record: missing argument");
    }
    ts_err rv = ts_device_uid_check(device_uid);
    for (size_t i = 0; rv == TS_OK && i < count; i++) {
        rv = srv_job_answer_check(&answers[i]);
    }
    if (rv == TS_OK) {
        rv = ts_ca_tenant(ca, tenant, &t);
    }
    if (rv != TS_OK || (count == 0 && status_json == NULL)) {
        return rv;
    }
    rv = ts_store_begin(ca->store);
    if (rv != TS_OK) {
        return rv;
    }
    time_t now = time(NULL);
    /* The answers first: a refused one leaves the stored report as it was. */
    rv = srv_job_answers_record(ca, &t, device_uid, answers, count, now);
    if (rv == TS_OK && status_json != NULL) {
        rv = ts_store_device_status_put(ca->store, t.id, device_uid, status_json, now);
    }
    if (rv == TS_OK) {
        rv = ts_store_commit(ca->store);
    } else {
        ts_store_rollback(ca->store);
    }
    return rv;
}

ts_err ts_ca_job_answer(ts_ca *ca, const char *tenant, const char *device_uid,
                        const ts_job_answer *answers, size_t count)
{
    if (ca == NULL || (answers == NULL && count > 0)) {
        return ts_error_set(TS_ERR_INVALID, "ts_ca_job_answer: missing argument");
    }
    return ts_ca_job_session_record(ca, tenant, device_uid, NULL, answers, count);
}

ts_err ts_ca_device_status_put(ts_ca *ca, const char *tenant, const char *device_uid,
                               const char *json)
{
    ts_tenant_row t;
    if (ca == NULL || json == NULL) {
        return ts_error_set(TS_ERR_INVALID, "ts_ca_device_status_put: missing argument");
    }
    ts_err rv = ts_device_uid_check(device_uid);
    if (rv == TS_OK) {
        rv = ts_ca_tenant(ca, tenant, &t);
    }
    if (rv == TS_OK) {
        rv = ts_store_begin(ca->store);
    }
    if (rv != TS_OK) {
        return rv;
    }
    rv = ts_store_device_status_put(ca->store, t.id, device_uid, json, time(NULL));
    if (rv == TS_OK) {
        rv = ts_store_commit(ca->store);
    } else {
        ts_store_rollback(ca->store);
    }
    return rv;
}

ts_err ts_ca_device_status_get(ts_ca *ca, const char *tenant, const char *device_uid, char **json,
                               time_t *received)
{
    ts_tenant_row t;
    if (ca == NULL) {
        return ts_error_set(TS_ERR_INVALID, "ts_ca_device_status_get: missing argument");
    }
    ts_err rv = ts_device_uid_check(device_uid);
    if (rv == TS_OK) {
        rv = ts_ca_tenant(ca, tenant, &t);
    }
    return rv != TS_OK ? rv
                       : ts_store_device_status_get(ca->store, t.id, device_uid, json, received);
}
