/*
 * tessera: the command-line tool. Subcommands are dispatched from the table below; each group
 * keeps its own table beside its code (cli_keystore.c, cli_demo.c).
 */
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

#include "cli/cli_demo.h"
#include "cli/cli_fw.h"
#include "cli/cli_instance.h"
#include "cli/cli_internal.h"
#include "cli/cli_group.h"
#include "cli/cli_job.h"
#include "cli/cli_rtp.h"

static const cli_command top_commands[] = {
    {.name = "init",
     .summary = "Create a CA instance: the key ceremony",
     .opts = cli_init_opts,
     .run = cli_init_run,
     .help = cli_init_help},
    {.name = "ceremony",
     .summary = "The root key: restore from shares, take offline",
     .subs = cli_ceremony_commands,
     .help = cli_instance_help},
    {.name = "tenant",
     .summary = "Tenants, each with its own issuing CA",
     .subs = cli_tenant_commands,
     .help = cli_instance_help},
    {.name = "ca",
     .summary = "CA certificates and cloud verification certificates",
     .subs = cli_ca_commands,
     .help = cli_instance_help},
    {.name = "profile",
     .summary = "Certificate profiles of a tenant",
     .subs = cli_profile_commands,
     .help = cli_instance_help},
    {.name = "cert",
     .summary = "Issue, list, show, revoke, renew and rekey certificates",
     .subs = cli_cert_commands,
     .help = cli_instance_help},
    {.name = "crl",
     .summary = "Write a CRL of a tenant's issuing CA",
     .opts = cli_crl_opts,
     .run = cli_crl_run,
     .help = cli_crl_help},
    {.name = "ocsp",
     .summary = "Answer an OCSP request (RFC 6960)",
     .opts = cli_ocsp_opts,
     .run = cli_ocsp_run,
     .help = cli_instance_help},
    {.name = "rtp",
     .summary = "Offline provisioning: bundles, rtp server",
     .subs = cli_rtp_commands},
    {.name = "batch",
     .summary = "Provision a batch of devices: keys, certificates, manifest",
     .opts = cli_batch_opts,
     .run = cli_batch_run,
     .help = cli_batch_help},
    {.name = "audit",
     .summary = "The audit log: list and verify",
     .subs = cli_audit_commands,
     .help = cli_instance_help},
    {.name = "claim",
     .summary = "Claim codes for zero-touch enrollment: create, list, revoke",
     .subs = cli_claim_commands,
     .help = cli_instance_help},
    {.name = "job", .summary = "Provisioning jobs for device agents", .subs = cli_job_commands},
    {.name = "serve", .summary = "Run the service", .opts = cli_serve_opts, .run = cli_serve_run},
    {.name = "device",
     .summary = "The device registry: list, show, register, disable, enable",
     .subs = cli_device_commands,
     .help = cli_instance_help},
    {.name = "group",
     .summary = "Device groups: create, delete, add, remove, list, show",
     .subs = cli_group_commands,
     .help = cli_instance_help},
    {.name = "user",
     .summary = "Users of the REST API and their roles",
     .subs = cli_user_commands,
     .help = cli_instance_help},
    {.name = "token",
     .summary = "API tokens of users: create, list, revoke",
     .subs = cli_token_commands,
     .help = cli_instance_help},
    {.name = "keystore",
     .summary = "Manage a key store: keys, data objects and counters",
     .subs = cli_keystore_commands,
     .help = cli_keystore_env_help},
    {.name = "fw",
     .summary = "Firmware update files: sign, verify, inspect",
     .subs = cli_fw_commands,
     .help = cli_fw_help},
    {.name = "demo",
     .summary = "Run the device-to-cloud demo on loopback: service, broker, devices",
     .opts = cli_demo_opts,
     .run = cli_demo_run,
     .help = cli_demo_help},
    {0},
};

static const cli_command top = {
    .name = "",
    .summary = "Tessera: device identities kept in a key store.",
    .subs = top_commands,
    .help = "Options:\n"
            "  -h, --help      print this help and exit\n"
            "  --version       print the version and exit\n",
};

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "--version") == 0) {
        printf("tessera %s (%s)\n", TS_VERSION, OpenSSL_version(OPENSSL_VERSION));
        return CLI_EXIT_OK;
    }
    int nargc = 0;
    char **nargv = NULL;
    if (cli_argv_positional(&top, argc - 1, argv + 1, &nargc, &nargv) != 0) {
        fprintf(stderr, "tessera: out of memory\n");
        return CLI_EXIT_FAIL;
    }
    int status = cli_dispatch("", &top, nargc, nargv);
    cli_argv_free(nargc, nargv);
    return status;
}
