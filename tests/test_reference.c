/*
 * test_reference.c — proves the double-precision reference (ref_losses.c) that the
 * kernel accuracy tests compare against:
 *   (a) every reference gradient agrees with a finite-difference derivative of the
 *       reference loss, over a sweep of inputs, targets and parameters;
 *   (b) hand-computed values, and identities between the losses;
 *   (c) limits at x = +-inf (finite where the mathematical limit is), NaN propagation;
 *   (d) ref_ulp_error on normal, subnormal and special values.
 */
#include "ref_losses.h"

#include <check.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#define LN2 0.693147180559945309417232121458176568 /* log(2) */
#define MAX_CLASSES 8

/* ---- helpers ------------------------------------------------------------------------- */

/* |got - want| <= rel * |want| + abs_tol; NaN matches NaN, an infinity only itself. */
static int near(double got, double want, double rel, double abs_tol)
{
    if (isnan(want) || isnan(got)) {
        return isnan(want) && isnan(got);
    }
    if (isinf(want) || isinf(got)) {
        return got == want;
    }
    return fabs(got - want) <= rel * fabs(want) + abs_tol;
}

#define ASSERT_NEAR(got, want, rel, what)                                                  \
    ck_assert_msg(near((got), (want), (rel), 0.0), "%s: got %.17g, want %.17g", (what),    \
                  (double)(got), (double)(want))

#define ASSERT_VALUE(v, want_loss, want_grad, rel, what)                                   \
    do {                                                                                   \
        ref_value v_ = (v);                                                                \
        ck_assert_msg(near(v_.loss, (want_loss), (rel), 0.0),                              \
                      "%s: loss %.17g, want %.17g", (what), v_.loss, (double)(want_loss)); \
        ck_assert_msg(near(v_.grad, (want_grad), (rel), 0.0),                              \
                      "%s: grad %.17g, want %.17g", (what), v_.grad, (double)(want_grad)); \
    } while (0)

/* Logits swept by the finite-difference tests: -30..30 in steps of 0.25, plus a few
 * points near 0. */
static int logit_grid(double *xs)
{
    int n = 0;
    for (int i = 0; i <= 240; i++) {
        xs[n++] = -30.0 + 0.25 * i;
    }
    static const double extra[] = { 1e-3, -1e-3, 0.1, -0.1, 1.0 / 3.0, -2.0 / 3.0 };
    for (size_t i = 0; i < sizeof extra / sizeof extra[0]; i++) {
        xs[n++] = extra[i];
    }
    return n;
}
#define LOGIT_GRID_MAX 260

static const double targets[] = { 0.0, 0.25, 0.5, 0.9, 1.0 };
#define N_TARGETS ((int)(sizeof targets / sizeof targets[0]))

/* Deterministic pseudo-random numbers in [0, 1) (64-bit LCG, top 53 bits). */
static uint64_t rng_state = 0x2545f4914f6cdd1dULL;
static double rng_uniform(void)
{
    rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (double)(rng_state >> 11) * 0x1p-53;
}

/* ---- finite differences -------------------------------------------------------------- */

typedef double (*loss_fn)(const void *ctx, double x);

/* Central difference over the points actually representable near x +- h, so that the
 * rounding of x + h does not count as an error.  It is the derivative at their midpoint,
 * which may lie an ulp of x away from x. */
static double central_difference(loss_fn f, const void *ctx, double x, double h, double *fp,
                                 double *fm)
{
    double xp = x + h;
    double xm = x - h;
    *fp = f(ctx, xp);
    *fm = f(ctx, xm);
    return (*fp - *fm) / (xp - xm);
}

typedef struct {
    double deriv; /* the finite-difference derivative */
    double lmax;  /* the largest |loss| it used */
    double curv;  /* |second derivative|, estimated from the same points */
} fd_result;

/* Richardson extrapolation of two central differences, D = (4 D(h/2) - D(h)) / 3: the
 * h^2 truncation term cancels, leaving O(h^4), so the tolerance can be set by rounding. */
static fd_result fd_derivative(loss_fn f, const void *ctx, double x, double h)
{
    fd_result r;
    double f0 = f(ctx, x), fp1, fm1, fp2, fm2;
    double d1 = central_difference(f, ctx, x, h, &fp1, &fm1);
    double d2 = central_difference(f, ctx, x, 0.5 * h, &fp2, &fm2);
    r.deriv = (4.0 * d2 - d1) / 3.0;
    r.lmax = fmax(fmax(fabs(f0), fabs(fp1)), fmax(fmax(fabs(fm1), fabs(fp2)), fabs(fm2)));
    r.curv = fabs(fp1 + fm1 - 2.0 * f0) / (h * h);
    return r;
}

/* Tolerance: FD_REL relative to the gradient; rounding of the losses in the difference
 * quotient, FD_ROUND * lmax / h (Richardson's is about 3 * (relative error of the loss,
 * a few 1e-16) * lmax / h); and the midpoint's offset from x, up to an ulp of x, times
 * the curvature (this matters only where the gradient is near 0, e.g. MSE at x = y). */
#define FD_REL 1e-7
#define FD_ROUND 1e-12

static int fd_agrees(double grad, fd_result r, double x, double h)
{
    double tol = FD_REL * fabs(grad) + FD_ROUND * r.lmax / h
                 + 4.0 * DBL_EPSILON * fabs(x) * r.curv;
    return isfinite(grad) && isfinite(r.deriv) && fabs(grad - r.deriv) <= tol;
}

enum { K_PENALTY, K_SIGMOID_FOCAL, K_BCE, K_MSE };

/* One element-wise loss with everything but x fixed. */
typedef struct {
    int kind;
    double y;
    double a, b, pw, nw; /* penalty: alpha, beta, pos/neg weight; sigmoid focal: gamma,
                            alpha; bce: pos_weight in pw; mse: weight in pw */
    int mode;
    double eps;
} elem_loss;

static ref_value elem_eval(const elem_loss *e, double x)
{
    switch (e->kind) {
    case K_PENALTY:
        return ref_penalty_focal(x, e->y, e->a, e->b, e->pw, e->nw, e->mode, e->eps);
    case K_SIGMOID_FOCAL:
        return ref_sigmoid_focal(x, e->y, e->a, e->b);
    case K_BCE:
        return ref_bce(x, e->y, e->pw);
    default:
        return ref_mse(x, e->y, e->pw);
    }
}

static double elem_loss_at(const void *ctx, double x)
{
    return elem_eval((const elem_loss *)ctx, x).loss;
}

/* Asserts that the reference gradient at x matches the finite difference with step h. */
static void check_fd(const elem_loss *e, double x, double h)
{
    double g = elem_eval(e, x).grad;
    fd_result fd = fd_derivative(elem_loss_at, e, x, h);
    ck_assert_msg(fd_agrees(g, fd, x, h),
                  "kind %d mode %d x=%.17g y=%g params (%g, %g, %g, %g) eps %g: "
                  "grad %.17g, finite difference %.17g (|loss| <= %g, h %g)",
                  e->kind, e->mode, x, e->y, e->a, e->b, e->pw, e->nw, e->eps, g, fd.deriv,
                  fd.lmax, h);
}

static double logit_step(double x)
{
    return 1e-5 * fmax(1.0, fabs(x));
}

/* ---- (a) gradients against finite differences --------------------------------------- */

static const double pf_alpha[] = { 0.0, 0.5, 1.0, 2.0, 2.5, 3.7 };
static const double pf_beta[] = { 0.0, 1.0, 2.5, 3.7, 4.0 };
static const double pf_weights[][2] = { { 1.0, 1.0 }, { 2.5, 0.5 } };
#define N_PF_ALPHA ((int)(sizeof pf_alpha / sizeof pf_alpha[0]))
#define N_PF_BETA ((int)(sizeof pf_beta / sizeof pf_beta[0]))
#define N_PF_WEIGHTS ((int)(sizeof pf_weights / sizeof pf_weights[0]))

