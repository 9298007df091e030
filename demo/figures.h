/*
 * figures.h — the demo's PNG figures, drawn with cairo.
 *
 * demo.c computes the numbers (per-pixel losses and gradients of one heatmap plane);
 * figures.c turns them into pictures: the loss-comparison figure around one keypoint,
 * and a full heatmap plane with its colour scale.
 */
#ifndef DAFL_DEMO_FIGURES_H
#define DAFL_DEMO_FIGURES_H

#include <stddef.h>

/* The figure shows a crop of CROP_SIDE x CROP_SIDE pixels centred on one keypoint. */
#define CROP_HALF 16
#define CROP_SIDE (2 * CROP_HALF + 1)

/* The losses compared, in the figure's column order. */
enum { LOSS_BCE, LOSS_PLAIN_FOCAL, LOSS_PENALTY_FOCAL, LOSS_MSE, LOSS_KINDS };

/* Per-pixel values of one image/channel plane, each `plane height x width` floats. */
typedef struct plane_maps {
    const float *target;
    const float *hard_label;
    const float *probability;
    float *loss[LOSS_KINDS];
    float *gradient_magnitude[LOSS_KINDS]; /* |d loss / d logit| */
} plane_maps;

/* Where the crop lies in its plane. */
typedef struct crop {
    size_t height; /* of the plane the values come from */
    size_t width;
    long centre_x;
    long centre_y;
} crop;

typedef struct marker_positions {
    long keypoint_x, keypoint_y; /* in plane coordinates */
    long peak_x, peak_y;
} marker_positions;

/* Everything the loss-comparison figure shows. */
typedef struct figure_input {
    const plane_maps *maps;
    crop view;
    marker_positions markers;
    size_t image;
    size_t channel;
    long radius;
    float alpha;
    float beta;
    const char *const *footer; /* lines under the panels: the near-miss readout */
    size_t footer_lines;
} figure_input;

/* The figure: a row of inputs (target, prediction, hard label), then a row of per-pixel
 * losses and a row of gradient magnitudes, one column per loss, each row on one shared
 * log colour scale with its colour bar, and the crop sum under every panel.  Returns 0,
 * or -1 after printing why to stderr. */
int write_loss_figure(const char *path, const figure_input *input);

/* A whole plane of values in [0, 1] (grey: 0 black, 1 white), each pixel drawn as a
 * magnify x magnify block, under `title` and next to a colour scale from 0 to 1.
 * Returns 0, or -1 after printing why to stderr. */
int write_heatmap(const char *path, const float *values, size_t height, size_t width,
                  size_t magnify, const char *title);

/* "%.3g" of a value: how the figure and the printed table write loss values. */
void format_value(char *text, size_t capacity, double value);

#endif /* DAFL_DEMO_FIGURES_H */
