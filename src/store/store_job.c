/*
 * Provisioning jobs and their requests (include/tessera/jobs.h). A request is answered once: the
 * UPDATE that records an answer names the device and requires the request to be unanswered and
 * its job pending, so an answer for another device's request, or a second one, changes nothing.
 */
#include <string.h>

#include <openssl/crypto.h>

#include "common/error_internal.h"
#include "store/store_access_internal.h"
#include "tessera/jobs.h"

/* The last column: whether a REENROLL job asks for a new key (its request's label); the
 * subquery finds the job's requests through the UNIQUE (job_id, seq) index. Operation 10 is
 * TS_JOB_OP_REENROLL, which SQL text cannot name. */
_Static_assert(TS_JOB_OP_REENROLL == 10, "JOB_COLUMNS names TS_JOB_OP_REENROLL as 10");
#define JOB_COLUMNS                                                                                \
    "id, tenant_id, device_uid, kind, state, actor, created, updated, (SELECT COUNT(*) FROM "      \
    "job_requests r WHERE r.job_id = jobs.id AND r.operation = 10 AND r.label = "                  \
    "'" TS_JOB_REKEY_LABEL "')"
#define JOB_REQ_COLUMNS                                                                            \
    "id, job_id, seq, endpoint, operation, label, data, state, error_code, error_message, "        \
    "payload, sent, answered"

typedef struct job_list {
    ts_job_row *rows;
    size_t count, cap;
} job_list;

typedef struct req_list {
    ts_job_request_row *rows;
    size_t count, cap;
} req_list;

static ts_err get_small(const ts_sql_row *row, size_t col, const char *what, int lo, int hi,
                        int *out)
{
    int64_t v = 0;
    ts_err rv = ts_sql_get_int(row, col, what, &v);
    if (rv == TS_OK && (v < lo || v > hi)) {
        rv = ts_error_set(TS_ERR_CORRUPT, "%s is %lld, not %d to %d", what, (long long)v, lo, hi);
    }
    *out = (int)v;
    return rv;
}

/* A BLOB column that may be NULL (an empty value). */
static ts_err get_opt_blob(const ts_sql_row *row, size_t col, const char *what, size_t max,
                           uint8_t **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    if (ts_sql_is_null(row, col)) {
        return TS_OK;
    }
    return ts_sql_get_blob_dup(row, col, what, max, out, len);
}

static ts_err job_row(void *ctx, const ts_sql_row *row)
{
    job_list *l = ctx;
    int kind = 0, state = 0;
    ts_err rv = ts_array_reserve((void **)&l->rows, sizeof *l->rows, &l->cap, l->count + 1);
    if (rv != TS_OK) {
        return rv;
    }
    ts_job_row *j = &l->rows[l->count];
    memset(j, 0, sizeof *j);
    rv = ts_sql_get_int(row, 0, "jobs.id", &j->id);
    if (rv == TS_OK) {
        rv = ts_sql_get_int(row, 1, "jobs.tenant_id", &j->tenant_id);
    }
    if (rv == TS_OK) {
        rv = ts_sql_get_text(row, 2, "jobs.device_uid", j->device_uid, sizeof j->device_uid);
    }
    if (rv == TS_OK) {
        rv = get_small(row, 3, "jobs.kind", TS_JOB_SET, TS_JOB_REENROLL, &kind);
    }
    if (rv == TS_OK) {
        rv = get_small(row, 4, "jobs.state", TS_JOB_PENDING, TS_JOB_FAILED, &state);
    }
    if (rv == TS_OK) {
        rv = ts_sql_get_text(row, 5, "jobs.actor", j->actor, sizeof j->actor);
    }
    if (rv == TS_OK) {
        rv = ts_sql_get_time(row, 6, "jobs.created", &j->created);
    }
    if (rv == TS_OK) {
        rv = ts_sql_get_time(row, 7, "jobs.updated", &j->updated);
    }
    if (rv == TS_OK) {
        rv = get_small(row, 8, "jobs.rekey", 0, 1, &j->rekey);
    }
    j->kind = (ts_job_kind)kind;
    j->state = (ts_job_state)state;
    if (rv == TS_OK) {
        l->count++;
    }
    return rv;
}

