/*
 * tessera-agent sync: one provisioning session (docs/protocol.md, docs/agent.md "Sessions").
 * The connection parameters come from the options or the datastore; staged ones are tried first
 * and kept only when a session with them gets an answer.
 */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>

#include "agent/agent_session_http.h"
#include "agent/agent_session_wire.h"
#include "common/error_internal.h"
#include "common/file_internal.h"

#define SESS_TRUST_FILE "sync.trust.pem"

/* Where one session goes: copies, as the datastore's values change under a commit. */
typedef struct conn_params {
    char *server;
    uint8_t *trust; /* PEM roots */
    size_t trust_len;
    int staged; /* these are the staged values: promote them once a reply arrives */
} conn_params;

static void conn_clear(conn_params *c)
{
    OPENSSL_free(c->server);
    OPENSSL_free(c->trust);
    memset(c, 0, sizeof *c);
}

static ts_err conn_set(conn_params *c, const char *server, const uint8_t *trust, size_t len)
{
    c->server = server != NULL ? OPENSSL_strdup(server) : NULL;
    c->trust = trust != NULL ? OPENSSL_malloc(len + 1) : NULL;
    c->trust_len = trust != NULL ? len : 0;
    if (c->trust != NULL) {
        memcpy(c->trust, trust, len);
        c->trust[len] = '\0';
    }
    if ((server != NULL && c->server == NULL) || (trust != NULL && c->trust == NULL)) {
        conn_clear(c);
        return ts_error_set(TS_ERR_NOMEM, "out of memory");
    }
    return TS_OK;
}

/* Both a URL and roots, or the reason why not. */
static ts_err conn_complete(const conn_params *c)
{
    if (c->server == NULL || c->server[0] == '\0') {
        return ts_error_set(TS_ERR_STATE,
                            "no service URL: give --server, or set %s in the "
                            "datastore",
                            TS_DS_SERVER_URL);
    }
    if (c->trust == NULL) {
        return ts_error_set(TS_ERR_STATE,
                            "no trust roots: give --trust, or set %s in the "
                            "datastore",
                            TS_DS_TRUST_ROOTS);
    }
    return TS_OK;
}

typedef struct session {
    sess_ctx *ctx;
    const ts_agent_sync_opts *opts;
    const conn_params *conn;
    ts_agent_sync_result *out;
    char trust_path[PATH_MAX];
    /* What session_open() makes and session_close() frees and clears. */
    X509 *cert;
    STACK_OF(X509) * chain;
    EVP_PKEY *key;
    X509_STORE *roots;
    STACK_OF(X509) * root_list;
    sess_http_cfg cfg;
    sess_http *http;
    int connected; /* a valid reply arrived */
    int renewed;   /* a request replaced the identity: the next message goes out with it */
    char session_id[SESS_ID_MAX + 1];
} session;

static ts_err roots_load(session *s)
{
    ts_err rv = agent_pem_decode(s->conn->trust, s->conn->trust_len, &s->root_list);

    if (rv != TS_OK) {
        return ts_error_prefix(rv, "trust roots");
    }
    s->roots = X509_STORE_new();
    if (s->roots == NULL) {
        return ts_error_set(TS_ERR_NOMEM, "out of memory");
    }
    for (int i = 0; i < sk_X509_num(s->root_list); i++) {
        if (X509_STORE_add_cert(s->roots, sk_X509_value(s->root_list, i)) != 1) {
            return ts_error_set_openssl(TS_ERR_CRYPTO, "cannot use a trust root");
        }
    }
    /* The EST client (a re-enrollment the service asks for) reads its roots from a file. */
    if ((size_t)snprintf(s->trust_path, sizeof s->trust_path, "%s/%s", s->opts->state_dir,
                         SESS_TRUST_FILE) >= sizeof s->trust_path) {
        return ts_error_set(TS_ERR_INVALID, "state directory path too long");
    }
    return ts_file_write_atomic(s->trust_path, s->conn->trust, s->conn->trust_len, 0600);
}

static ts_err session_open(session *s)
{
    agent_pointer cur;
    sess_http_cfg *cfg = &s->cfg;
    ts_err rv = agent_identity_load(ts_agent_keystore(s->ctx->agent), &cur, &s->cert, &s->chain);

    if (rv == TS_ERR_NOT_FOUND) {
        return ts_error_set(TS_ERR_STATE, "the device is not enrolled: run 'enroll' first");
    }
    if (rv == TS_OK) {
        rv = ts_keystore_evp_pkey(ts_agent_keystore(s->ctx->agent), cur.key, &s->key);
    }
    if (rv == TS_OK) {
        rv = roots_load(s);
    }
    if (rv != TS_OK) {
        return rv;
    }
    cfg->server = s->conn->server;
    cfg->roots = s->roots;
    cfg->client_cert = s->cert;
    cfg->client_chain = s->chain;
    cfg->client_key = s->key;
    cfg->timeout = s->opts->timeout;
    rv = sess_http_new(cfg, &s->http);
    if (rv != TS_OK) {
        return rv;
    }
    s->ctx->est.server = s->conn->server;
    s->ctx->est.trust_file = s->trust_path;
    s->ctx->est.timeout = s->opts->timeout;
    return TS_OK;
}

