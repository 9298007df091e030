/*
 * Golden digests: a fixed pseudo-random input set per loss, and a hash of every output
 * bit (per-element loss, gradient, reduced loss, statistics).  The same digest must come
 * out on every ISA, every platform and every build, so a change that moves a single bit
 * anywhere - a reordered sum, a contracted multiply-add, a different SLEEF entry point -
 * fails here even when it stays within the accuracy bound.  Correctness itself is proven
 * by test_accuracy against the double reference; this test pins down determinism.
 *
 * Two classes of results exist (dafl.h): CPUs with FMA (every SIMD ISA, and the scalar
 * kernels on them) and x86-64 CPUs without FMA (scalar with SLEEF's non-FMA functions).
 * Run with DAFL_GOLDEN_PRINT=1 to print the digests of the running class.
 */
#include "golden_digests.h"
#include "test_common.h"

#define GOLDEN_N 5003 /* not a multiple of any vector width or of the block */

static uint64_t digest_outputs(const float *loss, size_t nl, const float *grad, size_t ng,
                               float reduced, const dafl_stats *stats)
{
    uint64_t h = TEST_HASH_SEED;
    h = test_hash_floats(h, loss, nl);
    h = test_hash_floats(h, grad, ng);
    h = test_hash_floats(h, &reduced, 1);
    float sum = (float)dafl_stats_loss_sum(stats), w = (float)dafl_stats_weight_sum(stats);
    float counts[2] = {(float)dafl_stats_positives(stats), (float)dafl_stats_elements(stats)};
    h = test_hash_floats(h, &sum, 1);
    h = test_hash_floats(h, &w, 1);
    return test_hash_floats(h, counts, 2);
}

/* FNV-1a over 16-bit patterns (bfloat16 or float16 gradients), every NaN hashed as one
 * pattern, as test_hash_floats does. */
static uint64_t hash_halves(uint64_t h, const uint16_t *v, size_t n, int is_bf16)
{
    const uint16_t inf = is_bf16 ? 0x7f80u : 0x7c00u;
    for (size_t i = 0; i < n; i++) {
        uint16_t u = (v[i] & 0x7fffu) > inf ? 0x7fffu : v[i];
        for (int b = 0; b < 2; b++) {
            h ^= (u >> (8 * b)) & 0xffu;
            h *= UINT64_C(0x100000001b3);
        }
    }
    return h;
}

/* Fixed half-precision inputs from float32 ones, by truncation (any fixed patterns serve:
 * these are inputs, not results); float16 clamps to its range, keeping inf and NaN. */
static uint16_t bf16_truncated(float f) { return (uint16_t)(test_canonical_bits(f) >> 16); }

static uint16_t f16_truncated(float f)
{
    uint32_t b = test_canonical_bits(f), sign = (b >> 16) & 0x8000u, a = b & 0x7fffffffu;
    if (a >= 0x7f800000u)
        return (uint16_t)(sign | 0x7c00u | (a > 0x7f800000u ? 0x200u : 0u));
    if (a >= 0x477fe000u) /* 65504 and up: the largest finite float16 */
        return (uint16_t)(sign | 0x7bffu);
    if (a < 0x38800000u) /* below 2^-14: a float16 subnormal, m * 2^-24 */
        return (uint16_t)(sign | (uint16_t)(fabsf(f) * 16777216.0f));
    return (uint16_t)(sign | ((a - 0x38000000u) >> 13));
}

static void to_half(uint16_t *dst, const float *src, size_t n, int is_bf16)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = is_bf16 ? bf16_truncated(src[i]) : f16_truncated(src[i]);
}

/* The element-wise losses in half precision (cases 11-14): logits in bfloat16 or float16,
 * targets in the same type or float32, the gradient in the logits' type. */
