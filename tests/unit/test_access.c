/*
 * Access control on a CA instance (include/tessera/access.h), on SQLite and PostgreSQL: users and
 * API tokens, claim codes and zero-touch enrollment, the device registry, the revocation feed
 * (also from two handles on one database), CA lookups and the service's TLS certificate. A
 * refused call changes nothing.
 */
#define _XOPEN_SOURCE 700
#include <ctype.h>
#include <stdio.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "ca_test_util.h"
#include "store/store_internal.h"
#include "tessera/access.h"
#include "tessera/store_access.h"

/* Runs one UPDATE on the instance's store, as time passing would (no sleeping in tests). */
static void store_set(ts_ca *ca, const char *sql, int64_t a, int64_t b)
{
    ts_store *s = ts_ca_store(ca);
    ts_sql_value p[] = {ts_sql_int(a), ts_sql_int(b)};
    int64_t changes = 0;
    assert_err(ts_store_begin(s), TS_OK);
    assert_err(ts_store_write(s, sql, p, 2, &changes), TS_OK);
    assert_int_equal(changes, 1);
    assert_err(ts_store_commit(s), TS_OK);
}

static int is_token(const char *t)
{
    return strlen(t) == 68 && strncmp(t, "tsk_", 4) == 0 && strspn(t + 4, "0123456789abcdef") == 64;
}

/* The message every refused token gets, whatever the reason. */
static void token_refused(ts_ca *ca, const char *token, char first[512])
{
    ts_principal p;
    assert_err(ts_ca_token_authenticate(ca, token, &p), TS_ERR_AUTH);
    if (first[0] == '\0') {
        snprintf(first, 512, "%s", ts_error_message());
    }
    assert_string_equal(ts_error_message(), first);
}

/* --- Users and tokens ------------------------------------------------------------------------ */

static void users(ca_fx *fx)
{
    ts_user_row u;
    ts_user_row *rows = NULL;
    size_t count = 0;
    ca_snap before;
    ts_role role;

    assert_string_equal(ts_role_name(TS_ROLE_OPERATOR), "operator");
    assert_string_equal(ts_role_name((ts_role)0), "?");
    assert_err(ts_role_parse("auditor", &role), TS_OK);
    assert_int_equal(role, TS_ROLE_AUDITOR);
    assert_err(ts_role_parse("root", &role), TS_ERR_INVALID);
    assert_msg("root");

    /* init made the instance-wide admin. */
    assert_err(ts_ca_user_get(fx->ca, NULL, "admin", &u), TS_OK);
    assert_int_equal(u.role, TS_ROLE_ADMIN);
    assert_int_equal(u.tenant_id, 0);

    assert_err(ts_ca_user_create(fx->ca, "default", "alice", TS_ROLE_OPERATOR, NULL, &u), TS_OK);
    assert_string_equal(u.tenant, "default");
    assert_int_equal(u.role, TS_ROLE_OPERATOR);
    assert_true(u.tenant_id > 0);
    /* Instance-wide users: the same name is another user. */
    assert_err(ts_ca_user_create(fx->ca, NULL, "audit", TS_ROLE_AUDITOR, NULL, &u), TS_OK);
    assert_int_equal(u.tenant_id, 0);
    assert_string_equal(u.tenant, "");

    ca_snap_take(fx->ca, fx->dir, &before);
    assert_err(ts_ca_user_create(fx->ca, "default", "alice", TS_ROLE_ADMIN, NULL, NULL),
               TS_ERR_EXISTS);
    assert_err(ts_ca_user_create(fx->ca, NULL, "op", TS_ROLE_OPERATOR, NULL, NULL), TS_ERR_INVALID);
    assert_msg("instance-wide");
    assert_err(ts_ca_user_create(fx->ca, "default", "bad name", TS_ROLE_OPERATOR, NULL, NULL),
               TS_ERR_INVALID);
    assert_err(ts_ca_user_create(fx->ca, "default", "d1", TS_ROLE_DEVICE, NULL, NULL),
               TS_ERR_INVALID);
    assert_err(ts_ca_user_create(fx->ca, "default", "d1", TS_ROLE_DEVICE, "dev-user", NULL),
               TS_ERR_NOT_FOUND);
    assert_msg("register it first");
    assert_err(ts_ca_user_create(fx->ca, "nope", "x", TS_ROLE_ADMIN, NULL, NULL), TS_ERR_NOT_FOUND);
    ca_snap_same(fx->ca, fx->dir, &before);

    assert_err(ts_ca_device_register(fx->ca, "default", "dev-user", NULL), TS_OK);
    assert_err(ts_ca_user_create(fx->ca, "default", "d1", TS_ROLE_DEVICE, "dev-user", &u), TS_OK);
    assert_string_equal(u.device_uid, "dev-user");

    assert_err(ts_ca_user_list(fx->ca, "default", &rows, &count), TS_OK);
    assert_int_equal(count, 2);
    assert_string_equal(rows[0].name, "alice");
    assert_string_equal(rows[1].name, "d1");
    OPENSSL_free(rows);
    assert_err(ts_ca_user_list(fx->ca, NULL, &rows, &count), TS_OK);
    assert_int_equal(count, 2);
    assert_string_equal(rows[0].name, "admin");
    assert_string_equal(rows[1].name, "audit");
    OPENSSL_free(rows);

    assert_err(ts_ca_user_set_disabled(fx->ca, "default", "d1", 1), TS_OK);
    assert_err(ts_ca_user_set_disabled(fx->ca, "default", "d1", 1), TS_ERR_STATE);
    assert_err(ts_ca_user_set_disabled(fx->ca, "default", "ghost", 1), TS_ERR_NOT_FOUND);
    assert_err(ts_ca_user_get(fx->ca, "default", "d1", &u), TS_OK);
    assert_int_equal(u.disabled, 1);
    char action[64], object[64];
    ca_last_audit(fx->ca, 0, action, sizeof action, object, sizeof object);
    assert_string_equal(action, "user.disable");
    assert_string_equal(object, "d1");
}

