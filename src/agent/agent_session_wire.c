/*
 * The session's messages on the wire (proto/agent_session.proto, docs/protocol.md): a decoded
 * Request becomes a sess_request, and the results and the status report become one packed
 * AgentMessage. Decoding checks what the handlers rely on; everything else is checked by them.
 */
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

#include "agent/agent_session_wire.h"
#include "common/error_internal.h"

/* Short stable names for error_code (docs/protocol.md). */
const char *sess_wire_code(ts_err code)
{
    static const char *const names[] = {
        [TS_OK] = "ok",
        [TS_ERR_INVALID] = "invalid",
        [TS_ERR_URI] = "uri",
        [TS_ERR_PIN] = "pin",
        [TS_ERR_PIN_LOCKED] = "pin_locked",
        [TS_ERR_MODULE] = "module",
        [TS_ERR_NO_TOKEN] = "no_token",
        [TS_ERR_NOT_FOUND] = "not_found",
        [TS_ERR_EXISTS] = "exists",
        [TS_ERR_FULL] = "full",
        [TS_ERR_IO] = "io",
        [TS_ERR_CORRUPT] = "corrupt",
        [TS_ERR_CRYPTO] = "crypto",
        [TS_ERR_AUTH] = "auth",
        [TS_ERR_REPLAY] = "replay",
        [TS_ERR_FOREIGN] = "foreign",
        [TS_ERR_ROLLBACK] = "rollback",
        [TS_ERR_UNSUPPORTED] = "unsupported",
        [TS_ERR_NOMEM] = "nomem",
        [TS_ERR_BACKEND] = "backend",
        [TS_ERR_WRONG_TYPE] = "wrong_type",
        [TS_ERR_STATE] = "state",
        [TS_ERR_POLICY] = "policy",
        [TS_ERR_STORE] = "store",
        [TS_ERR_CONFLICT] = "conflict",
        [TS_ERR_DENIED] = "denied",
        [TS_ERR_LIMIT] = "limit",
    };
    if ((size_t)code >= sizeof names / sizeof names[0] || names[code] == NULL) {
        return "error";
    }
    return names[code];
}

typedef struct op_row {
    Tessera__Agent__V1__Operation wire;
    Tessera__Agent__V1__Endpoint endpoint;
    sess_op op;
} op_row;

static const op_row ops[] = {
    {TESSERA__AGENT__V1__OPERATION__IMPORT, TESSERA__AGENT__V1__ENDPOINT__KEYSTORE, SESS_KS_IMPORT},
    {TESSERA__AGENT__V1__OPERATION__PUT_OBJECT, TESSERA__AGENT__V1__ENDPOINT__KEYSTORE,
     SESS_KS_PUT_OBJECT},
    {TESSERA__AGENT__V1__OPERATION__DELETE_OBJECT, TESSERA__AGENT__V1__ENDPOINT__KEYSTORE,
     SESS_KS_DELETE_OBJECT},
    {TESSERA__AGENT__V1__OPERATION__GENKEY_CSR, TESSERA__AGENT__V1__ENDPOINT__KEYSTORE,
     SESS_KS_GENKEY_CSR},
    {TESSERA__AGENT__V1__OPERATION__READ_PUBLIC, TESSERA__AGENT__V1__ENDPOINT__KEYSTORE,
     SESS_KS_READ_PUBLIC},
    {TESSERA__AGENT__V1__OPERATION__DS_READ, TESSERA__AGENT__V1__ENDPOINT__DATASTORE, SESS_DS_READ},
    {TESSERA__AGENT__V1__OPERATION__DS_BEGIN, TESSERA__AGENT__V1__ENDPOINT__DATASTORE,
     SESS_DS_BEGIN},
    {TESSERA__AGENT__V1__OPERATION__DS_PUT, TESSERA__AGENT__V1__ENDPOINT__DATASTORE, SESS_DS_PUT},
    {TESSERA__AGENT__V1__OPERATION__DS_COMMIT, TESSERA__AGENT__V1__ENDPOINT__DATASTORE,
     SESS_DS_COMMIT},
    {TESSERA__AGENT__V1__OPERATION__REENROLL, TESSERA__AGENT__V1__ENDPOINT__AGENT,
     SESS_AGENT_REENROLL},
    {TESSERA__AGENT__V1__OPERATION__REPORT, TESSERA__AGENT__V1__ENDPOINT__AGENT, SESS_AGENT_REPORT},
    {TESSERA__AGENT__V1__OPERATION__FW_UPDATE, TESSERA__AGENT__V1__ENDPOINT__AGENT,
     SESS_AGENT_FW_UPDATE},
};

