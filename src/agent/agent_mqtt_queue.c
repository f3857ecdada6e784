/*
 * Telemetry for `tessera-agent run`: the bounded queue of messages waiting to be acknowledged,
 * and the sources of a message (the system's own values, or a program's JSON).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "agent/agent_mqtt_internal.h"
#include "common/error_internal.h"

enum { TELEMETRY_CMD_TIMEOUT_MS = 10000 };

/* --- the queue ------------------------------------------------------------------------------- */

ts_err agent_tq_init(agent_tq *q, size_t cap)
{
    memset(q, 0, sizeof *q);
    q->items = OPENSSL_zalloc(cap * sizeof *q->items);
    if (q->items == NULL) {
        return ts_error_set(TS_ERR_NOMEM, "out of memory for a queue of %zu messages", cap);
    }
    q->cap = cap;
    return TS_OK;
}

void agent_tq_clear(agent_tq *q)
{
    for (size_t i = 0; i < q->len; i++) {
        OPENSSL_free(q->items[i].payload);
    }
    OPENSSL_free(q->items);
    memset(q, 0, sizeof *q);
}

static void remove_at(agent_tq *q, size_t i)
{
    OPENSSL_free(q->items[i].payload);
    memmove(q->items + i, q->items + i + 1, (q->len - i - 1) * sizeof *q->items);
    q->len--;
}

void agent_tq_push(agent_tq *q, uint64_t seq, char *payload, size_t len, uint64_t *dropped_seq)
{
    *dropped_seq = 0;
    if (q->len == q->cap) {
        *dropped_seq = q->items[0].seq;
        remove_at(q, 0);
        q->dropped++;
    }
    q->items[q->len].seq = seq;
    q->items[q->len].payload = payload;
    q->items[q->len].len = len;
    q->items[q->len].mid = 0;
    q->len++;
}

int agent_tq_ack(agent_tq *q, int mid, uint64_t *seq)
{
    for (size_t i = 0; i < q->len; i++) {
        if (q->items[i].mid != 0 && q->items[i].mid == mid) {
            *seq = q->items[i].seq;
            remove_at(q, i);
            return 1;
        }
    }
    return 0;
}

void agent_tq_unsend(agent_tq *q)
{
    for (size_t i = 0; i < q->len; i++) {
        q->items[i].mid = 0;
    }
}

size_t agent_tq_inflight(const agent_tq *q)
{
    size_t n = 0;
    for (size_t i = 0; i < q->len; i++) {
        n += q->items[i].mid != 0;
    }
    return n;
}

agent_tq_item *agent_tq_next(agent_tq *q)
{
    for (size_t i = 0; i < q->len; i++) {
        if (q->items[i].mid == 0) {
            return &q->items[i];
        }
    }
    return NULL;
}

/* --- sources --------------------------------------------------------------------------------- */

/* The first line of a /proc file. */
static int proc_line(const char *path, char *buf, size_t size)
{
    FILE *f = fopen(path, "re");
    int ok = f != NULL && fgets(buf, (int)size, f) != NULL;
    if (f != NULL) {
        fclose(f);
    }
    return ok;
}

static long long meminfo_kb(const char *key)
{
    char line[256];
    size_t klen = strlen(key);
    long long v = -1;
    FILE *f = fopen("/proc/meminfo", "re");

    while (f != NULL && fgets(line, sizeof line, f) != NULL) {
        if (strncmp(line, key, klen) == 0 && line[klen] == ':') {
            v = strtoll(line + klen + 1, NULL, 10);
            break;
        }
    }
    if (f != NULL) {
        fclose(f);
    }
    return v;
}

static ts_err system_values(json_t *obj)
{
    char line[256];
    double up = 0, l1 = 0, l5 = 0, l15 = 0;
    long long free_kb = meminfo_kb("MemFree"), avail_kb = meminfo_kb("MemAvailable");
    int bad = 0;

    if (!proc_line("/proc/uptime", line, sizeof line) || sscanf(line, "%lf", &up) != 1 ||
        !proc_line("/proc/loadavg", line, sizeof line) ||
        sscanf(line, "%lf %lf %lf", &l1, &l5, &l15) != 3 || free_kb < 0) {
        return ts_error_set(TS_ERR_IO, "cannot read the system's uptime, load or memory in /proc");
    }
    bad |= json_object_set_new(obj, "uptime", json_integer((json_int_t)up));
    bad |= json_object_set_new(obj, "load", json_pack("[f,f,f]", l1, l5, l15));
    bad |= json_object_set_new(obj, "mem_free_kb", json_integer(free_kb));
    if (avail_kb >= 0) {
        bad |= json_object_set_new(obj, "mem_available_kb", json_integer(avail_kb));
    }
    return bad ? ts_error_set(TS_ERR_NOMEM, "out of memory") : TS_OK;
}

