/*
 * The current identity: the pointer object "identity.current" names the generation, the key and
 * the certificate and chain objects. A new identity is written under fresh labels first and the
 * pointer is replaced last (an atomic replace in the key store), so the pointer always names a
 * complete identity: the old one until the replace, the new one after it.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/x509.h>

#include "agent/agent_internal.h"
#include "common/error_internal.h"

enum { POINTER_MAX = 1024, POINTER_VERSION = 1 };

ts_err agent_pointer_encode(const agent_pointer *p, char **out)
{
    json_t *obj =
        json_pack("{s:i, s:I, s:s, s:s, s:s}", "version", POINTER_VERSION, "generation",
                  (json_int_t)p->generation, "key", p->key, "cert", p->cert, "chain", p->chain);
    char *text = obj != NULL ? json_dumps(obj, JSON_COMPACT | JSON_SORT_KEYS) : NULL;

    json_decref(obj);
    *out = NULL;
    if (text == NULL) {
        return ts_error_set(TS_ERR_NOMEM, "cannot encode the identity pointer");
    }
    *out = OPENSSL_strdup(text);
    free(text);
    return *out != NULL ? TS_OK : ts_error_set(TS_ERR_NOMEM, "out of memory");
}

static ts_err label_field(json_t *obj, const char *name, const char *prefix, uint64_t gen,
                          char out[TS_LABEL_MAX + 1])
{
    const char *s = json_string_value(json_object_get(obj, name));
    char want[TS_LABEL_MAX + 1];

    if (s == NULL || strlen(s) > TS_LABEL_MAX || ts_label_check(s) != TS_OK) {
        return ts_error_set(TS_ERR_CORRUPT, "the identity pointer's '%s' is not a label", name);
    }
    if (prefix != NULL) {
        snprintf(want, sizeof want, "%s%" PRIu64, prefix, gen);
        if (strcmp(s, want) != 0) {
            return ts_error_set(TS_ERR_CORRUPT,
                                "the identity pointer's '%s' is not of generation %" PRIu64, name,
                                gen);
        }
    }
    memcpy(out, s, strlen(s) + 1);
    return TS_OK;
}

ts_err agent_pointer_decode(const uint8_t *data, size_t len, agent_pointer *p)
{
    json_error_t jerr;
    json_t *obj = NULL;
    json_int_t version = 0, gen = 0;
    ts_err rv;

    memset(p, 0, sizeof *p);
    if (len == 0 || len > POINTER_MAX) {
        return ts_error_set(TS_ERR_CORRUPT, "the identity pointer is %zu bytes", len);
    }
    obj = json_loadb((const char *)data, len, JSON_REJECT_DUPLICATES, &jerr);
    if (obj == NULL || !json_is_object(obj) || json_object_size(obj) != 5 ||
        json_unpack(obj, "{s:I, s:I}", "version", &version, "generation", &gen) != 0) {
        json_decref(obj);
        return ts_error_set(TS_ERR_CORRUPT, "the identity pointer does not parse");
    }
    if (version != POINTER_VERSION || gen < 1) {
        json_decref(obj);
        return ts_error_set(TS_ERR_CORRUPT,
                            "the identity pointer has version %lld, generation %lld",
                            (long long)version, (long long)gen);
    }
    p->generation = (uint64_t)gen;
    rv = label_field(obj, "key", NULL, p->generation, p->key);
    if (rv == TS_OK) {
        rv = label_field(obj, "cert", AGENT_CERT_PREFIX, p->generation, p->cert);
    }
    if (rv == TS_OK) {
        rv = label_field(obj, "chain", AGENT_CHAIN_PREFIX, p->generation, p->chain);
    }
    json_decref(obj);
    return rv;
}

ts_err agent_pointer_load(ts_keystore *ks, agent_pointer *p)
{
    uint8_t *data = NULL;
    size_t len = 0;
    ts_err rv = ts_keystore_object_get(ks, TS_AGENT_CURRENT_LABEL, &data, &len);

    memset(p, 0, sizeof *p);
    if (rv == TS_ERR_NOT_FOUND) {
        return ts_error_set(TS_ERR_NOT_FOUND, "the device is not enrolled");
    }
    if (rv == TS_OK) {
        rv = agent_pointer_decode(data, len, p);
    }
    OPENSSL_clear_free(data, len);
    return rv;
}

static ts_err certs_object(ts_keystore *ks, const char *label, STACK_OF(X509) * *certs)
{
    uint8_t *data = NULL;
    size_t len = 0;
    ts_err rv = ts_keystore_object_get(ks, label, &data, &len);

    if (rv == TS_OK) {
        rv = agent_pem_decode(data, len, certs);
    }
    OPENSSL_clear_free(data, len);
    if (rv != TS_OK) {
        return ts_error_prefix(TS_ERR_CORRUPT, "identity object '%s'", label);
    }
    return TS_OK;
}

ts_err agent_identity_load(ts_keystore *ks, agent_pointer *p, X509 **cert, STACK_OF(X509) * *chain)
{
    STACK_OF(X509) *leaf = NULL;
    ts_err rv = agent_pointer_load(ks, p);

    *cert = NULL;
    *chain = NULL;
    if (rv == TS_OK) {
        rv = certs_object(ks, p->cert, &leaf);
    }
    if (rv == TS_OK && sk_X509_num(leaf) != 1) {
        rv = ts_error_set(TS_ERR_CORRUPT, "identity object '%s' holds %d certificates", p->cert,
                          sk_X509_num(leaf));
    }
    if (rv == TS_OK) {
        rv = certs_object(ks, p->chain, chain);
    }
    if (rv == TS_OK) {
        *cert = sk_X509_shift(leaf);
    }
    sk_X509_pop_free(leaf, X509_free);
    return rv;
}

/* Labels of the two kinds, for the generation in *gen, or 0 when the label is neither. */
static int generation_of(const char *label, uint64_t *gen)
{
    const char *prefixes[] = {AGENT_CERT_PREFIX, AGENT_CHAIN_PREFIX};
    for (size_t i = 0; i < 2; i++) {
        size_t n = strlen(prefixes[i]);
        if (strncmp(label, prefixes[i], n) == 0 && label[n] >= '0' && label[n] <= '9') {
            char *end = NULL;
            unsigned long long v = strtoull(label + n, &end, 10);
            if (*end == '\0') {
                *gen = (uint64_t)v;
                return 1;
            }
        }
    }
    return 0;
}

