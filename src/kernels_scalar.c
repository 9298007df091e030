/*
 * The scalar reference kernels: the per-element math of src/kernels/loss_kernels.h with
 * one float per "vector".  On x86-64 this file is compiled twice: with FMA (SLEEF's
 * purecfma functions; bit-identical to the SIMD kernels) and without (SLEEF's purec
 * functions, for CPUs before 2013: the second class of results, see dafl.h).
 */
#include <math.h>
#include <sleef.h>
#include <stdint.h>
#include <string.h>

#if defined(DAFL_SCALAR_NO_FMA)
#define DAFL_ISA_SUFFIX scalar_nofma
#define SLEEF_SCALAR(fn) Sleef_##fn##f1_u10purec
#else
#if !defined(FP_FAST_FMA) && !defined(__FP_FAST_FMA)
#error "the FMA scalar kernels need a compiler target with FMA (-mfma on x86-64)"
#endif
#define DAFL_ISA_SUFFIX scalar
#define SLEEF_SCALAR(fn) Sleef_##fn##f1_u10purecfma
#endif
#define DAFL_ISA_ENUM DAFL_ISA_SCALAR
#define DAFL_ISA_NAME "scalar"

#define VW 1
typedef float vf;
typedef int vm;
typedef struct vacc {
    double lane[16];
} vacc;

static inline vf vf_load(const float *p) { return *p; }
static inline void vf_store(float *p, vf v) { *p = v; }
static inline vf vf_set(float f) { return f; }
static inline vf vf_add(vf a, vf b) { return a + b; }
static inline vf vf_sub(vf a, vf b) { return a - b; }
static inline vf vf_mul(vf a, vf b) { return a * b; }
static inline vf vf_div(vf a, vf b) { return a / b; }
static inline vf vf_sqrt(vf a) { return sqrtf(a); }
static inline vf vf_fma(vf a, vf b, vf c) { return fmaf(a, b, c); }
static inline vf vf_max(vf a, vf b) { return a > b ? a : b; }
static inline vf vf_min(vf a, vf b) { return a < b ? a : b; }
static inline vf vf_abs(vf a) { return fabsf(a); }
static inline vf vf_neg(vf a) { return -a; }
static inline vm vf_eq(vf a, vf b) { return a == b; }
static inline vm vf_lt(vf a, vf b) { return a < b; }
static inline vm vf_le(vf a, vf b) { return a <= b; }
static inline vm vf_gt(vf a, vf b) { return a > b; }
static inline vm vf_ge(vf a, vf b) { return a >= b; }
static inline vm vm_and(vm a, vm b) { return a & b; }
static inline vm vm_or(vm a, vm b) { return a | b; }
static inline vm vm_not(vm a) { return !a; }
static inline int vm_any(vm a) { return a; }
static inline unsigned vm_count(vm a) { return (unsigned)a; }
static inline vf vf_select(vm m, vf a, vf b) { return m ? a : b; }
static inline vf vf_select_sign(vf s, vf a, vf b)
{
    uint32_t bits;
    memcpy(&bits, &s, sizeof bits);
    return bits >> 31 ? a : b;
}
static inline vf vf_pow2_rounded(vf t)
{
    uint32_t bits;
    memcpy(&bits, &t, sizeof bits);
    bits = (bits << 23) + (127u << 23);
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}
static inline vf vf_log(vf a) { return SLEEF_SCALAR(log)(a); }
static inline vf vf_log1p(vf a) { return SLEEF_SCALAR(log1p)(a); }
static inline vf vf_pow(vf a, vf b) { return SLEEF_SCALAR(pow)(a, b); }

static inline void vacc_zero(vacc *acc)
{
    for (int i = 0; i < 16; i++)
        acc->lane[i] = 0.0;
}
static inline void vacc_add(vacc *acc, int part, vf v) { acc->lane[part] += (double)v; }
static inline void vacc_store(const vacc *acc, double out[16])
{
    for (int i = 0; i < 16; i++)
        out[i] = acc->lane[i];
}

#include "kernels/loss_kernels.h"
