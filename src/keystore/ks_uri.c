/*
 * Key-store URIs: pkcs11: (RFC 7512, parsed by p11-kit) and soft:.
 *
 * The text is untrusted (it may come from a command line or a configuration file), so it is
 * first split by a strict scanner of our own: printable ASCII only, a length cap, every
 * attribute known, none twice, no %00. Only then does p11-kit parse a pkcs11: URI; its result
 * fills the fields. The scanner's positions also give the redacted form without the PIN.
 */
#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <p11-kit/uri.h>
/* pkcs11.h's compatibility macros would rename ts_ks_uri.slot_id and other fields of ours. */
#undef slot_id
#undef value
#undef count

#include "common/error_internal.h"
#include "keystore/keystore_internal.h"
#include "keystore/ks_uri_internal.h"

typedef struct uri_attr {
    const char *name;
    size_t name_len;
    const char *value; /* points into the text: still percent-encoded */
    size_t value_len;
} uri_attr;

typedef struct uri_parts {
    const char *dir; /* soft: the first path segment */
    size_t dir_len;
    uri_attr path[URI_ATTR_MAX];
    size_t npath;
    uri_attr query[URI_ATTR_MAX];
    size_t nquery;
} uri_parts;

static int attr_is(const uri_attr *a, const char *name)
{
    return a->name_len == strlen(name) && memcmp(a->name, name, a->name_len) == 0;
}

static const uri_attr *attr_find(const uri_attr *attrs, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++) {
        if (attr_is(&attrs[i], name)) {
            return &attrs[i];
        }
    }
    return NULL;
}

/*
 * Splits [start, end) at sep into name=value attributes. Segments of the query may hold a PIN, so
 * messages about them name only the attribute name, never the value.
 */
static ts_err split_attrs(const char *start, const char *end, char sep, const char *where,
                          uri_attr *attrs, size_t *n)
{
    const char *p = start;

    *n = 0;
    while (p < end || (p == end && p != start)) {
        const char *seg_end = memchr(p, sep, (size_t)(end - p));
        if (seg_end == NULL) {
            seg_end = end;
        }
        if (seg_end == p) {
            return ts_error_set(TS_ERR_URI, "empty attribute in the %s (a stray '%c'?)", where,
                                sep);
        }
        const char *eq = memchr(p, '=', (size_t)(seg_end - p));
        if (eq == NULL || eq == p) {
            return ts_error_set(TS_ERR_URI, "attribute %zu of the %s is not name=value", *n + 1,
                                where);
        }
        if (*n == URI_ATTR_MAX) {
            return ts_error_set(TS_ERR_URI, "more than %d attributes in the %s", URI_ATTR_MAX,
                                where);
        }
        uri_attr a = {p, (size_t)(eq - p), eq + 1, (size_t)(seg_end - eq - 1)};
        for (size_t i = 0; i < *n; i++) {
            if (attrs[i].name_len == a.name_len && memcmp(attrs[i].name, a.name, a.name_len) == 0) {
                return ts_error_set(TS_ERR_URI, "attribute '%.*s' appears twice", (int)a.name_len,
                                    a.name);
            }
        }
        attrs[(*n)++] = a;
        if (seg_end == end) {
            break;
        }
        p = seg_end + 1;
    }
    return TS_OK;
}

/* Checks every name against the ones this scheme knows; names the first it does not. */
static ts_err check_names(const uri_attr *attrs, size_t n, const char *const *known,
                          const char *const *refused, const char *where)
{
    for (size_t i = 0; i < n; i++) {
        int ok = 0;
        for (size_t k = 0; known[k] != NULL && !ok; k++) {
            ok = attr_is(&attrs[i], known[k]);
        }
        for (size_t k = 0; refused != NULL && refused[k] != NULL; k++) {
            if (attr_is(&attrs[i], refused[k])) {
                return ts_error_set(TS_ERR_URI,
                                    "%s attribute '%s' is not supported: name the token with "
                                    "token=, serial= or slot-id= and the key with object=",
                                    where, refused[k]);
            }
        }
        if (!ok) {
            return ts_error_set(TS_ERR_URI, "unknown %s attribute '%.*s'", where,
                                (int)attrs[i].name_len, attrs[i].name);
        }
    }
    return TS_OK;
}

