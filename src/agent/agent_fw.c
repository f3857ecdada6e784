/*
 * Firmware slots on the device: fw setup (the layout, the hardware id, the pinned roots),
 * fw confirm and fw status. Applying an update is in agent_fw_apply.c.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

#include "agent/agent_fw.h"
#include "common/error_internal.h"
#include "common/file_internal.h"
#include "tessera/datastore.h"

/* Records hw as the datastore's fw.hw (read by status reports), unless it is there already. */
static ts_err datastore_hw(ts_agent *a, const char *state_dir, const char *hw)
{
    ts_datastore *ds = NULL;
    ts_datastore_txn *txn = NULL;
    const char *have = NULL;
    ts_err rv = ts_datastore_open_or_defaults(state_dir, ts_agent_keystore(a), &ds);

    if (rv == TS_OK && ts_datastore_get_text(ds, FW_HW_ENTRY, &have) == TS_OK &&
        strcmp(have, hw) == 0) {
        ts_datastore_free(ds);
        return TS_OK;
    }
    ts_error_clear();
    if (rv == TS_OK) {
        rv = ts_datastore_begin(ds, &txn);
    }
    if (rv == TS_OK) {
        rv = ts_datastore_put(txn, FW_HW_ENTRY, TS_DATASTORE_TEXT, (const uint8_t *)hw, strlen(hw));
        if (rv == TS_OK) {
            rv = ts_datastore_commit(txn);
        } else {
            ts_datastore_abort(txn);
        }
    }
    ts_datastore_free(ds);
    return rv != TS_OK ? ts_error_prefix(rv, "recording %s in the datastore", FW_HW_ENTRY) : TS_OK;
}

/* Pins the roots in roots_file as fw.roots; refuses to replace different ones unless asked. */
static ts_err pin_roots(ts_keystore *ks, const char *roots_file, int replace, int *changed)
{
    uint8_t *pem = NULL, *have = NULL;
    size_t len = 0, have_len = 0;
    X509_STORE *check = NULL;
    ts_err rv = ts_file_read(roots_file, TS_OBJECT_MAX, &pem, &len);

    *changed = 0;
    if (rv != TS_OK) {
        return ts_error_prefix(rv, "firmware roots");
    }
    rv = fw_roots_parse(pem, len, &check);
    X509_STORE_free(check);
    if (rv != TS_OK) {
        OPENSSL_clear_free(pem, len);
        return ts_error_prefix(rv, "%s", roots_file);
    }
    rv = ts_keystore_object_get(ks, FW_ROOTS_LABEL, &have, &have_len);
    if (rv == TS_OK && have_len == len && CRYPTO_memcmp(have, pem, len) == 0) {
        rv = TS_OK; /* the same roots: nothing to do */
    } else if (rv == TS_OK && !replace) {
        rv = ts_error_set(TS_ERR_EXISTS,
                          "other firmware roots are pinned already (%s); give --replace-roots to "
                          "replace them",
                          FW_ROOTS_LABEL);
    } else if (rv == TS_OK || rv == TS_ERR_NOT_FOUND) {
        ts_error_clear();
        rv = ts_keystore_object_replace(ks, FW_ROOTS_LABEL, pem, len, 0);
        *changed = rv == TS_OK;
    }
    OPENSSL_clear_free(have, have_len);
    OPENSSL_clear_free(pem, len);
    return rv;
}