/* Runs cmd (no shell, no arguments) and reads its standard output within the deadline. */
static ts_err program_output(const char *cmd, char *buf, size_t size, size_t *len)
{
    int fds[2], status = 0, timed_out = 0, too_big = 0;
    struct timespec start, now;
    pid_t pid;

    *len = 0;
    if (pipe(fds) != 0) {
        return ts_error_set(TS_ERR_IO, "cannot make a pipe: %s", strerror(errno));
    }
    /* The read end stays out of the child; the write end is its standard output only. */
    (void)fcntl(fds[0], F_SETFD, FD_CLOEXEC);
    (void)fcntl(fds[1], F_SETFD, FD_CLOEXEC);
    pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return ts_error_set(TS_ERR_IO, "cannot start %s: %s", cmd, strerror(errno));
    }
    if (pid == 0) {
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull < 0 || dup2(devnull, 0) < 0 || dup2(fds[1], 1) < 0) {
            _exit(127);
        }
        execl(cmd, cmd, (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        struct pollfd pfd = {.fd = fds[0], .events = POLLIN};
        long elapsed;
        clock_gettime(CLOCK_MONOTONIC, &now);
        elapsed = (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
        if (elapsed >= TELEMETRY_CMD_TIMEOUT_MS) {
            timed_out = 1;
            break;
        }
        int r = poll(&pfd, 1, (int)(TELEMETRY_CMD_TIMEOUT_MS - elapsed));
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            timed_out = r == 0;
            break;
        }
        ssize_t n = read(fds[0], buf + *len, size - *len);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            break;
        }
        *len += (size_t)n;
        if (*len == size) {
            too_big = 1;
            break;
        }
    }
    close(fds[0]);
    if (timed_out || too_big) {
        kill(pid, SIGKILL);
    }
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (timed_out) {
        return ts_error_set(TS_ERR_IO, "%s gave no complete output within %d s", cmd,
                            TELEMETRY_CMD_TIMEOUT_MS / 1000);
    }
    if (too_big) {
        return ts_error_set(TS_ERR_LIMIT, "the output of %s is over %zu bytes", cmd, size - 1);
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        return ts_error_set(TS_ERR_IO, "%s failed (%s %d)", cmd,
                            WIFEXITED(status) ? "exit status" : "signal",
                            WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
    }
    return TS_OK;
}

ts_err agent_telemetry_make(const char *cmd, uint64_t seq, char **json, size_t *len)
{
    json_t *obj = NULL;
    char *text = NULL;
    ts_err rv = TS_OK;

    *json = NULL;
    *len = 0;
    if (cmd != NULL) {
        char *buf = OPENSSL_malloc(AGENT_TELEMETRY_MAX + 1);
        size_t n = 0;
        json_error_t jerr;
        if (buf == NULL) {
            return ts_error_set(TS_ERR_NOMEM, "out of memory");
        }
        rv = program_output(cmd, buf, AGENT_TELEMETRY_MAX + 1, &n);
        if (rv == TS_OK) {
            obj = json_loadb(buf, n, JSON_REJECT_DUPLICATES, &jerr);
            if (obj == NULL || !json_is_object(obj)) {
                rv = ts_error_set(
                    TS_ERR_INVALID, "the output of %s is not one JSON object (%s, line %d)", cmd,
                    obj == NULL ? jerr.text : "another JSON value", obj == NULL ? jerr.line : 1);
            }
        }
        OPENSSL_free(buf);
    } else {
        obj = json_object();
        rv = obj != NULL ? system_values(obj) : ts_error_set(TS_ERR_NOMEM, "out of memory");
    }
    if (rv == TS_OK &&
        (json_object_set_new(obj, "seq", json_integer((json_int_t)seq)) != 0 ||
         json_object_set_new(obj, "time", json_integer((json_int_t)time(NULL))) != 0)) {
        rv = ts_error_set(TS_ERR_NOMEM, "out of memory");
    }
    if (rv == TS_OK) {
        text = json_dumps(obj, JSON_COMPACT | JSON_REAL_PRECISION(10));
        if (text == NULL) {
            rv = ts_error_set(TS_ERR_NOMEM, "out of memory");
        } else if (strlen(text) > AGENT_TELEMETRY_MAX) {
            rv = ts_error_set(TS_ERR_LIMIT, "a telemetry message is over %d bytes",
                              AGENT_TELEMETRY_MAX);
        } else {
            *len = strlen(text);
            *json = OPENSSL_strndup(text, *len);
            if (*json == NULL) {
                rv = ts_error_set(TS_ERR_NOMEM, "out of memory");
            }
        }
    }
    free(text);
    json_decref(obj);
    return rv;
}
