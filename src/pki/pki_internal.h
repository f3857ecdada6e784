/* Shared by the PKI files: the profile structure, policy checks and extension builders. */
#ifndef TS_PKI_INTERNAL_H
#define TS_PKI_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "tessera/pki.h"

enum {
    TS_PROFILE_NAME_MAX = 64,
    TS_PROFILE_DESC_MAX = 256,
    TS_PROFILE_LIST_MAX = 16,    /* entries of key_usage, subject, csr_subject ... */
    TS_PROFILE_VALUE_MAX = 128,  /* characters of a subject template value */
    TS_PROFILE_SUFFIX_MAX = 253, /* characters of a DNS suffix */
    TS_PROFILE_DAYS_MAX = 36525, /* a hundred years */
    TS_SAN_MAX = 64,             /* names in one subjectAltName */
    TS_UID_MAX = 64,             /* characters of a device UID or registration code */
    TS_URL_MAX = 512,            /* characters of a CRL or OCSP URL */
    TS_BACKDATE_SECONDS = 60,    /* the most a notBefore is set before the time of issue */
    TS_OCSP_VALIDITY = 3600,     /* seconds between an OCSP thisUpdate and nextUpdate */
    TS_OCSP_SINGLE_MAX = 64,     /* CertIDs in one OCSP request */
};

typedef enum ts_profile_kind {
    TS_PROFILE_DEVICE = 0,
    TS_PROFILE_SERVER = 1,
    TS_PROFILE_FIRMWARE_SIGNER = 2,
    TS_PROFILE_VERIFICATION = 3,
    TS_PROFILE_COMMAND_SIGNER = 4, /* signs remote commands (include/tessera/command.h) */
    TS_PROFILE_CLIENT = 5,         /* a TLS client that is not a device (the service's MQTT) */
} ts_profile_kind;

/* Key types a profile may allow, as bits; the RSA bits mean "at least that many bits". */
#define TS_KEYTYPE_P256    (1U << 0)
#define TS_KEYTYPE_P384    (1U << 1)
#define TS_KEYTYPE_P521    (1U << 2)
#define TS_KEYTYPE_RSA2048 (1U << 3)
#define TS_KEYTYPE_RSA3072 (1U << 4)
#define TS_KEYTYPE_RSA4096 (1U << 5)
#define TS_KEYTYPE_EC      (TS_KEYTYPE_P256 | TS_KEYTYPE_P384 | TS_KEYTYPE_P521)
#define TS_KEYTYPE_RSA     (TS_KEYTYPE_RSA2048 | TS_KEYTYPE_RSA3072 | TS_KEYTYPE_RSA4096)
#define TS_RSA_MAX_BITS    8192

/* SAN types a profile may allow. */
#define TS_SAN_DNS   (1U << 0)
#define TS_SAN_IP    (1U << 1)
#define TS_SAN_URI   (1U << 2)
#define TS_SAN_EMAIL (1U << 3)

/* CSR extensions a profile may accept. Only subjectAltName is copied into the certificate. */
#define TS_CSREXT_SAN (1U << 0)
#define TS_CSREXT_KU  (1U << 1)
#define TS_CSREXT_EKU (1U << 2)
#define TS_CSREXT_BC  (1U << 3)
#define TS_CSREXT_SKI (1U << 4)

typedef enum ts_san_policy {
    TS_SAN_FORBIDDEN = 0,
    TS_SAN_OPTIONAL = 1,
    TS_SAN_REQUIRED = 2,
} ts_san_policy;

/* Template variables: a value is literal text with these substituted, or exactly "<csr>". */
#define TS_VAR_ORG     "<org>"
#define TS_VAR_COUNTRY "<country>"
#define TS_VAR_UID     "<device UID>"
#define TS_VAR_CODE    "<code>"
#define TS_VAR_CSR     "<csr>"

