/*
 * libFuzzer harness: dafl_render_heatmaps and dafl_penalty_focal_keypoints, on keypoint
 * lists with any field value (out-of-range images and channels, NaN and huge centres,
 * negative, fractional and NaN sizes, k outside [0, 1], unknown styles, wrong struct
 * sizes) and any shape (huge ones only where the call must refuse them).  Checked:
 *   - the status is a documented one, and OK exactly when every keypoint is valid as
 *     dafl.h describes it (checked here independently);
 *   - a failing call leaves every output untouched (sentinel bytes);
 *   - on success, the rendered batch equals zeroing it and calling dafl_draw_gaussian /
 *     dafl_draw_gaussian_sigma per keypoint, and dafl_distance_targets of a one-pixel mask
 *     for the distance form (where those functions can draw every keypoint: k = 1 for
 *     MSRA and DISTANCE, DISTANCE centres inside the plane; otherwise 0 <= value <= 1
 *     is all that is checked), and the loss, per-element loss, gradient and statistics equal
 *     dafl_render_heatmaps + dafl_penalty_focal bit for bit, on the ISA under test and on
 *     the scalar one.
 *
 * Bytes: op (even: render, odd: loss), ISA, n, c, h, w (fz_size), keypoint count (% 13),
 * struct-size variant, then per keypoint: image, channel (signed bytes), x, y, size
 * (fz_param_double), k (fz_param), style (fz_enum); then for the loss: input mode,
 * reduction (fz_enum), alpha, beta (fz_param), pointer flags; the payload makes logits.
 */
#include "fuzz_common.h"

#define MAX_BATCH 3
#define MAX_SIDE 40
#define MAX_POINTS 12

static int keypoint_valid(const dafl_keypoint *kp, size_t n, size_t c)
{
    const double limit = 1073741824.0;
    if (kp->image < 0 || (uint64_t)kp->image >= n || kp->channel < 0 ||
        (uint64_t)kp->channel >= c)
        return 0;
    if (!(fabs(kp->x) <= limit && fabs(kp->y) <= limit && kp->k >= 0.0f && kp->k <= 1.0f))
        return 0;
    if (kp->style == DAFL_KEYPOINT_UMICH)
        return kp->size >= 0.0 && kp->size <= limit && kp->size == floor(kp->size) &&
               kp->x == floor(kp->x) && kp->y == floor(kp->y);
    if (kp->style == DAFL_KEYPOINT_MSRA || kp->style == DAFL_KEYPOINT_DISTANCE)
        return kp->size > 0.0 && kp->size <= limit &&
               (kp->style == DAFL_KEYPOINT_MSRA || (kp->x == floor(kp->x) && kp->y == floor(kp->y)));
    return 0;
}

static void render_reference(const dafl_keypoint *kp, size_t count, size_t c, size_t h,
                             size_t w, size_t elements, float *out)
{
    memset(out, 0, elements * sizeof *out);
    for (size_t i = 0; i < count; i++) {
        float *plane = out + ((size_t)kp[i].image * c + (size_t)kp[i].channel) * h * w;
        dafl_status st = DAFL_OK;
        if (kp[i].style == DAFL_KEYPOINT_UMICH) {
            st = dafl_draw_gaussian(plane, h, w, (long)kp[i].x, (long)kp[i].y,
                                    (long)kp[i].size, kp[i].k);
        } else if (kp[i].style == DAFL_KEYPOINT_MSRA) {
            st = dafl_draw_gaussian_sigma(plane, h, w, kp[i].x, kp[i].y, kp[i].size);
        } else { /* the distance transform of a mask holding only this pixel */
            uint8_t *mask = calloc(h * w, 1);
            float *one = malloc(h * w * sizeof *one);
            FZ_REQUIRE(mask && one, "out of memory");
            mask[(size_t)kp[i].y * w + (size_t)kp[i].x] = 1;
            st = dafl_distance_targets(mask, h, w, kp[i].size, one);
            for (size_t p = 0; p < h * w; p++)
                plane[p] = one[p] > plane[p] ? one[p] : plane[p];
            free(mask);
            free(one);
        }
        FZ_REQUIRE(st == DAFL_OK, "reference drawing failed: %s", dafl_status_string(st));
    }
}

