/*
 * Mutual TLS 1.3 over loopback: contexts, a one-connection server thread, a client, and one line
 * exchanged each way. Used by the demo; every socket is bounded by timeouts so nothing hangs.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "cli/cli_internal.h"
#include "common/error_internal.h"

enum {
    IO_TIMEOUT_MS = 15000, /* any one accept, read or write */
};

struct cli_tls_server {
    pthread_t thread;
    int listen_fd;
    SSL_CTX *ctx;
    const char *reply;
    cli_tls_result result;
};

ts_err cli_tls_ctx_new(OSSL_LIB_CTX *libctx, int server, X509 *cert, EVP_PKEY *key, X509 *ca,
                       SSL_CTX **out)
{
    SSL_CTX *ctx = NULL;
    ts_err rv = TS_OK;

    *out = NULL;
    ctx = SSL_CTX_new_ex(libctx, NULL, server ? TLS_server_method() : TLS_client_method());
    if (ctx == NULL) {
        return ts_error_set_openssl(TS_ERR_CRYPTO, "cannot make a TLS context");
    }
    /* RFC 8446 only: the demo shows TLS 1.3, where the client signs CertificateVerify. */
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) != 1 ||
        SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) != 1) {
        rv = ts_error_set_openssl(TS_ERR_CRYPTO, "cannot restrict TLS to version 1.3");
        goto done;
    }
    /* The certificate first, so that setting the key checks the two belong together. */
    if (SSL_CTX_use_certificate(ctx, cert) != 1 || SSL_CTX_use_PrivateKey(ctx, key) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
        rv = ts_error_set_openssl(TS_ERR_CRYPTO, "the %s certificate and key do not fit together",
                                  server ? "server" : "client");
        goto done;
    }
    if (X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx), ca) != 1) {
        rv = ts_error_set_openssl(TS_ERR_CRYPTO, "cannot trust the CA certificate");
        goto done;
    }
    if (server) {
        /* Mutual TLS: a client without a certificate from the CA is refused. */
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
        if (SSL_CTX_add_client_CA(ctx, ca) != 1) {
            rv = ts_error_set_openssl(TS_ERR_CRYPTO, "cannot name the CA to clients");
            goto done;
        }
    } else {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    }
    *out = ctx;
    ctx = NULL;
done:
    SSL_CTX_free(ctx);
    return rv;
}

static ts_err socket_tune(int fd)
{
    int one = 1;
    struct timeval tv = {.tv_sec = IO_TIMEOUT_MS / 1000};
    /* The demo exchanges short lines: send each at once rather than waiting for Nagle. */
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) != 0) {
        return ts_error_set(TS_ERR_IO, "cannot set socket options: %s", strerror(errno));
    }
    return TS_OK;
}

static void describe_peer(SSL *ssl, cli_tls_result *res)
{
    X509 *peer = SSL_get0_peer_certificate(ssl);
    snprintf(res->protocol, sizeof res->protocol, "%s", SSL_get_version(ssl));
    snprintf(res->cipher, sizeof res->cipher, "%s", SSL_get_cipher_name(ssl));
    res->peer_subject[0] = '\0';
    if (peer != NULL) {
        X509_NAME_oneline(X509_get_subject_name(peer), res->peer_subject,
                          (int)sizeof res->peer_subject);
    }
}

static ts_err read_line(SSL *ssl, char *buf, size_t size)
{
    size_t used = 0;
    while (used + 1 < size) {
        size_t n = 0;
        if (SSL_read_ex(ssl, buf + used, 1, &n) != 1) {
            return ts_error_set_openssl(TS_ERR_IO, "the connection ended before a full line");
        }
        if (buf[used] == '\n') {
            buf[used] = '\0';
            return TS_OK;
        }
        used += n;
    }
    return ts_error_set(TS_ERR_INVALID, "a line longer than %zu bytes", size - 1);
}

static ts_err write_line(SSL *ssl, const char *line)
{
    size_t n = 0;
    char buf[CLI_TLS_LINE_MAX + 1];
    int len = snprintf(buf, sizeof buf, "%s\n", line);
    if (len < 0 || (size_t)len >= sizeof buf || SSL_write_ex(ssl, buf, (size_t)len, &n) != 1) {
        return ts_error_set_openssl(TS_ERR_IO, "cannot send a line");
    }
    return TS_OK;
}

