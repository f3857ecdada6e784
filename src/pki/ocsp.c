/* The OCSP responder (RFC 6960): one request in, one signed response out. */
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/ocsp.h>
#include <openssl/x509v3.h>

#include "common/error_internal.h"
#include "pki/pki_internal.h"
#include "tessera/provider.h"

/* The CertID hash algorithms answered: SHA-1 (what most clients send) and the SHA-2 family. */
static const int hash_nids[] = {NID_sha1, NID_sha256, NID_sha384, NID_sha512};
enum { HASHES = sizeof hash_nids / sizeof hash_nids[0], NONCE_MAX = 2 + 32 };
_Static_assert((int)HASHES == (int)TS_OCSP_ID_HASHES, "ts_ocsp_issuer.ids follows hash_nids");

typedef struct responder {
    const ts_ocsp_issuer *issuers;
    size_t count;
    OCSP_CERTID **ids; /* count * HASHES, made when first needed */
} responder;

static ts_err encode(OCSP_RESPONSE *r, uint8_t **out, size_t *out_len)
{
    unsigned char *der = NULL;
    int len = r != NULL ? i2d_OCSP_RESPONSE(r, &der) : -1;

    if (len <= 0) {
        return ts_error_set_openssl(TS_ERR_CRYPTO, "cannot encode the OCSP response");
    }
    *out = der;
    *out_len = (size_t)len;
    return TS_OK;
}

/* An unsigned response carrying only an error status (RFC 6960 section 2.3). */
static ts_err status_only(int status, uint8_t **out, size_t *out_len)
{
    OCSP_RESPONSE *r = OCSP_response_create(status, NULL);
    ts_err rv = encode(r, out, out_len);

    OCSP_RESPONSE_free(r);
    return rv;
}

/* The issuer a CertID names (RFC 6960 section 4.1.1: issuerNameHash and issuerKeyHash), or -1. */
static ts_err match_issuer(responder *r, OCSP_CERTID *cid, long *index)
{
    ASN1_OBJECT *md_oid = NULL;
    size_t h = 0;

    *index = -1;
    if (!OCSP_id_get0_info(NULL, &md_oid, NULL, NULL, cid)) {
        return TS_OK;
    }
    while (h < HASHES && OBJ_obj2nid(md_oid) != hash_nids[h]) {
        h++;
    }
    if (h == HASHES) {
        return TS_OK; /* a hash we do not answer for: "unknown" */
    }
    for (size_t i = 0; i < r->count; i++) {
        if (r->issuers[i].ids[h] != NULL) {
            if (OCSP_id_issuer_cmp(cid, r->issuers[i].ids[h]) == 0) {
                *index = (long)i;
                return TS_OK;
            }
            continue;
        }
        OCSP_CERTID **id = &r->ids[i * HASHES + h];
        if (*id == NULL) {
            EVP_MD *md = EVP_MD_fetch(ts_provider_libctx(), OBJ_nid2sn(hash_nids[h]), NULL);
            *id = md != NULL ? OCSP_cert_to_id(md, NULL, r->issuers[i].cert) : NULL;
            EVP_MD_free(md);
            if (*id == NULL) {
                return ts_error_set_openssl(TS_ERR_CRYPTO, "cannot hash the issuer's name and "
                                                           "key");
            }
        }
        if (OCSP_id_issuer_cmp(cid, *id) == 0) {
            *index = (long)i;
            return TS_OK;
        }
    }
    return TS_OK;
}

