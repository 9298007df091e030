/*
 * The caller's floating-point environment changes nothing: every rounding mode, FTZ and
 * DAZ, and unmasked exceptions give the bits of the default environment, on every ISA
 * and thread count (the pool's workers included); the caller's environment is exactly
 * what it was after each call; no SIGFPE comes out of dafl for inputs whose results are
 * well defined.
 */
#define _GNU_SOURCE /* feenableexcept */
#include <fenv.h>
#include <float.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test_workload.h"

#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
#define FLUSH_BITS 0x8040u /* MXCSR FTZ (bit 15) and DAZ (bit 6) */
static unsigned control_register(void) { return _mm_getcsr(); }
static void set_flush_to_zero(int on)
{
    _mm_setcsr(on ? _mm_getcsr() | FLUSH_BITS : _mm_getcsr() & ~FLUSH_BITS);
}
#elif defined(__aarch64__)
#define FLUSH_BITS (1u << 24) /* FPCR.FZ */
static unsigned control_register(void)
{
    uint64_t v;
    __asm__ volatile("mrs %0, fpcr" : "=r"(v));
    return (unsigned)v;
}
static void set_flush_to_zero(int on)
{
    uint64_t v = control_register();
    v = on ? v | FLUSH_BITS : v & ~(uint64_t)FLUSH_BITS;
    __asm__ volatile("msr fpcr, %0" : : "r"(v));
}
#else
static unsigned control_register(void) { return 0; }
static void set_flush_to_zero(int on) { (void)on; }
#endif

/* Everything that depends on arithmetic besides the losses: targets and radii. */
static uint64_t target_digest(void)
{
    enum { H = 300, W = 260 };
    static uint8_t mask[H * W];
    static float out[H * W];
    for (int i = 0; i < H * W; i++)
        mask[i] = i % 1303 == 0;
    uint64_t h = TEST_HASH_SEED;
    if (dafl_distance_targets(mask, H, W, 3.5, out) != DAFL_OK)
        return 0;
    h = test_hash_floats(h, out, H * W);
    memset(out, 0, sizeof out);
    if (dafl_draw_gaussian(out, H, W, 40, 77, 9, 1.0f) != DAFL_OK ||
        dafl_draw_gaussian_sigma(out, H, W, 101.3, 150.7, 2.25) != DAFL_OK)
        return 0;
    h = test_hash_floats(h, out, H * W);
    double r[2];
    if (dafl_gaussian_radius(37.3, 91.9, 0.7, DAFL_RADIUS_CORNERNET, &r[0]) != DAFL_OK ||
        dafl_gaussian_radius(37.3, 91.9, 0.7, DAFL_RADIUS_EXACT, &r[1]) != DAFL_OK)
        return 0;
    float bits[4]; /* the doubles' bits, without arithmetic */
    memcpy(bits, r, sizeof bits);
    return test_hash_floats(h, bits, 4);
}

typedef enum environment {
    ENV_DEFAULT,
    ENV_UPWARD,
    ENV_DOWNWARD,
    ENV_TOWARDZERO,
    ENV_FLUSH_TO_ZERO,
    ENV_TRAPS,       /* every exception but inexact unmasked */
    ENV_EVERYTHING,  /* upward + FTZ/DAZ + traps */
    ENV_COUNT
} environment;

static const char *const env_names[ENV_COUNT] = {
    "default", "upward", "downward", "toward zero", "FTZ/DAZ", "traps", "all at once"};

#define TRAPS (FE_DIVBYZERO | FE_INVALID | FE_OVERFLOW | FE_UNDERFLOW)

/* Returns 0 when this CPU cannot set the environment (trapping is optional on AArch64). */
static int enter_environment(environment e)
{
    switch (e) {
    case ENV_DEFAULT:
        return 1;
    case ENV_UPWARD:
        return fesetround(FE_UPWARD) == 0;
    case ENV_DOWNWARD:
        return fesetround(FE_DOWNWARD) == 0;
    case ENV_TOWARDZERO:
        return fesetround(FE_TOWARDZERO) == 0;
    case ENV_FLUSH_TO_ZERO:
        set_flush_to_zero(1);
        return (control_register() & FLUSH_BITS) != 0;
    case ENV_TRAPS:
        return feenableexcept(TRAPS) != -1 && fegetexcept() == TRAPS;
    case ENV_EVERYTHING:
        set_flush_to_zero(1);
        return fesetround(FE_UPWARD) == 0 && feenableexcept(TRAPS) != -1 &&
               fegetexcept() == TRAPS;
    default:
        return 0;
    }
}

