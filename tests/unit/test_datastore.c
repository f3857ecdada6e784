/*
 * The agent's datastore (include/tessera/datastore.h): transactions, the two slots, the binding
 * to the key store, and the refusal of foreign, edited and rolled-back copies. Soft key stores
 * throughout, and one round on SoftHSM2.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/crypto.h>

#include "agent/datastore_internal.h"
#include "common/file_internal.h"
#include "ks_fixture.h"
#include "tessera/datastore.h"

#define URL "https://tessera.example:8443"

typedef struct ds_fx {
    ks_fixture ks;
    char state[1100];
} ds_fx;

static int setup_backend(void **state, ks_backend_id backend)
{
    static ds_fx fx;
    memset(&fx, 0, sizeof fx);
    if (ks_fixture_init(&fx.ks, backend) != 0) {
        return -1;
    }
    snprintf(fx.state, sizeof fx.state, "%s/state", fx.ks.tmp);
    if (mkdir(fx.state, 0700) != 0) {
        return -1;
    }
    *state = &fx;
    return 0;
}

static int setup_soft(void **state)
{
    return setup_backend(state, KS_SOFT);
}

static int setup_pkcs11(void **state)
{
    return setup_backend(state, KS_PKCS11);
}

static int teardown(void **state)
{
    ds_fx *fx = *state;
    ks_fixture_cleanup(&fx->ks);
    return 0;
}

static void slot_path(const ds_fx *fx, char slot, char *out, size_t size)
{
    snprintf(out, size, "%s/datastore-%c.der", fx->state, slot);
}

static const char *put_text(ts_datastore_txn *txn, const char *name, const char *text)
{
    assert_int_equal(
        ts_datastore_put(txn, name, TS_DATASTORE_TEXT, (const uint8_t *)text, strlen(text)), TS_OK);
    return text;
}

/* Opens (with defaults), sets server.url to url and mqtt.port to port, commits. */
static ts_datastore *commit_one(ds_fx *fx, const char *url, const char *port)
{
    ts_datastore *ds = NULL;
    ts_datastore_txn *txn = NULL;
    assert_int_equal(ts_datastore_open_or_defaults(fx->state, fx->ks.ks, &ds), TS_OK);
    assert_int_equal(ts_datastore_begin(ds, &txn), TS_OK);
    put_text(txn, TS_DS_SERVER_URL, url);
    assert_int_equal(ts_datastore_put(txn, TS_DS_MQTT_PORT, TS_DATASTORE_UINT,
                                      (const uint8_t *)port, strlen(port)),
                     TS_OK);
    assert_int_equal(ts_datastore_commit(txn), TS_OK);
    return ds;
}

static uint64_t counter(ds_fx *fx)
{
    uint64_t v = 0;
    assert_int_equal(ts_keystore_counter_get(fx->ks.ks, TS_DATASTORE_COUNTER, &v), TS_OK);
    return v;
}

static void expect_open_fails(ds_fx *fx, ts_keystore *ks, ts_err want, const char *words)
{
    ts_datastore *ds = NULL;
    assert_int_equal(ts_datastore_open(fx->state, ks, &ds), want);
    assert_null(ds);
    if (strstr(ts_error_message(), words) == NULL) {
        fail_msg("message '%s' does not say '%s'", ts_error_message(), words);
    }
    /* The agent still starts, on its defaults, and says why. */
    assert_int_equal(ts_datastore_open_or_defaults(fx->state, ks, &ds), TS_OK);
    assert_int_equal(ts_datastore_source(ds), TS_DATASTORE_DEFAULTS);
    assert_int_equal(ts_datastore_refusal(ds), want);
    assert_non_null(
        strstr(ts_datastore_status(ds), "no valid datastore: using compiled-in defaults"));
    assert_int_equal(ts_datastore_generation(ds), 0);
    ts_datastore_free(ds);
}

static void copy_file(const char *from, const char *to)
{
    uint8_t *data = NULL;
    size_t len = 0;
    assert_int_equal(ts_file_read(from, 1 << 20, &data, &len), TS_OK);
    assert_int_equal(ts_file_write_atomic(to, data, len, 0600), TS_OK);
    OPENSSL_clear_free(data, len);
}

/* --- cases ------------------------------------------------------------------------------------ */

