/*
 * Softmax focal under every ISA this CPU runs, on the inputs that take its careful path:
 * +inf, -inf and NaN logits, finite logits whose difference overflows (+-3e38), pixels
 * whose logits are all -inf, next to ordinary pixels.  Three checks:
 *   - bit for bit against the scalar kernels: class counts around the vector widths and
 *     around the kernel's cache of 64 classes, pixel counts that leave partial vectors and
 *     straddle images, both layouts, ignored labels (-100 and 255), class weights,
 *     misaligned buffers, per-pixel and reduced results;
 *   - each pixel's bits do not depend on its neighbours: every pixel of a batch against the
 *     same pixel computed alone (a vector of pixels takes the careful path as a whole when
 *     one of them needs it, and that must give the ordinary pixels the same bits);
 *   - against the double-precision reference (tests/ref_losses.c): NaN where it is NaN,
 *     the same infinity, and otherwise within SPEC 5's 16 ULP (of the largest term for
 *     the gradient).
 * An ISA the CPU lacks is printed as SKIPPED, never counted as passed.
 */
#include "ref_losses.h"
#include "test_common.h"

#define ULP_BOUND 16.0
#define MAX_MISALIGN 3

/* A pixel that needs care: one of these patterns on some of its classes. */
enum { SPECIAL_POS_INF, SPECIAL_NEG_INF, SPECIAL_NAN, SPECIAL_HUGE, SPECIAL_ALL_NEG_INF,
       SPECIAL_KINDS };

typedef struct batch {
    size_t n, c, hw;
    int nhwc;
    float *x;       /* n*c*hw logits (+ MAX_MISALIGN floats of slack) */
    int32_t *label; /* n*hw */
} batch;

static size_t logit_index(const batch *b, size_t pixel, size_t k)
{
    if (b->nhwc)
        return pixel * b->c + k;
    return (pixel / b->hw) * b->c * b->hw + k * b->hw + pixel % b->hw;
}

/* Logits uniform in -30..30; every `special_every`-th pixel (from `special_first`) gets
 * special values, the kind taken in turn; one label in 9 is `ignore`. */
static void fill_batch(batch *b, uint64_t seed, size_t special_first, size_t special_every,
                       int32_t ignore)
{
    size_t pixels = b->n * b->hw;
    for (size_t i = 0; i < b->n * b->c * b->hw; i++)
        b->x[i] = test_uniform(&seed, -30.0f, 30.0f);
    for (size_t p = 0; p < pixels; p++) {
        b->label[p] = test_rand64(&seed) % 9 == 0 ? ignore : (int32_t)(test_rand64(&seed) % b->c);
        if (p < special_first || (p - special_first) % special_every != 0)
            continue;
        int kind = (int)((p / special_every) % SPECIAL_KINDS);
        for (size_t k = 0; k < b->c; k++) {
            float *v = &b->x[logit_index(b, p, k)];
            uint64_t r = test_rand64(&seed);
            switch (kind) {
            case SPECIAL_POS_INF: if (r % 4 == 0) *v = INFINITY; break;
            case SPECIAL_NEG_INF: if (r % 3 == 0) *v = -INFINITY; break;
            case SPECIAL_NAN: if (r % 5 == 0) *v = NAN; break;
            case SPECIAL_HUGE: if (r % 3 == 0) *v = r % 2 ? 3e38f : -3e38f; break;
            default: *v = -INFINITY; break;
            }
        }
        /* make sure the kind shows even with few classes */
        if (kind == SPECIAL_POS_INF)
            b->x[logit_index(b, p, (size_t)(test_rand64(&seed) % b->c))] = INFINITY;
        if (kind == SPECIAL_NAN)
            b->x[logit_index(b, p, (size_t)(test_rand64(&seed) % b->c))] = NAN;
    }
}

typedef struct outputs {
    float *loss, *grad, reduced;
    dafl_stats stats;
} outputs;

static dafl_softmax_focal_params params_for(const batch *b, float gamma, const float *weights,
                                            int32_t ignore, dafl_reduction red)
{
    dafl_softmax_focal_params p;
    dafl_softmax_focal_params_init(&p);
    p.layout = b->nhwc ? DAFL_LAYOUT_NHWC : DAFL_LAYOUT_NCHW;
    p.gamma = gamma;
    p.class_weights = weights;
    p.ignore_index = ignore;
    p.reduction = red;
    return p;
}

