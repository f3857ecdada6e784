/*
 * Batch factory provisioning: N devices, each with a key generated inside its own key store and
 * a certificate from the tenant's issuing CA, listed one per line in OUT/manifest.jsonl.
 *
 * Crash safety (docs/ca.md, "Batch invariants"). The store is the truth about which devices
 * are done; everything else is brought in line with it when a run starts:
 *   1. OUT/batch.json names the job (id, tenant, profile, template); written once, atomically,
 *      before anything else. A device's UID is "<job>-<16 random hex digits>", so the job's
 *      certificates are the tenant's certificates whose device UID starts with "<job>-".
 *   2. A device's key store (OUT/devices/<uid>/, or objects labelled <uid> on the template
 *      token) is made and synced before its certificate is issued: a certificate in the store
 *      always has its key store. A key store without a certificate is an unfinished device
 *      and is discarded on resume.
 *   3. The certificate and its audit entry are one transaction. Each issuance draws a fresh
 *      random serial under the store's unique constraint: no serial is ever used twice.
 *   4. The manifest line is appended and fsynced after the commit. On resume, a manifest that is
 *      a prefix of the store's list gets the missing lines appended; any other manifest (a torn
 *      or foreign line) is rewritten from the store atomically.
 * One run at a time per OUT: OUT/.lock is flock()ed for the whole run.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "common/error_internal.h"
#include "common/file_internal.h"
#include "server/batch_internal.h"

#define DEVICE_KEY_LABEL "device"

enum {
    BATCH_MAX = 1000000, /* devices of one batch */
    JOB_BYTES = 6,       /* random bytes of a job id: 12 hex digits */
    UID_BYTES = 8,       /* random bytes after the job id in a device UID */
};

/* The key-store URI of a device, as the manifest gives it: stable from uid and the job. */
ts_err batch_device_uri(const batch *b, const char *uid, char *uri, size_t size)
{
    char dir[TS_CA_PATH_MAX], pin[TS_CA_PATH_MAX], enc[TS_CA_PATH_MAX], enc_pin[TS_CA_PATH_MAX];
    int n;

    if (b->template_uri != NULL) {
        /* RFC 7512: the object attribute goes in the path, before the query. */
        size_t path_len = strcspn(b->template_uri, "?");
        n = snprintf(uri, size, "%.*s;object=%s%s", (int)path_len, b->template_uri, uid,
                     b->template_uri + path_len);
    } else {
        ts_err rv = batch_device_paths(b, uid, dir, pin, NULL);
        if (rv == TS_OK) {
            rv = ts_uri_escape(dir, enc, sizeof enc);
        }
        if (rv == TS_OK) {
            rv = ts_uri_escape(pin, enc_pin, sizeof enc_pin);
        }
        if (rv != TS_OK) {
            return rv;
        }
        n = snprintf(uri, size, "soft:%s;object=%s?pin-source=%s", enc, DEVICE_KEY_LABEL, enc_pin);
    }
    if (n < 0 || (size_t)n >= size) {
        return ts_error_set(TS_ERR_INVALID, "key-store URI of device %s is too long", uid);
    }
    return TS_OK;
}

/* OUT/devices/<uid>/keystore, OUT/devices/<uid>/pin and OUT/devices/<uid>. */
ts_err batch_device_paths(const batch *b, const char *uid, char *store, char *pin, char *dir)
{
    char d[TS_CA_PATH_MAX];
    ts_err rv = srv_path(d, sizeof d, b->devices, uid);
    if (rv == TS_OK && store != NULL) {
        rv = srv_path(store, TS_CA_PATH_MAX, d, "keystore");
    }
    if (rv == TS_OK && pin != NULL) {
        rv = srv_path(pin, TS_CA_PATH_MAX, d, "pin");
    }
    if (rv == TS_OK && dir != NULL) {
        snprintf(dir, TS_CA_PATH_MAX, "%s", d);
    }
    return rv;
}

