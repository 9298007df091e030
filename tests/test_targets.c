/*
 * test_targets.c — tests of the target builders (SPEC section 3): Gaussian radius,
 * "umich" and "msra" Gaussians, and distance targets against a brute-force transform.
 */
#include "dafl.h"

#include <check.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers -------------------------------------------------------------------- */

/* Sanitizer runtimes abort on an impossible allocation instead of returning NULL. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define TEST_UNDER_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(memory_sanitizer) || \
    __has_feature(thread_sanitizer)
#define TEST_UNDER_SANITIZER 1
#endif
#endif
#ifndef TEST_UNDER_SANITIZER
#define TEST_UNDER_SANITIZER 0
#endif

/* xorshift64*: a small deterministic generator, so failures reproduce. */
typedef struct rng {
    uint64_t state;
} rng;

static uint64_t rng_next(rng *r)
{
    r->state ^= r->state >> 12;
    r->state ^= r->state << 25;
    r->state ^= r->state >> 27;
    return r->state * 0x2545F4914F6CDD1DULL;
}

/* Uniform integer in [lo, hi]. */
static size_t rng_range(rng *r, size_t lo, size_t hi)
{
    return lo + (size_t)(rng_next(r) % (uint64_t)(hi - lo + 1));
}

/* Uniform double in [0, 1). */
static double rng_unit(rng *r)
{
    return (double)(rng_next(r) >> 11) * 0x1.0p-53;
}

static uint32_t float_bits(float value)
{
    uint32_t bits;
    memcpy(&bits, &value, sizeof bits);
    return bits;
}

/* A passing ck_assert is recorded (a write to the runner's pipe in fork mode), so the
 * per-pixel checks use this, which calls into Check only when the check fails. */
#define CHECK_PIXEL(expr, ...)          \
    do {                                \
        if (!(expr)) {                  \
            ck_abort_msg(__VA_ARGS__);  \
        }                               \
    } while (0)

/* A byte pattern no routine would write by accident. */
static void fill_sentinel(void *buffer, size_t bytes)
{
    unsigned char *p = buffer;
    for (size_t i = 0; i < bytes; ++i) {
        p[i] = (unsigned char)(0xA5u ^ (i * 37u));
    }
}

static float *alloc_floats(size_t count, float value)
{
    float *p = malloc(count * sizeof *p);
    ck_assert_ptr_nonnull(p);
    for (size_t i = 0; i < count; ++i) {
        p[i] = value;
    }
    return p;
}

/* The umich kernel value as SPEC section 3 states it: sigma = (2r+1)/6,
 * g = exp(-(dx^2+dy^2) / (2 sigma^2)), cut below DBL_EPSILON, times k, one rounding. */
static float umich_value(long dx, long dy, long r, float k)
{
    const double sigma = (double)(2 * r + 1) / 6.0;
    double g = exp(-((double)dx * (double)dx + (double)dy * (double)dy) /
                   (2.0 * sigma * sigma));
    if (g < DBL_EPSILON) {
        g = 0.0;
    }
    return (float)(g * (double)k);
}

/* ---- gaussian_radius ------------------------------------------------------------ */

START_TEST(test_radius_check_values)
{
    double r = 0.0;
    ck_assert_int_eq(dafl_gaussian_radius(10.0, 10.0, 0.7, DAFL_RADIUS_CORNERNET, &r), DAFL_OK);
    ck_assert_double_eq_tol(r, 2.7332, 1e-4);
    ck_assert_int_eq(dafl_gaussian_radius(10.0, 10.0, 0.7, DAFL_RADIUS_EXACT, &r), DAFL_OK);
    ck_assert_double_eq_tol(r, 0.8167, 1e-4);
    ck_assert_int_eq(dafl_gaussian_radius(20.0, 40.0, 0.3, DAFL_RADIUS_CORNERNET, &r), DAFL_OK);
    ck_assert_double_eq_tol(r, 13.5595, 1e-4);
    ck_assert_int_eq(dafl_gaussian_radius(20.0, 40.0, 0.3, DAFL_RADIUS_EXACT, &r), DAFL_OK);
    ck_assert_double_eq_tol(r, 5.7805, 1e-4);
}
END_TEST

/* The exact radius against the smallest root of the three quadratics evaluated in
 * 80-digit arithmetic (mpmath) from the same double inputs, including overlaps where the
 * textbook formula cancels: tiny (1 - o == 1 in double, subnormal o) and near 1. */
