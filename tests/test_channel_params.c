/*
 * Weights per channel in layouts other than NCHW: dafl_mse's weights and
 * dafl_bce_with_logits' per-class pos_weights, read with params' channel_stride.
 *
 * A batch of n images, c channels and hw pixels is laid out as (N, outer, C, inner) with
 * inner = s (the channel stride, a divisor of hw) and outer = hw / s: s = hw is NCHW,
 * s = 1 NHWC (channels_last).  For every such layout the call must give, bit for bit, the
 * NCHW call's per-element losses and gradient (each element where its layout puts it),
 * its positive and element counts, and its loss sum up to the rounding of the double
 * lanes that sum a block (see check_layouts); and agree with the double-precision reference
 * of tests/ref_losses.c evaluated with each element's own weight (found here by the
 * element's (image, channel, pixel) coordinates, not by the library's formula).
 * On every ISA the machine runs, for c in 1..20, hw in 1..40, every divisor s of hw,
 * weights per channel and per image and channel, misaligned buffers, 1 to 3 threads.
 * Bad counts and strides are refused with nothing written; a caller whose struct_size
 * ends before the new members gets NCHW and the single pos_weight.
 */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dafl.h"
#include "ref_losses.h"
#include "test_common.h"

/* Where layout s puts element (image k, channel ch, pixel p): (N, hw/s, C, s). */
static size_t layout_index(size_t c, size_t hw, size_t s, size_t k, size_t ch, size_t p)
{
    return k * c * hw + (p / s) * c * s + ch * s + p % s;
}

/* Buffers with room for a misalignment of up to 3 floats. */
typedef struct batch {
    size_t n, c, hw, count;
    float *x, *y;        /* NCHW */
    float *xs, *ys;      /* in layout s */
    float *w;            /* n*c weights (the first c are the per-channel ones) */
    float *loss_a, *loss_b, *grad_a, *grad_b;
} batch;

static float *alloc_floats(size_t n) { return calloc(n + 4, sizeof(float)); }

static void batch_init(batch *b, size_t n, size_t c, size_t hw, uint64_t seed, int bce)
{
    b->n = n;
    b->c = c;
    b->hw = hw;
    b->count = n * c * hw;
    b->x = alloc_floats(b->count);
    b->y = alloc_floats(b->count);
    b->xs = alloc_floats(b->count);
    b->ys = alloc_floats(b->count);
    b->w = alloc_floats(n * c);
    b->loss_a = alloc_floats(b->count);
    b->loss_b = alloc_floats(b->count);
    b->grad_a = alloc_floats(b->count);
    b->grad_b = alloc_floats(b->count);
    ck_assert(b->x && b->y && b->xs && b->ys && b->w && b->loss_a && b->loss_b && b->grad_a &&
              b->grad_b);
    uint64_t st = seed;
    for (size_t i = 0; i < b->count; i++) {
        b->x[i] = test_uniform(&st, -6.0f, 6.0f);
        if (bce) { /* hard targets of both kinds and soft ones */
            unsigned r = (unsigned)(test_rand64(&st) % 4);
            b->y[i] = r == 0 ? 1.0f : r == 1 ? 0.0f : test_uniform(&st, 0.0f, 1.0f);
        } else {
            b->y[i] = test_uniform(&st, 0.0f, 1.0f);
        }
    }
    /* distinct weights, so that a wrong channel or image changes the result */
    for (size_t i = 0; i < n * c; i++)
        b->w[i] = 0.25f + 0.125f * (float)i + test_uniform(&st, 0.0f, 0.0625f);
}

static void batch_free(batch *b)
{
    free(b->x);
    free(b->y);
    free(b->xs);
    free(b->ys);
    free(b->w);
    free(b->loss_a);
    free(b->loss_b);
    free(b->grad_a);
    free(b->grad_b);
}

