/**
 * @defgroup dafl distance-aware focal loss and friends, fused forward + gradient on the CPU
 * @details
 * dafl.h is the whole public API of libdafl (`#include <dafl.h>`, compile and link with
 * `pkg-config --cflags --libs dafl`).  Every loss is one call that computes the reduced
 * loss and, when a gradient buffer is given, writes d(reduced loss)/d(input) for every
 * element, already divided by the reduction's normalizer and multiplied by the caller's
 * gradient scale.  Results are bit-identical on every CPU (scalar, AVX2, AVX-512, NEON),
 * every alignment of the buffers and every run: see "Determinism" below.
 *
 * The reference is grouped by topic, one manual page each (see "SEE ALSO" below), and
 * every function's name leads to its page: `man dafl_penalty_focal` works.  Comments
 * in this header use Doxygen's markup (`@param`, `@return`, `@{`...), which the
 * manual pages and the HTML reference are built from.
 *
 * @section dafl_conventions Conventions
 *   - Tensors are dense float32, row-major, unless a loss's dtype members say bfloat16
 *     or float16 (@ref dafl_half_precision "dafl_half_precision(3)").  A heatmap batch
 *     is NCHW.
 *   - x is a logit, p = sigmoid(x), q = 1 - p = sigmoid(-x),
 *     softplus(z) = max(z, 0) + log1p(exp(-|z|)), so -log p = softplus(-x) and
 *     -log q = softplus(x).
 *   - A target is "positive" when it equals 1.0f exactly.
 *   - Every entry point validates all of its arguments first and returns a status.  A call
 *     that fails writes nothing to any of its outputs.  Nothing aborts or prints (except
 *     one warning on stderr for an unusable DAFL_ISA value).
 *
 * @section dafl_abi Parameter structs and ABI stability
 *   Each loss takes a pointer to a parameter struct whose first member, struct_size, the
 *   caller sets to sizeof(the struct) as its header knew it.  Fill one with the matching
 *   dafl_*_params_init() (or the DAFL_*_PARAMS_INIT initialiser), then change what you
 *   need.  A later release may append members; it reads only the first struct_size bytes
 *   of yours and gives every newer member its default, so binaries built against this
 *   header keep working.  Pass NULL for all defaults.  A struct_size must be one a
 *   header can produce: at least sizeof(size_t), at most this header's sizeof, and
 *   ending at the end of a member or in the padding after it, never inside a member
 *   (DAFL_ERR_STRUCT_SIZE otherwise).
 *
 * @section dafl_buffers Buffers
 *   Every loss's gradient may be written in place over its input: grad == input (or
 *   logits) exactly, the same pointer.  Every other overlap of an output - grad, or the
 *   per-element loss array of DAFL_REDUCTION_NONE - with an input (input, target,
 *   logits, labels) or with the other output, a shifted grad == input + 1 included, is
 *   refused with DAFL_ERR_OVERLAP before anything is read or written: its result would
 *   depend on the order in which an ISA reads and writes.
 *
 * @section dafl_reduction_rules Reductions (dafl_reduction)
 *   - DAFL_REDUCTION_NONE: per-element loss written to `loss` (count values); the
 *     gradient is the per-element derivative times grad_scale.
 *   - DAFL_REDUCTION_SUM: loss = sum of per-element losses.
 *   - DAFL_REDUCTION_MEAN: loss = sum / element count (softmax focal: / sum of class
 *     weights over non-ignored pixels, PyTorch's weighted cross-entropy convention).
 *   - DAFL_REDUCTION_POSITIVES: loss = sum / max(number of positives, 1)  (CornerNet /
 *     CenterNet).
 *   - DAFL_REDUCTION_NORMALIZER: loss = sum / params.normalizer  (mmdetection's
 *     avg_factor; what a data-parallel trainer passes with its global positive count).
 *
 *   The gradient is always d(loss)/d(input) * grad_scale for the chosen reduction.
 *
 * @section dafl_determinism Determinism and partial statistics
 *   Elements are processed in blocks of DAFL_BLOCK_ELEMENTS counted from the first
 *   element of the call.  Inside a block, element i is added in double precision to
 *   virtual lane i % 16 in index order, and the 16 lanes are folded in a fixed pairwise
 *   tree (lane j += lane j+8, then +4, +2, +1).  Block sums are accumulated *exactly*
 *   (a fixed-point accumulator wide enough for any float sum), so the order in which
 *   blocks are combined cannot change the result.  dafl_stats carries that exact
 *   accumulator: statistics of shards that each start at a multiple of
 *   DAFL_BLOCK_ELEMENTS of the whole array (for example whole images of an NCHW batch
 *   whose c*h*w is a multiple of it) combine with dafl_stats_combine() into exactly the
 *   bits one call over all the data gives, in any order.
 *   An x86 CPU without FMA (before 2013) runs the scalar kernels with SLEEF's non-FMA
 *   functions and forms a second, documented class of results.
 *
 * @section dafl_examples EXAMPLES
 *   The penalty-reduced focal loss of four logits and its gradient (docs/man/example.c
 *   in the source tree); build it with
 *   `cc example.c $(pkg-config --cflags --libs dafl) -o example`:
 *
 *   @include example.c
 *
 * @section dafl_see_also SEE ALSO
 *   - @ref dafl_losses "dafl_losses(3)": the five losses and their parameters
 *   - @ref dafl_targets "dafl_targets(3)": Gaussian radius, Gaussians, distance targets
 *   - @ref dafl_keypoints "dafl_keypoints(3)": targets from keypoint lists
 *   - @ref dafl_statistics "dafl_statistics(3)": exact statistics of shards
 *   - @ref dafl_reductions "dafl_reductions(3)": reductions and flags
 *   - @ref dafl_half_precision "dafl_half_precision(3)": bfloat16 and float16 tensors
 *   - @ref dafl_threading "dafl_threading(3)": threads, or the host's parallel-for
 *   - @ref dafl_fp_environment "dafl_fp_environment(3)": the floating-point environment
 *   - @ref dafl_dispatch "dafl_dispatch(3)": run-time dispatch (ISA)
 *   - @ref dafl_status_codes "dafl_status_codes(3)": status codes
 *   - @ref dafl_versioning "dafl_versioning(3)": versions
 */
#ifndef DAFL_H
#define DAFL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- export macro --------------------------------------------------------------- */
#if defined(DAFL_BUILDING_LIBRARY) && defined(__GNUC__)
#define DAFL_API __attribute__((visibility("default")))
#else
#define DAFL_API
#endif

/* ---- version -------------------------------------------------------------------- */
/**
 * @defgroup dafl_versioning the version of this header and of the library loaded
 * @ingroup dafl
 * @details
 * The DAFL_VERSION_ macros give the version of the header a program was compiled with;
 * dafl_version() and dafl_version_number() that of the library it runs with.
 * @{
 */
/** The major version of this header. */
#define DAFL_VERSION_MAJOR 0
/** The minor version of this header. */
#define DAFL_VERSION_MINOR 1
/** The patch version of this header. */
#define DAFL_VERSION_PATCH 0
/** The version of this header as a string, "major.minor.patch". */
#define DAFL_VERSION_STRING "0.1.0"
/** major * 10000 + minor * 100 + patch, for compile-time comparisons. */
#define DAFL_VERSION_NUMBER \
    (DAFL_VERSION_MAJOR * 10000 + DAFL_VERSION_MINOR * 100 + DAFL_VERSION_PATCH)

/** The version of the library actually loaded, as "major.minor.patch".
 *  @return a constant string, never NULL */
DAFL_API const char *dafl_version(void);
/** The version of the library actually loaded, as DAFL_VERSION_NUMBER would give it.
 *  @return major * 10000 + minor * 100 + patch of the library */
DAFL_API int dafl_version_number(void);
/** @} */