START_TEST(test_fd_penalty_logits)
{
    double xs[LOGIT_GRID_MAX];
    int nx = logit_grid(xs);
    for (int ia = 0; ia < N_PF_ALPHA; ia++) {
        for (int ib = 0; ib < N_PF_BETA; ib++) {
            for (int iw = 0; iw < N_PF_WEIGHTS; iw++) {
                for (int iy = 0; iy < N_TARGETS; iy++) {
                    elem_loss e = { K_PENALTY, targets[iy], pf_alpha[ia], pf_beta[ib],
                                    pf_weights[iw][0], pf_weights[iw][1],
                                    REF_MODE_LOGITS, 0.0 };
                    for (int i = 0; i < nx; i++) {
                        check_fd(&e, xs[i], logit_step(xs[i]));
                    }
                }
            }
        }
    }
}
END_TEST

START_TEST(test_fd_penalty_probabilities)
{
    /* p = sigmoid(x) for x in -12..12 (p from 6e-6 to 1 - 6e-6), step relative to the
     * distance to the nearer end of (0, 1). */
    for (int ia = 0; ia < N_PF_ALPHA; ia++) {
        for (int ib = 0; ib < N_PF_BETA; ib++) {
            for (int iy = 0; iy < N_TARGETS; iy++) {
                elem_loss e = { K_PENALTY, targets[iy], pf_alpha[ia], pf_beta[ib], 1.5, 0.75,
                                REF_MODE_PROBABILITIES, 0.0 };
                for (int i = 0; i <= 96; i++) {
                    double p = 1.0 / (1.0 + exp(-(-12.0 + 0.25 * i)));
                    check_fd(&e, p, 1e-5 * fmin(p, 1.0 - p));
                }
            }
        }
    }
}
END_TEST

START_TEST(test_fd_penalty_clamped)
{
    /* eps as the library receives it (a float), and two wide clamps; points within 4 steps
     * of the clamp boundaries x = +-logit(eps) are skipped (the loss has a kink there).
     * Inside the clamp the loss is constant: gradient exactly 0, difference 0. */
    const double epsilons[] = { (double)1e-4f, 0.1, 0.3 };
    double xs[LOGIT_GRID_MAX];
    int nx = logit_grid(xs);
    int clamped_points = 0;
    for (int ie = 0; ie < 3; ie++) {
        double eps = epsilons[ie];
        double edge = log(eps / (1.0 - eps));
        for (int ia = 0; ia < N_PF_ALPHA; ia++) {
            for (int ib = 0; ib < N_PF_BETA; ib++) {
                for (int iy = 0; iy < N_TARGETS; iy++) {
                    elem_loss e = { K_PENALTY, targets[iy], pf_alpha[ia], pf_beta[ib], 1.0,
                                    1.0, REF_MODE_CLAMPED_LOGITS, eps };
                    for (int i = 0; i < nx; i++) {
                        double x = xs[i];
                        double h = logit_step(x);
                        if (fabs(x - edge) < 4.0 * h || fabs(x + edge) < 4.0 * h) {
                            continue;
                        }
                        check_fd(&e, x, h);
                        if (x < edge || x > -edge) {
                            ck_assert(elem_eval(&e, x).grad == 0.0);
                            clamped_points++;
                        }
                    }
                }
            }
        }
    }
    ck_assert_int_gt(clamped_points, 1000);
}
END_TEST

START_TEST(test_fd_sigmoid_focal)
{
    const double gammas[] = { 0.0, 0.5, 1.0, 2.0, 2.5 };
    const double alphas[] = { 0.25, -1.0 };
    double xs[LOGIT_GRID_MAX];
    int nx = logit_grid(xs);
    for (int ig = 0; ig < 5; ig++) {
        for (int ia = 0; ia < 2; ia++) {
            for (int iy = 0; iy < N_TARGETS; iy++) {
                elem_loss e = { K_SIGMOID_FOCAL, targets[iy], gammas[ig], alphas[ia], 0.0,
                                0.0, 0, 0.0 };
                for (int i = 0; i < nx; i++) {
                    check_fd(&e, xs[i], logit_step(xs[i]));
                }
            }
        }
    }
}
END_TEST

START_TEST(test_fd_bce)
{
    const double pos_weights[] = { 1.0, 3.0 };
    double xs[LOGIT_GRID_MAX];
    int nx = logit_grid(xs);
    for (int iw = 0; iw < 2; iw++) {
        for (int iy = 0; iy < N_TARGETS; iy++) {
            elem_loss e = { K_BCE, targets[iy], 0.0, 0.0, pos_weights[iw], 0.0, 0, 0.0 };
            for (int i = 0; i < nx; i++) {
                check_fd(&e, xs[i], logit_step(xs[i]));
            }
        }
    }
}
END_TEST

START_TEST(test_fd_mse)
{
    const double weights[] = { 1.0, 0.5, 3.0 };
    double xs[LOGIT_GRID_MAX];
    int nx = logit_grid(xs);
    for (int iw = 0; iw < 3; iw++) {
        for (int iy = 0; iy < N_TARGETS; iy++) {
            elem_loss e = { K_MSE, targets[iy], 0.0, 0.0, weights[iw], 0.0, 0, 0.0 };
            for (int i = 0; i < nx; i++) {
                check_fd(&e, xs[i], logit_step(xs[i]));
            }
        }
    }
}
END_TEST

/* The softmax focal loss as a function of logit k alone. */
typedef struct {
    const double *x;
    int c, t, k;
    double gamma, w;
} softmax_line;

static double softmax_loss_at(const void *ctx, double v)
{
    const softmax_line *s = ctx;
    double x[MAX_CLASSES], grad[MAX_CLASSES], loss;
    for (int i = 0; i < s->c; i++) {
        x[i] = s->x[i];
    }
    x[s->k] = v;
    ref_softmax_focal(x, s->c, s->t, s->gamma, s->w, &loss, grad);
    return loss;
}

START_TEST(test_fd_softmax_focal)
{
    const double gammas[] = { 0.0, 2.0, 2.5 };
    const double spans[] = { 2.0, 8.0, 30.0 }; /* logits uniform in [-span, span] */
    for (int c = 1; c <= 5; c++) {
        for (int ig = 0; ig < 3; ig++) {
            for (int is = 0; is < 3; is++) {
                for (int draw = 0; draw < 100; draw++) {
                    double x[MAX_CLASSES], grad[MAX_CLASSES], loss;
                    for (int k = 0; k < c; k++) {
                        x[k] = spans[is] * (2.0 * rng_uniform() - 1.0);
                    }
                    int t = (int)(rng_uniform() * c);
                    double w = (draw % 2) ? 1.0 : 0.7;
                    ref_softmax_focal(x, c, t, gammas[ig], w, &loss, grad);
                    for (int k = 0; k < c; k++) {
                        softmax_line line = { x, c, t, k, gammas[ig], w };
                        double h = logit_step(x[k]);
                        fd_result fd = fd_derivative(softmax_loss_at, &line, x[k], h);
                        ck_assert_msg(fd_agrees(grad[k], fd, x[k], h),
                                      "c %d t %d k %d gamma %g: grad %.17g, finite "
                                      "difference %.17g (|loss| <= %g)",
                                      c, t, k, gammas[ig], grad[k], fd.deriv, fd.lmax);
                    }
                }
            }
        }
    }
}
END_TEST

/* ---- (b) known values and identities ------------------------------------------------- */

