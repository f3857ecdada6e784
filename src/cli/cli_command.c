/*
 * tessera device command UID NAME [ARGS...]: queues a signed remote command for a device
 * (docs/commands.md), prints "command ID seq N" and, unless --wait 0, waits for its result:
 * "done: OUTPUT" (exit 0), or "failed: ERROR", "refused: ERROR", "expired", "no result within
 * N s" (exit 1). tessera device commands UID lists a device's commands. Both work on --dir or,
 * in remote mode, on --server.
 */
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "cli/cli_command.h"
#include "cli/cli_remote.h"
#include "tessera/commands.h"

enum {
    WAIT_DEFAULT_S = 30,
    WAIT_MAX_S = 7 * 24 * 3600,
    POLL_MS = 250,
};

const cli_opt cli_command_opts[] = {
    CLI_OPT_DIR,
    {.name = "word",
     .value = "WORD",
     .flags = CLI_OPT_REPEAT | CLI_OPT_REQUIRED,
     .help = "UID NAME [ARGS...] (positional)"},
    CLI_OPT_TENANT,
    {.name = "ttl", .value = "SECONDS", .help = "how long the command stays valid (300)"},
    {.name = "wait",
     .value = "SECONDS",
     .help = "wait this long for the result (30; 0: do not wait)"},
    CLI_OPTS_REMOTE,
    {0},
};

const cli_opt cli_commands_opts[] = {
    CLI_OPT_DIR,
    {.name = "uid",
     .value = "UID",
     .flags = CLI_OPT_REQUIRED,
     .help = "the device's UID (also positional)"},
    CLI_OPT_TENANT,
    CLI_OPTS_REMOTE,
    {0},
};

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Prints the final line for a state; returns the exit status, or -1 while it is not final. */
static int final_line(const char *state, const char *output, const char *error)
{
    if (strcmp(state, "done") == 0) {
        printf("done: %s\n", output);
        return CLI_EXIT_OK;
    }
    if (strcmp(state, "failed") == 0 || strcmp(state, "refused") == 0) {
        printf("%s: %s\n", state, error);
        return CLI_EXIT_FAIL;
    }
    if (strcmp(state, "expired") == 0) {
        printf("expired\n");
        return CLI_EXIT_FAIL;
    }
    return -1;
}

/* --- remote ---------------------------------------------------------------------------------- */

static int remote_command(const cli_args *args, const char *uid, const char *name,
                          const char *const *argv, size_t argc, int64_t ttl, uint64_t wait)
{
    char tenant[TS_TENANT_NAME_MAX + 1], path[512], one[640];
    cli_remote *rm = NULL;
    json_t *reply = NULL, *body = json_object(), *list = json_array();
    int status = body != NULL && list != NULL ? CLI_EXIT_OK : CLI_EXIT_FAIL;

    for (size_t i = 0; status == CLI_EXIT_OK && i < argc; i++) {
        if (json_array_append_new(list, json_string(argv[i])) != 0) {
            status = CLI_EXIT_FAIL;
        }
    }
    if (status == CLI_EXIT_OK &&
        (json_object_set_new(body, "name", json_string(name)) != 0 ||
         json_object_set(body, "args", list) != 0 ||
         (ttl > 0 && json_object_set_new(body, "ttl", json_integer(ttl)) != 0))) {
        status = CLI_EXIT_FAIL;
    }
    if (status == CLI_EXIT_OK) {
        status = cli_remote_begin(args, "/api/v1/tenants/%s/devices/%s/commands", uid, &rm, tenant,
                                  path, sizeof path);
    }
    if (status == CLI_EXIT_OK) {
        status = cli_remote_call(rm, "POST", path, body, &reply);
    }
    const char *id = cli_json_str(reply, "id", "?");
    int64_t seq = 0;
    if (status == CLI_EXIT_OK) {
        (void)cli_json_i64(reply, "seq", &seq);
        printf("command %s seq %lld\n", id, (long long)seq);
        fflush(stdout);
        status = cli_remote_path(one, sizeof one, "/api/v1/tenants/%s/devices/%s/commands/%s",
                                 tenant, uid, id);
    }
    int64_t deadline = now_ms() + (int64_t)wait * 1000;
    while (status == CLI_EXIT_OK && wait > 0) {
        json_t *cur = NULL;
        status = cli_remote_call(rm, "GET", one, NULL, &cur);
        if (status == CLI_EXIT_OK) {
            int done = final_line(cli_json_str(cur, "status", "?"), cli_json_str(cur, "output", ""),
                                  cli_json_str(cur, "error", ""));
            json_decref(cur);
            if (done >= 0) {
                status = done;
                break;
            }
        }
        if (status == CLI_EXIT_OK && now_ms() >= deadline) {
            printf("no result within %llu s\n", (unsigned long long)wait);
            status = CLI_EXIT_FAIL;
        }
        if (status == CLI_EXIT_OK) {
            sleep_ms(POLL_MS);
        }
    }
    json_decref(reply);
    json_decref(body);
    json_decref(list);
    cli_remote_free(rm);
    return status;
}

