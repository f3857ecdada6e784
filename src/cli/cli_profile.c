/*
 * tessera profile: a tenant's certificate profiles (JSON, docs/profiles.md): list, show, create,
 * update. A definition is validated before it is stored.
 */
#include <string.h>

#include <openssl/crypto.h>

#include "cli/cli_remote.h"
#include "tessera/pki.h"

static const cli_opt list_opts[] = {
    CLI_OPT_DIR,
    CLI_OPT_TENANT,
    CLI_OPTS_REMOTE,
    {0},
};

static const cli_opt show_opts[] = {
    CLI_OPT_DIR,
    {.name = "name",
     .value = "NAME",
     .flags = CLI_OPT_REQUIRED,
     .help = "the profile (positional)"},
    CLI_OPT_TENANT,
    CLI_OPTS_REMOTE,
    {0},
};

static const cli_opt put_opts[] = {
    CLI_OPT_DIR,
    {.name = "name",
     .value = "NAME",
     .flags = CLI_OPT_REQUIRED,
     .help = "the profile (positional)"},
    {.name = "file",
     .value = "JSON",
     .flags = CLI_OPT_REQUIRED,
     .help = "the definition; its \"name\" must be NAME"},
    CLI_OPT_TENANT,
    {0},
};

static int open_tenant(const cli_args *args, ts_ca **ca, ts_tenant_row *t)
{
    int status = cli_instance_open(args, ca);
    if (status == CLI_EXIT_OK && ts_ca_tenant(*ca, cli_opt_value(args, "tenant"), t) != TS_OK) {
        status = cli_fail();
        ts_ca_free(*ca);
        *ca = NULL;
    }
    return status;
}

static int cmd_list(const cli_args *args)
{
    ts_ca *ca = NULL;
    ts_tenant_row t;
    char **names = NULL;
    size_t count = 0;
    int status;

    if (cli_remote_wanted(args)) {
        return cli_remote_profile_list(args);
    }
    status = open_tenant(args, &ca, &t);

    if (status != CLI_EXIT_OK) {
        return status;
    }
    if (ts_store_profile_list(ts_ca_store(ca), t.id, &names, &count) != TS_OK) {
        status = cli_fail();
    }
    for (size_t i = 0; i < count; i++) {
        if (status == CLI_EXIT_OK) {
            printf("%s\n", names[i]);
        }
        OPENSSL_free(names[i]);
    }
    OPENSSL_free(names);
    ts_ca_free(ca);
    return status;
}

static int cmd_show(const cli_args *args)
{
    const char *name = cli_opt_value(args, "name");
    ts_ca *ca = NULL;
    ts_tenant_row t;
    char *json = NULL;
    int status;

    if (cli_remote_wanted(args)) {
        return cli_remote_profile_show(args);
    }
    status = open_tenant(args, &ca, &t);

    if (status != CLI_EXIT_OK) {
        return status;
    }
    ts_err rv = ts_store_profile_get(ts_ca_store(ca), t.id, name, &json);
    if (rv == TS_ERR_NOT_FOUND) {
        fprintf(stderr, "tessera: no profile '%s' in tenant '%s'\n", name, t.name);
        status = CLI_EXIT_FAIL;
    } else if (rv != TS_OK) {
        status = cli_fail();
    } else {
        printf("%s\n", json);
    }
    OPENSSL_free(json);
    ts_ca_free(ca);
    return status;
}

static int put(const cli_args *args, int replace)
{
    const char *name = cli_opt_value(args, "name");
    uint8_t *data = NULL;
    size_t len = 0;
    ts_ca *ca = NULL;
    int status;

    if (cli_read_input(cli_opt_value(args, "file"), TS_PROFILE_JSON_MAX, &data, &len) != TS_OK) {
        return cli_fail();
    }
    status = cli_instance_open(args, &ca);
    if (status == CLI_EXIT_OK) {
        if (ts_ca_profile_put(ca, cli_opt_value(args, "tenant"), name, (const char *)data, len,
                              replace) != TS_OK) {
            status = cli_fail();
        } else {
            printf("profile %s %s\n", name, replace ? "updated" : "created");
        }
    }
    OPENSSL_clear_free(data, len);
    ts_ca_free(ca);
    return status;
}

static int cmd_create(const cli_args *args)
{
    return put(args, 0);
}

static int cmd_update(const cli_args *args)
{
    return put(args, 1);
}

const cli_command cli_profile_commands[] = {
    {.name = "list",
     .summary = "List a tenant's profiles",
     .opts = list_opts,
     .run = cmd_list,
     .help = CLI_REMOTE_HELP},
    {.name = "show",
     .summary = "Print a profile's JSON definition",
     .opts = show_opts,
     .run = cmd_show,
     .help = "Example:\n  tessera profile show device > device.json\n\n" CLI_REMOTE_HELP},
    {.name = "create",
     .summary = "Create a profile from a JSON definition",
     .opts = put_opts,
     .run = cmd_create,
     .help = "Example:\n  tessera profile create sensor --file sensor.json --tenant acme\n"},
    {.name = "update",
     .summary = "Replace a profile's definition",
     .opts = put_opts,
     .run = cmd_update,
     .help = "Certificates already issued keep what they were issued with.\n\n"
             "Example:\n  tessera profile update device --file device.json\n"},
    {0},
};
