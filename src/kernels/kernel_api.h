/*
 * The contract between the public entry points (src/losses.c) and the per-ISA kernels
 * (src/kernels_scalar.c, arch/x86/losses_avx2.c, arch/x86/losses_avx512.c,
 * arch/arm/losses_neon.c).  One signature per loss, one table per ISA.
 *
 * A kernel processes one block: `len` <= DAFL_BLOCK_ELEMENTS elements (pixels for
 * softmax focal) starting at element `begin` of the job, where `begin` is a multiple of
 * DAFL_BLOCK_ELEMENTS counted from the start of the call.  It writes the gradient
 * (times job->grad_factor) and, when asked, the per-element loss, and returns the block's
 * loss sum formed in the fixed order of dafl.h ("Determinism"): element i of the block
 * into double lane i % 16, lanes folded j += j+8, +4, +2, +1.
 */
#ifndef DAFL_KERNEL_API_H
#define DAFL_KERNEL_API_H

#include <stddef.h>
#include <stdint.h>

#include "dafl.h"

/* Exponents that are small non-negative integers are evaluated by multiplication only
 * (fixed order, exact to a few ULP), half-integers up to this + 0.5 with one more square
 * root, any other value by SLEEF's pow (or, for a sigmoid's probability, as exp of the
 * exactly held -k log m; see src/kernels/loss_kernels.h). */
#define DAFL_MAX_INTEGER_EXPONENT 8

/* What every element-wise job has: inputs, outputs and the gradient's factor
 * grad_scale / normalizer (rounded to float once, so every ISA multiplies by the same). */
typedef struct dafl_io {
    const float *x;    /* input: logits (or probabilities)          */
    const float *y;    /* targets in [0, 1]                         */
    float *grad;       /* NULL: forward only                        */
    float *loss_out;   /* NULL unless the reduction is NONE         */
    float grad_factor;
    /* dafl_dtype of x, y and grad (0: float32).  Any other makes the block kernel widen
     * each sub-block of x and y into float32 on its stack, run the float32 math on it
     * and narrow the gradient out (src/kernels/loss_kernels.h): the same bits by
     * construction.  x, y and grad then point at elements of that type. */
    int x_dtype, y_dtype, grad_dtype;
} dafl_io;

typedef struct dafl_pf_job {
    dafl_io io;
    int mode;            /* dafl_input_mode                                    */
    float alpha, beta;
    int alpha_int;       /* alpha as an integer in 0..DAFL_MAX_INTEGER_EXPONENT, else -1 */
    int beta_int;
    float pos_weight, neg_weight;
    float eps, one_minus_eps;          /* clamped logits: the clamp bounds              */
    float neglog_eps, neglog_1m_eps;   /* -log(eps), -log(1-eps), rounded from double   */
    float log_eps;                     /* probabilities: added inside the logs (or 0)   */
} dafl_pf_job;

typedef struct dafl_sf_job {
    dafl_io io;
    float gamma;
    int gamma_int;
    float alpha;          /* < 0: no class balance */
    float one_minus_alpha;
} dafl_sf_job;

/* Weights per channel (MSE's weights, BCE's pos_weights), for any dense layout whose
 * image index is outermost: element i lies in image i / image and channel
 * (i / stride) % c, and takes w[(image_index * c + channel) % count] (count c: the
 * channel's weight; count n*c: the image's).  stride divides image / c, so a run of
 * `stride` elements never leaves its channel or its image, and the channel pattern
 * repeats with the period c * stride inside every image.
 * table: NULL, or for stride < 16 (channels_last) the weights lane by lane, `rows` rows
 * (1 for count c, whose pattern repeats over the whole call; n for count n*c) of
 * period + 15 floats: row[k] = weight of the image's element k % period, so the weights
 * of 16 elements from any position are 16 consecutive floats (src/losses.c builds it). */
typedef struct dafl_channel_weights {
    const float *w;     /* NULL: no weights */
    size_t count;       /* c or n*c */
    size_t c;           /* channels, >= 1 */
    size_t stride;      /* >= 1 */
    size_t image;       /* elements per image: a multiple of c * stride */
    const float *table; /* see above */
    size_t period;      /* c * stride */
    size_t row;         /* period + 15: the table's row length */
} dafl_channel_weights;

typedef struct dafl_bce_job {
    dafl_io io;
    float pos_weight;
    dafl_channel_weights pos_weights; /* w NULL: pos_weight for every element */
} dafl_bce_job;

typedef struct dafl_mse_job {
    dafl_io io;
    dafl_channel_weights weights; /* w NULL: all 1 */
} dafl_mse_job;

typedef struct dafl_softmax_job {
    const float *x;          /* logits, n*c*hw */
    const int32_t *labels;   /* n*hw           */
    float *grad;             /* NULL: forward only */
    float *loss_out;         /* per pixel, NULL unless NONE */
    float grad_factor;
    size_t c, hw;
    int nhwc;
    int32_t ignore_index;
    const float *class_weights; /* NULL: all 1 */
    float gamma;
    int gamma_int;
    /* dafl_dtype of x and grad (0: float32).  Any other makes the kernel widen each
     * vector of logits as it loads it and round each vector of the gradient as it stores
     * it (src/kernels/softmax_kernels.h); x and grad then point at elements of that type. */
    int x_dtype, grad_dtype;
} dafl_softmax_job;

typedef double (*dafl_elementwise_kernel)(const void *job, size_t begin, size_t len,
                                          uint64_t *positives);

typedef struct dafl_kernels {
    dafl_isa isa;
    const char *name;
    /* job: the matching dafl_pf_job, dafl_sf_job, dafl_bce_job, dafl_mse_job */
    dafl_elementwise_kernel penalty_focal;
    dafl_elementwise_kernel sigmoid_focal;
    dafl_elementwise_kernel bce;
    dafl_elementwise_kernel mse;
    double (*softmax_focal)(const dafl_softmax_job *job, size_t begin, size_t len);
    /* Counts targets equal to 1 in y[0..n); returns non-zero when one lies outside
     * [0, 1] or is NaN. */
    int (*scan_targets)(const float *y, size_t n, uint64_t *positives);
    /* penalty_focal for a block whose targets are all 0 (job->io.y still points at len
     * zeros): the same bits as penalty_focal on them, without the positive branch. */
    dafl_elementwise_kernel penalty_focal_all_negative;
} dafl_kernels;

/* One table per ISA built into this library (declared for all, defined where built). */
extern const dafl_kernels dafl_kernels_scalar;     /* with FMA where the CPU has it */
extern const dafl_kernels dafl_kernels_scalar_nofma; /* x86-64 without FMA only      */
extern const dafl_kernels dafl_kernels_avx2;
extern const dafl_kernels dafl_kernels_avx512;
extern const dafl_kernels dafl_kernels_avx512_bf16; /* bfloat16 gradients by AVX512_BF16, the rest
                                                    * by dafl_kernels_avx512 */
extern const dafl_kernels dafl_kernels_neon;

/* The table chosen by dispatch (src/dispatch.c). */
const dafl_kernels *dafl_active_kernels(void);

/* The fixed fold of the 16 virtual lanes (src/kernels/lane_fold.c). */
double dafl_fold_lanes16(const double lanes[16]);

extern const float dafl_lane_index16[16]; /* 0, 1, ..., 15 */

#endif
