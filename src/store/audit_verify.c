/*
 * Walking the audit chain (docs/audit.md): entries in id order, each checked for its place in
 * the sequence, its link to the entry before and its own hash, and the last against the chain
 * head. The first entry that fails is named, with what was done to it.
 *
 * Values are read leniently here: an entry whose columns cannot be read (wrong type, too long)
 * is itself a finding, reported with its id, rather than a failure of the walk.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

#include "common/error_internal.h"
#include "store/audit_internal.h"

enum { VERIFY_PAGE = 256 };

typedef struct vrow {
    int64_t id;
    int64_t when;
    char *actor, *action, *object, *details;
    char prev[65], hash[65];
    char unreadable[256]; /* why a column could not be read; empty when all could */
} vrow;

typedef struct vpage {
    vrow *rows;
    size_t count, cap;
} vpage;

typedef struct walk {
    int64_t expected;  /* the id the next entry must have */
    char prev_hex[65]; /* the hash the next entry must link to */
    int64_t checked;
    int64_t first_bad;
} walk;

static void vrow_clear(vrow *r)
{
    OPENSSL_free(r->actor);
    OPENSSL_free(r->action);
    OPENSSL_free(r->object);
    OPENSSL_free(r->details);
    memset(r, 0, sizeof *r);
}

static ts_err vpage_row(void *ctx, const ts_sql_row *row)
{
    vpage *pg = ctx;
    ts_err rv = ts_array_reserve((void **)&pg->rows, sizeof *pg->rows, &pg->cap, pg->count + 1);
    if (rv != TS_OK) {
        return rv;
    }
    vrow *r = &pg->rows[pg->count];
    rv = ts_sql_get_int(row, 0, "audit_log.id", &r->id);
    if (rv != TS_OK) {
        return rv; /* without an id there is no order to check */
    }
    pg->count++;
    rv = ts_sql_get_int(row, 1, "logged_at", &r->when);
    if (rv == TS_OK) {
        rv = ts_sql_get_text_dup(row, 2, "actor", TS_TEXT_MAX - 1, &r->actor);
    }
    if (rv == TS_OK) {
        rv = ts_sql_get_text_dup(row, 3, "action", TS_NAME_MAX, &r->action);
    }
    if (rv == TS_OK) {
        rv = ts_sql_get_text_dup(row, 4, "object", TS_TEXT_MAX - 1, &r->object);
    }
    if (rv == TS_OK) {
        rv = ts_sql_get_text_dup(row, 5, "details", TS_STORE_JSON_MAX, &r->details);
    }
    if (rv == TS_OK) {
        rv = ts_sql_get_text(row, 6, "prev_hash", r->prev, sizeof r->prev);
    }
    if (rv == TS_OK) {
        rv = ts_sql_get_text(row, 7, "hash", r->hash, sizeof r->hash);
    }
    if (rv == TS_ERR_NOMEM) {
        return rv;
    }
    if (rv != TS_OK) {
        snprintf(r->unreadable, sizeof r->unreadable, "%s", ts_error_message());
    }
    return TS_OK;
}

static ts_err bad(walk *w, int64_t id, const char *fmt, ...) TS_PRINTF(3, 4);

static ts_err bad(walk *w, int64_t id, const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    w->first_bad = id;
    return ts_error_set(TS_ERR_CORRUPT, "%s", msg);
}

/* Checks r, the entry the walk expects next; next (or NULL) is the entry after it. */
static ts_err check_entry(walk *w, const vrow *r, const vrow *next)
{
    char hash[65];
    if (r->id != w->expected) {
        return bad(w, w->expected, "audit entry %lld is missing (deleted)", (long long)w->expected);
    }
    if (r->unreadable[0] != '\0') {
        return bad(w, r->id, "audit entry %lld is unreadable (the entry was edited): %s",
                   (long long)r->id, r->unreadable);
    }
    if (strcmp(r->prev, w->prev_hex) != 0) {
        /* Two entries whose contents traded places: each links where the other should. */
        if (next != NULL && next->id == r->id + 1 && strcmp(r->prev, next->hash) == 0 &&
            strcmp(next->prev, w->prev_hex) == 0) {
            return bad(w, r->id, "audit entries %lld and %lld are out of order", (long long)r->id,
                       (long long)next->id);
        }
        return bad(w, r->id,
                   "audit entry %lld does not link to entry %lld (it, or the entry before it, was "
                   "rewritten)",
                   (long long)r->id, (long long)(r->id - 1));
    }
    ts_err rv =
        ts_audit_hash(r->prev, r->id, r->when, r->actor, r->action, r->object, r->details, hash);
    if (rv == TS_ERR_CORRUPT) {
        return bad(w, r->id, "audit entry %lld: malformed previous hash (the entry was edited)",
                   (long long)r->id);
    }
    if (rv != TS_OK) {
        return rv;
    }
    if (strcmp(hash, r->hash) != 0) {
        return bad(w, r->id, "audit entry %lld: hash mismatch (the entry was edited)",
                   (long long)r->id);
    }
    memcpy(w->prev_hex, r->hash, sizeof w->prev_hex);
    w->expected++;
    w->checked++;
    return TS_OK;
}

