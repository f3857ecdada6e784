/*
 * A small fleet of real agents for the broker benchmarks: each device gets a soft: key store, an
 * identity made by `tessera-agent init`, a claim code and an EST enrollment against the bench's
 * `tessera serve`; then `tessera-agent run --interval 0 --count M` publishes as fast as the
 * broker acknowledges. An observer with a service account's certificate counts what arrives.
 *
 * Header-only like bench_serve.h, which it needs first.
 */
#ifndef TS_BENCH_FLEET_H
#define TS_BENCH_FLEET_H

#include <mosquitto.h>

enum { BF_AGENTS_MAX = 16 };

typedef struct bf_agent {
    char ks[BS_PATH + 64];
    char state[BS_PATH];
    char log[BS_PATH];
    pid_t pid;
} bf_agent;

typedef struct bf_observer {
    unsigned long received;
    double first, last; /* bs_now() of the first and the last message */
    int subscribed;
} bf_observer;

/* Enrolls device i by claim code; 0 or -1 (its log says why). */
static int bf_enroll(const bs_env *e, const bs_server *s, const char *agent, int i, bf_agent *a)
{
    char name[64], code[BS_PATH], out[BS_OUT];
    char *ksinit[] = {"keystore", "init", "--keystore", a->ks, "--so-pin", "bench-so-1234", NULL};
    char *claim[] = {"claim", "create", "--dir", (char *)e->inst, NULL};
    char *init[] = {(char *)agent, "init", "--keystore", a->ks, "--state", a->state, NULL};
    char *inject[] = {(char *)agent, "claim",   "inject", code, "--keystore",
                      a->ks,         "--state", a->state, NULL};
    char *enroll[] = {(char *)agent, "enroll",        "--keystore", a->ks,
                      "--state",     a->state,        "--server",   (char *)s->https,
                      "--trust",     (char *)e->root, NULL};

    snprintf(name, sizeof name, "fleet-%d", i);
    if (bs_path(a->state, e->dir, name) != 0 || bs_path(code, a->state, "claim.code") != 0 ||
        bs_path(a->log, e->dir, "fleet.log") != 0) {
        return -1;
    }
    snprintf(a->ks, sizeof a->ks, "soft:%s-ks?pin-value=bench-fleet-1234", a->state);
    if (bs_tessera(e, ksinit, NULL, 0) != 0 || bs_tessera(e, claim, out, sizeof out) != 0 ||
        bs_run(init, NULL, 0, a->log) != 0) {
        return -1;
    }
    /* The claim code is the last line tessera claim create prints. */
    while (strlen(out) > 0 && out[strlen(out) - 1] == '\n') {
        out[strlen(out) - 1] = '\0';
    }
    const char *last = strrchr(out, '\n');
    FILE *f = fopen(code, "w");
    if (f == NULL || fprintf(f, "%s\n", last != NULL ? last + 1 : out) < 0 || fclose(f) != 0) {
        return -1;
    }
    return bs_run(inject, NULL, 0, a->log) == 0 && bs_run(enroll, NULL, 0, a->log) == 0 ? 0 : -1;
}

/* Starts `tessera-agent run` for a, publishing count messages as fast as they are acknowledged. */
static int bf_start(const bs_env *e, const char *agent, int port, unsigned long count, bf_agent *a)
{
    char mqtt[64], n[32];
    snprintf(mqtt, sizeof mqtt, "127.0.0.1:%d", port);
    snprintf(n, sizeof n, "%lu", count);
    char *run[] = {(char *)agent, "run",    "--keystore", a->ks,     "--state",
                   a->state,      "--mqtt", mqtt,         "--trust", (char *)e->trust,
                   "--interval",  "0",      "--count",    n,         "--queue",
                   "1024",        NULL};
    a->pid = fork();
    if (a->pid < 0) {
        return -1;
    }
    if (a->pid == 0) {
        int log = open(a->log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        int null = open("/dev/null", O_RDWR);
        if (log < 0 || null < 0 || dup2(null, 0) < 0 || dup2(null, 1) < 0 || dup2(log, 2) < 0) {
            _exit(127);
        }
        execv(run[0], run);
        _exit(127);
    }
    return 0;
}

/* Waits for a's agent; its exit status, or -1. */
static int bf_wait(bf_agent *a)
{
    int status = 0;
    while (a->pid > 0 && waitpid(a->pid, &status, 0) < 0) {
        if (errno != EINTR) {
            return -1;
        }
    }
    a->pid = 0;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void bf_on_subscribe(struct mosquitto *m, void *obj, int mid, int n, const int *qos)
{
    (void)m;
    (void)mid;
    ((bf_observer *)obj)->subscribed = n == 1 && qos[0] <= 1 ? 1 : -1;
}

static void bf_on_message(struct mosquitto *m, void *obj, const struct mosquitto_message *msg)
{
    bf_observer *o = obj;
    (void)m;
    (void)msg;
    o->last = bs_now();
    if (o->received++ == 0) {
        o->first = o->last;
    }
}

#endif
