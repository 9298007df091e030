/*
 * Fidelity of every AVX-512 intrinsic and SLEEF function that arch/x86/losses_avx512.c
 * uses, against Intel's documented semantics written here lane by lane in plain C (Intel
 * 64 and IA-32 SDM vol. 2 pseudo-code; C's float operations are the IEEE-754 ones):
 *   - arithmetic correctly rounded, fmadd with one rounding (a case where two roundings
 *     differ is included);
 *   - max/min: a > b ? a : b and a < b ? a : b, so a NaN in either operand and the pair
 *     (+0, -0) give the second operand, bit for bit;
 *   - the ordered compare predicates EQ/LT/LE/GT/GE_OQ: false whenever a NaN is involved;
 *   - roundscale with imm8 = 8: round to nearest, ties to even, the sign of zero kept;
 *   - scalef: a * 2^floor(b) rounded once (subnormal results too), and the SDM's table
 *     of NaN, zero and infinity cases;
 *   - cvttps_epi32: truncation, 0x80000000 for NaN and for lanes outside [-2^31, 2^31);
 *   - abs: the sign bit cleared, of -0.0 and negative NaNs too; xor, casts, shifts, wrap-
 *     around integer add, blends, extracts, widening conversion;
 *   - masked loads and stores touch no lane outside the mask (checked at a guard page);
 *   - float16 conversions: vcvtph2ps exact (a NaN quiet, its payload kept), vcvtps2ph with
 *     imm8 0 rounding to nearest even (float16 subnormals, overflow to infinity from 65520,
 *     a NaN quiet with the top of its payload), every float16 and every float32 top half
 *     with the low halves that decide the rounding; the integer operations of bfloat16
 *     narrowing (shifts, and, masked or, the unordered compare, the 16/32-bit moves) and
 *     widening (vpermw with a zero mask);
 *   - SLEEF's 16-lane u10 functions give the bits of its scalar FMA functions.
 *
 * The emulation build (-Davx512_emulation=true) compiles this against avx512_on_avx2.h,
 * so the checks hold for the definitions the emulated kernels use.  A normal build
 * compiles it with AVX-512 flags: on a CPU with AVX-512 the same checks then hold for
 * the hardware (and prove that the semantics written here are the hardware's); elsewhere
 * fidelity_main.c checks that dafl offers no avx512 kernels and reports a skip.
 */
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS */

#if defined(DAFL_AVX512_EMULATION)
#include "avx512_on_avx2.h"
#else
#include <immintrin.h>
#include <sleef.h>
#endif

#include <check.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "dafl.h"

#define TEST_REQUIRE(cond, ...)                                                            \
    do {                                                                                   \
        if (!(cond))                                                                       \
            ck_abort_msg(__VA_ARGS__);                                                     \
    } while (0)

/* ---- values and lanes ------------------------------------------------------------------ */