ts_err agent_fw_setup(ts_agent *a, const char *state_dir, const agent_fw_setup_opts *o,
                      int *roots_changed)
{
    fw_conf conf;
    fw_state st;
    int lock = -1;
    ts_err rv = fw_lock(state_dir, &lock);

    *roots_changed = 0;
    if (rv != TS_OK) {
        return rv;
    }
    fw_sweep_tmp(state_dir);
    rv = fw_conf_load(state_dir, &conf);
    if (rv == TS_ERR_STATE) {
        ts_error_clear();
        memset(&conf, 0, sizeof conf);
        conf.attempts = FW_ATTEMPTS_DEFAULT;
        if (o->slot_a == NULL || o->slot_b == NULL || o->hw == NULL) {
            rv = ts_error_set(TS_ERR_INVALID, "the first fw setup needs --slot-a PATH, "
                                              "--slot-b PATH and --hw HWID");
        } else {
            rv = TS_OK;
        }
    }
    if (rv == TS_OK && o->slot_a != NULL) {
        rv = strlen(o->slot_a) > 0 && strlen(o->slot_a) < PATH_MAX
                 ? TS_OK
                 : ts_error_set(TS_ERR_INVALID, "--slot-a is empty or too long");
        snprintf(conf.slot[0], PATH_MAX, "%s", o->slot_a);
    }
    if (rv == TS_OK && o->slot_b != NULL) {
        rv = strlen(o->slot_b) > 0 && strlen(o->slot_b) < PATH_MAX
                 ? TS_OK
                 : ts_error_set(TS_ERR_INVALID, "--slot-b is empty or too long");
        snprintf(conf.slot[1], PATH_MAX, "%s", o->slot_b);
    }
    if (rv == TS_OK && strcmp(conf.slot[0], conf.slot[1]) == 0) {
        rv = ts_error_set(TS_ERR_INVALID, "slots a and b must be different paths");
    }
    if (rv == TS_OK && o->hw != NULL) {
        rv = fw_hw_check(o->hw);
        if (rv == TS_OK) {
            snprintf(conf.hw, sizeof conf.hw, "%s", o->hw);
        }
    }
    if (rv == TS_OK && o->attempts != 0) {
        conf.attempts = o->attempts;
    }
    if (rv == TS_OK && o->roots_file != NULL) {
        rv = pin_roots(ts_agent_keystore(a), o->roots_file, o->replace_roots, roots_changed);
    }
    if (rv == TS_OK) {
        rv = fw_conf_save(state_dir, &conf);
    }
    if (rv == TS_OK) {
        rv = datastore_hw(a, state_dir, conf.hw);
    }
    if (rv == TS_OK) {
        rv = fw_state_load(state_dir, &st);
        if (rv == TS_ERR_NOT_FOUND) {
            ts_error_clear();
            fw_state_init(&st, conf.attempts);
            rv = fw_state_save(state_dir, &st);
        } else if (rv == TS_OK && o->attempts != 0 && st.max_attempts != o->attempts) {
            st.max_attempts = o->attempts;
            rv = fw_state_save(state_dir, &st);
        }
    }
    fw_unlock(lock);
    return rv;
}

ts_err agent_fw_confirm(ts_agent *a, const char *state_dir, agent_fw_result *out)
{
    ts_keystore *ks = ts_agent_keystore(a);
    fw_state st;
    uint64_t counter = 0;
    int lock = -1;
    ts_err rv = fw_lock(state_dir, &lock);

    memset(out, 0, sizeof *out);
    if (rv != TS_OK) {
        return rv;
    }
    fw_sweep_tmp(state_dir);
    rv = fw_state_load(state_dir, &st);
    if (rv == TS_ERR_NOT_FOUND) {
        rv = ts_error_set(TS_ERR_STATE, "no boot state in %s (tessera-agent fw setup)", state_dir);
    }
    if (rv == TS_OK) {
        rv = ts_keystore_counter_get(ks, FW_COUNTER_LABEL, &counter);
    }
    if (rv == TS_OK && st.booted == FW_NONE) {
        rv = ts_error_set(TS_ERR_STATE, "no image has been booted by tessera-boot: nothing to "
                                        "confirm");
    }
    if (rv == TS_OK && st.booted != st.active && st.booted != st.pending) {
        rv = ts_error_set(TS_ERR_STATE,
                          "slot %c was booted but is neither active nor pending: nothing to "
                          "confirm",
                          fw_slot_name(st.booted));
    }
    if (rv == TS_OK) {
        out->slot = st.booted;
        out->version = st.slot[st.booted].version;
        out->previous = counter;
        if (st.booted == st.pending) {
            /* The record first: the counter is raised only once the slot is active. */
            st.active = st.booted;
            st.pending = FW_NONE;
            st.attempts = 0;
            st.confirmed = 1;
            rv = fw_state_save(state_dir, &st);
        } else if (!st.confirmed) {
            st.confirmed = 1;
            rv = fw_state_save(state_dir, &st);
        }
    }
    if (rv == TS_OK && out->version > counter) {
        rv = ts_keystore_counter_raise(ks, FW_COUNTER_LABEL, out->version);
        if (rv != TS_OK) {
            rv = ts_error_prefix(rv,
                                 "slot %c is confirmed, but raising %s failed (run fw "
                                 "confirm again)",
                                 fw_slot_name(out->slot), FW_COUNTER_LABEL);
        }
    }
    fw_unlock(lock);
    return rv;
}

ts_err agent_fw_status(ts_agent *a, const char *state_dir, fw_conf *conf, fw_state *state,
                       uint64_t *counter)
{
    int lock = -1;
    ts_err rv = fw_lock(state_dir, &lock);

    if (rv != TS_OK) {
        return rv;
    }
    rv = fw_conf_load(state_dir, conf);
    if (rv == TS_OK) {
        rv = fw_state_load(state_dir, state);
        if (rv == TS_ERR_NOT_FOUND) {
            ts_error_clear();
            fw_state_init(state, conf->attempts);
            rv = TS_OK;
        }
    }
    if (rv == TS_OK) {
        rv = ts_keystore_counter_get(ts_agent_keystore(a), FW_COUNTER_LABEL, counter);
    }
    fw_unlock(lock);
    return rv;
}