START_TEST(test_known_penalty)
{
    /* Logits, x = 0: p = q = 1/2, softplus(0) = ln 2.
     * y = 1, alpha = 2: l = (1/2)^2 ln 2 = 0.25 ln 2,
     *     dl/dx = -(1/4) (1/2 + 2 (1/2) ln 2) = -0.125 - 0.25 ln 2. */
    ASSERT_VALUE(ref_penalty_focal(0.0, 1.0, 2.0, 4.0, 1.0, 1.0, REF_MODE_LOGITS, 0.0),
                 0.25 * LN2, -0.125 - 0.25 * LN2, 1e-15, "x=0 y=1");
    /* y = 0.5, alpha = 2, beta = 4: (1-y)^4 = 0.0625, p^2 = 0.25:
     *     l = 0.0625 * 0.25 * ln 2,  dl/dx = 0.015625 (1/2 + 2 (1/2) ln 2). */
    ASSERT_VALUE(ref_penalty_focal(0.0, 0.5, 2.0, 4.0, 1.0, 1.0, REF_MODE_LOGITS, 0.0),
                 0.0625 * 0.25 * LN2, 0.015625 * (0.5 + LN2), 1e-15, "x=0 y=0.5");
    /* pos_weight scales the positive branch only, neg_weight the negative one. */
    ASSERT_VALUE(ref_penalty_focal(0.0, 1.0, 2.0, 4.0, 3.0, 7.0, REF_MODE_LOGITS, 0.0),
                 0.75 * LN2, -0.375 - 0.75 * LN2, 1e-15, "pos_weight 3");
    ASSERT_VALUE(ref_penalty_focal(0.0, 0.0, 2.0, 4.0, 3.0, 7.0, REF_MODE_LOGITS, 0.0),
                 1.75 * LN2, 0.875 + 1.75 * LN2, 1e-15, "neg_weight 7");
    /* x = ln 3: p = 3/4, q = 1/4, softplus(-x) = ln(4/3), softplus(x) = ln 4.
     * y = 1, alpha = 1: l = (1/4) ln(4/3), dl/dx = -(1/4)(1/4 + (3/4) ln(4/3)).
     * y = 0, alpha = 1: l = (3/4) ln 4,    dl/dx = (3/4)(3/4 + (1/4) ln 4). */
    double x = log(3.0);
    ASSERT_VALUE(ref_penalty_focal(x, 1.0, 1.0, 4.0, 1.0, 1.0, REF_MODE_LOGITS, 0.0),
                 0.25 * log(4.0 / 3.0), -0.25 * (0.25 + 0.75 * log(4.0 / 3.0)), 1e-14,
                 "x=ln3 y=1");
    ASSERT_VALUE(ref_penalty_focal(x, 0.0, 1.0, 4.0, 1.0, 1.0, REF_MODE_LOGITS, 0.0),
                 0.75 * log(4.0), 0.75 * (0.75 + 0.25 * log(4.0)), 1e-14, "x=ln3 y=0");

    /* Probabilities, p = 1/2, alpha = 2: y = 1: l = 0.25 ln 2,
     *     dl/dp = -(2 (1/2) ln 2 + (1/4)/(1/2)) = -(ln 2 + 0.5);  y = 0: the mirror image. */
    ASSERT_VALUE(ref_penalty_focal(0.5, 1.0, 2.0, 4.0, 1.0, 1.0, REF_MODE_PROBABILITIES, 0.0),
                 0.25 * LN2, -(LN2 + 0.5), 1e-15, "p=0.5 y=1");
    ASSERT_VALUE(ref_penalty_focal(0.5, 0.0, 2.0, 4.0, 1.0, 1.0, REF_MODE_PROBABILITIES, 0.0),
                 0.25 * LN2, LN2 + 0.5, 1e-15, "p=0.5 y=0");
    /* p = 1/4, y = 0, alpha = 2, beta irrelevant: l = (1/16) ln(4/3),
     *     dl/dp = 2 (1/4) ln(4/3) + (1/16)/(3/4) = 0.5 ln(4/3) + 1/12. */
    ASSERT_VALUE(ref_penalty_focal(0.25, 0.0, 2.0, 4.0, 1.0, 1.0, REF_MODE_PROBABILITIES, 0.0),
                 log(4.0 / 3.0) / 16.0, 0.5 * log(4.0 / 3.0) + 1.0 / 12.0, 1e-14, "p=0.25 y=0");

    /* Clamped logits, eps = 1e-4, alpha = 2, beta = 4: at x = -20 the clamp holds p = eps,
     * so for y = 0: l = eps^2 * (-log(1 - eps)), gradient 0; at x = 20, p = 1 - eps, q = eps,
     * so for y = 1: l = eps^2 * (-log(1 - eps)) as well, and for y = 0:
     * l = (1-eps)^2 * (-log eps). */
    const double eps = 1e-4;
    double small = eps * eps * -log1p(-eps);
    ASSERT_VALUE(ref_penalty_focal(-20.0, 0.0, 2.0, 4.0, 1.0, 1.0, REF_MODE_CLAMPED_LOGITS,
                                   eps),
                 small, 0.0, 1e-14, "clamped x=-20 y=0");
    ASSERT_VALUE(ref_penalty_focal(20.0, 1.0, 2.0, 4.0, 1.0, 1.0, REF_MODE_CLAMPED_LOGITS, eps),
                 small, 0.0, 1e-14, "clamped x=20 y=1");
    ASSERT_VALUE(ref_penalty_focal(20.0, 0.0, 2.0, 4.0, 1.0, 1.0, REF_MODE_CLAMPED_LOGITS, eps),
                 (1.0 - eps) * (1.0 - eps) * -log(eps), 0.0, 1e-14, "clamped x=20 y=0");
    /* Between the clamps the mode is exactly the logits mode, bit for bit. */
    double xs[LOGIT_GRID_MAX];
    int nx = logit_grid(xs);
    for (int i = 0; i < nx; i++) {
        if (fabs(xs[i]) > 9.0) {
            continue; /* logit(1e-4) = -9.2103 */
        }
        for (int iy = 0; iy < N_TARGETS; iy++) {
            ref_value a = ref_penalty_focal(xs[i], targets[iy], 2.5, 3.7, 1.0, 1.0,
                                            REF_MODE_CLAMPED_LOGITS, eps);
            ref_value b = ref_penalty_focal(xs[i], targets[iy], 2.5, 3.7, 1.0, 1.0,
                                            REF_MODE_LOGITS, 0.0);
            ck_assert(a.loss == b.loss && a.grad == b.grad);
        }
    }
    /* Unknown mode, eps outside (0, 0.5), a "probability" outside [0, 1]: NaN. */
    ck_assert(isnan(ref_penalty_focal(0.0, 1.0, 2.0, 4.0, 1.0, 1.0, 3, 0.0).loss));
    ck_assert(isnan(ref_penalty_focal(0.0, 1.0, 2.0, 4.0, 1.0, 1.0, 2, 0.5).grad));
    ck_assert(isnan(ref_penalty_focal(0.0, 1.0, 2.0, 4.0, 1.0, 1.0, 2, 0.0).grad));
    ck_assert(isnan(ref_penalty_focal(1.5, 0.0, 2.0, 4.0, 1.0, 1.0, 1, 0.0).loss));
    ck_assert(isnan(ref_penalty_focal(-0.5, 0.0, 2.0, 4.0, 1.0, 1.0, 1, 0.0).loss));
}
END_TEST

START_TEST(test_penalty_modes_agree)
{
    /* The probabilities mode at p = sigmoid(x) is the logits mode, and by the chain rule
     * dl/dx = dl/dp * p * q.  (p is rounded once, which costs up to about 1e-11 relative
     * in q = 1 - p near p = 1 for |x| <= 12.) */
    for (int i = 0; i <= 96; i++) {
        double x = -12.0 + 0.25 * i;
        double p = 1.0 / (1.0 + exp(-x));
        double q = 1.0 / (1.0 + exp(x));
        for (int ia = 0; ia < N_PF_ALPHA; ia++) {
            for (int iy = 0; iy < N_TARGETS; iy++) {
                ref_value lg = ref_penalty_focal(x, targets[iy], pf_alpha[ia], 3.7, 1.5, 0.5,
                                                 REF_MODE_LOGITS, 0.0);
                ref_value pr = ref_penalty_focal(p, targets[iy], pf_alpha[ia], 3.7, 1.5, 0.5,
                                                 REF_MODE_PROBABILITIES, 0.0);
                ASSERT_NEAR(pr.loss, lg.loss, 1e-9, "probabilities vs logits loss");
                ASSERT_NEAR(pr.grad * p * q, lg.grad, 1e-9, "probabilities vs logits grad");
            }
        }
    }
}
END_TEST

