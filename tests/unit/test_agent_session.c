/*
 * Provisioning sessions on the device, without a service: each request handler on a soft: key
 * store and a datastore (imports good, replayed, foreign and badly signed; objects; key and CSR;
 * public reads; datastore transactions and staging), the wire mapping, the status report and the
 * session CRL check.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "agent/agent_session_wire.h"
#include "test_support.h"

typedef struct fx {
    char tmp[512];
    char uri[700];
    char state[600];
    ts_agent *agent;
    char uid[TS_AGENT_UID_MAX + 1];
    EVP_PKEY *sender;
    sess_ctx ctx;
} fx;

static ts_keystore *ks_of(fx *f)
{
    return ts_agent_keystore(f->agent);
}

static void sender_install(fx *f, EVP_PKEY *key)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *pem = NULL;
    long n;
    assert_non_null(bio);
    assert_int_equal(PEM_write_bio_PUBKEY(bio, key), 1);
    n = BIO_get_mem_data(bio, &pem);
    assert_int_equal(ts_keystore_object_put(ks_of(f), TS_AGENT_RTP_SENDER_LABEL,
                                            (const uint8_t *)pem, (size_t)n, 0),
                     TS_OK);
    BIO_free(bio);
}

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    ts_keystore *ks = NULL;
    int created = 0;
    assert_non_null(f);
    assert_int_equal(ts_test_tmpdir(f->tmp, sizeof f->tmp), 0);
    snprintf(f->uri, sizeof f->uri, "soft:%s/ks?pin-value=1234", f->tmp);
    snprintf(f->state, sizeof f->state, "%s/state", f->tmp);
    assert_int_equal(ts_keystore_create(f->uri, NULL, &ks), TS_OK);
    ts_keystore_free(ks);
    assert_int_equal(ts_agent_open(f->uri, f->state, &f->agent), TS_OK);
    assert_int_equal(ts_agent_init(f->agent, NULL, f->uid, &created), TS_OK);
    f->sender = EVP_EC_gen("P-256");
    assert_non_null(f->sender);
    sender_install(f, f->sender);
    f->ctx.agent = f->agent;
    f->ctx.state_dir = f->state;
    assert_int_equal(ts_datastore_open_or_defaults(f->state, ks_of(f), &f->ctx.ds), TS_OK);
    sess_ctx_load_sender(&f->ctx);
    assert_non_null(f->ctx.sender);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    sess_ctx_abort(&f->ctx);
    EVP_PKEY_free(f->ctx.sender);
    ts_datastore_free(f->ctx.ds);
    ts_agent_free(f->agent);
    EVP_PKEY_free(f->sender);
    ts_test_rmtree(f->tmp);
    free(f);
    return 0;
}

static ts_err run(fx *f, const sess_request *req, sess_result *res)
{
    sess_execute(&f->ctx, req, res);
    assert_int_equal(res->id, req->id);
    return res->code;
}

/* A blob sealing a fresh key to this device's identity key (or another UID), signed by signer. */
static void seal(fx *f, EVP_PKEY *signer, const uint8_t *uid_or_null, uint64_t counter,
                 const char *label, uint8_t **blob, size_t *len)
{
    uint8_t uid[TS_KEYSTORE_UID_LEN];
    EVP_PKEY *pub = NULL;
    EVP_PKEY *key = EVP_EC_gen("P-256");
    assert_non_null(key);
    assert_int_equal(ts_keystore_uid(ks_of(f), uid), TS_OK);
    assert_int_equal(ts_keystore_public_key(ks_of(f), TS_AGENT_KEY_LABEL, &pub), TS_OK);
    assert_int_equal(ts_keystore_import_seal(signer, pub, uid_or_null != NULL ? uid_or_null : uid,
                                             TS_AGENT_KEY_LABEL, counter, label, key, blob, len),
                     TS_OK);
    EVP_PKEY_free(pub);
    EVP_PKEY_free(key);
}

