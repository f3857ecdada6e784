/*
 * An update offered by the service (docs/firmware-service.md): the JSON a provisioning session's
 * FW_UPDATE request carries,
 *   {"release": ID, "url": "https://...", "version": N, "sha256": HEX}
 * or the two arguments of a signed "fw-update" command, URL and SHA256. Read strictly, then applied
 * like `tessera-agent fw apply URL` with the whole file's SHA-256 pinned: the downloaded file is
 * hashed before anything of it is written, so a file other than the one offered never reaches the
 * slot.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "agent/agent_fw.h"
#include "agent/agent_fw_offer.h"
#include "common/error_internal.h"

enum { OFFER_JSON_MAX = 4096 };

static int hex64(const char *s)
{
    if (s == NULL || strlen(s) != 64) {
        return 0;
    }
    for (const char *p = s; *p != '\0'; p++) {
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f'))) {
            return 0;
        }
    }
    return 1;
}

static int release_id_ok(const char *s)
{
    size_t n = s != NULL ? strlen(s) : 0;
    if (n == 0 || n > AGENT_FW_RELEASE_MAX) {
        return 0;
    }
    for (const char *p = s; *p != '\0'; p++) {
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
              *p == '-' || *p == '_' || *p == '.')) {
            return 0;
        }
    }
    return 1;
}

static ts_err url_check(const char *url)
{
    if (url == NULL || strncmp(url, "https://", 8) != 0 || strlen(url) <= 8 ||
        strlen(url) > AGENT_FW_URL_MAX) {
        return ts_error_set(TS_ERR_INVALID,
                            "the update's url is not an https:// URL of at most %d characters",
                            AGENT_FW_URL_MAX);
    }
    return TS_OK;
}

ts_err agent_fw_offer_from_args(json_t *args, agent_fw_offer *out)
{
    memset(out, 0, sizeof *out);
    const char *url = json_string_value(json_array_get(args, 0));
    const char *sha = json_string_value(json_array_get(args, 1));
    if (!json_is_array(args) || json_array_size(args) != 2 || url == NULL || sha == NULL) {
        return ts_error_set(TS_ERR_INVALID, "fw-update takes two arguments: URL and SHA256");
    }
    ts_err rv = url_check(url);
    if (rv != TS_OK) {
        return rv;
    }
    if (!hex64(sha)) {
        return ts_error_set(TS_ERR_INVALID, "the update's sha256 is not 64 lower-case hex digits");
    }
    /* The release is the URL's last segment when it looks like one (the service's download
     * URLs end with it); only the summary line uses it. */
    const char *slash = strrchr(url, '/');
    snprintf(out->release, sizeof out->release, "%s",
             slash != NULL && release_id_ok(slash + 1) ? slash + 1 : "-");
    snprintf(out->url, sizeof out->url, "%s", url);
    snprintf(out->sha256, sizeof out->sha256, "%s", sha);
    return TS_OK;
}

static ts_err offer_from_json(json_t *obj, agent_fw_offer *out)
{
    const char *release = NULL, *url = NULL, *sha = NULL;
    json_t *version = NULL;

    memset(out, 0, sizeof *out);
    if (!json_is_object(obj) || json_object_size(obj) != 4 ||
        json_unpack(obj, "{s:s, s:s, s:o, s:s}", "release", &release, "url", &url, "version",
                    &version, "sha256", &sha) != 0) {
        return ts_error_set(TS_ERR_INVALID, "an update offer is an object of exactly release, url, "
                                            "version and sha256");
    }
    if (!release_id_ok(release)) {
        return ts_error_set(TS_ERR_INVALID,
                            "the offer's release id is not 1 to %d of "
                            "[A-Za-z0-9._-]",
                            AGENT_FW_RELEASE_MAX);
    }
    ts_err rv = url_check(url);
    if (rv != TS_OK) {
        return rv;
    }
    if (!json_is_integer(version) || json_integer_value(version) < 1) {
        return ts_error_set(TS_ERR_INVALID, "the offer's version is not a positive integer");
    }
    if (!hex64(sha)) {
        return ts_error_set(TS_ERR_INVALID, "the offer's sha256 is not 64 lower-case hex digits");
    }
    snprintf(out->release, sizeof out->release, "%s", release);
    snprintf(out->url, sizeof out->url, "%s", url);
    snprintf(out->sha256, sizeof out->sha256, "%s", sha);
    out->version = (uint64_t)json_integer_value(version);
    return TS_OK;
}

ts_err agent_fw_offer_parse(const uint8_t *data, size_t len, agent_fw_offer *out)
{
    memset(out, 0, sizeof *out);
    if (data == NULL || len == 0 || len > OFFER_JSON_MAX) {
        return ts_error_set(TS_ERR_INVALID, "an update offer is 1 to %d bytes of JSON",
                            OFFER_JSON_MAX);
    }
    json_t *obj = json_loadb((const char *)data, len, JSON_REJECT_DUPLICATES, NULL);
    if (obj == NULL) {
        return ts_error_set(TS_ERR_INVALID, "the update offer is not JSON");
    }
    ts_err rv = offer_from_json(obj, out);
    json_decref(obj);
    return rv;
}

ts_err agent_fw_offer_apply(ts_agent *a, const char *state_dir, const char *trust_file,
                            const agent_fw_offer *offer, char *summary, size_t size)
{
    agent_fw_apply_opts o;
    agent_fw_result res;

    memset(&o, 0, sizeof o);
    o.state_dir = state_dir;
    o.sha256 = offer->sha256;
    o.trust_file = trust_file;
    ts_err rv = agent_fw_apply(a, offer->url, &o, &res);
    if (rv != TS_OK) {
        return ts_error_prefix(rv, "release %s", offer->release);
    }
    if (offer->version != 0 && res.version != offer->version) {
        /* Signed and applied, but not what the service said: worth saying, not worth undoing
         * (the signature, not the offer, is what the device trusts). */
        snprintf(summary, size,
                 "applied release %s: version %" PRIu64 " (offered as %" PRIu64
                 ") to slot %c, pending",
                 offer->release, res.version, offer->version, res.slot == 0 ? 'a' : 'b');
    } else {
        snprintf(summary, size, "applied release %s: version %" PRIu64 " to slot %c, pending",
                 offer->release, res.version, res.slot == 0 ? 'a' : 'b');
    }
    return TS_OK;
}