START_TEST(test_known_bce)
{
    /* x = 0: l = y ln 2 + (1-y) ln 2 = ln 2 for every y, dl/dx = (1-y)/2 - y/2 = 0.5 - y. */
    for (int iy = 0; iy < N_TARGETS; iy++) {
        double y = targets[iy];
        ASSERT_VALUE(ref_bce(0.0, y, 1.0), LN2, 0.5 - y, 1e-15, "bce x=0");
    }
    /* pos_weight 3, y = 1: l = 3 ln 2, dl/dx = -3/2. */
    ASSERT_VALUE(ref_bce(0.0, 1.0, 3.0), 3.0 * LN2, -1.5, 1e-15, "bce pos_weight 3");
    /* x = ln 3, y = 0.25: p = 3/4, q = 1/4:
     *     l = 0.25 ln(4/3) + 0.75 ln 4,  dl/dx = 0.75 * 0.75 - 0.25 * 0.25 = 0.5. */
    ASSERT_VALUE(ref_bce(log(3.0), 0.25, 1.0), 0.25 * log(4.0 / 3.0) + 0.75 * log(4.0), 0.5,
                 1e-14, "bce x=ln3 y=0.25");
    /* Large |x| without overflow: x = 40, y = 0: l = 40 + log1p(e^-40) ~ 40,
     * dl/dx = p = 1 - e^-40 (rounds to 1). */
    ASSERT_VALUE(ref_bce(40.0, 0.0, 1.0), 40.0, 1.0, 1e-15, "bce x=40 y=0");
    /* x = 40, y = 1: l = log1p(e^-40) ~ e^-40, dl/dx = -q = -e^-40 / (1 + e^-40): tiny but
     * exact, not 1 - p = 0. */
    ASSERT_VALUE(ref_bce(40.0, 1.0, 1.0), exp(-40.0), -exp(-40.0), 1e-15, "bce x=40 y=1");
}
END_TEST

START_TEST(test_known_sigmoid_focal)
{
    /* x = 0, y = 1, gamma = 2, alpha = 0.25: m = 1/2, ce = ln 2, a_t = 1/4:
     *     l = 0.25 * 0.25 * ln 2,
     *     dl/dx = 0.25 (2 (1/2) (1/4)(-1) ln 2 + (1/4)(1/2 - 1)) = -0.0625 ln 2 - 0.03125. */
    ASSERT_VALUE(ref_sigmoid_focal(0.0, 1.0, 2.0, 0.25), 0.0625 * LN2, -0.0625 * LN2 - 0.03125,
                 1e-15, "sf x=0 y=1");
    /* y = 0 uses a_t = 1 - alpha = 0.75: l = 0.75 * 0.25 ln 2,
     *     dl/dx = 0.75 (2 (1/2)(1/4)(+1) ln 2 + (1/4)(1/2)) = 0.1875 ln 2 + 0.09375. */
    ASSERT_VALUE(ref_sigmoid_focal(0.0, 0.0, 2.0, 0.25), 0.1875 * LN2, 0.1875 * LN2 + 0.09375,
                 1e-15, "sf x=0 y=0");
    /* gamma = 2.5, alpha off, x = 0, y = 1: l = 2^-2.5 ln 2,
     *     dl/dx = 2.5 * 2^-1.5 * (1/4) * (-1) * ln 2 + 2^-2.5 * (-1/2). */
    ASSERT_VALUE(ref_sigmoid_focal(0.0, 1.0, 2.5, -1.0), pow(2.0, -2.5) * LN2,
                 -2.5 * pow(2.0, -1.5) * 0.25 * LN2 - 0.5 * pow(2.0, -2.5), 1e-14,
                 "sf gamma 2.5");
    /* y = 0.5 at x = 0: m = 1/2, 1 - 2y = 0 and p - y = 0, so the gradient is 0. */
    ASSERT_VALUE(ref_sigmoid_focal(0.0, 0.5, 2.0, 0.25), 0.5 * 0.25 * LN2, 0.0, 1e-15,
                 "sf y=0.5");

    /* gamma = 0 with alpha < 0 is BCE with logits (SPEC 2.2), value for value. */
    double xs[LOGIT_GRID_MAX];
    int nx = logit_grid(xs);
    for (int i = 0; i < nx; i++) {
        for (int iy = 0; iy < N_TARGETS; iy++) {
            ref_value f = ref_sigmoid_focal(xs[i], targets[iy], 0.0, -1.0);
            ref_value b = ref_bce(xs[i], targets[iy], 1.0);
            ASSERT_VALUE(f, b.loss, b.grad, 1e-15, "sigmoid focal gamma 0 vs bce");
        }
    }
    /* With a hard target and alpha off, penalty focal is sigmoid focal with gamma = alpha:
     * y = 1: q^alpha * softplus(-x);  y = 0: p^alpha * softplus(x) ((1-0)^beta = 1). */
    for (int i = 0; i < nx; i++) {
        for (int ia = 0; ia < N_PF_ALPHA; ia++) {
            for (int y = 0; y <= 1; y++) {
                ref_value pf = ref_penalty_focal(xs[i], y, pf_alpha[ia], 3.7, 1.0, 1.0,
                                                 REF_MODE_LOGITS, 0.0);
                ref_value sf = ref_sigmoid_focal(xs[i], y, pf_alpha[ia], -1.0);
                ASSERT_VALUE(pf, sf.loss, sf.grad, 1e-13, "penalty vs sigmoid focal");
            }
        }
    }
}
END_TEST

START_TEST(test_known_softmax_focal)
{
    double loss, grad[MAX_CLASSES];
    /* Uniform logits, c classes: s = -ln c, p_k = 1/c, m = (c-1)/c.
     * gamma = 0, w = 1: l = ln c, dl/dx_k = (delta - 1/c) * (0 - 1) = 1/c - delta. */
    for (int c = 1; c <= 5; c++) {
        double x[MAX_CLASSES] = { 0 };
        for (int k = 0; k < c; k++) {
            x[k] = 1.25;
        }
        ref_softmax_focal(x, c, c - 1, 0.0, 1.0, &loss, grad);
        ASSERT_NEAR(loss, log((double)c), 1e-15, "uniform CE loss");
        for (int k = 0; k < c; k++) {
            ASSERT_NEAR(grad[k], 1.0 / c - (k == c - 1), 1e-15, "uniform CE grad");
        }
    }
    /* c = 2 uniform, gamma = 2: m = 1/2, l = 0.25 ln 2,
     *     dl/dx_t = (1/2) (2 (1/2)(1/2)(-ln 2) - 1/4) = -0.25 ln 2 - 0.125, and
     *     dl/dx_other = -(that). */
    {
        const double x[2] = { 0.0, 0.0 };
        ref_softmax_focal(x, 2, 0, 2.0, 1.0, &loss, grad);
        ASSERT_NEAR(loss, 0.25 * LN2, 1e-15, "c=2 gamma=2 loss");
        ASSERT_NEAR(grad[0], -0.25 * LN2 - 0.125, 1e-15, "c=2 gamma=2 grad t");
        ASSERT_NEAR(grad[1], 0.25 * LN2 + 0.125, 1e-15, "c=2 gamma=2 grad other");
    }
    /* c = 1: p_t = 1, s = 0: no loss, no gradient. */
    {
        const double x[1] = { 3.0 };
        ref_softmax_focal(x, 1, 0, 2.5, 1.0, &loss, grad);
        ck_assert(loss == 0.0 && grad[0] == 0.0);
    }
    /* gamma = 0 is weighted cross-entropy: l = w (log sum_k exp(x_k) - x_t),
     * dl/dx_k = w (p_k - delta), computed here the naive way for logits in [-5, 5]. */
    for (int draw = 0; draw < 200; draw++) {
        int c = 1 + draw % 5;
        double x[MAX_CLASSES], sum = 0.0, w = 0.5 + rng_uniform();
        for (int k = 0; k < c; k++) {
            x[k] = 10.0 * rng_uniform() - 5.0;
            sum += exp(x[k]);
        }
        int t = (int)(rng_uniform() * c);
        ref_softmax_focal(x, c, t, 0.0, w, &loss, grad);
        ck_assert(near(loss, w * (log(sum) - x[t]), 1e-13, 1e-15));
        for (int k = 0; k < c; k++) {
            ck_assert(near(grad[k], w * (exp(x[k]) / sum - (k == t)), 1e-13, 1e-15));
        }
    }
    /* Two classes with logits (0, x) and t = 1 are a sigmoid with logit x and y = 1:
     * the loss is sigmoid focal (alpha off), dl/dx_1 its gradient, dl/dx_0 the negative. */
    const double gammas[] = { 0.0, 0.5, 2.0, 2.5 };
    double xs[LOGIT_GRID_MAX];
    int nx = logit_grid(xs);
    for (int ig = 0; ig < 4; ig++) {
        for (int i = 0; i < nx; i++) {
            const double x[2] = { 0.0, xs[i] };
            ref_softmax_focal(x, 2, 1, gammas[ig], 1.0, &loss, grad);
            ref_value sf = ref_sigmoid_focal(xs[i], 1.0, gammas[ig], -1.0);
            ASSERT_NEAR(loss, sf.loss, 1e-13, "softmax c=2 vs sigmoid focal loss");
            ASSERT_NEAR(grad[1], sf.grad, 1e-13, "softmax c=2 vs sigmoid focal grad");
            ASSERT_NEAR(grad[0], -sf.grad, 1e-13, "softmax c=2 vs sigmoid focal grad 0");
        }
    }
    /* A label outside 0..c-1: NaN. */
    {
        const double x[3] = { 0.0, 1.0, 2.0 };
        ref_softmax_focal(x, 3, 3, 2.0, 1.0, &loss, grad);
        ck_assert(isnan(loss) && isnan(grad[0]) && isnan(grad[2]));
    }
}
END_TEST

