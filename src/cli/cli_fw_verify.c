/*
 * tessera fw verify|inspect. verify streams the file through the same verifier a device runs
 * (constant memory); with a key store and a label it decrypts an encrypted payload inside the
 * store, and --out writes the verified image (atomically: OUT.tmp, fsync, rename).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/cms.h>
#include <openssl/err.h>

#include "cli/cli_fw.h"
#include "common/error_internal.h"
#include "common/file_internal.h"
#include "tessera/fota.h"
#include "tessera/keystore.h"

const cli_opt cli_fw_verify_opts[] = {
    {.name = "trust",
     .value = "ROOTS",
     .flags = CLI_OPT_REQUIRED,
     .help = "trusted root certificates (PEM)"},
    {.name = "keystore",
     .value = "URI",
     .help = "the key store holding the recipient's key (decrypts an encrypted payload)"},
    {.name = "label",
     .value = "LABEL",
     .help = "the recipient key: a device key, or fw.group.KEYID for a fleet key"},
    {.name = "out", .value = "IMAGE", .help = "write the verified (decrypted) image here"},
    {.name = "manifest-only",
     .help = "verify the header and the signed manifest only, not the payload"},
    {.name = "file",
     .value = "FILE",
     .flags = CLI_OPT_REQUIRED,
     .help = "the update file (positional)"},
    {0},
};

const cli_opt cli_fw_inspect_opts[] = {
    {.name = "file",
     .value = "FILE",
     .flags = CLI_OPT_REQUIRED,
     .help = "the update file (positional)"},
    {.name = "manifest-out",
     .value = "FILE",
     .help = "write the signed manifest (DER CMS) here, for openssl cms -verify"},
    {0},
};

/* Reads exactly len bytes. */
static ts_err read_exact(FILE *in, uint8_t *buf, size_t len, const char *what)
{
    if (fread(buf, 1, len, in) != len) {
        return ts_error_set(TS_ERR_INVALID, "the file is truncated in its %s", what);
    }
    return TS_OK;
}

