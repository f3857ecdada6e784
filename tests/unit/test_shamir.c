/*
 * Shamir secret sharing over GF(256) (src/pki/shamir.c), checked against a plain reference
 * written here: the field arithmetic over every pair of bytes, known answers from FIPS 197, a
 * fixed polynomial evaluated and interpolated by the reference, and the properties (any M of N
 * shares give the secret, M - 1 do not).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "pki/shamir_internal.h"
#include "tessera/ceremony.h"

/* --- the reference: schoolbook GF(2^8) with the AES polynomial, branches and all ------------- */

static uint8_t ref_mul(uint8_t a, uint8_t b)
{
    /* Polynomial product, degree up to 14, then reduction by x^8 + x^4 + x^3 + x + 1. */
    uint16_t p = 0;
    for (int i = 0; i < 8; i++) {
        if (b & (1 << i)) {
            p ^= (uint16_t)(a << i);
        }
    }
    for (int d = 14; d >= 8; d--) {
        if (p & (1 << d)) {
            p ^= (uint16_t)(0x11B << (d - 8));
        }
    }
    return (uint8_t)p;
}

static uint8_t ref_inv(uint8_t a)
{
    /* By search: the b with a * b = 1. */
    for (int b = 1; b < 256; b++) {
        if (ref_mul(a, (uint8_t)b) == 1) {
            return (uint8_t)b;
        }
    }
    return 0;
}

/* f(x) = c[0] + c[1] x + ... + c[n-1] x^(n-1), term by term. */
static uint8_t ref_eval(const uint8_t *c, size_t n, uint8_t x)
{
    uint8_t y = 0, xp = 1;
    for (size_t k = 0; k < n; k++) {
        y ^= ref_mul(c[k], xp);
        xp = ref_mul(xp, x);
    }
    return y;
}

/* Lagrange interpolation at 0 of one byte position. */
static uint8_t ref_interpolate(const ts_share *s, size_t n, size_t byte)
{
    uint8_t acc = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t l = 1;
        for (size_t j = 0; j < n; j++) {
            if (j != i) {
                l = ref_mul(l, ref_mul(s[j].x, ref_inv(s[j].x ^ s[i].x)));
            }
        }
        acc ^= ref_mul(s[i].y[byte], l);
    }
    return acc;
}

/* --- field arithmetic ------------------------------------------------------------------------ */

static void gf_mul_all_pairs(void **state)
{
    (void)state;
    for (unsigned a = 0; a < 256; a++) {
        for (unsigned b = 0; b < 256; b++) {
            if (ts_gf256_mul((uint8_t)a, (uint8_t)b) != ref_mul((uint8_t)a, (uint8_t)b)) {
                fail_msg("%02x * %02x", a, b);
            }
        }
    }
    /* FIPS 197 section 4.2: {57} * {83} = {c1}, {57} * {13} = {fe}. */
    assert_int_equal(ts_gf256_mul(0x57, 0x83), 0xc1);
    assert_int_equal(ts_gf256_mul(0x57, 0x13), 0xfe);
}

static void gf_inverse(void **state)
{
    (void)state;
    assert_int_equal(ts_gf256_inv(0), 0);
    assert_int_equal(ts_gf256_inv(1), 1);
    for (unsigned a = 1; a < 256; a++) {
        uint8_t inv = ts_gf256_inv((uint8_t)a);
        assert_int_equal(ts_gf256_mul((uint8_t)a, inv), 1);
        assert_int_equal(inv, ref_inv((uint8_t)a));
    }
    /* FIPS 197 section 5.1.1: the S-box starts from the inverse; {53}^-1 = {ca}. */
    assert_int_equal(ts_gf256_inv(0x53), 0xca);
}

/* --- known answers --------------------------------------------------------------------------- */

static void known_answer(void **state)
{
    (void)state;
    /* By hand: f(x) = 01 + 02 x gives f(1) = 03, f(2) = 01 ^ (02 * 02) = 05. */
    ts_share two[2] = {{.x = 1}, {.x = 2}};
    memset(two[0].y, 0x03, sizeof two[0].y);
    memset(two[1].y, 0x05, sizeof two[1].y);
    uint8_t out[TS_SHARE_SECRET_LEN];
    assert_int_equal(ts_shamir_combine(two, 2, out), TS_OK);
    for (size_t i = 0; i < sizeof out; i++) {
        assert_int_equal(out[i], 0x01);
    }

    /* A fixed degree-2 polynomial per byte, evaluated by the reference at x = 1..5. */
    uint8_t secret[TS_SHARE_SECRET_LEN], coef[TS_SHARE_SECRET_LEN][3];
    ts_share shares[5];
    for (size_t j = 0; j < TS_SHARE_SECRET_LEN; j++) {
        secret[j] = (uint8_t)(0x10 + 7 * j);
        coef[j][0] = secret[j];
        coef[j][1] = (uint8_t)(0xA5 ^ (j * 29));
        coef[j][2] = (uint8_t)(0x3C + 11 * j);
    }
    for (size_t i = 0; i < 5; i++) {
        shares[i].x = (uint8_t)(i + 1);
        for (size_t j = 0; j < TS_SHARE_SECRET_LEN; j++) {
            shares[i].y[j] = ref_eval(coef[j], 3, shares[i].x);
        }
    }
    /* One value worked through: byte 0 has f(x) = 10 + a5 x + 3c x^2; at x = 3:
     * a5 * 03 = f4, 3c * 05 = cc (03^2 = 05), so f(3) = 10 ^ f4 ^ cc = 28. */
    assert_int_equal(shares[2].y[0], 0x28);
    ts_share pick[3] = {shares[4], shares[0], shares[2]};
    assert_int_equal(ts_shamir_combine(pick, 3, out), TS_OK);
    assert_memory_equal(out, secret, sizeof secret);
}

