/*
 * Targets from keypoint lists (SPEC 12), against the public functions they promise to
 * equal:
 *   - dafl_render_heatmaps against zeroing the batch and calling dafl_draw_gaussian /
 *     dafl_draw_gaussian_sigma once per keypoint, on random batches with empty images,
 *     keypoints on the borders and outside, overlapping Gaussians and every radius from 0
 *     to 64; in random orders of the keypoints and on several thread counts;
 *   - dafl_penalty_focal_keypoints against dafl_render_heatmaps + dafl_penalty_focal, bit
 *     for bit (loss, gradient, per-element loss, statistics), for every input mode and
 *     reduction, under every ISA this CPU runs and several thread counts, on shapes whose
 *     planes do and do not line up with the blocks;
 *   - validation (each bad keypoint gives its status and writes nothing) and the memory
 *     bound (no temporary of the batch's size).
 */
#define _DEFAULT_SOURCE
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test_common.h"

/* Every ISA this machine runs, unless DAFL_ISA names one (the valgrind run sets
 * DAFL_ISA=scalar): then only that one, the others reported as skipped. */
static int isa_selected(dafl_isa isa, const char *what)
{
    const char *env = getenv("DAFL_ISA");
    if (env && *env && strcmp(env, "auto") != 0 && strcmp(env, dafl_isa_name(isa)) != 0) {
        printf("SKIPPED %-7s %s: not selected by DAFL_ISA\n", dafl_isa_name(isa), what);
        return 0;
    }
    return test_use_isa(isa, what);
}

/* ---- random batches ------------------------------------------------------------------- */

typedef struct batch {
    size_t n, c, h, w;
    size_t count;
    dafl_keypoint *points;
} batch;

static size_t batch_elements(const batch *b) { return b->n * b->c * b->h * b->w; }

/* A coordinate in -margin .. extent-1+margin, a quarter of them on a border. */
static long random_coordinate(uint64_t *seed, size_t extent, long margin)
{
    uint64_t r = test_rand64(seed);
    switch (r % 8) {
    case 0: return 0;
    case 1: return (long)extent - 1;
    default: return (long)(r >> 8) % ((long)extent + 2 * margin) - margin;
    }
}

/* `count` keypoints over n x c planes of h x w, one in eight of the distance form.
 * Images with index >= busy_images get none (empty images).  msra_k1: MSRA and DISTANCE
 * keypoints keep k = 1 (what dafl_draw_gaussian_sigma and dafl_distance_targets draw). */
static batch random_batch(uint64_t seed, size_t n, size_t c, size_t h, size_t w, size_t count,
                          size_t busy_images, int msra_k1)
{
    batch b = {n, c, h, w, count, calloc(count ? count : 1, sizeof(dafl_keypoint))};
    for (size_t i = 0; i < count; i++) {
        dafl_keypoint *kp = &b.points[i];
        dafl_keypoint_init(kp);
        uint64_t r = test_rand64(&seed);
        kp->image = (int64_t)(r % busy_images);
        kp->channel = (int64_t)((r >> 16) % c);
        kp->style = (r >> 32) % 3 == 0 ? DAFL_KEYPOINT_MSRA : DAFL_KEYPOINT_UMICH;
        if ((r >> 56) % 8 == 0)
            kp->style = DAFL_KEYPOINT_DISTANCE;
        kp->k = (r >> 40) % 2 ? 1.0f : test_uniform(&seed, 0.0f, 1.0f);
        if (kp->style == DAFL_KEYPOINT_DISTANCE) {
            /* a labelled pixel of the plane */
            kp->x = (double)(test_rand64(&seed) % w);
            kp->y = (double)(test_rand64(&seed) % h);
            kp->size = test_uniform(&seed, 0.3f, 6.0f);
            if (msra_k1)
                kp->k = 1.0f;
        } else if (kp->style == DAFL_KEYPOINT_UMICH) {
            kp->size = (double)(test_rand64(&seed) % 65); /* radius 0 .. 64 */
            kp->x = (double)random_coordinate(&seed, w, (long)kp->size + 3);
            kp->y = (double)random_coordinate(&seed, h, (long)kp->size + 3);
        } else {
            kp->size = test_uniform(&seed, 0.2f, 12.0f);
            kp->x = test_uniform(&seed, -40.0f, (float)w + 40.0f);
            kp->y = test_uniform(&seed, -40.0f, (float)h + 40.0f);
            if ((r >> 48) % 4 == 0) /* exactly on a border */
                kp->x = (r >> 50) % 2 ? 0.0 : (double)w - 1.0;
            if (msra_k1)
                kp->k = 1.0f;
        }
    }
    return b;
}

