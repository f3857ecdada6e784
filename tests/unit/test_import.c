/*
 * Encrypted key import end to end: one table of imports (good, tampered, replayed, foreign,
 * wrongly signed or addressed, label taken) run on a soft: store and on a SoftHSM2 token, each
 * refusal with its exact code and the store as it was; and the undo when the counter cannot be
 * raised. The format and the seal without a store are in test_import_blob.c.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "common/error_internal.h"
#include "keystore/import_internal.h"
#include "test_support.h"

static EVP_PKEY *ec_key(const char *curve)
{
    EVP_PKEY *pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", curve);
    assert_non_null(pkey);
    return pkey;
}

/* --- two stores of one backend -------------------------------------------------------------- */

typedef struct flow {
    char dir[1024];
    char uri_a[2048], uri_b[2048];
    ts_keystore *a, *b;
    uint8_t uid_a[TS_KEYSTORE_UID_LEN], uid_b[TS_KEYSTORE_UID_LEN];
    EVP_PKEY *recv, *recv384, *b_recv;       /* public keys of store keys */
    EVP_PKEY *sender, *sender384, *stranger; /* in-memory signers */
    EVP_PKEY *stranger256, *stranger384;     /* keys no store holds */
    EVP_PKEY *signer, *signer384;            /* keys of store b through the provider */
    EVP_PKEY *signer_pub, *signer384_pub;
    ts_ks_uri *uri; /* store a driven through its backend alone */
    const ts_ks_backend *backend;
    void *backend_state;
    uint8_t *der; /* blobs of the test */
    uint8_t *last;
} flow;

/* Store a holds recv (P-256), recv384 (P-384) and a data object; store b holds its own recv. */
static void flow_open(flow *fl, const char *backend)
{
    memset(fl, 0, sizeof *fl);
    assert_int_equal(ts_test_tmpdir(fl->dir, sizeof fl->dir), 0);
    if (strcmp(backend, "soft") == 0) {
        snprintf(fl->uri_a, sizeof fl->uri_a, "soft:%s/a?pin-value=1234", fl->dir);
        snprintf(fl->uri_b, sizeof fl->uri_b, "soft:%s/b?pin-value=1234", fl->dir);
    } else {
        assert_int_equal(ts_test_softhsm_setup(fl->dir), 0);
        snprintf(fl->uri_a, sizeof fl->uri_a, "pkcs11:token=import-a?module-path=%s&pin-value=1234",
                 TS_SOFTHSM_MODULE);
        snprintf(fl->uri_b, sizeof fl->uri_b, "pkcs11:token=import-b?module-path=%s&pin-value=1234",
                 TS_SOFTHSM_MODULE);
    }
    /*
     * SoftHSM2 offers one free slot per initialisation of the module: each store is created
     * while no other is open, then both are opened.
     */
    if (ts_keystore_create(fl->uri_a, "so-pin-1234", &fl->a) != TS_OK) {
        fail_msg("cannot create a %s store: %s", backend, ts_error_message());
    }
    ts_keystore_free(fl->a);
    if (ts_keystore_create(fl->uri_b, "so-pin-1234", &fl->b) != TS_OK) {
        fail_msg("cannot create a second %s store: %s", backend, ts_error_message());
    }
    ts_keystore_free(fl->b);
    if (ts_keystore_open(fl->uri_a, &fl->a) != TS_OK ||
        ts_keystore_open(fl->uri_b, &fl->b) != TS_OK) {
        fail_msg("cannot open the %s stores: %s", backend, ts_error_message());
    }
    assert_int_equal(ts_keystore_generate(fl->a, "recv", TS_CURVE_P256), TS_OK);
    assert_int_equal(ts_keystore_generate(fl->a, "recv384", TS_CURVE_P384), TS_OK);
    assert_int_equal(ts_keystore_object_put(fl->a, "data1", (const uint8_t *)"x", 1, 0), TS_OK);
    assert_int_equal(ts_keystore_generate(fl->b, "recv", TS_CURVE_P256), TS_OK);
    assert_int_equal(ts_keystore_generate(fl->b, "signer", TS_CURVE_P256), TS_OK);
    assert_int_equal(ts_keystore_generate(fl->b, "signer384", TS_CURVE_P384), TS_OK);
    if (ts_keystore_evp_pkey(fl->b, "signer", &fl->signer) != TS_OK ||
        ts_keystore_evp_pkey(fl->b, "signer384", &fl->signer384) != TS_OK) {
        fail_msg("%s: no provider key: %s", backend, ts_error_message());
    }
    assert_int_equal(ts_keystore_public_key(fl->b, "signer", &fl->signer_pub), TS_OK);
    assert_int_equal(ts_keystore_public_key(fl->b, "signer384", &fl->signer384_pub), TS_OK);
    assert_int_equal(ts_keystore_public_key(fl->a, "recv", &fl->recv), TS_OK);
    assert_int_equal(ts_keystore_public_key(fl->a, "recv384", &fl->recv384), TS_OK);
    assert_int_equal(ts_keystore_public_key(fl->b, "recv", &fl->b_recv), TS_OK);
    assert_int_equal(ts_keystore_uid(fl->a, fl->uid_a), TS_OK);
    assert_int_equal(ts_keystore_uid(fl->b, fl->uid_b), TS_OK);
    assert_memory_not_equal(fl->uid_a, fl->uid_b, TS_KEYSTORE_UID_LEN);
    fl->sender = ec_key("P-256");
    fl->sender384 = ec_key("P-384");
    fl->stranger = ec_key("P-256");
    fl->stranger256 = ec_key("P-256");
    fl->stranger384 = ec_key("P-384");
}

