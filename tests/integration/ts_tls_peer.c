/*
 * ts_tls_peer: one end of a mutual-TLS connection whose private key lives in a key store.
 *
 *   ts_tls_peer client|server --keystore URI --label L --cert CERT.pem --ca CA.pem
 *               [--tls1.2|--tls1.3] [--cipher NAME] [--line TEXT]
 *               (--connect HOST:PORT | --listen HOST:PORT [--port-file F])
 *
 * The key is the key-store key through the Tessera provider (ts_keystore_evp_pkey() on an SSL_CTX
 * made in ts_provider_libctx()), so the handshake's CertificateVerify or ServerKeyExchange
 * signature is made inside the store. The peer must present a certificate that verifies against
 * CA. After the handshake the client sends one line and reads one; the server reads one and
 * answers with one. The negotiated protocol, cipher and peer subject are printed.
 *
 * --cipher takes a TLS 1.2 cipher list entry (ECDHE-ECDSA-AES128-GCM-SHA256) or a TLS 1.3
 * ciphersuite (TLS_AES_128_GCM_SHA256). A server listening on port 0 writes the port it got to
 * --port-file, so scripts never pick fixed ports. Exit status 0 only for a verified mutual
 * handshake with the lines exchanged; 1 for a failed connection; 2 for bad usage.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "tessera/keystore.h"
#include "tessera/provider.h"

enum {
    PEER_LINE_MAX = 1024,
    PEER_IO_TIMEOUT_S = 30, /* a silent peer must not hang a test run */
};

typedef struct peer_opts {
    int server;
    const char *keystore;
    const char *label;
    const char *cert;
    const char *ca;
    int version; /* 0 (any of 1.2 and 1.3), TLS1_2_VERSION or TLS1_3_VERSION */
    const char *cipher;
    const char *line;
    const char *connect;
    const char *listen;
    const char *port_file;
} peer_opts;

static void usage(void)
{
    fprintf(stderr, "usage: ts_tls_peer client|server --keystore URI --label L --cert CERT.pem "
                    "--ca CA.pem\n"
                    "         [--tls1.2|--tls1.3] [--cipher NAME] [--line TEXT]\n"
                    "         (--connect HOST:PORT | --listen HOST:PORT [--port-file F])\n");
}

/* Prints what failed, then drains the OpenSSL error queue so the reason is not lost. */
static void fail_openssl(const char *what)
{
    unsigned long e;
    char buf[256];

    fprintf(stderr, "ts_tls_peer: %s\n", what);
    for (e = ERR_get_error(); e != 0; e = ERR_get_error()) {
        ERR_error_string_n(e, buf, sizeof buf);
        fprintf(stderr, "ts_tls_peer:   %s\n", buf);
    }
}

static int parse_args(int argc, char **argv, peer_opts *o)
{
    memset(o, 0, sizeof *o);
    if (argc < 2) {
        return -1;
    }
    if (strcmp(argv[1], "server") == 0) {
        o->server = 1;
    } else if (strcmp(argv[1], "client") != 0) {
        return -1;
    }
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        const char **slot = NULL;

        if (strcmp(a, "--tls1.2") == 0) {
            o->version = TLS1_2_VERSION;
            continue;
        }
        if (strcmp(a, "--tls1.3") == 0) {
            o->version = TLS1_3_VERSION;
            continue;
        }
        if (strcmp(a, "--keystore") == 0) {
            slot = &o->keystore;
        } else if (strcmp(a, "--label") == 0) {
            slot = &o->label;
        } else if (strcmp(a, "--cert") == 0) {
            slot = &o->cert;
        } else if (strcmp(a, "--ca") == 0) {
            slot = &o->ca;
        } else if (strcmp(a, "--cipher") == 0) {
            slot = &o->cipher;
        } else if (strcmp(a, "--line") == 0) {
            slot = &o->line;
        } else if (strcmp(a, "--connect") == 0) {
            slot = &o->connect;
        } else if (strcmp(a, "--listen") == 0) {
            slot = &o->listen;
        } else if (strcmp(a, "--port-file") == 0) {
            slot = &o->port_file;
        } else {
            fprintf(stderr, "ts_tls_peer: unknown option %s\n", a);
            return -1;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "ts_tls_peer: %s needs a value\n", a);
            return -1;
        }
        *slot = argv[++i];
    }
    if (o->keystore == NULL || o->label == NULL || o->cert == NULL || o->ca == NULL) {
        fprintf(stderr, "ts_tls_peer: --keystore, --label, --cert and --ca are required\n");
        return -1;
    }
    if (o->server ? o->listen == NULL || o->connect != NULL
                  : o->connect == NULL || o->listen != NULL || o->port_file != NULL) {
        fprintf(stderr, "ts_tls_peer: a client needs --connect, a server --listen\n");
        return -1;
    }
    if (o->line == NULL) {
        o->line = o->server ? "hello from the tessera server" : "hello from the tessera client";
    }
    if (strchr(o->line, '\n') != NULL || strlen(o->line) >= PEER_LINE_MAX) {
        fprintf(stderr, "ts_tls_peer: --line must be one short line\n");
        return -1;
    }
    return 0;
}

