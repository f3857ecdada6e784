/*
 * The Mosquitto plugin's internals (docs/broker.md).
 *
 * Threads: the broker's own thread runs every Mosquitto callback and owns the current state
 * snapshot and the table of connected clients. The feed thread (broker_feed.c) owns its working
 * state, polls the service and hands a copy of that state to the broker thread under a mutex;
 * the broker thread takes it on its next MOSQ_EVT_TICK. Nothing here is shared otherwise.
 */
#ifndef TS_BROKER_INTERNAL_H
#define TS_BROKER_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <openssl/x509.h>

#include "tessera/error.h"

enum {
    TSB_TENANT_MAX = 32,        /* characters of a tenant name: [a-z0-9][a-z0-9-]* */
    TSB_UID_MAX = 64,           /* characters of a device UID: [A-Za-z0-9._:-] */
    TSB_SERIAL_MAX = 20,        /* octets of a certificate serial (RFC 5280 4.1.2.2) */
    TSB_FP_LEN = 32,            /* SHA-256 */
    TSB_CAS_PER_TENANT = 16,    /* issuing CAs kept per tenant */
    TSB_TENANTS_MAX = 4096,     /* tenants kept */
    TSB_REVOKED_MAX = 1000000,  /* revoked certificates kept */
    TSB_DISABLED_MAX = 1000000, /* disabled devices kept */
    TSB_CACHE_MAX = 256 << 20,  /* bytes of the cache file */
    TSB_PEM_MAX = 16384,        /* bytes of one CA certificate's PEM */
};

/* An issuing CA of a tenant: what a client certificate's issuer is matched against. */
typedef struct tsb_ca {
    X509 *cert;             /* owned (one reference) */
    uint8_t fp[TSB_FP_LEN]; /* SHA-256 of its DER: the feed's issuer_fingerprint */
    uint8_t skid[64];       /* its subject key identifier */
    size_t skid_len;
} tsb_ca;

typedef struct tsb_tenant {
    char name[TSB_TENANT_MAX + 1];
    uint64_t since; /* the feed's next_since: every event up to it is applied */
    bool synced;    /* the feed was read up to its end at least once */
    tsb_ca cas[TSB_CAS_PER_TENANT];
    size_t n_cas;
} tsb_tenant;

/* A revoked certificate: its issuer's fingerprint and its serial (big-endian, no leading 0). */
typedef struct tsb_revoked {
    uint8_t fp[TSB_FP_LEN];
    uint8_t serial[TSB_SERIAL_MAX];
    uint8_t serial_len;
} tsb_revoked;

/* A disabled device: tenant and UID, "tenant/uid" as one string. */
typedef struct tsb_disabled {
    char key[TSB_TENANT_MAX + 1 + TSB_UID_MAX + 1];
} tsb_disabled;

typedef struct tsb_state {
    tsb_tenant *tenants; /* sorted by name */
    size_t n_tenants, cap_tenants;
    tsb_revoked *revoked; /* sorted after tsb_state_finish() */
    size_t n_revoked, cap_revoked;
    tsb_disabled *disabled; /* sorted after tsb_state_finish() */
    size_t n_disabled, cap_disabled;
} tsb_state;

/* ---- state (broker_state.c) ---- */

/* Name and UID rules; true when s (NUL-terminated) is one. */
bool tsb_tenant_name_ok(const char *s);
bool tsb_uid_ok(const char *s);

tsb_state *tsb_state_new(void);
void tsb_state_free(tsb_state *st);
/* A deep copy (CA certificates shared by reference), or NULL when out of memory. */
tsb_state *tsb_state_dup(const tsb_state *st);

/* The tenant named name, or NULL. Needs a sorted tenant list (kept so by tsb_state_tenant_add). */
tsb_tenant *tsb_state_tenant(const tsb_state *st, const char *name);
/* Adds a tenant (since 0, not synced, no CA) or returns the one there. */
ts_err tsb_state_tenant_add(tsb_state *st, const char *name, tsb_tenant **out);
/* Removes every tenant not marked in keep[] (indexed as st->tenants). */
void tsb_state_tenants_retain(tsb_state *st, const bool *keep);

/* Replaces a tenant's CAs with certs (n <= TSB_CAS_PER_TENANT; takes a reference on each);
 * *changed tells whether they differ from before. */
ts_err tsb_tenant_set_cas(tsb_tenant *t, X509 *const *certs, size_t n, bool *changed);
/* Fills a tsb_ca from a certificate (fingerprint, SKID); takes a reference. */
ts_err tsb_ca_init(tsb_ca *ca, X509 *cert);

/* serial as hex ("5A0C", "0a0c": either case, even or odd length) to big-endian octets with no
 * leading zero. */
ts_err tsb_serial_from_hex(const char *hex, uint8_t out[TSB_SERIAL_MAX], uint8_t *len);
/* A certificate's serial as octets; TS_ERR_INVALID for a negative or too long one. */
ts_err tsb_serial_from_cert(const X509 *cert, uint8_t out[TSB_SERIAL_MAX], uint8_t *len);

ts_err tsb_state_revoke(tsb_state *st, const uint8_t fp[TSB_FP_LEN], const uint8_t *serial,
                        uint8_t serial_len);
