/*
 * What the loss entry points of src/losses.c share with the keypoint form of the
 * penalty-reduced focal loss (src/keypoints.c): the parameter checks and job set-up, and
 * the reduction's normalizer, so that both compute the same bits from the same code.
 */
#ifndef DAFL_LOSSES_INTERNAL_H
#define DAFL_LOSSES_INTERNAL_H

#include "dafl.h"
#include "kernels/kernel_api.h"
#include "stats.h"

/* The reduction settings every loss shares. */
typedef struct reduction_args {
    dafl_reduction reduction;
    float normalizer;
    float grad_scale;
    uint32_t flags;
} reduction_args;

/* Reads and validates dafl_penalty_focal's parameters (NULL: the defaults) and fills the
 * job's parameters (not its dafl_io) and the reduction settings. */
dafl_status dafl_penalty_focal_setup(const dafl_penalty_focal_params *params, dafl_pf_job *job,
                                     reduction_args *r);

/* Whether a dafl_dtype value is one this library knows, and the size of its elements
 * (call it on known values only). */
static inline int dafl_dtype_valid(int dtype)
{
    return dtype == DAFL_DTYPE_FLOAT32 || dtype == DAFL_DTYPE_BFLOAT16 ||
           dtype == DAFL_DTYPE_FLOAT16;
}

static inline size_t dafl_dtype_size(int dtype) { return dtype == DAFL_DTYPE_FLOAT32 ? 4 : 2; }

/* A buffer a call reads or writes: `bytes` from `at` (nothing when NULL or empty). */
typedef struct byte_range {
    const void *at;
    size_t bytes;
} byte_range;

/* DAFL_ERR_OVERLAP when an output overlaps an input or the other output, other than
 * grad == input exactly (dafl.h, "Buffers"); else DAFL_OK. */
dafl_status dafl_check_overlaps(byte_range input, byte_range other_input, byte_range grad,
                                byte_range loss_array);

/* What d(reduced loss)/d(sum) is, before the caller's scale. */
double dafl_reduction_denominator(dafl_reduction reduction, float normalizer,
                                  uint64_t positives, double weight_sum);

/* The reduced loss of a call from its exact statistics. */
float dafl_reduced_loss(const dafl_stats_impl *s, dafl_reduction reduction, float normalizer);

/* One block of a call: items begin .. begin+len-1 (len <= DAFL_BLOCK_ELEMENTS, begin a
 * multiple of it); returns the block's loss sum and stores its positive count.  The
 * element-wise kernels have this signature (ctx: their job) and are passed as they are. */
typedef double (*dafl_block_fn)(const void *ctx, size_t begin, size_t len,
                                uint64_t *positives);

/* The one block driver of every loss: runs block(ctx, ...) once for each block of a call
 * of `items` items (elements; pixels for softmax focal), on one thread or many
 * (`elements_touched` decides how many are worth it), and adds the block sums exactly
 * to s->loss, the positives to s->positives.  DAFL_ERR_OUT_OF_MEMORY: nothing ran.
 * DAFL_ERR_PARALLEL_FOR: every block ran exactly once all the same (dafl_parallel_for
 * repairs a broken host split), so the caller writes its outputs and then reports it. */
dafl_status dafl_run_blocks(dafl_block_fn block, const void *ctx, size_t items,
                            size_t elements_touched, dafl_stats_impl *s);

/* The reduced loss into *loss (unless NULL or the reduction is NONE) and the statistics
 * into *stats (unless NULL). */
void dafl_write_outputs(const dafl_stats_impl *s, const reduction_args *r, float *loss,
                        dafl_stats *stats);

#endif
