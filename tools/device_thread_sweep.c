/*
 * Thread scaling of the fused forward + gradient calls, per ISA, next to the bandwidth
 * loop on as many threads: what tools/device-check.sh measures on a machine with
 * AVX-512 (dafl-bench measures one thread per ISA, and all threads for the best ISA only).
 *
 *   device_thread_sweep ISA... -- THREADS...      e.g.  avx2 avx512 -- 1 2 4 8 16
 *
 * For every loss (penalty focal with the CornerNet defaults and a known normalizer,
 * sigmoid focal gamma 2, softmax focal over 16 classes), size (64 K, 8 x 80 x 128 x 128,
 * 64 M elements), ISA and thread count: the fastest wall time of 5 calls after one untimed
 * call, as one JSON object per line on stdout.  The bandwidth loop (bench/bandwidth.c:
 * read x and y, write one float per element, 12 bytes) is timed the same way on the same
 * threads.  An ISA the CPU lacks is reported on stderr and skipped.
 */
#define _POSIX_C_SOURCE 200809L

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "baselines.h"
#include "dafl.h"

#define REPETITIONS 5
#define CLASSES 16

static const size_t sizes[] = {65536, 8u * 80u * 128u * 128u, 64u << 20};
static float *x, *y, *grad;
static int32_t *labels;

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static dafl_status call_loss(int loss, size_t n)
{
    float out;
    if (loss == 0) {
        dafl_penalty_focal_params p;
        dafl_penalty_focal_params_init(&p);
        p.reduction = DAFL_REDUCTION_NORMALIZER;
        p.normalizer = 100.0f;
        p.flags = DAFL_FLAG_TRUST_TARGETS;
        return dafl_penalty_focal(x, y, n, &p, &out, grad, NULL);
    }
    if (loss == 1) {
        dafl_sigmoid_focal_params p;
        dafl_sigmoid_focal_params_init(&p);
        p.reduction = DAFL_REDUCTION_NORMALIZER;
        p.normalizer = 100.0f;
        p.flags = DAFL_FLAG_TRUST_TARGETS;
        return dafl_sigmoid_focal(x, y, n, &p, &out, grad, NULL);
    }
    dafl_softmax_focal_params p;
    dafl_softmax_focal_params_init(&p);
    p.reduction = DAFL_REDUCTION_NORMALIZER;
    p.normalizer = 100.0f;
    p.flags = DAFL_FLAG_TRUST_TARGETS;
    size_t pixels = n / CLASSES;
    return dafl_softmax_focal(x, labels, 1, CLASSES, pixels, &p, &out, grad, NULL);
}

typedef struct share {
    size_t begin, end;
} share;

static void *move_share(void *arg)
{
    const share *s = arg;
    bandwidth_move(x + s->begin, y + s->begin, grad + s->begin, s->end - s->begin);
    return NULL;
}

static int bandwidth_threads(size_t n, int threads)
{
    pthread_t tid[256];
    share sh[256];
    for (int t = 0; t < threads; t++) {
        sh[t].begin = n * (size_t)t / (size_t)threads;
        sh[t].end = n * (size_t)(t + 1) / (size_t)threads;
        if (pthread_create(&tid[t], NULL, move_share, &sh[t]) != 0)
            return -1;
    }
    for (int t = 0; t < threads; t++)
        pthread_join(tid[t], NULL);
    return 0;
}

static void report(const char *what, const char *isa, size_t n, int threads, double best,
                   double bytes)
{
    printf("{\"name\": \"%s\", \"isa\": \"%s\", \"elements\": %zu, \"threads\": %d, "
           "\"seconds\": %.9f, \"elements_per_second\": %.6e, \"bytes_per_second\": %.6e}\n",
           what, isa, n, threads, best, (double)n / best, bytes / best);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    dafl_isa isas[8];
    int n_isas = 0, threads[16], n_threads = 0, after = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0) {
            after = 1;
        } else if (!after && n_isas < 8) {
            int found = 0;
            for (int k = DAFL_ISA_SCALAR; k <= DAFL_ISA_NEON; k++)
                if (strcmp(argv[i], dafl_isa_name((dafl_isa)k)) == 0) {
                    found = 1;
                    if (dafl_isa_available((dafl_isa)k))
                        isas[n_isas++] = (dafl_isa)k;
                    else
                        fprintf(stderr, "SKIPPED %s: not supported by this CPU or build\n", argv[i]);
                }
            if (!found) {
                fprintf(stderr, "unknown ISA %s\n", argv[i]);
                return 2;
            }
        } else if (after && n_threads < 16) {
            threads[n_threads] = atoi(argv[i]);
            if (threads[n_threads] < 1 || threads[n_threads] > 256) {
                fprintf(stderr, "thread counts are 1..256\n");
                return 2;
            }
            n_threads++;
        }
    }
    const size_t max_n = sizes[sizeof sizes / sizeof sizes[0] - 1];
    x = malloc(max_n * sizeof(float));
    y = malloc(max_n * sizeof(float));
    grad = malloc(max_n * sizeof(float));
    labels = malloc(max_n / CLASSES * sizeof(int32_t));
    if (!x || !y || !grad || !labels) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    uint64_t s = 1;
    for (size_t i = 0; i < max_n; i++) {
        s = s * 6364136223846793005u + 1442695040888963407u;
        uint32_t r = (uint32_t)(s >> 32);
        x[i] = (float)(r % 2000) / 100.0f - 10.0f;
        y[i] = r % 97 == 0 ? 1.0f : (float)(r >> 20) / 4096.0f; /* [0, 1) and some 1s */
        if (i < max_n / CLASSES)
            labels[i] = (int32_t)(r % CLASSES);
    }
    static const char *names[3] = {"penalty_focal", "sigmoid_focal", "softmax_focal"};
    for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
        const size_t n = sizes[si];
        for (int ti = 0; ti < n_threads; ti++) {
            double best = 1e30;
            for (int r = 0; r <= REPETITIONS; r++) {
                double t0 = now();
                if (bandwidth_threads(n, threads[ti]) != 0)
                    return 1;
                double dt = now() - t0;
                if (r > 0 && dt < best)
                    best = dt;
            }
            report("bandwidth", "memory", n, threads[ti], best, 12.0 * (double)n);
            for (int ii = 0; ii < n_isas; ii++) {
                dafl_set_isa(isas[ii]);
                dafl_set_threads(threads[ti]);
                for (int loss = 0; loss < 3; loss++) {
                    best = 1e30;
                    for (int r = 0; r <= REPETITIONS; r++) {
                        double t0 = now();
                        dafl_status st = call_loss(loss, n);
                        double dt = now() - t0;
                        if (st != DAFL_OK) {
                            fprintf(stderr, "%s: %s\n", names[loss], dafl_status_string(st));
                            return 1;
                        }
                        if (r > 0 && dt < best)
                            best = dt;
                    }
                    /* input and gradient, plus a target per element or a label per pixel */
                    double bytes = (double)n * 8.0 + (loss == 2 ? 4.0 * (double)n / CLASSES
                                                                : 4.0 * (double)n);
                    report(names[loss], dafl_isa_name(isas[ii]), n, threads[ti], best, bytes);
                }
            }
        }
    }
    return 0;
}
