/*
 * The Tessera OpenSSL provider, with keys in a soft: store and in a SoftHSM2 token: EVP_PKEYs
 * from ts_keystore_evp_pkey(), which provider OpenSSL picks, ECDSA (digest and message), ECDH,
 * the store loader, the provider in other contexts, and what the provider refuses (private
 * export, key generation). X.509, CMS and TLS are in test_provider_tls.c.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/provider.h>
#include <openssl/store.h>

#include "provider_test_util.h"

static const char *provider_of_ctx(const EVP_PKEY_CTX *pctx)
{
    const OSSL_PROVIDER *prov = EVP_PKEY_CTX_get0_provider(pctx);
    return prov != NULL ? OSSL_PROVIDER_get0_name(prov) : "none";
}

/* --- the EVP_PKEY --------------------------------------------------------------------------- */

static void test_evp_pkey(void **state)
{
    prov_fx *fx = *state;
    static const int bits[PFX_KEYS] = {256, 384};
    static const char *const groups[PFX_KEYS] = {"prime256v1", "secp384r1"};
    char group[64], digest[32];

    for (int i = 0; i < PFX_KEYS; i++) {
        EVP_PKEY *key = fx->key[i];
        assert_true(EVP_PKEY_is_a(key, "EC"));
        assert_int_equal(EVP_PKEY_get_base_id(key), EVP_PKEY_EC);
        assert_string_equal(OSSL_PROVIDER_get0_name(EVP_PKEY_get0_provider(key)), "tessera");
        assert_int_equal(EVP_PKEY_get_bits(key), bits[i]);
        assert_int_equal(EVP_PKEY_get_security_bits(key), bits[i] / 2);
        assert_int_equal(EVP_PKEY_get_size(key), EVP_PKEY_get_size(fx->pub[i]));
        assert_int_equal(EVP_PKEY_get_group_name(key, group, sizeof group, NULL), 1);
        assert_string_equal(group, groups[i]);
        assert_int_equal(EVP_PKEY_get_default_digest_name(key, digest, sizeof digest), 1);
        assert_string_equal(digest, "SHA256");
        /* The public half is the store's, both ways round. */
        assert_int_equal(EVP_PKEY_eq(key, fx->pub[i]), 1);
        assert_int_equal(EVP_PKEY_eq(fx->pub[i], key), 1);
        assert_int_not_equal(EVP_PKEY_eq(key, fx->pub[1 - i]), 1);

        /* SubjectPublicKeyInfo encodes, and decodes to the same key. */
        unsigned char *der = NULL;
        int len = i2d_PUBKEY(key, &der);
        assert_true(len > 0);
        const unsigned char *p = der;
        EVP_PKEY *back = d2i_PUBKEY(NULL, &p, len);
        assert_non_null(back);
        assert_int_equal(EVP_PKEY_eq(back, fx->pub[i]), 1);
        EVP_PKEY_free(back);
        OPENSSL_free(der);
    }
}

static void test_no_private_export(void **state)
{
    prov_fx *fx = *state;
    EVP_PKEY *key = fx->key[PFX_P256];
    OSSL_PARAM *params = NULL;
    BIGNUM *priv = NULL;
    unsigned char *der = NULL;

    assert_int_not_equal(EVP_PKEY_todata(key, EVP_PKEY_KEYPAIR, &params), 1);
    assert_null(params);
    assert_int_equal(EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_PRIV_KEY, &priv), 0);
    assert_null(priv);
    assert_true(i2d_PrivateKey(key, &der) <= 0);
    BIO *bio = BIO_new(BIO_s_mem());
    assert_int_equal(PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL), 0);
    BIO_free(bio);
    /* The public half does export. */
    assert_int_equal(EVP_PKEY_todata(key, EVP_PKEY_PUBLIC_KEY, &params), 1);
    assert_non_null(OSSL_PARAM_locate(params, OSSL_PKEY_PARAM_PUB_KEY));
    OSSL_PARAM_free(params);
    ERR_clear_error();
}

