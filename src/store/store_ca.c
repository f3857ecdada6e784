/* CAs, their CRL numbers, and certificate profiles. */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "common/error_internal.h"
#include "store/store_internal.h"

/* --- CAs ----------------------------------------------------------------------------------- */

void ts_ca_row_clear(ts_ca_row *row)
{
    if (row == NULL) {
        return;
    }
    OPENSSL_free(row->cert_der);
    memset(row, 0, sizeof *row);
}

static ts_err check_ca(const ts_ca_row *row, char fingerprint[65])
{
    if (row->kind != TS_CA_ROOT && row->kind != TS_CA_ISSUING) {
        return ts_error_set(TS_ERR_INVALID, "CA kind %d is neither root nor issuing",
                            (int)row->kind);
    }
    if (row->kind == TS_CA_ROOT && row->tenant_id != 0) {
        return ts_error_set(TS_ERR_INVALID, "a root CA belongs to no tenant (tenant_id 0)");
    }
    if (row->kind == TS_CA_ISSUING && row->tenant_id <= 0) {
        return ts_error_set(TS_ERR_INVALID, "an issuing CA needs a tenant");
    }
    if (row->active != 0 && row->active != 1) {
        return ts_error_set(TS_ERR_INVALID, "a CA's active flag is 0 or 1");
    }
    if (row->cert_der == NULL || row->cert_len == 0 || row->cert_len > TS_STORE_DER_MAX) {
        return ts_error_set(TS_ERR_INVALID, "a CA certificate is 1 to %d bytes of DER",
                            TS_STORE_DER_MAX);
    }
    ts_err rv = ts_check_name(row->key_label, "a CA's key label");
    if (rv == TS_OK) {
        rv = ts_check_text(row->subject, sizeof row->subject, 1, "a CA's subject");
    }
    if (rv == TS_OK) {
        rv = ts_fingerprint_canonical(row->fingerprint, fingerprint);
    }
    return rv;
}

static ts_err new_id_row(void *ctx, const ts_sql_row *row)
{
    return ts_sql_get_int(row, 0, "a new row's id", ctx);
}

ts_err ts_store_ca_insert(ts_store *store, ts_ca_row *row)
{
    char fingerprint[65];
    int64_t id = 0;
    if (store == NULL || row == NULL) {
        return ts_error_set(TS_ERR_INVALID, "ts_store_ca_insert: missing argument");
    }
    ts_err rv = check_ca(row, fingerprint);
    if (rv == TS_OK) {
        rv = ts_store_need_tx(store, "ts_store_ca_insert");
    }
    if (rv != TS_OK) {
        return rv;
    }
    time_t created = row->created != 0 ? row->created : time(NULL);
    ts_sql_value p[] = {
        row->tenant_id != 0 ? ts_sql_int(row->tenant_id) : ts_sql_null(),
        ts_sql_int(row->kind),
        ts_sql_int(row->active),
        ts_sql_text(row->key_label),
        ts_sql_blob(row->cert_der, row->cert_len),
        ts_sql_text(row->subject),
        ts_sql_text(fingerprint),
        ts_sql_int(created),
    };
    rv = ts_store_write_query(store,
                              "INSERT INTO cas (tenant_id, kind, active, key_label, cert_der, "
                              "subject, fingerprint, crl_number, created) "
                              "VALUES ($1, $2, $3, $4, $5, $6, $7, 0, $8) RETURNING id",
                              p, 8, new_id_row, &id);
    if (rv == TS_ERR_EXISTS) {
        return ts_error_prefix(rv, "the tenant already has an active CA of this kind, or the "
                                   "certificate is stored already");
    }
    if (rv != TS_OK) {
        return ts_error_prefix(rv, "adding a CA");
    }
    if (id <= 0) {
        return ts_error_set(TS_ERR_STORE, "adding a CA returned no id");
    }
    row->id = id;
    row->created = created;
    memcpy(row->fingerprint, fingerprint, sizeof fingerprint);
    return TS_OK;
}

