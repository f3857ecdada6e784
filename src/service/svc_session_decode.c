/*
 * Decoding and checking an AgentMessage (docs/protocol.md, "Limits"), and its status report as
 * JSON for the store.
 */
#include <string.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "common/error_internal.h"
#include "service/svc_session_internal.h"

/* Printable ASCII of at most max characters (protobuf-c already checked UTF-8). */
static ts_err text_check(const char *s, size_t max, const char *what)
{
    size_t n = s != NULL ? strlen(s) : 0;
    if (n > max) {
        return ts_error_set(TS_ERR_INVALID, "%s is %zu characters (at most %zu)", what, n, max);
    }
    for (size_t i = 0; i < n; i++) {
        if (s[i] < ' ' || s[i] > '~') {
            return ts_error_set(TS_ERR_INVALID, "%s holds a character that is not printable", what);
        }
    }
    return TS_OK;
}

static ts_err status_check(const Tessera__Agent__V1__StatusReport *s)
{
    ts_err rv = ts_device_uid_check(s->uid);
    if (rv != TS_OK) {
        return ts_error_prefix(rv, "the status report's uid");
    }
    rv = text_check(s->agent_version, SVC_SESSION_TEXT_MAX, "agent_version");
    if (rv == TS_OK) {
        rv = text_check(s->firmware_version, SVC_SESSION_TEXT_MAX, "firmware_version");
    }
    if (rv == TS_OK) {
        rv = text_check(s->hardware_id, SVC_SESSION_TEXT_MAX, "hardware_id");
    }
    if (rv == TS_OK && (s->n_keystore_objects > SVC_SESSION_OBJECTS_MAX ||
                        s->n_keystore_features > SVC_SESSION_FEATURES_MAX ||
                        s->n_last_errors > SVC_SESSION_ERRORS_MAX)) {
        rv = ts_error_set(
            TS_ERR_INVALID, "a status report lists at most %d objects, %d features and %d errors",
            SVC_SESSION_OBJECTS_MAX, SVC_SESSION_FEATURES_MAX, SVC_SESSION_ERRORS_MAX);
    }
    for (size_t i = 0; rv == TS_OK && i < s->n_keystore_objects; i++) {
        const Tessera__Agent__V1__KeystoreObject *o = s->keystore_objects[i];
        rv = text_check(o->label, SVC_SESSION_TEXT_MAX, "a key-store object's label");
        if (rv == TS_OK) {
            rv = text_check(o->kind, SVC_SESSION_TEXT_MAX, "a key-store object's kind");
        }
        if (rv == TS_OK) {
            rv = text_check(o->algorithm, SVC_SESSION_TEXT_MAX, "a key-store object's algorithm");
        }
    }
    for (size_t i = 0; rv == TS_OK && i < s->n_keystore_features; i++) {
        rv = text_check(s->keystore_features[i], SVC_SESSION_TEXT_MAX, "a key-store feature");
    }
    for (size_t i = 0; rv == TS_OK && i < s->n_last_errors; i++) {
        rv = text_check(s->last_errors[i], TS_JOB_MESSAGE_MAX, "a last error");
    }
    return rv;
}

static ts_err result_check(const Tessera__Agent__V1__Result *res)
{
    if (res->request_id == 0 || res->request_id > INT64_MAX) {
        return ts_error_set(TS_ERR_INVALID, "a result names no request");
    }
    ts_err rv = text_check(res->error_code, TS_JOB_CODE_MAX, "a result's error_code");
    if (rv == TS_OK) {
        rv = text_check(res->error_message, TS_JOB_MESSAGE_MAX, "a result's error_message");
    }
    if (rv == TS_OK && !res->ok && res->error_code[0] == '\0') {
        rv = ts_error_set(TS_ERR_INVALID, "the failed result for request %llu has no error_code",
                          (unsigned long long)res->request_id);
    }
    if (rv == TS_OK && res->payload.len > TS_JOB_PAYLOAD_MAX) {
        rv = ts_error_set(TS_ERR_INVALID, "a result's payload is at most %d bytes",
                          TS_JOB_PAYLOAD_MAX);
    }
    for (size_t i = 0; rv == TS_OK && i < res->n_entries; i++) {
        rv = text_check(res->entries[i]->name, SVC_SESSION_TEXT_MAX, "a datastore entry name");
        if (rv == TS_OK && res->entries[i]->value.len > TS_JOB_DATA_MAX) {
            rv = ts_error_set(TS_ERR_INVALID, "a datastore value is at most %d bytes",
                              TS_JOB_DATA_MAX);
        }
    }
    for (size_t i = 0; rv == TS_OK && i < res->n_entries; i++) {
        if (res->entries[i]->type > TESSERA__AGENT__V1__VALUE_TYPE__UINT) {
            rv = ts_error_set(TS_ERR_INVALID, "a datastore entry has an unknown type");
        }
    }
    return rv;
}

