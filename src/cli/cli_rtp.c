/*
 * tessera rtp export: signed, device-bound provisioning bundles (docs/rtp.md). Each device gets
 * one bundle with every --object key sealed to its key store (ts_keystore_import_seal, signed by
 * the tenant's provisioning key), the bundle itself signed by that key too.
 */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/pem.h>

#include "cli/cli_instance.h"
#include "cli/cli_rtp.h"
#include "common/error_internal.h"
#include "common/file_internal.h"
#include "rtp.pb-c.h"
#include "server/rtp.h"

enum { MANIFEST_MAX = 16 * 1024 * 1024, DEVICES_MAX = 100000, RTP_VERSION = 1 };

static const cli_opt export_opts[] = {
    CLI_OPT_DIR,
    CLI_OPT_TENANT,
    {.name = "device", .value = "UID", .help = "one device (with --keystore)"},
    {.name = "keystore", .value = "URI", .help = "the device's key store (with --device)"},
    {.name = "key",
     .value = "LABEL",
     .help = "the device key to seal to (default: the URI's "
             "object=, else identity)"},
    {.name = "manifest", .value = "FILE", .help = "devices, one JSON line each: uid, keystore"},
    {.name = "out", .value = "DIR", .flags = CLI_OPT_REQUIRED, .help = "where bundles go"},
    {.name = "object",
     .value = "LABEL=FILE",
     .flags = CLI_OPT_REQUIRED | CLI_OPT_REPEAT,
     .help = "a PEM EC private key to import under LABEL"},
    {0},
};

static const char export_help[] =
    "Writes OUT/provisioning.pem (the tenant's provisioning public key, which each device keeps\n"
    "in its key store as the data object provisioning.key) and for each device\n"
    "OUT/<uid>/device.pem (its key 'identity', which signs its receipts; the agent makes it at\n"
    "'tessera-agent init') and OUT/<uid>/bundle-<counter>.rtp. The device's key store must be\n"
    "reachable (the factory): its UID and public keys are read from it.\n"
    "\n"
    "Example:\n"
    "  tessera rtp export --manifest lot-7/manifest.jsonl --out rtp --object wifi=wifi.pem\n";

typedef struct export_object {
    char label[TS_LABEL_MAX + 1];
    EVP_PKEY *key;
} export_object;

static ts_err mkdir_if_missing(const char *path)
{
    if (mkdir(path, 0700) != 0 && errno != EEXIST) {
        return ts_error_set(TS_ERR_IO, "cannot make %s: %s", path, strerror(errno));
    }
    return TS_OK;
}

static ts_err pub_write(const char *path, const EVP_PKEY *pub)
{
    BIO *mem = BIO_new(BIO_s_mem());
    BUF_MEM *bm = NULL;
    ts_err rv;

    if (mem == NULL || PEM_write_bio_PUBKEY(mem, pub) != 1) {
        BIO_free(mem);
        return ts_error_set_openssl(TS_ERR_CRYPTO, "cannot encode a public key");
    }
    BIO_get_mem_ptr(mem, &bm);
    rv = ts_file_write_atomic(path, (const uint8_t *)bm->data, bm->length, 0644);
    BIO_free(mem);
    return rv;
}

