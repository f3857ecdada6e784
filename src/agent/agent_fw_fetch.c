/*
 * Downloading an update file: libcurl over mutual TLS with the device's current identity (the
 * handshake signature made in the key store through the provider; only the agent's roots are
 * trusted), streamed to a file of the state directory, never held in memory. A partial file is
 * kept and continued with Range: bytes=N- (RFC 9110 section 14.2): 206 appends, 200 (a server
 * that ignores the range) starts over, 416 means the file is complete already. The file is then
 * applied like a local one, so what was downloaded is verified as a whole either way.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "agent/agent_conn.h"
#include "agent/agent_fw.h"
#include "agent/agent_internal.h"
#include "common/error_internal.h"
#include "common/file_internal.h"

enum { FETCH_URL_MAX = 2048, FETCH_ERROR_BODY_MAX = 512 };

/* The largest update file the format allows (fota.h): a server that sends more is refused
 * before it fills the device's storage. */
#define FETCH_FILE_MAX                                                                             \
    ((uint64_t)TS_FW_HEADER_LEN + TS_FW_MANIFEST_MAX +                                             \
     (uint64_t)TS_FW_CHUNKS_MAX * (TS_FW_CHUNK_MAX + TS_FW_TAG_LEN))

typedef struct fetch {
    CURL *curl;
    X509_STORE *roots;
    X509 *cert;
    STACK_OF(X509) * chain;
    EVP_PKEY *key;
    int fd;
    uint64_t size; /* bytes in the file so far */
    int too_big;   /* the reply went past FETCH_FILE_MAX */
    long status;   /* of the reply being read; 0 until its first body byte */
    int write_errno;
    char tls_error[256];
    char error_body[FETCH_ERROR_BODY_MAX + 1];
    size_t error_len;
} fetch;

static CURLcode on_ssl_ctx(CURL *curl, void *ssl_ctx, void *arg)
{
    fetch *f = arg;
    SSL_CTX *ctx = ssl_ctx;
    const char *what = NULL;

    (void)curl;
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1) {
        what = "cannot require TLS 1.2";
    } else {
        SSL_CTX_set1_cert_store(ctx, f->roots);
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
        if (SSL_CTX_use_certificate(ctx, f->cert) != 1) {
            what = "cannot use the identity certificate";
        }
        for (int i = 0; what == NULL && i < sk_X509_num(f->chain); i++) {
            if (SSL_CTX_add1_chain_cert(ctx, sk_X509_value(f->chain, i)) != 1) {
                what = "cannot add the identity certificate's chain";
            }
        }
        if (what == NULL &&
            (SSL_CTX_use_PrivateKey(ctx, f->key) != 1 || SSL_CTX_check_private_key(ctx) != 1)) {
            what = "the identity certificate does not match its key-store key";
        }
    }
    if (what != NULL) {
        unsigned long e = ERR_get_error();
        char reason[160] = "";
        if (e != 0) {
            ERR_error_string_n(e, reason, sizeof reason);
        }
        ERR_clear_error();
        snprintf(f->tls_error, sizeof f->tls_error, "%s%s%s", what, e != 0 ? ": " : "", reason);
        return CURLE_SSL_CERTPROBLEM;
    }
    return CURLE_OK;
}

/* The body: to the file for 200 (from the start) and 206 (appended), a capped message else. */
static size_t on_body(char *data, size_t size, size_t nmemb, void *arg)
{
    fetch *f = arg;
    size_t n = size * nmemb, done = 0;

    if (f->status == 0) {
        curl_easy_getinfo(f->curl, CURLINFO_RESPONSE_CODE, &f->status);
        if (f->status == 200 && (ftruncate(f->fd, 0) != 0 || lseek(f->fd, 0, SEEK_SET) != 0)) {
            f->write_errno = errno;
            return 0;
        }
        if (f->status == 200) {
            f->size = 0;
        }
    }
    if (f->status != 200 && f->status != 206) {
        size_t take =
            n < FETCH_ERROR_BODY_MAX - f->error_len ? n : FETCH_ERROR_BODY_MAX - f->error_len;
        memcpy(f->error_body + f->error_len, data, take);
        f->error_len += take;
        f->error_body[f->error_len] = '\0';
        return n;
    }
    if (n > FETCH_FILE_MAX - f->size) {
        f->too_big = 1;
        return 0;
    }
    f->size += n;
    while (done < n) {
        ssize_t w = write(f->fd, data + done, n - done);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            f->write_errno = w < 0 ? errno : ENOSPC;
            return 0;
        }
        done += (size_t)w;
    }
    return n;
}

