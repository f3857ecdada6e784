/*
 * The whole paper backup (ts_ceremony_backup / ts_ceremony_restore) on both backends: a root key
 * backed up 3-of-5 into share files, taken offline, restored from any three files; two files, a
 * mistyped file, shares of another backup and an altered blob fail with their own message.
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
#include <openssl/x509.h>

#include "ks_check.h"
#include "ks_fixture.h"
#include "tessera/ceremony.h"

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
            fail_msg("%s: %s, want %s (%s)", #call, ts_err_name(got_), ts_err_name(want),          \
                     ts_error_message());                                                          \
        }                                                                                          \
    } while (0)
#define OK(call) EXPECT(call, TS_OK)

typedef struct ceremony {
    ks_fixture fx;
    X509 *root;
    uint8_t *wrapped;
    size_t wrapped_len;
    char paths[5][1100];
} ceremony;

/* A certificate for the store's key "root": only its public key and fingerprint matter here,
 * so an in-memory key signs it. */
static X509 *root_cert(ts_keystore *ks, const char *label)
{
    EVP_PKEY *pub = NULL;
    EVP_PKEY *signer = EVP_EC_gen("prime256v1");
    X509 *x = X509_new();

    OK(ts_keystore_public_key(ks, label, &pub));
    assert_non_null(signer);
    assert_non_null(x);
    assert_int_equal(X509_set_version(x, 2), 1);
    assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), 1), 1);
    X509_NAME *name = X509_get_subject_name(x);
    assert_int_equal(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                                (const unsigned char *)"Test Root", -1, -1, 0),
                     1);
    assert_int_equal(X509_set_issuer_name(x, name), 1);
    assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), 0));
    assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), 3600));
    assert_int_equal(X509_set_pubkey(x, pub), 1);
    assert_true(X509_sign(x, signer, EVP_sha256()) > 0);
    EVP_PKEY_free(pub);
    EVP_PKEY_free(signer);
    return x;
}

static int setup(void **state, ks_backend_id backend)
{
    ceremony *c = calloc(1, sizeof *c);
    char **texts = NULL;

    if (c == NULL || ks_fixture_init(&c->fx, backend) != 0) {
        free(c);
        return -1;
    }
    *state = c;
    if (ts_keystore_generate_ex(c->fx.ks, "root", TS_CURVE_P384, TS_KEY_BACKUP) != TS_OK) {
        return -1;
    }
    c->root = root_cert(c->fx.ks, "root");
    if (ts_ceremony_backup(c->fx.ks, "root", c->root, 3, 5, "acme", "2025-01-31", &c->wrapped,
                           &c->wrapped_len, &texts) != TS_OK) {
        fprintf(stderr, "backup: %s\n", ts_error_message());
        return -1;
    }
    for (size_t i = 0; i < 5; i++) {
        snprintf(c->paths[i], sizeof c->paths[i], "%s/share-%zu.txt", c->fx.tmp, i + 1);
        FILE *f = fopen(c->paths[i], "w");
        if (f == NULL || fputs(texts[i], f) < 0 || fclose(f) != 0) {
            return -1;
        }
    }
    ts_ceremony_texts_free(texts, 5);
    return 0;
}

static int setup_soft(void **state)
{
    return setup(state, KS_SOFT);
}

static int setup_pkcs11(void **state)
{
    return setup(state, KS_PKCS11);
}

static int teardown(void **state)
{
    ceremony *c = *state;
    X509_free(c->root);
    OPENSSL_free(c->wrapped);
    ks_fixture_cleanup(&c->fx);
    free(c);
    return 0;
}

static void assert_signs(ts_keystore *ks, const char *label, const X509 *root)
{
    uint8_t digest[48] = {1, 2, 3}, sig[TS_SIGNATURE_MAX];
    size_t sig_len = sizeof sig;
    OK(ts_keystore_sign_digest(ks, label, digest, sizeof digest, sig, &sig_len));
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, X509_get0_pubkey(root), NULL);
    assert_non_null(ctx);
    assert_int_equal(EVP_PKEY_verify_init(ctx), 1);
    assert_int_equal(EVP_PKEY_verify(ctx, sig, sig_len, digest, sizeof digest), 1);
    EVP_PKEY_CTX_free(ctx);
}

static void offline_and_back(void **state)
{
    ceremony *c = *state;
    ts_keystore *ks = c->fx.ks;

    /* offline-root: the key leaves the online store. */
    OK(ts_keystore_delete(ks, "root"));
    const char *three[] = {c->paths[4], c->paths[1], c->paths[2]};
    OK(ts_ceremony_restore(ks, "root", c->root, c->wrapped, c->wrapped_len, three, 3,
                           TS_KEY_BACKUP));
    assert_signs(ks, "root", c->root);

    /* Any three, or all five, under another label. */
    const char *others[] = {c->paths[0], c->paths[3], c->paths[4]};
    OK(ts_ceremony_restore(ks, "root-2", c->root, c->wrapped, c->wrapped_len, others, 3, 0));
    assert_signs(ks, "root-2", c->root);
    const char *all[] = {c->paths[0], c->paths[1], c->paths[2], c->paths[3], c->paths[4]};
    OK(ts_ceremony_restore(ks, "root-3", c->root, c->wrapped, c->wrapped_len, all, 5, 0));
    EXPECT(ts_ceremony_restore(ks, "root-3", c->root, c->wrapped, c->wrapped_len, all, 5, 0),
           TS_ERR_EXISTS);
}