START_TEST(test_radius_exact_high_precision)
{
    static const struct {
        double h, w, o, expected;
    } cases[] = {
        {1.0, 1.0, 0.7, 0.081669986732962239281},
        {10.0, 30.0, 1e-10, 4.9999999992500000001},
        {100.0, 100.0, 1e-10, 49.9995},
        {3.0, 700.0, 0.7, 0.44865231550557193336},
        {3.0, 700.0, 4.9406564584124654e-324, 1.5},
        {20.0, 40.0, 0.999999, 6.6666681483405111e-6},
        {7.0, 7.0, 0.99999999999999989, 1.9428902930940239997e-16},
        {1e-300, 1e-300, 0.5, 1.4644660940672624147e-301},
        {1e300, 3e299, 0.3, 9.4511388567677824019e+298},
        {64.0, 48.0, 1e-160, 24.0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        double r = -1.0;
        ck_assert_int_eq(dafl_gaussian_radius(cases[i].h, cases[i].w, cases[i].o,
                                              DAFL_RADIUS_EXACT, &r), DAFL_OK);
        const double rel = fabs(r - cases[i].expected) / cases[i].expected;
        ck_assert_msg(rel <= 4.0 * DBL_EPSILON, "radius(%g, %g, %g) = %.17g, expected %.17g",
                      cases[i].h, cases[i].w, cases[i].o, r, cases[i].expected);
    }
}
END_TEST

/* The exact radius really gives IoU = min_overlap in the binding case: for 20x40 at 0.3
 * it is case 2 (both corners inwards), IoU = (h-2r)(w-2r) / (hw). */
START_TEST(test_radius_exact_meets_overlap)
{
    double r = 0.0;
    ck_assert_int_eq(dafl_gaussian_radius(20.0, 40.0, 0.3, DAFL_RADIUS_EXACT, &r), DAFL_OK);
    const double iou = (20.0 - 2.0 * r) * (40.0 - 2.0 * r) / (20.0 * 40.0);
    ck_assert_double_eq_tol(iou, 0.3, 1e-12);
}
END_TEST

/* The radius is homogeneous of degree one: scaling the box by 2^e scales it by 2^e
 * exactly, also where the plain formula would overflow or underflow. */
START_TEST(test_radius_scaling)
{
    const dafl_radius_variant variants[] = { DAFL_RADIUS_CORNERNET, DAFL_RADIUS_EXACT };
    const int exponents[] = { -1060, -900, -20, 0, 7, 500, 1000 };
    for (size_t v = 0; v < 2; ++v) {
        double base = 0.0;
        ck_assert_int_eq(dafl_gaussian_radius(20.0, 40.0, 0.3, variants[v], &base), DAFL_OK);
        for (size_t e = 0; e < sizeof exponents / sizeof exponents[0]; ++e) {
            double scaled = 0.0;
            ck_assert_int_eq(dafl_gaussian_radius(ldexp(20.0, exponents[e]),
                                                  ldexp(40.0, exponents[e]), 0.3,
                                                  variants[v], &scaled),
                             DAFL_OK);
            ck_assert(isfinite(scaled));
            if (exponents[e] > -1000) { /* 2^-1060 * 20 is subnormal: inputs already rounded */
                ck_assert(scaled == ldexp(base, exponents[e]));
            }
        }
    }
}
END_TEST

START_TEST(test_radius_errors)
{
    const double sentinel = -12345.0;
    double r = sentinel;
    ck_assert_int_eq(dafl_gaussian_radius(10.0, 10.0, 0.7, DAFL_RADIUS_EXACT, NULL),
                     DAFL_ERR_NULL_POINTER);

    const double bad_sides[] = { 0.0, -1.0, NAN, INFINITY, -INFINITY };
    for (size_t i = 0; i < sizeof bad_sides / sizeof bad_sides[0]; ++i) {
        ck_assert_int_eq(dafl_gaussian_radius(bad_sides[i], 10.0, 0.7, DAFL_RADIUS_EXACT, &r),
                         DAFL_ERR_INVALID_PARAMETER);
        ck_assert_int_eq(dafl_gaussian_radius(10.0, bad_sides[i], 0.7, DAFL_RADIUS_EXACT, &r),
                         DAFL_ERR_INVALID_PARAMETER);
        ck_assert(r == sentinel);
    }
    const double bad_overlaps[] = { 0.0, 1.0, -0.5, 1.5, NAN, INFINITY };
    for (size_t i = 0; i < sizeof bad_overlaps / sizeof bad_overlaps[0]; ++i) {
        ck_assert_int_eq(dafl_gaussian_radius(10.0, 10.0, bad_overlaps[i],
                                              DAFL_RADIUS_CORNERNET, &r),
                         DAFL_ERR_INVALID_PARAMETER);
        ck_assert(r == sentinel);
    }
    ck_assert_int_eq(dafl_gaussian_radius(10.0, 10.0, 0.7, (dafl_radius_variant)2, &r),
                     DAFL_ERR_INVALID_ENUM);
    ck_assert_int_eq(dafl_gaussian_radius(10.0, 10.0, 0.7, (dafl_radius_variant)-1, &r),
                     DAFL_ERR_INVALID_ENUM);
    ck_assert(r == sentinel);
}
END_TEST

/* ---- draw_gaussian ("umich") ---------------------------------------------------- */

START_TEST(test_umich_centre_row)
{
    const size_t h = 9, w = 9;
    float *map = alloc_floats(h * w, 0.0f);
    ck_assert_int_eq(dafl_draw_gaussian(map, h, w, 4, 4, 2, 1.0f), DAFL_OK);
    const double expected[5] = { 0.056135, 0.486752, 1.0, 0.486752, 0.056135 };
    for (size_t i = 0; i < 5; ++i) {
        ck_assert_double_eq_tol(map[4 * w + 2 + i], expected[i], 1e-6);
    }
    ck_assert(map[4 * w + 4] == 1.0f);
    /* Nothing beyond the radius. */
    for (size_t y = 0; y < h; ++y) {
        for (size_t x = 0; x < w; ++x) {
            if (x < 2 || x > 6 || y < 2 || y > 6) {
                ck_assert(map[y * w + x] == 0.0f);
            } else {
                ck_assert(map[y * w + x] > 0.0f);
            }
        }
    }
    free(map);
}
END_TEST

START_TEST(test_umich_radius_zero)
{
    float map[9] = { 0 };
    ck_assert_int_eq(dafl_draw_gaussian(map, 3, 3, 1, 1, 0, 1.0f), DAFL_OK);
    for (size_t i = 0; i < 9; ++i) {
        ck_assert(map[i] == (i == 4 ? 1.0f : 0.0f));
    }
}
END_TEST

/* Symmetric under x -> -x, y -> -y and x <-> y, and equal to the stated formula. */
START_TEST(test_umich_symmetry)
{
    const long r = 7;
    const size_t side = 2 * (size_t)r + 1;
    float *map = alloc_floats(side * side, 0.0f);
    ck_assert_int_eq(dafl_draw_gaussian(map, side, side, r, r, r, 1.0f), DAFL_OK);
    for (size_t y = 0; y < side; ++y) {
        for (size_t x = 0; x < side; ++x) {
            const float v = map[y * side + x];
            CHECK_PIXEL(v == map[x * side + y], "transpose at (%zu, %zu)", y, x);
            CHECK_PIXEL(v == map[y * side + (side - 1 - x)], "x mirror at (%zu, %zu)", y, x);
            CHECK_PIXEL(v == map[(side - 1 - y) * side + x], "y mirror at (%zu, %zu)", y, x);
            CHECK_PIXEL(float_bits(v) ==
                            float_bits(umich_value((long)x - r, (long)y - r, r, 1.0f)),
                        "value at (%zu, %zu)", y, x);
        }
    }
    ck_assert(map[r * (long)side + r] == 1.0f);
    free(map);
}
END_TEST

/* Checks that `map` holds umich_value around (cx, cy) inside the radius and `background`
 * elsewhere. */
static void check_umich_map(const float *map, size_t h, size_t w, long cx, long cy, long r,
                            float background)
{
    for (size_t y = 0; y < h; ++y) {
        for (size_t x = 0; x < w; ++x) {
            const long dx = (long)x - cx;
            const long dy = (long)y - cy;
            const float v = map[y * w + x];
            if (labs(dx) <= r && labs(dy) <= r) {
                const float g = umich_value(dx, dy, r, 1.0f);
                CHECK_PIXEL(v == (g > background ? g : background),
                            "centre (%ld, %ld) r %ld: drawn pixel (%zu, %zu)", cx, cy, r, y, x);
            } else {
                CHECK_PIXEL(v == background,
                            "centre (%ld, %ld) r %ld: pixel (%zu, %zu) touched", cx, cy, r, y, x);
            }
        }
    }
}

START_TEST(test_umich_clipping_at_corners)
{
    const size_t h = 10, w = 12;
    float *map = alloc_floats(h * w, 0.0f);
    ck_assert_int_eq(dafl_draw_gaussian(map, h, w, 0, 0, 3, 1.0f), DAFL_OK);
    check_umich_map(map, h, w, 0, 0, 3, 0.0f);
    ck_assert(map[0] == 1.0f);

    float *map2 = alloc_floats(h * w, 0.0f);
    ck_assert_int_eq(dafl_draw_gaussian(map2, h, w, (long)w - 1, (long)h - 1, 4, 1.0f),
                     DAFL_OK);
    check_umich_map(map2, h, w, (long)w - 1, (long)h - 1, 4, 0.0f);
    ck_assert(map2[h * w - 1] == 1.0f);
    free(map);
    free(map2);
}
END_TEST

START_TEST(test_umich_centre_outside)
{
    const size_t h = 8, w = 8;
    /* Partly overlapping from each side. */
    const long centres[][2] = { { -2, 4 }, { 4, -3 }, { 10, 5 }, { 3, 9 }, { -1, -1 },
                                { 9, 10 } };
    for (size_t c = 0; c < sizeof centres / sizeof centres[0]; ++c) {
        float *map = alloc_floats(h * w, 0.0f);
        ck_assert_int_eq(dafl_draw_gaussian(map, h, w, centres[c][0], centres[c][1], 3, 1.0f),
                         DAFL_OK);
        check_umich_map(map, h, w, centres[c][0], centres[c][1], 3, 0.0f);
        float max = 0.0f;
        for (size_t i = 0; i < h * w; ++i) {
            max = map[i] > max ? map[i] : max;
        }
        ck_assert(max > 0.0f && max < 1.0f);
        free(map);
    }

    /* Entirely outside, including centres at the accepted limit: nothing written. */
    const long far = 1L << 30;
    const long outside[][3] = { { -4, 4, 3 }, { 4, -4, 3 }, { 11, 4, 3 }, { 4, 11, 3 },
                                { far, 0, 0 }, { -far, -far, far - 9 }, { 0, far, far - 8 } };
    float reference[64];
    float map[64];
    fill_sentinel(reference, sizeof reference);
    for (size_t i = 0; i < 64; ++i) {
        reference[i] = fabsf(reference[i]) < 1.0f ? reference[i] : 0.5f; /* finite, < 1 */
    }
    for (size_t c = 0; c < sizeof outside / sizeof outside[0]; ++c) {
        memcpy(map, reference, sizeof map);
        ck_assert_int_eq(dafl_draw_gaussian(map, h, w, outside[c][0], outside[c][1],
                                            outside[c][2], 1.0f),
                         DAFL_OK);
        ck_assert(memcmp(map, reference, sizeof map) == 0);
    }

    /* A huge radius from far away reaches exactly column 0 with the right value. */
    float *map_far = alloc_floats(h * w, 0.0f);
    ck_assert_int_eq(dafl_draw_gaussian(map_far, h, w, -far, 2, far, 1.0f), DAFL_OK);
    for (size_t y = 0; y < h; ++y) {
        for (size_t x = 0; x < w; ++x) {
            const float expected = x == 0 ? umich_value(far, (long)y - 2, far, 1.0f) : 0.0f;
            CHECK_PIXEL(float_bits(map_far[y * w + x]) == float_bits(expected),
                        "pixel (%zu, %zu)", y, x);
        }
    }
    ck_assert(map_far[2 * w] > 0.01f);
    free(map_far);
}
END_TEST

START_TEST(test_umich_max_merge)
{
    const size_t h = 16, w = 16;
    float *a = alloc_floats(h * w, 0.0f);
    float *b = alloc_floats(h * w, 0.0f);
    float *ab = alloc_floats(h * w, 0.0f);
    float *ba = alloc_floats(h * w, 0.0f);
    ck_assert_int_eq(dafl_draw_gaussian(a, h, w, 5, 5, 3, 1.0f), DAFL_OK);
    ck_assert_int_eq(dafl_draw_gaussian(b, h, w, 8, 6, 2, 0.8f), DAFL_OK);
    ck_assert_int_eq(dafl_draw_gaussian(ab, h, w, 5, 5, 3, 1.0f), DAFL_OK);
    ck_assert_int_eq(dafl_draw_gaussian(ab, h, w, 8, 6, 2, 0.8f), DAFL_OK);
    ck_assert_int_eq(dafl_draw_gaussian(ba, h, w, 8, 6, 2, 0.8f), DAFL_OK);
    ck_assert_int_eq(dafl_draw_gaussian(ba, h, w, 5, 5, 3, 1.0f), DAFL_OK);
    size_t both = 0;
    for (size_t i = 0; i < h * w; ++i) {
        const float expected = a[i] > b[i] ? a[i] : b[i];
        CHECK_PIXEL(ab[i] == expected && ba[i] == expected, "pixel %zu", i);
        both += a[i] > 0.0f && b[i] > 0.0f && a[i] != b[i];
    }
    ck_assert_uint_gt(both, 5); /* the windows really overlap */

    /* Existing larger values survive, smaller ones (even negative) are raised. */
    float *pre = alloc_floats(h * w, -1.0f);
    pre[5 * w + 6] = 0.99f;
    ck_assert_int_eq(dafl_draw_gaussian(pre, h, w, 5, 5, 3, 1.0f), DAFL_OK);
    ck_assert(pre[5 * w + 6] == 0.99f);
    ck_assert(pre[5 * w + 5] == 1.0f);
    ck_assert(pre[5 * w + 8] == a[5 * w + 8]);
    ck_assert(pre[5 * w + 9] == -1.0f);
    free(a);
    free(b);
    free(ab);
    free(ba);
    free(pre);
}
END_TEST

START_TEST(test_umich_k_scaling)
{
    const size_t h = 11, w = 11;
    const float ks[] = { 0.0f, 0.25f, 0.3f, 0.7f, 1.0f, 3.5f };
    for (size_t i = 0; i < sizeof ks / sizeof ks[0]; ++i) {
        float *map = alloc_floats(h * w, 0.0f);
        ck_assert_int_eq(dafl_draw_gaussian(map, h, w, 5, 5, 4, ks[i]), DAFL_OK);
        for (size_t y = 0; y < h; ++y) {
            for (size_t x = 0; x < w; ++x) {
                const long dx = (long)x - 5, dy = (long)y - 5;
                const float expected = labs(dx) <= 4 && labs(dy) <= 4
                                           ? umich_value(dx, dy, 4, ks[i])
                                           : 0.0f;
                CHECK_PIXEL(float_bits(map[y * w + x]) == float_bits(expected),
                            "k %g pixel (%zu, %zu)", (double)ks[i], y, x);
            }
        }
        ck_assert(map[5 * w + 5] == ks[i]);
        free(map);
    }
}
END_TEST

START_TEST(test_umich_errors)
{
    float map[20];
    float reference[20];
    fill_sentinel(reference, sizeof reference);
    memcpy(map, reference, sizeof map);

    ck_assert_int_eq(dafl_draw_gaussian(NULL, 4, 5, 1, 1, 1, 1.0f), DAFL_ERR_NULL_POINTER);
    ck_assert_int_eq(dafl_draw_gaussian(map, SIZE_MAX, 2, 1, 1, 1, 1.0f),
                     DAFL_ERR_SIZE_OVERFLOW);
    ck_assert_int_eq(dafl_draw_gaussian(map, 3, SIZE_MAX / 2, 1, 1, 1, 1.0f),
                     DAFL_ERR_SIZE_OVERFLOW);

    const long limit = 1L << 30;
    const long bad[][3] = { { 1, 1, -1 },        { 1, 1, LONG_MIN },  { 1, 1, LONG_MAX },
                            { 1, 1, limit + 1 }, { limit + 1, 1, 1 }, { 1, -limit - 1, 1 },
                            { LONG_MAX, 1, 1 },  { 1, LONG_MIN, 1 } };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; ++i) {
        ck_assert_int_eq(dafl_draw_gaussian(map, 4, 5, bad[i][0], bad[i][1], bad[i][2], 1.0f),
                         DAFL_ERR_INVALID_PARAMETER);
    }
    const float bad_k[] = { -1.0f, -0.0001f, NAN, -NAN, INFINITY, -INFINITY };
    for (size_t i = 0; i < sizeof bad_k / sizeof bad_k[0]; ++i) {
        ck_assert_int_eq(dafl_draw_gaussian(map, 4, 5, 1, 1, 1, bad_k[i]),
                         DAFL_ERR_INVALID_PARAMETER);
    }
    ck_assert(memcmp(map, reference, sizeof map) == 0);
}
END_TEST

