/*
 * tessera device: the device registry of a tenant. A device is known by its UID (the CN of its
 * certificates); a disabled device gets no certificate and its certificates fail authentication
 * at the service and the broker until it is enabled again. Each command works on --dir or, in
 * remote mode, on --server. Remote commands are in cli_command.c.
 */
#include <string.h>

#include <openssl/crypto.h>

#include "cli/cli_command.h"
#include "cli/cli_remote.h"
#include "tessera/access.h"
#include "tessera/firmware.h"

#define OPT_UID                                                                                    \
    {                                                                                              \
        .name = "uid", .value = "UID", .flags = CLI_OPT_REQUIRED,                                  \
        .help = "the device's UID (also positional)"                                               \
    }

static const cli_opt list_opts[] = {
    CLI_OPT_DIR,
    CLI_OPT_TENANT,
    {.name = "status", .value = "STATUS", .help = "enabled or disabled"},
    CLI_OPTS_REMOTE,
    {0},
};

static const cli_opt uid_opts[] = {
    CLI_OPT_DIR, OPT_UID, CLI_OPT_TENANT, CLI_OPTS_REMOTE, {0},
};

static const char *state_name(ts_device_state state)
{
    return state == TS_DEVICE_DISABLED ? "disabled" : "enabled";
}

static const char *tenant_or_default(const cli_args *args)
{
    const char *t = cli_opt_value(args, "tenant");
    return t != NULL ? t : TS_DEFAULT_TENANT;
}

static int uid_check(const cli_args *args, const char **uid)
{
    *uid = cli_opt_value(args, "uid");
    if (ts_device_uid_check(*uid) != TS_OK) {
        return cli_usage_error(args, "--uid: %s", ts_error_message());
    }
    return CLI_EXIT_OK;
}

static void print_device(const char *uid, const char *tenant, const char *status,
                         const char *created, const char *updated)
{
    printf("uid:          %s\ntenant:       %s\nstatus:       %s\ncreated:      %s\n"
           "updated:      %s\n",
           uid, tenant, status, created, updated);
}

/* --- remote ------------------------------------------------------------------------------------
 */

static const char *json_status(const json_t *row)
{
    return cli_json_str(row, "status", "?");
}

static int remote_list(const cli_args *args, const char *state)
{
    char tenant[TS_TENANT_NAME_MAX + 1], path[512];
    cli_remote *rm = NULL;
    json_t *items = NULL, *row = NULL;
    size_t i = 0;
    int status = state != NULL ? cli_remote_begin(args, "/api/v1/tenants/%s/devices?status=%s",
                                                  state, &rm, tenant, path, sizeof path)
                               : cli_remote_begin(args, "/api/v1/tenants/%s/devices", NULL, &rm,
                                                  tenant, path, sizeof path);

    if (status == CLI_EXIT_OK) {
        status = cli_remote_list(rm, path, 0, &items);
    }
    json_array_foreach(items, i, row)
    {
        printf("%s\t%s\t%s\t%s\n", cli_json_str(row, "uid", "?"), json_status(row),
               cli_json_str(row, "created", "?"), cli_json_str(row, "updated", "?"));
    }
    json_decref(items);
    cli_remote_free(rm);
    return status;
}

static int remote_show(const cli_args *args, const char *uid)
{
    char tenant[TS_TENANT_NAME_MAX + 1], path[512];
    cli_remote *rm = NULL;
    json_t *reply = NULL, *row = NULL;
    size_t i = 0;
    int status = cli_remote_begin(args, "/api/v1/tenants/%s/devices/%s", uid, &rm, tenant, path,
                                  sizeof path);

    if (status == CLI_EXIT_OK) {
        status = cli_remote_call(rm, "GET", path, NULL, &reply);
    }
    if (status == CLI_EXIT_OK) {
        const json_t *certs = json_object_get(reply, "certificates");
        print_device(cli_json_str(reply, "uid", uid), tenant, json_status(reply),
                     cli_json_str(reply, "created", "?"), cli_json_str(reply, "updated", "?"));
        const json_t *fw = json_object_get(reply, "firmware");
        if (fw != NULL) {
            printf("firmware:     %s\nhardware:     %s\nreported:     %s\n",
                   cli_json_str(fw, "version", "unknown"), cli_json_str(fw, "hw", "unknown"),
                   cli_json_str(fw, "reported", "?"));
        }
        printf("certificates: %zu\n", json_array_size(certs));
        json_array_foreach(certs, i, row)
        {
            cli_remote_cert_line(row);
        }
    }
    json_decref(reply);
    cli_remote_free(rm);
    return status;
}

