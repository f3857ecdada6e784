/*
 * tessera init, the checks and the record: the parameters, the instance directory, and the one
 * transaction that stores the instance with the ceremony transcript as its first audit entries.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "common/error_internal.h"
#include "server/init_internal.h"
#include "tessera/ceremony.h"

enum {
    ORG_MAX = 64, /* RFC 5280 ub-organization-name */
    URL_MAX = 512,
    OPERATOR_MAX = 128,
};

static ts_err text_check(const char *what, const char *text, size_t max)
{
    size_t len = strlen(text);
    if (len == 0 || len > max) {
        return ts_error_set(TS_ERR_INVALID, "%s: 1 to %zu characters", what, max);
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c < 0x20 || c == 0x7f) {
            return ts_error_set(TS_ERR_INVALID, "%s: holds a control character", what);
        }
    }
    return TS_OK;
}

static ts_err dup_into(char **out, const char *text)
{
    *out = OPENSSL_strdup(text);
    return *out != NULL ? TS_OK : ts_error_set(TS_ERR_NOMEM, "out of memory");
}

static ts_err country_check(const char *cc, char **out)
{
    char up[3];
    if (strlen(cc) != 2 || !isalpha((unsigned char)cc[0]) || !isalpha((unsigned char)cc[1])) {
        return ts_error_set(TS_ERR_INVALID, "country '%s': two letters (ISO 3166), such as DE", cc);
    }
    up[0] = (char)toupper((unsigned char)cc[0]);
    up[1] = (char)toupper((unsigned char)cc[1]);
    up[2] = '\0';
    return dup_into(out, up);
}

static ts_err url_check(const char *url, char **out)
{
    ts_err rv = text_check("url", url, URL_MAX);
    if (rv != TS_OK) {
        return rv;
    }
    if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0) {
        return ts_error_set(TS_ERR_INVALID, "url '%s': must start with http:// or https://", url);
    }
    for (const char *p = url; *p != '\0'; p++) {
        if (*p == ' ' || *p == '"' || *p == '<' || *p == '>' || *p == '\\') {
            return ts_error_set(TS_ERR_INVALID, "url '%s': character '%c' is not allowed", url, *p);
        }
    }
    rv = dup_into(out, url);
    if (rv == TS_OK) {
        /* BASE/crl/... is appended: no trailing slash. */
        size_t len = strlen(*out);
        while (len > 0 && (*out)[len - 1] == '/') {
            (*out)[--len] = '\0';
        }
    }
    return rv;
}

ts_err srv_init_check(const ts_ca_init_params *p, ts_ca *ca, unsigned *m, unsigned *n)
{
    const char *org = p->org != NULL ? p->org : "Tessera";
    ts_err rv;

    if (p->dir == NULL || p->dir[0] == '\0') {
        return ts_error_set(TS_ERR_INVALID, "no instance directory");
    }
    *m = p->shares_m != 0 ? p->shares_m : 3;
    *n = p->shares_n != 0 ? p->shares_n : 5;
    if (*m < 2 || *m > *n || *n > TS_CA_SHARES_MAX) {
        return ts_error_set(TS_ERR_INVALID, "shares %u/%u: need 2 <= M <= N <= %d", *m, *n,
                            TS_CA_SHARES_MAX);
    }
    rv = text_check("org", org, ORG_MAX);
    if (rv == TS_OK) {
        rv = dup_into(&ca->org, org);
    }
    if (rv == TS_OK && p->country != NULL) {
        rv = country_check(p->country, &ca->country);
    }
    if (rv == TS_OK && p->base_url != NULL) {
        rv = url_check(p->base_url, &ca->base_url);
    }
    if (rv == TS_OK) {
        const char *op = p->operator_name != NULL ? p->operator_name : "";
        rv = text_check("operator", op, OPERATOR_MAX);
        if (rv == TS_OK) {
            snprintf(ca->actor, sizeof ca->actor, "%s", op);
        }
    }
    return rv;
}

ts_err srv_init_dir(const char *dir, char *out, size_t size, int *made)
{
    char real[PATH_MAX];
    struct stat st;
    DIR *d = NULL;
    struct dirent *e;
    ts_err rv = TS_OK;

    *made = 0;
    if (stat(dir, &st) != 0) {
        if (errno != ENOENT) {
            return ts_error_set(TS_ERR_IO, "%s: %s", dir, strerror(errno));
        }
        if (mkdir(dir, 0700) != 0) {
            return ts_error_set(TS_ERR_IO, "cannot make %s: %s", dir, strerror(errno));
        }
        *made = 1;
    } else if (!S_ISDIR(st.st_mode)) {
        return ts_error_set(TS_ERR_EXISTS, "%s exists and is not a directory", dir);
    } else {
        char marker[TS_CA_PATH_MAX];
        if (srv_path(marker, sizeof marker, dir, SRV_INSTANCE_FILE) == TS_OK &&
            stat(marker, &st) == 0) {
            return ts_error_set(TS_ERR_EXISTS, "%s already holds an instance", dir);
        }
        d = opendir(dir);
        if (d == NULL) {
            return ts_error_set(TS_ERR_IO, "%s: %s", dir, strerror(errno));
        }
        while ((e = readdir(d)) != NULL && rv == TS_OK) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) {
                continue;
            }
            rv = ts_error_set(TS_ERR_EXISTS, "%s is not empty (it holds %s)", dir, e->d_name);
        }
        closedir(d);
        if (rv != TS_OK) {
            return rv;
        }
    }
    if (realpath(dir, real) == NULL || strlen(real) >= size) {
        rv = ts_error_set(TS_ERR_IO, "%s: %s", dir, strerror(errno));
        if (*made) {
            (void)rmdir(dir);
            *made = 0;
        }
        return rv;
    }
    snprintf(out, size, "%s", real);
    return TS_OK;
}

