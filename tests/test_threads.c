/*
 * Threads: results bit-identical for every thread count (1..64, more than this machine's
 * cores included) and for a host's own parallel-for that splits the work oddly; shards
 * combined exactly; concurrent calls from many host threads; dispatch initialised under
 * contention.
 */
#include <pthread.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test_common.h"

/* 100 blocks and a partial one: well above DAFL_MIN_PARALLEL_ELEMENTS. */
#define COUNT (100 * DAFL_BLOCK_ELEMENTS + 77)

static float *x, *y, *grad, *per_element;
static int32_t *labels;

static void make_data(void)
{
    x = malloc(COUNT * 4 * sizeof(float));
    y = malloc(COUNT * sizeof(float));
    grad = malloc(COUNT * 4 * sizeof(float));
    per_element = malloc(COUNT * sizeof(float));
    labels = malloc(COUNT * sizeof(int32_t));
    ck_assert(x && y && grad && per_element && labels);
    uint64_t seed = 42;
    for (size_t i = 0; i < COUNT * 4; i++)
        x[i] = test_uniform(&seed, -15, 15);
    for (size_t i = 0; i < COUNT; i++) {
        uint64_t r = test_rand64(&seed);
        y[i] = r % 53 == 0 ? 1.0f : test_uniform(&seed, 0, 1);
        labels[i] = r % 17 == 0 ? -100 : (int32_t)(r % 4);
    }
}

static void free_data(void)
{
    free(x);
    free(y);
    free(grad);
    free(per_element);
    free(labels);
}

/* Everything one call produces, hashed: loss, statistics, gradient, per-element loss. */
static uint64_t run_all_losses(void)
{
    uint64_t h = TEST_HASH_SEED;
    float loss;
    dafl_stats st;
    double sums[5];

    dafl_penalty_focal_params pf;
    dafl_penalty_focal_params_init(&pf);
    ck_assert_int_eq(dafl_penalty_focal(x, y, COUNT, &pf, &loss, grad, &st), DAFL_OK);
    h = test_hash_floats(test_hash_floats(h, &loss, 1), grad, COUNT);
    sums[0] = dafl_stats_loss_sum(&st);

    dafl_sigmoid_focal_params sf;
    dafl_sigmoid_focal_params_init(&sf);
    sf.gamma = 2.5f;
    ck_assert_int_eq(dafl_sigmoid_focal(x, y, COUNT, &sf, per_element, grad, &st), DAFL_OK);
    h = test_hash_floats(test_hash_floats(h, per_element, COUNT), grad, COUNT);
    sums[1] = dafl_stats_loss_sum(&st);

    ck_assert_int_eq(dafl_bce_with_logits(x, y, COUNT, NULL, &loss, grad, &st), DAFL_OK);
    h = test_hash_floats(test_hash_floats(h, &loss, 1), grad, COUNT);
    sums[2] = dafl_stats_loss_sum(&st);

    ck_assert_int_eq(dafl_mse(x, y, 1, 1, COUNT, NULL, &loss, grad, &st), DAFL_OK);
    h = test_hash_floats(test_hash_floats(h, &loss, 1), grad, COUNT);
    sums[3] = dafl_stats_loss_sum(&st);

    ck_assert_int_eq(dafl_softmax_focal(x, labels, 1, 4, COUNT, NULL, &loss, grad, &st),
                     DAFL_OK);
    h = test_hash_floats(test_hash_floats(h, &loss, 1), grad, COUNT * 4);
    sums[4] = dafl_stats_loss_sum(&st);
    for (int i = 0; i < 5; i++) {
        float f = (float)sums[i], r = (float)(sums[i] - (double)f); /* all 53 bits */
        h = test_hash_floats(test_hash_floats(h, &f, 1), &r, 1);
    }
    return h;
}

START_TEST(any_thread_count_same_bits)
{
    make_data();
    ck_assert_int_eq(dafl_set_threads(1), DAFL_OK);
    uint64_t single = run_all_losses();
    const int counts[] = {2, 3, 4, 7, 13, 31, 64};
    for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++) {
        ck_assert_int_eq(dafl_set_threads(counts[i]), DAFL_OK);
        ck_assert_int_eq(dafl_threads(), counts[i]);
        uint64_t h = run_all_losses();
        ck_assert_msg(h == single, "%d threads differ from one thread", counts[i]);
    }
    printf("threads 1..64: identical digest %016llx\n", (unsigned long long)single);
    ck_assert_int_eq(dafl_set_threads(0), DAFL_OK);
    ck_assert_int_ge(dafl_threads(), 1);
    ck_assert_int_eq(dafl_set_threads(-1), DAFL_ERR_INVALID_PARAMETER);
    ck_assert_int_eq(dafl_set_threads(DAFL_MAX_THREADS + 1), DAFL_ERR_INVALID_PARAMETER);
    free_data();
}
END_TEST

/* A host parallel-for that splits the range into uneven pieces, runs them on its own
 * threads in reverse order, and counts what it was given. */
typedef struct odd_host {
    size_t calls;
} odd_host;

typedef struct piece {
    dafl_range_fn fn;
    void *ctx;
    size_t begin, end;
} piece;

