/*
 * Softmax focal on AVX2 + FMA, 16 pixels per "vector" held in two ymm registers, in a
 * translation unit of its own: the element-wise losses (arch/x86/losses_avx2.c) run
 * best on one ymm per vector, while the softmax loop's per-vector work (labels, offsets,
 * the logit at each label) runs best spread over 16 pixels at once (measured on Zen 3:
 * 1.3x faster than with 8).  Every operation is issued on both halves back to back.  The
 * bits do not depend on the vector width.  Compiled with -mavx2 -mfma -mf16c; called only
 * when the CPU and OS support all three.
 */
#include <immintrin.h>
#include <sleef.h>

/* This unit compiles softmax focal alone, which uses only some of the operations below. */
#pragma GCC diagnostic ignored "-Wunused-function"

#define DAFL_ISA_SUFFIX avx2_16
#define DAFL_ISA_ENUM DAFL_ISA_AVX2
#define DAFL_ISA_NAME "avx2"

#define VW 16
typedef struct vf {
    __m256 lo, hi; /* lanes 0-7, 8-15 */
} vf;
typedef vf vm; /* lanes all-ones or all-zeros */
typedef struct vacc {
    __m256d lane[4]; /* virtual lanes 0-3, 4-7, 8-11, 12-15 */
} vacc;

/* One 8-lane operation applied to both halves. */
#define ON_BOTH1(op, a) ((vf){op((a).lo), op((a).hi)})
#define ON_BOTH2(op, a, b) ((vf){op((a).lo, (b).lo), op((a).hi, (b).hi)})
#define ON_BOTH3(op, a, b, c) ((vf){op((a).lo, (b).lo, (c).lo), op((a).hi, (b).hi, (c).hi)})

static inline vf vf_load(const float *p)
{
    return (vf){_mm256_loadu_ps(p), _mm256_loadu_ps(p + 8)};
}
static inline void vf_store(float *p, vf v)
{
    _mm256_storeu_ps(p, v.lo);
    _mm256_storeu_ps(p + 8, v.hi);
}
static inline vf vf_set(float f) { return (vf){_mm256_set1_ps(f), _mm256_set1_ps(f)}; }
static inline vf vf_add(vf a, vf b) { return ON_BOTH2(_mm256_add_ps, a, b); }
static inline vf vf_sub(vf a, vf b) { return ON_BOTH2(_mm256_sub_ps, a, b); }
static inline vf vf_mul(vf a, vf b) { return ON_BOTH2(_mm256_mul_ps, a, b); }
static inline vf vf_div(vf a, vf b) { return ON_BOTH2(_mm256_div_ps, a, b); }
static inline vf vf_sqrt(vf a) { return ON_BOTH1(_mm256_sqrt_ps, a); }
static inline vf vf_fma(vf a, vf b, vf c) { return ON_BOTH3(_mm256_fmadd_ps, a, b, c); }
/* maxps/minps return the second operand when either is NaN: a > b ? a : b. */
static inline vf vf_max(vf a, vf b) { return ON_BOTH2(_mm256_max_ps, a, b); }
static inline vf vf_min(vf a, vf b) { return ON_BOTH2(_mm256_min_ps, a, b); }
static inline vf vf_abs(vf a) { return ON_BOTH2(_mm256_andnot_ps, vf_set(-0.0f), a); }
static inline vf vf_neg(vf a) { return ON_BOTH2(_mm256_xor_ps, vf_set(-0.0f), a); }
#define COMPARE(a, b, pred) \
    ((vm){_mm256_cmp_ps((a).lo, (b).lo, pred), _mm256_cmp_ps((a).hi, (b).hi, pred)})