static void bad_shares(void **state)
{
    ceremony *c = *state;
    ts_keystore *ks = c->fx.ks;
    char msg[1400];

    OK(ts_keystore_delete(ks, "root"));
    const char *two[] = {c->paths[0], c->paths[1]};
    EXPECT(ts_ceremony_restore(ks, "root", c->root, c->wrapped, c->wrapped_len, two, 2, 0),
           TS_ERR_INVALID);
    assert_string_equal(ts_error_message(), "2 shares given, 3 needed");

    const char *dup[] = {c->paths[0], c->paths[1], c->paths[0]};
    EXPECT(ts_ceremony_restore(ks, "root", c->root, c->wrapped, c->wrapped_len, dup, 3, 0),
           TS_ERR_INVALID);
    assert_non_null(strstr(ts_error_message(), "are both share 1 of 5"));

    /* Share 2's seventh line (its first KEY line, after NAME and DATE) mistyped. */
    FILE *f = fopen(c->paths[1], "r+");
    char text[2048];
    size_t n = fread(text, 1, sizeof text - 1, f);
    text[n] = '\0';
    char *line7 = strstr(text, "\n07 KEY ") + 8;
    *line7 = *line7 == '0' ? '8' : '0';
    rewind(f);
    fwrite(text, 1, n, f);
    fclose(f);
    const char *typo[] = {c->paths[0], c->paths[1], c->paths[2]};
    EXPECT(ts_ceremony_restore(ks, "root", c->root, c->wrapped, c->wrapped_len, typo, 3, 0),
           TS_ERR_INVALID);
    snprintf(msg, sizeof msg, "share 2 (%s), line 7: checksum mismatch — retype this line",
             c->paths[1]);
    assert_string_equal(ts_error_message(), msg);

    const char *missing[] = {c->paths[0], "/nonexistent/share.txt", c->paths[2]};
    EXPECT(ts_ceremony_restore(ks, "root", c->root, c->wrapped, c->wrapped_len, missing, 3, 0),
           TS_ERR_IO);
    assert_non_null(strstr(ts_error_message(), "share 2 (/nonexistent/share.txt)"));

    /* Nothing was stored by any of it. */
    EVP_PKEY *none = NULL;
    EXPECT(ts_keystore_public_key(ks, "root", &none), TS_ERR_NOT_FOUND);
}

static void wrong_backup(void **state)
{
    ceremony *c = *state;
    ts_keystore *ks = c->fx.ks;
    uint8_t *wrapped2 = NULL;
    size_t wrapped2_len = 0;
    char **texts = NULL;

    /* A second backup of the same key: its shares do not mix with the first's. */
    OK(ts_ceremony_backup(ks, "root", c->root, 2, 3, NULL, NULL, &wrapped2, &wrapped2_len, &texts));
    char path[1200];
    snprintf(path, sizeof path, "%s/second-1.txt", c->fx.tmp);
    FILE *f = fopen(path, "w");
    fputs(texts[0], f);
    fclose(f);
    ts_ceremony_texts_free(texts, 3);
    OK(ts_keystore_delete(ks, "root"));
    const char *mixed[] = {c->paths[0], c->paths[1], path};
    EXPECT(ts_ceremony_restore(ks, "root", c->root, c->wrapped, c->wrapped_len, mixed, 3, 0),
           TS_ERR_INVALID);
    assert_non_null(strstr(ts_error_message(), "is from another backup"));

    /* The right shares with the other backup's blob: the KEK does not open it. */
    const char *three[] = {c->paths[0], c->paths[1], c->paths[2]};
    EXPECT(ts_ceremony_restore(ks, "root", c->root, wrapped2, wrapped2_len, three, 3, 0),
           TS_ERR_AUTH);
    /* An altered blob. */
    c->wrapped[c->wrapped_len / 2] ^= 0x10;
    EXPECT(ts_ceremony_restore(ks, "root", c->root, c->wrapped, c->wrapped_len, three, 3, 0),
           TS_ERR_AUTH);
    c->wrapped[c->wrapped_len / 2] ^= 0x10;
    OPENSSL_free(wrapped2);

    /* Shares for another root certificate. */
    OK(ts_keystore_generate(ks, "other", TS_CURVE_P256));
    X509 *other = root_cert(ks, "other");
    EXPECT(ts_ceremony_restore(ks, "root", other, c->wrapped, c->wrapped_len, three, 3, 0),
           TS_ERR_INVALID);
    assert_non_null(strstr(ts_error_message(), "is for the root certificate with SHA-256"));
    /* And no backup of a key that is not the certificate's. */
    OK(ts_keystore_generate_ex(ks, "spare", TS_CURVE_P384, TS_KEY_BACKUP));
    EXPECT(ts_ceremony_backup(ks, "spare", c->root, 3, 5, NULL, NULL, &wrapped2, &wrapped2_len,
                              &texts),
           TS_ERR_INVALID);
    assert_null(wrapped2);
    assert_null(texts);
    EXPECT(
        ts_ceremony_backup(ks, "other", other, 3, 5, NULL, NULL, &wrapped2, &wrapped2_len, &texts),
        TS_ERR_POLICY);
    EXPECT(ts_ceremony_backup(ks, "spare", c->root, 4, 3, NULL, NULL, &wrapped2, &wrapped2_len,
                              &texts),
           TS_ERR_INVALID);
    X509_free(other);
    OK(ts_ceremony_restore(ks, "root", c->root, c->wrapped, c->wrapped_len, three, 3, 0));
}

int main(void)
{
#define ON(backend, fn)                                                                            \
    {                                                                                              \
#backend "/" #fn, fn, setup_##backend, teardown, NULL                                      \
    }
    const struct CMUnitTest tests[] = {
        ON(soft, offline_and_back),   ON(soft, bad_shares),   ON(soft, wrong_backup),
        ON(pkcs11, offline_and_back), ON(pkcs11, bad_shares), ON(pkcs11, wrong_backup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