/* Splits "HOST:PORT" (the last colon separates, so "[::1]:443" style is not needed here). */
static int split_hostport(const char *hp, char *host, size_t host_size, const char **port)
{
    const char *colon = strrchr(hp, ':');
    size_t n;

    if (colon == NULL || colon == hp || colon[1] == '\0') {
        fprintf(stderr, "ts_tls_peer: %s is not HOST:PORT\n", hp);
        return -1;
    }
    n = (size_t)(colon - hp);
    if (n >= host_size) {
        fprintf(stderr, "ts_tls_peer: host name too long in %s\n", hp);
        return -1;
    }
    memcpy(host, hp, n);
    host[n] = '\0';
    *port = colon + 1;
    return 0;
}

/* Small writes (one line) must leave at once, and no read or write may block forever. */
static int tune_socket(int fd)
{
    int one = 1;
    struct timeval tv = {.tv_sec = PEER_IO_TIMEOUT_S, .tv_usec = 0};

    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) != 0) {
        fprintf(stderr, "ts_tls_peer: setsockopt: %s\n", strerror(errno));
        return -1;
    }
    return 0;
}

static int connect_to(const char *hp)
{
    char host[256];
    const char *port;
    struct addrinfo hints, *res = NULL;
    int fd = -1;
    int rc;

    if (split_hostport(hp, host, sizeof host, &port) != 0) {
        return -1;
    }
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0) {
        fprintf(stderr, "ts_tls_peer: cannot resolve %s: %s\n", hp, gai_strerror(rc));
        return -1;
    }
    for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
        if (fd < 0) {
            continue;
        }
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
            break;
        }
        close(fd);
        fd = -1;
    }
    if (fd < 0) {
        fprintf(stderr, "ts_tls_peer: cannot connect to %s: %s\n", hp, strerror(errno));
    }
    freeaddrinfo(res);
    if (fd >= 0 && tune_socket(fd) != 0) {
        close(fd);
        fd = -1;
    }
    return fd;
}

/* Writes the port through a temporary name and a rename, so a reader never sees half of it. */
static int write_port_file(const char *path, unsigned port)
{
    char tmp[4096];
    FILE *f;
    int n = snprintf(tmp, sizeof tmp, "%s.tmp", path);

    if (n < 0 || (size_t)n >= sizeof tmp) {
        fprintf(stderr, "ts_tls_peer: port file name too long\n");
        return -1;
    }
    f = fopen(tmp, "w");
    if (f == NULL) {
        fprintf(stderr, "ts_tls_peer: cannot write %s: %s\n", tmp, strerror(errno));
        return -1;
    }
    fprintf(f, "%u\n", port);
    if (fclose(f) != 0 || rename(tmp, path) != 0) {
        fprintf(stderr, "ts_tls_peer: cannot write %s: %s\n", path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    return 0;
}

/* Listens on HOST:PORT (port 0 for any free one), reports the port, accepts one connection. */
static int accept_one(const char *hp, const char *port_file)
{
    char host[256];
    const char *port;
    struct addrinfo hints, *res = NULL;
    struct sockaddr_storage ss;
    socklen_t sslen = sizeof ss;
    struct pollfd pfd;
    int one = 1;
    int lfd = -1, fd = -1;
    unsigned bound;
    int rc;

    if (split_hostport(hp, host, sizeof host, &port) != 0) {
        return -1;
    }
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST;
    rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0) {
        fprintf(stderr, "ts_tls_peer: cannot use %s: %s\n", hp, gai_strerror(rc));
        return -1;
    }
    lfd = socket(res->ai_family, res->ai_socktype, res->ai_protocol);
    if (lfd < 0 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(lfd, res->ai_addr, res->ai_addrlen) != 0 || listen(lfd, 1) != 0 ||
        getsockname(lfd, (struct sockaddr *)&ss, &sslen) != 0) {
        fprintf(stderr, "ts_tls_peer: cannot listen on %s: %s\n", hp, strerror(errno));
        goto out;
    }
    bound = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                           : ((struct sockaddr_in *)&ss)->sin_port);
    printf("listening: %s:%u\n", host, bound);
    fflush(stdout);
    if (port_file != NULL && write_port_file(port_file, bound) != 0) {
        goto out;
    }
    pfd.fd = lfd;
    pfd.events = POLLIN;
    rc = poll(&pfd, 1, 2 * PEER_IO_TIMEOUT_S * 1000);
    if (rc <= 0) {
        fprintf(stderr, "ts_tls_peer: no connection within %d s\n", 2 * PEER_IO_TIMEOUT_S);
        goto out;
    }
    fd = accept(lfd, NULL, NULL);
    if (fd < 0) {
        fprintf(stderr, "ts_tls_peer: accept: %s\n", strerror(errno));
        goto out;
    }
    if (tune_socket(fd) != 0) {
        close(fd);
        fd = -1;
    }
out:
    if (lfd >= 0) {
        close(lfd);
    }
    freeaddrinfo(res);
    return fd;
}

