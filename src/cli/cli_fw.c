/*
 * tessera fw sign: update files for the firmware of devices (docs/firmware.md), optionally
 * encrypted to one device's key or to a fleet key. verify and inspect are in cli_fw_verify.c.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/pem.h>

#include "cli/cli_fw.h"
#include "cli/cli_fw_publish.h"
#include "common/error_internal.h"
#include "tessera/fota.h"
#include "tessera/keystore.h"

static const cli_opt sign_opts[] = {
    {.name = "key", .value = "URI", .flags = CLI_OPT_REQUIRED, .help = "the key store URI"},
    {.name = "label", .value = "NAME", .flags = CLI_OPT_REQUIRED, .help = "the signing key"},
    {.name = "cert",
     .value = "FILE",
     .flags = CLI_OPT_REQUIRED,
     .help = "the signer certificate (PEM, EKU codeSigning)"},
    {.name = "chain", .value = "FILE", .help = "intermediate certificates to include (PEM)"},
    {.name = "version", .value = "V", .flags = CLI_OPT_REQUIRED, .help = "the image version"},
    {.name = "hw", .value = "HWID", .flags = CLI_OPT_REQUIRED, .help = "the hardware id"},
    {.name = "min-version", .value = "V", .help = "the lowest version this update applies to"},
    {.name = "seq", .value = "N", .help = "the monotonic sequence (default: the Unix time)"},
    {.name = "chunk-size", .value = "BYTES", .help = "payload chunk size (65536)"},
    {.name = "depends",
     .value = "NAME:MINVERSION",
     .flags = CLI_OPT_REPEAT,
     .help = "a dependency (repeatable, at most 16)"},
    {.name = "encrypt-to",
     .value = "CERT",
     .help = "encrypt to the device key of this certificate (PEM, P-256)"},
    {.name = "encrypt-to-group",
     .value = "KEYID",
     .help = "encrypt to the fleet key KEYID (with --group-key)"},
    {.name = "group-key",
     .value = "PUB",
     .help = "the fleet key's public key (PEM SubjectPublicKeyInfo, P-256)"},
    {.name = "image",
     .value = "IMAGE",
     .flags = CLI_OPT_REQUIRED,
     .help = "the image (positional)"},
    {.name = "out", .value = "OUT", .flags = CLI_OPT_REQUIRED, .help = "the update file (-o)"},
    {0},
};

int cli_fw_parse_u63(const cli_args *args, const char *name, uint64_t *out)
{
    const char *text = cli_opt_value(args, name);
    if (cli_parse_u64(text, out) != 0 || *out > INT64_MAX) {
        return cli_usage_error(args, "--%s must be an integer 0..2^63-1, not '%s'", name, text);
    }
    return CLI_EXIT_OK;
}

ts_err cli_fw_load_certs(const char *path, STACK_OF(X509) * *out)
{
    BIO *in = BIO_new_file(path, "r");
    if (in == NULL) {
        return ts_error_set_openssl(TS_ERR_IO, "cannot open %s", path);
    }
    STACK_OF(X509) *certs = sk_X509_new_null();
    X509 *c = NULL;
    while (certs != NULL && (c = PEM_read_bio_X509(in, NULL, NULL, NULL)) != NULL) {
        if (sk_X509_push(certs, c) == 0) {
            X509_free(c);
            break;
        }
    }
    ERR_clear_error();
    BIO_free(in);
    if (sk_X509_num(certs) <= 0) {
        sk_X509_pop_free(certs, X509_free);
        return ts_error_set(TS_ERR_INVALID, "%s holds no PEM certificate", path);
    }
    *out = certs;
    return TS_OK;
}

/* NAME:MINVERSION, split at the last colon (a name may hold colons). */
static int parse_depends(const cli_args *args, ts_fw_depend deps[TS_FW_DEPENDS_MAX], size_t *n)
{
    const char *const *vals = NULL;
    size_t count = cli_opt_values(args, "depends", &vals);
    if (count > TS_FW_DEPENDS_MAX) {
        return cli_usage_error(args, "at most %d --depends", TS_FW_DEPENDS_MAX);
    }
    for (size_t i = 0; i < count; i++) {
        const char *colon = strrchr(vals[i], ':');
        size_t len = colon != NULL ? (size_t)(colon - vals[i]) : 0;
        uint64_t min = 0;
        int ok = colon != NULL && len > 0 && len <= TS_FW_HW_MAX &&
                 cli_parse_u64(colon + 1, &min) == 0 && min <= INT64_MAX;
        for (size_t k = 0; ok && k < len; k++) {
            char c = vals[i][k];
            ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '-' || c == '_' || c == '.' || c == ':' || c == '/';
        }
        if (!ok) {
            return cli_usage_error(args,
                                   "--depends must be NAME:MINVERSION (NAME: 1 to %d of "
                                   "[A-Za-z0-9._:/-]), not '%s'",
                                   TS_FW_HW_MAX, vals[i]);
        }
        memcpy(deps[i].name, vals[i], len);
        deps[i].name[len] = '\0';
        deps[i].min_version = min;
    }
    *n = count;
    return CLI_EXIT_OK;
}

