/* Conformance cases: data objects and listings. */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "ks_cases.h"
#include "ks_check.h"

/* A recognisable pattern of len bytes, different for each seed. */
static uint8_t *pattern(size_t len, unsigned seed)
{
    uint8_t *p = malloc(len + 1);
    if (p == NULL) {
        ks_check_fail(__FILE__, __LINE__, "out of memory");
    }
    for (size_t i = 0; i < len; i++) {
        p[i] = (uint8_t)(i * 7 + seed * 13 + (i >> 8));
    }
    return p;
}

/* Reads label and checks it holds exactly want (want_len bytes). */
static void expect_object_at(const char *file, int line, ts_keystore *ks, const char *label,
                             const uint8_t *want, size_t want_len)
{
    uint8_t *data = NULL;
    size_t len = 0;
    ts_err rv = ts_keystore_object_get(ks, label, &data, &len);
    if (rv != TS_OK) {
        ks_check_fail(file, line, "reading '%s' failed: %s (%s)", label, ts_err_name(rv),
                      ts_error_message());
    }
    int same = len == want_len && (len == 0 || memcmp(data, want, len) == 0);
    OPENSSL_clear_free(data, len);
    if (!same) {
        ks_check_fail(file, line, "'%s' reads back %zu bytes, not the %zu written", label, len,
                      want_len);
    }
}
#define EXPECT_OBJECT(ks, label, want, len)                                                        \
    expect_object_at(__FILE__, __LINE__, ks, label, want, len)

/* Checks the listing's entry for a data object. */
static void expect_listed_at(const char *file, int line, ts_keystore *ks, const char *label,
                             size_t size, unsigned flags)
{
    ks_snapshot snap;
    ks_snapshot_at(file, line, ks, &snap);
    const ts_keystore_entry *e = ks_snapshot_find(&snap, label);
    int ok = e != NULL && e->kind == TS_KIND_DATA && e->size == size && e->flags == flags;
    ts_keystore_entry copy = {0};
    if (e != NULL) {
        copy = *e;
    }
    ks_snapshot_free(&snap);
    if (!ok) {
        ks_check_fail(file, line,
                      "'%s' is listed %s (kind %d, size %zu, flags %u), want data of %zu bytes, "
                      "flags %u",
                      label, e != NULL ? "as" : "not at all", (int)copy.kind, copy.size, copy.flags,
                      size, flags);
    }
}
#define EXPECT_LISTED(ks, label, size, flags)                                                      \
    expect_listed_at(__FILE__, __LINE__, ks, label, size, flags)

void ks_case_object_roundtrip(ks_fixture *fx)
{
    static const struct {
        const char *label;
        size_t len;
    } sizes[] = {{"empty", 0}, {"one", 1}, {"max", TS_OBJECT_MAX}};

    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        uint8_t *data = pattern(sizes[i].len, (unsigned)i);
        KS_OK(ts_keystore_object_put(fx->ks, sizes[i].label, data, sizes[i].len, 0));
        EXPECT_OBJECT(fx->ks, sizes[i].label, data, sizes[i].len);
        EXPECT_LISTED(fx->ks, sizes[i].label, sizes[i].len, 0);
        free(data);
    }
    /* No data at all is an empty object too. */
    KS_OK(ts_keystore_object_put(fx->ks, "null", NULL, 0, 0));
    EXPECT_OBJECT(fx->ks, "null", NULL, 0);
}

void ks_case_object_too_big(ks_fixture *fx)
{
    uint8_t *data = pattern(TS_OBJECT_MAX + 1, 1);
    KS_FAILS_UNCHANGED(fx->ks, ts_keystore_object_put(fx->ks, "big", data, TS_OBJECT_MAX + 1, 0),
                       TS_ERR_INVALID, "big");
    KS_FAILS_UNCHANGED(fx->ks,
                       ts_keystore_object_replace(fx->ks, "big", data, TS_OBJECT_MAX + 1, 0),
                       TS_ERR_INVALID, "big");
    /* An existing object is not touched by a refused replacement. */
    KS_OK(ts_keystore_object_put(fx->ks, "big", data, 16, 0));
    KS_FAILS_UNCHANGED(fx->ks,
                       ts_keystore_object_replace(fx->ks, "big", data, TS_OBJECT_MAX + 1, 0),
                       TS_ERR_INVALID, "big");
    EXPECT_OBJECT(fx->ks, "big", data, 16);
    free(data);
}

void ks_case_object_exists(ks_fixture *fx)
{
    static const uint8_t one[] = "first", two[] = "second";

    KS_OK(ts_keystore_object_put(fx->ks, "cfg", one, sizeof one, 0));
    KS_FAILS_UNCHANGED(fx->ks, ts_keystore_object_put(fx->ks, "cfg", two, sizeof two, 0),
                       TS_ERR_EXISTS, "cfg");
    EXPECT_OBJECT(fx->ks, "cfg", one, sizeof one);
    /* Keys and data objects share one label space. */
    KS_OK(ts_keystore_generate(fx->ks, "key", TS_CURVE_P256));
    KS_FAILS_UNCHANGED(fx->ks, ts_keystore_object_put(fx->ks, "key", two, sizeof two, 0),
                       TS_ERR_EXISTS, "key");
}