#define CA_COLUMNS                                                                                 \
    "SELECT id, COALESCE(tenant_id, 0), kind, active, key_label, cert_der, subject, fingerprint, " \
    "created FROM cas"

typedef struct ca_out {
    ts_ca_row *row;
    int found;
} ca_out;

static ts_err ca_row(void *ctx, const ts_sql_row *row)
{
    ca_out *o = ctx;
    ts_ca_row *c = o->row;
    int64_t kind = 0, active = 0;
    if (o->found) {
        return ts_error_set(TS_ERR_CORRUPT, "two CAs match where one was expected");
    }
    o->found = 1;
    ts_err rv = ts_sql_get_int(row, 0, "cas.id", &c->id);
    if (rv == TS_OK) {
        rv = ts_sql_get_int(row, 1, "cas.tenant_id", &c->tenant_id);
    }
    if (rv == TS_OK) {
        rv = ts_sql_get_int(row, 2, "cas.kind", &kind);
    }
    if (rv == TS_OK) {
        rv = ts_sql_get_int(row, 3, "cas.active", &active);
    }
    if (rv == TS_OK && (kind != TS_CA_ROOT && kind != TS_CA_ISSUING)) {
        rv = ts_error_set(TS_ERR_CORRUPT, "CA %lld has kind %lld", (long long)c->id,
                          (long long)kind);
    }
    if (rv == TS_OK && active != 0 && active != 1) {
        rv = ts_error_set(TS_ERR_CORRUPT, "CA %lld has active flag %lld", (long long)c->id,
                          (long long)active);
    }
    if (rv == TS_OK) {
        c->kind = (ts_ca_kind)kind;
        c->active = (int)active;
        rv = ts_sql_get_text(row, 4, "cas.key_label", c->key_label, sizeof c->key_label);
    }
    if (rv == TS_OK) {
        rv = ts_sql_get_blob_dup(row, 5, "cas.cert_der", TS_STORE_DER_MAX, &c->cert_der,
                                 &c->cert_len);
    }
    if (rv == TS_OK) {
        rv = ts_sql_get_text(row, 6, "cas.subject", c->subject, sizeof c->subject);
    }
    if (rv == TS_OK) {
        rv = ts_sql_get_text(row, 7, "cas.fingerprint", c->fingerprint, sizeof c->fingerprint);
    }
    if (rv == TS_OK) {
        rv = ts_sql_get_time(row, 8, "cas.created", &c->created);
    }
    return rv;
}

static ts_err ca_fetch(ts_store *store, const char *sql, const ts_sql_value *p, size_t n,
                       ts_ca_row *out)
{
    ca_out o = {.row = out};
    memset(out, 0, sizeof *out);
    ts_err rv = ts_store_read(store, sql, p, n, ca_row, &o);
    if (rv == TS_OK && !o.found) {
        rv = TS_ERR_NOT_FOUND;
    }
    if (rv != TS_OK) {
        ts_ca_row_clear(out);
    }
    return rv;
}

ts_err ts_store_ca_active(ts_store *store, int64_t tenant_id, ts_ca_kind kind, ts_ca_row *out)
{
    if (store == NULL || out == NULL) {
        return ts_error_set(TS_ERR_INVALID, "ts_store_ca_active: missing argument");
    }
    ts_sql_value p[] = {ts_sql_int(tenant_id), ts_sql_int(kind)};
    ts_err rv = ca_fetch(store,
                         CA_COLUMNS " WHERE COALESCE(tenant_id, 0) = $1 AND kind = $2 "
                                    "AND active = 1",
                         p, 2, out);
    if (rv == TS_ERR_NOT_FOUND) {
        return ts_error_set(rv, "tenant %lld has no active %s CA", (long long)tenant_id,
                            kind == TS_CA_ROOT ? "root" : "issuing");
    }
    return rv;
}

ts_err ts_store_ca_get(ts_store *store, int64_t id, ts_ca_row *out)
{
    if (store == NULL || out == NULL) {
        return ts_error_set(TS_ERR_INVALID, "ts_store_ca_get: missing argument");
    }
    ts_sql_value p[] = {ts_sql_int(id)};
    ts_err rv = ca_fetch(store, CA_COLUMNS " WHERE id = $1", p, 1, out);
    if (rv == TS_ERR_NOT_FOUND) {
        return ts_error_set(rv, "no CA %lld", (long long)id);
    }
    return rv;
}

