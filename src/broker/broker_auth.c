/*
 * The plugin's callbacks, all on the broker's thread: who a client is (MOSQ_EVT_BASIC_AUTH),
 * which topics it may use (MOSQ_EVT_ACL_CHECK), a new state from the feed thread and kicking the
 * clients it revokes (MOSQ_EVT_TICK), and forgetting a client (MOSQ_EVT_DISCONNECT).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mosquitto.h>
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "broker/broker_internal.h"

#define SERVICE_USERNAME "service"

/* A client-chosen string made safe for the log: printable ASCII, at most 64 characters. */
static const char *log_safe(const char *s, char out[68])
{
    size_t i = 0;

    if (s == NULL) {
        return "(none)";
    }
    for (; s[i] != '\0' && i < 64; i++) {
        out[i] = s[i] > 0x20 && s[i] < 0x7f && s[i] != '\'' ? s[i] : '?';
    }
    if (s[i] != '\0') {
        memcpy(out + i, "...", 3);
        i += 3;
    }
    out[i] = '\0';
    return out;
}

static bool is_service(const tsb_plugin *p, X509 *cert)
{
    unsigned char *der = NULL;
    uint8_t h[TSB_FP_LEN];
    bool found = false;

    if (p->n_service == 0) {
        return false;
    }
    int n = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert), &der);
    if (n > 0 && EVP_Digest(der, (size_t)n, h, NULL, EVP_sha256(), NULL) == 1) {
        for (size_t i = 0; i < p->n_service; i++) {
            found |= CRYPTO_memcmp(h, p->service_spki[i], TSB_FP_LEN) == 0;
        }
    }
    OPENSSL_free(der);
    return found;
}

/* The certificate's one CN, when it is a device UID. */
static bool cert_uid(X509 *cert, char uid[TSB_UID_MAX + 1])
{
    const X509_NAME *subject = X509_get_subject_name(cert);
    int at = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
    unsigned char *utf8 = NULL;

    if (at < 0 || X509_NAME_get_index_by_NID(subject, NID_commonName, at) >= 0) {
        return false;
    }
    int n = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, at)));
    bool ok = n > 0 && n <= TSB_UID_MAX && memchr(utf8, '\0', (size_t)n) == NULL;
    if (ok) {
        memcpy(uid, utf8, (size_t)n);
        uid[n] = '\0';
        ok = tsb_uid_ok(uid);
    }
    OPENSSL_free(utf8);
    return ok;
}

/* Fills c for cert, or returns why the client is refused. */
static const char *identify(tsb_plugin *p, X509 *cert, const char *client_id, tsb_client *c,
                            char *why, size_t why_len)
{
    const tsb_tenant *t = NULL;
    const tsb_ca *ca = p->state != NULL ? tsb_state_find_issuer(p->state, cert, &t) : NULL;

    if (ca != NULL) {
        c->has_issuer = tsb_serial_from_cert(cert, c->serial, &c->serial_len) == TS_OK;
        memcpy(c->fp, ca->fp, TSB_FP_LEN);
        if (!c->has_issuer) {
            return "the certificate's serial is negative or longer than 20 octets";
        }
        if (tsb_state_is_revoked(p->state, c->fp, c->serial, c->serial_len)) {
            snprintf(why, why_len, "certificate of %s is revoked", t->name);
            return why;
        }
    }
    if (is_service(p, cert)) {
        c->service = true;
        memcpy(c->username, SERVICE_USERNAME, sizeof(SERVICE_USERNAME));
        return NULL;
    }
    if (p->state == NULL) {
        return "no revocation state yet (no cache, and the service has not answered)";
    }
    if (ca == NULL) {
        return "the certificate's issuer is no tenant's issuing CA";
    }
    if (!t->synced) {
        snprintf(why, why_len, "the revocation state of tenant %s is not known yet", t->name);
        return why;
    }
    if (!cert_uid(cert, c->uid)) {
        return "the certificate's CN is not one device UID";
    }
    if (client_id == NULL || strcmp(client_id, c->uid) != 0) {
        snprintf(why, why_len, "the client id is not the certificate's UID %s/%s", t->name, c->uid);
        return why;
    }
    if (tsb_state_is_disabled(p->state, t->name, c->uid)) {
        snprintf(why, why_len, "device %s/%s is disabled", t->name, c->uid);
        return why;
    }
    memcpy(c->tenant, t->name, strlen(t->name) + 1);
    snprintf(c->username, sizeof(c->username), "%s/%s", c->tenant, c->uid);
    c->prefix_len =
        (size_t)snprintf(c->prefix, sizeof(c->prefix), "tessera/%s/%s/", c->tenant, c->uid);
    return NULL;
}

