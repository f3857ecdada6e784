/*
 * The agent's HTTPS client: libcurl with OpenSSL. The TLS context is finished in
 * CURLOPT_SSL_CTX_FUNCTION: the trust store is replaced by the agent's roots (nothing from the
 * system), and the client certificate's key is a key-store key through the Tessera provider, so
 * the handshake signature is made in the store.
 *
 * A connection handle (agent_http_conn) carries several requests over one kept-alive TLS
 * connection and reads its channel binding (RFC 5929 tls-unique on TLS 1.2, RFC 9266
 * tls-exporter on TLS 1.3) while a reply arrives, so that an EST request can carry the binding
 * of the very connection it is sent on (docs/est.md, "Proof of possession").
 */
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include <curl/curl.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "agent/agent_internal.h"
#include "common/error_internal.h"

struct agent_http_conn {
    agent_http_req cfg; /* roots, client certificate and key, timeout */
    CURL *curl;
    agent_http_resp *resp; /* of the transfer under way */
    size_t cap;
    int overflow;
    int no_new_connection; /* this transfer must reuse the open connection */
    int refused_socket;    /* ... and curl tried to open another */
    int header_seen;       /* the transfer's first header line has been handled */
    uint8_t binding[AGENT_HTTP_CB_MAX];
    size_t binding_len;
    const char *binding_name;
    int binding_changed; /* a later transfer ran over a connection with another binding */
    char tls_error[256];
};

typedef agent_http_conn http_call;

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg)
{
    http_call *call = arg;
    agent_http_resp *resp = call->resp;
    size_t n = size * nmemb;

    if (n > TS_AGENT_REPLY_MAX - resp->len) {
        call->overflow = 1;
        return 0; /* curl stops with CURLE_WRITE_ERROR */
    }
    if (resp->len + n + 1 > call->cap) {
        size_t cap = (resp->len + n + 1) * 2;
        uint8_t *grown = OPENSSL_realloc(resp->body, cap);
        if (grown == NULL) {
            return 0;
        }
        resp->body = grown;
        call->cap = cap;
    }
    memcpy(resp->body + resp->len, data, n);
    resp->len += n;
    resp->body[resp->len] = '\0';
    return n;
}

static void tls_fail(http_call *call, const char *what)
{
    unsigned long e = ERR_get_error();
    char reason[160] = "";

    if (e != 0) {
        ERR_error_string_n(e, reason, sizeof reason);
    }
    ERR_clear_error();
    snprintf(call->tls_error, sizeof call->tls_error, "%s%s%s", what, e != 0 ? ": " : "", reason);
}

static CURLcode on_ssl_ctx(CURL *curl, void *ssl_ctx, void *arg)
{
    http_call *call = arg;
    const agent_http_req *req = &call->cfg;
    SSL_CTX *ctx = ssl_ctx;

    (void)curl;
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
        (req->tls12_only && SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION) != 1)) {
        tls_fail(call, "cannot set the TLS versions");
        return CURLE_SSL_CIPHER;
    }
    /* Only the agent's roots: SSL_CTX_set1_cert_store takes a reference and drops the store
     * curl filled from the system defaults. */
    SSL_CTX_set1_cert_store(ctx, req->roots);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    if (req->client_cert == NULL) {
        return CURLE_OK;
    }
    if (SSL_CTX_use_certificate(ctx, req->client_cert) != 1) {
        tls_fail(call, "cannot use the client certificate");
        return CURLE_SSL_CERTPROBLEM;
    }
    for (int i = 0; i < sk_X509_num(req->client_chain); i++) {
        if (SSL_CTX_add1_chain_cert(ctx, sk_X509_value(req->client_chain, i)) != 1) {
            tls_fail(call, "cannot add the client certificate's chain");
            return CURLE_SSL_CERTPROBLEM;
        }
    }
    if (SSL_CTX_use_PrivateKey(ctx, req->client_key) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
        tls_fail(call, "the client certificate does not match its key-store key");
        return CURLE_SSL_CERTPROBLEM;
    }
    return CURLE_OK;
}

