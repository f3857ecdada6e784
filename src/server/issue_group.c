/*
 * Group issuance: many CSRs under one profile, stored with one commit.
 *
 * A durable commit costs a flush to disk (SQLite with synchronous=FULL syncs its WAL; PostgreSQL
 * flushes its WAL at commit), so issuing one certificate per transaction is capped by how many
 * flushes the disk makes per second. ts_ca_issue_csrs() pays that flush once per group: every
 * CSR is checked and signed first, then all certificates and their audit entries are written in
 * one transaction and committed once. Each certificate is stored and audited exactly as
 * ts_ca_issue_csr() does it (action "cert.issue", the same details), and nothing is handed back
 * before the commit has returned: a crash or a failed commit loses only certificates that no
 * caller has seen.
 */
#include <stdio.h>
#include <string.h>

#include <openssl/x509v3.h>

#include "common/error_internal.h"
#include "server/server_internal.h"

/* One CSR of the group and what is made for it. */
typedef struct group_item {
    ts_batch_csr *csr; /* NULL when the CSR was refused */
    X509 *cert;        /* signed, not yet acknowledged */
    ts_cert_row row;   /* what the store gets */
    json_t *details;   /* the audit entry's details; taken by srv_audit() */
} group_item;

typedef struct group_state {
    ts_ca *ca;
    srv_issue_ctx ctx;
    srv_issue_req req;
    ts_issue_batch *batch; /* the group's checking and signing contexts */
    int device;            /* the profile's certificates belong to a device: the CN is its UID */
    group_item *items;
    uint8_t *serials; /* count x TS_SERIAL_LEN, drawn at once: one CSPRNG call per group */
    size_t count;
    ts_err *results;
    /* The first CSR refused while storing (its device is disabled), and why. */
    ts_err late_rv;
    size_t late_at;
    char late[1024];
} group_state;

static void item_reset(group_item *it)
{
    X509_free(it->cert);
    it->cert = NULL;
    ts_cert_row_clear(&it->row);
    json_decref(it->details);
    it->details = NULL;
}

/* The certificate's CN as UTF-8 into buf; empty when there is none or it does not fit. */
static void item_cn(X509 *cert, char *buf, size_t size)
{
    const X509_NAME *name = X509_get_subject_name(cert);
    int idx = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
    unsigned char *utf8 = NULL;

    buf[0] = '\0';
    if (idx < 0) {
        return;
    }
    int len = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, idx)));
    if (len > 0 && (size_t)len < size) {
        memcpy(buf, utf8, (size_t)len);
        buf[len] = '\0';
    }
    OPENSSL_free(utf8);
}

/* Signs the item's certificate with the serial given and fills its row and audit details, as a
 * single issuance does. Replaces whatever the item held. */
static ts_err item_sign(group_state *g, group_item *it, const uint8_t *serial)
{
    srv_issue_req *req = &g->req;
    ts_err rv;

    item_reset(it);
    req->params.batch_csr = it->csr;
    req->params.serial = serial;
    req->params.issuer_cert = req->issuer->cert;
    req->params.issuer_key = req->issuer->key;
    rv = ts_cert_issue(&req->params, &it->cert);
    req->params.batch_csr = NULL;
    req->params.serial = NULL;
    if (rv == TS_OK) {
        rv = srv_cert_row_fill(it->cert, &it->row);
    }
    if (rv != TS_OK) {
        return rv;
    }
    it->row.tenant_id = req->tenant->id;
    it->row.issuer_ca_id = req->issuer->row.id;
    snprintf(it->row.profile, sizeof it->row.profile, "%s", req->profile_name);
    if (g->device) {
        item_cn(it->cert, it->row.device_uid, sizeof it->row.device_uid);
    }
    it->details = srv_json("{s:s, s:s, s:s, s:s, s:s, s:s}", "tenant", req->tenant->name, "profile",
                           it->row.profile, "serial", it->row.serial, "subject", it->row.subject,
                           "sha256", it->row.fingerprint, "device", it->row.device_uid);
    if (it->details == NULL) {
        return ts_error_set(TS_ERR_NOMEM, "out of memory");
    }
    return TS_OK;
}

