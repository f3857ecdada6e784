/*
 * Command envelopes and results (include/tessera/command.h): what the service signs, what a
 * device accepts, and every way an envelope is refused.
 */
#include <openssl/x509v3.h>

#include "pki_test_util.h"
#include "tessera/command.h"

typedef struct cmd_fx {
    pki_fx pki;
    EVP_PKEY *signer_key;
    X509 *signer; /* command-signing certificate from the issuing CA */
    EVP_PKEY *device_key;
    X509 *device;       /* the device "dev-1" */
    X509_STORE *roots;  /* the root alone */
    X509_STORE *issuer; /* the issuing CA alone (partial chains) */
} cmd_fx;

/* A leaf certificate for key under issuer, with extensions in OpenSSL's config syntax. */
static X509 *leaf(const char *cn, EVP_PKEY *key, X509 *issuer, EVP_PKEY *issuer_key,
                  const char *const *exts, long days)
{
    X509 *cert = X509_new();
    X509_NAME *name = X509_NAME_new();
    uint8_t serial[TS_SERIAL_LEN];
    X509V3_CTX ctx;

    assert_non_null(cert);
    pki_serial(serial);
    BIGNUM *bn = BN_bin2bn(serial, sizeof serial, NULL);
    assert_non_null(BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert)));
    BN_free(bn);
    X509_set_version(cert, 2);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1, 0);
    X509_set_subject_name(cert, name);
    X509_set_issuer_name(cert, X509_get_subject_name(issuer));
    X509_gmtime_adj(X509_getm_notBefore(cert), -60);
    X509_gmtime_adj(X509_getm_notAfter(cert), days * 86400);
    X509_set_pubkey(cert, key);
    X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
    for (size_t i = 0; exts[i] != NULL; i++) {
        char buf[256];
        snprintf(buf, sizeof buf, "%s", exts[i]);
        char *eq = strchr(buf, '=');
        assert_non_null(eq);
        *eq = '\0';
        X509_EXTENSION *ext = X509V3_EXT_nconf(NULL, &ctx, buf, eq + 1);
        assert_non_null(ext);
        X509_add_ext(cert, ext, -1);
        X509_EXTENSION_free(ext);
    }
    assert_true(X509_sign(cert, issuer_key, EVP_sha256()) > 0);
    X509_NAME_free(name);
    return cert;
}

static const char *const signer_exts[] = {"keyUsage=critical,digitalSignature",
                                          "extendedKeyUsage=" TS_COMMAND_EKU_OID,
                                          "authorityKeyIdentifier=keyid", NULL};
static const char *const device_exts[] = {"keyUsage=critical,digitalSignature",
                                          "extendedKeyUsage=clientAuth",
                                          "authorityKeyIdentifier=keyid", NULL};

static X509_STORE *store_of(X509 *cert)
{
    X509_STORE *store = X509_STORE_new();
    assert_non_null(store);
    assert_int_equal(X509_STORE_add_cert(store, cert), 1);
    return store;
}

static int setup(void **state)
{
    cmd_fx *fx = calloc(1, sizeof *fx);
    if (fx == NULL || pki_setup(&fx->pki) != 0) {
        free(fx);
        return -1;
    }
    fx->signer_key = pki_ec_key("P-256");
    fx->device_key = pki_ec_key("P-256");
    fx->signer = leaf("command signer", fx->signer_key, fx->pki.issuing, fx->pki.issuing_key,
                      signer_exts, 30);
    fx->device =
        leaf("dev-1", fx->device_key, fx->pki.issuing, fx->pki.issuing_key, device_exts, 30);
    fx->roots = store_of(fx->pki.root);
    fx->issuer = store_of(fx->pki.issuing);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    cmd_fx *fx = *state;
    X509_STORE_free(fx->roots);
    X509_STORE_free(fx->issuer);
    X509_free(fx->signer);
    X509_free(fx->device);
    EVP_PKEY_free(fx->signer_key);
    EVP_PKEY_free(fx->device_key);
    pki_teardown(&fx->pki);
    free(fx);
    return 0;
}

