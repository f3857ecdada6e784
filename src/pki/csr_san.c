/* Subject alternative names and subject values against a profile. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "common/error_internal.h"
#include "pki/pki_internal.h"

ts_err ts_pki_name_get(const X509_NAME *name, int nid, char **value)
{
    int idx = X509_NAME_get_index_by_NID(name, nid, -1);
    unsigned char *utf8 = NULL;
    int len;

    *value = NULL;
    if (idx < 0) {
        return TS_OK;
    }
    if (X509_NAME_get_index_by_NID(name, nid, idx) >= 0) {
        return ts_error_set(TS_ERR_POLICY, "the subject has more than one %s",
                            ts_pki_name_of(ts_pki_attr_table, nid) != NULL
                                ? ts_pki_name_of(ts_pki_attr_table, nid)
                                : OBJ_nid2sn(nid));
    }
    len = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, idx)));
    if (len < 0) {
        return ts_error_set_openssl(TS_ERR_INVALID, "a subject value is not a readable string");
    }
    for (int i = 0; i < len; i++) {
        if (utf8[i] < 0x20 || utf8[i] == 0x7f) {
            OPENSSL_free(utf8);
            return ts_error_set(TS_ERR_POLICY, "the subject's %s holds a control character",
                                OBJ_nid2sn(nid));
        }
    }
    if (len == 0) {
        OPENSSL_free(utf8);
        return ts_error_set(TS_ERR_POLICY, "the subject's %s is empty", OBJ_nid2sn(nid));
    }
    *value = (char *)utf8;
    return TS_OK;
}

ts_err ts_pki_csr_sans(X509_REQ *csr, GENERAL_NAMES **sans)
{
    STACK_OF(X509_EXTENSION) *exts = X509_REQ_get_extensions(csr);
    int idx;
    ts_err rv = TS_OK;

    *sans = NULL;
    if (exts == NULL) {
        return ts_error_set_openssl(TS_ERR_INVALID, "the CSR's extension request does not parse");
    }
    idx = X509v3_get_ext_by_NID(exts, NID_subject_alt_name, -1);
    if (idx >= 0) {
        *sans = X509V3_EXT_d2i(sk_X509_EXTENSION_value(exts, idx));
        if (*sans == NULL) {
            rv = ts_error_set_openssl(TS_ERR_INVALID, "the CSR's subjectAltName does not parse");
        }
    }
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    return rv;
}

static const char *gen_type_name(int type)
{
    switch (type) {
    case GEN_OTHERNAME:
        return "otherName";
    case GEN_EMAIL:
        return "email";
    case GEN_DNS:
        return "dns";
    case GEN_X400:
        return "x400Address";
    case GEN_DIRNAME:
        return "directoryName";
    case GEN_EDIPARTY:
        return "ediPartyName";
    case GEN_URI:
        return "uri";
    case GEN_IPADD:
        return "ip";
    case GEN_RID:
        return "registeredID";
    default:
        return "unknown";
    }
}

static void allowed_types(const ts_profile *p, char *buf, size_t size)
{
    size_t used = 0;

    buf[0] = '\0';
    for (size_t i = 0; ts_pki_san_type_table[i].name != NULL; i++) {
        if ((p->san_types & (unsigned)ts_pki_san_type_table[i].value) == 0) {
            continue;
        }
        int n = snprintf(buf + used, size - used, "%s%s", used ? ", " : "",
                         ts_pki_san_type_table[i].name);
        if (n < 0 || (size_t)n >= size - used) {
            return;
        }
        used += (size_t)n;
    }
}

/* An IA5String SAN value: printable ASCII, not empty. */
static ts_err ia5_text(const ASN1_IA5STRING *s, const char *type, char *buf, size_t size)
{
    int len = ASN1_STRING_length(s);
    const unsigned char *d = ASN1_STRING_get0_data(s);

    if (len <= 0 || (size_t)len >= size) {
        return ts_error_set(TS_ERR_POLICY, "a %s SAN is empty or longer than %zu characters", type,
                            size - 1);
    }
    for (int i = 0; i < len; i++) {
        if (d[i] <= 0x20 || d[i] >= 0x7f) {
            return ts_error_set(TS_ERR_POLICY,
                                "a %s SAN holds a character outside printable "
                                "ASCII",
                                type);
        }
    }
    memcpy(buf, d, (size_t)len);
    buf[len] = '\0';
    return TS_OK;
}

static int suffix_match(const char *name, const char *suffix)
{
    size_t n = strlen(name), s = strlen(suffix);

    if (n == s) {
        return strcasecmp(name, suffix) == 0;
    }
    return n > s && name[n - s - 1] == '.' && strcasecmp(name + n - s, suffix) == 0;
}

