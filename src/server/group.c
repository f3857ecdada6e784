/*
 * Device groups (include/tessera/access.h): named sets of a tenant's registered devices, each
 * change in one transaction with its audit entry.
 */
#include <string.h>

#include <openssl/crypto.h>

#include "common/error_internal.h"
#include "server/server_internal.h"
#include "tessera/store_access.h"

ts_err ts_group_name_check(const char *name)
{
    size_t len = name != NULL ? strlen(name) : 0;
    if (len == 0 || len > TS_NAME_MAX || name[0] == '.' || name[0] == '-' ||
        strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != len) {
        return ts_error_set(TS_ERR_INVALID,
                            "a group name is 1 to %d of A-Z a-z 0-9 . _ - (not starting with . "
                            "or -)",
                            TS_NAME_MAX);
    }
    return TS_OK;
}

/* Checks the name, finds the tenant and opens the transaction. */
static ts_err begin(ts_ca *ca, const char *tenant, const char *name, ts_tenant_row *t)
{
    if (ca == NULL) {
        return ts_error_set(TS_ERR_INVALID, "device groups: no instance");
    }
    ts_err rv = ts_group_name_check(name);
    if (rv == TS_OK) {
        rv = ts_ca_tenant(ca, tenant, t);
    }
    if (rv == TS_OK) {
        rv = ts_store_begin(ca->store);
    }
    return rv;
}

ts_err ts_ca_group_create(ts_ca *ca, const char *tenant, const char *name, ts_group_row *out)
{
    ts_tenant_row t;
    ts_group_row row;
    ts_err rv = begin(ca, tenant, name, &t);
    if (rv != TS_OK) {
        return rv;
    }
    memset(&row, 0, sizeof row);
    row.tenant_id = t.id;
    snprintf(row.name, sizeof row.name, "%s", name);
    rv = ts_store_group_insert(ca->store, &row);
    if (rv == TS_ERR_EXISTS) {
        ts_error_set(rv, "tenant '%s' has a group '%s' already", t.name, name);
    }
    if (rv == TS_OK) {
        rv = srv_audit(ca, "group.create", name,
                       srv_json("{s:s, s:s}", "tenant", t.name, "group", name));
    }
    rv = srv_tx_end(ca, rv);
    if (rv == TS_OK && out != NULL) {
        *out = row;
    }
    return rv;
}

ts_err ts_ca_group_delete(ts_ca *ca, const char *tenant, const char *name)
{
    ts_tenant_row t;
    ts_group_row row;
    ts_err rv = begin(ca, tenant, name, &t);
    if (rv != TS_OK) {
        return rv;
    }
    rv = ts_store_group_get(ca->store, t.id, name, &row);
    if (rv == TS_OK) {
        rv = ts_store_group_delete(ca->store, row.id);
    }
    if (rv == TS_OK) {
        rv = srv_audit(ca, "group.delete", name,
                       srv_json("{s:s, s:s, s:I}", "tenant", t.name, "group", name, "members",
                                (json_int_t)row.members));
    }
    return srv_tx_end(ca, rv);
}

/* Adds (add != 0) or removes the devices, all or none. */
static ts_err members_change(ts_ca *ca, const char *tenant, const char *name,
                             const char *const *uids, size_t count, int add)
{
    ts_tenant_row t;
    ts_group_row row;
    ts_err rv = TS_OK;

    if (uids == NULL || count == 0) {
        return ts_error_set(TS_ERR_INVALID, "name at least one device");
    }
    for (size_t i = 0; rv == TS_OK && i < count; i++) {
        rv = ts_device_uid_check(uids[i]);
    }
    if (rv == TS_OK) {
        rv = begin(ca, tenant, name, &t);
    }
    if (rv != TS_OK) {
        return rv;
    }
    rv = ts_store_group_get(ca->store, t.id, name, &row);
    time_t now = time(NULL);
    for (size_t i = 0; rv == TS_OK && i < count; i++) {
        if (add) {
            ts_device_row dev;
            rv = ts_store_device_get(ca->store, t.id, uids[i], &dev);
            if (rv == TS_ERR_NOT_FOUND) {
                ts_error_set(rv, "device %s is not registered in tenant '%s'", uids[i], t.name);
            }
            if (rv == TS_OK && row.members + i >= TS_GROUP_MEMBERS_MAX) {
                rv = ts_error_set(TS_ERR_LIMIT, "group %s has %d devices, the most it may hold",
                                  name, TS_GROUP_MEMBERS_MAX);
            }
            if (rv == TS_OK) {
                rv = ts_store_group_member_add(ca->store, row.id, uids[i], now);
                if (rv == TS_ERR_EXISTS) {
                    ts_error_set(rv, "device %s is in group %s already", uids[i], name);
                }
            }
        } else {
            rv = ts_store_group_member_remove(ca->store, row.id, uids[i]);
            if (rv == TS_ERR_NOT_FOUND) {
                ts_error_set(rv, "device %s is not in group %s", uids[i], name);
            }
        }
        if (rv == TS_OK) {
            rv = srv_audit(
                ca, add ? "group.add" : "group.remove", name,
                srv_json("{s:s, s:s, s:s}", "tenant", t.name, "group", name, "device", uids[i]));
        }
    }
    return srv_tx_end(ca, rv);
}

ts_err ts_ca_group_add(ts_ca *ca, const char *tenant, const char *name, const char *const *uids,
                       size_t count)
{
    return members_change(ca, tenant, name, uids, count, 1);
}

ts_err ts_ca_group_remove(ts_ca *ca, const char *tenant, const char *name, const char *const *uids,
                          size_t count)
{
    return members_change(ca, tenant, name, uids, count, 0);
}

ts_err ts_ca_group_list(ts_ca *ca, const char *tenant, ts_group_row **rows, size_t *count)
{
    ts_tenant_row t;
    if (ca == NULL) {
        return ts_error_set(TS_ERR_INVALID, "ts_ca_group_list: missing argument");
    }
    ts_err rv = ts_ca_tenant(ca, tenant, &t);
    return rv != TS_OK ? rv : ts_store_group_list(ca->store, t.id, rows, count);
}

ts_err ts_ca_group_get(ts_ca *ca, const char *tenant, const char *name, ts_group_row *out,
                       ts_group_member **members, size_t *count)
{
    ts_tenant_row t;
    if (ca == NULL || out == NULL) {
        return ts_error_set(TS_ERR_INVALID, "ts_ca_group_get: missing argument");
    }
    ts_err rv = ts_group_name_check(name);
    if (rv == TS_OK) {
        rv = ts_ca_tenant(ca, tenant, &t);
    }
    if (rv == TS_OK) {
        rv = ts_store_group_get(ca->store, t.id, name, out);
    }
    if (rv == TS_OK && members != NULL) {
        rv = ts_store_group_members(ca->store, out->id, members, count);
    }
    return rv;
}