/* xs, ys: x, y in layout s, starting `shift` floats into their buffers. */
static void batch_permute(batch *b, size_t s, size_t shift)
{
    for (size_t k = 0; k < b->n; k++)
        for (size_t ch = 0; ch < b->c; ch++)
            for (size_t p = 0; p < b->hw; p++) {
                size_t from = (k * b->c + ch) * b->hw + p;
                size_t to = layout_index(b->c, b->hw, s, k, ch, p) + shift;
                b->xs[to] = b->x[from];
                b->ys[to] = b->y[from];
            }
}

/* The weight of element (k, ch) for weights per channel or per image and channel. */
static double weight_of(const batch *b, int per_image, size_t k, size_t ch)
{
    return b->w[per_image ? k * b->c + ch : ch];
}

/* Compares the call in layout s (per-element losses loss_b+shift, gradient grad_b+shift)
 * with the NCHW one (loss_a, grad_a) bit for bit, and both with the reference. */
static void compare_elements(const batch *b, size_t s, size_t shift, int bce, int per_image,
                             const char *what)
{
    for (size_t k = 0; k < b->n; k++)
        for (size_t ch = 0; ch < b->c; ch++)
            for (size_t p = 0; p < b->hw; p++) {
                size_t i = (k * b->c + ch) * b->hw + p;
                size_t j = layout_index(b->c, b->hw, s, k, ch, p) + shift;
                TEST_REQUIRE(test_same_bits(b->loss_a[i], b->loss_b[j]) &&
                                 test_same_bits(b->grad_a[i], b->grad_b[j]),
                             "%s n=%zu c=%zu hw=%zu s=%zu: element (%zu,%zu,%zu) differs from "
                             "NCHW: loss %a vs %a, grad %a vs %a",
                             what, b->n, b->c, b->hw, s, k, ch, p, (double)b->loss_b[j],
                             (double)b->loss_a[i], (double)b->grad_b[j],
                             (double)b->grad_a[i]);
                double w = weight_of(b, per_image, k, ch);
                ref_value r = bce ? ref_bce(b->x[i], b->y[i], w) : ref_mse(b->x[i], b->y[i], w);
                double gscale = bce ? ref_bce_grad_scale(b->x[i], b->y[i], w) : fabs(r.grad);
                TEST_REQUIRE(fabs(b->loss_a[i] - r.loss) <= 1e-5 * fabs(r.loss) + 1e-30 &&
                                 fabs(b->grad_a[i] - r.grad) <= 1e-5 * gscale + 1e-30,
                             "%s n=%zu c=%zu hw=%zu: element (%zu,%zu,%zu) loss %.9g grad %.9g, "
                             "reference %.9g %.9g (weight %g)",
                             what, b->n, b->c, b->hw, k, ch, p, (double)b->loss_a[i],
                             (double)b->grad_a[i], r.loss, r.grad, w);
            }
}

/* The sum of the reference's per-element losses. */
static double reference_sum(const batch *b, int bce, int per_image)
{
    double sum = 0.0;
    for (size_t k = 0; k < b->n; k++)
        for (size_t ch = 0; ch < b->c; ch++)
            for (size_t p = 0; p < b->hw; p++) {
                size_t i = (k * b->c + ch) * b->hw + p;
                double w = weight_of(b, per_image, k, ch);
                sum += (bce ? ref_bce(b->x[i], b->y[i], w) : ref_mse(b->x[i], b->y[i], w)).loss;
            }
    return sum;
}

/* One loss call: MSE (bce 0) or BCE with weights per channel or per image and channel,
 * in layout s (0: the NCHW default of MSE's params), reading x, y, writing loss, grad. */
static dafl_status call_loss(const batch *b, int bce, int per_image, size_t s, const float *x,
                             const float *y, dafl_reduction reduction, float *loss,
                             float *grad, dafl_stats *stats)
{
    size_t wcount = per_image ? b->n * b->c : b->c;
    if (bce) {
        dafl_bce_params p = DAFL_BCE_PARAMS_INIT;
        p.reduction = reduction;
        p.pos_weights = b->w;
        p.pos_weights_count = wcount;
        p.channels = b->c;
        p.channel_stride = s ? s : b->hw;
        return dafl_bce_with_logits(x, y, b->count, &p, loss, grad, stats);
    }
    dafl_mse_params p = DAFL_MSE_PARAMS_INIT;
    p.reduction = reduction;
    p.weights = b->w;
    p.weights_count = wcount;
    p.channel_stride = s;
    return dafl_mse(x, y, b->n, b->c, b->hw, &p, loss, grad, stats);
}

