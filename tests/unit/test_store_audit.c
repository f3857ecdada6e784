/*
 * The audit chain on both backends: appending, listing, the hash encoding of docs/audit.md
 * recomputed here from the document, tampering behind the store's back (edit, delete, swap,
 * relink, truncate, head removed), each found and located by ts_store_audit_verify(), and two
 * processes appending at once.
 */
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "store_test_util.h"

static void append(ts_store *s, int i)
{
    char object[64], details[96];
    snprintf(object, sizeof object, "cert/%04X", i);
    snprintf(details, sizeof details, "{\"n\":%d,\"note\":\"entry \\u00e9\"}", i);
    OK(ts_store_begin(s));
    OK(ts_store_audit_append(s, "operator alice", "cert.issue", object, details));
    OK(ts_store_commit(s));
}

static void fill(store_fx *fx, int n)
{
    for (int i = 1; i <= n; i++) {
        append(fx->s, i);
    }
}

static void expect_intact(store_fx *fx, int64_t want)
{
    int64_t entries = -1, bad = -1;
    OK(ts_store_audit_verify(fx->s, &entries, &bad));
    assert_int_equal(entries, want);
    assert_int_equal(bad, 0);
}

static void expect_broken(store_fx *fx, int64_t want_bad, const char *words)
{
    int64_t entries = -1, bad = -1;
    ERR(TS_ERR_CORRUPT, words, ts_store_audit_verify(fx->s, &entries, &bad));
    assert_int_equal(bad, want_bad);
    print_message("    found: %s\n", ts_error_message());
}

static void case_audit_basic(store_fx *fx)
{
    ts_audit_row *rows = NULL;
    size_t count = 0;
    expect_intact(fx, 0);
    OK(ts_store_begin(fx->s));
    OK(ts_store_audit_append(fx->s, "ceremony", "init", "instance", "{\"shares\":\"3/5\"}"));
    OK(ts_store_audit_append(fx->s, "ceremony", "ca.create", "root", NULL));
    OK(ts_store_commit(fx->s));
    fill(fx, 3);

    OK(ts_store_audit_list(fx->s, 0, 0, &rows, &count));
    assert_int_equal(count, 5);
    for (size_t i = 0; i < count; i++) {
        assert_int_equal(rows[i].id, (int64_t)i + 1);
        assert_int_equal(strlen(rows[i].hash), 64);
        assert_true(rows[i].time > 0);
    }
    assert_string_equal(rows[0].actor, "ceremony");
    assert_string_equal(rows[0].action, "init");
    assert_string_equal(rows[0].object, "instance");
    assert_string_equal(rows[0].details, "{\"shares\":\"3/5\"}");
    assert_string_equal(rows[1].details, "{}");
    assert_string_equal(rows[4].object, "cert/0003");
    assert_string_not_equal(rows[0].hash, rows[1].hash);
    ts_audit_rows_free(rows, count);

    OK(ts_store_audit_list(fx->s, 2, 2, &rows, &count));
    assert_int_equal(count, 2);
    assert_int_equal(rows[0].id, 3);
    assert_int_equal(rows[1].id, 4);
    ts_audit_rows_free(rows, count);
    expect_intact(fx, 5);

    OK(ts_store_begin(fx->s));
    ERR(TS_ERR_INVALID, "JSON", ts_store_audit_append(fx->s, "a", "b", "c", "{not json"));
    ERR(TS_ERR_INVALID, NULL, ts_store_audit_append(fx->s, "", "b", "c", NULL));
    ERR(TS_ERR_INVALID, NULL, ts_store_audit_append(fx->s, "a", NULL, "c", NULL));
    char long_action[TS_NAME_MAX + 2];
    memset(long_action, 'x', sizeof long_action - 1);
    long_action[sizeof long_action - 1] = '\0';
    ERR(TS_ERR_INVALID, NULL, ts_store_audit_append(fx->s, "a", long_action, "c", NULL));
    OK(ts_store_commit(fx->s));
    expect_intact(fx, 5);
}

/* The encoding as docs/audit.md states it, written from the document. */
static void doc_field(EVP_MD_CTX *md, const void *p, size_t len)
{
    uint8_t be[4] = {(uint8_t)(len >> 24), (uint8_t)(len >> 16), (uint8_t)(len >> 8), (uint8_t)len};
    assert_true(EVP_DigestUpdate(md, be, 4) && EVP_DigestUpdate(md, p, len));
}

static void doc_number(EVP_MD_CTX *md, int64_t v)
{
    uint8_t be[8];
    for (int i = 0; i < 8; i++) {
        be[i] = (uint8_t)((uint64_t)v >> (8 * (7 - i)));
    }
    doc_field(md, be, 8);
}