static void test_import(void **state)
{
    fx *f = *state;
    sess_request req = {.id = 7, .op = SESS_KS_IMPORT};
    sess_result res;
    uint8_t *blob = NULL, *foreign = NULL, *forged = NULL;
    size_t len = 0, flen = 0, glen = 0;
    const uint8_t other_uid[TS_KEYSTORE_UID_LEN] = {1, 2, 3};
    EVP_PKEY *mallory = EVP_EC_gen("P-256");
    EVP_PKEY *pub = NULL;

    seal(f, f->sender, NULL, 1, "mqtt.key", &blob, &len);
    req.data = blob;
    req.len = len;
    assert_int_equal(run(f, &req, &res), TS_OK);
    assert_string_equal(res.label, "mqtt.key");
    assert_int_equal(ts_keystore_public_key(ks_of(f), "mqtt.key", &pub), TS_OK);
    EVP_PKEY_free(pub);
    sess_result_clear(&res);

    /* The same blob again: refused, and the result says why. */
    assert_int_equal(run(f, &req, &res), TS_ERR_REPLAY);
    assert_string_equal(sess_wire_code(res.code), "replay");
    assert_true(strlen(res.message) > 0);
    sess_result_clear(&res);

    seal(f, f->sender, other_uid, 2, "other.key", &foreign, &flen);
    req.data = foreign;
    req.len = flen;
    assert_int_equal(run(f, &req, &res), TS_ERR_FOREIGN);
    sess_result_clear(&res);

    seal(f, mallory, NULL, 3, "forged.key", &forged, &glen);
    req.data = forged;
    req.len = glen;
    assert_int_equal(run(f, &req, &res), TS_ERR_AUTH);
    assert_int_equal(ts_keystore_public_key(ks_of(f), "forged.key", &pub), TS_ERR_NOT_FOUND);
    sess_result_clear(&res);

    /* Without a trusted provisioning key nothing can be imported. */
    EVP_PKEY *saved = f->ctx.sender;
    f->ctx.sender = NULL;
    snprintf(f->ctx.sender_error, sizeof f->ctx.sender_error, "none");
    assert_int_equal(run(f, &req, &res), TS_ERR_STATE);
    f->ctx.sender = saved;
    sess_result_clear(&res);

    req.data = NULL;
    req.len = 0;
    assert_int_equal(run(f, &req, &res), TS_ERR_INVALID);
    sess_result_clear(&res);
    OPENSSL_free(blob);
    OPENSSL_free(foreign);
    OPENSSL_free(forged);
    EVP_PKEY_free(mallory);
}

static void test_objects(void **state)
{
    fx *f = *state;
    sess_request req = {.id = 1, .op = SESS_KS_PUT_OBJECT, .label = "app.config"};
    sess_result res;
    uint8_t *data = NULL;
    size_t len = 0;

    req.data = (const uint8_t *)"v1";
    req.len = 2;
    assert_int_equal(run(f, &req, &res), TS_OK);
    req.data = (const uint8_t *)"v22";
    req.len = 3;
    assert_int_equal(run(f, &req, &res), TS_OK); /* replaces */
    assert_int_equal(ts_keystore_object_get(ks_of(f), "app.config", &data, &len), TS_OK);
    assert_int_equal(len, 3);
    assert_memory_equal(data, "v22", 3);
    OPENSSL_clear_free(data, len);

    /* The agent's own objects are not the session's to change. */
    const char *reserved[] = {TS_AGENT_KEY_LABEL, TS_AGENT_UID_LABEL,        TS_AGENT_CURRENT_LABEL,
                              "identity.cert.1",  TS_AGENT_RTP_SENDER_LABEL, "ts.import"};
    for (size_t i = 0; i < sizeof reserved / sizeof reserved[0]; i++) {
        req.label = reserved[i];
        req.op = SESS_KS_PUT_OBJECT;
        assert_int_equal(run(f, &req, &res), TS_ERR_DENIED);
        req.op = SESS_KS_DELETE_OBJECT;
        assert_int_equal(run(f, &req, &res), TS_ERR_DENIED);
    }
    req.label = "bad label";
    req.op = SESS_KS_PUT_OBJECT;
    assert_int_equal(run(f, &req, &res), TS_ERR_INVALID);
    req.label = NULL;
    assert_int_equal(run(f, &req, &res), TS_ERR_INVALID);

    req.op = SESS_KS_DELETE_OBJECT;
    req.label = "app.config";
    assert_int_equal(run(f, &req, &res), TS_OK);
    assert_int_equal(run(f, &req, &res), TS_ERR_NOT_FOUND);
    assert_string_equal(sess_wire_code(res.code), "not_found");
    /* Keys are not deleted through DELETE_OBJECT. */
    assert_int_equal(ts_keystore_generate(ks_of(f), "spare.key", TS_CURVE_P256), TS_OK);
    req.label = "spare.key";
    assert_int_equal(run(f, &req, &res), TS_ERR_WRONG_TYPE);
}