static void session_close(session *s)
{
    sess_http_free(s->http);
    X509_free(s->cert);
    sk_X509_pop_free(s->chain, X509_free);
    EVP_PKEY_free(s->key);
    X509_STORE_free(s->roots);
    sk_X509_pop_free(s->root_list, X509_free);
    s->http = NULL;
    s->cert = NULL;
    s->chain = NULL;
    s->key = NULL;
    s->roots = NULL;
    s->root_list = NULL;
    memset(&s->cfg, 0, sizeof s->cfg);
    s->ctx->est.server = NULL;
    s->ctx->est.trust_file = NULL;
}

/* Makes staged values the current ones (they just worked). */
static ts_err staged_promote(sess_ctx *ctx, const conn_params *conn)
{
    ts_datastore_txn *txn = NULL;
    ts_err rv = ts_datastore_begin(ctx->ds, &txn);

    if (rv == TS_OK) {
        rv = ts_datastore_put(txn, TS_DS_SERVER_URL, TS_DATASTORE_TEXT,
                              (const uint8_t *)conn->server, strlen(conn->server));
    }
    if (rv == TS_OK) {
        rv = ts_datastore_put(txn, TS_DS_TRUST_ROOTS, TS_DATASTORE_TEXT, conn->trust,
                              conn->trust_len);
    }
    for (size_t i = 0; rv == TS_OK && i < 2; i++) {
        rv = ts_datastore_delete(txn, i == 0 ? SESS_STAGED_SERVER : SESS_STAGED_TRUST);
        if (rv == TS_ERR_NOT_FOUND) {
            ts_error_clear();
            rv = TS_OK;
        }
    }
    if (rv == TS_OK) {
        return ts_datastore_commit(txn);
    }
    ts_datastore_abort(txn);
    return rv;
}

/* Drops staged values that did not work; the old ones stay. */
static ts_err staged_drop(sess_ctx *ctx)
{
    ts_datastore_txn *txn = NULL;
    ts_err rv = ts_datastore_begin(ctx->ds, &txn);

    for (size_t i = 0; rv == TS_OK && i < 2; i++) {
        rv = ts_datastore_delete(txn, i == 0 ? SESS_STAGED_SERVER : SESS_STAGED_TRUST);
        if (rv == TS_ERR_NOT_FOUND) {
            ts_error_clear();
            rv = TS_OK;
        }
    }
    if (rv == TS_OK) {
        return ts_datastore_commit(txn);
    }
    ts_datastore_abort(txn);
    return rv;
}

/* Carries out one message's requests in order; after a failure the rest are not attempted. */
static ts_err run_requests(session *s, const Tessera__Agent__V1__ServiceMessage *m,
                           sess_result **results, int *report)
{
    int failed = 0;

    *results = OPENSSL_zalloc((m->n_requests > 0 ? m->n_requests : 1) * sizeof **results);
    if (*results == NULL) {
        return ts_error_set(TS_ERR_NOMEM, "out of memory");
    }
    for (size_t i = 0; i < m->n_requests; i++) {
        sess_result *res = &(*results)[i];
        sess_request req;
        sess_entry *entries = NULL;

        if (failed) {
            res->id = m->requests[i]->id;
            res->aborted = 1;
            snprintf(res->message, sizeof res->message,
                     "not carried out: an earlier request of the message failed");
            s->out->aborted++;
            continue;
        }
        ts_err rv = sess_wire_request(m->requests[i], &req, &entries);
        if (rv != TS_OK) {
            res->id = m->requests[i]->id;
            res->code = rv;
            snprintf(res->message, sizeof res->message, "%s", ts_error_message());
        } else {
            sess_execute(s->ctx, &req, res);
            *report |= req.op == SESS_AGENT_REPORT;
            s->renewed |= res->renewed;
        }
        OPENSSL_free(entries);
        s->out->requests++;
        if (res->code != TS_OK) {
            s->out->failed++;
            failed = 1;
        }
    }
    /* A transaction never spans two messages (docs/protocol.md, Flow). */
    sess_ctx_abort(s->ctx);
    return TS_OK;
}

