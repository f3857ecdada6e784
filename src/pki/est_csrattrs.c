/* CSR attributes (RFC 7030 section 4.5.2): what a profile wants in a CSR, as a DER CsrAttrs. */
#include <limits.h>
#include <string.h>

#include <openssl/asn1t.h>
#include <openssl/crypto.h>
#include <openssl/objects.h>
#include <openssl/safestack.h>
#include <openssl/x509.h>

#include "common/error_internal.h"
#include "pki/pki_internal.h"
#include "tessera/est.h"

/*
 * RFC 7030 section 4.5.2:
 *
 *   CsrAttrs ::= SEQUENCE SIZE (0..MAX) OF AttrOrOID
 *   AttrOrOID ::= CHOICE (oid OBJECT IDENTIFIER, attribute Attribute }
 *   Attribute { ATTRIBUTE:IOSet } ::= SEQUENCE { type ..., values SET SIZE(1..MAX) OF ... }
 *
 * Attribute is X509_ATTRIBUTE; the rest is OpenSSL's template machinery, so that the DER is made
 * and parsed by OpenSSL's ASN.1 encoder.
 */
typedef struct est_attr_or_oid {
    int type; /* EST_AOO_OID or EST_AOO_ATTRIBUTE: the CHOICE's selector */
    union {
        ASN1_OBJECT *oid;
        X509_ATTRIBUTE *attribute;
    } value;
} EST_ATTR_OR_OID;

enum {
    EST_AOO_OID = 0,
    EST_AOO_ATTRIBUTE = 1,
};

DEFINE_STACK_OF(EST_ATTR_OR_OID)

ASN1_CHOICE(EST_ATTR_OR_OID) =
    {
        ASN1_SIMPLE(EST_ATTR_OR_OID, value.oid, ASN1_OBJECT),
        ASN1_SIMPLE(EST_ATTR_OR_OID, value.attribute, X509_ATTRIBUTE),
} static_ASN1_CHOICE_END(EST_ATTR_OR_OID)

        ASN1_ITEM_TEMPLATE(EST_CSRATTRS) = ASN1_EX_TEMPLATE_TYPE(ASN1_TFLG_SEQUENCE_OF, 0, CsrAttrs,
                                                                 EST_ATTR_OR_OID)
            static_ASN1_ITEM_TEMPLATE_END(EST_CSRATTRS)

                static void attrs_free(STACK_OF(EST_ATTR_OR_OID) * attrs)
{
    ASN1_item_free((ASN1_VALUE *)attrs, ASN1_ITEM_rptr(EST_CSRATTRS));
}

static ts_err push(STACK_OF(EST_ATTR_OR_OID) * attrs, EST_ATTR_OR_OID *entry)
{
    if (sk_EST_ATTR_OR_OID_push(attrs, entry) <= 0) {
        ASN1_item_free((ASN1_VALUE *)entry, ASN1_ITEM_rptr(EST_ATTR_OR_OID));
        return ts_error_set(TS_ERR_NOMEM, "out of memory for CSR attributes");
    }
    return TS_OK;
}

static ts_err add_oid(STACK_OF(EST_ATTR_OR_OID) * attrs, int nid)
{
    EST_ATTR_OR_OID *e = (EST_ATTR_OR_OID *)ASN1_item_new(ASN1_ITEM_rptr(EST_ATTR_OR_OID));

    if (e == NULL) {
        return ts_error_set(TS_ERR_NOMEM, "out of memory for CSR attributes");
    }
    e->type = EST_AOO_OID;
    e->value.oid = OBJ_nid2obj(nid);
    if (e->value.oid == NULL) {
        ASN1_item_free((ASN1_VALUE *)e, ASN1_ITEM_rptr(EST_ATTR_OR_OID));
        return ts_error_set_openssl(TS_ERR_CRYPTO, "no OID for NID %d", nid);
    }
    return push(attrs, e);
}

