/*
 * A device's signed result (include/tessera/command.h), as it arrives on
 * tessera/<tenant>/<uid>/results: verified against the tenant's issuing CA, its signer checked
 * against the store (a current, unrevoked certificate of that very device), matched to the
 * command it names, then recorded. Anything else is refused with the reason, audited, and
 * changes no command.
 */
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/x509v3.h>

#include "common/error_internal.h"
#include "server/command_internal.h"

/* The tenant's issuing CA as the only trust anchor (partial chain: see ts_command_result_verify).
 */
static ts_err result_roots(ts_ca *ca, int64_t tenant_id, X509_STORE **out)
{
    srv_issuer issuer;
    memset(&issuer, 0, sizeof issuer);
    ts_err rv = srv_issuing_load(ca, tenant_id, 0, &issuer);
    X509_STORE *st = rv == TS_OK ? X509_STORE_new() : NULL;
    if (rv == TS_OK && (st == NULL || !X509_STORE_add_cert(st, issuer.cert))) {
        rv = ts_error_set_openssl(TS_ERR_NOMEM, "cannot build the result trust store");
    }
    srv_issuer_clear(&issuer);
    if (rv != TS_OK) {
        X509_STORE_free(st);
        return rv;
    }
    *out = st;
    return TS_OK;
}

/* The signer is a certificate the store holds as valid, of this device, under that serial. */
static ts_err signer_check(ts_ca *ca, int64_t tenant_id, const char *uid, X509 *signer)
{
    ts_cert_row row;
    char serial[TS_SERIAL_HEX], fp[TS_FINGERPRINT_HEX];
    ts_device_row dev;

    memset(&row, 0, sizeof row);
    ts_err rv = ts_serial_hex(X509_get0_serialNumber(signer), serial, sizeof serial);
    if (rv == TS_OK) {
        rv = ts_cert_fingerprint(signer, fp);
    }
    if (rv == TS_OK) {
        rv = ts_store_cert_get(ca->store, tenant_id, serial, &row);
        if (rv == TS_ERR_NOT_FOUND) {
            rv = ts_error_set(TS_ERR_AUTH,
                              "the result's signer (serial %s) is not a certificate "
                              "of this tenant",
                              serial);
        }
    }
    if (rv == TS_OK && CRYPTO_memcmp(row.fingerprint, fp, 64) != 0) {
        rv = ts_error_set(TS_ERR_AUTH, "the result's signer is not the stored certificate %s",
                          serial);
    }
    if (rv == TS_OK && strcmp(row.device_uid, uid) != 0) {
        rv = ts_error_set(TS_ERR_AUTH, "the result's signer (serial %s) is not device %s's", serial,
                          uid);
    }
    if (rv == TS_OK && row.state != TS_CERT_VALID) {
        rv = ts_error_set(TS_ERR_AUTH, "the result's signer (serial %s) is revoked", serial);
    }
    if (rv == TS_OK) {
        rv = ts_store_device_get(ca->store, tenant_id, uid, &dev);
        if (rv == TS_OK && dev.state != TS_DEVICE_ENABLED) {
            rv = ts_error_set(TS_ERR_AUTH, "device %s is disabled", uid);
        } else if (rv == TS_ERR_NOT_FOUND) {
            rv = ts_error_set(TS_ERR_AUTH, "no device %s in this tenant", uid);
        }
    }
    ts_cert_row_clear(&row);
    return rv;
}

static ts_command_state state_of(ts_command_status s)
{
    switch (s) {
    case TS_COMMAND_DONE:
        return TS_COMMAND_STATE_DONE;
    case TS_COMMAND_FAILED:
        return TS_COMMAND_STATE_FAILED;
    default:
        return TS_COMMAND_STATE_REFUSED;
    }
}

/* Audits a refused result in its own transaction; returns rv with its message kept. */
static ts_err refuse(ts_ca *ca, ts_err rv, const char *tenant, const char *uid,
                     const ts_command_result *res)
{
    char *msg = OPENSSL_strdup(ts_error_message());
    ts_err arv = ts_store_begin(ca->store);
    if (arv == TS_OK) {
        arv = srv_audit(ca, "command.result.refused", res->id,
                        srv_json("{s:s, s:s, s:I, s:s}", "tenant", tenant, "device", uid, "seq",
                                 (json_int_t)res->seq, "reason", msg != NULL ? msg : "refused"));
        arv = srv_tx_end(ca, arv);
    }
    (void)arv; /* the refusal is what the caller learns; a failed audit is in the store's log */
    rv = ts_error_set(rv, "result refused: %s", msg != NULL ? msg : "refused");
    OPENSSL_free(msg);
    return rv;
}

