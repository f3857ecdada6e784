/*
 * Signed OCSP responses a worker may send again (svc_revocation_internal.h): a fixed table of
 * SVC_OCSP_REUSE_SLOTS, each slot chosen by the first bytes of the request's SHA-256, holding the
 * response with the status it says and when it was made. A newer response for another request
 * that falls on the same slot replaces it; nothing grows.
 */
#include <string.h>

#include <openssl/crypto.h>

#include "service/svc_revocation_internal.h"

typedef struct reuse_slot {
    uint8_t key[32];
    svc_ocsp_subject subject;
    svc_ocsp_state state;
    uint64_t made_ms;
    uint8_t *der;
    size_t len;
} reuse_slot;

struct svc_ocsp_reuse {
    reuse_slot slots[SVC_OCSP_REUSE_SLOTS];
};

svc_ocsp_reuse *svc_ocsp_reuse_new(void)
{
    return OPENSSL_zalloc(sizeof(svc_ocsp_reuse));
}

void svc_ocsp_reuse_clear(svc_ocsp_reuse *t)
{
    for (size_t i = 0; t != NULL && i < SVC_OCSP_REUSE_SLOTS; i++) {
        OPENSSL_free(t->slots[i].der);
        memset(&t->slots[i], 0, sizeof t->slots[i]);
    }
}

void svc_ocsp_reuse_free(svc_ocsp_reuse *t)
{
    svc_ocsp_reuse_clear(t);
    OPENSSL_free(t);
}

static reuse_slot *slot_of(svc_ocsp_reuse *t, const uint8_t key[32])
{
    size_t i = ((size_t)key[0] << 8 | key[1]) % SVC_OCSP_REUSE_SLOTS;

    return &t->slots[i];
}

static int same_state(const svc_ocsp_state *a, const svc_ocsp_state *b)
{
    return a->ca_id == b->ca_id && a->status == b->status && a->revoked_at == b->revoked_at &&
           a->reason == b->reason;
}

const svc_ocsp_subject *svc_ocsp_reuse_find(svc_ocsp_reuse *t, const uint8_t key[32])
{
    reuse_slot *s = slot_of(t, key);

    if (s->der == NULL || CRYPTO_memcmp(s->key, key, sizeof s->key) != 0) {
        return NULL;
    }
    return &s->subject;
}

int svc_ocsp_reuse_get(svc_ocsp_reuse *t, const uint8_t key[32], const svc_ocsp_state *state,
                       uint64_t now_ms, uint8_t **resp, size_t *len, unsigned *age_s)
{
    reuse_slot *s = slot_of(t, key);

    if (s->der == NULL || CRYPTO_memcmp(s->key, key, sizeof s->key) != 0 ||
        !same_state(&s->state, state) || now_ms < s->made_ms ||
        now_ms - s->made_ms >= (uint64_t)SVC_OCSP_REUSE_S * 1000U) {
        return 0;
    }
    *resp = OPENSSL_memdup(s->der, s->len);
    if (*resp == NULL) {
        return 0;
    }
    *len = s->len;
    *age_s = (unsigned)((now_ms - s->made_ms) / 1000U);
    return 1;
}

void svc_ocsp_reuse_put(svc_ocsp_reuse *t, const uint8_t key[32], const svc_ocsp_subject *subject,
                        const svc_ocsp_state *state, uint64_t now_ms, const uint8_t *resp,
                        size_t len)
{
    reuse_slot *s = slot_of(t, key);
    uint8_t *copy = OPENSSL_memdup(resp, len);

    if (copy == NULL) {
        return; /* only a response not kept */
    }
    OPENSSL_free(s->der);
    memcpy(s->key, key, sizeof s->key);
    s->subject = *subject;
    s->state = *state;
    s->made_ms = now_ms;
    s->der = copy;
    s->len = len;
}