/* The distance form of one keypoint, merged by max: dafl_distance_targets of a mask that
 * holds only its pixel. */
static dafl_status draw_distance(float *plane, size_t h, size_t w, const dafl_keypoint *kp)
{
    uint8_t *mask = calloc(h * w, 1);
    float *one = malloc(h * w * sizeof *one);
    mask[(size_t)kp->y * w + (size_t)kp->x] = 1;
    dafl_status st = dafl_distance_targets(mask, h, w, kp->size, one);
    for (size_t i = 0; i < h * w; i++)
        if (one[i] > plane[i])
            plane[i] = one[i];
    free(mask);
    free(one);
    return st;
}

/* The reference: a zeroed batch and one public drawing call per keypoint. */
static void draw_one_by_one(const batch *b, float *out)
{
    memset(out, 0, batch_elements(b) * sizeof *out);
    for (size_t i = 0; i < b->count; i++) {
        const dafl_keypoint *kp = &b->points[i];
        float *plane = out + ((size_t)kp->image * b->c + (size_t)kp->channel) * b->h * b->w;
        dafl_status st = kp->style == DAFL_KEYPOINT_DISTANCE ? draw_distance(plane, b->h, b->w, kp)
                         : kp->style == DAFL_KEYPOINT_UMICH
                             ? dafl_draw_gaussian(plane, b->h, b->w, (long)kp->x, (long)kp->y,
                                                  (long)kp->size, kp->k)
                             : dafl_draw_gaussian_sigma(plane, b->h, b->w, kp->x, kp->y,
                                                        kp->size);
        ck_assert_int_eq(st, DAFL_OK);
    }
}

static void require_same_floats(const float *a, const float *b, size_t n, const char *what)
{
    for (size_t i = 0; i < n; i++)
        TEST_REQUIRE(test_same_bits(a[i], b[i]), "%s: element %zu is %.9g, expected %.9g",
                     what, i, (double)a[i], (double)b[i]);
}

typedef struct shape {
    size_t n, c, h, w, count, busy;
} shape;

/* Shapes: planes that are whole blocks (64 x 96 = 6 blocks), planes smaller than a
 * block and not dividing it (37 x 29: blocks straddle planes), thin ones, a single pixel,
 * crowded planes, and batches whose later images hold no keypoint at all. */
static const shape shapes[] = {
    {2, 3, 64, 96, 40, 2},   {3, 5, 37, 29, 60, 2}, {1, 4, 5, 300, 30, 1},
    {4, 2, 1, 1, 9, 3},      {2, 1, 64, 64, 200, 1}, {3, 7, 31, 33, 0, 1},
    {5, 3, 20, 70, 25, 2},
};
#define N_SHAPES (sizeof shapes / sizeof shapes[0])

/* ---- rendering -------------------------------------------------------------------------- */

START_TEST(render_equals_drawing_one_by_one)
{
    const shape *s = &shapes[_i];
    batch b = random_batch(0x4e4d0000u + (uint64_t)_i, s->n, s->c, s->h, s->w, s->count,
                           s->busy, 1);
    size_t n = batch_elements(&b);
    float *ref = malloc((n + 1) * sizeof *ref), *got = malloc((n + 1) * sizeof *got);
    draw_one_by_one(&b, ref);
    static const int threads[] = {1, 2, 3, 8};
    for (int t = 0; t < 4; t++) {
        ck_assert_int_eq(dafl_set_threads(threads[t]), DAFL_OK);
        for (size_t i = 0; i < n; i++)
            got[i] = NAN; /* every element must be written */
        ck_assert_int_eq(dafl_render_heatmaps(b.points, b.count, b.n, b.c, b.h, b.w, got),
                         DAFL_OK);
        require_same_floats(got, ref, n, "render vs one-by-one drawing");
    }
    dafl_set_threads(0);
    free(ref);
    free(got);
    free(b.points);
}
END_TEST

