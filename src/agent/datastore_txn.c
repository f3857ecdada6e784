/*
 * Datastore transactions: allocate, write chunks, commit or abort.
 *
 * A commit makes generation N+1 from generation N (or from the key-store counter, when no valid
 * datastore existed) and, under the state directory's lock:
 *
 *   1. checks that the newest valid slot on disk is still the generation this handle read;
 *   2. writes N+1 to the slot of its parity (the one NOT holding N): temporary file, fsync,
 *      rename over the slot, fsync of the directory (ts_file_write_atomic);
 *   3. raises the key-store counter to N+1.
 *
 * The rename is the commit point. Until it, N is valid and the counter is at most N. After it,
 * N+1 is valid and at least as new as the counter, so it is chosen at open, which raises the
 * counter when step 3 did not happen. The counter is never ahead of a durable file, so no crash
 * makes the newest file look like a rollback. docs/datastore.md gives the whole argument.
 */
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

#include "agent/datastore_slots.h"
#include "common/error_internal.h"
#include "common/file_internal.h"

ts_err ts_datastore_begin(ts_datastore *ds, ts_datastore_txn **out)
{
    ts_datastore_txn *txn = NULL;

    if (out == NULL) {
        return ts_error_set(TS_ERR_INVALID, "datastore: no output transaction");
    }
    *out = NULL;
    if (ds == NULL) {
        return ts_error_set(TS_ERR_INVALID, "datastore: no handle");
    }
    if (ds->in_txn) {
        return ts_error_set(TS_ERR_STATE,
                            "datastore: a transaction is already open on this handle");
    }
    txn = OPENSSL_zalloc(sizeof *txn);
    if (txn == NULL) {
        return ts_error_set(TS_ERR_NOMEM, "out of memory allocating a datastore transaction");
    }
    ts_err rv = ts_ds_content_copy(ds->content, &txn->work);
    if (rv != TS_OK) {
        OPENSSL_free(txn);
        return rv;
    }
    txn->ds = ds;
    ds->in_txn = 1;
    *out = txn;
    return TS_OK;
}

ts_err ts_datastore_put(ts_datastore_txn *txn, const char *name, ts_datastore_type type,
                        const uint8_t *value, size_t len)
{
    if (txn == NULL) {
        return ts_error_set(TS_ERR_INVALID, "datastore: no transaction");
    }
    return ts_ds_content_set(txn->work, name, type, value, len);
}

ts_err ts_datastore_append(ts_datastore_txn *txn, const char *name, const uint8_t *chunk,
                           size_t len)
{
    if (txn == NULL) {
        return ts_error_set(TS_ERR_INVALID, "datastore: no transaction");
    }
    return ts_ds_content_append(txn->work, name, chunk, len);
}

ts_err ts_datastore_delete(ts_datastore_txn *txn, const char *name)
{
    if (txn == NULL) {
        return ts_error_set(TS_ERR_INVALID, "datastore: no transaction");
    }
    return ts_ds_content_remove(txn->work, name);
}

void ts_datastore_abort(ts_datastore_txn *txn)
{
    if (txn == NULL) {
        return;
    }
    txn->ds->in_txn = 0;
    ts_ds_content_free(txn->work);
    OPENSSL_free(txn);
}

/* Step 1: the disk still holds what this handle read; the base generation for the next one. */
static ts_err check_base(ts_datastore *ds, uint64_t *base)
{
    ts_ds_scan scan;
    ts_err rv = ts_ds_scan_slots(ds, &scan);

    if (rv == TS_OK && ds->source == TS_DATASTORE_STORED &&
        scan.best->generation == ds->content->generation) {
        *base = scan.best->generation;
    } else if (rv == TS_OK) {
        rv = ts_error_set(TS_ERR_CONFLICT,
                          "datastore changed since it was read (now generation %llu): read it "
                          "again and retry",
                          (unsigned long long)scan.best->generation);
    } else if (ts_ds_refusal_code(rv) && ds->source == TS_DATASTORE_DEFAULTS) {
        /* Still no valid datastore: the fresh one goes above anything ever committed. */
        *base = scan.counter;
        rv = TS_OK;
    } else if (ts_ds_refusal_code(rv)) {
        rv = ts_error_prefix(TS_ERR_CONFLICT, "datastore no longer valid on disk");
    }
    ts_ds_scan_clear(&scan);
    return rv;
}

ts_err ts_datastore_commit(ts_datastore_txn *txn)
{
    ts_datastore *ds = NULL;
    ts_ds_content *work = NULL;
    uint8_t *der = NULL;
    size_t der_len = 0;
    uint64_t base = 0;
    int lock_fd = -1;
    char path[PATH_MAX];

    if (txn == NULL) {
        return ts_error_set(TS_ERR_INVALID, "datastore: no transaction");
    }
    ds = txn->ds;
    work = txn->work;
    txn->work = NULL;
    ts_datastore_abort(txn);

    ts_err rv = ts_ds_content_check(work, TS_ERR_INVALID, "datastore commit");
    if (rv == TS_OK) {
        rv = ts_ds_lock(ds->dir, &lock_fd);
    }
    if (rv == TS_OK) {
        rv = check_base(ds, &base);
    }
    if (rv == TS_OK && base == UINT64_MAX) {
        rv = ts_error_set(TS_ERR_LIMIT, "datastore: the generation number is exhausted");
    }
    if (rv != TS_OK) {
        goto done;
    }
    work->version = TS_DATASTORE_FORMAT_VERSION;
    memcpy(work->uid, ds->uid, sizeof work->uid);
    work->generation = base + 1;
    rv = ts_ds_encode(work, ds->mac_key, &der, &der_len);
    if (rv == TS_OK) {
        rv = ts_ds_slot_path(ds->dir, (int)(work->generation % 2), path);
    }
    if (rv == TS_OK) {
        rv = ts_file_write_atomic(path, der, der_len, 0600);
    }
    if (rv != TS_OK) {
        rv = ts_error_prefix(rv, "datastore commit of generation %llu",
                             (unsigned long long)work->generation);
        goto done;
    }
    /* Committed: from here the handle shows the new generation whatever happens. */
    ts_ds_content_free(ds->content);
    ds->content = work;
    work = NULL;
    ds->source = TS_DATASTORE_STORED;
    ds->refusal = TS_OK;
    ts_ds_set_status(ds);
    rv = ts_keystore_counter_raise(ds->ks, TS_DATASTORE_COUNTER, ds->content->generation);
    if (rv != TS_OK) {
        rv = ts_error_prefix(rv,
                             "datastore generation %llu is committed, but counter %s could not "
                             "be raised (the next open raises it)",
                             (unsigned long long)ds->content->generation, TS_DATASTORE_COUNTER);
    }
done:
    if (lock_fd >= 0) {
        ts_file_unlock(lock_fd);
    }
    OPENSSL_free(der);
    ts_ds_content_free(work);
    return rv;
}