/* ---- status codes --------------------------------------------------------------- */
/**
 * @defgroup dafl_status_codes status codes: what every entry point returns
 * @ingroup dafl
 * @details
 * Every entry point that can fail returns a dafl_status: DAFL_OK, or the reason it
 * refused the call, in which case it wrote nothing to any of its outputs.
 * @{
 */
/** What an entry point returns: DAFL_OK or the reason the call was refused. */
typedef enum dafl_status {
    DAFL_OK = 0,                    /**< success */
    DAFL_ERR_NULL_POINTER = 1,      /**< a required pointer is NULL for a non-zero size */
    DAFL_ERR_SIZE_OVERFLOW = 2,     /**< a product of sizes overflows size_t */
    DAFL_ERR_INVALID_PARAMETER = 3, /**< exponent < 0 or NaN, eps outside (0, 0.5), weight
                                         < 0 or NaN, normalizer <= 0, radius/sigma <= 0 */
    DAFL_ERR_INVALID_TARGET = 4,    /**< a target is outside [0, 1] or NaN */
    DAFL_ERR_INVALID_LABEL = 5,     /**< a class label outside 0..c-1, not ignore_index;
                                         a keypoint's image or channel out of range */
    DAFL_ERR_INVALID_ENUM = 6,      /**< an unknown reduction, mode, layout, flag or ISA */
    DAFL_ERR_STRUCT_SIZE = 7,       /**< params->struct_size too small, larger than this
                                         library's struct, or ending inside a member */
    DAFL_ERR_ISA_UNAVAILABLE = 8,   /**< the CPU (or this build) lacks the requested ISA */
    DAFL_ERR_OUT_OF_MEMORY = 9,     /**< a temporary buffer could not be allocated */
    DAFL_ERR_OVERLAP = 10,          /**< an output overlaps an input or the other output,
                                         other than grad == input exactly (see "Buffers") */
    DAFL_ERR_PARALLEL_FOR = 11      /**< the host's parallel-for broke its contract (see
                                         dafl_set_parallel_for): the outputs are complete */
} dafl_status;

/** A constant English name for a status, for example "DAFL_ERR_NULL_POINTER: ...".
 *  @param status  any value, a dafl_status or not
 *  @return a constant string, never NULL */
DAFL_API const char *dafl_status_string(dafl_status status);
/** @} */

/* ---- run-time dispatch ---------------------------------------------------------- */
/**
 * @defgroup dafl_dispatch run-time dispatch: the instruction set of the kernels
 * @ingroup dafl
 * @details
 * Every ISA gives the same bits (see "Determinism" in dafl(3)); the choice changes only
 * the speed.
 * @{
 */
/** An instruction set whose kernels dafl can run. */
typedef enum dafl_isa {
    DAFL_ISA_AUTO = 0,   /**< the best the CPU supports (the default) */
    DAFL_ISA_SCALAR = 1, /**< portable C with SLEEF's scalar functions */
    DAFL_ISA_AVX2 = 2,   /**< x86-64 AVX2 + FMA (+ F16C) */
    DAFL_ISA_AVX512 = 3, /**< x86-64 AVX-512 F + DQ (+ BW, VL); where the CPU also has
                              AVX512_BF16, bfloat16 gradients are narrowed by its
                              vcvtneps2bf16 (the same bits) */
    DAFL_ISA_NEON = 4    /**< AArch64 Advanced SIMD */
} dafl_isa;

/** Select the kernels used by every later call (process-wide, thread-safe).
 *  DAFL_ISA_AUTO picks the best available.  The environment variable
 *  `DAFL_ISA=scalar|avx2|avx512|neon|auto` sets the initial choice; an unknown or
 *  unavailable name falls back to auto with one warning on stderr.
 *  @param isa  the instruction set, or DAFL_ISA_AUTO
 *  @return DAFL_OK; DAFL_ERR_ISA_UNAVAILABLE, and changes nothing, when the CPU or this
 *          build lacks the ISA; DAFL_ERR_INVALID_ENUM for an unknown value */
DAFL_API dafl_status dafl_set_isa(dafl_isa isa);
/** The ISA whose kernels run now.
 *  @return the active ISA, never DAFL_ISA_AUTO */
DAFL_API dafl_isa dafl_active_isa(void);
/** Whether this CPU and this build can run an ISA.
 *  @param isa  any value
 *  @return 1 when this CPU and this build can run the ISA, else 0 */
DAFL_API int dafl_isa_available(dafl_isa isa);
/** The name of an ISA, as DAFL_ISA takes it.
 *  @param isa  any value
 *  @return the name: "scalar", "avx2", "avx512", "neon" or "auto"; "unknown" for
 *          other values */
DAFL_API const char *dafl_isa_name(dafl_isa isa);
/** @} */

/* ---- threads ---------------------------------------------------------------------- */
/**
 * @defgroup dafl_threading threads: dafl's own pool, or the host's parallel-for
 * @ingroup dafl
 * @details
 * Every loss runs its blocks on several threads when the call is large enough.  The split
 * and the thread count never change a result: see "Determinism" in dafl(3).
 *
 * By default dafl runs on its own small pthread pool, started on the first large call.
 * The default thread count is the CPUs this process may run on: its affinity mask
 * (taskset, MPI or torchrun rank binding), capped by its cgroup CPU quota (a container's
 * cpu.max, rounded up), at most DAFL_MAX_THREADS.  The environment variable
 * DAFL_THREADS=n (1..DAFL_MAX_THREADS; other values are ignored) replaces that default.
 * Both are read once, at the first call that asks.
 * Calls smaller than DAFL_MIN_PARALLEL_ELEMENTS elements always run on the calling
 * thread: waking the pool costs more than it saves there (bench/pool_overhead.c times
 * the pool against one thread).
 * A call wakes only the workers it uses, so its cost depends on its own thread count,
 * never on the most ever used; after a call the workers watch for the next one for
 * about 40 microseconds and then sleep.
 * Concurrent calls from many host threads are safe; while one call uses the pool, the
 * others run on their own threads.
 * Stack: a kernel call keeps about 4.5 KiB on the stack of the thread that runs it (its
 * sub-block's intermediate values), softmax focal up to 4 KiB (up to 64 classes' e_k),
 * the keypoint loss 4 KiB more (dafl_penalty_focal_keypoints), and a half-precision call
 * (dafl_dtype) 3 KiB more (its sub-block widened to float32; softmax focal converts a
 * vector at a time and needs no more).
 *
 * Processes: fork() is safe at any time, as in a PyTorch DataLoader worker.  The child
 * has none of the parent's workers; its first large call starts a pool of its own and
 * gives the same bits.  Unloading: dlclose() of libdafl stops and joins the workers
 * before the code goes away; dafl_stop_threads() does the same at any time.
 * @{
 */
/** The most threads a call uses (the largest dafl_set_threads() and DAFL_THREADS take). */
#define DAFL_MAX_THREADS 256
/** Calls with fewer elements than this always run on the calling thread. */
#define DAFL_MIN_PARALLEL_ELEMENTS 32768

/** A piece of work: process the items [begin, end) of a call. */
typedef void (*dafl_range_fn)(void *range_ctx, size_t begin, size_t end);

/** A host's parallel-for: it must call fn(range_ctx, b, e) for sub-ranges [b, e) that
 *  together cover [0, count) exactly once (any split, any threads, any order) and return
 *  when all of them have finished.  host_ctx is what was given to dafl_set_parallel_for.
 *  fn may be called on any thread, in any floating-point environment. */
typedef void (*dafl_parallel_for_fn)(void *host_ctx, size_t count, dafl_range_fn fn,
                                     void *range_ctx);

/** Process-wide thread count for later calls.
 *  May be called at any time, from any thread, also while other threads are in dafl
 *  calls (they keep the count they started with).
 *  @param threads  1 runs everything on the calling thread, 0 restores the default (see
 *                  above), at most DAFL_MAX_THREADS
 *  @return DAFL_OK, or DAFL_ERR_INVALID_PARAMETER when `threads` is negative or above
 *          DAFL_MAX_THREADS */
