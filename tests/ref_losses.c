/*
 * ref_losses.c — double-precision reference for the losses of SPEC section 2.
 *
 * Every formula is the SPEC's, evaluated in double with libm.  The only liberties taken
 * are rewritings that are exact in real arithmetic and remove a cancellation or a 0 * inf
 * at the ends of the domain; each is stated where it is made.  See ref_losses.h for the
 * conventions at NaN and infinite inputs.
 */
#include "ref_losses.h"

#include <math.h>

static const ref_value ref_nan_value = { NAN, NAN };
static const ref_value ref_zero_value = { 0.0, 0.0 };

/* softplus(z) = max(z, 0) + log1p(exp(-|z|)): no overflow for any z, and exact limits
 * softplus(+inf) = +inf, softplus(-inf) = 0 + log1p(0) = 0.  NaN gives NaN. */
static double softplus(double z)
{
    return (z > 0.0 ? z : 0.0) + log1p(exp(-fabs(z)));
}

/* sigmoid(x) = 1 / (1 + exp(-x)), evaluated so that exp never overflows:
 * for x < 0 it is e / (1 + e) with e = exp(x).  sigmoid(-inf) = 0, sigmoid(+inf) = 1. */
static double sigmoid(double x)
{
    if (x >= 0.0) {
        return 1.0 / (1.0 + exp(-x));
    }
    double e = exp(x);
    return e / (1.0 + e);
}

/* a * b, except that a == 0 gives 0 even when b is infinite.  Used in two situations,
 * each noted at the call:
 *   - a is p or q (or a product with one) and b a softplus or a log: at x = +-inf the
 *     product is 0 * inf, but its limit is 0, since p or q vanishes like exp(-|x|) while
 *     b grows like |x|;
 *   - a is a constant coefficient that is exactly zero: the term is then identically zero
 *     as a function of the input, so its value and its limit are 0. */
static double mul0(double a, double b)
{
    return a == 0.0 ? 0.0 : a * b;
}

/* ---- 2.1 penalty-reduced focal loss ------------------------------------------------- */

/* Logits mode.  With lp = -log p = softplus(-x) and lq = -log q = softplus(x):
 *     y == 1:  l = pw * q^alpha * lp,        dl/dx = -pw * q^alpha * (q + alpha * p * lp)
 *     y <  1:  l = w * p^alpha * lq,         dl/dx =  w * p^alpha * (p + alpha * q * lq)
 * with w = neg_weight * (1-y)^beta.  (d/dx of q^alpha is -alpha q^alpha p, of lp is -q;
 * d/dx of p^alpha is alpha p^alpha q, of lq is p.)  p * lp and q * lq are taken at their
 * limit 0 when p or q is 0 (x = -inf, resp. x = +inf, or beyond double's exp range). */
static ref_value penalty_logits(double x, double y, double alpha, double beta, double pw,
                                double nw)
{
    ref_value r;
    double p = sigmoid(x);
    double q = sigmoid(-x);
    if (y == 1.0) {
        if (pw == 0.0) {
            return ref_zero_value;
        }
        double qa = pow(q, alpha);
        double lp = softplus(-x);
        r.loss = pw * qa * lp;
        r.grad = -pw * qa * (q + alpha * mul0(p, lp));
    } else {
        double w = nw * pow(1.0 - y, beta);
        if (w == 0.0) {
            return ref_zero_value;
        }
        double pa = pow(p, alpha);
        double lq = softplus(x);
        r.loss = w * pa * lq;
        r.grad = w * pa * (p + alpha * mul0(q, lq));
    }
    return r;
}

