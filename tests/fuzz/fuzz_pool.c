/*
 * libFuzzer harness: calls large enough to be split (above DAFL_MIN_PARALLEL_ELEMENTS),
 * on a random thread count, through dafl's pool or through a host parallel-for whose
 * split the input describes - valid (any partition, any order, on up to three threads)
 * or broken (a range dropped, repeated, overlapping, reversed or past the end).
 *
 * Checks: a valid split gives DAFL_OK, a broken one DAFL_ERR_PARALLEL_FOR; either way
 * the outputs are the bits of the same call on one thread with no host; nothing is
 * accessed outside the buffers (AddressSanitizer).
 *
 * Bytes: [threads] [loss] [size: 2] [host mode] [fault] [pieces] [piece sizes...]
 * [payload].
 */
#include <pthread.h>

#include "fuzz_common.h"

enum { MAX_PIECES = 24 };

typedef struct split {
    int fault; /* 0: a valid split */
    int pieces, threads;
    size_t cut[MAX_PIECES + 1]; /* piece i is [cut[i], cut[i+1]) before faults */
    uint8_t order[MAX_PIECES];
    int last_valid, any_invalid; /* what the host saw it hand out */
} split;

typedef struct range_job {
    dafl_range_fn fn;
    void *ctx;
    size_t begin, end;
} range_job;

static void *run_range(void *arg)
{
    range_job *r = arg;
    r->fn(r->ctx, r->begin, r->end);
    return NULL;
}

/* The ranges the host hands out for `count` items: the split's pieces scaled to count,
 * in the split's order, with its fault applied.  Returns how many. */
static int make_ranges(const split *s, size_t count, dafl_range_fn fn, void *ctx,
                       range_job *jobs)
{
    int n = 0;
    for (int k = 0; k < s->pieces; k++) {
        int i = s->order[k];
        size_t b = s->cut[i] * count / s->cut[s->pieces];
        size_t e = s->cut[i + 1] * count / s->cut[s->pieces];
        if (b == e)
            continue;
        if (s->fault == 1 && k == 0) /* dropped */
            continue;
        if (s->fault == 2 && k == 0) /* repeated */
            jobs[n++] = (range_job){fn, ctx, b, e};
        if (s->fault == 3 && e < count) /* overlapping the next piece */
            e++;
        if (s->fault == 4 && k == 0) /* reversed */
            jobs[n++] = (range_job){fn, ctx, e, b};
        if (s->fault == 5 && e == count) /* past the end */
            e = count + 1 + (size_t)s->pieces;
        jobs[n++] = (range_job){fn, ctx, b, e};
    }
    return s->fault == 6 ? 0 : n; /* 6: nothing at all */
}

/* Whether the ranges cover [0, count) exactly once and stay inside it. */
static int ranges_valid(const range_job *jobs, int n, size_t count)
{
    uint8_t *seen = calloc(count ? count : 1, 1);
    FZ_REQUIRE(seen, "out of memory");
    int valid = 1;
    for (int i = 0; i < n && valid; i++) {
        if (jobs[i].begin > jobs[i].end || jobs[i].end > count)
            valid = 0;
        for (size_t k = jobs[i].begin; valid && k < jobs[i].end; k++)
            valid = seen[k]++ == 0;
    }
    for (size_t k = 0; valid && k < count; k++)
        valid = seen[k] == 1;
    free(seen);
    return valid;
}

/* The host: the ranges one after the other, or (threads > 1) in rounds of up to three
 * threads at a time. */
static void fuzz_parallel_for(void *host_ctx, size_t count, dafl_range_fn fn, void *ctx)
{
    split *s = host_ctx;
    range_job jobs[2 * MAX_PIECES];
    int n = make_ranges(s, count, fn, ctx, jobs);
    s->last_valid = ranges_valid(jobs, n, count);
    s->any_invalid |= !s->last_valid;
    for (int i = 0; i < n; i += s->threads) {
        pthread_t threads[3];
        int started = 0;
        for (int t = 0; t < s->threads && i + t < n; t++) {
            if (s->threads > 1 && pthread_create(&threads[started], NULL, run_range,
                                                 &jobs[i + t]) == 0)
                started++;
            else
                run_range(&jobs[i + t]);
        }
        for (int t = 0; t < started; t++)
            pthread_join(threads[t], NULL);
    }
}

