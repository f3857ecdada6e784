/*
 * tessera job: provisioning jobs queued for a device's agent (docs/protocol.md, docs/cli.md).
 */
#ifndef TS_CLI_JOB_H
#define TS_CLI_JOB_H

#include "cli/cli_internal.h"

/* create, list and show, for main.c's table. */
extern const cli_command cli_job_commands[];

#endif
