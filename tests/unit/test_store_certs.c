/*
 * The store on both backends: certificates (serials unique per issuer, lookups, filters),
 * revocation, and CRL numbers, also from two processes at once.
 */
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "store_test_util.h"

static const uint8_t fake_der[] = {0x30, 0x06, 0x02, 0x01, 0x07, 0x02, 0x01, 0x08};

typedef struct world {
    int64_t tenant, other_tenant;
    int64_t ca, other_ca; /* two issuing CAs of the tenant: the active one and an older one */
} world;

static int64_t add_ca(store_fx *fx, int64_t tenant, int active, int seq)
{
    ts_ca_row ca = {.tenant_id = tenant, .kind = TS_CA_ISSUING, .active = active};
    snprintf(ca.key_label, sizeof ca.key_label, "issuing-%d", seq);
    ca.cert_der = (uint8_t *)fake_der;
    ca.cert_len = sizeof fake_der;
    snprintf(ca.subject, sizeof ca.subject, "CN=Issuing %d", seq);
    snprintf(ca.fingerprint, sizeof ca.fingerprint, "%064x", 0xca00 + seq);
    OK(ts_store_ca_insert(fx->s, &ca));
    return ca.id;
}

static world make_world(store_fx *fx)
{
    world w;
    ts_tenant_row t = {.name = "acme", .country = "DE"};
    ts_tenant_row o = {.name = "other"};
    OK(ts_store_begin(fx->s));
    OK(ts_store_tenant_insert(fx->s, &t));
    OK(ts_store_tenant_insert(fx->s, &o));
    w.tenant = t.id;
    w.other_tenant = o.id;
    w.ca = add_ca(fx, t.id, 1, 1);
    w.other_ca = add_ca(fx, t.id, 0, 2);
    OK(ts_store_commit(fx->s));
    return w;
}

static ts_cert_row cert(int64_t tenant, int64_t ca, const char *serial, const char *device,
                        time_t not_after)
{
    static int seq;
    ts_cert_row c = {.tenant_id = tenant, .issuer_ca_id = ca};
    snprintf(c.serial, sizeof c.serial, "%s", serial);
    snprintf(c.subject, sizeof c.subject, "O=Acme, CN=%s", device);
    snprintf(c.device_uid, sizeof c.device_uid, "%s", device);
    snprintf(c.profile, sizeof c.profile, "device");
    snprintf(c.fingerprint, sizeof c.fingerprint, "%064X", ++seq);
    c.not_before = not_after - 86400;
    c.not_after = not_after;
    c.der = (uint8_t *)fake_der;
    c.der_len = sizeof fake_der;
    return c;
}

#define SERIAL_A "4F2A19C0D3E1B2A4958F6C7D8E9F0A1B2C3D4E5F"
#define SERIAL_B "1122334455667788990011223344556677889900"
#define SERIAL_C "7E"
#define DAY      86400

