/*
 * Guard pages: nothing reads or writes outside the caller's buffers (SPEC 6), on every
 * ISA, for every tail length and every alignment.
 *
 * Every buffer lives in its own mapping [PROT_NONE page][data pages][PROT_NONE page] and
 * is placed either so that it ENDS exactly where the trailing guard page begins (an
 * over-read or over-write of a single byte faults) or so that it STARTS a few floats
 * after the leading guard page (offset 0 catches any under-read; offsets 1..15 give every
 * misalignment of the start).  Lengths 0 .. 63 cover every tail of every vector width up
 * to 16 floats, and with the end pinned to a page they also give every start alignment;
 * a few lengths around DAFL_BLOCK_ELEMENTS cover the block boundary.  The bytes just
 * outside each output buffer that the guard pages cannot protect are filled with a
 * sentinel and checked afterwards, and input buffers are checked to be unchanged.
 *
 * Every result is compared bit for bit (NaN-aware) with the scalar ISA's on ordinary heap
 * buffers: the same inputs give the same bits whatever the placement.
 *
 * The element-wise losses again with bfloat16 and float16 inputs, targets and gradients
 * (dafl_dtype): each array placed in units of its own element size, so that offsets of
 * an odd number of elements misalign it by 2 bytes, and the vector conversions (loads of
 * 8 or 16 halves, stores of the narrowed gradient) are seen to touch only the caller's
 * elements.
 */
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS */

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

#include "test_common.h"

/* ---- naming the call that faults --------------------------------------------------- */

/* A fault kills the test with a bare "signal 11"; the handler first says which call. */
static char current_case[256];

static void report_fault(int sig)
{
    static const char head[] = "\nguard page hit (or other fault) in: ";
    size_t n = 0;
    while (n < sizeof current_case && current_case[n])
        n++;
    if (write(STDERR_FILENO, head, sizeof head - 1) < 0 ||
        write(STDERR_FILENO, current_case, n) < 0 || write(STDERR_FILENO, "\n", 1) < 0) {
        /* nothing more to do */
    }
    raise(sig); /* SA_RESETHAND: the default action now */
}

static void name_faults(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = report_fault;
    sa.sa_flags = (int)SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, NULL);
    sigaction(SIGBUS, &sa, NULL);
}

#define CASE(...) snprintf(current_case, sizeof current_case, __VA_ARGS__)

/* ---- which ISAs -------------------------------------------------------------------- */

/* Every ISA this machine runs, unless DAFL_ISA names one: then only that one (the others
 * are reported as skipped).  The valgrind run sets DAFL_ISA=scalar, since valgrind's
 * emulation of the SIMD instructions does not reproduce every result bit (signed zeros of
 * underflowing products), which the comparison with the scalar kernels would report. */
static int isa_selected(dafl_isa isa)
{
    const char *env = getenv("DAFL_ISA");
    if (!env || !*env || strcmp(env, "auto") == 0)
        return 1;
    return strcmp(env, dafl_isa_name(isa)) == 0;
}

static int isa_tested(dafl_isa isa) { return dafl_isa_available(isa) && isa_selected(isa); }

static void report_skipped(const char *what)
{
    for (int ii = 0; ii < TEST_ISA_COUNT; ii++) {
        const dafl_isa isa = test_all_isas[ii];
        char label[128];
        snprintf(label, sizeof label, "guard pages, %s", what);
        if (!dafl_isa_available(isa))
            test_report_skip(isa, label, "not supported by this CPU or build");
        else if (!isa_selected(isa))
            test_report_skip(isa, label, "not selected by DAFL_ISA");
    }
}

/* ---- guarded mappings ------------------------------------------------------------- */

typedef struct guarded {
    unsigned char *map; /* the whole mapping                          */
    size_t map_bytes;
    unsigned char *lo;  /* first usable byte (just after the guard)   */
    unsigned char *hi;  /* one past the last usable byte (guard next) */
} guarded;

#define SENTINEL_BYTE 0xa5u
#define SLACK_BYTES 64 /* bytes beside a buffer checked for stray writes */

static size_t page_size(void)
{
    long p = sysconf(_SC_PAGESIZE);
    return p > 0 ? (size_t)p : 4096;
}

/* A mapping with at least `bytes` usable bytes between two PROT_NONE pages. */
static guarded guarded_alloc(size_t bytes)
{
    const size_t page = page_size();
    size_t data_pages = (bytes + page - 1) / page;
    if (data_pages == 0)
        data_pages = 1;
    guarded g;
    g.map_bytes = (data_pages + 2) * page;
    void *m = mmap(NULL, g.map_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                   -1, 0);
    ck_assert_msg(m != MAP_FAILED, "mmap of %zu bytes failed", g.map_bytes);
    g.map = m;
    ck_assert_int_eq(mprotect(g.map, page, PROT_NONE), 0);
    ck_assert_int_eq(mprotect(g.map + (data_pages + 1) * page, page, PROT_NONE), 0);
    g.lo = g.map + page;
    g.hi = g.map + (data_pages + 1) * page;
    memset(g.lo, SENTINEL_BYTE, (size_t)(g.hi - g.lo));
    return g;
}

static void guarded_free(guarded *g)
{
    munmap(g->map, g->map_bytes);
    g->map = g->lo = g->hi = NULL;
}

/* Where a buffer of `bytes` goes: offset < 0 puts its end against the trailing guard
 * page, offset >= 0 puts its start `offset` floats after the leading guard page. */
static void *guarded_place(const guarded *g, size_t bytes, int offset)
{
    if (offset < 0)
        return g->hi - bytes;
    unsigned char *p = g->lo + (size_t)offset * sizeof(float);
    ck_assert_msg(p + bytes <= g->hi, "guarded buffer too small");
    return p;
}

/* Sentinel in the usable bytes around [p, p + bytes) (and in the buffer itself). */
static void fill_around(const guarded *g, void *p, size_t bytes)
{
    unsigned char *b = p;
    unsigned char *from = b - g->lo > SLACK_BYTES ? b - SLACK_BYTES : g->lo;
    unsigned char *to = (size_t)(g->hi - (b + bytes)) > SLACK_BYTES ? b + bytes + SLACK_BYTES
                                                                     : g->hi;
    memset(from, SENTINEL_BYTE, (size_t)(to - from));
}

