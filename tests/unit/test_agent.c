/*
 * The device agent without a service: init and the UID, claim codes, the EST reply decoder and
 * checks (certs-only PKCS#7 in base64), the identity pointer and its commits (a rekey's key
 * switch included), the CSR with and without the channel binding, on a soft: store.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/pkcs7.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "agent/agent_internal.h"
#include "tessera/est.h"
#include "test_support.h"

typedef struct fx {
    char tmp[512];
    char uri[700];
    char state[600];
    ts_agent *agent;
    char uid[TS_AGENT_UID_MAX + 1];
    EVP_PKEY *root_key;
    X509 *root;
    X509_STORE *roots;
} fx;

/* A certificate for pub named cn, signed by key (self-signed when issuer is NULL). */
static X509 *make_cert(EVP_PKEY *pub, const char *cn, X509 *issuer, EVP_PKEY *key, long serial)
{
    X509 *x = X509_new();
    X509_NAME *name = X509_NAME_new();
    assert_non_null(x);
    assert_int_equal(X509_set_version(x, 2), 1);
    assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), serial), 1);
    assert_int_equal(X509_NAME_add_entry_by_NID(name, NID_commonName, MBSTRING_UTF8,
                                                (const unsigned char *)cn, -1, -1, 0),
                     1);
    assert_int_equal(X509_set_subject_name(x, name), 1);
    assert_int_equal(X509_set_issuer_name(x, issuer != NULL ? X509_get_subject_name(issuer) : name),
                     1);
    X509_gmtime_adj(X509_getm_notBefore(x), -60);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400);
    assert_int_equal(X509_set_pubkey(x, pub), 1);
    if (issuer == NULL) {
        X509_EXTENSION *bc =
            X509V3_EXT_conf_nid(NULL, NULL, NID_basic_constraints, "critical,CA:TRUE");
        assert_non_null(bc);
        assert_int_equal(X509_add_ext(x, bc, -1), 1);
        X509_EXTENSION_free(bc);
    }
    assert_true(X509_sign(x, key, EVP_sha256()) > 0);
    X509_NAME_free(name);
    return x;
}

/* Base64 of a certs-only PKCS#7 holding certs. */
static char *certs_only_b64(X509 *a, X509 *b)
{
    STACK_OF(X509) *certs = sk_X509_new_null();
    PKCS7 *p7 = PKCS7_new();
    BIO *mem = BIO_new(BIO_s_mem()), *b64 = BIO_new(BIO_f_base64());
    BUF_MEM *bm = NULL;
    assert_non_null(certs);
    sk_X509_push(certs, a);
    if (b != NULL) {
        sk_X509_push(certs, b);
    }
    assert_int_equal(PKCS7_set_type(p7, NID_pkcs7_signed), 1);
    assert_int_equal(ASN1_INTEGER_set(p7->d.sign->version, 1), 1);
    assert_int_equal(PKCS7_content_new(p7, NID_pkcs7_data), 1);
    for (int i = 0; i < sk_X509_num(certs); i++) {
        assert_int_equal(PKCS7_add_certificate(p7, sk_X509_value(certs, i)), 1);
    }
    b64 = BIO_push(b64, mem);
    assert_int_equal(i2d_PKCS7_bio(b64, p7), 1);
    assert_int_equal(BIO_flush(b64), 1);
    BIO_get_mem_ptr(mem, &bm);
    char *out = OPENSSL_strndup(bm->data, bm->length);
    BIO_free_all(b64);
    PKCS7_free(p7);
    sk_X509_free(certs);
    return out;
}

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    int created = 0;
    assert_non_null(f);
    assert_int_equal(ts_test_tmpdir(f->tmp, sizeof f->tmp), 0);
    snprintf(f->uri, sizeof f->uri, "soft:%s/ks?pin-value=1234", f->tmp);
    snprintf(f->state, sizeof f->state, "%s/state", f->tmp);
    ts_keystore *ks = NULL;
    assert_int_equal(ts_keystore_create(f->uri, NULL, &ks), TS_OK);
    ts_keystore_free(ks);
    assert_int_equal(ts_agent_open(f->uri, f->state, &f->agent), TS_OK);
    assert_int_equal(ts_agent_init(f->agent, NULL, f->uid, &created), TS_OK);
    assert_int_equal(created, 1);
    f->root_key = EVP_EC_gen("P-256");
    assert_non_null(f->root_key);
    f->root = make_cert(f->root_key, "Test Root", NULL, f->root_key, 1);
    f->roots = X509_STORE_new();
    assert_int_equal(X509_STORE_add_cert(f->roots, f->root), 1);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    ts_agent_free(f->agent);
    X509_STORE_free(f->roots);
    X509_free(f->root);
    EVP_PKEY_free(f->root_key);
    ts_test_rmtree(f->tmp);
    free(f);
    return 0;
}

