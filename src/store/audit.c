/*
 * The audit log: a hash chain over every recorded change (docs/audit.md has the encoding).
 *
 * An entry's hash is SHA-256 over length-prefixed fields: a version label, the previous entry's
 * hash, then the entry's id, time, actor, action, object and details. ids are consecutive from
 * 1, handed out by the chain-head row, which a transaction's first append updates: the update
 * locks the row (PostgreSQL) or runs under the write lock of BEGIN IMMEDIATE (SQLite) until
 * commit, so appenders in several processes take turns and the chain never forks. The row gets
 * the transaction's last id and hash once, just before the commit.
 */
#include <string.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "common/error_internal.h"
#include "common/digest_internal.h"
#include "store/audit_internal.h"

static const char AUDIT_LABEL[] = "tessera-audit-v1";

static int put_field(EVP_MD_CTX *md, const void *data, size_t len)
{
    uint8_t prefix[4] = {(uint8_t)(len >> 24), (uint8_t)(len >> 16), (uint8_t)(len >> 8),
                         (uint8_t)len};
    return EVP_DigestUpdate(md, prefix, sizeof prefix) && EVP_DigestUpdate(md, data, len);
}

static int put_int(EVP_MD_CTX *md, int64_t v)
{
    uint8_t be[8];
    for (int i = 0; i < 8; i++) {
        be[i] = (uint8_t)((uint64_t)v >> (56 - 8 * i));
    }
    return put_field(md, be, sizeof be);
}

static void to_hex(const uint8_t *in, size_t len, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 0x0f];
    }
    out[2 * len] = '\0';
}

ts_err ts_audit_hash(const char prev_hex[65], int64_t id, int64_t when, const char *actor,
                     const char *action, const char *object, const char *details, char out[65])
{
    uint8_t prev[32], digest[32];
    unsigned int len = 0;
    ts_err rv = ts_audit_hex_decode(prev_hex, prev);
    if (rv != TS_OK) {
        return rv;
    }
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int ok = md != NULL && EVP_DigestInit_ex(md, ts_md_sha256(), NULL) &&
             put_field(md, AUDIT_LABEL, sizeof AUDIT_LABEL - 1) &&
             put_field(md, prev, sizeof prev) && put_int(md, id) && put_int(md, when) &&
             put_field(md, actor, strlen(actor)) && put_field(md, action, strlen(action)) &&
             put_field(md, object, strlen(object)) && put_field(md, details, strlen(details)) &&
             EVP_DigestFinal_ex(md, digest, &len) && len == sizeof digest;
    EVP_MD_CTX_free(md);
    if (!ok) {
        return ts_error_set_openssl(TS_ERR_CRYPTO, "cannot hash an audit entry");
    }
    to_hex(digest, sizeof digest, out);
    return TS_OK;
}

