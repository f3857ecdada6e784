/*
 * The store on both backends: migrations, transactions, settings, tenants, CAs and profiles.
 * Certificates and CRL numbers are in test_store_certs.c, the audit chain in
 * test_store_audit.c. Every case runs on SQLite and on PostgreSQL (store_test_util.h).
 */
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "store_test_util.h"

static int64_t add_tenant(store_fx *fx, const char *name)
{
    ts_tenant_row t = {0};
    snprintf(t.name, sizeof t.name, "%s", name);
    snprintf(t.org, sizeof t.org, "Org of %s", name);
    snprintf(t.country, sizeof t.country, "DE");
    OK(ts_store_begin(fx->s));
    OK(ts_store_tenant_insert(fx->s, &t));
    OK(ts_store_commit(fx->s));
    assert_true(t.id > 0);
    return t.id;
}

static const uint8_t fake_der[] = {0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x02};

static ts_ca_row ca_template(int64_t tenant, ts_ca_kind kind, int active, int seq)
{
    ts_ca_row ca = {0};
    ca.tenant_id = tenant;
    ca.kind = kind;
    ca.active = active;
    snprintf(ca.key_label, sizeof ca.key_label, "ca-key-%d", seq);
    ca.cert_der = (uint8_t *)fake_der;
    ca.cert_len = sizeof fake_der;
    snprintf(ca.subject, sizeof ca.subject, "CN=CA %d", seq);
    snprintf(ca.fingerprint, sizeof ca.fingerprint, "%064x", seq);
    return ca;
}

static int64_t count_rows(store_fx *fx, const char *sql)
{
    int64_t n = -1;
    OK(ts_store_read(fx->s, sql, NULL, 0, ts_sql_one_int, &n));
    return n;
}

/* --- Migrations ---------------------------------------------------------------------------- */

static void case_migrations(store_fx *fx)
{
    int version = 0;
    ts_store *again = NULL;
    const char *want = fx->backend == STORE_SQLITE ? "sqlite" : "postgresql";

    assert_string_equal(ts_store_backend(fx->s), want);
    OK(ts_store_schema_version(fx->s, &version));
    assert_int_equal(version, ts_store_latest_version());
    assert_int_equal(count_rows(fx, "SELECT COUNT(*) FROM schema_version"),
                     ts_store_latest_version());

    /* Re-opening is a no-op: same version, no new steps, data kept. */
    add_tenant(fx, "kept");
    OK(store_fx_open_again(fx, &again));
    OK(ts_store_schema_version(again, &version));
    assert_int_equal(version, ts_store_latest_version());
    ts_tenant_row t;
    OK(ts_store_tenant_get(again, "kept", &t));
    ts_store_free(again);
    assert_int_equal(count_rows(fx, "SELECT COUNT(*) FROM schema_version"),
                     ts_store_latest_version());

    /* A database from a build that knew only version 1 is upgraded when opened. */
    char old_url[1024];
    ts_store *old = NULL;
    assert_int_equal(store_fx_new_database(fx, old_url, sizeof old_url), 0);
    OK(ts_store_open_version(old_url, 1, &old));
    OK(ts_store_schema_version(old, &version));
    assert_int_equal(version, 1);
    ts_tenant_row before = {.country = "FR"};
    snprintf(before.name, sizeof before.name, "from-v1");
    OK(ts_store_begin(old));
    OK(ts_store_tenant_insert(old, &before));
    ERR(TS_ERR_STORE, NULL, ts_store_audit_append(old, "op", "test", "", NULL));
    ts_store_rollback(old);
    OK(ts_store_begin(old));
    OK(ts_store_tenant_insert(old, &before));
    OK(ts_store_commit(old));
    ts_store_free(old);
    OK(ts_store_open(old_url, &old));
    OK(ts_store_schema_version(old, &version));
    assert_int_equal(version, ts_store_latest_version());
    OK(ts_store_tenant_get(old, "from-v1", &t));
    assert_string_equal(t.country, "FR");
    OK(ts_store_begin(old));
    OK(ts_store_audit_append(old, "op", "upgraded", "", NULL));
    OK(ts_store_commit(old));
    ts_store_free(old);

    /* A schema newer than this build is refused, not used. */
    assert_int_equal(
        store_fx_raw(fx, "INSERT INTO schema_version (version, applied) VALUES (99, 0)", NULL), 0);
    ERR(TS_ERR_UNSUPPORTED, "newer", ts_store_open(fx->url, &again));
    assert_null(again);
}