static void *run_piece(void *arg)
{
    piece *p = arg;
    p->fn(p->ctx, p->begin, p->end);
    return NULL;
}

static void odd_parallel_for(void *host_ctx, size_t count, dafl_range_fn fn, void *range_ctx)
{
    odd_host *host = host_ctx;
    host->calls++;
    enum { PIECES = 5 };
    piece pieces[PIECES];
    pthread_t threads[PIECES];
    size_t bounds[PIECES + 1] = {0, count / 7, count / 7 + 1, count / 2, count - 1, count};
    for (int i = PIECES - 1; i >= 0; i--) {
        pieces[i] = (piece){fn, range_ctx, bounds[i], bounds[i + 1]};
        ck_assert_int_eq(pthread_create(&threads[i], NULL, run_piece, &pieces[i]), 0);
    }
    for (int i = 0; i < PIECES; i++)
        pthread_join(threads[i], NULL);
}

START_TEST(host_parallel_for_same_bits)
{
    make_data();
    ck_assert_int_eq(dafl_set_threads(1), DAFL_OK);
    uint64_t single = run_all_losses();
    odd_host host = {0};
    ck_assert_int_eq(dafl_set_threads(4), DAFL_OK);
    ck_assert_int_eq(dafl_set_parallel_for(odd_parallel_for, &host), DAFL_OK);
    uint64_t h = run_all_losses();
    ck_assert_int_eq(dafl_set_parallel_for(NULL, NULL), DAFL_OK);
    ck_assert_msg(host.calls == 5, "the host ran %zu calls, expected 5", host.calls);
    ck_assert(h == single);
    dafl_set_threads(0);
    free_data();
}
END_TEST

/* The distance transform split over threads (and over the host's odd parallel-for). */
START_TEST(distance_targets_any_thread_count)
{
    enum { H = 700, W = 513 };
    uint8_t *mask = malloc(H * W);
    float *one = malloc(H * W * sizeof(float)), *many = malloc(H * W * sizeof(float));
    ck_assert(mask && one && many);
    uint64_t seed = 3;
    for (int i = 0; i < H * W; i++)
        mask[i] = test_rand64(&seed) % 5000 == 0;
    dafl_set_threads(1);
    ck_assert_int_eq(dafl_distance_targets(mask, H, W, 6.0, one), DAFL_OK);
    const int counts[] = {2, 3, 8, 64};
    for (int i = 0; i < 4; i++) {
        dafl_set_threads(counts[i]);
        memset(many, 0xff, H * W * sizeof(float));
        ck_assert_int_eq(dafl_distance_targets(mask, H, W, 6.0, many), DAFL_OK);
        ck_assert(memcmp(one, many, H * W * sizeof(float)) == 0);
    }
    odd_host host = {0};
    dafl_set_parallel_for(odd_parallel_for, &host);
    ck_assert_int_eq(dafl_distance_targets(mask, H, W, 6.0, many), DAFL_OK);
    dafl_set_parallel_for(NULL, NULL);
    ck_assert(host.calls == 2 && memcmp(one, many, H * W * sizeof(float)) == 0);
    dafl_set_threads(0);
    free(mask);
    free(one);
    free(many);
}
END_TEST

/* Shards: along N (whole images), along C (one call per image and channel range) and
 * along the flat index at block multiples, combined in scrambled order. */
START_TEST(shards_along_n_c_and_flat)
{
    enum { N = 4, C = 6, HW = 64 * 64, IMAGE = C * HW, TOTAL = N * IMAGE };
    float *xs = malloc(TOTAL * sizeof(float)), *ys = malloc(TOTAL * sizeof(float));
    ck_assert(xs && ys);
    uint64_t seed = 8;
    for (int i = 0; i < TOTAL; i++) {
        xs[i] = test_uniform(&seed, -9, 9);
        ys[i] = i % 211 == 0 ? 1.0f : test_uniform(&seed, 0, 1);
    }
    dafl_penalty_focal_params p;
    dafl_penalty_focal_params_init(&p);
    float whole;
    ck_assert_int_eq(dafl_penalty_focal(xs, ys, TOTAL, &p, &whole, NULL, NULL), DAFL_OK);

    for (int split = 0; split < 3; split++) {
        dafl_stats all;
        dafl_stats_init(&all);
        /* shard = (offset, length) pairs */
        size_t offsets[64], lengths[64], n = 0;
        if (split == 0) {
            for (int i = N - 1; i >= 0; i--) {
                offsets[n] = (size_t)i * IMAGE;
                lengths[n++] = IMAGE;
            }
        } else if (split == 1) {
            for (int img = 0; img < N; img++)
                for (int c0 = 0; c0 < C; c0 += 4) {
                    int c1 = c0 + 4 < C ? c0 + 4 : C;
                    offsets[n] = (size_t)img * IMAGE + (size_t)c0 * HW;
                    lengths[n++] = (size_t)(c1 - c0) * HW;
                }
        } else {
            size_t at = 0, step = 3 * DAFL_BLOCK_ELEMENTS;
            while (at < TOTAL) {
                offsets[n] = at;
                lengths[n++] = TOTAL - at < step ? TOTAL - at : step;
                at += step;
                step = step == 3 * DAFL_BLOCK_ELEMENTS ? 7 * DAFL_BLOCK_ELEMENTS
                                                       : 3 * DAFL_BLOCK_ELEMENTS;
            }
        }
        for (size_t k = 0; k < n; k++) {
            dafl_stats shard;
            ck_assert_int_eq(dafl_penalty_focal(xs + offsets[k], ys + offsets[k], lengths[k],
                                                &p, NULL, NULL, &shard),
                             DAFL_OK);
            ck_assert_int_eq(dafl_stats_combine(&all, &shard), DAFL_OK);
        }
        float combined;
        ck_assert_int_eq(dafl_stats_reduce(&all, DAFL_REDUCTION_POSITIVES, 1, &combined),
                         DAFL_OK);
        ck_assert_msg(test_same_bits(combined, whole), "split %d: %a vs %a", split,
                      (double)combined, (double)whole);
    }
    free(xs);
    free(ys);
}
END_TEST

