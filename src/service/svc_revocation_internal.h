/*
 * Inside the revocation routes (svc_revocation*.c): the OCSP responder a worker keeps warm.
 *
 * ts_ca_ocsp() lists the tenants and loads every issuing CA certificate and key for each request.
 * A worker answers thousands of requests a second, so it keeps the issuers (certificates, keys,
 * store ids) between requests instead and checks them against the store at most once every
 * SVC_OCSP_RECHECK_MS, and at once (at most every SVC_OCSP_MISS_RECHECK_MS) when a request names
 * no issuer it knows, so a new tenant is answered without waiting. The certificate's status is
 * read from the store for every request, so a revocation by any process on the database shows in
 * the next answer.
 *
 * A request without a nonce for one certificate (RFC 5019's profile: what browsers and TLS
 * stacks send) may be answered with a response the worker signed for the same request bytes
 * less than SVC_OCSP_REUSE_S ago, when the store still gives the same status: the status is read
 * for every request, and a change (a revocation) means a new response at once. Requests with a
 * nonce are always signed afresh.
 *
 * Thread safety: the cache belongs to the calling thread (thread-specific data, freed when the
 * thread ends) and to the ts_ca it was made with; another ts_ca on the same thread replaces it.
 */
#ifndef TS_SVC_REVOCATION_INTERNAL_H
#define TS_SVC_REVOCATION_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/ocsp.h>

#include "tessera/ca.h"
#include "tessera/error.h"
#include "tessera/keystore.h"
#include "tessera/pki.h"

enum {
    SVC_OCSP_RECHECK_MS = 1000,     /* the issuers are compared with the store this often */
    SVC_OCSP_MISS_RECHECK_MS = 100, /* and on an unknown issuer, at most this often */
    SVC_OCSP_MAX_AGE = 60,          /* Cache-Control max-age of a GET answer, seconds */
    SVC_OCSP_REUSE_S = 60,          /* a signed response may be sent again this long */
    SVC_OCSP_REUSE_SLOTS = 4096,    /* responses a worker keeps for that */
    SVC_OCSP_ID_HASHES = 2, /* CertID hashes matched without ts_ocsp_respond(): SHA-1, -256 */
    SVC_CRL_MAX_AGE = 60,   /* Cache-Control max-age of a CRL, seconds */
};

/*
 * Answers a DER OCSPRequest as ts_ca_ocsp() does (RFC 6960; malformed requests get a
 * malformedRequest response, requests for no issuer of the instance an unauthorized one), from
 * the calling thread's cached issuers. *ocsp_status is the OCSPResponseStatus of the answer
 * (OCSP_RESPONSE_STATUS_*); *age_s how many seconds ago it was signed (0 unless it was sent
 * before). A failure (the store or key store) gives no response: the caller
 * answers tryLater. OPENSSL_free(*resp).
 */
TS_MUST_CHECK ts_err svc_ocsp_answer(ts_ca *ca, const uint8_t *request, size_t request_len,
                                     uint8_t **resp, size_t *resp_len, int *ocsp_status,
                                     unsigned *age_s);

/* An unsigned OCSPResponse with only an error status (RFC 6960 section 2.3). OPENSSL_free. */
TS_MUST_CHECK ts_err svc_ocsp_status_only(int ocsp_status, uint8_t **resp, size_t *resp_len);

/* --- Responses to send again (svc_revocation_reuse.c) --------------------------------------- */

/* What a response says about its one certificate. */
typedef struct svc_ocsp_state {
    int64_t ca_id;     /* the issuing CA's store id */
    int status;        /* V_OCSP_CERTSTATUS_* */
    time_t revoked_at; /* when revoked, else 0 */
    int reason;        /* when revoked, else -1 */
} svc_ocsp_state;

/* The certificate a kept request asks about. */
typedef struct svc_ocsp_subject {
    int64_t ca_id;
    char serial[TS_SERIAL_HEX];
} svc_ocsp_subject;