/* Parses and checks one CSR against the profile; a refusal is the CSR's own result. */
static ts_err item_check(group_state *g, group_item *it, const uint8_t *csr, size_t len)
{
    ts_err rv = ts_csr_parse_in(g->batch, csr, len, &it->csr);
    if (rv != TS_OK) {
        ts_error_prefix(rv, "CSR refused");
    }
    return rv;
}

/* Stores one certificate and its audit entry in the open transaction. A serial already taken
 * under the issuer (RFC 5280 section 4.1.2.2: unique per issuer; the store's constraint decides
 * and leaves the transaction usable) is replaced by a fresh one and the certificate re-signed.
 * The certificate's device is registered first, one statement per device; a disabled device
 * refuses its CSR alone (TS_ERR_POLICY in its result) and the group goes on. */
static ts_err item_store(group_state *g, size_t i)
{
    group_item *it = &g->items[i];
    ts_err rv = TS_OK;
    if (g->device && it->row.device_uid[0] != '\0') {
        rv = srv_device_admit(g->ca, g->req.tenant->id, it->row.device_uid, NULL);
    }
    if (rv == TS_ERR_POLICY) {
        if (g->late_rv == TS_OK) {
            g->late_rv = rv;
            g->late_at = i;
            snprintf(g->late, sizeof g->late, "%s", ts_error_message());
        }
        g->results[i] = rv;
        item_reset(it);
        return TS_OK;
    }
    if (rv == TS_OK) {
        rv = ts_store_cert_insert(g->ca->store, &it->row);
    }
    for (int tries = 1; rv == TS_ERR_CONFLICT && tries < SRV_ISSUE_TRIES; tries++) {
        uint8_t *serial = &g->serials[i * TS_SERIAL_LEN];
        rv = ts_serial_random(serial);
        if (rv == TS_OK) {
            rv = item_sign(g, it, serial);
        }
        if (rv == TS_OK) {
            rv = ts_store_cert_insert(g->ca->store, &it->row);
        }
    }
    if (rv == TS_ERR_CONFLICT) {
        return ts_error_prefix(rv, "no free serial after %d tries", SRV_ISSUE_TRIES);
    }
    if (rv == TS_OK) {
        rv = srv_audit(g->ca, "cert.issue", it->row.serial, it->details);
        it->details = NULL;
    }
    return rv;
}

/* Every signed certificate and its audit entry in one transaction, committed once. A failure
 * rolls all of it back. */
static ts_err group_commit(group_state *g)
{
    size_t pending = 0;
    ts_err rv;

    for (size_t i = 0; i < g->count; i++) {
        pending += g->results[i] == TS_OK;
    }
    if (pending == 0) {
        return TS_OK;
    }
    rv = ts_store_begin(g->ca->store);
    if (rv != TS_OK) {
        return rv;
    }
    for (size_t i = 0; i < g->count && rv == TS_OK; i++) {
        if (g->results[i] == TS_OK) {
            rv = item_store(g, i);
            if (rv != TS_OK) {
                ts_error_prefix(rv, "CSR %zu of %zu", i + 1, g->count);
            }
        }
    }
    if (rv != TS_OK) {
        ts_store_rollback(g->ca->store);
        return ts_error_prefix(rv, "no certificate of the group was issued");
    }
    /* A commit that fails has been rolled back by the store. */
    rv = ts_store_commit(g->ca->store);
    if (rv != TS_OK) {
        return ts_error_prefix(rv, "no certificate of the group was issued");
    }
    return TS_OK;
}

