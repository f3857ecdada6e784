/*
 * bench_connect: what the Mosquitto plugin (tessera_mosquitto.so) costs. Two brokers run side by
 * side, both with mutual TLS (require_certificate, set_tcp_nodelay): one with the plugin
 * (certificate to identity, revocation and disable state from a tessera serve, per-topic ACL),
 * one with cafile + crlfile only. In the same run it measures, alternating between them:
 *
 *   connect   full mutual-TLS MQTT connects per second (new client, TLS handshake, CONNACK,
 *             DISCONNECT), one after another;
 *   publish   QoS 1 messages per second from one device that is also subscribed to its own
 *             topic (each message: an ACL check for the write and one for the delivery).
 *
 * and prints the plugin's rate over the plain one. BENCH_SECONDS (default 3) per round, four
 * rounds per case; BENCH_MESSAGES (default 20000) per publish round. docs/bench.md.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <mosquitto.h>
#include <openssl/x509v3.h>

/* This benchmark uses only part of the shared helpers. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#include "bench_serve.h"
#pragma GCC diagnostic pop

typedef struct broker {
    pid_t pid;
    int port;
    char conf[BS_PATH], log[BS_PATH];
} broker;

typedef struct pub_state {
    unsigned long acked, received;
    int connected;
} pub_state;

static const char *g_cafile, *g_cert, *g_key;

/* A P-256 key and a CSR for a TLS server on 127.0.0.1 (the server profile wants a SAN). */
static int server_csr(const char *key_path, const char *csr_path)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509_REQ *req = X509_REQ_new();
    STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
    X509_EXTENSION *san =
        X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name, "IP:127.0.0.1,DNS:localhost");
    FILE *kf = fopen(key_path, "w"), *cf = fopen(csr_path, "w");
    int rv = -1;

    if (key != NULL && req != NULL && exts != NULL && san != NULL && kf != NULL && cf != NULL &&
        sk_X509_EXTENSION_push(exts, san) > 0 &&
        X509_NAME_add_entry_by_txt(X509_REQ_get_subject_name(req), "CN", MBSTRING_ASC,
                                   (const unsigned char *)"localhost", -1, -1, 0) == 1 &&
        X509_REQ_add_extensions(req, exts) == 1 && X509_REQ_set_pubkey(req, key) == 1 &&
        X509_REQ_sign(req, key, EVP_sha256()) > 0 &&
        PEM_write_PrivateKey(kf, key, NULL, NULL, 0, NULL, NULL) == 1 &&
        PEM_write_X509_REQ(cf, req) == 1) {
        rv = 0;
        san = NULL;
    }
    if (kf != NULL && fclose(kf) != 0) {
        rv = -1;
    }
    if (cf != NULL && fclose(cf) != 0) {
        rv = -1;
    }
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    X509_EXTENSION_free(san);
    X509_REQ_free(req);
    EVP_PKEY_free(key);
    return rv;
}

static int free_port(void)
{
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;

    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0) {
        port = ntohs(a.sin_port);
    }
    if (fd >= 0) {
        close(fd);
    }
    return port;
}

