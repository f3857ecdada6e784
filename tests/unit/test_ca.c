/*
 * The CA instance (include/tessera/ca.h): the key ceremony's result, refusals of ts_ca_init(),
 * opening, issuing from CSRs, verification certificates and profiles, on SQLite and PostgreSQL.
 * A refused call must change nothing: no certificate, no audit entry, no file.
 */
#define _XOPEN_SOURCE 700
#include "ca_test_util.h"

/* --- init ------------------------------------------------------------------------------------ */

static void file_mode_0600(const char *dir, const char *name)
{
    char path[PATH_MAX];
    struct stat st;

    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (stat(path, &st) != 0) {
        fail_msg("%s is missing", path);
    }
    assert_int_equal(st.st_mode & 0777, 0600);
}

/* The instance made by ts_ca_init() for the runner: files, certificates, transcript. */
static void init_fresh(ca_fx *fx)
{
    static const char *const transcript[] = {"ceremony.begin", "key.generate",  "key.generate",
                                             "ca.create",      "tenant.create", "ca.create"};
    char want[PATH_MAX], fp[TS_FINGERPRINT_HEX], text[1024], *setting = NULL;
    X509 *root = NULL, *issuing = NULL;
    ts_audit_row *rows = NULL;
    size_t count = 0, end = 0;

    assert_int_equal(fx->res.shares_m, 3);
    assert_int_equal(fx->res.shares_n, 5);
    assert_int_equal(strlen(fx->res.root_fingerprint), 64);
    assert_int_equal(strlen(fx->res.issuing_fingerprint), 64);
    assert_string_not_equal(fx->res.root_fingerprint, fx->res.issuing_fingerprint);
    assert_null(strstr(fx->res.keystore_uri, "pin-value"));
    assert_null(strstr(fx->res.keystore_uri, CA_TEST_PIN));
    assert_int_equal(strncmp(fx->res.keystore_uri, "soft:", 5), 0);

    /* The shares and the secrets beside them: 0600 each. */
    snprintf(want, sizeof want, "%s/shares", fx->dir);
    assert_string_equal(fx->res.shares_dir, want);
    for (unsigned i = 1; i <= 5; i++) {
        char name[64];
        snprintf(name, sizeof name, "share-%u-of-5.txt", i);
        file_mode_0600(fx->res.shares_dir, name);
    }
    file_mode_0600(fx->dir, "instance.json");
    file_mode_0600(fx->dir, "root-key.wrapped");

    /* Root: self-signed, pathLen 1; issuing: pathLen 0 under it, with the CRL URL. */
    assert_err(ts_ca_cert(fx->ca, NULL, TS_CA_ROOT, &root), TS_OK);
    assert_err(ts_ca_cert(fx->ca, NULL, TS_CA_ISSUING, &issuing), TS_OK);
    assert_err(ts_cert_fingerprint(root, fp), TS_OK);
    assert_string_equal(fp, fx->res.root_fingerprint);
    assert_err(ts_cert_fingerprint(issuing, fp), TS_OK);
    assert_string_equal(fp, fx->res.issuing_fingerprint);
    assert_int_equal(X509_check_issued(root, root), X509_V_OK);
    assert_int_equal(X509_get_pathlen(root), 1);
    assert_int_equal(X509_get_pathlen(issuing), 0);
    assert_int_equal(X509_check_issued(root, issuing), X509_V_OK);
    assert_int_equal(pki_verify_chain(root, issuing, issuing, NULL), X509_V_OK);
    assert_true(pki_ext_text(issuing, NID_crl_distribution_points, text, sizeof text, NULL));
    assert_non_null(strstr(text, "URI:" CA_TEST_URL "/crl/"));
    assert_null(strstr(text, "test//"));
    pki_name_line(X509_get_subject_name(issuing), text, sizeof text);
    assert_non_null(strstr(text, "O = " CA_TEST_ORG));
    assert_non_null(strstr(text, "C = DE"));

    /* The transcript opens the audit log, which verifies; no PIN anywhere in it. */
    (void)ca_audit_count(fx->ca);
    assert_err(ts_store_audit_list(ts_ca_store(fx->ca), 0, 32, &rows, &count), TS_OK);
    assert_true(count > 6);
    for (size_t i = 0; i < 6; i++) {
        assert_string_equal(rows[i].action, transcript[i]);
    }
    for (size_t i = 0; i < count && end == 0; i++) {
        assert_string_equal(rows[i].actor, CA_TEST_ACTOR);
        end = strcmp(rows[i].action, "ceremony.end") == 0 ? i : 0;
    }
    assert_true(end > 6);
    assert_non_null(strstr(rows[end].details, fx->res.root_fingerprint));
    assert_non_null(strstr(rows[end].details, fx->res.issuing_fingerprint));
    assert_string_equal(rows[end - 1].action, "ceremony.backup");
    ts_audit_rows_free(rows, count);
    ca_audit_lacks(fx->ca, CA_TEST_PIN);
    assert_err(ts_store_setting_get(ts_ca_store(fx->ca), "keystore", &setting), TS_OK);
    assert_null(strstr(setting, "pin-value"));
    assert_null(strstr(setting, CA_TEST_PIN));
    OPENSSL_free(setting);
    X509_free(root);
    X509_free(issuing);
}

