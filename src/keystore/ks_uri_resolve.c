/*
 * What a key-store URI points at outside itself: the PIN (pin-value, pin-source, $TESSERA_PIN)
 * and the PKCS#11 module (module-path, module-name, $TESSERA_PKCS11_MODULE); and the
 * percent-decoding both schemes share.
 */
#define _GNU_SOURCE /* secure_getenv: a set-uid caller must not take a module path from env */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <openssl/crypto.h>

#include "common/error_internal.h"
#include "common/file_internal.h"
#include "keystore/ks_uri_internal.h"

/* The directories a module-name is looked up in, in order. */
static const char *const module_dirs[] = {
    "/usr/lib/x86_64-linux-gnu/pkcs11",
    "/usr/lib/aarch64-linux-gnu/pkcs11",
    "/usr/lib/arm-linux-gnueabihf/pkcs11",
    "/usr/lib/pkcs11",
    "/usr/lib64/pkcs11",
    "/usr/local/lib/pkcs11",
    "/usr/lib/softhsm",
    "/usr/lib/x86_64-linux-gnu/softhsm",
    "/usr/lib64/softhsm",
    "/usr/local/lib/softhsm",
};

static int hex_value(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

/*
 * RFC 7512 section 2.3 / RFC 3986 section 2.1: percent-decodes len bytes into a new string.
 * %00 is refused since every decoded value is used as a C string.
 */
ts_err ks_uri_decode(const char *what, const char *in, size_t len, char **out)
{
    char *buf = OPENSSL_malloc(len + 1);
    size_t n = 0;

    *out = NULL;
    if (buf == NULL) {
        return ts_error_set(TS_ERR_NOMEM, "out of memory decoding the URI");
    }
    for (size_t i = 0; i < len; i++) {
        if (in[i] != '%') {
            buf[n++] = in[i];
            continue;
        }
        int hi = i + 2 < len ? hex_value(in[i + 1]) : -1;
        int lo = i + 2 < len ? hex_value(in[i + 2]) : -1;
        if (hi < 0 || lo < 0) {
            OPENSSL_clear_free(buf, len + 1);
            return ts_error_set(
                TS_ERR_URI, "%s: '%%' at offset %zu is not followed by two hex digits", what, i);
        }
        if (hi == 0 && lo == 0) {
            OPENSSL_clear_free(buf, len + 1);
            return ts_error_set(TS_ERR_URI, "%s: %%00 is not allowed", what);
        }
        buf[n++] = (char)(hi * 16 + lo);
        i += 2;
    }
    buf[n] = '\0';
    *out = buf;
    return TS_OK;
}

/* RFC 7512 section 2.4: module-name is a name without path or suffix, found where modules live. */
static ts_err resolve_module_name(const char *name, char **out)
{
    static const char *const forms[][2] = {{"", ""}, {"", ".so"}, {"lib", ".so"}};
    size_t n = strlen(name);

    if (n == 0 || n > URI_NAME_MAX || name[0] == '.' ||
        strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._+-") != n) {
        return ts_error_set(TS_ERR_URI,
                            "module-name must be 1 to %d characters of A-Z a-z 0-9 . _ + - "
                            "(use module-path= for a path)",
                            URI_NAME_MAX);
    }
    for (size_t d = 0; d < sizeof module_dirs / sizeof module_dirs[0]; d++) {
        for (size_t f = 0; f < sizeof forms / sizeof forms[0]; f++) {
            char path[512];
            struct stat st;
            snprintf(path, sizeof path, "%s/%s%s%s", module_dirs[d], forms[f][0], name,
                     forms[f][1]);
            if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
                *out = OPENSSL_strdup(path);
                return *out != NULL ? TS_OK
                                    : ts_error_set(TS_ERR_NOMEM, "out of memory parsing the URI");
            }
        }
    }
    return ts_error_set(TS_ERR_MODULE,
                        "module-name=%s: no %s, %s.so or lib%s.so in %s, %s, %s or the other "
                        "module directories (give module-path= instead)",
                        name, name, name, name, module_dirs[0], module_dirs[3], module_dirs[6]);
}

