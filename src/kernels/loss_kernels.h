/*
 * The per-element math of every loss, written once and instantiated per ISA.
 *
 * An ISA translation unit defines, before including this file:
 *   DAFL_ISA_SUFFIX           the name suffix (scalar, avx2, avx512, neon)
 *   DAFL_ISA_ENUM             its dafl_isa value
 *   VW                        floats per vector (1, 4, 8, 16); 16 % VW == 0
 *   vf, vm                    float vector and lane-mask types
 *   vf_load/vf_store          unaligned load / store of VW floats
 *   vf_set(f)                 broadcast
 *   vf_add/sub/mul/div(a, b)  IEEE-754 single operations, correctly rounded
 *   vf_sqrt(a)                IEEE-754 square root, correctly rounded
 *   vf_fma(a, b, c)           a*b + c with one rounding
 *   vf_max(a, b), vf_min      a > b ? a : b,  a < b ? a : b  (NaN: the second operand)
 *   vf_abs, vf_neg            clear / flip the sign bit
 *   vf_eq/lt/le/gt/ge         ordered comparisons -> vm
 *   vm_and, vm_or, vm_not, vm_any, vm_count (set lanes)
 *   vf_select(m, a, b)        m ? a : b per lane
 *   vf_select_sign(s, a, b)   s's sign bit set ? a : b per lane (-0.0 and NaNs by their
 *                             sign bit too)
 *   vf_pow2_rounded(t)        2^k for t = 0x1.8p23 + k, k an integer in [-126, 127]
 *                             (held in t's low mantissa bits): (bits(t) << 23) +
 *                             (127 << 23) as 32-bit integers; any value for other t
 *                             (not needed where the ISA defines vf_scalef)
 *   vf_log, vf_log1p, vf_pow
 *                             SLEEF u10 functions (the FMA variants where the CPU has FMA)
 *   vacc, vacc_zero, vacc_add(acc, part, v), vacc_store(acc, double[16])
 *                             16 double lanes; vacc_add adds v's VW lanes, converted
 *                             exactly to double, to lanes part*VW .. part*VW+VW-1
 * and may define (otherwise built here from the operations above):
 *   vf_neg_abs(a)             -|a|: set the sign bit                    (DAFL_HAVE_NEG_ABS)
 *   vf_neg_where(m, a)        m ? -a : a per lane                     (DAFL_HAVE_NEG_WHERE)
 *   vf_and_mask(m, a)         m ? a : +0 per lane                      (DAFL_HAVE_AND_MASK)
 *   vcnt, vcnt_zero, vcnt_add(cnt, m), vcnt_total(cnt)
 *                             a count of set mask lanes, kept in a vector (DAFL_HAVE_VCNT)
 *   vf_scalef(e, n)           e * 2^n rounded once (to nearest even, into the subnormal
 *                             range too) for an integer-valued n: AVX-512's vscalefps
 *                             (DAFL_HAVE_SCALEF; see exp_scale)
 * Every operation above gives the same bits on every ISA, so the functions below do too.
 * The whole project is compiled with -ffp-contract=off: an FMA happens only where written.
 */
#include <string.h>

#include "half.h"
#include "kernel_api.h"

#define DAFL_CAT2(a, b) a##b
#define DAFL_CAT(a, b) DAFL_CAT2(a, b)
#define KFN(name) DAFL_CAT(DAFL_CAT(dafl_, name), DAFL_CAT(_, DAFL_ISA_SUFFIX))
#define INLINE static inline __attribute__((always_inline))
#define GROUP 16 /* elements per step: one pass over the 16 virtual lanes */
#define PARTS (GROUP / VW)

/* The optional operations, from the required ones where the ISA has no shorter form. */
#if !defined(DAFL_HAVE_NEG_ABS)
INLINE vf vf_neg_abs(vf a) { return vf_neg(vf_abs(a)); }
#endif
#if !defined(DAFL_HAVE_NEG_WHERE)
INLINE vf vf_neg_where(vm m, vf a) { return vf_select(m, vf_neg(a), a); }
#endif
#if !defined(DAFL_HAVE_AND_MASK)
INLINE vf vf_and_mask(vm m, vf a) { return vf_select(m, a, vf_set(0.0f)); }
#endif
#if !defined(DAFL_HAVE_VCNT)
typedef unsigned vcnt;
INLINE vcnt vcnt_zero(void) { return 0; }
INLINE void vcnt_add(vcnt *c, vm m) { *c += vm_count(m); }
INLINE unsigned vcnt_total(vcnt c) { return c; }
#endif

/* ---- inline exp and log1p for the sigmoid family ---------------------------------- */
/* The hot path of every sigmoid-family loss needs exp(-|x|) and log1p of it.  These two
 * are written here with the operations above (no library call, no spilled registers),
 * so every ISA - the scalar kernels included - computes them with the same roundings.
 * Coefficients: near-minimax fits in double (weighted least squares, Lawson iterations),
 * rounded to float.  Both are evaluated by Horner's rule: the block loop runs them over a
 * whole sub-block at a time (see sigmoid_cache_fill), so their dependency chains overlap
 * and the fewest operations win, not the shortest chain.  Measured over every float of
 * their domains against double: exp_nonpositive 0.97 ULP, log1p_unit 1.74 ULP at most
 * (the losses built on them: test_accuracy). */

/* 0x1.8p23: a float in [2^23, 2^24) has integer spacing, so fma(a, b, ROUND_MAGIC + c)
 * rounds a*b to an integer k once and holds k + c in its low mantissa bits (k + c within
 * +-2^22). */
#define ROUND_MAGIC 12582912.0f

/* The scaling by 2^n that ends exp_nonpositive and softmax_exp_pair, for e in [1/2, 2]
 * and an integer n in [-150, 0], rounded once.  The reduction yields n twice: as the
 * float n, and as t = ROUND_MAGIC + 25 + n, whose low mantissa bits are n + 25.
 *   with vf_scalef (AVX-512): one vscalefps of e by n, which rounds e * 2^n once;
 *   otherwise: e * 2^(n+25), exact (the product stays normal), built from t's bits by
 *   two integer operations, then times the constant 2^-25, the one rounding.
 * Both round the same exact product once in the same mode, so the bits agree; the first
 * takes one FP operation where the second takes two and two integer ones.
 * exp_scale_arg picks the one the ISA's exp_scale reads. */
#if defined(DAFL_HAVE_SCALEF)
INLINE vf exp_scale_arg(vf t, vf n)
{
    (void)t;
    return n;
}
INLINE vf exp_scale(vf e, vf n) { return vf_scalef(e, n); }
#else
INLINE vf exp_scale_arg(vf t, vf n)
{
    (void)n;
    return t;
}
INLINE vf exp_scale(vf e, vf t)
{
    return vf_mul(vf_mul(e, vf_pow2_rounded(t)), vf_set(0x1p-25f));
}
#endif

/* exp(a) for a <= 0 (also -inf, NaN; the caller makes sure of the sign).
 *   a = n*ln2 + r, |r| <= ln2/2 (Cody-Waite: ln2 in a 9-bit head, exact in n*head, and a
 *   tail), exp(r) = 1 + r*(1 + r*P(r)), P of degree 4 (relative error ~1e-8 of exp),
 *   then times 2^n.
 * n lies in [-150, 0], partly below the normal range; exp_scale (above) multiplies by
 * 2^n with one rounding even for results in the subnormal range.  n is rounded by the
 * magic constant, so that the float n and the bits of 2^(n+25) come from one fused
 * multiply-add.  In two halves, the range reduction and the polynomial, for the passes
 * of sigmoid_cache_fill. */
typedef struct exp_reduced {
    vf r, k; /* exp(a) = exp(r) * 2^n, k is exp_scale_arg's choice of n or t */
} exp_reduced;

INLINE exp_reduced exp_reduce(vf a)
{
    /* Clamping at -104 keeps n in range: exp(-104) < 2^-150 rounds to 0 like every
     * smaller result.  The constant comes first so that NaN passes through max, and then
     * through every operation below. */
    exp_reduced x;
    vf ac = vf_max(vf_set(-104.0f), a);
    vf t = vf_fma(ac, vf_set(1.44269504f), vf_set(ROUND_MAGIC + 25.0f)); /* n + 25 */
    vf n = vf_sub(t, vf_set(ROUND_MAGIC + 25.0f));
    x.r = vf_fma(n, vf_set(-0.693359375f), ac);
    x.r = vf_fma(n, vf_set(2.12194440e-4f), x.r);
    x.k = exp_scale_arg(t, n);
    return x;
}

INLINE vf exp_finish(exp_reduced x)
{
    vf r = x.r;
    vf p = vf_fma(vf_set(0.0013941109646111727f), r, vf_set(0.008363175205886364f));
    p = vf_fma(p, r, vf_set(0.04166637361049652f));
    p = vf_fma(p, r, vf_set(0.16666576266288757f));
    p = vf_fma(p, r, vf_set(0.5f));
    vf e = vf_fma(vf_fma(p, r, vf_set(1.0f)), r, vf_set(1.0f));
    return exp_scale(e, x.k);
}

INLINE vf exp_nonpositive(vf a)
{
    return exp_finish(exp_reduce(a));
}

/* log1p(e) for e in [0, 1]: e * Q(e), Q of degree 9 fitted to log1p(e)/e (relative error
 * 5.7e-9), so small e keep full relative precision.  Q = 1 + e*Q1(e), and the result is
 * formed as e + e*(e*Q1): the last operation adds a correction of at most 0.31 of the
 * result to e exactly, so Horner's roundings reach the result scaled by that fraction
 * (e * Q rounds Q first: a whole extra rounding). */
INLINE vf log1p_unit(vf e)
{
    vf q = vf_fma(vf_set(-0.0033387308940291405f), e, vf_set(0.02027777023613453f));
    q = vf_fma(q, e, vf_set(-0.05775914341211319f));
    q = vf_fma(q, e, vf_set(0.10684537142515182f));
    q = vf_fma(q, e, vf_set(-0.15353277325630188f));
    q = vf_fma(q, e, vf_set(0.19692455232143402f));
    q = vf_fma(q, e, vf_set(-0.2495734691619873f));
    q = vf_fma(q, e, vf_set(0.333302766084671f));
    q = vf_fma(q, e, vf_set(-0.49999913573265076f));
    return vf_fma(vf_mul(e, q), e, e);
}

/* r = 1/(1+e) and er = e/(1+e) for e in [0, 1].  `precise` (the focal losses, which raise
 * one of them to the power alpha or gamma): er within about half an ULP and r within
 * three quarters, where the plain 1/(1+e) carries the rounding of 1+e as well as its own,
 * and e * r both of r's (measured: penalty focal 9.9 -> 6.7 ULP with pow_one_minus):
 *   d + d_lo = 1 + e exactly (Fast2Sum: 1 >= e);  er0 = e/d rounded;
 *   the residual e - er0*(d + d_lo), exact but for its last rounding (fused
 *   multiply-adds), times 1/(1+e) = 1 - er0 (only a correction's few bits are needed),
 *   gives er = er0 + residual * (1 - er0);  r = 1 - er (er <= 1/2: r >= 1/2 takes
 *   one rounding and a fraction er/r <= 1 of er's error).
 * BCE reads them to the first power only and takes the plain quotients (6 operations
 * fewer per vector: 3 against 9).  e = 0 gives r = 1, er = 0; e = 1 (x = +-0) gives 1/2 twice,
 * exactly; NaN stays NaN. */