/* The identity (certificate, chain, key in the store) and the roots. */
static ts_err fetch_identity(ts_agent *a, const char *state_dir, const char *url,
                             const char *trust_file, fetch *f)
{
    ts_keystore *ks = ts_agent_keystore(a);
    agent_pointer cur;
    agent_conn conn;
    ts_err rv = agent_identity_load(ks, &cur, &f->cert, &f->chain);

    if (rv == TS_ERR_NOT_FOUND) {
        return ts_error_set(TS_ERR_STATE, "the device is not enrolled: downloading an update "
                                          "needs its identity for mutual TLS");
    }
    if (rv == TS_OK) {
        rv = ts_keystore_evp_pkey(ks, cur.key, &f->key);
    }
    if (rv != TS_OK) {
        return rv;
    }
    rv = agent_conn_resolve(a, state_dir, url, trust_file, &conn);
    if (rv != TS_OK) {
        return rv;
    }
    if (conn.trust_file == NULL) {
        rv = ts_error_set(TS_ERR_STATE, "downloading needs the service's trust roots: give "
                                        "--trust FILE, or set trust.roots in the datastore");
    } else {
        rv = agent_trust_load(conn.trust_file, &f->roots);
    }
    agent_conn_clear(&conn);
    return rv;
}

/* The URL a partial download is for, beside it: another URL starts over. */
static ts_err same_download(const char *path, const char *url, int *same)
{
    char upath[PATH_MAX];
    uint8_t *have = NULL;
    size_t len = 0;
    ts_err rv;

    *same = 0;
    if ((size_t)snprintf(upath, sizeof upath, "%s.url", path) >= sizeof upath) {
        return ts_error_set(TS_ERR_INVALID, "the state directory path is too long");
    }
    rv = ts_file_read(upath, FETCH_URL_MAX, &have, &len);
    if (rv == TS_OK && len == strlen(url) && memcmp(have, url, len) == 0) {
        *same = 1;
    }
    OPENSSL_free(have);
    ts_error_clear();
    if (*same) {
        return TS_OK;
    }
    return ts_file_write_atomic(upath, (const uint8_t *)url, strlen(url), 0600);
}

#define SET(opt, val)                                                                              \
    do {                                                                                           \
        if (code == CURLE_OK) {                                                                    \
            code = curl_easy_setopt(f.curl, opt, val);                                             \
        }                                                                                          \
    } while (0)