/* module-path, else module-name, else $TESSERA_PKCS11_MODULE. */
ts_err ks_uri_resolve_module(ts_ks_uri *uri, const char *path, const char *name)
{
    if (path != NULL) {
        if (path[0] != '/') {
            return ts_error_set(TS_ERR_URI, "module-path must be an absolute path, not '%s'", path);
        }
        uri->module_path = OPENSSL_strdup(path);
        return uri->module_path != NULL
                   ? TS_OK
                   : ts_error_set(TS_ERR_NOMEM, "out of memory parsing the URI");
    }
    if (name != NULL) {
        return resolve_module_name(name, &uri->module_path);
    }
    const char *env = secure_getenv("TESSERA_PKCS11_MODULE");
    if (env == NULL || env[0] == '\0') {
        return ts_error_set(TS_ERR_URI, "no PKCS#11 module: add module-path=... to the URI or set "
                                        "TESSERA_PKCS11_MODULE");
    }
    if (env[0] != '/' || strlen(env) >= URI_MAX) {
        return ts_error_set(TS_ERR_URI, "TESSERA_PKCS11_MODULE must be an absolute path");
    }
    uri->module_path = OPENSSL_strdup(env);
    return uri->module_path != NULL ? TS_OK
                                    : ts_error_set(TS_ERR_NOMEM, "out of memory parsing the URI");
}

/* pin-source (RFC 7512 section 2.4): a path, or a file: URI (RFC 8089) naming a local file. */
static ts_err read_pin_source(const char *source, char **pin)
{
    char *path = NULL;
    uint8_t *data = NULL;
    size_t len = 0;
    struct stat st;
    ts_err rv;

    *pin = NULL;
    if (strncasecmp(source, "file:", 5) == 0) {
        const char *rest = source + 5;
        if (strncmp(rest, "//localhost/", 12) == 0) {
            rest += 11;
        } else if (strncmp(rest, "//", 2) == 0) {
            rest += 2;
        }
        if (rest[0] != '/') {
            return ts_error_set(TS_ERR_URI, "pin-source %s is not a local file: URI", source);
        }
        rv = ks_uri_decode("pin-source", rest, strlen(rest), &path);
    } else {
        path = OPENSSL_strdup(source);
        rv = path != NULL ? TS_OK : ts_error_set(TS_ERR_NOMEM, "out of memory reading the PIN");
    }
    if (rv != TS_OK) {
        goto done;
    }
    if (path[0] == '\0') {
        rv = ts_error_set(TS_ERR_URI, "pin-source is empty");
        goto done;
    }
    /* Refuse FIFOs and devices before opening: opening a FIFO would block. */
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) {
        rv = ts_error_set(TS_ERR_URI, "pin-source %s is not a readable regular file", path);
        goto done;
    }
    rv = ts_file_read(path, URI_PIN_MAX, &data, &len);
    if (rv != TS_OK) {
        rv = ts_error_prefix(TS_ERR_URI, "pin-source");
        goto done;
    }
    if (len > 0 && data[len - 1] == '\n') {
        len--;
        if (len > 0 && data[len - 1] == '\r') {
            len--;
        }
    }
    if (len == 0 || memchr(data, '\0', len) != NULL) {
        rv = ts_error_set(TS_ERR_URI, "pin-source %s %s", path,
                          len == 0 ? "holds no PIN" : "holds a NUL byte");
        goto done;
    }
    *pin = OPENSSL_malloc(len + 1);
    if (*pin == NULL) {
        rv = ts_error_set(TS_ERR_NOMEM, "out of memory reading the PIN");
        goto done;
    }
    memcpy(*pin, data, len);
    (*pin)[len] = '\0';
done:
    OPENSSL_clear_free(data, len);
    OPENSSL_free(path);
    return rv;
}

/* The PIN: pin-value, else the content of pin-source, else $TESSERA_PIN, else none. */
ts_err ks_uri_resolve_pin(ts_ks_uri *uri, const char *value, const char *source)
{
    if (value != NULL && source != NULL) {
        return ts_error_set(TS_ERR_URI, "the URI has both pin-value and pin-source: use one");
    }
    if (source != NULL) {
        return read_pin_source(source, &uri->pin);
    }
    const char *env = NULL;
    if (value == NULL) {
        env = secure_getenv("TESSERA_PIN");
        if (env == NULL || env[0] == '\0') {
            return TS_OK;
        }
    }
    const char *pin = value != NULL ? value : env;
    size_t len = strlen(pin);
    if (len == 0 || len > URI_PIN_MAX) {
        return ts_error_set(value != NULL ? TS_ERR_URI : TS_ERR_PIN, "%s must be 1 to %d bytes",
                            value != NULL ? "pin-value" : "TESSERA_PIN", URI_PIN_MAX);
    }
    uri->pin = OPENSSL_strdup(pin);
    return uri->pin != NULL ? TS_OK : ts_error_set(TS_ERR_NOMEM, "out of memory reading the PIN");
}
