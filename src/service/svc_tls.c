/*
 * TLS of the trust service: the server context (key in the key store, through the Tessera
 * provider), the client-certificate trust store kept in step with the instance's CAs, who a
 * client certificate belongs to, and channel bindings.
 */
#include <pthread.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>

#include "common/error_internal.h"
#include "server/server_internal.h"
#include "service/svc_internal.h"
#include "tessera/pki.h"
#include "tessera/provider.h"

#define SVC_TLS_CHAIN_FILE  "tls/server.pem"
#define SVC_TLS_SESSION_CTX "tessera-serve"

/*
 * TLS 1.2: ECDHE for forward secrecy and AES-GCM (AEAD) only; the RSA pair only for an RSA key.
 * TLS 1.3 keeps OpenSSL's default suites, all of which are AEAD.
 */
#define SVC_TLS12_ECDSA "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384"
#define SVC_TLS12_RSA   "ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384"

enum {
    SVC_TLS_CHAIN_MAX = 8,
    SVC_TLS_SESSION_CACHE = 4096, /* resumable sessions kept per worker */
    SVC_TLS_ISSUERS_MAX = 64,     /* issuing CAs whose tenant a worker remembers */
};

/* An issuing CA seen on a client certificate, and its tenant. */
typedef struct svc_tls_issuer {
    char fingerprint[65];
    ts_tenant_row tenant;
    int64_t ca_id;
} svc_tls_issuer;

/*
 * What the trust store was built from (the SHA-256 over every CA certificate, in order) and the
 * tenants of the issuing CAs seen since: a CA's tenant never changes, and the list is dropped
 * whenever the set of CAs does, so a TLS request costs no database read to find its tenant.
 */
typedef struct svc_tls_state {
    uint8_t digest[32];
    svc_tls_issuer issuers[SVC_TLS_ISSUERS_MAX];
    size_t nissuers;
} svc_tls_state;

static int state_index = -1;
static pthread_once_t state_once = PTHREAD_ONCE_INIT;

static void state_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
    OPENSSL_free(ptr);
}

static void state_setup(void)
{
    state_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, state_free);
}

/* The instance's CA certificates and their digest. */
static ts_err ca_certs(ts_ca *ca, STACK_OF(X509) * *certs, uint8_t digest[32])
{
    ts_err rv = ts_ca_all_certs(ca, certs);
    if (rv != TS_OK) {
        return ts_error_prefix(rv, "cannot read the CA certificates for the TLS trust store");
    }
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int ok = md != NULL && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1;
    for (int i = 0; ok && i < sk_X509_num(*certs); i++) {
        uint8_t one[EVP_MAX_MD_SIZE];
        unsigned len = 0;
        ok = X509_digest(sk_X509_value(*certs, i), EVP_sha256(), one, &len) == 1 &&
             EVP_DigestUpdate(md, one, len) == 1;
    }
    ok = ok && EVP_DigestFinal_ex(md, digest, NULL) == 1;
    EVP_MD_CTX_free(md);
    if (!ok) {
        sk_X509_pop_free(*certs, X509_free);
        *certs = NULL;
        return ts_error_set_openssl(TS_ERR_CRYPTO, "cannot digest the CA certificates");
    }
    return TS_OK;
}

/*
 * A verification store with every CA of the instance, the issuing CAs among them, so a device
 * need not send its issuing CA. Every certificate in it is one this instance made and stores, so
 * each is trusted as it is (X509_V_FLAG_PARTIAL_CHAIN): a client chain is accepted at its issuing
 * CA, and the root's P-384 signature on that CA, which never changes, is not verified again in
 * every handshake.
 */
static ts_err trust_store(STACK_OF(X509) * certs, X509_STORE **out)
{
    X509_STORE *store = X509_STORE_new();
    if (store == NULL) {
        return ts_error_set_openssl(TS_ERR_NOMEM, "cannot make a trust store");
    }
    if (X509_STORE_set_flags(store, X509_V_FLAG_PARTIAL_CHAIN) != 1) {
        X509_STORE_free(store);
        return ts_error_set_openssl(TS_ERR_CRYPTO, "cannot set the trust store's flags");
    }
    for (int i = 0; i < sk_X509_num(certs); i++) {
        if (X509_STORE_add_cert(store, sk_X509_value(certs, i)) != 1) {
            X509_STORE_free(store);
            return ts_error_set_openssl(TS_ERR_CRYPTO, "cannot add a CA to the trust store");
        }
    }
    *out = store;
    return TS_OK;
}

