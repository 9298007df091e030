/*
 * The memory-bandwidth references: loops that move the bytes a fused loss call must
 * move and do (almost) nothing else.  Built at -O3 -march=native so that the compiler
 * uses the widest vectors the CPU has; no -ffast-math is needed, because no result
 * depends on the order of floating-point operations across elements.
 */
#include "baselines.h"

void bandwidth_move(const float *x, const float *y, float *out, size_t n)
{
    for (size_t i = 0; i < n; i++)
        out[i] = x[i] + y[i];
}

/* Independent partial sums, one per lane of this array: a single running sum would make
 * every addition wait for the one before, and the loop would measure the adder's
 * latency instead of the memory.  32 lanes fill four 256-bit or two 512-bit registers. */
#define READ_LANES 32

float bandwidth_read(const float *x, const float *y, size_t n)
{
    float lanes[READ_LANES] = {0};
    size_t i = 0;
    for (; i + READ_LANES <= n; i += READ_LANES)
        for (size_t j = 0; j < READ_LANES; j++)
            lanes[j] += x[i + j] + y[i + j];
    float sum = 0.0f;
    for (; i < n; i++)
        sum += x[i] + y[i];
    for (size_t j = 0; j < READ_LANES; j++)
        sum += lanes[j];
    return sum;
}
