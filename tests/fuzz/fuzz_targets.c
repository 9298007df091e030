/*
 * libFuzzer harness: the target builders dafl_gaussian_radius, dafl_draw_gaussian,
 * dafl_draw_gaussian_sigma and dafl_distance_targets.  They do not depend on the ISA;
 * their results are checked against what dafl.h documents instead:
 *   radius       finite and >= 0 on success;
 *   draw_*       the max-merge only raises pixels, never above k (1 for sigma), only
 *                inside the window, and the same call twice gives the same bits;
 *   distance     1 exactly on the foreground, 0 everywhere for an empty mask, and for
 *                small masks exactly (float)exp(-d2 / (2 sigma^2)) with the brute-force
 *                squared distance d2.
 * Failing calls must leave the heatmap / output untouched.
 *
 * Bytes: operation (op % 4), then its fields (see each function), then the payload.
 */
#include <limits.h>

#include "fuzz_common.h"

#define MAX_SIDE 48

/* A signed coordinate: 0 -> 0, small values, limits, or raw bits. */
static long take_long(fz *f)
{
    static const long edges[] = {0, 1, -1, 1L << 30, -(1L << 30), (1L << 30) + 1,
                                 -(1L << 30) - 1, LONG_MAX, LONG_MIN, 47, 48, 49, -48, 100};
    uint8_t b = fz_u8(f);
    if (b == 0xff)
        return (long)fz_u64(f);
    if (b < sizeof edges / sizeof edges[0])
        return edges[b];
    return (long)b - 128;
}

/* A side of a plane: small, or huge (only where the library must refuse it, or where the
 * other side is 0 so that there is nothing to touch). */
static size_t take_side(fz *f, int *huge)
{
    return fz_size(f, MAX_SIDE, huge);
}

/* Sides that are safe to pass with a buffer of only `have` elements: the call cannot
 * touch memory when a side is 0, and must refuse h * w * sizeof(float) overflowing. */
static int sides_safe(size_t h, size_t w, int huge)
{
    return !huge || h == 0 || w == 0 || fz_product_overflows(h, w, 1, sizeof(float));
}

static void op_radius(fz *f)
{
    const double height = fz_param_double(f, 10.0), width = fz_param_double(f, 20.0);
    const double overlap = fz_param_double(f, 0.7);
    const dafl_radius_variant v = (dafl_radius_variant)fz_enum(f, DAFL_RADIUS_CORNERNET);
    const int null_out = fz_u8(f) == 1;
    double r = -7.0, r2 = -8.0;
    dafl_status st = dafl_gaussian_radius(height, width, overlap, v, null_out ? NULL : &r);
    FZ_REQUIRE_STATUS(st, "dafl_gaussian_radius");
    if (st != DAFL_OK) {
        FZ_REQUIRE(r == -7.0, "failing dafl_gaussian_radius wrote its output");
        return;
    }
    FZ_REQUIRE(!null_out, "dafl_gaussian_radius accepted a NULL output");
    FZ_REQUIRE(height > 0 && width > 0 && isfinite(height) && isfinite(width) && overlap > 0 &&
                   overlap < 1 && (v == DAFL_RADIUS_CORNERNET || v == DAFL_RADIUS_EXACT),
               "dafl_gaussian_radius accepted h %g w %g overlap %g variant %d", height, width,
               overlap, (int)v);
    /* The exact roots are finite, >= 0 and at most the mean side (case 2's root is below
     * (h+w)/4) for every valid input.  CORNERNET keeps the original arithmetic, which
     * fails below about 1e-154 (docs/bad-input.md), so it is held to that only above. */
    if (v == DAFL_RADIUS_EXACT || overlap >= 0x1p-500)
        FZ_REQUIRE(isfinite(r) && r >= 0.0, "radius %g for h %a w %a overlap %a variant %d", r,
                   height, width, overlap, (int)v);
    if (v == DAFL_RADIUS_EXACT)
        FZ_REQUIRE(r <= 0.5 * height + 0.5 * width, "radius %a above the mean of h %a w %a", r,
                   height, width);
    FZ_REQUIRE(dafl_gaussian_radius(height, width, overlap, v, &r2) == DAFL_OK &&
                   memcmp(&r, &r2, sizeof r) == 0,
               "dafl_gaussian_radius is not deterministic");
}

/* The heatmap's initial values: anything, NaN and negative values included. */
static float *heatmap_from(const fz_payload *pl, size_t count, unsigned mode)
{
    float *hm = fz_alloc(count * sizeof(float));
    for (size_t i = 0; i < count; i++)
        hm[i] = mode % 2 ? fz_value(pl, i, mode / 2) : fz_target(pl, i, FZ_TARGETS_VALID);
    return hm;
}

/* Every pixel is either unchanged or raised (by a max-merge: value > old), never above
 * `top`, and only inside rows y0..y1 and columns x0..x1 (inclusive). */
