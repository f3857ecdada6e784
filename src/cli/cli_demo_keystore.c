/*
 * tessera demo --keystore: the key store at work, start to finish, on this machine only.
 *
 * A SoftHSM2 token (or, without SoftHSM2, a soft: store) in a fresh temporary directory; a P-256
 * key generated inside it; a CSR signed inside it; a throwaway CA in memory that certifies the
 * key and a demo server; a mutual TLS 1.3 connection over 127.0.0.1 whose client signs with the
 * token key; then everything removed. Each step says what it does; a failure names the step.
 */
#define _XOPEN_SOURCE 700 /* nftw */
#include <ftw.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/rand.h>

#include "cli/cli_demo.h"
#include "cli/cli_internal.h"
#include "common/error_internal.h"
#include "common/text_internal.h"
#include "tessera/provider.h"

#define DEFAULT_SOFTHSM_MODULE "/usr/lib/softhsm/libsofthsm2.so"
#define TOKEN_LABEL            "tessera-demo"
#define KEY_LABEL              "device"
#define DEVICE_SUBJECT         "/CN=tessera-demo-device/O=Tessera Demo"
#define SERVER_SUBJECT         "/CN=localhost/O=Tessera Demo"
#define CA_SUBJECT             "/CN=Tessera Demo CA/O=Tessera Demo"
#define CLIENT_LINE            "hello from the device whose key stays in the store"
#define SERVER_LINE            "hello device, the server saw your certificate"
#define IND                    "      "

enum {
    PIN_BYTES = 8, /* random PINs, shown to no one */
    URI_MAX = 2 * PATH_MAX + 128,
};

typedef struct ks_demo {
    int pkcs11; /* 1: a SoftHSM2 token; 0: a soft: store */
    char dir[PATH_MAX];
    char module[PATH_MAX];
    char uri[URI_MAX]; /* holds the PIN: never printed (ts_keystore_uri() is) */
    char pin[2 * PIN_BYTES + 1];
    char so_pin[2 * PIN_BYTES + 1];
    char *saved_conf; /* SOFTHSM2_CONF before the demo, restored after */
    int conf_set;
    ts_keystore *ks;
    EVP_PKEY *key; /* the store's key through the provider */
    X509_REQ *csr;
    cli_ca *ca;
    X509 *client_cert;
    X509 *server_cert;
    EVP_PKEY *server_key;
} ks_demo;

static void print_name(const char *what, const X509_NAME *name)
{
    char buf[256];
    X509_NAME_oneline(name, buf, sizeof buf);
    printf(IND "%-20s %s\n", what, buf);
}

/* A temporary directory whose path needs no quoting in a URI. */
static ts_err make_workdir(ks_demo *d)
{
    static const char plain[] =
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._/";
    const char *base = getenv("TMPDIR");
    if (base == NULL || base[0] != '/' || strspn(base, plain) != strlen(base)) {
        base = "/tmp";
    }
    int n = snprintf(d->dir, sizeof d->dir, "%s/tessera-demo-XXXXXX", base);
    if (n < 0 || (size_t)n >= sizeof d->dir - 64 || mkdtemp(d->dir) == NULL) {
        d->dir[0] = '\0';
        return ts_error_set(TS_ERR_IO, "cannot make a temporary directory under %s", base);
    }
    return TS_OK;
}

