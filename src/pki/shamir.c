/*
 * Shamir secret sharing over GF(256) (Shamir, "How to share a secret", CACM 22(11), 1979).
 *
 * Each byte of the secret is the constant term of its own random polynomial of degree M - 1;
 * share i holds every polynomial's value at x = i. Any M points fix the polynomials, so
 * Lagrange interpolation at x = 0 gives the secret back; with M - 1 points every value of the
 * constant term is equally likely, so fewer than M shares tell nothing about it.
 */
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "common/error_internal.h"
#include "pki/shamir_internal.h"
#include "tessera/ceremony.h"

/*
 * Carry-less multiplication with reduction by 0x11B, one bit of b per round: the masks stand in
 * for "if (b & 1)" and "if (a & 0x80)", so time and memory access do not depend on a or b.
 */
uint8_t ts_gf256_mul(uint8_t a, uint8_t b)
{
    unsigned r = 0, x = a, y = b;

    for (int i = 0; i < 8; i++) {
        r ^= x & (0U - (y & 1U));
        /* x * 2: shift, and when a bit falls out of the byte, subtract (XOR) the polynomial */
        x = ((x << 1) ^ (0x11BU & (0U - (x >> 7)))) & 0xFFU;
        y >>= 1;
    }
    return (uint8_t)r;
}

/*
 * a^254 = a^-1, since the multiplicative group has order 255 (a^255 = 1 for a != 0). The
 * exponent is fixed, so this is the same sequence of multiplications for every a:
 * 254 = 0b11111110.
 */
uint8_t ts_gf256_inv(uint8_t a)
{
    uint8_t r = 1, p = a;

    for (int i = 1; i < 8; i++) {
        p = ts_gf256_mul(p, p); /* a^(2^i) */
        r = ts_gf256_mul(r, p);
    }
    return r;
}

ts_err ts_shamir_split(const uint8_t secret[TS_SHARE_SECRET_LEN], unsigned threshold,
                       unsigned count, ts_share *shares)
{
    /* coef[(k - 1) * LEN + j]: the coefficient of x^k of byte j's polynomial, k = 1..M-1 */
    uint8_t *coef = NULL;
    size_t coef_len = 0;

    if (secret == NULL || shares == NULL) {
        return ts_error_set(TS_ERR_INVALID, "shamir: no secret or nowhere to put the shares");
    }
    if (threshold < TS_SHARE_MIN || count > TS_SHARE_MAX || threshold > count) {
        return ts_error_set(TS_ERR_INVALID,
                            "shamir: %u of %u shares is not possible: use 2 <= M <= N <= 255",
                            threshold, count);
    }
    coef_len = (size_t)(threshold - 1) * TS_SHARE_SECRET_LEN;
    coef = OPENSSL_malloc(coef_len);
    if (coef == NULL) {
        return ts_error_set(TS_ERR_NOMEM, "out of memory splitting a secret");
    }
    if (RAND_priv_bytes(coef, (int)coef_len) != 1) {
        OPENSSL_clear_free(coef, coef_len);
        return ts_error_set_openssl(TS_ERR_CRYPTO, "shamir: no random bytes for the polynomials");
    }
    for (unsigned i = 0; i < count; i++) {
        uint8_t x = (uint8_t)(i + 1);
        shares[i].x = x;
        for (size_t j = 0; j < TS_SHARE_SECRET_LEN; j++) {
            /* Horner: f(x) = (...(c[M-1] x + c[M-2]) x + ...) x + c[0] */
            uint8_t y = 0;
            for (unsigned k = threshold - 1; k >= 1; k--) {
                y = ts_gf256_mul(y, x) ^ coef[(k - 1) * TS_SHARE_SECRET_LEN + j];
            }
            shares[i].y[j] = ts_gf256_mul(y, x) ^ secret[j];
        }
    }
    OPENSSL_clear_free(coef, coef_len);
    return TS_OK;
}

ts_err ts_shamir_combine(const ts_share *shares, size_t count, uint8_t secret[TS_SHARE_SECRET_LEN])
{
    uint8_t out[TS_SHARE_SECRET_LEN];

    if (shares == NULL || secret == NULL) {
        return ts_error_set(TS_ERR_INVALID, "shamir: no shares or nowhere to put the secret");
    }
    if (count < TS_SHARE_MIN || count > TS_SHARE_MAX) {
        return ts_error_set(TS_ERR_INVALID, "shamir: %zu shares cannot be combined (2 to 255)",
                            count);
    }
    /* The x-coordinates are public (printed on every share): checking them may branch. */
    for (size_t i = 0; i < count; i++) {
        if (shares[i].x == 0) {
            return ts_error_set(TS_ERR_INVALID, "shamir: a share at x = 0 would be the secret");
        }
        for (size_t j = 0; j < i; j++) {
            if (shares[j].x == shares[i].x) {
                return ts_error_set(TS_ERR_INVALID, "shamir: share %u is given twice",
                                    (unsigned)shares[i].x);
            }
        }
    }
    memset(out, 0, sizeof out);
    for (size_t i = 0; i < count; i++) {
        /* Lagrange basis at 0: l_i = prod_{j != i} x_j / (x_j - x_i); minus is XOR here. */
        uint8_t num = 1, den = 1;
        for (size_t j = 0; j < count; j++) {
            if (j != i) {
                num = ts_gf256_mul(num, shares[j].x);
                den = ts_gf256_mul(den, shares[j].x ^ shares[i].x);
            }
        }
        uint8_t l = ts_gf256_mul(num, ts_gf256_inv(den));
        for (size_t k = 0; k < TS_SHARE_SECRET_LEN; k++) {
            out[k] ^= ts_gf256_mul(shares[i].y[k], l);
        }
    }
    memcpy(secret, out, sizeof out);
    OPENSSL_cleanse(out, sizeof out);
    return TS_OK;
}
