/*
 * tessera job create | list | show through a running service (--server URL --token T): the REST
 * routes under /api/v1/tenants/<t>/jobs (docs/api.md). Each prints exactly what the command
 * prints on --dir, so scripts work on either.
 */
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "cli/cli_job_remote.h"
#include "cli/cli_remote.h"

enum {
    JOB_PATH_MAX = 512,
};

/* data as base64 text, a JSON string; NULL when out of memory or too long. */
static json_t *b64_string(const uint8_t *data, size_t len)
{
    if (len > TS_JOB_DATA_MAX) {
        return NULL;
    }
    char *text = OPENSSL_malloc(4 * ((len + 2) / 3) + 1);
    json_t *out = NULL;
    if (text != NULL && EVP_EncodeBlock((unsigned char *)text, data, (int)len) >= 0) {
        out = json_string(text);
    }
    OPENSSL_free(text);
    return out;
}

/* The body of POST .../jobs: the target and the one member that says what to do. */
static json_t *create_body(const ts_job_spec *spec, const char *group)
{
    json_t *body = json_object();
    json_t *what = NULL;
    const char *member = NULL;

    switch (spec->kind) {
    case TS_JOB_SET:
        member = "set";
        what = json_object();
        for (size_t i = 0; what != NULL && i < spec->count; i++) {
            if (json_object_set_new(what, spec->keys[i], json_string(spec->values[i])) != 0) {
                json_decref(what);
                what = NULL;
            }
        }
        break;
    case TS_JOB_IMPORT:
        member = "import";
        what = json_pack("{s:s, s:o}", "label", spec->label != NULL ? spec->label : "", "blob",
                         b64_string(spec->data, spec->data_len));
        break;
    case TS_JOB_ROTATE_TRUST:
        member = "rotate_trust";
        what = json_stringn((const char *)spec->data, spec->data_len);
        break;
    case TS_JOB_REENROLL:
        member = "reenroll";
        what = json_true();
        break;
    }
    if (body == NULL || what == NULL ||
        json_object_set_new(body, group != NULL ? "group" : "device",
                            json_string(group != NULL ? group : spec->device_uid)) != 0 ||
        json_object_set_new(body, member, what) != 0 ||
        (spec->rekey && json_object_set_new(body, "rekey", json_true()) != 0)) {
        json_decref(body);
        return NULL;
    }
    return body;
}

int cli_remote_job_create(const cli_args *args, const ts_job_spec *spec, const char *group)
{
    char tenant[TS_TENANT_NAME_MAX + 1], path[JOB_PATH_MAX];
    cli_remote *rm = NULL;
    json_t *reply = NULL, *body = create_body(spec, group);
    int status;

    if (body == NULL) {
        /* Only a value that is not UTF-8 text gets here (or memory running out). */
        fprintf(stderr, "tessera: the job cannot be sent: a value is not UTF-8 text\n");
        return CLI_EXIT_FAIL;
    }
    status =
        cli_remote_begin(args, "/api/v1/tenants/%s/jobs", NULL, &rm, tenant, path, sizeof path);
    if (status == CLI_EXIT_OK) {
        status = cli_remote_call(rm, "POST", path, body, &reply);
    }
    if (status == CLI_EXIT_OK && group == NULL) {
        int64_t id = -1;
        (void)cli_json_i64(reply, "id", &id);
        printf("%lld\n", (long long)id);
    } else if (status == CLI_EXIT_OK) {
        json_t *jobs = json_object_get(reply, "jobs"), *job = NULL;
        size_t i = 0;
        printf("group %s: %zu job(s) queued\n", cli_json_str(reply, "group", group),
               json_array_size(jobs));
        json_array_foreach(jobs, i, job)
        {
            int64_t id = -1;
            (void)cli_json_i64(job, "id", &id);
            printf("%lld\t%s\n", (long long)id, cli_json_str(job, "device", "?"));
        }
    }
    json_decref(body);
    json_decref(reply);
    cli_remote_free(rm);
    return status;
}