typedef struct svc_ocsp_reuse svc_ocsp_reuse;

svc_ocsp_reuse *svc_ocsp_reuse_new(void);
void svc_ocsp_reuse_free(svc_ocsp_reuse *t);
/* Forgets every response (the issuers changed). */
void svc_ocsp_reuse_clear(svc_ocsp_reuse *t);

/* What the request whose SHA-256 is key asks about, when a response to it is kept; else NULL.
 * Valid until the next call on t. */
const svc_ocsp_subject *svc_ocsp_reuse_find(svc_ocsp_reuse *t, const uint8_t key[32]);

/*
 * The response kept for the request whose SHA-256 is key, when it says state and is younger than
 * SVC_OCSP_REUSE_S: 1 and a copy in *resp (OPENSSL_free), its age in *age_s; else 0.
 */
int svc_ocsp_reuse_get(svc_ocsp_reuse *t, const uint8_t key[32], const svc_ocsp_state *state,
                       uint64_t now_ms, uint8_t **resp, size_t *len, unsigned *age_s);
/* Keeps a copy of a response (on failure simply nothing is kept). */
void svc_ocsp_reuse_put(svc_ocsp_reuse *t, const uint8_t key[32], const svc_ocsp_subject *subject,
                        const svc_ocsp_state *state, uint64_t now_ms, const uint8_t *resp,
                        size_t len);

/* --- The issuers a worker keeps (svc_revocation_issuers.c) ----------------------------------- */

/* One issuing CA, as the store named it when it was loaded. */
typedef struct svc_ocsp_issuer {
    int64_t ca_id;
    char key_label[TS_NAME_MAX + 1];
    uint8_t *der; /* the stored certificate, to notice a change */
    size_t der_len;
    X509 *cert;
    EVP_PKEY *key;
    OCSP_CERTID *ids[SVC_OCSP_ID_HASHES]; /* this CA as SHA-1 and SHA-256 CertIDs name it */
    EVP_MD_CTX *sign;                     /* ts_ocsp_sign_ctx() on key, copied per response */
} svc_ocsp_issuer;

typedef struct svc_ocsp_cache {
    const ts_ca *ca; /* the handle it was made with (compared, never used through) */
    ts_keystore *ks; /* a reference to the key store the keys came from */
    svc_ocsp_issuer *issuers;
    ts_ocsp_issuer *list; /* the same certificates and keys, as ts_ocsp_respond() takes them */
    size_t count;
    uint64_t checked_ms;   /* when the issuers were last compared with the store; 0: never */
    svc_ocsp_reuse *reuse; /* responses to send again; NULL until the first one */
    EVP_MD *sha256;        /* fetched once, for the keys of reuse */
} svc_ocsp_cache;

/* Monotonic milliseconds. */
uint64_t svc_ocsp_now_ms(void);

/* The calling thread's cache (freed when the thread ends), or NULL when thread-specific data
 * cannot be had. */
svc_ocsp_cache *svc_ocsp_cache_of_thread(void);

/* Frees what the cache holds and zeroes it. */
void svc_ocsp_cache_empty(svc_ocsp_cache *cache);

/*
 * Compares the cache with the store's active issuing CAs and reloads what differs: a CA that is
 * still the same row with the same certificate and key label keeps its loaded key. *changed says
 * whether any issuer is other than before (the responses kept are then forgotten). On failure the
 * cache is emptied, to be loaded anew by the next request.
 */
TS_MUST_CHECK ts_err svc_ocsp_cache_refresh(svc_ocsp_cache *cache, ts_ca *ca, int *changed);

/* The index of the issuer a SHA-1 or SHA-256 CertID names (RFC 6960 section 4.1.1), or -1. */
long svc_ocsp_cache_match(const svc_ocsp_cache *cache, OCSP_CERTID *cid);

#endif