/* ---- draw_gaussian_sigma ("msra") ----------------------------------------------- */

/* CenterNet's draw_msra_gaussian transcribed step by step: the whole kernel of
 * ceil(2t + 1) entries is built first, then the window is cut out of it with the same
 * slice bounds (Python slices clamp to the array), and merged by max. */
static void msra_reference(float *map, size_t h, size_t w, double cx, double cy, double sigma)
{
    const double tmp_size = sigma * 3.0;
    const long long mu_x = (long long)(cx + 0.5);
    const long long mu_y = (long long)(cy + 0.5);
    const long long ul[2] = { (long long)((double)mu_x - tmp_size),
                              (long long)((double)mu_y - tmp_size) };
    const long long br[2] = { (long long)((double)mu_x + tmp_size + 1.0),
                              (long long)((double)mu_y + tmp_size + 1.0) };
    const long long width = (long long)w, height = (long long)h;
    if (ul[0] >= width || ul[1] >= height || br[0] < 0 || br[1] < 0) {
        return;
    }
    const double size = 2.0 * tmp_size + 1.0;
    const long long n = (long long)ceil(size); /* len(np.arange(0, size, 1)) */
    const double x0 = floor(size / 2.0);       /* size // 2 */
    const double y0 = x0;
    double *kernel = malloc((size_t)(n * n) * sizeof *kernel);
    ck_assert_ptr_nonnull(kernel);
    for (long long i = 0; i < n; ++i) {
        for (long long j = 0; j < n; ++j) {
            const double x = (double)j, y = (double)i;
            const double q = (x - x0) * (x - x0) + (y - y0) * (y - y0);
            kernel[i * n + j] = q == 0.0 ? 1.0 : exp(-q / (2.0 * (sigma * sigma)));
        }
    }
    const long long g_x[2] = { ul[0] < 0 ? -ul[0] : 0, (br[0] < width ? br[0] : width) - ul[0] };
    const long long g_y[2] = { ul[1] < 0 ? -ul[1] : 0,
                               (br[1] < height ? br[1] : height) - ul[1] };
    const long long img_x[2] = { ul[0] > 0 ? ul[0] : 0, br[0] < width ? br[0] : width };
    const long long img_y[2] = { ul[1] > 0 ? ul[1] : 0, br[1] < height ? br[1] : height };
    /* Both slices have the same extent (numpy would raise otherwise). */
    ck_assert_int_le(g_x[1], n);
    ck_assert_int_le(g_y[1], n);
    ck_assert_int_eq(g_x[1] - g_x[0], img_x[1] - img_x[0]);
    ck_assert_int_eq(g_y[1] - g_y[0], img_y[1] - img_y[0]);
    for (long long i = 0; i < img_y[1] - img_y[0]; ++i) {
        for (long long j = 0; j < img_x[1] - img_x[0]; ++j) {
            float *cell = &map[(size_t)(img_y[0] + i) * w + (size_t)(img_x[0] + j)];
            const float g = (float)kernel[(g_y[0] + i) * n + (g_x[0] + j)];
            *cell = g > *cell ? g : *cell;
        }
    }
    free(kernel);
}

