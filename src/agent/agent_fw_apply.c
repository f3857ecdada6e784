/*
 * tessera-agent fw apply: an update file streamed through the verifier into the inactive slot.
 * Memory is the manifest, one chunk and one read buffer, whatever the image's size. Nothing
 * reaches the slot before the manifest's signature, chain, hardware id and version were checked,
 * and then only chunks the verifier released (digest matched; GCM tag verified when encrypted).
 * The boot state changes only at the end, in one atomic replace, once the slot is synced and its
 * manifest kept: a failure or a kill before that leaves the record as it was, and tessera-boot
 * re-verifies every slot before handing over to it.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "agent/agent_fw.h"
#include "agent/agent_internal.h"
#include "common/error_internal.h"
#include "common/file_internal.h"

typedef struct apply_job {
    const char *state_dir;
    ts_keystore *ks;
    fw_conf conf;
    fw_state st;
    int target;
    int in_fd;
    int slot_fd;
    uint64_t written;
    int write_errno;
    uint8_t *manifest;
    size_t manifest_len;
    ts_fw_verifier *v;
} apply_job;

/* Reads exactly len bytes (hashing them when asked). */
static ts_err read_exact(apply_job *j, uint8_t *buf, size_t len, const char *what)
{
    size_t done = 0;
    while (done < len) {
        ssize_t n = read(j->in_fd, buf + done, len - done);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            return ts_error_set(TS_ERR_IO, "cannot read the update file: %s", strerror(errno));
        }
        if (n == 0) {
            return ts_error_set(TS_ERR_INVALID, "the update file is truncated in its %s", what);
        }
        done += (size_t)n;
    }
    return TS_OK;
}

/* The release function: an authenticated chunk goes to the slot. */
static int write_chunk(void *ctx, const uint8_t *data, size_t len)
{
    apply_job *j = ctx;
    size_t done = 0;
    while (done < len) {
        ssize_t n = pwrite(j->slot_fd, data + done, len - done, (off_t)(j->written + done));
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            j->write_errno = n < 0 ? errno : ENOSPC;
            return -1;
        }
        done += (size_t)n;
    }
    j->written += len;
    return 0;
}

/* The key-store key that decrypts: the fleet key, or this device's current identity key. */
static ts_err decrypt_label(apply_job *j, const ts_fw_info *info, char label[TS_LABEL_MAX + 1])
{
    agent_pointer cur;
    ts_err rv;

    if (info->enc_group) {
        int n =
            snprintf(label, TS_LABEL_MAX + 1, "%s%s", TS_FW_GROUP_LABEL_PREFIX, info->enc_key_id);
        if (n < 0 || n > TS_LABEL_MAX) {
            return ts_error_set(TS_ERR_INVALID, "the fleet key id '%s' makes no key-store label",
                                info->enc_key_id);
        }
        return TS_OK;
    }
    rv = agent_pointer_load(j->ks, &cur);
    if (rv == TS_ERR_NOT_FOUND) {
        ts_error_clear();
        snprintf(label, TS_LABEL_MAX + 1, "%s", TS_AGENT_KEY_LABEL);
        return TS_OK;
    }
    if (rv == TS_OK) {
        snprintf(label, TS_LABEL_MAX + 1, "%s", cur.key);
    }
    return rv;
}

/* Everything about the manifest that must hold before a byte reaches the slot. */
static ts_err check_manifest(apply_job *j, const ts_fw_info *info)
{
    uint64_t counter = 0;
    int running = j->st.booted != FW_NONE ? j->st.booted : j->st.active;
    uint64_t active_version = j->st.slot[j->st.active].version;
    ts_err rv = ts_keystore_counter_get(j->ks, FW_COUNTER_LABEL, &counter);

    if (rv != TS_OK) {
        return ts_error_prefix(rv, "reading the anti-rollback counter %s", FW_COUNTER_LABEL);
    }
    if (strcmp(info->hw, j->conf.hw) != 0) {
        return ts_error_set(TS_ERR_FOREIGN, "the update is for hardware '%s', this device is '%s'",
                            info->hw, j->conf.hw);
    }
    if (info->version <= counter) {
        return ts_error_set(TS_ERR_ROLLBACK,
                            "version %" PRIu64 " is not above the anti-rollback counter %" PRIu64,
                            info->version, counter);
    }
    if (info->version <= active_version) {
        return ts_error_set(TS_ERR_ROLLBACK,
                            "version %" PRIu64 " is not above the active slot's version %" PRIu64,
                            info->version, active_version);
    }
    if (info->has_min_version && info->min_version > j->st.slot[running].version) {
        return ts_error_set(TS_ERR_POLICY,
                            "the update needs version %" PRIu64 " or later installed; this device "
                            "runs %" PRIu64,
                            info->min_version, j->st.slot[running].version);
    }
    if (info->depends_count > 0) {
        return ts_error_set(TS_ERR_UNSUPPORTED,
                            "the update names dependencies, which this device cannot check");
    }
    return TS_OK;
}

