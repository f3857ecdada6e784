/* tessera rtp: offline provisioning (docs/rtp.md): export bundles, serve them over TCP. */
#ifndef TS_CLI_CLI_RTP_H
#define TS_CLI_CLI_RTP_H

#include "cli/cli_internal.h"

extern const cli_command cli_rtp_commands[];

extern const cli_opt cli_rtp_serve_opts[];
extern const char cli_rtp_serve_help[];
int cli_rtp_serve_run(const cli_args *args);

#endif
