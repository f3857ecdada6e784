/* tessera-agent rtp HOST PORT: offline provisioning (docs/rtp.md). */
#include <stdio.h>

#include "agent_cli/agent_cli.h"

static void report(void *arg, size_t bundle, ts_err status, const char *what)
{
    (void)arg;
    if (status == TS_OK) {
        printf("bundle %zu: imported %s\n", bundle + 1, what);
    } else {
        printf("bundle %zu: refused (%s): %s\n", bundle + 1, ts_err_name(status), what);
    }
    fflush(stdout);
}

int agent_cmd_rtp(const agent_args *args)
{
    ts_agent *agent = NULL;
    ts_agent_rtp_result res;
    ts_err rv;

    if (args->operand_count != 2) {
        return agent_usage("rtp needs HOST PORT");
    }
    rv = ts_agent_open(args->keystore, args->state, &agent);
    if (rv == TS_OK) {
        rv = ts_agent_rtp(agent, args->operands[0], args->operands[1], args->est.timeout, report,
                          NULL, &res);
    }
    ts_agent_free(agent);
    if (rv != TS_OK) {
        return agent_fail();
    }
    printf("rtp: %zu bundle(s) offered, %zu accepted, %zu refused, %zu key(s) imported\n",
           res.offered, res.accepted, res.refused, res.imported);
    return res.refused > 0 ? AGENT_EXIT_FAIL : AGENT_EXIT_OK;
}
