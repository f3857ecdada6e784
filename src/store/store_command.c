/*
 * Signed remote commands (include/tessera/commands.h). The sequence number of a command is
 * computed by the INSERT itself from the device's highest one, and (tenant, device, seq) is
 * unique: two writers that race get one success and one TS_ERR_EXISTS, which the caller retries.
 * A state change names the states it may leave, so a result for a command that is no longer
 * waiting for one changes nothing.
 */
#include <string.h>

#include <openssl/crypto.h>

#include "common/error_internal.h"
#include "store/store_access_internal.h"
#include "tessera/commands.h"

#define COMMAND_COLUMNS                                                                            \
    "c.id, c.cmd_id, c.tenant_id, t.name, c.device_uid, c.seq, c.name, c.args, c.issued, "         \
    "c.expires, c.state, c.output, c.error, c.result_time, c.sent, c.actor"
#define COMMAND_FROM " FROM commands c JOIN tenants t ON t.id = c.tenant_id"

typedef struct command_list {
    ts_command_row *rows;
    size_t count, cap;
} command_list;

static ts_err command_row(void *ctx, const ts_sql_row *row)
{
    command_list *l = ctx;
    int64_t seq = 0, state = 0;
    ts_err rv = ts_array_reserve((void **)&l->rows, sizeof *l->rows, &l->cap, l->count + 1);
    if (rv != TS_OK) {
        return rv;
    }
    ts_command_row *c = &l->rows[l->count];
    memset(c, 0, sizeof *c);
    rv = ts_sql_get_int(row, 0, "commands.id", &c->rowid);
    if (rv == TS_OK) {
        rv = ts_sql_get_text(row, 1, "commands.cmd_id", c->cmd.id, sizeof c->cmd.id);
    }
    if (rv == TS_OK) {
        rv = ts_sql_get_int(row, 2, "commands.tenant_id", &c->tenant_id);
    }
    if (rv == TS_OK) {
        rv = ts_sql_get_text(row, 3, "tenants.name", c->cmd.tenant, sizeof c->cmd.tenant);
    }
    if (rv == TS_OK) {
        rv = ts_sql_get_text(row, 4, "commands.device_uid", c->cmd.uid, sizeof c->cmd.uid);
    }
    if (rv == TS_OK) {
        rv = ts_sql_get_int(row, 5, "commands.seq", &seq);
    }
    if (rv == TS_OK) {
        rv = ts_sql_get_text(row, 6, "commands.name", c->cmd.name, sizeof c->cmd.name);
    }
    if (rv == TS_OK) {
        rv = ts_sql_get_text(row, 7, "commands.args", c->cmd.args, sizeof c->cmd.args);
    }
    if (rv == TS_OK) {
        rv = ts_sql_get_int(row, 8, "commands.issued", &c->cmd.issued);
    }
    if (rv == TS_OK) {
        rv = ts_sql_get_int(row, 9, "commands.expires", &c->cmd.expires);
    }
    if (rv == TS_OK) {
        rv = ts_sql_get_int(row, 10, "commands.state", &state);
    }
    if (rv == TS_OK) {
        rv = ts_sql_get_text(row, 11, "commands.output", c->output, sizeof c->output);
    }
    if (rv == TS_OK) {
        rv = ts_sql_get_text(row, 12, "commands.error", c->error, sizeof c->error);
    }
    if (rv == TS_OK) {
        rv = ts_sql_get_time(row, 13, "commands.result_time", &c->result_time);
    }
    if (rv == TS_OK) {
        rv = ts_sql_get_time(row, 14, "commands.sent", &c->sent);
    }
    if (rv == TS_OK) {
        rv = ts_sql_get_text(row, 15, "commands.actor", c->actor, sizeof c->actor);
    }
    if (rv == TS_OK && (seq < 1 || state < TS_COMMAND_PENDING || state > TS_COMMAND_EXPIRED)) {
        rv = ts_error_set(TS_ERR_CORRUPT, "command row %lld has seq %lld and state %lld",
                          (long long)c->rowid, (long long)seq, (long long)state);
    }
    c->cmd.seq = (uint64_t)seq;
    c->state = (ts_command_state)state;
    if (rv == TS_OK) {
        l->count++;
    }
    return rv;
}

/* Row callback for "RETURNING id, seq". */
static ts_err id_seq_row(void *ctx, const ts_sql_row *row)
{
    int64_t *v = ctx;
    ts_err rv = ts_sql_get_int(row, 0, "commands.id", &v[0]);
    return rv == TS_OK ? ts_sql_get_int(row, 1, "commands.seq", &v[1]) : rv;
}

