/*
 * bench_fota: firmware update files, verified as a device verifies them.
 *
 * A throwaway CA (in memory) makes a firmware signer; a soft: key store in a temporary directory
 * holds a device key, the recipient of the encrypted files. Images of 256 MiB and 16 MiB are
 * signed plain and encrypted. Then, in rounds that take turns:
 *   raw_sha256        OpenSSL's SHA-256 over the 256 MiB image in memory (1 MiB updates)
 *   raw_aes256gcm     OpenSSL's AES-256-GCM encryption of the same bytes in memory
 *   verify            the plain 256 MiB file streamed from disk in 1 MiB reads through the
 *                     verifier (manifest, chain, every chunk), released chunks discarded
 *   verify_decrypt    the same for the encrypted file, with the key set from the key store
 * each figure the best of its rounds, in MB/s (10^6 bytes), and its ratio to the slower raw rate;
 * target >= 0.80. Then the peak RSS of verifying each file in a fresh process (this program
 * re-executed, ru_maxrss from wait4): the 16 MiB and 256 MiB figures must be within 1 MiB.
 * docs/bench.md describes the output. Environment: TS_BENCH_ROUNDS (default 3), TMPDIR.
 */
#define _GNU_SOURCE
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "tessera/fota.h"
#include "tessera/keystore.h"

#define BENCH_PIN   "bench-pin-1234"
#define BENCH_LABEL "dev"
#define BENCH_GOAL  0.80
#define BENCH_MIB   (1024u * 1024u)
#define BENCH_BIG   (256u * BENCH_MIB)
#define BENCH_SMALL (16u * BENCH_MIB)

enum { F_SHA, F_GCM, F_VERIFY, F_DECRYPT, F_COUNT };
static const char *const fig_names[F_COUNT] = {"raw_sha256", "raw_aes256gcm", "verify",
                                               "verify_decrypt"};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
    fprintf(stderr, "bench_fota: %s: %s\n", what, ts_error_message());
    ERR_print_errors_fp(stderr);
    exit(1);
}

static X509 *make_cert(const char *cn, EVP_PKEY *key, X509 *issuer, EVP_PKEY *issuer_key)
{
    X509 *c = X509_new();
    X509_set_version(c, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(c), issuer == NULL ? 1 : 2);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(c), "CN", MBSTRING_ASC,
                               (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(c, X509_get_subject_name(issuer != NULL ? issuer : c));
    X509_set_pubkey(c, key);
    X509_gmtime_adj(X509_getm_notBefore(c), -60);
    X509_gmtime_adj(X509_getm_notAfter(c), 86400);
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, issuer != NULL ? issuer : c, c, NULL, NULL, 0);
    X509_EXTENSION *ext =
        X509V3_EXT_conf_nid(NULL, &ctx, issuer == NULL ? NID_basic_constraints : NID_ext_key_usage,
                            issuer == NULL ? "critical,CA:TRUE" : "codeSigning");
    if (ext == NULL || X509_add_ext(c, ext, -1) != 1 ||
        X509_sign(c, issuer_key, EVP_sha256()) <= 0) {
        die("a certificate");
    }
    X509_EXTENSION_free(ext);
    return c;
}

/* A pseudo-random image of size bytes (xorshift, so it is quick and does not compress). */
static void make_image(const char *path, size_t size)
{
    FILE *f = fopen(path, "wb");
    uint64_t *buf = malloc(BENCH_MIB);
    uint64_t x = 0x9e3779b97f4a7c15u;
    if (f == NULL || buf == NULL) {
        die("an image");
    }
    for (size_t done = 0; done < size; done += BENCH_MIB) {
        for (size_t i = 0; i < BENCH_MIB / 8; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            buf[i] = x;
        }
        if (fwrite(buf, 1, BENCH_MIB, f) != BENCH_MIB) {
            die("writing an image");
        }
    }
    fclose(f);
    free(buf);
}

