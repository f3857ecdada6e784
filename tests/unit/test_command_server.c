/*
 * Remote commands at the CA level (include/tessera/commands.h), on SQLite and PostgreSQL:
 * per-device sequence numbers, refused commands changing nothing, the tenant's command key made
 * once with its command-signing usage, envelopes a device accepts, results recorded once and
 * refused when signed by another device, for another command or by a revoked certificate, and
 * expiry.
 */
#define _XOPEN_SOURCE 700
#include <pthread.h>
#include <stdio.h>

#include <openssl/x509v3.h>

#include "ca_test_util.h"
#include "tessera/commands.h"

static void make(ts_ca *ca, const char *uid, const char *name, const char *args, int64_t ttl,
                 ts_command_row *row)
{
    ts_command_spec spec = {.device_uid = uid, .name = name, .args = args, .ttl = ttl};
    assert_err(ts_ca_command_create(ca, &spec, row), TS_OK);
}

static void seq_and_list(ca_fx *fx)
{
    ts_command_row a1, a2, a3, b1, *rows = NULL;
    size_t n = 0;
    char action[64], object[64];
    EVP_PKEY *ka = NULL, *kb = NULL;
    X509 *ca_ = ca_issue_device(fx->ca, "dev-seq-a", &ka);
    X509 *cb = ca_issue_device(fx->ca, "dev-seq-b", &kb);

    make(fx->ca, "dev-seq-a", "reboot", NULL, 0, &a1);
    make(fx->ca, "dev-seq-a", "echo", "[\"x\", \"y z\"]", 60, &a2);
    make(fx->ca, "dev-seq-a", "echo", "[]", 0, &a3);
    make(fx->ca, "dev-seq-b", "reboot", NULL, 0, &b1);
    assert_int_equal(a1.cmd.seq, 1);
    assert_int_equal(a2.cmd.seq, 2);
    assert_int_equal(a3.cmd.seq, 3);
    assert_int_equal(b1.cmd.seq, 1);
    assert_string_equal(a2.cmd.args, "[\"x\",\"y z\"]"); /* compact */
    assert_string_equal(a1.cmd.args, "[]");
    assert_int_equal(a1.cmd.expires - a1.cmd.issued, TS_COMMAND_TTL_DEFAULT);
    assert_int_equal(a2.cmd.expires - a2.cmd.issued, 60);
    assert_int_equal(a1.state, TS_COMMAND_PENDING);
    assert_string_not_equal(a1.cmd.id, a2.cmd.id);
    ca_last_audit(fx->ca, 0, action, sizeof action, object, sizeof object);
    assert_string_equal(action, "command.create");
    assert_string_equal(object, b1.cmd.id);

    assert_err(ts_ca_command_list(fx->ca, NULL, "dev-seq-a", 0, 0, &rows, &n), TS_OK);
    assert_int_equal(n, 3);
    assert_string_equal(rows[0].cmd.id, a3.cmd.id); /* newest first */
    assert_string_equal(rows[2].cmd.id, a1.cmd.id);
    int64_t cursor = rows[0].rowid;
    OPENSSL_free(rows);
    assert_err(ts_ca_command_list(fx->ca, NULL, "dev-seq-a", cursor, 1, &rows, &n), TS_OK);
    assert_int_equal(n, 1);
    assert_string_equal(rows[0].cmd.id, a2.cmd.id);
    OPENSSL_free(rows);

    ts_command_row got;
    assert_err(ts_ca_command_get(fx->ca, NULL, "dev-seq-a", a2.cmd.id, &got), TS_OK);
    assert_int_equal(got.cmd.seq, 2);
    assert_string_equal(got.cmd.name, "echo");
    assert_string_equal(got.cmd.tenant, TS_DEFAULT_TENANT);
    /* Another device's command is not found under this one. */
    assert_err(ts_ca_command_get(fx->ca, NULL, "dev-seq-b", a2.cmd.id, &got), TS_ERR_NOT_FOUND);
    X509_free(ca_);
    X509_free(cb);
    EVP_PKEY_free(ka);
    EVP_PKEY_free(kb);
}

