/*
 * tessera keystore csr: a PKCS#10 certification request (RFC 2986) whose signature is made inside
 * the key store, through the Tessera provider.
 *
 * The subject and subjectAltName parsers are strict: an unknown attribute, a component without
 * '=', an empty value, a control character or a malformed name is refused with a message that
 * names it, before the store is opened.
 */
#include <string.h>
#include <strings.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "cli/cli_internal.h"
#include "common/error_internal.h"
#include "tessera/provider.h"

enum {
    SUBJECT_TEXT_MAX = 4096, /* characters of a --subject */
    SAN_ITEMS_MAX = 64,      /* subjectAltName entries of one request */
    DNS_NAME_MAX = 253,      /* RFC 1035 section 2.3.4, written out without the root dot */
};

/* The attributes a subject may carry, as OpenSSL names them (short or long name). */
static const int subject_nids[] = {
    NID_commonName,
    NID_organizationName,
    NID_organizationalUnitName,
    NID_countryName,
    NID_stateOrProvinceName,
    NID_localityName,
    NID_serialNumber,
    NID_pkcs9_emailAddress,
    NID_domainComponent,
    NID_userId,
    NID_title,
    NID_givenName,
    NID_surname,
    NID_streetAddress,
    NID_postalCode,
    NID_pseudonym,
    NID_dnQualifier,
    NID_organizationIdentifier,
};

static int subject_nid(const char *key)
{
    int nid = OBJ_txt2nid(key);
    for (size_t i = 0; nid != NID_undef && i < sizeof subject_nids / sizeof subject_nids[0]; i++) {
        if (subject_nids[i] == nid) {
            return nid;
        }
    }
    return NID_undef;
}

/*
 * Reads one KEY=VALUE component starting at *pos (just after its '/') into key and value,
 * unescaping the value, and leaves *pos on the next '/' or the end.
 */
static ts_err subject_component(const char *text, size_t *pos, size_t n, char *key, char *value)
{
    size_t i = *pos, k = 0, v = 0;

    while (text[i] != '\0' && text[i] != '=' && text[i] != '/') {
        key[k++] = text[i++];
    }
    key[k] = '\0';
    if (text[i] != '=') {
        return ts_error_set(TS_ERR_INVALID, "subject: component %zu ('%s') has no '='", n, key);
    }
    if (k == 0) {
        return ts_error_set(TS_ERR_INVALID, "subject: component %zu has no attribute name", n);
    }
    i++;
    while (text[i] != '\0' && text[i] != '/') {
        char c = text[i];
        if (c == '\\') {
            c = text[++i];
            if (c == '\0') {
                return ts_error_set(TS_ERR_INVALID, "subject: '%s' ends with a lone backslash",
                                    key);
            }
        }
        if ((unsigned char)c < 0x20 || c == 0x7f) {
            return ts_error_set(TS_ERR_INVALID, "subject: '%s' has a control character", key);
        }
        value[v++] = c;
        i++;
    }
    value[v] = '\0';
    if (v == 0) {
        return ts_error_set(TS_ERR_INVALID, "subject: '%s' has an empty value", key);
    }
    *pos = i;
    return TS_OK;
}

ts_err cli_subject_parse(const char *text, X509_NAME **out)
{
    X509_NAME *name = NULL;
    char *key = NULL, *value = NULL;
    size_t len, pos = 0, n = 0;
    ts_err rv = TS_OK;

    *out = NULL;
    len = strlen(text);
    if (len > SUBJECT_TEXT_MAX) {
        return ts_error_set(TS_ERR_INVALID, "subject: %zu characters, over the %d allowed", len,
                            SUBJECT_TEXT_MAX);
    }
    if (text[0] != '/') {
        return ts_error_set(TS_ERR_INVALID, "subject '%s' does not start with '/' (as /CN=name)",
                            text);
    }
    name = X509_NAME_new();
    key = OPENSSL_malloc(len + 1);
    value = OPENSSL_malloc(len + 1);
    if (name == NULL || key == NULL || value == NULL) {
        rv = ts_error_set(TS_ERR_NOMEM, "out of memory parsing the subject");
        goto done;
    }
    while (text[pos] == '/') {
        pos++;
        n++;
        if (text[pos] == '/' || text[pos] == '\0') {
            rv = ts_error_set(TS_ERR_INVALID, "subject: component %zu is empty", n);
            goto done;
        }
        rv = subject_component(text, &pos, n, key, value);
        if (rv != TS_OK) {
            goto done;
        }
        int nid = subject_nid(key);
        if (nid == NID_undef) {
            rv = ts_error_set(TS_ERR_INVALID,
                              "subject: unknown attribute '%s' (use CN, O, OU, C, ST, L, "
                              "serialNumber, emailAddress, DC, UID, title, GN, SN, street, "
                              "postalCode, pseudonym, dnQualifier, organizationIdentifier)",
                              key);
            goto done;
        }
        /* The string table enforces each attribute's size limits (RFC 5280 appendix A.1). */
        if (X509_NAME_add_entry_by_NID(name, nid, MBSTRING_UTF8, (unsigned char *)value, -1, -1,
                                       0) != 1) {
            rv = ts_error_set_openssl(TS_ERR_INVALID, "subject: '%s=%s' is not a valid value", key,
                                      value);
            goto done;
        }
    }
    *out = name;
    name = NULL;
done:
    X509_NAME_free(name);
    OPENSSL_free(key);
    OPENSSL_free(value);
    return rv;
}

