/*
 * Semantics of the reductions, the normalizers, the special values and the partial
 * statistics: hand-computed cases, gradients of the *reduced* loss against central finite
 * differences of the double reference, and shards combined exactly.
 */
#include "exact_sum.h"
#include "ref_losses.h"
#include "test_common.h"

#define LN2 0.69314718055994530942

static int close_rel(double got, double want, double rel)
{
    return fabs(got - want) <= rel * fabs(want) + 1e-30;
}

/* ---- hand-computed values --------------------------------------------------------- */

START_TEST(hand_computed_penalty_focal)
{
    /* x = 0: p = q = 1/2, softplus(0) = ln 2.
     *   y = 1:   l = q^2 * ln2 = ln2 / 4
     *   y = 0.5: l = (1/2)^4 * p^2 * ln2 = ln2 / 64
     *   y = 0:   l = p^2 * ln2 = ln2 / 4
     * POSITIVES: one positive, so the loss is the sum, ln2 * (1/4 + 1/64 + 1/4).
     * Gradients (logits): y = 1: -q^2 (q + 2 p ln2) = -(1/4)(1/2 + ln2);
     *   y = 0.5: (1/16)(1/4)(1/2 + ln2); y = 0: (1/4)(1/2 + ln2). */
    const float x[3] = {0, 0, 0}, y[3] = {1, 0.5f, 0};
    float loss, grad[3];
    dafl_stats stats;
    ck_assert_int_eq(dafl_penalty_focal(x, y, 3, NULL, &loss, grad, &stats), DAFL_OK);
    ck_assert(close_rel(loss, LN2 * (0.25 + 1.0 / 64 + 0.25), 1e-6));
    ck_assert(close_rel(grad[0], -0.25 * (0.5 + LN2), 1e-6));
    ck_assert(close_rel(grad[1], (1.0 / 64) * (0.5 + LN2), 1e-6));
    ck_assert(close_rel(grad[2], 0.25 * (0.5 + LN2), 1e-6));
    ck_assert_uint_eq(dafl_stats_positives(&stats), 1);
    ck_assert_uint_eq(dafl_stats_elements(&stats), 3);
}
END_TEST

START_TEST(probabilities_log_eps)
{
    /* mmdetection's gaussian_focal_loss: c = -log(p + eps) for y == 1 and
     * -log(1 - p + eps) otherwise, the sums rounded to float as PyTorch rounds them.
     * p = 1 on a negative and p = 0 on a positive then cost -log(eps) instead of inf. */
    const float eps = 1e-12f;
    const float p[4] = {1.0f, 0.0f, 0.25f, 0.75f}, y[4] = {0.0f, 1.0f, 0.5f, 1.0f};
    dafl_penalty_focal_params prm;
    dafl_penalty_focal_params_init(&prm);
    prm.input_mode = DAFL_INPUT_PROBABILITIES;
    prm.log_eps = eps;
    prm.reduction = DAFL_REDUCTION_NONE;
    float loss[4], grad[4];
    ck_assert_int_eq(dafl_penalty_focal(p, y, 4, &prm, loss, grad, NULL), DAFL_OK);
    for (int i = 0; i < 4; i++) {
        int pos = y[i] == 1.0f;
        double m = pos ? 1.0 - p[i] : p[i];
        double o = (double)((pos ? p[i] : 1.0f - p[i]) + eps); /* float sum, as mmdet */
        double W = pos ? 1.0 : pow(1.0 - y[i], 4.0);
        double c = -log(o);
        double l = W * m * m * c;
        double g = (pos ? -W : W) * (2.0 * m * c + m * m / o); /* d/dp of W m^2 c */
        ck_assert_msg(close_rel(loss[i], l, 1e-6), "loss[%d] = %.9g, want %.9g", i, loss[i], l);
        ck_assert_msg(close_rel(grad[i], g, 1e-6), "grad[%d] = %.9g, want %.9g", i, grad[i], g);
    }
    ck_assert(isfinite(loss[0]) && loss[0] > 27.0f); /* -log(1e-12) = 27.63 */
    /* log_eps = 0 is the plain probabilities mode: inf where a log is of 0 */
    prm.log_eps = 0.0f;
    ck_assert_int_eq(dafl_penalty_focal(p, y, 4, &prm, loss, grad, NULL), DAFL_OK);
    ck_assert(isinf(loss[0]) && isinf(loss[1]));
}
END_TEST

