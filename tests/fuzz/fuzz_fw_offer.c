/*
 * libFuzzer target for the update offers a device is sent (src/agent/agent_fw_offer.c): the
 * bytes as a provisioning session's FW_UPDATE data and, when they are JSON, as a signed
 * "fw-update" command's arguments. An accepted offer has an https:// URL, a 64-digit lower-case
 * hex SHA-256 and a release id within its limits, and parsing it again gives the same offer.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "agent/agent_fw_offer.h"
#include "common/error_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const agent_fw_offer *o)
{
    if (strncmp(o->url, "https://", 8) != 0 || strlen(o->sha256) != 64 ||
        strspn(o->sha256, "0123456789abcdef") != 64 || o->release[0] == '\0' ||
        strlen(o->release) > AGENT_FW_RELEASE_MAX) {
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    agent_fw_offer a, b;
    if (agent_fw_offer_parse(data, size, &a) == TS_OK) {
        check(&a);
        json_t *again = json_pack("{s:s, s:s, s:I, s:s}", "release", a.release, "url", a.url,
                                  "version", (json_int_t)a.version, "sha256", a.sha256);
        char *text = again != NULL ? json_dumps(again, JSON_COMPACT) : NULL;
        if (text == NULL ||
            agent_fw_offer_parse((const uint8_t *)text, strlen(text), &b) != TS_OK ||
            memcmp(&a, &b, sizeof a) != 0) {
            abort();
        }
        free(text);
        json_decref(again);
    }
    ts_error_clear();
    json_t *args = json_loadb((const char *)data, size, 0, NULL);
    if (args != NULL && agent_fw_offer_from_args(args, &a) == TS_OK) {
        check(&a);
        if (a.version != 0) {
            abort(); /* a command states no version */
        }
    }
    json_decref(args);
    ts_error_clear();
    return 0;
}
