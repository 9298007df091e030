/*
 * Accuracy of every loss and gradient against the independent double-precision reference
 * (tests/ref_losses.c), over the whole input domain of SPEC 5, on every ISA this machine
 * runs.  Prints the measured maximum ULP error per loss; fails above the SPEC 5 bound:
 * 16 ULP of the exact value, or of the largest term where the formula itself cancels
 * (sigmoid focal with soft targets, BCE with soft targets, softmax focal gradients).
 */
#include "ref_losses.h"
#include "test_common.h"

#define ULP_BOUND 16.0

/* Spacing of float32 numbers at |v| (2^-149 in the subnormal range). */
static double float_spacing(double v)
{
    v = fabs(v);
    if (v < 0x1p-126)
        return 0x1p-149;
    int e;
    frexp(v, &e); /* v in [2^(e-1), 2^e) */
    return ldexp(1.0, e - 1 - 23);
}

/* ULP error, measured at max(|ref|, scale) when a formula's terms may cancel. */
static double error_at_scale(float got, double ref, double scale)
{
    if (!isfinite(ref) || !isfinite((double)got) || isnan(scale))
        return ref_ulp_error(got, ref);
    double at = fabs(ref) > scale ? fabs(ref) : scale;
    return fabs((double)got - ref) / float_spacing(at);
}

/* The sweep: logits from -100 to 100 densely, plus the special values of SPEC 5. */
static size_t make_logits(float *x)
{
    size_t n = 0;
    for (int i = -4000; i <= 4000; i++)
        x[n++] = (float)i * 0.025f;
    const float specials[] = {INFINITY, -INFINITY, NAN, 0.0f, -0.0f, 1e-30f, -1e-30f, 1e-8f,
                              -1e-8f, 1e-3f, -1e-3f, 9.2102404f, -9.2102404f, 9.2103404f,
                              -9.2103404f, 87.5f, -87.5f, 103.9f, -103.9f, 104.0f, -104.0f};
    for (size_t i = 0; i < sizeof specials / sizeof specials[0]; i++)
        x[n++] = specials[i];
    return n;
}
#define MAX_LOGITS 8100

static const float hard_targets[] = {0.0f, 1.0f};
static const float all_targets[] = {0.0f, 1.0f, 1e-7f, 0.01f, 0.1f, 0.25f, 0.5f, 0.7f,
                                    0.9f, 0.99f, 0.999f, 0.99999994f};
#define N_ALL_TARGETS (sizeof all_targets / sizeof all_targets[0])

typedef struct max_error {
    double loss, grad;
} max_error;

static void note(max_error *m, double loss_err, double grad_err)
{
    if (loss_err > m->loss)
        m->loss = loss_err;
    if (grad_err > m->grad)
        m->grad = grad_err;
}

static void report(const char *what, dafl_isa isa, max_error m)
{
    printf("accuracy %-7s %-44s max ULP: loss %6.2f  gradient %6.2f\n", dafl_isa_name(isa),
           what, m.loss, m.grad);
}

enum loss_kind { PENALTY_FOCAL, SIGMOID_FOCAL, BCE, MSE };

typedef struct sweep {
    const char *name;
    enum loss_kind kind;
    float a, b, c, d; /* loss parameters, see run_loss */
    int mode;         /* penalty focal input mode */
    const float *targets;
    size_t n_targets;
    int scaled_grad; /* measure the gradient at its largest term */
} sweep;

