/* Certificate profiles: name tables, built-ins and the rules that tie fields together. */
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/objects.h>

#include "common/error_internal.h"
#include "pki/pki_internal.h"
#include "tessera/command.h"

const ts_pki_name ts_pki_kind_table[] = {
    {"device", TS_PROFILE_DEVICE},
    {"server", TS_PROFILE_SERVER},
    {"firmware-signer", TS_PROFILE_FIRMWARE_SIGNER},
    {"verification", TS_PROFILE_VERIFICATION},
    {"command-signer", TS_PROFILE_COMMAND_SIGNER},
    {"client", TS_PROFILE_CLIENT},
    {NULL, 0},
};

/* In canonical order: ts_profile_to_json() writes key types in this order. */
const ts_pki_name ts_pki_keytype_table[] = {
    {"P-256", TS_KEYTYPE_P256},
    {"P-384", TS_KEYTYPE_P384},
    {"P-521", TS_KEYTYPE_P521},
    {"RSA-2048+", TS_KEYTYPE_RSA2048},
    {"RSA-3072+", TS_KEYTYPE_RSA3072},
    {"RSA-4096+", TS_KEYTYPE_RSA4096},
    {NULL, 0},
};

const char *const ts_pki_digest_names[] = {"SHA256", "SHA384", "SHA512"};

const ts_pki_name ts_pki_digest_table[] = {
    {"SHA-256", 0},
    {"SHA-384", 1},
    {"SHA-512", 2},
    {NULL, 0},
};

/* RFC 5280 section 4.2.1.3 names; keyCertSign and cRLSign are known so that the refusal can
 * name them. */
const ts_pki_name ts_pki_ku_table[] = {
    {"digitalSignature", KU_DIGITAL_SIGNATURE},
    {"nonRepudiation", KU_NON_REPUDIATION},
    {"keyEncipherment", KU_KEY_ENCIPHERMENT},
    {"dataEncipherment", KU_DATA_ENCIPHERMENT},
    {"keyAgreement", KU_KEY_AGREEMENT},
    {"keyCertSign", KU_KEY_CERT_SIGN},
    {"cRLSign", KU_CRL_SIGN},
    {NULL, 0},
};

/* RFC 5280 section 4.2.1.12 purposes. The command-signing purpose has no NID of its own in
 * OpenSSL: it gets one at run time (eku_command_nid()), and the lookups below name it. */
#define EKU_COMMAND_NAME "tesseraCommandSigning"

const ts_pki_name ts_pki_eku_table[] = {
    {"serverAuth", NID_server_auth},
    {"clientAuth", NID_client_auth},
    {"codeSigning", NID_code_sign},
    {"emailProtection", NID_email_protect},
    {"timeStamping", NID_time_stamp},
    {"OCSPSigning", NID_OCSP_sign},
    {NULL, 0},
};

const ts_pki_name ts_pki_attr_table[] = {
    {"C", NID_countryName},
    {"ST", NID_stateOrProvinceName},
    {"L", NID_localityName},
    {"O", NID_organizationName},
    {"OU", NID_organizationalUnitName},
    {"CN", NID_commonName},
    {"serialNumber", NID_serialNumber},
    {"DC", NID_domainComponent},
    {"UID", NID_userId},
    {"emailAddress", NID_pkcs9_emailAddress},
    {NULL, 0},
};

const ts_pki_name ts_pki_san_policy_table[] = {
    {"forbidden", TS_SAN_FORBIDDEN},
    {"optional", TS_SAN_OPTIONAL},
    {"required", TS_SAN_REQUIRED},
    {NULL, 0},
};

const ts_pki_name ts_pki_san_type_table[] = {
    {"dns", TS_SAN_DNS}, {"ip", TS_SAN_IP}, {"uri", TS_SAN_URI}, {"email", TS_SAN_EMAIL}, {NULL, 0},
};

const ts_pki_name ts_pki_csrext_table[] = {
    {"subjectAltName", TS_CSREXT_SAN},       {"keyUsage", TS_CSREXT_KU},
    {"extendedKeyUsage", TS_CSREXT_EKU},     {"basicConstraints", TS_CSREXT_BC},
    {"subjectKeyIdentifier", TS_CSREXT_SKI}, {NULL, 0},
};

