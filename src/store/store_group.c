/*
 * Device groups and their members (include/tessera/access.h). A membership names the device by
 * UID within the group's tenant; deleting a group deletes its memberships first.
 */
#include <string.h>

#include <openssl/crypto.h>

#include "common/error_internal.h"
#include "store/store_access_internal.h"
#include "tessera/access.h"

#define GROUP_SELECT                                                                               \
    "SELECT g.id, g.tenant_id, g.name, g.created, "                                                \
    "(SELECT COUNT(*) FROM device_group_members m WHERE m.group_id = g.id) FROM device_groups g "

typedef struct group_list {
    ts_group_row *rows;
    size_t count, cap;
} group_list;

typedef struct member_list {
    ts_group_member *rows;
    size_t count, cap;
} member_list;

static ts_err group_row(void *ctx, const ts_sql_row *row)
{
    group_list *l = ctx;
    int64_t members = 0;
    ts_err rv = ts_array_reserve((void **)&l->rows, sizeof *l->rows, &l->cap, l->count + 1);
    if (rv != TS_OK) {
        return rv;
    }
    ts_group_row *g = &l->rows[l->count];
    memset(g, 0, sizeof *g);
    rv = ts_sql_get_int(row, 0, "device_groups.id", &g->id);
    if (rv == TS_OK) {
        rv = ts_sql_get_int(row, 1, "device_groups.tenant_id", &g->tenant_id);
    }
    if (rv == TS_OK) {
        rv = ts_sql_get_text(row, 2, "device_groups.name", g->name, sizeof g->name);
    }
    if (rv == TS_OK) {
        rv = ts_sql_get_time(row, 3, "device_groups.created", &g->created);
    }
    if (rv == TS_OK) {
        rv = ts_sql_get_int(row, 4, "a group's member count", &members);
    }
    if (rv == TS_OK && members < 0) {
        rv = ts_error_set(TS_ERR_CORRUPT, "group %s has %lld members", g->name, (long long)members);
    }
    if (rv == TS_OK) {
        g->members = (size_t)members;
        l->count++;
    }
    return rv;
}

static ts_err member_row(void *ctx, const ts_sql_row *row)
{
    member_list *l = ctx;
    ts_err rv = ts_array_reserve((void **)&l->rows, sizeof *l->rows, &l->cap, l->count + 1);
    if (rv != TS_OK) {
        return rv;
    }
    ts_group_member *m = &l->rows[l->count];
    memset(m, 0, sizeof *m);
    rv = ts_sql_get_text(row, 0, "device_group_members.device_uid", m->uid, sizeof m->uid);
    if (rv == TS_OK) {
        rv = ts_sql_get_time(row, 1, "device_group_members.added", &m->added);
    }
    if (rv == TS_OK) {
        l->count++;
    }
    return rv;
}

ts_err ts_store_group_insert(ts_store *store, ts_group_row *row)
{
    int64_t id = 0;
    if (store == NULL || row == NULL || row->tenant_id <= 0) {
        return ts_error_set(TS_ERR_INVALID, "ts_store_group_insert: missing argument");
    }
    ts_err rv = ts_check_name(row->name, "a group name");
    if (rv == TS_OK) {
        rv = ts_store_need_tx(store, "ts_store_group_insert");
    }
    if (rv != TS_OK) {
        return rv;
    }
    time_t created = row->created != 0 ? row->created : time(NULL);
    ts_sql_value p[] = {ts_sql_int(row->tenant_id), ts_sql_text(row->name), ts_sql_int(created)};
    rv = ts_store_write_query(store,
                              "INSERT INTO device_groups (tenant_id, name, created) "
                              "VALUES ($1, $2, $3) ON CONFLICT (tenant_id, name) DO NOTHING "
                              "RETURNING id",
                              p, 3, ts_store_new_id, &id);
    if (rv != TS_OK) {
        return ts_error_prefix(rv, "creating group %s", row->name);
    }
    if (id == 0) {
        return ts_error_set(TS_ERR_EXISTS, "group %s exists", row->name);
    }
    row->id = id;
    row->created = created;
    row->members = 0;
    return TS_OK;
}

ts_err ts_store_group_get(ts_store *store, int64_t tenant_id, const char *name, ts_group_row *out)
{
    group_list l = {0};
    if (store == NULL || name == NULL || out == NULL) {
        return ts_error_set(TS_ERR_INVALID, "ts_store_group_get: missing argument");
    }
    ts_sql_value p[] = {ts_sql_int(tenant_id), ts_sql_text(name)};
    ts_err rv = ts_store_read(store, GROUP_SELECT "WHERE g.tenant_id = $1 AND g.name = $2", p, 2,
                              group_row, &l);
    if (rv == TS_OK && l.count == 0) {
        rv = ts_error_set(TS_ERR_NOT_FOUND, "no group %s", name);
    }
    if (rv == TS_OK) {
        *out = l.rows[0];
    }
    OPENSSL_free(l.rows);
    return rv;
}