static uint64_t golden_half_case(int which, const float *x, const float *y)
{
    static uint16_t xh[GOLDEN_N], yh[GOLDEN_N], gh[GOLDEN_N];
    static float loss[GOLDEN_N];
    const int bf16 = which == 11 || which == 13, targets_half = which == 11 || which == 14;
    const dafl_dtype dt = bf16 ? DAFL_DTYPE_BFLOAT16 : DAFL_DTYPE_FLOAT16;
    to_half(xh, x, GOLDEN_N, bf16);
    to_half(yh, y, GOLDEN_N, bf16);
    const float *xin = (const float *)(const void *)xh;
    const float *yin = targets_half ? (const float *)(const void *)yh : y;
    float *g = (float *)(void *)gh, reduced = 0;
    const dafl_dtype ydt = targets_half ? dt : DAFL_DTYPE_FLOAT32;
    dafl_stats stats;
    dafl_status st = DAFL_OK;
    if (which == 11) { /* penalty focal, logits, all bfloat16 */
        dafl_penalty_focal_params p;
        dafl_penalty_focal_params_init(&p);
        p.input_dtype = dt, p.target_dtype = ydt, p.grad_dtype = dt;
        p.reduction = DAFL_REDUCTION_NONE;
        st |= dafl_penalty_focal(xin, yin, GOLDEN_N, &p, loss, g, NULL);
        p.reduction = DAFL_REDUCTION_POSITIVES;
        st |= dafl_penalty_focal(xin, yin, GOLDEN_N, &p, &reduced, NULL, &stats);
    } else if (which == 12) { /* sigmoid focal g=2, float16 logits, float32 targets */
        dafl_sigmoid_focal_params p;
        dafl_sigmoid_focal_params_init(&p);
        p.input_dtype = dt, p.target_dtype = ydt, p.grad_dtype = dt;
        st |= dafl_sigmoid_focal(xin, yin, GOLDEN_N, &p, loss, g, NULL);
        p.reduction = DAFL_REDUCTION_MEAN;
        st |= dafl_sigmoid_focal(xin, yin, GOLDEN_N, &p, &reduced, NULL, &stats);
    } else if (which == 13) { /* BCE, bfloat16 logits, float32 targets */
        dafl_bce_params p;
        dafl_bce_params_init(&p);
        p.input_dtype = dt, p.target_dtype = ydt, p.grad_dtype = dt;
        p.reduction = DAFL_REDUCTION_NONE;
        st |= dafl_bce_with_logits(xin, yin, GOLDEN_N, &p, loss, g, NULL);
        p.reduction = DAFL_REDUCTION_MEAN;
        st |= dafl_bce_with_logits(xin, yin, GOLDEN_N, &p, &reduced, NULL, &stats);
    } else { /* MSE, all float16 */
        dafl_mse_params p;
        dafl_mse_params_init(&p);
        p.input_dtype = dt, p.target_dtype = ydt, p.grad_dtype = dt;
        p.reduction = DAFL_REDUCTION_NONE;
        st |= dafl_mse(xin, yin, 1, 1, GOLDEN_N, &p, loss, g, NULL);
        p.reduction = DAFL_REDUCTION_MEAN;
        st |= dafl_mse(xin, yin, 1, 1, GOLDEN_N, &p, &reduced, NULL, &stats);
    }
    if (st)
        return 0;
    uint64_t h = digest_outputs(loss, GOLDEN_N, NULL, 0, reduced, &stats);
    return hash_halves(h, gh, GOLDEN_N, bf16);
}

