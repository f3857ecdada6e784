/* Inside tessera init (init.c, init_store.c): checking the parameters and recording the ceremony.
 */
#ifndef TS_SERVER_INIT_INTERNAL_H
#define TS_SERVER_INIT_INTERNAL_H

#include "server/server_internal.h"

/* What the ceremony made, for the store and the transcript. */
typedef struct srv_init_record {
    const char *root_label;
    const char *issuing_label;
    X509 *root_cert;
    X509 *issuing_cert;
    const uint8_t *wrapped;
    size_t wrapped_len;
    unsigned m, n;
} srv_init_record;

/* Checks the parameters and fills ca's actor, org, country and base URL, and M and N. */
ts_err srv_init_check(const ts_ca_init_params *p, ts_ca *ca, unsigned *m, unsigned *n);

/* Makes dir (0700) or checks an existing one is empty; its real path into out. */
ts_err srv_init_dir(const char *dir, char *out, size_t size, int *made);

/* Opens ca->db_url and records the instance in one transaction, the transcript first. */
ts_err srv_init_store(ts_ca *ca, const srv_init_record *rec);

#endif
