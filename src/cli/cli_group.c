/*
 * tessera group: a tenant's named device groups (include/tessera/access.h). A group holds
 * registered devices; a device may be in several. `tessera job create --group NAME` queues one
 * job per member. Each command works on --dir or, in remote mode, on --server.
 */
#include <string.h>

#include <openssl/crypto.h>

#include "cli/cli_group.h"
#include "cli/cli_remote.h"
#include "tessera/access.h"

#define OPT_NAME                                                                                   \
    {                                                                                              \
        .name = "name", .value = "NAME", .flags = CLI_OPT_REQUIRED,                                \
        .help = "the group's name (also positional)"                                               \
    }

static const cli_opt list_opts[] = {
    CLI_OPT_DIR,
    CLI_OPT_TENANT,
    CLI_OPTS_REMOTE,
    {0},
};

static const cli_opt name_opts[] = {
    CLI_OPT_DIR, OPT_NAME, CLI_OPT_TENANT, CLI_OPTS_REMOTE, {0},
};

static const cli_opt member_opts[] = {
    CLI_OPT_DIR,
    OPT_NAME,
    {.name = "device",
     .value = "UID",
     .flags = CLI_OPT_REQUIRED | CLI_OPT_REPEAT,
     .help = "a device's UID (repeatable; all or none are changed)"},
    CLI_OPT_TENANT,
    CLI_OPTS_REMOTE,
    {0},
};

static int name_check(const cli_args *args, const char **name)
{
    *name = cli_opt_value(args, "name");
    if (ts_group_name_check(*name) != TS_OK) {
        return cli_usage_error(args, "--name: %s", ts_error_message());
    }
    return CLI_EXIT_OK;
}

static int devices_check(const cli_args *args, const char *const **uids, size_t *n)
{
    *n = cli_opt_values(args, "device", uids);
    for (size_t i = 0; i < *n; i++) {
        if (ts_device_uid_check((*uids)[i]) != TS_OK) {
            return cli_usage_error(args, "--device %s: %s", (*uids)[i], ts_error_message());
        }
    }
    return CLI_EXIT_OK;
}

/* --- remote ------------------------------------------------------------------------------------
 */

static int remote_list(const cli_args *args)
{
    char tenant[TS_TENANT_NAME_MAX + 1], path[512];
    cli_remote *rm = NULL;
    json_t *items = NULL, *row = NULL;
    size_t i = 0;
    int status =
        cli_remote_begin(args, "/api/v1/tenants/%s/groups", NULL, &rm, tenant, path, sizeof path);

    if (status == CLI_EXIT_OK) {
        status = cli_remote_list(rm, path, 0, &items);
    }
    json_array_foreach(items, i, row)
    {
        int64_t members = 0;
        if (cli_json_i64(row, "members", &members) != 0) {
            members = -1;
        }
        printf("%s\t%lld\t%s\n", cli_json_str(row, "name", "?"), (long long)members,
               cli_json_str(row, "created", "?"));
    }
    json_decref(items);
    cli_remote_free(rm);
    return status;
}

static void print_remote_group(const json_t *reply, const char *tenant)
{
    json_t *devices = json_object_get(reply, "devices"), *row = NULL;
    size_t i = 0;
    int64_t members = 0;
    if (cli_json_i64(reply, "members", &members) != 0) {
        members = -1;
    }
    printf("name:         %s\ntenant:       %s\nmembers:      %lld\ncreated:      %s\n",
           cli_json_str(reply, "name", "?"), tenant, (long long)members,
           cli_json_str(reply, "created", "?"));
    json_array_foreach(devices, i, row)
    {
        printf("  %s\t%s\n", cli_json_str(row, "uid", "?"), cli_json_str(row, "added", "?"));
    }
}

