/*
 * The firmware offer of a provisioning session (docs/firmware-service.md): AGENT / FW_UPDATE
 * whose data is {"release","url","version","sha256"}. The URL is on the host the device reached
 * this service by (its Host header), else the listen address.
 */
#include <string.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "common/error_internal.h"
#include "service/svc_session_internal.h"

enum { HOST_MAX = 255 };

/* A Host header as a URL authority: a name or address with an optional port, nothing else. */
static int host_ok(const char *h)
{
    size_t n = h != NULL ? strlen(h) : 0;
    return n > 0 && n <= HOST_MAX &&
           strspn(h, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:[]") == n;
}

ts_err svc_session_offer(svc_request *r, const char *tenant, const char *uid,
                         Tessera__Agent__V1__Request *req, char **data)
{
    ts_fw_offer offer;
    int found = 0;
    *data = NULL;
    ts_err rv = ts_ca_fw_offer_next(r->ca, tenant, uid, &offer, &found);
    if (rv != TS_OK || !found) {
        return rv;
    }
    const char *host = svc_header(r, "Host");
    if (!host_ok(host)) {
        host = svc_server_config(svc_worker_server(r->worker))->listen;
    }
    char url[HOST_MAX + 64 + TS_FW_RELEASE_ID_LEN];
    snprintf(url, sizeof url, "https://%s/agent/v1/firmware/%s", host, offer.release.id);
    json_t *doc =
        json_pack("{s:s, s:s, s:I, s:s}", "release", offer.release.id, "url", url, "version",
                  (json_int_t)offer.release.version, "sha256", offer.release.sha256);
    char *text = doc != NULL ? json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(doc);
    if (text == NULL) {
        return ts_error_set(TS_ERR_NOMEM, "out of memory writing a firmware offer");
    }
    *data = OPENSSL_strdup(text);
    free(text);
    if (*data == NULL) {
        return ts_error_set(TS_ERR_NOMEM, "out of memory");
    }
    tessera__agent__v1__request__init(req);
    req->id = (uint64_t)offer.request_id;
    req->endpoint = TESSERA__AGENT__V1__ENDPOINT__AGENT;
    req->operation = TESSERA__AGENT__V1__OPERATION__FW_UPDATE;
    req->data.data = (uint8_t *)*data;
    req->data.len = strlen(*data);
    return TS_OK;
}
