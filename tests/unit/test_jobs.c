/*
 * Provisioning jobs at the CA level (include/tessera/jobs.h), on SQLite and PostgreSQL: the
 * requests each kind of job makes, refused jobs changing nothing, a session taking the next
 * requests and recording answers (done, failed, answers for another device or twice refused),
 * and device status reports.
 */
#define _XOPEN_SOURCE 700
#include <stdio.h>

#include "ca_test_util.h"
#include "tessera/jobs.h"

static void make_set(ts_ca *ca, const char *uid, ts_job_row *job)
{
    static const char *const keys[] = {"server.url", "mqtt.topic"};
    static const char *const values[] = {"https://svc.example.test", "fleet/a"};
    ts_job_spec spec = {
        .device_uid = uid, .kind = TS_JOB_SET, .keys = keys, .values = values, .count = 2};
    assert_err(ts_ca_job_create(ca, &spec, job), TS_OK);
}

static void create_kinds(ca_fx *fx)
{
    ts_job_row job;
    ts_job_request_row *reqs = NULL;
    size_t n = 0;
    char action[64], object[64];
    static const uint8_t blob[] = {1, 2, 3, 0, 4};
    static const char pem[] = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

    make_set(fx->ca, "dev-kinds", &job);
    assert_int_equal(job.state, TS_JOB_PENDING);
    assert_string_equal(job.actor, CA_TEST_ACTOR);
    ca_last_audit(fx->ca, 0, action, sizeof action, object, sizeof object);
    assert_string_equal(action, "job.create");
    assert_err(ts_ca_job_show(fx->ca, NULL, job.id, &job, &reqs, &n), TS_OK);
    assert_int_equal(n, 4);
    assert_int_equal(reqs[0].operation, TS_JOB_OP_DS_BEGIN);
    assert_int_equal(reqs[1].operation, TS_JOB_OP_DS_PUT);
    assert_string_equal(reqs[1].label, "server.url");
    assert_int_equal(reqs[1].data_len, strlen("https://svc.example.test"));
    assert_memory_equal(reqs[1].data, "https://svc.example.test", reqs[1].data_len);
    assert_string_equal(reqs[2].label, "mqtt.topic");
    assert_int_equal(reqs[3].operation, TS_JOB_OP_DS_COMMIT);
    assert_null(reqs[3].data);
    ts_job_requests_free(reqs, n);

    ts_job_spec imp = {.device_uid = "dev-kinds",
                       .kind = TS_JOB_IMPORT,
                       .label = "app.key",
                       .data = blob,
                       .data_len = sizeof blob};
    assert_err(ts_ca_job_create(fx->ca, &imp, &job), TS_OK);
    assert_err(ts_ca_job_show(fx->ca, NULL, job.id, &job, &reqs, &n), TS_OK);
    assert_int_equal(n, 1);
    assert_int_equal(reqs[0].endpoint, TS_JOB_EP_KEYSTORE);
    assert_int_equal(reqs[0].operation, TS_JOB_OP_IMPORT);
    assert_memory_equal(reqs[0].data, blob, sizeof blob);
    ts_job_requests_free(reqs, n);

    ts_job_spec rot = {.device_uid = "dev-kinds",
                       .kind = TS_JOB_ROTATE_TRUST,
                       .data = (const uint8_t *)pem,
                       .data_len = strlen(pem)};
    assert_err(ts_ca_job_create(fx->ca, &rot, &job), TS_OK);
    assert_err(ts_ca_job_show(fx->ca, NULL, job.id, &job, &reqs, &n), TS_OK);
    assert_int_equal(n, 3);
    assert_string_equal(reqs[1].label, "trust.roots");
    ts_job_requests_free(reqs, n);

    ts_job_spec re = {.device_uid = "dev-kinds", .kind = TS_JOB_REENROLL};
    assert_err(ts_ca_job_create(fx->ca, &re, &job), TS_OK);
    assert_int_equal(job.kind, TS_JOB_REENROLL);
    assert_int_equal(job.rekey, 0);
    assert_err(ts_ca_job_show(fx->ca, NULL, job.id, &job, &reqs, &n), TS_OK);
    assert_int_equal(n, 1);
    assert_int_equal(reqs[0].operation, TS_JOB_OP_REENROLL);
    assert_string_equal(reqs[0].label, "");
    assert_int_equal(job.rekey, 0);
    ts_job_requests_free(reqs, n);

    /* A re-enrollment with a new key: the request carries the marker, the job shows it. */
    ts_job_row rk;
    re.rekey = 1;
    assert_err(ts_ca_job_create(fx->ca, &re, &rk), TS_OK);
    assert_int_equal(rk.rekey, 1);
    int64_t rk_id = rk.id;
    memset(&rk, 0, sizeof rk);
    assert_err(ts_ca_job_show(fx->ca, NULL, rk_id, &rk, &reqs, &n), TS_OK);
    assert_int_equal(rk.kind, TS_JOB_REENROLL);
    assert_int_equal(rk.rekey, 1);
    assert_int_equal(n, 1);
    assert_int_equal(reqs[0].operation, TS_JOB_OP_REENROLL);
    assert_string_equal(reqs[0].label, TS_JOB_REKEY_LABEL);
    ts_job_requests_free(reqs, n);

    ts_job_row *rows = NULL;
    assert_err(ts_ca_job_list(fx->ca, NULL, NULL, 0, &rows, &n), TS_OK);
    assert_true(n >= 5);
    assert_int_equal(rows[0].id, rk.id); /* newest first */
    assert_int_equal(rows[0].rekey, 1);
    assert_int_equal(rows[1].id, job.id);
    assert_int_equal(rows[1].rekey, 0);
    OPENSSL_free(rows);
}

