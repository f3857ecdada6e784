/*
 * The datastore handle and its two slots, shared by datastore.c (open, read) and
 * datastore_txn.c (commit).
 */
#ifndef TS_AGENT_DATASTORE_SLOTS_H
#define TS_AGENT_DATASTORE_SLOTS_H

#include <limits.h>

#include "agent/datastore_internal.h"

struct ts_datastore {
    char *dir;
    ts_keystore *ks; /* a reference of our own */
    uint8_t uid[TS_KEYSTORE_UID_LEN];
    uint8_t mac_key[TS_DS_MAC_KEY_LEN]; /* wiped with the handle */
    ts_ds_content *content;             /* the entries in hand */
    ts_datastore_origin source;
    ts_err refusal; /* why the stored datastore was refused, for defaults */
    char status[768];
    int in_txn;
};

struct ts_datastore_txn {
    ts_datastore *ds;
    ts_ds_content *work;
};

/* What a look at both slots found, under the lock. */
typedef struct ts_ds_scan {
    uint64_t counter;          /* the key-store counter */
    ts_ds_content *slot[2];    /* each slot's verified content, or NULL */
    ts_err err[2];             /* each slot's failure; TS_ERR_NOT_FOUND when absent */
    char msg[2][320];          /* and its message */
    const ts_ds_content *best; /* the newest valid slot, when the scan succeeds */
} ts_ds_scan;

/*
 * Reads both slots and the counter: TS_OK with scan->best the newest valid slot at least as new
 * as the counter, or the refusal (ts_ds_refusal_code) or a hard failure. Clear scan afterwards.
 */
TS_MUST_CHECK ts_err ts_ds_scan_slots(ts_datastore *ds, ts_ds_scan *scan);
void ts_ds_scan_clear(ts_ds_scan *scan);

/* 1 when err means "no valid datastore" rather than a failure to look. */
int ts_ds_refusal_code(ts_err err);

TS_MUST_CHECK ts_err ts_ds_slot_path(const char *dir, int slot, char out[PATH_MAX]);
TS_MUST_CHECK ts_err ts_ds_lock(const char *dir, int *fd);
void ts_ds_set_status(ts_datastore *ds);

#endif