static int discard(void *ctx, const uint8_t *data, size_t len)
{
    (void)data;
    *(uint64_t *)ctx += len;
    return 0;
}

/* Streams the update file at path through a verifier in 1 MiB reads; the bytes released. */
static uint64_t verify_file(const char *path, X509_STORE *roots, ts_keystore *ks)
{
    FILE *in = fopen(path, "rb");
    uint8_t hdr[TS_FW_HEADER_LEN];
    uint8_t *buf = malloc(BENCH_MIB);
    ts_fw_header h;
    if (in == NULL || buf == NULL || fread(hdr, 1, sizeof hdr, in) != sizeof hdr ||
        ts_fw_header_parse(hdr, sizeof hdr, &h) != TS_OK || h.manifest_len > BENCH_MIB ||
        fread(buf, 1, h.manifest_len, in) != h.manifest_len) {
        die("reading an update file");
    }
    ts_fw_verifier *v = NULL;
    uint64_t released = 0;
    ts_err rv = ts_fw_verifier_open(buf, h.manifest_len, h.payload_len, roots, time(NULL), &v);
    if (rv == TS_OK && ts_fw_verifier_info(v)->encrypted) {
        rv = ts_fw_verifier_set_key(v, ks, BENCH_LABEL);
    }
    size_t got;
    while (rv == TS_OK && (got = fread(buf, 1, BENCH_MIB, in)) > 0) {
        rv = ts_fw_verifier_feed(v, buf, got, discard, &released);
    }
    if (rv == TS_OK) {
        rv = ts_fw_verifier_finish(v);
    }
    if (rv != TS_OK) {
        die(path);
    }
    ts_fw_verifier_free(v);
    free(buf);
    fclose(in);
    return released;
}

static X509_STORE *load_roots(const char *pem)
{
    FILE *f = fopen(pem, "r");
    X509 *root = f != NULL ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
    X509_STORE *roots = X509_STORE_new();
    if (root == NULL || roots == NULL || X509_STORE_add_cert(roots, root) != 1) {
        die("the roots");
    }
    fclose(f);
    X509_free(root);
    return roots;
}

/* The re-executed child: verify one file, exit 0 when it verified. */
static int child_main(int argc, char **argv)
{
    X509_STORE *roots = load_roots(argv[2]);
    ts_keystore *ks = NULL;
    if (argc > 4 && ts_keystore_open(argv[4], &ks) != TS_OK) {
        die("the key store");
    }
    uint64_t n = verify_file(argv[3], roots, ks);
    ts_keystore_free(ks);
    X509_STORE_free(roots);
    return n > 0 ? 0 : 1;
}

/* Peak RSS (KiB) of a fresh process verifying path. */
static long peak_rss(const char *roots_pem, const char *path, const char *uri)
{
    pid_t pid = fork();
    if (pid == 0) {
        char *args[] = {"bench_fota", "--child",   (char *)roots_pem,
                        (char *)path, (char *)uri, NULL};
        execv("/proc/self/exe", args);
        _exit(127);
    }
    int status = 0;
    struct rusage ru;
    if (pid < 0 || wait4(pid, &status, 0, &ru) != pid || !WIFEXITED(status) ||
        WEXITSTATUS(status) != 0) {
        fprintf(stderr, "bench_fota: the verifying child for %s failed\n", path);
        exit(1);
    }
    return ru.ru_maxrss;
}

static double raw_sha(const uint8_t *buf, size_t len)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    uint8_t out[32];
    double t0 = now_s();
    int ok = EVP_DigestInit_ex2(md, EVP_sha256(), NULL) == 1;
    for (size_t off = 0; ok && off < len; off += BENCH_MIB) {
        ok = EVP_DigestUpdate(md, buf + off, BENCH_MIB) == 1;
    }
    ok = ok && EVP_DigestFinal_ex(md, out, NULL) == 1;
    double t = now_s() - t0;
    EVP_MD_CTX_free(md);
    if (!ok) {
        die("raw SHA-256");
    }
    return t;
}