ts_err ts_store_command_insert(ts_store *store, ts_command_row *row)
{
    int64_t got[2] = {0, 0};
    if (store == NULL || row == NULL) {
        return ts_error_set(TS_ERR_INVALID, "ts_store_command_insert: missing argument");
    }
    ts_err rv = ts_store_need_tx(store, "ts_store_command_insert");
    if (rv != TS_OK) {
        return rv;
    }
    ts_sql_value p[] = {ts_sql_text(row->cmd.id),     ts_sql_int(row->tenant_id),
                        ts_sql_text(row->cmd.uid),    ts_sql_text(row->cmd.name),
                        ts_sql_text(row->cmd.args),   ts_sql_int(row->cmd.issued),
                        ts_sql_int(row->cmd.expires), ts_sql_text(row->actor)};
    rv = ts_store_write_query(
        store,
        "INSERT INTO commands (cmd_id, tenant_id, device_uid, seq, name, args, issued, expires, "
        "state, output, error, result_time, sent, actor) SELECT $1, $2, $3, "
        "COALESCE(MAX(seq), 0) + 1, $4, $5, $6, $7, 1, '', '', 0, 0, $8 FROM commands "
        "WHERE tenant_id = $2 AND device_uid = $3 RETURNING id, seq",
        p, 8, id_seq_row, got);
    if (rv == TS_OK && (got[0] == 0 || got[1] < 1)) {
        rv = ts_error_set(TS_ERR_STORE, "the new command got no id or sequence number");
    }
    if (rv != TS_OK) {
        return ts_error_prefix(rv, "storing a command for device '%s'", row->cmd.uid);
    }
    row->rowid = got[0];
    row->cmd.seq = (uint64_t)got[1];
    row->state = TS_COMMAND_PENDING;
    return TS_OK;
}

ts_err ts_store_command_get(ts_store *store, int64_t tenant_id, const char *device_uid,
                            const char *id, ts_command_row *out)
{
    command_list l = {0};
    if (store == NULL || device_uid == NULL || id == NULL || out == NULL) {
        return ts_error_set(TS_ERR_INVALID, "ts_store_command_get: missing argument");
    }
    ts_sql_value p[] = {ts_sql_int(tenant_id), ts_sql_text(device_uid), ts_sql_text(id)};
    ts_err rv = ts_store_read(store,
                              "SELECT " COMMAND_COLUMNS COMMAND_FROM " WHERE c.tenant_id = $1 "
                              "AND c.device_uid = $2 AND c.cmd_id = $3",
                              p, 3, command_row, &l);
    if (rv == TS_OK && l.count != 1) {
        rv =
            ts_error_set(TS_ERR_NOT_FOUND, "no command '%.40s' for device '%.64s'", id, device_uid);
    }
    if (rv == TS_OK) {
        *out = l.rows[0];
    }
    OPENSSL_free(l.rows);
    return rv;
}

ts_err ts_store_command_list(ts_store *store, int64_t tenant_id, const char *device_uid,
                             ts_command_state state, int64_t before, size_t limit,
                             ts_command_row **rows, size_t *count)
{
    command_list l = {0};
    if (store == NULL || rows == NULL || count == NULL || (device_uid == NULL && state == 0)) {
        return ts_error_set(TS_ERR_INVALID, "ts_store_command_list: missing argument");
    }
    *rows = NULL;
    *count = 0;
    if (limit == 0 || limit > TS_COMMAND_LIST_MAX) {
        limit = limit == 0 ? 100 : TS_COMMAND_LIST_MAX;
    }
    ts_err rv;
    if (device_uid == NULL) {
        ts_sql_value p[] = {ts_sql_int(state), ts_sql_int((int64_t)limit)};
        rv = ts_store_read(store,
                           "SELECT " COMMAND_COLUMNS COMMAND_FROM
                           " WHERE c.state = $1 ORDER BY c.id ASC LIMIT $2",
                           p, 2, command_row, &l);
    } else {
        ts_sql_value p[] = {ts_sql_int(tenant_id), ts_sql_text(device_uid), ts_sql_int(before),
                            ts_sql_int((int64_t)limit)};
        rv = ts_store_read(store,
                           "SELECT " COMMAND_COLUMNS COMMAND_FROM
                           " WHERE c.tenant_id = $1 AND c.device_uid = $2 AND ($3 = 0 OR c.id < $3)"
                           " ORDER BY c.id DESC LIMIT $4",
                           p, 4, command_row, &l);
    }
    if (rv != TS_OK) {
        OPENSSL_free(l.rows);
        return ts_error_prefix(rv, "listing commands");
    }
    *rows = l.rows;
    *count = l.count;
    return TS_OK;
}