static void check_merge(const char *name, const float *before, const float *after, size_t h,
                        size_t w, long long x0, long long x1, long long y0, long long y1,
                        float top)
{
    for (size_t y = 0; y < h; y++)
        for (size_t x = 0; x < w; x++) {
            const float a = before[y * w + x], b = after[y * w + x];
            if (memcmp(&a, &b, sizeof a) == 0)
                continue;
            FZ_REQUIRE(b > a, "%s: pixel (%zu, %zu) went from %a to %a",
                       name, y, x, (double)a, (double)b);
            FZ_REQUIRE(b <= top, "%s: pixel (%zu, %zu) = %a above %a", name, y, x, (double)b,
                       (double)top);
            FZ_REQUIRE((long long)x >= x0 && (long long)x <= x1 && (long long)y >= y0 &&
                           (long long)y <= y1,
                       "%s: pixel (%zu, %zu) outside the window", name, y, x);
        }
}

static void op_draw(fz *f, const fz_payload *pl)
{
    int huge = 0;
    size_t h = take_side(f, &huge), w = take_side(f, &huge);
    const long cx = take_long(f), cy = take_long(f), radius = take_long(f);
    const float k = fz_param(f, 1.0f);
    const unsigned mode = fz_u8(f);
    int null_map = fz_u8(f) == 1;
    if (!sides_safe(h, w, huge))
        null_map = 1; /* a size the library cannot refuse: only with NULL */
    const size_t count = huge ? 16 : h * w;
    float *before = heatmap_from(pl, count, mode);
    float *hm = fz_alloc(count * sizeof(float)), *again = fz_alloc(count * sizeof(float));
    memcpy(hm, before, count * sizeof(float));
    memcpy(again, before, count * sizeof(float));
    dafl_status st = dafl_draw_gaussian(null_map ? NULL : hm, h, w, cx, cy, radius, k);
    FZ_REQUIRE_STATUS(st, "dafl_draw_gaussian");
    FZ_REQUIRE(memcmp(hm, before, count * sizeof(float)) == 0 || st == DAFL_OK,
               "failing dafl_draw_gaussian (%s) changed the heatmap", dafl_status_string(st));
    if (st == DAFL_OK) {
        FZ_REQUIRE(!huge || h == 0 || w == 0, "dafl_draw_gaussian accepted %zu x %zu", h, w);
        FZ_REQUIRE(radius >= 0 && k >= 0 && isfinite(k),
                   "dafl_draw_gaussian accepted radius %ld k %g", radius, (double)k);
        if (!null_map && h && w) {
            check_merge("dafl_draw_gaussian", before, hm, h, w,
                        (long long)cx - radius, (long long)cx + radius,
                        (long long)cy - radius, (long long)cy + radius, k);
            FZ_REQUIRE(dafl_draw_gaussian(again, h, w, cx, cy, radius, k) == DAFL_OK &&
                           memcmp(again, hm, count * sizeof(float)) == 0,
                       "dafl_draw_gaussian is not deterministic");
        }
    }
    free(before);
    free(hm);
    free(again);
}

static void op_draw_sigma(fz *f, const fz_payload *pl)
{
    int huge = 0;
    size_t h = take_side(f, &huge), w = take_side(f, &huge);
    const double cx = fz_param_double(f, 5.0), cy = fz_param_double(f, 5.0);
    const double sigma = fz_param_double(f, 2.0);
    const unsigned mode = fz_u8(f);
    int null_map = fz_u8(f) == 1;
    if (!sides_safe(h, w, huge))
        null_map = 1;
    const size_t count = huge ? 16 : h * w;
    float *before = heatmap_from(pl, count, mode);
    float *hm = fz_alloc(count * sizeof(float)), *again = fz_alloc(count * sizeof(float));
    memcpy(hm, before, count * sizeof(float));
    memcpy(again, before, count * sizeof(float));
    dafl_status st = dafl_draw_gaussian_sigma(null_map ? NULL : hm, h, w, cx, cy, sigma);
    FZ_REQUIRE_STATUS(st, "dafl_draw_gaussian_sigma");
    FZ_REQUIRE(memcmp(hm, before, count * sizeof(float)) == 0 || st == DAFL_OK,
               "failing dafl_draw_gaussian_sigma (%s) changed the heatmap",
               dafl_status_string(st));
    if (st == DAFL_OK) {
        FZ_REQUIRE(!huge || h == 0 || w == 0, "dafl_draw_gaussian_sigma accepted %zu x %zu", h,
                   w);
        FZ_REQUIRE(sigma > 0 && isfinite(sigma) && isfinite(cx) && isfinite(cy),
                   "dafl_draw_gaussian_sigma accepted centre (%g, %g) sigma %g", cx, cy, sigma);
        if (!null_map && h && w) {
            /* the window reaches 3 sigma (+1 for the rounding of the centre) */
            const double reach = 3.0 * sigma + 2.0;
            check_merge("dafl_draw_gaussian_sigma", before, hm, h, w,
                        (long long)floor(cx - reach), (long long)ceil(cx + reach),
                        (long long)floor(cy - reach), (long long)ceil(cy + reach), 1.0f);
            FZ_REQUIRE(dafl_draw_gaussian_sigma(again, h, w, cx, cy, sigma) == DAFL_OK &&
                           memcmp(again, hm, count * sizeof(float)) == 0,
                       "dafl_draw_gaussian_sigma is not deterministic");
        }
    }
    free(before);
    free(hm);
    free(again);
}