DAFL_API dafl_status dafl_set_threads(int threads);
/** The thread count later calls will use.
 *  @return the thread count, never 0 */
DAFL_API int dafl_threads(void);
/** Hand dafl's parallel work to the host's own pool (PyTorch's, TBB, OpenMP...) instead of
 *  dafl's.
 *  fn is then called for every call large enough to be split (the thread count set by
 *  dafl_set_threads() still decides whether a call is split; the host decides how).
 *  dafl checks the host's split: a range outside [0, count) or an item given twice is
 *  never run (twice), and items the host never ran are run on the calling thread after
 *  it returns.  Nothing is read or written out of bounds and every output holds the
 *  complete, correct result, but the call returns DAFL_ERR_PARALLEL_FOR to report the
 *  host's bug.  A host that returns before its ranges have finished cannot be checked.
 *  @param fn        the host's parallel-for, or NULL to restore dafl's pool
 *  @param host_ctx  passed to fn as its first argument
 *  @return DAFL_OK */
DAFL_API dafl_status dafl_set_parallel_for(dafl_parallel_for_fn fn, void *host_ctx);
/** Stops and joins dafl's pool threads and frees the pool (for leak checkers and hosts
 *  that embed dafl); waits for a call that is using the pool.  A later large call starts
 *  the pool again. */
DAFL_API void dafl_stop_threads(void);
/** @} */

/* ---- floating-point environment ---------------------------------------------------- */
/**
 * @defgroup dafl_fp_environment floating-point environment: results do not depend on it
 * @ingroup dafl
 * @details
 * Results do not depend on the caller's floating-point environment: every entry point
 * computes with round-to-nearest, without flush-to-zero or denormals-are-zero and with
 * every exception masked (x86 MXCSR, AArch64 FPCR), on the calling thread and on every
 * worker, and restores the caller's control and status registers before it returns - so
 * the same bits in every rounding mode, with FTZ/DAZ set or not, and no SIGFPE from
 * inside dafl even with exceptions unmasked (feenableexcept); the caller's sticky
 * exception flags are left as they were.
 */

/* ---- reductions and flags ------------------------------------------------------- */
/**
 * @defgroup dafl_reductions reductions and flags of the losses
 * @ingroup dafl
 * @details
 * What each reduction divides the sum of the per-element losses by is listed under
 * "Reductions" in dafl(3).
 * @{
 */
/** How a loss reduces its per-element losses to the loss it returns. */
typedef enum dafl_reduction {
    DAFL_REDUCTION_NONE = 0,      /**< the per-element losses themselves */
    DAFL_REDUCTION_SUM = 1,       /**< sum of the per-element losses */
    DAFL_REDUCTION_MEAN = 2,      /**< sum / element count (or the class weights' sum) */
    DAFL_REDUCTION_POSITIVES = 3, /**< not valid for softmax focal */
    DAFL_REDUCTION_NORMALIZER = 4 /**< sum / params.normalizer */
} dafl_reduction;

/** Skip the check that every target lies in [0, 1] (saves one read of the targets when
 *  the reduction does not need the positive count first).  Out-of-range targets then give
 *  unspecified (but memory-safe) values. */
#define DAFL_FLAG_TRUST_TARGETS 0x1u
/** @} */

/* ---- element types (half precision) --------------------------------------------- */
/**
 * @defgroup dafl_half_precision element types: half precision in every loss
 * @ingroup dafl
 * @details
 * Every loss reads and writes bfloat16 and float16 tensors as well as float32 ones (see
 * dafl_dtype):
 *   - penalty focal, sigmoid focal, BCE and MSE: input, target and grad;
 *   - softmax focal: logits and grad (labels are int32, class weights float32);
 *   - the keypoint-fused penalty focal loss (dafl_penalty_focal_keypoints): input and
 *     grad (its targets are rendered in float32).
 * @{
 */
/** The element type of a tensor a loss reads or writes (SPEC 13).
 *
 *  The element-wise parameter structs (penalty focal, sigmoid focal, BCE, MSE) end with
 *  input_dtype, target_dtype and grad_dtype, dafl_softmax_focal_params with input_dtype
 *  (its logits) and grad_dtype.  Their default, DAFL_DTYPE_FLOAT32 (0), is
 *  what a caller built against an older header gets (its smaller struct_size ends before
 *  them), so old binaries keep reading and writing float32.  The pointer parameters stay
 *  `const float *input, *target` (softmax focal: `logits`) and `float *grad`: for another
 *  dtype pass the tensor's address cast to them; it is read as `count` elements of that
 *  type (uint16_t bit patterns for bfloat16 and float16), no alignment beyond the type's
 *  own required.  The per-element loss array of DAFL_REDUCTION_NONE, the reduced loss
 *  and the statistics stay float32.
 *
 *  Why a dtype member and not typed entry points: a type is a property of the buffers,
 *  not of the loss, so one enum value serves every loss at once.  A later type (float64,
 *  float8...) is a new dafl_dtype value handled in the one place that widens and narrows
 *  elements, with no new exported symbol per loss and no change to any struct layout;
 *  a library that does not know a value refuses it with DAFL_ERR_INVALID_ENUM.
 *
 *  Contract: the loss, statistics and per-element losses are bit for bit those of the
 *  float32 call on the exactly widened inputs (bfloat16 and float16 widen to float32
 *  exactly); each gradient element is that call's float32 gradient rounded to nearest,
 *  ties to even, into grad_dtype (float16: magnitudes from 65520 up become infinity;
 *  NaN stays NaN, quiet).  The same bits on every ISA and thread count.
 *  Buffers: each buffer's size is count times its element size; grad may be the input
 *  itself only when both have the same element size (see "Buffers"). */
typedef enum dafl_dtype {
    DAFL_DTYPE_FLOAT32 = 0,  /**< IEEE binary32 (the default) */
    DAFL_DTYPE_BFLOAT16 = 1, /**< bfloat16: the upper 16 bits of a binary32 */
    DAFL_DTYPE_FLOAT16 = 2   /**< IEEE binary16 */
} dafl_dtype;
/** @} */

/** Block size of the fixed summation order (see "Determinism" in dafl(3)).
 *  @ingroup dafl_statistics */
#define DAFL_BLOCK_ELEMENTS 1024

/* ---- partial statistics --------------------------------------------------------- */
/**
 * @defgroup dafl_statistics partial statistics: exact sums of shards, combined in any order
 * @ingroup dafl
 * @details
 * Every loss can write the exact statistics of its call (dafl_stats): the loss sum, the
 * positive and element counts and the weight sum.  Statistics of shards combine into
 * those of one call over all the data, bit for bit, as "Determinism" in dafl(3)
 * describes; dafl_stats_reduce() then gives that call's loss.
 * @{
 */
/** Exact partial statistics of one call or shard.  Opaque, fixed size forever. */
typedef struct dafl_stats {
    uint64_t opaque[40]; /**< not to be read or written: use the dafl_stats_ functions */
} dafl_stats;

/** Empty statistics (the identity of dafl_stats_combine).
 *  @param[out] stats  the statistics to clear (NULL: nothing is done) */
DAFL_API void dafl_stats_init(dafl_stats *stats);
/** into += from, exactly.  Associative and commutative: any order gives the same bits.
 *  Range: the loss and weight sums are held exactly while they lie in [-2^235, 2^235)
 *  (2^235 = 5.5e70; one call's sums stay below 2^159, so only combining statistics with
 *  themselves many times gets there).  A sum that leaves the range becomes +-inf (of its
 *  sign) and stays so in every later combination; infinities of both signs give NaN.
 *  Every count (positives, elements, and the infinities and NaNs behind the sums)
 *  saturates at UINT64_MAX instead of wrapping.  Exactness, and with it the independence
 *  of the order, holds as long as no partial total leaves the range.
 *  @param[in,out] into  statistics that `from` is added to
 *  @param[in]     from  statistics of a loss call, dafl_stats_init() or this function
 *  @return DAFL_OK; DAFL_ERR_NULL_POINTER; DAFL_ERR_INVALID_PARAMETER when either holds
 *          no statistics (never written by dafl) */