/* One call with REDUCTION_NONE: per-element loss and gradient. */
static void run_loss(const sweep *s, const float *x, const float *y, size_t n, float *loss,
                     float *grad)
{
    dafl_status st = DAFL_ERR_INVALID_ENUM;
    switch (s->kind) {
    case PENALTY_FOCAL: {
        dafl_penalty_focal_params p;
        dafl_penalty_focal_params_init(&p);
        p.alpha = s->a;
        p.beta = s->b;
        p.pos_weight = s->c;
        p.neg_weight = s->d;
        p.input_mode = (dafl_input_mode)s->mode;
        p.reduction = DAFL_REDUCTION_NONE;
        st = dafl_penalty_focal(x, y, n, &p, loss, grad, NULL);
        break;
    }
    case SIGMOID_FOCAL: {
        dafl_sigmoid_focal_params p;
        dafl_sigmoid_focal_params_init(&p);
        p.gamma = s->a;
        p.alpha = s->b;
        st = dafl_sigmoid_focal(x, y, n, &p, loss, grad, NULL);
        break;
    }
    case BCE: {
        dafl_bce_params p;
        dafl_bce_params_init(&p);
        p.pos_weight = s->a;
        p.reduction = DAFL_REDUCTION_NONE;
        st = dafl_bce_with_logits(x, y, n, &p, loss, grad, NULL);
        break;
    }
    case MSE: {
        dafl_mse_params p;
        dafl_mse_params_init(&p);
        float w = s->a;
        p.weights = &w;
        p.weights_count = 1;
        p.reduction = DAFL_REDUCTION_NONE;
        st = dafl_mse(x, y, 1, 1, n, &p, loss, grad, NULL);
        break;
    }
    }
    ck_assert_msg(st == DAFL_OK, "%s: %s", s->name, dafl_status_string(st));
}

/* For soft targets p - y itself is a difference of two terms, (1-y)*p and y*q, that
 * cancel near p == y: the "largest term" of SPEC 5 is then a_t * m^gamma * max of those. */
static double sigmoid_focal_inner_scale(double x, double y, double gamma, double alpha)
{
    double p = 1.0 / (1.0 + exp(-x)), q = 1.0 / (1.0 + exp(x));
    double m = y * q + (1.0 - y) * p;
    double a_t = alpha < 0 ? 1.0 : alpha * y + (1.0 - alpha) * (1.0 - y);
    double t1 = (1.0 - y) * p, t2 = y * q;
    return fabs(a_t * pow(m, gamma)) * (t1 > t2 ? t1 : t2);
}

static void reference(const sweep *s, float x, float y, ref_value *r, double *grad_scale)
{
    *grad_scale = 0.0;
    switch (s->kind) {
    case PENALTY_FOCAL:
        *r = ref_penalty_focal(x, y, s->a, s->b, s->c, s->d, s->mode, 1e-4);
        break;
    case SIGMOID_FOCAL:
        *r = ref_sigmoid_focal(x, y, s->a, s->b);
        if (s->scaled_grad) {
            double inner = sigmoid_focal_inner_scale(x, y, s->a, s->b);
            *grad_scale = ref_sigmoid_focal_grad_scale(x, y, s->a, s->b);
            *grad_scale = inner > *grad_scale ? inner : *grad_scale;
        }
        break;
    case BCE:
        *r = ref_bce(x, y, s->a);
        if (s->scaled_grad)
            *grad_scale = ref_bce_grad_scale(x, y, s->a);
        break;
    case MSE:
        *r = ref_mse(x, y, s->a);
        break;
    }
}

/* The probabilities mode sweeps p over (0, 1) instead of logits. */
static size_t make_probabilities(float *x)
{
    size_t n = 0;
    for (int i = 1; i < 4000; i++)
        x[n++] = (float)i / 4000.0f;
    for (int e = 1; e <= 40; e++) {
        x[n++] = ldexpf(1.0f, -e * 3);
        x[n++] = 1.0f - ldexpf(1.0f, -(e % 24) - 1);
    }
    x[n++] = NAN;
    return n;
}

