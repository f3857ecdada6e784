/*
 * The firmware tables on both backends (include/tessera/firmware.h): releases (every field kept,
 * the checks on insert, tenants kept apart, withdrawing, the releases that target a device by
 * itself, by a group it is in or as one of all, and whether a file is still used), what devices
 * reported of their firmware, and the offers of releases to devices with their answers.
 */
#include <inttypes.h>
#include <time.h>

#include <openssl/crypto.h>

#include "store_test_util.h"
#include "tessera/firmware.h"

#define T0 ((time_t)1700000000)

#define SHA_A "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define SHA_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define SHA_C "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"
#define SHA_D "dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd"

typedef struct world {
    int64_t a, b; /* two tenants */
} world;

static world make_world(store_fx *fx)
{
    ts_tenant_row a = {.name = "acme", .country = "DE"};
    ts_tenant_row b = {.name = "other"};
    OK(ts_store_begin(fx->s));
    OK(ts_store_tenant_insert(fx->s, &a));
    OK(ts_store_tenant_insert(fx->s, &b));
    OK(ts_store_commit(fx->s));
    assert_true(a.id > 0 && b.id > 0 && a.id != b.id);
    return (world){.a = a.id, .b = b.id};
}

/* Release ids from small numbers: 32 lower-case hex digits, ordered as the numbers are. */
static void rid(unsigned n, char out[TS_FW_RELEASE_ID_LEN + 1])
{
    snprintf(out, TS_FW_RELEASE_ID_LEN + 1, "%032x", n);
}

static ts_fw_release_row release(int64_t tenant, unsigned n, uint64_t version,
                                 ts_fw_target_kind kind, const char *target, const char *hw,
                                 time_t created)
{
    ts_fw_release_row r;
    memset(&r, 0, sizeof r);
    rid(n, r.id);
    r.tenant_id = tenant;
    r.version = version;
    r.seq = n;
    snprintf(r.hw, sizeof r.hw, "%s", hw);
    r.size = 4096;
    snprintf(r.sha256, sizeof r.sha256, "%s", SHA_B);
    snprintf(r.signer, sizeof r.signer, "CN=Acme Firmware Signer");
    r.target_kind = kind;
    snprintf(r.target, sizeof r.target, "%s", target);
    snprintf(r.created_by, sizeof r.created_by, "operator alice");
    r.created = created;
    return r;
}

static void insert_committed(store_fx *fx, const ts_fw_release_row *r)
{
    OK(ts_store_begin(fx->s));
    OK(ts_store_fw_release_insert(fx->s, r));
    OK(ts_store_commit(fx->s));
}

/* Every field as inserted; a new release is active and not withdrawn. */
static void assert_release(const ts_fw_release_row *want, const ts_fw_release_row *got)
{
    assert_string_equal(got->id, want->id);
    assert_int_equal(got->tenant_id, want->tenant_id);
    assert_true(got->version == want->version);
    assert_true(got->seq == want->seq);
    assert_true(got->min_version == want->min_version);
    assert_string_equal(got->hw, want->hw);
    assert_true(got->size == want->size);
    assert_string_equal(got->sha256, want->sha256);
    assert_int_equal(got->encrypted, want->encrypted ? 1 : 0);
    assert_string_equal(got->signer, want->signer);
    assert_int_equal(got->target_kind, want->target_kind);
    assert_string_equal(got->target, want->target);
    assert_string_equal(got->created_by, want->created_by);
    assert_int_equal(got->created, want->created);
    assert_int_equal(got->state, TS_FW_RELEASE_ACTIVE);
    assert_int_equal(got->withdrawn, 0);
}

/* --- Releases -------------------------------------------------------------------------------- */

