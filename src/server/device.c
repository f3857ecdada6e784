/*
 * The device registry (include/tessera/access.h): every device UID a tenant has issued to, or
 * registered by hand, with its state. A disabled device gets no new certificate; disabling and
 * enabling append to the revocation feed, so relying parties that poll it stop (or resume)
 * trusting the device without waiting for its certificates to be revoked.
 */
#include <string.h>

#include <openssl/crypto.h>

#include "common/error_internal.h"
#include "server/server_internal.h"
#include "tessera/store_access.h"

ts_err ts_device_uid_check(const char *uid)
{
    size_t len = uid != NULL ? strlen(uid) : 0;
    if (len == 0 || len > TS_DEVICE_UID_MAX ||
        strspn(uid, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._:-") != len) {
        return ts_error_set(TS_ERR_INVALID, "a device UID is 1 to %d of A-Z a-z 0-9 . _ : -",
                            TS_DEVICE_UID_MAX);
    }
    return TS_OK;
}

ts_err srv_device_admit(ts_ca *ca, int64_t tenant_id, const char *uid, ts_device_row *out)
{
    ts_device_row row;
    ts_err rv = ts_device_uid_check(uid);
    if (rv == TS_OK) {
        rv = ts_store_device_ensure(ca->store, tenant_id, uid, time(NULL), &row);
    }
    if (rv == TS_OK && row.state == TS_DEVICE_DISABLED) {
        rv = ts_error_set(TS_ERR_POLICY, "device UID %s is disabled", uid);
    }
    if (rv == TS_OK && out != NULL) {
        *out = row;
    }
    return rv;
}

ts_err ts_ca_device_register(ts_ca *ca, const char *tenant, const char *uid, ts_device_row *out)
{
    ts_tenant_row t;
    ts_device_row row;
    int in_tx = 0;
    ts_err rv = ts_device_uid_check(uid);

    memset(&row, 0, sizeof row);
    if (rv == TS_OK) {
        rv = ts_ca_tenant(ca, tenant, &t);
    }
    if (rv == TS_OK) {
        rv = ts_store_begin(ca->store);
        in_tx = rv == TS_OK;
    }
    if (rv == TS_OK) {
        row.tenant_id = t.id;
        snprintf(row.uid, sizeof row.uid, "%s", uid);
        row.state = TS_DEVICE_ENABLED;
        rv = ts_store_device_insert(ca->store, &row);
        if (rv == TS_ERR_EXISTS) {
            ts_error_set(rv, "device %s is already registered in tenant '%s'", uid, t.name);
        }
    }
    if (rv == TS_OK) {
        rv = srv_audit(ca, "device.register", uid,
                       srv_json("{s:s, s:s}", "tenant", t.name, "device", uid));
    }
    if (in_tx) {
        rv = srv_tx_end(ca, rv);
    }
    if (rv == TS_OK && out != NULL) {
        *out = row;
    }
    return rv;
}

ts_err ts_ca_device_get(ts_ca *ca, const char *tenant, const char *uid, ts_device_row *out)
{
    ts_tenant_row t;
    ts_err rv = ts_device_uid_check(uid);
    if (rv == TS_OK) {
        rv = ts_ca_tenant(ca, tenant, &t);
    }
    if (rv == TS_OK) {
        rv = ts_store_device_get(ca->store, t.id, uid, out);
        if (rv == TS_ERR_NOT_FOUND) {
            ts_error_set(rv, "no device %s in tenant '%s'", uid, t.name);
        }
    }
    return rv;
}

ts_err ts_ca_device_list(ts_ca *ca, const char *tenant, const ts_device_filter *filter,
                         ts_device_row **rows, size_t *count)
{
    ts_tenant_row t;
    *rows = NULL;
    *count = 0;
    ts_err rv = ts_ca_tenant(ca, tenant, &t);
    if (rv == TS_OK) {
        rv = ts_store_device_list(ca->store, t.id, filter, rows, count);
    }
    return rv;
}

ts_err ts_ca_device_set_state(ts_ca *ca, const char *tenant, const char *uid, ts_device_state state)
{
    ts_tenant_row t;
    ts_feed_row ev;
    int in_tx = 0;
    int disable = state == TS_DEVICE_DISABLED;
    ts_err rv = ts_device_uid_check(uid);

    if (rv == TS_OK && state != TS_DEVICE_ENABLED && state != TS_DEVICE_DISABLED) {
        rv = ts_error_set(TS_ERR_INVALID, "no device state %d", (int)state);
    }
    if (rv == TS_OK) {
        rv = ts_ca_tenant(ca, tenant, &t);
    }
    if (rv == TS_OK) {
        rv = ts_store_begin(ca->store);
        in_tx = rv == TS_OK;
    }
    if (rv == TS_OK) {
        rv = ts_store_device_set_state(ca->store, t.id, uid, state, time(NULL));
        if (rv == TS_ERR_NOT_FOUND) {
            ts_error_set(rv, "no device %s in tenant '%s'", uid, t.name);
        }
    }
    if (rv == TS_OK) {
        rv = srv_audit(ca, disable ? "device.disable" : "device.enable", uid,
                       srv_json("{s:s, s:s}", "tenant", t.name, "device", uid));
    }
    if (rv == TS_OK) {
        memset(&ev, 0, sizeof ev);
        ev.tenant_id = t.id;
        ev.event = disable ? TS_FEED_DEVICE_DISABLED : TS_FEED_DEVICE_ENABLED;
        ev.reason = -1;
        snprintf(ev.device_uid, sizeof ev.device_uid, "%s", uid);
        rv = ts_store_feed_append(ca->store, &ev);
    }
    if (in_tx) {
        rv = srv_tx_end(ca, rv);
    }
    return rv;
}
