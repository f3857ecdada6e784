/*
 * The batch job file (OUT/batch.json) and the manifest (OUT/manifest.jsonl): one JSON object per
 * line and device, {"uid", "serial", "sha256", "keystore"}, each line derived only from the
 * device's row in the store and the job, so the manifest can always be rebuilt from the store.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "common/error_internal.h"
#include "common/file_internal.h"
#include "server/batch_internal.h"

#define JOB_FILE "batch.json"

enum {
    JOB_FILE_MAX = 16 * 1024,
    LINE_MAX_BYTES = 4 * 1024 + 3 * TS_CA_PATH_MAX,
};

static ts_err job_write(batch *b, const char *path)
{
    json_t *j = srv_json("{s:i, s:s, s:s, s:s, s:I, s:s?}", "format", 1, "job", b->job, "tenant",
                         b->p->tenant, "profile", b->p->profile, "count", (json_int_t)b->p->count,
                         "keystore_template", b->p->keystore_template);
    char *text = j != NULL ? json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
    ts_err rv = text != NULL ? ts_file_write_atomic(path, (const uint8_t *)text, strlen(text), 0644)
                             : ts_error_set(TS_ERR_NOMEM, "out of memory");
    free(text);
    json_decref(j);
    return rv;
}

/* The store's record of the job (setting "batch.<job>" and a batch.start audit entry). */
static ts_err job_record(batch *b)
{
    char key[64], *have = NULL, *text = NULL;
    json_t *j = NULL;
    ts_err rv;

    snprintf(key, sizeof key, "batch.%s", b->job);
    rv = srv_setting(b->ca, key, &have);
    if (rv != TS_OK || have != NULL) {
        OPENSSL_free(have);
        return rv;
    }
    j = srv_json("{s:s, s:s, s:s, s:I, s:s?}", "out", b->out, "tenant", b->p->tenant, "profile",
                 b->p->profile, "count", (json_int_t)b->p->count, "keystore_template",
                 b->p->keystore_template);
    text = j != NULL ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    if (text == NULL) {
        json_decref(j);
        return ts_error_set(TS_ERR_NOMEM, "out of memory");
    }
    rv = ts_store_begin(b->ca->store);
    if (rv == TS_OK) {
        rv = ts_store_setting_set(b->ca->store, key, text);
    }
    if (rv == TS_OK) {
        rv = srv_audit(b->ca, "batch.start", b->job, j);
        j = NULL;
    }
    if (rv == TS_OK) {
        rv = ts_store_commit(b->ca->store);
    } else {
        ts_store_rollback(b->ca->store);
    }
    json_decref(j);
    free(text);
    return rv;
}

/* The same job must be asked for again: tenant, profile and template as recorded. */
static ts_err job_match(batch *b, json_t *root, const char *path)
{
    const char *job = json_string_value(json_object_get(root, "job"));
    const char *tenant = json_string_value(json_object_get(root, "tenant"));
    const char *profile = json_string_value(json_object_get(root, "profile"));
    const char *tmpl = json_string_value(json_object_get(root, "keystore_template"));
    const char *want = b->p->keystore_template;

    if (job == NULL || strlen(job) >= sizeof b->job || strlen(job) == 0 ||
        strspn(job, "0123456789abcdef") != strlen(job) || tenant == NULL || profile == NULL) {
        return ts_error_set(TS_ERR_CORRUPT, "%s is malformed", path);
    }
    if (strcmp(tenant, b->p->tenant) != 0 || strcmp(profile, b->p->profile) != 0 ||
        (tmpl == NULL) != (want == NULL) || (tmpl != NULL && strcmp(tmpl, want) != 0)) {
        return ts_error_set(TS_ERR_STATE,
                            "%s belongs to batch %s (tenant '%s', profile '%s'%s%s): resume it "
                            "with the same --tenant, --profile and --keystore-template, or use "
                            "another --out",
                            b->out, job, tenant, profile, tmpl != NULL ? ", template " : "",
                            tmpl != NULL ? tmpl : "");
    }
    snprintf(b->job, sizeof b->job, "%s", job);
    return TS_OK;
}

/* A new job may only start in an OUT that holds nothing of another. */
static ts_err out_fresh(batch *b)
{
    struct stat st;
    if (stat(b->manifest, &st) == 0) {
        return ts_error_set(TS_ERR_STATE, "%s has a manifest but no %s: not a batch to resume",
                            b->out, JOB_FILE);
    }
    if (rmdir(b->devices) != 0) {
        return ts_error_set(TS_ERR_STATE, "%s has devices but no %s: not a batch to resume", b->out,
                            JOB_FILE);
    }
    if (mkdir(b->devices, 0700) != 0) {
        return ts_error_set(TS_ERR_IO, "cannot make %s: %s", b->devices, strerror(errno));
    }
    return TS_OK;
}

