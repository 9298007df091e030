/*
 * demo.c — dafl-demo: the distance-aware (penalty-reduced) focal loss on a synthetic
 * keypoint batch, next to binary cross-entropy and mean squared error.
 *
 * The program places keypoints pseudo-randomly (fixed seed), renders their Gaussian
 * targets with dafl_draw_gaussian, and synthesizes the output of a network that found
 * every keypoint but put its peak a couple of pixels off: a "near miss".  It prints the
 * losses over the batch and the speed of the fused focal forward+gradient call, and
 * writes PNG figures showing where each loss puts its penalty and its gradient around
 * one keypoint.  Run with --help for the options.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "dafl.h"
#include "figures.h"

/* ---- defaults and fixed choices --------------------------------------------------- */

#define DEFAULT_BATCH 8
#define DEFAULT_CHANNELS 17 /* the COCO person keypoints */
#define DEFAULT_SIZE 128    /* a 512x512 input at CenterNet's output stride 4 */
#define DEFAULT_KEYPOINTS 40
#define DEFAULT_SEED 1
#define DEFAULT_OUTPUT_DIR "demo-output"

/* Limits that keep every index and coordinate within a long and the run finite. */
#define MAX_IMAGE_SIDE 65536
#define MAX_BATCH_OR_CHANNELS 1000000
#define MAX_KEYPOINTS 1000000

/* CenterNet's choice for the Gaussian radius of an object box. */
#define MIN_BOX_OVERLAP 0.7

/* The synthetic network: a confident background, and at every keypoint a bump of the
 * right shape whose peak is displaced by a couple of pixels. */
#define BACKGROUND_LOGIT (-4.0)
#define NOISE_AMPLITUDE 0.25 /* uniform in [-a, a], deterministic per element */
#define PEAK_LOGIT_MIN 1.5
#define PEAK_LOGIT_MAX 3.5
#define MISS_DISTANCE_MIN 1.5
#define MISS_DISTANCE_MAX 3.0

/* Minimum time spent timing the fused call, so that timer resolution does not matter. */
#define MIN_TIMING_SECONDS 0.3

/* The radius the figure's keypoint should have (see choose_figure_keypoint). */
#define PREFERRED_FIGURE_RADIUS 8

/* The full-plane heatmap files are magnified to about this many pixels on a side. */
#define HEATMAP_FILE_SIDE 512

#define PATH_CAPACITY 4096

/* M_PI is not part of C11. */
#define TWO_PI 6.283185307179586

/* ---- options ----------------------------------------------------------------------- */

typedef struct demo_options {
    size_t batch;
    size_t channels;
    size_t height;
    size_t width;
    size_t keypoints;
    float alpha;
    float beta;
    uint64_t seed;
    const char *output_dir;
    int isa_requested; /* 0: leave the library's choice (DAFL_ISA or auto) alone */
    dafl_isa isa;
    int threads; /* 0: dafl's default, the online CPUs */
} demo_options;

typedef enum parse_result { PARSE_RUN, PARSE_HELP, PARSE_ERROR } parse_result;

static void print_usage(FILE *stream, const char *program)
{
    fprintf(stream,
            "Usage: %s [options]\n"
            "\n"
            "Renders a synthetic batch of keypoint heatmaps, a network output that misses\n"
            "each keypoint by a couple of pixels, and compares the penalty-reduced\n"
            "(distance-aware) focal loss with BCE and MSE on it: loss values, the speed of\n"
            "the fused focal forward+gradient call, and PNG files in DIR: one channel's\n"
            "target heatmap and prediction, and a figure of the per-pixel loss and\n"
            "gradient of each loss around one keypoint.\n"
            "\n"
            "Options:\n"
            "  -n, --batch N        images in the batch (default %d)\n"
            "  -c, --channels C     keypoint channels per image (default %d)\n"
            "  -s, --size HxW       heatmap size in pixels (default %dx%d)\n"
            "      --height H       heatmap height\n"
            "      --width W        heatmap width\n"
            "  -k, --keypoints K    keypoints placed over the whole batch, >= 1 (default %d)\n"
            "  -a, --alpha A        focal exponent on the prediction (default 2)\n"
            "  -b, --beta B         exponent of the distance factor (default 4)\n"
            "  -S, --seed S         seed of the synthetic data (default %d)\n"
            "  -o, --output DIR     directory for the PNG files, created if missing\n"
            "                       (default %s)\n"
            "  -i, --isa NAME       kernels: scalar, avx2, avx512, neon or auto\n"
            "                       (default: the DAFL_ISA environment variable, else auto)\n"
            "  -t, --threads T      threads of the loss calls, 1 to %d (default: the\n"
            "                       machine's online CPUs)\n"
            "  -h, --help           show this help\n",
            program, DEFAULT_BATCH, DEFAULT_CHANNELS, DEFAULT_SIZE, DEFAULT_SIZE,
            DEFAULT_KEYPOINTS, DEFAULT_SEED, DEFAULT_OUTPUT_DIR, DAFL_MAX_THREADS);
}

static int parse_unsigned(const char *text, uint64_t min, uint64_t max, uint64_t *value)
{
    /* strtoull accepts a sign and wraps negative numbers around; refuse them here. */
    if (text[0] < '0' || text[0] > '9')
        return -1;
    errno = 0;
    char *end = NULL;
    unsigned long long parsed = strtoull(text, &end, 10);
    if (errno != 0 || *end != '\0' || parsed < min || parsed > max)
        return -1;
    *value = (uint64_t)parsed;
    return 0;
}