/* Removes certificate and chain objects of every generation but keep. Failures are ignored: a
 * leftover object is never named by the pointer and goes at the next commit. */
static void sweep(ts_keystore *ks, uint64_t keep)
{
    ts_keystore_entry *entries = NULL;
    size_t count = 0;
    uint64_t gen;

    if (ts_keystore_list(ks, &entries, &count) != TS_OK) {
        ts_error_clear();
        return;
    }
    for (size_t i = 0; i < count; i++) {
        if (entries[i].kind == TS_KIND_DATA && generation_of(entries[i].label, &gen) &&
            gen != keep && ts_keystore_delete(ks, entries[i].label) != TS_OK) {
            ts_error_clear();
        }
    }
    OPENSSL_free(entries);
}

/* An identity key: the one ts_agent_init() makes, or one a rekey made. */
static int identity_key_label(const char *label)
{
    size_t n = strlen(AGENT_KEY_PREFIX);
    return strcmp(label, TS_AGENT_KEY_LABEL) == 0 ||
           (strncmp(label, AGENT_KEY_PREFIX, n) == 0 && label[n] >= '0' && label[n] <= '9');
}

/* Removes the identity keys other than keep: the key a rekey replaced, or one an attempt cut
 * short left behind. Only after the pointer names keep; failures are ignored (a leftover is never
 * named by the pointer and goes at the next commit). */
