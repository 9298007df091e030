/*
 * Softmax focal loss (SPEC 2.4): the per-pixel math, written once with the vector
 * operations of src/kernels/loss_kernels.h and included from there.
 */
/* ---- 2.4 softmax focal loss ---------------------------------------------------------- */
/* Per pixel, with mx = max_k x_k, e_k = exp(x_k - mx), S = sum_k e_k:
 *   s = (x_t - mx) - log S,  p_t = e_t / S,  m = 1 - p_t = (sum_{k != t} e_k) / S,
 *   l = -w_t * m^gamma * s
 *   dl/dx_k = w_t * (delta(k,t) - p_k) * G,   G = gamma * m^(gamma-1) * p_t * s - m^gamma
 * m comes from the sum of the other classes, never from 1 - p_t, and delta(t,t) - p_t is
 * that same m; s likewise avoids log S ~ 0 when p_t -> 1.  Vectors run across VW pixels;
 * each pixel sums its classes in class order, so the result does not depend on the vector
 * width.  Per pixel vector: one pass for mx, one for the e_k (inline, kept for the
 * gradient) and their sums, the per-pixel factors (two library calls at most), one pass
 * writing the gradient.  Logits that are not all finite take a careful version of the
 * e_k pass (softmax_exp_diff); it gives finite lanes the same bits.
 * Half precision (SPEC 13): every load of logits widens them (exactly) and every store
 * of the gradient rounds it, a vector at a time with the ISA's conversions, so the math
 * between sees the float32 call's values; each type of logits has a kernel of its own
 * (the type a compile-time constant, as `access` is), the float32 one unchanged. */

/* Kahan's compensated sum: c carries (with the opposite sign) what the last addition lost,
 * so the result is within about 2 ULP of the exact sum for any number of terms. */
typedef struct kahan_sum {
    vf sum, c;
} kahan_sum;

INLINE kahan_sum kahan_zero(void)
{
    kahan_sum k = {vf_set(0.0f), vf_set(0.0f)};
    return k;
}

INLINE void kahan_add(kahan_sum *k, vf v)
{
    vf y = vf_sub(v, k->c);
    vf t = vf_add(k->sum, y);
    k->c = vf_sub(vf_sub(t, k->sum), y);
    k->sum = t;
}

INLINE vf kahan_result(const kahan_sum *k)
{
    return vf_sub(k->sum, k->c);
}

/* sum - c - kahan_result: exact (Fast2Sum, |c| being at most half an ULP of sum) */
INLINE vf kahan_result_lo(const kahan_sum *k, vf result)
{
    return vf_sub(vf_sub(k->sum, result), k->c);
}

/* Class 0's offset in x of VW consecutive pixels from `pixel`: one division, then steps
 * through the image planes.  Lanes at or beyond nvalid get some valid pixel's offset,
 * never used. */
INLINE void softmax_offsets(const dafl_softmax_job *j, size_t pixel, int nvalid,
                            size_t offset[VW])
{
    if (j->nhwc) {
        for (int l = 0; l < VW; l++)
            offset[l] = (pixel + (size_t)(l < nvalid ? l : 0)) * j->c;
        return;
    }
    size_t image = pixel / j->hw, within = pixel % j->hw;
    for (int l = 0; l < VW; l++) {
        offset[l] = image * j->c * j->hw + within;
        if (l + 1 < nvalid && ++within == j->hw) {
            within = 0;
            image++;
        }
    }
}

/* How a pixel vector reaches the logits of class k (a compile-time constant, `access`):
 *   SOFTMAX_GATHER      lane by lane from x (NCHW across an image boundary; NHWC with
 *                       more classes than SOFTMAX_CACHED_CLASSES)
 *   SOFTMAX_CONTIGUOUS  one vector load from x: all VW pixels valid, NCHW, one image
 *   SOFTMAX_PLANAR      one vector load from ln->planar, where softmax_transpose_in has
 *                       put the VW pixels' logits class by class (NHWC) */
