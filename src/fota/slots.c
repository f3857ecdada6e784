/*
 * The slot layout (fw.conf) and the boot-state record (fw.state): strict JSON files in the state
 * directory, each replaced atomically (ts_file_write_atomic: temporary file, fsync, rename, fsync
 * of the directory), so a kill or power loss leaves the old file or the new one.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "common/error_internal.h"
#include "common/file_internal.h"
#include "fota/slots.h"

enum { FW_RECORD_FORMAT = 1 };

char fw_slot_name(int slot)
{
    return slot == 0 ? 'a' : slot == 1 ? 'b' : '-';
}

ts_err fw_path(const char *dir, const char *name, char out[PATH_MAX])
{
    int n = snprintf(out, PATH_MAX, "%s/%s", dir, name);
    if (n < 0 || n >= PATH_MAX) {
        return ts_error_set(TS_ERR_INVALID, "the state directory path is too long");
    }
    return TS_OK;
}

ts_err fw_manifest_path(const char *dir, int slot, char out[PATH_MAX])
{
    char name[32];
    snprintf(name, sizeof name, "fw.manifest.%c", fw_slot_name(slot));
    return fw_path(dir, name, out);
}

ts_err fw_hw_check(const char *hw)
{
    size_t n = hw != NULL ? strlen(hw) : 0;
    if (n == 0 || n > TS_FW_HW_MAX ||
        strspn(hw, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:/-") != n) {
        return ts_error_set(
            TS_ERR_INVALID,
            "a hardware id is 1 to %d characters of A-Za-z0-9._:/- ('%.80s' is not)", TS_FW_HW_MAX,
            hw != NULL ? hw : "");
    }
    return TS_OK;
}

static ts_err save_json(const char *dir, const char *name, json_t *obj)
{
    char path[PATH_MAX];
    char *text = obj != NULL ? json_dumps(obj, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    ts_err rv;

    json_decref(obj);
    if (text == NULL) {
        return ts_error_set(TS_ERR_NOMEM, "cannot encode %s", name);
    }
    rv = fw_path(dir, name, path);
    if (rv == TS_OK) {
        rv = ts_file_write_atomic(path, (const uint8_t *)text, strlen(text), 0600);
    }
    free(text);
    return rv;
}

static ts_err load_json(const char *dir, const char *name, json_t **out)
{
    char path[PATH_MAX];
    uint8_t *data = NULL;
    size_t len = 0;
    json_error_t jerr;
    ts_err rv = fw_path(dir, name, path);

    *out = NULL;
    if (rv == TS_OK) {
        rv = ts_file_read(path, FW_STATE_MAX, &data, &len);
    }
    if (rv != TS_OK) {
        return rv;
    }
    *out = json_loadb((const char *)data, len, JSON_REJECT_DUPLICATES, &jerr);
    OPENSSL_clear_free(data, len);
    if (*out == NULL || !json_is_object(*out)) {
        json_decref(*out);
        *out = NULL;
        return ts_error_set(TS_ERR_CORRUPT, "%s does not parse", path);
    }
    return TS_OK;
}

ts_err fw_conf_save(const char *dir, const fw_conf *c)
{
    json_t *obj =
        json_pack("{s:i, s:s, s:s, s:s, s:i}", "format", FW_RECORD_FORMAT, "slot_a", c->slot[0],
                  "slot_b", c->slot[1], "hw", c->hw, "attempts", (int)c->attempts);
    return save_json(dir, FW_CONF_FILE, obj);
}

ts_err fw_conf_load(const char *dir, fw_conf *c)
{
    const char *a = NULL, *b = NULL, *hw = NULL;
    int format = 0, attempts = 0;
    json_t *obj = NULL;
    ts_err rv = load_json(dir, FW_CONF_FILE, &obj);

    memset(c, 0, sizeof *c);
    if (rv == TS_ERR_NOT_FOUND) {
        return ts_error_set(TS_ERR_STATE,
                            "no firmware slots are set up in %s (tessera-agent fw setup)", dir);
    }
    if (rv != TS_OK) {
        return rv;
    }
    if (json_unpack(obj, "{s:i, s:s, s:s, s:s, s:i !}", "format", &format, "slot_a", &a, "slot_b",
                    &b, "hw", &hw, "attempts", &attempts) != 0 ||
        format != FW_RECORD_FORMAT || attempts < 1 || attempts > FW_ATTEMPTS_MAX ||
        strlen(a) == 0 || strlen(a) >= PATH_MAX || strlen(b) == 0 || strlen(b) >= PATH_MAX ||
        strcmp(a, b) == 0 || fw_hw_check(hw) != TS_OK) {
        json_decref(obj);
        return ts_error_set(TS_ERR_CORRUPT, "%s/%s is not a valid slot layout", dir, FW_CONF_FILE);
    }
    memcpy(c->slot[0], a, strlen(a) + 1);
    memcpy(c->slot[1], b, strlen(b) + 1);
    memcpy(c->hw, hw, strlen(hw) + 1);
    c->attempts = (unsigned)attempts;
    json_decref(obj);
    return TS_OK;
}

void fw_state_init(fw_state *s, unsigned max_attempts)
{
    memset(s, 0, sizeof *s);
    s->active = 0;
    s->pending = FW_NONE;
    s->booted = FW_NONE;
    s->max_attempts = max_attempts;
}

static json_t *slot_json(const fw_slot_rec *r)
{
    return json_pack("{s:I, s:I, s:I}", "version", (json_int_t)r->version, "seq",
                     (json_int_t)r->seq, "size", (json_int_t)r->size);
}

static json_t *slot_ref(int slot)
{
    char name[2] = {fw_slot_name(slot), '\0'};
    return slot == FW_NONE ? json_null() : json_string(name);
}

ts_err fw_state_encode(const fw_state *s, char **json)
{
    json_t *obj = json_pack("{s:i, s:I, s:o, s:o, s:o, s:i, s:i, s:b, s:{s:o, s:o}}", "format",
                            FW_RECORD_FORMAT, "generation", (json_int_t)s->generation, "active",
                            slot_ref(s->active), "pending", slot_ref(s->pending), "booted",
                            slot_ref(s->booted), "attempts", (int)s->attempts, "max_attempts",
                            (int)s->max_attempts, "confirmed", s->confirmed, "slots", "a",
                            slot_json(&s->slot[0]), "b", slot_json(&s->slot[1]));

    *json = obj != NULL ? json_dumps(obj, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(obj);
    return *json != NULL ? TS_OK : ts_error_set(TS_ERR_NOMEM, "cannot encode the boot state");
}

/* "a", "b", or null (when allowed) into *slot. */
static int slot_of(json_t *v, int may_be_null, int *slot)
{
    const char *s = json_string_value(v);
    if (json_is_null(v) && may_be_null) {
        *slot = FW_NONE;
        return 0;
    }
    if (s == NULL || strlen(s) != 1 || (s[0] != 'a' && s[0] != 'b')) {
        return -1;
    }
    *slot = s[0] - 'a';
    return 0;
}

