/*
 * Signed remote commands on the device (src/agent/agent_command.c) with keys and certificates
 * made here: a root, the tenant's issuing CA, a command-signing certificate, the device's
 * certificate for its key-store identity key. Each refusal is checked by its status and word:
 * a forged signature, a signer without the command EKU, a signer from another CA, a command for
 * another device, an expired one, a replay (the key-store counter); then valid ones run, and the
 * signed results verify.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "agent/agent_command_internal.h"
#include "test_support.h"

#define UID    "dev-0001"
#define TENANT "acme"

typedef struct fx {
    char tmp[512];
    char uri[700];
    char state[600];
    ts_agent *agent;
    EVP_PKEY *root_key, *ca_key, *other_ca_key, *signer_key, *id_key;
    X509 *root, *ca, *other_ca, *device, *signer, *wrong_eku, *foreign_signer;
    STACK_OF(X509) * chain;
    X509_STORE *roots;
    agent_cmd_ctx ctx;
} fx;

static void add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX v3;
    X509_EXTENSION *ext;
    X509V3_set_ctx(&v3, issuer != NULL ? issuer : x, x, NULL, NULL, 0);
    ext = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
    assert_non_null(ext);
    assert_int_equal(X509_add_ext(x, ext, -1), 1);
    X509_EXTENSION_free(ext);
}

/* A certificate for pub named cn, signed by key (self-signed when issuer is NULL). eku: NULL for a
 * CA, else the extended key usage. */
static X509 *make_cert(EVP_PKEY *pub, const char *cn, X509 *issuer, EVP_PKEY *key, const char *eku)
{
    static long serial = 1;
    X509 *x = X509_new();
    X509_NAME *name = X509_NAME_new();
    assert_non_null(x);
    assert_int_equal(X509_set_version(x, 2), 1);
    assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), serial++), 1);
    assert_int_equal(X509_NAME_add_entry_by_NID(name, NID_commonName, MBSTRING_UTF8,
                                                (const unsigned char *)cn, -1, -1, 0),
                     1);
    assert_int_equal(X509_set_subject_name(x, name), 1);
    assert_int_equal(X509_set_issuer_name(x, issuer != NULL ? X509_get_subject_name(issuer) : name),
                     1);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400);
    assert_int_equal(X509_set_pubkey(x, pub), 1);
    add_ext(x, issuer, NID_subject_key_identifier, "hash");
    add_ext(x, issuer, NID_authority_key_identifier, "keyid:always");
    if (eku == NULL) {
        add_ext(x, issuer, NID_basic_constraints, "critical,CA:TRUE");
        add_ext(x, issuer, NID_key_usage, "critical,keyCertSign,cRLSign");
    } else {
        add_ext(x, issuer, NID_basic_constraints, "critical,CA:FALSE");
        add_ext(x, issuer, NID_key_usage, "critical,digitalSignature");
        add_ext(x, issuer, NID_ext_key_usage, eku);
    }
    assert_true(X509_sign(x, key, EVP_sha256()) > 0);
    X509_NAME_free(name);
    return x;
}

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    char uid[TS_AGENT_UID_MAX + 1];
    ts_keystore *ks = NULL;
    EVP_PKEY *id_pub = NULL;
    int created = 0;

    assert_non_null(f);
    assert_int_equal(ts_test_tmpdir(f->tmp, sizeof f->tmp), 0);
    snprintf(f->uri, sizeof f->uri, "soft:%s/ks?pin-value=1234", f->tmp);
    snprintf(f->state, sizeof f->state, "%s/state", f->tmp);
    assert_int_equal(ts_keystore_create(f->uri, NULL, &ks), TS_OK);
    ts_keystore_free(ks);
    assert_int_equal(ts_agent_open(f->uri, f->state, &f->agent), TS_OK);
    assert_int_equal(ts_agent_init(f->agent, UID, uid, &created), TS_OK);
    ks = ts_agent_keystore(f->agent);
    assert_int_equal(ts_keystore_public_key(ks, TS_AGENT_KEY_LABEL, &id_pub), TS_OK);
    assert_int_equal(ts_keystore_evp_pkey(ks, TS_AGENT_KEY_LABEL, &f->id_key), TS_OK);

    f->root_key = EVP_EC_gen("P-256");
    f->ca_key = EVP_EC_gen("P-256");
    f->other_ca_key = EVP_EC_gen("P-256");
    f->signer_key = EVP_EC_gen("P-256");
    assert_non_null(f->root_key);
    assert_non_null(f->ca_key);
    assert_non_null(f->other_ca_key);
    assert_non_null(f->signer_key);
    f->root = make_cert(f->root_key, "Test Root", NULL, f->root_key, NULL);
    f->ca = make_cert(f->ca_key, "Tenant acme CA", f->root, f->root_key, NULL);
    f->other_ca = make_cert(f->other_ca_key, "Tenant other CA", f->root, f->root_key, NULL);
    f->device = make_cert(id_pub, UID, f->ca, f->ca_key, "clientAuth");
    f->signer = make_cert(f->signer_key, "commands", f->ca, f->ca_key, TS_COMMAND_EKU_OID);
    f->wrong_eku = make_cert(f->signer_key, "not-commands", f->ca, f->ca_key, "clientAuth");
    f->foreign_signer = make_cert(f->signer_key, "other commands", f->other_ca, f->other_ca_key,
                                  TS_COMMAND_EKU_OID);
    EVP_PKEY_free(id_pub);
    f->chain = sk_X509_new_null();
    assert_non_null(f->chain);
    assert_true(sk_X509_push(f->chain, f->ca) > 0);
    assert_int_equal(X509_up_ref(f->ca), 1);
    f->roots = X509_STORE_new();
    assert_int_equal(X509_STORE_add_cert(f->roots, f->root), 1);

    f->ctx.agent = f->agent;
    f->ctx.roots = f->roots;
    f->ctx.cert = f->device;
    f->ctx.chain = f->chain;
    f->ctx.key = f->id_key;
    f->ctx.uid = UID;
    f->ctx.tenant = TENANT;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    ts_agent_free(f->agent);
    X509_STORE_free(f->roots);
    sk_X509_pop_free(f->chain, X509_free);
    X509 *certs[] = {f->root,   f->ca,        f->other_ca,      f->device,
                     f->signer, f->wrong_eku, f->foreign_signer};
    for (size_t i = 0; i < sizeof certs / sizeof certs[0]; i++) {
        X509_free(certs[i]);
    }
    EVP_PKEY *keys[] = {f->root_key, f->ca_key, f->other_ca_key, f->signer_key, f->id_key};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        EVP_PKEY_free(keys[i]);
    }
    ts_test_rmtree(f->tmp);
    free(f);
    return 0;
}

