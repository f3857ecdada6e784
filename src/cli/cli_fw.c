/*
 * tessera fw sign|verify|inspect: update files for the firmware of devices (docs/firmware.md).
 * verify streams the file through the same verifier a device runs, in constant memory.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include "cli/cli_fw.h"
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
    {.name = "image",
     .value = "IMAGE",
     .flags = CLI_OPT_REQUIRED,
     .help = "the image (positional)"},
    {.name = "out", .value = "OUT", .flags = CLI_OPT_REQUIRED, .help = "the update file (-o)"},
    {0},
};

static const cli_opt verify_opts[] = {
    {.name = "trust",
     .value = "ROOTS",
     .flags = CLI_OPT_REQUIRED,
     .help = "trusted root certificates (PEM)"},
    {.name = "file",
     .value = "FILE",
     .flags = CLI_OPT_REQUIRED,
     .help = "the update file (positional)"},
    {0},
};

static const cli_opt inspect_opts[] = {
    {.name = "file",
     .value = "FILE",
     .flags = CLI_OPT_REQUIRED,
     .help = "the update file (positional)"},
    {.name = "manifest-out",
     .value = "FILE",
     .help = "write the signed manifest (DER CMS) here, for openssl cms -verify"},
    {0},
};

static int parse_u63(const cli_args *args, const char *name, uint64_t *out)
{
    const char *text = cli_opt_value(args, name);
    if (cli_parse_u64(text, out) != 0 || *out > INT64_MAX) {
        return cli_usage_error(args, "--%s must be an integer 0..2^63-1, not '%s'", name, text);
    }
    return CLI_EXIT_OK;
}

static ts_err load_certs(const char *path, STACK_OF(X509) * *out)
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

static int cmd_sign(const cli_args *args)
{
    ts_fw_sign_params p = {.hw = cli_opt_value(args, "hw")};
    int st = parse_u63(args, "version", &p.version);
    if (st == CLI_EXIT_OK && cli_opt_given(args, "min-version")) {
        p.has_min_version = 1;
        st = parse_u63(args, "min-version", &p.min_version);
    }
    if (st == CLI_EXIT_OK && cli_opt_given(args, "seq")) {
        st = parse_u63(args, "seq", &p.seq);
    } else {
        p.seq = (uint64_t)time(NULL);
    }
    uint64_t chunk = TS_FW_CHUNK_DEFAULT;
    if (st == CLI_EXIT_OK && cli_opt_given(args, "chunk-size") &&
        (cli_parse_u64(cli_opt_value(args, "chunk-size"), &chunk) != 0 || chunk < TS_FW_CHUNK_MIN ||
         chunk > TS_FW_CHUNK_MAX)) {
        st = cli_usage_error(args, "--chunk-size must be %u..%u", TS_FW_CHUNK_MIN, TS_FW_CHUNK_MAX);
    }
    if (st != CLI_EXIT_OK) {
        return st;
    }
    p.chunk_size = (uint32_t)chunk;
    STACK_OF(X509) *certs = NULL;
    ts_keystore *ks = NULL;
    ts_err rv = load_certs(cli_opt_value(args, "cert"), &certs);
    if (rv == TS_OK) {
        p.cert = sk_X509_value(certs, 0);
        if (cli_opt_given(args, "chain")) {
            rv = load_certs(cli_opt_value(args, "chain"), &p.chain);
        }
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
    ts_keystore_free(ks);
    sk_X509_pop_free(p.chain, X509_free);
    sk_X509_pop_free(certs, X509_free);
    if (rv != TS_OK) {
        return cli_fail();
    }
    printf("signed %s: version %" PRIu64 " seq %" PRIu64 " hw %s\n", cli_opt_value(args, "out"),
           p.version, p.seq, p.hw);
    return CLI_EXIT_OK;
}

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

static int count_chunk(void *ctx, const uint8_t *data, size_t len)
{
    (void)data;
    *(uint64_t *)ctx += len;
    return 0;
}

static ts_err verify_stream(FILE *in, const ts_fw_header *h, const uint8_t *der, X509_STORE *roots,
                            ts_fw_verifier **out, uint64_t *released)
{
    ts_err rv = ts_fw_verifier_open(der, h->manifest_len, h->payload_len, roots, time(NULL), out);
    uint8_t buf[65536];
    uint64_t left = h->payload_len;
    while (rv == TS_OK && left > 0) {
        size_t want = left < sizeof buf ? (size_t)left : sizeof buf;
        size_t got = fread(buf, 1, want, in);
        if (got == 0) {
            break;
        }
        left -= got;
        rv = ts_fw_verifier_feed(*out, buf, got, count_chunk, released);
    }
    if (rv == TS_OK) {
        rv = ts_fw_verifier_finish(*out);
    }
    if (rv == TS_OK && fread(buf, 1, 1, in) != 0) {
        rv = ts_error_set(TS_ERR_INVALID, "the file has data after the payload");
    }
    return rv;
}

static int cmd_verify(const cli_args *args)
{
    X509_STORE *roots = X509_STORE_new();
    STACK_OF(X509) *certs = NULL;
    ts_err rv = roots == NULL ? ts_error_set(TS_ERR_NOMEM, "no memory")
                              : load_certs(cli_opt_value(args, "trust"), &certs);
    for (int i = 0; rv == TS_OK && i < sk_X509_num(certs); i++) {
        if (X509_STORE_add_cert(roots, sk_X509_value(certs, i)) != 1) {
            rv = ts_error_set_openssl(TS_ERR_CRYPTO, "cannot add a trusted root");
        }
    }
    FILE *in = NULL;
    ts_fw_header h;
    uint8_t *der = NULL;
    ts_fw_verifier *v = NULL;
    uint64_t released = 0;
    if (rv == TS_OK) {
        rv = read_head(cli_opt_value(args, "file"), &in, &h, &der);
    }
    if (rv == TS_OK) {
        rv = verify_stream(in, &h, der, roots, &v, &released);
    }
    if (rv == TS_OK) {
        const ts_fw_info *info = ts_fw_verifier_info(v);
        char subject[256];
        X509_NAME_oneline(X509_get_subject_name(ts_fw_verifier_signer(v)), subject, sizeof subject);
        printf("verified: version %" PRIu64 " seq %" PRIu64 " hw %s, %" PRIu64
               " bytes in %u chunks, signer %s\n",
               info->version, info->seq, info->hw, released, info->chunks, subject);
    }
    ts_fw_verifier_free(v);
    free(der);
    if (in != NULL) {
        fclose(in);
    }
    sk_X509_pop_free(certs, X509_free);
    X509_STORE_free(roots);
    if (rv != TS_OK) {
        fprintf(stderr, "tessera: fw verify: refused: %s\n", ts_error_message());
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

static int cmd_inspect(const cli_args *args)
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
    }
    sk_X509_pop_free(certs, X509_free);
    CMS_ContentInfo_free(cms);
    free(der);
    if (in != NULL) {
        fclose(in);
    }
    return rv == TS_OK ? CLI_EXIT_OK : cli_fail();
}

const cli_command cli_fw_commands[] = {
    {.name = "sign", .summary = "Make a signed update file", .opts = sign_opts, .run = cmd_sign},
    {.name = "verify",
     .summary = "Verify an update file against trusted roots",
     .opts = verify_opts,
     .run = cmd_verify},
    {.name = "inspect",
     .summary = "Show an update file's manifest (unverified)",
     .opts = inspect_opts,
     .run = cmd_inspect},
    {0},
};

const char cli_fw_help[] = "Shapes:\n"
                           "  tessera fw sign --key URI --label NAME --cert FILE [--chain FILE]\n"
                           "      --version V --hw HWID [--min-version V] [--seq N] IMAGE -o OUT\n"
                           "  tessera fw verify --trust ROOTS FILE\n"
                           "  tessera fw inspect [--manifest-out FILE] FILE\n";
