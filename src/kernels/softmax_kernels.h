/*
 * Softmax focal loss (SPEC 2.4): the per-pixel math, written once with the vector
 * operations of src/kernels/loss_kernels.h and included from there.
 */
/* ---- 2.4 softmax focal loss ---------------------------------------------------------- */
/* Per pixel, with mx = max_k x_k, e_k = exp(x_k - mx), S = sum_k e_k (in class order):
 *   s = (x_t - mx) - log S,  p_t = e_t / S,  m = 1 - p_t = (sum_{k != t} e_k) / S,
 *   l = -w_t * m^gamma * s
 *   dl/dx_k = w_t * (delta(k,t) - p_k) * G,   G = gamma * m^(gamma-1) * p_t * s - m^gamma
 * m comes from the sum of the other classes, never from 1 - p_t, and delta(t,t) - p_t is
 * that same m; s likewise avoids log S ~ 0 when p_t -> 1.  Vectors run across VW pixels; each pixel sums its classes in order, so
 * the result does not depend on the vector width. */

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

/* Where pixel `pixel` keeps class 0, and the distance between its classes. */
INLINE size_t softmax_offset(const dafl_softmax_job *j, size_t pixel)
{
    if (j->nhwc)
        return pixel * j->c;
    return (pixel / j->hw) * j->c * j->hw + pixel % j->hw;
}

typedef struct softmax_lanes {
    size_t offset[VW]; /* class-0 offset of each lane's pixel */
    size_t stride;     /* distance between classes */
    int contiguous;    /* all VW pixels valid, NCHW, one image: plain vector loads */
    int valid;         /* lanes 0..valid-1 hold pixels */
} softmax_lanes;

/* exp(x_k - mx) with the subtraction's rounding error put back: d = d_hi + d_lo exactly
 * (TwoSum), exp(d) = exp(d_hi) * (1 + d_lo).  A float difference alone would carry up to
 * half an ULP of |d| into exp's argument: tens of ULP for |d| ~ 30.  x_k == mx gives
 * exactly 1, which also makes +inf logits take their limit instead of inf - inf. */
INLINE vf softmax_exp_diff(vf xk, vf mx, vf *d_hi, vf *d_lo)
{
    const vf zero = vf_set(0.0f);
    vm at_max = vf_eq(xk, mx);
    vf hi, lo;
    two_sum(xk, vf_neg(mx), &hi, &lo);
    *d_hi = vf_select(at_max, zero, hi);
    /* at the maximum, or an infinite difference (two_sum's NaN): no correction */
    *d_lo = vf_select(vm_or(at_max, vm_not(vf_eq(lo, lo))), zero, lo);
    vf e = vf_exp(*d_hi);
    return vf_fma(e, *d_lo, e);
}

INLINE vf softmax_load(const dafl_softmax_job *j, const softmax_lanes *ln, size_t k)
{
    if (ln->contiguous)
        return vf_load(j->x + ln->offset[0] + k * ln->stride);
    float v[VW];
    for (int l = 0; l < VW; l++)
        v[l] = l < ln->valid ? j->x[ln->offset[l] + k * ln->stride] : 0.0f;
    return vf_load(v);
}

INLINE void softmax_store_grad(const dafl_softmax_job *j, const softmax_lanes *ln, size_t k,
                               vf g)
{
    if (ln->contiguous) {
        vf_store(j->grad + ln->offset[0] + k * ln->stride, g);
        return;
    }
    float v[VW];
    vf_store(v, g);
    for (int l = 0; l < ln->valid; l++)
        j->grad[ln->offset[l] + k * ln->stride] = v[l];
}

/* VW pixels from `pixel` (nvalid of them real).  Returns their losses (0 in unused and
 * ignored lanes) and writes their gradients when the job has a gradient buffer. */