ts_err sess_wire_request(const Tessera__Agent__V1__Request *r, sess_request *out,
                         sess_entry **entries)
{
    const op_row *row = NULL;

    memset(out, 0, sizeof *out);
    *entries = NULL;
    out->id = r->id;
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
        if (ops[i].wire == r->operation) {
            row = &ops[i];
        }
    }
    if (row == NULL || row->endpoint != r->endpoint) {
        return ts_error_set(TS_ERR_UNSUPPORTED,
                            "operation %d on endpoint %d is not one this "
                            "agent carries out",
                            (int)r->operation, (int)r->endpoint);
    }
    out->op = row->op;
    out->label = r->label != NULL && r->label[0] != '\0' ? r->label : NULL;
    out->data = r->data.data;
    out->len = r->data.len;
    out->names = (const char *const *)r->names;
    out->name_count = r->n_names;
    out->force = 1; /* a re-enrollment the service asks for is done now */
    out->rekey = r->rekey;
    if (r->n_names > TS_DATASTORE_ENTRIES_MAX) {
        return ts_error_set(TS_ERR_LIMIT, "a request names %zu datastore entries, over %d",
                            r->n_names, TS_DATASTORE_ENTRIES_MAX);
    }
    if (r->n_entries > TS_DATASTORE_ENTRIES_MAX) {
        return ts_error_set(TS_ERR_LIMIT, "a request carries %zu datastore entries, over %d",
                            r->n_entries, TS_DATASTORE_ENTRIES_MAX);
    }
    if (r->n_entries > 0) {
        *entries = OPENSSL_zalloc(r->n_entries * sizeof **entries);
        if (*entries == NULL) {
            return ts_error_set(TS_ERR_NOMEM, "out of memory");
        }
        for (size_t i = 0; i < r->n_entries; i++) {
            const Tessera__Agent__V1__DatastoreEntry *e = r->entries[i];
            sess_entry *d = &(*entries)[i];
            switch (e->type) {
            case TESSERA__AGENT__V1__VALUE_TYPE__BYTES:
                d->type = TS_DATASTORE_BYTES;
                break;
            case TESSERA__AGENT__V1__VALUE_TYPE__TEXT:
                d->type = TS_DATASTORE_TEXT;
                break;
            case TESSERA__AGENT__V1__VALUE_TYPE__UINT:
                d->type = TS_DATASTORE_UINT;
                break;
            default:
                return ts_error_set(TS_ERR_INVALID, "datastore entry '%.64s' has unknown type %d",
                                    e->name, (int)e->type);
            }
            d->name = e->name;
            d->value = e->value.data != NULL ? e->value.data : (const uint8_t *)"";
            d->len = e->value.len;
            d->deleted = e->deleted;
        }
        out->entries = *entries;
        out->entry_count = r->n_entries;
    }
    return TS_OK;
}

static Tessera__Agent__V1__ValueType wire_type(ts_datastore_type t)
{
    return t == TS_DATASTORE_TEXT   ? TESSERA__AGENT__V1__VALUE_TYPE__TEXT
           : t == TS_DATASTORE_UINT ? TESSERA__AGENT__V1__VALUE_TYPE__UINT
                                    : TESSERA__AGENT__V1__VALUE_TYPE__BYTES;
}

static const char *kind_name(const ts_keystore_entry *e)
{
    switch (e->kind) {
    case TS_KIND_KEY:
        return "key";
    case TS_KIND_COUNTER:
        return "counter";
    default:
        /* The identity certificates are the data objects the service cares to tell apart. */
        return strncmp(e->label, "identity.cert.", 14) == 0 ? "cert" : "data";
    }
}

/* Everything one AgentMessage points at, freed together after packing. */
typedef struct wire_out {
    Tessera__Agent__V1__AgentMessage msg;
    Tessera__Agent__V1__StatusReport status;
    Tessera__Agent__V1__KeystoreObject *objects;
    Tessera__Agent__V1__KeystoreObject **object_ptrs;
    char *features[8];
    char *errors[SESS_ERRORS_MAX];
    Tessera__Agent__V1__Result *results;
    Tessera__Agent__V1__Result **result_ptrs;
    Tessera__Agent__V1__DatastoreEntry *entries;
    Tessera__Agent__V1__DatastoreEntry **entry_ptrs;
} wire_out;