INLINE void sigmoid_ratios(vf e, vf *r, vf *er, const int precise)
{
    const vf one = vf_set(1.0f);
    vf d = vf_add(one, e);
    if (!precise) {
        *r = vf_div(one, d);
        *er = vf_mul(e, *r);
        return;
    }
    vf d_lo = vf_add(vf_sub(one, d), e);
    vf er0 = vf_div(e, d);
    vf residual = vf_fma(vf_neg(er0), d_lo, vf_fma(vf_neg(er0), d, e));
    *er = vf_fma(residual, vf_sub(one, er0), er0);
    *r = vf_sub(one, *er);
}

/* ---- shared building blocks ------------------------------------------------------- */

/* b^n for a small non-negative integer n, by square-and-multiply from the top bit.
 * n is the same for every lane, so the branches are uniform. */
INLINE vf pow_int(vf b, int n)
{
    if (n == 0)
        return vf_set(1.0f);
    int bit = 31 - __builtin_clz((unsigned)n);
    vf r = b;
    while (bit-- > 0) {
        r = vf_mul(r, r);
        if ((n >> bit) & 1)
            r = vf_mul(r, b);
    }
    return r;
}

INLINE int is_half_integer(float k)
{
    return k >= 0.5f && k <= DAFL_MAX_INTEGER_EXPONENT + 0.5f && k - (float)(int)k == 0.5f;
}

/* (h + lo)^n = ph + pl for an integer n >= 1 and an unevaluated pair h + lo >= 0 (lo = 0:
 * a float): square-and-multiply from the top bit on pairs, each product's rounding error
 * recovered by a fused multiply-add and carried in pl:
 *   (ph + pl)^2 = ph*ph + (fma(ph, ph, -ph*ph) + 2*ph*pl)
 *   (ph + pl)(h + lo) = ph*h + (fma(ph, h, -ph*h) + (ph*lo + pl*h))
 * (the dropped terms pl^2 and pl*lo lie near 2^-48 of the result).  has_lo = 0 (lo is
 * known to be 0) drops the terms of lo.  n is the same for every lane, so the branches
 * are uniform. */
INLINE void pow_int_pair(vf h, vf lo, int n, vf *ph_out, vf *pl_out, const int has_lo)
{
    vf ph = h, pl = lo;
    int bit = 31 - __builtin_clz((unsigned)n), first = 1;
    while (bit-- > 0) {
        vf sq = vf_mul(ph, ph), sq_err = vf_fma(ph, ph, vf_neg(sq));
        /* has_lo = 0: the first square is exact as sq + sq_err */
        pl = !has_lo && first ? sq_err : vf_fma(vf_add(ph, ph), pl, sq_err);
        ph = sq;
        first = 0;
        if ((n >> bit) & 1) {
            vf cross = has_lo ? vf_fma(ph, lo, vf_mul(pl, h)) : vf_mul(pl, h);
            vf pr = vf_mul(ph, h);
            pl = vf_add(cross, vf_fma(ph, h, vf_neg(pr)));
            ph = pr;
        }
    }
    *ph_out = ph;
    *pl_out = pl;
}

/* (h + lo)^k for a half-integer k = n + 1/2 (0.5, 1.5, ... up to
 * DAFL_MAX_INTEGER_EXPONENT + 0.5) and a pair h + lo >= 0 as above, instead of SLEEF's
 * pow, to about half an ULP of the pair's exact power:
 *   sqrt(h + lo) = s + s_lo: s = sqrt(h), correctly rounded; the residual
 *   rem = h - s^2 + lo is exact but for the addition of lo (a fused multiply-add), and
 *   s_lo = rem / 2s (first order: s_lo / s is below 2^-23, its square far below a
 *   rounding);
 *   (h + lo)^n = ph + pl (pow_int_pair);
 *   (h + lo)^k = ph*s + (ph*s_lo + pl*s), rounded once at the end,
 * where ph * s_lo = rem * (s/2) * h^(n-1) without a division: ph / s is h^(n-1) * s to
 * a few ULP (s^2 = h to 2^-23), and a few ULP of a term below 2^-23 of the result are
 * far below its rounding.  The plain h^n * sqrt(h) rounds each product and the root:
 * four roundings at k = 2.5 (the focal losses' gamma or alpha 2.5 lost up to 2 ULP
 * there; without s_lo, 0.8).  k = 1/2 of a float is its square root, of a pair
 * s + rem/2s (one division, the only one).  An h below 2^-100 has a power that
 * underflows to 0 for k >= 3/2, so the residual's rounding in the subnormal range does
 * not matter; h = 0 gives 0, NaN stays NaN. */
INLINE vf pow_half_integer_pair(vf h, vf lo, float k, const int has_lo)
{
    const int n = (int)k;
    vf s = vf_sqrt(h);
    if (n == 0 && !has_lo)
        return s;
    vf rem = vf_fma(vf_neg(s), s, h);
    if (has_lo)
        rem = vf_add(rem, lo);
    if (n == 0)
        return vf_add(s, vf_div(rem, vf_max(vf_add(s, s), vf_set(1.17549435e-38f))));
    vf ph, pl;
    pow_int_pair(h, lo, n, &ph, &pl, has_lo);
    vf ph_over_2s = vf_mul(vf_mul(vf_set(0.5f), s), pow_int(h, n - 1));
    return vf_fma(ph, s, vf_fma(rem, ph_over_2s, vf_mul(pl, s)));
}

INLINE vf pow_half_integer(vf b, float k)
{
    return pow_half_integer_pair(b, vf_set(0.0f), k, 0);
}

/* b^k for a base b >= 0 (a probability) and any real k: small integers and
 * half-integers by multiplication (and a square root), every other k by SLEEF's pow
 * (1 ULP, its logarithm carried in extended precision, so that a tiny base and a
 * fractional or large exponent lose nothing). */
INLINE vf pow_real(vf b, float k)
{
    if (is_half_integer(k))
        return pow_half_integer(b, k);
    if (k >= 0.0f && k <= DAFL_MAX_INTEGER_EXPONENT && k == (float)(int)k)
        return pow_int(b, (int)k);
    return vf_pow(b, vf_set(k));
}

/* exp(-k * s) for s = s_hi + s_lo >= 0 held as an unevaluated float pair, k > 0.
 * Computing k*s in two parts keeps base^k accurate to a few ULP even when |k*s| is large
 * (a plain float product would lose |k*s| * 2^-24 relative).  The product's error term
 * t_err = fma(k, s_hi, -t) + k*s_lo is exact enough; exp(-t - t_err) = E * (1 - t_err). */
INLINE vf exp_neg_scaled(vf s_hi, vf s_lo, float k)
{
    vf kv = vf_set(k);
    vf t = vf_mul(kv, s_hi);
    vf t_err = vf_fma(kv, s_lo, vf_fma(kv, s_hi, vf_neg(t)));
    /* t = inf (s_hi = inf, or k * s_hi overflows) or s_lo NaN (two_sum of an infinite
     * s): no correction, exp gives 0 */
    t_err = vf_select(vf_le(vf_abs(t_err), vf_set(3.40282347e38f)), t_err, vf_set(0.0f));
    vf e = exp_nonpositive(vf_neg(t)); /* t >= 0 */
    return vf_fma(vf_neg(e), t_err, e);
}

/* (1 - y)^k for a target y in [0, 1], to about half an ULP: 1 - y = h + lo exactly
 * (Fast2Sum: 1 >= y), and the power is taken of the pair.  A plain pow of the rounded
 * 1 - y carries k times its rounding (beta = 4: two ULP) and the squarings' own.
 *   integer k: the pair's power by pow_int_pair up to the last step, whose product is
 *     rounded once: (ph + pl)^2 = fma(ph, ph, 2*ph*pl), (ph + pl)(h + lo) =
 *     fma(ph, h, ph*lo + pl*h);
 *   half-integer k: pow_half_integer_pair of the pair;
 *   any other k: pow_real(h, k) * (1 + k * lo/h), the first-order term of the pair
 *   (lo/h <= 2^-24: its square is far below a rounding; h = 0 has lo = 0). */
INLINE vf pow_one_minus_pair(vf y, int k_int, float k, vf *rounding)
{
    const vf one = vf_set(1.0f);
    *rounding = vf_set(0.0f);
    vf h = vf_sub(one, y);
    vf lo = vf_sub(vf_sub(one, h), y);
    if (k_int < 0 && is_half_integer(k))
        return pow_half_integer_pair(h, lo, k, 1);
    if (k_int < 0) {
        vf ph = pow_real(h, k);
        vf rel = vf_div(vf_mul(vf_set(k), lo), vf_max(h, vf_set(1.17549435e-38f)));
        return vf_fma(ph, rel, ph);
    }
    if (k_int <= 1)
        return k_int == 0 ? one : h; /* h is 1 - y rounded, as the pair would give */
    vf ph, pl; /* the pair's power up to the last step, which is rounded once */
    vf r, t;
    if (k_int & 1) { /* (h + lo)^(k_int - 1) has the same steps but the last multiply */
        pow_int_pair(h, lo, k_int - 1, &ph, &pl, 1);
        t = vf_fma(ph, lo, vf_mul(pl, h));
        r = vf_fma(ph, h, t);
        *rounding = vf_add(vf_fma(ph, h, vf_neg(r)), t);
        return r;
    }
    pow_int_pair(h, lo, k_int >> 1, &ph, &pl, 1);
    t = vf_mul(vf_add(ph, ph), pl);
    r = vf_fma(ph, ph, t);
    *rounding = vf_add(vf_fma(ph, ph, vf_neg(r)), t);
    return r;
}

INLINE vf pow_one_minus(vf y, int k_int, float k)
{
    vf unused;
    return pow_one_minus_pair(y, k_int, k, &unused);
}

/* s = a + b as an exact pair (Knuth's TwoSum).  An infinite a or b makes err NaN
 * (inf - inf); callers that can meet one deal with it. */
INLINE void two_sum(vf a, vf b, vf *s, vf *err)
{
    vf sum = vf_add(a, b);
    vf bb = vf_sub(sum, a);
    *s = sum;
    *err = vf_add(vf_sub(a, vf_sub(sum, bb)), vf_sub(b, bb));
}

/* (hi + lo) * v for an unevaluated pair hi + lo (lo below half an ULP of hi), rounded
 * once: lo * v's own rounding lies far below the result's. */
INLINE vf mul_pair(vf hi, vf lo, vf v)
{
    return vf_fma(hi, v, vf_mul(lo, v));
}

/* a * b where a == 0 means the term vanishes even if b is infinite (the limits
 * q * softplus(x) -> 0 as x -> +inf, and the like). */