#define SOFTMAX_GATHER 0
#define SOFTMAX_CONTIGUOUS 1
#define SOFTMAX_PLANAR 2

typedef struct softmax_lanes {
    size_t offset[VW]; /* class-0 offset of each lane's pixel */
    size_t stride;     /* distance between classes */
    float *planar;     /* SOFTMAX_PLANAR: class k of lane l at planar[k * VW + l] */
    int valid;         /* lanes 0..valid-1 hold pixels */
} softmax_lanes;

/* exp(hi + lo) for an exact pair with hi <= 0 and |lo| <= ulp(hi)/2 (or hi = -inf or NaN,
 * lo = 0): the pair is reduced as a whole and the result's leading 1 + r kept exact until
 * the last addition, so that one rounding dominates - unlike exp(hi) * (1 + lo), which
 * rounds twice on top of exp's own error.
 *   n = round(hi / ln2) (as exp_reduce rounds it),  R = (hi - n*L1) + (lo + n*L2) = r1 + c,  ln2 = L1 - L2,
 * L1 with 9 bits, so r1 is exact (Cody-Waite) and c small;  exp(R) = 1 + R + R^2 P(R),
 * P of degree 4 fitted to (exp(R) - 1 - R)/R^2 on |R| <= 0.36 (relative error 1.6e-7
 * with the float coefficients: 8e-9 of the result);  1 + r1 = s + s_err exactly
 * (Fast2Sum, |r1| < 1), and  e = s + (s_err + (c + R^2 P)).  Then times 2^n as
 * exp_nonpositive does it (exp_scale: n >= -150, one rounding, also into the subnormal
 * range).  hi clamped at -104 keeps n in range
 * (exp(-104) < 2^-150 rounds to 0, as does every smaller result), and lo clamped to
 * +-2^-18 = ulp(104)/2 changes nothing above -104 but keeps a large lo (hi = -3e38 + 5
 * gives lo = 5) from moving the clamped argument.  NaN passes (constants first).
 * Measured over every float hi in [-104, 0] with an admissible lo, against exp in double:
 * at most 0.75 ULP (0.82 for subnormal results), where SLEEF's expf_u10 followed by the
 * factor (1 + lo) gives 1.45 (1.24), and exp_nonpositive followed by it 1.55. */
INLINE vf softmax_exp_pair(vf hi, vf lo)
{
    const vf one = vf_set(1.0f);
    vf h = vf_max(vf_set(-104.0f), hi);
    lo = vf_min(vf_set(0x1p-18f), vf_max(vf_set(-0x1p-18f), lo));
    vf t = vf_fma(h, vf_set(1.44269504f), vf_set(ROUND_MAGIC + 25.0f)); /* n + 25 */
    vf n = vf_sub(t, vf_set(ROUND_MAGIC + 25.0f));
    vf r1 = vf_fma(n, vf_set(-0.693359375f), h);
    vf c = vf_fma(n, vf_set(2.12194440e-4f), lo);
    vf r = vf_add(r1, c), r2 = vf_mul(r, r);
    vf p_lo = vf_fma(vf_set(0.166665629f), r, vf_set(0.5f));
    vf p_hi = vf_fma(vf_fma(vf_set(0.0013902263f), r, vf_set(0.00836549606f)), r,
                     vf_set(0.041666884f));
    vf poly = vf_fma(p_hi, r2, p_lo);
    vf s = vf_add(one, r1);
    vf s_err = vf_add(vf_sub(one, s), r1);
    vf e = vf_add(s, vf_add(s_err, vf_fma(r2, poly, c)));
    return exp_scale(e, exp_scale_arg(t, n));
}

