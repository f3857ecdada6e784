/*
 * The agent's HTTPS client: libcurl with OpenSSL. The TLS context is finished in
 * CURLOPT_SSL_CTX_FUNCTION: the trust store is replaced by the agent's roots (nothing from the
 * system), and the client certificate's key is a key-store key through the Tessera provider, so
 * the handshake signature is made in the store.
 */
#include <stdio.h>
#include <string.h>

#include <curl/curl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "agent/agent_internal.h"
#include "common/error_internal.h"

typedef struct http_call {
    const agent_http_req *req;
    agent_http_resp *resp;
    size_t cap;
    int overflow;
    char tls_error[256];
} http_call;

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
    const agent_http_req *req = call->req;
    SSL_CTX *ctx = ssl_ctx;

    (void)curl;
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1) {
        tls_fail(call, "cannot require TLS 1.2");
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

ts_err agent_http_request(const agent_http_req *req, agent_http_resp *resp)
{
    char errbuf[CURL_ERROR_SIZE] = "";
    struct curl_slist *hdrs = NULL;
    http_call call;
    CURL *curl = NULL;
    CURLcode code;
    ts_err rv = TS_OK;

    memset(resp, 0, sizeof *resp);
    memset(&call, 0, sizeof call);
    call.req = req;
    call.resp = resp;
    if (strncmp(req->url, "https://", 8) != 0) {
        return ts_error_set(TS_ERR_INVALID, "the service URL %s is not https://", req->url);
    }
    curl = curl_easy_init();
    if (req->body != NULL) {
        hdrs = curl_slist_append(hdrs, "Content-Type: application/pkcs10");
    }
    if (curl == NULL || (req->body != NULL && hdrs == NULL)) {
        rv = ts_error_set(TS_ERR_NOMEM, "cannot set up the HTTP client");
        goto done;
    }
    code = CURLE_OK;
#define SET(opt, val)                                                                              \
    do {                                                                                           \
        if (code == CURLE_OK) {                                                                    \
            code = curl_easy_setopt(curl, opt, val);                                               \
        }                                                                                          \
    } while (0)
    SET(CURLOPT_URL, req->url);
    SET(CURLOPT_PROTOCOLS_STR, "https");
    SET(CURLOPT_FOLLOWLOCATION, 0L);
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_TCP_NODELAY, 1L);
    SET(CURLOPT_TIMEOUT, req->timeout > 0 ? req->timeout : (long)TS_AGENT_TIMEOUT_DEFAULT);
    SET(CURLOPT_ERRORBUFFER, errbuf);
    SET(CURLOPT_SSL_VERIFYPEER, 1L);
    SET(CURLOPT_SSL_VERIFYHOST, 2L);
    /* No CA file or directory from the system: the callback installs the agent's roots. */
    SET(CURLOPT_CAINFO, NULL);
    SET(CURLOPT_CAPATH, NULL);
    SET(CURLOPT_SSL_CTX_FUNCTION, on_ssl_ctx);
    SET(CURLOPT_SSL_CTX_DATA, &call);
    if (req->body != NULL) {
        SET(CURLOPT_HTTPHEADER, hdrs);
        SET(CURLOPT_POSTFIELDS, req->body);
        SET(CURLOPT_POSTFIELDSIZE, (long)strlen(req->body));
    }
    SET(CURLOPT_WRITEFUNCTION, on_body);
    SET(CURLOPT_WRITEDATA, &call);
    if (req->password != NULL) {
        /* RFC 7617; the user name is ignored by the service (docs/est.md). */
        SET(CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        SET(CURLOPT_USERNAME, "device");
        SET(CURLOPT_PASSWORD, req->password);
    }
#undef SET
    if (code != CURLE_OK) {
        rv = ts_error_set(TS_ERR_INVALID, "cannot set up the HTTP client: %s",
                          curl_easy_strerror(code));
        goto done;
    }
    code = curl_easy_perform(curl);
    if (code != CURLE_OK) {
        rv = curl_failed(code, req->url, &call, errbuf);
        goto done;
    }
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &resp->status);
done:
    if (curl != NULL && req->password != NULL) {
        /* Drop curl's copy of the claim code now rather than at cleanup. */
        (void)curl_easy_setopt(curl, CURLOPT_PASSWORD, "");
    }
    curl_easy_cleanup(curl);
    curl_slist_free_all(hdrs);
    if (rv != TS_OK) {
        agent_http_resp_clear(resp);
    }
    return rv;
}