/* An instance directory, a non-empty one, a file, and a store that holds an instance. */
static void init_refuses_existing(ca_fx *fx)
{
    char other[512], file[1024], files[256], uri[1024];
    ca_snap before;
    ts_ca_init_params p;
    ts_ca_init_result res;
    FILE *f;

    ca_snap_take(fx->ca, fx->dir, &before);
    ca_fx_params(fx, &p);
    assert_err(ts_ca_init(&p, &res), TS_ERR_EXISTS);
    assert_msg("already holds an instance");
    ca_snap_same(fx->ca, fx->dir, &before);

    snprintf(other, sizeof other, "%s/full", fx->tmp);
    assert_int_equal(mkdir(other, 0700), 0);
    snprintf(file, sizeof file, "%s/notes.txt", other);
    f = fopen(file, "w");
    assert_non_null(f);
    fclose(f);
    p.dir = other;
    snprintf(uri, sizeof uri, "soft:%s/ks?pin-value=" CA_TEST_PIN, other);
    p.keystore_uri = uri;
    p.db_url = NULL;
    assert_err(ts_ca_init(&p, &res), TS_ERR_EXISTS);
    assert_msg("not empty");
    ca_files(other, files, sizeof files);
    assert_string_equal(files, "\n/notes.txt\n");

    p.dir = file;
    assert_err(ts_ca_init(&p, &res), TS_ERR_EXISTS);
    assert_msg("not a directory");

    /* A fresh directory, but the store already serves the shared instance: everything made on
     * the way (directory, key store, keys, shares) is removed again. */
    snprintf(other, sizeof other, "%s/fresh", fx->tmp);
    snprintf(uri, sizeof uri, "soft:%s/ks?pin-value=" CA_TEST_PIN, other);
    snprintf(file, sizeof file, "sqlite:%s/tessera.db", fx->dir);
    p.dir = other;
    p.db_url = fx->db_url[0] != '\0' ? fx->db_url : file;
    assert_err(ts_ca_init(&p, &res), TS_ERR_EXISTS);
    assert_msg("already holds an instance");
    assert_int_equal(access(other, F_OK), -1);
    ca_snap_same(fx->ca, fx->dir, &before);
}

static void init_shares_invalid(ca_fx *fx)
{
    static const struct {
        unsigned m, n;
    } bad[] = {{4, 3}, {1, 5}, {1, 1}, {2, TS_CA_SHARES_MAX + 1}, {0, 2}, {17, 17}};
    char dir[512];
    ts_ca_init_params p;
    ts_ca_init_result res;

    snprintf(dir, sizeof dir, "%s/shares-bad", fx->tmp);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ca_fx_params(fx, &p);
        p.dir = dir;
        p.keystore_uri = NULL;
        p.db_url = NULL;
        p.shares_m = bad[i].m;
        p.shares_n = bad[i].n;
        assert_err(ts_ca_init(&p, &res), TS_ERR_INVALID);
        assert_msg("shares");
        assert_int_equal(access(dir, F_OK), -1);
    }
}

/* --- open ------------------------------------------------------------------------------------ */

