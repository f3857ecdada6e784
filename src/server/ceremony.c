/*
 * The root key after the ceremony: taken offline (deleted from the online key store once its
 * backup exists) and restored from M of the N shares when something needs it (a new tenant's
 * issuing CA, rotation). Where the root key is lives in the store's "root.keystore" setting:
 * "instance" (the instance's key store), "offline", or the URI of another key store it was
 * restored into.
 */
#include <string.h>

#include <openssl/crypto.h>

#include "common/error_internal.h"
#include "common/file_internal.h"
#include "server/server_internal.h"
#include "tessera/ceremony.h"

enum { WRAPPED_MAX = 64 * 1024 };

static ts_err backup_read(ts_ca *ca, uint8_t **data, size_t *len)
{
    char path[TS_CA_PATH_MAX];
    ts_err rv = srv_path(path, sizeof path, ca->dir, TS_CEREMONY_WRAPPED_FILE);
    if (rv == TS_OK) {
        rv = ts_file_read(path, WRAPPED_MAX, data, len);
    }
    if (rv == TS_ERR_NOT_FOUND) {
        return ts_error_set(rv, "no root key backup: %s is missing", path);
    }
    return rv != TS_OK ? ts_error_prefix(rv, "cannot read the root key backup %s", path) : TS_OK;
}

ts_err ts_ca_root_restore(ts_ca *ca, const char *const *share_files, size_t count,
                          const char *keystore_uri)
{
    srv_issuer root;
    ts_keystore *ks = NULL;
    EVP_PKEY *present = NULL;
    char *where = NULL;
    uint8_t *wrapped = NULL;
    size_t wrapped_len = 0;
    int restored = 0, in_tx = 0;
    ts_err rv;

    if (count == 0) {
        return ts_error_set(TS_ERR_INVALID, "no share files given");
    }
    /* The URI is kept in the store so later root operations find the key: no PIN in it. */
    if (keystore_uri != NULL && strstr(keystore_uri, "pin-value=") != NULL) {
        return ts_error_set(TS_ERR_INVALID,
                            "--keystore: the URI is kept in the store, so it must not carry "
                            "pin-value=; use pin-source=FILE or TESSERA_PIN");
    }
    rv = srv_root_load(ca, 0, &root);
    if (rv != TS_OK) {
        return rv;
    }
    rv = srv_setting(ca, SRV_SET_ROOT_STORE, &where);
    if (rv == TS_OK && keystore_uri != NULL) {
        rv = ts_keystore_open(keystore_uri, &ks);
        if (rv != TS_OK) {
            ts_error_prefix(rv, "--keystore");
        }
    } else if (rv == TS_OK) {
        rv = ts_ca_keystore(ca, &ks);
        ks = rv == TS_OK ? ts_keystore_up_ref(ks) : NULL;
    }
    if (rv != TS_OK) {
        goto done;
    }
    if (where != NULL && strcmp(where, SRV_ROOT_OFFLINE) != 0 &&
        ts_keystore_public_key(ks, root.row.key_label, &present) == TS_OK) {
        rv =
            ts_error_set(TS_ERR_STATE, "the root key is already online in %s", ts_keystore_uri(ks));
        goto done;
    }
    rv = backup_read(ca, &wrapped, &wrapped_len);
    if (rv == TS_OK) {
        rv = ts_ceremony_restore(ks, root.row.key_label, root.cert, wrapped, wrapped_len,
                                 share_files, count, TS_KEY_BACKUP);
        restored = rv == TS_OK;
    }
    if (rv == TS_OK) {
        rv = ts_store_begin(ca->store);
        in_tx = rv == TS_OK;
    }
    if (rv == TS_OK) {
        rv = ts_store_setting_set(ca->store, SRV_SET_ROOT_STORE,
                                  keystore_uri != NULL ? keystore_uri : SRV_ROOT_ONLINE);
    }
    if (rv == TS_OK) {
        rv = srv_audit(ca, "ceremony.restore", root.row.key_label,
                       srv_json("{s:s, s:i, s:s, s:s}", "label", root.row.key_label, "shares",
                                (int)count, "keystore", ts_keystore_uri(ks), "root_sha256",
                                root.row.fingerprint));
    }
    if (rv == TS_OK) {
        rv = ts_store_commit(ca->store);
        in_tx = 0;
    }
done:
    if (in_tx) {
        ts_store_rollback(ca->store);
    }
    if (rv != TS_OK && restored) {
        /* Unaudited, so undone: the root key stays where it was. */
        srv_key_discard(ks, root.row.key_label);
    }
    EVP_PKEY_free(present);
    OPENSSL_free(wrapped);
    OPENSSL_free(where);
    ts_keystore_free(ks);
    srv_issuer_clear(&root);
    return rv;
}

ts_err ts_ca_root_offline(ts_ca *ca)
{
    srv_issuer root;
    uint8_t *wrapped = NULL;
    size_t wrapped_len = 0;
    ts_keystore *ks = NULL;
    int in_tx = 0;
    ts_err rv = srv_root_load(ca, 1, &root);

    if (rv == TS_ERR_STATE) {
        return ts_error_set(TS_ERR_STATE, "the root key is already offline");
    }
    if (rv != TS_OK) {
        return rv;
    }
    /* Without its backup the root key would be gone for good. */
    rv = backup_read(ca, &wrapped, &wrapped_len);
    if (rv != TS_OK) {
        ts_error_prefix(rv, "refusing to take the root key offline");
        goto done;
    }
    ks = ts_keystore_up_ref(root.ks);
    EVP_PKEY_free(root.key);
    root.key = NULL;
    rv = ts_store_begin(ca->store);
    in_tx = rv == TS_OK;
    if (rv == TS_OK) {
        rv = ts_store_setting_set(ca->store, SRV_SET_ROOT_STORE, SRV_ROOT_OFFLINE);
    }
    if (rv == TS_OK) {
        rv = srv_audit(ca, "ceremony.offline-root", root.row.key_label,
                       srv_json("{s:s, s:s, s:s}", "label", root.row.key_label, "keystore",
                                ts_keystore_uri(ks), "root_sha256", root.row.fingerprint));
    }
    /* Deleted last, inside the transaction: a failed delete leaves no "offline" record. */
    if (rv == TS_OK) {
        rv = ts_keystore_delete(ks, root.row.key_label);
        if (rv != TS_OK) {
            ts_error_prefix(rv, "cannot delete the root key");
        }
    }
    if (rv == TS_OK) {
        rv = ts_store_commit(ca->store);
        in_tx = 0;
        if (rv != TS_OK) {
            ts_error_prefix(rv, "the root key was deleted but the change was not recorded; "
                                "restore it with tessera ceremony restore");
        }
    }
    if (in_tx) {
        ts_store_rollback(ca->store);
    }
done:
    OPENSSL_free(wrapped);
    ts_keystore_free(ks);
    srv_issuer_clear(&root);
    return rv;
}
