/*
 * Provisioning jobs at the CA level (include/tessera/jobs.h): a job is checked and turned into
 * the requests docs/protocol.md lists for its kind, stored and audited; sessions take the next
 * pending requests of a device and record the device's answers.
 */
#include <string.h>

#include <openssl/crypto.h>

#include "common/error_internal.h"
#include "server/server_internal.h"
#include "tessera/jobs.h"

static const char *const KIND_NAMES[] = {"", "set", "import", "rotate-trust", "reenroll"};
static const char *const STATE_NAMES[] = {"", "pending", "done", "failed"};
static const char *const OP_NAMES[] = {"",           "IMPORT",      "PUT_OBJECT", "DELETE_OBJECT",
                                       "GENKEY_CSR", "READ_PUBLIC", "DS_READ",    "DS_BEGIN",
                                       "DS_PUT",     "DS_COMMIT",   "REENROLL",   "REPORT"};

const char *ts_job_kind_name(ts_job_kind kind)
{
    return kind >= TS_JOB_SET && kind <= TS_JOB_REENROLL ? KIND_NAMES[kind] : "unknown";
}

const char *ts_job_state_name(ts_job_state state)
{
    return state >= TS_JOB_PENDING && state <= TS_JOB_FAILED ? STATE_NAMES[state] : "unknown";
}

const char *ts_job_op_name(ts_job_op op)
{
    return op >= TS_JOB_OP_IMPORT && op <= TS_JOB_OP_REPORT ? OP_NAMES[op] : "unknown";
}

/* A datastore entry name as docs/datastore.md allows: [a-z][a-z0-9._-]{0,63}. */
static ts_err entry_name_check(const char *name)
{
    size_t n = name != NULL ? strlen(name) : 0;
    int ok = n >= 1 && n <= TS_JOB_LABEL_MAX && name[0] >= 'a' && name[0] <= 'z';
    for (size_t i = 0; ok && i < n; i++) {
        char c = name[i];
        ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
    }
    return ok ? TS_OK
              : ts_error_set(TS_ERR_INVALID,
                             "'%s' is not a datastore entry name ([a-z][a-z0-9._-], at most %d)",
                             name != NULL ? name : "", TS_JOB_LABEL_MAX);
}

/* A key-store label: 1 to TS_JOB_LABEL_MAX printable ASCII characters without spaces. */
static ts_err label_check(const char *label)
{
    size_t n = label != NULL ? strlen(label) : 0;
    int ok = n >= 1 && n <= TS_JOB_LABEL_MAX;
    for (size_t i = 0; ok && i < n; i++) {
        ok = label[i] > ' ' && label[i] < 0x7f;
    }
    return ok ? TS_OK
              : ts_error_set(TS_ERR_INVALID, "a key-store label is 1 to %d printable characters",
                             TS_JOB_LABEL_MAX);
}

/* Text without NUL and at most TS_JOB_DATA_MAX bytes. */
static ts_err value_check(const char *what, const void *p, size_t len, int nonempty)
{
    if ((len == 0 && nonempty) || len > TS_JOB_DATA_MAX) {
        return ts_error_set(TS_ERR_INVALID, "%s is %zu bytes (1 to %d)", what, len,
                            TS_JOB_DATA_MAX);
    }
    if (p != NULL && memchr(p, '\0', len) != NULL) {
        return ts_error_set(TS_ERR_INVALID, "%s holds a NUL byte", what);
    }
    return TS_OK;
}

/* Whether the bytes hold a PEM certificate header. */
static int has_pem_cert(const uint8_t *p, size_t len)
{
    static const char HEAD[] = "-----BEGIN CERTIFICATE-----";
    const size_t n = sizeof HEAD - 1;
    for (size_t i = 0; p != NULL && i + n <= len; i++) {
        if (memcmp(p + i, HEAD, n) == 0) {
            return 1;
        }
    }
    return 0;
}

static void req_set(ts_job_request_row *q, ts_job_endpoint ep, ts_job_op op, const char *label,
                    const void *data, size_t len)
{
    memset(q, 0, sizeof *q);
    q->endpoint = ep;
    q->operation = op;
    if (label != NULL) {
        strncpy(q->label, label, sizeof q->label - 1);
    }
    q->data = (uint8_t *)data; /* borrowed until stored */
    q->data_len = len;
}