INLINE vf mul_zero_wins(vf a, vf b)
{
    return vf_select(vf_eq(a, vf_set(0.0f)), vf_set(0.0f), vf_mul(a, b));
}

#if !defined(DAFL_SOFTMAX_ONLY)
/* ---- half precision: widening in, narrowing out ------------------------------------ */
/* An ISA with vector conversions defines DAFL_HAVE_HALF_VECTOR and
 *   vf_load_bf16(const uint16_t *), vf_load_f16(const uint16_t *)     VW elements widened
 *   vf_store_bf16(uint16_t *, vf), vf_store_f16(uint16_t *, vf)       VW rounded (RNE)
 * with the bits of src/kernels/half.h; otherwise they are built here from half.h's
 * scalar integer code, element by element. */
#if !defined(DAFL_HAVE_HALF_VECTOR)
INLINE vf vf_load_bf16(const uint16_t *p)
{
    float t[VW];
    for (int k = 0; k < VW; k++)
        t[k] = dafl_bf16_to_float(p[k]);
    return vf_load(t);
}
INLINE vf vf_load_f16(const uint16_t *p)
{
    float t[VW];
    for (int k = 0; k < VW; k++)
        t[k] = dafl_f16_to_float(p[k]);
    return vf_load(t);
}
INLINE void vf_store_bf16(uint16_t *p, vf v)
{
    float t[VW];
    vf_store(t, v);
    for (int k = 0; k < VW; k++)
        p[k] = dafl_float_to_bf16(t[k]);
}
INLINE void vf_store_f16(uint16_t *p, vf v)
{
    float t[VW];
    vf_store(t, v);
    for (int k = 0; k < VW; k++)
        p[k] = dafl_float_to_f16(t[k]);
}
#endif

/* VW elements at element i of a buffer of `dtype`, as float32; and back, rounded. */
INLINE vf vf_load_as(const float *p, int dtype, size_t i)
{
    const uint16_t *h = (const uint16_t *)(const void *)p + i;
    return dtype == DAFL_DTYPE_BFLOAT16  ? vf_load_bf16(h)
           : dtype == DAFL_DTYPE_FLOAT16 ? vf_load_f16(h)
                                         : vf_load(p + i);
}

INLINE void vf_store_as(float *p, int dtype, size_t i, vf v)
{
    uint16_t *h = (uint16_t *)(void *)p + i;
    if (dtype == DAFL_DTYPE_BFLOAT16)
        vf_store_bf16(h, v);
    else if (dtype == DAFL_DTYPE_FLOAT16)
        vf_store_f16(h, v);
    else
        vf_store(p + i, v);
}

/* Everything the sigmoid-family losses need from one exp and one log1p:
 *   e = exp(-|x|), l = log1p(e), r = 1/(1+e)
 *   p = sigmoid(x), q = sigmoid(-x)   (x >= +0: p = r, q = e*r; else swapped)
 *   sp_pos = softplus(x)  = max(x, 0)  + l  = -log q
 *   sp_neg = softplus(-x) = max(-x, 0) + l  = -log p
 * Nothing cancels; x = +-inf gives p, q in {0, 1} and the finite softplus exactly 0. */
typedef struct sigmoid_parts {
    vf p, q, sp_pos, sp_neg;
    vf relu_pos, relu_neg, l; /* the two softplus summands, for exact pairs */
    vf r, er;                 /* 1/(1+e) and e/(1+e): p and q in some order */
} sigmoid_parts;

/* e, l and r of up to SUB_BLOCK elements, computed in passes before the losses read
 * them.  One element's exp, log1p, division and loss form a single dependency chain of
 * about 90 cycles, longer than the core's schedulers can cover with other elements'
 * work; in passes each loop's iterations are independent and short (exp's range
 * reduction; its polynomial; log1p and the division), and the core overlaps them
 * (measured on Zen 3: 1.25x for exp and log1p in separate passes, 1.05x more for exp in
 * two).  The operations are the same, so are the bits. */
#define SUB_BLOCK (16 * GROUP)
/* What a kernel asks of the cache (the SIGMOID argument of the kernel macros below):
 * nothing (0), or e, l and the quotients of sigmoid_ratios, plain or precise. */
#define SIGMOID_PLAIN 1
#define SIGMOID_PRECISE 2
typedef struct sigmoid_cache {
    float er[SUB_BLOCK], l[SUB_BLOCK], r[SUB_BLOCK]; /* er holds e in the passes before */
} sigmoid_cache;

/* The parts of x from its l, r and er (see sigmoid_ratios). */
INLINE sigmoid_parts sigmoid_parts_of(vf x, vf l, vf r, vf er)
{
    const vf zero = vf_set(0.0f);
    sigmoid_parts s;
    s.l = l;
    s.r = r;
    s.er = er;
    s.p = vf_select_sign(x, s.er, s.r); /* x = -0: er = 1/2 = r */
    s.q = vf_select_sign(x, s.r, s.er);
    s.relu_pos = vf_max(x, zero);
    s.relu_neg = vf_max(vf_neg(x), zero);
    s.sp_pos = vf_add(s.relu_pos, s.l);
    s.sp_neg = vf_add(s.relu_neg, s.l);
    return s;
}

#if defined(DAFL_ONE_PASS_BLOCKS)
/* An ISA may compute everything in the loss loop instead (DAFL_ONE_PASS_BLOCKS; AArch64:
 * 32 registers, and wide out-of-order cores, where the passes' loads and stores would
 * cost 12 % more instructions). */
INLINE void sigmoid_cache_fill_as(sigmoid_cache *c, const float *x, int dtype, size_t at,
                                  size_t n, float *widened, const int precise)
{
    (void)precise;
    (void)c;
    (void)x;
    (void)dtype;
    (void)at;
    (void)n;
    (void)widened;
}

INLINE sigmoid_parts sigmoid_parts_at(const sigmoid_cache *c, size_t i, vf x,
                                     const int precise)
{
    (void)c;
    (void)i;
    vf e = exp_nonpositive(vf_neg_abs(x)), r, er;
    sigmoid_ratios(e, &r, &er, precise);
    return sigmoid_parts_of(x, log1p_unit(e), r, er);
}
#else
/* Elements at .. at+n-1 of x, an array of `dtype` (see vf_load_as, above), n a multiple
 * of GROUP; with `widened` (not NULL) x is also kept there in float32, for the steps;
 * precise: see sigmoid_ratios. */
INLINE void sigmoid_cache_fill_as(sigmoid_cache *c, const float *x, int dtype, size_t at,
                                  size_t n, float *widened, const int precise)
{
    for (size_t i = 0; i < n; i += VW) { /* exp's r and k pass through er and l */
        vf xv = vf_load_as(x, dtype, at + i);
        if (widened)
            vf_store(widened + i, xv);
        exp_reduced xr = exp_reduce(vf_neg_abs(xv));
        vf_store(c->er + i, xr.r);
        vf_store(c->l + i, xr.k);
    }
    for (size_t i = 0; i < n; i += VW) {
        exp_reduced xr = {vf_load(c->er + i), vf_load(c->l + i)};
        vf_store(c->er + i, exp_finish(xr));
    }
    for (size_t i = 0; i < n; i += VW) {
        vf e = vf_load(c->er + i), r, er;
        sigmoid_ratios(e, &r, &er, precise);
        vf_store(c->l + i, log1p_unit(e));
        vf_store(c->r + i, r);
        vf_store(c->er + i, er);
    }
}

/* The parts of the VW elements x at offset i of the cache. */
INLINE sigmoid_parts sigmoid_parts_at(const sigmoid_cache *c, size_t i, vf x,
                                     const int precise)
{
    (void)precise; /* the cache holds what the fill computed */
    return sigmoid_parts_of(x, vf_load(c->l + i), vf_load(c->r + i), vf_load(c->er + i));
}
#endif

/* The same parts seen from the answer a target asks for.  With xs = -x where `flip`
 * (y == 1: the right answer is "positive") and xs = x elsewhere:
 *   m = sigmoid(xs)  the probability of the wrong answer
 *   o = sigmoid(-xs) that of the right one
 *   c = softplus(xs) = max(xs, 0) + l = -log o,   -log m = m_relu + l, m_relu = max(-xs, 0)
 * the values sigmoid_parts' p, q, sp_pos, sp_neg give through three selects, in fewer
 * operations.  The selects read xs's sign bit: xs = -0 takes e*r where xs = +0 takes r,
 * both exactly 1/2. */
typedef struct answer_parts {
    vf m, o, c, m_relu;
} answer_parts;

INLINE answer_parts answer_of_signed(const sigmoid_parts *s, vf xs)
{
    const vf zero = vf_set(0.0f);
    answer_parts a;
    a.m = vf_select_sign(xs, s->er, s->r);
    a.o = vf_select_sign(xs, s->r, s->er);
    a.c = vf_add(vf_max(xs, zero), s->l);
    a.m_relu = vf_max(vf_neg(xs), zero);
    return a;
}

INLINE answer_parts answer_of(const sigmoid_parts *s, vf x, vm flip)
{
    return answer_of_signed(s, vf_neg_where(flip, x));
}

/* m^k of the wrong answer's probability for a real k that is not a small integer:
 * half-integers by pow_half_integer, anything else as exp(-k * (-log m)) with
 * -log m = m_relu + l held as an exact pair (exp_neg_scaled), so a large |x| loses
 * nothing to the rounding of -log m. */
INLINE vf answer_pow(const answer_parts *a, const sigmoid_parts *s, float k)
{
    if (is_half_integer(k))
        return pow_half_integer(a->m, k);
    vf hi, lo;
    two_sum(a->m_relu, s->l, &hi, &lo);
    return exp_neg_scaled(hi, lo, k);
}

/* The same for o * c, a probability of the right answer times the cross-entropy of the
 * logit, where c is infinite only together with o == 0 (x = +-inf on the wrong side):
 * clamping c to the largest float makes that product 0 in one operation instead of a
 * compare and a select.  Every other product, NaN included, is the plain o * c. */
INLINE vf mul_answer_entropy(vf o, vf c)
{
    return vf_mul(o, vf_min(vf_set(3.40282347e38f), c));
}

typedef struct loss_grad {
    vf loss;
    vf grad;       /* the gradient to store: grad_factor applied */
    vm positive;   /* y == 1 */
} loss_grad;

/* ---- 2.1 penalty-reduced focal loss ----------------------------------------------- */
/* With m the probability of the wrong answer, o = 1 - m that of the right one, and
 * c = -log(o) the cross-entropy:
 *   y == 1: m = q, o = p, c = softplus(-x), W = pos_weight,            sign -1
 *   y <  1: m = p, o = q, c = softplus(x),  W = neg_weight*(1-y)^beta,  sign +1
 *   l = W * m^alpha * c
 *   logits:        dl/dx = sign * W * m^alpha * (m + alpha * o * c)
 *   probabilities: dl/dp = sign * W * (alpha * m^(alpha-1) * c + m^alpha / o)
 * which is SPEC 2.1 written once for both branches.  On logits, W m^alpha is formed once
 * for the loss and the gradient, and the sign rides on grad_factor. */
