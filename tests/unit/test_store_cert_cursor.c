/*
 * The certificate list's cursor (ts_cert_filter.after_id) on both backends: pages of any size
 * give every row once and in order, together with the other filters, and never cross a tenant.
 */
#include <time.h>

#include "store_test_util.h"

static const uint8_t some_der[] = {0x30, 0x03, 0x02, 0x01, 0x01};

enum { ROWS = 11 };

typedef struct fixture {
    int64_t tenant, other;
    int64_t ids[ROWS]; /* the tenant's rows, in insertion order */
} fixture;

static int64_t issuing_ca(store_fx *fx, int64_t tenant, const char *label)
{
    ts_ca_row ca = {.tenant_id = tenant, .kind = TS_CA_ISSUING, .active = 1};
    snprintf(ca.key_label, sizeof ca.key_label, "%s", label);
    snprintf(ca.subject, sizeof ca.subject, "CN=%s", label);
    snprintf(ca.fingerprint, sizeof ca.fingerprint, "%064zx", strlen(label));
    ca.cert_der = (uint8_t *)some_der;
    ca.cert_len = sizeof some_der;
    OK(ts_store_ca_insert(fx->s, &ca));
    return ca.id;
}

static int64_t add_cert(store_fx *fx, int64_t tenant, int64_t ca, int n)
{
    time_t now = time(NULL);
    ts_cert_row c = {.tenant_id = tenant, .issuer_ca_id = ca};
    snprintf(c.serial, sizeof c.serial, "%X", 0x100 + n);
    /* Even rows belong to dev-even, odd ones to dev-odd; every third expires soon. */
    snprintf(c.device_uid, sizeof c.device_uid, "%s", n % 2 == 0 ? "dev-even" : "dev-odd");
    snprintf(c.subject, sizeof c.subject, "CN=%s", c.device_uid);
    snprintf(c.profile, sizeof c.profile, "device");
    snprintf(c.fingerprint, sizeof c.fingerprint, "%064X", n);
    c.not_before = now - 86400;
    c.not_after = now + (n % 3 == 0 ? 86400 : 400 * 86400);
    c.der = (uint8_t *)some_der;
    c.der_len = sizeof some_der;
    OK(ts_store_cert_insert(fx->s, &c));
    return c.id;
}

/* The tenant's rows interleaved with another tenant's, so ids of one tenant have gaps. */
static fixture make(store_fx *fx)
{
    fixture f;
    ts_tenant_row t = {.name = "acme"};
    ts_tenant_row o = {.name = "other"};

    OK(ts_store_begin(fx->s));
    OK(ts_store_tenant_insert(fx->s, &t));
    OK(ts_store_tenant_insert(fx->s, &o));
    f.tenant = t.id;
    f.other = o.id;
    int64_t ca = issuing_ca(fx, t.id, "acme");
    int64_t other_ca = issuing_ca(fx, o.id, "other-ca");
    for (int i = 0; i < ROWS; i++) {
        f.ids[i] = add_cert(fx, t.id, ca, i);
        (void)add_cert(fx, o.id, other_ca, 1000 + i);
    }
    OK(ts_store_commit(fx->s));
    return f;
}

/* Pages through the filter `page` rows at a time; the ids seen, in order, into ids. */
static size_t walk(store_fx *fx, ts_cert_filter filter, size_t page, int64_t *ids, size_t max)
{
    size_t n = 0;

    filter.limit = page;
    filter.after_id = 0;
    for (;;) {
        ts_cert_row *rows = NULL;
        size_t count = 0;
        OK(ts_store_cert_list(fx->s, &filter, &rows, &count));
        assert_true(count <= page);
        for (size_t i = 0; i < count; i++) {
            assert_true(rows[i].id > filter.after_id);
            assert_int_equal(rows[i].tenant_id, filter.tenant_id);
            assert_true(n < max);
            ids[n++] = rows[i].id;
        }
        int64_t last = count > 0 ? rows[count - 1].id : 0;
        ts_cert_rows_free(rows, count);
        if (count < page) {
            return n;
        }
        filter.after_id = last;
    }
}

static void case_cursor_pages(store_fx *fx)
{
    fixture f = make(fx);
    int64_t ids[2 * ROWS];

    for (size_t page = 1; page <= ROWS + 1; page++) {
        ts_cert_filter filter = {.tenant_id = f.tenant};
        size_t n = walk(fx, filter, page, ids, 2 * ROWS);
        assert_int_equal(n, ROWS);
        assert_memory_equal(ids, f.ids, sizeof f.ids);
    }
    /* With a filter: dev-odd's rows only, still each once and in order. */
    ts_cert_filter odd = {.tenant_id = f.tenant, .device_uid = "dev-odd"};
    size_t n = walk(fx, odd, 2, ids, 2 * ROWS);
    assert_int_equal(n, ROWS / 2);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(ids[i], f.ids[2 * i + 1]);
    }
    /* Expiring within a week: rows 0, 3, 6 and 9. */
    ts_cert_filter soon = {.tenant_id = f.tenant, .expiring_before = time(NULL) + 7 * 86400};
    n = walk(fx, soon, 3, ids, 2 * ROWS);
    assert_int_equal(n, 4);
    assert_int_equal(ids[0], f.ids[0]);
    assert_int_equal(ids[3], f.ids[9]);
}

static void case_cursor_edges(store_fx *fx)
{
    fixture f = make(fx);
    ts_cert_row *rows = NULL;
    size_t count = 99;

    /* After the last row: an empty page, not an error. */
    ts_cert_filter after_end = {.tenant_id = f.tenant, .after_id = f.ids[ROWS - 1]};
    OK(ts_store_cert_list(fx->s, &after_end, &rows, &count));
    assert_int_equal(count, 0);
    ts_cert_rows_free(rows, count);

    /* A cursor in the middle of another tenant's ids still gives this tenant's next row. */
    ts_cert_filter mid = {.tenant_id = f.tenant, .after_id = f.ids[4] + 1, .limit = 1};
    OK(ts_store_cert_list(fx->s, &mid, &rows, &count));
    assert_int_equal(count, 1);
    assert_int_equal(rows[0].id, f.ids[5]);
    ts_cert_rows_free(rows, count);

    ts_cert_filter negative = {.tenant_id = f.tenant, .after_id = -1};
    rows = NULL;
    ERR(TS_ERR_INVALID, "cursor", ts_store_cert_list(fx->s, &negative, &rows, &count));
    assert_null(rows);
    assert_int_equal(count, 0);
}

int main(void)
{
    static const store_case cases[] = {
        {"cursor_pages", case_cursor_pages},
        {"cursor_edges", case_cursor_edges},
    };
    return store_run_cases("store_cert_cursor", cases, sizeof cases / sizeof cases[0]);
}
