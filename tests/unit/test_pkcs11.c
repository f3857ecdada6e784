/*
 * The PKCS#11 backend on SoftHSM2: creating and opening tokens, PINs, modules, keys, ECDSA and
 * ECDH checked with OpenSSL, the attributes of private keys, several stores at once.
 * Objects and counters: test_pkcs11_objects.c; import: test_pkcs11_import.c.
 */
#define _GNU_SOURCE /* dladdr */
#include <dlfcn.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "p11_test_util.h"

static int setup(void **state)
{
    p11_fx *fx = calloc(1, sizeof *fx);
    if (fx == NULL || p11_fx_setup(fx) != 0) {
        free(fx);
        return -1;
    }
    *state = fx;
    return 0;
}

static int setup_env(void **state)
{
    p11_fx *fx = calloc(1, sizeof *fx);
    if (fx == NULL || p11_fx_env(fx) != 0) {
        free(fx);
        return -1;
    }
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    p11_fx *fx = *state;
    p11_fx_teardown(fx);
    free(fx);
    return 0;
}

static void test_create_and_reopen(void **state)
{
    p11_fx *fx = *state;
    uint8_t uid[TS_KEYSTORE_UID_LEN], again[TS_KEYSTORE_UID_LEN], zero[TS_KEYSTORE_UID_LEN] = {0};
    EVP_PKEY *before = NULL, *after = NULL;

    assert_string_equal(ts_keystore_backend(fx->ks), "pkcs11");
    assert_null(strstr(ts_keystore_uri(fx->ks), P11_PIN));
    assert_non_null(strstr(ts_keystore_uri(fx->ks), "pin-value=***"));
    assert_int_equal(ts_keystore_uid(fx->ks, uid), TS_OK);
    assert_memory_not_equal(uid, zero, sizeof uid);
    assert_int_equal(ts_keystore_generate(fx->ks, "k1", TS_CURVE_P256), TS_OK);
    assert_int_equal(ts_keystore_public_key(fx->ks, "k1", &before), TS_OK);

    ts_keystore_free(fx->ks);
    fx->ks = NULL;
    assert_int_equal(ts_keystore_open(fx->uri, &fx->ks), TS_OK);
    assert_int_equal(ts_keystore_uid(fx->ks, again), TS_OK);
    assert_memory_equal(uid, again, sizeof uid);
    assert_int_equal(ts_keystore_public_key(fx->ks, "k1", &after), TS_OK);
    assert_true(p11_test_same_public(before, after));
    EVP_PKEY_free(before);
    EVP_PKEY_free(after);

    /* The label is taken now. */
    ts_keystore *other = NULL;
    assert_int_equal(ts_keystore_create(fx->uri, P11_SO_PIN, &other), TS_ERR_EXISTS);
    assert_null(other);
    assert_non_null(strstr(ts_error_message(), P11_TOKEN));
}

static void test_create_second_token(void **state)
{
    p11_fx *fx = *state;
    char uri[PATH_MAX * 2];
    ts_keystore *other = NULL;
    uint8_t a[TS_KEYSTORE_UID_LEN], b[TS_KEYSTORE_UID_LEN];

    p11_test_uri(uri, sizeof uri, "second", "4321");
    assert_int_equal(ts_keystore_create(uri, P11_SO_PIN, &other), TS_OK);
    assert_int_equal(ts_keystore_uid(fx->ks, a), TS_OK);
    assert_int_equal(ts_keystore_uid(other, b), TS_OK);
    assert_memory_not_equal(a, b, sizeof a);
    /* Each token keeps its own objects, both stores open at once. */
    assert_int_equal(ts_keystore_generate(other, "k", TS_CURVE_P256), TS_OK);
    assert_int_equal(ts_keystore_generate(fx->ks, "k", TS_CURVE_P384), TS_OK);
    ts_curve curve;
    EVP_PKEY *pub = NULL;
    assert_int_equal(ts_keystore_public_key(other, "k", &pub), TS_OK);
    assert_int_equal(ts_curve_of_pkey(pub, &curve), TS_OK);
    assert_int_equal(curve, TS_CURVE_P256);
    EVP_PKEY_free(pub);
    ts_keystore_free(other);
    /* The first store still works after the other closed. */
    assert_int_equal(ts_keystore_public_key(fx->ks, "k", &pub), TS_OK);
    EVP_PKEY_free(pub);
}