static uint64_t golden_case(int which)
{
    static float x[GOLDEN_N * 4], y[GOLDEN_N], loss[GOLDEN_N], grad[GOLDEN_N * 4];
    static int32_t labels[GOLDEN_N];
    uint64_t seed = 0x5eed0000u + (uint64_t)which;
    for (size_t i = 0; i < GOLDEN_N * 4; i++)
        x[i] = test_uniform(&seed, -20.0f, 20.0f);
    for (size_t i = 0; i < GOLDEN_N; i++) {
        uint64_t r = test_rand64(&seed);
        y[i] = r % 7 == 0 ? 1.0f : r % 7 == 1 ? 0.0f : test_uniform(&seed, 0.0f, 1.0f);
        labels[i] = r % 11 == 0 ? -100 : (int32_t)(r % 4);
    }
    x[17] = INFINITY;
    x[18] = -INFINITY;
    if (which >= 11) {
        x[19] = NAN;
        x[20] = 1e-40f; /* a float32 and bfloat16 subnormal; float16 zero */
        x[21] = 70000.0f; /* beyond float16: its largest finite value */
        return golden_half_case(which, x, y);
    }
    float reduced = 0;
    dafl_stats stats;
    dafl_status st = DAFL_OK;
    switch (which) {
    case 0: case 1: case 2: {
        for (size_t i = 0; which == 1 && i < GOLDEN_N; i++)
            x[i] = test_uniform(&seed, 0.0f, 1.0f); /* probabilities */
        dafl_penalty_focal_params p;
        dafl_penalty_focal_params_init(&p);
        p.input_mode = (dafl_input_mode)which;
        p.reduction = DAFL_REDUCTION_NONE;
        st |= dafl_penalty_focal(x, y, GOLDEN_N, &p, loss, grad, NULL);
        p.reduction = DAFL_REDUCTION_POSITIVES;
        st |= dafl_penalty_focal(x, y, GOLDEN_N, &p, &reduced, NULL, &stats);
        break;
    }
    case 3: case 4: {
        dafl_sigmoid_focal_params p;
        dafl_sigmoid_focal_params_init(&p);
        p.gamma = which == 3 ? 2.0f : 2.5f;
        st |= dafl_sigmoid_focal(x, y, GOLDEN_N, &p, loss, grad, NULL);
        p.reduction = DAFL_REDUCTION_MEAN;
        st |= dafl_sigmoid_focal(x, y, GOLDEN_N, &p, &reduced, NULL, &stats);
        break;
    }
    case 5: {
        dafl_bce_params p;
        dafl_bce_params_init(&p);
        p.reduction = DAFL_REDUCTION_NONE;
        st |= dafl_bce_with_logits(x, y, GOLDEN_N, &p, loss, grad, NULL);
        p.reduction = DAFL_REDUCTION_MEAN;
        st |= dafl_bce_with_logits(x, y, GOLDEN_N, &p, &reduced, NULL, &stats);
        break;
    }
    case 6: {
        dafl_mse_params p;
        dafl_mse_params_init(&p);
        p.reduction = DAFL_REDUCTION_NONE;
        st |= dafl_mse(x, y, 1, 1, GOLDEN_N, &p, loss, grad, NULL);
        p.reduction = DAFL_REDUCTION_MEAN;
        st |= dafl_mse(x, y, 1, 1, GOLDEN_N, &p, &reduced, NULL, &stats);
        break;
    }
    case 9: case 10: {
        /* 1 x 3 x 37 x 45 (4995 elements, planes straddling blocks), 14 keypoints of every
         * style, some over the borders: the rendered targets (9), and the loss from the
         * keypoints per element, then reduced by the positives (10). */
        enum { C = 3, H = 37, W = 45, COUNT = C * H * W, POINTS = 14 };
        dafl_keypoint kp[POINTS];
        for (int i = 0; i < POINTS; i++) {
            uint64_t r = test_rand64(&seed);
            dafl_keypoint_init(&kp[i]);
            kp[i].channel = (int64_t)(r % C);
            kp[i].style = i % 4 == 3 ? DAFL_KEYPOINT_MSRA
                          : i % 7 == 5 ? DAFL_KEYPOINT_DISTANCE
                                       : DAFL_KEYPOINT_UMICH;
            kp[i].x = (double)((long)((r >> 8) % (W + 10)) - 5);
            kp[i].y = (double)((long)((r >> 16) % (H + 10)) - 5);
            kp[i].size = kp[i].style != DAFL_KEYPOINT_UMICH ? 1.0 + (double)((r >> 24) % 5) * 0.7
                                                            : (double)((r >> 24) % 16);
            kp[i].k = i % 5 == 2 ? 0.7f : 1.0f;
        }
        if (which == 9) {
            st |= dafl_render_heatmaps(kp, POINTS, 1, C, H, W, y);
            dafl_stats_init(&stats);
            return st ? 0 : digest_outputs(y, COUNT, NULL, 0, 0.0f, &stats);
        }
        dafl_penalty_focal_params p;
        dafl_penalty_focal_params_init(&p);
        p.reduction = DAFL_REDUCTION_NONE;
        st |= dafl_penalty_focal_keypoints(x, 1, C, H, W, kp, POINTS, &p, loss, grad, NULL);
        p.reduction = DAFL_REDUCTION_POSITIVES;
        st |= dafl_penalty_focal_keypoints(x, 1, C, H, W, kp, POINTS, &p, &reduced, NULL,
                                           &stats);
        return st ? 0 : digest_outputs(loss, COUNT, grad, COUNT, reduced, &stats);
    }
    default: {
        dafl_softmax_focal_params p;
        dafl_softmax_focal_params_init(&p);
        p.layout = which == 7 ? DAFL_LAYOUT_NCHW : DAFL_LAYOUT_NHWC;
        p.gamma = which == 7 ? 2.0f : 1.5f;
        p.reduction = DAFL_REDUCTION_NONE;
        st |= dafl_softmax_focal(x, labels, 1, 4, GOLDEN_N, &p, loss, grad, NULL);
        p.reduction = DAFL_REDUCTION_MEAN;
        st |= dafl_softmax_focal(x, labels, 1, 4, GOLDEN_N, &p, &reduced, NULL, &stats);
        return st ? 0 : digest_outputs(loss, GOLDEN_N, grad, GOLDEN_N * 4, reduced, &stats);
    }
    }
    return st ? 0 : digest_outputs(loss, GOLDEN_N, grad, GOLDEN_N, reduced, &stats);
}

