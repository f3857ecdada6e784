/*
 * bench_connect: what the Mosquitto plugin (tessera_mosquitto.so) costs. Two brokers run side by
 * side, both with mutual TLS (require_certificate, set_tcp_nodelay): one with the plugin
 * (certificate to identity, revocation and disable state from a tessera serve, per-topic ACL),
 * one with cafile + crlfile only. In the same run it measures, alternating between them:
 *
 *   connect   full mutual-TLS MQTT connects per second (new client, TLS handshake, CONNACK,
 *             DISCONNECT) from BENCH_CLIENTS (default 8) devices at once;
 *   publish   QoS 1 messages per second from one device that is also subscribed to its own
 *             topic (each message: an ACL check for the write and one for the delivery).
 *
 * and prints the plugin's median rate over the plain one's. BENCH_SECONDS (default 3) per round,
 * BENCH_ROUNDS (default 8) rounds per case, which broker goes first alternating;
 * BENCH_MESSAGES (default 20000) per publish round. docs/bench.md.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>

#include <mosquitto.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

/* This benchmark uses only part of the shared helpers. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#include "bench_serve.h"
#pragma GCC diagnostic pop
#include "bench_fleet.h"

typedef struct broker {
    pid_t pid;
    int port;
    char conf[BS_PATH], log[BS_PATH];
} broker;

typedef struct pub_state {
    unsigned long acked, received;
    int connected;
} pub_state;

static const char *g_cafile;

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

enum { ROUNDS_MAX = 32 };

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The median of n rates (n >= 1); sorts them. One slow round from the machine's other work then
 * moves the figure less than a mean would. */
static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof v[0], cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* The client's TLS context, built once and shared by every connection (as a device fleet's
 * agents each build theirs once): the figures are the broker's, not file loading's. */
enum { CLIENTS_MAX = 16 };
static SSL_CTX *g_ctx[CLIENTS_MAX]; /* client i is device bench-c<i>; 0 is bench-bootstrap */

static SSL_CTX *client_ctx(const char *cert, const char *key)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL || SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
        SSL_CTX_load_verify_locations(ctx, g_cafile, NULL) != 1 ||
        SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    return ctx;
}

/* A connected client of bench device `client` (its certificate's CN is the client id), or NULL. */
static struct mosquitto *client_connect(int port, int client, pub_state *st)
{
    char id[32];
    if (client == 0) {
        snprintf(id, sizeof id, "bench-bootstrap");
    } else {
        snprintf(id, sizeof id, "bench-c%d", client);
    }
    struct mosquitto *m = mosquitto_new(id, true, st);
    double until = bs_now() + 10;

