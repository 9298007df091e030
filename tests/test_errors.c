/*
 * Every status code of SPEC 6 reached through the public API, and every failing call
 * proven to leave its outputs untouched (they are filled with a sentinel pattern first
 * and compared byte for byte afterwards).
 */
#include <stddef.h>
#include <stdint.h>

#include "test_common.h"

enum { N = 37 };

typedef struct outputs {
    float loss[N];
    float grad[N * 4];
    dafl_stats stats;
} outputs;

static float x[N * 4], y[N * 4];
static int32_t labels[N];

static void fill_sentinel(outputs *o) { memset(o, 0xa5, sizeof *o); }

static int untouched(const outputs *o)
{
    outputs s;
    fill_sentinel(&s);
    return memcmp(o, &s, sizeof s) == 0;
}

static void setup_inputs(void)
{
    for (int i = 0; i < N * 4; i++) {
        x[i] = (float)(i % 11) - 5.0f;
        y[i] = (float)(i % 5) / 4.0f;
    }
    for (int i = 0; i < N; i++)
        labels[i] = i % 3;
}

/* Call EXPR (which writes into o's buffers), expect STATUS and untouched outputs. */
#define EXPECT_FAILS(STATUS, EXPR)                                                         \
    do {                                                                                   \
        outputs o;                                                                         \
        fill_sentinel(&o);                                                                 \
        dafl_status st_ = (EXPR);                                                          \
        ck_assert_msg(st_ == (STATUS), "%s: got %s, want %s", #EXPR, dafl_status_string(st_), \
                      dafl_status_string(STATUS));                                         \
        ck_assert_msg(untouched(&o), "%s wrote to its outputs", #EXPR);                    \
    } while (0)

#define PF(cnt, params, xp, yp) dafl_penalty_focal(xp, yp, cnt, params, o.loss, o.grad, &o.stats)

START_TEST(null_pointers)
{
    setup_inputs();
    EXPECT_FAILS(DAFL_ERR_NULL_POINTER, PF(N, NULL, NULL, y));
    EXPECT_FAILS(DAFL_ERR_NULL_POINTER, PF(N, NULL, x, NULL));
    EXPECT_FAILS(DAFL_ERR_NULL_POINTER,
                 dafl_sigmoid_focal(NULL, y, N, NULL, o.loss, o.grad, &o.stats));
    EXPECT_FAILS(DAFL_ERR_NULL_POINTER,
                 dafl_bce_with_logits(x, NULL, N, NULL, o.loss, o.grad, &o.stats));
    EXPECT_FAILS(DAFL_ERR_NULL_POINTER,
                 dafl_mse(NULL, y, 1, 1, N, NULL, o.loss, o.grad, &o.stats));
    EXPECT_FAILS(DAFL_ERR_NULL_POINTER,
                 dafl_softmax_focal(x, NULL, 1, 3, N, NULL, o.loss, o.grad, &o.stats));
    EXPECT_FAILS(DAFL_ERR_NULL_POINTER,
                 dafl_softmax_focal(NULL, labels, 1, 3, N, NULL, o.loss, o.grad, &o.stats));
    EXPECT_FAILS(DAFL_ERR_NULL_POINTER, dafl_count_positives(NULL, N, 0, (uint64_t *)o.loss));
    EXPECT_FAILS(DAFL_ERR_NULL_POINTER, dafl_count_positives(y, N, 0, NULL));
    EXPECT_FAILS(DAFL_ERR_NULL_POINTER, dafl_stats_combine(&o.stats, NULL));
    EXPECT_FAILS(DAFL_ERR_NULL_POINTER,
                 dafl_stats_reduce(NULL, DAFL_REDUCTION_SUM, 1.0f, o.loss));
    /* count 0 with NULL buffers is a valid empty call */
    float loss = -1.0f;
    ck_assert_int_eq(dafl_penalty_focal(NULL, NULL, 0, NULL, &loss, NULL, NULL), DAFL_OK);
    ck_assert(loss == 0.0f);
}
END_TEST

START_TEST(size_overflow)
{
    setup_inputs();
    const size_t huge = SIZE_MAX / 2;
    EXPECT_FAILS(DAFL_ERR_SIZE_OVERFLOW, PF(huge, NULL, x, y));
    EXPECT_FAILS(DAFL_ERR_SIZE_OVERFLOW,
                 dafl_mse(x, y, huge, 4, 4, NULL, o.loss, o.grad, &o.stats));
    EXPECT_FAILS(DAFL_ERR_SIZE_OVERFLOW,
                 dafl_softmax_focal(x, labels, huge, 3, 4, NULL, o.loss, o.grad, &o.stats));
}
END_TEST

START_TEST(invalid_parameters)
{
    setup_inputs();
    dafl_penalty_focal_params p;
    const float bad_exponents[] = {-1.0f, NAN, INFINITY};
    for (int i = 0; i < 3; i++) {
        dafl_penalty_focal_params_init(&p);
        p.alpha = bad_exponents[i];
        EXPECT_FAILS(DAFL_ERR_INVALID_PARAMETER, PF(N, &p, x, y));
        dafl_penalty_focal_params_init(&p);
        p.beta = bad_exponents[i];
        EXPECT_FAILS(DAFL_ERR_INVALID_PARAMETER, PF(N, &p, x, y));
        dafl_penalty_focal_params_init(&p);
        p.pos_weight = bad_exponents[i];
        EXPECT_FAILS(DAFL_ERR_INVALID_PARAMETER, PF(N, &p, x, y));
    }
    const float bad_eps[] = {0.0f, 0.5f, -0.1f, NAN};
    for (int i = 0; i < 4; i++) {
        dafl_penalty_focal_params_init(&p);
        p.input_mode = DAFL_INPUT_CLAMPED_LOGITS;
        p.clamp_eps = bad_eps[i];
        EXPECT_FAILS(DAFL_ERR_INVALID_PARAMETER, PF(N, &p, x, y));
    }
    /* log_eps: in [0, 0.5), and only for probabilities */
    const float bad_log_eps[] = {0.5f, -1e-12f, NAN, INFINITY};
    for (int i = 0; i < 4; i++) {
        dafl_penalty_focal_params_init(&p);
        p.input_mode = DAFL_INPUT_PROBABILITIES;
        p.log_eps = bad_log_eps[i];
        EXPECT_FAILS(DAFL_ERR_INVALID_PARAMETER, PF(N, &p, x, y));
    }
    dafl_penalty_focal_params_init(&p);
    p.log_eps = 1e-12f; /* logits mode */
    EXPECT_FAILS(DAFL_ERR_INVALID_PARAMETER, PF(N, &p, x, y));
    dafl_penalty_focal_params_init(&p);
    p.reduction = DAFL_REDUCTION_NORMALIZER;
    p.normalizer = 0.0f;
    EXPECT_FAILS(DAFL_ERR_INVALID_PARAMETER, PF(N, &p, x, y));
    p.normalizer = NAN;
    EXPECT_FAILS(DAFL_ERR_INVALID_PARAMETER, PF(N, &p, x, y));
    dafl_penalty_focal_params_init(&p);
    p.grad_scale = INFINITY;
    EXPECT_FAILS(DAFL_ERR_INVALID_PARAMETER, PF(N, &p, x, y));

    dafl_sigmoid_focal_params sp;
    dafl_sigmoid_focal_params_init(&sp);
    sp.gamma = -0.5f;
    EXPECT_FAILS(DAFL_ERR_INVALID_PARAMETER,
                 dafl_sigmoid_focal(x, y, N, &sp, o.loss, o.grad, &o.stats));
    dafl_sigmoid_focal_params_init(&sp);
    sp.alpha = NAN;
    EXPECT_FAILS(DAFL_ERR_INVALID_PARAMETER,
                 dafl_sigmoid_focal(x, y, N, &sp, o.loss, o.grad, &o.stats));
    sp.alpha = INFINITY;
    EXPECT_FAILS(DAFL_ERR_INVALID_PARAMETER,
                 dafl_sigmoid_focal(x, y, N, &sp, o.loss, o.grad, &o.stats));

    dafl_bce_params bp;
    dafl_bce_params_init(&bp);
    bp.pos_weight = -2.0f;
    EXPECT_FAILS(DAFL_ERR_INVALID_PARAMETER,
                 dafl_bce_with_logits(x, y, N, &bp, o.loss, o.grad, &o.stats));

    dafl_mse_params mp;
    dafl_mse_params_init(&mp);
    const float weights[3] = {1.0f, -1.0f, 1.0f};
    mp.weights = weights;
    mp.weights_count = 3;
    EXPECT_FAILS(DAFL_ERR_INVALID_PARAMETER,
                 dafl_mse(x, y, 1, 3, 4, &mp, o.loss, o.grad, &o.stats));
    mp.weights_count = 2; /* neither c nor n*c */
    EXPECT_FAILS(DAFL_ERR_INVALID_PARAMETER,
                 dafl_mse(x, y, 1, 3, 4, &mp, o.loss, o.grad, &o.stats));

    dafl_softmax_focal_params smp;
    dafl_softmax_focal_params_init(&smp);
    const float class_weights[3] = {1.0f, NAN, 1.0f};
    smp.class_weights = class_weights;
    EXPECT_FAILS(DAFL_ERR_INVALID_PARAMETER,
                 dafl_softmax_focal(x, labels, 1, 3, N, &smp, o.loss, o.grad, &o.stats));
    dafl_softmax_focal_params_init(&smp);
    smp.gamma = NAN;
    EXPECT_FAILS(DAFL_ERR_INVALID_PARAMETER,
                 dafl_softmax_focal(x, labels, 1, 3, N, &smp, o.loss, o.grad, &o.stats));
    /* statistics that were never initialised */
    dafl_stats garbage;
    memset(&garbage, 0x11, sizeof garbage);
    EXPECT_FAILS(DAFL_ERR_INVALID_PARAMETER,
                 dafl_stats_reduce(&garbage, DAFL_REDUCTION_SUM, 1.0f, o.loss));
}
END_TEST

START_TEST(invalid_targets_anywhere)
{
    setup_inputs();
    const float bad[] = {1.5f, -0.1f, NAN, INFINITY, -0.0f /* valid: -0 == 0 */};
    for (int i = 0; i < 4; i++) {
        for (int at = 0; at < N; at += 9) {
            float yy[N];
            memcpy(yy, y, sizeof yy);
            yy[at] = bad[i];
            dafl_penalty_focal_params p;
            dafl_penalty_focal_params_init(&p);
            p.reduction = DAFL_REDUCTION_NONE; /* per-element loss output too */
            EXPECT_FAILS(DAFL_ERR_INVALID_TARGET, PF(N, &p, x, yy));
            EXPECT_FAILS(DAFL_ERR_INVALID_TARGET,
                         dafl_bce_with_logits(x, yy, N, NULL, o.loss, o.grad, &o.stats));
            EXPECT_FAILS(DAFL_ERR_INVALID_TARGET,
                         dafl_sigmoid_focal(x, yy, N, NULL, o.loss, o.grad, &o.stats));
            EXPECT_FAILS(DAFL_ERR_INVALID_TARGET,
                         dafl_mse(x, yy, 1, 1, N, NULL, o.loss, o.grad, &o.stats));
            EXPECT_FAILS(DAFL_ERR_INVALID_TARGET,
                         dafl_count_positives(yy, N, 0, (uint64_t *)o.loss));
            /* the flag skips the check (the caller vouches for the targets) */
            p.flags = DAFL_FLAG_TRUST_TARGETS;
            float loss[N], grad[N];
            ck_assert_int_eq(dafl_penalty_focal(x, yy, N, &p, loss, grad, NULL), DAFL_OK);
        }
    }
}
END_TEST

START_TEST(invalid_labels)
{
    setup_inputs();
    const int32_t bad[] = {3, -1, INT32_MAX, INT32_MIN, 255};
    for (int i = 0; i < 5; i++) {
        int32_t ll[N];
        memcpy(ll, labels, sizeof ll);
        ll[N - 1] = bad[i];
        EXPECT_FAILS(DAFL_ERR_INVALID_LABEL,
                     dafl_softmax_focal(x, ll, 1, 3, N, NULL, o.loss, o.grad, &o.stats));
    }
    /* 255 is fine once it is the ignore_index */
    dafl_softmax_focal_params p;
    dafl_softmax_focal_params_init(&p);
    p.ignore_index = 255;
    int32_t ll[N];
    memcpy(ll, labels, sizeof ll);
    ll[0] = 255;
    float loss;
    ck_assert_int_eq(dafl_softmax_focal(x, ll, 1, 3, N, &p, &loss, NULL, NULL), DAFL_OK);
}
END_TEST

START_TEST(invalid_enums_and_struct_sizes)
{
    setup_inputs();
    dafl_penalty_focal_params p;
    dafl_penalty_focal_params_init(&p);
    p.reduction = (dafl_reduction)99;
    EXPECT_FAILS(DAFL_ERR_INVALID_ENUM, PF(N, &p, x, y));
    dafl_penalty_focal_params_init(&p);
    p.input_mode = (dafl_input_mode)7;
    EXPECT_FAILS(DAFL_ERR_INVALID_ENUM, PF(N, &p, x, y));
    dafl_penalty_focal_params_init(&p);
    p.flags = 0x80u;
    EXPECT_FAILS(DAFL_ERR_INVALID_ENUM, PF(N, &p, x, y));
    dafl_softmax_focal_params sp;
    dafl_softmax_focal_params_init(&sp);
    sp.layout = (dafl_layout)3;
    EXPECT_FAILS(DAFL_ERR_INVALID_ENUM,
                 dafl_softmax_focal(x, labels, 1, 3, N, &sp, o.loss, o.grad, &o.stats));
    dafl_softmax_focal_params_init(&sp);
    sp.reduction = DAFL_REDUCTION_POSITIVES; /* no positives in a softmax */
    EXPECT_FAILS(DAFL_ERR_INVALID_ENUM,
                 dafl_softmax_focal(x, labels, 1, 3, N, &sp, o.loss, o.grad, &o.stats));
    EXPECT_FAILS(DAFL_ERR_INVALID_ENUM, dafl_count_positives(y, N, 0x40u, (uint64_t *)o.loss));
    dafl_stats st;
    dafl_stats_init(&st);
    EXPECT_FAILS(DAFL_ERR_INVALID_ENUM,
                 dafl_stats_reduce(&st, DAFL_REDUCTION_NONE, 1.0f, o.loss));
    dafl_isa before = dafl_active_isa();
    ck_assert_int_eq(dafl_set_isa((dafl_isa)42), DAFL_ERR_INVALID_ENUM);
    ck_assert_int_eq(dafl_active_isa(), before);

    dafl_penalty_focal_params_init(&p);
    p.struct_size = 0;
    EXPECT_FAILS(DAFL_ERR_STRUCT_SIZE, PF(N, &p, x, y));
    p.struct_size = sizeof p + 64; /* a newer header than this library */
    EXPECT_FAILS(DAFL_ERR_STRUCT_SIZE, PF(N, &p, x, y));
    /* an older, shorter struct is read up to its size; the rest takes defaults */
    dafl_penalty_focal_params_init(&p);
    p.alpha = 2.0f;
    p.struct_size = offsetof(dafl_penalty_focal_params, beta);
    float a, b;
    ck_assert_int_eq(dafl_penalty_focal(x, y, N, &p, &a, NULL, NULL), DAFL_OK);
    ck_assert_int_eq(dafl_penalty_focal(x, y, N, NULL, &b, NULL, NULL), DAFL_OK);
    ck_assert(test_same_bits(a, b));
    /* a struct from before log_eps was appended: log_eps takes its default (0), so a
     * non-zero value past struct_size is not read (it would be refused in logits mode) */
    dafl_penalty_focal_params_init(&p);
    p.log_eps = 0.25f;
    p.struct_size = offsetof(dafl_penalty_focal_params, log_eps);
    ck_assert_int_eq(dafl_penalty_focal(x, y, N, &p, &a, NULL, NULL), DAFL_OK);
    ck_assert(test_same_bits(a, b));
}
END_TEST

START_TEST(isa_unavailable_and_out_of_memory)
{
    setup_inputs();
    dafl_isa before = dafl_active_isa();
    int found = 0;
    for (int i = 0; i < TEST_ISA_COUNT; i++) {
        if (!dafl_isa_available(test_all_isas[i])) {
            ck_assert_int_eq(dafl_set_isa(test_all_isas[i]), DAFL_ERR_ISA_UNAVAILABLE);
            ck_assert_int_eq(dafl_active_isa(), before);
            found = 1;
        }
    }
    ck_assert_msg(found, "every ISA is available: x86 and ARM at once?");
    /* more classes than float lanes tell apart (no logit is read before that is known) */
    EXPECT_FAILS(DAFL_ERR_INVALID_PARAMETER,
                 dafl_softmax_focal(x, labels, 1, DAFL_MAX_CLASSES + 1, 1, NULL, o.loss,
                                    o.grad, &o.stats));
    EXPECT_FAILS(DAFL_ERR_INVALID_PARAMETER,
                 dafl_softmax_focal(x, labels, 1, SIZE_MAX / 4, 1, NULL, o.loss, o.grad,
                                    &o.stats));
}
END_TEST

/* ---- struct sizes: only ones a header can produce ---------------------------------- */

/* Whether a struct_size is one some header can produce for a struct with these members
 * (offsetof, sizeof): at least the size_t, at most the struct, and not inside a member. */
typedef struct span {
    size_t begin, end;
} span;
#define SPAN(type, m) {offsetof(type, m), offsetof(type, m) + sizeof(((type *)0)->m)}

static int producible_size(size_t size, size_t full, const span *members, size_t n)
{
    if (size < sizeof(size_t) || size > full)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (members[i].begin < size && size < members[i].end)
            return 0;
    return 1;
}

/* Every size from 0 to sizeof + 16 bytes, on a struct whose members are all set to
 * non-default values: accepted exactly when producible, DAFL_ERR_STRUCT_SIZE otherwise
 * (nothing written then). */
#define CHECK_SIZES(type, init_fn, members, CALL)                                            \
    for (size_t size = 0; size <= sizeof(type) + 16; size++) {                               \
        type prm;                                                                            \
        init_fn(&prm);                                                                       \
        prm.struct_size = size;                                                              \
        int ok = producible_size(size, sizeof(type), members,                                \
                                 sizeof members / sizeof members[0]);                        \
        outputs o;                                                                           \
        fill_sentinel(&o);                                                                   \
        dafl_status st_ = (CALL);                                                            \
        ck_assert_msg(st_ == (ok ? DAFL_OK : DAFL_ERR_STRUCT_SIZE),                          \
                      "%s struct_size %zu: %s", #type, size, dafl_status_string(st_));       \
        if (!ok)                                                                             \
            ck_assert_msg(untouched(&o), "%s struct_size %zu wrote", #type, size);           \
    }

START_TEST(struct_sizes_end_on_member_boundaries)
{
    setup_inputs();
    for (int i = 0; i < N; i++)
        y[i] = 0.25f; /* valid targets for every loss; probabilities in (0, 1) */
    const span pf[] = {
        SPAN(dafl_penalty_focal_params, struct_size), SPAN(dafl_penalty_focal_params, alpha),
        SPAN(dafl_penalty_focal_params, beta), SPAN(dafl_penalty_focal_params, pos_weight),
        SPAN(dafl_penalty_focal_params, neg_weight), SPAN(dafl_penalty_focal_params, input_mode),
        SPAN(dafl_penalty_focal_params, clamp_eps), SPAN(dafl_penalty_focal_params, reduction),
        SPAN(dafl_penalty_focal_params, normalizer), SPAN(dafl_penalty_focal_params, grad_scale),
        SPAN(dafl_penalty_focal_params, flags), SPAN(dafl_penalty_focal_params, log_eps), SPAN(dafl_penalty_focal_params, input_dtype),
        SPAN(dafl_penalty_focal_params, target_dtype), SPAN(dafl_penalty_focal_params, grad_dtype)};
    CHECK_SIZES(dafl_penalty_focal_params, dafl_penalty_focal_params_init, pf,
                dafl_penalty_focal(x, y, N, &prm, o.loss, o.grad, &o.stats))
    const span sf[] = {
        SPAN(dafl_sigmoid_focal_params, struct_size), SPAN(dafl_sigmoid_focal_params, gamma),
        SPAN(dafl_sigmoid_focal_params, alpha), SPAN(dafl_sigmoid_focal_params, reduction),
        SPAN(dafl_sigmoid_focal_params, normalizer), SPAN(dafl_sigmoid_focal_params, grad_scale),
        SPAN(dafl_sigmoid_focal_params, flags), SPAN(dafl_sigmoid_focal_params, input_dtype),
        SPAN(dafl_sigmoid_focal_params, target_dtype), SPAN(dafl_sigmoid_focal_params, grad_dtype)};
    CHECK_SIZES(dafl_sigmoid_focal_params, dafl_sigmoid_focal_params_init, sf,
                dafl_sigmoid_focal(x, y, N, &prm, o.loss, o.grad, &o.stats))
    const span bce[] = {SPAN(dafl_bce_params, struct_size), SPAN(dafl_bce_params, pos_weight),
                        SPAN(dafl_bce_params, reduction), SPAN(dafl_bce_params, normalizer),
                        SPAN(dafl_bce_params, grad_scale), SPAN(dafl_bce_params, flags), SPAN(dafl_bce_params, input_dtype),
        SPAN(dafl_bce_params, target_dtype), SPAN(dafl_bce_params, grad_dtype),
        SPAN(dafl_bce_params, pos_weights), SPAN(dafl_bce_params, pos_weights_count),
        SPAN(dafl_bce_params, channels), SPAN(dafl_bce_params, channel_stride)};
    CHECK_SIZES(dafl_bce_params, dafl_bce_params_init, bce,
                dafl_bce_with_logits(x, y, N, &prm, o.loss, o.grad, &o.stats))
    const span sm[] = {
        SPAN(dafl_softmax_focal_params, struct_size), SPAN(dafl_softmax_focal_params, gamma),
        SPAN(dafl_softmax_focal_params, layout), SPAN(dafl_softmax_focal_params, ignore_index),
        SPAN(dafl_softmax_focal_params, class_weights), SPAN(dafl_softmax_focal_params, reduction),
        SPAN(dafl_softmax_focal_params, normalizer), SPAN(dafl_softmax_focal_params, grad_scale),
        SPAN(dafl_softmax_focal_params, flags), SPAN(dafl_softmax_focal_params, input_dtype),
        SPAN(dafl_softmax_focal_params, grad_dtype)};
    CHECK_SIZES(dafl_softmax_focal_params, dafl_softmax_focal_params_init, sm,
                dafl_softmax_focal(x, labels, 1, 3, N, &prm, o.loss, o.grad, &o.stats))
    const span mse[] = {SPAN(dafl_mse_params, struct_size), SPAN(dafl_mse_params, weights),
                        SPAN(dafl_mse_params, weights_count), SPAN(dafl_mse_params, reduction),
                        SPAN(dafl_mse_params, normalizer), SPAN(dafl_mse_params, grad_scale),
                        SPAN(dafl_mse_params, flags), SPAN(dafl_mse_params, input_dtype),
        SPAN(dafl_mse_params, target_dtype), SPAN(dafl_mse_params, grad_dtype),
        SPAN(dafl_mse_params, channel_stride)};
    CHECK_SIZES(dafl_mse_params, dafl_mse_params_init, mse,
                dafl_mse(x, y, 1, 1, N, &prm, o.loss, o.grad, &o.stats))
    /* the case of the issue: alpha's first two bytes the caller's, the rest the default's */
    dafl_penalty_focal_params p;
    dafl_penalty_focal_params_init(&p);
    p.struct_size = offsetof(dafl_penalty_focal_params, alpha) + 2;
    EXPECT_FAILS(DAFL_ERR_STRUCT_SIZE, PF(N, &p, x, y));
}
END_TEST

/* ---- overlapping buffers ---------------------------------------------------------- */

/* A call whose buffers overlap where dafl.h does not allow it: DAFL_ERR_OVERLAP, and the
 * whole arena (every buffer of the call lives in it) unchanged. */
#define EXPECT_OVERLAP(EXPR)                                                               \
    do {                                                                                   \
        memcpy(arena, pattern, sizeof arena);                                              \
        dafl_status st_ = (EXPR);                                                          \
        ck_assert_msg(st_ == DAFL_ERR_OVERLAP, "%s: got %s", #EXPR, dafl_status_string(st_)); \
        ck_assert_msg(memcmp(arena, pattern, sizeof arena) == 0, "%s wrote", #EXPR);       \
    } while (0)

START_TEST(overlapping_buffers_are_refused)
{
    enum { M = 4096 }; /* large enough for the threads, and for every ISA's full vectors */
    static float arena[4 * M], pattern[4 * M];
    for (int i = 0; i < 4 * M; i++)
        pattern[i] = (float)(i % 13) * 0.0625f; /* in [0, 0.75]: valid targets too */
    float *a = arena, *b = arena + M, *c = arena + 2 * M;
    float loss;
    dafl_penalty_focal_params pn;
    dafl_penalty_focal_params_init(&pn);
    pn.reduction = DAFL_REDUCTION_NONE;
    dafl_sigmoid_focal_params sn;
    dafl_sigmoid_focal_params_init(&sn); /* NONE by default */

    /* the shifted in-place gradient of the issue, and a tail overlap */
    EXPECT_OVERLAP(dafl_penalty_focal(a, b, M, NULL, &loss, a + 1, NULL));
    EXPECT_OVERLAP(dafl_penalty_focal(a + 1, b, M, NULL, &loss, a, NULL));
    EXPECT_OVERLAP(dafl_sigmoid_focal(a, b, M, &sn, c, a + M - 1, NULL));
    EXPECT_OVERLAP(dafl_bce_with_logits(a, b, M, NULL, &loss, a + 7, NULL));
    EXPECT_OVERLAP(dafl_mse(a, b, 1, 1, M, NULL, &loss, a + 1, NULL));
    /* the gradient over the target, even exactly */
    EXPECT_OVERLAP(dafl_penalty_focal(a, b, M, NULL, &loss, b, NULL));
    EXPECT_OVERLAP(dafl_bce_with_logits(a, b, M, NULL, &loss, b + 5, NULL));
    /* the per-element losses over an input or the gradient */
    EXPECT_OVERLAP(dafl_penalty_focal(a, b, M, &pn, a, c, NULL));
    EXPECT_OVERLAP(dafl_sigmoid_focal(a, b, M, &sn, b + 3, c, NULL));
    EXPECT_OVERLAP(dafl_sigmoid_focal(a, b, M, &sn, c + 1, c, NULL));

    /* softmax: grad shifted over the logits, over the labels; losses over the logits */
    const size_t hw = M / 4, classes = 3;
    int32_t *lab = (int32_t *)(void *)(arena + 3 * M); /* hw labels, in the arena too */
    for (size_t i = 0; i < hw; i++)
        lab[i] = (int32_t)(i % classes);
    memcpy(pattern + 3 * M, lab, hw * sizeof *lab);
    dafl_softmax_focal_params mp;
    dafl_softmax_focal_params_init(&mp);
    mp.reduction = DAFL_REDUCTION_NONE;
    EXPECT_OVERLAP(dafl_softmax_focal(a, lab, 1, classes, hw, NULL, &loss, a + 1, NULL));
    EXPECT_OVERLAP(dafl_softmax_focal(a, lab, 1, classes, hw, NULL, &loss,
                                      (float *)(void *)lab - 1, NULL));
    EXPECT_OVERLAP(dafl_softmax_focal(a, lab, 1, classes, hw, &mp, a + 2, c, NULL));

    /* what is allowed: grad == input exactly, the same bits as separate buffers */
    memcpy(arena, pattern, sizeof arena);
    static float separate[M], in_place[M];
    ck_assert_int_eq(dafl_softmax_focal(a, lab, 1, classes, hw, NULL, &loss, separate, NULL),
                     DAFL_OK);
    memcpy(in_place, a, classes * hw * sizeof *a);
    ck_assert_int_eq(dafl_softmax_focal(in_place, lab, 1, classes, hw, NULL, &loss, in_place,
                                        NULL), DAFL_OK);
    ck_assert(memcmp(separate, in_place, classes * hw * sizeof *a) == 0);
    ck_assert_int_eq(dafl_penalty_focal(a, b, M, NULL, &loss, separate, NULL), DAFL_OK);
    memcpy(in_place, a, M * sizeof *a);
    ck_assert_int_eq(dafl_penalty_focal(in_place, b, M, NULL, &loss, in_place, NULL), DAFL_OK);
    ck_assert(memcmp(separate, in_place, M * sizeof *a) == 0);
}
END_TEST

START_TEST(status_strings)
{
    for (int s = DAFL_OK; s <= DAFL_ERR_OVERLAP; s++) {
        const char *str = dafl_status_string((dafl_status)s);
        ck_assert(str && strncmp(str, "DAFL_", 5) == 0);
        ck_assert(strstr(str, "UNKNOWN") == NULL);
    }
    ck_assert(strstr(dafl_status_string((dafl_status)1000), "UNKNOWN") != NULL);
    ck_assert_str_eq(dafl_version(), DAFL_VERSION_STRING);
    ck_assert_int_eq(dafl_version_number(), DAFL_VERSION_NUMBER);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("errors");
    TCase *tc = tcase_create("errors");
    tcase_add_test(tc, null_pointers);
    tcase_add_test(tc, size_overflow);
    tcase_add_test(tc, invalid_parameters);
    tcase_add_test(tc, invalid_targets_anywhere);
    tcase_add_test(tc, invalid_labels);
    tcase_add_test(tc, invalid_enums_and_struct_sizes);
    tcase_add_test(tc, isa_unavailable_and_out_of_memory);
    tcase_add_test(tc, struct_sizes_end_on_member_boundaries);
    tcase_add_test(tc, overlapping_buffers_are_refused);
    tcase_add_test(tc, status_strings);
    suite_add_tcase(s, tc);
    return test_run_suite(s);
}