static void test_genkey_csr(void **state)
{
    fx *f = *state;
    sess_request req = {.id = 3, .op = SESS_KS_GENKEY_CSR, .label = "tls.key"};
    sess_result res;
    const unsigned char *p;
    X509_REQ *csr;
    EVP_PKEY *pub = NULL;
    char cn[TS_AGENT_UID_MAX + 1];

    assert_int_equal(run(f, &req, &res), TS_OK);
    p = res.data;
    csr = d2i_X509_REQ(NULL, &p, (long)res.len);
    assert_non_null(csr);
    assert_ptr_equal(p, res.data + res.len);
    assert_int_equal(ts_keystore_public_key(ks_of(f), "tls.key", &pub), TS_OK);
    assert_int_equal(EVP_PKEY_eq(X509_REQ_get0_pubkey(csr), pub), 1);
    assert_int_equal(X509_REQ_verify(csr, pub), 1);
    assert_true(X509_NAME_get_text_by_NID(X509_REQ_get_subject_name(csr), NID_commonName, cn,
                                          sizeof cn) > 0);
    assert_string_equal(cn, f->uid);
    X509_REQ_free(csr);
    EVP_PKEY_free(pub);
    sess_result_clear(&res);

    assert_int_equal(run(f, &req, &res), TS_ERR_EXISTS);
    assert_null(res.data);
    req.label = TS_AGENT_KEY_LABEL;
    assert_int_equal(run(f, &req, &res), TS_ERR_DENIED);
}

static void test_read_public(void **state)
{
    fx *f = *state;
    sess_request req = {.id = 4, .op = SESS_KS_READ_PUBLIC, .label = TS_AGENT_KEY_LABEL};
    sess_result res;
    const unsigned char *p;
    EVP_PKEY *got, *pub = NULL;

    assert_int_equal(run(f, &req, &res), TS_OK);
    p = res.data;
    got = d2i_PUBKEY(NULL, &p, (long)res.len);
    assert_non_null(got);
    assert_int_equal(ts_keystore_public_key(ks_of(f), TS_AGENT_KEY_LABEL, &pub), TS_OK);
    assert_int_equal(EVP_PKEY_eq(got, pub), 1);
    EVP_PKEY_free(got);
    EVP_PKEY_free(pub);
    sess_result_clear(&res);

    req.label = TS_AGENT_UID_LABEL;
    assert_int_equal(run(f, &req, &res), TS_OK);
    assert_int_equal(res.len, strlen(f->uid));
    assert_memory_equal(res.data, f->uid, res.len);
    sess_result_clear(&res);

    assert_int_equal(
        ts_keystore_object_put(ks_of(f), "wifi.psk", (const uint8_t *)"s3cret", 6, TS_DATA_SECRET),
        TS_OK);
    req.label = "wifi.psk";
    assert_int_equal(run(f, &req, &res), TS_ERR_DENIED);
    assert_null(res.data);
    uint64_t v = 0;
    assert_int_equal(ts_keystore_counter_increment(ks_of(f), "boot.count", &v), TS_OK);
    req.label = "boot.count";
    assert_int_equal(run(f, &req, &res), TS_ERR_WRONG_TYPE);
    req.label = "absent";
    assert_int_equal(run(f, &req, &res), TS_ERR_NOT_FOUND);
}

