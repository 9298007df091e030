/*
 * Data-parallel training step on MPI, bit for bit equal to one process.
 *
 * Every rank holds a shard of a heatmap batch (whole images: a split along N, so each
 * shard starts at a multiple of DAFL_BLOCK_ELEMENTS of the whole batch).  One step:
 *   1. each rank counts its positives; an all-reduce gives the global count N;
 *   2. each rank runs the fused penalty-focal call on its shard with
 *      DAFL_REDUCTION_NORMALIZER = max(N, 1): its gradient is already d(global loss)/dx;
 *   3. the ranks all-gather their exact partial statistics and combine them in rank
 *      order with dafl_stats_combine (any order gives the same bits); dafl_stats_reduce
 *      then gives the global loss.
 * To prove it, every rank also runs the single-process call over the whole batch and
 * compares the loss and its own slice of the gradient bit for bit.
 *
 *   mpirun -np 4 ./dafl-mpi-data-parallel [images channels height width]
 */
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dafl.h"

/* A deterministic synthetic batch: Gaussian targets around pseudo-random keypoints and
 * logits that roughly predict them. */
static void make_batch(float *logits, float *targets, size_t images, size_t channels,
                       size_t h, size_t w)
{
    uint64_t state = 12345;
    size_t plane = h * w;
    memset(targets, 0, images * channels * plane * sizeof(float));
    for (size_t p = 0; p < images * channels; p++) {
        for (int k = 0; k < 2; k++) {
            state = state * 6364136223846793005ULL + 1442695040888963407ULL;
            long cx = (long)((state >> 33) % w), cy = (long)((state >> 13) % h);
            dafl_draw_gaussian(targets + p * plane, h, w, cx, cy, 3 + (long)(state % 5), 1.0f);
        }
    }
    for (size_t i = 0; i < images * channels * plane; i++) {
        state = state * 6364136223846793005ULL + 1442695040888963407ULL;
        float noise = (float)((state >> 40) % 1000) / 1000.0f - 0.5f;
        logits[i] = 6.0f * targets[i] - 4.0f + noise;
    }
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    int rank, ranks;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &ranks);
    size_t images = argc > 1 ? strtoul(argv[1], NULL, 10) : 8;
    size_t channels = argc > 2 ? strtoul(argv[2], NULL, 10) : 17;
    size_t h = argc > 3 ? strtoul(argv[3], NULL, 10) : 128;
    size_t w = argc > 4 ? strtoul(argv[4], NULL, 10) : 128;
    size_t image = channels * h * w, total = images * image;

    float *logits = malloc(total * sizeof(float)), *targets = malloc(total * sizeof(float));
    float *grad_whole = malloc(total * sizeof(float)), *grad_shard = malloc(total * sizeof(float));
    dafl_stats *gathered = malloc((size_t)ranks * sizeof(dafl_stats));
    if (!logits || !targets || !grad_whole || !grad_shard || !gathered) {
        fprintf(stderr, "rank %d: out of memory\n", rank);
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    make_batch(logits, targets, images, channels, h, w);

    /* This rank's images: an even split of N, the remainder to the first ranks. */
    size_t first = images * (size_t)rank / (size_t)ranks;
    size_t last = images * (size_t)(rank + 1) / (size_t)ranks;
    const float *x = logits + first * image, *y = targets + first * image;
    size_t count = (last - first) * image;

    /* 1. the global positive count */
    uint64_t local_pos = 0, global_pos = 0;
    dafl_status st = dafl_count_positives(y, count, 0, &local_pos);
    MPI_Allreduce(&local_pos, &global_pos, 1, MPI_UINT64_T, MPI_SUM, MPI_COMM_WORLD);

    /* 2. the fused call on the shard, normalized by the global count */
    dafl_penalty_focal_params p;
    dafl_penalty_focal_params_init(&p);
    p.reduction = DAFL_REDUCTION_NORMALIZER;
    p.normalizer = (float)(global_pos ? global_pos : 1);
    dafl_stats mine;
    if (st == DAFL_OK)
        st = dafl_penalty_focal(x, y, count, &p, NULL, grad_shard, &mine);
    if (st != DAFL_OK) {
        fprintf(stderr, "rank %d: %s\n", rank, dafl_status_string(st));
        MPI_Abort(MPI_COMM_WORLD, 1);
    }

    /* 3. exchange the statistics and combine them in rank order */
    MPI_Allgather(&mine, (int)sizeof mine, MPI_BYTE, gathered, (int)sizeof mine, MPI_BYTE,
                  MPI_COMM_WORLD);
    dafl_stats all;
    dafl_stats_init(&all);
    for (int r = 0; r < ranks; r++)
        dafl_stats_combine(&all, &gathered[r]);
    float global_loss;
    dafl_stats_reduce(&all, DAFL_REDUCTION_POSITIVES, 1.0f, &global_loss);

    /* The proof: one process over the whole batch. */
    dafl_penalty_focal_params single;
    dafl_penalty_focal_params_init(&single); /* DAFL_REDUCTION_POSITIVES */
    float whole_loss;
    dafl_penalty_focal(logits, targets, total, &single, &whole_loss, grad_whole, NULL);
    int same = memcmp(&whole_loss, &global_loss, sizeof whole_loss) == 0 &&
               memcmp(grad_whole + first * image, grad_shard, count * sizeof(float)) == 0;
    int all_same = 0;
    MPI_Allreduce(&same, &all_same, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    if (rank == 0) {
        printf("%d ranks, %zu x %zu x %zu x %zu, %llu positives, kernels %s\n", ranks, images,
               channels, h, w, (unsigned long long)global_pos, dafl_isa_name(dafl_active_isa()));
        printf("data-parallel loss %.9g, single-process loss %.9g: %s\n", (double)global_loss,
               (double)whole_loss,
               all_same ? "identical bits, gradients identical on every rank" : "DIFFERENT");
    }
    free(logits);
    free(targets);
    free(grad_whole);
    free(grad_shard);
    free(gathered);
    MPI_Finalize();
    return all_same ? 0 : 1;
}
