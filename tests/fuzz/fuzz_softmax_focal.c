/*
 * libFuzzer harness: dafl_softmax_focal (NCHW and NHWC, class weights, ignore_index).
 *
 * Bytes: ISA, struct_size, gamma, layout, ignore_index (0 -100, 1 255, 2 -1, 3 0, 4 c-1,
 * 5 INT32_MIN, 6 INT32_MAX, 0xff raw, else byte - 7), class weights (0 NULL, 1 in [0, 4),
 * else any floats), reduction, normalizer, grad_scale, flags, n, c, hw (small, or huge),
 * label mode (0 valid or ignored, 1 a rare bad one, 2 raw, 3 edge values), pointers
 * (bit 0 params NULL, 1 logits NULL, 2 labels NULL, 3 loss NULL, 4 grad NULL, 5 stats
 * NULL), logit mode, payload.
 */
#include <stddef.h>

#include "fuzz_common.h"

#define MAX_LOGITS 4096
#define MAX_CLASSES 24

typedef struct ctx {
    const unsigned char *params; /* NULL or the caller's block */
    size_t params_bytes;
    size_t n, c, hw;
} ctx;

static dafl_status call(void *vctx, void *const in[], void *const out[])
{
    const ctx *k = vctx;
    unsigned char *params = NULL;
    const size_t at = offsetof(dafl_softmax_focal_params, class_weights);
    if (k->params) {
        params = fz_alloc(k->params_bytes);
        memcpy(params, k->params, k->params_bytes);
        if (k->params_bytes >= at + sizeof(float *)) {
            const float *w;
            memcpy(&w, params + at, sizeof w);
            if (w)
                memcpy(params + at, &in[2], sizeof(float *));
        }
    }
    dafl_status st = dafl_softmax_focal(in[0], in[1], k->n, k->c, k->hw, (const void *)params,
                                        out[0], out[1], out[2]);
    free(params);
    return st;
}

static int32_t label_of(const fz_payload *pl, size_t i, unsigned mode, size_t c, int32_t ignore)
{
    uint32_t w = fz_word(pl, i);
    const int32_t cc = (int32_t)(uint32_t)c, cc_1 = (int32_t)((uint32_t)c - 1u);
    switch (mode % 4) {
    case 1:
        if ((w & 0x7f) == 0x7f)
            return (int32_t)w;
        /* fall through */
    case 0:
        if ((w & 7) == 0 || c == 0)
            return ignore;
        return (int32_t)((w >> 3) % c);
    case 2:
        return (int32_t)w;
    default: {
        const int32_t edges[] = {-1, cc, INT32_MIN, INT32_MAX, ignore, 0, cc_1, 255, -100};
        return edges[w % 9];
    }
    }
}

