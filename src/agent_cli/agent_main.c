/*
 * tessera-agent: the device agent's command line. Options are parsed here, once, for every
 * command; each command is a function in agent_cmd.c, picked from a table.
 *
 * Exit status: 0 success, 1 failure (the message says what failed and why), 2 usage.
 */
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent_cli/agent_cli.h"
#include "agent_cli/agent_cmd_fw.h"

static const char usage_text[] =
    "usage: tessera-agent COMMAND --keystore URI --state DIR [options]\n"
    "\n"
    "commands:\n"
    "  init [--uid UID]            make the identity key and print the device UID\n"
    "  claim inject FILE           store the claim code read from FILE ('-': standard input)\n"
    "  claim delete                remove the stored claim code\n"
    "  enroll                      EST simpleenroll: by --factory-cert, else by the claim code\n"
    "  reenroll [--force] [--threshold-days N] [--rekey]\n"
    "                              EST simplereenroll with the current certificate when due;\n"
    "                              --rekey certifies a new key made in the key store\n"
    "  status [--trust FILE]       show and check the current identity\n"
    "  rtp HOST PORT               offline provisioning: take and import this device's bundles\n"
    "  sync [--server URL] [--trust FILE]\n"
    "                              a provisioning session: report, then run the service's "
    "requests\n"
    "  run [--mqtt HOST:PORT] [--trust FILE] [--server URL] [--tenant T] [--interval S]\n"
    "      [--count N] [--queue N] [--telemetry-cmd PROGRAM] [--threshold-days N]\n"
    "                              MQTT over mutual TLS: telemetry, status and signed commands\n"
    "  fw setup|apply|confirm|status ...\n"
    "                              firmware slots and updates (tessera-agent fw --help)\n"
    "\n"
    "options:\n"
    "  --keystore URI              the key store (soft:DIR or pkcs11:...)\n"
    "  --state DIR                 the agent's state directory\n"
    "  --server URL                the trust service, https://HOST:PORT (default: the\n"
    "                              datastore's server.url)\n"
    "  --tenant NAME               the service's tenant (default: the service's default)\n"
    "  --trust FILE                PEM root certificates the service must chain to (default:\n"
    "                              the datastore's trust.roots)\n"
    "  --factory-cert FILE         PEM factory certificate (then its chain) for mutual TLS\n"
    "  --factory-key LABEL         its key in the key store (default: identity)\n"
    "  --timeout SECONDS           for one EST exchange (default 30)\n"
    "  --tls12                     EST over TLS 1.2 at most (default: TLS 1.3 when offered)\n"
    "  --mqtt HOST:PORT            the MQTT broker (default: the datastore's, else "
    "localhost:8883)\n"
    "  --interval SECONDS          between telemetry messages (default 10; 0: as fast as "
    "possible)\n"
    "  --count N                   exit after N telemetry messages were acknowledged\n"
    "  --queue N                   telemetry messages kept while disconnected (default 256)\n"
    "  --telemetry-cmd PROGRAM     telemetry from PROGRAM's output (one JSON object)\n";

int agent_usage(const char *fmt, ...)
{
    va_list ap;
    fputs("tessera-agent: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\n(tessera-agent --help for usage)\n", stderr);
    return AGENT_EXIT_USAGE;
}

int agent_fail(void)
{
    fprintf(stderr, "tessera-agent: %s\n", ts_error_message());
    return AGENT_EXIT_FAIL;
}

static int parse_number(const char *text, long min, long max, long *out, const char *what)
{
    char *end = NULL;
    long v = strtol(text, &end, 10);
    if (text[0] == '\0' || *end != '\0' || v < min || v > max) {
        return agent_usage("%s must be a number from %ld to %ld, not '%s'", what, min, max, text);
    }
    *out = v;
    return AGENT_EXIT_OK;
}

static const agent_cmd commands[] = {
    {"init", 0, agent_cmd_init},     {"claim", 1, agent_cmd_claim},
    {"enroll", 0, agent_cmd_enroll}, {"reenroll", 0, agent_cmd_reenroll},
    {"status", 0, agent_cmd_status}, {"rtp", 1, agent_cmd_rtp},
    {"sync", 0, agent_cmd_sync},     {"run", 0, agent_cmd_run},
};