/* A fixed-width, blank-padded PKCS#11 token field as a string; NULL when the URI left it out. */
static ts_err token_field(const char *name, const unsigned char *field, size_t width, char **out)
{
    size_t n = width;

    *out = NULL;
    if (field[0] == '\0') {
        return TS_OK; /* p11-kit leaves fields the URI did not name zeroed */
    }
    while (n > 0 && field[n - 1] == ' ') {
        n--;
    }
    if (n == 0 || memchr(field, '\0', n) != NULL) {
        return ts_error_set(TS_ERR_URI, "%s= is empty", name);
    }
    *out = OPENSSL_strndup((const char *)field, n);
    return *out != NULL ? TS_OK : ts_error_set(TS_ERR_NOMEM, "out of memory parsing the URI");
}

static ts_err check_object(const char *object)
{
    ts_err rv = ts_label_check(object);
    return rv == TS_OK ? TS_OK : ts_error_prefix(TS_ERR_URI, "object attribute");
}

static const char *const p11_path_known[] = {"token",   "manufacturer", "serial", "model",
                                             "slot-id", "object",       "type",   NULL};
static const char *const p11_path_refused[] = {"id",
                                               "library-manufacturer",
                                               "library-description",
                                               "library-version",
                                               "slot-description",
                                               "slot-manufacturer",
                                               NULL};
static const char *const p11_query_known[] = {"pin-value", "pin-source", "module-name",
                                              "module-path", NULL};
static const char *const soft_path_known[] = {"object", NULL};
static const char *const soft_query_known[] = {"pin-value", "pin-source", NULL};

/* slot-id (RFC 7512 section 2.3) is a decimal CK_SLOT_ID; ours must also fit a long. */
static ts_err check_slot_id(const uri_parts *parts)
{
    const uri_attr *a = attr_find(parts->path, parts->npath, "slot-id");
    unsigned long long v = 0;

    if (a == NULL) {
        return TS_OK;
    }
    if (a->value_len == 0 || a->value_len > 19) {
        return ts_error_set(TS_ERR_URI, "slot-id must be a decimal number below 2^63");
    }
    for (size_t i = 0; i < a->value_len; i++) {
        if (!isdigit((unsigned char)a->value[i])) {
            return ts_error_set(TS_ERR_URI, "slot-id '%.*s' is not a decimal number",
                                (int)a->value_len, a->value);
        }
        v = v * 10 + (unsigned)(a->value[i] - '0');
    }
    if (v > (unsigned long long)LONG_MAX) {
        return ts_error_set(TS_ERR_URI, "slot-id must be a decimal number below 2^63");
    }
    return TS_OK;
}

static ts_err parse_pkcs11(ts_ks_uri *uri, const char *text, const uri_parts *parts)
{
    P11KitUri *p11 = NULL;
    ts_err rv = check_names(parts->path, parts->npath, p11_path_known, p11_path_refused, "path");

    if (rv == TS_OK) {
        rv = check_names(parts->query, parts->nquery, p11_query_known, NULL, "query");
    }
    if (rv == TS_OK) {
        rv = check_slot_id(parts);
    }
    if (rv != TS_OK) {
        return rv;
    }
    p11 = p11_kit_uri_new();
    if (p11 == NULL) {
        return ts_error_set(TS_ERR_NOMEM, "out of memory parsing the URI");
    }
    int res = p11_kit_uri_parse(text, P11_KIT_URI_FOR_ANY, p11);
    if (res != P11_KIT_URI_OK) {
        rv = ts_error_set(TS_ERR_URI, "not a valid RFC 7512 PKCS#11 URI: %s",
                          p11_kit_uri_message(res));
        goto done;
    }
    if (p11_kit_uri_any_unrecognized(p11)) {
        rv = ts_error_set(TS_ERR_URI,
                          "the PKCS#11 URI has a value p11-kit does not accept: token and "
                          "manufacturer are at most 32 bytes, serial and model at most 16, type "
                          "is cert, data, private, public or secret-key");
        goto done;
    }
    CK_TOKEN_INFO *info = p11_kit_uri_get_token_info(p11);
    rv = token_field("token", info->label, sizeof info->label, &uri->token);
    if (rv == TS_OK) {
        rv = token_field("manufacturer", info->manufacturerID, sizeof info->manufacturerID,
                         &uri->manufacturer);
    }
    if (rv == TS_OK) {
        rv = token_field("serial", info->serialNumber, sizeof info->serialNumber, &uri->serial);
    }
    if (rv == TS_OK) {
        rv = token_field("model", info->model, sizeof info->model, &uri->model);
    }
    if (rv != TS_OK) {
        goto done;
    }
    CK_SLOT_ID slot = p11_kit_uri_get_slot_id(p11);
    uri->slot_id = slot == (CK_SLOT_ID)-1 ? -1 : (long)slot;

    CK_ATTRIBUTE *label = p11_kit_uri_get_attribute(p11, CKA_LABEL);
    if (label != NULL) {
        uri->object = OPENSSL_strndup(label->pValue, label->ulValueLen);
        if (uri->object == NULL) {
            rv = ts_error_set(TS_ERR_NOMEM, "out of memory parsing the URI");
            goto done;
        }
        rv = check_object(uri->object);
        if (rv != TS_OK) {
            goto done;
        }
    }
    rv = ks_uri_resolve_module(uri, p11_kit_uri_get_module_path(p11),
                               p11_kit_uri_get_module_name(p11));
    if (rv == TS_OK) {
        rv = ks_uri_resolve_pin(uri, p11_kit_uri_get_pin_value(p11),
                                p11_kit_uri_get_pin_source(p11));
    }
done:
    p11_kit_uri_free(p11); /* p11-kit frees pin-value without wiping: nothing we can change */
    return rv;
}

