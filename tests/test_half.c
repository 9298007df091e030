/*
 * Half precision (SPEC 13): every element-wise loss with bfloat16 and float16 inputs,
 * targets and gradients (and float32 mixed in), under every ISA this machine runs,
 * against the float32 call on the widened inputs: the loss, per-element losses and
 * statistics bit for bit; each gradient element the float32 gradient rounded to nearest
 * even into the output type.  The widening and the rounding used as the reference here
 * are written independently of the library (ldexp, frexp and nearbyint in double), not
 * its integer code.  Lengths 0 .. 63 and around the sub-block and block boundaries,
 * misaligned buffers, NaN payloads, infinities, subnormals, float16 gradient overflow,
 * in-place gradients, 1-3 threads.  And the conversions alone, bit for bit with NaN
 * payloads, over every bfloat16 and float16 and over float32 values around every rounding
 * point, also under a caller's floating-point environment that flushes, treats
 * subnormals as zero and rounds upward (dafl installs its own).
 */
#include <fenv.h>
#include <float.h>
#include <stddef.h>
#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
#endif

#include "test_common.h"

enum { F32 = DAFL_DTYPE_FLOAT32, BF16 = DAFL_DTYPE_BFLOAT16, F16 = DAFL_DTYPE_FLOAT16 };

static size_t elem_size(int dt) { return dt == F32 ? 4 : 2; }

/* ---- the independent reference: decode and round by value --------------------------- */

/* mantissa bits, exponent bias of the two 16-bit formats */
static void format_of(int dt, int *mbits, int *ebits, int *bias)
{
    if (dt == BF16) {
        *mbits = 7;
        *ebits = 8;
        *bias = 127;
    } else {
        *mbits = 10;
        *ebits = 5;
        *bias = 15;
    }
}

/* The value of a 16-bit pattern (NaN as a NaN of the pattern's sign). */
static double ref_decode(int dt, uint16_t h)
{
    int mbits, ebits, bias;
    format_of(dt, &mbits, &ebits, &bias);
    int sign = h >> 15;
    int e = (h >> mbits) & ((1 << ebits) - 1);
    int m = h & ((1 << mbits) - 1);
    double v;
    if (e == (1 << ebits) - 1)
        v = m ? NAN : INFINITY;
    else if (e == 0)
        v = ldexp((double)m, 1 - bias - mbits);
    else
        v = ldexp((double)((1 << mbits) + m), e - bias - mbits);
    return sign ? -v : v;
}

/* f rounded to nearest, ties to even, into the format, as a double (inf on overflow). */
static double ref_round(int dt, float f)
{
    if (isnan(f) || isinf(f) || f == 0.0f)
        return (double)f;
    int mbits, ebits, bias;
    format_of(dt, &mbits, &ebits, &bias);
    double a = fabs((double)f);
    int ex;
    frexp(a, &ex); /* a = fr * 2^ex, fr in [0.5, 1) */
    int e = ex - 1;
    if (e < 1 - bias)
        e = 1 - bias; /* subnormal spacing */
    double quantum = ldexp(1.0, e - mbits);
    double r = nearbyint(a / quantum) * quantum; /* exact: a has 24 bits */
    int emax = (1 << ebits) - 2 - bias;
    double max_finite = ldexp((double)((2 << mbits) - 1), emax - mbits);
    if (r > max_finite)
        r = INFINITY;
    return f < 0 ? -r : r;
}

/* Element i of a buffer of dtype dt, widened by the reference. */
static float ref_widen(int dt, const void *buf, size_t i)
{
    if (dt == F32)
        return ((const float *)buf)[i];
    uint16_t h;
    memcpy(&h, (const char *)buf + 2 * i, 2);
    return (float)ref_decode(dt, h);
}

/* Does output element i of dtype dt hold float32 gradient g rounded as SPEC 13 says? */
static int grad_matches(int dt, const void *buf, size_t i, float g)
{
    if (dt == F32)
        return test_same_bits(((const float *)buf)[i], g);
    uint16_t h;
    memcpy(&h, (const char *)buf + 2 * i, 2);
    double got = ref_decode(dt, h), want = ref_round(dt, g);
    if (isnan(want))
        return isnan(got);
    return !isnan(got) && got == want && signbit(got) == signbit(want);
}

/* ---- inputs ------------------------------------------------------------------------- */

static const uint16_t bf16_special[] = {
    0x7f80, 0xff80,         /* +-inf */
    0x7fc0, 0xffc5, 0x7f81, /* NaNs: quiet, with payload, signalling */
    0x0001, 0x8001, 0x007f, /* subnormals */
    0x0000, 0x8000,         /* +-0 */
    0x42c8, 0xc2c8,         /* +-100 */
    0x7f7f, 0xff7f};        /* +-max */
static const uint16_t f16_special[] = {
    0x7c00, 0xfc00,         /* +-inf */
    0x7e00, 0xfe05, 0x7c01, /* NaNs */
    0x0001, 0x83ff, 0x0200, /* subnormals */
    0x0000, 0x8000,         /* +-0 */
    0x5640, 0xd640,         /* +-100 */
    0x7bff, 0xfbff};        /* +-65504 */
#define N_SPECIAL 14

