/*
 * The datastore handle: the two slots in the state directory, opening (newest valid slot, never
 * older than the key-store counter), reading, and the compiled-in defaults. Commits are in
 * datastore_txn.c; the crash argument is in docs/datastore.md.
 */
#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "agent/datastore_slots.h"
#include "common/error_internal.h"
#include "common/file_internal.h"

/* The compiled-in defaults: CMake cache options passed as definitions (see docs/datastore.md). */
#ifndef TS_AGENT_DEFAULT_SERVER
#define TS_AGENT_DEFAULT_SERVER ""
#endif
#ifndef TS_AGENT_DEFAULT_MQTT_HOST
#define TS_AGENT_DEFAULT_MQTT_HOST ""
#endif
#ifndef TS_AGENT_DEFAULT_MQTT_PORT
#define TS_AGENT_DEFAULT_MQTT_PORT "8883"
#endif
#ifndef TS_AGENT_DEFAULT_REENROLL_DAYS
#define TS_AGENT_DEFAULT_REENROLL_DAYS "30"
#endif

static const ts_datastore_default defaults[] = {
    {TS_DS_CERT_LABEL, TS_DATASTORE_TEXT, "identity.cert"},
    {TS_DS_KEY_LABEL, TS_DATASTORE_TEXT, "identity"},
    {TS_DS_MQTT_HOST, TS_DATASTORE_TEXT, TS_AGENT_DEFAULT_MQTT_HOST},
    {TS_DS_MQTT_PORT, TS_DATASTORE_UINT, TS_AGENT_DEFAULT_MQTT_PORT},
    {TS_DS_REENROLL_DAYS, TS_DATASTORE_UINT, TS_AGENT_DEFAULT_REENROLL_DAYS},
    {TS_DS_SERVER_URL, TS_DATASTORE_TEXT, TS_AGENT_DEFAULT_SERVER},
};

const ts_datastore_default *ts_datastore_defaults(size_t *count)
{
    *count = sizeof defaults / sizeof defaults[0];
    return defaults;
}

static const char *const slot_names[2] = {"datastore-a.der", "datastore-b.der"};

ts_err ts_ds_slot_path(const char *dir, int slot, char out[PATH_MAX])
{
    int n = snprintf(out, PATH_MAX, "%s/%s", dir, slot_names[slot]);
    if (n < 0 || n >= PATH_MAX) {
        return ts_error_set(TS_ERR_INVALID, "datastore: state directory path too long");
    }
    return TS_OK;
}

ts_err ts_ds_lock(const char *dir, int *fd)
{
    char path[PATH_MAX];
    int n = snprintf(path, sizeof path, "%s/datastore.lock", dir);
    if (n < 0 || (size_t)n >= sizeof path) {
        return ts_error_set(TS_ERR_INVALID, "datastore: state directory path too long");
    }
    return ts_file_lock(path, fd);
}

/*
 * Removes the temporary files of commits a crash interrupted ("datastore-a.der.tmp-..."): they
 * were never renamed into place, so they hold no committed generation. Runs under the lock, so
 * no commit is in flight.
 */
static ts_err discard_leftovers(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    int removed = 0;
    ts_err rv = TS_OK;

    if (d == NULL) {
        return ts_error_set(TS_ERR_IO, "datastore: cannot read state directory %s", dir);
    }
    while ((de = readdir(d)) != NULL) {
        for (int slot = 0; slot < 2; slot++) {
            size_t n = strlen(slot_names[slot]);
            if (strncmp(de->d_name, slot_names[slot], n) != 0 ||
                strncmp(de->d_name + n, ".tmp-", 5) != 0) {
                continue;
            }
            char path[PATH_MAX];
            int len = snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
            if (len > 0 && (size_t)len < sizeof path && unlink(path) == 0) {
                removed++;
            }
        }
    }
    closedir(d);
    if (removed > 0) {
        rv = ts_dir_sync(dir);
    }
    return rv;
}

