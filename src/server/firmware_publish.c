/*
 * Publishing an update file as a release (ts_ca_fw_publish): one pass over the file verifies it
 * with the streaming verifier against the instance's root, hashes it and copies it to a temporary
 * file under DIR/firmware; only when everything checked out is the copy renamed to
 * <sha256>.tsfw and the release recorded with its audit entry. Memory is the manifest plus one
 * chunk, whatever the size of the file.
 *
 * An encrypted payload cannot be decrypted here (the key is in the devices' key stores): its
 * manifest, signature and signer chain are verified and its length checked against the signed
 * wire size; each chunk's GCM tag and digest are checked by the device.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "common/error_internal.h"
#include "common/file_internal.h"
#include "server/server_internal.h"
#include "tessera/firmware.h"
#include "tessera/store_access.h"

enum { PUB_BLOCK = 64 * 1024 };

typedef struct pub_ctx {
    FILE *in;
    int out; /* the temporary copy */
    char tmp[TS_CA_PATH_MAX];
    EVP_MD_CTX *md;
    ts_fw_verifier *v;
    uint64_t size;
} pub_ctx;

static int release_none(void *ctx, const uint8_t *data, size_t len)
{
    (void)ctx;
    (void)data;
    (void)len;
    return 0;
}

static ts_err copy_out(pub_ctx *c, const uint8_t *p, size_t n)
{
    if (EVP_DigestUpdate(c->md, p, n) != 1) {
        return ts_error_set_openssl(TS_ERR_CRYPTO, "hashing the update file");
    }
    c->size += n;
    while (n > 0) {
        ssize_t w = write(c->out, p, n);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            int e = errno;
            return ts_error_set(e == ENOSPC || e == EDQUOT ? TS_ERR_FULL : TS_ERR_IO,
                                "writing %s: %s", c->tmp, strerror(e));
        }
        p += w;
        n -= (size_t)w;
    }
    return TS_OK;
}

static ts_err read_exact(pub_ctx *c, uint8_t *buf, size_t n, const char *what)
{
    if (fread(buf, 1, n, c->in) != n) {
        return ts_error_set(TS_ERR_INVALID, "the file is truncated in its %s", what);
    }
    return copy_out(c, buf, n);
}

/* The signer must belong to this tenant: issued by its active issuing CA. */
static ts_err signer_of_tenant(ts_ca *ca, const ts_tenant_row *t, X509 *signer)
{
    srv_issuer iss;
    memset(&iss, 0, sizeof iss);
    ts_err rv = srv_issuing_load(ca, t->id, 0, &iss);
    if (rv == TS_OK && (signer == NULL || X509_check_issued(iss.cert, signer) != X509_V_OK)) {
        rv = ts_error_set(TS_ERR_POLICY,
                          "the signer's certificate was not issued by tenant '%s''s "
                          "issuing CA",
                          t->name);
    }
    srv_issuer_clear(&iss);
    return rv;
}

/* Verifies and copies; fills the release's facts from the manifest. */
static ts_err verify_copy(ts_ca *ca, const ts_tenant_row *t, pub_ctx *c, ts_fw_release_row *row)
{
    uint8_t head[TS_FW_HEADER_LEN];
    uint8_t *der = NULL, *block = NULL;
    ts_fw_header h;
    srv_issuer root;
    X509_STORE *roots = X509_STORE_new();
    memset(&root, 0, sizeof root);
    ts_err rv = roots != NULL ? TS_OK : ts_error_set(TS_ERR_NOMEM, "out of memory");
    if (rv == TS_OK) {
        rv = srv_root_load(ca, 0, &root);
    }
    if (rv == TS_OK && X509_STORE_add_cert(roots, root.cert) != 1) {
        rv = ts_error_set_openssl(TS_ERR_CRYPTO, "cannot trust the instance's root");
    }
    if (rv == TS_OK) {
        rv = read_exact(c, head, sizeof head, "header");
    }
    if (rv == TS_OK) {
        rv = ts_fw_header_parse(head, sizeof head, &h);
    }
    if (rv == TS_OK) {
        der = OPENSSL_malloc(h.manifest_len);
        block = OPENSSL_malloc(PUB_BLOCK);
        rv = der != NULL && block != NULL ? TS_OK : ts_error_set(TS_ERR_NOMEM, "out of memory");
    }
    if (rv == TS_OK) {
        rv = read_exact(c, der, h.manifest_len, "manifest");
    }
    if (rv == TS_OK) {
        rv = ts_fw_verifier_open(der, h.manifest_len, h.payload_len, roots, time(NULL), &c->v);
    }
    const ts_fw_info *info = rv == TS_OK ? ts_fw_verifier_info(c->v) : NULL;
    if (rv == TS_OK) {
        rv = signer_of_tenant(ca, t, ts_fw_verifier_signer(c->v));
    }
    if (rv == TS_OK && info->encrypted && info->wire_size != h.payload_len) {
        rv = ts_error_set(TS_ERR_INVALID, "the payload is %llu bytes, the manifest says %llu",
                          (unsigned long long)h.payload_len, (unsigned long long)info->wire_size);
    }
    for (uint64_t left = h.payload_len; rv == TS_OK && left > 0;) {
        size_t n = left < PUB_BLOCK ? (size_t)left : PUB_BLOCK;
        rv = read_exact(c, block, n, "payload");
        if (rv == TS_OK && !info->encrypted) {
            rv = ts_fw_verifier_feed(c->v, block, n, release_none, NULL);
        }
        left -= n;
    }
    if (rv == TS_OK && fgetc(c->in) != EOF) {
        rv = ts_error_set(TS_ERR_INVALID, "data after the payload");
    }
    if (rv == TS_OK && ferror(c->in)) {
        rv = ts_error_set(TS_ERR_IO, "reading the update file: %s", strerror(errno));
    }
    if (rv == TS_OK && !info->encrypted) {
        rv = ts_fw_verifier_finish(c->v);
    }
    if (rv == TS_OK) {
        row->version = info->version;
        row->seq = info->seq;
        row->min_version = info->has_min_version ? info->min_version : 0;
        snprintf(row->hw, sizeof row->hw, "%s", info->hw);
        row->encrypted = info->encrypted != 0;
        X509_NAME_oneline(X509_get_subject_name(ts_fw_verifier_signer(c->v)), row->signer,
                          sizeof row->signer);
    }
    OPENSSL_free(der);
    OPENSSL_free(block);
    X509_STORE_free(roots);
    srv_issuer_clear(&root);
    return rv;
}

