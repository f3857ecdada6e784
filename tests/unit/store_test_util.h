/*
 * The store tests' runner and checks (test_store.c, test_store_audit.c): one table of cases,
 * each run on SQLite and on PostgreSQL as cmocka tests named backend/case. The PostgreSQL half
 * is skipped, with a message saying why, only when the server binaries are not installed; a
 * server that fails to start fails those tests. TS_TEST_FILTER picks cases by cmocka pattern,
 * e.g. TS_TEST_FILTER='postgresql/audit_*'.
 */
#ifndef TS_TEST_STORE_TEST_UTIL_H
#define TS_TEST_STORE_TEST_UTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "store/store_internal.h"
#include "store_fixture.h"
#include "tessera/store.h"

/* expr must return TS_OK. */
#define OK(expr)                                                                                   \
    do {                                                                                           \
        ts_err ok_rv_ = (expr);                                                                    \
        if (ok_rv_ != TS_OK) {                                                                     \
            fail_msg("%s: %s: %s", #expr, ts_err_name(ok_rv_), ts_error_message());                \
        }                                                                                          \
    } while (0)

/* expr must fail with want, and the message must contain substr (when not NULL). */
#define ERR(want, substr, expr)                                                                    \
    do {                                                                                           \
        ts_err err_rv_ = (expr);                                                                   \
        if (err_rv_ != (want)) {                                                                   \
            fail_msg("%s: got %s (%s), want %s", #expr, ts_err_name(err_rv_),                      \
                     err_rv_ != TS_OK ? ts_error_message() : "", ts_err_name(want));               \
        }                                                                                          \
        const char *err_sub_ = (substr);                                                           \
        if (err_sub_ != NULL && strstr(ts_error_message(), err_sub_) == NULL) {                    \
            fail_msg("%s: message \"%s\" does not say \"%s\"", #expr, ts_error_message(),          \
                     err_sub_);                                                                    \
        }                                                                                          \
    } while (0)

typedef void (*store_case_fn)(store_fx *fx);

typedef struct store_case {
    const char *name;
    store_case_fn fn;
} store_case;

typedef struct store_case_state {
    store_backend backend;
    const store_case *c;
    store_fx fx;
} store_case_state;

static int store_pg_state = TS_PG_FAILED;
static char store_pg_why[512];

static int store_setup_one(void **state)
{
    store_case_state *cs = *state;
    memset(&cs->fx, 0, sizeof cs->fx);
    cs->fx.backend = cs->backend;
    if (cs->backend == STORE_PG && store_pg_state != TS_PG_STARTED) {
        return 0; /* the test itself skips or fails, with the reason */
    }
    return store_fx_setup(&cs->fx, cs->backend);
}

static int store_teardown_one(void **state)
{
    store_case_state *cs = *state;
    store_fx_teardown(&cs->fx);
    return 0;
}

static void store_run_one(void **state)
{
    store_case_state *cs = *state;
    if (cs->backend == STORE_PG && store_pg_state == TS_PG_ABSENT) {
        print_message("skipped: %s\n", store_pg_why);
        skip();
    }
    if (cs->backend == STORE_PG && store_pg_state != TS_PG_STARTED) {
        fail_msg("PostgreSQL did not start: %s", store_pg_why);
    }
    cs->c->fn(&cs->fx);
}

static int store_group_setup(void **state)
{
    (void)state;
    store_pg_state = store_fx_pg_start(store_pg_why, sizeof store_pg_why);
    if (store_pg_state == TS_PG_ABSENT) {
        fprintf(stderr, "store tests: the PostgreSQL half is SKIPPED: %s\n", store_pg_why);
    } else if (store_pg_state == TS_PG_FAILED) {
        fprintf(stderr, "store tests: PostgreSQL did not start: %s\n", store_pg_why);
    }
    return 0;
}

static int store_group_teardown(void **state)
{
    (void)state;
    store_fx_pg_stop();
    return 0;
}

/* Runs every case on both backends; returns the number of failures. */
static int store_run_cases(const char *group, const store_case *cases, size_t count)
{
    static const char *const backends[] = {"sqlite", "postgresql"};
    size_t n = 2 * count;
    struct CMUnitTest *tests = calloc(n, sizeof *tests);
    store_case_state *states = calloc(n, sizeof *states);
    char(*names)[96] = calloc(n, sizeof *names);
    int failed = 1;
    if (tests != NULL && states != NULL && names != NULL) {
        for (size_t k = 0; k < n; k++) {
            states[k].backend = k < count ? STORE_SQLITE : STORE_PG;
            states[k].c = &cases[k % count];
            snprintf(names[k], sizeof names[k], "%s/%s", backends[k / count],
                     cases[k % count].name);
            tests[k].name = names[k];
            tests[k].test_func = store_run_one;
            tests[k].setup_func = store_setup_one;
            tests[k].teardown_func = store_teardown_one;
            tests[k].initial_state = &states[k];
        }
        const char *filter = getenv("TS_TEST_FILTER");
        if (filter != NULL && filter[0] != '\0') {
            cmocka_set_test_filter(filter);
        }
        failed = _cmocka_run_group_tests(group, tests, n, store_group_setup, store_group_teardown);
    }
    free(tests);
    free(states);
    free(names);
    return failed;
}

#endif