/* Several processes open one fresh database at once: exactly one applies each step. */
static void case_concurrent_open(store_fx *fx)
{
    enum { OPENERS = 4 };
    char url[1024];
    pid_t pids[OPENERS];
    assert_int_equal(store_fx_new_database(fx, url, sizeof url), 0);
    for (int i = 0; i < OPENERS; i++) {
        pids[i] = fork();
        assert_true(pids[i] >= 0);
        if (pids[i] == 0) {
            ts_store *s = NULL;
            ts_err rv = ts_store_open(url, &s);
            if (rv != TS_OK) {
                fprintf(stderr, "opener %d: %s\n", i, ts_error_message());
            }
            _exit(rv == TS_OK ? 0 : 1);
        }
    }
    for (int i = 0; i < OPENERS; i++) {
        int status = 0;
        assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    ts_store *s = NULL;
    int64_t steps = -1;
    OK(ts_store_open(url, &s));
    OK(ts_store_read(s, "SELECT COUNT(*) FROM schema_version", NULL, 0, ts_sql_one_int, &steps));
    ts_store_free(s);
    assert_int_equal(steps, ts_store_latest_version());
}

/* --- Transactions -------------------------------------------------------------------------- */

static void case_writes_need_tx(store_fx *fx)
{
    ts_tenant_row t = {.name = "outside"};
    ts_ca_row ca = ca_template(0, TS_CA_ROOT, 1, 1);
    uint64_t n = 0;
    ERR(TS_ERR_STATE, "ts_store_begin", ts_store_setting_set(fx->s, "org", "x"));
    ERR(TS_ERR_STATE, NULL, ts_store_tenant_insert(fx->s, &t));
    ERR(TS_ERR_STATE, NULL, ts_store_ca_insert(fx->s, &ca));
    ERR(TS_ERR_STATE, NULL, ts_store_profile_put(fx->s, 1, "p", "{}", 0));
    ERR(TS_ERR_STATE, NULL, ts_store_crl_number_next(fx->s, 1, &n));
    ERR(TS_ERR_STATE, NULL, ts_store_cert_revoke(fx->s, 1, "01", 0, 1));
    ERR(TS_ERR_STATE, NULL, ts_store_audit_append(fx->s, "op", "x", "", NULL));
    ERR(TS_ERR_STATE, NULL, ts_store_commit(fx->s));
    OK(ts_store_begin(fx->s));
    ERR(TS_ERR_STATE, "already open", ts_store_begin(fx->s));
    ts_store_rollback(fx->s);
    ts_store_rollback(fx->s); /* twice is harmless */

    /* Reads need no transaction. */
    ts_tenant_row *rows = NULL;
    size_t count = 9;
    OK(ts_store_tenant_list(fx->s, &rows, &count));
    assert_int_equal(count, 0);
    OPENSSL_free(rows);
}

static void case_rollback(store_fx *fx)
{
    ts_tenant_row t = {.name = "ghost"};
    ts_tenant_row got;
    char *value = NULL;
    ts_audit_row *entries = NULL;
    size_t count = 9;
    int64_t n = -1, bad = -1;

    OK(ts_store_begin(fx->s));
    OK(ts_store_tenant_insert(fx->s, &t));
    OK(ts_store_setting_set(fx->s, "org", "Ghost Inc"));
    OK(ts_store_profile_put(fx->s, t.id, "device", "{\"kind\":\"device\"}", 0));
    OK(ts_store_audit_append(fx->s, "op", "tenant.create", "ghost", NULL));
    ts_store_rollback(fx->s);

    ERR(TS_ERR_NOT_FOUND, NULL, ts_store_tenant_get(fx->s, "ghost", &got));
    ERR(TS_ERR_NOT_FOUND, NULL, ts_store_setting_get(fx->s, "org", &value));
    assert_null(value);
    OK(ts_store_audit_list(fx->s, 0, 0, &entries, &count));
    assert_int_equal(count, 0);
    ts_audit_rows_free(entries, count);
    OK(ts_store_audit_verify(fx->s, &n, &bad));
    assert_int_equal(n, 0);
    assert_int_equal(count_rows(fx, "SELECT COUNT(*) FROM profiles"), 0);
}

/* A statement the database refuses spoils the transaction: only rollback is accepted. */
static void case_failed_tx(store_fx *fx)
{
    ts_ca_row first = ca_template(0, TS_CA_ROOT, 1, 1);
    ts_ca_row second = ca_template(0, TS_CA_ROOT, 1, 2);
    ts_tenant_row t = {.name = "lost"}, got;

    OK(ts_store_begin(fx->s));
    OK(ts_store_tenant_insert(fx->s, &t));
    OK(ts_store_ca_insert(fx->s, &first));
    ERR(TS_ERR_EXISTS, "active CA", ts_store_ca_insert(fx->s, &second));
    ERR(TS_ERR_STATE, "roll it back", ts_store_setting_set(fx->s, "k", "v"));
    ERR(TS_ERR_STATE, NULL, ts_store_tenant_get(fx->s, "lost", &got));
    ERR(TS_ERR_STATE, "rolled back", ts_store_commit(fx->s));
    ts_store_rollback(fx->s);
    ERR(TS_ERR_NOT_FOUND, NULL, ts_store_tenant_get(fx->s, "lost", &got));

    /* The store is usable again. */
    OK(ts_store_begin(fx->s));
    OK(ts_store_tenant_insert(fx->s, &t));
    OK(ts_store_commit(fx->s));
    OK(ts_store_tenant_get(fx->s, "lost", &got));
}

/* --- Settings and tenants ------------------------------------------------------------------ */

static void case_settings(store_fx *fx)
{
    char *value = NULL;
    OK(ts_store_begin(fx->s));
    OK(ts_store_setting_set(fx->s, "org", "Acme"));
    OK(ts_store_setting_set(fx->s, "base_url", "https://ca.example"));
    OK(ts_store_commit(fx->s));
    OK(ts_store_setting_get(fx->s, "org", &value));
    assert_string_equal(value, "Acme");
    OPENSSL_free(value);

    OK(ts_store_begin(fx->s));
    OK(ts_store_setting_set(fx->s, "org", "Acme GmbH \xc3\xa4"));
    OK(ts_store_setting_set(fx->s, "empty", ""));
    OK(ts_store_commit(fx->s));
    OK(ts_store_setting_get(fx->s, "org", &value));
    assert_string_equal(value, "Acme GmbH \xc3\xa4");
    OPENSSL_free(value);
    OK(ts_store_setting_get(fx->s, "empty", &value));
    assert_string_equal(value, "");
    OPENSSL_free(value);

    value = NULL;
    ERR(TS_ERR_NOT_FOUND, "not set", ts_store_setting_get(fx->s, "missing", &value));
    assert_null(value);
    OK(ts_store_begin(fx->s));
    ERR(TS_ERR_INVALID, NULL, ts_store_setting_set(fx->s, "has space", "v"));
    ERR(TS_ERR_INVALID, NULL, ts_store_setting_set(fx->s, "", "v"));
    ERR(TS_ERR_INVALID, NULL, ts_store_setting_set(fx->s, "k", NULL));
    ts_store_rollback(fx->s);
}

static void case_tenants(store_fx *fx)
{
    ts_tenant_row t = {0}, got;
    ts_tenant_row *rows = NULL;
    size_t count = 0;

    add_tenant(fx, "charlie");
    int64_t alpha = add_tenant(fx, "alpha");
    add_tenant(fx, "bravo");

    OK(ts_store_tenant_get(fx->s, "alpha", &got));
    assert_int_equal(got.id, alpha);
    assert_string_equal(got.org, "Org of alpha");
    assert_string_equal(got.country, "DE");
    assert_true(got.created > 0);
    ERR(TS_ERR_NOT_FOUND, "no tenant", ts_store_tenant_get(fx->s, "delta", &got));

    OK(ts_store_tenant_list(fx->s, &rows, &count));
    assert_int_equal(count, 3);
    assert_string_equal(rows[0].name, "alpha");
    assert_string_equal(rows[1].name, "bravo");
    assert_string_equal(rows[2].name, "charlie");
    OPENSSL_free(rows);

    /* A taken name is refused without spoiling the transaction. */
    snprintf(t.name, sizeof t.name, "alpha");
    OK(ts_store_begin(fx->s));
    ERR(TS_ERR_EXISTS, "already exists", ts_store_tenant_insert(fx->s, &t));
    snprintf(t.name, sizeof t.name, "delta");
    OK(ts_store_tenant_insert(fx->s, &t));
    OK(ts_store_commit(fx->s));
    OK(ts_store_tenant_get(fx->s, "delta", &got));

    /* Fields that do not fit, or are not what they say, are refused. */
    OK(ts_store_begin(fx->s));
    memset(t.name, 'x', sizeof t.name); /* no NUL: longer than TS_NAME_MAX */
    ERR(TS_ERR_INVALID, NULL, ts_store_tenant_insert(fx->s, &t));
    snprintf(t.name, sizeof t.name, "echo");
    memset(t.org, 'o', sizeof t.org);
    ERR(TS_ERR_INVALID, NULL, ts_store_tenant_insert(fx->s, &t));
    t.org[0] = '\0';
    snprintf(t.country, sizeof t.country, "de");
    ERR(TS_ERR_INVALID, "country", ts_store_tenant_insert(fx->s, &t));
    snprintf(t.name, sizeof t.name, "with space");
    t.country[0] = '\0';
    ERR(TS_ERR_INVALID, NULL, ts_store_tenant_insert(fx->s, &t));
    ts_store_rollback(fx->s);
}

/* A value longer than its field, written behind the store's back, is refused on read. */
static void case_oversized_values(store_fx *fx)
{
    char big[TS_TEXT_MAX + 100];
    ts_tenant_row got;
    ts_tenant_row *rows = NULL;
    size_t count = 0;
    add_tenant(fx, "victim");
    memset(big, 'A', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    assert_int_equal(store_fx_raw(fx, "UPDATE tenants SET org = $1", big), 0);
    ERR(TS_ERR_CORRUPT, "tenants.org", ts_store_tenant_get(fx->s, "victim", &got));
    ERR(TS_ERR_CORRUPT, NULL, ts_store_tenant_list(fx->s, &rows, &count));
    assert_null(rows);
}

/* --- CAs ----------------------------------------------------------------------------------- */

static void case_cas(store_fx *fx)
{
    int64_t t = add_tenant(fx, "acme");
    ts_ca_row root = ca_template(0, TS_CA_ROOT, 1, 1);
    ts_ca_row issuing = ca_template(t, TS_CA_ISSUING, 1, 2);
    ts_ca_row dup = ca_template(t, TS_CA_ISSUING, 1, 3);
    ts_ca_row next = ca_template(t, TS_CA_ISSUING, 0, 4);
    ts_ca_row got = {0};

    OK(ts_store_begin(fx->s));
    OK(ts_store_ca_insert(fx->s, &root));
    OK(ts_store_ca_insert(fx->s, &issuing));
    OK(ts_store_commit(fx->s));
    assert_true(root.id > 0 && issuing.id > root.id);

    OK(ts_store_ca_active(fx->s, 0, TS_CA_ROOT, &got));
    assert_int_equal(got.id, root.id);
    assert_int_equal(got.tenant_id, 0);
    assert_int_equal(got.kind, TS_CA_ROOT);
    ts_ca_row_clear(&got);
    OK(ts_store_ca_active(fx->s, t, TS_CA_ISSUING, &got));
    assert_int_equal(got.id, issuing.id);
    assert_int_equal(got.tenant_id, t);
    assert_int_equal(got.active, 1);
    assert_string_equal(got.key_label, "ca-key-2");
    assert_string_equal(got.subject, "CN=CA 2");
    assert_string_equal(got.fingerprint, issuing.fingerprint);
    assert_int_equal(got.cert_len, sizeof fake_der);
    assert_memory_equal(got.cert_der, fake_der, sizeof fake_der);
    ts_ca_row_clear(&got);
    ERR(TS_ERR_NOT_FOUND, NULL, ts_store_ca_active(fx->s, t, TS_CA_ROOT, &got));
    ERR(TS_ERR_NOT_FOUND, NULL, ts_store_ca_get(fx->s, 999, &got));
    assert_null(got.cert_der);

    /* One active CA per tenant and kind. */
    OK(ts_store_begin(fx->s));
    ERR(TS_ERR_EXISTS, "active CA", ts_store_ca_insert(fx->s, &dup));
    ts_store_rollback(fx->s);

    /* Rotation: the next CA is stored inactive, then takes over. */
    OK(ts_store_begin(fx->s));
    OK(ts_store_ca_insert(fx->s, &next));
    OK(ts_store_ca_set_active(fx->s, issuing.id, 0));
    OK(ts_store_ca_set_active(fx->s, next.id, 1));
    OK(ts_store_commit(fx->s));
    OK(ts_store_ca_active(fx->s, t, TS_CA_ISSUING, &got));
    assert_int_equal(got.id, next.id);
    ts_ca_row_clear(&got);
    OK(ts_store_ca_get(fx->s, issuing.id, &got));
    assert_int_equal(got.active, 0);
    ts_ca_row_clear(&got);
    OK(ts_store_begin(fx->s));
    ERR(TS_ERR_EXISTS, NULL, ts_store_ca_set_active(fx->s, issuing.id, 1));
    ts_store_rollback(fx->s);

    /* Rows that contradict themselves are refused before the database sees them. */
    ts_ca_row bad = ca_template(t, TS_CA_ROOT, 0, 5);
    OK(ts_store_begin(fx->s));
    ERR(TS_ERR_INVALID, "root", ts_store_ca_insert(fx->s, &bad));
    bad = ca_template(0, TS_CA_ISSUING, 0, 6);
    ERR(TS_ERR_INVALID, "tenant", ts_store_ca_insert(fx->s, &bad));
    bad = ca_template(t, TS_CA_ISSUING, 0, 7);
    bad.fingerprint[3] = 'z';
    ERR(TS_ERR_INVALID, "fingerprint", ts_store_ca_insert(fx->s, &bad));
    bad = ca_template(t, TS_CA_ISSUING, 0, 8);
    bad.cert_len = 0;
    ERR(TS_ERR_INVALID, NULL, ts_store_ca_insert(fx->s, &bad));
    bad = ca_template(999, TS_CA_ISSUING, 0, 9);
    ERR(TS_ERR_NOT_FOUND, NULL, ts_store_ca_insert(fx->s, &bad));
    ts_store_rollback(fx->s);
}

/* --- Profiles ------------------------------------------------------------------------------ */

static void case_profiles(store_fx *fx)
{
    int64_t t = add_tenant(fx, "acme");
    int64_t other = add_tenant(fx, "other");
    char *json = NULL;
    char **names = NULL;
    size_t count = 0;

    OK(ts_store_begin(fx->s));
    OK(ts_store_profile_put(fx->s, t, "server", "{\"eku\":[\"serverAuth\"]}", 0));
    OK(ts_store_profile_put(fx->s, t, "device", "{\"days\":365}", 0));
    OK(ts_store_profile_put(fx->s, other, "device", "{\"days\":30}", 0));
    OK(ts_store_commit(fx->s));

    OK(ts_store_profile_get(fx->s, t, "device", &json));
    assert_string_equal(json, "{\"days\":365}");
    OPENSSL_free(json);
    OK(ts_store_profile_list(fx->s, t, &names, &count));
    assert_int_equal(count, 2);
    assert_string_equal(names[0], "device");
    assert_string_equal(names[1], "server");
    for (size_t i = 0; i < count; i++) {
        OPENSSL_free(names[i]);
    }
    OPENSSL_free(names);

    OK(ts_store_begin(fx->s));
    ERR(TS_ERR_EXISTS, "already", ts_store_profile_put(fx->s, t, "device", "{}", 0));
    OK(ts_store_profile_put(fx->s, t, "device", "{\"days\":730}", 1));
    ERR(TS_ERR_NOT_FOUND, NULL, ts_store_profile_put(fx->s, t, "firmware", "{}", 1));
    ERR(TS_ERR_INVALID, "JSON", ts_store_profile_put(fx->s, t, "broken", "{\"days\":", 0));
    ERR(TS_ERR_INVALID, "object", ts_store_profile_put(fx->s, t, "list", "[1,2]", 0));
    ERR(TS_ERR_INVALID, NULL, ts_store_profile_put(fx->s, t, "dup", "{\"a\":1,\"a\":2}", 0));
    OK(ts_store_commit(fx->s));

    OK(ts_store_profile_get(fx->s, t, "device", &json));
    assert_string_equal(json, "{\"days\":730}");
    OPENSSL_free(json);
    OK(ts_store_profile_get(fx->s, other, "device", &json));
    assert_string_equal(json, "{\"days\":30}");
    OPENSSL_free(json);
    json = NULL;
    ERR(TS_ERR_NOT_FOUND, NULL, ts_store_profile_get(fx->s, t, "firmware", &json));
    assert_null(json);

    /* A profile of a tenant that does not exist. */
    OK(ts_store_begin(fx->s));
    ERR(TS_ERR_NOT_FOUND, NULL, ts_store_profile_put(fx->s, 999, "device", "{}", 0));
    ts_store_rollback(fx->s);
}

int main(void)
{
    static const store_case cases[] = {
        {"migrations", case_migrations},
        {"concurrent_open", case_concurrent_open},
        {"writes_need_tx", case_writes_need_tx},
        {"rollback", case_rollback},
        {"failed_tx", case_failed_tx},
        {"settings", case_settings},
        {"tenants", case_tenants},
        {"oversized_values", case_oversized_values},
        {"cas", case_cas},
        {"profiles", case_profiles},
    };
    return store_run_cases("store", cases, sizeof cases / sizeof cases[0]);
}