/* Every divisor s of hw against NCHW, for one batch, loss and weight kind. */
static void check_layouts(batch *b, int bce, int per_image, const char *what)
{
    /* NCHW: the default channel stride (MSE) or hw (BCE), aligned buffers */
    ck_assert_int_eq(call_loss(b, bce, per_image, 0, b->x, b->y, DAFL_REDUCTION_NONE,
                               b->loss_a, b->grad_a, NULL),
                     DAFL_OK);
    float sum_a;
    dafl_stats stats_a, stats_b;
    ck_assert_int_eq(call_loss(b, bce, per_image, 0, b->x, b->y, DAFL_REDUCTION_SUM, &sum_a,
                               NULL, &stats_a),
                     DAFL_OK);
    double ref = reference_sum(b, bce, per_image);
    TEST_REQUIRE(fabs(sum_a - ref) <= 2e-6 * fabs(ref) + 1e-30,
                 "%s n=%zu c=%zu hw=%zu: sum %.9g, reference %.9g", what, b->n, b->c, b->hw,
                 (double)sum_a, ref);
    for (size_t s = 1; s <= b->hw; s++) {
        if (b->hw % s)
            continue;
        size_t shift = (s + b->c + b->hw) % 4; /* misaligned by 0 to 3 floats */
        batch_permute(b, s, shift);
        ck_assert_int_eq(call_loss(b, bce, per_image, s, b->xs + shift, b->ys + shift,
                                   DAFL_REDUCTION_NONE, b->loss_b + shift, b->grad_b + shift,
                                   NULL),
                         DAFL_OK);
        compare_elements(b, s, shift, bce, per_image, what);
        float sum_b;
        ck_assert_int_eq(call_loss(b, bce, per_image, s, b->xs + shift, b->ys + shift,
                                   DAFL_REDUCTION_SUM, &sum_b, NULL, &stats_b),
                         DAFL_OK);
        /* The same per-element losses in another order: a block adds its elements to 16
         * double lanes, exact only while a lane's values span less than 2^29, so the
         * double sums may differ in their last bits (and the float loss, rarely, by one
         * rounding); the positives are counted exactly. */
        double da = dafl_stats_loss_sum(&stats_a), db = dafl_stats_loss_sum(&stats_b);
        TEST_REQUIRE(fabs(da - db) <= 1e-13 * fabs(da) &&
                         fabs((double)sum_a - (double)sum_b) <=
                             ldexp(fabs((double)sum_a), -23) &&
                         dafl_stats_positives(&stats_a) == dafl_stats_positives(&stats_b) &&
                         dafl_stats_elements(&stats_a) == dafl_stats_elements(&stats_b),
                     "%s n=%zu c=%zu hw=%zu s=%zu: sum %a (exact %a), NCHW %a (exact %a)",
                     what, b->n, b->c, b->hw, s, (double)sum_b, db, (double)sum_a, da);
    }
}

static const char *kind_name(int bce, int per_image)
{
    return bce ? (per_image ? "bce pos_weights n*c" : "bce pos_weights c")
               : (per_image ? "mse weights n*c" : "mse weights c");
}

/* c 1..20, hw 1..40, every divisor of hw, on every ISA. */
START_TEST(layouts_match_nchw_and_reference)
{
    const int bce = _i / 2, per_image = _i % 2;
    const char *what = kind_name(bce, per_image);
    for (int t = 0; t < TEST_ISA_COUNT; t++) {
        if (!test_use_isa(test_all_isas[t], what))
            continue;
        for (size_t c = 1; c <= 20; c++)
            for (size_t hw = 1; hw <= 40; hw++) {
                batch b;
                batch_init(&b, 2, c, hw, 1000 * c + hw, bce);
                check_layouts(&b, bce, per_image, what);
                batch_free(&b);
            }
    }
    dafl_set_isa(DAFL_ISA_AUTO);
}
END_TEST

