/*
 * figures.c — the demo's PNG figures, drawn with cairo (see figures.h).
 *
 * Value maps are painted as small images scaled up with nearest-neighbour filtering, so
 * every heatmap pixel stays a sharp block; text, markers and colour bars are vector
 * drawing, antialiased.  cairo's errors are sticky on the context, so drawing goes
 * ahead unchecked and one check before the file is written catches any failure.
 */
#include "figures.h"

#include <cairo.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>

/* ---- colours and value scales ------------------------------------------------------ */

typedef struct rgb {
    double r, g, b; /* 0 to 1 */
} rgb;

static const rgb colour_page = {1.0, 1.0, 1.0};
static const rgb colour_ink = {0.08, 0.08, 0.08};
static const rgb colour_muted_ink = {0.35, 0.35, 0.35};
static const rgb colour_outside_image = {0.5, 0.5, 0.5};
static const rgb colour_keypoint_marker = {0.0, 0.9, 1.0};
static const rgb colour_peak_marker = {0.24, 1.0, 0.24};
static const rgb colour_keypoint_ink = {0.0, 0.51, 0.67};
static const rgb colour_peak_ink = {0.0, 0.55, 0.0};

/* An approximation of the "inferno" colour map: black through purple and orange to pale
 * yellow, brightness rising monotonically, so dark = small and bright = large also in
 * grey print.  Linear interpolation between equally spaced anchors: the panels compute
 * it per pixel, the colour bar hands the same anchors to a cairo gradient. */
static const rgb inferno_anchors[] = {
    {0.0 / 255, 0.0 / 255, 4.0 / 255},       {87.0 / 255, 16.0 / 255, 110.0 / 255},
    {188.0 / 255, 55.0 / 255, 84.0 / 255},   {249.0 / 255, 142.0 / 255, 9.0 / 255},
    {252.0 / 255, 255.0 / 255, 164.0 / 255},
};
#define INFERNO_SEGMENTS (sizeof inferno_anchors / sizeof inferno_anchors[0] - 1)

static rgb inferno(double t)
{
    if (!(t > 0.0))
        t = 0.0; /* also NaN */
    if (t > 1.0)
        t = 1.0;
    double position = t * (double)INFERNO_SEGMENTS;
    size_t segment = (size_t)position;
    if (segment >= INFERNO_SEGMENTS)
        segment = INFERNO_SEGMENTS - 1;
    double fraction = position - (double)segment;
    rgb low = inferno_anchors[segment];
    rgb high = inferno_anchors[segment + 1];
    return (rgb){low.r + fraction * (high.r - low.r), low.g + fraction * (high.g - low.g),
                 low.b + fraction * (high.b - low.b)};
}

/* How values become colours: linear grey from 0 to 1, or the colour map over log10 of
 * the value from low_decade to high_decade (zero and below: the bottom colour). */
typedef struct value_scale {
    int logarithmic;
    int low_decade;
    int high_decade;
} value_scale;

static const value_scale linear_scale = {0, 0, 0};

static rgb colour_of_value(double value, const value_scale *scale)
{
    if (!scale->logarithmic) {
        double t = value > 0.0 ? (value < 1.0 ? value : 1.0) : 0.0;
        return (rgb){t, t, t};
    }
    if (!(value > 0.0))
        return inferno(0.0);
    double t = (log10(value) - scale->low_decade) / (scale->high_decade - scale->low_decade);
    return inferno(t);
}

/* The colour at position t (0 bottom, 1 top) of a scale's bar. */
static rgb colour_of_bar(double t, const value_scale *scale)
{
    return scale->logarithmic ? inferno(t) : (rgb){t, t, t};
}

static void set_colour(cairo_t *cr, rgb colour)
{
    cairo_set_source_rgb(cr, colour.r, colour.g, colour.b);
}

/* ---- text ---------------------------------------------------------------------------- */

