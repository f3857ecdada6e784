/*
 * Key backup for the key ceremony (ts_keystore_generate_ex / backup_key / restore_key), on both
 * backends and across them: a backup made on a SoftHSM2 token restores into soft: and the other
 * way round. Negative cases assert the exact error and that nothing was left in the store.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>

#include "keystore/keystore_internal.h"
#include "keystore/p11_internal.h"
#include "ks_check.h"
#include "ks_fixture.h"
#include "tessera/keystore.h"

void ks_check_fail(const char *file, int line, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    print_error("%s\n", msg);
    _fail(file, line);
    abort();
}

#define EXPECT(call, want)                                                                         \
    do {                                                                                           \
        ts_err got_ = (call);                                                                      \
        if (got_ != (want)) {                                                                      \
            print_error("%s: %s, want %s (%s)\n", #call, ts_err_name(got_), ts_err_name(want),     \
                        ts_error_message());                                                       \
            fail();                                                                                \
        }                                                                                          \
    } while (0)
#define OK(call) EXPECT(call, TS_OK)

typedef struct backup {
    uint8_t kek[32];
    uint8_t *wrapped;
    size_t wrapped_len;
    EVP_PKEY *pub;
} backup;

static void backup_free(backup *b)
{
    OPENSSL_cleanse(b->kek, sizeof b->kek);
    OPENSSL_free(b->wrapped);
    EVP_PKEY_free(b->pub);
    memset(b, 0, sizeof *b);
}

/* Generates label for backup on ks and backs it up into b. */
static void make_backup(ts_keystore *ks, const char *label, ts_curve curve, backup *b)
{
    memset(b, 0, sizeof *b);
    OK(ts_keystore_generate_ex(ks, label, curve, TS_KEY_BACKUP));
    OK(ts_keystore_public_key(ks, label, &b->pub));
    OK(ts_keystore_backup_key(ks, label, b->kek, &b->wrapped, &b->wrapped_len));
    /* RFC 5649: whole 64-bit blocks, one more than the padded PKCS#8 key. */
    assert_true(b->wrapped_len >= 24 && b->wrapped_len % 8 == 0);
    uint8_t acc = 0;
    for (size_t i = 0; i < sizeof b->kek; i++) {
        acc |= b->kek[i];
    }
    assert_true(acc != 0);
}

/* The key under label signs, and its signature verifies under pub. */
static void assert_signs_as(ts_keystore *ks, const char *label, EVP_PKEY *pub)
{
    uint8_t digest[32], sig[TS_SIGNATURE_MAX];
    size_t sig_len = sizeof sig;
    EVP_PKEY *got = NULL;

    memset(digest, 0x5a, sizeof digest);
    OK(ts_keystore_public_key(ks, label, &got));
    assert_int_equal(EVP_PKEY_eq(got, pub), 1);
    EVP_PKEY_free(got);
    OK(ts_keystore_sign_digest(ks, label, digest, sizeof digest, sig, &sig_len));
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pub, NULL);
    assert_non_null(ctx);
    assert_int_equal(EVP_PKEY_verify_init(ctx), 1);
    assert_int_equal(EVP_PKEY_verify(ctx, sig, sig_len, digest, sizeof digest), 1);
    EVP_PKEY_CTX_free(ctx);
}

/* The flags the listing shows for a key; -1 when it is not listed. */
static int listed_flags(ts_keystore *ks, const char *label)
{
    ts_keystore_entry *e = NULL;
    size_t n = 0;
    int flags = -1;
    OK(ts_keystore_list(ks, &e, &n));
    for (size_t i = 0; i < n; i++) {
        if (e[i].kind == TS_KIND_KEY && strcmp(e[i].label, label) == 0) {
            flags = (int)e[i].flags;
        }
    }
    OPENSSL_free(e);
    return flags;
}

static size_t listed_count(ts_keystore *ks)
{
    ts_keystore_entry *e = NULL;
    size_t n = 0;
    OK(ts_keystore_list(ks, &e, &n));
    OPENSSL_free(e);
    return n;
}

