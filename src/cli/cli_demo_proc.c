/*
 * The demo's child processes: started with fork and exec, each in its own process group with
 * its output in a log file, waited for by polling (so an interrupt or a deadline always wins),
 * and stopped with SIGTERM, then SIGKILL.
 */
#define _XOPEN_SOURCE 700 /* nftw */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli_demo.h"
#include "common/error_internal.h"

enum {
    POLL_MS = 25,        /* how often a wait looks again */
    TAIL_BYTES = 4096,   /* how much of a log's end demo_log_tail() reads */
    ARGV_TEXT_MAX = 160, /* a command line shown in a message */
};

volatile sig_atomic_t demo_interrupted;

long long demo_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int demo_sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    if (demo_interrupted) {
        return -1;
    }
    /* A signal cuts the sleep short (no SA_RESTART), and the flag says why. */
    nanosleep(&ts, NULL);
    return demo_interrupted ? -1 : 0;
}

ts_err demo_proc_start(demo_proc *p, const char *name, const char *log, const char *const argv[])
{
    pid_t parent = getpid();

    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "%s", name);
    if (snprintf(p->log, sizeof p->log, "%s", log) >= (int)sizeof p->log) {
        return ts_error_set(TS_ERR_INVALID, "the log path %s is too long", log);
    }
    /* Opened here, not in the child: after fork only async-signal-safe calls are allowed. */
    int out = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (out < 0) {
        return ts_error_set(TS_ERR_IO, "cannot open %s: %s", log, strerror(errno));
    }
    int in = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (in < 0) {
        close(out);
        return ts_error_set(TS_ERR_IO, "cannot open /dev/null: %s", strerror(errno));
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        close(out);
        close(in);
        return ts_error_set(TS_ERR_IO, "cannot start %s: %s", name, strerror(e));
    }
    if (pid == 0) {
        /* Its own group: the terminal's Ctrl-C goes to the demo, which stops children in order.
         * If the demo dies without stopping it, the kernel sends SIGTERM. */
        setpgid(0, 0);
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent) {
            _exit(127);
        }
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        signal(SIGPIPE, SIG_DFL);
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        signal(SIGHUP, SIG_DFL);
        if (dup2(in, STDIN_FILENO) < 0 || dup2(out, STDOUT_FILENO) < 0 ||
            dup2(out, STDERR_FILENO) < 0) {
            _exit(127);
        }
        execv(argv[0], (char *const *)argv);
        static const char msg[] = "tessera demo: cannot execute the program\n";
        ssize_t ignored = write(STDERR_FILENO, msg, sizeof msg - 1);
        (void)ignored;
        _exit(127);
    }
    /* Also set from this side, so a signal sent right after fork reaches the group. */
    setpgid(pid, pid);
    close(out);
    close(in);
    p->pid = pid;
    return TS_OK;
}

int demo_proc_running(demo_proc *p)
{
    if (p->pid <= 0) {
        return 0;
    }
    int status = 0;
    pid_t r = waitpid(p->pid, &status, WNOHANG);
    if (r == 0) {
        return 1;
    }
    if (r == p->pid) {
        p->status = status;
        p->reaped = 1;
    }
    p->pid = 0;
    return 0;
}

void demo_proc_exit_text(const demo_proc *p, char *buf, size_t size)
{
    if (!p->reaped) {
        snprintf(buf, size, "is running");
    } else if (WIFEXITED(p->status)) {
        snprintf(buf, size, "exited with status %d", WEXITSTATUS(p->status));
    } else if (WIFSIGNALED(p->status)) {
        snprintf(buf, size, "was killed by signal %d (%s)", WTERMSIG(p->status),
                 strsignal(WTERMSIG(p->status)));
    } else {
        snprintf(buf, size, "ended");
    }
}

unsigned demo_proc_stop(demo_proc *const *procs, size_t n, int grace_ms)
{
    unsigned killed = 0;
    size_t left = 0;

    for (size_t i = 0; i < n; i++) {
        if (demo_proc_running(procs[i])) {
            /* The group: whatever the child started goes too. */
            kill(-procs[i]->pid, SIGTERM);
            left++;
        }
    }
    long long deadline = demo_now_ms() + grace_ms;
    while (left > 0 && demo_now_ms() < deadline) {
        struct timespec ts = {.tv_nsec = POLL_MS * 1000000L};
        nanosleep(&ts, NULL); /* not cut short by an interrupt: stopping must finish */
        left = 0;
        for (size_t i = 0; i < n; i++) {
            left += (size_t)demo_proc_running(procs[i]);
        }
    }
    for (size_t i = 0; i < n; i++) {
        demo_proc *p = procs[i];
        if (demo_proc_running(p)) {
            kill(-p->pid, SIGKILL);
            int status = 0;
            while (waitpid(p->pid, &status, 0) < 0 && errno == EINTR) {
            }
            p->status = status;
            p->reaped = 1;
            p->pid = 0;
            killed++;
        }
    }
    return killed;
}

static void argv_text(const char *const argv[], char *buf, size_t size)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; argv[i] != NULL && used + 1 < size; i++) {
        const char *word = argv[i];
        if (i == 0) {
            const char *slash = strrchr(word, '/');
            word = slash != NULL ? slash + 1 : word;
        }
        /* Key-store URIs carry PINs: never shown. */
        if (strncmp(word, "soft:", 5) == 0 || strncmp(word, "pkcs11:", 7) == 0) {
            word = "URI";
        }
        int n = snprintf(buf + used, size - used, "%s%s", i > 0 ? " " : "", word);
        if (n < 0) {
            break;
        }
        used += (size_t)n;
    }
    if (used >= size && size > 4) {
        memcpy(buf + size - 4, "...", 4);
    }
}

