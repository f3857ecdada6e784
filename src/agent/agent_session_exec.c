/*
 * The session's request handlers: each request the service sends is run against one endpoint
 * (key store, datastore, agent) and gives one result. A refusal is a result, not a failure of the
 * session: the service learns the ts_err code and the message, and the next request runs.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "agent/agent_fw_offer.h"
#include "agent/agent_session_internal.h"
#include "common/error_internal.h"

/* Objects the agent itself owns: a session may not write or delete them through KEYSTORE. The
 * identity changes only by enrollment; the counters only go up by their own rules; the
 * provisioning key is what imports are checked against, so the channel that carries imports
 * must not be able to replace it. */
static int label_reserved(const char *label)
{
    static const char *const exact[] = {TS_AGENT_KEY_LABEL, TS_AGENT_UID_LABEL,
                                        TS_AGENT_CLAIM_LABEL, TS_AGENT_CURRENT_LABEL,
                                        TS_AGENT_RTP_SENDER_LABEL};
    for (size_t i = 0; i < sizeof exact / sizeof exact[0]; i++) {
        if (strcmp(label, exact[i]) == 0) {
            return 1;
        }
    }
    return strncmp(label, "identity.", 9) == 0 || strncmp(label, "ts.", 3) == 0;
}

static void result_from_error(sess_result *res, ts_err code)
{
    res->code = code;
    if (code != TS_OK) {
        snprintf(res->message, sizeof res->message, "%s", ts_error_message());
    } else {
        res->message[0] = '\0';
    }
}

static ts_err need_label(const sess_request *req, int reserved_ok)
{
    if (req->label == NULL) {
        return ts_error_set(TS_ERR_INVALID, "the request names no object");
    }
    ts_err rv = ts_label_check(req->label);
    if (rv != TS_OK) {
        return rv;
    }
    if (!reserved_ok && label_reserved(req->label)) {
        return ts_error_set(TS_ERR_DENIED,
                            "object '%s' belongs to the agent and is not changed "
                            "by a session",
                            req->label);
    }
    return TS_OK;
}

static ts_err ks_import(sess_ctx *ctx, const sess_request *req, sess_result *res)
{
    if (ctx->sender == NULL) {
        return ts_error_set(TS_ERR_STATE,
                            "no provisioning key is trusted, so an import cannot be "
                            "verified: %s",
                            ctx->sender_error);
    }
    if (req->data == NULL || req->len == 0 || req->len > TS_IMPORT_BLOB_MAX) {
        return ts_error_set(TS_ERR_INVALID, "an import blob is 1 to %d bytes, not %zu",
                            TS_IMPORT_BLOB_MAX, req->len);
    }
    return ts_keystore_import(ts_agent_keystore(ctx->agent), req->data, req->len, ctx->sender,
                              res->label);
}

static ts_err ks_put(sess_ctx *ctx, const sess_request *req)
{
    ts_err rv = need_label(req, 0);
    if (rv != TS_OK) {
        return rv;
    }
    if (req->len > TS_OBJECT_MAX) {
        return ts_error_set(TS_ERR_LIMIT, "an object is at most %d bytes, not %zu", TS_OBJECT_MAX,
                            req->len);
    }
    return ts_keystore_object_replace(ts_agent_keystore(ctx->agent), req->label,
                                      req->data != NULL ? req->data : (const uint8_t *)"", req->len,
                                      req->secret ? TS_DATA_SECRET : 0);
}

/* The entry for label, to tell keys from data objects and secret objects from public ones. */
static ts_err ks_entry(ts_keystore *ks, const char *label, ts_keystore_entry *out)
{
    ts_keystore_entry *all = NULL;
    size_t n = 0;
    ts_err rv = ts_keystore_list(ks, &all, &n);

    if (rv != TS_OK) {
        return rv;
    }
    rv = ts_error_set(TS_ERR_NOT_FOUND, "the key store has no object '%s'", label);
    for (size_t i = 0; i < n; i++) {
        if (strcmp(all[i].label, label) == 0) {
            *out = all[i];
            ts_error_clear();
            rv = TS_OK;
            break;
        }
    }
    OPENSSL_free(all);
    return rv;
}

static ts_err ks_delete(sess_ctx *ctx, const sess_request *req)
{
    ts_keystore *ks = ts_agent_keystore(ctx->agent);
    ts_keystore_entry e;
    ts_err rv = need_label(req, 0);

    if (rv == TS_OK) {
        rv = ks_entry(ks, req->label, &e);
    }
    if (rv == TS_OK && e.kind != TS_KIND_DATA) {
        rv = ts_error_set(TS_ERR_WRONG_TYPE, "'%s' is not a data object", req->label);
    }
    return rv == TS_OK ? ts_keystore_delete(ks, req->label) : rv;
}

