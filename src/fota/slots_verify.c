/*
 * Checking what is in a slot: the pinned roots from the key store, then the slot's plaintext
 * image streamed through the verifier against the manifest kept beside the boot state.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/cms.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "common/error_internal.h"
#include "common/file_internal.h"
#include "fota/slots.h"

enum { FW_ROOTS_MAX_CERTS = 16 };

ts_err fw_roots_parse(const uint8_t *pem, size_t len, X509_STORE **out)
{
    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    X509_STORE *store = X509_STORE_new();
    X509 *cert = NULL;
    int count = 0;
    ts_err rv = TS_OK;

    *out = NULL;
    if (bio == NULL || store == NULL || len > TS_OBJECT_MAX) {
        rv = ts_error_set(TS_ERR_NOMEM, "cannot read the firmware roots");
        goto done;
    }
    while ((cert = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
        if (++count > FW_ROOTS_MAX_CERTS) {
            rv = ts_error_set(TS_ERR_INVALID, "more than %d firmware roots", FW_ROOTS_MAX_CERTS);
        } else if (X509_check_ca(cert) == 0) {
            rv = ts_error_set(TS_ERR_INVALID, "a firmware root is not a CA certificate");
        } else if (X509_STORE_add_cert(store, cert) != 1) {
            rv = ts_error_set_openssl(TS_ERR_CRYPTO, "cannot add a firmware root");
        }
        X509_free(cert);
        if (rv != TS_OK) {
            goto done;
        }
    }
    ERR_clear_error();
    if (count == 0) {
        rv = ts_error_set(TS_ERR_INVALID, "the firmware roots hold no PEM certificate");
    }
done:
    BIO_free(bio);
    if (rv != TS_OK) {
        X509_STORE_free(store);
        return rv;
    }
    *out = store;
    return TS_OK;
}

ts_err fw_roots_load(ts_keystore *ks, X509_STORE **out)
{
    uint8_t *pem = NULL;
    size_t len = 0;
    ts_err rv = ts_keystore_object_get(ks, FW_ROOTS_LABEL, &pem, &len);

    *out = NULL;
    if (rv == TS_ERR_NOT_FOUND) {
        return ts_error_set(TS_ERR_STATE,
                            "no firmware roots are pinned in the key store (data object %s; "
                            "tessera-agent fw setup --roots FILE)",
                            FW_ROOTS_LABEL);
    }
    if (rv != TS_OK) {
        return ts_error_prefix(rv, "reading the firmware roots");
    }
    rv = fw_roots_parse(pem, len, out);
    OPENSSL_clear_free(pem, len);
    return rv;
}

/* The payload length a manifest announces, read without trusting it: the verifier opened with
 * that length checks it with everything else. */
static ts_err manifest_size(const uint8_t *der, size_t len, uint64_t *size)
{
    const unsigned char *p = der;
    CMS_ContentInfo *cms = d2i_CMS_ContentInfo(NULL, &p, (long)len);
    ASN1_OCTET_STRING **content = cms != NULL ? CMS_get0_content(cms) : NULL;
    ts_fw_info info;
    ts_err rv;

    if (content == NULL || *content == NULL) {
        CMS_ContentInfo_free(cms);
        return ts_error_set_openssl(TS_ERR_CORRUPT, "the slot's manifest does not parse");
    }
    rv = ts_fw_manifest_parse((const char *)ASN1_STRING_get0_data(*content),
                              (size_t)ASN1_STRING_length(*content), &info, NULL);
    CMS_ContentInfo_free(cms);
    if (rv != TS_OK) {
        return ts_error_prefix(rv, "the slot's manifest");
    }
    *size = info.size;
    return TS_OK;
}

/* Streams size bytes of the slot at path through v. */
static ts_err feed_slot(ts_fw_verifier *v, const char *path, uint64_t size)
{
    uint8_t buf[FW_IO_CHUNK];
    struct stat st;
    uint64_t done = 0;
    ts_err rv = TS_OK;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0) {
        return ts_error_set(errno == ENOENT ? TS_ERR_NOT_FOUND : TS_ERR_IO,
                            "cannot open slot %s: %s", path, strerror(errno));
    }
    if (fstat(fd, &st) != 0 || (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))) {
        close(fd);
        return ts_error_set(TS_ERR_INVALID, "slot %s is not a regular file or block device", path);
    }
    if (S_ISREG(st.st_mode) && (uint64_t)st.st_size != size) {
        close(fd);
        return ts_error_set(TS_ERR_AUTH, "slot %s holds %lld bytes, its manifest says %" PRIu64,
                            path, (long long)st.st_size, size);
    }
    while (rv == TS_OK && done < size) {
        size_t want = size - done < sizeof buf ? (size_t)(size - done) : sizeof buf;
        ssize_t n = read(fd, buf, want);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            rv = ts_error_set(TS_ERR_AUTH, "slot %s ends after %" PRIu64 " of %" PRIu64 " bytes",
                              path, done, size);
            break;
        }
        rv = ts_fw_verifier_feed(v, buf, (size_t)n, NULL, NULL);
        done += (uint64_t)n;
    }
    close(fd);
    OPENSSL_cleanse(buf, sizeof buf);
    return rv == TS_OK ? ts_fw_verifier_finish(v) : rv;
}

ts_err fw_slot_verify(const char *dir, const fw_conf *c, int slot, X509_STORE *roots,
                      uint64_t floor, ts_fw_info *info)
{
    char mpath[PATH_MAX];
    uint8_t *der = NULL;
    size_t len = 0;
    uint64_t size = 0;
    ts_fw_verifier *v = NULL;
    const ts_fw_info *in;
    ts_err rv = fw_manifest_path(dir, slot, mpath);

    memset(info, 0, sizeof *info);
    if (rv == TS_OK) {
        rv = ts_file_read(mpath, TS_FW_MANIFEST_MAX, &der, &len);
        if (rv == TS_ERR_NOT_FOUND) {
            rv = ts_error_set(TS_ERR_NOT_FOUND, "slot %c holds no image (no manifest)",
                              fw_slot_name(slot));
        }
    }
    if (rv == TS_OK) {
        rv = manifest_size(der, len, &size);
    }
    if (rv == TS_OK) {
        rv = ts_fw_verifier_open_ex(der, len, size, roots, time(NULL), TS_FW_VERIFY_PLAIN, &v);
    }
    if (rv == TS_OK) {
        in = ts_fw_verifier_info(v);
        if (strcmp(in->hw, c->hw) != 0) {
            rv = ts_error_set(TS_ERR_FOREIGN, "the image is for hardware '%s', this device is '%s'",
                              in->hw, c->hw);
        } else if (in->version < floor) {
            rv = ts_error_set(TS_ERR_ROLLBACK,
                              "the image's version %" PRIu64
                              " is below the anti-rollback counter %" PRIu64,
                              in->version, floor);
        } else {
            *info = *in;
            rv = feed_slot(v, c->slot[slot], size);
        }
    }
    ts_fw_verifier_free(v);
    OPENSSL_free(der);
    if (rv != TS_OK) {
        memset(info, 0, sizeof *info);
        return ts_error_prefix(rv, "slot %c", fw_slot_name(slot));
    }
    return TS_OK;
}

void fw_sweep_tmp(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[PATH_MAX];

    if (d == NULL) {
        return;
    }
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, "fw.", 3) == 0 && strstr(e->d_name, ".tmp-") != NULL &&
            fw_path(dir, e->d_name, path) == TS_OK) {
            (void)unlink(path);
        }
    }
    closedir(d);
}
