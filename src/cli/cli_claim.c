/*
 * tessera claim: claim codes for zero-touch enrollment (docs/access.md). create prints the code
 * once, as its last line, and wipes it; the instance keeps only its hash. list and revoke work
 * on the codes of a tenant. Each command works on --dir or, in remote mode, on --server.
 */
#include <string.h>

#include <openssl/crypto.h>

#include "cli/cli_remote.h"
#include "tessera/access.h"

enum {
    USES_MAX = 1000000,
    LIFETIME_MAX = 366 * 86400, /* a year and a day */
};

#define OPT_ID                                                                                     \
    {                                                                                              \
        .name = "id", .value = "ID", .flags = CLI_OPT_REQUIRED,                                    \
        .help = "the claim code's id, as claim list shows it (also positional)"                    \
    }

static const cli_opt create_opts[] = {
    CLI_OPT_DIR,
    CLI_OPT_TENANT,
    {.name = "uses", .value = "N", .help = "how many devices may claim with it (default 1)"},
    {.name = "expires",
     .value = "DURATION",
     .help = "lifetime: 30s, 15m, 12h, 7d (default 7d, at most 366d)"},
    {.name = "profile", .value = "NAME", .help = "the profile it enrolls under (default device)"},
    CLI_OPTS_REMOTE,
    {0},
};

static const cli_opt list_opts[] = {
    CLI_OPT_DIR,
    CLI_OPT_TENANT,
    CLI_OPTS_REMOTE,
    {0},
};

static const cli_opt revoke_opts[] = {
    CLI_OPT_DIR, OPT_ID, CLI_OPT_TENANT, CLI_OPTS_REMOTE, {0},
};

static const char *tenant_or_default(const cli_args *args)
{
    const char *t = cli_opt_value(args, "tenant");
    return t != NULL ? t : TS_DEFAULT_TENANT;
}

/* What a code can do now: revoked, used up, expired, or active. */
static const char *claim_state(int revoked, int64_t uses_left, const char *expires, const char *now)
{
    if (revoked) {
        return "revoked";
    }
    if (uses_left <= 0) {
        return "used";
    }
    /* Both are RFC 3339 UTC times of the same form, which sort as text. */
    return strcmp(expires, now) <= 0 ? "expired" : "active";
}

static void print_created(const char *id, const char *tenant, const char *profile, const char *uses,
                          const char *expires, const char *code)
{
    printf("claim:    %s\ntenant:   %s\nprofile:  %s\nuses:     %s\nexpires:  %s\n", id, tenant,
           profile, uses, expires);
    /* The code alone on the last line, so `tail -n1` picks it up. */
    printf("%s\n", code);
    fflush(stdout);
}

static int parse_create(const cli_args *args, ts_claim_params *p)
{
    const char *uses = cli_opt_value(args, "uses");
    const char *expires = cli_opt_value(args, "expires");
    uint64_t n = 0;

    memset(p, 0, sizeof *p);
    if (uses != NULL && (cli_parse_u64(uses, &n) != 0 || n == 0 || n > USES_MAX)) {
        return cli_usage_error(args, "--uses: a number from 1 to %d, not '%s'", USES_MAX, uses);
    }
    if (expires != NULL && cli_parse_duration(expires, LIFETIME_MAX, &p->lifetime_seconds) != 0) {
        return cli_usage_error(args,
                               "--expires: a duration such as 30s, 15m, 12h or 7d, from 1s to "
                               "366d, not '%s'",
                               expires);
    }
    p->uses = (unsigned)n;
    p->tenant = cli_opt_value(args, "tenant");
    p->profile = cli_opt_value(args, "profile");
    return CLI_EXIT_OK;
}

static int id_parse(const cli_args *args, int64_t *id)
{
    const char *text = cli_opt_value(args, "id");
    uint64_t v = 0;

    if (cli_parse_u64(text, &v) != 0 || v == 0 || v > INT64_MAX) {
        return cli_usage_error(args, "--id: a claim code's id (a positive number), not '%s'", text);
    }
    *id = (int64_t)v;
    return CLI_EXIT_OK;
}

