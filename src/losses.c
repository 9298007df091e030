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

/* Every loss's parameters carry the reduction settings, and the element-wise losses' the
 * element types of their buffers, in this order: M is the struct's MEMBER macro. */
#define REDUCTION_MEMBERS(M) M(reduction), M(normalizer), M(grad_scale), M(flags)
#define DTYPE_MEMBERS(M) M(input_dtype), M(target_dtype), M(grad_dtype)

#define PF_MEMBER(m) MEMBER(dafl_penalty_focal_params, m)
static const member_span penalty_focal_members[] = {
    PF_MEMBER(struct_size), PF_MEMBER(alpha),      PF_MEMBER(beta),
    PF_MEMBER(pos_weight),  PF_MEMBER(neg_weight), PF_MEMBER(input_mode),
    PF_MEMBER(clamp_eps),   REDUCTION_MEMBERS(PF_MEMBER),
    PF_MEMBER(log_eps),     DTYPE_MEMBERS(PF_MEMBER)};
LAST_MEMBER(dafl_penalty_focal_params, grad_dtype);
#define SF_MEMBER(m) MEMBER(dafl_sigmoid_focal_params, m)
static const member_span sigmoid_focal_members[] = {
    SF_MEMBER(struct_size), SF_MEMBER(gamma), SF_MEMBER(alpha),
    REDUCTION_MEMBERS(SF_MEMBER), DTYPE_MEMBERS(SF_MEMBER)};
LAST_MEMBER(dafl_sigmoid_focal_params, grad_dtype);
#define BCE_MEMBER(m) MEMBER(dafl_bce_params, m)
static const member_span bce_members[] = {
    BCE_MEMBER(struct_size), BCE_MEMBER(pos_weight),
    REDUCTION_MEMBERS(BCE_MEMBER), DTYPE_MEMBERS(BCE_MEMBER),
    BCE_MEMBER(pos_weights), BCE_MEMBER(pos_weights_count), BCE_MEMBER(channels),
    BCE_MEMBER(channel_stride)};
LAST_MEMBER(dafl_bce_params, channel_stride);
/* The per-class members start at or after the sizeof of the struct without them (its
 * old tail padding stays unused), so an older caller's struct_size never covers them. */
_Static_assert(offsetof(dafl_bce_params, pos_weights) >=
                   (offsetof(dafl_bce_params, grad_dtype) + sizeof(dafl_dtype) +
                    _Alignof(size_t) - 1) / _Alignof(size_t) * _Alignof(size_t),
               "dafl_bce_params::pos_weights starts inside the old tail padding");
#define SM_MEMBER(m) MEMBER(dafl_softmax_focal_params, m)
static const member_span softmax_focal_members[] = {
    SM_MEMBER(struct_size),  SM_MEMBER(gamma),         SM_MEMBER(layout),
    SM_MEMBER(ignore_index), SM_MEMBER(class_weights), REDUCTION_MEMBERS(SM_MEMBER),
    SM_MEMBER(input_dtype),  SM_MEMBER(grad_dtype)};
LAST_MEMBER(dafl_softmax_focal_params, grad_dtype);
#define MSE_MEMBER(m) MEMBER(dafl_mse_params, m)
static const member_span mse_members[] = {
    MSE_MEMBER(struct_size), MSE_MEMBER(weights), MSE_MEMBER(weights_count),
    REDUCTION_MEMBERS(MSE_MEMBER), DTYPE_MEMBERS(MSE_MEMBER), MSE_MEMBER(channel_stride)};
LAST_MEMBER(dafl_mse_params, channel_stride);
_Static_assert(offsetof(dafl_mse_params, channel_stride) >=
                   (offsetof(dafl_mse_params, grad_dtype) + sizeof(dafl_dtype) +
                    _Alignof(size_t) - 1) / _Alignof(size_t) * _Alignof(size_t),
               "dafl_mse_params::channel_stride starts inside the old tail padding");

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
typedef struct block_run {
    dafl_block_fn block;
    const void *ctx;
    size_t items;
    pthread_mutex_t lock;
    dafl_xacc sum;
    uint64_t positives;
} block_run;

