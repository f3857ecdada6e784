/*
 * The store's access-control tables on both backends (include/tessera/store_access.h): users,
 * API tokens, claim codes, devices, the revocation feed (also written by two processes while a
 * third reads it), and the CA and tenant lookups for TLS client authentication.
 */
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "store_test_util.h"
#include "tessera/store_access.h"

static const uint8_t fake_der[] = {0x30, 0x06, 0x02, 0x01, 0x07, 0x02, 0x01, 0x08};

#define HASH_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define HASH_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define HASH_C "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"
#define HASH_D "dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd"
#define FP_CA  "00000000000000000000000000000000000000000000000000000000000ca001"
#define DAY    86400

typedef struct world {
    int64_t tenant, other;
    int64_t ca;
} world;

static world make_world(store_fx *fx)
{
    world w;
    ts_tenant_row t = {.name = "acme", .country = "DE"};
    ts_tenant_row o = {.name = "other"};
    ts_ca_row ca = {.kind = TS_CA_ISSUING, .active = 1};
    OK(ts_store_begin(fx->s));
    OK(ts_store_tenant_insert(fx->s, &t));
    OK(ts_store_tenant_insert(fx->s, &o));
    ca.tenant_id = t.id;
    snprintf(ca.key_label, sizeof ca.key_label, "issuing-acme");
    ca.cert_der = (uint8_t *)fake_der;
    ca.cert_len = sizeof fake_der;
    snprintf(ca.subject, sizeof ca.subject, "CN=Acme Issuing");
    snprintf(ca.fingerprint, sizeof ca.fingerprint, "%s", FP_CA);
    OK(ts_store_ca_insert(fx->s, &ca));
    OK(ts_store_commit(fx->s));
    w.tenant = t.id;
    w.other = o.id;
    w.ca = ca.id;
    return w;
}

static ts_user_row user(int64_t tenant, const char *name, ts_role role, const char *device)
{
    ts_user_row u = {.tenant_id = tenant, .role = role};
    snprintf(u.name, sizeof u.name, "%s", name);
    snprintf(u.device_uid, sizeof u.device_uid, "%s", device);
    return u;
}

/* --- Users ----------------------------------------------------------------------------------- */

