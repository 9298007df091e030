/*
 * Exact summation: a fixed-point accumulator wide enough to hold any sum of up to
 * 2^31 float-derived values exactly (a Kulisch accumulator for the float range).
 *
 * Every finite float is an integer multiple of 2^-149 smaller than 2^128, so a sum of
 * up to 2^31 of them is an integer multiple of 2^-149 smaller than 2^159.  The block
 * sums that the kernels produce (float values added in double) keep that property: a
 * double that is a rounded sum of multiples of 2^-149 is itself one.  The accumulator
 * stores that integer in 32-bit digits held in int64_t words, least significant first,
 * so adding is exact and therefore independent of order: any split of the data, any
 * thread count, any ISA gives the same bits.  Infinities and NaNs are counted apart.
 *
 * Range: the accumulator holds every multiple of 2^-149 in [-2^235, 2^235) exactly
 * (11 digits in [0, 2^32) and a signed top digit in [-2^32, 2^32)).  A float sum never
 * leaves it (|sum| < 2^31 * 2^128 = 2^159), but combining statistics with themselves can:
 * a total that leaves it becomes an infinity of its sign (counted as one, the digits
 * cleared) and stays infinite, since every counter saturates instead of wrapping.  Inside
 * the range addition is exact, hence associative; a total that leaves the range on the
 * way is +-inf, and one partial total of each sign out of range gives NaN, as inf - inf.
 */
#ifndef DAFL_EXACT_SUM_H
#define DAFL_EXACT_SUM_H

#include <stdint.h>

#define DAFL_XACC_DIGITS 12       /* 12 x 32 bits = 384 bits from 2^-149 upwards */
#define DAFL_XACC_LSB_EXPONENT (-149)

typedef struct dafl_xacc {
    int64_t digit[DAFL_XACC_DIGITS]; /* after normalisation: digits 0..10 in [0, 2^32),
                                        the top digit carries the sign */
    uint64_t nan_count;
    uint64_t pos_inf_count;
    uint64_t neg_inf_count;
} dafl_xacc;

/* a + b, or UINT64_MAX when that does not fit: the accumulator's and the statistics'
 * counters saturate, so a count that reached the limit (an infinity that was added, a
 * number of positives) can never wrap back to a small value. */
static inline uint64_t dafl_saturating_add(uint64_t a, uint64_t b)
{
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

void dafl_xacc_clear(dafl_xacc *acc);
/* acc += v.  v is finite and a multiple of 2^-149 (bits below are truncated toward
 * zero, which only happens for values no dafl sum produces), or an infinity or NaN. */
void dafl_xacc_add_double(dafl_xacc *acc, double v);
/* acc += w * count, exactly, for a float w. */
void dafl_xacc_add_float_times(dafl_xacc *acc, float w, uint64_t count);
/* acc += other (the counters saturate at UINT64_MAX). */
void dafl_xacc_add(dafl_xacc *acc, const dafl_xacc *other);
/* The exact value rounded once to the nearest double (ties to even); NaN when a NaN or
 * infinities of both signs were added, else +-inf when an infinity was added or the
 * total left the range. */
double dafl_xacc_to_double(const dafl_xacc *acc);

#endif
