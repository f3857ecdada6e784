/*
 * tessera batch: factory provisioning of N devices, resumable after a crash (src/server/batch.c
 * keeps the invariants; docs/ca.md lists them).
 */
#include <string.h>

#include "cli/cli_instance.h"

enum { COUNT_MAX = 1000000 };

const cli_opt cli_batch_opts[] = {
    CLI_OPT_DIR,
    CLI_OPT_TENANT,
    {.name = "profile", .value = "NAME", .help = "the devices' profile (default: device)"},
    {.name = "count",
     .value = "N",
     .flags = CLI_OPT_REQUIRED,
     .help = "devices the batch ends with"},
    {.name = "out",
     .value = "DIR",
     .flags = CLI_OPT_REQUIRED,
     .help = "manifest.jsonl, batch.json and the devices' key stores"},
    {.name = "keystore-template",
     .value = "URI",
     .help = "keys on this token, labelled by UID (default: a soft: store per device)"},
    {.name = "quiet", .help = "no line per device"},
    {0},
};

const char cli_batch_help[] =
    "For each device: a key generated inside its key store, a certificate from the tenant's\n"
    "issuing CA with CN = the device's UID, and a line in OUT/manifest.jsonl:\n"
    "  {\"uid\":...,\"serial\":...,\"sha256\":...,\"keystore\":...}\n"
    "By default each device gets a soft: store in OUT/devices/<uid>/keystore with a random PIN\n"
    "in OUT/devices/<uid>/pin (0600). With --keystore-template the keys are made on that\n"
    "PKCS#11 token, labelled with the device's UID (give the PIN with pin-source= or\n"
    "TESSERA_PIN: the URI goes into the manifest).\n"
    "\n"
    "Interrupted (even by kill -9)? Run the same command again: it discards the unfinished\n"
    "device, repairs the manifest from the store and continues to N.\n"
    "\n"
    "Example:\n"
    "  tessera batch --tenant acme --profile device --count 1000 --out lot-2025-03\n";

static void progress(void *arg, size_t done, size_t count, const char *uid)
{
    (void)arg;
    printf("device %zu/%zu %s\n", done, count, uid);
    fflush(stdout);
}

int cli_batch_run(const cli_args *args)
{
    ts_batch_params p;
    ts_batch_result res;
    uint64_t count = 0;
    ts_ca *ca = NULL;
    int status;

    if (cli_parse_u64(cli_opt_value(args, "count"), &count) != 0 || count == 0 ||
        count > COUNT_MAX) {
        return cli_usage_error(args, "--count: 1 to %d", COUNT_MAX);
    }
    memset(&p, 0, sizeof p);
    p.tenant = cli_opt_given(args, "tenant") ? cli_opt_value(args, "tenant") : TS_DEFAULT_TENANT;
    p.profile = cli_opt_given(args, "profile") ? cli_opt_value(args, "profile") : "device";
    p.count = (size_t)count;
    p.out_dir = cli_opt_value(args, "out");
    p.keystore_template = cli_opt_value(args, "keystore-template");
    status = cli_instance_open(args, &ca);
    if (status != CLI_EXIT_OK) {
        return status;
    }
    ts_err rv = ts_ca_batch(ca, &p, cli_opt_given(args, "quiet") ? NULL : progress, NULL, &res);
    if (res.discarded > 0 || res.appended > 0 || res.rewritten) {
        printf("resumed batch %s: %zu unfinished device(s) discarded, %zu manifest line(s) "
               "restored%s\n",
               res.job, res.discarded, res.appended,
               res.rewritten ? ", manifest rewritten from the store" : "");
    }
    if (rv != TS_OK) {
        status = cli_fail();
    } else {
        printf("batch %s: %zu of %zu devices (%zu made now); manifest %s/manifest.jsonl\n", res.job,
               res.done, p.count, res.made, p.out_dir);
    }
    ts_ca_free(ca);
    return status;
}