static void case_release_fields(store_fx *fx)
{
    world w = make_world(fx);
    ts_fw_release_row dev =
        release(w.a, 1, (uint64_t)INT64_MAX, TS_FW_TARGET_DEVICE, "dev-1", "board-a rev.2", T0);
    ts_fw_release_row grp = release(w.a, 2, 0, TS_FW_TARGET_GROUP, "lab", "board-a", T0 + 1);
    ts_fw_release_row all = release(w.a, 3, 5000000000ULL, TS_FW_TARGET_ALL, "", "b", T0 + 2);
    ts_fw_release_row got;

    dev.seq = (uint64_t)INT64_MAX;
    dev.min_version = (uint64_t)INT64_MAX - 1;
    dev.size = (uint64_t)INT64_MAX;
    snprintf(dev.sha256, sizeof dev.sha256, "%s", SHA_A);
    dev.encrypted = 1;
    memset(dev.signer, 'S', TS_FW_SIGNER_MAX);
    memcpy(dev.signer, "CN=", 3);
    dev.signer[TS_FW_SIGNER_MAX] = '\0';
    memset(dev.created_by, 'u', TS_TEXT_MAX - 1);
    dev.created_by[TS_TEXT_MAX - 1] = '\0';
    grp.seq = 0;
    grp.size = 1;
    all.min_version = 4999999999ULL;
    all.encrypted = 7; /* any true value is kept as 1 */
    all.created_by[0] = '\0';
    all.signer[0] = '\0';

    /* The insert checks ids with ts_fw_release_id_check() (src/server/firmware.c), which
     * libts_store does not link by itself: calling it here also brings it into this program. */
    OK(ts_fw_release_id_check(dev.id));
    ERR(TS_ERR_INVALID, "lower-case hex",
        ts_fw_release_id_check("0000000000000000000000000000000A"));

    ERR(TS_ERR_STATE, "ts_store_begin", ts_store_fw_release_insert(fx->s, &dev));
    OK(ts_store_begin(fx->s));
    OK(ts_store_fw_release_insert(fx->s, &dev));
    OK(ts_store_fw_release_insert(fx->s, &grp));
    OK(ts_store_fw_release_insert(fx->s, &all));
    OK(ts_store_commit(fx->s));

    OK(ts_store_fw_release_get(fx->s, w.a, dev.id, &got));
    assert_release(&dev, &got);
    assert_int_equal(strlen(got.signer), TS_FW_SIGNER_MAX);
    assert_int_equal(strlen(got.created_by), TS_TEXT_MAX - 1);
    OK(ts_store_fw_release_get(fx->s, w.a, grp.id, &got));
    assert_release(&grp, &got);
    OK(ts_store_fw_release_get(fx->s, w.a, all.id, &got));
    assert_release(&all, &got);
    assert_int_equal(got.encrypted, 1);

    char unknown[TS_FW_RELEASE_ID_LEN + 1];
    rid(99, unknown);
    ERR(TS_ERR_NOT_FOUND, "no firmware release",
        ts_store_fw_release_get(fx->s, w.a, unknown, &got));

    /* Refused before the database sees them: the transaction stays usable on both backends. */
    OK(ts_store_begin(fx->s));
    ts_fw_release_row bad = release(w.a, 10, 1, TS_FW_TARGET_ALL, "", "board-a", T0);
    snprintf(bad.id, sizeof bad.id, "%s", "0000000000000000000000000000000A");
    ERR(TS_ERR_INVALID, NULL, ts_store_fw_release_insert(fx->s, &bad));
    snprintf(bad.id, sizeof bad.id, "%s", "000000000000000000000000000000a");
    ERR(TS_ERR_INVALID, NULL, ts_store_fw_release_insert(fx->s, &bad));
    snprintf(bad.id, sizeof bad.id, "%s", "00000000000000000000000000000g0a");
    ERR(TS_ERR_INVALID, NULL, ts_store_fw_release_insert(fx->s, &bad));
    bad = release(w.a, 10, (uint64_t)INT64_MAX + 1, TS_FW_TARGET_ALL, "", "board-a", T0);
    ERR(TS_ERR_INVALID, "2^63-1", ts_store_fw_release_insert(fx->s, &bad));
    bad = release(w.a, 10, 1, TS_FW_TARGET_ALL, "", "board-a", T0);
    bad.seq = UINT64_MAX;
    ERR(TS_ERR_INVALID, "2^63-1", ts_store_fw_release_insert(fx->s, &bad));
    bad = release(w.a, 10, 1, TS_FW_TARGET_ALL, "", "board-a", T0);
    bad.min_version = (uint64_t)INT64_MAX + 5;
    ERR(TS_ERR_INVALID, "2^63-1", ts_store_fw_release_insert(fx->s, &bad));
    bad = release(w.a, 10, 1, TS_FW_TARGET_ALL, "", "board-a", T0);
    bad.size = 0;
    ERR(TS_ERR_INVALID, NULL, ts_store_fw_release_insert(fx->s, &bad));
    bad.size = (uint64_t)INT64_MAX + 1;
    ERR(TS_ERR_INVALID, NULL, ts_store_fw_release_insert(fx->s, &bad));
    bad = release(w.a, 10, 1, TS_FW_TARGET_ALL, "dev-1", "board-a", T0);
    ERR(TS_ERR_INVALID, "target", ts_store_fw_release_insert(fx->s, &bad));
    bad = release(w.a, 10, 1, TS_FW_TARGET_DEVICE, "", "board-a", T0);
    ERR(TS_ERR_INVALID, "target", ts_store_fw_release_insert(fx->s, &bad));
    bad = release(w.a, 10, 1, TS_FW_TARGET_GROUP, "", "board-a", T0);
    ERR(TS_ERR_INVALID, "target", ts_store_fw_release_insert(fx->s, &bad));
    bad = release(w.a, 10, 1, (ts_fw_target_kind)0, "x", "board-a", T0);
    ERR(TS_ERR_INVALID, "target", ts_store_fw_release_insert(fx->s, &bad));
    bad = release(w.a, 10, 1, (ts_fw_target_kind)4, "x", "board-a", T0);
    ERR(TS_ERR_INVALID, "target", ts_store_fw_release_insert(fx->s, &bad));
    bad = release(w.a, 10, 1, TS_FW_TARGET_ALL, "", "", T0);
    ERR(TS_ERR_INVALID, "hardware id", ts_store_fw_release_insert(fx->s, &bad));
    bad = release(w.a, 10, 1, TS_FW_TARGET_ALL, "", "board-a", T0);
    bad.sha256[63] = '\0';
    ERR(TS_ERR_INVALID, "SHA-256", ts_store_fw_release_insert(fx->s, &bad));
    bad = release(0, 10, 1, TS_FW_TARGET_ALL, "", "board-a", T0);
    ERR(TS_ERR_INVALID, NULL, ts_store_fw_release_insert(fx->s, &bad));
    ERR(TS_ERR_INVALID, NULL, ts_store_fw_release_insert(fx->s, NULL));
    OK(ts_store_commit(fx->s));

    ts_fw_release_row *rows = NULL;
    size_t count = 0;
    OK(ts_store_fw_release_list(fx->s, w.a, &rows, &count));
    assert_int_equal(count, 3);
    OPENSSL_free(rows);
}

static void case_release_list_tenants(store_fx *fx)
{
    world w = make_world(fx);
    /* Inserted out of order: the list is newest first, then by id. */
    ts_fw_release_row r5 = release(w.a, 5, 1, TS_FW_TARGET_ALL, "", "board-a", T0 + 10);
    ts_fw_release_row r4 = release(w.a, 4, 2, TS_FW_TARGET_ALL, "", "board-a", T0 + 10);
    ts_fw_release_row r6 = release(w.a, 6, 3, TS_FW_TARGET_ALL, "", "board-a", T0 - 5);
    ts_fw_release_row r7 = release(w.a, 7, 4, TS_FW_TARGET_DEVICE, "dev-1", "board-a", T0);
    ts_fw_release_row rb = release(w.b, 8, 9, TS_FW_TARGET_ALL, "", "board-a", T0 + 99);
    ts_fw_release_row *rows = NULL, got;
    size_t count = 0;
    OK(ts_store_begin(fx->s));
    OK(ts_store_fw_release_insert(fx->s, &r5));
    OK(ts_store_fw_release_insert(fx->s, &r6));
    OK(ts_store_fw_release_insert(fx->s, &r4));
    OK(ts_store_fw_release_insert(fx->s, &r7));
    OK(ts_store_fw_release_insert(fx->s, &rb));
    OK(ts_store_commit(fx->s));

    OK(ts_store_fw_release_list(fx->s, w.a, &rows, &count));
    assert_int_equal(count, 4);
    assert_release(&r4, &rows[0]);
    assert_release(&r5, &rows[1]);
    assert_release(&r7, &rows[2]);
    assert_release(&r6, &rows[3]);
    OPENSSL_free(rows);
    OK(ts_store_fw_release_list(fx->s, w.b, &rows, &count));
    assert_int_equal(count, 1);
    assert_release(&rb, &rows[0]);
    OPENSSL_free(rows);
    OK(ts_store_fw_release_list(fx->s, w.b + w.a + 100, &rows, &count));
    assert_int_equal(count, 0);
    OPENSSL_free(rows);

    /* Tenant B does not see, withdraw or get offered tenant A's releases, nor A B's. */
    ERR(TS_ERR_NOT_FOUND, r4.id, ts_store_fw_release_get(fx->s, w.b, r4.id, &got));
    ERR(TS_ERR_NOT_FOUND, rb.id, ts_store_fw_release_get(fx->s, w.a, rb.id, &got));
    OK(ts_store_begin(fx->s));
    ERR(TS_ERR_NOT_FOUND, NULL, ts_store_fw_release_withdraw(fx->s, w.b, r4.id, T0 + 50));
    OK(ts_store_commit(fx->s));
    OK(ts_store_fw_release_get(fx->s, w.a, r4.id, &got));
    assert_release(&r4, &got);
    OK(ts_store_fw_release_for_device(fx->s, w.b, "dev-1", NULL, &rows, &count));
    assert_int_equal(count, 1);
    assert_string_equal(rows[0].id, rb.id);
    OPENSSL_free(rows);

    /* Release ids are unique across tenants: B cannot take A's. */
    ts_fw_release_row same = release(w.b, 4, 1, TS_FW_TARGET_ALL, "", "board-a", T0);
    OK(ts_store_begin(fx->s));
    ERR(TS_ERR_EXISTS, NULL, ts_store_fw_release_insert(fx->s, &same));
    ts_store_rollback(fx->s);
    ERR(TS_ERR_NOT_FOUND, NULL, ts_store_fw_release_get(fx->s, w.b, same.id, &got));
    OK(ts_store_fw_release_get(fx->s, w.a, r4.id, &got));
    assert_release(&r4, &got);
}