/* Asks lookup about one serial and checks what it says. */
static ts_err lookup_one(ts_ocsp_lookup_fn lookup, void *arg, size_t issuer, OCSP_CERTID *cid,
                         int *status, time_t *revoked_at, int *reason)
{
    ASN1_INTEGER *serial = NULL;
    ts_cert_status st = TS_CERT_UNKNOWN;
    ts_err rv;

    *status = V_OCSP_CERTSTATUS_UNKNOWN;
    *revoked_at = 0;
    *reason = -1;
    /* A serial no Tessera CA could have issued (RFC 5280 section 4.1.2.2) is unknown. */
    if (!OCSP_id_get0_info(NULL, NULL, NULL, &serial, cid) || serial == NULL ||
        ASN1_STRING_type(serial) != V_ASN1_INTEGER || ASN1_STRING_length(serial) > TS_SERIAL_LEN) {
        return TS_OK;
    }
    rv = lookup(arg, issuer, serial, &st, revoked_at, reason);
    if (rv != TS_OK) {
        return ts_error_prefix(rv, "OCSP status lookup");
    }
    switch (st) {
    case TS_CERT_GOOD:
        *status = V_OCSP_CERTSTATUS_GOOD;
        return TS_OK;
    case TS_CERT_UNKNOWN:
        return TS_OK;
    case TS_CERT_REVOKED:
        if (*revoked_at <= 0 || (*reason != -1 && (ts_crl_reason_name(*reason) == NULL ||
                                                   *reason == CRL_REASON_REMOVE_FROM_CRL))) {
            return ts_error_set(TS_ERR_INVALID,
                                "the OCSP lookup gave a revocation without a "
                                "time or with reason %d",
                                *reason);
        }
        *status = V_OCSP_CERTSTATUS_REVOKED;
        /* As in CRLs (RFC 5280 section 5.3.1), "unspecified" is said by leaving it out. */
        if (*reason == CRL_REASON_UNSPECIFIED) {
            *reason = -1;
        }
        return TS_OK;
    }
    return ts_error_set(TS_ERR_INVALID, "the OCSP lookup gave status %d", (int)st);
}

static ts_err add_statuses(OCSP_BASICRESP *bs, OCSP_REQUEST *req, const long *match, long chosen,
                           ts_ocsp_lookup_fn lookup, void *arg, time_t now)
{
    ASN1_GENERALIZEDTIME *this_upd = ASN1_GENERALIZEDTIME_set(NULL, now);
    ASN1_GENERALIZEDTIME *next_upd = ASN1_GENERALIZEDTIME_set(NULL, now + TS_OCSP_VALIDITY);
    ASN1_GENERALIZEDTIME *rev_time = NULL;
    ts_err rv = TS_OK;

    if (this_upd == NULL || next_upd == NULL) {
        rv = ts_error_set_openssl(TS_ERR_NOMEM, "out of memory for an OCSP response");
    }
    for (int i = 0; rv == TS_OK && i < OCSP_request_onereq_count(req); i++) {
        OCSP_CERTID *cid = OCSP_onereq_get0_id(OCSP_request_onereq_get0(req, i));
        int status = V_OCSP_CERTSTATUS_UNKNOWN, reason = -1;
        time_t revoked_at = 0;

        /* CertIDs of another issuer than the one that signs are answered "unknown". */
        if (match[i] == chosen) {
            rv = lookup_one(lookup, arg, (size_t)chosen, cid, &status, &revoked_at, &reason);
        }
        if (rv != TS_OK) {
            break;
        }
        ASN1_GENERALIZEDTIME_free(rev_time);
        rev_time = NULL;
        if (status == V_OCSP_CERTSTATUS_REVOKED) {
            rev_time = ASN1_GENERALIZEDTIME_set(NULL, revoked_at);
        }
        /* RFC 6960 section 4.2.1: the CertID is echoed as asked, with its hash algorithm. */
        if ((status == V_OCSP_CERTSTATUS_REVOKED && rev_time == NULL) ||
            OCSP_basic_add1_status(bs, cid, status, reason, rev_time, this_upd, next_upd) == NULL) {
            rv = ts_error_set_openssl(TS_ERR_CRYPTO, "cannot add a status to the OCSP response");
        }
    }
    ASN1_GENERALIZEDTIME_free(rev_time);
    ASN1_GENERALIZEDTIME_free(this_upd);
    ASN1_GENERALIZEDTIME_free(next_upd);
    return rv;
}

