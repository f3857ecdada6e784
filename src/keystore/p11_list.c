/*
 * Listing a token: Tessera's keys, data objects and counters. EC private keys count as keys
 * whoever made them; data objects only when they carry Tessera's CKA_APPLICATION. Objects whose
 * label is not a valid Tessera label cannot be named through the key store and are left out,
 * as is the UID object.
 */
#include <string.h>

#include <openssl/crypto.h>

#include "keystore/p11_internal.h"

enum { LIST_MAX = 4096, LIST_BATCH = 64 };

typedef struct list_state {
    ts_keystore_entry *entries;
    int *generation; /* data objects: to pick the newer of two with one label */
    size_t count;
    size_t cap;
} list_state;

static ts_keystore_entry *entry_find(list_state *ls, const char *label, ts_object_kind kind)
{
    for (size_t i = 0; i < ls->count; i++) {
        if (ls->entries[i].kind == kind && strcmp(ls->entries[i].label, label) == 0) {
            return &ls->entries[i];
        }
    }
    return NULL;
}

static ts_err entry_add(list_state *ls, const char *label, ts_object_kind kind,
                        ts_keystore_entry **out)
{
    if (ls->count == ls->cap) {
        size_t cap = ls->cap > 0 ? ls->cap * 2 : 16;
        ts_keystore_entry *e = OPENSSL_realloc(ls->entries, cap * sizeof *e);
        if (e == NULL) {
            return ts_error_set(TS_ERR_NOMEM, "out of memory listing the token");
        }
        ls->entries = e;
        int *g = OPENSSL_realloc(ls->generation, cap * sizeof *g);
        if (g == NULL) {
            return ts_error_set(TS_ERR_NOMEM, "out of memory listing the token");
        }
        ls->generation = g;
        ls->cap = cap;
    }
    *out = &ls->entries[ls->count];
    memset(*out, 0, sizeof **out);
    memcpy((*out)->label, label, strlen(label) + 1);
    (*out)->kind = kind;
    ls->generation[ls->count++] = 0;
    return TS_OK;
}

static ts_err add_key(p11_store *st, list_state *ls, CK_OBJECT_HANDLE h, const char *label)
{
    CK_KEY_TYPE type = 0;
    CK_ATTRIBUTE a = ATTR(CKA_KEY_TYPE, &type, sizeof type);
    uint8_t *params = NULL;
    size_t len = 0;
    ts_curve curve;
    ts_keystore_entry *e;

    if (st->f->C_GetAttributeValue(st->session, h, &a, 1) != CKR_OK || type != CKK_EC ||
        entry_find(ls, label, TS_KIND_KEY) != NULL) {
        return TS_OK;
    }
    if (p11_get_attr(st, h, CKA_EC_PARAMS, &params, &len, 256) != TS_OK ||
        p11_curve_of_params(params, len, &curve) != TS_OK) {
        OPENSSL_free(params);
        return TS_OK; /* a key on a curve Tessera does not use */
    }
    OPENSSL_free(params);
    ts_err rv = entry_add(ls, label, TS_KIND_KEY, &e);
    if (rv == TS_OK) {
        /* A key made for backup is sensitive and yet extractable: it may leave only wrapped
         * (p11_key.c). */
        CK_BBOOL sensitive = CK_FALSE, extractable = CK_FALSE;
        CK_ATTRIBUTE x[] = {ATTR(CKA_SENSITIVE, &sensitive, 1),
                            ATTR(CKA_EXTRACTABLE, &extractable, 1)};
        e->curve = curve;
        if (st->f->C_GetAttributeValue(st->session, h, x, 2) == CKR_OK && sensitive &&
            extractable) {
            e->flags = TS_KEY_BACKUP;
        }
    }
    return rv;
}

