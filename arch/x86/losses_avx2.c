/*
 * AVX2 + FMA kernels: the math of src/kernels/loss_kernels.h on 8 floats per vector, one
 * ymm register.  The long dependency chain of each element (exp, log1p, the division, the
 * loss) is broken up by the block loop's passes over sub-blocks, so one register per
 * vector leaves the most registers for constants and intermediate values.  Compiled with
 * -mavx2 -mfma -mf16c only; called only when the CPU and OS support all three.
 */
#include <immintrin.h>
#include <sleef.h>

#define DAFL_ISA_SUFFIX avx2
#define DAFL_ISA_ENUM DAFL_ISA_AVX2
#define DAFL_ISA_NAME "avx2"

#define VW 8
typedef __m256 vf;
typedef __m256 vm; /* lanes all-ones or all-zeros */
typedef struct vacc {
    __m256d lane[4]; /* virtual lanes 0-3, 4-7, 8-11, 12-15 */
} vacc;

static inline vf vf_load(const float *p) { return _mm256_loadu_ps(p); }
static inline void vf_store(float *p, vf v) { _mm256_storeu_ps(p, v); }
static inline vf vf_set(float f) { return _mm256_set1_ps(f); }
static inline vf vf_add(vf a, vf b) { return _mm256_add_ps(a, b); }
static inline vf vf_sub(vf a, vf b) { return _mm256_sub_ps(a, b); }
static inline vf vf_mul(vf a, vf b) { return _mm256_mul_ps(a, b); }
static inline vf vf_div(vf a, vf b) { return _mm256_div_ps(a, b); }
static inline vf vf_sqrt(vf a) { return _mm256_sqrt_ps(a); }
static inline vf vf_fma(vf a, vf b, vf c) { return _mm256_fmadd_ps(a, b, c); }
/* maxps/minps return the second operand when either is NaN: a > b ? a : b. */
static inline vf vf_max(vf a, vf b) { return _mm256_max_ps(a, b); }
static inline vf vf_min(vf a, vf b) { return _mm256_min_ps(a, b); }
static inline vf vf_abs(vf a) { return _mm256_andnot_ps(vf_set(-0.0f), a); }
static inline vf vf_neg(vf a) { return _mm256_xor_ps(vf_set(-0.0f), a); }
static inline vm vf_eq(vf a, vf b) { return _mm256_cmp_ps(a, b, _CMP_EQ_OQ); }
static inline vm vf_lt(vf a, vf b) { return _mm256_cmp_ps(a, b, _CMP_LT_OQ); }
static inline vm vf_le(vf a, vf b) { return _mm256_cmp_ps(a, b, _CMP_LE_OQ); }
static inline vm vf_gt(vf a, vf b) { return _mm256_cmp_ps(a, b, _CMP_GT_OQ); }
static inline vm vf_ge(vf a, vf b) { return _mm256_cmp_ps(a, b, _CMP_GE_OQ); }
static inline vm vm_and(vm a, vm b) { return _mm256_and_ps(a, b); }
static inline vm vm_or(vm a, vm b) { return _mm256_or_ps(a, b); }
static inline vm vm_not(vm a) { return _mm256_xor_ps(a, _mm256_castsi256_ps(_mm256_set1_epi32(-1))); }
static inline int vm_any(vm a) { return _mm256_movemask_ps(a) != 0; }
static inline unsigned vm_count(vm a)
{
    return (unsigned)__builtin_popcount((unsigned)_mm256_movemask_ps(a));
}
/* Written as asm because GCC 12 turns the blendv intrinsic into a compare against zero
 * followed by the blend: one more instruction per select, for masks that are already
 * all-ones or all-zeros. */
