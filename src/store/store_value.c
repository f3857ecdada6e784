/*
 * Values going into and coming out of the database: every result column is checked for its
 * type, NULL and length before it is copied into a row, and every text going in is checked
 * against the size of the field it comes back into.
 */
#include <ctype.h>
#include <limits.h>
#include <string.h>

#include <openssl/crypto.h>

#include "common/error_internal.h"
#include "store/store_internal.h"

ts_sql_value ts_sql_int(int64_t v)
{
    ts_sql_value val = {.type = TS_SQL_INT, .i = v};
    return val;
}

ts_sql_value ts_sql_null(void)
{
    ts_sql_value val = {.type = TS_SQL_NULL};
    return val;
}

ts_sql_value ts_sql_text(const char *s)
{
    ts_sql_value val = {.type = TS_SQL_TEXT, .p = s, .len = s != NULL ? strlen(s) : 0};
    return val;
}

ts_sql_value ts_sql_blob(const void *p, size_t len)
{
    ts_sql_value val = {.type = TS_SQL_BLOB, .p = p, .len = len};
    return val;
}

static ts_err column(const ts_sql_row *row, size_t col, ts_sql_type type, const char *what,
                     const ts_sql_value **out)
{
    static const char *const names[] = {"NULL", "an integer", "text", "a blob"};
    if (col >= row->ncols) {
        return ts_error_set(TS_ERR_CORRUPT, "%s: the result has no column %zu", what, col);
    }
    const ts_sql_value *v = &row->cols[col];
    if (v->type != type) {
        return ts_error_set(TS_ERR_CORRUPT, "%s is %s in the database, not %s", what,
                            names[v->type], names[type]);
    }
    *out = v;
    return TS_OK;
}

int ts_sql_is_null(const ts_sql_row *row, size_t col)
{
    return col >= row->ncols || row->cols[col].type == TS_SQL_NULL;
}

ts_err ts_sql_get_int(const ts_sql_row *row, size_t col, const char *what, int64_t *out)
{
    const ts_sql_value *v = NULL;
    ts_err rv = column(row, col, TS_SQL_INT, what, &v);
    if (rv != TS_OK) {
        return rv;
    }
    *out = v->i;
    return TS_OK;
}

ts_err ts_sql_get_time(const ts_sql_row *row, size_t col, const char *what, time_t *out)
{
    int64_t v = 0;
    ts_err rv = ts_sql_get_int(row, col, what, &v);
    if (rv != TS_OK) {
        return rv;
    }
    if ((int64_t)(time_t)v != v) {
        return ts_error_set(TS_ERR_CORRUPT, "%s (%lld) does not fit a time", what, (long long)v);
    }
    *out = (time_t)v;
    return TS_OK;
}

static ts_err text_column(const ts_sql_row *row, size_t col, const char *what, size_t max,
                          const ts_sql_value **out)
{
    const ts_sql_value *v = NULL;
    ts_err rv = column(row, col, TS_SQL_TEXT, what, &v);
    if (rv != TS_OK) {
        return rv;
    }
    if (v->len > max) {
        return ts_error_set(TS_ERR_CORRUPT, "%s in the database is %zu bytes long, over %zu", what,
                            v->len, max);
    }
    if (v->len > 0 && memchr(v->p, '\0', v->len) != NULL) {
        return ts_error_set(TS_ERR_CORRUPT, "%s in the database holds a NUL byte", what);
    }
    *out = v;
    return TS_OK;
}

ts_err ts_sql_get_text(const ts_sql_row *row, size_t col, const char *what, char *buf, size_t size)
{
    const ts_sql_value *v = NULL;
    ts_err rv = text_column(row, col, what, size - 1, &v);
    if (rv != TS_OK) {
        return rv;
    }
    if (v->len > 0) {
        memcpy(buf, v->p, v->len);
    }
    buf[v->len] = '\0';
    return TS_OK;
}

ts_err ts_sql_get_text_dup(const ts_sql_row *row, size_t col, const char *what, size_t max,
                           char **out)
{
    const ts_sql_value *v = NULL;
    ts_err rv = text_column(row, col, what, max, &v);
    if (rv != TS_OK) {
        return rv;
    }
    char *copy = OPENSSL_malloc(v->len + 1);
    if (copy == NULL) {
        return ts_error_set(TS_ERR_NOMEM, "no memory for %s", what);
    }
    if (v->len > 0) {
        memcpy(copy, v->p, v->len);
    }
    copy[v->len] = '\0';
    *out = copy;
    return TS_OK;
}