static void test_create_needs(void **state)
{
    p11_fx *fx = *state;
    char uri[PATH_MAX * 2];
    ts_keystore *ks = NULL;

    snprintf(uri, sizeof uri, "pkcs11:serial=1?module-path=%s&pin-value=1234", p11_test_module());
    assert_int_equal(ts_keystore_create(uri, P11_SO_PIN, &ks), TS_ERR_INVALID);
    assert_non_null(strstr(ts_error_message(), "token="));
    p11_test_uri(uri, sizeof uri, "new", NULL);
    assert_int_equal(ts_keystore_create(uri, P11_SO_PIN, &ks), TS_ERR_PIN);
    p11_test_uri(uri, sizeof uri, "new", "1234");
    assert_int_equal(ts_keystore_create(uri, NULL, &ks), TS_ERR_PIN);
    assert_non_null(strstr(ts_error_message(), "SO"));
    /* slot-id of the initialised token: never initialised again. */
    p11_store *st = p11_test_state(fx->uri);
    assert_non_null(st);
    snprintf(uri, sizeof uri, "pkcs11:token=new;slot-id=%lu?module-path=%s&pin-value=1234",
             (unsigned long)st->slot, p11_test_module());
    ts_ks_pkcs11_backend.close(st);
    assert_int_equal(ts_keystore_create(uri, P11_SO_PIN, &ks), TS_ERR_EXISTS);
    assert_null(ks);
    assert_int_equal(ts_keystore_open(fx->uri, &ks), TS_OK);
    ts_keystore_free(ks);
}

static void test_wrong_pin(void **state)
{
    p11_fx *fx = *state;
    char uri[PATH_MAX * 2];
    ts_keystore *ks = NULL;

    p11_test_uri(uri, sizeof uri, P11_TOKEN, "9999");
    /* Another store of this process is logged in: the PIN must still be right. */
    assert_int_equal(ts_keystore_open(uri, &ks), TS_ERR_PIN);
    assert_null(ks);
    ts_keystore_free(fx->ks);
    fx->ks = NULL;
    assert_int_equal(ts_keystore_open(uri, &ks), TS_ERR_PIN);
    assert_non_null(strstr(ts_error_message(), "CKR_PIN_INCORRECT"));
    assert_null(ks);
    p11_test_uri(uri, sizeof uri, P11_TOKEN, NULL);
    assert_int_equal(ts_keystore_open(uri, &ks), TS_ERR_PIN);
    assert_non_null(strstr(ts_error_message(), "TESSERA_PIN"));
    setenv("TESSERA_PIN", P11_PIN, 1);
    assert_int_equal(ts_keystore_open(uri, &ks), TS_OK);
    unsetenv("TESSERA_PIN");
    ts_keystore_free(ks);
}

static void test_missing_module(void **state)
{
    ts_keystore *ks = NULL;
    Dl_info info;
    char uri[PATH_MAX * 2];
    (void)state;

    assert_int_equal(
        ts_keystore_open("pkcs11:token=x?module-path=/nonexistent/libnone.so&pin-value=1", &ks),
        TS_ERR_MODULE);
    assert_non_null(strstr(ts_error_message(), "/nonexistent/libnone.so"));
    assert_null(ks);
    /* Not a shared library at all. */
    assert_int_equal(ts_keystore_open("pkcs11:token=x?module-path=/etc/passwd&pin-value=1", &ks),
                     TS_ERR_MODULE);
    /* A shared library that is not a PKCS#11 module. */
    assert_int_not_equal(dladdr((void *)EVP_PKEY_new, &info), 0);
    snprintf(uri, sizeof uri, "pkcs11:token=x?module-path=%s&pin-value=1", info.dli_fname);
    assert_int_equal(ts_keystore_open(uri, &ks), TS_ERR_MODULE);
    assert_non_null(strstr(ts_error_message(), "C_GetFunctionList"));
}

