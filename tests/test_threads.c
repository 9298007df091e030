/*
 * Threads: results bit-identical for every thread count (1..64, more than this machine's
 * cores included) and for a host's own parallel-for that splits the work oddly; shards
 * combined exactly; concurrent calls from many host threads; dispatch initialised under
 * contention.
 */
#define _GNU_SOURCE /* usleep */
#include <dirent.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test_workload.h"

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
    atomic_size_t calls; /* several callers may share one host */
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
    ck_assert_msg(host.calls == 5, "the host ran %zu calls, expected 5",
                  atomic_load(&host.calls));
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


/* ---- fork, settings that change under running calls, idle workers, broken hosts ---- */

/* Runs fn in a child process that must exit 0 within `seconds` (a hang is a failure,
 * not a stuck test run). */
static void in_child_within(int seconds, int (*fn)(void *), void *arg, const char *what)
{
    fflush(stdout);
    pid_t child = fork();
    ck_assert_int_ge(child, 0);
    if (child == 0) {
        alarm((unsigned)seconds);
        _exit(fn(arg));
    }
    int status = 0;
    ck_assert_int_eq(waitpid(child, &status, 0), child);
    ck_assert_msg(!WIFSIGNALED(status) || WTERMSIG(status) != SIGALRM,
                  "%s: the child hung (killed after %d s)", what, seconds);
    ck_assert_msg(WIFEXITED(status), "%s: the child died of signal %d", what,
                  WIFSIGNALED(status) ? WTERMSIG(status) : -1);
    ck_assert_msg(WEXITSTATUS(status) == 0, "%s: the child failed (%d)", what,
                  WEXITSTATUS(status));
}

enum { DIST_H = 256, DIST_W = 256 };

static uint64_t distance_digest(void)
{
    static uint8_t mask[DIST_H * DIST_W];
    static float out[DIST_H * DIST_W];
    for (int i = 0; i < DIST_H * DIST_W; i++)
        mask[i] = i % 997 == 0;
    if (dafl_distance_targets(mask, DIST_H, DIST_W, 4.0, out) != DAFL_OK)
        return 0;
    return test_hash_floats(TEST_HASH_SEED, out, DIST_H * DIST_W);
}

typedef struct expected_digests {
    uint64_t losses, distances;
    int threads;
} expected_digests;