static max_error run_sweep(const sweep *s, dafl_isa isa)
{
    float *x = malloc(MAX_LOGITS * sizeof(float) * 4);
    ck_assert_ptr_nonnull(x);
    float *y = x + MAX_LOGITS, *loss = y + MAX_LOGITS, *grad = loss + MAX_LOGITS;
    size_t nx = s->kind == PENALTY_FOCAL && s->mode == DAFL_INPUT_PROBABILITIES
                    ? make_probabilities(x)
                    : make_logits(x);
    max_error m = {0, 0};
    for (size_t t = 0; t < s->n_targets; t++) {
        for (size_t i = 0; i < nx; i++)
            y[i] = s->targets[t];
        run_loss(s, x, y, nx, loss, grad);
        for (size_t i = 0; i < nx; i++) {
            ref_value r;
            double scale;
            reference(s, x[i], y[i], &r, &scale);
            double le = ref_ulp_error(loss[i], r.loss);
            double ge = error_at_scale(grad[i], r.grad, scale);
            if (le > ULP_BOUND || ge > ULP_BOUND)
                printf("  %s: x=%a y=%a loss %a (ref %a, %.1f ulp) grad %a (ref %a, %.1f ulp)\n",
                       s->name, x[i], y[i], loss[i], r.loss, le, grad[i], r.grad, ge);
            note(&m, le, ge);
        }
    }
    free(x);
    report(s->name, isa, m);
    return m;
}

static void check_sweeps(const sweep *sweeps, size_t count)
{
    for (size_t k = 0; k < TEST_ISA_COUNT; k++) {
        dafl_isa isa = test_all_isas[k];
        if (!test_use_isa(isa, "accuracy sweep"))
            continue;
        for (size_t i = 0; i < count; i++) {
            max_error m = run_sweep(&sweeps[i], isa);
            ck_assert_msg(m.loss <= ULP_BOUND && m.grad <= ULP_BOUND,
                          "%s on %s: %.2f / %.2f ULP exceeds %.0f", sweeps[i].name,
                          dafl_isa_name(isa), m.loss, m.grad, ULP_BOUND);
        }
    }
    dafl_set_isa(DAFL_ISA_AUTO);
}

#define TARGETS(t) t, sizeof t / sizeof t[0]

START_TEST(penalty_focal_accuracy)
{
    const sweep sweeps[] = {
        {"penalty focal logits a=2 b=4", PENALTY_FOCAL, 2, 4, 1, 1, 0, TARGETS(all_targets), 0},
        {"penalty focal logits a=2 b=4 pw=3 nw=0.5", PENALTY_FOCAL, 2, 4, 3, 0.5f, 0,
         TARGETS(all_targets), 0},
        {"penalty focal logits a=1 b=2", PENALTY_FOCAL, 1, 2, 1, 1, 0, TARGETS(all_targets), 0},
        {"penalty focal logits a=2.5 b=4", PENALTY_FOCAL, 2.5f, 4, 1, 1, 0,
         TARGETS(all_targets), 0},
        {"penalty focal logits a=2 b=3.5", PENALTY_FOCAL, 2, 3.5f, 1, 1, 0,
         TARGETS(all_targets), 0},
        /* exponents with other fractions take exp and log rather than a square root */
        {"penalty focal logits a=2.3 b=3.7", PENALTY_FOCAL, 2.3f, 3.7f, 1, 1, 0,
         TARGETS(all_targets), 0},
        {"penalty focal probabilities a=1.7 b=4", PENALTY_FOCAL, 1.7f, 4, 1, 1, 1,
         TARGETS(all_targets), 0},
        {"penalty focal clamped logits a=2.3 b=4", PENALTY_FOCAL, 2.3f, 4, 1, 1, 2,
         TARGETS(all_targets), 0},
        {"penalty focal probabilities a=2.5 b=4", PENALTY_FOCAL, 2.5f, 4, 1, 1, 1,
         TARGETS(all_targets), 0},
        {"penalty focal probabilities a=2 b=4", PENALTY_FOCAL, 2, 4, 1, 1, 1,
         TARGETS(all_targets), 0},
        {"penalty focal clamped logits a=2 b=4", PENALTY_FOCAL, 2, 4, 1, 1, 2,
         TARGETS(all_targets), 0},
    };
    check_sweeps(sweeps, sizeof sweeps / sizeof sweeps[0]);
}
END_TEST