static void tokens(ca_fx *fx)
{
    char token[TS_TOKEN_MAX], other[TS_TOKEN_MAX], refused[512] = "";
    ts_token_row row, *rows = NULL;
    ts_principal p;
    size_t count = 0;
    ca_snap before;

    /* The admin token ts_ca_init() handed out works. */
    assert_true(is_token(fx->res.admin_token));
    assert_err(ts_ca_token_authenticate(fx->ca, fx->res.admin_token, &p), TS_OK);
    assert_string_equal(p.user, "admin");
    assert_int_equal(p.role, TS_ROLE_ADMIN);
    assert_int_equal(p.tenant_id, 0);
    assert_string_equal(p.tenant, "");

    assert_err(ts_ca_user_create(fx->ca, "default", "tok-op", TS_ROLE_OPERATOR, NULL, NULL), TS_OK);
    assert_err(ts_ca_token_create(fx->ca, "default", "tok-op", "ci deploy", 0, token, &row), TS_OK);
    assert_true(is_token(token));
    assert_int_equal(strncmp(row.prefix, token, 12), 0);
    assert_int_equal(strlen(row.prefix), 12);
    assert_string_equal(row.name, "ci deploy");
    assert_int_equal(row.expires - row.created, (int64_t)TS_TOKEN_DAYS * 86400);
    assert_err(ts_ca_token_create(fx->ca, "default", "tok-op", "second", 3600, other, NULL), TS_OK);
    assert_string_not_equal(token, other);

    assert_err(ts_ca_token_authenticate(fx->ca, token, &p), TS_OK);
    assert_string_equal(p.user, "tok-op");
    assert_int_equal(p.role, TS_ROLE_OPERATOR);
    assert_string_equal(p.tenant, "default");
    assert_int_equal(p.token_id, row.id);
    assert_string_equal(p.device_uid, "");

    /* Every refusal has the same words: unknown, malformed, expired, revoked, disabled. */
    ca_snap_take(fx->ca, fx->dir, &before);
    char bad[TS_TOKEN_MAX];
    memcpy(bad, token, sizeof bad);
    bad[40] = bad[40] == 'a' ? 'b' : 'a';
    token_refused(fx->ca, bad, refused);
    token_refused(fx->ca, "tsk_short", refused);
    token_refused(fx->ca, "", refused);
    bad[40] = 'A'; /* upper case is not the token's form */
    token_refused(fx->ca, bad, refused);
    ca_snap_same(fx->ca, fx->dir, &before);

    store_set(fx->ca, "UPDATE api_tokens SET expires = $1 WHERE id = $2", time(NULL) - 1, row.id);
    token_refused(fx->ca, token, refused);
    store_set(fx->ca, "UPDATE api_tokens SET expires = $1 WHERE id = $2", time(NULL) + 60, row.id);
    assert_err(ts_ca_token_authenticate(fx->ca, token, &p), TS_OK);

    assert_err(ts_ca_user_set_disabled(fx->ca, "default", "tok-op", 1), TS_OK);
    token_refused(fx->ca, token, refused);
    assert_err(ts_ca_token_create(fx->ca, "default", "tok-op", "more", 0, bad, NULL), TS_ERR_STATE);
    assert_err(ts_ca_user_set_disabled(fx->ca, "default", "tok-op", 0), TS_OK);
    assert_err(ts_ca_token_authenticate(fx->ca, token, &p), TS_OK);

    assert_err(ts_ca_token_list(fx->ca, "default", "tok-op", &rows, &count), TS_OK);
    assert_int_equal(count, 2);
    assert_int_equal(rows[0].id, row.id);
    assert_int_equal(rows[1].revoked_at, 0);
    OPENSSL_free(rows);
    assert_err(ts_ca_token_list(fx->ca, NULL, NULL, &rows, &count), TS_OK);
    assert_int_equal(count, 1); /* init's */
    OPENSSL_free(rows);

    ca_snap_take(fx->ca, fx->dir, &before);
    assert_err(ts_ca_token_revoke(fx->ca, NULL, row.id), TS_ERR_NOT_FOUND);
    ca_snap_same(fx->ca, fx->dir, &before);
    assert_err(ts_ca_token_revoke(fx->ca, "default", row.id), TS_OK);
    assert_err(ts_ca_token_revoke(fx->ca, "default", row.id), TS_ERR_STATE);
    token_refused(fx->ca, token, refused);
    assert_err(ts_ca_token_authenticate(fx->ca, other, &p), TS_OK);

    assert_err(ts_ca_token_create(fx->ca, "default", "tok-op", "x", -1, bad, NULL), TS_ERR_INVALID);
    assert_err(ts_ca_token_create(fx->ca, "default", "ghost", "x", 0, bad, NULL), TS_ERR_NOT_FOUND);

    /* Secrets are never in the audit log, nor in the store. */
    ca_audit_lacks(fx->ca, token + 12);
    ca_audit_lacks(fx->ca, other + 12);
    ca_audit_lacks(fx->ca, fx->res.admin_token + 12);
    OPENSSL_cleanse(token, sizeof token);
    OPENSSL_cleanse(other, sizeof other);
}

