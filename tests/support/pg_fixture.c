/* A throwaway PostgreSQL server for a test (pg_fixture.h). */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <grp.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "pg_fixture.h"
#include "test_support.h"

enum { PG_PORT = 54329 };

static void say(char *why, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void say(char *why, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, size, fmt, ap);
    va_end(ap);
}

static int has_server(const char *bindir)
{
    static const char *const tools[] = {"initdb", "pg_ctl", "postgres"};
    for (size_t i = 0; i < sizeof tools / sizeof tools[0]; i++) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s", bindir, tools[i]);
        if (access(path, X_OK) != 0) {
            return 0;
        }
    }
    return 1;
}

/* $TS_PG_BINDIR, else the newest Debian installation. */
static int find_bindir(char *out, size_t size)
{
    const char *env = getenv("TS_PG_BINDIR");
    if (env != NULL && env[0] != '\0') {
        snprintf(out, size, "%s", env);
        return has_server(out);
    }
    glob_t g;
    int found = 0;
    if (glob("/usr/lib/postgresql/*/bin", 0, NULL, &g) == 0) {
        long best = -1;
        for (size_t i = 0; i < g.gl_pathc; i++) {
            long version = strtol(g.gl_pathv[i] + strlen("/usr/lib/postgresql/"), NULL, 10);
            if (version > best && has_server(g.gl_pathv[i])) {
                best = version;
                snprintf(out, size, "%s", g.gl_pathv[i]);
                found = 1;
            }
        }
        globfree(&g);
    }
    return found;
}

