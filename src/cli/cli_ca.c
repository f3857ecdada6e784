/*
 * tessera ca: print the root or a tenant's issuing CA certificate, and make the proof-of-possession
 * certificate a cloud asks for when the CA is registered there.
 */
#include <string.h>

#include "cli/cli_remote.h"

static const cli_opt show_opts[] = {
    CLI_OPT_DIR,
    CLI_OPT_TENANT,
    {.name = "root", .help = "the root CA certificate"},
    {.name = "issuing", .help = "the tenant's issuing CA certificate"},
    {.name = "out", .value = "FILE", .help = "write the PEM here (default: standard output)"},
    CLI_OPTS_REMOTE,
    {0},
};

static const cli_opt verification_opts[] = {
    CLI_OPT_DIR,
    {.name = "code",
     .value = "CODE",
     .flags = CLI_OPT_REQUIRED,
     .help = "the registration code the cloud gave (becomes the CN)"},
    CLI_OPT_TENANT,
    {.name = "out", .value = "FILE", .help = "write the PEM here (default: standard output)"},
    {0},
};

static int cmd_show(const cli_args *args)
{
    int root = cli_opt_given(args, "root"), issuing = cli_opt_given(args, "issuing");
    ts_ca *ca = NULL;
    X509 *cert = NULL;
    int status;

    if (root == issuing) {
        return cli_usage_error(args, "give exactly one of --root and --issuing");
    }
    if (root && cli_opt_given(args, "tenant")) {
        return cli_usage_error(args, "--tenant goes with --issuing (there is one root)");
    }
    if (cli_remote_wanted(args)) {
        return cli_remote_ca_show(args, root);
    }
    status = cli_instance_open(args, &ca);
    if (status != CLI_EXIT_OK) {
        return status;
    }
    if (ts_ca_cert(ca, cli_opt_value(args, "tenant"), root ? TS_CA_ROOT : TS_CA_ISSUING, &cert) !=
        TS_OK) {
        status = cli_fail();
    } else {
        status = cli_write_cert(cli_opt_value(args, "out"), cert);
    }
    X509_free(cert);
    ts_ca_free(ca);
    return status;
}

static int cmd_verification(const cli_args *args)
{
    ts_ca *ca = NULL;
    X509 *cert = NULL;
    int status = cli_instance_open(args, &ca);

    if (status != CLI_EXIT_OK) {
        return status;
    }
    if (ts_ca_verification_cert(ca, cli_opt_value(args, "tenant"), cli_opt_value(args, "code"),
                                &cert) != TS_OK) {
        status = cli_fail();
    } else {
        status = cli_write_cert(cli_opt_value(args, "out"), cert);
    }
    X509_free(cert);
    ts_ca_free(ca);
    return status;
}

const cli_command cli_ca_commands[] = {
    {.name = "show",
     .summary = "Print the root or a tenant's issuing CA certificate (PEM)",
     .opts = show_opts,
     .run = cmd_show,
     .help = "Example:\n"
             "  tessera ca show --root --out root.pem\n"
             "  tessera ca show --tenant acme --issuing --out issuing.pem\n"
             "\n" CLI_REMOTE_HELP},
    {.name = "verification-cert",
     .summary = "Issue the CN=CODE certificate that registers the CA with AWS IoT or Azure DPS",
     .opts = verification_opts,
     .run = cmd_verification,
     .help = "The certificate is signed by the tenant's issuing CA under the 'verification'\n"
             "profile. The cloud checks only that signature, so the certificate's own key is\n"
             "made in memory and discarded: nothing but the certificate is written.\n\n"
             "Example:\n"
             "  tessera ca verification-cert --code 3f1c...e9 --out verification.pem\n"},
    {0},
};
