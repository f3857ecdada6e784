/*
 * Tenants and the root key of a CA instance (include/tessera/ca.h): a tenant's issuing CA under
 * the root, the root taken offline (a new tenant is then refused with nothing changed), restored
 * from M of N shares (fewer, or a mistyped share, refused); and an instance on the default
 * SoftHSM2 token. On SQLite and PostgreSQL; each case makes its own instance.
 */
#define _XOPEN_SOURCE 700
#include "ca_test_util.h"

/* An instance of its own on fx's backend, with the PIN in the key-store URI. */
static void own_instance(const ca_fx *shared, ca_fx *fx, ts_ca **ca)
{
    ts_ca_init_params p;

    assert_int_equal(ca_fx_prepare(fx, shared->backend), 0);
    snprintf(fx->ks_uri, sizeof fx->ks_uri, "soft:%s/ks?pin-value=%s", fx->dir, CA_TEST_PIN);
    ca_fx_params(fx, &p);
    assert_err(ts_ca_init(&p, &fx->res), TS_OK);
    assert_err(ts_ca_open(fx->dir, CA_TEST_ACTOR, ca), TS_OK);
}

/* share-i-of-5.txt of fx's instance. */
static void share_path(const ca_fx *fx, unsigned i, char *out, size_t size)
{
    snprintf(out, size, "%s/share-%u-of-%u.txt", fx->res.shares_dir, i, fx->res.shares_n);
}

/* A copy of share i with one digit of its first KEY line changed, as a typing slip would. */
static void share_mistyped(const ca_fx *fx, unsigned i, const char *out)
{
    char in[TS_CA_PATH_MAX + 32], text[4096];
    FILE *f;
    size_t len;

    share_path(fx, i, in, sizeof in);
    f = fopen(in, "r");
    assert_non_null(f);
    len = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[len] = '\0';
    char *key = strstr(text, " KEY ");
    assert_non_null(key);
    key[5] = key[5] == '0' ? '1' : '0';
    f = fopen(out, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, len, f), len);
    fclose(f);
}

static void last_action(ts_ca *ca, const char *want)
{
    char action[64], object[256];
    ca_last_audit(ca, 0, action, sizeof action, object, sizeof object);
    assert_string_equal(action, want);
}