/* POST to register (body {uid}), disable or enable. */
static int remote_change(const cli_args *args, const char *uid, const char *verb)
{
    char tenant[TS_TENANT_NAME_MAX + 1], path[512];
    cli_remote *rm = NULL;
    json_t *body = NULL, *reply = NULL;
    int reg = strcmp(verb, "registered") == 0;
    const char *fmt = reg                             ? "/api/v1/tenants/%s/devices"
                      : strcmp(verb, "disabled") == 0 ? "/api/v1/tenants/%s/devices/%s/disable"
                                                      : "/api/v1/tenants/%s/devices/%s/enable";
    int status = cli_remote_begin(args, fmt, reg ? NULL : uid, &rm, tenant, path, sizeof path);

    if (status == CLI_EXIT_OK && reg) {
        body = json_pack("{s:s}", "uid", uid);
        status = body != NULL ? CLI_EXIT_OK : CLI_EXIT_FAIL;
    }
    if (status == CLI_EXIT_OK) {
        status = cli_remote_call(rm, "POST", path, body, &reply);
    }
    if (status == CLI_EXIT_OK) {
        printf("device %s %s in tenant %s\n", uid, verb, tenant);
    }
    json_decref(reply);
    json_decref(body);
    cli_remote_free(rm);
    return status;
}

/* --- local -------------------------------------------------------------------------------------
 */

static int cmd_list(const cli_args *args)
{
    const char *status_text = cli_opt_value(args, "status");
    ts_device_filter f;
    ts_device_row *rows = NULL;
    size_t count = 0;
    char created[32], updated[32];
    ts_ca *ca = NULL;
    int status;

    memset(&f, 0, sizeof f);
    if (status_text != NULL && strcmp(status_text, "enabled") == 0) {
        f.state = TS_DEVICE_ENABLED;
    } else if (status_text != NULL && strcmp(status_text, "disabled") == 0) {
        f.state = TS_DEVICE_DISABLED;
    } else if (status_text != NULL) {
        return cli_usage_error(args, "--status: enabled or disabled, not '%s'", status_text);
    }
    if (cli_remote_wanted(args)) {
        return remote_list(args, status_text);
    }
    status = cli_instance_open(args, &ca);
    if (status != CLI_EXIT_OK) {
        return status;
    }
    if (ts_ca_device_list(ca, cli_opt_value(args, "tenant"), &f, &rows, &count) != TS_OK) {
        status = cli_fail();
    }
    for (size_t i = 0; status == CLI_EXIT_OK && i < count; i++) {
        cli_time_text(rows[i].created, created);
        cli_time_text(rows[i].updated, updated);
        printf("%s\t%s\t%s\t%s\n", rows[i].uid, state_name(rows[i].state), created, updated);
    }
    OPENSSL_free(rows);
    ts_ca_free(ca);
    return status;
}

static int cmd_show(const cli_args *args)
{
    const char *uid = NULL;
    ts_device_row dev;
    ts_tenant_row t;
    ts_cert_filter f;
    ts_cert_row *certs = NULL;
    size_t count = 0;
    char created[32], updated[32], when[32];
    ts_ca *ca = NULL;
    int status = uid_check(args, &uid);

    if (status != CLI_EXIT_OK) {
        return status;
    }
    if (cli_remote_wanted(args)) {
        return remote_show(args, uid);
    }
    status = cli_instance_open(args, &ca);
    if (status != CLI_EXIT_OK) {
        return status;
    }
    memset(&f, 0, sizeof f);
    ts_err rv = ts_ca_tenant(ca, cli_opt_value(args, "tenant"), &t);
    if (rv == TS_OK) {
        rv = ts_ca_device_get(ca, t.name, uid, &dev);
    }
    if (rv == TS_OK) {
        f.tenant_id = t.id;
        f.device_uid = uid;
        rv = ts_store_cert_list(ts_ca_store(ca), &f, &certs, &count);
    }
    if (rv != TS_OK) {
        status = cli_fail();
        goto done;
    }
    cli_time_text(dev.created, created);
    cli_time_text(dev.updated, updated);
    print_device(dev.uid, t.name, state_name(dev.state), created, updated);
    ts_fw_device_row fw;
    if (ts_ca_fw_device_get(ca, t.name, uid, &fw) == TS_OK) {
        cli_time_text(fw.reported, when);
        printf("firmware:     %s\nhardware:     %s\nreported:     %s\n",
               fw.version[0] != '\0' ? fw.version : "unknown", fw.hw[0] != '\0' ? fw.hw : "unknown",
               when);
    }
    printf("certificates: %zu\n", count);
    for (size_t i = 0; i < count; i++) {
        cli_time_text(certs[i].not_after, when);
        cli_cert_line(certs[i].serial,
                      certs[i].state == TS_CERT_REVOKED_STATE ? "revoked" : "valid", when,
                      certs[i].profile, certs[i].device_uid, certs[i].subject);
    }
done:
    ts_cert_rows_free(certs, count);
    ts_ca_free(ca);
    return status;
}

