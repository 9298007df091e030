/*
 * keypoints.c — targets from keypoint lists (SPEC section 12).
 *
 *   dafl_render_heatmaps           a batch of keypoints into an n x c x h x w heatmap
 *   dafl_penalty_focal_keypoints   the penalty-reduced focal loss against those targets,
 *                                  without ever holding them all
 *
 * Both start from one validated, plane-sorted list of Gaussian stamps (src/gaussian_stamp.h,
 * the code dafl_draw_gaussian and dafl_draw_gaussian_sigma use), each with its window
 * clipped to its plane.  A pixel's target is the max over the stamps that cover it of the
 * stamp's value, and 0 where none does: max is exact and commutative, so any order of the
 * keypoints and any split of the work give the bits of drawing them one by one.
 *
 * The loss walks the blocks of DAFL_BLOCK_ELEMENTS elements that dafl_penalty_focal walks,
 * renders each block's targets into a buffer on the stack and calls the active ISA's
 * penalty focal block kernel on it, with the input, gradient and loss pointers moved to the
 * block.  The kernel's sum over a block depends only on the position inside the block, and
 * block sums are added exactly, so the result is that of the dense call bit for bit.  A
 * block that no stamp reaches reads a constant block of zeros instead.  Half-precision
 * input and gradient (dafl_dtype) go to the kernel as they are, with float32 targets: the
 * kernel widens and narrows them as it does for the dense call.
 */
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dafl.h"
#include "exact_sum.h"
#include "fpenv.h"
#include "gaussian_stamp.h"
#include "kernels/kernel_api.h"
#include "losses_internal.h"
#include "parallel.h"
#include "stats.h"

void dafl_keypoint_init(dafl_keypoint *point)
{
    if (point)
        *point = (dafl_keypoint)DAFL_KEYPOINT_INIT;
}

/* ---- the validated batch -------------------------------------------------------------- */

/* A keypoint's stamp with its window clipped to its plane (never empty). */
typedef struct placed_stamp {
    size_t plane;               /* image * c + channel */
    long long x_first, x_end;   /* columns inside the plane */
    long long y_first, y_end;   /* rows inside the plane */
    dafl_stamp stamp;
} placed_stamp;

typedef struct keypoint_batch {
    size_t w, hw, elements;
    placed_stamp *stamps; /* sorted by plane */
    size_t count;
} keypoint_batch;

/* Copies element i of the caller's array (stride `stride`, the first element's
 * struct_size) over the defaults, as the parameter structs are read. */
static dafl_status read_keypoint(const dafl_keypoint *points, size_t stride, size_t i,
                                 dafl_keypoint *kp)
{
    const unsigned char *at = (const unsigned char *)points + i * stride;
    size_t size;
    memcpy(&size, at, sizeof size);
    if (size != stride)
        return DAFL_ERR_STRUCT_SIZE;
    *kp = (dafl_keypoint)DAFL_KEYPOINT_INIT;
    memcpy(kp, at, size);
    return DAFL_OK;
}

static int is_integer(double v) { return v == floor(v); }

/* All of a keypoint's checks, in the order dafl.h lists them. */
static dafl_status check_keypoint(const dafl_keypoint *kp, size_t n, size_t c)
{
    if (kp->image < 0 || (uint64_t)kp->image >= n || kp->channel < 0 ||
        (uint64_t)kp->channel >= c)
        return DAFL_ERR_INVALID_LABEL;
    const double limit = (double)DAFL_TARGETS_COORD_LIMIT;
    /* negated comparisons, so that NaN fails them */
    if (!(fabs(kp->x) <= limit && fabs(kp->y) <= limit))
        return DAFL_ERR_INVALID_PARAMETER;
    if (!(kp->k >= 0.0f && kp->k <= 1.0f))
        return DAFL_ERR_INVALID_PARAMETER;
    switch (kp->style) {
    case DAFL_KEYPOINT_UMICH:
        if (!(kp->size >= 0.0 && kp->size <= limit) || !is_integer(kp->size) ||
            !is_integer(kp->x) || !is_integer(kp->y))
            return DAFL_ERR_INVALID_PARAMETER;
        return DAFL_OK;
    case DAFL_KEYPOINT_MSRA:
    case DAFL_KEYPOINT_DISTANCE:
        if (!(kp->size > 0.0 && kp->size <= limit))
            return DAFL_ERR_INVALID_PARAMETER;
        if (kp->style == DAFL_KEYPOINT_DISTANCE && (!is_integer(kp->x) || !is_integer(kp->y)))
            return DAFL_ERR_INVALID_PARAMETER;
        return DAFL_OK;
    default:
        return DAFL_ERR_INVALID_ENUM;
    }
}

