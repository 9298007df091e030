#include "kernel_api.h"

const float dafl_lane_index16[16] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};

/* The fixed pairwise fold of the 16 virtual lanes: j += j+8, then +4, +2, +1.  Every ISA
 * calls this one function, so the order is the same everywhere. */
double dafl_fold_lanes16(const double lanes[16])
{
    double t[16];
    for (int j = 0; j < 16; j++)
        t[j] = lanes[j];
    for (int width = 8; width >= 1; width /= 2)
        for (int j = 0; j < width; j++)
            t[j] = t[j] + t[j + width];
    return t[0];
}