static void leave_environment(void)
{
    fedisableexcept(FE_ALL_EXCEPT);
    fesetround(FE_TONEAREST);
    set_flush_to_zero(0);
    feclearexcept(FE_ALL_EXCEPT);
}

/* Each environment, each ISA, 1, 2 and 3 threads: the default environment's bits, and
 * the caller's environment unchanged by every call. */
START_TEST(same_bits_in_every_environment)
{
    make_data();
    dafl_isa initial = dafl_active_isa();
    int compared = 0;
    for (int i = 0; i < TEST_ISA_COUNT; i++) {
        if (!test_use_isa(test_all_isas[i], "floating-point environments"))
            continue;
        ck_assert_int_eq(dafl_set_threads(1), DAFL_OK);
        uint64_t reference = run_all_losses(), targets = target_digest();
        for (int threads = 1; threads <= 3; threads++) {
            ck_assert_int_eq(dafl_set_threads(threads), DAFL_OK);
            for (environment e = ENV_DEFAULT; e < ENV_COUNT; e++) {
                if (!enter_environment(e)) {
                    leave_environment();
                    printf("SKIPPED %s: this CPU cannot set the environment '%s'\n",
                           dafl_isa_name(test_all_isas[i]), env_names[e]);
                    continue;
                }
                /* A flag the caller had raised before must still be raised after. */
                feraiseexcept(FE_INEXACT);
                unsigned control = control_register();
                int round = fegetround(), traps = fegetexcept();
                dafl_status st;
                uint64_t h = run_all_losses_status(&st);
                uint64_t t = target_digest();
                unsigned control_after = control_register();
                int round_after = fegetround(), traps_after = fegetexcept();
                int inexact_after = fetestexcept(FE_ALL_EXCEPT);
                leave_environment();
                TEST_REQUIRE(st == DAFL_OK, "%s", dafl_status_string(st));
                TEST_REQUIRE(h == reference && t == targets,
                             "%s, %d threads, %s: the bits differ from the default "
                             "environment's", dafl_isa_name(test_all_isas[i]), threads,
                             env_names[e]);
                TEST_REQUIRE(control_after == control && round_after == round &&
                                 traps_after == traps && inexact_after == FE_INEXACT,
                             "%s: the caller's environment was not restored (control "
                             "%#x -> %#x, flags %#x)", env_names[e], control, control_after,
                             inexact_after);
                compared++;
            }
        }
    }
    printf("%d (ISA, threads, environment) runs: the default environment's bits\n",
           compared);
    ck_assert_int_gt(compared, 0);
    dafl_set_isa(initial);
    dafl_set_threads(0);
    free_data();
}
END_TEST

/* The pool's workers are created by the first large call, inheriting that thread's
 * environment: a first call in FE_UPWARD must not leave them rounding upward for the
 * later calls.  In a fresh child process, so that the pool does not exist yet. */
START_TEST(workers_started_in_another_environment)
{
    make_data();
    ck_assert_int_eq(dafl_set_threads(1), DAFL_OK);
    uint64_t reference = run_all_losses();
    fflush(stdout);
    pid_t child = fork();
    ck_assert_int_ge(child, 0);
    if (child == 0) {
        alarm(120);
        dafl_stop_threads(); /* no pool inherited from this test process */
        dafl_set_threads(2);
        fesetround(FE_UPWARD);
        set_flush_to_zero(1);
        dafl_status st;
        uint64_t first = run_all_losses_status(&st); /* creates the workers */
        leave_environment();
        uint64_t later = run_all_losses_status(&st);
        _exit(first == reference && later == reference && st == DAFL_OK ? 0 : 1);
    }
    int status = 0;
    ck_assert_int_eq(waitpid(child, &status, 0), child);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "2 threads after a first call in FE_UPWARD differ from 1 thread");
    dafl_set_threads(0);
    free_data();
}
END_TEST

/* Inputs whose results are well defined but whose evaluation overflows or divides by
 * zero on the way (softmax logits of 1e30, +inf and -FLT_MAX; sigmoid focal at -FLT_MAX;
 * every loss at +-inf and NaN) with every exception unmasked: no SIGFPE, and the bits of
 * the default environment. */
