/*
 * tessera demo: device to cloud on this machine, start to finish (docs/demo.md).
 *
 * A key ceremony, the trust service, Mosquitto with the Tessera plugin, N devices onboarded by
 * claim code, their telemetry seen arriving, a signed command answered, one device revoked and
 * shown kicked and refused; then every process stopped and the temporary directory removed.
 * Each step prints one "[k/n]" line and what it did; a failure names the step, says why and
 * shows the end of the failing process's log.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <mosquitto.h>
#include <openssl/crypto.h>

#include "cli/cli_demo.h"
#include "common/error_internal.h"

#define DEFAULT_MOSQUITTO "/usr/sbin/mosquitto"
#define PLUGIN_NAME       "tessera_mosquitto.so"

enum {
    TAIL_LINES = 8,
    EXIT_INTERRUPTED = 130, /* 128 + SIGINT, as shells report it */
};

const cli_opt cli_demo_opts[] = {
    {.name = "devices", .value = "N", .help = "how many devices to onboard, 1 to 50 (default 5)"},
    {.name = "keep", .help = "keep the temporary directory and its logs (the path is printed)"},
    {.name = "keystore",
     .help = "run the key-store walk instead: a token key, a CSR and mutual TLS on loopback"},
    {.name = "soft", .help = "with --keystore: a soft: store even when SoftHSM2 is installed"},
    {0},
};

const char cli_demo_help[] =
    "Runs the whole device-to-cloud path on 127.0.0.1, in a fresh temporary directory under\n"
    "$TMPDIR (else /tmp): a key ceremony (tessera init), the trust service (tessera serve),\n"
    "a broker certificate and an API token for the plugin, Mosquitto with tessera_mosquitto.so,\n"
    "N devices each with its own soft: key store onboarded by claim code (tessera-agent init,\n"
    "claim inject, enroll) and connected (tessera-agent run), their telemetry watched with the\n"
    "service's identity, a signed command (ping) answered, one device's certificate revoked and\n"
    "the device shown kicked and refused. It ends with a summary table, stops every process it\n"
    "started (also on a failure or Ctrl-C) and removes the directory unless --keep is given.\n"
    "\n"
    "Exit status: 0 when every step passed, 1 when one failed (the message names it), 130 when\n"
    "interrupted.\n"
    "\n"
    "Environment:\n"
    "  TS_DEMO_MOSQUITTO   the broker program (default " DEFAULT_MOSQUITTO ")\n"
    "  TS_SOFTHSM_MODULE   with --keystore: the SoftHSM2 PKCS#11 module\n";

typedef struct demo_step {
    const char *title;
    ts_err (*run)(demo *d);
} demo_step;

static const demo_step steps[] = {
    {"Key ceremony: root CA, issuing CA, service TLS identity", demo_step_ceremony},
    {"Starting the trust service", demo_step_service},
    {"Issuing the broker's server certificate", demo_step_broker_cert},
    {"An API token for the broker plugin", demo_step_token},
    {"Starting Mosquitto with the Tessera plugin", demo_step_mosquitto},
    {"Watching the broker with the service's identity", demo_step_observer},
    {"Onboarding devices by claim code", demo_step_onboard},
    {"Agents connect over mutual TLS and publish telemetry", demo_step_telemetry},
    {"A signed command", demo_step_command},
    {"Revoking a device's certificate", demo_step_revoke},
};

enum { STEPS = sizeof steps / sizeof steps[0] };

ts_err demo_path(const demo *d, char *out, const char *fmt, ...)
{
    char tail[DEMO_PATH_MAX];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tail, sizeof tail, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof tail) {
        return ts_error_set(TS_ERR_INVALID, "a path under %s is too long", d->work);
    }
    n = snprintf(out, DEMO_PATH_MAX, "%s/%s", d->work, tail);
    if (n < 0 || n >= DEMO_PATH_MAX) {
        return ts_error_set(TS_ERR_INVALID, "a path under %s is too long", d->work);
    }
    return TS_OK;
}

ts_err demo_tessera(demo *d, const char *name, const char *const args[])
{
    const char *argv[32];
    char log[DEMO_PATH_MAX];
    size_t n = 0;
    int code = 0;

    argv[n++] = d->tessera;
    for (size_t i = 0; args[i] != NULL && n + 1 < sizeof argv / sizeof argv[0]; i++) {
        argv[n++] = args[i];
    }
    argv[n] = NULL;
    ts_err rv = demo_path(d, log, "logs/%s.log", name);
    if (rv != TS_OK) {
        return rv;
    }
    snprintf(d->fail_log, sizeof d->fail_log, "%s", log);
    rv = demo_run(name, log, DEMO_RUN_TIMEOUT_S, argv, &code);
    if (rv != TS_OK) {
        return rv;
    }
    if (code != 0) {
        char what[64] = "";
        for (size_t i = 0; i < 2 && args[i] != NULL && args[i][0] != '-'; i++) {
            size_t used = strlen(what);
            snprintf(what + used, sizeof what - used, " %s", args[i]);
        }
        return ts_error_set(TS_ERR_BACKEND, "tessera%s exited with status %d", what, code);
    }
    d->fail_log[0] = '\0';
    return TS_OK;
}

