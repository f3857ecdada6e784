/*
 * soft: data objects and counters. A data object's bytes are in clear (authenticated) unless it
 * is TS_DATA_SECRET, then sealed. A counter's value is in clear (authenticated); every change is
 * a read-modify-write under flock(DIR/.lock), written atomically and durably.
 */
#include <string.h>

#include <openssl/crypto.h>

#include "common/error_internal.h"
#include "common/file_internal.h"
#include "keystore/ks_soft_internal.h"

ts_err ts_soft_object_put(void *state, const char *label, const uint8_t *data, size_t len,
                          unsigned flags, int replace)
{
    ts_soft *st = state;
    ts_soft_record rec;
    ts_soft_kind kind;
    int secret = (flags & TS_DATA_SECRET) != 0;
    int found = 0, fd = -1;
    ts_err rv = ts_soft_lock(st, &fd);

    memset(&rec, 0, sizeof rec);
    if (rv == TS_OK) {
        rv = ts_soft_kind_of(st, label, &kind, &found);
    }
    if (rv == TS_OK && found && (!replace || kind != TS_SOFT_DATA)) {
        rv = replace ? ts_soft_wrong_type(st, label, kind, "a data object")
                     : ts_soft_label_taken(st, label, kind);
    }
    if (rv == TS_OK) {
        rec.kind = TS_SOFT_DATA;
        memcpy(rec.label, label, strlen(label) + 1);
        rec.flags = flags;
        rec.data = secret ? NULL : data;
        rec.data_len = secret ? 0 : len;
        rv = ts_soft_save(st, &rec, secret ? data : NULL, secret ? len : 0);
    }
    ts_file_unlock(fd);
    return rv;
}

/* The error for a label that has no file of the wanted kind. */
static ts_err missing(const ts_soft *st, const char *label, const char *want)
{
    ts_soft_kind kind;
    int found = 0;
    ts_err rv = ts_soft_kind_of(st, label, &kind, &found);

    if (rv != TS_OK) {
        return rv;
    }
    return found ? ts_soft_wrong_type(st, label, kind, want) : ts_soft_not_found(st, label);
}

ts_err ts_soft_object_get(void *state, const char *label, uint8_t **data, size_t *len)
{
    const ts_soft *st = state;
    ts_soft_record *rec = NULL;
    uint8_t *plain = NULL;
    size_t plain_len = 0;
    ts_err rv = ts_soft_load(st, TS_SOFT_DATA, label, &rec, &plain, &plain_len);

    if (rv == TS_ERR_NOT_FOUND) {
        return missing(st, label, "a data object");
    }
    if (rv != TS_OK) {
        return rv;
    }
    if ((rec->flags & TS_DATA_SECRET) != 0) {
        *data = plain; /* OPENSSL_malloc'd, never NULL */
        *len = plain_len;
        plain = NULL;
    } else {
        *data = OPENSSL_malloc(rec->data_len > 0 ? rec->data_len : 1);
        if (*data == NULL) {
            rv = ts_error_set(TS_ERR_NOMEM, "out of memory reading object '%s'", label);
        } else {
            memcpy(*data, rec->data, rec->data_len);
            *len = rec->data_len;
        }
    }
    OPENSSL_clear_free(plain, plain_len);
    ts_soft_record_free(rec);
    return rv;
}

/* The counter's value; 0 when it was never written. */
static ts_err counter_read(const ts_soft *st, const char *label, uint64_t *value)
{
    ts_soft_record *rec = NULL;
    ts_err rv = ts_soft_load(st, TS_SOFT_COUNTER, label, &rec, NULL, NULL);

    *value = 0;
    if (rv == TS_ERR_NOT_FOUND) {
        rv = missing(st, label, "a counter");
        if (rv == TS_ERR_NOT_FOUND) {
            ts_error_clear();
            rv = TS_OK;
        }
        return rv;
    }
    if (rv == TS_OK) {
        *value = rec->value;
    }
    ts_soft_record_free(rec);
    return rv;
}

ts_err ts_soft_counter_get(void *state, const char *label, uint64_t *value)
{
    return counter_read(state, label, value);
}

ts_err ts_soft_counter_update(void *state, const char *label, uint64_t *value, int increment)
{
    ts_soft *st = state;
    ts_soft_record rec;
    uint64_t current = 0;
    int fd = -1;
    ts_err rv = ts_soft_lock(st, &fd);

    memset(&rec, 0, sizeof rec);
    if (rv == TS_OK) {
        rv = counter_read(st, label, &current);
    }
    if (rv != TS_OK) {
        goto done;
    }
    if (increment && current == UINT64_MAX) {
        rv = ts_error_set(TS_ERR_INVALID, "counter '%s' in soft:%s is at its maximum", label,
                          st->dir);
        goto done;
    }
    if (!increment && *value < current) {
        rv = ts_error_set(TS_ERR_ROLLBACK,
                          "counter '%s' in soft:%s is at %llu: %llu would take it backwards", label,
                          st->dir, (unsigned long long)current, (unsigned long long)*value);
        goto done;
    }
    rec.kind = TS_SOFT_COUNTER;
    memcpy(rec.label, label, strlen(label) + 1);
    rec.value = increment ? current + 1 : *value;
    /* Raising to the current value changes nothing and needs no write. */
    if (rec.value != current || rec.value == 0) {
        rv = ts_soft_save(st, &rec, NULL, 0);
    }
    if (rv == TS_OK) {
        *value = rec.value;
    }
done:
    ts_file_unlock(fd);
    return rv;
}