/* Calls of many blocks, on 1 to 3 threads and every ISA: the same bits everywhere. */
START_TEST(many_blocks_threads_isas)
{
    const int bce = _i / 2, per_image = _i % 2;
    const char *what = kind_name(bce, per_image);
    batch b;
    batch_init(&b, 3, 17, 37 * 41, 77, bce); /* 77,367 elements: 76 blocks */
    float first_sum = 0.0f;
    int have_first = 0;
    for (int t = 0; t < TEST_ISA_COUNT; t++) {
        if (!test_use_isa(test_all_isas[t], what))
            continue;
        for (int threads = 1; threads <= 3; threads++) {
            ck_assert_int_eq(dafl_set_threads(threads), DAFL_OK);
            check_layouts(&b, bce, per_image, what);
            batch_permute(&b, 1, 0); /* NHWC */
            float sum;
            ck_assert_int_eq(call_loss(&b, bce, per_image, 1, b.xs, b.ys, DAFL_REDUCTION_MEAN,
                                       &sum, NULL, NULL),
                             DAFL_OK);
            if (!have_first) {
                first_sum = sum;
                have_first = 1;
            }
            TEST_REQUIRE(test_same_bits(sum, first_sum), "%s: %s %d threads: mean %a, first %a",
                         what, dafl_isa_name(test_all_isas[t]), threads, (double)sum,
                         (double)first_sum);
        }
    }
    dafl_set_threads(0);
    dafl_set_isa(DAFL_ISA_AUTO);
    batch_free(&b);
}
END_TEST

/* Half precision: bfloat16 input, float16 target and bfloat16 gradient in NHWC give the
 * NCHW call's bits. */
static uint16_t to_bf16_trunc(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return (uint16_t)(u >> 16);
}

START_TEST(half_precision_layouts)
{
    for (int bce = 0; bce <= 1; bce++)
        for (int t = 0; t < TEST_ISA_COUNT; t++) {
            if (!test_use_isa(test_all_isas[t], "half precision channel weights"))
                continue;
            const size_t n = 2, c = 5, hw = 37, count = n * c * hw;
            batch b;
            batch_init(&b, n, c, hw, 9, bce);
            uint16_t *xh = calloc(count, 2), *xhs = calloc(count, 2), *ga = calloc(count, 2),
                     *gb = calloc(count, 2);
            ck_assert(xh && xhs && ga && gb);
            for (size_t k = 0; k < n; k++)
                for (size_t ch = 0; ch < c; ch++)
                    for (size_t p = 0; p < hw; p++) {
                        size_t i = (k * c + ch) * hw + p;
                        xh[i] = to_bf16_trunc(b.x[i]);
                        xhs[layout_index(c, hw, 1, k, ch, p)] = xh[i];
                    }
            batch_permute(&b, 1, 0);
            float la, lb;
            dafl_status sa, sb;
            if (bce) {
                dafl_bce_params p = DAFL_BCE_PARAMS_INIT;
                p.input_dtype = DAFL_DTYPE_BFLOAT16;
                p.grad_dtype = DAFL_DTYPE_BFLOAT16;
                p.pos_weights = b.w;
                p.pos_weights_count = c;
                p.channel_stride = hw;
                sa = dafl_bce_with_logits((const float *)(void *)xh, b.y, count, &p, &la,
                                          (float *)(void *)ga, NULL);
                p.channel_stride = 1;
                sb = dafl_bce_with_logits((const float *)(void *)xhs, b.ys, count, &p, &lb,
                                          (float *)(void *)gb, NULL);
            } else {
                dafl_mse_params p = DAFL_MSE_PARAMS_INIT;
                p.input_dtype = DAFL_DTYPE_BFLOAT16;
                p.grad_dtype = DAFL_DTYPE_BFLOAT16;
                p.weights = b.w;
                p.weights_count = n * c;
                sa = dafl_mse((const float *)(void *)xh, b.y, n, c, hw, &p, &la,
                              (float *)(void *)ga, NULL);
                p.channel_stride = 1;
                sb = dafl_mse((const float *)(void *)xhs, b.ys, n, c, hw, &p, &lb,
                              (float *)(void *)gb, NULL);
            }
            ck_assert_int_eq(sa, DAFL_OK);
            ck_assert_int_eq(sb, DAFL_OK);
            ck_assert_msg(test_same_bits(la, lb), "half %s: loss %a vs %a", bce ? "bce" : "mse",
                          (double)lb, (double)la);
            for (size_t k = 0; k < n; k++)
                for (size_t ch = 0; ch < c; ch++)
                    for (size_t p = 0; p < hw; p++)
                        TEST_REQUIRE(ga[(k * c + ch) * hw + p] ==
                                         gb[layout_index(c, hw, 1, k, ch, p)],
                                     "half %s: gradient (%zu,%zu,%zu) differs", bce ? "bce" : "mse",
                                     k, ch, p);
            free(xh);
            free(xhs);
            free(ga);
            free(gb);
            batch_free(&b);
        }
    dafl_set_isa(DAFL_ISA_AUTO);
}
END_TEST

