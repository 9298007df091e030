/*
 * vcvtneps2bf16 (AVX512_BF16), measured where a CPU has it: its results against Intel's
 * pseudo-code (SDM vol. 2, VCVTNEPS2BF16) and against SPEC 13's rounding
 * (src/kernels/half.h), for every float32 top half with the low halves that decide the
 * rounding, NaN payloads and subnormals included.  It passes when the instruction does
 * what the SDM says and differs from SPEC 13 only on float32 subnormals (which it reads
 * as zero), and when vfpclassps with class 0x20 finds exactly those: the two facts the
 * AVX512_BF16 table's narrowing rests on (vf_store_bf16 in arch/x86/losses_avx512.c
 * sends a vector with a subnormal lane to the integer path).  It prints the counts.
 * A CPU (or OS) without AVX512_BF16 reports a skip (exit status 77), so a green run says
 * nothing about the instruction unless the log shows the counts.  Nothing here runs an
 * AVX-512 instruction before that check: only convert16 is compiled for AVX-512.
 */
#include <immintrin.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The narrowing of 16 lanes, and the lanes vfpclassps calls subnormal (class 0x20). */
__attribute__((target("avx512f,avx512dq,avx512bf16"))) static unsigned
convert16(const uint32_t in[16], uint16_t out[16])
{
    __m512 v;
    memcpy(&v, in, sizeof v);
    __m256bh r = _mm512_cvtneps_pbh(v);
    memcpy(out, &r, 32);
    return _mm512_fpclass_ps_mask(v, 0x20);
}

/* The SDM's convert_fp32_to_bfloat16, line by line. */
static uint16_t sdm_reference(uint32_t b)
{
    const uint32_t exp = (b >> 23) & 0xffu, mant = b & 0x7fffffu;
    if (exp == 0) /* zero or denormal: a zero of its sign */
        return (uint16_t)((b >> 16) & 0x8000u);
    if (exp == 0xff && mant == 0) /* infinity */
        return (uint16_t)(b >> 16);
    if (exp == 0xff) /* NaN: truncated, the quiet bit set */
        return (uint16_t)((b >> 16) | 0x40u);
    return (uint16_t)((b + 0x7fffu + ((b >> 16) & 1u)) >> 16);
}

/* SPEC 13: round to nearest even for every finite value, subnormals too. */
static uint16_t spec_reference(uint32_t b)
{
    if ((b & 0x7fffffffu) > 0x7f800000u)
        return (uint16_t)((b >> 16) | 0x40u);
    return (uint16_t)((b + 0x7fffu + ((b >> 16) & 1u)) >> 16);
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx512f") || !__builtin_cpu_supports("avx512bf16")) {
        printf("SKIPPED vcvtneps2bf16: this CPU has no AVX512_BF16 (nothing measured)\n");
        return 77;
    }
    static const uint16_t low[] = {0x0000, 0x0001, 0x7fff, 0x8000, 0x8001, 0xffff,
                                   0x4000, 0xc000};
    const size_t n_low = sizeof low / sizeof low[0];
    unsigned long checked = 0, sdm_mismatch = 0, spec_differs = 0, spec_differs_normal = 0,
                  class_mismatch = 0;
    for (uint32_t top = 0; top < 65536; top++) {
        for (size_t k = 0; k < n_low; k += 16) {
            uint32_t in[16];
            uint16_t out[16];
            for (int i = 0; i < 16; i++)
                in[i] = top << 16 | low[(k + (size_t)i) % n_low];
            unsigned subnormal_lanes = convert16(in, out);
            for (int i = 0; i < 16; i++) {
                checked++;
                int is_subnormal = ((in[i] >> 23) & 0xffu) == 0 && (in[i] & 0x7fffffu) != 0;
                if (((subnormal_lanes >> i) & 1u) != (unsigned)is_subnormal) {
                    if (class_mismatch++ < 8)
                        printf("vfpclassps 0x20 of %08x: %u, want %d\n", in[i],
                               (subnormal_lanes >> i) & 1u, is_subnormal);
                }
                if (out[i] != sdm_reference(in[i])) {
                    if (sdm_mismatch++ < 8)
                        printf("differs from the SDM: %08x -> %04x, SDM %04x\n", in[i], out[i],
                               sdm_reference(in[i]));
                }
                if (out[i] != spec_reference(in[i])) {
                    int subnormal = ((in[i] >> 23) & 0xffu) == 0;
                    spec_differs++;
                    spec_differs_normal += !subnormal;
                    if (spec_differs <= 4 || !subnormal)
                        printf("differs from SPEC 13%s: %08x -> %04x, SPEC 13 %04x\n",
                               subnormal ? " (float32 subnormal)" : "", in[i], out[i],
                               spec_reference(in[i]));
                }
            }
        }
    }
    printf("vcvtneps2bf16 on %lu float32 patterns: %lu differ from the SDM's pseudo-code; "
           "%lu differ from SPEC 13's rounding, %lu of them not float32 subnormals; "
           "vfpclassps 0x20 wrong on %lu\n",
           checked, sdm_mismatch, spec_differs, spec_differs_normal, class_mismatch);
    return sdm_mismatch == 0 && spec_differs_normal == 0 && class_mismatch == 0 ? EXIT_SUCCESS
                                                                                : EXIT_FAILURE;
}
