/*
 * API tokens (include/tessera/access.h): "tsk_" and 64 hex digits of 256 random bits. Only the
 * token's SHA-256 is stored; a presented token is hashed, looked up by its hash, and the stored
 * hash compared again in constant time. Every refusal has one message, so a caller cannot tell
 * an unknown token from an expired, revoked or disabled one.
 */
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "common/error_internal.h"
#include "server/server_internal.h"
#include "tessera/store_access.h"

#define TOKEN_PREFIX "tsk_"

enum {
    TOKEN_RANDOM = 32,                                      /* bytes */
    TOKEN_LEN = sizeof TOKEN_PREFIX - 1 + 2 * TOKEN_RANDOM, /* characters */
    TOKEN_SHOWN = 12,                                       /* characters kept as prefix */
    TOKEN_MAX_SECONDS = 3650 * 86400,                       /* ten years */
};

static const char AUTH_REFUSED[] =
    "the API token is not valid (unknown, expired or revoked, or its user is disabled)";

ts_err srv_secret_hash(const char *secret, size_t len, char hex[65])
{
    static const char digits[] = "0123456789abcdef";
    uint8_t md[32];
    unsigned int mdlen = 0;
    if (EVP_Digest(secret, len, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != sizeof md) {
        return ts_error_set_openssl(TS_ERR_CRYPTO, "cannot hash a secret");
    }
    for (size_t i = 0; i < sizeof md; i++) {
        hex[2 * i] = digits[md[i] >> 4];
        hex[2 * i + 1] = digits[md[i] & 0x0f];
    }
    hex[64] = '\0';
    OPENSSL_cleanse(md, sizeof md);
    return TS_OK;
}

/* A fresh token into out, with its hash. */
static ts_err token_make(char out[TS_TOKEN_MAX], char hash[65])
{
    static const char digits[] = "0123456789abcdef";
    uint8_t rnd[TOKEN_RANDOM];
    if (RAND_bytes(rnd, sizeof rnd) != 1) {
        return ts_error_set_openssl(TS_ERR_CRYPTO, "no random bytes for a token");
    }
    memcpy(out, TOKEN_PREFIX, sizeof TOKEN_PREFIX - 1);
    char *p = out + sizeof TOKEN_PREFIX - 1;
    for (size_t i = 0; i < sizeof rnd; i++) {
        p[2 * i] = digits[rnd[i] >> 4];
        p[2 * i + 1] = digits[rnd[i] & 0x0f];
    }
    p[2 * sizeof rnd] = '\0';
    OPENSSL_cleanse(rnd, sizeof rnd);
    return srv_secret_hash(out, TOKEN_LEN, hash);
}

/* Whether text has a token's form: only those are hashed and looked up. */
static int token_form(const char *token)
{
    size_t len = strnlen(token, TOKEN_LEN + 1);
    if (len != TOKEN_LEN || strncmp(token, TOKEN_PREFIX, sizeof TOKEN_PREFIX - 1) != 0) {
        return 0;
    }
    return strspn(token + sizeof TOKEN_PREFIX - 1, "0123456789abcdef") == 2 * TOKEN_RANDOM;
}

ts_err ts_ca_token_create(ts_ca *ca, const char *tenant, const char *user, const char *name,
                          int64_t lifetime_seconds, char token_out[TS_TOKEN_MAX], ts_token_row *out)
{
    ts_user_row u;
    ts_token_row row;
    char hash[65];
    int in_tx = 0;
    ts_err rv;

    memset(&row, 0, sizeof row);
    if (ca == NULL || token_out == NULL || name == NULL) {
        return ts_error_set(TS_ERR_INVALID, "ts_ca_token_create: missing argument");
    }
    token_out[0] = '\0';
    if (lifetime_seconds < 0 || lifetime_seconds > TOKEN_MAX_SECONDS) {
        return ts_error_set(TS_ERR_INVALID, "a token lives 1 second to %d days",
                            TOKEN_MAX_SECONDS / 86400);
    }
    if (strlen(name) == 0 || strlen(name) > TS_NAME_MAX) {
        return ts_error_set(TS_ERR_INVALID, "a token's name has 1 to %d characters", TS_NAME_MAX);
    }
    rv = ts_ca_user_get(ca, tenant, user, &u);
    if (rv == TS_OK && u.disabled) {
        rv = ts_error_set(TS_ERR_STATE, "user '%s' is disabled", u.name);
    }
    if (rv != TS_OK) {
        return rv;
    }
    row.user_id = u.id;
    row.tenant_id = u.tenant_id;
    snprintf(row.user, sizeof row.user, "%s", u.name);
    snprintf(row.name, sizeof row.name, "%s", name);
    row.created = time(NULL);
    row.expires =
        row.created + (lifetime_seconds != 0 ? lifetime_seconds : (int64_t)TS_TOKEN_DAYS * 86400);
    rv = token_make(token_out, hash);
    if (rv == TS_OK) {
        memcpy(row.prefix, token_out, TOKEN_SHOWN);
        row.prefix[TOKEN_SHOWN] = '\0';
        rv = ts_store_begin(ca->store);
        in_tx = rv == TS_OK;
    }
    if (rv == TS_OK) {
        rv = ts_store_token_insert(ca->store, &row, hash);
    }
    if (rv == TS_OK) {
        /* The prefix identifies the token in the log; the token itself is never written. */
        rv = srv_audit(ca, "token.create", row.prefix,
                       srv_json("{s:s, s:s, s:s, s:I, s:s, s:I}", "tenant",
                                u.tenant_id != 0 ? u.tenant : "*", "user", u.name, "name", name,
                                "id", (json_int_t)row.id, "prefix", row.prefix, "expires",
                                (json_int_t)row.expires));
    }
    if (in_tx) {
        rv = srv_tx_end(ca, rv);
    }
    if (rv != TS_OK) {
        OPENSSL_cleanse(token_out, TS_TOKEN_MAX);
        return rv;
    }
    if (out != NULL) {
        *out = row;
    }
    return TS_OK;
}

ts_err ts_ca_token_list(ts_ca *ca, const char *tenant, const char *user, ts_token_row **rows,
                        size_t *count)
{
    ts_tenant_row t;
    ts_user_row u;
    *rows = NULL;
    *count = 0;
    ts_err rv = srv_user_tenant(ca, tenant, &t);
    u.id = 0;
    if (rv == TS_OK && user != NULL) {
        rv = ts_ca_user_get(ca, tenant, user, &u);
    }
    if (rv == TS_OK) {
        rv = ts_store_token_list(ca->store, t.id, u.id, rows, count);
    }
    return rv;
}

ts_err ts_ca_token_revoke(ts_ca *ca, const char *tenant, int64_t id)
{
    ts_tenant_row t;
    int in_tx = 0;
    ts_err rv = srv_user_tenant(ca, tenant, &t);
    if (rv == TS_OK) {
        rv = ts_store_begin(ca->store);
        in_tx = rv == TS_OK;
    }
    if (rv == TS_OK) {
        rv = ts_store_token_revoke(ca->store, t.id, id, time(NULL));
    }
    if (rv == TS_ERR_NOT_FOUND) {
        ts_error_set(rv, "no token %lld in %s", (long long)id, t.id != 0 ? t.name : "the instance");
    }
    if (rv == TS_OK) {
        char object[32];
        snprintf(object, sizeof object, "%lld", (long long)id);
        rv = srv_audit(
            ca, "token.revoke", object,
            srv_json("{s:s, s:I}", "tenant", t.id != 0 ? t.name : "*", "id", (json_int_t)id));
    }
    if (in_tx) {
        rv = srv_tx_end(ca, rv);
    }
    return rv;
}

ts_err ts_ca_token_authenticate(ts_ca *ca, const char *token, ts_principal *out)
{
    ts_token_row k;
    ts_user_row u;
    char hash[65], stored[65];
    ts_err rv;

    if (ca == NULL || out == NULL) {
        return ts_error_set(TS_ERR_INVALID, "ts_ca_token_authenticate: missing argument");
    }
    memset(out, 0, sizeof *out);
    if (token == NULL || !token_form(token)) {
        return ts_error_set(TS_ERR_AUTH, "%s", AUTH_REFUSED);
    }
    rv = srv_secret_hash(token, TOKEN_LEN, hash);
    if (rv != TS_OK) {
        return rv;
    }
    rv = ts_store_token_find(ca->store, hash, &k, &u, stored);
    if (rv == TS_ERR_NOT_FOUND) {
        return ts_error_set(TS_ERR_AUTH, "%s", AUTH_REFUSED);
    }
    if (rv != TS_OK) {
        return rv; /* the database failed: not the caller's fault, so not TS_ERR_AUTH */
    }
    /* The database found it by hash; the comparison that decides is ours, in constant time. */
    int ok = CRYPTO_memcmp(stored, hash, 64) == 0;
    ok &= k.revoked_at == 0;
    ok &= time(NULL) < k.expires;
    ok &= !u.disabled;
    OPENSSL_cleanse(hash, sizeof hash);
    if (!ok) {
        return ts_error_set(TS_ERR_AUTH, "%s", AUTH_REFUSED);
    }
    out->user_id = u.id;
    snprintf(out->user, sizeof out->user, "%s", u.name);
    out->role = u.role;
    out->tenant_id = u.tenant_id;
    snprintf(out->tenant, sizeof out->tenant, "%s", u.tenant);
    snprintf(out->device_uid, sizeof out->device_uid, "%s", u.device_uid);
    out->token_id = k.id;
    return TS_OK;
}