/* --- Claim codes ----------------------------------------------------------------------------- */

static size_t device_csr(const char *uid, uint8_t **der)
{
    char subject[128];
    snprintf(subject, sizeof subject, "/CN=%s", uid);
    return ca_csr("P-256", subject, NULL, der, NULL);
}

/* Enrolls uid with code; the expected result. */
static void enroll(ts_ca *ca, const char *tenant, const char *code, const char *uid, ts_err want)
{
    uint8_t *der = NULL;
    X509 *cert = NULL;
    size_t len = device_csr(uid, &der);
    assert_err(ts_ca_claim_enroll(ca, tenant, code, der, len, &cert), want);
    if (want == TS_OK) {
        assert_non_null(cert);
        assert_int_equal(ca_verify(ca, tenant, cert, NULL), X509_V_OK);
    } else {
        assert_null(cert);
    }
    X509_free(cert);
    OPENSSL_free(der);
}

static int is_code(const char *c)
{
    if (strlen(c) != 38 || strncmp(c, "TSC", 3) != 0) {
        return 0;
    }
    for (size_t i = 3; i < 38; i++) {
        int dash = (i - 3) % 5 == 0;
        if (dash ? c[i] != '-' : strchr("0123456789ABCDEFGHJKMNPQRSTVWXYZ", c[i]) == NULL) {
            return 0;
        }
    }
    return 1;
}

