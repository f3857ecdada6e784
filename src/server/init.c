/*
 * tessera init: the key ceremony that creates an instance.
 *
 * Order, so that a failure at any step leaves nothing behind: the directory and key store, the
 * root (P-384, backup-capable) and default issuing (P-256) keys, their certificates, the root
 * key's wrapped backup and share files, then one store transaction with the settings, tenant,
 * CAs, profiles and the transcript as audit entries, then the service's TLS server certificate
 * (DIR/tls/server.pem) and the first admin with its token, and last DIR/instance.json, which is
 * what makes DIR an instance. Until that file exists, every other command refuses DIR; on failure
 * everything made so far is removed again.
 */
#define _XOPEN_SOURCE 700
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "common/error_internal.h"
#include "common/file_internal.h"
#include "server/init_internal.h"
#include "tessera/ceremony.h"
#include "tessera/commands.h"

#define SOFTHSM_DEFAULT_MODULE "/usr/lib/softhsm/libsofthsm2.so"

typedef struct init_state {
    ts_ca ca; /* dir, actor, store, ks, org, country, base_url */
    int made_dir;
    char made_store_dir[TS_CA_PATH_MAX]; /* a soft: store made outside DIR for --keystore */
    char root_label[TS_LABEL_MAX + 1];
    char issuing_label[TS_LABEL_MAX + 1];
    int made_root, made_issuing, made_tls;
    srv_issuer root;    /* cert, key */
    X509 *issuing_cert; /* the default tenant's */
    uint8_t *wrapped;
    size_t wrapped_len;
    char **shares;
    unsigned m, n;
} init_state;

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path) == 0 || errno == ENOENT ? 0 : -1;
}

ts_err srv_remove_tree(const char *path)
{
    if (nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS) != 0 && errno != ENOENT) {
        return ts_error_set(TS_ERR_IO, "cannot remove %s: %s", path, strerror(errno));
    }
    return TS_OK;
}

/* A fresh random PIN in DIR/name (0600). */
static ts_err pin_file(const char *dir, const char *name, char pin[2 * SRV_PIN_BYTES + 1])
{
    char path[TS_CA_PATH_MAX];
    ts_err rv = srv_path(path, sizeof path, dir, name);
    if (rv == TS_OK) {
        rv = ts_random_hex(pin, SRV_PIN_BYTES);
    }
    if (rv == TS_OK) {
        rv = ts_file_write_atomic(path, (const uint8_t *)pin, strlen(pin), 0600);
    }
    return rv;
}

/* The default key store: a SoftHSM2 token under DIR, with its own configuration. */
static ts_err keystore_softhsm(init_state *s, const char *module, char *uri, size_t size)
{
    char conf[TS_CA_PATH_MAX], tokens[TS_CA_PATH_MAX], text[TS_CA_PATH_MAX + 128];
    char pin[2 * SRV_PIN_BYTES + 1], so_pin[2 * SRV_PIN_BYTES + 1];
    char pin_path[TS_CA_PATH_MAX], enc_pin[TS_CA_PATH_MAX], enc_mod[TS_CA_PATH_MAX];
    ts_err rv = srv_path(conf, sizeof conf, s->ca.dir, SRV_SOFTHSM_CONF);

    if (rv == TS_OK) {
        rv = srv_path(tokens, sizeof tokens, s->ca.dir, SRV_TOKENS_DIR);
    }
    if (rv == TS_OK && mkdir(tokens, 0700) != 0) {
        rv = ts_error_set(TS_ERR_IO, "cannot make %s: %s", tokens, strerror(errno));
    }
    if (rv == TS_OK) {
        int n =
            snprintf(text, sizeof text,
                     "# SoftHSM2 of this Tessera instance: tokens under this directory only.\n"
                     "directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n"
                     "slots.removable = false\n",
                     tokens);
        rv = n > 0 && (size_t)n < sizeof text
                 ? ts_file_write_atomic(conf, (const uint8_t *)text, strlen(text), 0600)
                 : ts_error_set(TS_ERR_INVALID, "path too long: %s", tokens);
    }
    if (rv == TS_OK && setenv("SOFTHSM2_CONF", conf, 1) != 0) {
        rv = ts_error_set(TS_ERR_NOMEM, "cannot set SOFTHSM2_CONF");
    }
    if (rv == TS_OK) {
        rv = pin_file(s->ca.dir, SRV_PIN_FILE, pin);
    }
    if (rv == TS_OK) {
        rv = pin_file(s->ca.dir, SRV_SO_PIN_FILE, so_pin);
    }
    if (rv == TS_OK) {
        rv = srv_path(pin_path, sizeof pin_path, s->ca.dir, SRV_PIN_FILE);
    }
    if (rv == TS_OK) {
        rv = ts_uri_escape(pin_path, enc_pin, sizeof enc_pin);
    }
    if (rv == TS_OK) {
        rv = ts_uri_escape(module, enc_mod, sizeof enc_mod);
    }
    if (rv == TS_OK) {
        int n = snprintf(uri, size, "pkcs11:token=%s?module-path=%s&pin-source=%s", SRV_TOKEN_LABEL,
                         enc_mod, enc_pin);
        rv = n > 0 && (size_t)n < size ? TS_OK : ts_error_set(TS_ERR_INVALID, "URI too long");
    }
    if (rv == TS_OK) {
        rv = ts_keystore_create(uri, so_pin, &s->ca.ks);
    }
    if (rv == TS_OK) {
        rv = srv_softhsm_guard(s->ca.dir);
    }
    OPENSSL_cleanse(pin, sizeof pin);
    OPENSSL_cleanse(so_pin, sizeof so_pin);
    if (rv == TS_OK) {
        s->ca.softhsm_conf = OPENSSL_strdup(conf);
        rv = s->ca.softhsm_conf != NULL ? TS_OK : ts_error_set(TS_ERR_NOMEM, "out of memory");
    }
    return rv;
}

