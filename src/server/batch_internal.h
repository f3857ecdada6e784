/* Inside tessera batch (batch.c, batch_job.c): the run's state, the job file and the manifest. */
#ifndef TS_SERVER_BATCH_INTERNAL_H
#define TS_SERVER_BATCH_INTERNAL_H

#include "server/server_internal.h"

typedef struct batch {
    ts_ca *ca;
    const ts_batch_params *p;
    char out[TS_CA_PATH_MAX];      /* OUT, absolute */
    char devices[TS_CA_PATH_MAX];  /* OUT/devices */
    char manifest[TS_CA_PATH_MAX]; /* OUT/manifest.jsonl */
    char job[17];                  /* the job id: lower-case hex */
    char *template_uri;            /* --keystore-template, or NULL */
    ts_keystore *template_ks;
    srv_issue_ctx ctx;
    ts_cert_row *done; /* the job's certificates in the store when the run started */
    size_t ndone;
    int lock_fd;
    char last_uid[TS_NAME_MAX + 1];
} batch;

/* Reads OUT/batch.json, or starts a job (batch.json, then the store's record of it). */
ts_err batch_job_open(batch *b, size_t job_bytes);

/* Appends the device's manifest line and fsyncs the manifest. */
ts_err batch_manifest_append(batch *b, const ts_cert_row *row);

/* Brings the manifest in line with the store's list of finished devices (b->done). */
ts_err batch_manifest_reconcile(batch *b, ts_batch_result *res);

/* A device's key-store URI as the manifest gives it. */
ts_err batch_device_uri(const batch *b, const char *uid, char *uri, size_t size);

/* A soft-store device's paths (each TS_CA_PATH_MAX bytes, or NULL when not wanted). */
ts_err batch_device_paths(const batch *b, const char *uid, char *store, char *pin, char *dir);

#endif
