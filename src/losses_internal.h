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

/* What d(reduced loss)/d(sum) is, before the caller's scale. */
double dafl_reduction_denominator(dafl_reduction reduction, float normalizer,
                                  uint64_t positives, double weight_sum);

/* The reduced loss of a call from its exact statistics. */
float dafl_reduced_loss(const dafl_stats_impl *s, dafl_reduction reduction, float normalizer);

#endif
