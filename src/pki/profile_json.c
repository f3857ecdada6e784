/* Profiles from JSON (docs/profiles.md): strict parsing, every field checked. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "common/error_internal.h"
#include "pki/pki_internal.h"

static const char *const top_fields[] = {
    "name",           "description",        "kind",    "key_types",   "signature_digest",
    "key_usage",      "extended_key_usage", "subject", "csr_subject", "san",
    "csr_extensions", "validity",           "est",     NULL,
};
static const char *const subject_fields[] = {"type", "value", "optional", NULL};
static const char *const san_fields[] = {"policy", "types", "dns_suffixes", "wildcards", NULL};
static const char *const validity_fields[] = {"days", "not_after", NULL};
static const char *const est_fields[] = {"server_keygen", "proof_of_possession", NULL};

static ts_err field_err(const char *field, const char *fmt, ...) TS_PRINTF(2, 3);

static ts_err field_err(const char *field, const char *fmt, ...)
{
    char what[256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return ts_error_set(TS_ERR_INVALID, "profile field '%s': %s", field, what);
}

/* Every key of obj must be one of fields. */
static ts_err only_fields(json_t *obj, const char *where, const char *const *fields)
{
    const char *key;
    json_t *value;

    json_object_foreach(obj, key, value)
    {
        size_t i = 0;
        while (fields[i] != NULL && strcmp(fields[i], key) != 0) {
            i++;
        }
        if (fields[i] == NULL) {
            char path[96];
            snprintf(path, sizeof path, "%s%s%.40s", where, *where ? "." : "", key);
            return field_err(path, "unknown field");
        }
    }
    return TS_OK;
}

static ts_err get_string(json_t *v, const char *field, size_t max, int allow_empty,
                         const char **out)
{
    const char *s;
    size_t len;

    if (!json_is_string(v)) {
        return field_err(field, "must be a string");
    }
    s = json_string_value(v);
    len = json_string_length(v);
    if (len == 0 && !allow_empty) {
        return field_err(field, "must not be empty");
    }
    if (len > max) {
        return field_err(field, "longer than %zu characters", max);
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f) {
            return field_err(field, "holds a control character");
        }
    }
    *out = s;
    return TS_OK;
}

/* A list of names from table: the values in vals (when not NULL) and OR'ed into *bits (when not
 * NULL). Duplicates are refused. */
static ts_err get_names(json_t *arr, const char *field, const ts_pki_name *table, int *vals,
                        size_t *count, unsigned *bits)
{
    size_t i;
    json_t *v;

    if (!json_is_array(arr)) {
        return field_err(field, "must be an array of strings");
    }
    if (json_array_size(arr) > TS_PROFILE_LIST_MAX) {
        return field_err(field, "more than %d entries", TS_PROFILE_LIST_MAX);
    }
    json_array_foreach(arr, i, v)
    {
        char path[64];
        const char *name;
        int value;
        snprintf(path, sizeof path, "%s[%zu]", field, i);
        ts_err rv = get_string(v, path, 64, 0, &name);
        if (rv != TS_OK) {
            return rv;
        }
        value = ts_pki_name_value(table, name);
        if (value < 0) {
            return field_err(path, "unknown value '%s'", name);
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(json_string_value(json_array_get(arr, j)), name) == 0) {
                return field_err(path, "'%s' is listed twice", name);
            }
        }
        if (vals != NULL) {
            vals[i] = value;
        }
        if (bits != NULL) {
            *bits |= (unsigned)value;
        }
    }
    if (count != NULL) {
        *count = json_array_size(arr);
    }
    return TS_OK;
}

/* A template value: literal text with known <variables>, or exactly <csr>. */
static ts_err template_check(const char *field, const char *value)
{
    static const char *const vars[] = {TS_VAR_ORG, TS_VAR_COUNTRY, TS_VAR_UID, TS_VAR_CODE, NULL};
    const char *p = value;

    if (strcmp(value, TS_VAR_CSR) == 0) {
        return TS_OK;
    }
    while ((p = strchr(p, '<')) != NULL) {
        size_t i = 0;
        while (vars[i] != NULL && strncmp(p, vars[i], strlen(vars[i])) != 0) {
            i++;
        }
        if (vars[i] == NULL) {
            return field_err(field,
                             "unknown variable at '%.20s' (known: <org>, <country>, "
                             "<device UID>, <code>, or <csr> alone)",
                             p);
        }
        p += strlen(vars[i]);
    }
    return TS_OK;
}