static int slot_rec(json_t *v, fw_slot_rec *r)
{
    json_int_t version = -1, seq = -1, size = -1;
    if (json_unpack(v, "{s:I, s:I, s:I !}", "version", &version, "seq", &seq, "size", &size) != 0 ||
        version < 0 || seq < 0 || size < 0) {
        return -1;
    }
    r->version = (uint64_t)version;
    r->seq = (uint64_t)seq;
    r->size = (uint64_t)size;
    return 0;
}

ts_err fw_state_decode(const uint8_t *data, size_t len, fw_state *s)
{
    json_error_t jerr;
    json_t *obj = json_loadb((const char *)data, len, JSON_REJECT_DUPLICATES, &jerr);
    json_t *active = NULL, *pending = NULL, *booted = NULL, *a = NULL, *b = NULL;
    json_int_t gen = -1;
    int format = 0, attempts = -1, max_attempts = -1, confirmed = 0;
    int bad;

    memset(s, 0, sizeof *s);
    bad = obj == NULL ||
          json_unpack(obj, "{s:i, s:I, s:o, s:o, s:o, s:i, s:i, s:b, s:{s:o, s:o !} !}", "format",
                      &format, "generation", &gen, "active", &active, "pending", &pending, "booted",
                      &booted, "attempts", &attempts, "max_attempts", &max_attempts, "confirmed",
                      &confirmed, "slots", "a", &a, "b", &b) != 0;
    bad = bad || format != FW_RECORD_FORMAT || gen < 0 || attempts < 0 ||
          attempts > FW_ATTEMPTS_MAX || max_attempts < 1 || max_attempts > FW_ATTEMPTS_MAX;
    bad = bad || slot_of(active, 0, &s->active) != 0 || slot_of(pending, 1, &s->pending) != 0 ||
          slot_of(booted, 1, &s->booted) != 0 || slot_rec(a, &s->slot[0]) != 0 ||
          slot_rec(b, &s->slot[1]) != 0 || s->pending == s->active;
    json_decref(obj);
    if (bad) {
        memset(s, 0, sizeof *s);
        return ts_error_set(TS_ERR_CORRUPT, "the boot-state record does not parse");
    }
    s->generation = (uint64_t)gen;
    s->attempts = (unsigned)attempts;
    s->max_attempts = (unsigned)max_attempts;
    s->confirmed = confirmed;
    return TS_OK;
}

ts_err fw_state_load(const char *dir, fw_state *s)
{
    char path[PATH_MAX];
    uint8_t *data = NULL;
    size_t len = 0;
    ts_err rv = fw_path(dir, FW_STATE_FILE, path);

    memset(s, 0, sizeof *s);
    if (rv == TS_OK) {
        rv = ts_file_read(path, FW_STATE_MAX, &data, &len);
    }
    if (rv == TS_OK) {
        rv = fw_state_decode(data, len, s);
        OPENSSL_clear_free(data, len);
        if (rv != TS_OK) {
            rv = ts_error_prefix(rv, "%s", path);
        }
    }
    return rv;
}

ts_err fw_state_save(const char *dir, fw_state *s)
{
    char path[PATH_MAX];
    char *text = NULL;
    ts_err rv;

    s->generation++;
    rv = fw_state_encode(s, &text);
    if (rv == TS_OK) {
        rv = fw_path(dir, FW_STATE_FILE, path);
    }
    if (rv == TS_OK) {
        rv = ts_file_write_atomic(path, (const uint8_t *)text, strlen(text), 0600);
    }
    free(text);
    if (rv != TS_OK) {
        s->generation--;
        return ts_error_prefix(rv, "writing the boot state");
    }
    return TS_OK;
}

ts_err fw_lock(const char *dir, int *fd)
{
    char path[PATH_MAX];
    ts_err rv = fw_path(dir, FW_LOCK_FILE, path);
    return rv == TS_OK ? ts_file_lock(path, fd) : rv;
}

void fw_unlock(int fd)
{
    if (fd >= 0) {
        ts_file_unlock(fd);
    }
}