static void run_block_range(void *ctx, size_t first_block, size_t end_block)
{
    block_run *t = ctx;
    dafl_xacc local;
    dafl_xacc_clear(&local);
    uint64_t positives = 0;
    for (size_t b = first_block; b < end_block; b++) {
        size_t begin = b * DAFL_BLOCK_ELEMENTS;
        size_t len = t->items - begin < DAFL_BLOCK_ELEMENTS ? t->items - begin
                                                            : DAFL_BLOCK_ELEMENTS;
        uint64_t block_positives = 0;
        dafl_xacc_add_double(&local, t->block(t->ctx, begin, len, &block_positives));
        positives += block_positives;
    }
    pthread_mutex_lock(&t->lock);
    dafl_xacc_add(&t->sum, &local);
    t->positives += positives;
    pthread_mutex_unlock(&t->lock);
}

/* The one block driver of every loss (losses_internal.h). */
dafl_status dafl_run_blocks(dafl_block_fn block, const void *ctx, size_t items,
                            size_t elements_touched, dafl_stats_impl *s)
{
    block_run t = {.block = block, .ctx = ctx, .items = items};
    pthread_mutex_init(&t.lock, NULL);
    dafl_xacc_clear(&t.sum);
    size_t blocks = (items + DAFL_BLOCK_ELEMENTS - 1) / DAFL_BLOCK_ELEMENTS;
    dafl_status st = dafl_parallel_for(blocks, elements_touched, run_block_range, &t);
    pthread_mutex_destroy(&t.lock);
    dafl_xacc_add(&s->loss, &t.sum);
    s->positives += t.positives;
    return st;
}

/* The outputs of a call from its statistics: the reduced loss (unless the reduction is
 * NONE, whose per-element losses the kernels wrote) and the statistics themselves. */