/* A random value in [lo, hi) as the element type's bits (float32: the float itself). */
static void put_value(int dt, void *buf, size_t i, float v)
{
    if (dt == F32) {
        ((float *)buf)[i] = v;
        return;
    }
    /* any representable value will do: truncate to the format through the reference */
    uint16_t best = 0;
    if (dt == BF16) {
        uint32_t b;
        memcpy(&b, &v, 4);
        best = (uint16_t)(b >> 16);
    } else {
        /* largest float16 magnitude <= |v| by search over the 31744 finite patterns is
         * too slow; build it from the exponent */
        double a = fabs((double)v);
        int ex;
        frexp(a, &ex);
        int e = ex - 1 < -14 ? -14 : ex - 1;
        double m = floor(a / ldexp(1.0, e - 10));
        if (a == 0.0)
            best = 0;
        else if (m >= 1024 && e >= -14)
            best = (uint16_t)(((e + 15) << 10) | ((int)m - 1024));
        else
            best = (uint16_t)m; /* subnormal */
        if (v < 0)
            best |= 0x8000;
    }
    memcpy((char *)buf + 2 * i, &best, 2);
}

static void put_bits(void *buf, size_t i, uint16_t bits)
{
    memcpy((char *)buf + 2 * i, &bits, 2);
}

/* Inputs (logits, or probabilities in [0, 1]) and targets in [0, 1] with the special
 * values of each type sprinkled into the inputs. */
static void make_inputs(int xdt, int ydt, void *x, void *y, size_t n, uint64_t seed,
                        int probabilities)
{
    for (size_t i = 0; i < n; i++) {
        uint64_t r = test_rand64(&seed);
        if (r % 11 == 0 && xdt != F32)
            put_bits(x, i, (xdt == BF16 ? bf16_special : f16_special)[(r >> 8) % N_SPECIAL]);
        else if (r % 11 == 0)
            ((float *)x)[i] = (r >> 8) % 2 ? INFINITY : NAN;
        else if (probabilities)
            put_value(xdt, x, i, test_uniform(&seed, 0.0f, 1.0f));
        else
            put_value(xdt, x, i, test_uniform(&seed, -25.0f, 25.0f));
        switch ((r >> 20) % 7) {
        case 0: put_value(ydt, y, i, 1.0f); break;
        case 1: put_value(ydt, y, i, 0.0f); break;
        case 2: put_value(ydt, y, i, 1e-6f); break; /* float16 subnormal target */
        default: put_value(ydt, y, i, test_uniform(&seed, 0.0f, 1.0f));
        }
    }
}

/* ---- the losses, one index per configuration --------------------------------------- */
#define N_CONFIGS 10
static const char *config_name[N_CONFIGS] = {
    "penalty focal logits",      "penalty focal logits a=2.3 b=3.7", "penalty focal probabilities",
    "penalty focal clamped",     "sigmoid focal g=2",                "sigmoid focal g=1.7 a<0",
    "bce",                       "bce pw=3",                         "mse",
    "mse weights"};

typedef struct dtypes {
    int x, y, g;
} dtypes;

/* One call of configuration `config` with the given dtypes and reduction. */
static dafl_status run_config(int config, dtypes dt, const void *x, const void *y, size_t n,
                              dafl_reduction red, float grad_scale, float *loss, void *grad,
                              dafl_stats *stats)
{
    if (config < 4) {
        dafl_penalty_focal_params p;
        dafl_penalty_focal_params_init(&p);
        p.reduction = red;
        p.grad_scale = grad_scale;
        if (config == 1) {
            p.alpha = 2.3f;
            p.beta = 3.7f;
        }
        if (config == 2)
            p.input_mode = DAFL_INPUT_PROBABILITIES;
        if (config == 3)
            p.input_mode = DAFL_INPUT_CLAMPED_LOGITS;
        p.input_dtype = (dafl_dtype)dt.x;
        p.target_dtype = (dafl_dtype)dt.y;
        p.grad_dtype = (dafl_dtype)dt.g;
        return dafl_penalty_focal(x, y, n, &p, loss, grad, stats);
    }
    if (config < 6) {
        dafl_sigmoid_focal_params p;
        dafl_sigmoid_focal_params_init(&p);
        p.reduction = red == DAFL_REDUCTION_POSITIVES ? DAFL_REDUCTION_SUM : red;
        p.grad_scale = grad_scale;
        p.gamma = config == 4 ? 2.0f : 1.7f;
        p.alpha = config == 4 ? 0.25f : -1.0f;
        p.input_dtype = (dafl_dtype)dt.x;
        p.target_dtype = (dafl_dtype)dt.y;
        p.grad_dtype = (dafl_dtype)dt.g;
        return dafl_sigmoid_focal(x, y, n, &p, loss, grad, stats);
    }
    if (config < 8) {
        dafl_bce_params p;
        dafl_bce_params_init(&p);
        p.reduction = red;
        p.grad_scale = grad_scale;
        p.pos_weight = config == 6 ? 1.0f : 3.0f;
        p.input_dtype = (dafl_dtype)dt.x;
        p.target_dtype = (dafl_dtype)dt.y;
        p.grad_dtype = (dafl_dtype)dt.g;
        return dafl_bce_with_logits(x, y, n, &p, loss, grad, stats);
    }
    dafl_mse_params p;
    dafl_mse_params_init(&p);
    p.reduction = red;
    p.grad_scale = grad_scale;
    static const float w[3] = {0.5f, 2.0f, 1.5f};
    size_t channels = n % 3 == 0 && n ? 3 : 1;
    if (config == 9) {
        p.weights = w + 3 - channels;
        p.weights_count = channels;
    }
    p.input_dtype = (dafl_dtype)dt.x;
    p.target_dtype = (dafl_dtype)dt.y;
    p.grad_dtype = (dafl_dtype)dt.g;
    return dafl_mse(x, y, 1, channels, channels ? n / channels : 0, &p, loss, grad, stats);
}

