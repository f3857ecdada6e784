/*
 * tessera fw publish | releases | withdraw: firmware releases on the trust service
 * (docs/firmware-service.md). Each works on --dir or, in remote mode, on --server (publish then
 * uploads the file to POST /api/v1/tenants/{t}/firmware).
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <curl/curl.h>
#include <openssl/crypto.h>

#include "cli/cli_fw.h"
#include "cli/cli_fw_publish.h"
#include "cli/cli_remote.h"
#include "common/error_internal.h"
#include "tessera/firmware.h"

const cli_opt cli_fw_publish_opts[] = {
    CLI_OPT_DIR,
    {.name = "file",
     .value = "FILE",
     .flags = CLI_OPT_REQUIRED,
     .help = "the update file (also positional)"},
    CLI_OPT_TENANT,
    {.name = "device", .value = "UID", .help = "for this device"},
    {.name = "group", .value = "NAME", .help = "for the devices of this group"},
    {.name = "all", .help = "for every device of the tenant"},
    CLI_OPTS_REMOTE,
    {0},
};

const cli_opt cli_fw_releases_opts[] = {
    CLI_OPT_DIR,
    CLI_OPT_TENANT,
    CLI_OPTS_REMOTE,
    {0},
};

const cli_opt cli_fw_withdraw_opts[] = {
    CLI_OPT_DIR,
    {.name = "id", .value = "ID", .flags = CLI_OPT_REQUIRED, .help = "the release (positional)"},
    CLI_OPT_TENANT,
    CLI_OPTS_REMOTE,
    {0},
};

static void print_published(const char *id, const char *version, const char *hw, const char *kind,
                            const char *to)
{
    if (strcmp(kind, "all") == 0) {
        printf("published: release %s version %s hw %s for all devices\n", id, version, hw);
    } else {
        printf("published: release %s version %s hw %s for %s %s\n", id, version, hw, kind, to);
    }
}

static int target_args(const cli_args *args, ts_fw_target_kind *kind, const char **target)
{
    int dev = cli_opt_given(args, "device"), grp = cli_opt_given(args, "group");
    int all = cli_opt_given(args, "all");
    if (dev + grp + all != 1) {
        return cli_usage_error(args, "name the target: exactly one of --device, --group, --all");
    }
    *kind = dev ? TS_FW_TARGET_DEVICE : grp ? TS_FW_TARGET_GROUP : TS_FW_TARGET_ALL;
    *target = dev ? cli_opt_value(args, "device") : grp ? cli_opt_value(args, "group") : "";
    return CLI_EXIT_OK;
}

/* --- remote ------------------------------------------------------------------------------------
 */

static size_t body_collect(char *p, size_t size, size_t n, void *ctx)
{
    char **buf = ctx;
    size_t have = *buf != NULL ? strlen(*buf) : 0, add = size * n;
    if (have + add > 1024 * 1024) {
        return 0;
    }
    char *grown = OPENSSL_realloc(*buf, have + add + 1);
    if (grown == NULL) {
        return 0;
    }
    memcpy(grown + have, p, add);
    grown[have + add] = '\0';
    *buf = grown;
    return add;
}

