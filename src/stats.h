/* The layout behind the opaque dafl_stats (src/stats.c). */
#ifndef DAFL_STATS_H
#define DAFL_STATS_H

#include "dafl.h"
#include "exact_sum.h"

typedef struct dafl_stats_impl {
    uint64_t magic;     /* DAFL_STATS_MAGIC: written by dafl_stats_init and every call */
    dafl_xacc loss;     /* exact sum of the per-element losses                         */
    dafl_xacc weight;   /* exact sum of what MEAN divides by                           */
    uint64_t positives; /* targets == 1 (saturates at UINT64_MAX when combined)        */
    uint64_t elements;  /* elements, softmax: non-ignored pixels (saturates likewise)  */
} dafl_stats_impl;

void dafl_stats_impl_clear(dafl_stats_impl *s);
/* DAFL_ERR_INVALID_PARAMETER when `stats` was never initialised. */
dafl_status dafl_stats_read(const dafl_stats *stats, dafl_stats_impl *s);
void dafl_stats_write(dafl_stats *stats, const dafl_stats_impl *s);

#endif