ts_err ts_store_ca_set_active(ts_store *store, int64_t id, int active)
{
    int64_t changes = 0;
    if (store == NULL || (active != 0 && active != 1)) {
        return ts_error_set(TS_ERR_INVALID, "ts_store_ca_set_active: bad argument");
    }
    ts_sql_value p[] = {ts_sql_int(id), ts_sql_int(active)};
    ts_err rv = ts_store_write(store, "UPDATE cas SET active = $2 WHERE id = $1", p, 2, &changes);
    if (rv == TS_ERR_EXISTS) {
        return ts_error_prefix(rv, "another CA of this kind is active for the tenant");
    }
    if (rv == TS_OK && changes == 0) {
        rv = ts_error_set(TS_ERR_NOT_FOUND, "no CA %lld", (long long)id);
    }
    return rv;
}

ts_err ts_store_crl_number_next(ts_store *store, int64_t ca_id, uint64_t *number)
{
    int64_t n = 0;
    if (store == NULL || number == NULL) {
        return ts_error_set(TS_ERR_INVALID, "ts_store_crl_number_next: missing argument");
    }
    ts_err rv = ts_store_need_tx(store, "ts_store_crl_number_next");
    if (rv != TS_OK) {
        return rv;
    }
    /* The update locks the CA's row until commit: concurrent issuers of CRLs take turns. */
    ts_sql_value p[] = {ts_sql_int(ca_id)};
    rv = ts_store_write_query(store,
                              "UPDATE cas SET crl_number = crl_number + 1 WHERE id = $1 "
                              "RETURNING crl_number",
                              p, 1, new_id_row, &n);
    if (rv != TS_OK) {
        return ts_error_prefix(rv, "taking a CRL number");
    }
    if (n == 0) {
        return ts_error_set(TS_ERR_NOT_FOUND, "no CA %lld", (long long)ca_id);
    }
    if (n < 0) {
        return ts_error_set(TS_ERR_CORRUPT, "CA %lld has CRL number %lld", (long long)ca_id,
                            (long long)n);
    }
    *number = (uint64_t)n;
    return TS_OK;
}

/* --- Profiles ------------------------------------------------------------------------------ */

static ts_err check_profile_json(const char *text)
{
    json_error_t err;
    ts_err rv = ts_check_text(text, TS_STORE_JSON_MAX, 1, "a profile");
    if (rv != TS_OK) {
        return rv;
    }
    json_t *doc = json_loads(text, JSON_REJECT_DUPLICATES, &err);
    if (doc == NULL) {
        return ts_error_set(TS_ERR_INVALID, "a profile is not JSON: line %d: %s", err.line,
                            err.text);
    }
    int is_object = json_is_object(doc);
    json_decref(doc);
    if (!is_object) {
        return ts_error_set(TS_ERR_INVALID, "a profile is a JSON object");
    }
    return TS_OK;
}