/* SoftHSM2 reads its configuration from SOFTHSM2_CONF: the demo's token lives in its own dir. */
static ts_err softhsm_config(ks_demo *d)
{
    char tokens[PATH_MAX], conf[PATH_MAX];
    char text[PATH_MAX + 128];
    const char *old = getenv("SOFTHSM2_CONF");

    int t = snprintf(tokens, sizeof tokens, "%s/softhsm-tokens", d->dir);
    int c = snprintf(conf, sizeof conf, "%s/softhsm2.conf", d->dir);
    if (t < 0 || (size_t)t >= sizeof tokens || c < 0 || (size_t)c >= sizeof conf) {
        return ts_error_set(TS_ERR_INVALID, "the directory name %s is too long", d->dir);
    }
    if (mkdir(tokens, 0700) != 0) {
        return ts_error_set(TS_ERR_IO, "cannot make %s", tokens);
    }
    int n = snprintf(text, sizeof text,
                     "directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n"
                     "slots.removable = false\n",
                     tokens);
    ts_err rv = cli_write_output(conf, (const uint8_t *)text, (size_t)n, 0600);
    if (rv != TS_OK) {
        return rv;
    }
    if (old != NULL) {
        d->saved_conf = OPENSSL_strdup(old);
    }
    if (setenv("SOFTHSM2_CONF", conf, 1) != 0) {
        return ts_error_set(TS_ERR_IO, "cannot set SOFTHSM2_CONF");
    }
    d->conf_set = 1;
    printf(IND "%-20s %s\n", "configuration", conf);
    return TS_OK;
}

/* --- the steps ------------------------------------------------------------------------------- */

static ts_err step_store(ks_demo *d)
{
    char module_enc[3 * PATH_MAX];
    char hex[2 * TS_KEYSTORE_UID_LEN + 1];
    int n;
    ts_err rv = ts_random_hex(d->pin, PIN_BYTES);

    if (rv == TS_OK) {
        rv = ts_random_hex(d->so_pin, PIN_BYTES);
    }
    if (rv != TS_OK) {
        return rv;
    }
    if (d->pkcs11) {
        printf(IND "%-20s %s\n", "PKCS#11 module", d->module);
        rv = softhsm_config(d);
        if (rv == TS_OK) {
            rv = ts_uri_escape(d->module, module_enc, sizeof module_enc);
        }
        if (rv != TS_OK) {
            return rv;
        }
        n = snprintf(d->uri, sizeof d->uri, "pkcs11:token=%s?module-path=%s&pin-value=%s",
                     TOKEN_LABEL, module_enc, d->pin);
    } else {
        n = snprintf(d->uri, sizeof d->uri, "soft:%s/store?pin-value=%s", d->dir, d->pin);
    }
    if (n < 0 || (size_t)n >= sizeof d->uri) {
        return ts_error_set(TS_ERR_INVALID, "the key-store URI is too long");
    }
    /* Random user and SO PINs: the demo never shows them, and nothing else needs them. */
    rv = ts_keystore_create(d->uri, d->so_pin, &d->ks);
    if (rv != TS_OK) {
        return rv;
    }
    rv = cli_keystore_uid_hex(d->ks, hex);
    if (rv != TS_OK) {
        return rv;
    }
    printf(IND "%-20s %s\n", "store", ts_keystore_uri(d->ks));
    printf(IND "%-20s %s (random, made when the store was created)\n", "uid", hex);
    return TS_OK;
}

/* Asks the module itself: the key must be sensitive, unextractable, and its value unreadable. */
static ts_err check_token_key(const ks_demo *d)
{
    cli_p11_attrs a;
    ts_err rv = cli_p11_key_attributes(d->module, TOKEN_LABEL, d->pin, KEY_LABEL, &a);
    if (rv != TS_OK) {
        return ts_error_prefix(rv, "asking the token about the key");
    }
    printf(IND "the token says:      CKA_SENSITIVE=%s CKA_EXTRACTABLE=%s\n",
           a.sensitive ? "TRUE" : "FALSE", a.extractable ? "TRUE" : "FALSE");
    printf(IND "                     CKA_ALWAYS_SENSITIVE=%s CKA_NEVER_EXTRACTABLE=%s\n",
           a.always_sensitive ? "TRUE" : "FALSE", a.never_extractable ? "TRUE" : "FALSE");
    printf(IND "reading CKA_VALUE:   %s\n",
           a.value_refused ? "refused with CKR_ATTRIBUTE_SENSITIVE" : "NOT refused");
    if (!a.sensitive || a.extractable || !a.never_extractable || !a.value_refused) {
        return ts_error_set(TS_ERR_STATE, "the token would let the private key out");
    }
    return TS_OK;
}