/* Whether a public one-plane function draws every keypoint: MSRA and DISTANCE ones need
 * k = 1, and DISTANCE ones a centre inside the plane (a pixel of a mask). */
static int has_unreferenced(const dafl_keypoint *kp, size_t count, size_t h, size_t w)
{
    for (size_t i = 0; i < count; i++) {
        if (kp[i].style != DAFL_KEYPOINT_UMICH && kp[i].k != 1.0f)
            return 1;
        if (kp[i].style == DAFL_KEYPOINT_DISTANCE &&
            !(kp[i].x >= 0 && kp[i].x < (double)w && kp[i].y >= 0 && kp[i].y < (double)h))
            return 1;
    }
    return 0;
}

static int same_floats(const float *a, const float *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (isnan(a[i]) && isnan(b[i]))
            continue;
        if (memcmp(&a[i], &b[i], sizeof a[i]) != 0)
            return 0;
    }
    return 1;
}

static int all_sentinel(const void *p, size_t bytes)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < bytes; i++)
        if (b[i] != 0xa5)
            return 0;
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz f = fz_begin(data, size);
    const int loss_op = fz_u8(&f) & 1;
    const dafl_isa isa = fz_select_isa(&f);
    int huge = 0;
    const size_t n = fz_size(&f, MAX_BATCH, &huge), c = fz_size(&f, MAX_BATCH + 1, &huge);
    const size_t h = fz_size(&f, MAX_SIDE, &huge), w = fz_size(&f, MAX_SIDE, &huge);
    const size_t count = fz_u8(&f) % (MAX_POINTS + 1);
    const uint8_t size_variant = fz_u8(&f);
    size_t planes = 0, plane = 0, elements = 0;
    const int overflow = __builtin_mul_overflow(n, c, &planes) ||
                         __builtin_mul_overflow(h, w, &plane) ||
                         __builtin_mul_overflow(planes, plane, &elements) ||
                         elements > SIZE_MAX / sizeof(float);
    if (overflow)
        elements = 0;
    if (huge && !overflow && elements > (size_t)MAX_BATCH * (MAX_BATCH + 1) * MAX_SIDE * MAX_SIDE)
        return 0; /* a huge shape the library would have to fill: not testable here */

    dafl_keypoint kp[MAX_POINTS + 1];
    for (size_t i = 0; i < count; i++) {
        dafl_keypoint_init(&kp[i]);
        kp[i].image = (int8_t)fz_u8(&f);
        kp[i].channel = (int8_t)fz_u8(&f);
        kp[i].x = fz_param_double(&f, 3.0);
        kp[i].y = fz_param_double(&f, 4.0);
        kp[i].size = fz_param_double(&f, 2.0);
        kp[i].k = fz_param(&f, 1.0f);
        kp[i].style = (dafl_keypoint_style)fz_enum(&f, DAFL_KEYPOINT_UMICH);
    }
    /* The caller's array, packed at a stride of `stride` bytes: sizeof(dafl_keypoint), or
     * an older (shorter) struct whose missing members take their defaults, or a size the
     * library must refuse (too small, too large, or differing between elements). */
    static unsigned char packed[(MAX_POINTS + 1) * 256]; /* strides up to 255 bytes */
    size_t stride = sizeof(dafl_keypoint);
    int sizes_ok = 1;
    if (count && size_variant % 8 == 1) {
        stride = size_variant; /* 1, 9, 17, ... 249 */
        sizes_ok = stride >= sizeof(size_t) && stride <= sizeof(dafl_keypoint);
    } else if (count && size_variant % 8 == 3) {
        stride = sizeof(dafl_keypoint) + 8;
        sizes_ok = 0;
    }
    const size_t copied = stride < sizeof(dafl_keypoint) ? stride : sizeof(dafl_keypoint);
    memset(packed, 0, sizeof packed);
    for (size_t i = 0; i < count; i++) {
        kp[i].struct_size = stride;
        memcpy(packed + i * stride, &kp[i], copied);
        /* what the library should see: the prefix over the defaults */
        dafl_keypoint seen;
        dafl_keypoint_init(&seen);
        if (copied >= sizeof(size_t))
            memcpy(&seen, &kp[i], copied);
        kp[i] = seen;
    }
    if (count > 1 && size_variant % 8 == 2) {
        const size_t other = sizeof(dafl_keypoint) - 8;
        memcpy(packed + (count - 1) * stride, &other, sizeof other);
        sizes_ok = 0;
    }
    int all_valid = 1;
    for (size_t i = 0; i < count; i++)
        all_valid &= keypoint_valid(&kp[i], n, c);
    const dafl_keypoint *points = count ? (const dafl_keypoint *)(const void *)packed : NULL;

    const size_t bytes = (elements ? elements : 1) * sizeof(float);
    float *out = malloc(bytes), *ref = malloc(bytes), *x = malloc(bytes);
    float *grad = malloc(bytes), *loss_el = malloc(bytes), *ref_grad = malloc(bytes),
          *ref_loss_el = malloc(bytes);
    FZ_REQUIRE(out && ref && x && grad && loss_el && ref_grad && ref_loss_el, "out of memory");
    memset(out, 0xa5, bytes);
    memset(grad, 0xa5, bytes);
    memset(loss_el, 0xa5, bytes);

    dafl_penalty_focal_params p;
    dafl_penalty_focal_params_init(&p);
    p.input_mode = (dafl_input_mode)fz_enum(&f, DAFL_INPUT_LOGITS);
    p.reduction = (dafl_reduction)fz_enum(&f, DAFL_REDUCTION_POSITIVES);
    p.alpha = fz_param(&f, 2.0f);
    p.beta = fz_param(&f, 4.0f);
    p.normalizer = 3.0f;
    const uint8_t ptrs = fz_u8(&f);
    fz_payload pl = fz_rest(&f);
    for (size_t i = 0; i < elements; i++)
        x[i] = fz_value(&pl, i, p.input_mode == DAFL_INPUT_PROBABILITIES ? FZ_VALUES_UNIT
                                                                        : FZ_VALUES_MIXED);

    if (!loss_op) {
        float *dst = ptrs & 1 ? NULL : out;
        dafl_status st = dafl_render_heatmaps(points, count, n, c, h, w, dst);
        FZ_REQUIRE_STATUS(st, "dafl_render_heatmaps");
        if (fz_verbose())
            fprintf(stderr, "render %zux%zux%zux%zu, %zu keypoints: %s\n", n, c, h, w, count,
                    dafl_status_string(st));
        if (st != DAFL_OK) {
            FZ_REQUIRE(all_sentinel(out, bytes), "failing dafl_render_heatmaps wrote");
        } else {
            FZ_REQUIRE(!overflow && sizes_ok && all_valid && (dst || !elements),
                       "dafl_render_heatmaps accepted a bad call");
            if (has_unreferenced(kp, count, h, w)) {
                for (size_t i = 0; i < elements; i++)
                    FZ_REQUIRE(out[i] >= 0.0f && out[i] <= 1.0f, "rendered %a", (double)out[i]);
            } else if (elements) {
                render_reference(kp, count, c, h, w, elements, ref);
                FZ_REQUIRE(same_floats(out, ref, elements), "render differs from drawing");
            }
        }
        if (st == DAFL_OK || st == DAFL_ERR_OUT_OF_MEMORY)
            goto done;
        FZ_REQUIRE(overflow || !sizes_ok || !all_valid || (!dst && elements),
                   "dafl_render_heatmaps refused a good call: %s", dafl_status_string(st));
        goto done;
    }

    {
        const int want_grad = !(ptrs & 2), none = p.reduction == DAFL_REDUCTION_NONE;
        float loss = 123.0f;
        dafl_stats stats;
        memset(&stats, 0xa5, sizeof stats);
        const float *in = ptrs & 4 ? NULL : x;
        dafl_status st = dafl_penalty_focal_keypoints(in, n, c, h, w, points, count,
                                                      &p, none ? loss_el : &loss,
                                                      want_grad ? grad : NULL, &stats);
        FZ_REQUIRE_STATUS(st, "dafl_penalty_focal_keypoints");
        if (fz_verbose())
            fprintf(stderr, "loss %zux%zux%zux%zu, %zu keypoints on %s: %s\n", n, c, h, w, count,
                    dafl_isa_name(isa), dafl_status_string(st));
        if (st != DAFL_OK) {
            FZ_REQUIRE(all_sentinel(grad, bytes) && all_sentinel(loss_el, bytes) &&
                           loss == 123.0f,
                       "failing dafl_penalty_focal_keypoints wrote");
            if (st == DAFL_ERR_OUT_OF_MEMORY || overflow || !sizes_ok || !all_valid ||
                (!in && elements))
                goto done;
            /* then only the parameters can be wrong: the dense call must refuse them too */
            memset(ref, 0, bytes);
            float scratch_loss;
            dafl_status dense = dafl_penalty_focal(in, ref, elements, &p,
                                                   none ? ref_loss_el : &scratch_loss,
                                                   want_grad ? ref_grad : NULL, NULL);
            FZ_REQUIRE(dense == st, "keypoint call: %s, dense call: %s", dafl_status_string(st),
                       dafl_status_string(dense));
            goto done;
        }
        FZ_REQUIRE(!overflow && sizes_ok && all_valid && (in || !elements),
                   "dafl_penalty_focal_keypoints accepted a bad call");
        /* the dense call on the rendered targets, on this ISA and on scalar */
        FZ_REQUIRE(dafl_render_heatmaps(points, count, n, c, h, w, ref) == DAFL_OK,
                   "render failed where the loss succeeded");
        for (int pass = 0; pass < 2; pass++) {
            if (pass == 1)
                dafl_set_isa(DAFL_ISA_SCALAR);
            float ref_loss = 321.0f;
            dafl_stats ref_stats;
            FZ_REQUIRE(dafl_penalty_focal(in, ref, elements, &p, none ? ref_loss_el : &ref_loss,
                                          want_grad ? ref_grad : NULL, &ref_stats) == DAFL_OK,
                       "the dense call failed where the keypoint call succeeded");
            FZ_REQUIRE(none || same_floats(&loss, &ref_loss, 1), "loss %a vs dense %a on %s",
                       (double)loss, (double)ref_loss, pass ? "scalar" : dafl_isa_name(isa));
            FZ_REQUIRE(!none || same_floats(loss_el, ref_loss_el, elements),
                       "per-element loss differs from dense");
            FZ_REQUIRE(!want_grad || same_floats(grad, ref_grad, elements),
                       "gradient differs from dense");
            double a = dafl_stats_loss_sum(&stats), b = dafl_stats_loss_sum(&ref_stats);
            FZ_REQUIRE((isnan(a) && isnan(b)) || memcmp(&a, &b, sizeof a) == 0,
                       "stats loss sum %a vs %a", a, b);
            FZ_REQUIRE(dafl_stats_positives(&stats) == dafl_stats_positives(&ref_stats) &&
                           dafl_stats_elements(&stats) == dafl_stats_elements(&ref_stats),
                       "stats counts differ");
        }
    }
done:
    dafl_set_isa(DAFL_ISA_AUTO);
    free(out);
    free(ref);
    free(x);
    free(grad);
    free(loss_el);
    free(ref_grad);
    free(ref_loss_el);
    return 0;
}
