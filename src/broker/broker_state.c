/* The plugin's view of the service: tenants, their issuing CAs, revoked certificates, disabled
 * devices. Plain data with sorted arrays; no locking (see broker_internal.h for who owns what). */
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>

#include "broker/broker_internal.h"
#include "common/error_internal.h"

bool tsb_tenant_name_ok(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > TSB_TENANT_MAX || s[0] == '-') {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) {
            return false;
        }
    }
    return true;
}

bool tsb_uid_ok(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > TSB_UID_MAX) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == ':' || c == '-')) {
            return false;
        }
    }
    return true;
}

tsb_state *tsb_state_new(void)
{
    return calloc(1, sizeof(tsb_state));
}

static void ca_clear(tsb_ca *ca)
{
    X509_free(ca->cert);
    memset(ca, 0, sizeof(*ca));
}

static void tenant_clear(tsb_tenant *t)
{
    for (size_t i = 0; i < t->n_cas; i++) {
        ca_clear(&t->cas[i]);
    }
    t->n_cas = 0;
}

void tsb_state_free(tsb_state *st)
{
    if (st == NULL) {
        return;
    }
    for (size_t i = 0; i < st->n_tenants; i++) {
        tenant_clear(&st->tenants[i]);
    }
    free(st->tenants);
    free(st->revoked);
    free(st->disabled);
    free(st);
}

/* Grows *arr (of elem-sized items) so that it holds at least need items, up to max. */
static ts_err grow(void **arr, size_t *cap, size_t need, size_t elem, size_t max)
{
    if (need <= *cap) {
        return TS_OK;
    }
    if (need > max) {
        return ts_error_set(TS_ERR_LIMIT, "more than %zu entries", max);
    }
    size_t ncap = *cap < 16 ? 16 : *cap * 2;
    while (ncap < need) {
        ncap *= 2;
    }
    if (ncap > max) {
        ncap = max;
    }
    void *p = realloc(*arr, ncap * elem);
    if (p == NULL) {
        return ts_error_set(TS_ERR_NOMEM, "out of memory");
    }
    *arr = p;
    *cap = ncap;
    return TS_OK;
}

tsb_state *tsb_state_dup(const tsb_state *st)
{
    tsb_state *d = tsb_state_new();

    if (d == NULL) {
        return NULL;
    }
    if (grow((void **)&d->tenants, &d->cap_tenants, st->n_tenants, sizeof(tsb_tenant),
             TSB_TENANTS_MAX) != TS_OK ||
        grow((void **)&d->revoked, &d->cap_revoked, st->n_revoked, sizeof(tsb_revoked),
             TSB_REVOKED_MAX) != TS_OK ||
        grow((void **)&d->disabled, &d->cap_disabled, st->n_disabled, sizeof(tsb_disabled),
             TSB_DISABLED_MAX) != TS_OK) {
        tsb_state_free(d);
        return NULL;
    }
    for (size_t i = 0; i < st->n_tenants; i++) {
        d->tenants[i] = st->tenants[i];
        for (size_t j = 0; j < st->tenants[i].n_cas; j++) {
            X509_up_ref(st->tenants[i].cas[j].cert);
        }
    }
    d->n_tenants = st->n_tenants;
    if (st->n_revoked > 0) {
        memcpy(d->revoked, st->revoked, st->n_revoked * sizeof(tsb_revoked));
    }
    d->n_revoked = st->n_revoked;
    if (st->n_disabled > 0) {
        memcpy(d->disabled, st->disabled, st->n_disabled * sizeof(tsb_disabled));
    }
    d->n_disabled = st->n_disabled;
    return d;
}

tsb_tenant *tsb_state_tenant(const tsb_state *st, const char *name)
{
    size_t lo = 0, hi = st->n_tenants;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(name, st->tenants[mid].name);
        if (c == 0) {
            return &st->tenants[mid];
        }
        if (c < 0) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    return NULL;
}

ts_err tsb_state_tenant_add(tsb_state *st, const char *name, tsb_tenant **out)
{
    size_t pos = 0;

    if (!tsb_tenant_name_ok(name)) {
        return ts_error_set(TS_ERR_INVALID, "bad tenant name");
    }
    while (pos < st->n_tenants && strcmp(st->tenants[pos].name, name) < 0) {
        pos++;
    }
    if (pos < st->n_tenants && strcmp(st->tenants[pos].name, name) == 0) {
        *out = &st->tenants[pos];
        return TS_OK;
    }
    ts_err rv = grow((void **)&st->tenants, &st->cap_tenants, st->n_tenants + 1, sizeof(tsb_tenant),
                     TSB_TENANTS_MAX);
    if (rv != TS_OK) {
        return rv;
    }
    memmove(&st->tenants[pos + 1], &st->tenants[pos], (st->n_tenants - pos) * sizeof(tsb_tenant));
    memset(&st->tenants[pos], 0, sizeof(tsb_tenant));
    memcpy(st->tenants[pos].name, name, strlen(name) + 1);
    st->n_tenants++;
    *out = &st->tenants[pos];
    return TS_OK;
}

