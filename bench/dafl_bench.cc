/*
 * dafl-bench: how fast every dafl loss runs on every instruction set this CPU has, and
 * how that compares with references measured in the same run.
 *
 * What is measured (one thread except the "-tN" rows; names are loss/pass/impl/elements):
 *   - every loss, forward only ("fwd") and forward + gradient ("fwd_grad"), with its
 *     kernels forced through dafl_set_isa() to each ISA the CPU has (the run's label is
 *     the ISA's name); an ISA the CPU or the build lacks is not registered, and a line
 *     on stderr says so;
 *   - the penalty-reduced focal loss twice: the default call (divide by the positives
 *     in the call, targets validated: one extra read of the targets) and the one-pass
 *     call a trainer with a known normalizer makes (DAFL_REDUCTION_NORMALIZER with
 *     DAFL_FLAG_TRUST_TARGETS);
 *   - sizes from 4 K elements (in L1) to 64 M (DRAM), including 8 x 80 x 128 x 128, the
 *     heatmap head of CenterNet on COCO;
 *   - the references ("bandwidth", "naive_penalty_focal"), see bench/baselines.h;
 *   - half precision (dafl_dtype) at 64 K and 64 M elements, forward + gradient: the
 *     losses with a ".bf16" suffix read bfloat16 logits and targets and write a bfloat16
 *     gradient (6 bytes per element), ".f16" the same in float16, ".bf16_logits" bfloat16
 *     logits and gradient with float32 targets (8 bytes), next to the float32 rows of the
 *     same loss (12 bytes); at 64 M also on one and on all of dafl's threads ("-tN").
 *
 * Every dafl result gets counters computed from the references measured at the same
 * size in this run: bw_frac (its elements/s over the bandwidth loop's, so 1.0 is the
 * memory limit) and, for the penalty-reduced focal loss with gradient, x_naive_O2 and
 * x_autovec (how many times faster than the naive loop at -O2 and auto-vectorized).
 * Benchmarks are registered size by size, so a result and its references are measured
 * close together in time: on a busy machine their ratio is steadier than either number.
 *
 * Bytes per second count the bytes a call must move at least (input and target read,
 * gradient written: 12 bytes per element; 8 without the gradient; softmax reads one
 * int32 label per pixel instead of a float target per element; 2 bytes for each
 * half-precision array), whatever extra passes a configuration makes, so they compare
 * directly with the bandwidth loop.  The counter bytes_per_element says how many that is
 * per element; bw_frac (the bandwidth loop moves 12 or 8) is left out of half rows.
 *
 * Before measuring, the program checks that what it measures is right: every ISA gives
 * the scalar kernels' bits, and the naive loops agree with dafl's clamped-logits mode.
 * It exits with status 1 and a message when they do not.  Times are never checked.
 *
 * What each row says (console, JSON and CSV): its label names the ISA (or the reference),
 * the threads the call ran on and the clock its rates are per; the counter dafl_threads and
 * the JSON field "threads" give the thread count.  One-thread rows report rates per CPU
 * second of the calling thread (Google Benchmark's default: time the scheduler gave to
 * other work does not count); the multi-thread rows ("-tN") per wall-clock second, since
 * the calling thread's CPU time would count only its own share of the work.  The JSON
 * context carries dafl's version, the compilers and the flags dafl was built with.  In
 * CSV (--benchmark_format=csv, --benchmark_out_format=csv) every row has the same columns:
 * a counter that does not apply to a row (bw_frac of a reference, extra_MiB outside the
 * keypoint rows) is NaN there, printed "nan".
 *
 * Own flags (besides Google Benchmark's --benchmark_*, all listed by --help):
 *   --dafl_max_elements=N   measure sizes up to N elements only (default: 64 M; the
 *                           buffers take 12 bytes per element of the largest size)
 */
#include <benchmark/benchmark.h>

#include <dafl.h>

#include "baselines.h"

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <algorithm>
#include <map>
#include <memory>
#include <ostream>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include <unistd.h>

