/*
 * tessera group: a tenant's device groups (docs/cli.md, docs/api.md).
 */
#ifndef TS_CLI_GROUP_H
#define TS_CLI_GROUP_H

#include "cli/cli_internal.h"

/* list, show, create, delete, add and remove, for main.c's table. */
extern const cli_command cli_group_commands[];

#endif
