/*
 * Opening an instance: DIR/instance.json names the store and the key store (and SoftHSM2's
 * configuration when the key store is a token under DIR); the store holds the settings. Also the
 * audit helper every operation uses, and tenant names.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "common/error_internal.h"
#include "common/file_internal.h"
#include "server/server_internal.h"
#include "store/store_internal.h"

ts_err srv_path(char *buf, size_t size, const char *dir, const char *name)
{
    int n = snprintf(buf, size, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= size) {
        return ts_error_set(TS_ERR_INVALID, "path too long: %s/%s", dir, name);
    }
    return TS_OK;
}

json_t *srv_json(const char *fmt, ...)
{
    va_list ap;
    json_error_t err;
    va_start(ap, fmt);
    json_t *j = json_vpack_ex(&err, 0, fmt, ap);
    va_end(ap);
    return j;
}

ts_err srv_instance_write(const char *dir, const char *db_url, const char *ks_uri,
                          const char *softhsm_conf)
{
    char path[TS_CA_PATH_MAX];
    json_t *j = srv_json("{s:i, s:s, s:s}", "format", 1, "db", db_url, "keystore", ks_uri);
    char *text = NULL;
    ts_err rv = srv_path(path, sizeof path, dir, SRV_INSTANCE_FILE);

    if (rv == TS_OK && j == NULL) {
        rv = ts_error_set(TS_ERR_NOMEM, "out of memory");
    }
    if (rv == TS_OK && softhsm_conf != NULL &&
        json_object_set_new(j, "softhsm2_conf", json_string(softhsm_conf)) != 0) {
        rv = ts_error_set(TS_ERR_NOMEM, "out of memory");
    }
    if (rv == TS_OK) {
        text = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        if (text == NULL) {
            rv = ts_error_set(TS_ERR_NOMEM, "out of memory");
        }
    }
    if (rv == TS_OK) {
        rv = ts_file_write_atomic(path, (const uint8_t *)text, strlen(text), 0600);
    }
    free(text);
    json_decref(j);
    return rv;
}

/* A string member of instance.json: required ones must be there and non-empty. */
static ts_err json_text(json_t *root, const char *path, const char *key, int required, char **out)
{
    json_t *v = json_object_get(root, key);
    *out = NULL;
    if (v == NULL && !required) {
        return TS_OK;
    }
    if (!json_is_string(v) || json_string_length(v) == 0) {
        return ts_error_set(TS_ERR_CORRUPT, "%s: \"%s\" is missing or not a string", path, key);
    }
    *out = OPENSSL_strdup(json_string_value(v));
    return *out != NULL ? TS_OK : ts_error_set(TS_ERR_NOMEM, "out of memory");
}

static ts_err instance_read(ts_ca *ca)
{
    char path[TS_CA_PATH_MAX];
    uint8_t *data = NULL;
    size_t len = 0;
    json_error_t jerr;
    json_t *root = NULL;
    ts_err rv = srv_path(path, sizeof path, ca->dir, SRV_INSTANCE_FILE);

    if (rv == TS_OK) {
        rv = ts_file_read(path, SRV_INSTANCE_MAX, &data, &len);
    }
    if (rv == TS_ERR_NOT_FOUND) {
        return ts_error_set(TS_ERR_NOT_FOUND,
                            "no instance in %s (no %s): run 'tessera init --dir %s' first", ca->dir,
                            SRV_INSTANCE_FILE, ca->dir);
    }
    if (rv != TS_OK) {
        return ts_error_prefix(rv, "cannot read %s", path);
    }
    root = json_loadb((const char *)data, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL || !json_is_object(root)) {
        rv = ts_error_set(TS_ERR_CORRUPT, "%s is not a JSON object (line %d: %s)", path, jerr.line,
                          root == NULL ? jerr.text : "not an object");
        goto done;
    }
    if (json_integer_value(json_object_get(root, "format")) != 1) {
        rv = ts_error_set(TS_ERR_CORRUPT, "%s: unknown format (want 1)", path);
        goto done;
    }
    rv = json_text(root, path, "db", 1, &ca->db_url);
    if (rv == TS_OK) {
        rv = json_text(root, path, "keystore", 1, &ca->ks_uri);
    }
    if (rv == TS_OK) {
        rv = json_text(root, path, "softhsm2_conf", 0, &ca->softhsm_conf);
    }
done:
    json_decref(root);
    OPENSSL_clear_free(data, len);
    return rv;
}