static ts_err check_dns(const char *dns, const ts_profile *p)
{
    if (strncmp(dns, "*.", 2) == 0 && !p->san_wildcards) {
        return ts_error_set(TS_ERR_POLICY, "wildcard DNS name %s is not allowed by profile '%s'",
                            dns, p->name);
    }
    if (!ts_pki_dns_name_ok(dns, p->san_wildcards)) {
        return ts_error_set(TS_ERR_POLICY, "SAN DNS name '%s' is not a valid host name", dns);
    }
    if (p->dns_suffix_count == 0) {
        return TS_OK;
    }
    for (size_t i = 0; i < p->dns_suffix_count; i++) {
        if (suffix_match(dns, p->dns_suffixes[i])) {
            return TS_OK;
        }
    }
    return ts_error_set(TS_ERR_POLICY,
                        "SAN DNS name %s is outside the domains of profile '%s' "
                        "(%s%s)",
                        dns, p->name, p->dns_suffixes[0], p->dns_suffix_count > 1 ? ", ..." : "");
}

static ts_err check_one(const GENERAL_NAME *gen, const ts_profile *p)
{
    char text[512], allowed[64];
    int bit = ts_pki_name_value(ts_pki_san_type_table, gen_type_name(gen->type));
    ts_err rv;

    if (bit < 0 || (p->san_types & (unsigned)bit) == 0) {
        allowed_types(p, allowed, sizeof allowed);
        return ts_error_set(TS_ERR_POLICY,
                            "SAN type %s is not allowed by profile '%s' (allowed: "
                            "%s)",
                            gen_type_name(gen->type), p->name, allowed);
    }
    switch (gen->type) {
    case GEN_DNS:
        rv = ia5_text(gen->d.dNSName, "dns", text, 254);
        return rv != TS_OK ? rv : check_dns(text, p);
    case GEN_IPADD:
        if (ASN1_STRING_length(gen->d.iPAddress) != 4 &&
            ASN1_STRING_length(gen->d.iPAddress) != 16) {
            return ts_error_set(TS_ERR_POLICY, "an IP address SAN has %d bytes, not 4 or 16",
                                ASN1_STRING_length(gen->d.iPAddress));
        }
        return TS_OK;
    case GEN_EMAIL:
        rv = ia5_text(gen->d.rfc822Name, "email", text, 255);
        if (rv == TS_OK && (strchr(text, '@') == NULL || text[0] == '@' ||
                            strchr(text, '@') != strrchr(text, '@') ||
                            !ts_pki_dns_name_ok(strchr(text, '@') + 1, 0))) {
            rv = ts_error_set(TS_ERR_POLICY, "email SAN '%s' is not local@domain", text);
        }
        return rv;
    case GEN_URI:
        rv = ia5_text(gen->d.uniformResourceIdentifier, "uri", text, sizeof text);
        if (rv == TS_OK && (strchr(text, ':') == NULL || text[0] == ':')) {
            rv = ts_error_set(TS_ERR_POLICY, "URI SAN '%s' has no scheme", text);
        }
        return rv;
    default:
        return ts_error_set(TS_ERR_POLICY, "SAN type %s is not supported",
                            gen_type_name(gen->type));
    }
}

ts_err ts_pki_sans_allowed(const GENERAL_NAMES *sans, const ts_profile *p)
{
    int n = sans != NULL ? sk_GENERAL_NAME_num(sans) : 0;

    if (n == 0) {
        if (p->san_policy == TS_SAN_REQUIRED) {
            return ts_error_set(TS_ERR_POLICY, "profile '%s' requires a subject alternative name",
                                p->name);
        }
        return TS_OK;
    }
    if (p->san_policy == TS_SAN_FORBIDDEN) {
        return ts_error_set(TS_ERR_POLICY, "profile '%s' forbids subject alternative names",
                            p->name);
    }
    if (n > TS_SAN_MAX) {
        return ts_error_set(TS_ERR_POLICY,
                            "%d subject alternative names, more than the %d "
                            "allowed",
                            n, TS_SAN_MAX);
    }
    for (int i = 0; i < n; i++) {
        ts_err rv = check_one(sk_GENERAL_NAME_value(sans, i), p);
        if (rv != TS_OK) {
            return rv;
        }
    }
    return TS_OK;
}

ts_err ts_pki_cn_in_sans(const X509_NAME *name, const GENERAL_NAMES *sans)
{
    char *cn = NULL;
    ASN1_OCTET_STRING *ip = NULL;
    int found = 0;
    ts_err rv = ts_pki_name_get(name, NID_commonName, &cn);

    if (rv != TS_OK || cn == NULL) {
        return rv;
    }
    ip = a2i_IPADDRESS(cn);
    if (ip == NULL) {
        ERR_clear_error(); /* a host name, not an address */
    }
    for (int i = 0; !found && sans != NULL && i < sk_GENERAL_NAME_num(sans); i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(sans, i);
        if (g->type == GEN_DNS) {
            found =
                (size_t)ASN1_STRING_length(g->d.dNSName) == strlen(cn) &&
                strncasecmp((const char *)ASN1_STRING_get0_data(g->d.dNSName), cn, strlen(cn)) == 0;
        } else if (g->type == GEN_IPADD && ip != NULL) {
            found = ASN1_OCTET_STRING_cmp(g->d.iPAddress, ip) == 0;
        }
    }
    if (!found) {
        rv = ts_error_set(TS_ERR_POLICY,
                          "the subject CN %s is not among the subject alternative "
                          "names",
                          cn);
    }
    ASN1_OCTET_STRING_free(ip);
    OPENSSL_free(cn);
    return rv;
}