static void test_unknown_token(void **state)
{
    p11_fx *fx = *state;
    char uri[PATH_MAX * 2];
    ts_keystore *ks = NULL;

    p11_test_uri(uri, sizeof uri, "nope", P11_PIN);
    assert_int_equal(ts_keystore_open(uri, &ks), TS_ERR_NO_TOKEN);
    assert_non_null(strstr(ts_error_message(), "nope"));
    assert_non_null(strstr(ts_error_message(), P11_TOKEN)); /* what is there */
    snprintf(uri, sizeof uri, "pkcs11:token=%s;slot-id=424242?module-path=%s&pin-value=%s",
             P11_TOKEN, p11_test_module(), P11_PIN);
    assert_int_equal(ts_keystore_open(uri, &ks), TS_ERR_NO_TOKEN);
    snprintf(uri, sizeof uri, "pkcs11:token=%s;serial=0000?module-path=%s&pin-value=%s", P11_TOKEN,
             p11_test_module(), P11_PIN);
    assert_int_equal(ts_keystore_open(uri, &ks), TS_ERR_NO_TOKEN);
    assert_null(ks);
    (void)fx;
}

static void test_open_by_serial_and_slot(void **state)
{
    p11_fx *fx = *state;
    char uri[PATH_MAX * 2];
    ts_keystore *ks = NULL;
    p11_store *st = p11_test_state(fx->uri);

    assert_non_null(st);
    snprintf(uri, sizeof uri,
             "pkcs11:serial=%s;manufacturer=SoftHSM%%20project;slot-id=%lu?module-path=%s&"
             "pin-value=%s",
             st->serial, (unsigned long)st->slot, p11_test_module(), P11_PIN);
    ts_ks_pkcs11_backend.close(st);
    assert_int_equal(ts_keystore_open(uri, &ks), TS_OK);
    ts_keystore_free(ks);
}

static void sign_and_verify(ts_keystore *ks, const char *label, ts_curve curve)
{
    EVP_PKEY *pub = NULL;
    uint8_t digest[48], sig[TS_SIGNATURE_MAX];
    size_t sig_len = sizeof sig;
    ts_curve got;

    assert_int_equal(ts_keystore_generate(ks, label, curve), TS_OK);
    assert_int_equal(ts_keystore_generate(ks, label, curve), TS_ERR_EXISTS);
    assert_int_equal(ts_keystore_public_key(ks, label, &pub), TS_OK);
    assert_int_equal(ts_curve_of_pkey(pub, &got), TS_OK);
    assert_int_equal(got, curve);
    for (int i = 0; i < 5; i++) {
        size_t dlen = curve == TS_CURVE_P384 ? 48 : 32;
        assert_int_equal(ts_keystore_random(ks, digest, dlen), TS_OK);
        sig_len = sizeof sig;
        assert_int_equal(ts_keystore_sign_digest(ks, label, digest, dlen, sig, &sig_len), TS_OK);
        assert_true(p11_test_verify(pub, digest, dlen, sig, sig_len));
        /* Tamper: one flipped bit of the digest no longer verifies. */
        digest[0] ^= 1;
        assert_false(p11_test_verify(pub, digest, dlen, sig, sig_len));
    }
    sig_len = 8;
    assert_int_equal(ts_keystore_sign_digest(ks, label, digest, 32, sig, &sig_len), TS_ERR_INVALID);
    EVP_PKEY_free(pub);
}

static void test_keys_sign(void **state)
{
    p11_fx *fx = *state;
    uint8_t digest[32] = {1}, sig[TS_SIGNATURE_MAX];
    size_t sig_len = sizeof sig;

    sign_and_verify(fx->ks, "p256", TS_CURVE_P256);
    sign_and_verify(fx->ks, "p384", TS_CURVE_P384);
    assert_int_equal(ts_keystore_sign_digest(fx->ks, "missing", digest, 32, sig, &sig_len),
                     TS_ERR_NOT_FOUND);
    assert_non_null(strstr(ts_error_message(), "missing"));
    /* After a reopen the handles are looked up again. */
    ts_keystore_free(fx->ks);
    assert_int_equal(ts_keystore_open(fx->uri, &fx->ks), TS_OK);
    sig_len = sizeof sig;
    assert_int_equal(ts_keystore_sign_digest(fx->ks, "p384", digest, 32, sig, &sig_len), TS_OK);
}