ts_err ts_ca_command_result(ts_ca *ca, const char *topic_tenant, const char *topic_uid,
                            const unsigned char *der, size_t der_len, ts_command_row *out)
{
    ts_tenant_row t;
    ts_command_result res;
    ts_command_row row;
    X509_STORE *roots = NULL;
    X509 *signer = NULL;

    if (ca == NULL || topic_tenant == NULL || topic_uid == NULL || der == NULL) {
        return ts_error_set(TS_ERR_INVALID, "ts_ca_command_result: missing argument");
    }
    memset(&res, 0, sizeof res);
    memset(&row, 0, sizeof row);
    ts_err rv = ts_device_uid_check(topic_uid);
    if (rv == TS_OK) {
        rv = ts_ca_tenant(ca, topic_tenant, &t);
    }
    if (rv != TS_OK) {
        return rv; /* not a tenant or device this instance has: nothing to audit under */
    }
    if (der_len > TS_COMMAND_ENVELOPE_MAX) {
        rv = ts_error_set(TS_ERR_LIMIT, "a result is at most %d bytes", TS_COMMAND_ENVELOPE_MAX);
    }
    if (rv == TS_OK) {
        rv = result_roots(ca, t.id, &roots);
    }
    if (rv == TS_OK) {
        rv = ts_command_result_verify(der, der_len, roots, time(NULL), &res, &signer);
    }
    if (rv == TS_OK && (strcmp(res.tenant, t.name) != 0 || strcmp(res.uid, topic_uid) != 0)) {
        rv = ts_error_set(TS_ERR_AUTH, "the result names %s/%s but came on %s/%s's topic",
                          res.tenant, res.uid, t.name, topic_uid);
    }
    if (rv == TS_OK) {
        rv = signer_check(ca, t.id, topic_uid, signer);
    }
    if (rv == TS_OK) {
        rv = ts_store_command_get(ca->store, t.id, topic_uid, res.id, &row);
    }
    if (rv == TS_OK && row.cmd.seq != res.seq) {
        rv = ts_error_set(TS_ERR_AUTH, "the result has seq %llu, command %s has %llu",
                          (unsigned long long)res.seq, row.cmd.id, (unsigned long long)row.cmd.seq);
    }
    ts_command_state state = state_of(res.status);
    if (rv == TS_OK) {
        rv = ts_store_begin(ca->store);
        if (rv == TS_OK) {
            const unsigned from = (1U << TS_COMMAND_PENDING) | (1U << TS_COMMAND_SENT);
            time_t now = time(NULL);
            rv = ts_store_command_settle(ca->store, row.rowid, from, state, res.output, res.error,
                                         now);
            if (rv == TS_ERR_STATE) {
                ts_error_set(rv, "command %s is already %s", row.cmd.id,
                             ts_command_state_name(row.state));
            }
            if (rv == TS_OK) {
                rv = srv_audit(ca, "command.result", row.cmd.id,
                               srv_json("{s:s, s:s, s:I, s:s, s:s}", "tenant", t.name, "device",
                                        topic_uid, "seq", (json_int_t)row.cmd.seq, "status",
                                        ts_command_state_name(state), "error", res.error));
            }
            rv = srv_tx_end(ca, rv);
            row.state = state;
            snprintf(row.output, sizeof row.output, "%s", res.output);
            snprintf(row.error, sizeof row.error, "%s", res.error);
            row.result_time = now;
        }
    }
    if (rv != TS_OK && rv != TS_ERR_NOMEM && rv != TS_ERR_STORE) {
        rv = refuse(ca, rv, t.name, topic_uid, &res);
    }
    X509_free(signer);
    X509_STORE_free(roots);
    if (rv == TS_OK && out != NULL) {
        *out = row;
    }
    return rv;
}
