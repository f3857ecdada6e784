/*
 * Remote mode of tessera ca show, crl, tenant, profile and audit: the same output as the local
 * commands, from the REST API (and GET /crl/{tenant}.crl).
 */
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/pem.h>

#include "cli/cli_remote.h"
#include "common/error_internal.h"

enum { PATH_MAX_LEN = 1024 };

/* Opens the connection (a token required unless need_token is 0) and finds the tenant. */
static int begin(const cli_args *args, int need_token, cli_remote **rm,
                 char tenant[TS_TENANT_NAME_MAX + 1])
{
    int status = cli_remote_open(args, need_token, rm);
    if (status == CLI_EXIT_OK) {
        status = cli_remote_tenant(*rm, args, tenant);
    }
    return status;
}

int cli_remote_ca_show(const cli_args *args, int root)
{
    char tenant[TS_TENANT_NAME_MAX + 1], path[PATH_MAX_LEN];
    cli_remote *rm = NULL;
    json_t *reply = NULL;
    int status = cli_out_check(args);

    if (status == CLI_EXIT_OK) {
        status = begin(args, 1, &rm, tenant);
    }
    if (status == CLI_EXIT_OK) {
        status = cli_remote_path(path, sizeof path, "/api/v1/tenants/%s/cas/%s", tenant,
                                 root ? "root" : "issuing");
    }
    if (status == CLI_EXIT_OK) {
        status = cli_remote_call(rm, "GET", path, NULL, &reply);
    }
    if (status == CLI_EXIT_OK) {
        status = cli_remote_write_pem(cli_opt_value(args, "out"), reply);
    }
    json_decref(reply);
    cli_remote_free(rm);
    return status;
}

int cli_remote_crl(const cli_args *args)
{
    char tenant[TS_TENANT_NAME_MAX + 1], path[PATH_MAX_LEN];
    cli_remote *rm = NULL;
    uint8_t *der = NULL;
    size_t len = 0;
    X509_CRL *crl = NULL;
    BIO *mem = NULL;
    int status;

    if (cli_opt_given(args, "root") || cli_opt_given(args, "next-update")) {
        /* The service publishes the tenants' CRLs as it keeps them; it makes no other. */
        return cli_usage_error(args, "--root and --next-update work on --dir only");
    }
    status = cli_out_check(args);
    if (status == CLI_EXIT_OK) {
        /* The CRL is public: no token needed, though one finds the token's tenant. */
        status = begin(args, 0, &rm, tenant);
    }
    if (status == CLI_EXIT_OK) {
        status = cli_remote_path(path, sizeof path, "/crl/%s.crl", tenant);
    }
    if (status == CLI_EXIT_OK) {
        status = cli_remote_get_bytes(rm, path, &der, &len);
    }
    if (status != CLI_EXIT_OK) {
        goto done;
    }
    /* Checked before it is written: what the server sent must be a DER CRL. */
    const unsigned char *p = der;
    crl = len <= LONG_MAX ? d2i_X509_CRL(NULL, &p, (long)len) : NULL;
    if (crl == NULL || p != der + len) {
        fprintf(stderr, "tessera: %s: the reply is not a DER CRL\n", path);
        status = CLI_EXIT_FAIL;
        goto done;
    }
    ts_err rv;
    if (cli_opt_given(args, "pem")) {
        mem = BIO_new(BIO_s_mem());
        rv = mem != NULL && PEM_write_bio_X509_CRL(mem, crl) == 1
                 ? cli_write_bio(cli_opt_value(args, "out"), mem, 0644)
                 : ts_error_set_openssl(TS_ERR_CRYPTO, "cannot encode the CRL");
    } else {
        rv = cli_write_output(cli_opt_value(args, "out"), der, len, 0644);
    }
    status = rv == TS_OK ? CLI_EXIT_OK : cli_fail();
done:
    BIO_free(mem);
    X509_CRL_free(crl);
    OPENSSL_free(der);
    cli_remote_free(rm);
    return status;
}

int cli_remote_tenant_list(const cli_args *args)
{
    cli_remote *rm = NULL;
    json_t *items = NULL, *row = NULL;
    size_t i = 0;
    int status = cli_remote_open(args, 1, &rm);

    if (status == CLI_EXIT_OK) {
        status = cli_remote_list(rm, "/api/v1/tenants", 0, &items);
    }
    json_array_foreach(items, i, row)
    {
        const char *country = cli_json_str(row, "country", "");
        printf("%s\t%s\t%s\t%s\n", cli_json_str(row, "name", "?"), cli_json_str(row, "org", ""),
               country[0] != '\0' ? country : "-", cli_json_str(row, "created", "?"));
    }
    json_decref(items);
    cli_remote_free(rm);
    return status;
}

int cli_remote_tenant_create(const cli_args *args)
{
    const char *name = cli_opt_value(args, "name");
    const char *org = cli_opt_value(args, "org");
    const char *country = cli_opt_value(args, "country");
    cli_remote *rm = NULL;
    json_t *body = json_pack("{s:s}", "name", name), *reply = NULL;
    int status = body != NULL ? cli_remote_open(args, 1, &rm) : CLI_EXIT_FAIL;

    if (status == CLI_EXIT_OK &&
        ((org != NULL && json_object_set_new(body, "org", json_string(org)) != 0) ||
         (country != NULL && json_object_set_new(body, "country", json_string(country)) != 0))) {
        fprintf(stderr, "tessera: --org and --country must be UTF-8 text\n");
        status = CLI_EXIT_USAGE;
    }
    if (status == CLI_EXIT_OK) {
        status = cli_remote_call(rm, "POST", "/api/v1/tenants", body, &reply);
    }
    if (status == CLI_EXIT_OK) {
        printf("tenant %s created with its issuing CA (tessera ca show --tenant %s --issuing)\n",
               name, name);
    }
    json_decref(reply);
    json_decref(body);
    cli_remote_free(rm);
    return status;
}