static const dtypes combos[] = {
    {BF16, BF16, BF16}, {F16, F16, F16}, {BF16, F32, BF16}, {F16, F32, F16},
    {F32, BF16, F32},   {F32, F16, F32}, {F32, F32, BF16},  {F32, F32, F16},
    {BF16, F16, F32},   {F16, BF16, BF16}};
#define N_COMBOS (sizeof combos / sizeof combos[0])

#define MAX_LEN (3 * DAFL_BLOCK_ELEMENTS + 37)
#define PAD 8

static int same_double(double a, double b) { return (isnan(a) && isnan(b)) || a == b; }

/* One configuration, one dtype combination, one length and offset, on the active ISA:
 * the half call against the float32 call on the widened inputs (REDUCTION_NONE with the
 * gradient, then a reduced call forward only and one with the gradient). */
static void check_one(int config, dtypes dt, size_t n, size_t off, uint64_t seed,
                      const char *isa)
{
    static _Alignas(64) unsigned char xb[(MAX_LEN + PAD) * 4], yb[(MAX_LEN + PAD) * 4],
        gb[(MAX_LEN + PAD) * 4 + 8];
    static float xw[MAX_LEN], yw[MAX_LEN], g32[MAX_LEN], l32[MAX_LEN], lh[MAX_LEN];
    void *x = xb + off * elem_size(dt.x), *y = yb + off * elem_size(dt.y);
    void *g = gb + off * elem_size(dt.g);
    make_inputs(dt.x, dt.y, x, y, n, seed, config == 2);
    for (size_t i = 0; i < n; i++) {
        xw[i] = ref_widen(dt.x, x, i);
        yw[i] = ref_widen(dt.y, y, i);
    }
    const dafl_reduction reds[3] = {DAFL_REDUCTION_NONE, DAFL_REDUCTION_MEAN,
                                    DAFL_REDUCTION_POSITIVES};
    for (int pass = 0; pass < 3; pass++) {
        dafl_reduction red = reds[pass];
        float loss32 = -1.0f, lossh = -2.0f;
        float *lo32 = red == DAFL_REDUCTION_NONE ? l32 : &loss32;
        float *loh = red == DAFL_REDUCTION_NONE ? lh : &lossh;
        int want_grad = pass != 1;
        dafl_stats s32, sh;
        dafl_status a = run_config(config, (dtypes){F32, F32, F32}, xw, yw, n, red, 0.7f, lo32,
                                   want_grad ? g32 : NULL, &s32);
        /* a guard after the gradient: nothing may be written past it */
        memset(gb, 0xa5, sizeof gb);
        dafl_status b = run_config(config, dt, x, y, n, red, 0.7f, loh, want_grad ? g : NULL, &sh);
        TEST_REQUIRE(a == DAFL_OK && b == DAFL_OK, "%s %s: status %d %d", isa,
                     config_name[config], a, b);
        if (red == DAFL_REDUCTION_NONE) {
            for (size_t i = 0; i < n; i++)
                TEST_REQUIRE(test_same_bits(l32[i], lh[i]),
                             "%s %s dtypes %d/%d/%d n=%zu off=%zu: loss[%zu] %a vs %a", isa,
                             config_name[config], dt.x, dt.y, dt.g, n, off, i, l32[i], lh[i]);
        } else {
            TEST_REQUIRE(test_same_bits(loss32, lossh),
                         "%s %s dtypes %d/%d/%d n=%zu off=%zu: loss %a vs %a", isa,
                         config_name[config], dt.x, dt.y, dt.g, n, off, loss32, lossh);
        }
        TEST_REQUIRE(same_double(dafl_stats_loss_sum(&s32), dafl_stats_loss_sum(&sh)) &&
                         dafl_stats_positives(&s32) == dafl_stats_positives(&sh),
                     "%s %s dtypes %d/%d/%d n=%zu: statistics differ", isa, config_name[config],
                     dt.x, dt.y, dt.g, n);
        if (want_grad) {
            for (size_t i = 0; i < n; i++)
                TEST_REQUIRE(grad_matches(dt.g, g, i, g32[i]),
                             "%s %s dtypes %d/%d/%d n=%zu off=%zu: grad[%zu] of %a (x %a y %a)",
                             isa, config_name[config], dt.x, dt.y, dt.g, n, off, i, g32[i],
                             xw[i], yw[i]);
            const unsigned char *end = (const unsigned char *)g + n * elem_size(dt.g);
            for (const unsigned char *q = gb; q < gb + sizeof gb; q++)
                TEST_REQUIRE(*q == 0xa5 || (q >= (const unsigned char *)g && q < end),
                             "%s %s: a byte outside the gradient was written", isa,
                             config_name[config]);
        }
    }
}

static size_t test_lengths(size_t *len)
{
    size_t n = 0;
    for (size_t l = 0; l <= 3 * 16 + 15; l++)
        len[n++] = l;
    const size_t around[] = {255, 256, 257, 273, DAFL_BLOCK_ELEMENTS - 1, DAFL_BLOCK_ELEMENTS,
                             DAFL_BLOCK_ELEMENTS + 1, 2 * DAFL_BLOCK_ELEMENTS + 15, MAX_LEN};
    for (size_t i = 0; i < sizeof around / sizeof around[0]; i++)
        len[n++] = around[i];
    return n;
}