ts_err demo_run(const char *name, const char *log, int timeout_s, const char *const argv[],
                int *exit_code)
{
    demo_proc p;
    char text[ARGV_TEXT_MAX];

    *exit_code = -1;
    argv_text(argv, text, sizeof text);
    ts_err rv = demo_proc_start(&p, name, log, argv);
    if (rv != TS_OK) {
        return rv;
    }
    long long deadline = demo_now_ms() + (long long)timeout_s * 1000;
    while (demo_proc_running(&p)) {
        if (demo_interrupted || demo_now_ms() >= deadline) {
            demo_proc *one = &p;
            demo_proc_stop(&one, 1, DEMO_STOP_GRACE_MS);
            if (demo_interrupted) {
                return ts_error_set(TS_ERR_STATE, "interrupted while running %s", text);
            }
            return ts_error_set(TS_ERR_BACKEND, "%s did not finish within %d s", text, timeout_s);
        }
        struct timespec ts = {.tv_nsec = 5 * 1000000L};
        nanosleep(&ts, NULL);
    }
    if (!WIFEXITED(p.status)) {
        char how[96];
        demo_proc_exit_text(&p, how, sizeof how);
        return ts_error_set(TS_ERR_BACKEND, "%s %s", text, how);
    }
    *exit_code = WEXITSTATUS(p.status);
    if (*exit_code == 127) {
        return ts_error_set(TS_ERR_NOT_FOUND, "cannot execute %s", argv[0]);
    }
    return TS_OK;
}

int demo_log_find(const char *log, long *offset, const char *prefix, char *line, size_t size)
{
    FILE *f = fopen(log, "r");
    char buf[DEMO_LINE_MAX];
    int found = 0;

    if (f == NULL) {
        return 0;
    }
    if (fseek(f, *offset, SEEK_SET) != 0) {
        fclose(f);
        return 0;
    }
    while (fgets(buf, sizeof buf, f) != NULL) {
        size_t len = strlen(buf);
        if (len == 0 || buf[len - 1] != '\n') {
            break; /* a line still being written: look again later */
        }
        *offset = ftell(f);
        buf[len - 1] = '\0';
        if (strncmp(buf, prefix, strlen(prefix)) == 0) {
            snprintf(line, size, "%s", buf);
            found = 1;
            break;
        }
    }
    fclose(f);
    return found;
}

ts_err demo_log_wait(demo_proc *p, long *offset, const char *prefix, int timeout_ms, char *line,
                     size_t size)
{
    long long deadline = demo_now_ms() + timeout_ms;

    for (;;) {
        if (demo_log_find(p->log, offset, prefix, line, size)) {
            return TS_OK;
        }
        if (!demo_proc_running(p)) {
            /* It may have printed the line just before it ended. */
            if (demo_log_find(p->log, offset, prefix, line, size)) {
                return TS_OK;
            }
            char how[96];
            demo_proc_exit_text(p, how, sizeof how);
            return ts_error_set(TS_ERR_BACKEND, "%s %s before printing \"%s\"", p->name, how,
                                prefix);
        }
        if (demo_now_ms() >= deadline) {
            return ts_error_set(TS_ERR_BACKEND, "no \"%s\" from %s within %d s", prefix, p->name,
                                (timeout_ms + 999) / 1000);
        }
        if (demo_sleep_ms(POLL_MS) != 0) {
            return ts_error_set(TS_ERR_STATE, "interrupted while waiting for %s", p->name);
        }
    }
}

int demo_log_value(const char *log, const char *prefix, char *value, size_t size)
{
    long offset = 0;
    char line[DEMO_LINE_MAX];
    int found = 0;
    size_t plen = strlen(prefix);

    while (demo_log_find(log, &offset, prefix, line, sizeof line)) {
        const char *v = line + plen;
        v += strspn(v, " \t");
        snprintf(value, size, "%s", v);
        found = 1;
    }
    return found;
}

long demo_log_size(const char *log)
{
    struct stat st;
    return stat(log, &st) == 0 ? (long)st.st_size : 0;
}

void demo_log_tail(const char *log, unsigned lines, FILE *out)
{
    char buf[TAIL_BYTES + 1];
    FILE *f = fopen(log, "r");

    if (f == NULL) {
        fprintf(out, DEMO_IND "(no log at %s)\n", log);
        return;
    }
    long size = demo_log_size(log);
    long from = size > TAIL_BYTES ? size - TAIL_BYTES : 0;
    size_t n = 0;
    if (fseek(f, from, SEEK_SET) == 0) {
        n = fread(buf, 1, TAIL_BYTES, f);
    }
    fclose(f);
    buf[n] = '\0';
    while (n > 0 && buf[n - 1] == '\n') {
        buf[--n] = '\0';
    }
    if (n == 0) {
        fprintf(out, DEMO_IND "(%s is empty)\n", log);
        return;
    }
    /* Back from the end to the start of the wanted number of lines. */
    size_t start = n;
    unsigned seen = 0;
    while (start > 0) {
        if (buf[start - 1] == '\n' && ++seen == lines) {
            break;
        }
        start--;
    }
    fprintf(out, DEMO_IND "last lines of %s:\n", log);
    for (char *line = buf + start; line != NULL && *line != '\0';) {
        char *nl = strchr(line, '\n');
        if (nl != NULL) {
            *nl = '\0';
        }
        fprintf(out, DEMO_IND "| %s\n", line);
        line = nl != NULL ? nl + 1 : NULL;
    }
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

int demo_remove_tree(const char *dir)
{
    if (dir[0] == '\0') {
        return 0;
    }
    nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    return access(dir, F_OK) == 0 ? -1 : 0;
}
