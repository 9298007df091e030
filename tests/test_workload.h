/*
 * A workload for the tests of threads and environments: every loss over the same large
 * random data (well above DAFL_MIN_PARALLEL_ELEMENTS, so it is split over threads),
 * hashed into one digest of everything the calls produce.
 */
#ifndef DAFL_TEST_WORKLOAD_H
#define DAFL_TEST_WORKLOAD_H

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

/* Keeps the first status other than DAFL_OK. */
static inline void workload_note(dafl_status *first_bad, dafl_status s)
{
    if (s != DAFL_OK && *first_bad == DAFL_OK)
        *first_bad = s;
}

/* Everything the calls produce, hashed: loss, statistics, gradient, per-element loss,
 * written to the caller's buffers (COUNT * 4 and COUNT floats).  *status gets the first
 * status other than DAFL_OK (DAFL_OK if none); nothing here asserts, so that it can run
 * in a forked child and report by exit code. */
static uint64_t run_all_losses_into(float *grad, float *per_element, dafl_status *status)
{
    dafl_status bad = DAFL_OK;
    uint64_t h = TEST_HASH_SEED;
    float loss = 0;
    dafl_stats st;
    double sums[5];

    dafl_penalty_focal_params pf;
    dafl_penalty_focal_params_init(&pf);
    workload_note(&bad, dafl_penalty_focal(x, y, COUNT, &pf, &loss, grad, &st));
    h = test_hash_floats(test_hash_floats(h, &loss, 1), grad, COUNT);
    sums[0] = dafl_stats_loss_sum(&st);

    dafl_sigmoid_focal_params sf;
    dafl_sigmoid_focal_params_init(&sf);
    sf.gamma = 2.5f;
    workload_note(&bad, dafl_sigmoid_focal(x, y, COUNT, &sf, per_element, grad, &st));
    h = test_hash_floats(test_hash_floats(h, per_element, COUNT), grad, COUNT);
    sums[1] = dafl_stats_loss_sum(&st);

    workload_note(&bad, dafl_bce_with_logits(x, y, COUNT, NULL, &loss, grad, &st));
    h = test_hash_floats(test_hash_floats(h, &loss, 1), grad, COUNT);
    sums[2] = dafl_stats_loss_sum(&st);

    workload_note(&bad, dafl_mse(x, y, 1, 1, COUNT, NULL, &loss, grad, &st));
    h = test_hash_floats(test_hash_floats(h, &loss, 1), grad, COUNT);
    sums[3] = dafl_stats_loss_sum(&st);

    workload_note(&bad, dafl_softmax_focal(x, labels, 1, 4, COUNT, NULL, &loss, grad, &st));
    h = test_hash_floats(test_hash_floats(h, &loss, 1), grad, COUNT * 4);
    sums[4] = dafl_stats_loss_sum(&st);
    /* the sums' bits, without arithmetic (it would round in the caller's environment) */
    float sum_bits[2 * 5];
    memcpy(sum_bits, sums, sizeof sum_bits);
    h = test_hash_floats(h, sum_bits, 2 * 5);
    *status = bad;
    return h;
}

/* The same, into the shared buffers. */
static uint64_t run_all_losses_status(dafl_status *status)
{
    return run_all_losses_into(grad, per_element, status);
}

/* The digest of a run in which every call must succeed. */
static uint64_t run_all_losses(void)
{
    dafl_status st;
    uint64_t h = run_all_losses_status(&st);
    ck_assert_msg(st == DAFL_OK, "%s", dafl_status_string(st));
    return h;
}

#endif