static void test_evp_pkey_errors(void **state)
{
    prov_fx *fx = *state;
    EVP_PKEY *key = (EVP_PKEY *)1;
    static const uint8_t data[] = "not a key";

    assert_int_equal(ts_keystore_evp_pkey(fx->ks, "missing", &key), TS_ERR_NOT_FOUND);
    assert_null(key);
    assert_int_equal(ts_keystore_evp_pkey(fx->ks, "bad/label", &key), TS_ERR_INVALID);
    assert_int_equal(ts_keystore_evp_pkey(NULL, "k256", &key), TS_ERR_INVALID);
    assert_int_equal(ts_keystore_evp_pkey(fx->ks, "k256", NULL), TS_ERR_INVALID);
    assert_int_equal(ts_keystore_object_replace(fx->ks, "blob", data, sizeof data, 0), TS_OK);
    assert_int_equal(ts_keystore_evp_pkey(fx->ks, "blob", &key), TS_ERR_WRONG_TYPE);
    assert_null(key);
    assert_int_equal(ts_keystore_delete(fx->ks, "blob"), TS_OK);
}

/* The key holds its own store reference: it outlives the caller's handle. */
static void test_key_outlives_handle(void **state)
{
    prov_fx *fx = *state;
    ts_keystore *ks = NULL;
    EVP_PKEY *key = NULL;
    EVP_MD_CTX *mctx = EVP_MD_CTX_new();
    unsigned char sig[TS_SIGNATURE_MAX];
    size_t siglen = sizeof sig;

    assert_int_equal(ts_keystore_open(fx->uri, &ks), TS_OK);
    assert_int_equal(ts_keystore_evp_pkey(ks, "k256", &key), TS_OK);
    ts_keystore_free(ks);
    assert_int_equal(
        EVP_DigestSignInit_ex(mctx, NULL, "SHA256", ts_provider_libctx(), NULL, key, NULL), 1);
    assert_int_equal(EVP_DigestSign(mctx, sig, &siglen, (const unsigned char *)"m", 1), 1);
    EVP_MD_CTX_free(mctx);
    EVP_PKEY_free(key);
}

/* --- which provider runs what --------------------------------------------------------------- */

static void test_routing(void **state)
{
    prov_fx *fx = *state;
    OSSL_LIB_CTX *libctx = ts_provider_libctx();
    EVP_PKEY *plain = EVP_PKEY_Q_keygen(libctx, NULL, "EC", "P-256");
    EVP_MD_CTX *mctx = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;

    /* Key generation in the context is the default provider's. */
    assert_non_null(plain);
    assert_string_equal(OSSL_PROVIDER_get0_name(EVP_PKEY_get0_provider(plain)), "default");
    EVP_KEYMGMT *km = EVP_KEYMGMT_fetch(libctx, "EC", NULL);
    assert_string_equal(OSSL_PROVIDER_get0_name(EVP_KEYMGMT_get0_provider(km)), "default");
    EVP_KEYMGMT_free(km);

    /*
     * A key-store key signs in the tessera provider, in our context and in the default one; the
     * way there (OpenSSL tries the default provider first) leaves nothing in the error queue,
     * which libssl would take for a failure.
     */
    ERR_clear_error();
    EVP_MD_CTX_reset(mctx);
    assert_int_equal(EVP_DigestSignInit_ex(mctx, &pctx, "SHA256", libctx, NULL, fx->key[0], NULL),
                     1);
    assert_string_equal(provider_of_ctx(pctx), "tessera");
    assert_int_equal(ERR_peek_error(), 0);
    EVP_MD_CTX_reset(mctx);
    assert_int_equal(EVP_DigestSignInit_ex(mctx, &pctx, "SHA256", NULL, NULL, fx->key[0], NULL), 1);
    assert_string_equal(provider_of_ctx(pctx), "tessera");
    /* An ordinary key in the same context stays with the default provider. */
    EVP_MD_CTX_reset(mctx);
    assert_int_equal(EVP_DigestSignInit_ex(mctx, &pctx, "SHA256", libctx, NULL, plain, NULL), 1);
    assert_string_equal(provider_of_ctx(pctx), "default");
    assert_int_equal(ERR_peek_error(), 0);
    EVP_MD_CTX_free(mctx);

    pctx = EVP_PKEY_CTX_new_from_pkey(libctx, fx->key[0], NULL);
    assert_int_equal(EVP_PKEY_derive_init(pctx), 1);
    assert_string_equal(provider_of_ctx(pctx), "tessera");
    EVP_PKEY_CTX_free(pctx);
    pctx = EVP_PKEY_CTX_new_from_pkey(libctx, plain, NULL);
    assert_int_equal(EVP_PKEY_derive_init(pctx), 1);
    assert_string_equal(provider_of_ctx(pctx), "default");
    EVP_PKEY_CTX_free(pctx);

    /* No key generation through the provider. */
    pctx = EVP_PKEY_CTX_new_from_name(libctx, "EC", "provider=tessera");
    assert_non_null(pctx);
    assert_true(EVP_PKEY_keygen_init(pctx) <= 0);
    EVP_PKEY_CTX_free(pctx);
    EVP_PKEY_free(plain);
    ERR_clear_error();
}