void agent_http_resp_clear(agent_http_resp *resp)
{
    OPENSSL_free(resp->body);
    memset(resp, 0, sizeof *resp);
}

/*
 * The channel binding of ssl: tls-exporter (RFC 9266 section 2: 32 bytes of the exporter with
 * label "EXPORTER-Channel-Binding" and no context) on TLS 1.3; tls-unique (RFC 5929 section 3.1:
 * the first Finished message of the handshake, the client's own in a full handshake, the
 * server's in a resumed one) on TLS 1.2. 0 when there is none.
 */
static size_t channel_binding(SSL *ssl, uint8_t out[AGENT_HTTP_CB_MAX], const char **name)
{
    static const char label[] = "EXPORTER-Channel-Binding";
    size_t n;

    if (SSL_version(ssl) == TLS1_3_VERSION) {
        *name = "tls-exporter";
        if (SSL_export_keying_material(ssl, out, 32, label, sizeof label - 1, NULL, 0, 0) != 1) {
            ERR_clear_error();
            return 0;
        }
        return 32;
    }
    if (SSL_version(ssl) != TLS1_2_VERSION) {
        return 0;
    }
    *name = "tls-unique";
    n = SSL_session_reused(ssl) ? SSL_get_peer_finished(ssl, out, AGENT_HTTP_CB_MAX)
                                : SSL_get_finished(ssl, out, AGENT_HTTP_CB_MAX);
    return n <= AGENT_HTTP_CB_MAX ? n : 0;
}

/*
 * The first header line of a reply: the connection is up and its SSL is the one curl uses, so
 * its binding is read here (CURLINFO_TLS_SSL_PTR is meant for use during a transfer). A later
 * transfer whose connection has another binding is marked.
 */
static size_t on_header(char *data, size_t size, size_t nmemb, void *arg)
{
    http_call *call = arg;
    struct curl_tlssessioninfo *info = NULL;
    uint8_t now[AGENT_HTTP_CB_MAX];
    const char *name = NULL;
    size_t n = 0;

    (void)data;
    if (call->header_seen) {
        return size * nmemb;
    }
    call->header_seen = 1;
    if (curl_easy_getinfo(call->curl, CURLINFO_TLS_SSL_PTR, &info) == CURLE_OK && info != NULL &&
        info->backend == CURLSSLBACKEND_OPENSSL && info->internals != NULL) {
        n = channel_binding(info->internals, now, &name);
    }
    if (call->binding_len == 0) {
        memcpy(call->binding, now, n);
        call->binding_len = n;
        call->binding_name = name;
    } else if (n != call->binding_len || CRYPTO_memcmp(now, call->binding, n) != 0) {
        call->binding_changed = 1;
    }
    OPENSSL_cleanse(now, sizeof now);
    return size * nmemb;
}

/* Every new connection goes through here: refused when the transfer must reuse the open one. */
static curl_socket_t on_open_socket(void *arg, curlsocktype purpose, struct curl_sockaddr *addr)
{
    http_call *call = arg;

    if (purpose != CURLSOCKTYPE_IPCXN || call->no_new_connection) {
        call->refused_socket = 1;
        return CURL_SOCKET_BAD;
    }
    return socket(addr->family, addr->socktype, addr->protocol);
}

static ts_err curl_failed(CURLcode code, const char *url, const http_call *call, const char *errbuf)
{
    const char *detail = errbuf[0] != '\0' ? errbuf : curl_easy_strerror(code);

    if (call->tls_error[0] != '\0') {
        return ts_error_set(TS_ERR_CRYPTO, "TLS set-up for %s failed: %s", url, call->tls_error);
    }
    if (call->overflow) {
        return ts_error_set(TS_ERR_LIMIT, "the reply from %s is over %d bytes", url,
                            TS_AGENT_REPLY_MAX);
    }
    if (call->refused_socket) {
        return ts_error_set(TS_ERR_AUTH,
                            "the service closed the connection before %s: proof of possession "
                            "needs the request on the connection whose channel binding it "
                            "carries, so no new connection was opened",
                            url);
    }
    switch (code) {
    case CURLE_PEER_FAILED_VERIFICATION:
        return ts_error_set(TS_ERR_AUTH,
                            "the service at %s is not trusted: its certificate does not chain to "
                            "a root in the trust file, or does not name the host (%s)",
                            url, detail);
    case CURLE_OPERATION_TIMEDOUT:
        return ts_error_set(TS_ERR_IO, "no reply from %s in time (%s)", url, detail);
    default:
        return ts_error_set(TS_ERR_IO, "cannot reach %s: %s", url, detail);
    }
}