/* _i: the configuration */
START_TEST(half_matches_float32)
{
    size_t len[128];
    size_t nlen = test_lengths(len);
    for (int isa_i = 0; isa_i < TEST_ISA_COUNT; isa_i++) {
        dafl_isa isa = test_all_isas[isa_i];
        if (!test_use_isa(isa, config_name[_i]))
            continue;
        for (size_t c = 0; c < N_COMBOS; c++)
            for (size_t l = 0; l < nlen; l++) {
                size_t off = (l + c) % 4; /* 0..3 elements: odd 2-byte offsets too */
                check_one(_i, combos[c], len[l], off, 1000 * (uint64_t)l + c + 17 * (uint64_t)_i,
                          dafl_isa_name(isa));
            }
        printf("half %-7s %s: %zu dtype combinations x %zu lengths bit-exact\n",
               dafl_isa_name(isa), config_name[_i], (size_t)N_COMBOS, nlen);
    }
    dafl_set_isa(DAFL_ISA_AUTO);
}
END_TEST

/* ---- the conversions alone ------------------------------------------------------------ */

/* MSE with weight 1/2 against a zero target, SUM, grad_scale 1: the float32 gradient is
 * 2 * (1/2) * (x - 0) * 1, that is x itself (a NaN made quiet by the arithmetic, its
 * payload kept), so the gradient shows exactly how the input was widened and how the
 * output is narrowed. */
static void identity_call(int xdt, const void *x, int gdt, void *grad, size_t n)
{
    float *y = calloc(n ? n : 1, sizeof(float));
    ck_assert(y);
    static const float half_weight = 0.5f;
    dafl_mse_params p;
    dafl_mse_params_init(&p);
    p.reduction = DAFL_REDUCTION_SUM;
    p.weights = &half_weight;
    p.weights_count = 1;
    p.input_dtype = (dafl_dtype)xdt;
    p.grad_dtype = (dafl_dtype)gdt;
    float loss;
    ck_assert_int_eq(dafl_mse(x, y, 1, 1, n, &p, &loss, grad, NULL), DAFL_OK);
    free(y);
}

/* The float32 bits a 16-bit pattern widens to, NaNs quiet with the payload in the top
 * mantissa bits (SPEC 13; x86's vcvtph2ps and AArch64's FCVT, and any arithmetic). */
static uint32_t ref_widened_bits(int dt, uint16_t h)
{
    double v = ref_decode(dt, h);
    if (!isnan(v)) {
        float f = (float)v;
        uint32_t b;
        memcpy(&b, &f, 4);
        return b;
    }
    uint32_t sign = (uint32_t)(h >> 15) << 31;
    return dt == BF16 ? ((uint32_t)h << 16) | 0x400000u
                      : sign | 0x7fc00000u | ((uint32_t)(h & 0x3ffu) << 13);
}

/* The 16-bit pattern of a value the format holds exactly (inf included). */
static uint16_t ref_encode(int dt, double v)
{
    uint16_t sign = signbit(v) ? 0x8000 : 0;
    double a = fabs(v);
    if (dt == BF16) {
        float f = (float)a;
        uint32_t b;
        memcpy(&b, &f, 4);
        return (uint16_t)(sign | (b >> 16)); /* exact: the low half is zero */
    }
    if (isinf(a))
        return sign | 0x7c00;
    int ex;
    frexp(a, &ex);
    if (a == 0.0 || ex - 1 < -14)
        return (uint16_t)(sign | (uint16_t)ldexp(a, 24)); /* subnormal: units of 2^-24 */
    return (uint16_t)(sign | (uint16_t)(((unsigned)(ex - 1 + 15) << 10) |
                                         ((unsigned)ldexp(a, 11 - ex) - 1024u)));
}

/* What a float32 gradient element f (quiet, if a NaN) must become in format dt. */
static uint16_t ref_narrowed_bits(int dt, float f)
{
    uint32_t b;
    memcpy(&b, &f, 4);
    if (isnan(f)) /* quiet, sign and the payload's top bits kept */
        return dt == BF16 ? (uint16_t)((b >> 16) | 0x40u)
                          : (uint16_t)(((b >> 16) & 0x8000u) | 0x7e00u | ((b >> 13) & 0x1ffu));
    return ref_encode(dt, ref_round(dt, f));
}

/* A caller's floating-point environment that would change the conversions if dafl ran
 * in it: round upward, flush-to-zero, denormals-are-zero (x86: MXCSR FTZ and DAZ;
 * AArch64: FPCR.FZ, FPCR.FZ16 and default NaNs). */
typedef struct caller_env {
    fenv_t env;
} caller_env;

static caller_env hostile_env_enter(void)
{
    caller_env saved;
    fegetenv(&saved.env);
    fesetround(FE_UPWARD);
#if defined(__x86_64__) || defined(__i386__)
    _mm_setcsr(_mm_getcsr() | 0x8040u);
#elif defined(__aarch64__)
    uint64_t fpcr;
    __asm__ volatile("mrs %0, fpcr" : "=r"(fpcr));
    fpcr |= (1u << 24) | (1u << 25) | (1u << 19); /* FZ, DN, FZ16 */
    __asm__ volatile("msr fpcr, %0" : : "r"(fpcr));
#endif
    return saved;
}