static void doc_hash(const uint8_t prev[32], const ts_audit_row *r, char hex[65])
{
    uint8_t out[32];
    unsigned int len = 0;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    assert_non_null(md);
    assert_true(EVP_DigestInit_ex(md, EVP_sha256(), NULL));
    doc_field(md, "tessera-audit-v1", 16);
    doc_field(md, prev, 32);
    doc_number(md, r->id);
    doc_number(md, r->time);
    doc_field(md, r->actor, strlen(r->actor));
    doc_field(md, r->action, strlen(r->action));
    doc_field(md, r->object, strlen(r->object));
    doc_field(md, r->details, strlen(r->details));
    assert_true(EVP_DigestFinal_ex(md, out, &len) && len == 32);
    EVP_MD_CTX_free(md);
    for (int i = 0; i < 32; i++) {
        snprintf(hex + 2 * i, 3, "%02x", out[i]);
    }
}

static void unhex(const char *hex, uint8_t out[32])
{
    for (int k = 0; k < 32; k++) {
        out[k] = (uint8_t)(OPENSSL_hexchar2int((unsigned char)hex[2 * k]) << 4 |
                           OPENSSL_hexchar2int((unsigned char)hex[2 * k + 1]));
    }
}

static void case_audit_encoding(store_fx *fx)
{
    ts_audit_row *rows = NULL;
    size_t count = 0;
    uint8_t prev[32] = {0};
    char hex[65];
    fill(fx, 3);
    OK(ts_store_audit_list(fx->s, 0, 0, &rows, &count));
    assert_int_equal(count, 3);
    for (size_t i = 0; i < count; i++) {
        doc_hash(prev, &rows[i], hex);
        assert_string_equal(hex, rows[i].hash);
        unhex(hex, prev);
    }
    ts_audit_rows_free(rows, count);
}

static void case_audit_rollback(store_fx *fx)
{
    ts_audit_row *rows = NULL;
    size_t count = 0;
    OK(ts_store_begin(fx->s));
    OK(ts_store_audit_append(fx->s, "op", "tenant.create", "t", NULL));
    ts_store_rollback(fx->s);
    expect_intact(fx, 0);
    fill(fx, 1);
    OK(ts_store_audit_list(fx->s, 0, 0, &rows, &count));
    assert_int_equal(count, 1);
    assert_int_equal(rows[0].id, 1); /* the rolled-back id was not used up */
    ts_audit_rows_free(rows, count);
    expect_intact(fx, 1);
}

/* --- Tampering ----------------------------------------------------------------------------- */

static void raw(store_fx *fx, const char *sql)
{
    assert_int_equal(store_fx_raw(fx, sql, NULL), 0);
}

static void case_tamper_edit(store_fx *fx)
{
    fill(fx, 12);
    expect_intact(fx, 12);
    raw(fx, "UPDATE audit_log SET actor = 'mallory' WHERE id = 7");
    expect_broken(fx, 7, "audit entry 7: hash mismatch (the entry was edited)");
}

static void case_tamper_edit_details(store_fx *fx)
{
    fill(fx, 4);
    raw(fx, "UPDATE audit_log SET details = '{\"n\":2}' WHERE id = 2");
    expect_broken(fx, 2, "hash mismatch");
}

static void case_tamper_delete(store_fx *fx)
{
    fill(fx, 12);
    raw(fx, "DELETE FROM audit_log WHERE id = 5");
    expect_broken(fx, 5, "audit entry 5 is missing (deleted)");
}

static void case_tamper_delete_last(store_fx *fx)
{
    fill(fx, 12);
    raw(fx, "DELETE FROM audit_log WHERE id >= 11");
    expect_broken(fx, 11, "audit entry 11 is missing (deleted)");
}

static void case_tamper_swap(store_fx *fx)
{
    fill(fx, 12);
    /* Trading ids trades the rows' places in the chain. */
    raw(fx, "UPDATE audit_log SET id = -9 WHERE id = 9");
    raw(fx, "UPDATE audit_log SET id = 9 WHERE id = 10");
    raw(fx, "UPDATE audit_log SET id = 10 WHERE id = -9");
    expect_broken(fx, 9, "audit entries 9 and 10 are out of order");
}

static void case_tamper_relink(store_fx *fx)
{
    fill(fx, 6);
    raw(fx, "UPDATE audit_log SET prev_hash = (SELECT hash FROM audit_log WHERE id = 1) "
            "WHERE id = 4");
    expect_broken(fx, 4, "audit entry 4 does not link to entry 3");
}

static void case_tamper_rehashed(store_fx *fx)
{
    ts_audit_row *rows = NULL;
    size_t count = 0;
    uint8_t prev[32];
    char hex[65];
    fill(fx, 3);
    /* The last entry rewritten with a correct new hash: only the chain head tells. */
    OK(ts_store_audit_list(fx->s, 0, 0, &rows, &count));
    assert_int_equal(count, 3);
    unhex(rows[1].hash, prev);
    snprintf(rows[2].actor, sizeof rows[2].actor, "mallory");
    doc_hash(prev, &rows[2], hex);
    ts_audit_rows_free(rows, count);
    assert_int_equal(store_fx_raw(fx,
                                  "UPDATE audit_log SET actor = 'mallory', hash = $1 "
                                  "WHERE id = 3",
                                  hex),
                     0);
    expect_broken(fx, 3, "audit entry 3 does not match the chain head");
}

