/*
 * The demo's cloud side: the key ceremony, the trust service, the broker's certificate and API
 * token, Mosquitto with the plugin, and the observer that watches the broker as the service.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <pwd.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "cli/cli_demo.h"
#include "common/error_internal.h"
#include "common/file_internal.h"
#include "common/text_internal.h"

#define BROKER_SUBJECT "/O=Tessera Demo/CN=localhost" /* the CN must be one of the SANs */
#define BROKER_SANS    "IP:127.0.0.1,DNS:localhost"
#define PLUGIN_USER    "mosquitto-plugin"
#define USER_CHARS     "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-"

enum {
    PIN_BYTES = 16,
    LISTEN_WAIT_MS = 30000,
    IDENTITY_WAIT_MS = 15000,
    PEM_MAX = 64 * 1024,
    SECRET_LINE_MAX = 256,
};

/* --- small helpers ------------------------------------------------------------------------- */

/* Two distinct free ports on 127.0.0.1: bound to port 0 together, read back, released. */
static ts_err free_ports(int *a, int *b)
{
    int fds[2] = {-1, -1};
    int ports[2] = {0, 0};
    ts_err rv = TS_OK;

    for (int i = 0; i < 2 && rv == TS_OK; i++) {
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
        socklen_t len = sizeof sa;
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        fds[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fds[i] < 0 || bind(fds[i], (struct sockaddr *)&sa, sizeof sa) != 0 ||
            getsockname(fds[i], (struct sockaddr *)&sa, &len) != 0) {
            rv = ts_error_set(TS_ERR_IO, "cannot find a free port on 127.0.0.1: %s",
                              strerror(errno));
        } else {
            ports[i] = ntohs(sa.sin_port);
        }
    }
    for (int i = 0; i < 2; i++) {
        if (fds[i] >= 0) {
            close(fds[i]);
        }
    }
    *a = ports[0];
    *b = ports[1];
    return rv;
}

static X509 *read_cert(const char *path)
{
    BIO *bio = BIO_new_file(path, "r");
    X509 *cert = bio != NULL ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    return cert;
}

/* "subject (P-384)" of the first certificate in path. */
static void print_cert(const char *what, const char *path)
{
    X509 *cert = read_cert(path);
    char subject[256] = "?", group[32] = "";
    if (cert != NULL) {
        X509_NAME_oneline(X509_get_subject_name(cert), subject, sizeof subject);
        EVP_PKEY *pub = X509_get0_pubkey(cert);
        ts_curve curve;
        if (pub == NULL || EVP_PKEY_get_group_name(pub, group, sizeof group, NULL) != 1) {
            snprintf(group, sizeof group, "%s", pub != NULL ? EVP_PKEY_get0_type_name(pub) : "?");
        } else if (ts_curve_from_name(group, &curve) == TS_OK) {
            snprintf(group, sizeof group, "%s", ts_curve_name(curve));
        }
    }
    printf(DEMO_IND "%-13s %s (%s)\n", what, subject, group);
    X509_free(cert);
}

/* Writes the concatenation of the files a and b to out. */
static ts_err concat(const char *a, const char *b, const char *out)
{
    uint8_t *da = NULL, *db = NULL, *both = NULL;
    size_t la = 0, lb = 0;
    ts_err rv = ts_file_read(a, PEM_MAX, &da, &la);
    if (rv == TS_OK) {
        rv = ts_file_read(b, PEM_MAX, &db, &lb);
    }
    if (rv == TS_OK) {
        both = OPENSSL_malloc(la + lb + 1);
        if (both == NULL) {
            rv = ts_error_set(TS_ERR_NOMEM, "out of memory");
        }
    }
    if (rv == TS_OK) {
        memcpy(both, da, la);
        memcpy(both + la, db, lb);
        rv = ts_file_write_atomic(out, both, la + lb, 0644);
    }
    OPENSSL_clear_free(da, la);
    OPENSSL_clear_free(db, lb);
    OPENSSL_free(both);
    return rv;
}