ts_err srv_ca_row_fill(X509 *cert, ts_ca_row *row)
{
    ts_cert_row tmp;
    memset(&tmp, 0, sizeof tmp);
    ts_err rv = srv_cert_row_fill(cert, &tmp);
    if (rv == TS_OK) {
        snprintf(row->subject, sizeof row->subject, "%s", tmp.subject);
        snprintf(row->fingerprint, sizeof row->fingerprint, "%s", tmp.fingerprint);
        row->cert_der = tmp.der;
        row->cert_len = tmp.der_len;
        tmp.der = NULL;
        row->created = time(NULL);
    }
    ts_cert_row_clear(&tmp);
    return rv;
}

json_t *srv_cert_json(X509 *cert)
{
    char serial[TS_SERIAL_HEX], fp[TS_FINGERPRINT_HEX];
    ts_ca_row row;
    char *pem = NULL;
    json_t *j = NULL;

    memset(&row, 0, sizeof row);
    if (ts_serial_hex(X509_get0_serialNumber(cert), serial, sizeof serial) == TS_OK &&
        ts_cert_fingerprint(cert, fp) == TS_OK && srv_ca_row_fill(cert, &row) == TS_OK &&
        srv_cert_pem(cert, &pem) == TS_OK) {
        j = srv_json("{s:s, s:s, s:s, s:s}", "subject", row.subject, "serial", serial, "sha256", fp,
                     "pem", pem);
    }
    OPENSSL_free(pem);
    ts_ca_row_clear(&row);
    return j;
}

/* key.generate: the transcript's record of a key made in the ceremony. */
static ts_err audit_key(ts_ca *ca, const char *label, X509 *cert, const char *curve, int backup)
{
    char fp[65];
    ts_err rv = srv_pubkey_fingerprint(X509_get0_pubkey(cert), fp);
    if (rv != TS_OK) {
        return rv;
    }
    return srv_audit(ca, "key.generate", label,
                     srv_json("{s:s, s:s, s:s, s:s, s:b}", "label", label, "curve", curve,
                              "keystore", ts_keystore_uri(ca->ks), "public_key_sha256", fp,
                              "backup", backup));
}

static ts_err insert_ca(ts_ca *ca, int64_t tenant_id, ts_ca_kind kind, const char *label,
                        X509 *cert, const char *tenant)
{
    ts_ca_row row;
    memset(&row, 0, sizeof row);
    row.tenant_id = tenant_id;
    row.kind = kind;
    row.active = 1;
    snprintf(row.key_label, sizeof row.key_label, "%s", label);
    ts_err rv = srv_ca_row_fill(cert, &row);
    if (rv == TS_OK) {
        rv = ts_store_ca_insert(ca->store, &row);
    }
    if (rv == TS_OK) {
        json_t *j = srv_cert_json(cert);
        if (j != NULL) {
            json_object_set_new(j, "kind", json_string(kind == TS_CA_ROOT ? "root" : "issuing"));
            json_object_set_new(j, "tenant", json_string(tenant));
            json_object_set_new(j, "key_label", json_string(label));
        }
        rv = srv_audit(ca, "ca.create", row.subject, j);
    }
    ts_ca_row_clear(&row);
    return rv;
}

static ts_err settings(ts_ca *ca, unsigned m, unsigned n)
{
    char shares[16];
    snprintf(shares, sizeof shares, "%u/%u", m, n);
    const char *pairs[][2] = {
        {SRV_SET_ORG, ca->org},
        {SRV_SET_COUNTRY, ca->country},
        {SRV_SET_URL, ca->base_url},
        {SRV_SET_KEYSTORE, ts_keystore_uri(ca->ks)},
        {SRV_SET_ROOT_STORE, SRV_ROOT_ONLINE},
        {SRV_SET_SHARES, shares},
    };
    ts_err rv = TS_OK;
    for (size_t i = 0; rv == TS_OK && i < sizeof pairs / sizeof pairs[0]; i++) {
        if (pairs[i][1] != NULL) {
            rv = ts_store_setting_set(ca->store, pairs[i][0], pairs[i][1]);
        }
    }
    return rv;
}

