/*
 * tessera token: API tokens of a user. create prints the token once, as its last line, and wipes
 * it; the instance keeps only its hash. A token expires (90 days unless --expires says otherwise)
 * and can be revoked. Each command works on --dir or, for users of a tenant, in remote mode on
 * --server.
 */
#include <string.h>

#include <openssl/crypto.h>

#include "cli/cli_remote.h"
#include "tessera/access.h"

enum {
    LIFETIME_MAX = 366 * 86400, /* a year and a day: tokens are rotated at least yearly */
};

#define OPT_ID                                                                                     \
    {                                                                                              \
        .name = "id", .value = "ID", .flags = CLI_OPT_REQUIRED,                                    \
        .help = "the token's id, as token list shows it (also positional)"                         \
    }

static const cli_opt create_opts[] = {
    CLI_OPT_DIR,
    {.name = "user", .value = "NAME", .flags = CLI_OPT_REQUIRED, .help = "the token's user"},
    CLI_OPT_TENANT,
    CLI_OPT_INSTANCE,
    {.name = "name", .value = "WHAT", .help = "what the token is for (default: cli)"},
    {.name = "expires",
     .value = "DURATION",
     .help = "lifetime: 30s, 15m, 12h, 7d (default 90d, at most 366d)"},
    CLI_OPTS_REMOTE,
    {0},
};

static const cli_opt list_opts[] = {
    CLI_OPT_DIR,      CLI_OPT_TENANT,
    CLI_OPT_INSTANCE, {.name = "user", .value = "NAME", .help = "only this user's tokens"},
    CLI_OPTS_REMOTE,  {0},
};

static const cli_opt revoke_opts[] = {
    CLI_OPT_DIR, OPT_ID, CLI_OPT_TENANT, CLI_OPT_INSTANCE, CLI_OPTS_REMOTE, {0},
};

static const char *token_state(int revoked, const char *expires, const char *now)
{
    if (revoked) {
        return "revoked";
    }
    /* Both are RFC 3339 UTC times of the same form, which sort as text. */
    return strcmp(expires, now) <= 0 ? "expired" : "active";
}

static void print_token_line(const char *id, const char *prefix, const char *user, const char *name,
                             const char *expires, int revoked, const char *now)
{
    printf("%s\t%s\t%s\t%s\t%s\t%s\n", id, prefix, user, name[0] != '\0' ? name : "-", expires,
           token_state(revoked, expires, now));
}

static void print_created(const char *id, const char *user, const char *tenant, const char *name,
                          const char *expires, const char *token)
{
    printf("token:    %s\nuser:     %s\ntenant:   %s\nname:     %s\nexpires:  %s\n", id, user,
           tenant != NULL ? tenant : "*", name, expires);
    /* The token alone on the last line, so `tail -n1` picks it up. */
    printf("%s\n", token);
    fflush(stdout);
}

static int id_parse(const cli_args *args, int64_t *id)
{
    const char *text = cli_opt_value(args, "id");
    uint64_t v = 0;

    if (cli_parse_u64(text, &v) != 0 || v == 0 || v > INT64_MAX) {
        return cli_usage_error(args, "--id: a token's id (a positive number), not '%s'", text);
    }
    *id = (int64_t)v;
    return CLI_EXIT_OK;
}

/* --- remote ------------------------------------------------------------------------------------
 */

static int remote_create(const cli_args *args, const char *name, int64_t lifetime)
{
    char tenant[TS_TENANT_NAME_MAX + 1], path[512], id[24] = "?";
    const char *user = cli_opt_value(args, "user");
    cli_remote *rm = NULL;
    json_t *body = json_pack("{s:s, s:s}", "user", user, "name", name), *reply = NULL;
    int64_t v = 0;
    int status = body != NULL ? cli_remote_begin(args, "/api/v1/tenants/%s/tokens", NULL, &rm,
                                                 tenant, path, sizeof path)
                              : CLI_EXIT_FAIL;

    if (status == CLI_EXIT_OK && lifetime > 0 &&
        json_object_set_new(body, "lifetime_seconds", json_integer(lifetime)) != 0) {
        status = CLI_EXIT_FAIL;
    }
    if (status == CLI_EXIT_OK) {
        status = cli_remote_call(rm, "POST", path, body, &reply);
    }
    if (status != CLI_EXIT_OK) {
        goto done;
    }
    const char *token = cli_json_str(reply, "token", NULL);
    if (token == NULL) {
        fprintf(stderr, "tessera: the server's reply carries no token\n");
        status = CLI_EXIT_FAIL;
        goto done;
    }
    if (cli_json_i64(reply, "id", &v) == 0) {
        snprintf(id, sizeof id, "%lld", (long long)v);
    }
    print_created(id, cli_json_str(reply, "user", user), tenant, cli_json_str(reply, "name", name),
                  cli_json_str(reply, "expires", "?"), token);
done:
    cli_json_wipe(reply, "token");
    json_decref(reply);
    json_decref(body);
    cli_remote_free(rm);
    return status;
}

