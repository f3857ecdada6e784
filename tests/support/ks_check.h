/*
 * Checks for the key-store conformance cases. A failed check prints where and why and ends the
 * current test: the runner (tests/unit/test_keystore.c) defines ks_check_fail(), so the cases
 * here need no test framework of their own.
 */
#ifndef TS_KS_CHECK_H
#define TS_KS_CHECK_H

#include <stdint.h>

#include "ks_fixture.h"
#include "tessera/keystore.h"

/* Reports a failed check and ends the current test; never returns. */
void ks_check_fail(const char *file, int line, const char *fmt, ...)
    __attribute__((noreturn, format(printf, 3, 4)));

/*
 * got must be want. A failure must also leave a message in ts_error_message() that is not empty
 * and, when substr is not NULL, contains substr (ignoring case).
 */
void ks_expect_at(const char *file, int line, const char *expr, ts_err got, ts_err want,
                  const char *substr);

/* The listing of ks now must equal before; frees before. */
void ks_unchanged_at(const char *file, int line, ts_keystore *ks, ks_snapshot *before);

/* A listing of ks, or the test fails. */
void ks_snapshot_at(const char *file, int line, ts_keystore *ks, ks_snapshot *snap);

#define KS_CHECK(cond)                                                                             \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            ks_check_fail(__FILE__, __LINE__, "check failed: %s", #cond);                          \
        }                                                                                          \
    } while (0)

#define KS_CHECK_MSG(cond, ...)                                                                    \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            ks_check_fail(__FILE__, __LINE__, __VA_ARGS__);                                        \
        }                                                                                          \
    } while (0)

#define KS_CHECK_U64(got, want)                                                                    \
    do {                                                                                           \
        unsigned long long got_ = (got), want_ = (want);                                           \
        if (got_ != want_) {                                                                       \
            ks_check_fail(__FILE__, __LINE__, "%s is %llu, want %llu", #got, got_, want_);         \
        }                                                                                          \
    } while (0)

#define KS_OK(call) ks_expect_at(__FILE__, __LINE__, #call, (call), TS_OK, NULL)
#define KS_FAILS(call, want, substr)                                                               \
    ks_expect_at(__FILE__, __LINE__, #call, (call), (want), (substr))
#define KS_SNAPSHOT(ks, snap)    ks_snapshot_at(__FILE__, __LINE__, (ks), (snap))
#define KS_UNCHANGED(ks, before) ks_unchanged_at(__FILE__, __LINE__, (ks), (before))

/* A call that must fail with want (message containing substr) and leave the store unchanged. */
#define KS_FAILS_UNCHANGED(ks, call, want, substr)                                                 \
    do {                                                                                           \
        ks_snapshot before_;                                                                       \
        KS_SNAPSHOT((ks), &before_);                                                               \
        KS_FAILS(call, want, substr);                                                              \
        KS_UNCHANGED((ks), &before_);                                                              \
    } while (0)

/* --- shared steps ----------------------------------------------------------------------------- */

/* Signs a digest of digest_len bytes (filled from seed) with label and checks it with OpenSSL. */
void ks_sign_and_verify_at(const char *file, int line, ts_keystore *ks, const char *label,
                           EVP_PKEY *pub, size_t digest_len);
#define KS_SIGNS(ks, label, pub, digest_len)                                                       \
    ks_sign_and_verify_at(__FILE__, __LINE__, (ks), (label), (pub), (digest_len))

#endif
