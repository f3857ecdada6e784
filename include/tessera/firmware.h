/*
 * Firmware releases on the trust service (docs/firmware-service.md): update files
 * (docs/firmware.md) published for all devices of a tenant, one device or a device group; the
 * firmware version and hardware id each device last reported; and the offers of releases made to
 * devices in their provisioning sessions (docs/protocol.md, AGENT / FW_UPDATE).
 *
 * A release's file is kept under DIR/firmware/<sha256>.tsfw (DIR: the instance directory), named
 * by the SHA-256 of the whole update file; the store holds the release's facts. Publishing and
 * withdrawing are audited ("firmware.publish", "firmware.withdraw"), and so is each answer of a
 * device to an offer ("firmware.offer").
 *
 * Thread safety: like ts_ca, a handle belongs to one thread at a time.
 */
#ifndef TESSERA_FIRMWARE_H
#define TESSERA_FIRMWARE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "tessera/access.h"
#include "tessera/ca.h"
#include "tessera/error.h"
#include "tessera/export.h"
#include "tessera/fota.h"
#include "tessera/jobs.h"
#include "tessera/store.h"

#define TS_FW_DIR "firmware" /* under the instance directory */

enum {
    TS_FW_RELEASE_ID_LEN = 32,   /* hex characters of a release id (16 random bytes) */
    TS_FW_VERSION_TEXT_MAX = 64, /* characters of a reported firmware version */
    TS_FW_OFFER_ATTEMPTS = 3,    /* offers of one release to one device at most */
    TS_FW_SIGNER_MAX = 512,      /* characters of a signer subject kept with a release */
};

/* Request ids of offers (AGENT / FW_UPDATE) are TS_FW_OFFER_ID_BASE + the offer's row id, apart
 * from the ids of job requests. */
#define TS_FW_OFFER_ID_BASE ((int64_t)1 << 62)

typedef enum ts_fw_target_kind {
    TS_FW_TARGET_ALL = 1,    /* every device of the tenant */
    TS_FW_TARGET_DEVICE = 2, /* target = a device UID */
    TS_FW_TARGET_GROUP = 3,  /* target = a device group's name */
} ts_fw_target_kind;

typedef enum ts_fw_release_state {
    TS_FW_RELEASE_ACTIVE = 1,
    TS_FW_RELEASE_WITHDRAWN = 2,
} ts_fw_release_state;

typedef struct ts_fw_release_row {
    char id[TS_FW_RELEASE_ID_LEN + 1];
    int64_t tenant_id;
    uint64_t version;
    uint64_t seq;
    uint64_t min_version; /* 0 when none */
    char hw[TS_FW_HW_MAX + 1];
    uint64_t size;   /* bytes of the whole update file */
    char sha256[65]; /* of the whole update file, lower-case hex */
    int encrypted;   /* the payload is encrypted (chunks checked by the device only) */
    char signer[TS_FW_SIGNER_MAX + 1];
    ts_fw_target_kind target_kind;
    char target[TS_NAME_MAX + 1]; /* the UID or group name; empty for all */
    ts_fw_release_state state;
    char created_by[TS_TEXT_MAX];
    time_t created;
    time_t withdrawn; /* 0 while active */
} ts_fw_release_row;

/* What a device last reported (StatusReport.firmware_version and hardware_id). */
typedef struct ts_fw_device_row {
    char uid[TS_DEVICE_UID_MAX + 1];
    char version[TS_FW_VERSION_TEXT_MAX + 1];
    char hw[TS_FW_HW_MAX + 1];
    time_t reported;
} ts_fw_device_row;

typedef enum ts_fw_offer_state {
    TS_FW_OFFER_SENT = 1,   /* handed to a session, not answered yet */
    TS_FW_OFFER_DONE = 2,   /* the device answered ok */
    TS_FW_OFFER_FAILED = 3, /* the device answered with an error */
} ts_fw_offer_state;

