/*
 * The new key of a rekey, kept across an answer that never arrived.
 *
 * The service certifies the new key and revokes the old certificate (superseded) in one
 * transaction. When its answer is lost (the connection drops, the device loses power), the device
 * still holds only the old, now revoked, certificate. So before the request is sent the agent
 * records which key it is certifying, in the key-store object AGENT_REKEY_LABEL
 * ({"from": GENERATION, "key": LABEL}); when the outcome of the request is unknown it keeps that
 * key and the record, and the next reenroll sends a CSR for the same key again. The service
 * answers a CSR for the key of a certificate that superseded the client's with that certificate
 * (docs/est.md), and the device commits it. A refusal by the service, or a success, ends the
 * record.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "agent/agent_rekey.h"
#include "common/error_internal.h"

enum { REKEY_RECORD_MAX = 512 };

/* The record, if there is one that parses; 0 otherwise. */
static int record_load(ts_keystore *ks, uint64_t *from, char key[TS_LABEL_MAX + 1])
{
    uint8_t *data = NULL;
    size_t len = 0;
    int ok = 0;
    if (ts_keystore_object_get(ks, AGENT_REKEY_LABEL, &data, &len) != TS_OK) {
        ts_error_clear();
        return 0;
    }
    json_t *obj = len <= REKEY_RECORD_MAX
                      ? json_loadb((const char *)data, len, JSON_REJECT_DUPLICATES, NULL)
                      : NULL;
    json_int_t gen = 0;
    const char *label = NULL;
    if (obj != NULL && json_object_size(obj) == 2 &&
        json_unpack(obj, "{s:I, s:s}", "from", &gen, "key", &label) == 0 && gen >= 1 &&
        strlen(label) <= TS_LABEL_MAX && ts_label_check(label) == TS_OK &&
        strncmp(label, AGENT_KEY_PREFIX, strlen(AGENT_KEY_PREFIX)) == 0) {
        *from = (uint64_t)gen;
        snprintf(key, TS_LABEL_MAX + 1, "%s", label);
        ok = 1;
    }
    ts_error_clear();
    json_decref(obj);
    OPENSSL_clear_free(data, len);
    return ok;
}

static ts_err record_save(ts_keystore *ks, uint64_t from, const char *key)
{
    char text[REKEY_RECORD_MAX];
    int n = snprintf(text, sizeof text, "{\"from\":%" PRIu64 ",\"key\":\"%s\"}", from, key);
    if (n < 0 || (size_t)n >= sizeof text) {
        return ts_error_set(TS_ERR_INVALID, "the rekey record does not fit");
    }
    ts_err rv =
        ts_keystore_object_replace(ks, AGENT_REKEY_LABEL, (const uint8_t *)text, (size_t)n, 0);
    return rv != TS_OK ? ts_error_prefix(rv, "recording the rekey") : TS_OK;
}

static void remove_quietly(ts_keystore *ks, const char *label)
{
    if (ts_keystore_delete(ks, label) != TS_OK) {
        ts_error_clear();
    }
}

int agent_rekey_pending(ts_keystore *ks, const agent_pointer *cur)
{
    uint64_t from = 0;
    char key[TS_LABEL_MAX + 1];
    if (!record_load(ks, &from, key) || from != cur->generation) {
        return 0;
    }
    EVP_PKEY *pub = NULL;
    ts_err rv = ts_keystore_public_key(ks, key, &pub);
    EVP_PKEY_free(pub);
    ts_error_clear();
    return rv == TS_OK;
}

ts_err agent_rekey_begin(ts_keystore *ks, const agent_pointer *cur, char label[TS_LABEL_MAX + 1],
                         int *resumed)
{
    uint64_t from = 0;
    char kept[TS_LABEL_MAX + 1];

    *resumed = 0;
    if (agent_rekey_pending(ks, cur) && record_load(ks, &from, kept)) {
        snprintf(label, TS_LABEL_MAX + 1, "%s", kept);
        *resumed = 1;
        return TS_OK;
    }
    /* A record of an earlier generation is spent: its key, unless it is the current one, was
     * never certified for use. */
    if (record_load(ks, &from, kept)) {
        if (strcmp(kept, cur->key) != 0) {
            remove_quietly(ks, kept);
        }
        remove_quietly(ks, AGENT_REKEY_LABEL);
    }
    /* The commit gives the next generation to key and certificate alike. */
    snprintf(label, TS_LABEL_MAX + 1, "%s%" PRIu64, AGENT_KEY_PREFIX, cur->generation + 1);
    if (strcmp(label, cur->key) == 0) {
        return ts_error_set(TS_ERR_CORRUPT,
                            "the identity pointer names key '%s' at generation %" PRIu64, cur->key,
                            cur->generation);
    }
    /* A key under this label without a record can only be left by an attempt cut short before
     * it was recorded: never sent, never named. */
    ts_err rv = ts_keystore_delete(ks, label);
    if (rv != TS_OK && rv != TS_ERR_NOT_FOUND) {
        return ts_error_prefix(rv, "removing the unfinished key '%s'", label);
    }
    ts_error_clear();
    rv = ts_keystore_generate(ks, label, TS_CURVE_P256);
    if (rv != TS_OK) {
        return ts_error_prefix(rv, "making the new key '%s'", label);
    }
    rv = record_save(ks, cur->generation, label);
    if (rv != TS_OK) {
        remove_quietly(ks, label);
    }
    return rv;
}

void agent_rekey_end(ts_keystore *ks, const char *label, agent_rekey_outcome outcome)
{
    switch (outcome) {
    case AGENT_REKEY_DONE:
        remove_quietly(ks, AGENT_REKEY_LABEL); /* the key is the identity's now */
        break;
    case AGENT_REKEY_REFUSED:
        remove_quietly(ks, label); /* the pointer still names the old key */
        remove_quietly(ks, AGENT_REKEY_LABEL);
        break;
    case AGENT_REKEY_UNKNOWN:
        break; /* both kept for the next attempt */
    }
}
