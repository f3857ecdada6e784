/*
 * The plugin's cache file: the state it last had from the service, so that the broker keeps
 * admitting valid devices and refusing revoked ones while the service is unreachable.
 *
 *   {"format": "tessera-broker-cache", "version": 1,
 *    "tenants": [{"name": "acme", "since": 45, "cas": ["-----BEGIN CERTIFICATE-----..."]}],
 *    "revoked": [{"issuer": "<sha-256 hex of the issuing CA>", "serial": "5A0C..."}],
 *    "disabled": [{"tenant": "acme", "uid": "sensor-7"}]}
 *
 * The file is read back as outside input: every member is required, no other member is allowed,
 * every value is checked, and anything wrong refuses the whole file.
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "broker/broker_internal.h"
#include "common/error_internal.h"

#define CACHE_FORMAT "tessera-broker-cache"

static char *hex_of(const uint8_t *b, size_t n, char *out, bool upper)
{
    const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";

    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[b[i] >> 4];
        out[2 * i + 1] = digits[b[i] & 15];
    }
    out[2 * n] = '\0';
    return out;
}

static json_t *ca_pem(const tsb_ca *ca)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *p = NULL;
    json_t *s = NULL;

    if (bio != NULL && PEM_write_bio_X509(bio, ca->cert) == 1) {
        long n = BIO_get_mem_data(bio, &p);
        if (n > 0) {
            s = json_stringn(p, (size_t)n);
        }
    }
    BIO_free(bio);
    return s;
}

ts_err tsb_cache_encode(const tsb_state *st, char **out, size_t *len)
{
    json_t *doc = json_object(), *tenants = json_array(), *revoked = json_array();
    json_t *disabled = json_array();
    int bad = doc == NULL || tenants == NULL || revoked == NULL || disabled == NULL;

    for (size_t i = 0; !bad && i < st->n_tenants; i++) {
        const tsb_tenant *t = &st->tenants[i];
        if (!t->synced) {
            continue;
        }
        json_t *cas = json_array();
        bad |= cas == NULL;
        for (size_t j = 0; !bad && j < t->n_cas; j++) {
            bad |= json_array_append_new(cas, ca_pem(&t->cas[j])) != 0;
        }
        bad |= json_array_append_new(tenants, json_pack("{s:s, s:I, s:o}", "name", t->name, "since",
                                                        (json_int_t)t->since, "cas", cas)) != 0;
    }
    for (size_t i = 0; !bad && i < st->n_revoked; i++) {
        char fp[2 * TSB_FP_LEN + 1], serial[2 * TSB_SERIAL_MAX + 3];
        const tsb_revoked *r = &st->revoked[i];
        hex_of(r->fp, TSB_FP_LEN, fp, false);
        if (r->serial_len == 0) {
            memcpy(serial, "00", 3);
        } else {
            hex_of(r->serial, r->serial_len, serial, true);
        }
        bad |= json_array_append_new(revoked,
                                     json_pack("{s:s, s:s}", "issuer", fp, "serial", serial)) != 0;
    }
    for (size_t i = 0; !bad && i < st->n_disabled; i++) {
        char key[sizeof(st->disabled[i].key)];
        memcpy(key, st->disabled[i].key, sizeof(key));
        char *slash = strchr(key, '/');
        if (slash == NULL) {
            continue;
        }
        *slash = '\0';
        bad |= json_array_append_new(disabled,
                                     json_pack("{s:s, s:s}", "tenant", key, "uid", slash + 1)) != 0;
    }
    if (!bad) {
        bad |= json_object_set_new(doc, "format", json_string(CACHE_FORMAT)) != 0;
        bad |= json_object_set_new(doc, "version", json_integer(1)) != 0;
        bad |= json_object_set(doc, "tenants", tenants) != 0;
        bad |= json_object_set(doc, "revoked", revoked) != 0;
        bad |= json_object_set(doc, "disabled", disabled) != 0;
    }
    char *text = bad ? NULL : json_dumps(doc, JSON_COMPACT);
    json_decref(tenants);
    json_decref(revoked);
    json_decref(disabled);
    json_decref(doc);
    if (text == NULL) {
        return ts_error_set(TS_ERR_NOMEM, "cannot encode the cache");
    }
    *out = text;
    *len = strlen(text);
    return TS_OK;
}

/* True when obj is an object with exactly the n members named. */
static bool members_exactly(const json_t *obj, const char *const *names, size_t n)
{
    if (!json_is_object(obj) || json_object_size(obj) != n) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (json_object_get(obj, names[i]) == NULL) {
            return false;
        }
    }
    return true;
}

