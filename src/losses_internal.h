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

#endif