typedef struct ts_subject_entry {
    int nid;      /* one of the attributes of ts_pki_attr_table */
    char *value;  /* template text */
    int optional; /* left out when a variable in it has no value */
} ts_subject_entry;

struct ts_profile {
    char name[TS_PROFILE_NAME_MAX + 1];
    char *description;
    ts_profile_kind kind;
    unsigned key_types;
    const char *digest; /* "SHA256", "SHA384" or "SHA512": an OpenSSL digest name */
    unsigned key_usage; /* KU_* bits of <openssl/x509v3.h> */
    int eku[TS_PROFILE_LIST_MAX];
    size_t eku_count;
    ts_subject_entry subject[TS_PROFILE_LIST_MAX];
    size_t subject_count;
    int csr_subject[TS_PROFILE_LIST_MAX]; /* attribute NIDs a CSR subject may carry */
    size_t csr_subject_count;
    ts_san_policy san_policy;
    unsigned san_types;
    char *dns_suffixes[TS_PROFILE_LIST_MAX];
    size_t dns_suffix_count;
    int san_wildcards;
    unsigned csr_extensions;
    int validity_days; /* 0 when not_after is set */
    time_t not_after;
    int est_server_keygen; /* "est": {"server_keygen": true}: /serverkeygen may make the key */
    int est_pop;           /* "est": {"proof_of_possession": true}: CSRs carry the binding */
};

/* --- Name tables (profile.c) ----------------------------------------------------------------- */

typedef struct ts_pki_name {
    const char *name;
    int value;
} ts_pki_name;

extern const ts_pki_name ts_pki_kind_table[];
extern const ts_pki_name ts_pki_keytype_table[];
extern const ts_pki_name ts_pki_digest_table[]; /* value: index into ts_pki_digest_names */
extern const char *const ts_pki_digest_names[];
extern const ts_pki_name ts_pki_ku_table[];
extern const ts_pki_name ts_pki_eku_table[];
extern const ts_pki_name ts_pki_attr_table[];
extern const ts_pki_name ts_pki_san_policy_table[];
extern const ts_pki_name ts_pki_san_type_table[];
extern const ts_pki_name ts_pki_csrext_table[];

/* The value of name in a table ending with a NULL name; -1 when absent. */
int ts_pki_name_value(const ts_pki_name *table, const char *name);

/* The name of value in a table; NULL when absent. */
const char *ts_pki_name_of(const ts_pki_name *table, int value);

/* An attribute or extension name for messages: the table's name, OpenSSL's short name, or the
 * dotted OID. */
void ts_pki_obj_name(const ASN1_OBJECT *obj, char *buf, size_t size);

/* A new profile with every list empty; freed with ts_profile_free(). */
ts_profile *ts_pki_profile_new(void);

/* Checks the rules that tie fields together (kind, key types and usages, SAN policy); the
 * message names the field. */
TS_MUST_CHECK ts_err ts_pki_profile_validate(const ts_profile *profile);

/* Checks a DNS name (a hostname of LDH labels, optionally "*." first); 1 when well formed. */
int ts_pki_dns_name_ok(const char *name, int wildcard);

/* --- Keys ------------------------------------------------------------------------------------ */

/* Describes a public key as "P-256", "RSA-2048", "EC secp256k1" or its type name. */
void ts_pki_key_describe(const EVP_PKEY *key, char *buf, size_t size);

/* TS_OK when the profile allows the key; TS_ERR_POLICY with "key is X; profile 'p' allows Y". */
TS_MUST_CHECK ts_err ts_pki_key_allowed(const EVP_PKEY *key, const ts_profile *profile);

/* The digest a CA signs with by its key: SHA-384 for P-384, SHA-512 for P-521, else SHA-256. */
const char *ts_pki_ca_digest(const EVP_PKEY *key);

/* 1 when both keys have the same public key (EVP_PKEY_eq(), else equal SubjectPublicKeyInfo
 * encodings). */
int ts_pki_same_public_key(const EVP_PKEY *a, const EVP_PKEY *b);