ts_err ts_ca_issue_csrs(ts_ca *ca, const char *tenant, const char *profile,
                        const uint8_t *const *csrs, const size_t *csr_lens, size_t count,
                        X509 **certs_out, ts_err *results)
{
    group_state g;
    char first[1024] = "";
    ts_err first_rv = TS_OK;
    size_t first_at = 0;
    int loaded = 0, checked = 0;
    ts_err rv;

    if (ca == NULL || csrs == NULL || csr_lens == NULL || certs_out == NULL || results == NULL) {
        return ts_error_set(TS_ERR_INVALID, "ts_ca_issue_csrs: missing argument");
    }
    for (size_t i = 0; i < count; i++) {
        certs_out[i] = NULL;
        results[i] = TS_ERR_STATE;
    }
    if (count == 0 || count > TS_CA_ISSUE_GROUP_MAX) {
        return ts_error_set(TS_ERR_INVALID, "a group holds 1 to %d CSRs, not %zu",
                            TS_CA_ISSUE_GROUP_MAX, count);
    }
    memset(&g, 0, sizeof g);
    g.ca = ca;
    g.count = count;
    g.results = results;
    g.items = OPENSSL_zalloc(count * sizeof *g.items);
    g.serials = OPENSSL_malloc(count * TS_SERIAL_LEN);
    if (g.items == NULL || g.serials == NULL) {
        rv = ts_error_set(TS_ERR_NOMEM, "out of memory");
        goto done;
    }
    rv = srv_issue_ctx_load(ca, tenant, profile, &g.ctx);
    loaded = rv == TS_OK;
    if (rv != TS_OK) {
        goto done;
    }
    srv_issue_req_init(ca, &g.ctx, profile, "cert.issue", &g.req);
    g.device = srv_profile_is_device(g.ctx.profile);
    rv = ts_issue_batch_new(g.ctx.profile, g.ctx.issuer.key, &g.batch);
    if (rv != TS_OK) {
        goto done;
    }
    g.req.params.batch = g.batch;
    rv = ts_serials_random(g.serials, count);
    if (rv != TS_OK) {
        goto done;
    }

    /* Checked and signed before the transaction, so the store is locked only while writing. A
     * CSR that fails here is refused on its own; the others go on. */
    for (size_t i = 0; i < count; i++) {
        results[i] = item_check(&g, &g.items[i], csrs[i], csr_lens[i]);
        if (results[i] == TS_OK) {
            results[i] = item_sign(&g, &g.items[i], &g.serials[i * TS_SERIAL_LEN]);
        }
        if (results[i] != TS_OK && first_rv == TS_OK) {
            first_rv = results[i];
            first_at = i;
            snprintf(first, sizeof first, "%s", ts_error_message());
        }
    }
    checked = 1;
    rv = group_commit(&g);
    if (g.late_rv != TS_OK && (first_rv == TS_OK || g.late_at < first_at)) {
        first_rv = g.late_rv;
        first_at = g.late_at;
        snprintf(first, sizeof first, "%s", g.late);
    }
done:
    for (size_t i = 0; i < count; i++) {
        if (rv == TS_OK && results[i] == TS_OK) {
            /* Committed: now, and only now, the certificate is the caller's. */
            certs_out[i] = g.items[i].cert;
            g.items[i].cert = NULL;
        } else if (rv != TS_OK && (results[i] == TS_OK || !checked)) {
            results[i] = rv;
        }
    }
    if (g.items != NULL) {
        for (size_t i = 0; i < count; i++) {
            item_reset(&g.items[i]);
            ts_batch_csr_free(g.items[i].csr);
        }
    }
    OPENSSL_free(g.items);
    OPENSSL_free(g.serials);
    ts_issue_batch_free(g.batch);
    if (loaded) {
        srv_issue_ctx_clear(&g.ctx);
    }
    /* The group committed but some CSRs were refused: the first refusal is the message. */
    if (rv == TS_OK && first_rv != TS_OK) {
        (void)ts_error_set(first_rv, "CSR %zu of %zu: %s", first_at + 1, count, first);
    }
    return rv;
}
