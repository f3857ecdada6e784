/* The instance's audit log: read it page by page, and verify its hash chain. */
#include "common/error_internal.h"
#include "service/svc_api_internal.h"

/* The log spans every tenant, so only instance-wide admins and auditors read it. */
static int instance_reader(svc_request *r)
{
    if (!svc_api_instance_wide(r)) {
        svc_reply_error(r, 403, "forbidden",
                        "the audit log is read by instance-wide admins and auditors only");
        return 0;
    }
    return 1;
}

void svc_api_audit_list(svc_request *r)
{
    ts_audit_row *rows = NULL;
    size_t count = 0, limit = 0;
    int64_t after = 0;

    if (!instance_reader(r) || !svc_api_no_body(r)) {
        return;
    }
    ts_err rv = svc_page_params(r, &limit, &after);
    /* ?after=ID starts after an entry id the caller already has; ?cursor continues a page. */
    const char *after_text = svc_query(r, "after");
    if (rv == TS_OK && after_text != NULL) {
        if (svc_query(r, "cursor") != NULL) {
            rv = ts_error_set(TS_ERR_INVALID, "give ?after or ?cursor, not both");
        } else {
            rv = svc_api_query_int(after_text, "query parameter 'after'", 0, INT64_MAX, &after);
        }
    }
    if (rv == TS_OK) {
        rv = ts_store_audit_list(ts_ca_store(r->ca), after, limit + 1, &rows, &count);
    }
    if (rv != TS_OK) {
        svc_reply_err(r, rv);
        return;
    }
    int64_t next = count > limit ? rows[limit - 1].id : 0;
    json_t *items = json_array();
    for (size_t i = 0; items != NULL && i < count && i < limit; i++) {
        if (json_array_append_new(items, svc_api_audit_json(&rows[i])) != 0) {
            json_decref(items);
            items = NULL;
        }
    }
    ts_audit_rows_free(rows, count);
    svc_api_reply_list(r, items, next);
}

void svc_api_audit_verify(svc_request *r)
{
    int64_t entries = 0, first_bad = 0;

    if (!instance_reader(r) || !svc_api_no_body(r)) {
        return;
    }
    ts_err rv = ts_store_audit_verify(ts_ca_store(r->ca), &entries, &first_bad);
    if (rv != TS_OK && rv != TS_ERR_CORRUPT) {
        svc_reply_err(r, rv);
        return;
    }
    /* A broken chain is the answer to the question, not a failure of the request. */
    json_t *doc = json_pack("{s:b, s:I}", "ok", rv == TS_OK, "entries", (json_int_t)entries);
    if (doc != NULL && rv == TS_ERR_CORRUPT &&
        (json_object_set_new(doc, "first_bad", json_integer(first_bad)) != 0 ||
         json_object_set_new(doc, "message", json_string(ts_error_message())) != 0)) {
        json_decref(doc);
        doc = NULL;
    }
    svc_api_reply_doc(r, 200, doc);
}