static int remote_list(const cli_args *args, const char *uid)
{
    char tenant[TS_TENANT_NAME_MAX + 1], path[512];
    cli_remote *rm = NULL;
    json_t *items = NULL, *row = NULL;
    size_t i = 0;
    int status = cli_remote_begin(args, "/api/v1/tenants/%s/devices/%s/commands", uid, &rm, tenant,
                                  path, sizeof path);
    if (status == CLI_EXIT_OK) {
        status = cli_remote_list(rm, path, 0, &items);
    }
    json_array_foreach(items, i, row)
    {
        int64_t seq = 0;
        (void)cli_json_i64(row, "seq", &seq);
        printf("%s\t%lld\t%s\t%s\t%s\n", cli_json_str(row, "id", "?"), (long long)seq,
               cli_json_str(row, "name", "?"), cli_json_str(row, "status", "?"),
               cli_json_str(row, "issued", "?"));
    }
    json_decref(items);
    cli_remote_free(rm);
    return status;
}

/* --- local ----------------------------------------------------------------------------------- */

static int local_wait(ts_ca *ca, const ts_command_row *row, uint64_t wait)
{
    int64_t deadline = now_ms() + (int64_t)wait * 1000;
    for (;;) {
        ts_command_row cur;
        if (ts_ca_command_get(ca, row->cmd.tenant, row->cmd.uid, row->cmd.id, &cur) != TS_OK) {
            return cli_fail();
        }
        int done = final_line(ts_command_state_name(cur.state), cur.output, cur.error);
        if (done >= 0) {
            return done;
        }
        if (time(NULL) > (time_t)cur.cmd.expires) {
            return final_line("expired", "", "");
        }
        if (now_ms() >= deadline) {
            printf("no result within %llu s\n", (unsigned long long)wait);
            return CLI_EXIT_FAIL;
        }
        sleep_ms(POLL_MS);
    }
}

int cli_command_run(const cli_args *args)
{
    const char *const *words = NULL;
    size_t n = cli_opt_values(args, "word", &words);
    uint64_t ttl = 0, wait = WAIT_DEFAULT_S;
    char json[TS_COMMAND_ARGS_MAX + 1];

    if (n < 2) {
        return cli_usage_error(args, "give the device's UID and the command's NAME");
    }
    if (ts_device_uid_check(words[0]) != TS_OK || ts_command_name_check(words[1]) != TS_OK) {
        return cli_usage_error(args, "%s", ts_error_message());
    }
    const char *t = cli_opt_value(args, "ttl");
    if (t != NULL && (cli_parse_u64(t, &ttl) != 0 || ttl < 1 || ttl > TS_COMMAND_TTL_MAX)) {
        return cli_usage_error(args, "--ttl: 1 to %d seconds", TS_COMMAND_TTL_MAX);
    }
    const char *w = cli_opt_value(args, "wait");
    if (w != NULL && (cli_parse_u64(w, &wait) != 0 || wait > WAIT_MAX_S)) {
        return cli_usage_error(args, "--wait: 0 to %d seconds", WAIT_MAX_S);
    }
    if (ts_command_args_from_argv((int)(n - 2), words + 2, json) != TS_OK) {
        return cli_usage_error(args, "%s", ts_error_message());
    }
    if (cli_remote_wanted(args)) {
        return remote_command(args, words[0], words[1], words + 2, n - 2, (int64_t)ttl, wait);
    }
    ts_ca *ca = NULL;
    int status = cli_instance_open(args, &ca);
    if (status != CLI_EXIT_OK) {
        return status;
    }
    ts_command_spec spec = {.tenant = cli_opt_value(args, "tenant"),
                            .device_uid = words[0],
                            .name = words[1],
                            .args = json,
                            .ttl = (int64_t)ttl};
    ts_command_row row;
    if (ts_ca_command_create(ca, &spec, &row) != TS_OK) {
        status = cli_fail();
    } else {
        printf("command %s seq %llu\n", row.cmd.id, (unsigned long long)row.cmd.seq);
        fflush(stdout);
        if (wait > 0) {
            status = local_wait(ca, &row, wait);
        }
    }
    ts_ca_free(ca);
    return status;
}

int cli_commands_run(const cli_args *args)
{
    const char *uid = cli_opt_value(args, "uid");
    ts_command_row *rows = NULL;
    size_t count = 0;
    char issued[32];

    if (ts_device_uid_check(uid) != TS_OK) {
        return cli_usage_error(args, "--uid: %s", ts_error_message());
    }
    if (cli_remote_wanted(args)) {
        return remote_list(args, uid);
    }
    ts_ca *ca = NULL;
    int status = cli_instance_open(args, &ca);
    if (status != CLI_EXIT_OK) {
        return status;
    }
    if (ts_ca_command_list(ca, cli_opt_value(args, "tenant"), uid, 0, TS_COMMAND_LIST_MAX, &rows,
                           &count) != TS_OK) {
        status = cli_fail();
    }
    for (size_t i = 0; status == CLI_EXIT_OK && i < count; i++) {
        cli_time_text((time_t)rows[i].cmd.issued, issued);
        printf("%s\t%llu\t%s\t%s\t%s\n", rows[i].cmd.id, (unsigned long long)rows[i].cmd.seq,
               rows[i].cmd.name, ts_command_state_name(rows[i].state), issued);
    }
    OPENSSL_free(rows);
    ts_ca_free(ca);
    return status;
}