/* mode, alpha_int, beta_int: compile-time constants where the caller knows them (the
 * CornerNet defaults get straight-line code), or RUNTIME to read them from the job;
 * unit_weights: pos_weight and neg_weight are known to be 1 (no multiplications);
 * all_negative: every target is known to be 0 (a block that no keypoint reaches, see
 * src/keypoints.c), so the positive branch drops out: y == 1 is false in every lane and
 * W = neg_weight * (1-0)^beta = neg_weight exactly (1^beta is 1 by multiplication, by
 * pow_real's square root and by SLEEF's pow alike), the same bits as reading zeros.
 * s: the sigmoid parts of x (logit modes only). */
#define RUNTIME (-2)
INLINE loss_grad penalty_focal_math(const dafl_pf_job *j, vf x, vf y,
                                    const sigmoid_parts *s, const int want_grad,
                                    const int mode_c, const int alpha_c, const int beta_c,
                                    const int unit_weights, const int all_negative)
{
    const int mode = mode_c == RUNTIME ? j->mode : mode_c;
    const int alpha_int = alpha_c == RUNTIME ? j->alpha_int : alpha_c;
    const int beta_int = beta_c == RUNTIME ? j->beta_int : beta_c;
    const vf one = vf_set(1.0f), zero = vf_set(0.0f);
    const vf factor = vf_set(j->io.grad_factor);
    loss_grad r;
    r.positive = all_negative ? vf_lt(zero, zero) : vf_eq(y, one);
    vm pos = r.positive;
    /* W_lo: the rounding error of (1-y)^beta, times neg_weight (read where the gradient
     * takes W * m^alpha as a pair, wm_pair below) */
    vf W, W_lo = zero;
    if (all_negative) {
        W = unit_weights ? one : vf_set(j->neg_weight);
    } else {
        /* (1-y)^beta, or exactly 1 where every target of the vector is 0 (most vectors
         * of a heatmap: pow_one_minus gives 1 there too, in 10 operations for beta 4) */
        vf w_neg = one, w_neg_lo = zero;
        if (vm_any(vm_not(vf_eq(y, zero))))
            w_neg = pow_one_minus_pair(y, beta_int, j->beta, &w_neg_lo);
        if (!unit_weights) {
            w_neg = vf_mul(vf_set(j->neg_weight), w_neg);
            w_neg_lo = vf_mul(vf_set(j->neg_weight), w_neg_lo);
        }
        /* 1 - y = 0 where y == 1, so w_neg and w_neg_lo are 0 there */
        W_lo = w_neg_lo;
        if (unit_weights && beta_c > 0)
            W = vf_add(w_neg, vf_and_mask(pos, one)); /* exactly */
        else
            W = vf_select(pos, unit_weights ? one : vf_set(j->pos_weight), w_neg);
    }

    vf m, o, c, m_alpha;
    if (mode == DAFL_INPUT_PROBABILITIES) {
        vf p = x, q = vf_sub(one, x);
        m = vf_select(pos, q, p);
        if (j->log_eps == 0.0f) {
            vf nlp = vf_neg(vf_log(p)), nlq = vf_neg(vf_log1p(vf_neg(p)));
            o = vf_select(pos, p, q);
            c = vf_select(pos, nlp, nlq);
        } else {
            /* mmdetection's -log(p + eps), -log(1 - p + eps), rounded as it rounds them
             * (float sums); d/dp -log(o + eps) = -1/(o + eps), so o + eps takes o's
             * place in the gradient below. */
            o = vf_add(vf_select(pos, p, q), vf_set(j->log_eps));
            c = vf_neg(vf_log(o));
        }
        vf m_alpha_1; /* m^(alpha-1) */
        if (alpha_int >= 1) {
            m_alpha_1 = pow_int(m, alpha_int - 1);
            m_alpha = vf_mul(m_alpha_1, m);
        } else if (alpha_int == 0) {
            m_alpha_1 = zero; /* multiplied by alpha = 0 below */
            m_alpha = one;
        } else {
            m_alpha = pow_real(m, j->alpha);
            m_alpha_1 = pow_real(m, j->alpha - 1.0f);
        }
        r.loss = vf_mul(W, vf_mul(m_alpha, c));
        if (want_grad) {
            vf t1 = vf_select(vf_eq(c, zero), zero, /* m = 0: alpha m^(alpha-1) c -> 0 */
                              mul_zero_wins(vf_mul(vf_set(j->alpha), m_alpha_1), c));
            vf g = vf_add(t1, vf_div(m_alpha, o));
            vf Ws = all_negative ? W : vf_neg_where(pos, W);
            r.grad = vf_mul(vf_mul(Ws, g), factor);
            /* o = p below 1/FLT_MAX (y == 1): m^alpha / o overflows, the reduced gradient
             * need not.  There g is formed as g * 2^-64 with o * 2^64 (exact for so small
             * an o), and the factor is applied before the 2^64. */
            vm overflow = vm_and(vf_gt(o, zero), vf_gt(vf_abs(g), vf_set(3.40282347e38f)));
            if (vm_any(overflow)) {
                vf g_small = vf_add(vf_mul(t1, vf_set(0x1p-64f)),
                                    vf_div(m_alpha, vf_mul(o, vf_set(0x1p64f))));
                vf scaled = vf_mul(vf_mul(Ws, g_small), factor);
                r.grad = vf_select(overflow, vf_mul(scaled, vf_set(0x1p64f)), r.grad);
            }
        }
        return r;
    }

    answer_parts a = all_negative ? answer_of_signed(s, x) : answer_of(s, x, pos);
    m = a.m;
    o = a.o;
    c = a.c;
    m_alpha = alpha_int >= 0 ? pow_int(m, alpha_int) : answer_pow(&a, s, j->alpha);
    /* W * m^alpha: no multiplication where W is known to be 1 */
    vf wm = all_negative && unit_weights ? m_alpha : vf_mul(W, m_alpha);
    /* With an alpha that is not an integer, the gradient takes W * m^alpha as the exact
     * pair wm + wm_lo (as sigmoid focal's hard targets take a_t * m^gamma, below): W's
     * product then rounds only inside the product with the bracket. */
    const int wm_pair = alpha_int < 0 && !(all_negative && unit_weights);
    vf wm_lo = wm_pair ? vf_fma(W_lo, m_alpha, vf_fma(W, m_alpha, vf_neg(wm))) : zero;
    r.loss = vf_mul(wm, c);
    vm clamped = vf_lt(zero, zero); /* all false */
    if (mode == DAFL_INPUT_CLAMPED_LOGITS) {
        /* p = clamp(sigmoid(x), eps, 1-eps): below, p = eps, q = 1-eps; above, the
         * mirror image.  p or q below eps is m or o below eps; m is the one clamped to
         * eps when it is below, else o is, and m becomes m_c = 1 - eps.  The loss there is
         * W * m_c^alpha * (-log(1 - m_c)): W times one of two constants of the call (the
         * logarithms are the job's), and the gradient is 0. */
        const vf eps = vf_set(j->eps), one_m_eps = vf_set(j->one_minus_eps);
        const vf nl_eps = vf_set(j->neglog_eps), nl_1m = vf_set(j->neglog_1m_eps);
        vm m_is_eps = vf_lt(m, eps);
        clamped = vm_or(m_is_eps, vf_lt(o, eps));
        vf k = zero;
        if (alpha_int >= 0) /* the same in every lane and call: computed outside the loop */
            k = vf_select(m_is_eps, vf_mul(pow_int(eps, alpha_int), nl_1m),
                          vf_mul(pow_int(one_m_eps, alpha_int), nl_eps));
        else if (vm_any(clamped))
            k = vf_mul(pow_real(vf_select(m_is_eps, eps, one_m_eps), j->alpha),
                       vf_select(m_is_eps, nl_1m, nl_eps));
        r.loss = vf_select(clamped, all_negative && unit_weights ? k : vf_mul(W, k), r.loss);
    }
    if (want_grad) {
        vf inner = vf_fma(vf_set(j->alpha), mul_answer_entropy(o, c), m);
        vf signed_factor = all_negative ? factor : vf_neg_where(pos, factor);
        vf wm_inner = wm_pair ? mul_pair(wm, wm_lo, inner) : vf_mul(wm, inner);
        r.grad = vf_mul(wm_inner, signed_factor);
        if (mode == DAFL_INPUT_CLAMPED_LOGITS)
            r.grad = vf_and_mask(vm_not(clamped), r.grad);
    }
    return r;
}

/* ---- 2.2 sigmoid focal loss -------------------------------------------------------- */
/* The rounding error of a soft target's m = fma(y, q, (1-y)*p), to first order: the
 * error of 1 - y (exact by Fast2Sum), of the product (1-y)*p (a fused multiply-add) and
 * of the fused multiply-add's own rounding (the exact y*q + P against m: y*q's error by
 * a fused multiply-add, the sum's by TwoSum).  A half-integer gamma raises the pair, so
 * m's rounding does not count gamma times. */
INLINE vf soft_m_rounding(const sigmoid_parts *s, vf y, vf omy, vf m)
{
    const vf one = vf_set(1.0f);
    vf omy_lo = vf_sub(vf_sub(one, omy), y);
    vf P = vf_mul(omy, s->p), P_err = vf_fma(omy, s->p, vf_neg(P));
    vf yq = vf_mul(y, s->q), yq_err = vf_fma(y, s->q, vf_neg(yq));
    vf sum, sum_err;
    two_sum(yq, P, &sum, &sum_err);
    /* m - sum: both round yq + P (m from the exact y*q), so it is 0 or an ULP of m */
    vf lo = vf_add(vf_add(sum_err, vf_sub(sum, m)), vf_add(yq_err, P_err));
    return vf_fma(omy_lo, s->p, lo);
}

/*   ce = y*softplus(-x) + (1-y)*softplus(x),  m = y*q + (1-y)*p,
 *   a_t = alpha*y + (1-alpha)*(1-y),  l = a_t * m^gamma * ce,
 *   dl/dx = a_t * m^gamma * (gamma * (p*q/m) * (1-2y) * ce + (p - y))
 * with p - y = (1-y)*p - y*q and p*q/m = p (y == 1), q (y == 0): no cancellation for
 * hard targets, and the 0 * inf limits resolved to 0.  A hard target is the answer_of
 * view (m, o = p*q/m, ce = c, p - y = -+m), where the bracket is
 * -+(gamma * o * c + m), the sign riding on grad_factor as in penalty focal; the general
 * formulas run only for vectors that hold a soft target.
 * gamma_halves: gamma as a compile-time count of halves (4: gamma 2), or RUNTIME. */