ts_err ts_store_group_delete(ts_store *store, int64_t group_id)
{
    int64_t changed = 0;
    ts_sql_value p[] = {ts_sql_int(group_id)};
    ts_err rv = ts_store_need_tx(store, "ts_store_group_delete");
    if (rv == TS_OK) {
        rv = ts_store_write(store, "DELETE FROM device_group_members WHERE group_id = $1", p, 1,
                            NULL);
    }
    if (rv == TS_OK) {
        rv = ts_store_write(store, "DELETE FROM device_groups WHERE id = $1", p, 1, &changed);
    }
    if (rv == TS_OK && changed != 1) {
        rv = ts_error_set(TS_ERR_NOT_FOUND, "no group %lld", (long long)group_id);
    }
    return rv;
}

ts_err ts_store_group_list(ts_store *store, int64_t tenant_id, ts_group_row **rows, size_t *count)
{
    group_list l = {0};
    if (store == NULL || rows == NULL || count == NULL) {
        return ts_error_set(TS_ERR_INVALID, "ts_store_group_list: missing argument");
    }
    *rows = NULL;
    *count = 0;
    ts_sql_value p[] = {ts_sql_int(tenant_id)};
    ts_err rv = ts_store_read(store, GROUP_SELECT "WHERE g.tenant_id = $1 ORDER BY g.name", p, 1,
                              group_row, &l);
    if (rv != TS_OK) {
        OPENSSL_free(l.rows);
        return ts_error_prefix(rv, "listing groups");
    }
    *rows = l.rows;
    *count = l.count;
    return TS_OK;
}

ts_err ts_store_group_member_add(ts_store *store, int64_t group_id, const char *uid, time_t now)
{
    int64_t changed = 0;
    ts_err rv = ts_store_need_tx(store, "ts_store_group_member_add");
    if (rv != TS_OK) {
        return rv;
    }
    ts_sql_value p[] = {ts_sql_int(group_id), ts_sql_text(uid), ts_sql_int(now)};
    rv = ts_store_write(store,
                        "INSERT INTO device_group_members (group_id, device_uid, added) "
                        "VALUES ($1, $2, $3) ON CONFLICT (group_id, device_uid) DO NOTHING",
                        p, 3, &changed);
    if (rv == TS_OK && changed == 0) {
        rv = ts_error_set(TS_ERR_EXISTS, "device %s is a member already", uid);
    }
    return rv;
}

ts_err ts_store_group_member_remove(ts_store *store, int64_t group_id, const char *uid)
{
    int64_t changed = 0;
    ts_err rv = ts_store_need_tx(store, "ts_store_group_member_remove");
    if (rv != TS_OK) {
        return rv;
    }
    ts_sql_value p[] = {ts_sql_int(group_id), ts_sql_text(uid)};
    rv = ts_store_write(store,
                        "DELETE FROM device_group_members WHERE group_id = $1 AND device_uid = $2",
                        p, 2, &changed);
    if (rv == TS_OK && changed == 0) {
        rv = ts_error_set(TS_ERR_NOT_FOUND, "device %s is not a member", uid);
    }
    return rv;
}

ts_err ts_store_group_members(ts_store *store, int64_t group_id, ts_group_member **rows,
                              size_t *count)
{
    member_list l = {0};
    if (store == NULL || rows == NULL || count == NULL) {
        return ts_error_set(TS_ERR_INVALID, "ts_store_group_members: missing argument");
    }
    *rows = NULL;
    *count = 0;
    ts_sql_value p[] = {ts_sql_int(group_id), ts_sql_int(TS_GROUP_MEMBERS_MAX + 1)};
    ts_err rv = ts_store_read(store,
                              "SELECT device_uid, added FROM device_group_members "
                              "WHERE group_id = $1 ORDER BY device_uid LIMIT $2",
                              p, 2, member_row, &l);
    if (rv == TS_OK && l.count > TS_GROUP_MEMBERS_MAX) {
        rv = ts_error_set(TS_ERR_CORRUPT, "group %lld has more than %d members",
                          (long long)group_id, TS_GROUP_MEMBERS_MAX);
    }
    if (rv != TS_OK) {
        OPENSSL_free(l.rows);
        return ts_error_prefix(rv, "reading the members of group %lld", (long long)group_id);
    }
    *rows = l.rows;
    *count = l.count;
    return TS_OK;
}