/* --- fixtures -------------------------------------------------------------------------------- */

static int setup_soft(void **state)
{
    ks_fixture *fx = calloc(1, sizeof *fx);
    if (fx == NULL || ks_fixture_init(fx, KS_SOFT) != 0) {
        free(fx);
        return -1;
    }
    *state = fx;
    return 0;
}

static int setup_pkcs11(void **state)
{
    ks_fixture *fx = calloc(1, sizeof *fx);
    if (fx == NULL || ks_fixture_init(fx, KS_PKCS11) != 0) {
        free(fx);
        return -1;
    }
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    ks_fixture *fx = *state;
    ks_fixture_cleanup(fx);
    free(fx);
    return 0;
}

/* A soft: store beside the fixture's store (in its directory), for restores across backends. */
static ts_keystore *soft_beside(const ks_fixture *fx, const char *name)
{
    char uri[2048];
    ts_keystore *ks = NULL;
    snprintf(uri, sizeof uri, "soft:%s/%s?pin-value=%s", fx->tmp, name, KS_PIN);
    OK(ts_keystore_create(uri, NULL, &ks));
    return ks;
}

/* --- cases on each backend ------------------------------------------------------------------- */

static void round_trip(void **state)
{
    ks_fixture *fx = *state;
    static const ts_curve curves[] = {TS_CURVE_P256, TS_CURVE_P384};
    static const char *const labels[] = {"root-256", "root-384"};

    for (size_t c = 0; c < 2; c++) {
        backup b;
        char restored[32];
        make_backup(fx->ks, labels[c], curves[c], &b);
        assert_int_equal(listed_flags(fx->ks, labels[c]), (int)TS_KEY_BACKUP);

        /* Into the same store under another label, as a key that cannot be backed up again. */
        snprintf(restored, sizeof restored, "%s-copy", labels[c]);
        OK(ts_keystore_restore_key(fx->ks, restored, b.kek, b.wrapped, b.wrapped_len, b.pub, 0));
        assert_signs_as(fx->ks, restored, b.pub);
        assert_int_equal(listed_flags(fx->ks, restored), 0);
        uint8_t kek[32];
        uint8_t *w = NULL;
        size_t wl = 0;
        EXPECT(ts_keystore_backup_key(fx->ks, restored, kek, &w, &wl), TS_ERR_POLICY);
        assert_null(w);

        /* After the original is gone (offline root), with the backup flag kept. */
        OK(ts_keystore_delete(fx->ks, labels[c]));
        OK(ts_keystore_restore_key(fx->ks, labels[c], b.kek, b.wrapped, b.wrapped_len, b.pub,
                                   TS_KEY_BACKUP));
        assert_signs_as(fx->ks, labels[c], b.pub);
        assert_int_equal(listed_flags(fx->ks, labels[c]), (int)TS_KEY_BACKUP);
        OK(ks_fixture_reopen(fx));
        assert_int_equal(listed_flags(fx->ks, labels[c]), (int)TS_KEY_BACKUP);
        assert_signs_as(fx->ks, labels[c], b.pub);

        /* Each backup has a KEK of its own. */
        backup again;
        memset(&again, 0, sizeof again);
        OK(ts_keystore_backup_key(fx->ks, labels[c], again.kek, &again.wrapped,
                                  &again.wrapped_len));
        assert_memory_not_equal(again.kek, b.kek, sizeof b.kek);
        backup_free(&again);
        backup_free(&b);
    }
}

