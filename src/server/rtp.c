/*
 * Offline provisioning, the service's key material (docs/rtp.md): each tenant has a provisioning
 * key in the instance key store that signs every import and every bundle; devices are known by
 * their key store's UID, the public key the imports are sealed to and the public key that signs
 * their receipts.
 */
#include <stdio.h>
#include <string.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "common/error_internal.h"
#include "common/file_internal.h"
#include "server/rtp.h"
#include "tessera/agent.h"

ts_err ts_rtp_uid_check(const char *uid)
{
    size_t n = uid != NULL ? strlen(uid) : 0;
    if (n == 0 || n > TS_RTP_UID_MAX || uid[0] == '.') {
        return ts_error_set(TS_ERR_INVALID,
                            "device UID: 1 to %d characters, not starting "
                            "with '.'",
                            TS_RTP_UID_MAX);
    }
    for (size_t i = 0; i < n; i++) {
        char c = uid[i];
        int ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                 c == '.' || c == '_' || c == ':' || c == '-';
        if (!ok) {
            return ts_error_set(TS_ERR_INVALID, "device UID '%s': only [A-Za-z0-9._:-]", uid);
        }
    }
    return TS_OK;
}

ts_err ts_rtp_sender(ts_ca *ca, const char *tenant, EVP_PKEY **signer, EVP_PKEY **pub)
{
    ts_tenant_row row;
    ts_keystore *ks = NULL;
    char label[TS_LABEL_MAX + 1];
    ts_err rv;

    rv = ts_ca_tenant(ca, tenant, &row);
    if (rv != TS_OK) {
        return rv;
    }
    if ((size_t)snprintf(label, sizeof label, "%s%s", TS_RTP_KEY_PREFIX, tenant) >= sizeof label) {
        return ts_error_set(TS_ERR_INVALID, "tenant name too long for a key label");
    }
    rv = ts_ca_keystore(ca, &ks);
    if (rv != TS_OK) {
        return rv;
    }
    rv = ts_keystore_public_key(ks, label, pub);
    if (rv == TS_ERR_NOT_FOUND) {
        rv = ts_keystore_generate(ks, label, TS_CURVE_P256);
        if (rv != TS_OK) {
            return ts_error_prefix(rv, "making the provisioning key of tenant %s", tenant);
        }
        rv = ts_keystore_public_key(ks, label, pub);
    }
    if (rv != TS_OK) {
        return ts_error_prefix(rv, "the provisioning key of tenant %s", tenant);
    }
    rv = ts_keystore_evp_pkey(ks, label, signer);
    if (rv != TS_OK) {
        EVP_PKEY_free(*pub);
        *pub = NULL;
    }
    return rv;
}

/* The value of object= in a key-store URI's path, if any. */
static int uri_object(const char *uri, char out[TS_LABEL_MAX + 1])
{
    const char *p = strstr(uri, "object=");
    const char *q = strchr(uri, '?');
    size_t n;

    if (p == NULL || (q != NULL && p > q) || (p != uri && p[-1] != ';' && p[-1] != ':')) {
        return 0;
    }
    p += strlen("object=");
    n = strcspn(p, ";?");
    if (n == 0 || n > TS_LABEL_MAX) {
        return 0;
    }
    memcpy(out, p, n);
    out[n] = '\0';
    return 1;
}

enum { RTP_POINTER_MAX = 1024 };

/*
 * The label of the device's current identity key: the "key" the agent's identity pointer
 * (TS_AGENT_CURRENT_LABEL, docs/agent.md) names once the device has enrolled, which a rekey
 * moves to identity.key.N; "identity" before any enrollment. A pointer that is there but does not
 * parse is an error: sealing to a guess could hand the keys to a key the device no longer uses.
 */
static ts_err current_key_label(ts_keystore *ks, char out[TS_LABEL_MAX + 1])
{
    uint8_t *data = NULL;
    size_t len = 0;
    ts_err rv = ts_keystore_object_get(ks, TS_AGENT_CURRENT_LABEL, &data, &len);
    if (rv == TS_ERR_NOT_FOUND) {
        ts_error_clear();
        snprintf(out, TS_LABEL_MAX + 1, "%s", TS_AGENT_KEY_LABEL);
        return TS_OK;
    }
    if (rv != TS_OK) {
        return ts_error_prefix(rv, "its identity pointer '%s'", TS_AGENT_CURRENT_LABEL);
    }
    json_t *obj = len <= RTP_POINTER_MAX
                      ? json_loadb((const char *)data, len, JSON_REJECT_DUPLICATES, NULL)
                      : NULL;
    const char *key = json_string_value(json_object_get(obj, "key"));
    if (key == NULL || strlen(key) > TS_LABEL_MAX || ts_label_check(key) != TS_OK) {
        rv = ts_error_set(TS_ERR_CORRUPT, "its identity pointer '%s' names no key label",
                          TS_AGENT_CURRENT_LABEL);
    } else {
        snprintf(out, TS_LABEL_MAX + 1, "%s", key);
    }
    json_decref(obj);
    OPENSSL_clear_free(data, len);
    return rv;
}