static long long min_ll(long long a, long long b) { return a < b ? a : b; }
static long long max_ll(long long a, long long b) { return a > b ? a : b; }

static int by_plane(const void *a, const void *b)
{
    const placed_stamp *x = a, *y = b;
    return (x->plane > y->plane) - (x->plane < y->plane);
}

/* Validates the shape, the buffers' sizes and every keypoint, then builds the sorted list
 * of stamps that reach their plane.  Nothing is written to any output here. */
static dafl_status build_batch(const dafl_keypoint *points, size_t count, size_t n, size_t c,
                               size_t h, size_t w, keypoint_batch *b)
{
    memset(b, 0, sizeof *b);
    size_t planes, hw, elements;
    if (__builtin_mul_overflow(n, c, &planes) || __builtin_mul_overflow(h, w, &hw) ||
        __builtin_mul_overflow(planes, hw, &elements) ||
        elements > SIZE_MAX / sizeof(float))
        return DAFL_ERR_SIZE_OVERFLOW;
    b->w = w;
    b->hw = hw;
    b->elements = elements;
    if (count == 0)
        return DAFL_OK;
    if (!points)
        return DAFL_ERR_NULL_POINTER;
    size_t stride;
    memcpy(&stride, points, sizeof stride);
    if (stride < sizeof(size_t) || stride > sizeof(dafl_keypoint))
        return DAFL_ERR_STRUCT_SIZE;
    if (count > SIZE_MAX / stride)
        return DAFL_ERR_SIZE_OVERFLOW;

    for (size_t i = 0; i < count; i++) {
        dafl_keypoint kp;
        dafl_status st = read_keypoint(points, stride, i, &kp);
        if (st != DAFL_OK || (st = check_keypoint(&kp, n, c)) != DAFL_OK)
            return st;
    }
    if (hw == 0)
        return DAFL_OK; /* valid, and nothing to draw */
    b->stamps = malloc(count * sizeof *b->stamps);
    if (!b->stamps)
        return DAFL_ERR_OUT_OF_MEMORY;
    const long long width = w > (size_t)LLONG_MAX ? LLONG_MAX : (long long)w;
    const long long height = h > (size_t)LLONG_MAX ? LLONG_MAX : (long long)h;
    for (size_t i = 0; i < count; i++) {
        dafl_keypoint kp;
        (void)read_keypoint(points, stride, i, &kp);
        placed_stamp ps;
        ps.plane = (size_t)kp.image * c + (size_t)kp.channel;
        switch (kp.style) {
        case DAFL_KEYPOINT_UMICH:
            ps.stamp = dafl_stamp_umich((long long)kp.x, (long long)kp.y, (long long)kp.size,
                                        kp.k);
            break;
        case DAFL_KEYPOINT_MSRA:
            ps.stamp = dafl_stamp_msra(kp.x, kp.y, kp.size, kp.k);
            break;
        default:
            ps.stamp = dafl_stamp_distance((long long)kp.x, (long long)kp.y, kp.size, kp.k);
            break;
        }
        ps.x_first = max_ll(ps.stamp.x_first, 0);
        ps.x_end = min_ll(ps.stamp.x_end, width);
        ps.y_first = max_ll(ps.stamp.y_first, 0);
        ps.y_end = min_ll(ps.stamp.y_end, height);
        if (ps.x_first < ps.x_end && ps.y_first < ps.y_end)
            b->stamps[b->count++] = ps;
    }
    qsort(b->stamps, b->count, sizeof *b->stamps, by_plane);
    return DAFL_OK;
}