/* Per-pixel losses and gradients, then the mean with statistics. */
static void run_batch(const batch *b, const float *x, const int32_t *label, float gamma,
                      const float *weights, int32_t ignore, outputs *o)
{
    dafl_softmax_focal_params p = params_for(b, gamma, weights, ignore, DAFL_REDUCTION_NONE);
    ck_assert_int_eq(dafl_softmax_focal(x, label, b->n, b->c, b->hw, &p, o->loss, o->grad, NULL),
                     DAFL_OK);
    p.reduction = DAFL_REDUCTION_MEAN;
    ck_assert_int_eq(
        dafl_softmax_focal(x, label, b->n, b->c, b->hw, &p, &o->reduced, NULL, &o->stats),
        DAFL_OK);
}

START_TEST(softmax_special_values_bit_exact)
{
    const size_t classes[] = {1, 2, 3, 8, 16, 17, 19, 64, 65, 70};
    const size_t pixel_counts[] = {1, 2, 3, 7, 9, 15, 16, 17, 31, 33, 49};
    const float gammas[] = {0.0f, 2.0f, 1.7f};
    int compared = 0;
    for (size_t ci = 0; ci < sizeof classes / sizeof classes[0]; ci++)
        for (size_t pi = 0; pi < sizeof pixel_counts / sizeof pixel_counts[0]; pi++)
            for (int nhwc = 0; nhwc < 2; nhwc++)
                for (size_t gi = 0; gi < sizeof gammas / sizeof gammas[0]; gi++) {
                    batch b = {2, classes[ci], pixel_counts[pi], nhwc, NULL, NULL};
                    size_t pixels = b.n * b.hw, count = pixels * b.c;
                    size_t shift = (ci + pi + gi) % (MAX_MISALIGN + 1); /* floats */
                    int32_t ignore = gi == 1 ? 255 : -100;
                    /* each buffer shifted by 0..MAX_MISALIGN floats from malloc's alignment */
                    float *xs = malloc((count + MAX_MISALIGN) * sizeof(float));
                    int32_t *ls = malloc((pixels + MAX_MISALIGN) * sizeof(int32_t));
                    float *ref_l = malloc((pixels + MAX_MISALIGN) * sizeof(float));
                    float *got_l = malloc((pixels + MAX_MISALIGN) * sizeof(float));
                    float *ref_g = malloc((count + MAX_MISALIGN) * sizeof(float));
                    float *got_g = malloc((count + MAX_MISALIGN) * sizeof(float));
                    float *w = malloc(b.c * sizeof(float));
                    ck_assert(xs && ls && ref_l && got_l && ref_g && got_g && w);
                    b.x = xs + shift;
                    b.label = ls + (MAX_MISALIGN - shift);
                    outputs ref = {.loss = ref_l + (MAX_MISALIGN - shift), .grad = ref_g + shift};
                    outputs got = {.loss = got_l + shift, .grad = got_g + (MAX_MISALIGN - shift)};
                    uint64_t seed = 4242 + ci * 1000 + pi * 10 + gi;
                    fill_batch(&b, seed, (ci + gi) % 4, 3 + pi % 3, ignore);
                    for (size_t k = 0; k < b.c; k++)
                        w[k] = test_uniform(&seed, 0.1f, 3.0f);
                    const float *weights = gi == 2 ? w : NULL;
                    ck_assert_int_eq(dafl_set_isa(DAFL_ISA_SCALAR), DAFL_OK);
                    run_batch(&b, b.x, b.label, gammas[gi], weights, ignore, &ref);
                    for (int isa_i = 1; isa_i < TEST_ISA_COUNT; isa_i++) {
                        dafl_isa isa = test_all_isas[isa_i];
                        if (dafl_set_isa(isa) != DAFL_OK)
                            continue;
                        run_batch(&b, b.x, b.label, gammas[gi], weights, ignore, &got);
                        for (size_t i = 0; i < count; i++)
                            TEST_REQUIRE(test_same_bits(ref.grad[i], got.grad[i]),
                                         "%s c=%zu hw=%zu %s g=%.1f: gradient %zu: %a vs "
                                         "scalar %a",
                                         dafl_isa_name(isa), b.c, b.hw, nhwc ? "NHWC" : "NCHW",
                                         (double)gammas[gi], i, (double)got.grad[i],
                                         (double)ref.grad[i]);
                        for (size_t i = 0; i < pixels; i++)
                            TEST_REQUIRE(test_same_bits(ref.loss[i], got.loss[i]),
                                         "%s c=%zu hw=%zu %s g=%.1f: loss %zu: %a vs scalar %a",
                                         dafl_isa_name(isa), b.c, b.hw, nhwc ? "NHWC" : "NCHW",
                                         (double)gammas[gi], i, (double)got.loss[i],
                                         (double)ref.loss[i]);
                        TEST_REQUIRE(test_same_bits(ref.reduced, got.reduced) &&
                                         memcmp(&ref.stats, &got.stats, sizeof ref.stats) == 0,
                                     "%s c=%zu hw=%zu: reduced loss or statistics differ",
                                     dafl_isa_name(isa), b.c, b.hw);
                        compared++;
                    }
                    free(xs); free(ls); free(ref_l); free(got_l); free(ref_g); free(got_g);
                    free(w);
                }
    for (int isa_i = 1; isa_i < TEST_ISA_COUNT; isa_i++)
        if (!dafl_isa_available(test_all_isas[isa_i]))
            test_report_skip(test_all_isas[isa_i], "softmax special values",
                             "not supported by this CPU or build");
    printf("compared %-36s %6d runs against scalar\n", "softmax special values", compared);
    dafl_set_isa(DAFL_ISA_AUTO);
}
END_TEST