START_TEST(hand_computed_bce_and_mse)
{
    /* BCE at x = 0 is ln 2 whatever y; its gradient is p - y = 1/2 - y. */
    const float x[4] = {0, 0, 0, 0}, y[4] = {0, 1, 0.25f, 0.5f};
    float loss, grad[4];
    ck_assert_int_eq(dafl_bce_with_logits(x, y, 4, NULL, &loss, grad, NULL), DAFL_OK);
    ck_assert(close_rel(loss, LN2, 1e-6));
    for (int i = 0; i < 4; i++) /* mean: / 4 */
        ck_assert(close_rel(grad[i], (0.5 - y[i]) / 4, 1e-6) || fabs(grad[i]) < 1e-9);
    /* MSE, mean over 2 elements: ((1-0)^2 + (3-1)^2) / 2 = 2.5; grad 2(x-y)/2 */
    const float xm[2] = {1, 3}, ym[2] = {0, 1};
    float gm[2];
    ck_assert_int_eq(dafl_mse(xm, ym, 1, 1, 2, NULL, &loss, gm, NULL), DAFL_OK);
    ck_assert(close_rel(loss, 2.5, 1e-7));
    ck_assert(close_rel(gm[0], 1.0, 1e-7) && close_rel(gm[1], 2.0, 1e-7));
}
END_TEST

START_TEST(sigmoid_focal_gamma0_is_bce)
{
    /* SPEC 2.2: gamma = 0, alpha < 0 is exactly BCE with logits, bit for bit. */
    uint64_t seed = 5;
    enum { N = 1000 };
    float x[N], y[N], l1[N], l2[N], g1[N], g2[N];
    for (int i = 0; i < N; i++) {
        x[i] = test_uniform(&seed, -30, 30);
        y[i] = i % 3 == 0 ? 1.0f : i % 3 == 1 ? 0.0f : test_uniform(&seed, 0, 1);
    }
    dafl_sigmoid_focal_params sp;
    dafl_sigmoid_focal_params_init(&sp);
    sp.gamma = 0;
    sp.alpha = -1;
    dafl_bce_params bp;
    dafl_bce_params_init(&bp);
    bp.reduction = DAFL_REDUCTION_NONE;
    ck_assert_int_eq(dafl_sigmoid_focal(x, y, N, &sp, l1, g1, NULL), DAFL_OK);
    ck_assert_int_eq(dafl_bce_with_logits(x, y, N, &bp, l2, g2, NULL), DAFL_OK);
    for (int i = 0; i < N; i++) {
        ck_assert(test_same_bits(l1[i], l2[i]));
        ck_assert(test_same_bits(g1[i], g2[i]));
    }
}
END_TEST

START_TEST(softmax_gamma0_is_cross_entropy)
{
    /* Two pixels, three classes, NCHW; labels 2 and ignored.
     * Pixel 0 logits (1, 2, 3): CE = -log softmax_2 = log(e^1+e^2+e^3) - 3. */
    const float x[6] = {1, 5, 2, 5, 3, 5}; /* class stride hw = 2 */
    const int32_t labels[2] = {2, -100};
    dafl_softmax_focal_params p;
    dafl_softmax_focal_params_init(&p);
    p.gamma = 0;
    float loss, grad[6];
    dafl_stats stats;
    ck_assert_int_eq(dafl_softmax_focal(x, labels, 1, 3, 2, &p, &loss, grad, &stats), DAFL_OK);
    double ce = log(exp(1.0) + exp(2.0) + exp(3.0)) - 3.0;
    ck_assert(close_rel(loss, ce, 1e-6));
    ck_assert_uint_eq(dafl_stats_elements(&stats), 1);
    /* ignored pixel: zero gradient in every class */
    ck_assert(grad[1] == 0.0f && grad[3] == 0.0f && grad[5] == 0.0f);
    double S = exp(1.0) + exp(2.0) + exp(3.0);
    ck_assert(close_rel(grad[0], exp(1.0) / S, 1e-6));
    ck_assert(close_rel(grad[4], exp(3.0) / S - 1.0, 1e-6));
}
END_TEST

/* ---- reductions ------------------------------------------------------------------- */