static void case_release_duplicate(store_fx *fx)
{
    world w = make_world(fx);
    ts_fw_release_row first = release(w.a, 1, 10, TS_FW_TARGET_ALL, "", "board-a", T0);
    ts_fw_release_row again = release(w.a, 1, 20, TS_FW_TARGET_DEVICE, "dev-1", "board-b", T0 + 1);
    ts_fw_release_row x = release(w.a, 2, 30, TS_FW_TARGET_ALL, "", "board-a", T0 + 2);
    ts_fw_release_row got, *rows = NULL;
    size_t count = 0;
    insert_committed(fx, &first);

    OK(ts_store_begin(fx->s));
    ERR(TS_ERR_EXISTS, NULL, ts_store_fw_release_insert(fx->s, &again));
    ts_store_rollback(fx->s);
    OK(ts_store_fw_release_get(fx->s, w.a, first.id, &got));
    assert_release(&first, &got);

    /* Twice in one transaction: the second is refused, the rollback drops both. */
    OK(ts_store_begin(fx->s));
    OK(ts_store_fw_release_insert(fx->s, &x));
    ERR(TS_ERR_EXISTS, NULL, ts_store_fw_release_insert(fx->s, &x));
    ts_store_rollback(fx->s);
    ERR(TS_ERR_NOT_FOUND, NULL, ts_store_fw_release_get(fx->s, w.a, x.id, &got));
    OK(ts_store_fw_release_list(fx->s, w.a, &rows, &count));
    assert_int_equal(count, 1);
    OPENSSL_free(rows);
}

static void case_release_withdraw(store_fx *fx)
{
    world w = make_world(fx);
    ts_fw_release_row r1 = release(w.a, 1, 10, TS_FW_TARGET_ALL, "", "board-a", T0);
    ts_fw_release_row r2 = release(w.a, 2, 11, TS_FW_TARGET_ALL, "", "board-a", T0 + 1);
    ts_fw_release_row got, *rows = NULL;
    size_t count = 0;
    char unknown[TS_FW_RELEASE_ID_LEN + 1];
    rid(77, unknown);
    OK(ts_store_begin(fx->s));
    OK(ts_store_fw_release_insert(fx->s, &r1));
    OK(ts_store_fw_release_insert(fx->s, &r2));
    OK(ts_store_commit(fx->s));

    ERR(TS_ERR_STATE, "ts_store_begin", ts_store_fw_release_withdraw(fx->s, w.a, r1.id, T0 + 9));
    OK(ts_store_begin(fx->s));
    ERR(TS_ERR_NOT_FOUND, NULL, ts_store_fw_release_withdraw(fx->s, w.a, unknown, T0 + 9));
    OK(ts_store_fw_release_withdraw(fx->s, w.a, r1.id, T0 + 100));
    ERR(TS_ERR_STATE, "withdrawn already",
        ts_store_fw_release_withdraw(fx->s, w.a, r1.id, T0 + 101));
    OK(ts_store_commit(fx->s));

    OK(ts_store_fw_release_get(fx->s, w.a, r1.id, &got));
    assert_int_equal(got.state, TS_FW_RELEASE_WITHDRAWN);
    assert_int_equal(got.withdrawn, T0 + 100);
    got.state = TS_FW_RELEASE_ACTIVE;
    got.withdrawn = 0;
    assert_release(&r1, &got); /* nothing else changed */

    /* Again in a later transaction: still refused, and the first withdrawal stays. */
    OK(ts_store_begin(fx->s));
    ERR(TS_ERR_STATE, "withdrawn already",
        ts_store_fw_release_withdraw(fx->s, w.a, r1.id, T0 + 200));
    ts_store_rollback(fx->s);
    OK(ts_store_fw_release_get(fx->s, w.a, r1.id, &got));
    assert_int_equal(got.withdrawn, T0 + 100);

    /* A withdrawal rolled back leaves the release active. */
    OK(ts_store_begin(fx->s));
    OK(ts_store_fw_release_withdraw(fx->s, w.a, r2.id, T0 + 300));
    ts_store_rollback(fx->s);
    OK(ts_store_fw_release_get(fx->s, w.a, r2.id, &got));
    assert_release(&r2, &got);

    /* Listed still, but no longer offered. */
    OK(ts_store_fw_release_list(fx->s, w.a, &rows, &count));
    assert_int_equal(count, 2);
    assert_string_equal(rows[0].id, r2.id);
    assert_int_equal(rows[0].state, TS_FW_RELEASE_ACTIVE);
    assert_string_equal(rows[1].id, r1.id);
    assert_int_equal(rows[1].state, TS_FW_RELEASE_WITHDRAWN);
    OPENSSL_free(rows);
    OK(ts_store_fw_release_for_device(fx->s, w.a, "dev-1", "board-a", &rows, &count));
    assert_int_equal(count, 1);
    assert_string_equal(rows[0].id, r2.id);
    OPENSSL_free(rows);
}

