/* Inside the URI parser (ks_uri.c, ks_uri_resolve.c). */
#ifndef TS_KEYSTORE_KS_URI_INTERNAL_H
#define TS_KEYSTORE_KS_URI_INTERNAL_H

#include <stddef.h>

#include "keystore/keystore_internal.h"

enum {
    URI_MAX = 4096,    /* characters of a whole URI */
    URI_ATTR_MAX = 16, /* attributes in the path or in the query */
    URI_PIN_MAX = 256, /* bytes of a PIN, also of a pin-source file */
    URI_NAME_MAX = 64, /* characters of a module-name */
};

/*
 * RFC 3986 section 2.1 percent-decoding of len bytes into a new string (OPENSSL_free). what names
 * the part in messages. TS_ERR_URI for a bad escape or %00.
 */
ts_err ks_uri_decode(const char *what, const char *in, size_t len, char **out);

/* uri->pin from pin-value, else the file pin-source names, else $TESSERA_PIN; else none. */
ts_err ks_uri_resolve_pin(ts_ks_uri *uri, const char *value, const char *source);

/* uri->module_path from module-path, else module-name, else $TESSERA_PKCS11_MODULE. */
ts_err ks_uri_resolve_module(ts_ks_uri *uri, const char *path, const char *name);

#endif
