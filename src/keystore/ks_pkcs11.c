/*
 * The PKCS#11 backend: a key store on a token of any PKCS#11 module (an HSM, a secure element,
 * SoftHSM2), named by an RFC 7512 URI. This file holds the backend table and the store's life;
 * the work is in p11_*.c (p11_internal.h gives the map, docs/pkcs11.md the objects).
 */
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "keystore/p11_internal.h"

static ts_err store_new(const ts_ks_uri *uri, p11_store **out)
{
    p11_store *st = OPENSSL_zalloc(sizeof *st);

    *out = NULL;
    if (st == NULL) {
        return ts_error_set(TS_ERR_NOMEM, "out of memory opening a PKCS#11 store");
    }
    st->session = CK_INVALID_HANDLE;
    st->pid = getpid();
    ts_err rv = p11_module_get(uri->module_path, &st->module, &st->f);
    if (rv != TS_OK) {
        OPENSSL_free(st);
        return rv;
    }
    *out = st;
    return TS_OK;
}

static void pkcs11_close(void *state)
{
    p11_store_close(state);
}

static ts_err pkcs11_open(const ts_ks_uri *uri, void **state)
{
    p11_store *st = NULL;
    ts_err rv = store_new(uri, &st);

    *state = NULL;
    if (rv == TS_OK) {
        rv = p11_store_open(st, uri, 0);
    }
    if (rv == TS_OK) {
        /* A token initialised with other tools gets its UID on first open. */
        rv = p11_uid_load(st, 1);
    }
    if (rv != TS_OK) {
        p11_store_close(st);
        return rv;
    }
    *state = st;
    return TS_OK;
}

static ts_err pkcs11_create(const ts_ks_uri *uri, const char *so_pin, void **state)
{
    p11_store *st = NULL;
    ts_err rv = store_new(uri, &st);

    *state = NULL;
    if (rv == TS_OK) {
        rv = p11_token_init(st->f, uri, so_pin);
    }
    if (rv == TS_OK) {
        /* The token may have moved to another slot id: find it by its label alone. */
        rv = p11_store_open(st, uri, 1);
    }
    if (rv == TS_OK) {
        rv = p11_uid_load(st, 1);
    }
    if (rv != TS_OK) {
        p11_store_close(st);
        return rv;
    }
    *state = st;
    return TS_OK;
}

static ts_err pkcs11_uid(void *state, uint8_t uid[TS_KEYSTORE_UID_LEN])
{
    p11_store *st = state;
    memcpy(uid, st->uid, TS_KEYSTORE_UID_LEN);
    return TS_OK;
}

const ts_ks_backend ts_ks_pkcs11_backend = {
    .scheme = "pkcs11",
    .create = pkcs11_create,
    .open = pkcs11_open,
    .close = pkcs11_close,
    .uid = pkcs11_uid,
    .random = p11_random,
    .generate = p11_generate,
    .public_key = p11_public_key,
    .key_curve = p11_key_curve,
    .sign_digest = p11_sign_digest,
    .derive = p11_derive,
    .object_put = p11_object_put,
    .object_get = p11_object_get,
    .remove = p11_remove,
    .list = p11_list,
    .counter_get = p11_counter_get,
    .counter_update = p11_counter_update,
    .unwrap_import = p11_unwrap_import,
    .backup_key = p11_backup_key,
    .restore_key = p11_restore_key,
};