static void case_certs(store_fx *fx)
{
    world w = make_world(fx);
    time_t now = time(NULL);
    ts_cert_row a = cert(w.tenant, w.ca, SERIAL_A, "dev-1", now + 10 * DAY);
    ts_cert_row b = cert(w.tenant, w.ca, SERIAL_B, "dev-2", now + 100 * DAY);
    ts_cert_row c = cert(w.tenant, w.ca, "7e", "dev-1", now + 5 * DAY);
    ts_cert_row again = cert(w.tenant, w.ca, SERIAL_A, "dev-3", now + DAY);
    ts_cert_row elsewhere = cert(w.tenant, w.other_ca, SERIAL_A, "dev-4", now + DAY);
    ts_cert_row got = {0};

    OK(ts_store_begin(fx->s));
    OK(ts_store_cert_insert(fx->s, &a));
    OK(ts_store_cert_insert(fx->s, &b));
    /* RFC 5280: unique per issuer. The transaction stays usable for the retry. */
    ERR(TS_ERR_CONFLICT, "retry", ts_store_cert_insert(fx->s, &again));
    OK(ts_store_cert_insert(fx->s, &c));
    OK(ts_store_cert_insert(fx->s, &elsewhere));
    OK(ts_store_commit(fx->s));
    assert_string_equal(c.serial, SERIAL_C); /* stored as openssl prints it */
    assert_int_equal(a.state, TS_CERT_VALID);

    /* By serial, in any case and with leading zeros; the newest of the tenant's issuers. */
    OK(ts_store_cert_get(fx->s, w.tenant, "4f2a19c0d3e1b2a4958f6c7d8e9f0a1b2c3d4e5f", &got));
    assert_int_equal(got.id, elsewhere.id);
    ts_cert_row_clear(&got);
    OK(ts_store_cert_get_by_issuer(fx->s, w.ca, SERIAL_A, &got));
    assert_int_equal(got.id, a.id);
    assert_int_equal(got.tenant_id, w.tenant);
    assert_int_equal(got.issuer_ca_id, w.ca);
    assert_string_equal(got.serial, SERIAL_A);
    assert_string_equal(got.subject, "O=Acme, CN=dev-1");
    assert_string_equal(got.device_uid, "dev-1");
    assert_string_equal(got.profile, "device");
    assert_string_equal(got.fingerprint, a.fingerprint);
    assert_int_equal(got.not_after, now + 10 * DAY);
    assert_int_equal(got.not_before, now + 9 * DAY);
    assert_int_equal(got.state, TS_CERT_VALID);
    assert_int_equal(got.der_len, sizeof fake_der);
    assert_memory_equal(got.der, fake_der, sizeof fake_der);
    ts_cert_row_clear(&got);
    /* The state alone, for OCSP: the same row without its DER. */
    OK(ts_store_cert_state_by_issuer(fx->s, w.ca, SERIAL_A, &got));
    assert_int_equal(got.id, a.id);
    assert_string_equal(got.serial, SERIAL_A);
    assert_int_equal(got.state, TS_CERT_VALID);
    assert_null(got.der);
    assert_int_equal(got.der_len, 0);
    ts_cert_row_clear(&got);
    ERR(TS_ERR_NOT_FOUND, NULL, ts_store_cert_state_by_issuer(fx->s, w.other_ca, SERIAL_B, &got));
    ERR(TS_ERR_INVALID, "hex", ts_store_cert_state_by_issuer(fx->s, w.ca, "12XY", &got));
    OK(ts_store_cert_get(fx->s, w.tenant, "007E", &got));
    assert_int_equal(got.id, c.id);
    ts_cert_row_clear(&got);
    ERR(TS_ERR_NOT_FOUND, NULL, ts_store_cert_get(fx->s, w.other_tenant, SERIAL_B, &got));
    ERR(TS_ERR_NOT_FOUND, NULL, ts_store_cert_get_by_issuer(fx->s, w.other_ca, SERIAL_B, &got));
    ERR(TS_ERR_INVALID, "hex", ts_store_cert_get(fx->s, w.tenant, "12XY", &got));
    ERR(TS_ERR_INVALID, NULL, ts_store_cert_get(fx->s, w.tenant, "", &got));
    ERR(TS_ERR_INVALID, NULL, ts_store_cert_get(fx->s, w.tenant, SERIAL_A "00", &got));
    assert_null(got.der);
}

static size_t list(store_fx *fx, const ts_cert_filter *f, int64_t first_id)
{
    ts_cert_row *rows = NULL;
    size_t count = 0;
    OK(ts_store_cert_list(fx->s, f, &rows, &count));
    for (size_t i = 0; i < count; i++) {
        assert_null(rows[i].der);
        if (i > 0) {
            assert_true(rows[i].id > rows[i - 1].id);
        }
    }
    if (first_id != 0) {
        assert_true(count > 0);
        assert_int_equal(rows[0].id, first_id);
    }
    ts_cert_rows_free(rows, count);
    return count;
}

