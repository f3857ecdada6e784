/*
 * tessera rtp serve: hands each device its bundles over plain TCP and keeps the receipts it
 * signs (docs/rtp.md). One connection at a time; every read and write has a timeout, every
 * message a 4-byte big-endian length with a cap. The bundles are protected end to end, so the
 * server needs no key: it checks each receipt against the device's key before keeping it.
 */
#include <dirent.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "cli/cli_rtp.h"
#include "common/error_internal.h"
#include "common/file_internal.h"
#include "common/frame_internal.h"
#include "rtp.pb-c.h"
#include "server/rtp.h"

enum {
    RTP_VERSION = 1,
    HELLO_MAX = 1024,
    MSG_MAX = 4 * 1024 * 1024, /* an offer or an answer: the agent's limit too */
    BUNDLE_MAX = 256 * 1024,
    OFFER_BUNDLES_MAX = 64,
    TIMEOUT_DEFAULT = 30,
    PATH_SIZE = 4096,
};

const cli_opt cli_rtp_serve_opts[] = {
    {.name = "dir", .value = "DIR", .flags = CLI_OPT_REQUIRED, .help = "bundles (rtp export)"},
    {.name = "listen", .value = "HOST:PORT", .flags = CLI_OPT_REQUIRED, .help = "TCP address"},
    {.name = "timeout", .value = "SECONDS", .help = "per read or write (default 30)"},
    {.name = "once", .help = "serve one connection, then exit (its status)"},
    {0},
};

const char cli_rtp_serve_help[] =
    "For a device that connects and names its UID, sends DIR/<uid>/*.rtp without a receipt, in\n"
    "name order, and writes each signed receipt it answers with, once it verifies with\n"
    "DIR/<uid>/device.pem (the device's receipt key, written by rtp export), as\n"
    "<bundle>.receipt with its signature in <bundle>.receipt.sig.\n"
    "Prints 'listening on HOST:PORT' (port 0 picks a free one) and a line per bundle.\n"
    "\n"
    "Example:\n"
    "  tessera rtp serve --dir rtp --listen 127.0.0.1:7411\n";

typedef struct offer_set {
    char names[OFFER_BUNDLES_MAX][256];
    ProtobufCBinaryData data[OFFER_BUNDLES_MAX];
    size_t count;
} offer_set;

static int is_bundle(const struct dirent *d)
{
    size_t n = strlen(d->d_name);
    return d->d_name[0] != '.' && n > 4 && n < 200 && strcmp(d->d_name + n - 4, ".rtp") == 0;
}

/* The device's bundles without a receipt, in name order. */
static ts_err offer_load(const char *dir, const char *uid, offer_set *set)
{
    struct dirent **list = NULL;
    char path[PATH_SIZE];
    int n;
    ts_err rv = TS_OK;

    snprintf(path, sizeof path, "%s/%s", dir, uid);
    n = scandir(path, &list, is_bundle, alphasort);
    if (n < 0) {
        return errno == ENOENT ? TS_OK : ts_error_set(TS_ERR_IO, "%s: %s", path, strerror(errno));
    }
    for (int i = 0; i < n; i++) {
        if (rv == TS_OK && set->count < OFFER_BUNDLES_MAX) {
            snprintf(path, sizeof path, "%s/%s/%s.receipt", dir, uid, list[i]->d_name);
            if (access(path, F_OK) != 0) {
                snprintf(set->names[set->count], sizeof set->names[0], "%s", list[i]->d_name);
                snprintf(path, sizeof path, "%s/%s/%s", dir, uid, list[i]->d_name);
                rv = ts_file_read(path, BUNDLE_MAX, &set->data[set->count].data,
                                  &set->data[set->count].len);
                if (rv == TS_OK) {
                    set->count++;
                }
            }
        }
        free(list[i]);
    }
    free(list);
    return rv;
}

