/*
 * GF(256) arithmetic behind Shamir secret sharing (shamir.c), exposed for its tests.
 *
 * The field is GF(2)[x] / (x^8 + x^4 + x^3 + x + 1), the polynomial 0x11B of AES (FIPS 197
 * section 4.2). Both functions run in constant time: no table indexed by a secret and no branch
 * on one, since share bytes and coefficients are secrets.
 */
#ifndef TS_PKI_SHAMIR_INTERNAL_H
#define TS_PKI_SHAMIR_INTERNAL_H

#include <stdint.h>

/* a * b in GF(256). */
uint8_t ts_gf256_mul(uint8_t a, uint8_t b);

/* The multiplicative inverse of a, as a^254; 0 for 0. */
uint8_t ts_gf256_inv(uint8_t a);

#endif
