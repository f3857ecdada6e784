/* Conformance cases: bad URIs and arguments, PINs, modules, tokens and a full store. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "ks_cases.h"
#include "ks_check.h"

/* Opening and creating from uri must both fail with want, leaving no store behind. */
static void refused_at(const char *file, int line, const char *uri, ts_err want, const char *substr)
{
    ts_keystore *ks = (ts_keystore *)&ks; /* not NULL, so a missed reset shows */
    char expr[512];

    snprintf(expr, sizeof expr, "ts_keystore_open(\"%s\")", uri);
    ks_expect_at(file, line, expr, ts_keystore_open(uri, &ks), want, substr);
    if (ks != NULL) {
        ks_check_fail(file, line, "%s failed but left a store", expr);
    }
    snprintf(expr, sizeof expr, "ts_keystore_create(\"%s\")", uri);
    ks = (ts_keystore *)&ks;
    ks_expect_at(file, line, expr, ts_keystore_create(uri, KS_SO_PIN, &ks), want, substr);
    if (ks != NULL) {
        ks_check_fail(file, line, "%s failed but left a store", expr);
    }
}
#define REFUSED(uri, want, substr) refused_at(__FILE__, __LINE__, uri, want, substr)

void ks_case_bad_uri(ks_fixture *fx)
{
    static const struct {
        const char *uri;
        const char *mention; /* the bad part or the cause the message must name, if any */
    } bad[] = {
        {"", "URI"},
        {"soft:", "directory"},
        {"soft:?pin-value=1234", "directory"},
        {"nonsense:x", "nonsense"},
        {"pkcs11:token=%zz", "encoding"},
        /* Two faults (no module, two PINs): either may be the one named. */
        {"pkcs11:token=x?pin-value=1&pin-source=/f", NULL},
        {"pkcs11:token=x?module-path=" TS_SOFTHSM_MODULE "&pin-value=1&pin-source=/f", "pin"},
        {"soft:/tmp/x?pin-value=1&pin-source=/f", "pin"},
    };
    ks_snapshot before;

    KS_OK(ts_keystore_generate(fx->ks, "k", TS_CURVE_P256));
    KS_SNAPSHOT(fx->ks, &before);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        REFUSED(bad[i].uri, TS_ERR_URI, bad[i].mention);
    }
    KS_UNCHANGED(fx->ks, &before);
}

void ks_case_wrong_pin(ks_fixture *fx)
{
    char uri[KS_URI_MAX];
    const char *name = fx->backend == KS_SOFT ? "store" : KS_TOKEN;
    ts_keystore *ks = NULL;
    EVP_PKEY *pub = NULL;
    ks_snapshot before;

    KS_OK(ts_keystore_generate(fx->ks, "k", TS_CURVE_P256));
    KS_OK(ts_keystore_public_key(fx->ks, "k", &pub));
    KS_SNAPSHOT(fx->ks, &before);
    ks_fixture_close(fx);

    KS_CHECK(ks_fixture_uri(fx, name, "9999", uri, sizeof uri) == 0);
    KS_FAILS(ts_keystore_open(uri, &ks), TS_ERR_PIN, "PIN");
    KS_CHECK(ks == NULL);
    /* No PIN in the URI and none in TESSERA_PIN: a missing PIN is a PIN error too. */
    KS_CHECK(ks_fixture_uri(fx, name, NULL, uri, sizeof uri) == 0);
    KS_FAILS(ts_keystore_open(uri, &ks), TS_ERR_PIN, "PIN");
    KS_CHECK(ks == NULL);

    /* The right PIN still opens the store, with everything in it. */
    KS_OK(ks_fixture_reopen(fx));
    KS_UNCHANGED(fx->ks, &before);
    KS_SIGNS(fx->ks, "k", pub, 32);
    EVP_PKEY_free(pub);
}