/* The key-store key and its certificate, the CA, the protocol and cipher asked for. */
static SSL_CTX *make_ctx(const peer_opts *o, EVP_PKEY *pkey)
{
    OSSL_LIB_CTX *libctx = ts_provider_libctx();
    SSL_CTX *ctx = NULL;
    X509 *cert = NULL;
    BIO *bio = NULL;
    int ok = 0;

    if (libctx == NULL) {
        fprintf(stderr, "ts_tls_peer: no provider context: %s\n", ts_error_message());
        return NULL;
    }
    ctx = SSL_CTX_new_ex(libctx, NULL, TLS_method());
    if (ctx == NULL) {
        fail_openssl("SSL_CTX_new_ex failed");
        goto out;
    }
    if (SSL_CTX_set_min_proto_version(ctx, o->version != 0 ? o->version : TLS1_2_VERSION) != 1 ||
        SSL_CTX_set_max_proto_version(ctx, o->version) != 1) {
        fail_openssl("cannot set the protocol version");
        goto out;
    }
    if (o->cipher != NULL) {
        /* TLS 1.3 suites are configured apart from the TLS 1.2 cipher list (RFC 8446 B.4). */
        int set = strncmp(o->cipher, "TLS_", 4) == 0 ? SSL_CTX_set_ciphersuites(ctx, o->cipher)
                                                     : SSL_CTX_set_cipher_list(ctx, o->cipher);
        if (set != 1) {
            fprintf(stderr, "ts_tls_peer: cipher %s is not available\n", o->cipher);
            goto out;
        }
    }
    bio = BIO_new_file(o->cert, "r");
    cert = X509_new_ex(libctx, NULL);
    if (bio == NULL || cert == NULL || PEM_read_bio_X509(bio, &cert, NULL, NULL) == NULL) {
        fail_openssl("cannot read the certificate");
        goto out;
    }
    if (SSL_CTX_use_certificate(ctx, cert) != 1) {
        fail_openssl("the certificate is not usable");
        goto out;
    }
    if (SSL_CTX_use_PrivateKey(ctx, pkey) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
        fail_openssl("the key-store key does not match the certificate");
        goto out;
    }
    if (SSL_CTX_load_verify_file(ctx, o->ca) != 1) {
        fail_openssl("cannot load the CA file");
        goto out;
    }
    if (o->server) {
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file_ex(o->ca, libctx, NULL);
        if (names == NULL) {
            fail_openssl("cannot read CA names");
            goto out;
        }
        SSL_CTX_set_client_CA_list(ctx, names);
    }
    /* Mutual authentication: a peer without a certificate that verifies is refused. */
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    ok = 1;
out:
    BIO_free(bio);
    X509_free(cert);
    if (!ok) {
        SSL_CTX_free(ctx);
        ctx = NULL;
    }
    return ctx;
}

/* Reads up to a newline (not kept), at most PEER_LINE_MAX - 1 bytes. */
static int read_line(SSL *ssl, char *buf, size_t size)
{
    size_t used = 0;

    while (used + 1 < size) {
        char c;
        int n = SSL_read(ssl, &c, 1);
        if (n <= 0) {
            fail_openssl(used == 0 ? "the peer closed before sending a line"
                                   : "the peer closed in the middle of a line");
            return -1;
        }
        if (c == '\n') {
            break;
        }
        buf[used++] = c;
    }
    if (used > 0 && buf[used - 1] == '\r') {
        used--;
    }
    buf[used] = '\0';
    return 0;
}