/* The request as DER: agent_csr_make() gives base64 of DER (RFC 7030's transfer form). */
static ts_err csr_der(const char *b64, sess_result *res)
{
    EVP_ENCODE_CTX *ectx = EVP_ENCODE_CTX_new();
    size_t n = strlen(b64);
    int out = 0, fin = 0;
    ts_err rv = TS_OK;

    res->data = OPENSSL_malloc(n / 4 * 3 + 3);
    if (ectx == NULL || res->data == NULL || n > INT32_MAX) {
        rv = ts_error_set(TS_ERR_NOMEM, "out of memory");
    } else {
        EVP_DecodeInit(ectx);
        if (EVP_DecodeUpdate(ectx, res->data, &out, (const unsigned char *)b64, (int)n) < 0 ||
            EVP_DecodeFinal(ectx, res->data + out, &fin) != 1) {
            rv = ts_error_set_openssl(TS_ERR_CRYPTO, "cannot decode the request");
        } else {
            res->len = (size_t)(out + fin);
        }
    }
    EVP_ENCODE_CTX_free(ectx);
    return rv;
}

static ts_err ks_genkey_csr(sess_ctx *ctx, const sess_request *req, sess_result *res)
{
    ts_keystore *ks = ts_agent_keystore(ctx->agent);
    char uid[TS_AGENT_UID_MAX + 1];
    X509_NAME *subject = NULL;
    char *b64 = NULL;
    ts_err rv = need_label(req, 0);

    if (rv == TS_OK) {
        rv = ts_agent_uid(ctx->agent, uid);
    }
    if (rv == TS_OK) {
        rv = ts_keystore_generate(ks, req->label, req->curve != 0 ? req->curve : TS_CURVE_P256);
    }
    if (rv != TS_OK) {
        return rv;
    }
    subject = X509_NAME_new();
    if (subject == NULL || X509_NAME_add_entry_by_NID(subject, NID_commonName, MBSTRING_UTF8,
                                                      (unsigned char *)uid, -1, -1, 0) != 1) {
        rv = ts_error_set_openssl(TS_ERR_NOMEM, "cannot make the request's subject");
    }
    if (rv == TS_OK) {
        rv = agent_csr_make(ks, req->label, subject, NULL, &b64);
    }
    if (rv == TS_OK) {
        rv = csr_der(b64, res);
    }
    if (rv != TS_OK) {
        /* No half result: the key made for a request that could not be answered goes again. */
        char msg[SESS_MESSAGE_MAX];
        snprintf(msg, sizeof msg, "%s", ts_error_message());
        if (ts_keystore_delete(ks, req->label) != TS_OK) {
            ts_error_clear();
        }
        rv = ts_error_set(rv, "%s", msg);
    }
    OPENSSL_free(b64);
    X509_NAME_free(subject);
    return rv;
}

static ts_err ks_read_public(sess_ctx *ctx, const sess_request *req, sess_result *res)
{
    ts_keystore *ks = ts_agent_keystore(ctx->agent);
    ts_keystore_entry e;
    EVP_PKEY *pub = NULL;
    uint8_t *der = NULL;
    uint8_t *data = NULL;
    size_t len = 0;
    ts_err rv = need_label(req, 1);

    if (rv == TS_OK) {
        rv = ks_entry(ks, req->label, &e);
    }
    if (rv != TS_OK) {
        return rv;
    }
    if (e.kind == TS_KIND_KEY) {
        rv = ts_keystore_public_key(ks, req->label, &pub);
        if (rv == TS_OK) {
            int n = i2d_PUBKEY(pub, &der);
            if (n <= 0) {
                rv = ts_error_set_openssl(TS_ERR_CRYPTO, "cannot encode public key '%s'",
                                          req->label);
            } else {
                res->data = der;
                res->len = (size_t)n;
            }
        }
        EVP_PKEY_free(pub);
        return rv;
    }
    if (e.kind != TS_KIND_DATA) {
        return ts_error_set(TS_ERR_WRONG_TYPE, "'%s' is a counter, not a public object",
                            req->label);
    }
    if ((e.flags & TS_DATA_SECRET) != 0 || strcmp(req->label, TS_AGENT_CLAIM_LABEL) == 0) {
        return ts_error_set(TS_ERR_DENIED, "'%s' is a secret object and is never read out",
                            req->label);
    }
    rv = ts_keystore_object_get(ks, req->label, &data, &len);
    if (rv == TS_OK) {
        res->data = data;
        res->len = len;
    }
    return rv;
}

