/*
 * One Gaussian "stamp": the window and the per-pixel value of a CenterNet Gaussian, shared
 * by the single-plane drawing functions (src/targets.c) and the keypoint batch renderer and
 * fused loss (src/keypoints.c), so that every one of them computes each pixel with the same
 * operations and therefore the same bits.
 *
 * Both of CenterNet's styles are one formula on a window [x_first, x_end) x [y_first,
 * y_end) of pixel coordinates:
 *   dx = (x - ox) - fx,  dy = (y - oy) - fy,  q = dx^2 + dy^2     (all in double)
 *   g  = q == 0 ? 1 : exp(-q / two_sigma_sq),  g = 0 where g < cut
 *   value = (float)(g * scale)
 * "umich" (dafl_draw_gaussian): origin the integer centre, fx = fy = 0, the window
 * centre +- r, sigma = (2r+1)/6, cut = DBL_EPSILON (times max g = 1), scale = k.
 * "msra" (dafl_draw_gaussian_sigma): CenterNet's truncated window ul .. br-1 with the
 * kernel's peak at index x0 (see msra_window in targets.c), no cut, scale = 1 there.
 * "distance" (the distance-target form of dafl_distance_targets for one labelled pixel):
 * origin the integer centre, a window that covers every plane, sigma given, no cut,
 * two_sigma_sq = 2.0 * sigma * sigma as dafl_distance_targets forms it; q is then its
 * d2, exact in double for any heatmap side below 2^26.
 * q == 0 gives exp(-0) = 1 in "umich" anyway; in "msra" the special case avoids 0/0 for
 * a sigma whose square underflows.  Subtracting fx = 0 is exact, so "umich" pixels are
 * those of the reference expression exp(-(dx^2 + dy^2) / (2 sigma^2)) bit for bit.
 */
#ifndef DAFL_GAUSSIAN_STAMP_H
#define DAFL_GAUSSIAN_STAMP_H

#include <float.h>
#include <math.h>

/* Largest accepted |centre| coordinate and radius (or sigma) of the drawing functions.
 * With every value within 2^30, window corners such as cx +- 3 * sigma + 1 stay within
 * about 2^32, so all window arithmetic is exact in long long and no cast to an integer
 * type can overflow (which would be undefined behaviour).  A heatmap is never that large,
 * so the bound rejects nothing useful. */
#define DAFL_TARGETS_COORD_LIMIT (1LL << 30)

typedef struct dafl_stamp {
    long long x_first, x_end; /* columns x_first .. x_end-1 (not clipped) */
    long long y_first, y_end; /* rows */
    long long ox, oy;         /* integer origin of dx, dy                 */
    double fx, fy;            /* fractional offset of the peak from it    */
    double two_sigma_sq;
    double cut;               /* g below this is 0                        */
    double scale;             /* value = (float)(g * scale)               */
} dafl_stamp;

/* "umich": integer centre and radius, both within DAFL_TARGETS_COORD_LIMIT, peak k. */
static inline dafl_stamp dafl_stamp_umich(long long cx, long long cy, long long r, float k)
{
    dafl_stamp s;
    s.x_first = cx - r;
    s.x_end = cx + r + 1;
    s.y_first = cy - r;
    s.y_end = cy + r + 1;
    s.ox = cx;
    s.oy = cy;
    s.fx = s.fy = 0.0;
    const double sigma = (double)(2 * r + 1) / 6.0;
    s.two_sigma_sq = 2.0 * sigma * sigma;
    s.cut = DBL_EPSILON;
    s.scale = (double)k;
    return s;
}

/*
 * One axis of CenterNet's draw_msra_gaussian window, with Python's int() (truncation
 * towards zero, which a C cast also does) at the same places:
 *   t  = 3 sigma,  mu = trunc(c + 0.5),
 *   ul = trunc(mu - t),  br = trunc(mu + t + 1)      (pixels ul .. br-1),
 *   the kernel is indexed j = pixel - ul and centred at x0 = floor((2t + 1) / 2).
 * The peak therefore sits at pixel ul + x0, which is mu unless 3 sigma is fractional:
 * for a fractional part in (0, 1/2) it is mu - 1 when mu - t > 0, and for one in [1/2, 1)
 * it is mu + 1 when mu - t < 0 (truncation rounds ul up there).  These shifts are the
 * reference's and are kept so that targets match it pixel for pixel.  The reference's
 * "completely outside" test (ul >= extent or br < 0) draws nothing, which clipping the
 * window to the heatmap gives too.
 */
static inline void dafl_msra_axis(double c, double three_sigma, long long *first,
                                  long long *end, double *x0)
{
    const long long mu = (long long)(c + 0.5);
    *first = (long long)((double)mu - three_sigma);
    *end = (long long)((double)mu + three_sigma + 1.0);
    *x0 = floor((2.0 * three_sigma + 1.0) / 2.0);
}

/* "msra": real centre and sigma > 0, both within DAFL_TARGETS_COORD_LIMIT, peak k
 * (dafl_draw_gaussian_sigma is k = 1: g * 1 is g). */
static inline dafl_stamp dafl_stamp_msra(double cx, double cy, double sigma, float k)
{
    dafl_stamp s;
    const double three_sigma = 3.0 * sigma;
    dafl_msra_axis(cx, three_sigma, &s.x_first, &s.x_end, &s.fx);
    dafl_msra_axis(cy, three_sigma, &s.y_first, &s.y_end, &s.fy);
    s.ox = s.x_first;
    s.oy = s.y_first;
    s.two_sigma_sq = 2.0 * (sigma * sigma);
    s.cut = 0.0;
    s.scale = (double)k;
    return s;
}

/* "distance": integer centre within DAFL_TARGETS_COORD_LIMIT, sigma > 0 within it, peak
 * k; the window reaches 2^62 pixels from the centre, beyond any heatmap. */
static inline dafl_stamp dafl_stamp_distance(long long cx, long long cy, double sigma, float k)
{
    const long long reach = 1LL << 62;
    dafl_stamp s;
    s.x_first = s.y_first = -reach;
    s.x_end = s.y_end = reach;
    s.ox = cx;
    s.oy = cy;
    s.fx = s.fy = 0.0;
    s.two_sigma_sq = 2.0 * sigma * sigma;
    s.cut = 0.0;
    s.scale = (double)k;
    return s;
}

/* Element-wise max-merge of the stamp's pixels (x0 .. x1-1, y) into out[0 .. x1-x0),
 * keeping a NaN already there (numpy.maximum propagates NaN, and so does this).  The
 * caller clips x0, x1 and y to the window and to its buffer. */
static inline void dafl_stamp_merge_row(const dafl_stamp *s, long long y, long long x0,
                                        long long x1, float *out)
{
    const double dy = (double)(y - s->oy) - s->fy;
    for (long long x = x0; x < x1; ++x) {
        const double dx = (double)(x - s->ox) - s->fx;
        const double q = dx * dx + dy * dy;
        double g = q == 0.0 ? 1.0 : exp(-q / s->two_sigma_sq);
        if (g < s->cut) {
            g = 0.0;
        }
        const float v = (float)(g * s->scale);
        if (v > out[x - x0]) {
            out[x - x0] = v;
        }
    }
}

#endif
