/*
 * Remote mode of the instance commands: the same commands on a running trust service, through
 * its REST API (/api/v1, docs/cli.md "Remote mode"), instead of on the instance directory.
 *
 * A command runs remotely when --server URL is given, or when $TESSERA_SERVER is set and --dir
 * is not. The API token comes from --token or $TESSERA_TOKEN and travels only in the
 * Authorization header of requests to that server, over TLS that verifies the server against
 * --cacert (or $TESSERA_CACERT, else the system's trust store). Redirects are not followed, so
 * the token never goes anywhere else.
 *
 * A reply with an error status prints "tessera: <the server's message>" and the command exits 1.
 *
 * Not thread-safe: one cli_remote per command run.
 */
#ifndef TS_CLI_REMOTE_H
#define TS_CLI_REMOTE_H

#include <jansson.h>

#include "cli/cli_instance.h"

/* The options of remote mode, for the option tables of the commands that support it. */
#define CLI_OPTS_REMOTE                                                                            \
    {.name = "server",                                                                             \
     .value = "URL",                                                                               \
     .help = "work on the service at URL (https) instead of --dir; default $TESSERA_SERVER"},      \
        {.name = "token",                                                                          \
         .value = "TOKEN",                                                                         \
         .help = "the API token for --server (default $TESSERA_TOKEN)"},                           \
    {                                                                                              \
        .name = "cacert", .value = "FILE",                                                         \
        .help = "PEM CA certificate(s) that verify --server (default $TESSERA_CACERT)"             \
    }

/* The --help text on remote mode, to end the help of the commands that support it. */
#define CLI_REMOTE_HELP                                                                            \
    "Remote mode: with --server URL (or $TESSERA_SERVER, when --dir is not given) the command\n"   \
    "works on a running trust service through its REST API, as the user of the API token\n"        \
    "--token (or $TESSERA_TOKEN). --cacert FILE (or $TESSERA_CACERT) names the CA certificate\n"   \
    "that verifies the server, such as the instance's root (tessera ca show --root). Without\n"    \
    "--tenant the token's own tenant is used (the default tenant for an instance-wide token).\n"

enum {
    CLI_REMOTE_REPLY_MAX = 32 * 1024 * 1024, /* bytes of one reply */
    CLI_REMOTE_PAGE = 1000,                  /* rows asked for per page of a list */
};

typedef struct cli_remote cli_remote;

/* Whether the command runs remotely: --server given, or $TESSERA_SERVER set without --dir. */
int cli_remote_wanted(const cli_args *args);

/*
 * Checks the remote options (an https URL without credentials, query or fragment; a token of
 * RFC 6750 b64token characters; --dir not given with --server) and prepares a connection. A
 * token is required unless need_token is 0. Returns the exit status (a message already printed);
 * *out is set on CLI_EXIT_OK.
 */
int cli_remote_open(const cli_args *args, int need_token, cli_remote **out);
/* Wipes the token and closes the connection; accepts NULL. */
void cli_remote_free(cli_remote *rm);

/* Whether the connection carries an API token. */
int cli_remote_has_token(const cli_remote *rm);

/*
 * Writes a request path into buf: fmt with %s only, each argument percent-encoded as one path
 * segment or query value. Returns CLI_EXIT_OK, or CLI_EXIT_FAIL with a message when it does not
 * fit.
 */
int cli_remote_path(char *buf, size_t size, const char *fmt, ...);

/* Appends "?name=value" (or "&name=value" after a first one) to path, value percent-encoded. */
int cli_remote_query(char *path, size_t size, const char *name, const char *value);

/*
 * Sends a request (body: a JSON document, or NULL for none) and parses the JSON reply into
 * *reply (NULL when the reply has no body; json_decref it). Returns the exit status: an error
 * status from the server prints its message and returns CLI_EXIT_FAIL.
 */
int cli_remote_call(cli_remote *rm, const char *method, const char *path, json_t *body,
                    json_t **reply);

/*
 * GETs a list route page by page ({"items": [...], "next": cursor}) into one JSON array, at most
 * max items (0: all). path may carry a query already.
 */
int cli_remote_list(cli_remote *rm, const char *path, size_t max, json_t **items);

/* GETs path and returns the reply's bytes as they are (a DER CRL); OPENSSL_free(*data). */
int cli_remote_get_bytes(cli_remote *rm, const char *path, uint8_t **data, size_t *len);

/*
 * The tenant a command acts in: --tenant, else the token's own tenant (GET /api/v1/me), else the
 * default tenant for an instance-wide token.
 */
int cli_remote_tenant(cli_remote *rm, const cli_args *args, char out[TS_TENANT_NAME_MAX + 1]);

/*
 * The start of most remote commands: opens the connection (a token required), finds the tenant
 * (cli_remote_tenant) and writes path from fmt, whose first %s is the tenant and whose second,
 * when arg is not NULL, is arg. Returns the exit status; free *rm whatever it returns.
 */
int cli_remote_begin(const cli_args *args, const char *fmt, const char *arg, cli_remote **rm,
                     char tenant[TS_TENANT_NAME_MAX + 1], char *path, size_t size);

/* A string member of a JSON object, or fallback when it is missing or not a string. */
/*
 * DELETE /api/v1/tenants/<tenant>/<collection>/<id> (a revocation: claim codes, tokens) and, when
 * it succeeds, "<what> <id> revoked" on stdout.
 */
int cli_remote_revoke_id(const cli_args *args, const char *collection, const char *what,
                         int64_t id);

const char *cli_json_str(const json_t *obj, const char *key, const char *fallback);

/* An integer member (as a number, or as a decimal string); -1 when missing or not one. */
int cli_json_i64(const json_t *obj, const char *key, int64_t *out);

/* Wipes a JSON string member in place (a token or claim code in a reply) before it is freed. */
void cli_json_wipe(json_t *obj, const char *key);

/* Writes the "pem" member of a reply to out (0644), or stdout when out is NULL. */
int cli_remote_write_pem(const char *out, const json_t *reply);

/* --- The remote branches of the commands (cli_remote_cert.c, cli_remote_admin.c) ----------- */

/* One line of cert list from a certificate in a reply. */
void cli_remote_cert_line(const json_t *row);

/* cert issue (serial NULL) or cert rekey (serial of the old certificate) with a CSR. */
int cli_remote_cert_issue(const cli_args *args, const char *serial, const uint8_t *csr, size_t len);
int cli_remote_cert_renew(const cli_args *args, const char *serial);
int cli_remote_cert_revoke(const cli_args *args, const char *serial, int reason);
int cli_remote_cert_list(const cli_args *args);
int cli_remote_cert_show(const cli_args *args, const char *serial);

int cli_remote_ca_show(const cli_args *args, int root);
int cli_remote_crl(const cli_args *args);
int cli_remote_tenant_list(const cli_args *args);
int cli_remote_tenant_create(const cli_args *args);
int cli_remote_profile_list(const cli_args *args);
int cli_remote_profile_show(const cli_args *args);
int cli_remote_audit_list(const cli_args *args, int64_t after, size_t limit);
int cli_remote_audit_verify(const cli_args *args);

#endif
