/*
 * tessera user: the users of the REST API. Each has a role (admin, operator, auditor, device) in
 * one tenant, or instance-wide (--instance: an admin of every tenant or an auditor of the
 * instance); API tokens (tessera token) act as their user. Each command works on --dir or, for
 * users of a tenant, in remote mode on --server.
 */
#include <string.h>

#include <openssl/crypto.h>

#include "cli/cli_remote.h"
#include "tessera/access.h"

#define OPT_NAME                                                                                   \
    {                                                                                              \
        .name = "name", .value = "NAME", .flags = CLI_OPT_REQUIRED,                                \
        .help = "the user's name (also positional)"                                                \
    }

static const cli_opt create_opts[] = {
    CLI_OPT_DIR,
    OPT_NAME,
    {.name = "role",
     .value = "ROLE",
     .flags = CLI_OPT_REQUIRED,
     .help = "admin, operator, auditor or device"},
    CLI_OPT_TENANT,
    CLI_OPT_INSTANCE,
    {.name = "device", .value = "UID", .help = "the device a device user is (role device only)"},
    CLI_OPTS_REMOTE,
    {0},
};

static const cli_opt list_opts[] = {
    CLI_OPT_DIR, CLI_OPT_TENANT, CLI_OPT_INSTANCE, CLI_OPTS_REMOTE, {0},
};

static const cli_opt name_opts[] = {
    CLI_OPT_DIR, OPT_NAME, CLI_OPT_TENANT, CLI_OPT_INSTANCE, CLI_OPTS_REMOTE, {0},
};

int cli_access_scope(const cli_args *args, const char **tenant)
{
    int instance = cli_opt_given(args, "instance");
    const char *given = cli_opt_value(args, "tenant");

    if (instance && given != NULL) {
        return cli_usage_error(args, "--tenant and --instance do not go together");
    }
    if (instance && cli_remote_wanted(args)) {
        /* The API manages the users and tokens of tenants only. */
        return cli_usage_error(args, "--instance works on --dir only");
    }
    if (given != NULL && ts_ca_tenant_name_check(given) != TS_OK) {
        return cli_usage_error(args, "--tenant: %s", ts_error_message());
    }
    /* NULL means instance-wide to the access API, so the default tenant is named. */
    *tenant = instance ? NULL : (given != NULL ? given : TS_DEFAULT_TENANT);
    return CLI_EXIT_OK;
}

static void print_user(const char *name, const char *role, const char *tenant, const char *device,
                       int disabled, const char *created)
{
    printf("%s\t%s\t%s\t%s\t%s\t%s\n", name, role,
           tenant != NULL && tenant[0] != '\0' ? tenant : "*",
           device != NULL && device[0] != '\0' ? device : "-", disabled ? "disabled" : "enabled",
           created);
}

/* --- remote ------------------------------------------------------------------------------------
 */

static int json_disabled(const json_t *row)
{
    const char *status = cli_json_str(row, "status", NULL);
    return json_is_true(json_object_get(row, "disabled")) ||
           (status != NULL && strcmp(status, "disabled") == 0);
}

static int remote_create(const cli_args *args, ts_role role, const char *device)
{
    char tenant[TS_TENANT_NAME_MAX + 1], path[512];
    const char *name = cli_opt_value(args, "name");
    cli_remote *rm = NULL;
    json_t *body = json_pack("{s:s, s:s}", "name", name, "role", ts_role_name(role));
    json_t *reply = NULL;
    int status = body != NULL ? cli_remote_begin(args, "/api/v1/tenants/%s/users", NULL, &rm,
                                                 tenant, path, sizeof path)
                              : CLI_EXIT_FAIL;

    if (status == CLI_EXIT_OK && device != NULL &&
        json_object_set_new(body, "device_uid", json_string(device)) != 0) {
        status = CLI_EXIT_FAIL;
    }
    if (status == CLI_EXIT_OK) {
        status = cli_remote_call(rm, "POST", path, body, &reply);
    }
    if (status == CLI_EXIT_OK) {
        printf("user %s (%s) created in tenant %s\n", name, ts_role_name(role), tenant);
    }
    json_decref(reply);
    json_decref(body);
    cli_remote_free(rm);
    return status;
}

static int remote_list(const cli_args *args)
{
    char tenant[TS_TENANT_NAME_MAX + 1], path[512];
    cli_remote *rm = NULL;
    json_t *items = NULL, *row = NULL;
    size_t i = 0;
    int status =
        cli_remote_begin(args, "/api/v1/tenants/%s/users", NULL, &rm, tenant, path, sizeof path);

    if (status == CLI_EXIT_OK) {
        status = cli_remote_list(rm, path, 0, &items);
    }
    json_array_foreach(items, i, row)
    {
        print_user(cli_json_str(row, "name", "?"), cli_json_str(row, "role", "?"),
                   cli_json_str(row, "tenant", tenant), cli_json_str(row, "device_uid", NULL),
                   json_disabled(row), cli_json_str(row, "created", "?"));
    }
    json_decref(items);
    cli_remote_free(rm);
    return status;
}

static int remote_set(const cli_args *args, int disabled)
{
    char tenant[TS_TENANT_NAME_MAX + 1], path[512];
    const char *name = cli_opt_value(args, "name");
    cli_remote *rm = NULL;
    json_t *reply = NULL;
    int status = cli_remote_begin(args,
                                  disabled ? "/api/v1/tenants/%s/users/%s/disable"
                                           : "/api/v1/tenants/%s/users/%s/enable",
                                  name, &rm, tenant, path, sizeof path);

    if (status == CLI_EXIT_OK) {
        status = cli_remote_call(rm, "POST", path, NULL, &reply);
    }
    if (status == CLI_EXIT_OK) {
        printf("user %s %s\n", name, disabled ? "disabled" : "enabled");
    }
    json_decref(reply);
    cli_remote_free(rm);
    return status;
}

