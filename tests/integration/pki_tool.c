/*
 * pki_tool: the PKI library from the command line, without a database, for test_pki_interop.sh.
 *
 *   pki_tool init DIR                       root (P-384) and issuing (P-256) CA keys in a soft:
 *                                           store DIR/ks; DIR/root.pem and DIR/issuing.pem
 *   pki_tool issue DIR PROFILE CSR OUT [VAR] a certificate from a CSR with a built-in profile
 *                                           (VAR: the device UID, or the code for verification);
 *                                           prints the serial in hex
 *   pki_tool crl DIR OUT NUMBER [SERIAL:REASON ...]   a DER CRL (REASON a name, or "none")
 *   pki_tool ocsp DIR REQ RESP [SERIAL=good|SERIAL=revoked:REASON ...]
 *                                           answers a DER OCSP request; other serials unknown
 *   pki_tool profile NAME                   prints a built-in profile's JSON
 *
 * Exit status 0 on success, 1 with the library's message on stderr otherwise.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/bn.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "tessera/keystore.h"
#include "tessera/pki.h"

#define PIN         "1234"
#define BASE_URL    "http://127.0.0.1:8080"
#define REVOKED_AGO 3600

typedef struct ca {
    ts_keystore *ks;
    EVP_PKEY *root_key, *issuing_key;
    X509 *root, *issuing;
} ca;

static int die(const char *what)
{
    fprintf(stderr, "pki_tool: %s: %s\n", what, ts_error_message());
    return 1;
}

static int write_file(const char *path, const uint8_t *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    int ok = f != NULL && fwrite(data, 1, len, f) == len;

    if (f != NULL && fclose(f) != 0) {
        ok = 0;
    }
    if (!ok) {
        fprintf(stderr, "pki_tool: cannot write %s\n", path);
    }
    return ok ? 0 : 1;
}

static uint8_t *read_file(const char *path, size_t max, size_t *len)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf = malloc(max + 1);

    *len = 0;
    if (f == NULL || buf == NULL) {
        fprintf(stderr, "pki_tool: cannot read %s\n", path);
        free(buf);
        if (f != NULL) {
            fclose(f);
        }
        return NULL;
    }
    /* One byte more than the cap, so that the library sees an oversized input as such. */
    *len = fread(buf, 1, max + 1, f);
    fclose(f);
    return buf;
}

static int write_cert(const char *path, X509 *cert)
{
    FILE *f = fopen(path, "w");
    int ok = f != NULL && PEM_write_X509(f, cert);

    if (f != NULL && fclose(f) != 0) {
        ok = 0;
    }
    if (!ok) {
        fprintf(stderr, "pki_tool: cannot write %s\n", path);
    }
    return ok ? 0 : 1;
}

static X509 *read_cert(const char *path)
{
    FILE *f = fopen(path, "r");
    X509 *cert = f != NULL ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;

    if (f != NULL) {
        fclose(f);
    }
    if (cert == NULL) {
        fprintf(stderr, "pki_tool: cannot read %s\n", path);
    }
    return cert;
}

static void ca_free(ca *c)
{
    X509_free(c->root);
    X509_free(c->issuing);
    EVP_PKEY_free(c->root_key);
    EVP_PKEY_free(c->issuing_key);
    ts_keystore_free(c->ks);
}

static int ca_open(const char *dir, ca *c)
{
    char uri[PATH_MAX], path[PATH_MAX];

    memset(c, 0, sizeof *c);
    snprintf(uri, sizeof uri, "soft:%s/ks?pin-value=" PIN, dir);
    if (ts_keystore_open(uri, &c->ks) != TS_OK ||
        ts_keystore_evp_pkey(c->ks, "root", &c->root_key) != TS_OK ||
        ts_keystore_evp_pkey(c->ks, "issuing", &c->issuing_key) != TS_OK) {
        return die("key store");
    }
    snprintf(path, sizeof path, "%s/root.pem", dir);
    c->root = read_cert(path);
    snprintf(path, sizeof path, "%s/issuing.pem", dir);
    c->issuing = read_cert(path);
    return c->root != NULL && c->issuing != NULL ? 0 : 1;
}