static void special_value_calls(float *out, size_t *n)
{
    static const float xs[] = {1e30f, INFINITY, -FLT_MAX, -INFINITY, FLT_MAX, 0.0f,
                               -0.0f, 1e-45f, -1e30f, NAN, 88.7f, -103.9f, 3.0f, -3.0f,
                               FLT_MIN, -FLT_MIN};
    enum { N = sizeof xs / sizeof xs[0] };
    static const float ys[N] = {1, 0, 1, 0, 0.5f, 1, 0, 1e-30f, 1, 0, 0, 1, 0.25f, 1,
                                0.999f, 1e-38f};
    int32_t labels[N / 4] = {0, 1, 2, 3};
    float grad_out[N], loss;
    size_t k = 0;
#define RECORD(v) (out[k++] = (v))
    dafl_penalty_focal_params pf;
    dafl_penalty_focal_params_init(&pf);
    /* probabilities for the probabilities mode, fixed here: only dafl's own arithmetic
     * may run while the traps are on (a comparison with NaN in this file would trap) */
    static const float probs[N] = {1e-39f, 1e-39f, 1e-39f, 1e-39f, 1e-39f, 0.0f, 0.0f, 1e-45f,
                                   1e-39f, NAN, 1e-39f, 1e-39f, 1e-39f, 1e-39f, FLT_MIN,
                                   FLT_MIN};
    for (int mode = 0; mode < 3; mode++) {
        pf.input_mode = (dafl_input_mode)mode;
        const float *in = mode == DAFL_INPUT_PROBABILITIES ? probs : xs;
        RECORD((float)dafl_penalty_focal(in, ys, N, &pf, &loss, grad_out, NULL));
        RECORD(loss);
        for (int i = 0; i < N; i++)
            RECORD(grad_out[i]);
    }
    dafl_sigmoid_focal_params sf;
    dafl_sigmoid_focal_params_init(&sf);
    sf.reduction = DAFL_REDUCTION_SUM; /* the default, NONE, writes N losses */
    const float gammas[] = {0.0f, 2.0f, 2.5f, 1.7f};
    for (int g = 0; g < 4; g++) {
        sf.gamma = gammas[g];
        RECORD((float)dafl_sigmoid_focal(xs, ys, N, &sf, &loss, grad_out, NULL));
        RECORD(loss);
        for (int i = 0; i < N; i++)
            RECORD(grad_out[i]);
    }
    RECORD((float)dafl_bce_with_logits(xs, ys, N, NULL, &loss, grad_out, NULL));
    RECORD(loss);
    for (int i = 0; i < N; i++)
        RECORD(grad_out[i]);
    RECORD((float)dafl_mse(xs, ys, 1, 1, N, NULL, &loss, grad_out, NULL));
    RECORD(loss);
    for (int i = 0; i < N; i++)
        RECORD(grad_out[i]);
    dafl_softmax_focal_params smf;
    dafl_softmax_focal_params_init(&smf);
    for (int g = 0; g < 2; g++) {
        smf.gamma = g ? 2.0f : 0.0f;
        /* 4 pixels of 4 classes, NCHW with n = 1, hw = 4 */
        RECORD((float)dafl_softmax_focal(xs, labels, 1, 4, 4, &smf, &loss, grad_out, NULL));
        RECORD(loss);
        for (int i = 0; i < N; i++)
            RECORD(grad_out[i]);
    }
#undef RECORD
    *n = k;
}

START_TEST(no_sigfpe_with_exceptions_unmasked)
{
    enum { MAX = 1024 };
    float plain[MAX], trapped[MAX];
    size_t n_plain = 0, n_trapped = 0;
    dafl_isa initial = dafl_active_isa();
    int ran = 0;
    for (int i = 0; i < TEST_ISA_COUNT; i++) {
        if (!test_use_isa(test_all_isas[i], "unmasked exceptions"))
            continue;
        special_value_calls(plain, &n_plain);
        if (!enter_environment(ENV_EVERYTHING)) {
            leave_environment();
            printf("SKIPPED %s: this CPU cannot trap floating-point exceptions\n",
                   dafl_isa_name(test_all_isas[i]));
            continue;
        }
        special_value_calls(trapped, &n_trapped); /* a SIGFPE here fails the test */
        leave_environment();
        ck_assert_uint_eq(n_plain, n_trapped);
        for (size_t k = 0; k < n_plain; k++)
            TEST_REQUIRE(test_same_bits(plain[k], trapped[k]),
                         "%s: value %zu differs under traps: %a vs %a",
                         dafl_isa_name(test_all_isas[i]), k, (double)plain[k],
                         (double)trapped[k]);
        ran++;
    }
    printf("%d ISAs: no SIGFPE with exceptions unmasked, %zu values identical\n", ran,
           n_plain);
    dafl_set_isa(initial);
}
END_TEST

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    Suite *s = suite_create("fpenv");
    TCase *tc = tcase_create("fpenv");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, same_bits_in_every_environment);
    tcase_add_test(tc, workers_started_in_another_environment);
    tcase_add_test(tc, no_sigfpe_with_exceptions_unmasked);
    suite_add_tcase(s, tc);
    return test_run_suite(s);
}
