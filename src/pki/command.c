/*
 * The content of command envelopes and results (include/tessera/command.h): field checks and
 * the JSON both ways. The CMS around it is in command_cms.c.
 *
 * Decoding is strict: every key known, every field of its type and within its limits, no
 * duplicate keys, so an envelope means one thing to the service that signed it and to the
 * device that runs it.
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/error_internal.h"
#include "pki/command_internal.h"

static const char *const status_names[] = {
    [TS_COMMAND_DONE] = "done",
    [TS_COMMAND_FAILED] = "failed",
    [TS_COMMAND_REFUSED] = "refused",
};

const char *ts_command_status_name(ts_command_status status)
{
    if ((unsigned)status >= sizeof status_names / sizeof status_names[0]) {
        return NULL;
    }
    return status_names[status];
}

ts_err ts_command_status_parse(const char *name, ts_command_status *out)
{
    for (size_t i = 0; name != NULL && i < sizeof status_names / sizeof status_names[0]; i++) {
        if (strcmp(name, status_names[i]) == 0) {
            *out = (ts_command_status)i;
            return TS_OK;
        }
    }
    return ts_error_set(TS_ERR_INVALID, "unknown command status '%s'", name ? name : "");
}

/* 1 to max characters, each a letter, a digit or one of extra. */
static int text_ok(const char *s, size_t max, const char *extra)
{
    size_t len = s != NULL ? strlen(s) : 0;
    if (len == 0 || len > max) {
        return 0;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        int alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (!alnum && strchr(extra, c) == NULL) {
            return 0;
        }
    }
    return 1;
}

static int name_ok(const char *s)
{
    if (!text_ok(s, TS_COMMAND_NAME_MAX, "._-") || s[0] < 'a' || s[0] > 'z') {
        return 0;
    }
    for (const char *p = s; *p != '\0'; p++) {
        if (*p >= 'A' && *p <= 'Z') {
            return 0;
        }
    }
    return 1;
}

static int tenant_ok(const char *s)
{
    if (!text_ok(s, TS_COMMAND_TENANT_MAX, "-") || s[0] == '-') {
        return 0;
    }
    for (const char *p = s; *p != '\0'; p++) {
        if (*p >= 'A' && *p <= 'Z') {
            return 0;
        }
    }
    return 1;
}

/* The common fields: who it is for and which command. */
static ts_err check_addressing(const char *id, const char *tenant, const char *uid)
{
    if (!text_ok(id, TS_COMMAND_ID_MAX, "-")) {
        return ts_error_set(TS_ERR_INVALID, "a command id has 1 to %d of [A-Za-z0-9-]",
                            TS_COMMAND_ID_MAX);
    }
    if (!tenant_ok(tenant)) {
        return ts_error_set(TS_ERR_INVALID, "a tenant name has 1 to %d of [a-z0-9-]",
                            TS_COMMAND_TENANT_MAX);
    }
    if (!text_ok(uid, TS_COMMAND_UID_MAX, "._:-")) {
        return ts_error_set(TS_ERR_INVALID, "a device UID has 1 to %d of [A-Za-z0-9._:-]",
                            TS_COMMAND_UID_MAX);
    }
    return TS_OK;
}

/* args must be a JSON array of strings; *out (when not NULL) gets the parsed array. */
static ts_err check_args(const char *args, json_t **out)
{
    json_error_t jerr;
    json_t *arr = json_loads(args, JSON_REJECT_DUPLICATES, &jerr);
    if (arr == NULL || !json_is_array(arr)) {
        json_decref(arr);
        return ts_error_set(TS_ERR_INVALID, "command arguments must be a JSON array of strings");
    }
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v)
    {
        if (!json_is_string(v)) {
            json_decref(arr);
            return ts_error_set(TS_ERR_INVALID, "command argument %zu is not a string", i + 1);
        }
    }
    if (out != NULL) {
        *out = arr;
    } else {
        json_decref(arr);
    }
    return TS_OK;
}