/* The target exists in the tenant: a registered device or a group. */
static ts_err target_check(ts_ca *ca, const ts_tenant_row *t, ts_fw_target_kind kind,
                           const char *target)
{
    ts_device_row dev;
    ts_group_row g;
    switch (kind) {
    case TS_FW_TARGET_ALL:
        return target == NULL || target[0] == '\0'
                   ? TS_OK
                   : ts_error_set(TS_ERR_INVALID, "a release for all devices names no target");
    case TS_FW_TARGET_DEVICE:
        if (ts_device_uid_check(target) != TS_OK) {
            return TS_ERR_INVALID;
        }
        return ts_store_device_get(ca->store, t->id, target, &dev) == TS_OK
                   ? TS_OK
                   : ts_error_set(TS_ERR_NOT_FOUND, "tenant '%s' has no device '%s'", t->name,
                                  target);
    case TS_FW_TARGET_GROUP:
        if (ts_group_name_check(target) != TS_OK) {
            return TS_ERR_INVALID;
        }
        return ts_store_group_get(ca->store, t->id, target, &g) == TS_OK
                   ? TS_OK
                   : ts_error_set(TS_ERR_NOT_FOUND, "tenant '%s' has no group '%s'", t->name,
                                  target);
    }
    return ts_error_set(TS_ERR_INVALID, "a release targets all devices, a device or a group");
}

static ts_err open_tmp(ts_ca *ca, pub_ctx *c, char *dir, size_t dir_size)
{
    uint8_t rnd[8];
    char name[64];
    ts_err rv = srv_path(dir, dir_size, ca->dir, TS_FW_DIR);
    if (rv == TS_OK && mkdir(dir, 0700) != 0 && errno != EEXIST) {
        rv = ts_error_set(TS_ERR_IO, "cannot create %s: %s", dir, strerror(errno));
    }
    if (rv == TS_OK && RAND_bytes(rnd, sizeof rnd) != 1) {
        rv = ts_error_set_openssl(TS_ERR_CRYPTO, "no random bytes");
    }
    if (rv == TS_OK) {
        snprintf(name, sizeof name, ".upload-%02x%02x%02x%02x%02x%02x%02x%02x.tmp", rnd[0], rnd[1],
                 rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]);
        rv = srv_path(c->tmp, sizeof c->tmp, dir, name);
    }
    if (rv == TS_OK) {
        c->out = open(c->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (c->out < 0) {
            c->tmp[0] = '\0';
            rv = ts_error_set(TS_ERR_IO, "cannot create a file in %s: %s", dir, strerror(errno));
        }
    }
    return rv;
}

/* Renames the verified copy to its content name; a file of that name holds the same bytes. */
static ts_err file_commit(pub_ctx *c, const char *dir, const char *sha256, char *final,
                          size_t final_size)
{
    char name[80];
    snprintf(name, sizeof name, "%s.tsfw", sha256);
    ts_err rv = srv_path(final, final_size, dir, name);
    if (rv == TS_OK && fsync(c->out) != 0) {
        rv = ts_error_set(TS_ERR_IO, "fsync %s: %s", c->tmp, strerror(errno));
    }
    if (rv == TS_OK && rename(c->tmp, final) != 0) {
        rv = ts_error_set(TS_ERR_IO, "rename to %s: %s", final, strerror(errno));
    }
    if (rv == TS_OK) {
        c->tmp[0] = '\0';
        rv = ts_dir_sync(dir);
    }
    return rv;
}