/* --- subjectAltName -------------------------------------------------------------------------- */

static int is_dns_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > DNS_NAME_MAX || s[0] == '.' || s[n - 1] == '.' || strstr(s, "..") != NULL) {
        return 0;
    }
    if (strncmp(s, "*.", 2) == 0) {
        s += 2; /* a wildcard only as the whole left-most label */
    }
    for (; *s != '\0'; s++) {
        char c = *s;
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '-' || c == '.';
        if (!ok) {
            return 0;
        }
    }
    return 1;
}

/* IA5String text without spaces or control characters. */
static int is_visible_ascii(const char *s)
{
    for (; *s != '\0'; s++) {
        if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f) {
            return 0;
        }
    }
    return 1;
}

/* RFC 3986 section 3.1: scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ), then ':'. */
static int is_uri(const char *s)
{
    const char *colon = strchr(s, ':');
    if (!is_visible_ascii(s) || colon == NULL || colon == s || colon[1] == '\0') {
        return 0;
    }
    for (const char *p = s; p < colon; p++) {
        char c = *p;
        int alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
        if (!alpha && (p == s || !((c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.'))) {
            return 0;
        }
    }
    return 1;
}

static int is_email(const char *s)
{
    const char *at = strchr(s, '@');
    return is_visible_ascii(s) && at != NULL && at != s && at[1] != '\0' &&
           strchr(at + 1, '@') == NULL;
}

static ts_err san_item(const char *item, GENERAL_NAMES *names)
{
    static const struct {
        const char *prefix;
        int type;
        int (*check)(const char *);
        const char *what;
    } types[] = {
        {"DNS:", GEN_DNS, is_dns_name, "a DNS name"},
        {"URI:", GEN_URI, is_uri, "a URI with a scheme"},
        {"IP:", GEN_IPADD, NULL, "an IPv4 or IPv6 address"},
        {"email:", GEN_EMAIL, is_email, "an email address"},
    };
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        size_t plen = strlen(types[i].prefix);
        if (strncasecmp(item, types[i].prefix, plen) != 0) {
            continue;
        }
        const char *value = item + plen;
        if (types[i].check != NULL && !types[i].check(value)) {
            return ts_error_set(TS_ERR_INVALID, "--san '%s': '%s' is not %s", item, value,
                                types[i].what);
        }
        GENERAL_NAME *gn = a2i_GENERAL_NAME(NULL, NULL, NULL, types[i].type, value, 0);
        if (gn == NULL) {
            return ts_error_set_openssl(TS_ERR_INVALID, "--san '%s': '%s' is not %s", item, value,
                                        types[i].what);
        }
        if (sk_GENERAL_NAME_push(names, gn) <= 0) {
            GENERAL_NAME_free(gn);
            return ts_error_set(TS_ERR_NOMEM, "out of memory adding '%s'", item);
        }
        return TS_OK;
    }
    return ts_error_set(TS_ERR_INVALID,
                        "--san '%s': use DNS:, URI:, IP: or email: before the value", item);
}

ts_err cli_san_parse(const char *text, GENERAL_NAMES **names)
{
    char *copy = NULL, *save = NULL;
    ts_err rv = TS_OK;

    if (*names == NULL) {
        *names = sk_GENERAL_NAME_new_null();
        if (*names == NULL) {
            return ts_error_set(TS_ERR_NOMEM, "out of memory parsing --san");
        }
    }
    if (text[0] == ',' || text[strlen(text) - 1] == ',' || strstr(text, ",,") != NULL) {
        return ts_error_set(TS_ERR_INVALID, "--san '%s' has an empty item", text);
    }
    copy = OPENSSL_strdup(text);
    if (copy == NULL) {
        return ts_error_set(TS_ERR_NOMEM, "out of memory parsing --san");
    }
    for (char *item = strtok_r(copy, ",", &save); item != NULL; item = strtok_r(NULL, ",", &save)) {
        if (sk_GENERAL_NAME_num(*names) >= SAN_ITEMS_MAX) {
            rv = ts_error_set(TS_ERR_INVALID, "--san: more than %d names", SAN_ITEMS_MAX);
            break;
        }
        rv = san_item(item, *names);
        if (rv != TS_OK) {
            break;
        }
    }
    OPENSSL_free(copy);
    return rv;
}

/* --- the request ----------------------------------------------------------------------------- */

static ts_err add_sans(X509_REQ *req, const GENERAL_NAMES *sans)
{
    STACK_OF(X509_EXTENSION) *exts = NULL;
    ts_err rv = TS_OK;

    /* RFC 2986 section 4.1: extensions travel in the extensionRequest attribute (PKCS#9). */
    if (X509V3_add1_i2d(&exts, NID_subject_alt_name, (void *)sans, 0, X509V3_ADD_DEFAULT) != 1 ||
        X509_REQ_add_extensions(req, exts) != 1) {
        rv = ts_error_set_openssl(TS_ERR_CRYPTO, "cannot add subjectAltName to the request");
    }
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    return rv;
}

static ts_err sign_req(X509_REQ *req, EVP_PKEY *key, const char *md, const char *label)
{
    OSSL_LIB_CTX *libctx = ts_provider_libctx();
    EVP_MD_CTX *mctx = NULL;
    ts_err rv = TS_OK;

    if (libctx == NULL) {
        return TS_ERR_CRYPTO; /* the message says why the provider did not load */
    }
    mctx = EVP_MD_CTX_new();
    if (mctx == NULL || EVP_DigestSignInit_ex(mctx, NULL, md, libctx, NULL, key, NULL) != 1 ||
        X509_REQ_sign_ctx(req, mctx) <= 0) {
        rv = ts_error_set_openssl(TS_ERR_CRYPTO, "cannot sign the request with key '%s'", label);
    }
    EVP_MD_CTX_free(mctx);
    return rv;
}

ts_err cli_csr_make(ts_keystore *ks, const char *label, const X509_NAME *subject,
                    const GENERAL_NAMES *sans, X509_REQ **out)
{
    EVP_PKEY *pub = NULL, *key = NULL;
    X509_REQ *req = NULL;
    const char *md;
    ts_err rv;

    *out = NULL;
    rv = ts_keystore_public_key(ks, label, &pub);
    if (rv != TS_OK) {
        goto done;
    }
    rv = ts_keystore_evp_pkey(ks, label, &key);
    if (rv != TS_OK) {
        goto done;
    }
    /* A digest as strong as the curve: SHA-256 for P-256, SHA-384 for P-384. */
    md = EVP_PKEY_get_bits(pub) > 256 ? "SHA384" : "SHA256";
    req = X509_REQ_new_ex(ts_provider_libctx(), NULL);
    /* RFC 2986 section 4.1: version is 0 (v1). The public half comes as a plain key, so its
     * encoding needs nothing from the provider. */
    if (req == NULL || X509_REQ_set_version(req, 0) != 1 ||
        X509_REQ_set_subject_name(req, subject) != 1 || X509_REQ_set_pubkey(req, pub) != 1) {
        rv = ts_error_set_openssl(TS_ERR_CRYPTO, "cannot build the request");
        goto done;
    }
    if (sans != NULL && sk_GENERAL_NAME_num(sans) > 0) {
        rv = add_sans(req, sans);
        if (rv != TS_OK) {
            goto done;
        }
    }
    rv = sign_req(req, key, md, label);
    if (rv != TS_OK) {
        goto done;
    }
    /* Check the signature the store made before anyone else relies on it. */
    if (X509_REQ_verify(req, pub) != 1) {
        rv = ts_error_set_openssl(TS_ERR_CRYPTO, "the request signed by '%s' does not verify",
                                  label);
        goto done;
    }
    *out = req;
    req = NULL;
done:
    X509_REQ_free(req);
    EVP_PKEY_free(key);
    EVP_PKEY_free(pub);
    return rv;
}

int cli_keystore_cmd_csr(const cli_args *args)
{
    const char *label = cli_opt_value(args, "label");
    const char *const *san_texts = NULL;
    size_t san_count = cli_opt_values(args, "san", &san_texts);
    X509_NAME *subject = NULL;
    GENERAL_NAMES *sans = NULL;
    X509_REQ *req = NULL;
    ts_keystore *ks = NULL;
    BIO *mem = NULL;
    int status = cli_keystore_check_label(args, label);

    if (status != CLI_EXIT_OK) {
        return status;
    }
    if (cli_subject_parse(cli_opt_value(args, "subject"), &subject) != TS_OK) {
        status = cli_usage_error(args, "%s", ts_error_message());
        goto done;
    }
    for (size_t i = 0; i < san_count; i++) {
        if (cli_san_parse(san_texts[i], &sans) != TS_OK) {
            status = cli_usage_error(args, "%s", ts_error_message());
            goto done;
        }
    }
    status = cli_keystore_open(args, &ks);
    if (status != CLI_EXIT_OK) {
        goto done;
    }
    status = CLI_EXIT_FAIL;
    if (cli_csr_make(ks, label, subject, sans, &req) != TS_OK) {
        status = cli_fail();
        goto done;
    }
    mem = BIO_new(BIO_s_mem());
    if (mem == NULL || PEM_write_bio_X509_REQ(mem, req) != 1) {
        ts_error_set_openssl(TS_ERR_CRYPTO, "cannot encode the request");
        status = cli_fail();
        goto done;
    }
    if (cli_write_bio(cli_opt_value(args, "out"), mem, 0644) != TS_OK) {
        status = cli_fail();
        goto done;
    }
    status = CLI_EXIT_OK;
done:
    BIO_free(mem);
    X509_REQ_free(req);
    ts_keystore_free(ks);
    GENERAL_NAMES_free(sans);
    X509_NAME_free(subject);
    return status;
}