static ts_command command_for(const char *uid, int64_t issued, int64_t expires)
{
    ts_command c;
    memset(&c, 0, sizeof c);
    snprintf(c.id, sizeof c.id, "c-0001");
    snprintf(c.tenant, sizeof c.tenant, "default");
    snprintf(c.uid, sizeof c.uid, "%s", uid);
    snprintf(c.name, sizeof c.name, "echo");
    const char *argv[] = {"hello", "world \"quoted\""};
    assert_int_equal(ts_command_args_from_argv(2, argv, c.args), TS_OK);
    c.seq = 7;
    c.issued = issued;
    c.expires = expires;
    return c;
}

/* Signs cmd with key/cert (chain: the issuing CA) into a fresh buffer. */
static unsigned char *sign(const ts_command *cmd, EVP_PKEY *key, X509 *cert, X509 *ca, size_t *len)
{
    STACK_OF(X509) *chain = sk_X509_new_null();
    unsigned char *der = NULL;
    sk_X509_push(chain, ca);
    ts_err rv = ts_command_sign(cmd, key, cert, chain, &der, len);
    sk_X509_free(chain);
    if (rv != TS_OK) {
        fail_msg("ts_command_sign: %s", ts_error_message());
    }
    return der;
}

static void test_roundtrip(void **state)
{
    cmd_fx *fx = *state;
    time_t now = time(NULL);
    ts_command c = command_for("dev-1", now, now + 300);
    size_t len = 0;
    unsigned char *der = sign(&c, fx->signer_key, fx->signer, fx->pki.issuing, &len);
    ts_command got;

    assert_int_equal(ts_command_verify(der, len, fx->roots, fx->device, "dev-1", now, &got), TS_OK);
    assert_int_equal(memcmp(&c, &got, sizeof c), 0);
    assert_string_equal(got.args, "[\"hello\",\"world \\\"quoted\\\"\"]");
    OPENSSL_free(der);
}

static void test_signer_key_in_store(void **state)
{
    /* The issuing CA's key lives in the soft: store: signing goes through the provider. */
    cmd_fx *fx = *state;
    time_t now = time(NULL);
    ts_command c = command_for("dev-1", now, now + 300);
    X509 *ca_as_signer = leaf("store signer", fx->pki.issuing_key, fx->pki.issuing,
                              fx->pki.issuing_key, signer_exts, 30);
    size_t len = 0;
    unsigned char *der = sign(&c, fx->pki.issuing_key, ca_as_signer, fx->pki.issuing, &len);
    ts_command got;

    assert_int_equal(ts_command_verify(der, len, fx->roots, fx->device, "dev-1", now, &got), TS_OK);
    OPENSSL_free(der);
    X509_free(ca_as_signer);
}

static void test_flipped_bytes_never_change_content(void **state)
{
    cmd_fx *fx = *state;
    time_t now = time(NULL);
    ts_command c = command_for("dev-1", now, now + 300);
    size_t len = 0;
    unsigned char *der = sign(&c, fx->signer_key, fx->signer, fx->pki.issuing, &len);
    ts_command got;
    size_t accepted = 0;

    /* Every byte position, one bit each: what is signed, every certificate and the unsigned
     * CMS fields (versions, signer id, encoding: pki/signed_msg.c) are all checked, so no flip is
     * accepted; were one ever accepted, it must not change the command. */
    for (size_t i = 0; i < len; i++) {
        der[i] ^= 0x01;
        ts_err rv = ts_command_verify(der, len, fx->roots, fx->device, "dev-1", now, &got);
        der[i] ^= 0x01;
        if (rv == TS_OK) {
            accepted++;
            if (memcmp(&got, &c, sizeof c) != 0) {
                fail_msg("flipped byte %zu changed an accepted command", i);
            }
        }
    }
    fprintf(stderr, "%zu of %zu flips accepted, each with the signed content unchanged\n", accepted,
            len);
    assert_int_equal(accepted, 0);
    OPENSSL_free(der);
}