/* A per-class pos_weight array whose weights are all equal gives the bits of that
 * pos_weight as the one number. */
START_TEST(equal_pos_weights_match_the_number)
{
    batch b;
    batch_init(&b, 2, 7, 19, 5, 1);
    for (size_t i = 0; i < 7; i++)
        b.w[i] = 2.5f;
    dafl_bce_params one = DAFL_BCE_PARAMS_INIT;
    one.pos_weight = 2.5f;
    one.reduction = DAFL_REDUCTION_NONE;
    ck_assert_int_eq(dafl_bce_with_logits(b.x, b.y, b.count, &one, b.loss_a, b.grad_a, NULL),
                     DAFL_OK);
    dafl_bce_params per_class = DAFL_BCE_PARAMS_INIT;
    per_class.reduction = DAFL_REDUCTION_NONE;
    per_class.pos_weights = b.w;
    per_class.pos_weights_count = 7;
    per_class.channel_stride = 1;
    ck_assert_int_eq(
        dafl_bce_with_logits(b.x, b.y, b.count, &per_class, b.loss_b, b.grad_b, NULL), DAFL_OK);
    for (size_t i = 0; i < b.count; i++)
        TEST_REQUIRE(test_same_bits(b.loss_a[i], b.loss_b[i]) &&
                         test_same_bits(b.grad_a[i], b.grad_b[i]),
                     "element %zu differs", i);
    batch_free(&b);
}
END_TEST

/* ---- old callers and bad input ----------------------------------------------------- */

/* A struct_size that ends before the new members: NCHW and the one pos_weight, whatever
 * the caller's memory holds after it. */
START_TEST(old_struct_size_keeps_old_behaviour)
{
    batch b;
    batch_init(&b, 2, 3, 8, 3, 1);
    float la, lb;
    dafl_mse_params m = DAFL_MSE_PARAMS_INIT;
    m.weights = b.w;
    m.weights_count = 3;
    ck_assert_int_eq(dafl_mse(b.x, b.y, 2, 3, 8, &m, &la, b.grad_a, NULL), DAFL_OK);
    m.struct_size = offsetof(dafl_mse_params, channel_stride);
    m.channel_stride = 1; /* beyond struct_size: not read */
    ck_assert_int_eq(dafl_mse(b.x, b.y, 2, 3, 8, &m, &lb, b.grad_b, NULL), DAFL_OK);
    ck_assert(test_same_bits(la, lb));
    ck_assert(memcmp(b.grad_a, b.grad_b, b.count * sizeof(float)) == 0);

    dafl_bce_params p = DAFL_BCE_PARAMS_INIT;
    p.pos_weight = 3.0f;
    ck_assert_int_eq(dafl_bce_with_logits(b.x, b.y, b.count, &p, &la, b.grad_a, NULL), DAFL_OK);
    p.struct_size = offsetof(dafl_bce_params, pos_weights);
    p.pos_weights = b.w; /* beyond struct_size: not read (with it, pos_weight 3 is refused) */
    p.pos_weights_count = 3;
    p.channel_stride = 1;
    ck_assert_int_eq(dafl_bce_with_logits(b.x, b.y, b.count, &p, &lb, b.grad_b, NULL), DAFL_OK);
    ck_assert(test_same_bits(la, lb));
    ck_assert(memcmp(b.grad_a, b.grad_b, b.count * sizeof(float)) == 0);
    p.struct_size = sizeof p;
    ck_assert_int_eq(dafl_bce_with_logits(b.x, b.y, b.count, &p, &lb, b.grad_b, NULL),
                     DAFL_ERR_INVALID_PARAMETER);
    batch_free(&b);
}
END_TEST