void dafl_write_outputs(const dafl_stats_impl *s, const reduction_args *r, float *loss,
                        dafl_stats *stats)
{
    if (loss && r->reduction != DAFL_REDUCTION_NONE)
        *loss = dafl_reduced_loss(s, r->reduction, r->normalizer);
    if (stats)
        dafl_stats_write(stats, s);
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

/* The dafl_io of a parameter struct's buffer dtypes, as given: run_elementwise checks
 * them (DAFL_ERR_INVALID_ENUM for a value this library does not know). */
#define IO_DTYPES(p)                                                                       \
    {.x_dtype = (int)(p).input_dtype, .y_dtype = (int)(p).target_dtype,                   \
     .grad_dtype = (int)(p).grad_dtype}

/* The target scan over targets of any dtype: float32 by the ISA's scan_targets; bfloat16
 * and float16 on their bits, which answer the same two questions exactly, since the
 * widening is exact and order-preserving: a target is valid (0 <= y <= 1) iff its bits
 * are at most those of 1.0 (the non-negative values in [0, 1], subnormals included) or
 * are -0 (0x8000), and positive (y == 1) iff they are 1.0's.  Every other pattern is a
 * negative value, a value above 1, an infinity or a NaN: invalid.  Widening float16
 * element by element first took 2x the whole call's time at 8x80x128x128 (the scalar
 * conversion branches on each element); this integer loop vectorizes. */
static int scan_half_targets(const uint16_t *h, size_t count, uint16_t one, uint64_t *positives)
{
    uint64_t total = 0;
    unsigned bad = 0;
    for (size_t i = 0; i < count; i += 4096) {
        const size_t n = count - i < 4096 ? count - i : 4096;
        uint32_t found = 0; /* per chunk, so that the loop's counters stay 32-bit lanes */
        for (size_t e = 0; e < n; e++) {
            const uint16_t v = h[i + e];
            bad |= (unsigned)(v > one) & (unsigned)(v != 0x8000u);
            found += v == one;
        }
        total += found;
    }
    *positives = total;
    return bad != 0;
}

static int scan_targets_of(const dafl_kernels *k, const float *target, int dtype, size_t count,
                           uint64_t *positives)
{
    if (dtype == DAFL_DTYPE_FLOAT32)
        return k->scan_targets(target, count, positives);
    const uint16_t *h = (const uint16_t *)(const void *)target;
    return scan_half_targets(h, count, dtype == DAFL_DTYPE_BFLOAT16 ? 0x3f80u : 0x3c00u,
                             positives);
}

/* Everything after the loss-specific checks: the dtypes, overlaps, targets, normalizer,
 * the block loop, the outputs.  `io` is the job's dafl_io (its dtypes set, not yet
 * checked), whose buffers are filled here. */
static dafl_status run_elementwise(const dafl_kernels *k, dafl_elementwise_kernel kernel,
                                   const void *job, dafl_io *io, const float *input,
                                   const float *target, size_t count, reduction_args r,
                                   float *loss, float *grad, dafl_stats *stats)
{
    if (!dafl_dtype_valid(io->x_dtype) || !dafl_dtype_valid(io->y_dtype) ||
        !dafl_dtype_valid(io->grad_dtype))
        return DAFL_ERR_INVALID_ENUM;
    size_t bytes = count * sizeof(float);
    byte_range loss_array = {r.reduction == DAFL_REDUCTION_NONE ? loss : NULL, bytes};
    if (dafl_check_overlaps((byte_range){input, count * dafl_dtype_size(io->x_dtype)},
                            (byte_range){target, count * dafl_dtype_size(io->y_dtype)},
                            (byte_range){grad, count * dafl_dtype_size(io->grad_dtype)},
                            loss_array) != DAFL_OK)
        return DAFL_ERR_OVERLAP;
    uint64_t positives = 0;
    int trust = (r.flags & DAFL_FLAG_TRUST_TARGETS) != 0;
    if (!trust || r.reduction == DAFL_REDUCTION_POSITIVES) {
        int bad = scan_targets_of(k, target, io->y_dtype, count, &positives);
        if (bad && !trust)
            return DAFL_ERR_INVALID_TARGET;
    }
    double denom = dafl_reduction_denominator(r.reduction, r.normalizer, positives,
                                         (double)count);
    io->x = input;
    io->y = target;
    io->grad = grad;
    io->loss_out = r.reduction == DAFL_REDUCTION_NONE ? loss : NULL;
    io->grad_factor = (float)((double)r.grad_scale / denom);

    dafl_stats_impl s;
    dafl_stats_impl_clear(&s);
    dafl_status st = dafl_run_blocks(kernel, job, count, count, &s);
    if (st == DAFL_ERR_OUT_OF_MEMORY)
        return st;
    s.elements = count;
    dafl_xacc_add_float_times(&s.weight, 1.0f, count);
    dafl_write_outputs(&s, &r, loss, stats);
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

/* The reduction settings of a parameter struct. */
#define REDUCTION_ARGS(p)                                                                  \
    ((reduction_args){(p).reduction, (p).normalizer, (p).grad_scale, (p).flags})

/* The checks an element-wise loss makes before its own, in this order: its parameter
 * struct (`read`: read_params's status), its buffers, its reduction settings. */
static dafl_status check_call(dafl_status read, const float *input, const float *target,
                              size_t count, reduction_args r)
{
    if (read != DAFL_OK)
        return read;
    dafl_status st = check_buffers(input, target, count);
    return st != DAFL_OK ? st : check_reduction(&r, 1);
}

/* ---- weights per channel (MSE's weights, BCE's pos_weights) ------------------------ */

/* Weights that are all >= 0 and finite. */
static int weights_valid(const float *w, size_t count)
{
    for (size_t i = 0; i < count; i++)
        if (!is_weight(w[i]))
            return 0;
    return 1;
}

/* The most floats a lane-by-lane table of channel weights may take (16 MiB); a larger
 * one is not built, and its groups take their weights lane by lane (the same bits). */
#define CHANNEL_TABLE_MAX ((size_t)1 << 22)
#define CHANNEL_TABLE_GROUP 16 /* the kernels' group of elements (loss_kernels.h) */

/* The dafl_channel_weights (kernel_api.h) of weights w, `count` of them (c or n*c), for a
 * call whose images hold `image` elements (a multiple of c * stride) and element i's
 * channel is (i / stride) % c; all validated, and the call not empty.  For a stride below
 * the kernels' group (channels_last) it builds the table of weights lane by lane; the
 * caller frees *table (NULL when none was built: too large, or no memory, where the
 * kernels find each lane's weight by the formula instead). */
static dafl_channel_weights channel_weights(const float *w, size_t count, size_t c,
                                            size_t stride, size_t image, float **table)
{
    *table = NULL;
    dafl_channel_weights cw = {.w = w, .count = count, .c = c, .stride = stride,
                               .image = image};
    if (c == 1) /* one channel: the stride says nothing; a run is the whole image */
        cw.stride = image;
    cw.period = cw.c * cw.stride;
    cw.row = cw.period + CHANNEL_TABLE_GROUP - 1;
    const size_t rows = count == c ? 1 : count / c;
    size_t floats;
    if (cw.stride >= CHANNEL_TABLE_GROUP || !size_product(rows, cw.row, &floats) ||
        floats > CHANNEL_TABLE_MAX || !(*table = malloc(floats * sizeof(float))))
        return cw;
    /* row r, entry k: the weight of element k % period of image r (any image for count c) */
    for (size_t r = 0; r < rows; r++)
        for (size_t k = 0; k < cw.row; k++) {
            size_t channel = (k % cw.period) / cw.stride % c;
            (*table)[r * cw.row + k] = w[count == c ? channel : r * c + channel];
        }
    cw.table = *table;
    return cw;
}

/* ---- 2.1 ---------------------------------------------------------------------------- */
/* Reads and validates the parameters and fills the job and the reduction settings; the
 * keypoint form (src/keypoints.c) shares it.  The dtypes are set, not yet checked. */
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
    *r = REDUCTION_ARGS(p);
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
    job->io = (dafl_io)IO_DTYPES(p);
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
    return DAFL_OK;
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
    return run_elementwise(k, k->penalty_focal, &job, &job.io, input, target, count, r, loss,
                           grad, stats);
}

/* ---- 2.2 ---------------------------------------------------------------------------- */
dafl_status dafl_sigmoid_focal(const float *input, const float *target, size_t count,
                               const dafl_sigmoid_focal_params *params, float *loss,
                               float *grad, dafl_stats *stats)
{
    DAFL_FP_ENVIRONMENT();
    dafl_sigmoid_focal_params p = DAFL_SIGMOID_FOCAL_PARAMS_INIT;
    dafl_status st = read_params(&p, sizeof p, params);
    if ((st = check_call(st, input, target, count, REDUCTION_ARGS(p))) != DAFL_OK)
        return st;
    /* alpha: any value below +inf (torchvision takes any alpha: above 1 the negatives'
     * weight 1 - alpha is negative); NaN and +inf are invalid. */
    if (!is_exponent(p.gamma) || !(p.alpha < INFINITY))
        return DAFL_ERR_INVALID_PARAMETER;

    dafl_sf_job job = {.io = IO_DTYPES(p),
                       .gamma = p.gamma,
                       .gamma_int = integer_exponent(p.gamma),
                       .alpha = p.alpha < 0.0f ? -1.0f : p.alpha,
                       .one_minus_alpha = 1.0f - p.alpha};
    const dafl_kernels *k = dafl_active_kernels();
    return run_elementwise(k, k->sigmoid_focal, &job, &job.io, input, target, count,
                           REDUCTION_ARGS(p), loss, grad, stats);
}

/* ---- 2.3 ---------------------------------------------------------------------------- */
dafl_status dafl_bce_with_logits(const float *input, const float *target, size_t count,
                                 const dafl_bce_params *params, float *loss, float *grad,
                                 dafl_stats *stats)
{
    DAFL_FP_ENVIRONMENT();
    dafl_bce_params p = DAFL_BCE_PARAMS_INIT;
    dafl_status st = read_params(&p, sizeof p, params);
    if ((st = check_call(st, input, target, count, REDUCTION_ARGS(p))) != DAFL_OK)
        return st;
    if (!is_weight(p.pos_weight))
        return DAFL_ERR_INVALID_PARAMETER;
    /* pos_weights (dafl.h): element i's class is (i / channel_stride) % c, its image
     * i / (count / n), n = pos_weights_count / c; whole images of whole periods */
    const size_t c = p.channels ? p.channels : p.pos_weights_count;
    size_t period_total = 0;
    if (p.pos_weights) {
        if (p.pos_weight != 1.0f || c == 0 || p.pos_weights_count % c != 0 ||
            p.channel_stride == 0)
            return DAFL_ERR_INVALID_PARAMETER;
        if (!size_product(p.pos_weights_count, p.channel_stride, &period_total))
            return DAFL_ERR_SIZE_OVERFLOW;
        if (count % period_total != 0 || !weights_valid(p.pos_weights, p.pos_weights_count))
            return DAFL_ERR_INVALID_PARAMETER;
    }

    dafl_bce_job job = {.io = IO_DTYPES(p), .pos_weight = p.pos_weight};
    float *table = NULL;
    if (p.pos_weights && count)
        job.pos_weights = channel_weights(p.pos_weights, p.pos_weights_count, c,
                                          p.channel_stride,
                                          count / (p.pos_weights_count / c), &table);
    const dafl_kernels *k = dafl_active_kernels();
    st = run_elementwise(k, k->bce, &job, &job.io, input, target, count,
                                      REDUCTION_ARGS(p), loss, grad, stats);
    free(table);
    return st;
}

/* ---- 2.5 ---------------------------------------------------------------------------- */
dafl_status dafl_mse(const float *input, const float *target, size_t n, size_t c, size_t hw,
                     const dafl_mse_params *params, float *loss, float *grad,
                     dafl_stats *stats)
{
    DAFL_FP_ENVIRONMENT();
    dafl_mse_params p = DAFL_MSE_PARAMS_INIT;
    dafl_status st = read_params(&p, sizeof p, params);
    size_t planes = 0, count = 0;
    if (st == DAFL_OK && (!size_product(n, c, &planes) || !size_product(planes, hw, &count)))
        st = DAFL_ERR_SIZE_OVERFLOW;
    if ((st = check_call(st, input, target, count, REDUCTION_ARGS(p))) != DAFL_OK)
        return st;
    /* channel_stride: 0 is hw (NCHW); any other must divide hw, so that a run of
     * channel_stride elements stays in one channel of one image (dafl.h) */
    if (p.channel_stride != 0 && hw % p.channel_stride != 0)
        return DAFL_ERR_INVALID_PARAMETER;
    if (p.weights) {
        if (p.weights_count != c && p.weights_count != planes)
            return DAFL_ERR_INVALID_PARAMETER;
        if (!weights_valid(p.weights, p.weights_count))
            return DAFL_ERR_INVALID_PARAMETER;
    }

    dafl_mse_job job = {.io = IO_DTYPES(p)};
    float *table = NULL;
    if (p.weights && p.weights_count && count) /* count > 0: c * hw does not overflow */
        job.weights = channel_weights(p.weights, p.weights_count, c,
                                      p.channel_stride ? p.channel_stride : hw, c * hw,
                                      &table);
    const dafl_kernels *k = dafl_active_kernels();
    st = run_elementwise(k, k->mse, &job, &job.io, input, target, count, REDUCTION_ARGS(p),
                         loss, grad, stats);
    free(table);
    return st;
}

/* ---- 2.4 ---------------------------------------------------------------------------- */
/* The softmax kernel as a dafl_block_fn: its blocks are of pixels, and it counts no
 * positives. */
typedef struct softmax_blocks {
    double (*kernel)(const dafl_softmax_job *job, size_t begin, size_t len);
    const dafl_softmax_job *job;
} softmax_blocks;

static double softmax_block(const void *ctx, size_t begin, size_t len, uint64_t *positives)
{
    const softmax_blocks *b = ctx;
    *positives = 0;
    return b->kernel(b->job, begin, len);
}

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
    if ((p.layout != DAFL_LAYOUT_NCHW && p.layout != DAFL_LAYOUT_NHWC) ||
        !dafl_dtype_valid(p.input_dtype) || !dafl_dtype_valid(p.grad_dtype))
        return DAFL_ERR_INVALID_ENUM;
    reduction_args r = REDUCTION_ARGS(p);
    if ((st = check_reduction(&r, 0)) != DAFL_OK)
        return st;
    if (!is_exponent(p.gamma) || (pixels && c == 0) || c > DAFL_MAX_CLASSES)
        return DAFL_ERR_INVALID_PARAMETER;
    if (p.class_weights)
        for (size_t k = 0; k < c; k++)
            if (!is_weight(p.class_weights[k]))
                return DAFL_ERR_INVALID_PARAMETER;
    /* c >= 1 or pixels == 0 here, so pixels * 4 does not overflow; bytes (count * 4)
     * bounds every element size */
    if ((st = dafl_check_overlaps((byte_range){logits, count * dafl_dtype_size(p.input_dtype)},
                             (byte_range){labels, pixels * sizeof(int32_t)},
                             (byte_range){grad, count * dafl_dtype_size(p.grad_dtype)},
                             (byte_range){p.reduction == DAFL_REDUCTION_NONE ? loss : NULL,
                                          pixels * sizeof(float)})) != DAFL_OK)
        return st;

    if (pixels == 0) { /* nothing to label or weigh */
        dafl_stats_impl empty;
        dafl_stats_impl_clear(&empty);
        dafl_write_outputs(&empty, &r, loss, stats);
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
    job.x_dtype = (int)p.input_dtype;
    job.grad_dtype = (int)p.grad_dtype;

    const softmax_blocks blocks = {dafl_active_kernels()->softmax_focal, &job};
    st = dafl_run_blocks(softmax_block, &blocks, pixels, count, &s);
    if (st == DAFL_ERR_OUT_OF_MEMORY)
        return st;
    dafl_write_outputs(&s, &r, loss, stats);
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