static void test_empty_gives_defaults(void **state)
{
    ds_fx *fx = *state;
    ts_datastore *ds = NULL;
    uint64_t port = 0;
    size_t count = 0;

    expect_open_fails(fx, fx->ks.ks, TS_ERR_NOT_FOUND, "no datastore");
    assert_int_equal(ts_datastore_open_or_defaults(fx->state, fx->ks.ks, &ds), TS_OK);
    assert_int_equal(ts_datastore_get_uint(ds, TS_DS_MQTT_PORT, &port), TS_OK);
    assert_int_equal(port, 8883);
    assert_int_equal(ts_datastore_version(ds), 0);
    const ts_datastore_default *d = ts_datastore_defaults(&count);
    assert_true(count > 0 && d != NULL);
    ts_datastore_free(ds);
}

static void test_commit_and_reopen(void **state)
{
    ds_fx *fx = *state;
    ts_datastore *ds = NULL;
    ts_datastore_txn *txn = NULL;
    const char *text = NULL;
    const uint8_t *value = NULL;
    size_t len = 0;
    ts_datastore_type type = TS_DATASTORE_BYTES;
    uint64_t n = 0;
    static const uint8_t raw[] = {0x00, 0xff, 0x10};

    assert_int_equal(ts_datastore_open_or_defaults(fx->state, fx->ks.ks, &ds), TS_OK);
    assert_int_equal(ts_datastore_begin(ds, &txn), TS_OK);
    put_text(txn, TS_DS_SERVER_URL, URL);
    put_text(txn, TS_DS_TRUST_ROOTS, "-----BEGIN CERTIFICATE-----\n");
    assert_int_equal(ts_datastore_append(txn, TS_DS_TRUST_ROOTS, (const uint8_t *)"MIIB\n", 5),
                     TS_OK);
    assert_int_equal(
        ts_datastore_put(txn, TS_DS_REENROLL_DAYS, TS_DATASTORE_UINT, (const uint8_t *)"14", 2),
        TS_OK);
    assert_int_equal(ts_datastore_put(txn, "blob", TS_DATASTORE_BYTES, raw, sizeof raw), TS_OK);
    assert_int_equal(ts_datastore_commit(txn), TS_OK);
    assert_int_equal(ts_datastore_generation(ds), 1);
    assert_int_equal(ts_datastore_source(ds), TS_DATASTORE_STORED);
    ts_datastore_free(ds);
    assert_int_equal(counter(fx), 1);

    assert_int_equal(ts_datastore_open(fx->state, fx->ks.ks, &ds), TS_OK);
    assert_int_equal(ts_datastore_generation(ds), 1);
    assert_int_equal(ts_datastore_version(ds), TS_DATASTORE_FORMAT_VERSION);
    assert_int_equal(ts_datastore_get_text(ds, TS_DS_SERVER_URL, &text), TS_OK);
    assert_string_equal(text, URL);
    assert_int_equal(ts_datastore_get_text(ds, TS_DS_TRUST_ROOTS, &text), TS_OK);
    assert_string_equal(text, "-----BEGIN CERTIFICATE-----\nMIIB\n");
    assert_int_equal(ts_datastore_get_uint(ds, TS_DS_REENROLL_DAYS, &n), TS_OK);
    assert_int_equal(n, 14);
    assert_int_equal(ts_datastore_get(ds, "blob", &value, &len, &type), TS_OK);
    assert_int_equal(type, TS_DATASTORE_BYTES);
    assert_int_equal(len, sizeof raw);
    assert_memory_equal(value, raw, sizeof raw);
    assert_int_equal(ts_datastore_get_text(ds, "blob", &text), TS_ERR_WRONG_TYPE);
    assert_int_equal(ts_datastore_get_uint(ds, TS_DS_SERVER_URL, &n), TS_ERR_WRONG_TYPE);
    assert_int_equal(ts_datastore_get(ds, "nope", &value, &len, NULL), TS_ERR_NOT_FOUND);
    assert_string_equal(ts_datastore_name_at(ds, 0), "blob");
    assert_null(ts_datastore_name_at(ds, ts_datastore_count(ds)));

    /* A second generation goes to the other slot; the first stays until the third. */
    assert_int_equal(ts_datastore_begin(ds, &txn), TS_OK);
    assert_int_equal(ts_datastore_delete(txn, "blob"), TS_OK);
    assert_int_equal(ts_datastore_delete(txn, "blob"), TS_ERR_NOT_FOUND);
    assert_int_equal(ts_datastore_commit(txn), TS_OK);
    assert_int_equal(ts_datastore_generation(ds), 2);
    assert_int_equal(ts_datastore_get(ds, "blob", &value, &len, NULL), TS_ERR_NOT_FOUND);
    ts_datastore_free(ds);
    char a[1200], b[1200];
    slot_path(fx, 'a', a, sizeof a);
    slot_path(fx, 'b', b, sizeof b);
    assert_int_equal(access(a, F_OK), 0);
    assert_int_equal(access(b, F_OK), 0);
    assert_int_equal(counter(fx), 2);
}

