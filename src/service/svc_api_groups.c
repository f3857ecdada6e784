/*
 * The device groups of a tenant (docs/api.md, "Device groups"): list, create, show with members,
 * delete, add and remove members. Jobs for a group are POST .../jobs with "group"
 * (svc_session_api.c).
 */
#include <string.h>

#include <openssl/crypto.h>

#include "common/error_internal.h"
#include "service/svc_api_internal.h"

#define A TS_ROLE_BIT(TS_ROLE_ADMIN)
#define O TS_ROLE_BIT(TS_ROLE_OPERATOR)
#define U TS_ROLE_BIT(TS_ROLE_AUDITOR)
#define T "/api/v1/tenants/{tenant}"

enum { SVC_GROUP_ADD_MAX = 256 }; /* devices added by one request */

#define ROUTE(m, p, h, r, f, s)                                                                    \
    {                                                                                              \
        .method = m, .pattern = p, .handler = h, .auth = SVC_AUTH_TOKEN, .roles = r, .flags = f,   \
        .summary = s                                                                               \
    }

static void group_list(svc_request *r);
static void group_create(svc_request *r);
static void group_get(svc_request *r);
static void group_delete(svc_request *r);
static void member_add(svc_request *r);
static void members_remove(svc_request *r);
static void member_remove(svc_request *r);

const svc_route svc_group_routes[] = {
    ROUTE("GET", T "/groups", group_list, A | O | U, 0,
          "Device groups by name, with their member counts"),
    ROUTE("POST", T "/groups", group_create, A | O, SVC_ROUTE_BODY,
          "Create a device group: {\"name\"}"),
    ROUTE("GET", T "/groups/{name}", group_get, A | O | U, 0, "A device group and its members"),
    ROUTE("DELETE", T "/groups/{name}", group_delete, A | O, 0,
          "Delete a device group (its devices stay registered)"),
    ROUTE("POST", T "/groups/{name}/members", member_add, A | O, SVC_ROUTE_BODY,
          "Add registered devices to a group: {\"devices\": [UID, ...]}"),
    ROUTE("POST", T "/groups/{name}/members/remove", members_remove, A | O, SVC_ROUTE_BODY,
          "Remove devices from a group, all or none: {\"devices\": [UID, ...]}"),
    ROUTE("DELETE", T "/groups/{name}/members/{uid}", member_remove, A | O, 0,
          "Remove a device from a group"),
    {.method = NULL},
};

static json_t *group_json(const ts_group_row *g)
{
    return json_pack("{s:s, s:I, s:o}", "name", g->name, "members", (json_int_t)g->members,
                     "created", svc_api_time_json(g->created));
}

/* The group with its members ("devices": [{uid, added}]), read again after a change. */
static void reply_group(svc_request *r, int status)
{
    ts_group_row g;
    ts_group_member *members = NULL;
    size_t n = 0;
    ts_err rv = ts_ca_group_get(r->ca, r->tenant.name, svc_param(r, "name"), &g, &members, &n);
    if (rv != TS_OK) {
        svc_reply_err(r, rv);
        return;
    }
    json_t *doc = group_json(&g);
    json_t *items = json_array();
    for (size_t i = 0; items != NULL && i < n; i++) {
        if (json_array_append_new(items, json_pack("{s:s, s:o}", "uid", members[i].uid, "added",
                                                   svc_api_time_json(members[i].added))) != 0) {
            json_decref(items);
            items = NULL;
        }
    }
    OPENSSL_free(members);
    if (doc != NULL && (items == NULL || json_object_set_new(doc, "devices", items) != 0)) {
        json_decref(doc);
        doc = NULL;
    }
    svc_api_reply_doc(r, status, doc);
}

static void group_list(svc_request *r)
{
    ts_group_row *rows = NULL;
    size_t count = 0;

    if (!svc_api_tenant_ready(r) || !svc_api_no_body(r)) {
        return;
    }
    ts_err rv = ts_ca_group_list(r->ca, r->tenant.name, &rows, &count);
    if (rv != TS_OK) {
        svc_reply_err(r, rv);
        return;
    }
    json_t *items = json_array();
    for (size_t i = 0; items != NULL && i < count; i++) {
        if (json_array_append_new(items, group_json(&rows[i])) != 0) {
            json_decref(items);
            items = NULL;
        }
    }
    OPENSSL_free(rows);
    svc_api_reply_list(r, items, 0);
}

