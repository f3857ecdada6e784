/*
 * tessera: the command-line tool. Subcommands are dispatched from the table below; each group
 * keeps its own table beside its code (cli_keystore.c, cli_demo.c).
 */
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

#include "cli/cli_internal.h"

static const cli_opt demo_opts[] = {
    {.name = "soft", .help = "use a soft: store even when SoftHSM2 is installed"},
    {0},
};

static const cli_command top_commands[] = {
    {.name = "keystore",
     .summary = "Manage a key store: keys, data objects and counters",
     .subs = cli_keystore_commands,
     .help = cli_keystore_env_help},
    {
        .name = "demo",
        .summary = "Run the key-store demo: a token key, a CSR and mutual TLS on loopback",
        .opts = demo_opts,
        .run = cli_demo_run,
        .help = "Everything happens in a fresh temporary directory that is removed at the end.\n"
                "\n"
                "Environment:\n"
                "  TS_SOFTHSM_MODULE   the SoftHSM2 PKCS#11 module\n"
                "                      (default /usr/lib/softhsm/libsofthsm2.so)\n",
    },
    {0},
};

static const cli_command top = {
    .name = "",
    .summary = "Tessera: device identities kept in a key store.",
    .subs = top_commands,
    .help = "Options:\n"
            "  -h, --help      print this help and exit\n"
            "  --version       print the version and exit\n",
};

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "--version") == 0) {
        printf("tessera %s (%s)\n", TS_VERSION, OpenSSL_version(OPENSSL_VERSION));
        return CLI_EXIT_OK;
    }
    return cli_dispatch("", &top, argc - 1, argv + 1);
}