static void refused(ca_fx *fx)
{
    ca_snap before;
    ts_command_row row;
    EVP_PKEY *k = NULL;
    X509 *c = ca_issue_device(fx->ca, "dev-ref", &k);
    assert_err(ts_ca_device_register(fx->ca, NULL, "dev-off", NULL), TS_OK);
    assert_err(ts_ca_device_set_state(fx->ca, NULL, "dev-off", TS_DEVICE_DISABLED), TS_OK);

    ca_snap_take(fx->ca, fx->dir, &before);
    ts_command_spec s = {.device_uid = "dev-ref", .name = "Reboot"};
    assert_err(ts_ca_command_create(fx->ca, &s, &row), TS_ERR_INVALID);
    s.name = "9lives";
    assert_err(ts_ca_command_create(fx->ca, &s, &row), TS_ERR_INVALID);
    s.name = "reboot";
    s.ttl = TS_COMMAND_TTL_MAX + 1;
    assert_err(ts_ca_command_create(fx->ca, &s, &row), TS_ERR_INVALID);
    s.ttl = -1;
    assert_err(ts_ca_command_create(fx->ca, &s, &row), TS_ERR_INVALID);
    s.ttl = 0;
    s.args = "[1]";
    assert_err(ts_ca_command_create(fx->ca, &s, &row), TS_ERR_INVALID);
    s.args = "{\"a\":\"b\"}";
    assert_err(ts_ca_command_create(fx->ca, &s, &row), TS_ERR_INVALID);
    s.args = NULL;
    s.device_uid = "dev-nobody";
    assert_err(ts_ca_command_create(fx->ca, &s, &row), TS_ERR_NOT_FOUND);
    s.device_uid = "dev-off";
    assert_err(ts_ca_command_create(fx->ca, &s, &row), TS_ERR_STATE);
    s.device_uid = "bad uid";
    assert_err(ts_ca_command_create(fx->ca, &s, &row), TS_ERR_INVALID);
    s.device_uid = "dev-ref";
    s.tenant = "no-such-tenant";
    assert_err(ts_ca_command_create(fx->ca, &s, &row), TS_ERR_NOT_FOUND);
    ca_snap_same(fx->ca, fx->dir, &before);
    X509_free(c);
    EVP_PKEY_free(k);
}

/* The instance root as a device's trust store. */
static X509_STORE *root_store(ts_ca *ca)
{
    X509 *root = NULL;
    assert_err(ts_ca_cert(ca, NULL, TS_CA_ROOT, &root), TS_OK);
    X509_STORE *st = X509_STORE_new();
    assert_int_equal(X509_STORE_add_cert(st, root), 1);
    X509_free(root);
    return st;
}

static void key_and_sign(ca_fx *fx)
{
    ts_command_row row;
    X509 *kc1 = NULL, *kc2 = NULL;
    EVP_PKEY *k = NULL;
    X509 *dev = ca_issue_device(fx->ca, "dev-sign", &k);
    unsigned char *der = NULL;
    size_t len = 0;

    make(fx->ca, "dev-sign", "echo", "[\"hello\"]", 120, &row);
    assert_err(ts_ca_command_sign(fx->ca, &row, &der, &len), TS_OK);
    X509_STORE *roots = root_store(fx->ca);
    ts_command got;
    assert_err(ts_command_verify(der, len, roots, dev, "dev-sign", time(NULL), &got), TS_OK);
    assert_string_equal(got.id, row.cmd.id);
    assert_int_equal(got.seq, row.cmd.seq);
    assert_string_equal(got.args, "[\"hello\"]");
    /* Another device does not take it. */
    assert_err(ts_command_verify(der, len, roots, dev, "dev-other", time(NULL), &got),
               TS_ERR_FOREIGN);
    OPENSSL_free(der);
    X509_STORE_free(roots);

    /* One key, made once, with the command-signing usage only. */
    assert_err(ts_ca_command_key_cert(fx->ca, NULL, &kc1), TS_OK);
    assert_err(ts_ca_command_key_cert(fx->ca, NULL, &kc2), TS_OK);
    assert_int_equal(X509_cmp(kc1, kc2), 0);
    EXTENDED_KEY_USAGE *eku = X509_get_ext_d2i(kc1, NID_ext_key_usage, NULL, NULL);
    assert_non_null(eku);
    assert_int_equal(sk_ASN1_OBJECT_num(eku), 1);
    char oid[80];
    OBJ_obj2txt(oid, sizeof oid, sk_ASN1_OBJECT_value(eku, 0), 1);
    assert_string_equal(oid, TS_COMMAND_EKU_OID);
    EXTENDED_KEY_USAGE_free(eku);
    X509_free(kc1);
    X509_free(kc2);
    X509_free(dev);
    EVP_PKEY_free(k);
}

