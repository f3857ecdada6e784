/*
 * Tenants and profiles: a tenant is an organisation served by the instance, with its own issuing
 * CA under the root (so the root key must be online to make one), its own profiles and its own
 * certificates.
 */
#include <ctype.h>
#include <string.h>

#include <openssl/crypto.h>

#include "common/error_internal.h"
#include "server/server_internal.h"

static ts_err country_of(ts_ca *ca, const char *country, char out[3])
{
    const char *cc = country != NULL ? country : ca->country;
    out[0] = '\0';
    if (cc == NULL) {
        return TS_OK;
    }
    if (strlen(cc) != 2 || !isalpha((unsigned char)cc[0]) || !isalpha((unsigned char)cc[1])) {
        return ts_error_set(TS_ERR_INVALID, "country '%s': two letters (ISO 3166), such as DE", cc);
    }
    out[0] = (char)toupper((unsigned char)cc[0]);
    out[1] = (char)toupper((unsigned char)cc[1]);
    out[2] = '\0';
    return TS_OK;
}

static ts_err org_check(const char *org)
{
    size_t len = strlen(org);
    if (len == 0 || len > 64) {
        return ts_error_set(TS_ERR_INVALID, "org: 1 to 64 characters");
    }
    for (size_t i = 0; i < len; i++) {
        if ((unsigned char)org[i] < 0x20 || org[i] == 0x7f) {
            return ts_error_set(TS_ERR_INVALID, "org: holds a control character");
        }
    }
    return TS_OK;
}

/* Stores the tenant, its issuing CA and profiles, audited, in one transaction. */
static ts_err tenant_record(ts_ca *ca, ts_tenant_row *t, const char *label, X509 *cert)
{
    ts_ca_row row;
    json_t *details = srv_cert_json(cert);
    ts_err rv = ts_store_begin(ca->store);

    memset(&row, 0, sizeof row);
    if (rv != TS_OK) {
        json_decref(details);
        return rv;
    }
    rv = ts_store_tenant_insert(ca->store, t);
    if (rv == TS_ERR_EXISTS) {
        ts_error_set(rv, "tenant '%s' already exists", t->name);
    }
    if (rv == TS_OK) {
        row.tenant_id = t->id;
        row.kind = TS_CA_ISSUING;
        row.active = 1;
        snprintf(row.key_label, sizeof row.key_label, "%s", label);
        rv = srv_ca_row_fill(cert, &row);
    }
    if (rv == TS_OK) {
        rv = ts_store_ca_insert(ca->store, &row);
    }
    if (rv == TS_OK && details != NULL) {
        json_object_set_new(details, "name", json_string(t->name));
        json_object_set_new(details, "org", json_string(t->org));
        json_object_set_new(details, "country", json_string(t->country));
        json_object_set_new(details, "key_label", json_string(label));
    }
    if (rv == TS_OK) {
        rv = srv_audit(ca, "tenant.create", t->name, details);
        details = NULL;
    }
    if (rv == TS_OK) {
        rv = srv_profiles_builtin(ca, t->id, t->name);
    }
    if (rv == TS_OK) {
        rv = ts_store_commit(ca->store);
    } else {
        ts_store_rollback(ca->store);
    }
    json_decref(details);
    ts_ca_row_clear(&row);
    return rv;
}