/* Every pixel of a batch (specials every 5th pixel) against itself alone, on every ISA. */
START_TEST(softmax_pixels_independent)
{
    const size_t classes[] = {3, 19, 70};
    int compared = 0;
    for (int isa_i = 0; isa_i < TEST_ISA_COUNT; isa_i++) {
        dafl_isa isa = test_all_isas[isa_i];
        if (!test_use_isa(isa, "softmax pixels independent"))
            continue;
        for (size_t ci = 0; ci < 3; ci++)
            for (int nhwc = 0; nhwc < 2; nhwc++) {
                batch b = {1, classes[ci], 37, nhwc, NULL, NULL};
                size_t count = b.c * b.hw;
                b.x = malloc(count * sizeof(float));
                b.label = malloc(b.hw * sizeof(int32_t));
                float *loss = malloc(b.hw * sizeof(float)), *grad = malloc(count * sizeof(float));
                float *x1 = malloc(b.c * sizeof(float)), *g1 = malloc(b.c * sizeof(float));
                ck_assert(b.x && b.label && loss && grad && x1 && g1);
                fill_batch(&b, 99 + ci, 2, 5, -100);
                dafl_softmax_focal_params p =
                    params_for(&b, 2.0f, NULL, -100, DAFL_REDUCTION_NONE);
                ck_assert_int_eq(dafl_softmax_focal(b.x, b.label, 1, b.c, b.hw, &p, loss, grad,
                                                    NULL),
                                 DAFL_OK);
                for (size_t i = 0; i < b.hw; i++) {
                    for (size_t k = 0; k < b.c; k++)
                        x1[k] = b.x[logit_index(&b, i, k)];
                    float l1;
                    ck_assert_int_eq(
                        dafl_softmax_focal(x1, &b.label[i], 1, b.c, 1, &p, &l1, g1, NULL), DAFL_OK);
                    TEST_REQUIRE(test_same_bits(l1, loss[i]),
                                 "%s c=%zu %s pixel %zu: loss %a alone, %a in the batch",
                                 dafl_isa_name(isa), b.c, nhwc ? "NHWC" : "NCHW", i, (double)l1,
                                 (double)loss[i]);
                    for (size_t k = 0; k < b.c; k++)
                        TEST_REQUIRE(test_same_bits(g1[k], grad[logit_index(&b, i, k)]),
                                     "%s c=%zu %s pixel %zu class %zu: gradient %a alone, %a in "
                                     "the batch",
                                     dafl_isa_name(isa), b.c, nhwc ? "NHWC" : "NCHW", i, k,
                                     (double)g1[k], (double)grad[logit_index(&b, i, k)]);
                }
                compared++;
                free(b.x); free(b.label); free(loss); free(grad); free(x1); free(g1);
            }
    }
    printf("compared %-36s %6d batches pixel by pixel\n", "softmax pixels independent", compared);
    dafl_set_isa(DAFL_ISA_AUTO);
}
END_TEST

/* |got - ref| in float spacings at max(|ref|, scale); ref_ulp_error where either side is
 * not finite (NaN against NaN and equal infinities count 0). */
static double ulps_at_scale(float got, double ref, double scale)
{
    if (!isfinite(ref) || !isfinite((double)got))
        return ref_ulp_error(got, ref);
    double at = fabs(ref) > scale ? fabs(ref) : scale;
    double spacing = 0x1p-149;
    if (at >= 0x1p-126) {
        int e;
        frexp(at, &e);
        spacing = ldexp(1.0, e - 24);
    }
    return fabs((double)got - ref) / spacing;
}

/* Whether the softmax of pixel i has a limit: not when all its logits are -inf, nor when
 * two or more are +inf (the reference gives NaN there; the kernels split the probability
 * equally among the largest logits, as for equal finite ones, and are compared with the
 * scalar kernels above). */
