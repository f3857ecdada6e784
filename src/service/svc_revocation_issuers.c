/*
 * The issuing CAs a worker's OCSP responder keeps (svc_revocation_internal.h): certificates, keys
 * and CertIDs of every tenant's active issuing CA, per thread, compared with the store when the
 * caller asks and reloaded where they differ.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/ocsp.h>

#include "common/error_internal.h"
#include "service/svc_revocation_internal.h"
#include "tessera/keystore.h"
#include "tessera/store.h"

/* The CertID hash algorithms whose CertIDs are kept, in the order of svc_ocsp_issuer.ids. */
static const char *const id_hashes[SVC_OCSP_ID_HASHES] = {"SHA1", "SHA256"};

static pthread_once_t cache_once = PTHREAD_ONCE_INIT;
static pthread_key_t cache_key;
static int cache_key_ok;

uint64_t svc_ocsp_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000U + (uint64_t)ts.tv_nsec / 1000000U;
}

static void issuer_clear(svc_ocsp_issuer *issuer)
{
    OPENSSL_free(issuer->der);
    X509_free(issuer->cert);
    EVP_PKEY_free(issuer->key);
    for (size_t i = 0; i < SVC_OCSP_ID_HASHES; i++) {
        OCSP_CERTID_free(issuer->ids[i]);
    }
    EVP_MD_CTX_free(issuer->sign);
    memset(issuer, 0, sizeof *issuer);
}

static void issuers_free(svc_ocsp_issuer *issuers, size_t count)
{
    for (size_t i = 0; issuers != NULL && i < count; i++) {
        issuer_clear(&issuers[i]);
    }
    OPENSSL_free(issuers);
}

void svc_ocsp_cache_empty(svc_ocsp_cache *cache)
{
    issuers_free(cache->issuers, cache->count);
    OPENSSL_free(cache->list);
    ts_keystore_free(cache->ks);
    svc_ocsp_reuse_free(cache->reuse);
    EVP_MD_free(cache->sha256);
    memset(cache, 0, sizeof *cache);
}

static void cache_destroy(void *p)
{
    svc_ocsp_cache *cache = p;

    if (cache != NULL) {
        svc_ocsp_cache_empty(cache);
        OPENSSL_free(cache);
    }
}

static void cache_key_make(void)
{
    cache_key_ok = pthread_key_create(&cache_key, cache_destroy) == 0;
}

svc_ocsp_cache *svc_ocsp_cache_of_thread(void)
{
    svc_ocsp_cache *cache;

    if (pthread_once(&cache_once, cache_key_make) != 0 || !cache_key_ok) {
        return NULL;
    }
    cache = pthread_getspecific(cache_key);
    if (cache != NULL) {
        return cache;
    }
    cache = OPENSSL_zalloc(sizeof *cache);
    if (cache != NULL && pthread_setspecific(cache_key, cache) != 0) {
        OPENSSL_free(cache);
        cache = NULL;
    }
    return cache;
}

/* RFC 6960 section 4.1.1: the CertID parts that name this issuer (the serial left empty). */
static ts_err issuer_ids(svc_ocsp_issuer *issuer)
{
    for (size_t i = 0; i < SVC_OCSP_ID_HASHES; i++) {
        EVP_MD *md = EVP_MD_fetch(NULL, id_hashes[i], NULL);
        issuer->ids[i] = md != NULL ? OCSP_cert_to_id(md, NULL, issuer->cert) : NULL;
        EVP_MD_free(md);
        if (issuer->ids[i] == NULL) {
            return ts_error_set_openssl(TS_ERR_CRYPTO, "cannot hash the name and key of CA %lld",
                                        (long long)issuer->ca_id);
        }
    }
    return TS_OK;
}

/* Loads a CA's certificate and key; the key must be the certificate's (as the CA code checks). */
static ts_err issuer_load(ts_keystore *ks, const ts_ca_row *row, svc_ocsp_issuer *out)
{
    const unsigned char *p = row->cert_der;
    EVP_PKEY *pub = NULL;
    ts_err rv;

    memset(out, 0, sizeof *out);
    out->ca_id = row->id;
    snprintf(out->key_label, sizeof out->key_label, "%s", row->key_label);
    out->der = OPENSSL_memdup(row->cert_der, row->cert_len);
    out->der_len = row->cert_len;
    if (out->der == NULL) {
        return ts_error_set(TS_ERR_NOMEM, "out of memory for an OCSP issuer");
    }
    out->cert = d2i_X509(NULL, &p, (long)row->cert_len);
    if (out->cert == NULL || p != row->cert_der + row->cert_len) {
        issuer_clear(out);
        return ts_error_set_openssl(
            TS_ERR_CORRUPT, "the stored certificate of CA %lld is malformed", (long long)row->id);
    }
    rv = ts_keystore_public_key(ks, row->key_label, &pub);
    if (rv == TS_OK && EVP_PKEY_eq(pub, X509_get0_pubkey(out->cert)) != 1) {
        rv = ts_error_set(TS_ERR_CORRUPT, "key '%s' in %s is not the key of CA '%s'",
                          row->key_label, ts_keystore_uri(ks), row->subject);
    }
    if (rv == TS_OK) {
        rv = ts_keystore_evp_pkey(ks, row->key_label, &out->key);
    }
    if (rv == TS_OK) {
        rv = issuer_ids(out);
    }
    if (rv == TS_OK) {
        rv = ts_ocsp_sign_ctx(out->key, &out->sign);
    }
    EVP_PKEY_free(pub);
    if (rv != TS_OK) {
        issuer_clear(out);
        ts_error_prefix(rv, "the OCSP signing key of CA %lld", (long long)row->id);
    }
    return rv;
}

