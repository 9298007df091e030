#include <dafl.h>
#include <stdio.h>

int main(void)
{
    /* targets: 1 at a keypoint, else the value of its Gaussian */
    float logits[4] = {2.0f, -1.0f, 0.5f, -3.0f};
    float target[4] = {1.0f, 0.6f, 0.0f, 0.0f};
    float loss, grad[4];
    dafl_penalty_focal_params p;
    dafl_penalty_focal_params_init(&p); /* alpha 2, beta 4, / positives */
    dafl_status st =
        dafl_penalty_focal(logits, target, 4, &p, &loss, grad, NULL);
    if (st != DAFL_OK) {
        puts(dafl_status_string(st));
        return 1;
    }
    printf("loss %g, dL/dx[0] %g, kernels ", loss, grad[0]);
    puts(dafl_isa_name(dafl_active_isa()));
    return 0;
}
