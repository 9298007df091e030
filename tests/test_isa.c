/*
 * checkasm-style cross-ISA test: every kernel, under every ISA this CPU runs, against the
 * scalar kernels bit for bit (NaN payloads aside): every length from 0 to 3 AVX-512
 * vector widths + 15 and around block boundaries, source and destination offsets of
 * 0..15 floats, special values, every parameter mode.  An ISA the CPU lacks is printed
 * as SKIPPED, never counted as passed.
 */
#include "test_common.h"

#define MAX_LEN (3 * DAFL_BLOCK_ELEMENTS + 37)
#define PAD 16

/* Inputs with every special value of SPEC 5 sprinkled in. */
static void make_inputs(float *x, float *y, size_t n, uint64_t seed, int probabilities)
{
    static const float special_x[] = {INFINITY, -INFINITY, NAN, 0.0f, -0.0f, 100.0f,
                                      -100.0f, 1e-30f, 88.7f, -88.7f, 20.0f, -20.0f};
    for (size_t i = 0; i < n; i++) {
        uint64_t r = test_rand64(&seed);
        if (probabilities)
            x[i] = test_uniform(&seed, 0.0f, 1.0f);
        else if (r % 13 == 0)
            x[i] = special_x[(r >> 8) % (sizeof special_x / sizeof special_x[0])];
        else
            x[i] = test_uniform(&seed, -25.0f, 25.0f);
        switch ((r >> 20) % 6) {
        case 0: y[i] = 1.0f; break;
        case 1: y[i] = 0.0f; break;
        default: y[i] = test_uniform(&seed, 0.0f, 1.0f);
        }
    }
}

typedef struct result {
    float loss_reduced;
    uint64_t positives;
    double loss_sum;
} result;

/* The element-wise losses in every parameter mode, one index per configuration. */
#define N_CONFIGS 17
static const char *config_name[N_CONFIGS] = {
    "penalty focal logits", "penalty focal logits a=2.5 b=3.5", "penalty focal probabilities",
    "penalty focal probabilities a=1.5", "penalty focal clamped", "penalty focal normalizer",
    "sigmoid focal g=2", "sigmoid focal g=2.5", "sigmoid focal g=0 a<0", "sigmoid focal g=3 sum",
    "bce", "bce pw=3 sum", "mse", "mse weights",
    /* real exponents that are not half-integers: exp and log instead of a square root */
    "penalty focal logits a=2.3 b=3.7", "penalty focal clamped a=1.7", "sigmoid focal g=1.7"};

static dafl_status run_config(int config, const float *x, const float *y, size_t n,
                              float *per_element, float *grad, result *r)
{
    dafl_stats stats;
    dafl_status st = DAFL_ERR_INVALID_ENUM;
    /* Each configuration runs twice: per-element losses, then a reduced call. */
    for (int pass = 0; pass < 2; pass++) {
        dafl_reduction red = pass == 0 ? DAFL_REDUCTION_NONE : DAFL_REDUCTION_MEAN;
        float *loss = pass == 0 ? per_element : &r->loss_reduced;
        float *g = pass == 0 ? grad : NULL;
        if (config < 6 || config == 14 || config == 15) {
            dafl_penalty_focal_params p;
            dafl_penalty_focal_params_init(&p);
            p.reduction = pass == 0 ? red : DAFL_REDUCTION_POSITIVES;
            if (config == 1) {
                p.alpha = 2.5f;
                p.beta = 3.5f;
            }
            if (config == 2 || config == 3)
                p.input_mode = DAFL_INPUT_PROBABILITIES;
            if (config == 3)
                p.alpha = 1.5f;
            if (config == 4 || config == 15)
                p.input_mode = DAFL_INPUT_CLAMPED_LOGITS;
            if (config == 14) {
                p.alpha = 2.3f;
                p.beta = 3.7f;
            }
            if (config == 15)
                p.alpha = 1.7f;
            if (config == 5 && pass == 1) {
                p.reduction = DAFL_REDUCTION_NORMALIZER;
                p.normalizer = 37.0f;
                p.grad_scale = 0.3f;
                g = grad; /* the gradient with a normalizer and scale */
            }
            st = dafl_penalty_focal(x, y, n, &p, loss, g, &stats);
        } else if (config < 10 || config == 16) {
            dafl_sigmoid_focal_params p;
            dafl_sigmoid_focal_params_init(&p);
            p.reduction = red;
            p.gamma = config == 6 ? 2.0f : config == 7 ? 2.5f : config == 8 ? 0.0f
                    : config == 16 ? 1.7f : 3.0f;
            /* config 9: alpha above 1 (torchvision's any alpha: negative weights) */
            p.alpha = config == 8 ? -1.0f : config == 9 ? 2.0f : 0.25f;
            if (config == 9 && pass == 1)
                p.reduction = DAFL_REDUCTION_SUM;
            st = dafl_sigmoid_focal(x, y, n, &p, loss, g, &stats);
        } else if (config < 12) {
            dafl_bce_params p;
            dafl_bce_params_init(&p);
            p.reduction = red;
            if (config == 11) {
                p.pos_weight = 3.0f;
                if (pass == 1)
                    p.reduction = DAFL_REDUCTION_SUM;
            }
            st = dafl_bce_with_logits(x, y, n, &p, loss, g, &stats);
        } else {
            dafl_mse_params p;
            dafl_mse_params_init(&p);
            p.reduction = red;
            static const float w[5] = {0.5f, 1.0f, 2.0f, 0.0f, 1.5f};
            /* 5 channels when n divides, so planes end inside vectors; else one plane */
            size_t channels = n % 5 == 0 ? 5 : 1;
            if (config == 13) {
                p.weights = w + 5 - channels;
                p.weights_count = channels;
            }
            st = dafl_mse(x, y, 1, channels, n / channels, &p, loss, g, &stats);
        }
        if (st != DAFL_OK)
            return st;
    }
    r->positives = dafl_stats_positives(&stats);
    r->loss_sum = dafl_stats_loss_sum(&stats);
    return DAFL_OK;
}