/* Reads and verifies one slot into scan. */
static ts_err read_slot(ts_datastore *ds, int slot, ts_ds_scan *scan)
{
    char path[PATH_MAX];
    uint8_t *der = NULL;
    size_t der_len = 0;
    ts_ds_content *c = NULL;

    ts_err rv = ts_ds_slot_path(ds->dir, slot, path);
    if (rv == TS_OK) {
        rv = ts_file_read(path, TS_DS_FILE_MAX, &der, &der_len);
    }
    if (rv == TS_OK) {
        rv = ts_ds_decode(der, der_len, ds->uid, ds->mac_key, &c);
    }
    /* Slot a holds even generations and slot b odd ones, so a commit never overwrites the slot
     * that holds the generation in use. */
    if (rv == TS_OK && (int)(c->generation % 2) != slot) {
        rv = ts_error_set(TS_ERR_CORRUPT, "datastore generation %llu cannot be in this slot",
                          (unsigned long long)c->generation);
    }
    OPENSSL_free(der);
    scan->err[slot] = rv;
    if (rv != TS_OK) {
        ts_ds_content_free(c);
        snprintf(scan->msg[slot], sizeof scan->msg[slot], "%s: %s", slot_names[slot],
                 ts_error_message());
        return rv;
    }
    scan->slot[slot] = c;
    return TS_OK;
}

/* How bad a slot's failure is, to choose the code when no slot is valid. */
static int severity(ts_err err)
{
    switch (err) {
    case TS_ERR_FOREIGN:
        return 5;
    case TS_ERR_AUTH:
        return 4;
    case TS_ERR_UNSUPPORTED:
        return 3;
    case TS_ERR_CORRUPT:
        return 2;
    case TS_ERR_NOT_FOUND:
        return 0;
    default:
        return 1;
    }
}

int ts_ds_refusal_code(ts_err err)
{
    return err == TS_ERR_NOT_FOUND || err == TS_ERR_FOREIGN || err == TS_ERR_AUTH ||
           err == TS_ERR_CORRUPT || err == TS_ERR_UNSUPPORTED || err == TS_ERR_ROLLBACK ||
           err == TS_ERR_IO;
}

void ts_ds_scan_clear(ts_ds_scan *scan)
{
    ts_ds_content_free(scan->slot[0]);
    ts_ds_content_free(scan->slot[1]);
    memset(scan, 0, sizeof *scan);
}

ts_err ts_ds_scan_slots(ts_datastore *ds, ts_ds_scan *scan)
{
    memset(scan, 0, sizeof *scan);
    ts_err rv = ts_keystore_counter_get(ds->ks, TS_DATASTORE_COUNTER, &scan->counter);
    if (rv != TS_OK) {
        return ts_error_prefix(rv, "datastore: reading counter %s", TS_DATASTORE_COUNTER);
    }
    for (int slot = 0; slot < 2; slot++) {
        rv = read_slot(ds, slot, scan);
        if (rv == TS_ERR_NOMEM) {
            return rv;
        }
    }
    int best = -1;
    for (int slot = 0; slot < 2; slot++) {
        if (scan->slot[slot] != NULL &&
            (best < 0 || scan->slot[slot]->generation > scan->slot[best]->generation)) {
            best = slot;
        }
    }
    int other = best < 0 ? -1 : 1 - best;
    if (best >= 0 && scan->slot[best]->generation >= scan->counter) {
        scan->best = scan->slot[best];
        return TS_OK;
    }
    if (best >= 0 && (scan->err[other] == TS_OK || scan->err[other] == TS_ERR_NOT_FOUND)) {
        return ts_error_set(TS_ERR_ROLLBACK,
                            "datastore in %s is generation %llu, but the key store's counter "
                            "says generation %llu was committed: an older copy is refused",
                            ds->dir, (unsigned long long)scan->slot[best]->generation,
                            (unsigned long long)scan->counter);
    }
    if (best >= 0) {
        /* The newest generation is there but damaged; the older one alone would be a rollback. */
        return ts_error_set(scan->err[other],
                            "datastore in %s refused: %s (and %s is generation "
                            "%llu, older than the key store's counter %llu)",
                            ds->dir, scan->msg[other], slot_names[best],
                            (unsigned long long)scan->slot[best]->generation,
                            (unsigned long long)scan->counter);
    }
    if (scan->err[0] == TS_ERR_NOT_FOUND && scan->err[1] == TS_ERR_NOT_FOUND) {
        if (scan->counter > 0) {
            return ts_error_set(TS_ERR_NOT_FOUND,
                                "no datastore in %s, though the key store's counter says "
                                "generation %llu was committed: the files were removed",
                                ds->dir, (unsigned long long)scan->counter);
        }
        return ts_error_set(TS_ERR_NOT_FOUND, "no datastore in %s yet", ds->dir);
    }
    ts_err code = severity(scan->err[0]) >= severity(scan->err[1]) ? scan->err[0] : scan->err[1];
    return ts_error_set(code, "datastore in %s refused: %s; %s", ds->dir, scan->msg[0],
                        scan->msg[1]);
}

