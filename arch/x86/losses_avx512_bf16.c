/* The AVX-512 kernels for CPUs that also have AVX512_BF16: the same source, its bfloat16
 * narrowing by vcvtneps2bf16 (see vf_store_bf16 in losses_avx512.c); a file of its own
 * so that its object has its own name.  src/dispatch.c picks this table for DAFL_ISA_AVX512
 * where the CPU reports AVX512_BF16; the results are the same bits either way. */
#define DAFL_AVX512_BF16 1
#include "losses_avx512.c"