/* A job's kind as list and show print it: "reenroll (rekey)" for a re-enrollment with a new key. */
static void kind_text(const json_t *job, char *buf, size_t size)
{
    snprintf(buf, size, "%s%s", cli_json_str(job, "kind", "?"),
             json_is_true(json_object_get(job, "rekey")) ? " (rekey)" : "");
}

int cli_remote_job_list(const cli_args *args, const char *device, size_t max)
{
    char tenant[TS_TENANT_NAME_MAX + 1], path[JOB_PATH_MAX];
    cli_remote *rm = NULL;
    json_t *items = NULL, *row = NULL;
    char kind[48];
    size_t i = 0;
    int status =
        cli_remote_begin(args, "/api/v1/tenants/%s/jobs", NULL, &rm, tenant, path, sizeof path);

    if (status == CLI_EXIT_OK && device != NULL) {
        status = cli_remote_query(path, sizeof path, "device", device);
    }
    if (status == CLI_EXIT_OK) {
        status = cli_remote_list(rm, path, max, &items);
    }
    json_array_foreach(items, i, row)
    {
        const char *uid = cli_json_str(row, "device", "?");
        int64_t id = -1;
        (void)cli_json_i64(row, "id", &id);
        kind_text(row, kind, sizeof kind);
        printf("%lld\t%s\t%s\t%s\t%s\t%s\n", (long long)id, uid, kind,
               cli_json_str(row, "state", "?"), cli_json_str(row, "created", "?"),
               cli_json_str(row, "actor", "?"));
    }
    json_decref(items);
    cli_remote_free(rm);
    return status;
}

/* The bytes a base64 string of the service's (no line breaks) stands for. */
static size_t b64_bytes(const char *text)
{
    size_t n = strlen(text), pad = 0;
    while (pad < 2 && n > pad && text[n - 1 - pad] == '=') {
        pad++;
    }
    return n / 4 * 3 - (n % 4 == 0 ? pad : 0);
}

static void print_request(const json_t *q)
{
    int64_t seq = -1;
    const char *label = cli_json_str(q, "label", "");
    const char *state = cli_json_str(q, "state", "?");
    const char *payload = cli_json_str(q, "payload", NULL);

    (void)cli_json_i64(q, "seq", &seq);
    printf("  %lld\t%s\t%s\t%s\t%s", (long long)seq, cli_json_str(q, "operation", "?"),
           label[0] != '\0' ? label : "-", state, cli_json_str(q, "answered", "-"));
    if (strcmp(state, "failed") == 0) {
        printf("\t%s: %s", cli_json_str(q, "error_code", "error"),
               cli_json_str(q, "error_message", "(no message)"));
    }
    if (payload != NULL && payload[0] != '\0') {
        printf("\tpayload %zu bytes", b64_bytes(payload));
    }
    printf("\n");
}

int cli_remote_job_show(const cli_args *args, int64_t id)
{
    char tenant[TS_TENANT_NAME_MAX + 1], path[JOB_PATH_MAX], idtext[24], kind[48];
    cli_remote *rm = NULL;
    json_t *job = NULL, *q = NULL;
    size_t i = 0;
    int64_t got = -1;

    snprintf(idtext, sizeof idtext, "%lld", (long long)id);
    int status = cli_remote_begin(args, "/api/v1/tenants/%s/jobs/%s", idtext, &rm, tenant, path,
                                  sizeof path);
    if (status == CLI_EXIT_OK) {
        status = cli_remote_call(rm, "GET", path, NULL, &job);
    }
    if (status == CLI_EXIT_OK) {
        (void)cli_json_i64(job, "id", &got);
        kind_text(job, kind, sizeof kind);
        printf("job:      %lld\ntenant:   %s\ndevice:   %s\nkind:     %s\nstate:    %s\n"
               "actor:    %s\ncreated:  %s\nupdated:  %s\nrequests:\n",
               (long long)got, tenant, cli_json_str(job, "device", "?"), kind,
               cli_json_str(job, "state", "?"), cli_json_str(job, "actor", "?"),
               cli_json_str(job, "created", "?"), cli_json_str(job, "updated", "?"));
        json_array_foreach(json_object_get(job, "requests"), i, q)
        {
            print_request(q);
        }
    }
    json_decref(job);
    cli_remote_free(rm);
    return status;
}
