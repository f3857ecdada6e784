/*
 * The status report a session starts with: what the device is (UID, versions), what its key store
 * holds and can do, which datastore generation it runs, when its certificate expires, and the
 * last errors the agent recorded in its state directory.
 */
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

#include "agent/agent_session_internal.h"
#include "common/error_internal.h"
#include "common/file_internal.h"
#include "fota/slots.h"

enum { ERRORS_FILE_MAX = SESS_ERRORS_MAX * SESS_MESSAGE_MAX + SESS_ERRORS_MAX };

static int errors_path(const char *state_dir, char *path, size_t size)
{
    return (size_t)snprintf(path, size, "%s/%s", state_dir, SESS_ERRORS_FILE) < size;
}

/* Splits the errors file (one line each, newest first) into r->errors. */
static void errors_load(const char *state_dir, sess_report *r)
{
    char path[PATH_MAX];
    uint8_t *data = NULL;
    size_t len = 0;
    size_t start = 0;

    r->error_count = 0;
    if (!errors_path(state_dir, path, sizeof path) ||
        ts_file_read(path, ERRORS_FILE_MAX, &data, &len) != TS_OK) {
        ts_error_clear(); /* no errors recorded yet, or an unreadable file: nothing to report */
        return;
    }
    for (size_t i = 0; i <= len && r->error_count < SESS_ERRORS_MAX; i++) {
        if (i < len && data[i] != '\n') {
            continue;
        }
        size_t n = i - start;
        if (n > 0) {
            char *line = r->errors[r->error_count++];
            size_t keep = n < SESS_MESSAGE_MAX - 1 ? n : SESS_MESSAGE_MAX - 1;
            for (size_t j = 0; j < keep; j++) {
                unsigned char c = data[start + j];
                line[j] = c >= 0x20 && c < 0x7f ? (char)c : '?';
            }
            line[keep] = '\0';
        }
        start = i + 1;
    }
    OPENSSL_free(data);
}

void sess_error_record(const char *state_dir, const char *message)
{
    char path[PATH_MAX];
    sess_report old;
    char buf[ERRORS_FILE_MAX + SESS_MESSAGE_MAX];
    size_t len = 0;

    char line[SESS_MESSAGE_MAX];
    int n;

    memset(&old, 0, sizeof old);
    errors_load(state_dir, &old);
    snprintf(line, sizeof line, "%s", message);
    /* One line per error: a line break inside the message would split it. */
    for (char *p = line; *p != '\0'; p++) {
        if (*p == '\n' || *p == '\r') {
            *p = ' ';
        }
    }
    n = snprintf(buf, sizeof buf, "%s\n", line);
    len = n > 0 ? (size_t)n : 0;
    for (size_t i = 0; i + 1 < SESS_ERRORS_MAX && i < old.error_count; i++) {
        n = snprintf(buf + len, sizeof buf - len, "%s\n", old.errors[i]);
        if (n < 0 || (size_t)n >= sizeof buf - len) {
            break;
        }
        len += (size_t)n;
    }
    if (!errors_path(state_dir, path, sizeof path) ||
        ts_file_write_atomic(path, (const uint8_t *)buf, len, 0600) != TS_OK) {
        ts_error_clear(); /* best effort: the error itself is what the caller reports */
    }
}

/* The version of the image running, from the firmware slots' boot state when they are set up
 * (docs/firmware-device.md): the slot tessera-boot handed over, else the active one. */
static int slots_version(const char *state_dir, char out[SESS_FIRMWARE_MAX + 1])
{
    fw_state st;
    if (state_dir == NULL || fw_state_load(state_dir, &st) != TS_OK) {
        ts_error_clear();
        return 0;
    }
    int slot = st.booted != FW_NONE ? st.booted : st.active;
    if (slot < 0 || slot >= FW_SLOTS || st.slot[slot].version == 0) {
        return 0;
    }
    snprintf(out, SESS_FIRMWARE_MAX + 1, "%" PRIu64, st.slot[slot].version);
    return 1;
}

/* The hardware id the firmware slots were set up with, else the datastore's fw.hw. */
static void hardware_id(const char *state_dir, const ts_datastore *ds, char out[TS_FW_HW_MAX + 1])
{
    fw_conf conf;
    const char *text = NULL;
    out[0] = '\0';
    if (state_dir != NULL && fw_conf_load(state_dir, &conf) == TS_OK) {
        snprintf(out, TS_FW_HW_MAX + 1, "%s", conf.hw);
        return;
    }
    ts_error_clear();
    if (ds != NULL && ts_datastore_get_text(ds, SESS_HARDWARE_ENTRY, &text) == TS_OK &&
        fw_hw_check(text) == TS_OK) {
        snprintf(out, TS_FW_HW_MAX + 1, "%s", text);
    }
    ts_error_clear();
}

static void firmware_version(const char *state_dir, const ts_datastore *ds,
                             char out[SESS_FIRMWARE_MAX + 1])
{
    const char *text = NULL;

    if (slots_version(state_dir, out)) {
        return;
    }
    if (ds != NULL && ts_datastore_get_text(ds, SESS_FIRMWARE_ENTRY, &text) == TS_OK &&
        strlen(text) <= SESS_FIRMWARE_MAX) {
        snprintf(out, SESS_FIRMWARE_MAX + 1, "%s", text);
        return;
    }
    ts_error_clear();
    snprintf(out, SESS_FIRMWARE_MAX + 1, "unknown");
}

ts_err sess_report_make(sess_ctx *ctx, sess_report *out)
{
    ts_keystore *ks = ts_agent_keystore(ctx->agent);
    ts_agent_status st;
    ts_err rv;

    memset(out, 0, sizeof *out);
    rv = ts_agent_status_get(ctx->agent, NULL, &st);
    if (rv != TS_OK) {
        return ts_error_prefix(rv, "status report");
    }
    memcpy(out->uid, st.uid, sizeof out->uid);
    out->enrolled = st.enrolled;
    out->cert_not_after = st.not_after;
    out->identity_generation = st.generation;
    out->agent_version = TS_AGENT_VERSION;
    firmware_version(ctx->state_dir, ctx->ds, out->firmware);
    hardware_id(ctx->state_dir, ctx->ds, out->hardware);
    rv = ts_keystore_list(ks, &out->objects, &out->object_count);
    if (rv != TS_OK) {
        return ts_error_prefix(rv, "status report: listing the key store");
    }
    out->backend = ts_keystore_backend(ks);
    /* What every backend of this key store does (docs/keystore.md). */
    out->features =
        SESS_FEATURE_IMPORT | SESS_FEATURE_P384 | SESS_FEATURE_COUNTERS | SESS_FEATURE_STAGED_URL;
    if (ctx->ds != NULL) {
        out->features |= SESS_FEATURE_DATASTORE;
        out->ds_generation = ts_datastore_generation(ctx->ds);
        out->ds_version = ts_datastore_version(ctx->ds);
        snprintf(out->ds_status, sizeof out->ds_status, "%s", ts_datastore_status(ctx->ds));
    }
    if (ctx->state_dir != NULL) {
        errors_load(ctx->state_dir, out);
    }
    return TS_OK;
}

void sess_report_clear(sess_report *r)
{
    OPENSSL_free(r->objects);
    memset(r, 0, sizeof *r);
}