static void flow_close(flow *fl)
{
    if (fl->backend_state != NULL) {
        fl->backend->close(fl->backend_state);
    }
    ts_ks_uri_free(fl->uri);
    OPENSSL_free(fl->der);
    OPENSSL_free(fl->last);
    ts_keystore_free(fl->a);
    ts_keystore_free(fl->b);
    EVP_PKEY *keys[] = {fl->recv,      fl->recv384,   fl->b_recv,      fl->sender,
                        fl->sender384, fl->stranger,  fl->stranger256, fl->stranger384,
                        fl->signer,    fl->signer384, fl->signer_pub,  fl->signer384_pub};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        EVP_PKEY_free(keys[i]);
    }
    ts_test_rmtree(fl->dir);
    memset(fl, 0, sizeof *fl);
}

/* Each flow test gets a fresh fixture, closed even when the test fails half-way, so that the
 * next test initialises SoftHSM2 with its own configuration. */
static int flow_setup(void **state)
{
    *state = calloc(1, sizeof(flow));
    return *state != NULL ? 0 : -1;
}

static int flow_teardown(void **state)
{
    flow_close(*state);
    free(*state);
    return 0;
}

/* --- the table of imports ------------------------------------------------------------------- */

enum { BY_SENDER, BY_SENDER384, BY_STRANGER, BY_STORE, BY_STORE384, BY_STORE_PUB, BY_STORE384_PUB };
enum { TO_RECV, TO_RECV384, TO_B_RECV, TO_STRANGER256, TO_STRANGER384 };
enum { UID_A, UID_B };
enum {
    T_NONE,
    T_AGAIN,     /* the previous case's blob once more */
    T_SIGNATURE, /* a flipped bit in each region */
    T_WRAPPED,
    T_EPH,
    T_PUB,
    T_UID,
    T_COUNTER,
    T_LABEL,
    T_OTHER_PUB, /* publicPoint of another key, signed by the sender */
};

typedef struct flow_case {
    const char *name;
    int by, trust, to, uid;
    const char *recipient_label;
    uint64_t counter;
    const char *label;
    int tamper;
    ts_err want;
} flow_case;