/* An Attribute of type nid whose values are the OIDs of value_nids. */
static ts_err add_attribute(STACK_OF(EST_ATTR_OR_OID) * attrs, int nid, const int *value_nids,
                            size_t count)
{
    EST_ATTR_OR_OID *e = (EST_ATTR_OR_OID *)ASN1_item_new(ASN1_ITEM_rptr(EST_ATTR_OR_OID));
    X509_ATTRIBUTE *attr = NULL;

    if (e == NULL) {
        return ts_error_set(TS_ERR_NOMEM, "out of memory for CSR attributes");
    }
    for (size_t i = 0; i < count; i++) {
        ASN1_OBJECT *v = OBJ_nid2obj(value_nids[i]);
        int ok = v != NULL &&
                 (i == 0 ? X509_ATTRIBUTE_create_by_NID(&attr, nid, V_ASN1_OBJECT, v, -1) != NULL
                         : X509_ATTRIBUTE_set1_data(attr, V_ASN1_OBJECT, v, -1) == 1);
        if (!ok) {
            X509_ATTRIBUTE_free(attr);
            ASN1_item_free((ASN1_VALUE *)e, ASN1_ITEM_rptr(EST_ATTR_OR_OID));
            return ts_error_set_openssl(TS_ERR_CRYPTO, "cannot make a CSR attribute");
        }
    }
    e->type = EST_AOO_ATTRIBUTE;
    e->value.attribute = attr;
    return push(attrs, e);
}

/* The signature algorithm of a CSR for a key family and the profile's digest. */
static int sig_nid(int rsa, const char *digest)
{
    static const struct {
        const char *digest;
        int ec, rsa;
    } table[] = {
        {"SHA256", NID_ecdsa_with_SHA256, NID_sha256WithRSAEncryption},
        {"SHA384", NID_ecdsa_with_SHA384, NID_sha384WithRSAEncryption},
        {"SHA512", NID_ecdsa_with_SHA512, NID_sha512WithRSAEncryption},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        if (strcmp(table[i].digest, digest) == 0) {
            return rsa ? table[i].rsa : table[i].ec;
        }
    }
    return rsa ? NID_sha256WithRSAEncryption : NID_ecdsa_with_SHA256;
}

static ts_err fill(STACK_OF(EST_ATTR_OR_OID) * attrs, const ts_profile *p)
{
    static const struct {
        unsigned bit;
        int nid;
    } curves[] = {
        {TS_KEYTYPE_P256, NID_X9_62_prime256v1},
        {TS_KEYTYPE_P384, NID_secp384r1},
        {TS_KEYTYPE_P521, NID_secp521r1},
    };
    int curve_nids[3];
    size_t ncurves = 0;
    ts_err rv = TS_OK;

    /* Section 3.5: the server asks for the channel binding by listing challengePassword. */
    if (p->est_pop) {
        rv = add_oid(attrs, NID_pkcs9_challengePassword);
    }
    for (size_t i = 0; i < sizeof curves / sizeof curves[0]; i++) {
        if ((p->key_types & curves[i].bit) != 0) {
            curve_nids[ncurves++] = curves[i].nid;
        }
    }
    /* Section 4.5.2's example: the key type as an attribute whose values name the curves. */
    if (rv == TS_OK && ncurves > 0) {
        rv = add_attribute(attrs, NID_X9_62_id_ecPublicKey, curve_nids, ncurves);
    }
    if (rv == TS_OK && (p->key_types & TS_KEYTYPE_RSA) != 0) {
        rv = add_oid(attrs, NID_rsaEncryption);
    }
    if (rv == TS_OK && ncurves > 0) {
        rv = add_oid(attrs, sig_nid(0, p->digest));
    }
    if (rv == TS_OK && (p->key_types & TS_KEYTYPE_RSA) != 0) {
        rv = add_oid(attrs, sig_nid(1, p->digest));
    }
    return rv;
}