void tsb_state_tenants_retain(tsb_state *st, const bool *keep)
{
    size_t w = 0;

    for (size_t i = 0; i < st->n_tenants; i++) {
        if (keep[i]) {
            st->tenants[w++] = st->tenants[i];
        } else {
            tenant_clear(&st->tenants[i]);
        }
    }
    st->n_tenants = w;
}

ts_err tsb_ca_init(tsb_ca *ca, X509 *cert)
{
    unsigned int fplen = 0;

    memset(ca, 0, sizeof(*ca));
    if (X509_digest(cert, EVP_sha256(), ca->fp, &fplen) != 1 || fplen != TSB_FP_LEN) {
        return ts_error_set_openssl(TS_ERR_CRYPTO, "cannot hash a CA certificate");
    }
    const ASN1_OCTET_STRING *skid = X509_get0_subject_key_id(cert);
    if (skid == NULL || skid->length <= 0 || (size_t)skid->length > sizeof(ca->skid)) {
        return ts_error_set(TS_ERR_INVALID, "a CA certificate without a usable subject key id");
    }
    memcpy(ca->skid, skid->data, (size_t)skid->length);
    ca->skid_len = (size_t)skid->length;
    X509_up_ref(cert);
    ca->cert = cert;
    return TS_OK;
}

ts_err tsb_tenant_set_cas(tsb_tenant *t, X509 *const *certs, size_t n, bool *changed)
{
    tsb_ca fresh[TSB_CAS_PER_TENANT];
    size_t done = 0;
    ts_err rv = TS_OK;

    if (n > TSB_CAS_PER_TENANT) {
        return ts_error_set(TS_ERR_LIMIT, "more than %d CAs in tenant %s", TSB_CAS_PER_TENANT,
                            t->name);
    }
    for (; done < n; done++) {
        rv = tsb_ca_init(&fresh[done], certs[done]);
        if (rv != TS_OK) {
            break;
        }
    }
    if (rv != TS_OK) {
        for (size_t i = 0; i < done; i++) {
            ca_clear(&fresh[i]);
        }
        return rv;
    }
    bool same = n == t->n_cas;
    for (size_t i = 0; same && i < n; i++) {
        same = memcmp(fresh[i].fp, t->cas[i].fp, TSB_FP_LEN) == 0;
    }
    *changed = !same;
    tenant_clear(t);
    memcpy(t->cas, fresh, n * sizeof(tsb_ca));
    t->n_cas = n;
    return TS_OK;
}

static ts_err serial_from_bn(const BIGNUM *bn, uint8_t out[TSB_SERIAL_MAX], uint8_t *len)
{
    if (BN_is_negative(bn) || BN_num_bytes(bn) > TSB_SERIAL_MAX) {
        return ts_error_set(TS_ERR_INVALID, "serial negative or longer than %d octets",
                            TSB_SERIAL_MAX);
    }
    int n = BN_bn2bin(bn, out);
    if (n < 0) {
        return ts_error_set_openssl(TS_ERR_INVALID, "bad serial");
    }
    *len = (uint8_t)n;
    return TS_OK;
}

ts_err tsb_serial_from_hex(const char *hex, uint8_t out[TSB_SERIAL_MAX], uint8_t *len)
{
    BIGNUM *bn = NULL;
    size_t n = strlen(hex);

    if (n == 0 || n > 2 * TSB_SERIAL_MAX + 2 || strspn(hex, "0123456789abcdefABCDEF") != n) {
        return ts_error_set(TS_ERR_INVALID, "a serial is not hex of at most %d octets",
                            TSB_SERIAL_MAX);
    }
    if (BN_hex2bn(&bn, hex) != (int)n) {
        BN_free(bn);
        return ts_error_set_openssl(TS_ERR_INVALID, "bad serial");
    }
    ts_err rv = serial_from_bn(bn, out, len);
    BN_free(bn);
    return rv;
}

ts_err tsb_serial_from_cert(const X509 *cert, uint8_t out[TSB_SERIAL_MAX], uint8_t *len)
{
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);

    if (bn == NULL) {
        return ts_error_set_openssl(TS_ERR_INVALID, "unreadable certificate serial");
    }
    ts_err rv = serial_from_bn(bn, out, len);
    BN_free(bn);
    return rv;
}

static int revoked_cmp(const void *a, const void *b)
{
    const tsb_revoked *x = a, *y = b;
    int c = memcmp(x->fp, y->fp, TSB_FP_LEN);

    if (c != 0) {
        return c;
    }
    if (x->serial_len != y->serial_len) {
        return x->serial_len < y->serial_len ? -1 : 1;
    }
    return memcmp(x->serial, y->serial, x->serial_len);
}

static int disabled_cmp(const void *a, const void *b)
{
    return strcmp(((const tsb_disabled *)a)->key, ((const tsb_disabled *)b)->key);
}