/*
 * The built-in profiles, in the same JSON a stored profile uses (docs/profiles.md shows them),
 * so that they pass through the same parser and checks.
 */
static const struct {
    const char *name;
    const char *json;
} builtins[] = {
    {"device", "{\"name\":\"device\",\"description\":\"Device identity for mutual TLS\","
               "\"kind\":\"device\",\"key_types\":[\"P-256\"],\"signature_digest\":\"SHA-256\","
               "\"key_usage\":[\"digitalSignature\",\"keyAgreement\"],"
               "\"extended_key_usage\":[\"clientAuth\"],"
               "\"subject\":[{\"type\":\"O\",\"value\":\"<org>\"},"
               "{\"type\":\"C\",\"value\":\"<country>\",\"optional\":true},"
               "{\"type\":\"CN\",\"value\":\"<device UID>\"}],"
               "\"csr_subject\":[\"C\",\"O\",\"OU\",\"CN\"],"
               "\"san\":{\"policy\":\"forbidden\"},"
               "\"csr_extensions\":[\"keyUsage\",\"extendedKeyUsage\",\"basicConstraints\"],"
               "\"validity\":{\"days\":3650}}"},
    {"server", "{\"name\":\"server\",\"description\":\"TLS server\","
               "\"kind\":\"server\",\"key_types\":[\"P-256\",\"P-384\",\"RSA-2048+\"],"
               "\"signature_digest\":\"SHA-256\",\"key_usage\":[\"digitalSignature\"],"
               "\"extended_key_usage\":[\"serverAuth\"],"
               "\"subject\":[{\"type\":\"O\",\"value\":\"<org>\"},"
               "{\"type\":\"CN\",\"value\":\"<csr>\",\"optional\":true}],"
               "\"csr_subject\":[\"C\",\"ST\",\"L\",\"O\",\"OU\",\"CN\"],"
               "\"san\":{\"policy\":\"required\",\"types\":[\"dns\",\"ip\"],\"dns_suffixes\":[],"
               "\"wildcards\":false},"
               "\"csr_extensions\":[\"subjectAltName\",\"keyUsage\",\"extendedKeyUsage\","
               "\"basicConstraints\"],"
               "\"validity\":{\"days\":397}}"},
    {"firmware-signer",
     "{\"name\":\"firmware-signer\",\"description\":\"Firmware image signing\","
     "\"kind\":\"firmware-signer\",\"key_types\":[\"P-256\",\"P-384\"],"
     "\"signature_digest\":\"SHA-256\",\"key_usage\":[\"digitalSignature\"],"
     "\"extended_key_usage\":[\"codeSigning\"],"
     "\"subject\":[{\"type\":\"O\",\"value\":\"<org>\"},"
     "{\"type\":\"C\",\"value\":\"<country>\",\"optional\":true},"
     "{\"type\":\"CN\",\"value\":\"<csr>\"}],"
     "\"csr_subject\":[\"C\",\"O\",\"OU\",\"CN\"],"
     "\"san\":{\"policy\":\"forbidden\"},"
     "\"csr_extensions\":[\"keyUsage\",\"extendedKeyUsage\",\"basicConstraints\"],"
     "\"validity\":{\"days\":1095}}"},
    {"verification",
     "{\"name\":\"verification\","
     "\"description\":\"Proof of possession of the CA key for cloud CA registration\","
     "\"kind\":\"verification\",\"key_types\":[\"P-256\",\"P-384\",\"RSA-2048+\"],"
     "\"signature_digest\":\"SHA-256\",\"key_usage\":[\"digitalSignature\"],"
     "\"extended_key_usage\":[],"
     "\"subject\":[{\"type\":\"CN\",\"value\":\"<code>\"}],"
     "\"csr_subject\":[\"C\",\"ST\",\"L\",\"O\",\"OU\",\"CN\"],"
     "\"san\":{\"policy\":\"forbidden\"},"
     "\"csr_extensions\":[\"keyUsage\",\"extendedKeyUsage\",\"basicConstraints\"],"
     "\"validity\":{\"days\":1}}"},
    {"command-signer",
     "{\"name\":\"command-signer\",\"description\":\"The tenant's remote-command signing key\","
     "\"kind\":\"command-signer\",\"key_types\":[\"P-256\"],\"signature_digest\":\"SHA-256\","
     "\"key_usage\":[\"digitalSignature\"],"
     "\"extended_key_usage\":[\"" EKU_COMMAND_NAME "\"],"
     "\"subject\":[{\"type\":\"O\",\"value\":\"<org>\"},"
     "{\"type\":\"CN\",\"value\":\"<csr>\"}],"
     "\"csr_subject\":[\"O\",\"CN\"],"
     "\"san\":{\"policy\":\"forbidden\"},"
     "\"csr_extensions\":[\"keyUsage\",\"extendedKeyUsage\",\"basicConstraints\"],"
     "\"validity\":{\"days\":825}}"},
    {"service-client",
     "{\"name\":\"service-client\",\"description\":\"The trust service as a TLS client\","
     "\"kind\":\"client\",\"key_types\":[\"P-256\",\"P-384\",\"RSA-2048+\"],"
     "\"signature_digest\":\"SHA-256\",\"key_usage\":[\"digitalSignature\"],"
     "\"extended_key_usage\":[\"clientAuth\"],"
     "\"subject\":[{\"type\":\"O\",\"value\":\"<org>\"},"
     "{\"type\":\"CN\",\"value\":\"<csr>\"}],"
     "\"csr_subject\":[\"O\",\"CN\"],"
     "\"san\":{\"policy\":\"forbidden\"},"
     "\"csr_extensions\":[\"keyUsage\",\"extendedKeyUsage\",\"basicConstraints\"],"
     "\"validity\":{\"days\":397}}"},
};