/* A signed envelope: for uid, with seq, expiring `expires_in` seconds from now. */
static unsigned char *envelope(fx *f, X509 *signer, const char *uid, uint64_t seq, long expires_in,
                               const char *name, int argc, const char *const *argv, size_t *len)
{
    ts_command cmd;
    unsigned char *der = NULL;
    time_t now = time(NULL);

    memset(&cmd, 0, sizeof cmd);
    snprintf(cmd.id, sizeof cmd.id, "cmd-%llu", (unsigned long long)seq);
    snprintf(cmd.tenant, sizeof cmd.tenant, "%s", TENANT);
    snprintf(cmd.uid, sizeof cmd.uid, "%s", uid);
    snprintf(cmd.name, sizeof cmd.name, "%s", name);
    cmd.seq = seq;
    cmd.issued = (int64_t)now - 7200;
    cmd.expires = (int64_t)now + expires_in;
    assert_int_equal(ts_command_args_from_argv(argc, argv, cmd.args), TS_OK);
    /* The signer's own issuing CA goes in as its chain. */
    STACK_OF(X509) *chain = sk_X509_new_null();
    assert_non_null(chain);
    assert_true(sk_X509_push(chain, signer == f->foreign_signer ? f->other_ca : f->ca) > 0);
    assert_int_equal(ts_command_sign(&cmd, f->signer_key, signer, chain, &der, len), TS_OK);
    sk_X509_free(chain);
    return der;
}

static uint64_t counter(fx *f)
{
    uint64_t v = 0;
    assert_int_equal(
        ts_keystore_counter_get(ts_agent_keystore(f->agent), AGENT_COMMAND_COUNTER, &v), TS_OK);
    return v;
}

