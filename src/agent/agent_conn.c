/* The service URL and trust roots for EST: the options, else the datastore's (agent_conn.h). */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "agent/agent_conn.h"
#include "common/error_internal.h"
#include "common/file_internal.h"
#include "tessera/datastore.h"

#define CONN_TRUST_FILE "est.trust.pem"

/* A TEXT entry of the datastore, or NULL (an empty one counts as none). */
static const char *ds_text(const ts_datastore *ds, const char *name)
{
    const char *text = NULL;
    if (ts_datastore_get_text(ds, name, &text) != TS_OK) {
        ts_error_clear();
        return NULL;
    }
    return text[0] != '\0' ? text : NULL;
}

ts_err agent_conn_resolve(ts_agent *agent, const char *state_dir, const char *server,
                          const char *trust_file, agent_conn *c)
{
    ts_datastore *ds = NULL;
    const char *text;
    ts_err rv = TS_OK;

    memset(c, 0, sizeof *c);
    c->trust_file = trust_file;
    if (server != NULL) {
        c->server = OPENSSL_strdup(server);
        if (c->server == NULL) {
            return ts_error_set(TS_ERR_NOMEM, "out of memory");
        }
    }
    rv = ts_datastore_open_or_defaults(state_dir, ts_agent_keystore(agent), &ds);
    if (rv != TS_OK) {
        agent_conn_clear(c);
        return ts_error_prefix(rv, "datastore");
    }
    uint64_t days = 0;
    if (ts_datastore_get_uint(ds, TS_DS_REENROLL_DAYS, &days) == TS_OK && days >= 1 &&
        days <= TS_AGENT_THRESHOLD_MAX) {
        c->threshold_days = (unsigned)days;
    }
    ts_error_clear();
    if (c->server == NULL && (text = ds_text(ds, TS_DS_SERVER_URL)) != NULL) {
        c->server = OPENSSL_strdup(text);
        c->server_from_datastore = 1;
        if (c->server == NULL) {
            rv = ts_error_set(TS_ERR_NOMEM, "out of memory");
        }
    }
    if (rv == TS_OK && c->trust_file == NULL && (text = ds_text(ds, TS_DS_TRUST_ROOTS)) != NULL) {
        /* The EST client reads its roots from a file. */
        if ((size_t)snprintf(c->trust_path, sizeof c->trust_path, "%s/%s", state_dir,
                             CONN_TRUST_FILE) >= sizeof c->trust_path) {
            rv = ts_error_set(TS_ERR_INVALID, "state directory path too long");
        } else {
            rv = ts_file_write_atomic(c->trust_path, (const uint8_t *)text, strlen(text), 0600);
        }
        if (rv == TS_OK) {
            c->trust_file = c->trust_path;
            c->trust_from_datastore = 1;
        } else {
            c->trust_path[0] = '\0';
            rv = ts_error_prefix(rv, "writing the datastore's trust roots");
        }
    }
    ts_datastore_free(ds);
    if (rv != TS_OK) {
        agent_conn_clear(c);
    }
    return rv;
}

void agent_conn_clear(agent_conn *c)
{
    if (c->trust_path[0] != '\0') {
        (void)unlink(c->trust_path);
    }
    OPENSSL_free(c->server);
    memset(c, 0, sizeof *c);
}