/* POST the file as application/octet-stream; the server's URL and token as cli_remote checks. */
static int remote_publish(const cli_args *args, ts_fw_target_kind kind, const char *target)
{
    char tenant[TS_TENANT_NAME_MAX + 1], path[512], url[2048], auth[600];
    cli_remote *rm = NULL;
    char *reply = NULL;
    long code = 0;
    FILE *in = NULL;
    struct stat st;
    int status =
        cli_remote_begin(args, "/api/v1/tenants/%s/firmware", NULL, &rm, tenant, path, sizeof path);
    if (status == CLI_EXIT_OK) {
        status = cli_remote_query(path, sizeof path,
                                  kind == TS_FW_TARGET_DEVICE  ? "device"
                                  : kind == TS_FW_TARGET_GROUP ? "group"
                                                               : "all",
                                  kind == TS_FW_TARGET_ALL ? "true" : target);
    }
    cli_remote_free(rm); /* the options were checked; the upload is its own request */
    const char *server = cli_opt_value(args, "server");
    const char *token = cli_opt_value(args, "token");
    const char *cacert = cli_opt_value(args, "cacert");
    server = server != NULL ? server : getenv("TESSERA_SERVER");
    token = token != NULL ? token : getenv("TESSERA_TOKEN");
    cacert = cacert != NULL ? cacert : getenv("TESSERA_CACERT");
    if (status != CLI_EXIT_OK) {
        return status;
    }
    size_t sl = strlen(server);
    while (sl > 0 && server[sl - 1] == '/') {
        sl--;
    }
    snprintf(url, sizeof url, "%.*s%s", (int)sl, server, path);
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", token);
    in = fopen(cli_opt_value(args, "file"), "rb");
    if (in == NULL || fstat(fileno(in), &st) != 0) {
        if (in != NULL) {
            fclose(in);
        }
        fprintf(stderr, "tessera: cannot open %s\n", cli_opt_value(args, "file"));
        OPENSSL_cleanse(auth, sizeof auth);
        return CLI_EXIT_FAIL;
    }
    CURL *c = curl_easy_init();
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/octet-stream");
    h = h != NULL ? curl_slist_append(h, auth) : NULL;
    h = h != NULL ? curl_slist_append(h, "Expect:") : NULL;
    CURLcode cc = c != NULL && h != NULL ? CURLE_OK : CURLE_OUT_OF_MEMORY;
    if (cc == CURLE_OK) {
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https");
        curl_easy_setopt(c, CURLOPT_POST, 1L);
        curl_easy_setopt(c, CURLOPT_READDATA, in);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)st.st_size);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, body_collect);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &reply);
        if (cacert != NULL) {
            curl_easy_setopt(c, CURLOPT_CAINFO, cacert);
        }
        cc = curl_easy_perform(c);
    }
    if (cc == CURLE_OK) {
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    }
    OPENSSL_cleanse(auth, sizeof auth);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    fclose(in);
    json_t *doc = reply != NULL ? json_loads(reply, 0, NULL) : NULL;
    OPENSSL_free(reply);
    if (cc != CURLE_OK) {
        fprintf(stderr, "tessera: %s: %s\n", url, curl_easy_strerror(cc));
        status = CLI_EXIT_FAIL;
    } else if (code != 201) {
        const json_t *err = json_object_get(doc, "error");
        fprintf(stderr, "tessera: %s\n", cli_json_str(err, "message", "the upload was refused"));
        status = CLI_EXIT_FAIL;
    } else {
        int64_t version = 0;
        char v[32];
        snprintf(v, sizeof v, "%" PRId64,
                 cli_json_i64(doc, "version", &version) == 0 ? version : 0);
        print_published(cli_json_str(doc, "id", "?"), v, cli_json_str(doc, "hw", "?"),
                        cli_json_str(doc, "target", "?"), cli_json_str(doc, "to", ""));
    }
    json_decref(doc);
    return status;
}

static int remote_releases(const cli_args *args)
{
    char tenant[TS_TENANT_NAME_MAX + 1], path[512];
    cli_remote *rm = NULL;
    json_t *items = NULL, *row = NULL;
    size_t i = 0;
    int status =
        cli_remote_begin(args, "/api/v1/tenants/%s/firmware", NULL, &rm, tenant, path, sizeof path);
    if (status == CLI_EXIT_OK) {
        status = cli_remote_list(rm, path, 0, &items);
    }
    json_array_foreach(items, i, row)
    {
        int64_t version = -1;
        (void)cli_json_i64(row, "version", &version);
        printf("%s\t%lld\t%s\t%s\t%s\t%s\t%s\t%s\n", cli_json_str(row, "id", "?"),
               (long long)version, cli_json_str(row, "hw", "?"), cli_json_str(row, "target", "?"),
               cli_json_str(row, "to", ""), cli_json_str(row, "state", "?"),
               cli_json_str(row, "created", "?"), cli_json_str(row, "sha256", "?"));
    }
    json_decref(items);
    cli_remote_free(rm);
    return status;
}