ts_err ts_est_csrattrs(const ts_profile *profile, uint8_t **der, size_t *len)
{
    STACK_OF(EST_ATTR_OR_OID) *attrs = NULL;
    unsigned char *buf = NULL;
    int n;
    ts_err rv;

    if (profile == NULL || der == NULL || len == NULL) {
        return ts_error_set(TS_ERR_INVALID, "no profile given");
    }
    *der = NULL;
    *len = 0;
    attrs = sk_EST_ATTR_OR_OID_new_null();
    if (attrs == NULL) {
        return ts_error_set(TS_ERR_NOMEM, "out of memory for CSR attributes");
    }
    rv = fill(attrs, profile);
    if (rv != TS_OK) {
        goto cleanup;
    }
    n = ASN1_item_i2d((ASN1_VALUE *)attrs, &buf, ASN1_ITEM_rptr(EST_CSRATTRS));
    if (n <= 0) {
        rv = ts_error_set_openssl(TS_ERR_CRYPTO, "cannot encode the CSR attributes");
        goto cleanup;
    }
    *der = buf;
    *len = (size_t)n;
    rv = TS_OK;
cleanup:
    attrs_free(attrs);
    return rv;
}

static void read_attribute(X509_ATTRIBUTE *attr, ts_est_csrattrs_info *out)
{
    if (OBJ_obj2nid(X509_ATTRIBUTE_get0_object(attr)) != NID_X9_62_id_ecPublicKey) {
        return;
    }
    for (int i = 0; i < X509_ATTRIBUTE_count(attr); i++) {
        ASN1_TYPE *t = X509_ATTRIBUTE_get0_type(attr, i);
        size_t max = sizeof out->ec_curves / sizeof out->ec_curves[0];
        if (t != NULL && t->type == V_ASN1_OBJECT && out->ec_curve_count < max) {
            out->ec_curves[out->ec_curve_count++] = OBJ_obj2nid(t->value.object);
        }
    }
}

static void read_oid(const ASN1_OBJECT *oid, ts_est_csrattrs_info *out)
{
    int nid = OBJ_obj2nid(oid);
    int pkey = NID_undef;
    size_t max = sizeof out->sig_nids / sizeof out->sig_nids[0];

    if (nid == NID_pkcs9_challengePassword) {
        out->challenge_password = 1;
    } else if (nid == NID_rsaEncryption) {
        out->rsa = 1;
    } else if (nid != NID_undef && OBJ_find_sigid_algs(nid, NULL, &pkey) == 1 &&
               out->sig_count < max) {
        out->sig_nids[out->sig_count++] = nid;
    }
}

ts_err ts_est_csrattrs_parse(const uint8_t *der, size_t len, ts_est_csrattrs_info *out)
{
    const unsigned char *p = der;
    STACK_OF(EST_ATTR_OR_OID) *attrs = NULL;
    ts_err rv = TS_ERR_INVALID;

    if (der == NULL || out == NULL || len == 0) {
        return ts_error_set(TS_ERR_INVALID, "no CSR attributes given");
    }
    memset(out, 0, sizeof *out);
    if (len > LONG_MAX) {
        return ts_error_set(TS_ERR_LIMIT, "CSR attributes of %zu bytes are too long", len);
    }
    attrs = (STACK_OF(EST_ATTR_OR_OID) *)ASN1_item_d2i(NULL, &p, (long)len,
                                                       ASN1_ITEM_rptr(EST_CSRATTRS));
    if (attrs == NULL) {
        return ts_error_set_openssl(TS_ERR_INVALID, "not a DER CsrAttrs (RFC 7030 section 4.5.2)");
    }
    if (p != der + len) {
        ts_error_set(TS_ERR_INVALID, "%zu bytes follow the CsrAttrs", len - (size_t)(p - der));
        goto cleanup;
    }
    for (int i = 0; i < sk_EST_ATTR_OR_OID_num(attrs); i++) {
        EST_ATTR_OR_OID *e = sk_EST_ATTR_OR_OID_value(attrs, i);
        if (e->type == EST_AOO_OID) {
            read_oid(e->value.oid, out);
        } else {
            read_attribute(e->value.attribute, out);
        }
        out->entries++;
    }
    rv = TS_OK;
cleanup:
    attrs_free(attrs);
    return rv;
}