static void case_users(store_fx *fx)
{
    world w = make_world(fx);
    ts_user_row root = user(0, "admin", TS_ROLE_ADMIN, "");
    ts_user_row alice = user(w.tenant, "alice", TS_ROLE_OPERATOR, "");
    ts_user_row bob = user(w.tenant, "bob", TS_ROLE_AUDITOR, "");
    ts_user_row dev = user(w.tenant, "dev-1", TS_ROLE_DEVICE, "dev-1");
    ts_user_row alice2 = user(w.other, "alice", TS_ROLE_ADMIN, "");
    ts_user_row admin2 = user(w.tenant, "admin", TS_ROLE_ADMIN, "");
    ts_user_row dup = user(w.tenant, "alice", TS_ROLE_ADMIN, "");
    ts_user_row dup_root = user(0, "admin", TS_ROLE_AUDITOR, "");
    ts_user_row bad = user(0, "op", TS_ROLE_OPERATOR, "");
    ts_user_row got;
    ts_user_row *rows = NULL;
    size_t count = 0;

    ERR(TS_ERR_STATE, "ts_store_begin", ts_store_user_insert(fx->s, &alice));
    OK(ts_store_begin(fx->s));
    OK(ts_store_user_insert(fx->s, &root));
    OK(ts_store_user_insert(fx->s, &bob));
    OK(ts_store_user_insert(fx->s, &alice));
    OK(ts_store_user_insert(fx->s, &dev));
    /* The same name in another tenant, or instance-wide and in a tenant, is another user. */
    OK(ts_store_user_insert(fx->s, &alice2));
    OK(ts_store_user_insert(fx->s, &admin2));
    /* A taken name leaves the transaction usable. */
    ERR(TS_ERR_EXISTS, "alice", ts_store_user_insert(fx->s, &dup));
    ERR(TS_ERR_EXISTS, "admin", ts_store_user_insert(fx->s, &dup_root));
    ERR(TS_ERR_INVALID, "instance-wide", ts_store_user_insert(fx->s, &bad));
    bad = user(w.tenant, "nodev", TS_ROLE_DEVICE, "");
    ERR(TS_ERR_INVALID, "device", ts_store_user_insert(fx->s, &bad));
    bad = user(w.tenant, "odd", TS_ROLE_OPERATOR, "dev-2");
    ERR(TS_ERR_INVALID, "device", ts_store_user_insert(fx->s, &bad));
    bad = user(w.tenant, "has space", TS_ROLE_OPERATOR, "");
    ERR(TS_ERR_INVALID, "space", ts_store_user_insert(fx->s, &bad));
    bad = user(w.tenant, "norole", (ts_role)9, "");
    ERR(TS_ERR_INVALID, "role", ts_store_user_insert(fx->s, &bad));
    OK(ts_store_commit(fx->s));
    assert_true(root.id > 0 && alice.created > 0);

    OK(ts_store_user_get(fx->s, w.tenant, "alice", &got));
    assert_int_equal(got.id, alice.id);
    assert_int_equal(got.tenant_id, w.tenant);
    assert_string_equal(got.tenant, "acme");
    assert_int_equal(got.role, TS_ROLE_OPERATOR);
    assert_string_equal(got.device_uid, "");
    assert_int_equal(got.disabled, 0);
    assert_int_equal(got.created, alice.created);
    OK(ts_store_user_get(fx->s, 0, "admin", &got));
    assert_int_equal(got.id, root.id);
    assert_int_equal(got.tenant_id, 0);
    assert_string_equal(got.tenant, "");
    OK(ts_store_user_get_id(fx->s, dev.id, &got));
    assert_string_equal(got.device_uid, "dev-1");
    assert_int_equal(got.role, TS_ROLE_DEVICE);
    ERR(TS_ERR_NOT_FOUND, "bob", ts_store_user_get(fx->s, w.other, "bob", &got));
    ERR(TS_ERR_NOT_FOUND, "alice", ts_store_user_get(fx->s, 0, "alice", &got));
    ERR(TS_ERR_NOT_FOUND, NULL, ts_store_user_get_id(fx->s, 424242, &got));

    /* Sorted by name, in the tenant only. */
    OK(ts_store_user_list(fx->s, w.tenant, &rows, &count));
    assert_int_equal(count, 4);
    assert_string_equal(rows[0].name, "admin");
    assert_string_equal(rows[1].name, "alice");
    assert_string_equal(rows[2].name, "bob");
    assert_string_equal(rows[3].name, "dev-1");
    OPENSSL_free(rows);
    OK(ts_store_user_list(fx->s, 0, &rows, &count));
    assert_int_equal(count, 1);
    assert_int_equal(rows[0].id, root.id);
    OPENSSL_free(rows);

    OK(ts_store_begin(fx->s));
    OK(ts_store_user_set_disabled(fx->s, w.tenant, "bob", 1));
    ERR(TS_ERR_STATE, "already disabled", ts_store_user_set_disabled(fx->s, w.tenant, "bob", 1));
    ERR(TS_ERR_NOT_FOUND, NULL, ts_store_user_set_disabled(fx->s, w.other, "bob", 1));
    ERR(TS_ERR_INVALID, NULL, ts_store_user_set_disabled(fx->s, w.tenant, "bob", 2));
    OK(ts_store_commit(fx->s));
    OK(ts_store_user_get(fx->s, w.tenant, "bob", &got));
    assert_int_equal(got.disabled, 1);
    OK(ts_store_begin(fx->s));
    OK(ts_store_user_set_disabled(fx->s, w.tenant, "bob", 0));
    OK(ts_store_commit(fx->s));
    OK(ts_store_user_get(fx->s, w.tenant, "bob", &got));
    assert_int_equal(got.disabled, 0);

    /* The schema refuses what the checks would: an instance-wide operator. */
    assert_int_not_equal(store_fx_raw(fx,
                                      "INSERT INTO users (tenant_id, name, role, device_uid, "
                                      "disabled, created) VALUES (NULL, $1, 2, '', 0, 1)",
                                      "sneaky"),
                         0);
}

