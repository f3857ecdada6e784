/*
 * Users and roles (include/tessera/access.h). A user belongs to a tenant, or to no tenant at all:
 * an instance-wide admin (every tenant) or auditor (the instance's audit log). A device user is
 * the API identity of one registered device.
 */
#include <string.h>

#include <openssl/crypto.h>

#include "common/error_internal.h"
#include "server/server_internal.h"
#include "tessera/store_access.h"

static const char *const role_names[] = {
    [TS_ROLE_ADMIN] = "admin",
    [TS_ROLE_OPERATOR] = "operator",
    [TS_ROLE_AUDITOR] = "auditor",
    [TS_ROLE_DEVICE] = "device",
};

const char *ts_role_name(ts_role role)
{
    if (role < TS_ROLE_ADMIN || role > TS_ROLE_DEVICE) {
        return "?";
    }
    return role_names[role];
}

ts_err ts_role_parse(const char *name, ts_role *out)
{
    for (int r = TS_ROLE_ADMIN; name != NULL && r <= TS_ROLE_DEVICE; r++) {
        if (strcmp(name, role_names[r]) == 0) {
            *out = (ts_role)r;
            return TS_OK;
        }
    }
    return ts_error_set(TS_ERR_INVALID, "'%s' is not a role (admin, operator, auditor, device)",
                        name != NULL ? name : "");
}

ts_err srv_user_tenant(ts_ca *ca, const char *tenant, ts_tenant_row *out)
{
    memset(out, 0, sizeof *out);
    if (tenant == NULL) {
        return TS_OK;
    }
    return ts_ca_tenant(ca, tenant, out);
}

/* A user name: what a tenant or profile name may be, so that it fits an audit actor. */
static ts_err user_name_check(const char *name)
{
    size_t len = name != NULL ? strlen(name) : 0;
    if (len == 0 || len > TS_NAME_MAX ||
        strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != len) {
        return ts_error_set(TS_ERR_INVALID, "a user name is 1 to %d of A-Z a-z 0-9 . _ -",
                            TS_NAME_MAX);
    }
    return TS_OK;
}

static const char *scope(const ts_tenant_row *t)
{
    return t->id != 0 ? t->name : "*";
}

ts_err ts_ca_user_create(ts_ca *ca, const char *tenant, const char *name, ts_role role,
                         const char *device_uid, ts_user_row *out)
{
    ts_tenant_row t;
    ts_user_row row;
    ts_device_row dev;
    int in_tx = 0;

    memset(&row, 0, sizeof row);
    ts_err rv = user_name_check(name);
    if (rv == TS_OK && (role < TS_ROLE_ADMIN || role > TS_ROLE_DEVICE)) {
        rv = ts_error_set(TS_ERR_INVALID, "no role %d", (int)role);
    }
    if (rv == TS_OK && tenant == NULL && role != TS_ROLE_ADMIN && role != TS_ROLE_AUDITOR) {
        rv = ts_error_set(TS_ERR_INVALID, "an instance-wide user is an admin or an auditor, not %s",
                          ts_role_name(role));
    }
    if (rv == TS_OK && role == TS_ROLE_DEVICE) {
        rv = device_uid != NULL ? ts_device_uid_check(device_uid)
                                : ts_error_set(TS_ERR_INVALID, "a device user names its device");
    }
    if (rv == TS_OK && role != TS_ROLE_DEVICE && device_uid != NULL && device_uid[0] != '\0') {
        rv = ts_error_set(TS_ERR_INVALID, "only a device user names a device");
    }
    if (rv == TS_OK) {
        rv = srv_user_tenant(ca, tenant, &t);
    }
    if (rv == TS_OK && role == TS_ROLE_DEVICE) {
        rv = ts_store_device_get(ca->store, t.id, device_uid, &dev);
        if (rv == TS_ERR_NOT_FOUND) {
            rv = ts_error_set(rv, "no device %s in tenant '%s': register it first", device_uid,
                              t.name);
        }
    }
    if (rv != TS_OK) {
        return rv;
    }
    row.tenant_id = t.id;
    snprintf(row.tenant, sizeof row.tenant, "%s", t.name);
    snprintf(row.name, sizeof row.name, "%s", name);
    row.role = role;
    if (role == TS_ROLE_DEVICE) {
        snprintf(row.device_uid, sizeof row.device_uid, "%s", device_uid);
    }
    rv = ts_store_begin(ca->store);
    in_tx = rv == TS_OK;
    if (rv == TS_OK) {
        rv = ts_store_user_insert(ca->store, &row);
        if (rv == TS_ERR_EXISTS) {
            ts_error_set(rv, "user '%s' already exists in %s", name,
                         t.id != 0 ? t.name : "the instance");
        }
    }
    if (rv == TS_OK) {
        rv = srv_audit(ca, "user.create", name,
                       srv_json("{s:s, s:s, s:s, s:s}", "tenant", scope(&t), "user", name, "role",
                                ts_role_name(role), "device", row.device_uid));
    }
    if (in_tx) {
        rv = srv_tx_end(ca, rv);
    }
    if (rv == TS_OK && out != NULL) {
        *out = row;
    }
    return rv;
}

ts_err ts_ca_user_get(ts_ca *ca, const char *tenant, const char *name, ts_user_row *out)
{
    ts_tenant_row t;
    ts_err rv = user_name_check(name);
    if (rv == TS_OK) {
        rv = srv_user_tenant(ca, tenant, &t);
    }
    if (rv == TS_OK) {
        rv = ts_store_user_get(ca->store, t.id, name, out);
    }
    if (rv == TS_ERR_NOT_FOUND) {
        return ts_error_set(rv, "no user '%s' in %s", name, t.id != 0 ? t.name : "the instance");
    }
    return rv;
}

ts_err ts_ca_user_list(ts_ca *ca, const char *tenant, ts_user_row **rows, size_t *count)
{
    ts_tenant_row t;
    *rows = NULL;
    *count = 0;
    ts_err rv = srv_user_tenant(ca, tenant, &t);
    if (rv == TS_OK) {
        rv = ts_store_user_list(ca->store, t.id, rows, count);
    }
    return rv;
}

ts_err ts_ca_user_set_disabled(ts_ca *ca, const char *tenant, const char *name, int disabled)
{
    ts_tenant_row t;
    int in_tx = 0;
    ts_err rv = user_name_check(name);
    if (rv == TS_OK) {
        rv = srv_user_tenant(ca, tenant, &t);
    }
    if (rv == TS_OK) {
        rv = ts_store_begin(ca->store);
        in_tx = rv == TS_OK;
    }
    if (rv == TS_OK) {
        rv = ts_store_user_set_disabled(ca->store, t.id, name, disabled ? 1 : 0);
    }
    if (rv == TS_ERR_NOT_FOUND) {
        ts_error_set(rv, "no user '%s' in %s", name, t.id != 0 ? t.name : "the instance");
    }
    if (rv == TS_OK) {
        rv = srv_audit(ca, disabled ? "user.disable" : "user.enable", name,
                       srv_json("{s:s, s:s}", "tenant", scope(&t), "user", name));
    }
    if (in_tx) {
        rv = srv_tx_end(ca, rv);
    }
    return rv;
}
