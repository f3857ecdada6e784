/*
 * The whole of a key backup and of a restore (docs/ceremony.md): the key store wraps, Shamir
 * splits the KEK, the share files carry the parts; and back.
 */
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "common/error_internal.h"
#include "pki/share_file_internal.h"

void ts_ceremony_texts_free(char **texts, size_t count)
{
    if (texts == NULL) {
        return;
    }
    for (size_t i = 0; i < count; i++) {
        if (texts[i] != NULL) {
            OPENSSL_clear_free(texts[i], strlen(texts[i]));
        }
    }
    OPENSSL_free(texts);
}

/* The key under label must be the certificate's: the shares will name its fingerprint. */
static ts_err check_key_is_roots(ts_keystore *ks, const char *label, const X509 *root)
{
    EVP_PKEY *pub = NULL;
    EVP_PKEY *cert_pub = X509_get0_pubkey(root);
    ts_err rv = ts_keystore_public_key(ks, label, &pub);

    if (rv == TS_OK && (cert_pub == NULL || EVP_PKEY_eq(pub, cert_pub) != 1)) {
        rv = ts_error_set(TS_ERR_INVALID, "key '%s' is not the key of the root certificate", label);
    }
    EVP_PKEY_free(pub);
    return rv;
}

/* Fills the fields every share of one backup has in common. */
static ts_err common_fields(const X509 *root, unsigned threshold, unsigned count,
                            const char *instance, const char *date, ts_share_file *sf)
{
    uint8_t id[4];

    memset(sf, 0, sizeof *sf);
    sf->threshold = threshold;
    sf->count = count;
    if ((instance != NULL && !ts_share_name_ok(instance)) ||
        (date != NULL && !ts_share_date_ok(date))) {
        return ts_error_set(TS_ERR_INVALID,
                            "the instance name must be 1 to %d of A-Z a-z 0-9 . "
                            "_ - and the date YYYY-MM-DD",
                            TS_SHARE_NAME_MAX);
    }
    if (instance != NULL) {
        memcpy(sf->instance, instance, strlen(instance) + 1);
    }
    if (date != NULL) {
        memcpy(sf->date, date, strlen(date) + 1);
    }
    ts_err rv = ts_cert_fingerprint(root, sf->fingerprint);
    if (rv != TS_OK) {
        return rv;
    }
    /* The set id only tells backups apart; it is random so that it says nothing of the KEK. */
    if (RAND_bytes(id, sizeof id) != 1) {
        return ts_error_set_openssl(TS_ERR_CRYPTO, "no random bytes for the backup's id");
    }
    snprintf(sf->set, sizeof sf->set, "%02X%02X%02X%02X", id[0], id[1], id[2], id[3]);
    return TS_OK;
}

