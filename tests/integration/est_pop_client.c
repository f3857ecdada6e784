/*
 * est_pop_client: an EST client that proves possession (RFC 7030 section 3.5) with OpenSSL only.
 *
 *   est_pop_client --url https://HOST:PORT/.well-known/est[/TENANT]/simpleenroll
 *                  --cacert ROOT.pem --user USER:CLAIMCODE --cn DEVICE-UID
 *                  [--tls1.2] [--binding right|none|wrong] [--expect-status N]
 *                  [--key-out KEY.pem] [--out REPLY.b64]
 *
 * It opens the TLS connection first (TLS 1.3, or 1.2 with --tls1.2), reads the connection's
 * channel binding from its own SSL (tls-exporter of RFC 9266 on TLS 1.3: the exporter with label
 * "EXPORTER-Channel-Binding", no context, 32 bytes; tls-unique of RFC 5929 on TLS 1.2: the first
 * Finished message of the handshake, the client's own in a full handshake), makes a P-256 key and
 * a CSR whose challengePassword is the base64 of that binding, and POSTs the CSR (base64, with
 * line breaks) on that same connection with OpenSSL's HTTP client. It prints "binding NAME LEN"
 * on stdout. With --expect-status 200 (the default) the reply body goes to --out; with another
 * status the request must fail with exactly that status.
 */
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/conf.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/http.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

enum {
    BINDING_MAX = 64,
    TIMEOUT_S = 30,
    REPLY_MAX = 256 * 1024,
};

typedef struct client {
    SSL_CTX *ctx;
    const char *host;
    SSL *ssl; /* the connection's, once the handshake is done */
} client;

static void die(const char *what)
{
    fprintf(stderr, "est_pop_client: %s\n", what);
    ERR_print_errors_fp(stderr);
    exit(1);
}

/* OSSL_HTTP_open calls this once connected: TLS on top of the TCP BIO, handshake done here so
 * that the binding exists before the request is made. */
static BIO *tls_over(BIO *bio, void *arg, int connect, int detail)
{
    client *c = arg;
    BIO *sbio;
    int fd = -1, one = 1;

    if (!connect || !detail) {
        return bio;
    }
    if (BIO_get_fd(bio, &fd) < 0 || setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one)) {
        return NULL;
    }
    sbio = BIO_new_ssl(c->ctx, 1);
    if (sbio == NULL || BIO_get_ssl(sbio, &c->ssl) <= 0 || SSL_set1_host(c->ssl, c->host) != 1) {
        BIO_free(sbio);
        return NULL;
    }
    bio = BIO_push(sbio, bio);
    /* OpenSSL's HTTP client runs its socket non-blocking: wait while the handshake wants to. */
    while (BIO_do_handshake(bio) <= 0) {
        if (!BIO_should_retry(bio) || BIO_wait(bio, time(NULL) + TIMEOUT_S, 100) <= 0) {
            BIO_pop(bio);
            BIO_free(sbio);
            return NULL;
        }
    }
    return bio;
}

static size_t channel_binding(SSL *ssl, unsigned char out[BINDING_MAX], const char **name)
{
    static const char label[] = "EXPORTER-Channel-Binding";

    if (SSL_version(ssl) == TLS1_3_VERSION) {
        *name = "tls-exporter";
        if (SSL_export_keying_material(ssl, out, 32, label, sizeof label - 1, NULL, 0, 0) != 1) {
            die("cannot read tls-exporter");
        }
        return 32;
    }
    /* RFC 5929 section 3.1: the first Finished message; in a resumed handshake the server's. */
    *name = "tls-unique";
    return SSL_session_reused(ssl) ? SSL_get_peer_finished(ssl, out, BINDING_MAX)
                                   : SSL_get_finished(ssl, out, BINDING_MAX);
}

