/*
 * libFuzzer harness: dafl_sigmoid_focal.
 *
 * Bytes: ISA, struct_size, gamma, alpha, reduction, normalizer, grad_scale, flags, then
 * what fuzz_elementwise.h reads.
 */
#include "fuzz_elementwise.h"

static dafl_status call(const float *x, const float *y, size_t count, const void *params,
                        float *loss, float *grad, dafl_stats *stats)
{
    return dafl_sigmoid_focal(x, y, count, params, loss, grad, stats);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz f = fz_begin(data, size);
    fz_select_isa(&f);
    const dafl_sigmoid_focal_params def = DAFL_SIGMOID_FOCAL_PARAMS_INIT;
    dafl_sigmoid_focal_params p = def;
    const size_t declared = fz_struct_size(&f, sizeof p);
    p.gamma = fz_param(&f, def.gamma);
    p.alpha = fz_param(&f, def.alpha);
    p.reduction = (dafl_reduction)fz_enum(&f, def.reduction);
    p.normalizer = fz_param(&f, def.normalizer);
    p.grad_scale = fz_param(&f, def.grad_scale);
    p.flags = fz_enum(&f, def.flags);

    size_t owned;
    void *block = fz_params_block(&p, sizeof p, declared, &owned);
    dafl_sigmoid_focal_params eff;
    fz_effective_params(&eff, &def, sizeof def, block, owned);
    /* alpha may be any number below +inf (torchvision's); one far above 1 scales the
     * loss into overflow, as torchvision's formula does: moderate only up to 1e6 */
    const int sane = fz_sane_exponent(eff.gamma) && eff.alpha <= 1e6f &&
                     fz_sane_reduction(eff.reduction, eff.normalizer, eff.grad_scale);
    fz_elementwise(&f, "dafl_sigmoid_focal", call, block, eff.reduction == DAFL_REDUCTION_NONE,
                   def.reduction == DAFL_REDUCTION_NONE, sane ? FZ_VALUES_MODERATE : -1);
    free(block);
    dafl_set_isa(DAFL_ISA_AUTO);
    return 0;
}
