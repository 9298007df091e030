#include "exact_sum.h"

#include <math.h>
#include <string.h>

void dafl_xacc_clear(dafl_xacc *acc) { memset(acc, 0, sizeof *acc); }

/* Propagate carries so that digits 0..n-2 lie in [0, 2^32).  Arithmetic shift of a
 * negative digit gives the floor, so the representation stays exact. */
static void normalise(dafl_xacc *acc)
{
    for (int i = 0; i + 1 < DAFL_XACC_DIGITS; i++) {
        int64_t carry = acc->digit[i] >> 32;
        acc->digit[i] -= carry * ((int64_t)1 << 32);
        acc->digit[i + 1] += carry;
    }
}

static void count_add(uint64_t *counter, uint64_t n)
{
    *counter = dafl_saturating_add(*counter, n);
}

/* After normalisation the value is top * 2^203 + (lower digits, in [0, 2^203)) times
 * 2^-149, so it lies in [-2^235, 2^235) exactly when the top digit lies in
 * [-2^32, 2^32).  Outside, the total becomes an infinity of its sign and the digits are
 * cleared (they can then never overflow int64); the infinity count keeps it infinite. */
#define DAFL_XACC_TOP_BOUND ((int64_t)1 << 32)

static void saturate_out_of_range(dafl_xacc *acc)
{
    int64_t top = acc->digit[DAFL_XACC_DIGITS - 1];
    if (top >= -DAFL_XACC_TOP_BOUND && top < DAFL_XACC_TOP_BOUND)
        return;
    count_add(top > 0 ? &acc->pos_inf_count : &acc->neg_inf_count, 1);
    memset(acc->digit, 0, sizeof acc->digit);
}

/* acc += (negative ? -1 : 1) * magnitude * 2^(lsb_exponent).  magnitude < 2^96. */
static void add_scaled(dafl_xacc *acc, unsigned __int128 magnitude, int lsb_exponent,
                       int negative)
{
    int shift = lsb_exponent - DAFL_XACC_LSB_EXPONENT;
    if (magnitude == 0)
        return;
    if (shift < 0) { /* below the grid: truncate toward zero (see the header) */
        magnitude = shift > -128 ? magnitude >> -shift : 0;
        shift = 0;
    }
    int first = shift / 32;
    unsigned __int128 aligned = magnitude << (shift % 32); /* < 2^127: four digits */
    for (int i = 0; i < 4; i++) {
        if ((uint32_t)(aligned >> (32 * i)) != 0 && first + i >= DAFL_XACC_DIGITS) {
            /* One value of 2^235 or more, outside the range by itself (no block sum of
             * float data comes near: they stay below 2^193): an infinity of its sign. */
            count_add(negative ? &acc->neg_inf_count : &acc->pos_inf_count, 1);
            return;
        }
    }
    for (int i = 0; i < 4 && first + i < DAFL_XACC_DIGITS; i++) {
        int64_t part = (int64_t)(uint32_t)(aligned >> (32 * i));
        acc->digit[first + i] += negative ? -part : part;
    }
    normalise(acc);
    saturate_out_of_range(acc);
}

void dafl_xacc_add_double(dafl_xacc *acc, double v)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    int negative = (int)(bits >> 63);
    int biased = (int)((bits >> 52) & 0x7ff);
    uint64_t fraction = bits & ((UINT64_C(1) << 52) - 1);
    if (biased == 0x7ff) {
        count_add(fraction ? &acc->nan_count
                  : negative ? &acc->neg_inf_count : &acc->pos_inf_count, 1);
        return;
    }
    uint64_t mantissa = biased ? fraction | (UINT64_C(1) << 52) : fraction;
    int lsb_exponent = (biased ? biased : 1) - 1075;
    add_scaled(acc, mantissa, lsb_exponent, negative);
}

void dafl_xacc_add_float_times(dafl_xacc *acc, float w, uint64_t count)
{
    uint32_t bits;
    memcpy(&bits, &w, sizeof bits);
    int negative = (int)(bits >> 31);
    int biased = (int)((bits >> 23) & 0xff);
    uint32_t fraction = bits & ((UINT32_C(1) << 23) - 1);
    if (count == 0)
        return;
    if (biased == 0xff) {
        uint64_t *counter = fraction ? &acc->nan_count
                            : negative ? &acc->neg_inf_count : &acc->pos_inf_count;
        count_add(counter, count);
        return;
    }
    uint32_t mantissa = biased ? fraction | (UINT32_C(1) << 23) : fraction;
    int lsb_exponent = (biased ? biased : 1) - 150;
    add_scaled(acc, (unsigned __int128)mantissa * count, lsb_exponent, negative);
}

/* Both operands are normalised (digits below the top in [0, 2^32), the top digit in
 * [-2^32, 2^32)), so no digit sum comes near the int64 limits before normalise(). */
void dafl_xacc_add(dafl_xacc *acc, const dafl_xacc *other)
{
    for (int i = 0; i < DAFL_XACC_DIGITS; i++)
        acc->digit[i] += other->digit[i];
    normalise(acc);
    saturate_out_of_range(acc);
    count_add(&acc->nan_count, other->nan_count);
    count_add(&acc->pos_inf_count, other->pos_inf_count);
    count_add(&acc->neg_inf_count, other->neg_inf_count);
}

double dafl_xacc_to_double(const dafl_xacc *acc)
{
    if (acc->nan_count || (acc->pos_inf_count && acc->neg_inf_count))
        return NAN;
    if (acc->pos_inf_count)
        return INFINITY;
    if (acc->neg_inf_count)
        return -INFINITY;

    /* Magnitude as unsigned digits (two's complement negation on a normalised copy). */
    dafl_xacc m = *acc;
    int negative = m.digit[DAFL_XACC_DIGITS - 1] < 0;
    if (negative) {
        for (int i = 0; i < DAFL_XACC_DIGITS; i++)
            m.digit[i] = -m.digit[i];
        normalise(&m);
    }
    int top = DAFL_XACC_DIGITS - 1;
    while (top >= 0 && m.digit[top] == 0)
        top--;
    if (top < 0)
        return 0.0;
    /* The top three digits hold at least 65 significant bits; fold every lower digit
     * into a sticky bit so that the single conversion below rounds correctly.  The top
     * digit of the magnitude is at most 2^32 (the value -2^235), so head < 2^98. */
    int low = top >= 2 ? top - 2 : 0;
    unsigned __int128 head = (uint64_t)m.digit[top];
    for (int i = top - 1; i >= low; i--)
        head = (head << 32) | (uint32_t)m.digit[i];
    int sticky = 0;
    for (int i = 0; i < low; i++)
        sticky |= m.digit[i] != 0;
    head = (head << 1) | (unsigned)sticky;
    double value = ldexp((double)head, 32 * low - 1 + DAFL_XACC_LSB_EXPONENT);
    return negative ? -value : value;
}