static int same_result(const result *a, const result *b)
{
    return test_same_bits(a->loss_reduced, b->loss_reduced) && a->positives == b->positives &&
           ((isnan(a->loss_sum) && isnan(b->loss_sum)) || a->loss_sum == b->loss_sum);
}

/* Lengths: 0 .. 3*16+15, then around the block boundaries. */
static size_t test_lengths(size_t *len)
{
    size_t n = 0;
    for (size_t l = 0; l <= 3 * 16 + 15; l++)
        len[n++] = l;
    const size_t around[] = {DAFL_BLOCK_ELEMENTS - 1, DAFL_BLOCK_ELEMENTS,
                             DAFL_BLOCK_ELEMENTS + 1, DAFL_BLOCK_ELEMENTS + 17,
                             2 * DAFL_BLOCK_ELEMENTS + 15, MAX_LEN};
    for (size_t i = 0; i < sizeof around / sizeof around[0]; i++)
        len[n++] = around[i];
    return n;
}

START_TEST(elementwise_bit_exact)
{
    float *x = malloc((MAX_LEN + PAD) * sizeof(float)), *y = malloc((MAX_LEN + PAD) * sizeof(float));
    float *ref_l = malloc(MAX_LEN * sizeof(float)), *ref_g = malloc(MAX_LEN * sizeof(float));
    float *got_l = malloc((MAX_LEN + PAD) * sizeof(float));
    float *got_g = malloc((MAX_LEN + PAD) * sizeof(float));
    ck_assert(x && y && ref_l && ref_g && got_l && got_g);
    size_t lens[128];
    size_t n_lens = test_lengths(lens);
    int config = _i; /* one test per configuration */
    int compared = 0;
    for (size_t li = 0; li < n_lens; li++) {
        size_t n = lens[li];
        int probabilities = config == 2 || config == 3;
        for (int isa_i = 1; isa_i < TEST_ISA_COUNT; isa_i++) {
            dafl_isa isa = test_all_isas[isa_i];
            if (!dafl_isa_available(isa))
                continue;
            /* source offset and destination offset vary independently */
            for (int off = 0; off < PAD; off += (n > 200 ? 5 : 1)) {
                int doff = (off * 7 + 3) % PAD;
                make_inputs(x + off, y + off, n, 1000 + n, probabilities);
                result ref, got;
                ck_assert_int_eq(dafl_set_isa(DAFL_ISA_SCALAR), DAFL_OK);
                ck_assert_int_eq(run_config(config, x + off, y + off, n, ref_l, ref_g, &ref),
                                 DAFL_OK);
                ck_assert_int_eq(dafl_set_isa(isa), DAFL_OK);
                /* sentinels around the outputs catch writes past either end */
                memset(got_l, 0x5a, (MAX_LEN + PAD) * sizeof(float));
                memset(got_g, 0x5a, (MAX_LEN + PAD) * sizeof(float));
                ck_assert_int_eq(run_config(config, x + off, y + off, n, got_l + doff,
                                            got_g + doff, &got),
                                 DAFL_OK);
                for (size_t i = 0; i < n; i++) {
                    TEST_REQUIRE(test_same_bits(ref_l[i], got_l[doff + i]) &&
                                      test_same_bits(ref_g[i], got_g[doff + i]),
                                  "%s on %s, n=%zu off=%d, element %zu: x=%a y=%a loss %a vs "
                                  "%a grad %a vs %a",
                                  config_name[config], dafl_isa_name(isa), n, off, i,
                                  x[off + i], y[off + i], ref_l[i], got_l[doff + i], ref_g[i],
                                  got_g[doff + i]);
                }
                for (size_t i = 0; i < MAX_LEN + PAD; i++)
                    TEST_REQUIRE(i - doff < n || (((uint32_t *)got_l)[i] == 0x5a5a5a5au &&
                                                  ((uint32_t *)got_g)[i] == 0x5a5a5a5au),
                                 "%s on %s, n=%zu: write outside the output at %zu",
                                 config_name[config], dafl_isa_name(isa), n, i);
                ck_assert_msg(same_result(&ref, &got), "%s on %s, n=%zu: reduced differs",
                              config_name[config], dafl_isa_name(isa), n);
                compared++;
            }
        }
    }
    for (int isa_i = 1; isa_i < TEST_ISA_COUNT; isa_i++)
        if (!dafl_isa_available(test_all_isas[isa_i]))
            test_report_skip(test_all_isas[isa_i], config_name[config],
                             "not supported by this CPU or build");
    printf("compared %-36s %6d runs against scalar\n", config_name[config], compared);
    dafl_set_isa(DAFL_ISA_AUTO);
    free(x);
    free(y);
    free(ref_l);
    free(ref_g);
    free(got_l);
    free(got_g);
}
END_TEST