/* The requests of a job (docs/protocol.md, "How jobs map to requests"); data is borrowed. */
static ts_err job_requests(const ts_job_spec *s, ts_job_request_row *reqs, size_t *count)
{
    ts_err rv = TS_OK;
    size_t n = 0;
    switch (s->kind) {
    case TS_JOB_SET:
        if (s->count == 0 || s->count > TS_JOB_SETS_MAX || s->keys == NULL || s->values == NULL) {
            return ts_error_set(TS_ERR_INVALID, "a configuration job sets 1 to %d entries",
                                TS_JOB_SETS_MAX);
        }
        req_set(&reqs[n++], TS_JOB_EP_DATASTORE, TS_JOB_OP_DS_BEGIN, NULL, NULL, 0);
        for (size_t i = 0; rv == TS_OK && i < s->count; i++) {
            rv = entry_name_check(s->keys[i]);
            size_t len = s->values[i] != NULL ? strlen(s->values[i]) : 0;
            if (rv == TS_OK) {
                rv = value_check("a configuration value", s->values[i], len, 0);
            }
            for (size_t j = 0; rv == TS_OK && j < i; j++) {
                if (strcmp(s->keys[i], s->keys[j]) == 0) {
                    rv = ts_error_set(TS_ERR_INVALID, "entry '%s' is set twice", s->keys[i]);
                }
            }
            req_set(&reqs[n++], TS_JOB_EP_DATASTORE, TS_JOB_OP_DS_PUT, s->keys[i], s->values[i],
                    len);
        }
        req_set(&reqs[n++], TS_JOB_EP_DATASTORE, TS_JOB_OP_DS_COMMIT, NULL, NULL, 0);
        break;
    case TS_JOB_IMPORT:
        rv = label_check(s->label);
        if (rv == TS_OK) {
            rv = value_check("an import blob", NULL, s->data_len, 1);
        }
        req_set(&reqs[n++], TS_JOB_EP_KEYSTORE, TS_JOB_OP_IMPORT, s->label, s->data, s->data_len);
        break;
    case TS_JOB_ROTATE_TRUST:
        rv = value_check("the trust roots", s->data, s->data_len, 1);
        if (rv == TS_OK && !has_pem_cert(s->data, s->data_len)) {
            rv = ts_error_set(TS_ERR_INVALID, "the trust roots hold no PEM certificate");
        }
        req_set(&reqs[n++], TS_JOB_EP_DATASTORE, TS_JOB_OP_DS_BEGIN, NULL, NULL, 0);
        req_set(&reqs[n++], TS_JOB_EP_DATASTORE, TS_JOB_OP_DS_PUT, "trust.roots", s->data,
                s->data_len);
        req_set(&reqs[n++], TS_JOB_EP_DATASTORE, TS_JOB_OP_DS_COMMIT, NULL, NULL, 0);
        break;
    case TS_JOB_REENROLL:
        req_set(&reqs[n++], TS_JOB_EP_AGENT, TS_JOB_OP_REENROLL,
                s->rekey ? TS_JOB_REKEY_LABEL : NULL, NULL, 0);
        break;
    default:
        rv = ts_error_set(TS_ERR_INVALID, "unknown job kind %d", (int)s->kind);
    }
    if (rv == TS_OK && s->rekey && s->kind != TS_JOB_REENROLL) {
        rv = ts_error_set(TS_ERR_INVALID, "a new key (rekey) goes with a re-enrollment job only");
    }
    *count = n;
    return rv;
}

/* In an open transaction: stores one job of the checked requests for uid, audited. */
static ts_err job_insert(ts_ca *ca, const ts_tenant_row *t, const ts_job_spec *spec,
                         const char *uid, const char *group, ts_job_request_row *reqs, size_t n,
                         ts_job_row *job)
{
    const char *actor = spec->actor != NULL ? spec->actor : ca->actor;
    memset(job, 0, sizeof *job);
    job->tenant_id = t->id;
    job->kind = spec->kind;
    job->rekey = spec->rekey != 0;
    snprintf(job->device_uid, sizeof job->device_uid, "%s", uid);
    /* The job keeps who queued it for display; the audit entry holds the actor whole. */
    size_t actor_len = strnlen(actor, sizeof job->actor - 1);
    memcpy(job->actor, actor, actor_len);
    job->actor[actor_len] = '\0';
    ts_err rv = ts_store_job_insert(ca->store, job, reqs, n);
    if (rv == TS_OK) {
        char object[32];
        snprintf(object, sizeof object, "%lld", (long long)job->id);
        rv = srv_audit(ca, "job.create", object,
                       group == NULL
                           ? srv_json("{s:s, s:s, s:s, s:b, s:I, s:s}", "tenant", t->name, "device",
                                      job->device_uid, "kind", ts_job_kind_name(job->kind), "rekey",
                                      spec->rekey != 0, "requests", (json_int_t)n, "by", job->actor)
                           : srv_json("{s:s, s:s, s:s, s:s, s:b, s:I, s:s}", "tenant", t->name,
                                      "device", job->device_uid, "group", group, "kind",
                                      ts_job_kind_name(job->kind), "rekey", spec->rekey != 0,
                                      "requests", (json_int_t)n, "by", job->actor));
    }
    return rv;
}