DAFL_API dafl_status dafl_stats_combine(dafl_stats *into, const dafl_stats *from);
/** Sum of the per-element losses.
 *  @param stats  statistics of a loss call, dafl_stats_init() or dafl_stats_combine()
 *  @return the sum, correctly rounded from the exact sum; NaN or inf when an element was,
 *          +inf when the sum left the range of dafl_stats_combine() above */
DAFL_API double dafl_stats_loss_sum(const dafl_stats *stats);
/** Number of positive targets (y == 1) seen.
 *  @param stats  statistics of a loss call, dafl_stats_init() or dafl_stats_combine()
 *  @return the count, UINT64_MAX when the count saturated */
DAFL_API uint64_t dafl_stats_positives(const dafl_stats *stats);
/** Number of elements (softmax focal: non-ignored pixels) seen.
 *  @param stats  statistics of a loss call, dafl_stats_init() or dafl_stats_combine()
 *  @return the count, UINT64_MAX when the count saturated */
DAFL_API uint64_t dafl_stats_elements(const dafl_stats *stats);
/** Sum of the weights the MEAN reduction divides by (softmax focal: sum of w[label] over
 *  non-ignored pixels; other losses: the element count).
 *  @param stats  statistics of a loss call, dafl_stats_init() or dafl_stats_combine()
 *  @return the weight sum */
DAFL_API double dafl_stats_weight_sum(const dafl_stats *stats);
/** The reduced loss that one call with this reduction (and normalizer, for
 *  DAFL_REDUCTION_NORMALIZER) over the combined data returns, bit for bit.
 *  @param[in]  stats       statistics of loss calls, combined
 *  @param[in]  reduction   any reduction but DAFL_REDUCTION_NONE
 *  @param[in]  normalizer  the divisor of DAFL_REDUCTION_NORMALIZER (> 0, finite)
 *  @param[out] loss        the reduced loss
 *  @return DAFL_OK, or why nothing was written (DAFL_ERR_INVALID_ENUM for
 *          DAFL_REDUCTION_NONE) */
DAFL_API dafl_status dafl_stats_reduce(const dafl_stats *stats, dafl_reduction reduction,
                                       float normalizer, float *loss);

/** Number of targets equal to 1.0f, for computing a global normalizer before the fused
 *  call (validates the targets unless `flags` has DAFL_FLAG_TRUST_TARGETS).
 *  @param[in]  target     `count` targets in [0, 1]
 *  @param[in]  count      number of targets
 *  @param[in]  flags      0 or DAFL_FLAG_TRUST_TARGETS
 *  @param[out] positives  the number of targets equal to 1.0f
 *  @return DAFL_OK, or why nothing was written (DAFL_ERR_INVALID_TARGET for a target
 *          outside [0, 1] or NaN) */
DAFL_API dafl_status dafl_count_positives(const float *target, size_t count, uint32_t flags,
                                          uint64_t *positives);
/** @} */

/* ---- 2.1 penalty-reduced focal loss (CornerNet eq. 1, "distance-aware") --------- */
/**
 * @defgroup dafl_losses losses: the loss and its gradient in one call
 * @ingroup dafl
 * @details
 * Five losses, each one call with a parameter struct (see "Parameter structs and ABI
 * stability" in dafl(3)): the penalty-reduced focal loss of CornerNet and CenterNet,
 * the sigmoid focal loss of RetinaNet, binary cross-entropy with logits, softmax focal
 * loss and heatmap MSE.  Each writes the reduced loss (or the per-element losses), the
 * gradient when asked and the exact statistics when asked.  Their arguments:
 *   - `loss`: NULL, or 1 float for the reduced loss; for DAFL_REDUCTION_NONE as many
 *     floats as the loss has elements (softmax focal: pixels).
 *   - `grad`: NULL (forward only), or the gradient d(loss)/d(input) * grad_scale, one
 *     value per input element; it may be the input itself (no other overlap: see
 *     "Buffers" in dafl(3)).
 *   - `stats`: NULL, or the call's exact partial statistics (dafl_statistics(3)).
 *   - `params`: NULL for all defaults, or a struct filled by its _params_init().
 *
 * Each returns DAFL_OK, or the first problem found with its arguments, having written
 * nothing (see dafl_status).
 * @{
 */
/** How dafl_penalty_focal reads its input. */
typedef enum dafl_input_mode {
    DAFL_INPUT_LOGITS = 0,        /**< raw logits; stable for every finite x */
    DAFL_INPUT_PROBABILITIES = 1, /**< p itself; gradient is w.r.t. p */
    DAFL_INPUT_CLAMPED_LOGITS = 2 /**< p = clamp(sigmoid(x), eps, 1-eps), CenterNet's
                                       code; zero gradient where the clamp is active */
} dafl_input_mode;

/** Parameters of dafl_penalty_focal and dafl_penalty_focal_keypoints. */
typedef struct dafl_penalty_focal_params {
    size_t struct_size;         /**< sizeof(dafl_penalty_focal_params) */
    float alpha;                /**< exponent on the prediction, >= 0 (default 2) */
    float beta;                 /**< exponent of the distance factor, >= 0 (default 4) */
    float pos_weight;           /**< >= 0 (default 1) */
    float neg_weight;           /**< >= 0 (default 1) */
    dafl_input_mode input_mode; /**< default DAFL_INPUT_LOGITS */
    float clamp_eps;            /**< in (0, 0.5), default 1e-4 (CLAMPED_LOGITS only) */
    dafl_reduction reduction;   /**< default DAFL_REDUCTION_POSITIVES */
    float normalizer;           /**< positive, finite; for DAFL_REDUCTION_NORMALIZER */
    float grad_scale;           /**< finite; multiplies the gradient (default 1) */
    uint32_t flags;             /**< DAFL_FLAG_* */
    /* appended: a caller whose struct_size ends before a member gets its default */
    float log_eps;              /**< DAFL_INPUT_PROBABILITIES only: added inside both
                                     logs, c = -log(p + log_eps) or -log(1 - p + log_eps)
                                     (mmdetection's gaussian_focal_loss uses 1e-12);
                                     in [0, 0.5), default 0; other modes need 0 */
    /** Never read: the old tail padding (see dafl_bce_params::reserved). */
    uint32_t reserved;
    /* appended: half precision (see dafl_dtype); a caller whose struct_size ends before
     * them gets float32 */
    dafl_dtype input_dtype;     /**< element type of input (default FLOAT32) */
    dafl_dtype target_dtype;    /**< element type of target (default FLOAT32) */
    dafl_dtype grad_dtype;      /**< element type of grad (default FLOAT32) */
} dafl_penalty_focal_params;

/** The default dafl_penalty_focal_params, as an initialiser. */
#define DAFL_PENALTY_FOCAL_PARAMS_INIT                                                   \
    { sizeof(dafl_penalty_focal_params), 2.0f, 4.0f, 1.0f, 1.0f, DAFL_INPUT_LOGITS, 1e-4f, \
      DAFL_REDUCTION_POSITIVES, 1.0f, 1.0f, 0u, 0.0f, 0u, DAFL_DTYPE_FLOAT32,               \
      DAFL_DTYPE_FLOAT32, DAFL_DTYPE_FLOAT32 }
/** Fills a dafl_penalty_focal_params with the defaults (DAFL_PENALTY_FOCAL_PARAMS_INIT).
 *  @param[out] params  the struct to fill (NULL: nothing is done) */