static CRYPTO_ONCE eku_command_once = CRYPTO_ONCE_STATIC_INIT;
static int eku_command_value = NID_undef;

static void eku_command_init(void)
{
    int nid = OBJ_txt2nid(TS_COMMAND_EKU_OID);
    if (nid == NID_undef) {
        ERR_set_mark();
        nid = OBJ_create(TS_COMMAND_EKU_OID, EKU_COMMAND_NAME, "Tessera command signing");
        ERR_pop_to_mark();
    }
    eku_command_value = nid;
}

/* The NID of TS_COMMAND_EKU_OID, registered once per process; NID_undef when that failed. */
static int eku_command_nid(void)
{
    return CRYPTO_THREAD_run_once(&eku_command_once, eku_command_init) ? eku_command_value
                                                                       : NID_undef;
}

int ts_pki_name_value(const ts_pki_name *table, const char *name)
{
    if (table == ts_pki_eku_table && strcmp(name, EKU_COMMAND_NAME) == 0) {
        int nid = eku_command_nid();
        return nid != NID_undef ? nid : -1;
    }
    for (size_t i = 0; table[i].name != NULL; i++) {
        if (strcmp(table[i].name, name) == 0) {
            return table[i].value;
        }
    }
    return -1;
}

const char *ts_pki_name_of(const ts_pki_name *table, int value)
{
    if (table == ts_pki_eku_table && value != NID_undef && value == eku_command_nid()) {
        return EKU_COMMAND_NAME;
    }
    for (size_t i = 0; table[i].name != NULL; i++) {
        if (table[i].value == value) {
            return table[i].name;
        }
    }
    return NULL;
}

void ts_pki_obj_name(const ASN1_OBJECT *obj, char *buf, size_t size)
{
    int nid = OBJ_obj2nid(obj);
    const char *name = ts_pki_name_of(ts_pki_attr_table, nid);

    if (name == NULL && nid != NID_undef) {
        name = OBJ_nid2ln(nid);
    }
    if (name != NULL) {
        snprintf(buf, size, "%s", name);
        return;
    }
    if (OBJ_obj2txt(buf, (int)size, obj, 1) <= 0) {
        snprintf(buf, size, "an unreadable OID");
    }
}

ts_profile *ts_pki_profile_new(void)
{
    ts_profile *p = OPENSSL_zalloc(sizeof *p);

    if (p == NULL) {
        return NULL;
    }
    p->digest = ts_pki_digest_names[0];
    return p;
}