static ts_err record(ts_ca *ca, const srv_init_record *rec)
{
    ts_tenant_row tenant;
    char shares[16], wrapped_fp[65], root_fp[65], issuing_fp[65];
    unsigned char md[32];
    unsigned int mdlen = 0;
    ts_err rv;

    snprintf(shares, sizeof shares, "%u/%u", rec->m, rec->n);
    rv =
        srv_audit(ca, "ceremony.begin", ca->dir,
                  srv_json("{s:s, s:s, s:s, s:s, s:s?, s:s?, s:s}", "operator", ca->actor, "dir",
                           ca->dir, "keystore", ts_keystore_uri(ca->ks), "org", ca->org, "country",
                           ca->country, "url", ca->base_url, "store", ts_store_backend(ca->store)));
    if (rv == TS_OK) {
        rv = audit_key(ca, rec->root_label, rec->root_cert, "P-384", 1);
    }
    if (rv == TS_OK) {
        rv = audit_key(ca, rec->issuing_label, rec->issuing_cert, "P-256", 0);
    }
    if (rv == TS_OK) {
        rv = settings(ca, rec->m, rec->n);
    }
    if (rv == TS_OK) {
        rv = insert_ca(ca, 0, TS_CA_ROOT, rec->root_label, rec->root_cert, "");
    }
    if (rv == TS_OK) {
        memset(&tenant, 0, sizeof tenant);
        snprintf(tenant.name, sizeof tenant.name, "%s", TS_DEFAULT_TENANT);
        snprintf(tenant.org, sizeof tenant.org, "%s", ca->org);
        snprintf(tenant.country, sizeof tenant.country, "%s", ca->country ? ca->country : "");
        tenant.created = time(NULL);
        rv = ts_store_tenant_insert(ca->store, &tenant);
    }
    if (rv == TS_OK) {
        rv = srv_audit(ca, "tenant.create", TS_DEFAULT_TENANT,
                       srv_json("{s:s, s:s}", "name", TS_DEFAULT_TENANT, "org", ca->org));
    }
    if (rv == TS_OK) {
        rv = insert_ca(ca, tenant.id, TS_CA_ISSUING, rec->issuing_label, rec->issuing_cert,
                       TS_DEFAULT_TENANT);
    }
    if (rv == TS_OK) {
        rv = srv_profiles_builtin(ca, tenant.id, TS_DEFAULT_TENANT);
    }
    if (rv == TS_OK &&
        EVP_Digest(rec->wrapped, rec->wrapped_len, md, &mdlen, EVP_sha256(), NULL) != 1) {
        rv = ts_error_set_openssl(TS_ERR_CRYPTO, "cannot hash the wrapped root key");
    }
    if (rv == TS_OK) {
        for (unsigned i = 0; i < mdlen; i++) {
            snprintf(wrapped_fp + 2 * i, 3, "%02x", md[i]);
        }
        rv = ts_cert_fingerprint(rec->root_cert, root_fp);
    }
    if (rv == TS_OK) {
        rv = ts_cert_fingerprint(rec->issuing_cert, issuing_fp);
    }
    if (rv == TS_OK) {
        rv = srv_audit(ca, "ceremony.backup", rec->root_label,
                       srv_json("{s:s, s:s, s:s, s:s, s:s}", "shares", shares, "shares_dir",
                                SRV_SHARES_DIR, "wrapped_file", TS_CEREMONY_WRAPPED_FILE,
                                "wrapped_sha256", wrapped_fp, "root_sha256", root_fp));
    }
    if (rv == TS_OK) {
        rv = srv_audit(ca, "ceremony.end", ca->dir,
                       srv_json("{s:s, s:s, s:s}", "operator", ca->actor, "root_sha256", root_fp,
                                "issuing_sha256", issuing_fp));
    }
    return rv;
}

ts_err srv_init_store(ts_ca *ca, const srv_init_record *rec)
{
    ts_ca_row existing;
    ts_err rv = ts_store_open(ca->db_url, &ca->store);

    if (rv != TS_OK) {
        return ts_error_prefix(rv, "cannot open the store");
    }
    /* A database given with --db may already serve an instance. */
    memset(&existing, 0, sizeof existing);
    rv = ts_store_ca_active(ca->store, 0, TS_CA_ROOT, &existing);
    ts_ca_row_clear(&existing);
    if (rv == TS_OK) {
        return ts_error_set(TS_ERR_EXISTS,
                            "the store already holds an instance (it has a root CA)");
    }
    if (rv != TS_ERR_NOT_FOUND) {
        return rv;
    }
    rv = ts_store_begin(ca->store);
    if (rv != TS_OK) {
        return rv;
    }
    rv = record(ca, rec);
    if (rv == TS_OK) {
        rv = ts_store_commit(ca->store);
    } else {
        ts_store_rollback(ca->store);
    }
    return rv;
}