static int cmd_init(const char *dir)
{
    char uri[PATH_MAX], path[PATH_MAX];
    uint8_t serial[TS_SERIAL_LEN];
    ts_ca_params p = {0};
    ca c = {0};
    int rc = 1;

    snprintf(uri, sizeof uri, "soft:%s/ks?pin-value=" PIN, dir);
    if (ts_keystore_create(uri, NULL, &c.ks) != TS_OK ||
        ts_keystore_generate(c.ks, "root", TS_CURVE_P384) != TS_OK ||
        ts_keystore_generate(c.ks, "issuing", TS_CURVE_P256) != TS_OK ||
        ts_keystore_evp_pkey(c.ks, "root", &c.root_key) != TS_OK ||
        ts_keystore_evp_pkey(c.ks, "issuing", &c.issuing_key) != TS_OK ||
        ts_serial_random(serial) != TS_OK) {
        rc = die("key store");
        goto cleanup;
    }
    p.common_name = "Tessera Test Root CA";
    p.org = "Tessera Test";
    p.country = "DE";
    p.days = 3650;
    p.path_len = 1;
    p.serial = serial;
    p.subject_key = c.root_key;
    p.issuer_key = c.root_key;
    if (ts_ca_cert_make(&p, &c.root) != TS_OK || ts_serial_random(serial) != TS_OK) {
        rc = die("root certificate");
        goto cleanup;
    }
    p.common_name = "Tessera Test Issuing CA";
    p.days = 1825;
    p.path_len = 0;
    p.subject_key = c.issuing_key;
    p.issuer_cert = c.root;
    p.crl_url = BASE_URL "/crl/root.crl";
    p.ocsp_url = BASE_URL "/ocsp";
    if (ts_ca_cert_make(&p, &c.issuing) != TS_OK) {
        rc = die("issuing certificate");
        goto cleanup;
    }
    snprintf(path, sizeof path, "%s/root.pem", dir);
    rc = write_cert(path, c.root);
    snprintf(path, sizeof path, "%s/issuing.pem", dir);
    rc = rc != 0 ? rc : write_cert(path, c.issuing);
cleanup:
    ca_free(&c);
    return rc;
}

static int cmd_issue(const char *dir, const char *profile, const char *csr_path, const char *out,
                     const char *var)
{
    ca c;
    ts_profile *p = NULL;
    X509_REQ *csr = NULL;
    X509 *cert = NULL;
    uint8_t serial[TS_SERIAL_LEN], *data = NULL;
    size_t len = 0;
    char hex[2 * TS_SERIAL_LEN + 2];
    ts_issue_params ip = {0};
    int rc = ca_open(dir, &c);

    if (rc != 0) {
        goto cleanup;
    }
    data = read_file(csr_path, TS_CSR_MAX, &len);
    if (data == NULL) {
        rc = 1;
        goto cleanup;
    }
    if (ts_profile_builtin(profile, &p) != TS_OK) {
        rc = die("profile");
        goto cleanup;
    }
    if (ts_csr_parse(data, len, &csr) != TS_OK || ts_csr_check(csr, p) != TS_OK) {
        rc = die("CSR refused");
        goto cleanup;
    }
    if (ts_serial_random(serial) != TS_OK) {
        rc = die("serial");
        goto cleanup;
    }
    ip.profile = p;
    ip.csr = csr;
    ip.vars.org = "Tessera Test";
    ip.vars.country = "DE";
    if (strcmp(profile, "verification") == 0) {
        ip.vars.code = var;
    } else {
        ip.vars.device_uid = var;
    }
    ip.serial = serial;
    ip.issuer_cert = c.issuing;
    ip.issuer_key = c.issuing_key;
    ip.crl_url = BASE_URL "/crl/issuing.crl";
    ip.ocsp_url = BASE_URL "/ocsp";
    ip.ca_issuers_url = BASE_URL "/ca/issuing.crt";
    if (ts_cert_issue(&ip, &cert) != TS_OK ||
        ts_serial_hex(X509_get0_serialNumber(cert), hex, sizeof hex) != TS_OK) {
        rc = die("issue");
        goto cleanup;
    }
    rc = write_cert(out, cert);
    if (rc == 0) {
        printf("%s\n", hex);
    }
cleanup:
    X509_free(cert);
    X509_REQ_free(csr);
    ts_profile_free(p);
    free(data);
    ca_free(&c);
    return rc;
}

/* SERIAL (hex) into bytes; 0 on success. */
static int parse_serial(const char *hex, size_t hex_len, uint8_t out[TS_SERIAL_LEN], size_t *len)
{
    char buf[2 * TS_SERIAL_LEN + 2];
    BIGNUM *bn = NULL;
    int ok;

    if (hex_len == 0 || hex_len >= sizeof buf) {
        return 1;
    }
    memcpy(buf, hex, hex_len);
    buf[hex_len] = '\0';
    ok = BN_hex2bn(&bn, buf) == (int)hex_len && BN_num_bytes(bn) <= TS_SERIAL_LEN;
    if (ok) {
        *len = (size_t)BN_bn2bin(bn, out);
    }
    BN_free(bn);
    return ok ? 0 : 1;
}