static ts_err decode_attr(const uri_parts *parts, int query, const char *name, char **out)
{
    const uri_attr *a = query ? attr_find(parts->query, parts->nquery, name)
                              : attr_find(parts->path, parts->npath, name);
    *out = NULL;
    return a == NULL ? TS_OK : ks_uri_decode(name, a->value, a->value_len, out);
}

static ts_err parse_soft(ts_ks_uri *uri, const uri_parts *parts)
{
    char *pin_value = NULL, *pin_source = NULL;
    ts_err rv = check_names(parts->path, parts->npath, soft_path_known, NULL, "path");

    if (rv == TS_OK) {
        rv = check_names(parts->query, parts->nquery, soft_query_known, NULL, "query");
    }
    if (rv == TS_OK && parts->dir_len == 0) {
        rv = ts_error_set(TS_ERR_URI, "soft: URI without a directory (soft:DIR)");
    }
    if (rv == TS_OK) {
        rv = ks_uri_decode("directory", parts->dir, parts->dir_len, &uri->path);
    }
    if (rv == TS_OK) {
        rv = decode_attr(parts, 0, "object", &uri->object);
    }
    if (rv == TS_OK && uri->object != NULL) {
        rv = check_object(uri->object);
    }
    if (rv == TS_OK) {
        rv = decode_attr(parts, 1, "pin-value", &pin_value);
    }
    if (rv == TS_OK) {
        rv = decode_attr(parts, 1, "pin-source", &pin_source);
    }
    if (rv == TS_OK) {
        rv = ks_uri_resolve_pin(uri, pin_value, pin_source);
    }
    if (pin_value != NULL) {
        OPENSSL_clear_free(pin_value, strlen(pin_value));
    }
    OPENSSL_free(pin_source);
    return rv;
}

/* The text with the value of pin-value replaced by ***; everything else as given. */
static ts_err redact(ts_ks_uri *uri, const char *text, const uri_parts *parts)
{
    const uri_attr *a = attr_find(parts->query, parts->nquery, "pin-value");
    size_t len = strlen(text);

    if (a == NULL) {
        uri->redacted = OPENSSL_strdup(text);
    } else {
        size_t head = (size_t)(a->value - text);
        size_t tail = len - head - a->value_len;
        uri->redacted = OPENSSL_malloc(head + 3 + tail + 1);
        if (uri->redacted != NULL) {
            memcpy(uri->redacted, text, head);
            memcpy(uri->redacted + head, "***", 3);
            memcpy(uri->redacted + head + 3, a->value + a->value_len, tail);
            uri->redacted[head + 3 + tail] = '\0';
        }
    }
    return uri->redacted != NULL ? TS_OK : ts_error_set(TS_ERR_NOMEM, "out of memory");
}

