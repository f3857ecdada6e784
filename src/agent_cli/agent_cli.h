/* tessera-agent's commands: the parsed command line and one function per command. */
#ifndef TS_AGENT_CLI_AGENT_CLI_H
#define TS_AGENT_CLI_AGENT_CLI_H

#include <stddef.h>

#include "tessera/agent.h"

enum { AGENT_EXIT_OK = 0, AGENT_EXIT_FAIL = 1, AGENT_EXIT_USAGE = 2 };

typedef struct agent_args {
    const char *keystore;
    const char *state;
    const char *uid;
    ts_agent_est_opts est;
    int force;
    unsigned threshold_days;
    /* run */
    const char *mqtt;
    long interval; /* -1: the default */
    unsigned long long count;
    size_t queue;
    const char *telemetry_cmd;
    const char *const *operands;
    size_t operand_count;
} agent_args;

typedef struct agent_cmd {
    const char *name;
    int takes_operands;
    int (*run)(const agent_args *args);
} agent_cmd;

/* Prints "tessera-agent: MESSAGE" and a pointer to --help; returns AGENT_EXIT_USAGE. */
int agent_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Prints ts_error_message(); returns AGENT_EXIT_FAIL. */
int agent_fail(void);

int agent_cmd_init(const agent_args *args);
int agent_cmd_claim(const agent_args *args);
int agent_cmd_enroll(const agent_args *args);
int agent_cmd_reenroll(const agent_args *args);
int agent_cmd_status(const agent_args *args);
int agent_cmd_rtp(const agent_args *args);
int agent_cmd_sync(const agent_args *args);
int agent_cmd_run(const agent_args *args);

#endif