static void wire_out_free(wire_out *w)
{
    OPENSSL_free(w->objects);
    OPENSSL_free(w->object_ptrs);
    OPENSSL_free(w->results);
    OPENSSL_free(w->result_ptrs);
    OPENSSL_free(w->entries);
    OPENSSL_free(w->entry_ptrs);
}

static ts_err put_report(wire_out *w, const sess_report *r)
{
    Tessera__Agent__V1__StatusReport *s = &w->status;
    size_t nf = 0;

    tessera__agent__v1__status_report__init(s);
    s->uid = (char *)r->uid;
    s->agent_version = (char *)r->agent_version;
    s->firmware_version = (char *)r->firmware;
    s->hardware_id = (char *)r->hardware;
    if (r->object_count > 0) {
        w->objects = OPENSSL_zalloc(r->object_count * sizeof *w->objects);
        w->object_ptrs = OPENSSL_zalloc(r->object_count * sizeof *w->object_ptrs);
        if (w->objects == NULL || w->object_ptrs == NULL) {
            return ts_error_set(TS_ERR_NOMEM, "out of memory");
        }
    }
    for (size_t i = 0; i < r->object_count; i++) {
        Tessera__Agent__V1__KeystoreObject *o = &w->objects[i];
        tessera__agent__v1__keystore_object__init(o);
        o->label = (char *)r->objects[i].label;
        o->kind = (char *)kind_name(&r->objects[i]);
        if (r->objects[i].kind == TS_KIND_KEY) {
            o->algorithm = (char *)ts_curve_name(r->objects[i].curve);
        }
        w->object_ptrs[i] = o;
    }
    s->n_keystore_objects = r->object_count;
    s->keystore_objects = w->object_ptrs;
    w->features[nf++] = (char *)r->backend;
    if (r->features & SESS_FEATURE_IMPORT) {
        w->features[nf++] = "import";
    }
    if (r->features & SESS_FEATURE_P384) {
        w->features[nf++] = "p384";
    }
    if (r->features & SESS_FEATURE_COUNTERS) {
        w->features[nf++] = "counter";
    }
    if (r->features & SESS_FEATURE_DATASTORE) {
        w->features[nf++] = "datastore";
    }
    if (r->features & SESS_FEATURE_STAGED_URL) {
        w->features[nf++] = "staged-connection";
    }
    s->n_keystore_features = nf;
    s->keystore_features = w->features;
    s->datastore_generation = r->ds_generation;
    s->datastore_format_version = r->ds_version;
    s->cert_not_after = r->enrolled ? (int64_t)r->cert_not_after : 0;
    for (size_t i = 0; i < r->error_count; i++) {
        w->errors[i] = (char *)r->errors[i];
    }
    s->n_last_errors = r->error_count;
    s->last_errors = w->errors;
    w->msg.status = s;
    return TS_OK;
}