/* Opens the target slot for writing: a regular file is truncated (mode 0700, so tessera-boot can
 * exec it), a block device must be large enough. */
static ts_err open_slot(apply_job *j, uint64_t size)
{
    const char *path = j->conf.slot[j->target];
    struct stat st;
    int flags = O_WRONLY | O_CLOEXEC | O_NOCTTY;
    int exists = stat(path, &st) == 0;
    int blk = exists && S_ISBLK(st.st_mode);

    if (!exists || S_ISREG(st.st_mode)) {
        flags |= O_CREAT | O_TRUNC;
    } else if (!blk) {
        return ts_error_set(TS_ERR_INVALID, "slot %c (%s) is not a regular file or block device",
                            fw_slot_name(j->target), path);
    }
    j->slot_fd = open(path, flags, 0700);
    if (j->slot_fd < 0) {
        return ts_error_set(TS_ERR_IO, "cannot open slot %c (%s): %s", fw_slot_name(j->target),
                            path, strerror(errno));
    }
    if (blk) {
        off_t end = lseek(j->slot_fd, 0, SEEK_END);
        if (end < 0 || (uint64_t)end < size) {
            return ts_error_set(TS_ERR_FULL,
                                "slot %c (%s) is smaller than the %" PRIu64 "-byte image",
                                fw_slot_name(j->target), path, size);
        }
    } else if (fchmod(j->slot_fd, 0700) != 0) {
        return ts_error_set(TS_ERR_IO, "cannot set the mode of %s: %s", path, strerror(errno));
    }
    return TS_OK;
}

/* The header and manifest, verified and checked; the verifier ready for the payload. */
static ts_err open_update(apply_job *j)
{
    uint8_t hdr_buf[TS_FW_HEADER_LEN];
    ts_fw_header hdr;
    X509_STORE *roots = NULL;
    const ts_fw_info *info;
    char label[TS_LABEL_MAX + 1];
    ts_err rv = read_exact(j, hdr_buf, sizeof hdr_buf, "header");

    if (rv == TS_OK) {
        rv = ts_fw_header_parse(hdr_buf, sizeof hdr_buf, &hdr);
    }
    if (rv == TS_OK) {
        j->manifest = OPENSSL_malloc(hdr.manifest_len);
        j->manifest_len = hdr.manifest_len;
        rv = j->manifest != NULL ? read_exact(j, j->manifest, hdr.manifest_len, "manifest")
                                 : ts_error_set(TS_ERR_NOMEM, "no memory for the manifest");
    }
    if (rv == TS_OK) {
        rv = fw_roots_load(j->ks, &roots);
    }
    if (rv == TS_OK) {
        rv = ts_fw_verifier_open(j->manifest, j->manifest_len, hdr.payload_len, roots, time(NULL),
                                 &j->v);
    }
    X509_STORE_free(roots);
    if (rv != TS_OK) {
        return rv;
    }
    info = ts_fw_verifier_info(j->v);
    rv = check_manifest(j, info);
    if (rv == TS_OK && info->encrypted) {
        rv = decrypt_label(j, info, label);
        if (rv == TS_OK) {
            rv = ts_fw_verifier_set_key(j->v, j->ks, label);
        }
        if (rv != TS_OK) {
            rv = ts_error_prefix(rv, "decrypting the update");
        }
    }
    return rv;
}

