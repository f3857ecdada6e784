/*
 * Helpers of the PKCS#11 backend's tests (test_pkcs11.c, test_pkcs11_objects.c,
 * test_pkcs11_import.c): a SoftHSM2 of the test's own, store URIs, direct access to the backend
 * state for checks through the module, and OpenSSL checks.
 */
#ifndef TS_TEST_P11_TEST_UTIL_H
#define TS_TEST_P11_TEST_UTIL_H

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>

#include "keystore/keystore_internal.h"
#include "keystore/p11_internal.h"
#include "test_support.h"

#define P11_PIN    "1234"
#define P11_SO_PIN "so-5678"
#define P11_TOKEN  "ts-p11"

typedef struct p11_fx {
    char tmp[PATH_MAX / 2];
    char uri[PATH_MAX * 2];
    ts_keystore *ks;
} p11_fx;

static inline const char *p11_test_module(void)
{
    const char *env = getenv("TS_SOFTHSM_MODULE");
    return env != NULL && env[0] != '\0' ? env : TS_SOFTHSM_MODULE;
}

/* A store URI for token with pin (NULL: none) on the test's SoftHSM2. */
static inline void p11_test_uri(char *buf, size_t size, const char *token, const char *pin)
{
    snprintf(buf, size, "pkcs11:token=%s?module-path=%s%s%s", token, p11_test_module(),
             pin != NULL ? "&pin-value=" : "", pin != NULL ? pin : "");
}

/* A SoftHSM2 and a lock directory of the test's own, without a token yet. 0 on success. */
static inline int p11_fx_env(p11_fx *fx)
{
    memset(fx, 0, sizeof *fx);
    if (ts_test_tmpdir(fx->tmp, sizeof fx->tmp) != 0 || ts_test_softhsm_setup(fx->tmp) != 0) {
        return -1;
    }
    unsetenv("TESSERA_PIN");
    unsetenv("TESSERA_PKCS11_MODULE");
    return setenv("TESSERA_LOCK_DIR", fx->tmp, 1);
}

/* As p11_fx_env(), then creates the token P11_TOKEN, open in fx->ks. 0 on success. */
static inline int p11_fx_setup(p11_fx *fx)
{
    if (p11_fx_env(fx) != 0) {
        return -1;
    }
    p11_test_uri(fx->uri, sizeof fx->uri, P11_TOKEN, P11_PIN);
    if (ts_keystore_create(fx->uri, P11_SO_PIN, &fx->ks) != TS_OK) {
        fprintf(stderr, "create %s: %s\n", fx->uri, ts_error_message());
        return -1;
    }
    return 0;
}

static inline void p11_fx_teardown(p11_fx *fx)
{
    ts_keystore_free(fx->ks);
    fx->ks = NULL;
    ts_test_rmtree(fx->tmp);
}

/* The backend's own state for the token of uri, for checks through the module. */
static inline p11_store *p11_test_state(const char *uri)
{
    ts_ks_uri *parsed = NULL;
    void *state = NULL;
    if (ts_ks_uri_parse(uri, &parsed) != TS_OK ||
        ts_ks_pkcs11_backend.open(parsed, &state) != TS_OK) {
        fprintf(stderr, "backend open %s: %s\n", uri, ts_error_message());
        state = NULL;
    }
    ts_ks_uri_free(parsed);
    return state;
}

/* A CK_BBOOL attribute of an object; -1 when it cannot be read. */
static inline int p11_test_bool(p11_store *st, CK_OBJECT_HANDLE h, CK_ATTRIBUTE_TYPE type)
{
    CK_BBOOL v = CK_FALSE;
    CK_ATTRIBUTE a = {type, &v, sizeof v};
    return st->f->C_GetAttributeValue(st->session, h, &a, 1) == CKR_OK ? v == CK_TRUE : -1;
}

/* How many objects on the token match one attribute. */
static inline size_t p11_test_count(p11_store *st, CK_ATTRIBUTE_TYPE type, const void *value,
                                    size_t len)
{
    CK_ATTRIBUTE a = {type, (void *)value, (CK_ULONG)len};
    CK_OBJECT_HANDLE h[64];
    CK_ULONG n = 0;
    if (st->f->C_FindObjectsInit(st->session, &a, 1) != CKR_OK) {
        return (size_t)-1;
    }
    st->f->C_FindObjects(st->session, h, 64, &n);
    st->f->C_FindObjectsFinal(st->session);
    return n;
}

static inline size_t p11_test_count_label(p11_store *st, const char *label)
{
    return p11_test_count(st, CKA_LABEL, label, strlen(label));
}

/* A fresh EC key in memory ("P-256" or "P-384"). */
static inline EVP_PKEY *p11_test_ec_key(ts_curve curve)
{
    return EVP_EC_gen(ts_curve_group(curve));
}

/* 1 when sig verifies under pub over digest. */
static inline int p11_test_verify(EVP_PKEY *pub, const uint8_t *digest, size_t digest_len,
                                  const uint8_t *sig, size_t sig_len)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pub, NULL);
    int ok = ctx != NULL && EVP_PKEY_verify_init(ctx) == 1 &&
             EVP_PKEY_verify(ctx, sig, sig_len, digest, digest_len) == 1;
    EVP_PKEY_CTX_free(ctx);
    return ok;
}

/* ECDH in memory: priv with pub into secret. 0 on success. */
static inline int p11_test_ecdh(EVP_PKEY *priv, EVP_PKEY *pub, uint8_t *secret, size_t *len)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, priv, NULL);
    int ok = ctx != NULL && EVP_PKEY_derive_init(ctx) == 1 &&
             EVP_PKEY_derive_set_peer(ctx, pub) == 1 && EVP_PKEY_derive(ctx, secret, len) == 1;
    EVP_PKEY_CTX_free(ctx);
    return ok ? 0 : -1;
}

/* 1 when both keys have the same public point. */
static inline int p11_test_same_public(const EVP_PKEY *a, const EVP_PKEY *b)
{
    uint8_t pa[TS_POINT_MAX], pb[TS_POINT_MAX];
    size_t la = 0, lb = 0;
    return ts_pkey_to_point(a, pa, sizeof pa, &la) == TS_OK &&
           ts_pkey_to_point(b, pb, sizeof pb, &lb) == TS_OK && la == lb && memcmp(pa, pb, la) == 0;
}

#endif