static void tenants_and_root(ca_fx *shared)
{
    char s1[TS_CA_PATH_MAX + 32], s3[TS_CA_PATH_MAX + 32], s5[TS_CA_PATH_MAX + 32];
    char typo[1024], line[512];
    ca_fx fx;
    ts_ca *ca = NULL;
    X509 *acme = NULL, *dflt = NULL, *root = NULL, *cert = NULL;
    X509_CRL *crl = NULL;
    ca_snap before;

    own_instance(shared, &fx, &ca);
    share_path(&fx, 1, s1, sizeof s1);
    share_path(&fx, 3, s3, sizeof s3);
    share_path(&fx, 5, s5, sizeof s5);
    snprintf(typo, sizeof typo, "%s/typo.txt", fx.tmp);

    /* With the root online: a tenant with its own issuing CA under the root. */
    assert_err(ts_ca_tenant_create(ca, "acme", "Acme Corp", "fr"), TS_OK);
    last_action(ca, "profile.create");
    assert_err(ts_ca_cert(ca, "acme", TS_CA_ISSUING, &acme), TS_OK);
    assert_err(ts_ca_cert(ca, NULL, TS_CA_ISSUING, &dflt), TS_OK);
    assert_err(ts_ca_cert(ca, NULL, TS_CA_ROOT, &root), TS_OK);
    assert_int_equal(pki_verify_chain(root, acme, acme, NULL), X509_V_OK);
    assert_int_equal(X509_get_pathlen(acme), 0);
    assert_int_not_equal(X509_NAME_cmp(X509_get_subject_name(acme), X509_get_subject_name(dflt)),
                         0);
    pki_name_line(X509_get_subject_name(acme), line, sizeof line);
    assert_non_null(strstr(line, "O = Acme Corp"));
    assert_non_null(strstr(line, "C = FR"));
    uint8_t *der = NULL;
    size_t len = ca_csr("P-256", "/CN=acme-dev-1", NULL, &der, NULL);
    assert_err(ts_ca_issue_csr(ca, "acme", "device", der, len, &cert), TS_OK);
    OPENSSL_free(der);
    assert_int_equal(pki_verify_chain(root, acme, cert, NULL), X509_V_OK);
    assert_int_not_equal(pki_verify_chain(root, dflt, cert, NULL), X509_V_OK);
    X509_free(cert);
    assert_err(ts_ca_root_crl(ca, 24, &crl), TS_OK);
    assert_int_equal(X509_CRL_verify(crl, X509_get0_pubkey(root)), 1);
    X509_CRL_free(crl);

    ca_snap_take(ca, fx.dir, &before);
    assert_err(ts_ca_tenant_create(ca, "acme", NULL, NULL), TS_ERR_EXISTS);
    assert_err(ts_ca_tenant_create(ca, "Acme", NULL, NULL), TS_ERR_INVALID);
    assert_err(ts_ca_tenant_create(ca, "root", NULL, NULL), TS_ERR_INVALID);
    assert_err(ts_ca_tenant_create(ca, "-acme", NULL, NULL), TS_ERR_INVALID);
    assert_err(ts_ca_tenant_create(ca, "beta", NULL, "FRA"), TS_ERR_INVALID);
    ca_snap_same(ca, fx.dir, &before);

    /* Offline: a new tenant needs the root and is refused; issuing goes on. */
    assert_err(ts_ca_root_offline(ca), TS_OK);
    last_action(ca, "ceremony.offline-root");
    assert_err(ts_ca_root_offline(ca), TS_ERR_STATE);
    assert_msg("already offline");
    ca_snap_take(ca, fx.dir, &before);
    assert_err(ts_ca_tenant_create(ca, "beta", NULL, NULL), TS_ERR_STATE);
    assert_msg("root key is offline");
    assert_msg("3 of the 5");
    assert_err(ts_ca_root_crl(ca, 24, &crl), TS_ERR_STATE);
    assert_null(crl);
    ca_snap_same(ca, fx.dir, &before);
    cert = ca_issue_device(ca, "dev-while-offline", NULL);
    assert_int_equal(pki_verify_chain(root, dflt, cert, NULL), X509_V_OK);
    X509_free(cert);

    /* Still offline after reopening; two shares or a mistyped one change nothing. */
    ts_ca_free(ca);
    assert_err(ts_ca_open(fx.dir, CA_TEST_ACTOR, &ca), TS_OK);
    ca_snap_take(ca, fx.dir, &before);
    const char *two[] = {s1, s3};
    assert_err(ts_ca_root_restore(ca, two, 2, NULL), TS_ERR_INVALID);
    assert_msg("2 shares given, 3 needed");
    share_mistyped(&fx, 2, typo);
    const char *with_typo[] = {s1, typo, s5};
    assert_err(ts_ca_root_restore(ca, with_typo, 3, NULL), TS_ERR_INVALID);
    assert_msg("typo.txt");
    assert_msg("line");
    assert_err(ts_ca_root_restore(ca, with_typo, 0, NULL), TS_ERR_INVALID);
    char with_pin[1200];
    snprintf(with_pin, sizeof with_pin, "soft:%s/other?pin-value=1234", fx.tmp);
    const char *three[] = {s1, s3, s5};
    assert_err(ts_ca_root_restore(ca, three, 3, with_pin), TS_ERR_INVALID);
    assert_err(ts_ca_tenant_create(ca, "beta", NULL, NULL), TS_ERR_STATE);
    ca_snap_same(ca, fx.dir, &before);

    /* Any three shares bring it back. */
    assert_err(ts_ca_root_restore(ca, three, 3, NULL), TS_OK);
    last_action(ca, "ceremony.restore");
    assert_err(ts_ca_root_restore(ca, three, 3, NULL), TS_ERR_STATE);
    assert_msg("already online");
    assert_err(ts_ca_tenant_create(ca, "beta", "Beta Ltd", NULL), TS_OK);
    X509_free(acme);
    assert_err(ts_ca_cert(ca, "beta", TS_CA_ISSUING, &acme), TS_OK);
    assert_int_equal(pki_verify_chain(root, acme, acme, NULL), X509_V_OK);
    (void)ca_audit_count(ca);
    ca_audit_lacks(ca, CA_TEST_PIN);

    X509_free(acme);
    X509_free(dflt);
    X509_free(root);
    ts_ca_free(ca);
    ca_fx_free(&fx);
}