static int check_encrypt_opts(const cli_args *args)
{
    int to = cli_opt_given(args, "encrypt-to");
    int group = cli_opt_given(args, "encrypt-to-group");
    if (to && group) {
        return cli_usage_error(args, "--encrypt-to and --encrypt-to-group exclude each other");
    }
    if (group != cli_opt_given(args, "group-key")) {
        return cli_usage_error(args, "--encrypt-to-group KEYID goes with --group-key PUB");
    }
    const char *id = cli_opt_value(args, "encrypt-to-group");
    size_t n = id != NULL ? strlen(id) : 0;
    int ok = !group || (n > 0 && n <= TS_FW_KEYID_MAX);
    for (size_t i = 0; ok && group && i < n; i++) {
        char c = id[i];
        ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
             c == '.' || c == '_' || c == '-';
    }
    if (!ok) {
        return cli_usage_error(args, "--encrypt-to-group: a key id is 1 to %d of [A-Za-z0-9._-]",
                               TS_FW_KEYID_MAX);
    }
    return CLI_EXIT_OK;
}

/* The recipient's public key: a device certificate's, or the fleet key's PEM SPKI. */
static ts_err load_recipient(const cli_args *args, EVP_PKEY **out)
{
    *out = NULL;
    EVP_PKEY *key = NULL;
    if (cli_opt_given(args, "encrypt-to")) {
        STACK_OF(X509) *certs = NULL;
        ts_err rv = cli_fw_load_certs(cli_opt_value(args, "encrypt-to"), &certs);
        if (rv != TS_OK) {
            return rv;
        }
        key = X509_get_pubkey(sk_X509_value(certs, 0));
        sk_X509_pop_free(certs, X509_free);
    } else if (cli_opt_given(args, "group-key")) {
        const char *path = cli_opt_value(args, "group-key");
        BIO *in = BIO_new_file(path, "r");
        if (in == NULL) {
            return ts_error_set_openssl(TS_ERR_IO, "cannot open %s", path);
        }
        key = PEM_read_bio_PUBKEY(in, NULL, NULL, NULL);
        BIO_free(in);
        if (key == NULL) {
            return ts_error_set_openssl(TS_ERR_INVALID, "%s holds no PEM public key", path);
        }
    } else {
        return TS_OK;
    }
    char group[32] = "";
    if (key == NULL || !EVP_PKEY_is_a(key, "EC") ||
        EVP_PKEY_get_group_name(key, group, sizeof group, NULL) != 1 ||
        strcmp(group, "prime256v1") != 0) {
        EVP_PKEY_free(key);
        ERR_clear_error();
        return ts_error_set(TS_ERR_UNSUPPORTED, "the recipient's key is not an EC P-256 key");
    }
    *out = key;
    return TS_OK;
}

static int sign_params(const cli_args *args, ts_fw_sign_params *p, ts_fw_depend *deps)
{
    int st = cli_fw_parse_u63(args, "version", &p->version);
    if (st == CLI_EXIT_OK && cli_opt_given(args, "min-version")) {
        p->has_min_version = 1;
        st = cli_fw_parse_u63(args, "min-version", &p->min_version);
    }
    if (st == CLI_EXIT_OK && cli_opt_given(args, "seq")) {
        st = cli_fw_parse_u63(args, "seq", &p->seq);
    } else {
        p->seq = (uint64_t)time(NULL);
    }
    uint64_t chunk = TS_FW_CHUNK_DEFAULT;
    if (st == CLI_EXIT_OK && cli_opt_given(args, "chunk-size") &&
        (cli_parse_u64(cli_opt_value(args, "chunk-size"), &chunk) != 0 || chunk < TS_FW_CHUNK_MIN ||
         chunk > TS_FW_CHUNK_MAX)) {
        st = cli_usage_error(args, "--chunk-size must be %u..%u", TS_FW_CHUNK_MIN, TS_FW_CHUNK_MAX);
    }
    p->chunk_size = (uint32_t)chunk;
    if (st == CLI_EXIT_OK) {
        st = parse_depends(args, deps, &p->depends_count);
        p->depends = deps;
    }
    if (st == CLI_EXIT_OK) {
        st = check_encrypt_opts(args);
        p->encrypt_group = cli_opt_value(args, "encrypt-to-group");
    }
    return st;
}