/* exp(x_k - mx) with the subtraction's rounding error put back: d = d_hi + d_lo exactly
 * (TwoSum), then softmax_exp_pair.  A float difference alone would carry up to half an
 * ULP of |d| into exp's argument: tens of ULP for |d| ~ 30.  `careful` handles what only non-finite logits bring: x_k == mx gives exactly 1, which
 * makes +inf logits take their limit instead of inf - inf, and an infinite difference
 * (two_sum's NaN d_lo) gets no correction.  With every logit finite and every difference
 * finite, both versions give the same bits (there d_hi = d_lo = 0 at the maximum already),
 * and a NaN in S is the sign that the careful version is needed (softmax_focal_lanes). */
INLINE vf softmax_exp_diff(vf xk, vf mx, vf *d_hi, vf *d_lo, const int careful)
{
    vf hi, lo;
    two_sum(xk, vf_neg(mx), &hi, &lo);
    if (careful) {
        const vf zero = vf_set(0.0f);
        vm at_max = vf_eq(xk, mx);
        hi = vf_select(at_max, zero, hi);
        lo = vf_select(vm_or(at_max, vm_not(vf_eq(lo, lo))), zero, lo);
    }
    *d_hi = hi;
    *d_lo = lo;
    return softmax_exp_pair(hi, lo);
}

/* VW bfloat16 or float16 elements widened to float32 (exact), and VW floats rounded to
 * nearest even into them: the ISA's vector conversions (src/kernels/loss_kernels.h,
 * "half precision"; arch/x86/softmax_avx2.c for its 16-lane vectors), the bits of
 * src/kernels/half.h. */
INLINE vf softmax_widen(const uint16_t *h, int dtype)
{
    return dtype == DAFL_DTYPE_BFLOAT16 ? vf_load_bf16(h) : vf_load_f16(h);
}

INLINE void softmax_narrow(uint16_t *h, int dtype, vf v)
{
    if (dtype == DAFL_DTYPE_BFLOAT16)
        vf_store_bf16(h, v);
    else
        vf_store_f16(h, v);
}

/* One logit, element i of x, as float32 (the logit at a lane's label). */
INLINE float softmax_logit(const dafl_softmax_job *j, size_t i, const int x_dtype)
{
    if (x_dtype == DAFL_DTYPE_FLOAT32)
        return j->x[i];
    const uint16_t h = ((const uint16_t *)(const void *)j->x)[i];
    return x_dtype == DAFL_DTYPE_BFLOAT16 ? dafl_bf16_to_float(h) : dafl_f16_to_float(h);
}

/* Compile-time constants, so that each case gets its own loops: `access` (SOFTMAX_*
 * above); `x_dtype` is j->x_dtype (the loads in the passes over the classes are the hot
 * path); `grad_half` says whether grad may be of a 16-bit type, its dtype then read at run
 * time (one value per call, so the branch always goes the same way; one store per
 * element).  The lanes of a gathered or transposed vector that hold no pixel read 0. */
INLINE vf softmax_load(const dafl_softmax_job *j, const softmax_lanes *ln, size_t k,
                       const int access, const int x_dtype)
{
    const int contiguous = access == SOFTMAX_CONTIGUOUS;
    if (access == SOFTMAX_PLANAR)
        return vf_load(ln->planar + k * VW);
    if (x_dtype != DAFL_DTYPE_FLOAT32) {
        const uint16_t *x = (const uint16_t *)(const void *)j->x;
        if (contiguous)
            return softmax_widen(x + ln->offset[0] + k * ln->stride, x_dtype);
        uint16_t v[VW];
        for (int l = 0; l < VW; l++)
            v[l] = l < ln->valid ? x[ln->offset[l] + k * ln->stride] : 0;
        return softmax_widen(v, x_dtype);
    }
    if (contiguous)
        return vf_load(j->x + ln->offset[0] + k * ln->stride);
    float v[VW];
    for (int l = 0; l < VW; l++)
        v[l] = l < ln->valid ? j->x[ln->offset[l] + k * ln->stride] : 0.0f;
    return vf_load(v);
}