START_TEST(test_known_mse)
{
    /* x = 3, y = 1, w = 0.5: l = 0.5 * 4 = 2, dl/dx = 2 * 0.5 * 2 = 2. */
    ASSERT_VALUE(ref_mse(3.0, 1.0, 0.5), 2.0, 2.0, 0.0, "mse");
    ASSERT_VALUE(ref_mse(0.25, 0.75, 2.0), 0.5, -2.0, 0.0, "mse negative");
    ASSERT_VALUE(ref_mse(0.6, 0.6, 1.0), 0.0, 0.0, 0.0, "mse zero");
}
END_TEST

START_TEST(test_grad_scale)
{
    double xs[LOGIT_GRID_MAX];
    int nx = logit_grid(xs);
    /* The largest term is at most |gradient|... */
    const double gammas[] = { 0.0, 0.5, 2.0, 2.5 };
    for (int ig = 0; ig < 4; ig++) {
        for (int iy = 0; iy < N_TARGETS; iy++) {
            for (int i = 0; i < nx; i++) {
                double y = targets[iy];
                double g = ref_sigmoid_focal(xs[i], y, gammas[ig], 0.25).grad;
                double sc = ref_sigmoid_focal_grad_scale(xs[i], y, gammas[ig], 0.25);
                /* ...and at least half of it, always (two terms). */
                ck_assert(sc >= 0.5 * fabs(g) * (1.0 - 1e-15));
                if (y == 0.0 || y == 1.0) {
                    /* hard targets: both terms have the sign of p - y, no cancellation */
                    ck_assert(sc <= fabs(g) * (1.0 + 1e-15));
                }
                if (gammas[ig] == 0.0) {
                    ck_assert(near(sc, fabs(g), 1e-15, 0.0)); /* term1 vanishes */
                }
            }
        }
    }
    /* y = 1/4 at x = ln(1/3), where p = y: term2 = a_t m^gamma (p - y) = 0, so the scale is
     * |term1| = a_t * gamma * m^(gamma-1) * p q (1 - 2y) * ce, with m = 2 y (1-y) = 3/8,
     * p q = 3/16, ce = (1/4) ln 4 + (3/4) ln(4/3), a_t = 0.25 y + 0.75 (1-y) = 0.625. */
    {
        double x = log(1.0 / 3.0);
        double ce = 0.25 * log(4.0) + 0.75 * log(4.0 / 3.0);
        double want = 0.625 * 2.0 * 0.375 * (3.0 / 16.0) * 0.5 * ce;
        ASSERT_NEAR(ref_sigmoid_focal_grad_scale(x, 0.25, 2.0, 0.25), want, 1e-14,
                    "sigmoid focal scale at p = y");
        ck_assert(fabs(ref_sigmoid_focal(x, 0.25, 2.0, 0.25).grad - want) < 1e-15);
        /* BCE there: (1-y) p = y q = 3/16 and the gradient is 0 to rounding. */
        ASSERT_NEAR(ref_bce_grad_scale(x, 0.25, 1.0), 0.1875, 1e-15, "bce scale at p = y");
        ck_assert(fabs(ref_bce(x, 0.25, 1.0).grad) < 1e-16);
    }
    ASSERT_NEAR(ref_bce_grad_scale(0.0, 1.0, 3.0), 1.5, 0.0, "bce scale y=1");
    /* Softmax: the two terms share a sign, so scale is in [|grad|/2, |grad|], and equals
     * |grad| for gamma = 0. */
    for (int draw = 0; draw < 300; draw++) {
        int c = 1 + draw % 5;
        double x[MAX_CLASSES], grad[MAX_CLASSES], scale[MAX_CLASSES], loss;
        for (int k = 0; k < c; k++) {
            x[k] = 16.0 * rng_uniform() - 8.0;
        }
        int t = (int)(rng_uniform() * c);
        double gamma = gammas[draw % 4];
        ref_softmax_focal(x, c, t, gamma, 0.8, &loss, grad);
        ref_softmax_focal_grad_scale(x, c, t, gamma, 0.8, scale);
        for (int k = 0; k < c; k++) {
            ck_assert(scale[k] >= 0.5 * fabs(grad[k]) * (1.0 - 1e-15));
            ck_assert(scale[k] <= fabs(grad[k]) * (1.0 + 1e-15));
            if (gamma == 0.0) {
                ck_assert(near(scale[k], fabs(grad[k]), 1e-15, 0.0));
            }
        }
    }
    /* Uniform c = 2, gamma = 2, w = 1: A = gamma m p_t s = 2 (1/2)(1/2)(-ln 2) = -0.5 ln 2,
     * B = m^2 = 0.25, |delta - p_k| = 1/2, so scale = 0.5 * max(0.5 ln 2, 0.25) = 0.25 ln 2
     * for both classes. */
    {
        const double x[2] = { 0.0, 0.0 };
        double scale[2];
        ref_softmax_focal_grad_scale(x, 2, 1, 2.0, 1.0, scale);
        ASSERT_NEAR(scale[0], 0.25 * LN2, 1e-15, "softmax scale");
        ASSERT_NEAR(scale[1], 0.25 * LN2, 1e-15, "softmax scale");
    }
}
END_TEST

/* ---- (c) limits and special values --------------------------------------------------- */

START_TEST(test_limits_penalty_logits)
{
    for (int ia = 0; ia < N_PF_ALPHA; ia++) {
        double a = pf_alpha[ia];
        /* y = 1, x -> +inf: q -> 0, softplus(-x) -> 0: no loss, no gradient. */
        ASSERT_VALUE(ref_penalty_focal(INFINITY, 1.0, a, 4.0, 2.0, 1.0, 0, 0.0), 0.0, 0.0, 0.0,
                     "pf +inf y=1");
        /* y = 1, x -> -inf: loss -> inf; dl/dx = -pw q^alpha (q + alpha p softplus(-x))
         * -> -pw, since p softplus(-x) ~ |x| e^-|x| -> 0. */
        ASSERT_VALUE(ref_penalty_focal(-INFINITY, 1.0, a, 4.0, 2.0, 1.0, 0, 0.0), INFINITY,
                     -2.0, 0.0, "pf -inf y=1");
        for (int iy = 0; iy < N_TARGETS - 1; iy++) {
            double y = targets[iy];
            for (int ib = 0; ib < N_PF_BETA; ib++) {
                double b = pf_beta[ib];
                double w = 0.5 * pow(1.0 - y, b);
                /* y < 1, x -> +inf: loss -> inf, gradient -> neg_weight (1-y)^beta. */
                ASSERT_VALUE(ref_penalty_focal(INFINITY, y, a, b, 2.0, 0.5, 0, 0.0), INFINITY,
                             w, 1e-15, "pf +inf y<1");
                /* y < 1, x -> -inf: p -> 0, softplus(x) -> 0: no loss, no gradient. */
                ASSERT_VALUE(ref_penalty_focal(-INFINITY, y, a, b, 2.0, 0.5, 0, 0.0), 0.0, 0.0,
                             0.0, "pf -inf y<1");
            }
        }
    }
    /* Large finite logits agree with the limits (exp underflows in double beyond 745). */
    ASSERT_VALUE(ref_penalty_focal(1e30, 0.0, 2.0, 4.0, 1.0, 1.0, 0, 0.0), 1e30, 1.0, 1e-15,
                 "pf 1e30 y=0");
    ASSERT_VALUE(ref_penalty_focal(800.0, 1.0, 2.0, 4.0, 1.0, 1.0, 0, 0.0), 0.0, 0.0, 0.0,
                 "pf 800 y=1");
    ASSERT_VALUE(ref_penalty_focal(-1e30, 1.0, 2.5, 4.0, 1.0, 1.0, 0, 0.0), 1e30, -1.0, 1e-15,
                 "pf -1e30 y=1");
    /* A zero weight makes the loss identically zero: 0, not 0 * inf. */
    ASSERT_VALUE(ref_penalty_focal(-INFINITY, 1.0, 2.0, 4.0, 0.0, 1.0, 0, 0.0), 0.0, 0.0, 0.0,
                 "pf pos_weight 0");
    ASSERT_VALUE(ref_penalty_focal(INFINITY, 0.5, 2.0, 4.0, 1.0, 0.0, 0, 0.0), 0.0, 0.0, 0.0,
                 "pf neg_weight 0");
}
END_TEST