static void claims(ca_fx *fx)
{
    char code[TS_CLAIM_CODE_MAX], multi[TS_CLAIM_CODE_MAX], typed[64];
    ts_claim_params params = {0};
    ts_claim_row row, *rows = NULL;
    ts_device_row dev;
    size_t count = 0;
    ca_snap before;

    assert_err(ts_ca_claim_create(fx->ca, &params, code, &row), TS_OK);
    assert_true(is_code(code));
    assert_int_equal(row.uses_max, 1);
    assert_int_equal(row.uses_left, 1);
    assert_string_equal(row.profile, "device");
    assert_int_equal(strncmp(row.prefix, code, 8), 0);
    assert_int_equal(row.expires - row.created, (int64_t)TS_CLAIM_HOURS * 3600);

    /* Single use: the first enrollment registers the device; the second changes nothing. */
    enroll(fx->ca, NULL, code, "dev-claim-1", TS_OK);
    assert_err(ts_ca_device_get(fx->ca, NULL, "dev-claim-1", &dev), TS_OK);
    assert_int_equal(dev.state, TS_DEVICE_ENABLED);
    char action[64], object[64];
    ca_last_audit(fx->ca, 0, action, sizeof action, object, sizeof object);
    assert_string_equal(action, "cert.issue");
    ca_last_audit(fx->ca, 1, action, sizeof action, object, sizeof object);
    assert_string_equal(action, "device.enroll");
    assert_string_equal(object, "dev-claim-1");
    ca_last_audit(fx->ca, 2, action, sizeof action, object, sizeof object);
    assert_string_equal(action, "claim.use");
    assert_string_equal(object, row.prefix);
    ca_snap_take(fx->ca, fx->dir, &before);
    enroll(fx->ca, NULL, code, "dev-claim-2", TS_ERR_AUTH);
    assert_msg("claim code not accepted");
    ca_snap_same(fx->ca, fx->dir, &before);
    assert_err(ts_ca_device_get(fx->ca, NULL, "dev-claim-2", &dev), TS_ERR_NOT_FOUND);

    /* N uses, typed in lower case without dashes, and with O for 0 and L for 1. */
    params.uses = 3;
    assert_err(ts_ca_claim_create(fx->ca, &params, multi, &row), TS_OK);
    size_t n = 0;
    for (const char *c = multi; *c != '\0'; c++) {
        if (*c != '-') {
            typed[n++] = *c == '0' ? 'o' : *c == '1' ? 'l' : (char)tolower((unsigned char)*c);
        }
    }
    typed[n] = '\0';
    enroll(fx->ca, NULL, typed, "dev-multi-1", TS_OK);
    enroll(fx->ca, NULL, multi + 4, "dev-multi-2", TS_OK); /* without "TSC-" */
    enroll(fx->ca, NULL, multi, "dev-multi-3", TS_OK);
    ca_snap_take(fx->ca, fx->dir, &before);
    enroll(fx->ca, NULL, multi, "dev-multi-4", TS_ERR_AUTH);
    assert_msg("claim code not accepted");
    ca_snap_same(fx->ca, fx->dir, &before);

    /* Expired, revoked, another tenant's, garbage: the same refusal, and nothing changes. */
    params.uses = 5;
    assert_err(ts_ca_claim_create(fx->ca, &params, code, &row), TS_OK);
    store_set(fx->ca, "UPDATE claim_codes SET expires = $1 WHERE id = $2", time(NULL) - 1, row.id);
    ca_snap_take(fx->ca, fx->dir, &before);
    enroll(fx->ca, NULL, code, "dev-late", TS_ERR_AUTH);
    assert_msg("claim code not accepted");
    store_set(fx->ca, "UPDATE claim_codes SET expires = $1 WHERE id = $2", time(NULL) + 600,
              row.id);
    ca_snap_take(fx->ca, fx->dir, &before);
    assert_err(ts_ca_tenant_create(fx->ca, "claim-other", NULL, NULL), TS_OK);
    ca_snap_take(fx->ca, fx->dir, &before);
    enroll(fx->ca, "claim-other", code, "dev-late", TS_ERR_AUTH);
    enroll(fx->ca, NULL, "TSC-0000-0000-0000-0000-0000-0000-0000", "dev-late", TS_ERR_AUTH);
    enroll(fx->ca, NULL, "not a code at all!", "dev-late", TS_ERR_AUTH);
    assert_msg("claim code not accepted");
    ca_snap_same(fx->ca, fx->dir, &before);
    assert_err(ts_ca_claim_revoke(fx->ca, "claim-other", row.id), TS_ERR_NOT_FOUND);
    assert_err(ts_ca_claim_revoke(fx->ca, NULL, row.id), TS_OK);
    assert_err(ts_ca_claim_revoke(fx->ca, NULL, row.id), TS_ERR_STATE);
    ca_snap_take(fx->ca, fx->dir, &before);
    enroll(fx->ca, NULL, code, "dev-late", TS_ERR_AUTH);
    ca_snap_same(fx->ca, fx->dir, &before);

    /* A disabled device is refused, and the code keeps its use. */
    params.uses = 1;
    assert_err(ts_ca_claim_create(fx->ca, &params, code, &row), TS_OK);
    assert_err(ts_ca_device_register(fx->ca, NULL, "dev-off", NULL), TS_OK);
    assert_err(ts_ca_device_set_state(fx->ca, NULL, "dev-off", TS_DEVICE_DISABLED), TS_OK);
    ca_snap_take(fx->ca, fx->dir, &before);
    enroll(fx->ca, NULL, code, "dev-off", TS_ERR_POLICY);
    assert_msg("disabled");
    ca_snap_same(fx->ca, fx->dir, &before);
    enroll(fx->ca, NULL, code, "dev-on", TS_OK);

    assert_err(ts_ca_claim_list(fx->ca, NULL, &rows, &count), TS_OK);
    assert_int_equal(count, 4);
    assert_int_equal(rows[0].uses_left, 0);
    assert_int_equal(rows[1].uses_max, 3);
    assert_int_equal(rows[1].uses_left, 0);
    assert_true(rows[2].revoked_at != 0);
    assert_int_equal(rows[3].uses_left, 0);
    OPENSSL_free(rows);

    /* Refused parameters. */
    params.profile = "server";
    assert_err(ts_ca_claim_create(fx->ca, &params, code, NULL), TS_ERR_INVALID);
    assert_msg("not a device profile");
    params.profile = "no-such";
    assert_err(ts_ca_claim_create(fx->ca, &params, code, NULL), TS_ERR_NOT_FOUND);
    params.profile = NULL;
    params.lifetime_seconds = -5;
    assert_err(ts_ca_claim_create(fx->ca, &params, code, NULL), TS_ERR_INVALID);
    ca_audit_lacks(fx->ca, multi + 9);
}

