/*
 * The AVX-512 intrinsics and SLEEF functions of arch/x86/losses_avx512.c, on an AVX2 + FMA
 * CPU.  Used only by the test build `meson setup -Davx512_emulation=true` (README.md
 * here), never by a release build.
 *
 * SIMDe's portable AVX-512 (Debian libsimde-dev 0.7.4) provides most intrinsics on AVX2
 * registers.  Those it lacks, or computes differently from the hardware, are defined
 * below from Intel's documented semantics (Intel 64 and IA-32 Architectures Software
 * Developer's Manual, vol. 2, and the Intrinsics Guide); test_avx512_fidelity checks
 * every intrinsic the kernel uses against those semantics, written there independently:
 *   _mm512_cvttps_epi32     missing (GCC's own AVX-512 version would be inlined and the
 *                           build fails); VCVTTPS2DQ truncates, and gives 0x80000000 for
 *                           NaN and out-of-range lanes, exactly as its VEX form does
 *   _mm512_extractf32x8_ps  missing; VEXTRACTF32X8: imm8 bit 0 picks the 256-bit half
 *   _mm512_cvtps_pd         missing; VCVTPS2PD widens exactly
 *   _mm512_abs_ps           SIMDe's keeps the sign of -0.0 and of negative NaNs; the
 *                           intrinsic is VPANDD with 0x7fffffff, which clears it
 *   _mm512_maskz_loadu_ps, _mm512_mask_storeu_ps
 *                           missing; lanes whose mask bit is clear are not accessed (no
 *                           fault, no write), read as 0 in the load
 *   _mm512_cvtph_ps, _mm512_cvtps_ph
 *                           missing; VCVTPH2PS and VCVTPS2PH convert each lane as their
 *                           256-bit F16C forms do (the SDM gives one operation for every
 *                           vector length), so each half runs the F16C instruction itself.
 *                           The build's flags are -mavx2 -mfma: these two functions are
 *                           compiled for F16C by a target attribute (not inlined into the
 *                           kernels), and every CPU that runs the table has F16C (src/cpu.c
 *                           counts AVX2 only with it)
 *   _mm512_cvtepu16_epi32   missing; VPMOVZXWD zero-extends each 16-bit lane
 *   _mm512_cvtepi32_epi16   missing; VPMOVDW keeps the low 16 bits of each lane
 *   _mm512_scalef_ps        SIMDe's flushes subnormal inputs and builds 2^floor(b) with
 *                           exp2, which is 0 or subnormal below 2^-126, so a result in
 *                           the subnormal range rounds twice or vanishes.  VSCALEFPS
 *                           (MXCSR.DAZ clear) rounds a * 2^floor(b) once; its table of
 *                           special cases: a signalling NaN gives a quiet a, a quiet NaN
 *                           gives +inf for b = +inf, +0 for b = -inf and itself otherwise;
 *                           else a NaN b gives a quiet b; 0 * 2^+inf and inf * 2^-inf are
 *                           the default NaN; otherwise an infinite b scales to an infinity
 *                           or a zero of a's sign (measured on Zen 4: the same).
 *                           Here, lane by lane, in double: a * 2^k is exact in double for
 *                           every float a and |k| <= 400, and its conversion to float is
 *                           the one rounding (k clamped there changes no result)
 * Each Sleef_*f16_u10avx512f call becomes two calls of the AVX2 function on the two
 * halves: SLEEF's FMA variants give the same bits on every ISA.
 *
 * Nothing here uses an AVX-512 instruction: the whole file compiles with -mavx2 -mfma, and
 * the build checks the library for EVEX, zmm and opmask instructions
 * (check_no_avx512.sh).
 *
 * Deliberate bugs, for mutation_check.sh, which shows that the tests catch them:
 *   DAFL_AVX512_EMULATION_MUTANT=1  _mm512_extractf32x8_ps returns the low half for either
 *                                   index (the emulated suite must fail)
 *   DAFL_AVX512_EMULATION_MUTANT=2  SIMDe's own _mm512_abs_ps (the fidelity test must fail)
 *   DAFL_AVX512_EMULATION_MUTANT=3  _mm512_cvtps_ph truncates (rounding 3) whatever its
 *                                   immediate says (the half-precision tests and the
 *                                   fidelity test must fail)
 */
#if !defined(DAFL_AVX512_EMULATION_MUTANT)
#define DAFL_AVX512_EMULATION_MUTANT 0
#endif
#ifndef DAFL_AVX512_ON_AVX2_H
#define DAFL_AVX512_ON_AVX2_H

#if defined(__AVX512F__)
#error "avx512_on_avx2.h is for builds without AVX-512 flags (-mavx2 -mfma)"
#endif
#if !defined(__AVX2__) || !defined(__FMA__)
#error "avx512_on_avx2.h needs -mavx2 -mfma"
#endif

#define SIMDE_ENABLE_NATIVE_ALIASES
#include <simde/x86/avx512.h>
#include <sleef.h>

#include <stddef.h>
#include <stdint.h>

/* ---- SIMDe 0.7.4 gaps --------------------------------------------------------------- */