/* Processes der and checks the status and that the error starts with word. */
static void expect(fx *f, unsigned char *der, size_t len, ts_command_status want, const char *word,
                   ts_command_result *res)
{
    ts_command cmd;
    ts_command_status got = agent_command_process(&f->ctx, der, len, time(NULL), &cmd, res);
    if (got != want || strncmp(res->error, word, strlen(word)) != 0) {
        fail_msg("status %d error '%s', want %d '%s...'", (int)got, res->error, (int)want, word);
    }
    assert_int_equal(res->status, want);
    assert_string_equal(res->uid, UID);
    assert_string_equal(res->tenant, TENANT);
}

/* The result signs and verifies against the roots, with the device as the signer. */
static void result_verifies(fx *f, ts_command_result *res)
{
    unsigned char *der = NULL;
    size_t len = 0;
    ts_command_result back;
    X509 *signer = NULL;

    assert_int_equal(agent_command_result_der(&f->ctx, res, &der, &len), TS_OK);
    assert_int_equal(ts_command_result_verify(der, len, f->roots, time(NULL), &back, &signer),
                     TS_OK);
    assert_int_equal(X509_cmp(signer, f->device), 0);
    assert_int_equal(back.status, res->status);
    assert_string_equal(back.id, res->id);
    assert_string_equal(back.error, res->error);
    assert_string_equal(back.output, res->output);
    X509_free(signer);
    OPENSSL_free(der);
}

static void test_refusals(void **state)
{
    fx *f = *state;
    ts_command_result res;
    unsigned char *der;
    size_t len;

    /* Forged: the signed content changed after signing. */
    der = envelope(f, f->signer, UID, 1, 300, "ping", 0, NULL, &len);
    static const char needle[] = "\"name\":\"";
    int tampered = 0;
    for (size_t i = 0; i + strlen(needle) < len && !tampered; i++) {
        if (memcmp(der + i, needle, strlen(needle)) == 0) {
            der[i + strlen(needle)]++;
            tampered = 1;
        }
    }
    assert_true(tampered);
    expect(f, der, len, TS_COMMAND_REFUSED, "forged", &res);
    result_verifies(f, &res);
    OPENSSL_free(der);

    /* A signer without the command EKU. */
    der = envelope(f, f->wrong_eku, UID, 1, 300, "ping", 0, NULL, &len);
    expect(f, der, len, TS_COMMAND_REFUSED, "forged", &res);
    assert_string_equal(res.id, "cmd-1");
    result_verifies(f, &res);
    OPENSSL_free(der);

    /* A signer whose CA is not the one that issued the device (same root). */
    der = envelope(f, f->foreign_signer, UID, 1, 300, "ping", 0, NULL, &len);
    expect(f, der, len, TS_COMMAND_REFUSED, "foreign", &res);
    OPENSSL_free(der);

    /* Another device's command. */
    der = envelope(f, f->signer, "dev-0002", 1, 300, "ping", 0, NULL, &len);
    expect(f, der, len, TS_COMMAND_REFUSED, "foreign", &res);
    OPENSSL_free(der);

    /* Expired a minute ago. */
    der = envelope(f, f->signer, UID, 1, -60, "ping", 0, NULL, &len);
    expect(f, der, len, TS_COMMAND_REFUSED, "expired", &res);
    result_verifies(f, &res);
    OPENSSL_free(der);

    /* Not an envelope at all: refused without naming a command. */
    static const unsigned char junk[] = "not a command";
    expect(f, (unsigned char *)junk, sizeof junk - 1, TS_COMMAND_REFUSED, "malformed", &res);
    assert_string_equal(res.id, "");
    result_verifies(f, &res);

    /* Nothing ran: the counter was never raised. */
    assert_int_equal(counter(f), 0);
}