/* --- Releases for a device ------------------------------------------------------------------- */

static void expect_for(store_fx *fx, int64_t tenant, const char *uid, const char *hw,
                       const unsigned *want, size_t n)
{
    ts_fw_release_row *rows = NULL;
    size_t count = 0;
    char id[TS_FW_RELEASE_ID_LEN + 1];
    OK(ts_store_fw_release_for_device(fx->s, tenant, uid, hw, &rows, &count));
    if (count != n) {
        for (size_t i = 0; i < count; i++) {
            print_message("    got %s v%" PRIu64 "\n", rows[i].id, rows[i].version);
        }
        OPENSSL_free(rows);
        fail_msg("%s (hw %s): %zu releases, want %zu", uid, hw != NULL ? hw : "any", count, n);
    }
    for (size_t i = 0; i < n; i++) {
        rid(want[i], id);
        if (strcmp(rows[i].id, id) != 0) {
            char got[TS_FW_RELEASE_ID_LEN + 1];
            snprintf(got, sizeof got, "%s", rows[i].id);
            OPENSSL_free(rows);
            fail_msg("%s (hw %s): release %zu is %s, want %s", uid, hw != NULL ? hw : "any", i, got,
                     id);
        }
        assert_int_equal(rows[i].tenant_id, tenant);
        assert_int_equal(rows[i].state, TS_FW_RELEASE_ACTIVE);
        assert_true(hw == NULL || strcmp(rows[i].hw, hw) == 0);
    }
    OPENSSL_free(rows);
}

#define EXPECT_FOR(fx, tenant, uid, hw, ...)                                                       \
    do {                                                                                           \
        static const unsigned want_[] = {__VA_ARGS__};                                             \
        expect_for(fx, tenant, uid, hw, want_, sizeof want_ / sizeof want_[0]);                    \
    } while (0)

static int64_t group(store_fx *fx, int64_t tenant, const char *name, const char *const *uids,
                     size_t n)
{
    ts_group_row g = {.tenant_id = tenant, .created = T0};
    snprintf(g.name, sizeof g.name, "%s", name);
    OK(ts_store_group_insert(fx->s, &g));
    for (size_t i = 0; i < n; i++) {
        OK(ts_store_group_member_add(fx->s, g.id, uids[i], T0));
    }
    return g.id;
}

/* Release numbers of case_for_device. */
enum {
    A_ALL10 = 0x10,    /* all, version 10 */
    A_DEV1_20 = 0x11,  /* device dev-1, version 20, created T0+1 */
    A_ALL20 = 0x12,    /* all, version 20, created T0+2: before A_DEV1_20 */
    A_LAB15 = 0x13,    /* group lab */
    A_FIELD30 = 0x14,  /* group field */
    A_QA40 = 0x15,     /* group qa: tenant A has none (tenant B's has dev-1) */
    A_DEV10_50 = 0x16, /* device dev-10, not dev-1 */
    A_DEVLAB45 = 0x17, /* device "lab": a device target is not a group */
    A_GRPDEV46 = 0x18, /* group "dev-2": a group target is not a device */
    A_HWB25 = 0x19,    /* all, hardware board-b */
    A_WD60 = 0x1a,     /* all, withdrawn */
    A_TIE12_HI = 0x1c, /* all, version 12, same time as A_TIE12_LO: ordered by id */
    A_TIE12_LO = 0x1b,
    A_BIG40 = 0x1d, /* all, version 2^40, board-z */
    A_BIG33 = 0x1e, /* all, version 2^33, board-z */
    B_ALL70 = 0x20,
    B_LAB80 = 0x21, /* tenant B's group lab: dev-4 */
    B_QA75 = 0x22,  /* tenant B's group qa: dev-1 */
};