/* A soft: store of its own for a device, with a random PIN in a 0600 file beside it. */
static ts_err device_store_soft(batch *b, const char *uid, ts_keystore **ks)
{
    char dir[TS_CA_PATH_MAX], store[TS_CA_PATH_MAX], pin_path[TS_CA_PATH_MAX];
    char enc[TS_CA_PATH_MAX], enc_pin[TS_CA_PATH_MAX], uri[3 * TS_CA_PATH_MAX];
    char pin[2 * SRV_PIN_BYTES + 1];
    ts_err rv = batch_device_paths(b, uid, store, pin_path, dir);

    if (rv == TS_OK && mkdir(dir, 0700) != 0) {
        rv = ts_error_set(TS_ERR_IO, "cannot make %s: %s", dir, strerror(errno));
    }
    /* Durable before anything is issued for it (invariant 2). */
    if (rv == TS_OK) {
        rv = ts_dir_sync(b->devices);
    }
    if (rv == TS_OK) {
        rv = ts_random_hex(pin, SRV_PIN_BYTES);
    }
    if (rv == TS_OK) {
        rv = ts_file_write_atomic(pin_path, (const uint8_t *)pin, strlen(pin), 0600);
    }
    OPENSSL_cleanse(pin, sizeof pin);
    if (rv == TS_OK) {
        rv = ts_uri_escape(store, enc, sizeof enc);
    }
    if (rv == TS_OK) {
        rv = ts_uri_escape(pin_path, enc_pin, sizeof enc_pin);
    }
    if (rv == TS_OK) {
        snprintf(uri, sizeof uri, "soft:%s?pin-source=%s", enc, enc_pin);
        rv = ts_keystore_create(uri, NULL, ks);
    }
    if (rv == TS_OK) {
        rv = ts_keystore_generate(*ks, DEVICE_KEY_LABEL, TS_CURVE_P256);
    }
    return rv != TS_OK ? ts_error_prefix(rv, "device %s", uid) : TS_OK;
}

/* One device: key store and key, certificate, manifest line. */
static ts_err device_make(batch *b, ts_batch_result *res)
{
    char uid[TS_NAME_MAX + 1], rnd[2 * UID_BYTES + 1], uri[3 * TS_CA_PATH_MAX];
    ts_keystore *ks = NULL;
    EVP_PKEY *pub = NULL;
    X509 *cert = NULL;
    srv_issue_req req;
    ts_cert_row row;
    ts_err rv = ts_random_hex(rnd, UID_BYTES);

    memset(&row, 0, sizeof row);
    if (rv != TS_OK) {
        return rv;
    }
    snprintf(uid, sizeof uid, "%s-%s", b->job, rnd);
    if (b->template_ks != NULL) {
        ks = ts_keystore_up_ref(b->template_ks);
        rv = ts_keystore_generate(ks, uid, TS_CURVE_P256);
    } else {
        rv = device_store_soft(b, uid, &ks);
    }
    if (rv == TS_OK) {
        rv = ts_keystore_public_key(ks, b->template_ks != NULL ? uid : DEVICE_KEY_LABEL, &pub);
    }
    if (rv == TS_OK) {
        rv = batch_device_uri(b, uid, uri, sizeof uri);
    }
    if (rv == TS_OK) {
        srv_issue_req_init(b->ca, &b->ctx, b->p->profile, "cert.issue", &req);
        req.params.public_key = pub;
        req.params.vars.device_uid = uid;
        req.device_uid = uid;
        req.details = srv_json("{s:s, s:s}", "batch", b->job, "keystore", uri);
        rv = srv_issue(b->ca, &req, &cert);
    }
    if (rv == TS_OK) {
        rv = srv_cert_row_fill(cert, &row);
    }
    if (rv == TS_OK) {
        snprintf(row.device_uid, sizeof row.device_uid, "%s", uid);
        rv = batch_manifest_append(b, &row);
    }
    if (rv == TS_OK) {
        snprintf(b->last_uid, sizeof b->last_uid, "%s", uid);
        res->made++;
        res->done++;
    }
    ts_cert_row_clear(&row);
    X509_free(cert);
    EVP_PKEY_free(pub);
    ts_keystore_free(ks);
    return rv;
}