DAFL_API void dafl_penalty_focal_params_init(dafl_penalty_focal_params *params);

/** Penalty-reduced focal loss over `count` elements, forward and gradient in one pass.
 *  Per element:
 *
 *      y == 1:  l = pos_weight * q^alpha * softplus(-x)
 *      y <  1:  l = neg_weight * (1-y)^beta * p^alpha * softplus(x)
 *
 *  @param[in]  input   `count` floats: logits, or probabilities (params' input_mode)
 *  @param[in]  target  `count` floats in [0, 1]; 1.0f marks a positive
 *  @param[in]  count   number of elements
 *  @param[in]  params  NULL for the defaults, or filled by dafl_penalty_focal_params_init()
 *  @param[out] loss    1 float (`count` floats for DAFL_REDUCTION_NONE), or NULL
 *  @param[out] grad    `count` floats or NULL (forward only); may be `input` itself (no
 *                      other overlap: see "Buffers")
 *  @param[out] stats   NULL or the call's exact partial statistics
 *  @return DAFL_OK, or the first problem found, with nothing written */
DAFL_API dafl_status dafl_penalty_focal(const float *input, const float *target, size_t count,
                                        const dafl_penalty_focal_params *params, float *loss,
                                        float *grad, dafl_stats *stats);

/* ---- 2.2 sigmoid focal loss (RetinaNet; torchvision semantics) ------------------ */
/** Parameters of dafl_sigmoid_focal. */
typedef struct dafl_sigmoid_focal_params {
    size_t struct_size;       /**< sizeof(dafl_sigmoid_focal_params) */
    float gamma;              /**< >= 0, any real value (default 2) */
    float alpha;              /**< class balance, finite; < 0 turns it off (0.25) */
    dafl_reduction reduction; /**< default DAFL_REDUCTION_NONE (torchvision's default) */
    float normalizer;         /**< positive, finite; for DAFL_REDUCTION_NORMALIZER */
    float grad_scale;         /**< finite; multiplies the gradient (default 1) */
    uint32_t flags;           /**< DAFL_FLAG_* */
    /* appended: half precision (see dafl_dtype); a caller whose struct_size ends before
     * them gets float32 */
    dafl_dtype input_dtype;     /**< element type of input (default FLOAT32) */
    dafl_dtype target_dtype;    /**< element type of target (default FLOAT32) */
    dafl_dtype grad_dtype;      /**< element type of grad (default FLOAT32) */
} dafl_sigmoid_focal_params;

/** The default dafl_sigmoid_focal_params, as an initialiser. */
#define DAFL_SIGMOID_FOCAL_PARAMS_INIT \
    { sizeof(dafl_sigmoid_focal_params), 2.0f, 0.25f, DAFL_REDUCTION_NONE, 1.0f, 1.0f, 0u,    \
      DAFL_DTYPE_FLOAT32, DAFL_DTYPE_FLOAT32, DAFL_DTYPE_FLOAT32 }
/** Fills a dafl_sigmoid_focal_params with the defaults (DAFL_SIGMOID_FOCAL_PARAMS_INIT).
 *  @param[out] params  the struct to fill (NULL: nothing is done) */
DAFL_API void dafl_sigmoid_focal_params_init(dafl_sigmoid_focal_params *params);

/** Sigmoid focal loss, soft targets allowed.  Per element:
 *
 *      ce = y*softplus(-x) + (1-y)*softplus(x),  m = y*q + (1-y)*p,
 *      a_t = alpha*y + (1-alpha)*(1-y) (1 when alpha < 0),  l = a_t * m^gamma * ce.
 *
 *  gamma == 0 with alpha < 0 is exactly BCE with logits.  Buffers as for
 *  dafl_penalty_focal.
 *  @param[in]  input   `count` logits
 *  @param[in]  target  `count` floats in [0, 1]
 *  @param[in]  count   number of elements
 *  @param[in]  params  NULL for the defaults, or filled by dafl_sigmoid_focal_params_init()
 *  @param[out] loss    1 float (`count` floats for DAFL_REDUCTION_NONE), or NULL
 *  @param[out] grad    `count` floats or NULL; may be `input` itself
 *  @param[out] stats   NULL or the call's exact partial statistics
 *  @return DAFL_OK, or the first problem found, with nothing written */
DAFL_API dafl_status dafl_sigmoid_focal(const float *input, const float *target, size_t count,
                                        const dafl_sigmoid_focal_params *params, float *loss,
                                        float *grad, dafl_stats *stats);

/* ---- 2.3 binary cross-entropy with logits --------------------------------------- */
/** Parameters of dafl_bce_with_logits. */
typedef struct dafl_bce_params {
    size_t struct_size;       /**< sizeof(dafl_bce_params) */
    float pos_weight;         /**< >= 0 (default 1) */
    dafl_reduction reduction; /**< default DAFL_REDUCTION_MEAN (PyTorch's default) */
    float normalizer;         /**< positive, finite; for DAFL_REDUCTION_NORMALIZER */
    float grad_scale;         /**< finite; multiplies the gradient (default 1) */
    uint32_t flags;           /**< DAFL_FLAG_* */
    /** Never read: it fills what was the struct's tail padding before the members below
     *  were appended, so that they start at or after the old sizeof, and the old sizeof
     *  an older binary passes as struct_size never covers them. */
    uint32_t reserved;
    /* appended: half precision (see dafl_dtype); a caller whose struct_size ends before
     * them gets float32 */
    dafl_dtype input_dtype;     /**< element type of input (default FLOAT32) */
    dafl_dtype target_dtype;    /**< element type of target (default FLOAT32) */
    dafl_dtype grad_dtype;      /**< element type of grad (default FLOAT32) */
    /* appended: a pos_weight per class (see dafl_bce_with_logits); a caller whose
     * struct_size ends before them gets the one pos_weight above.  grad_dtype ends the
     * old struct in its tail padding; a pointer starts at the old sizeof on every ABI. */
    const float *pos_weights;   /**< NULL (default): pos_weight for every element; else
                                     weights >= 0 per class (pos_weights_count == c) or per
                                     image and class (== n*c), replacing pos_weight (which
                                     must then stay 1) */
    size_t pos_weights_count;   /**< number of pos_weights: c or n*c */
    size_t channels;            /**< c, the classes; 0: pos_weights_count (one weight per
                                     class) */
    size_t channel_stride;      /**< >= 1 with pos_weights: element i's class is
                                     (i / channel_stride) % c (NCHW: h*w; classes last,
                                     NHWC or (N, C): 1) */
} dafl_bce_params;

/** The default dafl_bce_params, as an initialiser. */
#define DAFL_BCE_PARAMS_INIT                                                              \
    { sizeof(dafl_bce_params), 1.0f, DAFL_REDUCTION_MEAN, 1.0f, 1.0f, 0u, 0u,             \
      DAFL_DTYPE_FLOAT32, DAFL_DTYPE_FLOAT32, DAFL_DTYPE_FLOAT32, NULL, 0, 0, 0 }
/** Fills a dafl_bce_params with the defaults (DAFL_BCE_PARAMS_INIT).
 *  @param[out] params  the struct to fill (NULL: nothing is done) */
DAFL_API void dafl_bce_params_init(dafl_bce_params *params);