/* Many host threads calling at once on their own data (with the pool enabled, so some
 * calls get it and the others run on their own thread). */
typedef struct caller {
    int id;
    uint64_t digest;
} caller;

static void *call_repeatedly(void *arg)
{
    caller *c = arg;
    enum { LEN = 60000 };
    float *cx = malloc(LEN * sizeof(float)), *cy = malloc(LEN * sizeof(float));
    float *cg = malloc(LEN * sizeof(float));
    uint64_t seed = 1000 + (uint64_t)c->id;
    for (int i = 0; i < LEN; i++) {
        cx[i] = test_uniform(&seed, -10, 10);
        cy[i] = i % 37 == 0 ? 1.0f : test_uniform(&seed, 0, 1);
    }
    uint64_t first = 0;
    for (int rep = 0; rep < 8; rep++) {
        float loss = 0;
        dafl_penalty_focal(cx, cy, LEN, NULL, &loss, cg, NULL);
        uint64_t h = test_hash_floats(test_hash_floats(TEST_HASH_SEED, &loss, 1), cg, LEN);
        if (rep == 0)
            first = h;
        else if (h != first)
            first = 0; /* reported below */
    }
    c->digest = first;
    free(cx);
    free(cy);
    free(cg);
    return NULL;
}

START_TEST(concurrent_callers)
{
    enum { CALLERS = 8 };
    dafl_set_threads(2);
    pthread_t threads[CALLERS];
    caller callers[CALLERS];
    for (int i = 0; i < CALLERS; i++) {
        callers[i] = (caller){i, 0};
        ck_assert_int_eq(pthread_create(&threads[i], NULL, call_repeatedly, &callers[i]), 0);
    }
    for (int i = 0; i < CALLERS; i++)
        pthread_join(threads[i], NULL);
    /* the same work on one thread, sequentially */
    dafl_set_threads(1);
    for (int i = 0; i < CALLERS; i++) {
        caller alone = {i, 0};
        call_repeatedly(&alone);
        ck_assert(alone.digest != 0);
        ck_assert_msg(callers[i].digest == alone.digest, "caller %d differs", i);
    }
    dafl_set_threads(0);
}
END_TEST

/* The first calls of a fresh process race to initialise dispatch (in a child process, so
 * that nothing has initialised it yet). */
static void *first_call(void *arg)
{
    int *isa = arg;
    float xv[40], yv[40], g[40], loss;
    for (int i = 0; i < 40; i++) {
        xv[i] = (float)i - 20.0f;
        yv[i] = i == 3 ? 1.0f : 0.25f;
    }
    dafl_penalty_focal(xv, yv, 40, NULL, &loss, g, NULL);
    *isa = (int)dafl_active_isa();
    return NULL;
}

START_TEST(dispatch_initialised_under_contention)
{
    pid_t child = fork();
    ck_assert_int_ge(child, 0);
    if (child == 0) {
        enum { RACERS = 16 };
        pthread_t threads[RACERS];
        int isa[RACERS];
        for (int i = 0; i < RACERS; i++)
            if (pthread_create(&threads[i], NULL, first_call, &isa[i]) != 0)
                _exit(2);
        for (int i = 0; i < RACERS; i++)
            pthread_join(threads[i], NULL);
        for (int i = 1; i < RACERS; i++)
            if (isa[i] != isa[0] || isa[0] == DAFL_ISA_AUTO)
                _exit(1);
        _exit(0);
    }
    int status = 0;
    ck_assert_int_eq(waitpid(child, &status, 0), child);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}
END_TEST

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    Suite *s = suite_create("threads");
    TCase *tc = tcase_create("threads");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, any_thread_count_same_bits);
    tcase_add_test(tc, host_parallel_for_same_bits);
    tcase_add_test(tc, distance_targets_any_thread_count);
    tcase_add_test(tc, shards_along_n_c_and_flat);
    tcase_add_test(tc, concurrent_callers);
    tcase_add_test(tc, dispatch_initialised_under_contention);
    suite_add_tcase(s, tc);
    return test_run_suite(s);
}
