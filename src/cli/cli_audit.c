/*
 * tessera audit: the hash-chained audit log. list prints entries; verify walks the whole chain
 * and names the first entry that was edited, deleted or moved.
 */
#include <string.h>

#include "cli/cli_remote.h"

enum { LIMIT_DEFAULT = 0 };

static const cli_opt list_opts[] = {
    CLI_OPT_DIR,
    {.name = "after", .value = "ID", .help = "only entries after this id"},
    {.name = "limit", .value = "N", .help = "at most N entries"},
    CLI_OPTS_REMOTE,
    {0},
};

static const cli_opt verify_opts[] = {
    CLI_OPT_DIR,
    CLI_OPTS_REMOTE,
    {0},
};

static int cmd_list(const cli_args *args)
{
    const char *after_text = cli_opt_value(args, "after");
    const char *limit_text = cli_opt_value(args, "limit");
    uint64_t after = 0, limit = LIMIT_DEFAULT;
    ts_audit_row *rows = NULL;
    size_t count = 0;
    ts_ca *ca = NULL;
    char when[32];
    int status;

    if (after_text != NULL && (cli_parse_u64(after_text, &after) != 0 || after > INT64_MAX)) {
        return cli_usage_error(args, "--after: an entry id");
    }
    if (limit_text != NULL && (cli_parse_u64(limit_text, &limit) != 0 || limit > SIZE_MAX)) {
        return cli_usage_error(args, "--limit: a number of entries");
    }
    if (cli_remote_wanted(args)) {
        return cli_remote_audit_list(args, (int64_t)after, (size_t)limit);
    }
    status = cli_instance_open(args, &ca);
    if (status != CLI_EXIT_OK) {
        return status;
    }
    if (ts_store_audit_list(ts_ca_store(ca), (int64_t)after, (size_t)limit, &rows, &count) !=
        TS_OK) {
        status = cli_fail();
    }
    for (size_t i = 0; status == CLI_EXIT_OK && i < count; i++) {
        cli_time_text(rows[i].time, when);
        printf("%lld\t%s\t%s\t%s\t%s\t%s\n", (long long)rows[i].id, when, rows[i].actor,
               rows[i].action, rows[i].object, rows[i].details != NULL ? rows[i].details : "{}");
    }
    ts_audit_rows_free(rows, count);
    ts_ca_free(ca);
    return status;
}

static int cmd_verify(const cli_args *args)
{
    int64_t entries = 0, first_bad = 0;
    ts_ca *ca = NULL;
    int status;

    if (cli_remote_wanted(args)) {
        return cli_remote_audit_verify(args);
    }
    status = cli_instance_open(args, &ca);
    if (status != CLI_EXIT_OK) {
        return status;
    }
    ts_err rv = ts_store_audit_verify(ts_ca_store(ca), &entries, &first_bad);
    if (rv == TS_ERR_CORRUPT) {
        fprintf(stderr, "tessera: audit log broken at entry %lld: %s\n", (long long)first_bad,
                ts_error_message());
        status = CLI_EXIT_FAIL;
    } else if (rv != TS_OK) {
        status = cli_fail();
    } else {
        printf("audit log intact: %lld entries\n", (long long)entries);
    }
    ts_ca_free(ca);
    return status;
}

const cli_command cli_audit_commands[] = {
    {.name = "list",
     .summary = "List audit entries: id, time, actor, action, object, details (tab-separated)",
     .opts = list_opts,
     .run = cmd_list,
     .help = "Example:\n  tessera audit list --after 120 --limit 20\n\n" CLI_REMOTE_HELP},
    {.name = "verify",
     .summary = "Check the audit chain; exit 1 naming the first broken entry",
     .opts = verify_opts,
     .run = cmd_verify,
     .help = "Each entry's hash covers the previous entry's hash, so an edited, deleted or\n"
             "reordered entry breaks the chain at that entry.\n\n" CLI_REMOTE_HELP},
    {0},
};
