/*
 * tessera tenant: create a tenant (with its own issuing CA under the root) and list them.
 */
#include <string.h>

#include <openssl/crypto.h>

#include "cli/cli_remote.h"

static const cli_opt create_opts[] = {
    CLI_OPT_DIR,
    {.name = "name",
     .value = "NAME",
     .flags = CLI_OPT_REQUIRED,
     .help = "the tenant's name, 1-32 of a-z 0-9 - (also positional)"},
    {.name = "org", .value = "NAME", .help = "organisation (default: the instance's)"},
    {.name = "country", .value = "CC", .help = "country, two letters (default: the instance's)"},
    CLI_OPTS_REMOTE,
    {0},
};

static const cli_opt list_opts[] = {
    CLI_OPT_DIR,
    CLI_OPTS_REMOTE,
    {0},
};

static int cmd_create(const cli_args *args)
{
    const char *name = cli_opt_value(args, "name");
    ts_ca *ca = NULL;
    int status;

    if (ts_ca_tenant_name_check(name) != TS_OK) {
        return cli_usage_error(args, "%s", ts_error_message());
    }
    if (cli_remote_wanted(args)) {
        return cli_remote_tenant_create(args);
    }
    status = cli_instance_open(args, &ca);
    if (status != CLI_EXIT_OK) {
        return status;
    }
    if (ts_ca_tenant_create(ca, name, cli_opt_value(args, "org"), cli_opt_value(args, "country")) !=
        TS_OK) {
        status = cli_fail();
    } else {
        printf("tenant %s created with its issuing CA (tessera ca show --tenant %s --issuing)\n",
               name, name);
    }
    ts_ca_free(ca);
    return status;
}

static int cmd_list(const cli_args *args)
{
    ts_ca *ca = NULL;
    ts_tenant_row *rows = NULL;
    size_t count = 0;
    char when[32];
    int status;

    if (cli_remote_wanted(args)) {
        return cli_remote_tenant_list(args);
    }
    status = cli_instance_open(args, &ca);
    if (status != CLI_EXIT_OK) {
        return status;
    }
    if (ts_store_tenant_list(ts_ca_store(ca), &rows, &count) != TS_OK) {
        status = cli_fail();
    }
    for (size_t i = 0; status == CLI_EXIT_OK && i < count; i++) {
        cli_time_text(rows[i].created, when);
        printf("%s\t%s\t%s\t%s\n", rows[i].name, rows[i].org,
               rows[i].country[0] != '\0' ? rows[i].country : "-", when);
    }
    OPENSSL_free(rows);
    ts_ca_free(ca);
    return status;
}

const cli_command cli_tenant_commands[] = {
    {.name = "create",
     .summary = "Create a tenant with its own issuing CA (needs the root key online)",
     .opts = create_opts,
     .run = cmd_create,
     .help = "Example:\n  tessera tenant create acme --org 'Acme Devices' --country DE\n"
             "\n" CLI_REMOTE_HELP},
    {.name = "list",
     .summary = "List the tenants: name, org, country, created (tab-separated)",
     .opts = list_opts,
     .run = cmd_list,
     .help = CLI_REMOTE_HELP},
    {0},
};