INLINE void softmax_store_grad(const dafl_softmax_job *j, const softmax_lanes *ln, size_t k,
                               vf g, const int access, const int grad_half)
{
    const int contiguous = access == SOFTMAX_CONTIGUOUS;
    if (grad_half && j->grad_dtype != DAFL_DTYPE_FLOAT32) {
        uint16_t *grad = (uint16_t *)(void *)j->grad;
        if (contiguous) {
            softmax_narrow(grad + ln->offset[0] + k * ln->stride, j->grad_dtype, g);
            return;
        }
        uint16_t v[VW];
        softmax_narrow(v, j->grad_dtype, g);
        for (int l = 0; l < ln->valid; l++)
            grad[ln->offset[l] + k * ln->stride] = v[l];
        return;
    }
    if (contiguous) {
        vf_store(j->grad + ln->offset[0] + k * ln->stride, g);
        return;
    }
    float v[VW];
    vf_store(v, g);
    for (int l = 0; l < ln->valid; l++)
        j->grad[ln->offset[l] + k * ln->stride] = v[l];
}

/* The gradient pass needs every e_k again: up to this many classes they are kept from the
 * first pass (VW floats each, on the stack), above it they are computed again by the same
 * function from the same inputs, so the bits are the same. */
#define SOFTMAX_CACHED_CLASSES 64

/* NHWC (SOFTMAX_PLANAR): the VW pixels of a vector hold VW * c consecutive logits, pixel
 * by pixel; they are transposed into the cache, class k of lane l at buf[k * VW + l], and
 * the loops then run as they do on NCHW: one vector load or store per class instead of
 * VW scalar ones through the stack (a gathered vector's scalar stores and its vector
 * load also stall store-to-load forwarding).  The gradient is written back the same way.
 * Only copies: the math sees the values the gather gave, so the bits are the same.
 * Measured on Zen 3, AVX2, one thread, 19 classes, 64K pixels and 8x19x128x128 (fastest
 * of many interleaved runs): NHWC 4.2-4.7 ns per logit gathered, 2.1-2.2 transposed,
 * where NCHW takes 2.3-2.5 (NHWC reads one stream instead of c).
 * Half precision: a logit is widened as it is copied (exactly, half.h's bits, which
 * every ISA's conversions have); a gradient vector is rounded as the other layouts
 * round it (softmax_narrow), kept in the cache as VW 16-bit elements and copied out.
 * n <= VW pixels at src / dst (n * c elements); lanes n..VW-1 of buf read as 0. */
INLINE void softmax_transpose_in_f32(float *buf, const float *src, size_t c, int n)
{
    size_t k = 0;
    do /* c >= 1 */
        for (int l = 0; l < VW; l++)
            buf[k * VW + (size_t)l] = l < n ? src[(size_t)l * c + k] : 0.0f;
    while (++k < c);
}

INLINE void softmax_transpose_out_f32(float *dst, const float *buf, size_t c, int n)
{
    for (int l = 0; l < n; l++)
        for (size_t k = 0; k < c; k++)
            dst[(size_t)l * c + k] = buf[k * VW + (size_t)l];
}

INLINE void softmax_transpose_in(const dafl_softmax_job *j, const softmax_lanes *ln,
                                 float *buf, const int x_dtype)
{
    const size_t c = j->c;
    const int n = ln->valid;
    if (x_dtype == DAFL_DTYPE_FLOAT32) {
        softmax_transpose_in_f32(buf, j->x + ln->offset[0], c, n);
        return;
    }
    const uint16_t *src = (const uint16_t *)(const void *)j->x + ln->offset[0];
    size_t k = 0;
    do { /* c >= 1 */
        for (int l = 0; l < VW; l++) {
            float v = 0.0f;
            if (l < n) {
                uint16_t h = src[(size_t)l * c + k];
                v = x_dtype == DAFL_DTYPE_BFLOAT16 ? dafl_bf16_to_float(h) : dafl_f16_to_float(h);
            }
            buf[k * VW + (size_t)l] = v;
        }
    } while (++k < c);
}