/* --- ECDSA ---------------------------------------------------------------------------------- */

static void sign_verify_one(EVP_PKEY *key, EVP_PKEY *pub, const char *md)
{
    static const unsigned char msg[] = "a message signed inside the key store";
    unsigned char sig[TS_SIGNATURE_MAX];
    size_t siglen = 0;
    EVP_MD_CTX *mctx = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;

    EVP_MD_CTX_reset(mctx);

    assert_int_equal(EVP_DigestSignInit_ex(mctx, &pctx, md, ts_provider_libctx(), NULL, key, NULL),
                     1);
    assert_string_equal(provider_of_ctx(pctx), "tessera");
    assert_int_equal(EVP_DigestSign(mctx, NULL, &siglen, msg, sizeof msg), 1);
    assert_int_equal(siglen, (size_t)EVP_PKEY_get_size(key));
    assert_int_equal(EVP_DigestSign(mctx, sig, &siglen, msg, sizeof msg), 1);
    /* Re-initialised without naming the key again, the context signs again (with the same
     * digest): both signatures verify below, as ECDSA signatures differ each time. */
    unsigned char sig2[TS_SIGNATURE_MAX];
    size_t sig2len = sizeof sig2;
    assert_int_equal(EVP_DigestSignInit_ex(mctx, NULL, NULL, NULL, NULL, NULL, NULL), 1);
    assert_int_equal(EVP_DigestSign(mctx, sig2, &sig2len, msg, sizeof msg), 1);
    assert_false(sig2len == siglen && memcmp(sig, sig2, siglen) == 0);
    EVP_MD_CTX_reset(mctx);
    assert_int_equal(EVP_DigestVerifyInit_ex(mctx, NULL, md, ts_provider_libctx(), NULL, pub, NULL),
                     1);
    assert_int_equal(EVP_DigestVerify(mctx, sig2, sig2len, msg, sizeof msg), 1);

    /* By the ordinary public key, by the key-store key itself, and not once tampered with. */
    for (int by = 0; by < 2; by++) {
        EVP_MD_CTX_reset(mctx);
        assert_int_equal(EVP_DigestVerifyInit_ex(mctx, &pctx, md, ts_provider_libctx(), NULL,
                                                 by == 0 ? pub : key, NULL),
                         1);
        assert_string_equal(provider_of_ctx(pctx), by == 0 ? "default" : "tessera");
        assert_int_equal(EVP_DigestVerify(mctx, sig, siglen, msg, sizeof msg), 1);
        EVP_MD_CTX_reset(mctx);
        assert_int_equal(EVP_DigestVerifyInit_ex(mctx, NULL, md, ts_provider_libctx(), NULL,
                                                 by == 0 ? pub : key, NULL),
                         1);
        sig[siglen / 2] ^= 0x01;
        assert_int_not_equal(EVP_DigestVerify(mctx, sig, siglen, msg, sizeof msg), 1);
        sig[siglen / 2] ^= 0x01;
    }

    /* Streaming: update, update, final (OpenSSL copies the context for final). */
    EVP_MD_CTX_reset(mctx);
    assert_int_equal(EVP_DigestSignInit_ex(mctx, NULL, md, ts_provider_libctx(), NULL, key, NULL),
                     1);
    assert_int_equal(EVP_DigestSignUpdate(mctx, msg, 10), 1);
    assert_int_equal(EVP_DigestSignUpdate(mctx, msg + 10, sizeof msg - 10), 1);
    siglen = sizeof sig;
    assert_int_equal(EVP_DigestSignFinal(mctx, sig, &siglen), 1);
    EVP_MD_CTX_reset(mctx);
    assert_int_equal(EVP_DigestVerifyInit_ex(mctx, NULL, md, ts_provider_libctx(), NULL, pub, NULL),
                     1);
    assert_int_equal(EVP_DigestVerify(mctx, sig, siglen, msg, sizeof msg), 1);
    EVP_MD_CTX_free(mctx);
    ERR_clear_error();
}

