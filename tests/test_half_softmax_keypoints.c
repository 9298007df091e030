/*
 * Half precision (SPEC 13) in the two losses that are not element-wise: softmax focal
 * (bfloat16 or float16 logits and gradient, NCHW and NHWC) and the keypoint-fused penalty
 * focal loss (bfloat16 or float16 input and gradient, float32 rendered targets).  Under
 * every ISA this machine runs, each call is checked against the float32 call on the
 * widened inputs: the loss, per-pixel (per-element) losses and statistics bit for bit,
 * each gradient element the float32 gradient rounded to nearest even into its type; the
 * keypoint-fused call also against dafl_penalty_focal with the same input and gradient
 * types on the rendered targets.  The widening and rounding the checks use are computed
 * here by value in double precision (ldexp, nearbyint), not by the library's integer code.
 * Class counts 1..20 and around the kernel's 64 cached classes, pixel counts around
 * every vector width and straddling images and blocks, misaligned buffers, bytes around
 * the outputs untouched, NaN payloads, infinities, subnormals, float16 gradient overflow,
 * gradients in place, 1-3 threads, and the refusals (unknown dtype, struct sizes,
 * overlaps) that write nothing.
 */
#include <stddef.h>

#include "test_common.h"

enum { F32 = DAFL_DTYPE_FLOAT32, BF16 = DAFL_DTYPE_BFLOAT16, F16 = DAFL_DTYPE_FLOAT16 };

static const char *dtype_name(int dt) { return dt == F32 ? "f32" : dt == BF16 ? "bf16" : "f16"; }
static size_t dtype_bytes(int dt) { return dt == F32 ? 4 : 2; }

/* ---- the reference: 16-bit formats by value ------------------------------------------- */

typedef struct half_format {
    int mantissa_bits, exponent_bits, bias;
} half_format;

static half_format format(int dt)
{
    return dt == BF16 ? (half_format){7, 8, 127} : (half_format){10, 5, 15};
}

/* The number a 16-bit pattern stands for (any NaN as NAN). */
static double value_of(int dt, uint16_t bits)
{
    half_format f = format(dt);
    unsigned emax = (1u << f.exponent_bits) - 1u, e = (bits >> f.mantissa_bits) & emax;
    unsigned m = bits & ((1u << f.mantissa_bits) - 1u);
    double v;
    if (e == emax)
        v = m ? NAN : INFINITY;
    else if (e == 0) /* subnormal: m units of the smallest spacing */
        v = ldexp(m, 1 - f.bias - f.mantissa_bits);
    else
        v = ldexp((double)(m | (1u << f.mantissa_bits)), (int)e - f.bias - f.mantissa_bits);
    return bits >> 15 ? -v : v;
}

/* g rounded to nearest, ties to even, into the format, as a double (+-inf beyond the
 * largest finite value plus half a spacing). */
static double rounded(int dt, float g)
{
    if (!isfinite(g) || g == 0.0f)
        return g;
    half_format f = format(dt);
    double a = fabs((double)g);
    int e = ilogb(a);
    if (e < 1 - f.bias)
        e = 1 - f.bias; /* the subnormal spacing below the smallest normal */
    double spacing = ldexp(1.0, e - f.mantissa_bits);
    double r = nearbyint(a / spacing) * spacing; /* exact in double; rounds ties to even */
    double largest = ldexp(2.0 - ldexp(1.0, -f.mantissa_bits), (1 << f.exponent_bits) - 2 - f.bias);
    if (r > largest)
        r = INFINITY;
    return g < 0.0f ? -r : r;
}

static uint16_t bits_at(const void *buf, size_t i)
{
    uint16_t h;
    memcpy(&h, (const char *)buf + 2 * i, 2);
    return h;
}

/* Element i of a buffer of dtype dt as the float32 call must see it. */
static float widened(int dt, const void *buf, size_t i)
{
    return dt == F32 ? ((const float *)buf)[i] : (float)value_of(dt, bits_at(buf, i));
}

/* Whether element i of a gradient of dtype dt is g as SPEC 13 rounds it (NaN: any NaN). */
static int holds_rounded(int dt, const void *buf, size_t i, float g)
{
    if (dt == F32)
        return test_same_bits(((const float *)buf)[i], g);
    double got = value_of(dt, bits_at(buf, i)), want = rounded(dt, g);
    if (isnan(want))
        return isnan(got);
    return got == want && signbit(got) == signbit(want);
}

/* Whether element i of two buffers of dtype dt holds the same value: the same bits, or
 * NaN in both (a NaN's sign and payload are not part of the contract). */
static int same_element(int dt, const void *a, const void *b, size_t i)
{
    if (dt == F32)
        return test_same_bits(((const float *)a)[i], ((const float *)b)[i]);
    uint16_t x = bits_at(a, i), y = bits_at(b, i);
    return x == y || (isnan(value_of(dt, x)) && isnan(value_of(dt, y)));
}

/* ---- inputs ----------------------------------------------------------------------------- */

/* 16-bit patterns that need care, in each format: infinities, NaNs (quiet, with a payload,
 * signalling), subnormals, zeros, the largest finite values. */
static const uint16_t bf16_special[] = {0x7f80, 0xff80, 0x7fc0, 0xffe3, 0x7f81, 0x0001,
                                        0x807f, 0x0000, 0x8000, 0x7f7f, 0xff7f};
static const uint16_t f16_special[] = {0x7c00, 0xfc00, 0x7e00, 0xfe15, 0x7c01, 0x0001,
                                       0x83ff, 0x0000, 0x8000, 0x7bff, 0xfbff};
#define N_SPECIAL 11

/* A random pattern of magnitude below 2^5 (logits) or in [0, 1] (probabilities): sign,
 * exponent and mantissa drawn apart, so that small magnitudes are as common as large. */
