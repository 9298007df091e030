/*
 * targets.c — training targets for the distance-aware losses (SPEC section 3).
 *
 *   dafl_gaussian_radius       CornerNet's corner radius for a box and a minimum IoU
 *   dafl_draw_gaussian         CenterNet's "umich" Gaussian (integer radius, max-merge)
 *   dafl_draw_gaussian_sigma   CenterNet's "msra" Gaussian (explicit sigma, max-merge)
 *   dafl_distance_targets      exp(-d^2 / (2 sigma^2)) of an exact Euclidean distance
 *                              transform of a binary mask (Felzenszwalb & Huttenlocher)
 *
 * Every function validates all of its arguments before it reads or writes a buffer, and
 * allocates its temporaries before it writes an output, so a call that fails leaves its
 * outputs untouched.
 */
#include "dafl.h"
#include "fpenv.h"
#include "gaussian_stamp.h"
#include "parallel.h"

#include <float.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

/*
 * Largest accepted side of a distance-transform mask.  Coordinates then stay below 2^31,
 * so a squared distance dy^2 + dx^2 < 2^63 and every intermediate of the envelope
 * construction fits in int64_t, which keeps the transform exact.
 */
#define DAFL_TARGETS_MAX_SIDE ((size_t)1 << 31)

/* Column distance of a pixel whose column holds no foreground at all. */
#define DAFL_NO_FOREGROUND UINT32_MAX

/* Distance targets for squared distances below this are looked up in a table filled on
 * first use: near the foreground the same small d2 values recur on most pixels. */
#define DAFL_NEAR_TARGETS 4096

/* ---- shared helpers ------------------------------------------------------------- */

/* Validates a caller's h x w buffer: NULL is allowed only for an empty one, and h * w
 * floats must be representable in bytes.  Stores h * w in *count. */
static dafl_status check_plane(const void *buffer, size_t h, size_t w, size_t *count)
{
    *count = 0;
    if (h == 0 || w == 0) {
        return DAFL_OK;
    }
    if (buffer == NULL) {
        return DAFL_ERR_NULL_POINTER;
    }
    if (h > SIZE_MAX / sizeof(float) / w) {
        return DAFL_ERR_SIZE_OVERFLOW;
    }
    *count = h * w;
    return DAFL_OK;
}

/* A buffer extent as a signed coordinate bound.  Capping at LLONG_MAX changes nothing:
 * window coordinates never exceed a few times DAFL_TARGETS_COORD_LIMIT. */
static long long extent_as_coordinate(size_t extent)
{
    return extent > (size_t)LLONG_MAX ? LLONG_MAX : (long long)extent;
}

static long long max_ll(long long a, long long b) { return a > b ? a : b; }
static long long min_ll(long long a, long long b) { return a < b ? a : b; }

/* Merges the part of a stamp's window that lies inside the h x w heatmap. */
static void draw_stamp(float *heatmap, size_t h, size_t w, const dafl_stamp *stamp)
{
    const long long x_first = max_ll(stamp->x_first, 0);
    const long long x_end = min_ll(stamp->x_end, extent_as_coordinate(w));
    const long long y_first = max_ll(stamp->y_first, 0);
    const long long y_end = min_ll(stamp->y_end, extent_as_coordinate(h));
    if (x_first >= x_end) {
        return;
    }
    for (long long y = y_first; y < y_end; ++y) {
        dafl_stamp_merge_row(stamp, y, x_first, x_end, heatmap + (size_t)y * w + (size_t)x_first);
    }
}

/* The drawing functions' common course: the h x w heatmap is checked first, then the
 * stamp's own parameters (`params`: their status; `stamp` is read only when that is
 * DAFL_OK), and an empty heatmap draws nothing. */
static dafl_status draw_checked_stamp(float *heatmap, size_t h, size_t w, dafl_status params,
                                      const dafl_stamp *stamp)
{
    size_t count;
    const dafl_status plane_status = check_plane(heatmap, h, w, &count);
    if (plane_status != DAFL_OK) {
        return plane_status;
    }
    if (params != DAFL_OK) {
        return params;
    }
    if (count != 0) {
        draw_stamp(heatmap, h, w, stamp);
    }
    return DAFL_OK;
}