START_TEST(no_positives_gives_raw_sum)
{
    const float x[2] = {1, -1}, y[2] = {0, 0.5f};
    float loss_pos, loss_sum;
    dafl_penalty_focal_params p;
    dafl_penalty_focal_params_init(&p);
    ck_assert_int_eq(dafl_penalty_focal(x, y, 2, &p, &loss_pos, NULL, NULL), DAFL_OK);
    p.reduction = DAFL_REDUCTION_SUM;
    ck_assert_int_eq(dafl_penalty_focal(x, y, 2, &p, &loss_sum, NULL, NULL), DAFL_OK);
    ck_assert(test_same_bits(loss_pos, loss_sum));
}
END_TEST

START_TEST(caller_normalizer_and_grad_scale)
{
    uint64_t seed = 11;
    enum { N = 3000 };
    static float x[N], y[N], g_sum[N], g_norm[N];
    for (int i = 0; i < N; i++) {
        x[i] = test_uniform(&seed, -8, 8);
        y[i] = i % 50 == 0 ? 1.0f : test_uniform(&seed, 0, 1);
    }
    dafl_penalty_focal_params p;
    dafl_penalty_focal_params_init(&p);
    float sum, norm;
    p.reduction = DAFL_REDUCTION_SUM;
    ck_assert_int_eq(dafl_penalty_focal(x, y, N, &p, &sum, g_sum, NULL), DAFL_OK);
    p.reduction = DAFL_REDUCTION_NORMALIZER;
    p.normalizer = 8.0f; /* a power of two: division is exact */
    p.grad_scale = 0.5f;
    ck_assert_int_eq(dafl_penalty_focal(x, y, N, &p, &norm, g_norm, NULL), DAFL_OK);
    ck_assert(test_same_bits(norm, sum / 8.0f));
    for (int i = 0; i < N; i++)
        ck_assert(test_same_bits(g_norm[i], g_sum[i] * (0.5f / 8.0f)));
    /* POSITIVES equals NORMALIZER with the positive count */
    uint64_t npos;
    ck_assert_int_eq(dafl_count_positives(y, N, 0, &npos), DAFL_OK);
    ck_assert_uint_eq(npos, (N + 49) / 50);
    float by_pos, by_norm;
    p.reduction = DAFL_REDUCTION_POSITIVES;
    ck_assert_int_eq(dafl_penalty_focal(x, y, N, &p, &by_pos, g_sum, NULL), DAFL_OK);
    p.reduction = DAFL_REDUCTION_NORMALIZER;
    p.normalizer = (float)npos;
    ck_assert_int_eq(dafl_penalty_focal(x, y, N, &p, &by_norm, g_norm, NULL), DAFL_OK);
    ck_assert(test_same_bits(by_pos, by_norm));
    for (int i = 0; i < N; i++)
        ck_assert(test_same_bits(g_sum[i], g_norm[i]));
}
END_TEST

START_TEST(softmax_class_weights_mean)
{
    /* mean divides by the sum of w[label] over non-ignored pixels */
    const float x[8] = {0, 1, 2, 3, 3, 2, 1, 0}; /* c = 2, hw = 4 */
    const int32_t labels[4] = {0, 1, 255, 1};
    const float w[2] = {2.0f, 0.5f};
    dafl_softmax_focal_params p;
    dafl_softmax_focal_params_init(&p);
    p.gamma = 0;
    p.ignore_index = 255;
    p.class_weights = w;
    float mean, per[4];
    ck_assert_int_eq(dafl_softmax_focal(x, labels, 1, 2, 4, &p, &mean, NULL, NULL), DAFL_OK);
    p.reduction = DAFL_REDUCTION_NONE;
    ck_assert_int_eq(dafl_softmax_focal(x, labels, 1, 2, 4, &p, per, NULL, NULL), DAFL_OK);
    ck_assert(per[2] == 0.0f);
    double want = ((double)per[0] + per[1] + per[3]) / (2.0 + 0.5 + 0.5);
    ck_assert(close_rel(mean, want, 1e-6));
    /* per-pixel: w[t] * CE */
    double ce0 = log(exp(0.0) + exp(3.0)) - 0.0;
    ck_assert(close_rel(per[0], 2.0 * ce0, 1e-6));
}
END_TEST

/* ---- gradients of the reduced loss vs finite differences -------------------------- */