ts_err svc_tls_ctx_refresh(ts_ca *ca, SSL_CTX *ctx)
{
    svc_tls_state *state = SSL_CTX_get_ex_data(ctx, state_index);
    STACK_OF(X509) *certs = NULL;
    uint8_t digest[32];
    X509_STORE *store = NULL;
    ts_err rv = ca_certs(ca, &certs, digest);
    if (rv != TS_OK) {
        return rv;
    }
    if (state != NULL && memcmp(state->digest, digest, sizeof digest) == 0) {
        goto out;
    }
    rv = trust_store(certs, &store);
    if (rv != TS_OK) {
        goto out;
    }
    if (state == NULL) {
        state = OPENSSL_zalloc(sizeof *state);
        if (state == NULL || SSL_CTX_set_ex_data(ctx, state_index, state) != 1) {
            OPENSSL_free(state);
            X509_STORE_free(store);
            rv = ts_error_set(TS_ERR_NOMEM, "out of memory");
            goto out;
        }
    }
    /* The worker is single-threaded and a handshake verifies within one call, so no handshake
     * sees the old store freed under it. */
    SSL_CTX_set_cert_store(ctx, store);
    memcpy(state->digest, digest, sizeof digest);
    state->nissuers = 0;
out:
    sk_X509_pop_free(certs, X509_free);
    return rv;
}

ts_err svc_tls_use_chain_file(SSL_CTX *ctx, const char *path)
{
    BIO *in = BIO_new_file(path, "r");
    if (in == NULL) {
        return ts_error_set_openssl(TS_ERR_NOT_FOUND, "cannot read the certificate file %s", path);
    }
    ts_err rv = TS_OK;
    int n = 0;
    for (; n < SVC_TLS_CHAIN_MAX; n++) {
        X509 *cert = X509_new_ex(ts_provider_libctx(), NULL);
        if (cert == NULL || PEM_read_bio_X509(in, &cert, NULL, NULL) == NULL) {
            X509_free(cert);
            break;
        }
        int ok = n == 0 ? SSL_CTX_use_certificate(ctx, cert) : SSL_CTX_add1_chain_cert(ctx, cert);
        X509_free(cert);
        if (ok != 1) {
            rv = ts_error_set_openssl(TS_ERR_CRYPTO, "cannot use the certificates of %s", path);
            break;
        }
    }
    BIO_free(in);
    if (rv == TS_OK && n == 0) {
        rv = ts_error_set(TS_ERR_CORRUPT, "%s holds no PEM certificate", path);
    }
    /* The end of the file shows up as a PEM error; it is no failure. */
    ERR_clear_error();
    return rv;
}

/* The leaf and its chain from DIR/tls/server.pem. */
static ts_err load_chain(ts_ca *ca, SSL_CTX *ctx)
{
    char path[TS_CA_PATH_MAX];
    ts_err rv = srv_path(path, sizeof path, ca->dir, SVC_TLS_CHAIN_FILE);
    if (rv == TS_OK) {
        rv = svc_tls_use_chain_file(ctx, path);
    }
    return rv == TS_ERR_NOT_FOUND
               ? ts_error_prefix(rv, "the TLS server certificate (tessera init issues it)")
               : rv;
}