/* Writes the conf (extra: the plugin's or the CRL's lines), starts mosquitto, waits for it. */
static int broker_start(const bs_env *e, const char *name, const char *extra, broker *b)
{
    char user[64] = "root";
    const char *login = getenv("USER");
    FILE *f;

    memset(b, 0, sizeof *b);
    b->port = free_port();
    if (login != NULL && strlen(login) < sizeof user) {
        snprintf(user, sizeof user, "%s", login);
    }
    if (snprintf(b->conf, sizeof b->conf, "%s/%s.conf", e->dir, name) >= (int)sizeof b->conf ||
        snprintf(b->log, sizeof b->log, "%s/%s.log", e->dir, name) >= (int)sizeof b->log) {
        return -1;
    }
    f = fopen(b->conf, "w");
    if (f == NULL || b->port < 0) {
        return -1;
    }
    fprintf(f,
            "user %s\npersistence false\nlog_dest stderr\nlog_type error\nlog_type warning\n"
            "allow_anonymous false\nlistener %d 127.0.0.1\ncertfile %s/broker.pem\n"
            "keyfile %s/broker.key\ncafile %s\nrequire_certificate true\n"
            "set_tcp_nodelay true\nmax_inflight_messages 100\n%s",
            getuid() == 0 ? "root" : user, b->port, e->dir, e->dir, g_cafile, extra);
    if (fclose(f) != 0) {
        return -1;
    }
    b->pid = fork();
    if (b->pid == 0) {
        int fd = open(b->log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0) {
            _exit(127);
        }
        execl("/usr/sbin/mosquitto", "mosquitto", "-c", b->conf, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; b->pid > 0 && i < 100; i++) {
        struct sockaddr_in a;
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        memset(&a, 0, sizeof a);
        a.sin_family = AF_INET;
        a.sin_port = htons((uint16_t)b->port);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        int ok = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
        close(fd);
        if (ok) {
            return 0;
        }
        if (waitpid(b->pid, NULL, WNOHANG) == b->pid) {
            break;
        }
        usleep(100000);
    }
    fprintf(stderr, "bench: mosquitto (%s) did not start; see %s\n", name, b->log);
    return -1;
}

static void broker_stop(broker *b)
{
    if (b->pid > 0) {
        kill(b->pid, SIGTERM);
        waitpid(b->pid, NULL, 0);
        b->pid = 0;
    }
}

static void on_connect(struct mosquitto *m, void *obj, int rc)
{
    ((pub_state *)obj)->connected = rc == 0 ? 1 : -1;
}

static void on_publish(struct mosquitto *m, void *obj, int mid)
{
    ((pub_state *)obj)->acked++;
}

static void on_message(struct mosquitto *m, void *obj, const struct mosquitto_message *msg)
{
    ((pub_state *)obj)->received++;
}

/* A connected client of the bench device (CN bench-bootstrap), or NULL. */
static struct mosquitto *client_connect(int port, pub_state *st)
{
    struct mosquitto *m = mosquitto_new("bench-bootstrap", true, st);
    double until = bs_now() + 10;

    if (m == NULL) {
        return NULL;
    }
    mosquitto_int_option(m, MOSQ_OPT_TCP_NODELAY, 1);
    mosquitto_int_option(m, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
    mosquitto_connect_callback_set(m, on_connect);
    mosquitto_publish_callback_set(m, on_publish);
    mosquitto_message_callback_set(m, on_message);
    st->connected = 0;
    int rc = mosquitto_tls_set(m, g_cafile, NULL, g_cert, g_key, NULL);
    if (rc == MOSQ_ERR_SUCCESS) {
        rc = mosquitto_connect(m, "127.0.0.1", port, 60);
    }
    if (rc != MOSQ_ERR_SUCCESS) {
        fprintf(stderr, "bench: connect to port %d: %s\n", port, mosquitto_strerror(rc));
        mosquitto_destroy(m);
        return NULL;
    }
    while (st->connected == 0 && bs_now() < until) {
        if (mosquitto_loop(m, 100, 1) != MOSQ_ERR_SUCCESS) {
            break;
        }
    }
    if (st->connected != 1) {
        fprintf(stderr, "bench: no CONNACK accepted from port %d\n", port);
        mosquitto_destroy(m);
        return NULL;
    }
    return m;
}

/* Connects per second for seconds; -1 on a failed connect. */
static double connect_round(int port, double seconds)
{
    unsigned long n = 0;
    double start = bs_now(), t = start;

    while (t - start < seconds) {
        pub_state st = {0};
        struct mosquitto *m = client_connect(port, &st);
        if (m == NULL) {
            return -1;
        }
        mosquitto_disconnect(m);
        mosquitto_destroy(m);
        n++;
        t = bs_now();
    }
    return (double)n / (t - start);
}

/* QoS 1 messages per second: count messages published and received back. */
static double publish_round(int port, unsigned long count)
{
    static const char topic[] = "tessera/default/bench-bootstrap/telemetry";
    static const char payload[] = "{\"cpu\":0.25,\"mem\":1234,\"uptime\":42}";
    pub_state st = {0};
    struct mosquitto *m = client_connect(port, &st);
    double rate = -1;

    if (m == NULL) {
        return -1;
    }
    /* Subscribe and let the SUBACK come back before the clock starts. */
    mosquitto_subscribe(m, NULL, topic, 1);
    for (double until = bs_now() + 0.2; bs_now() < until;) {
        mosquitto_loop(m, 10, 1);
    }
    double start = bs_now();
    unsigned long sent = 0;
    while ((st.acked < count || st.received < count) && bs_now() - start < 60) {
        while (sent < count && sent - st.acked < 200) {
            mosquitto_publish(m, NULL, topic, (int)sizeof(payload) - 1, payload, 1, false);
            sent++;
        }
        if (mosquitto_loop(m, 10, 1) != MOSQ_ERR_SUCCESS) {
            break;
        }
    }
    if (st.acked >= count && st.received >= count) {
        rate = (double)count / (bs_now() - start);
    }
    mosquitto_disconnect(m);
    mosquitto_destroy(m);
    return rate;
}

static int write_file(const char *path, const char *text, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
    size_t n = strlen(text);
    int rv = fd >= 0 && write(fd, text, n) == (ssize_t)n ? 0 : -1;

    if (fd >= 0 && close(fd) != 0) {
        rv = -1;
    }
    return rv;
}

/* The broker certificate, the CRL, the token of a tenant auditor for the plugin. */
static int prepare(const bs_env *e, char *token_path, char *crl_path)
{
    char key[BS_PATH], csr[BS_PATH], cert[BS_PATH], out[BS_OUT];
    char *issue[] = {"cert",  "issue", "--dir",     (char *)e->inst,
                     "--csr", csr,     "--profile", "server",
                     "--out", cert,    NULL};
    char *user[] = {"user",      "create", "--dir",   (char *)e->inst,
                    "mosquitto", "--role", "auditor", NULL};
    char *token[] = {"token", "create", "--dir", (char *)e->inst, "--user", "mosquitto", NULL};
    char *crl[] = {"crl", "--dir", (char *)e->inst, "--pem", "--out", crl_path, NULL};

    bs_path(key, e->dir, "broker.key");
    bs_path(csr, e->dir, "broker.csr");
    bs_path(cert, e->dir, "broker.pem");
    bs_path(token_path, e->dir, "token");
    bs_path(crl_path, e->dir, "crl.pem");
    if (server_csr(key, csr) != 0 || bs_tessera(e, issue, NULL, 0) != 0 ||
        bs_tessera(e, user, NULL, 0) != 0 || bs_tessera(e, token, out, sizeof out) != 0 ||
        bs_tessera(e, crl, NULL, 0) != 0) {
        return -1;
    }
    char *last = out + strlen(out);
    while (last > out && (last[-1] == '\n' || last[-1] == '\r')) {
        *--last = '\0';
    }
    char *nl = strrchr(out, '\n');
    return write_file(token_path, nl != NULL ? nl + 1 : out, 0600);
}

int main(int argc, char **argv)
{
    bs_env e;
    bs_server srv = {0};
    broker with = {0}, without = {0};
    char token[BS_PATH], crl[BS_PATH], plugin[BS_PATH + 64], extra[6 * BS_PATH],
        crl_line[BS_PATH + 64];
    double seconds = (double)bs_env_num("BENCH_SECONDS", 3);
    unsigned long messages = bs_env_num("BENCH_MESSAGES", 20000);
    double c_with = 0, c_without = 0, p_with = 0, p_without = 0;
    int rv = 1;

    (void)argc;
    mosquitto_lib_init();
    if (bs_setup(&e, argv[0]) != 0 || prepare(&e, token, crl) != 0 ||
        bs_serve_start(&e, 0, 0, &srv) != 0) {
        goto out;
    }
    g_cafile = e.trust;
    g_cert = e.cert;
    g_key = e.key;
    if (snprintf(plugin, sizeof plugin, "%s/../lib/tessera_mosquitto.so", e.bin) >=
            (int)sizeof plugin ||
        snprintf(extra, sizeof extra,
                 "plugin %s\nplugin_opt_service_url %s\nplugin_opt_token_file %s\n"
                 "plugin_opt_trust %s\nplugin_opt_cache %s/broker.cache\nplugin_opt_refresh 5\n"
                 "log_type notice\n",
                 plugin, srv.https, token, e.root, e.dir) >= (int)sizeof extra ||
        snprintf(crl_line, sizeof crl_line, "crlfile %s\nuse_identity_as_username true\n", crl) >=
            (int)sizeof crl_line) {
        fprintf(stderr, "bench: paths too long\n");
        goto out;
    }
    if (broker_start(&e, "with-plugin", extra, &with) != 0 ||
        broker_start(&e, "crlfile-only", crl_line, &without) != 0) {
        goto out;
    }
    /* The plugin admits devices once it has the service's state. */
    pub_state st = {0};
    struct mosquitto *m = NULL;
    for (double until = bs_now() + 20; m == NULL && bs_now() < until;) {
        m = client_connect(with.port, &st);
        if (m == NULL) {
            usleep(200000);
        }
    }
    if (m == NULL) {
        fprintf(stderr, "bench: the plugin never admitted the device; see %s\n", with.log);
        goto out;
    }
    mosquitto_disconnect(m);
    mosquitto_destroy(m);

    printf("mutual-TLS MQTT connects (P-256 client and server, TLS 1.3, CONNACK, DISCONNECT), "
           "%.0f s rounds:\n",
           seconds);
    for (int round = 0; round < 4; round++) {
        double a = connect_round(with.port, seconds), b = connect_round(without.port, seconds);
        if (a < 0 || b < 0) {
            fprintf(stderr, "bench: a connect failed; see %s and %s\n", with.log, without.log);
            goto out;
        }
        printf("  round %d: plugin %7.1f/s   cafile+crlfile %7.1f/s\n", round + 1, a, b);
        c_with += a / 4;
        c_without += b / 4;
    }
    printf("QoS 1 publish, subscribed to its own topic, %lu messages a round:\n", messages);
    for (int round = 0; round < 4; round++) {
        double a = publish_round(with.port, messages), b = publish_round(without.port, messages);
        if (a < 0 || b < 0) {
            fprintf(stderr, "bench: a publish round failed; see %s and %s\n", with.log,
                    without.log);
            goto out;
        }
        printf("  round %d: plugin %8.0f msg/s   cafile+crlfile %8.0f msg/s\n", round + 1, a, b);
        p_with += a / 4;
        p_without += b / 4;
    }
    printf("connect  plugin %.1f/s  cafile+crlfile %.1f/s  ratio %.3f (cost %.1f%%)\n", c_with,
           c_without, c_with / c_without, 100.0 * (1.0 - c_with / c_without));
    printf("publish  plugin %.0f msg/s  cafile+crlfile %.0f msg/s  ratio %.3f (cost %.1f%%)\n",
           p_with, p_without, p_with / p_without, 100.0 * (1.0 - p_with / p_without));
    rv = 0;
out:
    broker_stop(&with);
    broker_stop(&without);
    bs_serve_stop(&srv);
    bs_teardown(&e);
    mosquitto_lib_cleanup();
    return rv;
}
