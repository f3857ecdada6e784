/*
 * The demo's device side: each device gets its own soft: key store and is onboarded by claim
 * code with tessera-agent, then runs `tessera-agent run` (MQTT over mutual TLS with its key-store
 * key); a signed command goes to one device, and one device's certificate is revoked.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "cli/cli_demo.h"
#include "common/error_internal.h"
#include "common/file_internal.h"
#include "common/text_internal.h"

#define HEX_CHARS "0123456789abcdefABCDEF"

enum {
    PIN_BYTES = 16,
    AGENT_ARGS_MAX = 32,
    CONNECT_WAIT_MS = 30000,
    TELEMETRY_WAIT_MS = 30000,
    TELEMETRY_WANT = 2,  /* messages from each device before the demo moves on */
    COMMAND_WAIT_S = 20, /* tessera device command --wait */
    AGENT_LINE_WAIT_MS = 10000,
    KICK_WAIT_MS = 30000,   /* the plugin follows the revocation feed every second */
    REFUSE_WAIT_MS = 45000, /* the agent's reconnect backoff comes first */
    OTHERS_WAIT_MS = 10000,
    CLAIM_MAX = DEMO_LINE_MAX + 2,
    SHOW_MAX = 80, /* characters of a payload shown */
};

/* Runs `tessera-agent WORDS... --keystore URI --state DIR EXTRA...` for dev to its end. */
static ts_err agent_run(demo *d, demo_device *dev, const char *step, const char *const words[],
                        const char *const extra[])
{
    const char *argv[AGENT_ARGS_MAX];
    char log[DEMO_PATH_MAX], what[64] = "";
    size_t n = 0;
    int code = 0;

    argv[n++] = d->agent;
    for (size_t i = 0; words[i] != NULL && n < 8; i++) {
        size_t used = strlen(what);
        snprintf(what + used, sizeof what - used, " %s", words[i]);
        argv[n++] = words[i];
    }
    argv[n++] = "--keystore";
    argv[n++] = dev->keystore;
    argv[n++] = "--state";
    argv[n++] = dev->state;
    for (size_t i = 0; extra != NULL && extra[i] != NULL && n + 1 < AGENT_ARGS_MAX; i++) {
        argv[n++] = extra[i];
    }
    argv[n] = NULL;
    ts_err rv = demo_path(d, log, "logs/%s-%s.log", dev->name, step);
    if (rv != TS_OK) {
        return rv;
    }
    snprintf(d->fail_log, sizeof d->fail_log, "%s", log);
    rv = demo_run("tessera-agent", log, DEMO_RUN_TIMEOUT_S, argv, &code);
    if (rv != TS_OK) {
        return ts_error_prefix(rv, "%s", dev->name);
    }
    if (code != 0) {
        return ts_error_set(TS_ERR_BACKEND, "%s: tessera-agent%s exited with status %d", dev->name,
                            what, code);
    }
    d->fail_log[0] = '\0';
    return TS_OK;
}

/* The line of log that is only hex digits (the UID tessera-agent init prints). */
static int hex_line(const char *log, char *out, size_t size)
{
    long offset = 0;
    char line[DEMO_LINE_MAX];
    int found = 0;
    while (demo_log_find(log, &offset, "", line, sizeof line)) {
        size_t len = strlen(line);
        if (len >= 8 && len < size && strspn(line, HEX_CHARS) == len) {
            snprintf(out, size, "%s", line);
            found = 1;
        }
    }
    return found;
}

/* A claim code from the service, handed to the device's agent through a file it reads once. */
static ts_err claim(demo *d, demo_device *dev)
{
    char log[DEMO_PATH_MAX], code_file[DEMO_PATH_MAX], name[32], code[CLAIM_MAX];
    const char *create[] = {"claim", "create", "--dir", d->instance, "--expires", "1h", NULL};
    snprintf(name, sizeof name, "%s-claim", dev->name);
    ts_err rv = demo_path(d, log, "logs/%s.log", name);
    if (rv == TS_OK) {
        rv = demo_path(d, code_file, "devices/%s/claim-code", dev->name);
    }
    if (rv == TS_OK) {
        rv = demo_tessera(d, name, create);
    }
    if (rv != TS_OK) {
        return rv;
    }
    long offset = 0;
    char line[DEMO_LINE_MAX];
    int found = 0;
    while (demo_log_find(log, &offset, "", line, sizeof line)) {
        if (line[0] != '\0') {
            snprintf(code, sizeof code, "%s\n", line);
            found = 1;
        }
    }
    OPENSSL_cleanse(line, sizeof line);
    remove(log); /* the code is a secret until used */
    if (!found) {
        return ts_error_set(TS_ERR_CORRUPT, "tessera claim create printed no code");
    }
    rv = ts_file_write_atomic(code_file, (const uint8_t *)code, strlen(code), 0600);
    OPENSSL_cleanse(code, sizeof code);
    if (rv != TS_OK) {
        return rv;
    }
    const char *inject[] = {"claim", "inject", code_file, NULL};
    rv = agent_run(d, dev, "claim", inject, NULL);
    remove(code_file);
    return rv;
}