/* --- remote ------------------------------------------------------------------------------------
 */

static int remote_create(const cli_args *args, const ts_claim_params *p)
{
    char tenant[TS_TENANT_NAME_MAX + 1], path[512], id[24] = "?", uses[24];
    cli_remote *rm = NULL;
    json_t *body = json_object(), *reply = NULL;
    int64_t v = 0;
    int status =
        cli_remote_begin(args, "/api/v1/tenants/%s/claims", NULL, &rm, tenant, path, sizeof path);

    if (status != CLI_EXIT_OK || body == NULL) {
        status = status != CLI_EXIT_OK ? status : CLI_EXIT_FAIL;
        goto done;
    }
    if ((p->uses > 0 && json_object_set_new(body, "uses", json_integer(p->uses)) != 0) ||
        (p->lifetime_seconds > 0 &&
         json_object_set_new(body, "lifetime_seconds", json_integer(p->lifetime_seconds)) != 0) ||
        (p->profile != NULL &&
         json_object_set_new(body, "profile", json_string(p->profile)) != 0)) {
        fprintf(stderr, "tessera: out of memory\n");
        status = CLI_EXIT_FAIL;
        goto done;
    }
    status = cli_remote_call(rm, "POST", path, body, &reply);
    if (status != CLI_EXIT_OK) {
        goto done;
    }
    const char *code = cli_json_str(reply, "code", NULL);
    if (code == NULL) {
        fprintf(stderr, "tessera: the server's reply carries no claim code\n");
        status = CLI_EXIT_FAIL;
        goto done;
    }
    if (cli_json_i64(reply, "id", &v) == 0) {
        snprintf(id, sizeof id, "%lld", (long long)v);
    }
    snprintf(uses, sizeof uses, "%u", p->uses > 0 ? p->uses : 1);
    if (cli_json_i64(reply, "uses_max", &v) == 0) {
        snprintf(uses, sizeof uses, "%lld", (long long)v);
    }
    print_created(id, tenant, cli_json_str(reply, "profile", p->profile ? p->profile : "device"),
                  uses, cli_json_str(reply, "expires", "?"), code);
done:
    cli_json_wipe(reply, "code");
    json_decref(reply);
    json_decref(body);
    cli_remote_free(rm);
    return status;
}

static int remote_list(const cli_args *args)
{
    char tenant[TS_TENANT_NAME_MAX + 1], path[512], now[32];
    cli_remote *rm = NULL;
    json_t *items = NULL, *row = NULL;
    size_t i = 0;
    int status =
        cli_remote_begin(args, "/api/v1/tenants/%s/claims", NULL, &rm, tenant, path, sizeof path);

    if (status == CLI_EXIT_OK) {
        status = cli_remote_list(rm, path, 0, &items);
    }
    cli_time_text(time(NULL), now);
    json_array_foreach(items, i, row)
    {
        int64_t id = 0, max = 0, left = 0;
        const char *expires = cli_json_str(row, "expires", "");
        (void)cli_json_i64(row, "id", &id);
        (void)cli_json_i64(row, "uses_max", &max);
        (void)cli_json_i64(row, "uses_left", &left);
        int revoked = cli_json_str(row, "revoked_at", NULL) != NULL;
        printf("%lld\t%s\t%s\t%lld/%lld\t%s\t%s\n", (long long)id, cli_json_str(row, "prefix", "?"),
               cli_json_str(row, "profile", "?"), (long long)left, (long long)max, expires,
               claim_state(revoked, left, expires, now));
    }
    json_decref(items);
    cli_remote_free(rm);
    return status;
}

/* --- local ------------------------------------------------------------------------------------ */