static ts_err get_subject(json_t *arr, ts_profile *p)
{
    size_t i;
    json_t *entry;

    if (!json_is_array(arr)) {
        return field_err("subject", "must be an array of {type, value} objects");
    }
    if (json_array_size(arr) > TS_PROFILE_LIST_MAX) {
        return field_err("subject", "more than %d entries", TS_PROFILE_LIST_MAX);
    }
    json_array_foreach(arr, i, entry)
    {
        char path[64], sub[80];
        const char *type, *value;
        json_t *opt;
        ts_err rv;

        snprintf(path, sizeof path, "subject[%zu]", i);
        if (!json_is_object(entry)) {
            return field_err(path, "must be an object with type and value");
        }
        rv = only_fields(entry, path, subject_fields);
        snprintf(sub, sizeof sub, "%s.type", path);
        if (rv == TS_OK) {
            rv = get_string(json_object_get(entry, "type"), sub, 32, 0, &type);
        }
        if (rv != TS_OK) {
            return rv;
        }
        p->subject[i].nid = ts_pki_name_value(ts_pki_attr_table, type);
        if (p->subject[i].nid < 0) {
            return field_err(sub, "unknown attribute '%s'", type);
        }
        snprintf(sub, sizeof sub, "%s.value", path);
        rv = get_string(json_object_get(entry, "value"), sub, TS_PROFILE_VALUE_MAX, 0, &value);
        if (rv == TS_OK) {
            rv = template_check(sub, value);
        }
        if (rv != TS_OK) {
            return rv;
        }
        p->subject[i].value = OPENSSL_strdup(value);
        if (p->subject[i].value == NULL) {
            return ts_error_set(TS_ERR_NOMEM, "out of memory for a profile");
        }
        p->subject_count = i + 1;
        opt = json_object_get(entry, "optional");
        if (opt != NULL && !json_is_boolean(opt)) {
            snprintf(sub, sizeof sub, "%s.optional", path);
            return field_err(sub, "must be true or false");
        }
        p->subject[i].optional = opt != NULL && json_is_true(opt);
    }
    return TS_OK;
}

static ts_err get_san(json_t *obj, ts_profile *p)
{
    const char *policy;
    json_t *v;
    size_t i;
    ts_err rv;

    if (!json_is_object(obj)) {
        return field_err("san", "must be an object");
    }
    rv = only_fields(obj, "san", san_fields);
    if (rv == TS_OK) {
        rv = get_string(json_object_get(obj, "policy"), "san.policy", 16, 0, &policy);
    }
    if (rv != TS_OK) {
        return rv;
    }
    if (ts_pki_name_value(ts_pki_san_policy_table, policy) < 0) {
        return field_err("san.policy", "unknown value '%s' (forbidden, optional, required)",
                         policy);
    }
    p->san_policy = (ts_san_policy)ts_pki_name_value(ts_pki_san_policy_table, policy);
    v = json_object_get(obj, "types");
    if (v != NULL) {
        rv = get_names(v, "san.types", ts_pki_san_type_table, NULL, NULL, &p->san_types);
        if (rv != TS_OK) {
            return rv;
        }
    }
    v = json_object_get(obj, "wildcards");
    if (v != NULL && !json_is_boolean(v)) {
        return field_err("san.wildcards", "must be true or false");
    }
    p->san_wildcards = v != NULL && json_is_true(v);
    v = json_object_get(obj, "dns_suffixes");
    if (v == NULL) {
        return TS_OK;
    }
    if (!json_is_array(v) || json_array_size(v) > TS_PROFILE_LIST_MAX) {
        return field_err("san.dns_suffixes", "must be an array of at most %d DNS names",
                         TS_PROFILE_LIST_MAX);
    }
    json_t *s;
    json_array_foreach(v, i, s)
    {
        char path[64];
        const char *suffix;
        snprintf(path, sizeof path, "san.dns_suffixes[%zu]", i);
        rv = get_string(s, path, TS_PROFILE_SUFFIX_MAX, 0, &suffix);
        if (rv != TS_OK) {
            return rv;
        }
        if (!ts_pki_dns_name_ok(suffix, 0)) {
            return field_err(path, "'%s' is not a DNS name (no leading dot, no wildcard)", suffix);
        }
        p->dns_suffixes[i] = OPENSSL_strdup(suffix);
        if (p->dns_suffixes[i] == NULL) {
            return ts_error_set(TS_ERR_NOMEM, "out of memory for a profile");
        }
        p->dns_suffix_count = i + 1;
    }
    return TS_OK;
}

static int digits(const char *s, size_t n, int *out)
{
    *out = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return 0;
        }
        *out = *out * 10 + (s[i] - '0');
    }
    return 1;
}