/* The payload through the verifier into the slot, then the end of the file. */
static ts_err stream_payload(apply_job *j, size_t read_size)
{
    uint8_t *buf = OPENSSL_malloc(read_size);
    ts_err rv = buf != NULL ? TS_OK : ts_error_set(TS_ERR_NOMEM, "no memory for reading");

    while (rv == TS_OK) {
        ssize_t n = read(j->in_fd, buf, read_size);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            rv = ts_error_set(TS_ERR_IO, "cannot read the update file: %s", strerror(errno));
            break;
        }
        if (n == 0) {
            break;
        }
        rv = ts_fw_verifier_feed(j->v, buf, (size_t)n, write_chunk, j);
        if (rv != TS_OK && j->write_errno != 0) {
            rv = ts_error_set(TS_ERR_IO, "cannot write slot %c: %s", fw_slot_name(j->target),
                              strerror(j->write_errno));
        }
    }
    OPENSSL_clear_free(buf, read_size);
    if (rv == TS_OK) {
        rv = ts_fw_verifier_finish(j->v);
    }
    return rv;
}

/* The whole file against the SHA-256 it is expected to have (an offered release), read once
 * before anything else, so a file other than the one offered never reaches the slot. */
static ts_err pin_check(const char *path, const char *want_hex)
{
    uint8_t md[32], buf[FW_IO_CHUNK];
    char hex[65];
    unsigned mdlen = 0;
    ts_err rv = TS_OK;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();

    if (fd < 0) {
        EVP_MD_CTX_free(ctx);
        return ts_error_set(errno == ENOENT ? TS_ERR_NOT_FOUND : TS_ERR_IO,
                            "cannot open the update file %s: %s", path, strerror(errno));
    }
    if (ctx == NULL || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
        rv = ts_error_set_openssl(TS_ERR_CRYPTO, "cannot hash the update file");
    }
    for (;;) {
        ssize_t n = rv == TS_OK ? read(fd, buf, sizeof buf) : 0;
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            rv = ts_error_set(TS_ERR_IO, "cannot read the update file: %s", strerror(errno));
        } else if (n > 0 && EVP_DigestUpdate(ctx, buf, (size_t)n) != 1) {
            rv = ts_error_set_openssl(TS_ERR_CRYPTO, "cannot hash the update file");
        }
        if (n <= 0 || rv != TS_OK) {
            break;
        }
    }
    close(fd);
    if (rv == TS_OK && (EVP_DigestFinal_ex(ctx, md, &mdlen) != 1 || mdlen != sizeof md)) {
        rv = ts_error_set_openssl(TS_ERR_CRYPTO, "cannot hash the update file");
    }
    EVP_MD_CTX_free(ctx);
    if (rv != TS_OK) {
        return rv;
    }
    for (size_t i = 0; i < sizeof md; i++) {
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    }
    if (strlen(want_hex) != 64 || CRYPTO_memcmp(hex, want_hex, 64) != 0) {
        return ts_error_set(TS_ERR_AUTH, "the update file's SHA-256 %s is not the expected %.64s",
                            hex, want_hex);
    }
    return TS_OK;
}

/* The slot synced, its manifest kept, then the record: pending. */
static ts_err commit(apply_job *j)
{
    const ts_fw_info *info = ts_fw_verifier_info(j->v);
    char mpath[PATH_MAX];
    ts_err rv = TS_OK;

    if (fsync(j->slot_fd) != 0) {
        rv = ts_error_set(TS_ERR_IO, "cannot sync slot %c: %s", fw_slot_name(j->target),
                          strerror(errno));
    }
    if (rv == TS_OK) {
        rv = fw_manifest_path(j->state_dir, j->target, mpath);
    }
    if (rv == TS_OK) {
        rv = ts_file_write_atomic(mpath, j->manifest, j->manifest_len, 0600);
    }
    if (rv == TS_OK) {
        j->st.slot[j->target].version = info->version;
        j->st.slot[j->target].seq = info->seq;
        j->st.slot[j->target].size = info->size;
        j->st.pending = j->target;
        j->st.attempts = 0;
        rv = fw_state_save(j->state_dir, &j->st);
    }
    return rv;
}