static int remote_withdraw(const cli_args *args, const char *id)
{
    char tenant[TS_TENANT_NAME_MAX + 1], path[512];
    cli_remote *rm = NULL;
    json_t *reply = NULL;
    int status = cli_remote_begin(args, "/api/v1/tenants/%s/firmware/%s/withdraw", id, &rm, tenant,
                                  path, sizeof path);
    if (status == CLI_EXIT_OK) {
        status = cli_remote_call(rm, "POST", path, NULL, &reply);
    }
    if (status == CLI_EXIT_OK) {
        printf("withdrawn: release %s\n", id);
    }
    json_decref(reply);
    cli_remote_free(rm);
    return status;
}

/* --- commands ----------------------------------------------------------------------------------
 */

int cli_fw_publish(const cli_args *args)
{
    ts_fw_target_kind kind = TS_FW_TARGET_ALL;
    const char *target = NULL;
    ts_fw_release_row row;
    ts_ca *ca = NULL;
    int status = target_args(args, &kind, &target);
    if (status != CLI_EXIT_OK) {
        return status;
    }
    if (cli_remote_wanted(args)) {
        return remote_publish(args, kind, target);
    }
    status = cli_instance_open(args, &ca);
    if (status != CLI_EXIT_OK) {
        return status;
    }
    ts_err rv = ts_ca_fw_publish(ca, cli_opt_value(args, "tenant"), cli_opt_value(args, "file"),
                                 kind, target, &row);
    if (rv == TS_OK) {
        char v[32];
        snprintf(v, sizeof v, "%" PRIu64, row.version);
        print_published(row.id, v, row.hw, ts_fw_target_name(kind), row.target);
    } else {
        status = cli_fail();
    }
    ts_ca_free(ca);
    return status;
}

int cli_fw_releases(const cli_args *args)
{
    ts_fw_release_row *rows = NULL;
    size_t n = 0;
    ts_ca *ca = NULL;
    char created[32];
    if (cli_remote_wanted(args)) {
        return remote_releases(args);
    }
    int status = cli_instance_open(args, &ca);
    if (status != CLI_EXIT_OK) {
        return status;
    }
    if (ts_ca_fw_releases(ca, cli_opt_value(args, "tenant"), &rows, &n) != TS_OK) {
        status = cli_fail();
    }
    for (size_t i = 0; i < n; i++) {
        cli_time_text(rows[i].created, created);
        printf("%s\t%" PRIu64 "\t%s\t%s\t%s\t%s\t%s\t%s\n", rows[i].id, rows[i].version, rows[i].hw,
               ts_fw_target_name(rows[i].target_kind), rows[i].target,
               ts_fw_release_state_name(rows[i].state), created, rows[i].sha256);
    }
    OPENSSL_free(rows);
    ts_ca_free(ca);
    return status;
}

int cli_fw_withdraw(const cli_args *args)
{
    const char *id = cli_opt_value(args, "id");
    ts_ca *ca = NULL;
    if (ts_fw_release_id_check(id) != TS_OK) {
        return cli_usage_error(args, "%s", ts_error_message());
    }
    if (cli_remote_wanted(args)) {
        return remote_withdraw(args, id);
    }
    int status = cli_instance_open(args, &ca);
    if (status != CLI_EXIT_OK) {
        return status;
    }
    if (ts_ca_fw_withdraw(ca, cli_opt_value(args, "tenant"), id, NULL) == TS_OK) {
        printf("withdrawn: release %s\n", id);
    } else {
        status = cli_fail();
    }
    ts_ca_free(ca);
    return status;
}