static int cmd_crl(const char *dir, const char *out, const char *number, int n, char **entries)
{
    ca c;
    ts_revoked *revoked = calloc((size_t)n + 1, sizeof *revoked);
    uint8_t(*serials)[TS_SERIAL_LEN] = calloc((size_t)n + 1, TS_SERIAL_LEN);
    X509_CRL *crl = NULL;
    unsigned char *der = NULL;
    time_t now = time(NULL);
    int rc = ca_open(dir, &c), len;

    for (int i = 0; rc == 0 && i < n; i++) {
        const char *colon = strchr(entries[i], ':');
        revoked[i].serial = serials[i];
        revoked[i].revoked_at = now - REVOKED_AGO;
        revoked[i].reason = -1;
        if (colon == NULL ||
            parse_serial(entries[i], (size_t)(colon - entries[i]), serials[i],
                         &revoked[i].serial_len) != 0 ||
            (strcmp(colon + 1, "none") != 0 &&
             ts_crl_reason_from_name(colon + 1, &revoked[i].reason) != TS_OK)) {
            fprintf(stderr, "pki_tool: bad entry %s (SERIAL:REASON)\n", entries[i]);
            rc = 1;
        }
    }
    if (rc == 0 && ts_crl_make(c.issuing, c.issuing_key, revoked, (size_t)n,
                               strtoull(number, NULL, 10), now, now + 86400, &crl) != TS_OK) {
        rc = die("CRL");
    }
    if (rc == 0) {
        len = i2d_X509_CRL(crl, &der);
        rc = len > 0 ? write_file(out, der, (size_t)len) : 1;
    }
    OPENSSL_free(der);
    X509_CRL_free(crl);
    free(revoked);
    free(serials);
    ca_free(&c);
    return rc;
}

typedef struct answers {
    int n;
    char **entries; /* SERIAL=good | SERIAL=revoked:REASON */
} answers;

static ts_err lookup(void *arg, size_t issuer_index, const ASN1_INTEGER *serial,
                     ts_cert_status *status, time_t *revoked_at, int *reason)
{
    const answers *a = arg;
    char hex[2 * TS_SERIAL_LEN + 2];
    ts_err rv = ts_serial_hex(serial, hex, sizeof hex);

    (void)issuer_index;
    *status = TS_CERT_UNKNOWN;
    for (int i = 0; rv == TS_OK && i < a->n; i++) {
        const char *eq = strchr(a->entries[i], '=');
        if (eq == NULL || (size_t)(eq - a->entries[i]) != strlen(hex) ||
            strncasecmp(a->entries[i], hex, strlen(hex)) != 0) {
            continue;
        }
        if (strcmp(eq + 1, "good") == 0) {
            *status = TS_CERT_GOOD;
        } else if (strncmp(eq + 1, "revoked:", 8) == 0) {
            *status = TS_CERT_REVOKED;
            *revoked_at = time(NULL) - REVOKED_AGO;
            *reason = -1;
            if (strcmp(eq + 9, "none") != 0) {
                rv = ts_crl_reason_from_name(eq + 9, reason);
            }
        }
    }
    return rv;
}

static int cmd_ocsp(const char *dir, const char *req_path, const char *resp_path, int n,
                    char **entries)
{
    ca c;
    answers a = {n, entries};
    uint8_t *req = NULL, *resp = NULL;
    size_t req_len = 0, resp_len = 0;
    int rc = ca_open(dir, &c);

    if (rc == 0) {
        req = read_file(req_path, TS_OCSP_REQUEST_MAX, &req_len);
        rc = req == NULL;
    }
    if (rc == 0) {
        ts_ocsp_issuer issuer = {.cert = c.issuing, .key = c.issuing_key};
        if (ts_ocsp_respond(req, req_len, &issuer, 1, lookup, &a, 0, &resp, &resp_len) != TS_OK) {
            rc = die("OCSP");
        }
    }
    if (rc == 0) {
        rc = write_file(resp_path, resp, resp_len);
    }
    OPENSSL_free(resp);
    free(req);
    ca_free(&c);
    return rc;
}

static int cmd_profile(const char *name)
{
    ts_profile *p = NULL;
    char *json = NULL;

    if (ts_profile_builtin(name, &p) != TS_OK || ts_profile_to_json(p, &json) != TS_OK) {
        ts_profile_free(p);
        return die("profile");
    }
    printf("%s\n", json);
    OPENSSL_free(json);
    ts_profile_free(p);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "init") == 0) {
        return cmd_init(argv[2]);
    }
    if ((argc == 6 || argc == 7) && strcmp(argv[1], "issue") == 0) {
        return cmd_issue(argv[2], argv[3], argv[4], argv[5], argc == 7 ? argv[6] : NULL);
    }
    if (argc >= 5 && strcmp(argv[1], "crl") == 0) {
        return cmd_crl(argv[2], argv[3], argv[4], argc - 5, argv + 5);
    }
    if (argc >= 5 && strcmp(argv[1], "ocsp") == 0) {
        return cmd_ocsp(argv[2], argv[3], argv[4], argc - 5, argv + 5);
    }
    if (argc == 3 && strcmp(argv[1], "profile") == 0) {
        return cmd_profile(argv[2]);
    }
    fprintf(stderr, "usage: pki_tool init|issue|crl|ocsp|profile ... (see the source)\n");
    return 2;
}
