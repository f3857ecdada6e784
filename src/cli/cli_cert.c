/*
 * tessera cert: issue from a CSR, list, show, revoke, renew (same key) and rekey (new key).
 * SERIAL is hexadecimal as `openssl x509 -serial` prints it, in any case.
 */
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/x509v3.h>

#include "cli/cli_remote.h"
#include "tessera/pki.h"

enum {
    DAYS_MAX = 100 * 366,
    CSR_READ_MAX = 16 * TS_CSR_MAX,
};

#define OPT_SERIAL                                                                                 \
    {                                                                                              \
        .name = "serial", .value = "SERIAL", .flags = CLI_OPT_REQUIRED,                            \
        .help = "the certificate's serial, hex (also positional)"                                  \
    }
#define OPT_OUT                                                                                    \
    {                                                                                              \
        .name = "out", .value = "FILE", .help = "write the PEM here (default: stdout)"             \
    }

static const cli_opt issue_opts[] = {
    CLI_OPT_DIR,
    {.name = "csr", .value = "FILE", .flags = CLI_OPT_REQUIRED, .help = "the CSR, PEM or DER"},
    {.name = "profile", .value = "NAME", .flags = CLI_OPT_REQUIRED, .help = "the profile"},
    CLI_OPT_TENANT,
    OPT_OUT,
    CLI_OPTS_REMOTE,
    {0},
};

static const cli_opt list_opts[] = {
    CLI_OPT_DIR,
    CLI_OPT_TENANT,
    {.name = "status", .value = "STATUS", .help = "valid or revoked"},
    {.name = "device", .value = "UID", .help = "only this device's certificates"},
    {.name = "expiring-within", .value = "DAYS", .help = "only those expiring within DAYS"},
    CLI_OPTS_REMOTE,
    {0},
};

static const cli_opt show_opts[] = {
    CLI_OPT_DIR, OPT_SERIAL, CLI_OPT_TENANT, CLI_OPTS_REMOTE, {0},
};

static const cli_opt revoke_opts[] = {
    CLI_OPT_DIR,
    OPT_SERIAL,
    {.name = "reason",
     .value = "REASON",
     .flags = CLI_OPT_REQUIRED,
     .help = "keyCompromise, superseded, cessationOfOperation, unspecified, ..."},
    CLI_OPT_TENANT,
    CLI_OPTS_REMOTE,
    {0},
};

static const cli_opt renew_opts[] = {
    CLI_OPT_DIR, OPT_SERIAL, CLI_OPT_TENANT, OPT_OUT, CLI_OPTS_REMOTE, {0},
};

static const cli_opt rekey_opts[] = {
    CLI_OPT_DIR,
    OPT_SERIAL,
    {.name = "csr", .value = "FILE", .flags = CLI_OPT_REQUIRED, .help = "the new key's CSR"},
    CLI_OPT_TENANT,
    OPT_OUT,
    CLI_OPTS_REMOTE,
    {0},
};

static int check_serial(const cli_args *args, char hex[TS_SERIAL_HEX])
{
    if (ts_ca_serial_normalise(cli_opt_value(args, "serial"), hex) != TS_OK) {
        return cli_usage_error(args, "%s", ts_error_message());
    }
    return CLI_EXIT_OK;
}

/* Reads --csr, opens the instance (not in remote mode: *ca stays NULL); the caller frees both. */
static int csr_and_instance(const cli_args *args, uint8_t **csr, size_t *len, ts_ca **ca)
{
    *ca = NULL;
    /* Read more than a CSR may be, so that the CSR parser names an oversized one. */
    if (cli_read_input(cli_opt_value(args, "csr"), CSR_READ_MAX, csr, len) != TS_OK) {
        return cli_fail();
    }
    int status = cli_remote_wanted(args) ? cli_out_check(args) : cli_instance_open(args, ca);
    if (status != CLI_EXIT_OK) {
        OPENSSL_clear_free(*csr, *len);
        *csr = NULL;
    }
    return status;
}

static int finish_issue(const cli_args *args, ts_err rv, X509 *cert)
{
    return rv == TS_OK ? cli_write_cert(cli_opt_value(args, "out"), cert) : cli_fail();
}

static int cmd_issue(const cli_args *args)
{
    uint8_t *csr = NULL;
    size_t len = 0;
    ts_ca *ca = NULL;
    X509 *cert = NULL;
    int status = csr_and_instance(args, &csr, &len, &ca);

    if (status != CLI_EXIT_OK) {
        return status;
    }
    if (ca == NULL) {
        status = cli_remote_cert_issue(args, NULL, csr, len);
        OPENSSL_clear_free(csr, len);
        return status;
    }
    ts_err rv = ts_ca_issue_csr(ca, cli_opt_value(args, "tenant"), cli_opt_value(args, "profile"),
                                csr, len, &cert);
    status = finish_issue(args, rv, cert);
    X509_free(cert);
    OPENSSL_clear_free(csr, len);
    ts_ca_free(ca);
    return status;
}

