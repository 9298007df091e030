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

#define DAFL_ISA_SUFFIX avx512
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
static inline vf vf_pow2_rounded(vf t)
{
    __m512i bits = _mm512_slli_epi32(_mm512_castps_si512(t), 23);
    return _mm512_castsi512_ps(_mm512_add_epi32(bits, _mm512_set1_epi32(127 << 23)));
}
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

#include "kernels/loss_kernels.h"