ts_err ts_store_command_settle(ts_store *store, int64_t rowid, unsigned from_mask,
                               ts_command_state state, const char *output, const char *error,
                               time_t when)
{
    int64_t changes = 0;
    ts_err rv = ts_store_need_tx(store, "ts_store_command_settle");
    if (rv != TS_OK) {
        return rv;
    }
    ts_sql_value p[] = {
        ts_sql_int(rowid),
        ts_sql_int(state),
        ts_sql_text(output != NULL ? output : ""),
        ts_sql_text(error != NULL ? error : ""),
        ts_sql_int(when),
        ts_sql_int((from_mask >> TS_COMMAND_PENDING) & 1U ? TS_COMMAND_PENDING : 0),
        ts_sql_int((from_mask >> TS_COMMAND_SENT) & 1U ? TS_COMMAND_SENT : 0),
    };
    /* Sent keeps the result fields empty and records when; the others record the result. */
    rv = ts_store_write(store,
                        "UPDATE commands SET state = $2, "
                        "output = CASE WHEN $2 = 2 THEN output ELSE $3 END, "
                        "error = CASE WHEN $2 = 2 THEN error ELSE $4 END, "
                        "result_time = CASE WHEN $2 = 2 THEN result_time ELSE $5 END, "
                        "sent = CASE WHEN $2 = 2 THEN $5 ELSE sent END "
                        "WHERE id = $1 AND state IN ($6, $7)",
                        p, 7, &changes);
    if (rv == TS_OK && changes != 1) {
        rv = ts_error_set(TS_ERR_STATE, "the command is no longer waiting for this");
    }
    return rv;
}

ts_err ts_store_command_expire(ts_store *store, time_t now, size_t *count)
{
    int64_t changes = 0;
    ts_err rv = ts_store_need_tx(store, "ts_store_command_expire");
    if (rv != TS_OK) {
        return rv;
    }
    ts_sql_value p[] = {ts_sql_int(now)};
    rv = ts_store_write(store,
                        "UPDATE commands SET state = 6, result_time = $1, error = 'expired' "
                        "WHERE state IN (1, 2) AND expires < $1",
                        p, 1, &changes);
    if (rv == TS_OK && count != NULL) {
        *count = (size_t)changes;
    }
    return rv;
}

/* The setting that names a tenant's command-key certificate: "command.key.<tenant id>". */
static void key_setting(int64_t tenant_id, char name[48])
{
    snprintf(name, 48, "command.key.%lld", (long long)tenant_id);
}

ts_err ts_store_command_key_claim(ts_store *store, int64_t tenant_id, const char *value)
{
    char name[48];
    ts_err rv = ts_store_need_tx(store, "ts_store_command_key_claim");
    if (rv != TS_OK) {
        return rv;
    }
    key_setting(tenant_id, name);
    ts_sql_value p[] = {ts_sql_text(name), ts_sql_text(value)};
    /* A plain INSERT: of two claimants, the second gets TS_ERR_EXISTS. */
    return ts_store_write(store, "INSERT INTO settings (name, value) VALUES ($1, $2)", p, 2, NULL);
}

ts_err ts_store_command_key_set(ts_store *store, int64_t tenant_id, const char *value)
{
    char name[48];
    key_setting(tenant_id, name);
    return ts_store_setting_set(store, name, value);
}

ts_err ts_store_command_key_get(ts_store *store, int64_t tenant_id, char **value)
{
    char name[48];
    key_setting(tenant_id, name);
    return ts_store_setting_get(store, name, value);
}

ts_err ts_store_command_key_drop(ts_store *store, int64_t tenant_id, const char *value)
{
    char name[48];
    ts_err rv = ts_store_need_tx(store, "ts_store_command_key_drop");
    if (rv != TS_OK) {
        return rv;
    }
    key_setting(tenant_id, name);
    ts_sql_value p[] = {ts_sql_text(name), ts_sql_text(value)};
    return ts_store_write(store, "DELETE FROM settings WHERE name = $1 AND value = $2", p, 2, NULL);
}