INLINE loss_grad sigmoid_focal_math(const dafl_sf_job *j, vf x, vf y,
                                    const sigmoid_parts *s, const int want_grad,
                                    const int gamma_halves)
{
    const int gamma_int = gamma_halves == RUNTIME ? j->gamma_int
                          : gamma_halves % 2 == 0 ? gamma_halves / 2 : -1;
    const float gamma = gamma_halves == RUNTIME ? j->gamma : 0.5f * (float)gamma_halves;
    const vf one = vf_set(1.0f), zero = vf_set(0.0f);
    const vf factor = vf_set(j->io.grad_factor);
    loss_grad r;
    vm y1 = vf_eq(y, one), y0 = vf_eq(y, zero), hard = vm_or(y0, y1);
    const int any_soft = vm_any(vm_not(hard));
    r.positive = y1;
    answer_parts a = answer_of(s, x, y1);
    vf omy = vf_sub(one, y);
    vf m = a.m, ce = a.c;
    if (any_soft) {
        m = vf_select(hard, m, vf_fma(y, s->q, vf_mul(omy, s->p)));
        ce = vf_select(hard, ce, vf_fma(y, s->sp_neg, vf_mul(omy, s->sp_pos)));
    }

    vf m_gamma;
    if (gamma_int >= 0) {
        m_gamma = pow_int(m, gamma_int);
    } else {
        m_gamma = answer_pow(&a, s, gamma); /* right for hard targets */
        if (any_soft)
            m_gamma = vf_select(hard, m_gamma,
                                is_half_integer(gamma) ? pow_half_integer_pair(
                                                             m, soft_m_rounding(s, y, omy, m),
                                                             gamma, 1)
                                                       : pow_real(m, gamma));
    }
    /* a_t * m^gamma, once for the loss and the gradient.  With a gamma that is not an
     * integer, the hard targets' gradient takes it as the exact pair am + am_lo (a fused
     * multiply-add gives the product's rounding error), rounded only inside the product
     * with the bracket: the pair power already spends its operations on rounding m^gamma
     * once, and a_t's rounding (0.75 is not a power of two) cost 0.5 ULP more of the
     * gradient at gamma 2.5 (8.30 -> 7.79 ULP; the loss, 7.34 ULP, keeps the plain
     * product).  The soft targets' gradient keeps the plain product: its worst case is
     * set by the errors of its two terms, and there the pair made it worse (10.12 ->
     * 11.12 ULP at gamma 2.5: a_t's rounding had partly cancelled them).  Integer gammas
     * (the default 2) keep the plain product for speed. */
    vf am = m_gamma, am_lo = zero;
    const int am_pair = gamma_int < 0 && j->alpha >= 0.0f;
    if (j->alpha >= 0.0f) {
        vf a_t = vf_fma(vf_set(j->alpha), y, vf_mul(vf_set(j->one_minus_alpha), omy));
        am = vf_mul(a_t, m_gamma);
        if (am_pair)
            am_lo = vf_fma(a_t, m_gamma, vf_neg(am));
    }
    r.loss = vf_mul(am, ce);
    if (want_grad) {
        /* soft targets too: ce = inf means x = +-inf, where p*q = 0 */
        vf d = gamma != 0.0f ? vf_fma(vf_set(gamma), mul_answer_entropy(a.o, ce), a.m)
                                : a.m;
        vf am_d = am_pair ? mul_pair(am, am_lo, d) : vf_mul(am, d);
        r.grad = vf_mul(am_d, vf_neg_where(y1, factor));
        if (any_soft) {
            vf p_minus_y = vf_fma(omy, s->p, vf_neg(vf_mul(y, s->q)));
            vf d_soft = p_minus_y;
            if (gamma != 0.0f) {
                vf pq_over_m = vf_div(vf_mul(s->p, s->q), m);
                vf one_m_2y = vf_fma(vf_set(-2.0f), y, one);
                vf term = vf_mul(vf_mul(vf_set(gamma), one_m_2y),
                                 mul_answer_entropy(pq_over_m, ce));
                d_soft = vf_add(term, p_minus_y);
            }
            r.grad = vf_select(hard, r.grad, vf_mul(vf_mul(am, d_soft), factor));
        }
    }
    return r;
}

/* ---- 2.3 binary cross-entropy with logits ------------------------------------------ */
/*   l = pos_weight*y*softplus(-x) + (1-y)*softplus(x),  dl/dx = (1-y)*p - pos_weight*y*q
 * pw: pos_weight in every lane, or each lane's class weight (the same operations).
 * With pos_weight 1 (unit_weight), a hard target is the answer_of view: l = c and
 * dl/dx = -+m, the same bits as the general formulas give there; those run only for
 * vectors that hold a soft target. */
INLINE loss_grad bce_math(const dafl_bce_job *j, vf x, vf y, const sigmoid_parts *s,
                          const int want_grad, const int unit_weight, vf pw)
{
    const vf one = vf_set(1.0f), zero = vf_set(0.0f), factor = vf_set(j->io.grad_factor);
    loss_grad r;
    vm y1 = vf_eq(y, one), y0 = vf_eq(y, zero);
    r.positive = y1;
    vm hard = vm_or(y0, y1);
    if (unit_weight) {
        answer_parts a = answer_of(s, x, y1);
        r.loss = a.c;
        if (want_grad)
            r.grad = vf_mul(a.m, vf_neg_where(y1, factor));
        if (!vm_any(vm_not(hard)))
            return r;
    }
    vf omy = vf_sub(one, y);
    vf pwy = unit_weight ? y : vf_mul(pw, y);
    vf ce = vf_fma(pwy, s->sp_neg, vf_mul(omy, s->sp_pos));
    /* with unit_weight, the hard lanes are taken from above */
    vf loss = unit_weight ? ce : vf_select(y1, vf_mul(pw, s->sp_neg), vf_select(y0, s->sp_pos, ce));
    vf grad = zero;
    if (want_grad)
        grad = vf_mul(vf_fma(omy, s->p, vf_neg(vf_mul(pwy, s->q))), factor);
    r.loss = unit_weight ? vf_select(hard, r.loss, loss) : loss;
    if (want_grad)
        r.grad = unit_weight ? vf_select(hard, r.grad, grad) : grad;
    return r;
}

/* ---- 2.5 heatmap MSE ---------------------------------------------------------------- */
/*   l = w * (x - y)^2,  dl/dx = 2w * (x - y) */
INLINE loss_grad mse_math(const dafl_mse_job *j, vf x, vf y, vf w, const int want_grad)
{
    loss_grad r;
    vf d = vf_sub(x, y);
    r.positive = vf_eq(y, vf_set(1.0f));
    r.loss = vf_mul(w, vf_mul(d, d));
    if (want_grad)
        r.grad = vf_mul(vf_mul(vf_add(w, w), d), vf_set(j->io.grad_factor));
    return r;
}

/* ---- the block loop shared by the element-wise losses ------------------------------ */

/* Lanes at or beyond n (a partial group) are masked out. */
INLINE vm lanes_below(int part, size_t n)
{
    return vf_lt(vf_load(dafl_lane_index16 + part * VW), vf_set((float)n));
}

/* A partial group's n < GROUP elements into a zero-filled stack buffer, and back out.  An
 * ISA with masked loads and stores defines DAFL_HAVE_TAIL_COPY and its own versions (one
 * masked load or store instead of the memcpy call). */
#if !defined(DAFL_HAVE_TAIL_COPY)
INLINE void tail_copy_in(float buf[GROUP], const float *src, size_t n)
{
    memset(buf, 0, GROUP * sizeof(float));
    memcpy(buf, src, n * sizeof(float));
}

INLINE void tail_copy_out(float *dst, const float buf[GROUP], size_t n)
{
    memcpy(dst, buf, n * sizeof(float));
}
#endif

/* ---- half precision: runs of whole vectors, and partial groups ------------------- */
/* GROUP floats rounded into bfloat16, src[0..GROUP) to p[0..GROUP): vector by vector, or
 * by the ISA's own version (DAFL_HAVE_STORE_BF16_GROUP) where rounding two vectors
 * together costs fewer operations (AVX2: one pack for both, and one NaN test). */
#if !defined(DAFL_HAVE_STORE_BF16_GROUP)
INLINE void vf_store_bf16_group(uint16_t *p, const float *src)
{
    for (int part = 0; part < PARTS; part++)
        vf_store_bf16(p + part * VW, vf_load(src + part * VW));
}
#endif

/* Elements src_at .. src_at+n-1 of a buffer of src_dtype into dst_at .. of one of
 * dst_dtype, n a multiple of VW: widening with dst_dtype float32, narrowing with
 * src_dtype float32 (that side's branch folds away, and the other side's dtype is the
 * same for the whole loop, so the compiler hoists its branch). */
INLINE void convert_vectors(float *dst, int dst_dtype, size_t dst_at, const float *src,
                            int src_dtype, size_t src_at, size_t n)
{
    for (size_t i = 0; i < n; i += VW)
        vf_store_as(dst, dst_dtype, dst_at + i, vf_load_as(src, src_dtype, src_at + i));
}

/* Elements at .. at+n-1 of a buffer of `dtype` into float32 dst[0..n), and float32
 * src[0..n) rounded into them (n a multiple of VW): for a loop that keeps a run of
 * elements in float32 on the stack.  The element-wise block kernel widens in its steps
 * and narrows each sub-block's gradient with half_narrow. */
INLINE void half_widen(float *dst, const float *src, int dtype, size_t at, size_t n)
{
    convert_vectors(dst, DAFL_DTYPE_FLOAT32, 0, src, dtype, at, n);
}

INLINE void half_narrow(float *dst, int dtype, size_t at, const float *src, size_t n)
{
    size_t i = 0;
    if (dtype == DAFL_DTYPE_BFLOAT16)
        for (; i + GROUP <= n; i += GROUP)
            vf_store_bf16_group((uint16_t *)(void *)dst + at + i, src + i);
    convert_vectors(dst, dtype, at + i, src + i, DAFL_DTYPE_FLOAT32, 0, n - i);
}

/* A partial group (n < GROUP) in and out, element by element, zero-filled beyond n. */
INLINE void half_widen_tail(float buf[GROUP], const float *src, int dtype, size_t at, size_t n)
{
    const uint16_t *h = (const uint16_t *)(const void *)src + at;
    memset(buf, 0, GROUP * sizeof(float));
    for (size_t i = 0; i < n; i++)
        buf[i] = dtype == DAFL_DTYPE_BFLOAT16  ? dafl_bf16_to_float(h[i])
                 : dtype == DAFL_DTYPE_FLOAT16 ? dafl_f16_to_float(h[i])
                                               : src[at + i];
}

INLINE void half_narrow_tail(float *dst, int dtype, size_t at, const float buf[GROUP], size_t n)
{
    uint16_t *h = (uint16_t *)(void *)dst + at;
    for (size_t i = 0; i < n; i++) {
        if (dtype == DAFL_DTYPE_BFLOAT16)
            h[i] = dafl_float_to_bf16(buf[i]);
        else if (dtype == DAFL_DTYPE_FLOAT16)
            h[i] = dafl_float_to_f16(buf[i]);
        else
            dst[at + i] = buf[i];
    }
}

/* The block loop's partial group (n < GROUP) for either element type (half: see
 * DEFINE_BLOCK_KERNEL; a constant at every call): in, zero-filled beyond n, and out. */
