/* Shared by audit.c (appending, listing) and audit_verify.c (walking the chain). */
#ifndef TS_STORE_AUDIT_INTERNAL_H
#define TS_STORE_AUDIT_INTERNAL_H

#include <stdint.h>

#include "store/store_internal.h"

/*
 * The entry hash of docs/audit.md: SHA-256 over length-prefixed fields (label, previous hash,
 * id, time, actor, action, object, details), as 64 lower-case hex digits in out.
 */
ts_err ts_audit_hash(const char prev_hex[65], int64_t id, int64_t when, const char *actor,
                     const char *action, const char *object, const char *details, char out[65]);

/* 64 hex digits into 32 bytes; TS_ERR_CORRUPT otherwise. */
ts_err ts_audit_hex_decode(const char *hex, uint8_t out[32]);

/* The chain head: the last id handed out and its hash; *found 0 when the row is missing. */
ts_err ts_audit_read_head(ts_store *s, int64_t *last_id, char last_hash[65], int *found);

#endif