START_TEST(test_msra_simple_values)
{
    const size_t side = 11;
    float *map = alloc_floats(side * side, 0.0f);
    ck_assert_int_eq(dafl_draw_gaussian_sigma(map, side, side, 5.0, 5.2, 1.0), DAFL_OK);
    ck_assert(map[5 * side + 5] == 1.0f);
    ck_assert(map[5 * side + 6] == (float)exp(-0.5));
    ck_assert(map[6 * side + 6] == (float)exp(-1.0));
    ck_assert(map[5 * side + 8] == (float)exp(-4.5));
    ck_assert(map[8 * side + 2] == (float)exp(-9.0));
    ck_assert(map[5 * side + 9] == 0.0f); /* 3 sigma: the window ends at offset 3 */
    ck_assert(map[1 * side + 5] == 0.0f);
    /* Rounding of the centre: (int)(c + 0.5). */
    float *map2 = alloc_floats(side * side, 0.0f);
    ck_assert_int_eq(dafl_draw_gaussian_sigma(map2, side, side, 4.5, 5.49, 1.0), DAFL_OK);
    ck_assert(memcmp(map, map2, side * side * sizeof *map) == 0);
    free(map);
    free(map2);
}
END_TEST

/* 3 sigma = 4.2: CenterNet's window spans mu-5 .. mu+4 with the kernel centred at index
 * floor(9.4 / 2) = 4, so the peak lands one pixel before the rounded centre. */