static void test_datastore(void **state)
{
    fx *f = *state;
    sess_entry put[] = {
        {.name = TS_DS_MQTT_HOST,
         .type = TS_DATASTORE_TEXT,
         .value = (const uint8_t *)"b.ex",
         .len = 4},
        {.name = TS_DS_SERVER_URL,
         .type = TS_DATASTORE_TEXT,
         .value = (const uint8_t *)"https://new.example:8443",
         .len = 24},
    };
    sess_request req = {.id = 5, .op = SESS_DS_PUT, .entries = put, .entry_count = 2};
    sess_result res;
    const char *text = NULL;

    assert_int_equal(run(f, &req, &res), TS_ERR_STATE); /* no transaction */
    req.op = SESS_DS_BEGIN;
    assert_int_equal(run(f, &req, &res), TS_OK);
    assert_int_equal(run(f, &req, &res), TS_ERR_STATE); /* one at a time */
    req.op = SESS_DS_PUT;
    assert_int_equal(run(f, &req, &res), TS_OK);
    req.op = SESS_DS_COMMIT;
    assert_int_equal(run(f, &req, &res), TS_OK);
    assert_int_equal(res.generation, 1);
    assert_int_equal(run(f, &req, &res), TS_ERR_STATE); /* ended */

    assert_int_equal(ts_datastore_get_text(f->ctx.ds, TS_DS_MQTT_HOST, &text), TS_OK);
    assert_string_equal(text, "b.ex");
    /* The service URL is staged, not current. */
    assert_int_equal(ts_datastore_get_text(f->ctx.ds, TS_DS_SERVER_URL, &text), TS_ERR_NOT_FOUND);
    assert_int_equal(ts_datastore_get_text(f->ctx.ds, SESS_STAGED_SERVER, &text), TS_OK);
    assert_string_equal(text, "https://new.example:8443");

    const char *names[] = {TS_DS_MQTT_HOST};
    sess_request rd = {.id = 6, .op = SESS_DS_READ, .names = names, .name_count = 1};
    assert_int_equal(run(f, &rd, &res), TS_OK);
    assert_int_equal(res.entry_count, 1);
    assert_string_equal(res.entries[0].name, TS_DS_MQTT_HOST);
    assert_int_equal(res.entries[0].type, TS_DATASTORE_TEXT);
    assert_memory_equal(res.entries[0].value, "b.ex", 4);
    sess_result_clear(&res);
    rd.name_count = 0; /* every entry, but not the staging ones */
    assert_int_equal(run(f, &rd, &res), TS_OK);
    assert_true(res.entry_count >= 1);
    for (size_t i = 0; i < res.entry_count; i++) {
        assert_true(strncmp(res.entries[i].name, "staged.", 7) != 0);
    }
    sess_result_clear(&res);
    names[0] = "no.such";
    rd.name_count = 1;
    assert_int_equal(run(f, &rd, &res), TS_ERR_NOT_FOUND);
    assert_int_equal(res.entry_count, 0);

    /* Staging entries are the agent's; a bad value fails the put and the commit writes nothing. */
    sess_entry bad[] = {{.name = SESS_STAGED_TRUST,
                         .type = TS_DATASTORE_TEXT,
                         .value = (const uint8_t *)"x",
                         .len = 1}};
    req.op = SESS_DS_BEGIN;
    assert_int_equal(run(f, &req, &res), TS_OK);
    req.op = SESS_DS_PUT;
    req.entries = bad;
    req.entry_count = 1;
    assert_int_equal(run(f, &req, &res), TS_ERR_DENIED);
    sess_entry nondigit[] = {{.name = TS_DS_MQTT_PORT,
                              .type = TS_DATASTORE_UINT,
                              .value = (const uint8_t *)"88x3",
                              .len = 4}};
    req.entries = nondigit;
    assert_int_equal(run(f, &req, &res), TS_ERR_INVALID);
    sess_ctx_abort(&f->ctx);
    assert_int_equal(ts_datastore_generation(f->ctx.ds), 1);
}

