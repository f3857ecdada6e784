/*
 * Inside the tessera command: the command table, option parsing and output helpers shared by the
 * subcommands.
 *
 * Every command is a cli_command. A group ("keystore") has a table of subcommands; a leaf has an
 * option table and a run function. main.c dispatches argv down the tables (cli_dispatch), parses
 * the leaf's options (cli_opts.c) and calls run, whose return value is the exit status:
 *   CLI_EXIT_OK     success
 *   CLI_EXIT_FAIL   the operation failed: "tessera: <ts_error_message()>" on stderr
 *   CLI_EXIT_USAGE  the command line is wrong: what is wrong and the usage line on stderr
 * A command that fails changes nothing it was asked to change.
 */
#ifndef TS_CLI_INTERNAL_H
#define TS_CLI_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include <openssl/bio.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "tessera/error.h"
#include "tessera/keystore.h"

#ifndef TS_VERSION
#define TS_VERSION "0.1.0"
#endif

enum {
    CLI_EXIT_OK = 0,
    CLI_EXIT_FAIL = 1,
    CLI_EXIT_USAGE = 2,
};

enum {
    CLI_OPTS_MAX = 16,   /* options of one command */
    CLI_REPEAT_MAX = 32, /* values of one repeatable option */
    CLI_PATH_MAX = 96,   /* "keystore genkey" and the like */
};

/* Option flags. */
#define CLI_OPT_REQUIRED (1U << 0) /* the command cannot run without it */
#define CLI_OPT_REPEAT   (1U << 1) /* may be given several times; values kept in order */

typedef struct cli_opt {
    const char *name;  /* "label" for --label; NULL ends a table */
    const char *value; /* what the value is called in usage ("NAME"), NULL for a flag */
    unsigned flags;    /* CLI_OPT_* */
    const char *help;  /* one line */
} cli_opt;

/* A parsed command line of a leaf command. Values point into argv. */
typedef struct cli_args {
    const struct cli_command *cmd;
    char path[CLI_PATH_MAX]; /* "keystore genkey", for messages */
    const char *values[CLI_OPTS_MAX][CLI_REPEAT_MAX];
    size_t count[CLI_OPTS_MAX];
} cli_args;

typedef struct cli_command {
    const char *name; /* NULL ends a table */
    const char *summary;
    /* a leaf: */
    const cli_opt *opts; /* ended by a NULL name; NULL when the command takes no option */
    int (*run)(const cli_args *args);
    const char *help; /* more text for --help (environment, examples), or NULL */
    /* a group: */
    const struct cli_command *subs; /* ended by a NULL name */
} cli_command;

/* --- Dispatch and option parsing (cli_opts.c) ------------------------------------------------ */

/*
 * Runs the subcommand of group named by argv[0] (the program name already removed); path is the
 * group's path ("" at the top, "keystore" below it). Handles --help and -h on every level and
 * reports unknown commands and bad options. Returns the exit status.
 */
int cli_dispatch(const char *path, const cli_command *group, int argc, char **argv);

/* The value of --name (the last one given), or NULL when absent. Flags read as "". */
const char *cli_opt_value(const cli_args *args, const char *name);

/* Whether --name was given. */
int cli_opt_given(const cli_args *args, const char *name);

/* The values of a repeatable option, in order; returns how many. */
size_t cli_opt_values(const cli_args *args, const char *name, const char *const **values);