/* ---- gaussian_radius ------------------------------------------------------------ */

/*
 * CornerNet's three cases for a predicted box whose corners are displaced by r from the
 * ground-truth corners (box height h, width w), each solved for IoU = o:
 *   1. the box shifted by r, IoU = (h-r)(w-r) / (2hw - (h-r)(w-r)):
 *          r^2 - (h+w) r + w h (1-o)/(1+o) = 0
 *   2. both corners moved inwards, IoU = (h-2r)(w-2r) / (hw):
 *          4 r^2 - 2(h+w) r + (1-o) w h = 0
 *   3. both corners moved outwards, IoU = hw / ((h+2r)(w+2r)):
 *          4o r^2 + 2o(h+w) r + (o-1) w h = 0
 * written as a r^2 - b r + c = 0 with b1 = h+w, b2 = 2(h+w), b3 = -2o(h+w).
 *
 * The CORNERNET variant keeps the original code's arithmetic exactly: discriminants
 * b^2 - 4ac and roots (b + sqrt(D)) / 2, which ignore a and take the wrong sign for cases
 * 1 and 2.  EXACT takes the correct smaller roots, in forms free of cancellation:
 *   D1 = (h-w)^2 + 8o wh/(1+o),  D2 = 4(h-w)^2 + 16o wh,  D3 = 4o^2(h+w)^2 + 16o(1-o) wh
 * (each b^2 - 4ac expanded, every term >= 0), and each root as 2c / (|b| + sqrt(D)), the
 * product of the roots over the larger one:
 *   r1 = 2 c1 / (b1 + sq1),  r2 = 2 c2 / (b2 + sq2),  r3 = 2(1-o) wh / (2o(h+w) + sq3).
 * So a tiny o loses nothing to 1 - o == 1 inside b^2 - 4ac, an o near 1 nothing to
 * b - sq, and case 3 never divides by a3 = 4o (which underflows for subnormal o).  Either
 * way the radius is the smallest of the three.
 *
 * The roots are homogeneous of degree one in (h, w), so EXACT runs on h and w scaled by a
 * power of two that brings max(h, w) near 1 and scales the result back: power-of-two
 * scaling is exact, so the result is bit-identical to the same formulas on the unscaled
 * sides wherever those neither overflow nor underflow, and stays finite elsewhere.
 * CORNERNET is scaled only for sides beyond 2^+-256, where the original squares would
 * overflow or lose everything: for every other box it is the original's arithmetic, bit
 * for bit, including where that underflows (o below about 1e-154).
 */
static double radius_of_unit_box(double h, double w, double o, dafl_radius_variant variant)
{
    const double c1 = w * h * (1.0 - o) / (1.0 + o);
    const double c2 = (1.0 - o) * w * h;
    if (variant == DAFL_RADIUS_CORNERNET) {
        const double a1 = 1.0, b1 = h + w;
        const double a2 = 4.0, b2 = 2.0 * (h + w);
        const double a3 = 4.0 * o, b3 = -2.0 * o * (h + w), c3 = (o - 1.0) * w * h;
        /* Rounding can push the first two discriminants a few ulps below zero for nearly
         * square boxes and tiny o: clamp before sqrt. */
        const double sq1 = sqrt(fmax(b1 * b1 - 4.0 * a1 * c1, 0.0));
        const double sq2 = sqrt(fmax(b2 * b2 - 4.0 * a2 * c2, 0.0));
        const double sq3 = sqrt(fmax(b3 * b3 - 4.0 * a3 * c3, 0.0));
        return fmin((b1 + sq1) / 2.0, fmin((b2 + sq2) / 2.0, (b3 + sq3) / 2.0));
    }
    const double d = h - w, s = h + w, wh = w * h;
    const double sq1 = sqrt(d * d + 8.0 * o * wh / (1.0 + o));
    const double sq2 = sqrt(4.0 * d * d + 16.0 * o * wh);
    const double sq3 = sqrt(4.0 * o * o * s * s + 16.0 * o * (1.0 - o) * wh);
    const double r1 = 2.0 * c1 / (s + sq1);
    const double r2 = 2.0 * c2 / (2.0 * s + sq2);
    const double r3 = 2.0 * (1.0 - o) * wh / (2.0 * o * s + sq3);
    return fmin(r1, fmin(r2, r3));
}

