/*
 * State every worker shares: failed claim-code attempts per source address, and the CRL cache.
 * Each is behind its own mutex; neither is on the path of an ordinary request.
 */
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/x509.h>

#include "common/error_internal.h"
#include "service/svc_core.h"

enum {
    SVC_CLAIM_ADDRS = 4096,     /* addresses remembered at once */
    SVC_CRL_HOURS = 24,         /* nextUpdate of a CRL the service makes */
    SVC_CRL_MARGIN_S = 60 * 60, /* remade within this long of its nextUpdate */
};

typedef struct claim_entry {
    char addr[SVC_ADDR_MAX];
    uint64_t window_start_ns;
    unsigned fails;
} claim_entry;

struct svc_claims {
    pthread_mutex_t lock;
    claim_entry entries[SVC_CLAIM_ADDRS];
    size_t count;
};

typedef struct crl_entry {
    char tenant[TS_NAME_MAX + 1];
    uint8_t *der;
    size_t len;
    int64_t feed_seq; /* the revocation feed's head before it was made */
    time_t next_update;
} crl_entry;

struct svc_crl_cache {
    pthread_mutex_t lock;
    crl_entry *entries;
    size_t count;
};

ts_err svc_shared_new(svc_server *server)
{
    server->claims = OPENSSL_zalloc(sizeof *server->claims);
    server->crls = OPENSSL_zalloc(sizeof *server->crls);
    if (server->claims == NULL || server->crls == NULL) {
        OPENSSL_free(server->claims);
        OPENSSL_free(server->crls);
        server->claims = NULL;
        server->crls = NULL;
        return ts_error_set(TS_ERR_NOMEM, "out of memory");
    }
    pthread_mutex_init(&server->claims->lock, NULL);
    pthread_mutex_init(&server->crls->lock, NULL);
    return TS_OK;
}

void svc_shared_free(svc_server *server)
{
    if (server->claims != NULL) {
        pthread_mutex_destroy(&server->claims->lock);
        OPENSSL_free(server->claims);
        server->claims = NULL;
    }
    if (server->crls != NULL) {
        for (size_t i = 0; i < server->crls->count; i++) {
            OPENSSL_free(server->crls->entries[i].der);
        }
        OPENSSL_free(server->crls->entries);
        pthread_mutex_destroy(&server->crls->lock);
        OPENSSL_free(server->crls);
        server->crls = NULL;
    }
}

/* --- Claim codes ------------------------------------------------------------------------------ */

static const uint64_t window_ns = (uint64_t)SVC_CLAIM_WINDOW_S * 1000000000ULL;

static claim_entry *claim_find(svc_claims *c, const char *addr)
{
    for (size_t i = 0; i < c->count; i++) {
        if (strcmp(c->entries[i].addr, addr) == 0) {
            return &c->entries[i];
        }
    }
    return NULL;
}

int svc_claim_limited(svc_server *server, const char *addr)
{
    svc_claims *c = server->claims;
    uint64_t now = svc_now_ns();
    pthread_mutex_lock(&c->lock);
    claim_entry *e = claim_find(c, addr);
    int limited =
        e != NULL && now - e->window_start_ns < window_ns && e->fails >= SVC_CLAIM_FAILS_MAX;
    pthread_mutex_unlock(&c->lock);
    return limited;
}

void svc_claim_failed(svc_server *server, const char *addr)
{
    svc_claims *c = server->claims;
    uint64_t now = svc_now_ns();
    pthread_mutex_lock(&c->lock);
    claim_entry *e = claim_find(c, addr);
    if (e == NULL) {
        if (c->count < SVC_CLAIM_ADDRS) {
            e = &c->entries[c->count++];
        } else {
            /* Full: reuse the entry whose window began longest ago (an expired one first). */
            e = &c->entries[0];
            for (size_t i = 1; i < c->count; i++) {
                if (c->entries[i].window_start_ns < e->window_start_ns) {
                    e = &c->entries[i];
                }
            }
        }
        snprintf(e->addr, sizeof e->addr, "%s", addr);
        e->window_start_ns = now;
        e->fails = 0;
    }
    if (now - e->window_start_ns >= window_ns) {
        e->window_start_ns = now;
        e->fails = 0;
    }
    if (e->fails < UINT32_MAX) {
        e->fails++;
    }
    pthread_mutex_unlock(&c->lock);
}

/* --- CRLs ------------------------------------------------------------------------------------- */

static crl_entry *crl_find(svc_crl_cache *cache, const char *tenant)
{
    for (size_t i = 0; i < cache->count; i++) {
        if (strcmp(cache->entries[i].tenant, tenant) == 0) {
            return &cache->entries[i];
        }
    }
    return NULL;
}

/* Makes a CRL of tenant; fills e's DER and nextUpdate. */
static ts_err crl_make(ts_ca *ca, const char *tenant, crl_entry *e)
{
    X509_CRL *crl = NULL;
    ts_err rv = ts_ca_crl(ca, tenant, SVC_CRL_HOURS, &crl);
    if (rv != TS_OK) {
        return rv;
    }
    uint8_t *der = NULL;
    int len = i2d_X509_CRL(crl, &der);
    const ASN1_TIME *next = X509_CRL_get0_nextUpdate(crl);
    struct tm tm;
    if (len <= 0 || next == NULL || ASN1_TIME_to_tm(next, &tm) != 1) {
        OPENSSL_free(der);
        X509_CRL_free(crl);
        return ts_error_set_openssl(TS_ERR_CRYPTO, "cannot encode the CRL of %s", tenant);
    }
    X509_CRL_free(crl);
    OPENSSL_free(e->der);
    e->der = der;
    e->len = (size_t)len;
    e->next_update = timegm(&tm);
    return TS_OK;
}

ts_err svc_crl_current(svc_server *server, ts_ca *ca, const char *tenant, uint8_t **der,
                       size_t *len)
{
    *der = NULL;
    *len = 0;
    svc_crl_cache *cache = server->crls;
    int64_t head = 0;
    /* Read the feed's head first: a revocation after this read moves it again, and the next
     * request remakes the CRL. */
    ts_err rv = ts_ca_feed_head(ca, &head);
    if (rv != TS_OK) {
        return rv;
    }
    pthread_mutex_lock(&cache->lock);
    crl_entry *e = crl_find(cache, tenant);
    time_t now = time(NULL);
    if (e == NULL || e->feed_seq != head || now + SVC_CRL_MARGIN_S >= e->next_update) {
        crl_entry fresh = {0};
        rv = crl_make(ca, tenant, &fresh);
        if (rv != TS_OK) {
            goto out;
        }
        fresh.feed_seq = head;
        snprintf(fresh.tenant, sizeof fresh.tenant, "%s", tenant);
        if (e == NULL) {
            crl_entry *grown =
                OPENSSL_realloc(cache->entries, (cache->count + 1) * sizeof *cache->entries);
            if (grown == NULL) {
                OPENSSL_free(fresh.der);
                rv = ts_error_set(TS_ERR_NOMEM, "out of memory");
                goto out;
            }
            cache->entries = grown;
            e = &cache->entries[cache->count++];
        } else {
            OPENSSL_free(e->der);
        }
        *e = fresh;
    }
    *der = OPENSSL_memdup(e->der, e->len);
    if (*der == NULL) {
        rv = ts_error_set(TS_ERR_NOMEM, "out of memory");
        goto out;
    }
    *len = e->len;
out:
    pthread_mutex_unlock(&cache->lock);
    return rv;
}
