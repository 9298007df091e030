/*
 * AVX2 + FMA kernels: the math of src/kernels/loss_kernels.h on 8 floats per vector.
 * Compiled with -mavx2 -mfma only; called only when the CPU and OS support both.
 */
#include <immintrin.h>
#include <sleef.h>

#define DAFL_ISA_SUFFIX avx2
#define DAFL_ISA_ENUM DAFL_ISA_AVX2
#define DAFL_ISA_NAME "avx2"

#define VW 8
typedef __m256 vf;
typedef __m256 vm; /* all-ones / all-zeros lanes */
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
static inline vf vf_fma(vf a, vf b, vf c) { return _mm256_fmadd_ps(a, b, c); }
/* maxps/minps return the second operand when either is NaN: a > b ? a : b. */
static inline vf vf_max(vf a, vf b) { return _mm256_max_ps(a, b); }
static inline vf vf_min(vf a, vf b) { return _mm256_min_ps(a, b); }
static inline vf vf_abs(vf a) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), a); }
static inline vf vf_neg(vf a) { return _mm256_xor_ps(_mm256_set1_ps(-0.0f), a); }
static inline vm vf_eq(vf a, vf b) { return _mm256_cmp_ps(a, b, _CMP_EQ_OQ); }
static inline vm vf_lt(vf a, vf b) { return _mm256_cmp_ps(a, b, _CMP_LT_OQ); }
static inline vm vf_le(vf a, vf b) { return _mm256_cmp_ps(a, b, _CMP_LE_OQ); }
static inline vm vf_gt(vf a, vf b) { return _mm256_cmp_ps(a, b, _CMP_GT_OQ); }
static inline vm vf_ge(vf a, vf b) { return _mm256_cmp_ps(a, b, _CMP_GE_OQ); }
static inline vm vm_and(vm a, vm b) { return _mm256_and_ps(a, b); }
static inline vm vm_or(vm a, vm b) { return _mm256_or_ps(a, b); }
static inline vm vm_not(vm a) { return _mm256_xor_ps(a, _mm256_castsi256_ps(_mm256_set1_epi32(-1))); }
static inline int vm_any(vm a) { return _mm256_movemask_ps(a) != 0; }
static inline unsigned vm_count(vm a) { return (unsigned)__builtin_popcount(_mm256_movemask_ps(a)); }
/* Written as asm because GCC 12 turns the blendv intrinsic into a compare against zero
 * followed by the blend: one more instruction per select, for masks that are already
 * all-ones or all-zeros. */
static inline vf vf_select(vm m, vf a, vf b)
{
    vf r;
    __asm__("vblendvps %3, %2, %1, %0" : "=x"(r) : "x"(b), "xm"(a), "x"(m));
    return r;
}
static inline vf vf_round(vf a)
{
    return _mm256_round_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
}
static inline vf vf_pow2i(vf n)
{
    __m256i biased = _mm256_add_epi32(_mm256_cvttps_epi32(n), _mm256_set1_epi32(127));
    return _mm256_castsi256_ps(_mm256_slli_epi32(biased, 23));
}
static inline vf vf_exp(vf a) { return Sleef_expf8_u10avx2(a); }
static inline vf vf_log(vf a) { return Sleef_logf8_u10avx2(a); }
static inline vf vf_log1p(vf a) { return Sleef_log1pf8_u10avx2(a); }

static inline void vacc_zero(vacc *acc)
{
    for (int i = 0; i < 4; i++)
        acc->lane[i] = _mm256_setzero_pd();
}
static inline void vacc_add(vacc *acc, int part, vf v)
{
    acc->lane[2 * part] = _mm256_add_pd(acc->lane[2 * part],
                                        _mm256_cvtps_pd(_mm256_castps256_ps128(v)));
    acc->lane[2 * part + 1] = _mm256_add_pd(acc->lane[2 * part + 1],
                                            _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
}
static inline void vacc_store(const vacc *acc, double out[16])
{
    for (int i = 0; i < 4; i++)
        _mm256_storeu_pd(out + 4 * i, acc->lane[i]);
}

#include "kernels/loss_kernels.h"