/* 1 when the usable bytes beside [p, p + bytes) still hold the sentinel. */
static int untouched_around(const guarded *g, const void *p, size_t bytes)
{
    const unsigned char *b = p;
    const unsigned char *from = b - g->lo > SLACK_BYTES ? b - SLACK_BYTES : g->lo;
    const unsigned char *end = b + bytes;
    const unsigned char *to = (size_t)(g->hi - end) > SLACK_BYTES ? end + SLACK_BYTES : g->hi;
    for (const unsigned char *q = from; q < b; q++)
        if (*q != SENTINEL_BYTE)
            return 0;
    for (const unsigned char *q = end; q < to; q++)
        if (*q != SENTINEL_BYTE)
            return 0;
    return 1;
}

static int same_float_bits(const float *a, const float *b, size_t n, size_t *where)
{
    for (size_t i = 0; i < n; i++)
        if (!test_same_bits(a[i], b[i])) {
            *where = i;
            return 0;
        }
    return 1;
}

/* ---- the losses, behind one signature ----------------------------------------------- */

/* Element types of input, target and gradient (NULL in run_loss: all float32). */
typedef struct elem_types {
    dafl_dtype x, y, g;
    const char *name;
} elem_types;

#define SET_DTYPES(p, t)                                                                   \
    do {                                                                                   \
        if (t) {                                                                           \
            (p).input_dtype = (t)->x;                                                      \
            (p).target_dtype = (t)->y;                                                     \
            (p).grad_dtype = (t)->g;                                                       \
        }                                                                                  \
    } while (0)

enum {
    L_PF_LOGITS,
    L_PF_PROBABILITIES,
    L_PF_CLAMPED,
    L_SIGMOID_FOCAL,
    L_BCE,
    L_MSE,
    L_MSE_WEIGHTS, /* n = count planes of one element, a weight per plane */
    L_SOFTMAX_NCHW,
    L_SOFTMAX_NHWC,
    L_COUNT
};

static const char *const loss_names[L_COUNT] = {
    "penalty focal (logits)", "penalty focal (probabilities)", "penalty focal (clamped)",
    "sigmoid focal",          "bce",                           "mse",
    "mse (weights)",          "softmax focal NCHW",            "softmax focal NHWC",
};

enum { CLASSES = 3 };

static int is_softmax(int loss) { return loss == L_SOFTMAX_NCHW || loss == L_SOFTMAX_NHWC; }

/* grad may alias the input for these (dafl.h: "may alias input"). */
static int may_alias(int loss) { return loss <= L_SIGMOID_FOCAL; }

/* The shape of one case: `len` elements (pixels for softmax). */
typedef struct shape {
    size_t n, c, hw;
    size_t inputs;   /* floats of input (and of grad)          */
    size_t targets;  /* floats of target / int32 labels        */
    size_t outputs;  /* floats of per-element loss (NONE)      */
    size_t weights;  /* floats of class / plane weights, or 0  */
} shape;

static shape shape_of(int loss, size_t len)
{
    shape s;
    memset(&s, 0, sizeof s);
    if (is_softmax(loss)) {
        s.n = len % 2 == 0 && len > 0 ? 2 : 1; /* pixels of two images in one group */
        s.c = CLASSES;
        s.hw = len / s.n;
        s.inputs = s.n * s.c * s.hw;
        s.targets = s.outputs = len;
        s.weights = CLASSES;
    } else if (loss == L_MSE_WEIGHTS) {
        s.n = len;
        s.c = 1;
        s.hw = 1;
        s.inputs = s.targets = s.outputs = len;
        s.weights = len;
    } else {
        s.n = s.c = 1;
        s.hw = len;
        s.inputs = s.targets = s.outputs = len;
    }
    return s;
}

static dafl_status run_loss(int loss, const shape *s, const float *x, const void *y,
                            const float *w, dafl_reduction reduction, float *out, float *grad,
                            dafl_stats *stats, const elem_types *t)
{
    switch (loss) {
    case L_PF_LOGITS:
    case L_PF_PROBABILITIES:
    case L_PF_CLAMPED: {
        dafl_penalty_focal_params p;
        dafl_penalty_focal_params_init(&p);
        p.input_mode = loss == L_PF_LOGITS          ? DAFL_INPUT_LOGITS
                       : loss == L_PF_PROBABILITIES ? DAFL_INPUT_PROBABILITIES
                                                    : DAFL_INPUT_CLAMPED_LOGITS;
        p.clamp_eps = 1e-2f; /* clamps a visible share of the logits */
        p.beta = 3.5f;       /* a real exponent for a change */
        p.reduction = reduction;
        SET_DTYPES(p, t);
        return dafl_penalty_focal(x, y, s->inputs, &p, out, grad, stats);
    }
    case L_SIGMOID_FOCAL: {
        dafl_sigmoid_focal_params p;
        dafl_sigmoid_focal_params_init(&p);
        p.gamma = 1.5f;
        p.reduction = reduction;
        SET_DTYPES(p, t);
        return dafl_sigmoid_focal(x, y, s->inputs, &p, out, grad, stats);
    }
    case L_BCE: {
        dafl_bce_params p;
        dafl_bce_params_init(&p);
        p.pos_weight = 2.0f;
        p.reduction = reduction;
        SET_DTYPES(p, t);
        return dafl_bce_with_logits(x, y, s->inputs, &p, out, grad, stats);
    }
    case L_MSE:
    case L_MSE_WEIGHTS: {
        dafl_mse_params p;
        dafl_mse_params_init(&p);
        p.weights = loss == L_MSE_WEIGHTS ? w : NULL;
        p.weights_count = loss == L_MSE_WEIGHTS ? s->weights : 0;
        p.reduction = reduction;
        SET_DTYPES(p, t);
        return dafl_mse(x, y, s->n, s->c, s->hw, &p, out, grad, stats);
    }
    default: {
        dafl_softmax_focal_params p;
        dafl_softmax_focal_params_init(&p);
        p.layout = loss == L_SOFTMAX_NHWC ? DAFL_LAYOUT_NHWC : DAFL_LAYOUT_NCHW;
        p.gamma = 2.0f;
        p.class_weights = w;
        p.reduction = reduction;
        (void)t; /* float32 only here */
        return dafl_softmax_focal(x, y, s->n, s->c, s->hw, &p, out, grad, stats);
    }
    }
}

