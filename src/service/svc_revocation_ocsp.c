/*
 * The OCSP responder a worker keeps warm (svc_revocation_internal.h): answers from the thread's
 * cached issuers (svc_revocation_issuers.c) through ts_ocsp_respond(), with the certificate's
 * status read from the store for every request, and nonce-less single requests answered again
 * with a response signed moments ago while the status stays the same
 * (svc_revocation_reuse.c).
 */
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ocsp.h>

#include "common/error_internal.h"
#include "service/svc_revocation_internal.h"
#include "tessera/pki.h"
#include "tessera/store.h"

/* What the status lookup needs, and what it found. */
typedef struct ocsp_call {
    ts_store *store;
    const svc_ocsp_cache *cache;
    unsigned lookups;         /* how many CertIDs were looked up */
    svc_ocsp_state state;     /* the last one's answer */
    svc_ocsp_subject subject; /* the last one looked up in the store */
    int have_subject;
} ocsp_call;

/* The certificate's status from its row: good, revoked (time and reason) or unknown. */
static ts_err state_of(ts_store *store, int64_t ca_id, const char *serial, svc_ocsp_state *out)
{
    ts_cert_row row;
    ts_err rv;

    out->ca_id = ca_id;
    out->status = V_OCSP_CERTSTATUS_UNKNOWN;
    out->revoked_at = 0;
    out->reason = -1;
    memset(&row, 0, sizeof row);
    rv = ts_store_cert_state_by_issuer(store, ca_id, serial, &row);
    if (rv == TS_ERR_NOT_FOUND) {
        return TS_OK;
    }
    if (rv == TS_OK && row.state == TS_CERT_REVOKED_STATE) {
        out->status = V_OCSP_CERTSTATUS_REVOKED;
        out->revoked_at = row.revoked_at;
        out->reason = row.revocation_reason;
    } else if (rv == TS_OK) {
        out->status = V_OCSP_CERTSTATUS_GOOD;
    }
    ts_cert_row_clear(&row);
    return rv;
}

/* RFC 6960 section 2.2: the lookup ts_ocsp_respond() asks for each CertID of a known issuer. */
static ts_err status_lookup(void *arg, size_t index, const ASN1_INTEGER *serial,
                            ts_cert_status *status, time_t *revoked_at, int *reason)
{
    ocsp_call *call = arg;
    char hex[TS_SERIAL_HEX];
    ts_err rv;

    call->lookups++;
    *status = TS_CERT_UNKNOWN;
    if (index >= call->cache->count || ts_serial_hex(serial, hex, sizeof hex) != TS_OK) {
        ts_error_clear();
        return TS_OK; /* not a serial any issuer of ours made */
    }
    rv = state_of(call->store, call->cache->issuers[index].ca_id, hex, &call->state);
    if (rv != TS_OK) {
        return rv;
    }
    call->subject.ca_id = call->cache->issuers[index].ca_id;
    memcpy(call->subject.serial, hex, sizeof call->subject.serial);
    call->have_subject = 1;
    *revoked_at = call->state.revoked_at;
    *reason = call->state.reason;
    *status = call->state.status == V_OCSP_CERTSTATUS_GOOD      ? TS_CERT_GOOD
              : call->state.status == V_OCSP_CERTSTATUS_REVOKED ? TS_CERT_REVOKED
                                                                : TS_CERT_UNKNOWN;
    return TS_OK;
}

ts_err svc_ocsp_status_only(int ocsp_status, uint8_t **resp, size_t *resp_len)
{
    OCSP_RESPONSE *r = OCSP_response_create(ocsp_status, NULL);
    unsigned char *der = NULL;
    int len = r != NULL ? i2d_OCSP_RESPONSE(r, &der) : -1;

    OCSP_RESPONSE_free(r);
    if (len <= 0) {
        return ts_error_set_openssl(TS_ERR_CRYPTO, "cannot encode an OCSP response");
    }
    *resp = der;
    *resp_len = (size_t)len;
    return TS_OK;
}

/* The responseStatus of an encoded response (only asked when no status was looked up). */
static int response_status(const uint8_t *resp, size_t len)
{
    const unsigned char *p = resp;
    OCSP_RESPONSE *r = d2i_OCSP_RESPONSE(NULL, &p, (long)len);
    int status = r != NULL ? OCSP_response_status(r) : OCSP_RESPONSE_STATUS_INTERNALERROR;

    OCSP_RESPONSE_free(r);
    ERR_clear_error();
    return status;
}

/* *plain_single: the request may get this response again (ts_ocsp_respond_ex). */
static ts_err respond(svc_ocsp_cache *cache, ts_ca *ca, const uint8_t *request, size_t request_len,
                      uint8_t **resp, size_t *resp_len, ocsp_call *call, int *plain_single)
{
    *plain_single = 0;
    memset(call, 0, sizeof *call);
    call->store = ts_ca_store(ca);
    call->cache = cache;
    if (cache->count == 0) {
        /* No issuing CA at all: nothing can be answered with authority (RFC 6960 section 2.3). */
        return svc_ocsp_status_only(OCSP_RESPONSE_STATUS_UNAUTHORIZED, resp, resp_len);
    }
    return ts_ocsp_respond_ex(request, request_len, cache->list, cache->count, status_lookup, call,
                              0, resp, resp_len, plain_single);
}

