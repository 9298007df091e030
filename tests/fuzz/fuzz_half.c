/*
 * libFuzzer harness: the half-precision paths (SPEC 13) of the element-wise losses,
 * dafl_penalty_focal, dafl_sigmoid_focal, dafl_bce_with_logits and dafl_mse.
 *
 * Bytes:
 *   ISA        fz_select_isa
 *   loss       byte % 4: penalty focal, sigmoid focal, BCE, MSE (one channel)
 *   dtypes     three bytes (input, target, gradient), each fz_dtype: float32, bfloat16,
 *              float16, or an invalid enum value
 *   reduction  fz_enum (the default, a valid value, or an invalid one)
 *   mode       penalty focal's input_mode (fz_enum); ignored by the others
 *   count      fz_size, at most FZ_HALF_MAX_COUNT, or huge
 *   pointers   bit 0 loss NULL, 1 grad NULL, 2 stats NULL, 3 input NULL, 4 target NULL
 *   x mode     bit 0: raw 16-bit patterns (NaN payloads, infinities, subnormals) for a
 *              half-precision input, else fz_value's logits (or probabilities in
 *              penalty focal's probability mode) rounded into its type
 *   y mode     FZ_TARGETS_*, rounded into the target's type
 *   payload
 *
 * Checked, besides fuzz_common.h's (the scalar kernels' results on every ISA, nothing
 * written on failure, inputs unchanged): where the call succeeds, the same call with
 * float32 buffers holding the widened inputs gives the same status, the loss's bits, the
 * same statistics, and a gradient that rounds (to nearest even, with this file's own
 * conversions) to the half-precision gradient's bits; NaN for NaN.
 */
#include "fuzz_common.h"

#define FZ_HALF_MAX_COUNT (2 * DAFL_BLOCK_ELEMENTS + 40)
#define FZ_SHORT 16 /* elements in the buffers passed with a huge count */

/* ---- conversions written here, apart from the library's src/kernels/half.h ------------- */

static int dtype_valid(uint32_t d)
{
    return d == DAFL_DTYPE_FLOAT32 || d == DAFL_DTYPE_BFLOAT16 || d == DAFL_DTYPE_FLOAT16;
}

/* bytes per element; an invalid dtype gets 4 (the call must refuse it anyway) */
static size_t dtype_bytes(uint32_t d)
{
    return d == DAFL_DTYPE_BFLOAT16 || d == DAFL_DTYPE_FLOAT16 ? 2 : 4;
}

static uint32_t fz_dtype(fz *f)
{
    uint8_t b = fz_u8(f);
    switch (b % 8) {
    case 0: case 1: return DAFL_DTYPE_FLOAT32;
    case 2: case 3: case 4: return DAFL_DTYPE_BFLOAT16;
    case 5: case 6: return DAFL_DTYPE_FLOAT16;
    default: return b < 128 ? 3u : 0x80000000u | b; /* invalid */
    }
}

static uint32_t bits_of(float f)
{
    uint32_t b;
    memcpy(&b, &f, sizeof b);
    return b;
}

/* float16 -> float, by its value: (-1)^s * m * 2^(e-25) with the implicit bit. */
static float widen_f16(uint16_t h)
{
    const uint32_t sign = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
    if (e == 0x1f) /* infinity, or NaN made quiet with the payload on top */
        return fz_float_of_bits(sign | 0x7f800000u | (m ? 0x400000u | (m << 13) : 0u));
    const double v = e ? ldexp((double)(m | 0x400u), (int)e - 25) : ldexp((double)m, -24);
    return sign ? -(float)v : (float)v;
}

static float widen(const void *p, size_t i, uint32_t dtype)
{
    if (dtype == DAFL_DTYPE_FLOAT32) {
        float f;
        memcpy(&f, (const char *)p + 4 * i, 4);
        return f;
    }
    uint16_t h;
    memcpy(&h, (const char *)p + 2 * i, 2);
    return dtype == DAFL_DTYPE_BFLOAT16 ? fz_float_of_bits((uint32_t)h << 16) : widen_f16(h);
}