DAFL_API dafl_status dafl_gaussian_radius(double height, double width, double min_overlap,
                                          dafl_radius_variant variant, double *radius)
{
    DAFL_FP_ENVIRONMENT();
    if (radius == NULL) {
        return DAFL_ERR_NULL_POINTER;
    }
    /* Written as negated comparisons so that NaN fails them. */
    if (!(height > 0.0) || !(width > 0.0) || isinf(height) || isinf(width)) {
        return DAFL_ERR_INVALID_PARAMETER;
    }
    if (!(min_overlap > 0.0 && min_overlap < 1.0)) {
        return DAFL_ERR_INVALID_PARAMETER;
    }
    if (variant != DAFL_RADIUS_CORNERNET && variant != DAFL_RADIUS_EXACT) {
        return DAFL_ERR_INVALID_ENUM;
    }

    int exponent;
    (void)frexp(fmax(height, width), &exponent);
    if (variant == DAFL_RADIUS_CORNERNET && exponent >= -256 && exponent <= 256) {
        exponent = 0;
    }
    const double h = ldexp(height, -exponent);
    const double w = ldexp(width, -exponent);
    *radius = ldexp(radius_of_unit_box(h, w, min_overlap, variant), exponent);
    return DAFL_OK;
}

/* ---- draw_gaussian ("umich") ---------------------------------------------------- */

/* "umich": |cx|, |cy| and radius within DAFL_TARGETS_COORD_LIMIT, k >= 0 and finite. */
static dafl_status check_umich(long cx, long cy, long radius, float k)
{
    const long long limit = DAFL_TARGETS_COORD_LIMIT;
    if (radius < 0 || (long long)radius > limit) {
        return DAFL_ERR_INVALID_PARAMETER;
    }
    if ((long long)cx < -limit || (long long)cx > limit || (long long)cy < -limit ||
        (long long)cy > limit) {
        return DAFL_ERR_INVALID_PARAMETER;
    }
    if (!(k >= 0.0f) || isinf(k)) {
        return DAFL_ERR_INVALID_PARAMETER;
    }
    return DAFL_OK;
}

/*
 * The (2r+1) x (2r+1) Gaussian g(dx, dy) = exp(-(dx^2 + dy^2) / (2 sigma^2)) with
 * sigma = (2r+1)/6, so the window reaches 3 sigma.  Values below DBL_EPSILON * max(g) are
 * cut to 0 (max(g) = g(0, 0) = exp(-0) = 1, also when the centre is clipped away).  The
 * expression order, -(dx^2 + dy^2) / ((2 sigma) sigma), is the reference's, and the
 * product k * g is formed in double and rounded to float once, as numpy.maximum does
 * with a float32 heatmap.  Every pixel of the clipped window is merged, cut ones with 0.
 *
 * Only the part of the window inside the heatmap is drawn; the centre itself may lie
 * outside.  |cx|, |cy| and radius must not exceed DAFL_TARGETS_COORD_LIMIT (2^30).
 */
DAFL_API dafl_status dafl_draw_gaussian(float *heatmap, size_t h, size_t w, long cx, long cy,
                                        long radius, float k)
{
    DAFL_FP_ENVIRONMENT();
    const dafl_status params = check_umich(cx, cy, radius, k);
    /* built from valid parameters only: the window arithmetic needs them in range */
    const dafl_stamp stamp =
        params == DAFL_OK ? dafl_stamp_umich(cx, cy, radius, k) : (dafl_stamp){0};
    return draw_checked_stamp(heatmap, h, w, params, &stamp);
}

/* ---- draw_gaussian_sigma ("msra") ----------------------------------------------- */