static uint16_t random_half(int dt, uint64_t *seed, int probability)
{
    half_format f = format(dt);
    uint64_t r = test_rand64(seed);
    int top = f.bias + (probability ? -1 : 4), span = probability ? 14 : 19;
    unsigned e = (unsigned)(top - (int)(r % (uint64_t)span));
    unsigned m = (unsigned)(r >> 8) & ((1u << f.mantissa_bits) - 1u);
    unsigned sign = !probability && ((r >> 40) & 1u);
    if (probability && (r >> 41) % 16 == 0)
        return dt == BF16 ? 0x3f80 : 0x3c00; /* exactly 1 */
    return (uint16_t)(sign << 15 | e << f.mantissa_bits | m);
}

/* `count` inputs of dtype dt: random, with a special value every so often (`specials`:
 * roughly one element in that many; 0: none). */
static void fill_input(int dt, void *buf, size_t count, uint64_t seed, int probability,
                       unsigned specials)
{
    for (size_t i = 0; i < count; i++) {
        uint64_t r = test_rand64(&seed);
        int special = specials && r % specials == 0;
        if (dt == F32) {
            float v = probability ? test_uniform(&seed, 0.0f, 1.0f)
                                  : test_uniform(&seed, -30.0f, 30.0f);
            if (special)
                v = (r >> 20) % 3 == 0 ? NAN : (r >> 20) % 3 == 1 ? INFINITY : -INFINITY;
            ((float *)buf)[i] = v;
            continue;
        }
        uint16_t h = random_half(dt, &seed, probability);
        if (special)
            h = (dt == BF16 ? bf16_special : f16_special)[(r >> 20) % N_SPECIAL];
        memcpy((char *)buf + 2 * i, &h, 2);
    }
}

/* The float32 copy of a buffer of dtype dt, widened by the reference. */
static float *widen_all(int dt, const void *buf, size_t count)
{
    float *w = malloc((count ? count : 1) * sizeof *w);
    ck_assert(w);
    for (size_t i = 0; i < count; i++)
        w[i] = widened(dt, buf, i);
    return w;
}

/* A buffer of `bytes` with `guard` bytes of 0xa5 on each side: p is where the caller's
 * buffer starts (`misalign` bytes past the guard). */
typedef struct guarded {
    unsigned char *base;
    size_t bytes, misalign;
    void *p;
} guarded;

#define GUARD 32

static guarded guarded_alloc(size_t bytes, size_t misalign)
{
    guarded g = {malloc(bytes + 2 * GUARD + misalign), bytes, misalign, NULL};
    ck_assert(g.base);
    memset(g.base, 0xa5, bytes + 2 * GUARD + misalign);
    g.p = g.base + GUARD + misalign;
    return g;
}

static int guards_intact(const guarded *g)
{
    for (size_t i = 0; i < GUARD + g->misalign; i++)
        if (g->base[i] != 0xa5)
            return 0;
    for (size_t i = 0; i < GUARD; i++)
        if (g->base[GUARD + g->misalign + g->bytes + i] != 0xa5)
            return 0;
    return 1;
}

static void guarded_reset(guarded *g) { memset(g->base, 0xa5, g->bytes + 2 * GUARD + g->misalign); }

static void require_same_stats(const dafl_stats *a, const dafl_stats *b, const char *what)
{
    TEST_REQUIRE(memcmp(a, b, sizeof *a) == 0, "%s: statistics differ (loss sum %a vs %a)",
                 what, dafl_stats_loss_sum(a), dafl_stats_loss_sum(b));
}

/* ---- softmax focal ------------------------------------------------------------------------ */

typedef struct softmax_case {
    size_t n, c, hw;
    int nhwc, x_dtype, grad_dtype;
    float gamma;
    int weighted;
    int32_t ignore;
    size_t x_misalign, grad_misalign; /* bytes */
    unsigned specials;
} softmax_case;

static dafl_softmax_focal_params softmax_params(const softmax_case *k, const float *weights,
                                                dafl_reduction reduction, float grad_scale,
                                                int x_dtype, int grad_dtype)
{
    dafl_softmax_focal_params p;
    dafl_softmax_focal_params_init(&p);
    p.gamma = k->gamma;
    p.layout = k->nhwc ? DAFL_LAYOUT_NHWC : DAFL_LAYOUT_NCHW;
    p.ignore_index = k->ignore;
    p.class_weights = k->weighted ? weights : NULL;
    p.reduction = reduction;
    p.grad_scale = grad_scale;
    p.input_dtype = (dafl_dtype)x_dtype;
    p.grad_dtype = (dafl_dtype)grad_dtype;
    return p;
}

/* One case: three calls (per-pixel losses with the gradient; the mean forward only; the
 * sum with a gradient scale that overflows float16), each half call against the float32
 * call on the widened logits. */