/* Reduced penalty-focal loss in double from the reference: sum / max(npos, 1). */
static double reduced_pf(const double *x, const float *y, int n, double alpha, double beta)
{
    double sum = 0;
    int npos = 0;
    for (int i = 0; i < n; i++) {
        sum += ref_penalty_focal(x[i], y[i], alpha, beta, 1, 1, REF_MODE_LOGITS, 1e-4).loss;
        npos += y[i] == 1.0f;
    }
    return sum / (npos ? npos : 1);
}

START_TEST(reduced_gradient_finite_differences)
{
    enum { N = 40 };
    uint64_t seed = 17;
    float x[N], y[N], grad[N];
    double xd[N];
    for (int i = 0; i < N; i++) {
        x[i] = test_uniform(&seed, -6, 6);
        y[i] = i % 7 == 0 ? 1.0f : test_uniform(&seed, 0, 0.95f);
        xd[i] = x[i];
    }
    dafl_penalty_focal_params p;
    dafl_penalty_focal_params_init(&p);
    p.alpha = 2.0f;
    p.beta = 4.0f;
    float loss;
    ck_assert_int_eq(dafl_penalty_focal(x, y, N, &p, &loss, grad, NULL), DAFL_OK);
    ck_assert(close_rel(loss, reduced_pf(xd, y, N, 2, 4), 1e-6));
    for (int i = 0; i < N; i++) {
        double h = 1e-5 * fmax(1.0, fabs(xd[i])), keep = xd[i];
        xd[i] = keep + h;
        double up = reduced_pf(xd, y, N, 2, 4);
        xd[i] = keep - h;
        double down = reduced_pf(xd, y, N, 2, 4);
        xd[i] = keep;
        double fd = (up - down) / (2 * h);
        ck_assert_msg(fabs(grad[i] - fd) <= 1e-5 * fabs(fd) + 1e-9, "i=%d grad %g fd %g", i,
                      (double)grad[i], fd);
    }
}
END_TEST

/* ---- special values --------------------------------------------------------------- */

START_TEST(clamped_logits_zero_gradient_beyond_clamp)
{
    /* sigmoid(-12) ~ 6e-6 < 1e-4 and sigmoid(12) > 1 - 1e-4: clamped, zero gradient.
     * The loss uses -log of the clamp bounds. */
    const float x[4] = {-12, 12, -12, 0.5f}, y[4] = {1, 0, 0, 0};
    float loss[4], grad[4];
    dafl_penalty_focal_params p;
    dafl_penalty_focal_params_init(&p);
    p.input_mode = DAFL_INPUT_CLAMPED_LOGITS;
    p.reduction = DAFL_REDUCTION_NONE;
    ck_assert_int_eq(dafl_penalty_focal(x, y, 4, &p, loss, grad, NULL), DAFL_OK);
    ck_assert(grad[0] == 0.0f && grad[1] == 0.0f && grad[2] == 0.0f);
    ck_assert(grad[3] != 0.0f);
    double eps = 1e-4;
    ck_assert(close_rel(loss[0], pow(1 - eps, 2) * -log(eps), 1e-6));
    ck_assert(close_rel(loss[1], pow(1 - eps, 2) * -log(eps), 1e-6));
    ck_assert(close_rel(loss[2], eps * eps * -log1p(-eps), 1e-5));
}
END_TEST