/* "msra": |cx|, |cy| and sigma > 0 within DAFL_TARGETS_COORD_LIMIT. */
static dafl_status check_msra(double cx, double cy, double sigma)
{
    const double limit = (double)DAFL_TARGETS_COORD_LIMIT;
    if (!(sigma > 0.0 && sigma <= limit)) {
        return DAFL_ERR_INVALID_PARAMETER;
    }
    if (!(fabs(cx) <= limit && fabs(cy) <= limit)) {
        return DAFL_ERR_INVALID_PARAMETER;
    }
    return DAFL_OK;
}

/*
 * g = exp(-((j - x0)^2 + (i - y0)^2) / (2 sigma^2)) evaluated in double and rounded to
 * float once (the reference evaluates it in float32), merged by max, no epsilon cut.
 * The kernel is never shorter than the window (ceil(2t + 1) >= br - ul), so no index
 * clamping is needed.  |cx|, |cy| and sigma must not exceed DAFL_TARGETS_COORD_LIMIT.
 */
DAFL_API dafl_status dafl_draw_gaussian_sigma(float *heatmap, size_t h, size_t w, double cx,
                                              double cy, double sigma)
{
    DAFL_FP_ENVIRONMENT();
    const dafl_status params = check_msra(cx, cy, sigma);
    const dafl_stamp stamp =
        params == DAFL_OK ? dafl_stamp_msra(cx, cy, sigma, 1.0f) : (dafl_stamp){0};
    return draw_checked_stamp(heatmap, h, w, params, &stamp);
}

/* ---- distance_targets ----------------------------------------------------------- */

/*
 * Pass 1: for every pixel the distance |dy| to the nearest foreground pixel of its own
 * column, DAFL_NO_FOREGROUND when the column has none, for the columns x_begin..x_end-1.
 * Two row-major sweeps (down, then up) keep the memory access sequential.  Returns
 * whether any of those pixels is foreground.
 */
static bool column_distances(const uint8_t *mask, size_t h, size_t w, size_t x_begin,
                             size_t x_end, uint32_t *column)
{
    bool any_foreground = false;
    for (size_t y = 0; y < h; ++y) {
        const uint8_t *mask_row = mask + y * w;
        uint32_t *row = column + y * w;
        const uint32_t *above = y > 0 ? row - w : NULL;
        for (size_t x = x_begin; x < x_end; ++x) {
            if (mask_row[x] != 0) {
                row[x] = 0;
                any_foreground = true;
            } else if (above != NULL && above[x] != DAFL_NO_FOREGROUND) {
                row[x] = above[x] + 1;
            } else {
                row[x] = DAFL_NO_FOREGROUND;
            }
        }
    }
    for (size_t y = h - 1; y-- > 0;) {
        uint32_t *row = column + y * w;
        const uint32_t *below = row + w;
        for (size_t x = x_begin; x < x_end; ++x) {
            if (below[x] != DAFL_NO_FOREGROUND && below[x] + 1 < row[x]) {
                row[x] = below[x] + 1;
            }
        }
    }
    return any_foreground;
}

/* The lower envelope of one row's parabolas, left to right (each array holds w). */
typedef struct envelope {
    int64_t *apex;   /* column q of the parabola f(q) + (x - q)^2         */
    int64_t *height; /* its f(q): the column distance of q, squared       */
    int64_t *start;  /* the parabola is the lowest for integers x > start */
} envelope;

/*
 * Pass 2 (Felzenszwalb & Huttenlocher 2012, on integers): d^2(x) = min_q f(q) + (x - q)^2
 * over the columns q that have a finite f.  A parabola q lies strictly below an earlier
 * one v < q exactly for x > num / den with num = (f(q) + q^2) - (f(v) + v^2) and
 * den = 2 (q - v).  Only integer x in [0, w) matter, and for integer x "x > num/den"
 * equals "x > floor(num/den)", so integers decide every comparison exactly:
 *   - v, lowest for x > start(v), leaves the envelope when floor(num/den) <= start(v),
 *     i.e. num < (start(v) + 1) den;
 *   - q is never needed when floor(num/den) >= w - 1, i.e. num >= (w - 1) den.
 * So start values stay in [-1, w - 2], every product is below 2 w^2 <= 2^63 and nothing
 * overflows int64; the one division per kept parabola has num >= 0.
 * Writes the squared distances into distance_sq (w values); returns false when the row
 * has no finite parabola (only possible for an all-background mask).
 */