static ts_err req_row(void *ctx, const ts_sql_row *row)
{
    req_list *l = ctx;
    int ep = 0, op = 0, state = 0, seq = 0;
    ts_err rv = ts_array_reserve((void **)&l->rows, sizeof *l->rows, &l->cap, l->count + 1);
    if (rv != TS_OK) {
        return rv;
    }
    ts_job_request_row *q = &l->rows[l->count];
    memset(q, 0, sizeof *q);
    /* Counted now so that a failure below still frees what was copied. */
    l->count++;
    rv = ts_sql_get_int(row, 0, "job_requests.id", &q->id);
    if (rv == TS_OK) {
        rv = ts_sql_get_int(row, 1, "job_requests.job_id", &q->job_id);
    }
    if (rv == TS_OK) {
        rv = get_small(row, 2, "job_requests.seq", 1, 1000, &seq);
    }
    if (rv == TS_OK) {
        rv = get_small(row, 3, "job_requests.endpoint", TS_JOB_EP_KEYSTORE, TS_JOB_EP_AGENT, &ep);
    }
    if (rv == TS_OK) {
        rv = get_small(row, 4, "job_requests.operation", TS_JOB_OP_IMPORT, TS_JOB_OP_REPORT, &op);
    }
    if (rv == TS_OK) {
        rv = ts_sql_get_text(row, 5, "job_requests.label", q->label, sizeof q->label);
    }
    if (rv == TS_OK) {
        rv = get_opt_blob(row, 6, "job_requests.data", TS_JOB_DATA_MAX, &q->data, &q->data_len);
    }
    if (rv == TS_OK) {
        rv = get_small(row, 7, "job_requests.state", TS_JOB_PENDING, TS_JOB_FAILED, &state);
    }
    if (rv == TS_OK) {
        rv =
            ts_sql_get_text(row, 8, "job_requests.error_code", q->error_code, sizeof q->error_code);
    }
    if (rv == TS_OK) {
        rv = ts_sql_get_text(row, 9, "job_requests.error_message", q->error_message,
                             sizeof q->error_message);
    }
    if (rv == TS_OK) {
        rv = get_opt_blob(row, 10, "job_requests.payload", TS_JOB_PAYLOAD_MAX, &q->payload,
                          &q->payload_len);
    }
    if (rv == TS_OK) {
        rv = ts_sql_get_time(row, 11, "job_requests.sent", &q->sent);
    }
    if (rv == TS_OK) {
        rv = ts_sql_get_time(row, 12, "job_requests.answered", &q->answered);
    }
    q->seq = seq;
    q->endpoint = (ts_job_endpoint)ep;
    q->operation = (ts_job_op)op;
    q->state = (ts_job_state)state;
    return rv;
}

void ts_job_requests_free(ts_job_request_row *reqs, size_t count)
{
    if (reqs == NULL) {
        return;
    }
    for (size_t i = 0; i < count; i++) {
        OPENSSL_clear_free(reqs[i].data, reqs[i].data_len);
        OPENSSL_free(reqs[i].payload);
    }
    OPENSSL_free(reqs);
}

static ts_sql_value opt_blob(const uint8_t *p, size_t len)
{
    return len == 0 ? ts_sql_null() : ts_sql_blob(p, len);
}

