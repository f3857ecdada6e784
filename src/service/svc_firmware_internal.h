/*
 * Firmware releases over HTTP (docs/api.md "Firmware releases", docs/firmware-service.md): the
 * REST routes of a tenant's releases and the devices' download route.
 */
#ifndef TS_SVC_FIRMWARE_INTERNAL_H
#define TS_SVC_FIRMWARE_INTERNAL_H

#include "service/svc_internal.h"
#include "tessera/firmware.h"

/* svc_api_firmware.c: /api/v1/tenants/{tenant}/firmware..., /agent/v1/firmware/{id} */
extern const svc_route svc_firmware_routes[];

/* GET /agent/v1/firmware/{id} (svc_firmware_download.c) */
void svc_firmware_download(svc_request *r);

#endif
