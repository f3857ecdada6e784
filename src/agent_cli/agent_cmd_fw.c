/*
 * tessera-agent fw setup|apply|confirm|status (docs/firmware-device.md). The fw command parses
 * its own options: its words come first on the command line (tessera-agent fw apply FILE ...).
 *
 * Exit status: 0 success, 1 failure or refusal (the message says why), 2 usage.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "agent/agent_fw.h"
#include "agent/agent_internal.h"
#include "agent_cli/agent_cli.h"
#include "agent_cli/agent_cmd_fw.h"

static const char fw_usage[] =
    "usage: tessera-agent fw setup --slot-a PATH --slot-b PATH --hw HWID [--attempts N]\n"
    "                              [--roots ROOTS.pem [--replace-roots]] --keystore URI --state "
    "DIR\n"
    "       tessera-agent fw apply FILE|URL [--trust FILE] [--timeout S] [--sha256 HEX]\n"
    "                              [--chunk-size BYTES] --keystore URI --state DIR\n"
    "       tessera-agent fw confirm --keystore URI --state DIR\n"
    "       tessera-agent fw status --keystore URI --state DIR\n";

typedef struct fw_args {
    const char *keystore;
    const char *state;
    agent_fw_setup_opts setup;
    agent_fw_apply_opts apply;
    const char *verb;
    const char *operand;
} fw_args;

static int fw_setup(ts_agent *agent, const fw_args *a)
{
    int roots_changed = 0;
    if (agent_fw_setup(agent, a->state, &a->setup, &roots_changed) != TS_OK) {
        return agent_fail();
    }
    printf("firmware slots set up%s\n", roots_changed ? "; firmware roots pinned" : "");
    return AGENT_EXIT_OK;
}

static int fw_apply(ts_agent *agent, const fw_args *a)
{
    agent_fw_result res;
    if (agent_fw_apply(agent, a->operand, &a->apply, &res) != TS_OK) {
        return agent_fail();
    }
    printf("applied: version %" PRIu64 " to slot %c (pending; reboot to try it)\n", res.version,
           fw_slot_name(res.slot));
    return AGENT_EXIT_OK;
}

static int fw_confirm(ts_agent *agent, const fw_args *a)
{
    agent_fw_result res;
    if (agent_fw_confirm(agent, a->state, &res) != TS_OK) {
        return agent_fail();
    }
    printf("confirmed: version %" PRIu64 " in slot %c (counter %" PRIu64 " -> %" PRIu64 ")\n",
           res.version, fw_slot_name(res.slot), res.previous,
           res.version > res.previous ? res.version : res.previous);
    return AGENT_EXIT_OK;
}

static const char *slot_word(int slot)
{
    return slot == 0 ? "a" : slot == 1 ? "b" : "none";
}

static int fw_status(ts_agent *agent, const fw_args *a)
{
    fw_conf conf;
    fw_state st;
    uint64_t counter = 0;
    if (agent_fw_status(agent, a->state, &conf, &st, &counter) != TS_OK) {
        return agent_fail();
    }
    printf("hw=%s\n", conf.hw);
    printf("slot.a=%s\nslot.b=%s\n", conf.slot[0], conf.slot[1]);
    printf("active=%s\npending=%s\nbooted=%s\n", slot_word(st.active), slot_word(st.pending),
           slot_word(st.booted));
    printf("attempts=%u\nmax_attempts=%u\nconfirmed=%s\n", st.attempts, st.max_attempts,
           st.confirmed ? "yes" : "no");
    for (int i = 0; i < FW_SLOTS; i++) {
        printf("version.%c=%" PRIu64 "\nseq.%c=%" PRIu64 "\n", fw_slot_name(i), st.slot[i].version,
               fw_slot_name(i), st.slot[i].seq);
    }
    printf("counter=%" PRIu64 "\ngeneration=%" PRIu64 "\n", counter, st.generation);
    return AGENT_EXIT_OK;
}

static int number(const char *text, unsigned long max, unsigned long *out, const char *what)
{
    char *end = NULL;
    unsigned long v = strtoul(text, &end, 10);
    if (text[0] < '0' || text[0] > '9' || *end != '\0' || v < 1 || v > max) {
        return agent_usage("%s must be a number from 1 to %lu, not '%s'", what, max, text);
    }
    *out = v;
    return AGENT_EXIT_OK;
}

static int parse(int argc, char **argv, fw_args *a)
{
    enum {
        O_KS = 256,
        O_STATE,
        O_A,
        O_B,
        O_HW,
        O_ATT,
        O_ROOTS,
        O_REPL,
        O_TRUST,
        O_TIMEOUT,
        O_SHA,
        O_CHUNK,
        O_HELP
    };
    static const struct option opts[] = {
        {"keystore", required_argument, NULL, O_KS},
        {"state", required_argument, NULL, O_STATE},
        {"slot-a", required_argument, NULL, O_A},
        {"slot-b", required_argument, NULL, O_B},
        {"hw", required_argument, NULL, O_HW},
        {"attempts", required_argument, NULL, O_ATT},
        {"roots", required_argument, NULL, O_ROOTS},
        {"replace-roots", no_argument, NULL, O_REPL},
        {"trust", required_argument, NULL, O_TRUST},
        {"timeout", required_argument, NULL, O_TIMEOUT},
        {"sha256", required_argument, NULL, O_SHA},
        {"chunk-size", required_argument, NULL, O_CHUNK},
        {"help", no_argument, NULL, O_HELP},
        {NULL, 0, NULL, 0},
    };
    unsigned long v = 0;
    int c;

    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
        switch (c) {
        case O_KS:
            a->keystore = optarg;
            break;
        case O_STATE:
            a->state = optarg;
            break;
        case O_A:
            a->setup.slot_a = optarg;
            break;
        case O_B:
            a->setup.slot_b = optarg;
            break;
        case O_HW:
            a->setup.hw = optarg;
            break;
        case O_ROOTS:
            a->setup.roots_file = optarg;
            break;
        case O_REPL:
            a->setup.replace_roots = 1;
            break;
        case O_TRUST:
            a->apply.trust_file = optarg;
            break;
        case O_SHA:
            a->apply.sha256 = optarg;
            break;
        case O_ATT:
            if (number(optarg, FW_ATTEMPTS_MAX, &v, "--attempts") != AGENT_EXIT_OK) {
                return AGENT_EXIT_USAGE;
            }
            a->setup.attempts = (unsigned)v;
            break;
        case O_TIMEOUT:
            if (number(optarg, 3600, &v, "--timeout") != AGENT_EXIT_OK) {
                return AGENT_EXIT_USAGE;
            }
            a->apply.timeout = (long)v;
            break;
        case O_CHUNK:
            if (number(optarg, 16UL * 1024 * 1024, &v, "--chunk-size") != AGENT_EXIT_OK) {
                return AGENT_EXIT_USAGE;
            }
            a->apply.read_size = v;
            break;
        case O_HELP:
            fputs(fw_usage, stdout);
            return -1;
        case ':':
            return agent_usage("%s needs a value", argv[optind - 1]);
        default:
            return agent_usage("unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind >= argc) {
        fputs(fw_usage, stderr);
        return AGENT_EXIT_USAGE;
    }
    a->verb = argv[optind++];
    if (strcmp(a->verb, "apply") == 0) {
        if (optind != argc - 1) {
            return agent_usage("fw apply takes one FILE or URL");
        }
        a->operand = argv[optind];
    } else if (optind < argc) {
        return agent_usage("fw %s takes no operand ('%s')", a->verb, argv[optind]);
    }
    if (a->keystore == NULL || a->state == NULL) {
        return agent_usage("fw %s needs --keystore URI and --state DIR", a->verb);
    }
    a->apply.state_dir = a->state;
    return AGENT_EXIT_OK;
}

int agent_cmd_fw(int argc, char **argv)
{
    static const struct {
        const char *name;
        int (*run)(ts_agent *, const fw_args *);
    } verbs[] = {
        {"setup", fw_setup}, {"apply", fw_apply}, {"confirm", fw_confirm}, {"status", fw_status}};
    fw_args a;
    ts_agent *agent = NULL;
    int status;

    memset(&a, 0, sizeof a);
    status = parse(argc, argv, &a);
    if (status != AGENT_EXIT_OK) {
        return status < 0 ? AGENT_EXIT_OK : status;
    }
    for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++) {
        if (strcmp(a.verb, verbs[i].name) != 0) {
            continue;
        }
        /* confirm and status touch only the boot state (under fw.lock) and key-store counters,
         * so they do not wait for a running agent's lock. */
        int shared = strcmp(a.verb, "confirm") == 0 || strcmp(a.verb, "status") == 0;
        if ((shared ? agent_open_unlocked(a.keystore, a.state, &agent)
                    : ts_agent_open(a.keystore, a.state, &agent)) != TS_OK) {
            return agent_fail();
        }
        status = verbs[i].run(agent, &a);
        ts_agent_free(agent);
        return status;
    }
    return agent_usage("unknown fw command '%s' (setup, apply, confirm, status)", a.verb);
}