/* Checks one signed receipt against the bundle sent and the device key, then keeps it. */
static ts_err receipt_keep(const char *dir, const char *uid, const EVP_PKEY *device,
                           const char *name, const ProtobufCBinaryData *bundle,
                           const Tessera__Rtp__SignedReceipt *sr)
{
    Tessera__Rtp__Receipt *r = NULL;
    uint8_t sha[32];
    char path[PATH_SIZE];
    ts_err rv;

    rv = ts_rtp_verify(device, sr->receipt.data, sr->receipt.len, sr->signature.data,
                       sr->signature.len);
    if (rv != TS_OK) {
        return ts_error_prefix(rv, "receipt for %s: the device key", name);
    }
    r = tessera__rtp__receipt__unpack(NULL, sr->receipt.len, sr->receipt.data);
    EVP_Digest(bundle->data, bundle->len, sha, NULL, EVP_sha256(), NULL);
    if (r == NULL || r->version != RTP_VERSION || r->device_uid == NULL ||
        strcmp(r->device_uid, uid) != 0 || r->bundle_sha256.len != sizeof sha ||
        CRYPTO_memcmp(r->bundle_sha256.data, sha, sizeof sha) != 0) {
        rv = ts_error_set(TS_ERR_CORRUPT, "receipt for %s: not for this bundle and device", name);
        goto done;
    }
    /* The signature first: a receipt present means done, and always has its signature. */
    snprintf(path, sizeof path, "%s/%s/%s.receipt.sig", dir, uid, name);
    rv = ts_file_write_atomic(path, sr->signature.data, sr->signature.len, 0644);
    snprintf(path, sizeof path, "%s/%s/%s.receipt", dir, uid, name);
    if (rv == TS_OK) {
        rv = ts_file_write_atomic(path, sr->receipt.data, sr->receipt.len, 0644);
    }
    if (rv == TS_OK && r->status == TS_OK) {
        printf("device %s: %s: accepted (%zu key(s) imported)\n", uid, name, r->n_results);
    } else if (rv == TS_OK) {
        printf("device %s: %s: refused (%s): %s\n", uid, name, ts_err_name((ts_err)r->status),
               r->message != NULL ? r->message : "");
    }
done:
    if (r != NULL) {
        tessera__rtp__receipt__free_unpacked(r, NULL);
    }
    return rv;
}

static ts_err device_key_load(const char *dir, const char *uid, EVP_PKEY **out)
{
    char path[PATH_SIZE];
    uint8_t *pem = NULL;
    size_t len = 0;
    BIO *bio;
    ts_err rv;

    snprintf(path, sizeof path, "%s/%s/device.pem", dir, uid);
    rv = ts_file_read(path, 16384, &pem, &len);
    if (rv != TS_OK) {
        return rv;
    }
    bio = BIO_new_mem_buf(pem, (int)len);
    *out = bio != NULL ? PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    OPENSSL_free(pem);
    return *out != NULL ? TS_OK : ts_error_set_openssl(TS_ERR_CORRUPT, "%s: not a PEM key", path);
}

static ts_err session(int fd, const char *dir)
{
    Tessera__Rtp__Hello *hello = NULL;
    Tessera__Rtp__Offer offer = TESSERA__RTP__OFFER__INIT;
    Tessera__Rtp__Answer *answer = NULL;
    offer_set *set = OPENSSL_zalloc(sizeof *set);
    EVP_PKEY *device = NULL;
    uint8_t *msg = NULL;
    size_t len = 0;
    char uid[TS_RTP_UID_MAX + 1];
    ts_err rv;

    if (set == NULL) {
        return ts_error_set(TS_ERR_NOMEM, "out of memory");
    }
    rv = ts_frame_recv(fd, HELLO_MAX, &msg, &len);
    if (rv == TS_OK) {
        hello = tessera__rtp__hello__unpack(NULL, len, msg);
        if (hello == NULL || hello->version != RTP_VERSION) {
            rv = ts_error_set(TS_ERR_CORRUPT, "the device's hello is not a version 1 Hello");
        }
    }
    if (rv == TS_OK) {
        rv = ts_rtp_uid_check(hello->device_uid);
    }
    if (rv != TS_OK) {
        goto done;
    }
    snprintf(uid, sizeof uid, "%s", hello->device_uid);
    rv = offer_load(dir, uid, set);
    if (rv == TS_OK && set->count > 0) {
        rv = device_key_load(dir, uid, &device);
    }
    if (rv != TS_OK) {
        goto done;
    }
    OPENSSL_free(msg);
    offer.version = RTP_VERSION;
    offer.bundles = set->data;
    offer.n_bundles = set->count;
    len = tessera__rtp__offer__get_packed_size(&offer);
    msg = OPENSSL_malloc(len > 0 ? len : 1);
    if (msg == NULL) {
        rv = ts_error_set(TS_ERR_NOMEM, "out of memory");
        goto done;
    }
    tessera__rtp__offer__pack(&offer, msg);
    rv = ts_frame_send(fd, msg, len, MSG_MAX);
    printf("device %s: %zu bundle(s) offered\n", uid, set->count);
    OPENSSL_free(msg);
    msg = NULL;
    if (rv != TS_OK || set->count == 0) {
        goto done;
    }
    rv = ts_frame_recv(fd, MSG_MAX, &msg, &len);
    if (rv == TS_OK) {
        answer = tessera__rtp__answer__unpack(NULL, len, msg);
        if (answer == NULL || answer->version != RTP_VERSION || answer->n_receipts != set->count) {
            rv = ts_error_set(TS_ERR_CORRUPT,
                              "device %s: the answer is not one receipt per "
                              "bundle",
                              uid);
        }
    }
    for (size_t i = 0; rv == TS_OK && i < set->count; i++) {
        rv = receipt_keep(dir, uid, device, set->names[i], &set->data[i], answer->receipts[i]);
    }
    fflush(stdout);
    if (rv == TS_OK) {
        Tessera__Rtp__Ack ack = TESSERA__RTP__ACK__INIT;
        uint8_t buf[16];
        ack.version = RTP_VERSION;
        ack.kept = (uint32_t)set->count;
        rv = ts_frame_send(fd, buf, tessera__rtp__ack__pack(&ack, buf), MSG_MAX);
    }
done:
    if (answer != NULL) {
        tessera__rtp__answer__free_unpacked(answer, NULL);
    }
    if (hello != NULL) {
        tessera__rtp__hello__free_unpacked(hello, NULL);
    }
    for (size_t i = 0; i < set->count; i++) {
        OPENSSL_free(set->data[i].data);
    }
    OPENSSL_free(set);
    OPENSSL_free(msg);
    EVP_PKEY_free(device);
    fflush(stdout);
    return rv;
}