static int run_loss(int loss, const float *x, const float *y, const int32_t *labels,
                    size_t count, float *out_loss, float *grad, dafl_stats *st)
{
    switch (loss) {
    case 0:
        return dafl_penalty_focal(x, y, count, NULL, out_loss, grad, st);
    case 1: {
        dafl_sigmoid_focal_params p;
        dafl_sigmoid_focal_params_init(&p);
        p.gamma = 2.5f;
        p.reduction = DAFL_REDUCTION_SUM; /* the default, NONE, would want count losses */
        return dafl_sigmoid_focal(x, y, count, &p, out_loss, grad, st);
    }
    case 2:
        return dafl_bce_with_logits(x, y, count, NULL, out_loss, grad, st);
    case 3:
        return dafl_mse(x, y, 1, 1, count, NULL, out_loss, grad, st);
    default:
        /* 3 classes, count / 3 pixels */
        return dafl_softmax_focal(x, labels, 1, 3, count / 3, NULL, out_loss, grad, st);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz f = fz_begin(data, size);
    int threads = 2 + fz_u8(&f) % 31;
    int loss = fz_u8(&f) % 5;
    size_t count = DAFL_MIN_PARALLEL_ELEMENTS + fz_u16(&f) % (5 * DAFL_BLOCK_ELEMENTS * 8);
    int host_mode = fz_u8(&f) % 3; /* 0: dafl's pool, 1: host, 2: host on threads */
    split s = {.fault = fz_u8(&f) % 7, .pieces = 1 + fz_u8(&f) % MAX_PIECES};
    s.threads = host_mode == 2 ? 3 : 1;
    s.cut[0] = 0;
    for (int i = 1; i <= s.pieces; i++)
        s.cut[i] = s.cut[i - 1] + 1 + fz_u8(&f) % 16;
    for (int i = 0; i < s.pieces; i++)
        s.order[i] = (uint8_t)i;
    for (int i = s.pieces - 1; i > 0; i--) { /* a shuffle the input decides */
        int j = fz_u8(&f) % (i + 1);
        uint8_t t = s.order[i];
        s.order[i] = s.order[j];
        s.order[j] = t;
    }

    float *x = malloc(count * sizeof(float)), *y = malloc(count * sizeof(float));
    int32_t *labels = malloc(count * sizeof(int32_t));
    float *g1 = malloc(count * sizeof(float)), *g2 = malloc(count * sizeof(float));
    FZ_REQUIRE(x && y && labels && g1 && g2, "out of memory");
    size_t payload = f.pos < size ? size - f.pos : 0;
    for (size_t i = 0; i < count; i++) {
        uint8_t b = payload ? data[f.pos + i % payload] : (uint8_t)i;
        x[i] = ((float)b - 128.0f) / 8.0f;
        y[i] = b % 29 == 0 ? 1.0f : (float)(b % 7) / 7.0f;
        labels[i] = b % 11 == 0 ? -100 : (int32_t)(b % 3);
    }

    /* the reference: one thread, no host */
    dafl_set_parallel_for(NULL, NULL);
    dafl_set_threads(1);
    float l1 = 0, l2 = 0;
    dafl_stats st1, st2;
    int s1 = run_loss(loss, x, y, labels, count, &l1, g1, &st1);
    FZ_REQUIRE(s1 == DAFL_OK, "one thread: %s", dafl_status_string(s1));

    dafl_set_threads(threads);
    if (host_mode)
        dafl_set_parallel_for(fuzz_parallel_for, &s);
    int s2 = run_loss(loss, x, y, labels, count, &l2, g2, &st2);
    dafl_set_parallel_for(NULL, NULL);
    dafl_set_threads(0);

    if (host_mode && s.any_invalid)
        FZ_REQUIRE(s2 == DAFL_ERR_PARALLEL_FOR, "broken split (fault %d) not reported: %s",
                   s.fault, dafl_status_string(s2));
    else
        FZ_REQUIRE(s2 == DAFL_OK, "valid split on %d threads (host mode %d): %s", threads,
                   host_mode, dafl_status_string(s2));
    size_t grads = loss == 4 ? count / 3 * 3 : count;
    size_t where = 0;
    FZ_REQUIRE(fz_same_floats(&l1, &l2, sizeof l1, &where),
               "loss %a vs %a on %d threads (host %d, fault %d)", (double)l1, (double)l2,
               threads, host_mode, s.fault);
    FZ_REQUIRE(fz_same_floats(g1, g2, grads * sizeof(float), &where),
               "grad[%zu] %a vs %a (host %d, fault %d)", where, (double)g1[where],
               (double)g2[where], host_mode, s.fault);
    FZ_REQUIRE(dafl_stats_loss_sum(&st1) == dafl_stats_loss_sum(&st2) ||
                   (isnan(dafl_stats_loss_sum(&st1)) && isnan(dafl_stats_loss_sum(&st2))),
               "statistics differ");
    free(x);
    free(y);
    free(labels);
    free(g1);
    free(g2);
    return 0;
}