/* Prints "tessera: PATH: message" and the usage line to stderr; returns CLI_EXIT_USAGE. */
int cli_usage_error(const cli_args *args, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Prints "tessera: <ts_error_message()>" to stderr; returns CLI_EXIT_FAIL. */
int cli_fail(void);

/* Parses a decimal unsigned 64-bit number: digits only, no sign, no overflow. 0 on success. */
int cli_parse_u64(const char *text, uint64_t *out);

/*
 * Parses a duration: a positive decimal number followed by one unit, s (seconds), m (minutes),
 * h (hours) or d (days): "30s", "15m", "12h", "7d". At most max_seconds. 0 on success, -1 on
 * anything else (no sign, no space, no other unit, no zero).
 */
int cli_parse_duration(const char *text, int64_t max_seconds, int64_t *out);

/* --- Output and input (cli_opts.c) ----------------------------------------------------------- */

/*
 * Writes data to path atomically with mode (ts_file_write_atomic), or to stdout when path is NULL
 * or "-". Errors set the message.
 */
ts_err cli_write_output(const char *path, const uint8_t *data, size_t len, mode_t mode);

/* As cli_write_output() with the content of a memory BIO. */
ts_err cli_write_bio(const char *path, BIO *mem, mode_t mode);

/* Reads a file of at most max bytes, or stdin for "-"; free with OPENSSL_clear_free(*data, *len).
 */
ts_err cli_read_input(const char *path, size_t max, uint8_t **data, size_t *len);

/* --- The trust service (cli_serve.c) -------------------------------------------------------- */

extern const cli_opt cli_serve_opts[];
int cli_serve_run(const cli_args *args);

/* --- Key store (cli_keystore*.c) ------------------------------------------------------------- */

extern const cli_command cli_keystore_commands[];

/* The --help text on URIs and environment shared by the keystore commands. */
extern const char cli_keystore_env_help[];

/* --keystore, else $TESSERA_KEYSTORE, else NULL. */
const char *cli_keystore_uri(const cli_args *args);

/* Opens the store of --keystore; returns the exit status (a message already printed). */
int cli_keystore_open(const cli_args *args, ts_keystore **ks);

/* Checks a label given on the command line; a bad one is a usage error. */
int cli_keystore_check_label(const cli_args *args, const char *label);

/* The commands of the other keystore files. */
int cli_keystore_cmd_csr(const cli_args *args);
int cli_keystore_cmd_put(const cli_args *args);
int cli_keystore_cmd_get(const cli_args *args);

/* Prints the store's URI, backend, UID and a table of its objects. */
ts_err cli_keystore_print_list(ts_keystore *ks, FILE *out, const char *indent);

/* Writes the UID as lowercase hex into hex (2 * TS_KEYSTORE_UID_LEN + 1 bytes). */
ts_err cli_keystore_uid_hex(ts_keystore *ks, char hex[2 * TS_KEYSTORE_UID_LEN + 1]);

/*
 * Parses a subject in the form /A=B/C=D (a backslash escapes the next character, so "\/" is a
 * slash inside a value) into a new X509_NAME. Attributes: CN, O, OU, C, ST, L, and a few others
 * named in the message when one is unknown. TS_ERR_INVALID naming what is wrong.
 */
ts_err cli_subject_parse(const char *text, X509_NAME **out);

/*
 * Parses subjectAltName items: each text is one or more comma-separated TYPE:VALUE with TYPE one
 * of DNS, URI, IP, email. Adds them to *names (made when NULL). TS_ERR_INVALID naming the item.
 */
ts_err cli_san_parse(const char *text, GENERAL_NAMES **names);

/*
 * A PKCS#10 request for the key label, with subject and (when not NULL) a subjectAltName
 * extension, signed inside the store through the provider with SHA-256 (P-256) or SHA-384 (P-384),
 * and checked against the key's public half before it is returned.
 */
ts_err cli_csr_make(ts_keystore *ks, const char *label, const X509_NAME *subject,
                    const GENERAL_NAMES *sans, X509_REQ **out);

/* --- Demo (cli_demo*.c, cli_tls.c, cli_p11check.c) ------------------------------------------ */

int cli_demo_run(const cli_args *args);

/* A throwaway CA whose key is in memory only (cli_demo_ca.c). */
typedef struct cli_ca cli_ca;

/* A CA with a fresh P-256 key and a self-signed certificate for subject (/CN=.. form). */
ts_err cli_ca_new(const char *subject, cli_ca **out);
void cli_ca_free(cli_ca *ca);
X509 *cli_ca_cert(const cli_ca *ca); /* owned by the CA */

/* Issues an end-entity certificate (serverAuth when server != 0, else clientAuth). */
ts_err cli_ca_issue(cli_ca *ca, const X509_NAME *subject, EVP_PKEY *pub, const GENERAL_NAMES *sans,
                    int server, X509 **out);

/* Checks the request's signature, then issues a client certificate for its subject and key. */
ts_err cli_ca_issue_for_request(cli_ca *ca, X509_REQ *req, X509 **out);

/* TLS over loopback (cli_tls.c). */
enum { CLI_TLS_LINE_MAX = 255 };

typedef struct cli_tls_result {
    ts_err rv;
    char protocol[16];
    char cipher[64];
    char peer_subject[256];
    char received[CLI_TLS_LINE_MAX + 1];
    char error[1024]; /* the message when rv != TS_OK */
} cli_tls_result;

typedef struct cli_tls_server cli_tls_server;

/*
 * A TLS 1.3 context with cert and key, trusting ca. A server requires a client certificate
 * (SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT); a client checks the server's. libctx may be
 * NULL (the default context) or ts_provider_libctx() for a key-store key.
 */
ts_err cli_tls_ctx_new(OSSL_LIB_CTX *libctx, int server, X509 *cert, EVP_PKEY *key, X509 *ca,
                       SSL_CTX **out);

/* Listens on 127.0.0.1 on a port the kernel picks and serves one connection in a thread: reads
 * a line, answers with reply. ctx and reply must outlive cli_tls_server_finish(). */
ts_err cli_tls_server_start(SSL_CTX *ctx, const char *reply, cli_tls_server **out,
                            unsigned short *port);

/* Waits for the server thread and returns what it saw. */
void cli_tls_server_finish(cli_tls_server *server, cli_tls_result *result);

/* Connects to 127.0.0.1:port expecting the name host, sends line, reads the answer. */
ts_err cli_tls_client_run(SSL_CTX *ctx, unsigned short port, const char *host, const char *line,
                          cli_tls_result *result);

/* What a PKCS#11 module says about a private key (cli_p11check.c). */
typedef struct cli_p11_attrs {
    int sensitive, extractable, always_sensitive, never_extractable;
    int value_refused;      /* reading CKA_VALUE gave CKR_ATTRIBUTE_SENSITIVE */
    unsigned long value_rv; /* what reading CKA_VALUE returned */
} cli_p11_attrs;

/* Loads module, finds the token labelled token, logs in with pin and reads the attributes of the
 * private key labelled label. */
ts_err cli_p11_key_attributes(const char *module, const char *token, const char *pin,
                              const char *label, cli_p11_attrs *out);

#endif