static void check_softmax(const softmax_case *k, uint64_t seed, const char *isa)
{
    const size_t pixels = k->n * k->hw, count = pixels * k->c;
    guarded x = guarded_alloc(count * dtype_bytes(k->x_dtype), k->x_misalign);
    guarded g = guarded_alloc(count * dtype_bytes(k->grad_dtype), k->grad_misalign);
    guarded l = guarded_alloc(pixels * sizeof(float), 4);
    int32_t *labels = malloc(pixels * sizeof *labels);
    float *weights = malloc(k->c * sizeof *weights), *g32 = malloc(count * sizeof *g32);
    float *l32 = malloc(pixels * sizeof *l32);
    ck_assert(labels && weights && g32 && l32);
    fill_input(k->x_dtype, x.p, count, seed, 0, k->specials);
    for (size_t i = 0; i < pixels; i++)
        labels[i] = test_rand64(&seed) % 9 == 0 ? k->ignore
                                                : (int32_t)(test_rand64(&seed) % k->c);
    for (size_t i = 0; i < k->c; i++)
        weights[i] = test_uniform(&seed, 0.1f, 3.0f);
    float *xw = widen_all(k->x_dtype, x.p, count);

    static const struct {
        dafl_reduction reduction;
        int want_grad;
        float grad_scale;
    } passes[3] = {{DAFL_REDUCTION_NONE, 1, 0.7f},
                   {DAFL_REDUCTION_MEAN, 0, 1.0f},
                   {DAFL_REDUCTION_SUM, 1, 2.0e5f}};
    for (int pass = 0; pass < 3; pass++) {
        const int none = passes[pass].reduction == DAFL_REDUCTION_NONE;
        const int want_grad = passes[pass].want_grad;
        dafl_softmax_focal_params p32 =
            softmax_params(k, weights, passes[pass].reduction, passes[pass].grad_scale, F32, F32);
        dafl_softmax_focal_params ph = softmax_params(k, weights, passes[pass].reduction,
                                                      passes[pass].grad_scale, k->x_dtype,
                                                      k->grad_dtype);
        float loss32 = -1.0f, lossh = -2.0f;
        dafl_stats s32, sh;
        ck_assert_int_eq(dafl_softmax_focal(xw, labels, k->n, k->c, k->hw, &p32,
                                            none ? l32 : &loss32, want_grad ? g32 : NULL, &s32),
                         DAFL_OK);
        guarded_reset(&g);
        guarded_reset(&l);
        ck_assert_int_eq(dafl_softmax_focal(x.p, labels, k->n, k->c, k->hw, &ph,
                                            none ? l.p : &lossh, want_grad ? g.p : NULL, &sh),
                         DAFL_OK);
        char what[200];
        snprintf(what, sizeof what, "%s softmax %s->%s %s n=%zu c=%zu hw=%zu gamma=%g%s pass %d",
                 isa, dtype_name(k->x_dtype), dtype_name(k->grad_dtype),
                 k->nhwc ? "NHWC" : "NCHW", k->n, k->c, k->hw, (double)k->gamma,
                 k->weighted ? " weighted" : "", pass);
        if (none) {
            for (size_t i = 0; i < pixels; i++)
                TEST_REQUIRE(test_same_bits(((float *)l.p)[i], l32[i]),
                             "%s: loss[%zu] %a vs float32 %a", what, i,
                             (double)((float *)l.p)[i], (double)l32[i]);
        } else {
            TEST_REQUIRE(test_same_bits(lossh, loss32), "%s: loss %a vs float32 %a", what,
                         (double)lossh, (double)loss32);
        }
        require_same_stats(&sh, &s32, what);
        TEST_REQUIRE(guards_intact(&l) && guards_intact(&g) &&
                         (want_grad || g.base[GUARD + g.misalign] == 0xa5),
                     "%s: a byte outside the outputs was written", what);
        if (want_grad)
            for (size_t i = 0; i < count; i++)
                TEST_REQUIRE(holds_rounded(k->grad_dtype, g.p, i, g32[i]),
                             "%s: grad[%zu] is not float32 %a rounded (logit %a)", what, i,
                             (double)g32[i], (double)xw[i]);
    }
    free(x.base), free(g.base), free(l.base);
    free(labels), free(weights), free(g32), free(l32), free(xw);
}

typedef struct dtype_pair {
    int x, grad;
} dtype_pair;

static const dtype_pair softmax_pairs[] = {{BF16, BF16}, {F16, F16}, {BF16, F32}, {F16, F32},
                                           {F32, BF16},  {F32, F16}, {BF16, F16}, {F16, BF16}};
#define N_SOFTMAX_PAIRS (sizeof softmax_pairs / sizeof softmax_pairs[0])

/* _i: the dtype pair */
START_TEST(softmax_half_matches_float32)
{
    /* 1..20 classes, and around the 64 classes whose e_k the kernel keeps */
    size_t classes[24];
    for (size_t c = 1; c <= 20; c++)
        classes[c - 1] = c;
    classes[20] = 63, classes[21] = 64, classes[22] = 65, classes[23] = 70;
    /* pixels per image around 4, 8 and 16 lanes, with tails, and images straddled */
    static const size_t pixel_counts[] = {1, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 33};
    static const float gammas[] = {2.0f, 0.0f, 1.5f, 2.7f};
    const dtype_pair dt = softmax_pairs[_i];
    for (int isa_i = 0; isa_i < TEST_ISA_COUNT; isa_i++) {
        dafl_isa isa = test_all_isas[isa_i];
        if (!test_use_isa(isa, "softmax half"))
            continue;
        int cases = 0;
        for (size_t ci = 0; ci < sizeof classes / sizeof classes[0]; ci++)
            for (size_t pi = 0; pi < sizeof pixel_counts / sizeof pixel_counts[0]; pi++)
                for (int nhwc = 0; nhwc < 2; nhwc++) {
                    size_t v = ci + pi + (size_t)nhwc;
                    softmax_case k = {.n = 1 + v % 2,
                                      .c = classes[ci],
                                      .hw = pixel_counts[pi],
                                      .nhwc = nhwc,
                                      .x_dtype = dt.x,
                                      .grad_dtype = dt.grad,
                                      .gamma = gammas[v % 4],
                                      .weighted = (int)(v / 2 % 2),
                                      .ignore = v % 3 ? -100 : 255,
                                      .x_misalign = dtype_bytes(dt.x) * (v % 4),
                                      .grad_misalign = dtype_bytes(dt.grad) * ((v + 1 + ci) % 4),
                                      .specials = 7 + (unsigned)(v % 5) * 6};
                    check_softmax(&k, 0x50f7 + 1000 * ci + 10 * pi + (uint64_t)nhwc + 77 * _i,
                                  dafl_isa_name(isa));
                    cases++;
                }
        /* more pixels than a block (1024), with and without special values */
        for (int nhwc = 0; nhwc < 2; nhwc++)
            for (size_t c = 3; c <= 19; c += 16) {
                softmax_case k = {1,   c,    DAFL_BLOCK_ELEMENTS + 37, nhwc, dt.x, dt.grad, 2.0f,
                                  nhwc, -100, dtype_bytes(dt.x), 0, c == 3 ? 0u : 29u};
                check_softmax(&k, 0xb10c + c + (uint64_t)nhwc, dafl_isa_name(isa));
                cases++;
            }
        printf("softmax half %-7s %s -> %s: %d cases bit-exact\n", dafl_isa_name(isa),
               dtype_name(dt.x), dtype_name(dt.grad), cases);
    }
    dafl_set_isa(DAFL_ISA_AUTO);
}
END_TEST

