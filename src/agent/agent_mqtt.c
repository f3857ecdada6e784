/*
 * `tessera-agent run` (ts_agent_run): where to connect and what to trust (options, then the
 * datastore, then the compiled-in defaults), the identity, re-enrollment, and the loop that makes
 * telemetry and drives the connection (agent_mqtt_conn.c).
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "agent/agent_internal.h"
#include "agent/agent_mqtt_run.h"
#include "common/error_internal.h"
#include "common/file_internal.h"
#include "tessera/datastore.h"

#define RUN_TRUST_FILE "run.trust.pem"
#define DS_TENANT      "tenant"

double run_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void run_emit(run_state *st, int is_error, const char *fmt, ...)
{
    char line[1024];
    va_list ap;

    if (st->opts->event == NULL) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    st->opts->event(st->opts->event_arg, is_error, line);
}

static int tenant_ok(const char *s)
{
    size_t n = strlen(s);
    return n >= 1 && n <= TS_COMMAND_TENANT_MAX && s[0] != '-' &&
           strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789-") == n;
}

/* --- configuration --------------------------------------------------------------------------- */

static ts_err configure(run_state *st, ts_datastore *ds)
{
    const ts_agent_run_opts *o = st->opts;
    const char *text = NULL;
    const uint8_t *pem = NULL;
    size_t pem_len = 0;
    uint64_t u = 0;
    ts_err rv;

    /* The endpoint. */
    if (o->mqtt != NULL) {
        rv = agent_mqtt_endpoint_parse(o->mqtt, st->host, &st->port);
        if (rv != TS_OK) {
            return rv;
        }
    } else {
        snprintf(st->host, sizeof st->host, "%s", TS_AGENT_MQTT_HOST_DEFAULT);
        st->port = TS_AGENT_MQTT_PORT_DEFAULT;
        if (ts_datastore_get_text(ds, TS_DS_MQTT_HOST, &text) == TS_OK && text[0] != '\0') {
            if (strlen(text) > AGENT_MQTT_HOST_MAX) {
                return ts_error_set(TS_ERR_INVALID, "the datastore's %s is too long",
                                    TS_DS_MQTT_HOST);
            }
            snprintf(st->host, sizeof st->host, "%s", text);
        }
        if (ts_datastore_get_uint(ds, TS_DS_MQTT_PORT, &u) == TS_OK) {
            if (u < 1 || u > 65535) {
                return ts_error_set(TS_ERR_INVALID, "the datastore's %s is not a port",
                                    TS_DS_MQTT_PORT);
            }
            st->port = (int)u;
        }
        ts_error_clear();
    }
    /* The tenant: the topics' second level. */
    if (o->tenant != NULL) {
        snprintf(st->tenant, sizeof st->tenant, "%s", o->tenant);
        st->est_tenant = o->tenant;
        if (!tenant_ok(o->tenant)) {
            return ts_error_set(TS_ERR_INVALID, "tenant '%.64s' is not 1 to %d of [a-z0-9-]",
                                o->tenant, TS_COMMAND_TENANT_MAX);
        }
    } else if (ts_datastore_get_text(ds, DS_TENANT, &text) == TS_OK) {
        if (!tenant_ok(text)) {
            return ts_error_set(TS_ERR_INVALID, "the datastore's tenant is not a tenant name");
        }
        snprintf(st->tenant, sizeof st->tenant, "%s", text);
    } else {
        ts_error_clear();
        snprintf(st->tenant, sizeof st->tenant, "default");
    }
    /* The trust roots: a file, kept for re-enrollment and the status handler. */
    if (o->trust_file != NULL) {
        snprintf(st->trust_path, sizeof st->trust_path, "%s", o->trust_file);
    } else if (ts_datastore_get(ds, TS_DS_TRUST_ROOTS, &pem, &pem_len, NULL) == TS_OK) {
        int w =
            snprintf(st->trust_path, sizeof st->trust_path, "%s/%s", o->state_dir, RUN_TRUST_FILE);
        if (w < 0 || (size_t)w >= sizeof st->trust_path) {
            return ts_error_set(TS_ERR_INVALID, "the state directory's path is too long");
        }
        rv = ts_file_write_atomic(st->trust_path, pem, pem_len, 0600);
        if (rv != TS_OK) {
            return rv;
        }
    } else {
        return ts_error_set(TS_ERR_STATE,
                            "no trust roots: give --trust, or set %s in the datastore",
                            TS_DS_TRUST_ROOTS);
    }
    rv = agent_trust_load(st->trust_path, &st->roots);
    if (rv != TS_OK) {
        return rv;
    }
    /* Re-enrollment. */
    if (o->server != NULL) {
        st->server = OPENSSL_strdup(o->server);
    } else if (ts_datastore_get_text(ds, TS_DS_SERVER_URL, &text) == TS_OK && text[0] != '\0') {
        st->server = OPENSSL_strdup(text);
    } else {
        ts_error_clear();
    }
    st->threshold_days = o->threshold_days;
    if (st->threshold_days == 0 && ts_datastore_get_uint(ds, TS_DS_REENROLL_DAYS, &u) == TS_OK &&
        u >= 1 && u <= 36500) {
        st->threshold_days = (unsigned)u;
    }
    ts_error_clear();
#define TOPIC(field, leaf)                                                                         \
    snprintf(st->field, sizeof st->field, "%s/%s/%s/%s", TS_TOPIC_ROOT, st->tenant, st->uid, leaf)
    TOPIC(topic_telemetry, TS_TOPIC_TELEMETRY);
    TOPIC(topic_status, TS_TOPIC_STATUS);
    TOPIC(topic_commands, TS_TOPIC_COMMANDS);
    TOPIC(topic_results, TS_TOPIC_RESULTS);
#undef TOPIC
    return TS_OK;
}