/* The key a request's response is kept under: the SHA-256 of its bytes. */
static int reuse_key(svc_ocsp_cache *cache, const uint8_t *request, size_t len, uint8_t key[32])
{
    if (len == 0 || len > TS_OCSP_REQUEST_MAX) {
        return 0;
    }
    if (cache->reuse == NULL) {
        cache->reuse = svc_ocsp_reuse_new();
    }
    if (cache->sha256 == NULL) {
        cache->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    }
    if (cache->reuse == NULL || cache->sha256 == NULL ||
        EVP_Digest(request, len, key, NULL, cache->sha256, NULL) != 1) {
        ERR_clear_error();
        return 0;
    }
    return 1;
}

/*
 * Answers with the issuers of the cache. A request whose bytes were answered before gets that
 * response again while it is young and the store gives the same status (read for every request,
 * so a revocation is never hidden); any other gets a new one, kept when the request allows.
 */
static ts_err respond_reusing(svc_ocsp_cache *cache, ts_ca *ca, const uint8_t *request,
                              size_t request_len, uint8_t **resp, size_t *resp_len, int *looked_up,
                              unsigned *age_s)
{
    uint64_t now = svc_ocsp_now_ms();
    const svc_ocsp_subject *seen = NULL;
    svc_ocsp_subject subject;
    svc_ocsp_state state;
    uint8_t key[32];
    ocsp_call call;
    int keyed = reuse_key(cache, request, request_len, key);
    ts_err rv;

    if (keyed) {
        seen = svc_ocsp_reuse_find(cache->reuse, key);
    }
    if (seen != NULL) {
        subject = *seen;
        rv = state_of(ts_ca_store(ca), subject.ca_id, subject.serial, &state);
        if (rv != TS_OK) {
            return ts_error_prefix(rv, "OCSP status lookup");
        }
        if (svc_ocsp_reuse_get(cache->reuse, key, &state, now, resp, resp_len, age_s)) {
            *looked_up = 1;
            return TS_OK;
        }
    }
    int plain_single = 0;
    rv = respond(cache, ca, request, request_len, resp, resp_len, &call, &plain_single);
    *looked_up = call.lookups > 0;
    /* Kept for the same request bytes (again, when it was kept before): one CertID of ours,
     * looked up, no nonce (RFC 8954: a nonce asks for a fresh response) nor any other
     * extension. */
    if (rv == TS_OK && keyed && (seen != NULL || plain_single) && call.lookups == 1 &&
        call.have_subject) {
        svc_ocsp_reuse_put(cache->reuse, key, &call.subject, &call.state, now, *resp, *resp_len);
    }
    return rv;
}

/* The responder on a cache that is checked against the store when due. */
static ts_err answer_cached(svc_ocsp_cache *cache, ts_ca *ca, const uint8_t *request,
                            size_t request_len, uint8_t **resp, size_t *resp_len, int *looked_up,
                            unsigned *age_s)
{
    uint64_t now = svc_ocsp_now_ms();
    int changed = 0;
    ts_err rv = TS_OK;

    if (cache->ca != ca) {
        svc_ocsp_cache_empty(cache);
        cache->ca = ca;
    }
    if (cache->checked_ms == 0 || now - cache->checked_ms >= SVC_OCSP_RECHECK_MS) {
        rv = svc_ocsp_cache_refresh(cache, ca, &changed);
        if (rv != TS_OK) {
            return rv;
        }
        cache->checked_ms = now;
    }
    rv = respond_reusing(cache, ca, request, request_len, resp, resp_len, looked_up, age_s);
    if (rv != TS_OK || *looked_up || now - cache->checked_ms < SVC_OCSP_MISS_RECHECK_MS) {
        return rv;
    }
    /* No issuer of the request was known: a tenant made since the last check may be asked for. */
    rv = svc_ocsp_cache_refresh(cache, ca, &changed);
    if (rv != TS_OK) {
        return rv;
    }
    cache->checked_ms = now;
    if (changed) {
        OPENSSL_free(*resp);
        *resp = NULL;
        *resp_len = 0;
        rv = respond_reusing(cache, ca, request, request_len, resp, resp_len, looked_up, age_s);
    }
    return rv;
}

ts_err svc_ocsp_answer(ts_ca *ca, const uint8_t *request, size_t request_len, uint8_t **resp,
                       size_t *resp_len, int *ocsp_status, unsigned *age_s)
{
    svc_ocsp_cache *cache = svc_ocsp_cache_of_thread();
    svc_ocsp_cache local;
    int looked_up = 0;
    ts_err rv;

    *resp = NULL;
    *resp_len = 0;
    *ocsp_status = OCSP_RESPONSE_STATUS_INTERNALERROR;
    *age_s = 0;
    if (cache != NULL) {
        rv = answer_cached(cache, ca, request, request_len, resp, resp_len, &looked_up, age_s);
    } else {
        /* Without thread-specific data, a cache for this one request. */
        memset(&local, 0, sizeof local);
        rv = answer_cached(&local, ca, request, request_len, resp, resp_len, &looked_up, age_s);
        svc_ocsp_cache_empty(&local);
    }
    if (rv != TS_OK) {
        OPENSSL_free(*resp);
        *resp = NULL;
        *resp_len = 0;
        return rv;
    }
    /* A status was looked up only on the way to a signed, successful response. */
    *ocsp_status = looked_up ? OCSP_RESPONSE_STATUS_SUCCESSFUL : response_status(*resp, *resp_len);
    return TS_OK;
}
