/*
 * The REST API under /api/v1: one table of routes, each with who may call it and the schemas
 * of what it takes and answers (docs/api.md; the OpenAPI document is generated from this).
 * The router authenticates the bearer token, loads {tenant} and refuses foreign tenants (404)
 * and roles outside the mask (403) before a handler runs; handlers check again what concerns
 * their rows (svc_api_common.c).
 */
#include "service/svc_api_internal.h"
#include "service/svc_api_schema.h"

#define A TS_ROLE_BIT(TS_ROLE_ADMIN)
#define O TS_ROLE_BIT(TS_ROLE_OPERATOR)
#define U TS_ROLE_BIT(TS_ROLE_AUDITOR)
#define D TS_ROLE_BIT(TS_ROLE_DEVICE)

#define T "/api/v1/tenants/{tenant}"

/* A route of this API: every one takes a bearer token. */
#define ROUTE(m, p, h, r, f, s, req, resp)                                                         \
    {                                                                                              \
        .method = m, .pattern = p, .handler = h, .auth = SVC_AUTH_TOKEN, .roles = r, .flags = f,   \
        .summary = s, .request_schema = req, .response_schema = resp                               \
    }

#define BODY SVC_ROUTE_BODY

const svc_route svc_api_routes[] = {
    ROUTE("GET", "/api/v1/me", svc_api_me, A | O | U | D, 0,
          "Who the bearer token belongs to: user, role, tenant (null: instance-wide)", NULL,
          SA_PRINCIPAL),

    /* Tenants */
    ROUTE("GET", "/api/v1/tenants", svc_api_tenant_list, A | O | U, 0,
          "Tenants: every tenant for instance-wide users, else the caller's own", NULL,
          SA_LIST(SA_TENANT)),
    ROUTE("POST", "/api/v1/tenants", svc_api_tenant_create, A, BODY,
          "Create a tenant with its own issuing CA (instance admins; the root key must be online, "
          "else 409)",
          SA_REQ_TENANT, SA_TENANT),
    ROUTE("GET", T, svc_api_tenant_get, A | O | U, 0, "A tenant", NULL, SA_TENANT),

    /* Users and tokens */
    ROUTE("GET", T "/users", svc_api_user_list, A, 0, "The tenant's users, by name", NULL,
          SA_LIST(SA_USER)),
    ROUTE("POST", T "/users", svc_api_user_create, A, BODY,
          "Create a user with a role (a device user names its registered device)", SA_REQ_USER,
          SA_USER),
    ROUTE("GET", T "/users/{user}", svc_api_user_get, A, 0, "A user", NULL, SA_USER),
    ROUTE("POST", T "/users/{user}/disable", svc_api_user_disable, A, 0,
          "Disable a user: its tokens stop authenticating", NULL, SA_USER),
    ROUTE("POST", T "/users/{user}/enable", svc_api_user_enable, A, 0, "Enable a user again", NULL,
          SA_USER),
    ROUTE("GET", T "/tokens", svc_api_token_list, A, 0,
          "The API tokens of the tenant's users (?user= for one user's)", NULL, SA_LIST(SA_TOKEN)),
    ROUTE("POST", T "/tokens", svc_api_token_create, A, BODY,
          "Make an API token for a user; the token is in this reply only", SA_REQ_TOKEN,
          SA_TOKEN_NEW),
    ROUTE("DELETE", T "/tokens/{id}", svc_api_token_revoke, A, 0,
          "Revoke an API token; answers the token as it is now", NULL, SA_TOKEN),

    /* CAs and profiles */
    ROUTE("GET", T "/cas", svc_api_ca_list, A | O | U, 0,
          "The root and the tenant's active issuing CA certificate", NULL, SA_LIST(SA_CA)),
    ROUTE("GET", T "/cas/{kind}", svc_api_ca_get, A | O | U, 0,
          "One CA certificate: {kind} is root or issuing", NULL, SA_CA),
    ROUTE("POST", T "/cas/verification", svc_api_ca_verification, A, BODY,
          "A proof-of-possession certificate for a cloud's registration code (AWS IoT, Azure "
          "DPS), signed by the issuing CA",
          SA_REQ_VERIFICATION, SA_CERT),
    ROUTE("GET", T "/profiles", svc_api_profile_list, A | O | U, 0,
          "The tenant's certificate profiles", NULL, SA_LIST(SA_PROFILE)),
    ROUTE("GET", T "/profiles/{name}", svc_api_profile_get, A | O | U, 0, "A certificate profile",
          NULL, SA_PROFILE),
    ROUTE("PUT", T "/profiles/{name}", svc_api_profile_put, A, BODY,
          "Create (201) or replace (200) a profile; its \"name\" must be {name}", SA_PROFILE,
          SA_PROFILE),

    /* Certificates */
    ROUTE("GET", T "/certificates", svc_api_cert_list, A | O | U | D, 0,
          "Certificates by issue order: ?status=valid|revoked, ?device=UID, "
          "?expiring_within_days=N, ?limit, ?cursor (a device sees its own only)",
          NULL, SA_LIST(SA_CERT)),
    ROUTE("POST", T "/certificates", svc_api_cert_issue, A | O, BODY,
          "Issue a certificate for a PEM CSR under a profile", SA_REQ_ISSUE, SA_CERT),
    ROUTE("GET", T "/certificates/{serial}", svc_api_cert_get, A | O | U | D, 0,
          "A certificate with its PEM (a device sees its own only)", NULL, SA_CERT),
    ROUTE("POST", T "/certificates/{serial}/revoke", svc_api_cert_revoke, A | O, BODY,
          "Revoke a valid certificate; the body is {} or names the reason", SA_REQ_REVOKE, SA_CERT),
    ROUTE("POST", T "/certificates/{serial}/renew", svc_api_cert_renew, A | O, 0,
          "A new certificate for the same key and subject; the old one stays valid", NULL, SA_CERT),
    ROUTE("POST", T "/certificates/{serial}/rekey", svc_api_cert_rekey, A | O, BODY,
          "A new certificate for a new key (PEM CSR); the old one is revoked as superseded",
          SA_REQ_REKEY, SA_CERT),

    /* Devices */
    ROUTE("GET", T "/devices", svc_api_device_list, A | O | U, 0,
          "Registered devices by id: ?status=enabled|disabled, ?limit, ?cursor", NULL,
          SA_LIST(SA_DEVICE)),
    ROUTE("POST", T "/devices", svc_api_device_register, A | O, BODY, "Register a device by UID",
          SA_REQ_DEVICE, SA_DEVICE),
    ROUTE("GET", T "/devices/{uid}", svc_api_device_get, A | O | U | D, SVC_ROUTE_DEVICE_SELF,
          "A device with its status and certificates (a device sees itself only)", NULL,
          SA_DEVICE_CERTS),
    ROUTE("POST", T "/devices/{uid}/disable", svc_api_device_disable, A | O, 0,
          "Disable a device: its certificates stop being accepted (revocation feed event)", NULL,
          SA_DEVICE),
    ROUTE("POST", T "/devices/{uid}/enable", svc_api_device_enable, A | O, 0,
          "Enable a device again (revocation feed event)", NULL, SA_DEVICE),

    /* Claim codes */
    ROUTE("GET", T "/claims", svc_api_claim_list, A | O, 0, "The tenant's claim codes", NULL,
          SA_LIST(SA_CLAIM)),
    ROUTE("POST", T "/claims", svc_api_claim_create, A | O, BODY,
          "Make a claim code for zero-touch enrollment; the code is in this reply only",
          SA_REQ_CLAIM, SA_CLAIM_NEW),
    ROUTE("DELETE", T "/claims/{id}", svc_api_claim_revoke, A | O, 0,
          "Revoke a claim code; answers the claim code as it is now", NULL, SA_CLAIM),

    /* The audit log (instance-wide admins and auditors) */
    ROUTE("GET", "/api/v1/audit", svc_api_audit_list, A | U, 0,
          "Audit entries oldest first: ?after=ID or ?cursor, ?limit (instance-wide users only)",
          NULL, SA_LIST(SA_AUDIT)),
    ROUTE("GET", "/api/v1/audit/verify", svc_api_audit_verify, A | U, 0,
          "Verify the audit log's hash chain (instance-wide users only)", NULL, SA_AUDIT_VERIFY),

    {.method = NULL},
};