START_TEST(test_msra_fractional_window)
{
    const size_t side = 21;
    float *map = alloc_floats(side * side, 0.0f);
    ck_assert_int_eq(dafl_draw_gaussian_sigma(map, side, side, 10.2, 10.0, 1.4), DAFL_OK);
    ck_assert(map[9 * side + 9] == 1.0f);
    ck_assert(map[10 * side + 10] < 1.0f);
    ck_assert(map[9 * side + 5] > 0.0f);  /* ul = 5 */
    ck_assert(map[9 * side + 4] == 0.0f);
    ck_assert(map[9 * side + 14] > 0.0f); /* br = 15 */
    ck_assert(map[9 * side + 15] == 0.0f);
    free(map);
}
END_TEST

START_TEST(test_msra_against_reference)
{
    const double sigmas[] = { 0.05, 0.3, 1.0 / 3.0, 0.5, 0.7, 1.0, 4.0 / 3.0, 1.4, 1.5,
                              2.0, 2.5, 3.7, 6.0 };
    const double offsets[] = { -9.0, -3.2, -1.5, -0.51, -0.5, -0.2, 0.0, 0.49, 0.5,
                               2.3, 6.5, 7.0, 11.9, 12.5, 13.0, 16.0, 25.0 };
    const size_t h = 13, w = 17;
    rng r = { 0x9E3779B97F4A7C15ULL };
    float *base = alloc_floats(h * w, 0.0f);
    float *got = alloc_floats(h * w, 0.0f);
    float *expected = alloc_floats(h * w, 0.0f);
    size_t drawn = 0;
    for (size_t s = 0; s < sizeof sigmas / sizeof sigmas[0]; ++s) {
        for (size_t i = 0; i < sizeof offsets / sizeof offsets[0]; ++i) {
            for (size_t j = 0; j < sizeof offsets / sizeof offsets[0]; ++j) {
                for (size_t p = 0; p < h * w; ++p) {
                    base[p] = (float)(0.5 * rng_unit(&r));
                }
                memcpy(got, base, h * w * sizeof *got);
                memcpy(expected, base, h * w * sizeof *expected);
                const double cx = offsets[i], cy = offsets[j] * 0.75;
                ck_assert_int_eq(dafl_draw_gaussian_sigma(got, h, w, cx, cy, sigmas[s]),
                                 DAFL_OK);
                msra_reference(expected, h, w, cx, cy, sigmas[s]);
                for (size_t p = 0; p < h * w; ++p) {
                    CHECK_PIXEL(float_bits(got[p]) == float_bits(expected[p]),
                                "sigma %g centre (%g, %g) pixel %zu: %.9g != %.9g",
                                sigmas[s], cx, cy, p, (double)got[p], (double)expected[p]);
                }
                drawn += memcmp(got, base, h * w * sizeof *got) != 0;
            }
        }
    }
    ck_assert_uint_gt(drawn, 1000); /* most cases really draw something */
    free(base);
    free(got);
    free(expected);
}
END_TEST

START_TEST(test_msra_errors)
{
    float map[20];
    float reference[20];
    fill_sentinel(reference, sizeof reference);
    memcpy(map, reference, sizeof map);

    ck_assert_int_eq(dafl_draw_gaussian_sigma(NULL, 4, 5, 1.0, 1.0, 1.0),
                     DAFL_ERR_NULL_POINTER);
    ck_assert_int_eq(dafl_draw_gaussian_sigma(map, SIZE_MAX / 3, 4, 1.0, 1.0, 1.0),
                     DAFL_ERR_SIZE_OVERFLOW);
    const double limit = 1073741824.0;
    const double bad_sigma[] = { 0.0, -0.0, -1.0, NAN, INFINITY, limit * 2.0 };
    for (size_t i = 0; i < sizeof bad_sigma / sizeof bad_sigma[0]; ++i) {
        ck_assert_int_eq(dafl_draw_gaussian_sigma(map, 4, 5, 1.0, 1.0, bad_sigma[i]),
                         DAFL_ERR_INVALID_PARAMETER);
    }
    const double bad_centre[] = { NAN, INFINITY, -INFINITY, 1e300, -limit * 1.5 };
    for (size_t i = 0; i < sizeof bad_centre / sizeof bad_centre[0]; ++i) {
        ck_assert_int_eq(dafl_draw_gaussian_sigma(map, 4, 5, bad_centre[i], 1.0, 1.0),
                         DAFL_ERR_INVALID_PARAMETER);
        ck_assert_int_eq(dafl_draw_gaussian_sigma(map, 4, 5, 1.0, bad_centre[i], 1.0),
                         DAFL_ERR_INVALID_PARAMETER);
    }
    ck_assert(memcmp(map, reference, sizeof map) == 0);

    /* At the limits the call is valid; far away it draws nothing ... */
    ck_assert_int_eq(dafl_draw_gaussian_sigma(map, 4, 5, limit, -limit, 1.0), DAFL_OK);
    ck_assert_int_eq(dafl_draw_gaussian_sigma(map, 4, 5, -limit, limit, 1.0), DAFL_OK);
    ck_assert(memcmp(map, reference, sizeof map) == 0);
    /* ... and the widest Gaussian, 2^30 away in x and y, gives about exp(-1). */
    float flat[20] = { 0 };
    ck_assert_int_eq(dafl_draw_gaussian_sigma(flat, 4, 5, limit, -limit, limit), DAFL_OK);
    for (size_t i = 0; i < 20; ++i) {
        ck_assert(fabs((double)flat[i] - exp(-1.0)) < 1e-6);
    }
}
END_TEST