void ts_profile_free(ts_profile *profile)
{
    if (profile == NULL) {
        return;
    }
    OPENSSL_free(profile->description);
    for (size_t i = 0; i < profile->subject_count; i++) {
        OPENSSL_free(profile->subject[i].value);
    }
    for (size_t i = 0; i < profile->dns_suffix_count; i++) {
        OPENSSL_free(profile->dns_suffixes[i]);
    }
    OPENSSL_free(profile);
}

const char *ts_profile_name(const ts_profile *profile)
{
    return profile != NULL ? profile->name : NULL;
}

const char *ts_profile_kind_name(const ts_profile *profile)
{
    return profile != NULL ? ts_pki_name_of(ts_pki_kind_table, (int)profile->kind) : NULL;
}

int ts_profile_est_server_keygen(const ts_profile *profile)
{
    return profile != NULL && profile->est_server_keygen;
}

int ts_profile_est_pop(const ts_profile *profile)
{
    return profile != NULL && profile->est_pop;
}

ts_err ts_profile_builtin(const char *name, ts_profile **out)
{
    if (name == NULL || out == NULL) {
        return ts_error_set(TS_ERR_INVALID, "no profile name given");
    }
    *out = NULL;
    for (size_t i = 0; i < sizeof builtins / sizeof builtins[0]; i++) {
        if (strcmp(builtins[i].name, name) == 0) {
            return ts_profile_from_json(builtins[i].json, strlen(builtins[i].json), out);
        }
    }
    return ts_error_set(TS_ERR_NOT_FOUND,
                        "no built-in profile '%s' (device, server, firmware-signer, verification, "
                        "command-signer, service-client)",
                        name);
}

int ts_pki_dns_name_ok(const char *name, int wildcard)
{
    size_t len = strlen(name);
    size_t label = 0;

    if (wildcard && strncmp(name, "*.", 2) == 0) {
        name += 2;
        len -= 2;
    }
    /* RFC 1035 section 2.3.1 and RFC 1123 section 2.1: letters, digits and inner hyphens, 1 to
     * 63 characters a label, 253 in all, no empty label. */
    if (len == 0 || len > 253) {
        return 0;
    }
    for (size_t i = 0; i <= len; i++) {
        char c = name[i];
        if (c == '.' || c == '\0') {
            if (label == 0 || label > 63 || name[i - 1] == '-') {
                return 0;
            }
            label = 0;
            continue;
        }
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 (c == '-' && label > 0);
        if (!ok) {
            return 0;
        }
        label++;
    }
    return 1;
}

static int subject_uses(const ts_profile *p, const char *var)
{
    for (size_t i = 0; i < p->subject_count; i++) {
        if (strstr(p->subject[i].value, var) != NULL) {
            return 1;
        }
    }
    return 0;
}

static int has_eku(const ts_profile *p, int nid)
{
    for (size_t i = 0; i < p->eku_count; i++) {
        if (p->eku[i] == nid) {
            return 1;
        }
    }
    return 0;
}

static int csr_may_carry(const ts_profile *p, int nid)
{
    for (size_t i = 0; i < p->csr_subject_count; i++) {
        if (p->csr_subject[i] == nid) {
            return 1;
        }
    }
    return 0;
}

static ts_err bad(const ts_profile *p, const char *field, const char *what)
{
    return ts_error_set(TS_ERR_INVALID, "profile '%s' field '%s': %s", p->name, field, what);
}

static ts_err validate_usage(const ts_profile *p)
{
    unsigned rsa = p->key_types & TS_KEYTYPE_RSA;

    if (p->key_types == 0) {
        return bad(p, "key_types", "no key type is allowed");
    }
    if (rsa != 0 && (rsa & (rsa - 1)) != 0) {
        return bad(p, "key_types", "more than one RSA minimum");
    }
    if (p->key_usage == 0) {
        return bad(p, "key_usage", "no key usage");
    }
    if ((p->key_usage & (KU_KEY_CERT_SIGN | KU_CRL_SIGN)) != 0) {
        return bad(p, "key_usage",
                   "keyCertSign and cRLSign belong to CA certificates, which profiles never issue");
    }
    /* RFC 5480 section 3 and RFC 4055: key agreement is an EC use, key encipherment an RSA one. */
    if ((p->key_usage & KU_KEY_AGREEMENT) != 0 && (p->key_types & ~TS_KEYTYPE_EC) != 0) {
        return bad(p, "key_usage", "keyAgreement needs EC key types only");
    }
    if ((p->key_usage & (KU_KEY_ENCIPHERMENT | KU_DATA_ENCIPHERMENT)) != 0 &&
        (p->key_types & ~TS_KEYTYPE_RSA) != 0) {
        return bad(p, "key_usage", "keyEncipherment and dataEncipherment need RSA key types only");
    }
    return TS_OK;
}