/* Softmax focal: both layouts, several class counts, ignored pixels, class weights,
 * integer and real gamma; pixel counts that straddle images and vector widths. */
START_TEST(softmax_bit_exact)
{
    const size_t classes[] = {1, 2, 3, 7, 21};
    const size_t pixel_counts[] = {1, 3, 15, 16, 17, 33, 63, 100, 1030};
    const float gammas[] = {0.0f, 2.0f, 2.5f, 1.7f};
    int compared = 0;
    for (size_t ci = 0; ci < 5; ci++)
        for (size_t pi = 0; pi < 9; pi++)
            for (int layout = 0; layout < 2; layout++)
                for (int gi = 0; gi < 4; gi++) {
                    size_t c = classes[ci], hw = pixel_counts[pi], n = 2;
                    size_t count = n * c * hw;
                    uint64_t seed = 77 + ci * 1000 + pi * 10 + (size_t)gi;
                    float *x = malloc(count * sizeof(float));
                    float *g_ref = malloc(count * sizeof(float)), *g = malloc(count * sizeof(float));
                    float *l_ref = malloc(n * hw * sizeof(float)), *l = malloc(n * hw * sizeof(float));
                    int32_t *lab = malloc(n * hw * sizeof(int32_t));
                    float *w = malloc(c * sizeof(float));
                    ck_assert(x && g_ref && g && l_ref && l && lab && w);
                    for (size_t i = 0; i < count; i++)
                        x[i] = (test_rand64(&seed) % 29 == 0) ? -INFINITY
                                                                : test_uniform(&seed, -20, 20);
                    for (size_t i = 0; i < n * hw; i++)
                        lab[i] = test_rand64(&seed) % 9 == 0 ? -100
                                                             : (int32_t)(test_rand64(&seed) % c);
                    for (size_t k = 0; k < c; k++)
                        w[k] = test_uniform(&seed, 0.1f, 3.0f);
                    dafl_softmax_focal_params p;
                    dafl_softmax_focal_params_init(&p);
                    p.layout = (dafl_layout)layout;
                    p.gamma = gammas[gi];
                    p.class_weights = gi == 1 ? w : NULL;
                    p.reduction = DAFL_REDUCTION_NONE;
                    ck_assert_int_eq(dafl_set_isa(DAFL_ISA_SCALAR), DAFL_OK);
                    ck_assert_int_eq(dafl_softmax_focal(x, lab, n, c, hw, &p, l_ref, g_ref, NULL),
                                     DAFL_OK);
                    for (int isa_i = 1; isa_i < TEST_ISA_COUNT; isa_i++) {
                        if (dafl_set_isa(test_all_isas[isa_i]) != DAFL_OK)
                            continue;
                        ck_assert_int_eq(dafl_softmax_focal(x, lab, n, c, hw, &p, l, g, NULL),
                                         DAFL_OK);
                        for (size_t i = 0; i < count; i++)
                            TEST_REQUIRE(test_same_bits(g_ref[i], g[i]),
                                          "softmax %s c=%zu hw=%zu layout %d g=%.1f grad %zu",
                                          dafl_isa_name(test_all_isas[isa_i]), c, hw, layout,
                                          (double)gammas[gi], i);
                        for (size_t i = 0; i < n * hw; i++)
                            TEST_REQUIRE(test_same_bits(l_ref[i], l[i]), "softmax loss %zu", i);
                        compared++;
                    }
                    free(x); free(g_ref); free(g); free(l_ref); free(l); free(lab); free(w);
                }
    for (int isa_i = 1; isa_i < TEST_ISA_COUNT; isa_i++)
        if (!dafl_isa_available(test_all_isas[isa_i]))
            test_report_skip(test_all_isas[isa_i], "softmax focal",
                             "not supported by this CPU or build");
    printf("compared %-36s %6d runs against scalar\n", "softmax focal", compared);
    dafl_set_isa(DAFL_ISA_AUTO);
}
END_TEST