/* --- Devices and the feed -------------------------------------------------------------------- */

static int64_t feed_head(ts_ca *ca)
{
    int64_t head = -1;
    assert_err(ts_ca_feed_head(ca, &head), TS_OK);
    return head;
}

/* The single feed event after since, of the default tenant. */
static void feed_one(ts_ca *ca, int64_t since, ts_feed_row *out)
{
    ts_feed_row *rows = NULL;
    size_t count = 0;
    assert_err(ts_ca_feed(ca, NULL, since, 0, &rows, &count), TS_OK);
    assert_int_equal(count, 1);
    assert_true(rows[0].seq > since);
    *out = rows[0];
    OPENSSL_free(rows);
}

static void devices(ca_fx *fx)
{
    ts_device_row d, *rows = NULL;
    ts_feed_row ev;
    size_t count = 0;
    ca_snap before;
    uint8_t *der = NULL;
    X509 *cert = NULL;

    assert_err(ts_device_uid_check("dev:01.a_b-C"), TS_OK);
    assert_err(ts_device_uid_check(""), TS_ERR_INVALID);
    assert_err(ts_device_uid_check("dev 1"), TS_ERR_INVALID);
    assert_err(ts_device_uid_check("d/1"), TS_ERR_INVALID);

    assert_err(ts_ca_device_register(fx->ca, NULL, "dev-reg", &d), TS_OK);
    assert_int_equal(d.state, TS_DEVICE_ENABLED);
    assert_err(ts_ca_device_register(fx->ca, NULL, "dev-reg", NULL), TS_ERR_EXISTS);
    assert_err(ts_ca_device_get(fx->ca, NULL, "dev-reg", &d), TS_OK);

    /* Issuing registers a new device. */
    X509 *auto_cert = ca_issue_device(fx->ca, "dev-auto", NULL);
    assert_err(ts_ca_device_get(fx->ca, NULL, "dev-auto", &d), TS_OK);
    X509_free(auto_cert);

    /* Disable: a feed event, and no more certificates for it. */
    int64_t head = feed_head(fx->ca);
    assert_err(ts_ca_device_set_state(fx->ca, NULL, "dev-auto", TS_DEVICE_DISABLED), TS_OK);
    feed_one(fx->ca, head, &ev);
    assert_int_equal(ev.event, TS_FEED_DEVICE_DISABLED);
    assert_string_equal(ts_feed_event_name(ev.event), "device.disabled");
    assert_string_equal(ev.device_uid, "dev-auto");
    assert_int_equal(feed_head(fx->ca), ev.seq);
    assert_err(ts_ca_device_set_state(fx->ca, NULL, "dev-auto", TS_DEVICE_DISABLED), TS_ERR_STATE);
    assert_err(ts_ca_device_set_state(fx->ca, NULL, "dev-none", TS_DEVICE_DISABLED),
               TS_ERR_NOT_FOUND);

    size_t len = device_csr("dev-auto", &der);
    ca_snap_take(fx->ca, fx->dir, &before);
    assert_err(ts_ca_issue_csr(fx->ca, NULL, "device", der, len, &cert), TS_ERR_POLICY);
    assert_msg("device UID dev-auto is disabled");
    assert_null(cert);
    ca_snap_same(fx->ca, fx->dir, &before);
    assert_int_equal(feed_head(fx->ca), ev.seq);

    /* The group path refuses that CSR alone. */
    uint8_t *der2 = NULL;
    size_t len2 = device_csr("dev-group-ok", &der2);
    const uint8_t *csrs[] = {der2, der};
    size_t lens[] = {len2, len};
    X509 *certs[2] = {NULL, NULL};
    ts_err results[2];
    assert_err(ts_ca_issue_csrs(fx->ca, NULL, "device", csrs, lens, 2, certs, results), TS_OK);
    assert_msg("CSR 2 of 2");
    assert_msg("disabled");
    assert_int_equal(results[0], TS_OK);
    assert_int_equal(results[1], TS_ERR_POLICY);
    assert_non_null(certs[0]);
    assert_null(certs[1]);
    X509_free(certs[0]);
    OPENSSL_free(der2);

    /* Enable again: an event, and issuing works. */
    assert_err(ts_ca_device_set_state(fx->ca, NULL, "dev-auto", TS_DEVICE_ENABLED), TS_OK);
    feed_one(fx->ca, ev.seq, &ev);
    assert_int_equal(ev.event, TS_FEED_DEVICE_ENABLED);
    assert_err(ts_ca_issue_csr(fx->ca, NULL, "device", der, len, &cert), TS_OK);
    X509_free(cert);
    OPENSSL_free(der);

    ts_device_filter f = {.state = TS_DEVICE_ENABLED};
    assert_err(ts_ca_device_list(fx->ca, NULL, &f, &rows, &count), TS_OK);
    assert_true(count >= 3);
    for (size_t i = 0; i < count; i++) {
        assert_int_equal(rows[i].state, TS_DEVICE_ENABLED);
        assert_true(i == 0 || rows[i].id > rows[i - 1].id);
    }
    OPENSSL_free(rows);
}