static ts_err bad(const char *what)
{
    return ts_error_set(TS_ERR_CORRUPT, "cache: %s", what);
}

/* Exactly one PEM certificate of a CA, nothing but whitespace around it. */
ts_err tsb_pem_ca_parse(const json_t *v, X509 **out)
{
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);

    if (s == NULL || n == 0 || n > TSB_PEM_MAX) {
        return bad("a CA is not a PEM string of at most 16 KiB");
    }
    BIO *bio = BIO_new_mem_buf(s, (int)n);
    X509 *cert = bio != NULL ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
    char rest[64];
    int more = bio != NULL ? BIO_read(bio, rest, sizeof(rest)) : 0;
    bool trailing = false;
    for (int i = 0; i < more; i++) {
        trailing |= !(rest[i] == '\n' || rest[i] == '\r' || rest[i] == ' ' || rest[i] == '\t');
    }
    BIO_free(bio);
    if (cert == NULL || trailing || more == (int)sizeof(rest) || X509_check_ca(cert) == 0) {
        X509_free(cert);
        ERR_clear_error();
        return bad("a CA is not one PEM CA certificate");
    }
    *out = cert;
    return TS_OK;
}

static ts_err parse_tenant(tsb_state *st, const json_t *v)
{
    static const char *const names[] = {"name", "since", "cas"};
    X509 *certs[TSB_CAS_PER_TENANT];
    size_t n = 0;
    tsb_tenant *t = NULL;
    bool changed = false;
    ts_err rv = TS_OK;

    if (!members_exactly(v, names, 3)) {
        return bad("a tenant needs exactly name, since and cas");
    }
    const char *name = json_string_value(json_object_get(v, "name"));
    const json_t *since = json_object_get(v, "since");
    const json_t *cas = json_object_get(v, "cas");
    if (name == NULL || !tsb_tenant_name_ok(name) ||
        json_string_length(json_object_get(v, "name")) != strlen(name)) {
        return bad("a tenant name is not [a-z0-9-]");
    }
    if (tsb_state_tenant(st, name) != NULL) {
        return bad("a tenant appears twice");
    }
    if (!json_is_integer(since) || json_integer_value(since) < 0) {
        return bad("a tenant's since is not a non-negative integer");
    }
    if (!json_is_array(cas) || json_array_size(cas) > TSB_CAS_PER_TENANT) {
        return bad("a tenant's cas is not an array of at most 16");
    }
    for (; n < json_array_size(cas); n++) {
        rv = tsb_pem_ca_parse(json_array_get(cas, n), &certs[n]);
        if (rv != TS_OK) {
            break;
        }
    }
    if (rv == TS_OK) {
        rv = tsb_state_tenant_add(st, name, &t);
    }
    if (rv == TS_OK) {
        rv = tsb_tenant_set_cas(t, certs, n, &changed);
    }
    if (rv == TS_OK) {
        t->since = (uint64_t)json_integer_value(since);
        t->synced = true;
    }
    for (size_t i = 0; i < n; i++) {
        X509_free(certs[i]);
    }
    return rv == TS_OK ? TS_OK : ts_error_prefix(TS_ERR_CORRUPT, "cache: tenant");
}

bool tsb_hex_decode(const char *s, uint8_t *out, size_t n)
{
    if (strlen(s) != 2 * n) {
        return false;
    }
    for (size_t i = 0; i < 2 * n; i++) {
        char c = s[i];
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0) {
            return false;
        }
        out[i / 2] = (uint8_t)(i % 2 == 0 ? d << 4 : out[i / 2] | d);
    }
    return true;
}