/* In the child: the same calls, on the same thread count, must give the same bits. */
static int child_repeats_calls(void *arg)
{
    const expected_digests *e = arg;
    if (dafl_set_threads(e->threads) != DAFL_OK)
        return 2;
    dafl_status st;
    if (run_all_losses_status(&st) != e->losses || st != DAFL_OK)
        return 3;
    if (distance_digest() != e->distances)
        return 4;
    /* and a child of the child */
    pid_t grandchild = fork();
    if (grandchild == 0)
        _exit(run_all_losses_status(&st) == e->losses && st == DAFL_OK ? 0 : 5);
    int status = 0;
    if (grandchild < 0 || waitpid(grandchild, &status, 0) != grandchild ||
        !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return 6;
    return 0;
}

/* qemu-user (7.2) cannot fork a guest that has threads: the emulator itself aborts in the
 * child ("qemu_plugin_vcpu_init_hook: assertion failed").  .ci/run sets
 * DAFL_TEST_QEMU_USER=1 for its emulated runs; the native run tests fork. */
static int fork_with_threads_unsupported(void)
{
    const char *q = getenv("DAFL_TEST_QEMU_USER");
    if (q && *q && *q != '0') {
        printf("SKIPPED fork with threads: qemu-user cannot fork a threaded guest (tested "
               "natively)\n");
        return 1;
    }
    return 0;
}

START_TEST(fork_after_the_pool_started)
{
    if (fork_with_threads_unsupported())
        return;
    make_data();
    ck_assert_int_eq(dafl_set_threads(1), DAFL_OK);
    expected_digests e = {run_all_losses(), distance_digest(), 4};
    ck_assert_int_eq(dafl_set_threads(4), DAFL_OK);
    ck_assert(run_all_losses() == e.losses); /* starts the pool */
    in_child_within(300, child_repeats_calls, &e, "fork after a pooled call");
    ck_assert(run_all_losses() == e.losses); /* the parent's pool still works */
    dafl_set_threads(0);
    free_data();
}
END_TEST

/* fork() while another thread is in the middle of a pooled call. */
typedef struct busy_caller {
    atomic_int stop;
    uint64_t expected;
    atomic_int mismatches, calls;
} busy_caller;

static void *call_until_stopped(void *arg)
{
    busy_caller *b = arg;
    float *g = malloc(COUNT * 4 * sizeof(float)), *pe = malloc(COUNT * sizeof(float));
    while (g && pe && !atomic_load(&b->stop)) {
        dafl_status st;
        if (run_all_losses_into(g, pe, &st) != b->expected || st != DAFL_OK)
            atomic_fetch_add(&b->mismatches, 1);
        atomic_fetch_add(&b->calls, 1);
    }
    if (!g || !pe)
        atomic_fetch_add(&b->mismatches, 1);
    free(g);
    free(pe);
    return NULL;
}

START_TEST(fork_while_a_call_runs)
{
    if (fork_with_threads_unsupported())
        return;
    make_data();
    ck_assert_int_eq(dafl_set_threads(1), DAFL_OK);
    expected_digests e = {run_all_losses(), distance_digest(), 3};
    ck_assert_int_eq(dafl_set_threads(3), DAFL_OK);
    busy_caller b = {.expected = e.losses};
    pthread_t thread;
    ck_assert_int_eq(pthread_create(&thread, NULL, call_until_stopped, &b), 0);
    for (int i = 0; i < 6; i++) {
        while (atomic_load(&b.calls) <= i)
            sched_yield();
        in_child_within(300, child_repeats_calls, &e, "fork during a pooled call");
    }
    atomic_store(&b.stop, 1);
    pthread_join(thread, NULL);
    ck_assert_int_eq(atomic_load(&b.mismatches), 0);
    dafl_set_threads(0);
    free_data();
}
END_TEST

/* Settings changed by one thread between and during the calls of others: thread counts,
 * ISAs and the host parallel-for.  Every call must still give the reference bits; under
 * ThreadSanitizer (tests/sanitize.sh tsan) the pool must show no race. */
static void ordered_parallel_for(void *host_ctx, size_t count, dafl_range_fn fn,
                                 void *range_ctx)
{
    (void)host_ctx;
    for (size_t b = 0; b < count; b += 3)
        fn(range_ctx, b, b + 3 < count ? b + 3 : count);
}

typedef struct mutator {
    atomic_int stop;
    atomic_int changes;
} mutator;

static void *change_settings(void *arg)
{
    mutator *m = arg;
    uint64_t seed = 99;
    odd_host host = {0};
    while (!atomic_load(&m->stop)) {
        uint64_t r = test_rand64(&seed);
        switch (r % 4) {
        case 0:
            dafl_set_threads(1 + (int)(r >> 8) % 24);
            break;
        case 1: {
            dafl_isa isa = test_all_isas[(r >> 8) % TEST_ISA_COUNT];
            if (dafl_isa_available(isa))
                dafl_set_isa(isa);
            break;
        }
        case 2:
            dafl_set_parallel_for((r >> 8) % 3 == 0 ? ordered_parallel_for
                                  : (r >> 8) % 3 == 1 ? odd_parallel_for
                                                      : NULL,
                                  &host);
            break;
        default:
            dafl_set_threads((r >> 8) % 2 ? 2 : 64);
        }
        atomic_fetch_add(&m->changes, 1);
        usleep(200);
    }
    return NULL;
}

START_TEST(settings_change_between_and_during_calls)
{
    make_data();
    dafl_isa isa = dafl_active_isa();
    ck_assert_int_eq(dafl_set_threads(1), DAFL_OK);
    uint64_t reference = run_all_losses();
    busy_caller b = {.expected = reference};
    mutator m = {0};
    pthread_t callers[2], changer;
    ck_assert_int_eq(pthread_create(&changer, NULL, change_settings, &m), 0);
    for (int i = 0; i < 2; i++)
        ck_assert_int_eq(pthread_create(&callers[i], NULL, call_until_stopped, &b), 0);
    while (atomic_load(&b.calls) < 40)
        usleep(1000);
    atomic_store(&b.stop, 1);
    for (int i = 0; i < 2; i++)
        pthread_join(callers[i], NULL);
    atomic_store(&m.stop, 1);
    pthread_join(changer, NULL);
    printf("%d calls under %d setting changes: %d differ\n", atomic_load(&b.calls),
           atomic_load(&m.changes), atomic_load(&b.mismatches));
    ck_assert_int_eq(atomic_load(&b.mismatches), 0);
    dafl_set_parallel_for(NULL, NULL);
    dafl_set_isa(isa);
    dafl_set_threads(0);
    free_data();
}
END_TEST

/* dafl's pool threads in this process (named "dafl-worker"), and how many of them are
 * running or runnable (state R in /proc) right now. */
static int dafl_workers(int *running)
{
    DIR *d = opendir("/proc/self/task");
    if (!d)
        return -1;
    int workers = 0, r = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char path[300], buf[512];
        snprintf(path, sizeof path, "/proc/self/task/%s/stat", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[n] = '\0';
        /* "tid (comm) S ..." */
        const char *open = strchr(buf, '('), *close = strrchr(buf, ')');
        if (!open || !close || strncmp(open, "(dafl-worker)", 13) != 0)
            continue;
        workers++;
        r += close[1] == ' ' && close[2] == 'R';
    }
    closedir(d);
    if (running)
        *running = r;
    return workers;
}

typedef struct sampler {
    atomic_int done;
    long samples, running;
} sampler;

/* The dafl workers once their count has settled at `want` (or after 2 s): a joined thread
 * can still be listed for a moment (the kernel reaps it after pthread_join returns, and
 * qemu-user's host thread outlives the guest's), and a new one names itself when it
 * starts. */
static int dafl_workers_settled(int want)
{
    int n = dafl_workers(NULL);
    for (int i = 0; i < 2000 && n != want; i++) {
        usleep(1000);
        n = dafl_workers(NULL);
    }
    return n;
}

static void *sample_states(void *arg)
{
    sampler *s = arg;
    for (int i = 0; i < 300; i++) {
        usleep(1000);
        int r = 0;
        dafl_workers(&r);
        s->running += r;
        s->samples++;
    }
    atomic_store(&s->done, 1);
    return NULL;
}

/* After one call on 64 threads, calls on 2 threads must leave the other 62 workers
 * asleep: a call's cost depends on the threads it uses.  Measured as the number of dafl
 * workers in state R while a loop of 2-thread calls runs (sampled every millisecond:
 * with every worker woken on every call, several; with only the one helper, at most 1). */
START_TEST(idle_workers_sleep)
{
    enum { LEN = 40000 };
    float *cx = malloc(LEN * sizeof(float)), *cy = malloc(LEN * sizeof(float));
    float *cg = malloc(LEN * sizeof(float));
    ck_assert(cx && cy && cg);
    uint64_t seed = 5;
    for (int i = 0; i < LEN; i++) {
        cx[i] = test_uniform(&seed, -8, 8);
        cy[i] = i % 41 == 0 ? 1.0f : test_uniform(&seed, 0, 1);
    }
    float loss;
    dafl_stop_threads();
    ck_assert_int_eq(dafl_workers_settled(0), 0);
    ck_assert_int_eq(dafl_set_threads(64), DAFL_OK);
    ck_assert_int_eq(dafl_penalty_focal(cx, cy, LEN, NULL, &loss, cg, NULL), DAFL_OK);
    ck_assert_int_eq(dafl_workers_settled(63), 63);
    ck_assert_int_eq(dafl_set_threads(2), DAFL_OK);
    sampler s = {0};
    pthread_t thread;
    ck_assert_int_eq(pthread_create(&thread, NULL, sample_states, &s), 0);
    long calls = 0;
    while (!atomic_load(&s.done)) {
        ck_assert_int_eq(dafl_penalty_focal(cx, cy, LEN, NULL, &loss, cg, NULL), DAFL_OK);
        calls++;
    }
    pthread_join(thread, NULL);
    double mean = (double)s.running / (double)s.samples;
    printf("2-thread calls after a 64-thread call: %ld calls, %.2f of the 63 workers "
           "running on average\n", calls, mean);
    ck_assert_msg(mean < 1.5, "%.2f workers running besides the one helper", mean);

    /* dafl_stop_threads() joins every worker; the next call starts the pool again. */
    dafl_stop_threads();
    ck_assert_int_eq(dafl_workers_settled(0), 0);
    ck_assert_int_eq(dafl_penalty_focal(cx, cy, LEN, NULL, &loss, cg, NULL), DAFL_OK);
    ck_assert_int_eq(dafl_workers_settled(1), 1);
    dafl_stop_threads();
    dafl_set_threads(0);
    free(cx);
    free(cy);
    free(cg);
}
END_TEST

/* Hosts that break the contract of dafl_parallel_for_fn, each in its own way. */
typedef enum host_fault {
    HOST_TWICE,        /* runs [0, count) twice                     */
    HOST_OVERLAP,      /* two ranges that share items               */
    HOST_FIRST_HALF,   /* runs only [0, count/2)                    */
    HOST_NOTHING,      /* calls fn never                            */
    HOST_PAST_END,     /* [0, count + 5): beyond the items          */
    HOST_REVERSED,     /* a range with begin > end, then the rest   */
    HOST_FAULTS
} host_fault;

static void broken_parallel_for(void *host_ctx, size_t count, dafl_range_fn fn,
                                void *range_ctx)
{
    switch (*(const host_fault *)host_ctx) {
    case HOST_TWICE:
        fn(range_ctx, 0, count);
        fn(range_ctx, 0, count);
        break;
    case HOST_OVERLAP:
        fn(range_ctx, 0, count / 2 + 1);
        fn(range_ctx, count / 3, count);
        break;
    case HOST_FIRST_HALF:
        fn(range_ctx, 0, count / 2);
        break;
    case HOST_NOTHING:
        break;
    case HOST_PAST_END:
        fn(range_ctx, 0, count + 5);
        break;
    case HOST_REVERSED:
        fn(range_ctx, count, 0);
        fn(range_ctx, 0, count);
        break;
    default:
        break;
    }
}

START_TEST(broken_host_split_detected)
{
    make_data();
    ck_assert_int_eq(dafl_set_threads(1), DAFL_OK);
    uint64_t single = run_all_losses();
    uint64_t distances = distance_digest();
    ck_assert_int_eq(dafl_set_threads(4), DAFL_OK);
    for (host_fault f = 0; f < HOST_FAULTS; f++) {
        ck_assert_int_eq(dafl_set_parallel_for(broken_parallel_for, &f), DAFL_OK);
        dafl_status st;
        uint64_t h = run_all_losses_status(&st);
        ck_assert_msg(st == DAFL_ERR_PARALLEL_FOR, "fault %d: %s", (int)f,
                      dafl_status_string(st));
        ck_assert_msg(h == single, "fault %d: the outputs are not the complete result",
                      (int)f);
        static uint8_t mask[DIST_H * DIST_W];
        static float out[DIST_H * DIST_W];
        for (int i = 0; i < DIST_H * DIST_W; i++)
            mask[i] = i % 997 == 0;
        ck_assert_int_eq(dafl_distance_targets(mask, DIST_H, DIST_W, 4.0, out),
                         DAFL_ERR_PARALLEL_FOR);
        ck_assert(test_hash_floats(TEST_HASH_SEED, out, DIST_H * DIST_W) == distances);
    }
    ck_assert_int_eq(dafl_set_parallel_for(NULL, NULL), DAFL_OK);
    ck_assert(run_all_losses() == single);
    dafl_set_threads(0);
    free_data();
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
    tcase_add_test(tc, fork_after_the_pool_started);
    tcase_add_test(tc, fork_while_a_call_runs);
    tcase_add_test(tc, settings_change_between_and_during_calls);
    tcase_add_test(tc, idle_workers_sleep);
    tcase_add_test(tc, broken_host_split_detected);
    suite_add_tcase(s, tc);
    return test_run_suite(s);
}