static inline vm vf_eq(vf a, vf b) { return COMPARE(a, b, _CMP_EQ_OQ); }
static inline vm vf_lt(vf a, vf b) { return COMPARE(a, b, _CMP_LT_OQ); }
static inline vm vf_le(vf a, vf b) { return COMPARE(a, b, _CMP_LE_OQ); }
static inline vm vf_gt(vf a, vf b) { return COMPARE(a, b, _CMP_GT_OQ); }
static inline vm vf_ge(vf a, vf b) { return COMPARE(a, b, _CMP_GE_OQ); }
#undef COMPARE
static inline vm vm_and(vm a, vm b) { return ON_BOTH2(_mm256_and_ps, a, b); }
static inline vm vm_or(vm a, vm b) { return ON_BOTH2(_mm256_or_ps, a, b); }
static inline vm vm_not(vm a)
{
    __m256 ones = _mm256_castsi256_ps(_mm256_set1_epi32(-1));
    return (vm){_mm256_xor_ps(a.lo, ones), _mm256_xor_ps(a.hi, ones)};
}
static inline int vm_any(vm a) { return _mm256_movemask_ps(_mm256_or_ps(a.lo, a.hi)) != 0; }
static inline unsigned vm_count(vm a)
{
    return (unsigned)__builtin_popcount((unsigned)_mm256_movemask_ps(a.lo) |
                                        ((unsigned)_mm256_movemask_ps(a.hi) << 8));
}
/* Written as asm because GCC 12 turns the blendv intrinsic into a compare against zero
 * followed by the blend: one more instruction per select, for masks that are already
 * all-ones or all-zeros. */