/* --- API tokens ------------------------------------------------------------------------------ */

static ts_token_row token(int64_t user_id, const char *name, const char *prefix, time_t expires)
{
    ts_token_row k = {.user_id = user_id, .expires = expires};
    snprintf(k.name, sizeof k.name, "%s", name);
    snprintf(k.prefix, sizeof k.prefix, "%s", prefix);
    return k;
}

static void case_tokens(store_fx *fx)
{
    world w = make_world(fx);
    time_t now = time(NULL);
    ts_user_row root = user(0, "admin", TS_ROLE_ADMIN, "");
    ts_user_row alice = user(w.tenant, "alice", TS_ROLE_OPERATOR, "");
    ts_user_row carol = user(w.other, "carol", TS_ROLE_ADMIN, "");
    ts_token_row a, b, c, d, got;
    ts_user_row u;
    ts_token_row *rows = NULL;
    size_t count = 0;
    char stored[65];

    OK(ts_store_begin(fx->s));
    OK(ts_store_user_insert(fx->s, &root));
    OK(ts_store_user_insert(fx->s, &alice));
    OK(ts_store_user_insert(fx->s, &carol));
    a = token(alice.id, "ci deploy", "tsk_aaaaaaaa", now + DAY);
    b = token(alice.id, "laptop", "tsk_bbbbbbbb", now + 2 * DAY);
    c = token(root.id, "init", "tsk_cccccccc", now + 3 * DAY);
    d = token(carol.id, "dup", "tsk_aaaaaaaa", now + DAY);
    OK(ts_store_token_insert(fx->s, &a, HASH_A));
    OK(ts_store_token_insert(fx->s, &b, HASH_B));
    OK(ts_store_token_insert(fx->s, &c,
                             "CCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCC"));
    /* A hash is stored once; the transaction stays usable. */
    ERR(TS_ERR_EXISTS, "hash", ts_store_token_insert(fx->s, &d, HASH_A));
    ERR(TS_ERR_INVALID, NULL, ts_store_token_insert(fx->s, &d, "not-a-hash"));
    d.user_id = 0;
    ERR(TS_ERR_INVALID, "user", ts_store_token_insert(fx->s, &d, HASH_D));
    OK(ts_store_commit(fx->s));
    assert_true(a.id > 0 && b.id > a.id && c.id > b.id);
    assert_int_equal(a.revoked_at, 0);

    /* By hash (any case): the token, its user and the hash as stored. */
    OK(ts_store_token_find(fx->s, HASH_C, &got, &u, stored));
    assert_int_equal(got.id, c.id);
    assert_int_equal(got.user_id, root.id);
    assert_string_equal(got.user, "admin");
    assert_int_equal(got.tenant_id, 0);
    assert_string_equal(stored, HASH_C);
    assert_int_equal(u.id, root.id);
    assert_string_equal(u.tenant, "");
    OK(ts_store_token_find(fx->s,
                           "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", &got,
                           &u, stored));
    assert_int_equal(got.id, a.id);
    assert_string_equal(got.name, "ci deploy");
    assert_string_equal(got.prefix, "tsk_aaaaaaaa");
    assert_int_equal(got.expires, now + DAY);
    assert_int_equal(got.tenant_id, w.tenant);
    assert_string_equal(u.name, "alice");
    assert_string_equal(u.tenant, "acme");
    assert_int_equal(u.role, TS_ROLE_OPERATOR);
    ERR(TS_ERR_NOT_FOUND, NULL, ts_store_token_find(fx->s, HASH_D, &got, &u, stored));
    ERR(TS_ERR_INVALID, NULL, ts_store_token_find(fx->s, "tsk_abc", &got, &u, stored));

    /* Lists: a tenant's users' tokens, or one user's. */
    OK(ts_store_token_list(fx->s, w.tenant, 0, &rows, &count));
    assert_int_equal(count, 2);
    assert_int_equal(rows[0].id, a.id);
    assert_int_equal(rows[1].id, b.id);
    OPENSSL_free(rows);
    OK(ts_store_token_list(fx->s, w.tenant, alice.id, &rows, &count));
    assert_int_equal(count, 2);
    OPENSSL_free(rows);
    OK(ts_store_token_list(fx->s, w.tenant, root.id, &rows, &count));
    assert_int_equal(count, 0);
    OPENSSL_free(rows);
    OK(ts_store_token_list(fx->s, 0, 0, &rows, &count));
    assert_int_equal(count, 1);
    assert_int_equal(rows[0].id, c.id);
    OPENSSL_free(rows);

    /* Revocation: only the tenant's own, once. */
    OK(ts_store_begin(fx->s));
    ERR(TS_ERR_NOT_FOUND, NULL, ts_store_token_revoke(fx->s, w.other, a.id, now));
    ERR(TS_ERR_NOT_FOUND, NULL, ts_store_token_revoke(fx->s, 0, a.id, now));
    OK(ts_store_token_revoke(fx->s, w.tenant, a.id, now + 5));
    ERR(TS_ERR_STATE, "already revoked", ts_store_token_revoke(fx->s, w.tenant, a.id, now));
    OK(ts_store_commit(fx->s));
    OK(ts_store_token_find(fx->s, HASH_A, &got, &u, stored));
    assert_int_equal(got.revoked_at, now + 5);
    ERR(TS_ERR_STATE, "ts_store_begin", ts_store_token_revoke(fx->s, w.tenant, b.id, now));
}