/* Every radius 0 .. 64 on one plane, centred inside, on the border and outside. */
START_TEST(render_every_radius)
{
    const size_t h = 70, w = 90;
    batch b = {1, 3, h, w, 3 * 65, calloc(3 * 65, sizeof(dafl_keypoint))};
    for (int r = 0; r <= 64; r++)
        for (int where = 0; where < 3; where++) {
            dafl_keypoint *kp = &b.points[3 * r + where];
            dafl_keypoint_init(kp);
            kp->channel = where;
            kp->size = r;
            kp->x = where == 0 ? 45 : where == 1 ? 0 : -(double)(r / 2) - 1;
            kp->y = where == 0 ? 30 : where == 1 ? (double)h - 1 : (double)h + r / 3;
            kp->k = r % 2 ? 1.0f : 0.75f;
        }
    size_t n = batch_elements(&b);
    float *ref = malloc(n * sizeof *ref), *got = malloc(n * sizeof *got);
    /* every radius alone, then all of them merged */
    for (int r = 0; r <= 65; r++) {
        batch one = b;
        if (r <= 64) {
            one.points = b.points + 3 * r;
            one.count = 3;
        }
        draw_one_by_one(&one, ref);
        ck_assert_int_eq(dafl_render_heatmaps(one.points, one.count, 1, 3, h, w, got), DAFL_OK);
        require_same_floats(got, ref, n, "every radius");
    }
    free(ref);
    free(got);
    free(b.points);
}
END_TEST

/* Max-merge does not depend on the order: random permutations give the same bits. */
START_TEST(render_order_independent)
{
    batch b = random_batch(0x0dde7u, 2, 2, 48, 40, 120, 2, 1); /* heavy overlap */
    size_t n = batch_elements(&b);
    float *ref = malloc(n * sizeof *ref), *got = malloc(n * sizeof *got);
    draw_one_by_one(&b, ref);
    uint64_t seed = 77;
    for (int round = 0; round < 20; round++) {
        for (size_t i = b.count - 1; i > 0; i--) { /* Fisher-Yates */
            size_t j = test_rand64(&seed) % (i + 1);
            dafl_keypoint t = b.points[i];
            b.points[i] = b.points[j];
            b.points[j] = t;
        }
        ck_assert_int_eq(dafl_render_heatmaps(b.points, b.count, b.n, b.c, b.h, b.w, got),
                         DAFL_OK);
        require_same_floats(got, ref, n, "shuffled keypoints");
    }
    free(ref);
    free(got);
    free(b.points);
}
END_TEST

/* MSRA with a peak k: k scales g before the rounding; for k = 1/2 that is exactly half
 * of dafl_draw_gaussian_sigma's float (a power of two, values far from subnormal). */
START_TEST(render_msra_peak_scales)
{
    const size_t h = 40, w = 50;
    dafl_keypoint kp;
    dafl_keypoint_init(&kp);
    kp.style = DAFL_KEYPOINT_MSRA;
    kp.x = 20.3;
    kp.y = 17.8;
    kp.size = 2.5;
    kp.k = 0.5f;
    float ref[40 * 50] = {0}, got[40 * 50];
    ck_assert_int_eq(dafl_draw_gaussian_sigma(ref, h, w, kp.x, kp.y, kp.size), DAFL_OK);
    ck_assert_int_eq(dafl_render_heatmaps(&kp, 1, 1, 1, h, w, got), DAFL_OK);
    int nonzero = 0;
    for (size_t i = 0; i < h * w; i++) {
        if (ref[i] < 1e-30f)
            continue;
        TEST_REQUIRE(got[i] == 0.5f * ref[i], "pixel %zu: %.9g vs %.9g", i, (double)got[i],
                     (double)ref[i]);
        nonzero++;
    }
    ck_assert_int_gt(nonzero, 100);
}
END_TEST

/* The distance form with one sigma per plane is the Gaussian of the distance to the
 * nearest label: dafl_distance_targets of the mask of all of them, bit for bit. */
