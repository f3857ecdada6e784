/* tessera fw: firmware update files (cli_fw.c). */
#ifndef TS_CLI_FW_H
#define TS_CLI_FW_H

#include "cli/cli_internal.h"

extern const cli_command cli_fw_commands[];
extern const char cli_fw_help[];

#endif