#define FONT_FAMILY "sans-serif"
#define TEXT_SIZE 14.0
#define TITLE_SIZE 19.0
#define LINE_HEIGHT 18

typedef enum text_weight { TEXT_REGULAR, TEXT_BOLD } text_weight;

static void set_font(cairo_t *cr, double size, text_weight weight)
{
    cairo_select_font_face(cr, FONT_FAMILY, CAIRO_FONT_SLANT_NORMAL,
                           weight == TEXT_BOLD ? CAIRO_FONT_WEIGHT_BOLD
                                               : CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(cr, size);
}

static double text_advance(cairo_t *cr, const char *text)
{
    cairo_text_extents_t extents;
    cairo_text_extents(cr, text, &extents);
    return extents.x_advance;
}

/* Text whose line box starts at `top` (so that callers lay out lines, not baselines),
 * with its left edge at x, its centre at x or its right edge at x. */
typedef enum text_anchor { ANCHOR_LEFT, ANCHOR_CENTRE, ANCHOR_RIGHT } text_anchor;

static void draw_text(cairo_t *cr, double x, double top, text_anchor anchor, rgb colour,
                      const char *text)
{
    cairo_font_extents_t font;
    cairo_font_extents(cr, &font);
    double width = text_advance(cr, text);
    double left = anchor == ANCHOR_LEFT ? x : anchor == ANCHOR_CENTRE ? x - width / 2 : x - width;
    set_colour(cr, colour);
    cairo_move_to(cr, left, top + font.ascent);
    cairo_show_text(cr, text);
}

/* ---- panels ---------------------------------------------------------------------------- */

/* The figure: a crop of CROP_SIDE x CROP_SIDE pixels, each drawn as a MAGNIFY x MAGNIFY
 * block, log colour scales spanning LOG_DECADES decades. */
#define MAGNIFY 7
#define PANEL_SIDE (CROP_SIDE * MAGNIFY)
#define LOG_DECADES 5

/* Paints `pixels` (width x height colours, row-major) magnified to cover the rectangle
 * at (x, y) of size width * magnify x height * magnify, each pixel a sharp block. */
static void paint_pixels(cairo_t *cr, double x, double y, size_t width, size_t height,
                         double magnify, rgb (*colour_at)(const void *, size_t, size_t),
                         const void *context)
{
    cairo_surface_t *image =
        cairo_image_surface_create(CAIRO_FORMAT_RGB24, (int)width, (int)height);
    if (cairo_surface_status(image) == CAIRO_STATUS_SUCCESS) {
        unsigned char *data = cairo_image_surface_get_data(image);
        size_t stride = (size_t)cairo_image_surface_get_stride(image);
        cairo_surface_flush(image);
        for (size_t row = 0; row < height; row++) {
            uint32_t *line = (uint32_t *)(void *)(data + row * stride);
            for (size_t column = 0; column < width; column++) {
                rgb colour = colour_at(context, row, column);
                line[column] = (uint32_t)lround(255.0 * colour.r) << 16 |
                               (uint32_t)lround(255.0 * colour.g) << 8 |
                               (uint32_t)lround(255.0 * colour.b);
            }
        }
        cairo_surface_mark_dirty(image);
    }
    cairo_save(cr);
    cairo_translate(cr, x, y);
    cairo_scale(cr, magnify, magnify);
    cairo_set_source_surface(cr, image, 0, 0); /* an error surface puts cr in error */
    cairo_pattern_set_filter(cairo_get_source(cr), CAIRO_FILTER_NEAREST);
    cairo_rectangle(cr, 0, 0, (double)width, (double)height);
    cairo_fill(cr);
    cairo_restore(cr);
    cairo_surface_destroy(image);
}

typedef struct crop_colours {
    const float *values;
    const crop *view;
    const value_scale *scale;
} crop_colours;

static int crop_pixel(const crop *view, long crop_row, long crop_column, size_t *index)
{
    long row = view->centre_y - CROP_HALF + crop_row;
    long column = view->centre_x - CROP_HALF + crop_column;
    if (row < 0 || column < 0 || row >= (long)view->height || column >= (long)view->width)
        return 0;
    *index = (size_t)row * view->width + (size_t)column;
    return 1;
}

static rgb crop_colour_at(const void *context, size_t row, size_t column)
{
    const crop_colours *colours = context;
    size_t index;
    if (!crop_pixel(colours->view, (long)row, (long)column, &index))
        return colour_outside_image;
    return colour_of_value(colours->values[index], colours->scale);
}

/* Largest value, and the sum, over the part of the crop inside the image. */
static void crop_extent(const float *values, const crop *view, double *largest, double *sum)
{
    *largest = 0.0;
    *sum = 0.0;
    for (long row = 0; row < CROP_SIDE; row++) {
        for (long column = 0; column < CROP_SIDE; column++) {
            size_t index;
            if (!crop_pixel(view, row, column, &index))
                continue;
            double value = values[index];
            *sum += value;
            if (value > *largest)
                *largest = value;
        }
    }
}

/* A log scale covering LOG_DECADES decades and topped by the decade above the largest
 * value of the row, so all panels of a row share one scale. */
static value_scale shared_log_scale(float *const *maps, const crop *view)
{
    double row_largest = 0.0;
    for (int kind = 0; kind < LOSS_KINDS; kind++) {
        double largest, sum;
        crop_extent(maps[kind], view, &largest, &sum);
        if (largest > row_largest)
            row_largest = largest;
    }
    int top = row_largest > 0.0 ? (int)ceil(log10(row_largest)) : 0;
    return (value_scale){1, top - LOG_DECADES, top};
}

/* A square outline of `side` pixels centred on (centre_x, centre_y), 2 px wide. */
static void outline_square(cairo_t *cr, double centre_x, double centre_y, double side,
                           rgb colour)
{
    set_colour(cr, colour);
    cairo_set_line_width(cr, 2.0);
    cairo_rectangle(cr, centre_x - side / 2, centre_y - side / 2, side, side);
    cairo_stroke(cr);
}

static void mark_pixel(cairo_t *cr, double panel_x, double panel_y, const crop *view,
                       long plane_x, long plane_y, rgb colour)
{
    long crop_column = plane_x - (view->centre_x - CROP_HALF);
    long crop_row = plane_y - (view->centre_y - CROP_HALF);
    if (crop_column < 0 || crop_row < 0 || crop_column >= CROP_SIDE || crop_row >= CROP_SIDE)
        return;
    /* Outline just outside the pixel's block, so its own colour stays visible. */
    outline_square(cr, panel_x + ((double)crop_column + 0.5) * MAGNIFY,
                   panel_y + ((double)crop_row + 0.5) * MAGNIFY, MAGNIFY + 2, colour);
}

static void frame(cairo_t *cr, double x, double y, double width, double height)
{
    set_colour(cr, colour_ink);
    cairo_set_line_width(cr, 1.0);
    cairo_rectangle(cr, x - 0.5, y - 0.5, width + 1, height + 1);
    cairo_stroke(cr);
}

static void draw_panel(cairo_t *cr, double x, double y, const float *values, const crop *view,
                       const value_scale *scale, const marker_positions *markers)
{
    crop_colours colours = {values, view, scale};
    paint_pixels(cr, x, y, CROP_SIDE, CROP_SIDE, MAGNIFY, crop_colour_at, &colours);
    mark_pixel(cr, x, y, view, markers->peak_x, markers->peak_y, colour_peak_marker);
    mark_pixel(cr, x, y, view, markers->keypoint_x, markers->keypoint_y,
               colour_keypoint_marker);
    frame(cr, x, y, PANEL_SIDE, PANEL_SIDE);
}

/* ---- colour bars ----------------------------------------------------------------------- */

#define BAR_WIDTH 18
#define TICK_LENGTH 5
#define BAR_LABEL_WIDTH 52

/* A vertical bar of `height` pixels, the bottom of the scale at the bottom, with ticks
 * at each decade (log scale: 10 with a raised exponent) or at each quarter (linear). */
static void draw_colour_bar(cairo_t *cr, double x, double y, double height,
                            const value_scale *scale)
{
    cairo_pattern_t *gradient = cairo_pattern_create_linear(0, y + height, 0, y);
    size_t stops = scale->logarithmic ? INFERNO_SEGMENTS : 1;
    for (size_t stop = 0; stop <= stops; stop++) {
        double t = (double)stop / (double)stops;
        rgb colour = colour_of_bar(t, scale);
        cairo_pattern_add_color_stop_rgb(gradient, t, colour.r, colour.g, colour.b);
    }
    cairo_set_source(cr, gradient);
    cairo_rectangle(cr, x, y, BAR_WIDTH, height);
    cairo_fill(cr);
    cairo_pattern_destroy(gradient);
    frame(cr, x, y, BAR_WIDTH, height);

    int ticks = scale->logarithmic ? scale->high_decade - scale->low_decade : 4;
    set_font(cr, TEXT_SIZE, TEXT_REGULAR);
    cairo_font_extents_t font;
    cairo_font_extents(cr, &font);
    for (int tick = 0; tick <= ticks; tick++) {
        double t = (double)tick / ticks;
        double tick_y = y + (1.0 - t) * height;
        set_colour(cr, colour_ink);
        cairo_set_line_width(cr, 1.0);
        cairo_move_to(cr, x + BAR_WIDTH, tick_y);
        cairo_line_to(cr, x + BAR_WIDTH + TICK_LENGTH, tick_y);
        cairo_stroke(cr);

        double label_x = x + BAR_WIDTH + TICK_LENGTH + 3;
        double label_top = tick_y - (font.ascent + font.descent) / 2;
        char label[16];
        if (!scale->logarithmic) {
            snprintf(label, sizeof label, "%g", t);
            draw_text(cr, label_x, label_top, ANCHOR_LEFT, colour_ink, label);
            continue;
        }
        draw_text(cr, label_x, label_top, ANCHOR_LEFT, colour_ink, "10");
        double exponent_x = label_x + text_advance(cr, "10");
        snprintf(label, sizeof label, "%d", scale->low_decade + tick);
        set_font(cr, TEXT_SIZE * 0.7, TEXT_REGULAR);
        draw_text(cr, exponent_x, label_top - 0.3 * font.ascent, ANCHOR_LEFT, colour_ink, label);
        set_font(cr, TEXT_SIZE, TEXT_REGULAR);
    }
}

/* ---- the loss-comparison figure ---------------------------------------------------------- */

/* Layout, in pixels. */
#define FIGURE_MARGIN 24
#define ROW_LABEL_WIDTH 124
#define COLUMN_GAP 16
#define HEADER_LINES 3
#define HEADER_HEIGHT (HEADER_LINES * LINE_HEIGHT + 6)
#define CAPTION_HEIGHT (LINE_HEIGHT + 8)
#define ROW_GAP 20
#define BAR_GAP 18
#define TITLE_HEIGHT (3 * LINE_HEIGHT + 16)
#define FIGURE_COLUMNS 4

static double column_x(int column)
{
    return FIGURE_MARGIN + ROW_LABEL_WIDTH + column * (PANEL_SIDE + COLUMN_GAP);
}

/* Up to HEADER_LINES centred lines over a column: a bold name, then muted details. */
static void draw_column_header(cairo_t *cr, int column, double y, const char *const lines[])
{
    double centre = column_x(column) + PANEL_SIDE / 2.0;
    for (int line = 0; line < HEADER_LINES; line++) {
        if (lines[line] == NULL)
            continue;
        set_font(cr, TEXT_SIZE, line == 0 ? TEXT_BOLD : TEXT_REGULAR);
        draw_text(cr, centre, y + line * LINE_HEIGHT, ANCHOR_CENTRE,
                  line == 0 ? colour_ink : colour_muted_ink, lines[line]);
    }
}

static void draw_row_label(cairo_t *cr, double y, const char *first, const char *second)
{
    double middle = y + PANEL_SIDE / 2.0;
    set_font(cr, TEXT_SIZE, TEXT_BOLD);
    draw_text(cr, FIGURE_MARGIN, middle - LINE_HEIGHT, ANCHOR_LEFT, colour_ink, first);
    set_font(cr, TEXT_SIZE, TEXT_REGULAR);
    if (second != NULL)
        draw_text(cr, FIGURE_MARGIN, middle + 2, ANCHOR_LEFT, colour_muted_ink, second);
}

void format_value(char *text, size_t capacity, double value)
{
    snprintf(text, capacity, "%.3g", value);
}

/* The fourth cell of the inputs row explains the markers and the colour scales. */
static void draw_key(cairo_t *cr, double x, double y)
{
    set_font(cr, TEXT_SIZE, TEXT_REGULAR);
    double marker_side = MAGNIFY + 2;
    outline_square(cr, x + marker_side / 2 + 1, y + LINE_HEIGHT / 2.0, marker_side,
                   colour_keypoint_marker);
    draw_text(cr, x + marker_side + 10, y, ANCHOR_LEFT, colour_keypoint_ink,
              "keypoint, y = 1");
    y += LINE_HEIGHT + 4;
    outline_square(cr, x + marker_side / 2 + 1, y + LINE_HEIGHT / 2.0, marker_side,
                   colour_peak_marker);
    draw_text(cr, x + marker_side + 10, y, ANCHOR_LEFT, colour_peak_ink, "predicted peak");
    y += LINE_HEIGHT + 14;
    static const char *const explanation[] = {
        "Loss, gradient: log10",  "colour scale, shared",  "across each row",
        "",                       "Gradient: size of",     "d loss / d x, x = logit",
    };
    for (size_t line = 0; line < sizeof explanation / sizeof explanation[0]; line++) {
        draw_text(cr, x, y, ANCHOR_LEFT, colour_muted_ink, explanation[line]);
        y += LINE_HEIGHT;
    }
}

static double draw_inputs_row(cairo_t *cr, double y, const figure_input *input)
{
    const char *const headers[3][HEADER_LINES] = {
        {"Target y", "Gaussian around", "the keypoint"},
        {"Prediction", "p = sigmoid(x)", "peak misplaced"},
        {"Hard label", "what plain BCE", "sees"},
    };
    const float *values[3] = {input->maps->target, input->maps->probability,
                              input->maps->hard_label};
    double panel_y = y + HEADER_HEIGHT;
    draw_row_label(cr, panel_y, "Inputs", "0 to 1");
    for (int column = 0; column < 3; column++) {
        draw_column_header(cr, column, y, headers[column]);
        draw_panel(cr, column_x(column), panel_y, values[column], &input->view, &linear_scale,
                   &input->markers);
    }
    draw_key(cr, column_x(3), panel_y + 4);
    return panel_y + PANEL_SIDE + ROW_GAP;
}

static double draw_loss_row(cairo_t *cr, double y, const figure_input *input,
                            float *const *maps, const char *label_first,
                            const char *label_second)
{
    char plain_parameters[48];
    char penalty_parameters[48];
    snprintf(plain_parameters, sizeof plain_parameters, "alpha %g, beta 0", input->alpha);
    snprintf(penalty_parameters, sizeof penalty_parameters, "alpha %g, beta %g", input->alpha,
             input->beta);
    const char *const headers[LOSS_KINDS][HEADER_LINES] = {
        [LOSS_BCE] = {"BCE", "hard labels", NULL},
        [LOSS_PLAIN_FOCAL] = {"Focal", "no distance term", plain_parameters},
        [LOSS_PENALTY_FOCAL] = {"Distance-aware", "penalty-reduced focal", penalty_parameters},
        [LOSS_MSE] = {"MSE", "sigmoid(x) vs y", NULL},
    };
    double panel_y = y + HEADER_HEIGHT;
    draw_row_label(cr, panel_y, label_first, label_second);
    value_scale scale = shared_log_scale(maps, &input->view);
    for (int kind = 0; kind < LOSS_KINDS; kind++) {
        draw_column_header(cr, kind, y, headers[kind]);
        draw_panel(cr, column_x(kind), panel_y, maps[kind], &input->view, &scale,
                   &input->markers);
        double largest, sum;
        crop_extent(maps[kind], &input->view, &largest, &sum);
        char value[32];
        char caption[64];
        format_value(value, sizeof value, sum);
        snprintf(caption, sizeof caption, "crop sum %s", value);
        set_font(cr, TEXT_SIZE, TEXT_REGULAR);
        draw_text(cr, column_x(kind) + PANEL_SIDE / 2.0, panel_y + PANEL_SIDE + 6,
                  ANCHOR_CENTRE, colour_ink, caption);
    }
    draw_colour_bar(cr, column_x(FIGURE_COLUMNS) - COLUMN_GAP + BAR_GAP, panel_y, PANEL_SIDE,
                    &scale);
    return panel_y + PANEL_SIDE + CAPTION_HEIGHT + ROW_GAP;
}

static void draw_title(cairo_t *cr, const figure_input *input)
{
    double y = FIGURE_MARGIN;
    set_font(cr, TITLE_SIZE, TEXT_BOLD);
    draw_text(cr, FIGURE_MARGIN, y, ANCHOR_LEFT, colour_ink,
              "Where each loss punishes a near miss");
    y += LINE_HEIGHT + 10;
    long miss_x = input->markers.peak_x - input->markers.keypoint_x;
    long miss_y = input->markers.peak_y - input->markers.keypoint_y;
    char line[200];
    snprintf(line, sizeof line,
             "Image %zu, channel %zu: keypoint at x = %ld, y = %ld, Gaussian radius %ld, "
             "predicted peak %.1f px away",
             input->image, input->channel, input->markers.keypoint_x,
             input->markers.keypoint_y, input->radius,
             sqrt((double)(miss_x * miss_x + miss_y * miss_y)));
    set_font(cr, TEXT_SIZE, TEXT_REGULAR);
    draw_text(cr, FIGURE_MARGIN, y, ANCHOR_LEFT, colour_muted_ink, line);
    y += LINE_HEIGHT;
    snprintf(line, sizeof line, "%d x %d pixel crop, each pixel drawn %d x %d", CROP_SIDE,
             CROP_SIDE, MAGNIFY, MAGNIFY);
    draw_text(cr, FIGURE_MARGIN, y, ANCHOR_LEFT, colour_muted_ink, line);
}

/* Writes the surface drawn through cr, or says why it cannot. */
static int finish_png(cairo_t *cr, cairo_surface_t *surface, const char *path)
{
    cairo_status_t status = cairo_status(cr);
    if (status == CAIRO_STATUS_SUCCESS)
        status = cairo_surface_write_to_png(surface, path);
    if (status != CAIRO_STATUS_SUCCESS)
        fprintf(stderr, "dafl-demo: cannot write %s: %s\n", path,
                cairo_status_to_string(status));
    cairo_destroy(cr);
    cairo_surface_destroy(surface);
    return status == CAIRO_STATUS_SUCCESS ? 0 : -1;
}

/* A white RGB page of width x height pixels and a context drawing on it. */
static cairo_t *create_page(int width, int height, cairo_surface_t **surface)
{
    *surface = cairo_image_surface_create(CAIRO_FORMAT_RGB24, width, height);
    cairo_t *cr = cairo_create(*surface); /* an error context if the surface failed */
    set_colour(cr, colour_page);
    cairo_paint(cr);
    return cr;
}

int write_loss_figure(const char *path, const figure_input *input)
{
    double width = column_x(FIGURE_COLUMNS) - COLUMN_GAP + BAR_GAP + BAR_WIDTH + TICK_LENGTH +
                   BAR_LABEL_WIDTH + FIGURE_MARGIN;
    double inputs_row_height = HEADER_HEIGHT + PANEL_SIDE + ROW_GAP;
    double loss_row_height = HEADER_HEIGHT + PANEL_SIDE + CAPTION_HEIGHT + ROW_GAP;
    double height = FIGURE_MARGIN + TITLE_HEIGHT + inputs_row_height + 2 * loss_row_height +
                    (double)input->footer_lines * LINE_HEIGHT + FIGURE_MARGIN;
    cairo_surface_t *surface;
    cairo_t *cr = create_page((int)width, (int)height, &surface);

    draw_title(cr, input);
    double y = FIGURE_MARGIN + TITLE_HEIGHT;
    y = draw_inputs_row(cr, y, input);
    y = draw_loss_row(cr, y, input, input->maps->loss, "Loss", "per pixel");
    y = draw_loss_row(cr, y, input, input->maps->gradient_magnitude, "Gradient", "magnitude");
    for (size_t line = 0; line < input->footer_lines; line++) {
        set_font(cr, TEXT_SIZE, line == 0 ? TEXT_BOLD : TEXT_REGULAR);
        draw_text(cr, FIGURE_MARGIN, y, ANCHOR_LEFT, line == 0 ? colour_ink : colour_muted_ink,
                  input->footer[line]);
        y += LINE_HEIGHT;
    }
    return finish_png(cr, surface, path);
}

/* ---- a whole heatmap plane ---------------------------------------------------------------- */

typedef struct plane_colours {
    const float *values;
    size_t width;
} plane_colours;

static rgb plane_colour_at(const void *context, size_t row, size_t column)
{
    const plane_colours *plane = context;
    return colour_of_value(plane->values[row * plane->width + column], &linear_scale);
}

/* Layout of a heatmap file around its magnified plane; cairo's image surfaces have at
 * most this many pixels a side. */
#define CAIRO_MAX_SIDE 32767
#define HEATMAP_MARGIN 16
#define HEATMAP_TITLE_HEIGHT (LINE_HEIGHT + 10)

int write_heatmap(const char *path, const float *values, size_t height, size_t width,
                  size_t magnify, const char *title)
{
    double image_width = (double)width * (double)magnify;
    double image_height = (double)height * (double)magnify;
    double bar_x = HEATMAP_MARGIN + image_width + BAR_GAP;
    double page_width = bar_x + BAR_WIDTH + TICK_LENGTH + BAR_LABEL_WIDTH;
    double page_height = HEATMAP_MARGIN + HEATMAP_TITLE_HEIGHT + image_height + HEATMAP_MARGIN;
    if (page_width > CAIRO_MAX_SIDE || page_height > CAIRO_MAX_SIDE) {
        fprintf(stderr, "dafl-demo: cannot write %s: a %zu x %zu plane does not fit in an "
                        "image (cairo draws at most %d pixels a side)\n",
                path, height, width, CAIRO_MAX_SIDE);
        return -1;
    }
    cairo_surface_t *surface;
    cairo_t *cr = create_page((int)page_width, (int)page_height, &surface);

    set_font(cr, TEXT_SIZE, TEXT_BOLD);
    draw_text(cr, HEATMAP_MARGIN, HEATMAP_MARGIN, ANCHOR_LEFT, colour_ink, title);
    double image_y = HEATMAP_MARGIN + HEATMAP_TITLE_HEIGHT;
    plane_colours plane = {values, width};
    paint_pixels(cr, HEATMAP_MARGIN, image_y, width, height, (double)magnify, plane_colour_at,
                 &plane);
    frame(cr, HEATMAP_MARGIN, image_y, image_width, image_height);
    draw_colour_bar(cr, bar_x, image_y, image_height, &linear_scale);
    return finish_png(cr, surface, path);
}