/* A device's jobs are found by the store, not picked from the tenant's newest: with a limit
 * below the tenant's count, the device's older jobs are still listed, newest first. */
static void list_by_device(ca_fx *fx)
{
    ts_job_spec a = {.device_uid = "dev-list-a", .kind = TS_JOB_REENROLL};
    ts_job_spec b = {.device_uid = "dev-list-b", .kind = TS_JOB_REENROLL};
    int64_t a_ids[2];
    ts_job_row job, *rows = NULL;
    size_t n = 0;

    for (int i = 0; i < 2; i++) {
        assert_err(ts_ca_job_create(fx->ca, &a, &job), TS_OK);
        a_ids[i] = job.id;
    }
    for (int i = 0; i < 5; i++) {
        assert_err(ts_ca_job_create(fx->ca, &b, &job), TS_OK);
    }
    /* The tenant's two newest are b's; a's two are listed all the same. */
    assert_err(ts_ca_job_list(fx->ca, NULL, NULL, 2, &rows, &n), TS_OK);
    assert_int_equal(n, 2);
    assert_string_equal(rows[0].device_uid, "dev-list-b");
    assert_string_equal(rows[1].device_uid, "dev-list-b");
    OPENSSL_free(rows);
    assert_err(ts_ca_job_list(fx->ca, NULL, "dev-list-a", 2, &rows, &n), TS_OK);
    assert_int_equal(n, 2);
    assert_int_equal(rows[0].id, a_ids[1]);
    assert_int_equal(rows[1].id, a_ids[0]);
    OPENSSL_free(rows);
    assert_err(ts_ca_job_list(fx->ca, NULL, "dev-list-b", 3, &rows, &n), TS_OK);
    assert_int_equal(n, 3);
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(rows[i].device_uid, "dev-list-b");
    }
    OPENSSL_free(rows);
    assert_err(ts_ca_job_list(fx->ca, NULL, "dev-none", 0, &rows, &n), TS_OK);
    assert_int_equal(n, 0);
    OPENSSL_free(rows);
    rows = NULL;
    assert_err(ts_ca_job_list(fx->ca, NULL, "bad/uid", 0, &rows, &n), TS_ERR_INVALID);
    assert_null(rows);
}

