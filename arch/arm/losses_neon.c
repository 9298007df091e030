/*
 * AArch64 Advanced SIMD kernels: the math of src/kernels/loss_kernels.h on 4 floats per
 * vector.  NEON's fmax/fmin propagate NaN, so max/min are written as compare + select to
 * match the x86 and scalar definition a > b ? a : b exactly.
 */
#include <arm_neon.h>
#include <sleef.h>

#define DAFL_ISA_SUFFIX neon
#define DAFL_ISA_ENUM DAFL_ISA_NEON
#define DAFL_ISA_NAME "neon"

#define VW 4
typedef float32x4_t vf;
typedef uint32x4_t vm;
typedef struct vacc {
    float64x2_t lane[8]; /* virtual lanes 0-1, 2-3, ..., 14-15 */
} vacc;

static inline vf vf_load(const float *p) { return vld1q_f32(p); }
static inline void vf_store(float *p, vf v) { vst1q_f32(p, v); }
static inline vf vf_set(float f) { return vdupq_n_f32(f); }
static inline vf vf_add(vf a, vf b) { return vaddq_f32(a, b); }
static inline vf vf_sub(vf a, vf b) { return vsubq_f32(a, b); }
static inline vf vf_mul(vf a, vf b) { return vmulq_f32(a, b); }
static inline vf vf_div(vf a, vf b) { return vdivq_f32(a, b); }
static inline vf vf_sqrt(vf a) { return vsqrtq_f32(a); }
static inline vf vf_fma(vf a, vf b, vf c) { return vfmaq_f32(c, a, b); }
static inline vf vf_max(vf a, vf b) { return vbslq_f32(vcgtq_f32(a, b), a, b); }
static inline vf vf_min(vf a, vf b) { return vbslq_f32(vcltq_f32(a, b), a, b); }
static inline vf vf_abs(vf a) { return vabsq_f32(a); }
static inline vf vf_neg(vf a) { return vnegq_f32(a); }
static inline vm vf_eq(vf a, vf b) { return vceqq_f32(a, b); }
static inline vm vf_lt(vf a, vf b) { return vcltq_f32(a, b); }
static inline vm vf_le(vf a, vf b) { return vcleq_f32(a, b); }
static inline vm vf_gt(vf a, vf b) { return vcgtq_f32(a, b); }
static inline vm vf_ge(vf a, vf b) { return vcgeq_f32(a, b); }
static inline vm vm_and(vm a, vm b) { return vandq_u32(a, b); }
static inline vm vm_or(vm a, vm b) { return vorrq_u32(a, b); }
static inline vm vm_not(vm a) { return vmvnq_u32(a); }
static inline int vm_any(vm a) { return vmaxvq_u32(a) != 0; }
static inline unsigned vm_count(vm a) { return vaddvq_u32(vshrq_n_u32(a, 31)); }
static inline vf vf_select(vm m, vf a, vf b) { return vbslq_f32(m, a, b); }
static inline vf vf_select_sign(vf s, vf a, vf b)
{
    /* the sign bit copied into every bit of the lane */
    vm m = vreinterpretq_u32_s32(vshrq_n_s32(vreinterpretq_s32_f32(s), 31));
    return vbslq_f32(m, a, b);
}
#define DAFL_HAVE_AND_MASK
static inline vf vf_and_mask(vm m, vf a)
{
    return vreinterpretq_f32_u32(vandq_u32(m, vreinterpretq_u32_f32(a)));
}
static inline vf vf_pow2_rounded(vf t)
{
    uint32x4_t bits = vshlq_n_u32(vreinterpretq_u32_f32(t), 23);
    return vreinterpretq_f32_u32(vaddq_u32(bits, vdupq_n_u32(127u << 23)));
}
/* -|a| in one operation: the sign bit set */
#define DAFL_HAVE_NEG_ABS
static inline vf vf_neg_abs(vf a)
{
    return vreinterpretq_f32_u32(vorrq_u32(vreinterpretq_u32_f32(a), vdupq_n_u32(0x80000000u)));
}
/* The positive count in a vector: a set lane is all ones, -1 as an integer. */
#define DAFL_HAVE_VCNT
typedef uint32x4_t vcnt;
static inline vcnt vcnt_zero(void) { return vdupq_n_u32(0); }
static inline void vcnt_add(vcnt *c, vm m) { *c = vsubq_u32(*c, m); }
static inline unsigned vcnt_total(vcnt c) { return vaddvq_u32(c); }
static inline vf vf_log(vf a) { return Sleef_logf4_u10advsimd(a); }
static inline vf vf_log1p(vf a) { return Sleef_log1pf4_u10advsimd(a); }
static inline vf vf_pow(vf a, vf b) { return Sleef_powf4_u10advsimd(a, b); }

static inline void vacc_zero(vacc *acc)
{
    for (int i = 0; i < 8; i++)
        acc->lane[i] = vdupq_n_f64(0.0);
}
static inline void vacc_add(vacc *acc, int part, vf v)
{
    acc->lane[2 * part] = vaddq_f64(acc->lane[2 * part], vcvt_f64_f32(vget_low_f32(v)));
    acc->lane[2 * part + 1] = vaddq_f64(acc->lane[2 * part + 1], vcvt_high_f64_f32(v));
}
static inline void vacc_store(const vacc *acc, double out[16])
{
    for (int i = 0; i < 8; i++)
        vst1q_f64(out + 2 * i, acc->lane[i]);
}

/* Half precision (src/kernels/half.h's bits): float16 by FCVT, which follows FPCR, and
 * every entry point sets FPCR to 0 (src/fpenv.h): RMode round to nearest even, FZ and
 * FZ16 clear (subnormal inputs and results kept), DN clear (a NaN keeps its payload,
 * made quiet), AHP clear (IEEE half, not the alternative format).  bfloat16 by integer
 * code: widening a 16-bit shift, narrowing adds 0x7fff plus the kept lowest bit and
 * keeps the top half, a NaN its top half with the quiet bit set (see
 * arch/x86/losses_avx512.c).  tests/test_half.c checks the bits of every float16 and
 * bfloat16 and of float32 values at every rounding point, also when the caller's FPCR
 * sets FZ, FZ16 and DN and rounds upward. */
#define DAFL_HAVE_HALF_VECTOR
static inline vf vf_load_f16(const uint16_t *p)
{
    return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p)));
}
static inline void vf_store_f16(uint16_t *p, vf v)
{
    vst1_u16(p, vreinterpret_u16_f16(vcvt_f16_f32(v)));
}
static inline vf vf_load_bf16(const uint16_t *p)
{
    return vreinterpretq_f32_u32(vshll_n_u16(vld1_u16(p), 16));
}
static inline void vf_store_bf16(uint16_t *p, vf v)
{
    uint32x4_t b = vreinterpretq_u32_f32(v);
    uint32x4_t lsb = vandq_u32(vshrq_n_u32(b, 16), vdupq_n_u32(1));
    uint32x4_t r = vaddq_u32(vaddq_u32(b, vdupq_n_u32(0x7fff)), lsb);
    uint32x4_t nan = vorrq_u32(b, vdupq_n_u32(0x400000)); /* quiet bit, top half kept */
    r = vbslq_u32(vceqq_f32(v, v), r, nan);
    vst1_u16(p, vshrn_n_u32(r, 16));
}

#define DAFL_ONE_PASS_BLOCKS /* see src/kernels/loss_kernels.h */
#include "kernels/loss_kernels.h"
