/*
 * tessera serve: the trust service over HTTPS (and plain HTTP for CRLs and OCSP) until SIGTERM.
 * It prints "listening https HOST:PORT" (and "listening http HOST:PORT") once the ports are bound;
 * logs go to standard error. docs/serve.md is the operations guide.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli_instance.h"
#include "tessera/commands.h"
#include "tessera/service.h"

enum { SVC_THREADS_CLI_MAX = 64 };

const cli_opt cli_serve_opts[] = {
    CLI_OPT_DIR,
    {.name = "listen", .value = "HOST:PORT", .help = "HTTPS address (default 127.0.0.1:8443)"},
    {.name = "http-listen",
     .value = "HOST:PORT",
     .help = "also serve CRLs and OCSP over plain HTTP here"},
    {.name = "db", .value = "URL", .help = "another database than the instance's own"},
    {.name = "threads", .value = "N", .help = "worker threads (default: four per CPU, at most 32)"},
    {.name = "max-header", .value = "BYTES", .help = "largest request head (default 8192)"},
    {.name = "max-body", .value = "BYTES", .help = "largest request body (default 262144)"},
    {.name = "idle-timeout", .value = "SECONDS", .help = "keep-alive without a request (30)"},
    {.name = "request-timeout", .value = "SECONDS", .help = "to receive a whole request (10)"},
    {.name = "shutdown-grace",
     .value = "SECONDS",
     .help = "on SIGTERM, wait this long for requests in flight (30)"},
    {.name = "mqtt",
     .value = "HOST:PORT",
     .help = "publish signed commands and take results through this MQTT broker (TLS)"},
    {.name = "mqtt-trust",
     .value = "FILE",
     .help = "PEM CA certificate(s) that verify the broker (default: the instance's CAs)"},
    {0},
};

/*
 * SIGTERM and SIGINT outside ts_service_run() (which watches them itself): while starting, they
 * stop the service as soon as it exists; after it stopped, they are ignored, so a second SIGTERM
 * during the final cleanup cannot turn a clean exit into a kill.
 */
static volatile sig_atomic_t stop_requested;
static ts_service *volatile running;

static void on_stop_signal(int sig)
{
    stop_requested = 1;
    ts_service *service = running;
    if (service != NULL) {
        ts_service_stop(service);
    }
}

static void catch_stop_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
}

static void block_stop_signals(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigprocmask(SIG_BLOCK, &set, NULL);
}

/* A number option within [min, max]; 0 when absent (the service's default). */
static int number_opt(const cli_args *args, const char *name, uint64_t min, uint64_t max,
                      uint64_t *out)
{
    const char *text = cli_opt_value(args, name);
    *out = 0;
    if (text == NULL) {
        return 0;
    }
    if (cli_parse_u64(text, out) != 0 || *out < min || *out > max) {
        cli_usage_error(args, "--%s: a number from %llu to %llu", name, (unsigned long long)min,
                        (unsigned long long)max);
        return -1;
    }
    return 0;
}

/* "HOST:PORT" as printed: an IPv6 host in brackets. */
static void print_listening(const char *scheme, const char *listen, unsigned port)
{
    const char *colon = strrchr(listen, ':');
    int hlen = colon != NULL ? (int)(colon - listen) : 0;
    printf("listening %s %.*s:%u\n", scheme, hlen, listen, port);
}

int cli_serve_run(const cli_args *args)
{
    uint64_t threads, header, body, idle, request, grace;
    if (number_opt(args, "threads", 1, SVC_THREADS_CLI_MAX, &threads) != 0 ||
        number_opt(args, "max-header", 1024, 1U << 20, &header) != 0 ||
        number_opt(args, "max-body", 1, 64U << 20, &body) != 0 ||
        number_opt(args, "idle-timeout", 1, 3600, &idle) != 0 ||
        number_opt(args, "request-timeout", 1, 3600, &request) != 0 ||
        number_opt(args, "shutdown-grace", 1, 3600, &grace) != 0) {
        return CLI_EXIT_USAGE;
    }
    /* --mqtt HOST:PORT: the host may be [v6]. */
    const char *mqtt = cli_opt_value(args, "mqtt");
    char mqtt_host[256] = "";
    uint64_t mqtt_port = 0;
    if (mqtt != NULL) {
        const char *colon = strrchr(mqtt, ':');
        size_t hlen = colon != NULL ? (size_t)(colon - mqtt) : 0;
        if (hlen >= 2 && mqtt[0] == '[' && mqtt[hlen - 1] == ']') {
            mqtt++;
            hlen -= 2;
        }
        if (colon == NULL || hlen == 0 || hlen >= sizeof mqtt_host ||
            cli_parse_u64(colon + 1, &mqtt_port) != 0 || mqtt_port < 1 || mqtt_port > 65535) {
            return cli_usage_error(args, "--mqtt: HOST:PORT");
        }
        memcpy(mqtt_host, mqtt, hlen);
        mqtt_host[hlen] = '\0';
    } else if (cli_opt_given(args, "mqtt-trust")) {
        return cli_usage_error(args, "--mqtt-trust goes with --mqtt");
    }
    ts_service_config config = {
        .dir = cli_instance_dir(args),
        .listen = cli_opt_value(args, "listen"),
        .http_listen = cli_opt_value(args, "http-listen"),
        .db_url = cli_opt_value(args, "db"),
        .threads = (unsigned)threads,
        .max_header_bytes = (size_t)header,
        .max_body_bytes = (size_t)body,
        .idle_timeout_s = (unsigned)idle,
        .request_timeout_s = (unsigned)request,
        .shutdown_grace_s = (unsigned)grace,
    };
    catch_stop_signals();
    ts_service *service = NULL;
    if (ts_service_new(&config, &service) != TS_OK) {
        return cli_fail();
    }
    running = service;
    ts_service_mqtt *mq = NULL;
    if (mqtt != NULL) {
        ts_service_mqtt_config mc = {.dir = config.dir,
                                     .db_url = config.db_url,
                                     .host = mqtt_host,
                                     .port = (unsigned)mqtt_port,
                                     .trust_file = cli_opt_value(args, "mqtt-trust")};
        if (ts_service_mqtt_start(&mc, &mq) != TS_OK) {
            running = NULL;
            ts_service_free(service);
            return cli_fail();
        }
    }
    print_listening("https", config.listen != NULL ? config.listen : "127.0.0.1:8443",
                    ts_service_port(service, 1));
    if (config.http_listen != NULL) {
        print_listening("http", config.http_listen, ts_service_port(service, 0));
    }
    if (mq != NULL) {
        printf("mqtt %s:%u\n", mqtt_host, (unsigned)mqtt_port);
    }
    fflush(stdout);
    if (stop_requested) {
        ts_service_stop(service);
    }
    ts_err rv = ts_service_run(service);
    /* Only this thread is left: no handler may touch the service while it is freed. */
    block_stop_signals();
    running = NULL;
    ts_service_mqtt_stop(mq);
    ts_service_free(service);
    return rv == TS_OK ? CLI_EXIT_OK : cli_fail();
}
