/*
 * Zero-touch enrollment: a claim code as the password of HTTP Basic (RFC 7617; the user name is
 * ignored), on simpleenroll and serverkeygen. The code is checked, used and audited by
 * ts_ca_claim_enroll(); this file reads it from the request, keeps failed attempts to their limit
 * per address, and finds what the code's profile asks of the request before anything is issued.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

#include "service/svc_est_internal.h"

enum {
    EST_BASIC_MAX = 512,    /* bytes of decoded Basic credentials */
    EST_PREFIX_LETTERS = 4, /* code letters in a claim's printed prefix, "TSC-XXXX" */
};

void est_claim_clear(est_claim *c)
{
    OPENSSL_cleanse(c, sizeof *c);
}

void est_claim_refused(svc_request *r)
{
    svc_claim_failed(svc_worker_server(r->worker), r->remote);
    est_reply_text(r, 401, "claim code not accepted");
}

int est_claim_read(svc_request *r, est_claim *c)
{
    const char *authz = svc_header(r, "Authorization");
    uint8_t *cred = NULL;
    size_t len = 0, n = 0;
    const uint8_t *colon;
    ts_err rv;

    memset(c, 0, sizeof *c);
    /* RFC 7617 section 2: "Basic", case-insensitive, one space, then base64 of user:password. */
    if (authz == NULL || strncasecmp(authz, "Basic ", 6) != 0) {
        return 0;
    }
    if (svc_claim_limited(svc_worker_server(r->worker), r->remote)) {
        svc_reply_header(r, "Retry-After", "60");
        est_reply_text(r, 429, "too many failed claim codes from %s; try again later", r->remote);
        return -1;
    }
    rv = ts_est_base64_decode((const uint8_t *)authz + 6, strlen(authz + 6), EST_BASIC_MAX, &cred,
                              &len);
    colon = rv == TS_OK ? memchr(cred, ':', len) : NULL;
    if (colon != NULL) {
        n = len - (size_t)(colon + 1 - cred);
    }
    if (colon == NULL || n == 0 || n >= sizeof c->code || memchr(colon + 1, '\0', n) != NULL) {
        if (cred != NULL) {
            OPENSSL_cleanse(cred, len);
        }
        OPENSSL_free(cred);
        est_claim_refused(r);
        return -1;
    }
    memcpy(c->code, colon + 1, n);
    c->code[n] = '\0';
    OPENSSL_cleanse(cred, len);
    OPENSSL_free(cred);
    for (size_t i = 0; i < sizeof c->prefix - 1 && c->code[i] != '\0'; i++) {
        char ch = (char)toupper((unsigned char)c->code[i]);
        c->prefix[i] = isalnum((unsigned char)ch) || ch == '-' ? ch : '?';
    }
    return 1;
}

/* What the code's profile asks of the request. */
static ts_err claim_profile(svc_request *r, const ts_tenant_row *t, const char *name, est_claim *c)
{
    char *json = NULL;
    ts_profile *p = NULL;
    ts_err rv = ts_store_profile_get(ts_ca_store(r->ca), t->id, name, &json);

    if (rv == TS_OK) {
        rv = ts_profile_from_json(json, strlen(json), &p);
    }
    if (rv == TS_OK) {
        c->pop = ts_profile_est_pop(p);
        c->keygen = ts_profile_est_server_keygen(p);
        snprintf(c->profile, sizeof c->profile, "%s", name);
    }
    ts_profile_free(p);
    OPENSSL_free(json);
    return rv;
}

int est_claim_profiles(svc_request *r, const ts_tenant_row *t, est_claim *c)
{
    ts_claim_row row;
    ts_err rv = ts_ca_claim_lookup(r->ca, t->name, c->code, &row);

    if (rv == TS_ERR_AUTH) {
        est_claim_refused(r);
        return 0;
    }
    if (rv == TS_OK) {
        rv = claim_profile(r, t, row.profile, c);
    }
    if (rv != TS_OK) {
        est_reply_err(r, rv);
        return 0;
    }
    return 1;
}
