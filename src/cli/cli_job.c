/*
 * tessera job: provisioning jobs for a device's agent (include/tessera/jobs.h, docs/protocol.md).
 * create queues one job (or one per device of a group) and prints its id; list shows a tenant's
 * jobs, newest first; show prints a job and the result of each of its requests. The device's agent
 * carries the job out in its next provisioning session. Each command works on --dir or, in remote
 * mode, through the service (cli_job_remote.c).
 */
#include <string.h>

#include <openssl/crypto.h>

#include "cli/cli_instance.h"
#include "cli/cli_job.h"
#include "cli/cli_job_remote.h"
#include "cli/cli_remote.h"
#include "tessera/access.h"
#include "tessera/jobs.h"

enum {
    LIST_LIMIT = 1000, /* jobs read for list (newest first) */
};

static const cli_opt create_opts[] = {
    CLI_OPT_DIR,
    {.name = "device", .value = "UID", .help = "the device's UID"},
    {.name = "group",
     .value = "NAME",
     .help = "instead of --device: one job for each device of the group (tessera group)"},
    {.name = "set",
     .value = "KEY=VALUE",
     .flags = CLI_OPT_REPEAT,
     .help = "set datastore entry KEY to the text VALUE (repeatable, in one transaction)"},
    {.name = "import",
     .value = "FILE",
     .help = "import the sealed blob in FILE (docs/import.md) into the key store"},
    {.name = "label", .value = "LABEL", .help = "with --import: the key-store label"},
    {.name = "rotate-trust",
     .value = "FILE",
     .help = "replace the device's trust roots (trust.roots) with the PEM certificates in FILE"},
    {.name = "reenroll", .help = "re-enroll the device's certificate now"},
    {.name = "rekey",
     .help = "with --reenroll: certify a new key made in the device's key store; the old "
             "certificate is revoked as superseded"},
    CLI_OPT_TENANT,
    CLI_OPTS_REMOTE,
    {0},
};

static const cli_opt list_opts[] = {
    CLI_OPT_DIR,
    CLI_OPT_TENANT,
    {.name = "device", .value = "UID", .help = "only the jobs of this device"},
    CLI_OPTS_REMOTE,
    {0},
};

static const cli_opt show_opts[] = {
    CLI_OPT_DIR,
    {.name = "id", .value = "ID", .flags = CLI_OPT_REQUIRED, .help = "the job's id"},
    CLI_OPT_TENANT,
    CLI_OPTS_REMOTE,
    {0},
};

/* The --set pairs, split at the first '='. Values point into argv. */
typedef struct job_sets {
    char keys[TS_JOB_SETS_MAX][TS_JOB_LABEL_MAX + 1];
    const char *key_ptrs[TS_JOB_SETS_MAX];
    const char *values[TS_JOB_SETS_MAX];
    size_t count;
} job_sets;

static int parse_sets(const cli_args *args, job_sets *sets)
{
    const char *const *items = NULL;
    size_t n = cli_opt_values(args, "set", &items);

    memset(sets, 0, sizeof *sets);
    if (n > TS_JOB_SETS_MAX) {
        return cli_usage_error(args, "--set: at most %d entries in one job", TS_JOB_SETS_MAX);
    }
    for (size_t i = 0; i < n; i++) {
        const char *eq = strchr(items[i], '=');
        size_t klen = eq != NULL ? (size_t)(eq - items[i]) : 0;
        if (eq == NULL || klen == 0 || klen > TS_JOB_LABEL_MAX) {
            return cli_usage_error(args,
                                   "--set: KEY=VALUE with a key of 1 to %d characters, not '%s'",
                                   TS_JOB_LABEL_MAX, items[i]);
        }
        memcpy(sets->keys[i], items[i], klen);
        sets->keys[i][klen] = '\0';
        sets->key_ptrs[i] = sets->keys[i];
        sets->values[i] = eq + 1;
    }
    sets->count = n;
    return CLI_EXIT_OK;
}

/* Exactly one of --set, --import, --rotate-trust and --reenroll; --label only with --import,
 * --rekey only with --reenroll. */
static int parse_kind(const cli_args *args, ts_job_kind *kind)
{
    int n = 0;
    if (cli_opt_given(args, "rekey") && !cli_opt_given(args, "reenroll")) {
        return cli_usage_error(args, "--rekey goes with --reenroll");
    }
    if (cli_opt_given(args, "set")) {
        *kind = TS_JOB_SET;
        n++;
    }
    if (cli_opt_given(args, "import")) {
        *kind = TS_JOB_IMPORT;
        n++;
    }
    if (cli_opt_given(args, "rotate-trust")) {
        *kind = TS_JOB_ROTATE_TRUST;
        n++;
    }
    if (cli_opt_given(args, "reenroll")) {
        *kind = TS_JOB_REENROLL;
        n++;
    }
    if (n != 1) {
        return cli_usage_error(args, "give exactly one of --set, --import, --rotate-trust and "
                                     "--reenroll");
    }
    if (*kind == TS_JOB_IMPORT && !cli_opt_given(args, "label")) {
        return cli_usage_error(args, "--import needs --label, the key-store label");
    }
    if (*kind != TS_JOB_IMPORT && cli_opt_given(args, "label")) {
        return cli_usage_error(args, "--label goes with --import");
    }
    return CLI_EXIT_OK;
}