static void revocations(ca_fx *fx)
{
    char serial[TS_SERIAL_HEX], fp[65];
    ts_feed_row ev;
    X509 *issuing = NULL, *cert = ca_issue_device(fx->ca, "dev-feed", NULL), *next = NULL;
    uint8_t *der = NULL;

    assert_err(ts_ca_cert(fx->ca, NULL, TS_CA_ISSUING, &issuing), TS_OK);
    assert_err(ts_cert_fingerprint(issuing, fp), TS_OK);
    ca_serial(cert, serial);
    int64_t head = feed_head(fx->ca);
    assert_err(ts_ca_cert_revoke(fx->ca, NULL, serial, CRL_REASON_KEY_COMPROMISE), TS_OK);
    feed_one(fx->ca, head, &ev);
    assert_int_equal(ev.event, TS_FEED_CERT_REVOKED);
    assert_string_equal(ts_feed_event_name(ev.event), "cert.revoked");
    assert_string_equal(ev.serial, serial);
    assert_string_equal(ev.issuer_fingerprint, fp);
    assert_string_equal(ev.device_uid, "dev-feed");
    assert_int_equal(ev.reason, CRL_REASON_KEY_COMPROMISE);
    assert_true(ev.time > 0);
    /* A refused revocation appends nothing. */
    assert_err(ts_ca_cert_revoke(fx->ca, NULL, serial, CRL_REASON_KEY_COMPROMISE), TS_ERR_STATE);
    assert_int_equal(feed_head(fx->ca), ev.seq);
    X509_free(cert);

    /* Rekey: the superseded certificate is in the feed. */
    cert = ca_issue_device(fx->ca, "dev-feed-rekey", NULL);
    ca_serial(cert, serial);
    size_t len = device_csr("dev-feed-rekey", &der);
    assert_err(ts_ca_cert_rekey(fx->ca, NULL, serial, der, len, &next), TS_OK);
    feed_one(fx->ca, ev.seq, &ev);
    assert_string_equal(ev.serial, serial);
    assert_int_equal(ev.reason, CRL_REASON_SUPERSEDED);
    assert_string_equal(ev.device_uid, "dev-feed-rekey");
    X509_free(next);
    X509_free(cert);
    X509_free(issuing);
    OPENSSL_free(der);
}