/* Without SoftHSM2: a soft: store in DIR/keystore. */
static ts_err keystore_soft(init_state *s, char *uri, size_t size)
{
    char pin[2 * SRV_PIN_BYTES + 1];
    char path[TS_CA_PATH_MAX], pin_path[TS_CA_PATH_MAX];
    char enc[TS_CA_PATH_MAX], enc_pin[TS_CA_PATH_MAX];
    ts_err rv = srv_path(path, sizeof path, s->ca.dir, SRV_SOFT_DIR);

    if (rv == TS_OK) {
        rv = srv_path(pin_path, sizeof pin_path, s->ca.dir, SRV_PIN_FILE);
    }
    if (rv == TS_OK) {
        rv = pin_file(s->ca.dir, SRV_PIN_FILE, pin);
    }
    OPENSSL_cleanse(pin, sizeof pin);
    if (rv == TS_OK) {
        rv = ts_uri_escape(path, enc, sizeof enc);
    }
    if (rv == TS_OK) {
        rv = ts_uri_escape(pin_path, enc_pin, sizeof enc_pin);
    }
    if (rv == TS_OK) {
        int n = snprintf(uri, size, "soft:%s?pin-source=%s", enc, enc_pin);
        rv = n > 0 && (size_t)n < size ? TS_OK : ts_error_set(TS_ERR_INVALID, "URI too long");
    }
    if (rv == TS_OK) {
        rv = ts_keystore_create(uri, NULL, &s->ca.ks);
    }
    return rv;
}

/* --keystore: an existing store, or a soft: store made when its directory does not exist. */
static ts_err keystore_given(init_state *s, const char *uri)
{
    ts_err rv = ts_keystore_open(uri, &s->ca.ks);
    if (rv == TS_ERR_NO_TOKEN && strncmp(uri, "soft:", 5) == 0) {
        rv = ts_keystore_create(uri, NULL, &s->ca.ks);
        if (rv == TS_OK) {
            /* Its directory, as the store resolved it, to remove on failure. */
            const char *u = ts_keystore_uri(s->ca.ks);
            size_t n = strcspn(u + 5, ";?");
            snprintf(s->made_store_dir, sizeof s->made_store_dir, "%.*s", (int)n, u + 5);
        }
    }
    return rv != TS_OK ? ts_error_prefix(rv, "--keystore") : TS_OK;
}

