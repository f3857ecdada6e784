/* tessera-agent fw: firmware slots, apply, confirm, status (docs/firmware-device.md). */
#ifndef TS_AGENT_CLI_AGENT_CMD_FW_H
#define TS_AGENT_CLI_AGENT_CMD_FW_H

/* Runs `fw ...` with its own options; argv[0] is "fw". Returns the exit status. */
int agent_cmd_fw(int argc, char **argv);

#endif