/* Probabilities mode: the input is p, q = 1 - p, -log p = -log(p), -log q = -log1p(-p).
 *     y == 1:  l = pw * q^alpha * (-log p),
 *              dl/dp = -pw * (alpha * q^(alpha-1) * (-log p) + q^alpha / p)
 *     y <  1:  l = w * p^alpha * (-log q),
 *              dl/dp =  w * (alpha * p^(alpha-1) * (-log q) + p^alpha / q)
 * At the ends of [0, 1] the alpha-terms are 0 * inf or inf * 0 when written this way;
 * their limits are 0: near p = 1, -log p ~ q so alpha q^(alpha-1) (-log p) ~ alpha q^alpha,
 * and near p = 0, -log q ~ p so alpha p^(alpha-1) (-log q) ~ alpha p^alpha. */
static ref_value penalty_probabilities(double p, double y, double alpha, double beta,
                                       double pw, double nw)
{
    if (!(p >= 0.0 && p <= 1.0)) {
        return ref_nan_value; /* not a probability */
    }
    ref_value r;
    double q = 1.0 - p;
    double lp = -log(p);
    double lq = -log1p(-p);
    if (y == 1.0) {
        if (pw == 0.0) {
            return ref_zero_value;
        }
        double qa = pow(q, alpha);
        double t1 = (q == 0.0) ? 0.0 : mul0(alpha, pow(q, alpha - 1.0) * lp);
        r.loss = pw * qa * lp;
        r.grad = -pw * (t1 + qa / p);
    } else {
        double w = nw * pow(1.0 - y, beta);
        if (w == 0.0) {
            return ref_zero_value;
        }
        double pa = pow(p, alpha);
        double t1 = (p == 0.0) ? 0.0 : mul0(alpha, pow(p, alpha - 1.0) * lq);
        r.loss = w * pa * lq;
        r.grad = w * (t1 + pa / q);
    }
    return r;
}

/* Clamped-logits mode (CenterNet): p = clamp(sigmoid(x), eps, 1-eps).
 * sigmoid(x) < eps exactly when x < logit(eps) = log(eps) - log1p(-eps), and
 * sigmoid(x) > 1-eps exactly when -x < logit(eps), so the clamp is decided on x against
 * logit(eps) (rounded once, in double) rather than on a rounded sigmoid.  Where the clamp
 * is active, p and q are eps and 1-eps (or the reverse), -log eps = -log(eps) and
 * -log(1-eps) = -log1p(-eps), and the gradient is 0, as torch.clamp's is; on the boundary
 * itself the clamp is inactive.  Elsewhere this is exactly the logits mode. */
static ref_value penalty_clamped(double x, double y, double alpha, double beta, double pw,
                                 double nw, double eps)
{
    if (!(eps > 0.0 && eps < 0.5)) {
        return ref_nan_value;
    }
    double lo = log(eps) - log1p(-eps);
    double p, q, lp, lq;
    if (x < lo) {
        p = eps;
        q = 1.0 - eps;
        lp = -log(eps);
        lq = -log1p(-eps);
    } else if (-x < lo) {
        p = 1.0 - eps;
        q = eps;
        lp = -log1p(-eps);
        lq = -log(eps);
    } else {
        return penalty_logits(x, y, alpha, beta, pw, nw);
    }
    ref_value r = { 0.0, 0.0 };
    if (y == 1.0) {
        r.loss = mul0(pw, pow(q, alpha) * lp);
    } else {
        r.loss = mul0(nw * pow(1.0 - y, beta), pow(p, alpha) * lq);
    }
    return r;
}

ref_value ref_penalty_focal(double x, double y, double alpha, double beta, double pos_weight,
                            double neg_weight, int mode, double eps)
{
    if (isnan(x) || isnan(y)) {
        return ref_nan_value;
    }
    switch (mode) {
    case REF_MODE_LOGITS:
        return penalty_logits(x, y, alpha, beta, pos_weight, neg_weight);
    case REF_MODE_PROBABILITIES:
        return penalty_probabilities(x, y, alpha, beta, pos_weight, neg_weight);
    case REF_MODE_CLAMPED_LOGITS:
        return penalty_clamped(x, y, alpha, beta, pos_weight, neg_weight, eps);
    default:
        return ref_nan_value;
    }
}