static ts_err keystore_setup(init_state *s, const char *given)
{
    char uri[3 * TS_CA_PATH_MAX];
    const char *module = getenv("TS_SOFTHSM_MODULE");
    ts_err rv;

    if (given != NULL) {
        rv = keystore_given(s, given);
        snprintf(uri, sizeof uri, "%s", given);
    } else {
        if (module == NULL || module[0] == '\0') {
            module = SOFTHSM_DEFAULT_MODULE;
        }
        rv = access(module, R_OK) == 0 ? keystore_softhsm(s, module, uri, sizeof uri)
                                       : keystore_soft(s, uri, sizeof uri);
    }
    if (rv == TS_OK) {
        s->ca.ks_uri = OPENSSL_strdup(uri);
        rv = s->ca.ks_uri != NULL ? TS_OK : ts_error_set(TS_ERR_NOMEM, "out of memory");
    }
    OPENSSL_cleanse(uri, sizeof uri);
    return rv;
}

/* The root and issuing keys and certificates. */
static ts_err make_cas(init_state *s)
{
    char suffix[9], cn[TS_TEXT_MAX];
    EVP_PKEY *root_pub = NULL, *issuing_pub = NULL;
    ts_err rv = ts_random_hex(suffix, 4);

    if (rv == TS_OK) {
        snprintf(s->root_label, sizeof s->root_label, "root-%s", suffix);
        snprintf(s->issuing_label, sizeof s->issuing_label, "issuing-%s-%s", TS_DEFAULT_TENANT,
                 suffix);
        rv = ts_keystore_generate_ex(s->ca.ks, s->root_label, TS_CURVE_P384, TS_KEY_BACKUP);
        s->made_root = rv == TS_OK;
    }
    if (rv == TS_OK) {
        rv = ts_keystore_generate(s->ca.ks, s->issuing_label, TS_CURVE_P256);
        s->made_issuing = rv == TS_OK;
    }
    if (rv == TS_OK) {
        rv = ts_keystore_public_key(s->ca.ks, s->root_label, &root_pub);
    }
    if (rv == TS_OK) {
        rv = ts_keystore_evp_pkey(s->ca.ks, s->root_label, &s->root.key);
    }
    if (rv == TS_OK) {
        snprintf(cn, sizeof cn, "%s Root CA", s->ca.org);
        rv = srv_ca_cert_make(&s->ca, cn, s->ca.org, s->ca.country, TS_CA_ROOT_DAYS, 1, root_pub,
                              &s->root, &s->root.cert);
    }
    if (rv == TS_OK) {
        rv = ts_keystore_public_key(s->ca.ks, s->issuing_label, &issuing_pub);
    }
    if (rv == TS_OK) {
        snprintf(cn, sizeof cn, "%s %s Issuing CA", s->ca.org, TS_DEFAULT_TENANT);
        rv = srv_ca_cert_make(&s->ca, cn, s->ca.org, s->ca.country, TS_CA_ISSUING_DAYS, 0,
                              issuing_pub, &s->root, &s->issuing_cert);
    }
    EVP_PKEY_free(root_pub);
    EVP_PKEY_free(issuing_pub);
    return rv;
}