static void pub_clear(pub_ctx *c)
{
    if (c->out >= 0) {
        close(c->out);
    }
    if (c->tmp[0] != '\0') {
        unlink(c->tmp);
    }
    if (c->in != NULL) {
        fclose(c->in);
    }
    EVP_MD_CTX_free(c->md);
    ts_fw_verifier_free(c->v);
}

ts_err ts_ca_fw_publish(ts_ca *ca, const char *tenant, const char *path, ts_fw_target_kind kind,
                        const char *target, ts_fw_release_row *out)
{
    ts_tenant_row t;
    ts_fw_release_row row;
    pub_ctx c;
    char dir[TS_CA_PATH_MAX], final[TS_CA_PATH_MAX];
    uint8_t digest[32], rnd[16];
    int existed = 0;

    memset(&c, 0, sizeof c);
    memset(&row, 0, sizeof row);
    c.out = -1;
    if (ca == NULL || path == NULL) {
        return ts_error_set(TS_ERR_INVALID, "ts_ca_fw_publish: missing argument");
    }
    ts_err rv = ts_ca_tenant(ca, tenant, &t);
    if (rv == TS_OK) {
        rv = target_check(ca, &t, kind, target);
    }
    if (rv == TS_OK) {
        c.in = fopen(path, "rb");
        if (c.in == NULL) {
            rv = ts_error_set(errno == ENOENT ? TS_ERR_NOT_FOUND : TS_ERR_IO, "cannot open %s: %s",
                              path, strerror(errno));
        }
    }
    c.md = EVP_MD_CTX_new();
    if (rv == TS_OK && (c.md == NULL || EVP_DigestInit_ex(c.md, EVP_sha256(), NULL) != 1)) {
        rv = ts_error_set_openssl(TS_ERR_CRYPTO, "cannot start SHA-256");
    }
    if (rv == TS_OK) {
        rv = open_tmp(ca, &c, dir, sizeof dir);
    }
    if (rv == TS_OK) {
        rv = verify_copy(ca, &t, &c, &row);
        if (rv != TS_OK) {
            /* What the file failed is the caller's to fix; the rest is this side's. */
            int ours =
                rv == TS_ERR_NOMEM || rv == TS_ERR_IO || rv == TS_ERR_FULL || rv == TS_ERR_STORE;
            rv =
                ts_error_prefix(ours ? rv : (rv == TS_ERR_POLICY ? rv : TS_ERR_INVALID), "refused");
        }
    }
    if (rv == TS_OK && EVP_DigestFinal_ex(c.md, digest, NULL) != 1) {
        rv = ts_error_set_openssl(TS_ERR_CRYPTO, "cannot finish SHA-256");
    }
    if (rv == TS_OK && RAND_bytes(rnd, sizeof rnd) != 1) {
        rv = ts_error_set_openssl(TS_ERR_CRYPTO, "no random release id");
    }
    if (rv == TS_OK) {
        for (size_t i = 0; i < sizeof digest; i++) {
            snprintf(row.sha256 + 2 * i, 3, "%02x", digest[i]);
        }
        for (size_t i = 0; i < sizeof rnd; i++) {
            snprintf(row.id + 2 * i, 3, "%02x", rnd[i]);
        }
        struct stat st;
        char name[80];
        snprintf(name, sizeof name, "%s.tsfw", row.sha256);
        existed = srv_path(final, sizeof final, dir, name) == TS_OK && stat(final, &st) == 0;
        rv = file_commit(&c, dir, row.sha256, final, sizeof final);
    }
    if (rv == TS_OK) {
        row.tenant_id = t.id;
        row.size = c.size;
        row.target_kind = kind;
        snprintf(row.target, sizeof row.target, "%s", kind == TS_FW_TARGET_ALL ? "" : target);
        row.state = TS_FW_RELEASE_ACTIVE;
        snprintf(row.created_by, sizeof row.created_by, "%s", ca->actor);
        row.created = time(NULL);
        rv = ts_store_begin(ca->store);
        if (rv == TS_OK) {
            rv = ts_store_fw_release_insert(ca->store, &row);
            if (rv == TS_OK) {
                rv = srv_audit(ca, "firmware.publish", row.id,
                               srv_json("{s:s, s:s, s:I, s:I, s:s, s:s, s:s, s:s, s:I, s:b}",
                                        "tenant", t.name, "release", row.id, "version",
                                        (json_int_t)row.version, "seq", (json_int_t)row.seq, "hw",
                                        row.hw, "sha256", row.sha256, "target",
                                        ts_fw_target_name(kind), "to", row.target, "size",
                                        (json_int_t)row.size, "encrypted", row.encrypted));
            }
            rv = srv_tx_end(ca, rv);
        }
        if (rv != TS_OK && !existed) {
            unlink(final); /* nothing else refers to it */
        }
    }
    pub_clear(&c);
    if (rv == TS_OK && out != NULL) {
        *out = row;
    }
    return rv;
}