static void test_transaction_rules(void **state)
{
    ds_fx *fx = *state;
    ts_datastore *ds = commit_one(fx, URL, "8883");
    ts_datastore_txn *txn = NULL, *second = NULL;
    static const uint8_t bad_utf8[] = {'a', 0xc3};
    const char *text = NULL;

    assert_int_equal(ts_datastore_begin(ds, &txn), TS_OK);
    assert_int_equal(ts_datastore_begin(ds, &second), TS_ERR_STATE);
    assert_null(second);
    assert_int_equal(ts_datastore_put(txn, "Bad.Name", TS_DATASTORE_TEXT, (const uint8_t *)"x", 1),
                     TS_ERR_INVALID);
    assert_int_equal(ts_datastore_put(txn, "9lives", TS_DATASTORE_TEXT, (const uint8_t *)"x", 1),
                     TS_ERR_INVALID);
    assert_int_equal(ts_datastore_put(txn, "n", TS_DATASTORE_UINT, (const uint8_t *)"012", 3),
                     TS_ERR_INVALID);
    assert_int_equal(
        ts_datastore_put(txn, "n", TS_DATASTORE_UINT, (const uint8_t *)"18446744073709551616", 20),
        TS_ERR_INVALID);
    assert_int_equal(ts_datastore_put(txn, "t", TS_DATASTORE_TEXT, bad_utf8, sizeof bad_utf8),
                     TS_ERR_INVALID);
    assert_int_equal(ts_datastore_put(txn, "t", TS_DATASTORE_TEXT, (const uint8_t *)"a\0b", 3),
                     TS_ERR_INVALID);
    assert_int_equal(ts_datastore_append(txn, TS_DS_MQTT_PORT, (const uint8_t *)"1", 1),
                     TS_ERR_WRONG_TYPE);
    assert_int_equal(ts_datastore_append(txn, "absent", (const uint8_t *)"1", 1), TS_ERR_NOT_FOUND);
    uint8_t *big = OPENSSL_zalloc(TS_DATASTORE_VALUE_MAX + 1);
    assert_non_null(big);
    assert_int_equal(
        ts_datastore_put(txn, "big", TS_DATASTORE_BYTES, big, TS_DATASTORE_VALUE_MAX + 1),
        TS_ERR_LIMIT);
    OPENSSL_free(big);
    /* Aborting changes nothing. */
    put_text(txn, TS_DS_SERVER_URL, "https://other.example");
    ts_datastore_abort(txn);
    assert_int_equal(ts_datastore_get_text(ds, TS_DS_SERVER_URL, &text), TS_OK);
    assert_string_equal(text, URL);

    /* A text value that ends mid-character after its chunks is refused at commit. */
    assert_int_equal(ts_datastore_begin(ds, &txn), TS_OK);
    put_text(txn, "t", "a");
    assert_int_equal(ts_datastore_append(txn, "t", bad_utf8 + 1, 1), TS_OK);
    assert_int_equal(ts_datastore_commit(txn), TS_ERR_INVALID);
    assert_int_equal(ts_datastore_generation(ds), 1);
    ts_datastore_free(ds);
    assert_int_equal(counter(fx), 1);
}

static void test_foreign_refused(void **state)
{
    ds_fx *fx = *state;
    ts_keystore *other = NULL;
    ts_datastore_free(commit_one(fx, URL, "8883"));
    assert_int_equal(ks_fixture_create_other(&fx->ks, "other", &other), TS_OK);
    expect_open_fails(fx, other, TS_ERR_FOREIGN, "another key store");
    ts_keystore_free(other);
}

/* Flips one byte at offset (negative: from the end) of a slot file. */
static void flip(const ds_fx *fx, char slot, long offset)
{
    char path[1200];
    uint8_t *data = NULL;
    size_t len = 0;
    slot_path(fx, slot, path, sizeof path);
    assert_int_equal(ts_file_read(path, 1 << 20, &data, &len), TS_OK);
    size_t at = offset >= 0 ? (size_t)offset : len - (size_t)(-offset);
    data[at] ^= 0x01;
    assert_int_equal(ts_file_write_atomic(path, data, len, 0600), TS_OK);
    OPENSSL_clear_free(data, len);
}

