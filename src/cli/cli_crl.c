/*
 * tessera crl: a fresh CRL of a tenant's issuing CA (or of the root); tessera ocsp: an answer to
 * an OCSP request, the responder function the network service exposes, from the command line.
 */
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/pem.h>

#include "cli/cli_remote.h"
#include "common/error_internal.h"

enum {
    HOURS_DEFAULT = 7 * 24,
    OCSP_REQUEST_MAX = 64 * 1024,
};

const cli_opt cli_crl_opts[] = {
    CLI_OPT_DIR,
    CLI_OPT_TENANT,
    {.name = "root", .help = "the root's CRL (revoked issuing CAs); needs the root key online"},
    {.name = "out", .value = "FILE", .help = "write the CRL here (default: standard output)"},
    {.name = "pem", .help = "PEM instead of DER"},
    {.name = "next-update", .value = "HOURS", .help = "nextUpdate this far ahead (default 168)"},
    CLI_OPTS_REMOTE,
    {0},
};

const char cli_crl_help[] =
    "Each CRL gets the CA's next CRL number from the store; thisUpdate is now. It lists every\n"
    "revoked certificate of the CA that has not expired, with its revocation time and reason.\n"
    "Publish it at the CRL distribution point in the certificates: BASE/crl/<tenant>.crl.\n"
    "\n"
    "Example:\n"
    "  tessera crl --tenant acme --out acme.crl\n"
    "  openssl crl -inform DER -in acme.crl -CAfile issuing.pem -noout -verify\n"
    "\n"
    "With --server the CRL is the one the service publishes (GET /crl/<tenant>.crl; no token\n"
    "is needed); --root and --next-update work on --dir only.\n"
    "\n" CLI_REMOTE_HELP;

const cli_opt cli_ocsp_opts[] = {
    CLI_OPT_DIR,
    {.name = "request", .value = "FILE", .flags = CLI_OPT_REQUIRED, .help = "a DER OCSP request"},
    {.name = "out", .value = "FILE", .help = "write the DER response here (default: stdout)"},
    {0},
};

int cli_crl_run(const cli_args *args)
{
    const char *hours_text = cli_opt_value(args, "next-update");
    uint64_t hours = HOURS_DEFAULT;
    int root = cli_opt_given(args, "root");
    ts_ca *ca = NULL;
    X509_CRL *crl = NULL;
    BIO *mem = NULL;
    int status;

    if (hours_text != NULL &&
        (cli_parse_u64(hours_text, &hours) != 0 || hours == 0 || hours > 24 * 366)) {
        return cli_usage_error(args, "--next-update: 1 to %d hours", 24 * 366);
    }
    if (root && cli_opt_given(args, "tenant")) {
        return cli_usage_error(args, "--root and --tenant do not go together");
    }
    if (cli_remote_wanted(args)) {
        return cli_remote_crl(args);
    }
    status = cli_instance_open(args, &ca);
    if (status != CLI_EXIT_OK) {
        return status;
    }
    ts_err rv = root ? ts_ca_root_crl(ca, (unsigned)hours, &crl)
                     : ts_ca_crl(ca, cli_opt_value(args, "tenant"), (unsigned)hours, &crl);
    if (rv == TS_OK) {
        mem = BIO_new(BIO_s_mem());
        int ok = mem != NULL && (cli_opt_given(args, "pem") ? PEM_write_bio_X509_CRL(mem, crl)
                                                            : i2d_X509_CRL_bio(mem, crl));
        rv = ok == 1 ? cli_write_bio(cli_opt_value(args, "out"), mem, 0644)
                     : ts_error_set_openssl(TS_ERR_CRYPTO, "cannot encode the CRL");
    }
    status = rv == TS_OK ? CLI_EXIT_OK : cli_fail();
    BIO_free(mem);
    X509_CRL_free(crl);
    ts_ca_free(ca);
    return status;
}

int cli_ocsp_run(const cli_args *args)
{
    uint8_t *req = NULL, *resp = NULL;
    size_t req_len = 0, resp_len = 0;
    ts_ca *ca = NULL;
    int status;

    if (cli_read_input(cli_opt_value(args, "request"), OCSP_REQUEST_MAX, &req, &req_len) != TS_OK) {
        return cli_fail();
    }
    status = cli_instance_open(args, &ca);
    if (status == CLI_EXIT_OK) {
        ts_err rv = ts_ca_ocsp(ca, req, req_len, &resp, &resp_len);
        if (rv == TS_OK) {
            rv = cli_write_output(cli_opt_value(args, "out"), resp, resp_len, 0644);
        }
        status = rv == TS_OK ? CLI_EXIT_OK : cli_fail();
    }
    OPENSSL_free(resp);
    OPENSSL_clear_free(req, req_len);
    ts_ca_free(ca);
    return status;
}