/* Whether uid is one of the job's finished devices. */
static int is_done(const batch *b, const char *uid)
{
    for (size_t i = 0; i < b->ndone; i++) {
        if (strcmp(b->done[i].device_uid, uid) == 0) {
            return 1;
        }
    }
    return 0;
}

/* The job's certificates in the store, oldest first. */
static ts_err load_done(batch *b)
{
    ts_cert_filter f;
    ts_cert_row *rows = NULL;
    size_t count = 0, keep = 0, plen = strlen(b->job);
    ts_err rv;

    memset(&f, 0, sizeof f);
    f.tenant_id = b->ctx.tenant.id;
    rv = ts_store_cert_list(b->ca->store, &f, &rows, &count);
    if (rv != TS_OK) {
        return rv;
    }
    /* The job's rows, in the store's order (by id: the order of issuance). */
    b->done = OPENSSL_zalloc((count + 1) * sizeof *b->done);
    if (b->done == NULL) {
        ts_cert_rows_free(rows, count);
        return ts_error_set(TS_ERR_NOMEM, "out of memory");
    }
    for (size_t i = 0; i < count; i++) {
        if (strncmp(rows[i].device_uid, b->job, plen) == 0 && rows[i].device_uid[plen] == '-') {
            b->done[keep++] = rows[i];
            memset(&rows[i], 0, sizeof rows[i]); /* owned by b->done now */
        }
    }
    b->ndone = keep;
    ts_cert_rows_free(rows, count);
    return TS_OK;
}

/* Invariant 2: key stores without a certificate are unfinished devices; those with one must be
 * there. */
static ts_err reconcile_stores(batch *b, ts_batch_result *res)
{
    char dir[TS_CA_PATH_MAX];
    struct stat st;
    ts_err rv = TS_OK;

    if (b->template_ks != NULL) {
        ts_keystore_entry *entries = NULL;
        size_t n = 0, plen = strlen(b->job);
        rv = ts_keystore_list(b->template_ks, &entries, &n);
        for (size_t i = 0; rv == TS_OK && i < n; i++) {
            const char *label = entries[i].label;
            if (strncmp(label, b->job, plen) == 0 && label[plen] == '-' && !is_done(b, label)) {
                rv = ts_keystore_delete(b->template_ks, label);
                res->discarded++;
            }
        }
        OPENSSL_free(entries);
    } else {
        DIR *d = opendir(b->devices);
        struct dirent *e;
        if (d == NULL) {
            return ts_error_set(TS_ERR_IO, "cannot read %s: %s", b->devices, strerror(errno));
        }
        while (rv == TS_OK && (e = readdir(d)) != NULL) {
            if (e->d_name[0] == '.' || is_done(b, e->d_name)) {
                continue;
            }
            rv = srv_path(dir, sizeof dir, b->devices, e->d_name);
            if (rv == TS_OK) {
                rv = srv_remove_tree(dir);
                res->discarded++;
            }
        }
        closedir(d);
        if (rv == TS_OK && res->discarded > 0) {
            rv = ts_dir_sync(b->devices);
        }
        for (size_t i = 0; rv == TS_OK && i < b->ndone; i++) {
            rv = batch_device_paths(b, b->done[i].device_uid, NULL, NULL, dir);
            if (rv == TS_OK && stat(dir, &st) != 0) {
                rv = ts_error_set(TS_ERR_CORRUPT,
                                  "device %s has a certificate (serial %s) but its key store %s "
                                  "is gone",
                                  b->done[i].device_uid, b->done[i].serial, dir);
            }
        }
    }
    return rv;
}

static void batch_free(batch *b)
{
    srv_issue_ctx_clear(&b->ctx);
    ts_keystore_free(b->template_ks);
    ts_cert_rows_free(b->done, b->ndone);
    OPENSSL_free(b->template_uri);
    if (b->lock_fd >= 0) {
        ts_file_unlock(b->lock_fd);
    }
}