#define GOOD BY_SENDER, BY_SENDER, TO_RECV, UID_A, "recv"

static const flow_case flow_cases[] = {
    {"good P-256 import", GOOD, 10, "imp1", T_NONE, TS_OK},
    {"the same blob again", GOOD, 10, "imp1", T_AGAIN, TS_ERR_REPLAY},
    {"an older counter", GOOD, 5, "imp-old", T_NONE, TS_ERR_REPLAY},
    {"the same counter", GOOD, 10, "imp-eq", T_NONE, TS_ERR_REPLAY},
    {"tampered signature", GOOD, 11, "t-sig", T_SIGNATURE, TS_ERR_AUTH},
    {"tampered wrapped key", GOOD, 11, "t-wrap", T_WRAPPED, TS_ERR_AUTH},
    {"tampered ephemeral point", GOOD, 11, "t-eph", T_EPH, TS_ERR_CORRUPT},
    {"tampered public point", GOOD, 11, "t-pub", T_PUB, TS_ERR_CORRUPT},
    {"tampered UID", GOOD, 11, "t-uid", T_UID, TS_ERR_AUTH},
    {"tampered counter", GOOD, 11, "t-counter", T_COUNTER, TS_ERR_AUTH},
    {"tampered label", GOOD, 11, "t-label", T_LABEL, TS_ERR_AUTH},
    {"public point of another key", GOOD, 11, "t-other", T_OTHER_PUB, TS_ERR_AUTH},
    {"signed by another key", BY_STRANGER, BY_SENDER, TO_RECV, UID_A, "recv", 11, "s1", T_NONE,
     TS_ERR_AUTH},
    {"checked with another key", BY_SENDER, BY_SENDER384, TO_RECV, UID_A, "recv", 11, "s2", T_NONE,
     TS_ERR_AUTH},
    {"sealed for another store", BY_SENDER, BY_SENDER, TO_B_RECV, UID_B, "recv", 11, "f1", T_NONE,
     TS_ERR_FOREIGN},
    {"another store's UID", BY_SENDER, BY_SENDER, TO_RECV, UID_B, "recv", 11, "f2", T_NONE,
     TS_ERR_FOREIGN},
    {"sealed to another key", BY_SENDER, BY_SENDER, TO_STRANGER256, UID_A, "recv", 11, "w1", T_NONE,
     TS_ERR_AUTH},
    {"sealed to a key on another curve", BY_SENDER, BY_SENDER, TO_STRANGER384, UID_A, "recv", 11,
     "w2", T_NONE, TS_ERR_FOREIGN},
    {"no such recipient key", BY_SENDER, BY_SENDER, TO_RECV, UID_A, "missing", 11, "w3", T_NONE,
     TS_ERR_NOT_FOUND},
    {"label taken by a key", GOOD, 11, "recv384", T_NONE, TS_ERR_EXISTS},
    {"label taken by the recipient key", GOOD, 11, "recv", T_NONE, TS_ERR_EXISTS},
    {"label taken by a data object", GOOD, 11, "data1", T_NONE, TS_ERR_EXISTS},
    {"label taken by an import", GOOD, 11, "imp1", T_NONE, TS_ERR_EXISTS},
    {"label taken by the import counter", GOOD, 11, TS_IMPORT_COUNTER, T_NONE, TS_ERR_EXISTS},
    {"good P-384 import", BY_SENDER384, BY_SENDER384, TO_RECV384, UID_A, "recv384", 20, "imp384",
     T_NONE, TS_OK},
    {"signed by a store's key through the provider", BY_STORE, BY_STORE_PUB, TO_RECV, UID_A, "recv",
     30, "imp-prov", T_NONE, TS_OK},
    {"signed by a store's P-384 key through the provider", BY_STORE384, BY_STORE384_PUB, TO_RECV,
     UID_A, "recv", 31, "imp-prov384", T_NONE, TS_OK},
    {"a store's key, checked with another", BY_STORE, BY_STORE384_PUB, TO_RECV, UID_A, "recv", 32,
     "imp-prov2", T_NONE, TS_ERR_AUTH},
    {"good after a gap", GOOD, 1000, "imp1000", T_NONE, TS_OK},
    {"good with the last counter", GOOD, UINT64_MAX, "imp-max", T_NONE, TS_OK},
    {"nothing after the last counter", GOOD, UINT64_MAX, "imp-after", T_NONE, TS_ERR_REPLAY},
};

