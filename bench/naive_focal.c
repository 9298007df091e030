/*
 * The penalty-reduced focal loss and its gradient as a trainer author would write them
 * in C, with no knowledge of dafl: the prediction p = clamp(sigmoid(x), eps, 1 - eps)
 * through expf, the logarithms through logf, the exponents through powf, and the
 * positive and negative terms combined with masks, the way CenterNet's PyTorch code
 * writes them:
 *     loss = -( log(p) (1-p)^alpha [y == 1] + log(1-p) p^alpha (1-y)^beta [y < 1] )
 * The gradient folds dp/dx = p (1-p) into each term, and is zero where the clamp is
 * active (what torch.clamp's backward gives).
 *
 * This file is compiled twice, under two names (NAIVE_FOCAL_NAME, set by
 * bench/meson.build): at -O2, and at -O3 -march=native -ffast-math, where GCC
 * vectorizes the loop with glibc's vector expf/logf/powf.  It is a baseline, so it is
 * deliberately plain: no tricks a trainer author would not think of.
 */
#include "baselines.h"

#include <math.h>

#ifndef NAIVE_FOCAL_NAME
#error "NAIVE_FOCAL_NAME must name the function (see bench/meson.build)"
#endif

double NAIVE_FOCAL_NAME(const float *x, const float *y, size_t n, float alpha, float beta,
                        float eps, float normalizer, float *grad)
{
    const float scale = 1.0f / normalizer;
    double sum = 0.0; /* a float sum would lose digits over millions of elements */
    for (size_t i = 0; i < n; i++) {
        float p = 1.0f / (1.0f + expf(-x[i]));
        float slope = 1.0f; /* becomes 0 where the clamp holds p still */
        if (p < eps) {
            p = eps;
            slope = 0.0f;
        }
        if (p > 1.0f - eps) {
            p = 1.0f - eps;
            slope = 0.0f;
        }
        float q = 1.0f - p;
        float pos = y[i] == 1.0f ? 1.0f : 0.0f;
        float neg = 1.0f - pos;

        float log_p = logf(p);
        float log_q = logf(q);
        float pos_weight = powf(q, alpha);
        float neg_weight = powf(1.0f - y[i], beta) * powf(p, alpha);

        float pos_loss = -log_p * pos_weight;
        float neg_loss = -log_q * neg_weight;
        /* d/dx of each term, using dp/dx = p q */
        float pos_grad = -pos_weight * (q - alpha * p * log_p);
        float neg_grad = neg_weight * (p - alpha * q * log_q);

        sum += pos * pos_loss + neg * neg_loss;
        grad[i] = slope * (pos * pos_grad + neg * neg_grad) * scale;
    }
    return sum * scale;
}