static ts_err params_check(const ts_batch_params *p)
{
    if (p->tenant == NULL || p->profile == NULL || p->out_dir == NULL) {
        return ts_error_set(TS_ERR_INVALID, "a batch needs a tenant, a profile and an out dir");
    }
    if (p->count == 0 || p->count > BATCH_MAX) {
        return ts_error_set(TS_ERR_INVALID, "count: 1 to %d devices", BATCH_MAX);
    }
    if (p->keystore_template != NULL && strstr(p->keystore_template, "pin-value=") != NULL) {
        return ts_error_set(TS_ERR_INVALID,
                            "--keystore-template: the URI goes into the manifest, so it must not "
                            "carry pin-value=; use pin-source=FILE or TESSERA_PIN");
    }
    if (p->keystore_template != NULL && strstr(p->keystore_template, "object=") != NULL) {
        return ts_error_set(TS_ERR_INVALID,
                            "--keystore-template: no object= (each device's objects are "
                            "labelled with its UID)");
    }
    return TS_OK;
}

/* Makes OUT and OUT/devices, takes the lock, and sets the paths. */
static ts_err out_open(batch *b, const char *out)
{
    char real[PATH_MAX], lock[TS_CA_PATH_MAX];
    ts_err rv = TS_OK;

    if (mkdir(out, 0700) != 0 && errno != EEXIST) {
        return ts_error_set(TS_ERR_IO, "cannot make %s: %s", out, strerror(errno));
    }
    if (realpath(out, real) == NULL) {
        return ts_error_set(TS_ERR_IO, "%s: %s", out, strerror(errno));
    }
    snprintf(b->out, sizeof b->out, "%s", real);
    rv = srv_path(lock, sizeof lock, b->out, ".lock");
    if (rv == TS_OK) {
        rv = ts_file_lock(lock, &b->lock_fd);
    }
    if (rv == TS_OK) {
        rv = srv_path(b->devices, sizeof b->devices, b->out, "devices");
    }
    if (rv == TS_OK) {
        rv = srv_path(b->manifest, sizeof b->manifest, b->out, "manifest.jsonl");
    }
    if (rv == TS_OK && mkdir(b->devices, 0700) != 0 && errno != EEXIST) {
        rv = ts_error_set(TS_ERR_IO, "cannot make %s: %s", b->devices, strerror(errno));
    }
    if (rv == TS_OK) {
        rv = ts_dir_sync(b->out);
    }
    return rv;
}

ts_err ts_ca_batch(ts_ca *ca, const ts_batch_params *p, ts_batch_progress_fn progress, void *arg,
                   ts_batch_result *res)
{
    batch b;
    ts_err rv = params_check(p);

    memset(res, 0, sizeof *res);
    memset(&b, 0, sizeof b);
    b.lock_fd = -1;
    b.ca = ca;
    b.p = p;
    if (rv != TS_OK) {
        return rv;
    }
    rv = srv_issue_ctx_load(ca, p->tenant, p->profile, &b.ctx);
    if (rv == TS_OK) {
        rv = out_open(&b, p->out_dir);
    }
    if (rv == TS_OK) {
        rv = batch_job_open(&b, JOB_BYTES);
    }
    if (rv == TS_OK && p->keystore_template != NULL) {
        b.template_uri = OPENSSL_strdup(p->keystore_template);
        rv = b.template_uri != NULL ? ts_keystore_open(p->keystore_template, &b.template_ks)
                                    : ts_error_set(TS_ERR_NOMEM, "out of memory");
        if (rv != TS_OK) {
            ts_error_prefix(rv, "--keystore-template");
        }
    }
    if (rv == TS_OK) {
        rv = load_done(&b);
    }
    if (rv == TS_OK && b.ndone > p->count) {
        rv = ts_error_set(TS_ERR_STATE, "batch %s already has %zu devices, more than %zu", b.job,
                          b.ndone, p->count);
    }
    if (rv == TS_OK) {
        rv = reconcile_stores(&b, res);
    }
    if (rv == TS_OK) {
        rv = batch_manifest_reconcile(&b, res);
    }
    res->done = b.ndone;
    snprintf(res->job, sizeof res->job, "%s", b.job);
    while (rv == TS_OK && res->done < p->count) {
        rv = device_make(&b, res);
        if (rv == TS_OK && progress != NULL) {
            progress(arg, res->done, p->count, b.last_uid);
        }
    }
    batch_free(&b);
    return rv;
}
