/*
 * CPU feature detection.  On x86-64 a feature counts only when CPUID reports it *and*
 * XGETBV shows that the operating system saves its register state: XCR0 bits 1-2
 * (XMM, YMM) for AVX2/FMA, and bits 5-7 (opmask, ZMM upper halves, ZMM16-31) as well for
 * AVX-512.  On AArch64, Advanced SIMD is part of the baseline.
 */
#include "cpu.h"

#if defined(__x86_64__) || defined(_M_X64)
#include <cpuid.h>
#include <stdint.h>

static uint64_t read_xcr0(void)
{
    uint32_t eax, edx;
    __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return ((uint64_t)edx << 32) | eax;
}

unsigned dafl_cpu_flags(void)
{
    unsigned eax, ebx, ecx, edx, flags = 0;
    if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx))
        return 0;
    const int has_fma = (ecx >> 12) & 1, has_osxsave = (ecx >> 27) & 1,
              has_avx = (ecx >> 28) & 1, has_f16c = (ecx >> 29) & 1;
    if (!has_osxsave || !has_avx)
        return 0;
    uint64_t xcr0 = read_xcr0();
    const int ymm_state = (xcr0 & 0x6) == 0x6, zmm_state = (xcr0 & 0xe6) == 0xe6;
    if (!ymm_state)
        return 0;
    if (has_fma)
        flags |= DAFL_CPU_FMA;
    if (__get_cpuid_max(0, 0) < 7)
        return flags;
    __cpuid_count(7, 0, eax, ebx, ecx, edx);
    const int avx2 = (ebx >> 5) & 1, avx512f = (ebx >> 16) & 1, avx512dq = (ebx >> 17) & 1,
              avx512bw = (ebx >> 30) & 1, avx512vl = (ebx >> 31) & 1;
    if (avx2 && has_fma && has_f16c) /* F16C: the AVX2 kernels' float16 conversions */
        flags |= DAFL_CPU_AVX2;
    if ((flags & DAFL_CPU_AVX2) && zmm_state && avx512f && avx512dq && avx512bw && avx512vl)
        flags |= DAFL_CPU_AVX512;
    unsigned max_subleaf = eax;
    if ((flags & DAFL_CPU_AVX512) && max_subleaf >= 1) {
        __cpuid_count(7, 1, eax, ebx, ecx, edx);
        if ((eax >> 5) & 1) /* AVX512_BF16: vcvtneps2bf16 and friends, the same ZMM state */
            flags |= DAFL_CPU_AVX512_BF16;
    }
    return flags;
}

#elif defined(__aarch64__)
unsigned dafl_cpu_flags(void) { return DAFL_CPU_NEON; }
#else
unsigned dafl_cpu_flags(void) { return 0; }
#endif