static int parse_count(const char *text, size_t min, size_t max, size_t *value)
{
    uint64_t parsed = 0;
    if (parse_unsigned(text, min, max, &parsed) != 0)
        return -1;
    *value = (size_t)parsed;
    return 0;
}

static int parse_finite_float(const char *text, float *value)
{
    errno = 0;
    char *end = NULL;
    float parsed = strtof(text, &end);
    if (end == text || *end != '\0' || errno != 0 || !isfinite(parsed))
        return -1;
    *value = parsed;
    return 0;
}

static int parse_size(const char *text, size_t *height, size_t *width)
{
    const char *separator = strpbrk(text, "xX");
    if (separator == NULL || separator == text)
        return -1;
    char height_text[32];
    size_t height_length = (size_t)(separator - text);
    if (height_length >= sizeof height_text)
        return -1;
    memcpy(height_text, text, height_length);
    height_text[height_length] = '\0';
    if (parse_count(height_text, 1, MAX_IMAGE_SIDE, height) != 0)
        return -1;
    return parse_count(separator + 1, 1, MAX_IMAGE_SIDE, width);
}

static int parse_isa(const char *text, dafl_isa *isa)
{
    static const dafl_isa known[] = {DAFL_ISA_AUTO, DAFL_ISA_SCALAR, DAFL_ISA_AVX2,
                                     DAFL_ISA_AVX512, DAFL_ISA_NEON};
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
        if (strcmp(text, dafl_isa_name(known[i])) == 0) {
            *isa = known[i];
            return 0;
        }
    }
    return -1;
}

enum { OPTION_HEIGHT = 256, OPTION_WIDTH };