/* float -> bfloat16, nearest even: the 8-bit significand by rint in double (exact). */
static uint16_t narrow_bf16(float f)
{
    const uint32_t b = bits_of(f);
    if (isnan(f))
        return (uint16_t)((b >> 16) | 0x40u);
    if (isinf(f) || f == 0.0f)
        return (uint16_t)(b >> 16);
    int e;
    frexp(f, &e); /* |f| in [2^(e-1), 2^e) */
    const int lsb = (e - 1 < -126 ? -126 : e - 1) - 7; /* the last kept bit's weight */
    const double r = nearbyint(ldexp(fabs((double)f), -lsb)) * ldexp(1.0, lsb);
    const float rf = r >= 0x1p128 ? INFINITY : (float)r; /* rounded up past the largest */
    return (uint16_t)((bits_of(rf) >> 16) | ((b >> 16) & 0x8000u));
}

/* float -> float16, nearest even; overflow to infinity, subnormals kept. */
static uint16_t narrow_f16(float f)
{
    const uint32_t b = bits_of(f), sign = (b >> 16) & 0x8000u;
    if (isnan(f))
        return (uint16_t)(sign | 0x7e00u | ((b >> 13) & 0x3ffu));
    const double a = fabs((double)f);
    if (a >= 65520.0) /* halfway above 65504 and up: infinity */
        return (uint16_t)(sign | 0x7c00u);
    if (a < 0x1p-14) /* subnormal or zero: units of 2^-24 (0x400 is the least normal) */
        return (uint16_t)(sign | (uint32_t)nearbyint(a * 0x1p24));
    int e;
    frexp(a, &e);
    uint32_t q = (uint32_t)nearbyint(ldexp(a, 11 - e)); /* 1024 .. 2048 */
    if (q == 2048) {
        q = 1024;
        e++;
    }
    const uint32_t field = (uint32_t)(e - 1 + 15);
    if (field >= 31)
        return (uint16_t)(sign | 0x7c00u);
    return (uint16_t)(sign | field << 10 | (q - 1024u));
}

static void store(void *p, size_t i, uint32_t dtype, float f)
{
    if (dtype == DAFL_DTYPE_FLOAT32) {
        memcpy((char *)p + 4 * i, &f, 4);
        return;
    }
    const uint16_t h = dtype == DAFL_DTYPE_BFLOAT16 ? narrow_bf16(f) : narrow_f16(f);
    memcpy((char *)p + 2 * i, &h, 2);
}

/* ---- the call ------------------------------------------------------------------------------ */

enum { LOSS_PENALTY, LOSS_SIGMOID, LOSS_BCE, LOSS_MSE };

typedef struct half_call {
    int loss;
    uint32_t dt[3]; /* input, target, gradient */
    uint32_t reduction, mode;
    size_t count;
} half_call;