void srv_key_discard(ts_keystore *ks, const char *label)
{
    char saved[1024];

    if (ks == NULL) {
        return;
    }
    /* The operation's own error is the one reported: keep its message. */
    snprintf(saved, sizeof saved, "%s", ts_error_message());
    if (ts_keystore_delete(ks, label) != TS_OK || strcmp(saved, ts_error_message()) != 0) {
        (void)ts_error_set(TS_ERR_INVALID, "%s", saved);
    }
}

ts_err srv_setting(ts_ca *ca, const char *key, char **value)
{
    ts_err rv = ts_store_setting_get(ca->store, key, value);
    if (rv == TS_ERR_NOT_FOUND) {
        *value = NULL;
        return TS_OK;
    }
    return rv;
}

static ts_err actor_check(const char *actor)
{
    size_t len = actor != NULL ? strlen(actor) : 0;
    if (len == 0 || len >= TS_TEXT_MAX) {
        return ts_error_set(TS_ERR_INVALID, "an actor has 1 to %d characters", TS_TEXT_MAX - 1);
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)actor[i];
        if (c < 0x20 || c == 0x7f) {
            return ts_error_set(TS_ERR_INVALID, "an actor holds a control character");
        }
    }
    return TS_OK;
}

/* Opens the instance in dir on its own store, or on db_url when not NULL. */
static ts_err open_instance(const char *dir, const char *db_url, const char *actor, ts_ca **out)
{
    char real[PATH_MAX];
    ts_ca *ca = NULL;
    ts_err rv;

    *out = NULL;
    if (dir == NULL || actor == NULL) {
        return ts_error_set(TS_ERR_INVALID, "no instance directory or actor");
    }
    if (realpath(dir, real) == NULL) {
        if (errno == ENOENT) {
            return ts_error_set(TS_ERR_NOT_FOUND,
                                "no instance in %s (no such directory): run 'tessera init --dir "
                                "%s' first",
                                dir, dir);
        }
        return ts_error_set(TS_ERR_IO, "%s: %s", dir, strerror(errno));
    }
    ca = OPENSSL_zalloc(sizeof *ca);
    if (ca == NULL) {
        return ts_error_set(TS_ERR_NOMEM, "out of memory");
    }
    snprintf(ca->dir, sizeof ca->dir, "%s", real);
    snprintf(ca->actor, sizeof ca->actor, "%s", actor);
    rv = actor_check(actor);
    if (rv == TS_OK) {
        rv = instance_read(ca);
    }
    if (rv == TS_OK && db_url != NULL) {
        OPENSSL_free(ca->db_url);
        ca->db_url = OPENSSL_strdup(db_url);
        if (ca->db_url == NULL) {
            rv = ts_error_set(TS_ERR_NOMEM, "out of memory");
        }
    }
    /* SoftHSM2 reads its configuration from the environment when the module is initialised: a
     * token under DIR is found only with DIR's configuration. */
    if (rv == TS_OK && ca->softhsm_conf != NULL && setenv("SOFTHSM2_CONF", ca->softhsm_conf, 1)) {
        rv = ts_error_set(TS_ERR_NOMEM, "cannot set SOFTHSM2_CONF: %s", strerror(errno));
    }
    if (rv == TS_OK && ca->softhsm_conf != NULL) {
        rv = srv_softhsm_guard(ca->dir);
    }
    if (rv == TS_OK) {
        rv = ts_store_open(ca->db_url, &ca->store);
        if (rv != TS_OK) {
            ts_error_prefix(rv, "cannot open the store of %s", ca->dir);
        }
    }
    if (rv == TS_OK) {
        rv = srv_setting(ca, SRV_SET_ORG, &ca->org);
    }
    if (rv == TS_OK) {
        rv = srv_setting(ca, SRV_SET_COUNTRY, &ca->country);
    }
    if (rv == TS_OK) {
        rv = srv_setting(ca, SRV_SET_URL, &ca->base_url);
    }
    if (rv == TS_OK && ca->org == NULL) {
        rv = ts_error_set(TS_ERR_CORRUPT, "the store of %s has no organisation setting", ca->dir);
    }
    if (rv != TS_OK) {
        ts_ca_free(ca);
        return rv;
    }
    *out = ca;
    return TS_OK;
}

ts_err ts_ca_open(const char *dir, const char *actor, ts_ca **out)
{
    return open_instance(dir, NULL, actor, out);
}