/* --- CSR policy (csr.c) ---------------------------------------------------------------------- */

/* A DER request (the whole of der) parsed without OpenSSL's per-call key decoder set-up when
 * its key is an EC key on a curve profiles allow (csr_fast.c). 1 with *out set when it was; 0
 * otherwise, with nothing set: the caller then parses it the general way. The request's key is
 * an EVP_PKEY equal to what d2i_X509_REQ() gives, and the request's DER is unchanged. */
int ts_pki_csr_decode_fast(const uint8_t *der, size_t len, X509_REQ **out);

/* The first half of ts_pki_csr_decode_fast(): the request parsed, and its key read onto the
 * prepared key of its curve (a new key in *key), but not set into the request, which spares
 * encoding the key anew. The request's key is therefore unset (X509_REQ_get0_pubkey() gives
 * NULL); its to-be-signed part is still the bytes received, which are also *tbs (inside der). 1
 * when it was; 0 with nothing set otherwise. */
int ts_pki_csr_decode_keyless(const uint8_t *der, size_t len, X509_REQ **req, EVP_PKEY **key,
                              const unsigned char **tbs, size_t *tbs_len);

/* The CSR's public key made as a key of ts_provider_libctx()'s default provider, for verifying
 * its signature there without a conversion (csr_verify.c): a new key, or NULL when its key is
 * not an EC key with a named curve profiles allow (then verify with the request's own key). */
EVP_PKEY *ts_pki_csr_verify_key(X509_REQ *csr);

/* Verification keys for many requests, one thread at a time: ts_pki_verify_keys_get() gives
 * what ts_pki_csr_verify_key() gives, as a key owned by keys and valid until the next call. */
typedef struct ts_pki_verify_keys ts_pki_verify_keys;
ts_pki_verify_keys *ts_pki_verify_keys_new(void);
void ts_pki_verify_keys_free(ts_pki_verify_keys *keys);
EVP_PKEY *ts_pki_verify_keys_get(ts_pki_verify_keys *keys, X509_REQ *csr);

/* Verifies csr's signature over tbs (its to-be-signed bytes) with its point set on the key of its
 * curve, through a verification context prepared once per curve and digest: 1 when it verifies,
 * 0 when it does not, -1 when this way cannot tell (another key type or curve, another signature
 * algorithm, a malformed signature): the caller then verifies the general way. */
int ts_pki_verify_keys_check(ts_pki_verify_keys *keys, X509_REQ *csr, const unsigned char *tbs,
                             size_t tbs_len);

/* ts_csr_check() verifying the signature with a key from keys, or (keys NULL) with a new one. */
TS_MUST_CHECK ts_err ts_pki_csr_check(X509_REQ *csr, const ts_profile *profile,
                                      ts_pki_verify_keys *keys);

/* ts_csr_check() without the signature: the profile's rules only. */
TS_MUST_CHECK ts_err ts_pki_csr_policy(X509_REQ *csr, const ts_profile *profile);

/* ts_pki_csr_policy() of a request whose key is given apart (ts_pki_csr_decode_keyless()). */
TS_MUST_CHECK ts_err ts_pki_csr_policy_key(X509_REQ *csr, EVP_PKEY *key, const ts_profile *profile);

/* 1 when csr was read by params' batch, checked against params' profile, and the batch fits
 * params (ts_pki_batch_fits()). */
int ts_pki_batch_csr_fits(const ts_batch_csr *csr, const ts_issue_params *params);

/* The request and key of a request read by a batch (issue_batch.c); neither is the caller's. */
void ts_pki_batch_csr_get(const ts_batch_csr *csr, X509_REQ **req, EVP_PKEY **key);

/* The CSR's subjectAltName as a new GENERAL_NAMES, or NULL in *sans when it has none. */
TS_MUST_CHECK ts_err ts_pki_csr_sans(X509_REQ *csr, GENERAL_NAMES **sans);