static int remote_list(const cli_args *args)
{
    char tenant[TS_TENANT_NAME_MAX + 1], path[512], now[32], id[24];
    const char *user = cli_opt_value(args, "user");
    cli_remote *rm = NULL;
    json_t *items = NULL, *row = NULL;
    size_t i = 0;
    int status =
        cli_remote_begin(args, "/api/v1/tenants/%s/tokens", NULL, &rm, tenant, path, sizeof path);

    if (status == CLI_EXIT_OK && user != NULL) {
        status = cli_remote_query(path, sizeof path, "user", user);
    }
    if (status == CLI_EXIT_OK) {
        status = cli_remote_list(rm, path, 0, &items);
    }
    cli_time_text(time(NULL), now);
    json_array_foreach(items, i, row)
    {
        int64_t v = 0;
        const char *row_user = cli_json_str(row, "user", "?");
        if (user != NULL && strcmp(user, row_user) != 0) {
            continue;
        }
        (void)cli_json_i64(row, "id", &v);
        snprintf(id, sizeof id, "%lld", (long long)v);
        print_token_line(id, cli_json_str(row, "prefix", "?"), row_user,
                         cli_json_str(row, "name", ""), cli_json_str(row, "expires", "?"),
                         cli_json_str(row, "revoked_at", NULL) != NULL, now);
    }
    json_decref(items);
    cli_remote_free(rm);
    return status;
}

/* --- local ------------------------------------------------------------------------------------ */

static int cmd_create(const cli_args *args)
{
    const char *expires_text = cli_opt_value(args, "expires");
    const char *name = cli_opt_given(args, "name") ? cli_opt_value(args, "name") : "cli";
    const char *tenant = NULL;
    int64_t lifetime = 0;
    char token[TS_TOKEN_MAX], id[24], expires[32];
    ts_token_row row;
    ts_ca *ca = NULL;
    int status = cli_access_scope(args, &tenant);

    if (status != CLI_EXIT_OK) {
        return status;
    }
    if (expires_text != NULL && cli_parse_duration(expires_text, LIFETIME_MAX, &lifetime) != 0) {
        return cli_usage_error(args,
                               "--expires: a duration such as 30s, 15m, 12h or 7d, from 1s to "
                               "366d, not '%s'",
                               expires_text);
    }
    if (cli_remote_wanted(args)) {
        return remote_create(args, name, lifetime);
    }
    status = cli_instance_open(args, &ca);
    if (status != CLI_EXIT_OK) {
        return status;
    }
    if (ts_ca_token_create(ca, tenant, cli_opt_value(args, "user"), name, lifetime, token, &row) !=
        TS_OK) {
        status = cli_fail();
    } else {
        snprintf(id, sizeof id, "%lld", (long long)row.id);
        cli_time_text(row.expires, expires);
        print_created(id, row.user, tenant, row.name, expires, token);
    }
    OPENSSL_cleanse(token, sizeof token);
    ts_ca_free(ca);
    return status;
}

static int cmd_list(const cli_args *args)
{
    const char *tenant = NULL;
    ts_token_row *rows = NULL;
    size_t count = 0;
    char now[32], expires[32], id[24];
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
    if (ts_ca_token_list(ca, tenant, cli_opt_value(args, "user"), &rows, &count) != TS_OK) {
        status = cli_fail();
    }
    cli_time_text(time(NULL), now);
    for (size_t i = 0; status == CLI_EXIT_OK && i < count; i++) {
        snprintf(id, sizeof id, "%lld", (long long)rows[i].id);
        cli_time_text(rows[i].expires, expires);
        print_token_line(id, rows[i].prefix, rows[i].user, rows[i].name, expires,
                         rows[i].revoked_at != 0, now);
    }
    OPENSSL_free(rows);
    ts_ca_free(ca);
    return status;
}

static int cmd_revoke(const cli_args *args)
{
    const char *tenant = NULL;
    int64_t id = 0;
    ts_ca *ca = NULL;
    int status = cli_access_scope(args, &tenant);

    if (status == CLI_EXIT_OK) {
        status = id_parse(args, &id);
    }
    if (status != CLI_EXIT_OK) {
        return status;
    }
    if (cli_remote_wanted(args)) {
        return cli_remote_revoke_id(args, "tokens", "token", id);
    }
    status = cli_instance_open(args, &ca);
    if (status != CLI_EXIT_OK) {
        return status;
    }
    if (ts_ca_token_revoke(ca, tenant, id) != TS_OK) {
        status = cli_fail();
    } else {
        printf("token %lld revoked\n", (long long)id);
    }
    ts_ca_free(ca);
    return status;
}

static const char token_help[] =
    "The token is printed once, on the last line, and stored only as its SHA-256. Send it as\n"
    "\"Authorization: Bearer TOKEN\" to the REST API, or give it to the CLI's remote mode with\n"
    "$TESSERA_TOKEN (a --token on the command line is visible to other local users).\n"
    "Tokens of an instance-wide user take --instance.\n"
    "\n"
    "Example:\n"
    "  export TESSERA_TOKEN=$(tessera token create --user alice --tenant acme | tail -n1)\n"
    "\n" CLI_REMOTE_HELP;

const cli_command cli_token_commands[] = {
    {.name = "create",
     .summary = "Make an API token for a user; prints its id, then the token as the last line",
     .opts = create_opts,
     .run = cmd_create,
     .help = token_help},
    {.name = "list",
     .summary = "List tokens: id, prefix, user, name, expires, state (tab-separated)",
     .opts = list_opts,
     .run = cmd_list,
     .help = token_help},
    {.name = "revoke",
     .summary = "Revoke a token: it stops authenticating at once",
     .opts = revoke_opts,
     .run = cmd_revoke,
     .help = token_help},
    {0},
};