static void hostile_env_leave(const caller_env *saved) { fesetenv(&saved->env); }

/* Low halves of float32 bit patterns around the rounding points: bit 15 is bfloat16's
 * half unit, bit 12 a normal float16's (a float16 subnormal rounds higher up, in the top
 * half, which takes every value). */
static const uint16_t low_halves[] = {0x0000, 0x0001, 0x0fff, 0x1000, 0x1001, 0x1fff, 0x2000,
                                      0x3000, 0x5000, 0x7fff, 0x8000, 0x8001, 0xefff, 0xffff};
#define N_LOW (sizeof low_halves / sizeof low_halves[0])
#define N_NARROW ((size_t)65536 * N_LOW)

START_TEST(conversions_bit_exact)
{
    uint16_t *h = malloc(65536 * 2), *g16 = malloc(N_NARROW * 2);
    uint32_t *w = malloc(65536 * 4), *want_w = malloc(65536 * 4);
    float *x = malloc(N_NARROW * 4);
    uint16_t *want_n[2] = {malloc(N_NARROW * 2), malloc(N_NARROW * 2)};
    ck_assert(h && g16 && w && want_w && x && want_n[0] && want_n[1]);
    for (uint32_t i = 0; i < 65536; i++)
        h[i] = (uint16_t)i;
    for (size_t i = 0; i < N_NARROW; i++) {
        uint32_t b = (uint32_t)(i / N_LOW) << 16 | low_halves[i % N_LOW];
        if ((b & 0x7fffffffu) > 0x7f800000u)
            b |= 0x400000u; /* the kernel's gradient: NaNs come out of arithmetic quiet */
        memcpy(&x[i], &b, 4);
    }
    for (int k = 0; k < 2; k++)
        for (size_t i = 0; i < N_NARROW; i++)
            want_n[k][i] = ref_narrowed_bits(k == 0 ? BF16 : F16, x[i]);
    for (int isa_i = 0; isa_i < TEST_ISA_COUNT; isa_i++) {
        dafl_isa isa = test_all_isas[isa_i];
        if (!test_use_isa(isa, "conversions bit-exact"))
            continue;
        for (int hostile = 0; hostile < 2; hostile++) {
            for (int k = 0; k < 2; k++) {
                const int dt = k == 0 ? BF16 : F16;
                const char *name = dt == BF16 ? "bfloat16" : "float16";
                for (uint32_t i = 0; i < 65536; i++)
                    want_w[i] = ref_widened_bits(dt, (uint16_t)i);
                caller_env env;
                if (hostile)
                    env = hostile_env_enter();
                identity_call(dt, h, F32, w, 65536);
                identity_call(F32, x, dt, g16, N_NARROW);
                if (hostile)
                    hostile_env_leave(&env);
                for (uint32_t i = 0; i < 65536; i++)
                    TEST_REQUIRE(w[i] == want_w[i], "%s%s: %s %04x widened to %08x, want %08x",
                                 dafl_isa_name(isa), hostile ? " (caller's FTZ/DAZ/upward)" : "",
                                 name, i, w[i], want_w[i]);
                for (size_t i = 0; i < N_NARROW; i++)
                    TEST_REQUIRE(g16[i] == want_n[k][i],
                                 "%s%s: float32 %a [%08x] narrowed to %s %04x, want %04x",
                                 dafl_isa_name(isa), hostile ? " (caller's FTZ/DAZ/upward)" : "",
                                 (double)x[i], (unsigned)(i / N_LOW) << 16 | low_halves[i % N_LOW],
                                 name, g16[i], want_n[k][i]);
            }
        }
        printf("half %-7s conversions: every bfloat16 and float16 widened, %zu float32 "
               "narrowed to each, NaN payloads included, also under a hostile caller "
               "environment: bit-exact\n",
               dafl_isa_name(isa), N_NARROW);
    }
    dafl_set_isa(DAFL_ISA_AUTO);
    free(h), free(g16), free(w), free(want_w), free(x), free(want_n[0]), free(want_n[1]);
}
END_TEST

/* Known answers of the rounding, independent of any reference code: float16 overflow at
 * 65520 (the tie between 65504 and 2^16 goes to the even 2^16: infinity), bfloat16 ties,
 * NaN. MSE with x = 1, y = 0, SUM: the gradient is 2 * grad_scale. */