/* ---- 2.2 sigmoid focal loss ---------------------------------------------------------- */

typedef struct {
    double loss;
    double term1; /* a_t * gamma * m^(gamma-1) * p*q*(1-2y) * ce */
    double term2; /* a_t * m^gamma * (p - y) */
} sigmoid_focal_parts;

/* ce = y*lp + (1-y)*lq with lp = softplus(-x), lq = softplus(x); a zero target weight
 * drops its term, so y = 1 at x = +inf gives ce = 0, not 0 * inf.
 * m = y*q + (1-y)*p, a sum of non-negative terms (no cancellation).
 * term1 is rewritten with r = p*q/m, so that m^(gamma-1) is never formed:
 *     gamma * m^(gamma-1) * p*q = gamma * m^gamma * r,
 * where r = p for y == 1 (m = q), r = q for y == 0 (m = p), and p*q/m otherwise (then
 * m >= min(y, 1-y) > 0).  r * ce is taken at its limit 0 when r == 0 (x infinite).
 * p - y is evaluated as (1-y)*p - y*q, which is exact in real arithmetic and gives -q and
 * p, without cancellation, for the hard targets. */
static sigmoid_focal_parts sigmoid_focal_eval(double x, double y, double gamma, double alpha)
{
    sigmoid_focal_parts f;
    if (isnan(x) || isnan(y)) {
        f.loss = f.term1 = f.term2 = NAN;
        return f;
    }
    double at = alpha < 0.0 ? 1.0 : alpha * y + (1.0 - alpha) * (1.0 - y);
    if (at == 0.0) {
        f.loss = f.term1 = f.term2 = 0.0;
        return f;
    }
    double p = sigmoid(x);
    double q = sigmoid(-x);
    double ce = mul0(y, softplus(-x)) + mul0(1.0 - y, softplus(x));
    double m = y * q + (1.0 - y) * p;
    double r = (y == 1.0) ? p : (y == 0.0) ? q : p * q / m;
    double mg = pow(m, gamma);
    f.loss = at * mg * ce;
    f.term1 = at * gamma * mg * mul0(r, ce) * (1.0 - 2.0 * y);
    f.term2 = at * mg * ((1.0 - y) * p - y * q);
    return f;
}

ref_value ref_sigmoid_focal(double x, double y, double gamma, double alpha)
{
    sigmoid_focal_parts f = sigmoid_focal_eval(x, y, gamma, alpha);
    ref_value r = { f.loss, f.term1 + f.term2 };
    return r;
}

double ref_sigmoid_focal_grad_scale(double x, double y, double gamma, double alpha)
{
    sigmoid_focal_parts f = sigmoid_focal_eval(x, y, gamma, alpha);
    if (isnan(f.term1) || isnan(f.term2)) {
        return NAN;
    }
    return fmax(fabs(f.term1), fabs(f.term2));
}

/* ---- 2.3 binary cross-entropy with logits ------------------------------------------- */

/* l = pw*y*softplus(-x) + (1-y)*softplus(x), dl/dx = (1-y)*p - pw*y*q.  A zero coefficient
 * drops its term (x = +inf, y = 1 costs 0, not 0 * inf). */
ref_value ref_bce(double x, double y, double pos_weight)
{
    if (isnan(x) || isnan(y)) {
        return ref_nan_value;
    }
    double p = sigmoid(x);
    double q = sigmoid(-x);
    ref_value r;
    r.loss = mul0(pos_weight * y, softplus(-x)) + mul0(1.0 - y, softplus(x));
    r.grad = (1.0 - y) * p - pos_weight * y * q;
    return r;
}

double ref_bce_grad_scale(double x, double y, double pos_weight)
{
    if (isnan(x) || isnan(y)) {
        return NAN;
    }
    return fmax(fabs((1.0 - y) * sigmoid(x)), fabs(pos_weight * y * sigmoid(-x)));
}

