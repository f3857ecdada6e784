/*
 * tessera ceremony: the root key after init. restore recombines M shares and unwraps the root key
 * into the key store; offline-root deletes it from the online key store.
 */
#include <string.h>

#include "cli/cli_instance.h"

static const cli_opt restore_opts[] = {
    CLI_OPT_DIR,
    {.name = "shares",
     .value = "FILE",
     .flags = CLI_OPT_REQUIRED | CLI_OPT_REPEAT,
     .help = "share files (at least M of them): --shares a.txt b.txt c.txt"},
    {.name = "keystore",
     .value = "URI",
     .help = "restore into this key store instead of the instance's (no pin-value=)"},
    {0},
};

static const cli_opt offline_opts[] = {
    CLI_OPT_DIR,
    {0},
};

static int cmd_restore(const cli_args *args)
{
    const char *const *files = NULL;
    size_t n = cli_opt_values(args, "shares", &files);
    ts_ca *ca = NULL;
    int status = cli_instance_open(args, &ca);

    if (status != CLI_EXIT_OK) {
        return status;
    }
    if (ts_ca_root_restore(ca, files, n, cli_opt_value(args, "keystore")) != TS_OK) {
        status = cli_fail();
    } else {
        printf("root key restored from %zu shares; it is online until "
               "'tessera ceremony offline-root'\n",
               n);
    }
    ts_ca_free(ca);
    return status;
}

static int cmd_offline(const cli_args *args)
{
    ts_ca *ca = NULL;
    int status = cli_instance_open(args, &ca);

    if (status != CLI_EXIT_OK) {
        return status;
    }
    if (ts_ca_root_offline(ca) != TS_OK) {
        status = cli_fail();
    } else {
        printf("root key deleted from the online key store; issuing continues with the issuing "
               "CAs.\nRestore it with 'tessera ceremony restore --shares FILE...' when needed.\n");
    }
    ts_ca_free(ca);
    return status;
}

const cli_command cli_ceremony_commands[] = {
    {.name = "restore",
     .summary = "Restore the root key from M of the N backup shares",
     .opts = restore_opts,
     .run = cmd_restore,
     .help = "A mistyped line or too few shares fail with a message naming the share file and\n"
             "line, and change nothing.\n\n"
             "Example:\n"
             "  tessera ceremony restore --dir /srv/tessera --shares kim.txt ana.txt raj.txt\n"},
    {.name = "offline-root",
     .summary = "Delete the root key from the online key store (its backup stays)",
     .opts = offline_opts,
     .run = cmd_offline,
     .help = cli_instance_help},
    {0},
};