/* The last non-empty line of a file into line. */
static int last_line(const char *path, char *line, size_t size)
{
    FILE *f = fopen(path, "r");
    char buf[SECRET_LINE_MAX];
    int found = 0;
    if (f == NULL) {
        return 0;
    }
    while (fgets(buf, sizeof buf, f) != NULL) {
        buf[strcspn(buf, "\r\n")] = '\0';
        if (buf[0] != '\0') {
            snprintf(line, size, "%s", buf);
            found = 1;
        }
    }
    OPENSSL_cleanse(buf, sizeof buf);
    fclose(f);
    return found;
}

/* Whether `tessera HELP_ARGS --help` mentions word (a feature of this build). */
static ts_err tessera_has(demo *d, const char *name, const char *const args[], const char *word,
                          int *has)
{
    char log[DEMO_PATH_MAX], line[DEMO_LINE_MAX];
    long offset = 0;
    *has = 0;
    ts_err rv = demo_tessera(d, name, args);
    if (rv != TS_OK) {
        return TS_OK; /* no such command: the caller says what is missing */
    }
    rv = demo_path(d, log, "logs/%s.log", name);
    if (rv != TS_OK) {
        return rv;
    }
    while (demo_log_find(log, &offset, "", line, sizeof line)) {
        if (strstr(line, word) != NULL) {
            *has = 1;
        }
    }
    return TS_OK;
}

/* --- 1. key ceremony ----------------------------------------------------------------------- */

ts_err demo_step_ceremony(demo *d)
{
    char pin[2 * PIN_BYTES + 1];
    ts_err rv = free_ports(&d->svc_port, &d->mqtt_port);
    if (rv != TS_OK) {
        return rv;
    }
    snprintf(d->url, sizeof d->url, "https://127.0.0.1:%d", d->svc_port);
    rv = demo_path(d, d->instance, "instance");
    if (rv == TS_OK) {
        rv = demo_path(d, d->root_pem, "root.pem");
    }
    if (rv == TS_OK) {
        rv = demo_path(d, d->issuing_pem, "issuing.pem");
    }
    if (rv == TS_OK) {
        rv = demo_path(d, d->client_pem, "instance/tls/client.pem");
    }
    if (rv == TS_OK) {
        rv = ts_random_hex(pin, PIN_BYTES);
    }
    if (rv != TS_OK) {
        return rv;
    }
    int n = snprintf(d->keystore, sizeof d->keystore, "soft:%s/instance-keys?pin-value=%s", d->work,
                     pin);
    OPENSSL_cleanse(pin, sizeof pin);
    if (n < 0 || (size_t)n >= sizeof d->keystore) {
        return ts_error_set(TS_ERR_INVALID, "the key store path is too long");
    }
    const char *init[] = {"init",         "--dir", d->instance,    "--keystore",
                          d->keystore,    "--org", "Tessera Demo", "--operator",
                          "tessera demo", "--url", d->url,         "--shares",
                          "2/3",          NULL};
    rv = demo_tessera(d, "init", init);
    if (rv != TS_OK) {
        return rv;
    }
    /* The init log ends with the admin token, shown once: the demo needs it nowhere. */
    char log[DEMO_PATH_MAX];
    if (demo_path(d, log, "logs/init.log") == TS_OK) {
        remove(log);
    }
    const char *root[] = {"ca", "show", "--dir", d->instance, "--root", "--out", d->root_pem, NULL};
    const char *issuing[] = {"ca",        "show",  "--dir",        d->instance,
                             "--issuing", "--out", d->issuing_pem, NULL};
    rv = demo_tessera(d, "ca-show-root", root);
    if (rv == TS_OK) {
        rv = demo_tessera(d, "ca-show-issuing", issuing);
    }
    if (rv != TS_OK) {
        return rv;
    }
    print_cert("root CA", d->root_pem);
    print_cert("issuing CA", d->issuing_pem);
    printf(DEMO_IND "%-13s a soft: store with a random PIN; root key backup in 3 shares, 2 to "
                    "restore\n",
           "CA keys");
    return TS_OK;
}

/* --- 2. the trust service ------------------------------------------------------------------ */