/* ---- distance_targets ----------------------------------------------------------- */

/* Brute-force squared distance from every pixel to the nearest foreground pixel;
 * INT64_MAX for an all-background mask. */
static void brute_force_d2(const uint8_t *mask, size_t h, size_t w, int64_t *d2)
{
    size_t count = 0;
    size_t *fg = malloc(h * w * sizeof *fg);
    ck_assert_ptr_nonnull(fg);
    for (size_t i = 0; i < h * w; ++i) {
        if (mask[i] != 0) {
            fg[count++] = i;
        }
    }
    for (size_t y = 0; y < h; ++y) {
        for (size_t x = 0; x < w; ++x) {
            int64_t best = INT64_MAX;
            for (size_t f = 0; f < count; ++f) {
                const int64_t dy = (int64_t)(fg[f] / w) - (int64_t)y;
                const int64_t dx = (int64_t)(fg[f] % w) - (int64_t)x;
                const int64_t d = dy * dy + dx * dx;
                best = d < best ? d : best;
            }
            d2[y * w + x] = best;
        }
    }
    free(fg);
}

/* The documented value: 1 on the foreground, 0 with no foreground at all, else
 * (float)exp(-d2 / (2 sigma^2)) evaluated in double. */
static float expected_target(int64_t d2, double sigma)
{
    if (d2 == 0) {
        return 1.0f;
    }
    if (d2 == INT64_MAX) {
        return 0.0f;
    }
    return (float)exp(-(double)d2 / (2.0 * sigma * sigma));
}

/* Runs dafl_distance_targets on the mask and compares every value bit for bit with the
 * brute force. */
static void check_distance_targets(const uint8_t *mask, size_t h, size_t w, double sigma)
{
    int64_t *d2 = malloc(h * w * sizeof *d2);
    float *out = malloc(h * w * sizeof *out);
    ck_assert_ptr_nonnull(d2);
    ck_assert_ptr_nonnull(out);
    fill_sentinel(out, h * w * sizeof *out);
    brute_force_d2(mask, h, w, d2);
    ck_assert_int_eq(dafl_distance_targets(mask, h, w, sigma, out), DAFL_OK);
    for (size_t i = 0; i < h * w; ++i) {
        const float expected = expected_target(d2[i], sigma);
        CHECK_PIXEL(float_bits(out[i]) == float_bits(expected),
                    "%zux%zu sigma %g pixel (%zu, %zu): d2 %lld, %.9g != %.9g", h, w, sigma,
                    i / w, i % w, (long long)d2[i], (double)out[i], (double)expected);
    }
    free(d2);
    free(out);
}

START_TEST(test_distance_special_masks)
{
    uint8_t mask[64 * 64];

    memset(mask, 0, sizeof mask);
    float out[64 * 64];
    fill_sentinel(out, sizeof out);
    ck_assert_int_eq(dafl_distance_targets(mask, 64, 64, 3.0, out), DAFL_OK);
    for (size_t i = 0; i < 64 * 64; ++i) {
        CHECK_PIXEL(float_bits(out[i]) == float_bits(0.0f), "background pixel %zu", i);
    }

    memset(mask, 1, sizeof mask);
    ck_assert_int_eq(dafl_distance_targets(mask, 64, 64, 3.0, out), DAFL_OK);
    for (size_t i = 0; i < 64 * 64; ++i) {
        CHECK_PIXEL(out[i] == 1.0f, "foreground pixel %zu", i);
    }

    /* A single pixel: out = exp(-(dx^2 + dy^2) / (2 sigma^2)) around it. */
    memset(mask, 0, sizeof mask);
    mask[17 * 64 + 40] = 1;
    check_distance_targets(mask, 64, 64, 5.0);
    ck_assert_int_eq(dafl_distance_targets(mask, 64, 64, 5.0, out), DAFL_OK);
    ck_assert(out[17 * 64 + 40] == 1.0f);
    ck_assert(out[20 * 64 + 44] == (float)exp(-25.0 / 50.0));

    /* Any non-zero byte is foreground. */
    memset(mask, 0, sizeof mask);
    mask[5] = 255;
    mask[700] = 7;
    mask[4095] = 128;
    check_distance_targets(mask, 64, 64, 2.5);

    /* 1 x 1 masks, a single row and a single column. */
    mask[0] = 0;
    check_distance_targets(mask, 1, 1, 1.0);
    mask[0] = 1;
    check_distance_targets(mask, 1, 1, 1.0);
    rng r = { 42 };
    for (size_t i = 0; i < 300; ++i) {
        mask[i] = rng_range(&r, 0, 19) == 0;
    }
    check_distance_targets(mask, 1, 300, 4.0);
    check_distance_targets(mask, 300, 1, 4.0);
    memset(mask, 0, 300);
    mask[299] = 1;
    check_distance_targets(mask, 1, 300, 40.0);
    check_distance_targets(mask, 300, 1, 40.0);
}
END_TEST