static ts_err scan(const char *text, size_t len, size_t scheme_len, int soft, uri_parts *parts)
{
    const char *body = text + scheme_len + 1;
    const char *end = text + len;
    const char *q = memchr(body, '?', (size_t)(end - body));
    const char *path_end = q != NULL ? q : end;
    const char *path = body;

    memset(parts, 0, sizeof *parts);
    if (soft) {
        const char *semi = memchr(body, ';', (size_t)(path_end - body));
        parts->dir = body;
        parts->dir_len = (size_t)((semi != NULL ? semi : path_end) - body);
        path = semi != NULL ? semi + 1 : path_end;
        if (semi != NULL && path == path_end) {
            return ts_error_set(TS_ERR_URI, "empty attribute after ';' in the path");
        }
    }
    ts_err rv = split_attrs(path, path_end, ';', "path", parts->path, &parts->npath);
    if (rv == TS_OK && q != NULL) {
        if (q + 1 == end) {
            return ts_error_set(TS_ERR_URI, "empty query after '?'");
        }
        rv = split_attrs(q + 1, end, '&', "query", parts->query, &parts->nquery);
    }
    return rv;
}

ts_err ts_ks_uri_parse(const char *text, ts_ks_uri **out)
{
    ts_ks_uri *uri = NULL;
    uri_parts parts;
    ts_err rv;

    if (out == NULL) {
        return ts_error_set(TS_ERR_INVALID, "nowhere to put the parsed URI");
    }
    *out = NULL;
    if (text == NULL || text[0] == '\0') {
        return ts_error_set(TS_ERR_URI, "no key-store URI given");
    }
    size_t len = strnlen(text, URI_MAX + 1);
    if (len > URI_MAX) {
        return ts_error_set(TS_ERR_URI, "the URI is longer than %d characters", URI_MAX);
    }
    /* RFC 3986 section 2: a URI is printable ASCII; anything else must be percent-encoded. */
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c <= 0x20 || c >= 0x7f) {
            return ts_error_set(TS_ERR_URI,
                                "byte 0x%02x at offset %zu is not allowed in a URI (percent-encode "
                                "it, e.g. a space as %%20)",
                                c, i);
        }
    }
    /* Every decoded value is used as a C string: an encoded NUL would cut it short unseen. */
    if (strstr(text, "%00") != NULL) {
        return ts_error_set(TS_ERR_URI, "%%00 (an encoded NUL byte) is not allowed in a URI");
    }
    const char *colon = memchr(text, ':', len);
    if (colon == NULL) {
        return ts_error_set(TS_ERR_URI,
                            "'%.32s' is not a key-store URI: start it with soft: or pkcs11:", text);
    }
    size_t scheme_len = (size_t)(colon - text);
    int soft = scheme_len == 4 && strncasecmp(text, "soft", 4) == 0;
    int p11 = scheme_len == 6 && strncasecmp(text, P11_KIT_URI_SCHEME, 6) == 0;
    if (!soft && !p11) {
        return ts_error_set(TS_ERR_URI, "unknown key-store URI scheme '%.*s': use soft: or pkcs11:",
                            (int)(scheme_len < 32 ? scheme_len : 32), text);
    }
    uri = OPENSSL_zalloc(sizeof *uri);
    if (uri == NULL) {
        return ts_error_set(TS_ERR_NOMEM, "out of memory parsing the URI");
    }
    uri->scheme = soft ? TS_KS_SOFT : TS_KS_PKCS11;
    uri->slot_id = -1;
    rv = scan(text, len, scheme_len, soft, &parts);
    if (rv == TS_OK) {
        rv = soft ? parse_soft(uri, &parts) : parse_pkcs11(uri, text, &parts);
    }
    if (rv == TS_OK) {
        rv = redact(uri, text, &parts);
    }
    if (rv != TS_OK) {
        ts_ks_uri_free(uri);
        return rv;
    }
    *out = uri;
    return TS_OK;
}

void ts_ks_uri_free(ts_ks_uri *uri)
{
    if (uri == NULL) {
        return;
    }
    if (uri->pin != NULL) {
        OPENSSL_clear_free(uri->pin, strlen(uri->pin));
    }
    OPENSSL_free(uri->object);
    OPENSSL_free(uri->redacted);
    OPENSSL_free(uri->path);
    OPENSSL_free(uri->module_path);
    OPENSSL_free(uri->token);
    OPENSSL_free(uri->manufacturer);
    OPENSSL_free(uri->serial);
    OPENSSL_free(uri->model);
    OPENSSL_free(uri);
}