static int write_line(SSL *ssl, const char *line)
{
    char buf[PEER_LINE_MAX + 1];
    int n = snprintf(buf, sizeof buf, "%s\n", line);

    if (n < 0 || (size_t)n >= sizeof buf || SSL_write(ssl, buf, n) != n) {
        fail_openssl("cannot send the line");
        return -1;
    }
    return 0;
}

/* Why a handshake failed, in the words of the certificate check when that was the cause. */
static void report_handshake_failure(SSL *ssl)
{
    long vr = SSL_get_verify_result(ssl);

    if (vr != X509_V_OK) {
        fprintf(stderr, "ts_tls_peer: peer certificate rejected: %s\n",
                X509_verify_cert_error_string(vr));
    }
    fail_openssl("TLS handshake failed");
}

static void print_summary(SSL *ssl, X509 *peer)
{
    char subject[512] = "";
    BIO *mem = BIO_new(BIO_s_mem());

    if (mem != NULL &&
        X509_NAME_print_ex(mem, X509_get_subject_name(peer), 0, XN_FLAG_RFC2253) >= 0) {
        int n = BIO_read(mem, subject, (int)sizeof subject - 1);
        subject[n > 0 ? n : 0] = '\0';
    }
    BIO_free(mem);
    printf("protocol: %s\n", SSL_get_version(ssl));
    printf("cipher: %s\n", SSL_get_cipher_name(ssl));
    printf("peer: %s\n", subject);
    printf("verify: ok\n");
    fflush(stdout);
}

static int run(const peer_opts *o)
{
    ts_keystore *ks = NULL;
    EVP_PKEY *pkey = NULL;
    SSL_CTX *ctx = NULL;
    SSL *ssl = NULL;
    X509 *peer = NULL;
    char line[PEER_LINE_MAX];
    int fd = -1;
    int rv = 1;
    ts_err err;

    err = ts_keystore_open(o->keystore, &ks);
    if (err != TS_OK) {
        fprintf(stderr, "ts_tls_peer: cannot open the key store: %s (%s)\n", ts_error_message(),
                ts_err_name(err));
        goto out;
    }
    err = ts_keystore_evp_pkey(ks, o->label, &pkey);
    if (err != TS_OK) {
        fprintf(stderr, "ts_tls_peer: cannot use key %s: %s (%s)\n", o->label, ts_error_message(),
                ts_err_name(err));
        goto out;
    }
    ctx = make_ctx(o, pkey);
    if (ctx == NULL) {
        goto out;
    }
    fd = o->server ? accept_one(o->listen, o->port_file) : connect_to(o->connect);
    if (fd < 0) {
        goto out;
    }
    ssl = SSL_new(ctx);
    if (ssl == NULL || SSL_set_fd(ssl, fd) != 1) {
        fail_openssl("SSL_new failed");
        goto out;
    }
    if ((o->server ? SSL_accept(ssl) : SSL_connect(ssl)) != 1) {
        report_handshake_failure(ssl);
        goto out;
    }
    peer = SSL_get1_peer_certificate(ssl);
    if (peer == NULL || SSL_get_verify_result(ssl) != X509_V_OK) {
        report_handshake_failure(ssl);
        goto out;
    }
    /* A TLS 1.3 client learns that the server refused its certificate only on this first read. */
    if (o->server) {
        if (read_line(ssl, line, sizeof line) != 0 || write_line(ssl, o->line) != 0) {
            goto out;
        }
    } else {
        if (write_line(ssl, o->line) != 0 || read_line(ssl, line, sizeof line) != 0) {
            goto out;
        }
    }
    print_summary(ssl, peer);
    printf("received: %s\n", line);
    fflush(stdout);
    SSL_shutdown(ssl);
    rv = 0;
out:
    X509_free(peer);
    SSL_free(ssl);
    if (fd >= 0) {
        close(fd);
    }
    SSL_CTX_free(ctx);
    EVP_PKEY_free(pkey);
    ts_keystore_free(ks);
    return rv;
}

int main(int argc, char **argv)
{
    peer_opts o;

    /* A peer that hangs up must give an error from SSL_write, not kill the process. */
    signal(SIGPIPE, SIG_IGN);
    if (parse_args(argc, argv, &o) != 0) {
        usage();
        return 2;
    }
    return run(&o);
}
