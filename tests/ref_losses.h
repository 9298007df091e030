/*
 * ref_losses.h — double-precision reference for every loss of SPEC section 2.
 *
 * The float kernels are tested against these functions: each takes the kernel's float
 * inputs converted to double and evaluates the SPEC formula per element in double, with
 * libm's double exp, log, log1p and pow.  Nothing here shares code with the library, so a
 * formula error in one cannot hide the same error in the other.
 *
 * Notation (SPEC 1): p = sigmoid(x), q = 1 - p = sigmoid(-x) (always computed as
 * sigmoid(-x), never as 1 - p), softplus(z) = max(z, 0) + log1p(exp(-|z|)), so
 * -log p = softplus(-x) and -log q = softplus(x).  A target is positive when y == 1.
 *
 * Special values (SPEC 5): every function gives
 *   - NaN loss and NaN gradient when x or y is NaN;
 *   - at x = +-inf, the mathematical limit of the loss and of the gradient as x tends to
 *     +-inf (+inf for a loss that grows without bound).  Products such as q * softplus(x)
 *     that the formulas write as 0 * inf at x = +inf are taken at their limit (0 here:
 *     q vanishes exponentially while softplus grows linearly);
 *   - a term whose constant coefficient is exactly zero (pos_weight = 0, neg_weight = 0,
 *     (1-y)^beta = 0, a_t = 0, w = 0, alpha = 0 in a derivative term) is exactly zero for
 *     every non-NaN input, infinite ones included, because the function it multiplies is
 *     then identically zero;
 *   - an argument with no meaning (an unknown mode, eps outside (0, 0.5), a probability
 *     outside [0, 1], a label outside 0..c-1) gives NaN.
 *   Exponents and weights are otherwise not validated: the library does that.
 */
#ifndef DAFL_TESTS_REF_LOSSES_H
#define DAFL_TESTS_REF_LOSSES_H

typedef struct {
    double loss, grad;
} ref_value;

/* Input modes of the penalty-reduced focal loss (same values as dafl_input_mode). */
#define REF_MODE_LOGITS 0
#define REF_MODE_PROBABILITIES 1
#define REF_MODE_CLAMPED_LOGITS 2

/* SPEC 2.1, penalty-reduced focal loss of one element:
 *     y == 1:  l = pos_weight * q^alpha * (-log p)
 *     y <  1:  l = neg_weight * (1-y)^beta * p^alpha * (-log q)
 * mode REF_MODE_LOGITS: x is the logit, grad = dl/dx.
 * mode REF_MODE_PROBABILITIES: x is p itself (in [0, 1]), q = 1 - p, grad = dl/dp.
 * mode REF_MODE_CLAMPED_LOGITS: p = clamp(sigmoid(x), eps, 1-eps) in exact arithmetic
 *     (eps in (0, 0.5)); the loss takes -log of the clamped p and q; grad = 0 where the
 *     clamp is active (sigmoid(x) < eps or sigmoid(x) > 1-eps), else the logits gradient.
 *     At infinite x the clamp is active, so loss and gradient are finite.
 * eps is read only in the clamped mode. */
ref_value ref_penalty_focal(double x, double y, double alpha, double beta, double pos_weight,
                            double neg_weight, int mode, double eps);

/* SPEC 2.2, sigmoid focal loss of one element (soft targets allowed):
 *     ce = y*softplus(-x) + (1-y)*softplus(x),  m = y*q + (1-y)*p,
 *     a_t = alpha*y + (1-alpha)*(1-y)  (1 when alpha < 0),  l = a_t * m^gamma * ce,
 *     dl/dx = a_t * (gamma * m^(gamma-1) * p*q*(1-2y) * ce + m^gamma * (p - y)). */
ref_value ref_sigmoid_focal(double x, double y, double gamma, double alpha);

/* max(|term1|, |term2|) of the sigmoid focal gradient above, term1 = a_t * gamma *
 * m^(gamma-1) * p*q*(1-2y) * ce, term2 = a_t * m^gamma * (p - y): the scale that SPEC 5's
 * "16 ULP of the largest term" refers to, where the two terms cancel (p near y).  Taken
 * at the limit for infinite x; NaN for NaN x or y. */
double ref_sigmoid_focal_grad_scale(double x, double y, double gamma, double alpha);

/* SPEC 2.3, binary cross-entropy with logits of one element:
 *     l = pos_weight*y*softplus(-x) + (1-y)*softplus(x),  dl/dx = (1-y)*p - pos_weight*y*q. */
ref_value ref_bce(double x, double y, double pos_weight);

/* max(|(1-y)*p|, |pos_weight*y*q|), the two terms of the BCE gradient, which cancel for a
 * soft target near p == y. */
double ref_bce_grad_scale(double x, double y, double pos_weight);

/* SPEC 2.5, heatmap MSE of one element: l = w*(x-y)^2, dl/dx = 2*w*(x-y). */
ref_value ref_mse(double x, double y, double w);

/* SPEC 2.4, softmax focal loss of one pixel with c >= 1 classes x[0..c-1], label t:
 *     s = log_softmax(x)[t],  p_t = exp(s),  m = 1 - p_t = sum_{k != t} p_k,
 *     l = -w_t * m^gamma * s,
 *     dl/dx_k = w_t * (delta(k,t) - p_k) * (gamma * m^(gamma-1) * p_t * s - m^gamma).
 * Writes *loss and grad[0..c-1].  Infinite logits: one +inf logit takes all the
 * probability (the limit); two or more +inf logits have no limit for p, so the loss is NaN
 * when t is among them, and otherwise +inf with NaN gradients on the +inf classes (the
 * other gradients are finite limits).  All logits -inf: NaN.  Any NaN logit: all NaN. */
void ref_softmax_focal(const double *x, int c, int t, double gamma, double w_t, double *loss,
                       double *grad);

/* Per class k, the largest of the two terms of dl/dx_k above:
 *     scale[k] = max(|w_t (delta-p_k) gamma m^(gamma-1) p_t s|, |w_t (delta-p_k) m^gamma|).
 * (The two terms have the same sign in exact arithmetic, so this is at least half of
 * |dl/dx_k|; it is the scale for SPEC 5's bound on a kernel that forms 1 - p_t.) */
void ref_softmax_focal_grad_scale(const double *x, int c, int t, double gamma, double w_t,
                                  double *scale);

/* |got - ref| in units of the spacing of float32 numbers at |ref|: 2^(e-23) for |ref| in
 * [2^e, 2^(e+1)), 2^-149 below 2^-126 (subnormals and zero).  0 when both are NaN or
 * both are the same infinity; +inf when one is NaN or infinite and the other is not.
 * A finite ref at or beyond 2^128 - 2^103 (where rounding to float gives infinity) counts
 * as that infinity.  -0 and +0 are equal. */
double ref_ulp_error(float got, double ref);

#endif /* DAFL_TESTS_REF_LOSSES_H */
