/*
 * Remote commands at the CA level (include/tessera/commands.h): create, read, mark sent, record
 * a verified result, expire.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "common/error_internal.h"
#include "server/command_internal.h"

enum {
    CREATE_TRIES = 8, /* a taken seq (another writer) or id is retried with fresh values */
};

static const char *const STATE_NAMES[] = {"",       "pending", "sent",   "done",
                                          "failed", "refused", "expired"};

const char *ts_command_state_name(ts_command_state state)
{
    return state >= TS_COMMAND_PENDING && state <= TS_COMMAND_EXPIRED ? STATE_NAMES[state]
                                                                      : "unknown";
}

ts_err ts_command_name_check(const char *name)
{
    size_t n = name != NULL ? strlen(name) : 0;
    int ok = n >= 1 && n <= TS_COMMAND_NAME_MAX && name[0] >= 'a' && name[0] <= 'z';
    for (size_t i = 0; ok && i < n; i++) {
        char c = name[i];
        ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
    }
    return ok ? TS_OK
              : ts_error_set(TS_ERR_INVALID,
                             "a command name is [a-z][a-z0-9._-]*, at most %d characters",
                             TS_COMMAND_NAME_MAX);
}

/* The arguments: a JSON array of strings without NUL, into out as compact JSON. */
static ts_err args_check(const char *args, char out[TS_COMMAND_ARGS_MAX + 1])
{
    json_error_t jerr;
    json_t *doc = json_loads(args, JSON_REJECT_DUPLICATES, &jerr);
    int ok = json_is_array(doc);
    size_t i;
    json_t *v;
    json_array_foreach(doc, i, v)
    {
        ok = ok && json_is_string(v) && strlen(json_string_value(v)) == json_string_length(v);
    }
    char *text = ok ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    if (!ok) {
        return ts_error_set(TS_ERR_INVALID, "a command's arguments are a JSON array of strings");
    }
    if (text == NULL || strlen(text) > TS_COMMAND_ARGS_MAX) {
        free(text);
        return ts_error_set(TS_ERR_LIMIT, "a command's arguments are at most %d bytes of JSON",
                            TS_COMMAND_ARGS_MAX);
    }
    snprintf(out, TS_COMMAND_ARGS_MAX + 1, "%s", text);
    free(text);
    return TS_OK;
}

/* A random id as a version 4 UUID (RFC 9562 section 5.4): 36 of [0-9a-f-]. */
static ts_err command_id(char out[TS_COMMAND_ID_MAX + 1])
{
    unsigned char b[16];
    if (RAND_bytes(b, sizeof b) != 1) {
        return ts_error_set_openssl(TS_ERR_CRYPTO, "no random bytes for a command id");
    }
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    snprintf(out, TS_COMMAND_ID_MAX + 1,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
             b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
             b[15]);
    return TS_OK;
}

ts_err ts_ca_command_create(ts_ca *ca, const ts_command_spec *spec, ts_command_row *out)
{
    ts_tenant_row t;
    ts_device_row dev;
    ts_command_row row;

    if (ca == NULL || spec == NULL) {
        return ts_error_set(TS_ERR_INVALID, "ts_ca_command_create: missing argument");
    }
    memset(&row, 0, sizeof row);
    int64_t ttl = spec->ttl == 0 ? TS_COMMAND_TTL_DEFAULT : spec->ttl;
    const char *args = spec->args != NULL && spec->args[0] != '\0' ? spec->args : "[]";
    ts_err rv = ts_device_uid_check(spec->device_uid);
    if (rv == TS_OK) {
        rv = ts_command_name_check(spec->name);
    }
    if (rv == TS_OK && (ttl < 1 || ttl > TS_COMMAND_TTL_MAX)) {
        rv = ts_error_set(TS_ERR_INVALID, "a command's ttl is 1 to %d seconds", TS_COMMAND_TTL_MAX);
    }
    if (rv == TS_OK && strlen(args) > TS_COMMAND_ARGS_MAX) {
        rv = ts_error_set(TS_ERR_LIMIT, "a command's arguments are at most %d bytes of JSON",
                          TS_COMMAND_ARGS_MAX);
    }
    if (rv == TS_OK) {
        rv = args_check(args, row.cmd.args);
    }
    if (rv == TS_OK) {
        rv = ts_ca_tenant(ca, spec->tenant, &t);
    }
    if (rv == TS_OK) {
        rv = ts_store_device_get(ca->store, t.id, spec->device_uid, &dev);
        if (rv == TS_ERR_NOT_FOUND) {
            rv = ts_error_set(rv, "no device %s in tenant '%s'", spec->device_uid, t.name);
        }
    }
    if (rv == TS_OK && dev.state != TS_DEVICE_ENABLED) {
        rv = ts_error_set(TS_ERR_STATE, "device %s is disabled", spec->device_uid);
    }
    if (rv != TS_OK) {
        return rv;
    }
    const char *actor = spec->actor != NULL ? spec->actor : ca->actor;
    row.tenant_id = t.id;
    if (strlen(t.name) > TS_COMMAND_TENANT_MAX) {
        return ts_error_set(TS_ERR_UNSUPPORTED,
                            "tenant names of commands are at most %d "
                            "characters",
                            TS_COMMAND_TENANT_MAX);
    }
    memcpy(row.cmd.tenant, t.name, strlen(t.name) + 1);
    snprintf(row.cmd.uid, sizeof row.cmd.uid, "%s", spec->device_uid);
    snprintf(row.cmd.name, sizeof row.cmd.name, "%s", spec->name);
    size_t actor_len = strnlen(actor, sizeof row.actor - 1);
    memcpy(row.actor, actor, actor_len);
    row.actor[actor_len] = '\0';
    row.cmd.issued = (int64_t)time(NULL);
    row.cmd.expires = row.cmd.issued + ttl;
    row.cmd.seq = 1;
    rv = command_id(row.cmd.id);
    for (int i = 0; rv == TS_OK && i < CREATE_TRIES; i++) {
        rv = ts_store_begin(ca->store);
        if (rv != TS_OK) {
            break;
        }
        rv = ts_store_command_insert(ca->store, &row);
        if (rv == TS_OK) {
            rv = srv_audit(ca, "command.create", row.cmd.id,
                           srv_json("{s:s, s:s, s:I, s:s, s:s, s:I, s:s}", "tenant", t.name,
                                    "device", row.cmd.uid, "seq", (json_int_t)row.cmd.seq, "name",
                                    row.cmd.name, "args", row.cmd.args, "expires",
                                    (json_int_t)row.cmd.expires, "by", row.actor));
        }
        rv = srv_tx_end(ca, rv);
        if (rv != TS_ERR_EXISTS && rv != TS_ERR_CONFLICT) {
            break;
        }
        ts_err idrv = command_id(row.cmd.id);
        if (idrv != TS_OK) {
            rv = idrv;
        }
    }
    if (rv == TS_OK && out != NULL) {
        *out = row;
    }
    return rv;
}