namespace {

// ---- sizes and shapes ----------------------------------------------------------------

constexpr size_t kPlane = 128 * 128;              // one 128 x 128 heatmap channel
constexpr size_t kCenterNet = 8 * 80 * kPlane;    // batch 8 x 80 COCO classes x 128 x 128
constexpr size_t kChannels = 16;                  // classes (softmax) and channels (MSE)
constexpr size_t kCheckElements = 65536 + 3 * 16; // not a multiple of a block: tails too

const size_t kSizes[] = {size_t(1) << 12, size_t(1) << 14, size_t(1) << 16,
                         size_t(1) << 18, size_t(1) << 20, size_t(1) << 22,
                         kCenterNet,      size_t(1) << 24, size_t(1) << 26};

// Softmax focal and MSE take an n x c x hw batch: c = kChannels, planes of up to
// 128 x 128, as many images as the element count needs.  Every size above divides.
struct Shape {
    size_t images, channels, pixels;
};

Shape batch_shape(size_t elements)
{
    size_t per_channel = elements / kChannels;
    size_t pixels = per_channel < kPlane ? per_channel : kPlane;
    return {elements / (kChannels * pixels), kChannels, pixels};
}

// Softmax focal with any class count: the pixels the element count holds, in as few
// images of at most one plane each as they fit (16 classes: the batch_shape above; 19
// classes, Cityscapes' evaluation set, uses up to 18 elements fewer than asked).
Shape label_shape(size_t elements, size_t classes)
{
    size_t pixels = elements / classes;
    size_t images = (pixels + kPlane - 1) / kPlane;
    return {images, classes, pixels / images};
}

size_t label_elements(size_t elements, size_t classes)
{
    Shape s = label_shape(elements, classes);
    return s.images * s.channels * s.pixels;
}

// ---- the data: one set of buffers for the largest size, every run uses a prefix ------

struct Buffers {
    size_t capacity = 0;
    float *x = nullptr;        // logits
    float *y = nullptr;        // Gaussian heatmap targets, 1.0 at each object's centre
    float *y_hard = nullptr;   // binary targets: 1 where the heatmap is above 1/2
    float *grad = nullptr;     // gradient output
    int32_t *labels = nullptr;   // softmax labels, one per pixel, 16 classes
    int32_t *labels19 = nullptr; // the same for 19 classes
    float channel_weights[kChannels];
    // x and y rounded to nearest even into bfloat16 and float16, and the gradient of a
    // half-precision call (bit patterns)
    uint16_t *x_bf16 = nullptr, *y_bf16 = nullptr, *x_f16 = nullptr, *y_f16 = nullptr;
    uint16_t *grad16 = nullptr;
};
Buffers data;

// A small fast generator (xorshift64*): the data only needs to look irregular.
struct Random {
    uint64_t state;
    uint64_t next()
    {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        return state * 0x2545F4914F6CDD1Dull;
    }
    double uniform() { return double(next() >> 11) * (1.0 / 9007199254740992.0); }
    size_t below(size_t n) { return size_t(uniform() * double(n)); }
};

// 64-byte alignment, as a framework's tensor allocator gives; the memory is written
// right away so that no page fault lands inside a measurement.
template <class T> T *allocate(size_t count)
{
    size_t bytes = (count * sizeof(T) + 63) / 64 * 64;
    void *p = std::aligned_alloc(64, bytes);
    if (!p) {
        std::fprintf(stderr, "dafl-bench: cannot allocate %zu bytes\n", bytes);
        std::exit(1);
    }
    std::memset(p, 0, bytes);
    return static_cast<T *>(p);
}

// Targets that look like CenterNet's on COCO: the array is a sequence of 128 x 128
// planes, 80 to an image; each image holds 1 to 14 objects, each a Gaussian bump of
// radius 1..12 in the plane of its class.  The first plane always gets an object near
// its top, so that even the 4 K-element prefix contains a positive.
void fill_targets(float *y, size_t count, Random &rng)
{
    const size_t planes = count / kPlane;
    const size_t per_image = 80;
    if (planes > 0)
        dafl_draw_gaussian(y, 128, 128, 64, 12, 6, 1.0f);
    for (size_t first = 0; first < planes; first += per_image) {
        size_t objects = 1 + rng.below(14);
        for (size_t o = 0; o < objects; o++) {
            size_t plane = first + rng.below(per_image);
            if (plane >= planes)
                continue;
            long cx = long(rng.below(128)), cy = long(rng.below(128));
            long radius = long(1 + rng.below(12));
            dafl_draw_gaussian(y + plane * kPlane, 128, 128, cx, cy, radius, 1.0f);
        }
    }
}

void allocate_data(size_t capacity)
{
    Random rng{0x9E3779B97F4A7C15ull};
    data.capacity = capacity;
    data.x = allocate<float>(capacity);
    data.y = allocate<float>(capacity);
    data.y_hard = allocate<float>(capacity);
    data.grad = allocate<float>(capacity);
    data.labels = allocate<int32_t>(capacity / kChannels);
    data.labels19 = allocate<int32_t>(capacity / 19);
    fill_targets(data.y, capacity, rng);
    // RetinaNet's anchors are labelled 0 or 1: the same objects as hard targets.
    for (size_t i = 0; i < capacity; i++)
        data.y_hard[i] = data.y[i] > 0.5f ? 1.0f : 0.0f;
    // Logits like a network's part-way through training: mostly confident negatives,
    // higher where the target is high, a spread that reaches both clamp limits now and
    // then (|x| > 9.2 for eps = 1e-4).
    for (size_t i = 0; i < capacity; i++) {
        double spread = 6.0 * (rng.uniform() + rng.uniform() - 1.0);
        data.x[i] = float(-4.0 + spread + 8.0 * data.y[i]);
    }
    // Labels for 16 classes, 2 % of the pixels ignored (PyTorch's -100).
    for (size_t i = 0; i < capacity / kChannels; i++)
        data.labels[i] = rng.below(50) == 0 ? -100 : int32_t(rng.below(kChannels));
    // Per-channel MSE weights: joint visibility, every fifth channel invisible.
    for (size_t c = 0; c < kChannels; c++)
        data.channel_weights[c] = c % 5 == 4 ? 0.0f : 1.0f;
    for (size_t i = 0; i < capacity / 19; i++)
        data.labels19[i] = rng.below(50) == 0 ? -100 : int32_t(rng.below(19));
}

// Round to nearest, ties to even (finite values only: the data has no others).
uint16_t bf16_of(float f)
{
    uint32_t b;
    std::memcpy(&b, &f, sizeof b);
    return uint16_t((b + 0x7fffu + ((b >> 16) & 1u)) >> 16);
}

uint16_t f16_of(float f)
{
    const double a = std::fabs(double(f));
    const uint16_t sign = std::signbit(f) ? 0x8000 : 0;
    if (a >= 65520.0)
        return sign | 0x7c00;
    int e;
    std::frexp(a, &e); // a = m * 2^e, m in [0.5, 1)
    if (a == 0.0 || e - 1 < -14) // subnormal range: units of 2^-24 (1024 units is 2^-14)
        return sign | uint16_t(std::nearbyint(std::ldexp(a, 24)));
    // 1024..2048 units of 2^(e-11); 2048 carries into the exponent field, as it should
    const unsigned m = unsigned(std::nearbyint(std::ldexp(a, 11 - e)));
    return sign | uint16_t((unsigned(e - 1 + 15) << 10) + m - 1024);
}

void allocate_half_data(size_t capacity)
{
    data.x_bf16 = allocate<uint16_t>(capacity);
    data.y_bf16 = allocate<uint16_t>(capacity);
    data.x_f16 = allocate<uint16_t>(capacity);
    data.y_f16 = allocate<uint16_t>(capacity);
    data.grad16 = allocate<uint16_t>(capacity);
    for (size_t i = 0; i < capacity; i++) {
        data.x_bf16[i] = bf16_of(data.x[i]);
        data.y_bf16[i] = bf16_of(data.y[i]);
        data.x_f16[i] = f16_of(data.x[i]);
        data.y_f16[i] = f16_of(data.y[i]);
    }
}

float positives_normalizer(size_t n)
{
    uint64_t positives = 0;
    dafl_count_positives(data.y, n, DAFL_FLAG_TRUST_TARGETS, &positives);
    return positives ? float(positives) : 1.0f;
}

// ---- element types ----------------------------------------------------------------------

// The element types of a call's input, target and gradient, and the suffix its rows get.
struct Dtypes {
    dafl_dtype x, y, grad;
    const char *suffix;
};
constexpr dafl_dtype kF32 = DAFL_DTYPE_FLOAT32, kBF16 = DAFL_DTYPE_BFLOAT16,
                     kF16 = DAFL_DTYPE_FLOAT16;
constexpr Dtypes kFloat32{kF32, kF32, kF32, ""};
// What mixed-precision training hands a loss: everything in bfloat16 (autocast's), all in
// float16, and bfloat16 logits against float32 Gaussian targets.
const Dtypes kHalfDtypes[] = {{kBF16, kBF16, kBF16, ".bf16"},
                              {kF16, kF16, kF16, ".f16"},
                              {kBF16, kF32, kBF16, ".bf16_logits"}};
// The sizes the half-precision rows are measured at: in L2, and in DRAM.
const size_t kHalfSizes[] = {size_t(1) << 16, size_t(1) << 26};

int64_t element_size(dafl_dtype t) { return t == kF32 ? 4 : 2; }

const float *input_of(dafl_dtype t)
{
    return t == kBF16  ? reinterpret_cast<const float *>(data.x_bf16)
           : t == kF16 ? reinterpret_cast<const float *>(data.x_f16)
                       : data.x;
}

const float *target_of(dafl_dtype t)
{
    return t == kBF16  ? reinterpret_cast<const float *>(data.y_bf16)
           : t == kF16 ? reinterpret_cast<const float *>(data.y_f16)
                       : data.y;
}

float *grad_buffer(dafl_dtype t)
{
    return t == kF32 ? data.grad : reinterpret_cast<float *>(data.grad16);
}

template <class Params> void set_dtypes(Params *p, const Dtypes &dt)
{
    p->input_dtype = dt.x;
    p->target_dtype = dt.y;
    p->grad_dtype = dt.grad;
}

// ---- the dafl calls measured ---------------------------------------------------------

// One call of one loss in one configuration over the first n elements, with the inputs
// of the element types dt names (the float32 arrays or their rounded copies; softmax
// focal: float32 only).  `normalizer` is the call's positive count (at least 1): the
// divisor a trainer would pass.
using LossCall = dafl_status (*)(size_t n, float normalizer, const Dtypes &dt, float *loss,
                                 float *grad);

dafl_penalty_focal_params one_pass_penalty(dafl_input_mode mode, float normalizer)
{
    dafl_penalty_focal_params p;
    dafl_penalty_focal_params_init(&p);
    p.input_mode = mode;
    p.reduction = DAFL_REDUCTION_NORMALIZER;
    p.normalizer = normalizer;
    p.flags = DAFL_FLAG_TRUST_TARGETS;
    return p;
}

dafl_status penalty_default(size_t n, float, const Dtypes &dt, float *loss, float *grad)
{
    dafl_penalty_focal_params p;
    dafl_penalty_focal_params_init(&p);
    set_dtypes(&p, dt);
    return dafl_penalty_focal(input_of(dt.x), target_of(dt.y), n, &p, loss, grad, nullptr);
}

dafl_status penalty_one_pass(size_t n, float normalizer, const Dtypes &dt, float *loss,
                             float *grad)
{
    dafl_penalty_focal_params p = one_pass_penalty(DAFL_INPUT_LOGITS, normalizer);
    set_dtypes(&p, dt);
    return dafl_penalty_focal(input_of(dt.x), target_of(dt.y), n, &p, loss, grad, nullptr);
}

dafl_status penalty_clamped_one_pass(size_t n, float normalizer, const Dtypes &dt,
                                     float *loss, float *grad)
{
    dafl_penalty_focal_params p = one_pass_penalty(DAFL_INPUT_CLAMPED_LOGITS, normalizer);
    set_dtypes(&p, dt);
    return dafl_penalty_focal(input_of(dt.x), target_of(dt.y), n, &p, loss, grad, nullptr);
}

// RetinaNet also divides by the number of positive anchors.  (The hard targets exist in
// float32 only.)
template <int gamma_tenths, bool hard = false>
dafl_status sigmoid_focal(size_t n, float normalizer, const Dtypes &dt, float *loss,
                          float *grad)
{
    dafl_sigmoid_focal_params p;
    dafl_sigmoid_focal_params_init(&p);
    p.gamma = float(gamma_tenths) / 10.0f;
    p.reduction = DAFL_REDUCTION_NORMALIZER;
    p.normalizer = normalizer;
    p.flags = DAFL_FLAG_TRUST_TARGETS;
    set_dtypes(&p, dt);
    return dafl_sigmoid_focal(input_of(dt.x), hard ? data.y_hard : target_of(dt.y), n, &p,
                              loss, grad, nullptr);
}

dafl_status bce(size_t n, float, const Dtypes &dt, float *loss, float *grad)
{
    dafl_bce_params p;
    dafl_bce_params_init(&p);
    p.reduction = DAFL_REDUCTION_NORMALIZER; // the mean, without a count pass
    p.normalizer = float(n);
    p.flags = DAFL_FLAG_TRUST_TARGETS;
    set_dtypes(&p, dt);
    return dafl_bce_with_logits(input_of(dt.x), target_of(dt.y), n, &p, loss, grad, nullptr);
}

template <size_t classes>
dafl_status softmax_focal(size_t n, float, const Dtypes &, float *loss, float *grad)
{
    Shape s = label_shape(n, classes);
    dafl_softmax_focal_params p;
    dafl_softmax_focal_params_init(&p);
    p.reduction = DAFL_REDUCTION_NORMALIZER;
    p.normalizer = float(s.images * s.pixels);
    p.flags = DAFL_FLAG_TRUST_TARGETS;
    return dafl_softmax_focal(data.x, classes == 19 ? data.labels19 : data.labels, s.images,
                              s.channels, s.pixels, &p, loss, grad, nullptr);
}

dafl_status mse(size_t n, float, const Dtypes &dt, float *loss, float *grad)
{
    Shape s = batch_shape(n);
    dafl_mse_params p;
    dafl_mse_params_init(&p);
    p.weights = data.channel_weights;
    p.weights_count = s.channels;
    p.reduction = DAFL_REDUCTION_NORMALIZER;
    p.normalizer = float(n);
    p.flags = DAFL_FLAG_TRUST_TARGETS;
    set_dtypes(&p, dt);
    return dafl_mse(input_of(dt.x), target_of(dt.y), s.images, s.channels, s.pixels, &p, loss,
                    grad, nullptr);
}

struct LossCase {
    const char *name;
    LossCall call;
    bool penalty_focal; // compared with the naive loops
    bool labels;        // targets are int32 labels per pixel (softmax focal)
    size_t classes = 0; // and their class count (16 or 19)
    bool half = false;  // measured in half precision too (kHalfDtypes, kHalfSizes)
    bool half_threads = false; // and at 64 M on one and on all threads, float32 beside it
};

const LossCase kCases[] = {
    {"penalty_focal.logits.default", penalty_default, true, false},
    {"penalty_focal.logits.one_pass", penalty_one_pass, true, false, 0, true, true},
    {"penalty_focal.clamped.one_pass", penalty_clamped_one_pass, true, false},
    {"sigmoid_focal.gamma2", sigmoid_focal<20>, false, false, 0, true},
    {"sigmoid_focal.gamma2_5", sigmoid_focal<25>, false, false},
    {"sigmoid_focal.gamma2.hard", sigmoid_focal<20, true>, false, false},
    {"bce_with_logits", bce, false, false, 0, true, true},
    {"softmax_focal.c16", softmax_focal<16>, false, true, 16},
    {"softmax_focal.c19", softmax_focal<19>, false, true, 19},
    {"mse.c16", mse, false, false, 0, true},
};

// The least traffic a call must make: read the input and the targets (or labels), and
// write the gradient when there is one, each in its element type.
int64_t bytes_moved(const LossCase &c, size_t n, bool with_grad, const Dtypes &dt)
{
    int64_t input = int64_t(n) * element_size(dt.x);
    int64_t targets = c.labels ? int64_t(n / c.classes) * 4 : int64_t(n) * element_size(dt.y);
    return input + targets + (with_grad ? int64_t(n) * element_size(dt.grad) : 0);
}

// ---- what each registered benchmark is, for the counters computed after it ran ------

enum class Role { bandwidth, naive_o2, naive_autovec, dafl };

struct Meta {
    Role role;
    bool with_grad;
    bool penalty_focal;
    bool half = false; // no bw_frac: the bandwidth loop moves float32's bytes
};
std::map<std::string, Meta> meta_by_name; // keyed by the name without the size

const char *pass_name(bool with_grad) { return with_grad ? "fwd_grad" : "fwd"; }

// ---- the benchmark bodies ------------------------------------------------------------

void set_throughput(benchmark::State &state, size_t n, int64_t bytes_per_call)
{
    state.SetItemsProcessed(int64_t(state.iterations()) * int64_t(n));
    state.SetBytesProcessed(int64_t(state.iterations()) * bytes_per_call);
}

// The threads a call of n elements runs on when dafl may use `threads`: smaller calls
// stay on the calling thread.
int threads_used(size_t n, int threads)
{
    return n < DAFL_MIN_PARALLEL_ELEMENTS ? 1 : threads;
}

// "avx2, 1 thread, CPU time": what ran, on how many threads, and the clock its rates are
// per (wall_clock: registered with UseRealTime(), see add()).
std::string row_label(const std::string &what, int threads, bool wall_clock)
{
    return what + ", " + std::to_string(threads) + (threads == 1 ? " thread" : " threads") +
           (wall_clock ? ", wall-clock time" : ", CPU time");
}

// Elements of the untimed call before a measurement (see run_dafl).
size_t warm_up_elements(size_t n)
{
    return n <= (size_t(1) << 22) ? n : kCheckElements;
}

void run_dafl(benchmark::State &state, const LossCase *c, const Dtypes &dt, dafl_isa isa,
              bool with_grad, int threads, bool wall_clock)
{
    const size_t n = size_t(state.range(0));
    dafl_status st = dafl_set_isa(isa);
    if (st != DAFL_OK) {
        state.SkipWithError(dafl_status_string(st));
        return;
    }
#ifdef DAFL_MAX_THREADS
    dafl_set_threads(threads);
#else
    (void)threads;
#endif
    const float normalizer = positives_normalizer(n);
    float *grad = with_grad ? grad_buffer(dt.grad) : nullptr;
    float loss = 0.0f;
    // One call before the clock starts: it must succeed, and it warms the caches that
    // the data fits in, as the calls of a training loop find them.  Data in DRAM has no
    // cache to warm, and there a call on the scalar kernels takes seconds, so the
    // status is checked with a short call instead.
    st = c->call(warm_up_elements(n), normalizer, dt, &loss, grad);
    if (st != DAFL_OK) {
        state.SkipWithError(dafl_status_string(st));
    } else {
        for (auto _ : state) {
            c->call(n, normalizer, dt, &loss, grad);
            benchmark::DoNotOptimize(loss);
            benchmark::ClobberMemory();
        }
        // a class count that does not divide n leaves a few elements out (label_shape)
        const size_t used = c->labels ? label_elements(n, c->classes) : n;
        const int64_t bytes = bytes_moved(*c, used, with_grad, dt);
        set_throughput(state, used, bytes);
        state.counters["bytes_per_element"] = double(bytes) / double(used);
        state.counters["dafl_threads"] = threads_used(n, threads);
        state.SetLabel(row_label(dafl_isa_name(isa), threads_used(n, threads), wall_clock));
    }
#ifdef DAFL_MAX_THREADS
    dafl_set_threads(1);
#endif
}

void run_bandwidth(benchmark::State &state, bool with_grad)
{
    const size_t n = size_t(state.range(0));
    if (with_grad) {
        bandwidth_move(data.x, data.y, data.grad, n);
        for (auto _ : state) {
            bandwidth_move(data.x, data.y, data.grad, n);
            benchmark::ClobberMemory();
        }
    } else {
        benchmark::DoNotOptimize(bandwidth_read(data.x, data.y, n));
        for (auto _ : state)
            benchmark::DoNotOptimize(bandwidth_read(data.x, data.y, n));
    }
    set_throughput(state, n, int64_t(n) * (with_grad ? 12 : 8));
    state.counters["dafl_threads"] = 1;
    state.SetLabel(row_label(with_grad ? "memory, 12 B/element" : "memory, 8 B/element", 1, false));
}

// The bandwidth loop on `threads` threads, each moving a contiguous share: the limit the
// multi-threaded fused call is compared with.  Threads start inside the timed region, as
// a pool's wake-up would; at the sizes this runs at (>= 1M elements) that is noise.
void run_bandwidth_threads(benchmark::State &state, int threads)
{
    const size_t n = size_t(state.range(0));
    auto move_all = [n, threads]() {
        std::vector<std::thread> pool;
        for (int t = 0; t < threads; t++) {
            size_t begin = n * size_t(t) / size_t(threads), end = n * size_t(t + 1) / size_t(threads);
            pool.emplace_back([begin, end]() {
                bandwidth_move(data.x + begin, data.y + begin, data.grad + begin, end - begin);
            });
        }
        for (std::thread &t : pool)
            t.join();
    };
    move_all();
    for (auto _ : state) {
        move_all();
        benchmark::ClobberMemory();
    }
    set_throughput(state, n, int64_t(n) * 12);
    state.counters["dafl_threads"] = threads;
    state.SetLabel(row_label("memory, 12 B/element", threads, true));
}

using NaiveLoop = double (*)(const float *, const float *, size_t, float, float, float, float,
                             float *);

void run_naive(benchmark::State &state, NaiveLoop loop, const char *label)
{
    const size_t n = size_t(state.range(0));
    const float normalizer = positives_normalizer(n);
    double loss = loop(data.x, data.y, warm_up_elements(n), 2.0f, 4.0f, 1e-4f, normalizer,
                       data.grad);
    for (auto _ : state) {
        loss = loop(data.x, data.y, n, 2.0f, 4.0f, 1e-4f, normalizer, data.grad);
        benchmark::DoNotOptimize(loss);
        benchmark::ClobberMemory();
    }
    set_throughput(state, n, int64_t(n) * 12);
    state.counters["dafl_threads"] = 1;
    state.SetLabel(row_label(label, 1, false));
}

// ---- checks before measuring ---------------------------------------------------------

bool same_bits(const float *a, const float *b, size_t n)
{
    return std::memcmp(a, b, n * sizeof(float)) == 0;
}

// Every ISA must give the scalar kernels' bits (dafl's promise); a benchmark of kernels
// that compute something else would measure nothing useful.
// The half-precision calls are checked the same way (their gradient compared as bytes).
bool check_isas_agree(const std::vector<dafl_isa> &isas)
{
    const size_t n = kCheckElements;
    const float normalizer = positives_normalizer(n);
    std::vector<float> ref_grad(n), grad(n);
    bool ok = true;
    std::vector<Dtypes> dtypes{kFloat32};
    dtypes.insert(dtypes.end(), std::begin(kHalfDtypes), std::end(kHalfDtypes));
    for (const LossCase &c : kCases) {
        for (const Dtypes &dt : dtypes) {
            if (dt.suffix[0] && !c.half)
                continue;
            const size_t grad_bytes = n * size_t(element_size(dt.grad));
            for (bool with_grad : {false, true}) {
                float ref_loss = 0.0f;
                dafl_set_isa(DAFL_ISA_SCALAR);
                dafl_status st = c.call(n, normalizer, dt, &ref_loss,
                                        with_grad ? ref_grad.data() : nullptr);
                if (st != DAFL_OK) {
                    std::fprintf(stderr, "dafl-bench: check: %s%s (scalar) failed: %s\n",
                                 c.name, dt.suffix, dafl_status_string(st));
                    return false;
                }
                for (dafl_isa isa : isas) {
                    if (isa == DAFL_ISA_SCALAR)
                        continue;
                    float loss = 0.0f;
                    dafl_set_isa(isa);
                    st = c.call(n, normalizer, dt, &loss, with_grad ? grad.data() : nullptr);
                    bool same = st == DAFL_OK && same_bits(&loss, &ref_loss, 1) &&
                                (!with_grad ||
                                 std::memcmp(grad.data(), ref_grad.data(), grad_bytes) == 0);
                    if (!same) {
                        std::fprintf(stderr,
                                     "dafl-bench: check: %s%s %s on %s differs from scalar "
                                     "(loss %.9g vs %.9g, status %s)\n",
                                     c.name, dt.suffix, pass_name(with_grad), dafl_isa_name(isa),
                                     double(loss), double(ref_loss), dafl_status_string(st));
                        ok = false;
                    }
                }
            }
        }
    }
    dafl_set_isa(DAFL_ISA_AUTO);
    return ok;
}

// The naive loops compute CenterNet's clamped loss: they must agree with dafl's
// clamped-logits mode to float precision.  The loss to 1e-4 relative; the gradient in
// total (sum of absolute differences over sum of magnitudes, 1e-3), because an element
// whose sigmoid rounds to the other side of a clamp limit has a zero gradient in one and
// not in the other.
bool check_naive_loops()
{
    const size_t n = data.capacity < (size_t(1) << 20) ? data.capacity : size_t(1) << 20;
    const float normalizer = positives_normalizer(n);
    std::vector<float> ref_grad(n), grad(n);
    float ref_loss = 0.0f;
    dafl_status st = penalty_clamped_one_pass(n, normalizer, kFloat32, &ref_loss, ref_grad.data());
    if (st != DAFL_OK) {
        std::fprintf(stderr, "dafl-bench: check: dafl clamped logits failed: %s\n",
                     dafl_status_string(st));
        return false;
    }
    double magnitude = 0.0;
    for (size_t i = 0; i < n; i++)
        magnitude += std::fabs(double(ref_grad[i]));

    struct Loop {
        const char *name;
        NaiveLoop fn;
    };
    bool ok = true;
    for (Loop loop : {Loop{"naive -O2", naive_focal_o2}, Loop{"autovec", naive_focal_autovec}}) {
        double loss = loop.fn(data.x, data.y, n, 2.0f, 4.0f, 1e-4f, normalizer, grad.data());
        double loss_rel = std::fabs(loss - double(ref_loss)) / std::fabs(double(ref_loss));
        double diff = 0.0;
        for (size_t i = 0; i < n; i++)
            diff += std::fabs(double(grad[i]) - double(ref_grad[i]));
        double grad_rel = diff / magnitude;
        bool good = loss_rel <= 1e-4 && grad_rel <= 1e-3;
        std::fprintf(stderr,
                     "dafl-bench: check: %-9s vs dafl clamped logits over %zu elements: loss "
                     "%.7g vs %.7g (relative difference %.1e), gradient relative L1 "
                     "difference %.1e%s\n",
                     loop.name, n, loss, double(ref_loss), loss_rel, grad_rel,
                     good ? "" : "  <-- TOO LARGE");
        ok = ok && good;
    }
    return ok;
}

// ---- counters computed from the references --------------------------------------------

double items_per_second(const benchmark::BenchmarkReporter::Run &run)
{
    auto it = run.counters.find("items_per_second");
    return it == run.counters.end() ? 0.0 : double(it->second);
}

// Every counter a row of this program can carry (items_per_second and bytes_per_second
// are Google Benchmark's own columns, not in this list).  A counter added anywhere in
// this file must be added here too, or CSV output aborts at the first row that has it.
const char *const kAllCounters[] = {"dafl_threads", "bytes_per_element", "bw_frac",
                                    "x_naive_O2",   "x_autovec",         "extra_MiB"};

// A reporter that adds bw_frac, x_naive_O2 and x_autovec to every dafl result, from the
// references of the same size (and the same repetition or aggregate) reported before it,
// then prints as its base class does.
//
// With every_counter set, each row also carries every counter of kAllCounters, NaN where
// one does not apply to the row (a reference has no bw_frac; only the keypoint rows have
// extra_MiB).  CSV needs it: Google Benchmark's CSV reporter takes its columns from the
// counters of the first row and aborts when a later row has one it has not seen.  The
// console and JSON keep to the counters that apply.
template <class Base> class RatioReporter : public Base {
  public:
    using Base::Base;
    using Run = benchmark::BenchmarkReporter::Run;

    bool every_counter = false;

    void ReportRuns(const std::vector<Run> &runs) override
    {
        std::vector<Run> out(runs);
        for (Run &run : out) {
            set_threads(run);
            add_ratios(run);
            if (every_counter)
                for (const char *name : kAllCounters)
                    if (run.counters.find(name) == run.counters.end())
                        run.counters[name] = benchmark::Counter(std::nan(""));
        }
        Base::ReportRuns(out);
    }

  private:
    std::map<std::string, int> threads_by_run_; // benchmark name with its size

    // Google Benchmark's "threads" is the number of threads running the benchmark loop,
    // always 1 here; the threads that did the work are those of the dafl_threads counter,
    // so the field gets them (the standard deviation of a counter is no thread count:
    // those aggregates take the count of their runs).
    void set_threads(Run &run)
    {
        const std::string key = run.run_name.function_name + "/" + run.run_name.args;
        auto counter = run.counters.find("dafl_threads");
        bool is_count = run.run_type != Run::RT_Aggregate || run.aggregate_name == "mean" ||
                        run.aggregate_name == "median";
        if (counter != run.counters.end() && is_count && counter->second.value >= 1)
            threads_by_run_[key] = int(counter->second.value);
        auto known = threads_by_run_.find(key);
        if (known != threads_by_run_.end()) {
            run.threads = known->second;
            if (counter != run.counters.end())
                counter->second.value = known->second;
        }
    }

    // reference role, gradient or not, size, aggregate name, repetition
    using Key = std::tuple<Role, bool, std::string, std::string, int64_t>;
    std::map<Key, double> reference_rate_;

    void add_ratios(Run &run)
    {
        auto found = meta_by_name.find(run.run_name.function_name);
        if (found == meta_by_name.end() || run.error_occurred)
            return;
        const Meta &m = found->second;
        if (run.run_type == Run::RT_Aggregate && run.aggregate_name != "mean" &&
            run.aggregate_name != "median")
            return; // a ratio of standard deviations means nothing
        const int64_t repetition =
            run.run_type == Run::RT_Aggregate ? -1 : run.repetition_index;
        const double rate = items_per_second(run);
        auto key = [&](Role role) {
            return Key{role, m.with_grad, run.run_name.args, run.aggregate_name, repetition};
        };
        if (m.role != Role::dafl) {
            reference_rate_[key(m.role)] = rate;
            return;
        }
        auto ratio = [&](const char *counter, Role role) {
            auto ref = reference_rate_.find(key(role));
            if (ref != reference_rate_.end() && ref->second > 0.0)
                run.counters[counter] = benchmark::Counter(rate / ref->second);
        };
        if (!m.half)
            ratio("bw_frac", Role::bandwidth);
        if (m.penalty_focal && m.with_grad && !m.half) {
            ratio("x_naive_O2", Role::naive_o2);
            ratio("x_autovec", Role::naive_autovec);
        }
    }
};

// The console's last lines: every float32 loss, one thread, forward + gradient, at 64 K
// elements and at the largest size measured, in ns per element on each ISA (the fastest
// repetition), with avx512's speed over avx2's where both ran.  The rows above it run to
// hundreds; this is what a short run (meson test --benchmark) ends with for a person.
class SummaryConsoleReporter : public RatioReporter<benchmark::ConsoleReporter> {
  public:
    using RatioReporter<benchmark::ConsoleReporter>::RatioReporter;