static void open_wrong_dir(ca_fx *fx)
{
    char dir[512];
    ts_ca *ca = (ts_ca *)fx; /* must be reset to NULL */

    snprintf(dir, sizeof dir, "%s/no-such-dir", fx->tmp);
    assert_err(ts_ca_open(dir, CA_TEST_ACTOR, &ca), TS_ERR_NOT_FOUND);
    assert_msg("no instance in");
    assert_null(ca);
    assert_err(ts_ca_open(fx->res.shares_dir, CA_TEST_ACTOR, &ca), TS_ERR_NOT_FOUND);
    assert_msg("tessera init");
    assert_null(ca);
    assert_err(ts_ca_open(fx->dir, NULL, &ca), TS_ERR_INVALID);
    assert_null(ca);
}

/* --- issuing ---------------------------------------------------------------------------------- */

static void issue_device(ca_fx *fx)
{
    char action[64], object[128], serial[TS_SERIAL_HEX], line[512];
    EVP_PKEY *key = NULL;
    ts_cert_row row;
    ca_snap before;

    ca_snap_take(fx->ca, fx->dir, &before);
    time_t from = time(NULL);
    X509 *cert = ca_issue_device(fx->ca, "dev-0001", &key);
    time_t until = time(NULL);
    assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(cert), key), 1);
    assert_int_equal(ca_verify(fx->ca, NULL, cert, NULL), X509_V_OK);
    assert_int_equal(X509_check_ca(cert), 0);
    assert_true(X509_get_key_usage(cert) & (KU_DIGITAL_SIGNATURE | KU_KEY_AGREEMENT));
    assert_int_equal(X509_get_extended_key_usage(cert), XKU_SSL_CLIENT);
    pki_name_line(X509_get_subject_name(cert), line, sizeof line);
    assert_non_null(strstr(line, "O = " CA_TEST_ORG));
    assert_non_null(strstr(line, "CN = dev-0001"));
    /* The built-in device profile: 3650 days from issuance (notBefore is backdated a little). */
    assert_in_range(pki_time(X509_get0_notAfter(cert)), from + 3650 * 86400, until + 3650 * 86400);
    assert_true(pki_time(X509_get0_notBefore(cert)) <= from);

    /* Stored as valid, with the device UID from the CN, and audited. */
    ca_row(fx->ca, cert, &row);
    assert_int_equal(row.state, TS_CERT_VALID);
    assert_string_equal(row.device_uid, "dev-0001");
    assert_string_equal(row.profile, "device");
    ts_cert_row_clear(&row);
    assert_int_equal(ca_cert_count(fx->ca), before.certs + 1);
    assert_int_equal(ca_audit_count(fx->ca), before.audit + 1);
    ca_last_audit(fx->ca, 0, action, sizeof action, object, sizeof object);
    ca_serial(cert, serial);
    assert_string_equal(action, "cert.issue");
    assert_string_equal(object, serial);
    X509_free(cert);
    EVP_PKEY_free(key);
}

/* CSRs the device profile refuses: TS_ERR_POLICY (or INVALID for what is not a CSR), nothing
 * stored, nothing audited. */
static void issue_refused(ca_fx *fx)
{
    static const char *const ca_true[] = {"basicConstraints=critical,CA:TRUE", NULL};
    static const char *const san[] = {"subjectAltName=DNS:dev.example.test", NULL};
    static const struct {
        const char *curve;
        const char *const *exts;
        ts_err want;
        const char *says;
    } bad[] = {
        {"P-384", NULL, TS_ERR_POLICY, "P-384"},
        {"P-256", ca_true, TS_ERR_POLICY, "CA:TRUE"},
        {"P-256", san, TS_ERR_POLICY, "subject alternative names"},
    };
    static const uint8_t garbage[] = "-----BEGIN CERTIFICATE REQUEST-----\nnot base64 at all!\n"
                                     "-----END CERTIFICATE REQUEST-----\n";
    uint8_t *der = NULL;
    X509 *cert = (X509 *)fx;
    ca_snap before;

    ca_snap_take(fx->ca, fx->dir, &before);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        size_t len = ca_csr(bad[i].curve, "/CN=dev-bad", bad[i].exts, &der, NULL);
        assert_err(ts_ca_issue_csr(fx->ca, NULL, "device", der, len, &cert), bad[i].want);
        assert_msg("CSR refused");
        assert_msg(bad[i].says);
        assert_null(cert);
        OPENSSL_free(der);
        ca_snap_same(fx->ca, fx->dir, &before);
    }
    /* A valid CSR whose signature was broken after signing. */
    size_t len = ca_csr("P-256", "/CN=dev-sig", NULL, &der, NULL);
    der[len - 3] ^= 0x01;
    assert_err(ts_ca_issue_csr(fx->ca, NULL, "device", der, len, &cert), TS_ERR_AUTH);
    OPENSSL_free(der);
    assert_err(ts_ca_issue_csr(fx->ca, NULL, "device", garbage, sizeof garbage - 1, &cert),
               TS_ERR_INVALID);
    assert_null(cert);
    ca_snap_same(fx->ca, fx->dir, &before);
}