START_TEST(render_distance_is_nearest_label)
{
    const size_t h = 45, w = 61, c = 3;
    uint64_t seed = 515;
    for (int round = 0; round < 6; round++) {
        const size_t labels = 1 + test_rand64(&seed) % 40;
        batch b = {1, c, h, w, labels, calloc(labels, sizeof(dafl_keypoint))};
        uint8_t *mask = calloc(c * h * w, 1);
        double sigma[3];
        for (size_t ch = 0; ch < c; ch++)
            sigma[ch] = test_uniform(&seed, 0.4f, 9.0f);
        for (size_t i = 0; i < labels; i++) {
            dafl_keypoint *kp = &b.points[i];
            dafl_keypoint_init(kp);
            kp->style = DAFL_KEYPOINT_DISTANCE;
            kp->channel = (int64_t)(test_rand64(&seed) % (c - 1)); /* the last plane: none */
            kp->x = (double)(test_rand64(&seed) % w);
            kp->y = (double)(test_rand64(&seed) % h);
            kp->size = sigma[kp->channel];
            mask[(size_t)kp->channel * h * w + (size_t)kp->y * w + (size_t)kp->x] = 1;
        }
        float *ref = malloc(c * h * w * sizeof *ref), *got = malloc(c * h * w * sizeof *got);
        for (size_t ch = 0; ch < c; ch++)
            ck_assert_int_eq(dafl_distance_targets(mask + ch * h * w, h, w, sigma[ch],
                                                   ref + ch * h * w),
                             DAFL_OK);
        ck_assert_int_eq(dafl_render_heatmaps(b.points, labels, 1, c, h, w, got), DAFL_OK);
        require_same_floats(got, ref, c * h * w, "distance form vs dafl_distance_targets");
        free(ref);
        free(got);
        free(mask);
        free(b.points);
    }
}
END_TEST

/* ---- the fused loss --------------------------------------------------------------------- */

#define N_CONFIGS 8
static const char *config_name[N_CONFIGS] = {
    "defaults (logits, positives)", "a=2.5 b=3.5 weights, sum", "probabilities, mean",
    "clamped logits, normalizer", "per-element (none)", "a=2.3 b=3.7 positives, scale",
    "forward only", "probabilities a=1.5, positives"};

static dafl_penalty_focal_params config_params(int config)
{
    dafl_penalty_focal_params p;
    dafl_penalty_focal_params_init(&p);
    switch (config) {
    case 1:
        p.alpha = 2.5f;
        p.beta = 3.5f;
        p.pos_weight = 2.0f;
        p.neg_weight = 0.5f;
        p.reduction = DAFL_REDUCTION_SUM;
        break;
    case 2: p.input_mode = DAFL_INPUT_PROBABILITIES; p.reduction = DAFL_REDUCTION_MEAN; break;
    case 3:
        p.input_mode = DAFL_INPUT_CLAMPED_LOGITS;
        p.reduction = DAFL_REDUCTION_NORMALIZER;
        p.normalizer = 37.0f;
        break;
    case 4: p.reduction = DAFL_REDUCTION_NONE; break;
    case 5: p.alpha = 2.3f; p.beta = 3.7f; p.grad_scale = 0.7f; break;
    case 7: p.input_mode = DAFL_INPUT_PROBABILITIES; p.alpha = 1.5f; break;
    default: break;
    }
    return p;
}

static void make_input(float *x, size_t n, uint64_t seed, int probabilities)
{
    for (size_t i = 0; i < n; i++) {
        uint64_t r = test_rand64(&seed);
        if (probabilities)
            x[i] = test_uniform(&seed, 1e-6f, 1.0f - 1e-6f);
        else if (r % 997 == 0)
            x[i] = (r >> 12) % 3 == 0 ? NAN : (r >> 12) % 3 == 1 ? INFINITY : -INFINITY;
        else
            x[i] = test_uniform(&seed, -9.0f, 9.0f);
    }
}

typedef struct loss_out {
    float loss;
    float *per_element, *grad;
    dafl_stats stats;
} loss_out;

static void require_same_stats(const dafl_stats *a, const dafl_stats *b, const char *what)
{
    double la = dafl_stats_loss_sum(a), lb = dafl_stats_loss_sum(b);
    TEST_REQUIRE(memcmp(&la, &lb, sizeof la) == 0 || (isnan(la) && isnan(lb)),
                 "%s: stats loss sum %.17g vs %.17g", what, la, lb);
    ck_assert_uint_eq(dafl_stats_positives(a), dafl_stats_positives(b));
    ck_assert_uint_eq(dafl_stats_elements(a), dafl_stats_elements(b));
    ck_assert(dafl_stats_weight_sum(a) == dafl_stats_weight_sum(b));
}

