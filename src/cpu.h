/* What the CPU (and the operating system) can run.  src/cpu.c */
#ifndef DAFL_CPU_H
#define DAFL_CPU_H

enum {
    DAFL_CPU_FMA = 1 << 0,    /* x86-64: FMA3 with AVX state enabled by the OS      */
    DAFL_CPU_AVX2 = 1 << 1,   /* x86-64: AVX2 + FMA + F16C, YMM state enabled       */
    DAFL_CPU_AVX512 = 1 << 2, /* x86-64: AVX-512 F/DQ/BW/VL, ZMM + opmask enabled   */
    DAFL_CPU_NEON = 1 << 3,   /* AArch64 Advanced SIMD (always)                     */
    DAFL_CPU_AVX512_BF16 = 1 << 4 /* x86-64: AVX512_BF16 besides DAFL_CPU_AVX512      */
};

unsigned dafl_cpu_flags(void);

#endif
