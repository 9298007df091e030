/*
 * Running a loss over blocks on several threads (src/parallel.c).
 *
 * The work of a call is a range of block indices.  Whoever runs it - the caller's thread
 * alone, dafl's own pool, or the host's parallel-for - may split that range in any way:
 * every block's sum is formed in the fixed order of dafl.h and the block sums are added
 * exactly, so the result is the same bits for every split and every thread count.
 */
#ifndef DAFL_PARALLEL_H
#define DAFL_PARALLEL_H

#include <stddef.h>

#include "dafl.h"

/* Runs fn(ctx, begin, end) over sub-ranges that cover [0, count) exactly once, on up to
 * the configured number of threads; `elements` (the data size) decides whether threads
 * are worth waking (below DAFL_MIN_PARALLEL_ELEMENTS they are not).  Returns when all
 * sub-ranges are done.  Every item has run exactly once when it returns, whatever a
 * host's parallel-for did; the status is DAFL_ERR_PARALLEL_FOR when the host broke its
 * contract, DAFL_ERR_OUT_OF_MEMORY when the host's split could not be checked (nothing
 * ran then), else DAFL_OK. */
dafl_status dafl_parallel_for(size_t count, size_t elements, dafl_range_fn fn, void *ctx);

#endif
