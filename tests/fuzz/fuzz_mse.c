/*
 * libFuzzer harness: dafl_mse (NCHW, optional per-channel or per-plane weights).
 *
 * Bytes: ISA, struct_size, weights (0 NULL, 1 c of them, 2 n*c, 3 a wrong count,
 * 4 none at all but a non-NULL pointer), weight values (0 in [0, 4), else anything),
 * reduction, normalizer, grad_scale, flags, n, c, hw (small, or huge), pointers (bit 0
 * params NULL, 1 input NULL, 2 target NULL, 3 loss NULL, 4 grad NULL, 5 stats NULL,
 * 6 gradient in place), input mode, target mode, payload.
 */
#include <stddef.h>

#include "fuzz_common.h"

#define MAX_ELEMENTS 4200

typedef struct ctx {
    const unsigned char *params; /* NULL or the caller's block */
    size_t params_bytes;
    size_t n, c, hw;
} ctx;

static dafl_status call(void *vctx, void *const in[], void *const out[])
{
    const ctx *k = vctx;
    unsigned char *params = NULL;
    const size_t at = offsetof(dafl_mse_params, weights);
    if (k->params) {
        /* the caller's struct, pointing at this run's copy of the weights */
        params = fz_alloc(k->params_bytes);
        memcpy(params, k->params, k->params_bytes);
        if (k->params_bytes >= at + sizeof(float *)) {
            const float *w;
            memcpy(&w, params + at, sizeof w);
            if (w)
                memcpy(params + at, &in[2], sizeof(float *));
        }
    }
    dafl_status st = dafl_mse(in[0], in[1], k->n, k->c, k->hw, (const void *)params, out[0],
                              out[1], out[2]);
    free(params);
    return st;
}

/* Moderate inputs, valid targets, weights in [0, 4): no NaN anywhere (but the MEAN of
 * nothing, 0 / 0). */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz f = fz_begin(data, size);
    fz_select_isa(&f);
    const dafl_mse_params def = DAFL_MSE_PARAMS_INIT;
    dafl_mse_params p = def;
    size_t declared = fz_struct_size(&f, sizeof p);
    /* No header ends inside a pointer: a size that would hand the library half of one is
     * not a size any caller can have. */
    const size_t wat = offsetof(dafl_mse_params, weights);
    if (declared > wat && declared < wat + sizeof(float *))
        declared = wat;
    const uint8_t weights_mode = fz_u8(&f) % 5, weight_values = fz_u8(&f);
    p.reduction = (dafl_reduction)fz_enum(&f, def.reduction);
    p.normalizer = fz_param(&f, def.normalizer);
    p.grad_scale = fz_param(&f, def.grad_scale);
    p.flags = fz_enum(&f, def.flags);
    int huge = 0;
    size_t n = fz_size(&f, 6, &huge), c = fz_size(&f, 9, &huge);
    size_t hw = fz_size(&f, MAX_ELEMENTS, &huge);
    uint8_t ptrs = fz_u8(&f);
    const unsigned x_mode = fz_u8(&f), y_mode = fz_u8(&f);
    const fz_payload payload = fz_rest(&f);

    size_t count = 0;
    if (!huge) {
        if (n * c * hw > MAX_ELEMENTS)
            hw = MAX_ELEMENTS / (n * c);
        count = n * c * hw;
    } else if (!fz_product_overflows(n, c, hw, sizeof(float)) && n * c * hw != 0) {
        ptrs |= 2; /* a size the library cannot refuse: only with a NULL input */
    }
    /* weights_count: the library reads that many weights when it is c or n*c */
    size_t weights_count = 0;
    switch (weights_mode) {
    case 1: weights_count = c; break;
    case 2: weights_count = n * c; break;
    case 3: weights_count = (size_t)weight_values % 23; break;
    default: break;
    }
    if (huge && weights_count > 64)
        weights_count = 5; /* a wrong count: refused before any weight is read */
    float *weights = fz_alloc(weights_count * sizeof(float));
    for (size_t i = 0; i < weights_count; i++)
        weights[i] = weight_values == 0 ? (float)(fz_word(&payload, i + 99) >> 8) * 0x1.0p-22f
                                        : fz_value(&payload, i + 99, weight_values);
    p.weights = weights_mode ? weights : NULL; /* replaced by each run's copy */
    p.weights_count = weights_count;

    size_t owned;
    unsigned char *block = fz_params_block(&p, sizeof p, declared, &owned);
    dafl_mse_params eff;
    fz_effective_params(&eff, &def, sizeof def, block, owned);
    const int params_null = ptrs & 1;
    const int none = (params_null ? def.reduction : eff.reduction) == DAFL_REDUCTION_NONE;

    const size_t nbuf = huge ? 16 : count;
    float *x = fz_alloc(nbuf * sizeof(float)), *y = fz_alloc(nbuf * sizeof(float));
    for (size_t i = 0; i < nbuf; i++) {
        x[i] = fz_value(&payload, i, x_mode);
        y[i] = fz_target(&payload, i + nbuf, y_mode);
    }
    fz_call cl;
    fz_call_init(&cl, "dafl_mse");
    const int in_x = fz_add_in(&cl, x, nbuf * sizeof(float), (ptrs >> 1) & 1);
    fz_add_in(&cl, y, nbuf * sizeof(float), (ptrs >> 2) & 1);
    fz_add_in(&cl, weights, weights_count * sizeof(float), weights_mode == 0);
    fz_add_out(&cl, (none ? nbuf : 1) * sizeof(float), (ptrs >> 3) & 1, 1);
    const int out_grad = fz_add_out(&cl, nbuf * sizeof(float), (ptrs >> 4) & 1, 1);
    fz_add_out(&cl, sizeof(dafl_stats), (ptrs >> 5) & 1, 0);
    if ((ptrs >> 6) & 1 && !((ptrs >> 1) & 1) && !((ptrs >> 4) & 1))
        cl.out_alias[out_grad] = in_x;

    fz_sane_outputs sn = {"dafl_mse", none ? nbuf : 1, nbuf, none || count > 0};
    if (!huge && !params_null && x_mode % 4 == FZ_VALUES_MODERATE &&
        y_mode % 4 == FZ_TARGETS_VALID && weight_values == 0 &&
        fz_sane_reduction(eff.reduction, eff.normalizer, eff.grad_scale)) {
        cl.inspect = fz_require_no_nan;
        cl.inspect_ctx = &sn;
    }

    ctx k = {params_null ? NULL : block, owned, n, c, hw};
    const dafl_status st = fz_check_call(&cl, call, &k);
    FZ_REQUIRE(!huge || n == 0 || c == 0 || hw == 0 || st != DAFL_OK,
               "dafl_mse accepted n %zu c %zu hw %zu", n, c, hw);
    free(x);
    free(y);
    free(weights);
    free(block);
    dafl_set_isa(DAFL_ISA_AUTO);
    return 0;
}