typedef struct ts_fw_offer_row {
    int64_t id;
    char release_id[TS_FW_RELEASE_ID_LEN + 1];
    char device_uid[TS_DEVICE_UID_MAX + 1];
    ts_fw_offer_state state;
    char error_code[33];
    char error_message[513];
    time_t sent;
    time_t answered; /* 0: not yet */
} ts_fw_offer_row;

/* An offer to put in a session reply. */
typedef struct ts_fw_offer {
    int64_t request_id; /* TS_FW_OFFER_ID_BASE + offer id */
    ts_fw_release_row release;
} ts_fw_offer;

/* The answer of a device to an offer, from a session. */
typedef struct ts_fw_offer_answer {
    int64_t offer_id; /* request id - TS_FW_OFFER_ID_BASE */
    int ok;
    const char *error_code;
    const char *error_message;
} ts_fw_offer_answer;

TS_API const char *ts_fw_target_name(ts_fw_target_kind kind);       /* "all", "device", "group" */
TS_API const char *ts_fw_release_state_name(ts_fw_release_state s); /* "active", "withdrawn" */
TS_API const char *ts_fw_offer_state_name(ts_fw_offer_state s);     /* "sent", "done", "failed" */

/* TS_ERR_INVALID unless id is TS_FW_RELEASE_ID_LEN lower-case hex digits. */
TS_API TS_MUST_CHECK ts_err ts_fw_release_id_check(const char *id);

/*
 * A reported firmware version as a number: decimal digits (at most 2^63-1) give their value;
 * "unknown" and "" give 0; anything else is TS_ERR_INVALID (not comparable: nothing is offered).
 */
TS_API TS_MUST_CHECK ts_err ts_fw_version_parse(const char *text, uint64_t *out);

/* --- CA level (src/server/firmware*.c) ----------------------------------------------------- */

/*
 * Publishes the update file at path for a target of the tenant: streams it through the firmware
 * verifier against the instance's root (signature, chain, EKU codeSigning, every chunk digest;
 * an encrypted payload's manifest and length only), requires the signer to be issued by the
 * tenant's active issuing CA, the target device to be registered or the group to exist; copies it
 * to DIR/firmware/<sha256>.tsfw (atomically) and records the release, audited. A refused file
 * changes nothing.
 */
TS_API TS_MUST_CHECK ts_err ts_ca_fw_publish(ts_ca *ca, const char *tenant, const char *path,
                                             ts_fw_target_kind kind, const char *target,
                                             ts_fw_release_row *out);

/* The tenant's releases, newest first; OPENSSL_free(*rows). */
TS_API TS_MUST_CHECK ts_err ts_ca_fw_releases(ts_ca *ca, const char *tenant,
                                              ts_fw_release_row **rows, size_t *count);

/* One release of the tenant and its offers (OPENSSL_free(*offers); offers may be NULL). */
TS_API TS_MUST_CHECK ts_err ts_ca_fw_release_get(ts_ca *ca, const char *tenant, const char *id,
                                                 ts_fw_release_row *out, ts_fw_offer_row **offers,
                                                 size_t *noffers);

/* Withdraws an active release (no more offers or downloads); TS_ERR_STATE when withdrawn. */
TS_API TS_MUST_CHECK ts_err ts_ca_fw_withdraw(ts_ca *ca, const char *tenant, const char *id,
                                              ts_fw_release_row *out);

/*
 * The active release id for device uid of the tenant, when it targets the device (directly, by a
 * group it is in, or all); TS_ERR_NOT_FOUND otherwise. path receives the release's file.
 */
TS_API TS_MUST_CHECK ts_err ts_ca_fw_for_device(ts_ca *ca, const char *tenant, const char *uid,
                                                const char *id, ts_fw_release_row *out, char *path,
                                                size_t path_size);

/* What the device last reported; TS_ERR_NOT_FOUND when it never did. */
TS_API TS_MUST_CHECK ts_err ts_ca_fw_device_get(ts_ca *ca, const char *tenant, const char *uid,
                                                ts_fw_device_row *out);

/*
 * One session message in one transaction: the job answers (as ts_ca_job_session_record), the
 * offer answers, and, when status_json is not NULL, the status report with the firmware version
 * and hardware id it carries. When anything is refused nothing is kept.
 */