static void test_agent_ops(void **state)
{
    fx *f = *state;
    sess_request req = {.id = 9, .op = SESS_AGENT_REENROLL};
    sess_result res;

    /* No service in this session's context: refused, never attempted. */
    assert_int_equal(run(f, &req, &res), TS_ERR_STATE);
    req.op = SESS_AGENT_REPORT;
    assert_int_equal(run(f, &req, &res), TS_OK);
    req.op = (sess_op)99;
    assert_int_equal(run(f, &req, &res), TS_ERR_UNSUPPORTED);
}

static void test_report(void **state)
{
    fx *f = *state;
    sess_report r;
    int found = 0;

    for (int i = 1; i <= 6; i++) {
        char msg[32];
        snprintf(msg, sizeof msg, "error %d\nsecond line", i);
        sess_error_record(f->state, msg);
    }
    assert_int_equal(sess_report_make(&f->ctx, &r), TS_OK);
    assert_string_equal(r.uid, f->uid);
    assert_string_equal(r.agent_version, TS_AGENT_VERSION);
    assert_string_equal(r.firmware, "unknown");
    assert_string_equal(r.backend, "soft");
    assert_int_equal(r.enrolled, 0);
    assert_int_equal(r.error_count, SESS_ERRORS_MAX);
    assert_string_equal(r.errors[0], "error 6 second line");
    assert_string_equal(r.errors[3], "error 3 second line");
    for (size_t i = 0; i < r.object_count; i++) {
        found |= strcmp(r.objects[i].label, TS_AGENT_KEY_LABEL) == 0;
    }
    assert_true(found);

    /* Packed with results, it reads back as the protocol says. */
    sess_result res[2];
    memset(res, 0, sizeof res);
    res[0].id = 11;
    res[0].code = TS_ERR_REPLAY;
    snprintf(res[0].message, sizeof res[0].message, "replayed blob");
    res[1].id = 12;
    res[1].aborted = 1;
    uint8_t *buf = NULL;
    size_t len = 0;
    assert_int_equal(sess_wire_agent_message("s1", &r, res, 2, &buf, &len), TS_OK);
    Tessera__Agent__V1__AgentMessage *m = tessera__agent__v1__agent_message__unpack(NULL, len, buf);
    assert_non_null(m);
    assert_int_equal(m->version, 1);
    assert_string_equal(m->session_id, "s1");
    assert_non_null(m->status);
    assert_string_equal(m->status->uid, f->uid);
    assert_string_equal(m->status->firmware_version, "unknown");
    assert_int_equal(m->status->n_last_errors, SESS_ERRORS_MAX);
    assert_int_equal(m->status->n_keystore_objects, r.object_count);
    assert_int_equal(m->n_results, 2);
    assert_false(m->results[0]->ok);
    assert_string_equal(m->results[0]->error_code, "replay");
    assert_string_equal(m->results[1]->error_code, "aborted");
    tessera__agent__v1__agent_message__free_unpacked(m, NULL);
    OPENSSL_free(buf);
    sess_report_clear(&r);
}