ts_err ts_ca_tenant_create(ts_ca *ca, const char *name, const char *org, const char *country)
{
    ts_tenant_row t, existing;
    srv_issuer root;
    ts_keystore *ks = NULL;
    EVP_PKEY *pub = NULL;
    X509 *cert = NULL;
    char suffix[9], label[TS_LABEL_MAX + 1], cn[TS_TEXT_MAX];
    int made = 0;
    ts_err rv = ts_ca_tenant_name_check(name);

    memset(&t, 0, sizeof t);
    memset(&root, 0, sizeof root);
    if (rv == TS_OK) {
        rv = org_check(org != NULL ? org : ca->org);
    }
    if (rv == TS_OK) {
        rv = country_of(ca, country, t.country);
    }
    if (rv != TS_OK) {
        return rv;
    }
    snprintf(t.name, sizeof t.name, "%s", name);
    snprintf(t.org, sizeof t.org, "%s", org != NULL ? org : ca->org);
    t.created = time(NULL);
    rv = ts_store_tenant_get(ca->store, name, &existing);
    if (rv == TS_OK) {
        return ts_error_set(TS_ERR_EXISTS, "tenant '%s' already exists", name);
    }
    if (rv != TS_ERR_NOT_FOUND) {
        return rv;
    }
    /* The new issuing CA is signed by the root: it must be online. */
    rv = srv_root_load(ca, 1, &root);
    if (rv == TS_OK) {
        rv = ts_ca_keystore(ca, &ks);
    }
    if (rv == TS_OK) {
        rv = ts_random_hex(suffix, 4);
    }
    if (rv == TS_OK) {
        snprintf(label, sizeof label, "issuing-%s-%s", name, suffix);
        rv = ts_keystore_generate(ks, label, TS_CURVE_P256);
        made = rv == TS_OK;
    }
    if (rv == TS_OK) {
        rv = ts_keystore_public_key(ks, label, &pub);
    }
    if (rv == TS_OK) {
        int n = snprintf(cn, sizeof cn, "%s %s Issuing CA", t.org, name);
        rv = n > 0 && (size_t)n < sizeof cn ? TS_OK : ts_error_set(TS_ERR_INVALID, "name too long");
    }
    if (rv == TS_OK) {
        rv = srv_ca_cert_make(ca, cn, t.org, t.country[0] != '\0' ? t.country : NULL,
                              TS_CA_ISSUING_DAYS, 0, pub, &root, &cert);
    }
    if (rv == TS_OK) {
        rv = tenant_record(ca, &t, label, cert);
    }
    if (rv != TS_OK && made) {
        srv_key_discard(ks, label);
    }
    X509_free(cert);
    EVP_PKEY_free(pub);
    srv_issuer_clear(&root);
    return rv;
}

ts_err ts_ca_cert(ts_ca *ca, const char *tenant, ts_ca_kind kind, X509 **out)
{
    ts_tenant_row t;
    srv_issuer issuer;
    ts_err rv;

    *out = NULL;
    if (kind == TS_CA_ROOT) {
        rv = srv_root_load(ca, 0, &issuer);
    } else {
        rv = ts_ca_tenant(ca, tenant, &t);
        if (rv == TS_OK) {
            rv = srv_issuing_load(ca, t.id, 0, &issuer);
        }
    }
    if (rv == TS_OK) {
        *out = issuer.cert;
        issuer.cert = NULL;
        srv_issuer_clear(&issuer);
    }
    return rv;
}

ts_err ts_ca_profile_put(ts_ca *ca, const char *tenant, const char *name, const char *json,
                         size_t len, int replace)
{
    ts_tenant_row t;
    ts_profile *profile = NULL;
    char *canonical = NULL;
    json_t *details = NULL;
    ts_err rv = ts_ca_tenant(ca, tenant, &t);

    if (rv == TS_OK && (name == NULL || name[0] == '\0' || strlen(name) > TS_NAME_MAX)) {
        rv = ts_error_set(TS_ERR_INVALID, "a profile name has 1 to %d characters", TS_NAME_MAX);
    }
    if (rv == TS_OK) {
        rv = ts_profile_from_json(json, len, &profile);
    }
    if (rv == TS_OK && strcmp(ts_profile_name(profile), name) != 0) {
        rv = ts_error_set(TS_ERR_INVALID, "the profile's \"name\" is '%s', not '%s'",
                          ts_profile_name(profile), name);
    }
    if (rv == TS_OK) {
        rv = ts_profile_to_json(profile, &canonical);
    }
    if (rv != TS_OK) {
        goto done;
    }
    details = srv_json("{s:s, s:s, s:o}", "tenant", t.name, "profile", name, "definition",
                       json_loads(canonical, 0, NULL));
    rv = ts_store_begin(ca->store);
    if (rv != TS_OK) {
        goto done;
    }
    rv = ts_store_profile_put(ca->store, t.id, name, canonical, replace);
    if (rv == TS_ERR_EXISTS) {
        ts_error_set(rv, "profile '%s' already exists in tenant '%s' (use profile update)", name,
                     t.name);
    } else if (rv == TS_ERR_NOT_FOUND) {
        ts_error_set(rv, "no profile '%s' in tenant '%s' (use profile create)", name, t.name);
    }
    if (rv == TS_OK) {
        rv = srv_audit(ca, replace ? "profile.update" : "profile.create", name, details);
        details = NULL;
    }
    if (rv == TS_OK) {
        rv = ts_store_commit(ca->store);
    } else {
        ts_store_rollback(ca->store);
    }
done:
    json_decref(details);
    OPENSSL_free(canonical);
    ts_profile_free(profile);
    return rv;
}