static void case_tamper_forged(store_fx *fx)
{
    fill(fx, 3);
    /* An entry added at the end without moving the head (its hash does not matter). */
    raw(fx, "INSERT INTO audit_log (id, logged_at, actor, action, object, details, prev_hash, "
            "hash) SELECT 4, logged_at, actor, action, object, details, hash, prev_hash "
            "FROM audit_log WHERE id = 3");
    expect_broken(fx, 4, "audit entry 4 is not in the chain");
    /* And the store refuses to append after it rather than fork the chain. */
    OK(ts_store_begin(fx->s));
    ERR(TS_ERR_EXISTS, NULL, ts_store_audit_append(fx->s, "a", "b", "c", NULL));
    ts_store_rollback(fx->s);
}

static void case_tamper_head(store_fx *fx)
{
    fill(fx, 3);
    raw(fx, "DELETE FROM audit_head");
    expect_broken(fx, 0, "head is missing");
    OK(ts_store_begin(fx->s));
    ERR(TS_ERR_CORRUPT, "head is missing", ts_store_audit_append(fx->s, "a", "b", "c", NULL));
    ts_store_rollback(fx->s);
}

static void case_tamper_unreadable(store_fx *fx)
{
    char big[TS_TEXT_MAX + 10];
    fill(fx, 3);
    memset(big, 'M', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    assert_int_equal(store_fx_raw(fx, "UPDATE audit_log SET actor = $1 WHERE id = 2", big), 0);
    expect_broken(fx, 2, "audit entry 2 is unreadable");
}

/* --- Two processes ------------------------------------------------------------------------- */

enum { AUDIT_CHILDREN = 2, AUDIT_EACH = 200 };

static int audit_child(store_fx *fx, int who)
{
    ts_store *s = NULL;
    char actor[32], object[32];
    if (store_fx_open_again(fx, &s) != TS_OK) {
        fprintf(stderr, "audit child: %s\n", ts_error_message());
        return 1;
    }
    snprintf(actor, sizeof actor, "process %d", who);
    for (int i = 0; i < AUDIT_EACH; i++) {
        snprintf(object, sizeof object, "item %d", i);
        ts_err rv = ts_store_begin(s);
        if (rv == TS_OK) {
            rv = ts_store_audit_append(s, actor, "test.append", object, NULL);
        }
        if (rv == TS_OK) {
            rv = ts_store_commit(s);
        }
        if (rv != TS_OK) {
            fprintf(stderr, "audit child %d, entry %d: %s\n", who, i, ts_error_message());
            ts_store_rollback(s);
            ts_store_free(s);
            return 1;
        }
    }
    ts_store_free(s);
    return 0;
}

static void case_audit_concurrent(store_fx *fx)
{
    pid_t pids[AUDIT_CHILDREN];
    ts_audit_row *rows = NULL;
    size_t count = 0;
    for (int c = 0; c < AUDIT_CHILDREN; c++) {
        pids[c] = fork();
        assert_true(pids[c] >= 0);
        if (pids[c] == 0) {
            _exit(audit_child(fx, c));
        }
    }
    for (int c = 0; c < AUDIT_CHILDREN; c++) {
        int status = 0;
        assert_int_equal(waitpid(pids[c], &status, 0), pids[c]);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    expect_intact(fx, AUDIT_CHILDREN * AUDIT_EACH);
    /* Both wrote, and their entries interleave in one chain. */
    OK(ts_store_audit_list(fx->s, 0, 0, &rows, &count));
    assert_int_equal(count, AUDIT_CHILDREN * AUDIT_EACH);
    int per[AUDIT_CHILDREN] = {0};
    for (size_t i = 0; i < count; i++) {
        int who = rows[i].actor[strlen(rows[i].actor) - 1] - '0';
        assert_true(who >= 0 && who < AUDIT_CHILDREN);
        per[who]++;
    }
    ts_audit_rows_free(rows, count);
    assert_int_equal(per[0], AUDIT_EACH);
    assert_int_equal(per[1], AUDIT_EACH);
}

int main(void)
{
    static const store_case cases[] = {
        {"audit_basic", case_audit_basic},
        {"audit_encoding", case_audit_encoding},
        {"audit_rollback", case_audit_rollback},
        {"tamper_edit", case_tamper_edit},
        {"tamper_edit_details", case_tamper_edit_details},
        {"tamper_delete", case_tamper_delete},
        {"tamper_delete_last", case_tamper_delete_last},
        {"tamper_swap", case_tamper_swap},
        {"tamper_relink", case_tamper_relink},
        {"tamper_rehashed", case_tamper_rehashed},
        {"tamper_forged", case_tamper_forged},
        {"tamper_head", case_tamper_head},
        {"tamper_unreadable", case_tamper_unreadable},
        {"audit_concurrent", case_audit_concurrent},
    };
    return store_run_cases("store_audit", cases, sizeof cases / sizeof cases[0]);
}