START_TEST(sigmoid_focal_accuracy)
{
    const sweep sweeps[] = {
        {"sigmoid focal g=2 a=0.25 hard", SIGMOID_FOCAL, 2, 0.25f, 0, 0, 0,
         TARGETS(hard_targets), 0},
        {"sigmoid focal g=0 a=-1 hard", SIGMOID_FOCAL, 0, -1, 0, 0, 0, TARGETS(hard_targets),
         0},
        {"sigmoid focal g=1 a=0.25 hard", SIGMOID_FOCAL, 1, 0.25f, 0, 0, 0,
         TARGETS(hard_targets), 0},
        {"sigmoid focal g=2.5 a=0.25 hard", SIGMOID_FOCAL, 2.5f, 0.25f, 0, 0, 0,
         TARGETS(hard_targets), 0},
        {"sigmoid focal g=0.5 a=-1 hard", SIGMOID_FOCAL, 0.5f, -1, 0, 0, 0,
         TARGETS(hard_targets), 0},
        {"sigmoid focal g=1.7 a=0.25 hard", SIGMOID_FOCAL, 1.7f, 0.25f, 0, 0, 0,
         TARGETS(hard_targets), 0},
        {"sigmoid focal g=2 a=0.25 soft (largest term)", SIGMOID_FOCAL, 2, 0.25f, 0, 0, 0,
         TARGETS(all_targets), 1},
        {"sigmoid focal g=2.5 a=0.25 soft (largest term)", SIGMOID_FOCAL, 2.5f, 0.25f, 0, 0,
         0, TARGETS(all_targets), 1},
        {"sigmoid focal g=1.7 a=0.25 soft (largest term)", SIGMOID_FOCAL, 1.7f, 0.25f, 0, 0,
         0, TARGETS(all_targets), 1},
    };
    check_sweeps(sweeps, sizeof sweeps / sizeof sweeps[0]);
}
END_TEST

START_TEST(bce_mse_accuracy)
{
    const sweep sweeps[] = {
        {"bce pw=1 hard", BCE, 1, 0, 0, 0, 0, TARGETS(hard_targets), 0},
        {"bce pw=2.5 hard", BCE, 2.5f, 0, 0, 0, 0, TARGETS(hard_targets), 0},
        {"bce pw=1 soft (largest term)", BCE, 1, 0, 0, 0, 0, TARGETS(all_targets), 1},
        {"mse w=1", MSE, 1, 0, 0, 0, 0, TARGETS(all_targets), 0},
        {"mse w=0.3", MSE, 0.3f, 0, 0, 0, 0, TARGETS(all_targets), 0},
    };
    check_sweeps(sweeps, sizeof sweeps / sizeof sweeps[0]);
}
END_TEST

/* Softmax focal: random pixels (logits spread over -30..30, some extreme), every class
 * gradient measured at its largest term. */
