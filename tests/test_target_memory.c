/*
 * The temporary memory of dafl_distance_targets, measured: this program is linked with
 * -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=free, so every allocation the
 * library makes passes through the counting allocator below, which records the peak of
 * the bytes outstanding and can refuse any request beyond a budget.
 */
#include <check.h>
#include <malloc.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dafl.h"

/* ---- the counting allocator ------------------------------------------------------ */

void *__real_malloc(size_t size);
void *__real_calloc(size_t count, size_t size);
void *__real_realloc(void *p, size_t size);
void __real_free(void *p);

/* Counted while `tracking` (around one library call, when no other code allocates): the
 * blocks' usable sizes, which exceed the requests by the allocator's rounding only. */
static atomic_int tracking;
static atomic_size_t outstanding, peak, budget = SIZE_MAX;

static void *account(void *block)
{
    if (block == NULL || !atomic_load(&tracking))
        return block;
    size_t size = malloc_usable_size(block);
    size_t now = atomic_fetch_add(&outstanding, size) + size;
    size_t seen = atomic_load(&peak);
    while (now > seen && !atomic_compare_exchange_weak(&peak, &seen, now)) {
    }
    return block;
}

static int within_budget(size_t size)
{
    return !atomic_load(&tracking) || atomic_load(&outstanding) + size <= atomic_load(&budget);
}

void *__wrap_malloc(size_t size)
{
    return within_budget(size) ? account(__real_malloc(size)) : NULL;
}

void *__wrap_calloc(size_t count, size_t size)
{
    size_t bytes;
    if (__builtin_mul_overflow(count, size, &bytes) || !within_budget(bytes))
        return NULL;
    return account(__real_calloc(count, size));
}

void __wrap_free(void *p)
{
    if (p != NULL && atomic_load(&tracking))
        atomic_fetch_sub(&outstanding, malloc_usable_size(p));
    __real_free(p);
}

void *__wrap_realloc(void *p, size_t size)
{
    if (p != NULL && atomic_load(&tracking))
        atomic_fetch_sub(&outstanding, malloc_usable_size(p));
    return account(__real_realloc(p, size));
}

/* ---- the test -------------------------------------------------------------------- */

#define TEST_ZERO(v)                                                                       \
    do {                                                                                   \
        if ((v) != 0.0f)                                                                   \
            ck_abort_msg("an output was written by a failing call");                      \
    } while (0)

/* dafl.h: at most 4 h w + (32 w + 8) B + 16384 bytes, B = max(1, h / 8); required only
 * 4 h w + 32 w + 8 B + 16384. */
static size_t documented_bound(size_t h, size_t w)
{
    size_t b = h / 8 > 1 ? h / 8 : 1;
    return 4 * h * w + (32 * w + 8) * b + 16384;
}

static size_t documented_requirement(size_t h, size_t w)
{
    size_t b = h / 8 > 1 ? h / 8 : 1;
    return 4 * h * w + 32 * w + 8 * b + 16384;
}

/* The allocator's rounding, per block: at most a page (blocks the size of these are
 * mapped pages, or heap chunks with a few bytes of header). */
enum { ROUNDING = 4096 };

/* One call's peak of temporary bytes, with `limit` bytes available to it. */
static size_t peak_of_call(const uint8_t *mask, size_t h, size_t w, float *out,
                           size_t limit, dafl_status *status)
{
    /* dafl's pool keeps its (small) state between calls: start and end without one, so
     * that only the call's own temporaries are counted */
    dafl_stop_threads();
    atomic_store(&outstanding, 0);
    atomic_store(&peak, 0);
    atomic_store(&budget, limit);
    atomic_store(&tracking, 1);
    *status = dafl_distance_targets(mask, h, w, 30.0, out);
    dafl_stop_threads();
    atomic_store(&tracking, 0);
    ck_assert_uint_eq(atomic_load(&outstanding), 0); /* everything was freed */
    return atomic_load(&peak);
}

START_TEST(distance_memory_does_not_grow_with_threads)
{
    /* 256 x 2048: scratch per slot with 4 slots per thread asked for 256 x 32 x 2048 =
     * 16 MiB on 256 threads, against 2 MiB for the plane.  (Small enough for the runs
     * under emulation and valgrind.) */
    const size_t h = 256, w = 2048, count = h * w;
    uint8_t *mask = calloc(count, 1);
    float *expected = malloc(count * sizeof *expected);
    float *out = malloc(count * sizeof *out);
    ck_assert_ptr_nonnull(mask);
    ck_assert_ptr_nonnull(expected);
    ck_assert_ptr_nonnull(out);
    uint64_t seed = 11;
    for (int i = 0; i < 200; ++i) {
        seed = seed * 6364136223846793005u + 1442695040888963407u;
        mask[(seed >> 33) % count] = 1;
    }
    dafl_status status;
    const int thread_counts[] = {1, 2, 16, 256};
    for (size_t t = 0; t < sizeof thread_counts / sizeof thread_counts[0]; ++t) {
        ck_assert_int_eq(dafl_set_threads(thread_counts[t]), DAFL_OK);
        size_t used = peak_of_call(mask, h, w, t == 0 ? expected : out, SIZE_MAX, &status);
        ck_assert_int_eq(status, DAFL_OK);
        printf("distance %zux%zu on %3d threads: peak %zu bytes of temporaries "
               "(documented bound %zu)\n", h, w, thread_counts[t], used,
               documented_bound(h, w));
        ck_assert_uint_le(used, documented_bound(h, w) + (4 + h / 8) * ROUNDING);
        if (t > 0)
            ck_assert(memcmp(out, expected, count * sizeof *out) == 0);
    }
    /* Only the documented requirement available (every further row scratch refused):
     * the call succeeds on 256 threads, with the same bits; one byte less fails cleanly. */
    memset(out, 0, count * sizeof *out);
    const size_t required = documented_requirement(h, w);
    size_t used = peak_of_call(mask, h, w, out, required + 4 * ROUNDING, &status);
    ck_assert_int_eq(status, DAFL_OK);
    printf("distance on 256 threads with only the required %zu bytes: peak %zu\n",
           required, used);
    ck_assert(memcmp(out, expected, count * sizeof *out) == 0);
    memset(out, 0, count * sizeof *out);
    peak_of_call(mask, h, w, out, required - 1, &status);
    ck_assert_int_eq(status, DAFL_ERR_OUT_OF_MEMORY);
    for (size_t i = 0; i < count; ++i)
        TEST_ZERO(out[i]); /* nothing written */
    atomic_store(&budget, SIZE_MAX);
    ck_assert_int_eq(dafl_set_threads(0), DAFL_OK);
    free(mask);
    free(expected);
    free(out);
}
END_TEST

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    Suite *s = suite_create("target_memory");
    TCase *tc = tcase_create("distance");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, distance_memory_does_not_grow_with_threads);
    suite_add_tcase(s, tc);
    SRunner *runner = srunner_create(s);
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
