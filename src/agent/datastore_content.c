/*
 * The datastore's entries in memory: a sorted array of names with typed values, and the rules
 * every stored generation keeps (names, order, types, size limits).
 */
#include <string.h>

#include <openssl/asn1.h>
#include <openssl/crypto.h>

#include "agent/datastore_internal.h"
#include "common/error_internal.h"

ts_ds_content *ts_ds_content_new(void)
{
    ts_ds_content *c = OPENSSL_zalloc(sizeof *c);
    if (c != NULL) {
        c->version = TS_DATASTORE_FORMAT_VERSION;
    }
    return c;
}

void ts_ds_content_free(ts_ds_content *c)
{
    if (c == NULL) {
        return;
    }
    for (size_t i = 0; i < c->count; i++) {
        OPENSSL_clear_free(c->entries[i].value, c->entries[i].len + 1);
    }
    OPENSSL_free(c->entries);
    OPENSSL_free(c);
}

/* Room for one more entry; 1 on success. */
static int reserve(ts_ds_content *c)
{
    ts_ds_entry *grown = OPENSSL_realloc(c->entries, (c->count + 1) * sizeof *grown);
    if (grown == NULL) {
        return 0;
    }
    c->entries = grown;
    return 1;
}

static uint8_t *value_dup(const uint8_t *value, size_t len)
{
    uint8_t *out = OPENSSL_malloc(len + 1);
    if (out != NULL) {
        if (len > 0) {
            memcpy(out, value, len);
        }
        out[len] = 0;
    }
    return out;
}

ts_err ts_ds_content_copy(const ts_ds_content *c, ts_ds_content **out)
{
    ts_ds_content *copy = ts_ds_content_new();

    *out = NULL;
    if (copy != NULL && c->count > 0) {
        copy->entries = OPENSSL_zalloc(c->count * sizeof *copy->entries);
    }
    if (copy == NULL || (c->count > 0 && copy->entries == NULL)) {
        ts_ds_content_free(copy);
        return ts_error_set(TS_ERR_NOMEM, "out of memory copying the datastore");
    }
    copy->version = c->version;
    memcpy(copy->uid, c->uid, sizeof copy->uid);
    copy->generation = c->generation;
    copy->total = c->total;
    for (size_t i = 0; i < c->count; i++) {
        copy->entries[i] = c->entries[i];
        copy->entries[i].value = value_dup(c->entries[i].value, c->entries[i].len);
        if (copy->entries[i].value == NULL) {
            ts_ds_content_free(copy);
            return ts_error_set(TS_ERR_NOMEM, "out of memory copying the datastore");
        }
        copy->count++;
    }
    *out = copy;
    return TS_OK;
}