/* Known answers, independent of any reference code: two classes with equal logits (0 and
 * -0) and gamma 0 give the gradient -+grad_scale/2 exactly, so grad_scale 131040 puts
 * 65520 (the tie between float16's largest 65504 and 2^16: rounded to even, infinity)
 * into each element, 131000 puts 65500 (to 65504), 2^-23 puts 2^-24 (float16's smallest
 * subnormal) and 2^-24 the tie between it and 0 (to 0).  bfloat16: 2 + 2^-7 is the tie
 * between 2 and 2 + 2^-6 (to even, 2), 1 + 3 * 2^-8 the tie between 1 + 2^-7 and
 * 1 + 2^-6 (to even, 1 + 2^-6).  Then a float16 subnormal logit, widened exactly. */
START_TEST(softmax_rounding_known_answers)
{
    static const struct {
        int dt;
        float scale;
        uint16_t want_minus, want_plus; /* the label's class, the other */
    } cases[] = {
        {F16, 131040.0f, 0xfc00, 0x7c00}, {F16, 131000.0f, 0xfbff, 0x7bff},
        {F16, 0x1p-23f, 0x8001, 0x0001},  {F16, 0x1p-24f, 0x8000, 0x0000},
        {BF16, 4.0f + 0x1p-6f, 0xc000, 0x4000}, {BF16, 2.0f + 0x1.8p-6f, 0xbf82, 0x3f82},
    };
    for (int isa_i = 0; isa_i < TEST_ISA_COUNT; isa_i++) {
        dafl_isa isa = test_all_isas[isa_i];
        if (!test_use_isa(isa, "softmax rounding known answers"))
            continue;
        for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++)
            for (int nhwc = 0; nhwc < 2; nhwc++) {
                enum { HW = 21 }; /* a vector of 16 and a tail */
                uint16_t x[2 * HW], g[2 * HW];
                int32_t labels[HW];
                for (size_t i = 0; i < 2 * HW; i++) /* +0 and -0 in both formats */
                    x[i] = i % 3 == 0 ? 0x0000 : 0x8000;
                for (size_t i = 0; i < HW; i++)
                    labels[i] = (int32_t)(i % 2);
                dafl_softmax_focal_params p;
                dafl_softmax_focal_params_init(&p);
                p.gamma = 0.0f;
                p.layout = nhwc ? DAFL_LAYOUT_NHWC : DAFL_LAYOUT_NCHW;
                p.reduction = DAFL_REDUCTION_SUM;
                p.grad_scale = cases[k].scale;
                p.input_dtype = p.grad_dtype = (dafl_dtype)cases[k].dt;
                float loss;
                ck_assert_int_eq(dafl_softmax_focal((const float *)(const void *)x, labels, 1,
                                                    2, HW, &p, &loss, (float *)(void *)g, NULL),
                                 DAFL_OK);
                for (size_t i = 0; i < HW; i++)
                    for (size_t c = 0; c < 2; c++) {
                        size_t at = nhwc ? i * 2 + c : c * HW + i;
                        uint16_t want = (int32_t)c == labels[i] ? cases[k].want_minus
                                                                 : cases[k].want_plus;
                        TEST_REQUIRE(g[at] == want, "%s case %zu %s pixel %zu class %zu: %04x, "
                                     "want %04x", dafl_isa_name(isa), k, nhwc ? "NHWC" : "NCHW",
                                     i, c, g[at], want);
                    }
            }
        /* float16 subnormal logits widen exactly: 2^-24 against 0 differ, as in float32 */
        uint16_t xs[2] = {0x0001, 0x0000}, gs[2];
        float xf[2] = {0x1p-24f, 0.0f}, gf[2], ls, lf;
        int32_t label = 0;
        dafl_softmax_focal_params p;
        dafl_softmax_focal_params_init(&p);
        p.layout = DAFL_LAYOUT_NHWC;
        ck_assert_int_eq(dafl_softmax_focal(xf, &label, 1, 2, 1, &p, &lf, gf, NULL), DAFL_OK);
        p.input_dtype = p.grad_dtype = DAFL_DTYPE_FLOAT16;
        ck_assert_int_eq(dafl_softmax_focal((const float *)(const void *)xs, &label, 1, 2, 1, &p,
                                            &ls, (float *)(void *)gs, NULL),
                         DAFL_OK);
        TEST_REQUIRE(test_same_bits(ls, lf), "%s: subnormal logit loss %a vs %a",
                     dafl_isa_name(isa), (double)ls, (double)lf);
        TEST_REQUIRE(holds_rounded(F16, gs, 0, gf[0]) && holds_rounded(F16, gs, 1, gf[1]),
                     "%s: subnormal logit gradient", dafl_isa_name(isa));
    }
    dafl_set_isa(DAFL_ISA_AUTO);
}
END_TEST

/* Large calls on 1-3 threads against the float32 call on one thread, and the gradient
 * written over the logits (the same element size: bfloat16 over bfloat16, and float16
 * over bfloat16 too). */