/* One side of a connection once the socket is up: handshake, then send and receive a line. */
static ts_err run_side(SSL_CTX *ctx, int fd, int server, const char *host, const char *line,
                       cli_tls_result *res)
{
    SSL *ssl = SSL_new(ctx);
    ts_err rv = TS_OK;

    if (ssl == NULL || SSL_set_fd(ssl, fd) != 1) {
        rv = ts_error_set_openssl(TS_ERR_NOMEM, "cannot make a TLS connection");
        goto done;
    }
    /* RFC 6125: the client checks the server's name against the certificate. */
    if (!server && (SSL_set_tlsext_host_name(ssl, host) != 1 || SSL_set1_host(ssl, host) != 1)) {
        rv = ts_error_set_openssl(TS_ERR_CRYPTO, "cannot set the expected server name");
        goto done;
    }
    if ((server ? SSL_accept(ssl) : SSL_connect(ssl)) != 1) {
        long verify = SSL_get_verify_result(ssl);
        rv = ts_error_set_openssl(TS_ERR_AUTH, "the %s handshake failed (verification: %s)",
                                  server ? "server" : "client",
                                  X509_verify_cert_error_string(verify));
        goto done;
    }
    describe_peer(ssl, res);
    if (server) {
        rv = read_line(ssl, res->received, sizeof res->received);
        if (rv == TS_OK) {
            rv = write_line(ssl, line);
        }
    } else {
        rv = write_line(ssl, line);
        if (rv == TS_OK) {
            rv = read_line(ssl, res->received, sizeof res->received);
        }
    }
    if (rv == TS_OK) {
        SSL_shutdown(ssl);
    }
done:
    SSL_free(ssl);
    return rv;
}

static void *server_main(void *arg)
{
    cli_tls_server *s = arg;
    struct pollfd pfd = {.fd = s->listen_fd, .events = POLLIN};
    int fd = -1;
    ts_err rv;

    if (poll(&pfd, 1, IO_TIMEOUT_MS) != 1) {
        rv = ts_error_set(TS_ERR_IO, "no client connected within %d s", IO_TIMEOUT_MS / 1000);
        goto done;
    }
    fd = accept(s->listen_fd, NULL, NULL);
    if (fd < 0) {
        rv = ts_error_set(TS_ERR_IO, "accept failed: %s", strerror(errno));
        goto done;
    }
    rv = socket_tune(fd);
    if (rv == TS_OK) {
        rv = run_side(s->ctx, fd, 1, NULL, s->reply, &s->result);
    }
done:
    if (fd >= 0) {
        close(fd);
    }
    s->result.rv = rv;
    if (rv != TS_OK) {
        /* The message is thread-local: hand it over with the result. */
        snprintf(s->result.error, sizeof s->result.error, "%s", ts_error_message());
    }
    return NULL;
}

ts_err cli_tls_server_start(SSL_CTX *ctx, const char *reply, cli_tls_server **out,
                            unsigned short *port)
{
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = 0};
    socklen_t alen = sizeof addr;
    cli_tls_server *s = NULL;
    ts_err rv = TS_OK;

    *out = NULL;
    s = calloc(1, sizeof *s);
    if (s == NULL) {
        return ts_error_set(TS_ERR_NOMEM, "out of memory starting the server");
    }
    s->ctx = ctx;
    s->reply = reply;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    /* Loopback only, on a port the kernel picks, so nothing outside this machine can connect. */
    s->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s->listen_fd < 0 || bind(s->listen_fd, (struct sockaddr *)&addr, sizeof addr) != 0 ||
        listen(s->listen_fd, 1) != 0 ||
        getsockname(s->listen_fd, (struct sockaddr *)&addr, &alen) != 0) {
        rv = ts_error_set(TS_ERR_IO, "cannot listen on 127.0.0.1: %s", strerror(errno));
        goto fail;
    }
    if (pthread_create(&s->thread, NULL, server_main, s) != 0) {
        rv = ts_error_set(TS_ERR_IO, "cannot start the server thread");
        goto fail;
    }
    *port = ntohs(addr.sin_port);
    *out = s;
    return TS_OK;
fail:
    if (s->listen_fd >= 0) {
        close(s->listen_fd);
    }
    free(s);
    return rv;
}

void cli_tls_server_finish(cli_tls_server *s, cli_tls_result *result)
{
    pthread_join(s->thread, NULL);
    close(s->listen_fd);
    *result = s->result;
    free(s);
}

ts_err cli_tls_client_run(SSL_CTX *ctx, unsigned short port, const char *host, const char *line,
                          cli_tls_result *result)
{
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(port)};
    int fd;
    ts_err rv;

    memset(result, 0, sizeof *result);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return ts_error_set(TS_ERR_IO, "cannot make a socket: %s", strerror(errno));
    }
    rv = socket_tune(fd);
    if (rv == TS_OK && connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        rv = ts_error_set(TS_ERR_IO, "cannot connect to 127.0.0.1:%u: %s", port, strerror(errno));
    }
    if (rv == TS_OK) {
        rv = run_side(ctx, fd, 0, host, line, result);
    }
    /* Closing also ends the server's wait if the client gave up early. */
    close(fd);
    result->rv = rv;
    if (rv != TS_OK) {
        snprintf(result->error, sizeof result->error, "%s", ts_error_message());
    }
    return rv;
}