void ks_case_object_replace(ks_fixture *fx)
{
    static const uint8_t one[] = "first", two[] = "a longer second value";
    EVP_PKEY *before = NULL, *after = NULL;

    KS_OK(ts_keystore_object_put(fx->ks, "cfg", one, sizeof one, 0));
    KS_OK(ts_keystore_object_replace(fx->ks, "cfg", two, sizeof two, 0));
    EXPECT_OBJECT(fx->ks, "cfg", two, sizeof two);
    EXPECT_LISTED(fx->ks, "cfg", sizeof two, 0);
    /* Replacing can change the flags and shrink the object to nothing. */
    KS_OK(ts_keystore_object_replace(fx->ks, "cfg", one, 0, TS_DATA_SECRET));
    EXPECT_OBJECT(fx->ks, "cfg", one, 0);
    EXPECT_LISTED(fx->ks, "cfg", 0, TS_DATA_SECRET);
    /* A label not yet used is simply stored. */
    KS_OK(ts_keystore_object_replace(fx->ks, "new", one, sizeof one, 0));
    EXPECT_OBJECT(fx->ks, "new", one, sizeof one);

    /*
     * keystore.h only promises to replace a data object; which code refuses to overwrite a key
     * (TS_ERR_EXISTS or TS_ERR_WRONG_TYPE) is not said, so either is accepted. The key must
     * survive it.
     */
    KS_OK(ts_keystore_generate(fx->ks, "key", TS_CURVE_P256));
    KS_OK(ts_keystore_public_key(fx->ks, "key", &before));
    ks_snapshot snap;
    KS_SNAPSHOT(fx->ks, &snap);
    ts_err rv = ts_keystore_object_replace(fx->ks, "key", two, sizeof two, 0);
    KS_CHECK_MSG(rv == TS_ERR_EXISTS || rv == TS_ERR_WRONG_TYPE,
                 "replacing a key with data gave %s (%s)", ts_err_name(rv), ts_error_message());
    KS_UNCHANGED(fx->ks, &snap);
    KS_OK(ts_keystore_public_key(fx->ks, "key", &after));
    int same = EVP_PKEY_eq(before, after) == 1;
    EVP_PKEY_free(before);
    EVP_PKEY_free(after);
    KS_CHECK_MSG(same, "a refused replacement changed the key");
}

void ks_case_object_secret_flag(ks_fixture *fx)
{
    static const uint8_t secret[] = "wifi-psk: correct horse", plain[] = "hostname";

    KS_OK(ts_keystore_object_put(fx->ks, "psk", secret, sizeof secret, TS_DATA_SECRET));
    KS_OK(ts_keystore_object_put(fx->ks, "host", plain, sizeof plain, 0));
    EXPECT_LISTED(fx->ks, "psk", sizeof secret, TS_DATA_SECRET);
    EXPECT_LISTED(fx->ks, "host", sizeof plain, 0);
    EXPECT_OBJECT(fx->ks, "psk", secret, sizeof secret);
    KS_FAILS_UNCHANGED(fx->ks, ts_keystore_object_put(fx->ks, "odd", plain, sizeof plain, 1U << 7),
                       TS_ERR_INVALID, "odd");
}

void ks_case_object_delete(ks_fixture *fx)
{
    static const uint8_t data[] = "to be deleted";
    uint8_t *got = NULL;
    size_t len = 0;
    EVP_PKEY *pub = NULL;
    ks_snapshot snap;

    KS_OK(ts_keystore_object_put(fx->ks, "gone", data, sizeof data, TS_DATA_SECRET));
    KS_OK(ts_keystore_generate(fx->ks, "old-key", TS_CURVE_P384));
    KS_OK(ts_keystore_object_put(fx->ks, "kept", data, sizeof data, 0));
    KS_OK(ts_keystore_delete(fx->ks, "gone"));
    KS_FAILS(ts_keystore_object_get(fx->ks, "gone", &got, &len), TS_ERR_NOT_FOUND, "gone");
    KS_CHECK(got == NULL);
    KS_FAILS_UNCHANGED(fx->ks, ts_keystore_delete(fx->ks, "gone"), TS_ERR_NOT_FOUND, "gone");

    KS_OK(ts_keystore_delete(fx->ks, "old-key"));
    KS_FAILS(ts_keystore_public_key(fx->ks, "old-key", &pub), TS_ERR_NOT_FOUND, "old-key");
    KS_CHECK(pub == NULL);

    /* Only the object that was not deleted is left, also after reopening. */
    KS_OK(ks_fixture_reopen(fx));
    KS_SNAPSHOT(fx->ks, &snap);
    int only_kept = snap.count == 1 && strcmp(snap.entries[0].label, "kept") == 0;
    ks_snapshot_free(&snap);
    KS_CHECK_MSG(only_kept, "deleted objects are still listed");
    KS_FAILS(ts_keystore_object_get(fx->ks, "gone", &got, &len), TS_ERR_NOT_FOUND, "gone");
    /* The label is free again. */
    KS_OK(ts_keystore_generate(fx->ks, "gone", TS_CURVE_P256));
}