/* --- Claim codes ----------------------------------------------------------------------------- */

static ts_claim_row claim(int64_t tenant, unsigned uses, time_t expires)
{
    ts_claim_row c = {.tenant_id = tenant, .uses_max = uses, .expires = expires};
    snprintf(c.profile, sizeof c.profile, "device");
    snprintf(c.prefix, sizeof c.prefix, "TSC-ABCD");
    return c;
}

static void case_claims(store_fx *fx)
{
    world w = make_world(fx);
    time_t now = time(NULL);
    ts_claim_row once = claim(w.tenant, 1, now + DAY);
    ts_claim_row twice = claim(w.tenant, 2, now + DAY);
    ts_claim_row old = claim(w.other, 5, now - 1);
    ts_claim_row got;
    ts_claim_row *rows = NULL;
    size_t count = 0;
    char stored[65];

    OK(ts_store_begin(fx->s));
    OK(ts_store_claim_insert(fx->s, &once, HASH_A));
    OK(ts_store_claim_insert(fx->s, &twice, HASH_B));
    OK(ts_store_claim_insert(fx->s, &old, HASH_C));
    ERR(TS_ERR_EXISTS, "hash", ts_store_claim_insert(fx->s, &old, HASH_C));
    old.uses_max = 0;
    ERR(TS_ERR_INVALID, "use", ts_store_claim_insert(fx->s, &old, HASH_C));
    OK(ts_store_commit(fx->s));
    assert_int_equal(once.uses_left, 1);
    assert_int_equal(twice.uses_left, 2);

    OK(ts_store_claim_find(fx->s, HASH_B, &got, stored));
    assert_int_equal(got.id, twice.id);
    assert_int_equal(got.tenant_id, w.tenant);
    assert_string_equal(got.profile, "device");
    assert_string_equal(got.prefix, "TSC-ABCD");
    assert_int_equal(got.uses_max, 2);
    assert_int_equal(got.uses_left, 2);
    assert_int_equal(got.expires, now + DAY);
    assert_int_equal(got.revoked_at, 0);
    assert_string_equal(stored, HASH_B);

    /* Each use takes one, in a transaction; the last use is taken once. */
    OK(ts_store_begin(fx->s));
    OK(ts_store_claim_use(fx->s, HASH_B, now, &got, stored));
    assert_int_equal(got.uses_left, 1);
    OK(ts_store_claim_use(fx->s, HASH_B, now, &got, stored));
    assert_int_equal(got.uses_left, 0);
    ERR(TS_ERR_NOT_FOUND, NULL, ts_store_claim_use(fx->s, HASH_B, now, &got, stored));
    OK(ts_store_commit(fx->s));
    /* A use in a transaction that rolls back is not taken. */
    OK(ts_store_begin(fx->s));
    OK(ts_store_claim_use(fx->s, HASH_A, now, &got, stored));
    ts_store_rollback(fx->s);
    OK(ts_store_claim_find(fx->s, HASH_A, &got, stored));
    assert_int_equal(got.uses_left, 1);
    /* Expired (at its expiry time) and revoked codes cannot be used. */
    OK(ts_store_begin(fx->s));
    ERR(TS_ERR_NOT_FOUND, NULL, ts_store_claim_use(fx->s, HASH_C, now, &got, stored));
    ERR(TS_ERR_NOT_FOUND, NULL, ts_store_claim_use(fx->s, HASH_A, now + DAY, &got, stored));
    ERR(TS_ERR_NOT_FOUND, NULL, ts_store_claim_revoke(fx->s, w.other, once.id, now));
    OK(ts_store_claim_revoke(fx->s, w.tenant, once.id, now));
    ERR(TS_ERR_STATE, "already revoked", ts_store_claim_revoke(fx->s, w.tenant, once.id, now));
    ERR(TS_ERR_NOT_FOUND, NULL, ts_store_claim_use(fx->s, HASH_A, now, &got, stored));
    OK(ts_store_commit(fx->s));
    ERR(TS_ERR_STATE, "ts_store_begin", ts_store_claim_use(fx->s, HASH_A, now, &got, stored));

    OK(ts_store_claim_list(fx->s, w.tenant, &rows, &count));
    assert_int_equal(count, 2);
    assert_int_equal(rows[0].id, once.id);
    assert_true(rows[0].revoked_at != 0);
    assert_int_equal(rows[1].uses_left, 0);
    OPENSSL_free(rows);
    OK(ts_store_claim_list(fx->s, w.other, &rows, &count));
    assert_int_equal(count, 1);
    OPENSSL_free(rows);

    /* The schema keeps uses_left at zero or more. */
    assert_int_not_equal(
        store_fx_raw(fx, "UPDATE claim_codes SET uses_left = -1 WHERE hash = $1", HASH_C), 0);
}