/* Runs bindir/tool with args as the server's user, output appended to dir/log; its status. */
static int run(const ts_pg_server *pg, const char *log, char *const argv[])
{
    char path[512], logpath[512];
    char *args[16];
    size_t n = 0;
    snprintf(path, sizeof path, "%s/%s", pg->bindir, argv[0]);
    /* The tools find each other beside argv[0]: give them the full path, not a PATH search. */
    args[n++] = path;
    for (size_t i = 1; argv[i] != NULL && n + 1 < sizeof args / sizeof args[0]; i++) {
        args[n++] = argv[i];
    }
    args[n] = NULL;
    snprintf(logpath, sizeof logpath, "%s/%s", pg->dir, log);
    pid_t pid = fork();
    if (pid < 0) {
        return -1;
    }
    if (pid == 0) {
        if (geteuid() == 0 &&
            (setgroups(0, NULL) != 0 || setgid(pg->gid) != 0 || setuid(pg->uid) != 0)) {
            _exit(126);
        }
        int fd = open(logpath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        if (fd < 0 || chdir(pg->dir) != 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0) {
            _exit(126);
        }
        int null = open("/dev/null", O_RDONLY);
        if (null >= 0) {
            dup2(null, 0);
        }
        char *const env[] = {"PATH=/usr/bin:/bin", "LC_ALL=C", "TZ=UTC", NULL};
        execve(path, args, env);
        _exit(127);
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            return -1;
        }
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static int append_conf(const ts_pg_server *pg)
{
    char path[512];
    snprintf(path, sizeof path, "%s/data/postgresql.conf", pg->dir);
    FILE *f = fopen(path, "a");
    if (f == NULL) {
        return -1;
    }
    /* A local socket only; durability is not what these tests are about. */
    fprintf(f,
            "\nlisten_addresses = ''\nunix_socket_directories = '%s'\nport = %d\n"
            "fsync = off\nfull_page_writes = off\nmax_connections = 40\n"
            "shared_buffers = 16MB\nlogging_collector = off\n",
            pg->dir, pg->port);
    return fclose(f) == 0 ? 0 : -1;
}

static int make_dir(ts_pg_server *pg, char *why, size_t why_size)
{
    /* The socket path must fit sun_path (108 bytes): prefer a short base. */
    const char *base = getenv("TMPDIR");
    if (base == NULL || strlen(base) > 40) {
        base = "/tmp";
    }
    snprintf(pg->dir, sizeof pg->dir, "%s/tessera-pg-XXXXXX", base);
    if (mkdtemp(pg->dir) == NULL) {
        say(why, why_size, "cannot make a directory under %s: %s", base, strerror(errno));
        return -1;
    }
    pg->uid = geteuid();
    pg->gid = getegid();
    if (geteuid() == 0) {
        /* PostgreSQL will not run as root. */
        struct passwd *pw = getpwnam("nobody");
        if (pw == NULL) {
            say(why, why_size, "running as root and there is no user nobody to run PostgreSQL");
            return -1;
        }
        pg->uid = pw->pw_uid;
        pg->gid = pw->pw_gid;
        if (chown(pg->dir, pg->uid, pg->gid) != 0) {
            say(why, why_size, "cannot give %s to nobody: %s", pg->dir, strerror(errno));
            return -1;
        }
    }
    return chmod(pg->dir, 0700) == 0 ? 0 : -1;
}

static void show_log(const ts_pg_server *pg, const char *log, char *why, size_t why_size)
{
    char path[512], tail[256] = "";
    snprintf(path, sizeof path, "%s/%s", pg->dir, log);
    FILE *f = fopen(path, "r");
    if (f != NULL) {
        char line[256];
        while (fgets(line, sizeof line, f) != NULL) {
            if (line[0] != '\n') {
                snprintf(tail, sizeof tail, "%s", line);
            }
        }
        fclose(f);
    }
    size_t used = strlen(why);
    snprintf(why + used, why_size - used, " (%s: %s)", path, tail);
}

int ts_pg_start(ts_pg_server *pg, char *why, size_t why_size)
{
    memset(pg, 0, sizeof *pg);
    pg->port = PG_PORT;
    if (!find_bindir(pg->bindir, sizeof pg->bindir)) {
        say(why, why_size,
            "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found in $TS_PG_BINDIR "
            "or /usr/lib/postgresql/*/bin: install Debian's postgresql package");
        return TS_PG_ABSENT;
    }
    if (make_dir(pg, why, why_size) != 0) {
        ts_test_rmtree(pg->dir);
        return TS_PG_FAILED;
    }
    char *const initdb[] = {"initdb", "-D", "data", "-U",         "tessera",   "-A",
                            "trust",  "-E", "UTF8", "--locale=C", "--no-sync", NULL};
    if (run(pg, "initdb.log", initdb) != 0) {
        say(why, why_size, "initdb failed");
        show_log(pg, "initdb.log", why, why_size);
        return TS_PG_FAILED;
    }
    if (append_conf(pg) != 0) {
        say(why, why_size, "cannot configure %s/data", pg->dir);
        return TS_PG_FAILED;
    }
    char *const start[] = {"pg_ctl", "-D", "data", "-l",    "server.log",
                           "-w",     "-t", "60",   "start", NULL};
    if (run(pg, "pg_ctl.log", start) != 0) {
        say(why, why_size, "pg_ctl start failed");
        show_log(pg, "server.log", why, why_size);
        return TS_PG_FAILED;
    }
    pg->running = 1;
    return TS_PG_STARTED;
}

int ts_pg_create_db(ts_pg_server *pg, const char *name, char *uri, size_t size)
{
    char admin[512], sql[128];
    for (const char *c = name; *c != '\0'; c++) {
        if (!islower((unsigned char)*c) && !isdigit((unsigned char)*c) && *c != '_') {
            return -1;
        }
    }
    if (!pg->running || strlen(name) == 0 || strlen(name) > 60) {
        return -1;
    }
    snprintf(admin, sizeof admin, "postgresql:///postgres?host=%s&port=%d&user=tessera", pg->dir,
             pg->port);
    PGconn *conn = PQconnectdb(admin);
    int rv = -1;
    if (PQstatus(conn) == CONNECTION_OK) {
        /* An identifier cannot be a parameter; the name was checked to be [a-z0-9_]. */
        snprintf(sql, sizeof sql, "CREATE DATABASE %s", name);
        PGresult *res = PQexec(conn, sql);
        rv = PQresultStatus(res) == PGRES_COMMAND_OK ? 0 : -1;
        if (rv != 0) {
            fprintf(stderr, "pg_fixture: %s: %s", sql, PQerrorMessage(conn));
        }
        PQclear(res);
    } else {
        fprintf(stderr, "pg_fixture: cannot connect: %s", PQerrorMessage(conn));
    }
    PQfinish(conn);
    if (rv == 0) {
        int n = snprintf(uri, size, "postgresql:///%s?host=%s&port=%d&user=tessera", name, pg->dir,
                         pg->port);
        rv = n > 0 && (size_t)n < size ? 0 : -1;
    }
    return rv;
}

void ts_pg_stop(ts_pg_server *pg)
{
    if (pg->running) {
        char *const stop[] = {"pg_ctl", "-D", "data", "-m", "immediate", "-w", "stop", NULL};
        if (run(pg, "pg_ctl.log", stop) != 0) {
            fprintf(stderr, "pg_fixture: pg_ctl stop failed; see %s/pg_ctl.log\n", pg->dir);
            return; /* leave the directory for a look */
        }
        pg->running = 0;
    }
    if (pg->dir[0] != '\0' && getenv("TS_KEEP_TMP") == NULL) {
        ts_test_rmtree(pg->dir);
    }
    pg->dir[0] = '\0';
}
