/*
 * What the instance commands share: the instance directory, the actor written to the audit log,
 * output of certificates and times, and positional arguments.
 *
 * The option parser (cli_opts.c) takes options only. The instance commands are documented with a
 * positional NAME or SERIAL ("tessera cert show 3F2A...") and "--shares FILE..." takes several
 * words, so argv is rewritten into options before dispatch: a bare word becomes the value of the
 * command's positional option, or one more value of the repeatable option just before it.
 * Anything else is left for the parser to refuse.
 */
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/pem.h>

#include "cli/cli_instance.h"
#include "common/error_internal.h"

const char cli_instance_help[] =
    "The instance directory is --dir DIR, else $TESSERA_DIR, else ./" CLI_DIR_DEFAULT ".\n"
    "\n"
    "Environment:\n"
    "  TESSERA_DIR        the instance directory when --dir is not given\n"
    "  TESSERA_OPERATOR   the name written to the audit log as the actor (default: login name)\n"
    "  TESSERA_PIN        the key store's PIN, when its URI carries none\n"
    "  TESSERA_SERVER     remote mode: the service's https URL, when --dir is not given\n"
    "  TESSERA_TOKEN      remote mode: the API token when --token is not given\n"
    "  TESSERA_CACERT     remote mode: the CA certificate(s) that verify the server\n";

/* Commands with a positional argument, and the option it stands for. */
static const struct {
    const char *path;
    const char *option;
} positional[] = {
    {"tenant create", "--name"},  {"profile show", "--name"},   {"profile create", "--name"},
    {"profile update", "--name"}, {"cert show", "--serial"},    {"cert revoke", "--serial"},
    {"cert renew", "--serial"},   {"cert rekey", "--serial"},   {"claim revoke", "--id"},
    {"device show", "--uid"},     {"device register", "--uid"}, {"device disable", "--uid"},
    {"device enable", "--uid"},   {"user create", "--name"},    {"user disable", "--name"},
    {"user enable", "--name"},    {"token revoke", "--id"},     {"job show", "--id"},
    {"device command", "--word"}, {"device commands", "--uid"}, {"group create", "--name"},
    {"group delete", "--name"},   {"group show", "--name"},     {"group add", "--name"},
    {"group remove", "--name"},   {"fw sign", "--image"},       {"fw verify", "--file"},
    {"fw inspect", "--file"},     {"fw publish", "--file"},     {"fw withdraw", "--id"},
};

const char *cli_instance_dir(const cli_args *args)
{
    const char *dir = cli_opt_value(args, "dir");
    if (dir == NULL) {
        dir = getenv("TESSERA_DIR");
    }
    return dir != NULL && dir[0] != '\0' ? dir : CLI_DIR_DEFAULT;
}

void cli_actor(char *buf, size_t size)
{
    const char *op = getenv("TESSERA_OPERATOR");
    struct passwd *pw = NULL;

    if (op != NULL && op[0] != '\0') {
        snprintf(buf, size, "%s", op);
        return;
    }
    pw = getpwuid(geteuid());
    if (pw != NULL && pw->pw_name != NULL) {
        snprintf(buf, size, "%s", pw->pw_name);
    } else {
        snprintf(buf, size, "uid %u", (unsigned)geteuid());
    }
}

/*
 * An --out FILE is replaced by renaming a new file over it: a device or a directory there (such
 * as /dev/null) would be replaced too, so anything but a regular file is refused, before the
 * operation runs.
 */
int cli_out_check(const cli_args *args)
{
    struct stat st;
    for (const cli_opt *o = args->cmd->opts; o != NULL && o->name != NULL; o++) {
        if (strcmp(o->name, "out") != 0 || o->value == NULL || strcmp(o->value, "FILE") != 0) {
            continue;
        }
        const char *path = cli_opt_value(args, "out");
        if (path != NULL && strcmp(path, "-") != 0 && lstat(path, &st) == 0 &&
            !S_ISREG(st.st_mode)) {
            fprintf(stderr,
                    "tessera: --out %s is not a regular file: refusing to replace it (leave out "
                    "--out for standard output)\n",
                    path);
            return CLI_EXIT_FAIL;
        }
    }
    return CLI_EXIT_OK;
}

static int has_opt(const cli_args *args, const char *name)
{
    for (const cli_opt *o = args->cmd->opts; o != NULL && o->name != NULL; o++) {
        if (strcmp(o->name, name) == 0) {
            return 1;
        }
    }
    return 0;
}

int cli_instance_open(const cli_args *args, ts_ca **ca)
{
    char actor[256];
    int status = cli_out_check(args);

    *ca = NULL;
    if (status != CLI_EXIT_OK) {
        return status;
    }
    /* A token given to a command that then works on the directory is a mistake worth naming. */
    if (has_opt(args, "token") && (cli_opt_given(args, "token") || cli_opt_given(args, "cacert"))) {
        return cli_usage_error(args, "--token and --cacert go with --server (or $TESSERA_SERVER)");
    }
    cli_actor(actor, sizeof actor);
    if (ts_ca_open(cli_instance_dir(args), actor, ca) != TS_OK) {
        return cli_fail();
    }
    return CLI_EXIT_OK;
}

