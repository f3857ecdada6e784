/*
 * Firmware in provisioning sessions (include/tessera/firmware.h): a message's job answers, offer
 * answers, status report and reported firmware kept in one transaction, and the offer of a
 * release to a device.
 */
#include <string.h>

#include <openssl/crypto.h>

#include "common/error_internal.h"
#include "server/server_internal.h"
#include "tessera/firmware.h"

static ts_err offers_record(ts_ca *ca, const ts_tenant_row *t, const char *uid,
                            const ts_fw_offer_answer *offers, size_t n, time_t now)
{
    ts_err rv = TS_OK;
    for (size_t i = 0; rv == TS_OK && i < n; i++) {
        ts_fw_offer_row o;
        rv = ts_store_fw_offer_answer(ca->store, t->id, uid, &offers[i], now, &o);
        if (rv == TS_OK) {
            rv = srv_audit(ca, "firmware.offer", o.release_id,
                           srv_json("{s:s, s:s, s:s, s:s, s:s}", "tenant", t->name, "device", uid,
                                    "release", o.release_id, "state",
                                    ts_fw_offer_state_name(o.state), "error", o.error_code));
        }
    }
    return rv;
}

ts_err ts_ca_fw_session_record(ts_ca *ca, const char *tenant, const char *uid,
                               const char *status_json, const char *fw_version, const char *hw,
                               const ts_job_answer *answers, size_t count,
                               const ts_fw_offer_answer *offers, size_t noffers)
{
    ts_tenant_row t;
    ts_fw_device_row dev;
    if (ca == NULL || (answers == NULL && count > 0) || (offers == NULL && noffers > 0)) {
        return ts_error_set(TS_ERR_INVALID, "ts_ca_fw_session_record: missing argument");
    }
    ts_err rv = ts_device_uid_check(uid);
    for (size_t i = 0; rv == TS_OK && i < count; i++) {
        rv = srv_job_answer_check(&answers[i]);
    }
    for (size_t i = 0; rv == TS_OK && i < noffers; i++) {
        rv = srv_answer_check(offers[i].offer_id, offers[i].ok, offers[i].error_code,
                              offers[i].error_message);
    }
    if (rv == TS_OK && status_json != NULL) {
        memset(&dev, 0, sizeof dev);
        size_t vl = fw_version != NULL ? strlen(fw_version) : 0;
        size_t hl = hw != NULL ? strlen(hw) : 0;
        if (vl > TS_FW_VERSION_TEXT_MAX || hl > TS_FW_HW_MAX) {
            rv = ts_error_set(TS_ERR_INVALID, "a firmware version or hardware id is too long");
        } else {
            snprintf(dev.uid, sizeof dev.uid, "%s", uid);
            memcpy(dev.version, vl > 0 ? fw_version : "", vl);
            memcpy(dev.hw, hl > 0 ? hw : "", hl);
        }
    }
    if (rv == TS_OK) {
        rv = ts_ca_tenant(ca, tenant, &t);
    }
    if (rv != TS_OK || (count == 0 && noffers == 0 && status_json == NULL)) {
        return rv;
    }
    rv = ts_store_begin(ca->store);
    if (rv != TS_OK) {
        return rv;
    }
    time_t now = time(NULL);
    /* The answers first: a refused one leaves the stored report as it was. */
    rv = srv_job_answers_record(ca, &t, uid, answers, count, now);
    if (rv == TS_OK) {
        rv = offers_record(ca, &t, uid, offers, noffers, now);
    }
    if (rv == TS_OK && status_json != NULL) {
        rv = ts_store_device_status_put(ca->store, t.id, uid, status_json, now);
    }
    if (rv == TS_OK && status_json != NULL) {
        dev.reported = now;
        rv = ts_store_fw_device_put(ca->store, t.id, &dev);
    }
    if (rv == TS_OK) {
        rv = ts_store_commit(ca->store);
    } else {
        ts_store_rollback(ca->store);
    }
    return rv;
}

/* Whether rel may be offered (again) given the device's offers of it. *resend: one unanswered. */
static int offer_allowed(const ts_fw_offer_row *offers, size_t n, const ts_fw_device_row *dev,
                         int64_t *resend)
{
    time_t last_failed = 0;
    *resend = 0;
    for (size_t i = 0; i < n; i++) {
        const ts_fw_offer_row *o = &offers[i];
        if (o->state == TS_FW_OFFER_SENT) {
            *resend = o->id;
            return 1;
        }
        if (o->state == TS_FW_OFFER_DONE || strcmp(o->error_code, "unsupported") == 0) {
            return 0;
        }
        last_failed = o->answered > last_failed ? o->answered : last_failed;
    }
    /* After a failure, again only once the device reported since. */
    if (n > 0 && last_failed >= dev->reported) {
        return 0;
    }
    return n < TS_FW_OFFER_ATTEMPTS;
}

ts_err ts_ca_fw_offer_next(ts_ca *ca, const char *tenant, const char *uid, ts_fw_offer *out,
                           int *found)
{
    ts_tenant_row t;
    ts_fw_device_row dev;
    ts_fw_release_row *rels = NULL;
    size_t nrel = 0;
    uint64_t have = 0;
    if (ca == NULL || out == NULL || found == NULL) {
        return ts_error_set(TS_ERR_INVALID, "ts_ca_fw_offer_next: missing argument");
    }
    *found = 0;
    ts_err rv = ts_ca_tenant(ca, tenant, &t);
    if (rv == TS_OK) {
        rv = ts_store_fw_device_get(ca->store, t.id, uid, &dev);
        if (rv == TS_ERR_NOT_FOUND) {
            ts_error_clear();
            return TS_OK; /* never reported: nothing to compare */
        }
    }
    if (rv == TS_OK && (dev.hw[0] == '\0' || ts_fw_version_parse(dev.version, &have) != TS_OK)) {
        ts_error_clear();
        return TS_OK; /* no hardware id, or a version that does not compare */
    }
    if (rv == TS_OK) {
        rv = ts_store_fw_release_for_device(ca->store, t.id, uid, dev.hw, &rels, &nrel);
    }
    /* The highest version first: offer that one, or nothing. */
    const ts_fw_release_row *best = NULL;
    for (size_t i = 0; rv == TS_OK && i < nrel && best == NULL; i++) {
        if (rels[i].version > have && rels[i].min_version <= have) {
            best = &rels[i];
        }
    }
    if (best == NULL) {
        OPENSSL_free(rels);
        return rv;
    }
    ts_fw_offer_row *offers = NULL;
    size_t noff = 0;
    int64_t id = 0;
    rv = ts_store_begin(ca->store);
    if (rv == TS_OK) {
        rv = ts_store_fw_offer_list(ca->store, t.id, uid, best->id, &offers, &noff);
    }
    if (rv == TS_OK && offer_allowed(offers, noff, &dev, &id)) {
        time_t now = time(NULL);
        rv = id != 0 ? ts_store_fw_offer_mark_sent(ca->store, t.id, id, now)
                     : ts_store_fw_offer_insert(ca->store, t.id, uid, best->id, now, &id);
        if (rv == TS_OK) {
            *found = 1;
            out->request_id = TS_FW_OFFER_ID_BASE + id;
            out->release = *best;
        }
    }
    OPENSSL_free(offers);
    OPENSSL_free(rels);
    if (rv == TS_OK) {
        rv = ts_store_commit(ca->store);
    } else {
        ts_store_rollback(ca->store);
    }
    if (rv != TS_OK) {
        *found = 0;
    }
    return rv;
}
