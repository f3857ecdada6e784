/*
 * Claim codes (include/tessera/access.h): a one-time (or N-time) secret that lets a device
 * enroll itself, with no API token, under a device profile of one tenant.
 *
 * A code is "TSC-" and seven groups of four letters of Crockford's base32 (0-9 A-Z without I, L,
 * O, U: nothing that reads as another letter), 140 random bits. Typed input is forgiving: any
 * case, dashes and spaces anywhere, O for 0 and I or L for 1. Only the SHA-256 of the canonical
 * 28 letters is stored; the first eight characters ("TSC-XXXX") are kept to recognise a code.
 */
#include <ctype.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "common/error_internal.h"
#include "server/server_internal.h"
#include "tessera/store_access.h"

enum {
    CLAIM_CHARS = 28,         /* base32 letters of a code: 140 bits */
    CLAIM_GROUP = 4,          /* letters per group as printed */
    CLAIM_PREFIX_SHOWN = 8,   /* "TSC-XXXX" */
    CLAIM_USES_MAX = 1000000, /* uses of one code */
    CLAIM_MAX_SECONDS = 366 * 86400,
};

static const char ALPHABET[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
static const char REFUSED[] = "claim code not accepted";

/* A fresh code: the canonical letters (for the hash) and the printed form. */
static ts_err code_make(char canon[CLAIM_CHARS + 1], char printed[TS_CLAIM_CODE_MAX])
{
    uint8_t rnd[CLAIM_CHARS]; /* one byte per letter, of which 5 bits are used */
    size_t n = 0;
    if (RAND_bytes(rnd, sizeof rnd) != 1) {
        return ts_error_set_openssl(TS_ERR_CRYPTO, "no random bytes for a claim code");
    }
    for (size_t i = 0; i < CLAIM_CHARS; i++) {
        canon[i] = ALPHABET[rnd[i] & 0x1f];
    }
    canon[CLAIM_CHARS] = '\0';
    OPENSSL_cleanse(rnd, sizeof rnd);
    memcpy(printed, "TSC", 3);
    n = 3;
    for (size_t i = 0; i < CLAIM_CHARS; i++) {
        if (i % CLAIM_GROUP == 0) {
            printed[n++] = '-';
        }
        printed[n++] = canon[i];
    }
    printed[n] = '\0';
    return TS_OK;
}

/* The canonical letters of a code as typed; 0 when it cannot be one. */
static int code_canonical(const char *text, char canon[CLAIM_CHARS + 1])
{
    char buf[CLAIM_CHARS + 4];
    size_t n = 0;
    for (const char *p = text; *p != '\0'; p++) {
        char c = (char)toupper((unsigned char)*p);
        if (c == '-' || c == ' ') {
            continue;
        }
        if (n == sizeof buf - 1) {
            OPENSSL_cleanse(buf, sizeof buf);
            return 0;
        }
        buf[n++] = c;
    }
    buf[n] = '\0';
    const char *body = buf;
    if (n == CLAIM_CHARS + 3 && strncmp(buf, "TSC", 3) == 0) {
        body += 3;
    } else if (n != CLAIM_CHARS) {
        OPENSSL_cleanse(buf, sizeof buf);
        return 0;
    }
    int ok = 1;
    for (size_t i = 0; i < CLAIM_CHARS; i++) {
        char c = body[i];
        c = c == 'O' ? '0' : (c == 'I' || c == 'L') ? '1' : c;
        ok &= c != '\0' && strchr(ALPHABET, c) != NULL;
        canon[i] = c;
    }
    canon[CLAIM_CHARS] = '\0';
    OPENSSL_cleanse(buf, sizeof buf);
    return ok;
}

ts_err ts_ca_claim_create(ts_ca *ca, const ts_claim_params *params,
                          char code_out[TS_CLAIM_CODE_MAX], ts_claim_row *out)
{
    ts_tenant_row t;
    ts_profile *profile = NULL;
    ts_claim_row row;
    char canon[CLAIM_CHARS + 1], hash[65];
    int in_tx = 0;
    ts_err rv;

    if (ca == NULL || params == NULL || code_out == NULL) {
        return ts_error_set(TS_ERR_INVALID, "ts_ca_claim_create: missing argument");
    }
    code_out[0] = '\0';
    memset(&row, 0, sizeof row);
    const char *pname = params->profile != NULL ? params->profile : "device";
    unsigned uses = params->uses != 0 ? params->uses : 1;
    if (uses > CLAIM_USES_MAX) {
        return ts_error_set(TS_ERR_INVALID, "a claim code has 1 to %d uses", CLAIM_USES_MAX);
    }
    if (params->lifetime_seconds < 0 || params->lifetime_seconds > CLAIM_MAX_SECONDS) {
        return ts_error_set(TS_ERR_INVALID, "a claim code lives 1 second to %d days",
                            CLAIM_MAX_SECONDS / 86400);
    }
    rv = ts_ca_tenant(ca, params->tenant, &t);
    if (rv == TS_OK) {
        rv = srv_profile_load(ca, t.id, pname, &profile);
    }
    /* The enrolled certificate's CN is the device UID that gets registered. */
    if (rv == TS_OK && !srv_profile_is_device(profile)) {
        rv = ts_error_set(TS_ERR_INVALID,
                          "profile '%s' is not a device profile: a claim code "
                          "enrolls devices",
                          pname);
    }
    ts_profile_free(profile);
    if (rv != TS_OK) {
        return rv;
    }
    row.tenant_id = t.id;
    snprintf(row.profile, sizeof row.profile, "%s", pname);
    row.uses_max = uses;
    row.created = time(NULL);
    row.expires = row.created + (params->lifetime_seconds != 0 ? params->lifetime_seconds
                                                               : (int64_t)TS_CLAIM_HOURS * 3600);
    rv = code_make(canon, code_out);
    if (rv == TS_OK) {
        rv = srv_secret_hash(canon, CLAIM_CHARS, hash);
    }
    OPENSSL_cleanse(canon, sizeof canon);
    if (rv == TS_OK) {
        memcpy(row.prefix, code_out, CLAIM_PREFIX_SHOWN);
        row.prefix[CLAIM_PREFIX_SHOWN] = '\0';
        rv = ts_store_begin(ca->store);
        in_tx = rv == TS_OK;
    }
    if (rv == TS_OK) {
        rv = ts_store_claim_insert(ca->store, &row, hash);
    }
    if (rv == TS_OK) {
        rv = srv_audit(ca, "claim.create", row.prefix,
                       srv_json("{s:s, s:I, s:s, s:s, s:i, s:I}", "tenant", t.name, "id",
                                (json_int_t)row.id, "prefix", row.prefix, "profile", row.profile,
                                "uses", (int)row.uses_max, "expires", (json_int_t)row.expires));
    }
    if (in_tx) {
        rv = srv_tx_end(ca, rv);
    }
    if (rv != TS_OK) {
        OPENSSL_cleanse(code_out, TS_CLAIM_CODE_MAX);
        return rv;
    }
    if (out != NULL) {
        *out = row;
    }
    return TS_OK;
}

ts_err ts_ca_claim_list(ts_ca *ca, const char *tenant, ts_claim_row **rows, size_t *count)
{
    ts_tenant_row t;
    *rows = NULL;
    *count = 0;
    ts_err rv = ts_ca_tenant(ca, tenant, &t);
    if (rv == TS_OK) {
        rv = ts_store_claim_list(ca->store, t.id, rows, count);
    }
    return rv;
}

ts_err ts_ca_claim_revoke(ts_ca *ca, const char *tenant, int64_t id)
{
    ts_tenant_row t;
    int in_tx = 0;
    char object[32];
    ts_err rv = ts_ca_tenant(ca, tenant, &t);
    if (rv == TS_OK) {
        rv = ts_store_begin(ca->store);
        in_tx = rv == TS_OK;
    }
    if (rv == TS_OK) {
        rv = ts_store_claim_revoke(ca->store, t.id, id, time(NULL));
        if (rv == TS_ERR_NOT_FOUND) {
            ts_error_set(rv, "no claim code %lld in tenant '%s'", (long long)id, t.name);
        }
    }
    if (rv == TS_OK) {
        snprintf(object, sizeof object, "%lld", (long long)id);
        rv = srv_audit(ca, "claim.revoke", object,
                       srv_json("{s:s, s:I}", "tenant", t.name, "id", (json_int_t)id));
    }
    if (in_tx) {
        rv = srv_tx_end(ca, rv);
    }
    return rv;
}

/* What the enrollment hook needs: the code it takes a use of. */
typedef struct claim_use {
    const char *hash;
    const ts_claim_row *found;
    const ts_tenant_row *tenant;
} claim_use;

/*
 * Inside the issuing transaction, after the certificate is stored and its device registered:
 * one use of the code, taken only if it is still good now (another enrollment may have taken
 * the last one since the code was checked).
 */
static ts_err claim_hook(ts_ca *ca, void *arg, const ts_cert_row *cert)
{
    claim_use *u = arg;
    ts_claim_row now;
    char stored[65];
    ts_err rv = ts_store_claim_use(ca->store, u->hash, time(NULL), &now, stored);
    if (rv == TS_ERR_NOT_FOUND ||
        (rv == TS_OK && (now.id != u->found->id || CRYPTO_memcmp(stored, u->hash, 64) != 0))) {
        return ts_error_set(TS_ERR_AUTH, "%s", REFUSED);
    }
    if (rv == TS_OK) {
        rv = srv_audit(ca, "claim.use", u->found->prefix,
                       srv_json("{s:s, s:I, s:s, s:i, s:s, s:s}", "tenant", u->tenant->name, "id",
                                (json_int_t)now.id, "prefix", now.prefix, "uses_left",
                                (int)now.uses_left, "device", cert->device_uid, "serial",
                                cert->serial));
    }
    if (rv == TS_OK) {
        rv = srv_audit(ca, "device.enroll", cert->device_uid,
                       srv_json("{s:s, s:s, s:s, s:s}", "tenant", u->tenant->name, "device",
                                cert->device_uid, "claim", u->found->prefix, "serial",
                                cert->serial));
    }
    return rv;
}

/* The stored code for what was typed, if it can be used now; TS_ERR_AUTH otherwise. */
static ts_err claim_check(ts_ca *ca, const ts_tenant_row *t, const char *code, char hash[65],
                          ts_claim_row *found)
{
    char canon[CLAIM_CHARS + 1], stored[65];
    int ok = code != NULL && code_canonical(code, canon);
    ts_err rv = ok ? srv_secret_hash(canon, CLAIM_CHARS, hash) : TS_OK;
    OPENSSL_cleanse(canon, sizeof canon);
    if (rv != TS_OK) {
        return rv;
    }
    if (ok) {
        rv = ts_store_claim_find(ca->store, hash, found, stored);
        if (rv != TS_OK && rv != TS_ERR_NOT_FOUND) {
            return rv; /* the database failed */
        }
        ok = rv == TS_OK;
    }
    ok = ok && CRYPTO_memcmp(stored, hash, 64) == 0;
    ok = ok && found->tenant_id == t->id && found->revoked_at == 0 && found->uses_left > 0 &&
         time(NULL) < found->expires;
    return ok ? TS_OK : ts_error_set(TS_ERR_AUTH, "%s", REFUSED);
}

ts_err ts_ca_claim_lookup(ts_ca *ca, const char *tenant, const char *code, ts_claim_row *out)
{
    ts_tenant_row t;
    char hash[65];
    ts_err rv;

    if (out == NULL) {
        return ts_error_set(TS_ERR_INVALID, "ts_ca_claim_lookup: no output");
    }
    rv = ts_ca_tenant(ca, tenant, &t);
    if (rv == TS_OK) {
        rv = claim_check(ca, &t, code, hash, out);
    }
    OPENSSL_cleanse(hash, sizeof hash);
    return rv;
}

ts_err ts_ca_claim_enroll(ts_ca *ca, const char *tenant, const char *code, const uint8_t *csr,
                          size_t csr_len, X509 **out)
{
    ts_tenant_row t;
    ts_claim_row found;
    ts_device_row dev;
    char hash[65];
    srv_issue_ctx c;
    srv_issue_req req;
    X509_REQ *request = NULL;
    claim_use use;
    int loaded = 0;
    ts_err rv;

    if (out == NULL) {
        return ts_error_set(TS_ERR_INVALID, "ts_ca_claim_enroll: no output");
    }
    *out = NULL;
    rv = ts_ca_tenant(ca, tenant, &t);
    if (rv == TS_OK) {
        rv = claim_check(ca, &t, code, hash, &found);
    }
    if (rv == TS_OK) {
        rv = srv_issue_ctx_load(ca, t.name, found.profile, &c);
        loaded = rv == TS_OK;
    }
    if (rv == TS_OK && !srv_profile_is_device(c.profile)) {
        rv = ts_error_set(TS_ERR_POLICY, "profile '%s' is not a device profile", found.profile);
    }
    if (rv == TS_OK) {
        rv = srv_csr_load(csr, csr_len, c.profile, &request);
    }
    /* A disabled device is refused before anything is signed; the issuing transaction checks
     * again, in case it is disabled meanwhile. */
    if (rv == TS_OK) {
        char cn[TS_NAME_MAX + 1] = "";
        X509_NAME *name = X509_REQ_get_subject_name(request);
        if (X509_NAME_get_text_by_NID(name, NID_commonName, cn, sizeof cn) <= 0 ||
            ts_device_uid_check(cn) != TS_OK) {
            rv = ts_error_set(TS_ERR_POLICY,
                              "CSR refused: its CN must be the device UID (1 to "
                              "%d of A-Z a-z 0-9 . _ : -)",
                              TS_DEVICE_UID_MAX);
        } else if (ts_store_device_get(ca->store, t.id, cn, &dev) == TS_OK &&
                   dev.state == TS_DEVICE_DISABLED) {
            rv = ts_error_set(TS_ERR_POLICY, "device UID %s is disabled", cn);
        }
    }
    if (rv == TS_OK) {
        use.hash = hash;
        use.found = &found;
        use.tenant = &c.tenant;
        srv_issue_req_init(ca, &c, found.profile, "cert.issue", &req);
        req.params.csr = request;
        req.details = srv_json("{s:s}", "claim", found.prefix);
        req.hook = claim_hook;
        req.hook_arg = &use;
        rv = srv_issue(ca, &req, out);
    }
    if (loaded) {
        srv_issue_ctx_clear(&c);
    }
    X509_REQ_free(request);
    return rv;
}