void ks_case_create_existing(ks_fixture *fx)
{
    ts_keystore *ks = NULL;
    ks_snapshot before;
    uint8_t uid[TS_KEYSTORE_UID_LEN], again[TS_KEYSTORE_UID_LEN];

    KS_OK(ts_keystore_generate(fx->ks, "k", TS_CURVE_P256));
    KS_OK(ts_keystore_uid(fx->ks, uid));
    KS_SNAPSHOT(fx->ks, &before);
    ks_fixture_close(fx);
    if (fx->backend == KS_PKCS11) {
        /* keystore.h: "fails with TS_ERR_EXISTS when a token with that label is already
         * initialised". */
        KS_FAILS(ts_keystore_create(fx->uri, KS_SO_PIN, &ks), TS_ERR_EXISTS, KS_TOKEN);
    } else {
        /* keystore.h: DIR "must not exist or be empty"; the code for a used DIR is not said. */
        ts_err rv = ts_keystore_create(fx->uri, KS_SO_PIN, &ks);
        KS_CHECK_MSG(rv != TS_OK, "creating a store over an existing one succeeded");
    }
    KS_CHECK(ks == NULL);
    KS_OK(ks_fixture_reopen(fx));
    KS_UNCHANGED(fx->ks, &before);
    KS_OK(ts_keystore_uid(fx->ks, again));
    KS_CHECK_MSG(memcmp(uid, again, sizeof uid) == 0, "a refused create changed the UID");
}

void ks_case_missing_module(ks_fixture *fx)
{
    char uri[KS_URI_MAX];

    REFUSED("pkcs11:token=ts-test?module-path=/nonexistent/libmissing.so&pin-value=1234",
            TS_ERR_MODULE, "libmissing.so");
    /* A file that is not a PKCS#11 module: the SoftHSM2 configuration. */
    snprintf(uri, sizeof uri, "pkcs11:token=ts-test?module-path=%s/softhsm2.conf&pin-value=1234",
             fx->tmp);
    REFUSED(uri, TS_ERR_MODULE, "softhsm2.conf");
}

void ks_case_unknown_token(ks_fixture *fx)
{
    char uri[KS_URI_MAX];
    ts_keystore *ks = NULL;

    KS_CHECK(ks_fixture_uri(fx, "no-such-token", KS_PIN, uri, sizeof uri) == 0);
    KS_FAILS(ts_keystore_open(uri, &ks), TS_ERR_NO_TOKEN, "no-such-token");
    KS_CHECK(ks == NULL);
}

static void uid_into_null(void *arg, int index, void *result)
{
    (void)index;
    *(ts_err *)result = ts_keystore_uid(arg, NULL);
}

