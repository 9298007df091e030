/* Helpers shared by the test programs: deterministic random numbers, NaN-aware bit
 * comparison, and the list of ISAs to run every check under. */
#ifndef DAFL_TEST_COMMON_H
#define DAFL_TEST_COMMON_H

#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dafl.h"

/* ck_assert_msg reports every *passing* check to the parent process too (one write per
 * call in fork mode); inside per-element loops only a failure should cost anything. */
#define TEST_REQUIRE(cond, ...)                                                            \
    do {                                                                                   \
        if (!(cond))                                                                       \
            ck_abort_msg(__VA_ARGS__);                                                     \
    } while (0)

/* splitmix64: a fixed, platform-independent stream. */
static inline uint64_t test_rand64(uint64_t *state)
{
    uint64_t z = (*state += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

/* Uniform in [lo, hi). */
static inline float test_uniform(uint64_t *state, float lo, float hi)
{
    double u = (double)(test_rand64(state) >> 11) * 0x1.0p-53;
    return (float)(lo + (hi - lo) * u);
}

/* Bits of a float with every NaN mapped to one value (payloads may differ by ISA). */
static inline uint32_t test_canonical_bits(float f)
{
    uint32_t u;
    if (isnan(f))
        return 0x7fc00000u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static inline int test_same_bits(float a, float b)
{
    return test_canonical_bits(a) == test_canonical_bits(b);
}

/* FNV-1a over canonical float bits. */
static inline uint64_t test_hash_floats(uint64_t h, const float *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t u = test_canonical_bits(v[i]);
        for (int b = 0; b < 4; b++) {
            h ^= (u >> (8 * b)) & 0xffu;
            h *= UINT64_C(0x100000001b3);
        }
    }
    return h;
}
#define TEST_HASH_SEED UINT64_C(0xcbf29ce484222325)

static const dafl_isa test_all_isas[] = {DAFL_ISA_SCALAR, DAFL_ISA_AVX2, DAFL_ISA_AVX512,
                                         DAFL_ISA_NEON};
#define TEST_ISA_COUNT 4

/* The AVX-512 emulation build (meson -Davx512_emulation=true, tests/avx512_emulation)
 * compiles the tests with DAFL_TEST_REQUIRE_AVX512: its avx512 kernels run on every
 * AVX2+FMA CPU, so there a skipped avx512 case is a failure. */
#if defined(DAFL_TEST_REQUIRE_AVX512)
#define TEST_AVX512_REQUIRED 1
#else
#define TEST_AVX512_REQUIRED 0
#endif

/* Report `what` as skipped on `isa` (inside a test: fails it where the ISA is required). */
static inline void test_report_skip(dafl_isa isa, const char *what, const char *why)
{
    printf("SKIPPED %-7s %s: %s\n", dafl_isa_name(isa), what, why);
    if (TEST_AVX512_REQUIRED && isa == DAFL_ISA_AVX512)
        ck_abort_msg("avx512 %s skipped in the AVX-512 emulation build (%s)", what, why);
}

/* Select `isa`; prints and returns 0 when this machine cannot run it, so that a
 * skipped ISA is reported as skipped, never as passed. */
static inline int test_use_isa(dafl_isa isa, const char *what)
{
    if (!dafl_isa_available(isa)) {
        test_report_skip(isa, what, "not supported by this CPU or build");
        return 0;
    }
    ck_assert_int_eq(dafl_set_isa(isa), DAFL_OK);
    return 1;
}

/* Run a suite and return the process exit status. */
static inline int test_run_suite(Suite *s)
{
    if (TEST_AVX512_REQUIRED && !dafl_isa_available(DAFL_ISA_AVX512)) {
        printf("FAILED: the AVX-512 emulation build offers no avx512 kernels here\n");
        return EXIT_FAILURE;
    }
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

#endif
