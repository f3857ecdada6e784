/* Profiles as canonical JSON (docs/profiles.md): every field, in a fixed order. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "common/error_internal.h"
#include "pki/pki_internal.h"

static json_t *bits_array(const ts_pki_name *table, unsigned bits)
{
    json_t *arr = json_array();

    for (size_t i = 0; arr != NULL && table[i].name != NULL; i++) {
        if ((bits & (unsigned)table[i].value) != 0 &&
            json_array_append_new(arr, json_string(table[i].name)) != 0) {
            json_decref(arr);
            return NULL;
        }
    }
    return arr;
}

static json_t *values_array(const ts_pki_name *table, const int *vals, size_t count)
{
    json_t *arr = json_array();

    for (size_t i = 0; arr != NULL && i < count; i++) {
        if (json_array_append_new(arr, json_string(ts_pki_name_of(table, vals[i]))) != 0) {
            json_decref(arr);
            return NULL;
        }
    }
    return arr;
}

static json_t *subject_json(const ts_profile *p)
{
    json_t *arr = json_array();

    for (size_t i = 0; arr != NULL && i < p->subject_count; i++) {
        json_t *e = json_object();
        int bad =
            e == NULL ||
            json_object_set_new(
                e, "type", json_string(ts_pki_name_of(ts_pki_attr_table, p->subject[i].nid))) !=
                0 ||
            json_object_set_new(e, "value", json_string(p->subject[i].value)) != 0 ||
            (p->subject[i].optional && json_object_set_new(e, "optional", json_true()) != 0) ||
            json_array_append_new(arr, e) != 0;
        if (bad) {
            json_decref(arr);
            return NULL;
        }
    }
    return arr;
}

static json_t *san_json(const ts_profile *p)
{
    json_t *o = json_object();
    json_t *suffixes = json_array();
    int bad = o == NULL || suffixes == NULL ||
              json_object_set_new(
                  o, "policy",
                  json_string(ts_pki_name_of(ts_pki_san_policy_table, (int)p->san_policy))) != 0;

    if (!bad && p->san_policy != TS_SAN_FORBIDDEN) {
        for (size_t i = 0; !bad && i < p->dns_suffix_count; i++) {
            bad = json_array_append_new(suffixes, json_string(p->dns_suffixes[i])) != 0;
        }
        bad =
            bad ||
            json_object_set_new(o, "types", bits_array(ts_pki_san_type_table, p->san_types)) != 0 ||
            json_object_set(o, "dns_suffixes", suffixes) != 0 ||
            json_object_set_new(o, "wildcards", json_boolean(p->san_wildcards)) != 0;
    }
    json_decref(suffixes);
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static json_t *validity_json(const ts_profile *p)
{
    json_t *o = json_object();
    char date[32];
    struct tm tm;

    if (o == NULL) {
        return NULL;
    }
    if (p->validity_days > 0) {
        if (json_object_set_new(o, "days", json_integer(p->validity_days)) != 0) {
            json_decref(o);
            return NULL;
        }
        return o;
    }
    if (gmtime_r(&p->not_after, &tm) == NULL) {
        json_decref(o);
        return NULL;
    }
    if (tm.tm_hour == 23 && tm.tm_min == 59 && tm.tm_sec == 59) {
        strftime(date, sizeof date, "%Y-%m-%d", &tm);
    } else {
        strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", &tm);
    }
    if (json_object_set_new(o, "not_after", json_string(date)) != 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* "est" is written only when one of its flags is set, so that profiles without EST settings
 * keep the canonical form they always had. */
static int est_json(json_t *root, const ts_profile *p)
{
    json_t *o;

    if (!p->est_server_keygen && !p->est_pop) {
        return 0;
    }
    o = json_object();
    if (o == NULL || json_object_set_new(o, "server_keygen", json_boolean(p->est_server_keygen)) ||
        json_object_set_new(o, "proof_of_possession", json_boolean(p->est_pop))) {
        json_decref(o);
        return -1;
    }
    return json_object_set_new(root, "est", o);
}

ts_err ts_profile_to_json(const ts_profile *p, char **json)
{
    json_t *root = NULL;
    char *text = NULL;
    ts_err rv = TS_ERR_NOMEM;
    const char *digest = NULL;

    if (p == NULL || json == NULL) {
        return ts_error_set(TS_ERR_INVALID, "no profile given");
    }
    *json = NULL;
    for (size_t i = 0; ts_pki_digest_table[i].name != NULL; i++) {
        if (strcmp(ts_pki_digest_names[ts_pki_digest_table[i].value], p->digest) == 0) {
            digest = ts_pki_digest_table[i].name;
        }
    }
    root = json_object();
    /* Insertion order is the canonical order; jansson keeps it. */
    if (root == NULL || digest == NULL || json_object_set_new(root, "name", json_string(p->name)) ||
        json_object_set_new(root, "description",
                            json_string(p->description != NULL ? p->description : "")) ||
        json_object_set_new(root, "kind",
                            json_string(ts_pki_name_of(ts_pki_kind_table, (int)p->kind))) ||
        json_object_set_new(root, "key_types", bits_array(ts_pki_keytype_table, p->key_types)) ||
        json_object_set_new(root, "signature_digest", json_string(digest)) ||
        json_object_set_new(root, "key_usage", bits_array(ts_pki_ku_table, p->key_usage)) ||
        json_object_set_new(root, "extended_key_usage",
                            values_array(ts_pki_eku_table, p->eku, p->eku_count)) ||
        json_object_set_new(root, "subject", subject_json(p)) ||
        json_object_set_new(
            root, "csr_subject",
            values_array(ts_pki_attr_table, p->csr_subject, p->csr_subject_count)) ||
        json_object_set_new(root, "san", san_json(p)) ||
        json_object_set_new(root, "csr_extensions",
                            bits_array(ts_pki_csrext_table, p->csr_extensions)) ||
        json_object_set_new(root, "validity", validity_json(p)) || est_json(root, p) != 0) {
        ts_error_set(TS_ERR_NOMEM, "cannot write profile '%s' as JSON", p->name);
        goto cleanup;
    }
    text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (text == NULL) {
        ts_error_set(TS_ERR_NOMEM, "cannot write profile '%s' as JSON", p->name);
        goto cleanup;
    }
    *json = OPENSSL_strdup(text);
    if (*json == NULL) {
        ts_error_set(TS_ERR_NOMEM, "out of memory for profile JSON");
        goto cleanup;
    }
    rv = TS_OK;
cleanup:
    free(text);
    json_decref(root);
    return rv;
}