static EVP_PKEY *identity_pub(fx *f)
{
    EVP_PKEY *pub = NULL;
    assert_int_equal(ts_keystore_public_key(ts_agent_keystore(f->agent), TS_AGENT_KEY_LABEL, &pub),
                     TS_OK);
    return pub;
}

static void test_init_uid(void **state)
{
    fx *f = *state;
    char uid[TS_AGENT_UID_MAX + 1];
    uint8_t raw[TS_KEYSTORE_UID_LEN];
    char hex[2 * TS_KEYSTORE_UID_LEN + 1];
    int created = 1;

    assert_int_equal(ts_keystore_uid(ts_agent_keystore(f->agent), raw), TS_OK);
    for (size_t i = 0; i < sizeof raw; i++) {
        snprintf(hex + 2 * i, 3, "%02x", raw[i]);
    }
    assert_string_equal(f->uid, hex);
    assert_int_equal(ts_agent_init(f->agent, NULL, uid, &created), TS_OK);
    assert_int_equal(created, 0);
    assert_string_equal(uid, f->uid);
    assert_int_equal(ts_agent_init(f->agent, "other-uid", uid, &created), TS_ERR_EXISTS);
    assert_int_equal(ts_agent_init(f->agent, "bad uid", uid, &created), TS_ERR_INVALID);
}

static void test_claim(void **state)
{
    fx *f = *state;
    ts_keystore *ks = ts_agent_keystore(f->agent);
    uint8_t *data = NULL;
    size_t len = 0;
    static const struct {
        const char *code;
        ts_err want;
    } cases[] = {
        {"", TS_ERR_INVALID},         {" \n", TS_ERR_INVALID},    {"TSC-AB CD", TS_ERR_INVALID},
        {"TSC:ABCD", TS_ERR_INVALID}, {"TSC-ABCD-1234\n", TS_OK}, {"TSC-OTHER", TS_ERR_EXISTS},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_int_equal(ts_agent_claim_inject(f->agent, cases[i].code, strlen(cases[i].code)),
                         cases[i].want);
    }
    assert_int_equal(ts_keystore_object_get(ks, TS_AGENT_CLAIM_LABEL, &data, &len), TS_OK);
    assert_int_equal(len, 13);
    assert_memory_equal(data, "TSC-ABCD-1234", 13);
    OPENSSL_clear_free(data, len);
    assert_int_equal(ts_agent_claim_delete(f->agent), TS_OK);
    assert_int_equal(ts_agent_claim_delete(f->agent), TS_ERR_NOT_FOUND);
    char big[TS_AGENT_CLAIM_MAX + 2];
    memset(big, 'A', sizeof big);
    assert_int_equal(ts_agent_claim_inject(f->agent, big, sizeof big), TS_ERR_INVALID);
}

static void test_reply_decode(void **state)
{
    fx *f = *state;
    STACK_OF(X509) *certs = NULL;
    EVP_PKEY *pub = identity_pub(f);
    X509 *leaf = make_cert(pub, f->uid, f->root, f->root_key, 7);
    char *b64 = certs_only_b64(leaf, f->root);

    assert_int_equal(agent_est_certs_decode((uint8_t *)b64, strlen(b64), &certs), TS_OK);
    assert_int_equal(sk_X509_num(certs), 2);
    assert_int_equal(X509_cmp(sk_X509_value(certs, 0), leaf), 0);
    sk_X509_pop_free(certs, X509_free);

    static const char *bad[] = {"", "!!!!", "TUlJQg==", "-----BEGIN PKCS7-----"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(agent_est_certs_decode((const uint8_t *)bad[i], strlen(bad[i]), &certs),
                         TS_ERR_INVALID);
        assert_null(certs);
    }
    /* Tamper: flip a byte in the middle of the base64 text. */
    b64[strlen(b64) / 2] = b64[strlen(b64) / 2] == 'A' ? 'B' : 'A';
    ts_err rv = agent_est_certs_decode((uint8_t *)b64, strlen(b64), &certs);
    if (rv == TS_OK) {
        /* A flip inside a certificate still parses as PKCS#7; its signature no longer verifies. */
        X509 *x = NULL;
        STACK_OF(X509) *chain = NULL;
        assert_int_equal(agent_est_certs_accept(certs, pub, f->uid, NULL, f->roots, &x, &chain),
                         TS_ERR_AUTH);
        sk_X509_pop_free(certs, X509_free);
    } else {
        assert_int_equal(rv, TS_ERR_INVALID);
    }
    OPENSSL_free(b64);
    X509_free(leaf);
    EVP_PKEY_free(pub);
}