ts_err batch_job_open(batch *b, size_t job_bytes)
{
    char path[TS_CA_PATH_MAX];
    uint8_t *data = NULL;
    size_t len = 0;
    json_t *root = NULL;
    ts_err rv = srv_path(path, sizeof path, b->out, JOB_FILE);

    if (rv == TS_OK) {
        rv = ts_file_read(path, JOB_FILE_MAX, &data, &len);
    }
    if (rv == TS_ERR_NOT_FOUND) {
        rv = out_fresh(b);
        if (rv == TS_OK) {
            rv = ts_random_hex(b->job, job_bytes);
        }
        if (rv == TS_OK) {
            rv = job_write(b, path);
        }
    } else if (rv == TS_OK) {
        root = json_loadb((const char *)data, len, JSON_REJECT_DUPLICATES, NULL);
        rv = root != NULL ? job_match(b, root, path)
                          : ts_error_set(TS_ERR_CORRUPT, "%s is not JSON", path);
        json_int_t count = json_integer_value(json_object_get(root, "count"));
        if (rv == TS_OK && count != (json_int_t)b->p->count) {
            rv = job_write(b, path);
        }
    }
    if (rv == TS_OK) {
        rv = job_record(b);
    }
    json_decref(root);
    OPENSSL_free(data);
    return rv;
}

/* The manifest line of a finished device, with its newline. */
static ts_err line_of(const batch *b, const ts_cert_row *row, char **line)
{
    char uri[3 * TS_CA_PATH_MAX];
    ts_err rv = batch_device_uri(b, row->device_uid, uri, sizeof uri);
    json_t *j = NULL;
    char *text = NULL;

    *line = NULL;
    if (rv != TS_OK) {
        return rv;
    }
    j = srv_json("{s:s, s:s, s:s, s:s}", "uid", row->device_uid, "serial", row->serial, "sha256",
                 row->fingerprint, "keystore", uri);
    text = j != NULL ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(j);
    if (text == NULL) {
        return ts_error_set(TS_ERR_NOMEM, "out of memory");
    }
    size_t n = strlen(text);
    *line = OPENSSL_malloc(n + 2);
    if (*line != NULL) {
        memcpy(*line, text, n);
        (*line)[n] = '\n';
        (*line)[n + 1] = '\0';
    }
    free(text);
    return *line != NULL ? TS_OK : ts_error_set(TS_ERR_NOMEM, "out of memory");
}

static ts_err append_bytes(batch *b, const char *data, size_t len)
{
    struct stat st;
    int existed = stat(b->manifest, &st) == 0;
    int fd = open(b->manifest, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    ts_err rv = TS_OK;

    if (fd < 0) {
        return ts_error_set(TS_ERR_IO, "cannot open %s: %s", b->manifest, strerror(errno));
    }
    while (len > 0 && rv == TS_OK) {
        ssize_t n = write(fd, data, len);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            rv = ts_error_set(errno == ENOSPC ? TS_ERR_FULL : TS_ERR_IO, "cannot write %s: %s",
                              b->manifest, strerror(errno));
            break;
        }
        data += n;
        len -= (size_t)n;
    }
    if (rv == TS_OK && fsync(fd) != 0) {
        rv = ts_error_set(TS_ERR_IO, "cannot sync %s: %s", b->manifest, strerror(errno));
    }
    close(fd);
    if (rv == TS_OK && !existed) {
        rv = ts_dir_sync(b->out);
    }
    return rv;
}

ts_err batch_manifest_append(batch *b, const ts_cert_row *row)
{
    char *line = NULL;
    ts_err rv = line_of(b, row, &line);
    if (rv == TS_OK) {
        rv = append_bytes(b, line, strlen(line));
    }
    OPENSSL_free(line);
    return rv;
}

ts_err batch_manifest_reconcile(batch *b, ts_batch_result *res)
{
    BIO *mem = BIO_new(BIO_s_mem());
    char *want = NULL;
    uint8_t *have = NULL;
    size_t have_len = 0, max = (b->ndone + 1) * LINE_MAX_BYTES;
    ts_err rv = mem != NULL ? TS_OK : ts_error_set(TS_ERR_NOMEM, "out of memory");

    /* What the manifest must be: a line per finished device, in the order they were issued. */
    for (size_t i = 0; rv == TS_OK && i < b->ndone; i++) {
        char *line = NULL;
        rv = line_of(b, &b->done[i], &line);
        if (rv == TS_OK && BIO_puts(mem, line) <= 0) {
            rv = ts_error_set(TS_ERR_NOMEM, "out of memory");
        }
        OPENSSL_free(line);
    }
    long want_len = mem != NULL ? BIO_get_mem_data(mem, &want) : 0;
    if (rv == TS_OK) {
        rv = ts_file_read(b->manifest, max, &have, &have_len);
        if (rv == TS_ERR_NOT_FOUND || rv == TS_ERR_CORRUPT) {
            /* missing, or too long to be a prefix: rebuilt below */
            have_len = rv == TS_ERR_CORRUPT ? (size_t)want_len + 1 : 0;
            rv = TS_OK;
        }
    }
    if (rv != TS_OK) {
        goto done;
    }
    int prefix = have_len == 0 || (have_len <= (size_t)want_len &&
                                   memcmp(have, want, have_len) == 0 && have[have_len - 1] == '\n');
    if (prefix && have_len < (size_t)want_len) {
        for (size_t i = have_len; i < (size_t)want_len; i++) {
            res->appended += want[i] == '\n';
        }
        rv = append_bytes(b, want + have_len, (size_t)want_len - have_len);
    } else if (!prefix) {
        /* A torn last line or a line the store does not back: the store wins. */
        rv = ts_file_write_atomic(b->manifest, (const uint8_t *)want, (size_t)want_len, 0644);
        res->rewritten = 1;
    }
done:
    OPENSSL_free(have);
    BIO_free(mem);
    return rv;
}