static void test_stale_handle(void **state)
{
    p11_fx *fx = *state;
    uint8_t digest[32] = {2}, sig[TS_SIGNATURE_MAX];
    size_t sig_len = sizeof sig;
    ts_keystore *other = NULL;
    EVP_PKEY *pub = NULL;

    assert_int_equal(ts_keystore_generate(fx->ks, "k", TS_CURVE_P256), TS_OK);
    assert_int_equal(ts_keystore_sign_digest(fx->ks, "k", digest, 32, sig, &sig_len), TS_OK);
    /* Another store deletes the key and makes a new one under the label. */
    assert_int_equal(ts_keystore_open(fx->uri, &other), TS_OK);
    assert_int_equal(ts_keystore_delete(other, "k"), TS_OK);
    assert_int_equal(ts_keystore_generate(other, "k", TS_CURVE_P256), TS_OK);
    assert_int_equal(ts_keystore_public_key(other, "k", &pub), TS_OK);
    sig_len = sizeof sig;
    assert_int_equal(ts_keystore_sign_digest(fx->ks, "k", digest, 32, sig, &sig_len), TS_OK);
    assert_true(p11_test_verify(pub, digest, 32, sig, sig_len));
    EVP_PKEY_free(pub);
    /* The other store's close does not log this one out: the private key still signs. */
    ts_keystore_free(other);
    sig_len = sizeof sig;
    assert_int_equal(ts_keystore_sign_digest(fx->ks, "k", digest, 32, sig, &sig_len), TS_OK);
    assert_int_equal(ts_keystore_object_put(fx->ks, "s", (const uint8_t *)"x", 1, TS_DATA_SECRET),
                     TS_OK);
}

static void test_derive(void **state)
{
    p11_fx *fx = *state;
    const ts_curve curves[] = {TS_CURVE_P256, TS_CURVE_P384};

    for (size_t i = 0; i < 2; i++) {
        const char *label = curves[i] == TS_CURVE_P256 ? "ecdh256" : "ecdh384";
        EVP_PKEY *peer = p11_test_ec_key(curves[i]), *pub = NULL, *wrong = NULL;
        uint8_t got[TS_SECRET_MAX], want[TS_SECRET_MAX];
        size_t got_len = sizeof got, want_len = sizeof want;

        assert_non_null(peer);
        assert_int_equal(ts_keystore_generate(fx->ks, label, curves[i]), TS_OK);
        assert_int_equal(ts_keystore_public_key(fx->ks, label, &pub), TS_OK);
        assert_int_equal(ts_keystore_derive(fx->ks, label, peer, got, &got_len), TS_OK);
        assert_int_equal(p11_test_ecdh(peer, pub, want, &want_len), 0);
        assert_int_equal(got_len, want_len);
        assert_memory_equal(got, want, got_len);
        /* A peer on the other curve is refused. */
        wrong = p11_test_ec_key(curves[1 - i]);
        got_len = sizeof got;
        assert_int_equal(ts_keystore_derive(fx->ks, label, wrong, got, &got_len), TS_ERR_INVALID);
        OPENSSL_cleanse(got, sizeof got);
        EVP_PKEY_free(peer);
        EVP_PKEY_free(pub);
        EVP_PKEY_free(wrong);
    }
    /* The secret's session object is gone again. */
    p11_store *st = p11_test_state(fx->uri);
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    assert_int_equal(p11_test_count(st, CKA_CLASS, &cls, sizeof cls), 0);
    ts_ks_pkcs11_backend.close(st);
}

static void test_private_key_attributes(void **state)
{
    p11_fx *fx = *state;
    p11_key_entry *key = NULL;
    uint8_t value[64];
    CK_ATTRIBUTE a = {CKA_VALUE, value, sizeof value};

    assert_int_equal(ts_keystore_generate(fx->ks, "guarded", TS_CURVE_P256), TS_OK);
    p11_store *st = p11_test_state(fx->uri);
    assert_non_null(st);
    assert_int_equal(p11_key_lookup(st, "guarded", &key), TS_OK);
    assert_int_equal(p11_test_bool(st, key->priv, CKA_TOKEN), 1);
    assert_int_equal(p11_test_bool(st, key->priv, CKA_PRIVATE), 1);
    assert_int_equal(p11_test_bool(st, key->priv, CKA_SENSITIVE), 1);
    assert_int_equal(p11_test_bool(st, key->priv, CKA_EXTRACTABLE), 0);
    assert_int_equal(p11_test_bool(st, key->priv, CKA_ALWAYS_SENSITIVE), 1);
    assert_int_equal(p11_test_bool(st, key->priv, CKA_NEVER_EXTRACTABLE), 1);
    assert_int_equal(p11_test_bool(st, key->priv, CKA_SIGN), 1);
    assert_int_equal(p11_test_bool(st, key->priv, CKA_DERIVE), 1);
    assert_int_equal(p11_test_bool(st, key->pub, CKA_TOKEN), 1);
    assert_int_equal(p11_test_bool(st, key->pub, CKA_VERIFY), 1);
    /* The token refuses to hand out the private value. */
    assert_int_equal(st->f->C_GetAttributeValue(st->session, key->priv, &a, 1),
                     CKR_ATTRIBUTE_SENSITIVE);
    /* Both halves share one CKA_ID. */
    uint8_t *id1 = NULL, *id2 = NULL;
    size_t l1 = 0, l2 = 0;
    assert_int_equal(p11_get_attr(st, key->priv, CKA_ID, &id1, &l1, 64), TS_OK);
    assert_int_equal(p11_get_attr(st, key->pub, CKA_ID, &id2, &l2, 64), TS_OK);
    assert_int_equal(l1, P11_ID_LEN);
    assert_int_equal(l1, l2);
    assert_memory_equal(id1, id2, l1);
    OPENSSL_free(id1);
    OPENSSL_free(id2);
    ts_ks_pkcs11_backend.close(st);
}