int cli_remote_profile_list(const cli_args *args)
{
    char tenant[TS_TENANT_NAME_MAX + 1], path[PATH_MAX_LEN];
    cli_remote *rm = NULL;
    json_t *items = NULL, *row = NULL;
    size_t i = 0;
    int status = begin(args, 1, &rm, tenant);

    if (status == CLI_EXIT_OK) {
        status = cli_remote_path(path, sizeof path, "/api/v1/tenants/%s/profiles", tenant);
    }
    if (status == CLI_EXIT_OK) {
        status = cli_remote_list(rm, path, 0, &items);
    }
    json_array_foreach(items, i, row)
    {
        /* An item is the profile's name, or an object that has one. */
        printf("%s\n",
               json_is_string(row) ? json_string_value(row) : cli_json_str(row, "name", "?"));
    }
    json_decref(items);
    cli_remote_free(rm);
    return status;
}

int cli_remote_profile_show(const cli_args *args)
{
    char tenant[TS_TENANT_NAME_MAX + 1], path[PATH_MAX_LEN];
    cli_remote *rm = NULL;
    json_t *reply = NULL;
    char *text = NULL;
    int status = begin(args, 1, &rm, tenant);

    if (status == CLI_EXIT_OK) {
        status = cli_remote_path(path, sizeof path, "/api/v1/tenants/%s/profiles/%s", tenant,
                                 cli_opt_value(args, "name"));
    }
    if (status == CLI_EXIT_OK) {
        status = cli_remote_call(rm, "GET", path, NULL, &reply);
    }
    if (status == CLI_EXIT_OK) {
        text = json_dumps(reply, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        if (text == NULL) {
            fprintf(stderr, "tessera: the server's reply carries no profile\n");
            status = CLI_EXIT_FAIL;
        } else {
            printf("%s\n", text);
        }
    }
    free(text);
    json_decref(reply);
    cli_remote_free(rm);
    return status;
}

int cli_remote_audit_list(const cli_args *args, int64_t after, size_t limit)
{
    char path[PATH_MAX_LEN], after_text[24], limit_text[24];
    cli_remote *rm = NULL;
    size_t printed = 0;
    int status = cli_remote_open(args, 1, &rm);

    /* Paged by id: each page starts after the last entry of the one before. */
    while (status == CLI_EXIT_OK) {
        json_t *reply = NULL, *row = NULL;
        size_t want = CLI_REMOTE_PAGE, i = 0;
        if (limit > 0 && limit - printed < want) {
            want = limit - printed;
        }
        snprintf(after_text, sizeof after_text, "%lld", (long long)after);
        snprintf(limit_text, sizeof limit_text, "%zu", want);
        status = cli_remote_path(path, sizeof path, "/api/v1/audit?after=%s&limit=%s", after_text,
                                 limit_text);
        if (status == CLI_EXIT_OK) {
            status = cli_remote_call(rm, "GET", path, NULL, &reply);
        }
        json_t *items = json_object_get(reply, "items");
        if (status == CLI_EXIT_OK && !json_is_array(items)) {
            fprintf(stderr, "tessera: %s: the reply has no list of items\n", path);
            status = CLI_EXIT_FAIL;
        }
        json_array_foreach(items, i, row)
        {
            int64_t id = 0;
            const json_t *details = json_object_get(row, "details");
            char *text =
                json_is_string(details) ? NULL : json_dumps(details, JSON_COMPACT | JSON_SORT_KEYS);
            if (cli_json_i64(row, "id", &id) != 0 || id <= after) {
                fprintf(stderr, "tessera: %s: an entry without a new id\n", path);
                status = CLI_EXIT_FAIL;
                free(text);
                break;
            }
            after = id;
            printf("%lld\t%s\t%s\t%s\t%s\t%s\n", (long long)id, cli_json_str(row, "time", "?"),
                   cli_json_str(row, "actor", "?"), cli_json_str(row, "action", "?"),
                   cli_json_str(row, "object", "?"),
                   json_is_string(details) ? json_string_value(details)
                                           : (text != NULL ? text : "{}"));
            free(text);
            printed++;
        }
        size_t got = json_array_size(items);
        json_decref(reply);
        if (got < want || (limit > 0 && printed >= limit)) {
            break;
        }
    }
    cli_remote_free(rm);
    return status;
}

int cli_remote_audit_verify(const cli_args *args)
{
    cli_remote *rm = NULL;
    json_t *reply = NULL;
    int64_t entries = 0, first_bad = 0;
    int status = cli_remote_open(args, 1, &rm);

    if (status == CLI_EXIT_OK) {
        status = cli_remote_call(rm, "GET", "/api/v1/audit/verify", NULL, &reply);
    }
    if (status != CLI_EXIT_OK) {
        goto done;
    }
    (void)cli_json_i64(reply, "entries", &entries);
    const json_t *ok = json_object_get(reply, "ok");
    if (json_is_true(ok) || json_is_true(json_object_get(reply, "intact"))) {
        printf("audit log intact: %lld entries\n", (long long)entries);
    } else {
        (void)cli_json_i64(reply, "first_bad", &first_bad);
        fprintf(stderr, "tessera: audit log broken at entry %lld: %s\n", (long long)first_bad,
                cli_json_str(reply, "message", "the chain does not verify"));
        status = CLI_EXIT_FAIL;
    }
done:
    json_decref(reply);
    cli_remote_free(rm);
    return status;
}