/* Outputs filled with a pattern before a call that must fail: still the pattern after. */
#define SENTINEL 0x5a
static int untouched(const void *p, size_t bytes)
{
    const unsigned char *c = p;
    for (size_t i = 0; i < bytes; i++)
        if (c[i] != SENTINEL)
            return 0;
    return 1;
}

#define EXPECT_REFUSED(STATUS, CALL, WHY)                                                    \
    do {                                                                                     \
        memset(loss, SENTINEL, sizeof loss);                                                 \
        memset(grad, SENTINEL, sizeof grad);                                                 \
        memset(&stats, SENTINEL, sizeof stats);                                              \
        dafl_status st_ = (CALL);                                                            \
        ck_assert_msg(st_ == (STATUS), "%s: got %s, expected %s", WHY,                       \
                      dafl_status_string(st_), dafl_status_string(STATUS));                  \
        ck_assert_msg(untouched(loss, sizeof loss) && untouched(grad, sizeof grad) &&        \
                          untouched(&stats, sizeof stats),                                   \
                      "%s: an output was written", WHY);                                     \
    } while (0)

START_TEST(bad_counts_and_strides_are_refused)
{
    enum { N = 2, C = 3, HW = 6, COUNT = N * C * HW };
    float x[COUNT], y[COUNT], w[N * C], loss[COUNT], grad[COUNT];
    dafl_stats stats;
    for (int i = 0; i < COUNT; i++) {
        x[i] = 0.1f * (float)i - 1.0f;
        y[i] = (i % 3) == 0 ? 1.0f : 0.25f;
    }
    for (int i = 0; i < N * C; i++)
        w[i] = 1.0f + (float)i;

    dafl_mse_params m = DAFL_MSE_PARAMS_INIT;
    m.weights = w;
    m.weights_count = C;
    m.channel_stride = 4; /* does not divide hw = 6 */
    EXPECT_REFUSED(DAFL_ERR_INVALID_PARAMETER, dafl_mse(x, y, N, C, HW, &m, loss, grad, &stats),
                   "mse channel_stride 4 with hw 6");
    m.channel_stride = 12; /* larger than hw */
    EXPECT_REFUSED(DAFL_ERR_INVALID_PARAMETER, dafl_mse(x, y, N, C, HW, &m, loss, grad, &stats),
                   "mse channel_stride 12 with hw 6");
    m.weights = NULL; /* the stride is checked without weights too */
    EXPECT_REFUSED(DAFL_ERR_INVALID_PARAMETER, dafl_mse(x, y, N, C, HW, &m, loss, grad, &stats),
                   "mse channel_stride 12 without weights");
    m.weights = w;
    m.channel_stride = 3;
    m.weights_count = C + 1;
    EXPECT_REFUSED(DAFL_ERR_INVALID_PARAMETER, dafl_mse(x, y, N, C, HW, &m, loss, grad, &stats),
                   "mse weights_count c+1");
    m.weights_count = C;
    w[1] = NAN;
    EXPECT_REFUSED(DAFL_ERR_INVALID_PARAMETER, dafl_mse(x, y, N, C, HW, &m, loss, grad, &stats),
                   "mse NaN weight");
    w[1] = 2.0f;

    dafl_bce_params b = DAFL_BCE_PARAMS_INIT;
    b.pos_weights = w;
    b.pos_weights_count = C;
    b.channel_stride = 0;
    EXPECT_REFUSED(DAFL_ERR_INVALID_PARAMETER,
                   dafl_bce_with_logits(x, y, COUNT, &b, loss, grad, &stats),
                   "bce channel_stride 0");
    b.channel_stride = 1;
    b.pos_weight = 2.0f;
    EXPECT_REFUSED(DAFL_ERR_INVALID_PARAMETER,
                   dafl_bce_with_logits(x, y, COUNT, &b, loss, grad, &stats),
                   "bce pos_weights with pos_weight 2");
    b.pos_weight = 1.0f;
    b.pos_weights_count = 0;
    EXPECT_REFUSED(DAFL_ERR_INVALID_PARAMETER,
                   dafl_bce_with_logits(x, y, COUNT, &b, loss, grad, &stats),
                   "bce pos_weights_count 0");
    b.pos_weights_count = N * C;
    b.channels = 4; /* does not divide 6 */
    EXPECT_REFUSED(DAFL_ERR_INVALID_PARAMETER,
                   dafl_bce_with_logits(x, y, COUNT, &b, loss, grad, &stats),
                   "bce channels 4 with 6 pos_weights");
    b.channels = C;
    b.channel_stride = 4; /* 36 elements are not whole periods of 6 * 4 */
    EXPECT_REFUSED(DAFL_ERR_INVALID_PARAMETER,
                   dafl_bce_with_logits(x, y, COUNT, &b, loss, grad, &stats),
                   "bce count 36 with 6 pos_weights of stride 4");
    b.pos_weights_count = C;
    b.channels = 0;
    EXPECT_REFUSED(DAFL_ERR_INVALID_PARAMETER,
                   dafl_bce_with_logits(x, y, COUNT - 1, &b, loss, grad, &stats),
                   "bce count 35 with 3 classes");
    b.channel_stride = SIZE_MAX / 2;
    EXPECT_REFUSED(DAFL_ERR_SIZE_OVERFLOW,
                   dafl_bce_with_logits(x, y, COUNT, &b, loss, grad, &stats),
                   "bce pos_weights_count * channel_stride overflows");
    b.channel_stride = 1;
    w[2] = -1.0f;
    EXPECT_REFUSED(DAFL_ERR_INVALID_PARAMETER,
                   dafl_bce_with_logits(x, y, COUNT, &b, loss, grad, &stats),
                   "bce negative pos_weight");
    w[2] = INFINITY;
    EXPECT_REFUSED(DAFL_ERR_INVALID_PARAMETER,
                   dafl_bce_with_logits(x, y, COUNT, &b, loss, grad, &stats),
                   "bce infinite pos_weight");
    w[2] = 3.0f;
    /* and the same call with valid members works */
    ck_assert_int_eq(dafl_bce_with_logits(x, y, COUNT, &b, loss, grad, &stats), DAFL_OK);
    m.channel_stride = 1;
    ck_assert_int_eq(dafl_mse(x, y, N, C, HW, &m, loss, grad, &stats), DAFL_OK);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("channel_params");
    TCase *tc = tcase_create("channel_params");
    tcase_set_timeout(tc, 600);
    /* _i: 0 mse per channel, 1 mse per image and channel, 2 and 3 the same for bce */
    tcase_add_loop_test(tc, layouts_match_nchw_and_reference, 0, 4);
    tcase_add_loop_test(tc, many_blocks_threads_isas, 0, 4);
    tcase_add_test(tc, half_precision_layouts);
    tcase_add_test(tc, equal_pos_weights_match_the_number);
    tcase_add_test(tc, old_struct_size_keeps_old_behaviour);
    tcase_add_test(tc, bad_counts_and_strides_are_refused);
    suite_add_tcase(s, tc);
    return test_run_suite(s);
}