static ts_err validate_san(const ts_profile *p)
{
    int san_ext = (p->csr_extensions & TS_CSREXT_SAN) != 0;

    if (p->san_policy == TS_SAN_FORBIDDEN) {
        if (p->san_types != 0 || p->dns_suffix_count != 0 || p->san_wildcards) {
            return bad(p, "san",
                       "types, dns_suffixes and wildcards need a policy other than "
                       "forbidden");
        }
        if (san_ext) {
            return bad(p, "csr_extensions",
                       "subjectAltName is listed but the SAN policy is "
                       "forbidden");
        }
        return TS_OK;
    }
    if (p->san_types == 0) {
        return bad(p, "san.types", "no SAN type is allowed");
    }
    if (!san_ext) {
        return bad(p, "csr_extensions",
                   "the SAN policy allows SANs, so subjectAltName must be "
                   "listed");
    }
    if ((p->dns_suffix_count != 0 || p->san_wildcards) && (p->san_types & TS_SAN_DNS) == 0) {
        return bad(p, "san", "dns_suffixes and wildcards need the dns type");
    }
    return TS_OK;
}

static ts_err validate_kind(const ts_profile *p)
{
    switch (p->kind) {
    case TS_PROFILE_DEVICE:
        if (!subject_uses(p, TS_VAR_UID)) {
            return bad(p, "subject", "a device profile names the device: use <device UID>");
        }
        break;
    case TS_PROFILE_VERIFICATION:
        if (!subject_uses(p, TS_VAR_CODE)) {
            return bad(p, "subject",
                       "a verification profile's subject holds the registration "
                       "code: use <code>");
        }
        break;
    case TS_PROFILE_SERVER:
        if (!has_eku(p, NID_server_auth)) {
            return bad(p, "extended_key_usage", "a server profile needs serverAuth");
        }
        if (p->san_policy == TS_SAN_FORBIDDEN) {
            return bad(p, "san.policy", "a server profile needs SANs (optional or required)");
        }
        break;
    case TS_PROFILE_FIRMWARE_SIGNER:
        if (!has_eku(p, NID_code_sign)) {
            return bad(p, "extended_key_usage", "a firmware-signer profile needs codeSigning");
        }
        break;
    case TS_PROFILE_COMMAND_SIGNER:
        /* Only this purpose: a device must never take a TLS or code-signing certificate's
         * signature as a command (docs/commands.md). */
        if (p->eku_count != 1 || !has_eku(p, eku_command_nid())) {
            return bad(p, "extended_key_usage",
                       "a command-signer profile has exactly " EKU_COMMAND_NAME);
        }
        break;
    case TS_PROFILE_CLIENT:
        if (!has_eku(p, NID_client_auth)) {
            return bad(p, "extended_key_usage", "a client profile needs clientAuth");
        }
        break;
    }
    return TS_OK;
}

ts_err ts_pki_profile_validate(const ts_profile *p)
{
    ts_err rv = validate_usage(p);

    if (rv != TS_OK) {
        return rv;
    }
    if (p->subject_count == 0) {
        return bad(p, "subject", "the subject template is empty");
    }
    for (size_t i = 0; i < p->subject_count; i++) {
        const ts_subject_entry *e = &p->subject[i];
        if (strcmp(e->value, TS_VAR_CSR) == 0 && !csr_may_carry(p, e->nid)) {
            return bad(p, "subject",
                       "an attribute taken from the CSR (<csr>) must be listed in csr_subject");
        }
    }
    rv = validate_san(p);
    if (rv != TS_OK) {
        return rv;
    }
    return validate_kind(p);
}