/* Calls the loss with the dtypes dt[] (the float32 call: all FLOAT32). */
static dafl_status call_with(const half_call *h, const uint32_t dt[3], const void *x,
                             const void *y, float *loss, void *grad, dafl_stats *stats)
{
    switch (h->loss) {
    case LOSS_PENALTY: {
        dafl_penalty_focal_params p = DAFL_PENALTY_FOCAL_PARAMS_INIT;
        p.reduction = (dafl_reduction)h->reduction;
        p.input_mode = (dafl_input_mode)h->mode;
        p.input_dtype = (dafl_dtype)dt[0];
        p.target_dtype = (dafl_dtype)dt[1];
        p.grad_dtype = (dafl_dtype)dt[2];
        return dafl_penalty_focal(x, y, h->count, &p, loss, grad, stats);
    }
    case LOSS_SIGMOID: {
        dafl_sigmoid_focal_params p = DAFL_SIGMOID_FOCAL_PARAMS_INIT;
        p.reduction = (dafl_reduction)h->reduction;
        p.input_dtype = (dafl_dtype)dt[0];
        p.target_dtype = (dafl_dtype)dt[1];
        p.grad_dtype = (dafl_dtype)dt[2];
        return dafl_sigmoid_focal(x, y, h->count, &p, loss, grad, stats);
    }
    case LOSS_BCE: {
        dafl_bce_params p = DAFL_BCE_PARAMS_INIT;
        p.reduction = (dafl_reduction)h->reduction;
        p.input_dtype = (dafl_dtype)dt[0];
        p.target_dtype = (dafl_dtype)dt[1];
        p.grad_dtype = (dafl_dtype)dt[2];
        return dafl_bce_with_logits(x, y, h->count, &p, loss, grad, stats);
    }
    default: {
        dafl_mse_params p = DAFL_MSE_PARAMS_INIT;
        p.reduction = (dafl_reduction)h->reduction;
        p.input_dtype = (dafl_dtype)dt[0];
        p.target_dtype = (dafl_dtype)dt[1];
        p.grad_dtype = (dafl_dtype)dt[2];
        return dafl_mse(x, y, 1, 1, h->count, &p, loss, grad, stats);
    }
    }
}

static dafl_status fz_half_call(void *ctx, void *const in[], void *const out[])
{
    const half_call *h = ctx;
    return call_with(h, h->dt, in[0], in[1], out[0], out[1], out[2]);
}

typedef struct oracle {
    const half_call *h;
    const void *x, *y; /* the half call's inputs */
    size_t loss_floats;
} oracle;