#define SET(opt, val)                                                                              \
    do {                                                                                           \
        if (code == CURLE_OK) {                                                                    \
            code = curl_easy_setopt(curl, opt, val);                                               \
        }                                                                                          \
    } while (0)

ts_err agent_http_conn_new(const agent_http_req *cfg, agent_http_conn **out)
{
    agent_http_conn *c = OPENSSL_zalloc(sizeof *c);
    CURLcode code = CURLE_OK;
    CURL *curl;

    *out = NULL;
    if (c == NULL || (c->curl = curl_easy_init()) == NULL) {
        OPENSSL_free(c);
        return ts_error_set(TS_ERR_NOMEM, "cannot set up the HTTP client");
    }
    c->cfg = *cfg;
    c->cfg.url = NULL;
    c->cfg.body = NULL;
    c->cfg.password = NULL;
    curl = c->curl;
    SET(CURLOPT_PROTOCOLS_STR, "https");
    SET(CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    SET(CURLOPT_FOLLOWLOCATION, 0L);
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_TCP_NODELAY, 1L);
    SET(CURLOPT_TIMEOUT, cfg->timeout > 0 ? cfg->timeout : (long)TS_AGENT_TIMEOUT_DEFAULT);
    SET(CURLOPT_SSL_VERIFYPEER, 1L);
    SET(CURLOPT_SSL_VERIFYHOST, 2L);
    /* No CA file or directory from the system: the callback installs the agent's roots. */
    SET(CURLOPT_CAINFO, NULL);
    SET(CURLOPT_CAPATH, NULL);
    SET(CURLOPT_SSL_CTX_FUNCTION, on_ssl_ctx);
    SET(CURLOPT_SSL_CTX_DATA, c);
    SET(CURLOPT_OPENSOCKETFUNCTION, on_open_socket);
    SET(CURLOPT_OPENSOCKETDATA, c);
    SET(CURLOPT_HEADERFUNCTION, on_header);
    SET(CURLOPT_HEADERDATA, c);
    SET(CURLOPT_WRITEFUNCTION, on_body);
    SET(CURLOPT_WRITEDATA, c);
    if (code != CURLE_OK) {
        agent_http_conn_free(c);
        return ts_error_set(TS_ERR_INVALID, "cannot set up the HTTP client: %s",
                            curl_easy_strerror(code));
    }
    *out = c;
    return TS_OK;
}

void agent_http_conn_free(agent_http_conn *c)
{
    if (c == NULL) {
        return;
    }
    curl_easy_cleanup(c->curl);
    OPENSSL_clear_free(c, sizeof *c);
}

