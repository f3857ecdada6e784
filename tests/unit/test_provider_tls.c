/*
 * The Tessera provider's keys in X.509, CMS and TLS, with keys in a soft: store and in a
 * SoftHSM2 token: CSRs, certificates and CRLs signed with the *_sign_ctx calls, CMS_sign_ex
 * checked by CMS_verify, and mutual TLS 1.3 and TLS 1.2 (ECDHE-ECDSA-AES128-GCM-SHA256)
 * handshakes in Tessera's context where one side's key is in the store.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <cmocka.h>

#include <openssl/cms.h>
#include <openssl/err.h>

#include "provider_test_util.h"

/* --- X.509 and CMS -------------------------------------------------------------------------- */

static void test_csr(void **state)
{
    prov_fx *fx = *state;
    static const char *const mds[PFX_KEYS] = {"SHA256", "SHA384"};
    static const int sig_nids[PFX_KEYS] = {NID_ecdsa_with_SHA256, NID_ecdsa_with_SHA384};

    for (int i = 0; i < PFX_KEYS; i++) {
        X509_REQ *req = X509_REQ_new_ex(ts_provider_libctx(), NULL);
        X509_NAME *name = X509_REQ_get_subject_name(req);
        EVP_MD_CTX *mctx = EVP_MD_CTX_new();

        assert_int_equal(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                                    (const unsigned char *)"device-1", -1, -1, 0),
                         1);
        assert_int_equal(X509_REQ_set_pubkey(req, fx->key[i]), 1);
        assert_int_equal(
            EVP_DigestSignInit_ex(mctx, NULL, mds[i], ts_provider_libctx(), NULL, fx->key[i], NULL),
            1);
        assert_true(X509_REQ_sign_ctx(req, mctx) > 0);
        assert_int_equal(X509_REQ_get_signature_nid(req), sig_nids[i]);
        assert_int_equal(X509_REQ_verify(req, fx->pub[i]), 1);
        assert_int_not_equal(X509_REQ_verify(req, fx->pub[1 - i]), 1);

        /* Round trip through DER: the request carries the store key's public key. */
        unsigned char *der = NULL;
        int len = i2d_X509_REQ(req, &der);
        const unsigned char *p = der;
        X509_REQ *back = d2i_X509_REQ(NULL, &p, len);
        assert_non_null(back);
        assert_int_equal(EVP_PKEY_eq(X509_REQ_get0_pubkey(back), fx->pub[i]), 1);
        assert_int_equal(X509_REQ_verify(back, X509_REQ_get0_pubkey(back)), 1);
        X509_REQ_free(back);
        OPENSSL_free(der);
        EVP_MD_CTX_free(mctx);
        X509_REQ_free(req);
    }
    ERR_clear_error();
}

static void test_cert_and_crl(void **state)
{
    prov_fx *fx = *state;
    X509 *cert = pfx_cert(fx->key[PFX_P384], "tessera CA", NULL, NULL, 1, "SHA384");
    X509_CRL *crl = X509_CRL_new_ex(ts_provider_libctx(), NULL);
    X509_REVOKED *rev = X509_REVOKED_new();
    ASN1_TIME *now = ASN1_TIME_set(NULL, time(NULL));
    ASN1_INTEGER *serial = ASN1_INTEGER_new();
    EVP_MD_CTX *mctx = EVP_MD_CTX_new();

    assert_non_null(cert);
    assert_int_equal(X509_get_signature_nid(cert), NID_ecdsa_with_SHA384);
    assert_int_equal(X509_verify(cert, fx->pub[PFX_P384]), 1);
    assert_int_equal(X509_check_private_key(cert, fx->key[PFX_P384]), 1);
    assert_int_not_equal(X509_check_private_key(cert, fx->key[PFX_P256]), 1);

    assert_int_equal(X509_CRL_set_version(crl, X509_CRL_VERSION_2), 1);
    assert_int_equal(X509_CRL_set_issuer_name(crl, X509_get_subject_name(cert)), 1);
    assert_int_equal(X509_CRL_set1_lastUpdate(crl, now), 1);
    assert_int_equal(X509_CRL_set1_nextUpdate(crl, now), 1);
    assert_int_equal(ASN1_INTEGER_set(serial, 42), 1);
    assert_int_equal(X509_REVOKED_set_serialNumber(rev, serial), 1);
    assert_int_equal(X509_REVOKED_set_revocationDate(rev, now), 1);
    assert_int_equal(X509_CRL_add0_revoked(crl, rev), 1);
    EVP_MD_CTX_reset(mctx);
    assert_int_equal(EVP_DigestSignInit_ex(mctx, NULL, "SHA384", ts_provider_libctx(), NULL,
                                           fx->key[PFX_P384], NULL),
                     1);
    assert_true(X509_CRL_sign_ctx(crl, mctx) > 0);
    assert_int_equal(X509_CRL_verify(crl, fx->pub[PFX_P384]), 1);
    assert_int_equal(X509_CRL_verify(crl, X509_get0_pubkey(cert)), 1);

    EVP_MD_CTX_free(mctx);
    ASN1_INTEGER_free(serial);
    ASN1_TIME_free(now);
    X509_CRL_free(crl);
    X509_free(cert);
    ERR_clear_error();
}