ts_err ts_store_job_insert(ts_store *store, ts_job_row *job, ts_job_request_row *reqs, size_t count)
{
    int64_t id = 0;
    if (store == NULL || job == NULL || reqs == NULL || count == 0) {
        return ts_error_set(TS_ERR_INVALID, "ts_store_job_insert: missing argument");
    }
    ts_err rv = ts_store_need_tx(store, "ts_store_job_insert");
    if (rv != TS_OK) {
        return rv;
    }
    time_t now = job->created != 0 ? job->created : time(NULL);
    ts_sql_value p[] = {ts_sql_int(job->tenant_id), ts_sql_text(job->device_uid),
                        ts_sql_int(job->kind), ts_sql_text(job->actor), ts_sql_int(now)};
    rv = ts_store_write_query(store,
                              "INSERT INTO jobs (tenant_id, device_uid, kind, state, actor, "
                              "created, updated) VALUES ($1, $2, $3, 1, $4, $5, $5) RETURNING id",
                              p, 5, ts_store_new_id, &id);
    if (rv == TS_OK && id == 0) {
        rv = ts_error_set(TS_ERR_STORE, "the new job got no id");
    }
    for (size_t i = 0; rv == TS_OK && i < count; i++) {
        int64_t rid = 0;
        ts_sql_value q[] = {ts_sql_int(id),
                            ts_sql_int((int64_t)i + 1),
                            ts_sql_int(reqs[i].endpoint),
                            ts_sql_int(reqs[i].operation),
                            ts_sql_text(reqs[i].label),
                            opt_blob(reqs[i].data, reqs[i].data_len)};
        rv = ts_store_write_query(store,
                                  "INSERT INTO job_requests (job_id, seq, endpoint, operation, "
                                  "label, data, state, error_code, error_message, sent, answered) "
                                  "VALUES ($1, $2, $3, $4, $5, $6, 1, '', '', 0, 0) RETURNING id",
                                  q, 6, ts_store_new_id, &rid);
        reqs[i].id = rid;
        reqs[i].job_id = id;
        reqs[i].seq = (int)i + 1;
        reqs[i].state = TS_JOB_PENDING;
    }
    if (rv != TS_OK) {
        return ts_error_prefix(rv, "storing a job for device '%s'", job->device_uid);
    }
    job->id = id;
    job->state = TS_JOB_PENDING;
    job->created = now;
    job->updated = now;
    return TS_OK;
}

ts_err ts_store_job_list(ts_store *store, int64_t tenant_id, const char *device_uid,
                         int pending_only, size_t limit, ts_job_row **rows, size_t *count)
{
    job_list l = {0};
    if (store == NULL || rows == NULL || count == NULL) {
        return ts_error_set(TS_ERR_INVALID, "ts_store_job_list: missing argument");
    }
    *rows = NULL;
    *count = 0;
    ts_sql_value p[] = {ts_sql_int(tenant_id), ts_sql_text(device_uid != NULL ? device_uid : ""),
                        ts_sql_int(pending_only ? 1 : 0), ts_sql_int(limit == 0 ? 100 : limit)};
    /* Pending jobs of a device come oldest first (the order they run in); lists newest first. */
    ts_err rv =
        ts_store_read(store,
                      pending_only ? "SELECT " JOB_COLUMNS " FROM jobs WHERE tenant_id = $1 "
                                     "AND ($2 = '' OR device_uid = $2) AND ($3 = 0 OR "
                                     "state = 1) ORDER BY id ASC LIMIT $4"
                                   : "SELECT " JOB_COLUMNS " FROM jobs WHERE tenant_id = $1 "
                                     "AND ($2 = '' OR device_uid = $2) AND ($3 = 0 OR "
                                     "state = 1) ORDER BY id DESC LIMIT $4",
                      p, 4, job_row, &l);
    if (rv != TS_OK) {
        OPENSSL_free(l.rows);
        return ts_error_prefix(rv, "listing jobs");
    }
    *rows = l.rows;
    *count = l.count;
    return TS_OK;
}