ts_err demo_step_service(demo *d)
{
    char log[DEMO_PATH_MAX], listen[32], mqtt[32], line[DEMO_LINE_MAX];
    const char *help[] = {"serve", "--help", NULL};
    int has = 0;
    ts_err rv = tessera_has(d, "serve-help", help, "--mqtt", &has);
    if (rv != TS_OK) {
        return rv;
    }
    if (!has) {
        d->fail_log[0] = '\0';
        return ts_error_set(TS_ERR_UNSUPPORTED,
                            "unavailable: this build's tessera serve has no --mqtt option (the "
                            "service's MQTT client, which publishes signed commands)");
    }
    snprintf(listen, sizeof listen, "127.0.0.1:%d", d->svc_port);
    snprintf(mqtt, sizeof mqtt, "127.0.0.1:%d", d->mqtt_port);
    rv = demo_path(d, log, "logs/serve.log");
    if (rv != TS_OK) {
        return rv;
    }
    const char *argv[] = {d->tessera, "serve",  "--dir", d->instance, "--listen",
                          listen,     "--mqtt", mqtt,    NULL};
    snprintf(d->fail_log, sizeof d->fail_log, "%s", log);
    rv = demo_proc_start(&d->serve, "tessera serve", log, argv);
    if (rv != TS_OK) {
        return rv;
    }
    long offset = 0;
    rv = demo_log_wait(&d->serve, &offset, "listening https ", LISTEN_WAIT_MS, line, sizeof line);
    if (rv != TS_OK) {
        return rv;
    }
    /* The service's MQTT identity: made by init, or by serve --mqtt for an older instance. */
    long long deadline = demo_now_ms() + IDENTITY_WAIT_MS;
    while (access(d->client_pem, R_OK) != 0) {
        if (!demo_proc_running(&d->serve) || demo_now_ms() >= deadline) {
            return ts_error_set(TS_ERR_NOT_FOUND,
                                "no service MQTT identity: neither tessera init nor tessera serve "
                                "--mqtt made %s",
                                d->client_pem);
        }
        if (demo_sleep_ms(50) != 0) {
            return ts_error_set(TS_ERR_STATE, "interrupted");
        }
    }
    printf(DEMO_IND "%-13s %s (pid %d)\n", "REST and EST", d->url, (int)d->serve.pid);
    printf(DEMO_IND "%-13s client of the broker at %s, to publish signed commands\n", "MQTT", mqtt);
    print_cert("MQTT identity", d->client_pem);
    return TS_OK;
}

/* --- 3. the broker's certificate ----------------------------------------------------------- */

/* A P-256 key and a CSR for the broker, made with OpenSSL as an operator would. */
static ts_err broker_csr(const char *key_path, const char *csr_path)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509_REQ *req = X509_REQ_new();
    X509_NAME *name = NULL;
    GENERAL_NAMES *sans = NULL;
    STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
    BIO *kbio = BIO_new(BIO_s_mem()), *rbio = BIO_new(BIO_s_mem());
    ts_err rv = TS_OK;

    if (key == NULL || req == NULL || exts == NULL || kbio == NULL || rbio == NULL) {
        rv = ts_error_set_openssl(TS_ERR_CRYPTO, "cannot make the broker's key");
        goto done;
    }
    rv = cli_subject_parse(BROKER_SUBJECT, &name);
    if (rv == TS_OK) {
        rv = cli_san_parse(BROKER_SANS, &sans);
    }
    if (rv != TS_OK) {
        goto done;
    }
    X509_EXTENSION *ext = X509V3_EXT_i2d(NID_subject_alt_name, 0, sans);
    if (ext == NULL || sk_X509_EXTENSION_push(exts, ext) <= 0) {
        X509_EXTENSION_free(ext);
        rv = ts_error_set_openssl(TS_ERR_CRYPTO, "cannot encode the broker's subjectAltName");
        goto done;
    }
    if (X509_REQ_set_version(req, 0) != 1 || X509_REQ_set_subject_name(req, name) != 1 ||
        X509_REQ_set_pubkey(req, key) != 1 || X509_REQ_add_extensions(req, exts) != 1 ||
        X509_REQ_sign(req, key, EVP_sha256()) <= 0) {
        rv = ts_error_set_openssl(TS_ERR_CRYPTO, "cannot make the broker's CSR");
        goto done;
    }
    if (PEM_write_bio_PrivateKey(kbio, key, NULL, NULL, 0, NULL, NULL) != 1 ||
        PEM_write_bio_X509_REQ(rbio, req) != 1) {
        rv = ts_error_set_openssl(TS_ERR_CRYPTO, "cannot encode the broker's key and CSR");
        goto done;
    }
    rv = cli_write_bio(key_path, kbio, 0600);
    if (rv == TS_OK) {
        rv = cli_write_bio(csr_path, rbio, 0644);
    }
