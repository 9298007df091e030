/* The scalar kernels for x86-64 CPUs without FMA: the same source without -mfma, with
 * SLEEF's non-FMA functions (a file of its own so that its object has its own name). */
#define DAFL_SCALAR_NO_FMA 1
#include "kernels_scalar.c"