static void test_reply_accept(void **state)
{
    fx *f = *state;
    EVP_PKEY *pub = identity_pub(f), *other = EVP_EC_gen("P-256");
    EVP_PKEY *other_root_key = EVP_EC_gen("P-256");
    X509 *other_root = make_cert(other_root_key, "Other Root", NULL, other_root_key, 2);
    struct {
        X509 *leaf;
        const char *uid;
        ts_err want;
    } cases[] = {
        {make_cert(pub, f->uid, f->root, f->root_key, 10), f->uid, TS_OK},
        {make_cert(other, f->uid, f->root, f->root_key, 11), f->uid, TS_ERR_AUTH},
        {make_cert(pub, "someone-else", f->root, f->root_key, 12), f->uid, TS_ERR_AUTH},
        {make_cert(pub, f->uid, other_root, other_root_key, 13), f->uid, TS_ERR_AUTH},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        STACK_OF(X509) *certs = sk_X509_new_null(), *chain = NULL;
        X509 *leaf = NULL;
        X509_up_ref(cases[i].leaf);
        sk_X509_push(certs, cases[i].leaf);
        assert_int_equal(
            agent_est_certs_accept(certs, pub, cases[i].uid, NULL, f->roots, &leaf, &chain),
            cases[i].want);
        if (cases[i].want == TS_OK) {
            assert_int_equal(X509_cmp(leaf, cases[i].leaf), 0);
            assert_int_equal(sk_X509_num(chain), 1); /* the root */
        } else {
            assert_null(leaf);
            assert_null(chain);
        }
        X509_free(leaf);
        sk_X509_pop_free(chain, X509_free);
        sk_X509_pop_free(certs, X509_free);
        X509_free(cases[i].leaf);
    }
    X509_free(other_root);
    EVP_PKEY_free(other_root_key);
    EVP_PKEY_free(other);
    EVP_PKEY_free(pub);
}

static void test_pointer(void **state)
{
    (void)state;
    agent_pointer p = {.generation = 4, .key = "identity"}, q;
    char *json = NULL;
    snprintf(p.cert, sizeof p.cert, "identity.cert.4");
    snprintf(p.chain, sizeof p.chain, "identity.chain.4");
    assert_int_equal(agent_pointer_encode(&p, &json), TS_OK);
    assert_int_equal(agent_pointer_decode((uint8_t *)json, strlen(json), &q), TS_OK);
    assert_int_equal(q.generation, 4);
    assert_string_equal(q.cert, "identity.cert.4");
    OPENSSL_free(json);
    static const char *bad[] = {
        "",
        "{}",
        "not json",
        "{\"version\":1,\"generation\":4,\"key\":\"identity\",\"cert\":\"identity.cert.3\","
        "\"chain\":\"identity.chain.4\"}",
        "{\"version\":2,\"generation\":4,\"key\":\"identity\",\"cert\":\"identity.cert.4\","
        "\"chain\":\"identity.chain.4\"}",
        "{\"version\":1,\"generation\":0,\"key\":\"identity\",\"cert\":\"identity.cert.0\","
        "\"chain\":\"identity.chain.0\"}",
        "{\"version\":1,\"generation\":4,\"key\":\"bad label\",\"cert\":\"identity.cert.4\","
        "\"chain\":\"identity.chain.4\"}",
        "{\"version\":1,\"generation\":4,\"key\":\"identity\",\"cert\":\"identity.cert.4\","
        "\"chain\":\"identity.chain.4\",\"x\":1}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(agent_pointer_decode((const uint8_t *)bad[i], strlen(bad[i]), &q),
                         TS_ERR_CORRUPT);
    }
}