static void not_for_backup(void **state)
{
    ks_fixture *fx = *state;
    uint8_t kek[32];
    static uint8_t untouched[8];
    uint8_t *wrapped = untouched;
    size_t wrapped_len = sizeof untouched;

    OK(ts_keystore_generate(fx->ks, "plain", TS_CURVE_P256));
    assert_int_equal(listed_flags(fx->ks, "plain"), 0);
    memset(kek, 0xA5, sizeof kek);
    EXPECT(ts_keystore_backup_key(fx->ks, "plain", kek, &wrapped, &wrapped_len), TS_ERR_POLICY);
    assert_non_null(strstr(ts_error_message(), "key 'plain' was not made for backup"));
    assert_null(wrapped);
    assert_int_equal(wrapped_len, 0);
    static const uint8_t zero[32];
    assert_memory_equal(kek, zero, sizeof kek);

    EXPECT(ts_keystore_backup_key(fx->ks, "absent", kek, &wrapped, &wrapped_len), TS_ERR_NOT_FOUND);
    EXPECT(ts_keystore_generate_ex(fx->ks, "odd", TS_CURVE_P256, 1U << 7), TS_ERR_INVALID);
    OK(ts_keystore_object_put(fx->ks, "data", (const uint8_t *)"x", 1, 0));
    EXPECT(ts_keystore_backup_key(fx->ks, "data", kek, &wrapped, &wrapped_len), TS_ERR_WRONG_TYPE);
}

static void wrong_kek(void **state)
{
    ks_fixture *fx = *state;
    backup b;

    make_backup(fx->ks, "root", TS_CURVE_P384, &b);
    size_t before = listed_count(fx->ks);
    for (size_t i = 0; i < sizeof b.kek; i += 7) {
        uint8_t kek[32];
        memcpy(kek, b.kek, sizeof kek);
        kek[i] ^= 0x01;
        EXPECT(ts_keystore_restore_key(fx->ks, "back", kek, b.wrapped, b.wrapped_len, b.pub, 0),
               TS_ERR_AUTH);
    }
    uint8_t zero[32] = {0};
    EXPECT(ts_keystore_restore_key(fx->ks, "back", zero, b.wrapped, b.wrapped_len, b.pub, 0),
           TS_ERR_AUTH);
    assert_int_equal(listed_count(fx->ks), before);
    EVP_PKEY *none = NULL;
    EXPECT(ts_keystore_public_key(fx->ks, "back", &none), TS_ERR_NOT_FOUND);
    backup_free(&b);
}

static void altered_blob(void **state)
{
    ks_fixture *fx = *state;
    backup b;

    make_backup(fx->ks, "root", TS_CURVE_P256, &b);
    size_t before = listed_count(fx->ks);
    uint8_t *copy = OPENSSL_memdup(b.wrapped, b.wrapped_len);
    assert_non_null(copy);
    /* Every byte, one bit flipped: RFC 5649's integrity check covers all of them. */
    for (size_t i = 0; i < b.wrapped_len; i++) {
        copy[i] ^= 0x80;
        EXPECT(ts_keystore_restore_key(fx->ks, "back", b.kek, copy, b.wrapped_len, b.pub, 0),
               TS_ERR_AUTH);
        copy[i] ^= 0x80;
    }
    /* Cut short by a block, or by a byte. */
    EXPECT(ts_keystore_restore_key(fx->ks, "back", b.kek, copy, b.wrapped_len - 8, b.pub, 0),
           TS_ERR_AUTH);
    EXPECT(ts_keystore_restore_key(fx->ks, "back", b.kek, copy, b.wrapped_len - 1, b.pub, 0),
           TS_ERR_AUTH);
    EXPECT(ts_keystore_restore_key(fx->ks, "back", b.kek, copy, 0, b.pub, 0), TS_ERR_INVALID);
    assert_int_equal(listed_count(fx->ks), before);
    OPENSSL_free(copy);
    backup_free(&b);
}