    void ReportRuns(const std::vector<Run> &runs) override
    {
        for (const Run &run : runs)
            record(run);
        RatioReporter<benchmark::ConsoleReporter>::ReportRuns(runs);
    }

    void Finalize() override
    {
        RatioReporter<benchmark::ConsoleReporter>::Finalize();
        print_summary(GetOutputStream());
    }

  private:
    std::vector<std::string> losses_, isas_; // in the order first reported
    std::map<std::tuple<std::string, int64_t, std::string>, double> ns_; // loss, size, ISA
    int64_t largest_ = 0;

    void record(const Run &run)
    {
        auto found = meta_by_name.find(run.run_name.function_name);
        if (found == meta_by_name.end() || run.error_occurred ||
            run.run_type == Run::RT_Aggregate)
            return;
        const Meta &m = found->second;
        if (m.role != Role::dafl || !m.with_grad || m.half)
            return;
        // loss/fwd_grad/ISA; the threaded rows (ISA-tN) are left out
        const std::string &name = run.run_name.function_name;
        size_t a = name.find('/'), b = name.rfind('/');
        std::string loss = name.substr(0, a), isa = name.substr(b + 1);
        double rate = items_per_second(run);
        if (isa.find('-') != std::string::npos || rate <= 0.0)
            return;
        int64_t n = std::atoll(run.run_name.args.c_str());
        if (std::find(losses_.begin(), losses_.end(), loss) == losses_.end())
            losses_.push_back(loss);
        if (std::find(isas_.begin(), isas_.end(), isa) == isas_.end())
            isas_.push_back(isa);
        largest_ = std::max(largest_, n);
        auto key = std::make_tuple(loss, n, isa);
        auto old = ns_.find(key);
        double ns = 1e9 / rate;
        if (old == ns_.end() || ns < old->second)
            ns_[key] = ns;
    }