START_TEST(softmax_threads_and_in_place)
{
    static const dtype_pair pairs[] = {{BF16, BF16}, {F16, F16}, {BF16, F16}};
    for (int nhwc = 0; nhwc < 2; nhwc++)
        for (size_t pi = 0; pi < sizeof pairs / sizeof pairs[0]; pi++) {
            /* 2 x 19 x 1000 = 38000 elements: above DAFL_MIN_PARALLEL_ELEMENTS */
            softmax_case k = {2, 19, 1000, nhwc, pairs[pi].x, pairs[pi].grad, 2.0f, 1, -100,
                              0, 0, 41};
            const size_t pixels = k.n * k.hw, count = pixels * k.c;
            uint16_t *x = malloc(count * dtype_bytes(k.x_dtype)), *g = malloc(count * 2),
                     *xi = malloc(count * 2);
            int32_t *labels = malloc(pixels * sizeof *labels);
            float *weights = malloc(k.c * sizeof *weights), *g32 = malloc(count * sizeof *g32);
            ck_assert(x && g && xi && labels && weights && g32);
            uint64_t seed = 0x7a2e + pi + 10 * (uint64_t)nhwc;
            fill_input(k.x_dtype, x, count, seed, 0, k.specials);
            for (size_t i = 0; i < pixels; i++)
                labels[i] = test_rand64(&seed) % 9 == 0 ? -100
                                                        : (int32_t)(test_rand64(&seed) % k.c);
            for (size_t i = 0; i < k.c; i++)
                weights[i] = test_uniform(&seed, 0.1f, 3.0f);
            float *xw = widen_all(k.x_dtype, x, count);
            dafl_softmax_focal_params p32 = softmax_params(&k, weights, DAFL_REDUCTION_MEAN, 1.0f,
                                                           F32, F32);
            dafl_softmax_focal_params ph = softmax_params(&k, weights, DAFL_REDUCTION_MEAN, 1.0f,
                                                          k.x_dtype, k.grad_dtype);
            for (int isa_i = 0; isa_i < TEST_ISA_COUNT; isa_i++) {
                dafl_isa isa = test_all_isas[isa_i];
                if (!test_use_isa(isa, "softmax half threads"))
                    continue;
                float l32, lh;
                dafl_stats s32, sh;
                ck_assert_int_eq(dafl_set_threads(1), DAFL_OK);
                ck_assert_int_eq(dafl_softmax_focal(xw, labels, k.n, k.c, k.hw, &p32, &l32, g32,
                                                    &s32),
                                 DAFL_OK);
                for (int threads = 1; threads <= 3; threads++) {
                    ck_assert_int_eq(dafl_set_threads(threads), DAFL_OK);
                    char what[160];
                    snprintf(what, sizeof what, "%s softmax %s->%s %s, %d threads",
                             dafl_isa_name(isa), dtype_name(k.x_dtype), dtype_name(k.grad_dtype),
                             nhwc ? "NHWC" : "NCHW", threads);
                    ck_assert_int_eq(dafl_softmax_focal((const float *)(const void *)x, labels,
                                                        k.n, k.c, k.hw, &ph, &lh,
                                                        (float *)(void *)g, &sh),
                                     DAFL_OK);
                    TEST_REQUIRE(test_same_bits(lh, l32), "%s: loss %a vs %a", what,
                                 (double)lh, (double)l32);
                    require_same_stats(&sh, &s32, what);
                    for (size_t i = 0; i < count; i++)
                        TEST_REQUIRE(holds_rounded(k.grad_dtype, g, i, g32[i]),
                                     "%s: grad[%zu]", what, i);
                    memcpy(xi, x, count * 2);
                    ck_assert_int_eq(dafl_softmax_focal((const float *)(const void *)xi, labels,
                                                        k.n, k.c, k.hw, &ph, &lh,
                                                        (float *)(void *)xi, NULL),
                                     DAFL_OK);
                    TEST_REQUIRE(test_same_bits(lh, l32) && memcmp(xi, g, count * 2) == 0,
                                 "%s: the gradient in place differs", what);
                }
            }
            free(x), free(g), free(xi), free(labels), free(weights), free(g32), free(xw);
        }
    dafl_set_threads(0);
    dafl_set_isa(DAFL_ISA_AUTO);
}
END_TEST

/* ---- the keypoint-fused penalty focal loss ---------------------------------------------- */

typedef struct keypoints {
    size_t n, c, h, w;
    dafl_keypoint *points;
    size_t count;
} keypoints;

/* `count` keypoints of every style on the planes of an n x c x h x w batch, a few of them
 * off the edges; only every `busy`-th plane gets any, so that whole blocks have none. */
static keypoints random_keypoints(uint64_t seed, size_t n, size_t c, size_t h, size_t w,
                                  size_t count, size_t busy)
{
    keypoints b = {n, c, h, w, malloc(count * sizeof(dafl_keypoint)), count};
    ck_assert(b.points);
    for (size_t i = 0; i < count; i++) {
        dafl_keypoint *kp = &b.points[i];
        dafl_keypoint_init(kp);
        size_t plane = (size_t)(test_rand64(&seed) % (n * c / busy + 1)) * busy % (n * c);
        kp->image = (int64_t)(plane / c);
        kp->channel = (int64_t)(plane % c);
        kp->style = (dafl_keypoint_style)(i % 3);
        kp->x = floor(test_uniform(&seed, -3.0f, (float)w + 3.0f));
        kp->y = floor(test_uniform(&seed, -3.0f, (float)h + 3.0f));
        kp->k = i % 4 == 3 ? 0.75f : 1.0f;
        if (kp->style == DAFL_KEYPOINT_UMICH) {
            kp->size = (double)(test_rand64(&seed) % 7);
        } else {
            kp->size = test_uniform(&seed, 0.6f, 3.0f);
            if (kp->style == DAFL_KEYPOINT_MSRA)
                kp->x += 0.25, kp->y -= 0.5;
        }
    }
    return b;
}

#define N_KP_CONFIGS 5
static const char *kp_config_name[N_KP_CONFIGS] = {
    "logits, positives", "a=2.3 b=3.7 weights, sum", "probabilities, mean",
    "clamped logits, normalizer", "per-element (none)"};

static dafl_penalty_focal_params kp_params(int config, int x_dtype, int grad_dtype)
{
    dafl_penalty_focal_params p;
    dafl_penalty_focal_params_init(&p);
    switch (config) {
    case 1:
        p.alpha = 2.3f, p.beta = 3.7f, p.pos_weight = 2.0f, p.neg_weight = 0.5f;
        p.reduction = DAFL_REDUCTION_SUM;
        break;
    case 2: p.input_mode = DAFL_INPUT_PROBABILITIES, p.reduction = DAFL_REDUCTION_MEAN; break;
    case 3:
        p.input_mode = DAFL_INPUT_CLAMPED_LOGITS, p.reduction = DAFL_REDUCTION_NORMALIZER;
        p.normalizer = 37.0f;
        break;
    case 4: p.reduction = DAFL_REDUCTION_NONE; break;
    default: break;
    }
    p.grad_scale = config == 1 ? 3.0e4f : 0.7f; /* float16 gradient overflow in config 1 */
    p.input_dtype = (dafl_dtype)x_dtype;
    p.grad_dtype = (dafl_dtype)grad_dtype;
    return p;
}