/* Moderate logits, valid labels, sane parameters: no NaN per pixel or in the gradient
 * (the reduced MEAN loss is 0 / 0 when every pixel is ignored, so it is not checked). */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz f = fz_begin(data, size);
    fz_select_isa(&f);
    const dafl_softmax_focal_params def = DAFL_SOFTMAX_FOCAL_PARAMS_INIT;
    dafl_softmax_focal_params p = def;
    size_t declared = fz_struct_size(&f, sizeof p);
    const size_t wat = offsetof(dafl_softmax_focal_params, class_weights);
    if (declared > wat && declared < wat + sizeof(float *))
        declared = wat; /* no header ends inside a pointer */
    p.gamma = fz_param(&f, def.gamma);
    p.layout = (dafl_layout)fz_enum(&f, def.layout);
    const uint8_t ignore_byte = fz_u8(&f);
    const uint32_t ignore_raw = ignore_byte == 0xff ? fz_u32(&f) : 0;
    const uint8_t weight_values = fz_u8(&f);
    p.reduction = (dafl_reduction)fz_enum(&f, def.reduction);
    p.normalizer = fz_param(&f, def.normalizer);
    p.grad_scale = fz_param(&f, def.grad_scale);
    p.flags = fz_enum(&f, def.flags);
    int huge = 0;
    size_t n = fz_size(&f, 3, &huge), c = fz_size(&f, MAX_CLASSES, &huge);
    size_t hw = fz_size(&f, MAX_LOGITS, &huge);
    const unsigned label_mode = fz_u8(&f);
    uint8_t ptrs = fz_u8(&f);
    const unsigned x_mode = fz_u8(&f);
    const fz_payload payload = fz_rest(&f);

    size_t pixels = 0, count = 0;
    const int some_zero = n == 0 || hw == 0;
    if (!huge) {
        if (n * hw * c > MAX_LOGITS)
            hw = MAX_LOGITS / (n * (c ? c : 1));
        pixels = n * hw;
        count = pixels * c;
    } else if (some_zero) {
        /* No pixels, so nothing to read whatever c is (beyond DAFL_MAX_CLASSES the call
         * fails before it looks at anything). */
    } else if (!fz_product_overflows(n, c, hw, sizeof(float))) {
        ptrs |= 2; /* a size the library cannot refuse: only with NULL logits */
        if (c == 0)
            ptrs |= 4; /* (or NULL labels when there are no classes) */
    }

    int32_t ignore;
    switch (ignore_byte) {
    case 0: ignore = def.ignore_index; break;
    case 1: ignore = 255; break;
    case 2: ignore = -1; break;
    case 3: ignore = 0; break;
    case 4: ignore = (int32_t)((uint32_t)c - 1u); break;
    case 5: ignore = INT32_MIN; break;
    case 6: ignore = INT32_MAX; break;
    case 0xff: ignore = (int32_t)ignore_raw; break;
    default: ignore = ignore_byte - 7; break;
    }
    p.ignore_index = ignore;

    /* class weights: c of them (only when c is a real class count) */
    const int has_weights = weight_values != 0 && c <= MAX_CLASSES;
    const size_t n_weights = has_weights ? c : 0;
    float *weights = fz_alloc(n_weights * sizeof(float));
    for (size_t i = 0; i < n_weights; i++)
        weights[i] = weight_values == 1 ? (float)(fz_word(&payload, i + 77) >> 8) * 0x1.0p-22f
                                        : fz_value(&payload, i + 77, weight_values);
    p.class_weights = has_weights ? weights : NULL; /* replaced by each run's copy */

    size_t owned;
    unsigned char *block = fz_params_block(&p, sizeof p, declared, &owned);
    dafl_softmax_focal_params eff;
    fz_effective_params(&eff, &def, sizeof def, block, owned);
    const int params_null = ptrs & 1;
    const int none = (params_null ? def.reduction : eff.reduction) == DAFL_REDUCTION_NONE;

    const size_t nx = huge ? 16 : count, nl = huge ? 16 : pixels;
    float *x = fz_alloc(nx * sizeof(float));
    int32_t *labels = fz_alloc(nl * sizeof(int32_t));
    for (size_t i = 0; i < nx; i++)
        x[i] = fz_value(&payload, i, x_mode);
    for (size_t i = 0; i < nl; i++)
        labels[i] = label_of(&payload, i + nx, label_mode, c,
                             params_null ? def.ignore_index : eff.ignore_index);

    fz_call cl;
    fz_call_init(&cl, "dafl_softmax_focal");
    fz_add_in(&cl, x, nx * sizeof(float), (ptrs >> 1) & 1);
    fz_add_in(&cl, labels, nl * sizeof(int32_t), (ptrs >> 2) & 1);
    fz_add_in(&cl, weights, n_weights * sizeof(float), !has_weights);
    fz_add_out(&cl, (none ? nl : 1) * sizeof(float), (ptrs >> 3) & 1, 1);
    fz_add_out(&cl, nx * sizeof(float), (ptrs >> 4) & 1, 1);
    fz_add_out(&cl, sizeof(dafl_stats), (ptrs >> 5) & 1, 0);

    fz_sane_outputs sn = {"dafl_softmax_focal", none ? nl : 1, nx,
                          none || eff.reduction != DAFL_REDUCTION_MEAN};
    if (!huge && !params_null && x_mode % 4 == FZ_VALUES_MODERATE && label_mode % 4 == 0 &&
        weight_values <= 1 && fz_sane_exponent(eff.gamma) &&
        fz_sane_reduction(eff.reduction, eff.normalizer, eff.grad_scale)) {
        cl.inspect = fz_require_no_nan;
        cl.inspect_ctx = &sn;
    }

    ctx k = {params_null ? NULL : block, owned, n, c, hw};
    const dafl_status st = fz_check_call(&cl, call, &k);
    FZ_REQUIRE(!huge || some_zero || st != DAFL_OK,
               "dafl_softmax_focal accepted n %zu c %zu hw %zu", n, c, hw);
    free(x);
    free(labels);
    free(weights);
    free(block);
    dafl_set_isa(DAFL_ISA_AUTO);
    return 0;
}