/* Moves the cached issuer that is exactly what row names into out; 0 when none is. */
static int issuer_reuse(svc_ocsp_cache *cache, const ts_ca_row *row, svc_ocsp_issuer *out)
{
    for (size_t i = 0; i < cache->count; i++) {
        svc_ocsp_issuer *c = &cache->issuers[i];
        if (c->cert != NULL && c->ca_id == row->id && c->der_len == row->cert_len &&
            memcmp(c->der, row->cert_der, row->cert_len) == 0 &&
            strcmp(c->key_label, row->key_label) == 0) {
            *out = *c;
            memset(c, 0, sizeof *c);
            return 1;
        }
    }
    return 0;
}

/* Whether the issuers, in order, are the cache's. */
static int issuers_same(const svc_ocsp_cache *cache, const svc_ocsp_issuer *issuers, size_t count)
{
    if (count != cache->count) {
        return 0;
    }
    for (size_t i = 0; i < count; i++) {
        if (issuers[i].ca_id != cache->issuers[i].ca_id) {
            return 0;
        }
    }
    return 1;
}

/* Two cheap reads per tenant; keys are loaded only for CAs that are new or changed. */
ts_err svc_ocsp_cache_refresh(svc_ocsp_cache *cache, ts_ca *ca, int *changed)
{
    ts_store *store = ts_ca_store(ca);
    ts_tenant_row *tenants = NULL;
    svc_ocsp_issuer *fresh = NULL;
    ts_ocsp_issuer *list = NULL;
    ts_keystore *ks = NULL;
    size_t ntenants = 0, n = 0, loaded = 0;
    ts_err rv;

    *changed = 0;
    rv = ts_ca_keystore(ca, &ks);
    if (rv == TS_OK) {
        rv = ts_store_tenant_list(store, &tenants, &ntenants);
    }
    if (rv == TS_OK) {
        fresh = OPENSSL_zalloc((ntenants + 1) * sizeof *fresh);
        list = OPENSSL_zalloc((ntenants + 1) * sizeof *list);
        if (fresh == NULL || list == NULL) {
            rv = ts_error_set(TS_ERR_NOMEM, "out of memory for the OCSP issuers");
        }
    }
    /* Keys of another key store than the one the instance has open now are not reused. */
    if (rv == TS_OK && cache->ks != ks) {
        issuers_free(cache->issuers, cache->count);
        cache->issuers = NULL;
        cache->count = 0;
    }
    for (size_t i = 0; rv == TS_OK && i < ntenants; i++) {
        ts_ca_row row;
        memset(&row, 0, sizeof row);
        rv = ts_store_ca_active(store, tenants[i].id, TS_CA_ISSUING, &row);
        if (rv == TS_ERR_NOT_FOUND) {
            /* A tenant being created has no issuing CA yet: nothing of it can be asked about. */
            rv = TS_OK;
            continue;
        }
        if (rv == TS_OK && !issuer_reuse(cache, &row, &fresh[n])) {
            rv = issuer_load(ks, &row, &fresh[n]);
            loaded++;
        }
        ts_ca_row_clear(&row);
        if (rv == TS_OK) {
            list[n].cert = fresh[n].cert;
            list[n].key = fresh[n].key;
            /* SHA-1 and SHA-256 are the first two of ts_ocsp_issuer.ids' hashes. */
            for (size_t h = 0; h < SVC_OCSP_ID_HASHES; h++) {
                list[n].ids[h] = fresh[n].ids[h];
            }
            list[n].sign = fresh[n].sign;
            n++;
        }
    }
    if (rv != TS_OK) {
        /* Some issuers may have moved out of the cache: it starts again from nothing. */
        issuers_free(fresh, n);
        OPENSSL_free(list);
        OPENSSL_free(tenants);
        issuers_free(cache->issuers, cache->count);
        OPENSSL_free(cache->list);
        cache->issuers = NULL;
        cache->list = NULL;
        cache->count = 0;
        cache->checked_ms = 0;
        svc_ocsp_reuse_clear(cache->reuse);
        return rv;
    }
    *changed = loaded > 0 || !issuers_same(cache, fresh, n);
    if (*changed) {
        /* Responses signed for other issuers, or by another certificate, are not sent again. */
        svc_ocsp_reuse_clear(cache->reuse);
    }
    issuers_free(cache->issuers, cache->count);
    OPENSSL_free(cache->list);
    if (cache->ks != ks) {
        ts_keystore_free(cache->ks);
        cache->ks = ts_keystore_up_ref(ks);
    }
    cache->issuers = fresh;
    cache->list = list;
    cache->count = n;
    OPENSSL_free(tenants);
    return TS_OK;
}

long svc_ocsp_cache_match(const svc_ocsp_cache *cache, OCSP_CERTID *cid)
{
    ASN1_OBJECT *md = NULL;
    size_t h = 0;

    if (!OCSP_id_get0_info(NULL, &md, NULL, NULL, cid)) {
        return -1;
    }
    while (h < SVC_OCSP_ID_HASHES && OBJ_obj2nid(md) != OBJ_sn2nid(id_hashes[h])) {
        h++;
    }
    for (size_t i = 0; h < SVC_OCSP_ID_HASHES && i < cache->count; i++) {
        if (OCSP_id_issuer_cmp(cid, cache->issuers[i].ids[h]) == 0) {
            return (long)i;
        }
    }
    return -1;
}