START_TEST(infinite_logits_take_their_limits)
{
    const float x[6] = {INFINITY, INFINITY, -INFINITY, -INFINITY, NAN, INFINITY};
    const float y[6] = {0.5f, 1.0f, 0.0f, 1.0f, 0.0f, 0.0f};
    float loss[6], grad[6];
    dafl_penalty_focal_params p;
    dafl_penalty_focal_params_init(&p);
    p.reduction = DAFL_REDUCTION_NONE;
    ck_assert_int_eq(dafl_penalty_focal(x, y, 6, &p, loss, grad, NULL), DAFL_OK);
    /* x = +inf, y < 1: infinite loss, finite gradient (1-y)^beta */
    ck_assert(isinf(loss[0]) && grad[0] == 0.0625f);
    ck_assert(loss[1] == 0.0f && grad[1] == 0.0f);      /* +inf, y = 1: costs nothing */
    ck_assert(loss[2] == 0.0f && grad[2] == 0.0f);      /* -inf, y = 0: costs nothing */
    ck_assert(isinf(loss[3]) && grad[3] == -1.0f);      /* -inf, y = 1: limit -pos_weight */
    ck_assert(isnan(loss[4]) && isnan(grad[4]));        /* NaN in, NaN out */
    ck_assert(isinf(loss[5]) && grad[5] == 1.0f);
    /* NaN anywhere makes the reduced loss NaN, without a crash */
    float reduced;
    p.reduction = DAFL_REDUCTION_SUM;
    ck_assert_int_eq(dafl_penalty_focal(x, y, 6, &p, &reduced, NULL, NULL), DAFL_OK);
    ck_assert(isnan(reduced));
    /* sigmoid focal and BCE at +-inf: finite gradients */
    dafl_sigmoid_focal_params sp;
    dafl_sigmoid_focal_params_init(&sp);
    ck_assert_int_eq(dafl_sigmoid_focal(x, y, 4, &sp, loss, grad, NULL), DAFL_OK);
    for (int i = 0; i < 4; i++)
        ck_assert(isfinite(grad[i]));
    dafl_bce_params bp;
    dafl_bce_params_init(&bp);
    bp.reduction = DAFL_REDUCTION_NONE;
    ck_assert_int_eq(dafl_bce_with_logits(x, y, 4, &bp, loss, grad, NULL), DAFL_OK);
    ck_assert(grad[0] == 0.5f && grad[1] == 0.0f && grad[2] == 0.0f && grad[3] == -1.0f);
}
END_TEST

START_TEST(softmax_infinite_logit)
{
    /* One +inf logit takes all the probability: on the target, zero loss and gradient. */
    const float x[3] = {INFINITY, 1.0f, -2.0f}; /* NHWC, one pixel */
    const int32_t t = 0;
    dafl_softmax_focal_params p;
    dafl_softmax_focal_params_init(&p);
    p.layout = DAFL_LAYOUT_NHWC;
    float loss, grad[3];
    ck_assert_int_eq(dafl_softmax_focal(x, &t, 1, 3, 1, &p, &loss, grad, NULL), DAFL_OK);
    ck_assert(loss == 0.0f);
    for (int k = 0; k < 3; k++)
        ck_assert(grad[k] == 0.0f);
}
END_TEST

/* ---- partial statistics ----------------------------------------------------------- */

START_TEST(shards_combine_exactly)
{
    /* An NCHW batch of 8 x 3 x 32 x 32 = 24576 elements (c*h*w = 3072 = 3 blocks): split
     * along N into shards of whole images, combined in scrambled order, then reduced. */
    enum { N = 8, PER_IMAGE = 3 * 32 * 32, TOTAL = N * PER_IMAGE };
    static float x[TOTAL], y[TOTAL];
    uint64_t seed = 23;
    for (int i = 0; i < TOTAL; i++) {
        x[i] = test_uniform(&seed, -10, 10);
        y[i] = i % 101 == 0 ? 1.0f : test_uniform(&seed, 0, 1);
    }
    dafl_penalty_focal_params p;
    dafl_penalty_focal_params_init(&p);
    float whole_loss;
    dafl_stats whole;
    ck_assert_int_eq(dafl_penalty_focal(x, y, TOTAL, &p, &whole_loss, NULL, &whole), DAFL_OK);

    const int order[N] = {5, 2, 7, 0, 3, 6, 1, 4};
    dafl_stats combined;
    dafl_stats_init(&combined);
    for (int k = 0; k < N; k++) {
        dafl_stats shard;
        size_t at = (size_t)order[k] * PER_IMAGE;
        ck_assert_int_eq(dafl_penalty_focal(x + at, y + at, PER_IMAGE, &p, NULL, NULL, &shard),
                         DAFL_OK);
        ck_assert_int_eq(dafl_stats_combine(&combined, &shard), DAFL_OK);
    }
    float combined_loss;
    ck_assert_int_eq(dafl_stats_reduce(&combined, DAFL_REDUCTION_POSITIVES, 1.0f,
                                       &combined_loss), DAFL_OK);
    ck_assert(test_same_bits(whole_loss, combined_loss));
    ck_assert(dafl_stats_loss_sum(&whole) == dafl_stats_loss_sum(&combined));
    ck_assert_uint_eq(dafl_stats_positives(&whole), dafl_stats_positives(&combined));
    ck_assert_uint_eq(dafl_stats_elements(&whole), dafl_stats_elements(&combined));
    ck_assert(dafl_stats_weight_sum(&whole) == dafl_stats_weight_sum(&combined));
}
END_TEST

