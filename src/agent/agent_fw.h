/*
 * Firmware updates on the device (docs/firmware-device.md): the A/B slot layout, applying an
 * update file to the inactive slot, confirming a booted image. The slot and boot-state files are
 * shared with tessera-boot (src/fota/slots.h).
 *
 * Every call takes fw.lock in the state directory for its whole run, so an apply, a confirm and
 * tessera-boot never interleave.
 */
#ifndef TS_AGENT_AGENT_FW_H
#define TS_AGENT_AGENT_FW_H

#include <stddef.h>
#include <stdint.h>

#include "fota/slots.h"
#include "tessera/agent.h"

#define AGENT_FW_DOWNLOAD "fw.download" /* a partial download, kept to resume it */

/* Bytes per read of an update file being applied: several chunks, so the verifier can check
 * them on two threads (docs/firmware.md); memory stays this plus the verifier's. */
enum { AGENT_FW_READ = 1024 * 1024 };

/* What fw setup changes; NULL / 0 members keep what is configured. */
typedef struct agent_fw_setup_opts {
    const char *slot_a;
    const char *slot_b;
    const char *hw;
    unsigned attempts;
    const char *roots_file; /* PEM firmware roots to pin as fw.roots */
    int replace_roots;      /* replace pinned roots that differ (else refused) */
} agent_fw_setup_opts;

/*
 * Writes the slot layout (first time: both slots and the hardware id are required), records the
 * hardware id as the datastore's fw.hw, pins the roots, and starts the boot state when there is
 * none. *roots_changed says whether fw.roots was written.
 */
TS_MUST_CHECK ts_err agent_fw_setup(ts_agent *a, const char *state_dir,
                                    const agent_fw_setup_opts *o, int *roots_changed);

typedef struct agent_fw_apply_opts {
    const char *state_dir;
    size_t read_size;       /* bytes per read of the update file; 0: AGENT_FW_READ */
    const char *sha256;     /* NULL, or the hex SHA-256 the whole update file must have */
    const char *trust_file; /* URL: PEM roots the service must chain to; NULL: the datastore's */
    long timeout;           /* URL: seconds without progress before giving up; 0: default */
} agent_fw_apply_opts;

typedef struct agent_fw_result {
    int slot; /* 0 or 1 */
    uint64_t version;
    uint64_t previous; /* confirm: the counter before */
} agent_fw_result;

/*
 * Applies an update file (a path, or an https:// URL downloaded over mutual TLS with the device
 * identity, resumable) to the inactive slot: verifies the manifest against the pinned roots, the
 * hardware id, the version (above the fw.version counter and the active slot's, min_version not
 * above the running version), decrypts in the key store when the payload is encrypted, writes
 * only authenticated chunks, syncs the slot, keeps its manifest and marks it pending. A refusal
 * leaves the boot state and the active slot as they were.
 */
TS_MUST_CHECK ts_err agent_fw_apply(ts_agent *a, const char *file_or_url,
                                    const agent_fw_apply_opts *o, agent_fw_result *out);

/*
 * Confirms the booted image: when it is the pending slot, makes it active; then raises the
 * fw.version counter to its version. TS_ERR_STATE when nothing booted that can be confirmed.
 */
TS_MUST_CHECK ts_err agent_fw_confirm(ts_agent *a, const char *state_dir, agent_fw_result *out);

/* The layout, the boot state and the counter. */
TS_MUST_CHECK ts_err agent_fw_status(ts_agent *a, const char *state_dir, fw_conf *conf,
                                     fw_state *state, uint64_t *counter);

/* --- agent_fw_fetch.c --------------------------------------------------------------------- */

/*
 * Downloads url into path over mutual TLS with the current identity (roots: trust_file, else the
 * datastore's trust.roots), continuing a partial file there with Range: bytes=N-.
 */
TS_MUST_CHECK ts_err agent_fw_fetch(ts_agent *a, const char *state_dir, const char *url,
                                    const char *trust_file, long timeout, const char *path);

#endif
