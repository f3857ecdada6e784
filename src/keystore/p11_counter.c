/*
 * Monotonic counters on a PKCS#11 token: CKO_DATA objects with CKA_APPLICATION
 * "tessera.counter" and an 8-byte big-endian CKA_VALUE.
 *
 * PKCS#11 has no atomic read-modify-write, and a token is shared by every process that opens it,
 * so each change is made under an flock() on the token's lock file, re-reading the value from
 * the token after the lock is taken. A change writes a new object and then destroys the old one;
 * the value is the largest of the counter's objects, so a crash in between loses nothing and a
 * left-over object never lowers it.
 */
#include <string.h>

#include <openssl/crypto.h>

#include "keystore/p11_internal.h"

ts_err p11_counter_value(p11_store *st, CK_OBJECT_HANDLE h, uint64_t *value)
{
    uint8_t *v = NULL;
    size_t len = 0;
    ts_err rv = p11_get_attr(st, h, CKA_VALUE, &v, &len, 8);

    if (rv == TS_OK && len != 8) {
        rv = ts_error_set(TS_ERR_CORRUPT, "a counter object on token '%s' is %zu bytes, not 8",
                          st->token_label, len);
    }
    *value = 0;
    for (size_t i = 0; rv == TS_OK && i < 8; i++) {
        *value = (*value << 8) | v[i];
    }
    OPENSSL_free(v);
    return rv;
}

/* The counter's value: the largest of its objects, 0 when it has none. */
static ts_err counter_read(p11_store *st, const char *label, const p11_found *found, size_t n,
                           uint64_t *value)
{
    p11_kind kind = p11_label_kind(found, n);

    *value = 0;
    if (kind != P11_NONE && kind != P11_COUNTER) {
        return ts_error_set(TS_ERR_WRONG_TYPE, "'%s' on token '%s' is %s, not a counter", label,
                            st->token_label, p11_kind_name(kind));
    }
    for (size_t i = 0; i < n; i++) {
        uint64_t v = 0;
        if (found[i].kind != P11_COUNTER) {
            continue;
        }
        ts_err rv = p11_counter_value(st, found[i].handle, &v);
        if (rv != TS_OK) {
            return ts_error_prefix(rv, "counter '%s'", label);
        }
        if (v > *value) {
            *value = v;
        }
    }
    return TS_OK;
}

ts_err p11_counter_get(void *state, const char *label, uint64_t *value)
{
    p11_store *st = state;
    p11_found found[P11_LABEL_OBJECTS];
    size_t n = 0;
    ts_err rv = p11_find_label(st, label, found, &n);

    return rv != TS_OK ? rv : counter_read(st, label, found, n, value);
}

static ts_err counter_write(p11_store *st, const char *label, uint64_t value)
{
    CK_OBJECT_CLASS cls = CKO_DATA;
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    CK_OBJECT_HANDLE h;
    uint8_t be[8];

    for (int i = 7; i >= 0; i--) {
        be[i] = (uint8_t)value;
        value >>= 8;
    }
    /* Private: a session without the PIN can neither see nor destroy a counter. */
    CK_ATTRIBUTE tmpl[] = {
        ATTR(CKA_CLASS, &cls, sizeof cls),
        ATTR(CKA_TOKEN, &yes, 1),
        ATTR(CKA_PRIVATE, &yes, 1),
        ATTR(CKA_MODIFIABLE, &no, 1),
        ATTR(CKA_LABEL, label, strlen(label)),
        ATTR(CKA_APPLICATION, P11_APP_COUNTER, strlen(P11_APP_COUNTER)),
        ATTR(CKA_VALUE, be, sizeof be),
    };
    ts_err rv = p11_create(st, tmpl, sizeof tmpl / sizeof tmpl[0], &h, "writing counter");
    return rv == TS_OK ? TS_OK : ts_error_prefix(rv, "'%s'", label);
}

ts_err p11_counter_update(void *state, const char *label, uint64_t *value, int increment)
{
    p11_store *st = state;
    p11_found found[P11_LABEL_OBJECTS];
    uint64_t current = 0, next;
    size_t n = 0;
    int fd = -1;
    ts_err rv = p11_lock(st, &fd);

    if (rv != TS_OK) {
        return rv;
    }
    /* Read under the lock: the value another process wrote a moment ago is the one to raise. */
    rv = p11_find_label(st, label, found, &n);
    if (rv == TS_OK) {
        rv = counter_read(st, label, found, n, &current);
    }
    if (rv != TS_OK) {
        goto done;
    }
    if (increment && current == UINT64_MAX) {
        rv = ts_error_set(TS_ERR_ROLLBACK, "counter '%s' is at its largest value", label);
        goto done;
    }
    if (!increment && *value < current) {
        rv = ts_error_set(TS_ERR_ROLLBACK,
                          "counter '%s' is at %llu: setting it to %llu would take it back", label,
                          (unsigned long long)current, (unsigned long long)*value);
        goto done;
    }
    next = increment ? current + 1 : *value;
    if (next != current || n == 0) {
        rv = counter_write(st, label, next);
        if (rv != TS_OK) {
            goto done;
        }
        for (size_t i = 0; i < n; i++) {
            if (found[i].kind == P11_COUNTER) {
                /* Failing here leaves a smaller value beside the new one: harmless. */
                st->f->C_DestroyObject(st->session, found[i].handle);
            }
        }
    }
    *value = next;
done:
    p11_unlock(fd);
    return rv;
}