static const char *const golden_names[GOLDEN_CASES] = {
    "penalty focal logits", "penalty focal probabilities", "penalty focal clamped",
    "sigmoid focal g=2",    "sigmoid focal g=2.5",         "bce",
    "mse",                  "softmax focal NCHW g=2",      "softmax focal NHWC g=1.5",
    "keypoints rendered",   "penalty focal from keypoints",
    "penalty focal logits bf16",  "sigmoid focal g=2 f16 (f32 targets)",
    "bce bf16 (f32 targets)",     "mse f16"};

/* Whether the running kernels belong to the non-FMA class: only the scalar kernels on an
 * x86-64 CPU without FMA. */
static int non_fma_class(void)
{
#if defined(__x86_64__)
    __builtin_cpu_init();
    return dafl_active_isa() == DAFL_ISA_SCALAR && !__builtin_cpu_supports("fma");
#else
    return 0;
#endif
}

START_TEST(golden_digests)
{
    int print = getenv("DAFL_GOLDEN_PRINT") != NULL;
    for (int k = 0; k < TEST_ISA_COUNT; k++) {
        if (!test_use_isa(test_all_isas[k], "golden digests"))
            continue;
        const uint64_t *want = non_fma_class() ? golden_non_fma : golden_fma;
        for (int c = 0; c < GOLDEN_CASES; c++) {
            uint64_t got = golden_case(c);
            if (print)
                printf("    UINT64_C(0x%016llx), /* %s */\n", (unsigned long long)got,
                       golden_names[c]);
            ck_assert_msg(print || got == want[c], "%s on %s (%s class): digest %016llx, want %016llx",
                          golden_names[c], dafl_isa_name(test_all_isas[k]),
                          non_fma_class() ? "non-FMA" : "FMA", (unsigned long long)got,
                          (unsigned long long)want[c]);
        }
        printf("golden digests %-7s (%s class): all %d match\n", dafl_isa_name(test_all_isas[k]),
               non_fma_class() ? "non-FMA" : "FMA", GOLDEN_CASES);
    }
    dafl_set_isa(DAFL_ISA_AUTO);
}
END_TEST

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    Suite *s = suite_create("golden");
    TCase *tc = tcase_create("golden");
    tcase_add_test(tc, golden_digests);
    suite_add_tcase(s, tc);
    return test_run_suite(s);
}