static ts_err add_data(p11_store *st, list_state *ls, CK_OBJECT_HANDLE h, const char *label,
                       int generation)
{
    CK_BBOOL priv = CK_FALSE;
    CK_ATTRIBUTE a[] = {ATTR(CKA_PRIVATE, &priv, 1), ATTR(CKA_VALUE, NULL, 0)};
    ts_keystore_entry *e = entry_find(ls, label, TS_KIND_DATA);

    if (st->f->C_GetAttributeValue(st->session, h, a, 2) != CKR_OK ||
        a[1].ulValueLen == CK_UNAVAILABLE_INFORMATION) {
        return TS_OK;
    }
    if (e != NULL) {
        /* Two generations after a replace was cut short: list the newer (p11_object.c). */
        size_t i = (size_t)(e - ls->entries);
        if ((ls->generation[i] + 1) % 3 != generation) {
            return TS_OK;
        }
    } else {
        ts_err rv = entry_add(ls, label, TS_KIND_DATA, &e);
        if (rv != TS_OK) {
            return rv;
        }
    }
    ls->generation[e - ls->entries] = generation;
    e->flags = priv ? TS_DATA_SECRET : 0;
    e->size = a[1].ulValueLen;
    return TS_OK;
}

static ts_err add_counter(p11_store *st, list_state *ls, CK_OBJECT_HANDLE h, const char *label)
{
    uint64_t value = 0;
    ts_keystore_entry *e = entry_find(ls, label, TS_KIND_COUNTER);

    if (p11_counter_value(st, h, &value) != TS_OK) {
        return TS_OK;
    }
    if (e == NULL) {
        ts_err rv = entry_add(ls, label, TS_KIND_COUNTER, &e);
        if (rv != TS_OK) {
            return rv;
        }
    }
    if (value > e->value) {
        e->value = value;
    }
    return TS_OK;
}

static ts_err add_object(p11_store *st, list_state *ls, CK_OBJECT_HANDLE h)
{
    char label[TS_LABEL_MAX + 1];
    CK_ATTRIBUTE a = ATTR(CKA_LABEL, label, TS_LABEL_MAX);
    int generation = 0;

    if (st->f->C_GetAttributeValue(st->session, h, &a, 1) != CKR_OK ||
        a.ulValueLen > TS_LABEL_MAX) {
        return TS_OK;
    }
    label[a.ulValueLen] = '\0';
    if (strlen(label) != a.ulValueLen || ts_label_check(label) != TS_OK) {
        return TS_OK;
    }
    switch (p11_classify(st, h, &generation)) {
    case P11_PRIV:
        return add_key(st, ls, h, label);
    case P11_DATA:
        return add_data(st, ls, h, label, generation);
    case P11_COUNTER:
        return add_counter(st, ls, h, label);
    default:
        return TS_OK;
    }
}

ts_err p11_list(void *state, ts_keystore_entry **entries, size_t *count)
{
    p11_store *st = state;
    CK_OBJECT_HANDLE *all = OPENSSL_malloc(LIST_MAX * sizeof *all);
    list_state ls = {NULL, NULL, 0, 0};
    CK_ULONG total = 0, got = 0;
    ts_err rv = TS_OK;

    if (all == NULL) {
        return ts_error_set(TS_ERR_NOMEM, "out of memory listing the token");
    }
    rv = p11_usable(st);
    if (rv != TS_OK) {
        OPENSSL_free(all);
        return rv;
    }
    /* Collect the handles first: the calls made per object must not run inside the search. */
    CK_RV crv = st->f->C_FindObjectsInit(st->session, NULL, 0);
    if (crv != CKR_OK) {
        OPENSSL_free(all);
        return p11_error(crv, "C_FindObjectsInit on token '%s'", st->token_label);
    }
    do {
        CK_ULONG room = LIST_MAX - total < LIST_BATCH ? LIST_MAX - total : LIST_BATCH;
        crv = st->f->C_FindObjects(st->session, all + total, room, &got);
        got = crv == CKR_OK && got <= room ? got : 0;
        total += got;
    } while (crv == CKR_OK && got > 0 && total < LIST_MAX);
    st->f->C_FindObjectsFinal(st->session);
    if (crv != CKR_OK) {
        rv = p11_error(crv, "C_FindObjects on token '%s'", st->token_label);
    }
    for (CK_ULONG i = 0; rv == TS_OK && i < total; i++) {
        rv = add_object(st, &ls, all[i]);
    }
    OPENSSL_free(all);
    OPENSSL_free(ls.generation);
    if (rv != TS_OK) {
        OPENSSL_free(ls.entries);
        return rv;
    }
    *entries = ls.entries;
    *count = ls.count;
    return TS_OK;
}