/* One configuration on one batch: the dense call on rendered targets, then the fused call,
 * every output compared bit for bit. */
static void check_fused_equals_dense(const batch *b, int config, const char *what)
{
    size_t n = batch_elements(b);
    dafl_penalty_focal_params p = config_params(config);
    int want_grad = config != 6;
    float *x = malloc((n + 1) * sizeof *x), *targets = malloc((n + 1) * sizeof *targets);
    make_input(x, n, 0xfeed + (uint64_t)config, p.input_mode == DAFL_INPUT_PROBABILITIES);
    ck_assert_int_eq(dafl_render_heatmaps(b->points, b->count, b->n, b->c, b->h, b->w, targets),
                     DAFL_OK);
    loss_out dense = {.per_element = malloc((n + 1) * sizeof(float)),
                      .grad = malloc((n + 1) * sizeof(float))};
    loss_out fused = {.per_element = malloc((n + 1) * sizeof(float)),
                      .grad = malloc((n + 1) * sizeof(float))};
    int none = p.reduction == DAFL_REDUCTION_NONE;
    ck_assert_int_eq(dafl_penalty_focal(x, targets, n, &p, none ? dense.per_element : &dense.loss,
                                        want_grad ? dense.grad : NULL, &dense.stats),
                     DAFL_OK);
    ck_assert_int_eq(dafl_penalty_focal_keypoints(x, b->n, b->c, b->h, b->w, b->points,
                                                  b->count, &p,
                                                  none ? fused.per_element : &fused.loss,
                                                  want_grad ? fused.grad : NULL, &fused.stats),
                     DAFL_OK);
    char label[200];
    snprintf(label, sizeof label, "%s, %s, %s", what, config_name[config],
             dafl_isa_name(dafl_active_isa()));
    if (none)
        require_same_floats(fused.per_element, dense.per_element, n, label);
    else
        TEST_REQUIRE(test_same_bits(fused.loss, dense.loss), "%s: loss %.9g vs %.9g", label,
                     (double)fused.loss, (double)dense.loss);
    if (want_grad)
        require_same_floats(fused.grad, dense.grad, n, label);
    require_same_stats(&fused.stats, &dense.stats, label);

    /* the gradient written over the input, as dafl_penalty_focal allows */
    if (want_grad && !none) {
        float loss_in_place;
        ck_assert_int_eq(dafl_penalty_focal_keypoints(x, b->n, b->c, b->h, b->w, b->points,
                                                      b->count, &p, &loss_in_place, x, NULL),
                         DAFL_OK);
        require_same_floats(x, dense.grad, n, "gradient in place");
        TEST_REQUIRE(test_same_bits(loss_in_place, dense.loss), "in place: loss");
    }
    free(x);
    free(targets);
    free(dense.per_element);
    free(dense.grad);
    free(fused.per_element);
    free(fused.grad);
}

START_TEST(fused_equals_render_plus_dense)
{
    const shape *s = &shapes[_i];
    batch b = random_batch(0x10550000u + (uint64_t)_i, s->n, s->c, s->h, s->w, s->count,
                           s->busy, 0);
    static const int threads[] = {1, 3}; /* 3: uneven splits of the blocks */
    for (int isa = 0; isa < TEST_ISA_COUNT; isa++) {
        if (!isa_selected(test_all_isas[isa], "fused keypoint loss"))
            continue;
        for (int t = 0; t < 2; t++) {
            ck_assert_int_eq(dafl_set_threads(threads[t]), DAFL_OK);
            char what[120];
            snprintf(what, sizeof what, "%zux%zux%zux%zu, %zu keypoints, %d threads", s->n,
                     s->c, s->h, s->w, s->count, threads[t]);
            for (int config = 0; config < N_CONFIGS; config++)
                check_fused_equals_dense(&b, config, what);
        }
    }
    dafl_set_isa(DAFL_ISA_AUTO);
    dafl_set_threads(0);
    free(b.points);
}
END_TEST

/* A host parallel-for that runs every item alone, last first: the split and the order
 * of the blocks cannot change a bit. */
