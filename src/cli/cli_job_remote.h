/*
 * The remote branches of tessera job (cli_job_remote.c): the same commands through a running
 * service's REST API, printing what they print on --dir.
 */
#ifndef TS_CLI_JOB_REMOTE_H
#define TS_CLI_JOB_REMOTE_H

#include "cli/cli_internal.h"
#include "tessera/jobs.h"

/* POST .../jobs for the device of spec, or for every member of group when it is not NULL. */
int cli_remote_job_create(const cli_args *args, const ts_job_spec *spec, const char *group);

/* The tenant's newest max jobs, only those of device when it is not NULL. */
int cli_remote_job_list(const cli_args *args, const char *device, size_t max);

/* A job and the result of each of its requests. */
int cli_remote_job_show(const cli_args *args, int64_t id);

#endif