/* Opens path and reads its header and manifest. */
static ts_err read_head(const char *path, FILE **in, ts_fw_header *h, uint8_t **der)
{
    *der = NULL;
    *in = fopen(path, "rb");
    if (*in == NULL) {
        return ts_error_set(TS_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    }
    uint8_t hdr[TS_FW_HEADER_LEN];
    ts_err rv = read_exact(*in, hdr, sizeof hdr, "header");
    if (rv == TS_OK) {
        rv = ts_fw_header_parse(hdr, sizeof hdr, h);
    }
    if (rv == TS_OK) {
        *der = malloc(h->manifest_len);
        rv = *der == NULL ? ts_error_set(TS_ERR_NOMEM, "no memory for the manifest")
                          : read_exact(*in, *der, h->manifest_len, "manifest");
    }
    if (rv != TS_OK) {
        free(*der);
        *der = NULL;
        fclose(*in);
        *in = NULL;
    }
    return rv;
}

/* Where released chunks go: counted, and written to a temporary file when --out is given. */
typedef struct sink {
    uint64_t released;
    FILE *out;
    int io_failed;
} sink;

static int take_chunk(void *ctx, const uint8_t *data, size_t len)
{
    sink *s = ctx;
    s->released += len;
    if (s->out != NULL && fwrite(data, 1, len, s->out) != len) {
        s->io_failed = errno != 0 ? errno : EIO;
        return -1;
    }
    return 0;
}

static ts_err verify_stream(FILE *in, ts_fw_verifier *v, uint64_t payload_len, sink *s)
{
    size_t cap = 1u << 20;
    uint8_t *buf = malloc(cap);
    ts_err rv = buf == NULL ? ts_error_set(TS_ERR_NOMEM, "no memory") : TS_OK;
    uint64_t left = payload_len;
    while (rv == TS_OK && left > 0) {
        size_t want = left < cap ? (size_t)left : cap;
        size_t got = fread(buf, 1, want, in);
        if (got == 0) {
            break;
        }
        left -= got;
        rv = ts_fw_verifier_feed(v, buf, got, take_chunk, s);
        if (rv != TS_OK && s->io_failed != 0) {
            rv = ts_error_set(TS_ERR_IO, "cannot write the image: %s", strerror(s->io_failed));
        }
    }
    if (rv == TS_OK) {
        rv = ts_fw_verifier_finish(v);
    }
    if (rv == TS_OK && buf != NULL && fread(buf, 1, 1, in) != 0) {
        rv = ts_error_set(TS_ERR_INVALID, "the file has data after the payload");
    }
    free(buf);
    return rv;
}

/* The temporary file beside --out. */
static ts_err out_open(const char *path, char **tmp, FILE **out)
{
    size_t n = strlen(path);
    *tmp = malloc(n + 5);
    if (*tmp == NULL) {
        return ts_error_set(TS_ERR_NOMEM, "no memory");
    }
    memcpy(*tmp, path, n);
    memcpy(*tmp + n, ".tmp", 5);
    int fd = open(*tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    *out = fd >= 0 ? fdopen(fd, "wb") : NULL;
    if (*out == NULL) {
        ts_err rv = ts_error_set(TS_ERR_IO, "cannot create %s: %s", *tmp, strerror(errno));
        if (fd >= 0) {
            close(fd);
            unlink(*tmp);
        }
        free(*tmp);
        *tmp = NULL;
        return rv;
    }
    return TS_OK;
}

/* Makes the temporary file durable and renames it over path; or removes it (ok == 0). */
static ts_err out_close(const char *path, char *tmp, FILE *out, int ok)
{
    ts_err rv = TS_OK;
    if (ok && (fflush(out) != 0 || fsync(fileno(out)) != 0)) {
        rv = ts_error_set(TS_ERR_IO, "cannot write %s: %s", tmp, strerror(errno));
    }
    if (fclose(out) != 0 && ok && rv == TS_OK) {
        rv = ts_error_set(TS_ERR_IO, "cannot write %s: %s", tmp, strerror(errno));
    }
    if (ok && rv == TS_OK && rename(tmp, path) != 0) {
        rv = ts_error_set(TS_ERR_IO, "cannot rename %s: %s", tmp, strerror(errno));
    }
    if (ok && rv == TS_OK) {
        char *copy = strdup(path);
        rv = copy == NULL ? ts_error_set(TS_ERR_NOMEM, "no memory") : ts_dir_sync(dirname(copy));
        free(copy);
    }
    if (!ok || rv != TS_OK) {
        unlink(tmp);
    }
    free(tmp);
    return rv;
}

static void describe_enc(const ts_fw_info *info, char *buf, size_t size)
{
    if (info->enc_group) {
        snprintf(buf, size, "the fleet key %s", info->enc_key_id);
    } else {
        snprintf(buf, size, "the device key %s", info->enc_key_id);
    }
}

static int check_verify_opts(const cli_args *args)
{
    if (cli_opt_given(args, "label") && cli_keystore_uri(args) == NULL) {
        return cli_usage_error(args, "--label needs --keystore URI (or TESSERA_KEYSTORE)");
    }
    if (cli_opt_given(args, "keystore") && !cli_opt_given(args, "label")) {
        return cli_usage_error(args, "--keystore goes with --label LABEL (the recipient key)");
    }
    if (cli_opt_given(args, "label") &&
        cli_keystore_check_label(args, cli_opt_value(args, "label")) != CLI_EXIT_OK) {
        return CLI_EXIT_USAGE;
    }
    if (cli_opt_given(args, "manifest-only") &&
        (cli_opt_given(args, "out") || cli_opt_given(args, "label"))) {
        return cli_usage_error(args, "--manifest-only checks no payload: no --out or --label");
    }
    return CLI_EXIT_OK;
}

/* The file's length must be the header, the manifest and the payload the header announces. */
static ts_err check_length(FILE *in, const ts_fw_header *h)
{
    struct stat st;
    uint64_t want = TS_FW_HEADER_LEN + (uint64_t)h->manifest_len + h->payload_len;
    if (fstat(fileno(in), &st) != 0) {
        return ts_error_set(TS_ERR_IO, "cannot stat the file: %s", strerror(errno));
    }
    if ((uint64_t)st.st_size < want) {
        return ts_error_set(TS_ERR_INVALID, "the payload is truncated: %llu of %llu bytes",
                            (unsigned long long)st.st_size, (unsigned long long)want);
    }
    if ((uint64_t)st.st_size > want) {
        return ts_error_set(TS_ERR_INVALID, "the file has data after the payload");
    }
    return TS_OK;
}

static ts_err load_roots(const char *path, X509_STORE **out)
{
    STACK_OF(X509) *certs = NULL;
    X509_STORE *roots = X509_STORE_new();
    ts_err rv =
        roots == NULL ? ts_error_set(TS_ERR_NOMEM, "no memory") : cli_fw_load_certs(path, &certs);
    for (int i = 0; rv == TS_OK && i < sk_X509_num(certs); i++) {
        if (X509_STORE_add_cert(roots, sk_X509_value(certs, i)) != 1) {
            rv = ts_error_set_openssl(TS_ERR_CRYPTO, "cannot add a trusted root");
        }
    }
    sk_X509_pop_free(certs, X509_free);
    if (rv != TS_OK) {
        X509_STORE_free(roots);
        return rv;
    }
    *out = roots;
    return TS_OK;
}

int cli_fw_cmd_verify(const cli_args *args)
{
    int st = check_verify_opts(args);
    if (st != CLI_EXIT_OK) {
        return st;
    }
    int manifest_only = cli_opt_given(args, "manifest-only");
    const char *label = cli_opt_value(args, "label");
    const char *out_path = cli_opt_value(args, "out");
    X509_STORE *roots = NULL;
    FILE *in = NULL;
    ts_fw_header h;
    uint8_t *der = NULL;
    ts_fw_verifier *v = NULL;
    ts_keystore *ks = NULL;
    sink s = {0};
    char *tmp = NULL;
    int encrypted_unchecked = 0;
    ts_err rv = load_roots(cli_opt_value(args, "trust"), &roots);
    if (rv == TS_OK) {
        rv = read_head(cli_opt_value(args, "file"), &in, &h, &der);
    }
    if (rv == TS_OK) {
        rv = ts_fw_verifier_open(der, h.manifest_len, h.payload_len, roots, time(NULL), &v);
    }
    const ts_fw_info *info = rv == TS_OK ? ts_fw_verifier_info(v) : NULL;
    if (rv == TS_OK && (manifest_only || (info->encrypted && label == NULL))) {
        rv = check_length(in, &h);
        encrypted_unchecked = !manifest_only;
    } else if (rv == TS_OK) {
        if (info->encrypted) {
            rv = ts_keystore_open(cli_keystore_uri(args), &ks);
            if (rv == TS_OK) {
                rv = ts_fw_verifier_set_key(v, ks, label);
            }
        }
        if (rv == TS_OK && out_path != NULL) {
            rv = out_open(out_path, &tmp, &s.out);
        }
        if (rv == TS_OK) {
            rv = verify_stream(in, v, h.payload_len, &s);
        }
        if (tmp != NULL) {
            ts_err closed = out_close(out_path, tmp, s.out, rv == TS_OK);
            rv = rv == TS_OK ? closed : rv;
        }
    }
    char subject[256] = "";
    char enc[200] = "";
    if (rv == TS_OK) {
        X509_NAME_oneline(X509_get_subject_name(ts_fw_verifier_signer(v)), subject, sizeof subject);
        if (info->encrypted) {
            describe_enc(info, enc, sizeof enc);
        }
    }
    if (rv == TS_OK && (manifest_only || encrypted_unchecked)) {
        printf("verified manifest: version %" PRIu64 " seq %" PRIu64 " hw %s, signer %s; "
               "payload not checked (%" PRIu64 " bytes in %u chunks%s%s)\n",
               info->version, info->seq, info->hw, subject, info->wire_size, info->chunks,
               info->encrypted ? ", encrypted to " : "", enc);
    } else if (rv == TS_OK) {
        printf("verified: version %" PRIu64 " seq %" PRIu64 " hw %s, %" PRIu64
               " bytes in %u chunks, signer %s%s%s\n",
               info->version, info->seq, info->hw, s.released, info->chunks, subject,
               info->encrypted ? "; decrypted, encrypted to " : "", enc);
        if (out_path != NULL) {
            printf("wrote %s\n", out_path);
        }
    }
    ts_fw_verifier_free(v);
    ts_keystore_free(ks);
    free(der);
    if (in != NULL) {
        fclose(in);
    }
    X509_STORE_free(roots);
    if (rv != TS_OK) {
        fprintf(stderr, "tessera: fw verify: refused: %s\n", ts_error_message());
        return CLI_EXIT_FAIL;
    }
    if (encrypted_unchecked) {
        fprintf(stderr,
                "tessera: fw verify: not verified: the payload is encrypted to %s; its chunks "
                "cannot be checked without that key (give --keystore URI --label LABEL, or "
                "--manifest-only to accept the manifest alone)\n",
                enc);
        return CLI_EXIT_FAIL;
    }
    return CLI_EXIT_OK;
}

/* The signer certificate named by the one SignerInfo, unverified. */
static X509 *find_signer(CMS_ContentInfo *cms, STACK_OF(X509) * certs)
{
    STACK_OF(CMS_SignerInfo) *infos = CMS_get0_SignerInfos(cms);
    if (sk_CMS_SignerInfo_num(infos) != 1) {
        return NULL;
    }
    for (int i = 0; i < sk_X509_num(certs); i++) {
        if (CMS_SignerInfo_cert_cmp(sk_CMS_SignerInfo_value(infos, 0), sk_X509_value(certs, i)) ==
            0) {
            return sk_X509_value(certs, i);
        }
    }
    return NULL;
}

int cli_fw_cmd_inspect(const cli_args *args)
{
    FILE *in = NULL;
    ts_fw_header h;
    uint8_t *der = NULL;
    CMS_ContentInfo *cms = NULL;
    STACK_OF(X509) *certs = NULL;
    ts_fw_info info;
    ts_err rv = read_head(cli_opt_value(args, "file"), &in, &h, &der);
    if (rv == TS_OK) {
        const unsigned char *p = der;
        cms = d2i_CMS_ContentInfo(NULL, &p, (long)h.manifest_len);
        ASN1_OCTET_STRING **content = cms != NULL ? CMS_get0_content(cms) : NULL;
        if (content == NULL || *content == NULL || p != der + h.manifest_len) {
            rv = ts_error_set_openssl(TS_ERR_INVALID, "the manifest is not CMS with content");
        } else {
            rv = ts_fw_manifest_parse((const char *)ASN1_STRING_get0_data(*content),
                                      (size_t)ASN1_STRING_length(*content), &info, NULL);
        }
    }
    if (rv == TS_OK && cli_opt_given(args, "manifest-out")) {
        rv = cli_write_output(cli_opt_value(args, "manifest-out"), der, h.manifest_len, 0644);
    }
    if (rv == TS_OK) {
        certs = CMS_get1_certs(cms);
        X509 *signer = find_signer(cms, certs);
        char subject[256] = "(not carried)";
        if (signer != NULL) {
            X509_NAME_oneline(X509_get_subject_name(signer), subject, sizeof subject);
        }
        printf("format: %u (not verified; use tessera fw verify)\n", h.format);
        printf("version: %" PRIu64 "\nseq: %" PRIu64 "\nhw: %s\n", info.version, info.seq, info.hw);
        if (info.has_min_version) {
            printf("min-version: %" PRIu64 "\n", info.min_version);
        }
        printf("signer: %s\nmanifest: %u bytes\npayload: %" PRIu64 " bytes\n", subject,
               h.manifest_len, h.payload_len);
        printf("chunks: %u of %u bytes\n", info.chunks, info.chunk_size);
        for (size_t i = 0; i < info.depends_count; i++) {
            printf("depends: %s >= %" PRIu64 "\n", info.depends[i].name,
                   info.depends[i].min_version);
        }
        if (info.encrypted) {
            printf("encryption: AES-256-GCM per chunk, to %s %s\n",
                   info.enc_group ? "fleet key" : "device key", info.enc_key_id);
            printf("image: %" PRIu64 " bytes (wire size %" PRIu64 ")\n", info.size, info.wire_size);
        } else {
            printf("encryption: none\n");
        }
    }
    sk_X509_pop_free(certs, X509_free);
    CMS_ContentInfo_free(cms);
    free(der);
    if (in != NULL) {
        fclose(in);
    }
    return rv == TS_OK ? CLI_EXIT_OK : cli_fail();
}