static int cmd_rekey(const cli_args *args)
{
    char hex[TS_SERIAL_HEX];
    uint8_t *csr = NULL;
    size_t len = 0;
    ts_ca *ca = NULL;
    X509 *cert = NULL;
    int status = check_serial(args, hex);

    if (status == CLI_EXIT_OK) {
        status = csr_and_instance(args, &csr, &len, &ca);
    }
    if (status != CLI_EXIT_OK) {
        return status;
    }
    if (ca == NULL) {
        status = cli_remote_cert_issue(args, hex, csr, len);
        OPENSSL_clear_free(csr, len);
        return status;
    }
    ts_err rv = ts_ca_cert_rekey(ca, cli_opt_value(args, "tenant"), hex, csr, len, &cert);
    status = finish_issue(args, rv, cert);
    X509_free(cert);
    OPENSSL_clear_free(csr, len);
    ts_ca_free(ca);
    return status;
}

static int cmd_renew(const cli_args *args)
{
    char hex[TS_SERIAL_HEX];
    ts_ca *ca = NULL;
    X509 *cert = NULL;
    int status = check_serial(args, hex);

    if (status == CLI_EXIT_OK && cli_remote_wanted(args)) {
        return cli_remote_cert_renew(args, hex);
    }
    if (status == CLI_EXIT_OK) {
        status = cli_instance_open(args, &ca);
    }
    if (status != CLI_EXIT_OK) {
        return status;
    }
    ts_err rv = ts_ca_cert_renew(ca, cli_opt_value(args, "tenant"), hex, &cert);
    status = finish_issue(args, rv, cert);
    X509_free(cert);
    ts_ca_free(ca);
    return status;
}

static int cmd_revoke(const cli_args *args)
{
    char hex[TS_SERIAL_HEX];
    int reason = 0;
    ts_ca *ca = NULL;
    int status = check_serial(args, hex);

    if (status != CLI_EXIT_OK) {
        return status;
    }
    if (ts_crl_reason_from_name(cli_opt_value(args, "reason"), &reason) != TS_OK) {
        return cli_usage_error(args, "--reason: %s", ts_error_message());
    }
    if (cli_remote_wanted(args)) {
        return cli_remote_cert_revoke(args, hex, reason);
    }
    status = cli_instance_open(args, &ca);
    if (status != CLI_EXIT_OK) {
        return status;
    }
    if (ts_ca_cert_revoke(ca, cli_opt_value(args, "tenant"), hex, reason) != TS_OK) {
        status = cli_fail();
    } else {
        printf("revoked %s (%s)\n", hex, ts_crl_reason_name(reason));
    }
    ts_ca_free(ca);
    return status;
}

void cli_cert_line(const char *serial, const char *status, const char *not_after,
                   const char *profile, const char *device, const char *subject)
{
    printf("%s\t%s\t%s\t%s\t%s\t%s\n", serial, status, not_after, profile,
           device != NULL && device[0] != '\0' ? device : "-", subject);
}

static const char *state_name(ts_cert_state state)
{
    return state == TS_CERT_REVOKED_STATE ? "revoked" : "valid";
}

static int cmd_list(const cli_args *args)
{
    const char *status_text = cli_opt_value(args, "status");
    const char *within = cli_opt_value(args, "expiring-within");
    ts_cert_filter f;
    ts_tenant_row t;
    ts_cert_row *rows = NULL;
    size_t count = 0;
    uint64_t days = 0;
    ts_ca *ca = NULL;
    char when[32];
    int status;

    memset(&f, 0, sizeof f);
    if (status_text != NULL && strcmp(status_text, "valid") == 0) {
        f.state = TS_CERT_VALID;
    } else if (status_text != NULL && strcmp(status_text, "revoked") == 0) {
        f.state = TS_CERT_REVOKED_STATE;
    } else if (status_text != NULL) {
        return cli_usage_error(args, "--status: valid or revoked, not '%s'", status_text);
    }
    if (within != NULL && (cli_parse_u64(within, &days) != 0 || days > DAYS_MAX)) {
        return cli_usage_error(args, "--expiring-within: a number of days up to %d", DAYS_MAX);
    }
    if (cli_remote_wanted(args)) {
        return cli_remote_cert_list(args);
    }
    status = cli_instance_open(args, &ca);
    if (status != CLI_EXIT_OK) {
        return status;
    }
    if (ts_ca_tenant(ca, cli_opt_value(args, "tenant"), &t) != TS_OK) {
        status = cli_fail();
        goto done;
    }
    f.tenant_id = t.id;
    f.device_uid = cli_opt_value(args, "device");
    f.expiring_before = within != NULL ? time(NULL) + (time_t)days * 86400 : 0;
    if (ts_store_cert_list(ts_ca_store(ca), &f, &rows, &count) != TS_OK) {
        status = cli_fail();
        goto done;
    }
    for (size_t i = 0; i < count; i++) {
        cli_time_text(rows[i].not_after, when);
        cli_cert_line(rows[i].serial, state_name(rows[i].state), when, rows[i].profile,
                      rows[i].device_uid, rows[i].subject);
    }
done:
    ts_cert_rows_free(rows, count);
    ts_ca_free(ca);
    return status;
}