/* AES-256-GCM encryption of buf in 1 MiB updates into out. */
static double raw_gcm(const uint8_t *buf, uint8_t *out, size_t len)
{
    static const uint8_t key[32] = {1}, iv[12] = {2};
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    uint8_t tag[16];
    int n = 0;
    double t0 = now_s();
    int ok = EVP_EncryptInit_ex2(c, EVP_aes_256_gcm(), key, iv, NULL) == 1;
    for (size_t off = 0; ok && off < len; off += BENCH_MIB) {
        ok = EVP_EncryptUpdate(c, out + off, &n, buf + off, BENCH_MIB) == 1;
    }
    ok = ok && EVP_EncryptFinal_ex(c, tag, &n) == 1;
    double t = now_s() - t0;
    EVP_CIPHER_CTX_free(c);
    if (!ok) {
        die("raw AES-256-GCM");
    }
    return t;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void sign(ts_fw_sign_params *p, const char *img, const char *out, EVP_PKEY *to)
{
    p->encrypt_to = to;
    if (ts_fw_sign_file(p, img, out) != TS_OK) {
        die("signing");
    }
}

int main(int argc, char **argv)
{
    if (argc >= 4 && strcmp(argv[1], "--child") == 0) {
        return child_main(argc, argv);
    }
    const char *rounds_env = getenv("TS_BENCH_ROUNDS");
    int rounds = rounds_env != NULL ? atoi(rounds_env) : 3;
    rounds = rounds < 1 ? 1 : rounds;
    const char *tmpdir = getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp";
    char dir[512], uri[700], p[F_COUNT + 8][700];
    snprintf(dir, sizeof dir, "%s/bench-fota-XXXXXX", tmpdir);
    if (mkdtemp(dir) == NULL) {
        perror("bench_fota: temporary directory");
        return 1;
    }
    const char *names[] = {"root.pem", "big.img",    "small.img", "big.tsfw",
                           "big.enc",  "small.tsfw", "small.enc"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(p[i], sizeof p[i], "%s/%s", dir, names[i]);
    }
    snprintf(uri, sizeof uri, "soft:%s/ks?pin-value=" BENCH_PIN, dir);
    ts_keystore *ks = NULL;
    EVP_PKEY *dev = NULL;
    if (ts_keystore_create(uri, NULL, &ks) != TS_OK ||
        ts_keystore_generate(ks, BENCH_LABEL, TS_CURVE_P256) != TS_OK ||
        ts_keystore_public_key(ks, BENCH_LABEL, &dev) != TS_OK) {
        die("the key store");
    }
    EVP_PKEY *root_key = EVP_EC_gen("P-256");
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *root = make_cert("Bench Root", root_key, NULL, root_key);
    X509 *signer = make_cert("bench-signer", key, root, root_key);
    FILE *f = fopen(p[0], "w");
    if (f == NULL || PEM_write_X509(f, root) != 1) {
        die("root.pem");
    }
    fclose(f);
    X509_STORE *roots = load_roots(p[0]);

    printf("bench fota: images of 256 MiB and 16 MiB, chunks of %u bytes, 1 MiB reads, "
           "best of %d rounds\n",
           TS_FW_CHUNK_DEFAULT, rounds);
    fflush(stdout);
    make_image(p[1], BENCH_BIG);
    make_image(p[2], BENCH_SMALL);
    ts_fw_sign_params sp = {.key = key, .cert = signer, .version = 1, .seq = 1, .hw = "bench"};
    sign(&sp, p[1], p[3], NULL);
    sign(&sp, p[1], p[4], dev);
    sign(&sp, p[2], p[5], NULL);
    sign(&sp, p[2], p[6], dev);

    /* The image in memory, for the raw rates. */
    uint8_t *img = malloc(BENCH_BIG);
    uint8_t *out = malloc(BENCH_BIG);
    f = fopen(p[1], "rb");
    if (img == NULL || out == NULL || f == NULL || fread(img, 1, BENCH_BIG, f) != BENCH_BIG) {
        die("reading the image");
    }
    fclose(f);
    memset(out, 0, BENCH_BIG);

    double best[F_COUNT] = {0};
    for (int r = 0; r < rounds; r++) {
        for (int k = 0; k < F_COUNT; k++) {
            int fig = (k + r) % F_COUNT;
            double t0 = now_s(), t = 0;
            if (fig == F_SHA) {
                t = raw_sha(img, BENCH_BIG);
            } else if (fig == F_GCM) {
                t = raw_gcm(img, out, BENCH_BIG);
            } else if (verify_file(p[fig == F_VERIFY ? 3 : 4], roots, ks) != BENCH_BIG) {
                die("a verification released the wrong size");
            } else {
                t = now_s() - t0;
            }
            double rate = BENCH_BIG / t / 1e6;
            best[fig] = rate > best[fig] ? rate : best[fig];
        }
    }
    free(img);
    free(out);
    long rss[4];
    rss[0] = peak_rss(p[0], p[5], NULL);
    rss[1] = peak_rss(p[0], p[3], NULL);
    rss[2] = peak_rss(p[0], p[6], uri);
    rss[3] = peak_rss(p[0], p[4], uri);

    double slower = best[F_SHA] < best[F_GCM] ? best[F_SHA] : best[F_GCM];
    printf("\n%-16s %10s %14s\n", "figure", "MB/s", "ratio vs raw");
    for (int k = 0; k < F_COUNT; k++) {
        printf("%-16s %10.0f %14.2f\n", fig_names[k], best[k], best[k] / slower);
    }
    printf("\n%-16s %12s %12s %10s\n", "peak RSS", "16 MiB", "256 MiB", "diff");
    printf("%-16s %9ld KiB %9ld KiB %6ld KiB\n", "verify", rss[0], rss[1], rss[1] - rss[0]);
    printf("%-16s %9ld KiB %9ld KiB %6ld KiB\n", "verify_decrypt", rss[2], rss[3], rss[3] - rss[2]);
    printf("\n");
    for (int k = F_VERIFY; k <= F_DECRYPT; k++) {
        double ratio = best[k] / slower;
        printf("target %s >= %.2f x the slower raw rate (%s): %s (%.2f)\n", fig_names[k],
               BENCH_GOAL, best[F_SHA] < best[F_GCM] ? fig_names[F_SHA] : fig_names[F_GCM],
               ratio >= BENCH_GOAL ? "PASS" : "MISS", ratio);
    }
    for (int k = 0; k < 2; k++) {
        long d = labs(rss[2 * k + 1] - rss[2 * k]);
        printf("target %s peak RSS 16 MiB vs 256 MiB within 1024 KiB: %s (%ld KiB)\n",
               k == 0 ? "verify" : "verify_decrypt", d <= 1024 ? "PASS" : "MISS", d);
    }
    for (int k = F_VERIFY; k <= F_DECRYPT; k++) {
        printf("bench fota %s %.0f MB/s ratio %.2f vs %s\n", fig_names[k], best[k],
               best[k] / slower, best[F_SHA] < best[F_GCM] ? fig_names[F_SHA] : fig_names[F_GCM]);
    }
    printf("bench fota raw_sha256 %.0f MB/s\nbench fota raw_aes256gcm %.0f MB/s\n", best[F_SHA],
           best[F_GCM]);
    printf("bench fota rss_verify %ld %ld KiB\nbench fota rss_verify_decrypt %ld %ld KiB\n", rss[0],
           rss[1], rss[2], rss[3]);

    X509_STORE_free(roots);
    X509_free(root);
    X509_free(signer);
    EVP_PKEY_free(root_key);
    EVP_PKEY_free(key);
    EVP_PKEY_free(dev);
    ts_keystore_free(ks);
    nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}