ts_err svc_tls_ctx_new(ts_ca *ca, SSL_CTX **out)
{
    *out = NULL;
    pthread_once(&state_once, state_setup);
    if (state_index < 0) {
        return ts_error_set(TS_ERR_BACKEND, "cannot register SSL_CTX ex_data");
    }
    OSSL_LIB_CTX *libctx = ts_provider_libctx();
    if (libctx == NULL) {
        return TS_ERR_BACKEND;
    }
    ts_keystore *ks = NULL;
    EVP_PKEY *key = NULL;
    ts_err rv = ts_ca_keystore(ca, &ks);
    if (rv != TS_OK) {
        return ts_error_prefix(rv, "the TLS key");
    }
    rv = ts_keystore_evp_pkey(ks, TS_TLS_KEY_LABEL, &key);
    if (rv != TS_OK) {
        return ts_error_prefix(rv, "the TLS key \"%s\" in the instance key store",
                               TS_TLS_KEY_LABEL);
    }
    /* The key's operations run in the provider, so the context lives in its library context. */
    SSL_CTX *ctx = SSL_CTX_new_ex(libctx, NULL, TLS_server_method());
    if (ctx == NULL) {
        rv = ts_error_set_openssl(TS_ERR_CRYPTO, "cannot make a TLS context");
        goto out;
    }
    int rsa = EVP_PKEY_is_a(key, "RSA");
    /* No renegotiation (RFC 5746 concerns and a DoS lever), no compression (CRIME). */
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
                                 SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    /*
     * Stateful resumption (a bounded cache per worker), one TLS 1.3 ticket. A stateless ticket is
     * the whole session, client certificate included, encoded, decoded again and encrypted in
     * every full handshake; OpenSSL 3.0 decodes a certificate's key through a decoder chain it
     * builds anew each time, which made ticket sealing the largest single cost of a handshake.
     */
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    SSL_CTX_set_num_tickets(ctx, 1);
    SSL_CTX_sess_set_cache_size(ctx, SVC_TLS_SESSION_CACHE);
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
        SSL_CTX_set_cipher_list(ctx, rsa ? SVC_TLS12_ECDSA ":" SVC_TLS12_RSA : SVC_TLS12_ECDSA) !=
            1 ||
        SSL_CTX_set_session_id_context(ctx, (const unsigned char *)SVC_TLS_SESSION_CTX,
                                       sizeof SVC_TLS_SESSION_CTX - 1) != 1) {
        rv = ts_error_set_openssl(TS_ERR_CRYPTO, "cannot set the TLS policy");
        goto out;
    }
    rv = load_chain(ca, ctx);
    if (rv != TS_OK) {
        goto out;
    }
    if (SSL_CTX_use_PrivateKey(ctx, key) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
        rv = ts_error_set_openssl(TS_ERR_CRYPTO,
                                  "the TLS server certificate does not fit the key \"%s\"",
                                  TS_TLS_KEY_LABEL);
        goto out;
    }
    /* Client certificates are asked for, never required here: the routes that need one say so.
     * One that is sent must verify, or the handshake fails. */
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    rv = svc_tls_ctx_refresh(ca, ctx);
    if (rv != TS_OK) {
        goto out;
    }
    *out = ctx;
    ctx = NULL;
out:
    SSL_CTX_free(ctx);
    EVP_PKEY_free(key);
    return rv;
}

/* The certificate that issued cert: from the verified chain, or on a resumed session (which
 * keeps no chain) from the trust store. X509_free() it. */
static X509 *issuer_of(SSL *ssl, X509 *cert)
{
    STACK_OF(X509) *chain = SSL_get0_verified_chain(ssl);
    if (chain != NULL && sk_X509_num(chain) >= 2) {
        X509 *issuer = sk_X509_value(chain, 1);
        X509_up_ref(issuer);
        return issuer;
    }
    X509_STORE *store = SSL_CTX_get_cert_store(SSL_get_SSL_CTX(ssl));
    X509_STORE_CTX *sctx = X509_STORE_CTX_new();
    X509 *issuer = NULL;
    if (sctx != NULL && X509_STORE_CTX_init(sctx, store, cert, NULL) == 1 &&
        X509_STORE_CTX_get1_issuer(&issuer, sctx, cert) != 1) {
        issuer = NULL;
    }
    X509_STORE_CTX_free(sctx);
    return issuer;
}

/* The tenant of an issuing CA by its fingerprint, remembered by the worker's TLS context. */
static ts_err tenant_of_issuer(svc_request *r, SSL_CTX *ctx, const char *fp)
{
    svc_tls_state *state = SSL_CTX_get_ex_data(ctx, state_index);
    for (size_t i = 0; state != NULL && i < state->nissuers; i++) {
        if (strcmp(state->issuers[i].fingerprint, fp) == 0) {
            r->client_tenant = state->issuers[i].tenant;
            r->client_issuer_id = state->issuers[i].ca_id;
            return TS_OK;
        }
    }
    ts_err rv = ts_ca_tenant_by_issuer(r->ca, fp, &r->client_tenant, &r->client_issuer_id);
    if (rv == TS_OK && state != NULL && state->nissuers < SVC_TLS_ISSUERS_MAX) {
        svc_tls_issuer *e = &state->issuers[state->nissuers++];
        memcpy(e->fingerprint, fp, sizeof e->fingerprint);
        e->tenant = r->client_tenant;
        e->ca_id = r->client_issuer_id;
    }
    return rv;
}