static void sweep_keys(ts_keystore *ks, const char *keep)
{
    ts_keystore_entry *entries = NULL;
    size_t count = 0;

    if (ts_keystore_list(ks, &entries, &count) != TS_OK) {
        ts_error_clear();
        return;
    }
    for (size_t i = 0; i < count; i++) {
        if (entries[i].kind == TS_KIND_KEY && identity_key_label(entries[i].label) &&
            strcmp(entries[i].label, keep) != 0 &&
            ts_keystore_delete(ks, entries[i].label) != TS_OK) {
            ts_error_clear();
        }
    }
    OPENSSL_free(entries);
}

static ts_err max_generation(ts_keystore *ks, uint64_t *top)
{
    ts_keystore_entry *entries = NULL;
    size_t count = 0;
    uint64_t gen;
    ts_err rv = ts_keystore_list(ks, &entries, &count);

    *top = 0;
    for (size_t i = 0; rv == TS_OK && i < count; i++) {
        if (generation_of(entries[i].label, &gen) && gen > *top) {
            *top = gen;
        }
    }
    OPENSSL_free(entries);
    return rv;
}

static ts_err put_certs(ts_keystore *ks, const char *label, X509 *first, STACK_OF(X509) * rest)
{
    uint8_t *pem = NULL;
    size_t len = 0;
    ts_err rv = agent_pem_encode(first, rest, &pem, &len);

    /* Replace: an object of this generation can only be a leftover of an attempt cut short. */
    if (rv == TS_OK) {
        rv = ts_keystore_object_replace(ks, label, pem, len, 0);
    }
    OPENSSL_free(pem);
    return rv != TS_OK ? ts_error_prefix(rv, "storing '%s'", label) : TS_OK;
}

ts_err agent_identity_commit(ts_keystore *ks, const char *key_label, X509 *cert,
                             STACK_OF(X509) * chain, uint64_t *generation)
{
    agent_pointer cur, next;
    char *json = NULL;
    ts_err rv = agent_pointer_load(ks, &cur);

    /* A pointer that does not parse is replaced by a good one: the device is broken anyway. */
    if (rv != TS_OK && rv != TS_ERR_NOT_FOUND && rv != TS_ERR_CORRUPT) {
        return rv;
    }
    memset(&next, 0, sizeof next);
    next.generation = (rv == TS_OK ? cur.generation : 0) + 1;
    if (rv != TS_OK) {
        /* Never write over an object some pointer may have named. */
        uint64_t top = 0;
        rv = max_generation(ks, &top);
        if (rv != TS_OK) {
            return rv;
        }
        next.generation = top + 1;
    }
    if (strlen(key_label) > TS_LABEL_MAX) {
        return ts_error_set(TS_ERR_INVALID, "key label too long");
    }
    memcpy(next.key, key_label, strlen(key_label) + 1);
    snprintf(next.cert, sizeof next.cert, "%s%" PRIu64, AGENT_CERT_PREFIX, next.generation);
    snprintf(next.chain, sizeof next.chain, "%s%" PRIu64, AGENT_CHAIN_PREFIX, next.generation);
    rv = put_certs(ks, next.cert, cert, NULL);
    if (rv == TS_OK) {
        rv = put_certs(ks, next.chain, NULL, chain);
    }
    if (rv == TS_OK) {
        rv = agent_pointer_encode(&next, &json);
    }
    /* The commit point. */
    if (rv == TS_OK) {
        rv = ts_keystore_object_replace(ks, TS_AGENT_CURRENT_LABEL, (const uint8_t *)json,
                                        strlen(json), 0);
        if (rv != TS_OK) {
            rv = ts_error_prefix(rv, "committing the new identity");
        }
    }
    OPENSSL_free(json);
    if (rv != TS_OK) {
        return rv;
    }
    sweep(ks, next.generation);
    sweep_keys(ks, next.key);
    *generation = next.generation;
    return TS_OK;
}