void cli_time_text(time_t t, char buf[32])
{
    struct tm tm;
    if (gmtime_r(&t, &tm) == NULL || strftime(buf, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0) {
        snprintf(buf, 32, "%lld", (long long)t);
    }
}

int cli_write_cert(const char *out, X509 *cert)
{
    BIO *mem = BIO_new(BIO_s_mem());
    ts_err rv;

    if (mem == NULL || PEM_write_bio_X509(mem, cert) != 1) {
        BIO_free(mem);
        ts_error_set_openssl(TS_ERR_CRYPTO, "cannot encode the certificate");
        return cli_fail();
    }
    rv = cli_write_bio(out, mem, 0644);
    BIO_free(mem);
    return rv == TS_OK ? CLI_EXIT_OK : cli_fail();
}

/* --- positional arguments ----------------------------------------------------------------------
 */

static const cli_opt *leaf_opt(const cli_command *leaf, const char *arg)
{
    size_t len = strcspn(arg + 2, "=");
    for (const cli_opt *o = leaf->opts; o != NULL && o->name != NULL; o++) {
        if (strlen(o->name) == len && strncmp(o->name, arg + 2, len) == 0) {
            return o;
        }
    }
    return NULL;
}

static int push(char **out, int *n, const char *s)
{
    out[*n] = strdup(s);
    if (out[*n] == NULL) {
        return -1;
    }
    (*n)++;
    return 0;
}

int cli_argv_positional(const cli_command *top, int argc, char **argv, int *out_argc,
                        char ***out_argv)
{
    const cli_command *cmd = top;
    const char *pos_option = NULL;
    const char *repeat = NULL; /* the repeatable option whose value came last */
    char path[CLI_PATH_MAX] = "";
    char **out = calloc((size_t)argc * 2 + 1, sizeof *out);
    int n = 0, i = 0;

    *out_argv = out;
    *out_argc = 0;
    if (out == NULL) {
        return -1;
    }
    /* Down the tables to the leaf; the command words stay as they are. */
    while (i < argc && cmd->subs != NULL) {
        const cli_command *c = cmd->subs;
        while (c->name != NULL && strcmp(c->name, argv[i]) != 0) {
            c++;
        }
        if (c->name == NULL) {
            break;
        }
        size_t used = strlen(path);
        snprintf(path + used, sizeof path - used, "%s%s", used > 0 ? " " : "", c->name);
        if (push(out, &n, argv[i++]) != 0) {
            goto fail;
        }
        cmd = c;
    }
    for (size_t k = 0; cmd->subs == NULL && k < sizeof positional / sizeof positional[0]; k++) {
        if (strcmp(positional[k].path, path) == 0) {
            pos_option = positional[k].option;
        }
    }
    for (; i < argc; i++) {
        const char *arg = argv[i];
        /* "-o FILE", as compilers and openssl write it, for a command that has --out. */
        if (cmd->subs == NULL && strcmp(arg, "-o") == 0 && leaf_opt(cmd, "--out") != NULL) {
            arg = "--out";
        }
        if (cmd->subs == NULL && strncmp(arg, "--", 2) == 0 && arg[2] != '\0') {
            const cli_opt *o = leaf_opt(cmd, arg);
            repeat = NULL;
            if (push(out, &n, arg) != 0) {
                goto fail;
            }
            if (o != NULL && o->value != NULL && strchr(arg, '=') == NULL && i + 1 < argc &&
                strncmp(argv[i + 1], "--", 2) != 0) {
                if (push(out, &n, argv[++i]) != 0) {
                    goto fail;
                }
            }
            if (o != NULL && o->value != NULL && (o->flags & CLI_OPT_REPEAT) != 0) {
                repeat = arg;
            }
            continue;
        }
        const char *option = NULL;
        char buf[CLI_PATH_MAX];
        if (cmd->subs == NULL && arg[0] != '-' && repeat != NULL) {
            size_t len = strcspn(repeat, "=");
            snprintf(buf, sizeof buf, "%.*s", (int)len, repeat);
            option = buf;
        } else if (cmd->subs == NULL && arg[0] != '-' && pos_option != NULL) {
            /* A repeatable positional option takes every word that follows, too. */
            const cli_opt *o = leaf_opt(cmd, pos_option);
            option = pos_option;
            repeat = o != NULL && (o->flags & CLI_OPT_REPEAT) != 0 ? pos_option : NULL;
            pos_option = NULL;
        }
        if ((option != NULL && push(out, &n, option) != 0) || push(out, &n, arg) != 0) {
            goto fail;
        }
    }
    *out_argc = n;
    return 0;
fail:
    cli_argv_free(n, out);
    *out_argv = NULL;
    return -1;
}

void cli_argv_free(int argc, char **argv)
{
    for (int i = 0; argv != NULL && i < argc; i++) {
        /* The copies may hold an API token (--token). */
        if (argv[i] != NULL) {
            OPENSSL_cleanse(argv[i], strlen(argv[i]));
        }
        free(argv[i]);
    }
    free(argv);
}
