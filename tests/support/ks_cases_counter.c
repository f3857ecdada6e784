/* Conformance cases: monotonic counters. */
#include <stdio.h>
#include <string.h>

#include "ks_cases.h"
#include "ks_check.h"

static void expect_counter_at(const char *file, int line, ts_keystore *ks, const char *label,
                              uint64_t want)
{
    uint64_t value = 0xdeadbeef;
    ts_err rv = ts_keystore_counter_get(ks, label, &value);
    if (rv != TS_OK) {
        ks_check_fail(file, line, "reading counter '%s' failed: %s (%s)", label, ts_err_name(rv),
                      ts_error_message());
    }
    if (value != want) {
        ks_check_fail(file, line, "counter '%s' is %llu, want %llu", label,
                      (unsigned long long)value, (unsigned long long)want);
    }
}
#define EXPECT_COUNTER(ks, label, want) expect_counter_at(__FILE__, __LINE__, ks, label, want)

void ks_case_counter_absent(ks_fixture *fx)
{
    ks_snapshot before;
    KS_SNAPSHOT(fx->ks, &before);
    EXPECT_COUNTER(fx->ks, "never-written", 0);
    /* Reading is not writing: the counter does not appear. */
    KS_UNCHANGED(fx->ks, &before);
}

void ks_case_counter_increment(ks_fixture *fx)
{
    ks_snapshot snap;
    for (uint64_t want = 1; want <= 3; want++) {
        uint64_t value = 0;
        KS_OK(ts_keystore_counter_increment(fx->ks, "boots", &value));
        KS_CHECK_U64(value, want);
    }
    EXPECT_COUNTER(fx->ks, "boots", 3);
    KS_SNAPSHOT(fx->ks, &snap);
    const ts_keystore_entry *e = ks_snapshot_find(&snap, "boots");
    int listed = e != NULL && e->kind == TS_KIND_COUNTER && e->value == 3;
    ks_snapshot_free(&snap);
    KS_CHECK_MSG(listed, "counter 'boots' is not listed with value 3");
}

void ks_case_counter_rollback(ks_fixture *fx)
{
    uint64_t value = 0;

    KS_OK(ts_keystore_counter_raise(fx->ks, "fw", 10));
    EXPECT_COUNTER(fx->ks, "fw", 10);
    KS_FAILS_UNCHANGED(fx->ks, ts_keystore_counter_raise(fx->ks, "fw", 5), TS_ERR_ROLLBACK, "fw");
    EXPECT_COUNTER(fx->ks, "fw", 10);
    /* Raising to the value it has is no rollback. */
    KS_OK(ts_keystore_counter_raise(fx->ks, "fw", 10));
    EXPECT_COUNTER(fx->ks, "fw", 10);
    KS_OK(ts_keystore_counter_raise(fx->ks, "fw", 11));
    KS_OK(ts_keystore_counter_increment(fx->ks, "fw", &value));
    KS_CHECK_U64(value, 12);
    KS_FAILS_UNCHANGED(fx->ks, ts_keystore_counter_raise(fx->ks, "fw", 0), TS_ERR_ROLLBACK, "fw");
    EXPECT_COUNTER(fx->ks, "fw", 12);
}

void ks_case_counter_no_delete(ks_fixture *fx)
{
    KS_OK(ts_keystore_counter_increment(fx->ks, "anti-rollback", NULL));
    KS_OK(ts_keystore_counter_increment(fx->ks, "anti-rollback", NULL));
    KS_FAILS_UNCHANGED(fx->ks, ts_keystore_delete(fx->ks, "anti-rollback"), TS_ERR_WRONG_TYPE,
                       "anti-rollback");
    EXPECT_COUNTER(fx->ks, "anti-rollback", 2);
    /* Nor can a data object take its label. */
    KS_FAILS_UNCHANGED(fx->ks,
                       ts_keystore_object_put(fx->ks, "anti-rollback", (const uint8_t *)"x", 1, 0),
                       TS_ERR_EXISTS, "anti-rollback");
}

void ks_case_counter_persists(ks_fixture *fx)
{
    const uint64_t big = (1ULL << 40) + 5;
    KS_OK(ts_keystore_counter_increment(fx->ks, "boots", NULL));
    KS_OK(ts_keystore_counter_increment(fx->ks, "boots", NULL));
    KS_OK(ts_keystore_counter_raise(fx->ks, "fw", big));
    KS_OK(ks_fixture_reopen(fx));
    EXPECT_COUNTER(fx->ks, "boots", 2);
    EXPECT_COUNTER(fx->ks, "fw", big);
    KS_FAILS_UNCHANGED(fx->ks, ts_keystore_counter_raise(fx->ks, "fw", big - 1), TS_ERR_ROLLBACK,
                       "fw");
}

/* --- two processes ---------------------------------------------------------------------------- */

enum { INCREMENTS = 1000 };

typedef struct counter_result {
    ts_err rv;         /* the first failure, or TS_OK */
    int opened;        /* the store opened */
    int done;          /* increments that succeeded */
    int out_of_order;  /* a returned value not above the one before */
    char message[256]; /* ts_error_message() of the failure */
} counter_result;

static void increment_in_child(void *arg, int index, void *result)
{
    const ks_fixture *fx = arg;
    counter_result *r = result;
    ts_keystore *ks = NULL;
    uint64_t last = 0;
    (void)index;

    /* Each process opens the store itself, as two programs on a device would. */
    r->rv = ts_keystore_open(fx->uri, &ks);
    r->opened = r->rv == TS_OK;
    for (int i = 0; r->rv == TS_OK && i < INCREMENTS; i++) {
        uint64_t value = 0;
        r->rv = ts_keystore_counter_increment(ks, "shared", &value);
        if (r->rv == TS_OK) {
            r->done++;
            r->out_of_order += value <= last;
            last = value;
        }
    }
    if (r->rv != TS_OK) {
        snprintf(r->message, sizeof r->message, "%s", ts_error_message());
    }
    ts_keystore_free(ks);
}

void ks_case_counter_two_processes(ks_fixture *fx)
{
    counter_result results[2];

    ks_fixture_close(fx);
    int ran = ks_in_children(2, increment_in_child, fx, results, sizeof results[0]);
    KS_CHECK_MSG(ran == 0, "a child process did not finish");
    for (int i = 0; i < 2; i++) {
        KS_CHECK_MSG(results[i].opened, "child %d: opening the store failed: %s (%s)", i,
                     ts_err_name(results[i].rv), results[i].message);
        KS_CHECK_MSG(results[i].rv == TS_OK, "child %d: increment %d failed: %s (%s)", i,
                     results[i].done + 1, ts_err_name(results[i].rv), results[i].message);
        KS_CHECK_U64(results[i].done, INCREMENTS);
        KS_CHECK_MSG(results[i].out_of_order == 0, "child %d saw its counter go backwards", i);
    }
    KS_OK(ks_fixture_reopen(fx));
    EXPECT_COUNTER(fx->ks, "shared", 2 * INCREMENTS);
}