/* Staging entries are the agent's own; a read shows the service what it set. */
static int ds_hidden(const char *name)
{
    return strncmp(name, "staged.", 7) == 0;
}

static ts_err ds_read(sess_ctx *ctx, const sess_request *req, sess_result *res)
{
    size_t n = req->name_count > 0 ? req->name_count : ts_datastore_count(ctx->ds);
    ts_err rv = TS_OK;

    if (n == 0) {
        return TS_OK;
    }
    res->entries = OPENSSL_zalloc(n * sizeof *res->entries);
    if (res->entries == NULL) {
        return ts_error_set(TS_ERR_NOMEM, "out of memory");
    }
    for (size_t i = 0; i < n && rv == TS_OK; i++) {
        const char *name = req->name_count > 0 ? req->names[i] : ts_datastore_name_at(ctx->ds, i);
        sess_entry *e = &res->entries[res->entry_count];
        if (name == NULL || ds_hidden(name)) {
            continue;
        }
        /* Copies: a commit later in the same message replaces the handle's entries. */
        const uint8_t *value = NULL;
        rv = ts_datastore_get(ctx->ds, name, &value, &e->len, &e->type);
        if (rv != TS_OK) {
            break;
        }
        e->name = OPENSSL_strdup(name);
        e->value = OPENSSL_memdup(value, e->len + 1); /* with its NUL */
        res->entry_count++;
        if (e->name == NULL || e->value == NULL) {
            rv = ts_error_set(TS_ERR_NOMEM, "out of memory");
        }
    }
    return rv;
}

/* The service's URL and trust roots take effect only once a connection with them succeeds. */
static const char *ds_staged_name(const char *name)
{
    if (strcmp(name, TS_DS_SERVER_URL) == 0) {
        return SESS_STAGED_SERVER;
    }
    if (strcmp(name, TS_DS_TRUST_ROOTS) == 0) {
        return SESS_STAGED_TRUST;
    }
    return name;
}

static ts_err ds_put(sess_ctx *ctx, const sess_request *req)
{
    if (ctx->txn == NULL) {
        return ts_error_set(TS_ERR_STATE, "no datastore transaction is open: send DS_BEGIN first");
    }
    for (size_t i = 0; i < req->entry_count; i++) {
        const sess_entry *e = &req->entries[i];
        const char *name;
        ts_err rv;

        if (e->name == NULL) {
            return ts_error_set(TS_ERR_INVALID, "a datastore entry has no name");
        }
        if (ds_hidden(e->name)) {
            return ts_error_set(TS_ERR_DENIED, "'%s' is the agent's own staging entry", e->name);
        }
        name = ds_staged_name(e->name);
        rv = e->deleted ? ts_datastore_delete(ctx->txn, name)
                        : ts_datastore_put(ctx->txn, name, e->type, e->value, e->len);
        if (rv != TS_OK) {
            return ts_error_prefix(rv, "datastore entry '%.64s'", e->name);
        }
    }
    return TS_OK;
}

static ts_err ds_commit(sess_ctx *ctx, sess_result *res)
{
    ts_err rv;

    if (ctx->txn == NULL) {
        return ts_error_set(TS_ERR_STATE, "no datastore transaction is open: send DS_BEGIN first");
    }
    rv = ts_datastore_commit(ctx->txn);
    ctx->txn = NULL; /* ended whatever the outcome */
    if (rv == TS_OK) {
        res->generation = ts_datastore_generation(ctx->ds);
    }
    return rv;
}

/* An offered update: downloaded over mutual TLS and applied to the inactive slot now, so the
 * answer says whether it is pending (docs/firmware-device.md); the reboot is the device's. */
static ts_err fw_update(sess_ctx *ctx, const sess_request *req, sess_result *res)
{
    agent_fw_offer offer;
    char summary[SESS_MESSAGE_MAX];
    ts_err rv = agent_fw_offer_parse(req->data, req->len, &offer);
    if (rv == TS_OK) {
        rv = agent_fw_offer_apply(ctx->agent, ctx->state_dir, ctx->est.trust_file, &offer, summary,
                                  sizeof summary);
    }
    if (rv == TS_OK) {
        res->len = strlen(summary);
        res->data = (uint8_t *)OPENSSL_strdup(summary);
        if (res->data == NULL) {
            res->len = 0;
            return ts_error_set(TS_ERR_NOMEM, "out of memory");
        }
    }
    return rv;
}

