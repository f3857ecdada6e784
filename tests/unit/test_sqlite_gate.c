/*
 * The SQLite writer gate (src/store/sqlite_gate.c): one gate per database file, a bounded wait,
 * release from any thread, and writers on several threads of one process losing nothing.
 */
#include <limits.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "store/sqlite_gate_internal.h"
#include "tessera/store.h"
#include "test_support.h"

static char tmp[PATH_MAX / 2];

static int setup(void **state)
{
    (void)state;
    return ts_test_tmpdir(tmp, sizeof tmp);
}

static int teardown(void **state)
{
    (void)state;
    ts_test_rmtree(tmp);
    return 0;
}

static void touch(const char *path)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fclose(f);
}

/* Every connection to one file shares its gate, whatever name reaches the file. */
static void test_one_gate_per_file(void **state)
{
    char a[PATH_MAX], b[PATH_MAX], link[PATH_MAX];
    sqlite_gate *g1 = NULL, *g2 = NULL, *g3 = NULL;

    (void)state;
    snprintf(a, sizeof a, "%s/a.db", tmp);
    snprintf(b, sizeof b, "%s/b.db", tmp);
    snprintf(link, sizeof link, "%s/a-link.db", tmp);
    touch(a);
    touch(b);
    assert_int_equal(symlink(a, link), 0);
    assert_int_equal(sqlite_gate_join(a, &g1), TS_OK);
    assert_int_equal(sqlite_gate_join(link, &g2), TS_OK);
    assert_int_equal(sqlite_gate_join(b, &g3), TS_OK);
    assert_ptr_equal(g1, g2);
    assert_ptr_not_equal(g1, g3);
    sqlite_gate_leave(g1);
    sqlite_gate_leave(g2);
    sqlite_gate_leave(g3);

    snprintf(b, sizeof b, "%s/missing.db", tmp);
    assert_int_equal(sqlite_gate_join(b, &g1), TS_ERR_IO);
    assert_null(g1);
}

/* A writer waits for the gate only as long as it is told, then gets a busy error. */
static void test_bounded_wait(void **state)
{
    char a[PATH_MAX];
    sqlite_gate *g = NULL;

    (void)state;
    snprintf(a, sizeof a, "%s/wait.db", tmp);
    touch(a);
    assert_int_equal(sqlite_gate_join(a, &g), TS_OK);
    assert_int_equal(sqlite_gate_enter(g, 1000), TS_OK);
    assert_int_equal(sqlite_gate_enter(g, 20), TS_ERR_CONFLICT);
    assert_non_null(strstr(ts_error_message(), "busy"));
    sqlite_gate_exit(g);
    assert_int_equal(sqlite_gate_enter(g, 20), TS_OK);
    sqlite_gate_exit(g);
    sqlite_gate_leave(g);
}

static void *exit_gate(void *arg)
{
    sqlite_gate_exit(arg);
    return NULL;
}

/* A transaction may end on another thread than the one that began it. */
static void test_release_from_another_thread(void **state)
{
    char a[PATH_MAX];
    sqlite_gate *g = NULL;
    pthread_t t;

    (void)state;
    snprintf(a, sizeof a, "%s/thread.db", tmp);
    touch(a);
    assert_int_equal(sqlite_gate_join(a, &g), TS_OK);
    assert_int_equal(sqlite_gate_enter(g, 1000), TS_OK);
    assert_int_equal(pthread_create(&t, NULL, exit_gate, g), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(sqlite_gate_enter(g, 1000), TS_OK);
    sqlite_gate_exit(g);
    sqlite_gate_leave(g);
}

enum { WRITERS = 4, WRITES = 40 };

typedef struct writer {
    const char *url;
    int index;
    int failures;
} writer;

static void *write_entries(void *arg)
{
    writer *w = arg;
    ts_store *s = NULL;

    if (ts_store_open(w->url, &s) != TS_OK) {
        w->failures = WRITES;
        return NULL;
    }
    for (int i = 0; i < WRITES; i++) {
        char object[32];
        snprintf(object, sizeof object, "w%d-%d", w->index, i);
        ts_err rv = ts_store_begin(s);
        if (rv == TS_OK) {
            rv = ts_store_audit_append(s, "test", "gate.write", object, NULL);
        }
        rv = rv == TS_OK ? ts_store_commit(s) : rv;
        if (rv != TS_OK) {
            ts_store_rollback(s);
            w->failures++;
        }
        /* After each write, a transaction that is rolled back: that must free the gate too, or
         * the next writer waits out the timeout and counts a failure. */
        if (ts_store_begin(s) == TS_OK) {
            ts_store_rollback(s);
        } else {
            w->failures++;
        }
    }
    ts_store_free(s);
    return NULL;
}

/* Writers on several threads, each with its own connection: every entry is kept, in one valid
 * audit chain. */
static void test_writers_on_threads(void **state)
{
    char url[PATH_MAX];
    pthread_t threads[WRITERS];
    writer writers[WRITERS];
    ts_store *s = NULL;
    int64_t entries = 0, bad = -1;

    (void)state;
    snprintf(url, sizeof url, "sqlite:%s/writers.db", tmp);
    assert_int_equal(ts_store_open(url, &s), TS_OK);
    for (int i = 0; i < WRITERS; i++) {
        writers[i] = (writer){.url = url, .index = i};
        assert_int_equal(pthread_create(&threads[i], NULL, write_entries, &writers[i]), 0);
    }
    for (int i = 0; i < WRITERS; i++) {
        assert_int_equal(pthread_join(threads[i], NULL), 0);
        assert_int_equal(writers[i].failures, 0);
    }
    assert_int_equal(ts_store_audit_verify(s, &entries, &bad), TS_OK);
    assert_int_equal(entries, WRITERS * WRITES);
    assert_int_equal(bad, 0);
    ts_store_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_gate_per_file),
        cmocka_unit_test(test_bounded_wait),
        cmocka_unit_test(test_release_from_another_thread),
        cmocka_unit_test(test_writers_on_threads),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