ts_err ts_command_check(const ts_command *cmd)
{
    ts_err rv = check_addressing(cmd->id, cmd->tenant, cmd->uid);
    if (rv != TS_OK) {
        return rv;
    }
    if (!name_ok(cmd->name)) {
        return ts_error_set(TS_ERR_INVALID,
                            "a command name has 1 to %d of [a-z0-9._-] and starts "
                            "with a letter",
                            TS_COMMAND_NAME_MAX);
    }
    if (cmd->seq < 1 || cmd->seq > (uint64_t)INT64_MAX) {
        return ts_error_set(TS_ERR_INVALID, "a command's sequence number is from 1 to 2^63-1");
    }
    if (cmd->issued < 0 || cmd->expires <= cmd->issued) {
        return ts_error_set(TS_ERR_INVALID, "a command must expire after it is issued");
    }
    return check_args(cmd->args, NULL);
}

ts_err ts_command_result_check(const ts_command_result *r)
{
    /* A refusal of an unreadable envelope names no command: id and tenant may be empty. */
    int anonymous = r->status == TS_COMMAND_REFUSED && r->id[0] == '\0';
    ts_err rv = anonymous ? TS_OK : check_addressing(r->id, r->tenant, r->uid);
    if (rv != TS_OK) {
        return rv;
    }
    if (!text_ok(r->uid, TS_COMMAND_UID_MAX, "._:-")) {
        return ts_error_set(TS_ERR_INVALID, "a device UID has 1 to %d of [A-Za-z0-9._:-]",
                            TS_COMMAND_UID_MAX);
    }
    if (anonymous && r->tenant[0] != '\0' && !tenant_ok(r->tenant)) {
        return ts_error_set(TS_ERR_INVALID, "a tenant name has 1 to %d of [a-z0-9-]",
                            TS_COMMAND_TENANT_MAX);
    }
    if (ts_command_status_name(r->status) == NULL) {
        return ts_error_set(TS_ERR_INVALID, "unknown command status %d", (int)r->status);
    }
    if (r->seq > (uint64_t)INT64_MAX || r->time < 0) {
        return ts_error_set(TS_ERR_INVALID, "a result's sequence number or time is out of range");
    }
    if (strnlen(r->output, sizeof r->output) == sizeof r->output ||
        strnlen(r->error, sizeof r->error) == sizeof r->error) {
        return ts_error_set(TS_ERR_INVALID, "a result's output or error is not terminated");
    }
    return TS_OK;
}

ts_err ts_command_args_from_argv(int argc, const char *const *argv,
                                 char out[TS_COMMAND_ARGS_MAX + 1])
{
    json_t *arr = json_array();
    ts_err rv = arr != NULL ? TS_OK : ts_error_set(TS_ERR_NOMEM, "no memory for arguments");
    for (int i = 0; rv == TS_OK && i < argc; i++) {
        json_t *s = json_string(argv[i]);
        if (s == NULL || json_array_append_new(arr, s) != 0) {
            rv = ts_error_set(TS_ERR_INVALID, "command argument %d is not UTF-8 text", i + 1);
        }
    }
    char *text = rv == TS_OK ? json_dumps(arr, JSON_COMPACT) : NULL;
    if (rv == TS_OK && text == NULL) {
        rv = ts_error_set(TS_ERR_NOMEM, "no memory for arguments");
    }
    if (rv == TS_OK && strlen(text) > TS_COMMAND_ARGS_MAX) {
        rv = ts_error_set(TS_ERR_LIMIT, "command arguments exceed %d bytes", TS_COMMAND_ARGS_MAX);
    }
    if (rv == TS_OK) {
        memcpy(out, text, strlen(text) + 1);
    }
    free(text);
    json_decref(arr);
    return rv;
}

/* --- Encoding ------------------------------------------------------------------------------- */

static ts_err dump(json_t *obj, char **text, size_t *len)
{
    if (obj == NULL) {
        return ts_error_set(TS_ERR_NOMEM, "no memory for a command");
    }
    *text = json_dumps(obj, JSON_COMPACT);
    json_decref(obj);
    if (*text == NULL) {
        return ts_error_set(TS_ERR_INVALID, "a command field is not UTF-8 text");
    }
    *len = strlen(*text);
    return TS_OK;
}

