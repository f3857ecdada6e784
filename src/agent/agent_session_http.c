/*
 * The session's HTTPS exchanges: libcurl with OpenSSL, one handle for the whole session so the
 * connection (and its TLS handshake) is reused. As in agent_http.c, the TLS context is finished
 * in CURLOPT_SSL_CTX_FUNCTION: only the agent's roots are trusted, and the client certificate's
 * key is the identity key in the key store through the Tessera provider. The service's
 * certificate is kept (CURLOPT_CERTINFO) so that it can be checked against the session's CRL.
 */
#include <stdio.h>
#include <string.h>

#include <curl/curl.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>

#include "agent/agent_session_http.h"
#include "common/error_internal.h"

struct sess_http {
    CURL *curl;
    struct curl_slist *hdrs;
    const sess_http_cfg *cfg;
    char url[2048];
    char errbuf[CURL_ERROR_SIZE];
    char tls_error[256];
    /* the reply being read */
    uint8_t *body;
    size_t len, cap;
    int overflow;
    X509 *peer;
    STACK_OF(X509) * peer_chain; /* the certificates the service sent after its own */
};

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg)
{
    sess_http *h = arg;
    size_t n = size * nmemb;

    if (n > TS_AGENT_SYNC_BODY_MAX - h->len) {
        h->overflow = 1;
        return 0; /* curl stops with CURLE_WRITE_ERROR */
    }
    if (h->len + n + 1 > h->cap) {
        size_t cap = (h->len + n + 1) * 2;
        uint8_t *grown = OPENSSL_realloc(h->body, cap);
        if (grown == NULL) {
            return 0;
        }
        h->body = grown;
        h->cap = cap;
    }
    memcpy(h->body + h->len, data, n);
    h->len += n;
    return n;
}

static void tls_fail(sess_http *h, const char *what)
{
    unsigned long e = ERR_get_error();
    char reason[160] = "";

    if (e != 0) {
        ERR_error_string_n(e, reason, sizeof reason);
    }
    ERR_clear_error();
    snprintf(h->tls_error, sizeof h->tls_error, "%s%s%s", what, e != 0 ? ": " : "", reason);
}

static CURLcode on_ssl_ctx(CURL *curl, void *ssl_ctx, void *arg)
{
    sess_http *h = arg;
    const sess_http_cfg *cfg = h->cfg;
    SSL_CTX *ctx = ssl_ctx;

    (void)curl;
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1) {
        tls_fail(h, "cannot require TLS 1.2");
        return CURLE_SSL_CIPHER;
    }
    SSL_CTX_set1_cert_store(ctx, cfg->roots);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    if (SSL_CTX_use_certificate(ctx, cfg->client_cert) != 1) {
        tls_fail(h, "cannot use the identity certificate");
        return CURLE_SSL_CERTPROBLEM;
    }
    for (int i = 0; i < sk_X509_num(cfg->client_chain); i++) {
        if (SSL_CTX_add1_chain_cert(ctx, sk_X509_value(cfg->client_chain, i)) != 1) {
            tls_fail(h, "cannot add the identity certificate's chain");
            return CURLE_SSL_CERTPROBLEM;
        }
    }
    if (SSL_CTX_use_PrivateKey(ctx, cfg->client_key) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
        tls_fail(h, "the identity certificate does not match its key-store key");
        return CURLE_SSL_CERTPROBLEM;
    }
    return CURLE_OK;
}

ts_err sess_http_new(const sess_http_cfg *cfg, sess_http **out)
{
    sess_http *h = OPENSSL_zalloc(sizeof *h);
    size_t n;
    CURLcode code = CURLE_OK;

    *out = NULL;
    if (h == NULL) {
        return ts_error_set(TS_ERR_NOMEM, "out of memory");
    }
    h->cfg = cfg;
    n = strlen(cfg->server);
    while (n > 0 && cfg->server[n - 1] == '/') {
        n--;
    }
    if (strncmp(cfg->server, "https://", 8) != 0) {
        OPENSSL_free(h);
        return ts_error_set(TS_ERR_INVALID, "the service URL %.200s is not https://", cfg->server);
    }
    if ((size_t)snprintf(h->url, sizeof h->url, "%.*s/agent/v1/session", (int)n, cfg->server) >=
        sizeof h->url) {
        OPENSSL_free(h);
        return ts_error_set(TS_ERR_INVALID, "the service URL is too long");
    }
    h->curl = curl_easy_init();
    h->hdrs = curl_slist_append(NULL, "Content-Type: application/x-protobuf");
    if (h->curl == NULL || h->hdrs == NULL) {
        sess_http_free(h);
        return ts_error_set(TS_ERR_NOMEM, "cannot set up the HTTP client");
    }
#define SET(opt, val)                                                                              \
    do {                                                                                           \
        if (code == CURLE_OK) {                                                                    \
            code = curl_easy_setopt(h->curl, opt, val);                                            \
        }                                                                                          \
    } while (0)
    SET(CURLOPT_URL, h->url);
    SET(CURLOPT_PROTOCOLS_STR, "https");
    SET(CURLOPT_FOLLOWLOCATION, 0L);
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_TCP_NODELAY, 1L);
    SET(CURLOPT_TIMEOUT, cfg->timeout > 0 ? cfg->timeout : (long)TS_AGENT_TIMEOUT_DEFAULT);
    SET(CURLOPT_ERRORBUFFER, h->errbuf);
    SET(CURLOPT_SSL_VERIFYPEER, 1L);
    SET(CURLOPT_SSL_VERIFYHOST, 2L);
    SET(CURLOPT_CAINFO, NULL);
    SET(CURLOPT_CAPATH, NULL);
    SET(CURLOPT_SSL_CTX_FUNCTION, on_ssl_ctx);
    SET(CURLOPT_SSL_CTX_DATA, h);
    SET(CURLOPT_CERTINFO, 1L);
    SET(CURLOPT_HTTPHEADER, h->hdrs);
    SET(CURLOPT_POST, 1L);
    SET(CURLOPT_WRITEFUNCTION, on_body);
    SET(CURLOPT_WRITEDATA, h);
