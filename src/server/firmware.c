/*
 * Firmware releases at the CA level (include/tessera/firmware.h): names and checks, listing,
 * withdrawing, the release a device may download, and what a device reported.
 */
#include <string.h>

#include <openssl/crypto.h>

#include "common/error_internal.h"
#include "server/server_internal.h"
#include "tessera/firmware.h"
#include "tessera/store_access.h"

const char *ts_fw_target_name(ts_fw_target_kind kind)
{
    switch (kind) {
    case TS_FW_TARGET_ALL:
        return "all";
    case TS_FW_TARGET_DEVICE:
        return "device";
    case TS_FW_TARGET_GROUP:
        return "group";
    }
    return "unknown";
}

const char *ts_fw_release_state_name(ts_fw_release_state s)
{
    return s == TS_FW_RELEASE_ACTIVE ? "active" : s == TS_FW_RELEASE_WITHDRAWN ? "withdrawn" : "?";
}

const char *ts_fw_offer_state_name(ts_fw_offer_state s)
{
    return s == TS_FW_OFFER_SENT     ? "sent"
           : s == TS_FW_OFFER_DONE   ? "done"
           : s == TS_FW_OFFER_FAILED ? "failed"
                                     : "?";
}

ts_err ts_fw_version_parse(const char *text, uint64_t *out)
{
    uint64_t v = 0;
    *out = 0;
    if (text == NULL || text[0] == '\0' || strcmp(text, "unknown") == 0) {
        return TS_OK;
    }
    size_t n = strlen(text);
    if (n > 19 || strspn(text, "0123456789") != n) {
        return ts_error_set(TS_ERR_INVALID, "firmware version '%.64s' is not a decimal number",
                            text);
    }
    for (size_t i = 0; i < n; i++) {
        v = v * 10 + (uint64_t)(text[i] - '0');
    }
    if (v > INT64_MAX) {
        return ts_error_set(TS_ERR_INVALID, "firmware version '%s' is over 2^63-1", text);
    }
    *out = v;
    return TS_OK;
}

static ts_err tenant_of(ts_ca *ca, const char *tenant, ts_tenant_row *t)
{
    if (ca == NULL) {
        return ts_error_set(TS_ERR_INVALID, "firmware: no instance");
    }
    return ts_ca_tenant(ca, tenant, t);
}

ts_err ts_ca_fw_releases(ts_ca *ca, const char *tenant, ts_fw_release_row **rows, size_t *count)
{
    ts_tenant_row t;
    ts_err rv = tenant_of(ca, tenant, &t);
    return rv != TS_OK ? rv : ts_store_fw_release_list(ca->store, t.id, rows, count);
}

ts_err ts_ca_fw_release_get(ts_ca *ca, const char *tenant, const char *id, ts_fw_release_row *out,
                            ts_fw_offer_row **offers, size_t *noffers)
{
    ts_tenant_row t;
    ts_err rv = tenant_of(ca, tenant, &t);
    if (offers != NULL) {
        *offers = NULL;
        *noffers = 0;
    }
    if (rv == TS_OK && ts_fw_release_id_check(id) != TS_OK) {
        rv = ts_error_set(TS_ERR_NOT_FOUND, "no firmware release '%.64s'", id != NULL ? id : "");
    }
    if (rv == TS_OK) {
        rv = ts_store_fw_release_get(ca->store, t.id, id, out);
    }
    if (rv == TS_OK && offers != NULL) {
        rv = ts_store_fw_offer_list(ca->store, t.id, NULL, id, offers, noffers);
    }
    return rv;
}

ts_err ts_ca_fw_withdraw(ts_ca *ca, const char *tenant, const char *id, ts_fw_release_row *out)
{
    ts_tenant_row t;
    ts_fw_release_row row;
    ts_err rv = tenant_of(ca, tenant, &t);
    if (rv == TS_OK && ts_fw_release_id_check(id) != TS_OK) {
        rv = ts_error_set(TS_ERR_NOT_FOUND, "no firmware release '%.64s'", id != NULL ? id : "");
    }
    if (rv == TS_OK) {
        rv = ts_store_begin(ca->store);
    }
    if (rv != TS_OK) {
        return rv;
    }
    rv = ts_store_fw_release_withdraw(ca->store, t.id, id, time(NULL));
    if (rv == TS_OK) {
        rv = ts_store_fw_release_get(ca->store, t.id, id, &row);
    }
    if (rv == TS_OK) {
        rv = srv_audit(ca, "firmware.withdraw", id,
                       srv_json("{s:s, s:s, s:I}", "tenant", t.name, "release", id, "version",
                                (json_int_t)row.version));
    }
    rv = srv_tx_end(ca, rv);
    if (rv == TS_OK && out != NULL) {
        *out = row;
    }
    return rv;
}

ts_err ts_ca_fw_for_device(ts_ca *ca, const char *tenant, const char *uid, const char *id,
                           ts_fw_release_row *out, char *path, size_t path_size)
{
    ts_tenant_row t;
    ts_fw_release_row *rows = NULL;
    size_t n = 0;
    char name[TS_FW_RELEASE_ID_LEN + 80];
    ts_err rv = tenant_of(ca, tenant, &t);
    if (rv == TS_OK) {
        rv = ts_device_uid_check(uid);
    }
    if (rv == TS_OK && ts_fw_release_id_check(id) != TS_OK) {
        rv = ts_error_set(TS_ERR_NOT_FOUND, "no firmware release '%.64s'", id != NULL ? id : "");
    }
    if (rv == TS_OK) {
        rv = ts_store_fw_release_for_device(ca->store, t.id, uid, NULL, &rows, &n);
    }
    if (rv != TS_OK) {
        return rv;
    }
    rv = ts_error_set(TS_ERR_NOT_FOUND, "no firmware release '%s' for device '%s'", id, uid);
    for (size_t i = 0; i < n; i++) {
        if (strcmp(rows[i].id, id) == 0) {
            *out = rows[i];
            ts_error_clear();
            rv = TS_OK;
            break;
        }
    }
    OPENSSL_free(rows);
    if (rv == TS_OK) {
        snprintf(name, sizeof name, TS_FW_DIR "/%s.tsfw", out->sha256);
        rv = srv_path(path, path_size, ca->dir, name);
    }
    return rv;
}

ts_err ts_ca_fw_device_get(ts_ca *ca, const char *tenant, const char *uid, ts_fw_device_row *out)
{
    ts_tenant_row t;
    ts_err rv = tenant_of(ca, tenant, &t);
    if (rv == TS_OK) {
        rv = ts_device_uid_check(uid);
    }
    return rv != TS_OK ? rv : ts_store_fw_device_get(ca->store, t.id, uid, out);
}