/* Inputs that reach every branch: specials among the logits, hard and soft targets. */
static void make_inputs(int loss, const shape *s, uint64_t seed, float *x, void *y, float *w)
{
    static const float specials[] = {0.0f, -0.0f, INFINITY, -INFINITY, NAN, 80.0f, -80.0f};
    for (size_t i = 0; i < s->inputs; i++) {
        uint64_t r = test_rand64(&seed);
        if (loss == L_PF_PROBABILITIES)
            x[i] = r % 13 == 0 ? (float)(r % 2) : test_uniform(&seed, 0.001f, 0.999f);
        else if (r % 11 == 0)
            x[i] = specials[(r >> 8) % 7];
        else
            x[i] = test_uniform(&seed, -9.0f, 9.0f);
    }
    if (is_softmax(loss)) {
        int32_t *labels = y;
        for (size_t i = 0; i < s->targets; i++) {
            uint64_t r = test_rand64(&seed);
            labels[i] = r % 7 == 0 ? -100 : (int32_t)(r % CLASSES);
        }
    } else {
        float *t = y;
        for (size_t i = 0; i < s->targets; i++) {
            uint64_t r = test_rand64(&seed) % 4;
            t[i] = r == 0 ? 1.0f : r == 1 ? 0.0f : test_uniform(&seed, 0.0f, 1.0f);
        }
    }
    for (size_t i = 0; i < s->weights; i++)
        w[i] = test_uniform(&seed, 0.0f, 2.0f);
}

/* ---- placements ----------------------------------------------------------------------- */

/* Where each buffer of a call goes (END, or START + offset floats), and whether the
 * gradient overwrites the input in place. */
#define END (-1)
typedef struct placement {
    int x, y, w, out, grad;
    int in_place;
} placement;

enum { MAX_PLACEMENTS = 2 + 3 * 16 };

/* All at the end; all at the start (every offset); two mixtures of the two (so that the
 * buffers are misaligned relative to each other too); in place at the end. */
static int make_placements(placement *pl, int aliasing)
{
    int n = 0;
    pl[n++] = (placement){END, END, END, END, END, 0};
    if (aliasing)
        pl[n++] = (placement){END, END, END, END, END, 1};
    for (int m = 0; m < 16; m++) {
        pl[n++] = (placement){m, m, m, m, m, 0};
        pl[n++] = (placement){END, m, (m + 3) % 16, (m + 5) % 16, END, 0};
        pl[n++] = (placement){m, END, END, END, (m + 9) % 16, 0};
    }
    return n;
}

static void describe(char *buf, size_t size, const placement *p)
{
    snprintf(buf, size, "x@%d y@%d w@%d loss@%d grad@%d%s (-1 = end at guard page)", p->x,
             p->y, p->w, p->out, p->grad, p->in_place ? " in place" : "");
}

/* ---- the loss test ---------------------------------------------------------------------- */

static const size_t extra_lengths[] = {DAFL_BLOCK_ELEMENTS - 1, DAFL_BLOCK_ELEMENTS,
                                       DAFL_BLOCK_ELEMENTS + 1, DAFL_BLOCK_ELEMENTS + 17};
#define SHORT_LENGTHS (3 * 16 + 16) /* 0 .. 63 */
#define N_LENGTHS (SHORT_LENGTHS + 4)
#define MAX_LENGTH (DAFL_BLOCK_ELEMENTS + 17)

static size_t length_at(int i)
{
    return i < SHORT_LENGTHS ? (size_t)i : extra_lengths[i - SHORT_LENGTHS];
}

typedef struct buffers {
    guarded x, y, w, out, grad, sum, stats;
} buffers;