/* One job per member of the group: a summary line, then "ID<tab>UID" per job. */
static int create_group(ts_ca *ca, const ts_job_spec *spec, const char *group)
{
    ts_job_row *jobs = NULL;
    size_t n = 0;
    if (ts_ca_job_create_group(ca, spec, group, &jobs, &n) != TS_OK) {
        return cli_fail();
    }
    printf("group %s: %zu job(s) queued\n", group, n);
    for (size_t i = 0; i < n; i++) {
        printf("%lld\t%s\n", (long long)jobs[i].id, jobs[i].device_uid);
    }
    OPENSSL_free(jobs);
    return CLI_EXIT_OK;
}

static int cmd_create(const cli_args *args)
{
    job_sets sets;
    ts_job_spec spec;
    ts_job_row job;
    ts_job_kind kind = TS_JOB_SET;
    uint8_t *data = NULL;
    size_t len = 0;
    ts_ca *ca = NULL;
    const char *uid = cli_opt_value(args, "device");
    const char *group = cli_opt_value(args, "group");
    int status = parse_kind(args, &kind);

    if (status == CLI_EXIT_OK && (uid == NULL) == (group == NULL)) {
        status = cli_usage_error(args, "give --device UID or --group NAME");
    }
    if (status == CLI_EXIT_OK && uid != NULL && ts_device_uid_check(uid) != TS_OK) {
        status = cli_usage_error(args, "--device: %s", ts_error_message());
    }
    if (status == CLI_EXIT_OK && group != NULL && ts_group_name_check(group) != TS_OK) {
        status = cli_usage_error(args, "--group: %s", ts_error_message());
    }
    if (status == CLI_EXIT_OK && kind == TS_JOB_SET) {
        status = parse_sets(args, &sets);
    }
    if (status != CLI_EXIT_OK) {
        return status;
    }
    memset(&spec, 0, sizeof spec);
    spec.tenant = cli_opt_value(args, "tenant");
    spec.device_uid = uid;
    spec.kind = kind;
    spec.rekey = cli_opt_given(args, "rekey");
    if (kind == TS_JOB_SET) {
        spec.keys = sets.key_ptrs;
        spec.values = sets.values;
        spec.count = sets.count;
    } else if (kind == TS_JOB_IMPORT || kind == TS_JOB_ROTATE_TRUST) {
        const char *file = cli_opt_value(args, kind == TS_JOB_IMPORT ? "import" : "rotate-trust");
        if (cli_read_input(file, TS_JOB_DATA_MAX, &data, &len) != TS_OK) {
            return cli_fail();
        }
        spec.label = cli_opt_value(args, "label");
        spec.data = data;
        spec.data_len = len;
    }
    if (cli_remote_wanted(args)) {
        status = cli_remote_job_create(args, &spec, group);
        OPENSSL_clear_free(data, len);
        return status;
    }
    status = cli_instance_open(args, &ca);
    if (status == CLI_EXIT_OK && group != NULL) {
        status = create_group(ca, &spec, group);
    } else if (status == CLI_EXIT_OK) {
        if (ts_ca_job_create(ca, &spec, &job) != TS_OK) {
            status = cli_fail();
        } else {
            /* The id alone, so id=$(tessera job create ...) picks it up. */
            printf("%lld\n", (long long)job.id);
        }
    }
    OPENSSL_clear_free(data, len);
    ts_ca_free(ca);
    return status;
}

static int cmd_list(const cli_args *args)
{
    ts_job_row *rows = NULL;
    size_t count = 0;
    char created[32];
    ts_ca *ca = NULL;
    const char *device = cli_opt_value(args, "device");
    int status;

    if (device != NULL && ts_device_uid_check(device) != TS_OK) {
        return cli_usage_error(args, "--device: %s", ts_error_message());
    }
    if (cli_remote_wanted(args)) {
        return cli_remote_job_list(args, device, LIST_LIMIT);
    }
    status = cli_instance_open(args, &ca);
    if (status != CLI_EXIT_OK) {
        return status;
    }
    if (ts_ca_job_list(ca, cli_opt_value(args, "tenant"), device, LIST_LIMIT, &rows, &count) !=
        TS_OK) {
        status = cli_fail();
    }
    for (size_t i = 0; status == CLI_EXIT_OK && i < count; i++) {
        cli_time_text(rows[i].created, created);
        printf("%lld\t%s\t%s%s\t%s\t%s\t%s\n", (long long)rows[i].id, rows[i].device_uid,
               ts_job_kind_name(rows[i].kind), rows[i].rekey ? " (rekey)" : "",
               ts_job_state_name(rows[i].state), created, rows[i].actor);
    }
    OPENSSL_free(rows);
    ts_ca_free(ca);
    return status;
}