static void case_for_device(store_fx *fx)
{
    world w = make_world(fx);
    static const char *const lab[] = {"dev-1", "dev-2"};
    static const char *const field[] = {"dev-3"};
    static const char *const b_qa[] = {"dev-1"};
    static const char *const b_lab[] = {"dev-4"};
    static const char *const dev2[] = {"dev-2"};
    const ts_fw_release_row rels[] = {
        release(w.a, A_TIE12_HI, 12, TS_FW_TARGET_ALL, "", "board-a", T0 + 5),
        release(w.a, A_ALL10, 10, TS_FW_TARGET_ALL, "", "board-a", T0),
        release(w.a, A_QA40, 40, TS_FW_TARGET_GROUP, "qa", "board-a", T0),
        release(w.a, A_DEV1_20, 20, TS_FW_TARGET_DEVICE, "dev-1", "board-a", T0 + 1),
        release(w.a, A_LAB15, 15, TS_FW_TARGET_GROUP, "lab", "board-a", T0),
        release(w.a, A_ALL20, 20, TS_FW_TARGET_ALL, "", "board-a", T0 + 2),
        release(w.a, A_FIELD30, 30, TS_FW_TARGET_GROUP, "field", "board-a", T0),
        release(w.a, A_DEV10_50, 50, TS_FW_TARGET_DEVICE, "dev-10", "board-a", T0),
        release(w.a, A_DEVLAB45, 45, TS_FW_TARGET_DEVICE, "lab", "board-a", T0),
        release(w.a, A_GRPDEV46, 46, TS_FW_TARGET_GROUP, "dev-2", "board-a", T0),
        release(w.a, A_HWB25, 25, TS_FW_TARGET_ALL, "", "board-b", T0),
        release(w.a, A_WD60, 60, TS_FW_TARGET_ALL, "", "board-a", T0),
        release(w.a, A_TIE12_LO, 12, TS_FW_TARGET_ALL, "", "board-a", T0 + 5),
        release(w.a, A_BIG33, (uint64_t)1 << 33, TS_FW_TARGET_ALL, "", "board-z", T0 + 9),
        release(w.a, A_BIG40, (uint64_t)1 << 40, TS_FW_TARGET_ALL, "", "board-z", T0),
        release(w.b, B_ALL70, 70, TS_FW_TARGET_ALL, "", "board-a", T0),
        release(w.b, B_LAB80, 80, TS_FW_TARGET_GROUP, "lab", "board-a", T0),
        release(w.b, B_QA75, 75, TS_FW_TARGET_GROUP, "qa", "board-a", T0),
    };
    char id[TS_FW_RELEASE_ID_LEN + 1];
    ts_group_row g;

    OK(ts_store_begin(fx->s));
    int64_t a_lab = group(fx, w.a, "lab", lab, 2);
    int64_t a_field = group(fx, w.a, "field", field, 1);
    (void)group(fx, w.b, "qa", b_qa, 1);
    (void)group(fx, w.b, "lab", b_lab, 1);
    for (size_t i = 0; i < sizeof rels / sizeof rels[0]; i++) {
        OK(ts_store_fw_release_insert(fx->s, &rels[i]));
    }
    rid(A_WD60, id);
    OK(ts_store_fw_release_withdraw(fx->s, w.a, id, T0 + 20));
    OK(ts_store_commit(fx->s));

    /* Highest version first; equal versions newest first, then by id. */
    EXPECT_FOR(fx, w.a, "dev-1", "board-a", A_ALL20, A_DEV1_20, A_LAB15, A_TIE12_LO, A_TIE12_HI,
               A_ALL10);
    EXPECT_FOR(fx, w.a, "dev-1", NULL, A_BIG40, A_BIG33, A_HWB25, A_ALL20, A_DEV1_20, A_LAB15,
               A_TIE12_LO, A_TIE12_HI, A_ALL10);
    EXPECT_FOR(fx, w.a, "dev-1", "board-b", A_HWB25);
    EXPECT_FOR(fx, w.a, "dev-1", "board-z", A_BIG40, A_BIG33);
    expect_for(fx, w.a, "dev-1", "board-c", NULL, 0);
    expect_for(fx, w.a, "dev-1", "board", NULL, 0);
    EXPECT_FOR(fx, w.a, "dev-2", "board-a", A_ALL20, A_LAB15, A_TIE12_LO, A_TIE12_HI, A_ALL10);
    EXPECT_FOR(fx, w.a, "dev-3", "board-a", A_FIELD30, A_ALL20, A_TIE12_LO, A_TIE12_HI, A_ALL10);
    EXPECT_FOR(fx, w.a, "dev-4", "board-a", A_ALL20, A_TIE12_LO, A_TIE12_HI, A_ALL10);
    EXPECT_FOR(fx, w.a, "dev-10", "board-a", A_DEV10_50, A_ALL20, A_TIE12_LO, A_TIE12_HI, A_ALL10);
    EXPECT_FOR(fx, w.a, "never-seen", "board-a", A_ALL20, A_TIE12_LO, A_TIE12_HI, A_ALL10);
    EXPECT_FOR(fx, w.b, "dev-1", "board-a", B_QA75, B_ALL70);
    EXPECT_FOR(fx, w.b, "dev-4", "board-a", B_LAB80, B_ALL70);
    EXPECT_FOR(fx, w.b, "dev-2", NULL, B_ALL70);

    /* Membership decides at the time of asking; a withdrawal takes the release out. */
    OK(ts_store_begin(fx->s));
    OK(ts_store_group_member_remove(fx->s, a_lab, "dev-1"));
    OK(ts_store_group_member_add(fx->s, a_field, dev2[0], T0 + 30));
    rid(A_ALL20, id);
    OK(ts_store_fw_release_withdraw(fx->s, w.a, id, T0 + 30));
    OK(ts_store_commit(fx->s));
    EXPECT_FOR(fx, w.a, "dev-1", "board-a", A_DEV1_20, A_TIE12_LO, A_TIE12_HI, A_ALL10);
    EXPECT_FOR(fx, w.a, "dev-2", "board-a", A_FIELD30, A_LAB15, A_TIE12_LO, A_TIE12_HI, A_ALL10);

    /* A deleted group targets nobody. */
    OK(ts_store_group_get(fx->s, w.a, "field", &g));
    OK(ts_store_begin(fx->s));
    OK(ts_store_group_delete(fx->s, g.id));
    OK(ts_store_commit(fx->s));
    EXPECT_FOR(fx, w.a, "dev-3", "board-a", A_TIE12_LO, A_TIE12_HI, A_ALL10);
}

static void case_file_used(store_fx *fx)
{
    world w = make_world(fx);
    ts_fw_release_row ra = release(w.a, 1, 10, TS_FW_TARGET_ALL, "", "board-a", T0);
    ts_fw_release_row rb = release(w.b, 2, 10, TS_FW_TARGET_ALL, "", "board-a", T0);
    ts_fw_release_row rc = release(w.a, 3, 11, TS_FW_TARGET_ALL, "", "board-a", T0);
    ts_fw_release_row ra2 = release(w.a, 4, 12, TS_FW_TARGET_ALL, "", "board-a", T0);
    int used = -1;
    snprintf(ra.sha256, sizeof ra.sha256, "%s", SHA_A);
    snprintf(ra2.sha256, sizeof ra2.sha256, "%s", SHA_A);
    snprintf(rb.sha256, sizeof rb.sha256, "%s", SHA_B);
    snprintf(rc.sha256, sizeof rc.sha256, "%s", SHA_C);

    OK(ts_store_fw_file_used(fx->s, SHA_A, &used));
    assert_int_equal(used, 0);
    insert_committed(fx, &ra);
    OK(ts_store_fw_file_used(fx->s, SHA_A, &used));
    assert_int_equal(used, 1);
    OK(ts_store_fw_file_used(fx->s, SHA_B, &used));
    assert_int_equal(used, 0);

    /* Any tenant's release counts. */
    insert_committed(fx, &rb);
    OK(ts_store_fw_file_used(fx->s, SHA_B, &used));
    assert_int_equal(used, 1);

    /* Two releases of one file; withdrawn ones still refer to it. */
    insert_committed(fx, &ra2);
    OK(ts_store_begin(fx->s));
    OK(ts_store_fw_release_withdraw(fx->s, w.a, ra.id, T0 + 1));
    OK(ts_store_fw_release_withdraw(fx->s, w.a, ra2.id, T0 + 1));
    OK(ts_store_commit(fx->s));
    OK(ts_store_fw_file_used(fx->s, SHA_A, &used));
    assert_int_equal(used, 1);

    /* Inside the transaction that adds it, and not after a rollback. */
    OK(ts_store_begin(fx->s));
    OK(ts_store_fw_release_insert(fx->s, &rc));
    OK(ts_store_fw_file_used(fx->s, SHA_C, &used));
    assert_int_equal(used, 1);
    ts_store_rollback(fx->s);
    OK(ts_store_fw_file_used(fx->s, SHA_C, &used));
    assert_int_equal(used, 0);
    OK(ts_store_fw_file_used(fx->s, SHA_D, &used));
    assert_int_equal(used, 0);
}