START_TEST(losses_stay_inside_their_buffers)
{
    const int loss = _i;
    const size_t max_in = MAX_LENGTH * CLASSES * sizeof(float) + 16 * sizeof(float);
    buffers gb;
    gb.x = guarded_alloc(max_in);
    gb.y = guarded_alloc(max_in);
    gb.w = guarded_alloc(max_in);
    gb.out = guarded_alloc(max_in);
    gb.grad = guarded_alloc(max_in);
    gb.sum = guarded_alloc(sizeof(float));
    gb.stats = guarded_alloc(sizeof(dafl_stats));

    /* Heap copies: the inputs, and the scalar ISA's results. */
    float *x = malloc(max_in), *w = malloc(max_in), *ref_out = malloc(max_in),
          *ref_grad = malloc(max_in);
    void *y = malloc(max_in);
    ck_assert(x && y && w && ref_out && ref_grad);

    placement pl[MAX_PLACEMENTS];
    const int n_placements = make_placements(pl, may_alias(loss));
    long calls = 0;

    for (int li = 0; li < N_LENGTHS; li++) {
        const size_t len = length_at(li);
        const shape s = shape_of(loss, len);
        make_inputs(loss, &s, 1000u * (uint64_t)loss + len, x, y, w);
        const size_t in_bytes = s.inputs * sizeof(float), y_bytes = s.targets * 4,
                     w_bytes = s.weights * sizeof(float), out_bytes = s.outputs * sizeof(float);
        const float *w_heap = s.weights ? w : NULL;

        /* the reference: scalar kernels on heap buffers */
        float ref_sum;
        dafl_stats ref_stats;
        ck_assert_int_eq(dafl_set_isa(DAFL_ISA_SCALAR), DAFL_OK);
        ck_assert_int_eq(run_loss(loss, &s, x, y, w_heap, DAFL_REDUCTION_NONE, ref_out,
                                  ref_grad, NULL, NULL),
                         DAFL_OK);
        ck_assert_int_eq(run_loss(loss, &s, x, y, w_heap, DAFL_REDUCTION_SUM, &ref_sum, NULL,
                                  &ref_stats, NULL),
                         DAFL_OK);

        for (int ii = 0; ii < TEST_ISA_COUNT; ii++) {
            const dafl_isa isa = test_all_isas[ii];
            if (!isa_tested(isa))
                continue; /* reported once below */
            ck_assert_int_eq(dafl_set_isa(isa), DAFL_OK);
            for (int pi = 0; pi < n_placements; pi++) {
                const placement *p = &pl[pi];
                char where[128];
                describe(where, sizeof where, p);
                CASE("%s, %s, length %zu, %s", loss_names[loss], dafl_isa_name(isa), len, where);
                float *gx = guarded_place(&gb.x, in_bytes, p->x);
                void *gy = guarded_place(&gb.y, y_bytes, p->y);
                float *gw = s.weights ? guarded_place(&gb.w, w_bytes, p->w) : NULL;
                float *gout = guarded_place(&gb.out, out_bytes, p->out);
                float *ggrad = p->in_place ? gx : guarded_place(&gb.grad, in_bytes, p->grad);
                float *gsum = guarded_place(&gb.sum, sizeof(float), END);
                dafl_stats *gstats = guarded_place(&gb.stats, sizeof(dafl_stats), END);
                memcpy(gx, x, in_bytes);
                memcpy(gy, y, y_bytes);
                if (gw)
                    memcpy(gw, w, w_bytes);
                fill_around(&gb.out, gout, out_bytes);
                if (!p->in_place)
                    fill_around(&gb.grad, ggrad, in_bytes);

                /* 1: per-element loss and gradient */
                dafl_status st = run_loss(loss, &s, gx, gy, gw, DAFL_REDUCTION_NONE, gout,
                                          ggrad, NULL, NULL);
                TEST_REQUIRE(st == DAFL_OK, "%s %s len %zu %s: %s", loss_names[loss],
                             dafl_isa_name(isa), len, where, dafl_status_string(st));
                size_t at = 0;
                TEST_REQUIRE(same_float_bits(gout, ref_out, s.outputs, &at),
                             "%s %s len %zu %s: loss[%zu] differs from scalar", loss_names[loss],
                             dafl_isa_name(isa), len, where, at);
                TEST_REQUIRE(same_float_bits(ggrad, ref_grad, s.inputs, &at),
                             "%s %s len %zu %s: grad[%zu] differs from scalar", loss_names[loss],
                             dafl_isa_name(isa), len, where, at);
                TEST_REQUIRE(untouched_around(&gb.out, gout, out_bytes),
                             "%s %s len %zu %s: wrote beside the loss buffer", loss_names[loss],
                             dafl_isa_name(isa), len, where);
                TEST_REQUIRE(p->in_place || untouched_around(&gb.grad, ggrad, in_bytes),
                             "%s %s len %zu %s: wrote beside the gradient buffer",
                             loss_names[loss], dafl_isa_name(isa), len, where);
                TEST_REQUIRE((p->in_place || memcmp(gx, x, in_bytes) == 0) &&
                                 memcmp(gy, y, y_bytes) == 0 &&
                                 (!gw || memcmp(gw, w, w_bytes) == 0),
                             "%s %s len %zu %s: an input changed", loss_names[loss],
                             dafl_isa_name(isa), len, where);

                /* 2: reduced loss into one float at a page end, statistics likewise, and
                 * the forward-only path (no gradient) */
                if (p->in_place)
                    memcpy(gx, x, in_bytes);
                st = run_loss(loss, &s, gx, gy, gw, DAFL_REDUCTION_SUM, gsum, NULL, gstats,
                              NULL);
                TEST_REQUIRE(st == DAFL_OK, "%s %s len %zu %s (sum): %s", loss_names[loss],
                             dafl_isa_name(isa), len, where, dafl_status_string(st));
                TEST_REQUIRE(test_same_bits(*gsum, ref_sum) &&
                                 memcmp(gstats, &ref_stats, sizeof ref_stats) == 0,
                             "%s %s len %zu %s: reduced loss or statistics differ",
                             loss_names[loss], dafl_isa_name(isa), len, where);
                float again;
                TEST_REQUIRE(dafl_stats_reduce(gstats, DAFL_REDUCTION_SUM, 1.0f, &again) ==
                                     DAFL_OK &&
                                 test_same_bits(again, ref_sum),
                             "%s: dafl_stats_reduce on guarded statistics", loss_names[loss]);
                calls += 2;
            }
        }
    }
    report_skipped(loss_names[loss]);
    printf("guard pages: %-30s %7ld calls, lengths 0..%d and %zu..%zu\n", loss_names[loss],
           calls, SHORT_LENGTHS - 1, extra_lengths[0], extra_lengths[3]);

    free(x);
    free(y);
    free(w);
    free(ref_out);
    free(ref_grad);
    guarded_free(&gb.x);
    guarded_free(&gb.y);
    guarded_free(&gb.w);
    guarded_free(&gb.out);
    guarded_free(&gb.grad);
    guarded_free(&gb.sum);
    guarded_free(&gb.stats);
    dafl_set_isa(DAFL_ISA_AUTO);
}
END_TEST

/* ---- half precision ----------------------------------------------------------------------- */

static const elem_types half_types[] = {
    {DAFL_DTYPE_BFLOAT16, DAFL_DTYPE_BFLOAT16, DAFL_DTYPE_BFLOAT16, "bf16/bf16/bf16"},
    {DAFL_DTYPE_FLOAT16, DAFL_DTYPE_FLOAT16, DAFL_DTYPE_FLOAT16, "f16/f16/f16"},
    {DAFL_DTYPE_BFLOAT16, DAFL_DTYPE_FLOAT32, DAFL_DTYPE_BFLOAT16, "bf16/f32/bf16"},
    {DAFL_DTYPE_FLOAT32, DAFL_DTYPE_FLOAT16, DAFL_DTYPE_BFLOAT16, "f32/f16/bf16"}};
#define N_HALF_TYPES (sizeof half_types / sizeof half_types[0])

/* The element-wise losses tested in half precision (softmax focal: float32 above). */
static const int half_losses[] = {L_PF_LOGITS, L_PF_CLAMPED, L_SIGMOID_FOCAL, L_BCE,
                                  L_MSE_WEIGHTS};
#define N_HALF_LOSSES (int)(sizeof half_losses / sizeof half_losses[0])

static size_t elem_size(dafl_dtype t) { return t == DAFL_DTYPE_FLOAT32 ? 4 : 2; }

/* Like guarded_place, offsets counted in elements of `size` bytes. */
static void *place_elems(const guarded *g, size_t bytes, int offset, size_t size)
{
    if (offset < 0)
        return g->hi - bytes;
    unsigned char *p = g->lo + (size_t)offset * size;
    ck_assert_msg(p + bytes <= g->hi, "guarded buffer too small");
    return p;
}

/* float32 values into 16-bit patterns, truncated (any value of the format will do), with
 * special patterns among the inputs: NaNs with payloads, subnormals, infinities. */
