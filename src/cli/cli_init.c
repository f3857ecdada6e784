/*
 * tessera init: creates an instance with its key ceremony (src/server/init.c does the work).
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "cli/cli_instance.h"
#include "common/error_internal.h"

const cli_opt cli_init_opts[] = {
    CLI_OPT_DIR,
    {.name = "keystore",
     .value = "URI",
     .help = "the key store of the CA keys (default: a SoftHSM2 token under DIR)"},
    {.name = "org", .value = "NAME", .help = "organisation in the CA subjects (default Tessera)"},
    {.name = "country", .value = "CC", .help = "country in the CA subjects, two letters"},
    {.name = "url", .value = "BASEURL", .help = "base of the CRL and OCSP URLs in certificates"},
    {.name = "shares", .value = "M/N", .help = "root key backup: N shares, M to restore (3/5)"},
    {.name = "operator",
     .value = "NAME",
     .help = "who holds the ceremony (the transcript's actor)"},
    {.name = "db",
     .value = "URL",
     .help = "store: postgresql://... (default sqlite:DIR/tessera.db)"},
    {0},
};

const char cli_init_help[] =
    "Creates DIR (or takes an empty one) and in it: the key store, a root CA key (P-384) and\n"
    "certificate, the default tenant's issuing CA key (P-256) and certificate, the built-in\n"
    "profiles, the store, and the root key's backup: root-key.wrapped and N share files in\n"
    "DIR/shares. The ceremony transcript is the first entries of the audit log. It also issues\n"
    "the service's TLS server certificate (DIR/tls/server.pem, for localhost, 127.0.0.1 and the\n"
    "host of --url) and makes the instance-wide admin user \"admin\", whose API token is the\n"
    "last line printed: it is shown only once.\n"
    "\n"
    "Without --keystore the keys go to a SoftHSM2 token in DIR/tokens (configuration\n"
    "DIR/softhsm2.conf), or to a soft: store in DIR/keystore when SoftHSM2 is not installed; its\n"
    "PIN is random and kept in DIR/keystore.pin (mode 0600).\n"
    "\n"
    "Example:\n"
    "  tessera init --dir /srv/tessera --org 'Acme Devices' --country DE \\\n"
    "      --url https://pki.acme.example --shares 3/5 --operator 'Kim Lee'\n"
    "\n"
    "Environment:\n"
    "  TESSERA_OPERATOR   the operator when --operator is not given (default: login name)\n"
    "  TS_SOFTHSM_MODULE  the SoftHSM2 module (default /usr/lib/softhsm/libsofthsm2.so)\n";

static int parse_shares(const cli_args *args, const char *text, unsigned *m, unsigned *n)
{
    const char *slash = text != NULL ? strchr(text, '/') : NULL;
    char left[16];
    uint64_t a = 0, b = 0;

    if (text == NULL) {
        return CLI_EXIT_OK;
    }
    if (slash == NULL || (size_t)(slash - text) >= sizeof left) {
        return cli_usage_error(args, "--shares: give M/N, such as 3/5");
    }
    snprintf(left, sizeof left, "%.*s", (int)(slash - text), text);
    if (cli_parse_u64(left, &a) != 0 || cli_parse_u64(slash + 1, &b) != 0 || a < 2 || a > b ||
        b > TS_CA_SHARES_MAX) {
        return cli_usage_error(args, "--shares: M/N with 2 <= M <= N <= %d, such as 3/5",
                               TS_CA_SHARES_MAX);
    }
    *m = (unsigned)a;
    *n = (unsigned)b;
    return CLI_EXIT_OK;
}

int cli_init_run(const cli_args *args)
{
    ts_ca_init_params p;
    ts_ca_init_result res;
    char actor[256];
    int status;

    memset(&p, 0, sizeof p);
    status = parse_shares(args, cli_opt_value(args, "shares"), &p.shares_m, &p.shares_n);
    if (status != CLI_EXIT_OK) {
        return status;
    }
    cli_actor(actor, sizeof actor);
    p.dir = cli_instance_dir(args);
    p.keystore_uri = cli_opt_value(args, "keystore");
    p.db_url = cli_opt_value(args, "db");
    p.org = cli_opt_value(args, "org");
    p.country = cli_opt_value(args, "country");
    p.base_url = cli_opt_value(args, "url");
    p.operator_name = cli_opt_given(args, "operator") ? cli_opt_value(args, "operator") : actor;
    if (ts_ca_init(&p, &res) != TS_OK) {
        return cli_fail();
    }
    printf("instance:    %s\n", p.dir);
    printf("key store:   %s\n", res.keystore_uri);
    printf("root CA:     SHA-256 %s\n", res.root_fingerprint);
    printf("issuing CA:  SHA-256 %s (tenant %s)\n", res.issuing_fingerprint, TS_DEFAULT_TENANT);
    printf("root backup: %u-of-%u shares in %s/share-<i>-of-%u.txt\n", res.shares_m, res.shares_n,
           res.shares_dir, res.shares_n);
    printf("\n"
           "Give each of the %u share files to a different custodian (print it or copy it to its\n"
           "own medium), check the root fingerprint above against the one printed on the shares,\n"
           "then delete %s. Any %u shares restore the root key:\n"
           "  tessera ceremony restore --dir %s --shares FILE...\n"
           "Take the root key offline once the shares are safe:\n"
           "  tessera ceremony offline-root --dir %s\n",
           res.shares_n, res.shares_dir, res.shares_m, p.dir, p.dir);
    printf("\n"
           "The API token of the admin user is shown once, on the next line: keep it secret.\n"
           "admin token: %s\n",
           res.admin_token);
    fflush(stdout);
    OPENSSL_cleanse(res.admin_token, sizeof res.admin_token);
    return CLI_EXIT_OK;
}