static ts_err step_key(ks_demo *d)
{
    BIGNUM *priv = NULL;
    ts_err rv = ts_keystore_generate(d->ks, KEY_LABEL, TS_CURVE_P256);

    if (rv != TS_OK) {
        return rv;
    }
    rv = cli_keystore_print_list(d->ks, stdout, IND);
    if (rv != TS_OK) {
        return rv;
    }
    if (d->pkcs11) {
        rv = check_token_key(d);
    } else {
        printf(IND "the soft: store keeps the private key encrypted under a key derived from\n" IND
                   "the PIN, in %s/store, and has no call that exports it\n",
               d->dir);
    }
    if (rv != TS_OK) {
        return rv;
    }
    rv = ts_keystore_evp_pkey(d->ks, KEY_LABEL, &d->key);
    if (rv != TS_OK) {
        return rv;
    }
    /* Through the provider OpenSSL sees an ordinary EC key, but not its private value. */
    if (EVP_PKEY_get_bn_param(d->key, OSSL_PKEY_PARAM_PRIV_KEY, &priv) == 1) {
        BN_clear_free(priv);
        return ts_error_set(TS_ERR_STATE, "OpenSSL could read the private value of the key");
    }
    ERR_clear_error();
    printf(IND "through the provider OpenSSL sees a %d-bit %s key and cannot read its private\n" IND
               "value (EVP_PKEY_get_bn_param(\"priv\") fails)\n",
           EVP_PKEY_get_bits(d->key), EVP_PKEY_get0_type_name(d->key));
    return TS_OK;
}

static ts_err step_csr(ks_demo *d)
{
    X509_NAME *subject = NULL;
    GENERAL_NAMES *sans = NULL;
    char hex[2 * TS_KEYSTORE_UID_LEN + 1];
    char san[64 + sizeof hex];
    ts_err rv = cli_keystore_uid_hex(d->ks, hex);

    /* The store's UID names the device in the request, as a URN. */
    snprintf(san, sizeof san, "URI:urn:tessera:device:%s", hex);
    if (rv == TS_OK) {
        rv = cli_subject_parse(DEVICE_SUBJECT, &subject);
    }
    if (rv == TS_OK) {
        rv = cli_san_parse(san, &sans);
    }
    if (rv == TS_OK) {
        rv = cli_csr_make(d->ks, KEY_LABEL, subject, sans, &d->csr);
    }
    if (rv == TS_OK && X509_REQ_verify(d->csr, X509_REQ_get0_pubkey(d->csr)) != 1) {
        rv = ts_error_set_openssl(TS_ERR_AUTH, "the request does not verify");
    }
    if (rv == TS_OK) {
        const X509_ALGOR *alg = NULL;
        const ASN1_OBJECT *oid = NULL;
        X509_REQ_get0_signature(d->csr, NULL, &alg);
        X509_ALGOR_get0(&oid, NULL, NULL, alg);
        print_name("subject", X509_REQ_get_subject_name(d->csr));
        printf(IND "%-20s %s\n", "subjectAltName", san);
        printf(IND "%-20s %s, made inside the store\n", "signature", OBJ_nid2ln(OBJ_obj2nid(oid)));
        printf(IND "%-20s verifies with the public key in the request\n", "check");
    }
    GENERAL_NAMES_free(sans);
    X509_NAME_free(subject);
    return rv;
}