static ts_err onboard_one(demo *d, demo_device *dev, unsigned index)
{
    char pin[2 * PIN_BYTES + 1], so_pin[2 * PIN_BYTES + 1], log[DEMO_PATH_MAX];
    snprintf(dev->name, sizeof dev->name, "dev-%u", index + 1);
    ts_err rv = demo_path(d, dev->dir, "devices/%s", dev->name);
    if (rv == TS_OK) {
        rv = demo_path(d, dev->state, "devices/%s/state", dev->name);
    }
    if (rv == TS_OK && mkdir(dev->dir, 0700) != 0) {
        rv = ts_error_set(TS_ERR_IO, "cannot make %s: %s", dev->dir, strerror(errno));
    }
    if (rv == TS_OK) {
        rv = ts_random_hex(pin, PIN_BYTES);
    }
    if (rv == TS_OK) {
        rv = ts_random_hex(so_pin, PIN_BYTES);
    }
    if (rv != TS_OK) {
        return rv;
    }
    /* Built aside and copied: dev->dir and dev->keystore are parts of one object. */
    char uri[sizeof dev->keystore];
    int n = snprintf(uri, sizeof uri, "soft:%s/keys?pin-value=%s", dev->dir, pin);
    OPENSSL_cleanse(pin, sizeof pin);
    if (n >= 0 && (size_t)n < sizeof uri) {
        memcpy(dev->keystore, uri, (size_t)n + 1);
    }
    OPENSSL_cleanse(uri, sizeof uri);
    if (n < 0 || (size_t)n >= sizeof dev->keystore) {
        OPENSSL_cleanse(so_pin, sizeof so_pin);
        return ts_error_set(TS_ERR_INVALID, "the key store path is too long");
    }
    /* The device's secure element: a soft: store of its own. */
    char name[32];
    snprintf(name, sizeof name, "%s-keystore", dev->name);
    const char *ks_init[] = {"keystore", "init", "--keystore", dev->keystore,
                             "--so-pin", so_pin, NULL};
    rv = demo_tessera(d, name, ks_init);
    OPENSSL_cleanse(so_pin, sizeof so_pin);
    if (rv != TS_OK) {
        return ts_error_prefix(rv, "%s", dev->name);
    }
    /* The identity key, made inside the store; the agent prints the device UID. */
    const char *init[] = {"init", NULL};
    rv = agent_run(d, dev, "init", init, NULL);
    if (rv == TS_OK) {
        rv = demo_path(d, log, "logs/%s-init.log", dev->name);
    }
    if (rv != TS_OK) {
        return rv;
    }
    if (!hex_line(log, dev->uid, sizeof dev->uid)) {
        snprintf(d->fail_log, sizeof d->fail_log, "%s", log);
        return ts_error_set(TS_ERR_CORRUPT, "%s: tessera-agent init printed no UID", dev->name);
    }
    rv = claim(d, dev);
    if (rv != TS_OK) {
        return rv;
    }
    /* EST enrollment (RFC 7030) with the claim code; the service registers the device. */
    const char *enroll[] = {"enroll", NULL};
    const char *opts[] = {"--server", d->url, "--trust", d->root_pem, NULL};
    rv = agent_run(d, dev, "enroll", enroll, opts);
    if (rv == TS_OK) {
        rv = demo_path(d, log, "logs/%s-enroll.log", dev->name);
    }
    if (rv != TS_OK) {
        return rv;
    }
    if (!demo_log_value(log, "serial:", dev->serial, sizeof dev->serial)) {
        snprintf(d->fail_log, sizeof d->fail_log, "%s", log);
        return ts_error_set(TS_ERR_CORRUPT, "%s: tessera-agent enroll printed no serial",
                            dev->name);
    }
    dev->enrolled = 1;
    printf(DEMO_IND "%-6s uid %s  certificate %s\n", dev->name, dev->uid, dev->serial);
    fflush(stdout);
    return TS_OK;
}

