/* tessera device command / device commands (cli_command.c), listed in cli_device.c's table. */
#ifndef TS_CLI_COMMAND_H
#define TS_CLI_COMMAND_H

#include "cli/cli_instance.h"

extern const cli_opt cli_command_opts[];
extern const cli_opt cli_commands_opts[];

int cli_command_run(const cli_args *args);
int cli_commands_run(const cli_args *args);

#endif