/* --- What devices reported ------------------------------------------------------------------- */

static ts_fw_device_row report(const char *uid, const char *version, const char *hw, time_t when)
{
    ts_fw_device_row d;
    memset(&d, 0, sizeof d);
    snprintf(d.uid, sizeof d.uid, "%s", uid);
    snprintf(d.version, sizeof d.version, "%s", version);
    snprintf(d.hw, sizeof d.hw, "%s", hw);
    d.reported = when;
    return d;
}

static void assert_report(const ts_fw_device_row *want, const ts_fw_device_row *got)
{
    assert_string_equal(got->uid, want->uid);
    assert_string_equal(got->version, want->version);
    assert_string_equal(got->hw, want->hw);
    assert_int_equal(got->reported, want->reported);
}

static void case_device_report(store_fx *fx)
{
    world w = make_world(fx);
    ts_fw_device_row first = report("dev-1", "41", "board-a", T0);
    ts_fw_device_row second = report("dev-1", "42", "board-b", T0 + 60);
    ts_fw_device_row third = report("dev-1", "", "", T0 + 120);
    ts_fw_device_row in_b = report("dev-1", "7", "board-c", T0 + 5);
    ts_fw_device_row longest = report("dev-2", "", "board-a", T0);
    ts_fw_device_row got;

    ERR(TS_ERR_NOT_FOUND, "dev-1", ts_store_fw_device_get(fx->s, w.a, "dev-1", &got));
    ERR(TS_ERR_STATE, "ts_store_begin", ts_store_fw_device_put(fx->s, w.a, &first));
    OK(ts_store_begin(fx->s));
    OK(ts_store_fw_device_put(fx->s, w.a, &first));
    OK(ts_store_commit(fx->s));
    OK(ts_store_fw_device_get(fx->s, w.a, "dev-1", &got));
    assert_report(&first, &got);

    /* The latest report replaces the one before. */
    OK(ts_store_begin(fx->s));
    OK(ts_store_fw_device_put(fx->s, w.a, &second));
    OK(ts_store_commit(fx->s));
    OK(ts_store_fw_device_get(fx->s, w.a, "dev-1", &got));
    assert_report(&second, &got);

    /* Per tenant. */
    ERR(TS_ERR_NOT_FOUND, NULL, ts_store_fw_device_get(fx->s, w.b, "dev-1", &got));
    OK(ts_store_begin(fx->s));
    OK(ts_store_fw_device_put(fx->s, w.b, &in_b));
    OK(ts_store_commit(fx->s));
    OK(ts_store_fw_device_get(fx->s, w.b, "dev-1", &got));
    assert_report(&in_b, &got);
    OK(ts_store_fw_device_get(fx->s, w.a, "dev-1", &got));
    assert_report(&second, &got);

    /* Twice in one transaction: the second wins; an empty version and hardware id are kept. */
    OK(ts_store_begin(fx->s));
    OK(ts_store_fw_device_put(fx->s, w.a, &first));
    OK(ts_store_fw_device_put(fx->s, w.a, &third));
    OK(ts_store_commit(fx->s));
    OK(ts_store_fw_device_get(fx->s, w.a, "dev-1", &got));
    assert_report(&third, &got);

    /* A rolled-back report is not kept. */
    OK(ts_store_begin(fx->s));
    OK(ts_store_fw_device_put(fx->s, w.a, &second));
    ts_store_rollback(fx->s);
    OK(ts_store_fw_device_get(fx->s, w.a, "dev-1", &got));
    assert_report(&third, &got);

    /* The longest version text there is. */
    memset(longest.version, '9', TS_FW_VERSION_TEXT_MAX);
    longest.version[TS_FW_VERSION_TEXT_MAX] = '\0';
    memset(longest.uid, 'u', TS_DEVICE_UID_MAX);
    longest.uid[TS_DEVICE_UID_MAX] = '\0';
    OK(ts_store_begin(fx->s));
    OK(ts_store_fw_device_put(fx->s, w.a, &longest));
    OK(ts_store_commit(fx->s));
    OK(ts_store_fw_device_get(fx->s, w.a, longest.uid, &got));
    assert_report(&longest, &got);

    /* Refused: no UID, or text without its end. */
    ts_fw_device_row bad = report("", "1", "board-a", T0);
    OK(ts_store_begin(fx->s));
    ERR(TS_ERR_INVALID, NULL, ts_store_fw_device_put(fx->s, w.a, &bad));
    bad = report("dev-5", "1", "board-a", T0);
    memset(bad.version, '1', sizeof bad.version);
    ERR(TS_ERR_INVALID, NULL, ts_store_fw_device_put(fx->s, w.a, &bad));
    bad = report("dev-5", "1", "board-a", T0);
    memset(bad.hw, 'h', sizeof bad.hw);
    ERR(TS_ERR_INVALID, NULL, ts_store_fw_device_put(fx->s, w.a, &bad));
    ERR(TS_ERR_INVALID, NULL, ts_store_fw_device_put(fx->s, w.a, NULL));
    OK(ts_store_commit(fx->s));
    ERR(TS_ERR_NOT_FOUND, NULL, ts_store_fw_device_get(fx->s, w.a, "dev-5", &got));
}

/* --- Offers ---------------------------------------------------------------------------------- */

static void assert_offer(const ts_fw_offer_row *o, int64_t id, const char *release_id,
                         const char *uid, ts_fw_offer_state state, const char *code,
                         const char *message, time_t sent, time_t answered)
{
    assert_int_equal(o->id, id);
    assert_string_equal(o->release_id, release_id);
    assert_string_equal(o->device_uid, uid);
    assert_int_equal(o->state, state);
    assert_string_equal(o->error_code, code);
    assert_string_equal(o->error_message, message);
    assert_int_equal(o->sent, sent);
    assert_int_equal(o->answered, answered);
}

static void offers_of(store_fx *fx, int64_t tenant, const char *uid, const char *release_id,
                      ts_fw_offer_row **rows, size_t *count)
{
    OPENSSL_free(*rows);
    *rows = NULL;
    OK(ts_store_fw_offer_list(fx->s, tenant, uid, release_id, rows, count));
}