/* The gradient vector of class k into its cache slot: floats, or (16-bit grad) the VW
 * rounded elements in the slot's first bytes. */
INLINE void softmax_keep_grad(const dafl_softmax_job *j, float *slot, vf g, const int grad_half)
{
    if (grad_half && j->grad_dtype != DAFL_DTYPE_FLOAT32) {
        uint16_t h[VW];
        softmax_narrow(h, j->grad_dtype, g);
        memcpy(slot, h, sizeof h);
        return;
    }
    vf_store(slot, g);
}

INLINE void softmax_transpose_out(const dafl_softmax_job *j, const softmax_lanes *ln,
                                  const float *buf, const int grad_half)
{
    const size_t c = j->c;
    const int n = ln->valid;
    if (grad_half && j->grad_dtype != DAFL_DTYPE_FLOAT32) {
        uint16_t *dst = (uint16_t *)(void *)j->grad + ln->offset[0];
        for (size_t k = 0; k < c; k++) {
            uint16_t h[VW];
            memcpy(h, buf + k * VW, sizeof h);
            for (int l = 0; l < n; l++)
                dst[(size_t)l * c + k] = h[l];
        }
        return;
    }
    softmax_transpose_out_f32(j->grad + ln->offset[0], buf, c, n);
}

/* What the pass over the classes gives per pixel: e_t = exp(x_t - mx) and its argument
 * d_t + d_t_lo, S = sum_k e_k and S_other = sum_{k != t} e_k. */
typedef struct softmax_sums {
    vf e_t, d_t, d_t_lo, S, S_other;
    vf S_lo, S_other_lo; /* what rounding the compensated sums to floats left out */
} softmax_sums;

/* S and S_other are compensated (Kahan) sums: a plain float sum of c terms can be off by
 * up to (c-1)/2 ULP, which m^gamma would then multiply by gamma.  S_other runs over the
 * classes in order, with 0 in place of e_t; S is the same sum continued with e_t, one sum
 * for both.  e_t, d_t, d_t_lo come from x_t (the logit at each lane's label, x_t_v) through
 * the same function as in the loop, so they are the loop's values for k = t. */
INLINE softmax_sums softmax_exp_sums(const dafl_softmax_job *j, const softmax_lanes *ln,
                                     vf mx, vf t_v, vf x_t_v, float *cache, const int careful,
                                     const int access, const int x_dtype)
{
    const vf zero = vf_set(0.0f), one = vf_set(1.0f);
    kahan_sum other = kahan_zero();
    vf k_v = zero; /* k as a float, counted up exactly */
    for (size_t k = 0; k < j->c; k++, k_v = vf_add(k_v, one)) {
        vf d, d_lo;
        vf e = softmax_exp_diff(softmax_load(j, ln, k, access, x_dtype), mx, &d, &d_lo,
                                careful);
        if (cache && k < SOFTMAX_CACHED_CLASSES)
            vf_store(cache + k * VW, e);
        kahan_add(&other, vf_select(vf_eq(t_v, k_v), zero, e));
    }
    softmax_sums r;
    r.e_t = softmax_exp_diff(x_t_v, mx, &r.d_t, &r.d_t_lo, careful);
    r.S_other = kahan_result(&other);
    r.S_other_lo = kahan_result_lo(&other, r.S_other);
    kahan_add(&other, r.e_t);
    r.S = kahan_result(&other);
    r.S_lo = kahan_result_lo(&other, r.S);
    return r;
}

/* Per pixel vector: each lane's label (as a float; 0 in ignored and unused lanes), its
 * weight (0 there), the logit at its label, and which lanes count. */
typedef struct softmax_labels {
    vf t, w_t, x_t;
    vm active;
    int all_active;
} softmax_labels;