static ts_err parse_revoked(tsb_state *st, const json_t *v)
{
    static const char *const names[] = {"issuer", "serial"};
    uint8_t fp[TSB_FP_LEN], serial[TSB_SERIAL_MAX], serial_len = 0;

    if (!members_exactly(v, names, 2)) {
        return bad("a revoked entry needs exactly issuer and serial");
    }
    const char *issuer = json_string_value(json_object_get(v, "issuer"));
    const char *hex = json_string_value(json_object_get(v, "serial"));
    if (issuer == NULL || !tsb_hex_decode(issuer, fp, TSB_FP_LEN)) {
        return bad("a revoked entry's issuer is not 64 hex digits");
    }
    if (hex == NULL || tsb_serial_from_hex(hex, serial, &serial_len) != TS_OK) {
        return bad("a revoked entry's serial is not hex of at most 20 octets");
    }
    return tsb_state_revoke(st, fp, serial, serial_len);
}

static ts_err parse_disabled(tsb_state *st, const json_t *v)
{
    static const char *const names[] = {"tenant", "uid"};

    if (!members_exactly(v, names, 2)) {
        return bad("a disabled entry needs exactly tenant and uid");
    }
    const char *tenant = json_string_value(json_object_get(v, "tenant"));
    const char *uid = json_string_value(json_object_get(v, "uid"));
    if (tenant == NULL || uid == NULL || tsb_state_disable(st, tenant, uid) != TS_OK) {
        return bad("a disabled entry has a bad tenant or uid");
    }
    return TS_OK;
}

ts_err tsb_cache_decode(const uint8_t *data, size_t len, tsb_state **out)
{
    static const char *const names[] = {"format", "version", "tenants", "revoked", "disabled"};
    json_error_t jerr;
    ts_err rv = TS_OK;
    tsb_state *st = NULL;

    if (len > TSB_CACHE_MAX) {
        return bad("larger than 256 MiB");
    }
    json_t *doc = json_loadb((const char *)data, len, JSON_REJECT_DUPLICATES, &jerr);
    if (doc == NULL) {
        return ts_error_set(TS_ERR_CORRUPT, "cache: not JSON: %s (line %d)", jerr.text, jerr.line);
    }
    const json_t *tenants = json_object_get(doc, "tenants");
    const json_t *revoked = json_object_get(doc, "revoked");
    const json_t *disabled = json_object_get(doc, "disabled");
    const json_t *version = json_object_get(doc, "version");
    const char *format = json_string_value(json_object_get(doc, "format"));
    if (!members_exactly(doc, names, 5)) {
        rv = bad("the document needs exactly format, version, tenants, revoked and disabled");
    } else if (format == NULL || strcmp(format, CACHE_FORMAT) != 0) {
        rv = bad("format is not " CACHE_FORMAT);
    } else if (!json_is_integer(version) || json_integer_value(version) != 1) {
        rv = bad("version is not 1");
    } else if (!json_is_array(tenants) || json_array_size(tenants) > TSB_TENANTS_MAX ||
               !json_is_array(revoked) || json_array_size(revoked) > TSB_REVOKED_MAX ||
               !json_is_array(disabled) || json_array_size(disabled) > TSB_DISABLED_MAX) {
        rv = bad("tenants, revoked or disabled is not an array within its limit");
    } else {
        st = tsb_state_new();
        rv = st != NULL ? TS_OK : ts_error_set(TS_ERR_NOMEM, "out of memory");
    }
    for (size_t i = 0; rv == TS_OK && i < json_array_size(tenants); i++) {
        rv = parse_tenant(st, json_array_get(tenants, i));
    }
    for (size_t i = 0; rv == TS_OK && i < json_array_size(revoked); i++) {
        rv = parse_revoked(st, json_array_get(revoked, i));
    }
    for (size_t i = 0; rv == TS_OK && i < json_array_size(disabled); i++) {
        rv = parse_disabled(st, json_array_get(disabled, i));
    }
    json_decref(doc);
    if (rv != TS_OK) {
        tsb_state_free(st);
        return rv;
    }
    tsb_state_finish(st);
    *out = st;
    return TS_OK;
}