/* --- Devices --------------------------------------------------------------------------------- */

static void case_devices(store_fx *fx)
{
    world w = make_world(fx);
    time_t now = time(NULL);
    ts_device_row a = {.tenant_id = w.tenant}, b = {.tenant_id = w.tenant};
    ts_device_row other = {.tenant_id = w.other}, got, e;
    ts_device_row *rows = NULL;
    size_t count = 0;

    snprintf(a.uid, sizeof a.uid, "dev-a");
    snprintf(b.uid, sizeof b.uid, "dev-b");
    snprintf(other.uid, sizeof other.uid, "dev-a");
    OK(ts_store_begin(fx->s));
    OK(ts_store_device_insert(fx->s, &a));
    OK(ts_store_device_insert(fx->s, &other)); /* another tenant may use the same UID */
    ERR(TS_ERR_EXISTS, "dev-a", ts_store_device_insert(fx->s, &a));
    OK(ts_store_device_insert(fx->s, &b));
    OK(ts_store_commit(fx->s));
    assert_int_equal(a.state, TS_DEVICE_ENABLED);
    assert_true(a.created > 0 && a.updated == a.created);

    OK(ts_store_device_get(fx->s, w.tenant, "dev-a", &got));
    assert_int_equal(got.id, a.id);
    assert_int_equal(got.tenant_id, w.tenant);
    assert_string_equal(got.uid, "dev-a");
    assert_int_equal(got.state, TS_DEVICE_ENABLED);
    ERR(TS_ERR_NOT_FOUND, "dev-b", ts_store_device_get(fx->s, w.other, "dev-b", &got));
    ERR(TS_ERR_INVALID, NULL, ts_store_device_get(fx->s, w.tenant, "", &got));

    /* Disable, twice, then ensure: the existing row comes back as it is, disabled. */
    OK(ts_store_begin(fx->s));
    OK(ts_store_device_set_state(fx->s, w.tenant, "dev-b", TS_DEVICE_DISABLED, now + 7));
    ERR(TS_ERR_STATE, "already disabled",
        ts_store_device_set_state(fx->s, w.tenant, "dev-b", TS_DEVICE_DISABLED, now));
    ERR(TS_ERR_NOT_FOUND, NULL,
        ts_store_device_set_state(fx->s, w.tenant, "dev-z", TS_DEVICE_DISABLED, now));
    ERR(TS_ERR_INVALID, NULL, ts_store_device_set_state(fx->s, w.tenant, "dev-b", 7, now));
    OK(ts_store_device_ensure(fx->s, w.tenant, "dev-b", now + 9, &e));
    assert_int_equal(e.id, b.id);
    assert_int_equal(e.state, TS_DEVICE_DISABLED);
    assert_int_equal(e.updated, now + 7);
    OK(ts_store_device_ensure(fx->s, w.tenant, "dev-c", now + 9, &e));
    assert_true(e.id > b.id);
    assert_int_equal(e.state, TS_DEVICE_ENABLED);
    assert_int_equal(e.created, now + 9);
    /* What ensure gave for the new device is the row as stored. */
    OK(ts_store_device_get(fx->s, w.tenant, "dev-c", &got));
    assert_int_equal(got.id, e.id);
    assert_int_equal(got.tenant_id, e.tenant_id);
    assert_string_equal(got.uid, e.uid);
    assert_int_equal(got.state, e.state);
    assert_int_equal(got.created, e.created);
    assert_int_equal(got.updated, e.updated);
    OK(ts_store_device_ensure(fx->s, w.tenant, "dev-c", now + 10, &got));
    assert_int_equal(got.id, e.id);
    assert_int_equal(got.created, now + 9);
    OK(ts_store_commit(fx->s));
    ERR(TS_ERR_STATE, "ts_store_begin", ts_store_device_ensure(fx->s, w.tenant, "x", now, &e));

    /* Lists by id, with a state filter and a cursor. */
    ts_device_filter all = {0}, disabled = {.state = TS_DEVICE_DISABLED};
    ts_device_filter page = {.after_id = a.id, .limit = 1};
    OK(ts_store_device_list(fx->s, w.tenant, &all, &rows, &count));
    assert_int_equal(count, 3);
    assert_string_equal(rows[0].uid, "dev-a");
    assert_string_equal(rows[2].uid, "dev-c");
    OPENSSL_free(rows);
    OK(ts_store_device_list(fx->s, w.tenant, &disabled, &rows, &count));
    assert_int_equal(count, 1);
    assert_string_equal(rows[0].uid, "dev-b");
    OPENSSL_free(rows);
    OK(ts_store_device_list(fx->s, w.tenant, &page, &rows, &count));
    assert_int_equal(count, 1);
    assert_string_equal(rows[0].uid, "dev-b");
    OPENSSL_free(rows);
    OK(ts_store_device_list(fx->s, w.other, NULL, &rows, &count));
    assert_int_equal(count, 1);
    OPENSSL_free(rows);
    disabled.state = 9;
    ERR(TS_ERR_INVALID, NULL, ts_store_device_list(fx->s, w.tenant, &disabled, &rows, &count));
}

