/* The agent handle, the device UID and the claim code. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/crypto.h>

#include "agent/agent_internal.h"
#include "common/error_internal.h"
#include "common/file_internal.h"

static ts_err agent_open(const char *keystore_uri, const char *state_dir, int lock_it,
                         ts_agent **out)
{
    char lock[PATH_MAX];
    ts_agent *a = NULL;
    ts_err rv;

    *out = NULL;
    if (keystore_uri == NULL || state_dir == NULL || state_dir[0] == '\0') {
        return ts_error_set(TS_ERR_INVALID,
                            "the agent needs a key store URI and a state directory");
    }
    if (mkdir(state_dir, 0700) != 0 && errno != EEXIST) {
        return ts_error_set(TS_ERR_IO, "cannot make the state directory %s: %s", state_dir,
                            strerror(errno));
    }
    if ((size_t)snprintf(lock, sizeof lock, "%s/agent.lock", state_dir) >= sizeof lock) {
        return ts_error_set(TS_ERR_INVALID, "state directory path too long");
    }
    a = OPENSSL_zalloc(sizeof *a);
    if (a == NULL) {
        return ts_error_set(TS_ERR_NOMEM, "out of memory");
    }
    a->lock_fd = -1;
    /* One agent at a time per device: enrollments must not interleave their commits. */
    rv = lock_it ? ts_file_lock(lock, &a->lock_fd) : TS_OK;
    if (rv == TS_OK) {
        rv = ts_keystore_open(keystore_uri, &a->ks);
    }
    if (rv != TS_OK) {
        ts_agent_free(a);
        return rv;
    }
    *out = a;
    return TS_OK;
}

ts_err ts_agent_open(const char *keystore_uri, const char *state_dir, ts_agent **out)
{
    return agent_open(keystore_uri, state_dir, 1, out);
}

ts_err agent_open_unlocked(const char *keystore_uri, const char *state_dir, ts_agent **out)
{
    return agent_open(keystore_uri, state_dir, 0, out);
}

void ts_agent_free(ts_agent *agent)
{
    if (agent == NULL) {
        return;
    }
    ts_keystore_free(agent->ks);
    if (agent->lock_fd >= 0) {
        ts_file_unlock(agent->lock_fd);
    }
    OPENSSL_free(agent);
}

ts_keystore *ts_agent_keystore(ts_agent *agent)
{
    return agent->ks;
}