/* Two handles on one database (two service workers): seq grows across both, in commit order. */
static void feed_two_handles(ca_fx *fx)
{
    ts_ca *other = NULL;
    char db[1200], action[64], object[64];
    ts_feed_row *rows = NULL;
    size_t count = 0;

    if (fx->db_url[0] != '\0') {
        snprintf(db, sizeof db, "%s", fx->db_url);
    } else {
        snprintf(db, sizeof db, "sqlite:%s/tessera.db", fx->dir);
    }
    assert_err(ts_ca_open_db(fx->dir, db, "worker-2", &other), TS_OK);
    assert_err(ts_ca_set_actor(other, "user:bob@default"), TS_OK);
    assert_err(ts_ca_set_actor(other, ""), TS_ERR_INVALID);
    assert_err(ts_ca_set_actor(other, "bad\nactor"), TS_ERR_INVALID);

    int64_t start = feed_head(fx->ca);
    for (int i = 0; i < 6; i++) {
        char uid[32];
        ts_ca *ca = i % 2 == 0 ? fx->ca : other;
        snprintf(uid, sizeof uid, "dev-two-%d", i);
        assert_err(ts_ca_device_register(ca, NULL, uid, NULL), TS_OK);
        assert_err(ts_ca_device_set_state(ca, NULL, uid, TS_DEVICE_DISABLED), TS_OK);
        X509 *cert = ca_issue_device(ca == fx->ca ? other : fx->ca, "dev-two-cert", NULL);
        char serial[TS_SERIAL_HEX];
        ca_serial(cert, serial);
        assert_err(ts_ca_cert_revoke(ca, NULL, serial, CRL_REASON_UNSPECIFIED), TS_OK);
        X509_free(cert);
    }
    ca_last_audit(other, 0, action, sizeof action, object, sizeof object);
    assert_string_equal(action, "cert.revoke");
    assert_err(ts_ca_feed(other, NULL, start, 0, &rows, &count), TS_OK);
    assert_int_equal(count, 12);
    for (size_t i = 0; i < count; i++) {
        assert_int_equal(rows[i].seq, start + 1 + (int64_t)i);
        assert_int_equal(rows[i].event,
                         i % 2 == 0 ? TS_FEED_DEVICE_DISABLED : TS_FEED_CERT_REVOKED);
    }
    OPENSSL_free(rows);
    int64_t head_other = -1;
    assert_err(ts_ca_feed_head(other, &head_other), TS_OK);
    assert_int_equal(head_other, feed_head(fx->ca));
    assert_err(ts_ca_feed(other, NULL, start, 5, &rows, &count), TS_OK);
    assert_int_equal(count, 5);
    OPENSSL_free(rows);
    ts_ca_free(other);
    assert_err(ts_ca_open_db(fx->dir, NULL, "x", &other), TS_ERR_INVALID);
    assert_null(other);
}

/* --- CA lookups and the TLS certificate ------------------------------------------------------ */

static void ca_lookup(ca_fx *fx)
{
    X509 *issuing = NULL, *root = NULL;
    char fp[65], rfp[65];
    ts_tenant_row t;
    int64_t id = 0;
    STACK_OF(X509) *all = NULL;

    assert_err(ts_ca_cert(fx->ca, NULL, TS_CA_ISSUING, &issuing), TS_OK);
    assert_err(ts_ca_cert(fx->ca, NULL, TS_CA_ROOT, &root), TS_OK);
    assert_err(ts_cert_fingerprint(issuing, fp), TS_OK);
    assert_err(ts_cert_fingerprint(root, rfp), TS_OK);
    assert_err(ts_ca_tenant_by_issuer(fx->ca, fp, &t, &id), TS_OK);
    assert_string_equal(t.name, "default");
    assert_true(id > 0);
    assert_err(ts_ca_tenant_by_issuer(fx->ca, rfp, &t, &id), TS_ERR_NOT_FOUND);
    assert_err(ts_ca_tenant_by_issuer(fx->ca,
                                      "0000000000000000000000000000000000000000000000000"
                                      "000000000000000",
                                      &t, &id),
               TS_ERR_NOT_FOUND);

    assert_err(ts_ca_all_certs(fx->ca, &all), TS_OK);
    assert_true(sk_X509_num(all) >= 2);
    int have_root = 0, have_issuing = 0;
    for (int i = 0; i < sk_X509_num(all); i++) {
        have_root |= X509_cmp(sk_X509_value(all, i), root) == 0;
        have_issuing |= X509_cmp(sk_X509_value(all, i), issuing) == 0;
    }
    assert_true(have_root && have_issuing);
    sk_X509_pop_free(all, X509_free);
    X509_free(issuing);
    X509_free(root);
}

