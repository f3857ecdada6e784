/*
 * Remote mode of tessera cert: issue, rekey, renew, revoke, list and show through
 * /api/v1/tenants/{tenant}/certificates, printing what the local commands print.
 */
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/pem.h>

#include "cli/cli_remote.h"
#include "tessera/pki.h"

enum { PATH_MAX_LEN = 1024 };

void cli_remote_cert_line(const json_t *row)
{
    cli_cert_line(cli_json_str(row, "serial", "?"), cli_json_str(row, "status", "?"),
                  cli_json_str(row, "not_after", "?"), cli_json_str(row, "profile", "?"),
                  cli_json_str(row, "device_uid", NULL), cli_json_str(row, "subject", "?"));
}

/*
 * The API takes a CSR as PEM text. PEM goes as it is, for the server to judge as the local
 * command would; DER is parsed and re-encoded as PEM.
 */
static json_t *csr_text(const uint8_t *csr, size_t len)
{
    static const char begin_pem[] = "-----BEGIN";
    const unsigned char *p = csr;
    X509_REQ *req = NULL;
    BIO *mem = NULL;
    char *data = NULL;
    json_t *out = NULL;

    if (len >= sizeof begin_pem - 1 && memcmp(csr, begin_pem, sizeof begin_pem - 1) == 0) {
        out = json_stringn((const char *)csr, len);
        if (out == NULL) {
            fprintf(stderr, "tessera: --csr: the PEM text is not UTF-8\n");
        }
        return out;
    }
    req = len <= LONG_MAX ? d2i_X509_REQ(NULL, &p, (long)len) : NULL;
    if (req == NULL || p != csr + len) {
        fprintf(stderr, "tessera: --csr: not a PEM or DER certification request\n");
        goto done;
    }
    mem = BIO_new(BIO_s_mem());
    if (mem == NULL || PEM_write_bio_X509_REQ(mem, req) != 1) {
        fprintf(stderr, "tessera: --csr: cannot encode the request as PEM\n");
        goto done;
    }
    long n = BIO_get_mem_data(mem, &data);
    out = n > 0 ? json_stringn(data, (size_t)n) : NULL;
done:
    BIO_free(mem);
    X509_REQ_free(req);
    return out;
}

int cli_remote_cert_issue(const cli_args *args, const char *serial, const uint8_t *csr, size_t len)
{
    char tenant[TS_TENANT_NAME_MAX + 1], path[PATH_MAX_LEN];
    cli_remote *rm = NULL;
    json_t *body = json_object(), *text = csr_text(csr, len), *reply = NULL;
    int status = body != NULL && text != NULL ? CLI_EXIT_OK : CLI_EXIT_FAIL;

    if (status == CLI_EXIT_OK) {
        status = serial != NULL ? cli_remote_begin(args, "/api/v1/tenants/%s/certificates/%s/rekey",
                                                   serial, &rm, tenant, path, sizeof path)
                                : cli_remote_begin(args, "/api/v1/tenants/%s/certificates", NULL,
                                                   &rm, tenant, path, sizeof path);
    }
    if (status == CLI_EXIT_OK &&
        (json_object_set(body, "csr", text) != 0 ||
         (serial == NULL &&
          json_object_set_new(body, "profile", json_string(cli_opt_value(args, "profile"))) !=
              0))) {
        fprintf(stderr, "tessera: out of memory\n");
        status = CLI_EXIT_FAIL;
    }
    if (status == CLI_EXIT_OK) {
        status = cli_remote_call(rm, "POST", path, body, &reply);
    }
    if (status == CLI_EXIT_OK) {
        status = cli_remote_write_pem(cli_opt_value(args, "out"), reply);
    }
    json_decref(reply);
    json_decref(text);
    json_decref(body);
    cli_remote_free(rm);
    return status;
}

int cli_remote_cert_renew(const cli_args *args, const char *serial)
{
    char tenant[TS_TENANT_NAME_MAX + 1], path[PATH_MAX_LEN];
    cli_remote *rm = NULL;
    json_t *reply = NULL;
    int status = cli_out_check(args);

    if (status == CLI_EXIT_OK) {
        status = cli_remote_begin(args, "/api/v1/tenants/%s/certificates/%s/renew", serial, &rm,
                                  tenant, path, sizeof path);
    }
    if (status == CLI_EXIT_OK) {
        status = cli_remote_call(rm, "POST", path, NULL, &reply);
    }
    if (status == CLI_EXIT_OK) {
        status = cli_remote_write_pem(cli_opt_value(args, "out"), reply);
    }
    json_decref(reply);
    cli_remote_free(rm);
    return status;
}