ts_err demo_step_onboard(demo *d)
{
    char devices[DEMO_PATH_MAX];
    if (access(d->agent, X_OK) != 0) {
        return ts_error_set(TS_ERR_NOT_FOUND, "unavailable: no tessera-agent beside tessera (%s)",
                            d->agent);
    }
    ts_err rv = demo_path(d, devices, "devices");
    if (rv == TS_OK && mkdir(devices, 0700) != 0) {
        rv = ts_error_set(TS_ERR_IO, "cannot make %s: %s", devices, strerror(errno));
    }
    if (rv != TS_OK) {
        return rv;
    }
    printf(DEMO_IND "each: a soft: key store, an identity key made in it, a single-use claim "
                    "code,\n" DEMO_IND "EST enrollment with the code\n");
    for (unsigned i = 0; i < d->ndev; i++) {
        rv = onboard_one(d, &d->dev[i], i);
        if (rv != TS_OK) {
            return rv;
        }
    }
    return TS_OK;
}

/* --- telemetry ----------------------------------------------------------------------------- */

/* Whether tessera-agent has the `run` command (MQTT): its usage lists it. */
static ts_err agent_has_run(demo *d, int *has)
{
    char log[DEMO_PATH_MAX], line[DEMO_LINE_MAX];
    const char *argv[] = {d->agent, "--help", NULL};
    int code = 0;
    long offset = 0;
    *has = 0;
    ts_err rv = demo_path(d, log, "logs/agent-help.log");
    if (rv == TS_OK) {
        rv = demo_run("tessera-agent", log, DEMO_RUN_TIMEOUT_S, argv, &code);
    }
    if (rv != TS_OK) {
        return rv;
    }
    while (demo_log_find(log, &offset, "", line, sizeof line)) {
        if (strncmp(line + strspn(line, " "), "run ", 4) == 0) {
            *has = 1;
        }
    }
    return TS_OK;
}

static ts_err start_agent(demo *d, demo_device *dev)
{
    char log[DEMO_PATH_MAX], mqtt[32], name[32];
    snprintf(mqtt, sizeof mqtt, "127.0.0.1:%d", d->mqtt_port);
    snprintf(name, sizeof name, "agent %s", dev->name);
    ts_err rv = demo_path(d, log, "logs/%s-agent.log", dev->name);
    if (rv != TS_OK) {
        return rv;
    }
    const char *argv[] = {d->agent,     "run",    "--keystore", dev->keystore, "--state",
                          dev->state,   "--mqtt", mqtt,         "--trust",     d->root_pem,
                          "--interval", "1",      "--server",   d->url,        NULL};
    return demo_proc_start(&dev->agent, name, log, argv);
}