/* --- the identity ------------------------------------------------------------------------------
 */

static time_t cert_not_after(X509 *cert)
{
    struct tm tm;
    if (ASN1_TIME_to_tm(X509_get0_notAfter(cert), &tm) != 1) {
        return 0;
    }
    return timegm(&tm);
}

static void identity_clear(run_state *st)
{
    X509_free(st->cert);
    sk_X509_pop_free(st->chain, X509_free);
    EVP_PKEY_free(st->key);
    st->cert = NULL;
    st->chain = NULL;
    st->key = NULL;
}

static ts_err identity_load(run_state *st)
{
    ts_keystore *ks = ts_agent_keystore(st->agent);
    agent_pointer cur;
    X509 *cert = NULL;
    STACK_OF(X509) *chain = NULL;
    EVP_PKEY *key = NULL;
    ts_err rv = agent_identity_load(ks, &cur, &cert, &chain);

    if (rv == TS_ERR_NOT_FOUND) {
        return ts_error_set(TS_ERR_STATE, "the device is not enrolled: run 'enroll' first");
    }
    if (rv == TS_OK) {
        rv = ts_keystore_evp_pkey(ks, cur.key, &key);
    }
    if (rv != TS_OK) {
        X509_free(cert);
        sk_X509_pop_free(chain, X509_free);
        return rv;
    }
    identity_clear(st);
    st->cert = cert;
    st->chain = chain;
    st->key = key;
    st->not_after = cert_not_after(cert);
    return TS_OK;
}

ts_err run_reenroll(run_state *st, int force, char *out, size_t size)
{
    ts_agent_est_opts est;
    ts_agent_status s;
    int renewed = 0;
    ts_err rv;

    memset(&est, 0, sizeof est);
    est.server = st->server;
    est.tenant = st->est_tenant;
    est.trust_file = st->trust_path;
    est.timeout = st->opts->timeout;
    est.rekey = force > 1;
    if (force && st->server == NULL) {
        return ts_error_set(TS_ERR_STATE,
                            "no service URL for re-enrollment: give --server, or set %s in "
                            "the datastore",
                            TS_DS_SERVER_URL);
    }
    rv = ts_agent_reenroll(st->agent, &est, st->threshold_days, force, &renewed);
    if (rv != TS_OK || !renewed) {
        return rv;
    }
    /* The new identity is committed: the loop reconnects whatever follows (st->reload). */
    st->reload = 1;
    rv = ts_agent_status_get(st->agent, NULL, &s);
    if (rv == TS_OK) {
        /* Loaded now, not by the loop: a command's result is signed with the new identity (a
         * rekey deleted the old key). */
        rv = identity_load(st);
    }
    if (rv != TS_OK) {
        return ts_error_prefix(rv, "re-enrolled, but the new identity cannot be loaded (restart "
                                   "the agent)");
    }
    snprintf(out, size, "%s serial %s", est.rekey ? "rekeyed" : "reenrolled", s.serial);
    run_emit(st, 0, "%s", out);
    return TS_OK;
}

static void reenroll_if_due(run_state *st)
{
    char out[128];
    if (run_reenroll(st, 0, out, sizeof out) != TS_OK) {
        run_emit(st, 1, "re-enrollment failed: %s", ts_error_message());
        ts_error_clear();
    }
}

/* --- telemetry ---------------------------------------------------------------------------------
 */

static void make_telemetry(run_state *st)
{
    char *json = NULL;
    size_t len = 0;
    uint64_t dropped = 0;
    uint64_t seq = st->made + 1;

    if (agent_telemetry_make(st->opts->telemetry_cmd, seq, &json, &len) != TS_OK) {
        run_emit(st, 1, "telemetry %llu not made: %s", (unsigned long long)seq, ts_error_message());
        ts_error_clear();
        return;
    }
    st->made = seq;
    agent_tq_push(&st->q, seq, json, len, &dropped);
    if (dropped != 0) {
        run_emit(st, 0, "telemetry %llu dropped", (unsigned long long)dropped);
    }
    if (st->phase != PHASE_UP) {
        run_emit(st, 0, "telemetry %llu queued", (unsigned long long)seq);
    }
}