START_TEST(test_limits_penalty_other_modes)
{
    const double eps = (double)1e-4f;
    /* Clamped logits: at +-inf the clamp is active, so loss is finite and gradient 0.
     * x = +inf: p = 1 - eps, q = eps; x = -inf: p = eps, q = 1 - eps. */
    for (int ia = 0; ia < N_PF_ALPHA; ia++) {
        double a = pf_alpha[ia];
        ASSERT_VALUE(ref_penalty_focal(INFINITY, 1.0, a, 4.0, 1.0, 1.0, 2, eps),
                     pow(eps, a) * -log1p(-eps), 0.0, 1e-14, "clamped +inf y=1");
        ASSERT_VALUE(ref_penalty_focal(-INFINITY, 1.0, a, 4.0, 1.0, 1.0, 2, eps),
                     pow(1.0 - eps, a) * -log(eps), 0.0, 1e-14, "clamped -inf y=1");
        ASSERT_VALUE(ref_penalty_focal(INFINITY, 0.25, a, 4.0, 1.0, 1.0, 2, eps),
                     pow(0.75, 4.0) * pow(1.0 - eps, a) * -log(eps), 0.0, 1e-14,
                     "clamped +inf y<1");
        ASSERT_VALUE(ref_penalty_focal(-INFINITY, 0.25, a, 4.0, 1.0, 1.0, 2, eps),
                     pow(0.75, 4.0) * pow(eps, a) * -log1p(-eps), 0.0, 1e-14,
                     "clamped -inf y<1");
    }
    /* Probabilities at the ends of [0, 1], alpha = 2:
     * y = 1, p = 1: l = 0, dl/dp = -(2 q (-log p) + q^2/p) -> 0;
     * y = 1, p = 0: l = +inf, dl/dp = -inf;
     * y < 1, p = 0: l = 0, dl/dp = alpha p (-log q) + p^2/q -> 0;
     * y < 1, p = 1: l = +inf, dl/dp = +inf. */
    ASSERT_VALUE(ref_penalty_focal(1.0, 1.0, 2.0, 4.0, 1.0, 1.0, 1, 0.0), 0.0, 0.0, 0.0,
                 "prob p=1 y=1");
    ASSERT_VALUE(ref_penalty_focal(0.0, 1.0, 2.0, 4.0, 1.0, 1.0, 1, 0.0), INFINITY, -INFINITY,
                 0.0, "prob p=0 y=1");
    ASSERT_VALUE(ref_penalty_focal(0.0, 0.5, 2.0, 4.0, 1.0, 1.0, 1, 0.0), 0.0, 0.0, 0.0,
                 "prob p=0 y<1");
    ASSERT_VALUE(ref_penalty_focal(1.0, 0.5, 2.0, 4.0, 1.0, 1.0, 1, 0.0), INFINITY, INFINITY,
                 0.0, "prob p=1 y<1");
    /* alpha = 0 leaves the plain log terms: y = 1, p = 1: dl/dp = -1/p = -1;
     * y = 0, p = 0: dl/dp = 1/q = 1. */
    ASSERT_VALUE(ref_penalty_focal(1.0, 1.0, 0.0, 4.0, 1.0, 1.0, 1, 0.0), 0.0, -1.0, 0.0,
                 "prob alpha 0 p=1");
    ASSERT_VALUE(ref_penalty_focal(0.0, 0.0, 0.0, 4.0, 1.0, 1.0, 1, 0.0), 0.0, 1.0, 0.0,
                 "prob alpha 0 p=0");
    /* alpha = 0.5 < 1: alpha q^(alpha-1) (-log p) ~ alpha q^alpha still -> 0 at p = 1. */
    ASSERT_VALUE(ref_penalty_focal(1.0, 1.0, 0.5, 4.0, 1.0, 1.0, 1, 0.0), 0.0, 0.0, 0.0,
                 "prob alpha 0.5 p=1");
    ASSERT_VALUE(ref_penalty_focal(0.0, 0.0, 0.5, 4.0, 1.0, 1.0, 1, 0.0), 0.0, 0.0, 0.0,
                 "prob alpha 0.5 p=0");
}
END_TEST

START_TEST(test_limits_sigmoid_focal)
{
    const double gammas[] = { 0.0, 0.5, 2.0, 2.5 };
    for (int ig = 0; ig < 4; ig++) {
        double g = gammas[ig];
        /* alpha = 0.25: a_t = 0.25 for y = 1, 0.75 for y = 0. */
        /* y = 1, x -> +inf: m = q -> 0, ce -> 0: no loss, no gradient. */
        ASSERT_VALUE(ref_sigmoid_focal(INFINITY, 1.0, g, 0.25), 0.0, 0.0, 0.0, "sf +inf y=1");
        /* y = 1, x -> -inf: m -> 1, ce -> inf; dl/dx -> a_t (0 + 1 * (0 - 1)) = -a_t. */
        ASSERT_VALUE(ref_sigmoid_focal(-INFINITY, 1.0, g, 0.25), INFINITY, -0.25, 0.0,
                     "sf -inf y=1");
        /* y = 0 mirrors: x -> +inf: inf loss, gradient a_t; x -> -inf: 0, 0. */
        ASSERT_VALUE(ref_sigmoid_focal(INFINITY, 0.0, g, 0.25), INFINITY, 0.75, 0.0,
                     "sf +inf y=0");
        ASSERT_VALUE(ref_sigmoid_focal(-INFINITY, 0.0, g, 0.25), 0.0, 0.0, 0.0, "sf -inf y=0");
        /* Soft y = 0.25, alpha off: x -> +inf: m -> 1-y, p q ce -> 0,
         * dl/dx -> (1-y)^gamma (1 - y) = 0.75^(gamma+1);
         * x -> -inf: m -> y, dl/dx -> y^gamma (0 - y) = -0.25^(gamma+1). */
        ASSERT_VALUE(ref_sigmoid_focal(INFINITY, 0.25, g, -1.0), INFINITY, pow(0.75, g + 1.0),
                     1e-15, "sf +inf soft");
        ASSERT_VALUE(ref_sigmoid_focal(-INFINITY, 0.25, g, -1.0), INFINITY,
                     -pow(0.25, g + 1.0), 1e-15, "sf -inf soft");
        /* The scale of the gradient is its second term there. */
        ASSERT_NEAR(ref_sigmoid_focal_grad_scale(INFINITY, 0.25, g, -1.0), pow(0.75, g + 1.0),
                    1e-15, "sf scale +inf");
        /* Beyond double's exp range the values are those limits already. */
        ASSERT_VALUE(ref_sigmoid_focal(1000.0, 1.0, g, 0.25), 0.0, 0.0, 0.0, "sf 1000 y=1");
        ASSERT_VALUE(ref_sigmoid_focal(-1000.0, 1.0, g, 0.25), 250.0, -0.25, 1e-15,
                     "sf -1000 y=1");
    }
    /* alpha = 1, y = 0: a_t = 0, the loss is identically zero. */
    ASSERT_VALUE(ref_sigmoid_focal(INFINITY, 0.0, 2.0, 1.0), 0.0, 0.0, 0.0, "sf a_t 0");
}
END_TEST