static EVP_PKEY *flow_key(const flow *fl, int which)
{
    EVP_PKEY *keys[] = {fl->sender,    fl->sender384,  fl->stranger,     fl->signer,
                        fl->signer384, fl->signer_pub, fl->signer384_pub};
    return keys[which];
}

static EVP_PKEY *flow_recipient(const flow *fl, int which)
{
    EVP_PKEY *keys[] = {fl->recv, fl->recv384, fl->b_recv, fl->stranger256, fl->stranger384};
    return keys[which];
}

static uint8_t *find(uint8_t *hay, size_t hay_len, const void *needle, size_t len)
{
    for (size_t i = 0; i + len <= hay_len; i++) {
        if (memcmp(hay + i, needle, len) == 0) {
            return hay + i;
        }
    }
    fail_msg("a region of the blob was not found");
    return NULL;
}

/* Changes one region of a good blob in place, or seals it again with another public point. */
static void tamper(const flow_case *c, const flow *fl, uint8_t **der, size_t *len)
{
    ts_import_blob *blob = NULL;
    const ts_import_fields *f;
    char rlabel[2 + TS_LABEL_MAX];
    uint8_t *p;

    assert_int_equal(ts_import_blob_parse(*der, *len, &blob), TS_OK);
    f = &blob->fields;
    switch (c->tamper) {
    case T_SIGNATURE:
        (*der)[*len - 1] ^= 0x01; /* the last byte of s */
        break;
    case T_WRAPPED:
        find(*der, *len, f->wrapped, f->wrapped_len)[f->wrapped_len / 2] ^= 0x10;
        break;
    case T_EPH:
        find(*der, *len, f->ephemeral_point, f->ephemeral_point_len)[40] ^= 0x01;
        break;
    case T_PUB:
        find(*der, *len, f->public_point, f->public_point_len)[40] ^= 0x01;
        break;
    case T_UID:
        find(*der, *len, f->uid, sizeof f->uid)[3] ^= 0x80;
        break;
    case T_COUNTER:
        /* the counter INTEGER follows the recipientLabel UTF8String */
        rlabel[0] = 0x0c;
        rlabel[1] = (char)strlen(f->recipient_label);
        memcpy(rlabel + 2, f->recipient_label, strlen(f->recipient_label));
        p = find(*der, *len, rlabel, 2 + strlen(f->recipient_label)) + 2 +
            strlen(f->recipient_label);
        assert_int_equal(p[0], 0x02);
        p[1 + p[1]] ^= 0x02;
        break;
    case T_LABEL:
        find(*der, *len, f->label, strlen(f->label))[0] ^= 0x01;
        break;
    case T_OTHER_PUB: {
        ts_import_fields other = *f;
        assert_int_equal(ts_import_point_of(fl->stranger256, f->curve, other.public_point,
                                            &other.public_point_len),
                         TS_OK);
        OPENSSL_free(*der);
        assert_int_equal(ts_import_blob_encode(&other, fl->sender, der, len), TS_OK);
        break;
    }
    default:
        break;
    }
    ts_import_blob_free(blob);
}