static void test_random(void **state)
{
    p11_fx *fx = *state;
    uint8_t a[100000], b[64];
    memset(a, 0, sizeof a);
    memset(b, 0, sizeof b);
    assert_int_equal(ts_keystore_random(fx->ks, a, sizeof a), TS_OK);
    assert_int_equal(ts_keystore_random(fx->ks, b, sizeof b), TS_OK);
    assert_memory_not_equal(a, b, sizeof b);
    assert_memory_not_equal(a + sizeof a - sizeof b, b, sizeof b);
}

static void test_uid_for_foreign_token(void **state)
{
    p11_fx *fx = *state;
    uint8_t first[TS_KEYSTORE_UID_LEN], second[TS_KEYSTORE_UID_LEN], third[TS_KEYSTORE_UID_LEN];
    CK_OBJECT_CLASS cls = CKO_DATA;
    CK_OBJECT_HANDLE h[4];
    CK_ULONG n = 0;
    CK_ATTRIBUTE tmpl[] = {{CKA_CLASS, &cls, sizeof cls},
                           {CKA_APPLICATION, P11_APP_UID, sizeof P11_APP_UID - 1}};

    assert_int_equal(ts_keystore_uid(fx->ks, first), TS_OK);
    ts_keystore_free(fx->ks);
    fx->ks = NULL;
    /* As if the token had been made by other tools: no UID object. */
    p11_store *st = p11_test_state(fx->uri);
    assert_int_equal(st->f->C_FindObjectsInit(st->session, tmpl, 2), CKR_OK);
    assert_int_equal(st->f->C_FindObjects(st->session, h, 4, &n), CKR_OK);
    st->f->C_FindObjectsFinal(st->session);
    assert_int_equal(n, 1);
    assert_int_equal(p11_test_bool(st, h[0], CKA_PRIVATE), 0);
    assert_int_equal(st->f->C_DestroyObject(st->session, h[0]), CKR_OK);
    ts_ks_pkcs11_backend.close(st);

    assert_int_equal(ts_keystore_open(fx->uri, &fx->ks), TS_OK);
    assert_int_equal(ts_keystore_uid(fx->ks, second), TS_OK);
    assert_memory_not_equal(first, second, sizeof first);
    ts_keystore_free(fx->ks);
    assert_int_equal(ts_keystore_open(fx->uri, &fx->ks), TS_OK);
    assert_int_equal(ts_keystore_uid(fx->ks, third), TS_OK);
    assert_memory_equal(second, third, sizeof second);
}

/* A store open in the parent while a forked child opens its own: the child initialises again. */
static void test_fork_child_opens(void **state)
{
    p11_fx *fx = *state;
    uint8_t digest[32] = {7}, sig[TS_SIGNATURE_MAX];
    size_t sig_len = sizeof sig;
    int status = 0;

    assert_int_equal(ts_keystore_generate(fx->ks, "k", TS_CURVE_P256), TS_OK);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        ts_keystore *ks = NULL;
        /* The inherited store refuses: its sessions belong to the parent. */
        int ok = ts_keystore_sign_digest(fx->ks, "k", digest, 32, sig, &sig_len) == TS_ERR_STATE;
        ok = ok && ts_keystore_open(fx->uri, &ks) == TS_OK &&
             ts_keystore_sign_digest(ks, "k", digest, 32, sig, &sig_len) == TS_OK;
        ts_keystore_free(ks);
        ts_keystore_free(fx->ks);
        _exit(ok ? 0 : 1);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    sig_len = sizeof sig;
    assert_int_equal(ts_keystore_sign_digest(fx->ks, "k", digest, 32, sig, &sig_len), TS_OK);
}