START_TEST(exact_accumulator_is_exact)
{
    /* 2^100 + 1 - 2^100 is 1 exactly (a double sum gives 0); the order never matters. */
    const double values[4] = {0x1p100, 1.0, -0x1p100, 0x1p-149};
    const int orders[3][4] = {{0, 1, 2, 3}, {2, 3, 0, 1}, {3, 2, 1, 0}};
    for (int o = 0; o < 3; o++) {
        dafl_xacc acc;
        dafl_xacc_clear(&acc);
        for (int i = 0; i < 4; i++)
            dafl_xacc_add_double(&acc, values[orders[o][i]]);
        ck_assert(dafl_xacc_to_double(&acc) == 1.0 + 0x1p-149);
    }
    /* w * count is exact; correct rounding to double at the end (ties to even) */
    dafl_xacc acc;
    dafl_xacc_clear(&acc);
    dafl_xacc_add_float_times(&acc, 0.1f, UINT64_C(3000000000));
    ck_assert(dafl_xacc_to_double(&acc) == (double)0.1f * 3000000000.0);
    dafl_xacc_add_double(&acc, -INFINITY);
    ck_assert(dafl_xacc_to_double(&acc) == -INFINITY);
    dafl_xacc_add_double(&acc, INFINITY);
    ck_assert(isnan(dafl_xacc_to_double(&acc)));
    /* negative totals */
    dafl_xacc_clear(&acc);
    dafl_xacc_add_double(&acc, -3.25);
    dafl_xacc_add_double(&acc, 0x1p-140);
    ck_assert(dafl_xacc_to_double(&acc) == -3.25 + 0x1p-140);
}
END_TEST

START_TEST(exact_sums_saturate_past_their_range)
{
    /* Statistics combined with themselves k times hold 2^k times the original sums:
     * exactly while below 2^235, +inf from there on for good (the infinity count must not
     * wrap back to 0); the positive and element counts stop at UINT64_MAX. */
    const float x[3] = {0.3f, -1.2f, 2.5f}, y[3] = {1.0f, 0.25f, 1.0f};
    dafl_stats s;
    ck_assert_int_eq(dafl_penalty_focal(x, y, 3, NULL, NULL, NULL, &s), DAFL_OK);
    const double loss0 = dafl_stats_loss_sum(&s);
    ck_assert(loss0 > 0.0 && dafl_stats_positives(&s) == 2 && dafl_stats_elements(&s) == 3);
    for (int k = 1; k <= 400; k++) {
        ck_assert_int_eq(dafl_stats_combine(&s, &s), DAFL_OK);
        const double loss = ldexp(loss0, k), weight = ldexp(3.0, k);
        const double want_loss = loss < 0x1p235 ? loss : INFINITY;
        const double want_weight = weight < 0x1p235 ? weight : INFINITY;
        const uint64_t want_positives = k < 63 ? UINT64_C(2) << k : UINT64_MAX;
        const uint64_t want_elements = k < 63 ? UINT64_C(3) << k : UINT64_MAX;
        TEST_REQUIRE(dafl_stats_loss_sum(&s) == want_loss,
                     "k %d: loss sum %.6g, want %.6g", k, dafl_stats_loss_sum(&s), want_loss);
        TEST_REQUIRE(dafl_stats_weight_sum(&s) == want_weight, "k %d: weight sum %.6g, want %.6g",
                     k, dafl_stats_weight_sum(&s), want_weight);
        TEST_REQUIRE(dafl_stats_positives(&s) == want_positives, "k %d: positives %llu", k,
                     (unsigned long long)dafl_stats_positives(&s));
        TEST_REQUIRE(dafl_stats_elements(&s) == want_elements, "k %d: elements %llu", k,
                     (unsigned long long)dafl_stats_elements(&s));
    }
    float reduced;
    ck_assert_int_eq(dafl_stats_reduce(&s, DAFL_REDUCTION_POSITIVES, 1.0f, &reduced), DAFL_OK);
    ck_assert(isinf(reduced) && reduced > 0);

    /* The range is [-2^235, 2^235): both ends, and a total that leaves it on the way. */
    dafl_xacc acc;
    dafl_xacc_clear(&acc);
    for (int i = 0; i < 2; i++)
        dafl_xacc_add_double(&acc, -0x1p234);
    ck_assert(dafl_xacc_to_double(&acc) == -0x1p235);
    dafl_xacc_add_double(&acc, 0x1p-149);
    ck_assert(dafl_xacc_to_double(&acc) == -0x1p235); /* -2^235 + 2^-149 rounds back */
    dafl_xacc_add_double(&acc, -0x1p-148);
    ck_assert(dafl_xacc_to_double(&acc) == -INFINITY); /* -2^235 - 2^-149: out */
    dafl_xacc_add_double(&acc, 0x1p234);
    ck_assert(dafl_xacc_to_double(&acc) == -INFINITY); /* and stays out */
    dafl_xacc high;
    dafl_xacc_clear(&high);
    dafl_xacc_add_double(&high, 0x1p234);
    dafl_xacc_add_double(&high, 0x1p234 - 0x1p182);
    ck_assert(dafl_xacc_to_double(&high) == 0x1p235 - 0x1p182); /* the largest doubles */
    dafl_xacc_add_double(&high, -0x1p-149);
    dafl_xacc_add_double(&high, 0x1p182);
    ck_assert(dafl_xacc_to_double(&high) == 0x1p235); /* 2^235 - 2^-149, rounded */
    dafl_xacc_add_double(&high, 0x1p-149);
    ck_assert(dafl_xacc_to_double(&high) == INFINITY);
    dafl_xacc_add(&acc, &high); /* out of range on both sides: inf - inf */
    ck_assert(isnan(dafl_xacc_to_double(&acc)));
}
END_TEST

