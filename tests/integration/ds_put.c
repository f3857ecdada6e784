/*
 * ds_put: sets text entries of the agent's datastore, for the integration tests.
 *
 *   ds_put URI STATE NAME=FILE...     in one transaction, each NAME gets the contents of FILE
 *                                     (as TEXT; NAME:uint=FILE stores a UINT)
 *                                     as TEXT (server.url, trust.roots, ...)
 *
 * Exit 0 on success, 1 on failure (with the reason on stderr), 2 for bad usage.
 */
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

#include "common/error_internal.h"
#include "common/file_internal.h"
#include "tessera/datastore.h"

enum { VALUE_MAX = 1024 * 1024, NAME_MAX_LEN = 128 };

static int fail(const char *what, ts_err rv)
{
    fprintf(stderr, "error: %s (%d): %s: %s\n", ts_err_name(rv), (int)rv, what, ts_error_message());
    return 1;
}

int main(int argc, char **argv)
{
    ts_keystore *ks = NULL;
    ts_datastore *ds = NULL;
    ts_datastore_txn *txn = NULL;
    ts_err rv;
    int status = 0;

    if (argc < 4) {
        fprintf(stderr, "usage: ds_put URI STATE NAME=FILE...\n");
        return 2;
    }
    rv = ts_keystore_open(argv[1], &ks);
    if (rv != TS_OK) {
        return fail("key store", rv);
    }
    rv = ts_datastore_open_or_defaults(argv[2], ks, &ds);
    if (rv == TS_OK) {
        rv = ts_datastore_begin(ds, &txn);
    }
    for (int i = 3; rv == TS_OK && i < argc; i++) {
        const char *eq = strchr(argv[i], '=');
        char name[NAME_MAX_LEN + 1];
        uint8_t *data = NULL;
        size_t len = 0;

        if (eq == NULL || eq == argv[i] || (size_t)(eq - argv[i]) > NAME_MAX_LEN) {
            fprintf(stderr, "usage: '%s' is not NAME=FILE\n", argv[i]);
            ts_datastore_abort(txn);
            ts_datastore_free(ds);
            ts_keystore_free(ks);
            return 2;
        }
        memcpy(name, argv[i], (size_t)(eq - argv[i]));
        name[eq - argv[i]] = '\0';
        ts_datastore_type type = TS_DATASTORE_TEXT;
        char *suffix = strstr(name, ":uint");
        if (suffix != NULL && suffix[5] == '\0') {
            *suffix = '\0';
            type = TS_DATASTORE_UINT;
        }
        rv = ts_file_read(eq + 1, VALUE_MAX, &data, &len);
        /* A value read from a file written by echo has its line end dropped. */
        while (rv == TS_OK && len > 0 && data[len - 1] == '\n' &&
               strcmp(name, "trust.roots") != 0) {
            len--;
        }
        if (rv == TS_OK) {
            rv = ts_datastore_put(txn, name, type, data, len);
        }
        OPENSSL_free(data);
    }
    if (rv == TS_OK) {
        rv = ts_datastore_commit(txn);
        txn = NULL;
    }
    if (rv != TS_OK) {
        ts_datastore_abort(txn);
        status = fail("datastore", rv);
    }
    ts_datastore_free(ds);
    ts_keystore_free(ks);
    return status;
}