static void case_cert_list(store_fx *fx)
{
    world w = make_world(fx);
    time_t now = time(NULL);
    ts_cert_row a = cert(w.tenant, w.ca, "0A", "dev-1", now + 10 * DAY);
    ts_cert_row b = cert(w.tenant, w.ca, "0B", "dev-2", now + 100 * DAY);
    ts_cert_row c = cert(w.tenant, w.ca, "0C", "dev-1", now + 5 * DAY);
    ts_cert_row d = cert(w.other_tenant, w.ca, "0D", "dev-9", now + DAY);

    OK(ts_store_begin(fx->s));
    OK(ts_store_cert_insert(fx->s, &a));
    OK(ts_store_cert_insert(fx->s, &b));
    OK(ts_store_cert_insert(fx->s, &c));
    OK(ts_store_cert_insert(fx->s, &d));
    OK(ts_store_cert_revoke(fx->s, w.tenant, "0B", now, 1));
    OK(ts_store_commit(fx->s));

    ts_cert_filter f = {.tenant_id = w.tenant};
    assert_int_equal(list(fx, &f, a.id), 3);
    f.state = TS_CERT_VALID;
    assert_int_equal(list(fx, &f, a.id), 2);
    f.state = TS_CERT_REVOKED_STATE;
    assert_int_equal(list(fx, &f, b.id), 1);
    f.state = 0;
    f.device_uid = "dev-1";
    assert_int_equal(list(fx, &f, a.id), 2);
    f.device_uid = "dev-404";
    assert_int_equal(list(fx, &f, 0), 0);
    f.device_uid = NULL;
    f.expiring_before = now + 30 * DAY;
    assert_int_equal(list(fx, &f, a.id), 2);
    f.expiring_before = now + 6 * DAY;
    assert_int_equal(list(fx, &f, c.id), 1);
    f.expiring_before = 0;
    f.limit = 2;
    assert_int_equal(list(fx, &f, a.id), 2);
    f.limit = 0;
    f.tenant_id = w.other_tenant;
    assert_int_equal(list(fx, &f, d.id), 1);
    f.tenant_id = 0; /* every tenant */
    assert_int_equal(list(fx, &f, a.id), 4);

    ts_cert_row *rows = NULL;
    size_t count = 0;
    f.state = (ts_cert_state)7;
    ERR(TS_ERR_INVALID, NULL, ts_store_cert_list(fx->s, &f, &rows, &count));
}

static void case_cert_invalid(store_fx *fx)
{
    world w = make_world(fx);
    time_t now = time(NULL);
    ts_cert_row c;
    OK(ts_store_begin(fx->s));
    c = cert(w.tenant, w.ca, "XYZ", "dev", now);
    ERR(TS_ERR_INVALID, "hex", ts_store_cert_insert(fx->s, &c));
    c = cert(w.tenant, w.ca, "01", "dev", now);
    memset(c.subject, 'S', sizeof c.subject);
    ERR(TS_ERR_INVALID, "subject", ts_store_cert_insert(fx->s, &c));
    c = cert(w.tenant, w.ca, "01", "dev", now);
    memset(c.device_uid, 'U', sizeof c.device_uid);
    ERR(TS_ERR_INVALID, "device", ts_store_cert_insert(fx->s, &c));
    c = cert(w.tenant, w.ca, "01", "dev", now);
    c.not_before = now + 1;
    ERR(TS_ERR_INVALID, "notAfter", ts_store_cert_insert(fx->s, &c));
    c = cert(w.tenant, w.ca, "01", "dev", now);
    c.der_len = TS_STORE_DER_MAX + 1;
    ERR(TS_ERR_INVALID, "DER", ts_store_cert_insert(fx->s, &c));
    c = cert(w.tenant, w.ca, "01", "dev", now);
    c.fingerprint[0] = '\0';
    ERR(TS_ERR_INVALID, "fingerprint", ts_store_cert_insert(fx->s, &c));
    c = cert(w.tenant, 0, "01", "dev", now);
    ERR(TS_ERR_INVALID, NULL, ts_store_cert_insert(fx->s, &c));
    OK(ts_store_commit(fx->s));
    ts_cert_filter f = {0};
    ts_cert_row *rows = NULL;
    size_t count = 9;
    OK(ts_store_cert_list(fx->s, &f, &rows, &count));
    assert_int_equal(count, 0);
    ts_cert_rows_free(rows, count);
}