static int has_limit(const batch *b, size_t i)
{
    size_t pos_inf = 0, neg_inf = 0, nan = 0;
    for (size_t k = 0; k < b->c; k++) {
        float v = b->x[logit_index(b, i, k)];
        pos_inf += v == INFINITY;
        neg_inf += v == -INFINITY;
        nan += isnan(v);
    }
    return nan > 0 || (pos_inf < 2 && neg_inf < b->c);
}

START_TEST(softmax_special_values_reference)
{
    const size_t classes[] = {2, 5, 19, 70};
    const float gammas[] = {0.0f, 2.0f, 2.5f};
    double worst_loss = 0, worst_grad = 0;
    for (int isa_i = 0; isa_i < TEST_ISA_COUNT; isa_i++) {
        dafl_isa isa = test_all_isas[isa_i];
        if (!test_use_isa(isa, "softmax special values reference"))
            continue;
        for (size_t ci = 0; ci < 4; ci++)
            for (int nhwc = 0; nhwc < 2; nhwc++)
                for (size_t gi = 0; gi < 3; gi++) {
                    batch b = {2, classes[ci], 45, nhwc, NULL, NULL};
                    size_t pixels = b.n * b.hw, count = pixels * b.c;
                    b.x = malloc(count * sizeof(float));
                    b.label = malloc(pixels * sizeof(int32_t));
                    float *loss = malloc(pixels * sizeof(float));
                    float *grad = malloc(count * sizeof(float));
                    double *xd = malloc(b.c * sizeof(double)), *gd = malloc(b.c * sizeof(double));
                    double *sd = malloc(b.c * sizeof(double));
                    ck_assert(b.x && b.label && loss && grad && xd && gd && sd);
                    fill_batch(&b, 7 + ci * 10 + gi, 1, 2, -100);
                    dafl_softmax_focal_params p =
                        params_for(&b, gammas[gi], NULL, -100, DAFL_REDUCTION_NONE);
                    ck_assert_int_eq(
                        dafl_softmax_focal(b.x, b.label, b.n, b.c, b.hw, &p, loss, grad, NULL),
                        DAFL_OK);
                    for (size_t i = 0; i < pixels; i++) {
                        double ld = 0;
                        if (!has_limit(&b, i))
                            continue;
                        if (b.label[i] == -100) {
                            for (size_t k = 0; k < b.c; k++)
                                gd[k] = sd[k] = 0;
                        } else {
                            for (size_t k = 0; k < b.c; k++)
                                xd[k] = b.x[logit_index(&b, i, k)];
                            ref_softmax_focal(xd, (int)b.c, b.label[i], gammas[gi], 1.0, &ld, gd);
                            ref_softmax_focal_grad_scale(xd, (int)b.c, b.label[i], gammas[gi],
                                                         1.0, sd);
                        }
                        double le = ref_ulp_error(loss[i], ld);
                        TEST_REQUIRE(le <= ULP_BOUND,
                                     "%s c=%zu %s g=%.1f pixel %zu: loss %a, reference %a",
                                     dafl_isa_name(isa), b.c, nhwc ? "NHWC" : "NCHW",
                                     (double)gammas[gi], i, (double)loss[i], ld);
                        worst_loss = le > worst_loss ? le : worst_loss;
                        for (size_t k = 0; k < b.c; k++) {
                            float g = grad[logit_index(&b, i, k)];
                            double ge = ulps_at_scale(g, gd[k], sd[k]);
                            TEST_REQUIRE(ge <= ULP_BOUND,
                                         "%s c=%zu %s g=%.1f pixel %zu class %zu: gradient %a, "
                                         "reference %a",
                                         dafl_isa_name(isa), b.c, nhwc ? "NHWC" : "NCHW",
                                         (double)gammas[gi], i, k, (double)g, gd[k]);
                            worst_grad = ge > worst_grad ? ge : worst_grad;
                        }
                    }
                    free(b.x); free(b.label); free(loss); free(grad); free(xd); free(gd); free(sd);
                }
    }
    printf("softmax special values against the reference: max ULP loss %.2f, gradient %.2f "
           "(finite results)\n", worst_loss, worst_grad);
    dafl_set_isa(DAFL_ISA_AUTO);
}
END_TEST

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    Suite *s = suite_create("softmax_isa");
    TCase *tc = tcase_create("softmax_isa");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, softmax_special_values_bit_exact);
    tcase_add_test(tc, softmax_pixels_independent);
    tcase_add_test(tc, softmax_special_values_reference);
    suite_add_tcase(s, tc);
    return test_run_suite(s);
}