static int same_listing(ts_keystore *ks, const ts_keystore_entry *before, size_t n)
{
    ts_keystore_entry *now = NULL;
    size_t count = 0;
    int same;

    assert_int_equal(ts_keystore_list(ks, &now, &count), TS_OK);
    same = count == n;
    for (size_t i = 0; same && i < n; i++) {
        same = strcmp(now[i].label, before[i].label) == 0 && now[i].kind == before[i].kind &&
               now[i].curve == before[i].curve && now[i].flags == before[i].flags &&
               now[i].size == before[i].size && now[i].value == before[i].value;
    }
    OPENSSL_free(now);
    return same;
}

/* The imported key signs inside the store; the signature verifies with the key that was sent. */
static void check_imported(ts_keystore *ks, const char *label, EVP_PKEY *key)
{
    uint8_t digest[32], sig[TS_SIGNATURE_MAX];
    size_t sig_len = sizeof sig;
    unsigned dlen = 0;
    EVP_PKEY *pub = NULL;
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(key, NULL);

    assert_int_equal(EVP_Digest(label, strlen(label), digest, &dlen, EVP_sha256(), NULL), 1);
    assert_int_equal(ts_keystore_sign_digest(ks, label, digest, sizeof digest, sig, &sig_len),
                     TS_OK);
    assert_int_equal(EVP_PKEY_verify_init(ctx), 1);
    assert_int_equal(EVP_PKEY_verify(ctx, sig, sig_len, digest, sizeof digest), 1);
    assert_int_equal(ts_keystore_public_key(ks, label, &pub), TS_OK);
    assert_int_equal(EVP_PKEY_eq(pub, key), 1);
    EVP_PKEY_free(pub);
    EVP_PKEY_CTX_free(ctx);
}

static void run_flow(flow *fl, const char *backend)
{
    size_t last_len = 0;

    flow_open(fl, backend);
    for (size_t i = 0; i < sizeof flow_cases / sizeof flow_cases[0]; i++) {
        const flow_case *c = &flow_cases[i];
        EVP_PKEY *to = flow_recipient(fl, c->to), *key = NULL;
        char curve[32], label[TS_LABEL_MAX + 1] = "unset";
        ts_keystore_entry *before = NULL;
        size_t n = 0, len = 0;
        uint64_t counter = 0, counter_after = 0;
        assert_int_equal(EVP_PKEY_get_utf8_string_param(to, OSSL_PKEY_PARAM_GROUP_NAME, curve,
                                                        sizeof curve, NULL),
                         1);
        key = ec_key(curve);
        if (c->tamper == T_AGAIN) {
            fl->der = OPENSSL_memdup(fl->last, last_len);
            len = last_len;
        } else if (ts_keystore_import_seal(
                       flow_key(fl, c->by), to, c->uid == UID_A ? fl->uid_a : fl->uid_b,
                       c->recipient_label, c->counter, c->label, key, &fl->der, &len) != TS_OK) {
            fail_msg("%s: %s: seal: %s", backend, c->name, ts_error_message());
        }
        tamper(c, fl, &fl->der, &len);
        assert_int_equal(ts_keystore_list(fl->a, &before, &n), TS_OK);
        assert_int_equal(ts_keystore_counter_get(fl->a, TS_IMPORT_COUNTER, &counter), TS_OK);

        ts_err rv = ts_keystore_import(fl->a, fl->der, len, flow_key(fl, c->trust), label);
        if (rv != c->want) {
            fail_msg("%s: %s: got %s (%s), want %s", backend, c->name, ts_err_name(rv),
                     ts_error_message(), ts_err_name(c->want));
        }
        assert_int_equal(ts_keystore_counter_get(fl->a, TS_IMPORT_COUNTER, &counter_after), TS_OK);
        if (c->want == TS_OK) {
            assert_string_equal(label, c->label);
            assert_true(counter_after == c->counter);
            check_imported(fl->a, c->label, key);
        } else {
            assert_string_equal(label, "");
            assert_true(counter_after == counter);
            if (!same_listing(fl->a, before, n)) {
                fail_msg("%s: %s: the store changed", backend, c->name);
            }
        }
        OPENSSL_free(fl->last);
        fl->last = fl->der;
        fl->der = NULL;
        last_len = len;
        OPENSSL_free(before);
        EVP_PKEY_free(key);
    }
}

