/*
 * Inside the REST API (/api/v1): the handlers of svc_api_routes[], the request-body checker they
 * share, and the JSON forms of the rows they answer with.
 *
 * Body checking (svc_api_body.c) and the JSON forms (svc_api_json.c) need no request and no
 * server, so the unit test and the fuzz target call them directly; svc_api_common.c puts them
 * behind a svc_request. docs/api.md describes every route.
 */
#ifndef TS_SVC_API_INTERNAL_H
#define TS_SVC_API_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <jansson.h>
#include <openssl/x509.h>

#include "service/svc_internal.h"
#include "tessera/access.h"
#include "tessera/store.h"

enum {
    SVC_API_TIME_MAX = 32,       /* "2026-11-21T14:00:00Z" with its NUL, and room to spare */
    SVC_API_CURSOR_MAX = 24,     /* a cursor as text, with its NUL */
    SVC_API_FIELDS_MAX = 4,      /* members of one request body */
    SVC_API_CSR_MAX = 64 * 1024, /* bytes of a PEM CSR in a body */
    SVC_API_DAYS_MAX = 36525,    /* ?expiring_within_days: a century */
};

/* Lifetimes and counts a request may ask for (seconds; uses). */
#define SVC_API_TOKEN_LIFETIME_MAX ((int64_t)3660 * 86400) /* ten years */
#define SVC_API_CLAIM_LIFETIME_MAX ((int64_t)366 * 86400)  /* a year */
#define SVC_API_CLAIM_USES_MAX     1000000

/* --- Request bodies (svc_api_body.c) ---------------------------------------------------------- */

typedef enum svc_api_type {
    SVC_API_STRING = 1,  /* a JSON string without NUL or control characters */
    SVC_API_INTEGER = 2, /* a JSON integer (not a real, not a boolean) */
    SVC_API_LINES = 3,   /* a string that may also break lines (\n, \r, \t): PEM text */
} svc_api_type;

typedef struct svc_api_field {
    const char *name;
    svc_api_type type;
    int required;
    int64_t min; /* STRING: fewest characters; INTEGER: smallest value */
    int64_t max; /* STRING: most characters; INTEGER: largest value */
} svc_api_field;

/* The members one route's body may hold; the route's request_schema says the same in JSON. */
typedef struct svc_api_body_spec {
    svc_api_field fields[SVC_API_FIELDS_MAX + 1]; /* ended by a NULL name */
} svc_api_body_spec;

extern const svc_api_body_spec svc_api_body_tenant;       /* POST /tenants */
extern const svc_api_body_spec svc_api_body_user;         /* POST .../users */
extern const svc_api_body_spec svc_api_body_token;        /* POST .../tokens */
extern const svc_api_body_spec svc_api_body_verification; /* POST .../cas/verification */
extern const svc_api_body_spec svc_api_body_issue;        /* POST .../certificates */
extern const svc_api_body_spec svc_api_body_revoke;       /* POST .../{serial}/revoke */
extern const svc_api_body_spec svc_api_body_rekey;        /* POST .../{serial}/rekey */
extern const svc_api_body_spec svc_api_body_device;       /* POST .../devices */
extern const svc_api_body_spec svc_api_body_claim;        /* POST .../claims */

/* Which route takes which body (method and pattern as in svc_api_routes[]); ends with NULLs. */
typedef struct svc_api_body_route {
    const char *method;
    const char *pattern;
    const svc_api_body_spec *spec;
} svc_api_body_route;

extern const svc_api_body_route svc_api_body_routes[];

/*
 * Parses a request body as one JSON object (duplicate members refused) and checks it against
 * spec: no member outside it, every required one present, each of its type and within its
 * bounds. TS_ERR_INVALID naming the member and the rule otherwise; json_decref(*out).
 */
ts_err svc_api_body_parse(const uint8_t *body, size_t len, const svc_api_body_spec *spec,
                          json_t **out);

/* The same check on an object already parsed. */
ts_err svc_api_body_check(const json_t *doc, const svc_api_body_spec *spec);

/* A checked string member, or NULL when absent. */
const char *svc_api_str(const json_t *doc, const char *name);
/* A checked integer member, or dflt when absent. */
int64_t svc_api_int(const json_t *doc, const char *name, int64_t dflt);

/* Whether a Content-Type names JSON: "application/json", any case, parameters allowed. */
int svc_api_is_json_type(const char *content_type);

/*
 * A decimal integer from a query or path value: digits only (no sign, space or leading zero),
 * within min..max. TS_ERR_INVALID naming it (name: "query parameter 'after'", "token id")
 * otherwise.
 */
ts_err svc_api_query_int(const char *text, const char *name, int64_t min, int64_t max,
                         int64_t *out);

/* --- JSON forms (svc_api_json.c): NULL with the error set when memory runs out --------------- */

/* RFC 3339 section 5.6 UTC "YYYY-MM-DDTHH:MM:SSZ"; TS_ERR_INVALID for a time it cannot show. */
ts_err svc_api_time(time_t t, char out[SVC_API_TIME_MAX]);
/* The time as a JSON string; JSON null when t is 0 ("never"). */
json_t *svc_api_time_json(time_t t);