ts_err ts_command_encode(const ts_command *cmd, char **text, size_t *len)
{
    json_t *args = NULL;
    ts_err rv = ts_command_check(cmd);
    if (rv == TS_OK) {
        rv = check_args(cmd->args, &args);
    }
    if (rv != TS_OK) {
        return rv;
    }
    json_t *obj =
        json_pack("{s:i, s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:s, s:o}", "v", TS_COMMAND_VERSION,
                  "type", "command", "id", cmd->id, "tenant", cmd->tenant, "uid", cmd->uid, "seq",
                  (json_int_t)cmd->seq, "issued", (json_int_t)cmd->issued, "expires",
                  (json_int_t)cmd->expires, "name", cmd->name, "args", args);
    return dump(obj, text, len);
}

ts_err ts_command_result_encode(const ts_command_result *r, char **text, size_t *len)
{
    ts_err rv = ts_command_result_check(r);
    if (rv != TS_OK) {
        return rv;
    }
    json_t *obj =
        json_pack("{s:i, s:s, s:s, s:s, s:s, s:I, s:I, s:s, s:s, s:s}", "v", TS_COMMAND_VERSION,
                  "type", "result", "id", r->id, "tenant", r->tenant, "uid", r->uid, "seq",
                  (json_int_t)r->seq, "time", (json_int_t)r->time, "status",
                  ts_command_status_name(r->status), "output", r->output, "error", r->error);
    return dump(obj, text, len);
}

/* --- Decoding ------------------------------------------------------------------------------- */

typedef struct field {
    const char *key;
    int type; /* JSON_STRING, JSON_INTEGER or JSON_ARRAY */
} field;

/* Every key of obj is one of fields, every field present with its type; v and type match. */
static ts_err check_shape(json_t *obj, const field *fields, size_t n, const char *type)
{
    if (!json_is_object(obj)) {
        return ts_error_set(TS_ERR_INVALID, "a %s is not a JSON object", type);
    }
    if (json_object_size(obj) != n) {
        return ts_error_set(TS_ERR_INVALID, "a %s has %zu members, not %zu", type,
                            json_object_size(obj), n);
    }
    for (size_t i = 0; i < n; i++) {
        json_t *v = json_object_get(obj, fields[i].key);
        if (v == NULL || (int)json_typeof(v) != fields[i].type) {
            return ts_error_set(TS_ERR_INVALID, "a %s's '%s' is missing or of the wrong type", type,
                                fields[i].key);
        }
    }
    if (json_integer_value(json_object_get(obj, "v")) != TS_COMMAND_VERSION) {
        return ts_error_set(TS_ERR_UNSUPPORTED, "a %s of an unknown format version", type);
    }
    if (strcmp(json_string_value(json_object_get(obj, "type")), type) != 0) {
        return ts_error_set(TS_ERR_INVALID, "not a %s", type);
    }
    return TS_OK;
}

/* Copies a string member into buf (size bytes); TS_ERR_INVALID when it does not fit. */
static ts_err copy_string(json_t *obj, const char *key, char *buf, size_t size)
{
    json_t *v = json_object_get(obj, key);
    size_t len = json_string_length(v);
    if (len >= size || memchr(json_string_value(v), '\0', len) != NULL) {
        return ts_error_set(TS_ERR_INVALID, "'%s' is longer than %zu bytes or holds a NUL", key,
                            size - 1);
    }
    memcpy(buf, json_string_value(v), len + 1);
    return TS_OK;
}

typedef struct string_dest {
    const char *key;
    char *buf;
    size_t size;
} string_dest;

/* Copies each string member into its buffer; the first that does not fit fails. */
static ts_err copy_strings(json_t *obj, const string_dest *dests, size_t n)
{
    ts_err rv = TS_OK;
    for (size_t i = 0; rv == TS_OK && i < n; i++) {
        rv = copy_string(obj, dests[i].key, dests[i].buf, dests[i].size);
    }
    return rv;
}

