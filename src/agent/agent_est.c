/*
 * Enrollment (RFC 7030 section 4.2.1, simpleenroll) and re-enrollment (section 4.2.2,
 * simplereenroll) of the device identity, and the identity's status.
 */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "agent/agent_rekey.h"
#include "agent/agent_internal.h"
#include "common/error_internal.h"
#include "tessera/est.h"

enum { URL_MAX = 2048, SERVER_MESSAGE_MAX = 300 };

static ts_err est_url(const ts_agent_est_opts *opts, const char *op, char *url, size_t size)
{
    size_t n;

    if (opts->server == NULL) {
        return ts_error_set(TS_ERR_INVALID, "no service URL: give --server https://HOST:PORT");
    }
    n = strlen(opts->server);
    while (n > 0 && opts->server[n - 1] == '/') {
        n--;
    }
    if (opts->tenant != NULL &&
        (opts->tenant[0] == '\0' ||
         strspn(opts->tenant, "abcdefghijklmnopqrstuvwxyz"
                              "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != strlen(opts->tenant))) {
        return ts_error_set(TS_ERR_INVALID, "tenant '%.64s' is not a valid name", opts->tenant);
    }
    /* RFC 7030 section 3.2.2: one optional label between /.well-known/est and the operation. */
    int w = snprintf(url, size, "%.*s/.well-known/est/%s%s%s", (int)n, opts->server,
                     opts->tenant != NULL ? opts->tenant : "", opts->tenant != NULL ? "/" : "", op);
    if (w < 0 || (size_t)w >= size) {
        return ts_error_set(TS_ERR_INVALID, "the service URL is too long");
    }
    return TS_OK;
}

/* The service's text/plain refusal (RFC 7030 section 4.2.3), made safe to print. */
static void server_message(const agent_http_resp *resp, char *out, size_t size)
{
    size_t j = 0;
    for (size_t i = 0; i < resp->len && j + 1 < size; i++) {
        unsigned char c = resp->body[i];
        if (c == '\n' || c == '\r' || c == '\t') {
            c = ' ';
        }
        if (c >= 0x20 && c < 0x7f) {
            out[j++] = (char)c;
        }
    }
    while (j > 0 && out[j - 1] == ' ') {
        j--;
    }
    out[j] = '\0';
}

static ts_err refusal(long status, const agent_http_resp *resp, const char *op)
{
    char msg[SERVER_MESSAGE_MAX];
    ts_err code = TS_ERR_BACKEND;

    server_message(resp, msg, sizeof msg);
    switch (status) {
    case 401:
        code = TS_ERR_AUTH;
        break;
    case 403:
        code = TS_ERR_DENIED;
        break;
    case 400:
    case 404:
        code = TS_ERR_POLICY;
        break;
    case 429:
        code = TS_ERR_LIMIT;
        break;
    default:
        break;
    }
    return ts_error_set(code, "%s refused by the service (HTTP %ld)%s%s", op, status,
                        msg[0] != '\0' ? ": " : "", msg);
}

typedef struct est_exchange {
    const char *op;        /* "simpleenroll" or "simplereenroll" */
    const char *key_label; /* the key to certify */
    const X509_NAME *subject;
    X509 *san_from;
    const char *uid;               /* the CN the new certificate must carry, or NULL */
    const X509_NAME *keep_subject; /* the subject it must carry, or NULL */
    X509 *client_cert;             /* mutual TLS, or NULL */
    STACK_OF(X509) * client_chain;
    const char *client_key_label;
    const char *password;
} est_exchange;

/*
 * The CA certificates (RFC 7030 section 4.1): the reply to an enrollment carries only the new
 * certificate, so the issuing CA comes from here. They serve only as intermediates: the chain
 * must still end at a root of the trust file.
 */
static ts_err fetch_cacerts(const ts_agent_est_opts *opts, X509_STORE *roots,
                            STACK_OF(X509) * *cacerts)
{
    char url[URL_MAX];
    agent_http_req req;
    agent_http_resp resp = {0};
    ts_err rv = est_url(opts, "cacerts", url, sizeof url);

    *cacerts = NULL;
    if (rv != TS_OK) {
        return rv;
    }
    memset(&req, 0, sizeof req);
    req.url = url;
    req.roots = roots;
    req.timeout = opts->timeout;
    req.tls12_only = opts->tls12_only;
    rv = agent_http_request(&req, &resp);
    if (rv == TS_OK && resp.status != 200) {
        rv = refusal(resp.status, &resp, "cacerts");
    }
    if (rv == TS_OK) {
        rv = agent_est_certs_decode(resp.body, resp.len, cacerts);
        if (rv != TS_OK) {
            rv = ts_error_prefix(rv, "cacerts");
        }
    }
    agent_http_resp_clear(&resp);
    return rv;
}

/* Base64 with white space and line breaks (RFC 7030 section 4.1.3) to DER. */
static ts_err base64_decode(const uint8_t *text, size_t len, uint8_t **der, size_t *der_len)
{
    EVP_ENCODE_CTX *ectx = NULL;
    int n = 0, fin = 0;

    *der = NULL;
    *der_len = 0;
    if (len == 0 || len > TS_AGENT_REPLY_MAX) {
        return ts_error_set(TS_ERR_INVALID, "the service's reply is %zu bytes", len);
    }
    ectx = EVP_ENCODE_CTX_new();
    *der = OPENSSL_malloc(len);
    if (ectx == NULL || *der == NULL) {
        EVP_ENCODE_CTX_free(ectx);
        OPENSSL_free(*der);
        *der = NULL;
        return ts_error_set(TS_ERR_NOMEM, "out of memory");
    }
    EVP_DecodeInit(ectx);
    if (EVP_DecodeUpdate(ectx, *der, &n, text, (int)len) < 0 ||
        EVP_DecodeFinal(ectx, *der + n, &fin) != 1) {
        EVP_ENCODE_CTX_free(ectx);
        OPENSSL_free(*der);
        *der = NULL;
        return ts_error_set(TS_ERR_INVALID, "the service's reply is not base64");
    }
    EVP_ENCODE_CTX_free(ectx);
    *der_len = (size_t)(n + fin);
    return TS_OK;
}

/*
 * What the service wants in a CSR (RFC 7030 section 4.5), asked on the connection that will carry
 * the enrollment: *pop is set when it lists challengePassword, i.e. the profile demands proof of
 * possession (docs/est.md). No attributes (204, or 404 from a service without csrattrs) ask for
 * nothing.
 */
static ts_err fetch_csrattrs(const ts_agent_est_opts *opts, agent_http_conn *conn, int *pop)
{
    char url[URL_MAX];
    agent_http_resp resp = {0};
    ts_est_csrattrs_info info;
    uint8_t *der = NULL;
    size_t der_len = 0;
    ts_err rv = est_url(opts, "csrattrs", url, sizeof url);

    *pop = 0;
    if (rv == TS_OK) {
        rv = agent_http_conn_do(conn, url, NULL, NULL, 0, &resp);
    }
    if (rv != TS_OK) {
        return rv;
    }
    if (resp.status == 204 || resp.status == 404) {
        agent_http_resp_clear(&resp);
        return TS_OK;
    }
    if (resp.status != 200) {
        rv = refusal(resp.status, &resp, "csrattrs");
    } else {
        rv = base64_decode(resp.body, resp.len, &der, &der_len);
    }
    if (rv == TS_OK) {
        memset(&info, 0, sizeof info);
        rv = ts_est_csrattrs_parse(der, der_len, &info);
        *pop = rv == TS_OK && info.challenge_password;
    }
    OPENSSL_free(der);
    agent_http_resp_clear(&resp);
    return rv != TS_OK ? ts_error_prefix(rv, "csrattrs") : TS_OK;
}

/* The challengePassword for proof of possession: base64 of the connection's channel binding. */
static ts_err pop_challenge(const agent_http_conn *conn, char **out)
{
    uint8_t binding[AGENT_HTTP_CB_MAX];
    size_t len = 0;
    ts_err rv = agent_http_conn_binding(conn, binding, &len, NULL);

    *out = NULL;
    if (rv == TS_OK) {
        *out = OPENSSL_zalloc(4 * ((len + 2) / 3) + 1);
        if (*out == NULL) {
            rv = ts_error_set(TS_ERR_NOMEM, "out of memory");
        } else {
            /* RFC 4648 with padding, one line: what the service compares (docs/est.md). */
            EVP_EncodeBlock((unsigned char *)*out, binding, (int)len);
        }
    }
    OPENSSL_cleanse(binding, sizeof binding);
    return rv;
}

/*
 * One EST exchange; the new certificate is checked and committed. csrattrs and the enrollment go
 * over one connection, so that a CSR that must prove possession carries that connection's
 * binding; the CSR is made between the two.
 */
/* *unknown is set when the request may have been carried out by the service although this
 * call fails: it was sent and no refusal came back, or a certificate came back and was not
 * committed. */
static ts_err est_run(ts_agent *agent, const ts_agent_est_opts *opts, const est_exchange *x,
                      uint64_t *generation, int *unknown)
{
    char url[URL_MAX];
    X509_STORE *roots = NULL;
    EVP_PKEY *pub = NULL, *client_key = NULL;
    STACK_OF(X509) *certs = NULL, *chain = NULL, *cacerts = NULL;
    X509 *leaf = NULL;
    char *csr = NULL, *challenge = NULL;
    agent_http_req cfg;
    agent_http_conn *conn = NULL;
    agent_http_resp resp = {0};
    int pop = 0;
    ts_err rv = est_url(opts, x->op, url, sizeof url);

    if (rv == TS_OK) {
        rv = agent_trust_load(opts->trust_file, &roots);
    }
    if (rv == TS_OK) {
        rv = ts_keystore_public_key(agent->ks, x->key_label, &pub);
    }
    if (rv == TS_OK && x->client_cert != NULL) {
        rv = ts_keystore_evp_pkey(agent->ks, x->client_key_label, &client_key);
    }
    if (rv == TS_OK) {
        rv = fetch_cacerts(opts, roots, &cacerts);
    }
    if (rv != TS_OK) {
        goto done;
    }
    memset(&cfg, 0, sizeof cfg);
    cfg.roots = roots;
    cfg.tls12_only = opts->tls12_only;
    cfg.client_cert = x->client_cert;
    cfg.client_chain = x->client_chain;
    cfg.client_key = client_key;
    cfg.timeout = opts->timeout;
    rv = agent_http_conn_new(&cfg, &conn);
    if (rv == TS_OK) {
        rv = fetch_csrattrs(opts, conn, &pop);
    }
    if (rv == TS_OK && pop) {
        rv = pop_challenge(conn, &challenge);
    }
    if (rv == TS_OK) {
        rv = agent_csr_make_ex(agent->ks, x->key_label, x->subject, x->san_from, challenge, &csr);
    }
    *unknown = 0;
    if (rv == TS_OK) {
        rv = agent_http_conn_do(conn, url, csr, x->password, pop, &resp);
        *unknown = rv != TS_OK;
    }
    if (rv != TS_OK) {
        goto done;
    }
    if (resp.status != 200) {
        *unknown = resp.status >= 500;
        rv = refusal(resp.status, &resp, x->op);
        goto done;
    }
    *unknown = 1; /* certified: until the commit, the device does not hold it */
    rv = agent_est_certs_decode(resp.body, resp.len, &certs);
    for (int i = 0; rv == TS_OK && i < sk_X509_num(cacerts); i++) {
        if (sk_X509_push(certs, sk_X509_value(cacerts, i)) <= 0) {
            rv = ts_error_set(TS_ERR_NOMEM, "out of memory");
        } else if (X509_up_ref(sk_X509_value(cacerts, i)) != 1) {
            (void)sk_X509_pop(certs);
            rv = ts_error_set(TS_ERR_NOMEM, "out of memory");
        }
    }
    if (rv == TS_OK) {
        rv = agent_est_certs_accept(certs, pub, x->uid, x->keep_subject, roots, &leaf, &chain);
    }
    if (rv == TS_OK) {
        rv = agent_identity_commit(agent->ks, x->key_label, leaf, chain, generation);
    }
    if (rv == TS_OK) {
        *unknown = 0;
    }
done:
    agent_http_conn_free(conn);
    agent_http_resp_clear(&resp);
    OPENSSL_free(csr);
    OPENSSL_free(challenge);
    X509_free(leaf);
    sk_X509_pop_free(chain, X509_free);
    sk_X509_pop_free(certs, X509_free);
    sk_X509_pop_free(cacerts, X509_free);
    EVP_PKEY_free(client_key);
    EVP_PKEY_free(pub);
    X509_STORE_free(roots);
    return rv;
}

ts_err ts_agent_enroll(ts_agent *agent, const ts_agent_est_opts *opts)
{
    char uid[TS_AGENT_UID_MAX + 1];
    X509_NAME *subject = NULL;
    X509 *factory = NULL;
    STACK_OF(X509) *factory_chain = NULL;
    uint8_t *code = NULL;
    size_t code_len = 0;
    char *password = NULL;
    uint64_t generation = 0;
    agent_pointer cur;
    char key_label[TS_LABEL_MAX + 1];
    est_exchange x;
    ts_err rv = ts_agent_uid(agent, uid);

    if (rv != TS_OK) {
        return rv;
    }
    memset(&x, 0, sizeof x);
    if (opts->factory_cert != NULL) {
        rv = agent_pem_certs_load(opts->factory_cert, &factory, &factory_chain);
        if (rv != TS_OK) {
            return ts_error_prefix(rv, "factory certificate");
        }
    } else {
        rv = ts_keystore_object_get(agent->ks, TS_AGENT_CLAIM_LABEL, &code, &code_len);
        if (rv == TS_ERR_NOT_FOUND) {
            return ts_error_set(TS_ERR_STATE, "no claim code is stored and no factory certificate "
                                              "was given: inject a claim code first");
        }
        if (rv != TS_OK) {
            return rv;
        }
        password = OPENSSL_zalloc(code_len + 1);
        if (password == NULL) {
            rv = ts_error_set(TS_ERR_NOMEM, "out of memory");
            goto done;
        }
        memcpy(password, code, code_len);
    }
    subject = X509_NAME_new();
    if (subject == NULL || X509_NAME_add_entry_by_NID(subject, NID_commonName, MBSTRING_UTF8,
                                                      (unsigned char *)uid, -1, -1, 0) != 1) {
        rv = ts_error_set_openssl(TS_ERR_NOMEM, "cannot make the request's subject");
        goto done;
    }
    x.op = "simpleenroll";
    /* The current identity key (a rekey may have replaced "identity"), else the first one. */
    if (agent_pointer_load(agent->ks, &cur) == TS_OK) {
        memcpy(key_label, cur.key, sizeof key_label);
    } else {
        ts_error_clear();
        snprintf(key_label, sizeof key_label, "%s", TS_AGENT_KEY_LABEL);
    }
    x.key_label = key_label;
    x.subject = subject;
    x.uid = uid;
    x.client_cert = factory;
    x.client_chain = factory_chain;
    x.client_key_label = opts->factory_key != NULL ? opts->factory_key : key_label;
    x.password = password;
    int unknown = 0;
    rv = est_run(agent, opts, &x, &generation, &unknown);
    if (rv == TS_OK && password != NULL) {
        /* The code has done its work; keeping the secret gains nothing. A failure here leaves
         * only a spent code behind, so it is not an enrollment failure. */
        if (ts_keystore_delete(agent->ks, TS_AGENT_CLAIM_LABEL) != TS_OK) {
            ts_error_clear();
        }
    }
done:
    X509_NAME_free(subject);
    X509_free(factory);
    sk_X509_pop_free(factory_chain, X509_free);
    OPENSSL_clear_free(code, code_len);
    if (password != NULL) {
        OPENSSL_clear_free(password, code_len + 1);
    }
    return rv;
}

ts_err ts_agent_reenroll(ts_agent *agent, const ts_agent_est_opts *opts, unsigned threshold_days,
                         int force, int *renewed)
{
    agent_pointer cur;
    X509 *cert = NULL;
    STACK_OF(X509) *chain = NULL;
    uint64_t generation = 0;
    char new_key[TS_LABEL_MAX + 1] = "";
    est_exchange x;
    time_t due;
    ts_err rv = agent_identity_load(agent->ks, &cur, &cert, &chain);

    *renewed = 0;
    if (rv == TS_ERR_NOT_FOUND) {
        return ts_error_set(TS_ERR_STATE, "the device is not enrolled: run 'enroll' first");
    }
    if (rv != TS_OK) {
        return rv;
    }
    if (threshold_days == 0) {
        threshold_days = TS_AGENT_THRESHOLD_DEFAULT;
    }
    due = time(NULL) + (time_t)threshold_days * 86400;
    /* A rekey whose answer was lost is finished first, due or not: the service may have
     * revoked the certificate in hand already. */
    int pending = agent_rekey_pending(agent->ks, &cur);
    int rekey = opts->rekey || pending, resumed = 0, unknown = 0;
    if (!force && !pending && X509_cmp_time(X509_get0_notAfter(cert), &due) > 0) {
        goto done; /* not due yet */
    }
    if (rekey) {
        rv = agent_rekey_begin(agent->ks, &cur, new_key, &resumed);
        if (rv != TS_OK) {
            goto done;
        }
    }
    memset(&x, 0, sizeof x);
    x.op = "simplereenroll";
    x.key_label = rekey ? new_key : cur.key;
    x.subject = X509_get_subject_name(cert);
    x.san_from = cert;
    x.keep_subject = X509_get_subject_name(cert);
    x.client_cert = cert;
    x.client_chain = chain;
    x.client_key_label = cur.key;
    rv = est_run(agent, opts, &x, &generation, &unknown);
    *renewed = rv == TS_OK;
    if (rekey) {
        agent_rekey_outcome outcome = rv == TS_OK ? AGENT_REKEY_DONE
                                      : unknown   ? AGENT_REKEY_UNKNOWN
                                                  : AGENT_REKEY_REFUSED;
        if (rv != TS_OK) {
            char msg[512];
            snprintf(msg, sizeof msg, "%s", ts_error_message());
            rv = ts_error_set(rv, "%s%s", msg,
                              outcome == AGENT_REKEY_UNKNOWN
                                  ? "; the outcome is unknown: the new key is kept, and the next "
                                    "reenroll asks for its certificate again"
                                  : "");
        }
        agent_rekey_end(agent->ks, new_key, outcome);
    }
done:
    X509_free(cert);
    sk_X509_pop_free(chain, X509_free);
    return rv;
}

static time_t asn1_time(const ASN1_TIME *t)
{
    struct tm tm;
    if (ASN1_TIME_to_tm(t, &tm) != 1) {
        return 0;
    }
    return timegm(&tm);
}

ts_err ts_agent_status_get(ts_agent *agent, const char *trust_file, ts_agent_status *out)
{
    agent_pointer cur;
    X509 *cert = NULL;
    STACK_OF(X509) *chain = NULL;
    X509_STORE *roots = NULL;
    EVP_PKEY *pub = NULL;
    char cn[TS_AGENT_UID_MAX + 1];
    uint8_t *code = NULL;
    size_t code_len = 0;
    ts_err rv;

    memset(out, 0, sizeof *out);
    rv = ts_agent_uid(agent, out->uid);
    if (rv != TS_OK) {
        return rv;
    }
    rv = ts_keystore_object_get(agent->ks, TS_AGENT_CLAIM_LABEL, &code, &code_len);
    OPENSSL_clear_free(code, code_len);
    if (rv != TS_OK && rv != TS_ERR_NOT_FOUND) {
        return rv;
    }
    out->claim_code = rv == TS_OK;
    rv = agent_identity_load(agent->ks, &cur, &cert, &chain);
    if (rv == TS_ERR_NOT_FOUND) {
        ts_error_clear();
        return TS_OK;
    }
    if (rv != TS_OK) {
        goto done;
    }
    out->enrolled = 1;
    out->generation = cur.generation;
    memcpy(out->key, cur.key, sizeof out->key);
    memcpy(out->cert, cur.cert, sizeof out->cert);
    memcpy(out->chain, cur.chain, sizeof out->chain);
    X509_NAME_oneline(X509_get_subject_name(cert), out->subject, sizeof out->subject);
    X509_NAME_oneline(X509_get_issuer_name(cert), out->issuer, sizeof out->issuer);
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
    char *serial = bn != NULL ? BN_bn2hex(bn) : NULL;
    snprintf(out->serial, sizeof out->serial, "%s", serial != NULL ? serial : "?");
    OPENSSL_free(serial);
    BN_free(bn);
    for (char *p = out->serial; *p != '\0'; p++) {
        *p = (char)tolower((unsigned char)*p);
    }
    out->not_before = asn1_time(X509_get0_notBefore(cert));
    out->not_after = asn1_time(X509_get0_notAfter(cert));
    rv = ts_keystore_public_key(agent->ks, cur.key, &pub);
    if (rv != TS_OK) {
        rv = ts_error_prefix(TS_ERR_CORRUPT, "the identity key");
        goto done;
    }
    if (EVP_PKEY_eq(X509_get0_pubkey(cert), pub) != 1) {
        rv = ts_error_set(TS_ERR_CORRUPT, "the current certificate is not for key '%s'", cur.key);
        goto done;
    }
    rv = agent_name_cn(X509_get_subject_name(cert), cn, sizeof cn);
    if (rv != TS_OK || strcmp(cn, out->uid) != 0) {
        rv = ts_error_set(TS_ERR_CORRUPT, "the current certificate does not name the device %s",
                          out->uid);
        goto done;
    }
    if (trust_file != NULL) {
        rv = agent_trust_load(trust_file, &roots);
        if (rv == TS_OK) {
            rv = agent_cert_verify(cert, chain, roots, NULL);
        }
        out->chain_verified = rv == TS_OK;
    }
done:
    EVP_PKEY_free(pub);
    X509_STORE_free(roots);
    X509_free(cert);
    sk_X509_pop_free(chain, X509_free);
    return rv;
}