done:
    BIO_free(kbio); /* the mem BIO of a key: OpenSSL clears its buffer on free */
    BIO_free(rbio);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    GENERAL_NAMES_free(sans);
    X509_NAME_free(name);
    X509_REQ_free(req);
    EVP_PKEY_free(key);
    return rv;
}

ts_err demo_step_broker_cert(demo *d)
{
    char key[DEMO_PATH_MAX], csr[DEMO_PATH_MAX], cert[DEMO_PATH_MAX], chain[DEMO_PATH_MAX],
        cafile[DEMO_PATH_MAX];
    ts_err rv = demo_path(d, d->broker_dir, "broker");
    if (rv == TS_OK && mkdir(d->broker_dir, 0700) != 0) {
        rv = ts_error_set(TS_ERR_IO, "cannot make %s: %s", d->broker_dir, strerror(errno));
    }
    if (rv == TS_OK) {
        rv = demo_path(d, key, "broker/broker.key");
    }
    if (rv == TS_OK) {
        rv = demo_path(d, csr, "broker/broker.csr");
    }
    if (rv == TS_OK) {
        rv = demo_path(d, cert, "broker/broker.pem");
    }
    if (rv == TS_OK) {
        rv = demo_path(d, chain, "broker/broker-chain.pem");
    }
    if (rv == TS_OK) {
        rv = demo_path(d, cafile, "broker/cafile.pem");
    }
    if (rv == TS_OK) {
        rv = broker_csr(key, csr);
    }
    if (rv != TS_OK) {
        return rv;
    }
    const char *issue[] = {"cert",      "issue",  "--dir", d->instance, "--csr", csr,
                           "--profile", "server", "--out", cert,        NULL};
    rv = demo_tessera(d, "cert-issue-broker", issue);
    /* The broker sends its chain; it accepts clients of the instance's CAs. */
    if (rv == TS_OK) {
        rv = concat(cert, d->issuing_pem, chain);
    }
    if (rv == TS_OK) {
        rv = concat(d->root_pem, d->issuing_pem, cafile);
    }
    if (rv != TS_OK) {
        return rv;
    }
    X509 *c = read_cert(cert);
    char serial[DEMO_SERIAL_MAX + 1] = "?";
    BIGNUM *bn = c != NULL ? ASN1_INTEGER_to_BN(X509_get0_serialNumber(c), NULL) : NULL;
    char *hex = bn != NULL ? BN_bn2hex(bn) : NULL;
    if (hex != NULL) {
        /* lower case, as the agent and tessera cert list print serials */
        for (size_t i = 0; hex[i] != '\0' && i < DEMO_SERIAL_MAX; i++) {
            serial[i] = (char)tolower((unsigned char)hex[i]);
            serial[i + 1] = '\0';
        }
    }
    OPENSSL_free(hex);
    BN_free(bn);
    X509_free(c);
    printf(DEMO_IND "%-13s key and CSR made with OpenSSL, %s\n", "request", BROKER_SANS);
    print_cert("certificate", cert);
    printf(DEMO_IND "%-13s %s, server profile, issued by the default tenant's issuing CA\n",
           "serial", serial);
    return TS_OK;
}

/* --- 4. the plugin's API token ------------------------------------------------------------- */