ts_err tsb_state_disable(tsb_state *st, const char *tenant, const char *uid);
void tsb_state_enable(tsb_state *st, const char *tenant, const char *uid);
/* Sorts and removes duplicates; lookups need it after changes. */
void tsb_state_finish(tsb_state *st);

bool tsb_state_is_revoked(const tsb_state *st, const uint8_t fp[TSB_FP_LEN], const uint8_t *serial,
                          uint8_t serial_len);
bool tsb_state_is_disabled(const tsb_state *st, const char *tenant, const char *uid);

/* The issuing CA (and its tenant) that issued cert: the CA's subject equals the certificate's
 * issuer and its subject key id equals the certificate's authority key id. */
const tsb_ca *tsb_state_find_issuer(const tsb_state *st, const X509 *cert,
                                    const tsb_tenant **tenant);

/* ---- the cache file (broker_cache.c) ---- */

/* The cache's bytes: JSON, only synced tenants. *out is freed with free(). */
ts_err tsb_cache_encode(const tsb_state *st, char **out, size_t *len);
/* One PEM CA certificate (a JSON string, nothing else in it but whitespace). */
ts_err tsb_pem_ca_parse(const json_t *v, X509 **out);
/* Exactly 2n hex digits (either case) into n octets. */
bool tsb_hex_decode(const char *s, uint8_t *out, size_t n);
/* Parses the cache strictly into a new state (every tenant in it synced); no state on error. */
ts_err tsb_cache_decode(const uint8_t *data, size_t len, tsb_state **out);

/* ---- the feed thread (broker_feed.c) ---- */

typedef struct tsb_feed tsb_feed;

typedef struct tsb_feed_config {
    const char *url;    /* https://host:port */
    const char *trust;  /* PEM roots that verify it */
    const char *cache;  /* path of the cache file */
    char *auth_header;  /* "Authorization: Bearer ..."; the feed takes it and wipes it */
    unsigned refresh;   /* seconds between polls */
    tsb_state *initial; /* the cache's state or NULL; the feed takes it */
} tsb_feed_config;

ts_err tsb_feed_start(tsb_feed_config *cfg, tsb_feed **out);
/* Stops and joins the thread; wipes the token. Accepts NULL. */
void tsb_feed_stop(tsb_feed *f);
/* A newer state than the last one taken, or NULL; the caller owns it. */
tsb_state *tsb_feed_take(tsb_feed *f);
/* Moves up to cap queued log lines to lines[] (each freed by the caller); returns how many. */
size_t tsb_feed_take_logs(tsb_feed *f, char **lines, size_t cap, int *levels);

/* ---- connected clients (broker_clients.c), the broker thread's own ---- */

/* A client that passed authentication, by its Mosquitto handle. */
typedef struct tsb_client {
    const void *handle;
    bool service;    /* a service account: anywhere under tessera/ */
    bool has_issuer; /* fp and serial name its certificate (for kicking when revoked) */
    bool kicked;
    char tenant[TSB_TENANT_MAX + 1];
    char uid[TSB_UID_MAX + 1];
    char username[TSB_TENANT_MAX + 1 + TSB_UID_MAX + 1];
    char prefix[sizeof("tessera/") + TSB_TENANT_MAX + 1 + TSB_UID_MAX + 2];
    size_t prefix_len;
    uint8_t fp[TSB_FP_LEN];
    uint8_t serial[TSB_SERIAL_MAX];
    uint8_t serial_len;
} tsb_client;

typedef struct tsb_clients {
    tsb_client **slots; /* open addressing by handle; NULL empty */
    size_t cap, n;
} tsb_clients;

/* Adds or replaces the entry of c->handle (copied). */
ts_err tsb_clients_put(tsb_clients *t, const tsb_client *c);
tsb_client *tsb_clients_get(const tsb_clients *t, const void *handle);
void tsb_clients_del(tsb_clients *t, const void *handle);
void tsb_clients_free(tsb_clients *t);

/* ---- the plugin (broker_plugin.c: options and lifetime; broker_auth.c: the callbacks) ---- */

typedef struct tsb_plugin {
    void *id; /* mosquitto_plugin_id_t */
    tsb_feed *feed;
    tsb_state *state; /* the broker thread's current state; NULL: none yet (fail closed) */
    tsb_clients clients;
    uint8_t (*service_spki)[TSB_FP_LEN]; /* SHA-256 of service accounts' SubjectPublicKeyInfo */
    size_t n_service;
    bool said_no_state; /* "no state" was logged once */
} tsb_plugin;

/* The callbacks, registered by mosquitto_plugin_init. */
int tsb_on_basic_auth(int event, void *event_data, void *userdata);
int tsb_on_acl_check(int event, void *event_data, void *userdata);
int tsb_on_tick(int event, void *event_data, void *userdata);
int tsb_on_disconnect(int event, void *event_data, void *userdata);

/* ---- topics (broker_acl.c) ---- */

/* True when a device whose prefix is "tessera/<tenant>/<uid>/" may use topic or filter: the
 * topic starts with the prefix and, for a filter, no wildcard stands in the prefix's levels. */
bool tsb_acl_device(const char *prefix, size_t prefix_len, const char *topic);
/* True for topics and filters under tessera/ (the service account). */
bool tsb_acl_service(const char *topic);

#endif
