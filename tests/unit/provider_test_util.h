/*
 * Helpers of the provider's tests (test_provider.c, test_provider_tls.c): a key store of either
 * backend with a P-256 and a P-384 key, certificates made with OpenSSL, and a TLS handshake over a
 * BIO pair.
 */
#ifndef TS_TEST_PROVIDER_TEST_UTIL_H
#define TS_TEST_PROVIDER_TEST_UTIL_H

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "tessera/keystore.h"
#include "tessera/provider.h"
#include "test_support.h"

#define PFX_PIN   "1234"
#define PFX_TOKEN "t1"

enum { PFX_P256, PFX_P384, PFX_KEYS };

static const char *const pfx_labels[PFX_KEYS] = {"k256", "k384"};

typedef struct prov_fx {
    int pkcs11;
    char tmp[PATH_MAX / 2];
    char uri[PATH_MAX]; /* the store, with its PIN */
    ts_keystore *ks;
    EVP_PKEY *key[PFX_KEYS]; /* key-store keys through the provider */
    EVP_PKEY *pub[PFX_KEYS]; /* their public halves, ordinary default-provider keys */
} prov_fx;

/* The URI naming one object of the fixture's store, for OSSL_STORE_open_ex(). */
static inline void pfx_object_uri(const prov_fx *fx, const char *label, char *buf, size_t size)
{
    if (fx->pkcs11) {
        snprintf(buf, size, "pkcs11:token=%s;object=%s?module-path=%s&pin-value=%s", PFX_TOKEN,
                 label, TS_SOFTHSM_MODULE, PFX_PIN);
    } else {
        snprintf(buf, size, "soft:%s/store;object=%s?pin-value=%s", fx->tmp, label, PFX_PIN);
    }
}

static inline void pfx_teardown(prov_fx *fx)
{
    for (int i = 0; i < PFX_KEYS; i++) {
        EVP_PKEY_free(fx->key[i]);
        EVP_PKEY_free(fx->pub[i]);
    }
    ts_keystore_free(fx->ks);
    ts_test_rmtree(fx->tmp);
    memset(fx, 0, sizeof *fx);
}

static inline int pfx_setup(prov_fx *fx, int pkcs11)
{
    static const ts_curve curves[PFX_KEYS] = {TS_CURVE_P256, TS_CURVE_P384};

    memset(fx, 0, sizeof *fx);
    fx->pkcs11 = pkcs11;
    if (ts_test_tmpdir(fx->tmp, sizeof fx->tmp) != 0) {
        return -1;
    }
    if (pkcs11) {
        if (ts_test_softhsm_setup(fx->tmp) != 0) {
            return -1;
        }
        snprintf(fx->uri, sizeof fx->uri, "pkcs11:token=%s?module-path=%s&pin-value=%s", PFX_TOKEN,
                 TS_SOFTHSM_MODULE, PFX_PIN);
    } else {
        snprintf(fx->uri, sizeof fx->uri, "soft:%s/store?pin-value=%s", fx->tmp, PFX_PIN);
    }
    if (ts_keystore_create(fx->uri, pkcs11 ? "so-1234" : NULL, &fx->ks) != TS_OK) {
        fprintf(stderr, "cannot create %s: %s\n", fx->uri, ts_error_message());
        return -1;
    }
    for (int i = 0; i < PFX_KEYS; i++) {
        if (ts_keystore_generate(fx->ks, pfx_labels[i], curves[i]) != TS_OK ||
            ts_keystore_evp_pkey(fx->ks, pfx_labels[i], &fx->key[i]) != TS_OK ||
            ts_keystore_public_key(fx->ks, pfx_labels[i], &fx->pub[i]) != TS_OK) {
            fprintf(stderr, "key %s: %s\n", pfx_labels[i], ts_error_message());
            return -1;
        }
    }
    return 0;
}

/* --- cmocka groups: each test file runs its tests on a soft: store, then on a token ------- */

static prov_fx pfx_soft, pfx_p11;

static inline int pfx_setup_soft(void **state)
{
    *state = &pfx_soft;
    return pfx_setup(&pfx_soft, 0);
}

static inline int pfx_setup_p11(void **state)
{
    *state = &pfx_p11;
    return pfx_setup(&pfx_p11, 1);
}

static inline int pfx_teardown_group(void **state)
{
    pfx_teardown(*state);
    return 0;
}

/* Checks that Tessera's context is there and applies TS_TEST_FILTER (test names). 0 when ready. */
static inline int pfx_start(void)
{
    if (ts_provider_libctx() == NULL) {
        fprintf(stderr, "no Tessera OpenSSL context: %s\n", ts_error_message());
        return -1;
    }
    cmocka_set_test_filter(getenv("TS_TEST_FILTER"));
    return 0;
}

/* Runs the array tests on a soft: store, then on a token; the number that failed. */
#define PFX_RUN_BOTH(name, tests)                                                                  \
    (cmocka_run_group_tests_name(name ", soft: store", tests, pfx_setup_soft,                      \
                                 pfx_teardown_group) +                                             \
     cmocka_run_group_tests_name(name ", pkcs11: token", tests, pfx_setup_p11,                     \
                                 pfx_teardown_group))

/* --- certificates --------------------------------------------------------------------------- */