static void issue_unknown_names(ca_fx *fx)
{
    uint8_t *der = NULL;
    X509 *cert = NULL;
    ca_snap before;
    size_t len = ca_csr("P-256", "/CN=dev-0002", NULL, &der, NULL);

    ca_snap_take(fx->ca, fx->dir, &before);
    assert_err(ts_ca_issue_csr(fx->ca, NULL, "no-such-profile", der, len, &cert), TS_ERR_NOT_FOUND);
    assert_msg("no-such-profile");
    assert_err(ts_ca_issue_csr(fx->ca, "nobody", "device", der, len, &cert), TS_ERR_NOT_FOUND);
    assert_msg("nobody");
    assert_err(ts_ca_issue_csr(fx->ca, "Bad Tenant", "device", der, len, &cert), TS_ERR_INVALID);
    assert_null(cert);
    ca_snap_same(fx->ca, fx->dir, &before);
    OPENSSL_free(der);
}

/* --- verification certificates ---------------------------------------------------------------- */

static void verification_cert(ca_fx *fx)
{
    char max[TS_VERIFY_CODE_MAX + 2], cn[128];
    const char *bad[] = {"", "has space", "a/b", "caf\xc3\xa9", "x,CN=evil", max, NULL};
    X509 *cert = NULL;
    ts_cert_row row;
    ca_snap before;

    assert_err(ts_ca_verification_cert(fx->ca, NULL, "ABCdef0123456789._-", &cert), TS_OK);
    assert_int_equal(
        X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof cn),
        (int)strlen("ABCdef0123456789._-"));
    assert_string_equal(cn, "ABCdef0123456789._-");
    assert_int_equal(ca_verify(fx->ca, NULL, cert, NULL), X509_V_OK);
    ca_row(fx->ca, cert, &row);
    assert_string_equal(row.profile, "verification");
    assert_string_equal(row.device_uid, "");
    ts_cert_row_clear(&row);
    X509_free(cert);

    /* TS_VERIFY_CODE_MAX characters are fine; one more is not. */
    memset(max, 'A', TS_VERIFY_CODE_MAX);
    max[TS_VERIFY_CODE_MAX] = '\0';
    assert_err(ts_ca_verification_cert(fx->ca, NULL, max, &cert), TS_OK);
    X509_free(cert);
    max[TS_VERIFY_CODE_MAX] = 'A';
    max[TS_VERIFY_CODE_MAX + 1] = '\0';

    ca_snap_take(fx->ca, fx->dir, &before);
    cert = (X509 *)fx;
    for (size_t i = 0; bad[i] != NULL; i++) {
        assert_err(ts_ca_verification_cert(fx->ca, NULL, bad[i], &cert), TS_ERR_INVALID);
        assert_msg("registration code");
        assert_null(cert);
    }
    assert_err(ts_ca_verification_cert(fx->ca, NULL, NULL, &cert), TS_ERR_INVALID);
    assert_err(ts_ca_verification_cert(fx->ca, "nobody", "CODE", &cert), TS_ERR_NOT_FOUND);
    ca_snap_same(fx->ca, fx->dir, &before);
}

/* --- profiles --------------------------------------------------------------------------------- */

/* The built-in device profile's JSON renamed and with another validity. */
static char *device_json(const char *name, int days)
{
    ts_profile *p = NULL;
    char *json = NULL, *out = NULL, *at;

    assert_err(ts_profile_builtin("device", &p), TS_OK);
    assert_err(ts_profile_to_json(p, &json), TS_OK);
    ts_profile_free(p);
    out = malloc(strlen(json) + 128);
    assert_non_null(out);
    at = strstr(json, "\"name\": \"device\"");
    assert_non_null(at);
    sprintf(out, "%.*s\"name\": \"%s\"", (int)(at - json), json, name);
    at += strlen("\"name\": \"device\"");
    char *days_at = strstr(at, "\"days\": 3650");
    assert_non_null(days_at);
    sprintf(out + strlen(out), "%.*s\"days\": %d%s", (int)(days_at - at), at, days,
            days_at + strlen("\"days\": 3650"));
    OPENSSL_free(json);
    return out;
}