/** Binary cross-entropy with logits.  Per element:
 *
 *      l = pos_weight*y*softplus(-x) + (1-y)*softplus(x),
 *      dl/dx = (1-y)*p - pos_weight*y*q.
 *
 *  A pos_weight per class (PyTorch's pos_weight tensor of shape (C, 1, 1) on NCHW, (C,)
 *  on (N, C) or channels last): params' pos_weights, and element i takes
 *
 *      pos_weight(i) = pos_weights[k * c + (i / channel_stride) % c],
 *      k = i / (count / n),  n = pos_weights_count / c   (k = 0 when the count is c)
 *
 *  with c = params' channels (0: pos_weights_count).  That is the class of element i in
 *  any dense layout whose image index is outermost: NCHW has channel_stride h*w, NHWC
 *  (channels_last) and (N, C) have 1, and every image is count / n elements.  Why a
 *  stride and not a layout enum: one rule serves every such permutation (NHCW: w), and
 *  the call reads the caller's memory as it lies, in place.  The NHWC call on the
 *  permuted data gives the NCHW call's per-element losses and gradient bit for bit (each
 *  element where its layout puts it) and the same counts; its loss sum adds the same
 *  values in another order, equal up to the rounding of a block's double lanes (see
 *  "Determinism": exact while a lane's values span less than 2^29, so in practice the
 *  same float loss).  DAFL_ERR_INVALID_PARAMETER (with
 *  nothing written) when pos_weights is given and pos_weight is not 1, a weight is
 *  negative, infinite or NaN, channel_stride is 0, c is 0 or does not divide
 *  pos_weights_count, or count is not a multiple of pos_weights_count * channel_stride
 *  (whole images of whole periods of the class pattern).
 *
 *  @param[in]  input   `count` logits
 *  @param[in]  target  `count` floats in [0, 1]
 *  @param[in]  count   number of elements
 *  @param[in]  params  NULL for the defaults, or filled by dafl_bce_params_init()
 *  @param[out] loss    1 float (`count` floats for DAFL_REDUCTION_NONE), or NULL
 *  @param[out] grad    `count` floats or NULL; may be `input` itself
 *  @param[out] stats   NULL or the call's exact partial statistics
 *  @return DAFL_OK, or the first problem found, with nothing written */
DAFL_API dafl_status dafl_bce_with_logits(const float *input, const float *target, size_t count,
                                          const dafl_bce_params *params, float *loss,
                                          float *grad, dafl_stats *stats);

/* ---- 2.4 softmax focal loss (multi-class segmentation) -------------------------- */
/** Where dafl_softmax_focal finds the classes of a pixel. */
typedef enum dafl_layout {
    DAFL_LAYOUT_NCHW = 0, /**< class stride h*w */
    DAFL_LAYOUT_NHWC = 1  /**< classes contiguous per pixel */
} dafl_layout;

/** Parameters of dafl_softmax_focal. */
typedef struct dafl_softmax_focal_params {
    size_t struct_size;         /**< sizeof(dafl_softmax_focal_params) */
    float gamma;                /**< >= 0 (default 2); 0 is weighted cross-entropy */
    dafl_layout layout;         /**< default DAFL_LAYOUT_NCHW */
    int32_t ignore_index;       /**< label that contributes nothing (default -100) */
    const float *class_weights; /**< NULL or c weights >= 0 (default NULL: all 1) */
    dafl_reduction reduction;   /**< default DAFL_REDUCTION_MEAN; POSITIVES is invalid */
    float normalizer;           /**< positive, finite; for DAFL_REDUCTION_NORMALIZER */
    float grad_scale;           /**< finite; multiplies the gradient (default 1) */
    uint32_t flags;             /**< DAFL_FLAG_* */
    /* appended: half precision (see dafl_dtype); a caller whose struct_size ends before
     * them gets float32.  flags ends the old struct without tail padding (its old sizeof
     * on every ABI), so they start at the old sizeof with no reserved member before them.
     * The labels stay int32 and the class weights float32: they are not tensors a
     * mixed-precision network produces. */
    dafl_dtype input_dtype;     /**< element type of logits (default FLOAT32) */
    dafl_dtype grad_dtype;      /**< element type of grad (default FLOAT32) */
} dafl_softmax_focal_params;

/** The default dafl_softmax_focal_params, as an initialiser. */
#define DAFL_SOFTMAX_FOCAL_PARAMS_INIT                                                  \
    { sizeof(dafl_softmax_focal_params), 2.0f, DAFL_LAYOUT_NCHW, -100, NULL,              \
      DAFL_REDUCTION_MEAN, 1.0f, 1.0f, 0u, DAFL_DTYPE_FLOAT32, DAFL_DTYPE_FLOAT32 }
/** Fills a dafl_softmax_focal_params with the defaults (DAFL_SOFTMAX_FOCAL_PARAMS_INIT).
 *  @param[out] params  the struct to fill (NULL: nothing is done) */
DAFL_API void dafl_softmax_focal_params_init(dafl_softmax_focal_params *params);

/** The most classes dafl_softmax_focal accepts: class indices are matched in float lanes,
 *  exact up to 2^24.  More classes give DAFL_ERR_INVALID_PARAMETER. */
#define DAFL_MAX_CLASSES ((size_t)1 << 24)

/** Softmax focal loss over n images of c classes (1..DAFL_MAX_CLASSES) and hw = h*w
 *  pixels.  Per pixel, with t its label:
 *
 *      s = log_softmax(x)[t],  p_t = exp(s),  m = 1 - p_t,  l = -w[t] * m^gamma * s.
 *
 *  Ignored pixels give 0 loss and 0 gradient.
 *  Half precision: logits and grad may be bfloat16 or float16 (params' input_dtype and
 *  grad_dtype, see dafl_dtype): the loss, per-pixel losses and statistics are those of
 *  the float32 call on the widened logits, bit for bit, and each gradient element that
 *  call's gradient rounded once into grad_dtype.  grad may be `logits` itself when both
 *  have the same element size.
 *  @param[in]  logits  n*c*hw elements of params' input_dtype (floats by default), in
 *                      params' `layout`
 *  @param[in]  labels  n*hw int32 in 0..c-1 or ignore_index
 *  @param[in]  n       number of images
 *  @param[in]  c       number of classes
 *  @param[in]  hw      pixels per image
 *  @param[in]  params  NULL for the defaults, or filled by dafl_softmax_focal_params_init()
 *  @param[out] loss    1 float, or n*hw floats (one per pixel) for
 *                      DAFL_REDUCTION_NONE; or NULL
 *  @param[out] grad    n*c*hw elements of params' grad_dtype in the same layout, or
 *                      NULL; may be `logits` itself (no other overlap: see "Buffers")
 *  @param[out] stats   NULL or the call's exact partial statistics
 *  @return DAFL_OK, or the first problem found, with nothing written */
DAFL_API dafl_status dafl_softmax_focal(const float *logits, const int32_t *labels, size_t n,
                                        size_t c, size_t hw,
                                        const dafl_softmax_focal_params *params, float *loss,
                                        float *grad, dafl_stats *stats);

/* ---- 2.5 heatmap mean squared error --------------------------------------------- */
/** Parameters of dafl_mse. */
typedef struct dafl_mse_params {
    size_t struct_size;       /**< sizeof(dafl_mse_params) */
    const float *weights;     /**< NULL, or weights >= 0 per channel (weights_count == c)
                                   or per image and channel (weights_count == n*c) */
    size_t weights_count;     /**< number of weights: c or n*c */
    dafl_reduction reduction; /**< default DAFL_REDUCTION_MEAN (over elements) */
    float normalizer;         /**< positive, finite; for DAFL_REDUCTION_NORMALIZER */
    float grad_scale;         /**< finite; multiplies the gradient (default 1) */
    uint32_t flags;           /**< DAFL_FLAG_* */
    /* appended: half precision (see dafl_dtype); a caller whose struct_size ends before
     * them gets float32 */
    dafl_dtype input_dtype;     /**< element type of input (default FLOAT32) */
    dafl_dtype target_dtype;    /**< element type of target (default FLOAT32) */
    dafl_dtype grad_dtype;      /**< element type of grad (default FLOAT32) */
    /* appended: the layout of the weights' channels (see dafl_mse); a caller whose
     * struct_size ends before it gets NCHW.  grad_dtype ends the old struct in its tail
     * padding; a size_t starts at the old sizeof on every ABI. */
    size_t channel_stride;      /**< 0 (default): h*w, NCHW; else a divisor of hw:
                                     element i's channel is (i / channel_stride) % c
                                     (1: NHWC, channels_last) */
} dafl_mse_params;