/* Either 256-bit half of a 512-bit vector, as AVX2 registers. */
static inline __m256 dafl_emu_half_ps(__m512 v, int half)
{
    return simde__m512_to_private(v).m256[half & 1];
}

static inline __m512 dafl_emu_join_ps(__m256 lo, __m256 hi)
{
    simde__m512_private r;
    r.m256[0] = lo;
    r.m256[1] = hi;
    return simde__m512_from_private(r);
}

static inline __m512i dafl_emu_cvttps_epi32(__m512 a)
{
    simde__m512i_private r;
    r.m256i[0] = _mm256_cvttps_epi32(dafl_emu_half_ps(a, 0));
    r.m256i[1] = _mm256_cvttps_epi32(dafl_emu_half_ps(a, 1));
    return simde__m512i_from_private(r);
}

static inline __m256 dafl_emu_extractf32x8_ps(__m512 a, int imm8)
{
#if DAFL_AVX512_EMULATION_MUTANT == 1
    (void)imm8;
    return dafl_emu_half_ps(a, 0); /* the deliberate bug: the high half is lost */
#else
    return dafl_emu_half_ps(a, imm8);
#endif
}

static inline __m512d dafl_emu_cvtps_pd(__m256 a)
{
    simde__m512d_private r;
    r.m256d[0] = _mm256_cvtps_pd(_mm256_castps256_ps128(a));
    r.m256d[1] = _mm256_cvtps_pd(_mm256_extractf128_ps(a, 1));
    return simde__m512d_from_private(r);
}

static inline __m512 dafl_emu_abs_ps(__m512 a)
{
    return _mm512_castsi512_ps(
        _mm512_and_si512(_mm512_castps_si512(a), _mm512_set1_epi32(0x7fffffff)));
}

/* Lane by lane, so that a lane outside the mask is never touched. */
static inline __m512 dafl_emu_maskz_loadu_ps(__mmask16 k, const void *p)
{
    const float *f = p;
    simde__m512_private r;
    for (int i = 0; i < 16; i++)
        r.f32[i] = (k >> i) & 1 ? f[i] : 0.0f;
    return simde__m512_from_private(r);
}

static inline void dafl_emu_mask_storeu_ps(void *p, __mmask16 k, __m512 a)
{
    float *f = p;
    simde__m512_private v = simde__m512_to_private(a);
    for (int i = 0; i < 16; i++)
        if ((k >> i) & 1)
            f[i] = v.f32[i];
}

/* The rounding control of VCVTPS2PH's immediate (bits 0-2) must be a constant of the
 * instruction: one case each. */
__attribute__((target("f16c"))) static __m512 dafl_emu_cvtph_ps(__m256i a)
{
    return dafl_emu_join_ps(_mm256_cvtph_ps(_mm256_castsi256_si128(a)),
                            _mm256_cvtph_ps(_mm256_extracti128_si256(a, 1)));
}

#define DAFL_EMU_CVTPS_PH_CASE(imm)                                                         \
    case imm:                                                                              \
        lo = _mm256_cvtps_ph(dafl_emu_half_ps(a, 0), imm);                                 \
        hi = _mm256_cvtps_ph(dafl_emu_half_ps(a, 1), imm);                                 \
        break;
__attribute__((target("f16c"))) static __m256i dafl_emu_cvtps_ph(__m512 a, int imm8)
{
    __m128i lo, hi;
#if DAFL_AVX512_EMULATION_MUTANT == 3
    imm8 = 3; /* the deliberate bug: round toward zero */
#endif
    switch (imm8 & 7) {
        DAFL_EMU_CVTPS_PH_CASE(0)
        DAFL_EMU_CVTPS_PH_CASE(1)
        DAFL_EMU_CVTPS_PH_CASE(2)
        DAFL_EMU_CVTPS_PH_CASE(3)
        default: /* bit 2: MXCSR.RC */
            lo = _mm256_cvtps_ph(dafl_emu_half_ps(a, 0), 4);
            hi = _mm256_cvtps_ph(dafl_emu_half_ps(a, 1), 4);
    }
    return _mm256_inserti128_si256(_mm256_castsi128_si256(lo), hi, 1);
}
#undef DAFL_EMU_CVTPS_PH_CASE

static inline __m512i dafl_emu_cvtepu16_epi32(__m256i a)
{
    simde__m512i_private r;
    r.m256i[0] = _mm256_cvtepu16_epi32(_mm256_castsi256_si128(a));
    r.m256i[1] = _mm256_cvtepu16_epi32(_mm256_extracti128_si256(a, 1));
    return simde__m512i_from_private(r);
}