static void test_wire_request(void **state)
{
    Tessera__Agent__V1__Request r = TESSERA__AGENT__V1__REQUEST__INIT;
    Tessera__Agent__V1__DatastoreEntry e = TESSERA__AGENT__V1__DATASTORE_ENTRY__INIT;
    Tessera__Agent__V1__DatastoreEntry *ep[] = {&e};
    sess_request req;
    sess_entry *entries = NULL;
    (void)state;

    r.id = 42;
    r.endpoint = TESSERA__AGENT__V1__ENDPOINT__DATASTORE;
    r.operation = TESSERA__AGENT__V1__OPERATION__IMPORT; /* a key-store operation */
    assert_int_equal(sess_wire_request(&r, &req, &entries), TS_ERR_UNSUPPORTED);
    r.operation = (Tessera__Agent__V1__Operation)77;
    assert_int_equal(sess_wire_request(&r, &req, &entries), TS_ERR_UNSUPPORTED);
    r.operation = TESSERA__AGENT__V1__OPERATION__DS_PUT;
    e.name = "mqtt.host";
    e.type = TESSERA__AGENT__V1__VALUE_TYPE__TEXT;
    e.value.data = (uint8_t *)"h";
    e.value.len = 1;
    r.entries = ep;
    r.n_entries = 1;
    assert_int_equal(sess_wire_request(&r, &req, &entries), TS_OK);
    assert_int_equal(req.id, 42);
    assert_int_equal(req.op, SESS_DS_PUT);
    assert_int_equal(req.entry_count, 1);
    assert_string_equal(req.entries[0].name, "mqtt.host");
    assert_int_equal(req.entries[0].type, TS_DATASTORE_TEXT);
    OPENSSL_free(entries);
    e.type = (Tessera__Agent__V1__ValueType)9;
    assert_int_equal(sess_wire_request(&r, &req, &entries), TS_ERR_INVALID);
    OPENSSL_free(entries);

    /* REENROLL is forced; rekey asks for a new key. */
    Tessera__Agent__V1__Request re = TESSERA__AGENT__V1__REQUEST__INIT;
    re.endpoint = TESSERA__AGENT__V1__ENDPOINT__AGENT;
    re.operation = TESSERA__AGENT__V1__OPERATION__REENROLL;
    for (int rekey = 0; rekey <= 1; rekey++) {
        re.rekey = rekey;
        assert_int_equal(sess_wire_request(&re, &req, &entries), TS_OK);
        assert_true(req.op == SESS_AGENT_REENROLL && req.force == 1 && req.rekey == rekey);
    }

    /* A ServiceMessage of another version, or not one at all, is refused. */
    Tessera__Agent__V1__ServiceMessage sm = TESSERA__AGENT__V1__SERVICE_MESSAGE__INIT;
    Tessera__Agent__V1__ServiceMessage *got = NULL;
    uint8_t buf[64];
    sm.version = 2;
    size_t n = tessera__agent__v1__service_message__pack(&sm, buf);
    assert_int_equal(sess_wire_service_message(buf, n, &got), TS_ERR_UNSUPPORTED);
    assert_null(got);
    sm.version = 1;
    sm.done = 1;
    n = tessera__agent__v1__service_message__pack(&sm, buf);
    assert_int_equal(sess_wire_service_message(buf, n, &got), TS_OK);
    assert_true(got->done);
    sess_wire_service_message_free(got);
    const uint8_t junk[] = {0xff, 0xff, 0xff};
    assert_int_equal(sess_wire_service_message(junk, sizeof junk, &got), TS_ERR_CORRUPT);
}

/* --- the CRL --------------------------------------------------------------------------------- */

static X509 *cert_make(EVP_PKEY *pub, const char *cn, X509 *issuer, EVP_PKEY *key, long serial)
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
    assert_true(X509_sign(x, key, EVP_sha256()) > 0);
    X509_NAME_free(name);
    return x;
}