/* One configuration and dtype pair on one batch: the fused half call against the fused
 * float32 call on the widened input (loss, per-element losses, statistics bit for bit;
 * gradient rounded) and against the dense call with the same dtypes on the rendered
 * float32 targets (every output bit for bit). */
static void check_keypoints(const keypoints *b, int config, dtype_pair dt, size_t misalign,
                            uint64_t seed, const char *what)
{
    const size_t count = b->n * b->c * b->h * b->w;
    dafl_penalty_focal_params p = kp_params(config, dt.x, dt.grad);
    dafl_penalty_focal_params p32 = kp_params(config, F32, F32);
    const int none = p.reduction == DAFL_REDUCTION_NONE;
    guarded x = guarded_alloc(count * dtype_bytes(dt.x), misalign);
    /* misaligned by whole elements: the input by `misalign` bytes, the gradient when the
     * input is not */
    guarded g = guarded_alloc(count * dtype_bytes(dt.grad), misalign ? 0 : dtype_bytes(dt.grad));
    guarded l = guarded_alloc(count * sizeof(float), 0);
    float *targets = malloc(count * sizeof(float)), *g32 = malloc(count * sizeof(float));
    float *l32 = malloc(count * sizeof(float)), *ld = malloc(count * sizeof(float));
    void *gd = malloc(count * dtype_bytes(dt.grad));
    ck_assert(targets && g32 && l32 && ld && gd);
    fill_input(dt.x, x.p, count, seed, p.input_mode == DAFL_INPUT_PROBABILITIES,
               p.input_mode == DAFL_INPUT_PROBABILITIES ? 0 : 97);
    float *xw = widen_all(dt.x, x.p, count);
    ck_assert_int_eq(dafl_render_heatmaps(b->points, b->count, b->n, b->c, b->h, b->w, targets),
                     DAFL_OK);
    float loss32 = -1.0f, lossh = -2.0f, lossd = -3.0f;
    dafl_stats s32, sh, sd;
    ck_assert_int_eq(dafl_penalty_focal_keypoints(xw, b->n, b->c, b->h, b->w, b->points, b->count,
                                                  &p32, none ? l32 : &loss32, g32, &s32),
                     DAFL_OK);
    ck_assert_int_eq(dafl_penalty_focal_keypoints(x.p, b->n, b->c, b->h, b->w, b->points,
                                                  b->count, &p, none ? l.p : &lossh, g.p, &sh),
                     DAFL_OK);
    dafl_penalty_focal_params pd = p; /* the dense call: float32 targets */
    pd.target_dtype = DAFL_DTYPE_FLOAT32;
    ck_assert_int_eq(dafl_penalty_focal(x.p, targets, count, &pd, none ? ld : &lossd, gd, &sd),
                     DAFL_OK);
    char label[240];
    snprintf(label, sizeof label, "%s, %s, %s->%s", what, kp_config_name[config],
             dtype_name(dt.x), dtype_name(dt.grad));
    if (none) {
        for (size_t i = 0; i < count; i++)
            TEST_REQUIRE(test_same_bits(((float *)l.p)[i], l32[i]) &&
                             test_same_bits(((float *)l.p)[i], ld[i]),
                         "%s: loss[%zu] %a, float32 %a, dense %a", label, i,
                         (double)((float *)l.p)[i], (double)l32[i], (double)ld[i]);
    } else {
        TEST_REQUIRE(test_same_bits(lossh, loss32) && test_same_bits(lossh, lossd),
                     "%s: loss %a, float32 %a, dense %a", label, (double)lossh, (double)loss32,
                     (double)lossd);
    }
    require_same_stats(&sh, &s32, label);
    require_same_stats(&sh, &sd, label);
    for (size_t i = 0; i < count; i++)
        TEST_REQUIRE(holds_rounded(dt.grad, g.p, i, g32[i]),
                     "%s: grad[%zu] is not float32 %a rounded (input %a, target %a)", label, i,
                     (double)g32[i], (double)xw[i], (double)targets[i]);
    for (size_t i = 0; i < count; i++)
        TEST_REQUIRE(same_element(dt.grad, g.p, gd, i),
                     "%s: grad[%zu] differs from the dense call's (input %a, target %a)", label,
                     i, (double)xw[i], (double)targets[i]);
    TEST_REQUIRE(guards_intact(&x) && guards_intact(&g) && guards_intact(&l),
                 "%s: a byte outside the buffers was written", label);
    free(x.base), free(g.base), free(l.base);
    free(targets), free(g32), free(l32), free(ld), free(gd), free(xw);
}

static const dtype_pair kp_pairs[] = {{BF16, BF16}, {F16, F16}, {BF16, F32},
                                      {F32, F16},   {F16, BF16}};
#define N_KP_PAIRS (sizeof kp_pairs / sizeof kp_pairs[0])

START_TEST(keypoints_half_matches_float32)
{
    /* 9102 elements: several blocks and a partial one; planes without keypoints, so
     * all-negative blocks too */
    keypoints b = random_keypoints(0x4b9, 2, 3, 37, 41, 12, 2);
    /* one image of 5 x 7: one partial block */
    keypoints s = random_keypoints(0x4ba, 1, 1, 5, 7, 2, 1);
    for (int isa_i = 0; isa_i < TEST_ISA_COUNT; isa_i++) {
        dafl_isa isa = test_all_isas[isa_i];
        if (!test_use_isa(isa, "keypoints half"))
            continue;
        ck_assert_int_eq(dafl_set_threads(1), DAFL_OK);
        int cases = 0;
        for (size_t d = 0; d < N_KP_PAIRS; d++)
            for (int config = 0; config < N_KP_CONFIGS; config++) {
                size_t misalign = dtype_bytes(kp_pairs[d].x) * (size_t)(config % 2);
                check_keypoints(&b, config, kp_pairs[d], misalign,
                                0x100 + 10 * d + (uint64_t)config, dafl_isa_name(isa));
                check_keypoints(&s, config, kp_pairs[d], 0, 0x200 + 10 * d + (uint64_t)config,
                                dafl_isa_name(isa));
                cases += 2;
            }
        printf("keypoints half %-7s: %d cases bit-exact\n", dafl_isa_name(isa), cases);
    }
    dafl_set_threads(0);
    dafl_set_isa(DAFL_ISA_AUTO);
    free(b.points);
    free(s.points);
}
END_TEST