static ts_err step_ca(ks_demo *d)
{
    X509_NAME *server_name = NULL;
    GENERAL_NAMES *server_sans = NULL;
    ts_err rv = cli_ca_new(CA_SUBJECT, &d->ca);

    if (rv == TS_OK) {
        print_name("CA (key in memory)", X509_get_subject_name(cli_ca_cert(d->ca)));
        rv = cli_ca_issue_for_request(d->ca, d->csr, &d->client_cert);
    }
    if (rv == TS_OK) {
        print_name("client certificate", X509_get_subject_name(d->client_cert));
        d->server_key = EVP_EC_gen("P-256");
        if (d->server_key == NULL) {
            rv = ts_error_set_openssl(TS_ERR_CRYPTO, "cannot generate the server key");
        }
    }
    if (rv == TS_OK) {
        rv = cli_subject_parse(SERVER_SUBJECT, &server_name);
    }
    if (rv == TS_OK) {
        rv = cli_san_parse("DNS:localhost,IP:127.0.0.1", &server_sans);
    }
    if (rv == TS_OK) {
        rv = cli_ca_issue(d->ca, server_name, d->server_key, server_sans, 1, &d->server_cert);
    }
    if (rv == TS_OK) {
        print_name("server certificate", X509_get_subject_name(d->server_cert));
    }
    GENERAL_NAMES_free(server_sans);
    X509_NAME_free(server_name);
    return rv;
}

static ts_err tls_outcome(const cli_tls_result *client, const cli_tls_result *server)
{
    if (client->rv != TS_OK || server->rv != TS_OK) {
        return ts_error_set(client->rv != TS_OK ? client->rv : server->rv, "client: %s; server: %s",
                            client->rv != TS_OK ? client->error : "ok",
                            server->rv != TS_OK ? server->error : "ok");
    }
    if (strcmp(server->received, CLIENT_LINE) != 0 || strcmp(client->received, SERVER_LINE) != 0) {
        return ts_error_set(TS_ERR_STATE, "the lines arrived changed");
    }
    return TS_OK;
}

static ts_err step_tls(ks_demo *d)
{
    SSL_CTX *server_ctx = NULL, *client_ctx = NULL;
    cli_tls_server *server = NULL;
    cli_tls_result client_res = {.rv = TS_OK}, server_res = {.rv = TS_OK};
    unsigned short port = 0;
    X509 *ca = cli_ca_cert(d->ca);
    OSSL_LIB_CTX *libctx = ts_provider_libctx();
    ts_err rv;

    if (libctx == NULL) {
        return TS_ERR_CRYPTO;
    }
    /* The client's context is the provider's: its private key operations go to the store. */
    rv = cli_tls_ctx_new(libctx, 0, d->client_cert, d->key, ca, &client_ctx);
    if (rv == TS_OK) {
        rv = cli_tls_ctx_new(NULL, 1, d->server_cert, d->server_key, ca, &server_ctx);
    }
    if (rv == TS_OK) {
        rv = cli_tls_server_start(server_ctx, SERVER_LINE, &server, &port);
    }
    if (rv != TS_OK) {
        goto done;
    }
    printf(IND "server on 127.0.0.1:%u requires a client certificate; TCP_NODELAY on both ends\n",
           port);
    (void)cli_tls_client_run(client_ctx, port, "localhost", CLIENT_LINE, &client_res);
    cli_tls_server_finish(server, &server_res);
    rv = tls_outcome(&client_res, &server_res);
    if (rv != TS_OK) {
        goto done;
    }
    printf(IND "%-20s %s, %s\n", "protocol", client_res.protocol, client_res.cipher);
    printf(IND "%-20s %s\n", "server sees client", server_res.peer_subject);
    printf(IND "%-20s %s\n", "client sees server", client_res.peer_subject);
    printf(IND "%-20s \"%s\"\n", "client -> server", server_res.received);
    printf(IND "%-20s \"%s\"\n", "server -> client", client_res.received);
done:
    SSL_CTX_free(client_ctx);
    SSL_CTX_free(server_ctx);
    return rv;
}

/* --- cleanup and the run --------------------------------------------------------------------- */

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* Frees everything, removes the directory and restores the environment; 0 when all is gone. */
static int demo_cleanup(ks_demo *d)
{
    int ok = 1;
    X509_free(d->client_cert);
    X509_free(d->server_cert);
    EVP_PKEY_free(d->server_key);
    cli_ca_free(d->ca);
    X509_REQ_free(d->csr);
    EVP_PKEY_free(d->key);
    ts_keystore_free(d->ks);
    if (d->dir[0] != '\0') {
        ok = nftw(d->dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS) == 0 && access(d->dir, F_OK) != 0;
    }
    if (d->conf_set) {
        if (d->saved_conf != NULL) {
            setenv("SOFTHSM2_CONF", d->saved_conf, 1);
        } else {
            unsetenv("SOFTHSM2_CONF");
        }
    }
    OPENSSL_free(d->saved_conf);
    OPENSSL_cleanse(d->pin, sizeof d->pin);
    OPENSSL_cleanse(d->so_pin, sizeof d->so_pin);
    OPENSSL_cleanse(d->uri, sizeof d->uri);
    return ok;
}