/* ---- numeric edge cases, on every ISA --------------------------------------------- */

START_TEST(tiny_probability_gradient_is_finite)
{
    /* Penalty focal on probabilities, y = 1, p below 1/FLT_MAX: dl/dp ~ -1/p exceeds the
     * float range, but times grad_scale 0.5 it does not (-1.7241e38 at p = 2.9e-39).
     * Compared with the double reference times the scale; grad_scale 0 gives 0. */
    const float x[5] = {2.9e-39f, 1e-45f, 0x1p-127f, 2.9e-38f, 0.25f};
    const float y[5] = {1.0f, 1.0f, 1.0f, 1.0f, 1.0f};
    const float scales[4] = {0.5f, 0.0f, 1e-30f, -2.0f};
    for (int i = 0; i < TEST_ISA_COUNT; i++) {
        if (!test_use_isa(test_all_isas[i], "tiny probability gradient"))
            continue;
        for (int sc = 0; sc < 4; sc++) {
            dafl_penalty_focal_params p;
            dafl_penalty_focal_params_init(&p);
            p.input_mode = DAFL_INPUT_PROBABILITIES;
            p.reduction = DAFL_REDUCTION_SUM;
            p.grad_scale = scales[sc];
            float loss, grad[5];
            ck_assert_int_eq(dafl_penalty_focal(x, y, 5, &p, &loss, grad, NULL), DAFL_OK);
            for (int k = 0; k < 5; k++) {
                ref_value ref = ref_penalty_focal(x[k], y[k], 2.0, 4.0, 1.0, 1.0,
                                                  REF_MODE_PROBABILITIES, 0.0);
                double want = ref.grad * scales[sc];
                double err = ref_ulp_error(grad[k], want);
                TEST_REQUIRE(err <= 4.0, "%s: p %g, grad_scale %g: grad %.9g, want %.9g "
                             "(%.1f ULP)", dafl_isa_name(dafl_active_isa()), (double)x[k],
                             (double)scales[sc], (double)grad[k], want, err);
            }
        }
        /* the value the issue quotes */
        dafl_penalty_focal_params p;
        dafl_penalty_focal_params_init(&p);
        p.input_mode = DAFL_INPUT_PROBABILITIES;
        p.reduction = DAFL_REDUCTION_SUM;
        p.grad_scale = 0.5f;
        float loss, g;
        ck_assert_int_eq(dafl_penalty_focal(x, y, 1, &p, &loss, &g, NULL), DAFL_OK);
        ck_assert_float_eq_tol(g, -1.7241e38f, 0.0001e38f);
    }
    ck_assert_int_eq(dafl_set_isa(DAFL_ISA_AUTO), DAFL_OK);
}
END_TEST