INLINE void tail_in(float buf[GROUP], const float *src, int dtype, size_t at, size_t n,
                    const int half)
{
    if (half)
        half_widen_tail(buf, src, dtype, at, n);
    else
        tail_copy_in(buf, src + at, n);
}

INLINE void tail_out(float *dst, int dtype, size_t at, const float buf[GROUP], size_t n,
                     const int half)
{
    if (half)
        half_narrow_tail(dst, dtype, at, buf, n);
    else
        tail_copy_out(dst + at, buf, n);
}

/* Where a step reads its inputs and writes its gradient: GROUP elements from x_i of x,
 * y_i of y (each an array of its dtype, read through vf_load_as: float32, a constant 0
 * in the float32 kernels and at the partial group, where the loads are plain; or a
 * half-precision dtype, widened as it is loaded) and grad_i of grad (float32). */
typedef struct step_io {
    const float *x, *y;
    float *grad;
    int x_dtype, y_dtype, grad_dtype;
    size_t x_i, y_i, grad_i;
} step_io;

/* One step of GROUP elements: inputs and gradient (when want_grad) at io_, per-element
 * losses to lp (or NULL), job index `at`, sigmoid parts at offset `off` of the cache
 * (SIGMOID: the loss reads them; see SIGMOID_PLAIN), n of the GROUP lanes valid (tail:
 * n < GROUP, the rest masked out).  The losses (0 in masked lanes) go to sums[off..] when there is a sums
 * pass, else into acc.  SETUP is a statement run once per group (values that MATH shares
 * between the parts), MATH an expression of (xv, yv, sp, at, part) giving a loss_grad. */
#define DEFINE_GROUP_STEP(NAME, JOB_T, SIGMOID, SETUP, MATH)                                \
    INLINE void NAME(const JOB_T *j, const step_io io_, float *lp, size_t at,               \
                     const sigmoid_cache *cache, size_t off, size_t n, vacc *acc,           \
                     float *sums, vcnt *cnt, const int tail, const int want_grad)           \
    {                                                                                       \
        (void)at;                                                                           \
        (void)cache;                                                                        \
        (void)off;                                                                          \
        SETUP;                                                                              \
        for (int part = 0; part < PARTS; part++) {                                          \
            vf xv = vf_load_as(io_.x, io_.x_dtype, io_.x_i + (size_t)(part * VW));          \
            vf yv = vf_load_as(io_.y, io_.y_dtype, io_.y_i + (size_t)(part * VW));          \
            sigmoid_parts sp_ = {0};                                                        \
            if (SIGMOID)                                                                    \
                sp_ = sigmoid_parts_at(cache, off + (size_t)(part * VW), xv,                \
                                       SIGMOID == SIGMOID_PRECISE);                         \
            const sigmoid_parts *sp = &sp_;                                                 \
            (void)sp;                                                                       \
            loss_grad lg = MATH;                                                            \
            if (tail) {                                                                     \
                vm valid = lanes_below(part, n);                                            \
                lg.loss = vf_select(valid, lg.loss, vf_set(0.0f));                          \
                lg.positive = vm_and(lg.positive, valid);                                   \
            }                                                                               \
            if (sums)                                                                       \
                vf_store(sums + off + (size_t)(part * VW), lg.loss);                        \
            else                                                                            \
                vacc_add(acc, part, lg.loss);                                               \
            vcnt_add(cnt, lg.positive);                                                     \
            if (want_grad)                                                                  \
                vf_store_as(io_.grad, io_.grad_dtype, io_.grad_i + (size_t)(part * VW),     \
                            lg.grad);                                                       \
            if (lp)                                                                         \
                vf_store(lp + part * VW, lg.loss);                                          \
        }                                                                                   \
    }

/* The losses of `n` elements (a multiple of GROUP) into the 16 double lanes.  For the
 * sigmoid family this is a pass of its own after the loss loop, which then keeps its
 * registers for the math (SUMS_PASS); the other losses, and every loss on an ISA with
 * the registers (DAFL_ONE_PASS_BLOCKS), add them up in the loss loop. */
INLINE void vacc_add_losses(vacc *acc, const float *sums, size_t n)
{
    for (size_t i = 0; i < n; i += GROUP)
        for (int part = 0; part < PARTS; part++)
            vacc_add(acc, part, vf_load(sums + i + (size_t)(part * VW)));
}
#if defined(DAFL_ONE_PASS_BLOCKS)
#define SUMS_PASS(SIGMOID) 0
#define CACHE_FILL_WIDENS 0
#else
#define SUMS_PASS(SIGMOID) (SIGMOID)
#define CACHE_FILL_WIDENS 1 /* sigmoid_cache_fill_as can keep a widened x */
#endif
/* Half-precision inputs widened as they are loaded, where the ISA converts whole vectors;
 * the scalar kernels widen a sub-block's x and y in loops of their own first, which GCC
 * vectorizes like the passes after them (a conversion inside the steps keeps it from
 * vectorizing them: 1.3-2x the time). */
#if defined(DAFL_HAVE_HALF_VECTOR)
#define WIDEN_IN_LOADS 1
#else
#define WIDEN_IN_LOADS 0
#endif
/* A half-precision gradient rounded by the steps themselves, vector by vector, where the
 * ISA narrows a vector in few operations (DAFL_NARROW_IN_STEPS; AVX-512: vcvtneps2bf16 or
 * vcvtps2ph).  Elsewhere the steps write it in float32 to the stack and it is rounded out
 * after the sub-block (AVX2's integer bfloat16 rounding packs a group at a time there).
 * Measured on Zen 4, 64K elements, one thread, all-bfloat16 MSE: 1.35x the float32
 * call's time staged, 1.21x rounded in the steps; the other losses the same either way
 * on AVX-512, while on AVX2 rounding in the steps took 1.00-1.10x the staged time. */
#if defined(DAFL_NARROW_IN_STEPS)
#define NARROW_IN_STEPS 1
#else
#define NARROW_IN_STEPS 0
#endif
/* There a dtype read from the job costs a branch at every load and store of the steps,
 * so calls whose buffers are all bfloat16 or all float16 get an instance each, whose
 * loads and stores read no dtype (UNIFORM_HALF_INSTANCES).  Measured on Zen 4, 64K
 * elements, one thread, AVX-512, against the float32 call: all-bfloat16 MSE 1.29x with
 * the dtypes read from the job, 1.08x in its own instance (penalty focal 1.12x, 1.10x);
 * all-float16 MSE 1.20x against 1.08x (BCE 1.13x, 1.11x; penalty focal 1.11x, 1.09x),
 * for some 10 % more library text per instance.  Other mixtures share one instance. */
#define UNIFORM_HALF_INSTANCES NARROW_IN_STEPS
/* A unit that defines DAFL_BF16_GRAD_ONLY (arch/x86/losses_avx512_bf16.c) differs from
 * the ISA's main unit only in how it rounds a gradient to bfloat16, so it compiles only
 * the paths that do (BF16_GRAD_ONLY: every call its block kernels see has a bfloat16
 * gradient) and its table hands every other call to the main unit's (see the end). */
#if defined(DAFL_BF16_GRAD_ONLY)
#define BF16_GRAD_ONLY 1
#else
#define BF16_GRAD_ONLY 0
#endif

/* The dtype of every buffer of a call (x, y and the gradient if any), or 0 where they
 * differ or are float32. */
INLINE int uniform_half_dtype(const dafl_io *io)
{
    const int d = io->x_dtype;
    return d != DAFL_DTYPE_FLOAT32 && io->y_dtype == d && (!io->grad || io->grad_dtype == d)
               ? d
               : 0;
}

/* The block kernel: sub-blocks of whole groups (their sigmoid parts first, when the loss
 * has them, and the sum of their losses last), then at most one partial group staged
 * through stack buffers, so nothing outside the caller's arrays is read or written
 * whatever their length and alignment; then the lane fold.
 * One loop serves both element types.  Float32 buffers (half 0): the steps read and write
 * the caller's arrays with plain loads and stores.  Half precision (any dtype not
 * float32; half -1: the dtypes read from the job, or half = a dtype: every buffer of it,
 * see UNIFORM_HALF_INSTANCES), where the ISA converts whole vectors (WIDEN_IN_LOADS):
 * x is widened as the sigmoid pass loads it and kept in float32 on the stack for the
 * steps (or, in the losses without that pass, widened as the step loads it), the targets
 * are widened as the steps load them, and a half-precision gradient is written by the steps in float32
 * to the stack and rounded out after each sub-block, while it is in L1
 * (vf_store_bf16_group; AVX2 rounds a group with one pack and one NaN test), or rounded
 * by the steps themselves where the ISA does it cheaply (NARROW_IN_STEPS).  The scalar
 * kernels widen a sub-block's x and y in loops of their own first.  The per-element
 * losses stay float32.  The float32 math sees the same values either way, so both give
 * the same bits by construction.  Why this split, measured on AVX2 (Zen 3, one thread,
 * 64K elements, all-bfloat16 penalty focal): the gradient rounded in the step itself,
 * vector by vector, took 1.26-1.29x the float32 call's time, against 1.18-1.2x rounded
 * after the sub-block a group at a time; x and the targets widened onto the stack before
 * the steps, as this loop first did, 1.22-1.24x.  Over four losses and three dtype
 * combinations: staged 1.08-1.7x, now 1.07-1.31x (docs/benchmarks.md, "Half
 * precision").  Stack: 1 KiB more than float32 (2 KiB for the scalar kernels).
 * half and want_grad are constants at every call of _impl, so each instance compiles to
 * its path alone; a half call's dtypes are the same for every vector, so their branches
 * are too. */