ts_err ts_audit_hex_decode(const char *hex, uint8_t out[32])
{
    if (hex == NULL || strlen(hex) != 64) {
        return ts_error_set(TS_ERR_CORRUPT, "an audit hash is not 64 hex digits");
    }
    for (size_t i = 0; i < 32; i++) {
        int hi = OPENSSL_hexchar2int((unsigned char)hex[2 * i]);
        int lo = OPENSSL_hexchar2int((unsigned char)hex[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            return ts_error_set(TS_ERR_CORRUPT, "an audit hash is not 64 hex digits");
        }
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return TS_OK;
}

/* --- Appending ----------------------------------------------------------------------------- */

typedef struct head {
    int64_t last_id;
    char last_hash[65];
    int found;
} head;

static ts_err head_row(void *ctx, const ts_sql_row *row)
{
    head *h = ctx;
    if (h->found) {
        return ts_error_set(TS_ERR_CORRUPT, "the audit chain has two heads");
    }
    h->found = 1;
    ts_err rv = ts_sql_get_int(row, 0, "audit_head.last_id", &h->last_id);
    if (rv == TS_OK) {
        rv = ts_sql_get_text(row, 1, "audit_head.last_hash", h->last_hash, sizeof h->last_hash);
    }
    return rv;
}

/* Outside-supplied details must be one JSON text; trusted ones are only bounded. */
static ts_err check_details(const char *details, int trusted)
{
    json_error_t err;
    ts_err rv = ts_check_text(details, TS_STORE_JSON_MAX, 1, "audit details");
    if (rv != TS_OK || trusted) {
        return rv;
    }
    json_t *doc = json_loads(details, JSON_DECODE_ANY, &err);
    if (doc == NULL) {
        return ts_error_set(TS_ERR_INVALID, "audit details are not JSON: %s", err.text);
    }
    json_decref(doc);
    return TS_OK;
}

/*
 * The id and hash the next entry follows. The transaction's first append takes the next id from
 * the head row, which locks it until commit (the next appender, in any process, waits there);
 * later appends in the same transaction continue from the head kept in the store handle, and
 * ts_audit_flush_head() writes it back before the commit.
 */
static ts_err take_head(ts_store *store, head *h)
{
    if (store->audit_pending) {
        h->found = 1;
        h->last_id = store->audit_last_id;
        memcpy(h->last_hash, store->audit_last_hash, sizeof h->last_hash);
        return TS_OK;
    }
    ts_err rv = ts_store_write_query(store,
                                     "UPDATE audit_head SET last_id = last_id WHERE one = 1 "
                                     "RETURNING last_id, last_hash",
                                     NULL, 0, head_row, h);
    if (rv == TS_OK && !h->found) {
        rv = ts_error_set(TS_ERR_CORRUPT, "the audit chain head is missing");
    }
    return rv;
}

static ts_err append(ts_store *store, const char *actor, const char *action, const char *object,
                     const char *details_json, int trusted)
{
    head h = {0};
    char hash[65];
    const char *details = details_json != NULL ? details_json : "{}";
    if (store == NULL) {
        return ts_error_set(TS_ERR_INVALID, "ts_store_audit_append: no store");
    }
    ts_err rv = ts_check_text(actor, TS_TEXT_MAX, 1, "an audit actor");
    if (rv == TS_OK) {
        rv = ts_check_text(action, TS_NAME_MAX + 1, 1, "an audit action");
    }
    if (rv == TS_OK) {
        rv = ts_check_text(object, TS_TEXT_MAX, 0, "an audit object");
    }
    if (rv == TS_OK) {
        rv = check_details(details, trusted);
    }
    if (rv == TS_OK) {
        rv = ts_store_need_tx(store, "ts_store_audit_append");
    }
    if (rv == TS_OK) {
        rv = take_head(store, &h);
    }
    int64_t id = h.last_id + 1;
    time_t now = time(NULL);
    if (rv == TS_OK) {
        rv = ts_audit_hash(h.last_hash, id, now, actor, action, object, details, hash);
    }
    if (rv == TS_OK) {
        ts_sql_value p[] = {ts_sql_int(id),           ts_sql_int(now),     ts_sql_text(actor),
                            ts_sql_text(action),      ts_sql_text(object), ts_sql_text(details),
                            ts_sql_text(h.last_hash), ts_sql_text(hash)};
        rv = ts_store_write(store,
                            "INSERT INTO audit_log (id, logged_at, actor, action, object, details, "
                            "prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                            p, 8, NULL);
    }
    if (rv != TS_OK) {
        return ts_error_prefix(rv, "appending to the audit log");
    }
    /* Only an entry that is in the table moves the head. */
    store->audit_pending = 1;
    store->audit_last_id = id;
    memcpy(store->audit_last_hash, hash, sizeof hash);
    return TS_OK;
}

ts_err ts_store_audit_append(ts_store *store, const char *actor, const char *action,
                             const char *object, const char *details_json)
{
    return append(store, actor, action, object, details_json, 0);
}

ts_err ts_store_audit_append_trusted(ts_store *store, const char *actor, const char *action,
                                     const char *object, const char *details_json)
{
    return append(store, actor, action, object, details_json, 1);
}

ts_err ts_audit_lock(ts_store *s)
{
    head h = {0};
    ts_err rv = ts_store_need_tx(s, "taking the audit chain's lock");
    if (rv == TS_OK) {
        rv = take_head(s, &h);
    }
    if (rv != TS_OK) {
        return ts_error_prefix(rv, "taking the audit chain's lock");
    }
    /* Held until commit: the head is written back unchanged unless an append moves it. */
    s->audit_pending = 1;
    s->audit_last_id = h.last_id;
    memcpy(s->audit_last_hash, h.last_hash, sizeof h.last_hash);
    return TS_OK;
}

ts_err ts_audit_flush_head(ts_store *s)
{
    int64_t changes = 0;
    if (!s->audit_pending) {
        return TS_OK;
    }
    ts_sql_value p[] = {ts_sql_int(s->audit_last_id), ts_sql_text(s->audit_last_hash)};
    ts_err rv = ts_store_write(
        s, "UPDATE audit_head SET last_id = $1, last_hash = $2 WHERE one = 1", p, 2, &changes);
    if (rv == TS_OK && changes != 1) {
        rv = ts_error_set(TS_ERR_CORRUPT, "the audit chain head is missing");
    }
    if (rv != TS_OK) {
        return ts_error_prefix(rv, "writing the audit chain head");
    }
    s->audit_pending = 0;
    return TS_OK;
}

/* --- Listing ------------------------------------------------------------------------------- */

void ts_audit_rows_free(ts_audit_row *rows, size_t count)
{
    if (rows == NULL) {
        return;
    }
    for (size_t i = 0; i < count; i++) {
        OPENSSL_free(rows[i].details);
    }
    OPENSSL_free(rows);
}

typedef struct audit_list {
    ts_audit_row *rows;
    size_t count, cap;
} audit_list;

static ts_err audit_list_row(void *ctx, const ts_sql_row *row)
{
    audit_list *l = ctx;
    ts_err rv = ts_array_reserve((void **)&l->rows, sizeof *l->rows, &l->cap, l->count + 1);
    if (rv != TS_OK) {
        return rv;
    }
    ts_audit_row *a = &l->rows[l->count++];
    rv = ts_sql_get_int(row, 0, "audit_log.id", &a->id);
    if (rv == TS_OK) {
        rv = ts_sql_get_time(row, 1, "audit_log.logged_at", &a->time);
    }
    if (rv == TS_OK) {
        rv = ts_sql_get_text(row, 2, "audit_log.actor", a->actor, sizeof a->actor);
    }
    if (rv == TS_OK) {
        rv = ts_sql_get_text(row, 3, "audit_log.action", a->action, sizeof a->action);
    }
    if (rv == TS_OK) {
        rv = ts_sql_get_text(row, 4, "audit_log.object", a->object, sizeof a->object);
    }
    if (rv == TS_OK) {
        rv = ts_sql_get_text_dup(row, 5, "audit_log.details", TS_STORE_JSON_MAX, &a->details);
    }
    if (rv == TS_OK) {
        rv = ts_sql_get_text(row, 6, "audit_log.hash", a->hash, sizeof a->hash);
    }
    return rv;
}

ts_err ts_store_audit_list(ts_store *store, int64_t after_id, size_t limit, ts_audit_row **rows,
                           size_t *count)
{
    audit_list l = {0};
    if (store == NULL || rows == NULL || count == NULL) {
        return ts_error_set(TS_ERR_INVALID, "ts_store_audit_list: missing argument");
    }
    *rows = NULL;
    *count = 0;
    int64_t lim = limit == 0 || limit > INT64_MAX ? INT64_MAX : (int64_t)limit;
    ts_sql_value p[] = {ts_sql_int(after_id), ts_sql_int(lim)};
    ts_err rv = ts_store_read(store,
                              "SELECT id, logged_at, actor, action, object, details, hash "
                              "FROM audit_log WHERE id > $1 ORDER BY id LIMIT $2",
                              p, 2, audit_list_row, &l);
    if (rv != TS_OK) {
        ts_audit_rows_free(l.rows, l.count);
        return ts_error_prefix(rv, "listing the audit log");
    }
    *rows = l.rows;
    *count = l.count;
    return TS_OK;
}

ts_err ts_audit_read_head(ts_store *s, int64_t *last_id, char last_hash[65], int *found)
{
    head h = {0};
    if (s->audit_pending) {
        /* This transaction appended: it holds the head, and the store handle has it. */
        *found = 1;
        *last_id = s->audit_last_id;
        memcpy(last_hash, s->audit_last_hash, 65);
        return TS_OK;
    }
    ts_err rv = ts_store_read(s, "SELECT last_id, last_hash FROM audit_head WHERE one = 1", NULL, 0,
                              head_row, &h);
    if (rv != TS_OK) {
        return rv;
    }
    *found = h.found;
    *last_id = h.last_id;
    memcpy(last_hash, h.last_hash, sizeof h.last_hash);
    return TS_OK;
}