/* The float32 call on the widened inputs, against the half call's outputs. */
static void check_against_float32(void *vctx, dafl_status st, void *const out[])
{
    const oracle *o = vctx;
    const half_call *h = o->h;
    if (st != DAFL_OK)
        return;
    const size_t n = h->count;
    float *x = fz_alloc(n * 4), *y = fz_alloc(n * 4), *g = fz_alloc(n * 4);
    float *loss = fz_alloc(o->loss_floats * 4);
    for (size_t i = 0; i < n; i++) {
        x[i] = widen(o->x, i, h->dt[0]);
        y[i] = widen(o->y, i, h->dt[1]);
    }
    dafl_stats stats;
    memset(&stats, FZ_SENTINEL, sizeof stats); /* as fz_run_one fills an output */
    const uint32_t f32[3] = {DAFL_DTYPE_FLOAT32, DAFL_DTYPE_FLOAT32, DAFL_DTYPE_FLOAT32};
    const dafl_status st32 = call_with(h, f32, x, y, out[0] ? loss : NULL, out[1] ? g : NULL,
                                       out[2] ? &stats : NULL);
    FZ_REQUIRE(st32 == DAFL_OK, "half call succeeded but the float32 call on the widened "
               "inputs returned %s", dafl_status_string(st32));
    size_t where = 0;
    if (out[0])
        FZ_REQUIRE(fz_same_floats(out[0], loss, o->loss_floats * 4, &where),
                   "loss[%zu] differs from the float32 call's", where);
    if (out[2])
        FZ_REQUIRE(memcmp(out[2], &stats, sizeof stats) == 0,
                   "statistics differ from the float32 call's");
    for (size_t i = 0; out[1] && i < n; i++) {
        if (h->dt[2] == DAFL_DTYPE_FLOAT32) {
            FZ_REQUIRE(fz_same_floats((const float *)out[1] + i, g + i, 4, &where),
                       "grad[%zu] differs from the float32 call's", i);
            continue;
        }
        uint16_t got, want = h->dt[2] == DAFL_DTYPE_BFLOAT16 ? narrow_bf16(g[i]) : narrow_f16(g[i]);
        memcpy(&got, (const char *)out[1] + 2 * i, 2);
        FZ_REQUIRE(fz_same_half(got, want, h->dt[2] == DAFL_DTYPE_BFLOAT16 ? FZ_OUT_BF16 : FZ_OUT_F16),
                   "grad[%zu] is %04x, the float32 gradient %a rounds to %04x", i, got,
                   (double)g[i], want);
    }
    free(x);
    free(y);
    free(g);
    free(loss);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz f = fz_begin(data, size);
    fz_select_isa(&f);
    half_call h;
    h.loss = fz_u8(&f) % 4;
    for (int k = 0; k < 3; k++)
        h.dt[k] = fz_dtype(&f);
    const uint32_t def_reduction = h.loss == LOSS_PENALTY ? DAFL_REDUCTION_POSITIVES
                                                          : DAFL_REDUCTION_MEAN;
    h.reduction = fz_enum(&f, def_reduction);
    h.mode = fz_enum(&f, DAFL_INPUT_LOGITS);
    if (h.loss != LOSS_PENALTY)
        h.mode = DAFL_INPUT_LOGITS;
    int huge = 0;
    h.count = fz_size(&f, FZ_HALF_MAX_COUNT, &huge);
    uint8_t ptrs = fz_u8(&f);
    if (huge)
        ptrs |= 8; /* a huge count only with a NULL input: the NULL check comes first */
    const unsigned x_mode = fz_u8(&f), y_mode = fz_u8(&f);
    const fz_payload payload = fz_rest(&f);

    const size_t n = huge ? FZ_SHORT : h.count;
    const size_t xb = dtype_bytes(h.dt[0]), yb = dtype_bytes(h.dt[1]), gb = dtype_bytes(h.dt[2]);
    void *x = fz_alloc(n * xb), *y = fz_alloc(n * yb);
    const int probabilities = h.mode == DAFL_INPUT_PROBABILITIES;
    for (size_t i = 0; i < n; i++) {
        if ((x_mode & 1) && xb == 2) {
            const uint16_t raw = (uint16_t)fz_word(&payload, i);
            memcpy((char *)x + 2 * i, &raw, 2);
        } else {
            store(x, i, dtype_valid(h.dt[0]) ? h.dt[0] : DAFL_DTYPE_FLOAT32,
                  fz_value(&payload, i, probabilities ? FZ_VALUES_UNIT : x_mode >> 1));
        }
        store(y, i, dtype_valid(h.dt[1]) ? h.dt[1] : DAFL_DTYPE_FLOAT32,
              fz_target(&payload, i + n, y_mode));
    }
    const int reduction_none = h.reduction == DAFL_REDUCTION_NONE;
    const size_t loss_floats = reduction_none ? n : 1;

    fz_call c;
    fz_call_init(&c, "half precision");
    fz_add_in(&c, x, n * xb, (ptrs >> 3) & 1);
    fz_add_in(&c, y, n * yb, (ptrs >> 4) & 1);
    fz_add_out(&c, loss_floats * 4, ptrs & 1, 1);
    fz_add_out(&c, n * gb, (ptrs >> 1) & 1,
               h.dt[2] == DAFL_DTYPE_BFLOAT16  ? FZ_OUT_BF16
               : h.dt[2] == DAFL_DTYPE_FLOAT16 ? FZ_OUT_F16
                                               : FZ_OUT_FLOAT);
    fz_add_out(&c, sizeof(dafl_stats), (ptrs >> 2) & 1, 0);
    oracle o = {&h, x, y, loss_floats};
    if (!huge) {
        c.inspect = check_against_float32;
        c.inspect_ctx = &o;
    }
    const dafl_status st = fz_check_call(&c, fz_half_call, &h);
    FZ_REQUIRE(!huge || st != DAFL_OK, "a huge count %zu was accepted", h.count);
    FZ_REQUIRE(st != DAFL_OK || (dtype_valid(h.dt[0]) && dtype_valid(h.dt[1]) &&
                                 dtype_valid(h.dt[2])),
               "an invalid dtype (%u, %u, %u) was accepted", h.dt[0], h.dt[1], h.dt[2]);
    free(x);
    free(y);
    dafl_set_isa(DAFL_ISA_AUTO);
    return 0;
}