static void backwards_one_by_one(void *host_ctx, size_t count, dafl_range_fn fn, void *ctx)
{
    ++*(int *)host_ctx;
    for (size_t i = count; i-- > 0;)
        fn(ctx, i, i + 1);
}

START_TEST(fused_equals_dense_any_split)
{
    /* 3 x 4 x 64 x 47 = 36096 elements: above DAFL_MIN_PARALLEL_ELEMENTS, so split */
    batch b = random_batch(0x5b117u, 3, 4, 64, 47, 50, 3, 0);
    int host_calls = 0;
    ck_assert_int_eq(dafl_set_threads(4), DAFL_OK);
    ck_assert_int_eq(dafl_set_parallel_for(backwards_one_by_one, &host_calls), DAFL_OK);
    for (int config = 0; config < N_CONFIGS; config++)
        check_fused_equals_dense(&b, config, "host parallel-for, one block at a time, backwards");
    /* and the renderer, against one-by-one drawing of the same batch with k = 1 peaks */
    batch r = random_batch(0x5b118u, 3, 4, 64, 47, 50, 3, 1);
    size_t n = batch_elements(&r);
    float *ref = malloc(n * sizeof *ref), *got = malloc(n * sizeof *got);
    draw_one_by_one(&r, ref);
    ck_assert_int_eq(dafl_render_heatmaps(r.points, r.count, r.n, r.c, r.h, r.w, got), DAFL_OK);
    require_same_floats(got, ref, n, "render, host parallel-for backwards");
    dafl_set_parallel_for(NULL, NULL);
    ck_assert_int_gt(host_calls, 2 * N_CONFIGS); /* the split really happened */
    dafl_set_threads(0);
    free(ref);
    free(got);
    free(b.points);
    free(r.points);
}
END_TEST

/* Positives come from the targets that are exactly 1: the centre of a k = 1 Gaussian,
 * counted once where two coincide, and none for k < 1 or a centre outside the plane. */
START_TEST(fused_positive_count)
{
    dafl_keypoint kp[5];
    for (int i = 0; i < 5; i++)
        dafl_keypoint_init(&kp[i]);
    kp[0].x = 3, kp[0].y = 4, kp[0].size = 2;                 /* a positive */
    kp[1].x = 3, kp[1].y = 4, kp[1].size = 5;                 /* the same pixel again */
    kp[2].x = 10, kp[2].y = 1, kp[2].size = 1, kp[2].k = 0.9f; /* peak below 1 */
    kp[3].x = -1, kp[3].y = 2, kp[3].size = 3;                /* centre outside */
    kp[4].style = DAFL_KEYPOINT_MSRA, kp[4].x = 7.2, kp[4].y = 6.9, kp[4].size = 1.5;
    float x[12 * 16] = {0};
    dafl_stats st;
    float loss;
    ck_assert_int_eq(dafl_penalty_focal_keypoints(x, 1, 1, 12, 16, kp, 5, NULL, &loss, NULL, &st),
                     DAFL_OK);
    ck_assert_uint_eq(dafl_stats_positives(&st), 2);
}
END_TEST

/* ---- validation --------------------------------------------------------------------------- */