ts_err agent_fw_fetch(ts_agent *a, const char *state_dir, const char *url, const char *trust_file,
                      long timeout, const char *path)
{
    fetch f;
    char errbuf[CURL_ERROR_SIZE] = "";
    CURLcode code = CURLE_OK;
    off_t have = 0;
    int same = 0;
    ts_err rv;

    memset(&f, 0, sizeof f);
    f.fd = -1;
    if (strncmp(url, "https://", 8) != 0 || strlen(url) > FETCH_URL_MAX) {
        return ts_error_set(TS_ERR_INVALID, "an update URL is https:// and at most %d characters",
                            FETCH_URL_MAX);
    }
    rv = fetch_identity(a, state_dir, url, trust_file, &f);
    if (rv == TS_OK) {
        rv = same_download(path, url, &same);
    }
    if (rv == TS_OK) {
        f.fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW | (same ? 0 : O_TRUNC), 0600);
        have = f.fd >= 0 ? lseek(f.fd, 0, SEEK_END) : -1;
        if (f.fd < 0 || have < 0) {
            rv = ts_error_set(TS_ERR_IO, "cannot open %s: %s", path, strerror(errno));
        }
    }
    if (rv == TS_OK && (f.curl = curl_easy_init()) == NULL) {
        rv = ts_error_set(TS_ERR_NOMEM, "cannot set up the HTTP client");
    }
    if (rv != TS_OK) {
        goto done;
    }
    SET(CURLOPT_URL, url);
    SET(CURLOPT_PROTOCOLS_STR, "https");
    SET(CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    SET(CURLOPT_FOLLOWLOCATION, 0L);
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_CONNECTTIMEOUT, timeout > 0 ? timeout : (long)TS_AGENT_TIMEOUT_DEFAULT);
    /* A large image may take long: give up only when nothing arrives for the timeout. */
    SET(CURLOPT_LOW_SPEED_LIMIT, 1L);
    SET(CURLOPT_LOW_SPEED_TIME, timeout > 0 ? timeout : (long)TS_AGENT_TIMEOUT_DEFAULT);
    SET(CURLOPT_SSL_VERIFYPEER, 1L);
    SET(CURLOPT_SSL_VERIFYHOST, 2L);
    SET(CURLOPT_CAINFO, NULL);
    SET(CURLOPT_CAPATH, NULL);
    SET(CURLOPT_SSL_CTX_FUNCTION, on_ssl_ctx);
    SET(CURLOPT_SSL_CTX_DATA, &f);
    SET(CURLOPT_WRITEFUNCTION, on_body);
    SET(CURLOPT_WRITEDATA, &f);
    SET(CURLOPT_ERRORBUFFER, errbuf);
    f.size = have > 0 ? (uint64_t)have : 0;
    if (have > 0) {
        SET(CURLOPT_RESUME_FROM_LARGE, (curl_off_t)have);
    }
    if (code == CURLE_OK) {
        code = curl_easy_perform(f.curl);
    }
    if (code == CURLE_RANGE_ERROR || (code == CURLE_OK && f.status == 0)) {
        /* libcurl refuses a 200 to a resumed request; a reply without a body leaves status 0. */
        curl_easy_getinfo(f.curl, CURLINFO_RESPONSE_CODE, &f.status);
    }
    if (code == CURLE_RANGE_ERROR && f.status == 200) {
        f.status = 0;
        errbuf[0] = '\0';
        code = ftruncate(f.fd, 0) == 0 && lseek(f.fd, 0, SEEK_SET) == 0
                   ? curl_easy_setopt(f.curl, CURLOPT_RESUME_FROM_LARGE, (curl_off_t)0)
                   : CURLE_WRITE_ERROR;
        if (code == CURLE_OK) {
            code = curl_easy_perform(f.curl);
        }
    }
    if (f.too_big) {
        rv = ts_error_set(TS_ERR_LIMIT,
                          "the download of %s is larger than any update file can be (%llu bytes)",
                          url, (unsigned long long)FETCH_FILE_MAX);
    } else if (f.tls_error[0] != '\0') {
        rv = ts_error_set(TS_ERR_CRYPTO, "TLS set-up for %s failed: %s", url, f.tls_error);
    } else if (f.write_errno != 0) {
        rv = ts_error_set(f.write_errno == ENOSPC ? TS_ERR_FULL : TS_ERR_IO, "cannot write %s: %s",
                          path, strerror(f.write_errno));
    } else if (code == CURLE_PEER_FAILED_VERIFICATION) {
        rv = ts_error_set(TS_ERR_AUTH, "the service at %s is not trusted (%s)", url,
                          errbuf[0] != '\0' ? errbuf : curl_easy_strerror(code));
    } else if (code != CURLE_OK) {
        rv = ts_error_set(TS_ERR_IO, "downloading %s stopped: %s (%lld bytes kept to resume)", url,
                          errbuf[0] != '\0' ? errbuf : curl_easy_strerror(code),
                          (long long)lseek(f.fd, 0, SEEK_END));
    } else if (f.status == 416 && have > 0) {
        rv = TS_OK; /* asked for bytes past the end: the file is complete */
    } else if (f.status != 200 && f.status != 206) {
        rv = ts_error_set(TS_ERR_IO, "downloading %s: HTTP %ld%s%.200s", url, f.status,
                          f.error_len > 0 ? ": " : "", f.error_body);
    }
    if (rv == TS_OK && fsync(f.fd) != 0) {
        rv = ts_error_set(TS_ERR_IO, "cannot sync %s: %s", path, strerror(errno));
    }
done:
    if (f.curl != NULL) {
        curl_easy_cleanup(f.curl);
    }
    if (f.fd >= 0) {
        close(f.fd);
    }
    X509_STORE_free(f.roots);
    X509_free(f.cert);
    sk_X509_pop_free(f.chain, X509_free);
    EVP_PKEY_free(f.key);
    return rv;
}
#undef SET
