/*
 * The bundle parser and checks for offline provisioning (docs/rtp.md). Bytes from the network
 * are parsed strictly and believed only after the provisioning key's signature verifies.
 */
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "agent/agent_rtp_internal.h"
#include "common/error_internal.h"

static int uid_valid(const char *uid)
{
    size_t n = strlen(uid);
    if (n == 0 || n > TS_AGENT_UID_MAX) {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        char c = uid[i];
        int ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                 c == '.' || c == '_' || c == ':' || c == '-';
        if (!ok) {
            return 0;
        }
    }
    return 1;
}

/* A message is canonical when encoding it again gives the input byte for byte. */
static int canonical(const ProtobufCMessage *m, const uint8_t *data, size_t len)
{
    size_t n = protobuf_c_message_get_packed_size(m);
    uint8_t *buf;
    int same;

    if (n != len) {
        return 0;
    }
    buf = OPENSSL_malloc(n > 0 ? n : 1);
    if (buf == NULL) {
        return 0;
    }
    protobuf_c_message_pack(m, buf);
    same = n == 0 || memcmp(buf, data, n) == 0;
    OPENSSL_free(buf);
    return same;
}

void agent_rtp_bundle_clear(agent_rtp_bundle *b)
{
    if (b == NULL) {
        return;
    }
    if (b->inner != NULL) {
        tessera__rtp__bundle__free_unpacked(b->inner, NULL);
    }
    if (b->outer != NULL) {
        tessera__rtp__signed_bundle__free_unpacked(b->outer, NULL);
    }
    b->inner = NULL;
    b->outer = NULL;
}

static ts_err inner_check(const Tessera__Rtp__Bundle *in)
{
    if (in->base.n_unknown_fields != 0) {
        return ts_error_set(TS_ERR_CORRUPT, "bundle: unknown fields");
    }
    if (in->version != AGENT_RTP_VERSION) {
        return ts_error_set(TS_ERR_CORRUPT, "bundle: version %u, not %d", in->version,
                            AGENT_RTP_VERSION);
    }
    if (in->device_uid == NULL || !uid_valid(in->device_uid)) {
        return ts_error_set(TS_ERR_CORRUPT,
                            "bundle: device UID is not 1 to %d of "
                            "[A-Za-z0-9._:-]",
                            TS_AGENT_UID_MAX);
    }
    if (in->keystore_uid.len != TS_KEYSTORE_UID_LEN) {
        return ts_error_set(TS_ERR_CORRUPT, "bundle: key-store UID of %zu bytes, not %d",
                            in->keystore_uid.len, TS_KEYSTORE_UID_LEN);
    }
    if (in->key_label == NULL || ts_label_check(in->key_label) != TS_OK) {
        return ts_error_set(TS_ERR_CORRUPT, "bundle: key label is not a valid label");
    }
    if (in->n_imports == 0 || in->n_imports > AGENT_RTP_IMPORTS_MAX) {
        return ts_error_set(TS_ERR_CORRUPT, "bundle: %zu imports, not 1 to %d", in->n_imports,
                            AGENT_RTP_IMPORTS_MAX);
    }
    for (size_t i = 0; i < in->n_imports; i++) {
        if (in->imports[i].len == 0 || in->imports[i].len > TS_IMPORT_BLOB_MAX) {
            return ts_error_set(TS_ERR_CORRUPT, "bundle: import %zu of %zu bytes, not 1 to %d",
                                i + 1, in->imports[i].len, TS_IMPORT_BLOB_MAX);
        }
    }
    return TS_OK;
}

ts_err agent_rtp_bundle_parse(const uint8_t *data, size_t len, agent_rtp_bundle *out)
{
    agent_rtp_bundle b = {NULL, NULL};
    ts_err rv = TS_ERR_CORRUPT;

    memset(out, 0, sizeof *out);
    if (data == NULL || len == 0 || len > TS_AGENT_RTP_BUNDLE_MAX) {
        return ts_error_set(TS_ERR_CORRUPT, "bundle: %zu bytes, not 1 to %d", len,
                            TS_AGENT_RTP_BUNDLE_MAX);
    }
    b.outer = tessera__rtp__signed_bundle__unpack(NULL, len, data);
    if (b.outer == NULL) {
        return ts_error_set(TS_ERR_CORRUPT, "bundle: not a SignedBundle message");
    }
    if (b.outer->base.n_unknown_fields != 0 || !canonical(&b.outer->base, data, len)) {
        ts_error_set(TS_ERR_CORRUPT, "bundle: SignedBundle is not canonical");
        goto done;
    }
    if (b.outer->signature.len == 0 || b.outer->signature.len > AGENT_RTP_SIG_MAX) {
        ts_error_set(TS_ERR_CORRUPT, "bundle: signature of %zu bytes, not 1 to %d",
                     b.outer->signature.len, AGENT_RTP_SIG_MAX);
        goto done;
    }
    if (b.outer->bundle.len == 0) {
        ts_error_set(TS_ERR_CORRUPT, "bundle: empty");
        goto done;
    }
    b.inner = tessera__rtp__bundle__unpack(NULL, b.outer->bundle.len, b.outer->bundle.data);
    if (b.inner == NULL) {
        ts_error_set(TS_ERR_CORRUPT, "bundle: not a Bundle message");
        goto done;
    }
    if (!canonical(&b.inner->base, b.outer->bundle.data, b.outer->bundle.len)) {
        ts_error_set(TS_ERR_CORRUPT, "bundle: Bundle is not canonical");
        goto done;
    }
    rv = inner_check(b.inner);
    if (rv != TS_OK) {
        goto done;
    }
    *out = b;
    b.outer = NULL;
    b.inner = NULL;
done:
    agent_rtp_bundle_clear(&b);
    return rv;
}

ts_err agent_rtp_bundle_verify(const agent_rtp_bundle *b, const EVP_PKEY *sender)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    ts_err rv = TS_ERR_AUTH;

    if (ctx == NULL) {
        return ts_error_set(TS_ERR_NOMEM, "out of memory");
    }
    if (EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, (EVP_PKEY *)sender) != 1) {
        rv = ts_error_set_openssl(TS_ERR_CRYPTO, "bundle: cannot verify with the provisioning "
                                                 "key");
        goto done;
    }
    if (EVP_DigestVerify(ctx, b->outer->signature.data, b->outer->signature.len,
                         b->outer->bundle.data, b->outer->bundle.len) != 1) {
        ts_error_set_openssl(TS_ERR_AUTH, "bundle: the provisioning key's signature does not "
                                          "verify");
        goto done;
    }
    rv = TS_OK;
done:
    EVP_MD_CTX_free(ctx);
    return rv;
}

ts_err agent_rtp_bundle_bound(const agent_rtp_bundle *b, const char *uid,
                              const uint8_t ksuid[TS_KEYSTORE_UID_LEN])
{
    if (strcmp(b->inner->device_uid, uid) != 0) {
        return ts_error_set(TS_ERR_FOREIGN, "bundle: for device %s, not this device (%s)",
                            b->inner->device_uid, uid);
    }
    if (CRYPTO_memcmp(b->inner->keystore_uid.data, ksuid, TS_KEYSTORE_UID_LEN) != 0) {
        return ts_error_set(TS_ERR_FOREIGN, "bundle: for another key store of device %s", uid);
    }
    return TS_OK;
}