/* Extreme sigmas: the foreground stays exactly 1 and nothing becomes NaN. */
START_TEST(test_distance_extreme_sigma)
{
    uint8_t mask[6] = { 0, 1, 0, 0, 0, 0 };
    float out[6];
    ck_assert_int_eq(dafl_distance_targets(mask, 2, 3, 1e-200, out), DAFL_OK);
    for (size_t i = 0; i < 6; ++i) {
        ck_assert(out[i] == (i == 1 ? 1.0f : 0.0f));
    }
    ck_assert_int_eq(dafl_distance_targets(mask, 2, 3, 1e200, out), DAFL_OK);
    for (size_t i = 0; i < 6; ++i) {
        ck_assert(out[i] == 1.0f);
    }
    ck_assert_int_eq(dafl_distance_targets(mask, 2, 3, DBL_MAX, out), DAFL_OK);
    ck_assert_int_eq(dafl_distance_targets(mask, 2, 3, DBL_TRUE_MIN, out), DAFL_OK);
    ck_assert(out[1] == 1.0f && out[0] == 0.0f);
}
END_TEST

START_TEST(test_distance_random_vs_brute_force)
{
    rng r = { 0xD1B54A32D192ED03ULL };
    uint8_t *mask = malloc(256 * 256);
    ck_assert_ptr_nonnull(mask);
    /* The brute force costs pixels x foreground pixels; keep each case under ~1e7. */
    const double budget = 1e7;
    for (size_t trial = 0; trial < 120; ++trial) {
        const size_t kind = trial % 4;
        size_t h, w;
        if (kind == 0) {
            h = rng_range(&r, 1, 12);
            w = rng_range(&r, 1, 12);
        } else if (kind == 3) {
            h = rng_range(&r, 1, 256);
            w = rng_range(&r, 1, 256);
        } else {
            h = rng_range(&r, 1, 64);
            w = rng_range(&r, 1, 64);
        }
        const size_t pixels = h * w;
        double density = rng_unit(&r) < 0.3 ? rng_unit(&r) : 0.02 * rng_unit(&r);
        if (density * (double)pixels * (double)pixels > budget) {
            density = budget / ((double)pixels * (double)pixels);
        }
        const size_t threshold = (size_t)(density * 1e6);
        for (size_t i = 0; i < pixels; ++i) {
            mask[i] = rng_range(&r, 0, 999999) < threshold ? (uint8_t)rng_range(&r, 1, 255) : 0;
        }
        if (trial % 10 == 5) { /* sometimes all background or all foreground */
            memset(mask, trial % 20 == 5 ? 0 : 1, pixels);
        }
        const double sigma = 0.3 + 30.0 * rng_unit(&r);
        check_distance_targets(mask, h, w, sigma);
    }
    free(mask);
}
END_TEST

/* Structured masks that stress the envelope: lines, checkerboards, one column. */
START_TEST(test_distance_structured)
{
    const size_t h = 97, w = 131;
    uint8_t *mask = calloc(h * w, 1);
    ck_assert_ptr_nonnull(mask);
    for (size_t x = 0; x < w; x += 13) {
        mask[50 * w + x] = 1;
    }
    check_distance_targets(mask, h, w, 6.0);
    memset(mask, 0, h * w);
    for (size_t y = 0; y < h; ++y) {
        mask[y * w + (y * 7) % w] = 1; /* a wrapped diagonal */
    }
    check_distance_targets(mask, h, w, 3.0);
    memset(mask, 0, h * w);
    for (size_t y = 0; y < h; ++y) {
        mask[y * w + w - 1] = 1; /* the last column */
    }
    check_distance_targets(mask, h, w, 9.0);
    for (size_t i = 0; i < h * w; ++i) {
        mask[i] = (uint8_t)(((i / w) + (i % w)) % 2);
    }
    check_distance_targets(mask, h, w, 1.0);
    memset(mask, 0, h * w);
    mask[0] = mask[h * w - 1] = 1; /* opposite corners */
    check_distance_targets(mask, h, w, 50.0);
    free(mask);
}
END_TEST

START_TEST(test_distance_4096)
{
    const size_t side = 4096;
    uint8_t *mask = calloc(side * side, 1);
    float *out = malloc(side * side * sizeof *out);
    ck_assert_ptr_nonnull(mask);
    ck_assert_ptr_nonnull(out);
    const size_t fg[][2] = { { 0, 0 }, { 4095, 4095 }, { 1000, 3000 }, { 2048, 2047 },
                             { 3900, 17 }, { 2049, 2047 } };
    const size_t fg_count = sizeof fg / sizeof fg[0];
    for (size_t i = 0; i < fg_count; ++i) {
        mask[fg[i][0] * side + fg[i][1]] = 1;
    }
    const double sigma = 600.0;
    ck_assert_int_eq(dafl_distance_targets(mask, side, side, sigma, out), DAFL_OK);

    rng r = { 7 };
    for (size_t sample = 0; sample < 20000; ++sample) {
        size_t y, x;
        if (sample < fg_count) {
            y = fg[sample][0];
            x = fg[sample][1];
        } else if (sample < fg_count + 4) {
            y = (sample & 1) ? side - 1 : 0;
            x = (sample & 2) ? side - 1 : 0;
        } else {
            y = rng_range(&r, 0, side - 1);
            x = rng_range(&r, 0, side - 1);
        }
        int64_t best = INT64_MAX;
        for (size_t i = 0; i < fg_count; ++i) {
            const int64_t dy = (int64_t)fg[i][0] - (int64_t)y;
            const int64_t dx = (int64_t)fg[i][1] - (int64_t)x;
            best = dy * dy + dx * dx < best ? dy * dy + dx * dx : best;
        }
        CHECK_PIXEL(float_bits(out[y * side + x]) == float_bits(expected_target(best, sigma)),
                    "pixel (%zu, %zu)", y, x);
    }
    free(mask);
    free(out);
}
END_TEST