static long find_in_slot(const ds_fx *fx, char slot, const char *needle)
{
    char path[1200];
    uint8_t *data = NULL;
    size_t len = 0;
    long at = -1;
    slot_path(fx, slot, path, sizeof path);
    assert_int_equal(ts_file_read(path, 1 << 20, &data, &len), TS_OK);
    for (size_t i = 0; i + strlen(needle) <= len && at < 0; i++) {
        if (memcmp(data + i, needle, strlen(needle)) == 0) {
            at = (long)i;
        }
    }
    OPENSSL_clear_free(data, len);
    assert_true(at >= 0);
    return at;
}

static void test_edited_refused(void **state)
{
    ds_fx *fx = *state;
    ts_datastore_free(commit_one(fx, URL, "8883")); /* generation 1, slot b */

    long at = find_in_slot(fx, 'b', "tessera.example");
    flip(fx, 'b', at);
    expect_open_fails(fx, fx->ks.ks, TS_ERR_AUTH, "MAC does not verify");
    flip(fx, 'b', at);
    flip(fx, 'b', -1); /* the MAC itself */
    expect_open_fails(fx, fx->ks.ks, TS_ERR_AUTH, "MAC does not verify");
    flip(fx, 'b', -1);
    flip(fx, 'b', 0); /* the outer tag */
    expect_open_fails(fx, fx->ks.ks, TS_ERR_CORRUPT, "corrupt");
    flip(fx, 'b', 0);

    /* The newest generation edited, the older one alone is behind the counter: still refused,
     * with the edit named. */
    ts_datastore_free(commit_one(fx, URL, "1883")); /* generation 2, slot a */
    flip(fx, 'a', find_in_slot(fx, 'a', "883"));
    expect_open_fails(fx, fx->ks.ks, TS_ERR_AUTH, "datastore-a.der");
}

static void test_rollback_refused(void **state)
{
    ds_fx *fx = *state;
    char a[1200], b[1200], saved_a[1300], saved_b[1300];
    slot_path(fx, 'a', a, sizeof a);
    slot_path(fx, 'b', b, sizeof b);
    snprintf(saved_a, sizeof saved_a, "%s/../saved-a", fx->state);
    snprintf(saved_b, sizeof saved_b, "%s/../saved-b", fx->state);

    ts_datastore_free(commit_one(fx, URL, "1")); /* 1 in b */
    ts_datastore_free(commit_one(fx, URL, "2")); /* 2 in a */
    copy_file(a, saved_a);
    copy_file(b, saved_b);
    ts_datastore_free(commit_one(fx, URL, "3")); /* 3 in b */
    ts_datastore_free(commit_one(fx, URL, "4")); /* 4 in a */

    /* The whole directory as it was at generation 2. */
    copy_file(saved_a, a);
    copy_file(saved_b, b);
    expect_open_fails(fx, fx->ks.ks, TS_ERR_ROLLBACK, "older copy");
    /* Only the older slot left. */
    assert_int_equal(unlink(a), 0);
    expect_open_fails(fx, fx->ks.ks, TS_ERR_ROLLBACK, "generation 1");
    /* Both removed. */
    assert_int_equal(unlink(b), 0);
    expect_open_fails(fx, fx->ks.ks, TS_ERR_NOT_FOUND, "were removed");

    /* A commit from the defaults goes above the counter, and then opens. */
    ts_datastore *ds = commit_one(fx, URL, "5");
    assert_int_equal(ts_datastore_generation(ds), 5);
    ts_datastore_free(ds);
    assert_int_equal(ts_datastore_open(fx->state, fx->ks.ks, &ds), TS_OK);
    assert_int_equal(ts_datastore_generation(ds), 5);
    ts_datastore_free(ds);
}

static void test_swapped_slots_refused(void **state)
{
    ds_fx *fx = *state;
    char a[1200], b[1200];
    slot_path(fx, 'a', a, sizeof a);
    slot_path(fx, 'b', b, sizeof b);
    ts_datastore_free(commit_one(fx, URL, "1"));
    assert_int_equal(rename(b, a), 0);
    expect_open_fails(fx, fx->ks.ks, TS_ERR_CORRUPT, "cannot be in this slot");
}

