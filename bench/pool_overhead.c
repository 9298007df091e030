/*
 * What the pool and the floating-point environment cost a call (printed, never
 * asserted; the fastest of several interleaved rounds, for a noisy machine):
 *
 *   - 2000 penalty-focal calls of 64K elements on 2 threads, with a fresh pool and again
 *     after one call on 64 threads: the second must cost the same, since a call wakes
 *     only the workers it uses;
 *   - the same calls on 1 thread, for the speed-up of the second thread;
 *   - a 4K-element call, which runs on the calling thread, and the part of it that saving,
 *     setting and restoring the floating-point environment takes.
 *
 *   dafl-pool-bench [calls]
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "dafl.h"
#include "fpenv.h" /* the library's own entry sequence, timed alone */

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static float *x, *y, *g;

static double time_calls(int calls, size_t n, int threads)
{
    dafl_set_threads(threads);
    float loss;
    double t = now();
    for (int i = 0; i < calls; i++)
        dafl_penalty_focal(x, y, n, NULL, &loss, g, NULL);
    return now() - t;
}

static double min2(double a, double b) { return a < b ? a : b; }

/* What every entry point does first and last, with nothing in between. */
__attribute__((noinline)) static void guarded(volatile int *v)
{
    DAFL_FP_ENVIRONMENT();
    (*v)++;
}
__attribute__((noinline)) static void unguarded(volatile int *v) { (*v)++; }

static double time_guard(int n, void (*fn)(volatile int *))
{
    volatile int v = 0;
    double t = now();
    for (int i = 0; i < n; i++)
        fn(&v);
    return now() - t;
}

int main(int argc, char **argv)
{
    int calls = argc > 1 ? atoi(argv[1]) : 2000;
    enum { LARGE = 65536, SMALL = 4096, ROUNDS = 5 };
    x = malloc(LARGE * sizeof *x);
    y = malloc(LARGE * sizeof *y);
    g = malloc(LARGE * sizeof *g);
    if (!x || !y || !g || calls < 1)
        return 1;
    for (int i = 0; i < LARGE; i++) {
        x[i] = (float)(i % 400) / 20.0f - 10.0f;
        y[i] = i % 101 == 0 ? 1.0f : (float)(i % 17) / 17.0f;
    }
    double fresh = 1e30, after_wide = 1e30, one = 1e30, small = 1e30;
    double guard = 1e30, bare = 1e30;
    enum { GUARDS = 10000000 };
    for (int r = 0; r < ROUNDS; r++) {
        dafl_stop_threads();
        time_calls(1, LARGE, 2); /* the pool with one helper */
        fresh = min2(fresh, time_calls(calls, LARGE, 2));
        time_calls(1, LARGE, 64); /* 63 workers now exist */
        after_wide = min2(after_wide, time_calls(calls, LARGE, 2));
        one = min2(one, time_calls(calls, LARGE, 1));
        small = min2(small, time_calls(calls * 4, SMALL, 1));
        guard = min2(guard, time_guard(GUARDS, guarded));
        bare = min2(bare, time_guard(GUARDS, unguarded));
    }
    dafl_stop_threads();
    printf("dafl %s, %d threads by default\n", dafl_version(), (dafl_set_threads(0), dafl_threads()));
    printf("%d calls x %d elements, 2 threads, fresh pool:           %8.3f s\n", calls, LARGE,
           fresh);
    printf("%d calls x %d elements, 2 threads, after a 64-thread call: %8.3f s  (%.2fx)\n",
           calls, LARGE, after_wide, after_wide / fresh);
    printf("%d calls x %d elements, 1 thread:                        %8.3f s  (2 threads: "
           "%.2fx faster)\n", calls, LARGE, one, one / fresh);
    double call_s = small / (calls * 4), guard_s = (guard - bare) / GUARDS;
    printf("one %d-element call (calling thread): %.2f us, of which the floating-point "
           "environment %.1f ns (%.2f %%)\n", SMALL, call_s * 1e6, guard_s * 1e9,
           100.0 * guard_s / call_s);
    free(x);
    free(y);
    free(g);
    return 0;
}