START_TEST(test_distance_errors)
{
    uint8_t mask[12] = { 0, 1 };
    float out[12];
    float reference[12];
    fill_sentinel(reference, sizeof reference);
    memcpy(out, reference, sizeof out);

    ck_assert_int_eq(dafl_distance_targets(NULL, 3, 4, 1.0, out), DAFL_ERR_NULL_POINTER);
    ck_assert_int_eq(dafl_distance_targets(mask, 3, 4, 1.0, NULL), DAFL_ERR_NULL_POINTER);
    ck_assert_int_eq(dafl_distance_targets(mask, SIZE_MAX, 2, 1.0, out),
                     DAFL_ERR_SIZE_OVERFLOW);
    ck_assert_int_eq(dafl_distance_targets(mask, 2, SIZE_MAX / 2 + 1, 1.0, out),
                     DAFL_ERR_SIZE_OVERFLOW);
#if SIZE_MAX > 0xFFFFFFFFu
    /* Sides beyond 2^31 (squared distances would leave int64) and buffers whose byte
     * size overflows. */
    ck_assert_int_eq(dafl_distance_targets(mask, 1, ((size_t)1 << 31) + 1, 1.0, out),
                     DAFL_ERR_SIZE_OVERFLOW);
    ck_assert_int_eq(dafl_distance_targets(mask, ((size_t)1 << 31) + 1, 1, 1.0, out),
                     DAFL_ERR_SIZE_OVERFLOW);
    ck_assert_int_eq(dafl_distance_targets(mask, (size_t)1 << 31, (size_t)1 << 31, 1.0, out),
                     DAFL_ERR_SIZE_OVERFLOW);
#if !TEST_UNDER_SANITIZER
    /* 2^60 pixels: the 2^62-byte temporary cannot be allocated, and nothing is read or
     * written before that is known.  (Sanitizers abort on such a request instead.) */
    ck_assert_int_eq(dafl_distance_targets(mask, (size_t)1 << 29, (size_t)1 << 31, 1.0, out),
                     DAFL_ERR_OUT_OF_MEMORY);
#endif
#endif
    const double bad_sigma[] = { 0.0, -0.0, -2.0, NAN, INFINITY, -INFINITY };
    for (size_t i = 0; i < sizeof bad_sigma / sizeof bad_sigma[0]; ++i) {
        ck_assert_int_eq(dafl_distance_targets(mask, 3, 4, bad_sigma[i], out),
                         DAFL_ERR_INVALID_PARAMETER);
    }
    ck_assert(memcmp(out, reference, sizeof out) == 0);
}
END_TEST

/* h == 0 or w == 0 is a valid no-op with NULL buffers; parameters are still checked. */
START_TEST(test_empty_planes)
{
    ck_assert_int_eq(dafl_draw_gaussian(NULL, 0, 5, 1, 1, 2, 1.0f), DAFL_OK);
    ck_assert_int_eq(dafl_draw_gaussian(NULL, 5, 0, 1, 1, 2, 1.0f), DAFL_OK);
    ck_assert_int_eq(dafl_draw_gaussian(NULL, 0, 0, 1, 1, -2, 1.0f),
                     DAFL_ERR_INVALID_PARAMETER);
    ck_assert_int_eq(dafl_draw_gaussian_sigma(NULL, 0, 5, 1.0, 1.0, 2.0), DAFL_OK);
    ck_assert_int_eq(dafl_draw_gaussian_sigma(NULL, 5, 0, 1.0, 1.0, 2.0), DAFL_OK);
    ck_assert_int_eq(dafl_draw_gaussian_sigma(NULL, 0, 0, 1.0, 1.0, 0.0),
                     DAFL_ERR_INVALID_PARAMETER);
    ck_assert_int_eq(dafl_distance_targets(NULL, 0, 5, 1.0, NULL), DAFL_OK);
    ck_assert_int_eq(dafl_distance_targets(NULL, 5, 0, 1.0, NULL), DAFL_OK);
    ck_assert_int_eq(dafl_distance_targets(NULL, 0, SIZE_MAX, 1.0, NULL), DAFL_OK);
    ck_assert_int_eq(dafl_distance_targets(NULL, 0, 0, NAN, NULL),
                     DAFL_ERR_INVALID_PARAMETER);
}
END_TEST

/* ---- runner --------------------------------------------------------------------- */

/* Generous limits: the suite takes seconds, but may run under a sanitizer or valgrind. */
enum { CASE_TIMEOUT_S = 120, DISTANCE_CASE_TIMEOUT_S = 600 };

static Suite *targets_suite(void)
{
    Suite *suite = suite_create("targets");

    TCase *radius = tcase_create("gaussian_radius");
    tcase_set_timeout(radius, CASE_TIMEOUT_S);
    tcase_add_test(radius, test_radius_check_values);
    tcase_add_test(radius, test_radius_exact_meets_overlap);
    tcase_add_test(radius, test_radius_exact_high_precision);
    tcase_add_test(radius, test_radius_scaling);
    tcase_add_test(radius, test_radius_errors);
    suite_add_tcase(suite, radius);

    TCase *umich = tcase_create("draw_gaussian");
    tcase_set_timeout(umich, CASE_TIMEOUT_S);
    tcase_add_test(umich, test_umich_centre_row);
    tcase_add_test(umich, test_umich_radius_zero);
    tcase_add_test(umich, test_umich_symmetry);
    tcase_add_test(umich, test_umich_clipping_at_corners);
    tcase_add_test(umich, test_umich_centre_outside);
    tcase_add_test(umich, test_umich_max_merge);
    tcase_add_test(umich, test_umich_k_scaling);
    tcase_add_test(umich, test_umich_errors);
    suite_add_tcase(suite, umich);

    TCase *msra = tcase_create("draw_gaussian_sigma");
    tcase_set_timeout(msra, CASE_TIMEOUT_S);
    tcase_add_test(msra, test_msra_simple_values);
    tcase_add_test(msra, test_msra_fractional_window);
    tcase_add_test(msra, test_msra_against_reference);
    tcase_add_test(msra, test_msra_errors);
    suite_add_tcase(suite, msra);

    TCase *distance = tcase_create("distance_targets");
    tcase_set_timeout(distance, DISTANCE_CASE_TIMEOUT_S);
    tcase_add_test(distance, test_distance_special_masks);
    tcase_add_test(distance, test_distance_extreme_sigma);
    tcase_add_test(distance, test_distance_random_vs_brute_force);
    tcase_add_test(distance, test_distance_structured);
    tcase_add_test(distance, test_distance_4096);
    tcase_add_test(distance, test_distance_errors);
    suite_add_tcase(suite, distance);

    TCase *empty = tcase_create("empty");
    tcase_set_timeout(empty, CASE_TIMEOUT_S);
    tcase_add_test(empty, test_empty_planes);
    suite_add_tcase(suite, empty);
    return suite;
}

int main(void)
{
    SRunner *runner = srunner_create(targets_suite());
    srunner_run_all(runner, CK_NORMAL);
    const int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