static void test_cms(void **state)
{
    prov_fx *fx = *state;
    static const char content[] = "firmware manifest";
    X509 *cert = pfx_cert(fx->key[PFX_P256], "signer", NULL, NULL, 1, "SHA256");
    BIO *in = BIO_new_mem_buf(content, sizeof content - 1);
    BIO *out = BIO_new(BIO_s_mem());
    X509_STORE *trust = X509_STORE_new();
    char buf[64];

    assert_non_null(cert);
    CMS_ContentInfo *cms =
        CMS_sign_ex(cert, fx->key[PFX_P256], NULL, in, CMS_BINARY, ts_provider_libctx(), NULL);
    assert_non_null(cms);
    assert_int_equal(X509_STORE_add_cert(trust, cert), 1);
    assert_int_equal(CMS_verify(cms, NULL, trust, NULL, out, CMS_BINARY), 1);
    int n = BIO_read(out, buf, sizeof buf);
    assert_int_equal(n, (int)sizeof content - 1);
    assert_memory_equal(buf, content, (size_t)n);

    /* Against another signer's certificate it fails. */
    X509 *other = pfx_cert(fx->pub[PFX_P384], "other", NULL, fx->key[PFX_P384], 1, "SHA384");
    X509_STORE *wrong = X509_STORE_new();
    assert_int_equal(X509_STORE_add_cert(wrong, other), 1);
    assert_int_not_equal(CMS_verify(cms, NULL, wrong, NULL, NULL, CMS_BINARY), 1);

    X509_STORE_free(wrong);
    X509_free(other);
    CMS_ContentInfo_free(cms);
    X509_STORE_free(trust);
    BIO_free(out);
    BIO_free(in);
    X509_free(cert);
    ERR_clear_error();
}

/* --- TLS ------------------------------------------------------------------------------------ */

/* A mutual handshake where the server's or the client's key is in the store. */
static void tls_case(prov_fx *fx, int version, int key_index, int store_side_is_server)
{
    EVP_PKEY *ca_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    EVP_PKEY *plain = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    X509 *ca = pfx_cert(ca_key, "test CA", NULL, NULL, 1, "SHA256");
    X509 *store_cert = pfx_cert(fx->key[key_index], "store side", ca, ca_key, 0, "SHA256");
    X509 *plain_cert = pfx_cert(plain, "plain side", ca, ca_key, 0, "SHA256");
    SSL *s = NULL, *c = NULL;

    assert_non_null(ca);
    assert_non_null(store_cert);
    assert_non_null(plain_cert);
    SSL_CTX *store_ctx =
        pfx_tls_ctx(store_side_is_server, version, fx->key[key_index], store_cert, ca);
    SSL_CTX *plain_ctx = pfx_tls_ctx(!store_side_is_server, version, plain, plain_cert, ca);
    assert_non_null(store_ctx);
    assert_non_null(plain_ctx);
    SSL_CTX *sctx = store_side_is_server ? store_ctx : plain_ctx;
    SSL_CTX *cctx = store_side_is_server ? plain_ctx : store_ctx;

    int rc = pfx_tls_run(sctx, cctx, &s, &c);
    if (rc != 0) {
        ERR_print_errors_fp(stderr);
    }
    assert_int_equal(rc, 0);
    assert_int_equal(SSL_version(c), version);
    assert_int_equal(SSL_get_verify_result(c), X509_V_OK);
    assert_int_equal(SSL_get_verify_result(s), X509_V_OK);
    X509 *seen = SSL_get0_peer_certificate(store_side_is_server ? c : s);
    assert_non_null(seen);
    assert_int_equal(X509_cmp(seen, store_cert), 0);
    if (version == TLS1_2_VERSION) {
        assert_string_equal(SSL_CIPHER_get_name(SSL_get_current_cipher(c)),
                            "ECDHE-ECDSA-AES128-GCM-SHA256");
    }

    SSL_free(s);
    SSL_free(c);
    SSL_CTX_free(store_ctx);
    SSL_CTX_free(plain_ctx);
    X509_free(plain_cert);
    X509_free(store_cert);
    X509_free(ca);
    EVP_PKEY_free(plain);
    EVP_PKEY_free(ca_key);
    ERR_clear_error();
}

static void test_tls13(void **state)
{
    tls_case(*state, TLS1_3_VERSION, PFX_P256, 1);
    tls_case(*state, TLS1_3_VERSION, PFX_P384, 0);
}

static void test_tls12(void **state)
{
    tls_case(*state, TLS1_2_VERSION, PFX_P256, 1);
    tls_case(*state, TLS1_2_VERSION, PFX_P256, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_csr),   cmocka_unit_test(test_cert_and_crl),
        cmocka_unit_test(test_cms),   cmocka_unit_test(test_tls13),
        cmocka_unit_test(test_tls12),
    };
    return pfx_start() != 0 ? 1 : PFX_RUN_BOTH("provider X.509, CMS, TLS", tests);
}