/* "YYYY-MM-DD" (the end of that day, 23:59:59 UTC) or "YYYY-MM-DDTHH:MM:SSZ". */
static ts_err parse_date(const char *s, time_t *out)
{
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    size_t len = strlen(s);
    struct tm tm = {0};
    int y, mo, d, h = 23, mi = 59, sec = 59;

    if ((len != 10 && len != 20) || !digits(s, 4, &y) || s[4] != '-' || !digits(s + 5, 2, &mo) ||
        s[7] != '-' || !digits(s + 8, 2, &d)) {
        return field_err("validity.not_after", "'%s' is not YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ", s);
    }
    if (len == 20 &&
        (s[10] != 'T' || !digits(s + 11, 2, &h) || s[13] != ':' || !digits(s + 14, 2, &mi) ||
         s[16] != ':' || !digits(s + 17, 2, &sec) || s[19] != 'Z')) {
        return field_err("validity.not_after", "'%s' is not YYYY-MM-DDTHH:MM:SSZ", s);
    }
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] + (mo == 2 && leap) || h > 23 ||
        mi > 59 || sec > 59) {
        return field_err("validity.not_after", "'%s' is not a date between 1970 and 9999", s);
    }
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    *out = timegm(&tm);
    return TS_OK;
}

static ts_err get_validity(json_t *obj, ts_profile *p)
{
    json_t *days, *not_after;
    const char *date;
    ts_err rv;

    if (!json_is_object(obj)) {
        return field_err("validity", "must be an object with days or not_after");
    }
    rv = only_fields(obj, "validity", validity_fields);
    if (rv != TS_OK) {
        return rv;
    }
    days = json_object_get(obj, "days");
    not_after = json_object_get(obj, "not_after");
    if ((days == NULL) == (not_after == NULL)) {
        return field_err("validity", "needs exactly one of days and not_after");
    }
    if (days != NULL) {
        if (!json_is_integer(days) || json_integer_value(days) < 1 ||
            json_integer_value(days) > TS_PROFILE_DAYS_MAX) {
            return field_err("validity.days", "must be a whole number from 1 to %d",
                             TS_PROFILE_DAYS_MAX);
        }
        p->validity_days = (int)json_integer_value(days);
        return TS_OK;
    }
    rv = get_string(not_after, "validity.not_after", 20, 0, &date);
    return rv != TS_OK ? rv : parse_date(date, &p->not_after);
}

/* A boolean member of obj, false when absent. */
static ts_err get_flag(json_t *obj, const char *key, const char *field, int *out)
{
    json_t *v = json_object_get(obj, key);

    if (v != NULL && !json_is_boolean(v)) {
        return field_err(field, "must be true or false");
    }
    *out = v != NULL && json_is_true(v);
    return TS_OK;
}

/* "est": how the trust service's EST routes treat the profile (docs/est.md). */
static ts_err get_est(json_t *obj, ts_profile *p)
{
    ts_err rv;

    if (!json_is_object(obj)) {
        return field_err("est", "must be an object with server_keygen and proof_of_possession");
    }
    rv = only_fields(obj, "est", est_fields);
    if (rv == TS_OK) {
        rv = get_flag(obj, "server_keygen", "est.server_keygen", &p->est_server_keygen);
    }
    if (rv == TS_OK) {
        rv = get_flag(obj, "proof_of_possession", "est.proof_of_possession", &p->est_pop);
    }
    return rv;
}