/* Seals every object to the device and writes its signed bundle. */
static ts_err bundle_write(const char *out, EVP_PKEY *signer, const ts_rtp_device *dev,
                           const export_object *objs, size_t nobj, uint64_t base, char *path,
                           size_t path_size)
{
    Tessera__Rtp__Bundle b = TESSERA__RTP__BUNDLE__INIT;
    Tessera__Rtp__SignedBundle sb = TESSERA__RTP__SIGNED_BUNDLE__INIT;
    ProtobufCBinaryData blobs[TS_RTP_OBJECTS_MAX];
    uint8_t *inner = NULL, *outer = NULL, *sig = NULL;
    size_t inner_len, outer_len, sig_len = 0;
    ts_err rv = TS_OK;

    memset(blobs, 0, sizeof blobs);
    snprintf(path, path_size, "%s/%s", out, dev->uid);
    rv = mkdir_if_missing(path);
    snprintf(path, path_size, "%s/%s/device.pem", out, dev->uid);
    if (rv == TS_OK) {
        rv = pub_write(path, dev->receipt_pub);
    }
    for (size_t i = 0; rv == TS_OK && i < nobj; i++) {
        rv = ts_keystore_import_seal(signer, dev->pub, dev->ksuid, dev->key_label, base + i + 1,
                                     objs[i].label, objs[i].key, &blobs[i].data, &blobs[i].len);
        if (rv != TS_OK) {
            rv = ts_error_prefix(rv, "sealing %s to device %s", objs[i].label, dev->uid);
        }
    }
    if (rv != TS_OK) {
        goto done;
    }
    b.version = RTP_VERSION;
    b.device_uid = (char *)dev->uid;
    b.keystore_uid.data = (uint8_t *)dev->ksuid;
    b.keystore_uid.len = TS_KEYSTORE_UID_LEN;
    b.key_label = (char *)dev->key_label;
    b.created = (uint64_t)time(NULL);
    b.imports = blobs;
    b.n_imports = nobj;
    inner_len = tessera__rtp__bundle__get_packed_size(&b);
    inner = OPENSSL_malloc(inner_len);
    if (inner == NULL) {
        rv = ts_error_set(TS_ERR_NOMEM, "out of memory");
        goto done;
    }
    tessera__rtp__bundle__pack(&b, inner);
    rv = ts_rtp_sign(signer, inner, inner_len, &sig, &sig_len);
    if (rv != TS_OK) {
        goto done;
    }
    sb.bundle.data = inner;
    sb.bundle.len = inner_len;
    sb.signature.data = sig;
    sb.signature.len = sig_len;
    outer_len = tessera__rtp__signed_bundle__get_packed_size(&sb);
    outer = OPENSSL_malloc(outer_len);
    if (outer == NULL) {
        rv = ts_error_set(TS_ERR_NOMEM, "out of memory");
        goto done;
    }
    tessera__rtp__signed_bundle__pack(&sb, outer);
    /* Zero-padded counters: the names sort in the order the device must apply them. */
    snprintf(path, path_size, "%s/%s/bundle-%020llu.rtp", out, dev->uid,
             (unsigned long long)(base + 1));
    rv = ts_file_write_atomic(path, outer, outer_len, 0600);
done:
    for (size_t i = 0; i < nobj; i++) {
        OPENSSL_free(blobs[i].data);
    }
    OPENSSL_free(inner);
    OPENSSL_free(outer);
    OPENSSL_free(sig);
    return rv;
}

/*
 * The counter of each import: microseconds since the epoch at the export plus its position, so
 * a later export's imports are above an earlier one's without any state kept (docs/rtp.md).
 */
static uint64_t counter_base(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000U + (uint64_t)ts.tv_nsec / 1000U;
}

static int export_one(const char *out, EVP_PKEY *signer, const char *uid, const char *uri,
                      const char *key, const export_object *objs, size_t nobj)
{
    ts_rtp_device dev;
    char path[4096];
    ts_err rv;

    rv = ts_rtp_device_load(uid, uri, key, &dev);
    if (rv == TS_OK) {
        rv = bundle_write(out, signer, &dev, objs, nobj, counter_base(), path, sizeof path);
    }
    ts_rtp_device_clear(&dev);
    if (rv != TS_OK) {
        return cli_fail();
    }
    printf("device %s: %s (%zu key(s))\n", uid, path, nobj);
    return CLI_EXIT_OK;
}

static int export_manifest(const char *manifest, const char *out, EVP_PKEY *signer, const char *key,
                           const export_object *objs, size_t nobj)
{
    uint8_t *text = NULL;
    size_t len = 0, line = 0, done = 0;
    int status = CLI_EXIT_OK;

    if (ts_file_read(manifest, MANIFEST_MAX, &text, &len) != TS_OK) {
        return cli_fail();
    }
    for (size_t pos = 0; pos < len && status == CLI_EXIT_OK;) {
        const uint8_t *nl = memchr(text + pos, '\n', len - pos);
        size_t end = nl != NULL ? (size_t)(nl - text) : len;
        json_error_t jerr;
        json_t *j;
        const char *uid, *uri;

        line++;
        if (end == pos) {
            pos = end + 1;
            continue;
        }
        j = json_loadb((const char *)text + pos, end - pos, JSON_REJECT_DUPLICATES, &jerr);
        uid = json_string_value(json_object_get(j, "uid"));
        uri = json_string_value(json_object_get(j, "keystore"));
        if (j == NULL || uid == NULL || uri == NULL || ++done > DEVICES_MAX) {
            fprintf(stderr, "tessera: %s line %zu: not a JSON object with uid and keystore\n",
                    manifest, line);
            status = CLI_EXIT_FAIL;
        } else {
            status = export_one(out, signer, uid, uri, key, objs, nobj);
        }
        json_decref(j);
        pos = end + 1;
    }
    OPENSSL_clear_free(text, len);
    return status;
}