void ks_case_object_wrong_type(ks_fixture *fx)
{
    static const uint8_t data[] = "data";
    uint8_t *got = NULL;
    size_t len = 0;
    uint64_t value = 0;

    KS_OK(ts_keystore_generate(fx->ks, "key", TS_CURVE_P256));
    KS_OK(ts_keystore_counter_increment(fx->ks, "ctr", NULL));
    KS_OK(ts_keystore_object_put(fx->ks, "obj", data, sizeof data, 0));
    /* error.h: TS_ERR_WRONG_TYPE is "the label names an object of another kind". */
    KS_FAILS(ts_keystore_object_get(fx->ks, "key", &got, &len), TS_ERR_WRONG_TYPE, "key");
    KS_FAILS(ts_keystore_object_get(fx->ks, "ctr", &got, &len), TS_ERR_WRONG_TYPE, "ctr");
    KS_FAILS(ts_keystore_counter_get(fx->ks, "obj", &value), TS_ERR_WRONG_TYPE, "obj");
    KS_FAILS(ts_keystore_counter_get(fx->ks, "key", &value), TS_ERR_WRONG_TYPE, "key");
    KS_FAILS_UNCHANGED(fx->ks, ts_keystore_counter_increment(fx->ks, "obj", &value),
                       TS_ERR_WRONG_TYPE, "obj");
    KS_FAILS_UNCHANGED(fx->ks, ts_keystore_counter_raise(fx->ks, "key", 5), TS_ERR_WRONG_TYPE,
                       "key");
    EXPECT_OBJECT(fx->ks, "obj", data, sizeof data);
}

void ks_case_object_persists(ks_fixture *fx)
{
    uint8_t *big = pattern(TS_OBJECT_MAX, 3);
    static const uint8_t secret[] = "secret value";

    KS_OK(ts_keystore_object_put(fx->ks, "big", big, TS_OBJECT_MAX, 0));
    KS_OK(ts_keystore_object_put(fx->ks, "secret", secret, sizeof secret, TS_DATA_SECRET));
    KS_OK(ts_keystore_object_put(fx->ks, "empty", secret, 0, 0));
    KS_OK(ks_fixture_reopen(fx));
    EXPECT_OBJECT(fx->ks, "big", big, TS_OBJECT_MAX);
    EXPECT_OBJECT(fx->ks, "secret", secret, sizeof secret);
    EXPECT_OBJECT(fx->ks, "empty", secret, 0);
    EXPECT_LISTED(fx->ks, "secret", sizeof secret, TS_DATA_SECRET);
    EXPECT_LISTED(fx->ks, "big", TS_OBJECT_MAX, 0);
    free(big);
}

void ks_case_list_sorted(ks_fixture *fx)
{
    static const uint8_t ten[10] = "0123456789";
    /* Made in one order, listed in strcmp() order of the labels. */
    static const ts_keystore_entry want[] = {
        {.label = "Beta", .kind = TS_KIND_KEY, .curve = TS_CURVE_P256},
        {.label = "alpha", .kind = TS_KIND_DATA, .flags = TS_DATA_SECRET, .size = 10},
        {.label = "alpha.2", .kind = TS_KIND_DATA, .size = 0},
        {.label = "gamma-1", .kind = TS_KIND_COUNTER, .value = 1},
        {.label = "mid", .kind = TS_KIND_COUNTER, .value = 7},
        {.label = "zeta", .kind = TS_KIND_KEY, .curve = TS_CURVE_P384},
    };
    ks_snapshot snap, expect = {(ts_keystore_entry *)want, sizeof want / sizeof want[0]};
    char why[512];

    KS_SNAPSHOT(fx->ks, &snap);
    size_t empty_count = snap.count;
    ks_snapshot_free(&snap);
    KS_CHECK_U64(empty_count, 0);

    KS_OK(ts_keystore_generate(fx->ks, "zeta", TS_CURVE_P384));
    KS_OK(ts_keystore_object_put(fx->ks, "alpha", ten, sizeof ten, TS_DATA_SECRET));
    KS_OK(ts_keystore_counter_raise(fx->ks, "mid", 7));
    KS_OK(ts_keystore_generate(fx->ks, "Beta", TS_CURVE_P256));
    KS_OK(ts_keystore_object_put(fx->ks, "alpha.2", ten, 0, 0));
    KS_OK(ts_keystore_counter_increment(fx->ks, "gamma-1", NULL));

    KS_SNAPSHOT(fx->ks, &snap);
    int same = ks_snapshot_equal(&expect, &snap, why, sizeof why);
    ks_snapshot_free(&snap);
    KS_CHECK_MSG(same, "listing: %s", why);

    KS_OK(ks_fixture_reopen(fx));
    KS_SNAPSHOT(fx->ks, &snap);
    same = ks_snapshot_equal(&expect, &snap, why, sizeof why);
    ks_snapshot_free(&snap);
    KS_CHECK_MSG(same, "listing after reopen: %s", why);
}