static int cmd_sign(const cli_args *args)
{
    ts_fw_sign_params p = {.hw = cli_opt_value(args, "hw")};
    ts_fw_depend deps[TS_FW_DEPENDS_MAX];
    int st = sign_params(args, &p, deps);
    if (st != CLI_EXIT_OK) {
        return st;
    }
    STACK_OF(X509) *certs = NULL;
    ts_keystore *ks = NULL;
    EVP_PKEY *recipient = NULL;
    ts_err rv = cli_fw_load_certs(cli_opt_value(args, "cert"), &certs);
    if (rv == TS_OK) {
        p.cert = sk_X509_value(certs, 0);
        if (cli_opt_given(args, "chain")) {
            rv = cli_fw_load_certs(cli_opt_value(args, "chain"), &p.chain);
        }
    }
    if (rv == TS_OK) {
        rv = load_recipient(args, &recipient);
        p.encrypt_to = recipient;
    }
    if (rv == TS_OK) {
        rv = ts_keystore_open(cli_opt_value(args, "key"), &ks);
    }
    if (rv == TS_OK) {
        rv = ts_keystore_evp_pkey(ks, cli_opt_value(args, "label"), &p.key);
    }
    if (rv == TS_OK) {
        rv = ts_fw_sign_file(&p, cli_opt_value(args, "image"), cli_opt_value(args, "out"));
    }
    EVP_PKEY_free(p.key);
    EVP_PKEY_free(recipient);
    ts_keystore_free(ks);
    sk_X509_pop_free(p.chain, X509_free);
    sk_X509_pop_free(certs, X509_free);
    if (rv != TS_OK) {
        return cli_fail();
    }
    printf("signed %s: version %" PRIu64 " seq %" PRIu64 " hw %s", cli_opt_value(args, "out"),
           p.version, p.seq, p.hw);
    if (p.encrypt_group != NULL) {
        printf(", encrypted to fleet key %s", p.encrypt_group);
    } else if (recipient != NULL) {
        printf(", encrypted to the device key of %s", cli_opt_value(args, "encrypt-to"));
    }
    printf("\n");
    return CLI_EXIT_OK;
}

const cli_command cli_fw_commands[] = {
    {.name = "sign", .summary = "Make a signed update file", .opts = sign_opts, .run = cmd_sign},
    {.name = "verify",
     .summary = "Verify (and decrypt) an update file against trusted roots",
     .opts = cli_fw_verify_opts,
     .run = cli_fw_cmd_verify},
    {.name = "inspect",
     .summary = "Show an update file's manifest (unverified)",
     .opts = cli_fw_inspect_opts,
     .run = cli_fw_cmd_inspect},
    {.name = "publish",
     .summary = "Publish an update file as a release for a device, a group or all devices",
     .opts = cli_fw_publish_opts,
     .run = cli_fw_publish},
    {.name = "releases",
     .summary = "List the tenant's firmware releases",
     .opts = cli_fw_releases_opts,
     .run = cli_fw_releases},
    {.name = "withdraw",
     .summary = "Withdraw a release",
     .opts = cli_fw_withdraw_opts,
     .run = cli_fw_withdraw},
    {0},
};

const char cli_fw_help[] =
    "Shapes:\n"
    "  tessera fw sign --key URI --label NAME --cert FILE [--chain FILE]\n"
    "      --version V --hw HWID [--min-version V] [--seq N] [--chunk-size BYTES]\n"
    "      [--depends NAME:MINVERSION]...\n"
    "      [--encrypt-to CERT | --encrypt-to-group KEYID --group-key PUB] IMAGE -o OUT\n"
    "  tessera fw verify --trust ROOTS [--keystore URI --label LABEL] [--out IMAGE]\n"
    "      [--manifest-only] FILE\n"
    "  tessera fw inspect [--manifest-out FILE] FILE\n";