static void test_digest_sign(void **state)
{
    prov_fx *fx = *state;
    sign_verify_one(fx->key[PFX_P256], fx->pub[PFX_P256], "SHA256");
    sign_verify_one(fx->key[PFX_P256], fx->pub[PFX_P256], "SHA512");
    sign_verify_one(fx->key[PFX_P384], fx->pub[PFX_P384], "SHA384");
    sign_verify_one(fx->key[PFX_P384], fx->pub[PFX_P384], NULL); /* the default, SHA-256 */
}

/* EVP_PKEY_sign over a digest the caller made. */
static void test_sign_digest(void **state)
{
    prov_fx *fx = *state;
    unsigned char digest[48], sig[TS_SIGNATURE_MAX];
    size_t siglen = sizeof sig;
    EVP_PKEY_CTX *pctx = EVP_PKEY_CTX_new_from_pkey(ts_provider_libctx(), fx->key[PFX_P384], NULL);

    assert_int_equal(EVP_Q_digest(NULL, "SHA384", NULL, "abc", 3, digest, NULL), 1);
    assert_int_equal(EVP_PKEY_sign_init(pctx), 1);
    assert_int_equal(EVP_PKEY_CTX_set_signature_md(pctx, EVP_sha384()), 1);
    assert_int_equal(EVP_PKEY_sign(pctx, sig, &siglen, digest, sizeof digest), 1);
    /* A 32-byte input is not a SHA-384 digest; SHA-1 is refused. */
    size_t len2 = sizeof sig;
    assert_true(EVP_PKEY_sign(pctx, sig + 0, &len2, digest, 32) <= 0);
    assert_true(EVP_PKEY_CTX_set_signature_md(pctx, EVP_sha1()) <= 0);
    EVP_PKEY_CTX_free(pctx);

    pctx = EVP_PKEY_CTX_new_from_pkey(NULL, fx->pub[PFX_P384], NULL);
    assert_int_equal(EVP_PKEY_verify_init(pctx), 1);
    assert_int_equal(EVP_PKEY_verify(pctx, sig, siglen, digest, sizeof digest), 1);
    EVP_PKEY_CTX_free(pctx);
    ERR_clear_error();
}

typedef struct thread_arg {
    EVP_PKEY *key, *pub;
    int ok;
} thread_arg;

static void *sign_thread(void *varg)
{
    thread_arg *arg = varg;
    EVP_MD_CTX *mctx = EVP_MD_CTX_new();
    unsigned char sig[TS_SIGNATURE_MAX];
    arg->ok = 1;
    for (int i = 0; i < 20 && arg->ok; i++) {
        size_t siglen = sizeof sig;
        EVP_MD_CTX_reset(mctx);
        arg->ok = EVP_DigestSignInit_ex(mctx, NULL, "SHA256", ts_provider_libctx(), NULL, arg->key,
                                        NULL) == 1 &&
                  EVP_DigestSign(mctx, sig, &siglen, (const unsigned char *)&i, sizeof i) == 1 &&
                  EVP_MD_CTX_reset(mctx) == 1 &&
                  EVP_DigestVerifyInit_ex(mctx, NULL, "SHA256", NULL, NULL, arg->pub, NULL) == 1 &&
                  EVP_DigestVerify(mctx, sig, siglen, (const unsigned char *)&i, sizeof i) == 1;
    }
    EVP_MD_CTX_free(mctx);
    return NULL;
}