int cli_remote_cert_revoke(const cli_args *args, const char *serial, int reason)
{
    char tenant[TS_TENANT_NAME_MAX + 1], path[PATH_MAX_LEN];
    const char *name = ts_crl_reason_name(reason);
    cli_remote *rm = NULL;
    json_t *body = NULL, *reply = NULL;
    int status = cli_remote_begin(args, "/api/v1/tenants/%s/certificates/%s/revoke", serial, &rm,
                                  tenant, path, sizeof path);

    name = name != NULL ? name : "unspecified";
    if (status == CLI_EXIT_OK) {
        body = json_pack("{s:s}", "reason", name);
        status = body != NULL ? CLI_EXIT_OK : CLI_EXIT_FAIL;
    }
    if (status == CLI_EXIT_OK) {
        status = cli_remote_call(rm, "POST", path, body, &reply);
    }
    if (status == CLI_EXIT_OK) {
        printf("revoked %s (%s)\n", serial, name);
    }
    json_decref(reply);
    json_decref(body);
    cli_remote_free(rm);
    return status;
}

int cli_remote_cert_list(const cli_args *args)
{
    const char *filters[][2] = {
        {"status", cli_opt_value(args, "status")},
        {"device", cli_opt_value(args, "device")},
        {"expiring_within_days", cli_opt_value(args, "expiring-within")},
    };
    char tenant[TS_TENANT_NAME_MAX + 1], path[PATH_MAX_LEN];
    cli_remote *rm = NULL;
    json_t *items = NULL, *row = NULL;
    size_t i = 0;
    int status = cli_remote_begin(args, "/api/v1/tenants/%s/certificates", NULL, &rm, tenant, path,
                                  sizeof path);

    for (size_t k = 0; status == CLI_EXIT_OK && k < sizeof filters / sizeof filters[0]; k++) {
        if (filters[k][1] != NULL) {
            status = cli_remote_query(path, sizeof path, filters[k][0], filters[k][1]);
        }
    }
    if (status == CLI_EXIT_OK) {
        status = cli_remote_list(rm, path, 0, &items);
    }
    json_array_foreach(items, i, row)
    {
        cli_remote_cert_line(row);
    }
    json_decref(items);
    cli_remote_free(rm);
    return status;
}

int cli_remote_cert_show(const cli_args *args, const char *serial)
{
    char tenant[TS_TENANT_NAME_MAX + 1], path[PATH_MAX_LEN];
    cli_remote *rm = NULL;
    json_t *row = NULL;
    int status = cli_remote_begin(args, "/api/v1/tenants/%s/certificates/%s", serial, &rm, tenant,
                                  path, sizeof path);

    if (status == CLI_EXIT_OK) {
        status = cli_remote_call(rm, "GET", path, NULL, &row);
    }
    if (status != CLI_EXIT_OK) {
        goto done;
    }
    const char *state = cli_json_str(row, "status", "?");
    const char *device = cli_json_str(row, "device_uid", NULL);
    printf("serial:     %s\nsubject:    %s\nstatus:     %s\n", cli_json_str(row, "serial", serial),
           cli_json_str(row, "subject", "?"), state);
    if (strcmp(state, "revoked") == 0) {
        printf("revoked:    %s (%s)\n", cli_json_str(row, "revoked_at", "?"),
               cli_json_str(row, "revocation_reason", "unspecified"));
    }
    printf("profile:    %s\ndevice:     %s\n", cli_json_str(row, "profile", "?"),
           device != NULL && device[0] != '\0' ? device : "-");
    printf("not before: %s\nnot after:  %s\nsha256:     %s\n", cli_json_str(row, "not_before", "?"),
           cli_json_str(row, "not_after", "?"), cli_json_str(row, "fingerprint", "?"));
    fflush(stdout);
    status = cli_remote_write_pem(NULL, row);
done:
    json_decref(row);
    cli_remote_free(rm);
    return status;
}