/* The index of name, or where it would go (*found says which). */
static size_t position(const ts_ds_content *c, const char *name, int *found)
{
    size_t lo = 0, hi = c->count;
    *found = 0;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int cmp = strcmp(c->entries[mid].name, name);
        if (cmp == 0) {
            *found = 1;
            return mid;
        }
        if (cmp < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

const ts_ds_entry *ts_ds_content_find(const ts_ds_content *c, const char *name)
{
    int found = 0;
    size_t i = position(c, name, &found);
    return found ? &c->entries[i] : NULL;
}

int ts_ds_name_ok(const char *name, size_t len)
{
    if (len == 0 || len > TS_DATASTORE_NAME_MAX || name[0] < 'a' || name[0] > 'z') {
        return 0;
    }
    for (size_t i = 0; i < len; i++) {
        char ch = name[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' ||
              ch == '-')) {
            return 0;
        }
    }
    return 1;
}

static int utf8_ok(const uint8_t *value, size_t len)
{
    size_t off = 0;
    while (off < len) {
        unsigned long ch = 0;
        size_t left = len - off;
        int n = UTF8_getc(value + off, left > 8 ? 8 : (int)left, &ch);
        /* UTF8_getc refuses overlong forms; surrogates and values past U+10FFFF are refused
         * here (RFC 3629, section 3). */
        if (n <= 0 || ch == 0 || (ch >= 0xD800 && ch <= 0xDFFF) || ch > 0x10FFFF) {
            return 0;
        }
        off += (size_t)n;
    }
    return 1;
}

static int uint_ok(const uint8_t *value, size_t len)
{
    uint64_t v = 0;
    if (len == 0 || len > 20 || (len > 1 && value[0] == '0')) {
        return 0;
    }
    for (size_t i = 0; i < len; i++) {
        if (value[i] < '0' || value[i] > '9') {
            return 0;
        }
        uint64_t digit = (uint64_t)(value[i] - '0');
        if (v > (UINT64_MAX - digit) / 10) {
            return 0;
        }
        v = v * 10 + digit;
    }
    return 1;
}

int ts_ds_value_ok(ts_datastore_type type, const uint8_t *value, size_t len)
{
    switch (type) {
    case TS_DATASTORE_BYTES:
        return 1;
    case TS_DATASTORE_TEXT:
        return utf8_ok(value, len);
    case TS_DATASTORE_UINT:
        return uint_ok(value, len);
    }
    return 0;
}

static const char *type_name(ts_datastore_type type)
{
    switch (type) {
    case TS_DATASTORE_BYTES:
        return "bytes";
    case TS_DATASTORE_TEXT:
        return "text";
    case TS_DATASTORE_UINT:
        return "uint";
    }
    return "unknown";
}

static ts_err check_name(const char *name)
{
    if (name == NULL || !ts_ds_name_ok(name, strnlen(name, TS_DATASTORE_NAME_MAX + 1))) {
        return ts_error_set(TS_ERR_INVALID,
                            "datastore entry name '%.80s' is not 1 to %d characters of "
                            "[a-z0-9._-] starting with a letter",
                            name != NULL ? name : "(null)", TS_DATASTORE_NAME_MAX);
    }
    return TS_OK;
}

ts_err ts_ds_content_set(ts_ds_content *c, const char *name, ts_datastore_type type,
                         const uint8_t *value, size_t len)
{
    int found = 0;
    ts_err rv = check_name(name);
    if (rv != TS_OK) {
        return rv;
    }
    if (value == NULL && len > 0) {
        return ts_error_set(TS_ERR_INVALID, "datastore entry %s: no value", name);
    }
    if (type != TS_DATASTORE_BYTES && type != TS_DATASTORE_TEXT && type != TS_DATASTORE_UINT) {
        return ts_error_set(TS_ERR_INVALID, "datastore entry %s: unknown type %d", name, (int)type);
    }
    if (!ts_ds_value_ok(type, value, len)) {
        return ts_error_set(TS_ERR_INVALID, "datastore entry %s: the value is not valid %s%s", name,
                            type_name(type),
                            type == TS_DATASTORE_UINT ? " (decimal digits, no leading zero, "
                                                        "at most 2^64-1)"
                                                      : " (UTF-8 without NUL)");
    }
    if (len > TS_DATASTORE_VALUE_MAX) {
        return ts_error_set(TS_ERR_LIMIT, "datastore entry %s: %zu bytes is over the %d-byte limit",
                            name, len, TS_DATASTORE_VALUE_MAX);
    }
    size_t i = position(c, name, &found);
    size_t old_len = found ? c->entries[i].len : 0;
    if (c->total - old_len + len > TS_DATASTORE_TOTAL_MAX) {
        return ts_error_set(TS_ERR_LIMIT, "datastore entry %s: the datastore would exceed %d bytes",
                            name, TS_DATASTORE_TOTAL_MAX);
    }
    if (!found && c->count >= TS_DATASTORE_ENTRIES_MAX) {
        return ts_error_set(TS_ERR_LIMIT,
                            "datastore entry %s: the datastore already has %d entries", name,
                            TS_DATASTORE_ENTRIES_MAX);
    }
    uint8_t *copy = value_dup(value, len);
    if (copy == NULL || (!found && !reserve(c))) {
        OPENSSL_free(copy);
        return ts_error_set(TS_ERR_NOMEM, "out of memory setting datastore entry %s", name);
    }
    if (found) {
        OPENSSL_clear_free(c->entries[i].value, c->entries[i].len + 1);
    } else {
        memmove(&c->entries[i + 1], &c->entries[i], (c->count - i) * sizeof c->entries[0]);
        c->count++;
        memset(&c->entries[i], 0, sizeof c->entries[i]);
        memcpy(c->entries[i].name, name, strlen(name) + 1);
    }
    c->entries[i].type = type;
    c->entries[i].value = copy;
    c->entries[i].len = len;
    c->total = c->total - old_len + len;
    return TS_OK;
}

ts_err ts_ds_content_append(ts_ds_content *c, const char *name, const uint8_t *chunk, size_t len)
{
    int found = 0;
    ts_err rv = check_name(name);
    if (rv != TS_OK) {
        return rv;
    }
    size_t i = position(c, name, &found);
    if (!found) {
        return ts_error_set(TS_ERR_NOT_FOUND, "datastore entry %s: nothing to append to", name);
    }
    ts_ds_entry *e = &c->entries[i];
    if (chunk == NULL && len > 0) {
        return ts_error_set(TS_ERR_INVALID, "datastore entry %s: no chunk", name);
    }
    if (e->type == TS_DATASTORE_UINT) {
        return ts_error_set(TS_ERR_WRONG_TYPE, "datastore entry %s: a uint takes no chunks", name);
    }
    if (e->type == TS_DATASTORE_TEXT && len > 0 && memchr(chunk, 0, len) != NULL) {
        return ts_error_set(TS_ERR_INVALID, "datastore entry %s: text may not hold NUL", name);
    }
    if (len > TS_DATASTORE_VALUE_MAX - e->len) {
        return ts_error_set(TS_ERR_LIMIT, "datastore entry %s: over the %d-byte limit", name,
                            TS_DATASTORE_VALUE_MAX);
    }
    if (c->total + len > TS_DATASTORE_TOTAL_MAX) {
        return ts_error_set(TS_ERR_LIMIT, "datastore entry %s: the datastore would exceed %d bytes",
                            name, TS_DATASTORE_TOTAL_MAX);
    }
    uint8_t *grown = OPENSSL_malloc(e->len + len + 1);
    if (grown == NULL) {
        return ts_error_set(TS_ERR_NOMEM, "out of memory appending to datastore entry %s", name);
    }
    memcpy(grown, e->value, e->len);
    if (len > 0) {
        memcpy(grown + e->len, chunk, len);
    }
    grown[e->len + len] = 0;
    OPENSSL_clear_free(e->value, e->len + 1);
    e->value = grown;
    e->len += len;
    c->total += len;
    return TS_OK;
}

ts_err ts_ds_content_remove(ts_ds_content *c, const char *name)
{
    int found = 0;
    ts_err rv = check_name(name);
    if (rv != TS_OK) {
        return rv;
    }
    size_t i = position(c, name, &found);
    if (!found) {
        return ts_error_set(TS_ERR_NOT_FOUND, "datastore entry %s does not exist", name);
    }
    c->total -= c->entries[i].len;
    OPENSSL_clear_free(c->entries[i].value, c->entries[i].len + 1);
    memmove(&c->entries[i], &c->entries[i + 1], (c->count - i - 1) * sizeof c->entries[0]);
    c->count--;
    return TS_OK;
}

ts_err ts_ds_content_check(const ts_ds_content *c, ts_err code, const char *what)
{
    size_t total = 0;
    if (c->count > TS_DATASTORE_ENTRIES_MAX) {
        return ts_error_set(code, "%s: %zu entries is over the limit of %d", what, c->count,
                            TS_DATASTORE_ENTRIES_MAX);
    }
    for (size_t i = 0; i < c->count; i++) {
        const ts_ds_entry *e = &c->entries[i];
        if (!ts_ds_name_ok(e->name, strlen(e->name))) {
            return ts_error_set(code, "%s: entry %zu has an invalid name", what, i);
        }
        if (i > 0 && strcmp(c->entries[i - 1].name, e->name) >= 0) {
            return ts_error_set(code, "%s: entry %s is out of order or repeated", what, e->name);
        }
        if (e->len > TS_DATASTORE_VALUE_MAX) {
            return ts_error_set(code, "%s: entry %s is over the %d-byte limit", what, e->name,
                                TS_DATASTORE_VALUE_MAX);
        }
        if (!ts_ds_value_ok(e->type, e->value, e->len)) {
            return ts_error_set(code, "%s: entry %s does not hold valid %s", what, e->name,
                                type_name(e->type));
        }
        total += e->len;
    }
    if (total > TS_DATASTORE_TOTAL_MAX) {
        return ts_error_set(code, "%s: %zu bytes of values is over the limit of %d", what, total,
                            TS_DATASTORE_TOTAL_MAX);
    }
    return TS_OK;
}