static bool row_squared_distances(const uint32_t *column_row, size_t w, envelope *env,
                                  int64_t *distance_sq)
{
    const int64_t last = (int64_t)w - 1;
    size_t parabolas = 0;
    for (size_t q = 0; q < w; ++q) {
        if (column_row[q] == DAFL_NO_FOREGROUND) {
            continue;
        }
        const int64_t qi = (int64_t)q;
        const int64_t fq = (int64_t)column_row[q] * (int64_t)column_row[q];
        const int64_t key_q = fq + qi * qi;
        int64_t numerator = 0, denominator = 1;
        while (parabolas > 0) {
            const size_t k = parabolas - 1;
            const int64_t v = env->apex[k];
            numerator = key_q - (env->height[k] + v * v);
            denominator = 2 * (qi - v);
            if (numerator >= (env->start[k] + 1) * denominator) {
                break;
            }
            --parabolas; /* q is at least as low wherever v was the lowest */
        }
        int64_t start = -1; /* alone, q is the lowest everywhere */
        if (parabolas > 0) {
            if (numerator >= last * denominator) {
                continue; /* q drops below the envelope only right of the row */
            }
            start = numerator / denominator;
        }
        env->apex[parabolas] = qi;
        env->height[parabolas] = fq;
        env->start[parabolas] = start;
        ++parabolas;
    }
    if (parabolas == 0) {
        return false;
    }

    size_t k = 0;
    for (size_t x = 0; x < w; ++x) {
        const int64_t xi = (int64_t)x;
        while (k + 1 < parabolas && env->start[k + 1] < xi) {
            ++k;
        }
        const int64_t v = env->apex[k];
        distance_sq[x] = (xi - v) * (xi - v) + env->height[k];
    }
    return true;
}

/*
 * The target of one pixel: (float)exp(-(double)d2 / (2.0 * sigma * sigma)), and 1 where
 * d2 == 0 (which also covers a sigma so small that 2 sigma^2 underflows to 0).
 * exp(-104) = 6.8e-46 lies below 2^-150 = 7.0e-46, half the smallest float subnormal, so
 * any exponent below -104 rounds to 0.0f whatever the libm's last-ulp error: the call is
 * skipped for those far pixels without changing a bit.
 */
static float distance_target(int64_t d2, double two_sigma_sq)
{
    if (d2 == 0) {
        return 1.0f;
    }
    const double exponent = -(double)d2 / two_sigma_sq;
    if (exponent < -104.0) {
        return 0.0f;
    }
    return (float)exp(exponent);
}

/*
 * Pass 2 needs, per row being worked on, the envelope and a row of d2: 4 w int64
 * (32 w bytes) of scratch.  Buffers are held by the ranges that run, not by the slots or
 * the configured threads: the call allocates one up front (the only one it needs), a range
 * takes a free buffer or allocates another while fewer than max_buffers exist, and waits
 * for one to be given back when it may not or cannot.  So the scratch is at most
 * max_buffers * 32 w bytes whatever the thread count, and a call never fails for want of
 * a second buffer.
 */
typedef struct scratch_pool {
    pthread_mutex_t lock;
    pthread_cond_t given_back;
    size_t row_values;   /* 4 * w int64 per buffer                              */
    size_t max_buffers;  /* max(1, h / 8): h / 8 buffers hold 4 h w bytes        */
    size_t allocated;    /* buffers that exist (or are being allocated)          */
    size_t free_count;
    int64_t **free_list; /* max_buffers entries                                  */
    bool allocation_failed;
} scratch_pool;