/* Whether to make a message now; *wait_ms is lowered to when the next one is due. */
static int telemetry_due(run_state *st, double now, int *wait_ms)
{
    const ts_agent_run_opts *o = st->opts;
    long interval = o->interval < 0 ? TS_AGENT_RUN_INTERVAL_DEFAULT : o->interval;

    if (o->count != 0 && st->acked + st->q.len >= o->count) {
        return 0; /* enough made: the rest is waiting to be acknowledged */
    }
    if (interval == 0) {
        /* As fast as the broker acknowledges: keep the window full, never drop. */
        return st->q.len < RUN_WINDOW && st->q.len < st->q.cap;
    }
    if (now >= st->next_telemetry) {
        st->next_telemetry += (double)interval;
        if (st->next_telemetry < now) {
            st->next_telemetry = now + (double)interval;
        }
        return 1;
    }
    int ms = (int)((st->next_telemetry - now) * 1000) + 1;
    if (ms < *wait_ms) {
        *wait_ms = ms;
    }
    return 0;
}

/* --- the run -----------------------------------------------------------------------------------
 */

static int stopping(const run_state *st)
{
    return st->opts->stop != NULL && *st->opts->stop != 0;
}

static void loop(run_state *st)
{
    double next_check = run_now() + RUN_REENROLL_CHECK;

    st->next_telemetry = run_now();
    while (!stopping(st)) {
        double now = run_now();
        int wait_ms = 100;

        if (st->opts->count != 0 && st->acked >= st->opts->count) {
            run_disconnect(st, "done");
            return;
        }
        /* run_reenroll() loaded the new identity; the connection is still the old one's. */
        if (st->reload) {
            st->reload = 0;
            if (st->mosq != NULL) {
                run_disconnect(st, "re-enrolled, reconnecting with the new certificate");
                st->backoff = 1;
                st->next_attempt = now;
            }
        }
        if (now >= next_check) {
            next_check = now + RUN_REENROLL_CHECK;
            reenroll_if_due(st);
            continue;
        }
        if (st->mosq == NULL && now >= st->next_attempt) {
            run_connect(st);
        }
        if (telemetry_due(st, now, &wait_ms)) {
            make_telemetry(st);
            wait_ms = 0;
        }
        if (st->mosq != NULL) {
            run_service(st, wait_ms);
            if (st->lost) {
                run_handle_lost(st);
            }
        } else {
            double until = st->next_attempt - run_now();
            if (until * 1000 < wait_ms) {
                wait_ms = until > 0 ? (int)(until * 1000) + 1 : 0;
            }
            struct timespec ts = {wait_ms / 1000, (long)(wait_ms % 1000) * 1000000L};
            nanosleep(&ts, NULL); /* a signal ends it early */
        }
    }
    run_disconnect(st, "stopped");
}

ts_err ts_agent_run(ts_agent *agent, const ts_agent_run_opts *opts)
{
    run_state *st = NULL;
    ts_datastore *ds = NULL;
    ts_err rv;

    if (opts == NULL || opts->state_dir == NULL) {
        return ts_error_set(TS_ERR_INVALID, "run needs the state directory");
    }
    if (opts->queue > TS_AGENT_RUN_QUEUE_MAX) {
        return ts_error_set(TS_ERR_INVALID, "the queue holds at most %d messages",
                            TS_AGENT_RUN_QUEUE_MAX);
    }
    st = OPENSSL_zalloc(sizeof *st);
    if (st == NULL) {
        return ts_error_set(TS_ERR_NOMEM, "out of memory");
    }
    st->agent = agent;
    st->opts = opts;
    st->backoff = 1;
    rv = ts_agent_uid(agent, st->uid);
    if (rv == TS_OK) {
        rv = ts_datastore_open_or_defaults(opts->state_dir, ts_agent_keystore(agent), &ds);
    }
    if (rv == TS_OK) {
        rv = configure(st, ds);
    }
    ts_datastore_free(ds);
    if (rv == TS_OK) {
        rv = identity_load(st);
    }
    if (rv == TS_OK) {
        rv = agent_tq_init(&st->q, opts->queue != 0 ? opts->queue : TS_AGENT_RUN_QUEUE_DEFAULT);
    }
    if (rv == TS_OK) {
        mosquitto_lib_init();
        reenroll_if_due(st);
        loop(st);
        mosquitto_lib_cleanup();
    }
    agent_tq_clear(&st->q);
    identity_clear(st);
    X509_STORE_free(st->roots);
    OPENSSL_free(st->server);
    OPENSSL_free(st);
    return rv;
}