/* --- The revocation feed --------------------------------------------------------------------- */

static ts_feed_row revoked(int64_t tenant, const char *serial, const char *device)
{
    ts_feed_row f = {.tenant_id = tenant, .event = TS_FEED_CERT_REVOKED, .reason = 1};
    snprintf(f.serial, sizeof f.serial, "%s", serial);
    snprintf(f.issuer_fingerprint, sizeof f.issuer_fingerprint, "%s", FP_CA);
    snprintf(f.device_uid, sizeof f.device_uid, "%s", device);
    return f;
}

static void case_feed(store_fx *fx)
{
    world w = make_world(fx);
    ts_feed_row a = revoked(w.tenant, "7e", "dev-1");
    ts_feed_row b = {.tenant_id = w.tenant, .event = TS_FEED_DEVICE_DISABLED, .reason = -1};
    ts_feed_row c = revoked(w.other, "01AB", "");
    ts_feed_row bad = revoked(w.tenant, "", "");
    ts_feed_row *rows = NULL;
    size_t count = 0;
    int64_t head = -1;

    OK(ts_store_feed_head(fx->s, &head));
    assert_int_equal(head, 0);
    snprintf(b.device_uid, sizeof b.device_uid, "dev-1");
    ERR(TS_ERR_STATE, "ts_store_begin", ts_store_feed_append(fx->s, &a));
    OK(ts_store_begin(fx->s));
    OK(ts_store_feed_append(fx->s, &a));
    OK(ts_store_feed_append(fx->s, &b));
    ERR(TS_ERR_INVALID, NULL, ts_store_feed_append(fx->s, &bad));
    bad = revoked(w.tenant, "7E", "");
    snprintf(bad.issuer_fingerprint, sizeof bad.issuer_fingerprint, "not hex");
    ERR(TS_ERR_INVALID, NULL, ts_store_feed_append(fx->s, &bad));
    bad.event = 0;
    ERR(TS_ERR_INVALID, "event", ts_store_feed_append(fx->s, &bad));
    OK(ts_store_commit(fx->s));
    assert_int_equal(a.seq, 1);
    assert_int_equal(b.seq, 2);
    assert_string_equal(a.serial, "7E");
    assert_true(a.time > 0);

    /* A seq taken in a transaction that rolls back is given again. */
    OK(ts_store_begin(fx->s));
    OK(ts_store_feed_append(fx->s, &c));
    assert_int_equal(c.seq, 3);
    ts_store_rollback(fx->s);
    OK(ts_store_begin(fx->s));
    OK(ts_store_feed_append(fx->s, &c));
    OK(ts_store_commit(fx->s));
    assert_int_equal(c.seq, 3);
    /* The audit chain's lock was taken and given back unchanged. */
    int64_t entries = -1, first_bad = -1;
    OK(ts_store_audit_verify(fx->s, &entries, &first_bad));
    assert_int_equal(entries, 0);

    OK(ts_store_feed_list(fx->s, w.tenant, 0, 0, &rows, &count));
    assert_int_equal(count, 2);
    assert_int_equal(rows[0].seq, 1);
    assert_int_equal(rows[0].event, TS_FEED_CERT_REVOKED);
    assert_string_equal(rows[0].serial, "7E");
    assert_string_equal(rows[0].issuer_fingerprint, FP_CA);
    assert_string_equal(rows[0].device_uid, "dev-1");
    assert_int_equal(rows[0].reason, 1);
    assert_int_equal(rows[1].event, TS_FEED_DEVICE_DISABLED);
    assert_string_equal(rows[1].serial, "");
    assert_int_equal(rows[1].reason, -1);
    OPENSSL_free(rows);
    OK(ts_store_feed_list(fx->s, w.tenant, 1, 0, &rows, &count));
    assert_int_equal(count, 1);
    assert_int_equal(rows[0].seq, 2);
    OPENSSL_free(rows);
    OK(ts_store_feed_list(fx->s, w.tenant, 0, 1, &rows, &count));
    assert_int_equal(count, 1);
    assert_int_equal(rows[0].seq, 1);
    OPENSSL_free(rows);
    OK(ts_store_feed_list(fx->s, w.other, 0, 0, &rows, &count));
    assert_int_equal(count, 1);
    assert_int_equal(rows[0].seq, 3);
    OPENSSL_free(rows);
    OK(ts_store_feed_head(fx->s, &head));
    assert_int_equal(head, 3);
}