ts_err demo_step_token(demo *d)
{
    char token_file[DEMO_PATH_MAX], log[DEMO_PATH_MAX], token[SECRET_LINE_MAX];
    const char *user[] = {"user",      "create", "--dir",   d->instance,  "--name",
                          PLUGIN_USER, "--role", "auditor", "--instance", NULL};
    const char *tok[] = {"token",      "create", "--dir",     d->instance, "--user", PLUGIN_USER,
                         "--instance", "--name", "mosquitto", "--expires", "1d",     NULL};
    ts_err rv = demo_path(d, token_file, "broker/token");
    if (rv == TS_OK) {
        rv = demo_path(d, log, "logs/token-create.log");
    }
    if (rv == TS_OK) {
        rv = demo_tessera(d, "user-create", user);
    }
    if (rv == TS_OK) {
        rv = demo_tessera(d, "token-create", tok);
    }
    if (rv != TS_OK) {
        return rv;
    }
    int found = last_line(log, token, sizeof token);
    remove(log); /* it held the token */
    if (!found || strncmp(token, "tsk_", 4) != 0) {
        OPENSSL_cleanse(token, sizeof token);
        return ts_error_set(TS_ERR_CORRUPT, "tessera token create printed no token");
    }
    size_t len = strlen(token);
    token[len] = '\n';
    rv = ts_file_write_atomic(token_file, (const uint8_t *)token, len + 1, 0600);
    OPENSSL_cleanse(token, sizeof token);
    if (rv != TS_OK) {
        return rv;
    }
    printf(DEMO_IND
           "%-13s %s, role auditor, instance-wide (reads every tenant's CAs and revocations)\n",
           "user", PLUGIN_USER);
    printf(DEMO_IND "%-13s in broker/token, mode 0600 (never printed)\n", "token");
    return TS_OK;
}

/* --- 5. Mosquitto -------------------------------------------------------------------------- */

static ts_err write_conf(demo *d, const char *conf, const char *mosq_log)
{
    char text[6 * DEMO_PATH_MAX + 1024];
    /* Started as root, Mosquitto would drop to the user "mosquitto", who cannot read these. */
    const struct passwd *pw = getpwuid(geteuid());
    if (pw == NULL || pw->pw_name == NULL ||
        strspn(pw->pw_name, USER_CHARS) != strlen(pw->pw_name)) {
        return ts_error_set(TS_ERR_INVALID, "cannot name the current user for Mosquitto's conf");
    }
    const char *user = pw->pw_name;
    int n = snprintf(text, sizeof text,
                     "# Written by tessera demo: Mosquitto with the Tessera plugin on loopback.\n"
                     "# Run as the demo's own user, so it can read the files below.\n"
                     "user %s\n"
                     "persistence false\n"
                     "log_dest file %s\n"
                     "log_type error\nlog_type warning\nlog_type notice\nlog_type information\n"
                     "connection_messages true\n"
                     "allow_anonymous false\n"
                     "# Without it CONNACK waits behind the TLS 1.3 session tickets.\n"
                     "set_tcp_nodelay true\n"
                     "\n"
                     "listener %d 127.0.0.1\n"
                     "certfile %s/broker-chain.pem\n"
                     "keyfile %s/broker.key\n"
                     "# Clients must present a certificate of the instance's CAs. Never\n"
                     "# use_identity_as_username: it would skip the plugin's checks.\n"
                     "cafile %s/cafile.pem\n"
                     "require_certificate true\n"
                     "\n"
                     "plugin %s\n"
                     "plugin_opt_service_url %s\n"
                     "plugin_opt_token_file %s/token\n"
                     "plugin_opt_trust %s\n"
                     "plugin_opt_cache %s/plugin-cache\n"
                     "plugin_opt_refresh 1\n"
                     "plugin_opt_service_cert %s\n",
                     user, mosq_log, d->mqtt_port, d->broker_dir, d->broker_dir, d->broker_dir,
                     d->plugin, d->url, d->broker_dir, d->root_pem, d->broker_dir, d->client_pem);
    if (n < 0 || (size_t)n >= sizeof text) {
        return ts_error_set(TS_ERR_INVALID, "the Mosquitto configuration is too long");
    }
    return ts_file_write_atomic(conf, (const uint8_t *)text, (size_t)n, 0600);
}