static void group_create(svc_request *r)
{
    static const char *const allowed[] = {"name", NULL};
    ts_group_row g;
    json_t *doc = NULL;

    if (!svc_api_tenant_ready(r) || !svc_api_json_body_type(r)) {
        return;
    }
    ts_err rv = svc_body_json(r, allowed, &doc);
    const char *name = json_string_value(json_object_get(doc, "name"));
    if (rv == TS_OK && name == NULL) {
        rv = ts_error_set(TS_ERR_INVALID, "a group is {\"name\": NAME}");
    }
    if (rv == TS_OK) {
        rv = ts_ca_group_create(r->ca, r->tenant.name, name, &g);
    }
    json_decref(doc);
    if (rv != TS_OK) {
        svc_reply_err(r, rv);
        return;
    }
    svc_api_reply_doc(r, 201, group_json(&g));
}

static void group_get(svc_request *r)
{
    if (!svc_api_tenant_ready(r) || !svc_api_no_body(r)) {
        return;
    }
    reply_group(r, 200);
}

static void group_delete(svc_request *r)
{
    if (!svc_api_tenant_ready(r) || !svc_api_no_body(r)) {
        return;
    }
    const char *name = svc_param(r, "name");
    ts_err rv = ts_ca_group_delete(r->ca, r->tenant.name, name);
    if (rv != TS_OK) {
        svc_reply_err(r, rv);
        return;
    }
    svc_api_reply_doc(r, 200, json_pack("{s:s, s:b}", "name", name, "deleted", 1));
}

/* Adds (add) or removes the body's "devices" in one transaction, all or none. */
static void members_change(svc_request *r, int add)
{
    static const char *const allowed[] = {"devices", NULL};
    const char *uids[SVC_GROUP_ADD_MAX];
    json_t *doc = NULL;
    size_t n = 0;

    if (!svc_api_tenant_ready(r) || !svc_api_json_body_type(r)) {
        return;
    }
    ts_err rv = svc_body_json(r, allowed, &doc);
    json_t *list = json_object_get(doc, "devices");
    if (rv == TS_OK && (!json_is_array(list) || json_array_size(list) == 0 ||
                        json_array_size(list) > SVC_GROUP_ADD_MAX)) {
        rv = ts_error_set(TS_ERR_INVALID, "\"devices\" is an array of 1 to %d device UIDs",
                          SVC_GROUP_ADD_MAX);
    }
    for (size_t i = 0; rv == TS_OK && i < json_array_size(list); i++) {
        uids[n] = json_string_value(json_array_get(list, i));
        if (uids[n++] == NULL) {
            rv = ts_error_set(TS_ERR_INVALID, "\"devices\"[%zu] is not a string", i);
        }
    }
    if (rv == TS_OK) {
        rv = add ? ts_ca_group_add(r->ca, r->tenant.name, svc_param(r, "name"), uids, n)
                 : ts_ca_group_remove(r->ca, r->tenant.name, svc_param(r, "name"), uids, n);
    }
    json_decref(doc);
    if (rv != TS_OK) {
        svc_reply_err(r, rv);
        return;
    }
    reply_group(r, 200);
}

static void member_add(svc_request *r)
{
    members_change(r, 1);
}

static void members_remove(svc_request *r)
{
    members_change(r, 0);
}

static void member_remove(svc_request *r)
{
    if (!svc_api_tenant_ready(r) || !svc_api_no_body(r)) {
        return;
    }
    const char *uid = svc_param(r, "uid");
    ts_err rv = ts_ca_group_remove(r->ca, r->tenant.name, svc_param(r, "name"), &uid, 1);
    if (rv != TS_OK) {
        svc_reply_err(r, rv);
        return;
    }
    reply_group(r, 200);
}