/* The loss and gradient of the pixel vector set up by softmax_focal_pixels. */
INLINE vf softmax_focal_lanes(const dafl_softmax_job *j, softmax_lanes *ln,
                              const softmax_labels *lb, const int want_grad,
                              const int access, const int x_dtype, const int grad_half)
{
    const vf one = vf_set(1.0f), zero = vf_set(0.0f);
    const vf t_v = lb->t;
    float cache[SOFTMAX_CACHED_CLASSES * VW];
    /* SOFTMAX_PLANAR: the cache holds the logits first; the pass over the classes puts
     * each e_k in place of x_k, and the gradient pass each gradient in place of e_k. */
    if (access == SOFTMAX_PLANAR) {
        ln->planar = cache;
        softmax_transpose_in(j, ln, cache, x_dtype);
    }
    vf mx = softmax_load(j, ln, 0, access, x_dtype);
    for (size_t k = 1; k < j->c; k++)
        mx = vf_max(softmax_load(j, ln, k, access, x_dtype), mx);
    float *e_cache = want_grad || access == SOFTMAX_PLANAR ? cache : NULL;
    /* Finite logits need no care (the common case); a NaN in S says some lane has an
     * infinite or NaN logit, or an infinite difference, and then all lanes run the
     * careful version: each lane's bits depend on its own logits only. */
    int careful = 0;
    softmax_sums r =
        softmax_exp_sums(j, ln, mx, t_v, lb->x_t, e_cache, 0, access, x_dtype);
    if (vm_any(vm_not(vf_eq(r.S, r.S)))) {
        careful = 1;
        if (access == SOFTMAX_PLANAR) /* the first pass left e_k there */
            softmax_transpose_in(j, ln, cache, x_dtype);
        r = softmax_exp_sums(j, ln, mx, t_v, lb->x_t, e_cache, 1, access, x_dtype);
    }
    vf S = r.S, S_other = r.S_other;
    /* s = log(e_t / S).  When t holds the maximum, e_t = 1 and s = -log1p(S_other) keeps
     * full precision as p_t -> 1; otherwise d_t < 0 and d_t - log S cannot cancel.  Each
     * library call only where some lane takes its result. */
    vm t_at_max = vf_eq(r.d_t, zero);
    vf s_max = zero, s_below = zero;
    if (vm_any(t_at_max))
        s_max = vf_neg(vf_log1p(S_other));
    if (vm_any(vm_not(t_at_max)))
        s_below = vf_add(vf_sub(r.d_t, vf_log(S)), r.d_t_lo);
    vf s = vf_select(t_at_max, s_max, s_below);
    vf m = vf_div(S_other, S);
    vf m_gamma, m_gamma_1 = zero; /* m^gamma, m^(gamma-1) */
    if (j->gamma_int >= 1) {
        m_gamma_1 = pow_int(m, j->gamma_int - 1);
        m_gamma = vf_mul(m_gamma_1, m);
    } else if (j->gamma_int == 0) {
        m_gamma = one;
    } else if (is_half_integer(j->gamma)) {
        /* m + m_lo = (S_other + S_other_lo) / (S + S_lo) to first order: the quotient's
         * residual (exact by a fused multiply-add) and the compensated sums' remainders,
         * over S.  The powers of the pair carry neither the division's rounding nor the
         * sums' gamma times. */
        vf rem = vf_fma(vf_neg(m), S, S_other); /* exact */
        rem = vf_add(rem, vf_fma(vf_neg(m), r.S_lo, r.S_other_lo));
        vf m_lo = vf_div(rem, S);
        m_gamma = pow_half_integer_pair(m, m_lo, j->gamma, 1);
        m_gamma_1 = is_half_integer(j->gamma - 1.0f) /* not -1/2 */
                        ? pow_half_integer_pair(m, m_lo, j->gamma - 1.0f, 1)
                        : pow_real(m, j->gamma - 1.0f);
    } else {
        m_gamma = pow_real(m, j->gamma);
        m_gamma_1 = pow_real(m, j->gamma - 1.0f);
    }
    vf loss = vf_neg(vf_mul(lb->w_t, vf_mul(m_gamma, s)));
    loss = vf_select(lb->active, loss, zero);

    if (want_grad) {
        vf p_t = vf_div(r.e_t, S);
        vf G = vf_neg(m_gamma);
        if (j->gamma != 0.0f) {
            /* p_t = 0 with s = -inf (a +inf logit elsewhere, or -inf on the label):
             * p_t * s -> 0, the limit of p log p */
            vf term = vf_mul(vf_mul(vf_set(j->gamma), m_gamma_1), mul_zero_wins(p_t, s));
            term = vf_select(vf_eq(m, zero), zero, term); /* m -> 0: the term -> 0 */
            G = vf_add(term, G);
        }
        vf wG = vf_mul(vf_mul(lb->w_t, G), vf_set(j->grad_factor));
        /* k != t: -p_k * wG = e_k * (-wG / S), rounded twice like -(e_k / S) * wG */
        vf minus_wG_over_S = vf_neg(vf_div(wG, S));
        vf g_t = vf_mul(m, wG);
        vf k_v = zero;
        for (size_t k = 0; k < j->c; k++, k_v = vf_add(k_v, one)) {
            vf e;
            if (k < SOFTMAX_CACHED_CLASSES) {
                e = vf_load(cache + k * VW);
            } else {
                vf d, d_lo;
                e = softmax_exp_diff(softmax_load(j, ln, k, access, x_dtype), mx, &d,
                                     &d_lo, careful);
            }
            vf g = vf_select(vf_eq(t_v, k_v), g_t, vf_mul(e, minus_wG_over_S));
            /* ignored and unused lanes: 0, whatever their logits gave */
            if (!lb->all_active)
                g = vf_select(lb->active, g, zero);
            if (access == SOFTMAX_PLANAR)
                softmax_keep_grad(j, cache + k * VW, g, grad_half);
            else
                softmax_store_grad(j, ln, k, g, access, grad_half);
        }
        if (access == SOFTMAX_PLANAR)
            softmax_transpose_out(j, ln, cache, grad_half);
    }
    return loss;
}

