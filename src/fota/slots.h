/*
 * A/B firmware slots on a device, shared by tessera-agent (fw setup/apply/confirm/status) and
 * tessera-boot (docs/firmware-device.md).
 *
 * In the state directory:
 *   fw.conf          the slot layout: the two slot paths, the hardware id, the attempt limit
 *   fw.state         the boot-state record (JSON, replaced atomically: temporary file, fsync,
 *                    rename, fsync of the directory), so a kill at any instant leaves the old
 *                    record or the new one
 *   fw.manifest.a/b  each slot's manifest (the CMS DER of the update it came from)
 *   fw.lock          taken by every command that reads and changes the record
 * In the key store: data object fw.roots (the pinned firmware roots, PEM) and counter
 * fw.version (anti-rollback: the highest confirmed version).
 *
 * Not thread-safe; processes take turns with fw_lock().
 */
#ifndef TS_FOTA_SLOTS_H
#define TS_FOTA_SLOTS_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

#include "tessera/fota.h"
#include "tessera/keystore.h"

#define FW_CONF_FILE     "fw.conf"
#define FW_STATE_FILE    "fw.state"
#define FW_LOCK_FILE     "fw.lock"
#define FW_ROOTS_LABEL   "fw.roots"
#define FW_COUNTER_LABEL "fw.version"
#define FW_HW_ENTRY      "fw.hw"

enum {
    FW_SLOTS = 2,
    FW_NONE = -1,            /* no slot */
    FW_ATTEMPTS_DEFAULT = 3, /* boots of a pending image before it is given up */
    FW_ATTEMPTS_MAX = 1000,
    FW_STATE_MAX = 4096, /* bytes of fw.state or fw.conf */
    FW_IO_CHUNK = 64 * 1024,
};

/* The slot layout, from `tessera-agent fw setup`. */
typedef struct fw_conf {
    char slot[FW_SLOTS][PATH_MAX];
    char hw[TS_FW_HW_MAX + 1];
    unsigned attempts; /* the default limit of boot attempts of a pending image */
} fw_conf;

/* What the record says of one slot: the last image committed to it (0s when none). */
typedef struct fw_slot_rec {
    uint64_t version;
    uint64_t seq;
    uint64_t size; /* bytes of the plaintext image */
} fw_slot_rec;

/* The boot-state record. */
typedef struct fw_state {
    uint64_t generation; /* raised by every write */
    int active;          /* 0 (a) or 1 (b): the slot booted when nothing is pending */
    int pending;         /* FW_NONE, or the slot to try next */
    int booted;          /* FW_NONE, or the slot tessera-boot last handed over */
    unsigned attempts;   /* boots of the pending slot so far */
    unsigned max_attempts;
    int confirmed; /* the booted active slot was confirmed */
    fw_slot_rec slot[FW_SLOTS];
} fw_state;

/* 'a' or 'b'. */
char fw_slot_name(int slot);

/* dir/name into out; TS_ERR_INVALID when too long. */
TS_MUST_CHECK ts_err fw_path(const char *dir, const char *name, char out[PATH_MAX]);

/* dir/fw.manifest.a or .b. */
TS_MUST_CHECK ts_err fw_manifest_path(const char *dir, int slot, char out[PATH_MAX]);

/* Checks a hardware id: 1 to TS_FW_HW_MAX of [A-Za-z0-9._:/-]. */
TS_MUST_CHECK ts_err fw_hw_check(const char *hw);

/* Reads fw.conf strictly; TS_ERR_STATE (with a hint to run fw setup) when there is none. */
TS_MUST_CHECK ts_err fw_conf_load(const char *dir, fw_conf *c);
TS_MUST_CHECK ts_err fw_conf_save(const char *dir, const fw_conf *c);

/* A fresh record: slot a active, nothing pending or booted, all versions 0. */
void fw_state_init(fw_state *s, unsigned max_attempts);

/* Reads fw.state strictly; TS_ERR_NOT_FOUND when there is none, TS_ERR_CORRUPT when it does not
 * parse. */
TS_MUST_CHECK ts_err fw_state_load(const char *dir, fw_state *s);

/* Raises s->generation and replaces fw.state atomically and durably. */
TS_MUST_CHECK ts_err fw_state_save(const char *dir, fw_state *s);

/* Encodes / strictly decodes the record (for tests and the files above). */
TS_MUST_CHECK ts_err fw_state_encode(const fw_state *s, char **json);
TS_MUST_CHECK ts_err fw_state_decode(const uint8_t *data, size_t len, fw_state *s);

/* Takes fw.lock in dir (blocking); release with fw_unlock(). */
TS_MUST_CHECK ts_err fw_lock(const char *dir, int *fd);
void fw_unlock(int fd);

/* Removes the temporary files (fw.*.tmp-*) a killed write left in dir; call under fw_lock(). */
void fw_sweep_tmp(const char *dir);

/* The pinned firmware roots (key-store data object fw.roots) as a store. */
TS_MUST_CHECK ts_err fw_roots_load(ts_keystore *ks, X509_STORE **out);

/* Parses PEM certificates (at least one, all CA-capable or self-signed) into a store. */
TS_MUST_CHECK ts_err fw_roots_parse(const uint8_t *pem, size_t len, X509_STORE **out);

/*
 * Re-verifies the image in a slot against the manifest kept beside the state: the manifest's
 * signature and chain to roots now, EKU codeSigning, the plaintext image's chunks (streamed,
 * constant memory), the hardware id c->hw, and a version not below floor. info gets the
 * manifest's contents. Nothing is changed.
 */
TS_MUST_CHECK ts_err fw_slot_verify(const char *dir, const fw_conf *c, int slot, X509_STORE *roots,
                                    uint64_t floor, ts_fw_info *info);

#endif
