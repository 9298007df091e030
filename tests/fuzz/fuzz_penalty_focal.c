/*
 * libFuzzer harness: dafl_penalty_focal, all three input modes.
 *
 * Bytes: ISA, struct_size, alpha, beta, pos_weight, neg_weight, input_mode, clamp_eps,
 * reduction, normalizer, grad_scale, flags, then what fuzz_elementwise.h reads.
 */
#include "fuzz_elementwise.h"

static dafl_status call(const float *x, const float *y, size_t count, const void *params,
                        float *loss, float *grad, dafl_stats *stats)
{
    return dafl_penalty_focal(x, y, count, params, loss, grad, stats);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz f = fz_begin(data, size);
    fz_select_isa(&f);
    const dafl_penalty_focal_params def = DAFL_PENALTY_FOCAL_PARAMS_INIT;
    dafl_penalty_focal_params p = def;
    const size_t declared = fz_struct_size(&f, sizeof p);
    p.alpha = fz_param(&f, def.alpha);
    p.beta = fz_param(&f, def.beta);
    p.pos_weight = fz_param(&f, def.pos_weight);
    p.neg_weight = fz_param(&f, def.neg_weight);
    p.input_mode = (dafl_input_mode)fz_enum(&f, def.input_mode);
    p.clamp_eps = fz_param(&f, def.clamp_eps);
    p.reduction = (dafl_reduction)fz_enum(&f, def.reduction);
    p.normalizer = fz_param(&f, def.normalizer);
    p.grad_scale = fz_param(&f, def.grad_scale);
    p.flags = fz_enum(&f, def.flags);

    size_t owned;
    void *block = fz_params_block(&p, sizeof p, declared, &owned);
    dafl_penalty_focal_params eff;
    fz_effective_params(&eff, &def, sizeof def, block, owned);
    const int sane = fz_sane_exponent(eff.alpha) && fz_sane_exponent(eff.beta) &&
                     fz_sane_weight(eff.pos_weight) && fz_sane_weight(eff.neg_weight) &&
                     fz_sane_reduction(eff.reduction, eff.normalizer, eff.grad_scale);
    const int domain = eff.input_mode == DAFL_INPUT_PROBABILITIES ? FZ_VALUES_UNIT
                                                                  : FZ_VALUES_MODERATE;
    fz_elementwise(&f, "dafl_penalty_focal", call, block, eff.reduction == DAFL_REDUCTION_NONE,
                   def.reduction == DAFL_REDUCTION_NONE, sane ? domain : -1);
    free(block);
    dafl_set_isa(DAFL_ISA_AUTO);
    return 0;
}