static inline __m256 blend8(__m256 m, __m256 a, __m256 b)
{
    __m256 r;
    __asm__("vblendvps %3, %2, %1, %0" : "=x"(r) : "x"(b), "xm"(a), "x"(m));
    return r;
}
static inline vf vf_select(vm m, vf a, vf b)
{
    return (vf){blend8(m.lo, a.lo, b.lo), blend8(m.hi, a.hi, b.hi)};
}
/* blendv reads only the sign bit of its mask */
static inline vf vf_select_sign(vf s, vf a, vf b) { return vf_select(s, a, b); }
static inline __m256 pow2_rounded8(__m256 t)
{
    __m256i bits = _mm256_slli_epi32(_mm256_castps_si256(t), 23);
    return _mm256_castsi256_ps(_mm256_add_epi32(bits, _mm256_set1_epi32(127 << 23)));
}
static inline vf vf_pow2_rounded(vf t) { return ON_BOTH1(pow2_rounded8, t); }
/* -|a| in one operation per half: the sign bit set */
#define DAFL_HAVE_NEG_ABS
static inline vf vf_neg_abs(vf a) { return ON_BOTH2(_mm256_or_ps, vf_set(-0.0f), a); }
/* m ? -a : a as a sign flip by the masked sign bit, without a blend */
#define DAFL_HAVE_NEG_WHERE
static inline vf vf_neg_where(vm m, vf a)
{
    vf sign = ON_BOTH2(_mm256_and_ps, m, vf_set(-0.0f));
    return ON_BOTH2(_mm256_xor_ps, sign, a);
}
/* The positive count in a vector: a set lane is all ones, -1 as an integer. */
#define DAFL_HAVE_VCNT
typedef __m256i vcnt;
static inline vcnt vcnt_zero(void) { return _mm256_setzero_si256(); }
static inline void vcnt_add(vcnt *c, vm m)
{
    *c = _mm256_sub_epi32(_mm256_sub_epi32(*c, _mm256_castps_si256(m.lo)),
                          _mm256_castps_si256(m.hi));
}
static inline unsigned vcnt_total(vcnt c)
{
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(c), _mm256_extracti128_si256(c, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
    return (unsigned)_mm_cvtsi128_si32(s);
}
static inline vf vf_log(vf a) { return ON_BOTH1(Sleef_logf8_u10avx2, a); }
static inline vf vf_log1p(vf a) { return ON_BOTH1(Sleef_log1pf8_u10avx2, a); }
static inline vf vf_pow(vf a, vf b) { return ON_BOTH2(Sleef_powf8_u10avx2, a, b); }

static inline void vacc_zero(vacc *acc)
{
    for (int i = 0; i < 4; i++)
        acc->lane[i] = _mm256_setzero_pd();
}
static inline __m256d add_low4(__m256d acc, __m256 v)
{
    return _mm256_add_pd(acc, _mm256_cvtps_pd(_mm256_castps256_ps128(v)));
}
static inline __m256d add_high4(__m256d acc, __m256 v)
{
    return _mm256_add_pd(acc, _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
}
static inline void vacc_add(vacc *acc, int part, vf v)
{
    (void)part; /* one vector is all 16 lanes */
    acc->lane[0] = add_low4(acc->lane[0], v.lo);
    acc->lane[1] = add_high4(acc->lane[1], v.lo);
    acc->lane[2] = add_low4(acc->lane[2], v.hi);
    acc->lane[3] = add_high4(acc->lane[3], v.hi);
}
static inline void vacc_store(const vacc *acc, double out[16])
{
    for (int i = 0; i < 4; i++)
        _mm256_storeu_pd(out + 4 * i, acc->lane[i]);
}

/* Half precision, 16 lanes (src/kernels/half.h's bits): float16 by F16C (vcvtph2ps;
 * vcvtps2ph with round-to-nearest-even in the immediate, independent of MXCSR),
 * bfloat16 by integer code: widening is a 16-bit shift; narrowing adds 0x7fff plus the
 * lowest kept bit (round to nearest, ties to even, carrying into the exponent up to
 * infinity) and keeps the top half, a NaN its top half with the quiet bit set. */
#define DAFL_HAVE_HALF_VECTOR
static inline vf vf_load_f16(const uint16_t *p)
{
    __m256i h = _mm256_loadu_si256((const __m256i *)(const void *)p);
    return (vf){_mm256_cvtph_ps(_mm256_castsi256_si128(h)),
                _mm256_cvtph_ps(_mm256_extracti128_si256(h, 1))};
}
static inline void vf_store_f16(uint16_t *p, vf v)
{
    __m128i lo = _mm256_cvtps_ph(v.lo, _MM_FROUND_TO_NEAREST_INT);
    __m128i hi = _mm256_cvtps_ph(v.hi, _MM_FROUND_TO_NEAREST_INT);
    _mm256_storeu_si256((__m256i *)(void *)p, _mm256_set_m128i(hi, lo));
}
static inline __m256 bf16_widen8(__m128i h)
{
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}
static inline vf vf_load_bf16(const uint16_t *p)
{
    __m256i h = _mm256_loadu_si256((const __m256i *)(const void *)p);
    return (vf){bf16_widen8(_mm256_castsi256_si128(h)),
                bf16_widen8(_mm256_extracti128_si256(h, 1))};
}
/* eight floats rounded to bfloat16, each in the low half of its 32-bit lane */
static inline __m256i bf16_round8(__m256 v)
{
    __m256i b = _mm256_castps_si256(v);
    __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(b, 16), _mm256_set1_epi32(1));
    __m256i r = _mm256_srli_epi32(
        _mm256_add_epi32(_mm256_add_epi32(b, _mm256_set1_epi32(0x7fff)), lsb), 16);
    __m256i nan = _mm256_or_si256(_mm256_srli_epi32(b, 16), _mm256_set1_epi32(0x40));
    return _mm256_castps_si256(blend8(_mm256_cmp_ps(v, v, _CMP_UNORD_Q),
                                      _mm256_castsi256_ps(nan), _mm256_castsi256_ps(r)));
}
static inline void vf_store_bf16(uint16_t *p, vf v)
{
    /* packus works within 128-bit halves: lo 0-3, hi 0-3 | lo 4-7, hi 4-7; the qword
     * permutation puts them in lane order */
    __m256i packed = _mm256_packus_epi32(bf16_round8(v.lo), bf16_round8(v.hi));
    _mm256_storeu_si256((__m256i *)(void *)p, _mm256_permute4x64_epi64(packed, 0xd8));
}

#define DAFL_SOFTMAX_ONLY dafl_softmax_focal_avx2_pairs
#include "kernels/loss_kernels.h"