/* The instance's name on the shares: DIR's last component when it is short and plain. */
static void instance_name(const char *dir, char name[TS_SHARE_NAME_MAX + 1])
{
    const char *base = strrchr(dir, '/') != NULL ? strrchr(dir, '/') + 1 : dir;
    size_t len = strlen(base);
    name[0] = '\0';
    if (len == 0 || len > TS_SHARE_NAME_MAX ||
        strspn(base, "abcdefghijklmnopqrstuvwxyz"
                     "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != len) {
        return;
    }
    memcpy(name, base, len + 1);
}

/* The wrapped root key in DIR and the share files in DIR/shares. */
static ts_err make_backup(init_state *s, ts_ca_init_result *res)
{
    char name[TS_SHARE_NAME_MAX + 1], date[16], path[TS_CA_PATH_MAX], file[64];
    time_t now = time(NULL);
    struct tm tm;
    ts_err rv;

    instance_name(s->ca.dir, name);
    gmtime_r(&now, &tm);
    strftime(date, sizeof date, "%Y-%m-%d", &tm);
    rv = ts_ceremony_backup(s->ca.ks, s->root_label, s->root.cert, s->m, s->n,
                            name[0] != '\0' ? name : NULL, date, &s->wrapped, &s->wrapped_len,
                            &s->shares);
    if (rv == TS_OK) {
        rv = srv_path(path, sizeof path, s->ca.dir, TS_CEREMONY_WRAPPED_FILE);
    }
    if (rv == TS_OK) {
        rv = ts_file_write_atomic(path, s->wrapped, s->wrapped_len, 0600);
    }
    if (rv == TS_OK) {
        rv = srv_path(res->shares_dir, sizeof res->shares_dir, s->ca.dir, SRV_SHARES_DIR);
    }
    if (rv == TS_OK && mkdir(res->shares_dir, 0700) != 0) {
        rv = ts_error_set(TS_ERR_IO, "cannot make %s: %s", res->shares_dir, strerror(errno));
    }
    for (unsigned i = 0; rv == TS_OK && i < s->n; i++) {
        snprintf(file, sizeof file, "share-%u-of-%u.txt", i + 1, s->n);
        rv = srv_path(path, sizeof path, res->shares_dir, file);
        if (rv == TS_OK) {
            rv = ts_file_write_atomic(path, (const uint8_t *)s->shares[i], strlen(s->shares[i]),
                                      0600);
        }
    }
    return rv;
}

static void init_cleanup(init_state *s)
{
    static const char *const ours[] = {
        SRV_INSTANCE_FILE,
        SRV_DB_FILE,
        SRV_DB_FILE "-wal",
        SRV_DB_FILE "-shm",
        SRV_DB_FILE "-journal",
        SRV_PIN_FILE,
        SRV_SO_PIN_FILE,
        SRV_SOFTHSM_CONF,
        SRV_TOKENS_DIR,
        SRV_TOKENS_KEEP_DIR,
        SRV_SOFT_DIR,
        TS_CEREMONY_WRAPPED_FILE,
        SRV_SHARES_DIR,
        SRV_TLS_DIR,
        NULL,
    };
    char path[TS_CA_PATH_MAX], saved[1024];

    /* The failure that got us here is what the operator must read. */
    snprintf(saved, sizeof saved, "%s", ts_error_message());
    if (s->made_root) {
        srv_key_discard(s->ca.ks, s->root_label);
    }
    if (s->made_issuing) {
        srv_key_discard(s->ca.ks, s->issuing_label);
    }
    if (s->made_tls) {
        srv_key_discard(s->ca.ks, TS_TLS_KEY_LABEL);
    }
    srv_issuing_cache_clear(&s->ca);
    srv_issuer_clear(&s->root);
    ts_keystore_free(s->ca.ks);
    s->ca.ks = NULL;
    ts_store_free(s->ca.store);
    s->ca.store = NULL;
    for (size_t i = 0; ours[i] != NULL; i++) {
        if (srv_path(path, sizeof path, s->ca.dir, ours[i]) == TS_OK) {
            (void)srv_remove_tree(path);
        }
    }
    if (s->made_store_dir[0] != '\0') {
        (void)srv_remove_tree(s->made_store_dir);
    }
    if (s->made_dir) {
        (void)rmdir(s->ca.dir);
    }
    (void)ts_error_set(TS_ERR_INVALID, "%s", saved);
}

static void init_free(init_state *s)
{
    srv_issuing_cache_clear(&s->ca);
    srv_issuer_clear(&s->root);
    X509_free(s->issuing_cert);
    OPENSSL_free(s->wrapped);
    ts_ceremony_texts_free(s->shares, s->n);
    ts_keystore_free(s->ca.ks);
    ts_store_free(s->ca.store);
    if (s->ca.ks_uri != NULL) {
        OPENSSL_clear_free(s->ca.ks_uri, strlen(s->ca.ks_uri));
    }
    OPENSSL_free(s->ca.db_url);
    OPENSSL_free(s->ca.softhsm_conf);
    OPENSSL_free(s->ca.org);
    OPENSSL_free(s->ca.country);
    OPENSSL_free(s->ca.base_url);
}

/* The host of a base URL ("https://user@host:port/path", "http://[::1]/"), into out; empty
 * when there is none. */
static void url_host(const char *url, char *out, size_t size)
{
    const char *start = strstr(url, "://");
    out[0] = '\0';
    if (start == NULL) {
        return;
    }
    start += 3;
    size_t auth = strcspn(start, "/?#");
    const char *at = memchr(start, '@', auth);
    if (at != NULL) {
        auth -= (size_t)(at + 1 - start);
        start = at + 1;
    }
    size_t len = 0;
    if (start[0] == '[') {
        const char *close = memchr(start, ']', auth);
        if (close == NULL) {
            return;
        }
        start++;
        len = (size_t)(close - start);
    } else {
        const char *colon = memchr(start, ':', auth);
        len = colon != NULL ? (size_t)(colon - start) : auth;
    }
    if (len > 0 && len < size) {
        memcpy(out, start, len);
        out[len] = '\0';
    }
}

/* The service's TLS server certificate and the first admin with its token. */
static ts_err init_access(init_state *s, ts_ca_init_result *res)
{
    char host[256];
    const char *names[1];
    size_t count = 0;
    EVP_PKEY *pub = NULL;

    url_host(s->ca.base_url != NULL ? s->ca.base_url : "", host, sizeof host);
    if (host[0] != '\0') {
        names[count++] = host;
    }
    /* A key store given with --keystore may hold the key already: only one made here goes. */
    ts_err rv = ts_keystore_public_key(s->ca.ks, TS_TLS_KEY_LABEL, &pub);
    EVP_PKEY_free(pub);
    s->made_tls = rv == TS_ERR_NOT_FOUND;
    rv = ts_ca_tls_server_cert(&s->ca, names, count);
    if (rv == TS_OK) {
        rv = ts_ca_tls_client_cert(&s->ca); /* the service's MQTT identity */
    }
    if (rv == TS_OK) {
        rv = ts_ca_user_create(&s->ca, NULL, "admin", TS_ROLE_ADMIN, NULL, NULL);
    }
    if (rv == TS_OK) {
        rv = ts_ca_token_create(&s->ca, NULL, "admin", "tessera init", 0, res->admin_token, NULL);
    }
    return rv;
}

ts_err ts_ca_init(const ts_ca_init_params *p, ts_ca_init_result *res)
{
    init_state s;
    char db[TS_CA_PATH_MAX + 16];
    ts_err rv;

    memset(&s, 0, sizeof s);
    memset(res, 0, sizeof *res);
    rv = srv_init_check(p, &s.ca, &s.m, &s.n);
    if (rv == TS_OK) {
        rv = srv_init_dir(p->dir, s.ca.dir, sizeof s.ca.dir, &s.made_dir);
    }
    if (rv != TS_OK) {
        init_free(&s);
        return rv;
    }
    rv = keystore_setup(&s, p->keystore_uri);
    if (rv == TS_OK) {
        rv = make_cas(&s);
    }
    if (rv == TS_OK) {
        rv = make_backup(&s, res);
    }
    if (rv == TS_OK) {
        int n = p->db_url == NULL ? snprintf(db, sizeof db, "sqlite:%s/%s", s.ca.dir, SRV_DB_FILE)
                                  : snprintf(db, sizeof db, "%s", p->db_url);
        rv = n > 0 && (size_t)n < sizeof db ? TS_OK
                                            : ts_error_set(TS_ERR_INVALID, "store URL too long");
    }
    if (rv == TS_OK) {
        s.ca.db_url = OPENSSL_strdup(db);
        rv = s.ca.db_url != NULL ? TS_OK : ts_error_set(TS_ERR_NOMEM, "out of memory");
    }
    if (rv == TS_OK) {
        srv_init_record rec = {.root_label = s.root_label,
                               .issuing_label = s.issuing_label,
                               .root_cert = s.root.cert,
                               .issuing_cert = s.issuing_cert,
                               .wrapped = s.wrapped,
                               .wrapped_len = s.wrapped_len,
                               .m = s.m,
                               .n = s.n};
        rv = srv_init_store(&s.ca, &rec);
    }
    if (rv == TS_OK) {
        rv = init_access(&s, res);
    }
    if (rv == TS_OK) {
        rv = srv_instance_write(s.ca.dir, s.ca.db_url, s.ca.ks_uri, s.ca.softhsm_conf);
    }
    if (rv == TS_OK) {
        rv = ts_cert_fingerprint(s.root.cert, res->root_fingerprint);
    }
    if (rv == TS_OK) {
        rv = ts_cert_fingerprint(s.issuing_cert, res->issuing_fingerprint);
    }
    if (rv != TS_OK) {
        OPENSSL_cleanse(res->admin_token, sizeof res->admin_token);
        init_cleanup(&s);
        init_free(&s);
        return rv;
    }
    res->shares_m = s.m;
    res->shares_n = s.n;
    snprintf(res->keystore_uri, sizeof res->keystore_uri, "%s", ts_keystore_uri(s.ca.ks));
    init_free(&s);
    return TS_OK;
}
