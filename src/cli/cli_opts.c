/*
 * Command dispatch, option parsing, usage text, and the input and output helpers every command
 * shares.
 *
 * Options are long only: --name VALUE or --name=VALUE, flags as --name; -h is --help. Nothing
 * positional is accepted, so a stray word is an error rather than something silently ignored.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/buffer.h>
#include <openssl/crypto.h>

#include "cli/cli_internal.h"
#include "common/error_internal.h"
#include "common/file_internal.h"

enum { USAGE_WIDTH = 100 };

static size_t opt_count(const cli_command *cmd)
{
    size_t n = 0;
    while (cmd->opts != NULL && cmd->opts[n].name != NULL) {
        n++;
    }
    return n;
}

/* The usage line: required options bare, the others in brackets, wrapped under the command. */
static void print_usage_line(FILE *f, const char *path, const cli_command *cmd)
{
    int indent = fprintf(f, "usage: tessera%s%s", path[0] != '\0' ? " " : "", path);
    int col = indent;

    if (cmd->subs != NULL) {
        fprintf(f, " COMMAND [OPTIONS]\n");
        return;
    }
    for (size_t i = 0; i < opt_count(cmd); i++) {
        const cli_opt *o = &cmd->opts[i];
        int required = (o->flags & CLI_OPT_REQUIRED) != 0;
        char piece[96];
        int n = snprintf(piece, sizeof piece, " %s--%s%s%s%s%s", required ? "" : "[", o->name,
                         o->value != NULL ? " " : "", o->value != NULL ? o->value : "",
                         required ? "" : "]", (o->flags & CLI_OPT_REPEAT) ? "..." : "");
        if (n > 0 && col + n > USAGE_WIDTH) {
            fprintf(f, "\n%*s", indent, "");
            col = indent;
        }
        fputs(piece, f);
        col += n > 0 ? n : 0;
    }
    fputc('\n', f);
}

static void print_help(const char *path, const cli_command *cmd)
{
    print_usage_line(stdout, path, cmd);
    printf("\n%s\n", cmd->summary);
    if (cmd->subs != NULL) {
        printf("\nCommands:\n");
        for (const cli_command *c = cmd->subs; c->name != NULL; c++) {
            printf("  %-10s %s\n", c->name, c->summary);
        }
        printf("\nRun 'tessera %s%sCOMMAND --help' for the options of a command.\n", path,
               path[0] != '\0' ? " " : "");
    } else {
        printf("\nOptions:\n");
        for (size_t i = 0; i < opt_count(cmd); i++) {
            const cli_opt *o = &cmd->opts[i];
            char left[64];
            snprintf(left, sizeof left, "--%s%s%s", o->name, o->value != NULL ? " " : "",
                     o->value != NULL ? o->value : "");
            printf("  %-24s %s\n", left, o->help);
        }
        printf("  %-24s %s\n", "-h, --help", "print this help and exit");
    }
    if (cmd->help != NULL) {
        printf("\n%s", cmd->help);
    }
}

int cli_usage_error(const cli_args *args, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "tessera: %s%s", args->path, args->path[0] != '\0' ? ": " : "");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    print_usage_line(stderr, args->path, args->cmd);
    return CLI_EXIT_USAGE;
}

int cli_fail(void)
{
    fprintf(stderr, "tessera: %s\n", ts_error_message());
    return CLI_EXIT_FAIL;
}

static int find_opt(const cli_command *cmd, const char *name, size_t len)
{
    for (size_t i = 0; i < opt_count(cmd); i++) {
        if (strlen(cmd->opts[i].name) == len && strncmp(cmd->opts[i].name, name, len) == 0) {
            return (int)i;
        }
    }
    return -1;
}

static int is_help(const char *arg)
{
    return strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0;
}