ts_err ts_store_job_get(ts_store *store, int64_t tenant_id, int64_t id, ts_job_row *job)
{
    job_list l = {0};
    if (store == NULL || job == NULL) {
        return ts_error_set(TS_ERR_INVALID, "ts_store_job_get: missing argument");
    }
    ts_sql_value p[] = {ts_sql_int(tenant_id), ts_sql_int(id)};
    ts_err rv =
        ts_store_read(store, "SELECT " JOB_COLUMNS " FROM jobs WHERE tenant_id = $1 AND id = $2", p,
                      2, job_row, &l);
    if (rv == TS_OK && l.count != 1) {
        rv = ts_error_set(TS_ERR_NOT_FOUND, "no job %lld in this tenant", (long long)id);
    }
    if (rv == TS_OK) {
        *job = l.rows[0];
    }
    OPENSSL_free(l.rows);
    return rv;
}

ts_err ts_store_job_requests(ts_store *store, int64_t job_id, int unanswered_only,
                             ts_job_request_row **reqs, size_t *count)
{
    req_list l = {0};
    if (store == NULL || reqs == NULL || count == NULL) {
        return ts_error_set(TS_ERR_INVALID, "ts_store_job_requests: missing argument");
    }
    *reqs = NULL;
    *count = 0;
    ts_sql_value p[] = {ts_sql_int(job_id), ts_sql_int(unanswered_only ? 1 : 0)};
    ts_err rv = ts_store_read(store,
                              "SELECT " JOB_REQ_COLUMNS " FROM job_requests WHERE job_id = $1 "
                              "AND ($2 = 0 OR state = 1) ORDER BY seq",
                              p, 2, req_row, &l);
    if (rv != TS_OK) {
        ts_job_requests_free(l.rows, l.count);
        return ts_error_prefix(rv, "reading the requests of job %lld", (long long)job_id);
    }
    *reqs = l.rows;
    *count = l.count;
    return TS_OK;
}

ts_err ts_store_job_mark_sent(ts_store *store, int64_t job_id, time_t now)
{
    ts_err rv = ts_store_need_tx(store, "ts_store_job_mark_sent");
    if (rv != TS_OK) {
        return rv;
    }
    ts_sql_value p[] = {ts_sql_int(job_id), ts_sql_int(now)};
    return ts_store_write(
        store, "UPDATE job_requests SET sent = $2 WHERE job_id = $1 AND state = 1", p, 2, NULL);
}

ts_err ts_store_job_answer(ts_store *store, int64_t tenant_id, const char *device_uid,
                           const ts_job_answer *a, time_t now, int64_t *job_id)
{
    int64_t found = 0;
    if (store == NULL || device_uid == NULL || a == NULL || job_id == NULL) {
        return ts_error_set(TS_ERR_INVALID, "ts_store_job_answer: missing argument");
    }
    ts_err rv = ts_store_need_tx(store, "ts_store_job_answer");
    if (rv != TS_OK) {
        return rv;
    }
    ts_sql_value p[] = {ts_sql_int(a->request_id),
                        ts_sql_int(tenant_id),
                        ts_sql_text(device_uid),
                        ts_sql_int(a->ok ? TS_JOB_DONE : TS_JOB_FAILED),
                        ts_sql_text(a->ok || a->error_code == NULL ? "" : a->error_code),
                        ts_sql_text(a->ok || a->error_message == NULL ? "" : a->error_message),
                        opt_blob(a->payload, a->payload_len),
                        ts_sql_int(now)};
    /* The request must be unanswered and sent, and its job pending and this device's. */
    rv = ts_store_write_query(store,
                              "UPDATE job_requests SET state = $4, error_code = $5, "
                              "error_message = $6, payload = $7, answered = $8 "
                              "WHERE id = $1 AND state = 1 AND sent > 0 AND job_id IN "
                              "(SELECT id FROM jobs WHERE tenant_id = $2 AND device_uid = $3 "
                              "AND state = 1) RETURNING job_id",
                              p, 8, ts_store_new_id, &found);
    if (rv != TS_OK) {
        return ts_error_prefix(rv, "recording the answer to request %lld",
                               (long long)a->request_id);
    }
    if (found == 0) {
        return ts_error_set(TS_ERR_NOT_FOUND,
                            "request %lld is not an open request sent to device '%s'",
                            (long long)a->request_id, device_uid);
    }
    *job_id = found;
    return TS_OK;
}