/* --- local -------------------------------------------------------------------------------------
 */

static int cmd_create(const cli_args *args)
{
    const char *name = cli_opt_value(args, "name");
    const char *role_text = cli_opt_value(args, "role");
    const char *device = cli_opt_value(args, "device");
    const char *tenant = NULL;
    ts_role role;
    ts_user_row row;
    ts_ca *ca = NULL;
    int status = cli_access_scope(args, &tenant);

    if (status != CLI_EXIT_OK) {
        return status;
    }
    if (ts_role_parse(role_text, &role) != TS_OK) {
        return cli_usage_error(args, "--role: admin, operator, auditor or device, not '%s'",
                               role_text);
    }
    if (role == TS_ROLE_DEVICE && device == NULL) {
        return cli_usage_error(args, "a device user needs --device UID");
    }
    if (role != TS_ROLE_DEVICE && device != NULL) {
        return cli_usage_error(args, "--device goes with --role device");
    }
    if (device != NULL && ts_device_uid_check(device) != TS_OK) {
        return cli_usage_error(args, "--device: %s", ts_error_message());
    }
    if (tenant == NULL && role != TS_ROLE_ADMIN && role != TS_ROLE_AUDITOR) {
        return cli_usage_error(args, "an instance-wide user is an admin or an auditor");
    }
    if (cli_remote_wanted(args)) {
        return remote_create(args, role, device);
    }
    status = cli_instance_open(args, &ca);
    if (status != CLI_EXIT_OK) {
        return status;
    }
    if (ts_ca_user_create(ca, tenant, name, role, device, &row) != TS_OK) {
        status = cli_fail();
    } else if (tenant == NULL) {
        printf("user %s (%s) created instance-wide\n", row.name, ts_role_name(row.role));
    } else {
        printf("user %s (%s) created in tenant %s\n", row.name, ts_role_name(row.role), tenant);
    }
    ts_ca_free(ca);
    return status;
}

static int cmd_list(const cli_args *args)
{
    const char *tenant = NULL;
    ts_user_row *rows = NULL;
    size_t count = 0;
    char created[32];
    ts_ca *ca = NULL;
    int status = cli_access_scope(args, &tenant);

    if (status != CLI_EXIT_OK) {
        return status;
    }
    if (cli_remote_wanted(args)) {
        return remote_list(args);
    }
    status = cli_instance_open(args, &ca);
    if (status != CLI_EXIT_OK) {
        return status;
    }
    if (ts_ca_user_list(ca, tenant, &rows, &count) != TS_OK) {
        status = cli_fail();
    }
    for (size_t i = 0; status == CLI_EXIT_OK && i < count; i++) {
        cli_time_text(rows[i].created, created);
        print_user(rows[i].name, ts_role_name(rows[i].role), rows[i].tenant, rows[i].device_uid,
                   rows[i].disabled, created);
    }
    OPENSSL_free(rows);
    ts_ca_free(ca);
    return status;
}

static int set_disabled(const cli_args *args, int disabled)
{
    const char *name = cli_opt_value(args, "name");
    const char *tenant = NULL;
    ts_ca *ca = NULL;
    int status = cli_access_scope(args, &tenant);

    if (status != CLI_EXIT_OK) {
        return status;
    }
    if (cli_remote_wanted(args)) {
        return remote_set(args, disabled);
    }
    status = cli_instance_open(args, &ca);
    if (status != CLI_EXIT_OK) {
        return status;
    }
    if (ts_ca_user_set_disabled(ca, tenant, name, disabled) != TS_OK) {
        status = cli_fail();
    } else {
        printf("user %s %s\n", name, disabled ? "disabled" : "enabled");
    }
    ts_ca_free(ca);
    return status;
}

static int cmd_disable(const cli_args *args)
{
    return set_disabled(args, 1);
}

static int cmd_enable(const cli_args *args)
{
    return set_disabled(args, 0);
}

static const char user_help[] =
    "Roles: admin (everything in its tenant; instance-wide: every tenant), operator\n"
    "(certificates, devices, claim codes), auditor (read-only, the audit log), device (its own\n"
    "records only). Without --tenant or --instance the user belongs to the default tenant.\n"
    "\n"
    "Example:\n"
    "  tessera user create alice --role operator --tenant acme\n"
    "  tessera token create --user alice --tenant acme --name ci | tail -n1\n"
    "\n" CLI_REMOTE_HELP;

const cli_command cli_user_commands[] = {
    {.name = "create",
     .summary = "Create a user with a role, in a tenant or instance-wide",
     .opts = create_opts,
     .run = cmd_create,
     .help = user_help},
    {.name = "list",
     .summary = "List users: name, role, tenant, device, status, created (tab-separated)",
     .opts = list_opts,
     .run = cmd_list,
     .help = user_help},
    {.name = "disable",
     .summary = "Disable a user: its tokens stop working",
     .opts = name_opts,
     .run = cmd_disable,
     .help = user_help},
    {.name = "enable",
     .summary = "Enable a disabled user again",
     .opts = name_opts,
     .run = cmd_enable,
     .help = user_help},
    {0},
};