/* RFC 8954 section 2.1: nonces of up to 32 octets are echoed; a longer one is left out. */
static ts_err copy_nonce(OCSP_BASICRESP *bs, OCSP_REQUEST *req)
{
    int idx = OCSP_REQUEST_get_ext_by_NID(req, NID_id_pkix_OCSP_Nonce, -1);
    X509_EXTENSION *ext = idx >= 0 ? OCSP_REQUEST_get_ext(req, idx) : NULL;

    if (ext == NULL || ASN1_STRING_length(X509_EXTENSION_get_data(ext)) > NONCE_MAX) {
        return TS_OK;
    }
    if (OCSP_copy_nonce(bs, req) <= 0) {
        return ts_error_set_openssl(TS_ERR_CRYPTO, "cannot copy the OCSP nonce");
    }
    return TS_OK;
}

ts_err ts_ocsp_sign_ctx(EVP_PKEY *key, EVP_MD_CTX **out)
{
    if (out == NULL) {
        return ts_error_set(TS_ERR_INVALID, "ts_ocsp_sign_ctx: nowhere to put the context");
    }
    *out = NULL;
    if (key == NULL) {
        return ts_error_set(TS_ERR_INVALID, "ts_ocsp_sign_ctx: no key");
    }
    return ts_pki_sign_ctx(key, ts_pki_ca_digest(key), out);
}

/* A context to sign one response: a copy of the issuer's prepared one, else a new one. */
static ts_err response_sign_ctx(const ts_ocsp_issuer *issuer, EVP_MD_CTX **out)
{
    if (issuer->sign == NULL) {
        return ts_ocsp_sign_ctx(issuer->key, out);
    }
    *out = EVP_MD_CTX_new();
    if (*out == NULL || EVP_MD_CTX_copy_ex(*out, issuer->sign) != 1) {
        EVP_MD_CTX_free(*out);
        *out = NULL;
        return ts_error_set_openssl(TS_ERR_CRYPTO, "cannot copy the OCSP signing context");
    }
    return TS_OK;
}

static ts_err sign_response(OCSP_BASICRESP *bs, const ts_ocsp_issuer *issuer, uint8_t **out,
                            size_t *out_len)
{
    EVP_MD_CTX *mctx = NULL;
    OCSP_RESPONSE *r = NULL;
    ts_err rv = response_sign_ctx(issuer, &mctx);

    /* RFC 6960 section 4.2.2.2: the CA that issued the certificates signs; the responder ID is
     * its key hash, and its certificate travels in the response. */
    if (rv == TS_OK && OCSP_basic_sign_ctx(bs, issuer->cert, mctx, NULL, OCSP_RESPID_KEY) != 1) {
        rv = ts_error_set_openssl(TS_ERR_CRYPTO, "cannot sign the OCSP response");
    }
    if (rv == TS_OK) {
        r = OCSP_response_create(OCSP_RESPONSE_STATUS_SUCCESSFUL, bs);
        rv = encode(r, out, out_len);
    }
    OCSP_RESPONSE_free(r);
    EVP_MD_CTX_free(mctx);
    return rv;
}

static ts_err check_args(const ts_ocsp_issuer *issuers, size_t issuer_count,
                         ts_ocsp_lookup_fn lookup, uint8_t **resp, size_t *resp_len)
{
    if (resp == NULL || resp_len == NULL || issuers == NULL || issuer_count == 0 ||
        lookup == NULL) {
        return ts_error_set(TS_ERR_INVALID, "the OCSP responder needs issuers and a lookup");
    }
    *resp = NULL;
    *resp_len = 0;
    for (size_t i = 0; i < issuer_count; i++) {
        if (issuers[i].cert == NULL || issuers[i].key == NULL) {
            return ts_error_set(TS_ERR_INVALID, "OCSP issuer %zu has no certificate or key", i);
        }
        /* A prepared context holds the key it was made on: it must be this issuer's. */
        if (issuers[i].sign != NULL &&
            EVP_PKEY_CTX_get0_pkey(EVP_MD_CTX_get_pkey_ctx(issuers[i].sign)) != issuers[i].key) {
            return ts_error_set(TS_ERR_INVALID,
                                "OCSP issuer %zu: its signing context was made on another key", i);
        }
    }
    return TS_OK;
}