/* Parses argv (after the command name) into args; returns CLI_EXIT_OK or the usage status. */
static int parse_options(cli_args *args, int argc, char **argv)
{
    const cli_command *cmd = args->cmd;

    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i];
        if (strncmp(arg, "--", 2) != 0 || arg[2] == '\0') {
            return cli_usage_error(args, "unexpected argument '%s'", arg);
        }
        const char *name = arg + 2;
        const char *eq = strchr(name, '=');
        size_t name_len = eq != NULL ? (size_t)(eq - name) : strlen(name);
        int idx = find_opt(cmd, name, name_len);
        if (idx < 0) {
            return cli_usage_error(args, "unknown option '--%.*s'", (int)name_len, name);
        }
        const cli_opt *o = &cmd->opts[idx];
        const char *value = "";
        if (o->value == NULL && eq != NULL) {
            return cli_usage_error(args, "--%s takes no value", o->name);
        }
        if (o->value != NULL) {
            if (eq != NULL) {
                value = eq + 1;
            } else if (i + 1 < argc && strncmp(argv[i + 1], "--", 2) != 0) {
                value = argv[++i];
            } else {
                return cli_usage_error(args, "--%s needs a value (%s)", o->name, o->value);
            }
            if (value[0] == '\0') {
                return cli_usage_error(args, "--%s: the value is empty", o->name);
            }
        }
        size_t n = args->count[idx];
        if (n > 0 && (o->flags & CLI_OPT_REPEAT) == 0) {
            return cli_usage_error(args, "--%s is given more than once", o->name);
        }
        if (n >= CLI_REPEAT_MAX) {
            return cli_usage_error(args, "--%s is given more than %d times", o->name,
                                   CLI_REPEAT_MAX);
        }
        args->values[idx][n] = value;
        args->count[idx] = n + 1;
    }
    for (size_t i = 0; i < opt_count(cmd); i++) {
        const cli_opt *o = &cmd->opts[i];
        if ((o->flags & CLI_OPT_REQUIRED) != 0 && args->count[i] == 0) {
            return cli_usage_error(args, "missing --%s %s", o->name, o->value ? o->value : "");
        }
    }
    return CLI_EXIT_OK;
}

static int run_leaf(const char *path, const cli_command *cmd, int argc, char **argv)
{
    cli_args *args = NULL;
    int status;

    /* --help wins over everything else on the line, so it always works. */
    for (int i = 0; i < argc && strcmp(argv[i], "--") != 0; i++) {
        if (is_help(argv[i])) {
            print_help(path, cmd);
            return CLI_EXIT_OK;
        }
    }
    if (opt_count(cmd) > CLI_OPTS_MAX) {
        fprintf(stderr, "tessera: %s: too many options in the command table\n", path);
        return CLI_EXIT_FAIL;
    }
    args = calloc(1, sizeof *args);
    if (args == NULL) {
        fprintf(stderr, "tessera: out of memory\n");
        return CLI_EXIT_FAIL;
    }
    args->cmd = cmd;
    snprintf(args->path, sizeof args->path, "%s", path);
    status = parse_options(args, argc, argv);
    if (status == CLI_EXIT_OK) {
        status = cmd->run(args);
    }
    free(args);
    return status;
}

int cli_dispatch(const char *path, const cli_command *group, int argc, char **argv)
{
    char sub[CLI_PATH_MAX];
    const char *sep = path[0] != '\0' ? " " : "";

    if (argc < 1) {
        fprintf(stderr, "tessera%s%s: a command is required\n", sep, path);
        print_usage_line(stderr, path, group);
        fprintf(stderr, "Run 'tessera %s%s--help' for the list of commands.\n", path, sep);
        return CLI_EXIT_USAGE;
    }
    if (is_help(argv[0])) {
        print_help(path, group);
        return CLI_EXIT_OK;
    }
    for (const cli_command *c = group->subs; c->name != NULL; c++) {
        if (strcmp(c->name, argv[0]) != 0) {
            continue;
        }
        snprintf(sub, sizeof sub, "%s%s%s", path, sep, c->name);
        if (c->subs != NULL) {
            return cli_dispatch(sub, c, argc - 1, argv + 1);
        }
        return run_leaf(sub, c, argc - 1, argv + 1);
    }
    fprintf(stderr, "tessera%s%s: unknown command '%s'\n", sep, path, argv[0]);
    print_usage_line(stderr, path, group);
    fprintf(stderr, "Run 'tessera %s%s--help' for the list of commands.\n", path, sep);
    return CLI_EXIT_USAGE;
}

const char *cli_opt_value(const cli_args *args, const char *name)
{
    int idx = find_opt(args->cmd, name, strlen(name));
    if (idx < 0) {
        /* A name missing from the command's own table is a bug in the command, not input. */
        fprintf(stderr, "tessera: %s: internal error: no option --%s\n", args->path, name);
        abort();
    }
    size_t n = args->count[idx];
    return n > 0 ? args->values[idx][n - 1] : NULL;
}

int cli_opt_given(const cli_args *args, const char *name)
{
    return cli_opt_value(args, name) != NULL;
}