int tsb_on_basic_auth(int event, void *event_data, void *userdata)
{
    struct mosquitto_evt_basic_auth *ed = event_data;
    tsb_plugin *p = userdata;
    const char *client_id = mosquitto_client_id(ed->client);
    X509 *cert = mosquitto_client_certificate(ed->client);
    tsb_client c;
    char why[256], safe[68];
    const char *reason = NULL;

    memset(&c, 0, sizeof(c));
    c.handle = ed->client;
    if (cert == NULL) {
        reason = "no client certificate";
    } else {
        reason = identify(p, cert, client_id, &c, why, sizeof(why));
    }
    X509_free(cert);
    if (reason == NULL && mosquitto_set_username(ed->client, c.username) != MOSQ_ERR_SUCCESS) {
        reason = "cannot set the username";
    }
    if (reason == NULL && tsb_clients_put(&p->clients, &c) != TS_OK) {
        reason = "out of memory";
    }
    if (reason != NULL) {
        mosquitto_log_printf(MOSQ_LOG_NOTICE, "tessera: refused client '%s' from %s: %s",
                             log_safe(client_id, safe), mosquitto_client_address(ed->client),
                             reason);
        return MOSQ_ERR_AUTH;
    }
    return MOSQ_ERR_SUCCESS;
}

int tsb_on_acl_check(int event, void *event_data, void *userdata)
{
    struct mosquitto_evt_acl_check *ed = event_data;
    tsb_plugin *p = userdata;
    const tsb_client *c = tsb_clients_get(&p->clients, ed->client);

    if (c == NULL) {
        return MOSQ_ERR_ACL_DENIED;
    }
    if (c->service) {
        return tsb_acl_service(ed->topic) ? MOSQ_ERR_SUCCESS : MOSQ_ERR_ACL_DENIED;
    }
    return tsb_acl_device(c->prefix, c->prefix_len, ed->topic) ? MOSQ_ERR_SUCCESS
                                                               : MOSQ_ERR_ACL_DENIED;
}

/* After a new state: kicks every connected client whose device is now disabled or whose
 * certificate is now revoked. Kicking calls back into tsb_on_disconnect, so the usernames are
 * collected first. */
static void kick_revoked(tsb_plugin *p)
{
    char(*names)[sizeof(((tsb_client *)0)->username)] = NULL;
    const char **reasons = NULL;
    size_t n = 0;

    if (p->clients.n == 0) {
        return;
    }
    names = calloc(p->clients.n, sizeof(*names));
    reasons = calloc(p->clients.n, sizeof(*reasons));
    for (size_t i = 0; names != NULL && reasons != NULL && i < p->clients.cap; i++) {
        tsb_client *c = p->clients.slots[i];
        if (c == NULL || c->kicked) {
            continue;
        }
        const char *reason = NULL;
        if (c->has_issuer && tsb_state_is_revoked(p->state, c->fp, c->serial, c->serial_len)) {
            reason = "its certificate is revoked";
        } else if (!c->service && tsb_state_is_disabled(p->state, c->tenant, c->uid)) {
            reason = "the device is disabled";
        }
        if (reason != NULL && n < p->clients.n) {
            c->kicked = true;
            memcpy(names[n], c->username, sizeof(names[n]));
            reasons[n++] = reason;
        }
    }
    for (size_t i = 0; i < n; i++) {
        mosquitto_log_printf(MOSQ_LOG_NOTICE, "tessera: disconnecting %s: %s", names[i],
                             reasons[i]);
        mosquitto_kick_client_by_username(names[i], true);
    }
    free(names);
    free(reasons);
}

int tsb_on_tick(int event, void *event_data, void *userdata)
{
    tsb_plugin *p = userdata;
    char *lines[16];
    int levels[16];

    size_t n = tsb_feed_take_logs(p->feed, lines, 16, levels);
    for (size_t i = 0; i < n; i++) {
        mosquitto_log_printf(levels[i], "%s", lines[i]);
        free(lines[i]);
    }
    tsb_state *st = tsb_feed_take(p->feed);
    if (st != NULL) {
        tsb_state_free(p->state);
        p->state = st;
        kick_revoked(p);
    }
    return MOSQ_ERR_SUCCESS;
}

int tsb_on_disconnect(int event, void *event_data, void *userdata)
{
    struct mosquitto_evt_disconnect *ed = event_data;
    tsb_plugin *p = userdata;

    tsb_clients_del(&p->clients, ed->client);
    return MOSQ_ERR_SUCCESS;
}