/* GET (show), POST (create) or DELETE (delete) of a group. */
static int remote_one(const cli_args *args, const char *name, const char *method)
{
    char tenant[TS_TENANT_NAME_MAX + 1], path[512];
    cli_remote *rm = NULL;
    json_t *body = NULL, *reply = NULL;
    int create = strcmp(method, "POST") == 0;
    int status = cli_remote_begin(
        args, create ? "/api/v1/tenants/%s/groups" : "/api/v1/tenants/%s/groups/%s",
        create ? NULL : name, &rm, tenant, path, sizeof path);

    if (status == CLI_EXIT_OK && create) {
        body = json_pack("{s:s}", "name", name);
        status = body != NULL ? CLI_EXIT_OK : CLI_EXIT_FAIL;
    }
    if (status == CLI_EXIT_OK) {
        status = cli_remote_call(rm, method, path, body, &reply);
    }
    if (status == CLI_EXIT_OK) {
        if (strcmp(method, "GET") == 0) {
            print_remote_group(reply, tenant);
        } else {
            printf("group %s %s in tenant %s\n", name, create ? "created" : "deleted", tenant);
        }
    }
    json_decref(reply);
    json_decref(body);
    cli_remote_free(rm);
    return status;
}

static int remote_members(const cli_args *args, const char *name, const char *const *uids, size_t n,
                          int add)
{
    char tenant[TS_TENANT_NAME_MAX + 1], path[512];
    cli_remote *rm = NULL;
    json_t *body = NULL, *reply = NULL;
    int status = cli_remote_begin(args, "/api/v1/tenants/%s/groups/%s/members", name, &rm, tenant,
                                  path, sizeof path);

    /* POST .../members adds, .../members/remove removes: either all of them or none. */
    if (status == CLI_EXIT_OK && !add) {
        status = cli_remote_path(path, sizeof path, "/api/v1/tenants/%s/groups/%s/members/remove",
                                 tenant, name);
    }
    if (status == CLI_EXIT_OK) {
        json_t *list = json_array();
        for (size_t i = 0; list != NULL && i < n; i++) {
            if (json_array_append_new(list, json_string(uids[i])) != 0) {
                json_decref(list);
                list = NULL;
            }
        }
        body = list != NULL ? json_pack("{s:o}", "devices", list) : NULL;
        status = body != NULL ? CLI_EXIT_OK : CLI_EXIT_FAIL;
        if (status == CLI_EXIT_OK) {
            status = cli_remote_call(rm, "POST", path, body, &reply);
        }
    }
    if (status == CLI_EXIT_OK) {
        int64_t members = 0;
        if (cli_json_i64(reply, "members", &members) != 0) {
            members = -1;
        }
        printf("group %s: %zu device(s) %s, %lld member(s)\n", name, n, add ? "added" : "removed",
               (long long)members);
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
    ts_group_row *rows = NULL;
    size_t count = 0;
    char created[32];
    ts_ca *ca = NULL;

    if (cli_remote_wanted(args)) {
        return remote_list(args);
    }
    int status = cli_instance_open(args, &ca);
    if (status != CLI_EXIT_OK) {
        return status;
    }
    if (ts_ca_group_list(ca, cli_opt_value(args, "tenant"), &rows, &count) != TS_OK) {
        status = cli_fail();
    }
    for (size_t i = 0; status == CLI_EXIT_OK && i < count; i++) {
        cli_time_text(rows[i].created, created);
        printf("%s\t%zu\t%s\n", rows[i].name, rows[i].members, created);
    }
    OPENSSL_free(rows);
    ts_ca_free(ca);
    return status;
}

static int cmd_show(const cli_args *args)
{
    const char *name = NULL;
    ts_group_row g;
    ts_group_member *members = NULL;
    size_t n = 0;
    char created[32], added[32];
    ts_ca *ca = NULL;
    int status = name_check(args, &name);

    if (status != CLI_EXIT_OK) {
        return status;
    }
    if (cli_remote_wanted(args)) {
        return remote_one(args, name, "GET");
    }
    status = cli_instance_open(args, &ca);
    if (status != CLI_EXIT_OK) {
        return status;
    }
    if (ts_ca_group_get(ca, cli_opt_value(args, "tenant"), name, &g, &members, &n) != TS_OK) {
        status = cli_fail();
    } else {
        const char *tenant = cli_opt_value(args, "tenant");
        cli_time_text(g.created, created);
        printf("name:         %s\ntenant:       %s\nmembers:      %zu\ncreated:      %s\n", g.name,
               tenant != NULL ? tenant : TS_DEFAULT_TENANT, g.members, created);
        for (size_t i = 0; i < n; i++) {
            cli_time_text(members[i].added, added);
            printf("  %s\t%s\n", members[i].uid, added);
        }
    }
    OPENSSL_free(members);
    ts_ca_free(ca);
    return status;
}

/* create or delete */
static int create_or_delete(const cli_args *args, int create)
{
    const char *name = NULL;
    ts_ca *ca = NULL;
    int status = name_check(args, &name);

    if (status != CLI_EXIT_OK) {
        return status;
    }
    if (cli_remote_wanted(args)) {
        return remote_one(args, name, create ? "POST" : "DELETE");
    }
    status = cli_instance_open(args, &ca);
    if (status == CLI_EXIT_OK) {
        const char *tenant = cli_opt_value(args, "tenant");
        ts_err rv = create ? ts_ca_group_create(ca, tenant, name, NULL)
                           : ts_ca_group_delete(ca, tenant, name);
        if (rv != TS_OK) {
            status = cli_fail();
        } else {
            printf("group %s %s in tenant %s\n", name, create ? "created" : "deleted",
                   tenant != NULL ? tenant : TS_DEFAULT_TENANT);
        }
    }
    ts_ca_free(ca);
    return status;
}

static int cmd_create(const cli_args *args)
{
    return create_or_delete(args, 1);
}

static int cmd_delete(const cli_args *args)
{
    return create_or_delete(args, 0);
}

static int members_change(const cli_args *args, int add)
{
    const char *name = NULL;
    const char *const *uids = NULL;
    size_t n = 0;
    ts_group_row g;
    ts_ca *ca = NULL;
    int status = name_check(args, &name);

    if (status == CLI_EXIT_OK) {
        status = devices_check(args, &uids, &n);
    }
    if (status != CLI_EXIT_OK) {
        return status;
    }
    if (cli_remote_wanted(args)) {
        return remote_members(args, name, uids, n, add);
    }
    status = cli_instance_open(args, &ca);
    if (status == CLI_EXIT_OK) {
        const char *tenant = cli_opt_value(args, "tenant");
        ts_err rv = add ? ts_ca_group_add(ca, tenant, name, uids, n)
                        : ts_ca_group_remove(ca, tenant, name, uids, n);
        if (rv == TS_OK) {
            rv = ts_ca_group_get(ca, tenant, name, &g, NULL, NULL);
        }
        if (rv != TS_OK) {
            status = cli_fail();
        } else {
            printf("group %s: %zu device(s) %s, %zu member(s)\n", name, n,
                   add ? "added" : "removed", g.members);
        }
    }
    ts_ca_free(ca);
    return status;
}

static int cmd_add(const cli_args *args)
{
    return members_change(args, 1);
}

static int cmd_remove(const cli_args *args)
{
    return members_change(args, 0);
}

const cli_command cli_group_commands[] = {
    {.name = "list",
     .summary = "List the device groups of a tenant: name, members, created (tab-separated)",
     .opts = list_opts,
     .run = cmd_list,
     .help = CLI_REMOTE_HELP},
    {.name = "show",
     .summary = "Show a device group and its devices (uid, added)",
     .opts = name_opts,
     .run = cmd_show,
     .help = CLI_REMOTE_HELP},
    {.name = "create",
     .summary = "Create an empty device group",
     .opts = name_opts,
     .run = cmd_create,
     .help = "A name is 1 to 64 of A-Z a-z 0-9 . _ - (not starting with . or -).\n\n"
             "Example:\n  tessera group create lot-7 --tenant acme\n\n" CLI_REMOTE_HELP},
    {.name = "delete",
     .summary = "Delete a device group (its devices stay registered)",
     .opts = name_opts,
     .run = cmd_delete,
     .help = CLI_REMOTE_HELP},
    {.name = "add",
     .summary = "Add registered devices to a group",
     .opts = member_opts,
     .run = cmd_add,
     .help = "All or none: an unregistered device, or one that is a member already, adds none.\n\n"
             "Example:\n  tessera group add lot-7 --device dev-0001 --device dev-0002\n\n"
             "Then:\n  tessera job create --group lot-7 --reenroll\n\n" CLI_REMOTE_HELP},
    {.name = "remove",
     .summary = "Remove devices from a group",
     .opts = member_opts,
     .run = cmd_remove,
     .help = "All or none: a device that is not a member removes none.\n\n" CLI_REMOTE_HELP},
    {0},
};