static uint16_t to_half_bits(dafl_dtype t, float f)
{
    uint32_t b;
    memcpy(&b, &f, 4);
    if (t == DAFL_DTYPE_BFLOAT16)
        return (uint16_t)(b >> 16);
    uint16_t sign = (uint16_t)((b >> 16) & 0x8000u);
    uint32_t a = b & 0x7fffffffu;
    if (a > 0x7f800000u)
        return (uint16_t)(sign | 0x7e00u | ((a >> 13) & 0x1ffu));
    if (a >= 0x47800000u) /* 65536 and up */
        return sign | 0x7c00u;
    if (a < 0x38800000u) /* below 2^-14: units of 2^-24 */
        return (uint16_t)(sign | (uint16_t)ldexpf(fabsf(f), 24));
    return (uint16_t)(sign | ((a - 0x38000000u) >> 13));
}

static void to_elems(dafl_dtype t, const float *f, void *out, size_t n, int specials)
{
    static const uint16_t bf16_specials[] = {0x7fc1, 0xff81, 0x0001, 0x807f, 0x7f80, 0x8000};
    static const uint16_t f16_specials[] = {0x7e01, 0xfd00, 0x0001, 0x83ff, 0xfc00, 0x8000};
    if (t == DAFL_DTYPE_FLOAT32) {
        memcpy(out, f, n * 4);
        return;
    }
    uint16_t *h = out;
    for (size_t i = 0; i < n; i++) {
        h[i] = to_half_bits(t, f[i]);
        if (specials && i % 7 == 3)
            h[i] = (t == DAFL_DTYPE_BFLOAT16 ? bf16_specials : f16_specials)[(i / 7) % 6];
    }
}

/* Element i of two arrays of type t hold the same value (any NaN equal to any NaN). */
static int same_elements(dafl_dtype t, const void *a, const void *b, size_t n, size_t *where)
{
    if (t == DAFL_DTYPE_FLOAT32)
        return same_float_bits(a, b, n, where);
    const uint16_t *x = a, *y = b;
    const uint16_t exp_mask = t == DAFL_DTYPE_BFLOAT16 ? 0x7f80 : 0x7c00;
    for (size_t i = 0; i < n; i++) {
        int nan_x = (x[i] & exp_mask) == exp_mask && (x[i] & ~(exp_mask | 0x8000u)),
            nan_y = (y[i] & exp_mask) == exp_mask && (y[i] & ~(exp_mask | 0x8000u));
        if (nan_x != nan_y || (!nan_x && x[i] != y[i])) {
            *where = i;
            return 0;
        }
    }
    return 1;
}

/* _i: index into half_losses */
START_TEST(half_losses_stay_inside_their_buffers)
{
    const int loss = half_losses[_i];
    const size_t max_bytes = MAX_LENGTH * sizeof(float) + 16 * sizeof(float);
    buffers gb;
    gb.x = guarded_alloc(max_bytes);
    gb.y = guarded_alloc(max_bytes);
    gb.w = guarded_alloc(max_bytes);
    gb.out = guarded_alloc(max_bytes);
    gb.grad = guarded_alloc(max_bytes);
    gb.sum = guarded_alloc(sizeof(float));
    gb.stats = guarded_alloc(sizeof(dafl_stats));
    float *xf = malloc(max_bytes), *yf = malloc(max_bytes), *w = malloc(max_bytes),
          *ref_out = malloc(max_bytes);
    void *x = malloc(max_bytes), *y = malloc(max_bytes), *ref_grad = malloc(max_bytes);
    ck_assert(xf && yf && w && ref_out && x && y && ref_grad);
    placement pl[MAX_PLACEMENTS];
    long calls = 0;

    for (size_t ti = 0; ti < N_HALF_TYPES; ti++) {
        const elem_types *t = &half_types[ti];
        const size_t xs = elem_size(t->x), ys = elem_size(t->y), gs = elem_size(t->g);
        const int n_placements = make_placements(pl, may_alias(loss) && xs == gs);
        for (int li = 0; li < N_LENGTHS; li++) {
            const size_t len = length_at(li);
            const shape s = shape_of(loss, len);
            make_inputs(loss, &s, 7000u * (uint64_t)loss + len, xf, yf, w);
            to_elems(t->x, xf, x, s.inputs, 1);
            to_elems(t->y, yf, y, s.targets, 0);
            const size_t x_bytes = s.inputs * xs, y_bytes = s.targets * ys,
                         g_bytes = s.inputs * gs, w_bytes = s.weights * sizeof(float),
                         out_bytes = s.outputs * sizeof(float);
            const float *w_heap = s.weights ? w : NULL;
            float ref_sum;
            dafl_stats ref_stats;
            ck_assert_int_eq(dafl_set_isa(DAFL_ISA_SCALAR), DAFL_OK);
            ck_assert_int_eq(run_loss(loss, &s, x, y, w_heap, DAFL_REDUCTION_NONE, ref_out,
                                      ref_grad, NULL, t),
                             DAFL_OK);
            ck_assert_int_eq(run_loss(loss, &s, x, y, w_heap, DAFL_REDUCTION_SUM, &ref_sum,
                                      NULL, &ref_stats, t),
                             DAFL_OK);
            for (int ii = 0; ii < TEST_ISA_COUNT; ii++) {
                const dafl_isa isa = test_all_isas[ii];
                if (!isa_tested(isa))
                    continue;
                ck_assert_int_eq(dafl_set_isa(isa), DAFL_OK);
                for (int pi = 0; pi < n_placements; pi++) {
                    const placement *p = &pl[pi];
                    char where[128];
                    describe(where, sizeof where, p);
                    CASE("%s %s, %s, length %zu, %s (offsets in elements)", loss_names[loss],
                         t->name, dafl_isa_name(isa), len, where);
                    void *gx = place_elems(&gb.x, x_bytes, p->x, xs);
                    void *gy = place_elems(&gb.y, y_bytes, p->y, ys);
                    float *gw = s.weights ? guarded_place(&gb.w, w_bytes, p->w) : NULL;
                    float *gout = guarded_place(&gb.out, out_bytes, p->out);
                    void *ggrad = p->in_place ? gx : place_elems(&gb.grad, g_bytes, p->grad, gs);
                    float *gsum = guarded_place(&gb.sum, sizeof(float), END);
                    dafl_stats *gstats = guarded_place(&gb.stats, sizeof(dafl_stats), END);
                    memcpy(gx, x, x_bytes);
                    memcpy(gy, y, y_bytes);
                    if (gw)
                        memcpy(gw, w, w_bytes);
                    fill_around(&gb.out, gout, out_bytes);
                    if (!p->in_place)
                        fill_around(&gb.grad, ggrad, g_bytes);
                    dafl_status st = run_loss(loss, &s, gx, gy, gw, DAFL_REDUCTION_NONE, gout,
                                              ggrad, NULL, t);
                    size_t at = 0;
                    TEST_REQUIRE(st == DAFL_OK, "%s %s %s len %zu %s: %s", loss_names[loss],
                                 t->name, dafl_isa_name(isa), len, where,
                                 dafl_status_string(st));
                    TEST_REQUIRE(same_float_bits(gout, ref_out, s.outputs, &at),
                                 "%s %s %s len %zu %s: loss[%zu] differs from scalar",
                                 loss_names[loss], t->name, dafl_isa_name(isa), len, where, at);
                    TEST_REQUIRE(same_elements(t->g, ggrad, ref_grad, s.inputs, &at),
                                 "%s %s %s len %zu %s: grad[%zu] differs from scalar",
                                 loss_names[loss], t->name, dafl_isa_name(isa), len, where, at);
                    TEST_REQUIRE(untouched_around(&gb.out, gout, out_bytes) &&
                                     (p->in_place || untouched_around(&gb.grad, ggrad, g_bytes)),
                                 "%s %s %s len %zu %s: wrote beside an output",
                                 loss_names[loss], t->name, dafl_isa_name(isa), len, where);
                    TEST_REQUIRE((p->in_place || memcmp(gx, x, x_bytes) == 0) &&
                                     memcmp(gy, y, y_bytes) == 0 &&
                                     (!gw || memcmp(gw, w, w_bytes) == 0),
                                 "%s %s %s len %zu %s: an input changed", loss_names[loss],
                                 t->name, dafl_isa_name(isa), len, where);
                    if (p->in_place)
                        memcpy(gx, x, x_bytes);
                    st = run_loss(loss, &s, gx, gy, gw, DAFL_REDUCTION_SUM, gsum, NULL, gstats,
                                  t);
                    TEST_REQUIRE(st == DAFL_OK && test_same_bits(*gsum, ref_sum) &&
                                     memcmp(gstats, &ref_stats, sizeof ref_stats) == 0,
                                 "%s %s %s len %zu %s: reduced loss or statistics differ",
                                 loss_names[loss], t->name, dafl_isa_name(isa), len, where);
                    calls += 2;
                }
            }
        }
    }
    char label[96];
    snprintf(label, sizeof label, "%s, half precision", loss_names[loss]);
    report_skipped(label);
    printf("guard pages: %-30s %7ld calls, %zu element-type combinations, lengths 0..%d and "
           "%zu..%zu\n",
           label, calls, N_HALF_TYPES, SHORT_LENGTHS - 1, extra_lengths[0], extra_lengths[3]);
    free(xf), free(yf), free(w), free(ref_out), free(x), free(y), free(ref_grad);
    guarded_free(&gb.x);
    guarded_free(&gb.y);
    guarded_free(&gb.w);
    guarded_free(&gb.out);
    guarded_free(&gb.grad);
    guarded_free(&gb.sum);
    guarded_free(&gb.stats);
    dafl_set_isa(DAFL_ISA_AUTO);
}
END_TEST

