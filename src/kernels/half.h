/*
 * bfloat16 and float16 <-> float32, element by element in integer code: the reference
 * every ISA's vector conversions must match bit for bit (SPEC 13).
 *   widen:  exact.  bfloat16 is the upper half of a binary32; a float16 NaN becomes a
 *           quiet NaN with its payload in the top mantissa bits (what F16C's vcvtph2ps
 *           and AArch64's FCVT give).
 *   narrow: round to nearest, ties to even; float16 overflows to infinity from 65520 up,
 *           results below 2^-14 are float16 subnormals (2^-25 and below: zero); a NaN
 *           stays NaN, quiet, with the top bits of its payload (vcvtps2ph's result).
 */
#ifndef DAFL_HALF_H
#define DAFL_HALF_H

#include <stdint.h>
#include <string.h>

static inline float dafl_float_of_bits(uint32_t b)
{
    float f;
    memcpy(&f, &b, sizeof f);
    return f;
}

static inline uint32_t dafl_bits_of_float(float f)
{
    uint32_t b;
    memcpy(&b, &f, sizeof b);
    return b;
}

static inline float dafl_bf16_to_float(uint16_t h) { return dafl_float_of_bits((uint32_t)h << 16); }

static inline uint16_t dafl_float_to_bf16(float f)
{
    uint32_t b = dafl_bits_of_float(f);
    if ((b & 0x7fffffffu) > 0x7f800000u) /* NaN: quiet, keep sign and payload's top */
        return (uint16_t)((b >> 16) | 0x40u);
    return (uint16_t)((b + 0x7fffu + ((b >> 16) & 1u)) >> 16);
}

static inline float dafl_f16_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
    if (e == 0x1f) /* inf, NaN (quiet) */
        return dafl_float_of_bits(sign | 0x7f800000u | (m << 13) | (m ? 0x400000u : 0u));
    if (e != 0)
        return dafl_float_of_bits(sign | ((e + 112u) << 23) | (m << 13));
    if (m == 0)
        return dafl_float_of_bits(sign);
    /* subnormal: m * 2^-24, normalised */
    uint32_t shift = (uint32_t)__builtin_clz(m) - 21u; /* brings the top bit to bit 10 */
    m = (m << shift) & 0x3ffu;
    return dafl_float_of_bits(sign | ((113u - shift) << 23) | (m << 13));
}

static inline uint16_t dafl_float_to_f16(float f)
{
    uint32_t b = dafl_bits_of_float(f);
    uint32_t sign = (b >> 16) & 0x8000u, a = b & 0x7fffffffu;
    if (a > 0x7f800000u) /* NaN: quiet, the top 9 bits of the payload below the quiet bit */
        return (uint16_t)(sign | 0x7e00u | ((a >> 13) & 0x3ffu));
    if (a >= 0x477ff000u) /* 65520 and up, inf: infinity */
        return (uint16_t)(sign | 0x7c00u);
    if (a >= 0x38800000u) { /* 2^-14 and up: normal */
        uint32_t r = a - 0x38000000u;
        return (uint16_t)(sign | ((r + 0xfffu + ((r >> 13) & 1u)) >> 13));
    }
    if (a <= 0x33000000u) /* 2^-25 and below: zero (2^-25 is the tie, even is 0) */
        return (uint16_t)sign;
    /* subnormal result: round(a * 2^24) */
    uint32_t e = a >> 23, m = (a & 0x7fffffu) | 0x800000u, shift = 126u - e; /* 14..24 */
    uint32_t q = m >> shift, rem = m & ((1u << shift) - 1u), half = 1u << (shift - 1u);
    q += rem > half || (rem == half && (q & 1u));
    return (uint16_t)(sign | q);
}

#endif