static void test_refusals(void **state)
{
    cmd_fx *fx = *state;
    time_t now = time(NULL);
    ts_command c = command_for("dev-1", now, now + 300);
    ts_command got;
    size_t len = 0;
    unsigned char *der;

    /* Signed by the device's own key: no command-signing usage. */
    der = sign(&c, fx->device_key, fx->device, fx->pki.issuing, &len);
    assert_int_equal(ts_command_verify(der, len, fx->roots, fx->device, "dev-1", now, &got),
                     TS_ERR_AUTH);
    OPENSSL_free(der);

    /* For another device: read for the report, refused as foreign. */
    c = command_for("dev-2", now, now + 300);
    der = sign(&c, fx->signer_key, fx->signer, fx->pki.issuing, &len);
    assert_int_equal(ts_command_verify(der, len, fx->roots, fx->device, "dev-1", now, &got),
                     TS_ERR_FOREIGN);
    assert_string_equal(got.id, "c-0001");
    OPENSSL_free(der);

    /* Expired. */
    c = command_for("dev-1", now - 600, now - 300);
    der = sign(&c, fx->signer_key, fx->signer, fx->pki.issuing, &len);
    assert_int_equal(ts_command_verify(der, len, fx->roots, fx->device, "dev-1", now, &got),
                     TS_ERR_EXPIRED);
    assert_int_equal(got.seq, 7);
    OPENSSL_free(der);

    /* A signer from another tenant's CA under the same root. */
    EVP_PKEY *other_ca_key = pki_ec_key("P-256");
    X509 *other_ca = pki_ca("Other Issuing", other_ca_key, fx->pki.root, fx->pki.root_key, 0, 30);
    X509 *other_signer =
        leaf("other signer", fx->signer_key, other_ca, other_ca_key, signer_exts, 30);
    c = command_for("dev-1", now, now + 300);
    der = sign(&c, fx->signer_key, other_signer, other_ca, &len);
    assert_int_equal(ts_command_verify(der, len, fx->roots, fx->device, "dev-1", now, &got),
                     TS_ERR_FOREIGN);
    OPENSSL_free(der);

    /* A self-made root's signer: no chain to the trusted root. */
    X509 *rogue_root = pki_ca("Rogue Root", other_ca_key, NULL, other_ca_key, 1, 30);
    X509 *rogue_signer =
        leaf("rogue signer", fx->signer_key, rogue_root, other_ca_key, signer_exts, 30);
    der = sign(&c, fx->signer_key, rogue_signer, rogue_root, &len);
    assert_int_equal(ts_command_verify(der, len, fx->roots, fx->device, "dev-1", now, &got),
                     TS_ERR_AUTH);
    OPENSSL_free(der);

    /* Not CMS at all, trailing bytes, empty. */
    static const unsigned char junk[] = {0x30, 0x03, 0x02, 0x01, 0x01};
    assert_int_equal(
        ts_command_verify(junk, sizeof junk, fx->roots, fx->device, "dev-1", now, &got),
        TS_ERR_INVALID);
    assert_int_equal(ts_command_verify(junk, 0, fx->roots, fx->device, "dev-1", now, &got),
                     TS_ERR_INVALID);

    X509_free(rogue_signer);
    X509_free(rogue_root);
    X509_free(other_signer);
    X509_free(other_ca);
    EVP_PKEY_free(other_ca_key);
}

