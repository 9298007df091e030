/*
 * consumer.c — the program that the CMake and Meson consumer projects build against
 * dafl, as a user's project would.  It checks that the header and the library it was
 * linked with are the release the build system found (DAFL_EXPECTED_VERSION, given by
 * that build system), and that a call computes the penalty-reduced focal loss: the value
 * is compared with a double-precision evaluation of CornerNet's formula written here.
 */
#include <dafl.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#ifndef DAFL_EXPECTED_VERSION
#error "the build system passes DAFL_EXPECTED_VERSION, the version it found"
#endif

/* CornerNet's loss on logits, alpha 2, beta 4, divided by the positive count:
 * p = sigmoid(x); -(1-p)^2 log p where y = 1, -(1-y)^4 p^2 log(1-p) elsewhere. */
static double reference_loss(const float *logits, const float *target, size_t count)
{
    double sum = 0.0;
    size_t positives = 0;
    for (size_t i = 0; i < count; i++) {
        double p = 1.0 / (1.0 + exp(-(double)logits[i]));
        if (target[i] == 1.0f) {
            sum -= pow(1.0 - p, 2.0) * log(p);
            positives++;
        } else {
            sum -= pow(1.0 - target[i], 4.0) * pow(p, 2.0) * log1p(-p);
        }
    }
    return positives > 0 ? sum / (double)positives : sum;
}

int main(void)
{
    if (strcmp(dafl_version(), DAFL_EXPECTED_VERSION) != 0 ||
        strcmp(DAFL_VERSION_STRING, DAFL_EXPECTED_VERSION) != 0) {
        fprintf(stderr, "FAIL: library %s, header %s, the build system found %s\n",
                dafl_version(), DAFL_VERSION_STRING, DAFL_EXPECTED_VERSION);
        return 1;
    }
    const float logits[6] = {2.0f, -1.0f, 0.5f, -3.0f, 4.0f, -0.25f};
    const float target[6] = {1.0f, 0.6f, 0.0f, 0.0f, 1.0f, 0.9f};
    float loss = 0.0f;
    dafl_status status = dafl_penalty_focal(logits, target, 6, NULL, &loss, NULL, NULL);
    if (status != DAFL_OK) {
        fprintf(stderr, "FAIL: dafl_penalty_focal: %s\n", dafl_status_string(status));
        return 1;
    }
    double expected = reference_loss(logits, target, 6);
    if (fabs(loss - expected) > 1e-6 * fabs(expected)) {
        fprintf(stderr, "FAIL: loss %.9g, the formula gives %.9g\n", loss, expected);
        return 1;
    }
    printf("dafl %s (%s kernels): loss %.9g, as the formula gives\n", dafl_version(),
           dafl_isa_name(dafl_active_isa()), loss);
    return 0;
}