static void test_replay(void **state)
{
    fx *f = *state;
    ts_command_result res;
    unsigned char *der, *older;
    size_t len, older_len;

    der = envelope(f, f->signer, UID, 5, 300, "ping", 0, NULL, &len);
    older = envelope(f, f->signer, UID, 3, 300, "ping", 0, NULL, &older_len);
    expect(f, der, len, TS_COMMAND_DONE, "", &res);
    assert_string_equal(res.output, "pong");
    assert_int_equal(res.seq, 5);
    assert_int_equal(counter(f), 5);
    result_verifies(f, &res);

    /* The same envelope again, then an older one: refused, the counter unchanged. */
    expect(f, der, len, TS_COMMAND_REFUSED, "replayed", &res);
    assert_string_equal(res.output, "");
    result_verifies(f, &res);
    expect(f, older, older_len, TS_COMMAND_REFUSED, "replayed", &res);
    assert_int_equal(counter(f), 5);
    OPENSSL_free(der);
    OPENSSL_free(older);

    /* The next one runs. */
    der = envelope(f, f->signer, UID, 6, 300, "ping", 0, NULL, &len);
    expect(f, der, len, TS_COMMAND_DONE, "", &res);
    assert_int_equal(counter(f), 6);
    OPENSSL_free(der);
}

/* A re-enrollment that records how it was asked for. */
static int reenroll_calls, reenroll_rekey;
static ts_err fake_reenroll(void *arg, int rekey, char *out, size_t size)
{
    (void)arg;
    reenroll_calls++;
    reenroll_rekey = rekey;
    snprintf(out, size, "%s serial %s", rekey ? "rekeyed" : "reenrolled", rekey ? "0b" : "0a");
    return TS_OK;
}

static void test_handlers(void **state)
{
    fx *f = *state;
    ts_command_result res;
    unsigned char *der;
    size_t len;
    const char *args[] = {"hello", "two words", "3"};

    der = envelope(f, f->signer, UID, 1, 300, "echo", 3, args, &len);
    expect(f, der, len, TS_COMMAND_DONE, "", &res);
    assert_string_equal(res.output, "hello two words 3");
    assert_string_equal(res.id, "cmd-1");
    result_verifies(f, &res);
    OPENSSL_free(der);

    /* A verified command without a handler fails; its sequence number is spent. */
    der = envelope(f, f->signer, UID, 2, 300, "format-disk", 0, NULL, &len);
    expect(f, der, len, TS_COMMAND_FAILED, "no handler", &res);
    assert_int_equal(counter(f), 2);
    result_verifies(f, &res);
    OPENSSL_free(der);

    /* reenroll without a way to re-enroll fails, and says why. */
    der = envelope(f, f->signer, UID, 3, 300, "reenroll", 0, NULL, &len);
    expect(f, der, len, TS_COMMAND_FAILED, "re-enrollment is not available", &res);
    OPENSSL_free(der);

    /* reenroll: no argument renews, "rekey" asks for a new key, anything else is refused before
     * anything is re-enrolled. */
    static const char *const rekey[] = {"rekey"}, *const bogus[] = {"bogus"};
    static const char *const two[] = {"rekey", "rekey"};
    f->ctx.reenroll = fake_reenroll;
    der = envelope(f, f->signer, UID, 4, 300, "reenroll", 1, bogus, &len);
    expect(f, der, len, TS_COMMAND_FAILED, "reenroll takes no argument or \"rekey\"", &res);
    OPENSSL_free(der);
    der = envelope(f, f->signer, UID, 5, 300, "reenroll", 2, two, &len);
    expect(f, der, len, TS_COMMAND_FAILED, "reenroll takes no argument", &res);
    OPENSSL_free(der);
    assert_int_equal(reenroll_calls, 0);
    der = envelope(f, f->signer, UID, 6, 300, "reenroll", 0, NULL, &len);
    expect(f, der, len, TS_COMMAND_DONE, "", &res);
    assert_string_equal(res.output, "reenrolled serial 0a");
    assert_int_equal(reenroll_rekey, 0);
    OPENSSL_free(der);
    der = envelope(f, f->signer, UID, 7, 300, "reenroll", 1, rekey, &len);
    expect(f, der, len, TS_COMMAND_DONE, "", &res);
    assert_string_equal(res.output, "rekeyed serial 0b");
    assert_int_equal(reenroll_rekey, 1);
    assert_int_equal(reenroll_calls, 2);
    result_verifies(f, &res);
    OPENSSL_free(der);
    f->ctx.reenroll = NULL;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replay, setup, teardown),
        cmocka_unit_test_setup_teardown(test_handlers, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