void ts_rtp_device_clear(ts_rtp_device *d)
{
    if (d != NULL) {
        EVP_PKEY_free(d->pub);
        EVP_PKEY_free(d->receipt_pub);
        memset(d, 0, sizeof *d);
    }
}

ts_err ts_rtp_device_load(const char *uid, const char *keystore_uri, const char *key_label,
                          ts_rtp_device *out)
{
    ts_keystore *ks = NULL;
    ts_err rv;

    memset(out, 0, sizeof *out);
    rv = ts_rtp_uid_check(uid);
    if (rv != TS_OK) {
        return rv;
    }
    snprintf(out->uid, sizeof out->uid, "%s", uid);
    char receipt_label[TS_LABEL_MAX + 1] = "";
    rv = ts_keystore_open(keystore_uri, &ks);
    if (rv == TS_OK) {
        rv = ts_keystore_uid(ks, out->ksuid);
    }
    /* The agent signs its receipts with its current identity key whatever key the imports are
     * sealed to (a device made by tessera batch seals to "device"); imports are sealed to that
     * key too unless the URI or the caller names another. */
    if (rv == TS_OK) {
        rv = current_key_label(ks, receipt_label);
    }
    if (rv == TS_OK) {
        if (key_label != NULL) {
            snprintf(out->key_label, sizeof out->key_label, "%s", key_label);
        } else if (!uri_object(keystore_uri, out->key_label)) {
            snprintf(out->key_label, sizeof out->key_label, "%s", receipt_label);
        }
        rv = ts_label_check(out->key_label);
    }
    if (rv == TS_OK) {
        rv = ts_keystore_public_key(ks, out->key_label, &out->pub);
    }
    if (rv == TS_OK) {
        rv = ts_keystore_public_key(ks, receipt_label, &out->receipt_pub);
        if (rv == TS_ERR_NOT_FOUND) {
            rv = ts_error_set(TS_ERR_NOT_FOUND,
                              "its key store has no '%s' key, which signs the receipts: run "
                              "tessera-agent init on it first",
                              receipt_label);
        }
    }
    ts_keystore_free(ks);
    if (rv != TS_OK) {
        ts_rtp_device_clear(out);
        return ts_error_prefix(rv, "device %s", uid);
    }
    return TS_OK;
}

ts_err ts_rtp_key_load(const char *path, EVP_PKEY **out)
{
    uint8_t *pem = NULL;
    size_t len = 0;
    EVP_PKEY *key = NULL;
    BIO *bio;
    ts_err rv;

    rv = ts_file_read(path, TS_RTP_KEY_FILE_MAX, &pem, &len);
    if (rv != TS_OK) {
        return rv;
    }
    bio = BIO_new_mem_buf(pem, (int)len);
    if (bio != NULL) {
        key = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
    }
    BIO_free(bio);
    OPENSSL_clear_free(pem, len);
    if (key == NULL || EVP_PKEY_get_base_id(key) != EVP_PKEY_EC) {
        EVP_PKEY_free(key);
        return ts_error_set_openssl(TS_ERR_INVALID, "%s: not a PEM EC private key", path);
    }
    *out = key;
    return TS_OK;
}

ts_err ts_rtp_sign(EVP_PKEY *signer, const uint8_t *data, size_t len, uint8_t **sig,
                   size_t *sig_len)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    uint8_t *buf = NULL;
    size_t n = 0;
    ts_err rv = TS_ERR_CRYPTO;

    if (ctx == NULL || EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, signer) != 1 ||
        EVP_DigestSign(ctx, NULL, &n, data, len) != 1) {
        rv = ts_error_set_openssl(TS_ERR_CRYPTO, "cannot sign with the provisioning key");
        goto done;
    }
    buf = OPENSSL_malloc(n);
    if (buf == NULL || EVP_DigestSign(ctx, buf, &n, data, len) != 1) {
        rv = ts_error_set_openssl(TS_ERR_CRYPTO, "cannot sign with the provisioning key");
        goto done;
    }
    *sig = buf;
    *sig_len = n;
    buf = NULL;
    rv = TS_OK;
done:
    OPENSSL_free(buf);
    EVP_MD_CTX_free(ctx);
    return rv;
}

ts_err ts_rtp_verify(const EVP_PKEY *pub, const uint8_t *data, size_t len, const uint8_t *sig,
                     size_t sig_len)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    ts_err rv = TS_ERR_AUTH;

    if (ctx == NULL || EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, (EVP_PKEY *)pub) != 1) {
        rv = ts_error_set_openssl(TS_ERR_CRYPTO, "cannot verify a signature");
    } else if (EVP_DigestVerify(ctx, sig, sig_len, data, len) != 1) {
        ts_error_set_openssl(TS_ERR_AUTH, "the signature does not verify");
    } else {
        rv = TS_OK;
    }
    EVP_MD_CTX_free(ctx);
    return rv;
}