ts_err demo_step_telemetry(demo *d)
{
    char line[DEMO_LINE_MAX];
    int has = 0;
    ts_err rv = agent_has_run(d, &has);
    if (rv != TS_OK) {
        return rv;
    }
    if (!has) {
        return ts_error_set(TS_ERR_UNSUPPORTED,
                            "unavailable: this build's tessera-agent has no run command (MQTT "
                            "telemetry and signed commands)");
    }
    for (unsigned i = 0; i < d->ndev; i++) {
        demo_observer_watch(d->observer, d->dev[i].uid);
    }
    for (unsigned i = 0; i < d->ndev; i++) {
        rv = start_agent(d, &d->dev[i]);
        if (rv != TS_OK) {
            return rv;
        }
    }
    for (unsigned i = 0; i < d->ndev; i++) {
        demo_device *dev = &d->dev[i];
        long offset = 0;
        snprintf(d->fail_log, sizeof d->fail_log, "%s", dev->agent.log);
        rv = demo_log_wait(&dev->agent, &offset, "connected ", CONNECT_WAIT_MS, line, sizeof line);
        if (rv != TS_OK && !demo_interrupted &&
            demo_log_value(dev->agent.log, "refused by broker:", line, sizeof line)) {
            /* The broker's log says why it refused. */
            ts_err why = demo_path(d, d->fail_log, "logs/mosquitto.log");
            return why != TS_OK
                       ? why
                       : ts_error_set(TS_ERR_AUTH, "%s never connected: the broker refused it (%s)",
                                      dev->name, line);
        }
        if (rv != TS_OK) {
            return rv;
        }
        dev->connected = 1;
    }
    printf(DEMO_IND "%u agent%s connected to 127.0.0.1:%d, each with the key in its own store\n",
           d->ndev, d->ndev == 1 ? "" : "s", d->mqtt_port);
    /* Each device's first message as the service sees it, in the order they arrive. */
    int shown[DEMO_DEVICES_MAX] = {0};
    unsigned done = 0;
    long long deadline = demo_now_ms() + TELEMETRY_WAIT_MS;
    while (done < d->ndev) {
        done = 0;
        for (unsigned i = 0; i < d->ndev; i++) {
            demo_seen seen;
            demo_observer_seen(d->observer, d->dev[i].uid, &seen);
            if (seen.telemetry > 0 && !shown[i]) {
                shown[i] = 1;
                int cut = strlen(seen.first) > SHOW_MAX;
                printf(DEMO_IND "%-6s -> .../%.8s.../telemetry %.*s%s\n", d->dev[i].name,
                       d->dev[i].uid, cut ? SHOW_MAX - 3 : SHOW_MAX, seen.first, cut ? "..." : "");
                fflush(stdout);
            }
            done += seen.telemetry >= TELEMETRY_WANT;
        }
        if (done == d->ndev) {
            break;
        }
        if (demo_now_ms() >= deadline) {
            for (unsigned i = 0; i < d->ndev; i++) {
                demo_seen seen;
                demo_observer_seen(d->observer, d->dev[i].uid, &seen);
                if (seen.telemetry < TELEMETRY_WANT) {
                    snprintf(d->fail_log, sizeof d->fail_log, "%s", d->dev[i].agent.log);
                    return ts_error_set(TS_ERR_BACKEND,
                                        "the service saw %u telemetry message%s from %s within "
                                        "%d s, want %d",
                                        seen.telemetry, seen.telemetry == 1 ? "" : "s",
                                        d->dev[i].name, TELEMETRY_WAIT_MS / 1000, TELEMETRY_WANT);
                }
            }
        }
        if (demo_sleep_ms(50) != 0) {
            return ts_error_set(TS_ERR_STATE, "interrupted");
        }
    }
    d->fail_log[0] = '\0';
    printf(DEMO_IND "the service received telemetry from all %u device%s\n", d->ndev,
           d->ndev == 1 ? "" : "s");
    return TS_OK;
}

/* --- the signed command -------------------------------------------------------------------- */

ts_err demo_step_command(demo *d)
{
    demo_device *dev = &d->dev[0];
    char log[DEMO_PATH_MAX], line[DEMO_LINE_MAX], wait[16], prefix[64];
    const char *help[] = {"device", "command", "--help", NULL};
    ts_err rv = demo_tessera(d, "device-command-help", help);
    if (rv != TS_OK) {
        d->fail_log[0] = '\0';
        return ts_error_set(TS_ERR_UNSUPPORTED,
                            "unavailable: this build's tessera has no device command (signed "
                            "remote commands)");
    }
    snprintf(wait, sizeof wait, "%d", COMMAND_WAIT_S);
    long agent_offset = demo_log_size(dev->agent.log);
    const char *cmd[] = {"device", "command", "--dir", d->instance, dev->uid,
                         "ping",   "--wait",  wait,    NULL};
    rv = demo_path(d, log, "logs/device-command.log");
    if (rv != TS_OK) {
        return rv;
    }
    rv = demo_tessera(d, "device-command", cmd);
    long offset = 0;
    int sent = demo_log_find(log, &offset, "command ", line, sizeof line);
    if (sent) {
        /* "command ID seq N" */
        if (sscanf(line, "command %47s", d->command_id) != 1) {
            d->command_id[0] = '\0';
        }
        printf(DEMO_IND "%-9s ping to %s, signed by the tenant's command key: %s\n", "sent",
               dev->name, line);
    }
    if (rv != TS_OK) {
        return rv;
    }
    offset = 0;
    if (!demo_log_find(log, &offset, "done:", line, sizeof line)) {
        snprintf(d->fail_log, sizeof d->fail_log, "%s", log);
        return ts_error_set(TS_ERR_CORRUPT, "tessera device command printed no \"done:\" line");
    }
    const char *output = line + strlen("done:");
    snprintf(d->command_output, sizeof d->command_output, "%s", output + strspn(output, " "));
    /* The device's side: it checked the signature, the UID, the expiry and the sequence. */
    if (d->command_id[0] != '\0') {
        snprintf(prefix, sizeof prefix, "command %s", d->command_id);
        char agent_line[DEMO_LINE_MAX];
        if (demo_log_wait(&dev->agent, &agent_offset, prefix, AGENT_LINE_WAIT_MS, agent_line,
                          sizeof agent_line) == TS_OK) {
            printf(DEMO_IND "%-9s %s\n", "agent", agent_line);
        }
    }
    printf(DEMO_IND "%-9s %s (a result signed by the device's key)\n", "answer", line);
    dev->answered = 1;
    d->fail_log[0] = '\0';
    return TS_OK;
}

