/* tessera fw: firmware update files (cli_fw.c: sign; cli_fw_verify.c: verify, inspect). */
#ifndef TS_CLI_FW_H
#define TS_CLI_FW_H

#include <openssl/x509.h>

#include "cli/cli_internal.h"

extern const cli_command cli_fw_commands[];
extern const char cli_fw_help[];

extern const cli_opt cli_fw_verify_opts[];
extern const cli_opt cli_fw_inspect_opts[];
int cli_fw_cmd_verify(const cli_args *args);
int cli_fw_cmd_inspect(const cli_args *args);

/* --NAME as an integer 0..2^63-1 (a usage error otherwise). */
int cli_fw_parse_u63(const cli_args *args, const char *name, uint64_t *out);

/* Every PEM certificate of path (at least one). */
ts_err cli_fw_load_certs(const char *path, STACK_OF(X509) * *out);

#endif
