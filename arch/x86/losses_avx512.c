/*
 * AVX-512 kernels: the math of src/kernels/loss_kernels.h on 16 floats per vector, with
 * opmask registers for the lane masks.  Compiled with AVX-512 F/DQ/BW/VL flags only;
 * called only when the CPU and OS support them.
 *
 * The test build `meson setup -Davx512_emulation=true` compiles this same file with
 * -mavx2 -mfma against SIMDe's portable AVX-512 intrinsics instead
 * (tests/avx512_emulation), so that the suite runs it on a CPU without AVX-512.
 */
#if defined(DAFL_AVX512_EMULATION)
#include "avx512_on_avx2.h"
#else
#include <immintrin.h>
#include <sleef.h>
#endif

#if defined(DAFL_AVX512_BF16) /* losses_avx512_bf16.c: the table for AVX512_BF16 CPUs */
#define DAFL_ISA_SUFFIX avx512_bf16
#else
#define DAFL_ISA_SUFFIX avx512
#endif
#define DAFL_ISA_ENUM DAFL_ISA_AVX512
#define DAFL_ISA_NAME "avx512"

#define VW 16
typedef __m512 vf;
typedef __mmask16 vm;
typedef struct vacc {
    __m512d lane[2]; /* virtual lanes 0-7, 8-15 */
} vacc;

static inline vf vf_load(const float *p) { return _mm512_loadu_ps(p); }
static inline void vf_store(float *p, vf v) { _mm512_storeu_ps(p, v); }
static inline vf vf_set(float f) { return _mm512_set1_ps(f); }
static inline vf vf_add(vf a, vf b) { return _mm512_add_ps(a, b); }
static inline vf vf_sub(vf a, vf b) { return _mm512_sub_ps(a, b); }
static inline vf vf_mul(vf a, vf b) { return _mm512_mul_ps(a, b); }
static inline vf vf_div(vf a, vf b) { return _mm512_div_ps(a, b); }
static inline vf vf_sqrt(vf a) { return _mm512_sqrt_ps(a); }
static inline vf vf_fma(vf a, vf b, vf c) { return _mm512_fmadd_ps(a, b, c); }
/* vmaxps/vminps return the second operand when either is NaN: a > b ? a : b. */
static inline vf vf_max(vf a, vf b) { return _mm512_max_ps(a, b); }
static inline vf vf_min(vf a, vf b) { return _mm512_min_ps(a, b); }
static inline vf vf_abs(vf a) { return _mm512_abs_ps(a); }
static inline vf vf_neg(vf a) { return _mm512_xor_ps(_mm512_set1_ps(-0.0f), a); }
static inline vm vf_eq(vf a, vf b) { return _mm512_cmp_ps_mask(a, b, _CMP_EQ_OQ); }
static inline vm vf_lt(vf a, vf b) { return _mm512_cmp_ps_mask(a, b, _CMP_LT_OQ); }
static inline vm vf_le(vf a, vf b) { return _mm512_cmp_ps_mask(a, b, _CMP_LE_OQ); }
static inline vm vf_gt(vf a, vf b) { return _mm512_cmp_ps_mask(a, b, _CMP_GT_OQ); }
static inline vm vf_ge(vf a, vf b) { return _mm512_cmp_ps_mask(a, b, _CMP_GE_OQ); }
static inline vm vm_and(vm a, vm b) { return (vm)(a & b); }
static inline vm vm_or(vm a, vm b) { return (vm)(a | b); }
static inline vm vm_not(vm a) { return (vm)~a; }
static inline int vm_any(vm a) { return a != 0; }
static inline unsigned vm_count(vm a) { return (unsigned)__builtin_popcount(a); }
static inline vf vf_select(vm m, vf a, vf b) { return _mm512_mask_blend_ps(m, b, a); }
static inline vf vf_select_sign(vf s, vf a, vf b)
{
    return _mm512_mask_blend_ps(_mm512_movepi32_mask(_mm512_castps_si512(s)), b, a);
}
/* vscalefps: e * 2^floor(n) rounded once in MXCSR's mode (to nearest even; dafl runs its
 * kernels with MXCSR at 0x1F80, src/fpenv.h, so DAZ and FTZ are clear and a subnormal
 * result is rounded, not flushed): exp's last step in one FP operation (exp_scale). */
#define DAFL_HAVE_SCALEF
static inline vf vf_scalef(vf e, vf n) { return _mm512_scalef_ps(e, n); }
static inline vf vf_log(vf a) { return Sleef_logf16_u10avx512f(a); }
static inline vf vf_log1p(vf a) { return Sleef_log1pf16_u10avx512f(a); }
static inline vf vf_pow(vf a, vf b) { return Sleef_powf16_u10avx512f(a, b); }

/* A partial group (n < 16 elements) in one masked load or store: lanes outside the mask
 * are not accessed, so nothing beyond the caller's arrays is touched even at a page end. */
#define DAFL_HAVE_TAIL_COPY
static inline __mmask16 first_lanes(size_t n) { return (__mmask16)((1u << n) - 1u); }
static inline void tail_copy_in(float buf[16], const float *src, size_t n)
{
    _mm512_storeu_ps(buf, _mm512_maskz_loadu_ps(first_lanes(n), src));
}
static inline void tail_copy_out(float *dst, const float buf[16], size_t n)
{
    _mm512_mask_storeu_ps(dst, first_lanes(n), _mm512_loadu_ps(buf));
}