static ts_err fetch_page(ts_store *s, int64_t after, int64_t bound, vpage *pg)
{
    for (size_t i = 0; i < pg->count; i++) {
        vrow_clear(&pg->rows[i]);
    }
    pg->count = 0;
    ts_sql_value p[] = {ts_sql_int(after), ts_sql_int(bound), ts_sql_int(VERIFY_PAGE)};
    return ts_store_read(s,
                         "SELECT id, logged_at, actor, action, object, details, prev_hash, hash "
                         "FROM audit_log WHERE id > $1 AND id <= $2 ORDER BY id LIMIT $3",
                         p, 3, vpage_row, pg);
}

/* After the last entry: the head must name it, or entries at the end were removed. */
static ts_err check_head(walk *w, int found, int64_t last_id, const char *last_hash)
{
    if (!found) {
        w->first_bad = 0;
        return ts_error_set(TS_ERR_CORRUPT, "the audit chain head is missing (it was deleted)");
    }
    if (w->expected - 1 < last_id) {
        return bad(w, w->expected, "audit entry %lld is missing (deleted)", (long long)w->expected);
    }
    if (strcmp(last_hash, w->prev_hex) != 0) {
        return bad(w, last_id,
                   "audit entry %lld does not match the chain head (the entry or the head was "
                   "edited)",
                   (long long)last_id);
    }
    return TS_OK;
}

/*
 * Entries past the head were not appended through the store: an append moves the head in the
 * same transaction. The highest id is read before the head, so an append committing in between
 * moves the head past it and is not mistaken for one.
 */
static ts_err check_beyond_head(ts_store *s, walk *w)
{
    int64_t max_id = 0, last_id = 0;
    char last_hash[65];
    int found = 0;
    ts_err rv = ts_store_read(s, "SELECT COALESCE(MAX(id), 0) FROM audit_log", NULL, 0,
                              ts_sql_one_int, &max_id);
    if (rv == TS_OK) {
        rv = ts_audit_read_head(s, &last_id, last_hash, &found);
    }
    if (rv == TS_OK && found && max_id > last_id) {
        rv = bad(w, last_id + 1,
                 "audit entry %lld is not in the chain (it was added behind the store's back)",
                 (long long)(last_id + 1));
    }
    return rv;
}

ts_err ts_store_audit_verify(ts_store *store, int64_t *entries, int64_t *first_bad)
{
    walk w = {.expected = 1};
    vpage pg = {0};
    vrow pending = {0};
    int have_pending = 0, found = 0;
    int64_t last_id = 0, after = 0;
    char last_hash[65] = {0};

    if (store == NULL || entries == NULL || first_bad == NULL) {
        return ts_error_set(TS_ERR_INVALID, "ts_store_audit_verify: missing argument");
    }
    *entries = 0;
    *first_bad = 0;
    memset(w.prev_hex, '0', 64);
    w.prev_hex[64] = '\0';
    /*
     * The head is read first and bounds the walk: entries appended while the walk runs come
     * after it and are left for the next verification.
     */
    ts_err rv = ts_audit_read_head(store, &last_id, last_hash, &found);
    int64_t bound = found ? last_id : INT64_MAX;
    while (rv == TS_OK) {
        rv = fetch_page(store, after, bound, &pg);
        for (size_t i = 0; rv == TS_OK && i < pg.count; i++) {
            if (have_pending) {
                rv = check_entry(&w, &pending, &pg.rows[i]);
                vrow_clear(&pending);
            }
            pending = pg.rows[i];
            memset(&pg.rows[i], 0, sizeof pg.rows[i]);
            have_pending = 1;
            after = pending.id;
        }
        if (rv != TS_OK || pg.count < VERIFY_PAGE) {
            break;
        }
    }
    if (rv == TS_OK && have_pending) {
        rv = check_entry(&w, &pending, NULL);
    }
    if (rv == TS_OK) {
        rv = check_head(&w, found, last_id, last_hash);
    }
    if (rv == TS_OK) {
        rv = check_beyond_head(store, &w);
    }
    vrow_clear(&pending);
    for (size_t i = 0; i < pg.count; i++) {
        vrow_clear(&pg.rows[i]);
    }
    OPENSSL_free(pg.rows);
    *entries = w.checked;
    *first_bad = w.first_bad;
    return rv;
}