/* A crash after the rename, before the counter: the new file is the commit. */
static void test_roll_forward(void **state)
{
    ds_fx *fx = *state;
    ts_datastore *ds = commit_one(fx, URL, "1");
    ts_ds_content *next = NULL;
    uint8_t key[TS_DS_MAC_KEY_LEN];
    uint8_t uid[TS_KEYSTORE_UID_LEN];
    uint8_t *der = NULL;
    size_t der_len = 0;
    char a[1200];
    const char *text = NULL;

    assert_int_equal(ts_keystore_uid(fx->ks.ks, uid), TS_OK);
    assert_int_equal(ts_ds_mac_key(fx->ks.ks, uid, key), TS_OK);
    next = ts_ds_content_new();
    assert_non_null(next);
    memcpy(next->uid, uid, sizeof uid);
    next->generation = 2;
    assert_int_equal(ts_ds_content_set(next, TS_DS_SERVER_URL, TS_DATASTORE_TEXT,
                                       (const uint8_t *)"https://two", 11),
                     TS_OK);
    assert_int_equal(ts_ds_encode(next, key, &der, &der_len), TS_OK);
    slot_path(fx, 'a', a, sizeof a);
    assert_int_equal(ts_file_write_atomic(a, der, der_len, 0600), TS_OK);
    OPENSSL_cleanse(key, sizeof key);
    OPENSSL_free(der);
    ts_ds_content_free(next);
    assert_int_equal(counter(fx), 1);

    /* The handle read generation 1 before: its commit now conflicts. */
    ts_datastore_txn *txn = NULL;
    assert_int_equal(ts_datastore_begin(ds, &txn), TS_OK);
    put_text(txn, TS_DS_SERVER_URL, "https://late");
    assert_int_equal(ts_datastore_commit(txn), TS_ERR_CONFLICT);
    assert_int_equal(ts_datastore_generation(ds), 1);
    ts_datastore_free(ds);

    assert_int_equal(ts_datastore_open(fx->state, fx->ks.ks, &ds), TS_OK);
    assert_int_equal(ts_datastore_generation(ds), 2);
    assert_int_equal(ts_datastore_get_text(ds, TS_DS_SERVER_URL, &text), TS_OK);
    assert_string_equal(text, "https://two");
    ts_datastore_free(ds);
    assert_int_equal(counter(fx), 2);
}

static void test_leftover_discarded(void **state)
{
    ds_fx *fx = *state;
    char tmp[1300];
    ts_datastore *ds = NULL;
    ts_datastore_free(commit_one(fx, URL, "1"));
    snprintf(tmp, sizeof tmp, "%s/datastore-a.der.tmp-0011223344556677", fx->state);
    assert_int_equal(ts_file_write_atomic(tmp, (const uint8_t *)"half", 4, 0600), TS_OK);
    assert_int_equal(ts_datastore_open(fx->state, fx->ks.ks, &ds), TS_OK);
    assert_int_equal(ts_datastore_generation(ds), 1);
    assert_int_not_equal(access(tmp, F_OK), 0);
    ts_datastore_free(ds);
}

/* SoftHSM2: the MAC key comes from a token's C_DeriveKey. */
static void test_pkcs11_round(void **state)
{
    ds_fx *fx = *state;
    ts_datastore *ds = commit_one(fx, URL, "8883");
    const char *text = NULL;
    ts_datastore_free(ds);
    assert_int_equal(ks_fixture_reopen(&fx->ks), TS_OK);
    assert_int_equal(ts_datastore_open(fx->state, fx->ks.ks, &ds), TS_OK);
    assert_int_equal(ts_datastore_get_text(ds, TS_DS_SERVER_URL, &text), TS_OK);
    assert_string_equal(text, URL);
    ts_datastore_free(ds);
    flip(fx, 'b', find_in_slot(fx, 'b', "8883"));
    expect_open_fails(fx, fx->ks.ks, TS_ERR_AUTH, "MAC does not verify");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_empty_gives_defaults, setup_soft, teardown),
        cmocka_unit_test_setup_teardown(test_commit_and_reopen, setup_soft, teardown),
        cmocka_unit_test_setup_teardown(test_transaction_rules, setup_soft, teardown),
        cmocka_unit_test_setup_teardown(test_foreign_refused, setup_soft, teardown),
        cmocka_unit_test_setup_teardown(test_edited_refused, setup_soft, teardown),
        cmocka_unit_test_setup_teardown(test_rollback_refused, setup_soft, teardown),
        cmocka_unit_test_setup_teardown(test_swapped_slots_refused, setup_soft, teardown),
        cmocka_unit_test_setup_teardown(test_roll_forward, setup_soft, teardown),
        cmocka_unit_test_setup_teardown(test_leftover_discarded, setup_soft, teardown),
        cmocka_unit_test_setup_teardown(test_pkcs11_round, setup_pkcs11, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
