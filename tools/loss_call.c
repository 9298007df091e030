/*
 * CALLS calls of one dafl loss over 65536 elements, for instruction counts: the count of
 * a run with CALLS = 0 (the setup) subtracted from one with CALLS = k, divided by k*65536,
 * is the loss's instructions per element.  docs/benchmarks.md ("How these were measured")
 * gives the commands, natively under callgrind and for AArch64 under qemu-aarch64 with
 * tools/qemu_insn_count.c; on any x86-64 CPU, AVX-512 included, single-stepped by
 * tools/step_count.c (which counts the calls alone).
 *   loss_call LOSS CALLS     LOSS: pf, pf_clamped, sf2, sf2_hard, bce, softmax16, mse
 */
#include <dafl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#define N 65536
static float x[N], y[N], yh[N], g[N]; static int32_t lab[N];
int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s pf|pf_clamped|sf2|sf2_hard|bce|softmax16|mse CALLS\n", argv[0]);
        return 2;
    }
    const char *loss = argv[1]; int calls = atoi(argv[2]);
    uint64_t s = 88172645463325252ull;
    for (int i = 0; i < N; i++) { s ^= s << 13; s ^= s >> 7; s ^= s << 17;
        float u = (s >> 40) / 16777216.0f; y[i] = (s & 63) == 0 ? 1.0f : (s & 63) < 8 ? u : 0.0f;
        yh[i] = y[i] > 0.5f; x[i] = -4.0f + 12.0f * (u - 0.5f) + 8.0f * y[i]; lab[i] = (int32_t)((s >> 20) % 16); }
    float out = 0; dafl_status st = DAFL_OK;
    int mark = getenv("STEP_COUNT") != NULL; /* tools/step_count.c counts the calls alone */
    if (mark) raise(SIGUSR1);
    for (int c = 0; c < calls; c++) {
        if (!strcmp(loss, "pf") || !strcmp(loss, "pf_clamped")) {
            dafl_penalty_focal_params p; dafl_penalty_focal_params_init(&p);
            p.input_mode = loss[2] ? DAFL_INPUT_CLAMPED_LOGITS : DAFL_INPUT_LOGITS;
            p.reduction = DAFL_REDUCTION_NORMALIZER; p.normalizer = 100; p.flags = DAFL_FLAG_TRUST_TARGETS;
            st |= dafl_penalty_focal(x, y, N, &p, &out, g, NULL);
        } else if (!strncmp(loss, "sf2", 3)) {
            dafl_sigmoid_focal_params p; dafl_sigmoid_focal_params_init(&p);
            p.reduction = DAFL_REDUCTION_NORMALIZER; p.normalizer = 100; p.flags = DAFL_FLAG_TRUST_TARGETS;
            st |= dafl_sigmoid_focal(x, loss[3] ? yh : y, N, &p, &out, g, NULL);
        } else if (!strcmp(loss, "bce")) {
            dafl_bce_params p; dafl_bce_params_init(&p);
            p.reduction = DAFL_REDUCTION_NORMALIZER; p.normalizer = N; p.flags = DAFL_FLAG_TRUST_TARGETS;
            st |= dafl_bce_with_logits(x, y, N, &p, &out, g, NULL);
        } else if (!strcmp(loss, "mse")) {
            dafl_mse_params p; dafl_mse_params_init(&p); static float w[16];
            for (int k = 0; k < 16; k++) w[k] = k % 5 == 4 ? 0.0f : 1.0f;
            p.weights = w; p.weights_count = 16; p.reduction = DAFL_REDUCTION_NORMALIZER; p.normalizer = N; p.flags = DAFL_FLAG_TRUST_TARGETS;
            st |= dafl_mse(x, y, 1, 16, N / 16, &p, &out, g, NULL);
        } else if (!strcmp(loss, "softmax16")) {
            dafl_softmax_focal_params p; dafl_softmax_focal_params_init(&p);
            p.reduction = DAFL_REDUCTION_NORMALIZER; p.normalizer = N / 16; p.flags = DAFL_FLAG_TRUST_TARGETS;
            st |= dafl_softmax_focal(x, lab, 1, 16, N / 16, &p, &out, g, NULL);
        }
    }
    if (mark) raise(SIGUSR2);
    printf("%s status %d loss %.9g\n", loss, (int)st, (double)out);
    return st != DAFL_OK;
}