static int64_t *scratch_take(scratch_pool *pool)
{
    pthread_mutex_lock(&pool->lock);
    for (;;) {
        if (pool->free_count > 0) {
            int64_t *buffer = pool->free_list[--pool->free_count];
            pthread_mutex_unlock(&pool->lock);
            return buffer;
        }
        if (pool->allocated < pool->max_buffers && !pool->allocation_failed) {
            pool->allocated++;
            pthread_mutex_unlock(&pool->lock);
            int64_t *buffer = malloc(pool->row_values * sizeof *buffer);
            if (buffer != NULL) {
                return buffer;
            }
            pthread_mutex_lock(&pool->lock);
            pool->allocated--;
            pool->allocation_failed = true; /* share the ones there are from now on */
            continue;
        }
        pthread_cond_wait(&pool->given_back, &pool->lock);
    }
}

static void scratch_give_back(scratch_pool *pool, int64_t *buffer)
{
    pthread_mutex_lock(&pool->lock);
    pool->free_list[pool->free_count++] = buffer;
    pthread_cond_signal(&pool->given_back);
    pthread_mutex_unlock(&pool->lock);
}

/* One call's distance transform, shared by the slots that run it. */
typedef struct distance_work {
    const uint8_t *mask;
    size_t h, w, slots;
    uint32_t *column;          /* pass 1 output, h*w                          */
    scratch_pool scratch;      /* pass 2 scratch, per running range           */
    const float *near_targets; /* targets for d2 < near_count, precomputed    */
    size_t near_count;
    double two_sigma_sq;
    bool any_foreground;       /* set under `lock` by pass 1                  */
    float *out;
    pthread_mutex_t lock;
} distance_work;

static void distance_column_slots(void *ctx, size_t first, size_t end)
{
    distance_work *d = ctx;
    bool found = false;
    for (size_t slot = first; slot < end; ++slot) {
        size_t x_begin = d->w * slot / d->slots, x_end = d->w * (slot + 1) / d->slots;
        found |= column_distances(d->mask, d->h, d->w, x_begin, x_end, d->column);
    }
    if (found) {
        pthread_mutex_lock(&d->lock);
        d->any_foreground = true;
        pthread_mutex_unlock(&d->lock);
    }
}

static void distance_row_slots(void *ctx, size_t first, size_t end)
{
    distance_work *d = ctx;
    const size_t w = d->w;
    int64_t *scratch = scratch_take(&d->scratch);
    envelope env = {scratch, scratch + w, scratch + 2 * w};
    int64_t *distance_sq = scratch + 3 * w;
    for (size_t slot = first; slot < end; ++slot) {
        for (size_t y = d->h * slot / d->slots; y < d->h * (slot + 1) / d->slots; ++y) {
            float *out_row = d->out + y * w;
            if (!d->any_foreground ||
                !row_squared_distances(d->column + y * w, w, &env, distance_sq)) {
                /* No foreground anywhere: infinite distance, exp(-inf) = 0. */
                for (size_t x = 0; x < w; ++x) {
                    out_row[x] = 0.0f;
                }
                continue;
            }
            for (size_t x = 0; x < w; ++x) {
                const int64_t d2 = distance_sq[x];
                out_row[x] = (size_t)d2 < d->near_count ? d->near_targets[d2]
                                                          : distance_target(d2, d->two_sigma_sq);
            }
        }
    }
    scratch_give_back(&d->scratch, scratch);
}

/*
 * out = exp(-d^2 / (2 sigma^2)), evaluated exactly as (float)exp(-(double)d2 /
 * (2.0 * sigma * sigma)) with the exact integer d2, and 1.0f where d2 == 0.  d2 comes
 * from the separable exact transform: pass 1 gives each pixel's squared vertical distance
 * to the nearest foreground pixel of every column, pass 2 takes the minimum over columns
 * of that plus the squared horizontal distance.  O(h w) time.  Temporaries: the pass-1
 * plane (4 h w bytes), the near-target table (at most 16 KiB), the scratch pool's list
 * (8 max(1, h/8) bytes) and 32 w bytes of pass-2 scratch per range running at once, at
 * most max(1, h/8) of them: at most 4 h w + (32 w + 8) max(1, h/8) + 16 KiB in all (about
 * twice the plane), whatever the thread count; only the first scratch buffer is
 * required, so the call succeeds whenever 4 h w + 32 w + 8 max(1, h/8) + 16 KiB can be
 * allocated.  Sides above 2^31 are refused with DAFL_ERR_SIZE_OVERFLOW because their
 * squared distances would not fit in int64.
 */