static ts_err check_reply(session *s, const Tessera__Agent__V1__ServiceMessage *m)
{
    const uint8_t *crl = m->crl.data;
    size_t crl_len = m->crl.len;
    STACK_OF(X509) *issuers = NULL;
    ts_err rv;

    if (crl_len == 0) {
        return TS_OK;
    }
    /* Issuers the agent already holds: the service's chain, its own chain and the roots. */
    issuers = sk_X509_dup(sess_http_peer_chain(s->http));
    if (issuers == NULL && sess_http_peer_chain(s->http) != NULL) {
        return ts_error_set(TS_ERR_NOMEM, "out of memory");
    }
    if (issuers == NULL) {
        issuers = sk_X509_new_null();
    }
    for (int i = 0; issuers != NULL && i < sk_X509_num(s->chain); i++) {
        if (sk_X509_push(issuers, sk_X509_value(s->chain, i)) <= 0) {
            sk_X509_free(issuers);
            issuers = NULL;
        }
    }
    if (issuers == NULL) {
        return ts_error_set(TS_ERR_NOMEM, "out of memory");
    }
    rv = sess_crl_check(sess_http_peer(s->http), issuers, s->root_list, &crl, &crl_len, 1);
    sk_X509_free(issuers); /* the certificates belong to their own lists */
    return rv;
}

static ts_err session_run(session *s)
{
    sess_result *results = NULL;
    size_t result_count = 0;
    int report = 1;
    ts_err rv = TS_OK;
    unsigned n;

    for (n = 0; n < TS_AGENT_SYNC_MESSAGES_MAX; n++) {
        sess_report rep;
        uint8_t *body = NULL, *reply = NULL;
        size_t body_len = 0, reply_len = 0;
        Tessera__Agent__V1__ServiceMessage *m = NULL;
        int done;

        memset(&rep, 0, sizeof rep);
        if (report) {
            rv = sess_report_make(s->ctx, &rep);
        }
        if (rv == TS_OK) {
            rv = sess_wire_agent_message(s->session_id, report ? &rep : NULL, results, result_count,
                                         &body, &body_len);
        }
        sess_report_clear(&rep);
        for (size_t i = 0; i < result_count; i++) {
            sess_result_clear(&results[i]);
        }
        OPENSSL_free(results);
        results = NULL;
        result_count = 0;
        report = 0;
        if (rv == TS_OK && s->renewed) {
            /* A rekey revoked the certificate the session began with: go on with the new one. */
            s->renewed = 0;
            session_close(s);
            rv = session_open(s);
        }
        if (rv == TS_OK) {
            rv = sess_http_post(s->http, body, body_len, &reply, &reply_len);
        }
        OPENSSL_free(body);
        if (rv == TS_OK) {
            rv = sess_wire_service_message(reply, reply_len, &m);
        }
        OPENSSL_free(reply);
        if (rv == TS_OK) {
            rv = check_reply(s, m);
        }
        if (rv != TS_OK) {
            sess_wire_service_message_free(m);
            return rv;
        }
        s->out->messages++;
        if (!s->connected && s->conn->staged) {
            rv = staged_promote(s->ctx, s->conn);
            if (rv != TS_OK) {
                sess_wire_service_message_free(m);
                return ts_error_prefix(rv, "making the staged service URL and trust current");
            }
            s->out->staged_applied = 1;
        }
        s->connected = 1;
        snprintf(s->session_id, sizeof s->session_id, "%s", m->session_id);
        done = m->done && m->n_requests == 0;
        if (!done) {
            rv = run_requests(s, m, &results, &report);
            result_count = m->n_requests;
        }
        sess_wire_service_message_free(m);
        if (rv != TS_OK || done) {
            break;
        }
    }
    for (size_t i = 0; i < result_count; i++) {
        sess_result_clear(&results[i]);
    }
    OPENSSL_free(results);
    if (rv == TS_OK && n == TS_AGENT_SYNC_MESSAGES_MAX) {
        rv = ts_error_set(TS_ERR_LIMIT, "the session stopped after %d messages",
                          TS_AGENT_SYNC_MESSAGES_MAX);
    }
    return rv;
}

static ts_err session_once(sess_ctx *ctx, const ts_agent_sync_opts *opts, const conn_params *conn,
                           ts_agent_sync_result *out, int *connected)
{
    session s;
    ts_err rv;

    memset(&s, 0, sizeof s);
    s.ctx = ctx;
    s.opts = opts;
    s.conn = conn;
    s.out = out;
    rv = session_open(&s);
    if (rv == TS_OK) {
        rv = session_run(&s);
    }
    *connected = s.connected;
    session_close(&s);
    return rv;
}

