/*
 * tessera-agent run: MQTT telemetry, status and signed commands (docs/agent.md, "Running: MQTT
 * telemetry and commands"). One line per event on standard output; SIGTERM or SIGINT end the run
 * cleanly (status offline, then DISCONNECT) with exit status 0.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "agent_cli/agent_cli.h"

static volatile sig_atomic_t stop_requested;

static void on_stop(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static void on_event(void *arg, int is_error, const char *line)
{
    (void)arg;
    if (is_error) {
        fprintf(stderr, "tessera-agent: %s\n", line);
        return;
    }
    fputs(line, stdout);
    fputc('\n', stdout);
    fflush(stdout);
}

int agent_cmd_run(const agent_args *args)
{
    ts_agent_run_opts opts;
    struct sigaction sa;
    ts_agent *agent = NULL;
    int status = AGENT_EXIT_OK;

    if (args->est.factory_cert != NULL) {
        return agent_usage("run uses the current identity, not --factory-cert");
    }
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop; /* no SA_RESTART: a wait ends at once */
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGTERM, &sa, NULL) != 0 || sigaction(SIGINT, &sa, NULL) != 0) {
        fprintf(stderr, "tessera-agent: cannot handle SIGTERM and SIGINT\n");
        return AGENT_EXIT_FAIL;
    }
    signal(SIGPIPE, SIG_IGN);
    if (ts_agent_open(args->keystore, args->state, &agent) != TS_OK) {
        return agent_fail();
    }
    memset(&opts, 0, sizeof opts);
    opts.state_dir = args->state;
    opts.mqtt = args->mqtt;
    opts.trust_file = args->est.trust_file;
    opts.server = args->est.server;
    opts.tenant = args->est.tenant;
    opts.interval = args->interval;
    opts.count = args->count;
    opts.queue = args->queue;
    opts.telemetry_cmd = args->telemetry_cmd;
    opts.timeout = args->est.timeout;
    opts.threshold_days = args->threshold_days;
    opts.event = on_event;
    opts.stop = &stop_requested;
    if (ts_agent_run(agent, &opts) != TS_OK) {
        status = agent_fail();
    }
    ts_agent_free(agent);
    return status;
}