/** The default dafl_mse_params, as an initialiser. */
#define DAFL_MSE_PARAMS_INIT                                                              \
    { sizeof(dafl_mse_params), NULL, 0, DAFL_REDUCTION_MEAN, 1.0f, 1.0f, 0u,              \
      DAFL_DTYPE_FLOAT32, DAFL_DTYPE_FLOAT32, DAFL_DTYPE_FLOAT32, 0 }
/** Fills a dafl_mse_params with the defaults (DAFL_MSE_PARAMS_INIT).
 *  @param[out] params  the struct to fill (NULL: nothing is done) */
DAFL_API void dafl_mse_params_init(dafl_mse_params *params);

/** Heatmap mean squared error over a batch of n*c*hw.  Per element, ch its channel:
 *
 *      l = w[ch] * (x - y)^2,  dl/dx = 2 * w[ch] * (x - y)
 *
 *  The batch is NCHW by default.  Any dense layout whose image index is outermost is read
 *  in place with params' channel_stride s (a divisor of hw): element i lies in image
 *  k = i / (c*hw) and channel ch = (i / s) % c, and takes the weight w[ch] (weights_count
 *  == c) or w[k*c + ch] (weights_count == n*c).  NCHW is s = hw (the default, 0), NHWC
 *  (channels_last) s = 1, NHCW s = w.  Why a stride and not a layout enum: one rule
 *  serves every such permutation, and no copy into NCHW is needed.  The call on the
 *  permuted data gives the NCHW call's per-element losses and gradient bit for bit and
 *  its loss sum up to the rounding of a block's double lanes (as dafl_bce_with_logits
 *  says).  DAFL_ERR_INVALID_PARAMETER (nothing
 *  written) for a weights_count other than c or n*c, a weight < 0, infinite or NaN, or a
 *  channel_stride that does not divide hw.
 *
 *  @param[in]  input   n*c*hw floats, in the layout params' channel_stride says
 *  @param[in]  target  n*c*hw floats, in the same layout
 *  @param[in]  n       number of images
 *  @param[in]  c       channels per image
 *  @param[in]  hw      elements per channel
 *  @param[in]  params  NULL for the defaults, or filled by dafl_mse_params_init()
 *  @param[out] loss    1 float (n*c*hw floats for DAFL_REDUCTION_NONE, in the input's
 *                      layout), or NULL
 *  @param[out] grad    n*c*hw floats in the input's layout, or NULL; may be `input`
 *                      itself
 *  @param[out] stats   NULL or the call's exact partial statistics
 *  @return DAFL_OK, or the first problem found, with nothing written */
DAFL_API dafl_status dafl_mse(const float *input, const float *target, size_t n, size_t c,
                              size_t hw, const dafl_mse_params *params, float *loss,
                              float *grad, dafl_stats *stats);
/** @} */

/* ---- 3. targets: the distance factor -------------------------------------------- */
/**
 * @defgroup dafl_targets targets: Gaussian radius, Gaussians and distance targets
 * @ingroup dafl
 * @details
 * The targets that make the penalty-reduced focal loss distance-aware: CornerNet's
 * Gaussian radius, CenterNet's two ways of drawing a Gaussian into a heatmap, and
 * Gaussian targets of the exact Euclidean distance to a mask.
 * @{
 */
/** Which roots dafl_gaussian_radius takes. */
typedef enum dafl_radius_variant {
    DAFL_RADIUS_CORNERNET = 0, /**< each root (b + sqrt(b^2-4ac))/2, as CenterNet master */
    DAFL_RADIUS_EXACT = 1      /**< the corrected roots (mmdetection's), evaluated
                                    *   without cancellation: within a few ulp of the
                                    *   exact root for every overlap in (0, 1) */
} dafl_radius_variant;

/** CornerNet's Gaussian radius for a box of height x width so that corners within it
 *  still give IoU >= min_overlap (in (0, 1)).
 *  @param[in]  height       box height, > 0, finite
 *  @param[in]  width        box width, > 0, finite
 *  @param[in]  min_overlap  the IoU to keep, in (0, 1)
 *  @param[in]  variant      which roots
 *  @param[out] radius       the radius (not rounded)
 *  @return DAFL_OK, or the first problem found, with nothing written */
DAFL_API dafl_status dafl_gaussian_radius(double height, double width, double min_overlap,
                                          dafl_radius_variant variant, double *radius);

/** CenterNet "umich" Gaussian: diameter d = 2r+1, sigma = d/6, values below
 *  DBL_EPSILON * max cut to 0, window clipped at the borders, merged into the h x w
 *  heatmap by element-wise max with k*g (k >= 0).  Centre (cx, cy) may lie outside the
 *  heatmap (then only the overlapping part, if any, is drawn).
 *  @param[in,out] heatmap  h*w floats, row-major
 *  @param[in]     h        rows of the heatmap
 *  @param[in]     w        columns of the heatmap
 *  @param[in]     cx       centre column
 *  @param[in]     cy       centre row
 *  @param[in]     radius   r, >= 0
 *  @param[in]     k        peak value, >= 0, finite
 *  @return DAFL_OK, or the first problem found, with nothing written */
DAFL_API dafl_status dafl_draw_gaussian(float *heatmap, size_t h, size_t w, long cx, long cy,
                                        long radius, float k);

/** CenterNet "msra" Gaussian: explicit sigma > 0, window half-size 3*sigma, centre
 *  rounded with (int)(c + 0.5), max-merge, no epsilon cut.
 *  @param[in,out] heatmap  h*w floats, row-major
 *  @param[in]     h        rows of the heatmap
 *  @param[in]     w        columns of the heatmap
 *  @param[in]     cx       centre column
 *  @param[in]     cy       centre row
 *  @param[in]     sigma    > 0
 *  @return DAFL_OK, or the first problem found, with nothing written */
DAFL_API dafl_status dafl_draw_gaussian_sigma(float *heatmap, size_t h, size_t w, double cx,
                                              double cy, double sigma);

/** Distance targets for a binary mask (non-zero = foreground), h x w:
 *  out = exp(-d^2 / (2 sigma^2)), d the exact Euclidean distance to the nearest
 *  foreground pixel (Felzenszwalb-Huttenlocher, linear time).  An all-background mask
 *  gives all zeros.
 *  Temporary memory, whatever the thread count: 4*h*w bytes (the column pass), at most
 *  16 KiB (a table of targets), 8*B bytes and, for each thread working on rows at the
 *  same time, 32*w bytes of row scratch, for at most B = max(1, floor(h/8)) threads:
 *  at most 4*h*w + (32*w + 8)*B + 16384 bytes in all.  Only one row scratch is needed:
 *  when no more can be allocated, the threads share the ones there are, so the call
 *  succeeds (DAFL_ERR_OUT_OF_MEMORY otherwise) exactly when 4*h*w + 32*w + 8*B + 16384
 *  bytes can be allocated, on any thread count.
 *  @param[in]  mask   h*w bytes, row-major
 *  @param[in]  h      rows
 *  @param[in]  w      columns
 *  @param[in]  sigma  > 0
 *  @param[out] out    h*w floats
 *  @return DAFL_OK, or the first problem found, with nothing written */
DAFL_API dafl_status dafl_distance_targets(const uint8_t *mask, size_t h, size_t w,
                                           double sigma, float *out);
/** @} */