static float from_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static uint32_t bits_of(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

/* Specials and boundaries; the random values are appended at start-up. */
#define N_SPECIAL 44
#define N_VALUES (N_SPECIAL + 84)
static float values[N_VALUES];

static void make_values(void)
{
    const float special[N_SPECIAL] = {
        0.0f, -0.0f, 1.0f, -1.0f, 0.5f, -0.5f, 1.5f, -1.5f, 2.5f, -2.5f, 3.5f, -3.5f,
        0.49999997f, -0.49999997f, 8388607.5f, -8388607.5f, 8388608.0f, 16777215.0f,
        INFINITY, -INFINITY, NAN, -NAN, from_bits(0x7fa00001u) /* signalling */,
        from_bits(0xffc12345u), FLT_MAX, -FLT_MAX, FLT_MIN, -FLT_MIN, 1e-45f, -1e-45f,
        2147483520.0f, -2147483520.0f, 2147483648.0f, -2147483648.0f, -2147483904.0f,
        1e10f, -1e10f, 126.9f, -126.9f, 127.0f, -104.0f, 88.7f, 1e-30f, 3.0f};
    memcpy(values, special, sizeof special);
    uint64_t s = 0x1234567u;
    for (int i = N_SPECIAL; i < N_VALUES; i++) {
        s = s * 6364136223846793005u + 1442695040888963407u;
        uint32_t r = (uint32_t)(s >> 32);
        /* half of them any bit pattern, half moderate magnitudes */
        values[i] = (i & 1) ? from_bits(r) : ldexpf((float)(r & 0xffffff), (int)(r >> 27) - 30);
        if (!(i & 1) && (r & 0x800000u))
            values[i] = -values[i];
    }
}

/* The asm hides the lanes from the optimiser: the test is of the instructions, not of
 * constant folding (GCC 12 folds a constant _mm256_cvttps_epi32 with saturation and
 * NaN -> 0, unlike the instruction's 0x80000000). */
static __m512 vec_of(const float f[16])
{
    __m512 v;
    memcpy(&v, f, sizeof v);
    __asm__ volatile("" : "+m"(v));
    return v;
}

static void lanes_of(__m512 v, float f[16]) { memcpy(f, &v, sizeof v); }

/* Exact bits, except that any NaN stands for a NaN: the payload an arithmetic operation
 * gives a NaN varies between implementations, and the kernels never depend on it. */
static int same_value(float want, float got)
{
    if (isnan(want))
        return isnan(got);
    return bits_of(want) == bits_of(got);
}

/* Every pair of values, 16 lanes at a time, with both operands varying across lanes:
 * pair q = d*N + r is (values[r], values[(r + d) % N]). */
#define N_PAIRS (N_VALUES * N_VALUES)
static void pair_lanes(int first, float a[16], float b[16])
{
    for (int i = 0; i < 16; i++) {
        int q = (first + i) % N_PAIRS, r = q % N_VALUES, d = q / N_VALUES;
        a[i] = values[r];
        b[i] = values[(r + d) % N_VALUES];
    }
}

/* ---- arithmetic --------------------------------------------------------------------------- */

typedef enum { ADD, SUB, MUL, DIV, MAX, MIN } binary_op;
static const char *binary_name[] = {"add", "sub", "mul", "div", "max", "min"};

static float binary_reference(binary_op op, float a, float b)
{
    switch (op) {
    case ADD: return a + b;
    case SUB: return a - b;
    case MUL: return a * b;
    case DIV: return a / b;
    case MAX: return a > b ? a : b; /* SDM MAX(SRC1, SRC2) */
    case MIN: return a < b ? a : b;
    }
    return 0.0f;
}

static __m512 binary_intrinsic(binary_op op, __m512 a, __m512 b)
{
    switch (op) {
    case ADD: return _mm512_add_ps(a, b);
    case SUB: return _mm512_sub_ps(a, b);
    case MUL: return _mm512_mul_ps(a, b);
    case DIV: return _mm512_div_ps(a, b);
    case MAX: return _mm512_max_ps(a, b);
    case MIN: return _mm512_min_ps(a, b);
    }
    return a;
}

START_TEST(binary_arithmetic)
{
    binary_op op = (binary_op)_i;
    for (int p = 0; p < N_PAIRS; p += 16) {
        float a[16], b[16], got[16];
        pair_lanes(p, a, b);
        lanes_of(binary_intrinsic(op, vec_of(a), vec_of(b)), got);
        for (int i = 0; i < 16; i++) {
            float want = binary_reference(op, a[i], b[i]);
            /* max/min return an operand as it is: exact bits, NaNs included */
            int ok = op >= MAX ? bits_of(want) == bits_of(got[i]) : same_value(want, got[i]);
            TEST_REQUIRE(ok, "_mm512_%s_ps(%a [%08x], %a [%08x]) = %a [%08x], want %a [%08x]",
                         binary_name[op], (double)a[i], bits_of(a[i]), (double)b[i],
                         bits_of(b[i]), (double)got[i], bits_of(got[i]), (double)want,
                         bits_of(want));
        }
    }
}
END_TEST

START_TEST(max_min_nan_and_signed_zero)
{
    /* Known answers, independent of the reference above. */
    const float qnan = from_bits(0x7fc00001u), one = 1.0f;
    float a[16] = {qnan, one, 0.0f, -0.0f}, b[16] = {one, qnan, -0.0f, 0.0f};
    float mx[16], mn[16];
    lanes_of(_mm512_max_ps(vec_of(a), vec_of(b)), mx);
    lanes_of(_mm512_min_ps(vec_of(a), vec_of(b)), mn);
    ck_assert_uint_eq(bits_of(mx[0]), bits_of(one));  /* NaN first: the second operand */
    ck_assert_uint_eq(bits_of(mx[1]), 0x7fc00001u);   /* NaN second: the NaN */
    ck_assert_uint_eq(bits_of(mn[0]), bits_of(one));
    ck_assert_uint_eq(bits_of(mn[1]), 0x7fc00001u);
    ck_assert_uint_eq(bits_of(mx[2]), 0x80000000u);   /* max(+0, -0) = -0 */
    ck_assert_uint_eq(bits_of(mx[3]), 0x00000000u);   /* max(-0, +0) = +0 */
    ck_assert_uint_eq(bits_of(mn[2]), 0x80000000u);
    ck_assert_uint_eq(bits_of(mn[3]), 0x00000000u);
}
END_TEST

START_TEST(sqrt_and_fmadd)
{
    for (int p = 0; p < N_PAIRS; p += 16) {
        float a[16], b[16], c[16], got_s[16], got_f[16];
        pair_lanes(p, a, b);
        for (int i = 0; i < 16; i++)
            c[i] = values[(p * 7 + i * 13) % N_VALUES]; /* any third operand */
        lanes_of(_mm512_sqrt_ps(vec_of(a)), got_s);
        lanes_of(_mm512_fmadd_ps(vec_of(a), vec_of(b), vec_of(c)), got_f);
        for (int i = 0; i < 16; i++) {
            TEST_REQUIRE(same_value(sqrtf(a[i]), got_s[i]), "_mm512_sqrt_ps(%a) = %a",
                         (double)a[i], (double)got_s[i]);
            float want = fmaf(a[i], b[i], c[i]);
            TEST_REQUIRE(same_value(want, got_f[i]), "_mm512_fmadd_ps(%a, %a, %a) = %a, want %a",
                         (double)a[i], (double)b[i], (double)c[i], (double)got_f[i],
                         (double)want);
        }
    }
    /* one rounding: (1 + 2^-23)(1 - 2^-23) - 1 = -2^-46 exactly; with two roundings 0 */
    float a[16], b[16], c[16], got[16];
    for (int i = 0; i < 16; i++) {
        a[i] = 1.0f + 0x1p-23f;
        b[i] = 1.0f - 0x1p-23f;
        c[i] = -1.0f;
    }
    lanes_of(_mm512_fmadd_ps(vec_of(a), vec_of(b), vec_of(c)), got);
    ck_assert_uint_eq(bits_of(got[15]), bits_of(-0x1p-46f));
}
END_TEST

/* ---- compares, blends, bit operations ---------------------------------------------------- */

START_TEST(compare_predicates)
{
    for (int p = 0; p < N_PAIRS; p += 16) {
        float a[16], b[16];
        pair_lanes(p, a, b);
        __m512 va = vec_of(a), vb = vec_of(b);
        const unsigned got[5] = {_mm512_cmp_ps_mask(va, vb, _CMP_EQ_OQ),
                                 _mm512_cmp_ps_mask(va, vb, _CMP_LT_OQ),
                                 _mm512_cmp_ps_mask(va, vb, _CMP_LE_OQ),
                                 _mm512_cmp_ps_mask(va, vb, _CMP_GT_OQ),
                                 _mm512_cmp_ps_mask(va, vb, _CMP_GE_OQ)};
        static const char *name[5] = {"EQ_OQ", "LT_OQ", "LE_OQ", "GT_OQ", "GE_OQ"};
        for (int i = 0; i < 16; i++) {
            /* ordered and quiet: C's relational operators; false with a NaN */
            const int want[5] = {a[i] == b[i], a[i] < b[i], a[i] <= b[i], a[i] > b[i],
                                 a[i] >= b[i]};
            for (int k = 0; k < 5; k++)
                TEST_REQUIRE((int)((got[k] >> i) & 1) == want[k],
                             "_mm512_cmp_ps_mask(%a, %a, _CMP_%s) lane %d = %u", (double)a[i],
                             (double)b[i], name[k], i, (got[k] >> i) & 1);
        }
    }
}
END_TEST

START_TEST(blend_abs_xor)
{
    for (int p = 0; p < N_PAIRS; p += 16) {
        float a[16], b[16], blend[16], abs_v[16], x[16];
        pair_lanes(p, a, b);
        __mmask16 k = (__mmask16)(p * 2654435761u >> 7);
        lanes_of(_mm512_mask_blend_ps(k, vec_of(a), vec_of(b)), blend);
        lanes_of(_mm512_abs_ps(vec_of(a)), abs_v);
        lanes_of(_mm512_xor_ps(vec_of(a), vec_of(b)), x);
        for (int i = 0; i < 16; i++) {
            float want = (k >> i) & 1 ? b[i] : a[i]; /* mask bit set: the second source */
            TEST_REQUIRE(bits_of(blend[i]) == bits_of(want), "_mm512_mask_blend_ps lane %d", i);
            TEST_REQUIRE(bits_of(abs_v[i]) == (bits_of(a[i]) & 0x7fffffffu),
                         "_mm512_abs_ps(%08x) = %08x", bits_of(a[i]), bits_of(abs_v[i]));
            TEST_REQUIRE(bits_of(x[i]) == (bits_of(a[i]) ^ bits_of(b[i])), "_mm512_xor_ps");
        }
    }
    float m[16] = {-0.0f, from_bits(0xffc00000u), from_bits(0xff800001u), -INFINITY}, r[16];
    lanes_of(_mm512_abs_ps(vec_of(m)), r);
    ck_assert_uint_eq(bits_of(r[0]), 0x00000000u); /* -0.0 -> +0.0 */
    ck_assert_uint_eq(bits_of(r[1]), 0x7fc00000u); /* negative quiet NaN */
    ck_assert_uint_eq(bits_of(r[2]), 0x7f800001u); /* negative signalling NaN, as it is */
    ck_assert_uint_eq(bits_of(r[3]), 0x7f800000u);
}
END_TEST

/* VSCALEFPS with MXCSR.DAZ clear (SDM vol. 2, VSCALEFPS, and its table of special cases):
 * a * 2^floor(b), rounded once.  The table: a signalling NaN a gives a quiet a; a quiet
 * NaN a gives +inf for b = +inf, +0 for b = -inf, else a; a NaN b (a not NaN) a quiet b;
 * 0 * 2^+inf and inf * 2^-inf are the default NaN; other infinite b give an infinity or
 * a zero of a's sign (a itself where a is 0 or inf).  The finite case with ldexpf, which
 * rounds a * 2^k once (subnormal results included). */
static float scalef_reference(float a, float b)
{
    if (isnan(a)) {
        if (!(bits_of(a) & 0x400000u) || !isinf(b))
            return a; /* same_value: any NaN */
        return b > 0 ? INFINITY : 0.0f;
    }
    if (isnan(b))
        return b;
    if (isinf(b)) {
        if ((b > 0 && a == 0.0f) || (b < 0 && isinf(a)))
            return NAN;
        return (b > 0 && a != 0.0f) || isinf(a) ? copysignf(INFINITY, a) : copysignf(0.0f, a);
    }
    float k = floorf(b);
    return ldexpf(a, k < -1000.0f ? -1000 : k > 1000.0f ? 1000 : (int)k);
}

/* Every pair of values, then what exp_scale asks of it: a in [1/2, 2], b an integer
 * (or not) in [-160, 10], results across the subnormal range and its rounding ties. */
START_TEST(scalef_rounds_once)
{
    for (int p = 0; p < N_PAIRS; p += 16) {
        float a[16], b[16], got[16];
        pair_lanes(p, a, b);
        lanes_of(_mm512_scalef_ps(vec_of(a), vec_of(b)), got);
        for (int i = 0; i < 16; i++)
            TEST_REQUIRE(same_value(scalef_reference(a[i], b[i]), got[i]),
                         "_mm512_scalef_ps(%a, %a) = %a, want %a", (double)a[i], (double)b[i],
                         (double)got[i], (double)scalef_reference(a[i], b[i]));
    }
    uint64_t s = 99;
    for (int p = 0; p < 200000; p += 16) {
        float a[16], b[16], got[16];
        for (int i = 0; i < 16; i++) {
            s = s * 6364136223846793005u + 1442695040888963407u;
            uint32_t r = (uint32_t)(s >> 32);
            a[i] = (i & 1 ? 1.0f : 0.5f) + ldexpf((float)(r & 0x7fffff), i & 1 ? -23 : -24);
            if (i % 4 == 3) /* a float with few mantissa bits: exact ties below 2^-126 */
                a[i] = 1.0f + ldexpf((float)(r & 0xf), -4);
            b[i] = (float)((int)(r >> 24) % 171 - 160) + (i % 8 == 5 ? 0.75f : 0.0f);
        }
        lanes_of(_mm512_scalef_ps(vec_of(a), vec_of(b)), got);
        for (int i = 0; i < 16; i++)
            TEST_REQUIRE(bits_of(scalef_reference(a[i], b[i])) == bits_of(got[i]),
                         "_mm512_scalef_ps(%a, %a) = %a, want %a", (double)a[i], (double)b[i],
                         (double)got[i], (double)scalef_reference(a[i], b[i]));
    }
}
END_TEST

/* ---- rounding and conversions -------------------------------------------------------------- */

/* Round to nearest, ties to even, written out: below 2^23 a float has a fraction, at or
 * above it is an integer already. */
static float round_even_reference(float a)
{
    if (isnan(a) || !(fabsf(a) < 0x1p23f))
        return a;
    float t = truncf(a), frac = fabsf(a - t);
    float r = t;
    if (frac > 0.5f || (frac == 0.5f && fmodf(t, 2.0f) != 0.0f))
        r = t + copysignf(1.0f, a);
    return copysignf(r, a); /* -0.4 -> -0.0 */
}

static int32_t cvtt_reference(float a)
{
    /* SDM: the "integer indefinite" 0x80000000 for NaN and out-of-range sources */
    if (isnan(a) || a >= 0x1p31f || a < -0x1p31f)
        return INT32_MIN;
    return (int32_t)a; /* C conversion truncates */
}

START_TEST(roundscale_nearest_even)
{
    for (int p = 0; p < N_VALUES; p += 16) {
        float a[16], got[16];
        for (int i = 0; i < 16; i++)
            a[i] = values[(p + i) % N_VALUES];
        lanes_of(_mm512_roundscale_ps(vec_of(a), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC),
                 got);
        for (int i = 0; i < 16; i++) {
            float want = round_even_reference(a[i]);
            TEST_REQUIRE(same_value(want, got[i]), "_mm512_roundscale_ps(%a, 8) = %a, want %a",
                         (double)a[i], (double)got[i], (double)want);
        }
    }
    const float in[16] = {0.5f, 1.5f, 2.5f, -0.5f, -2.5f, 0.49999997f, 8388607.5f, -0.4f,
                          3.5f, -3.5f, 1e10f, -1e-45f, 4.5f, 5.5f, -5.5f, 126.5f};
    const float want[16] = {0.0f, 2.0f, 2.0f, -0.0f, -2.0f, 0.0f, 8388608.0f, -0.0f,
                            4.0f, -4.0f, 1e10f, -0.0f, 4.0f, 6.0f, -6.0f, 126.0f};
    float got[16];
    lanes_of(_mm512_roundscale_ps(vec_of(in), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC),
             got);
    for (int i = 0; i < 16; i++)
        TEST_REQUIRE(bits_of(got[i]) == bits_of(want[i]), "roundscale(%a) = %a, want %a",
                     (double)in[i], (double)got[i], (double)want[i]);
}
END_TEST

START_TEST(integer_conversion_and_exponent)
{
    for (int p = 0; p < N_PAIRS; p += 16) {
        float a[16], b[16];
        int32_t conv[16], sum[16], shifted[16];
        float as_float[16];
        pair_lanes(p, a, b);
        __m512i ia = _mm512_cvttps_epi32(vec_of(a));
        __m512i ib;
        memcpy(&ib, b, sizeof ib); /* any bit pattern as integers */
        memcpy(conv, &ia, sizeof conv);
        __m512i s = _mm512_add_epi32(ia, ib);
        memcpy(sum, &s, sizeof sum);
        __m512i sh = _mm512_slli_epi32(ib, 23);
        memcpy(shifted, &sh, sizeof shifted);
        lanes_of(_mm512_castsi512_ps(ib), as_float);
        for (int i = 0; i < 16; i++) {
            uint32_t ub = bits_of(b[i]);
            TEST_REQUIRE(conv[i] == cvtt_reference(a[i]), "_mm512_cvttps_epi32(%a) = %d",
                         (double)a[i], conv[i]);
            TEST_REQUIRE((uint32_t)sum[i] == (uint32_t)conv[i] + ub, "_mm512_add_epi32 wraps");
            TEST_REQUIRE((uint32_t)shifted[i] == ub << 23, "_mm512_slli_epi32(%08x, 23)", ub);
            TEST_REQUIRE(bits_of(as_float[i]) == ub, "_mm512_castsi512_ps");
        }
    }
    /* known answers at the range ends */
    const float in[8] = {2147483520.0f, 2147483648.0f, -2147483648.0f, -2147483904.0f,
                         -0.99f, NAN, -INFINITY, 1e-45f};
    const int32_t want[8] = {2147483520, INT32_MIN, INT32_MIN, INT32_MIN, 0, INT32_MIN,
                             INT32_MIN, 0};
    float lanes[16] = {0};
    memcpy(lanes, in, sizeof in);
    __m512i r = _mm512_cvttps_epi32(vec_of(lanes));
    int32_t got[16];
    memcpy(got, &r, sizeof got);
    for (int i = 0; i < 8; i++)
        ck_assert_int_eq(got[i], want[i]);
    /* set1_epi32 and the exponent trick of vf_pow2_rounded: (n + 127) << 23 is 2^n */
    __m512i e = _mm512_slli_epi32(_mm512_add_epi32(_mm512_set1_epi32(-3), _mm512_set1_epi32(127)), 23);
    lanes_of(_mm512_castsi512_ps(e), lanes);
    for (int i = 0; i < 16; i++)
        ck_assert_uint_eq(bits_of(lanes[i]), bits_of(0.125f));
}
END_TEST

START_TEST(sign_masks_and_bit_casts)
{
    for (int p = 0; p < N_PAIRS; p += 16) {
        float a[16], b[16];
        pair_lanes(p, a, b);
        __m512i bits = _mm512_castps_si512(vec_of(a));
        uint32_t as_int[16];
        memcpy(as_int, &bits, sizeof as_int);
        __mmask16 m = _mm512_movepi32_mask(bits);
        for (int i = 0; i < 16; i++) {
            TEST_REQUIRE(as_int[i] == bits_of(a[i]), "_mm512_castps_si512(%a)", (double)a[i]);
            /* the sign bit alone: -0.0 and negative NaNs set the lane, +NaN does not */
            TEST_REQUIRE(((m >> i) & 1u) == bits_of(a[i]) >> 31, "_mm512_movepi32_mask(%08x)",
                         bits_of(a[i]));
        }
    }
    float special[16] = {-0.0f, 0.0f, NAN, -NAN, INFINITY, -INFINITY, 1e-45f, -1e-45f,
                         1.0f, -1.0f, FLT_MAX, -FLT_MAX, 0x1p-126f, -0x1p-126f, 2.0f, -3.0f};
    ck_assert_uint_eq(_mm512_movepi32_mask(_mm512_castps_si512(vec_of(special))), 0xaaa9u);
}
END_TEST

START_TEST(halves_and_widening)
{
    for (int p = 0; p < N_PAIRS; p += 16) {
        float a[16], b[16], lo[8], hi[8], lo0[8];
        pair_lanes(p, a, b);
        __m512 v = vec_of(a);
        __m256 l = _mm512_castps512_ps256(v), h = _mm512_extractf32x8_ps(v, 1),
               l0 = _mm512_extractf32x8_ps(v, 0);
        memcpy(lo, &l, sizeof lo);
        memcpy(hi, &h, sizeof hi);
        memcpy(lo0, &l0, sizeof lo0);
        double wl[8], wh[8], acc[16];
        __m512d dl = _mm512_cvtps_pd(l), dh = _mm512_cvtps_pd(h);
        memcpy(wl, &dl, sizeof wl);
        memcpy(wh, &dh, sizeof wh);
        __m512d z = _mm512_setzero_pd();
        _mm512_storeu_pd(acc, _mm512_add_pd(_mm512_add_pd(z, dl), dh));
        _mm512_storeu_pd(acc + 8, z);
        for (int i = 0; i < 8; i++) {
            TEST_REQUIRE(bits_of(lo[i]) == bits_of(a[i]) && bits_of(lo0[i]) == bits_of(a[i]),
                         "low half lane %d", i);
            TEST_REQUIRE(bits_of(hi[i]) == bits_of(a[8 + i]), "_mm512_extractf32x8_ps(v, 1) "
                         "lane %d: %08x, want %08x", i, bits_of(hi[i]), bits_of(a[8 + i]));
            /* exact widening; a NaN stays a NaN of the same sign */
            double wa = (double)a[i], wb = (double)a[8 + i];
            TEST_REQUIRE(isnan(wa) ? isnan(wl[i]) && signbit(wl[i]) == signbit(wa)
                                   : memcmp(&wl[i], &wa, sizeof wa) == 0,
                         "_mm512_cvtps_pd(%a) = %a", (double)a[i], wl[i]);
            TEST_REQUIRE(isnan(wb) ? isnan(wh[i]) : memcmp(&wh[i], &wb, sizeof wb) == 0,
                         "_mm512_cvtps_pd high");
            double s = (0.0 + wa) + wb;
            TEST_REQUIRE(isnan(s) ? isnan(acc[i]) : memcmp(&acc[i], &s, sizeof s) == 0,
                         "_mm512_add_pd lane %d", i);
            TEST_REQUIRE(acc[8 + i] == 0.0 && !signbit(acc[8 + i]), "_mm512_setzero_pd");
        }
    }
}
END_TEST

/* ---- half precision ------------------------------------------------------------------------ */

/* A float16 bit pattern's value, and float32 bits, by the IEEE layout (SDM VCVTPH2PS: a
 * NaN becomes quiet and keeps its payload in the top mantissa bits). */
static uint32_t f16_widened_reference(uint16_t h)
{
    const uint32_t sign = (uint32_t)(h >> 15) << 31, e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
    if (e == 0x1f)
        return m ? sign | 0x7fc00000u | (m << 13) : sign | 0x7f800000u;
    double v = e ? ldexp((double)(1024 + m), (int)e - 25) : ldexp((double)m, -24);
    return sign | bits_of((float)v); /* exact: 11 bits */
}

/* f rounded to nearest, ties to even, into float16 (SDM VCVTPS2PH, imm8 0): by value in
 * double, where every step is exact. */
static uint16_t f16_rounded_reference(float f)
{
    const uint32_t b = bits_of(f);
    const uint16_t sign = (uint16_t)((b >> 16) & 0x8000u);
    if (isnan(f))
        return (uint16_t)(sign | 0x7e00u | ((b >> 13) & 0x1ffu));
    double a = fabs((double)f);
    if (a >= 65520.0) /* 65504 + half a unit, the tie, goes to the even infinity */
        return sign | 0x7c00u;
    int ex;
    frexp(a, &ex); /* a = m * 2^ex, m in [0.5, 1) */
    int e = a == 0.0 || ex - 1 < -14 ? -14 : ex - 1;
    double units = nearbyint(ldexp(a, 10 - e)); /* in units of the spacing 2^(e-10) */
    if (e == -14) /* subnormal or the smallest binade: units of 2^-24, 1024 is 2^-14 */
        return (uint16_t)(sign | (uint16_t)units);
    /* 1024..2048 units: the leading one is the exponent field's lowest bit, and 2048
     * carries into the next exponent */
    return (uint16_t)(sign | (uint16_t)(((unsigned)(e + 14) << 10) + (unsigned)units));
}

START_TEST(float16_conversions)
{
    /* every float16 pattern, widened */
    for (uint32_t first = 0; first < 65536; first += 16) {
        uint16_t h[16];
        float got[16];
        for (int i = 0; i < 16; i++)
            h[i] = (uint16_t)(first + (uint32_t)i);
        __m256i packed;
        memcpy(&packed, h, sizeof packed);
        __asm__ volatile("" : "+m"(packed));
        lanes_of(_mm512_cvtph_ps(packed), got);
        for (int i = 0; i < 16; i++)
            TEST_REQUIRE(bits_of(got[i]) == f16_widened_reference(h[i]),
                         "_mm512_cvtph_ps(%04x) = %08x, want %08x", h[i], bits_of(got[i]),
                         f16_widened_reference(h[i]));
    }
    /* every float32 top half with low halves around the rounding points of each float16
     * binade (bit 12 is the half unit of a normal float16; subnormal results round higher
     * up, inside the top half) */
    static const uint32_t low[] = {0x0000, 0x0001, 0x0fff, 0x1000, 0x1001, 0x1fff, 0x2000,
                                   0x3000, 0x5000, 0x7fff, 0x8000, 0xefff, 0xf000, 0xffff};
    for (uint32_t top = 0; top < 65536; top++) {
        for (size_t k = 0; k < sizeof low / sizeof low[0]; k += 16) {
            float in[16];
            uint16_t got[16];
            for (int i = 0; i < 16; i++)
                in[i] = from_bits(top << 16 | low[(k + (size_t)i) % (sizeof low / sizeof low[0])]);
            __m256i r = _mm512_cvtps_ph(vec_of(in), _MM_FROUND_TO_NEAREST_INT);
            memcpy(got, &r, sizeof got);
            for (int i = 0; i < 16; i++)
                TEST_REQUIRE(got[i] == f16_rounded_reference(in[i]),
                             "_mm512_cvtps_ph(%08x, 0) = %04x, want %04x", bits_of(in[i]),
                             got[i], f16_rounded_reference(in[i]));
        }
    }
    /* known answers: the overflow tie, the subnormal ties, a NaN's payload */
    const float in[16] = {65504.0f, 65519.996f, 65520.0f, -65520.0f, 0x1p-25f, 0x1.8p-24f,
                          0x1.8p-25f, 0x1p-24f, from_bits(0x7f802000u), from_bits(0xffc00001u),
                          1.0f + 0x1p-11f, 1.0f + 0x1.8p-10f, 0x1.ff8p-15f, 0x1.ffcp-15f,
                          -0.0f, INFINITY};
    const uint16_t want[16] = {0x7bff, 0x7bff, 0x7c00, 0xfc00, 0x0000, 0x0002, 0x0001,
                               0x0001, 0x7e01, 0xfe00, 0x3c00, 0x3c02, 0x03ff, 0x0400,
                               0x8000, 0x7c00};
    __m256i r = _mm512_cvtps_ph(vec_of(in), _MM_FROUND_TO_NEAREST_INT);
    uint16_t got[16];
    memcpy(got, &r, sizeof got);
    for (int i = 0; i < 16; i++)
        TEST_REQUIRE(got[i] == want[i], "_mm512_cvtps_ph(%a) = %04x, want %04x",
                     (double)in[i], got[i], want[i]);
}
END_TEST

START_TEST(bfloat16_integer_operations)
{
    for (int p = 0; p < N_PAIRS; p += 16) {
        float a[16], b[16];
        pair_lanes(p, a, b);
        __m512i ia = _mm512_castps_si512(vec_of(a)), ib = _mm512_castps_si512(vec_of(b));
        __mmask16 unord = _mm512_cmp_ps_mask(vec_of(a), vec_of(b), _CMP_UNORD_Q);
        __mmask16 k = (__mmask16)(p * 2654435761u >> 9);
        uint32_t sr[16], an[16], mo[16];
        __m512i v = _mm512_srli_epi32(ia, 16);
        memcpy(sr, &v, sizeof sr);
        v = _mm512_and_si512(ia, ib);
        memcpy(an, &v, sizeof an);
        v = _mm512_mask_or_epi32(ia, k, ib, _mm512_set1_epi32(0x400000));
        memcpy(mo, &v, sizeof mo);
        uint16_t narrow[16];
        __m256i n16 = _mm512_cvtepi32_epi16(ib);
        memcpy(narrow, &n16, sizeof narrow);
        uint32_t wide[16];
        v = _mm512_cvtepu16_epi32(n16);
        memcpy(wide, &v, sizeof wide);
        for (int i = 0; i < 16; i++) {
            uint32_t ua = bits_of(a[i]), ub = bits_of(b[i]);
            TEST_REQUIRE(((unord >> i) & 1) == (unsigned)(isnan(a[i]) || isnan(b[i])),
                         "_mm512_cmp_ps_mask(%a, %a, _CMP_UNORD_Q) lane %d", (double)a[i],
                         (double)b[i], i);
            TEST_REQUIRE(sr[i] == ua >> 16, "_mm512_srli_epi32(%08x, 16)", ua);
            TEST_REQUIRE(an[i] == (ua & ub), "_mm512_and_si512");
            /* mask bit set: the or of the two sources; clear: the first operand (src) */
            TEST_REQUIRE(mo[i] == ((k >> i) & 1 ? ub | 0x400000u : ua),
                         "_mm512_mask_or_epi32 lane %d", i);
            TEST_REQUIRE(narrow[i] == (uint16_t)ub, "_mm512_cvtepi32_epi16(%08x) = %04x", ub,
                         narrow[i]);
            TEST_REQUIRE(wide[i] == (ub & 0xffffu), "_mm512_cvtepu16_epi32(%04x) = %08x",
                         narrow[i], wide[i]);
        }
        /* vpermw with a zero mask (SDM VPERMW: word j of the result is word idx[j] & 31
         * of the source where mask bit j is set, else 0), with an index that varies with
         * p, over a source whose upper half is set too (from a 256-bit cast, the kernel
         * leaves it undefined: its index reads only words 0-15) */
        uint16_t src[32], idx[32], perm[32];
        memcpy(src, &ia, 32);
        memcpy(src + 16, &ib, 32);
        for (int w = 0; w < 32; w++)
            idx[w] = (uint16_t)((p * 2654435761u >> (w % 16)) + (unsigned)w * 7u);
        __m512i vs, vi;
        memcpy(&vs, src, sizeof vs);
        memcpy(&vi, idx, sizeof vi);
        const __mmask32 k32 = (__mmask32)(p * 2246822519u);
        v = _mm512_maskz_permutexvar_epi16(k32, vi, vs);
        memcpy(perm, &v, sizeof perm);
        for (int w = 0; w < 32; w++)
            TEST_REQUIRE(perm[w] == ((k32 >> w) & 1 ? src[idx[w] & 31] : 0),
                         "_mm512_maskz_permutexvar_epi16 word %d (index %u, mask %08x)", w,
                         idx[w], (unsigned)k32);
        /* the kernel's bfloat16 widening: word i of a 256-bit vector to the upper half of
         * lane i (_mm512_set_epi16 lists words 31 down to 0) */
        const __m512i up = _mm512_set_epi16(15, 0, 14, 0, 13, 0, 12, 0, 11, 0, 10, 0, 9, 0, 8, 0,
                                            7, 0, 6, 0, 5, 0, 4, 0, 3, 0, 2, 0, 1, 0, 0, 0);
        uint32_t widened[16];
        v = _mm512_maskz_permutexvar_epi16(0xAAAAAAAAu, up, _mm512_castsi256_si512(n16));
        memcpy(widened, &v, sizeof widened);
        for (int i = 0; i < 16; i++)
            TEST_REQUIRE(widened[i] == (uint32_t)narrow[i] << 16,
                         "bfloat16 widening by vpermw: lane %d %04x -> %08x", i, narrow[i],
                         widened[i]);
    }
}
END_TEST

/* ---- memory ------------------------------------------------------------------------------- */

START_TEST(unaligned_loads_and_stores)
{
    float src[48], dst[48];
    for (int i = 0; i < 48; i++)
        src[i] = values[i];
    for (int off = 0; off < 16; off++) {
        memset(dst, 0x5a, sizeof dst);
        _mm512_storeu_ps(dst + off, _mm512_loadu_ps(src + off));
        for (int i = 0; i < 48; i++) {
            uint32_t want = i >= off && i < off + 16 ? bits_of(src[i]) : 0x5a5a5a5au;
            TEST_REQUIRE(bits_of(dst[i]) == want, "loadu/storeu offset %d lane %d", off, i);
        }
    }
    float s[16];
    lanes_of(_mm512_set1_ps(-2.5f), s);
    for (int i = 0; i < 16; i++)
        ck_assert_uint_eq(bits_of(s[i]), bits_of(-2.5f));
}
END_TEST

/* The first n lanes, ending exactly at a PROT_NONE page: touching any other lane faults. */
START_TEST(masked_loads_and_stores_stay_inside)
{
    const size_t page = (size_t)sysconf(_SC_PAGESIZE);
    unsigned char *map = mmap(NULL, 3 * page, PROT_READ | PROT_WRITE,
                              MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ck_assert(map != MAP_FAILED);
    ck_assert_int_eq(mprotect(map, page, PROT_NONE), 0);
    ck_assert_int_eq(mprotect(map + 2 * page, page, PROT_NONE), 0);
    float *end = (float *)(map + 2 * page), *start = (float *)(map + page);
    for (int n = 0; n <= 16; n++) {
        const __mmask16 k = (__mmask16)((1u << n) - 1);
        /* at the end of the page: lanes n.. would be beyond it */
        float *p = end - n, got[16];
        for (int i = 0; i < n; i++)
            p[i] = values[i + 3];
        lanes_of(_mm512_maskz_loadu_ps(k, p), got);
        for (int i = 0; i < 16; i++)
            TEST_REQUIRE(bits_of(got[i]) == (i < n ? bits_of(values[i + 3]) : 0u),
                         "_mm512_maskz_loadu_ps n=%d lane %d", n, i);
        float lanes[16];
        for (int i = 0; i < 16; i++)
            lanes[i] = values[i + 20];
        memset(p, 0x5a, (size_t)n * sizeof(float));
        _mm512_mask_storeu_ps(p, k, vec_of(lanes));
        for (int i = 0; i < n; i++)
            TEST_REQUIRE(bits_of(p[i]) == bits_of(values[i + 20]), "mask_storeu n=%d", n);
        /* at the start of the page, the mask's upper lanes: lanes below 16-n are before it */
        const __mmask16 top = (__mmask16)~((1u << (16 - n)) - 1);
        float *q = start - (16 - n);
        memset(start, 0x5a, 16 * sizeof(float));
        lanes_of(_mm512_maskz_loadu_ps(top, q), got);
        _mm512_mask_storeu_ps(q, top, vec_of(lanes));
        for (int i = 0; i < 16; i++) {
            TEST_REQUIRE(bits_of(got[i]) == (i >= 16 - n ? 0x5a5a5a5au : 0u),
                         "maskz_loadu upper lanes n=%d lane %d", n, i);
            if (i >= 16 - n)
                TEST_REQUIRE(bits_of(q[i]) == bits_of(lanes[i]), "mask_storeu upper lanes");
        }
        TEST_REQUIRE(bits_of(start[n]) == 0x5a5a5a5au || n == 16, "stored past the mask");
    }
    munmap(map, 3 * page);
}
END_TEST

/* ---- SLEEF ---------------------------------------------------------------------------------- */

START_TEST(sleef_matches_scalar_fma)
{
    for (int p = 0; p < N_PAIRS; p += 16) {
        float a[16], b[16], e[16], l[16], l1[16], pw[16];
        pair_lanes(p, a, b);
        for (int i = 0; i < 16; i++)
            b[i] = fabsf(b[i]) < 64.0f ? b[i] : fmodf(b[i], 7.0f); /* exponents in range too */
        lanes_of(Sleef_expf16_u10avx512f(vec_of(a)), e);
        lanes_of(Sleef_logf16_u10avx512f(vec_of(a)), l);
        lanes_of(Sleef_log1pf16_u10avx512f(vec_of(a)), l1);
        lanes_of(Sleef_powf16_u10avx512f(vec_of(a), vec_of(b)), pw);
        for (int i = 0; i < 16; i++) {
            TEST_REQUIRE(same_value(Sleef_expf1_u10purecfma(a[i]), e[i]), "expf(%a)", (double)a[i]);
            TEST_REQUIRE(same_value(Sleef_logf1_u10purecfma(a[i]), l[i]), "logf(%a)", (double)a[i]);
            TEST_REQUIRE(same_value(Sleef_log1pf1_u10purecfma(a[i]), l1[i]), "log1pf(%a)",
                         (double)a[i]);
            TEST_REQUIRE(same_value(Sleef_powf1_u10purecfma(a[i], b[i]), pw[i]), "powf(%a, %a)",
                         (double)a[i], (double)b[i]);
        }
    }
}
END_TEST

/* Called by fidelity_main.c, which is compiled without AVX-512 flags and decides first
 * whether the CPU runs what this file is compiled for. */
int avx512_fidelity_run(void)
{
    make_values();
    Suite *s = suite_create("avx512-fidelity");
    TCase *tc = tcase_create("intrinsics");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, binary_arithmetic, ADD, MIN + 1);
    tcase_add_test(tc, max_min_nan_and_signed_zero);
    tcase_add_test(tc, sqrt_and_fmadd);
    tcase_add_test(tc, compare_predicates);
    tcase_add_test(tc, blend_abs_xor);
    tcase_add_test(tc, roundscale_nearest_even);
    tcase_add_test(tc, scalef_rounds_once);
    tcase_add_test(tc, integer_conversion_and_exponent);
    tcase_add_test(tc, sign_masks_and_bit_casts);
    tcase_add_test(tc, halves_and_widening);
    tcase_add_test(tc, float16_conversions);
    tcase_add_test(tc, bfloat16_integer_operations);
    tcase_add_test(tc, unaligned_loads_and_stores);
    tcase_add_test(tc, masked_loads_and_stores_stay_inside);
    tcase_add_test(tc, sleef_matches_scalar_fma);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