ts_err tsb_state_revoke(tsb_state *st, const uint8_t fp[TSB_FP_LEN], const uint8_t *serial,
                        uint8_t serial_len)
{
    if (serial_len > TSB_SERIAL_MAX) {
        return ts_error_set(TS_ERR_INVALID, "serial too long");
    }
    ts_err rv = grow((void **)&st->revoked, &st->cap_revoked, st->n_revoked + 1,
                     sizeof(tsb_revoked), TSB_REVOKED_MAX);
    if (rv != TS_OK) {
        return rv;
    }
    tsb_revoked *r = &st->revoked[st->n_revoked++];
    memset(r, 0, sizeof(*r));
    memcpy(r->fp, fp, TSB_FP_LEN);
    memcpy(r->serial, serial, serial_len);
    r->serial_len = serial_len;
    return TS_OK;
}

static bool disabled_key(const char *tenant, const char *uid, tsb_disabled *d)
{
    memset(d, 0, sizeof(*d));
    if (!tsb_tenant_name_ok(tenant) || !tsb_uid_ok(uid)) {
        return false;
    }
    size_t tl = strlen(tenant), ul = strlen(uid);
    memcpy(d->key, tenant, tl);
    d->key[tl] = '/';
    memcpy(d->key + tl + 1, uid, ul);
    return true;
}

ts_err tsb_state_disable(tsb_state *st, const char *tenant, const char *uid)
{
    tsb_disabled d;

    if (!disabled_key(tenant, uid, &d)) {
        return ts_error_set(TS_ERR_INVALID, "bad tenant or device UID");
    }
    ts_err rv = grow((void **)&st->disabled, &st->cap_disabled, st->n_disabled + 1,
                     sizeof(tsb_disabled), TSB_DISABLED_MAX);
    if (rv != TS_OK) {
        return rv;
    }
    st->disabled[st->n_disabled++] = d;
    return TS_OK;
}

void tsb_state_enable(tsb_state *st, const char *tenant, const char *uid)
{
    tsb_disabled d;
    size_t w = 0;

    if (!disabled_key(tenant, uid, &d)) {
        return;
    }
    for (size_t i = 0; i < st->n_disabled; i++) {
        if (strcmp(st->disabled[i].key, d.key) != 0) {
            st->disabled[w++] = st->disabled[i];
        }
    }
    st->n_disabled = w;
}

void tsb_state_finish(tsb_state *st)
{
    size_t w = 0;

    if (st->n_revoked > 1) {
        qsort(st->revoked, st->n_revoked, sizeof(tsb_revoked), revoked_cmp);
        for (size_t i = 0; i < st->n_revoked; i++) {
            if (w == 0 || revoked_cmp(&st->revoked[w - 1], &st->revoked[i]) != 0) {
                st->revoked[w++] = st->revoked[i];
            }
        }
        st->n_revoked = w;
    }
    w = 0;
    if (st->n_disabled > 1) {
        qsort(st->disabled, st->n_disabled, sizeof(tsb_disabled), disabled_cmp);
        for (size_t i = 0; i < st->n_disabled; i++) {
            if (w == 0 || disabled_cmp(&st->disabled[w - 1], &st->disabled[i]) != 0) {
                st->disabled[w++] = st->disabled[i];
            }
        }
        st->n_disabled = w;
    }
}

bool tsb_state_is_revoked(const tsb_state *st, const uint8_t fp[TSB_FP_LEN], const uint8_t *serial,
                          uint8_t serial_len)
{
    tsb_revoked key;

    if (serial_len > TSB_SERIAL_MAX || st->n_revoked == 0) {
        return false;
    }
    memset(&key, 0, sizeof(key));
    memcpy(key.fp, fp, TSB_FP_LEN);
    memcpy(key.serial, serial, serial_len);
    key.serial_len = serial_len;
    return bsearch(&key, st->revoked, st->n_revoked, sizeof(tsb_revoked), revoked_cmp) != NULL;
}

bool tsb_state_is_disabled(const tsb_state *st, const char *tenant, const char *uid)
{
    tsb_disabled key;

    if (!disabled_key(tenant, uid, &key) || st->n_disabled == 0) {
        return false;
    }
    return bsearch(&key, st->disabled, st->n_disabled, sizeof(tsb_disabled), disabled_cmp) != NULL;
}

const tsb_ca *tsb_state_find_issuer(const tsb_state *st, const X509 *cert,
                                    const tsb_tenant **tenant)
{
    const ASN1_OCTET_STRING *akid = X509_get0_authority_key_id((X509 *)cert);
    const X509_NAME *issuer = X509_get_issuer_name(cert);

    if (akid == NULL || akid->length <= 0 || issuer == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < st->n_tenants; i++) {
        const tsb_tenant *t = &st->tenants[i];
        for (size_t j = 0; j < t->n_cas; j++) {
            const tsb_ca *ca = &t->cas[j];
            if (ca->skid_len == (size_t)akid->length &&
                memcmp(ca->skid, akid->data, ca->skid_len) == 0 &&
                X509_NAME_cmp(X509_get_subject_name(ca->cert), issuer) == 0) {
                *tenant = t;
                return ca;
            }
        }
    }
    return NULL;
}