static void op_distance(fz *f, const fz_payload *pl)
{
    int huge = 0;
    size_t h = take_side(f, &huge), w = take_side(f, &huge);
    const double sigma = fz_param_double(f, 2.0);
    const uint8_t density = fz_u8(f), nulls = fz_u8(f);
    int null_mask = nulls & 1, null_out = (nulls >> 1) & 1;
    /* Sides above 2^31 are refused whatever the other; otherwise as for the heatmaps. */
    const size_t side_limit = (size_t)1 << 31;
    if (huge && !(h > side_limit && w) && !(w > side_limit && h) && !sides_safe(h, w, huge))
        null_mask = 1;
    const size_t count = huge ? 16 : h * w;
    uint8_t *mask = fz_alloc(count);
    size_t foreground = 0;
    for (size_t i = 0; i < count; i++) {
        uint32_t v = fz_word(pl, i);
        mask[i] = density == 0 ? 0 : (v % 256) < density ? (uint8_t)(1 + (v >> 8) % 255) : 0;
        foreground += mask[i] != 0;
    }
    float *out = fz_alloc(count * sizeof(float));
    memset(out, FZ_SENTINEL, count * sizeof(float));
    dafl_status st = dafl_distance_targets(null_mask ? NULL : mask, h, w, sigma,
                                           null_out ? NULL : out);
    FZ_REQUIRE_STATUS(st, "dafl_distance_targets");
    if (st != DAFL_OK) {
        FZ_REQUIRE(fz_all_bytes(out, count * sizeof(float), FZ_SENTINEL),
                   "failing dafl_distance_targets (%s) wrote its output", dafl_status_string(st));
    } else {
        FZ_REQUIRE(!huge || h == 0 || w == 0, "dafl_distance_targets accepted %zu x %zu", h, w);
        FZ_REQUIRE(sigma > 0 && isfinite(sigma), "dafl_distance_targets accepted sigma %g",
                   sigma);
        for (size_t i = 0; i < (huge ? 0 : count); i++) {
            if (mask[i])
                FZ_REQUIRE(out[i] == 1.0f, "foreground pixel %zu is %a", i, (double)out[i]);
            else if (!foreground)
                FZ_REQUIRE(out[i] == 0.0f && !signbit(out[i]), "empty mask, pixel %zu is %a",
                           i, (double)out[i]);
            FZ_REQUIRE(out[i] >= 0.0f && out[i] <= 1.0f, "pixel %zu is %a", i, (double)out[i]);
        }
        /* brute force for small planes: the exact squared distance */
        if (!huge && foreground && count <= 256)
            for (size_t y = 0; y < h; y++)
                for (size_t x = 0; x < w; x++) {
                    long long best = -1;
                    for (size_t v = 0; v < h; v++)
                        for (size_t u = 0; u < w; u++)
                            if (mask[v * w + u]) {
                                long long dy = (long long)y - (long long)v;
                                long long dx = (long long)x - (long long)u;
                                long long d2 = dy * dy + dx * dx;
                                if (best < 0 || d2 < best)
                                    best = d2;
                            }
                    const float want =
                        best == 0 ? 1.0f : (float)exp(-(double)best / (2.0 * sigma * sigma));
                    size_t where;
                    FZ_REQUIRE(fz_same_floats(&out[y * w + x], &want, sizeof want, &where),
                               "distance target (%zu, %zu) of %zu x %zu, sigma %a: %a, want %a "
                               "(d2 = %lld)",
                               y, x, h, w, sigma, (double)out[y * w + x], (double)want, best);
                }
    }
    free(mask);
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz f = fz_begin(data, size);
    const uint8_t op = fz_u8(&f);
    /* heatmap and mask contents come from all of the input, cyclically */
    switch (op % 4) {
    case 0:
        op_radius(&f);
        break;
    case 1: {
        fz_payload pl = {data, size};
        op_draw(&f, &pl);
        break;
    }
    case 2: {
        fz_payload pl = {data, size};
        op_draw_sigma(&f, &pl);
        break;
    }
    default: {
        fz_payload pl = {data, size};
        op_distance(&f, &pl);
        break;
    }
    }
    return 0;
}