void ks_case_null_args(ks_fixture *fx)
{
    ts_keystore *ks = fx->ks, *none = NULL;
    uint8_t buf[TS_SIGNATURE_MAX], digest[32] = {1};
    size_t len = sizeof buf;
    uint8_t *data = NULL;
    uint64_t value = 0;
    EVP_PKEY *pkey = NULL, *peer = ks_ec_key("P-256");
    ts_keystore_entry *entries = NULL;
    char label[TS_LABEL_MAX + 1];
    ks_snapshot before;

    KS_CHECK(peer != NULL);
    KS_OK(ts_keystore_generate(ks, "k", TS_CURVE_P256));
    KS_OK(ts_keystore_object_put(ks, "o", buf, 4, 0));
    KS_OK(ts_keystore_counter_increment(ks, "c", NULL));
    KS_SNAPSHOT(ks, &before);

    KS_FAILS(ts_keystore_open(NULL, &none), TS_ERR_INVALID, "URI");
    KS_FAILS(ts_keystore_open(fx->uri, NULL), TS_ERR_INVALID, NULL);
    KS_FAILS(ts_keystore_create(NULL, KS_SO_PIN, &none), TS_ERR_INVALID, "URI");
    KS_FAILS(ts_keystore_uid(NULL, buf), TS_ERR_INVALID, "key store");
    KS_FAILS(ts_keystore_random(NULL, buf, 8), TS_ERR_INVALID, "key store");
    KS_FAILS(ts_keystore_random(ks, NULL, 8), TS_ERR_INVALID, "random");
    KS_FAILS(ts_keystore_generate(NULL, "k2", TS_CURVE_P256), TS_ERR_INVALID, "key store");
    KS_FAILS(ts_keystore_generate(ks, NULL, TS_CURVE_P256), TS_ERR_INVALID, "label");
    KS_FAILS(ts_keystore_public_key(ks, "k", NULL), TS_ERR_INVALID, "public key");
    KS_FAILS(ts_keystore_public_key(ks, NULL, &pkey), TS_ERR_INVALID, "label");
    KS_FAILS(ts_keystore_sign_digest(NULL, "k", digest, 32, buf, &len), TS_ERR_INVALID,
             "key store");
    KS_FAILS(ts_keystore_sign_digest(ks, "k", NULL, 32, buf, &len), TS_ERR_INVALID, "sign");
    KS_FAILS(ts_keystore_sign_digest(ks, "k", digest, 32, NULL, &len), TS_ERR_INVALID, "sign");
    KS_FAILS(ts_keystore_sign_digest(ks, "k", digest, 32, buf, NULL), TS_ERR_INVALID, "sign");
    KS_FAILS(ts_keystore_derive(ks, "k", NULL, buf, &len), TS_ERR_INVALID, "derive");
    KS_FAILS(ts_keystore_derive(ks, "k", peer, NULL, &len), TS_ERR_INVALID, "derive");
    KS_FAILS(ts_keystore_derive(ks, "k", peer, buf, NULL), TS_ERR_INVALID, "derive");
    KS_FAILS(ts_keystore_object_put(ks, "o2", NULL, 4, 0), TS_ERR_INVALID, "o2");
    KS_FAILS(ts_keystore_object_replace(ks, "o", NULL, 4, 0), TS_ERR_INVALID, "'o'");
    KS_FAILS(ts_keystore_object_get(ks, "o", NULL, &len), TS_ERR_INVALID, "'o'");
    KS_FAILS(ts_keystore_object_get(ks, "o", &data, NULL), TS_ERR_INVALID, "'o'");
    KS_FAILS(ts_keystore_delete(ks, NULL), TS_ERR_INVALID, "label");
    KS_FAILS(ts_keystore_delete(NULL, "o"), TS_ERR_INVALID, "key store");
    KS_FAILS(ts_keystore_list(ks, NULL, &len), TS_ERR_INVALID, "list");
    KS_FAILS(ts_keystore_list(ks, &entries, NULL), TS_ERR_INVALID, "list");
    KS_FAILS(ts_keystore_list(NULL, &entries, &len), TS_ERR_INVALID, "key store");
    KS_FAILS(ts_keystore_counter_get(ks, "c", NULL), TS_ERR_INVALID, "'c'");
    KS_FAILS(ts_keystore_counter_get(ks, NULL, &value), TS_ERR_INVALID, "label");
    KS_FAILS(ts_keystore_counter_increment(NULL, "c", &value), TS_ERR_INVALID, "key store");
    KS_FAILS(ts_keystore_counter_raise(ks, NULL, 9), TS_ERR_INVALID, "label");
    KS_FAILS(ts_keystore_import(ks, NULL, 10, peer, label), TS_ERR_INVALID, "import");
    KS_FAILS(ts_keystore_import(ks, buf, 10, peer, NULL), TS_ERR_INVALID, "import");
    KS_FAILS(ts_label_check(NULL), TS_ERR_INVALID, "label");
    KS_CHECK(pkey == NULL && data == NULL && entries == NULL);

    KS_UNCHANGED(ks, &before);
    EVP_PKEY_free(peer);

    /* A NULL UID buffer must be refused, not written through: try it where a crash is safe. */
    ts_err rv = TS_OK;
    KS_CHECK_MSG(ks_in_children(1, uid_into_null, ks, &rv, sizeof rv) == 0,
                 "ts_keystore_uid(ks, NULL) crashed");
    KS_CHECK_MSG(rv == TS_ERR_INVALID, "ts_keystore_uid(ks, NULL) gave %s", ts_err_name(rv));
}

/* --- a full store ----------------------------------------------------------------------------- */

/*
 * The key generated into the full store. Its files must outgrow every file already there, k1's
 * P-256 private key the largest. With a two-letter label, SoftHSM2's P-384 private key object is
 * one AES block larger than the P-256 one, and one time in 256 (a P-384 scalar with a leading
 * zero byte) it is the same size and fits; the long label adds two more blocks.
 */