static void create_refused(ca_fx *fx)
{
    ca_snap before;
    ts_job_row job;
    static const char *const bad_key[] = {"Server.URL"};
    static const char *const twice[] = {"a.b", "a.b"};
    static const char *const values[] = {"x", "y"};
    static const char *const nul_value[] = {""};
    static const char pem_none[] = "not a certificate";

    ca_snap_take(fx->ca, fx->dir, &before);
    ts_job_spec s = {.device_uid = "dev ref", .kind = TS_JOB_REENROLL};
    assert_err(ts_ca_job_create(fx->ca, &s, &job), TS_ERR_INVALID);
    s = (ts_job_spec){
        .device_uid = "dev-ref", .kind = TS_JOB_SET, .keys = bad_key, .values = values, .count = 1};
    assert_err(ts_ca_job_create(fx->ca, &s, &job), TS_ERR_INVALID);
    s.keys = twice;
    s.count = 2;
    assert_err(ts_ca_job_create(fx->ca, &s, &job), TS_ERR_INVALID);
    s.count = 0;
    assert_err(ts_ca_job_create(fx->ca, &s, &job), TS_ERR_INVALID);
    s.keys = twice;
    s.values = nul_value;
    s.count = 1;
    s.tenant = "no-such-tenant";
    assert_err(ts_ca_job_create(fx->ca, &s, &job), TS_ERR_NOT_FOUND);
    s = (ts_job_spec){.device_uid = "dev-ref", .kind = TS_JOB_IMPORT, .label = "k"};
    assert_err(ts_ca_job_create(fx->ca, &s, &job), TS_ERR_INVALID);
    s = (ts_job_spec){.device_uid = "dev-ref",
                      .kind = TS_JOB_ROTATE_TRUST,
                      .data = (const uint8_t *)pem_none,
                      .data_len = strlen(pem_none)};
    assert_err(ts_ca_job_create(fx->ca, &s, &job), TS_ERR_INVALID);
    s = (ts_job_spec){.device_uid = "dev-ref", .kind = (ts_job_kind)9};
    assert_err(ts_ca_job_create(fx->ca, &s, &job), TS_ERR_INVALID);
    /* A new key goes with a re-enrollment only. */
    s = (ts_job_spec){.device_uid = "dev-ref",
                      .kind = TS_JOB_SET,
                      .keys = twice,
                      .values = values,
                      .count = 1,
                      .rekey = 1};
    assert_err(ts_ca_job_create(fx->ca, &s, &job), TS_ERR_INVALID);
    assert_string_equal(ts_error_message(), "a new key (rekey) goes with a re-enrollment job only");
    ca_snap_same(fx->ca, fx->dir, &before);

    ts_job_request_row *reqs = NULL;
    size_t n = 0;
    assert_err(ts_ca_job_show(fx->ca, NULL, 999999, &job, &reqs, &n), TS_ERR_NOT_FOUND);
}

