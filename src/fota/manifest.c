/* The manifest's JSON: built by the signer, parsed strictly by the verifier (tessera/fota.h). */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/error_internal.h"
#include "fota/fota_internal.h"

static ts_err get_u64(json_t *v, const char *what, uint64_t *out)
{
    if (!json_is_integer(v) || json_integer_value(v) < 0) {
        return ts_error_set(TS_ERR_INVALID, "manifest: '%s' is not an unsigned integer", what);
    }
    *out = (uint64_t)json_integer_value(v);
    return TS_OK;
}

static int hex_val(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    return -1;
}

static ts_err get_name(json_t *v, const char *what, char out[TS_FW_HW_MAX + 1])
{
    const char *s = json_is_string(v) ? json_string_value(v) : NULL;
    size_t n = s != NULL ? json_string_length(v) : 0;
    if (s == NULL || n == 0 || n > TS_FW_HW_MAX || strlen(s) != n) {
        return ts_error_set(TS_ERR_INVALID, "manifest: '%s' is not a name of 1 to %d bytes", what,
                            TS_FW_HW_MAX);
    }
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.' || c == ':' || c == '/')) {
            return ts_error_set(TS_ERR_INVALID,
                                "manifest: '%s' has a character outside "
                                "[A-Za-z0-9._:/-]",
                                what);
        }
    }
    memcpy(out, s, n + 1);
    return TS_OK;
}

static ts_err parse_depends(json_t *arr, ts_fw_info *info)
{
    if (!json_is_array(arr) || json_array_size(arr) > TS_FW_DEPENDS_MAX) {
        return ts_error_set(TS_ERR_INVALID, "manifest: 'depends' is not an array of at most %d",
                            TS_FW_DEPENDS_MAX);
    }
    size_t i;
    json_t *d;
    json_array_foreach(arr, i, d)
    {
        if (!json_is_object(d) || json_object_size(d) != 2) {
            return ts_error_set(TS_ERR_INVALID, "manifest: a dependency is not "
                                                "{\"name\",\"min_version\"}");
        }
        ts_err rv = get_name(json_object_get(d, "name"), "depends.name", info->depends[i].name);
        if (rv == TS_OK) {
            rv = get_u64(json_object_get(d, "min_version"), "depends.min_version",
                         &info->depends[i].min_version);
        }
        if (rv != TS_OK) {
            return rv;
        }
    }
    info->depends_count = json_array_size(arr);
    return TS_OK;
}

static ts_err parse_chunks(json_t *arr, ts_fw_info *info, uint8_t **digests)
{
    uint64_t want = info->size == 0 ? 0 : (info->size + info->chunk_size - 1) / info->chunk_size;
    if (!json_is_array(arr) || json_array_size(arr) != want || want > TS_FW_CHUNKS_MAX) {
        return ts_error_set(TS_ERR_INVALID,
                            "manifest: 'chunks' must list %llu digests (at most "
                            "%u)",
                            (unsigned long long)want, TS_FW_CHUNKS_MAX);
    }
    info->chunks = (uint32_t)want;
    uint8_t *out = digests != NULL ? malloc(want * TS_FW_DIGEST_LEN + 1) : NULL;
    if (digests != NULL && out == NULL) {
        return ts_error_set(TS_ERR_NOMEM, "no memory for the chunk digests");
    }
    size_t i;
    json_t *h;
    json_array_foreach(arr, i, h)
    {
        const char *s = json_is_string(h) ? json_string_value(h) : NULL;
        if (s == NULL || json_string_length(h) != 2 * TS_FW_DIGEST_LEN) {
            free(out);
            return ts_error_set(TS_ERR_INVALID, "manifest: chunk %zu is not 64 hex digits", i);
        }
        for (size_t k = 0; k < TS_FW_DIGEST_LEN; k++) {
            int hi = hex_val(s[2 * k]);
            int lo = hex_val(s[2 * k + 1]);
            if (hi < 0 || lo < 0) {
                free(out);
                return ts_error_set(TS_ERR_INVALID, "manifest: chunk %zu is not lower-case hex", i);
            }
            if (out != NULL) {
                out[i * TS_FW_DIGEST_LEN + k] = (uint8_t)(hi << 4 | lo);
            }
        }
    }
    if (digests != NULL) {
        *digests = out;
    }
    return TS_OK;
}

static const char *const known_keys[] = {"format",  "version",    "seq",    "hw",
                                         "size",    "chunk_size", "chunks", "min_version",
                                         "depends", "enc",        NULL};

ts_err ts_fw_manifest_parse(const char *json, size_t len, ts_fw_info *info, uint8_t **digests)
{
    return fw_manifest_parse_ex(json, len, info, digests, NULL);
}