static int64_t int_member(json_t *obj, const char *key)
{
    return (int64_t)json_integer_value(json_object_get(obj, key));
}

static json_t *load(const char *text, size_t len, const char *type, ts_err *rv)
{
    json_error_t jerr;
    json_t *obj = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    *rv = obj != NULL ? TS_OK
                      : ts_error_set(TS_ERR_INVALID, "a %s is not JSON: %s (offset %d)", type,
                                     jerr.text, jerr.position);
    return obj;
}

ts_err ts_command_decode(const char *text, size_t len, ts_command *out)
{
    static const field fields[] = {
        {"v", JSON_INTEGER},      {"type", JSON_STRING},     {"id", JSON_STRING},
        {"tenant", JSON_STRING},  {"uid", JSON_STRING},      {"seq", JSON_INTEGER},
        {"issued", JSON_INTEGER}, {"expires", JSON_INTEGER}, {"name", JSON_STRING},
        {"args", JSON_ARRAY},
    };
    memset(out, 0, sizeof *out);
    ts_err rv;
    json_t *obj = load(text, len, "command", &rv);
    if (rv == TS_OK) {
        rv = check_shape(obj, fields, sizeof fields / sizeof fields[0], "command");
    }
    char *args = NULL;
    if (rv == TS_OK) {
        args = json_dumps(json_object_get(obj, "args"), JSON_COMPACT);
        rv = args != NULL && strlen(args) <= TS_COMMAND_ARGS_MAX
                 ? TS_OK
                 : ts_error_set(TS_ERR_INVALID, "command arguments exceed %d bytes",
                                TS_COMMAND_ARGS_MAX);
    }
    if (rv == TS_OK) {
        memcpy(out->args, args, strlen(args) + 1);
        int64_t seq = int_member(obj, "seq");
        out->seq = seq > 0 ? (uint64_t)seq : 0;
        out->issued = int_member(obj, "issued");
        out->expires = int_member(obj, "expires");
        const string_dest dests[] = {{"id", out->id, sizeof out->id},
                                     {"tenant", out->tenant, sizeof out->tenant},
                                     {"uid", out->uid, sizeof out->uid},
                                     {"name", out->name, sizeof out->name}};
        rv = copy_strings(obj, dests, sizeof dests / sizeof dests[0]);
    }
    if (rv == TS_OK) {
        rv = ts_command_check(out);
    }
    free(args);
    json_decref(obj);
    return rv;
}

ts_err ts_command_result_decode(const char *text, size_t len, ts_command_result *out)
{
    static const field fields[] = {
        {"v", JSON_INTEGER},     {"type", JSON_STRING},   {"id", JSON_STRING},
        {"tenant", JSON_STRING}, {"uid", JSON_STRING},    {"seq", JSON_INTEGER},
        {"time", JSON_INTEGER},  {"status", JSON_STRING}, {"output", JSON_STRING},
        {"error", JSON_STRING},
    };
    memset(out, 0, sizeof *out);
    ts_err rv;
    json_t *obj = load(text, len, "result", &rv);
    if (rv == TS_OK) {
        rv = check_shape(obj, fields, sizeof fields / sizeof fields[0], "result");
    }
    if (rv == TS_OK) {
        int64_t seq = int_member(obj, "seq");
        out->seq = seq >= 0 ? (uint64_t)seq : UINT64_MAX; /* negative: refused by the check */
        out->time = int_member(obj, "time");
        rv = ts_command_status_parse(json_string_value(json_object_get(obj, "status")),
                                     &out->status);
    }
    if (rv == TS_OK) {
        const string_dest dests[] = {{"id", out->id, sizeof out->id},
                                     {"tenant", out->tenant, sizeof out->tenant},
                                     {"uid", out->uid, sizeof out->uid},
                                     {"output", out->output, sizeof out->output},
                                     {"error", out->error, sizeof out->error}};
        rv = copy_strings(obj, dests, sizeof dests / sizeof dests[0]);
    }
    if (rv == TS_OK) {
        rv = ts_command_result_check(out);
    }
    json_decref(obj);
    return rv;
}