/* --- revocation ---------------------------------------------------------------------------- */

ts_err demo_step_revoke(demo *d)
{
    d->revoked = d->ndev - 1;
    demo_device *dev = &d->dev[d->revoked];
    demo_seen before, seen;
    unsigned others_before[DEMO_DEVICES_MAX] = {0};
    char line[DEMO_LINE_MAX];

    demo_observer_seen(d->observer, dev->uid, &before);
    for (unsigned i = 0; i < d->ndev; i++) {
        demo_seen s;
        demo_observer_seen(d->observer, d->dev[i].uid, &s);
        others_before[i] = s.telemetry;
    }
    long offset = demo_log_size(dev->agent.log);
    const char *revoke[] = {"cert",      "revoke",   "--dir",         d->instance, "--serial",
                            dev->serial, "--reason", "keyCompromise", NULL};
    ts_err rv = demo_tessera(d, "cert-revoke", revoke);
    if (rv != TS_OK) {
        return rv;
    }
    long long t0 = demo_now_ms();
    dev->revoked = 1;
    printf(DEMO_IND "%-9s %s's certificate %s (keyCompromise)\n", "revoked", dev->name,
           dev->serial);
    fflush(stdout);
    /* Kicked: the plugin sees the revocation in the service's feed and drops the session. */
    long kick_offset = offset;
    snprintf(d->fail_log, sizeof d->fail_log, "%s", dev->agent.log);
    rv = demo_log_wait(&dev->agent, &kick_offset, "disconnected", KICK_WAIT_MS, line, sizeof line);
    if (rv != TS_OK) {
        return ts_error_prefix(rv, "%s was not kicked", dev->name);
    }
    dev->kicked = 1;
    printf(DEMO_IND "%-9s after %.1f s, the agent says \"%s\"\n", "kicked",
           (double)(demo_now_ms() - t0) / 1000.0, line);
    /* Its will, published by the broker when the session ends, tells the service. */
    long long until = demo_now_ms() + AGENT_LINE_WAIT_MS;
    do {
        demo_observer_seen(d->observer, dev->uid, &seen);
    } while (seen.offline <= before.offline && demo_now_ms() < until && demo_sleep_ms(50) == 0);
    if (seen.offline > before.offline) {
        printf(DEMO_IND "%-9s the service sees %s's status: %s\n", "status", dev->name,
               seen.status);
    }
    fflush(stdout);
    /* Refused: its next connection fails the plugin's check. */
    long refuse_offset = offset;
    rv = demo_log_wait(&dev->agent, &refuse_offset, "refused by broker", REFUSE_WAIT_MS, line,
                       sizeof line);
    if (rv != TS_OK) {
        return ts_error_prefix(rv, "%s was not refused on reconnect", dev->name);
    }
    dev->refused = 1;
    printf(DEMO_IND "%-9s on reconnect, the agent says \"%s\"\n", "refused", line);
    d->fail_log[0] = '\0';
    /* The others are not affected. */
    if (d->ndev > 1) {
        unsigned moving = 0;
        until = demo_now_ms() + OTHERS_WAIT_MS;
        for (;;) {
            moving = 0;
            for (unsigned i = 0; i < d->ndev; i++) {
                demo_seen s;
                demo_observer_seen(d->observer, d->dev[i].uid, &s);
                moving += i != d->revoked && s.telemetry > others_before[i];
            }
            if (moving == d->ndev - 1 || demo_now_ms() >= until || demo_sleep_ms(50) != 0) {
                break;
            }
        }
        if (moving != d->ndev - 1) {
            return ts_error_set(TS_ERR_BACKEND,
                                "only %u of the other %u devices kept publishing after the "
                                "revocation",
                                moving, d->ndev - 1);
        }
        printf(DEMO_IND "%-9s the other %u device%s keep publishing\n", "others", d->ndev - 1,
               d->ndev == 2 ? "" : "s");
    }
    return TS_OK;
}