ts_err fw_manifest_parse_ex(const char *json, size_t len, ts_fw_info *info, uint8_t **digests,
                            fw_enc *enc)
{
    fw_enc scratch;
    if (enc == NULL) {
        enc = &scratch;
    }
    memset(info, 0, sizeof *info);
    memset(enc, 0, sizeof *enc);
    if (digests != NULL) {
        *digests = NULL;
    }
    json_error_t jerr;
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        return ts_error_set(TS_ERR_INVALID, "manifest: not JSON: %s", jerr.text);
    }
    ts_err rv = TS_OK;
    const char *key;
    json_t *val;
    if (!json_is_object(root)) {
        rv = ts_error_set(TS_ERR_INVALID, "manifest: not a JSON object");
    }
    json_object_foreach(rv == TS_OK ? root : NULL, key, val)
    {
        int known = 0;
        for (size_t i = 0; known_keys[i] != NULL; i++) {
            known |= strcmp(key, known_keys[i]) == 0;
        }
        if (!known) {
            rv = ts_error_set(TS_ERR_INVALID, "manifest: unknown member '%.40s'", key);
            break;
        }
    }
    uint64_t format = 0, chunk = 0;
    if (rv == TS_OK) {
        rv = get_u64(json_object_get(root, "format"), "format", &format);
    }
    if (rv == TS_OK && format != TS_FW_FORMAT) {
        rv = ts_error_set(TS_ERR_UNSUPPORTED, "manifest: format %llu is not %d",
                          (unsigned long long)format, TS_FW_FORMAT);
    }
    if (rv == TS_OK) {
        rv = get_u64(json_object_get(root, "version"), "version", &info->version);
    }
    if (rv == TS_OK) {
        rv = get_u64(json_object_get(root, "seq"), "seq", &info->seq);
    }
    if (rv == TS_OK) {
        rv = get_name(json_object_get(root, "hw"), "hw", info->hw);
    }
    if (rv == TS_OK) {
        rv = get_u64(json_object_get(root, "size"), "size", &info->size);
    }
    if (rv == TS_OK) {
        rv = get_u64(json_object_get(root, "chunk_size"), "chunk_size", &chunk);
    }
    if (rv == TS_OK && (chunk < TS_FW_CHUNK_MIN || chunk > TS_FW_CHUNK_MAX)) {
        rv = ts_error_set(TS_ERR_INVALID, "manifest: chunk_size %llu is outside %u..%u",
                          (unsigned long long)chunk, TS_FW_CHUNK_MIN, TS_FW_CHUNK_MAX);
    }
    if (rv == TS_OK) {
        info->chunk_size = (uint32_t)chunk;
        rv = parse_chunks(json_object_get(root, "chunks"), info, digests);
    }
    json_t *min = rv == TS_OK ? json_object_get(root, "min_version") : NULL;
    if (min != NULL) {
        rv = get_u64(min, "min_version", &info->min_version);
        info->has_min_version = rv == TS_OK;
    }
    json_t *deps = rv == TS_OK ? json_object_get(root, "depends") : NULL;
    if (deps != NULL) {
        rv = parse_depends(deps, info);
    }
    json_t *e = rv == TS_OK ? json_object_get(root, "enc") : NULL;
    if (e != NULL) {
        rv = fw_enc_parse(e, info, enc);
    } else if (rv == TS_OK) {
        info->wire_size = info->size;
    }
    if (rv != TS_OK && digests != NULL) {
        free(*digests);
        *digests = NULL;
    }
    json_decref(root);
    return rv;
}

static int build_depends(const ts_fw_sign_params *p, json_t *root)
{
    if (p->depends_count == 0) {
        return 0;
    }
    json_t *arr = json_array();
    int bad = arr == NULL;
    for (size_t i = 0; !bad && i < p->depends_count; i++) {
        json_t *d = json_object();
        bad = d == NULL || json_object_set_new(d, "name", json_string(p->depends[i].name)) != 0 ||
              json_object_set_new(d, "min_version",
                                  json_integer((json_int_t)p->depends[i].min_version)) != 0;
        bad = json_array_append_new(arr, d) != 0 || bad;
    }
    bad = bad || json_object_set(root, "depends", arr) != 0;
    json_decref(arr);
    return bad;
}

ts_err fw_manifest_build(const ts_fw_sign_params *p, uint64_t size, uint32_t chunk_size,
                         const uint8_t *digests, uint32_t chunks, const ts_fw_info *info,
                         const fw_enc *enc, char **out)
{
    json_t *arr = json_array();
    json_t *root = json_object();
    int bad = arr == NULL || root == NULL;
    for (uint32_t i = 0; !bad && i < chunks; i++) {
        char hex[2 * TS_FW_DIGEST_LEN + 1];
        for (size_t k = 0; k < TS_FW_DIGEST_LEN; k++) {
            static const char digits[] = "0123456789abcdef";
            hex[2 * k] = digits[digests[i * TS_FW_DIGEST_LEN + k] >> 4];
            hex[2 * k + 1] = digits[digests[i * TS_FW_DIGEST_LEN + k] & 15];
        }
        hex[2 * TS_FW_DIGEST_LEN] = '\0';
        bad |= json_array_append_new(arr, json_string(hex)) != 0;
    }
    bad = bad || json_object_set_new(root, "format", json_integer(TS_FW_FORMAT)) != 0 ||
          json_object_set_new(root, "version", json_integer((json_int_t)p->version)) != 0 ||
          json_object_set_new(root, "seq", json_integer((json_int_t)p->seq)) != 0 ||
          json_object_set_new(root, "hw", json_string(p->hw)) != 0 ||
          json_object_set_new(root, "size", json_integer((json_int_t)size)) != 0 ||
          json_object_set_new(root, "chunk_size", json_integer(chunk_size)) != 0 ||
          json_object_set(root, "chunks", arr) != 0;
    if (!bad && p->has_min_version) {
        bad = json_object_set_new(root, "min_version", json_integer((json_int_t)p->min_version));
    }
    bad = bad || build_depends(p, root);
    if (!bad && info != NULL && info->encrypted) {
        json_t *e = fw_enc_build(info, enc);
        bad = e == NULL || json_object_set_new(root, "enc", e) != 0;
    }
    char *text = bad ? NULL : json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(arr);
    json_decref(root);
    if (text == NULL) {
        return ts_error_set(TS_ERR_NOMEM, "cannot build the manifest");
    }
    *out = text;
    return TS_OK;
}
