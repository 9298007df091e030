/*
 * The public loss entry points: read the parameters, validate everything, find the
 * reduction's normalizer, then run the active ISA's block kernel over the data and add
 * the block sums into the exact accumulator.  Nothing is written before validation has
 * passed, so a failing call leaves every output untouched.
 */
#include <math.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "exact_sum.h"
#include "fpenv.h"
#include "kernels/half.h"
#include "kernels/kernel_api.h"
#include "losses_internal.h"
#include "parallel.h"
#include "stats.h"

/* ---- parameters ------------------------------------------------------------------- */

/* Where each member of a parameter struct lies: a struct_size may end at a member's end,
 * or in the padding after it (the sizeof of an older header's shorter struct), never
 * inside a member, whose bytes would then be half the caller's and half the default's. */
typedef struct member_span {
    size_t begin, end;
} member_span;

typedef struct struct_layout {
    const member_span *members;
    size_t count;
} struct_layout;

#define MEMBER(type, m) {offsetof(type, m), offsetof(type, m) + sizeof(((type *)0)->m)}
#define LAYOUT(members) {members, sizeof members / sizeof members[0]}
/* Each list names every member in order; `last` must stay the struct's last member (an
 * appended member fails this until it is added to its list). */
#define LAST_MEMBER(type, last)                                                            \
    _Static_assert((offsetof(type, last) + sizeof(((type *)0)->last) + _Alignof(type) - 1) / \
                           _Alignof(type) * _Alignof(type) == sizeof(type),                 \
                   #last " is no longer the last member of " #type)

#define PF_MEMBER(m) MEMBER(dafl_penalty_focal_params, m)
static const member_span penalty_focal_members[] = {
    PF_MEMBER(struct_size), PF_MEMBER(alpha),      PF_MEMBER(beta),
    PF_MEMBER(pos_weight),  PF_MEMBER(neg_weight), PF_MEMBER(input_mode),
    PF_MEMBER(clamp_eps),   PF_MEMBER(reduction),  PF_MEMBER(normalizer),
    PF_MEMBER(grad_scale),  PF_MEMBER(flags),      PF_MEMBER(log_eps),
    PF_MEMBER(input_dtype), PF_MEMBER(target_dtype), PF_MEMBER(grad_dtype)};
LAST_MEMBER(dafl_penalty_focal_params, grad_dtype);
#define SF_MEMBER(m) MEMBER(dafl_sigmoid_focal_params, m)
static const member_span sigmoid_focal_members[] = {
    SF_MEMBER(struct_size), SF_MEMBER(gamma),      SF_MEMBER(alpha), SF_MEMBER(reduction),
    SF_MEMBER(normalizer),  SF_MEMBER(grad_scale), SF_MEMBER(flags),
    SF_MEMBER(input_dtype), SF_MEMBER(target_dtype), SF_MEMBER(grad_dtype)};
LAST_MEMBER(dafl_sigmoid_focal_params, grad_dtype);
#define BCE_MEMBER(m) MEMBER(dafl_bce_params, m)
static const member_span bce_members[] = {
    BCE_MEMBER(struct_size), BCE_MEMBER(pos_weight), BCE_MEMBER(reduction),
    BCE_MEMBER(normalizer),  BCE_MEMBER(grad_scale), BCE_MEMBER(flags),
    BCE_MEMBER(input_dtype), BCE_MEMBER(target_dtype), BCE_MEMBER(grad_dtype)};
LAST_MEMBER(dafl_bce_params, grad_dtype);
#define SM_MEMBER(m) MEMBER(dafl_softmax_focal_params, m)
static const member_span softmax_focal_members[] = {
    SM_MEMBER(struct_size),  SM_MEMBER(gamma),         SM_MEMBER(layout),
    SM_MEMBER(ignore_index), SM_MEMBER(class_weights), SM_MEMBER(reduction),
    SM_MEMBER(normalizer),   SM_MEMBER(grad_scale),    SM_MEMBER(flags)};
LAST_MEMBER(dafl_softmax_focal_params, flags);
#define MSE_MEMBER(m) MEMBER(dafl_mse_params, m)
static const member_span mse_members[] = {
    MSE_MEMBER(struct_size), MSE_MEMBER(weights),    MSE_MEMBER(weights_count),
    MSE_MEMBER(reduction),   MSE_MEMBER(normalizer), MSE_MEMBER(grad_scale),
    MSE_MEMBER(flags),       MSE_MEMBER(input_dtype), MSE_MEMBER(target_dtype),
    MSE_MEMBER(grad_dtype)};
LAST_MEMBER(dafl_mse_params, grad_dtype);

static const struct_layout penalty_focal_layout = LAYOUT(penalty_focal_members);
static const struct_layout sigmoid_focal_layout = LAYOUT(sigmoid_focal_members);
static const struct_layout bce_layout = LAYOUT(bce_members);
static const struct_layout softmax_focal_layout = LAYOUT(softmax_focal_members);
static const struct_layout mse_layout = LAYOUT(mse_members);

/* Copy the caller's struct over the defaults: only the first struct_size bytes are the
 * caller's (an older header knows fewer members; the rest keep their defaults).  A
 * struct larger than this library's comes from a newer header: refused, since its extra
 * members would be silently ignored; so is a size that ends inside a member. */
static dafl_status read_params_of(void *out, size_t size, const void *given,
                                  const struct_layout *layout)
{
    if (!given)
        return DAFL_OK;
    size_t given_size;
    memcpy(&given_size, given, sizeof given_size);
    if (given_size < sizeof(size_t) || given_size > size)
        return DAFL_ERR_STRUCT_SIZE;
    for (size_t i = 0; i < layout->count; i++)
        if (given_size > layout->members[i].begin && given_size < layout->members[i].end)
            return DAFL_ERR_STRUCT_SIZE;
    memcpy(out, given, given_size);
    ((size_t *)out)[0] = size;
    return DAFL_OK;
}

/* read_params(&p, sizeof p, params) finds the member layout from the type of &p. */
#define read_params(out, size, given)                                                      \
    read_params_of(out, size, given,                                                       \
                   _Generic((out), dafl_penalty_focal_params *: &penalty_focal_layout,     \
                            dafl_sigmoid_focal_params *: &sigmoid_focal_layout,            \
                            dafl_bce_params *: &bce_layout,                                \
                            dafl_softmax_focal_params *: &softmax_focal_layout,            \
                            dafl_mse_params *: &mse_layout))

void dafl_penalty_focal_params_init(dafl_penalty_focal_params *params)
{
    if (params)
        *params = (dafl_penalty_focal_params)DAFL_PENALTY_FOCAL_PARAMS_INIT;
}
void dafl_sigmoid_focal_params_init(dafl_sigmoid_focal_params *params)
{
    if (params)
        *params = (dafl_sigmoid_focal_params)DAFL_SIGMOID_FOCAL_PARAMS_INIT;
}
void dafl_bce_params_init(dafl_bce_params *params)
{
    if (params)
        *params = (dafl_bce_params)DAFL_BCE_PARAMS_INIT;
}
void dafl_softmax_focal_params_init(dafl_softmax_focal_params *params)
{
    if (params)
        *params = (dafl_softmax_focal_params)DAFL_SOFTMAX_FOCAL_PARAMS_INIT;
}
void dafl_mse_params_init(dafl_mse_params *params)
{
    if (params)
        *params = (dafl_mse_params)DAFL_MSE_PARAMS_INIT;
}

static int is_exponent(float v) { return v >= 0.0f && isfinite(v); }
static int is_weight(float v) { return v >= 0.0f && isfinite(v); }

/* An exponent that is a small integer takes the multiply-only path. */
static int integer_exponent(float v)
{
    return v == floorf(v) && v <= DAFL_MAX_INTEGER_EXPONENT ? (int)v : -1;
}

static dafl_status check_reduction(const reduction_args *r, int allow_positives)
{
    switch (r->reduction) {
    case DAFL_REDUCTION_NONE:
    case DAFL_REDUCTION_SUM:
    case DAFL_REDUCTION_MEAN:
        break;
    case DAFL_REDUCTION_POSITIVES:
        if (!allow_positives)
            return DAFL_ERR_INVALID_ENUM;
        break;
    case DAFL_REDUCTION_NORMALIZER:
        if (!(r->normalizer > 0.0f) || !isfinite(r->normalizer))
            return DAFL_ERR_INVALID_PARAMETER;
        break;
    default:
        return DAFL_ERR_INVALID_ENUM;
    }
    if (!isfinite(r->grad_scale))
        return DAFL_ERR_INVALID_PARAMETER;
    if (r->flags & ~DAFL_FLAG_TRUST_TARGETS)
        return DAFL_ERR_INVALID_ENUM;
    return DAFL_OK;
}

/* What d(reduced loss)/d(sum) is, before the caller's scale. */
double dafl_reduction_denominator(dafl_reduction reduction, float normalizer,
                                    uint64_t positives, double weight_sum)
{
    switch (reduction) {
    case DAFL_REDUCTION_MEAN: return weight_sum;
    case DAFL_REDUCTION_POSITIVES: return positives ? (double)positives : 1.0;
    case DAFL_REDUCTION_NORMALIZER: return (double)normalizer;
    default: return 1.0;
    }
}

/* The reduced loss of a call, from its exact statistics: the same function serves the
 * call itself and dafl_stats_reduce() on combined shards, so both give the same bits. */
float dafl_reduced_loss(const dafl_stats_impl *s, dafl_reduction reduction,
                          float normalizer)
{
    double denom = dafl_reduction_denominator(reduction, normalizer, s->positives,
                                         dafl_xacc_to_double(&s->weight));
    return (float)(dafl_xacc_to_double(&s->loss) / denom);
}

dafl_status dafl_stats_reduce(const dafl_stats *stats, dafl_reduction reduction,
                              float normalizer, float *loss)
{
    DAFL_FP_ENVIRONMENT();
    if (!stats || !loss)
        return DAFL_ERR_NULL_POINTER;
    dafl_stats_impl s;
    dafl_status st = dafl_stats_read(stats, &s);
    if (st != DAFL_OK)
        return st;
    reduction_args r = {reduction, normalizer, 1.0f, 0};
    if (reduction == DAFL_REDUCTION_NONE)
        return DAFL_ERR_INVALID_ENUM;
    if ((st = check_reduction(&r, 1)) != DAFL_OK)
        return st;
    *loss = dafl_reduced_loss(&s, reduction, normalizer);
    return DAFL_OK;
}

/* ---- the block loop, on one thread or many ------------------------------------------ */

/* One call's blocks.  Each range of blocks is summed into a private exact accumulator and
 * merged under the lock: exact sums make the merge order irrelevant. */
typedef struct block_task {
    const void *job;
    dafl_elementwise_kernel elementwise; /* or: */
    double (*softmax)(const dafl_softmax_job *job, size_t begin, size_t len);
    size_t items; /* elements (pixels for softmax) */
    pthread_mutex_t lock;
    dafl_xacc sum;
    uint64_t positives;
} block_task;

static void run_block_range(void *ctx, size_t first_block, size_t end_block)
{
    block_task *t = ctx;
    dafl_xacc local;
    dafl_xacc_clear(&local);
    uint64_t positives = 0;
    for (size_t b = first_block; b < end_block; b++) {
        size_t begin = b * DAFL_BLOCK_ELEMENTS;
        size_t len = t->items - begin < DAFL_BLOCK_ELEMENTS ? t->items - begin
                                                            : DAFL_BLOCK_ELEMENTS;
        uint64_t block_positives = 0;
        double block_sum = t->elementwise
                               ? t->elementwise(t->job, begin, len, &block_positives)
                               : t->softmax(t->job, begin, len);
        dafl_xacc_add_double(&local, block_sum);
        positives += block_positives;
    }
    pthread_mutex_lock(&t->lock);
    dafl_xacc_add(&t->sum, &local);
    t->positives += positives;
    pthread_mutex_unlock(&t->lock);
}

/* Runs every block of the call; adds the exact loss sum and positive count to *s.
 * DAFL_ERR_OUT_OF_MEMORY: nothing ran.  DAFL_ERR_PARALLEL_FOR: every block ran exactly
 * once all the same (dafl_parallel_for repairs a broken host split), so the caller
 * writes its outputs and then reports the status. */
static dafl_status run_blocks(block_task *t, size_t elements_touched, dafl_stats_impl *s)
{
    pthread_mutex_init(&t->lock, NULL);
    dafl_xacc_clear(&t->sum);
    t->positives = 0;
    size_t blocks = (t->items + DAFL_BLOCK_ELEMENTS - 1) / DAFL_BLOCK_ELEMENTS;
    dafl_status st = dafl_parallel_for(blocks, elements_touched, run_block_range, t);
    pthread_mutex_destroy(&t->lock);
    dafl_xacc_add(&s->loss, &t->sum);
    s->positives += t->positives;
    return st;
}

/* ---- the element-wise driver ------------------------------------------------------- */

static int size_product(size_t a, size_t b, size_t *out)
{
    return !__builtin_mul_overflow(a, b, out);
}

static int ranges_overlap(byte_range a, byte_range b)
{
    uintptr_t x = (uintptr_t)a.at, y = (uintptr_t)b.at;
    return a.at && b.at && a.bytes && b.bytes && x < y + b.bytes && y < x + a.bytes;
}

/* dafl.h, "Buffers": grad may be the first input exactly (each element is read before
 * its gradient is written, on every ISA); no other output may overlap an input or the
 * other output.  The sizes were checked not to overflow. */
dafl_status dafl_check_overlaps(byte_range input, byte_range other_input, byte_range grad,
                                byte_range loss_array)
{
    int in_place = grad.at == input.at && grad.bytes == input.bytes;
    if ((!in_place && ranges_overlap(grad, input)) || ranges_overlap(grad, other_input) ||
        ranges_overlap(loss_array, input) || ranges_overlap(loss_array, other_input) ||
        ranges_overlap(loss_array, grad))
        return DAFL_ERR_OVERLAP;
    return DAFL_OK;
}

/* ---- element types ------------------------------------------------------------------ */

static size_t dtype_size(int dtype) { return dtype == DAFL_DTYPE_FLOAT32 ? 4 : 2; }

static int dtype_valid(dafl_dtype d)
{
    return d == DAFL_DTYPE_FLOAT32 || d == DAFL_DTYPE_BFLOAT16 || d == DAFL_DTYPE_FLOAT16;
}

/* The dtypes of a call's buffers into its dafl_io (DAFL_ERR_INVALID_ENUM for a value this
 * library does not know). */
static dafl_status set_dtypes(dafl_io *io, dafl_dtype input, dafl_dtype target, dafl_dtype grad)
{
    if (!dtype_valid(input) || !dtype_valid(target) || !dtype_valid(grad))
        return DAFL_ERR_INVALID_ENUM;
    io->x_dtype = (int)input;
    io->y_dtype = (int)target;
    io->grad_dtype = (int)grad;
    return DAFL_OK;
}

/* The ISA's target scan over targets of any dtype: half-precision targets are widened
 * (exactly) a chunk at a time into a stack buffer first; the count and the verdict do
 * not depend on the chunking. */
static int scan_targets_of(const dafl_kernels *k, const float *target, int dtype, size_t count,
                           uint64_t *positives)
{
    if (dtype == DAFL_DTYPE_FLOAT32)
        return k->scan_targets(target, count, positives);
    const uint16_t *h = (const uint16_t *)(const void *)target;
    float chunk[512];
    int bad = 0;
    uint64_t total = 0;
    for (size_t i = 0; i < count; i += 512) {
        size_t n = count - i < 512 ? count - i : 512;
        for (size_t e = 0; e < n; e++)
            chunk[e] = dtype == DAFL_DTYPE_BFLOAT16 ? dafl_bf16_to_float(h[i + e])
                                                    : dafl_f16_to_float(h[i + e]);
        uint64_t found = 0;
        bad |= k->scan_targets(chunk, n, &found);
        total += found;
    }
    *positives = total;
    return bad;
}

/* Everything after the loss-specific checks: targets, normalizer, the block loop, the
 * outputs.  `io` is the job's dafl_io, filled here. */
static dafl_status run_elementwise(const dafl_kernels *k, dafl_elementwise_kernel kernel,
                                   const void *job,
                                   dafl_io *io, const float *input, const float *target,
                                   size_t count, const reduction_args *r, float *loss,
                                   float *grad, dafl_stats *stats)
{
    size_t bytes = count * sizeof(float);
    byte_range loss_array = {r->reduction == DAFL_REDUCTION_NONE ? loss : NULL, bytes};
    if (dafl_check_overlaps((byte_range){input, count * dtype_size(io->x_dtype)},
                            (byte_range){target, count * dtype_size(io->y_dtype)},
                            (byte_range){grad, count * dtype_size(io->grad_dtype)},
                            loss_array) != DAFL_OK)
        return DAFL_ERR_OVERLAP;
    uint64_t positives = 0;
    int trust = (r->flags & DAFL_FLAG_TRUST_TARGETS) != 0;
    if (!trust || r->reduction == DAFL_REDUCTION_POSITIVES) {
        int bad = scan_targets_of(k, target, io->y_dtype, count, &positives);
        if (bad && !trust)
            return DAFL_ERR_INVALID_TARGET;
    }
    double denom = dafl_reduction_denominator(r->reduction, r->normalizer, positives,
                                         (double)count);
    io->x = input;
    io->y = target;
    io->grad = grad;
    io->loss_out = r->reduction == DAFL_REDUCTION_NONE ? loss : NULL;
    io->grad_factor = (float)((double)r->grad_scale / denom);

    dafl_stats_impl s;
    dafl_stats_impl_clear(&s);
    block_task task = {.job = job, .elementwise = kernel, .items = count};
    dafl_status st = run_blocks(&task, count, &s);
    if (st == DAFL_ERR_OUT_OF_MEMORY)
        return st;
    s.elements = count;
    dafl_xacc_add_float_times(&s.weight, 1.0f, count);

    if (loss && r->reduction != DAFL_REDUCTION_NONE)
        *loss = dafl_reduced_loss(&s, r->reduction, r->normalizer);
    if (stats)
        dafl_stats_write(stats, &s);
    return st;
}

static dafl_status check_buffers(const float *input, const float *target, size_t count)
{
    if (count && (!input || !target))
        return DAFL_ERR_NULL_POINTER;
    size_t bytes;
    if (!size_product(count, sizeof(float), &bytes))
        return DAFL_ERR_SIZE_OVERFLOW;
    return DAFL_OK;
}

/* ---- 2.1 ---------------------------------------------------------------------------- */
/* Reads and validates the parameters and fills the job and the reduction settings; the
 * keypoint form (src/keypoints.c) shares it. */
dafl_status dafl_penalty_focal_setup(const dafl_penalty_focal_params *params, dafl_pf_job *job,
                                     reduction_args *r)
{
    dafl_penalty_focal_params p = DAFL_PENALTY_FOCAL_PARAMS_INIT;
    dafl_status st = read_params(&p, sizeof p, params);
    if (st != DAFL_OK)
        return st;
    if (p.input_mode != DAFL_INPUT_LOGITS && p.input_mode != DAFL_INPUT_PROBABILITIES &&
        p.input_mode != DAFL_INPUT_CLAMPED_LOGITS)
        return DAFL_ERR_INVALID_ENUM;
    *r = (reduction_args){p.reduction, p.normalizer, p.grad_scale, p.flags};
    if ((st = check_reduction(r, 1)) != DAFL_OK)
        return st;
    if (!is_exponent(p.alpha) || !is_exponent(p.beta) || !is_weight(p.pos_weight) ||
        !is_weight(p.neg_weight))
        return DAFL_ERR_INVALID_PARAMETER;
    if (p.input_mode == DAFL_INPUT_CLAMPED_LOGITS && !(p.clamp_eps > 0.0f && p.clamp_eps < 0.5f))
        return DAFL_ERR_INVALID_PARAMETER;
    if (!(p.log_eps >= 0.0f && p.log_eps < 0.5f) ||
        (p.log_eps != 0.0f && p.input_mode != DAFL_INPUT_PROBABILITIES))
        return DAFL_ERR_INVALID_PARAMETER;

    memset(job, 0, sizeof *job);
    job->mode = p.input_mode;
    job->alpha = p.alpha;
    job->beta = p.beta;
    job->alpha_int = integer_exponent(p.alpha);
    job->beta_int = integer_exponent(p.beta);
    job->pos_weight = p.pos_weight;
    job->neg_weight = p.neg_weight;
    job->eps = p.clamp_eps;
    job->one_minus_eps = (float)(1.0 - (double)p.clamp_eps);
    job->neglog_eps = (float)-log((double)p.clamp_eps);
    job->neglog_1m_eps = (float)-log1p(-(double)p.clamp_eps);
    job->log_eps = p.log_eps;
    return set_dtypes(&job->io, p.input_dtype, p.target_dtype, p.grad_dtype);
}

dafl_status dafl_penalty_focal(const float *input, const float *target, size_t count,
                               const dafl_penalty_focal_params *params, float *loss,
                               float *grad, dafl_stats *stats)
{
    DAFL_FP_ENVIRONMENT();
    dafl_pf_job job;
    reduction_args r;
    dafl_status st = check_buffers(input, target, count);
    if (st != DAFL_OK || (st = dafl_penalty_focal_setup(params, &job, &r)) != DAFL_OK)
        return st;
    const dafl_kernels *k = dafl_active_kernels();
    return run_elementwise(k, k->penalty_focal, &job, &job.io,
                           input, target, count, &r, loss, grad, stats);
}

/* ---- 2.2 ---------------------------------------------------------------------------- */
dafl_status dafl_sigmoid_focal(const float *input, const float *target, size_t count,
                               const dafl_sigmoid_focal_params *params, float *loss,
                               float *grad, dafl_stats *stats)
{
    DAFL_FP_ENVIRONMENT();
    dafl_sigmoid_focal_params p = DAFL_SIGMOID_FOCAL_PARAMS_INIT;
    dafl_status st = read_params(&p, sizeof p, params);
    if (st != DAFL_OK || (st = check_buffers(input, target, count)) != DAFL_OK)
        return st;
    reduction_args r = {p.reduction, p.normalizer, p.grad_scale, p.flags};
    if ((st = check_reduction(&r, 1)) != DAFL_OK)
        return st;
    /* alpha: any value below +inf (torchvision takes any alpha: above 1 the negatives'
     * weight 1 - alpha is negative); NaN and +inf are invalid. */
    if (!is_exponent(p.gamma) || !(p.alpha < INFINITY))
        return DAFL_ERR_INVALID_PARAMETER;

    dafl_sf_job job;
    memset(&job, 0, sizeof job);
    job.gamma = p.gamma;
    job.gamma_int = integer_exponent(p.gamma);
    job.alpha = p.alpha < 0.0f ? -1.0f : p.alpha;
    job.one_minus_alpha = 1.0f - p.alpha;
    if ((st = set_dtypes(&job.io, p.input_dtype, p.target_dtype, p.grad_dtype)) != DAFL_OK)
        return st;
    const dafl_kernels *k = dafl_active_kernels();
    return run_elementwise(k, k->sigmoid_focal, &job, &job.io,
                           input, target, count, &r, loss, grad, stats);
}

/* ---- 2.3 ---------------------------------------------------------------------------- */
dafl_status dafl_bce_with_logits(const float *input, const float *target, size_t count,
                                 const dafl_bce_params *params, float *loss, float *grad,
                                 dafl_stats *stats)
{
    DAFL_FP_ENVIRONMENT();
    dafl_bce_params p = DAFL_BCE_PARAMS_INIT;
    dafl_status st = read_params(&p, sizeof p, params);
    if (st != DAFL_OK || (st = check_buffers(input, target, count)) != DAFL_OK)
        return st;
    reduction_args r = {p.reduction, p.normalizer, p.grad_scale, p.flags};
    if ((st = check_reduction(&r, 1)) != DAFL_OK)
        return st;
    if (!is_weight(p.pos_weight))
        return DAFL_ERR_INVALID_PARAMETER;

    dafl_bce_job job;
    memset(&job, 0, sizeof job);
    job.pos_weight = p.pos_weight;
    if ((st = set_dtypes(&job.io, p.input_dtype, p.target_dtype, p.grad_dtype)) != DAFL_OK)
        return st;
    const dafl_kernels *k = dafl_active_kernels();
    return run_elementwise(k, k->bce, &job, &job.io,
                           input, target, count, &r, loss, grad, stats);
}

/* ---- 2.5 ---------------------------------------------------------------------------- */
dafl_status dafl_mse(const float *input, const float *target, size_t n, size_t c, size_t hw,
                     const dafl_mse_params *params, float *loss, float *grad,
                     dafl_stats *stats)
{
    DAFL_FP_ENVIRONMENT();
    dafl_mse_params p = DAFL_MSE_PARAMS_INIT;
    dafl_status st = read_params(&p, sizeof p, params);
    if (st != DAFL_OK)
        return st;
    size_t planes, count;
    if (!size_product(n, c, &planes) || !size_product(planes, hw, &count))
        return DAFL_ERR_SIZE_OVERFLOW;
    if ((st = check_buffers(input, target, count)) != DAFL_OK)
        return st;
    reduction_args r = {p.reduction, p.normalizer, p.grad_scale, p.flags};
    if ((st = check_reduction(&r, 1)) != DAFL_OK)
        return st;
    if (p.weights) {
        if (p.weights_count != c && p.weights_count != planes)
            return DAFL_ERR_INVALID_PARAMETER;
        for (size_t i = 0; i < p.weights_count; i++)
            if (!is_weight(p.weights[i]))
                return DAFL_ERR_INVALID_PARAMETER;
    }

    dafl_mse_job job;
    memset(&job, 0, sizeof job);
    job.weights = p.weights && p.weights_count ? p.weights : NULL;
    job.weights_count = p.weights_count;
    job.plane = hw;
    if ((st = set_dtypes(&job.io, p.input_dtype, p.target_dtype, p.grad_dtype)) != DAFL_OK)
        return st;
    const dafl_kernels *k = dafl_active_kernels();
    return run_elementwise(k, k->mse, &job, &job.io,
                           input, target, count, &r, loss, grad, stats);
}

/* ---- 2.4 ---------------------------------------------------------------------------- */
dafl_status dafl_softmax_focal(const float *logits, const int32_t *labels, size_t n, size_t c,
                               size_t hw, const dafl_softmax_focal_params *params, float *loss,
                               float *grad, dafl_stats *stats)
{
    DAFL_FP_ENVIRONMENT();
    dafl_softmax_focal_params p = DAFL_SOFTMAX_FOCAL_PARAMS_INIT;
    dafl_status st = read_params(&p, sizeof p, params);
    if (st != DAFL_OK)
        return st;
    size_t pixels, count, bytes;
    if (!size_product(n, hw, &pixels) || !size_product(pixels, c, &count) ||
        !size_product(count, sizeof(float), &bytes))
        return DAFL_ERR_SIZE_OVERFLOW;
    if (pixels && (!labels || (c && !logits)))
        return DAFL_ERR_NULL_POINTER;
    if (p.layout != DAFL_LAYOUT_NCHW && p.layout != DAFL_LAYOUT_NHWC)
        return DAFL_ERR_INVALID_ENUM;
    reduction_args r = {p.reduction, p.normalizer, p.grad_scale, p.flags};
    if ((st = check_reduction(&r, 0)) != DAFL_OK)
        return st;
    if (!is_exponent(p.gamma) || (pixels && c == 0) || c > DAFL_MAX_CLASSES)
        return DAFL_ERR_INVALID_PARAMETER;
    if (p.class_weights)
        for (size_t k = 0; k < c; k++)
            if (!is_weight(p.class_weights[k]))
                return DAFL_ERR_INVALID_PARAMETER;
    /* c >= 1 or pixels == 0 here, so pixels * 4 does not overflow */
    if ((st = dafl_check_overlaps((byte_range){logits, bytes},
                             (byte_range){labels, pixels * sizeof(int32_t)},
                             (byte_range){grad, bytes},
                             (byte_range){p.reduction == DAFL_REDUCTION_NONE ? loss : NULL,
                                          pixels * sizeof(float)})) != DAFL_OK)
        return st;

    if (pixels == 0) { /* nothing to label or weigh */
        if (loss && r.reduction != DAFL_REDUCTION_NONE) {
            dafl_stats_impl empty;
            dafl_stats_impl_clear(&empty);
            *loss = dafl_reduced_loss(&empty, r.reduction, r.normalizer);
        }
        if (stats)
            dafl_stats_init(stats);
        return DAFL_OK;
    }
    /* Labels: validate, and count each class for the exact weight sum. */
    uint64_t *class_count = calloc(c ? c : 1, sizeof *class_count);
    if (!class_count)
        return DAFL_ERR_OUT_OF_MEMORY;
    uint64_t active = 0;
    for (size_t i = 0; i < pixels; i++) {
        int32_t t = labels[i];
        if (t == p.ignore_index)
            continue;
        if (t < 0 || (uint64_t)t >= c) {
            free(class_count);
            return DAFL_ERR_INVALID_LABEL;
        }
        class_count[t]++;
        active++;
    }
    dafl_stats_impl s;
    dafl_stats_impl_clear(&s);
    for (size_t k = 0; k < c; k++)
        dafl_xacc_add_float_times(&s.weight, p.class_weights ? p.class_weights[k] : 1.0f,
                                  class_count[k]);
    free(class_count);
    s.elements = active;
    double weight_sum = dafl_xacc_to_double(&s.weight);

    dafl_softmax_job job;
    memset(&job, 0, sizeof job);
    job.x = logits;
    job.labels = labels;
    job.grad = grad;
    job.loss_out = r.reduction == DAFL_REDUCTION_NONE ? loss : NULL;
    job.grad_factor =
        (float)((double)r.grad_scale /
                dafl_reduction_denominator(r.reduction, r.normalizer, 0, weight_sum));
    job.c = c;
    job.hw = hw;
    job.nhwc = p.layout == DAFL_LAYOUT_NHWC;
    job.ignore_index = p.ignore_index;
    job.class_weights = p.class_weights;
    job.gamma = p.gamma;
    job.gamma_int = integer_exponent(p.gamma);

    block_task task = {.job = &job, .softmax = dafl_active_kernels()->softmax_focal,
                       .items = pixels};
    st = run_blocks(&task, count, &s);
    if (st == DAFL_ERR_OUT_OF_MEMORY)
        return st;
    if (loss && r.reduction != DAFL_REDUCTION_NONE)
        *loss = dafl_reduced_loss(&s, r.reduction, r.normalizer);
    if (stats)
        dafl_stats_write(stats, &s);
    return st;
}

/* ---- positives ---------------------------------------------------------------------- */
dafl_status dafl_count_positives(const float *target, size_t count, uint32_t flags,
                                 uint64_t *positives)
{
    DAFL_FP_ENVIRONMENT();
    if (!positives || (count && !target))
        return DAFL_ERR_NULL_POINTER;
    if (count > SIZE_MAX / sizeof(float))
        return DAFL_ERR_SIZE_OVERFLOW;
    if (flags & ~DAFL_FLAG_TRUST_TARGETS)
        return DAFL_ERR_INVALID_ENUM;
    uint64_t found;
    int bad = dafl_active_kernels()->scan_targets(target, count, &found);
    if (bad && !(flags & DAFL_FLAG_TRUST_TARGETS))
        return DAFL_ERR_INVALID_TARGET;
    *positives = found;
    return DAFL_OK;
}
