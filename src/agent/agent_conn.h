/*
 * Where EST goes when the command line does not say: the service URL and the trust roots from
 * the options, else from the datastore (server.url, trust.roots), as a session takes them; and
 * the re-enrollment threshold the datastore sets (reenroll.threshold_days).
 */
#ifndef TS_AGENT_AGENT_CONN_H
#define TS_AGENT_AGENT_CONN_H

#include <limits.h>

#include "tessera/agent.h"

typedef struct agent_conn {
    char *server;              /* NULL when neither the option nor the datastore has one */
    const char *trust_file;    /* the option, or trust_path; NULL when there is neither */
    char trust_path[PATH_MAX]; /* the datastore's roots written for the EST client */
    int server_from_datastore; /* the URL came from the datastore */
    int trust_from_datastore;  /* the roots came from the datastore */
    unsigned threshold_days;   /* the datastore's reenroll.threshold_days; 0 when unset */
} agent_conn;

/*
 * Fills c from server and trust_file when given, else from the datastore in state_dir (its
 * roots are written to a file of the state directory, mode 0600, removed by agent_conn_clear()).
 * A value neither gives stays NULL: the caller says which it needs. Fails only when the
 * datastore cannot be read or the roots cannot be written.
 */
TS_MUST_CHECK ts_err agent_conn_resolve(ts_agent *agent, const char *state_dir, const char *server,
                                        const char *trust_file, agent_conn *c);
void agent_conn_clear(agent_conn *c);

#endif