#define DEFINE_BLOCK_KERNEL(KERNEL, STEP, JOB_T, SIGMOID)                                   \
    INLINE double DAFL_CAT(KERNEL, _impl)(const JOB_T *job, size_t begin, size_t len,       \
                                          uint64_t *positives, const int want_grad,         \
                                          const int half)                                   \
    {                                                                                       \
        /* a private copy: the stores of the outputs cannot change it, so its parameters   \
         * stay in registers */                                                             \
        const JOB_T job_copy = *job, *j = &job_copy;                                        \
        const dafl_io *io = &j->io;                                                         \
        vacc acc;                                                                           \
        vacc_zero(&acc);                                                                    \
        vcnt cnt = vcnt_zero();                                                             \
        sigmoid_cache cache;                                                                \
        float sums_buffer[SUB_BLOCK], *sums = SUMS_PASS(SIGMOID) ? sums_buffer : NULL;       \
        const int f32 = DAFL_DTYPE_FLOAT32;                                                 \
        /* half > 0: every buffer is of dtype `half` (a constant: see _half below) */      \
        const int x_dtype = !half ? f32 : half > 0 ? half : io->x_dtype;                    \
        const int y_dtype = !half ? f32 : half > 0 ? half : io->y_dtype;                    \
        const int grad_dtype = !half ? f32 : half > 0 ? half : io->grad_dtype;              \
        /* Half precision on the stack: hb holds x in float32 (x_in_hb: widened by the      \
         * sigmoid pass, or first by a loop of its own, x_first) and, as the steps go, the  \
         * float32 gradient over it (each element's x is read by its step before the step   \
         * writes that element's gradient), rounded out after the sub-block (narrow); yb    \
         * the targets where they are widened first (y_first). */                           \
        float hb[SUB_BLOCK], yb[SUB_BLOCK];                                                 \
        const int narrow = half && want_grad && grad_dtype != f32 && !NARROW_IN_STEPS;      \
        const int fill_widens = WIDEN_IN_LOADS && SIGMOID && CACHE_FILL_WIDENS;             \
        const int x_in_hb = x_dtype != f32 && (!WIDEN_IN_LOADS || fill_widens);             \
        const int x_first = x_in_hb && !fill_widens;                                        \
        const int y_first = !WIDEN_IN_LOADS && y_dtype != f32;                              \
        /* without WIDEN_IN_LOADS every dtype the steps and the sigmoid pass see is a       \
         * constant float32 */                                                              \
        const int x_fill_dtype = x_first || !WIDEN_IN_LOADS ? f32 : x_dtype;                \
        step_io sio = {x_in_hb ? hb : io->x, y_first ? yb : io->y, narrow ? hb : io->grad,  \
                       x_in_hb || !WIDEN_IN_LOADS ? f32 : x_dtype,                          \
                       WIDEN_IN_LOADS ? y_dtype : f32,                                      \
                       NARROW_IN_STEPS ? grad_dtype : f32, 0, 0, 0};                        \
        const size_t whole = len - len % GROUP;                                             \
        for (size_t s = 0; s < whole; s += SUB_BLOCK) {                                     \
            const size_t n = whole - s < SUB_BLOCK ? whole - s : SUB_BLOCK;                 \
            const size_t at = begin + s;                                                    \
            if (x_first)                                                                    \
                half_widen(hb, io->x, x_dtype, at, n);                                      \
            if (y_first)                                                                    \
                half_widen(yb, io->y, y_dtype, at, n);                                      \
            if (SIGMOID)                                                                    \
                sigmoid_cache_fill_as(&cache, x_first ? hb : io->x, x_fill_dtype,           \
                                      x_first ? 0 : at, n,                                  \
                                      x_in_hb && fill_widens ? hb : NULL,                   \
                                      SIGMOID == SIGMOID_PRECISE);                          \
            for (size_t g = 0; g < n; g += GROUP) {                                         \
                sio.x_i = x_in_hb ? g : at + g;                                             \
                sio.y_i = y_first ? g : at + g;                                             \
                sio.grad_i = narrow ? g : at + g;                                           \
                float *lp = io->loss_out ? io->loss_out + at + g : NULL;                    \
                STEP(j, sio, lp, at + g, &cache, g, GROUP, &acc, sums, &cnt, 0, want_grad); \
            }                                                                               \
            if (sums)                                                                       \
                vacc_add_losses(&acc, sums, n);                                             \
            if (narrow)                                                                     \
                half_narrow(io->grad, grad_dtype, at, hb, n);                               \
        }                                                                                   \
        if (whole < len) {                                                                  \
            float xs[GROUP], ys[GROUP], gs[GROUP], ls[GROUP];                               \
            const size_t n = len - whole, at = begin + whole;                               \
            tail_in(xs, io->x, x_dtype, at, n, half);                                       \
            tail_in(ys, io->y, y_dtype, at, n, half);                                       \
            if (SIGMOID)                                                                    \
                sigmoid_cache_fill_as(&cache, xs, DAFL_DTYPE_FLOAT32, 0, GROUP, NULL,       \
                                      SIGMOID == SIGMOID_PRECISE);                          \
            const step_io tio = {xs, ys, gs, f32, f32, f32, 0, 0, 0};                       \
            STEP(j, tio, ls, at, &cache, 0, n, &acc, sums, &cnt, 1, want_grad);             \
            if (sums)                                                                       \
                vacc_add_losses(&acc, sums, GROUP);                                         \
            if (want_grad)                                                                  \
                tail_out(io->grad, grad_dtype, at, gs, n, half);                            \
            if (io->loss_out)                                                               \
                tail_copy_out(io->loss_out + at, ls, n);                                    \
        }                                                                                   \
        *positives = vcnt_total(cnt);                                                       \
        double lanes[16];                                                                   \
        vacc_store(&acc, lanes);                                                            \
        return dafl_fold_lanes16(lanes);                                                    \
    }                                                                                       \
    /* out of line: the half-precision path stays out of the float32 kernel's code.  With \
     * the conversions in the steps (NARROW_IN_STEPS), calls whose buffers are all of one  \
     * half-precision dtype get an instance each, whose loads and stores read no dtype      \
     * (UNIFORM_HALF_INSTANCES). */                                                         \
    static __attribute__((noinline)) double DAFL_CAT(KERNEL, _half)(                        \
        const JOB_T *j, size_t begin, size_t len, uint64_t *positives)                      \
    {                                                                                       \
        const int bf16 = DAFL_DTYPE_BFLOAT16, f16 = DAFL_DTYPE_FLOAT16;                     \
        const int grad = BF16_GRAD_ONLY || j->io.grad;                                      \
        switch (UNIFORM_HALF_INSTANCES ? uniform_half_dtype(&j->io) : 0) {                  \
        case DAFL_DTYPE_BFLOAT16:                                                           \
            return grad ? DAFL_CAT(KERNEL, _impl)(j, begin, len, positives, 1, bf16)        \
                        : DAFL_CAT(KERNEL, _impl)(j, begin, len, positives, 0, bf16);       \
        case DAFL_DTYPE_FLOAT16:                                                            \
            if (BF16_GRAD_ONLY)                                                             \
                break;                                                                      \
            return grad ? DAFL_CAT(KERNEL, _impl)(j, begin, len, positives, 1, f16)         \
                        : DAFL_CAT(KERNEL, _impl)(j, begin, len, positives, 0, f16);        \
        }                                                                                   \
        return grad ? DAFL_CAT(KERNEL, _impl)(j, begin, len, positives, 1, -1)              \
                    : DAFL_CAT(KERNEL, _impl)(j, begin, len, positives, 0, -1);             \
    }                                                                                       \
    static double KERNEL(const void *job, size_t begin, size_t len, uint64_t *positives)    \
    {                                                                                       \
        const JOB_T *j = job;                                                               \
        if (BF16_GRAD_ONLY || (j->io.x_dtype | j->io.y_dtype |                              \
                               (j->io.grad ? j->io.grad_dtype : 0)))                        \
            return DAFL_CAT(KERNEL, _half)(j, begin, len, positives);                       \
        return j->io.grad ? DAFL_CAT(KERNEL, _impl)(j, begin, len, positives, 1, 0)         \
                          : DAFL_CAT(KERNEL, _impl)(j, begin, len, positives, 0, 0);        \
    }

/* Penalty focal: the CornerNet defaults (alpha 2, beta 4, weights 1) get straight-line
 * code in each input mode; the parameters of the others are read from the job.  Each
 * comes twice: for any targets, and for blocks whose targets are all 0. */
#define PF_MATH(MODE, ALPHA, BETA, UNIT, ALL_NEGATIVE)                                      \
    penalty_focal_math(j, xv, yv, sp, want_grad, MODE, ALPHA, BETA, UNIT, ALL_NEGATIVE)