/* Another library of the process initialised the module first: it keeps it initialised. */
static void test_module_initialised_elsewhere(void **state)
{
    p11_fx *fx = *state;
    CK_FUNCTION_LIST_PTR f = NULL;
    CK_C_GetFunctionList get_list = NULL;
    CK_ULONG n = 0;
    void *dl = dlopen(p11_test_module(), RTLD_NOW | RTLD_LOCAL);

    assert_non_null(dl);
    *(void **)&get_list = dlsym(dl, "C_GetFunctionList");
    assert_non_null(get_list);
    assert_int_equal(get_list(&f), CKR_OK);
    assert_int_equal(f->C_Initialize(NULL), CKR_OK);

    p11_test_uri(fx->uri, sizeof fx->uri, P11_TOKEN, P11_PIN);
    assert_int_equal(ts_keystore_create(fx->uri, P11_SO_PIN, &fx->ks), TS_OK);
    assert_int_equal(ts_keystore_generate(fx->ks, "k", TS_CURVE_P256), TS_OK);
    ts_keystore_free(fx->ks);
    fx->ks = NULL;
    /* Not finalised behind the other library's back. */
    assert_int_equal(f->C_GetSlotList(CK_TRUE, NULL, &n), CKR_OK);
    assert_int_equal(f->C_Finalize(NULL), CKR_OK);
    dlclose(dl);
    /* And a store after it made its own initialisation again. */
    assert_int_equal(ts_keystore_open(fx->uri, &fx->ks), TS_OK);
}

static void test_ckr_mapping(void **state)
{
    (void)state;
    assert_int_equal(p11_ckr_code(CKR_PIN_INCORRECT), TS_ERR_PIN);
    assert_int_equal(p11_ckr_code(CKR_PIN_LOCKED), TS_ERR_PIN_LOCKED);
    assert_int_equal(p11_ckr_code(CKR_DEVICE_MEMORY), TS_ERR_FULL);
    assert_int_equal(p11_ckr_code(CKR_HOST_MEMORY), TS_ERR_NOMEM);
    assert_int_equal(p11_ckr_code(CKR_MECHANISM_INVALID), TS_ERR_UNSUPPORTED);
    assert_int_equal(p11_ckr_code(CKR_GENERAL_ERROR), TS_ERR_BACKEND);
    assert_string_equal(p11_ckr_name(CKR_PIN_LOCKED), "CKR_PIN_LOCKED");
    assert_string_equal(p11_ckr_name(0x8123), "CKR_0x00008123");
    assert_int_equal(p11_error(CKR_PIN_LOCKED, "C_Login"), TS_ERR_PIN_LOCKED);
    assert_non_null(strstr(ts_error_message(), "CKR_PIN_LOCKED"));
    assert_int_equal(p11_create_error(CKR_DEVICE_ERROR, 0, "C_CreateObject"), TS_ERR_FULL);
    assert_non_null(strstr(ts_error_message(), "no room for another object"));
    assert_non_null(strstr(ts_error_message(), "CKR_DEVICE_ERROR"));
    assert_int_equal(p11_create_error(CKR_OK, EFBIG, "C_CreateObject"), TS_ERR_FULL);
    assert_int_equal(p11_create_error(CKR_TEMPLATE_INCOMPLETE, 0, "x"), TS_ERR_BACKEND);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_create_and_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_create_second_token, setup, teardown),
        cmocka_unit_test_setup_teardown(test_create_needs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_pin, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_module, setup_env, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_token, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_by_serial_and_slot, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keys_sign, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stale_handle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_derive, setup, teardown),
        cmocka_unit_test_setup_teardown(test_private_key_attributes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_random, setup, teardown),
        cmocka_unit_test_setup_teardown(test_uid_for_foreign_token, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fork_child_opens, setup, teardown),
        cmocka_unit_test_setup_teardown(test_module_initialised_elsewhere, setup_env, teardown),
        cmocka_unit_test(test_ckr_mapping),
    };
    if (getenv("TS_TEST_FILTER") != NULL) {
        cmocka_set_test_filter(getenv("TS_TEST_FILTER"));
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