ts_err ts_ceremony_backup(ts_keystore *ks, const char *label, const X509 *root, unsigned threshold,
                          unsigned count, const char *instance, const char *date, uint8_t **wrapped,
                          size_t *wrapped_len, char ***texts)
{
    uint8_t kek[TS_SHARE_SECRET_LEN];
    ts_share *shares = NULL;
    ts_share_file sf;
    char **out = NULL;
    ts_err rv;

    if (ks == NULL || label == NULL || root == NULL || wrapped == NULL || wrapped_len == NULL ||
        texts == NULL) {
        return ts_error_set(TS_ERR_INVALID, "backup: missing key store, label, certificate or "
                                            "output");
    }
    *wrapped = NULL;
    *wrapped_len = 0;
    *texts = NULL;
    if (threshold < TS_SHARE_MIN || count > TS_SHARE_MAX || threshold > count) {
        return ts_error_set(TS_ERR_INVALID,
                            "backup: %u of %u shares is not possible: use "
                            "2 <= M <= N <= 255",
                            threshold, count);
    }
    rv = common_fields(root, threshold, count, instance, date, &sf);
    if (rv == TS_OK) {
        rv = check_key_is_roots(ks, label, root);
    }
    if (rv != TS_OK) {
        return ts_error_prefix(rv, "backup of '%s'", label);
    }
    shares = OPENSSL_zalloc(count * sizeof *shares);
    out = OPENSSL_zalloc(count * sizeof *out);
    if (shares == NULL || out == NULL) {
        rv = ts_error_set(TS_ERR_NOMEM, "out of memory backing up '%s'", label);
        goto done;
    }
    rv = ts_keystore_backup_key(ks, label, kek, wrapped, wrapped_len);
    if (rv == TS_OK) {
        rv = ts_shamir_split(kek, threshold, count, shares);
    }
    for (unsigned i = 0; rv == TS_OK && i < count; i++) {
        sf.index = shares[i].x;
        memcpy(sf.share, shares[i].y, TS_SHARE_SECRET_LEN);
        rv = ts_share_file_format(&sf, &out[i]);
    }
done:
    OPENSSL_cleanse(kek, sizeof kek);
    ts_share_file_wipe(&sf);
    OPENSSL_clear_free(shares, count * sizeof *shares);
    if (rv != TS_OK) {
        ts_ceremony_texts_free(out, count);
        OPENSSL_free(*wrapped);
        *wrapped = NULL;
        *wrapped_len = 0;
        return rv;
    }
    *texts = out;
    return TS_OK;
}

ts_err ts_ceremony_restore(ts_keystore *ks, const char *label, const X509 *root,
                           const uint8_t *wrapped, size_t wrapped_len, const char *const *paths,
                           size_t n, unsigned flags)
{
    char fingerprint[TS_FINGERPRINT_HEX];
    uint8_t kek[TS_SHARE_SECRET_LEN];
    ts_share_file *files = NULL;
    char **names = NULL;
    ts_err rv = TS_OK;

    if (ks == NULL || label == NULL || root == NULL || wrapped == NULL || paths == NULL) {
        return ts_error_set(TS_ERR_INVALID, "restore: missing key store, label, certificate, "
                                            "wrapped key or shares");
    }
    if (n == 0 || n > TS_SHARE_MAX) {
        return ts_error_set(TS_ERR_INVALID, "restore: %zu share files given", n);
    }
    rv = ts_cert_fingerprint(root, fingerprint);
    if (rv != TS_OK) {
        return rv;
    }
    files = OPENSSL_zalloc(n * sizeof *files);
    names = OPENSSL_zalloc(n * sizeof *names);
    if (files == NULL || names == NULL) {
        rv = ts_error_set(TS_ERR_NOMEM, "out of memory reading shares");
        goto done;
    }
    for (size_t i = 0; rv == TS_OK && i < n; i++) {
        size_t size = strlen(paths[i] != NULL ? paths[i] : "") + 32;
        names[i] = OPENSSL_malloc(size);
        if (names[i] == NULL) {
            rv = ts_error_set(TS_ERR_NOMEM, "out of memory reading shares");
            break;
        }
        snprintf(names[i], size, "share %zu (%s)", i + 1, paths[i] != NULL ? paths[i] : "");
        rv = ts_share_file_read(paths[i], names[i], &files[i]);
    }
    if (rv == TS_OK) {
        rv = ts_share_files_combine(files, (const char *const *)names, n, fingerprint, kek);
    }
    if (rv == TS_OK) {
        /* Only the unwrap can tell the KEK is right: RFC 5649's integrity check. */
        rv = ts_keystore_restore_key(ks, label, kek, wrapped, wrapped_len, X509_get0_pubkey(root),
                                     flags);
    }
done:
    OPENSSL_cleanse(kek, sizeof kek);
    if (files != NULL) {
        OPENSSL_clear_free(files, n * sizeof *files);
    }
    for (size_t i = 0; names != NULL && i < n; i++) {
        OPENSSL_free(names[i]);
    }
    OPENSSL_free(names);
    return rv;
}