START_TEST(keypoints_half_threads_and_in_place)
{
    /* 2 x 4 x 64 x 80 = 40960 elements: above DAFL_MIN_PARALLEL_ELEMENTS */
    keypoints b = random_keypoints(0x4bb, 2, 4, 64, 80, 30, 3);
    const size_t count = b.n * b.c * b.h * b.w;
    for (int isa_i = 0; isa_i < TEST_ISA_COUNT; isa_i++) {
        dafl_isa isa = test_all_isas[isa_i];
        if (!test_use_isa(isa, "keypoints half threads"))
            continue;
        for (int threads = 1; threads <= 3; threads++) {
            ck_assert_int_eq(dafl_set_threads(threads), DAFL_OK);
            char what[80];
            snprintf(what, sizeof what, "%s, %d threads", dafl_isa_name(isa), threads);
            for (size_t d = 0; d < 2; d++)
                for (int config = 0; config < N_KP_CONFIGS; config += 2)
                    check_keypoints(&b, config, kp_pairs[d], 0, 0x300 + (uint64_t)config, what);
        }
        /* in place over a bfloat16 input */
        ck_assert_int_eq(dafl_set_threads(2), DAFL_OK);
        uint16_t *x = malloc(count * 2), *g = malloc(count * 2);
        ck_assert(x && g);
        fill_input(BF16, x, count, 0x4bc, 0, 0);
        dafl_penalty_focal_params p = kp_params(0, BF16, BF16);
        float loss, loss_in_place;
        ck_assert_int_eq(dafl_penalty_focal_keypoints((const float *)(const void *)x, b.n, b.c,
                                                      b.h, b.w, b.points, b.count, &p, &loss,
                                                      (float *)(void *)g, NULL),
                         DAFL_OK);
        ck_assert_int_eq(dafl_penalty_focal_keypoints((const float *)(const void *)x, b.n, b.c,
                                                      b.h, b.w, b.points, b.count, &p,
                                                      &loss_in_place, (float *)(void *)x, NULL),
                         DAFL_OK);
        TEST_REQUIRE(test_same_bits(loss, loss_in_place) && memcmp(x, g, count * 2) == 0,
                     "%s: keypoint gradient in place differs", dafl_isa_name(isa));
        free(x), free(g);
    }
    dafl_set_threads(0);
    dafl_set_isa(DAFL_ISA_AUTO);
    free(b.points);
}
END_TEST

/* ---- the API ------------------------------------------------------------------------------ */