static void print_request(const ts_job_request_row *q)
{
    char answered[32] = "-";
    if (q->answered != 0) {
        cli_time_text(q->answered, answered);
    }
    printf("  %d\t%s\t%s\t%s\t%s", q->seq, ts_job_op_name(q->operation),
           q->label[0] != '\0' ? q->label : "-", ts_job_state_name(q->state), answered);
    if (q->state == TS_JOB_FAILED) {
        printf("\t%s: %s", q->error_code[0] != '\0' ? q->error_code : "error",
               q->error_message[0] != '\0' ? q->error_message : "(no message)");
    }
    if (q->payload_len > 0) {
        printf("\tpayload %zu bytes", q->payload_len);
    }
    printf("\n");
}

static int cmd_show(const cli_args *args)
{
    const char *text = cli_opt_value(args, "id");
    const char *tenant = cli_opt_value(args, "tenant");
    ts_job_row job;
    ts_job_request_row *reqs = NULL;
    size_t count = 0;
    uint64_t id = 0;
    char created[32], updated[32];
    ts_ca *ca = NULL;
    int status;

    if (cli_parse_u64(text, &id) != 0 || id == 0 || id > INT64_MAX) {
        return cli_usage_error(args, "--id: a job's id (a positive number), not '%s'", text);
    }
    if (cli_remote_wanted(args)) {
        return cli_remote_job_show(args, (int64_t)id);
    }
    status = cli_instance_open(args, &ca);
    if (status != CLI_EXIT_OK) {
        return status;
    }
    if (ts_ca_job_show(ca, tenant, (int64_t)id, &job, &reqs, &count) != TS_OK) {
        status = cli_fail();
    } else {
        cli_time_text(job.created, created);
        cli_time_text(job.updated, updated);
        printf("job:      %lld\ntenant:   %s\ndevice:   %s\nkind:     %s%s\nstate:    %s\n"
               "actor:    %s\ncreated:  %s\nupdated:  %s\nrequests:\n",
               (long long)job.id, tenant != NULL ? tenant : TS_DEFAULT_TENANT, job.device_uid,
               ts_job_kind_name(job.kind), job.rekey ? " (rekey)" : "",
               ts_job_state_name(job.state), job.actor, created, updated);
        for (size_t i = 0; i < count; i++) {
            print_request(&reqs[i]);
        }
    }
    ts_job_requests_free(reqs, count);
    ts_ca_free(ca);
    return status;
}

static const char create_help[] =
    "Exactly one of --set, --import, --rotate-trust and --reenroll. --set may be given several\n"
    "times (or --set a=1 b=2); the entries are written in one datastore transaction. FILE may\n"
    "be - for standard input. The job's id is printed alone on one line.\n"
    "\n"
    "--reenroll --rekey asks the agent for a new key pair made in its key store; the service\n"
    "revokes the old certificate as superseded once the new one is issued. list and show mark\n"
    "such a job 'reenroll (rekey)'.\n"
    "\n"
    "With --group NAME instead of --device the same job is queued for each device of the group\n"
    "in one transaction (each device's results are tracked in its own job): it prints\n"
    "'group NAME: N job(s) queued', then 'ID<tab>UID' per job. An unknown or empty group is an\n"
    "error and queues nothing.\n"
    "\n"
    "Examples:\n"
    "  id=$(tessera job create --device dev-0001 --set mqtt.host=broker.example)\n"
    "  tessera job create --device dev-0001 --import app.blob --label app.key\n"
    "  tessera job create --device dev-0001 --rotate-trust roots.pem\n"
    "  tessera job create --group lot-7 --reenroll\n"
    "  tessera job create --device dev-0001 --reenroll --rekey\n"
    "\n" CLI_REMOTE_HELP;

const cli_command cli_job_commands[] = {
    {.name = "create",
     .summary = "Queue a job for a device's agent; prints the job's id",
     .opts = create_opts,
     .run = cmd_create,
     .help = create_help},
    {.name = "list",
     .summary = "List jobs, newest first: id, device, kind, state, created, actor",
     .opts = list_opts,
     .run = cmd_list,
     .help = CLI_REMOTE_HELP},
    {.name = "show",
     .summary = "Show a job and the result of each of its requests",
     .opts = show_opts,
     .run = cmd_show,
     .help = "Each request: seq, operation, label, state, answered, and the error when it "
             "failed.\n\n" CLI_REMOTE_HELP},
    {0},
};