INLINE vf softmax_focal_pixels(const dafl_softmax_job *j, size_t pixel, int nvalid)
{
    const vf one = vf_set(1.0f), zero = vf_set(0.0f);
    softmax_lanes ln;
    ln.valid = nvalid;
    ln.stride = j->nhwc ? 1 : j->hw;
    float label_f[VW], weight[VW], active_f[VW];
    for (int l = 0; l < VW; l++) {
        size_t px = pixel + (size_t)(l < nvalid ? l : 0);
        ln.offset[l] = softmax_offset(j, px);
        int32_t t = j->labels[px];
        int active = l < nvalid && t != j->ignore_index;
        if (!active)
            t = 0;
        label_f[l] = (float)t;
        weight[l] = active ? (j->class_weights ? j->class_weights[t] : 1.0f) : 0.0f;
        active_f[l] = active ? 1.0f : 0.0f;
    }
    ln.contiguous = !j->nhwc && nvalid == VW &&
                    ln.offset[VW - 1] == ln.offset[0] + (size_t)(VW - 1);
    vf t_v = vf_load(label_f), w_t = vf_load(weight);
    vm active = vf_eq(vf_load(active_f), one);

    vf mx = softmax_load(j, &ln, 0);
    for (size_t k = 1; k < j->c; k++)
        mx = vf_max(softmax_load(j, &ln, k), mx);
    /* S and S_other are compensated (Kahan) sums: a plain float sum of c terms can be off
     * by up to (c-1)/2 ULP, which m^gamma would then multiply by gamma. */
    kahan_sum S_sum = kahan_zero(), S_other_sum = kahan_zero();
    vf d_t = zero, d_t_lo = zero, e_t = zero;
    for (size_t k = 0; k < j->c; k++) {
        vf d, d_lo;
        vf e = softmax_exp_diff(softmax_load(j, &ln, k), mx, &d, &d_lo);
        vm is_t = vf_eq(t_v, vf_set((float)k));
        kahan_add(&S_sum, e);
        kahan_add(&S_other_sum, vf_select(is_t, zero, e));
        d_t = vf_select(is_t, d, d_t);
        d_t_lo = vf_select(is_t, d_lo, d_t_lo);
        e_t = vf_select(is_t, e, e_t);
    }
    vf S = kahan_result(&S_sum), S_other = kahan_result(&S_other_sum);
    /* s = log(e_t / S).  When t holds the maximum, e_t = 1 and s = -log1p(S_other) keeps
     * full precision as p_t -> 1; otherwise d_t < 0 and d_t - log S cannot cancel. */
    vf log_S = vf_log(S);
    vf s = vf_select(vf_eq(d_t, zero), vf_neg(vf_log1p(S_other)),
                     vf_add(vf_sub(d_t, log_S), d_t_lo));
    vf m = vf_div(S_other, S);
    vf m_gamma, m_gamma_1 = zero; /* m^gamma, m^(gamma-1) */
    if (j->gamma_int >= 1) {
        m_gamma_1 = pow_int(m, j->gamma_int - 1);
        m_gamma = vf_mul(m_gamma_1, m);
    } else if (j->gamma_int == 0) {
        m_gamma = one;
    } else {
        m_gamma = pow_real(m, j->gamma);
        m_gamma_1 = pow_real(m, j->gamma - 1.0f);
    }
    vf loss = vf_neg(vf_mul(w_t, vf_mul(m_gamma, s)));
    loss = vf_select(active, loss, zero);

    if (j->grad) {
        vf p_t = vf_div(e_t, S);
        vf G = vf_neg(m_gamma);
        if (j->gamma != 0.0f) {
            /* p_t = 0 with s = -inf (a +inf logit elsewhere, or -inf on the label):
             * p_t * s -> 0, the limit of p log p */
            vf term = vf_mul(vf_mul(vf_set(j->gamma), m_gamma_1), mul_zero_wins(p_t, s));
            term = vf_select(vf_eq(m, zero), zero, term); /* m -> 0: the term -> 0 */
            G = vf_add(term, G);
        }
        vf wG = vf_mul(vf_mul(w_t, G), vf_set(j->grad_factor));
        for (size_t k = 0; k < j->c; k++) {
            vf d, d_lo;
            vf e = softmax_exp_diff(softmax_load(j, &ln, k), mx, &d, &d_lo);
            vm is_t = vf_eq(t_v, vf_set((float)k));
            vf delta_minus_p = vf_select(is_t, m, vf_neg(vf_div(e, S)));
            vf g = vf_select(active, vf_mul(delta_minus_p, wG), zero);
            softmax_store_grad(j, &ln, k, g);
        }
    }
    return loss;
}

static double KFN(softmax_focal)(const dafl_softmax_job *j, size_t begin, size_t len)
{
    vacc acc;
    vacc_zero(&acc);
    for (size_t i = 0; i < len; i += GROUP) {
        size_t n = len - i < GROUP ? len - i : GROUP;
        float losses[GROUP];
        for (int part = 0; part < PARTS; part++) {
            int nvalid = (int)n - part * VW;
            nvalid = nvalid < 0 ? 0 : nvalid > VW ? VW : nvalid;
            vf loss = nvalid ? softmax_focal_pixels(j, begin + i + (size_t)(part * VW), nvalid)
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