static X509_REQ *make_csr(EVP_PKEY *key, const char *cn, const char *password)
{
    X509_REQ *req = X509_REQ_new();
    X509_NAME *name = X509_NAME_new();

    if (req == NULL || name == NULL ||
        !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1,
                                    0) ||
        !X509_REQ_set_subject_name(req, name) || !X509_REQ_set_pubkey(req, key)) {
        die("cannot make the CSR");
    }
    if (password != NULL &&
        !X509_REQ_add1_attr_by_NID(req, NID_pkcs9_challengePassword, MBSTRING_ASC,
                                   (const unsigned char *)password, -1)) {
        die("cannot add challengePassword");
    }
    if (X509_REQ_sign(req, key, EVP_sha256()) <= 0) {
        die("cannot sign the CSR");
    }
    X509_NAME_free(name);
    return req;
}

/* The CSR as base64 with line breaks, the way RFC 8951 says senders may write it. */
static BIO *csr_body(X509_REQ *req)
{
    BIO *mem = BIO_new(BIO_s_mem());
    BIO *b64 = BIO_new(BIO_f_base64());

    if (mem == NULL || b64 == NULL) {
        die("out of memory");
    }
    BIO_push(b64, mem);
    if (i2d_X509_REQ_bio(b64, req) != 1 || BIO_flush(b64) != 1) {
        die("cannot encode the CSR");
    }
    BIO_pop(b64);
    BIO_free(b64);
    return mem;
}

static char *basic_auth(const char *user)
{
    size_t n = strlen(user);
    char *out = malloc(6 + (n + 2) / 3 * 4 + 1);

    if (out == NULL) {
        die("out of memory");
    }
    memcpy(out, "Basic ", 6);
    EVP_EncodeBlock((unsigned char *)out + 6, (const unsigned char *)user, (int)n);
    return out;
}

static const char *arg_value(int argc, char **argv, const char *name, const char *dflt)
{
    for (int i = 1; i + 1 < argc; i++) {
        if (strcmp(argv[i], name) == 0) {
            return argv[i + 1];
        }
    }
    return dflt;
}

static int arg_flag(int argc, char **argv, const char *name)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], name) == 0) {
            return 1;
        }
    }
    return 0;
}

/* The request failed: it must have failed with status want, which OpenSSL's HTTP client reports
 * as "code=N" in its error queue. */
static int check_refusal(int want)
{
    char buf[4096] = "", needle[32];
    BIO *mem = BIO_new(BIO_s_mem());
    int n;

    ERR_print_errors(mem);
    n = BIO_read(mem, buf, sizeof buf - 1);
    buf[n > 0 ? n : 0] = '\0';
    BIO_free(mem);
    snprintf(needle, sizeof needle, "code=%d", want);
    if (strstr(buf, needle) == NULL) {
        fprintf(stderr, "est_pop_client: expected status %d, got:\n%s", want, buf);
        return 1;
    }
    printf("status %d\n", want);
    return 0;
}

/* The reply body to out_file (when given) and the key to key_file (when given). */
static int save(BIO *reply, const char *out_file, const char *key_file, EVP_PKEY *key)
{
    if (out_file != NULL) {
        FILE *f = fopen(out_file, "wb");
        char buf[4096];
        int n;
        if (f == NULL) {
            die("cannot write --out");
        }
        /* Not ASN.1, so the reply is the connection itself, non-blocking: read to its end. */
        for (;;) {
            n = BIO_read(reply, buf, sizeof buf);
            if (n > 0) {
                fwrite(buf, 1, (size_t)n, f);
                continue;
            }
            if (!BIO_should_retry(reply) || BIO_wait(reply, time(NULL) + TIMEOUT_S, 100) <= 0) {
                break;
            }
        }
        fclose(f);
    }
    if (key_file != NULL) {
        FILE *f = fopen(key_file, "wb");
        if (f == NULL || !PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL)) {
            die("cannot write --key-out");
        }
        fclose(f);
    }
    printf("status 200\n");
    return 0;
}