ts_err ts_ca_command_get(ts_ca *ca, const char *tenant, const char *device_uid, const char *id,
                         ts_command_row *out)
{
    ts_tenant_row t;
    if (ca == NULL || device_uid == NULL || id == NULL || out == NULL) {
        return ts_error_set(TS_ERR_INVALID, "ts_ca_command_get: missing argument");
    }
    ts_err rv = ts_ca_tenant(ca, tenant, &t);
    return rv != TS_OK ? rv : ts_store_command_get(ca->store, t.id, device_uid, id, out);
}

ts_err ts_ca_command_list(ts_ca *ca, const char *tenant, const char *device_uid, int64_t before,
                          size_t limit, ts_command_row **rows, size_t *count)
{
    ts_tenant_row t;
    if (ca == NULL || device_uid == NULL) {
        return ts_error_set(TS_ERR_INVALID, "ts_ca_command_list: missing argument");
    }
    ts_err rv = ts_device_uid_check(device_uid);
    if (rv == TS_OK) {
        rv = ts_ca_tenant(ca, tenant, &t);
    }
    return rv != TS_OK
               ? rv
               : ts_store_command_list(ca->store, t.id, device_uid, 0, before, limit, rows, count);
}

ts_err ts_ca_command_pending(ts_ca *ca, size_t limit, ts_command_row **rows, size_t *count)
{
    if (ca == NULL) {
        return ts_error_set(TS_ERR_INVALID, "ts_ca_command_pending: missing argument");
    }
    return ts_store_command_list(ca->store, 0, NULL, TS_COMMAND_PENDING, 0, limit, rows, count);
}

ts_err ts_ca_command_mark_sent(ts_ca *ca, const ts_command_row *row)
{
    if (ca == NULL || row == NULL) {
        return ts_error_set(TS_ERR_INVALID, "ts_ca_command_mark_sent: missing argument");
    }
    ts_err rv = ts_store_begin(ca->store);
    if (rv != TS_OK) {
        return rv;
    }
    rv = ts_store_command_settle(ca->store, row->rowid, 1U << TS_COMMAND_PENDING, TS_COMMAND_SENT,
                                 NULL, NULL, time(NULL));
    if (rv == TS_ERR_STATE) {
        rv = TS_OK; /* expired or answered meanwhile */
    }
    return srv_tx_end(ca, rv);
}

ts_err ts_ca_command_expire(ts_ca *ca, time_t now, size_t *count)
{
    size_t n = 0;
    if (ca == NULL) {
        return ts_error_set(TS_ERR_INVALID, "ts_ca_command_expire: missing argument");
    }
    ts_err rv = ts_store_begin(ca->store);
    if (rv != TS_OK) {
        return rv;
    }
    rv = ts_store_command_expire(ca->store, now, &n);
    if (rv == TS_OK && n > 0) {
        rv = srv_audit(ca, "command.expire", "", srv_json("{s:I}", "count", (json_int_t)n));
    }
    rv = srv_tx_end(ca, rv);
    if (rv == TS_OK && count != NULL) {
        *count = n;
    }
    return rv;
}