static inline int pfx_add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX v3;
    X509V3_set_ctx(&v3, issuer, cert, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
    int ok = ext != NULL && X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
    return ok;
}

/* Signs with X509_sign_ctx in Tessera's context, whichever provider holds key. */
static inline int pfx_sign_cert(X509 *cert, EVP_PKEY *key, const char *md)
{
    EVP_MD_CTX *mctx = EVP_MD_CTX_new();
    int ok = mctx != NULL &&
             EVP_DigestSignInit_ex(mctx, NULL, md, ts_provider_libctx(), NULL, key, NULL) == 1 &&
             X509_sign_ctx(cert, mctx) > 0;
    EVP_MD_CTX_free(mctx);
    return ok;
}

/*
 * A certificate for subject's public key named cn, signed by issuer_key (issuer NULL: self
 * signed by subject); ca makes it a CA. NULL on failure.
 */
static inline X509 *pfx_cert(EVP_PKEY *subject, const char *cn, X509 *issuer, EVP_PKEY *issuer_key,
                             int ca, const char *md)
{
    X509 *cert = X509_new_ex(ts_provider_libctx(), NULL);
    X509_NAME *name = X509_NAME_new();
    static long serial = 1;
    int ok = cert != NULL && name != NULL && X509_set_version(cert, X509_VERSION_3) &&
             ASN1_INTEGER_set(X509_get_serialNumber(cert), serial++) &&
             X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1,
                                        0) &&
             X509_set_subject_name(cert, name) &&
             X509_set_issuer_name(cert, issuer != NULL ? X509_get_subject_name(issuer) : name) &&
             X509_gmtime_adj(X509_getm_notBefore(cert), -3600) &&
             X509_gmtime_adj(X509_getm_notAfter(cert), 86400) && X509_set_pubkey(cert, subject) &&
             pfx_add_ext(cert, issuer != NULL ? issuer : cert, NID_basic_constraints,
                         ca ? "critical,CA:TRUE" : "critical,CA:FALSE") &&
             pfx_add_ext(cert, issuer != NULL ? issuer : cert, NID_key_usage,
                         ca ? "critical,digitalSignature,keyCertSign,cRLSign"
                            : "critical,digitalSignature,keyAgreement") &&
             pfx_sign_cert(cert, issuer_key != NULL ? issuer_key : subject, md);
    X509_NAME_free(name);
    if (!ok) {
        X509_free(cert);
        return NULL;
    }
    return cert;
}

/* --- TLS ------------------------------------------------------------------------------------ */

/* An SSL_CTX in Tessera's context that presents key and cert and requires a peer issued by ca. */
static inline SSL_CTX *pfx_tls_ctx(int server, int version, EVP_PKEY *key, X509 *cert, X509 *ca)
{
    SSL_CTX *ctx = SSL_CTX_new_ex(ts_provider_libctx(), NULL,
                                  server ? TLS_server_method() : TLS_client_method());
    int ok = ctx != NULL && SSL_CTX_set_min_proto_version(ctx, version) &&
             SSL_CTX_set_max_proto_version(ctx, version) &&
             (version != TLS1_2_VERSION ||
              SSL_CTX_set_cipher_list(ctx, "ECDHE-ECDSA-AES128-GCM-SHA256")) &&
             SSL_CTX_use_certificate(ctx, cert) == 1 && SSL_CTX_use_PrivateKey(ctx, key) == 1 &&
             SSL_CTX_check_private_key(ctx) == 1 &&
             X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx), ca) == 1;
    if (!ok) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    return ctx;
}

static inline int pfx_tls_step(SSL *ssl, int *done)
{
    if (*done) {
        return 1;
    }
    int rc = SSL_do_handshake(ssl);
    if (rc == 1) {
        *done = 1;
        return 1;
    }
    int err = SSL_get_error(ssl, rc);
    return err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE;
}

/*
 * Runs a handshake between a client and a server over a BIO pair, then sends a message each
 * way. 0 on success; the SSLs are returned for inspection and freed by the caller.
 */
static inline int pfx_tls_run(SSL_CTX *sctx, SSL_CTX *cctx, SSL **s_out, SSL **c_out)
{
    SSL *s = SSL_new(sctx), *c = SSL_new(cctx);
    BIO *sb = NULL, *cb = NULL;
    int sdone = 0, cdone = 0;
    char buf[16];

    *s_out = s;
    *c_out = c;
    if (s == NULL || c == NULL || !BIO_new_bio_pair(&sb, 0, &cb, 0)) {
        return -1;
    }
    SSL_set_bio(s, sb, sb);
    SSL_set_bio(c, cb, cb);
    SSL_set_accept_state(s);
    SSL_set_connect_state(c);
    for (int round = 0; round < 64 && !(sdone && cdone); round++) {
        if (!pfx_tls_step(c, &cdone) || !pfx_tls_step(s, &sdone)) {
            return -1;
        }
    }
    if (!sdone || !cdone) {
        return -1;
    }
    if (SSL_write(c, "ping", 4) != 4 || SSL_read(s, buf, sizeof buf) != 4 ||
        memcmp(buf, "ping", 4) != 0 || SSL_write(s, "pong", 4) != 4 ||
        SSL_read(c, buf, sizeof buf) != 4 || memcmp(buf, "pong", 4) != 0) {
        return -1;
    }
    return 0;
}

#endif