ts_err agent_http_conn_do(agent_http_conn *c, const char *url, const char *body,
                          const char *password, int same_connection, agent_http_resp *resp)
{
    char errbuf[CURL_ERROR_SIZE] = "";
    struct curl_slist *hdrs = NULL;
    CURL *curl = c->curl;
    CURLcode code = CURLE_OK;
    long connects = 0;
    ts_err rv = TS_OK;

    memset(resp, 0, sizeof *resp);
    if (strncmp(url, "https://", 8) != 0) {
        return ts_error_set(TS_ERR_INVALID, "the service URL %s is not https://", url);
    }
    if (same_connection && c->binding_len == 0) {
        return ts_error_set(TS_ERR_STATE, "no connection with a channel binding is open");
    }
    c->resp = resp;
    c->cap = 0;
    c->overflow = 0;
    c->header_seen = 0;
    c->refused_socket = 0;
    c->binding_changed = 0;
    c->tls_error[0] = '\0';
    c->no_new_connection = same_connection;
    if (!same_connection) {
        c->binding_len = 0; /* read afresh from this transfer's connection */
    }
    if (body != NULL) {
        hdrs = curl_slist_append(hdrs, "Content-Type: application/pkcs10");
        if (hdrs == NULL) {
            return ts_error_set(TS_ERR_NOMEM, "cannot set up the HTTP client");
        }
    }
    SET(CURLOPT_URL, url);
    SET(CURLOPT_ERRORBUFFER, errbuf);
    if (body != NULL) {
        SET(CURLOPT_HTTPHEADER, hdrs);
        SET(CURLOPT_POSTFIELDS, body);
        SET(CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    } else {
        SET(CURLOPT_HTTPHEADER, NULL);
        SET(CURLOPT_HTTPGET, 1L);
    }
    if (password != NULL) {
        /* RFC 7617; the user name is ignored by the service (docs/est.md). */
        SET(CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        SET(CURLOPT_USERNAME, "device");
        SET(CURLOPT_PASSWORD, password);
    }
    if (code != CURLE_OK) {
        rv = ts_error_set(TS_ERR_INVALID, "cannot set up the HTTP client: %s",
                          curl_easy_strerror(code));
        goto done;
    }
    code = curl_easy_perform(curl);
    if (code != CURLE_OK) {
        rv = curl_failed(code, url, c, errbuf);
        goto done;
    }
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &resp->status);
    /* Belt and braces: the socket callback refuses new connections, and curl counts them. */
    if (same_connection && (curl_easy_getinfo(curl, CURLINFO_NUM_CONNECTS, &connects) != CURLE_OK ||
                            connects > 0 || c->binding_changed)) {
        rv = ts_error_set(TS_ERR_AUTH,
                          "the request to %s went over another connection than the one whose "
                          "channel binding it carries; its reply is not used",
                          url);
    }
done:
    if (password != NULL) {
        /* Drop curl's copy of the claim code now rather than at cleanup. */
        (void)curl_easy_setopt(curl, CURLOPT_PASSWORD, "");
        (void)curl_easy_setopt(curl, CURLOPT_USERNAME, NULL);
        (void)curl_easy_setopt(curl, CURLOPT_HTTPAUTH, (long)CURLAUTH_NONE);
    }
    (void)curl_easy_setopt(curl, CURLOPT_HTTPHEADER, NULL);
    (void)curl_easy_setopt(curl, CURLOPT_POSTFIELDS, NULL);
    (void)curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, NULL);
    curl_slist_free_all(hdrs);
    c->resp = NULL;
    if (rv != TS_OK) {
        agent_http_resp_clear(resp);
    }
    return rv;
}
#undef SET

ts_err agent_http_conn_binding(const agent_http_conn *c, uint8_t out[AGENT_HTTP_CB_MAX],
                               size_t *len, const char **name)
{
    if (c->binding_len == 0) {
        *len = 0;
        return ts_error_set(TS_ERR_CRYPTO,
                            "the TLS connection to the service has no channel binding "
                            "(tls-unique on TLS 1.2, tls-exporter on TLS 1.3)");
    }
    memcpy(out, c->binding, c->binding_len);
    *len = c->binding_len;
    if (name != NULL) {
        *name = c->binding_name;
    }
    return TS_OK;
}

ts_err agent_http_request(const agent_http_req *req, agent_http_resp *resp)
{
    agent_http_conn *c = NULL;
    ts_err rv;

    memset(resp, 0, sizeof *resp);
    if (strncmp(req->url, "https://", 8) != 0) {
        return ts_error_set(TS_ERR_INVALID, "the service URL %s is not https://", req->url);
    }
    rv = agent_http_conn_new(req, &c);
    if (rv == TS_OK) {
        rv = agent_http_conn_do(c, req->url, req->body, req->password, 0, resp);
    }
    agent_http_conn_free(c);
    return rv;
}