static void result_of(const ts_command_row *row, const char *uid, uint64_t seq,
                      ts_command_status st, ts_command_result *r)
{
    memset(r, 0, sizeof *r);
    snprintf(r->id, sizeof r->id, "%s", row->cmd.id);
    snprintf(r->tenant, sizeof r->tenant, "%s", row->cmd.tenant);
    snprintf(r->uid, sizeof r->uid, "%s", uid);
    r->seq = seq;
    r->time = time(NULL);
    r->status = st;
    snprintf(r->output, sizeof r->output, "%s", st == TS_COMMAND_DONE ? "hello" : "");
    snprintf(r->error, sizeof r->error, "%s", st == TS_COMMAND_DONE ? "" : "no such handler");
}

static ts_err send_result(ts_ca *ca, const char *topic_uid, const ts_command_result *r,
                          EVP_PKEY *key, X509 *cert, ts_command_row *out)
{
    unsigned char *der = NULL;
    size_t len = 0;
    assert_err(ts_command_result_sign(r, key, cert, NULL, &der, &len), TS_OK);
    ts_err rv = ts_ca_command_result(ca, TS_DEFAULT_TENANT, topic_uid, der, len, out);
    OPENSSL_free(der);
    return rv;
}

static void results(ca_fx *fx)
{
    ts_command_row c1, c2, c3, got;
    ts_command_result r;
    char action[64], object[64], serial[TS_SERIAL_HEX];
    EVP_PKEY *ka = NULL, *kb = NULL, *ka2 = NULL;
    X509 *a = ca_issue_device(fx->ca, "dev-res-a", &ka);
    X509 *b = ca_issue_device(fx->ca, "dev-res-b", &kb);

    make(fx->ca, "dev-res-a", "echo", "[\"hello\"]", 0, &c1);
    make(fx->ca, "dev-res-a", "nothing", NULL, 0, &c2);
    make(fx->ca, "dev-res-b", "echo", NULL, 0, &c3);

    /* Signed by another device: its certificate's CN is not the result's uid. */
    result_of(&c1, "dev-res-a", c1.cmd.seq, TS_COMMAND_DONE, &r);
    assert_err(send_result(fx->ca, "dev-res-a", &r, kb, b, &got), TS_ERR_AUTH);
    ca_last_audit(fx->ca, 0, action, sizeof action, object, sizeof object);
    assert_string_equal(action, "command.result.refused");
    /* Another device's own result on this device's topic. */
    result_of(&c3, "dev-res-b", c3.cmd.seq, TS_COMMAND_DONE, &r);
    assert_err(send_result(fx->ca, "dev-res-a", &r, kb, b, &got), TS_ERR_AUTH);
    /* For another device's command, signed by this one. */
    result_of(&c3, "dev-res-a", c3.cmd.seq, TS_COMMAND_DONE, &r);
    assert_err(send_result(fx->ca, "dev-res-a", &r, ka, a, &got), TS_ERR_NOT_FOUND);
    /* The right command with another seq. */
    result_of(&c1, "dev-res-a", c2.cmd.seq, TS_COMMAND_DONE, &r);
    assert_err(send_result(fx->ca, "dev-res-a", &r, ka, a, &got), TS_ERR_AUTH);
    /* Garbage. */
    static const unsigned char junk[] = {0x30, 0x03, 0x02, 0x01, 0x01};
    assert_true(ts_ca_command_result(fx->ca, NULL, "dev-res-a", junk, sizeof junk, &got) != TS_OK);
    assert_err(ts_ca_command_get(fx->ca, NULL, "dev-res-a", c1.cmd.id, &got), TS_OK);
    assert_int_equal(got.state, TS_COMMAND_PENDING);

    /* The real one, recorded once. */
    result_of(&c1, "dev-res-a", c1.cmd.seq, TS_COMMAND_DONE, &r);
    assert_err(send_result(fx->ca, "dev-res-a", &r, ka, a, &got), TS_OK);
    assert_int_equal(got.state, TS_COMMAND_STATE_DONE);
    assert_err(ts_ca_command_get(fx->ca, NULL, "dev-res-a", c1.cmd.id, &got), TS_OK);
    assert_int_equal(got.state, TS_COMMAND_STATE_DONE);
    assert_string_equal(got.output, "hello");
    assert_true(got.result_time > 0);
    ca_last_audit(fx->ca, 0, action, sizeof action, object, sizeof object);
    assert_string_equal(action, "command.result");
    assert_string_equal(object, c1.cmd.id);
    assert_err(send_result(fx->ca, "dev-res-a", &r, ka, a, &got), TS_ERR_STATE);

    /* A failed one. */
    result_of(&c2, "dev-res-a", c2.cmd.seq, TS_COMMAND_FAILED, &r);
    /* ... but from a revoked certificate first: refused. */
    ca_serial(a, serial);
    X509 *a2 = ca_issue_device(fx->ca, "dev-res-a", &ka2);
    assert_err(ts_ca_cert_revoke(fx->ca, NULL, serial, 1), TS_OK);
    assert_err(send_result(fx->ca, "dev-res-a", &r, ka, a, &got), TS_ERR_AUTH);
    assert_err(ts_ca_command_get(fx->ca, NULL, "dev-res-a", c2.cmd.id, &got), TS_OK);
    assert_int_equal(got.state, TS_COMMAND_PENDING);
    assert_err(send_result(fx->ca, "dev-res-a", &r, ka2, a2, &got), TS_OK);
    assert_int_equal(got.state, TS_COMMAND_STATE_FAILED);
    assert_string_equal(got.error, "no such handler");

    X509_free(a);
    X509_free(a2);
    X509_free(b);
    EVP_PKEY_free(ka);
    EVP_PKEY_free(ka2);
    EVP_PKEY_free(kb);
}