/* The "next" of a list: the cursor after this id, or JSON null when 0 (no more). */
json_t *svc_api_cursor_json(int64_t after_id);
/* {"items": items, "next": ...}; takes items. */
json_t *svc_api_list(json_t *items, int64_t next_after);

/* PEM "CERTIFICATE" text of DER bytes (OPENSSL_free). */
ts_err svc_api_pem(const uint8_t *der, size_t len, char **pem);

json_t *svc_api_principal_json(const ts_principal *p);
json_t *svc_api_tenant_json(const ts_tenant_row *row);
json_t *svc_api_user_json(const ts_user_row *row);
json_t *svc_api_token_json(const ts_token_row *row);
/* With "pem" when the row carries its DER (single certificates), without it in lists. */
json_t *svc_api_cert_json(const ts_cert_row *row);
json_t *svc_api_device_json(const ts_device_row *row);
json_t *svc_api_claim_json(const ts_claim_row *row);
json_t *svc_api_audit_json(const ts_audit_row *row);
/* A CA certificate: kind ("root", "issuing"), subject, serial, fingerprint, validity, pem. */
json_t *svc_api_ca_json(X509 *cert, const char *kind);

/* "valid", "revoked"; "enabled", "disabled". */
const char *svc_api_cert_state_name(ts_cert_state state);
const char *svc_api_device_state_name(ts_device_state state);

/* --- Helpers for handlers (svc_api_common.c) -------------------------------------------------- */

/* The principal is instance-wide (no tenant of its own). */
int svc_api_instance_wide(const svc_request *r);

/*
 * The start of every handler under /tenants/{tenant}: nonzero when the router loaded a tenant the
 * principal may act in. Otherwise it has replied (404 for a foreign tenant: the router checks
 * this too, and a handler never trusts that it did).
 */
int svc_api_tenant_ready(svc_request *r);

/* Nonzero when the request carried no body; else it has replied 400 (routes without one). */
int svc_api_no_body(svc_request *r);

/* Nonzero when the body is declared application/json; else it has replied 415. */
int svc_api_json_body_type(svc_request *r);

/*
 * The request's JSON body checked against spec, or NULL after replying 415 (not JSON) or 400.
 * optional: an empty body is taken as {}.
 */
json_t *svc_api_body(svc_request *r, const svc_api_body_spec *spec, int optional);

/* Replies with a list whose next page starts after next_after (0: none); takes items. */
void svc_api_reply_list(svc_request *r, json_t *items, int64_t next_after);

/* Replies with doc (taken), or 500 when it is NULL (memory ran out building it). */
void svc_api_reply_doc(svc_request *r, int status, json_t *doc);

/* A certificate of r's tenant by serial text as a full JSON form (with pem); replies on error
 * and returns NULL. A device principal sees only its own device's certificates (else 404). */
json_t *svc_api_cert_lookup(svc_request *r, const char *serial_text);

/*
 * 201 with doc (taken) and member set to secret, shown this once (a new token or claim code): the
 * caller's buffer of size bytes and jansson's copy are wiped once the reply is written. doc NULL
 * answers 500 (out of memory) and still wipes the buffer.
 */
void svc_api_reply_secret(svc_request *r, json_t *doc, const char *member, char *secret,
                          size_t size);

/* Replies with the certificate just issued (status 201, with pem). */
void svc_api_reply_issued(svc_request *r, X509 *cert);

/* --- Handlers --------------------------------------------------------------------------------- */

void svc_api_me(svc_request *r);
void svc_api_tenant_list(svc_request *r);
void svc_api_tenant_create(svc_request *r);
void svc_api_tenant_get(svc_request *r);

void svc_api_user_list(svc_request *r);
void svc_api_user_create(svc_request *r);
void svc_api_user_get(svc_request *r);
void svc_api_user_disable(svc_request *r);
void svc_api_user_enable(svc_request *r);
void svc_api_token_list(svc_request *r);
void svc_api_token_create(svc_request *r);
void svc_api_token_revoke(svc_request *r);

void svc_api_ca_list(svc_request *r);
void svc_api_ca_get(svc_request *r);
void svc_api_ca_verification(svc_request *r);
void svc_api_profile_list(svc_request *r);
void svc_api_profile_get(svc_request *r);
void svc_api_profile_put(svc_request *r);

void svc_api_cert_list(svc_request *r);
void svc_api_cert_issue(svc_request *r);
void svc_api_cert_get(svc_request *r);
void svc_api_cert_revoke(svc_request *r);
void svc_api_cert_renew(svc_request *r);
void svc_api_cert_rekey(svc_request *r);

void svc_api_device_list(svc_request *r);
void svc_api_device_register(svc_request *r);
void svc_api_device_get(svc_request *r);
void svc_api_device_disable(svc_request *r);
void svc_api_device_enable(svc_request *r);

void svc_api_claim_list(svc_request *r);
void svc_api_claim_create(svc_request *r);
void svc_api_claim_revoke(svc_request *r);

void svc_api_audit_list(svc_request *r);
void svc_api_audit_verify(svc_request *r);

#endif