START_TEST(softmax_focal_infinite_logit_limits)
{
    /* gamma > 0 with a +inf logit off the label, or -inf on the label: p_t = 0 and
     * s = -inf, and p_t * s -> 0, so the gradient is the finite limit (the gamma = 0
     * one), never NaN.  [0, 15, -88, +inf], label 1: limit [0, -1, 0, 1]. */
    const float a[4] = {0.0f, 15.0f, -88.0f, INFINITY};
    const float b[3] = {1.0f, -INFINITY, 2.0f}; /* label 1 */
    const float gammas[3] = {2.0f, 1.5f, 0.7f};
    for (int i = 0; i < TEST_ISA_COUNT; i++) {
        if (!test_use_isa(test_all_isas[i], "softmax focal infinite logits"))
            continue;
        for (int gi = 0; gi < 3; gi++) {
            for (int layout = 0; layout < 2; layout++) {
                dafl_softmax_focal_params p;
                dafl_softmax_focal_params_init(&p);
                p.gamma = gammas[gi];
                p.layout = (dafl_layout)layout; /* one pixel: both layouts alike */
                p.reduction = DAFL_REDUCTION_SUM;
                const int32_t label = 1;
                float loss, grad[4];
                ck_assert_int_eq(dafl_softmax_focal(a, &label, 1, 4, 1, &p, &loss, grad, NULL),
                                 DAFL_OK);
                ck_assert(isinf(loss) && loss > 0);
                const float limit[4] = {0.0f, -1.0f, 0.0f, 1.0f};
                for (int k = 0; k < 4; k++)
                    TEST_REQUIRE(grad[k] == limit[k], "%s gamma %g: grad[%d] = %g, want %g",
                                 dafl_isa_name(dafl_active_isa()), (double)gammas[gi], k,
                                 (double)grad[k], (double)limit[k]);
                ck_assert_int_eq(dafl_softmax_focal(b, &label, 1, 3, 1, &p, &loss, grad, NULL),
                                 DAFL_OK);
                ck_assert(isinf(loss) && loss > 0);
                /* the limit: (delta - p_k) * (-1), p from the finite logits, in double */
                const double e0 = exp(1.0), e2 = exp(2.0);
                const double want[3] = {e0 / (e0 + e2), -1.0, e2 / (e0 + e2)};
                for (int k = 0; k < 3; k++) {
                    double err = ref_ulp_error(grad[k], want[k]);
                    TEST_REQUIRE(err <= 4.0, "%s gamma %g, -inf on the label: grad[%d] = %.9g, "
                                 "want %.9g", dafl_isa_name(dafl_active_isa()),
                                 (double)gammas[gi], k, (double)grad[k], want[k]);
                }
            }
        }
    }
    ck_assert_int_eq(dafl_set_isa(DAFL_ISA_AUTO), DAFL_OK);
}
END_TEST

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    Suite *s = suite_create("semantics");
    TCase *tc = tcase_create("semantics");
    tcase_add_test(tc, hand_computed_penalty_focal);
    tcase_add_test(tc, probabilities_log_eps);
    tcase_add_test(tc, hand_computed_bce_and_mse);
    tcase_add_test(tc, sigmoid_focal_gamma0_is_bce);
    tcase_add_test(tc, softmax_gamma0_is_cross_entropy);
    tcase_add_test(tc, no_positives_gives_raw_sum);
    tcase_add_test(tc, caller_normalizer_and_grad_scale);
    tcase_add_test(tc, softmax_class_weights_mean);
    tcase_add_test(tc, reduced_gradient_finite_differences);
    tcase_add_test(tc, clamped_logits_zero_gradient_beyond_clamp);
    tcase_add_test(tc, infinite_logits_take_their_limits);
    tcase_add_test(tc, softmax_infinite_logit);
    tcase_add_test(tc, shards_combine_exactly);
    tcase_add_test(tc, exact_accumulator_is_exact);
    tcase_add_test(tc, exact_sums_saturate_past_their_range);
    tcase_add_test(tc, tiny_probability_gradient_is_finite);
    tcase_add_test(tc, softmax_focal_infinite_logit_limits);
    suite_add_tcase(s, tc);
    return test_run_suite(s);
}