static inline __m512 dafl_emu_scalef_ps(__m512 a, __m512 b)
{
    simde__m512_private va = simde__m512_to_private(a), vb = simde__m512_to_private(b), r;
    for (int i = 0; i < 16; i++) {
        float x = va.f32[i], y = vb.f32[i];
        uint32_t xb;
        __builtin_memcpy(&xb, &x, sizeof xb);
        const int inf_b = __builtin_isinf(y);
        if (x != x && (xb & 0x400000u) && inf_b) { /* a quiet NaN a */
            r.f32[i] = y > 0.0f ? __builtin_inff() : 0.0f;
        } else if (x != x || y != y) {
            r.f32[i] = x != x ? x + 0.0f : y + 0.0f; /* quiet, payload kept */
        } else if (inf_b) {
            int up = y > 0.0f, a_zero = x == 0.0f, a_inf = __builtin_isinf(x) != 0;
            if ((up && a_zero) || (!up && a_inf))
                r.f32[i] = __builtin_nanf("");
            else
                r.f32[i] = (up && !a_zero) || a_inf ? __builtin_copysignf(__builtin_inff(), x)
                                                   : __builtin_copysignf(0.0f, x);
        } else {
            double k = __builtin_floor((double)y);
            k = k < -400.0 ? -400.0 : k > 400.0 ? 400.0 : k;
            r.f32[i] = (float)((double)x * __builtin_ldexp(1.0, (int)k)); /* one rounding */
        }
    }
    return simde__m512_from_private(r);
}

static inline __m256i dafl_emu_cvtepi32_epi16(__m512i a)
{
    simde__m512i_private v = simde__m512i_to_private(a);
    uint16_t r[16];
    for (int i = 0; i < 16; i++)
        r[i] = (uint16_t)v.u32[i];
    return _mm256_loadu_si256((const __m256i *)(const void *)r);
}

#undef _mm512_cvttps_epi32
#undef _mm512_extractf32x8_ps
#undef _mm512_cvtps_pd
#if DAFL_AVX512_EMULATION_MUTANT != 2
#undef _mm512_abs_ps
#endif
#undef _mm512_maskz_loadu_ps
#undef _mm512_mask_storeu_ps
#undef _mm512_cvtph_ps
#undef _mm512_cvtps_ph
#undef _mm512_cvtepu16_epi32
#undef _mm512_cvtepi32_epi16
#undef _mm512_scalef_ps
#define _mm512_cvttps_epi32(a) dafl_emu_cvttps_epi32(a)
#define _mm512_extractf32x8_ps(a, imm8) dafl_emu_extractf32x8_ps((a), (imm8))
#define _mm512_cvtps_pd(a) dafl_emu_cvtps_pd(a)
#if DAFL_AVX512_EMULATION_MUTANT != 2
#define _mm512_abs_ps(a) dafl_emu_abs_ps(a)
#endif
#define _mm512_maskz_loadu_ps(k, p) dafl_emu_maskz_loadu_ps((k), (p))
#define _mm512_mask_storeu_ps(p, k, a) dafl_emu_mask_storeu_ps((p), (k), (a))
#define _mm512_cvtph_ps(a) dafl_emu_cvtph_ps(a)
#define _mm512_cvtps_ph(a, imm8) dafl_emu_cvtps_ph((a), (imm8))
#define _mm512_cvtepu16_epi32(a) dafl_emu_cvtepu16_epi32(a)
#define _mm512_cvtepi32_epi16(a) dafl_emu_cvtepi32_epi16(a)
#define _mm512_scalef_ps(a, b) dafl_emu_scalef_ps((a), (b))

/* ---- SLEEF: two AVX2 FMA calls for one AVX-512 call ---------------------------------- */

#define DAFL_EMU_SLEEF1(name16, name8)                                                      \
    static inline __m512 dafl_emu_##name16(__m512 a)                                        \
    {                                                                                       \
        return dafl_emu_join_ps(name8(dafl_emu_half_ps(a, 0)), name8(dafl_emu_half_ps(a, 1))); \
    }
#define DAFL_EMU_SLEEF2(name16, name8)                                                      \
    static inline __m512 dafl_emu_##name16(__m512 a, __m512 b)                              \
    {                                                                                       \
        return dafl_emu_join_ps(name8(dafl_emu_half_ps(a, 0), dafl_emu_half_ps(b, 0)),      \
                                name8(dafl_emu_half_ps(a, 1), dafl_emu_half_ps(b, 1)));     \
    }
DAFL_EMU_SLEEF1(Sleef_expf16_u10avx512f, Sleef_expf8_u10avx2)
DAFL_EMU_SLEEF1(Sleef_logf16_u10avx512f, Sleef_logf8_u10avx2)
DAFL_EMU_SLEEF1(Sleef_log1pf16_u10avx512f, Sleef_log1pf8_u10avx2)
DAFL_EMU_SLEEF2(Sleef_powf16_u10avx512f, Sleef_powf8_u10avx2)
#undef DAFL_EMU_SLEEF1
#undef DAFL_EMU_SLEEF2
#define Sleef_expf16_u10avx512f dafl_emu_Sleef_expf16_u10avx512f
#define Sleef_logf16_u10avx512f dafl_emu_Sleef_logf16_u10avx512f
#define Sleef_log1pf16_u10avx512f dafl_emu_Sleef_log1pf16_u10avx512f
#define Sleef_powf16_u10avx512f dafl_emu_Sleef_powf16_u10avx512f

#endif
