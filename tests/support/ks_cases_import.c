/*
 * Conformance cases: a key imported through ts_keystore_import(), whose private scalar the test
 * knows, is usable and (soft:) never lies in the store's files in the clear.
 */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/crypto.h>
#include <openssl/x509.h>

#include "ks_cases.h"
#include "ks_check.h"

enum { SCALAR_LEN = 32 };

/* The public half of pkey alone, as the trust service's key is known to a device. */
static EVP_PKEY *public_only(EVP_PKEY *pkey)
{
    unsigned char *der = NULL;
    int len = i2d_PUBKEY(pkey, &der);
    const unsigned char *p = der;
    EVP_PKEY *pub = len > 0 ? d2i_PUBKEY(NULL, &p, len) : NULL;
    OPENSSL_free(der);
    return pub;
}

/*
 * Seals a fresh P-256 key for the store (to its key "recipient", counter 1) and imports it as
 * "imported"; checks it arrived. Returns the key, whose scalar is written to scalar.
 */
static EVP_PKEY *import_known_key(ks_fixture *fx, uint8_t scalar[SCALAR_LEN])
{
    uint8_t uid[TS_KEYSTORE_UID_LEN];
    uint8_t *blob = NULL;
    size_t blob_len = 0;
    char label[TS_LABEL_MAX + 1] = "";
    uint64_t counter = 0;
    EVP_PKEY *recipient = NULL, *imported = NULL;
    EVP_PKEY *sender = ks_ec_key("P-256"), *key = ks_ec_key("P-256");
    EVP_PKEY *trusted = sender != NULL ? public_only(sender) : NULL;

    KS_CHECK(sender != NULL && key != NULL && trusted != NULL);
    KS_CHECK(ks_private_scalar(key, scalar, SCALAR_LEN) == 0);
    KS_OK(ts_keystore_generate(fx->ks, "recipient", TS_CURVE_P256));
    KS_OK(ts_keystore_public_key(fx->ks, "recipient", &recipient));
    KS_OK(ts_keystore_uid(fx->ks, uid));
    KS_OK(ts_keystore_import_seal(sender, recipient, uid, "recipient", 1, "imported", key, &blob,
                                  &blob_len));
    KS_OK(ts_keystore_import(fx->ks, blob, blob_len, trusted, label));
    KS_CHECK_MSG(strcmp(label, "imported") == 0, "imported as '%s'", label);
    KS_OK(ts_keystore_counter_get(fx->ks, TS_IMPORT_COUNTER, &counter));
    KS_CHECK_U64(counter, 1);

    KS_OK(ts_keystore_public_key(fx->ks, "imported", &imported));
    int same = EVP_PKEY_eq(imported, key) == 1;
    EVP_PKEY_free(imported);
    KS_CHECK_MSG(same, "the imported key's public half is not the sent key's");
    KS_SIGNS(fx->ks, "imported", key, 32);

    OPENSSL_free(blob);
    EVP_PKEY_free(recipient);
    EVP_PKEY_free(sender);
    EVP_PKEY_free(trusted);
    return key;
}

static void to_hex(const uint8_t *in, size_t len, const char *digits, char *out)
{
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 0x0f];
    }
    out[2 * len] = '\0';
}

static int write_file(const char *dir, const char *name, const void *data, size_t len)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (f == NULL) {
        return -1;
    }
    size_t n = fwrite(data, 1, len, f);
    return fclose(f) == 0 && n == len ? 0 : -1;
}

/* No file of the store holds needle. */
static void absent_at(const char *file, int line, const ks_fixture *fx, const void *needle,
                      size_t len, const char *what)
{
    int n = ks_files_containing(fx->files, needle, len);
    if (n != 0) {
        ks_check_fail(file, line, "%s: %d file(s) under %s contain %s", fx->files, n, fx->files,
                      what);
    }
}
#define ABSENT(fx, needle, len, what) absent_at(__FILE__, __LINE__, fx, needle, len, what)