static void case_revoke(store_fx *fx)
{
    world w = make_world(fx);
    time_t now = time(NULL);
    ts_cert_row a = cert(w.tenant, w.ca, "A1", "dev-1", now + 10 * DAY);
    ts_cert_row old = cert(w.tenant, w.ca, "A2", "dev-2", now - 10 * DAY);
    ts_cert_row keep = cert(w.tenant, w.ca, "A3", "dev-3", now + 10 * DAY);
    ts_cert_row got = {0};
    ts_cert_row *rows = NULL;
    size_t count = 0;

    OK(ts_store_begin(fx->s));
    OK(ts_store_cert_insert(fx->s, &a));
    OK(ts_store_cert_insert(fx->s, &old));
    OK(ts_store_cert_insert(fx->s, &keep));
    OK(ts_store_cert_revoke(fx->s, w.tenant, "a1", now - 60, 1 /* keyCompromise */));
    OK(ts_store_cert_revoke(fx->s, w.tenant, "A2", now - 20 * DAY, 4 /* superseded */));
    ERR(TS_ERR_STATE, "already revoked", ts_store_cert_revoke(fx->s, w.tenant, "A1", now, 0));
    OK(ts_store_commit(fx->s));

    OK(ts_store_begin(fx->s));
    ERR(TS_ERR_STATE, "already revoked", ts_store_cert_revoke(fx->s, w.tenant, "A1", now, 0));
    ERR(TS_ERR_NOT_FOUND, NULL, ts_store_cert_revoke(fx->s, w.tenant, "B0", now, 0));
    ERR(TS_ERR_NOT_FOUND, NULL, ts_store_cert_revoke(fx->s, w.other_tenant, "A3", now, 0));
    ERR(TS_ERR_INVALID, "reason", ts_store_cert_revoke(fx->s, w.tenant, "A3", now, 7));
    ERR(TS_ERR_INVALID, "reason", ts_store_cert_revoke(fx->s, w.tenant, "A3", now, 11));
    OK(ts_store_commit(fx->s));

    OK(ts_store_cert_get(fx->s, w.tenant, "A1", &got));
    assert_int_equal(got.state, TS_CERT_REVOKED_STATE);
    assert_int_equal(got.revoked_at, now - 60);
    assert_int_equal(got.revocation_reason, 1);
    ts_cert_row_clear(&got);
    OK(ts_store_cert_get(fx->s, w.tenant, "A3", &got));
    assert_int_equal(got.state, TS_CERT_VALID);
    ts_cert_row_clear(&got);

    /* The CRL holds revoked certificates that have not expired. */
    OK(ts_store_revoked_list(fx->s, w.ca, now, &rows, &count));
    assert_int_equal(count, 1);
    assert_string_equal(rows[0].serial, "A1");
    assert_int_equal(rows[0].revocation_reason, 1);
    assert_int_equal(rows[0].revoked_at, now - 60);
    ts_cert_rows_free(rows, count);
    OK(ts_store_revoked_list(fx->s, w.ca, now - 30 * DAY, &rows, &count));
    assert_int_equal(count, 2);
    ts_cert_rows_free(rows, count);
    OK(ts_store_revoked_list(fx->s, w.other_ca, now - 30 * DAY, &rows, &count));
    assert_int_equal(count, 0);
    ts_cert_rows_free(rows, count);

    /* A revoked state with no revocation record is corrupt, not "revoked at 0". */
    assert_int_equal(
        store_fx_raw(fx, "UPDATE certificates SET state = 2 WHERE serial = 'A3'", NULL), 0);
    ERR(TS_ERR_CORRUPT, "no revocation", ts_store_cert_get(fx->s, w.tenant, "A3", &got));
}