typedef struct demo_step {
    const char *title;
    ts_err (*run)(ks_demo *d);
} demo_step;

int cli_demo_keystore_run(const cli_args *args)
{
    const demo_step steps[] = {
        {NULL, step_store}, /* titled below: it depends on the backend */
        {"Generating a P-256 key inside the store", step_key},
        {"Making a CSR signed inside the store, and verifying it", step_csr},
        {"Issuing certificates from a throwaway demo CA", step_ca},
        {"Mutual TLS 1.3 over 127.0.0.1, the client's key in the store", step_tls},
    };
    const size_t total = sizeof steps / sizeof steps[0] + 1;
    ks_demo *d = OPENSSL_zalloc(sizeof *d);
    const char *module = getenv("TS_SOFTHSM_MODULE");
    size_t failed = 0;
    ts_err rv;

    if (d == NULL) {
        fprintf(stderr, "tessera: demo: out of memory\n");
        return CLI_EXIT_FAIL;
    }
    snprintf(d->module, sizeof d->module, "%s",
             module != NULL && module[0] != '\0' ? module : DEFAULT_SOFTHSM_MODULE);
    d->pkcs11 = !cli_opt_given(args, "soft") && access(d->module, R_OK) == 0;
    printf("Tessera key-store demo: a key that never leaves its store proves the device's\n"
           "identity in a TLS handshake. Everything stays on this machine.\n");
    rv = make_workdir(d);
    if (rv != TS_OK) {
        fprintf(stderr, "tessera: demo: %s\n", ts_error_message());
        OPENSSL_free(d);
        return CLI_EXIT_FAIL;
    }
    printf("Working in %s (removed at the end).\n", d->dir);
    if (!d->pkcs11 && !cli_opt_given(args, "soft")) {
        printf("\nSoftHSM2 is not installed (no %s; set TS_SOFTHSM_MODULE to\n"
               "point at it): falling back to a soft: store.\n",
               d->module);
    }
    for (size_t i = 0; i < total - 1; i++) {
        const char *title = steps[i].title;
        if (title == NULL) {
            title = d->pkcs11 ? "Creating a SoftHSM2 token" : "Creating a soft: key store";
        }
        printf("\n[%zu/%zu] %s\n", i + 1, total, title);
        fflush(stdout);
        rv = steps[i].run(d);
        if (rv != TS_OK) {
            failed = i + 1;
            fflush(stdout); /* the message lands after what the step printed */
            fprintf(stderr, "tessera: demo: step %zu (%s) failed: %s\n", failed, title,
                    ts_error_message());
            break;
        }
    }
    printf("\n[%zu/%zu] Cleaning up\n", total, total);
    if (!demo_cleanup(d)) {
        fprintf(stderr, "tessera: demo: could not remove %s\n", d->dir);
        failed = failed != 0 ? failed : total;
    } else {
        printf(IND "removed %s%s\n", d->dir, d->conf_set ? " and restored SOFTHSM2_CONF" : "");
    }
    if (failed == 0) {
        printf("\nDone: the %s made a P-256 key, signed a CSR for it, and the key then\n"
               "authenticated the device in a mutual TLS 1.3 handshake, all without leaving it.\n",
               d->pkcs11 ? "SoftHSM2 token" : "soft: store");
    } else {
        printf("\nThe demo stopped at step %zu of %zu; see the message above.\n", failed, total);
    }
    OPENSSL_free(d);
    return failed == 0 ? CLI_EXIT_OK : CLI_EXIT_FAIL;
}