/* The default key store: a SoftHSM2 token under the instance directory. */
static void softhsm_default(ca_fx *shared)
{
    const char *module = getenv("TS_SOFTHSM_MODULE");
    char s1[TS_CA_PATH_MAX + 32], s2[TS_CA_PATH_MAX + 32];
    ts_ca_init_params p;
    ts_ca *ca = NULL;
    ca_fx fx;

    if (shared->backend != CA_SQLITE) {
        print_message("skipped: the SoftHSM2 case runs once, on SQLite\n");
        skip();
    }
    if (module == NULL || module[0] == '\0') {
        module = TS_SOFTHSM_MODULE; /* the build's, as ts_ca_init() would find it */
        assert_int_equal(setenv("TS_SOFTHSM_MODULE", module, 1), 0);
    }
    if (access(module, R_OK) != 0) {
        print_message("skipped: no SoftHSM2 module (TS_SOFTHSM_MODULE)\n");
        skip();
    }
    assert_int_equal(ca_fx_prepare(&fx, CA_SQLITE), 0);
    assert_int_equal(ts_test_softhsm_setup(fx.tmp), 0);
    ca_fx_params(&fx, &p);
    p.keystore_uri = NULL;
    p.shares_m = 2;
    p.shares_n = 3;
    assert_err(ts_ca_init(&p, &fx.res), TS_OK);
    assert_int_equal(strncmp(fx.res.keystore_uri, "pkcs11:", 7), 0);
    assert_null(strstr(fx.res.keystore_uri, "pin-value"));
    assert_int_equal(fx.res.shares_m, 2);
    assert_int_equal(fx.res.shares_n, 3);
    char path[1024];
    struct stat st;
    static const char *const secret[] = {"keystore.pin", "keystore.so-pin", "softhsm2.conf"};
    for (size_t i = 0; i < sizeof secret / sizeof secret[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", fx.dir, secret[i]);
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_mode & 0777, 0600);
    }

    assert_err(ts_ca_open(fx.dir, CA_TEST_ACTOR, &ca), TS_OK);
    X509 *cert = ca_issue_device(ca, "hsm-dev-1", NULL);
    assert_int_equal(ca_verify(ca, NULL, cert, NULL), X509_V_OK);
    X509_free(cert);

    /* The backup wraps and unwraps the root key on the token. */
    assert_err(ts_ca_root_offline(ca), TS_OK);
    assert_err(ts_ca_tenant_create(ca, "hsm", NULL, NULL), TS_ERR_STATE);
    snprintf(s1, sizeof s1, "%s/share-1-of-3.txt", fx.res.shares_dir);
    snprintf(s2, sizeof s2, "%s/share-3-of-3.txt", fx.res.shares_dir);
    const char *two[] = {s1, s2};
    assert_err(ts_ca_root_restore(ca, two, 2, NULL), TS_OK);
    assert_err(ts_ca_tenant_create(ca, "hsm", NULL, NULL), TS_OK);
    assert_int_equal(ca_verify(ca, "hsm", NULL, NULL), X509_V_OK);
    (void)ca_audit_count(ca);
    ts_ca_free(ca);
    ca_fx_free(&fx);
}

int main(void)
{
    static const ca_case cases[] = {
        {"tenants_and_root", tenants_and_root},
        {"softhsm_default", softhsm_default},
    };
    return ca_run_cases("ca_tenant", cases, sizeof cases / sizeof cases[0]);
}