#undef SET
    if (code != CURLE_OK) {
        sess_http_free(h);
        return ts_error_set(TS_ERR_INVALID, "cannot set up the HTTP client: %s",
                            curl_easy_strerror(code));
    }
    *out = h;
    return TS_OK;
}

void sess_http_free(sess_http *h)
{
    if (h == NULL) {
        return;
    }
    curl_easy_cleanup(h->curl);
    curl_slist_free_all(h->hdrs);
    OPENSSL_free(h->body);
    X509_free(h->peer);
    sk_X509_pop_free(h->peer_chain, X509_free);
    OPENSSL_free(h);
}

static X509 *certinfo_cert(struct curl_slist *s)
{
    for (; s != NULL; s = s->next) {
        if (strncmp(s->data, "Cert:", 5) == 0) {
            BIO *bio = BIO_new_mem_buf(s->data + 5, -1);
            X509 *x = bio != NULL ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
            BIO_free(bio);
            return x;
        }
    }
    return NULL;
}

/* The service's certificates from the handshake (CURLINFO_CERTINFO); a reused connection reports
 * none, and those of its handshake stay. */
static ts_err keep_peer(sess_http *h)
{
    struct curl_certinfo *ci = NULL;
    STACK_OF(X509) *chain = NULL;
    X509 *leaf = NULL;

    if (curl_easy_getinfo(h->curl, CURLINFO_CERTINFO, &ci) != CURLE_OK || ci == NULL ||
        ci->num_of_certs < 1) {
        return h->peer != NULL
                   ? TS_OK
                   : ts_error_set(TS_ERR_STATE, "libcurl gave no certificate for the service");
    }
    leaf = certinfo_cert(ci->certinfo[0]);
    chain = sk_X509_new_null();
    if (leaf == NULL || chain == NULL) {
        X509_free(leaf);
        sk_X509_free(chain);
        return ts_error_set_openssl(TS_ERR_CRYPTO, "cannot read the service's certificate");
    }
    for (int i = 1; i < ci->num_of_certs; i++) {
        X509 *x = certinfo_cert(ci->certinfo[i]);
        if (x != NULL && sk_X509_push(chain, x) <= 0) {
            X509_free(x);
        }
    }
    ERR_clear_error();
    X509_free(h->peer);
    sk_X509_pop_free(h->peer_chain, X509_free);
    h->peer = leaf;
    h->peer_chain = chain;
    return TS_OK;
}

static ts_err failed(sess_http *h, CURLcode code)
{
    const char *detail = h->errbuf[0] != '\0' ? h->errbuf : curl_easy_strerror(code);

    if (h->tls_error[0] != '\0') {
        return ts_error_set(TS_ERR_CRYPTO, "TLS set-up for %s failed: %s", h->url, h->tls_error);
    }
    if (h->overflow) {
        return ts_error_set(TS_ERR_LIMIT, "the reply from %s is over %d bytes", h->url,
                            TS_AGENT_SYNC_BODY_MAX);
    }
    if (code == CURLE_PEER_FAILED_VERIFICATION) {
        return ts_error_set(TS_ERR_AUTH,
                            "the service at %s is not trusted: its certificate does not chain to "
                            "a trusted root, or does not name the host (%s)",
                            h->url, detail);
    }
    return ts_error_set(TS_ERR_IO, "cannot reach %s: %s", h->url, detail);
}

ts_err sess_http_post(sess_http *h, const uint8_t *body, size_t len, uint8_t **reply,
                      size_t *reply_len)
{
    CURLcode code;
    long status = 0;

    *reply = NULL;
    *reply_len = 0;
    h->len = 0;
    h->overflow = 0;
    h->errbuf[0] = '\0';
    h->tls_error[0] = '\0';
    code = curl_easy_setopt(h->curl, CURLOPT_POSTFIELDS, (const char *)body);
    if (code == CURLE_OK) {
        code = curl_easy_setopt(h->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    }
    if (code == CURLE_OK) {
        code = curl_easy_perform(h->curl);
    }
    if (code != CURLE_OK) {
        return failed(h, code);
    }
    curl_easy_getinfo(h->curl, CURLINFO_RESPONSE_CODE, &status);
    if (status != 200) {
        char msg[200];
        size_t j = 0;
        for (size_t i = 0; i < h->len && j + 1 < sizeof msg; i++) {
            unsigned char c = h->body[i];
            msg[j++] = c >= 0x20 && c < 0x7f ? (char)c : ' ';
        }
        msg[j] = '\0';
        return ts_error_set(status == 401 ? TS_ERR_AUTH : TS_ERR_BACKEND,
                            "the service refused the session (HTTP %ld)%s%s", status,
                            j > 0 ? ": " : "", msg);
    }
    ts_err rv = keep_peer(h);
    if (rv != TS_OK) {
        return rv;
    }
    *reply = h->body;
    *reply_len = h->len;
    h->body = NULL;
    h->len = h->cap = 0;
    return TS_OK;
}

X509 *sess_http_peer(const sess_http *h)
{
    return h->peer;
}

STACK_OF(X509) * sess_http_peer_chain(const sess_http *h)
{
    return h->peer_chain;
}