ts_err ts_ca_job_create(ts_ca *ca, const ts_job_spec *spec, ts_job_row *out)
{
    ts_job_request_row reqs[TS_JOB_SETS_MAX + 2];
    ts_tenant_row t;
    ts_job_row job;
    size_t n = 0;

    if (ca == NULL || spec == NULL) {
        return ts_error_set(TS_ERR_INVALID, "ts_ca_job_create: missing argument");
    }
    ts_err rv = ts_device_uid_check(spec->device_uid);
    if (rv == TS_OK) {
        rv = job_requests(spec, reqs, &n);
    }
    if (rv == TS_OK) {
        rv = ts_ca_tenant(ca, spec->tenant, &t);
    }
    if (rv == TS_OK) {
        rv = ts_store_begin(ca->store);
    }
    if (rv != TS_OK) {
        return rv;
    }
    rv = srv_tx_end(ca, job_insert(ca, &t, spec, spec->device_uid, NULL, reqs, n, &job));
    if (rv == TS_OK && out != NULL) {
        *out = job;
    }
    return rv;
}

ts_err ts_ca_job_create_group(ts_ca *ca, const ts_job_spec *spec, const char *group,
                              ts_job_row **jobs, size_t *count)
{
    ts_job_request_row reqs[TS_JOB_SETS_MAX + 2];
    ts_tenant_row t;
    ts_group_row g;
    ts_group_member *members = NULL;
    ts_job_row *rows = NULL;
    size_t n = 0, nmembers = 0;

    if (ca == NULL || spec == NULL || jobs == NULL || count == NULL) {
        return ts_error_set(TS_ERR_INVALID, "ts_ca_job_create_group: missing argument");
    }
    *jobs = NULL;
    *count = 0;
    ts_err rv = ts_group_name_check(group);
    if (rv == TS_OK) {
        rv = job_requests(spec, reqs, &n);
    }
    if (rv == TS_OK) {
        rv = ts_ca_tenant(ca, spec->tenant, &t);
    }
    if (rv == TS_OK) {
        rv = ts_store_begin(ca->store);
    }
    if (rv != TS_OK) {
        return rv;
    }
    /* The members are read in the transaction that queues their jobs. */
    rv = ts_store_group_get(ca->store, t.id, group, &g);
    if (rv == TS_ERR_NOT_FOUND) {
        ts_error_set(rv, "tenant '%s' has no group '%s'", t.name, group);
    }
    if (rv == TS_OK) {
        rv = ts_store_group_members(ca->store, g.id, &members, &nmembers);
    }
    if (rv == TS_OK && nmembers == 0) {
        rv = ts_error_set(TS_ERR_STATE, "group '%s' has no devices: no job queued", group);
    }
    if (rv == TS_OK) {
        rows = OPENSSL_zalloc(nmembers * sizeof *rows);
        if (rows == NULL) {
            rv = ts_error_set(TS_ERR_NOMEM, "out of memory for %zu jobs", nmembers);
        }
    }
    for (size_t i = 0; rv == TS_OK && i < nmembers; i++) {
        rv = job_insert(ca, &t, spec, members[i].uid, group, reqs, n, &rows[i]);
    }
    OPENSSL_free(members);
    rv = srv_tx_end(ca, rv);
    if (rv != TS_OK) {
        OPENSSL_free(rows);
        return rv;
    }
    *jobs = rows;
    *count = nmembers;
    return TS_OK;
}

ts_err ts_ca_job_list(ts_ca *ca, const char *tenant, const char *device_uid, size_t limit,
                      ts_job_row **rows, size_t *count)
{
    ts_tenant_row t;
    if (ca == NULL) {
        return ts_error_set(TS_ERR_INVALID, "ts_ca_job_list: missing argument");
    }
    ts_err rv = device_uid != NULL ? ts_device_uid_check(device_uid) : TS_OK;
    if (rv == TS_OK) {
        rv = ts_ca_tenant(ca, tenant, &t);
    }
    return rv != TS_OK ? rv : ts_store_job_list(ca->store, t.id, device_uid, 0, limit, rows, count);
}

ts_err ts_ca_job_show(ts_ca *ca, const char *tenant, int64_t id, ts_job_row *job,
                      ts_job_request_row **reqs, size_t *count)
{
    ts_tenant_row t;
    if (ca == NULL || job == NULL) {
        return ts_error_set(TS_ERR_INVALID, "ts_ca_job_show: missing argument");
    }
    ts_err rv = ts_ca_tenant(ca, tenant, &t);
    if (rv == TS_OK) {
        rv = ts_store_job_get(ca->store, t.id, id, job);
    }
    if (rv == TS_OK && reqs != NULL) {
        rv = ts_store_job_requests(ca->store, id, 0, reqs, count);
    }
    return rv;
}