static void wrong_public_key(void **state)
{
    ks_fixture *fx = *state;
    backup b;
    EVP_PKEY *other = EVP_EC_gen("prime256v1");
    EVP_PKEY *other384 = EVP_EC_gen("secp384r1");

    assert_non_null(other);
    assert_non_null(other384);
    make_backup(fx->ks, "root", TS_CURVE_P256, &b);
    size_t before = listed_count(fx->ks);
    EXPECT(ts_keystore_restore_key(fx->ks, "back", b.kek, b.wrapped, b.wrapped_len, other, 0),
           TS_ERR_AUTH);
    EXPECT(ts_keystore_restore_key(fx->ks, "back", b.kek, b.wrapped, b.wrapped_len, other384, 0),
           TS_ERR_AUTH);
    assert_int_equal(listed_count(fx->ks), before);
    /* A taken label is refused before anything is unwrapped. */
    EXPECT(ts_keystore_restore_key(fx->ks, "root", b.kek, b.wrapped, b.wrapped_len, b.pub, 0),
           TS_ERR_EXISTS);
    EXPECT(ts_keystore_restore_key(fx->ks, "back", b.kek, b.wrapped, b.wrapped_len, b.pub, 4),
           TS_ERR_INVALID);
    assert_int_equal(listed_count(fx->ks), before);
    EVP_PKEY_free(other);
    EVP_PKEY_free(other384);
    backup_free(&b);
}

/* --- across backends ---------------------------------------------------------------------------
 */

static void cross_restore(void **state)
{
    ks_fixture *fx = *state; /* the pkcs11 fixture */
    ts_keystore *soft = soft_beside(fx, "soft-side");
    backup from_token, from_soft;

    /* SoftHSM2's C_WrapKey into soft:. */
    make_backup(fx->ks, "root", TS_CURVE_P384, &from_token);
    OK(ts_keystore_restore_key(soft, "root", from_token.kek, from_token.wrapped,
                               from_token.wrapped_len, from_token.pub, TS_KEY_BACKUP));
    assert_signs_as(soft, "root", from_token.pub);

    /* soft:'s wrap into SoftHSM2's C_UnwrapKey. */
    make_backup(soft, "issuing", TS_CURVE_P256, &from_soft);
    OK(ts_keystore_restore_key(fx->ks, "issuing", from_soft.kek, from_soft.wrapped,
                               from_soft.wrapped_len, from_soft.pub, 0));
    assert_signs_as(fx->ks, "issuing", from_soft.pub);

    /* And a key restored in soft: backs up again for the token. */
    backup round;
    memset(&round, 0, sizeof round);
    OK(ts_keystore_backup_key(soft, "root", round.kek, &round.wrapped, &round.wrapped_len));
    OK(ts_keystore_restore_key(fx->ks, "root-again", round.kek, round.wrapped, round.wrapped_len,
                               from_token.pub, 0));
    assert_signs_as(fx->ks, "root-again", from_token.pub);

    /* A wrong KEK is refused the same way on both. */
    from_soft.kek[0] ^= 1;
    EXPECT(ts_keystore_restore_key(fx->ks, "x", from_soft.kek, from_soft.wrapped,
                                   from_soft.wrapped_len, from_soft.pub, 0),
           TS_ERR_AUTH);
    EXPECT(ts_keystore_restore_key(soft, "x", from_soft.kek, from_soft.wrapped,
                                   from_soft.wrapped_len, from_soft.pub, 0),
           TS_ERR_AUTH);
    backup_free(&round);
    backup_free(&from_token);
    backup_free(&from_soft);
    ts_keystore_free(soft);
}

/* --- PKCS#11 attributes, read through the module ------------------------------------------------
 */

/* The private key object labelled label on the fixture's token. */
static CK_OBJECT_HANDLE private_key(p11_store *st, const char *label)
{
    CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
    CK_ATTRIBUTE tmpl[] = {{CKA_CLASS, &cls, sizeof cls},
                           {CKA_LABEL, (void *)label, strlen(label)}};
    CK_OBJECT_HANDLE h[2] = {CK_INVALID_HANDLE, CK_INVALID_HANDLE};
    CK_ULONG n = 0;
    assert_int_equal(st->f->C_FindObjectsInit(st->session, tmpl, 2), CKR_OK);
    assert_int_equal(st->f->C_FindObjects(st->session, h, 2, &n), CKR_OK);
    st->f->C_FindObjectsFinal(st->session);
    assert_int_equal(n, 1);
    return h[0];
}