static ts_err put_results(wire_out *w, const sess_result *res, size_t n)
{
    size_t ne = 0, k = 0;

    if (n == 0) {
        return TS_OK;
    }
    for (size_t i = 0; i < n; i++) {
        ne += res[i].entry_count;
    }
    w->results = OPENSSL_zalloc(n * sizeof *w->results);
    w->result_ptrs = OPENSSL_zalloc(n * sizeof *w->result_ptrs);
    if (ne > 0) {
        w->entries = OPENSSL_zalloc(ne * sizeof *w->entries);
        w->entry_ptrs = OPENSSL_zalloc(ne * sizeof *w->entry_ptrs);
    }
    if (w->results == NULL || w->result_ptrs == NULL ||
        (ne > 0 && (w->entries == NULL || w->entry_ptrs == NULL))) {
        return ts_error_set(TS_ERR_NOMEM, "out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        Tessera__Agent__V1__Result *p = &w->results[i];
        tessera__agent__v1__result__init(p);
        p->request_id = res[i].id;
        p->ok = res[i].code == TS_OK && !res[i].aborted;
        if (!p->ok) {
            p->error_code = res[i].aborted ? "aborted" : (char *)sess_wire_code(res[i].code);
            p->error_message = (char *)res[i].message;
        }
        p->payload.data = res[i].data;
        p->payload.len = res[i].len;
        p->generation = res[i].generation;
        p->entries = w->entry_ptrs + k;
        p->n_entries = res[i].entry_count;
        for (size_t j = 0; j < res[i].entry_count; j++, k++) {
            Tessera__Agent__V1__DatastoreEntry *e = &w->entries[k];
            tessera__agent__v1__datastore_entry__init(e);
            e->name = (char *)res[i].entries[j].name;
            e->type = wire_type(res[i].entries[j].type);
            e->value.data = (uint8_t *)res[i].entries[j].value;
            e->value.len = res[i].entries[j].len;
            w->entry_ptrs[k] = e;
        }
        w->result_ptrs[i] = p;
    }
    w->msg.results = w->result_ptrs;
    w->msg.n_results = n;
    return TS_OK;
}

ts_err sess_wire_agent_message(const char *session_id, const sess_report *report,
                               const sess_result *results, size_t result_count, uint8_t **out,
                               size_t *out_len)
{
    wire_out w;
    ts_err rv = TS_OK;
    size_t n;

    *out = NULL;
    *out_len = 0;
    memset(&w, 0, sizeof w);
    tessera__agent__v1__agent_message__init(&w.msg);
    w.msg.version = SESS_PROTOCOL_VERSION;
    w.msg.session_id = (char *)(session_id != NULL ? session_id : "");
    if (report != NULL) {
        rv = put_report(&w, report);
    }
    if (rv == TS_OK) {
        rv = put_results(&w, results, result_count);
    }
    if (rv == TS_OK) {
        n = tessera__agent__v1__agent_message__get_packed_size(&w.msg);
        if (n > TS_AGENT_SYNC_BODY_MAX) {
            rv = ts_error_set(TS_ERR_LIMIT, "the message to the service is %zu bytes, over %d", n,
                              TS_AGENT_SYNC_BODY_MAX);
        } else if ((*out = OPENSSL_malloc(n > 0 ? n : 1)) == NULL) {
            rv = ts_error_set(TS_ERR_NOMEM, "out of memory");
        } else {
            *out_len = tessera__agent__v1__agent_message__pack(&w.msg, *out);
        }
    }
    wire_out_free(&w);
    return rv;
}

ts_err sess_wire_service_message(const uint8_t *data, size_t len,
                                 Tessera__Agent__V1__ServiceMessage **out)
{
    Tessera__Agent__V1__ServiceMessage *m;

    *out = NULL;
    if (len > TS_AGENT_SYNC_BODY_MAX) {
        return ts_error_set(TS_ERR_LIMIT, "the service's message is over %d bytes",
                            TS_AGENT_SYNC_BODY_MAX);
    }
    m = tessera__agent__v1__service_message__unpack(NULL, len, data);
    if (m == NULL) {
        return ts_error_set(TS_ERR_CORRUPT, "the service's reply is not a ServiceMessage");
    }
    if (m->version != SESS_PROTOCOL_VERSION) {
        unsigned v = m->version;
        tessera__agent__v1__service_message__free_unpacked(m, NULL);
        return ts_error_set(TS_ERR_UNSUPPORTED,
                            "the service speaks protocol version %u, this "
                            "agent %d",
                            v, SESS_PROTOCOL_VERSION);
    }
    if (m->n_requests > SESS_REQUESTS_MAX) {
        size_t n = m->n_requests;
        tessera__agent__v1__service_message__free_unpacked(m, NULL);
        return ts_error_set(TS_ERR_LIMIT, "the service sent %zu requests in one message, over %d",
                            n, SESS_REQUESTS_MAX);
    }
    if (m->session_id == NULL || strlen(m->session_id) > SESS_ID_MAX) {
        tessera__agent__v1__service_message__free_unpacked(m, NULL);
        return ts_error_set(TS_ERR_INVALID, "the service's session id is over %d characters",
                            SESS_ID_MAX);
    }
    *out = m;
    return TS_OK;
}

void sess_wire_service_message_free(Tessera__Agent__V1__ServiceMessage *m)
{
    if (m != NULL) {
        tessera__agent__v1__service_message__free_unpacked(m, NULL);
    }
}