/* Whether Mosquitto's log has its "mosquitto version X running" line. */
static int broker_running(const char *log)
{
    long offset = 0;
    char line[DEMO_LINE_MAX];
    while (demo_log_find(log, &offset, "", line, sizeof line)) {
        size_t len = strlen(line);
        if (strstr(line, "mosquitto version ") != NULL && len > 8 &&
            strcmp(line + len - 8, " running") == 0) {
            return 1;
        }
    }
    return 0;
}

ts_err demo_step_mosquitto(demo *d)
{
    char conf[DEMO_PATH_MAX], out[DEMO_PATH_MAX], mosq_log[DEMO_PATH_MAX];
    if (access(d->plugin, R_OK) != 0) {
        return ts_error_set(TS_ERR_NOT_FOUND,
                            "unavailable: the broker plugin %s is not built (build the "
                            "tessera_mosquitto target)",
                            d->plugin);
    }
    if (access(d->mosquitto, X_OK) != 0) {
        return ts_error_set(TS_ERR_NOT_FOUND,
                            "no Mosquitto at %s (apt-get install mosquitto, or set "
                            "TS_DEMO_MOSQUITTO)",
                            d->mosquitto);
    }
    ts_err rv = demo_path(d, conf, "broker/mosquitto.conf");
    if (rv == TS_OK) {
        rv = demo_path(d, out, "logs/mosquitto.out");
    }
    if (rv == TS_OK) {
        rv = demo_path(d, mosq_log, "logs/mosquitto.log");
    }
    if (rv == TS_OK) {
        rv = write_conf(d, conf, mosq_log);
    }
    if (rv != TS_OK) {
        return rv;
    }
    const char *argv[] = {d->mosquitto, "-c", conf, NULL};
    rv = demo_proc_start(&d->mosquitto_proc, "mosquitto", out, argv);
    if (rv != TS_OK) {
        return rv;
    }
    long long deadline = demo_now_ms() + LISTEN_WAIT_MS;
    /* Mosquitto says "running" once its listeners are open (a probe connection would only add
     * a failed handshake to its log). */
    while (!broker_running(mosq_log)) {
        int running = demo_proc_running(&d->mosquitto_proc);
        if (!running || demo_now_ms() >= deadline) {
            char how[96];
            /* Its own log says why, when it got that far; else what it printed. */
            snprintf(d->fail_log, sizeof d->fail_log, "%s",
                     demo_log_size(mosq_log) > 0 ? mosq_log : out);
            if (!running) {
                demo_proc_exit_text(&d->mosquitto_proc, how, sizeof how);
                return ts_error_set(TS_ERR_BACKEND, "%s %s before listening on 127.0.0.1:%d",
                                    d->mosquitto, how, d->mqtt_port);
            }
            return ts_error_set(TS_ERR_BACKEND, "%s did not listen on 127.0.0.1:%d within %d s",
                                d->mosquitto, d->mqtt_port, LISTEN_WAIT_MS / 1000);
        }
        if (demo_sleep_ms(50) != 0) {
            return ts_error_set(TS_ERR_STATE, "interrupted");
        }
    }
    printf(DEMO_IND "%-13s 127.0.0.1:%d, mutual TLS (require_certificate), no anonymous "
                    "clients (pid %d)\n",
           "listener", d->mqtt_port, (int)d->mosquitto_proc.pid);
    printf(DEMO_IND "%-13s %s, following %s every second\n", "plugin", d->plugin, d->url);
    printf(DEMO_IND "%-13s broker/mosquitto.conf\n", "configuration");
    return TS_OK;
}

/* --- 6. the observer ----------------------------------------------------------------------- */

ts_err demo_step_observer(demo *d)
{
    ts_err rv = demo_path(d, d->fail_log, "logs/mosquitto.log");
    if (rv != TS_OK) {
        return rv;
    }
    rv = demo_observer_start(d->mqtt_port, d->keystore, d->client_pem, d->root_pem, &d->observer);
    if (rv != TS_OK) {
        return rv;
    }
    d->fail_log[0] = '\0';
    printf(DEMO_IND "%-13s the service's certificate, its key used inside the instance key "
                    "store\n",
           "identity");
    printf(DEMO_IND "%-13s tessera/+/+/telemetry and tessera/+/+/status\n", "subscribed");
    return TS_OK;
}