    if (m == NULL) {
        return NULL;
    }
    mosquitto_int_option(m, MOSQ_OPT_TCP_NODELAY, 1);
    mosquitto_int_option(m, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
    mosquitto_int_option(m, MOSQ_OPT_SSL_CTX_WITH_DEFAULTS, 0);
    mosquitto_connect_callback_set(m, on_connect);
    mosquitto_publish_callback_set(m, on_publish);
    mosquitto_message_callback_set(m, on_message);
    st->connected = 0;
    int rc = mosquitto_void_option(m, MOSQ_OPT_SSL_CTX, g_ctx[client]);
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

typedef struct connect_job {
    int port;
    int client;
    double until;
    unsigned long n;
    int failed;
} connect_job;

/* One connecting client: connect, CONNACK, DISCONNECT, again, until the deadline. */
static void *connect_loop(void *arg)
{
    connect_job *j = arg;
    while (bs_now() < j->until) {
        pub_state st = {0};
        struct mosquitto *m = client_connect(j->port, j->client, &st);
        if (m == NULL) {
            j->failed = 1;
            break;
        }
        mosquitto_disconnect(m);
        mosquitto_destroy(m);
        j->n++;
    }
    return NULL;
}

/*
 * Connects per second for seconds from `clients` clients at once (the broker is one thread, so
 * concurrent clients measure what it can admit rather than one client's round trips); -1 on a
 * failed connect.
 */
static double connect_round(int port, double seconds, int clients)
{
    pthread_t tid[CLIENTS_MAX];
    connect_job jobs[CLIENTS_MAX];
    double start = bs_now();
    unsigned long total = 0;
    int failed = 0;

    for (int i = 0; i < clients && i < CLIENTS_MAX; i++) {
        jobs[i] = (connect_job){.port = port, .client = i, .until = start + seconds};
        if (pthread_create(&tid[i], NULL, connect_loop, &jobs[i]) != 0) {
            clients = i;
            failed = 1;
        }
    }
    for (int i = 0; i < clients && i < CLIENTS_MAX; i++) {
        pthread_join(tid[i], NULL);
        total += jobs[i].n;
        failed |= jobs[i].failed;
    }
    return failed ? -1 : (double)total / (bs_now() - start);
}

/* QoS 1 messages per second: count messages published and received back. */
static double publish_round(int port, unsigned long count)
{
    static const char topic[] = "tessera/default/bench-bootstrap/telemetry";
    static const char payload[] = "{\"cpu\":0.25,\"mem\":1234,\"uptime\":42}";
    pub_state st = {0};
    struct mosquitto *m = client_connect(port, 0, &st);
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

/* A device certificate and key per connecting client, and every client's TLS context. */
static int client_identities(const bs_env *e, int clients)
{
    g_ctx[0] = client_ctx(e->cert, e->key);
    for (int i = 1; g_ctx[0] != NULL && i < clients; i++) {
        char cn[32], name[48], key[BS_PATH], csr[BS_PATH], cert[BS_PATH];
        snprintf(cn, sizeof cn, "bench-c%d", i);
        char *issue[] = {"cert",  "issue", "--dir",     (char *)e->inst,
                         "--csr", csr,     "--profile", "device",
                         "--out", cert,    NULL};
        snprintf(name, sizeof name, "%s.key", cn);
        int bad = bs_path(key, e->dir, name) != 0;
        snprintf(name, sizeof name, "%s.csr", cn);
        bad |= bs_path(csr, e->dir, name) != 0;
        snprintf(name, sizeof name, "%s.pem", cn);
        bad |= bs_path(cert, e->dir, name) != 0;
        if (bad) {
            return -1;
        }
        if (bs_key_csr(key, csr, cn) != 0 || bs_tessera(e, issue, NULL, 0) != 0 ||
            (g_ctx[i] = client_ctx(cert, key)) == NULL) {
            return -1;
        }
    }
    return g_ctx[0] != NULL ? 0 : -1;
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

/* The observer's certificate: a service account of the plugin (plugin_opt_service_cert). */
static char g_obs_cert[BS_PATH], g_obs_key[BS_PATH];

static int observer_identity(const bs_env *e)
{
    char csr[BS_PATH];
    char *issue[] = {"cert",      "issue",  "--dir", (char *)e->inst, "--csr", csr,
                     "--profile", "device", "--out", g_obs_cert,      NULL};
    if (bs_path(g_obs_key, e->dir, "observer.key") != 0 ||
        bs_path(g_obs_cert, e->dir, "observer.pem") != 0 ||
        bs_path(csr, e->dir, "observer.csr") != 0) {
        return -1;
    }
    return bs_key_csr(g_obs_key, csr, "bench-observer") == 0 && bs_tessera(e, issue, NULL, 0) == 0
               ? 0
               : -1;
}

/*
 * Telemetry through the plugin's broker from `agents` real agents, each publishing `per`
 * messages as fast as they are acknowledged; the observer's rate from first to last message.
 */
static double fleet_round(const bs_env *e, const bs_server *s, int port, int agents,
                          unsigned long per)
{
    char agent[BS_PATH];
    bf_agent fleet[BF_AGENTS_MAX];
    bf_observer obs = {0};
    double rate = -1;
    int started = 0;

    if (bs_path(agent, e->bin, "tessera-agent") != 0 || access(agent, X_OK) != 0) {
        fprintf(stderr, "bench: no %s: build the tessera-agent target first\n", agent);
        return -1;
    }
    memset(fleet, 0, sizeof fleet);
    for (int i = 0; i < agents; i++) {
        if (bf_enroll(e, s, agent, i, &fleet[i]) != 0) {
            fprintf(stderr, "bench: agent %d did not enroll; see %s\n", i, fleet[i].log);
            return -1;
        }
    }
    SSL_CTX *ctx = client_ctx(g_obs_cert, g_obs_key);
    struct mosquitto *m = ctx != NULL ? mosquitto_new("bench-observer", true, &obs) : NULL;
    if (m == NULL) {
        SSL_CTX_free(ctx);
        return -1;
    }
    mosquitto_int_option(m, MOSQ_OPT_TCP_NODELAY, 1);
    mosquitto_int_option(m, MOSQ_OPT_SSL_CTX_WITH_DEFAULTS, 0);
    mosquitto_void_option(m, MOSQ_OPT_SSL_CTX, ctx);
    mosquitto_subscribe_callback_set(m, bf_on_subscribe);
    mosquitto_message_callback_set(m, bf_on_message);
    if (mosquitto_connect(m, "127.0.0.1", port, 60) != MOSQ_ERR_SUCCESS ||
        mosquitto_subscribe(m, NULL, "tessera/+/+/telemetry", 0) != MOSQ_ERR_SUCCESS) {
        goto out;
    }
    for (double until = bs_now() + 10; obs.subscribed == 0 && bs_now() < until;) {
        mosquitto_loop(m, 50, 1);
    }
    if (obs.subscribed != 1) {
        fprintf(stderr, "bench: the observer could not subscribe\n");
        goto out;
    }
    for (; started < agents; started++) {
        if (bf_start(e, agent, port, per, &fleet[started]) != 0) {
            goto out;
        }
    }
    unsigned long want = (unsigned long)agents * per;
    for (double until = bs_now() + 120; obs.received < want && bs_now() < until;) {
        if (mosquitto_loop(m, 50, 1) != MOSQ_ERR_SUCCESS) {
            break;
        }
    }
    int failed = 0;
    for (int i = 0; i < started; i++) {
        failed |= bf_wait(&fleet[i]) != 0;
    }
    started = 0;
    if (failed || obs.received < want || obs.last <= obs.first) {
        fprintf(stderr, "bench: %lu of %lu telemetry messages arrived; see %s\n", obs.received,
                want, fleet[0].log);
        goto out;
    }
    rate = (double)(obs.received - 1) / (obs.last - obs.first);
out:
    for (int i = 0; i < started; i++) {
        kill(fleet[i].pid, SIGTERM);
        bf_wait(&fleet[i]);
    }
    mosquitto_disconnect(m);
    mosquitto_destroy(m);
    SSL_CTX_free(ctx);
    return rate;
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
    int clients = (int)bs_env_num("BENCH_CLIENTS", 8);
    unsigned long messages = bs_env_num("BENCH_MESSAGES", 20000);
    int rounds = (int)bs_env_num("BENCH_ROUNDS", 8);
    double c_with = 0, c_without = 0, p_with = 0, p_without = 0;
    int rv = 1;

    (void)argc;
    mosquitto_lib_init();
    if (bs_setup(&e, argv[0]) != 0 || prepare(&e, token, crl) != 0 ||
        bs_serve_start(&e, 0, 0, &srv) != 0) {
        goto out;
    }
    g_cafile = e.trust;
    if (rounds < 1 || rounds > ROUNDS_MAX) {
        fprintf(stderr, "bench: BENCH_ROUNDS is 1 to %d\n", ROUNDS_MAX);
        goto out;
    }
    if (clients < 1 || clients > CLIENTS_MAX) {
        fprintf(stderr, "bench: BENCH_CLIENTS is 1 to %d\n", CLIENTS_MAX);
        goto out;
    }
    if (client_identities(&e, clients) != 0 || observer_identity(&e) != 0) {
        fprintf(stderr, "bench: cannot make the clients' certificates\n");
        goto out;
    }
    if (snprintf(plugin, sizeof plugin, "%s/../lib/tessera_mosquitto.so", e.bin) >=
            (int)sizeof plugin ||
        snprintf(extra, sizeof extra,
                 "plugin %s\nplugin_opt_service_url %s\nplugin_opt_token_file %s\n"
                 "plugin_opt_trust %s\nplugin_opt_cache %s/broker.cache\nplugin_opt_refresh 5\n"
                 "plugin_opt_service_cert %s\nlog_type notice\n",
                 plugin, srv.https, token, e.root, e.dir, g_obs_cert) >= (int)sizeof extra ||
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
        m = client_connect(with.port, 0, &st);
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
           "%d clients at once, %.0f s rounds:\n",
           clients, seconds);
    double ca[ROUNDS_MAX], cb[ROUNDS_MAX], pa[ROUNDS_MAX], pb[ROUNDS_MAX];
    for (int round = 0; round < rounds; round++) {
        /* Alternating which broker goes first, so a drift in the machine's load favours neither. */
        int flip = round % 2;
        double a = flip ? -1 : connect_round(with.port, seconds, clients);
        double b = connect_round(without.port, seconds, clients);
        if (flip) {
            a = connect_round(with.port, seconds, clients);
        }
        if (a < 0 || b < 0) {
            fprintf(stderr, "bench: a connect failed; see %s and %s\n", with.log, without.log);
            goto out;
        }
        printf("  round %d: plugin %7.1f/s   cafile+crlfile %7.1f/s\n", round + 1, a, b);
        ca[round] = a;
        cb[round] = b;
    }
    printf("QoS 1 publish, subscribed to its own topic, %lu messages a round:\n", messages);
    for (int round = 0; round < rounds; round++) {
        int flip = round % 2;
        double a = flip ? -1 : publish_round(with.port, messages);
        double b = publish_round(without.port, messages);
        if (flip) {
            a = publish_round(with.port, messages);
        }
        if (a < 0 || b < 0) {
            fprintf(stderr, "bench: a publish round failed; see %s and %s\n", with.log,
                    without.log);
            goto out;
        }
        printf("  round %d: plugin %8.0f msg/s   cafile+crlfile %8.0f msg/s\n", round + 1, a, b);
        pa[round] = a;
        pb[round] = b;
    }
    c_with = median(ca, rounds);
    c_without = median(cb, rounds);
    p_with = median(pa, rounds);
    p_without = median(pb, rounds);
    int agents = (int)bs_env_num("BENCH_AGENTS", 4);
    unsigned long per = bs_env_num("BENCH_TELEMETRY", 5000);
    if (agents < 1 || agents > BF_AGENTS_MAX) {
        fprintf(stderr, "bench: BENCH_AGENTS is 1 to %d\n", BF_AGENTS_MAX);
        goto out;
    }
    printf("telemetry from %d tessera-agent run processes, %lu messages each (QoS 1), through "
           "the plugin's broker:\n",
           agents, per);
    double t_rate = fleet_round(&e, &srv, with.port, agents, per);
    if (t_rate < 0) {
        goto out;
    }
    printf("medians of %d rounds:\n", rounds);
    printf("connect  plugin %.1f/s  cafile+crlfile %.1f/s  ratio %.3f (cost %.1f%%; target <= 5%%: "
           "%s)\n",
           c_with, c_without, c_with / c_without, 100.0 * (1.0 - c_with / c_without),
           c_with / c_without >= 0.95 ? "met" : "MISSED");
    printf("publish  plugin %.0f msg/s  cafile+crlfile %.0f msg/s  ratio %.3f (cost %.1f%%; target "
           "<= 5%%: %s)\n",
           p_with, p_without, p_with / p_without, 100.0 * (1.0 - p_with / p_without),
           p_with / p_without >= 0.95 ? "met" : "MISSED");
    printf("telemetry %d agents %.0f msg/s  ratio %.3f vs one libmosquitto client's QoS 1 "
           "publish rate through the plugin (%.0f msg/s)\n",
           agents, t_rate, t_rate / p_with, p_with);
    rv = 0;
out:
    broker_stop(&with);
    broker_stop(&without);
    for (int i = 0; i < CLIENTS_MAX; i++) {
        SSL_CTX_free(g_ctx[i]);
    }
    bs_serve_stop(&srv);
    bs_teardown(&e);
    mosquitto_lib_cleanup();
    return rv;
}