static int bool_attr(p11_store *st, CK_OBJECT_HANDLE h, CK_ATTRIBUTE_TYPE type)
{
    CK_BBOOL v = CK_FALSE;
    CK_ATTRIBUTE a = {type, &v, sizeof v};
    assert_int_equal(st->f->C_GetAttributeValue(st->session, h, &a, 1), CKR_OK);
    return v == CK_TRUE;
}

static void p11_attributes(void **state)
{
    ks_fixture *fx = *state;
    backup b;
    ts_ks_uri *uri = NULL;
    void *raw = NULL;

    make_backup(fx->ks, "root", TS_CURVE_P384, &b);
    OK(ts_keystore_generate(fx->ks, "plain", TS_CURVE_P256));
    OK(ts_keystore_restore_key(fx->ks, "restored", b.kek, b.wrapped, b.wrapped_len, b.pub, 0));
    OK(ts_keystore_restore_key(fx->ks, "restored-b", b.kek, b.wrapped, b.wrapped_len, b.pub,
                               TS_KEY_BACKUP));

    /* A second session of the backend's own, to ask the module directly. */
    OK(ts_ks_uri_parse(fx->uri, &uri));
    OK(ts_ks_pkcs11_backend.open(uri, &raw));
    ts_ks_uri_free(uri);
    p11_store *st = raw;

    CK_OBJECT_HANDLE root = private_key(st, "root");
    assert_true(bool_attr(st, root, CKA_SENSITIVE));
    assert_true(bool_attr(st, root, CKA_EXTRACTABLE));
    assert_true(bool_attr(st, root, CKA_PRIVATE));
    assert_true(bool_attr(st, root, CKA_TOKEN));
    /* Never readable in clear: the value is refused as sensitive. */
    uint8_t value[64];
    CK_ATTRIBUTE a = {CKA_VALUE, value, sizeof value};
    assert_int_equal(st->f->C_GetAttributeValue(st->session, root, &a, 1), CKR_ATTRIBUTE_SENSITIVE);

    CK_OBJECT_HANDLE plain = private_key(st, "plain");
    assert_true(bool_attr(st, plain, CKA_SENSITIVE));
    assert_false(bool_attr(st, plain, CKA_EXTRACTABLE));

    CK_OBJECT_HANDLE restored = private_key(st, "restored");
    assert_true(bool_attr(st, restored, CKA_SENSITIVE));
    assert_false(bool_attr(st, restored, CKA_EXTRACTABLE));
    assert_true(bool_attr(st, restored, CKA_TOKEN));

    CK_OBJECT_HANDLE restored_b = private_key(st, "restored-b");
    assert_true(bool_attr(st, restored_b, CKA_SENSITIVE));
    assert_true(bool_attr(st, restored_b, CKA_EXTRACTABLE));

    /* No session key (the KEKs) is left behind. */
    CK_OBJECT_CLASS secret = CKO_SECRET_KEY;
    CK_ATTRIBUTE find = {CKA_CLASS, &secret, sizeof secret};
    CK_OBJECT_HANDLE h[4];
    CK_ULONG n = 0;
    assert_int_equal(st->f->C_FindObjectsInit(st->session, &find, 1), CKR_OK);
    assert_int_equal(st->f->C_FindObjects(st->session, h, 4, &n), CKR_OK);
    st->f->C_FindObjectsFinal(st->session);
    assert_int_equal(n, 0);

    ts_ks_pkcs11_backend.close(raw);
    backup_free(&b);
}

int main(void)
{
#define ON(backend, fn)                                                                            \
    {                                                                                              \
#backend "/" #fn, fn, setup_##backend, teardown, NULL                                      \
    }
    const struct CMUnitTest tests[] = {
        ON(soft, round_trip),         ON(soft, not_for_backup),   ON(soft, wrong_kek),
        ON(soft, altered_blob),       ON(soft, wrong_public_key), ON(pkcs11, round_trip),
        ON(pkcs11, not_for_backup),   ON(pkcs11, wrong_kek),      ON(pkcs11, altered_blob),
        ON(pkcs11, wrong_public_key), ON(pkcs11, cross_restore),  ON(pkcs11, p11_attributes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