/* register, disable and enable: one change, one line saying what was done. */
static int change(const cli_args *args, const char *verb)
{
    const char *uid = NULL;
    ts_device_row row;
    ts_ca *ca = NULL;
    ts_err rv;
    int status = uid_check(args, &uid);

    if (status != CLI_EXIT_OK) {
        return status;
    }
    if (cli_remote_wanted(args)) {
        return remote_change(args, uid, verb);
    }
    status = cli_instance_open(args, &ca);
    if (status != CLI_EXIT_OK) {
        return status;
    }
    const char *tenant = cli_opt_value(args, "tenant");
    if (strcmp(verb, "registered") == 0) {
        rv = ts_ca_device_register(ca, tenant, uid, &row);
    } else {
        rv = ts_ca_device_set_state(ca, tenant, uid,
                                    strcmp(verb, "disabled") == 0 ? TS_DEVICE_DISABLED
                                                                  : TS_DEVICE_ENABLED);
    }
    if (rv != TS_OK) {
        status = cli_fail();
    } else {
        printf("device %s %s in tenant %s\n", uid, verb, tenant_or_default(args));
    }
    ts_ca_free(ca);
    return status;
}

static int cmd_register(const cli_args *args)
{
    return change(args, "registered");
}

static int cmd_disable(const cli_args *args)
{
    return change(args, "disabled");
}

static int cmd_enable(const cli_args *args)
{
    return change(args, "enabled");
}

const cli_command cli_device_commands[] = {
    {.name = "list",
     .summary = "List the devices of a tenant: uid, status, created, updated (tab-separated)",
     .opts = list_opts,
     .run = cmd_list,
     .help = "Example:\n  tessera device list --status disabled\n\n" CLI_REMOTE_HELP},
    {.name = "show",
     .summary = "Show a device and its certificates",
     .opts = uid_opts,
     .run = cmd_show,
     .help = "The certificates are listed as tessera cert list prints them.\n\n" CLI_REMOTE_HELP},
    {.name = "register",
     .summary = "Register a device UID in a tenant (enabled)",
     .opts = uid_opts,
     .run = cmd_register,
     .help = "Issuing a certificate under a device profile and enrolling with a claim code\n"
             "register the device too.\n\n" CLI_REMOTE_HELP},
    {.name = "disable",
     .summary = "Disable a device: no new certificate, its certificates stop authenticating",
     .opts = uid_opts,
     .run = cmd_disable,
     .help = "The change goes on the revocation feed (GET /api/v1/tenants/T/revocations).\n\n"
             "Example:\n  tessera device disable dev-0042 --tenant acme\n\n" CLI_REMOTE_HELP},
    {.name = "enable",
     .summary = "Enable a disabled device again",
     .opts = uid_opts,
     .run = cmd_enable,
     .help = CLI_REMOTE_HELP},
    {.name = "command",
     .summary = "Send a signed remote command: UID NAME [ARGS...]; waits for its result",
     .opts = cli_command_opts,
     .run = cli_command_run,
     .help = "Prints \"command ID seq N\", then waits up to --wait seconds (30; 0: do not wait)\n"
             "for the result: \"done: OUTPUT\" (exit 0), or \"failed: ERROR\", \"refused: "
             "ERROR\",\n\"expired\", \"no result within N s\" (exit 1). The service publishes "
             "commands\nonly when it runs with --mqtt (docs/commands.md); otherwise they stay "
             "pending.\nAn argument that starts with '-' is given as --word=ARG.\n\n"
             "Example:\n  tessera device command dev-0042 reboot --ttl 60\n\n" CLI_REMOTE_HELP},
    {.name = "commands",
     .summary = "List a device's commands, newest first: id, seq, name, status, issued (tabs)",
     .opts = cli_commands_opts,
     .run = cli_commands_run,
     .help = CLI_REMOTE_HELP},
    {0},
};
