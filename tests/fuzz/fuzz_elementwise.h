/*
 * The part of the element-wise loss harnesses (penalty focal, sigmoid focal, BCE) after
 * the loss's own parameters: the element count, NULL pointers, an in-place gradient, the
 * payloads of inputs and targets, and the checks of fuzz_common.h.
 *
 * Bytes, after the harness's parameter struct:
 *   count      fz_size, at most FZ_EW_MAX_COUNT (two blocks and a tail), or huge
 *   pointers   bit 0 params NULL, 1 input NULL, 2 target NULL, 3 loss NULL,
 *              4 grad NULL, 5 stats NULL, 6 grad written in place over the input
 *   x mode     FZ_VALUES_*        y mode  FZ_TARGETS_*
 *   payload
 */
#ifndef DAFL_FUZZ_ELEMENTWISE_H
#define DAFL_FUZZ_ELEMENTWISE_H

#include "fuzz_common.h"

#define FZ_EW_MAX_COUNT (2 * DAFL_BLOCK_ELEMENTS + 40)
#define FZ_SHORT 16 /* floats in the buffers passed with a huge count */

typedef dafl_status (*fz_ew_fn)(const float *x, const float *y, size_t count,
                                const void *params, float *loss, float *grad,
                                dafl_stats *stats);

typedef struct fz_ew_ctx {
    fz_ew_fn fn;
    const void *params; /* NULL or the caller's block */
    size_t count;
} fz_ew_ctx;

static dafl_status fz_ew_call(void *ctx, void *const in[], void *const out[])
{
    const fz_ew_ctx *c = ctx;
    return c->fn(in[0], in[1], c->count, c->params, out[0], out[1], out[2]);
}

/* Finite, moderate inputs, valid targets and parameters in a sane range: then no loss and
 * no gradient may be NaN (an infinity is possible: -log 0 in probability mode). */
typedef struct fz_ew_sane {
    const char *name;
    size_t count, loss_floats;
    int reduced_may_be_nan; /* MEAN over nothing is 0 / 0 */
} fz_ew_sane;

static void fz_ew_no_nan(void *vctx, dafl_status st, void *const out[])
{
    const fz_ew_sane *s = vctx;
    if (st != DAFL_OK)
        return;
    size_t at;
    if (out[0] && !(s->loss_floats == 1 && s->reduced_may_be_nan))
        FZ_REQUIRE((at = fz_first_nan(out[0], s->loss_floats)) == s->loss_floats,
                   "%s: loss[%zu] is NaN for finite inputs and sane parameters", s->name, at);
    if (out[1])
        FZ_REQUIRE((at = fz_first_nan(out[1], s->count)) == s->count,
                   "%s: grad[%zu] is NaN for finite inputs and sane parameters", s->name, at);
}

/* params_block: the caller's struct (from fz_params_block).  none_given, none_default:
 * whether the library sees DAFL_REDUCTION_NONE with that struct and with NULL params
 * (then the loss output holds count floats).  sane_x_mode: the input mode whose values
 * are in the loss's domain (moderate logits, or probabilities), or -1 when the parameters
 * are outside the sane range (see fz_sane_*). */
static void fz_elementwise(fz *f, const char *name, fz_ew_fn fn, const void *params_block,
                           int none_given, int none_default, int sane_x_mode)
{
    int huge = 0;
    const size_t count = fz_size(f, FZ_EW_MAX_COUNT, &huge);
    uint8_t ptrs = fz_u8(f);
    /* A huge count that the library could not tell from a real one (count * 4 does not
     * overflow) is only passed with a NULL input: the NULL check must come first. */
    if (huge && !fz_product_overflows(count, 1, 1, sizeof(float)))
        ptrs |= 2;
    const unsigned x_mode = fz_u8(f), y_mode = fz_u8(f);
    const fz_payload payload = fz_rest(f);

    /* With a huge count the buffers are short: the call must fail before reading them. */
    const size_t n = huge ? FZ_SHORT : count;
    float *x = fz_alloc(n * sizeof(float)), *y = fz_alloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) {
        x[i] = fz_value(&payload, i, x_mode);
        y[i] = fz_target(&payload, i + n, y_mode);
    }
    const int params_null = ptrs & 1;
    const int reduction_none = params_null ? none_default : none_given;

    fz_call c;
    fz_call_init(&c, name);
    const int in_x = fz_add_in(&c, x, n * sizeof(float), (ptrs >> 1) & 1);
    fz_add_in(&c, y, n * sizeof(float), (ptrs >> 2) & 1);
    fz_add_out(&c, (reduction_none ? n : 1) * sizeof(float), (ptrs >> 3) & 1, 1);
    const int out_grad = fz_add_out(&c, n * sizeof(float), (ptrs >> 4) & 1, 1);
    fz_add_out(&c, sizeof(dafl_stats), (ptrs >> 5) & 1, 0);
    if ((ptrs >> 6) & 1 && !((ptrs >> 1) & 1) && !((ptrs >> 4) & 1))
        c.out_alias[out_grad] = in_x;

    fz_ew_sane sane = {name, count, (reduction_none ? n : 1), 0};
    int in_domain = !huge && !params_null && sane_x_mode >= 0 &&
                    x_mode % 4 == (unsigned)sane_x_mode && y_mode % 4 == FZ_TARGETS_VALID;
    /* probabilities of exactly 0 or 1 have an infinite loss, and 0 * inf is NaN */
    for (size_t i = 0; in_domain && sane_x_mode == FZ_VALUES_UNIT && i < n; i++)
        in_domain = x[i] > 0.0f && x[i] < 1.0f;
    if (in_domain) {
        sane.reduced_may_be_nan = count == 0;
        c.inspect = fz_ew_no_nan;
        c.inspect_ctx = &sane;
    }

    fz_ew_ctx ctx = {fn, params_null ? NULL : params_block, count};
    const dafl_status st = fz_check_call(&c, fz_ew_call, &ctx);
    FZ_REQUIRE(!huge || st != DAFL_OK, "%s accepted the count %zu", name, count);
    free(x);
    free(y);
}

#endif
