/*
 * The reference loops the benchmark measures next to dafl.  Each lives in its own static
 * library, built with its own compiler flags (see bench/meson.build), so that the flags
 * are exactly the ones the comparison names and nothing else in the program sees them.
 */
#ifndef DAFL_BENCH_BASELINES_H
#define DAFL_BENCH_BASELINES_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The memory-bandwidth limit of a fused loss call.
 * bandwidth_move reads x and y and writes out: the 12 bytes per element that a fused
 * forward + gradient call must move at least.  bandwidth_read only reads x and y: the
 * 8 bytes per element of a forward-only call.  Both do next to no arithmetic, so their
 * speed is what the memory (or cache) system can deliver. */
void bandwidth_move(const float *x, const float *y, float *out, size_t n);
float bandwidth_read(const float *x, const float *y, size_t n);

/* The penalty-reduced focal loss (alpha, beta) with CenterNet's clamped prediction
 * p = clamp(sigmoid(x), eps, 1 - eps), written the way a trainer author would write it:
 * one element at a time with expf, logf and powf.  Writes the gradient with respect to x
 * (zero where the clamp holds p) divided by `normalizer` to grad, returns the loss sum
 * divided by `normalizer`.  The same source is built twice: at -O2 ... */
double naive_focal_o2(const float *x, const float *y, size_t n, float alpha, float beta,
                      float eps, float normalizer, float *grad);
/* ... and at -O3 -march=native -ffast-math, where the compiler may vectorize it. */
double naive_focal_autovec(const float *x, const float *y, size_t n, float alpha, float beta,
                           float eps, float normalizer, float *grad);

#ifdef __cplusplus
}
#endif

#endif