static int listen_on(const cli_args *args, const char *addr)
{
    char host[256];
    const char *colon = strrchr(addr, ':');
    struct addrinfo hints, *res = NULL;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    char port[16];
    int one = 1, fd = -1;

    if (colon == NULL || colon == addr || (size_t)(colon - addr) >= sizeof host) {
        return -cli_usage_error(args, "--listen %s: want HOST:PORT", addr);
    }
    memcpy(host, addr, (size_t)(colon - addr));
    host[colon - addr] = '\0';
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV;
    if (getaddrinfo(host, colon + 1, &hints, &res) != 0) {
        return -cli_usage_error(args, "--listen %s: want a numeric HOST:PORT", addr);
    }
    fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, 8) != 0 ||
        getsockname(fd, (struct sockaddr *)&ss, &sl) != 0 ||
        getnameinfo((struct sockaddr *)&ss, sl, NULL, 0, port, sizeof port, NI_NUMERICSERV) != 0) {
        fprintf(stderr, "tessera: cannot listen on %s: %s\n", addr, strerror(errno));
        if (fd >= 0) {
            close(fd);
        }
        freeaddrinfo(res);
        return -CLI_EXIT_FAIL;
    }
    freeaddrinfo(res);
    printf("listening on %s:%s\n", host, port);
    fflush(stdout);
    return fd;
}

int cli_rtp_serve_run(const cli_args *args)
{
    const char *dir = cli_opt_value(args, "dir");
    uint64_t timeout = TIMEOUT_DEFAULT;
    int once = cli_opt_given(args, "once");
    int lfd, status = CLI_EXIT_OK;

    if (cli_opt_given(args, "timeout") &&
        (cli_parse_u64(cli_opt_value(args, "timeout"), &timeout) != 0 || timeout == 0 ||
         timeout > 3600)) {
        return cli_usage_error(args, "--timeout: 1 to 3600 seconds");
    }
    signal(SIGPIPE, SIG_IGN);
    lfd = listen_on(args, cli_opt_value(args, "listen"));
    if (lfd < 0) {
        return -lfd;
    }
    for (;;) {
        struct timeval tv = {.tv_sec = (time_t)timeout, .tv_usec = 0};
        int one = 1;
        int fd = accept(lfd, NULL, NULL);
        ts_err rv;

        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) {
                continue;
            }
            fprintf(stderr, "tessera: accept: %s\n", strerror(errno));
            status = CLI_EXIT_FAIL;
            break;
        }
        if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0 ||
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0 ||
            setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) != 0) {
            rv = ts_error_set(TS_ERR_IO, "socket options: %s", strerror(errno));
        } else {
            rv = session(fd, dir);
        }
        close(fd);
        if (rv != TS_OK) {
            fprintf(stderr, "tessera: rtp: %s\n", ts_error_message());
        }
        if (once) {
            status = rv == TS_OK ? CLI_EXIT_OK : CLI_EXIT_FAIL;
            break;
        }
    }
    close(lfd);
    return status;
}