DAFL_API dafl_status dafl_distance_targets(const uint8_t *mask, size_t h, size_t w,
                                           double sigma, float *out)
{
    DAFL_FP_ENVIRONMENT();
    size_t count;
    dafl_status status = check_plane(mask, h, w, &count);
    if (status != DAFL_OK) {
        return status;
    }
    status = check_plane(out, h, w, &count);
    if (status != DAFL_OK) {
        return status;
    }
    if (!(sigma > 0.0) || isinf(sigma)) {
        return DAFL_ERR_INVALID_PARAMETER;
    }
    if (count == 0) {
        return DAFL_OK;
    }
    if (h > DAFL_TARGETS_MAX_SIDE || w > DAFL_TARGETS_MAX_SIDE ||
        count > SIZE_MAX / sizeof(uint32_t) || w > SIZE_MAX / (4 * sizeof(int64_t))) {
        return DAFL_ERR_SIZE_OVERFLOW;
    }

    /* The work is split into slots of whole columns (pass 1) and whole rows (pass 2); each
     * range of slots takes a scratch buffer while it runs, so any thread may run any slot.
     * The split cannot change a bit: every pixel's value depends only on the mask. */
    size_t slots = 1;
    if (count >= DAFL_MIN_PARALLEL_ELEMENTS && dafl_threads() > 1) {
        slots = (size_t)dafl_threads() * 4;
        slots = slots < h ? slots : h;
        slots = slots < w ? slots : w;
    }
    size_t largest_d2 = (h - 1) * (h - 1) + (w - 1) * (w - 1) + 1;
    size_t near_count = largest_d2 < DAFL_NEAR_TARGETS ? largest_d2 : DAFL_NEAR_TARGETS;
    size_t max_buffers = h / 8 > 1 ? h / 8 : 1;
    uint32_t *column = malloc(count * sizeof *column);
    int64_t *first_scratch = malloc(4 * w * sizeof *first_scratch);
    int64_t **free_list = malloc(max_buffers * sizeof *free_list);
    float *near_targets = malloc(near_count * sizeof *near_targets);
    if (column == NULL || first_scratch == NULL || free_list == NULL || near_targets == NULL) {
        free(column);
        free(first_scratch);
        free(free_list);
        free(near_targets);
        return DAFL_ERR_OUT_OF_MEMORY;
    }
    free_list[0] = first_scratch;
    distance_work work = {.mask = mask, .h = h, .w = w, .slots = slots, .column = column,
                          .scratch = {.row_values = 4 * w, .max_buffers = max_buffers,
                                      .allocated = 1, .free_count = 1,
                                      .free_list = free_list},
                          .near_targets = near_targets,
                          .near_count = near_count, .two_sigma_sq = 2.0 * sigma * sigma,
                          .any_foreground = false, .out = out};
    for (size_t d2 = 0; d2 < near_count; ++d2) {
        near_targets[d2] = distance_target((int64_t)d2, work.two_sigma_sq);
    }
    pthread_mutex_init(&work.lock, NULL);
    pthread_mutex_init(&work.scratch.lock, NULL);
    pthread_cond_init(&work.scratch.given_back, NULL);
    /* Pass 1 writes only scratch; a pass that could not start (out of memory checking a
     * host's split) has written nothing to `out`. */
    dafl_status st = dafl_parallel_for(slots, slots > 1 ? count : 0, distance_column_slots,
                                       &work);
    if (st != DAFL_ERR_OUT_OF_MEMORY) {
        dafl_status rows = dafl_parallel_for(slots, slots > 1 ? count : 0,
                                             distance_row_slots, &work);
        st = rows == DAFL_OK ? st : rows;
    }
    pthread_mutex_destroy(&work.lock);
    pthread_mutex_destroy(&work.scratch.lock);
    pthread_cond_destroy(&work.scratch.given_back);
    for (size_t i = 0; i < work.scratch.free_count; ++i) { /* every buffer is back */
        free(free_list[i]);
    }
    free(free_list);
    free(column);
    free(near_targets);
    return st;
}