/* Checks SANs against the profile (types, DNS suffixes, wildcards, count, required). sans may
 * be NULL. */
TS_MUST_CHECK ts_err ts_pki_sans_allowed(const GENERAL_NAMES *sans, const ts_profile *profile);

/* For server profiles: the CN, when the name has one, must be one of the DNS or IP SANs (the CA/B
 * Forum Baseline Requirements, section 7.1.4.3). */
TS_MUST_CHECK ts_err ts_pki_cn_in_sans(const X509_NAME *name, const GENERAL_NAMES *sans);

/* The UTF-8 value of the one attribute nid in name: TS_OK with *value NULL when absent;
 * TS_ERR_POLICY when there are several. *value is freed with OPENSSL_free(). */
TS_MUST_CHECK ts_err ts_pki_name_get(const X509_NAME *name, int nid, char **value);

/* --- Building certificates and CRLs (pki_ext.c) ---------------------------------------------- */

/* A serial of TS_SERIAL_LEN bytes as an ASN1_INTEGER; TS_ERR_INVALID unless positive with no
 * leading zero byte. */
TS_MUST_CHECK ts_err ts_pki_serial_integer(const uint8_t *serial, size_t len, ASN1_INTEGER **out);

/* An ASN1_TIME as seconds since the epoch; 0 when it cannot be read. */
time_t ts_pki_time(const ASN1_TIME *t);

/* A CRL or OCSP URL: http:// or https://, printable ASCII without spaces, at most TS_URL_MAX. */
TS_MUST_CHECK ts_err ts_pki_url_check(const char *what, const char *url);

/* Adds subjectKeyIdentifier (RFC 5280 section 4.2.1.2, method 1) to cert from its public key. */
TS_MUST_CHECK ts_err ts_pki_add_ski(X509 *cert);

/* The key identifier of a CA: its subjectKeyIdentifier, or the SHA-1 of its public key. A new
 * ASN1_OCTET_STRING. */
TS_MUST_CHECK ts_err ts_pki_key_id(X509 *ca, ASN1_OCTET_STRING **out);

/* An AUTHORITY_KEYID holding only the key identifier of ca (RFC 5280 section 4.2.1.1). With
 * self set, ca is a self-signed certificate being built: the identifier is computed from its key
 * without reading (and caching) its unfinished extensions. */
TS_MUST_CHECK ts_err ts_pki_aki(X509 *ca, int self, AUTHORITY_KEYID **out);

/* Adds a critical keyUsage with the KU_* bits. */
TS_MUST_CHECK ts_err ts_pki_add_key_usage(X509 *cert, unsigned bits);

/* Adds cRLDistributionPoints with one URI and authorityInfoAccess with the OCSP and caIssuers
 * URIs; each NULL URL is left out, and no extension is added when all are NULL. */
TS_MUST_CHECK ts_err ts_pki_add_urls(X509 *cert, const char *crl_url, const char *ocsp_url,
                                     const char *ca_issuers_url);

/* Signs cert with key and the named digest through ts_provider_libctx(). */
TS_MUST_CHECK ts_err ts_pki_sign_cert(X509 *cert, EVP_PKEY *key, const char *digest);

/* 1 when the batch was made for the profile and issuer key params names. */
int ts_pki_batch_fits(const ts_issue_batch *batch, const ts_issue_params *params);

/* Signs cert with a copy of the batch's signing context (issue_batch.c); TS_ERR_INVALID when
 * the batch was made for another profile or issuer key than params names. */
TS_MUST_CHECK ts_err ts_pki_batch_sign_cert(ts_issue_batch *batch, const ts_issue_params *params,
                                            X509 *cert);

/* A new EVP_MD_CTX ready to sign with key and digest through ts_provider_libctx(). */
TS_MUST_CHECK ts_err ts_pki_sign_ctx(EVP_PKEY *key, const char *digest, EVP_MD_CTX **out);

#endif