ts_err svc_session_decode(const uint8_t *body, size_t len, Tessera__Agent__V1__AgentMessage **out)
{
    *out = NULL;
    if (body == NULL || len == 0 || len > SVC_SESSION_BODY_MAX) {
        return ts_error_set(TS_ERR_INVALID, "a session message is 1 to %d bytes",
                            SVC_SESSION_BODY_MAX);
    }
    Tessera__Agent__V1__AgentMessage *m =
        tessera__agent__v1__agent_message__unpack(NULL, len, body);
    if (m == NULL) {
        return ts_error_set(TS_ERR_INVALID, "the body is not a valid AgentMessage (protobuf)");
    }
    ts_err rv = text_check(m->session_id, 2 * SVC_SESSION_ID_BYTES, "session_id");
    if (rv == TS_OK && m->status != NULL) {
        rv = status_check(m->status);
    }
    if (rv == TS_OK && m->n_results > SVC_SESSION_RESULTS_MAX) {
        rv = ts_error_set(TS_ERR_INVALID, "a message carries at most %d results",
                          SVC_SESSION_RESULTS_MAX);
    }
    for (size_t i = 0; rv == TS_OK && i < m->n_results; i++) {
        rv = result_check(m->results[i]);
    }
    if (rv != TS_OK) {
        tessera__agent__v1__agent_message__free_unpacked(m, NULL);
        return rv;
    }
    *out = m;
    return TS_OK;
}

static json_t *strings(char **items, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; a != NULL && i < n; i++) {
        if (json_array_append_new(a, json_string(items[i])) != 0) {
            json_decref(a);
            a = NULL;
        }
    }
    return a;
}

ts_err svc_session_status_json(const Tessera__Agent__V1__StatusReport *s, char **out)
{
    *out = NULL;
    json_t *objects = json_array();
    for (size_t i = 0; objects != NULL && i < s->n_keystore_objects; i++) {
        const Tessera__Agent__V1__KeystoreObject *o = s->keystore_objects[i];
        if (json_array_append_new(objects, json_pack("{s:s, s:s, s:s}", "label", o->label, "kind",
                                                     o->kind, "algorithm", o->algorithm)) != 0) {
            json_decref(objects);
            objects = NULL;
        }
    }
    json_t *doc =
        objects == NULL
            ? NULL
            : json_pack("{s:s, s:s, s:s, s:s, s:o, s:o*, s:I, s:i, s:I, s:o*}", "uid", s->uid,
                        "agent_version", s->agent_version, "firmware_version", s->firmware_version,
                        "hardware_id", s->hardware_id, "keystore_objects", objects,
                        "keystore_features", strings(s->keystore_features, s->n_keystore_features),
                        "datastore_generation", (json_int_t)s->datastore_generation,
                        "datastore_format_version", (int)s->datastore_format_version,
                        "cert_not_after", (json_int_t)s->cert_not_after, "last_errors",
                        strings(s->last_errors, s->n_last_errors));
    char *text = doc != NULL ? json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(doc);
    if (text == NULL) {
        return ts_error_set(TS_ERR_NOMEM, "out of memory writing a status report");
    }
    *out = OPENSSL_strdup(text);
    free(text);
    return *out != NULL ? TS_OK : ts_error_set(TS_ERR_NOMEM, "out of memory");
}