/* ---- 2.5 heatmap MSE ----------------------------------------------------------------- */

/* l = w*(x-y)^2, dl/dx = 2*w*(x-y).  x - y of two floats is exact in double unless their
 * exponents differ by more than 29. */
ref_value ref_mse(double x, double y, double w)
{
    if (isnan(x) || isnan(y)) {
        return ref_nan_value;
    }
    if (w == 0.0) {
        return ref_zero_value;
    }
    double d = x - y;
    ref_value r = { w * d * d, 2.0 * w * d };
    return r;
}

/* ---- 2.4 softmax focal loss ---------------------------------------------------------- */

enum { SOFTMAX_NAN, SOFTMAX_ZERO, SOFTMAX_VALUES };

typedef struct {
    double s;  /* log_softmax(x)[t] */
    double m;  /* 1 - p_t = sum_{k != t} p_k */
    double pt; /* p_t */
} softmax_parts;

/* Fills pk[0..c-1] with the softmax and *sp with s, m, p_t, or says the result is all NaN
 * or all zero.  Finite case: with M = max_k x_k at index a and e_k = exp(x_k - M),
 *     T = sum_{k != a} e_k,   log sum_k exp(x_k) = M + log1p(T),
 *     s = (x_t - M) - log1p(T)    (two non-positive terms, no cancellation),
 *     p_k = e_k / (1 + T),   m = (sum_{k != t} e_k) / (1 + T),
 * so that m is accurate even when p_t rounds to 1 (m = 1 - p_t would cancel).
 * +inf logits: a single one takes probability 1 (the limit); if the target is among two
 * or more, p_t has no limit (NaN); if it is not, p_t -> 0, s -> -inf, m -> 1, and only the
 * split of the probability among the +inf classes is undetermined (NaN p_k there). */
static int softmax_eval(const double *x, int c, int t, double w, double *pk, softmax_parts *sp)
{
    if (c < 1 || t < 0 || t >= c) {
        return SOFTMAX_NAN;
    }
    int n_pos_inf = 0;
    int a = 0;
    for (int k = 0; k < c; k++) {
        if (isnan(x[k])) {
            return SOFTMAX_NAN;
        }
        if (x[k] == INFINITY) {
            n_pos_inf++;
        }
        if (x[k] > x[a]) {
            a = k;
        }
    }
    if (w == 0.0) {
        return SOFTMAX_ZERO;
    }
    if (n_pos_inf > 0) {
        if (x[t] == INFINITY) {
            if (n_pos_inf > 1) {
                return SOFTMAX_NAN;
            }
            for (int k = 0; k < c; k++) {
                pk[k] = (k == t) ? 1.0 : 0.0;
            }
            sp->s = 0.0;
            sp->m = 0.0;
            sp->pt = 1.0;
            return SOFTMAX_VALUES;
        }
        for (int k = 0; k < c; k++) {
            pk[k] = (x[k] == INFINITY) ? (n_pos_inf == 1 ? 1.0 : NAN) : 0.0;
        }
        sp->s = -INFINITY;
        sp->m = 1.0;
        sp->pt = 0.0;
        return SOFTMAX_VALUES;
    }
    double mx = x[a];
    if (mx == -INFINITY) {
        return SOFTMAX_NAN; /* every logit -inf: no limit */
    }
    double sum_not_a = 0.0;
    double sum_not_t = 0.0;
    for (int k = 0; k < c; k++) {
        pk[k] = exp(x[k] - mx);
        if (k != a) {
            sum_not_a += pk[k];
        }
        if (k != t) {
            sum_not_t += pk[k];
        }
    }
    double total = 1.0 + sum_not_a;
    for (int k = 0; k < c; k++) {
        pk[k] /= total;
    }
    sp->s = (x[t] - mx) - log1p(sum_not_a);
    sp->m = sum_not_t / total;
    sp->pt = pk[t];
    return SOFTMAX_VALUES;
}