/* One EVP_PKEY signing from four threads at once. */
static void test_threads(void **state)
{
    prov_fx *fx = *state;
    pthread_t threads[4];
    thread_arg args[4];

    for (int i = 0; i < 4; i++) {
        args[i] = (thread_arg){fx->key[PFX_P256], fx->pub[PFX_P256], 0};
        assert_int_equal(pthread_create(&threads[i], NULL, sign_thread, &args[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(threads[i], NULL), 0);
        assert_true(args[i].ok);
    }
}

/* --- ECDH ----------------------------------------------------------------------------------- */

static void test_derive(void **state)
{
    prov_fx *fx = *state;
    static const char *const curves[PFX_KEYS] = {"P-256", "P-384"};

    for (int i = 0; i < PFX_KEYS; i++) {
        ERR_clear_error();
        EVP_PKEY *peer = EVP_PKEY_Q_keygen(NULL, NULL, "EC", curves[i]);
        unsigned char *der = NULL;
        int der_len = i2d_PUBKEY(peer, &der);
        const unsigned char *p = der;
        EVP_PKEY *peer_pub = d2i_PUBKEY(NULL, &p, der_len);
        unsigned char ours[TS_SECRET_MAX], theirs[TS_SECRET_MAX];
        size_t ours_len = sizeof ours, theirs_len = sizeof theirs;
        EVP_PKEY_CTX *pctx = EVP_PKEY_CTX_new_from_pkey(ts_provider_libctx(), fx->key[i], NULL);

        assert_int_equal(EVP_PKEY_derive_init(pctx), 1);
        assert_string_equal(provider_of_ctx(pctx), "tessera");
        assert_int_equal(EVP_PKEY_derive_set_peer(pctx, peer_pub), 1);
        assert_int_equal(EVP_PKEY_derive(pctx, ours, &ours_len), 1);
        assert_int_equal(ERR_peek_error(), 0);
        EVP_PKEY_CTX_free(pctx);

        pctx = EVP_PKEY_CTX_new_from_pkey(NULL, peer, NULL);
        assert_int_equal(EVP_PKEY_derive_init(pctx), 1);
        assert_int_equal(EVP_PKEY_derive_set_peer(pctx, fx->pub[i]), 1);
        assert_int_equal(EVP_PKEY_derive(pctx, theirs, &theirs_len), 1);
        EVP_PKEY_CTX_free(pctx);
        assert_int_equal(ours_len, i == PFX_P256 ? 32 : 48);
        assert_int_equal(ours_len, theirs_len);
        assert_memory_equal(ours, theirs, ours_len);

        /* A peer key pair is refused (its private half would have to enter the provider);
         * a peer on the other curve too. */
        pctx = EVP_PKEY_CTX_new_from_pkey(ts_provider_libctx(), fx->key[i], NULL);
        assert_int_equal(EVP_PKEY_derive_init(pctx), 1);
        assert_true(EVP_PKEY_derive_set_peer(pctx, peer) <= 0);
        EVP_PKEY_CTX_free(pctx);
        pctx = EVP_PKEY_CTX_new_from_pkey(ts_provider_libctx(), fx->key[1 - i], NULL);
        assert_int_equal(EVP_PKEY_derive_init(pctx), 1);
        assert_true(EVP_PKEY_derive_set_peer(pctx, peer_pub) <= 0);
        EVP_PKEY_CTX_free(pctx);
        EVP_PKEY_free(peer_pub);
        EVP_PKEY_free(peer);
        OPENSSL_free(der);
    }
    ERR_clear_error();
}

/* --- the store loader ----------------------------------------------------------------------- */

static OSSL_STORE_CTX *store_open(const prov_fx *fx, const char *label)
{
    char uri[PATH_MAX * 2];
    pfx_object_uri(fx, label, uri, sizeof uri);
    return OSSL_STORE_open_ex(uri, ts_provider_libctx(), NULL, NULL, NULL, NULL, NULL, NULL);
}

static void test_store(void **state)
{
    prov_fx *fx = *state;
    X509 *cert = pfx_cert(fx->key[PFX_P256], "device", NULL, NULL, 0, "SHA256");
    unsigned char *der = NULL;
    int der_len = i2d_X509(cert, &der);

    /* Key only. */
    OSSL_STORE_CTX *sctx = store_open(fx, "k384");
    assert_non_null(sctx);
    OSSL_STORE_INFO *info = OSSL_STORE_load(sctx);
    assert_non_null(info);
    assert_int_equal(OSSL_STORE_INFO_get_type(info), OSSL_STORE_INFO_PKEY);
    EVP_PKEY *key = OSSL_STORE_INFO_get1_PKEY(info);
    OSSL_STORE_INFO_free(info);
    assert_string_equal(OSSL_PROVIDER_get0_name(EVP_PKEY_get0_provider(key)), "tessera");
    assert_int_equal(EVP_PKEY_eq(key, fx->pub[PFX_P384]), 1);
    sign_verify_one(key, fx->pub[PFX_P384], "SHA384");
    EVP_PKEY_free(key);
    assert_null(OSSL_STORE_load(sctx));
    assert_true(OSSL_STORE_eof(sctx));
    assert_false(OSSL_STORE_error(sctx));
    OSSL_STORE_close(sctx);

    /* Key, then the certificate stored beside it. */
    assert_int_equal(ts_keystore_object_replace(fx->ks, "k256.crt", der, (size_t)der_len, 0),
                     TS_OK);
    sctx = store_open(fx, "k256");
    assert_non_null(sctx);
    info = OSSL_STORE_load(sctx);
    assert_int_equal(OSSL_STORE_INFO_get_type(info), OSSL_STORE_INFO_PKEY);
    OSSL_STORE_INFO_free(info);
    info = OSSL_STORE_load(sctx);
    assert_non_null(info);
    assert_int_equal(OSSL_STORE_INFO_get_type(info), OSSL_STORE_INFO_CERT);
    assert_int_equal(X509_cmp(OSSL_STORE_INFO_get0_CERT(info), cert), 0);
    OSSL_STORE_INFO_free(info);
    assert_null(OSSL_STORE_load(sctx));
    assert_true(OSSL_STORE_eof(sctx));
    OSSL_STORE_close(sctx);

    /* Asked for a public key, it gives one. */
    sctx = store_open(fx, "k256");
    assert_int_equal(OSSL_STORE_expect(sctx, OSSL_STORE_INFO_PUBKEY), 1);
    info = OSSL_STORE_load(sctx);
    assert_non_null(info);
    assert_int_equal(OSSL_STORE_INFO_get_type(info), OSSL_STORE_INFO_PUBKEY);
    assert_int_equal(EVP_PKEY_eq(OSSL_STORE_INFO_get0_PUBKEY(info), fx->pub[PFX_P256]), 1);
    OSSL_STORE_INFO_free(info);
    OSSL_STORE_close(sctx);
    assert_int_equal(ts_keystore_delete(fx->ks, "k256.crt"), TS_OK);

    /* A missing key fails at load; a URI without object= or with a wrong PIN at open. */
    sctx = store_open(fx, "missing");
    assert_non_null(sctx);
    assert_null(OSSL_STORE_load(sctx));
    assert_true(OSSL_STORE_error(sctx));
    OSSL_STORE_close(sctx);
    char uri[PATH_MAX * 2];
    snprintf(uri, sizeof uri, "%s", fx->uri);
    assert_null(OSSL_STORE_open_ex(uri, ts_provider_libctx(), NULL, NULL, NULL, NULL, NULL, NULL));
    pfx_object_uri(fx, "k256", uri, sizeof uri);
    memcpy(strstr(uri, "pin-value=" PFX_PIN) + strlen("pin-value="), "9999", 4);
    assert_null(OSSL_STORE_open_ex(uri, ts_provider_libctx(), NULL, NULL, NULL, NULL, NULL, NULL));

    OPENSSL_free(der);
    X509_free(cert);
    ERR_clear_error();
}

/* --- the provider elsewhere ----------------------------------------------------------------- */

static void test_provider_load(void **state)
{
    prov_fx *fx = *state;
    OSSL_LIB_CTX *other = OSSL_LIB_CTX_new();
    OSSL_PROVIDER *prov = NULL, *again = NULL;
    OSSL_PROVIDER *deflt = OSSL_PROVIDER_load(other, "default");
    char uri[PATH_MAX * 2];

    assert_int_equal(ts_provider_load(other, &prov), TS_OK);
    assert_string_equal(OSSL_PROVIDER_get0_name(prov), TS_PROVIDER_NAME);
    assert_int_equal(ts_provider_load(other, &again), TS_OK);
    assert_int_equal(ts_provider_load(other, NULL), TS_ERR_INVALID);
    /* With the default provider loaded first, key generation there stays the default's. */
    EVP_PKEY *plain = EVP_PKEY_Q_keygen(other, NULL, "EC", "P-256");
    assert_non_null(plain);
    assert_string_equal(OSSL_PROVIDER_get0_name(EVP_PKEY_get0_provider(plain)), "default");
    EVP_PKEY_free(plain);
    plain = NULL;

    /* The loader in that context gives a key that signs there. */
    pfx_object_uri(fx, "k256", uri, sizeof uri);
    OSSL_STORE_CTX *sctx = OSSL_STORE_open_ex(uri, other, NULL, NULL, NULL, NULL, NULL, NULL);
    assert_non_null(sctx);
    OSSL_STORE_INFO *info = OSSL_STORE_load(sctx);
    assert_non_null(info);
    EVP_PKEY *key = OSSL_STORE_INFO_get1_PKEY(info);
    OSSL_STORE_INFO_free(info);
    OSSL_STORE_close(sctx);
    EVP_MD_CTX *mctx = EVP_MD_CTX_new();
    unsigned char sig[TS_SIGNATURE_MAX];
    size_t siglen = sizeof sig;
    EVP_MD_CTX_reset(mctx);
    assert_int_equal(EVP_DigestSignInit_ex(mctx, NULL, "SHA256", other, NULL, key, NULL), 1);
    assert_int_equal(EVP_DigestSign(mctx, sig, &siglen, (const unsigned char *)"x", 1), 1);
    assert_int_equal(
        EVP_DigestVerifyInit_ex(mctx, NULL, "SHA256", NULL, NULL, fx->pub[PFX_P256], NULL), 1);
    assert_int_equal(EVP_DigestVerify(mctx, sig, siglen, (const unsigned char *)"x", 1), 1);
    EVP_MD_CTX_free(mctx);
    EVP_PKEY_free(key);

    OSSL_PROVIDER_unload(again);
    OSSL_PROVIDER_unload(prov);
    OSSL_PROVIDER_unload(deflt);
    OSSL_LIB_CTX_free(other);
    /*
     * Loaded before the default provider, OpenSSL may try our ECDSA first for any EC key; a
     * default-provider key still signs in the default provider, as ours refuses its private key.
     */
    other = OSSL_LIB_CTX_new();
    assert_int_equal(ts_provider_load(other, &prov), TS_OK);
    deflt = OSSL_PROVIDER_load(other, "default");
    plain = EVP_PKEY_Q_keygen(other, "provider=default", "EC", "P-256");
    assert_non_null(plain);
    EVP_PKEY_CTX *pctx = NULL;
    mctx = EVP_MD_CTX_new();
    siglen = sizeof sig;
    assert_int_equal(EVP_DigestSignInit_ex(mctx, &pctx, "SHA256", other, NULL, plain, NULL), 1);
    assert_string_equal(provider_of_ctx(pctx), "default");
    assert_int_equal(EVP_DigestSign(mctx, sig, &siglen, (const unsigned char *)"x", 1), 1);
    EVP_MD_CTX_free(mctx);
    EVP_PKEY_free(plain);
    OSSL_PROVIDER_unload(prov);
    OSSL_PROVIDER_unload(deflt);
    OSSL_LIB_CTX_free(other);

    /* The global default context never got the provider. */
    assert_int_equal(OSSL_PROVIDER_available(NULL, TS_PROVIDER_NAME), 0);
    ERR_clear_error();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_evp_pkey),        cmocka_unit_test(test_no_private_export),
        cmocka_unit_test(test_evp_pkey_errors), cmocka_unit_test(test_key_outlives_handle),
        cmocka_unit_test(test_routing),         cmocka_unit_test(test_digest_sign),
        cmocka_unit_test(test_sign_digest),     cmocka_unit_test(test_threads),
        cmocka_unit_test(test_derive),          cmocka_unit_test(test_store),
        cmocka_unit_test(test_provider_load),
    };
    return pfx_start() != 0 ? 1 : PFX_RUN_BOTH("provider", tests);
}