ts_err svc_tls_client_identity(svc_request *r, SSL *ssl)
{
    r->client_cert = NULL;
    r->client_revoked = 0;
    X509 *cert = ssl != NULL ? SSL_get0_peer_certificate(ssl) : NULL;
    if (cert == NULL || SSL_get_verify_result(ssl) != X509_V_OK) {
        return TS_OK;
    }
    X509 *issuer = issuer_of(ssl, cert);
    if (issuer == NULL) {
        return TS_OK;
    }
    char fp[65];
    ts_cert_row row = {0};
    ts_err rv = ts_cert_fingerprint(issuer, fp);
    X509_free(issuer);
    if (rv != TS_OK) {
        return rv;
    }
    rv = tenant_of_issuer(r, SSL_get_SSL_CTX(ssl), fp);
    if (rv == TS_ERR_NOT_FOUND) {
        /* Verified up to the root but not issued by a tenant's CA (an issuing CA's own
         * certificate, say): not a client identity. */
        return TS_OK;
    }
    if (rv != TS_OK) {
        return rv;
    }
    rv = ts_serial_hex(X509_get0_serialNumber(cert), r->client_serial, sizeof r->client_serial);
    if (rv != TS_OK) {
        return rv;
    }
    rv = ts_store_cert_get_by_issuer(ts_ca_store(r->ca), r->client_issuer_id, r->client_serial,
                                     &row);
    if (rv == TS_OK) {
        char own[65];
        rv = ts_cert_fingerprint(cert, own);
        /* Revoked, or not the certificate the store holds under that serial: refused. */
        r->client_revoked =
            rv != TS_OK || row.state != TS_CERT_VALID || strcmp(own, row.fingerprint) != 0;
        rv = TS_OK;
    } else if (rv == TS_ERR_NOT_FOUND) {
        /* The CA issued nothing the store knows under that serial: fail closed. */
        r->client_revoked = 1;
        rv = TS_OK;
    }
    ts_cert_row_clear(&row);
    if (rv == TS_OK) {
        r->client_cert = cert;
    }
    return rv;
}

ts_err svc_tls_channel_binding(SSL *ssl, uint8_t out[SVC_CB_MAX], size_t *len)
{
    *len = 0;
    if (ssl == NULL) {
        return ts_error_set(TS_ERR_STATE, "no TLS connection for a channel binding");
    }
    if (SSL_version(ssl) == TLS1_3_VERSION) {
        /* RFC 9266 section 2: 32 bytes of the exporter with this label and no context. */
        static const char label[] = "EXPORTER-Channel-Binding";
        if (SSL_export_keying_material(ssl, out, 32, label, sizeof label - 1, NULL, 0, 0) != 1) {
            return ts_error_set_openssl(TS_ERR_CRYPTO, "cannot export the tls-exporter binding");
        }
        *len = 32;
        return TS_OK;
    }
    if (SSL_version(ssl) != TLS1_2_VERSION) {
        return ts_error_set(TS_ERR_UNSUPPORTED, "no channel binding for %s", SSL_get_version(ssl));
    }
    /* RFC 5929 section 3.1: tls-unique is the first Finished message of the latest handshake:
     * the client's on a full handshake, the server's own on a resumption. */
    size_t n = SSL_session_reused(ssl) ? SSL_get_finished(ssl, out, SVC_CB_MAX)
                                       : SSL_get_peer_finished(ssl, out, SVC_CB_MAX);
    if (n == 0 || n > SVC_CB_MAX) {
        return ts_error_set(TS_ERR_STATE, "the TLS handshake has no Finished message yet");
    }
    *len = n;
    return TS_OK;
}

SSL *svc_request_ssl(const svc_request *r)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(r->req);
    struct bufferevent *bev = evcon != NULL ? evhttp_connection_get_bufferevent(evcon) : NULL;
    return bev != NULL ? bufferevent_openssl_get_ssl(bev) : NULL;
}