static const struct option long_options[] = {
    {"batch", required_argument, NULL, 'n'},
    {"channels", required_argument, NULL, 'c'},
    {"size", required_argument, NULL, 's'},
    {"height", required_argument, NULL, OPTION_HEIGHT},
    {"width", required_argument, NULL, OPTION_WIDTH},
    {"keypoints", required_argument, NULL, 'k'},
    {"alpha", required_argument, NULL, 'a'},
    {"beta", required_argument, NULL, 'b'},
    {"seed", required_argument, NULL, 'S'},
    {"output", required_argument, NULL, 'o'},
    {"isa", required_argument, NULL, 'i'},
    {"threads", required_argument, NULL, 't'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static const char *long_option_name(int option)
{
    for (size_t i = 0; long_options[i].name != NULL; i++) {
        if (long_options[i].val == option)
            return long_options[i].name;
    }
    return "?";
}

static parse_result parse_options(int argc, char **argv, demo_options *options)
{
    const char *program = argc > 0 ? argv[0] : "dafl-demo";

    *options = (demo_options){
        .batch = DEFAULT_BATCH,
        .channels = DEFAULT_CHANNELS,
        .height = DEFAULT_SIZE,
        .width = DEFAULT_SIZE,
        .keypoints = DEFAULT_KEYPOINTS,
        .alpha = 2.0f,
        .beta = 4.0f,
        .seed = DEFAULT_SEED,
        .output_dir = DEFAULT_OUTPUT_DIR,
        .isa_requested = 0,
        .isa = DAFL_ISA_AUTO,
        .threads = 0,
    };

    int option;
    while ((option = getopt_long(argc, argv, "n:c:s:k:a:b:S:o:i:t:h", long_options, NULL)) !=
           -1) {
        int bad = 0;
        switch (option) {
        case 'n':
            bad = parse_count(optarg, 1, MAX_BATCH_OR_CHANNELS, &options->batch);
            break;
        case 'c':
            bad = parse_count(optarg, 1, MAX_BATCH_OR_CHANNELS, &options->channels);
            break;
        case 's':
            bad = parse_size(optarg, &options->height, &options->width);
            break;
        case OPTION_HEIGHT:
            bad = parse_count(optarg, 1, MAX_IMAGE_SIDE, &options->height);
            break;
        case OPTION_WIDTH:
            bad = parse_count(optarg, 1, MAX_IMAGE_SIDE, &options->width);
            break;
        case 'k':
            bad = parse_count(optarg, 1, MAX_KEYPOINTS, &options->keypoints);
            break;
        case 'a':
            bad = parse_finite_float(optarg, &options->alpha);
            break;
        case 'b':
            bad = parse_finite_float(optarg, &options->beta);
            break;
        case 'S':
            bad = parse_unsigned(optarg, 0, UINT64_MAX, &options->seed);
            break;
        case 'o':
            bad = optarg[0] == '\0' ? -1 : 0;
            options->output_dir = optarg;
            break;
        case 'i':
            bad = parse_isa(optarg, &options->isa);
            options->isa_requested = 1;
            break;
        case 't': {
            size_t threads = 0;
            bad = parse_count(optarg, 1, DAFL_MAX_THREADS, &threads);
            options->threads = (int)threads;
            break;
        }
        case 'h':
            print_usage(stdout, program);
            return PARSE_HELP;
        default: /* getopt_long has already named the unknown option */
            fprintf(stderr, "Try '%s --help'.\n", program);
            return PARSE_ERROR;
        }
        if (bad) {
            fprintf(stderr, "%s: invalid value '%s' for --%s\n", program, optarg,
                    long_option_name(option));
            fprintf(stderr, "Try '%s --help'.\n", program);
            return PARSE_ERROR;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "%s: unexpected argument '%s'\nTry '%s --help'.\n", program,
                argv[optind], program);
        return PARSE_ERROR;
    }
    return PARSE_RUN;
}

/* ---- deterministic pseudo-random numbers ------------------------------------------- */

/* SplitMix64: tiny, fast, and the same sequence on every platform for a given seed. */
static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

static uint64_t random_next(uint64_t *state)
{
    *state += 0x9e3779b97f4a7c15u;
    return mix64(*state);
}

/* Uniform in [0, 1) with 53 random bits. */
static double random_unit(uint64_t *state)
{
    return (double)(random_next(state) >> 11) * 0x1.0p-53;
}

static double random_between(uint64_t *state, double low, double high)
{
    return low + (high - low) * random_unit(state);
}

static size_t random_below(uint64_t *state, size_t bound)
{
    size_t value = (size_t)(random_unit(state) * (double)bound);
    return value < bound ? value : bound - 1;
}

/* Noise that depends only on the seed and the element index, not on the order in which
 * elements are visited. */
static double element_noise(uint64_t seed, size_t index)
{
    uint64_t bits = mix64(seed * 0x9e3779b97f4a7c15u + (uint64_t)index);
    double unit = (double)(bits >> 11) * 0x1.0p-53;
    return NOISE_AMPLITUDE * (2.0 * unit - 1.0);
}

/* ---- the synthetic batch ----------------------------------------------------------- */

typedef struct keypoint {
    size_t image;
    size_t channel;
    long x; /* the true keypoint: the target is 1.0 exactly here */
    long y;
    long radius;
    long predicted_x; /* where the synthetic network puts its peak */
    long predicted_y;
    double peak_logit;
} keypoint;

typedef struct synthetic_batch {
    size_t images;
    size_t channels;
    size_t height;
    size_t width;
    size_t plane; /* height * width */
    size_t count; /* all elements */
    float *target;     /* Gaussian heatmaps, 1.0 at each keypoint */
    float *hard_label; /* 1.0 at each keypoint, 0 elsewhere: what plain BCE is given */
    float *logits;     /* the synthetic network output */
    float *probability;
    float *gradient; /* scratch for the loss calls */
    keypoint *keypoints;
    size_t keypoint_count;
} synthetic_batch;

static void free_batch(synthetic_batch *batch)
{
    free(batch->target);
    free(batch->hard_label);
    free(batch->logits);
    free(batch->probability);
    free(batch->gradient);
    free(batch->keypoints);
}

static size_t plane_offset(const synthetic_batch *batch, size_t image, size_t channel)
{
    return (image * batch->channels + channel) * batch->plane;
}

static int allocate_batch(const demo_options *options, synthetic_batch *batch)
{
    *batch = (synthetic_batch){
        .images = options->batch,
        .channels = options->channels,
        .height = options->height,
        .width = options->width,
        .keypoint_count = options->keypoints,
    };
    /* The option limits keep each factor small, but their product can still overflow. */
    if (batch->width > SIZE_MAX / batch->height ||
        batch->channels > SIZE_MAX / batch->images) {
        fprintf(stderr, "dafl-demo: a batch of %zu x %zu x %zux%zu is too large\n",
                batch->images, batch->channels, batch->height, batch->width);
        return -1;
    }
    size_t plane = batch->height * batch->width;
    size_t planes = batch->images * batch->channels;
    if (plane > SIZE_MAX / sizeof(float) / planes) {
        fprintf(stderr, "dafl-demo: a batch of %zu x %zu x %zux%zu is too large\n",
                batch->images, batch->channels, batch->height, batch->width);
        return -1;
    }
    batch->plane = plane;
    batch->count = planes * plane;

    batch->target = calloc(batch->count, sizeof(float));
    batch->hard_label = malloc(batch->count * sizeof(float));
    batch->logits = calloc(batch->count, sizeof(float));
    batch->probability = malloc(batch->count * sizeof(float));
    batch->gradient = malloc(batch->count * sizeof(float));
    batch->keypoints = malloc(batch->keypoint_count * sizeof(keypoint));
    if (batch->target == NULL || batch->hard_label == NULL || batch->logits == NULL ||
        batch->probability == NULL || batch->gradient == NULL || batch->keypoints == NULL) {
        fprintf(stderr, "dafl-demo: out of memory for a batch of %zu elements\n",
                batch->count);
        free_batch(batch);
        return -1;
    }
    return 0;
}

/* Gaussian sigma of a CenterNet "umich" target of this radius: diameter / 6. */
static double target_sigma(long radius)
{
    return (2.0 * (double)radius + 1.0) / 6.0;
}

static dafl_status place_keypoints(synthetic_batch *batch, uint64_t seed)
{
    uint64_t state = seed;
    /* Boxes scale with the heatmap: 8 to 32 pixels on a side for 128x128, which gives
     * radii of about 2 to 8, as for people in CenterNet's output at stride 4. */
    double short_side = (double)(batch->height < batch->width ? batch->height : batch->width);
    double box_min = fmax(2.0, short_side / 16.0);
    double box_max = fmax(box_min, short_side / 4.0);
    for (size_t i = 0; i < batch->keypoint_count; i++) {
        keypoint *point = &batch->keypoints[i];
        point->image = random_below(&state, batch->images);
        point->channel = random_below(&state, batch->channels);
        point->x = (long)random_below(&state, batch->width);
        point->y = (long)random_below(&state, batch->height);
        double box_height = random_between(&state, box_min, box_max);
        double box_width = random_between(&state, box_min, box_max);
        double radius = 0.0;
        dafl_status status = dafl_gaussian_radius(box_height, box_width, MIN_BOX_OVERLAP,
                                                  DAFL_RADIUS_CORNERNET, &radius);
        if (status != DAFL_OK)
            return status;
        point->radius = radius > 0.0 ? (long)radius : 0; /* CenterNet: max(0, int(r)) */

        double angle = random_between(&state, 0.0, TWO_PI);
        double miss = random_between(&state, MISS_DISTANCE_MIN, MISS_DISTANCE_MAX);
        long miss_x = lround(miss * cos(angle));
        long miss_y = lround(miss * sin(angle));
        if (miss_x == 0 && miss_y == 0)
            miss_x = 1; /* a miss it must be */
        point->predicted_x = point->x + miss_x;
        point->predicted_y = point->y + miss_y;
        point->peak_logit = random_between(&state, PEAK_LOGIT_MIN, PEAK_LOGIT_MAX);
    }
    return DAFL_OK;
}

static dafl_status render_targets(synthetic_batch *batch)
{
    for (size_t i = 0; i < batch->keypoint_count; i++) {
        const keypoint *point = &batch->keypoints[i];
        float *heatmap = batch->target + plane_offset(batch, point->image, point->channel);
        dafl_status status = dafl_draw_gaussian(heatmap, batch->height, batch->width, point->x,
                                                point->y, point->radius, 1.0f);
        if (status != DAFL_OK)
            return status;
    }
    for (size_t i = 0; i < batch->count; i++)
        batch->hard_label[i] = batch->target[i] == 1.0f ? 1.0f : 0.0f;
    return DAFL_OK;
}

/* The network output: background logit plus noise everywhere, and at each keypoint a
 * bump of the target's own width centred on the displaced peak (bumps merged by max, as
 * the targets are). */
static void synthesize_logits(synthetic_batch *batch, uint64_t seed)
{
    /* batch->logits starts zeroed and first collects the bumps. */
    for (size_t i = 0; i < batch->keypoint_count; i++) {
        const keypoint *point = &batch->keypoints[i];
        float *bumps = batch->logits + plane_offset(batch, point->image, point->channel);
        double sigma = target_sigma(point->radius);
        long reach = (long)ceil(3.0 * sigma);
        double height = point->peak_logit - BACKGROUND_LOGIT;
        for (long dy = -reach; dy <= reach; dy++) {
            long row = point->predicted_y + dy;
            if (row < 0 || row >= (long)batch->height)
                continue;
            for (long dx = -reach; dx <= reach; dx++) {
                long column = point->predicted_x + dx;
                if (column < 0 || column >= (long)batch->width)
                    continue;
                double squared_distance = (double)(dx * dx + dy * dy);
                float bump = (float)(height * exp(-squared_distance / (2.0 * sigma * sigma)));
                float *cell = &bumps[(size_t)row * batch->width + (size_t)column];
                if (bump > *cell)
                    *cell = bump;
            }
        }
    }
    for (size_t i = 0; i < batch->count; i++) {
        double logit = (double)batch->logits[i] + BACKGROUND_LOGIT + element_noise(seed, i);
        batch->logits[i] = (float)logit;
        batch->probability[i] = (float)(1.0 / (1.0 + exp(-logit)));
    }
}

/* ---- losses over the batch --------------------------------------------------------- */

typedef struct batch_losses {
    float penalty_focal; /* alpha, beta; normalized by the positive count */
    float plain_focal;   /* the same with beta = 0: no distance factor     */
    float bce;           /* against the hard labels, mean                   */
    float mse;           /* sigmoid(logits) against the heatmap, mean       */
    uint64_t positives;
} batch_losses;

static void report_dafl_error(const char *what, dafl_status status)
{
    fprintf(stderr, "dafl-demo: %s failed: %s\n", what, dafl_status_string(status));
}

static dafl_penalty_focal_params focal_params(const demo_options *options, float beta,
                                              dafl_reduction reduction)
{
    dafl_penalty_focal_params params;
    dafl_penalty_focal_params_init(&params);
    params.alpha = options->alpha;
    params.beta = beta;
    params.reduction = reduction;
    return params;
}

static int compute_batch_losses(const demo_options *options, synthetic_batch *batch,
                                batch_losses *losses)
{
    dafl_stats stats;
    dafl_penalty_focal_params penalty =
        focal_params(options, options->beta, DAFL_REDUCTION_POSITIVES);
    dafl_status status = dafl_penalty_focal(batch->logits, batch->target, batch->count,
                                            &penalty, &losses->penalty_focal,
                                            batch->gradient, &stats);
    if (status != DAFL_OK) {
        report_dafl_error("penalty-reduced focal loss", status);
        return -1;
    }
    losses->positives = dafl_stats_positives(&stats);

    dafl_penalty_focal_params plain = focal_params(options, 0.0f, DAFL_REDUCTION_POSITIVES);
    status = dafl_penalty_focal(batch->logits, batch->target, batch->count, &plain,
                                &losses->plain_focal, batch->gradient, NULL);
    if (status != DAFL_OK) {
        report_dafl_error("focal loss without distance factor", status);
        return -1;
    }

    dafl_bce_params bce;
    dafl_bce_params_init(&bce); /* mean reduction */
    status = dafl_bce_with_logits(batch->logits, batch->hard_label, batch->count, &bce,
                                  &losses->bce, batch->gradient, NULL);
    if (status != DAFL_OK) {
        report_dafl_error("BCE with logits", status);
        return -1;
    }

    dafl_mse_params mse;
    dafl_mse_params_init(&mse); /* mean over elements, no weights */
    status = dafl_mse(batch->probability, batch->target, batch->images, batch->channels,
                      batch->plane, &mse, &losses->mse, batch->gradient, NULL);
    if (status != DAFL_OK) {
        report_dafl_error("MSE", status);
        return -1;
    }
    return 0;
}

static double monotonic_seconds(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)now.tv_sec + 1e-9 * (double)now.tv_nsec;
}

typedef struct timing {
    unsigned long calls;
    double seconds;
    double elements_per_second;
} timing;

/* Times the fused penalty-focal forward+gradient call over the whole batch. */
static int time_penalty_focal(const demo_options *options, synthetic_batch *batch,
                              timing *result)
{
    dafl_penalty_focal_params params =
        focal_params(options, options->beta, DAFL_REDUCTION_POSITIVES);
    float loss = 0.0f;
    /* One untimed call first, so that page faults and cold caches are not counted. */
    dafl_status status = dafl_penalty_focal(batch->logits, batch->target, batch->count,
                                            &params, &loss, batch->gradient, NULL);
    unsigned long calls = 0;
    double start = monotonic_seconds();
    double elapsed = 0.0;
    while (status == DAFL_OK && elapsed < MIN_TIMING_SECONDS) {
        status = dafl_penalty_focal(batch->logits, batch->target, batch->count, &params,
                                    &loss, batch->gradient, NULL);
        calls++;
        elapsed = monotonic_seconds() - start;
    }
    if (status != DAFL_OK) {
        report_dafl_error("timing the penalty-reduced focal loss", status);
        return -1;
    }
    result->calls = calls;
    result->seconds = elapsed;
    result->elements_per_second = (double)calls * (double)batch->count / elapsed;
    return 0;
}

/* ---- per-pixel maps of the figure's plane ------------------------------------------ */

static void free_plane_maps(plane_maps *maps)
{
    for (int kind = 0; kind < LOSS_KINDS; kind++) {
        free(maps->loss[kind]);
        free(maps->gradient_magnitude[kind]);
    }
}

static void take_magnitudes(float *values, size_t count)
{
    for (size_t i = 0; i < count; i++)
        values[i] = fabsf(values[i]);
}

/* Per-element losses and gradients (DAFL_REDUCTION_NONE) of one image/channel plane. */
static int compute_plane_maps(const demo_options *options, const synthetic_batch *batch,
                              size_t image, size_t channel, plane_maps *maps)
{
    size_t offset = plane_offset(batch, image, channel);
    size_t count = batch->plane;
    const float *logits = batch->logits + offset;
    *maps = (plane_maps){
        .target = batch->target + offset,
        .hard_label = batch->hard_label + offset,
        .probability = batch->probability + offset,
    };
    for (int kind = 0; kind < LOSS_KINDS; kind++) {
        maps->loss[kind] = malloc(count * sizeof(float));
        maps->gradient_magnitude[kind] = malloc(count * sizeof(float));
        if (maps->loss[kind] == NULL || maps->gradient_magnitude[kind] == NULL) {
            fprintf(stderr, "dafl-demo: out of memory for the figure\n");
            free_plane_maps(maps);
            return -1;
        }
    }

    dafl_bce_params bce;
    dafl_bce_params_init(&bce);
    bce.reduction = DAFL_REDUCTION_NONE;
    dafl_status status = dafl_bce_with_logits(logits, maps->hard_label, count, &bce,
                                              maps->loss[LOSS_BCE],
                                              maps->gradient_magnitude[LOSS_BCE], NULL);
    const char *failed = "per-pixel BCE";
    if (status == DAFL_OK) {
        dafl_penalty_focal_params plain = focal_params(options, 0.0f, DAFL_REDUCTION_NONE);
        status = dafl_penalty_focal(logits, maps->target, count, &plain,
                                    maps->loss[LOSS_PLAIN_FOCAL],
                                    maps->gradient_magnitude[LOSS_PLAIN_FOCAL], NULL);
        failed = "per-pixel focal loss";
    }
    if (status == DAFL_OK) {
        dafl_penalty_focal_params penalty =
            focal_params(options, options->beta, DAFL_REDUCTION_NONE);
        status = dafl_penalty_focal(logits, maps->target, count, &penalty,
                                    maps->loss[LOSS_PENALTY_FOCAL],
                                    maps->gradient_magnitude[LOSS_PENALTY_FOCAL], NULL);
        failed = "per-pixel penalty-reduced focal loss";
    }
    if (status == DAFL_OK) {
        dafl_mse_params mse;
        dafl_mse_params_init(&mse);
        mse.reduction = DAFL_REDUCTION_NONE;
        status = dafl_mse(maps->probability, maps->target, 1, 1, count, &mse,
                          maps->loss[LOSS_MSE], maps->gradient_magnitude[LOSS_MSE], NULL);
        failed = "per-pixel MSE";
    }
    if (status != DAFL_OK) {
        report_dafl_error(failed, status);
        free_plane_maps(maps);
        return -1;
    }
    /* MSE's gradient is with respect to p = sigmoid(x); chain it through the sigmoid so
     * that every column shows the gradient that reaches the same network output x. */
    for (size_t i = 0; i < count; i++) {
        double logit = logits[i];
        double p_times_q = 1.0 / ((1.0 + exp(-logit)) * (1.0 + exp(logit)));
        maps->gradient_magnitude[LOSS_MSE][i] =
            (float)((double)maps->gradient_magnitude[LOSS_MSE][i] * p_times_q);
    }
    for (int kind = 0; kind < LOSS_KINDS; kind++)
        take_magnitudes(maps->gradient_magnitude[kind], count);
    return 0;
}

/* ---- choosing what to show --------------------------------------------------------- */

static int crop_inside_image(long x, long y, size_t height, size_t width)
{
    return x - CROP_HALF >= 0 && y - CROP_HALF >= 0 && x + CROP_HALF < (long)width &&
           y + CROP_HALF < (long)height;
}

/* The keypoint the figure shows: preferably alone in its crop (so the picture tells one
 * keypoint's story), with the crop inside the image, missed by at least two pixels, and
 * with a radius near PREFERRED_FIGURE_RADIUS.  That radius is the large end of the default
 * boxes: how much the distance factor forgives depends on the miss relative to the
 * Gaussian's sigma, and a larger object shows a two-pixel miss inside its Gaussian while
 * still fitting the crop.  The figure and the printed table state radius and miss. */
static size_t choose_figure_keypoint(const synthetic_batch *batch)
{
    size_t best = 0;
    long best_score = -1;
    for (size_t i = 0; i < batch->keypoint_count; i++) {
        const keypoint *point = &batch->keypoints[i];
        int alone = 1;
        for (size_t j = 0; j < batch->keypoint_count && alone; j++) {
            const keypoint *other = &batch->keypoints[j];
            if (j == i || other->image != point->image || other->channel != point->channel)
                continue;
            long reach = CROP_HALF + other->radius;
            if (labs(other->x - point->x) <= reach && labs(other->y - point->y) <= reach)
                alone = 0;
        }
        int inside = crop_inside_image(point->x, point->y, batch->height, batch->width);
        long miss_x = point->predicted_x - point->x;
        long miss_y = point->predicted_y - point->y;
        int clear_miss = miss_x * miss_x + miss_y * miss_y >= 4;
        long radius_fit = CROP_HALF - labs(point->radius - PREFERRED_FIGURE_RADIUS);
        if (radius_fit < 0)
            radius_fit = 0;
        long score = (long)alone * 4 * (CROP_HALF + 1) + (long)inside * 2 * (CROP_HALF + 1) +
                     (long)clear_miss * (CROP_HALF + 1) + radius_fit;
        if (score > best_score) {
            best_score = score;
            best = i;
        }
    }
    return best;
}

/* The image/channel with the most keypoints, for the full-size heatmap files. */
static int busiest_plane(const synthetic_batch *batch, size_t *image, size_t *channel,
                         size_t *keypoints_in_plane)
{
    size_t planes = batch->images * batch->channels;
    size_t *counts = calloc(planes, sizeof(size_t));
    if (counts == NULL) {
        fprintf(stderr, "dafl-demo: out of memory\n");
        return -1;
    }
    size_t best = 0;
    for (size_t i = 0; i < batch->keypoint_count; i++) {
        const keypoint *point = &batch->keypoints[i];
        size_t plane = point->image * batch->channels + point->channel;
        counts[plane]++;
        if (counts[plane] > counts[best] || (counts[plane] == counts[best] && plane < best))
            best = plane;
    }
    *image = best / batch->channels;
    *channel = best % batch->channels;
    *keypoints_in_plane = counts[best];
    free(counts);
    return 0;
}

/* ---- files ------------------------------------------------------------------------- */

/* mkdir -p: creates each missing directory along the path. */
static int make_directories(const char *path)
{
    char partial[PATH_CAPACITY];
    size_t length = strlen(path);
    if (length == 0 || length >= sizeof partial) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(partial, path, length + 1);
    for (size_t i = 1; i <= length; i++) {
        if (partial[i] != '/' && partial[i] != '\0')
            continue;
        char saved = partial[i];
        partial[i] = '\0';
        if (mkdir(partial, 0777) != 0 && errno != EEXIST)
            return -1;
        partial[i] = saved;
    }
    struct stat info;
    if (stat(path, &info) != 0)
        return -1;
    if (!S_ISDIR(info.st_mode)) {
        errno = ENOTDIR;
        return -1;
    }
    return 0;
}

static int output_path(char *path, const char *directory, const char *name)
{
    size_t directory_length = strlen(directory);
    /* "out/" and "out" name the same directory; do not print "out//file.png". */
    const char *separator = directory[directory_length - 1] == '/' ? "" : "/";
    int length = snprintf(path, PATH_CAPACITY, "%s%s%s", directory, separator, name);
    if (length < 0 || length >= PATH_CAPACITY) {
        fprintf(stderr, "dafl-demo: output path too long: %s/%s\n", directory, name);
        return -1;
    }
    return 0;
}

/* ---- the report -------------------------------------------------------------------- */

typedef struct sample_pixel {
    const char *name;
    long x;
    long y;
} sample_pixel;

static void print_pixel_table(const plane_maps *maps, const crop *view,
                              const sample_pixel *samples, size_t sample_count)
{
    printf("  %-22s %8s %8s %10s %10s %10s %10s\n", "pixel (x, y)", "target y", "pred p",
           "BCE", "focal b=0", "penalty", "MSE");
    for (size_t s = 0; s < sample_count; s++) {
        const sample_pixel *sample = &samples[s];
        char where[64];
        snprintf(where, sizeof where, "%s (%ld, %ld)", sample->name, sample->x, sample->y);
        if (sample->x < 0 || sample->y < 0 || sample->x >= (long)view->width ||
            sample->y >= (long)view->height) {
            printf("  %-22s outside the image\n", where);
            continue;
        }
        size_t index = (size_t)sample->y * view->width + (size_t)sample->x;
        printf("  %-22s %8.3f %8.3f %10.3g %10.3g %10.3g %10.3g\n", where,
               maps->target[index], maps->probability[index], maps->loss[LOSS_BCE][index],
               maps->loss[LOSS_PLAIN_FOCAL][index], maps->loss[LOSS_PENALTY_FOCAL][index],
               maps->loss[LOSS_MSE][index]);
    }
}

static void print_batch_summary(const demo_options *options, const synthetic_batch *batch,
                                const batch_losses *losses, const timing *speed)
{
    printf("dafl-demo %s, kernels: %s\n", dafl_version(), dafl_isa_name(dafl_active_isa()));
    printf("batch: %zu images x %zu channels x %zux%zu = %zu elements, seed %llu\n",
           batch->images, batch->channels, batch->height, batch->width, batch->count,
           (unsigned long long)options->seed);
    printf("keypoints placed: %zu, positives (target == 1): %llu\n", batch->keypoint_count,
           (unsigned long long)losses->positives);
    char penalty_label[96];
    snprintf(penalty_label, sizeof penalty_label,
             "penalty-reduced focal, alpha %g, beta %g, / positives", options->alpha,
             options->beta);
    printf("\nloss over the batch (same logits, same keypoints):\n");
    printf("  %-56s %.9g\n", penalty_label, losses->penalty_focal);
    printf("  %-56s %.9g\n", "focal without distance factor (beta 0), / positives",
           losses->plain_focal);
    printf("  %-56s %.9g\n", "BCE with logits vs hard labels, mean", losses->bce);
    printf("  %-56s %.9g\n", "MSE of sigmoid(logits) vs target heatmap, mean", losses->mse);
    /* Calls of at least DAFL_MIN_PARALLEL_ELEMENTS are split over dafl_threads(). */
    int threads = batch->count >= DAFL_MIN_PARALLEL_ELEMENTS ? dafl_threads() : 1;
    printf("\nspeed (%s kernels, %d thread%s): penalty-reduced focal forward+gradient, "
           "one fused call\n",
           dafl_isa_name(dafl_active_isa()), threads, threads == 1 ? "" : "s");
    printf("  %lu calls x %zu elements in %.3f s: %.1f M elements/s\n", speed->calls,
           batch->count, speed->seconds, speed->elements_per_second * 1e-6);
}

/* Footer lines of the figure: the numbers at the predicted peak, the near-miss pixel. */
static void describe_near_miss(const plane_maps *maps, const crop *view, long x, long y,
                               char *first, char *second, size_t capacity)
{
    second[0] = '\0';
    if (x < 0 || y < 0 || x >= (long)view->width || y >= (long)view->height) {
        snprintf(first, capacity, "The predicted peak lies outside the image");
        return;
    }
    size_t index = (size_t)y * view->width + (size_t)x;
    char values[LOSS_KINDS][32];
    for (int kind = 0; kind < LOSS_KINDS; kind++)
        format_value(values[kind], sizeof values[kind], maps->loss[kind][index]);
    snprintf(first, capacity, "At the predicted peak: target y = %.2f, prediction p = %.2f",
             maps->target[index], maps->probability[index]);
    snprintf(second, capacity,
             "Loss there: BCE %s, focal %s, distance-aware focal %s, MSE %s", values[LOSS_BCE],
             values[LOSS_PLAIN_FOCAL], values[LOSS_PENALTY_FOCAL], values[LOSS_MSE]);
}

/* The figure around `shown`, and the table of its keypoint, near-miss and background
 * pixels on stdout. */
static int write_figure_and_table(const demo_options *options, const synthetic_batch *batch,
                                  const keypoint *shown, const char *figure_path)
{
    plane_maps maps;
    if (compute_plane_maps(options, batch, shown->image, shown->channel, &maps) != 0)
        return -1;
    figure_input figure = {
        .maps = &maps,
        .view = {batch->height, batch->width, shown->x, shown->y},
        .markers = {shown->x, shown->y, shown->predicted_x, shown->predicted_y},
        .image = shown->image,
        .channel = shown->channel,
        .radius = shown->radius,
        .alpha = options->alpha,
        .beta = options->beta,
    };
    char footer_first[256];
    char footer_second[256];
    describe_near_miss(&maps, &figure.view, shown->predicted_x, shown->predicted_y,
                       footer_first, footer_second, sizeof footer_first);
    const char *const footer[] = {
        footer_first,
        footer_second,
        "Grey pixels: outside the image.  MSE gradient chained through the sigmoid.",
    };
    figure.footer = footer;
    figure.footer_lines = sizeof footer / sizeof footer[0];
    int result = write_loss_figure(figure_path, &figure);
    if (result == 0) {
        /* A crop corner, clamped into the image: background far from the keypoint. */
        long background_x = shown->x + CROP_HALF < (long)batch->width
                                ? shown->x + CROP_HALF
                                : (long)batch->width - 1;
        long background_y = shown->y + CROP_HALF < (long)batch->height
                                ? shown->y + CROP_HALF
                                : (long)batch->height - 1;
        const sample_pixel samples[] = {
            {"keypoint", shown->x, shown->y},
            {"near miss", shown->predicted_x, shown->predicted_y},
            {"background", background_x, background_y},
        };
        printf("\nper-pixel loss around the figure's keypoint (image %zu, channel %zu, "
               "radius %ld):\n",
               shown->image, shown->channel, shown->radius);
        print_pixel_table(&maps, &figure.view, samples, sizeof samples / sizeof samples[0]);
    }
    free_plane_maps(&maps);
    return result;
}

static int write_outputs(const demo_options *options, const synthetic_batch *batch)
{
    char target_path[PATH_CAPACITY];
    char prediction_path[PATH_CAPACITY];
    char figure_path[PATH_CAPACITY];
    if (output_path(target_path, options->output_dir, "target-heatmap.png") != 0 ||
        output_path(prediction_path, options->output_dir, "prediction-heatmap.png") != 0 ||
        output_path(figure_path, options->output_dir, "loss-comparison.png") != 0)
        return -1;

    size_t heatmap_image, heatmap_channel, heatmap_keypoints;
    if (busiest_plane(batch, &heatmap_image, &heatmap_channel, &heatmap_keypoints) != 0)
        return -1;
    size_t heatmap_offset = plane_offset(batch, heatmap_image, heatmap_channel);
    size_t longer_side = batch->height > batch->width ? batch->height : batch->width;
    size_t magnify = longer_side < HEATMAP_FILE_SIDE ? HEATMAP_FILE_SIDE / longer_side : 1;
    char target_title[96];
    char prediction_title[96];
    snprintf(target_title, sizeof target_title, "Target y: image %zu, channel %zu",
             heatmap_image, heatmap_channel);
    snprintf(prediction_title, sizeof prediction_title,
             "Prediction p = sigmoid(x): image %zu, channel %zu", heatmap_image,
             heatmap_channel);
    if (write_heatmap(target_path, batch->target + heatmap_offset, batch->height, batch->width,
                      magnify, target_title) != 0 ||
        write_heatmap(prediction_path, batch->probability + heatmap_offset, batch->height,
                      batch->width, magnify, prediction_title) != 0)
        return -1;

    const keypoint *shown = &batch->keypoints[choose_figure_keypoint(batch)];
    if (write_figure_and_table(options, batch, shown, figure_path) != 0)
        return -1;

    printf("\nwrote:\n");
    printf("  %s  (target heatmap: image %zu, channel %zu, %zu keypoint%s, %zux)\n",
           target_path, heatmap_image, heatmap_channel, heatmap_keypoints,
           heatmap_keypoints == 1 ? "" : "s", magnify);
    printf("  %s  (sigmoid of the logits, same plane)\n", prediction_path);
    printf("  %s  (per-pixel loss and gradient around one keypoint)\n", figure_path);
    return 0;
}

static int run_on_batch(const demo_options *options, synthetic_batch *batch)
{
    dafl_status status = place_keypoints(batch, options->seed);
    if (status != DAFL_OK) {
        report_dafl_error("dafl_gaussian_radius", status);
        return -1;
    }
    status = render_targets(batch);
    if (status != DAFL_OK) {
        report_dafl_error("dafl_draw_gaussian", status);
        return -1;
    }
    synthesize_logits(batch, options->seed);

    batch_losses losses;
    timing speed;
    if (compute_batch_losses(options, batch, &losses) != 0 ||
        time_penalty_focal(options, batch, &speed) != 0)
        return -1;
    print_batch_summary(options, batch, &losses, &speed);
    return write_outputs(options, batch);
}

static int run_demo(const demo_options *options)
{
    if (options->isa_requested) {
        dafl_status status = dafl_set_isa(options->isa);
        if (status != DAFL_OK) {
            fprintf(stderr, "dafl-demo: cannot use the %s kernels: %s\n",
                    dafl_isa_name(options->isa), dafl_status_string(status));
            return EXIT_FAILURE;
        }
    }
    if (options->threads != 0) {
        dafl_status status = dafl_set_threads(options->threads);
        if (status != DAFL_OK) {
            report_dafl_error("setting --threads", status);
            return EXIT_FAILURE;
        }
    }
    /* Let the library judge --alpha and --beta before the expensive work. */
    dafl_penalty_focal_params probe =
        focal_params(options, options->beta, DAFL_REDUCTION_POSITIVES);
    const float probe_logit = 0.0f;
    const float probe_target = 0.0f;
    float probe_loss = 0.0f;
    dafl_status status =
        dafl_penalty_focal(&probe_logit, &probe_target, 1, &probe, &probe_loss, NULL, NULL);
    if (status != DAFL_OK) {
        report_dafl_error("checking --alpha and --beta", status);
        return EXIT_FAILURE;
    }

    /* Before the work, so that an unusable --output fails at once. */
    if (make_directories(options->output_dir) != 0) {
        fprintf(stderr, "dafl-demo: cannot create the directory %s: %s\n",
                options->output_dir, strerror(errno));
        return EXIT_FAILURE;
    }

    synthetic_batch batch;
    if (allocate_batch(options, &batch) != 0)
        return EXIT_FAILURE;
    int result = run_on_batch(options, &batch);
    free_batch(&batch);
    return result == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

int main(int argc, char **argv)
{
    demo_options options;
    switch (parse_options(argc, argv, &options)) {
    case PARSE_HELP:
        return EXIT_SUCCESS;
    case PARSE_ERROR:
        return 2; /* usage error, as getopt-based tools report it */
    case PARSE_RUN:
        break;
    }
    return run_demo(&options);
}