int main(int argc, char **argv)
{
    const char *url = arg_value(argc, argv, "--url", NULL);
    const char *cacert = arg_value(argc, argv, "--cacert", NULL);
    const char *user = arg_value(argc, argv, "--user", NULL);
    const char *cn = arg_value(argc, argv, "--cn", "pop-device");
    const char *mode = arg_value(argc, argv, "--binding", "right");
    const char *out_file = arg_value(argc, argv, "--out", NULL);
    const char *key_file = arg_value(argc, argv, "--key-out", NULL);
    int want = atoi(arg_value(argc, argv, "--expect-status", "200"));
    char *host = NULL, *port = NULL, *path = NULL, *auth;
    int use_ssl = 0;
    client c = {0};
    unsigned char binding[BINDING_MAX], password[BINDING_MAX * 2];
    const char *binding_name = NULL;
    size_t binding_len;
    STACK_OF(CONF_VALUE) *headers = NULL;
    OSSL_HTTP_REQ_CTX *rctx;
    EVP_PKEY *key;
    X509_REQ *req;
    BIO *body, *reply;
    int rc;

    if (url == NULL || cacert == NULL || user == NULL) {
        fprintf(stderr, "usage: est_pop_client --url URL --cacert PEM --user USER:CODE [--cn UID] "
                        "[--tls1.2] [--binding right|none|wrong] [--expect-status N] "
                        "[--key-out PEM] [--out FILE]\n");
        return 2;
    }
    if (!OSSL_HTTP_parse_url(url, &use_ssl, NULL, &host, &port, NULL, &path, NULL, NULL) ||
        !use_ssl) {
        die("the URL must be https://HOST:PORT/PATH");
    }
    c.host = host;
    c.ctx = SSL_CTX_new(TLS_client_method());
    if (c.ctx == NULL || SSL_CTX_load_verify_file(c.ctx, cacert) != 1) {
        die("cannot load the CA certificate");
    }
    SSL_CTX_set_verify(c.ctx, SSL_VERIFY_PEER, NULL);
    SSL_CTX_set_min_proto_version(c.ctx, TLS1_2_VERSION);
    if (arg_flag(argc, argv, "--tls1.2")) {
        SSL_CTX_set_max_proto_version(c.ctx, TLS1_2_VERSION);
    }

    /* proxy "": never a proxy from the environment. */
    rctx = OSSL_HTTP_open(host, port, "", NULL, 1, NULL, NULL, tls_over, &c, 0, TIMEOUT_S);
    if (rctx == NULL || c.ssl == NULL) {
        die("cannot connect");
    }
    binding_len = channel_binding(c.ssl, binding, &binding_name);
    if (binding_len == 0 || binding_len > BINDING_MAX) {
        die("no channel binding");
    }
    printf("binding %s %zu\n", binding_name, binding_len);
    if (strcmp(mode, "wrong") == 0) {
        binding[0] ^= 0x01;
    }
    EVP_EncodeBlock(password, binding, (int)binding_len);

    key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    if (key == NULL) {
        die("cannot make a key");
    }
    req = make_csr(key, cn, strcmp(mode, "none") == 0 ? NULL : (const char *)password);
    body = csr_body(req);
    auth = basic_auth(user);
    if (!X509V3_add_value("Authorization", auth, &headers) ||
        !OSSL_HTTP_set1_request(rctx, path, headers, "application/pkcs10", body, NULL, 0, REPLY_MAX,
                                TIMEOUT_S, 0)) {
        die("cannot make the request");
    }
    reply = OSSL_HTTP_exchange(rctx, NULL);
    if (reply == NULL) {
        if (want == 200) {
            die("the request failed");
        }
        rc = check_refusal(want);
    } else if (want != 200) {
        fprintf(stderr, "est_pop_client: expected status %d, the request succeeded\n", want);
        rc = 1;
    } else {
        rc = save(reply, out_file, key_file, key);
    }
    BIO_free(reply);
    OSSL_HTTP_close(rctx, reply != NULL);
    sk_CONF_VALUE_pop_free(headers, X509V3_conf_free);
    free(auth);
    BIO_free(body);
    X509_REQ_free(req);
    EVP_PKEY_free(key);
    SSL_CTX_free(c.ctx);
    OPENSSL_free(host);
    OPENSSL_free(port);
    OPENSSL_free(path);
    return rc;
}