/* dafl_count_positives reads exactly its targets. */
START_TEST(count_positives_stays_inside)
{
    const size_t max_bytes = MAX_LENGTH * sizeof(float) + 16 * sizeof(float);
    guarded gt = guarded_alloc(max_bytes), gp = guarded_alloc(sizeof(uint64_t));
    float *t = malloc(max_bytes);
    ck_assert(t);
    long calls = 0;
    for (int li = 0; li < N_LENGTHS; li++) {
        const size_t len = length_at(li);
        uint64_t seed = 5 + len;
        for (size_t i = 0; i < len; i++)
            t[i] = test_rand64(&seed) % 3 == 0 ? 1.0f : test_uniform(&seed, 0.0f, 1.0f);
        uint64_t want;
        ck_assert_int_eq(dafl_set_isa(DAFL_ISA_SCALAR), DAFL_OK);
        ck_assert_int_eq(dafl_count_positives(t, len, 0, &want), DAFL_OK);
        for (int ii = 0; ii < TEST_ISA_COUNT; ii++) {
            if (!isa_tested(test_all_isas[ii]))
                continue;
            ck_assert_int_eq(dafl_set_isa(test_all_isas[ii]), DAFL_OK);
            for (int off = END; off < 16; off++) {
                float *g = guarded_place(&gt, len * sizeof(float), off);
                uint64_t *got = guarded_place(&gp, sizeof(uint64_t), END);
                memcpy(g, t, len * sizeof(float));
                CASE("count_positives, %s, length %zu, offset %d",
                     dafl_isa_name(test_all_isas[ii]), len, off);
                for (uint32_t flags = 0; flags <= DAFL_FLAG_TRUST_TARGETS; flags++) {
                    TEST_REQUIRE(dafl_count_positives(g, len, flags, got) == DAFL_OK &&
                                     *got == want,
                                 "count_positives %s len %zu offset %d",
                                 dafl_isa_name(test_all_isas[ii]), len, off);
                    calls++;
                }
            }
        }
    }
    report_skipped("count_positives");
    printf("guard pages: %-30s %7ld calls\n", "count_positives", calls);
    free(t);
    guarded_free(&gt);
    guarded_free(&gp);
    dafl_set_isa(DAFL_ISA_AUTO);
}
END_TEST

/* ---- target renderers ----------------------------------------------------------------- */

static const size_t sides_h[] = {1, 2, 3, 5, 8};
static const size_t sides_w[] = {1, 2, 3, 7, 16, 17};

static void fill_heatmap(float *hm, size_t count, uint64_t seed)
{
    for (size_t i = 0; i < count; i++) {
        uint64_t r = test_rand64(&seed) % 3;
        hm[i] = r == 0 ? 0.0f : test_uniform(&seed, 0.0f, 0.8f);
    }
}

/* Windows at every border and beyond: the heatmap ends at (or starts right after) a
 * guard page and must match the same call on a heap buffer. */
