/* Public keys against profiles: what a key is, whether a profile allows it, and key matching. */
#include <stdio.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "common/error_internal.h"
#include "pki/pki_internal.h"

static const struct {
    const char *group;
    const char *name;
    unsigned bit;
} curves[] = {
    {"prime256v1", "P-256", TS_KEYTYPE_P256},
    {"secp384r1", "P-384", TS_KEYTYPE_P384},
    {"secp521r1", "P-521", TS_KEYTYPE_P521},
};

/*
 * The profile key-type bit of an EC key: 0 for another curve or for explicit parameters, which
 * RFC 5480 section 2.1.1 excludes (namedCurve only) even when they describe a known curve.
 */
static unsigned ec_bit(const EVP_PKEY *key, char *group, size_t size, int *explicit_params)
{
    char encoding[32] = "";
    size_t len = 0;

    group[0] = '\0';
    *explicit_params = 0;
    if (!EVP_PKEY_get_group_name(key, group, size, &len)) {
        group[0] = '\0';
        return 0;
    }
    if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_EC_ENCODING, encoding, sizeof encoding,
                                       &len) &&
        strcmp(encoding, OSSL_PKEY_EC_ENCODING_GROUP) != 0) {
        *explicit_params = 1;
        return 0;
    }
    for (size_t i = 0; i < sizeof curves / sizeof curves[0]; i++) {
        if (strcmp(curves[i].group, group) == 0) {
            return curves[i].bit;
        }
    }
    return 0;
}

void ts_pki_key_describe(const EVP_PKEY *key, char *buf, size_t size)
{
    char group[64];
    int explicit_params;
    unsigned bit;

    if (EVP_PKEY_is_a(key, "EC")) {
        bit = ec_bit(key, group, sizeof group, &explicit_params);
        for (size_t i = 0; i < sizeof curves / sizeof curves[0]; i++) {
            if (curves[i].bit == bit) {
                snprintf(buf, size, "%s", curves[i].name);
                return;
            }
        }
        if (group[0] == '\0') {
            snprintf(buf, size, "EC without a named curve");
        } else if (explicit_params) {
            snprintf(buf, size, "EC %s with explicit parameters", group);
        } else {
            snprintf(buf, size, "EC %s", group);
        }
        return;
    }
    if (EVP_PKEY_is_a(key, "RSA")) {
        snprintf(buf, size, "RSA-%d", EVP_PKEY_get_bits(key));
        return;
    }
    const char *type = EVP_PKEY_get0_type_name(key);
    snprintf(buf, size, "%s", type != NULL ? type : "of an unknown type");
}

static unsigned key_bit(const EVP_PKEY *key)
{
    char group[64];
    int explicit_params;

    if (EVP_PKEY_is_a(key, "EC")) {
        return ec_bit(key, group, sizeof group, &explicit_params);
    }
    if (EVP_PKEY_is_a(key, "RSA")) {
        int bits = EVP_PKEY_get_bits(key);
        if (bits > TS_RSA_MAX_BITS) {
            return 0;
        }
        if (bits >= 4096) {
            return TS_KEYTYPE_RSA2048 | TS_KEYTYPE_RSA3072 | TS_KEYTYPE_RSA4096;
        }
        if (bits >= 3072) {
            return TS_KEYTYPE_RSA2048 | TS_KEYTYPE_RSA3072;
        }
        if (bits >= 2048) {
            return TS_KEYTYPE_RSA2048;
        }
    }
    return 0;
}

ts_err ts_pki_key_allowed(const EVP_PKEY *key, const ts_profile *profile)
{
    char have[96], allowed[128] = "";
    size_t used = 0;

    if (key == NULL) {
        return ts_error_set(TS_ERR_POLICY, "the request has no readable public key");
    }
    if ((key_bit(key) & profile->key_types) != 0) {
        return TS_OK;
    }
    for (size_t i = 0; ts_pki_keytype_table[i].name != NULL; i++) {
        if ((profile->key_types & (unsigned)ts_pki_keytype_table[i].value) != 0) {
            int n = snprintf(allowed + used, sizeof allowed - used, "%s%s", used ? ", " : "",
                             ts_pki_keytype_table[i].name);
            if (n > 0 && (size_t)n < sizeof allowed - used) {
                used += (size_t)n;
            }
        }
    }
    ts_pki_key_describe(key, have, sizeof have);
    if (EVP_PKEY_is_a(key, "RSA") && EVP_PKEY_get_bits(key) > TS_RSA_MAX_BITS) {
        return ts_error_set(TS_ERR_POLICY,
                            "key is %s, above the %d-bit limit; profile '%s' "
                            "allows %s",
                            have, TS_RSA_MAX_BITS, profile->name, allowed);
    }
    return ts_error_set(TS_ERR_POLICY, "key is %s; profile '%s' allows %s", have, profile->name,
                        allowed);
}

const char *ts_pki_ca_digest(const EVP_PKEY *key)
{
    char group[64];
    int explicit_params;
    unsigned bit =
        EVP_PKEY_is_a(key, "EC") ? ec_bit(key, group, sizeof group, &explicit_params) : 0;

    /* Match the digest to the curve's strength (RFC 5480 section 4). */
    if (bit == TS_KEYTYPE_P384) {
        return "SHA384";
    }
    if (bit == TS_KEYTYPE_P521) {
        return "SHA512";
    }
    return "SHA256";
}

int ts_pki_same_public_key(const EVP_PKEY *a, const EVP_PKEY *b)
{
    unsigned char *da = NULL, *db = NULL;
    int la, lb, same;

    /* The key managers compare parameters and points; a key-store key is compared through its
     * exported public half, which OpenSSL keeps with the key, so this costs no encoding. */
    same = a != NULL && b != NULL ? EVP_PKEY_eq(a, b) : 0;
    if (same >= 0) {
        return same == 1;
    }
    /* Keys that cannot be compared that way (-1: different types, -2: not supported) are
     * compared by their SubjectPublicKeyInfo encodings. */
    la = i2d_PUBKEY(a, &da);
    lb = i2d_PUBKEY(b, &db);
    same = la > 0 && la == lb && CRYPTO_memcmp(da, db, (size_t)la) == 0;
    OPENSSL_free(da);
    OPENSSL_free(db);
    return same;
}