ts_err ts_store_job_settle(ts_store *store, int64_t job_id, time_t now, ts_job_state *state)
{
    int64_t open = 0, failed = 0;
    ts_sql_value p[] = {ts_sql_int(job_id)};
    ts_err rv = ts_store_need_tx(store, "ts_store_job_settle");
    if (rv == TS_OK) {
        rv = ts_store_read(store,
                           "SELECT COUNT(*) FROM job_requests WHERE job_id = $1 AND state = 1", p,
                           1, ts_sql_one_int, &open);
    }
    if (rv == TS_OK) {
        rv = ts_store_read(store,
                           "SELECT COUNT(*) FROM job_requests WHERE job_id = $1 AND state = 3", p,
                           1, ts_sql_one_int, &failed);
    }
    if (rv != TS_OK) {
        return rv;
    }
    if (open > 0) {
        *state = TS_JOB_PENDING;
        return TS_OK;
    }
    *state = failed > 0 ? TS_JOB_FAILED : TS_JOB_DONE;
    ts_sql_value u[] = {ts_sql_int(job_id), ts_sql_int(*state), ts_sql_int(now)};
    return ts_store_write(store, "UPDATE jobs SET state = $2, updated = $3 WHERE id = $1", u, 3,
                          NULL);
}

ts_err ts_store_device_status_put(ts_store *store, int64_t tenant_id, const char *device_uid,
                                  const char *json, time_t now)
{
    ts_err rv = ts_check_text(json, TS_JOB_STATUS_MAX, 1, "a device status report");
    if (rv == TS_OK) {
        rv = ts_store_need_tx(store, "ts_store_device_status_put");
    }
    if (rv != TS_OK) {
        return rv;
    }
    ts_sql_value p[] = {ts_sql_int(tenant_id), ts_sql_text(device_uid), ts_sql_text(json),
                        ts_sql_int(now)};
    rv = ts_store_write(store,
                        "INSERT INTO device_status (tenant_id, device_uid, report, received) "
                        "VALUES ($1, $2, $3, $4) ON CONFLICT (tenant_id, device_uid) DO UPDATE "
                        "SET report = excluded.report, received = excluded.received",
                        p, 4, NULL);
    return rv != TS_OK ? ts_error_prefix(rv, "storing the status of device '%s'", device_uid)
                       : TS_OK;
}

typedef struct status_out {
    char *json;
    time_t received;
    int found;
} status_out;

static ts_err status_row(void *ctx, const ts_sql_row *row)
{
    status_out *o = ctx;
    if (o->found) {
        return ts_error_set(TS_ERR_CORRUPT, "two status reports for one device");
    }
    ts_err rv = ts_sql_get_text_dup(row, 0, "device_status.report", TS_JOB_STATUS_MAX, &o->json);
    if (rv == TS_OK) {
        rv = ts_sql_get_time(row, 1, "device_status.received", &o->received);
    }
    o->found = 1;
    return rv;
}

ts_err ts_store_device_status_get(ts_store *store, int64_t tenant_id, const char *device_uid,
                                  char **json, time_t *received)
{
    status_out o = {0};
    if (store == NULL || device_uid == NULL || json == NULL) {
        return ts_error_set(TS_ERR_INVALID, "ts_store_device_status_get: missing argument");
    }
    *json = NULL;
    ts_sql_value p[] = {ts_sql_int(tenant_id), ts_sql_text(device_uid)};
    ts_err rv = ts_store_read(store,
                              "SELECT report, received FROM device_status WHERE tenant_id = $1 "
                              "AND device_uid = $2",
                              p, 2, status_row, &o);
    if (rv == TS_OK && !o.found) {
        rv = ts_error_set(TS_ERR_NOT_FOUND, "device '%s' has not reported its status", device_uid);
    }
    if (rv != TS_OK) {
        OPENSSL_free(o.json);
        return rv;
    }
    *json = o.json;
    if (received != NULL) {
        *received = o.received;
    }
    return TS_OK;
}