static int cmd_export(const cli_args *args)
{
    const char *const *specs = NULL;
    size_t nobj = cli_opt_values(args, "object", &specs);
    const char *tenant =
        cli_opt_given(args, "tenant") ? cli_opt_value(args, "tenant") : TS_DEFAULT_TENANT;
    const char *out = cli_opt_value(args, "out");
    export_object objs[CLI_REPEAT_MAX];
    EVP_PKEY *signer = NULL, *pub = NULL;
    char path[4096], actor[256];
    ts_ca *ca = NULL;
    int status = CLI_EXIT_FAIL;

    if (cli_opt_given(args, "device") == cli_opt_given(args, "manifest")) {
        return cli_usage_error(args, "give --device UID (with --keystore) or --manifest FILE");
    }
    if (cli_opt_given(args, "device") != cli_opt_given(args, "keystore")) {
        return cli_usage_error(args, "--device and --keystore go together");
    }
    memset(objs, 0, sizeof objs);
    for (size_t i = 0; i < nobj; i++) {
        const char *eq = strchr(specs[i], '=');
        size_t n = eq != NULL ? (size_t)(eq - specs[i]) : 0;
        if (n == 0 || n > TS_LABEL_MAX) {
            status = cli_usage_error(args, "--object %s: want LABEL=FILE", specs[i]);
            goto done;
        }
        memcpy(objs[i].label, specs[i], n);
        for (size_t k = 0; k < i; k++) {
            if (strcmp(objs[k].label, objs[i].label) == 0) {
                status = cli_usage_error(args, "--object %s: label given twice", objs[i].label);
                goto done;
            }
        }
        if (ts_label_check(objs[i].label) != TS_OK ||
            ts_rtp_key_load(eq + 1, &objs[i].key) != TS_OK) {
            status = cli_fail();
            goto done;
        }
    }
    cli_actor(actor, sizeof actor);
    if (ts_ca_open(cli_instance_dir(args), actor, &ca) != TS_OK ||
        ts_rtp_sender(ca, tenant, &signer, &pub) != TS_OK || mkdir_if_missing(out) != TS_OK) {
        status = cli_fail();
        goto done;
    }
    snprintf(path, sizeof path, "%s/provisioning.pem", out);
    if (pub_write(path, pub) != TS_OK) {
        status = cli_fail();
        goto done;
    }
    if (cli_opt_given(args, "device")) {
        status =
            export_one(out, signer, cli_opt_value(args, "device"), cli_opt_value(args, "keystore"),
                       cli_opt_value(args, "key"), objs, nobj);
    } else {
        status = export_manifest(cli_opt_value(args, "manifest"), out, signer,
                                 cli_opt_value(args, "key"), objs, nobj);
    }
done:
    for (size_t i = 0; i < nobj && i < CLI_REPEAT_MAX; i++) {
        EVP_PKEY_free(objs[i].key);
    }
    EVP_PKEY_free(signer);
    EVP_PKEY_free(pub);
    ts_ca_free(ca);
    return status;
}

const cli_command cli_rtp_commands[] = {
    {.name = "export",
     .summary = "Write signed, device-bound provisioning bundles",
     .opts = export_opts,
     .run = cmd_export,
     .help = export_help},
    {.name = "serve",
     .summary = "Serve bundles to devices over TCP and keep their signed receipts",
     .opts = cli_rtp_serve_opts,
     .run = cli_rtp_serve_run,
     .help = cli_rtp_serve_help},
    {0},
};