/* --- properties ------------------------------------------------------------------------------ */

static void split_matches_reference(void **state)
{
    (void)state;
    uint8_t secret[TS_SHARE_SECRET_LEN];
    ts_share shares[7];

    for (size_t j = 0; j < sizeof secret; j++) {
        secret[j] = (uint8_t)(j * 37 + 1);
    }
    assert_int_equal(ts_shamir_split(secret, 4, 7, shares), TS_OK);
    for (size_t i = 0; i < 7; i++) {
        assert_int_equal(shares[i].x, i + 1);
    }
    /* The reference interpolates the library's shares back to the secret. */
    for (size_t j = 0; j < sizeof secret; j++) {
        assert_int_equal(ref_interpolate(shares + 3, 4, j), secret[j]);
    }
    /* All seven lie on one polynomial of degree 3: interpolating through all gives it too. */
    uint8_t out[TS_SHARE_SECRET_LEN];
    assert_int_equal(ts_shamir_combine(shares, 7, out), TS_OK);
    assert_memory_equal(out, secret, sizeof secret);
}

static void three_of_five_subsets(void **state)
{
    (void)state;
    uint8_t secret[TS_SHARE_SECRET_LEN], out[TS_SHARE_SECRET_LEN];
    ts_share shares[5], pick[5];
    size_t good = 0, pairs = 0;

    memset(secret, 0xEE, sizeof secret);
    secret[0] = 0;
    assert_int_equal(ts_shamir_split(secret, 3, 5, shares), TS_OK);
    /* Every subset of the five, by bit mask. */
    for (unsigned mask = 1; mask < 32; mask++) {
        size_t n = 0;
        for (unsigned i = 0; i < 5; i++) {
            if (mask & (1U << i)) {
                pick[n++] = shares[i];
            }
        }
        if (n < 2) {
            continue;
        }
        assert_int_equal(ts_shamir_combine(pick, n, out), TS_OK);
        if (n >= 3) {
            assert_memory_equal(out, secret, sizeof secret);
            good += n == 3;
        } else {
            /* Two shares fix a line, not the parabola: the value at 0 is unrelated to the
             * secret, equal to it with probability 2^-256. */
            assert_memory_not_equal(out, secret, sizeof secret);
            pairs++;
        }
    }
    assert_int_equal(good, 10); /* C(5,3) */
    assert_int_equal(pairs, 10);
}

static void limits(void **state)
{
    (void)state;
    static ts_share many[255];
    uint8_t secret[TS_SHARE_SECRET_LEN], out[TS_SHARE_SECRET_LEN];

    memset(secret, 0x42, sizeof secret);
    assert_int_equal(ts_shamir_split(secret, 255, 255, many), TS_OK);
    assert_int_equal(many[254].x, 255);
    assert_int_equal(ts_shamir_combine(many, 255, out), TS_OK);
    assert_memory_equal(out, secret, sizeof secret);
    assert_int_equal(ts_shamir_split(secret, 2, 255, many), TS_OK);
    assert_int_equal(ts_shamir_combine(many + 100, 2, out), TS_OK);
    assert_memory_equal(out, secret, sizeof secret);

    assert_int_equal(ts_shamir_split(secret, 1, 5, many), TS_ERR_INVALID);
    assert_int_equal(ts_shamir_split(secret, 0, 5, many), TS_ERR_INVALID);
    assert_int_equal(ts_shamir_split(secret, 6, 5, many), TS_ERR_INVALID);
    assert_int_equal(ts_shamir_split(secret, 3, 256, many), TS_ERR_INVALID);
    assert_int_equal(ts_shamir_split(NULL, 3, 5, many), TS_ERR_INVALID);
}

static void combine_refuses(void **state)
{
    (void)state;
    uint8_t secret[TS_SHARE_SECRET_LEN] = {1, 2, 3}, out[TS_SHARE_SECRET_LEN];
    ts_share s[3];

    assert_int_equal(ts_shamir_split(secret, 2, 3, s), TS_OK);
    ts_share dup[2] = {s[1], s[1]};
    assert_int_equal(ts_shamir_combine(dup, 2, out), TS_ERR_INVALID);
    ts_share zero[2] = {s[0], s[1]};
    zero[0].x = 0;
    assert_int_equal(ts_shamir_combine(zero, 2, out), TS_ERR_INVALID);
    assert_int_equal(ts_shamir_combine(s, 1, out), TS_ERR_INVALID);
    assert_int_equal(ts_shamir_combine(s, 0, out), TS_ERR_INVALID);
    assert_int_equal(ts_shamir_combine(NULL, 2, out), TS_ERR_INVALID);
}

static void splits_differ(void **state)
{
    (void)state;
    uint8_t secret[TS_SHARE_SECRET_LEN] = {0};
    ts_share a[3], b[3];

    /* Fresh coefficients each time: the same secret gives other shares. */
    assert_int_equal(ts_shamir_split(secret, 3, 3, a), TS_OK);
    assert_int_equal(ts_shamir_split(secret, 3, 3, b), TS_OK);
    assert_memory_not_equal(a[0].y, b[0].y, sizeof a[0].y);
    /* And a share is not the secret. */
    assert_memory_not_equal(a[0].y, secret, sizeof secret);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(gf_mul_all_pairs),      cmocka_unit_test(gf_inverse),
        cmocka_unit_test(known_answer),          cmocka_unit_test(split_matches_reference),
        cmocka_unit_test(three_of_five_subsets), cmocka_unit_test(limits),
        cmocka_unit_test(combine_refuses),       cmocka_unit_test(splits_differ),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