/* The two factors of the gradient, dl/dx_k = w * (delta(k,t) - p_k) * (A - B):
 *     A = gamma * m^(gamma-1) * p_t * s = gamma * m^gamma * p_t * (s / m),   B = m^gamma.
 * s / m tends to -1 as m -> 0 (s = log(1 - m) ~ -m), which is its value when m == 0
 * (c == 1, or p_t == 1 in double); p_t * (s/m) is taken at its limit 0 when p_t == 0
 * (x_t = -inf, or another logit +inf).  A <= 0 <= B, so A - B does not cancel. */
static void softmax_factors(const softmax_parts *sp, double gamma, double *A, double *B)
{
    double mg = pow(sp->m, gamma);
    double s_over_m = (sp->m == 0.0) ? -1.0 : sp->s / sp->m;
    *A = gamma * mg * mul0(sp->pt, s_over_m);
    *B = mg;
}

void ref_softmax_focal(const double *x, int c, int t, double gamma, double w_t, double *loss,
                       double *grad)
{
    softmax_parts sp;
    int kind = softmax_eval(x, c, t, w_t, grad, &sp);
    if (kind != SOFTMAX_VALUES) {
        double v = (kind == SOFTMAX_NAN) ? NAN : 0.0;
        *loss = v;
        for (int k = 0; k < c; k++) {
            grad[k] = v;
        }
        return;
    }
    double A, B;
    softmax_factors(&sp, gamma, &A, &B);
    /* m^gamma is 0 only when m == 0, and then s == 0: the product is never 0 * inf. */
    *loss = -w_t * pow(sp.m, gamma) * sp.s;
    for (int k = 0; k < c; k++) {
        /* delta(k,t) - p_k, with 1 - p_t taken as m (no cancellation) */
        double d = (k == t) ? sp.m : -grad[k];
        grad[k] = w_t * d * (A - B);
    }
}

void ref_softmax_focal_grad_scale(const double *x, int c, int t, double gamma, double w_t,
                                  double *scale)
{
    softmax_parts sp;
    int kind = softmax_eval(x, c, t, w_t, scale, &sp);
    if (kind != SOFTMAX_VALUES) {
        double v = (kind == SOFTMAX_NAN) ? NAN : 0.0;
        for (int k = 0; k < c; k++) {
            scale[k] = v;
        }
        return;
    }
    double A, B;
    softmax_factors(&sp, gamma, &A, &B);
    double big = fmax(fabs(A), fabs(B));
    for (int k = 0; k < c; k++) {
        double d = (k == t) ? sp.m : scale[k];
        scale[k] = fabs(w_t) * fabs(d) * big;
    }
}

/* ---- ULP distance -------------------------------------------------------------------- */

double ref_ulp_error(float got, double ref)
{
    /* Beyond the float overflow threshold, round-to-nearest gives infinity. */
    const double overflow = 0x1p128 - 0x1p103;
    double g = (double)got;
    if (isfinite(ref) && fabs(ref) >= overflow) {
        ref = copysign(INFINITY, ref);
    }
    if (isnan(g) || isnan(ref)) {
        return (isnan(g) && isnan(ref)) ? 0.0 : INFINITY;
    }
    if (isinf(g) || isinf(ref)) {
        return (g == ref) ? 0.0 : INFINITY;
    }
    double a = fabs(ref);
    double spacing;
    if (a < 0x1p-126) {
        spacing = 0x1p-149; /* subnormal floats (and zero) are evenly spaced */
    } else {
        int e;
        (void)frexp(a, &e); /* a = f * 2^e, f in [0.5, 1): a lies in [2^(e-1), 2^e) */
        spacing = ldexp(1.0, e - 1 - 23);
    }
    return fabs(g - ref) / spacing;
}