/* --- signals ------------------------------------------------------------------------------- */

static void on_signal(int sig)
{
    (void)sig;
    demo_interrupted = 1;
}

static void signals_setup(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    /* No SA_RESTART: a sleep or wait is cut short and sees the flag. */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    /* A closed pipe (the broker, a child, a reader of our output) is an error, not a death. */
    signal(SIGPIPE, SIG_IGN);
}

/* --- set-up -------------------------------------------------------------------------------- */

/* The programs: this tessera, tessera-agent beside it, the plugin in ../lib, the broker. */
static ts_err find_programs(demo *d)
{
    char self[DEMO_PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0 || (size_t)n + 1 >= sizeof self) {
        return ts_error_set(TS_ERR_IO, "cannot read /proc/self/exe (or its path is too long)");
    }
    self[n] = '\0';
    char *slash = strrchr(self, '/');
    if (slash == NULL) {
        return ts_error_set(TS_ERR_INVALID, "this program's path has no directory: %s", self);
    }
    memcpy(d->tessera, self, (size_t)n + 1);
    *slash = '\0';
    int ok = snprintf(d->agent, sizeof d->agent, "%s/tessera-agent", self) < (int)sizeof d->agent;
    /* The plugin is a library: bin/../lib. */
    char *up = strrchr(self, '/');
    if (up != NULL) {
        *up = '\0';
    }
    ok = ok &&
         snprintf(d->plugin, sizeof d->plugin, "%s/lib/" PLUGIN_NAME, self) < (int)sizeof d->plugin;
    if (!ok) {
        return ts_error_set(TS_ERR_INVALID, "the path of this program is too long");
    }
    const char *broker = getenv("TS_DEMO_MOSQUITTO");
    if (broker == NULL || broker[0] == '\0') {
        broker = DEFAULT_MOSQUITTO;
    }
    if (snprintf(d->mosquitto, sizeof d->mosquitto, "%s", broker) >= (int)sizeof d->mosquitto) {
        return ts_error_set(TS_ERR_INVALID, "TS_DEMO_MOSQUITTO is too long");
    }
    return TS_OK;
}

/* A fresh directory whose path needs no quoting in a key-store URI or a Mosquitto conf. */
static ts_err make_workdir(demo *d)
{
    static const char plain[] =
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._/";
    const char *base = getenv("TMPDIR");
    if (base == NULL || base[0] != '/' || strspn(base, plain) != strlen(base) ||
        strlen(base) > 200) {
        base = "/tmp";
    }
    snprintf(d->work, sizeof d->work, "%s/tessera-demo-XXXXXX", base);
    if (mkdtemp(d->work) == NULL) {
        int e = errno;
        d->work[0] = '\0';
        return ts_error_set(TS_ERR_IO, "cannot make a temporary directory under %s: %s", base,
                            strerror(e));
    }
    ts_err rv = demo_path(d, d->logs, "logs");
    if (rv == TS_OK && mkdir(d->logs, 0700) != 0) {
        rv = ts_error_set(TS_ERR_IO, "cannot make %s: %s", d->logs, strerror(errno));
    }
    return rv;
}

/* --- the end ------------------------------------------------------------------------------- */

/* Stops the observer, the agents, the broker and the service, in that order. */
static void stop_all(demo *d)
{
    demo_proc *procs[DEMO_DEVICES_MAX];
    size_t n = 0;
    unsigned killed = 0, stopped = 0;

    /* What the observer saw, kept for the summary. */
    for (unsigned i = 0; i < d->ndev; i++) {
        demo_observer_seen(d->observer, d->dev[i].uid, &d->dev[i].seen);
    }
    demo_observer_free(d->observer);
    d->observer = NULL;
    for (unsigned i = 0; i < d->ndev; i++) {
        if (demo_proc_running(&d->dev[i].agent)) {
            procs[n++] = &d->dev[i].agent;
        }
    }
    stopped += (unsigned)n;
    killed += demo_proc_stop(procs, n, DEMO_STOP_GRACE_MS);
    demo_proc *broker = &d->mosquitto_proc, *serve = &d->serve;
    if (demo_proc_running(broker)) {
        stopped++;
        killed += demo_proc_stop(&broker, 1, DEMO_STOP_GRACE_MS);
    }
    if (demo_proc_running(serve)) {
        stopped++;
        killed += demo_proc_stop(&serve, 1, DEMO_STOP_GRACE_MS);
    }
    printf(DEMO_IND "stopped %u process%s", stopped, stopped == 1 ? "" : "es");
    if (killed > 0) {
        printf(" (%u needed SIGKILL after %d s)", killed, DEMO_STOP_GRACE_MS / 1000);
    }
    printf("\n");
}