/* The first stamp whose plane is >= plane. */
static size_t first_stamp_of(const keypoint_batch *b, size_t plane)
{
    size_t lo = 0, hi = b->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (b->stamps[mid].plane < plane)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Merges the stamps into out[0 .. end-begin), the elements begin .. end-1 of the batch
 * (end > begin).  Zeroes `out` the first time a stamp reaches it, and returns whether
 * one did (out is untouched otherwise).  The binary search for the range's first stamp
 * costs a few comparisons per range of up to a block: nothing beside its pixels. */
static int draw_range(const keypoint_batch *b, size_t begin, size_t end, float *out)
{
    const size_t w = b->w, hw = b->hw;
    const size_t plane_first = begin / hw, plane_last = (end - 1) / hw;
    size_t i = first_stamp_of(b, plane_first);
    int drawn = 0;
    for (; i < b->count && b->stamps[i].plane <= plane_last; i++) {
        const placed_stamp *s = &b->stamps[i];
        const size_t plane_start = s->plane * hw;
        /* the part of the range in this plane, as plane offsets lo .. hi-1 */
        const size_t lo = begin > plane_start ? begin - plane_start : 0;
        const size_t hi = end - plane_start < hw ? end - plane_start : hw;
        const long long row_first = max_ll(s->y_first, (long long)(lo / w));
        const long long row_end = min_ll(s->y_end, (long long)((hi - 1) / w) + 1);
        for (long long y = row_first; y < row_end; y++) {
            const size_t row = (size_t)y * w;
            size_t a = row + (size_t)s->x_first, e = row + (size_t)s->x_end;
            a = a > lo ? a : lo;
            e = e < hi ? e : hi;
            if (a >= e)
                continue;
            if (!drawn) {
                memset(out, 0, (end - begin) * sizeof *out);
                drawn = 1;
            }
            dafl_stamp_merge_row(&s->stamp, y, (long long)(a - row), (long long)(e - row),
                                 out + (plane_start + a - begin));
        }
    }
    return drawn;
}

/* ---- dafl_render_heatmaps ------------------------------------------------------------- */

typedef struct render_task {
    const keypoint_batch *b;
    float *heatmaps;
} render_task;

/* Planes first .. end-1: zero them, then draw their stamps. */
static void render_planes(void *ctx, size_t first, size_t end)
{
    const render_task *t = ctx;
    const keypoint_batch *b = t->b;
    float *out = t->heatmaps + first * b->hw;
    if (!draw_range(b, first * b->hw, end * b->hw, out))
        memset(out, 0, (end - first) * b->hw * sizeof *out);
}

dafl_status dafl_render_heatmaps(const dafl_keypoint *points, size_t count, size_t n, size_t c,
                                 size_t h, size_t w, float *heatmaps)
{
    DAFL_FP_ENVIRONMENT();
    keypoint_batch b;
    dafl_status st = build_batch(points, count, n, c, h, w, &b);
    if (st == DAFL_OK && b.elements && !heatmaps)
        st = DAFL_ERR_NULL_POINTER;
    if (st == DAFL_OK && b.elements) {
        render_task t = {&b, heatmaps};
        st = dafl_parallel_for(n * c, b.elements, render_planes, &t);
    }
    free(b.stamps);
    return st;
}

/* ---- dafl_penalty_focal_keypoints ----------------------------------------------------- */

/* The targets of a block that no keypoint reaches. */
static const float zero_targets[DAFL_BLOCK_ELEMENTS];

typedef struct keypoint_loss_task {
    const keypoint_batch *b;
    dafl_elementwise_kernel kernel, all_negative_kernel;
    int (*scan_targets)(const float *y, size_t n, uint64_t *positives);
    const dafl_pf_job *job; /* io: the whole call's buffers */
} keypoint_loss_task;

/* Element `at` of a buffer of dtype `dtype`, as the kernels take it (a float pointer to
 * elements of that type). */
static const float *element_at(const float *buffer, int dtype, size_t at)
{
    return (const float *)(const void *)((const char *)buffer + at * dafl_dtype_size(dtype));
}

/* A dafl_block_fn: the positive count of a block's targets (the first pass of
 * DAFL_REDUCTION_POSITIVES, which needs the count of the whole call first). */
static double keypoint_positives_block(const void *ctx, size_t begin, size_t len,
                                       uint64_t *positives)
{
    const keypoint_loss_task *t = ctx;
    float targets[DAFL_BLOCK_ELEMENTS];
    *positives = 0;
    if (draw_range(t->b, begin, begin + len, targets))
        (void)t->scan_targets(targets, len, positives);
    return 0.0;
}

/* A dafl_block_fn: the block kernel on this block alone, its targets rendered on the
 * stack: element i of the block is element begin + i of the call, in the same lane. */
static double keypoint_loss_block(const void *ctx, size_t begin, size_t len,
                                  uint64_t *positives)
{
    const keypoint_loss_task *t = ctx;
    float targets[DAFL_BLOCK_ELEMENTS];
    const int drawn = draw_range(t->b, begin, begin + len, targets);
    dafl_pf_job job = *t->job;
    job.io.x = element_at(job.io.x, job.io.x_dtype, begin);
    job.io.y = drawn ? targets : zero_targets;
    if (job.io.grad)
        job.io.grad = (float *)element_at(job.io.grad, job.io.grad_dtype, begin);
    if (job.io.loss_out)
        job.io.loss_out += begin;
    dafl_elementwise_kernel kernel = drawn ? t->kernel : t->all_negative_kernel;
    return kernel(&job, 0, len, positives);
}

dafl_status dafl_penalty_focal_keypoints(const float *input, size_t n, size_t c, size_t h,
                                         size_t w, const dafl_keypoint *points, size_t count,
                                         const dafl_penalty_focal_params *params, float *loss,
                                         float *grad, dafl_stats *stats)
{
    DAFL_FP_ENVIRONMENT();
    dafl_pf_job job;
    reduction_args r;
    dafl_status st = dafl_penalty_focal_setup(params, &job, &r);
    if (st != DAFL_OK)
        return st;
    /* the targets are rendered in float32: no other target type has a meaning here */
    if (!dafl_dtype_valid(job.io.x_dtype) || !dafl_dtype_valid(job.io.grad_dtype) ||
        job.io.y_dtype != DAFL_DTYPE_FLOAT32)
        return DAFL_ERR_INVALID_ENUM;
    keypoint_batch b;
    st = build_batch(points, count, n, c, h, w, &b);
    if (st == DAFL_OK && b.elements && !input)
        st = DAFL_ERR_NULL_POINTER;
    if (st == DAFL_OK) {
        size_t bytes = b.elements * sizeof(float); /* build_batch checked the product */
        byte_range none = {NULL, 0};
        st = dafl_check_overlaps(
            (byte_range){input, b.elements * dafl_dtype_size(job.io.x_dtype)}, none,
            (byte_range){grad, b.elements * dafl_dtype_size(job.io.grad_dtype)},
            (byte_range){r.reduction == DAFL_REDUCTION_NONE ? loss : NULL, bytes});
    }
    if (st != DAFL_OK) {
        free(b.stamps);
        return st;
    }

    const dafl_kernels *k = dafl_active_kernels();
    keypoint_loss_task task = {.b = &b, .kernel = k->penalty_focal,
                               .all_negative_kernel = k->penalty_focal_all_negative,
                               .scan_targets = k->scan_targets, .job = &job};
    dafl_stats_impl s;
    dafl_stats_impl_clear(&s);
    uint64_t positives = 0;
    if (r.reduction == DAFL_REDUCTION_POSITIVES) {
        dafl_stats_impl counted;
        dafl_stats_impl_clear(&counted);
        st = dafl_run_blocks(keypoint_positives_block, &task, b.elements, b.elements, &counted);
        if (st == DAFL_ERR_OUT_OF_MEMORY) {
            free(b.stamps);
            return st; /* the counting pass writes nothing */
        }
        positives = counted.positives;
    }
    const double denom = dafl_reduction_denominator(r.reduction, r.normalizer, positives,
                                                    (double)b.elements);
    job.io.x = input;
    job.io.y = NULL; /* per block */
    job.io.grad = grad;
    job.io.loss_out = r.reduction == DAFL_REDUCTION_NONE ? loss : NULL;
    job.io.grad_factor = (float)((double)r.grad_scale / denom);

    dafl_status run = dafl_run_blocks(keypoint_loss_block, &task, b.elements, b.elements, &s);
    if (run == DAFL_ERR_OUT_OF_MEMORY) {
        free(b.stamps);
        return run; /* nothing ran */
    }
    st = st == DAFL_OK ? run : st; /* DAFL_ERR_PARALLEL_FOR: complete all the same */
    s.elements = b.elements;
    dafl_xacc_add_float_times(&s.weight, 1.0f, b.elements);
    free(b.stamps);
    dafl_write_outputs(&s, &r, loss, stats);
    return st;
}