    void print_summary(std::ostream &out) const
    {
        if (ns_.empty())
            return;
        const bool ratio = std::find(isas_.begin(), isas_.end(), "avx2") != isas_.end() &&
                           std::find(isas_.begin(), isas_.end(), "avx512") != isas_.end();
        char line[256];
        out << "\nSummary: ns per element, one thread, forward + gradient, float32 "
               "(the fastest repetition; CPU time)\n";
        std::snprintf(line, sizeof line, "%-32s %10s", "loss", "elements");
        out << line;
        for (const std::string &isa : isas_) {
            std::snprintf(line, sizeof line, " %9s", isa.c_str());
            out << line;
        }
        out << (ratio ? "  avx512/avx2\n" : "\n");
        std::vector<int64_t> sizes{int64_t(1) << 16};
        if (largest_ != sizes[0])
            sizes.push_back(largest_);
        for (int64_t n : sizes)
            for (const std::string &loss : losses_) {
                std::snprintf(line, sizeof line, "%-32s %10lld", loss.c_str(), (long long)n);
                std::string row = line;
                bool any = false;
                for (const std::string &isa : isas_) {
                    auto it = ns_.find(std::make_tuple(loss, n, isa));
                    any |= it != ns_.end();
                    if (it == ns_.end())
                        std::snprintf(line, sizeof line, " %9s", "-");
                    else
                        std::snprintf(line, sizeof line, " %9.3f", it->second);
                    row += line;
                }
                auto v2 = ns_.find(std::make_tuple(loss, n, std::string("avx2")));
                auto v5 = ns_.find(std::make_tuple(loss, n, std::string("avx512")));
                if (ratio && v2 != ns_.end() && v5 != ns_.end()) {
                    std::snprintf(line, sizeof line, "  %10.2fx", v2->second / v5->second);
                    row += line;
                }
                if (any)
                    out << row << "\n";
            }
    }
};

// Google Benchmark's own flags that choose the output; read before Initialize() takes
// them out of argv, because the reporters are built here to add the counters.
struct OutputFlags {
    std::string format = "console", out, out_format = "json", color = "auto";
    bool tabular = false;
};

bool take_value(const char *arg, const char *name, std::string *value)
{
    size_t len = std::strlen(name);
    if (std::strncmp(arg, name, len) != 0 || arg[len] != '=')
        return false;
    *value = arg + len + 1;
    return true;
}

OutputFlags read_output_flags(int argc, char **argv)
{
    OutputFlags f;
    std::string tabular;
    for (int i = 1; i < argc; i++) {
        take_value(argv[i], "--benchmark_format", &f.format);
        take_value(argv[i], "--benchmark_out", &f.out);
        take_value(argv[i], "--benchmark_out_format", &f.out_format);
        take_value(argv[i], "--benchmark_color", &f.color);
        if (take_value(argv[i], "--benchmark_counters_tabular", &tabular))
            f.tabular = tabular == "true" || tabular == "1" || tabular == "yes";
    }
    return f;
}

// The reporter for one of Google Benchmark's formats (console, json, csv), with the ratio
// counters; NULL for any other name, which Google Benchmark then rejects itself.
std::unique_ptr<benchmark::BenchmarkReporter> make_reporter(const std::string &format,
                                                            bool to_terminal,
                                                            const OutputFlags &f)
{
    if (format == "json")
        return std::unique_ptr<benchmark::BenchmarkReporter>(
            new RatioReporter<benchmark::JSONReporter>());
    if (format == "csv") {
        // Google Benchmark 1.7 marks its CSV reporter deprecated; it is still the one its
        // own --benchmark_format=csv prints with, so this program wraps it as well.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
        auto csv = new RatioReporter<benchmark::CSVReporter>();
#pragma GCC diagnostic pop
        csv->every_counter = true; // one column set for every row
        return std::unique_ptr<benchmark::BenchmarkReporter>(csv);
    }
    if (format != "console")
        return nullptr;
    int options = benchmark::ConsoleReporter::OO_None;
    bool color = f.color == "true" || f.color == "yes" || f.color == "1" ||
                 ((f.color == "auto") && to_terminal && isatty(STDOUT_FILENO));
    if (color)
        options |= benchmark::ConsoleReporter::OO_Color;
    if (f.tabular)
        options |= benchmark::ConsoleReporter::OO_Tabular;
    return std::unique_ptr<benchmark::BenchmarkReporter>(
        new SummaryConsoleReporter(benchmark::ConsoleReporter::OutputOptions(options)));
}

// ---- targets from keypoint lists -------------------------------------------------------
//
// CenterNet on COCO: a batch of 8 images x 80 classes x 128 x 128, about 7 objects per
// image (1 to 13, uniformly), boxes with sides log-uniform in 3 .. 96 output pixels, a
// "umich" Gaussian at each box centre (truncated to integers) with CenterNet's radius
// max(0, int(gaussian_radius(ceil(h), ceil(w), 0.7))).  bench/render_vs_numpy.py
// builds the same batch from the same generator (splitmix64) and times CenterNet's numpy
// per-object drawing of it.  Compared, with the best ISA on 1 and 2 threads:
//   keypoints_coco/penalty_focal/dense          dafl_penalty_focal on rendered targets
//   keypoints_coco/penalty_focal/render+dense   dafl_render_heatmaps, then the above
//   keypoints_coco/penalty_focal/fused          dafl_penalty_focal_keypoints
//   keypoints_coco/render                       dafl_render_heatmaps alone
// each with counter extra_MiB: the memory the call needs besides the logits and the
// gradient (the dense call: the targets; the fused call: its documented bound).
constexpr size_t kCocoImages = 8, kCocoClasses = 80, kCocoSide = 128;
constexpr size_t kCocoElements = kCocoImages * kCocoClasses * kCocoSide * kCocoSide;

struct SplitMix {
    uint64_t state;
    uint64_t next()
    {
        uint64_t z = (state += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        return z ^ (z >> 31);
    }
    double uniform() { return double(next() >> 11) * (1.0 / 9007199254740992.0); }
};

struct CocoBatch {
    std::vector<dafl_keypoint> points;
    float *x = nullptr, *targets = nullptr, *grad = nullptr;
};

CocoBatch &coco_batch()
{
    static CocoBatch b;
    if (b.x)
        return b;
    SplitMix rng{2024};
    for (size_t image = 0; image < kCocoImages; image++) {
        size_t objects = 1 + size_t(rng.uniform() * 13.0);
        for (size_t o = 0; o < objects; o++) {
            double cls = std::floor(rng.uniform() * double(kCocoClasses));
            double bw = std::exp(std::log(3.0) + rng.uniform() * std::log(32.0));
            double bh = std::exp(std::log(3.0) + rng.uniform() * std::log(32.0));
            double cx = rng.uniform() * double(kCocoSide), cy = rng.uniform() * double(kCocoSide);
            double radius = 0.0;
            dafl_gaussian_radius(std::ceil(bh), std::ceil(bw), 0.7, DAFL_RADIUS_CORNERNET,
                                 &radius);
            dafl_keypoint kp;
            dafl_keypoint_init(&kp);
            kp.image = int64_t(image);
            kp.channel = int64_t(cls);
            kp.x = std::floor(cx);
            kp.y = std::floor(cy);
            kp.size = std::max(0.0, std::floor(radius));
            b.points.push_back(kp);
        }
    }
    b.x = allocate<float>(kCocoElements);
    b.targets = allocate<float>(kCocoElements);
    b.grad = allocate<float>(kCocoElements);
    dafl_render_heatmaps(b.points.data(), b.points.size(), kCocoImages, kCocoClasses, kCocoSide,
                         kCocoSide, b.targets);
    Random r{0x1234567ull};
    for (size_t i = 0; i < kCocoElements; i++) {
        double spread = 6.0 * (r.uniform() + r.uniform() - 1.0);
        b.x[i] = float(-4.0 + spread + 8.0 * b.targets[i]);
    }
    double radii = 0.0;
    for (const dafl_keypoint &kp : b.points)
        radii += kp.size;
    std::fprintf(stderr, "dafl-bench: keypoints_coco: %zu objects in %zu images, radii sum %.0f\n",
                 b.points.size(), kCocoImages, radii);
    return b;
}

enum class KeypointCall { dense, render_dense, fused, render };

dafl_status keypoint_call(CocoBatch &b, KeypointCall what, float *loss)
{
    const size_t n = kCocoImages, c = kCocoClasses, side = kCocoSide;
    switch (what) {
    case KeypointCall::render:
        return dafl_render_heatmaps(b.points.data(), b.points.size(), n, c, side, side,
                                    b.targets);
    case KeypointCall::render_dense: {
        dafl_status st = dafl_render_heatmaps(b.points.data(), b.points.size(), n, c, side,
                                              side, b.targets);
        if (st != DAFL_OK)
            return st;
    }
        [[fallthrough]];
    case KeypointCall::dense:
        return dafl_penalty_focal(b.x, b.targets, kCocoElements, nullptr, loss, b.grad, nullptr);
    case KeypointCall::fused:
        return dafl_penalty_focal_keypoints(b.x, n, c, side, side, b.points.data(),
                                            b.points.size(), nullptr, loss, b.grad, nullptr);
    }
    return DAFL_ERR_INVALID_ENUM;
}

void run_keypoints(benchmark::State &state, KeypointCall what, dafl_isa isa, int threads)
{
    CocoBatch &b = coco_batch();
    dafl_set_isa(isa);
#ifdef DAFL_MAX_THREADS
    dafl_set_threads(threads);
#endif
    float loss = 0.0f;
    dafl_status st = keypoint_call(b, what, &loss);
    if (st != DAFL_OK) {
        state.SkipWithError(dafl_status_string(st));
        return;
    }
    for (auto _ : state) {
        keypoint_call(b, what, &loss);
        benchmark::DoNotOptimize(loss);
        benchmark::ClobberMemory();
    }
    state.SetItemsProcessed(int64_t(state.iterations()) * int64_t(kCocoElements));
    double extra = what == KeypointCall::fused
                       ? double(threads) * DAFL_BLOCK_ELEMENTS * sizeof(float) +
                             double(b.points.size()) * 128.0
                       : what == KeypointCall::render ? 0.0 : double(kCocoElements) * 4.0;
    state.counters["extra_MiB"] = extra / (1024.0 * 1024.0);
    state.SetLabel(std::string(dafl_isa_name(isa)) + ", " + std::to_string(threads) +
                   (threads == 1 ? " thread" : " threads"));
#ifdef DAFL_MAX_THREADS
    dafl_set_threads(1);
#endif
}

// The fused call must give the dense call's bits: checked before anything is measured.
bool check_keypoints_agree(const std::vector<dafl_isa> &isas)
{
    CocoBatch &b = coco_batch();
    std::vector<float> dense_grad(kCocoElements);
    bool ok = true;
    for (dafl_isa isa : isas) {
        dafl_set_isa(isa);
        float dense = 0.0f, fused = 0.0f;
        keypoint_call(b, KeypointCall::render_dense, &dense);
        std::memcpy(dense_grad.data(), b.grad, kCocoElements * sizeof(float));
        keypoint_call(b, KeypointCall::fused, &fused);
        if (!same_bits(&dense, &fused, 1) || !same_bits(dense_grad.data(), b.grad, kCocoElements)) {
            std::fprintf(stderr, "dafl-bench: check: fused keypoint loss differs from render + "
                                 "dense on %s\n", dafl_isa_name(isa));
            ok = false;
        }
    }
    dafl_set_isa(DAFL_ISA_AUTO);
    return ok;
}

void register_keypoints(dafl_isa best, int pool_threads)
{
    struct Named {
        const char *name;
        KeypointCall call;
    };
    const Named calls[] = {{"dense", KeypointCall::dense},
                           {"render+dense", KeypointCall::render_dense},
                           {"fused", KeypointCall::fused}};
    for (int t : {1, 2}) {
        if (t > pool_threads && t > 1)
            continue;
        std::string suffix = std::string(dafl_isa_name(best)) + "-t" + std::to_string(t);
        for (const Named &c : calls)
            benchmark::RegisterBenchmark(
                ("keypoints_coco/penalty_focal/" + std::string(c.name) + "/" + suffix).c_str(),
                [c, best, t](benchmark::State &s) { run_keypoints(s, c.call, best, t); })
                ->Unit(benchmark::kMicrosecond)
                ->UseRealTime();
        benchmark::RegisterBenchmark(("keypoints_coco/render/dafl/" + suffix).c_str(),
                                     [best, t](benchmark::State &s) {
                                         run_keypoints(s, KeypointCall::render, best, t);
                                     })
            ->Unit(benchmark::kMicrosecond)
            ->UseRealTime();
    }
}

// ---- registration --------------------------------------------------------------------

std::vector<dafl_isa> measured_isas()
{
#if defined(__x86_64__) || defined(_M_X64)
    const dafl_isa candidates[] = {DAFL_ISA_SCALAR, DAFL_ISA_AVX2, DAFL_ISA_AVX512};
#elif defined(__aarch64__)
    const dafl_isa candidates[] = {DAFL_ISA_SCALAR, DAFL_ISA_NEON};
#else
    const dafl_isa candidates[] = {DAFL_ISA_SCALAR};
#endif
    std::vector<dafl_isa> isas;
    std::string skipped;
    for (dafl_isa isa : candidates) {
        if (dafl_isa_available(isa)) {
            isas.push_back(isa);
        } else {
            std::fprintf(stderr,
                         "dafl-bench: skipping %s: this CPU (or this build of dafl) lacks it, "
                         "so its benchmarks are not registered\n",
                         dafl_isa_name(isa));
            skipped += skipped.empty() ? "" : " ";
            skipped += dafl_isa_name(isa);
        }
    }
    std::string names;
    for (dafl_isa isa : isas)
        names += (names.empty() ? "" : " ") + std::string(dafl_isa_name(isa));
    benchmark::AddCustomContext("dafl_isas_measured", names);
    benchmark::AddCustomContext("dafl_isas_skipped", skipped.empty() ? "none" : skipped);
    return isas;
}

template <class Fn>
void add(const std::string &name, Meta meta, size_t n, Fn &&fn, bool real_time = false)
{
    meta_by_name[name] = meta;
    auto *b = benchmark::RegisterBenchmark(name.c_str(), std::forward<Fn>(fn));
    b->Arg(int64_t(n))->Unit(benchmark::kMicrosecond);
    if (real_time)
        b->UseRealTime(); // CPU time would count only the calling thread's share
}

void register_all(const std::vector<dafl_isa> &isas, size_t max_elements, int pool_threads)
{
    for (size_t n : kSizes) {
        if (n > max_elements)
            continue;
        // The references first, so that the dafl results of this size find them.
        for (bool g : {false, true})
            add(std::string("bandwidth/") + pass_name(g) + "/memory", {Role::bandwidth, g, false},
                n, [g](benchmark::State &s) { run_bandwidth(s, g); });
        add("naive_penalty_focal.clamped/fwd_grad/O2", {Role::naive_o2, true, true}, n,
            [](benchmark::State &s) { run_naive(s, naive_focal_o2, "naive C, -O2"); });
        add("naive_penalty_focal.clamped/fwd_grad/autovec", {Role::naive_autovec, true, true}, n,
            [](benchmark::State &s) {
                run_naive(s, naive_focal_autovec, "naive C, -O3 -march=native -ffast-math");
            });

        for (const LossCase &c : kCases)
            for (bool g : {false, true})
                for (dafl_isa isa : isas)
                    add(std::string(c.name) + "/" + pass_name(g) + "/" + dafl_isa_name(isa),
                        {Role::dafl, g, c.penalty_focal}, n, [&c, isa, g](benchmark::State &s) {
                            run_dafl(s, &c, kFloat32, isa, g, 1, false);
                        });
        const bool half_size = std::find(std::begin(kHalfSizes), std::end(kHalfSizes), n) !=
                               std::end(kHalfSizes);
        if (half_size)
            for (const LossCase &c : kCases)
                for (const Dtypes &dt : kHalfDtypes)
                    for (dafl_isa isa : isas)
                        if (c.half)
                            add(std::string(c.name) + dt.suffix + "/fwd_grad/" +
                                    dafl_isa_name(isa),
                                {Role::dafl, true, c.penalty_focal, true}, n,
                                [&c, &dt, isa](benchmark::State &s) {
                                    run_dafl(s, &c, dt, isa, true, 1, false);
                                });

        // Thread scaling: the headline call in wall-clock time on one thread and on all of
        // dafl's threads (below DAFL_MIN_PARALLEL_ELEMENTS both run on the calling thread:
        // the t1/tN pair at 4K shows what the pool costs a small call), and the bandwidth
        // loop on as many threads.  Not part of the one-thread targets.
        if (pool_threads > 1) {
            const LossCase &c = kCases[1];
            dafl_isa best = isas.back();
            for (int t : {1, pool_threads}) {
                std::string impl = std::string(dafl_isa_name(best)) + "-t" + std::to_string(t);
                add(std::string(c.name) + "/fwd_grad/" + impl, {Role::dafl, true, true}, n,
                    [&c, best, t](benchmark::State &s) {
                        run_dafl(s, &c, kFloat32, best, true, t, true);
                    },
                    true);
            }
            // Half precision against float32 in DRAM, where fewer bytes should pay: each
            // combination (and float32 where the rows above lack it).
            if (n == kHalfSizes[1])
                for (const LossCase &h : kCases)
                    for (int k = -1; k < int(std::size(kHalfDtypes)); k++) {
                        const Dtypes &dt = k < 0 ? kFloat32 : kHalfDtypes[k];
                        if (!h.half_threads || (k < 0 && &h == &c))
                            continue;
                        for (int t : {1, pool_threads}) {
                            std::string impl =
                                std::string(dafl_isa_name(best)) + "-t" + std::to_string(t);
                            add(std::string(h.name) + dt.suffix + "/fwd_grad/" + impl,
                                {Role::dafl, true, h.penalty_focal, k >= 0}, n,
                                [&h, &dt, best, t](benchmark::State &s) {
                                    run_dafl(s, &h, dt, best, true, t, true);
                                },
                                true);
                        }
                    }
            if (n >= (size_t(1) << 20))
                add("bandwidth/fwd_grad/memory-t" + std::to_string(pool_threads),
                    {Role::bandwidth, true, false}, n,
                    [pool_threads](benchmark::State &s) {
                        run_bandwidth_threads(s, pool_threads);
                    },
                    true);
        }
    }
}

// Takes --dafl_* flags out of argv (after Google Benchmark took its own).
bool parse_own_flags(int *argc, char **argv, size_t *max_elements)
{
    int kept = 1;
    for (int i = 1; i < *argc; i++) {
        std::string value;
        if (!take_value(argv[i], "--dafl_max_elements", &value)) {
            argv[kept++] = argv[i];
            continue;
        }
        char *end = nullptr;
        unsigned long long v = std::strtoull(value.c_str(), &end, 10);
        if (value.empty() || *end != '\0' || v < kSizes[0]) {
            std::fprintf(stderr, "dafl-bench: --dafl_max_elements wants a number >= %zu\n",
                         kSizes[0]);
            return false;
        }
        *max_elements = size_t(v);
    }
    *argc = kept;
    return true;
}

// --help: Google Benchmark's flags, then this program's.
void print_help()
{
    benchmark::PrintDefaultHelp();
    std::printf("\n"
                "dafl-bench's own flags:\n"
                "  [--dafl_max_elements=<N>]  measure sizes up to N elements only\n"
                "                             (default %zu; the buffers take 12 bytes per\n"
                "                             element of the largest size measured)\n"
                "\n"
                "Rows: loss/pass/implementation/elements.  The label names the ISA (or the\n"
                "reference), the threads and the clock: one-thread rows are per CPU second of\n"
                "the calling thread, \"-tN\" rows per wall-clock second.  The JSON context\n"
                "holds dafl's version and how it was compiled.\n",
                kSizes[sizeof kSizes / sizeof kSizes[0] - 1]);
}

#ifndef DAFL_BENCH_C_COMPILER // set by bench/meson.build
#define DAFL_BENCH_C_COMPILER "unknown"
#define DAFL_BENCH_CXX_COMPILER "unknown"
#define DAFL_BENCH_BUILDTYPE "unknown"
#define DAFL_BENCH_C_FLAGS "unknown"
#define DAFL_BENCH_NAIVE_O2_FLAGS "unknown"
#define DAFL_BENCH_NAIVE_AUTOVEC_FLAGS "unknown"
#define DAFL_BENCH_BANDWIDTH_FLAGS "unknown"
#endif

// What a reader of the JSON needs to know about what was measured.
void add_context(int pool_threads)
{
    benchmark::AddCustomContext("dafl_version", dafl_version());
    benchmark::AddCustomContext("dafl_header_version", DAFL_VERSION_STRING);
    benchmark::AddCustomContext("dafl_c_compiler", DAFL_BENCH_C_COMPILER);
    benchmark::AddCustomContext("dafl_c_flags", DAFL_BENCH_C_FLAGS);
    benchmark::AddCustomContext("dafl_isa_flags", "each ISA's kernels are compiled with "
                                                  "only its own -m flags on top (meson.build)");
    benchmark::AddCustomContext("dafl_buildtype", DAFL_BENCH_BUILDTYPE);
    benchmark::AddCustomContext("dafl_bench_cxx_compiler", DAFL_BENCH_CXX_COMPILER);
    benchmark::AddCustomContext("dafl_threads_available", std::to_string(pool_threads));
    benchmark::AddCustomContext("dafl_threads_of_rows",
                                "1, except rows named -tN: N (counter dafl_threads, field "
                                "threads); calls under " +
                                    std::to_string(DAFL_MIN_PARALLEL_ELEMENTS) +
                                    " elements always run on 1");
    benchmark::AddCustomContext("dafl_clock",
                                "one-thread rows: CPU time of the calling thread; -tN rows: "
                                "wall-clock (real) time; items_per_second follows that clock");
    benchmark::AddCustomContext("dafl_reference_flags",
                                "naive loop O2: " DAFL_BENCH_NAIVE_O2_FLAGS
                                "; naive loop autovec: " DAFL_BENCH_NAIVE_AUTOVEC_FLAGS
                                "; bandwidth loops: " DAFL_BENCH_BANDWIDTH_FLAGS);
}

} // namespace

int main(int argc, char **argv)
{
    const OutputFlags flags = read_output_flags(argc, argv);
    benchmark::Initialize(&argc, argv, print_help);
    size_t max_elements = kSizes[sizeof kSizes / sizeof kSizes[0] - 1];
    if (!parse_own_flags(&argc, argv, &max_elements))
        return 1;
    if (benchmark::ReportUnrecognizedArguments(argc, argv))
        return 1;

    // One thread unless a benchmark asks for more (the targets are per core).
    int pool_threads = 1;
#ifdef DAFL_MAX_THREADS
    pool_threads = dafl_threads();
    dafl_set_threads(1);
#endif

    size_t capacity = 0;
    for (size_t n : kSizes)
        if (n <= max_elements)
            capacity = n;
    if (capacity < kCheckElements)
        capacity = kCheckElements; // the checks need this much, whatever is measured
    allocate_data(capacity);
    allocate_half_data(capacity);

    std::vector<dafl_isa> isas = measured_isas();
    std::fprintf(stderr, "dafl-bench: dafl %s; measuring on:", dafl_version());
    for (dafl_isa isa : isas)
        std::fprintf(stderr, " %s", dafl_isa_name(isa));
    std::fprintf(stderr, "\n");
    bool isas_ok = check_isas_agree(isas);
    bool naive_ok = check_naive_loops();
    if (!isas_ok || !naive_ok) {
        std::fprintf(stderr, "dafl-bench: the checks above failed; nothing was measured\n");
        return 1;
    }
    std::fprintf(stderr, "dafl-bench: check: every ISA gives the scalar kernels' bits for all "
                         "%zu configurations, with and without the gradient\n",
                 sizeof kCases / sizeof kCases[0]);

    add_context(pool_threads);
    register_all(isas, max_elements, pool_threads);
    if (max_elements >= kCocoElements) {
        if (!check_keypoints_agree(isas)) {
            std::fprintf(stderr, "dafl-bench: the keypoint check failed; nothing was measured\n");
            return 1;
        }
        register_keypoints(isas.back(), pool_threads);
    }

    std::unique_ptr<benchmark::BenchmarkReporter> display = make_reporter(flags.format, true, flags);
    std::unique_ptr<benchmark::BenchmarkReporter> file;
    if (!flags.out.empty())
        file = make_reporter(flags.out_format, false, flags);
    benchmark::RunSpecifiedBenchmarks(display.get(), file.get());
    benchmark::Shutdown();
    return 0;
}