void ts_ds_set_status(ts_datastore *ds)
{
    if (ds->source == TS_DATASTORE_STORED) {
        snprintf(ds->status, sizeof ds->status, "datastore generation %llu in %s",
                 (unsigned long long)ds->content->generation, ds->dir);
    }
}

static ts_err defaults_content(ts_datastore *ds, ts_ds_content **out)
{
    ts_ds_content *c = ts_ds_content_new();
    *out = NULL;
    if (c == NULL) {
        return ts_error_set(TS_ERR_NOMEM, "out of memory loading the datastore defaults");
    }
    memcpy(c->uid, ds->uid, sizeof c->uid);
    for (size_t i = 0; i < sizeof defaults / sizeof defaults[0]; i++) {
        const char *v = defaults[i].value;
        if (v[0] == 0) {
            continue;
        }
        ts_err rv =
            ts_ds_content_set(c, defaults[i].name, defaults[i].type, (const uint8_t *)v, strlen(v));
        if (rv != TS_OK) {
            ts_ds_content_free(c);
            return ts_error_prefix(rv, "compiled-in default %s", defaults[i].name);
        }
    }
    *out = c;
    return TS_OK;
}

static ts_err open_common(const char *state_dir, ts_keystore *ks, int allow_defaults,
                          ts_datastore **out)
{
    ts_datastore *ds = NULL;
    ts_ds_scan scan;
    struct stat st;
    int lock_fd = -1;
    ts_err rv;

    memset(&scan, 0, sizeof scan);
    if (out == NULL) {
        return ts_error_set(TS_ERR_INVALID, "datastore: no output handle");
    }
    *out = NULL;
    if (state_dir == NULL || ks == NULL) {
        return ts_error_set(TS_ERR_INVALID, "datastore: no state directory or key store");
    }
    if (stat(state_dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        return ts_error_set(TS_ERR_NOT_FOUND, "datastore: state directory %s does not exist",
                            state_dir);
    }
    ds = OPENSSL_zalloc(sizeof *ds);
    if (ds != NULL) {
        ds->dir = OPENSSL_strdup(state_dir);
    }
    if (ds == NULL || ds->dir == NULL) {
        rv = ts_error_set(TS_ERR_NOMEM, "out of memory opening the datastore");
        goto fail;
    }
    ds->ks = ts_keystore_up_ref(ks);
    rv = ts_keystore_uid(ks, ds->uid);
    if (rv == TS_OK) {
        rv = ts_ds_mac_key(ks, ds->uid, ds->mac_key);
    }
    if (rv == TS_OK) {
        rv = ts_ds_lock(state_dir, &lock_fd);
    }
    if (rv == TS_OK) {
        rv = discard_leftovers(state_dir);
    }
    if (rv != TS_OK) {
        goto fail;
    }
    rv = ts_ds_scan_slots(ds, &scan);
    if (rv == TS_OK) {
        int best = (int)(scan.best->generation % 2);
        ds->content = scan.slot[best];
        scan.slot[best] = NULL;
        ds->source = TS_DATASTORE_STORED;
        /* A crash between a commit's rename and its counter update: the file is the commit. */
        if (ds->content->generation > scan.counter) {
            rv = ts_keystore_counter_raise(ks, TS_DATASTORE_COUNTER, ds->content->generation);
            if (rv != TS_OK) {
                rv = ts_error_prefix(rv, "datastore: raising counter %s", TS_DATASTORE_COUNTER);
                goto fail;
            }
        }
        ts_ds_set_status(ds);
    } else if (allow_defaults && ts_ds_refusal_code(rv)) {
        ds->refusal = rv;
        ds->source = TS_DATASTORE_DEFAULTS;
        snprintf(ds->status, sizeof ds->status,
                 "no valid datastore: using compiled-in defaults (%s)", ts_error_message());
        rv = defaults_content(ds, &ds->content);
        if (rv != TS_OK) {
            goto fail;
        }
    } else {
        goto fail;
    }
    ts_ds_scan_clear(&scan);
    ts_file_unlock(lock_fd);
    *out = ds;
    return TS_OK;
fail:
    ts_ds_scan_clear(&scan);
    if (lock_fd >= 0) {
        ts_file_unlock(lock_fd);
    }
    ts_datastore_free(ds);
    return rv;
}

ts_err ts_datastore_open(const char *state_dir, ts_keystore *ks, ts_datastore **out)
{
    return open_common(state_dir, ks, 0, out);
}

ts_err ts_datastore_open_or_defaults(const char *state_dir, ts_keystore *ks, ts_datastore **out)
{
    return open_common(state_dir, ks, 1, out);
}

void ts_datastore_free(ts_datastore *ds)
{
    if (ds == NULL) {
        return;
    }
    ts_ds_content_free(ds->content);
    ts_keystore_free(ds->ks);
    OPENSSL_free(ds->dir);
    OPENSSL_clear_free(ds, sizeof *ds);
}

ts_datastore_origin ts_datastore_source(const ts_datastore *ds)
{
    return ds->source;
}

const char *ts_datastore_status(const ts_datastore *ds)
{
    return ds->status;
}

ts_err ts_datastore_refusal(const ts_datastore *ds)
{
    return ds->refusal;
}

uint64_t ts_datastore_generation(const ts_datastore *ds)
{
    return ds->source == TS_DATASTORE_STORED ? ds->content->generation : 0;
}

unsigned ts_datastore_version(const ts_datastore *ds)
{
    return ds->source == TS_DATASTORE_STORED ? (unsigned)ds->content->version : 0;
}

ts_err ts_datastore_get(const ts_datastore *ds, const char *name, const uint8_t **value,
                        size_t *len, ts_datastore_type *type)
{
    if (ds == NULL || name == NULL || value == NULL || len == NULL) {
        return ts_error_set(TS_ERR_INVALID, "datastore get: missing argument");
    }
    const ts_ds_entry *e = ts_ds_content_find(ds->content, name);
    if (e == NULL) {
        return ts_error_set(TS_ERR_NOT_FOUND, "datastore has no entry %.80s", name);
    }
    *value = e->value;
    *len = e->len;
    if (type != NULL) {
        *type = e->type;
    }
    return TS_OK;
}

ts_err ts_datastore_get_text(const ts_datastore *ds, const char *name, const char **text)
{
    const uint8_t *value = NULL;
    size_t len = 0;
    ts_datastore_type type = TS_DATASTORE_BYTES;

    if (text == NULL) {
        return ts_error_set(TS_ERR_INVALID, "datastore get: missing argument");
    }
    ts_err rv = ts_datastore_get(ds, name, &value, &len, &type);
    if (rv != TS_OK) {
        return rv;
    }
    if (type == TS_DATASTORE_BYTES) {
        return ts_error_set(TS_ERR_WRONG_TYPE, "datastore entry %s holds bytes, not text", name);
    }
    *text = (const char *)value;
    return TS_OK;
}

ts_err ts_datastore_get_uint(const ts_datastore *ds, const char *name, uint64_t *out)
{
    const uint8_t *value = NULL;
    size_t len = 0;
    ts_datastore_type type = TS_DATASTORE_BYTES;
    uint64_t v = 0;

    if (out == NULL) {
        return ts_error_set(TS_ERR_INVALID, "datastore get: missing argument");
    }
    ts_err rv = ts_datastore_get(ds, name, &value, &len, &type);
    if (rv != TS_OK) {
        return rv;
    }
    if (type != TS_DATASTORE_UINT) {
        return ts_error_set(TS_ERR_WRONG_TYPE, "datastore entry %s is not a number", name);
    }
    /* Stored UINT values were checked: at most 20 digits that fit in 64 bits. */
    for (size_t i = 0; i < len; i++) {
        v = v * 10 + (uint64_t)(value[i] - '0');
    }
    *out = v;
    return TS_OK;
}

size_t ts_datastore_count(const ts_datastore *ds)
{
    return ds->content->count;
}

const char *ts_datastore_name_at(const ts_datastore *ds, size_t i)
{
    return i < ds->content->count ? ds->content->entries[i].name : NULL;
}