/* A TEXT entry of the datastore, or NULL. */
static const char *ds_text(const ts_datastore *ds, const char *name)
{
    const char *text = NULL;
    if (ts_datastore_get_text(ds, name, &text) != TS_OK) {
        ts_error_clear();
        return NULL;
    }
    return text;
}

/* The current values: the options, else the datastore's; either may be missing. */
static ts_err base_params(const ts_agent_sync_opts *opts, const ts_datastore *ds, conn_params *base)
{
    const char *server = opts->server != NULL ? opts->server : ds_text(ds, TS_DS_SERVER_URL);
    const char *trust;
    ts_err rv;

    if (opts->trust_file != NULL) {
        uint8_t *data = NULL;
        size_t len = 0;
        rv = ts_file_read(opts->trust_file, TS_AGENT_TRUST_MAX, &data, &len);
        if (rv != TS_OK) {
            return ts_error_prefix(rv, "trust file");
        }
        rv = conn_set(base, server, data, len);
        OPENSSL_free(data);
        return rv;
    }
    trust = ds_text(ds, TS_DS_TRUST_ROOTS);
    return conn_set(base, server, (const uint8_t *)trust, trust != NULL ? strlen(trust) : 0);
}

static ts_err sync_run(sess_ctx *ctx, const ts_agent_sync_opts *opts, ts_agent_sync_result *out)
{
    conn_params base, staged;
    const char *s_url = ds_text(ctx->ds, SESS_STAGED_SERVER);
    const char *s_trust = ds_text(ctx->ds, SESS_STAGED_TRUST);
    int connected = 0;
    ts_err rv;

    memset(&base, 0, sizeof base);
    memset(&staged, 0, sizeof staged);
    rv = base_params(opts, ctx->ds, &base);
    if (rv == TS_OK && (s_url != NULL || s_trust != NULL)) {
        /* Staged values take the place of the current ones they name. */
        rv = conn_set(&staged, s_url != NULL ? s_url : base.server,
                      s_trust != NULL ? (const uint8_t *)s_trust : base.trust,
                      s_trust != NULL ? strlen(s_trust) : base.trust_len);
        staged.staged = 1;
        if (rv == TS_OK) {
            rv = conn_complete(&staged);
        }
    }
    if (rv != TS_OK) {
        goto done;
    }
    if (staged.staged) {
        rv = session_once(ctx, opts, &staged, out, &connected);
        if (rv == TS_OK || connected) {
            goto done;
        }
        if (conn_complete(&base) != TS_OK) {
            /* No old values to fall back to: the staged ones stay for the next try. */
            goto done;
        }
        char why[SESS_MESSAGE_MAX];
        char line[SESS_MESSAGE_MAX + 64];
        snprintf(why, sizeof why, "%s", ts_error_message());
        snprintf(line, sizeof line, "staged service URL or trust roots dropped: %s", why);
        sess_error_record(opts->state_dir, line);
        rv = staged_drop(ctx);
        if (rv != TS_OK) {
            goto done;
        }
        out->staged_dropped = 1;
    }
    rv = conn_complete(&base);
    if (rv == TS_OK) {
        rv = session_once(ctx, opts, &base, out, &connected);
    }
done:
    conn_clear(&base);
    conn_clear(&staged);
    return rv;
}

ts_err ts_agent_sync(ts_agent *agent, const ts_agent_sync_opts *opts, ts_agent_sync_result *out)
{
    sess_ctx ctx;
    uint64_t days = 0;
    ts_err rv;

    memset(out, 0, sizeof *out);
    memset(&ctx, 0, sizeof ctx);
    if (opts == NULL || opts->state_dir == NULL) {
        return ts_error_set(TS_ERR_INVALID, "a session needs the state directory");
    }
    ctx.agent = agent;
    ctx.state_dir = opts->state_dir;
    rv = ts_datastore_open_or_defaults(opts->state_dir, ts_agent_keystore(agent), &ctx.ds);
    if (rv != TS_OK) {
        return ts_error_prefix(rv, "datastore");
    }
    if (ts_datastore_get_uint(ctx.ds, TS_DS_REENROLL_DAYS, &days) == TS_OK && days <= 3650) {
        ctx.threshold_days = (unsigned)days;
    }
    ts_error_clear();
    sess_ctx_load_sender(&ctx);
    rv = sync_run(&ctx, opts, out);
    if (rv != TS_OK) {
        char msg[SESS_MESSAGE_MAX];
        snprintf(msg, sizeof msg, "%s", ts_error_message());
        sess_error_record(opts->state_dir, msg);
        rv = ts_error_set(rv, "%s", msg);
    }
    sess_ctx_abort(&ctx);
    EVP_PKEY_free(ctx.sender);
    ts_datastore_free(ctx.ds);
    return rv;
}