/* --- CRL numbers --------------------------------------------------------------------------- */

static uint64_t crl_next(ts_store *s, int64_t ca)
{
    uint64_t n = 0;
    OK(ts_store_begin(s));
    OK(ts_store_crl_number_next(s, ca, &n));
    OK(ts_store_commit(s));
    return n;
}

enum { CRL_CHILDREN = 2, CRL_EACH = 40 };

/* In a child: CRL_EACH numbers, each in its own transaction, written to fd. 0 on success. */
static int crl_child(store_fx *fx, int64_t ca, int fd)
{
    ts_store *s = NULL;
    if (store_fx_open_again(fx, &s) != TS_OK) {
        return 1;
    }
    for (int i = 0; i < CRL_EACH; i++) {
        uint64_t n = 0;
        ts_err rv = ts_store_begin(s);
        if (rv == TS_OK) {
            rv = ts_store_crl_number_next(s, ca, &n);
        }
        if (rv == TS_OK) {
            rv = ts_store_commit(s);
        }
        if (rv != TS_OK || write(fd, &n, sizeof n) != (ssize_t)sizeof n) {
            fprintf(stderr, "crl child: %s\n", ts_error_message());
            return 1;
        }
    }
    ts_store_free(s);
    return 0;
}

static void case_crl_numbers(store_fx *fx)
{
    world w = make_world(fx);
    uint64_t n = 0;
    assert_int_equal(crl_next(fx->s, w.ca), 1);
    assert_int_equal(crl_next(fx->s, w.ca), 2);
    assert_int_equal(crl_next(fx->s, w.other_ca), 1);
    /* A number taken in a transaction that rolls back was never used. */
    OK(ts_store_begin(fx->s));
    OK(ts_store_crl_number_next(fx->s, w.ca, &n));
    assert_int_equal(n, 3);
    ts_store_rollback(fx->s);
    assert_int_equal(crl_next(fx->s, w.ca), 3);
    OK(ts_store_begin(fx->s));
    ERR(TS_ERR_NOT_FOUND, NULL, ts_store_crl_number_next(fx->s, 999, &n));
    ts_store_rollback(fx->s);

    /* Two processes taking numbers at once: every number once, each process's increasing. */
    int fds[CRL_CHILDREN][2];
    pid_t pids[CRL_CHILDREN];
    for (int c = 0; c < CRL_CHILDREN; c++) {
        assert_int_equal(pipe(fds[c]), 0);
        pids[c] = fork();
        assert_true(pids[c] >= 0);
        if (pids[c] == 0) {
            close(fds[c][0]);
            _exit(crl_child(fx, w.ca, fds[c][1]));
        }
        close(fds[c][1]);
    }
    uint8_t seen[3 + CRL_CHILDREN * CRL_EACH + 1] = {0};
    for (int c = 0; c < CRL_CHILDREN; c++) {
        uint64_t last = 0, got = 0;
        int count = 0;
        while (read(fds[c][0], &got, sizeof got) == (ssize_t)sizeof got) {
            assert_true(got > last);
            assert_true(got > 3 && got < sizeof seen);
            assert_int_equal(seen[got], 0);
            seen[got] = 1;
            last = got;
            count++;
        }
        close(fds[c][0]);
        int status = 0;
        assert_int_equal(waitpid(pids[c], &status, 0), pids[c]);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        assert_int_equal(count, CRL_EACH);
    }
    assert_int_equal(crl_next(fx->s, w.ca), 4 + CRL_CHILDREN * CRL_EACH);
}

int main(void)
{
    static const store_case cases[] = {
        {"certs", case_certs},
        {"cert_list", case_cert_list},
        {"cert_invalid", case_cert_invalid},
        {"revoke", case_revoke},
        {"crl_numbers", case_crl_numbers},
    };
    return store_run_cases("store_certs", cases, sizeof cases / sizeof cases[0]);
}
