/*
 * Tenants by id and CAs by fingerprint (include/tessera/store_access.h): what the service needs
 * to map a TLS client certificate's issuer to its tenant, and to build its trust store.
 */
#include <string.h>

#include <openssl/crypto.h>

#include "common/error_internal.h"
#include "store/store_access_internal.h"

/* --- Tenants and CAs by id and fingerprint ---------------------------------------------------- */

static ts_err tenant_row(void *ctx, const ts_sql_row *row)
{
    ts_tenant_row *t = ctx;
    if (t->id != 0) {
        return ts_error_set(TS_ERR_CORRUPT, "two tenants have one id");
    }
    ts_err rv = ts_sql_get_int(row, 0, "tenants.id", &t->id);
    if (rv == TS_OK) {
        rv = ts_sql_get_text(row, 1, "tenants.name", t->name, sizeof t->name);
    }
    if (rv == TS_OK) {
        rv = ts_sql_get_text(row, 2, "tenants.org", t->org, sizeof t->org);
    }
    if (rv == TS_OK) {
        rv = ts_sql_get_text(row, 3, "tenants.country", t->country, sizeof t->country);
    }
    if (rv == TS_OK) {
        rv = ts_sql_get_time(row, 4, "tenants.created", &t->created);
    }
    return rv;
}

ts_err ts_store_tenant_get_id(ts_store *store, int64_t id, ts_tenant_row *out)
{
    if (store == NULL || out == NULL) {
        return ts_error_set(TS_ERR_INVALID, "ts_store_tenant_get_id: missing argument");
    }
    memset(out, 0, sizeof *out);
    ts_sql_value p[] = {ts_sql_int(id)};
    ts_err rv = ts_store_read(store,
                              "SELECT id, name, org, country, created FROM tenants "
                              "WHERE id = $1",
                              p, 1, tenant_row, out);
    if (rv == TS_OK && out->id == 0) {
        rv = ts_error_set(TS_ERR_NOT_FOUND, "no tenant %lld", (long long)id);
    }
    return rv;
}

typedef struct id_list {
    int64_t *ids;
    size_t count, cap;
} id_list;

static ts_err id_list_row(void *ctx, const ts_sql_row *row)
{
    id_list *l = ctx;
    ts_err rv = ts_array_reserve((void **)&l->ids, sizeof *l->ids, &l->cap, l->count + 1);
    if (rv == TS_OK) {
        rv = ts_sql_get_int(row, 0, "cas.id", &l->ids[l->count]);
    }
    if (rv == TS_OK) {
        l->count++;
    }
    return rv;
}

ts_err ts_store_ca_by_fingerprint(ts_store *store, const char *fingerprint, ts_ca_row *out)
{
    char fp[65];
    id_list l = {0};
    if (store == NULL || out == NULL) {
        return ts_error_set(TS_ERR_INVALID, "ts_store_ca_by_fingerprint: missing argument");
    }
    memset(out, 0, sizeof *out);
    ts_err rv = ts_fingerprint_canonical(fingerprint, fp);
    if (rv != TS_OK) {
        return rv;
    }
    ts_sql_value p[] = {ts_sql_text(fp)};
    rv = ts_store_read(store, "SELECT id FROM cas WHERE fingerprint = $1", p, 1, id_list_row, &l);
    if (rv == TS_OK && l.count == 0) {
        rv = ts_error_set(TS_ERR_NOT_FOUND, "no CA has fingerprint %s", fp);
    }
    if (rv == TS_OK) {
        rv = ts_store_ca_get(store, l.ids[0], out);
    }
    OPENSSL_free(l.ids);
    return rv;
}

ts_err ts_store_ca_list(ts_store *store, ts_ca_row **rows, size_t *count)
{
    id_list l = {0};
    ts_ca_row *out = NULL;
    size_t n = 0;
    if (store == NULL || rows == NULL || count == NULL) {
        return ts_error_set(TS_ERR_INVALID, "ts_store_ca_list: missing argument");
    }
    *rows = NULL;
    *count = 0;
    ts_err rv = ts_store_read(store, "SELECT id FROM cas ORDER BY id", NULL, 0, id_list_row, &l);
    if (rv == TS_OK && l.count > 0) {
        out = OPENSSL_zalloc(l.count * sizeof *out);
        if (out == NULL) {
            rv = ts_error_set(TS_ERR_NOMEM, "out of memory");
        }
    }
    /* A handful of CAs: one lookup each keeps the row decoding in store_ca.c. */
    for (; rv == TS_OK && n < l.count; n++) {
        rv = ts_store_ca_get(store, l.ids[n], &out[n]);
    }
    OPENSSL_free(l.ids);
    if (rv != TS_OK) {
        for (size_t i = 0; i < n; i++) {
            ts_ca_row_clear(&out[i]);
        }
        OPENSSL_free(out);
        return ts_error_prefix(rv, "listing CAs");
    }
    *rows = out;
    *count = n;
    return TS_OK;
}