static size_t profile_count(ts_ca *ca)
{
    char **names = NULL;
    size_t count = 0;
    ts_tenant_row t;

    assert_err(ts_ca_tenant(ca, NULL, &t), TS_OK);
    assert_err(ts_store_profile_list(ts_ca_store(ca), t.id, &names, &count), TS_OK);
    for (size_t i = 0; i < count; i++) {
        OPENSSL_free(names[i]);
    }
    OPENSSL_free(names);
    return count;
}

static time_t issue_validity(ts_ca *ca, const char *profile)
{
    uint8_t *der = NULL;
    X509 *cert = NULL;
    size_t len = ca_csr("P-256", "/CN=dev-sensor", NULL, &der, NULL);
    time_t from = time(NULL);

    assert_err(ts_ca_issue_csr(ca, NULL, profile, der, len, &cert), TS_OK);
    /* Whole days from issuance; the call itself takes far less than a day. */
    time_t days = (pki_time(X509_get0_notAfter(cert)) - from) / 86400;
    OPENSSL_free(der);
    X509_free(cert);
    return days;
}

static void profiles(ca_fx *fx)
{
    static const char broken[] = "{\"name\": \"sensor\", ";
    char action[64], object[64];
    char *sensor = device_json("sensor", 3650);
    char *short_lived = device_json("sensor", 30);
    char *zero = device_json("sensor", 0);
    size_t profiles_before = profile_count(fx->ca);
    ca_snap before;

    ca_snap_take(fx->ca, fx->dir, &before);
    assert_err(ts_ca_profile_put(fx->ca, NULL, "sensor", broken, strlen(broken), 0),
               TS_ERR_INVALID);
    assert_err(ts_ca_profile_put(fx->ca, NULL, "sensor", zero, strlen(zero), 0), TS_ERR_INVALID);
    assert_msg("validity");
    assert_err(ts_ca_profile_put(fx->ca, NULL, "other", sensor, strlen(sensor), 0), TS_ERR_INVALID);
    assert_msg("not 'other'");
    assert_err(ts_ca_profile_put(fx->ca, NULL, "sensor", sensor, strlen(sensor), 1),
               TS_ERR_NOT_FOUND);
    assert_err(ts_ca_profile_put(fx->ca, "nobody", "sensor", sensor, strlen(sensor), 0),
               TS_ERR_NOT_FOUND);
    ca_snap_same(fx->ca, fx->dir, &before);
    assert_int_equal(profile_count(fx->ca), profiles_before);

    assert_err(ts_ca_profile_put(fx->ca, NULL, "sensor", sensor, strlen(sensor), 0), TS_OK);
    ca_last_audit(fx->ca, 0, action, sizeof action, object, sizeof object);
    assert_string_equal(action, "profile.create");
    assert_string_equal(object, "sensor");
    assert_err(ts_ca_profile_put(fx->ca, NULL, "sensor", sensor, strlen(sensor), 0), TS_ERR_EXISTS);
    assert_int_equal(issue_validity(fx->ca, "sensor"), 3650);

    assert_err(ts_ca_profile_put(fx->ca, NULL, "sensor", short_lived, strlen(short_lived), 1),
               TS_OK);
    ca_last_audit(fx->ca, 0, action, sizeof action, object, sizeof object);
    assert_string_equal(action, "profile.update");
    assert_int_equal(issue_validity(fx->ca, "sensor"), 30);
    assert_int_equal(issue_validity(fx->ca, "device"), 3650);
    assert_int_equal(profile_count(fx->ca), profiles_before + 1);
    free(sensor);
    free(short_lived);
    free(zero);
}

int main(void)
{
    static const ca_case cases[] = {
        {"init_fresh", init_fresh},
        {"init_refuses_existing", init_refuses_existing},
        {"init_shares_invalid", init_shares_invalid},
        {"open_wrong_dir", open_wrong_dir},
        {"issue_device", issue_device},
        {"issue_refused", issue_refused},
        {"issue_unknown_names", issue_unknown_names},
        {"verification_cert", verification_cert},
        {"profiles", profiles},
    };
    return ca_run_cases("ca", cases, sizeof cases / sizeof cases[0]);
}