static int cmd_create(const cli_args *args)
{
    ts_claim_params p;
    ts_claim_row row;
    char code[TS_CLAIM_CODE_MAX], id[24], uses[24], expires[32];
    ts_ca *ca = NULL;
    int status = parse_create(args, &p);

    if (status != CLI_EXIT_OK) {
        return status;
    }
    if (cli_remote_wanted(args)) {
        return remote_create(args, &p);
    }
    status = cli_instance_open(args, &ca);
    if (status != CLI_EXIT_OK) {
        return status;
    }
    if (ts_ca_claim_create(ca, &p, code, &row) != TS_OK) {
        status = cli_fail();
    } else {
        snprintf(id, sizeof id, "%lld", (long long)row.id);
        snprintf(uses, sizeof uses, "%u", row.uses_max);
        cli_time_text(row.expires, expires);
        print_created(id, tenant_or_default(args), row.profile, uses, expires, code);
    }
    OPENSSL_cleanse(code, sizeof code);
    ts_ca_free(ca);
    return status;
}

static int cmd_list(const cli_args *args)
{
    ts_claim_row *rows = NULL;
    size_t count = 0;
    char now[32], expires[32];
    ts_ca *ca = NULL;
    int status;

    if (cli_remote_wanted(args)) {
        return remote_list(args);
    }
    status = cli_instance_open(args, &ca);
    if (status != CLI_EXIT_OK) {
        return status;
    }
    if (ts_ca_claim_list(ca, cli_opt_value(args, "tenant"), &rows, &count) != TS_OK) {
        status = cli_fail();
    }
    cli_time_text(time(NULL), now);
    for (size_t i = 0; status == CLI_EXIT_OK && i < count; i++) {
        cli_time_text(rows[i].expires, expires);
        printf("%lld\t%s\t%s\t%u/%u\t%s\t%s\n", (long long)rows[i].id, rows[i].prefix,
               rows[i].profile, rows[i].uses_left, rows[i].uses_max, expires,
               claim_state(rows[i].revoked_at != 0, rows[i].uses_left, expires, now));
    }
    OPENSSL_free(rows);
    ts_ca_free(ca);
    return status;
}

static int cmd_revoke(const cli_args *args)
{
    int64_t id = 0;
    ts_ca *ca = NULL;
    int status = id_parse(args, &id);

    if (status != CLI_EXIT_OK) {
        return status;
    }
    if (cli_remote_wanted(args)) {
        return cli_remote_revoke_id(args, "claims", "claim code", id);
    }
    status = cli_instance_open(args, &ca);
    if (status != CLI_EXIT_OK) {
        return status;
    }
    if (ts_ca_claim_revoke(ca, cli_opt_value(args, "tenant"), id) != TS_OK) {
        status = cli_fail();
    } else {
        printf("claim code %lld revoked\n", (long long)id);
    }
    ts_ca_free(ca);
    return status;
}

static const char claim_help[] =
    "The code is printed once, on the last line, and stored only as its SHA-256. A device\n"
    "enrolls with it over EST (HTTP Basic, the code as password); each enrollment uses one of\n"
    "its uses and registers the device. Revoked, used-up and expired codes are refused.\n"
    "\n"
    "Example:\n"
    "  code=$(tessera claim create --tenant acme --uses 10 --expires 12h | tail -n1)\n"
    "\n" CLI_REMOTE_HELP;

const cli_command cli_claim_commands[] = {
    {.name = "create",
     .summary = "Make a claim code; prints its id and limits, then the code as the last line",
     .opts = create_opts,
     .run = cmd_create,
     .help = claim_help},
    {.name = "list",
     .summary = "List claim codes: id, prefix, profile, uses left/max, expires, state",
     .opts = list_opts,
     .run = cmd_list,
     .help = CLI_REMOTE_HELP},
    {.name = "revoke",
     .summary = "Revoke a claim code so no device can use it any more",
     .opts = revoke_opts,
     .run = cmd_revoke,
     .help = "Example:\n  tessera claim revoke 12 --tenant acme\n\n" CLI_REMOTE_HELP},
    {0},
};