START_TEST(draw_gaussian_at_borders)
{
    const size_t max_bytes = 8 * 17 * sizeof(float);
    guarded g = guarded_alloc(max_bytes);
    float *ref = malloc(max_bytes), *init = malloc(max_bytes);
    ck_assert(ref && init);
    long calls = 0;
    for (size_t hi = 0; hi < sizeof sides_h / sizeof *sides_h; hi++)
        for (size_t wi = 0; wi < sizeof sides_w / sizeof *sides_w; wi++) {
            const size_t h = sides_h[hi], w = sides_w[wi], bytes = h * w * sizeof(float);
            fill_heatmap(init, h * w, h * 100 + w);
            for (long r = 0; r <= 4; r++)
                for (long cy = -r - 2; cy <= (long)h + r + 1; cy++)
                    for (long cx = -r - 2; cx <= (long)w + r + 1; cx++) {
                        const float k = (cx + cy) % 2 ? 1.0f : 0.75f;
                        memcpy(ref, init, bytes);
                        ck_assert_int_eq(dafl_draw_gaussian(ref, h, w, cx, cy, r, k), DAFL_OK);
                        for (int off = END; off <= 0; off++) {
                            float *hm = guarded_place(&g, bytes, off);
                            fill_around(&g, hm, bytes);
                            memcpy(hm, init, bytes);
                            CASE("draw_gaussian %zux%zu centre (%ld, %ld) radius %ld offset %d",
                                 h, w, cx, cy, r, off);
                            dafl_status st = dafl_draw_gaussian(hm, h, w, cx, cy, r, k);
                            size_t at = 0;
                            TEST_REQUIRE(st == DAFL_OK && same_float_bits(hm, ref, h * w, &at) &&
                                             untouched_around(&g, hm, bytes),
                                         "draw_gaussian %zux%zu centre (%ld, %ld) r %ld "
                                         "offset %d: status %d, pixel %zu",
                                         h, w, cx, cy, r, off, (int)st, at);
                            calls++;
                        }
                    }
        }
    printf("guard pages: %-30s %7ld calls\n", "draw_gaussian", calls);
    free(ref);
    free(init);
    guarded_free(&g);
}
END_TEST

START_TEST(draw_gaussian_sigma_at_borders)
{
    const size_t max_bytes = 8 * 17 * sizeof(float);
    guarded g = guarded_alloc(max_bytes);
    float *ref = malloc(max_bytes), *init = malloc(max_bytes);
    ck_assert(ref && init);
    const double sigmas[] = {0.3, 0.5, 1.0, 1.7};
    long calls = 0;
    for (size_t hi = 0; hi < sizeof sides_h / sizeof *sides_h; hi++)
        for (size_t wi = 0; wi < sizeof sides_w / sizeof *sides_w; wi++) {
            const size_t h = sides_h[hi], w = sides_w[wi], bytes = h * w * sizeof(float);
            fill_heatmap(init, h * w, h * 1000 + w);
            for (size_t si = 0; si < sizeof sigmas / sizeof *sigmas; si++) {
                const double sigma = sigmas[si], reach = 3.0 * sigma + 2.0;
                for (double cy = -reach; cy <= (double)h + reach; cy += 0.85)
                    for (double cx = -reach; cx <= (double)w + reach; cx += 0.7) {
                        memcpy(ref, init, bytes);
                        ck_assert_int_eq(dafl_draw_gaussian_sigma(ref, h, w, cx, cy, sigma),
                                         DAFL_OK);
                        for (int off = END; off <= 0; off++) {
                            float *hm = guarded_place(&g, bytes, off);
                            fill_around(&g, hm, bytes);
                            memcpy(hm, init, bytes);
                            CASE("draw_gaussian_sigma %zux%zu centre (%g, %g) sigma %g offset %d",
                                 h, w, cx, cy, sigma, off);
                            dafl_status st = dafl_draw_gaussian_sigma(hm, h, w, cx, cy, sigma);
                            size_t at = 0;
                            TEST_REQUIRE(st == DAFL_OK && same_float_bits(hm, ref, h * w, &at) &&
                                             untouched_around(&g, hm, bytes),
                                         "draw_gaussian_sigma %zux%zu centre (%g, %g) sigma %g "
                                         "offset %d: status %d, pixel %zu",
                                         h, w, cx, cy, sigma, off, (int)st, at);
                            calls++;
                        }
                    }
            }
        }
    printf("guard pages: %-30s %7ld calls\n", "draw_gaussian_sigma", calls);
    free(ref);
    free(init);
    guarded_free(&g);
}
END_TEST

START_TEST(distance_targets_stay_inside)
{
    const size_t max_side = 11;
    guarded gm = guarded_alloc(max_side * max_side), go =
        guarded_alloc(max_side * max_side * sizeof(float));
    uint8_t *mask = malloc(max_side * max_side);
    float *ref = malloc(max_side * max_side * sizeof(float));
    ck_assert(mask && ref);
    long calls = 0;
    for (size_t h = 1; h <= max_side; h++)
        for (size_t w = 1; w <= max_side; w++)
            for (int density = 0; density < 4; density++) {
                uint64_t seed = h * 131 + w * 7 + (uint64_t)density;
                for (size_t i = 0; i < h * w; i++)
                    mask[i] = density && test_rand64(&seed) % (uint64_t)(4 * density) == 0
                                  ? (uint8_t)(1 + test_rand64(&seed) % 255)
                                  : 0;
                ck_assert_int_eq(dafl_distance_targets(mask, h, w, 1.5, ref), DAFL_OK);
                for (int off_m = END; off_m <= 0; off_m++)
                    for (int off_o = END; off_o <= 3; off_o++) {
                        uint8_t *gmask = off_m < 0 ? gm.hi - h * w : gm.lo;
                        float *gout = guarded_place(&go, h * w * sizeof(float), off_o);
                        memcpy(gmask, mask, h * w);
                        fill_around(&go, gout, h * w * sizeof(float));
                        CASE("distance_targets %zux%zu density %d mask@%d out@%d", h, w, density,
                             off_m, off_o);
                        dafl_status st = dafl_distance_targets(gmask, h, w, 1.5, gout);
                        size_t at = 0;
                        TEST_REQUIRE(st == DAFL_OK && same_float_bits(gout, ref, h * w, &at) &&
                                         untouched_around(&go, gout, h * w * sizeof(float)) &&
                                         memcmp(gmask, mask, h * w) == 0,
                                     "distance_targets %zux%zu density %d mask@%d out@%d: "
                                     "status %d, pixel %zu",
                                     h, w, density, off_m, off_o, (int)st, at);
                        calls++;
                    }
            }
    printf("guard pages: %-30s %7ld calls\n", "distance_targets", calls);
    free(mask);
    free(ref);
    guarded_free(&gm);
    guarded_free(&go);
}
END_TEST