/* ---- 12. targets from keypoint lists ------------------------------------------ */
/**
 * @defgroup dafl_keypoints targets from keypoint lists, rendered or fused into the loss
 * @ingroup dafl
 * @details
 * A batch of keypoints describes the targets of an n x c x h x w heatmap batch without
 * the batch itself: dafl_render_heatmaps draws them, and dafl_penalty_focal_keypoints
 * computes the penalty-reduced focal loss straight from them, with the bits of rendering
 * and calling dafl_penalty_focal but no n x c x h x w temporary.  Each keypoint is one
 * Gaussian merged into plane (image, channel) by element-wise max; pixels no keypoint
 * reaches are 0.  The max-merge makes the result independent of the keypoints' order.
 * @{
 */
/** How a keypoint is drawn. */
typedef enum dafl_keypoint_style {
    DAFL_KEYPOINT_UMICH = 0,   /**< dafl_draw_gaussian: x, y and size (the radius) integers */
    DAFL_KEYPOINT_MSRA = 1,    /**< dafl_draw_gaussian_sigma: real x, y; size is sigma > 0 */
    DAFL_KEYPOINT_DISTANCE = 2 /**< the distance-target form: integer x, y; size is sigma
                                    > 0; exp(-d^2 / (2 sigma^2)) of the distance d to the
                                    keypoint over the whole plane, no window, no cut */
} dafl_keypoint_style;

/** One keypoint.  An array of them is read with the stride points[0].struct_size, which
 *  every element must repeat (the ABI rule of the parameter structs, per element). */
typedef struct dafl_keypoint {
    size_t struct_size;        /**< sizeof(dafl_keypoint) */
    int64_t image;             /**< 0 to n-1 */
    int64_t channel;           /**< 0 to c-1 (the class or keypoint type) */
    double x;                  /**< centre column in pixels; finite, |x| <= 2^30; may lie
                                    outside the heatmap (the part of the window that
                                    overlaps it is drawn) */
    double y;                  /**< centre row, likewise */
    double size;               /**< UMICH: radius, an integer in [0, 2^30]; MSRA and
                                    DISTANCE: sigma in (0, 2^30] */
    float k;                   /**< peak in [0, 1] (default 1): the Gaussian times k */
    dafl_keypoint_style style; /**< default DAFL_KEYPOINT_UMICH */
} dafl_keypoint;

/** The default dafl_keypoint, as an initialiser. */
#define DAFL_KEYPOINT_INIT \
    { sizeof(dafl_keypoint), 0, 0, 0.0, 0.0, 0.0, 1.0f, DAFL_KEYPOINT_UMICH }
/** Fills a dafl_keypoint with the defaults (DAFL_KEYPOINT_INIT).
 *  @param[out] point  the keypoint to fill (NULL: nothing is done) */
DAFL_API void dafl_keypoint_init(dafl_keypoint *point);

/** Renders `count` keypoints into heatmaps (n x c x h x w floats, NCHW): exactly the
 *  bits of zeroing heatmaps and calling, for each keypoint in any order, on its plane
 *
 *      UMICH: dafl_draw_gaussian(plane, h, w, x, y, size, k)
 *      MSRA:  dafl_draw_gaussian_sigma(plane, h, w, x, y, size)
 *      DISTANCE: the plane of dafl_distance_targets(mask, h, w, size, ...) for a mask
 *                that is 1 at the keypoints of the plane (when they share one sigma and
 *                lie inside it): the max of their Gaussians is the Gaussian of the
 *                distance to the nearest one
 *
 *  on dafl's threads.  MSRA and DISTANCE with k < 1 scale the Gaussian by k before it is
 *  rounded to float, as UMICH does (k = 1 is the drawing function itself).  A DISTANCE
 *  keypoint reaches every pixel of its plane: one exp per pixel of the plane per keypoint.
 *  Every keypoint is validated before anything is written: a struct_size below
 *  sizeof(size_t), above sizeof(dafl_keypoint) or differing between elements
 *  (DAFL_ERR_STRUCT_SIZE; a smaller one is an older header's struct, its missing members
 *  take their defaults), an image or channel out of range (DAFL_ERR_INVALID_LABEL), a
 *  non-finite or too large centre, a UMICH or DISTANCE centre or a UMICH radius that is
 *  not an integer, a negative radius, a sigma <= 0, k outside [0, 1]
 *  (DAFL_ERR_INVALID_PARAMETER), an unknown style (DAFL_ERR_INVALID_ENUM).  Needs
 *  O(count) temporary memory.
 *  @param[in]  points    `count` keypoints (see dafl_keypoint for the stride)
 *  @param[in]  count     number of keypoints
 *  @param[in]  n         images in the batch
 *  @param[in]  c         channels per image
 *  @param[in]  h         rows of a heatmap
 *  @param[in]  w         columns of a heatmap
 *  @param[out] heatmaps  n*c*h*w floats, all written
 *  @return DAFL_OK, or the first problem found, with nothing written */
DAFL_API dafl_status dafl_render_heatmaps(const dafl_keypoint *points, size_t count, size_t n,
                                          size_t c, size_t h, size_t w, float *heatmaps);

/** The penalty-reduced focal loss of `input` (n x c x h x w floats, NCHW) against the targets
 *  that dafl_render_heatmaps(points, count, n, c, h, w, ...) would render, without them.
 *  The same loss, gradient, per-element losses and statistics, bit for bit, as rendering
 *  them and calling
 *  dafl_penalty_focal(input, targets, n * c * h * w, params, loss, grad, stats), with every
 *  parameter, input mode and reduction of that call, on every ISA and thread count.
 *  Positives are the pixels whose target is exactly 1 (from the keypoints, not a scan).
 *  DAFL_FLAG_TRUST_TARGETS changes nothing: validated keypoints give valid targets.
 *  Each block of DAFL_BLOCK_ELEMENTS elements gets its targets rendered on the fly into
 *  a buffer on the stack of the thread that runs it; a block that no keypoint reaches
 *  is all-negative and runs a kernel that knows its targets are 0 (no rendering, no
 *  target reads, no positive branch: the same bits).  The positive count that
 *  DAFL_REDUCTION_POSITIVES divides by comes from a first pass that renders only the
 *  blocks keypoints reach.  Memory besides the caller's buffers, whatever n x c x h x w:
 *  DAFL_BLOCK_ELEMENTS floats (4 KiB) of stack per thread, and 128 bytes per keypoint
 *  on the heap (its clipped window, sorted by plane; qsort may take as much again).
 *  Keypoints are validated as for dafl_render_heatmaps, before anything is written.
 *  Half precision: input and grad may be bfloat16 or float16 (params' input_dtype and
 *  grad_dtype, see dafl_dtype), with the bits of dafl_penalty_focal on the same input
 *  and grad types and the rendered float32 targets.  There is no target buffer: the
 *  targets are rendered in float32, so params' target_dtype must be DAFL_DTYPE_FLOAT32
 *  (DAFL_ERR_INVALID_ENUM otherwise).
 *  @param[in]  input   n*c*h*w elements of params' input_dtype, as for dafl_penalty_focal
 *  @param[in]  n       images in the batch
 *  @param[in]  c       channels per image
 *  @param[in]  h       rows of a heatmap
 *  @param[in]  w       columns of a heatmap
 *  @param[in]  points  `count` keypoints, as for dafl_render_heatmaps
 *  @param[in]  count   number of keypoints
 *  @param[in]  params  NULL for the defaults, or filled by dafl_penalty_focal_params_init()
 *  @param[out] loss    as for dafl_penalty_focal, with count = n*c*h*w
 *  @param[out] grad    as for dafl_penalty_focal, with count = n*c*h*w
 *  @param[out] stats   NULL or the call's exact partial statistics
 *  @return DAFL_OK, or the first problem found, with nothing written */
DAFL_API dafl_status dafl_penalty_focal_keypoints(const float *input, size_t n, size_t c,
                                                  size_t h, size_t w,
                                                  const dafl_keypoint *points, size_t count,
                                                  const dafl_penalty_focal_params *params,
                                                  float *loss, float *grad, dafl_stats *stats);
/** @} */

#ifdef __cplusplus
}
#endif

#endif /* DAFL_H */