START_TEST(rounding_known_answers)
{
    struct {
        int dt;
        float scale;
        uint16_t want;
    } cases[] = {
        {F16, 32752.0f, 0x7bff},           /* 65504: the largest float16 */
        {F16, 32759.998f, 0x7bff},         /* just below 65520: down to 65504 */
        {F16, 32760.0f, 0x7c00},           /* 65520: the tie, to infinity */
        {F16, -40000.0f, 0xfc00},          /* -80000: -infinity */
        {F16, 0x1p-26f, 0x0000},           /* 2^-25: the tie between 0 and 2^-24: 0 */
        {F16, 0x1.8p-25f, 0x0002},         /* 3 * 2^-25: the tie between 1 and 2 units: 2 */
        {F16, 0x1.8p-26f, 0x0001},         /* 1.5 * 2^-25: above the tie: 1 unit */
        {BF16, 0.5f * 0x1.01p0f, 0x3f80},  /* 1 + 2^-8: the tie, to even 1.0 */
        {BF16, 0.5f * 0x1.03p0f, 0x3f82},  /* 1 + 3 * 2^-8: the tie, to even 1 + 2^-6 */
        {BF16, 0.5f * 0x1.0101p0f, 0x3f81}, /* above the tie */
        {BF16, FLT_MAX / 2.0f, 0x7f80},     /* FLT_MAX rounds to infinity in bfloat16 */
    };
    for (int isa_i = 0; isa_i < TEST_ISA_COUNT; isa_i++) {
        dafl_isa isa = test_all_isas[isa_i];
        if (!test_use_isa(isa, "rounding known answers"))
            continue;
        for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
            for (size_t n = 1; n <= 40; n += 39) { /* the tail and the vector path */
                float x[40], y[40], loss;
                uint16_t g[40];
                float *gp = (float *)(void *)g;
                for (size_t i = 0; i < n; i++) {
                    x[i] = 1.0f;
                    y[i] = 0.0f;
                }
                dafl_mse_params p;
                dafl_mse_params_init(&p);
                p.reduction = DAFL_REDUCTION_SUM;
                p.grad_scale = cases[k].scale;
                p.grad_dtype = (dafl_dtype)cases[k].dt;
                ck_assert_int_eq(dafl_mse(x, y, 1, 1, n, &p, &loss, gp, NULL), DAFL_OK);
                for (size_t i = 0; i < n; i++)
                    TEST_REQUIRE(g[i] == cases[k].want, "%s case %zu n=%zu: %04x, want %04x",
                                 dafl_isa_name(isa), k, n, g[i], cases[k].want);
            }
        }
        /* NaN stays NaN; widening: float16 subnormal and bfloat16 subnormal inputs */
        uint16_t xh[20], yh[20], gh[20];
        for (int i = 0; i < 20; i++) {
            xh[i] = i % 2 ? 0x7e00 : 0x0001; /* float16 NaN, 2^-24 */
            yh[i] = 0;
        }
        dafl_mse_params p;
        dafl_mse_params_init(&p);
        p.reduction = DAFL_REDUCTION_SUM;
        p.input_dtype = p.target_dtype = p.grad_dtype = DAFL_DTYPE_FLOAT16;
        p.grad_scale = 0.5f; /* gradient = x exactly */
        float loss;
        ck_assert_int_eq(dafl_mse((const float *)xh, (const float *)yh, 1, 1, 20, &p, &loss,
                                  (float *)gh, NULL),
                         DAFL_OK);
        ck_assert(isnan(loss));
        for (int i = 0; i < 20; i++)
            TEST_REQUIRE(i % 2 ? (gh[i] & 0x7c00) == 0x7c00 && (gh[i] & 0x3ff)
                               : gh[i] == 0x0001,
                         "%s nan/subnormal element %d: %04x", dafl_isa_name(isa), i, gh[i]);
    }
    dafl_set_isa(DAFL_ISA_AUTO);
}
END_TEST

/* Large calls on 1-3 threads, and the gradient written in place over the input. */
START_TEST(threads_and_in_place)
{
    const size_t n = 3 * 32768 + 123;
    uint16_t *x = malloc(n * 2), *y = malloc(n * 2), *g = malloc(n * 2), *xi = malloc(n * 2);
    float *xw = malloc(n * 4), *yw = malloc(n * 4), *g32 = malloc(n * 4);
    ck_assert(x && y && g && xi && xw && yw && g32);
    for (int t = 0; t < 2; t++) {
        int dt = t == 0 ? BF16 : F16;
        make_inputs(dt, dt, x, y, n, 99 + (uint64_t)t, 0);
        for (size_t i = 0; i < n; i++) {
            xw[i] = ref_widen(dt, x, i);
            yw[i] = ref_widen(dt, y, i);
        }
        for (int config = 0; config < N_CONFIGS; config += 3) {
            for (int isa_i = 0; isa_i < TEST_ISA_COUNT; isa_i++) {
                dafl_isa isa = test_all_isas[isa_i];
                if (!test_use_isa(isa, "half threads"))
                    continue;
                ck_assert_int_eq(dafl_set_threads(1), DAFL_OK);
                float l32, lh;
                ck_assert_int_eq(run_config(config, (dtypes){F32, F32, F32}, xw, yw, n,
                                            DAFL_REDUCTION_MEAN, 1.0f, &l32, g32, NULL),
                                 DAFL_OK);
                for (int threads = 1; threads <= 3; threads++) {
                    ck_assert_int_eq(dafl_set_threads(threads), DAFL_OK);
                    dtypes d = {dt, dt, dt};
                    ck_assert_int_eq(run_config(config, d, x, y, n, DAFL_REDUCTION_MEAN, 1.0f,
                                                &lh, g, NULL),
                                     DAFL_OK);
                    TEST_REQUIRE(test_same_bits(l32, lh), "%s %s %d threads: loss %a vs %a",
                                 dafl_isa_name(isa), config_name[config], threads, l32, lh);
                    for (size_t i = 0; i < n; i++)
                        TEST_REQUIRE(grad_matches(dt, g, i, g32[i]),
                                     "%s %s %d threads: grad[%zu]", dafl_isa_name(isa),
                                     config_name[config], threads, i);
                    /* in place: the gradient over a copy of the input */
                    memcpy(xi, x, n * 2);
                    ck_assert_int_eq(run_config(config, d, xi, y, n, DAFL_REDUCTION_MEAN, 1.0f,
                                                &lh, xi, NULL),
                                     DAFL_OK);
                    TEST_REQUIRE(test_same_bits(l32, lh) && memcmp(xi, g, n * 2) == 0,
                                 "%s %s %d threads: in place differs", dafl_isa_name(isa),
                                 config_name[config], threads);
                }
            }
        }
    }
    dafl_set_threads(0);
    dafl_set_isa(DAFL_ISA_AUTO);
    free(x), free(y), free(g), free(xi), free(xw), free(yw), free(g32);
}
END_TEST

