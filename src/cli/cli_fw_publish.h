/* tessera fw publish | releases | withdraw (cli_fw_publish.c), for cli_fw.c's table. */
#ifndef TS_CLI_FW_PUBLISH_H
#define TS_CLI_FW_PUBLISH_H

#include "cli/cli_internal.h"

extern const cli_opt cli_fw_publish_opts[];
extern const cli_opt cli_fw_releases_opts[];
extern const cli_opt cli_fw_withdraw_opts[];

int cli_fw_publish(const cli_args *args);
int cli_fw_releases(const cli_args *args);
int cli_fw_withdraw(const cli_args *args);

#endif
