/* tessera-agent sync: one provisioning session with the service (docs/agent.md, Sessions). */
#include <stdio.h>

#include "agent_cli/agent_cli.h"

int agent_cmd_sync(const agent_args *args)
{
    ts_agent_sync_opts opts = {0};
    ts_agent_sync_result res;
    ts_agent *agent = NULL;
    int status = AGENT_EXIT_OK;

    if (args->est.factory_cert != NULL) {
        return agent_usage("sync uses the current identity, not --factory-cert");
    }
    if (ts_agent_open(args->keystore, args->state, &agent) != TS_OK) {
        return agent_fail();
    }
    opts.state_dir = args->state;
    opts.server = args->est.server;
    opts.trust_file = args->est.trust_file;
    opts.timeout = args->est.timeout;
    if (ts_agent_sync(agent, &opts, &res) != TS_OK) {
        status = agent_fail();
    }
    if (res.staged_dropped) {
        fprintf(stderr, "tessera-agent: the staged service URL or trust roots did not work and "
                        "were dropped; the previous ones stay\n");
    }
    if (res.staged_applied) {
        printf("staged service URL and trust roots now current\n");
    }
    if (status == AGENT_EXIT_OK) {
        printf("session done: %u messages, %u requests, %u refused, %u not carried out\n",
               res.messages, res.requests, res.failed, res.aborted);
    }
    ts_agent_free(agent);
    return status;
}