/* Each refusal leaves every output as it was. */
#define EXPECT_REFUSED(expected, call)                                                     \
    do {                                                                                   \
        loss = 123.0f;                                                                     \
        memset(grad, 0x5a, sizeof grad);                                                   \
        dafl_status st_ = (call);                                                          \
        ck_assert_msg(st_ == (expected), "%s: %s", #call, dafl_status_string(st_));        \
        ck_assert_msg(loss == 123.0f, "%s wrote the loss", #call);                         \
        for (size_t i_ = 0; i_ < sizeof grad; i_++)                                        \
            ck_assert_msg(((unsigned char *)grad)[i_] == 0x5a, "%s wrote the gradient",     \
                          #call);                                                          \
    } while (0)

START_TEST(api_and_errors)
{
    float x[12] = {0.5f, -1.0f, 2.0f, 0.0f, 1.0f, 3.0f, -2.0f, 0.25f, 4.0f, -0.5f, 1.5f, 2.5f};
    int32_t labels[4] = {0, 2, 1, -100};
    float grad[12], g32[12], gold[12], loss, l32, lold;
    uint16_t h[24] = {0};
    /* the defaults are float32 */
    dafl_softmax_focal_params p;
    dafl_softmax_focal_params_init(&p);
    ck_assert_int_eq(p.input_dtype, DAFL_DTYPE_FLOAT32);
    ck_assert_int_eq(p.grad_dtype, DAFL_DTYPE_FLOAT32);
    ck_assert_int_eq(dafl_softmax_focal(x, labels, 1, 3, 4, &p, &l32, g32, NULL), DAFL_OK);
    /* an older binary's struct: its sizeof ends where the dtypes begin, and whatever lies
     * after it in its memory is not read */
    memset(&p.input_dtype, 0x01, sizeof p - offsetof(dafl_softmax_focal_params, input_dtype));
    p.struct_size = offsetof(dafl_softmax_focal_params, input_dtype);
    ck_assert_int_eq(dafl_softmax_focal(x, labels, 1, 3, 4, &p, &lold, gold, NULL), DAFL_OK);
    ck_assert(test_same_bits(l32, lold) && memcmp(g32, gold, sizeof g32) == 0);
    /* a struct_size inside a dtype member */
    for (size_t end = offsetof(dafl_softmax_focal_params, input_dtype) + 1;
         end < sizeof p; end++)
        if (end != offsetof(dafl_softmax_focal_params, grad_dtype))
            EXPECT_REFUSED(DAFL_ERR_STRUCT_SIZE,
                           dafl_softmax_focal(x, labels, 1, 3, 4,
                                              &(dafl_softmax_focal_params){
                                                  .struct_size = end, .gamma = 2.0f,
                                                  .ignore_index = -100,
                                                  .reduction = DAFL_REDUCTION_MEAN,
                                                  .grad_scale = 1.0f},
                                              &loss, grad, NULL));
    /* unknown dtypes, in each member */
    dafl_softmax_focal_params_init(&p);
    p.input_dtype = (dafl_dtype)3;
    EXPECT_REFUSED(DAFL_ERR_INVALID_ENUM,
                   dafl_softmax_focal(x, labels, 1, 3, 4, &p, &loss, grad, NULL));
    dafl_softmax_focal_params_init(&p);
    p.grad_dtype = (dafl_dtype)-1;
    EXPECT_REFUSED(DAFL_ERR_INVALID_ENUM,
                   dafl_softmax_focal(x, labels, 1, 3, 4, &p, &loss, grad, NULL));
    /* ... even without a gradient buffer */
    EXPECT_REFUSED(DAFL_ERR_INVALID_ENUM,
                   dafl_softmax_focal(x, labels, 1, 3, 4, &p, &loss, NULL, NULL));
    /* in place needs the same element size: a bfloat16 gradient over float32 logits */
    dafl_softmax_focal_params_init(&p);
    p.grad_dtype = DAFL_DTYPE_BFLOAT16;
    loss = 123.0f;
    ck_assert_int_eq(dafl_softmax_focal(x, labels, 1, 3, 4, &p, &loss, x, NULL), DAFL_ERR_OVERLAP);
    ck_assert(loss == 123.0f && x[0] == 0.5f);
    /* 16-bit logits and gradient: overlapping by one element refused, adjacent accepted */
    p.input_dtype = DAFL_DTYPE_BFLOAT16;
    ck_assert_int_eq(dafl_softmax_focal((const float *)(const void *)h, labels, 1, 3, 4, &p,
                                        &loss, (float *)(void *)(h + 11), NULL),
                     DAFL_ERR_OVERLAP);
    ck_assert_int_eq(dafl_softmax_focal((const float *)(const void *)h, labels, 1, 3, 4, &p,
                                        &loss, (float *)(void *)(h + 12), NULL),
                     DAFL_OK);
    /* a float32 per-pixel loss array over the 16-bit logits */
    p.reduction = DAFL_REDUCTION_NONE;
    ck_assert_int_eq(dafl_softmax_focal((const float *)(const void *)h, labels, 1, 3, 4, &p,
                                        (float *)(void *)(h + 10), NULL, NULL),
                     DAFL_ERR_OVERLAP);
    ck_assert_int_eq(dafl_softmax_focal((const float *)(const void *)h, labels, 1, 3, 4, &p,
                                        (float *)(void *)(h + 12), NULL, NULL),
                     DAFL_OK);

    /* the keypoint form: half input and gradient, float32 targets only */
    dafl_keypoint kp;
    dafl_keypoint_init(&kp);
    kp.x = 1.0, kp.y = 2.0, kp.size = 1.0;
    dafl_penalty_focal_params pp;
    dafl_penalty_focal_params_init(&pp);
    pp.input_dtype = DAFL_DTYPE_BFLOAT16;
    pp.target_dtype = DAFL_DTYPE_BFLOAT16;
    EXPECT_REFUSED(DAFL_ERR_INVALID_ENUM,
                   dafl_penalty_focal_keypoints((const float *)(const void *)h, 1, 1, 3, 4, &kp,
                                                1, &pp, &loss, grad, NULL));
    pp.target_dtype = DAFL_DTYPE_FLOAT16;
    EXPECT_REFUSED(DAFL_ERR_INVALID_ENUM,
                   dafl_penalty_focal_keypoints((const float *)(const void *)h, 1, 1, 3, 4, &kp,
                                                1, &pp, &loss, grad, NULL));
    pp.target_dtype = DAFL_DTYPE_FLOAT32;
    pp.input_dtype = (dafl_dtype)5;
    EXPECT_REFUSED(DAFL_ERR_INVALID_ENUM,
                   dafl_penalty_focal_keypoints((const float *)(const void *)h, 1, 1, 3, 4, &kp,
                                                1, &pp, &loss, grad, NULL));
    pp.input_dtype = DAFL_DTYPE_BFLOAT16;
    pp.grad_dtype = (dafl_dtype)3;
    EXPECT_REFUSED(DAFL_ERR_INVALID_ENUM,
                   dafl_penalty_focal_keypoints((const float *)(const void *)h, 1, 1, 3, 4, &kp,
                                                1, &pp, &loss, grad, NULL));
    /* a float16 gradient over float32 input: not in place (element sizes differ) */
    dafl_penalty_focal_params_init(&pp);
    pp.grad_dtype = DAFL_DTYPE_FLOAT16;
    loss = 123.0f;
    ck_assert_int_eq(dafl_penalty_focal_keypoints(x, 1, 1, 3, 4, &kp, 1, &pp, &loss, x, NULL),
                     DAFL_ERR_OVERLAP);
    ck_assert(loss == 123.0f && x[0] == 0.5f);
    /* a bfloat16 gradient one element into the bfloat16 input */
    pp.input_dtype = DAFL_DTYPE_BFLOAT16;
    pp.grad_dtype = DAFL_DTYPE_BFLOAT16;
    ck_assert_int_eq(dafl_penalty_focal_keypoints((const float *)(const void *)h, 1, 1, 3, 4, &kp,
                                                  1, &pp, &loss, (float *)(void *)(h + 1), NULL),
                     DAFL_ERR_OVERLAP);
    ck_assert_int_eq(dafl_penalty_focal_keypoints((const float *)(const void *)h, 1, 1, 3, 4, &kp,
                                                  1, &pp, &loss, (float *)(void *)(h + 12), NULL),
                     DAFL_OK);
}
END_TEST

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    Suite *s = suite_create("half_softmax_keypoints");
    TCase *tc = tcase_create("half_softmax_keypoints");
    tcase_set_timeout(tc, 600);
    tcase_add_loop_test(tc, softmax_half_matches_float32, 0, (int)N_SOFTMAX_PAIRS);
    tcase_add_test(tc, softmax_rounding_known_answers);
    tcase_add_test(tc, softmax_threads_and_in_place);
    tcase_add_loop_test(tc, keypoints_half_matches_float32, 0, 1);
    tcase_add_test(tc, keypoints_half_threads_and_in_place);
    tcase_add_test(tc, api_and_errors);
    suite_add_tcase(s, tc);
    return test_run_suite(s);
}
