/*
 * main() of test_avx512_fidelity.  Compiled without AVX-512 flags (the tests themselves
 * are compiled with them in a normal build), so nothing here can be an AVX-512
 * instruction: it decides whether the tests may run before any of them can execute.
 *   normal build:    the CPU must have AVX-512 F/DQ/BW/VL; without it, dafl must not offer
 *                    its avx512 kernels, and the test reports a skip (exit status 77);
 *   emulation build: dafl must offer the (emulated) avx512 kernels, or the test fails.
 */
#include <stdio.h>
#include <stdlib.h>

#include "dafl.h"

int avx512_fidelity_run(void);

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
#if defined(DAFL_AVX512_EMULATION)
    if (!dafl_isa_available(DAFL_ISA_AVX512)) {
        printf("FAILED: the AVX-512 emulation build offers no avx512 kernels here\n");
        return EXIT_FAILURE;
    }
#else
    __builtin_cpu_init();
    const int hardware = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
                         __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
    if (!hardware) {
        if (dafl_isa_available(DAFL_ISA_AVX512)) {
            printf("FAILED: avx512 kernels offered on a CPU without AVX-512\n");
            return EXIT_FAILURE;
        }
        printf("SKIPPED avx512 intrinsic fidelity: this CPU has no AVX-512\n");
        return 77;
    }
#endif
    return avx512_fidelity_run();
}