static void test_commit(void **state)
{
    fx *f = *state;
    ts_keystore *ks = ts_agent_keystore(f->agent);
    EVP_PKEY *pub = identity_pub(f);
    STACK_OF(X509) *chain = sk_X509_new_null(), *loaded_chain = NULL;
    ts_agent_status st;
    agent_pointer p;
    X509 *loaded = NULL;
    uint64_t gen = 0;
    uint8_t *data = NULL;
    size_t len = 0;

    assert_int_equal(ts_agent_status_get(f->agent, NULL, &st), TS_OK);
    assert_int_equal(st.enrolled, 0);
    sk_X509_push(chain, f->root);
    for (long i = 1; i <= 3; i++) {
        X509 *leaf = make_cert(pub, f->uid, f->root, f->root_key, 100 + i);
        assert_int_equal(agent_identity_commit(ks, TS_AGENT_KEY_LABEL, leaf, chain, &gen), TS_OK);
        assert_int_equal(gen, (uint64_t)i);
        assert_int_equal(agent_identity_load(ks, &p, &loaded, &loaded_chain), TS_OK);
        assert_int_equal(X509_cmp(loaded, leaf), 0);
        X509_free(loaded);
        sk_X509_pop_free(loaded_chain, X509_free);
        X509_free(leaf);
    }
    /* Older generations were swept. */
    assert_int_equal(ts_keystore_object_get(ks, "identity.cert.2", &data, &len), TS_ERR_NOT_FOUND);
    assert_int_equal(ts_agent_status_get(f->agent, "/nonexistent/roots.pem", &st),
                     TS_ERR_NOT_FOUND);
    assert_int_equal(ts_agent_status_get(f->agent, NULL, &st), TS_OK);
    assert_int_equal(st.enrolled, 1);
    assert_int_equal(st.generation, 3);
    assert_string_equal(st.serial, "67"); /* 103 */

    /* A leftover of an attempt cut short (generation 4 without a pointer) changes nothing. */
    assert_int_equal(ts_keystore_object_put(ks, "identity.cert.4", (const uint8_t *)"junk", 4, 0),
                     TS_OK);
    assert_int_equal(ts_agent_status_get(f->agent, NULL, &st), TS_OK);
    assert_int_equal(st.generation, 3);

    /* A certificate for another key under the pointer is reported as corrupt. */
    EVP_PKEY *other = EVP_EC_gen("P-256");
    X509 *wrong = make_cert(other, f->uid, f->root, f->root_key, 200);
    assert_int_equal(agent_identity_commit(ks, TS_AGENT_KEY_LABEL, wrong, chain, &gen), TS_OK);
    assert_int_equal(gen, 4);
    assert_int_equal(ts_agent_status_get(f->agent, NULL, &st), TS_ERR_CORRUPT);
    /* A broken pointer: the next commit takes a generation above every object. */
    assert_int_equal(
        ts_keystore_object_replace(ks, TS_AGENT_CURRENT_LABEL, (const uint8_t *)"{", 1, 0), TS_OK);
    assert_int_equal(ts_agent_status_get(f->agent, NULL, &st), TS_ERR_CORRUPT);
    X509 *good = make_cert(pub, f->uid, f->root, f->root_key, 201);
    assert_int_equal(agent_identity_commit(ks, TS_AGENT_KEY_LABEL, good, chain, &gen), TS_OK);
    assert_int_equal(gen, 5);
    assert_int_equal(ts_agent_status_get(f->agent, NULL, &st), TS_OK);
    X509_free(good);
    X509_free(wrong);
    EVP_PKEY_free(other);
    sk_X509_free(chain);
    EVP_PKEY_free(pub);
}

static void test_csr(void **state)
{
    fx *f = *state;
    X509_NAME *name = X509_NAME_new();
    char *b64 = NULL;
    assert_int_equal(X509_NAME_add_entry_by_NID(name, NID_commonName, MBSTRING_UTF8,
                                                (unsigned char *)f->uid, -1, -1, 0),
                     1);
    assert_int_equal(
        agent_csr_make(ts_agent_keystore(f->agent), TS_AGENT_KEY_LABEL, name, NULL, &b64), TS_OK);
    /* Decode and check: the request verifies with the identity key and names the UID. */
    BIO *mem = BIO_new_mem_buf(b64, -1), *dec = BIO_new(BIO_f_base64());
    dec = BIO_push(dec, mem);
    X509_REQ *req = d2i_X509_REQ_bio(dec, NULL);
    assert_non_null(req);
    EVP_PKEY *pub = identity_pub(f);
    assert_int_equal(X509_REQ_verify(req, pub), 1);
    assert_int_equal(X509_NAME_cmp(X509_REQ_get_subject_name(req), name), 0);
    EVP_PKEY_free(pub);
    X509_REQ_free(req);
    BIO_free_all(dec);
    OPENSSL_free(b64);
    X509_NAME_free(name);
}

