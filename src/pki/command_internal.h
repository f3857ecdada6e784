/* The JSON content of command envelopes and results, shared by command.c and command_cms.c. */
#ifndef TS_PKI_COMMAND_INTERNAL_H
#define TS_PKI_COMMAND_INTERNAL_H

#include <stddef.h>

#include "tessera/command.h"

/* Every field within its limits; TS_ERR_INVALID naming the first that is not. */
ts_err ts_command_check(const ts_command *cmd);
ts_err ts_command_result_check(const ts_command_result *r);

/* Checked, then the compact JSON; *text is freed with free(). */
ts_err ts_command_encode(const ts_command *cmd, char **text, size_t *len);
ts_err ts_command_result_encode(const ts_command_result *r, char **text, size_t *len);

/* Strict: known keys only, each of its type, no duplicates; then checked as above. */
ts_err ts_command_decode(const char *text, size_t len, ts_command *out);
ts_err ts_command_result_decode(const char *text, size_t len, ts_command_result *out);

#endif
