/*
 * An update the service offers: in a provisioning session (AGENT / FW_UPDATE) or as the arguments
 * of a signed "fw-update" command. The same JSON either way (docs/firmware-service.md).
 */
#ifndef TS_AGENT_AGENT_FW_OFFER_H
#define TS_AGENT_AGENT_FW_OFFER_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "tessera/agent.h"

enum { AGENT_FW_RELEASE_MAX = 64, AGENT_FW_URL_MAX = 2048 };

typedef struct agent_fw_offer {
    char release[AGENT_FW_RELEASE_MAX + 1];
    char url[AGENT_FW_URL_MAX + 1];
    uint64_t version; /* 0: not stated (a command) */
    char sha256[65];
} agent_fw_offer;

/* Reads an offer strictly: exactly release, url (https://), version (> 0) and sha256 (hex). */
TS_MUST_CHECK ts_err agent_fw_offer_parse(const uint8_t *data, size_t len, agent_fw_offer *out);

/* A signed command's arguments: ["URL", "SHA256"]. */
TS_MUST_CHECK ts_err agent_fw_offer_from_args(json_t *args, agent_fw_offer *out);

/*
 * Downloads and applies the offered file to the inactive slot (agent_fw_apply with the file's
 * SHA-256 pinned); summary gets one line saying what was applied.
 */
TS_MUST_CHECK ts_err agent_fw_offer_apply(ts_agent *a, const char *state_dir,
                                          const char *trust_file, const agent_fw_offer *offer,
                                          char *summary, size_t size);

#endif