/* What dafl.h promises for DAFL_ISA_AUTO: the best ISA available, in the order AVX-512,
 * AVX2, NEON, scalar. */
static dafl_isa best_available(void)
{
    const dafl_isa preference[] = {DAFL_ISA_AVX512, DAFL_ISA_AVX2, DAFL_ISA_NEON};
    for (int i = 0; i < 3; i++)
        if (dafl_isa_available(preference[i]))
            return preference[i];
    return DAFL_ISA_SCALAR;
}

/* The first choice: DAFL_ISA's ISA when it names one this machine runs, else AUTO's. */
static dafl_isa initial_choice(void)
{
    const char *env = getenv("DAFL_ISA");
    for (int i = 0; env && i < TEST_ISA_COUNT; i++)
        if (strcmp(env, dafl_isa_name(test_all_isas[i])) == 0 &&
            dafl_isa_available(test_all_isas[i]))
            return test_all_isas[i];
    return best_available();
}

/* The penalty focal loss from keypoint lists: every ISA against the scalar kernels, on a
 * batch whose planes straddle blocks (37 x 29), with blocks that keypoints reach and
 * all-negative ones, in each input mode, with the per-element loss and the gradient. */
START_TEST(keypoint_loss_bit_exact)
{
    const size_t n = 2, c = 5, h = 37, w = 29, count = n * c * h * w;
    dafl_keypoint kp[24];
    uint64_t seed = 4242;
    for (int i = 0; i < 24; i++) {
        dafl_keypoint_init(&kp[i]);
        uint64_t r = test_rand64(&seed);
        kp[i].image = (int64_t)(r % n);
        kp[i].channel = (int64_t)((r >> 8) % 3); /* channels 3 and 4 stay empty */
        kp[i].style = i % 3 == 0 ? DAFL_KEYPOINT_MSRA : DAFL_KEYPOINT_UMICH;
        kp[i].x = (double)((long)((r >> 16) % 45) - 8);
        kp[i].y = (double)((long)((r >> 24) % 53) - 8);
        kp[i].size = kp[i].style == DAFL_KEYPOINT_MSRA ? 0.7 + (double)(r >> 40 & 7)
                                                       : (double)((r >> 32) % 13);
        kp[i].k = i % 4 == 1 ? 0.6f : 1.0f;
    }
    float *x = malloc(count * sizeof(float)), *g_ref = malloc(count * sizeof(float)),
          *g = malloc(count * sizeof(float)), *l_ref = malloc(count * sizeof(float)),
          *l = malloc(count * sizeof(float));
    ck_assert(x && g_ref && g && l_ref && l);
    static const dafl_input_mode modes[] = {DAFL_INPUT_LOGITS, DAFL_INPUT_PROBABILITIES,
                                            DAFL_INPUT_CLAMPED_LOGITS};
    int compared = 0;
    for (int mi = 0; mi < 3; mi++) {
        for (size_t i = 0; i < count; i++)
            x[i] = modes[mi] == DAFL_INPUT_PROBABILITIES ? test_uniform(&seed, 1e-6f, 0.999f)
                                                         : test_uniform(&seed, -20.0f, 20.0f);
        for (int reduced = 0; reduced < 2; reduced++) {
            dafl_penalty_focal_params p;
            dafl_penalty_focal_params_init(&p);
            p.input_mode = modes[mi];
            p.reduction = reduced ? DAFL_REDUCTION_POSITIVES : DAFL_REDUCTION_NONE;
            if (mi == 1)
                p.alpha = 1.5f, p.beta = 3.0f, p.neg_weight = 0.8f;
            float loss_ref = 0, loss = 0;
            ck_assert_int_eq(dafl_set_isa(DAFL_ISA_SCALAR), DAFL_OK);
            ck_assert_int_eq(dafl_penalty_focal_keypoints(x, n, c, h, w, kp, 24, &p,
                                                          reduced ? &loss_ref : l_ref, g_ref,
                                                          NULL),
                             DAFL_OK);
            for (int isa_i = 1; isa_i < TEST_ISA_COUNT; isa_i++) {
                if (dafl_set_isa(test_all_isas[isa_i]) != DAFL_OK)
                    continue;
                ck_assert_int_eq(dafl_penalty_focal_keypoints(x, n, c, h, w, kp, 24, &p,
                                                              reduced ? &loss : l, g, NULL),
                                 DAFL_OK);
                for (size_t i = 0; i < count; i++) {
                    TEST_REQUIRE(test_same_bits(g_ref[i], g[i]), "keypoints %s mode %d grad %zu",
                                 dafl_isa_name(test_all_isas[isa_i]), (int)modes[mi], i);
                    TEST_REQUIRE(reduced || test_same_bits(l_ref[i], l[i]),
                                 "keypoints %s mode %d loss %zu",
                                 dafl_isa_name(test_all_isas[isa_i]), (int)modes[mi], i);
                }
                TEST_REQUIRE(!reduced || test_same_bits(loss_ref, loss), "keypoints loss");
                compared++;
            }
        }
    }
    for (int isa_i = 1; isa_i < TEST_ISA_COUNT; isa_i++)
        if (!dafl_isa_available(test_all_isas[isa_i]))
            printf("SKIPPED %-7s keypoint penalty focal: not supported by this CPU or build\n",
                   dafl_isa_name(test_all_isas[isa_i]));
    printf("compared %-36s %6d runs against scalar\n", "keypoint penalty focal", compared);
    free(x); free(g_ref); free(g); free(l_ref); free(l);
    dafl_set_isa(DAFL_ISA_AUTO);
}
END_TEST