/* Keypoint batches: the rendered heatmaps, and the loss from the keypoints with its
 * input, gradient and per-element loss, each against a guard page (or just after one),
 * the keypoint array too, on shapes around the block size, with keypoints over every
 * border; results equal the same calls on heap buffers. */
START_TEST(keypoints_stay_inside)
{
    static const size_t shapes[][4] = {{1, 1, 3, 5}, {2, 3, 5, 7},   {1, 1, 32, 32},
                                       {1, 1, 33, 31}, {2, 1, 25, 41}, {1, 2, 1, 17}};
    enum { POINTS = 12 };
    const size_t max_count = 2 * 1 * 25 * 41 + 64;
    guarded gx = guarded_alloc(max_count * sizeof(float)), gg = guarded_alloc(max_count * sizeof(float)),
            gl = guarded_alloc(max_count * sizeof(float)),
            gk = guarded_alloc(POINTS * sizeof(dafl_keypoint) + 64);
    float *x = malloc(max_count * sizeof(float)), *ref_grad = malloc(max_count * sizeof(float)),
          *ref_loss = malloc(max_count * sizeof(float)),
          *ref_heat = malloc(max_count * sizeof(float));
    ck_assert(x && ref_grad && ref_loss && ref_heat);
    long calls = 0;
    for (size_t si = 0; si < sizeof shapes / sizeof *shapes; si++) {
        const size_t n = shapes[si][0], c = shapes[si][1], h = shapes[si][2], w = shapes[si][3];
        const size_t count = n * c * h * w, bytes = count * sizeof(float);
        dafl_keypoint kp[POINTS];
        uint64_t seed = 31 * si + 5;
        for (int i = 0; i < POINTS; i++) {
            uint64_t r = test_rand64(&seed);
            dafl_keypoint_init(&kp[i]);
            kp[i].image = (int64_t)(r % n);
            kp[i].channel = (int64_t)((r >> 8) % c);
            kp[i].style = i % 3 == 2 ? DAFL_KEYPOINT_MSRA
                          : i % 5 == 4 ? DAFL_KEYPOINT_DISTANCE
                                       : DAFL_KEYPOINT_UMICH;
            kp[i].x = (double)((long)((r >> 16) % (w + 8)) - 4);
            kp[i].y = (double)((long)((r >> 24) % (h + 8)) - 4);
            kp[i].size = kp[i].style != DAFL_KEYPOINT_UMICH ? 0.6 + (double)((r >> 32) % 4)
                                                            : (double)((r >> 32) % 6);
        }
        for (size_t i = 0; i < count; i++)
            x[i] = test_uniform(&seed, -12.0f, 12.0f);
        for (int ii = 0; ii < TEST_ISA_COUNT; ii++) {
            const dafl_isa isa = test_all_isas[ii];
            if (!isa_tested(isa))
                continue;
            ck_assert_int_eq(dafl_set_isa(isa), DAFL_OK);
            dafl_penalty_focal_params p;
            dafl_penalty_focal_params_init(&p);
            p.reduction = DAFL_REDUCTION_NONE;
            ck_assert_int_eq(dafl_penalty_focal_keypoints(x, n, c, h, w, kp, POINTS, &p,
                                                          ref_loss, ref_grad, NULL),
                             DAFL_OK);
            ck_assert_int_eq(dafl_render_heatmaps(kp, POINTS, n, c, h, w, ref_heat), DAFL_OK);
            for (int off = END; off <= 3; off++) {
                dafl_keypoint *gkp = guarded_place(&gk, sizeof kp, off < 0 ? END : 0);
                memcpy(gkp, kp, sizeof kp);
                float *gin = guarded_place(&gx, bytes, off), *ggrad = guarded_place(&gg, bytes, off),
                      *gloss = guarded_place(&gl, bytes, off);
                memcpy(gin, x, bytes);
                fill_around(&gg, ggrad, bytes);
                fill_around(&gl, gloss, bytes);
                CASE("keypoint loss %zux%zux%zux%zu %s offset %d", n, c, h, w,
                     dafl_isa_name(isa), off);
                dafl_status st = dafl_penalty_focal_keypoints(gin, n, c, h, w, gkp, POINTS, &p,
                                                              gloss, ggrad, NULL);
                size_t at = 0;
                TEST_REQUIRE(st == DAFL_OK && same_float_bits(ggrad, ref_grad, count, &at) &&
                                 same_float_bits(gloss, ref_loss, count, &at) &&
                                 untouched_around(&gg, ggrad, bytes) &&
                                 untouched_around(&gl, gloss, bytes) &&
                                 memcmp(gin, x, bytes) == 0,
                             "keypoint loss %zux%zux%zux%zu %s offset %d: status %d, element %zu",
                             n, c, h, w, dafl_isa_name(isa), off, (int)st, at);
                /* the renderer writes the same place */
                CASE("render %zux%zux%zux%zu offset %d", n, c, h, w, off);
                fill_around(&gl, gloss, bytes);
                st = dafl_render_heatmaps(gkp, POINTS, n, c, h, w, gloss);
                TEST_REQUIRE(st == DAFL_OK && same_float_bits(gloss, ref_heat, count, &at) &&
                                 untouched_around(&gl, gloss, bytes),
                             "render %zux%zux%zux%zu offset %d: status %d", n, c, h, w, off,
                             (int)st);
                calls += 2;
            }
        }
    }
    report_skipped("keypoints");
    printf("guard pages: %-30s %7ld calls\n", "keypoints", calls);
    dafl_set_isa(DAFL_ISA_AUTO);
    free(x);
    free(ref_grad);
    free(ref_loss);
    free(ref_heat);
    guarded_free(&gx);
    guarded_free(&gg);
    guarded_free(&gl);
    guarded_free(&gk);
}
END_TEST

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    name_faults();
    Suite *s = suite_create("guard");
    TCase *tc = tcase_create("guard");
    tcase_set_timeout(tc, 600);
    tcase_add_loop_test(tc, losses_stay_inside_their_buffers, 0, L_COUNT);
    tcase_add_loop_test(tc, half_losses_stay_inside_their_buffers, 0, N_HALF_LOSSES);
    tcase_add_test(tc, count_positives_stays_inside);
    tcase_add_test(tc, draw_gaussian_at_borders);
    tcase_add_test(tc, draw_gaussian_sigma_at_borders);
    tcase_add_test(tc, distance_targets_stay_inside);
    tcase_add_test(tc, keypoints_stay_inside);
    suite_add_tcase(s, tc);
    return test_run_suite(s);
}