/* DIR/tls/server.pem: the leaf and the issuing CA. */
static void tls_read(ca_fx *fx, X509 **leaf, X509 **chain)
{
    char path[600];
    snprintf(path, sizeof path, "%s/tls/server.pem", fx->dir);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    *leaf = PEM_read_X509(f, NULL, NULL, NULL);
    *chain = PEM_read_X509(f, NULL, NULL, NULL);
    assert_null(PEM_read_X509(f, NULL, NULL, NULL));
    ERR_clear_error();
    fclose(f);
    assert_non_null(*leaf);
    assert_non_null(*chain);
}

static void tls_cert(ca_fx *fx)
{
    X509 *leaf = NULL, *chain = NULL, *issuing = NULL;
    EVP_PKEY *key = NULL;
    ts_keystore *ks = NULL;
    static const char *const names[] = {"svc.example.test", "10.1.2.3", "::1", "svc.example.test"};

    /* The one ts_ca_init() made names --url's host. */
    tls_read(fx, &leaf, &chain);
    assert_int_equal(X509_check_host(leaf, "ca.example.test", 0, 0, NULL), 1);
    assert_int_equal(X509_check_host(leaf, "localhost", 0, 0, NULL), 1);
    assert_int_equal(X509_check_ip_asc(leaf, "127.0.0.1", 0), 1);
    X509_free(leaf);
    X509_free(chain);

    assert_err(ts_ca_tls_server_cert(fx->ca, names, 4), TS_OK);
    tls_read(fx, &leaf, &chain);
    assert_int_equal(X509_check_host(leaf, "svc.example.test", 0, 0, NULL), 1);
    assert_int_equal(X509_check_host(leaf, "localhost", 0, 0, NULL), 1);
    assert_int_equal(X509_check_ip_asc(leaf, "10.1.2.3", 0), 1);
    assert_int_equal(X509_check_ip_asc(leaf, "::1", 0), 1);
    assert_int_equal(X509_check_ip_asc(leaf, "127.0.0.1", 0), 1);
    assert_int_equal(X509_check_host(leaf, "ca.example.test", 0, 0, NULL), 0);
    assert_int_equal(X509_check_host(leaf, "10.1.2.3", 0, 0, NULL), 0);
    assert_int_equal(X509_check_ip_asc(leaf, "10.1.2.4", 0), 0);
    assert_int_equal(X509_check_purpose(leaf, X509_PURPOSE_SSL_SERVER, 0), 1);
    assert_err(ts_ca_cert(fx->ca, NULL, TS_CA_ISSUING, &issuing), TS_OK);
    assert_int_equal(X509_cmp(chain, issuing), 0);
    assert_int_equal(ca_verify(fx->ca, NULL, leaf, NULL), X509_V_OK);
    /* Its key is the key store's, kept across re-issues. */
    assert_err(ts_ca_keystore(fx->ca, &ks), TS_OK);
    assert_err(ts_keystore_public_key(ks, TS_TLS_KEY_LABEL, &key), TS_OK);
    assert_int_equal(EVP_PKEY_eq(key, X509_get0_pubkey(leaf)), 1);
    assert_string_equal(OBJ_nid2sn(EVP_PKEY_get_base_id(key)), "id-ecPublicKey");
    EVP_PKEY_free(key);
    X509_free(leaf);
    X509_free(chain);

    ca_snap before;
    static const char *const bad[] = {"bad name!"};
    ca_snap_take(fx->ca, fx->dir, &before);
    assert_int_not_equal(ts_ca_tls_server_cert(fx->ca, bad, 1), TS_OK);
    static const char *const empty[] = {""};
    assert_err(ts_ca_tls_server_cert(fx->ca, empty, 1), TS_ERR_INVALID);
    ca_snap_same(fx->ca, fx->dir, &before);

    assert_err(ts_ca_tls_server_cert(fx->ca, NULL, 0), TS_OK);
    tls_read(fx, &leaf, &chain);
    assert_int_equal(X509_check_host(leaf, "localhost", 0, 0, NULL), 1);
    assert_int_equal(X509_check_host(leaf, "svc.example.test", 0, 0, NULL), 0);
    X509_free(leaf);
    X509_free(chain);
    X509_free(issuing);
}

int main(void)
{
    static const ca_case cases[] = {
        {"users", users},
        {"tokens", tokens},
        {"claims", claims},
        {"devices", devices},
        {"revocations", revocations},
        {"feed_two_handles", feed_two_handles},
        {"ca_lookup", ca_lookup},
        {"tls_cert", tls_cert},
    };
    return ca_run_cases("access", cases, sizeof cases / sizeof cases[0]);
}