ts_err ts_ocsp_respond(const uint8_t *request, size_t request_len, const ts_ocsp_issuer *issuers,
                       size_t issuer_count, ts_ocsp_lookup_fn lookup, void *arg, time_t now,
                       uint8_t **resp, size_t *resp_len)
{
    return ts_ocsp_respond_ex(request, request_len, issuers, issuer_count, lookup, arg, now, resp,
                              resp_len, NULL);
}

ts_err ts_ocsp_respond_ex(const uint8_t *request, size_t request_len, const ts_ocsp_issuer *issuers,
                          size_t issuer_count, ts_ocsp_lookup_fn lookup, void *arg, time_t now,
                          uint8_t **resp, size_t *resp_len, int *plain_single)
{
    responder r = {issuers, issuer_count, NULL};
    const unsigned char *p = request;
    OCSP_REQUEST *req = NULL;
    OCSP_BASICRESP *bs = NULL;
    long match[TS_OCSP_SINGLE_MAX];
    long chosen = -1;
    int n = 0;
    ts_err rv = check_args(issuers, issuer_count, lookup, resp, resp_len);

    if (plain_single != NULL) {
        *plain_single = 0;
    }
    if (rv != TS_OK) {
        return rv;
    }
    now = now != 0 ? now : time(NULL);
    if (request != NULL && request_len > 0 && request_len <= TS_OCSP_REQUEST_MAX) {
        req = d2i_OCSP_REQUEST(NULL, &p, (long)request_len);
    }
    if (req != NULL) {
        n = OCSP_request_onereq_count(req);
    }
    /* RFC 6960 section 2.3: "malformedRequest: Illegal confirmation request". */
    if (req == NULL || p != request + request_len || n < 1 || n > TS_OCSP_SINGLE_MAX) {
        ERR_clear_error();
        rv = status_only(OCSP_RESPONSE_STATUS_MALFORMEDREQUEST, resp, resp_len);
        goto cleanup;
    }
    r.ids = OPENSSL_zalloc(issuer_count * HASHES * sizeof *r.ids);
    if (r.ids == NULL) {
        rv = ts_error_set(TS_ERR_NOMEM, "out of memory for the OCSP issuers");
        goto cleanup;
    }
    for (int i = 0; rv == TS_OK && i < n; i++) {
        rv = match_issuer(&r, OCSP_onereq_get0_id(OCSP_request_onereq_get0(req, i)), &match[i]);
        if (rv == TS_OK && chosen < 0) {
            chosen = match[i];
        }
    }
    if (rv != TS_OK) {
        goto cleanup;
    }
    /* No CertID names an issuer of ours: nothing can be signed with authority (section 2.3,
     * "unauthorized"). */
    if (chosen < 0) {
        rv = status_only(OCSP_RESPONSE_STATUS_UNAUTHORIZED, resp, resp_len);
        goto cleanup;
    }
    bs = OCSP_BASICRESP_new();
    if (bs == NULL) {
        rv = ts_error_set_openssl(TS_ERR_NOMEM, "out of memory for an OCSP response");
        goto cleanup;
    }
    rv = add_statuses(bs, req, match, chosen, lookup, arg, now);
    if (rv == TS_OK) {
        rv = copy_nonce(bs, req);
    }
    if (rv == TS_OK) {
        rv = sign_response(bs, &issuers[chosen], resp, resp_len);
    }
    if (rv == TS_OK && plain_single != NULL) {
        *plain_single = n == 1 && OCSP_REQUEST_get_ext_count(req) == 0 &&
                        OCSP_ONEREQ_get_ext_count(OCSP_request_onereq_get0(req, 0)) == 0;
    }
cleanup:
    if (r.ids != NULL) {
        for (size_t i = 0; i < issuer_count * HASHES; i++) {
            OCSP_CERTID_free(r.ids[i]);
        }
        OPENSSL_free(r.ids);
    }
    OCSP_BASICRESP_free(bs);
    OCSP_REQUEST_free(req);
    return rv;
}