/* Applies a local file, under the lock. */
static ts_err apply_file(apply_job *j, const char *path, const agent_fw_apply_opts *o)
{
    ts_err rv = fw_conf_load(j->state_dir, &j->conf);

    if (rv == TS_OK) {
        rv = fw_state_load(j->state_dir, &j->st);
        if (rv == TS_ERR_NOT_FOUND) {
            ts_error_clear();
            fw_state_init(&j->st, j->conf.attempts);
            rv = TS_OK;
        }
    }
    if (rv == TS_OK && j->st.pending != FW_NONE && j->st.booted == j->st.pending) {
        rv = ts_error_set(TS_ERR_STATE,
                          "slot %c is running but not confirmed: confirm it (fw confirm) or boot "
                          "the active slot before another update",
                          fw_slot_name(j->st.pending));
    }
    if (rv != TS_OK) {
        return rv;
    }
    j->target = 1 - j->st.active;
    if (o->sha256 != NULL) {
        rv = pin_check(path, o->sha256);
        if (rv != TS_OK) {
            return rv;
        }
    }
    j->in_fd = open(path, O_RDONLY | O_CLOEXEC);
    if (j->in_fd < 0) {
        return ts_error_set(errno == ENOENT ? TS_ERR_NOT_FOUND : TS_ERR_IO,
                            "cannot open the update file %s: %s", path, strerror(errno));
    }
    rv = open_update(j);
    if (rv == TS_OK) {
        rv = open_slot(j, ts_fw_verifier_info(j->v)->size);
    }
    if (rv == TS_OK) {
        rv = stream_payload(j, o->read_size > 0 ? o->read_size : AGENT_FW_READ);
    }
    if (rv == TS_OK) {
        rv = commit(j);
    }
    return rv;
}

ts_err agent_fw_apply(ts_agent *a, const char *file_or_url, const agent_fw_apply_opts *o,
                      agent_fw_result *out)
{
    apply_job j;
    char dl[PATH_MAX] = "";
    const char *path = file_or_url;
    int lock = -1;
    int is_url = strncmp(file_or_url, "https://", 8) == 0;
    ts_err rv = fw_lock(o->state_dir, &lock);

    memset(out, 0, sizeof *out);
    memset(&j, 0, sizeof j);
    j.state_dir = o->state_dir;
    j.ks = ts_agent_keystore(a);
    j.in_fd = -1;
    j.slot_fd = -1;
    if (rv != TS_OK) {
        return rv;
    }
    fw_sweep_tmp(o->state_dir);
    if (is_url) {
        rv = fw_path(o->state_dir, AGENT_FW_DOWNLOAD, dl);
        if (rv == TS_OK) {
            rv = agent_fw_fetch(a, o->state_dir, file_or_url, o->trust_file, o->timeout, dl);
        }
        path = dl;
    } else if (strncmp(file_or_url, "http://", 7) == 0) {
        rv = ts_error_set(TS_ERR_INVALID, "updates are downloaded over https:// only");
    }
    if (rv == TS_OK) {
        rv = apply_file(&j, path, o);
    }
    if (rv == TS_OK) {
        out->slot = j.target;
        out->version = ts_fw_verifier_info(j.v)->version;
    }
    if (j.slot_fd >= 0) {
        close(j.slot_fd);
    }
    if (j.in_fd >= 0) {
        close(j.in_fd);
    }
    if (is_url && (rv == TS_OK || rv == TS_ERR_AUTH || rv == TS_ERR_INVALID || rv == TS_ERR_LIMIT ||
                   rv == TS_ERR_ROLLBACK || rv == TS_ERR_FOREIGN || rv == TS_ERR_POLICY)) {
        /* Applied, or refused for what it is: a partial download is kept only to resume. */
        char url_file[PATH_MAX + 8];
        snprintf(url_file, sizeof url_file, "%s.url", dl);
        (void)unlink(dl);
        (void)unlink(url_file);
    }
    ts_fw_verifier_free(j.v);
    OPENSSL_clear_free(j.manifest, j.manifest_len);
    fw_unlock(lock);
    return rv;
}
