/* The AVX-512 kernels for CPUs that also have AVX512_BF16: the paths that round a gradient
 * to bfloat16, which here use vcvtneps2bf16 (see vf_store_bf16 in losses_avx512.c); its
 * table hands every other call to the plain AVX-512 table (DAFL_BF16_GRAD_ONLY names it;
 * src/kernels/loss_kernels.h), so those paths are in the library once.  src/dispatch.c
 * picks this table for DAFL_ISA_AVX512 where the CPU reports AVX512_BF16; the results are
 * the same bits either way. */
#define DAFL_AVX512_BF16 1
#define DAFL_BF16_GRAD_ONLY dafl_kernels_avx512
#include "losses_avx512.c"