static ts_err run(sess_ctx *ctx, const sess_request *req, sess_result *res)
{
    switch (req->op) {
    case SESS_KS_IMPORT:
        return ks_import(ctx, req, res);
    case SESS_KS_PUT_OBJECT:
        return ks_put(ctx, req);
    case SESS_KS_DELETE_OBJECT:
        return ks_delete(ctx, req);
    case SESS_KS_GENKEY_CSR:
        return ks_genkey_csr(ctx, req, res);
    case SESS_KS_READ_PUBLIC:
        return ks_read_public(ctx, req, res);
    case SESS_DS_READ:
        return ds_read(ctx, req, res);
    case SESS_DS_BEGIN:
        if (ctx->txn != NULL) {
            return ts_error_set(TS_ERR_STATE, "a datastore transaction is open already");
        }
        return ts_datastore_begin(ctx->ds, &ctx->txn);
    case SESS_DS_PUT:
        return ds_put(ctx, req);
    case SESS_DS_COMMIT:
        return ds_commit(ctx, res);
    case SESS_AGENT_REENROLL:
        if (ctx->est.server == NULL || ctx->est.trust_file == NULL) {
            return ts_error_set(TS_ERR_STATE, "re-enrollment needs the service URL and trust");
        }
        ctx->est.rekey = req->rekey; /* ctx->est serves this request alone */
        return ts_agent_reenroll(ctx->agent, &ctx->est, ctx->threshold_days, req->force,
                                 &res->renewed);
    case SESS_AGENT_REPORT:
        return TS_OK; /* the caller attaches a fresh status report */
    case SESS_AGENT_FW_UPDATE:
        return fw_update(ctx, req, res);
    }
    return ts_error_set(TS_ERR_UNSUPPORTED,
                        "request %llu asks for an operation (%d) this agent "
                        "does not know",
                        (unsigned long long)req->id, (int)req->op);
}

static void entries_free(sess_result *res)
{
    for (size_t i = 0; i < res->entry_count; i++) {
        OPENSSL_free((char *)res->entries[i].name);
        OPENSSL_free((uint8_t *)res->entries[i].value);
    }
    OPENSSL_free(res->entries);
    res->entries = NULL;
    res->entry_count = 0;
}

void sess_execute(sess_ctx *ctx, const sess_request *req, sess_result *res)
{
    memset(res, 0, sizeof *res);
    res->id = req->id;
    result_from_error(res, run(ctx, req, res));
    if (res->code != TS_OK) {
        OPENSSL_free(res->data);
        res->data = NULL;
        res->len = 0;
        entries_free(res);
    }
}

void sess_result_clear(sess_result *res)
{
    OPENSSL_free(res->data);
    entries_free(res);
    memset(res, 0, sizeof *res);
}

void sess_ctx_abort(sess_ctx *ctx)
{
    ts_datastore_abort(ctx->txn);
    ctx->txn = NULL;
}

void sess_ctx_load_sender(sess_ctx *ctx)
{
    ts_keystore *ks = ts_agent_keystore(ctx->agent);
    uint8_t *pem = NULL;
    size_t len = 0;
    BIO *bio = NULL;
    ts_err rv = ts_keystore_object_get(ks, TS_AGENT_RTP_SENDER_LABEL, &pem, &len);

    ctx->sender = NULL;
    if (rv != TS_OK) {
        snprintf(ctx->sender_error, sizeof ctx->sender_error, "key-store object %s: %s",
                 TS_AGENT_RTP_SENDER_LABEL, ts_error_message());
        ts_error_clear();
        return;
    }
    if (len <= INT32_MAX) {
        bio = BIO_new_mem_buf(pem, (int)len);
    }
    if (bio != NULL) {
        ctx->sender = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
    }
    BIO_free(bio);
    OPENSSL_clear_free(pem, len);
    ERR_clear_error();
    if (ctx->sender == NULL || EVP_PKEY_get_base_id(ctx->sender) != EVP_PKEY_EC) {
        EVP_PKEY_free(ctx->sender);
        ctx->sender = NULL;
        snprintf(ctx->sender_error, sizeof ctx->sender_error,
                 "key-store object %s is not a PEM EC public key", TS_AGENT_RTP_SENDER_LABEL);
    }
}