static ts_err get_name(json_t *v, ts_profile *p)
{
    const char *name;
    ts_err rv = get_string(v, "name", TS_PROFILE_NAME_MAX, 0, &name);

    if (rv != TS_OK) {
        return rv;
    }
    for (const char *c = name; *c != '\0'; c++) {
        int ok = (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') ||
                 (c != name && (*c == '-' || *c == '_' || *c == '.'));
        if (!ok) {
            return field_err("name",
                             "'%s' is not lower-case letters, digits, '-', '_' and '.', "
                             "starting with a letter or digit",
                             name);
        }
    }
    memcpy(p->name, name, strlen(name) + 1);
    return TS_OK;
}

static ts_err parse_fields(json_t *root, ts_profile *p)
{
    static const char *const required[] = {"name",      "kind",    "key_types", "signature_digest",
                                           "key_usage", "subject", "validity",  NULL};
    const char *s;
    json_t *v;
    ts_err rv = only_fields(root, "", top_fields);

    for (size_t i = 0; rv == TS_OK && required[i] != NULL; i++) {
        if (json_object_get(root, required[i]) == NULL) {
            rv = field_err(required[i], "missing");
        }
    }
    if (rv == TS_OK) {
        rv = get_name(json_object_get(root, "name"), p);
    }
    v = json_object_get(root, "description");
    if (rv == TS_OK && v != NULL) {
        rv = get_string(v, "description", TS_PROFILE_DESC_MAX, 1, &s);
        if (rv == TS_OK) {
            p->description = OPENSSL_strdup(s);
            rv = p->description == NULL ? ts_error_set(TS_ERR_NOMEM, "out of memory") : TS_OK;
        }
    }
    if (rv == TS_OK) {
        rv = get_string(json_object_get(root, "kind"), "kind", 32, 0, &s);
    }
    if (rv == TS_OK && ts_pki_name_value(ts_pki_kind_table, s) < 0) {
        rv = field_err("kind",
                       "unknown value '%s' (device, server, firmware-signer, "
                       "verification)",
                       s);
    }
    if (rv == TS_OK) {
        p->kind = (ts_profile_kind)ts_pki_name_value(ts_pki_kind_table, s);
        rv = get_names(json_object_get(root, "key_types"), "key_types", ts_pki_keytype_table, NULL,
                       NULL, &p->key_types);
    }
    if (rv == TS_OK) {
        rv = get_string(json_object_get(root, "signature_digest"), "signature_digest", 16, 0, &s);
    }
    if (rv == TS_OK && ts_pki_name_value(ts_pki_digest_table, s) < 0) {
        rv = field_err("signature_digest", "unknown value '%s' (SHA-256, SHA-384, SHA-512)", s);
    }
    if (rv == TS_OK) {
        p->digest = ts_pki_digest_names[ts_pki_name_value(ts_pki_digest_table, s)];
        rv = get_names(json_object_get(root, "key_usage"), "key_usage", ts_pki_ku_table, NULL, NULL,
                       &p->key_usage);
    }
    v = json_object_get(root, "extended_key_usage");
    if (rv == TS_OK && v != NULL) {
        rv = get_names(v, "extended_key_usage", ts_pki_eku_table, p->eku, &p->eku_count, NULL);
    }
    if (rv == TS_OK) {
        rv = get_subject(json_object_get(root, "subject"), p);
    }
    v = json_object_get(root, "csr_subject");
    if (rv == TS_OK && v != NULL) {
        rv = get_names(v, "csr_subject", ts_pki_attr_table, p->csr_subject, &p->csr_subject_count,
                       NULL);
    }
    v = json_object_get(root, "san");
    if (rv == TS_OK && v != NULL) {
        rv = get_san(v, p);
    }
    v = json_object_get(root, "csr_extensions");
    if (rv == TS_OK && v != NULL) {
        rv = get_names(v, "csr_extensions", ts_pki_csrext_table, NULL, NULL, &p->csr_extensions);
    }
    if (rv == TS_OK) {
        rv = get_validity(json_object_get(root, "validity"), p);
    }
    v = json_object_get(root, "est");
    if (rv == TS_OK && v != NULL) {
        rv = get_est(v, p);
    }
    return rv;
}

ts_err ts_profile_from_json(const char *json, size_t len, ts_profile **out)
{
    json_error_t jerr;
    json_t *root = NULL;
    ts_profile *p = NULL;
    ts_err rv;

    if (out == NULL || (json == NULL && len != 0)) {
        return ts_error_set(TS_ERR_INVALID, "no profile JSON given");
    }
    *out = NULL;
    if (len == 0) {
        return ts_error_set(TS_ERR_INVALID, "the profile JSON is empty");
    }
    if (len > TS_PROFILE_JSON_MAX) {
        return ts_error_set(TS_ERR_INVALID, "the profile JSON is %zu bytes, more than %d", len,
                            TS_PROFILE_JSON_MAX);
    }
    root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        return ts_error_set(TS_ERR_INVALID, "the profile is not JSON: line %d column %d: %s",
                            jerr.line, jerr.column, jerr.text);
    }
    if (!json_is_object(root)) {
        rv = ts_error_set(TS_ERR_INVALID, "the profile must be a JSON object");
        goto cleanup;
    }
    p = ts_pki_profile_new();
    if (p == NULL) {
        rv = ts_error_set(TS_ERR_NOMEM, "out of memory for a profile");
        goto cleanup;
    }
    rv = parse_fields(root, p);
    if (rv == TS_OK) {
        rv = ts_pki_profile_validate(p);
    }
    if (rv == TS_OK) {
        *out = p;
        p = NULL;
    }
cleanup:
    ts_profile_free(p);
    json_decref(root);
    return rv;
}