static int cmd_show(const cli_args *args)
{
    char hex[TS_SERIAL_HEX], when[32];
    ts_tenant_row t;
    ts_cert_row row;
    ts_ca *ca = NULL;
    X509 *cert = NULL;
    int status = check_serial(args, hex);

    memset(&row, 0, sizeof row);
    if (status == CLI_EXIT_OK && cli_remote_wanted(args)) {
        return cli_remote_cert_show(args, hex);
    }
    if (status == CLI_EXIT_OK) {
        status = cli_instance_open(args, &ca);
    }
    if (status != CLI_EXIT_OK) {
        return status;
    }
    ts_err rv = ts_ca_tenant(ca, cli_opt_value(args, "tenant"), &t);
    if (rv == TS_OK) {
        rv = ts_store_cert_get(ts_ca_store(ca), t.id, hex, &row);
    }
    if (rv == TS_ERR_NOT_FOUND) {
        fprintf(stderr, "tessera: no certificate with serial %s in tenant '%s'\n", hex,
                cli_opt_value(args, "tenant") ? cli_opt_value(args, "tenant") : TS_DEFAULT_TENANT);
        status = CLI_EXIT_FAIL;
        goto done;
    }
    if (rv != TS_OK) {
        status = cli_fail();
        goto done;
    }
    printf("serial:     %s\nsubject:    %s\nstatus:     %s\n", row.serial, row.subject,
           state_name(row.state));
    if (row.state == TS_CERT_REVOKED_STATE) {
        cli_time_text(row.revoked_at, when);
        const char *reason = ts_crl_reason_name(row.revocation_reason);
        printf("revoked:    %s (%s)\n", when, reason != NULL ? reason : "unspecified");
    }
    printf("profile:    %s\ndevice:     %s\n", row.profile,
           row.device_uid[0] != '\0' ? row.device_uid : "-");
    cli_time_text(row.not_before, when);
    printf("not before: %s\n", when);
    cli_time_text(row.not_after, when);
    printf("not after:  %s\nsha256:     %s\n", when, row.fingerprint);
    const unsigned char *p = row.der;
    cert = d2i_X509(NULL, &p, (long)row.der_len);
    status = cert != NULL ? cli_write_cert(NULL, cert) : CLI_EXIT_FAIL;
done:
    X509_free(cert);
    ts_cert_row_clear(&row);
    ts_ca_free(ca);
    return status;
}

const cli_command cli_cert_commands[] = {
    {.name = "issue",
     .summary = "Issue a certificate for a CSR under a profile",
     .opts = issue_opts,
     .run = cmd_issue,
     .help = "The CSR must pass the profile's policy: valid signature, allowed key type and\n"
             "curve, allowed subject and SANs, no CA:TRUE. A refusal names the broken rule and\n"
             "stores nothing.\n\nExample:\n"
             "  tessera cert issue --csr device.csr --profile device --out device.pem\n"
             "\n" CLI_REMOTE_HELP},
    {.name = "list",
     .summary = "List certificates: serial, status, not after, profile, device, subject",
     .opts = list_opts,
     .run = cmd_list,
     .help =
         "Example:\n  tessera cert list --status valid --expiring-within 30\n\n" CLI_REMOTE_HELP},
    {.name = "show",
     .summary = "Show a certificate's record and PEM",
     .opts = show_opts,
     .run = cmd_show,
     .help = "Example:\n  tessera cert show $(openssl x509 -in device.pem -noout "
             "-serial)\n\n" CLI_REMOTE_HELP},
    {.name = "revoke",
     .summary = "Revoke a certificate (it goes on the next CRL and OCSP says revoked)",
     .opts = revoke_opts,
     .run = cmd_revoke,
     .help = "Example:\n  tessera cert revoke 3F2A... --reason keyCompromise\n\n" CLI_REMOTE_HELP},
    {.name = "renew",
     .summary = "A new certificate for the same key and subject, with a new validity",
     .opts = renew_opts,
     .run = cmd_renew,
     .help = "The old certificate stays valid until it expires or is revoked.\n\n" CLI_REMOTE_HELP},
    {.name = "rekey",
     .summary = "A certificate for a new key; the old one is revoked as superseded",
     .opts = rekey_opts,
     .run = cmd_rekey,
     .help = "Both happen in one transaction: the old certificate is revoked only once the new\n"
             "one is issued.\n\n" CLI_REMOTE_HELP},
    {0},
};