static void wipe(demo *d)
{
    OPENSSL_cleanse(d->keystore, sizeof d->keystore);
    for (unsigned i = 0; i < DEMO_DEVICES_MAX; i++) {
        OPENSSL_cleanse(d->dev[i].keystore, sizeof d->dev[i].keystore);
    }
}

static int parse_devices(const cli_args *args, unsigned *out)
{
    const char *text = cli_opt_value(args, "devices");
    uint64_t n = DEMO_DEVICES_DEFAULT;
    if (text != NULL && (cli_parse_u64(text, &n) != 0 || n < 1 || n > DEMO_DEVICES_MAX)) {
        return cli_usage_error(args, "--devices must be a number from 1 to %d", DEMO_DEVICES_MAX);
    }
    *out = (unsigned)n;
    return CLI_EXIT_OK;
}

int cli_demo_run(const cli_args *args)
{
    if (cli_opt_given(args, "keystore")) {
        if (cli_opt_given(args, "devices") || cli_opt_given(args, "keep")) {
            return cli_usage_error(args, "--keystore takes neither --devices nor --keep");
        }
        return cli_demo_keystore_run(args);
    }
    if (cli_opt_given(args, "soft")) {
        return cli_usage_error(args, "--soft goes with --keystore");
    }
    unsigned ndev = 0;
    int status = parse_devices(args, &ndev);
    if (status != CLI_EXIT_OK) {
        return status;
    }
    demo *d = calloc(1, sizeof *d);
    if (d == NULL) {
        fprintf(stderr, "tessera: demo: out of memory\n");
        return CLI_EXIT_FAIL;
    }
    d->ndev = ndev;
    d->keep = cli_opt_given(args, "keep");
    signals_setup();
    mosquitto_lib_init();
    long long t0 = demo_now_ms();
    size_t failed = 0;
    ts_err rv = find_programs(d);
    if (rv == TS_OK) {
        rv = make_workdir(d);
    }
    if (rv != TS_OK) {
        fprintf(stderr, "tessera: demo: %s\n", ts_error_message());
        mosquitto_lib_cleanup();
        free(d);
        return CLI_EXIT_FAIL;
    }
    printf("Tessera demo: %u device%s to the cloud, everything on 127.0.0.1.\n", ndev,
           ndev == 1 ? "" : "s");
    printf("Working in %s (%s at the end).\n", d->work, d->keep ? "kept" : "removed");
    for (size_t i = 0; i < STEPS && failed == 0; i++) {
        printf("[%zu/%d] %s\n", i + 1, STEPS, steps[i].title);
        fflush(stdout);
        d->fail_log[0] = '\0';
        rv = demo_interrupted ? ts_error_set(TS_ERR_STATE, "interrupted") : steps[i].run(d);
        if (rv != TS_OK) {
            failed = i + 1;
            fflush(stdout); /* the message lands after what the step printed */
            if (demo_interrupted) {
                fprintf(stderr, "tessera: demo: interrupted during step %zu (%s)\n", failed,
                        steps[i].title);
                break;
            }
            fprintf(stderr, "tessera: demo: step %zu (%s) failed: %s\n", failed, steps[i].title,
                    ts_error_message());
            if (d->fail_log[0] != '\0') {
                demo_log_tail(d->fail_log, TAIL_LINES, stderr);
            }
        }
    }
    printf("Stopping\n");
    stop_all(d);
    int removed = 1;
    if (d->keep) {
        printf(DEMO_IND "kept %s (logs in %s)\n", d->work, d->logs);
    } else {
        removed = demo_remove_tree(d->work) == 0;
        if (removed) {
            printf(DEMO_IND "removed %s\n", d->work);
        } else {
            fprintf(stderr, "tessera: demo: could not remove %s\n", d->work);
        }
    }
    double secs = (double)(demo_now_ms() - t0) / 1000.0;
    if (failed == 0 && removed) {
        demo_summary(d, stdout);
        printf("Done in %.1f s.\n", secs);
        status = CLI_EXIT_OK;
    } else if (failed != 0 && demo_interrupted) {
        printf("Interrupted at step %zu of %d after %.1f s; everything started was stopped.\n",
               failed, STEPS, secs);
        status = EXIT_INTERRUPTED;
    } else if (failed != 0) {
        printf("The demo stopped at step %zu of %d (%s); see the message above.\n", failed, STEPS,
               steps[failed - 1].title);
        status = CLI_EXIT_FAIL;
    } else {
        status = CLI_EXIT_FAIL;
    }
    wipe(d);
    mosquitto_lib_cleanup();
    free(d);
    return status;
}