START_TEST(test_limits_bce)
{
    /* y = 1: x -> +inf: 0, 0; x -> -inf: inf, -pw. y = 0: +inf: inf, 1; -inf: 0, 0.
     * Soft y = 0.25, pw = 3: +inf: inf, 1-y = 0.75; -inf: inf, -pw y = -0.75. */
    ASSERT_VALUE(ref_bce(INFINITY, 1.0, 3.0), 0.0, 0.0, 0.0, "bce +inf y=1");
    ASSERT_VALUE(ref_bce(-INFINITY, 1.0, 3.0), INFINITY, -3.0, 0.0, "bce -inf y=1");
    ASSERT_VALUE(ref_bce(INFINITY, 0.0, 3.0), INFINITY, 1.0, 0.0, "bce +inf y=0");
    ASSERT_VALUE(ref_bce(-INFINITY, 0.0, 3.0), 0.0, 0.0, 0.0, "bce -inf y=0");
    ASSERT_VALUE(ref_bce(INFINITY, 0.25, 3.0), INFINITY, 0.75, 0.0, "bce +inf soft");
    ASSERT_VALUE(ref_bce(-INFINITY, 0.25, 3.0), INFINITY, -0.75, 0.0, "bce -inf soft");
    /* pos_weight 0 and y = 1: identically zero. */
    ASSERT_VALUE(ref_bce(-INFINITY, 1.0, 0.0), 0.0, 0.0, 0.0, "bce pos_weight 0");
}
END_TEST

START_TEST(test_limits_mse)
{
    /* (x - y)^2 has no finite limit: inf, and the gradient +-inf. */
    ASSERT_VALUE(ref_mse(INFINITY, 0.5, 2.0), INFINITY, INFINITY, 0.0, "mse +inf");
    ASSERT_VALUE(ref_mse(-INFINITY, 0.5, 2.0), INFINITY, -INFINITY, 0.0, "mse -inf");
    /* Weight 0: identically zero. */
    ASSERT_VALUE(ref_mse(INFINITY, 0.5, 0.0), 0.0, 0.0, 0.0, "mse w 0");
}
END_TEST

START_TEST(test_limits_softmax_focal)
{
    double loss, grad[4];
    const double gammas[] = { 0.0, 0.5, 2.0, 2.5 };
    for (int ig = 0; ig < 4; ig++) {
        double g = gammas[ig];
        /* The target's logit +inf: p_t = 1, m = 0: no loss, no gradient. */
        {
            const double x[4] = { 1.0, INFINITY, -2.0, -INFINITY };
            ref_softmax_focal(x, 4, 1, g, 0.5, &loss, grad);
            ck_assert(loss == 0.0);
            for (int k = 0; k < 4; k++) {
                ck_assert(grad[k] == 0.0);
            }
        }
        /* Another logit +inf: p_t -> 0, s -> -inf, m -> 1, loss -> inf;
         * dl/dx_k = w (delta - p_k)(gamma m^(gamma-1) p_t s - m^gamma) -> w (p_k - delta):
         * -w for t, +w for the +inf class, 0 elsewhere. */
        {
            const double x[4] = { 1.0, INFINITY, -2.0, -INFINITY };
            ref_softmax_focal(x, 4, 0, g, 0.5, &loss, grad);
            ck_assert(loss == INFINITY);
            ck_assert(grad[0] == -0.5 && grad[1] == 0.5 && grad[2] == 0.0 && grad[3] == 0.0);
        }
        /* The target's logit -inf, others finite: p_t = 0, loss inf, and the same limit
         * dl/dx_k = w (p_k - delta) with p_k the softmax of the other logits. */
        {
            const double x[3] = { -INFINITY, 0.0, LN2 }; /* others: p = 1/3, 2/3 */
            ref_softmax_focal(x, 3, 0, g, 1.0, &loss, grad);
            ck_assert(loss == INFINITY);
            ASSERT_NEAR(grad[0], -1.0, 1e-15, "softmax x_t=-inf grad t");
            ASSERT_NEAR(grad[1], 1.0 / 3.0, 1e-15, "softmax x_t=-inf grad 1");
            ASSERT_NEAR(grad[2], 2.0 / 3.0, 1e-15, "softmax x_t=-inf grad 2");
        }
        /* A -inf logit elsewhere just has probability 0: same as leaving it out. */
        {
            const double x[3] = { 0.5, -INFINITY, -1.0 };
            const double x2[2] = { 0.5, -1.0 };
            double loss2, grad2[2];
            ref_softmax_focal(x, 3, 2, g, 1.0, &loss, grad);
            ref_softmax_focal(x2, 2, 1, g, 1.0, &loss2, grad2);
            ck_assert(loss == loss2 && grad[0] == grad2[0] && grad[2] == grad2[1]);
            ck_assert(grad[1] == 0.0);
        }
    }
    /* No limit: two +inf logits with the target among them, or every logit -inf. */
    {
        const double x[3] = { INFINITY, INFINITY, 0.0 };
        ref_softmax_focal(x, 3, 0, 2.0, 1.0, &loss, grad);
        ck_assert(isnan(loss) && isnan(grad[0]) && isnan(grad[1]) && isnan(grad[2]));
        /* target not among them: loss inf, target gradient -w, +inf classes undetermined */
        ref_softmax_focal(x, 3, 2, 2.0, 1.0, &loss, grad);
        ck_assert(loss == INFINITY && grad[2] == -1.0 && isnan(grad[0]) && isnan(grad[1]));
    }
    {
        const double x[2] = { -INFINITY, -INFINITY };
        ref_softmax_focal(x, 2, 0, 2.0, 1.0, &loss, grad);
        ck_assert(isnan(loss) && isnan(grad[0]) && isnan(grad[1]));
    }
    /* Large finite logits: no overflow, and the same values as the limits. */
    {
        const double x[3] = { 1e30, -1e30, 0.0 };
        ref_softmax_focal(x, 3, 0, 2.0, 1.0, &loss, grad);
        ck_assert(loss == 0.0 && grad[0] == 0.0 && grad[1] == 0.0 && grad[2] == 0.0);
        ref_softmax_focal(x, 3, 2, 2.0, 1.0, &loss, grad);
        ASSERT_NEAR(loss, 1e30, 1e-15, "softmax large loss");
        ck_assert(grad[0] == 1.0 && grad[1] == 0.0 && grad[2] == -1.0);
    }
}
END_TEST

START_TEST(test_no_nan_at_extremes)
{
    /* Every finite-limit case above, swept over parameters: +-inf, beyond double's exp
     * range, and the ends of the SPEC's domain never give NaN. */
    const double xs[] = { INFINITY, -INFINITY, 1e30, -1e30, 800.0, -800.0, 100.0, -100.0 };
    const double gammas[] = { 0.0, 0.5, 1.0, 2.0, 2.5 };
    for (int i = 0; i < 8; i++) {
        double x = xs[i];
        for (int iy = 0; iy < N_TARGETS; iy++) {
            double y = targets[iy];
            for (int ia = 0; ia < N_PF_ALPHA; ia++) {
                for (int ib = 0; ib < N_PF_BETA; ib++) {
                    for (int mode = 0; mode <= 2; mode += 2) {
                        ref_value v = ref_penalty_focal(x, y, pf_alpha[ia], pf_beta[ib], 1.0,
                                                        1.0, mode, 1e-4);
                        ck_assert_msg(!isnan(v.loss) && !isnan(v.grad),
                                      "penalty mode %d x %g y %g", mode, x, y);
                        if (mode == 2) {
                            ck_assert(isfinite(v.loss));
                        }
                    }
                }
            }
            for (int ig = 0; ig < 5; ig++) {
                for (double alpha = -1.0; alpha <= 1.0; alpha += 0.25) {
                    ref_value v = ref_sigmoid_focal(x, y, gammas[ig], alpha);
                    ck_assert_msg(!isnan(v.loss) && !isnan(v.grad), "sigmoid focal x %g y %g",
                                  x, y);
                    ck_assert(!isnan(ref_sigmoid_focal_grad_scale(x, y, gammas[ig], alpha)));
                    ck_assert(isfinite(v.grad));
                }
            }
            ref_value b = ref_bce(x, y, 3.0);
            ck_assert(!isnan(b.loss) && isfinite(b.grad));
            ref_value m = ref_mse(x, y, 1.0);
            ck_assert(!isnan(m.loss) && !isnan(m.grad));
        }
    }
}
END_TEST