ts_err ts_ca_open_db(const char *dir, const char *db_url, const char *actor, ts_ca **out)
{
    if (out != NULL) {
        *out = NULL;
    }
    if (db_url == NULL || db_url[0] == '\0') {
        return ts_error_set(TS_ERR_INVALID, "no store URL");
    }
    return open_instance(dir, db_url, actor, out);
}

ts_err ts_ca_set_actor(ts_ca *ca, const char *actor)
{
    if (ca == NULL) {
        return ts_error_set(TS_ERR_INVALID, "ts_ca_set_actor: no instance");
    }
    ts_err rv = actor_check(actor);
    if (rv != TS_OK) {
        return rv;
    }
    snprintf(ca->actor, sizeof ca->actor, "%s", actor);
    return TS_OK;
}

void ts_ca_free(ts_ca *ca)
{
    if (ca == NULL) {
        return;
    }
    srv_issuing_cache_clear(ca);
    ts_keystore_free(ca->ks);
    ts_store_free(ca->store);
    OPENSSL_free(ca->db_url);
    if (ca->ks_uri != NULL) {
        OPENSSL_clear_free(ca->ks_uri, strlen(ca->ks_uri));
    }
    OPENSSL_free(ca->softhsm_conf);
    OPENSSL_free(ca->org);
    OPENSSL_free(ca->country);
    OPENSSL_free(ca->base_url);
    OPENSSL_free(ca);
}

ts_store *ts_ca_store(ts_ca *ca)
{
    return ca->store;
}

ts_err ts_ca_keystore(ts_ca *ca, ts_keystore **out)
{
    if (ca->ks == NULL) {
        ts_err rv = ts_keystore_open(ca->ks_uri, &ca->ks);
        if (rv != TS_OK) {
            return ts_error_prefix(rv, "cannot open the key store of %s", ca->dir);
        }
    }
    *out = ca->ks;
    return TS_OK;
}

ts_err srv_audit(ts_ca *ca, const char *action, const char *object, json_t *details)
{
    char *text = NULL;
    ts_err rv;

    if (details == NULL) {
        return ts_error_set(TS_ERR_NOMEM, "out of memory building the audit entry of %s", action);
    }
    json_object_set_new(details, "time", json_integer((json_int_t)time(NULL)));
    text = json_dumps(details, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(details);
    if (text == NULL) {
        return ts_error_set(TS_ERR_NOMEM, "out of memory building the audit entry of %s", action);
    }
    /* Serialised here from a document built here: the store need not parse it again. */
    rv = ts_store_audit_append_trusted(ca->store, ca->actor, action, object, text);
    free(text);
    return rv != TS_OK ? ts_error_prefix(rv, "cannot append the audit entry of %s", action) : TS_OK;
}

ts_err ts_ca_tenant_name_check(const char *name)
{
    size_t len = name != NULL ? strlen(name) : 0;
    if (len == 0 || len > TS_TENANT_NAME_MAX) {
        return ts_error_set(TS_ERR_INVALID, "a tenant name has 1 to %d characters",
                            TS_TENANT_NAME_MAX);
    }
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (c == '-' && i > 0);
        if (!ok) {
            return ts_error_set(TS_ERR_INVALID,
                                "tenant name '%s': only a-z, 0-9 and '-' (not first) are allowed",
                                name);
        }
    }
    /* "root" names the root CA's CRL (URL layout in docs/ca.md). */
    if (strcmp(name, "root") == 0) {
        return ts_error_set(TS_ERR_INVALID, "tenant name 'root' is reserved");
    }
    return TS_OK;
}

ts_err ts_ca_tenant(ts_ca *ca, const char *name, ts_tenant_row *out)
{
    const char *n = name != NULL ? name : TS_DEFAULT_TENANT;
    ts_err rv = ts_ca_tenant_name_check(n);
    if (rv != TS_OK) {
        return rv;
    }
    rv = ts_store_tenant_get(ca->store, n, out);
    if (rv == TS_ERR_NOT_FOUND) {
        return ts_error_set(TS_ERR_NOT_FOUND, "no tenant '%s' (tessera tenant list shows them)", n);
    }
    return rv;
}

ts_err srv_tx_end(ts_ca *ca, ts_err rv)
{
    if (rv == TS_OK) {
        return ts_store_commit(ca->store);
    }
    ts_store_rollback(ca->store);
    return rv;
}