ts_err ts_sql_get_blob_dup(const ts_sql_row *row, size_t col, const char *what, size_t max,
                           uint8_t **out, size_t *len)
{
    const ts_sql_value *v = NULL;
    ts_err rv = column(row, col, TS_SQL_BLOB, what, &v);
    if (rv != TS_OK) {
        return rv;
    }
    if (v->len == 0 || v->len > max) {
        return ts_error_set(TS_ERR_CORRUPT, "%s in the database is %zu bytes long (1 to %zu)", what,
                            v->len, max);
    }
    uint8_t *copy = OPENSSL_memdup(v->p, v->len);
    if (copy == NULL) {
        return ts_error_set(TS_ERR_NOMEM, "no memory for %s", what);
    }
    *out = copy;
    *len = v->len;
    return TS_OK;
}

ts_err ts_sql_one_int(void *ctx, const ts_sql_row *row)
{
    return ts_sql_get_int(row, 0, "the result", ctx);
}

ts_err ts_check_text(const char *text, size_t size, int nonempty, const char *what)
{
    if (text == NULL) {
        return ts_error_set(TS_ERR_INVALID, "%s is missing", what);
    }
    size_t len = strnlen(text, size);
    if (len == size) {
        return ts_error_set(TS_ERR_INVALID, "%s is longer than %zu bytes", what, size - 1);
    }
    if (nonempty && len == 0) {
        return ts_error_set(TS_ERR_INVALID, "%s is empty", what);
    }
    return TS_OK;
}

ts_err ts_check_name(const char *name, const char *what)
{
    ts_err rv = ts_check_text(name, TS_NAME_MAX + 1, 1, what);
    if (rv != TS_OK) {
        return rv;
    }
    for (const char *c = name; *c != '\0'; c++) {
        if (!isgraph((unsigned char)*c)) {
            return ts_error_set(TS_ERR_INVALID, "%s \"%s\" has a space or control character", what,
                                name);
        }
    }
    return TS_OK;
}

ts_err ts_serial_canonical(const char *serial, char out[TS_SERIAL_HEX])
{
    if (serial == NULL) {
        return ts_error_set(TS_ERR_INVALID, "no serial number");
    }
    const char *p = serial;
    while (*p == '0') {
        p++;
    }
    size_t len = strlen(p);
    if (len == 0 || len > TS_SERIAL_HEX - 1) {
        return ts_error_set(TS_ERR_INVALID, "serial number \"%.64s\" is not 1 to %d hex digits",
                            serial, TS_SERIAL_HEX - 1);
    }
    /* openssl prints whole octets: an odd count gets a leading zero. */
    size_t pad = len % 2;
    if (len + pad > TS_SERIAL_HEX - 1) {
        return ts_error_set(TS_ERR_INVALID, "serial number \"%.64s\" is longer than 20 octets",
                            serial);
    }
    out[0] = '0';
    for (size_t i = 0; i < len; i++) {
        if (!isxdigit((unsigned char)p[i])) {
            return ts_error_set(TS_ERR_INVALID, "serial number \"%.64s\" is not hex", serial);
        }
        out[pad + i] = (char)toupper((unsigned char)p[i]);
    }
    out[pad + len] = '\0';
    return TS_OK;
}

ts_err ts_fingerprint_canonical(const char *fp, char out[65])
{
    if (fp == NULL || strnlen(fp, 65) != 64) {
        return ts_error_set(TS_ERR_INVALID, "a fingerprint is 64 hex digits (SHA-256)");
    }
    for (size_t i = 0; i < 64; i++) {
        if (!isxdigit((unsigned char)fp[i])) {
            return ts_error_set(TS_ERR_INVALID, "fingerprint \"%s\" is not hex", fp);
        }
        out[i] = (char)tolower((unsigned char)fp[i]);
    }
    out[64] = '\0';
    return TS_OK;
}

ts_err ts_array_reserve(void **array, size_t elem, size_t *cap, size_t need)
{
    if (need <= *cap) {
        return TS_OK;
    }
    size_t grown = *cap < 16 ? 16 : *cap;
    while (grown < need) {
        if (grown > SIZE_MAX / 2) {
            return ts_error_set(TS_ERR_NOMEM, "too many rows");
        }
        grown *= 2;
    }
    if (grown > SIZE_MAX / elem) {
        return ts_error_set(TS_ERR_NOMEM, "too many rows");
    }
    void *bigger = OPENSSL_realloc(*array, grown * elem);
    if (bigger == NULL) {
        return ts_error_set(TS_ERR_NOMEM, "no memory for %zu rows", grown);
    }
    memset((uint8_t *)bigger + *cap * elem, 0, (grown - *cap) * elem);
    *array = bigger;
    *cap = grown;
    return TS_OK;
}