enum { FEED_WRITERS = 2, FEED_EACH = 60 };

/* In a child: FEED_EACH events, each in its own transaction with an audit entry. 0 on success. */
static int feed_writer(store_fx *fx, int64_t tenant)
{
    ts_store *s = NULL;
    if (store_fx_open_again(fx, &s) != TS_OK) {
        return 1;
    }
    for (int i = 0; i < FEED_EACH; i++) {
        ts_feed_row f = {.tenant_id = tenant, .event = TS_FEED_DEVICE_ENABLED, .reason = -1};
        snprintf(f.device_uid, sizeof f.device_uid, "dev-%d-%d", (int)getpid(), i);
        ts_err rv = ts_store_begin(s);
        if (rv == TS_OK) {
            rv = ts_store_audit_append(s, "test", "device.enable", f.device_uid, NULL);
        }
        if (rv == TS_OK) {
            rv = ts_store_feed_append(s, &f);
        }
        if (rv == TS_OK) {
            rv = ts_store_commit(s);
        }
        if (rv != TS_OK) {
            fprintf(stderr, "feed writer: %s\n", ts_error_message());
            ts_store_rollback(s);
            ts_store_free(s);
            return 1;
        }
    }
    ts_store_free(s);
    return 0;
}

/*
 * Two processes append while this one polls with the last seq it saw: since seq follows commit
 * order, every poll finds the events right after the last one seen, with no gap that a slower
 * transaction could fill later.
 */