/* VW pixels from `pixel` (nvalid of them real).  Returns their losses (0 in unused and
 * ignored lanes) and writes their gradients when want_grad (the job has a gradient
 * buffer). */
INLINE vf softmax_focal_pixels(const dafl_softmax_job *j, size_t pixel, int nvalid,
                               const int want_grad, const int x_dtype, const int grad_half)
{
    const vf one = vf_set(1.0f);
    softmax_lanes ln;
    ln.valid = nvalid;
    ln.stride = j->nhwc ? 1 : j->hw;
    ln.planar = NULL;
    softmax_offsets(j, pixel, nvalid, ln.offset);
    float label_f[VW], weight[VW], active_f[VW], x_t[VW];
    int all_active = 1;
    for (int l = 0; l < VW; l++) {
        int32_t t = l < nvalid ? j->labels[pixel + (size_t)l] : j->ignore_index;
        int active = l < nvalid && t != j->ignore_index;
        if (!active)
            t = 0;
        all_active &= active;
        label_f[l] = (float)t;
        weight[l] = active ? (j->class_weights ? j->class_weights[t] : 1.0f) : 0.0f;
        active_f[l] = active ? 1.0f : 0.0f;
        /* the lane's value softmax_load gives for class t (0 in unused lanes) */
        x_t[l] = l < nvalid ? softmax_logit(j, ln.offset[l] + (size_t)t * ln.stride, x_dtype)
                            : 0.0f;
    }
    softmax_labels lb = {vf_load(label_f), vf_load(weight), vf_load(x_t),
                         vf_eq(vf_load(active_f), one), all_active};
    /* one lane (the scalar kernels) reads its pixel's classes directly, in either layout */
    if (VW > 1 && j->nhwc && j->c <= SOFTMAX_CACHED_CLASSES)
        return softmax_focal_lanes(j, &ln, &lb, want_grad, SOFTMAX_PLANAR, x_dtype, grad_half);
    if (!j->nhwc && nvalid == VW && ln.offset[VW - 1] == ln.offset[0] + (size_t)(VW - 1))
        return softmax_focal_lanes(j, &ln, &lb, want_grad, SOFTMAX_CONTIGUOUS, x_dtype,
                                   grad_half);
    return softmax_focal_lanes(j, &ln, &lb, want_grad, SOFTMAX_GATHER, x_dtype, grad_half);
}