static inline void vacc_zero(vacc *acc)
{
    acc->lane[0] = _mm512_setzero_pd();
    acc->lane[1] = _mm512_setzero_pd();
}
static inline void vacc_add(vacc *acc, int part, vf v)
{
    (void)part; /* one vector is all 16 lanes */
    acc->lane[0] = _mm512_add_pd(acc->lane[0], _mm512_cvtps_pd(_mm512_castps512_ps256(v)));
    acc->lane[1] = _mm512_add_pd(acc->lane[1],
                                 _mm512_cvtps_pd(_mm512_extractf32x8_ps(v, 1)));
}
static inline void vacc_store(const vacc *acc, double out[16])
{
    _mm512_storeu_pd(out, acc->lane[0]);
    _mm512_storeu_pd(out + 8, acc->lane[1]);
}

/* Half precision, with the bits of src/kernels/half.h (SPEC 13), 16 elements at a time:
 *   float16: vcvtph2ps and vcvtps2ph (AVX512F), the rounding in the immediate (0: to
 *     nearest, ties to even; bit 2 clear, so MXCSR.RC is not read).  Neither depends on
 *     the rest of MXCSR: vcvtps2ph ignores FTZ and gives float16 subnormals, and a float32
 *     subnormal, which DAZ would read as zero, rounds to a zero of its sign either way;
 *     vcvtph2ps widens exactly (every float16 is a normal float32); F16C's forms gave the
 *     same bits on Zen 3 with DAZ, FTZ and each rounding mode set in MXCSR.  dafl runs
 *     its kernels with MXCSR at 0x1F80 besides (src/fpenv.h).  A NaN keeps its sign and
 *     the top of its payload and becomes quiet: half.h's dafl_float_to_f16 and
 *     dafl_f16_to_float.
 *   bfloat16: widening puts the 16 bits above 16 zero bits, in one operation: vpermw
 *     (AVX512BW) moves word k of the 16 loaded to the upper word of lane k, and its zero
 *     mask clears every lower word (vpmovzxwd and a shift took two: 1.35x the float32
 *     call's time for MSE, 64K elements, against 1.09x now); narrowing rounds the float's
 *     bits b to nearest even by an integer add, (b + 0x7fff + ((b >> 16) & 1)) >> 16
 *     (a carry out of the mantissa moves into the exponent, so the largest floats round
 *     to infinity as they should), and a NaN, where the add could carry into the sign or
 *     clear the mantissa, is instead b with the quiet bit 0x400000 set, then its top half:
 *     dafl_float_to_bf16.  vpmovdw keeps the low 16 bits of each lane.
 *   vcvtneps2bf16 (AVX512_BF16; the table of losses_avx512_bf16.c, chosen where CPUID
 *     leaf 7 subleaf 1 reports it) narrows 16 lanes in one instruction.  Intel's SDM
 *     (vol. 2, VCVTNEPS2BF16) gives it this rounding (the same integer add) and this NaN
 *     rule (the top half, bit 6 set), but "output denormals are always flushed to zero
 *     and input denormals are always treated as zero", and it neither reads nor updates
 *     MXCSR.  tests/avx512_emulation/test_avx512_bf16.c measured it on Zen 4 (family 25
 *     model 17) over 1,048,576 float32 patterns (every top half with the low halves that
 *     decide the rounding): it gives the SDM's bits everywhere, and SPEC 13's everywhere
 *     but on the float32 subnormals (4,076 patterns), which it makes a zero of their sign
 *     where SPEC 13 rounds them to a bfloat16 subnormal or up to 2^-126.  So a vector
 *     with a subnormal lane (vfpclassps, class 0x20) takes the integer path; every other
 *     vector takes the instruction: 3 operations (vfpclassps, kortest, vcvtneps2bf16)
 *     in place of the integer path's 8 (two shifts, and, two adds, compare, masked or,
 *     the two-operation vpmovdw).
 */
#define DAFL_HAVE_HALF_VECTOR
#define DAFL_NARROW_IN_STEPS /* see src/kernels/loss_kernels.h */
static inline vf vf_load_f16(const uint16_t *p)
{
    return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)p));
}
static inline void vf_store_f16(uint16_t *p, vf v)
{
    _mm256_storeu_si256((__m256i *)(void *)p, _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT));
}
static inline vf vf_load_bf16(const uint16_t *p)
{
    const __m512i idx = _mm512_set_epi16(15, 0, 14, 0, 13, 0, 12, 0, 11, 0, 10, 0, 9, 0, 8, 0,
                                         7, 0, 6, 0, 5, 0, 4, 0, 3, 0, 2, 0, 1, 0, 0, 0);
    __m512i h = _mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(const void *)p));
    return _mm512_castsi512_ps(_mm512_maskz_permutexvar_epi16(0xAAAAAAAAu, idx, h));
}
static inline void vf_store_bf16(uint16_t *p, vf v)
{
#if defined(DAFL_AVX512_BF16)
    if (!_mm512_fpclass_ps_mask(v, 0x20)) { /* no subnormal lane */
        _mm256_storeu_si256((__m256i *)(void *)p, (__m256i)_mm512_cvtneps_pbh(v));
        return;
    }
#endif
    __m512i b = _mm512_castps_si512(v);
    __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(b, 16), _mm512_set1_epi32(1));
    __m512i r = _mm512_add_epi32(_mm512_add_epi32(b, _mm512_set1_epi32(0x7fff)), lsb);
    r = _mm512_mask_or_epi32(r, _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q), b,
                             _mm512_set1_epi32(0x400000));
    _mm256_storeu_si256((__m256i *)(void *)p, _mm512_cvtepi32_epi16(_mm512_srli_epi32(r, 16)));
}

#include "kernels/loss_kernels.h"