START_TEST(softmax_focal_accuracy)
{
    const size_t classes[] = {1, 2, 3, 5, 19};
    const float gammas[] = {0.0f, 0.5f, 1.0f, 1.7f, 2.0f, 2.5f};
    for (size_t k = 0; k < TEST_ISA_COUNT; k++) {
        dafl_isa isa = test_all_isas[k];
        if (!test_use_isa(isa, "softmax accuracy"))
            continue;
        for (size_t ci = 0; ci < sizeof classes / sizeof classes[0]; ci++) {
            for (size_t gi = 0; gi < sizeof gammas / sizeof gammas[0]; gi++) {
                const size_t c = classes[ci], hw = 997;
                uint64_t seed = 1234 + c * 31 + gi;
                float *x = malloc(c * hw * sizeof(float)), *g = malloc(c * hw * sizeof(float));
                float *loss = malloc(hw * sizeof(float));
                int32_t *labels = malloc(hw * sizeof(int32_t));
                ck_assert(x && g && loss && labels);
                float spread = (gi % 2) ? 30.0f : 8.0f;
                for (size_t i = 0; i < c * hw; i++)
                    x[i] = test_uniform(&seed, -spread, spread);
                for (size_t i = 0; i < hw; i++)
                    labels[i] = (int32_t)(test_rand64(&seed) % c);
                dafl_softmax_focal_params p;
                dafl_softmax_focal_params_init(&p);
                p.gamma = gammas[gi];
                p.reduction = DAFL_REDUCTION_NONE;
                ck_assert_int_eq(dafl_softmax_focal(x, labels, 1, c, hw, &p, loss, g, NULL),
                                 DAFL_OK);
                max_error m = {0, 0};
                double xd[19], gd[19], sd[19], ld;
                for (size_t i = 0; i < hw; i++) {
                    for (size_t kk = 0; kk < c; kk++)
                        xd[kk] = x[kk * hw + i];
                    ref_softmax_focal(xd, (int)c, labels[i], gammas[gi], 1.0, &ld, gd);
                    ref_softmax_focal_grad_scale(xd, (int)c, labels[i], gammas[gi], 1.0, sd);
                    double le = ref_ulp_error(loss[i], ld);
                    double ge = 0;
                    for (size_t kk = 0; kk < c; kk++) {
                        double e = error_at_scale(g[kk * hw + i], gd[kk], sd[kk]);
                        ge = e > ge ? e : ge;
                    }
                    note(&m, le, ge);
                }
                char name[64];
                snprintf(name, sizeof name, "softmax focal c=%zu g=%.1f spread %.0f", c,
                         (double)gammas[gi], (double)spread);
                report(name, isa, m);
                ck_assert_msg(m.loss <= ULP_BOUND && m.grad <= ULP_BOUND, "%s: %.2f / %.2f",
                              name, m.loss, m.grad);
                free(x);
                free(g);
                free(loss);
                free(labels);
            }
        }
    }
    dafl_set_isa(DAFL_ISA_AUTO);
}
END_TEST

/* Reduced sums within 1e-6 relative of the exact sum of the per-element values, over
 * 2^22 elements (4096 blocks, so the exact accumulation across blocks is what is
 * measured); the per-element values are summed here with Neumaier's compensation. */
START_TEST(reduced_sum_accuracy)
{
    const size_t n = (size_t)1 << 22;
    float *x = malloc(n * sizeof(float)), *y = malloc(n * sizeof(float));
    float *per = malloc(n * sizeof(float));
    ck_assert(x && y && per);
    uint64_t seed = 99;
    for (size_t i = 0; i < n; i++) {
        x[i] = test_uniform(&seed, -12.0f, 12.0f);
        y[i] = (test_rand64(&seed) % 97 == 0) ? 1.0f : test_uniform(&seed, 0.0f, 1.0f);
    }
    dafl_penalty_focal_params p;
    dafl_penalty_focal_params_init(&p);
    p.reduction = DAFL_REDUCTION_NONE;
    ck_assert_int_eq(dafl_penalty_focal(x, y, n, &p, per, NULL, NULL), DAFL_OK);
    double sum = 0, comp = 0;
    for (size_t i = 0; i < n; i++) {
        double v = per[i], t = sum + v;
        comp += fabs(sum) >= fabs(v) ? (sum - t) + v : (v - t) + sum;
        sum = t;
    }
    double exact = (double)(sum + comp);
    float loss;
    p.reduction = DAFL_REDUCTION_SUM;
    dafl_stats stats;
    ck_assert_int_eq(dafl_penalty_focal(x, y, n, &p, &loss, NULL, &stats), DAFL_OK);
    double rel = fabs(dafl_stats_loss_sum(&stats) - exact) / exact;
    double rel_f = fabs((double)loss - exact) / exact;
    printf("reduced sum of 2^22 elements: relative error %.3g (double), %.3g (float result)\n",
           rel, rel_f);
    ck_assert(rel <= 1e-6);
    ck_assert(rel_f <= 1e-6);
    free(x);
    free(y);
    free(per);
}
END_TEST

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    Suite *s = suite_create("accuracy");
    TCase *tc = tcase_create("accuracy");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, penalty_focal_accuracy);
    tcase_add_test(tc, sigmoid_focal_accuracy);
    tcase_add_test(tc, bce_mse_accuracy);
    tcase_add_test(tc, softmax_focal_accuracy);
    tcase_add_test(tc, reduced_sum_accuracy);
    suite_add_tcase(s, tc);
    return test_run_suite(s);
}