static ts_err uid_check(const char *uid)
{
    size_t n = strlen(uid);
    if (n == 0 || n > TS_AGENT_UID_MAX ||
        strspn(uid, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._:-") != n) {
        return ts_error_set(TS_ERR_INVALID,
                            "device UID '%.80s' is not 1 to %d characters of [A-Za-z0-9._:-]", uid,
                            TS_AGENT_UID_MAX);
    }
    return TS_OK;
}

ts_err ts_agent_uid(ts_agent *agent, char uid[TS_AGENT_UID_MAX + 1])
{
    uint8_t *data = NULL;
    size_t len = 0;
    ts_err rv = ts_keystore_object_get(agent->ks, TS_AGENT_UID_LABEL, &data, &len);

    uid[0] = '\0';
    if (rv == TS_ERR_NOT_FOUND) {
        return ts_error_set(TS_ERR_STATE, "the device has no UID: run 'tessera-agent init' first");
    }
    if (rv != TS_OK) {
        return rv;
    }
    if (len == 0 || len > TS_AGENT_UID_MAX || memchr(data, '\0', len) != NULL) {
        rv = ts_error_set(TS_ERR_CORRUPT, "the key store's '%s' object is not a device UID",
                          TS_AGENT_UID_LABEL);
    } else {
        memcpy(uid, data, len);
        uid[len] = '\0';
        rv = uid_check(uid);
        if (rv != TS_OK) {
            rv = ts_error_prefix(TS_ERR_CORRUPT, "key store object '%s'", TS_AGENT_UID_LABEL);
            uid[0] = '\0';
        }
    }
    OPENSSL_clear_free(data, len);
    return rv;
}

/* The default UID: the key store's random 16-byte UID in lowercase hexadecimal. */
static ts_err uid_default(ts_keystore *ks, char uid[TS_AGENT_UID_MAX + 1])
{
    uint8_t raw[TS_KEYSTORE_UID_LEN];
    ts_err rv = ts_keystore_uid(ks, raw);

    if (rv != TS_OK) {
        return rv;
    }
    for (size_t i = 0; i < sizeof raw; i++) {
        snprintf(uid + 2 * i, 3, "%02x", raw[i]);
    }
    return TS_OK;
}

ts_err ts_agent_init(ts_agent *agent, const char *uid_or_null, char uid[TS_AGENT_UID_MAX + 1],
                     int *created)
{
    char want[TS_AGENT_UID_MAX + 1];
    EVP_PKEY *pub = NULL;
    ts_err rv;

    *created = 0;
    uid[0] = '\0';
    if (uid_or_null != NULL) {
        rv = uid_check(uid_or_null);
        if (rv != TS_OK) {
            return rv;
        }
        snprintf(want, sizeof want, "%s", uid_or_null);
    } else {
        rv = uid_default(agent->ks, want);
        if (rv != TS_OK) {
            return rv;
        }
    }
    /* The key first: a UID recorded without a key would look set up when it is not. An
     * enrolled device's key is the one its identity pointer names (a rekey replaces
     * "identity"), so then there is nothing to make. */
    agent_pointer current;
    rv = agent_pointer_load(agent->ks, &current);
    int enrolled = rv == TS_OK;
    const char *key = enrolled ? current.key : TS_AGENT_KEY_LABEL;
    if (rv != TS_OK && rv != TS_ERR_NOT_FOUND) {
        return ts_error_prefix(rv, "the current identity");
    }
    rv = ts_keystore_public_key(agent->ks, key, &pub);
    if (rv == TS_ERR_NOT_FOUND && !enrolled) {
        rv = ts_keystore_generate(agent->ks, TS_AGENT_KEY_LABEL, TS_CURVE_P256);
        *created = rv == TS_OK;
    }
    EVP_PKEY_free(pub);
    if (rv != TS_OK) {
        return ts_error_prefix(rv, "identity key '%s'", key);
    }
    rv = ts_agent_uid(agent, uid);
    if (rv == TS_OK) {
        if (uid_or_null != NULL && strcmp(uid, want) != 0) {
            return ts_error_set(TS_ERR_EXISTS, "the device already has the UID %s", uid);
        }
        return TS_OK;
    }
    if (rv != TS_ERR_STATE) {
        return rv;
    }
    rv = ts_keystore_object_put(agent->ks, TS_AGENT_UID_LABEL, (const uint8_t *)want, strlen(want),
                                0);
    if (rv != TS_OK) {
        return ts_error_prefix(rv, "recording the device UID");
    }
    *created = 1;
    memcpy(uid, want, strlen(want) + 1);
    return TS_OK;
}

ts_err ts_agent_claim_inject(ts_agent *agent, const char *code, size_t len)
{
    size_t start = 0, end = len;
    ts_err rv;

    while (start < end && strchr(" \t\r\n", code[start]) != NULL && code[start] != '\0') {
        start++;
    }
    while (end > start && strchr(" \t\r\n", code[end - 1]) != NULL && code[end - 1] != '\0') {
        end--;
    }
    if (end == start) {
        return ts_error_set(TS_ERR_INVALID, "the claim code is empty");
    }
    if (end - start > TS_AGENT_CLAIM_MAX) {
        return ts_error_set(TS_ERR_INVALID, "the claim code is %zu characters, over the %d allowed",
                            end - start, TS_AGENT_CLAIM_MAX);
    }
    for (size_t i = start; i < end; i++) {
        char c = code[i];
        int ok =
            (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
        if (!ok) {
            /* Never echo the code: it is a secret. */
            return ts_error_set(TS_ERR_INVALID,
                                "the claim code has a character outside [A-Za-z0-9-] at %zu",
                                i - start + 1);
        }
    }
    rv = ts_keystore_object_put(agent->ks, TS_AGENT_CLAIM_LABEL, (const uint8_t *)code + start,
                                end - start, TS_DATA_SECRET);
    if (rv == TS_ERR_EXISTS) {
        return ts_error_set(TS_ERR_EXISTS,
                            "a claim code is already stored: delete it first ('claim delete')");
    }
    return rv;
}

ts_err ts_agent_claim_delete(ts_agent *agent)
{
    ts_err rv = ts_keystore_delete(agent->ks, TS_AGENT_CLAIM_LABEL);
    if (rv == TS_ERR_NOT_FOUND) {
        return ts_error_set(TS_ERR_NOT_FOUND, "no claim code is stored");
    }
    return rv;
}