#define FULL_KEY "k2-a-label-long-enough-to-outgrow-every-file"

typedef struct full_result {
    ts_err open, generate, put;
    char generate_msg[256], put_msg[256];
} full_result;

typedef struct full_arg {
    const ks_fixture *fx;
    rlim_t limit;
} full_arg;

static void fill_in_child(void *argp, int index, void *result)
{
    const full_arg *arg = argp;
    full_result *r = result;
    static uint8_t data[4096];
    struct rlimit lim = {arg->limit, arg->limit};
    ts_keystore *ks = NULL;
    (void)index;

    /* A write past the limit then fails with EFBIG instead of killing the process. */
    signal(SIGXFSZ, SIG_IGN);
    if (setrlimit(RLIMIT_FSIZE, &lim) != 0) {
        r->open = TS_ERR_STATE;
        return;
    }
    r->open = ts_keystore_open(arg->fx->uri, &ks);
    if (r->open != TS_OK) {
        return;
    }
    r->generate = ts_keystore_generate(ks, FULL_KEY, TS_CURVE_P384);
    snprintf(r->generate_msg, sizeof r->generate_msg, "%s", ts_error_message());
    memset(data, 0x5a, sizeof data);
    r->put = ts_keystore_object_put(ks, "o2", data, sizeof data, 0);
    snprintf(r->put_msg, sizeof r->put_msg, "%s", ts_error_message());
    ts_keystore_free(ks);
}

/* A "store full" message names the object that did not fit or says why it did not. */
static int names_label_or_cause(const char *msg, const char *label)
{
    static const char *const causes[] = {"full", "room", "space", "too large"};
    if (strstr(msg, label) != NULL) {
        return 1;
    }
    for (size_t i = 0; i < sizeof causes / sizeof causes[0]; i++) {
        if (strstr(msg, causes[i]) != NULL) {
            return 1;
        }
    }
    return 0;
}

void ks_case_full_store(ks_fixture *fx)
{
    static const uint8_t small[10] = "small";
    full_result r;
    EVP_PKEY *pub = NULL;
    ks_snapshot before;

    KS_OK(ts_keystore_generate(fx->ks, "k1", TS_CURVE_P256));
    KS_OK(ts_keystore_public_key(fx->ks, "k1", &pub));
    KS_OK(ts_keystore_object_put(fx->ks, "o1", small, sizeof small, 0));
    KS_OK(ts_keystore_counter_raise(fx->ks, "c", 3));
    KS_SNAPSHOT(fx->ks, &before);
    ks_fixture_close(fx);

    /* Files may be rewritten at their present size but nothing bigger can be written. */
    long long largest = ks_largest_file(fx->files);
    KS_CHECK(largest > 0);
    full_arg arg = {fx, (rlim_t)largest + 1};
    KS_CHECK_MSG(ks_in_children(1, fill_in_child, &arg, &r, sizeof r) == 0,
                 "the child filling the store did not finish");
    KS_CHECK_MSG(r.open == TS_OK, "the child could not open the store: %s", ts_err_name(r.open));
    KS_CHECK_MSG(r.generate == TS_ERR_FULL, "generate in a full store gave %s (%s)",
                 ts_err_name(r.generate), r.generate_msg);
    KS_CHECK_MSG(r.put == TS_ERR_FULL, "put in a full store gave %s (%s)", ts_err_name(r.put),
                 r.put_msg);
    KS_CHECK_MSG(names_label_or_cause(r.generate_msg, FULL_KEY), "generate: message \"%s\"",
                 r.generate_msg);
    KS_CHECK_MSG(names_label_or_cause(r.put_msg, "o2"), "put: message \"%s\"", r.put_msg);

    KS_OK(ks_fixture_reopen(fx));
    KS_UNCHANGED(fx->ks, &before);
    KS_SIGNS(fx->ks, "k1", pub, 32);
    EVP_PKEY_free(pub);
    /* With room again, both work. */
    KS_OK(ts_keystore_generate(fx->ks, FULL_KEY, TS_CURVE_P384));
    KS_OK(ts_keystore_object_put(fx->ks, "o2", small, sizeof small, 0));
}