int main(int argc, char **argv)
{
    enum {
        O_KEYSTORE = 256,
        O_STATE,
        O_SERVER,
        O_TENANT,
        O_TRUST,
        O_FCERT,
        O_FKEY,
        O_TIMEOUT,
        O_FORCE,
        O_THRESHOLD,
        O_UID,
        O_MQTT,
        O_INTERVAL,
        O_COUNT,
        O_QUEUE,
        O_TELCMD,
        O_REKEY,
        O_TLS12,
        O_HELP
    };
    static const struct option longopts[] = {
        {"keystore", required_argument, NULL, O_KEYSTORE},
        {"state", required_argument, NULL, O_STATE},
        {"server", required_argument, NULL, O_SERVER},
        {"tenant", required_argument, NULL, O_TENANT},
        {"trust", required_argument, NULL, O_TRUST},
        {"factory-cert", required_argument, NULL, O_FCERT},
        {"factory-key", required_argument, NULL, O_FKEY},
        {"timeout", required_argument, NULL, O_TIMEOUT},
        {"force", no_argument, NULL, O_FORCE},
        {"threshold-days", required_argument, NULL, O_THRESHOLD},
        {"uid", required_argument, NULL, O_UID},
        {"mqtt", required_argument, NULL, O_MQTT},
        {"interval", required_argument, NULL, O_INTERVAL},
        {"count", required_argument, NULL, O_COUNT},
        {"queue", required_argument, NULL, O_QUEUE},
        {"telemetry-cmd", required_argument, NULL, O_TELCMD},
        {"rekey", no_argument, NULL, O_REKEY},
        {"tls12", no_argument, NULL, O_TLS12},
        {"help", no_argument, NULL, O_HELP},
        {NULL, 0, NULL, 0},
    };
    agent_args a;
    long v;
    int c;

    if (argc > 1 && strcmp(argv[1], "fw") == 0) {
        return agent_cmd_fw(argc - 1, argv + 1);
    }
    memset(&a, 0, sizeof a);
    a.interval = -1;
    /* '+' would stop at the first operand; GNU permutation lets options follow the command. */
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":", longopts, NULL)) != -1) {
        switch (c) {
        case O_KEYSTORE:
            a.keystore = optarg;
            break;
        case O_STATE:
            a.state = optarg;
            break;
        case O_SERVER:
            a.est.server = optarg;
            break;
        case O_TENANT:
            a.est.tenant = optarg;
            break;
        case O_TRUST:
            a.est.trust_file = optarg;
            break;
        case O_FCERT:
            a.est.factory_cert = optarg;
            break;
        case O_FKEY:
            a.est.factory_key = optarg;
            break;
        case O_TIMEOUT:
            if (parse_number(optarg, 1, 3600, &v, "--timeout") != AGENT_EXIT_OK) {
                return AGENT_EXIT_USAGE;
            }
            a.est.timeout = v;
            break;
        case O_FORCE:
            a.force = 1;
            break;
        case O_THRESHOLD:
            if (parse_number(optarg, 1, 3650, &v, "--threshold-days") != AGENT_EXIT_OK) {
                return AGENT_EXIT_USAGE;
            }
            a.threshold_days = (unsigned)v;
            break;
        case O_UID:
            a.uid = optarg;
            break;
        case O_MQTT:
            a.mqtt = optarg;
            break;
        case O_INTERVAL:
            if (parse_number(optarg, 0, 86400, &v, "--interval") != AGENT_EXIT_OK) {
                return AGENT_EXIT_USAGE;
            }
            a.interval = v;
            break;
        case O_COUNT:
            if (parse_number(optarg, 1, 1000000000L, &v, "--count") != AGENT_EXIT_OK) {
                return AGENT_EXIT_USAGE;
            }
            a.count = (unsigned long long)v;
            break;
        case O_QUEUE:
            if (parse_number(optarg, 1, TS_AGENT_RUN_QUEUE_MAX, &v, "--queue") != AGENT_EXIT_OK) {
                return AGENT_EXIT_USAGE;
            }
            a.queue = (size_t)v;
            break;
        case O_TELCMD:
            a.telemetry_cmd = optarg;
            break;
        case O_REKEY:
            a.est.rekey = 1;
            break;
        case O_TLS12:
            a.est.tls12_only = 1;
            break;
        case O_HELP:
            fputs(usage_text, stdout);
            return AGENT_EXIT_OK;
        case ':':
            return agent_usage("%s needs a value", argv[optind - 1]);
        default:
            return agent_usage("unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind >= argc) {
        fputs(usage_text, stderr);
        return AGENT_EXIT_USAGE;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        if (strcmp(argv[optind], commands[i].name) != 0) {
            continue;
        }
        a.operands = (const char *const *)argv + optind + 1;
        a.operand_count = (size_t)(argc - optind - 1);
        if (a.keystore == NULL) {
            return agent_usage("%s needs --keystore URI", commands[i].name);
        }
        if (a.state == NULL) {
            return agent_usage("%s needs --state DIR", commands[i].name);
        }
        if (!commands[i].takes_operands && a.operand_count > 0) {
            return agent_usage("%s takes no operand ('%s')", commands[i].name, a.operands[0]);
        }
        return commands[i].run(&a);
    }
    return agent_usage("unknown command '%s'", argv[optind]);
}