START_TEST(dispatch_reports_and_refuses)
{
    /* The active ISA is a real one, the one DAFL_ISA asks for (if this machine runs it);
     * every available ISA can be set and named; AUTO then means the best available. */
    dafl_isa active = dafl_active_isa();
    ck_assert(active != DAFL_ISA_AUTO);
    printf("active ISA: %s (DAFL_ISA=%s)\n", dafl_isa_name(active),
           getenv("DAFL_ISA") ? getenv("DAFL_ISA") : "unset");
    ck_assert_int_eq(active, initial_choice());
    for (int i = 0; i < TEST_ISA_COUNT; i++) {
        dafl_isa isa = test_all_isas[i];
        dafl_status st = dafl_set_isa(isa);
        if (dafl_isa_available(isa)) {
            ck_assert_int_eq(st, DAFL_OK);
            ck_assert_int_eq(dafl_active_isa(), isa);
        } else {
            ck_assert_int_eq(st, DAFL_ERR_ISA_UNAVAILABLE);
        }
    }
    /* auto is the best ISA available, whatever DAFL_ISA chose at start */
    ck_assert_int_eq(dafl_set_isa(DAFL_ISA_AUTO), DAFL_OK);
    ck_assert_int_eq(dafl_active_isa(), best_available());
}
END_TEST

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    /* `test_isa --available`: the names of the ISAs this machine runs, one a line (what
     * .ci/run forces through DAFL_ISA, one suite run each). */
    if (argc == 2 && strcmp(argv[1], "--available") == 0) {
        for (int i = 0; i < TEST_ISA_COUNT; i++)
            if (dafl_isa_available(test_all_isas[i]))
                printf("%s\n", dafl_isa_name(test_all_isas[i]));
        return EXIT_SUCCESS;
    }
    Suite *s = suite_create("isa");
    TCase *tc = tcase_create("isa");
    tcase_set_timeout(tc, 600);
    tcase_add_loop_test(tc, elementwise_bit_exact, 0, N_CONFIGS);
    tcase_add_test(tc, softmax_bit_exact);
    tcase_add_test(tc, keypoint_loss_bit_exact);
    tcase_add_test(tc, dispatch_reports_and_refuses);
    suite_add_tcase(s, tc);
    return test_run_suite(s);
}