static void case_feed_concurrent(store_fx *fx)
{
    world w = make_world(fx);
    pid_t pids[FEED_WRITERS];
    int64_t last = 0;
    int running = FEED_WRITERS;

    for (int c = 0; c < FEED_WRITERS; c++) {
        pids[c] = fork();
        assert_true(pids[c] >= 0);
        if (pids[c] == 0) {
            _exit(feed_writer(fx, w.tenant));
        }
    }
    /* Poll until both writers have exited, then once more: what they committed is all there. */
    for (int done = 0; !done;) {
        ts_feed_row *rows = NULL;
        size_t count = 0;
        done = running == 0;
        OK(ts_store_feed_list(fx->s, w.tenant, last, 0, &rows, &count));
        for (size_t i = 0; i < count; i++) {
            assert_int_equal(rows[i].seq, last + 1);
            last = rows[i].seq;
        }
        OPENSSL_free(rows);
        if (count == 0) {
            struct timespec pause = {.tv_nsec = 1000000};
            nanosleep(&pause, NULL);
        }
        for (int c = 0; c < FEED_WRITERS; c++) {
            int status = 0;
            if (pids[c] > 0 && waitpid(pids[c], &status, WNOHANG) == pids[c]) {
                assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
                pids[c] = 0;
                running--;
            }
        }
    }
    assert_int_equal(last, FEED_WRITERS * FEED_EACH);
    int64_t entries = 0, first_bad = 0;
    OK(ts_store_audit_verify(fx->s, &entries, &first_bad));
    assert_int_equal(entries, FEED_WRITERS * FEED_EACH);
}

/* --- CAs and tenants ------------------------------------------------------------------------- */

static void case_ca_lookup(store_fx *fx)
{
    world w = make_world(fx);
    ts_tenant_row t;
    ts_ca_row ca;
    ts_ca_row *rows = NULL;
    size_t count = 0;

    OK(ts_store_tenant_get_id(fx->s, w.tenant, &t));
    assert_string_equal(t.name, "acme");
    assert_string_equal(t.country, "DE");
    ERR(TS_ERR_NOT_FOUND, NULL, ts_store_tenant_get_id(fx->s, 987654, &t));

    OK(ts_store_ca_by_fingerprint(
        fx->s, "00000000000000000000000000000000000000000000000000000000000CA001", &ca));
    assert_int_equal(ca.id, w.ca);
    assert_int_equal(ca.tenant_id, w.tenant);
    assert_int_equal(ca.cert_len, sizeof fake_der);
    ts_ca_row_clear(&ca);
    ERR(TS_ERR_NOT_FOUND, NULL, ts_store_ca_by_fingerprint(fx->s, HASH_A, &ca));
    ERR(TS_ERR_INVALID, NULL, ts_store_ca_by_fingerprint(fx->s, "ca001", &ca));

    OK(ts_store_ca_list(fx->s, &rows, &count));
    assert_int_equal(count, 1);
    assert_int_equal(rows[0].id, w.ca);
    assert_memory_equal(rows[0].cert_der, fake_der, sizeof fake_der);
    ts_ca_row_clear(&rows[0]);
    OPENSSL_free(rows);
}

int main(void)
{
    static const store_case cases[] = {
        {"users", case_users},         {"tokens", case_tokens},
        {"claims", case_claims},       {"devices", case_devices},
        {"feed", case_feed},           {"feed_concurrent", case_feed_concurrent},
        {"ca_lookup", case_ca_lookup},
    };
    return store_run_cases("store_access", cases, sizeof cases / sizeof cases[0]);
}