/* The message names the request id of the offer (TS_FW_OFFER_ID_BASE + its id). */
static void assert_names_request(int64_t offer_id)
{
    char want[32];
    snprintf(want, sizeof want, "%lld", (long long)(TS_FW_OFFER_ID_BASE + offer_id));
    if (strstr(ts_error_message(), want) == NULL) {
        fail_msg("\"%s\" does not name request %s", ts_error_message(), want);
    }
}

static void case_offers(store_fx *fx)
{
    world w = make_world(fx);
    ts_fw_release_row r1 = release(w.a, 1, 10, TS_FW_TARGET_ALL, "", "board-a", T0);
    ts_fw_release_row r2 = release(w.a, 2, 11, TS_FW_TARGET_ALL, "", "board-a", T0);
    ts_fw_release_row rb = release(w.b, 3, 12, TS_FW_TARGET_ALL, "", "board-a", T0);
    ts_fw_offer_row *rows = NULL, out;
    size_t count = 0;
    int64_t o1 = 0, o2 = 0, o3 = 0, ob = 0, none = -1;
    OK(ts_store_begin(fx->s));
    OK(ts_store_fw_release_insert(fx->s, &r1));
    OK(ts_store_fw_release_insert(fx->s, &r2));
    OK(ts_store_fw_release_insert(fx->s, &rb));
    OK(ts_store_commit(fx->s));

    ERR(TS_ERR_STATE, "ts_store_begin",
        ts_store_fw_offer_insert(fx->s, w.a, "dev-1", r1.id, T0, &none));
    assert_int_equal(none, 0);
    OK(ts_store_begin(fx->s));
    OK(ts_store_fw_offer_insert(fx->s, w.a, "dev-1", r1.id, T0 + 1, &o1));
    OK(ts_store_fw_offer_insert(fx->s, w.a, "dev-2", r1.id, T0 + 2, &o2));
    OK(ts_store_fw_offer_insert(fx->s, w.a, "dev-1", r2.id, T0 + 3, &o3));
    OK(ts_store_fw_offer_insert(fx->s, w.b, "dev-1", rb.id, T0 + 4, &ob));
    /* A release of another tenant is not offered. */
    ERR(TS_ERR_NOT_FOUND, "no firmware release",
        ts_store_fw_offer_insert(fx->s, w.a, "dev-1", rb.id, T0 + 5, &none));
    assert_int_equal(none, 0);
    OK(ts_store_commit(fx->s));
    assert_true(o1 > 0 && o1 < o2 && o2 < o3 && o3 < ob);

    /* Oldest first, narrowed by device and release. */
    offers_of(fx, w.a, NULL, NULL, &rows, &count);
    assert_int_equal(count, 3);
    assert_offer(&rows[0], o1, r1.id, "dev-1", TS_FW_OFFER_SENT, "", "", T0 + 1, 0);
    assert_offer(&rows[1], o2, r1.id, "dev-2", TS_FW_OFFER_SENT, "", "", T0 + 2, 0);
    assert_offer(&rows[2], o3, r2.id, "dev-1", TS_FW_OFFER_SENT, "", "", T0 + 3, 0);
    offers_of(fx, w.a, "dev-1", NULL, &rows, &count);
    assert_int_equal(count, 2);
    assert_int_equal(rows[0].id, o1);
    assert_int_equal(rows[1].id, o3);
    offers_of(fx, w.a, NULL, r1.id, &rows, &count);
    assert_int_equal(count, 2);
    assert_int_equal(rows[0].id, o1);
    assert_int_equal(rows[1].id, o2);
    offers_of(fx, w.a, "dev-1", r2.id, &rows, &count);
    assert_int_equal(count, 1);
    assert_int_equal(rows[0].id, o3);
    offers_of(fx, w.a, "dev-9", NULL, &rows, &count);
    assert_int_equal(count, 0);
    offers_of(fx, w.a, NULL, rb.id, &rows, &count);
    assert_int_equal(count, 0);
    offers_of(fx, w.b, NULL, NULL, &rows, &count);
    assert_int_equal(count, 1);
    assert_offer(&rows[0], ob, rb.id, "dev-1", TS_FW_OFFER_SENT, "", "", T0 + 4, 0);

    /* Handed out again: a new sent time. */
    ERR(TS_ERR_STATE, "ts_store_begin", ts_store_fw_offer_mark_sent(fx->s, w.a, o1, T0 + 100));
    OK(ts_store_begin(fx->s));
    OK(ts_store_fw_offer_mark_sent(fx->s, w.a, o1, T0 + 100));
    /* Another tenant's id changes nothing. */
    OK(ts_store_fw_offer_mark_sent(fx->s, w.b, o1, T0 + 150));
    OK(ts_store_commit(fx->s));
    offers_of(fx, w.a, "dev-1", r1.id, &rows, &count);
    assert_int_equal(count, 1);
    assert_offer(&rows[0], o1, r1.id, "dev-1", TS_FW_OFFER_SENT, "", "", T0 + 100, 0);

    /* Answered ok: an error given with it is not kept. */
    ts_fw_offer_answer ok = {.offer_id = o1, .ok = 1, .error_code = "x", .error_message = "y"};
    ERR(TS_ERR_STATE, "ts_store_begin",
        ts_store_fw_offer_answer(fx->s, w.a, "dev-1", &ok, T0, &out));
    OK(ts_store_begin(fx->s));
    memset(&out, 0x55, sizeof out);
    OK(ts_store_fw_offer_answer(fx->s, w.a, "dev-1", &ok, T0 + 200, &out));
    OK(ts_store_commit(fx->s));
    assert_offer(&out, o1, r1.id, "dev-1", TS_FW_OFFER_DONE, "", "", T0 + 100, T0 + 200);
    /* Once only; and a later hand-out does not reopen or touch it. */
    OK(ts_store_begin(fx->s));
    ERR(TS_ERR_NOT_FOUND, "no unanswered firmware offer",
        ts_store_fw_offer_answer(fx->s, w.a, "dev-1", &ok, T0 + 201, &out));
    assert_names_request(o1);
    OK(ts_store_fw_offer_mark_sent(fx->s, w.a, o1, T0 + 300));
    OK(ts_store_commit(fx->s));
    offers_of(fx, w.a, "dev-1", r1.id, &rows, &count);
    assert_int_equal(count, 1);
    assert_offer(&rows[0], o1, r1.id, "dev-1", TS_FW_OFFER_DONE, "", "", T0 + 100, T0 + 200);

    /* Answered with an error, without asking for the row. */
    ts_fw_offer_answer failed = {.offer_id = o3,
                                 .ok = 0,
                                 .error_code = "flash-error",
                                 .error_message = "write failed at 0x1000"};
    OK(ts_store_begin(fx->s));
    OK(ts_store_fw_offer_answer(fx->s, w.a, "dev-1", &failed, T0 + 400, NULL));
    OK(ts_store_commit(fx->s));

    /* Not this device's, not this tenant's, not an offer, or too long: refused, nothing kept. */
    ts_fw_offer_answer a2 = {.offer_id = o2, .ok = 0};
    ts_fw_offer_answer a_b = {.offer_id = ob, .ok = 1};
    ts_fw_offer_answer unknown = {.offer_id = ob + 1000, .ok = 1};
    char code[40], message[600];
    memset(code, 'c', sizeof code - 1);
    code[33] = '\0';
    memset(message, 'm', sizeof message - 1);
    message[513] = '\0';
    OK(ts_store_begin(fx->s));
    ERR(TS_ERR_NOT_FOUND, NULL, ts_store_fw_offer_answer(fx->s, w.a, "dev-1", &a2, T0 + 500, &out));
    assert_names_request(o2);
    ERR(TS_ERR_NOT_FOUND, NULL, ts_store_fw_offer_answer(fx->s, w.b, "dev-2", &a2, T0 + 500, &out));
    ERR(TS_ERR_NOT_FOUND, NULL,
        ts_store_fw_offer_answer(fx->s, w.a, "dev-1", &a_b, T0 + 500, &out));
    assert_names_request(ob);
    ERR(TS_ERR_NOT_FOUND, NULL,
        ts_store_fw_offer_answer(fx->s, w.a, "dev-1", &unknown, T0 + 500, &out));
    ERR(TS_ERR_NOT_FOUND, NULL,
        ts_store_fw_offer_answer(fx->s, w.b, "dev-1", &unknown, T0 + 500, &out));
    a2.error_code = code;
    ERR(TS_ERR_INVALID, "too long", ts_store_fw_offer_answer(fx->s, w.a, "dev-2", &a2, T0, &out));
    a2.error_code = "bad";
    a2.error_message = message;
    ERR(TS_ERR_INVALID, "too long", ts_store_fw_offer_answer(fx->s, w.a, "dev-2", &a2, T0, &out));
    OK(ts_store_commit(fx->s));
    offers_of(fx, w.b, NULL, NULL, &rows, &count);
    assert_int_equal(count, 1);
    assert_offer(&rows[0], ob, rb.id, "dev-1", TS_FW_OFFER_SENT, "", "", T0 + 4, 0);

    /* The longest error there is, and a failure without an error code. */
    code[32] = '\0';
    message[512] = '\0';
    a2.error_code = code;
    a2.error_message = message;
    OK(ts_store_begin(fx->s));
    OK(ts_store_fw_offer_answer(fx->s, w.a, "dev-2", &a2, T0 + 600, &out));
    ts_store_rollback(fx->s);
    assert_offer(&out, o2, r1.id, "dev-2", TS_FW_OFFER_FAILED, code, message, T0 + 2, T0 + 600);
    a2.error_code = NULL;
    a2.error_message = NULL;
    OK(ts_store_begin(fx->s));
    OK(ts_store_fw_offer_answer(fx->s, w.a, "dev-2", &a2, T0 + 700, &out));
    OK(ts_store_commit(fx->s));
    assert_offer(&out, o2, r1.id, "dev-2", TS_FW_OFFER_FAILED, "", "", T0 + 2, T0 + 700);

    /* Tenant B answers its own. */
    OK(ts_store_begin(fx->s));
    OK(ts_store_fw_offer_answer(fx->s, w.b, "dev-1", &a_b, T0 + 800, &out));
    OK(ts_store_commit(fx->s));
    assert_offer(&out, ob, rb.id, "dev-1", TS_FW_OFFER_DONE, "", "", T0 + 4, T0 + 800);

    offers_of(fx, w.a, NULL, NULL, &rows, &count);
    assert_int_equal(count, 3);
    assert_offer(&rows[0], o1, r1.id, "dev-1", TS_FW_OFFER_DONE, "", "", T0 + 100, T0 + 200);
    assert_offer(&rows[1], o2, r1.id, "dev-2", TS_FW_OFFER_FAILED, "", "", T0 + 2, T0 + 700);
    assert_offer(&rows[2], o3, r2.id, "dev-1", TS_FW_OFFER_FAILED, "flash-error",
                 "write failed at 0x1000", T0 + 3, T0 + 400);

    /* A second offer of one release to one device is a row of its own. */
    int64_t o4 = 0;
    OK(ts_store_begin(fx->s));
    OK(ts_store_fw_offer_insert(fx->s, w.a, "dev-1", r2.id, T0 + 900, &o4));
    OK(ts_store_commit(fx->s));
    assert_true(o4 > ob);
    offers_of(fx, w.a, "dev-1", r2.id, &rows, &count);
    assert_int_equal(count, 2);
    assert_int_equal(rows[0].id, o3);
    assert_offer(&rows[1], o4, r2.id, "dev-1", TS_FW_OFFER_SENT, "", "", T0 + 900, 0);

    /* An offer of a release that does not exist. */
    char missing[TS_FW_RELEASE_ID_LEN + 1];
    rid(0xdead, missing);
    OK(ts_store_begin(fx->s));
    ERR(TS_ERR_NOT_FOUND, NULL,
        ts_store_fw_offer_insert(fx->s, w.a, "dev-1", missing, T0 + 1000, &none));
    ts_store_rollback(fx->s);
    offers_of(fx, w.a, NULL, NULL, &rows, &count);
    assert_int_equal(count, 4);
    OPENSSL_free(rows);
}

int main(void)
{
    static const store_case cases[] = {
        {"fw_release_fields", case_release_fields},
        {"fw_release_list_tenants", case_release_list_tenants},
        {"fw_release_duplicate", case_release_duplicate},
        {"fw_release_withdraw", case_release_withdraw},
        {"fw_for_device", case_for_device},
        {"fw_file_used", case_file_used},
        {"fw_device_report", case_device_report},
        {"fw_offers", case_offers},
    };
    return store_run_cases("store_firmware", cases, sizeof cases / sizeof cases[0]);
}