static void expiry(ca_fx *fx)
{
    ts_command_row c, s, got, *rows = NULL;
    size_t n = 0;
    EVP_PKEY *k = NULL;
    X509 *d = ca_issue_device(fx->ca, "dev-exp", &k);

    make(fx->ca, "dev-exp", "echo", NULL, 1, &c);
    make(fx->ca, "dev-exp", "echo", NULL, 3600, &s);
    assert_err(ts_ca_command_pending(fx->ca, 1000, &rows, &n), TS_OK);
    assert_true(n >= 2);
    OPENSSL_free(rows);
    assert_err(ts_ca_command_mark_sent(fx->ca, &c), TS_OK);
    assert_err(ts_ca_command_get(fx->ca, NULL, "dev-exp", c.cmd.id, &got), TS_OK);
    assert_int_equal(got.state, TS_COMMAND_SENT);
    assert_true(got.sent > 0);
    assert_err(ts_ca_command_expire(fx->ca, time(NULL) + 10, &n), TS_OK);
    assert_true(n >= 1);
    assert_err(ts_ca_command_get(fx->ca, NULL, "dev-exp", c.cmd.id, &got), TS_OK);
    assert_int_equal(got.state, TS_COMMAND_EXPIRED);
    assert_err(ts_ca_command_get(fx->ca, NULL, "dev-exp", s.cmd.id, &got), TS_OK);
    assert_int_equal(got.state, TS_COMMAND_PENDING);
    X509_free(d);
    EVP_PKEY_free(k);
}

typedef struct race_arg {
    ts_ca *ca;
    ts_err rv;
    X509 *cert;
} race_arg;

static void *race_run(void *p)
{
    race_arg *a = p;
    a->rv = ts_ca_command_key_cert(a->ca, "race", &a->cert);
    return NULL;
}

/* Two handles (as two workers or processes) making the same tenant's key at once: one key, one
 * certificate, both get it. */
static void key_race(ca_fx *fx)
{
    race_arg a[2] = {{fx->ca, TS_OK, NULL}, {NULL, TS_OK, NULL}};
    pthread_t th[2];
    assert_err(ts_ca_tenant_create(fx->ca, "race", "Race Org", NULL), TS_OK);
    assert_err(fx->db_url[0] != '\0' ? ts_ca_open_db(fx->dir, fx->db_url, "second", &a[1].ca)
                                     : ts_ca_open(fx->dir, "second", &a[1].ca),
               TS_OK);
    size_t certs = ca_cert_count(fx->ca);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(pthread_create(&th[i], NULL, race_run, &a[i]), 0);
    }
    for (int i = 0; i < 2; i++) {
        pthread_join(th[i], NULL);
    }
    assert_err(a[0].rv, TS_OK);
    assert_err(a[1].rv, TS_OK);
    assert_int_equal(X509_cmp(a[0].cert, a[1].cert), 0);
    assert_int_equal(ca_cert_count(fx->ca), certs + 1);
    X509_free(a[0].cert);
    X509_free(a[1].cert);
    ts_ca_free(a[1].ca);
}

int main(void)
{
    static const ca_case cases[] = {
        {"seq_and_list", seq_and_list}, {"refused", refused}, {"key_and_sign", key_and_sign},
        {"results", results},           {"expiry", expiry},   {"key_race", key_race},
    };
    return ca_run_cases("commands", cases, sizeof cases / sizeof cases[0]);
}