static uint8_t *crl_make(X509 *issuer, EVP_PKEY *key, long revoked_serial, size_t *len)
{
    X509_CRL *crl = X509_CRL_new();
    ASN1_TIME *now = ASN1_TIME_set(NULL, time(NULL));
    uint8_t *der = NULL;
    assert_non_null(crl);
    assert_int_equal(X509_CRL_set_version(crl, 1), 1);
    assert_int_equal(X509_CRL_set_issuer_name(crl, X509_get_subject_name(issuer)), 1);
    assert_int_equal(X509_CRL_set1_lastUpdate(crl, now), 1);
    if (revoked_serial > 0) {
        X509_REVOKED *r = X509_REVOKED_new();
        ASN1_INTEGER *s = ASN1_INTEGER_new();
        ASN1_INTEGER_set(s, revoked_serial);
        assert_int_equal(X509_REVOKED_set_serialNumber(r, s), 1);
        assert_int_equal(X509_REVOKED_set_revocationDate(r, now), 1);
        assert_int_equal(X509_CRL_add0_revoked(crl, r), 1);
        ASN1_INTEGER_free(s);
    }
    assert_true(X509_CRL_sign(crl, key, EVP_sha256()) > 0);
    int n = i2d_X509_CRL(crl, &der);
    assert_true(n > 0);
    *len = (size_t)n;
    ASN1_TIME_free(now);
    X509_CRL_free(crl);
    return der;
}

static void test_crl(void **state)
{
    EVP_PKEY *ca_key = EVP_EC_gen("P-256"), *svc_key = EVP_EC_gen("P-256");
    EVP_PKEY *other_key = EVP_EC_gen("P-256");
    X509 *ca = cert_make(ca_key, "Session CA", NULL, ca_key, 1);
    X509 *svc = cert_make(svc_key, "service.example", ca, ca_key, 77);
    STACK_OF(X509) *roots = sk_X509_new_null();
    size_t len = 0;
    uint8_t *der;
    const uint8_t *p;
    (void)state;

    assert_true(sk_X509_push(roots, ca) > 0);
    der = crl_make(ca, ca_key, 0, &len); /* empty CRL */
    p = der;
    assert_int_equal(sess_crl_check(svc, NULL, roots, &p, &len, 1), TS_OK);
    OPENSSL_free(der);
    der = crl_make(ca, ca_key, 5, &len); /* someone else revoked */
    p = der;
    assert_int_equal(sess_crl_check(svc, NULL, roots, &p, &len, 1), TS_OK);
    OPENSSL_free(der);
    der = crl_make(ca, ca_key, 77, &len); /* the service revoked */
    p = der;
    assert_int_equal(sess_crl_check(svc, NULL, roots, &p, &len, 1), TS_ERR_AUTH);
    assert_non_null(strstr(ts_error_message(), "revoked"));
    OPENSSL_free(der);
    der = crl_make(ca, other_key, 0, &len); /* not signed by the CA */
    p = der;
    assert_int_equal(sess_crl_check(svc, NULL, roots, &p, &len, 1), TS_ERR_AUTH);
    der[len / 2] ^= 1;
    assert_true(sess_crl_check(svc, NULL, roots, &p, &len, 1) != TS_OK);
    OPENSSL_free(der);
    const uint8_t junk[] = {0x30, 0x03, 0x02, 0x01, 0x01};
    p = junk;
    len = sizeof junk;
    assert_int_equal(sess_crl_check(svc, NULL, roots, &p, &len, 1), TS_ERR_CORRUPT);
    assert_int_equal(sess_crl_check(svc, NULL, roots, NULL, NULL, 0), TS_OK);

    sk_X509_pop_free(roots, X509_free);
    X509_free(svc);
    EVP_PKEY_free(ca_key);
    EVP_PKEY_free(svc_key);
    EVP_PKEY_free(other_key);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_import, setup, teardown),
        cmocka_unit_test_setup_teardown(test_objects, setup, teardown),
        cmocka_unit_test_setup_teardown(test_genkey_csr, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_public, setup, teardown),
        cmocka_unit_test_setup_teardown(test_datastore, setup, teardown),
        cmocka_unit_test_setup_teardown(test_agent_ops, setup, teardown),
        cmocka_unit_test_setup_teardown(test_report, setup, teardown),
        cmocka_unit_test(test_wire_request),
        cmocka_unit_test(test_crl),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
