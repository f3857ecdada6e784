/*
 * The CA instance commands of tessera (init, ceremony, tenant, ca, profile, cert, crl, ocsp,
 * batch, audit): their tables and what they share, such as finding and opening the instance of
 * --dir and the positional arguments (tenant create NAME, cert show SERIAL, --shares FILE...).
 */
#ifndef TS_CLI_INSTANCE_H
#define TS_CLI_INSTANCE_H

#include "cli/cli_internal.h"
#include "tessera/ca.h"

#define CLI_DIR_DEFAULT "tessera-data"

/* The --dir option every instance command takes, for the option tables. */
#define CLI_OPT_DIR                                                                                \
    {                                                                                              \
        .name = "dir", .value = "DIR",                                                             \
        .help = "the instance directory (default $TESSERA_DIR, else ./" CLI_DIR_DEFAULT ")"        \
    }
#define CLI_OPT_TENANT                                                                             \
    {                                                                                              \
        .name = "tenant", .value = "NAME", .help = "the tenant (default: " TS_DEFAULT_TENANT ")"   \
    }

#define CLI_OPT_INSTANCE                                                                           \
    {                                                                                              \
        .name = "instance", .help = "instance-wide, in no tenant (an admin of every tenant)"       \
    }

/* The --help text on the instance directory and the environment. */
extern const char cli_instance_help[];

/* The groups and leaves, for main.c's table. */
extern const cli_command cli_ceremony_commands[];
extern const cli_command cli_tenant_commands[];
extern const cli_command cli_ca_commands[];
extern const cli_command cli_profile_commands[];
extern const cli_command cli_cert_commands[];
extern const cli_command cli_audit_commands[];
extern const cli_command cli_claim_commands[];
extern const cli_command cli_device_commands[];
extern const cli_command cli_user_commands[];
extern const cli_command cli_token_commands[];
extern const cli_opt cli_init_opts[];
extern const cli_opt cli_crl_opts[];
extern const cli_opt cli_ocsp_opts[];
extern const cli_opt cli_batch_opts[];
extern const char cli_init_help[];
extern const char cli_crl_help[];
extern const char cli_batch_help[];
int cli_init_run(const cli_args *args);
int cli_crl_run(const cli_args *args);
int cli_ocsp_run(const cli_args *args);
int cli_batch_run(const cli_args *args);

/* --dir, else $TESSERA_DIR, else ./tessera-data. */
const char *cli_instance_dir(const cli_args *args);

/* Who acts, for the audit log: $TESSERA_OPERATOR, else the login name. */
void cli_actor(char *buf, size_t size);

/* Opens the instance of --dir; returns the exit status (a message already printed). */
int cli_instance_open(const cli_args *args, ts_ca **ca);

/*
 * Refuses an --out FILE that exists and is not a regular file (it would be replaced); returns
 * the exit status (a message already printed). cli_instance_open() calls it; remote mode too.
 */
int cli_out_check(const cli_args *args);

/* One line of tessera cert list: serial, status, not after, profile, device, subject (tabs). */
void cli_cert_line(const char *serial, const char *status, const char *not_after,
                   const char *profile, const char *device, const char *subject);

/*
 * Where a user or token command acts: --instance gives NULL (instance-wide), else --tenant, else
 * the default tenant, named. Both options given, or --instance in remote mode, is a usage error.
 */
int cli_access_scope(const cli_args *args, const char **tenant);

/* A time as "2025-03-19T12:00:00Z". */
void cli_time_text(time_t t, char buf[32]);

/* Writes a certificate as PEM to --out (0644) or stdout. */
int cli_write_cert(const char *out, X509 *cert);

/*
 * Rewrites argv (without the program name) so positional words become options: the NAME of
 * "tenant create NAME" becomes "--name NAME", the SERIAL of "cert show SERIAL" "--serial SERIAL",
 * and the words after a repeatable option's value ("--shares a b c") more of that option. The
 * result is freed with cli_argv_free(). Returns 0, or -1 when out of memory.
 */
int cli_argv_positional(const cli_command *top, int argc, char **argv, int *out_argc,
                        char ***out_argv);
void cli_argv_free(int argc, char **argv);

#endif
