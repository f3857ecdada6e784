/* The table of connected clients: an open-addressing hash by Mosquitto's client handle, so that
 * an ACL check (one per message) costs one lookup. Broker thread only. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "broker/broker_internal.h"
#include "common/error_internal.h"

static size_t slot_of(const void *handle, size_t cap)
{
    uint64_t h = (uint64_t)(uintptr_t)handle;

    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return (size_t)(h & (cap - 1));
}

static size_t find(const tsb_clients *t, const void *handle)
{
    size_t i = slot_of(handle, t->cap);

    while (t->slots[i] != NULL && t->slots[i]->handle != handle) {
        i = (i + 1) & (t->cap - 1);
    }
    return i;
}

static ts_err resize(tsb_clients *t, size_t cap)
{
    tsb_client **old = t->slots;
    size_t old_cap = t->cap;

    t->slots = calloc(cap, sizeof(*t->slots));
    if (t->slots == NULL) {
        t->slots = old;
        return ts_error_set(TS_ERR_NOMEM, "out of memory");
    }
    t->cap = cap;
    for (size_t i = 0; i < old_cap; i++) {
        if (old[i] != NULL) {
            t->slots[find(t, old[i]->handle)] = old[i];
        }
    }
    free(old);
    return TS_OK;
}

ts_err tsb_clients_put(tsb_clients *t, const tsb_client *c)
{
    if (t->cap == 0 || (t->n + 1) * 2 > t->cap) {
        ts_err rv = resize(t, t->cap == 0 ? 64 : t->cap * 2);
        if (rv != TS_OK) {
            return rv;
        }
    }
    size_t i = find(t, c->handle);
    if (t->slots[i] == NULL) {
        t->slots[i] = malloc(sizeof(tsb_client));
        if (t->slots[i] == NULL) {
            return ts_error_set(TS_ERR_NOMEM, "out of memory");
        }
        t->n++;
    }
    *t->slots[i] = *c;
    return TS_OK;
}

tsb_client *tsb_clients_get(const tsb_clients *t, const void *handle)
{
    return t->cap == 0 ? NULL : t->slots[find(t, handle)];
}

void tsb_clients_del(tsb_clients *t, const void *handle)
{
    if (t->cap == 0) {
        return;
    }
    size_t i = find(t, handle);
    if (t->slots[i] == NULL) {
        return;
    }
    free(t->slots[i]);
    t->slots[i] = NULL;
    t->n--;
    /* Linear probing: re-place the entries of the cluster that follows the hole. */
    for (size_t j = (i + 1) & (t->cap - 1); t->slots[j] != NULL; j = (j + 1) & (t->cap - 1)) {
        tsb_client *c = t->slots[j];
        t->slots[j] = NULL;
        t->slots[find(t, c->handle)] = c;
    }
}

void tsb_clients_free(tsb_clients *t)
{
    for (size_t i = 0; i < t->cap; i++) {
        free(t->slots[i]);
    }
    free(t->slots);
    memset(t, 0, sizeof(*t));
}