START_TEST(bad_keypoints_write_nothing)
{
    enum { H = 8, W = 9, N = 2, C = 3 };
    float heat[N * C * H * W], x[N * C * H * W], grad[N * C * H * W], loss = 123.0f;
    for (int i = 0; i < N * C * H * W; i++)
        heat[i] = grad[i] = 42.0f, x[i] = 0.5f;
    struct {
        const char *what;
        dafl_status expect;
    } cases[] = {
        {"image -1", DAFL_ERR_INVALID_LABEL},        {"image n", DAFL_ERR_INVALID_LABEL},
        {"channel -1", DAFL_ERR_INVALID_LABEL},      {"channel c", DAFL_ERR_INVALID_LABEL},
        {"x NaN", DAFL_ERR_INVALID_PARAMETER},       {"y inf", DAFL_ERR_INVALID_PARAMETER},
        {"x 2^31", DAFL_ERR_INVALID_PARAMETER},      {"radius -1", DAFL_ERR_INVALID_PARAMETER},
        {"radius 1.5", DAFL_ERR_INVALID_PARAMETER},  {"umich x 2.5", DAFL_ERR_INVALID_PARAMETER},
        {"sigma 0", DAFL_ERR_INVALID_PARAMETER},     {"sigma -2", DAFL_ERR_INVALID_PARAMETER},
        {"sigma NaN", DAFL_ERR_INVALID_PARAMETER},   {"k 1.5", DAFL_ERR_INVALID_PARAMETER},
        {"k -0.1", DAFL_ERR_INVALID_PARAMETER},      {"k NaN", DAFL_ERR_INVALID_PARAMETER},
        {"style 7", DAFL_ERR_INVALID_ENUM},          {"struct size 4", DAFL_ERR_STRUCT_SIZE},
        {"struct size mixed", DAFL_ERR_STRUCT_SIZE}, {"struct too big", DAFL_ERR_STRUCT_SIZE},
        {"distance x 1.5", DAFL_ERR_INVALID_PARAMETER},
        {"distance sigma 0", DAFL_ERR_INVALID_PARAMETER},
    };
    const int n_cases = (int)(sizeof cases / sizeof cases[0]);
    for (int c = 0; c < n_cases; c++) {
        /* the bad keypoint comes last, after good ones, so a partial write would show */
        dafl_keypoint kp[3];
        for (int i = 0; i < 3; i++) {
            dafl_keypoint_init(&kp[i]);
            kp[i].x = 2 + i, kp[i].y = 3, kp[i].size = 2, kp[i].channel = i;
        }
        dafl_keypoint *bad = &kp[2];
        switch (c) {
        case 0: bad->image = -1; break;
        case 1: bad->image = N; break;
        case 2: bad->channel = -1; break;
        case 3: bad->channel = C; break;
        case 4: bad->x = NAN; break;
        case 5: bad->y = INFINITY; break;
        case 6: bad->x = 2147483648.0; break;
        case 7: bad->size = -1; break;
        case 8: bad->size = 1.5; break;
        case 9: bad->x = 2.5; break;
        case 10: bad->style = DAFL_KEYPOINT_MSRA, bad->size = 0; break;
        case 11: bad->style = DAFL_KEYPOINT_MSRA, bad->size = -2; break;
        case 12: bad->style = DAFL_KEYPOINT_MSRA, bad->size = NAN; break;
        case 13: bad->k = 1.5f; break;
        case 14: bad->k = -0.1f; break;
        case 15: bad->k = NAN; break;
        case 16: bad->style = (dafl_keypoint_style)7; break;
        case 17: kp[0].struct_size = 4; break;
        case 18: bad->struct_size = sizeof(dafl_keypoint) - 8; break;
        case 19: kp[0].struct_size = sizeof(dafl_keypoint) + 8; break;
        case 20: bad->style = DAFL_KEYPOINT_DISTANCE, bad->size = 1.0, bad->x = 1.5; break;
        case 21: bad->style = DAFL_KEYPOINT_DISTANCE, bad->size = 0; break;
        }
        ck_assert_msg(dafl_render_heatmaps(kp, 3, N, C, H, W, heat) == cases[c].expect,
                      "render, %s", cases[c].what);
        ck_assert_msg(dafl_penalty_focal_keypoints(x, N, C, H, W, kp, 3, NULL, &loss, grad,
                                                   NULL) == cases[c].expect,
                      "loss, %s", cases[c].what);
        for (int i = 0; i < N * C * H * W; i++)
            TEST_REQUIRE(heat[i] == 42.0f && grad[i] == 42.0f, "%s: element %d written",
                         cases[c].what, i);
        ck_assert(loss == 123.0f);
    }
    /* NULL buffers with a non-zero size; overflowing shapes; bad loss parameters */
    dafl_keypoint ok;
    dafl_keypoint_init(&ok);
    ck_assert_int_eq(dafl_render_heatmaps(&ok, 1, 1, 1, 4, 4, NULL), DAFL_ERR_NULL_POINTER);
    ck_assert_int_eq(dafl_render_heatmaps(NULL, 1, 1, 1, 4, 4, heat), DAFL_ERR_NULL_POINTER);
    ck_assert_int_eq(dafl_penalty_focal_keypoints(NULL, 1, 1, 4, 4, &ok, 1, NULL, &loss, NULL,
                                                  NULL),
                     DAFL_ERR_NULL_POINTER);
    ck_assert_int_eq(dafl_render_heatmaps(NULL, 0, SIZE_MAX, 2, 4, 4, heat),
                     DAFL_ERR_SIZE_OVERFLOW);
    ck_assert_int_eq(dafl_penalty_focal_keypoints(x, 1u << 20, 1u << 20, 1u << 20, 1u << 20,
                                                  NULL, 0, NULL, &loss, NULL, NULL),
                     DAFL_ERR_SIZE_OVERFLOW);
    dafl_penalty_focal_params p;
    dafl_penalty_focal_params_init(&p);
    p.alpha = -1.0f;
    ck_assert_int_eq(dafl_penalty_focal_keypoints(x, N, C, H, W, &ok, 1, &p, &loss, grad, NULL),
                     DAFL_ERR_INVALID_PARAMETER);
    p.alpha = 2.0f;
    p.reduction = (dafl_reduction)99;
    ck_assert_int_eq(dafl_penalty_focal_keypoints(x, N, C, H, W, &ok, 1, &p, &loss, grad, NULL),
                     DAFL_ERR_INVALID_ENUM);
    for (int i = 0; i < N * C * H * W; i++)
        TEST_REQUIRE(heat[i] == 42.0f && grad[i] == 42.0f, "element %d written", i);
    ck_assert(loss == 123.0f);
    /* an empty batch and no keypoints are fine */
    ck_assert_int_eq(dafl_render_heatmaps(NULL, 0, 0, 0, 0, 0, NULL), DAFL_OK);
    ck_assert_int_eq(dafl_penalty_focal_keypoints(NULL, 0, 3, 4, 4, NULL, 0, NULL, &loss, NULL,
                                                  NULL),
                     DAFL_OK);
    ck_assert(loss == 0.0f);
}
END_TEST