INLINE double softmax_focal_impl(const dafl_softmax_job *j, size_t begin, size_t len,
                                 const int want_grad, const int x_dtype, const int grad_half)
{
    vacc acc;
    vacc_zero(&acc);
    for (size_t i = 0; i < len; i += GROUP) {
        size_t n = len - i < GROUP ? len - i : GROUP;
        float losses[GROUP];
        for (int part = 0; part < PARTS; part++) {
            int nvalid = (int)n - part * VW;
            nvalid = nvalid < 0 ? 0 : nvalid > VW ? VW : nvalid;
            vf loss = nvalid ? softmax_focal_pixels(j, begin + i + (size_t)(part * VW), nvalid,
                                                    want_grad, x_dtype, grad_half)
                             : vf_set(0.0f);
            vacc_add(&acc, part, loss);
            vf_store(losses + part * VW, loss);
        }
        if (j->loss_out)
            memcpy(j->loss_out + begin + i, losses, n * sizeof(float));
    }
    double lanes[16];
    vacc_store(&acc, lanes);
    return dafl_fold_lanes16(lanes);
}

/* The kernels, each out of line: float32 alone; bfloat16 logits, float16 logits, and
 * float32 logits with a 16-bit gradient, each of these three with a gradient of any type.
 * The choice between them, once per block, leaves the float32 kernel's code as it is
 * without half precision. */
#define DEFINE_SOFTMAX_KERNEL(NAME, X_DTYPE, GRAD_HALF)                                      \
    static __attribute__((noinline)) double KFN(NAME)(const dafl_softmax_job *j,            \
                                                      size_t begin, size_t len)             \
    {                                                                                       \
        return j->grad ? softmax_focal_impl(j, begin, len, 1, X_DTYPE, GRAD_HALF)           \
                       : softmax_focal_impl(j, begin, len, 0, X_DTYPE, GRAD_HALF);          \
    }
#if !BF16_GRAD_ONLY /* a bfloat16-gradient unit (loss_kernels.h) sees no float32 call */
DEFINE_SOFTMAX_KERNEL(softmax_focal_float32, DAFL_DTYPE_FLOAT32, 0)
#endif
DEFINE_SOFTMAX_KERNEL(softmax_focal_bf16, DAFL_DTYPE_BFLOAT16, 1)
DEFINE_SOFTMAX_KERNEL(softmax_focal_f16, DAFL_DTYPE_FLOAT16, 1)
DEFINE_SOFTMAX_KERNEL(softmax_focal_half_grad, DAFL_DTYPE_FLOAT32, 1)

static double KFN(softmax_focal)(const dafl_softmax_job *j, size_t begin, size_t len)
{
    switch (j->x_dtype) {
    case DAFL_DTYPE_BFLOAT16: return KFN(softmax_focal_bf16)(j, begin, len);
    case DAFL_DTYPE_FLOAT16: return KFN(softmax_focal_f16)(j, begin, len);
    default:
#if BF16_GRAD_ONLY
        return KFN(softmax_focal_half_grad)(j, begin, len);
#else
        return j->grad && j->grad_dtype ? KFN(softmax_focal_half_grad)(j, begin, len)
                                        : KFN(softmax_focal_float32)(j, begin, len);
#endif
    }
}