static void test_sign_checks_fields(void **state)
{
    cmd_fx *fx = *state;
    time_t now = time(NULL);
    unsigned char *der = NULL;
    size_t len = 0;
    ts_command c = command_for("dev-1", now, now + 300);

    snprintf(c.name, sizeof c.name, "Reboot");
    assert_int_equal(ts_command_sign(&c, fx->signer_key, fx->signer, NULL, &der, &len),
                     TS_ERR_INVALID);
    c = command_for("dev 1", now, now + 300);
    assert_int_equal(ts_command_sign(&c, fx->signer_key, fx->signer, NULL, &der, &len),
                     TS_ERR_INVALID);
    c = command_for("dev-1", now, now);
    assert_int_equal(ts_command_sign(&c, fx->signer_key, fx->signer, NULL, &der, &len),
                     TS_ERR_INVALID);
    c = command_for("dev-1", now, now + 300);
    snprintf(c.args, sizeof c.args, "[1]");
    assert_int_equal(ts_command_sign(&c, fx->signer_key, fx->signer, NULL, &der, &len),
                     TS_ERR_INVALID);
    c.seq = 0;
    snprintf(c.args, sizeof c.args, "[]");
    assert_int_equal(ts_command_sign(&c, fx->signer_key, fx->signer, NULL, &der, &len),
                     TS_ERR_INVALID);
    assert_null(der);
}

static void test_result(void **state)
{
    cmd_fx *fx = *state;
    time_t now = time(NULL);
    ts_command_result r;
    ts_command_result got;
    unsigned char *der = NULL;
    size_t len = 0;
    X509 *signer = NULL;

    memset(&r, 0, sizeof r);
    snprintf(r.id, sizeof r.id, "c-0001");
    snprintf(r.tenant, sizeof r.tenant, "default");
    snprintf(r.uid, sizeof r.uid, "dev-1");
    snprintf(r.output, sizeof r.output, "pong");
    r.seq = 7;
    r.time = now;
    r.status = TS_COMMAND_DONE;
    assert_int_equal(ts_command_result_sign(&r, fx->device_key, fx->device, NULL, &der, &len),
                     TS_OK);
    /* Against the tenant's issuing CA alone: a partial chain is enough. */
    assert_int_equal(ts_command_result_verify(der, len, fx->issuer, now, &got, &signer), TS_OK);
    assert_int_equal(memcmp(&r, &got, sizeof r), 0);
    assert_int_equal(X509_cmp(signer, fx->device), 0);
    X509_free(signer);
    OPENSSL_free(der);

    /* Signed by a certificate whose CN is another device's. */
    snprintf(r.uid, sizeof r.uid, "dev-2");
    assert_int_equal(ts_command_result_sign(&r, fx->device_key, fx->device, NULL, &der, &len),
                     TS_OK);
    assert_int_equal(ts_command_result_verify(der, len, fx->issuer, now, &got, &signer),
                     TS_ERR_AUTH);
    assert_null(signer);
    OPENSSL_free(der);

    /* A refusal of an unreadable envelope names no command but still its device. */
    memset(&r, 0, sizeof r);
    snprintf(r.uid, sizeof r.uid, "dev-1");
    snprintf(r.error, sizeof r.error, "not one DER CMS message");
    r.status = TS_COMMAND_REFUSED;
    r.time = now;
    assert_int_equal(ts_command_result_sign(&r, fx->device_key, fx->device, NULL, &der, &len),
                     TS_OK);
    assert_int_equal(ts_command_result_verify(der, len, fx->issuer, now, &got, NULL), TS_OK);
    assert_int_equal(got.status, TS_COMMAND_REFUSED);
    assert_string_equal(got.id, "");
    /* Without the issuing CA in the message, the root alone is not enough. */
    assert_int_equal(ts_command_result_verify(der, len, fx->roots, now, &got, NULL), TS_ERR_AUTH);
    OPENSSL_free(der);
}

static void test_status_names(void **state)
{
    (void)state;
    ts_command_status s;
    assert_string_equal(ts_command_status_name(TS_COMMAND_REFUSED), "refused");
    assert_null(ts_command_status_name((ts_command_status)9));
    assert_int_equal(ts_command_status_parse("failed", &s), TS_OK);
    assert_int_equal(s, TS_COMMAND_FAILED);
    assert_int_equal(ts_command_status_parse("ok", &s), TS_ERR_INVALID);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_signer_key_in_store),
        cmocka_unit_test(test_flipped_bytes_never_change_content),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_sign_checks_fields),
        cmocka_unit_test(test_result),
        cmocka_unit_test(test_status_names),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