void ks_case_soft_import_no_plaintext(ks_fixture *fx)
{
    uint8_t scalar[SCALAR_LEN];
    char hex[2 * SCALAR_LEN + 1];
    EVP_PKEY *key = import_known_key(fx, scalar);

    /* Closed, everything the store keeps is on disk. */
    ks_fixture_close(fx);
    /* First, that the scan finds the scalar where it is known to be. */
    char control[sizeof fx->tmp + 16];
    snprintf(control, sizeof control, "%s/control", fx->tmp);
    KS_CHECK(mkdir(control, 0700) == 0);
    KS_CHECK(write_file(control, "scalar", scalar, sizeof scalar) == 0);
    KS_CHECK(ks_files_containing(control, scalar, sizeof scalar) == 1);
    ABSENT(fx, scalar, sizeof scalar, "the private scalar");
    to_hex(scalar, sizeof scalar, "0123456789abcdef", hex);
    ABSENT(fx, hex, strlen(hex), "the private scalar in hex");
    to_hex(scalar, sizeof scalar, "0123456789ABCDEF", hex);
    ABSENT(fx, hex, strlen(hex), "the private scalar in hex");
    ABSENT(fx, "BEGIN PRIVATE KEY", 17, "a PEM private key");
    ABSENT(fx, "BEGIN EC PRIVATE KEY", 20, "a PEM EC private key");
    int bad = ks_files_not_mode(fx->files, 0600);
    KS_CHECK_MSG(bad == 0, "%d file(s) under %s are not mode 0600", bad, fx->files);

    /* And the key still works from the files alone. */
    KS_OK(ks_fixture_reopen(fx));
    KS_SIGNS(fx->ks, "imported", key, 48);
    OPENSSL_cleanse(scalar, sizeof scalar);
    OPENSSL_cleanse(hex, sizeof hex);
    EVP_PKEY_free(key);
}

void ks_case_soft_secret_encrypted(ks_fixture *fx)
{
    static const char marker[] = "wifi-psk:tessera-secret-marker-8d41";
    uint8_t *got = NULL;
    size_t len = 0;

    KS_OK(ts_keystore_object_put(fx->ks, "psk", (const uint8_t *)marker, sizeof marker - 1,
                                 TS_DATA_SECRET));
    ks_fixture_close(fx);
    /* keystore.h: secret objects are "encrypted at rest in soft:". */
    ABSENT(fx, marker, sizeof marker - 1, "the secret object in the clear");
    int bad = ks_files_not_mode(fx->files, 0600);
    KS_CHECK_MSG(bad == 0, "%d file(s) under %s are not mode 0600", bad, fx->files);
    KS_OK(ks_fixture_reopen(fx));
    KS_OK(ts_keystore_object_get(fx->ks, "psk", &got, &len));
    int same = len == sizeof marker - 1 && memcmp(got, marker, len) == 0;
    OPENSSL_clear_free(got, len);
    KS_CHECK_MSG(same, "the secret object does not read back");
}

void ks_case_pkcs11_import_usable(ks_fixture *fx)
{
    uint8_t scalar[SCALAR_LEN];
    ks_snapshot snap;
    EVP_PKEY *key = import_known_key(fx, scalar);

    OPENSSL_cleanse(scalar, sizeof scalar);
    KS_SNAPSHOT(fx->ks, &snap);
    const ts_keystore_entry *e = ks_snapshot_find(&snap, "imported");
    int listed = e != NULL && e->kind == TS_KIND_KEY && e->curve == TS_CURVE_P256;
    ks_snapshot_free(&snap);
    KS_CHECK_MSG(listed, "the imported key is not listed as a P-256 key");
    /* The token keeps it: usable after reopening. */
    KS_OK(ks_fixture_reopen(fx));
    KS_SIGNS(fx->ks, "imported", key, 32);
    KS_SIGNS(fx->ks, "imported", key, 48);
    EVP_PKEY_free(key);
}