TS_API TS_MUST_CHECK ts_err ts_ca_fw_session_record(ts_ca *ca, const char *tenant, const char *uid,
                                                    const char *status_json, const char *fw_version,
                                                    const char *hw, const ts_job_answer *answers,
                                                    size_t count, const ts_fw_offer_answer *offers,
                                                    size_t noffers);

/*
 * The offer for the device now, when there is one (*found 1): the active release of the highest
 * version that targets it, whose hw is the device's reported hardware id, whose version is above
 * the reported version (and whose min_version is not above it); not when the device accepted it
 * already, answered "unsupported", was offered it TS_FW_OFFER_ATTEMPTS times, or failed it
 * without reporting since. An offer not answered yet is handed out again with the same id.
 */
TS_API TS_MUST_CHECK ts_err ts_ca_fw_offer_next(ts_ca *ca, const char *tenant, const char *uid,
                                                ts_fw_offer *out, int *found);

/* --- Store level (src/store/store_firmware*.c); writes need an open transaction ------------- */

TS_API TS_MUST_CHECK ts_err ts_store_fw_release_insert(ts_store *store,
                                                       const ts_fw_release_row *row);
TS_API TS_MUST_CHECK ts_err ts_store_fw_release_get(ts_store *store, int64_t tenant_id,
                                                    const char *id, ts_fw_release_row *out);
TS_API TS_MUST_CHECK ts_err ts_store_fw_release_list(ts_store *store, int64_t tenant_id,
                                                     ts_fw_release_row **rows, size_t *count);
/* TS_ERR_NOT_FOUND; TS_ERR_STATE when withdrawn already. */
TS_API TS_MUST_CHECK ts_err ts_store_fw_release_withdraw(ts_store *store, int64_t tenant_id,
                                                         const char *id, time_t now);
/*
 * Active releases that target device uid (all, the device, or a group it is in), with hardware
 * id hw when hw is not NULL; highest version first.
 */
TS_API TS_MUST_CHECK ts_err ts_store_fw_release_for_device(ts_store *store, int64_t tenant_id,
                                                           const char *uid, const char *hw,
                                                           ts_fw_release_row **rows, size_t *count);
/* Whether another release (of any tenant) uses the file with this SHA-256. */
TS_API TS_MUST_CHECK ts_err ts_store_fw_file_used(ts_store *store, const char *sha256, int *used);

TS_API TS_MUST_CHECK ts_err ts_store_fw_device_put(ts_store *store, int64_t tenant_id,
                                                   const ts_fw_device_row *row);
TS_API TS_MUST_CHECK ts_err ts_store_fw_device_get(ts_store *store, int64_t tenant_id,
                                                   const char *uid, ts_fw_device_row *out);

/* A new offer (state sent) of a release of the tenant; *id its row id. TS_ERR_NOT_FOUND when the
 * tenant has no such release. */
TS_API TS_MUST_CHECK ts_err ts_store_fw_offer_insert(ts_store *store, int64_t tenant_id,
                                                     const char *uid, const char *release_id,
                                                     time_t now, int64_t *id);
/* Offers, oldest first: of device uid (NULL: every device) and release_id (NULL: every one). */
TS_API TS_MUST_CHECK ts_err ts_store_fw_offer_list(ts_store *store, int64_t tenant_id,
                                                   const char *uid, const char *release_id,
                                                   ts_fw_offer_row **rows, size_t *count);
/* A sent, unanswered offer of the tenant handed out again at now; any other row is left as it
 * is. */
TS_API TS_MUST_CHECK ts_err ts_store_fw_offer_mark_sent(ts_store *store, int64_t tenant_id,
                                                        int64_t id, time_t now);
/* Records an answer to a sent offer of the device; TS_ERR_NOT_FOUND otherwise. *out the row. */
TS_API TS_MUST_CHECK ts_err ts_store_fw_offer_answer(ts_store *store, int64_t tenant_id,
                                                     const char *uid, const ts_fw_offer_answer *a,
                                                     time_t now, ts_fw_offer_row *out);

#endif
