/* Shared by the access-control store files (store_access.c, store_claim.c, store_device.c,
 * store_feed.c, store_lookup.c). */
#ifndef TS_STORE_ACCESS_INTERNAL_H
#define TS_STORE_ACCESS_INTERNAL_H

#include "store/store_internal.h"
#include "tessera/store_access.h"

/* TS_ERR_INVALID unless text is 1..size-1 bytes without control characters (spaces are fine:
 * the name a person gives a token). */
ts_err ts_store_label_check(const char *text, size_t size, const char *what);

/* Row callback for "... RETURNING id": stores it in *(int64_t *)ctx. */
ts_err ts_store_new_id(void *ctx, const ts_sql_row *row);

/* A time column that may be NULL (0 then). */
ts_err ts_store_opt_time(const ts_sql_row *row, size_t col, const char *what, time_t *out);

#endif
