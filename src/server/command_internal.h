/* Shared by the server's command files (command_key.c, command_ops.c, tls_cert.c). */
#ifndef TS_SERVER_COMMAND_INTERNAL_H
#define TS_SERVER_COMMAND_INTERNAL_H

#include "server/server_internal.h"
#include "tessera/commands.h"
#include "tessera/store_access.h"

/* "command-<tenant>". */
void srv_command_key_label(const char *tenant, char out[TS_COMMAND_KEY_LABEL_MAX + 1]);

/* The tenant's command key (when key is not NULL) and certificate, made on first use. */
ts_err srv_command_key_load(ts_ca *ca, const ts_tenant_row *t, EVP_PKEY **key, X509 **cert);

/* An issuing context for a built-in profile (not the tenant's stored one). */
ts_err srv_builtin_ctx_load(ts_ca *ca, const char *tenant, const char *profile, srv_issue_ctx *c);

/* O=org, CN=cn. */
ts_err srv_subject_make(const char *org, const char *cn, X509_NAME **out);

#endif