size_t cli_opt_values(const cli_args *args, const char *name, const char *const **values)
{
    (void)cli_opt_value(args, name); /* checks the name */
    int idx = find_opt(args->cmd, name, strlen(name));
    *values = args->values[idx];
    return args->count[idx];
}

int cli_parse_u64(const char *text, uint64_t *out)
{
    uint64_t v = 0;
    if (text == NULL || text[0] == '\0') {
        return -1;
    }
    for (const char *p = text; *p != '\0'; p++) {
        if (*p < '0' || *p > '9') {
            return -1;
        }
        unsigned d = (unsigned)(*p - '0');
        if (v > (UINT64_MAX - d) / 10) {
            return -1;
        }
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

int cli_parse_duration(const char *text, int64_t max_seconds, int64_t *out)
{
    static const struct {
        char unit;
        uint64_t seconds;
    } units[] = {{'s', 1}, {'m', 60}, {'h', 3600}, {'d', 86400}};
    char digits[21];
    uint64_t n = 0;
    size_t len = text != NULL ? strlen(text) : 0;

    if (len < 2 || len - 1 >= sizeof digits || max_seconds <= 0) {
        return -1;
    }
    memcpy(digits, text, len - 1);
    digits[len - 1] = '\0';
    if (cli_parse_u64(digits, &n) != 0 || n == 0) {
        return -1;
    }
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (text[len - 1] != units[i].unit) {
            continue;
        }
        /* Checked before multiplying, so a huge N cannot wrap into range. */
        if (n > (uint64_t)max_seconds / units[i].seconds) {
            return -1;
        }
        *out = (int64_t)(n * units[i].seconds);
        return 0;
    }
    return -1;
}

static int is_stdio(const char *path)
{
    return path == NULL || strcmp(path, "-") == 0;
}

ts_err cli_write_output(const char *path, const uint8_t *data, size_t len, mode_t mode)
{
    if (!is_stdio(path)) {
        ts_err rv = ts_file_write_atomic(path, data, len, mode);
        return rv != TS_OK ? ts_error_prefix(rv, "cannot write the output") : TS_OK;
    }
    if (fwrite(data, 1, len, stdout) != len || fflush(stdout) != 0) {
        return ts_error_set(TS_ERR_IO, "cannot write to standard output: %s", strerror(errno));
    }
    return TS_OK;
}

ts_err cli_write_bio(const char *path, BIO *mem, mode_t mode)
{
    BUF_MEM *buf = NULL;
    if (BIO_get_mem_ptr(mem, &buf) != 1 || buf == NULL) {
        return ts_error_set_openssl(TS_ERR_NOMEM, "no output buffer");
    }
    return cli_write_output(path, (const uint8_t *)buf->data, buf->length, mode);
}

static ts_err read_stdin(size_t max, uint8_t **data, size_t *len)
{
    size_t cap = 4096, used = 0;
    uint8_t *buf = OPENSSL_malloc(cap);
    ts_err rv = TS_OK;

    while (buf != NULL) {
        if (used == cap) {
            size_t ncap = cap * 2;
            uint8_t *nbuf = OPENSSL_clear_realloc(buf, cap, ncap);
            if (nbuf == NULL) {
                break;
            }
            buf = nbuf;
            cap = ncap;
        }
        size_t n = fread(buf + used, 1, cap - used, stdin);
        used += n;
        if (used > max) {
            rv = ts_error_set(TS_ERR_INVALID, "standard input is over the %zu bytes allowed", max);
            goto done;
        }
        if (n == 0) {
            if (ferror(stdin)) {
                rv = ts_error_set(TS_ERR_IO, "cannot read standard input: %s", strerror(errno));
                goto done;
            }
            *data = buf;
            *len = used;
            return TS_OK;
        }
    }
    rv = ts_error_set(TS_ERR_NOMEM, "out of memory reading standard input");
done:
    OPENSSL_clear_free(buf, cap);
    return rv;
}

ts_err cli_read_input(const char *path, size_t max, uint8_t **data, size_t *len)
{
    ts_err rv;
    *data = NULL;
    *len = 0;
    if (is_stdio(path)) {
        return read_stdin(max, data, len);
    }
    rv = ts_file_read(path, max, data, len);
    if (rv == TS_ERR_CORRUPT) {
        return ts_error_set(TS_ERR_INVALID, "%s is over the %zu bytes allowed", path, max);
    }
    return rv != TS_OK ? ts_error_prefix(rv, "cannot read the input") : TS_OK;
}