/* The API: old struct sizes read float32, unknown dtypes and bad overlaps are refused
 * before anything is written, half targets are validated. */
START_TEST(api_and_errors)
{
    float x[8] = {0.5f, -1.0f, 2.0f, 0.0f, 1.0f, 3.0f, -2.0f, 0.25f};
    float y[8] = {1.0f, 0.0f, 0.5f, 0.0f, 1.0f, 0.0f, 0.25f, 0.0f};
    float g32[8], gold[8], l32, lold;
    /* an older header's struct: everything before input_dtype, garbage after it */
    dafl_bce_params p;
    dafl_bce_params_init(&p);
    ck_assert_int_eq(dafl_bce_with_logits(x, y, 8, &p, &l32, g32, NULL), DAFL_OK);
    p.input_dtype = p.target_dtype = p.grad_dtype = (dafl_dtype)77;
    p.struct_size = offsetof(dafl_bce_params, input_dtype);
    ck_assert_int_eq(dafl_bce_with_logits(x, y, 8, &p, &lold, gold, NULL), DAFL_OK);
    ck_assert(test_same_bits(l32, lold) && memcmp(g32, gold, sizeof g32) == 0);
    /* an older binary's struct_size is the old sizeof, which ends in the padding after
     * the old last member; that padding is uninitialized memory of the caller's (here:
     * every byte 1) and must not be read as a dtype */
    size_t old_end = offsetof(dafl_bce_params, flags) + sizeof p.flags;
    size_t old_size = (old_end + _Alignof(dafl_bce_params) - 1) / _Alignof(dafl_bce_params) *
                      _Alignof(dafl_bce_params);
    dafl_bce_params_init(&p);
    memset((char *)&p + old_end, DAFL_DTYPE_BFLOAT16, sizeof p - old_end);
    p.struct_size = old_size;
    ck_assert_int_eq(dafl_bce_with_logits(x, y, 8, &p, &lold, gold, NULL), DAFL_OK);
    ck_assert(test_same_bits(l32, lold) && memcmp(g32, gold, sizeof g32) == 0);
    {
        dafl_penalty_focal_params pf;
        float gpf[8], gpf_old[8], lpf, lpf_old;
        dafl_penalty_focal_params_init(&pf);
        ck_assert_int_eq(dafl_penalty_focal(x, y, 8, &pf, &lpf, gpf, NULL), DAFL_OK);
        size_t pf_end = offsetof(dafl_penalty_focal_params, log_eps) + sizeof pf.log_eps;
        memset((char *)&pf + pf_end, DAFL_DTYPE_BFLOAT16, sizeof pf - pf_end);
        pf.struct_size = (pf_end + _Alignof(dafl_penalty_focal_params) - 1) /
                         _Alignof(dafl_penalty_focal_params) * _Alignof(dafl_penalty_focal_params);
        ck_assert_int_eq(dafl_penalty_focal(x, y, 8, &pf, &lpf_old, gpf_old, NULL), DAFL_OK);
        ck_assert(test_same_bits(lpf, lpf_old) && memcmp(gpf, gpf_old, sizeof gpf) == 0);
    }
    /* ending inside the dtype members */
    p.struct_size = offsetof(dafl_bce_params, input_dtype) + 2;
    ck_assert_int_eq(dafl_bce_with_logits(x, y, 8, &p, &lold, gold, NULL), DAFL_ERR_STRUCT_SIZE);
    /* an unknown dtype, in each member */
    dafl_bce_params_init(&p);
    float sentinel = 123.0f, loss = sentinel;
    p.target_dtype = (dafl_dtype)3;
    ck_assert_int_eq(dafl_bce_with_logits(x, y, 8, &p, &loss, gold, NULL), DAFL_ERR_INVALID_ENUM);
    ck_assert(loss == sentinel);
    dafl_sigmoid_focal_params sp;
    dafl_sigmoid_focal_params_init(&sp);
    sp.grad_dtype = (dafl_dtype)-1;
    ck_assert_int_eq(dafl_sigmoid_focal(x, y, 8, &sp, &loss, gold, NULL), DAFL_ERR_INVALID_ENUM);
    dafl_mse_params mp;
    dafl_mse_params_init(&mp);
    mp.input_dtype = (dafl_dtype)3;
    ck_assert_int_eq(dafl_mse(x, y, 1, 1, 8, &mp, &loss, gold, NULL), DAFL_ERR_INVALID_ENUM);
    /* in place needs the same element size: a bfloat16 gradient over float32 input */
    dafl_bce_params_init(&p);
    p.grad_dtype = DAFL_DTYPE_BFLOAT16;
    ck_assert_int_eq(dafl_bce_with_logits(x, y, 8, &p, &loss, x, NULL), DAFL_ERR_OVERLAP);
    /* half gradient overlapping the half target */
    uint16_t h[24] = {0};
    p.input_dtype = p.target_dtype = DAFL_DTYPE_BFLOAT16;
    ck_assert_int_eq(dafl_bce_with_logits((float *)h, (float *)(h + 8), 8, &p, &loss,
                                          (float *)(h + 15), NULL),
                     DAFL_ERR_OVERLAP);
    ck_assert_int_eq(dafl_bce_with_logits((float *)h, (float *)(h + 8), 8, &p, &loss,
                                          (float *)(h + 16), NULL),
                     DAFL_OK);
    /* half targets are validated: a bfloat16 NaN, a float16 1.5 */
    uint16_t hx[5] = {0}, hy[5] = {0x3f80, 0, 0x7fc1, 0, 0};
    dafl_penalty_focal_params pp;
    dafl_penalty_focal_params_init(&pp);
    pp.input_dtype = pp.target_dtype = pp.grad_dtype = DAFL_DTYPE_BFLOAT16;
    uint16_t gh[5] = {1, 2, 3, 4, 5};
    ck_assert_int_eq(dafl_penalty_focal((float *)hx, (float *)hy, 5, &pp, &loss, (float *)gh, NULL),
                     DAFL_ERR_INVALID_TARGET);
    ck_assert(gh[0] == 1 && gh[4] == 5);
    hy[2] = 0;
    dafl_stats st;
    ck_assert_int_eq(dafl_penalty_focal((float *)hx, (float *)hy, 5, &pp, &loss, (float *)gh, &st),
                     DAFL_OK);
    ck_assert_uint_eq(dafl_stats_positives(&st), 1);
    pp.target_dtype = DAFL_DTYPE_FLOAT16;
    hy[0] = 0x3e00; /* 1.5 */
    ck_assert_int_eq(dafl_penalty_focal((float *)hx, (float *)hy, 5, &pp, &loss, (float *)gh, NULL),
                     DAFL_ERR_INVALID_TARGET);
    hy[0] = 0x3c00; /* 1.0 */
    ck_assert_int_eq(dafl_penalty_focal((float *)hx, (float *)hy, 5, &pp, &loss, (float *)gh, &st),
                     DAFL_OK);
    ck_assert_uint_eq(dafl_stats_positives(&st), 1);
    /* (softmax focal and the keypoint-fused loss in half precision:
     * test_half_softmax_keypoints.c) */
}
END_TEST