ts_err ts_store_profile_put(ts_store *store, int64_t tenant_id, const char *name, const char *json,
                            int replace)
{
    int64_t id = 0, changes = 0;
    if (store == NULL) {
        return ts_error_set(TS_ERR_INVALID, "ts_store_profile_put: no store");
    }
    ts_err rv = ts_check_name(name, "a profile's name");
    if (rv == TS_OK) {
        rv = check_profile_json(json);
    }
    if (rv == TS_OK) {
        rv = ts_store_need_tx(store, "ts_store_profile_put");
    }
    if (rv != TS_OK) {
        return rv;
    }
    ts_sql_value p[] = {ts_sql_int(tenant_id), ts_sql_text(name), ts_sql_text(json),
                        ts_sql_int(time(NULL))};
    if (replace) {
        rv = ts_store_write(store,
                            "UPDATE profiles SET body = $3, updated = $4 "
                            "WHERE tenant_id = $1 AND name = $2",
                            p, 4, &changes);
        if (rv == TS_OK && changes == 0) {
            rv = ts_error_set(TS_ERR_NOT_FOUND, "tenant %lld has no profile %s",
                              (long long)tenant_id, name);
        }
    } else {
        rv = ts_store_write_query(store,
                                  "INSERT INTO profiles (tenant_id, name, body, created, updated) "
                                  "VALUES ($1, $2, $3, $4, $4) "
                                  "ON CONFLICT (tenant_id, name) DO NOTHING RETURNING id",
                                  p, 4, new_id_row, &id);
        if (rv == TS_OK && id == 0) {
            rv = ts_error_set(TS_ERR_EXISTS, "tenant %lld has a profile %s already",
                              (long long)tenant_id, name);
        }
    }
    if (rv == TS_ERR_NOT_FOUND || rv == TS_ERR_EXISTS) {
        return rv;
    }
    return rv != TS_OK ? ts_error_prefix(rv, "storing profile %s", name) : TS_OK;
}

typedef struct body_out {
    char *body;
} body_out;

static ts_err body_row(void *ctx, const ts_sql_row *row)
{
    body_out *o = ctx;
    if (o->body != NULL) {
        return ts_error_set(TS_ERR_CORRUPT, "a profile appears twice");
    }
    return ts_sql_get_text_dup(row, 0, "profiles.body", TS_STORE_JSON_MAX, &o->body);
}

ts_err ts_store_profile_get(ts_store *store, int64_t tenant_id, const char *name, char **json)
{
    body_out o = {0};
    if (store == NULL || json == NULL) {
        return ts_error_set(TS_ERR_INVALID, "ts_store_profile_get: missing argument");
    }
    *json = NULL;
    ts_err rv = ts_check_name(name, "a profile's name");
    if (rv != TS_OK) {
        return rv;
    }
    ts_sql_value p[] = {ts_sql_int(tenant_id), ts_sql_text(name)};
    rv = ts_store_read(store, "SELECT body FROM profiles WHERE tenant_id = $1 AND name = $2", p, 2,
                       body_row, &o);
    if (rv == TS_OK && o.body == NULL) {
        rv = ts_error_set(TS_ERR_NOT_FOUND, "tenant %lld has no profile %s", (long long)tenant_id,
                          name);
    }
    if (rv != TS_OK) {
        OPENSSL_free(o.body);
        return rv;
    }
    *json = o.body;
    return TS_OK;
}

typedef struct name_list {
    char **names;
    size_t count, cap;
} name_list;

static ts_err name_row(void *ctx, const ts_sql_row *row)
{
    name_list *l = ctx;
    ts_err rv = ts_array_reserve((void **)&l->names, sizeof *l->names, &l->cap, l->count + 1);
    if (rv != TS_OK) {
        return rv;
    }
    rv = ts_sql_get_text_dup(row, 0, "profiles.name", TS_NAME_MAX, &l->names[l->count]);
    if (rv == TS_OK) {
        l->count++;
    }
    return rv;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

ts_err ts_store_profile_list(ts_store *store, int64_t tenant_id, char ***names, size_t *count)
{
    name_list l = {0};
    if (store == NULL || names == NULL || count == NULL) {
        return ts_error_set(TS_ERR_INVALID, "ts_store_profile_list: missing argument");
    }
    *names = NULL;
    *count = 0;
    ts_sql_value p[] = {ts_sql_int(tenant_id)};
    ts_err rv =
        ts_store_read(store, "SELECT name FROM profiles WHERE tenant_id = $1", p, 1, name_row, &l);
    if (rv != TS_OK) {
        for (size_t i = 0; i < l.count; i++) {
            OPENSSL_free(l.names[i]);
        }
        OPENSSL_free(l.names);
        return ts_error_prefix(rv, "listing profiles");
    }
    /* Sorted here, by bytes: the two databases' collations would order names differently. */
    if (l.count > 1) {
        qsort(l.names, l.count, sizeof *l.names, by_name);
    }
    *names = l.names;
    *count = l.count;
    return TS_OK;
}