/* ---- the memory bound ---------------------------------------------------------------------- */

/* Peak resident memory of a fused call on a 64 MiB input, in a child process: it must stay
 * below a quarter of one more batch-sized buffer (the dense path needs 64 MiB of
 * targets; the bound leaves room for valgrind's and ASan's own bookkeeping). */
START_TEST(fused_needs_no_batch_sized_temporary)
{
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        /* One thread: the bound measured is the calling thread's.  (It also keeps the
         * child off the pool that the parent may have started, which this test is not
         * about: with CK_FORK=no the earlier tests run in this process.) */
        dafl_set_threads(1);
        const size_t n = 4, c = 16, h = 512, w = 512, count = n * c * h * w;
        float *x = malloc(count * sizeof *x);
        for (size_t i = 0; i < count; i++)
            x[i] = (float)(i % 17) - 8.0f;
        batch b = random_batch(99, n, c, h, w, 500, n, 0);
        struct rusage before, after;
        getrusage(RUSAGE_SELF, &before);
        float loss;
        dafl_status st = dafl_penalty_focal_keypoints(x, n, c, h, w, b.points, b.count, NULL,
                                                      &loss, x, NULL);
        getrusage(RUSAGE_SELF, &after);
        long grown_kib = after.ru_maxrss - before.ru_maxrss;
        printf("fused keypoint loss on a 64 MiB batch: peak RSS grew by %ld KiB\n", grown_kib);
        fflush(stdout);
        _exit(st == DAFL_OK && grown_kib < 16 * 1024 ? 0 : 1);
    }
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "the fused call failed or needed a batch-sized temporary");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("keypoints");
    TCase *tc = tcase_create("keypoints");
    tcase_set_timeout(tc, 600);
    tcase_add_loop_test(tc, render_equals_drawing_one_by_one, 0, (int)N_SHAPES);
    tcase_add_test(tc, render_every_radius);
    tcase_add_test(tc, render_order_independent);
    tcase_add_test(tc, render_msra_peak_scales);
    tcase_add_test(tc, render_distance_is_nearest_label);
    tcase_add_loop_test(tc, fused_equals_render_plus_dense, 0, (int)N_SHAPES);
    tcase_add_test(tc, fused_equals_dense_any_split);
    tcase_add_test(tc, fused_positive_count);
    tcase_add_test(tc, bad_keypoints_write_nothing);
    suite_add_tcase(s, tc);
    TCase *memory = tcase_create("memory");
    tcase_set_timeout(memory, 600);
    tcase_add_test(memory, fused_needs_no_batch_sized_temporary);
    suite_add_tcase(s, memory);
    return test_run_suite(s);
}