START_TEST(test_nan_propagation)
{
    for (int mode = 0; mode <= 2; mode++) {
        ref_value v = ref_penalty_focal(NAN, 1.0, 2.0, 4.0, 1.0, 1.0, mode, 1e-4);
        ck_assert(isnan(v.loss) && isnan(v.grad));
        v = ref_penalty_focal(NAN, 0.5, 2.0, 4.0, 0.0, 0.0, mode, 1e-4); /* even weight 0 */
        ck_assert(isnan(v.loss) && isnan(v.grad));
        v = ref_penalty_focal(0.5, NAN, 2.0, 0.0, 1.0, 1.0, mode, 1e-4); /* NaN target */
        ck_assert(isnan(v.loss) && isnan(v.grad));
    }
    ref_value v = ref_sigmoid_focal(NAN, 1.0, 2.0, 0.25);
    ck_assert(isnan(v.loss) && isnan(v.grad));
    ck_assert(isnan(ref_sigmoid_focal_grad_scale(NAN, 0.0, 2.0, 0.25)));
    v = ref_sigmoid_focal(0.0, NAN, 2.0, -1.0);
    ck_assert(isnan(v.loss) && isnan(v.grad));
    v = ref_bce(NAN, 0.0, 1.0);
    ck_assert(isnan(v.loss) && isnan(v.grad));
    ck_assert(isnan(ref_bce_grad_scale(NAN, 0.0, 1.0)));
    v = ref_mse(NAN, 0.0, 0.0);
    ck_assert(isnan(v.loss) && isnan(v.grad));

    /* A NaN logit anywhere in a pixel makes the whole pixel NaN (the softmax mixes all). */
    double loss, grad[3], scale[3];
    const double x[3] = { 0.0, NAN, INFINITY };
    ref_softmax_focal(x, 3, 0, 2.0, 1.0, &loss, grad);
    ck_assert(isnan(loss) && isnan(grad[0]) && isnan(grad[1]) && isnan(grad[2]));
    ref_softmax_focal_grad_scale(x, 3, 0, 2.0, 1.0, scale);
    ck_assert(isnan(scale[0]) && isnan(scale[2]));
}
END_TEST

/* ---- (d) ULP distance ---------------------------------------------------------------- */

START_TEST(test_ulp_normal)
{
    /* Floats next to each other are 1 apart; the spacing in [1, 2) is 2^-23. */
    ck_assert(ref_ulp_error(1.0f, 1.0) == 0.0);
    ck_assert(ref_ulp_error(nextafterf(1.0f, 2.0f), 1.0) == 1.0);
    ck_assert(ref_ulp_error(1.0f, 1.0 + 0x1p-24) == 0.5);
    ck_assert(ref_ulp_error(1.0f, 1.0 + 3 * 0x1p-23) == 3.0);
    /* The spacing is that at ref: below 1 it halves. */
    ck_assert(ref_ulp_error(1.0f, 1.0 - 0x1p-24) == 1.0);
    ck_assert(ref_ulp_error(-1.5f, -1.5 - 0x1p-22) == 2.0);
    /* 0.1 rounds to the nearest float, within half a unit. */
    ck_assert(ref_ulp_error(0.1f, 0.1) <= 0.5);
    ck_assert(ref_ulp_error(nextafterf(0.1f, 1.0f), 0.1) > 0.5);
    /* Large values: spacing 2^104 in the top binade. */
    ck_assert(ref_ulp_error(FLT_MAX, (double)FLT_MAX) == 0.0);
    ck_assert(ref_ulp_error(nextafterf(FLT_MAX, 0.0f), (double)FLT_MAX) == 1.0);
    /* Signed zeros are equal. */
    ck_assert(ref_ulp_error(-0.0f, 0.0) == 0.0);
    ck_assert(ref_ulp_error(0.0f, -0.0) == 0.0);
}
END_TEST

START_TEST(test_ulp_subnormal)
{
    /* Below 2^-126 the spacing is 2^-149 everywhere. */
    const float tiny = 0x1p-149f;
    ck_assert(ref_ulp_error(0.0f, 0x1p-149) == 1.0);
    ck_assert(ref_ulp_error(0.0f, 3 * 0x1p-149) == 3.0);
    ck_assert(ref_ulp_error(2 * tiny, 0x1p-149) == 1.0);
    ck_assert(ref_ulp_error(FLT_MIN, 0x1p-126 - 0x1p-149) == 1.0);
    ck_assert(ref_ulp_error(0.0f, 0x1p-160) == 0x1p-11);
    /* At FLT_MIN itself the spacing is still 2^-149 (normal binade [2^-126, 2^-125)). */
    ck_assert(ref_ulp_error(nextafterf(FLT_MIN, 1.0f), 0x1p-126) == 1.0);
    /* Above it, 2^-148. */
    ck_assert(ref_ulp_error(FLT_MIN, 0x1p-125) == 0x1p-126 / 0x1p-148);
}
END_TEST

START_TEST(test_ulp_special)
{
    ck_assert(ref_ulp_error(NAN, NAN) == 0.0);
    ck_assert(ref_ulp_error(-NAN, NAN) == 0.0);
    ck_assert(ref_ulp_error(INFINITY, INFINITY) == 0.0);
    ck_assert(ref_ulp_error(-INFINITY, -INFINITY) == 0.0);
    ck_assert(isinf(ref_ulp_error(INFINITY, -INFINITY)));
    ck_assert(isinf(ref_ulp_error(NAN, 1.0)));
    ck_assert(isinf(ref_ulp_error(1.0f, NAN)));
    ck_assert(isinf(ref_ulp_error(NAN, INFINITY)));
    ck_assert(isinf(ref_ulp_error(INFINITY, NAN)));
    ck_assert(isinf(ref_ulp_error(FLT_MAX, INFINITY)));
    ck_assert(isinf(ref_ulp_error(INFINITY, (double)FLT_MAX)));
    ck_assert(isinf(ref_ulp_error(1.0f, -INFINITY)));
    /* A ref that rounds to infinity in float counts as infinity. */
    ck_assert(ref_ulp_error(INFINITY, 1e300) == 0.0);
    ck_assert(ref_ulp_error(-INFINITY, -0x1p128) == 0.0);
    ck_assert(ref_ulp_error(INFINITY, 0x1p128 - 0x1p103) == 0.0);
    ck_assert(isinf(ref_ulp_error(FLT_MAX, 1e300)));
    /* Just below the threshold, ref still rounds to FLT_MAX: within half a unit. */
    ck_assert(ref_ulp_error(FLT_MAX, 0x1p128 - 0x1p103 - 0x1p76) < 0.5);
    ck_assert(isinf(ref_ulp_error(INFINITY, 0x1p128 - 0x1p103 - 0x1p76)));
}
END_TEST

/* ---- driver -------------------------------------------------------------------------- */

static Suite *reference_suite(void)
{
    Suite *s = suite_create("reference");

    TCase *fd = tcase_create("finite_differences");
    tcase_set_timeout(fd, 60);
    tcase_add_test(fd, test_fd_penalty_logits);
    tcase_add_test(fd, test_fd_penalty_probabilities);
    tcase_add_test(fd, test_fd_penalty_clamped);
    tcase_add_test(fd, test_fd_sigmoid_focal);
    tcase_add_test(fd, test_fd_bce);
    tcase_add_test(fd, test_fd_mse);
    tcase_add_test(fd, test_fd_softmax_focal);
    suite_add_tcase(s, fd);

    TCase *known = tcase_create("known_values");
    tcase_add_test(known, test_known_penalty);
    tcase_add_test(known, test_penalty_modes_agree);
    tcase_add_test(known, test_known_bce);
    tcase_add_test(known, test_known_sigmoid_focal);
    tcase_add_test(known, test_known_softmax_focal);
    tcase_add_test(known, test_known_mse);
    tcase_add_test(known, test_grad_scale);
    suite_add_tcase(s, known);

    TCase *limits = tcase_create("limits");
    tcase_add_test(limits, test_limits_penalty_logits);
    tcase_add_test(limits, test_limits_penalty_other_modes);
    tcase_add_test(limits, test_limits_sigmoid_focal);
    tcase_add_test(limits, test_limits_bce);
    tcase_add_test(limits, test_limits_mse);
    tcase_add_test(limits, test_limits_softmax_focal);
    tcase_add_test(limits, test_no_nan_at_extremes);
    tcase_add_test(limits, test_nan_propagation);
    suite_add_tcase(s, limits);

    TCase *ulp = tcase_create("ulp_error");
    tcase_add_test(ulp, test_ulp_normal);
    tcase_add_test(ulp, test_ulp_subnormal);
    tcase_add_test(ulp, test_ulp_special);
    suite_add_tcase(s, ulp);

    return s;
}

int main(void)
{
    SRunner *runner = srunner_create(reference_suite());
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
