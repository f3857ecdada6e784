/*
 * ds_tool: drives the agent's datastore for the integration tests.
 *
 *   ds_tool create URI [SO_PIN]        creates a key store
 *   ds_tool loop URI STATE [N]         commits generation after generation (N of them, or until
 *                                      killed), printing "ready" once open and "committed G"
 *                                      after each commit returns
 *   ds_tool check URI STATE LAST       opens the datastore strictly and checks that it is
 *                                      generation LAST or LAST+1 and holds exactly what the loop
 *                                      writes for that generation, and that no temporary file
 *                                      is left; prints "generation G"
 *   ds_tool trial URI STATE LAST       check, then loop, in one process
 *   ds_tool get URI STATE NAME         prints a text entry, or on stderr "error: NAME (CODE): what:
 * message"
 *
 * Generation G holds: server.url "https://gen-G.example", mqtt.port G, blob (4000 bytes made
 * from G) and, for odd G only, odd "yes"; so every commit writes, replaces and deletes. Exit 0 on
 * success, 1 on failure, 2 for bad usage.
 */
#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tessera/datastore.h"

enum { BLOB_LEN = 4000 };

static void blob_for(uint64_t gen, uint8_t blob[BLOB_LEN])
{
    for (size_t i = 0; i < BLOB_LEN; i++) {
        blob[i] = (uint8_t)((gen * 31U + i * 7U) & 0xffU);
    }
}

static int fail(const char *what, ts_err rv)
{
    fprintf(stderr, "error: %s (%d): %s: %s\n", ts_err_name(rv), (int)rv, what, ts_error_message());
    return 1;
}

static int commit_next(ts_datastore *ds)
{
    uint64_t gen = ts_datastore_generation(ds) + 1;
    uint8_t blob[BLOB_LEN];
    char url[64], port[24];
    ts_datastore_txn *txn = NULL;

    snprintf(url, sizeof url, "https://gen-%" PRIu64 ".example", gen);
    snprintf(port, sizeof port, "%" PRIu64, gen);
    blob_for(gen, blob);
    ts_err rv = ts_datastore_begin(ds, &txn);
    if (rv == TS_OK) {
        rv = ts_datastore_put(txn, TS_DS_SERVER_URL, TS_DATASTORE_TEXT, (const uint8_t *)url,
                              strlen(url));
    }
    if (rv == TS_OK) {
        rv = ts_datastore_put(txn, TS_DS_MQTT_PORT, TS_DATASTORE_UINT, (const uint8_t *)port,
                              strlen(port));
    }
    /* The blob arrives in two chunks. */
    if (rv == TS_OK) {
        rv = ts_datastore_put(txn, "blob", TS_DATASTORE_BYTES, blob, BLOB_LEN / 2);
    }
    if (rv == TS_OK) {
        rv = ts_datastore_append(txn, "blob", blob + BLOB_LEN / 2, BLOB_LEN - BLOB_LEN / 2);
    }
    if (rv == TS_OK && gen % 2 == 1) {
        rv = ts_datastore_put(txn, "odd", TS_DATASTORE_TEXT, (const uint8_t *)"yes", 3);
    } else if (rv == TS_OK) {
        rv = ts_datastore_delete(txn, "odd");
        rv = rv == TS_ERR_NOT_FOUND ? TS_OK : rv;
    }
    if (rv != TS_OK) {
        ts_datastore_abort(txn);
        return fail("transaction", rv);
    }
    rv = ts_datastore_commit(txn);
    if (rv != TS_OK) {
        return fail("commit", rv);
    }
    if (ts_datastore_generation(ds) != gen) {
        printf("error: committed generation %" PRIu64 ", expected %" PRIu64 "\n",
               ts_datastore_generation(ds), gen);
        return 1;
    }
    printf("committed %" PRIu64 "\n", gen);
    fflush(stdout);
    return 0;
}