/* The target check of every bfloat16 and float16 pattern: a call with one target
 * fails with DAFL_ERR_INVALID_TARGET exactly when the widened value (ref_decode) is not
 * in [0, 1] (NaN included), and counts a positive exactly when it is 1; the same in a
 * long run of patterns, where the check's vector loop sees them. */
START_TEST(half_target_check_every_pattern)
{
    const int dts[2] = {BF16, F16};
    for (int d = 0; d < 2; d++) {
        const int dt = dts[d];
        dafl_penalty_focal_params p;
        dafl_penalty_focal_params_init(&p);
        p.input_dtype = p.target_dtype = p.grad_dtype = (dafl_dtype)dt;
        p.reduction = DAFL_REDUCTION_SUM;
        enum { RUN = 37 }; /* a vector loop and its tail, at every width */
        uint16_t x[RUN] = {0}, y[RUN], g[RUN];
        uint64_t valid_patterns = 0;
        for (uint32_t h = 0; h < 65536; h++) {
            const double w = ref_decode(dt, (uint16_t)h);
            const int valid = w >= 0.0 && w <= 1.0;
            valid_patterns += (uint64_t)valid;
            /* the pattern at a position that moves through the vector lanes and the tail,
             * among valid zeros */
            const size_t at = h % RUN;
            for (size_t i = 0; i < RUN; i++)
                y[i] = 0;
            y[at] = (uint16_t)h;
            float loss = -1.0f;
            dafl_stats st;
            dafl_status status = dafl_penalty_focal((float *)x, (float *)y, RUN, &p, &loss,
                                                    (float *)g, &st);
            if (status != (valid ? DAFL_OK : DAFL_ERR_INVALID_TARGET))
                ck_abort_msg("%s target 0x%04x (%g): %s", dt == BF16 ? "bfloat16" : "float16",
                             h, w, dafl_status_string(status));
            if (valid && dafl_stats_positives(&st) != (uint64_t)(w == 1.0))
                ck_abort_msg("%s target 0x%04x: %llu positives", dt == BF16 ? "bfloat16" : "float16",
                             h, (unsigned long long)dafl_stats_positives(&st));
        }
        /* [0, 1]: +0 .. 1.0 and -0 */
        ck_assert_uint_eq(valid_patterns, dt == BF16 ? 0x3f80u + 2u : 0x3c00u + 2u);
    }
}
END_TEST

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    Suite *s = suite_create("half");
    TCase *tc = tcase_create("half");
    tcase_set_timeout(tc, 600);
    tcase_add_loop_test(tc, half_matches_float32, 0, N_CONFIGS);
    tcase_add_test(tc, rounding_known_answers);
    tcase_add_test(tc, conversions_bit_exact);
    tcase_add_test(tc, threads_and_in_place);
    tcase_add_test(tc, api_and_errors);
    tcase_add_test(tc, half_target_check_every_pattern);
    suite_add_tcase(s, tc);
    return test_run_suite(s);
}