#define DEFINE_PF_MODE(NAME, MODE, SIGMOID, ALL_NEGATIVE)                                   \
    DEFINE_GROUP_STEP(NAME##_step_default, dafl_pf_job, SIGMOID, (void)0,                   \
                      PF_MATH(MODE, 2, 4, 1, ALL_NEGATIVE))                                 \
    DEFINE_GROUP_STEP(NAME##_step, dafl_pf_job, SIGMOID, (void)0,                           \
                      PF_MATH(MODE, RUNTIME, RUNTIME, 0, ALL_NEGATIVE))                     \
    DEFINE_BLOCK_KERNEL(NAME##_default, NAME##_step_default, dafl_pf_job, SIGMOID)          \
    DEFINE_BLOCK_KERNEL(NAME, NAME##_step, dafl_pf_job, SIGMOID)
#define DEFINE_PF_KERNELS(SUFFIX, ALL_NEGATIVE)                                             \
    DEFINE_PF_MODE(pf_logits##SUFFIX, DAFL_INPUT_LOGITS, SIGMOID_PRECISE, ALL_NEGATIVE)     \
    DEFINE_PF_MODE(pf_probabilities##SUFFIX, DAFL_INPUT_PROBABILITIES, 0, ALL_NEGATIVE)     \
    DEFINE_PF_MODE(pf_clamped##SUFFIX, DAFL_INPUT_CLAMPED_LOGITS, SIGMOID_PRECISE,          \
                   ALL_NEGATIVE)                                                            \
    static double KFN(penalty_focal##SUFFIX)(const void *job, size_t begin, size_t len,     \
                                             uint64_t *positives)                           \
    {                                                                                       \
        const dafl_pf_job *j = job;                                                         \
        const int defaults = j->alpha_int == 2 && j->beta_int == 4 &&                       \
                             j->pos_weight == 1.0f && j->neg_weight == 1.0f;                \
        switch (j->mode) {                                                                  \
        case DAFL_INPUT_PROBABILITIES:                                                      \
            return defaults ? pf_probabilities##SUFFIX##_default(job, begin, len, positives) \
                            : pf_probabilities##SUFFIX(job, begin, len, positives);         \
        case DAFL_INPUT_CLAMPED_LOGITS:                                                     \
            return defaults ? pf_clamped##SUFFIX##_default(job, begin, len, positives)      \
                            : pf_clamped##SUFFIX(job, begin, len, positives);               \
        default:                                                                            \
            return defaults ? pf_logits##SUFFIX##_default(job, begin, len, positives)       \
                            : pf_logits##SUFFIX(job, begin, len, positives);                \
        }                                                                                   \
    }
DEFINE_PF_KERNELS(, 0)
DEFINE_PF_KERNELS(_all_negative, 1)

/* Sigmoid focal: gamma 2 (RetinaNet's) and 2.5 with straight-line code, any other from
 * the job (the same operations: the exponent's branches are decided at compile time). */
DEFINE_GROUP_STEP(sf_step_gamma2, dafl_sf_job, SIGMOID_PRECISE, (void)0,
                  sigmoid_focal_math(j, xv, yv, sp, want_grad, 4))
DEFINE_GROUP_STEP(sf_step_gamma2_5, dafl_sf_job, SIGMOID_PRECISE, (void)0,
                  sigmoid_focal_math(j, xv, yv, sp, want_grad, 5))
DEFINE_GROUP_STEP(sf_step, dafl_sf_job, SIGMOID_PRECISE, (void)0,
                  sigmoid_focal_math(j, xv, yv, sp, want_grad, RUNTIME))
DEFINE_BLOCK_KERNEL(sf_block_gamma2, sf_step_gamma2, dafl_sf_job, SIGMOID_PRECISE)
DEFINE_BLOCK_KERNEL(sf_block_gamma2_5, sf_step_gamma2_5, dafl_sf_job, SIGMOID_PRECISE)
DEFINE_BLOCK_KERNEL(sf_block, sf_step, dafl_sf_job, SIGMOID_PRECISE)
/* gamma 0 raises nothing to a power: the plain quotients, as BCE takes them, so that
 * gamma 0 with alpha < 0 is BCE bit for bit (SPEC 2.2) */
DEFINE_GROUP_STEP(sf_step_gamma0, dafl_sf_job, SIGMOID_PLAIN, (void)0,
                  sigmoid_focal_math(j, xv, yv, sp, want_grad, 0))
DEFINE_BLOCK_KERNEL(sf_block_gamma0, sf_step_gamma0, dafl_sf_job, SIGMOID_PLAIN)
static double KFN(sigmoid_focal)(const void *job, size_t begin, size_t len, uint64_t *positives)
{
    const dafl_sf_job *j = job;
    if (j->gamma == 2.0f)
        return sf_block_gamma2(job, begin, len, positives);
    if (j->gamma == 2.5f)
        return sf_block_gamma2_5(job, begin, len, positives);
    if (j->gamma == 0.0f)
        return sf_block_gamma0(job, begin, len, positives);
    return sf_block(job, begin, len, positives);
}

/* BCE: pos_weight 1 (PyTorch's default) with the hard-target shortcut, any other plain. */
DEFINE_GROUP_STEP(bce_step_unit, dafl_bce_job, SIGMOID_PLAIN, (void)0,
                  bce_math(j, xv, yv, sp, want_grad, 1, vf_set(1.0f)))
DEFINE_GROUP_STEP(bce_step, dafl_bce_job, SIGMOID_PLAIN, (void)0,
                  bce_math(j, xv, yv, sp, want_grad, 0, vf_set(j->pos_weight)))
DEFINE_BLOCK_KERNEL(bce_block_unit, bce_step_unit, dafl_bce_job, SIGMOID_PLAIN)
DEFINE_BLOCK_KERNEL(bce_block, bce_step, dafl_bce_job, SIGMOID_PLAIN)

/* ---- weights per channel: MSE's weights, BCE's pos_weights ------------------------- */
/* Element i's weight is w[(i / image * c + (i / stride) % c) % count] (kernel_api.h,
 * dafl_channel_weights).  Found once per group of 16 (the divisions cost more than the
 * loss), in one of three ways:
 *   - stride >= 16 and the group inside one run of `stride` elements (NCHW, but for the
 *     groups that straddle two planes): one weight, broadcast;
 *   - a table (stride < 16: channels_last): the group's 16 weights are consecutive
 *     floats of the table, loaded as vectors;
 *   - otherwise lane by lane, each lane's index by the formula (also lanes beyond the
 *     call's end, in a partial group: the final % count keeps them inside w; their loss
 *     is masked out).
 * Every way reads the same weight for an element, so the bits do not depend on which. */
typedef struct channel_group {
    const float *lanes; /* the group's 16 weights in the table, or NULL */
    int per_lane;       /* no table holds them and they may differ: lane by lane */
    vf weight;          /* otherwise: the group's one weight */
} channel_group;

INLINE size_t channel_weight_index(const dafl_channel_weights *cw, size_t i)
{
    size_t run = i / cw->stride;
    /* count c: run % c is the channel.  NCHW (stride = image / c): run is
     * image_index * c + channel itself. */
    if (cw->count == cw->c || cw->period == cw->image)
        return run % cw->count;
    return (i / cw->image * cw->c + run % cw->c) % cw->count;
}

INLINE channel_group channel_group_at(const dafl_channel_weights *cw, size_t at)
{
    channel_group g = {NULL, 0, vf_set(1.0f)};
    if (!cw->w)
        return g;
    if (cw->stride >= GROUP && at % cw->stride + GROUP <= cw->stride) {
        g.weight = vf_set(cw->w[channel_weight_index(cw, at)]);
        return g;
    }
    if (cw->table) {
        if (cw->count == cw->c) { /* one pattern for the whole call */
            g.lanes = cw->table + at % cw->period;
            return g;
        }
        size_t image = at / cw->image, pos = at - image * cw->image;
        if (pos + GROUP <= cw->image) { /* inside one image: its row */
            g.lanes = cw->table + image * cw->row + pos % cw->period;
            return g;
        }
    }
    g.per_lane = 1;
    return g;
}

INLINE vf channel_weights_of(const dafl_channel_weights *cw, const channel_group *g,
                             size_t at, int part)
{
    if (g->lanes)
        return vf_load(g->lanes + part * VW);
    if (!g->per_lane)
        return g->weight;
    size_t first = at + (size_t)part * VW;
    float w[VW];
    for (int k = 0; k < VW; k++)
        w[k] = cw->w[channel_weight_index(cw, first + (size_t)k)];
    return vf_load(w);
}

DEFINE_GROUP_STEP(mse_step, dafl_mse_job, 0,
                  const channel_group group = channel_group_at(&j->weights, at),
                  mse_math(j, xv, yv, channel_weights_of(&j->weights, &group, at, part),
                           want_grad))
DEFINE_BLOCK_KERNEL(KFN(mse), mse_step, dafl_mse_job, 0)

/* A pos_weight per class: the plain formulas with each lane's weight. */
DEFINE_GROUP_STEP(bce_step_classes, dafl_bce_job, SIGMOID_PLAIN,
                  const channel_group group = channel_group_at(&j->pos_weights, at),
                  bce_math(j, xv, yv, sp, want_grad, 0,
                           channel_weights_of(&j->pos_weights, &group, at, part)))
DEFINE_BLOCK_KERNEL(bce_block_classes, bce_step_classes, dafl_bce_job, SIGMOID_PLAIN)
static double KFN(bce)(const void *job, size_t begin, size_t len, uint64_t *positives)
{
    const dafl_bce_job *j = job;
    if (j->pos_weights.w)
        return bce_block_classes(job, begin, len, positives);
    return j->pos_weight == 1.0f ? bce_block_unit(job, begin, len, positives)
                                 : bce_block(job, begin, len, positives);
}

#endif /* !DAFL_SOFTMAX_ONLY */

/* An ISA whose softmax loop wants another vector width than its element-wise losses
 * compiles softmax focal in a translation unit of its own (arch/x86/softmax_avx2.c):
 * that unit defines DAFL_SOFTMAX_ONLY as the name of its entry point, the main one
 * DAFL_SOFTMAX_ELSEWHERE as the same name. */
#if defined(DAFL_SOFTMAX_ONLY)
#include "softmax_kernels.h"
double DAFL_SOFTMAX_ONLY(const dafl_softmax_job *j, size_t begin, size_t len);
double DAFL_SOFTMAX_ONLY(const dafl_softmax_job *j, size_t begin, size_t len)
{
    return KFN(softmax_focal)(j, begin, len);
}
#else
#if defined(DAFL_SOFTMAX_ELSEWHERE)
double DAFL_SOFTMAX_ELSEWHERE(const dafl_softmax_job *j, size_t begin, size_t len);
#define SOFTMAX_KERNEL DAFL_SOFTMAX_ELSEWHERE
#else
#include "softmax_kernels.h"
#define SOFTMAX_KERNEL KFN(softmax_focal)
#endif

/* ---- target scan: validation and positive count --------------------------------------- */
#if !BF16_GRAD_ONLY
static int KFN(scan_targets)(const float *y, size_t n, uint64_t *positives)
{
    const vf one = vf_set(1.0f), zero = vf_set(0.0f);
    vm bad = vf_lt(one, zero); /* all false */
    uint64_t pos = 0;
    size_t i = 0;
    for (; i + VW <= n; i += VW) {
        vf v = vf_load(y + i);
        bad = vm_or(bad, vm_not(vm_and(vf_ge(v, zero), vf_le(v, one))));
        pos += vm_count(vf_eq(v, one));
    }
    int any_bad = vm_any(bad);
    for (; i < n; i++) {
        any_bad |= !(y[i] >= 0.0f && y[i] <= 1.0f);
        pos += y[i] == 1.0f;
    }
    *positives = pos;
    return any_bad;
}
#endif

#if BF16_GRAD_ONLY
/* The entries of a bfloat16-gradient unit: calls that round a gradient to bfloat16 run
 * here, every other goes to the main unit's table, whose kernels give the same bits (every
 * element-wise job begins with its dafl_io).  So the library holds the float32 and float16
 * paths once. */
INLINE int rounds_grad_to_bf16(const void *grad, int grad_dtype)
{
    return grad && grad_dtype == DAFL_DTYPE_BFLOAT16;
}
#define BF16_GRAD_ENTRY(ENTRY)                                                              \
    static double DAFL_CAT(KFN(ENTRY), _entry)(const void *job, size_t begin, size_t len,   \
                                               uint64_t *positives)                         \
    {                                                                                       \
        const dafl_io *io = job;                                                            \
        if (rounds_grad_to_bf16(io->grad, io->grad_dtype))                                  \
            return KFN(ENTRY)(job, begin, len, positives);                                  \
        return DAFL_BF16_GRAD_ONLY.ENTRY(job, begin, len, positives);                       \
    }
BF16_GRAD_ENTRY(penalty_focal)
BF16_GRAD_ENTRY(sigmoid_focal)
BF16_GRAD_ENTRY(bce)
BF16_GRAD_ENTRY(mse)
BF16_GRAD_ENTRY(penalty_focal_all_negative)
static double DAFL_CAT(KFN(softmax_focal), _entry)(const dafl_softmax_job *j, size_t begin,
                                                   size_t len)
{
    if (rounds_grad_to_bf16(j->grad, j->grad_dtype))
        return SOFTMAX_KERNEL(j, begin, len);
    return DAFL_BF16_GRAD_ONLY.softmax_focal(j, begin, len);
}
static int DAFL_CAT(KFN(scan_targets), _entry)(const float *y, size_t n, uint64_t *positives)
{
    return DAFL_BF16_GRAD_ONLY.scan_targets(y, n, positives); /* float32 targets only */
}
#define TABLE_ENTRY(ENTRY) DAFL_CAT(KFN(ENTRY), _entry)
#undef SOFTMAX_KERNEL
#define SOFTMAX_KERNEL TABLE_ENTRY(softmax_focal)
#else
#define TABLE_ENTRY(ENTRY) KFN(ENTRY)
#endif

const dafl_kernels DAFL_CAT(dafl_kernels_, DAFL_ISA_SUFFIX) = {
    DAFL_ISA_ENUM,
    DAFL_ISA_NAME,
    TABLE_ENTRY(penalty_focal),
    TABLE_ENTRY(sigmoid_focal),
    TABLE_ENTRY(bce),
    TABLE_ENTRY(mse),
    SOFTMAX_KERNEL,
    TABLE_ENTRY(scan_targets),
    TABLE_ENTRY(penalty_focal_all_negative),
};
#endif /* DAFL_SOFTMAX_ONLY */