static inline vf vf_select(vm m, vf a, vf b)
{
    __m256 r;
    __asm__("vblendvps %3, %2, %1, %0" : "=x"(r) : "x"(b), "xm"(a), "x"(m));
    return r;
}
/* blendv reads only the sign bit of its mask */
static inline vf vf_select_sign(vf s, vf a, vf b) { return vf_select(s, a, b); }
static inline vf vf_pow2_rounded(vf t)
{
    __m256i bits = _mm256_slli_epi32(_mm256_castps_si256(t), 23);
    return _mm256_castsi256_ps(_mm256_add_epi32(bits, _mm256_set1_epi32(127 << 23)));
}
/* -|a| in one operation: the sign bit set */
#define DAFL_HAVE_NEG_ABS
static inline vf vf_neg_abs(vf a) { return _mm256_or_ps(vf_set(-0.0f), a); }
/* m ? -a : a as a sign flip by the masked sign bit, without a blend */
#define DAFL_HAVE_NEG_WHERE
static inline vf vf_neg_where(vm m, vf a)
{
    return _mm256_xor_ps(_mm256_and_ps(m, vf_set(-0.0f)), a);
}
#define DAFL_HAVE_AND_MASK
static inline vf vf_and_mask(vm m, vf a) { return _mm256_and_ps(m, a); }
/* The positive count in a vector: a set lane is all ones, -1 as an integer. */
#define DAFL_HAVE_VCNT
typedef __m256i vcnt;
static inline vcnt vcnt_zero(void) { return _mm256_setzero_si256(); }
static inline void vcnt_add(vcnt *c, vm m) { *c = _mm256_sub_epi32(*c, _mm256_castps_si256(m)); }
static inline unsigned vcnt_total(vcnt c)
{
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(c), _mm256_extracti128_si256(c, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
    return (unsigned)_mm_cvtsi128_si32(s);
}
static inline vf vf_log(vf a) { return Sleef_logf8_u10avx2(a); }
static inline vf vf_log1p(vf a) { return Sleef_log1pf8_u10avx2(a); }
static inline vf vf_pow(vf a, vf b) { return Sleef_powf8_u10avx2(a, b); }

static inline void vacc_zero(vacc *acc)
{
    for (int i = 0; i < 4; i++)
        acc->lane[i] = _mm256_setzero_pd();
}
/* part 0: virtual lanes 0-7, part 1: 8-15 */
static inline void vacc_add(vacc *acc, int part, vf v)
{
    __m256d *lanes = acc->lane + 2 * part;
    lanes[0] = _mm256_add_pd(lanes[0], _mm256_cvtps_pd(_mm256_castps256_ps128(v)));
    lanes[1] = _mm256_add_pd(lanes[1], _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
}
static inline void vacc_store(const vacc *acc, double out[16])
{
    for (int i = 0; i < 4; i++)
        _mm256_storeu_pd(out + 4 * i, acc->lane[i]);
}

/* Half precision (src/kernels/half.h's bits): float16 by F16C (vcvtph2ps, vcvtps2ph with
 * round-to-nearest-even in the immediate), bfloat16 by integer code: widening is a
 * 16-bit shift, narrowing adds 0x7fff plus the kept lowest bit and keeps the top half,
 * a NaN its top half with the quiet bit set.  MXCSR cannot change these bits: the
 * immediate's bit 2 is clear, so vcvtps2ph does not read MXCSR.RC; it ignores FTZ (its
 * float16 subnormals stay); DAZ could only zero a float32 subnormal, which rounds to a
 * zero of its sign anyway; vcvtph2ps widens exactly.  Measured on Zen 3 with DAZ, FTZ
 * and each rounding mode set: the same bits for every float16 and for a million float32
 * patterns.  The kernels run with MXCSR at 0x1F80 besides (src/fpenv.h).  The formulas,
 * and where AVX-512 uses vcvtneps2bf16 instead: arch/x86/losses_avx512.c. */
#define DAFL_HAVE_HALF_VECTOR
static inline vf vf_load_f16(const uint16_t *p)
{
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)p));
}
static inline void vf_store_f16(uint16_t *p, vf v)
{
    _mm_storeu_si128((__m128i *)(void *)p, _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT));
}
static inline vf vf_load_bf16(const uint16_t *p)
{
    __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(const void *)p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(w, 16));
}
static inline void vf_store_bf16(uint16_t *p, vf v)
{
    __m256i b = _mm256_castps_si256(v);
    __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(b, 16), _mm256_set1_epi32(1));
    __m256i r = _mm256_srli_epi32(
        _mm256_add_epi32(_mm256_add_epi32(b, _mm256_set1_epi32(0x7fff)), lsb), 16);
    __m256i nan = _mm256_or_si256(_mm256_srli_epi32(b, 16), _mm256_set1_epi32(0x40));
    r = _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(r), _mm256_castsi256_ps(nan),
                                             _mm256_cmp_ps(v, v, _CMP_UNORD_Q)));
    /* eight 32-bit lanes (each < 2^16) to eight 16-bit: pack within 128-bit halves */
    __m256i packed = _mm256_packus_epi32(r, r); /* lanes 0-3, 0-3 | 4-7, 4-7 */
    packed = _mm256_permute4x64_epi64(packed, 0x08); /* qwords 0, 2 */
    _mm_storeu_si128((__m128i *)(void *)p, _mm256_castsi256_si128(packed));
}
/* 16 floats (a group) into bfloat16 with one pack and one NaN test for both vectors:
 * 14 operations where two vf_store_bf16 take 22.  cmpunord(v0, v1) is true in a lane
 * where either vector holds a NaN; a group with one goes through vf_store_bf16 above.
 * packus works within 128-bit halves (v0 0-3, v1 0-3 | v0 4-7, v1 4-7): the qword
 * permutation 0xd8 puts them in order. */
#define DAFL_HAVE_STORE_BF16_GROUP
static inline void vf_store_bf16_group(uint16_t *p, const float *src)
{
    __m256 v0 = _mm256_loadu_ps(src), v1 = _mm256_loadu_ps(src + 8);
    if (_mm256_movemask_ps(_mm256_cmp_ps(v0, v1, _CMP_UNORD_Q))) {
        vf_store_bf16(p, v0);
        vf_store_bf16(p + 8, v1);
        return;
    }
    const __m256i one = _mm256_set1_epi32(1), bias = _mm256_set1_epi32(0x7fff);
    __m256i b0 = _mm256_castps_si256(v0), b1 = _mm256_castps_si256(v1);
    __m256i r0 = _mm256_add_epi32(_mm256_add_epi32(b0, bias),
                                  _mm256_and_si256(_mm256_srli_epi32(b0, 16), one));
    __m256i r1 = _mm256_add_epi32(_mm256_add_epi32(b1, bias),
                                  _mm256_and_si256(_mm256_srli_epi32(b1, 16), one));
    __m256i packed = _mm256_packus_epi32(_mm256_srli_epi32(r0, 16), _mm256_srli_epi32(r1, 16));
    _mm256_storeu_si256((__m256i *)(void *)p, _mm256_permute4x64_epi64(packed, 0xd8));
}

/* softmax focal: 16 pixels per vector, see arch/x86/softmax_avx2.c */
#define DAFL_SOFTMAX_ELSEWHERE dafl_softmax_focal_avx2_pairs
#include "kernels/loss_kernels.h"