/* The CSR for proof of possession: its challengePassword is what the service's check expects. */
static void test_csr_challenge(void **state)
{
    fx *f = *state;
    const uint8_t binding[32] = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15, 16,
                                 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 250};
    uint8_t other[32];
    char challenge[64];
    X509_NAME *name = X509_NAME_new();
    char *b64 = NULL;

    assert_int_equal(EVP_EncodeBlock((unsigned char *)challenge, binding, sizeof binding), 44);
    assert_int_equal(X509_NAME_add_entry_by_NID(name, NID_commonName, MBSTRING_UTF8,
                                                (unsigned char *)f->uid, -1, -1, 0),
                     1);
    assert_int_equal(agent_csr_make_ex(ts_agent_keystore(f->agent), TS_AGENT_KEY_LABEL, name, NULL,
                                       challenge, &b64),
                     TS_OK);
    BIO *mem = BIO_new_mem_buf(b64, -1), *dec = BIO_new(BIO_f_base64());
    dec = BIO_push(dec, mem);
    X509_REQ *req = d2i_X509_REQ_bio(dec, NULL);
    assert_non_null(req);
    EVP_PKEY *pub = identity_pub(f);
    assert_int_equal(X509_REQ_verify(req, pub), 1);
    assert_int_equal(ts_est_pop_check(req, binding, sizeof binding), TS_OK);
    memcpy(other, binding, sizeof other);
    other[0] ^= 1;
    assert_int_equal(ts_est_pop_check(req, other, sizeof other), TS_ERR_POLICY);
    EVP_PKEY_free(pub);
    X509_REQ_free(req);
    BIO_free_all(dec);
    OPENSSL_free(b64);
    X509_NAME_free(name);
}

/* A commit naming a rekeyed key removes the identity keys it replaced, and only those. */
static void test_commit_rekey(void **state)
{
    fx *f = *state;
    ts_keystore *ks = ts_agent_keystore(f->agent);
    STACK_OF(X509) *chain = sk_X509_new_null();
    EVP_PKEY *pub = identity_pub(f), *newpub = NULL;
    ts_agent_status st;
    uint64_t gen = 0;

    sk_X509_push(chain, f->root);
    X509 *first = make_cert(pub, f->uid, f->root, f->root_key, 300);
    assert_int_equal(agent_identity_commit(ks, TS_AGENT_KEY_LABEL, first, chain, &gen), TS_OK);
    /* A key left by a rekey cut short, the rekey's own key, and a key that is not the identity's.
     */
    assert_int_equal(ts_keystore_generate(ks, "identity.key.9", TS_CURVE_P256), TS_OK);
    assert_int_equal(ts_keystore_generate(ks, "identity.key.2", TS_CURVE_P256), TS_OK);
    assert_int_equal(ts_keystore_generate(ks, "factory", TS_CURVE_P256), TS_OK);
    /* Before the switch, nothing of the current identity goes. */
    assert_int_equal(ts_agent_status_get(f->agent, NULL, &st), TS_OK);
    assert_string_equal(st.key, TS_AGENT_KEY_LABEL);
    assert_int_equal(ts_keystore_public_key(ks, "identity.key.2", &newpub), TS_OK);
    X509 *second = make_cert(newpub, f->uid, f->root, f->root_key, 301);
    assert_int_equal(agent_identity_commit(ks, "identity.key.2", second, chain, &gen), TS_OK);
    assert_int_equal(gen, 2);
    assert_int_equal(ts_agent_status_get(f->agent, NULL, &st), TS_OK);
    assert_string_equal(st.key, "identity.key.2");
    EVP_PKEY *gone = NULL;
    assert_int_equal(ts_keystore_public_key(ks, TS_AGENT_KEY_LABEL, &gone), TS_ERR_NOT_FOUND);
    assert_int_equal(ts_keystore_public_key(ks, "identity.key.9", &gone), TS_ERR_NOT_FOUND);
    assert_int_equal(ts_keystore_public_key(ks, "factory", &gone), TS_OK);
    EVP_PKEY_free(gone);
    X509_free(first);
    X509_free(second);
    EVP_PKEY_free(newpub);
    EVP_PKEY_free(pub);
    sk_X509_free(chain);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_init_uid, setup, teardown),
        cmocka_unit_test_setup_teardown(test_claim, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reply_decode, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reply_accept, setup, teardown),
        cmocka_unit_test(test_pointer),
        cmocka_unit_test_setup_teardown(test_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_csr, setup, teardown),
        cmocka_unit_test_setup_teardown(test_csr_challenge, setup, teardown),
        cmocka_unit_test_setup_teardown(test_commit_rekey, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