static void test_flow_soft(void **state)
{
    run_flow(*state, "soft");
}

static void test_flow_pkcs11(void **state)
{
    run_flow(*state, "pkcs11");
}

/* --- a counter that cannot be raised -------------------------------------------------------- */

static ts_err fail_counter_update(void *state, const char *label, uint64_t *value, int increment)
{
    return ts_error_set(TS_ERR_IO, "counter '%s' cannot be written (test)", label);
}

static ts_err fail_remove(void *state, const char *label)
{
    return ts_error_set(TS_ERR_IO, "'%s' cannot be removed (test)", label);
}

/* When the counter cannot be raised the imported key is taken out again. */
static void run_undo(flow *fl, const char *backend)
{
    ts_ks_backend failing;
    EVP_PKEY *key = NULL;
    size_t len = 0;
    uint64_t counter = 0;
    ts_curve curve;
    char label[TS_LABEL_MAX + 1];

    flow_open(fl, backend);
    key = ec_key("P-256");
    assert_int_equal(ts_keystore_import_seal(fl->sender, fl->recv, fl->uid_a, "recv", 3, "undo1",
                                             key, &fl->der, &len),
                     TS_OK);
    EVP_PKEY_free(key);
    /* the backend alone, as the front drives it, with one of its calls made to fail */
    ts_keystore_free(fl->a);
    fl->a = NULL;
    assert_int_equal(ts_ks_uri_parse(fl->uri_a, &fl->uri), TS_OK);
    fl->backend = fl->uri->scheme == TS_KS_SOFT ? &ts_ks_soft_backend : &ts_ks_pkcs11_backend;
    assert_int_equal(fl->backend->open(fl->uri, &fl->backend_state), TS_OK);
    void *st = fl->backend_state;
    failing = *fl->backend;
    failing.counter_update = fail_counter_update;

    assert_int_equal(ts_ks_import(&failing, st, fl->der, len, fl->sender, label), TS_ERR_IO);
    assert_non_null(strstr(ts_error_message(), "not imported"));
    assert_string_equal(label, "");
    assert_int_equal(fl->backend->key_curve(st, "undo1", &curve), TS_ERR_NOT_FOUND);
    assert_int_equal(fl->backend->counter_get(st, TS_IMPORT_COUNTER, &counter), TS_OK);
    assert_true(counter == 0);

    /* if the key cannot be taken out either, the message says so */
    failing.remove = fail_remove;
    assert_int_equal(ts_ks_import(&failing, st, fl->der, len, fl->sender, label), TS_ERR_IO);
    assert_non_null(strstr(ts_error_message(), "removing"));
    assert_int_equal(fl->backend->remove(st, "undo1"), TS_OK);

    /* the same blob then imports */
    assert_int_equal(ts_ks_import(fl->backend, st, fl->der, len, fl->sender, label), TS_OK);
    assert_string_equal(label, "undo1");
    assert_int_equal(fl->backend->key_curve(st, "undo1", &curve), TS_OK);
    assert_int_equal(fl->backend->counter_get(st, TS_IMPORT_COUNTER, &counter), TS_OK);
    assert_true(counter == 3);
}

static void test_undo_soft(void **state)
{
    run_undo(*state, "soft");
}

static void test_undo_pkcs11(void **state)
{
    run_undo(*state, "pkcs11");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_flow_soft, flow_setup, flow_teardown),
        cmocka_unit_test_setup_teardown(test_flow_pkcs11, flow_setup, flow_teardown),
        cmocka_unit_test_setup_teardown(test_undo_soft, flow_setup, flow_teardown),
        cmocka_unit_test_setup_teardown(test_undo_pkcs11, flow_setup, flow_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