static void session_flow(ca_fx *fx)
{
    ts_job_row set, re, shown;
    ts_job_request_row *reqs = NULL;
    size_t n = 0;
    char action[64], object[64];

    make_set(fx->ca, "dev-flow", &set);
    ts_job_spec rs = {.device_uid = "dev-flow", .kind = TS_JOB_REENROLL};
    assert_err(ts_ca_job_create(fx->ca, &rs, &re), TS_OK);

    /* Another device has nothing; this one gets its oldest job's requests. */
    assert_err(ts_ca_job_next(fx->ca, NULL, "dev-other", &reqs, &n), TS_OK);
    assert_int_equal(n, 0);
    assert_err(ts_ca_job_next(fx->ca, NULL, "dev-flow", &reqs, &n), TS_OK);
    assert_int_equal(n, 4);
    assert_int_equal(reqs[0].job_id, set.id);
    assert_true(reqs[0].sent > 0);

    ts_job_answer a[4];
    for (size_t i = 0; i < 4; i++) {
        a[i] = (ts_job_answer){.request_id = reqs[i].id, .ok = 1};
    }
    /* Answers from another device are refused and change nothing. */
    int64_t audit = ca_audit_count(fx->ca);
    assert_err(ts_ca_job_answer(fx->ca, NULL, "dev-other", a, 4), TS_ERR_NOT_FOUND);
    ts_job_answer bad = {.request_id = reqs[0].id, .ok = 0};
    assert_err(ts_ca_job_answer(fx->ca, NULL, "dev-flow", &bad, 1), TS_ERR_INVALID);
    assert_int_equal(ca_audit_count(fx->ca), audit);

    /* Three answered: still pending; the fourth settles the job. */
    assert_err(ts_ca_job_answer(fx->ca, NULL, "dev-flow", a, 3), TS_OK);
    assert_err(ts_ca_job_show(fx->ca, NULL, set.id, &shown, NULL, NULL), TS_OK);
    assert_int_equal(shown.state, TS_JOB_PENDING);
    assert_err(ts_ca_job_answer(fx->ca, NULL, "dev-flow", &a[1], 1), TS_ERR_NOT_FOUND);
    assert_err(ts_ca_job_answer(fx->ca, NULL, "dev-flow", &a[3], 1), TS_OK);
    assert_err(ts_ca_job_show(fx->ca, NULL, set.id, &shown, NULL, NULL), TS_OK);
    assert_int_equal(shown.state, TS_JOB_DONE);
    ca_last_audit(fx->ca, 0, action, sizeof action, object, sizeof object);
    assert_string_equal(action, "job.done");
    ts_job_requests_free(reqs, n);

    /* The next job fails with the device's error, kept per request. */
    assert_err(ts_ca_job_next(fx->ca, NULL, "dev-flow", &reqs, &n), TS_OK);
    assert_int_equal(n, 1);
    assert_int_equal(reqs[0].job_id, re.id);
    ts_job_answer f = {.request_id = reqs[0].id,
                       .error_code = "backend",
                       .error_message = "the EST server refused",
                       .payload = (const uint8_t *)"x",
                       .payload_len = 1};
    assert_err(ts_ca_job_answer(fx->ca, NULL, "dev-flow", &f, 1), TS_OK);
    ts_job_requests_free(reqs, n);
    assert_err(ts_ca_job_show(fx->ca, NULL, re.id, &shown, &reqs, &n), TS_OK);
    assert_int_equal(shown.state, TS_JOB_FAILED);
    assert_int_equal(reqs[0].state, TS_JOB_FAILED);
    assert_string_equal(reqs[0].error_code, "backend");
    assert_string_equal(reqs[0].error_message, "the EST server refused");
    assert_int_equal(reqs[0].payload_len, 1);
    ts_job_requests_free(reqs, n);
    ca_last_audit(fx->ca, 0, action, sizeof action, object, sizeof object);
    assert_string_equal(action, "job.failed");

    assert_err(ts_ca_job_next(fx->ca, NULL, "dev-flow", &reqs, &n), TS_OK);
    assert_int_equal(n, 0);
}

static void status(ca_fx *fx)
{
    char *json = NULL;
    time_t received = 0;

    assert_err(ts_ca_device_status_get(fx->ca, NULL, "dev-st", &json, &received), TS_ERR_NOT_FOUND);
    assert_err(ts_ca_device_status_put(fx->ca, NULL, "dev-st", "{\"a\": 1}"), TS_OK);
    assert_err(ts_ca_device_status_put(fx->ca, NULL, "dev-st", "{\"a\": 2}"), TS_OK);
    assert_err(ts_ca_device_status_get(fx->ca, NULL, "dev-st", &json, &received), TS_OK);
    assert_string_equal(json, "{\"a\": 2}");
    assert_true(received > 0);
    OPENSSL_free(json);
    assert_err(ts_ca_device_status_put(fx->ca, NULL, "dev-st", ""), TS_ERR_INVALID);
    assert_err(ts_ca_device_status_put(fx->ca, NULL, "bad uid", "{}"), TS_ERR_INVALID);
}

int main(void)
{
    static const ca_case cases[] = {
        {"create_kinds", create_kinds},
        {"create_refused", create_refused},
        {"list_by_device", list_by_device},
        {"session_flow", session_flow},
        {"status", status},
    };
    return ca_run_cases("jobs", cases, sizeof cases / sizeof cases[0]);
}
