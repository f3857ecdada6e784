/*
 * tessera-boot: the verified-boot stage for Linux hosts (docs/firmware-device.md).
 *
 *   tessera-boot --state DIR --keystore URI [--attempts N] [-- CMD ARGS...]
 *
 * Picks the pending slot while it has boot attempts left (counting the attempt durably before
 * handing over), else the active slot; re-verifies the chosen slot's image against its manifest
 * (signature and chain to the roots pinned in the key store, hardware id, every chunk, a version
 * not below the anti-rollback counter); falls back to the other slot when it is invalid, and
 * records what it did. Hands over by exec: CMD with TESSERA_BOOT_SLOT, TESSERA_BOOT_IMAGE and
 * TESSERA_BOOT_VERSION in its environment, or else the slot image itself. Nothing unverified is
 * ever executed: with no valid slot it exits 1.
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/error_internal.h"
#include "fota/slots.h"

enum { BOOT_OK = 0, BOOT_FAIL = 1, BOOT_USAGE = 2 };

static const char usage_text[] =
    "usage: tessera-boot --state DIR --keystore URI [--attempts N] [-- CMD ARGS...]\n";

typedef struct boot {
    const char *dir;
    fw_conf conf;
    fw_state st;
    X509_STORE *roots;
    uint64_t floor; /* the anti-rollback counter */
    unsigned max_attempts;
    int dirty; /* st must be written before handing over */
} boot;

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
    va_list ap;
    fputs("tessera-boot: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

/* Verifies slot; on success records its version in the state. */
static int slot_ok(boot *b, int slot, ts_fw_info *info)
{
    if (fw_slot_verify(b->dir, &b->conf, slot, b->roots, b->floor, info) != TS_OK) {
        say("%s", ts_error_message());
        return 0;
    }
    if (b->st.slot[slot].version != info->version || b->st.slot[slot].seq != info->seq ||
        b->st.slot[slot].size != info->size) {
        b->st.slot[slot].version = info->version;
        b->st.slot[slot].seq = info->seq;
        b->st.slot[slot].size = info->size;
        b->dirty = 1;
    }
    return 1;
}

/* A record that does not parse: choose by verification alone, most conservatively (the slot at
 * the counter's version, else the lowest valid version), and start a fresh record. */
static int rebuild(boot *b, ts_fw_info *info)
{
    ts_fw_info cand[FW_SLOTS];
    int ok[FW_SLOTS], chosen = FW_NONE;

    fw_state_init(&b->st, b->max_attempts);
    for (int i = 0; i < FW_SLOTS; i++) {
        ok[i] = slot_ok(b, i, &cand[i]);
    }
    for (int i = 0; i < FW_SLOTS; i++) {
        if (ok[i] &&
            (chosen == FW_NONE || cand[i].version == b->floor ||
             (cand[chosen].version != b->floor && cand[i].version < cand[chosen].version))) {
            chosen = i;
        }
    }
    if (chosen != FW_NONE) {
        b->st.active = chosen;
        b->st.confirmed = cand[chosen].version <= b->floor;
        *info = cand[chosen];
        b->dirty = 1;
    }
    return chosen;
}

/* The slot to hand over, with the record updated; FW_NONE when no slot is valid. */
static int choose(boot *b, int corrupt, ts_fw_info *info)
{
    int p = b->st.pending;

    if (corrupt) {
        return rebuild(b, info);
    }
    if (p != FW_NONE && b->st.attempts >= b->max_attempts) {
        say("slot %c was not confirmed after %u boot attempts: falling back to slot %c",
            fw_slot_name(p), b->st.attempts, fw_slot_name(b->st.active));
        b->st.pending = FW_NONE;
        b->st.attempts = 0;
        b->dirty = 1;
    } else if (p != FW_NONE) {
        if (slot_ok(b, p, info)) {
            b->st.attempts++;
            b->st.booted = p;
            b->dirty = 1;
            return p;
        }
        say("pending slot %c is not valid: falling back to slot %c", fw_slot_name(p),
            fw_slot_name(b->st.active));
        b->st.pending = FW_NONE;
        b->st.attempts = 0;
        b->dirty = 1;
    }
    if (slot_ok(b, b->st.active, info)) {
        if (b->st.booted != b->st.active) {
            b->st.booted = b->st.active;
            b->dirty = 1;
        }
        return b->st.active;
    }
    int other = 1 - b->st.active;
    if (slot_ok(b, other, info)) {
        say("active slot %c is not valid: falling back to slot %c", fw_slot_name(b->st.active),
            fw_slot_name(other));
        b->st.active = other;
        b->st.pending = FW_NONE;
        b->st.attempts = 0;
        b->st.booted = other;
        b->st.confirmed = 0;
        b->dirty = 1;
        return other;
    }
    return FW_NONE;
}

static int hand_over(const boot *b, int slot, const ts_fw_info *info, char **cmd)
{
    const char *image = b->conf.slot[slot];
    char name[2] = {fw_slot_name(slot), '\0'};
    char version[24];
    struct stat st;

    snprintf(version, sizeof version, "%" PRIu64, info->version);
    if (setenv("TESSERA_BOOT_SLOT", name, 1) != 0 || setenv("TESSERA_BOOT_IMAGE", image, 1) != 0 ||
        setenv("TESSERA_BOOT_VERSION", version, 1) != 0) {
        say("cannot set the environment: %s", strerror(errno));
        return BOOT_FAIL;
    }
    fflush(NULL);
    if (cmd != NULL && cmd[0] != NULL) {
        execvp(cmd[0], cmd);
        say("cannot run %s: %s", cmd[0], strerror(errno));
        return BOOT_FAIL;
    }
    if (stat(image, &st) != 0 || !S_ISREG(st.st_mode)) {
        say("slot %c is not a file to execute: give a command after --", name[0]);
        return BOOT_FAIL;
    }
    char *argv[] = {(char *)image, NULL};
    execv(image, argv);
    say("cannot execute slot %c (%s): %s", name[0], image, strerror(errno));
    return BOOT_FAIL;
}

static int parse(int argc, char **argv, const char **dir, const char **uri, unsigned *attempts,
                 char ***cmd)
{
    enum { O_STATE = 256, O_KS, O_ATT, O_HELP };
    static const struct option opts[] = {
        {"state", required_argument, NULL, O_STATE},
        {"keystore", required_argument, NULL, O_KS},
        {"attempts", required_argument, NULL, O_ATT},
        {"help", no_argument, NULL, O_HELP},
        {NULL, 0, NULL, 0},
    };
    char *end = NULL;
    unsigned long v;
    int c;

    opterr = 0;
    /* '+': stop at the first operand, so CMD's own options are left alone. */
    while ((c = getopt_long(argc, argv, "+:", opts, NULL)) != -1) {
        switch (c) {
        case O_STATE:
            *dir = optarg;
            break;
        case O_KS:
            *uri = optarg;
            break;
        case O_ATT:
            v = strtoul(optarg, &end, 10);
            if (optarg[0] < '0' || optarg[0] > '9' || *end != '\0' || v < 1 ||
                v > FW_ATTEMPTS_MAX) {
                say("--attempts must be a number from 1 to %d, not '%s'", FW_ATTEMPTS_MAX, optarg);
                return BOOT_USAGE;
            }
            *attempts = (unsigned)v;
            break;
        case O_HELP:
            fputs(usage_text, stdout);
            exit(BOOT_OK);
        case ':':
            say("%s needs a value", argv[optind - 1]);
            return BOOT_USAGE;
        default:
            say("unknown option '%s'", argv[optind - 1]);
            return BOOT_USAGE;
        }
    }
    if (*dir == NULL || *uri == NULL) {
        fputs(usage_text, stderr);
        return BOOT_USAGE;
    }
    *cmd = optind < argc ? argv + optind : NULL;
    return BOOT_OK;
}

int main(int argc, char **argv)
{
    const char *uri = NULL;
    unsigned attempts = 0;
    char **cmd = NULL;
    ts_keystore *ks = NULL;
    ts_fw_info info;
    boot b;
    int lock = -1, corrupt = 0, slot = FW_NONE;
    ts_err rv;

    memset(&b, 0, sizeof b);
    int status = parse(argc, argv, &b.dir, &uri, &attempts, &cmd);
    if (status != BOOT_OK) {
        return status;
    }
    rv = ts_keystore_open(uri, &ks);
    if (rv == TS_OK) {
        rv = fw_conf_load(b.dir, &b.conf);
    }
    if (rv == TS_OK) {
        rv = fw_lock(b.dir, &lock);
    }
    if (rv == TS_OK) {
        fw_sweep_tmp(b.dir);
        rv = fw_roots_load(ks, &b.roots);
    }
    if (rv == TS_OK) {
        rv = ts_keystore_counter_get(ks, FW_COUNTER_LABEL, &b.floor);
    }
    if (rv == TS_OK) {
        rv = fw_state_load(b.dir, &b.st);
        if (rv == TS_ERR_NOT_FOUND || rv == TS_ERR_CORRUPT) {
            if (rv == TS_ERR_CORRUPT) {
                say("%s: choosing a slot by verification alone", ts_error_message());
            }
            corrupt = 1;
            rv = TS_OK;
        }
    }
    if (rv != TS_OK) {
        say("%s", ts_error_message());
        status = BOOT_FAIL;
        goto done;
    }
    b.max_attempts = attempts != 0 ? attempts : corrupt ? b.conf.attempts : b.st.max_attempts;
    slot = choose(&b, corrupt, &info);
    if (slot != FW_NONE && b.dirty && fw_state_save(b.dir, &b.st) != TS_OK) {
        say("%s", ts_error_message());
        slot = FW_NONE;
    } else if (slot == FW_NONE && b.dirty && fw_state_save(b.dir, &b.st) != TS_OK) {
        say("%s", ts_error_message());
    }
    if (slot == FW_NONE) {
        say("no valid firmware image in slot a or b: nothing booted");
        status = BOOT_FAIL;
        goto done;
    }
    if (slot == b.st.pending) {
        say("booting pending slot %c, version %" PRIu64 " (attempt %u of %u)", fw_slot_name(slot),
            info.version, b.st.attempts, b.max_attempts);
    } else {
        say("booting slot %c, version %" PRIu64, fw_slot_name(slot), info.version);
    }
    fw_unlock(lock);
    lock = -1;
    X509_STORE_free(b.roots);
    b.roots = NULL;
    ts_keystore_free(ks);
    ks = NULL;
    status = hand_over(&b, slot, &info, cmd);
done:
    fw_unlock(lock);
    X509_STORE_free(b.roots);
    ts_keystore_free(ks);
    return status;
}
