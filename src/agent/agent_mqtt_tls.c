/*
 * The agent's TLS client context for the MQTT broker (MOSQ_OPT_SSL_CTX): libmosquitto uses it as
 * given, so every setting that matters is made here, including the broker's host name check.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "agent/agent_mqtt_internal.h"
#include "common/error_internal.h"
#include "tessera/provider.h"

/* TLS 1.2: forward secrecy, ECDSA, AEAD only (the service's suites). TLS 1.3: OpenSSL's. */
#define TLS12_CIPHERS "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384"

ts_err agent_mqtt_ssl_ctx(X509 *cert, STACK_OF(X509) * chain, EVP_PKEY *key, X509_STORE *roots,
                          const char *host, SSL_CTX **out)
{
    OSSL_LIB_CTX *libctx = ts_provider_libctx();
    X509_VERIFY_PARAM *param;
    SSL_CTX *ctx = NULL;
    ts_err rv = TS_OK;

    *out = NULL;
    if (libctx == NULL) {
        return TS_ERR_CRYPTO; /* the message says why */
    }
    ctx = SSL_CTX_new_ex(libctx, NULL, TLS_client_method());
    if (ctx == NULL) {
        return ts_error_set_openssl(TS_ERR_CRYPTO, "cannot make a TLS context");
    }
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
        SSL_CTX_set_cipher_list(ctx, TLS12_CIPHERS) != 1) {
        rv = ts_error_set_openssl(TS_ERR_CRYPTO, "cannot restrict the TLS versions and suites");
        goto done;
    }
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION);
    /* Only the agent's roots: the store replaces the (empty) default one. */
    SSL_CTX_set1_cert_store(ctx, roots);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    param = SSL_CTX_get0_param(ctx);
    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    /* SSL_new copies this into each connection: the broker must be the host dialled. */
    if (X509_VERIFY_PARAM_set1_ip_asc(param, host) != 1) {
        ERR_clear_error();
        if (X509_VERIFY_PARAM_set1_host(param, host, 0) != 1) {
            rv = ts_error_set_openssl(TS_ERR_CRYPTO, "cannot set the broker's name %s", host);
            goto done;
        }
    }
    if (SSL_CTX_use_certificate(ctx, cert) != 1) {
        rv = ts_error_set_openssl(TS_ERR_CRYPTO, "cannot use the device certificate");
        goto done;
    }
    for (int i = 0; i < sk_X509_num(chain); i++) {
        if (SSL_CTX_add1_chain_cert(ctx, sk_X509_value(chain, i)) != 1) {
            rv = ts_error_set_openssl(TS_ERR_CRYPTO, "cannot add the device certificate's chain");
            goto done;
        }
    }
    if (SSL_CTX_use_PrivateKey(ctx, key) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
        rv = ts_error_set_openssl(TS_ERR_CRYPTO,
                                  "the device certificate does not match its key-store key");
        goto done;
    }
    *out = ctx;
    ctx = NULL;
done:
    SSL_CTX_free(ctx);
    return rv;
}

ts_err agent_mqtt_endpoint_parse(const char *text, char host[AGENT_MQTT_HOST_MAX + 1], int *port)
{
    const char *colon, *h = text;
    size_t hlen;
    char *end = NULL;
    long p;

    if (text == NULL || text[0] == '\0') {
        return ts_error_set(TS_ERR_INVALID, "no MQTT endpoint (HOST:PORT)");
    }
    if (text[0] == '[') {
        const char *close = strchr(text, ']');
        if (close == NULL || close[1] != ':') {
            return ts_error_set(TS_ERR_INVALID, "MQTT endpoint '%.100s' is not [ADDRESS]:PORT",
                                text);
        }
        h = text + 1;
        hlen = (size_t)(close - h);
        colon = close + 1;
    } else {
        colon = strrchr(text, ':');
        if (colon == NULL || memchr(text, ':', (size_t)(colon - text)) != NULL) {
            return ts_error_set(TS_ERR_INVALID, "MQTT endpoint '%.100s' is not HOST:PORT", text);
        }
        hlen = (size_t)(colon - text);
    }
    if (hlen == 0 || hlen > AGENT_MQTT_HOST_MAX) {
        return ts_error_set(TS_ERR_INVALID, "MQTT endpoint '%.100s' has no valid host", text);
    }
    for (size_t i = 0; i < hlen; i++) {
        unsigned char ch = (unsigned char)h[i];
        if (ch <= 0x20 || ch >= 0x7f || ch == '/' || ch == '[' || ch == ']') {
            return ts_error_set(TS_ERR_INVALID, "MQTT endpoint '%.100s' has no valid host", text);
        }
    }
    p = strtol(colon + 1, &end, 10);
    if (colon[1] < '0' || colon[1] > '9' || *end != '\0' || p < 1 || p > 65535) {
        return ts_error_set(TS_ERR_INVALID, "MQTT endpoint '%.100s': the port must be 1 to 65535",
                            text);
    }
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    *port = (int)p;
    return TS_OK;
}