/* 0 when ds holds exactly what commit_next() wrote for its generation. */
static int check_content(const ts_datastore *ds)
{
    uint64_t gen = ts_datastore_generation(ds), port = 0;
    uint8_t blob[BLOB_LEN];
    char url[64];
    const char *text = NULL;
    const uint8_t *value = NULL;
    size_t len = 0;

    snprintf(url, sizeof url, "https://gen-%" PRIu64 ".example", gen);
    blob_for(gen, blob);
    if (ts_datastore_get_text(ds, TS_DS_SERVER_URL, &text) != TS_OK || strcmp(text, url) != 0 ||
        ts_datastore_get_uint(ds, TS_DS_MQTT_PORT, &port) != TS_OK || port != gen ||
        ts_datastore_get(ds, "blob", &value, &len, NULL) != TS_OK || len != BLOB_LEN ||
        memcmp(value, blob, BLOB_LEN) != 0) {
        printf("error: generation %" PRIu64 " does not hold its own content\n", gen);
        return 1;
    }
    int has_odd = ts_datastore_get_text(ds, "odd", &text) == TS_OK;
    if (has_odd != (gen % 2 == 1)) {
        printf("error: generation %" PRIu64 " has the wrong odd entry\n", gen);
        return 1;
    }
    return 0;
}

static int leftovers(const char *state)
{
    DIR *d = opendir(state);
    struct dirent *de;
    int n = 0;
    if (d == NULL) {
        return -1;
    }
    while ((de = readdir(d)) != NULL) {
        if (strstr(de->d_name, ".tmp-") != NULL) {
            printf("error: temporary file %s left after open\n", de->d_name);
            n++;
        }
    }
    closedir(d);
    return n;
}

static int run(int argc, char **argv, ts_keystore *ks)
{
    ts_datastore *ds = NULL;
    const char *cmd = argv[1];
    int rc = 0;

    if (strcmp(cmd, "trial") == 0 && argc == 5) {
        /* The check, then the loop, in one process: the key store is opened once. */
        char *check_argv[] = {argv[0], "check", argv[2], argv[3], argv[4]};
        char *loop_argv[] = {argv[0], "loop", argv[2], argv[3]};
        rc = run(5, check_argv, ks);
        return rc != 0 ? rc : run(4, loop_argv, ks);
    }
    if (strcmp(cmd, "loop") == 0) {
        long n = argc > 4 ? strtol(argv[4], NULL, 10) : -1;
        ts_err rv = ts_datastore_open_or_defaults(argv[3], ks, &ds);
        if (rv != TS_OK) {
            return fail("open", rv);
        }
        printf("ready\n");
        fflush(stdout);
        for (long i = 0; (n < 0 || i < n) && rc == 0; i++) {
            rc = commit_next(ds);
        }
    } else if (strcmp(cmd, "check") == 0 && argc == 5) {
        uint64_t last = strtoull(argv[4], NULL, 10);
        ts_err rv = ts_datastore_open(argv[3], ks, &ds);
        if (rv == TS_ERR_NOT_FOUND && last == 0) {
            printf("generation 0\n");
            return 0;
        }
        if (rv != TS_OK) {
            return fail("open", rv);
        }
        uint64_t gen = ts_datastore_generation(ds);
        printf("generation %" PRIu64 "\n", gen);
        if (gen != last && gen != last + 1) {
            printf("error: generation %" PRIu64 " is neither the old (%" PRIu64
                   ") nor the new one\n",
                   gen, last);
            rc = 1;
        }
        rc = rc != 0 || check_content(ds) != 0 || leftovers(argv[3]) != 0;
    } else if (strcmp(cmd, "get") == 0 && argc == 5) {
        const char *text = NULL;
        ts_err rv = ts_datastore_open(argv[3], ks, &ds);
        if (rv == TS_OK) {
            rv = ts_datastore_get_text(ds, argv[4], &text);
        }
        if (rv != TS_OK) {
            rc = fail("get", rv);
        } else {
            printf("%s\n", text);
        }
    } else {
        return 2;
    }
    ts_datastore_free(ds);
    return rc;
}

int main(int argc, char **argv)
{
    ts_keystore *ks = NULL;
    if (argc < 3) {
        fprintf(stderr, "usage: ds_tool create|loop|check|get URI [STATE [ARG]]\n");
        return 2;
    }
    if (strcmp(argv[1], "create") == 0) {
        ts_err rv = ts_keystore_create(argv[2], argc > 3 ? argv[3] : NULL, &ks);
        ts_keystore_free(ks);
        return rv == TS_OK ? 0 : fail("create", rv);
    }
    if (argc < 4) {
        fprintf(stderr, "usage: ds_tool loop|check|get URI STATE [ARG]\n");
        return 2;
    }
    ts_err rv = ts_keystore_open(argv[2], &ks);
    if (rv != TS_OK) {
        return fail("key store", rv);
    }
    int rc = run(argc, argv, ks);
    if (rc == 2) {
        fprintf(stderr, "usage: ds_tool loop|check|get URI STATE [ARG]\n");
    }
    ts_keystore_free(ks);
    return rc;
}
