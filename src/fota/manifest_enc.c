/*
 * The manifest's "enc" member (docs/firmware.md): how an encrypted payload's content key reaches
 * its recipient. Parsed strictly: exactly the six members, each of its type and length.
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/error_internal.h"
#include "fota/fota_internal.h"

static const char *const enc_keys[] = {"alg",         "epk",       "group", "key_id",
                                       "wrapped_key", "wire_size", NULL};

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    return -1;
}

/* Exactly 2 * len lower-case hex digits into out. */
static ts_err get_hex(json_t *v, const char *what, uint8_t *out, size_t len)
{
    const char *s = json_is_string(v) ? json_string_value(v) : NULL;
    if (s == NULL || json_string_length(v) != 2 * len) {
        return ts_error_set(TS_ERR_INVALID, "manifest: 'enc.%s' is not %zu hex digits", what,
                            2 * len);
    }
    for (size_t i = 0; i < len; i++) {
        int hi = hex_digit(s[2 * i]);
        int lo = hex_digit(s[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            return ts_error_set(TS_ERR_INVALID, "manifest: 'enc.%s' is not lower-case hex", what);
        }
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return TS_OK;
}

static void put_hex(char *out, const uint8_t *in, size_t len)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * len] = '\0';
}

static ts_err get_key_id(json_t *v, int group, ts_fw_info *info)
{
    const char *s = json_is_string(v) ? json_string_value(v) : NULL;
    size_t n = s != NULL ? json_string_length(v) : 0;
    if (s == NULL || strlen(s) != n) {
        return ts_error_set(TS_ERR_INVALID, "manifest: 'enc.key_id' is not a string");
    }
    if (group) {
        if (!fw_group_id_ok(s)) {
            return ts_error_set(TS_ERR_INVALID,
                                "manifest: 'enc.key_id' is not a fleet key id (1 to %d of "
                                "[A-Za-z0-9._-])",
                                TS_FW_KEYID_MAX);
        }
    } else {
        int ok = n == 2 * TS_FW_DIGEST_LEN;
        for (size_t i = 0; ok && i < n; i++) {
            ok = hex_digit(s[i]) >= 0;
        }
        if (!ok) {
            return ts_error_set(TS_ERR_INVALID, "manifest: 'enc.key_id' of a device recipient is "
                                                "not 64 lower-case hex digits");
        }
    }
    memcpy(info->enc_key_id, s, n + 1);
    return TS_OK;
}

ts_err fw_enc_parse(json_t *obj, ts_fw_info *info, fw_enc *enc)
{
    if (!json_is_object(obj)) {
        return ts_error_set(TS_ERR_INVALID, "manifest: 'enc' is not an object");
    }
    const char *key;
    json_t *val;
    json_object_foreach(obj, key, val)
    {
        int known = 0;
        for (size_t i = 0; enc_keys[i] != NULL; i++) {
            known |= strcmp(key, enc_keys[i]) == 0;
        }
        if (!known) {
            return ts_error_set(TS_ERR_INVALID, "manifest: unknown member 'enc.%.40s'", key);
        }
    }
    json_t *alg = json_object_get(obj, "alg");
    if (!json_is_string(alg) || strcmp(json_string_value(alg), FW_ENC_ALG) != 0 ||
        json_string_length(alg) != strlen(FW_ENC_ALG)) {
        return ts_error_set(TS_ERR_UNSUPPORTED, "manifest: 'enc.alg' is not \"%s\"", FW_ENC_ALG);
    }
    json_t *group = json_object_get(obj, "group");
    if (!json_is_boolean(group)) {
        return ts_error_set(TS_ERR_INVALID, "manifest: 'enc.group' is not true or false");
    }
    ts_err rv = get_key_id(json_object_get(obj, "key_id"), json_is_true(group), info);
    if (rv == TS_OK) {
        rv = get_hex(json_object_get(obj, "epk"), "epk", enc->epk, sizeof enc->epk);
    }
    if (rv == TS_OK) {
        EVP_PKEY *epk = NULL;
        rv = fw_p256_from_spki(enc->epk, sizeof enc->epk, "manifest: 'enc.epk'", &epk);
        EVP_PKEY_free(epk);
    }
    if (rv == TS_OK) {
        rv = get_hex(json_object_get(obj, "wrapped_key"), "wrapped_key", enc->wrapped,
                     sizeof enc->wrapped);
    }
    json_t *wire = json_object_get(obj, "wire_size");
    uint64_t want = info->size + (uint64_t)TS_FW_TAG_LEN * info->chunks;
    if (rv == TS_OK && (!json_is_integer(wire) || json_integer_value(wire) < 0 ||
                        (uint64_t)json_integer_value(wire) != want)) {
        rv = ts_error_set(TS_ERR_INVALID,
                          "manifest: 'enc.wire_size' is not size + %d x chunks (%llu)",
                          TS_FW_TAG_LEN, (unsigned long long)want);
    }
    if (rv != TS_OK) {
        memset(info->enc_key_id, 0, sizeof info->enc_key_id);
        memset(enc, 0, sizeof *enc);
        return rv;
    }
    info->encrypted = 1;
    info->enc_group = json_is_true(group);
    info->wire_size = want;
    return TS_OK;
}

json_t *fw_enc_build(const ts_fw_info *info, const fw_enc *enc)
{
    char epk[2 * FW_EPK_LEN + 1];
    char wrapped[2 * FW_WRAPPED_LEN + 1];
    put_hex(epk, enc->epk, sizeof enc->epk);
    put_hex(wrapped, enc->wrapped, sizeof enc->wrapped);
    json_t *e = json_object();
    if (e == NULL || json_object_set_new(e, "alg", json_string(FW_ENC_ALG)) != 0 ||
        json_object_set_new(e, "epk", json_string(epk)) != 0 ||
        json_object_set_new(e, "group", json_boolean(info->enc_group)) != 0 ||
        json_object_set_new(e, "key_id", json_string(info->enc_key_id)) != 0 ||
        json_object_set_new(e, "wrapped_key", json_string(wrapped)) != 0 ||
        json_object_set_new(e, "wire_size", json_integer((json_int_t)info->wire_size)) != 0) {
        json_decref(e);
        return NULL;
    }
    return e;
}
